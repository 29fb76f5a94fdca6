//! Reporters: pure functions from results to bytes (CSV, JSON, markdown, text tables).

pub mod speed;
