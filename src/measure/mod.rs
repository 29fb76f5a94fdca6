//! Measurements of a model on this machine: prompt and generation speed, time to first
//! token, load time, and peak memory of the process that ran it.

pub mod capped;
pub mod rss;
pub mod speed;
