//! Talking to Heroku: the Platform API and the Data API (Heroku Postgres).
//!
//! `config` finds the endpoints and the API token (`cli_token` asks
//! `heroku auth:token` for it), `client` is the HTTP
//! client (headers, pagination, retries, errors), `types` the resources and
//! request bodies as they go over the wire.

pub mod cli_token;
pub mod client;
pub mod config;
pub mod token;
pub mod types;

pub use client::*;
pub use config::*;
