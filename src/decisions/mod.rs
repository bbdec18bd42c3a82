//! The pure decisions the step definitions (`crate::methods`) ask for:
//! which dynos to wait for, which formation to send, which config vars
//! hold the database, what a transfer or a release says, how long to wait
//! before the next look, whether a plan or app name is valid.
//!
//! Nothing here does I/O; every function is unit-tested without a network.

mod config;
mod dynos;
mod names;
mod polls;
mod releases;
mod transfer;

pub use config::*;
pub use dynos::*;
pub use names::*;
pub use polls::*;
pub use releases::*;
pub use transfer::*;

#[cfg(test)]
mod tests;
