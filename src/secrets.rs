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

/// Replace every credential in `text`: the `user:password` of every
/// `scheme://user:password@host` (any scheme) with `REDACTED`, and the value
/// of every `password=...` (any key ending in `password`, e.g. `PGPASSWORD`,
/// in a libpq key=value string or a URL query; quoted or not) with
/// `REDACTED`. Applied to every text pgmigrate journals or shows that came
/// from outside (error messages, transfer logs).
pub fn redact(text: &str) -> String {
    redact_passwords(&redact_userinfo(text))
}

fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The URL ends at whitespace, a quote or a bracket; its authority at
        // the first '/'. A password holding a '/' (invalid, but possible in
        // a log) still ends at the last '@' of the URL when a ':' comes
        // before it: over-redacting a path beats leaking a secret.
        let url_end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let url = &tail[..url_end];
        let authority_end = url.find('/').unwrap_or(url.len());
        let cut = match url[..authority_end].rfind('@') {
            Some(at) => Some(at),
            None => url.rfind('@').filter(|&at| url[..at].contains(':')),
        };
        match cut {
            Some(at) => {
                out.push_str("REDACTED");
                rest = &tail[at..];
            }
            None => {
                out.push_str(&tail[..authority_end]);
                rest = &tail[authority_end..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn redact_passwords(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("password") {
        let key_end = search + found + "password".len();
        search = key_end;
        // Spaces may surround the '=' (libpq allows them).
        let after_key = &text[key_end..];
        let trimmed = after_key.trim_start_matches([' ', '\t']);
        let Some(value) = trimmed.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start_matches([' ', '\t']);
        let value_start = text.len() - value.len();
        let value_end = match value.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // Quoted, with backslash escapes (libpq): up to the closing
                // quote, or the end of the text.
                let mut escaped = false;
                let mut end = value.len();
                for (i, c) in value.char_indices().skip(1) {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == q {
                        end = i + 1;
                        break;
                    }
                }
                value_start + end
            }
            _ => {
                value_start
                    + value
                        .find(|c: char| {
                            c.is_whitespace() || matches!(c, '&' | ';' | ',' | ')' | '"' | '\'')
                        })
                        .unwrap_or(value.len())
            }
        };
        if value_end == value_start {
            continue;
        }
        out.push_str(&text[done..value_start]);
        out.push_str("REDACTED");
        done = value_end;
        search = value_end;
    }
    out.push_str(&text[done..]);
    out
}

/// A transfer log message made fit to journal and show: every credential
/// redacted ([`redact`]), and every `DETAIL` line replaced by a note, since
/// PostgreSQL's DETAIL lines in pg_dump / pg_restore errors can quote row
/// values (`Key (email)=(someone@example.com) already exists.`, `Failing
/// row contains (...)`). A DETAIL that shares a line with the error is cut
/// off the same way.
pub fn transfer_log(message: &str) -> String {
    const NOTE: &str = "DETAIL: (removed by pgmigrate: it can hold row values; see `heroku \
                        pg:backups:info`)";
    message
        .lines()
        .map(|line| match line.find("DETAIL:") {
            Some(0) => NOTE.to_string(),
            Some(at) if line[..at].trim().is_empty() => NOTE.to_string(),
            Some(at) => format!("{} {NOTE}", redact(line[..at].trim_end())),
            None => redact(line),
        })
        .collect::<Vec<_>>()
        .join("\n")
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
        assert_eq!(
            redact("mysql://root:pw@10.0.0.1 redis://:tok@r:6379/0 amqps://a:b@q"),
            "mysql://REDACTED@10.0.0.1 redis://REDACTED@r:6379/0 amqps://REDACTED@q"
        );
        // A password with a '/' (not valid in a URL, but logs hold anything).
        assert_eq!(redact("postgres://u:pa/ss@h/d"), "postgres://REDACTED@h/d");
        // An '@' in a path without a user:password is left alone.
        assert_eq!(
            redact("https://api.heroku.com/users/me@example.com"),
            "https://api.heroku.com/users/me@example.com"
        );
    }

    #[test]
    fn password_keys_are_redacted_quoted_or_not() {
        for (input, expected) in [
            (
                "host=h port=5432 user=u password=s3cret dbname=d",
                "host=h port=5432 user=u password=REDACTED dbname=d",
            ),
            (
                "password = 's3 cr\\'et' sslmode=require",
                "password = REDACTED sslmode=require",
            ),
            ("PASSWORD=\"a b\" x", "PASSWORD=REDACTED x"),
            ("PGPASSWORD=abc pg_dump", "PGPASSWORD=REDACTED pg_dump"),
            (
                "postgres://h/d?user=u&password=s3cret&sslmode=require",
                "postgres://h/d?user=u&password=REDACTED&sslmode=require",
            ),
            ("password='unterminated", "password=REDACTED"),
            // Not a key=value: left alone.
            (
                "password authentication failed for user \"u\"",
                "password authentication failed for user \"u\"",
            ),
            ("password=", "password="),
        ] {
            assert_eq!(redact(input), expected, "{input}");
        }
    }

    #[test]
    fn transfer_logs_lose_credentials_and_detail_lines() {
        // Realistic pg_restore output, as Heroku's transfer logs carry it.
        let lines = [
            "pg_restore: connecting to database for restore",
            "pg_restore: error: connection to server at \"ec2-1-2-3-4.compute-1.amazonaws.com\" \
             (1.2.3.4), port 5432 failed: FATAL:  password authentication failed for user \"u1\"",
            "pg_restore: error: could not execute query: ERROR:  could not create unique index \
             \"users_pkey\"\nDETAIL:  Key (email)=(alice@example.com) is duplicated.\nCommand \
             was: ALTER TABLE ONLY public.users ADD CONSTRAINT users_pkey PRIMARY KEY (email);",
            "pg_restore: error: COPY failed for table \"orders\": ERROR:  new row for relation \
             \"orders\" violates check constraint \"positive\" DETAIL:  Failing row contains (7, \
             -3, 4111111111111111).",
            "DETAIL:  Key (id)=(42) already exists.",
            "pg_dump: dumping contents of table \"public.users\" from \
             postgres://u1:p4ssw0rd@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d1",
            "could not connect: host=ec2 user=u1 password='p 4ss' dbname=d1",
        ];
        let out: Vec<String> = lines.iter().map(|l| transfer_log(l)).collect();
        let all = out.join("\n");
        for secret in [
            "alice@example.com",
            "4111111111111111",
            "(42)",
            "p4ssw0rd",
            "p 4ss",
            "'p",
        ] {
            assert!(!all.contains(secret), "{secret} in\n{all}");
        }
        assert_eq!(out[0], lines[0]);
        assert!(
            out[1].contains("password authentication failed"),
            "{}",
            out[1]
        );
        assert!(
            out[2].contains("could not create unique index"),
            "{}",
            out[2]
        );
        assert!(out[2].contains("Command was: ALTER TABLE"), "{}", out[2]);
        assert!(
            out[2].contains("DETAIL: (removed by pgmigrate"),
            "{}",
            out[2]
        );
        assert!(
            out[3].starts_with("pg_restore: error: COPY failed"),
            "{}",
            out[3]
        );
        assert!(out[3].contains("DETAIL: (removed"), "{}", out[3]);
        assert!(out[4].starts_with("DETAIL: (removed"), "{}", out[4]);
        assert!(
            out[5].contains("postgres://REDACTED@ec2-1-2-3-4"),
            "{}",
            out[5]
        );
        assert!(out[6].contains("password=REDACTED dbname=d1"), "{}", out[6]);
    }
}
