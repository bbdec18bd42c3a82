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

/// Why a token cannot go in an `Authorization` header, without showing
/// it: the first character that is not printable ASCII (control
/// characters such as a line break, and anything beyond ASCII such as a
/// pasted zero-width space), by position and code point. Heroku's tokens
/// are printable ASCII; a header value cannot hold control characters.
pub fn header_problem(token: &Token) -> Option<String> {
    let chars: Vec<char> = token.0.chars().collect();
    let (at, c) = chars
        .iter()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_graphic() || **c == ' '))?;
    let what = match *c {
        '\n' | '\r' => "a line break",
        '\t' => "a tab",
        '\u{200B}' => "a zero-width space (invisible; usually pasted with the token)",
        '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => {
            "an invisible zero-width character (usually pasted with the token)"
        }
        '\u{00A0}' => "a no-break space",
        c if c.is_control() => "a control character",
        _ => "a character that is not ASCII",
    };
    Some(format!(
        "character {} of {} is {what} (U+{:04X}), which cannot be sent in an HTTP header",
        at + 1,
        chars.len(),
        *c as u32
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_that_cannot_go_in_a_header_are_named_not_shown() {
        assert_eq!(header_problem(&Token::new("HRKU-abc_123.x y")), None);
        // Surrounding whitespace (a trailing newline) is removed first.
        assert_eq!(header_problem(&Token::new("abc-123\n")), None);
        for (token, words, at) in [
            ("secret\u{200B}", "zero-width space", "character 7 of 7"),
            ("sec\u{200B}ret", "zero-width space", "character 4 of 7"),
            ("sec\nret", "line break", "character 4 of 7"),
            ("sec\rret", "line break", "U+000D"),
            ("sec\u{FEFF}ret", "invisible", "U+FEFF"),
            ("sécret", "not ASCII", "U+00E9"),
            ("sec\u{7f}ret", "control", "U+007F"),
        ] {
            let p = header_problem(&Token::new(token)).expect(token);
            assert!(p.contains(words) && p.contains(at), "{p}");
            assert!(!p.contains("sec") && !p.contains("ret"), "{p}");
        }
    }
}
