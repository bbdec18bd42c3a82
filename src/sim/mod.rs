//! The sandbox: a local, stateful simulated Heroku (Platform API and Data
//! API on one loopback port) for tests, rehearsals and the demo.
//!
//! It serves the endpoints a migration uses (see `world`), with add-ons
//! that take time to provision, attachments that own their `_URL` config
//! vars, dynos that take time to stop and write rows while they run,
//! transfers that take time and report progress, followers that lag and
//! refuse writes until an asynchronous unfollow completes, plan changes
//! with their maintenances (fixtures/scenarios/README.md), latency, and
//! injected faults. Admin endpoints (no auth): `GET /__sandbox/state`,
//! `GET /__sandbox/requests`, `POST /__sandbox/faults`,
//! `POST /__sandbox/apps/{app}/one-off/{name}/stop`,
//! `POST /__sandbox/apps/{app}/releases/retry` (as `heroku releases:retry`).

pub mod http;
pub mod pg;
mod random;
pub mod scenario;
pub mod world;

/// The method `pgmigrate demo` runs on the demo scenario: the copy, which
/// every move can use and which has every step to show.
pub const DEMO_METHOD: &str = "copy";

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};

pub use scenario::{Fault, FaultAction, Scenario, ScenarioError};
pub use world::LoggedRequest;
use world::World;

/// A running sandbox; stops when dropped.
pub struct Sandbox {
    world: Arc<Mutex<World>>,
    server: http::Server,
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sandbox {
    /// Serve `scenario` on `127.0.0.1:port` (0 picks a free port).
    pub fn start(scenario: Scenario, port: u16) -> std::io::Result<Sandbox> {
        Sandbox::start_with(scenario, port, None)
    }

    /// Serve `scenario`, its Postgres add-ons real databases on the
    /// PostgreSQL server at `postgres` (a URL of a role that may create
    /// databases) when given.
    pub fn start_with(
        scenario: Scenario,
        port: u16,
        postgres: Option<&str>,
    ) -> std::io::Result<Sandbox> {
        let backend = match postgres {
            Some(url) => Some(Arc::new(
                pg::Backend::connect(url).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        let world = World::build(&scenario, backend).map_err(std::io::Error::other)?;
        let world = Arc::new(Mutex::new(world));
        let w = world.clone();
        let handler = Arc::new(move |req: http::Request| handle(&w, req));
        let server = http::Server::start(port, handler)?;
        tracing::info!(port = server.port(), "sandbox listening");
        Ok(Sandbox { world, server })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// Whether the add-ons are real databases on a PostgreSQL server.
    pub fn has_postgres(&self) -> bool {
        lock(&self.world).has_postgres()
    }

    pub fn token(&self) -> String {
        lock(&self.world).token.clone()
    }

    /// The whole state (as `GET /__sandbox/state`).
    pub fn snapshot(&self) -> Value {
        lock(&self.world).snapshot()
    }

    /// Put the world back in the state of a `/__sandbox/state` snapshot
    /// (a test facility, not Heroku behaviour: see `world::restore`).
    pub fn restore(&self, snapshot: &Value) -> Result<(), String> {
        lock(&self.world).restore(snapshot)
    }

    /// Every API request so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.world).log.clone()
    }

    pub fn add_fault(&self, fault: Fault) {
        lock(&self.world).add_fault(fault);
    }

    /// How many requests a fault rule has hit so far.
    pub fn faults_fired(&self) -> u32 {
        lock(&self.world).faults_fired()
    }

    /// Remove every fault rule (the outage is over).
    pub fn clear_faults(&self) {
        lock(&self.world).clear_faults();
    }

    /// Start a one-off dyno (`heroku run`) on an app.
    pub fn start_one_off(&self, app: &str, name: &str) {
        lock(&self.world).start_one_off(app, name);
    }

    pub fn stop_one_off(&self, app: &str, name: &str) -> bool {
        lock(&self.world).stop_one_off(app, name)
    }

    /// What `heroku releases:retry` does: a new release copying the newest
    /// one, running the release command again. Answers its version.
    pub fn retry_release(&self, app: &str) -> Option<u64> {
        lock(&self.world).retry_release(app)
    }

    /// Serve until the process ends.
    pub fn serve_forever(self) {
        self.server.wait();
    }

    pub fn shutdown(self) {}
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        lock(&self.world).cleanup();
    }
}

fn reply(status: u16, body: &Value) -> http::Reply {
    http::Reply::Respond {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

fn handle(world: &Mutex<World>, req: http::Request) -> http::Reply {
    if let Some(admin) = req.path.strip_prefix("/__sandbox/") {
        return handle_admin(world, &req, admin);
    }
    let latency = lock(world).latency_ms;
    if latency > 0 {
        std::thread::sleep(Duration::from_millis(latency));
    }
    let answer = lock(world).handle(
        &req.method,
        &req.path,
        &req.query,
        req.header("authorization"),
        req.header("accept"),
        req.header("range"),
        &req.body,
    );
    if answer.hang_ms > 0 {
        std::thread::sleep(Duration::from_millis(answer.hang_ms));
    }
    if answer.drop {
        return http::Reply::Close;
    }
    let mut headers = answer.headers;
    headers.push(("Content-Type".into(), "application/json".into()));
    let body = match answer.raw {
        Some(raw) => raw.into_bytes(),
        None => serde_json::to_vec(&answer.body).unwrap_or_default(),
    };
    http::Reply::Respond {
        status: answer.status,
        headers,
        body,
    }
}

fn handle_admin(world: &Mutex<World>, req: &http::Request, path: &str) -> http::Reply {
    let parts: Vec<&str> = path.split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["state"]) => reply(200, &lock(world).snapshot()),
        ("GET", ["requests"]) => reply(200, &json!(lock(world).log)),
        ("POST", ["faults"]) => match serde_json::from_slice::<Fault>(&req.body) {
            Ok(f) => {
                lock(world).add_fault(f);
                reply(201, &json!({"ok": true}))
            }
            Err(e) => reply(
                422,
                &json!({"id": "invalid_params", "message": e.to_string()}),
            ),
        },
        ("POST", ["apps", app, "releases", "retry"]) => match lock(world).retry_release(app) {
            Some(v) => reply(201, &json!({"version": v})),
            None => reply(
                404,
                &json!({"id": "not_found", "message": "the app has no release"}),
            ),
        },
        ("POST", ["apps", app, "one-off", name, "stop"]) => {
            if lock(world).stop_one_off(app, name) {
                reply(200, &json!({"ok": true}))
            } else {
                reply(
                    404,
                    &json!({"id": "not_found", "message": "no such one-off dyno"}),
                )
            }
        }
        _ => reply(
            404,
            &json!({"id": "not_found", "message": "unknown sandbox admin path"}),
        ),
    }
}

/// One paragraph describing an app in a snapshot, for the demo.
pub fn describe_app(snapshot: &Value, app: &str) -> String {
    let a = &snapshot["apps"][app];
    let database = a["database"].as_str().unwrap_or("none");
    let plan = snapshot["addons"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["name"].as_str() == Some(database) && x["deleted"] == false)
        .and_then(|x| x["plan"].as_str())
        .unwrap_or("?");
    let formation: Vec<String> = a["formation"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}={}:{}",
                p["type"].as_str().unwrap_or("?"),
                p["quantity"],
                p["size"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let atts: Vec<String> = a["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}→{}",
                t["name"].as_str().unwrap_or("?"),
                t["addon_name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!(
        "  {app}: DATABASE={database} ({plan}); maintenance {}; formation {}; attachments {}",
        if a["maintenance"] == true {
            "on"
        } else {
            "off"
        },
        formation.join(" "),
        atts.join(", ")
    )
}
