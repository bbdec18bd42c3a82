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

use super::netrc::Netrc;

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
        "the Heroku API token from {from} cannot be used: {problem}. The token is not shown. \
         Set it again without the stray character (e.g. export HEROKU_API_KEY=$(heroku \
         auth:token)), or fix it where it comes from."
    )]
    BadToken {
        /// Where the token came from (`HEROKU_API_KEY`, the netrc file, …).
        from: String,
        /// What is wrong with it, never the token itself.
        problem: String,
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
    let usable = |token: Token, from: String| match super::token::header_problem(&token) {
        None => Ok(token),
        Some(problem) => Err(ConfigError::BadToken { from, problem }),
    };
    if let Some(key) = non_empty(env, "HEROKU_API_KEY") {
        return usable(Token::new(key), "HEROKU_API_KEY".into());
    }
    let mut tried = vec![];
    match token_from_netrc(env, home, machine)? {
        Ok((token, path)) => return usable(token, format!("the netrc file {}", path.display())),
        Err(why) => tried.push(why),
    }
    match non_empty(env, "PATH")
        .as_deref()
        .and_then(super::cli_token::find_heroku)
    {
        None => tried.push("no `heroku` command on PATH to ask `heroku auth:token`".into()),
        Some(exe) => match super::cli_token::auth_token(&exe, super::cli_token::TIMEOUT) {
            Ok(token) => return usable(token, "`heroku auth:token`".into()),
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
) -> Result<Result<(Token, PathBuf), String>, ConfigError> {
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
        Some(p) if !p.is_empty() => Ok(Ok((Token::new(p), path))),
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

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
