use super::*;
use crate::heroku::config::{Endpoints, Token};
use crate::heroku::error::*;
use crate::heroku::transport::*;
use crate::heroku::types::AttachmentName;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use url::Url;

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
        config: Default::default(),
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
