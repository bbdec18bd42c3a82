//! pgmigrate: move a Heroku app's Postgres database to another add-on plan
//! as an explicit, journaled state machine that can be inspected, resumed
//! and rolled back.
//!
//! The binary (`src/main.rs`) only parses arguments and renders results; the
//! work lives here and reports through return values and `tracing` events.

pub mod cli;
pub mod compare;
pub mod crash;
pub mod decisions;
pub mod engine;
pub mod error;
pub mod heroku;
pub mod holder;
pub mod journal;
pub mod methods;
pub mod plans;
pub mod secrets;
pub mod sim;
pub mod status;
pub mod store;
