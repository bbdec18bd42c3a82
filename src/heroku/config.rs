//! Where pgmigrate talks to Heroku and with which credential: the Platform
//! and Data API base URLs (from `HEROKU_HOST`, `HEROKU_DATA_HOST`,
//! `HEROKU_POSTGRESQL_HOST`), the API token (from `HEROKU_API_KEY`, the
//! `~/.netrc` that older `heroku login`s write, else `heroku auth:token`,
//! which also reads the OS keychain where CLI 11 keeps it), and the rule
//! that the token only ever goes to a Heroku API host over https, or to
//! this machine's loopback (plain http allowed there), as the official CLI
//! decides (heroku/heroku-cli-command `src/api-client.ts`,
//! `authorizationAllowed`).
//!
//! Nothing here touches the network; everything reads its environment
//! through a lookup function so that tests can pass a map.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use url::{Host, Url};

/// The Platform API base when `HEROKU_HOST` is not set.
pub const DEFAULT_PLATFORM_URL: &str = "https://api.heroku.com";
/// The Data API (Heroku Postgres) base when no override is set.
pub const DEFAULT_DATA_URL: &str = "https://api.data.heroku.com";
/// The `~/.netrc` machine whose password is the API token, when
/// `HEROKU_HOST` is not set.
pub const NETRC_MACHINE: &str = "api.heroku.com";

/// The domains of Heroku's APIs: the token goes to these and their
/// subdomains only (and to loopback). FACT: heroku/heroku-cli-command
/// `src/api-client.ts` `ALLOWED_HEROKU_DOMAINS`.
pub const HEROKU_DOMAINS: [&str; 4] = [
    "heroku.com",
    "herokai.com",
    "herokuspace.com",
    "herokudev.com",
];

/// A problem with the environment pgmigrate was started in: where Heroku is,
/// or the API token. Each message names the problem and the fix, and none
/// ever contains the token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no Heroku API token: HEROKU_API_KEY is not set; {}. Log in with `heroku login` \
         (pgmigrate then asks `heroku auth:token`, which also finds a token the CLI keeps in \
         the OS keychain), or set HEROKU_API_KEY (e.g. export HEROKU_API_KEY=$(heroku \
         auth:token)).",
        tried.join("; ")
    )]
    NoToken {
        /// Where else pgmigrate looked, and what it found there (never the
        /// token or a word of the netrc file).
        tried: Vec<String>,
    },

    #[error(
        "cannot read the netrc file {}: fix its permissions (it should be readable by you \
         only), point NETRC at a readable file, or set HEROKU_API_KEY instead.",
        path.display()
    )]
    NetrcUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the netrc file {} is malformed at line {line}: {what}. Fix that line (or run `heroku \
         login` again to rewrite it), or set HEROKU_API_KEY instead.",
        path.display()
    )]
    NetrcMalformed {
        path: PathBuf,
        line: usize,
        what: String,
    },

    #[error(
        "{var}={value:?} is not a usable Heroku API address: {problem}. Give a host name \
         (e.g. {var}=heroku.com) or a full base URL (e.g. {var}=https://api.heroku.com), or \
         unset {var} to use Heroku's own API."
    )]
    BadUrl {
        var: &'static str,
        value: String,
        problem: String,
    },

    #[error(
        "{var}={value:?} would send the Heroku API token over plain http to {host}, which is not \
         this machine: use an https:// URL (plain http:// is accepted only for 127.0.0.1, ::1 \
         or localhost), or unset {var}."
    )]
    Insecure {
        var: &'static str,
        value: String,
        host: String,
    },

    #[error(
        "{var}={value:?} would send the Heroku API token to {host}, which is not a Heroku API \
         host: pgmigrate sends the token only to Heroku's domains (heroku.com, herokai.com, \
         herokuspace.com, herokudev.com and their subdomains) over https, or to this machine \
         (127.0.0.1, ::1, localhost), as the heroku CLI does. Unset {var} to use Heroku's own \
         API, or point it at a Heroku host."
    )]
    NotHeroku {
        var: &'static str,
        value: String,
        host: String,
    },
}

/// The base URLs of the two Heroku APIs pgmigrate calls. Neither ends with
/// a slash (a base without a path is kept as the bare origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The Platform API (`https://api.heroku.com`).
    pub platform: Url,
    /// The Data API of Heroku Postgres (`https://api.data.heroku.com`).
    pub data: Url,
}

impl Endpoints {
    /// Heroku's own APIs.
    pub fn heroku() -> Endpoints {
        Endpoints {
            platform: parse_fixed(DEFAULT_PLATFORM_URL),
            data: parse_fixed(DEFAULT_DATA_URL),
        }
    }

    /// Reads the endpoints from the environment. `env` looks a variable up
    /// (tests pass a closure over a map; production passes
    /// `|k| std::env::var(k).ok()`); an empty value counts as unset.
    ///
    /// - `HEROKU_HOST` unset: the Platform API is `https://api.heroku.com`.
    ///   A value starting with `http://` or `https://` is the full base URL;
    ///   a bare host `H` means `https://api.H`, as in the official CLI.
    /// - `HEROKU_DATA_HOST` (else `HEROKU_POSTGRESQL_HOST`): a full
    ///   `http(s)://` URL is taken as it is; a bare host name replaces only
    ///   the host of the Platform API base, keeping its scheme and port (as
    ///   the official CLI does).
    /// - Neither data variable set: if `HEROKU_HOST` was a full URL, the
    ///   Data API base is **the same URL as the Platform API base**: one
    ///   local server (a sandbox, a recording proxy) serves both APIs, whose
    ///   paths do not overlap (`/client/v11/...` is the Data API). Otherwise
    ///   it is `https://api.data.heroku.com`.
    ///
    /// The token goes to both bases, so both must be a Heroku API host
    /// ([`HEROKU_DOMAINS`] or a subdomain) over `https`, or a loopback host
    /// (127.0.0.0/8, ::1, `localhost`) over `http` or `https`. Any other
    /// host is a [`ConfigError::NotHeroku`]; plain http to a Heroku host is
    /// a [`ConfigError::Insecure`].
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoints, ConfigError> {
        let (platform, platform_is_url) = match non_empty(env, "HEROKU_HOST") {
            None => (parse_fixed(DEFAULT_PLATFORM_URL), false),
            Some(value) => {
                if has_http_scheme(&value) {
                    (parse_base("HEROKU_HOST", &value, &value)?, true)
                } else {
                    check_bare_host("HEROKU_HOST", &value)?;
                    let full = format!("https://api.{value}");
                    (parse_base("HEROKU_HOST", &value, &full)?, false)
                }
            }
        };

        let data_var = ["HEROKU_DATA_HOST", "HEROKU_POSTGRESQL_HOST"]
            .into_iter()
            .find_map(|var| non_empty(env, var).map(|value| (var, value)));
        let data = match data_var {
            Some((var, value)) if has_http_scheme(&value) => parse_base(var, &value, &value)?,
            Some((var, value)) => {
                // `host` or `host:port`: replaces the host (and the port,
                // when given) of the Platform API base, keeping its scheme.
                let (host, port) = match value.rsplit_once(':') {
                    Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                        (h.to_string(), p.parse::<u16>().ok())
                    }
                    _ => (value.clone(), None),
                };
                check_bare_host(var, &host)?;
                let mut data = platform.clone();
                if let Some(port) = port {
                    let _ = data.set_port(Some(port));
                }
                data.set_host(Some(&host))
                    .map_err(|e| ConfigError::BadUrl {
                        var,
                        value: value.clone(),
                        problem: format!("not a valid host name ({e})"),
                    })?;
                check_secure(var, &value, &data)?;
                data
            }
            None if platform_is_url => platform.clone(),
            None => parse_fixed(DEFAULT_DATA_URL),
        };

        Ok(Endpoints { platform, data })
    }

    /// The netrc `machine` that holds the token for these endpoints: the
    /// Platform API's host, with its port when the URL names one (the
    /// official CLI's `vars.apiHost`: `api.heroku.com` by default).
    pub fn netrc_machine(&self) -> String {
        let host = self.platform.host_str().unwrap_or(NETRC_MACHINE);
        match self.platform.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

pub use super::token::Token;

/// Finds the API token: `HEROKU_API_KEY` (trimmed, if not empty), else the
/// password of `machine <machine>` in the netrc file (`$NETRC` if set, else
/// `home/.netrc`; `machine` is [`Endpoints::netrc_machine`]; a `default`
/// entry is never used: its password is for some other host), else what
/// `heroku auth:token` prints, when a `heroku` executable is on `PATH` (CLI
/// 11 keeps the token in the OS keychain, so `~/.netrc` is often empty).
///
/// A missing `~/.netrc`, one without that machine or without its password,
/// and a `heroku` that is absent, fails, hangs or prints nothing all mean
/// "look further"; [`ConfigError::NoToken`] says what each gave. A netrc
/// that cannot be read or parsed, or a missing file that `NETRC` names, is
/// an error of its own (the user must fix it).
pub fn token_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    machine: &str,
) -> Result<Token, ConfigError> {
    if let Some(key) = non_empty(env, "HEROKU_API_KEY") {
        return Ok(Token::new(key));
    }
    let mut tried = vec![];
    match token_from_netrc(env, home, machine)? {
        Ok(token) => return Ok(token),
        Err(why) => tried.push(why),
    }
    match non_empty(env, "PATH")
        .as_deref()
        .and_then(super::cli_token::find_heroku)
    {
        None => tried.push("no `heroku` command on PATH to ask `heroku auth:token`".into()),
        Some(exe) => match super::cli_token::auth_token(&exe, super::cli_token::TIMEOUT) {
            Ok(token) => return Ok(token),
            Err(why) => tried.push(why),
        },
    }
    Err(ConfigError::NoToken { tried })
}

/// The netrc step of [`token_from_env`]: `Ok(Ok(token))`, `Ok(Err(what was
/// found instead))`, or an error that stops the search.
fn token_from_netrc(
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    machine: &str,
) -> Result<Result<Token, String>, ConfigError> {
    let (path, explicit) = match non_empty(env, "NETRC") {
        Some(p) => (PathBuf::from(p), true),
        None => match home {
            Some(home) => (home.join(".netrc"), false),
            None => return Ok(Err("no home directory, so no ~/.netrc".into())),
        },
    };
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(Err(format!("there is no {}", path.display())))
        }
        Err(source) => return Err(ConfigError::NetrcUnreadable { path, source }),
    };
    let netrc = match Netrc::parse(&text) {
        Ok(n) => n,
        Err(e) => {
            return Err(ConfigError::NetrcMalformed {
                path,
                line: e.line,
                what: e.what,
            })
        }
    };
    let Some(entry) = netrc.lookup(machine) else {
        let default = if netrc.entries.iter().any(|e| e.machine.is_none()) {
            " (its `default` entry is not used: its password is not meant for Heroku)"
        } else {
            ""
        };
        return Ok(Err(format!(
            "{} has no `machine {machine}` entry{default}",
            path.display()
        )));
    };
    match entry.password.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => Ok(Ok(Token::new(p))),
        _ => Ok(Err(format!(
            "the `machine {machine}` entry of {} has no password",
            path.display()
        ))),
    }
}

// ---------------------------------------------------------------------------
// URLs

fn non_empty(env: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    env(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn has_http_scheme(value: &str) -> bool {
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A URL that is a compile-time constant.
fn parse_fixed(url: &str) -> Url {
    // The constants above are valid URLs; a failure here is a bug in this
    // file, caught by the tests.
    Url::parse(url).expect("built-in Heroku URL parses")
}

/// Shows a value in an error with any `user:password@` part hidden.
fn shown(value: &str) -> String {
    match (value.find("://"), value.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let rest = &value[at + 1..];
            if value[s + 3..at].contains('/') {
                value.to_owned()
            } else {
                format!("{}<redacted>@{rest}", &value[..s + 3])
            }
        }
        _ => value.to_owned(),
    }
}

fn check_bare_host(var: &'static str, value: &str) -> Result<(), ConfigError> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#' | ':'))
    {
        return Err(ConfigError::BadUrl {
            var,
            value: shown(value),
            problem: format!(
                "a bare host name cannot contain {c:?} (a port or path needs a full \
                 http(s):// URL)"
            ),
        });
    }
    Ok(())
}

/// Parses a base URL from `full` (derived from the variable's `value`),
/// checks it, and strips its trailing slash.
fn parse_base(var: &'static str, value: &str, full: &str) -> Result<Url, ConfigError> {
    let bad = |problem: String| ConfigError::BadUrl {
        var,
        value: shown(value),
        problem,
    };
    let mut url = Url::parse(full).map_err(|e| bad(format!("it does not parse as a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("the scheme {:?} is not http(s)", url.scheme())));
    }
    if url.host().is_none() {
        return Err(bad("it has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "it contains a user name or password (the API token is sent as a header)".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a base URL cannot have a ?query or #fragment".into()));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    if trimmed.len() < url.path().len() {
        url.set_path(&trimmed);
    }
    check_secure(var, value, &url)?;
    Ok(url)
}

/// Whether a host name is one of Heroku's API domains or a subdomain of
/// one (FACT: heroku/heroku-cli-command `src/api-client.ts`
/// `authorizationAllowed`: `hostname.endsWith('.' + domain) || hostname
/// === domain`).
pub(crate) fn is_heroku_host(url: &Url) -> bool {
    let Some(Host::Domain(host)) = url.host() else {
        return false;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    HEROKU_DOMAINS.iter().any(|d| {
        host == *d
            || host
                .strip_suffix(d)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
    })
}

/// Whether a URL's host is this machine's loopback interface.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Whether the token may be sent to this URL: a Heroku API host over
/// https, or a loopback host over http or https. The official CLI's rule
/// (`authorizationAllowed`): `safeProtocol && (isHerokuApi || isLocalhost)`.
pub(crate) fn may_carry_token(url: &Url) -> bool {
    match url.scheme() {
        "https" => is_heroku_host(url) || is_loopback(url),
        "http" => is_loopback(url),
        _ => false,
    }
}

fn check_secure(var: &'static str, value: &str, url: &Url) -> Result<(), ConfigError> {
    if may_carry_token(url) {
        return Ok(());
    }
    let host = url.host_str().unwrap_or("").to_owned();
    let value = shown(value);
    if is_heroku_host(url) {
        Err(ConfigError::Insecure { var, value, host })
    } else {
        Err(ConfigError::NotHeroku { var, value, host })
    }
}

// ---------------------------------------------------------------------------
// netrc

/// One `machine` (or `default`) entry of a netrc file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct NetrcEntry {
    /// `None` for the `default` entry.
    machine: Option<String>,
    login: Option<String>,
    password: Option<String>,
    account: Option<String>,
}

#[derive(Debug, Default)]
struct Netrc {
    entries: Vec<NetrcEntry>,
}

/// Where and why a netrc file does not parse. `what` never quotes the
/// file's words (one of them may be a token).
#[derive(Debug, PartialEq, Eq)]
struct NetrcError {
    line: usize,
    what: String,
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
    fn parse(text: &str) -> Result<Netrc, NetrcError> {
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
    fn lookup(&self, machine: &str) -> Option<&NetrcEntry> {
        self.entries.iter().find(|e| {
            e.machine
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(machine))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn endpoints(pairs: &[(&str, &str)]) -> Result<Endpoints, ConfigError> {
        Endpoints::from_env(&env_of(pairs))
    }

    fn urls(pairs: &[(&str, &str)]) -> (String, String) {
        let e = endpoints(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
        (e.platform.to_string(), e.data.to_string())
    }

    #[test]
    fn defaults_are_herokus_apis() {
        assert_eq!(
            urls(&[]),
            (
                "https://api.heroku.com/".into(),
                "https://api.data.heroku.com/".into()
            )
        );
        assert_eq!(endpoints(&[]).unwrap(), Endpoints::heroku());
        // Empty counts as unset.
        assert_eq!(
            urls(&[("HEROKU_HOST", " "), ("HEROKU_DATA_HOST", "")]),
            urls(&[])
        );
    }

    #[test]
    fn bare_heroku_host_means_api_dot_host() {
        assert_eq!(
            urls(&[("HEROKU_HOST", "heroku.com")]),
            (
                "https://api.heroku.com/".into(),
                "https://api.data.heroku.com/".into()
            )
        );
        assert_eq!(
            urls(&[("HEROKU_HOST", "staging.herokudev.com")]).0,
            "https://api.staging.herokudev.com/"
        );
    }

    #[test]
    fn full_url_serves_both_apis_and_loses_trailing_slash() {
        let (p, d) = urls(&[("HEROKU_HOST", "http://127.0.0.1:5000/")]);
        assert_eq!(p, "http://127.0.0.1:5000/");
        assert_eq!(d, p);
        let e = endpoints(&[("HEROKU_HOST", "https://proxy.herokudev.com/heroku/")]).unwrap();
        assert_eq!(e.platform.as_str(), "https://proxy.herokudev.com/heroku");
        assert_eq!(e.data, e.platform);
        assert_eq!(
            urls(&[("HEROKU_HOST", "HTTP://LOCALHOST:8080")]).0,
            "http://localhost:8080/"
        );
    }

    #[test]
    fn data_host_rules() {
        // A bare data host replaces the host of the platform base only.
        assert_eq!(
            urls(&[
                ("HEROKU_HOST", "http://127.0.0.1:5000"),
                ("HEROKU_DATA_HOST", "localhost")
            ])
            .1,
            "http://localhost:5000/"
        );
        assert_eq!(
            urls(&[("HEROKU_DATA_HOST", "postgres-api.heroku.com")]).1,
            "https://postgres-api.heroku.com/"
        );
        // A full URL is taken as it is.
        assert_eq!(
            urls(&[
                ("HEROKU_HOST", "http://127.0.0.1:5000"),
                ("HEROKU_DATA_HOST", "http://[::1]:6000/")
            ])
            .1,
            "http://[::1]:6000/"
        );
        // HEROKU_POSTGRESQL_HOST is the fallback, HEROKU_DATA_HOST wins.
        assert_eq!(
            urls(&[("HEROKU_POSTGRESQL_HOST", "pg.herokai.com")]).1,
            "https://pg.herokai.com/"
        );
        assert_eq!(
            urls(&[
                ("HEROKU_POSTGRESQL_HOST", "pg.herokai.com"),
                ("HEROKU_DATA_HOST", "data.herokuspace.com")
            ])
            .1,
            "https://data.herokuspace.com/"
        );
        // A bare HEROKU_HOST does not move the Data API.
        assert_eq!(
            urls(&[("HEROKU_HOST", "herokudev.com")]).1,
            "https://api.data.heroku.com/"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:5000",
            "http://127.8.9.10",
            "http://[::1]:5000",
            "http://localhost",
            "https://localhost:8443",
            "https://api.heroku.com",
        ] {
            assert!(endpoints(&[("HEROKU_HOST", ok)]).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.heroku.com",
            "http://api.staging.herokudev.com:80",
        ] {
            let e = endpoints(&[("HEROKU_HOST", bad)]).unwrap_err();
            assert!(matches!(e, ConfigError::Insecure { .. }), "{bad}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains("HEROKU_HOST") && msg.contains(bad), "{msg}");
            assert!(msg.contains("https://"), "{msg}");
        }
        // The data API is held to the same rule, named by its variable.
        let e = endpoints(&[("HEROKU_DATA_HOST", "http://data.heroku.com")]).unwrap_err();
        assert!(matches!(e, ConfigError::Insecure { .. }), "{e:?}");
        assert!(e.to_string().contains("HEROKU_DATA_HOST"), "{e}");
        // A bare data host under a loopback http platform base stays http.
        let e = endpoints(&[
            ("HEROKU_HOST", "http://127.0.0.1:5000"),
            ("HEROKU_POSTGRESQL_HOST", "pg.heroku.com"),
        ])
        .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Insecure {
                    var: "HEROKU_POSTGRESQL_HOST",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_token_goes_only_to_heroku_hosts_or_loopback() {
        // FACT: heroku/heroku-cli-command src/api-client.ts
        // authorizationAllowed: https and (a Heroku domain, or one of its
        // subdomains), or loopback.
        for (value, ok) in [
            ("https://api.heroku.com", true),
            ("https://heroku.com", true),
            ("https://api.staging.herokudev.com", true),
            ("https://x.herokai.com", true),
            ("https://api.HEROKUSPACE.com", true),
            ("https://127.0.0.1:5000", true),
            ("https://evil.example", false),
            ("https://evilheroku.com", false),
            ("https://api.heroku.com.evil.example", false),
            ("https://heroku.community", false),
            ("http://example.com", false),
            ("http://10.0.0.1:5000", false),
            ("http://[::2]", false),
            ("http://localhost.evil.com", false),
            ("https://192.168.1.10", false),
        ] {
            let url = Url::parse(value).unwrap();
            assert_eq!(may_carry_token(&url), ok, "{value}");
            let e = endpoints(&[("HEROKU_HOST", value)]);
            assert_eq!(e.is_ok(), ok, "{value}: {e:?}");
            if !ok {
                let e = e.unwrap_err();
                assert!(matches!(e, ConfigError::NotHeroku { .. }), "{value}: {e:?}");
                let msg = e.to_string();
                assert!(msg.contains("HEROKU_HOST") && msg.contains(value), "{msg}");
                assert!(msg.contains("not a Heroku API host"), "{msg}");
                assert!(msg.contains("Unset HEROKU_HOST"), "{msg}");
            }
        }
        // A bare host is `api.<host>`: the same rule.
        let e = endpoints(&[("HEROKU_HOST", "example.com")]).unwrap_err();
        assert!(matches!(e, ConfigError::NotHeroku { .. }), "{e:?}");
        assert!(e.to_string().contains("api.example.com"), "{e}");
        // The Data API too, bare or full, named by its variable.
        for (var, value) in [
            ("HEROKU_DATA_HOST", "evil.example"),
            ("HEROKU_DATA_HOST", "https://evil.example"),
            ("HEROKU_POSTGRESQL_HOST", "pg.example.com"),
        ] {
            let e = endpoints(&[(var, value)]).unwrap_err();
            assert!(matches!(e, ConfigError::NotHeroku { .. }), "{value}: {e:?}");
            assert!(e.to_string().contains(var), "{e}");
        }
        // Loopback data host under a Heroku platform: allowed over https.
        assert!(endpoints(&[("HEROKU_DATA_HOST", "localhost")]).is_ok());
    }

    #[test]
    fn the_netrc_machine_is_the_configured_api_host() {
        let m = |pairs: &[(&str, &str)]| endpoints(pairs).unwrap().netrc_machine();
        assert_eq!(m(&[]), "api.heroku.com");
        assert_eq!(m(&[("HEROKU_HOST", "herokudev.com")]), "api.herokudev.com");
        assert_eq!(
            m(&[("HEROKU_HOST", "http://127.0.0.1:5000")]),
            "127.0.0.1:5000"
        );
        assert_eq!(
            m(&[("HEROKU_HOST", "https://api.heroku.com:443")]),
            "api.heroku.com"
        );
        assert_eq!(m(&[("HEROKU_HOST", "http://localhost")]), "localhost");
    }

    #[test]
    fn a_bare_data_host_may_carry_a_port() {
        let e = endpoints(&[
            ("HEROKU_HOST", "http://127.0.0.1:5000"),
            ("HEROKU_DATA_HOST", "127.0.0.1:5001"),
        ])
        .unwrap();
        assert_eq!(
            e.data.as_str().trim_end_matches('/'),
            "http://127.0.0.1:5001"
        );
        let e = endpoints(&[
            ("HEROKU_HOST", "http://127.0.0.1:5000"),
            ("HEROKU_DATA_HOST", "localhost"),
        ])
        .unwrap();
        assert_eq!(
            e.data.as_str().trim_end_matches('/'),
            "http://localhost:5000"
        );
    }

    #[test]
    fn bad_urls_are_named() {
        for (var, bad) in [
            ("HEROKU_HOST", "https://"),
            ("HEROKU_HOST", "heroku.com/path"),
            ("HEROKU_HOST", "heroku.com:8080"),
            ("HEROKU_HOST", "https://api.heroku.com/?x=1"),
            ("HEROKU_DATA_HOST", "bad host"),
            ("HEROKU_DATA_HOST", "https://exa mple.com"),
        ] {
            let e = endpoints(&[(var, bad)]).unwrap_err();
            assert!(matches!(e, ConfigError::BadUrl { .. }), "{bad}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(var), "{msg}");
            assert!(msg.contains("unset"), "{msg}");
        }
        let e = endpoints(&[("HEROKU_HOST", "https://me:s3cret@api.heroku.com")]).unwrap_err();
        assert!(matches!(e, ConfigError::BadUrl { .. }));
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    // --- token -----------------------------------------------------------

    fn home_with_netrc(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".netrc"), text).expect("write netrc");
        dir
    }

    fn token_from(pairs: &[(&str, &str)], netrc: Option<&str>) -> Result<Token, ConfigError> {
        let dir = home_with_netrc("");
        if let Some(text) = netrc {
            std::fs::write(dir.path().join(".netrc"), text).expect("write netrc");
        } else {
            std::fs::remove_file(dir.path().join(".netrc")).expect("rm");
        }
        token_from_env(&env_of(pairs), Some(dir.path()), NETRC_MACHINE)
    }

    #[test]
    fn token_is_redacted() {
        let t = Token::new(" abc-123\n");
        assert_eq!(t.expose(), "abc-123");
        assert_eq!(format!("{t}"), "<redacted>");
        assert_eq!(format!("{t:?}"), "<redacted>");
    }

    #[test]
    fn api_key_env_wins() {
        let t = token_from(
            &[("HEROKU_API_KEY", "  from-env  ")],
            Some("machine api.heroku.com password from-netrc"),
        )
        .unwrap();
        assert_eq!(t.expose(), "from-env");
        // Blank means unset.
        let t = token_from(
            &[("HEROKU_API_KEY", "  ")],
            Some("machine api.heroku.com password from-netrc"),
        )
        .unwrap();
        assert_eq!(t.expose(), "from-netrc");
    }

    #[test]
    fn netrc_with_several_machines_comments_and_macdef() {
        let text = "# written by heroku login\n\
                    machine git.heroku.com\n  login me@example.com\n  password git-token\n\
                    macdef init\ncd /pub\nmachine api.heroku.com password not-this\n\n\
                    machine example.com login x password y # trailing comment\n\
                    machine API.Heroku.com\n  login me@example.com\n  account acct\n  password \"the token\"\n\
                    machine api.heroku.com password second-entry-ignored\n";
        let t = token_from(&[], Some(text)).unwrap();
        assert_eq!(t.expose(), "the token");
    }

    #[test]
    fn netrc_single_line_and_hash_password() {
        let t = token_from(
            &[],
            Some("machine api.heroku.com login a@b.c password #hash-start"),
        )
        .unwrap();
        assert_eq!(t.expose(), "#hash-start");
    }

    #[test]
    fn netrc_default_entry_is_never_used() {
        let text = "machine other.com password other\ndefault login anon password fallback\n";
        let e = token_from(&[], Some(text)).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("`default` entry is not used"), "{msg}");
        assert!(msg.contains("machine api.heroku.com"), "{msg}");
        assert!(!msg.contains("fallback") && !msg.contains("anon"), "{msg}");
        let e = token_from(&[], Some("default password fallback\n")).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
        // A specific machine is used, whatever the order.
        let text = "default password fallback\nmachine api.heroku.com password specific\n";
        assert_eq!(token_from(&[], Some(text)).unwrap().expose(), "specific");
    }

    #[test]
    fn netrc_keywords_of_other_tools_are_ignored() {
        let text = "machine ftp.example.com login a password b port 21 protocol ftp\n\
                    machine api.heroku.com\n  login me@example.com\n  password tok\n  method \
                    interactive\n  org acme\n  port 443\n  protocol https\n\
                    machine git.heroku.com login me password tok2 account x\n";
        assert_eq!(token_from(&[], Some(text)).unwrap().expose(), "tok");
        let text = "port 22\nmachine api.heroku.com password tok port 443";
        assert_eq!(token_from(&[], Some(text)).unwrap().expose(), "tok");
        // A keyword without its value is still malformed, and not quoted.
        let e = token_from(&[], Some("machine api.heroku.com password t port")).unwrap_err();
        assert!(
            matches!(e, ConfigError::NetrcMalformed { line: 1, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn netrc_entry_of_the_configured_host() {
        let dir = home_with_netrc(
            "machine api.heroku.com password heroku-token\n\
             machine 127.0.0.1:5000 password local-token\n",
        );
        let env = env_of(&[]);
        let t = token_from_env(&env, Some(dir.path()), "127.0.0.1:5000").unwrap();
        assert_eq!(t.expose(), "local-token");
        let t = token_from_env(&env, Some(dir.path()), "api.heroku.com").unwrap();
        assert_eq!(t.expose(), "heroku-token");
        // The api.heroku.com token does not go to another host.
        let e = token_from_env(&env, Some(dir.path()), "api.herokudev.com").unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
        assert!(e.to_string().contains("machine api.herokudev.com"), "{e}");
    }

    #[test]
    fn netrc_env_var_names_the_file() {
        let dir = home_with_netrc("machine api.heroku.com password home");
        let other = dir.path().join("other-netrc");
        std::fs::write(&other, "machine api.heroku.com password other").unwrap();
        let other_s = other.to_string_lossy().into_owned();
        let t = token_from_env(
            &env_of(&[("NETRC", &other_s)]),
            Some(dir.path()),
            NETRC_MACHINE,
        )
        .unwrap();
        assert_eq!(t.expose(), "other");
        // A NETRC that names a missing file is an error, not "no token".
        let missing = dir.path().join("missing").to_string_lossy().into_owned();
        let e = token_from_env(
            &env_of(&[("NETRC", &missing)]),
            Some(dir.path()),
            NETRC_MACHINE,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::NetrcUnreadable { .. }), "{e:?}");
        assert!(e.to_string().contains(&missing), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn no_token_anywhere() {
        let e = token_from(&[], None).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }));
        let msg = e.to_string();
        assert!(msg.contains("HEROKU_API_KEY"), "{msg}");
        assert!(msg.contains("heroku login"), "{msg}");
        assert!(msg.contains("keychain"), "{msg}");
        assert!(
            msg.contains("there is no") && msg.contains(".netrc"),
            "{msg}"
        );
        assert!(msg.contains("no `heroku` command on PATH"), "{msg}");
        let e = token_from_env(&env_of(&[]), None, NETRC_MACHINE).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }));
    }

    #[test]
    #[cfg(unix)]
    fn heroku_auth_token_comes_after_the_netrc() {
        use std::os::unix::fs::PermissionsExt;
        let bin = tempfile::tempdir().unwrap();
        let exe = bin.path().join("heroku");
        std::fs::write(&exe, "#!/bin/sh\necho from-cli\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = bin.path().to_string_lossy().into_owned();
        // No netrc, a netrc without the machine, one with only `default`.
        for netrc in [
            None,
            Some("machine x password y"),
            Some("default password d"),
        ] {
            let t = token_from(&[("PATH", &path)], netrc).unwrap();
            assert_eq!(t.expose(), "from-cli", "{netrc:?}");
        }
        // The netrc entry wins; HEROKU_API_KEY wins over both.
        let t = token_from(
            &[("PATH", &path)],
            Some("machine api.heroku.com password n"),
        )
        .unwrap();
        assert_eq!(t.expose(), "n");
        let t = token_from(&[("PATH", &path), ("HEROKU_API_KEY", "k")], None).unwrap();
        assert_eq!(t.expose(), "k");
        // A failing CLI: no token, and the reason says so.
        std::fs::write(
            &exe,
            "#!/bin/sh\necho 'Error: not logged in' >&2\nexit 100\n",
        )
        .unwrap();
        let e = token_from(&[("PATH", &path)], None).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("auth:token` failed (exit status 100)"),
            "{msg}"
        );
        assert!(msg.contains("not logged in"), "{msg}");
    }

    #[test]
    fn netrc_unreadable() {
        // A directory where the file should be.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".netrc")).unwrap();
        let e = token_from_env(&env_of(&[]), Some(dir.path()), NETRC_MACHINE).unwrap_err();
        assert!(matches!(e, ConfigError::NetrcUnreadable { .. }), "{e:?}");
        assert!(e.to_string().contains(".netrc"));
    }

    #[test]
    fn netrc_without_machine_or_password() {
        let e = token_from(&[], Some("machine git.heroku.com password t0ken")).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
        assert!(e.to_string().contains("heroku login"));
        assert!(
            e.to_string().contains("no `machine api.heroku.com` entry"),
            "{e}"
        );
        assert!(!e.to_string().contains("t0ken"));
        let e = token_from(&[], Some("machine api.heroku.com login me@example.com")).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
        assert!(e.to_string().contains("has no password"), "{e}");
        let e = token_from(&[], Some("")).unwrap_err();
        assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
    }

    #[test]
    fn netrc_malformed() {
        let cases: &[(&str, usize)] = &[
            ("login me\nmachine api.heroku.com password x", 1),
            ("machine api.heroku.com\npassword", 2),
            ("machine api.heroku.com\n\npassword secret token-part", 3),
            ("machine api.heroku.com password \"unterminated\n", 1),
            ("machine", 1),
        ];
        for (text, line) in cases {
            let e = token_from(&[], Some(text)).unwrap_err();
            match &e {
                ConfigError::NetrcMalformed { line: l, .. } => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
            let msg = e.to_string();
            assert!(
                msg.contains(".netrc") && msg.contains("HEROKU_API_KEY"),
                "{msg}"
            );
            assert!(
                !msg.contains("token-part") && !msg.contains("secret"),
                "{msg}"
            );
        }
    }

    #[test]
    fn macdef_body_ends_at_blank_line_or_eof() {
        let n = Netrc::parse("macdef m\nmachine fake password no\n\nmachine a password b").unwrap();
        assert_eq!(n.entries.len(), 1);
        assert_eq!(n.entries[0].machine.as_deref(), Some("a"));
        let n = Netrc::parse("machine a password b\nmacdef m\nmachine c password d").unwrap();
        assert_eq!(n.entries.len(), 1);
        assert_eq!(n.entries[0].password.as_deref(), Some("b"));
    }
}
