//! Keeping secrets out of everything pgmigrate writes: fingerprints instead
//! of database URLs, and a last-line redaction of credentials in any text
//! that reaches the journal, a log line or an error message.

use sha2::{Digest, Sha256};

/// A fingerprint of a secret value (a database URL): `sha256:` and the first
/// 16 hex digits of its SHA-256. Enough to notice that a value changed, not
/// enough to recover it (Heroku's credentials are long random strings).
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Replace the credentials of every `scheme://user:password@` in `text` with
/// `scheme://REDACTED@`. Applied to every text pgmigrate journals or shows
/// that came from outside (error messages, transfer logs).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("REDACTED");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_short_and_differ() {
        let a = fingerprint("postgres://u:p@h/d");
        assert_eq!(a, fingerprint("postgres://u:p@h/d"));
        assert_ne!(a, fingerprint("postgres://u:q@h/d"));
        assert_eq!(a.len(), "sha256:".len() + 16);
        assert!(!a.contains('p') || a.starts_with("sha256:"));
    }

    #[test]
    fn redaction_removes_credentials_only() {
        assert_eq!(
            redact("bad url postgres://user:s3cret@host:5432/db here"),
            "bad url postgres://REDACTED@host:5432/db here"
        );
        assert_eq!(
            redact("\"postgres://a:b@h/d\" and https://api.heroku.com/apps"),
            "\"postgres://REDACTED@h/d\" and https://api.heroku.com/apps"
        );
        assert_eq!(redact("no urls"), "no urls");
        assert_eq!(redact("x://"), "x://");
        assert_eq!(redact("postgres://u:p@h"), "postgres://REDACTED@h");
    }
}
