//! The rules every Heroku request follows: the headers, a timeout, no
//! redirects, pagination, retries with capped exponential backoff and
//! rate-limit pacing ([`Client`], [`RetryPolicy`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use url::Url;

use super::call::{decode, decode_error, Api, Call, Reply, Retry};
use super::config::{may_carry_token, Endpoints, Token};
use super::error::{parse_error_body, ApiError};

/// The `Accept` header of every request (Platform API v3; the Data API
/// accepts it too, as the official CLI sends it to both).
pub const ACCEPT: &str = "application/vnd.heroku+json; version=3";
/// The `Range` of the first request of a Platform API list: the largest
/// page Heroku serves.
pub const FIRST_RANGE: &str = "id ..; max=1000";
/// The `Range` of the newest releases, newest first, as `heroku pg:promote`
/// reads them (heroku/cli `src/commands/pg/promote.ts`).
pub const NEWEST_RELEASES_RANGE: &str = "version ..; max=5, order=desc";
/// Below this many remaining requests (`RateLimit-Remaining`), the client
/// pauses before its next request.
pub const LOW_RATE_LIMIT: u64 = 20;
/// How long that pause is (at most; see [`RetryPolicy::max_delay`]). The
/// bucket refills at about 75 requests a minute, so one second is about one
/// request's worth.
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);
/// A list longer than this many pages is refused as a server fault.
const MAX_PAGES: usize = 1000;

/// How long requests may take and how they are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The timeout of one HTTP request (connect, send, and read the answer).
    pub request_timeout: Duration,
    /// No retry starts after this much time has passed since the first
    /// attempt, nor one whose wait would end after it: the last error is
    /// returned instead. A call therefore takes at most about `max_elapsed`
    /// plus one `request_timeout`.
    pub max_elapsed: Duration,
    /// The wait before the first retry; it doubles for each later one.
    pub base_delay: Duration,
    /// The longest wait between two attempts (except that a `Retry-After`
    /// from Heroku is honoured whatever its length, within `max_elapsed`).
    /// It also caps the pause taken when the rate limit runs low.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 30 s per request, retries for up to 120 s, waits of 250 ms doubling
    /// up to 8 s.
    fn default() -> RetryPolicy {
        RetryPolicy {
            request_timeout: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// The HTTP Basic Authorization value for `token` with an empty user, as
/// the Data API's `/postgres/v0` endpoints take it (and the sandbox checks).
pub fn basic_authorization(token: &str) -> String {
    use base64::Engine as _;
    let pair = format!(":{token}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A failed attempt, with the wait Heroku asked for.
struct Failure {
    /// Boxed: keeps the `Result` of every attempt small.
    error: Box<ApiError>,
    retry_after: Option<Duration>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure {
            error: Box::new(error),
            retry_after: None,
        }
    }
}

/// The Heroku API client. One value serves both APIs; it is `Send + Sync`
/// and keeps its connections open between requests.
pub struct Client {
    /// For requests that are safe to repeat: keeps connections alive.
    agent: ureq::Agent,
    /// For POSTs that create things: a fresh connection each time, so that
    /// a keep-alive connection the server has already closed can never turn
    /// a create into an "in doubt" failure.
    fresh_agent: ureq::Agent,
    endpoints: Endpoints,
    token: Token,
    policy: RetryPolicy,
    user_agent: String,
    requests: AtomicU64,
    rate_limit_low: AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .field("token", &self.token)
            .field("policy", &self.policy)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for these endpoints. They should come from
    /// [`Endpoints::from_env`], which enforces https; the client checks it
    /// again before each request and refuses ([`ApiError::NotSent`]) to send
    /// the token over plain http to a host that is not loopback.
    pub fn new(endpoints: Endpoints, token: Token, policy: RetryPolicy) -> Client {
        let build = |idle: usize| {
            ureq::AgentBuilder::new()
                .timeout(policy.request_timeout)
                .redirects(0)
                .max_idle_connections(idle)
                .max_idle_connections_per_host(idle)
                .build()
        };
        Client {
            agent: build(8),
            fresh_agent: build(0),
            endpoints,
            token,
            policy,
            user_agent: format!("pgmigrate/{}", env!("CARGO_PKG_VERSION")),
            requests: AtomicU64::new(0),
            rate_limit_low: AtomicBool::new(false),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// How many HTTP requests this client has sent (every attempt and every
    /// page counts).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Client {
    // --- machinery --------------------------------------------------------

    /// Sends `call` and decodes the JSON answer.
    pub(super) fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, ApiError> {
        let reply = self.send_call(&call)?;
        decode(&call, &reply)
    }

    /// Sends `call`, ignoring the body of the answer.
    pub(super) fn send(&self, call: Call) -> Result<Reply, ApiError> {
        self.send_call(&call)
    }

    /// Fetches every page of a list.
    pub(super) fn list<T: DeserializeOwned>(&self, mut call: Call) -> Result<Vec<T>, ApiError> {
        if call.api == Api::Platform {
            call.range = Some(FIRST_RANGE.to_owned());
        }
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.send_call(&call)?;
            let page: Vec<T> = decode(&call, &reply)?;
            all.extend(page);
            match reply.next_range {
                Some(ref next) if reply.status == 206 => {
                    if call.range.as_deref() == Some(next.as_str()) {
                        return Err(decode_error(
                            &call,
                            &reply,
                            "the Next-Range header repeats the range just fetched".into(),
                        ));
                    }
                    call.range = Some(next.clone());
                }
                _ => return Ok(all),
            }
        }
        Err(ApiError::Decode {
            method: call.method,
            path: call.path.clone(),
            status: 206,
            request_id: None,
            detail: format!("the list goes on for more than {MAX_PAGES} pages"),
        })
    }

    /// Builds the full URL of `call`.
    fn url(&self, call: &Call) -> Result<Url, ApiError> {
        if let Some(problem) = &call.path_problem {
            return Err(call.not_sent(problem.clone()));
        }
        let base = match call.api {
            Api::Platform => &self.endpoints.platform,
            Api::Data => &self.endpoints.data,
        };
        let joined = format!("{}{}", base.as_str().trim_end_matches('/'), call.path);
        let url = Url::parse(&joined)
            .map_err(|e| call.not_sent(format!("cannot build the URL ({e})")))?;
        if !may_carry_token(&url) {
            return Err(call.not_sent(format!(
                "the API token goes only to a Heroku API host over https (or to this machine), \
                 not to {}://{}",
                url.scheme(),
                url.host_str().unwrap_or("")
            )));
        }
        Ok(url)
    }

    /// Sends `call` until it succeeds, fails for good, or the retry budget
    /// is spent.
    fn send_call(&self, call: &Call) -> Result<Reply, ApiError> {
        let url = self.url(call)?;
        let started = Instant::now();
        let mut retries: u32 = 0;
        loop {
            self.pause_if_rate_limited();
            let failure = match self.attempt(call, &url) {
                Ok(reply) => return Ok(reply),
                Err(failure) => failure,
            };
            let retryable = match call.retry {
                Retry::Transient => failure.error.is_transient(),
                Retry::RateLimitOnly => failure.error.status() == Some(429),
            };
            if !retryable {
                return Err(*failure.error);
            }
            let wait = match failure.retry_after {
                Some(asked) => asked.max(self.policy.base_delay),
                None => backoff(&self.policy, retries),
            };
            let elapsed = started.elapsed();
            if elapsed.saturating_add(wait) > self.policy.max_elapsed {
                tracing::warn!(
                    method = call.method,
                    path = %call.path,
                    attempts = retries + 1,
                    elapsed_ms = millis(elapsed),
                    error = %failure.error,
                    "giving up on a Heroku request: the retry time is spent"
                );
                return Err(*failure.error);
            }
            retries += 1;
            tracing::warn!(
                method = call.method,
                path = %call.path,
                attempt = retries,
                wait_ms = millis(wait),
                status = failure.error.status(),
                error = %failure.error,
                "retrying a Heroku request"
            );
            std::thread::sleep(wait);
        }
    }

    /// Waits a little if the last answer said the rate limit runs low.
    fn pause_if_rate_limited(&self) {
        if self.rate_limit_low.swap(false, Ordering::Relaxed) {
            let pause = RATE_LIMIT_PAUSE.min(self.policy.max_delay);
            tracing::warn!(
                pause_ms = millis(pause),
                "Heroku's rate limit for this account runs low: pausing before the next request"
            );
            std::thread::sleep(pause);
        }
    }

    /// The Authorization header's value (it holds the token: never logged).
    fn authorization(&self, basic: bool) -> String {
        if basic {
            basic_authorization(self.token.expose())
        } else {
            format!("Bearer {}", self.token.expose())
        }
    }

    /// Sends one HTTP request.
    fn attempt(&self, call: &Call, url: &Url) -> Result<Reply, Failure> {
        let agent = match call.retry {
            Retry::Transient => &self.agent,
            Retry::RateLimitOnly => &self.fresh_agent,
        };
        let mut request = agent
            .request(call.method, url.as_str())
            .set("Accept", ACCEPT)
            .set("User-Agent", &self.user_agent)
            .set("Authorization", &self.authorization(call.basic_auth));
        if let Some(range) = &call.range {
            request = request.set("Range", range);
        }
        let started = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let result = match (&call.body, call.method) {
            (Some(body), _) => request
                .set("Content-Type", "application/json")
                .send_bytes(body),
            // A POST without a body says so with `Content-Length: 0`.
            (None, "POST") => request.send_bytes(&[]),
            (None, _) => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => {
                let detail = describe_transport(&transport);
                tracing::debug!(
                    method = call.method,
                    path = %call.path,
                    elapsed_ms = millis(started.elapsed()),
                    error = %detail,
                    "heroku request got no answer"
                );
                return Err(ApiError::Transport {
                    method: call.method,
                    path: call.path.clone(),
                    detail,
                }
                .into());
            }
        };

        let status = response.status();
        let header = |name: &str| response.header(name).map(|v| v.trim().to_owned());
        let request_id = header("Request-Id");
        let next_range = header("Next-Range");
        let content_type = header("Content-Type");
        let retry_after = header("Retry-After").and_then(|v| v.parse::<u64>().ok());
        let remaining = header("RateLimit-Remaining").and_then(|v| v.parse::<u64>().ok());
        let location = header("Location");
        tracing::debug!(
            method = call.method,
            path = %call.path,
            status,
            request_id = request_id.as_deref().unwrap_or("-"),
            elapsed_ms = millis(started.elapsed()),
            "heroku request"
        );
        if remaining.is_some_and(|r| r < LOW_RATE_LIMIT) {
            self.rate_limit_low.store(true, Ordering::Relaxed);
        }

        if (300..400).contains(&status) {
            let location_host = location
                .and_then(|l| url.join(&l).ok())
                .and_then(|u| u.host_str().map(str::to_owned));
            return Err(ApiError::Redirect {
                method: call.method,
                path: call.path.clone(),
                status,
                location_host,
            }
            .into());
        }

        let body = response.into_string();
        if !(200..300).contains(&status) {
            let text = body.unwrap_or_default();
            let (id, message) = parse_error_body(&text);
            return Err(Failure {
                error: Box::new(ApiError::Http {
                    method: call.method,
                    path: call.path.clone(),
                    status,
                    id,
                    message,
                    request_id,
                }),
                retry_after: retry_after.map(Duration::from_secs),
            });
        }
        match body {
            Ok(body) => Ok(Reply {
                status,
                request_id,
                next_range,
                content_type,
                body,
            }),
            Err(e) => Err(ApiError::Transport {
                method: call.method,
                path: call.path.clone(),
                detail: format!("HTTP {status}, then reading the answer failed: {e}"),
            }
            .into()),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `base_delay * 2^retries`, capped at `max_delay`, with "equal jitter":
/// a uniform wait between half of that and all of it.
pub(super) fn backoff(policy: &RetryPolicy, retries: u32) -> Duration {
    let factor = 1u32.checked_shl(retries).unwrap_or(u32::MAX);
    let capped = policy
        .base_delay
        .checked_mul(factor)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay);
    let half = capped / 2;
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let extra = if spread == 0 {
        0
    } else {
        random_u64() % (spread + 1)
    };
    half + Duration::from_nanos(extra)
}

/// Randomness enough for jitter, from the standard library's hasher keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// A transport error without its URL.
fn describe_transport(transport: &ureq::Transport) -> String {
    let mut detail = transport.kind().to_string();
    if let Some(message) = transport.message() {
        detail.push_str(": ");
        detail.push_str(message);
    }
    if let Some(source) = std::error::Error::source(transport) {
        detail.push_str(": ");
        detail.push_str(&source.to_string());
    }
    detail
}
