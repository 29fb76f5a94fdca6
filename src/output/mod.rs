//! Output for people: progress bars (only on a terminal) and text tables.

pub mod progress;
pub mod table;
