//! The steps every method shares, one file each: what they do, how a lost
//! answer is reconciled, and their undo, together.

pub mod alias_source;
pub mod attach;
pub mod create_target;
pub mod maintenance;
pub mod others;
pub mod rebind;
pub mod releases;
pub mod scale;
pub mod wait_target;
pub mod writers;
