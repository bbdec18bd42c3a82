//! A netrc file (`~/.netrc`, or the file `NETRC` names), as older
//! `heroku login`s write the API token into it: its `machine`, `default`,
//! `login`, `password`, `account` and `macdef` entries.

/// One `machine` (or `default`) entry of a netrc file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct NetrcEntry {
    /// `None` for the `default` entry.
    pub(super) machine: Option<String>,
    pub(super) login: Option<String>,
    pub(super) password: Option<String>,
    pub(super) account: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct Netrc {
    pub(super) entries: Vec<NetrcEntry>,
}

/// Where and why a netrc file does not parse. `what` never quotes the
/// file's words (one of them may be a token).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NetrcError {
    pub(super) line: usize,
    pub(super) what: String,
}

/// Splits netrc text into words, tracking line numbers.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            text,
            pos: 0,
            line: 1,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Skips whitespace; returns the next word and its line. A word is a
    /// run of non-whitespace characters, or a double-quoted string in
    /// which `\` escapes the next character.
    fn word(&mut self) -> Result<Option<(String, usize)>, NetrcError> {
        for c in self.rest().chars() {
            if !c.is_whitespace() {
                break;
            }
            if c == '\n' {
                self.line += 1;
            }
            self.pos += c.len_utf8();
        }
        let line = self.line;
        let mut chars = self.rest().char_indices();
        match chars.next() {
            None => Ok(None),
            Some((_, '"')) => {
                let mut word = String::new();
                let mut escaped = false;
                for (i, c) in chars {
                    if c == '\n' {
                        self.line += 1;
                    }
                    if escaped {
                        word.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        self.pos += i + 1;
                        return Ok(Some((word, line)));
                    } else {
                        word.push(c);
                    }
                }
                Err(NetrcError {
                    line,
                    what: "a quoted word is not closed by '\"'".into(),
                })
            }
            Some(_) => {
                let len = self
                    .rest()
                    .find(char::is_whitespace)
                    .unwrap_or(self.rest().len());
                let word = self.rest()[..len].to_owned();
                self.pos += len;
                Ok(Some((word, line)))
            }
        }
    }

    /// Skips to the start of the next line.
    fn skip_line(&mut self) {
        match self.rest().find('\n') {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
            }
            None => self.pos = self.text.len(),
        }
    }

    /// Skips a `macdef` body: the rest of the current line, then every line
    /// up to and including the first blank one (or the end of the file).
    fn skip_macdef(&mut self) {
        self.skip_line();
        while self.pos < self.text.len() {
            let end = self.rest().find('\n').unwrap_or(self.rest().len());
            let blank = self.rest()[..end].trim().is_empty();
            self.skip_line();
            if blank {
                break;
            }
        }
    }
}

impl Netrc {
    pub(super) fn parse(text: &str) -> Result<Netrc, NetrcError> {
        let mut lexer = Lexer::new(text);
        let mut netrc = Netrc::default();
        let mut current: Option<NetrcEntry> = None;
        while let Some((word, line)) = lexer.word()? {
            if word.starts_with('#') {
                // A comment runs to the end of its line. (Only where a
                // keyword is expected: a password may start with '#'.)
                lexer.skip_line();
                continue;
            }
            let value = |lexer: &mut Lexer, keyword: &str| -> Result<String, NetrcError> {
                match lexer.word()? {
                    Some((v, _)) => Ok(v),
                    None => Err(NetrcError {
                        line,
                        what: format!("`{keyword}` has no value"),
                    }),
                }
            };
            match word.as_str() {
                "machine" => {
                    let name = value(&mut lexer, "machine")?;
                    netrc.entries.extend(current.take());
                    current = Some(NetrcEntry {
                        machine: Some(name),
                        ..NetrcEntry::default()
                    });
                }
                "default" => {
                    netrc.entries.extend(current.take());
                    current = Some(NetrcEntry::default());
                }
                "login" | "password" | "account" => {
                    let v = value(&mut lexer, &word)?;
                    let Some(entry) = current.as_mut() else {
                        return Err(NetrcError {
                            line,
                            what: format!("`{word}` comes before any `machine` or `default`"),
                        });
                    };
                    let slot = match word.as_str() {
                        "login" => &mut entry.login,
                        "password" => &mut entry.password,
                        _ => &mut entry.account,
                    };
                    *slot = Some(v);
                }
                "macdef" => {
                    value(&mut lexer, "macdef")?;
                    lexer.skip_macdef();
                }
                _ => {
                    // A keyword other tools write (`port`, `protocol`,
                    // `method`, `org`, ...): a `key value` pair, as the
                    // heroku CLI's own parser reads every line. Skipped.
                    // The word may be a secret: the error does not quote it.
                    if lexer.word()?.is_none() {
                        return Err(NetrcError {
                            line,
                            what: "the last keyword has no value".into(),
                        });
                    }
                }
            }
        }
        netrc.entries.extend(current);
        Ok(netrc)
    }

    /// The first entry for `machine` (host names compare case-insensitively).
    /// Never the `default` entry: its password is for whatever host has no
    /// entry of its own, not a Heroku token (the heroku CLI ignores it too).
    pub(super) fn lookup(&self, machine: &str) -> Option<&NetrcEntry> {
        self.entries.iter().find(|e| {
            e.machine
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(machine))
        })
    }
}
