//! Speed of a model on this machine: the `speed` job (prompt and generation tokens/s, time to
//! first token, load time, in a worker process) and its run under a memory cap.

pub mod capped;
pub mod speed;
