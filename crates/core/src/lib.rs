//! The plain pieces every part of frontier shares: the bad-input error class and the exit
//! codes it maps to, small statistics (mean, sd, proportions with intervals, McNemar), units (bytes, milliseconds, tokens/s) and their formatting and parsing,
//! and the machine we run on.

pub mod error;
pub mod stats;
pub mod suggest;
pub mod system;
pub mod units;

pub use error::{bad_input, exit_code, BadInput, EXIT_BAD_INPUT, EXIT_FAILURE};
