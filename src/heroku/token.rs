//! The Heroku API token as a type that never shows itself: found by
//! `config` (env, netrc) or `cli_token` (`heroku auth:token`), put on the
//! wire by the client alone.

use std::fmt;

/// The Heroku API token. It never shows in `Debug` or `Display` output; use
/// [`Token::expose`] only where it is put on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token (surrounding whitespace is removed).
    pub fn new(token: impl Into<String>) -> Token {
        let token = token.into();
        Token(token.trim().to_owned())
    }

    /// The token itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
