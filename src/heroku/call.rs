//! One request as the retry loop repeats it ([`Call`]), the percent-encoding
//! of its path, and the decoding of a 2xx answer ([`Reply`]).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    Platform,
    Data,
}

/// Which failures a request may be retried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Safe to repeat: retried on 429, 5xx and transport errors.
    Transient,
    /// Creates something: retried only on 429 (refused before acting).
    RateLimitOnly,
}

/// One request, as the retry loop repeats it.
pub(super) struct Call {
    pub(super) method: &'static str,
    pub(super) api: Api,
    /// Percent-encoded path (and query) below the API base.
    pub(super) path: String,
    /// Why the path cannot be sent (a bad name), if it cannot.
    pub(super) path_problem: Option<String>,
    pub(super) range: Option<String>,
    /// JSON body. It may carry secrets (database URLs): never logged.
    pub(super) body: Option<Vec<u8>>,
    pub(super) retry: Retry,
    /// Send the token as HTTP Basic (`:token`) rather than Bearer, as the
    /// Data API's `/postgres/v0` endpoints want it.
    pub(super) basic_auth: bool,
}

impl Call {
    pub(super) fn new(method: &'static str, api: Api, segments: &[&str]) -> Call {
        let (path, path_problem) = encode_path(segments);
        Call {
            method,
            api,
            path,
            path_problem,
            range: None,
            body: None,
            retry: Retry::Transient,
            basic_auth: false,
        }
    }

    pub(super) fn query(mut self, query: &str) -> Call {
        self.path.push('?');
        self.path.push_str(query);
        self
    }

    pub(super) fn retry(mut self, retry: Retry) -> Call {
        self.retry = retry;
        self
    }

    pub(super) fn body<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Call, ApiError> {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(bytes);
                Ok(self)
            }
            Err(e) => Err(self.not_sent(format!("cannot encode the request body ({e})"))),
        }
    }

    pub(super) fn not_sent(&self, detail: String) -> ApiError {
        ApiError::NotSent {
            method: self.method,
            path: self.path.clone(),
            detail,
        }
    }
}

/// Joins percent-encoded path segments; every byte outside
/// `A-Z a-z 0-9 - . _ ~` is encoded (like JavaScript's
/// `encodeURIComponent`, so `heroku-postgresql:standard-0` becomes
/// `heroku-postgresql%3Astandard-0`). Returns a problem for an empty, `.` or
/// `..` segment, which a URL parser would drop or resolve.
pub(super) fn encode_path(segments: &[&str]) -> (String, Option<String>) {
    let mut path = String::new();
    let mut problem = None;
    for segment in segments {
        if matches!(*segment, "" | "." | "..") && problem.is_none() {
            problem = Some(format!(
                "{segment:?} is not a valid name for a path segment"
            ));
        }
        path.push('/');
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
    }
    (path, problem)
}

/// What came back for one request that Heroku answered 2xx.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) request_id: Option<String>,
    pub(super) next_range: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) body: String,
}

pub(super) fn decode_error(call: &Call, reply: &Reply, detail: String) -> ApiError {
    ApiError::Decode {
        method: call.method,
        path: call.path.clone(),
        status: reply.status,
        request_id: reply.request_id.clone(),
        detail,
    }
}

/// Decodes a 2xx answer. The error detail never quotes the body (it may
/// hold config var values or database URLs).
pub(super) fn decode<T: DeserializeOwned>(call: &Call, reply: &Reply) -> Result<T, ApiError> {
    serde_json::from_str(&reply.body).map_err(|e| {
        use serde_json::error::Category;
        let at = format!("line {} column {}", e.line(), e.column());
        let detail = match e.classify() {
            Category::Syntax | Category::Eof => format!(
                "the body is not JSON ({} bytes, Content-Type {}; error at {at})",
                reply.body.len(),
                reply.content_type.as_deref().unwrap_or("none"),
            ),
            Category::Data if e.to_string().starts_with("missing field") => e.to_string(),
            Category::Data => format!("a value has an unexpected type or shape ({at})"),
            Category::Io => e.to_string(),
        };
        decode_error(call, reply, detail)
    })
}
