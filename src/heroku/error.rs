//! [`ApiError`], what a failed Heroku API call says, and the parsing of
//! Heroku's error bodies.

use serde::Deserialize;

/// How much of a non-JSON error body an [`ApiError::Http`] keeps.
pub(super) const MESSAGE_MAX_CHARS: usize = 200;

/// A Heroku API call that failed. Every variant names the method and the
/// path (percent-encoded, with its query if any; never the host, a header
/// or a body).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Heroku answered with an error status (4xx or 5xx).
    #[error(
        "{method} {path}: HTTP {status}{}: {}{}",
        id_part(id.as_deref()),
        message_part(message),
        request_id_part(request_id.as_deref())
    )]
    Http {
        method: &'static str,
        path: String,
        status: u16,
        /// Heroku's error id (`not_found`, `invalid_params`,
        /// `confirmation_required`, `rate_limit`, ...).
        id: Option<String>,
        /// Heroku's error message, or the first 200 characters of a body
        /// that is not Heroku's JSON error.
        message: String,
        request_id: Option<String>,
    },

    /// No answer: the connection failed, was reset, or timed out. The
    /// request may or may not have reached Heroku.
    #[error("{method} {path}: no answer from Heroku: {detail}")]
    Transport {
        method: &'static str,
        path: String,
        detail: String,
    },

    /// Heroku answered 2xx but with a body that is not the JSON expected.
    #[error(
        "{method} {path}: HTTP {status}, but the answer is not what pgmigrate expects: \
         {detail}{}",
        request_id_part(request_id.as_deref())
    )]
    Decode {
        method: &'static str,
        path: String,
        status: u16,
        request_id: Option<String>,
        detail: String,
    },

    /// Heroku answered with a redirect, which pgmigrate never follows (the
    /// token must not go to another host).
    #[error(
        "{method} {path}: HTTP {status} redirect to {} refused: pgmigrate does not follow \
         redirects with the API token; check HEROKU_HOST and HEROKU_DATA_HOST",
        location_host.as_deref().unwrap_or("an unnamed location")
    )]
    Redirect {
        method: &'static str,
        path: String,
        status: u16,
        /// The host of the `Location` header (only the host: the rest may
        /// carry a secret).
        location_host: Option<String>,
    },

    /// pgmigrate refused to send the request at all (a name that cannot be
    /// a path segment, a body that cannot be encoded, a base URL that
    /// would carry the token over plain http). Nothing was sent.
    #[error("{method} {path}: not sent: {detail}")]
    NotSent {
        method: &'static str,
        path: String,
        detail: String,
    },
}

fn id_part(id: Option<&str>) -> String {
    id.map(|id| format!(" {id}")).unwrap_or_default()
}

fn message_part(message: &str) -> &str {
    if message.is_empty() {
        "(no message)"
    } else {
        message
    }
}

fn request_id_part(request_id: Option<&str>) -> String {
    request_id
        .map(|r| format!(" (Request-Id {r})"))
        .unwrap_or_default()
}

impl ApiError {
    /// The HTTP method of the failed request.
    pub fn method(&self) -> &'static str {
        match self {
            ApiError::Http { method, .. }
            | ApiError::Transport { method, .. }
            | ApiError::Decode { method, .. }
            | ApiError::Redirect { method, .. }
            | ApiError::NotSent { method, .. } => method,
        }
    }

    /// The path of the failed request (percent-encoded, with its query).
    pub fn path(&self) -> &str {
        match self {
            ApiError::Http { path, .. }
            | ApiError::Transport { path, .. }
            | ApiError::Decode { path, .. }
            | ApiError::Redirect { path, .. }
            | ApiError::NotSent { path, .. } => path,
        }
    }

    /// The HTTP status Heroku answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Http { status, .. }
            | ApiError::Decode { status, .. }
            | ApiError::Redirect { status, .. } => Some(*status),
            ApiError::Transport { .. } | ApiError::NotSent { .. } => None,
        }
    }

    /// Heroku's error id (`not_found`, `confirmation_required`, ...).
    pub fn error_id(&self) -> Option<&str> {
        match self {
            ApiError::Http { id, .. } => id.as_deref(),
            _ => None,
        }
    }

    /// The `Request-Id` of Heroku's answer (support asks for it).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Http { request_id, .. } | ApiError::Decode { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// Heroku answered 404: the app, add-on, attachment or transfer does not
    /// exist (or the token may not see it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Http { status: 404, .. })
    }

    /// The request certainly had no effect: Heroku refused it with a 4xx
    /// (including 429), or pgmigrate never sent it. False for 5xx, transport
    /// errors, redirects and undecodable 2xx: those may have acted.
    pub fn not_applied(&self) -> bool {
        match self {
            ApiError::Http { status, .. } => (400..500).contains(status),
            ApiError::NotSent { .. } => true,
            _ => false,
        }
    }

    /// Trying again later may succeed: 429, 5xx, or no answer at all.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Http { status, .. } => *status == 429 || (500..600).contains(status),
            ApiError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// Heroku's error body.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Heroku's `{"id", "message"}`, or no id and the start of the text. The
/// message is redacted here, once, so that no credential an error body
/// echoes can reach a log line, an error or the journal.
pub(super) fn parse_error_body(text: &str) -> (Option<String>, String) {
    let (id, message) = parse_error_body_raw(text);
    (id, crate::secrets::redact(&message))
}

fn parse_error_body_raw(text: &str) -> (Option<String>, String) {
    if let Ok(ErrorBody { id, message }) = serde_json::from_str::<ErrorBody>(text) {
        return (id, message.unwrap_or_default());
    }
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MESSAGE_MAX_CHARS)
        .collect();
    (None, one_line)
}
