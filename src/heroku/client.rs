//! The HTTP client for Heroku's Platform API and Data API: one typed method
//! per call pgmigrate makes, and the rules every call follows: the headers
//! (Accept, User-Agent, Bearer token), a timeout, no redirects, pagination
//! with `Range`/`Next-Range`, retries with capped exponential backoff for
//! requests that are safe to repeat (and only on 429 for POSTs that create
//! things), rate-limit pacing, and [`ApiError`], which says what was asked,
//! what Heroku answered (status, error id, Request-Id) and whether the
//! request can have had an effect.
//!
//! It never prints and never logs a header, a request body, a response body
//! or the token: each request emits one `debug` event (method, path, status,
//! Request-Id, elapsed time) and each retry one `warn` event.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::config::{may_carry_token, Endpoints, Token};
use super::types::{
    Addon, App, Attachment, CreateAddon, CreateAttachment, CreateTransfer, Credential,
    DatabaseInfo, Dyno, Formation, FormationBatch, FormationUpdate, Plan, Release, Transfer,
    WaitStatus,
};

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
/// How much of a non-JSON error body an [`ApiError::Http`] keeps.
const MESSAGE_MAX_CHARS: usize = 200;

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

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Platform,
    Data,
}

/// Which failures a request may be retried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Safe to repeat: retried on 429, 5xx and transport errors.
    Transient,
    /// Creates something: retried only on 429 (refused before acting).
    RateLimitOnly,
}

/// One request, as the retry loop repeats it.
struct Call {
    method: &'static str,
    api: Api,
    /// Percent-encoded path (and query) below the API base.
    path: String,
    /// Why the path cannot be sent (a bad name), if it cannot.
    path_problem: Option<String>,
    range: Option<String>,
    /// JSON body. It may carry secrets (database URLs): never logged.
    body: Option<Vec<u8>>,
    retry: Retry,
    /// Send the token as HTTP Basic (`:token`) rather than Bearer, as the
    /// Data API's `/postgres/v0` endpoints want it.
    basic_auth: bool,
}

impl Call {
    fn new(method: &'static str, api: Api, segments: &[&str]) -> Call {
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

    fn query(mut self, query: &str) -> Call {
        self.path.push('?');
        self.path.push_str(query);
        self
    }

    fn retry(mut self, retry: Retry) -> Call {
        self.retry = retry;
        self
    }

    fn body<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Call, ApiError> {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.body = Some(bytes);
                Ok(self)
            }
            Err(e) => Err(self.not_sent(format!("cannot encode the request body ({e})"))),
        }
    }

    fn not_sent(&self, detail: String) -> ApiError {
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
fn encode_path(segments: &[&str]) -> (String, Option<String>) {
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
struct Reply {
    status: u16,
    request_id: Option<String>,
    next_range: Option<String>,
    content_type: Option<String>,
    body: String,
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

/// Heroku's error body.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    message: Option<String>,
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

    // --- Platform API ----------------------------------------------------

    /// `GET /apps/{app}`.
    pub fn app(&self, app: &str) -> Result<App, ApiError> {
        self.json(Call::new("GET", Api::Platform, &["apps", app]))
    }

    /// `PATCH /apps/{app}` `{"maintenance": on}`.
    pub fn set_maintenance(&self, app: &str, on: bool) -> Result<App, ApiError> {
        let call = Call::new("PATCH", Api::Platform, &["apps", app])
            .body(&serde_json::json!({ "maintenance": on }))?;
        self.json(call)
    }

    /// `GET /apps/{app}/formation`, every page.
    pub fn formation(&self, app: &str) -> Result<Vec<Formation>, ApiError> {
        self.list(Call::new("GET", Api::Platform, &["apps", app, "formation"]))
    }

    /// `PATCH /apps/{app}/formation` `{"updates": [...]}`: one call for all
    /// process types.
    pub fn update_formation(
        &self,
        app: &str,
        updates: &[FormationUpdate],
    ) -> Result<Vec<Formation>, ApiError> {
        let call = Call::new("PATCH", Api::Platform, &["apps", app, "formation"])
            .body(&FormationBatch { updates })?;
        self.json(call)
    }

    /// `GET /apps/{app}/dynos`, every page.
    pub fn dynos(&self, app: &str) -> Result<Vec<Dyno>, ApiError> {
        self.list(Call::new("GET", Api::Platform, &["apps", app, "dynos"]))
    }

    /// `GET /apps/{app}/config-vars`. Variables whose value is `null` are
    /// left out.
    pub fn config_vars(&self, app: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let vars: BTreeMap<String, Option<String>> = self.json(Call::new(
            "GET",
            Api::Platform,
            &["apps", app, "config-vars"],
        ))?;
        Ok(present(vars))
    }

    /// `PATCH /apps/{app}/config-vars`: merges; a `None` deletes the
    /// variable. Returns the variables after the change.
    pub fn update_config_vars(
        &self,
        app: &str,
        vars: &BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let call = Call::new("PATCH", Api::Platform, &["apps", app, "config-vars"]).body(vars)?;
        let vars: BTreeMap<String, Option<String>> = self.json(call)?;
        Ok(present(vars))
    }

    /// `GET /apps/{app}/addons`, every page.
    pub fn addons(&self, app: &str) -> Result<Vec<Addon>, ApiError> {
        self.list(Call::new("GET", Api::Platform, &["apps", app, "addons"]))
    }

    /// `GET /addons/{id_or_name}`.
    pub fn addon(&self, id_or_name: &str) -> Result<Addon, ApiError> {
        self.json(Call::new("GET", Api::Platform, &["addons", id_or_name]))
    }

    /// `POST /apps/{app}/addons`. Retried only on 429; any other failure is
    /// returned at once (see [`ApiError::not_applied`]).
    pub fn create_addon(&self, app: &str, body: &CreateAddon) -> Result<Addon, ApiError> {
        let call = Call::new("POST", Api::Platform, &["apps", app, "addons"])
            .retry(Retry::RateLimitOnly)
            .body(body)?;
        self.json(call)
    }

    /// `DELETE /apps/{app}/addons/{id_or_name}`. Retried: if a lost answer
    /// hid a success, the retry answers 404.
    pub fn delete_addon(&self, app: &str, id_or_name: &str) -> Result<(), ApiError> {
        self.send(Call::new(
            "DELETE",
            Api::Platform,
            &["apps", app, "addons", id_or_name],
        ))
        .map(drop)
    }

    /// `GET /apps/{app}/addon-attachments`, every page.
    pub fn attachments(&self, app: &str) -> Result<Vec<Attachment>, ApiError> {
        self.list(Call::new(
            "GET",
            Api::Platform,
            &["apps", app, "addon-attachments"],
        ))
    }

    /// `POST /addon-attachments`. Retried only on 429.
    pub fn create_attachment(&self, body: &CreateAttachment) -> Result<Attachment, ApiError> {
        let call = Call::new("POST", Api::Platform, &["addon-attachments"])
            .retry(Retry::RateLimitOnly)
            .body(body)?;
        self.json(call)
    }

    /// `DELETE /addon-attachments/{id}`. Retried: if a lost answer hid a
    /// success, the retry answers 404.
    pub fn delete_attachment(&self, id: &str) -> Result<(), ApiError> {
        self.send(Call::new(
            "DELETE",
            Api::Platform,
            &["addon-attachments", id],
        ))
        .map(drop)
    }

    /// `GET /addon-services/{service}`.
    pub fn addon_service(&self, service: &str) -> Result<super::types::NamedRef, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Platform,
            &["addon-services", service],
        ))
    }

    /// `GET /addon-services/{service}/plans/{plan}`.
    pub fn plan(&self, service: &str, plan: &str) -> Result<Plan, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Platform,
            &["addon-services", service, "plans", plan],
        ))
    }

    /// `GET /apps/{app}/releases` with `Range: version ..; max=5,
    /// order=desc`: the newest releases, newest first; only that first
    /// page is read (as the CLI's `partial: true`).
    pub fn newest_releases(&self, app: &str) -> Result<Vec<Release>, ApiError> {
        let mut call = Call::new("GET", Api::Platform, &["apps", app, "releases"]);
        call.range = Some(NEWEST_RELEASES_RANGE.to_owned());
        self.json(call)
    }

    /// `GET /apps/{app}/releases/{id_or_version}`.
    pub fn release(&self, app: &str, id_or_version: &str) -> Result<Release, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Platform,
            &["apps", app, "releases", id_or_version],
        ))
    }

    // --- Data API ---------------------------------------------------------

    /// `GET /client/v11/databases/{addon_id}/wait_status` (404 while the
    /// add-on is just created).
    pub fn wait_status(&self, addon_id: &str) -> Result<WaitStatus, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "databases", addon_id, "wait_status"],
        ))
    }

    /// Data API `GET /postgres/v0/databases/{addon_name}/credentials`
    /// (HTTP Basic with the token, as `heroku pg:copy` sends it). The answer
    /// holds passwords: only the credential names are read from it.
    pub fn credentials(&self, addon_name: &str) -> Result<Vec<Credential>, ApiError> {
        let mut call = Call::new(
            "GET",
            Api::Data,
            &["postgres", "v0", "databases", addon_name, "credentials"],
        );
        call.basic_auth = true;
        self.json(call)
    }

    /// `GET /client/v11/databases/{addon_id}`.
    pub fn database(&self, addon_id: &str) -> Result<DatabaseInfo, ApiError> {
        self.json(Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "databases", addon_id],
        ))
    }

    /// `POST /client/v11/databases/{target_addon_id}/transfers`. Retried
    /// only on 429. The body carries database URLs; it is never logged.
    pub fn create_transfer(
        &self,
        target_addon_id: &str,
        body: &CreateTransfer,
    ) -> Result<Transfer, ApiError> {
        let call = Call::new(
            "POST",
            Api::Data,
            &["client", "v11", "databases", target_addon_id, "transfers"],
        )
        .retry(Retry::RateLimitOnly)
        .body(body)?;
        self.json(call)
    }

    /// `GET /client/v11/apps/{app}/transfers/{uuid}`, with `?verbose=true`
    /// (which adds the logs) if `verbose`.
    pub fn transfer(&self, app: &str, uuid: &str, verbose: bool) -> Result<Transfer, ApiError> {
        let call = Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "apps", app, "transfers", uuid],
        );
        self.json(if verbose {
            call.query("verbose=true")
        } else {
            call
        })
    }

    /// `GET /client/v11/apps/{app}/transfers`. Follows `Next-Range` if the
    /// Data API ever pages, but sends no first `Range` (*unverified* that
    /// the Data API accepts one; the official CLI sends none).
    pub fn transfers(&self, app: &str) -> Result<Vec<Transfer>, ApiError> {
        self.list(Call::new(
            "GET",
            Api::Data,
            &["client", "v11", "apps", app, "transfers"],
        ))
    }

    /// `POST /client/v11/apps/{app}/transfers/{uuid}/actions/cancel`.
    /// Cancelling twice is harmless, so this one is retried like a GET.
    pub fn cancel_transfer(&self, app: &str, uuid: &str) -> Result<(), ApiError> {
        self.send(Call::new(
            "POST",
            Api::Data,
            &[
                "client",
                "v11",
                "apps",
                app,
                "transfers",
                uuid,
                "actions",
                "cancel",
            ],
        ))
        .map(drop)
    }

    // --- machinery --------------------------------------------------------

    /// Sends `call` and decodes the JSON answer.
    fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, ApiError> {
        let reply = self.send_call(&call)?;
        decode(&call, &reply)
    }

    /// Sends `call`, ignoring the body of the answer.
    fn send(&self, call: Call) -> Result<Reply, ApiError> {
        self.send_call(&call)
    }

    /// Fetches every page of a list.
    fn list<T: DeserializeOwned>(&self, mut call: Call) -> Result<Vec<T>, ApiError> {
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

/// Drops the variables whose value is `null`.
fn present(vars: BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `base_delay * 2^retries`, capped at `max_delay`, with "equal jitter":
/// a uniform wait between half of that and all of it.
fn backoff(policy: &RetryPolicy, retries: u32) -> Duration {
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

/// Heroku's `{"id", "message"}`, or no id and the start of the text. The
/// message is redacted here, once, so that no credential an error body
/// echoes can reach a log line, an error or the journal.
fn parse_error_body(text: &str) -> (Option<String>, String) {
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

fn decode_error(call: &Call, reply: &Reply, detail: String) -> ApiError {
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
fn decode<T: DeserializeOwned>(call: &Call, reply: &Reply) -> Result<T, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heroku::types::AttachmentName;
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    /// A canned answer.
    struct Canned {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    }

    fn answer(status: u16, body: &str) -> Canned {
        Canned {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: body.into(),
        }
    }

    impl Canned {
        fn header(mut self, name: &'static str, value: &str) -> Canned {
            self.headers.push((name, value.into()));
            self
        }
    }

    /// A request the test server saw.
    #[derive(Debug, Clone)]
    struct Seen {
        at: Instant,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A server on 127.0.0.1:0 that answers with a script, in order, and
    /// 418 once the script is spent; stopped when dropped.
    struct TestServer {
        server: Arc<tiny_http::Server>,
        seen: Arc<Mutex<Vec<Seen>>>,
        thread: Option<JoinHandle<()>>,
        base: Url,
    }

    impl TestServer {
        fn start(script: Vec<Canned>) -> TestServer {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
            let port = server.server_addr().to_ip().expect("ip").port();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let thread = {
                let server = Arc::clone(&server);
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let mut script = script.into_iter();
                    while let Ok(mut rq) = server.recv() {
                        let mut body = String::new();
                        let _ = rq.as_reader().read_to_string(&mut body);
                        seen.lock().unwrap().push(Seen {
                            at: Instant::now(),
                            method: rq.method().to_string(),
                            url: rq.url().to_string(),
                            headers: rq
                                .headers()
                                .iter()
                                .map(|h| (h.field.to_string(), h.value.to_string()))
                                .collect(),
                            body,
                        });
                        let canned = script
                            .next()
                            .unwrap_or_else(|| answer(418, r#"{"id":"unscripted"}"#));
                        let mut response = tiny_http::Response::from_string(canned.body)
                            .with_status_code(canned.status);
                        for (k, v) in canned.headers {
                            response = response.with_header(
                                tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes())
                                    .expect("header"),
                            );
                        }
                        let _ = rq.respond(response);
                    }
                })
            };
            TestServer {
                server,
                seen,
                thread: Some(thread),
                base: Url::parse(&format!("http://127.0.0.1:{port}")).expect("url"),
            }
        }

        fn client(&self) -> Client {
            self.client_with(fast())
        }

        fn client_with(&self, policy: RetryPolicy) -> Client {
            Client::new(
                Endpoints {
                    platform: self.base.clone(),
                    data: self.base.clone(),
                },
                Token::new("tok-123"),
                policy,
            )
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            request_timeout: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(5),
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        }
    }

    const APP: &str =
        r#"{"id":"01234567-89ab-cdef-0123-456789abcdef","name":"my-app","maintenance":false}"#;

    fn create_addon_body() -> CreateAddon {
        CreateAddon {
            plan: "heroku-postgresql:standard-0".into(),
            name: "pgmigrate-target".into(),
            attachment: AttachmentName {
                name: "PGMIGRATE_TARGET".into(),
            },
            confirm: "my-app".into(),
        }
    }

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
        check::<ApiError>();
    }

    #[test]
    fn credentials_are_asked_for_with_basic_auth_and_only_names_are_kept() {
        let server = TestServer::start(vec![answer(
            200,
            r#"[{"name":"default","credentials":[{"user":"u","password":"pw-secret"}]},
                {"name":"analyst","state":"active"}]"#,
        )]);
        let client = server.client();
        let creds = client.credentials("postgresql-old-1").unwrap();
        let names: Vec<&str> = creds.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["default", "analyst"]);
        assert!(!format!("{creds:?}").contains("pw-secret"));
        let seen = server.seen();
        assert_eq!(
            seen[0].url,
            "/postgres/v0/databases/postgresql-old-1/credentials"
        );
        // base64(":tok-123")
        assert_eq!(seen[0].header("Authorization"), Some("Basic OnRvay0xMjM="));
    }

    #[test]
    fn sends_headers_and_bodies() {
        let server = TestServer::start(vec![
            answer(200, APP).header("Request-Id", "rid-1"),
            answer(200, &APP.replace("false", "true")),
        ]);
        let client = server.client();
        let app = client.app("my-app").unwrap();
        assert_eq!(app.name, "my-app");
        let app = client.set_maintenance("my-app", true).unwrap();
        assert!(app.maintenance);
        assert_eq!(client.request_count(), 2);

        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        for s in &seen {
            assert_eq!(s.url, "/apps/my-app");
            assert_eq!(s.header("Accept"), Some(ACCEPT));
            assert_eq!(
                s.header("User-Agent"),
                Some(concat!("pgmigrate/", env!("CARGO_PKG_VERSION")))
            );
            assert_eq!(s.header("Authorization"), Some("Bearer tok-123"));
        }
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].header("Content-Type"), None);
        assert_eq!(seen[0].header("Range"), None);
        assert_eq!(seen[1].method, "PATCH");
        assert_eq!(seen[1].header("Content-Type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
        assert_eq!(body, serde_json::json!({"maintenance": true}));
        // The token is never in the client's Debug output.
        assert!(!format!("{client:?}").contains("tok-123"));
    }

    #[test]
    fn paginates_with_next_range() {
        let page = |t: &str| format!(r#"[{{"type":"{t}","quantity":1,"size":"standard-1X"}}]"#);
        let server = TestServer::start(vec![
            answer(206, &page("web")).header("Next-Range", "]web..; max=1000"),
            answer(206, &page("worker")).header("Next-Range", "]worker..; max=1000"),
            answer(200, &page("clock")),
        ]);
        let client = server.client();
        let formation = client.formation("my-app").unwrap();
        let types: Vec<_> = formation.iter().map(|f| f.process_type.as_str()).collect();
        assert_eq!(types, ["web", "worker", "clock"]);
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|s| s.url == "/apps/my-app/formation"));
        assert_eq!(seen[0].header("Range"), Some(FIRST_RANGE));
        assert_eq!(seen[1].header("Range"), Some("]web..; max=1000"));
        assert_eq!(seen[2].header("Range"), Some("]worker..; max=1000"));
        assert_eq!(client.request_count(), 3);
    }

    #[test]
    fn a_206_without_next_range_ends_the_list() {
        let server = TestServer::start(vec![answer(206, "[]")]);
        assert!(server.client().dynos("my-app").unwrap().is_empty());
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn a_repeated_next_range_is_an_error_not_a_loop() {
        let server = TestServer::start(vec![answer(206, "[]").header("Next-Range", FIRST_RANGE)]);
        let e = server.client().addons("my-app").unwrap_err();
        assert!(matches!(e, ApiError::Decode { .. }), "{e:?}");
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn error_body_is_parsed() {
        let server = TestServer::start(vec![answer(
            422,
            r#"{"id":"invalid_params","message":"Cannot overwrite attachment values DATABASE_URL.","url":"https://devcenter.heroku.com"}"#,
        )
        .header("Request-Id", "req-42")]);
        let client = server.client();
        let vars = BTreeMap::from([("DATABASE_URL".to_string(), Some("x".to_string()))]);
        let e = client.update_config_vars("my-app", &vars).unwrap_err();
        assert_eq!(e.status(), Some(422));
        assert_eq!(e.error_id(), Some("invalid_params"));
        assert_eq!(e.request_id(), Some("req-42"));
        assert!(e.not_applied());
        assert!(!e.is_transient());
        assert!(!e.is_not_found());
        match &e {
            ApiError::Http { message, .. } => {
                assert_eq!(message, "Cannot overwrite attachment values DATABASE_URL.")
            }
            other => panic!("{other:?}"),
        }
        let shown = e.to_string();
        for part in [
            "PATCH",
            "/apps/my-app/config-vars",
            "422",
            "invalid_params",
            "Cannot overwrite",
            "req-42",
        ] {
            assert!(shown.contains(part), "{part} not in {shown}");
        }
        // A 4xx is not retried.
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn non_json_error_body_is_kept_short() {
        let long = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let server = TestServer::start(vec![answer(404, &long)]);
        let e = server.client().addon("nope").unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.error_id(), None);
        match &e {
            ApiError::Http { message, .. } => {
                assert_eq!(message.chars().count(), MESSAGE_MAX_CHARS);
                assert!(message.starts_with("<html> <body>xxx"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retries_503_then_succeeds() {
        let server = TestServer::start(vec![
            answer(503, r#"{"id":"unavailable","message":"try later"}"#),
            answer(503, "Service Unavailable"),
            answer(200, APP),
        ]);
        let client = server.client();
        assert_eq!(client.app("my-app").unwrap().name, "my-app");
        assert_eq!(server.seen().len(), 3);
        assert_eq!(client.request_count(), 3);
    }

    #[test]
    fn retry_after_is_honoured_on_429_even_for_creates() {
        let addon = r#"{"id":"a1","name":"pgmigrate-target","state":"provisioning"}"#;
        let server = TestServer::start(vec![
            answer(
                429,
                r#"{"id":"rate_limit","message":"Your account reached the API rate limit"}"#,
            )
            .header("Retry-After", "1"),
            answer(201, addon),
        ]);
        let client = server.client();
        let created = client.create_addon("my-app", &create_addon_body()).unwrap();
        assert_eq!(created.id, "a1");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        let gap = seen[1].at - seen[0].at;
        assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
        assert_eq!(seen[0].body, seen[1].body);
        let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!(body["plan"], "heroku-postgresql:standard-0");
    }

    #[test]
    fn creating_posts_are_not_retried_on_5xx() {
        let server = TestServer::start(vec![
            answer(500, r#"{"id":"internal_server_error","message":"boom"}"#),
            answer(503, "down"),
        ]);
        let client = server.client();
        let e = client
            .create_addon("my-app", &create_addon_body())
            .unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert!(!e.not_applied(), "a 500 on a create is in doubt");
        assert!(e.is_transient());
        let transfer = CreateTransfer {
            from_name: "DATABASE".into(),
            from_url: "postgres://u:secret@h/db".into(),
            to_name: "TARGET".into(),
            to_url: "postgres://u:secret@h/db2".into(),
        };
        let e = client.create_transfer("target-id", &transfer).unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert!(!e.to_string().contains("secret"));
        assert_eq!(server.seen().len(), 2);
        assert_eq!(
            server.seen()[1].url,
            "/client/v11/databases/target-id/transfers"
        );
    }

    #[test]
    fn cancel_transfer_is_retried() {
        let server = TestServer::start(vec![answer(502, "bad gateway"), answer(200, "{}")]);
        server.client().cancel_transfer("my-app", "uu-id").unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(
            seen[0].url,
            "/client/v11/apps/my-app/transfers/uu-id/actions/cancel"
        );
        assert_eq!(seen[0].header("Content-Length"), Some("0"));
    }

    #[test]
    fn redirects_are_refused() {
        let server = TestServer::start(vec![
            answer(302, "").header("Location", "https://evil.example.com/steal?x=1")
        ]);
        let e = server.client().app("my-app").unwrap_err();
        match &e {
            ApiError::Redirect {
                status,
                location_host,
                ..
            } => {
                assert_eq!(*status, 302);
                assert_eq!(location_host.as_deref(), Some("evil.example.com"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_transient());
        assert!(!e.to_string().contains("steal"));
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn non_json_200_is_a_decode_error() {
        let server = TestServer::start(vec![
            answer(200, "<html>maintenance page</html>").header("Request-Id", "r-9"),
            answer(200, r#"{"name":"no-id"}"#),
        ]);
        let client = server.client();
        let e = client.app("my-app").unwrap_err();
        assert!(matches!(e, ApiError::Decode { status: 200, .. }), "{e:?}");
        assert_eq!(e.request_id(), Some("r-9"));
        assert!(!e.is_transient());
        assert!(!e.to_string().contains("maintenance page"));
        let e = client.app("my-app").unwrap_err();
        assert!(e.to_string().contains("missing field `id`"), "{e}");
        assert_eq!(server.seen().len(), 2);
    }

    #[test]
    fn gives_up_when_the_retry_time_is_spent() {
        let script = (0..200).map(|_| answer(503, "down")).collect();
        let server = TestServer::start(script);
        let client = server.client_with(RetryPolicy {
            max_elapsed: Duration::from_millis(300),
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            ..fast()
        });
        let started = Instant::now();
        let e = client.app("my-app").unwrap_err();
        let took = started.elapsed();
        assert_eq!(e.status(), Some(503));
        assert!(took < Duration::from_secs(2), "took {took:?}");
        let n = server.seen().len();
        assert!(n >= 3, "only {n} attempts");
        assert_eq!(client.request_count(), n as u64);
    }

    #[test]
    fn retry_after_beyond_the_budget_gives_up_at_once() {
        let server = TestServer::start(vec![answer(429, "{}").header("Retry-After", "3600")]);
        let started = Instant::now();
        let e = server.client().app("my-app").unwrap_err();
        assert_eq!(e.status(), Some(429));
        assert!(e.not_applied() && e.is_transient());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn connection_refused_is_transport_and_bounded() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let endpoints = Endpoints {
            platform: base.clone(),
            data: base,
        };
        let client = Client::new(
            endpoints,
            Token::new("t"),
            RetryPolicy {
                max_elapsed: Duration::from_millis(200),
                ..fast()
            },
        );
        let started = Instant::now();
        let e = client.app("my-app").unwrap_err();
        assert!(matches!(e, ApiError::Transport { .. }), "{e:?}");
        assert!(e.is_transient() && !e.not_applied());
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(client.request_count() >= 2);
        assert!(!e.to_string().contains("127.0.0.1"), "{e}");
        // A create is tried once.
        let before = client.request_count();
        let e = client
            .create_addon("my-app", &create_addon_body())
            .unwrap_err();
        assert!(matches!(e, ApiError::Transport { .. }), "{e:?}");
        assert_eq!(client.request_count(), before + 1);
    }

    #[test]
    fn config_vars_skip_nulls_and_updates_send_nulls() {
        let server = TestServer::start(vec![
            answer(200, r#"{"A":"1","GONE":null}"#),
            answer(200, r#"{"A":"2"}"#),
        ]);
        let client = server.client();
        let vars = client.config_vars("my-app").unwrap();
        assert_eq!(vars, BTreeMap::from([("A".to_string(), "1".to_string())]));
        let update = BTreeMap::from([
            ("A".to_string(), Some("2".to_string())),
            ("B".to_string(), None),
        ]);
        let vars = client.update_config_vars("my-app", &update).unwrap();
        assert_eq!(vars["A"], "2");
        let seen = server.seen();
        let body: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
        assert_eq!(body, serde_json::json!({"A": "2", "B": null}));
    }

    #[test]
    fn paths_are_percent_encoded() {
        let server = TestServer::start(vec![
            answer(200, r#"{"id":"p1","name":"heroku-postgresql:standard-0"}"#),
            answer(200, r#"{"uuid":"u-1","logs":[{"message":"hi"}]}"#),
            answer(200, "[]"),
            answer(200, r#"{"id":"x","name":"DATABASE","addon":{"id":"a"}}"#),
            answer(200, "{}"),
        ]);
        let client = server.client();
        client
            .plan("heroku-postgresql", "heroku-postgresql:standard-0")
            .unwrap();
        let t = client.transfer("my-app", "u-1", true).unwrap();
        assert_eq!(t.logs.len(), 1);
        assert!(client.transfers("my app/x").unwrap().is_empty());
        client.delete_attachment("att id").unwrap();
        client
            .delete_addon("my-app", "postgresql-curly-12345")
            .unwrap();
        let seen = server.seen();
        let urls: Vec<_> = seen.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "/addon-services/heroku-postgresql/plans/heroku-postgresql%3Astandard-0",
                "/client/v11/apps/my-app/transfers/u-1?verbose=true",
                "/client/v11/apps/my%20app%2Fx/transfers",
                "/addon-attachments/att%20id",
                "/apps/my-app/addons/postgresql-curly-12345",
            ]
        );
        // The Data API list sends no first Range.
        assert_eq!(seen[2].header("Range"), None);
        assert_eq!(seen[3].method, "DELETE");
    }

    #[test]
    fn refuses_to_send_bad_names_or_insecure_urls() {
        let server = TestServer::start(vec![]);
        let client = server.client();
        for name in ["", ".", ".."] {
            let e = client.app(name).unwrap_err();
            assert!(matches!(e, ApiError::NotSent { .. }), "{e:?}");
            assert!(e.not_applied());
        }
        let insecure = Client::new(
            Endpoints {
                platform: Url::parse("http://example.com").unwrap(),
                data: Url::parse("http://example.com").unwrap(),
            },
            Token::new("t"),
            fast(),
        );
        let e = insecure.app("my-app").unwrap_err();
        assert!(matches!(e, ApiError::NotSent { .. }), "{e:?}");
        assert_eq!(insecure.request_count(), 0);
        // https to a host that is not Heroku's: refused too, before any
        // connection (the official CLI's authorizationAllowed).
        let foreign = Client::new(
            Endpoints {
                platform: Url::parse("https://evil.example").unwrap(),
                data: Url::parse("https://api.data.heroku.com").unwrap(),
            },
            Token::new("t"),
            fast(),
        );
        let e = foreign.app("my-app").unwrap_err();
        assert!(matches!(e, ApiError::NotSent { .. }), "{e:?}");
        assert!(e.to_string().contains("evil.example"), "{e}");
        assert_eq!(foreign.request_count(), 0);
        assert_eq!(client.request_count(), 0);
        assert!(server.seen().is_empty());
    }

    #[test]
    fn base_with_a_path_prefix() {
        let server = TestServer::start(vec![answer(200, APP)]);
        let mut base = server.base.clone();
        base.set_path("/prefix");
        let client = Client::new(
            Endpoints {
                platform: base.clone(),
                data: base,
            },
            Token::new("t"),
            fast(),
        );
        client.app("my-app").unwrap();
        assert_eq!(server.seen()[0].url, "/prefix/apps/my-app");
    }

    #[test]
    fn low_rate_limit_pauses_the_next_request() {
        let server = TestServer::start(vec![
            answer(200, APP).header("RateLimit-Remaining", "5"),
            answer(200, APP).header("RateLimit-Remaining", "4000"),
            answer(200, APP),
        ]);
        let client = server.client_with(RetryPolicy {
            max_delay: Duration::from_millis(300),
            ..fast()
        });
        for _ in 0..3 {
            client.app("my-app").unwrap();
        }
        let seen = server.seen();
        let first_gap = seen[1].at - seen[0].at;
        let second_gap = seen[2].at - seen[1].at;
        assert!(first_gap >= Duration::from_millis(280), "{first_gap:?}");
        assert!(second_gap < Duration::from_millis(250), "{second_gap:?}");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let policy = RetryPolicy::default();
        for n in 0..40 {
            let d = backoff(&policy, n);
            let full = policy
                .base_delay
                .checked_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
                .unwrap_or(policy.max_delay)
                .min(policy.max_delay);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?} vs {full:?}");
        }
        assert_eq!(policy.request_timeout, Duration::from_secs(30));
        assert_eq!(policy.max_elapsed, Duration::from_secs(120));
    }

    #[test]
    fn newest_releases_read_one_page_newest_first_as_promote_does() {
        let page = r#"[{"id":"r-14","version":14,"description":"Attach DATABASE (@ref:pg-new)","status":"pending","current":false},
                       {"id":"r-13","version":13,"description":"Detach DATABASE (@ref:pg-old)","status":"succeeded"}]"#;
        let server = TestServer::start(vec![
            answer(206, page).header("Next-Range", "version ]13..; max=5, order=desc"),
            answer(200, r#"{"id":"r-14","version":14,"status":"failed"}"#),
        ]);
        let client = server.client();
        let list = client.newest_releases("my-app").unwrap();
        assert_eq!(list.len(), 2, "only the first page is read");
        assert!(list[0].is_pending());
        assert_eq!(list[0].description(), "Attach DATABASE (@ref:pg-new)");
        assert!(list[1].succeeded());
        let one = client.release("my-app", "14").unwrap();
        assert_eq!(one.status, "failed");
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].url, "/apps/my-app/releases");
        assert_eq!(seen[0].header("Range"), Some(NEWEST_RELEASES_RANGE));
        assert_eq!(seen[1].url, "/apps/my-app/releases/14");
    }
}
