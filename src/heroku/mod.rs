//! Talking to Heroku: the Platform API and the Data API (Heroku Postgres).
//!
//! `config` finds the endpoints and the API token (`netrc` reads
//! `~/.netrc`, `cli_token` asks `heroku auth:token` for it), `client` is
//! the HTTP client (headers, pagination, retries, errors), `types` the
//! resources and request bodies as they go over the wire.
//!
//! The client is split in layers, each using only those below it: `error`
//! ([`ApiError`]), `call` (one request and its answer), `transport` (the
//! [`Client`] and its send/list/retry machinery) and `client` (one method
//! per endpoint).

mod call;
pub mod cli_token;
pub mod client;
pub mod config;
pub mod error;
mod netrc;
pub mod token;
pub mod transport;
pub mod types;

pub use config::*;
pub use error::*;
pub use transport::*;
