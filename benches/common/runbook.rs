//! What a person following Heroku's pg:copy runbook with the official CLI
//! does, as the CLI's own requests, against the same sandbox: before the
//! window `heroku addons:create` and `heroku pg:wait`; in it `heroku
//! maintenance:on`, `heroku ps:scale web=0 worker=0`, `heroku pg:copy
//! DATABASE_URL HEROKU_POSTGRESQL_<COLOR>_URL --confirm APP`, `heroku
//! pg:promote HEROKU_POSTGRESQL_<COLOR>`, `heroku ps:scale web=2
//! worker=1`, `heroku maintenance:off`, each started as soon as the one
//! before it returned.
//!
//! Sources (heroku/cli, packages/cli/src): `commands/pg/copy.ts` (the
//! source and the target resolved at once, each an attachment, its add-on
//! and the app's config vars; the transfer POST; the source's credentials;
//! then `lib/pg/backups.ts` `poll()`: a GET of the transfer at once, then
//! one every `interval` seconds, `Math.max(3, --wait-interval) || 3`: 3 s
//! by default, until `finished_at`); `commands/pg/promote.ts` (resolve the
//! attachment, list the app's attachments, attach the old database under a
//! second name when it has none, `wait_status`, attach DATABASE, read the
//! database, read the formation and, with a `release` type, the newest
//! releases, then each of the Attach and Detach DATABASE releases every 5 s
//! until the Attach one succeeded).
//!
//! What is simulated, not run: the requests are sent from here, not by the
//! CLI; `POST /actions/addon-attachments/resolve` (the CLI's
//! `getAttachment`) is sent as `GET /apps/{app}/addon-attachments`, the one
//! round trip the sandbox serves for it; attachment bodies name the app and
//! add-on as strings. The CLI's own start (a Node.js process loading
//! oclif, once per command: six in the window) is modelled only when the
//! real CLI is at hand (`PGMIGRATE_BENCH_HEROKU`, see [`measured_starts`]):
//! each command then waits its measured start before its first request.
//! A person's time between commands is never modelled; it would only
//! lengthen the CLI's window.
//! Like the runbook, the copy starts right after the scale-down: the
//! dynos' drain overlaps the copy here (pgmigrate waits for it, so that no
//! row written by a stopping dyno is lost).

#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};

struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call_with(method, path, body, None)
    }

    fn try_get(&self, path: &str) -> Option<Value> {
        self.agent
            .get(&format!("{}{}", self.base, path))
            .set("Accept", "application/vnd.heroku+json; version=3")
            .set("Authorization", &format!("Bearer {}", self.token))
            .call()
            .ok()?
            .into_json()
            .ok()
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        range: Option<&str>,
    ) -> Value {
        let mut req = self
            .agent
            .request(method, &format!("{}{}", self.base, path))
            .set("Accept", "application/vnd.heroku+json; version=3");
        req = if path.starts_with("/postgres/v0/") {
            use base64_free::encode;
            req.set(
                "Authorization",
                &format!("Basic {}", encode(&format!(":{}", self.token))),
            )
        } else {
            req.set("Authorization", &format!("Bearer {}", self.token))
        };
        if let Some(r) = range {
            req = req.set("Range", r);
        }
        let out = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match out {
            Ok(r) => r.into_json().unwrap_or(Value::Null),
            Err(e) => panic!("runbook: {method} {path}: {e}"),
        }
    }
}

/// Base64 without a dependency (the bench has no base64 crate).
mod base64_free {
    pub fn encode(s: &str) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = chunk.len();
            let v = (chunk[0] as u32) << 16
                | (*chunk.get(1).unwrap_or(&0) as u32) << 8
                | *chunk.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= n {
                    out.push(T[(v >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// The commands run in the window, in order.
pub const COMMANDS: [&str; 6] = [
    "maintenance:on",
    "ps:scale",
    "pg:copy",
    "pg:promote",
    "ps:scale",
    "maintenance:off",
];

/// How long the official CLI takes to start each of [`COMMANDS`] on this
/// machine, measured: `heroku <command> --help` (it loads the command and
/// sends no request), the median of 3, with the `heroku` binary at
/// `PGMIGRATE_BENCH_HEROKU` (from `npm install heroku`). `None` without it:
/// the start is then not modelled.
pub fn measured_starts() -> Option<Vec<f64>> {
    let cli = std::env::var("PGMIGRATE_BENCH_HEROKU").ok()?;
    let mut out = vec![];
    for c in COMMANDS {
        let mut v = vec![];
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let ok = std::process::Command::new(&cli)
                .args([c, "--help"])
                .env("HEROKU_DISABLE_AUTOUPDATE", "1")
                .env("HEROKU_SKIP_ANALYTICS", "1")
                .output()
                .ok()?
                .status
                .success();
            if !ok {
                return None;
            }
            v.push(t.elapsed().as_secs_f64());
        }
        out.push(super::median(v));
    }
    Some(out)
}

/// Run the runbook on `app` against the sandbox at `base`: `plan` the new
/// add-on's plan, `formation` the (type, quantity) pairs to restore;
/// `starts`: seconds to wait before each of [`COMMANDS`] (its process
/// start), or none.
pub fn run(
    base: &str,
    token: &str,
    app: &str,
    plan: &str,
    formation: &[(&str, u64)],
    starts: Option<&[f64]>,
) {
    let start = |i: usize| {
        if let Some(s) = starts {
            std::thread::sleep(Duration::from_secs_f64(s[i]));
        }
    };
    let api = Api {
        base: base.trim_end_matches('/').to_string(),
        token: token.to_string(),
        agent: ureq::AgentBuilder::new().build(),
    };
    let pause = |ms: u64| std::thread::sleep(Duration::from_millis(ms));

    // Before the window: heroku addons:create, heroku pg:wait.
    let created = api.call(
        "POST",
        &format!("/apps/{app}/addons"),
        Some(json!({"plan": plan})),
    );
    let target_id = created["id"].as_str().expect("add-on id").to_string();
    let target_name = created["name"].as_str().expect("add-on name").to_string();
    // pg:wait polls every 5 s; shortened here: it is before the window.
    loop {
        let w = api.try_get(&format!("/client/v11/databases/{target_id}/wait_status"));
        if w.is_some_and(|w| w["waiting?"] == false) {
            break;
        }
        pause(200);
    }
    let atts = api.call("GET", &format!("/apps/{app}/addon-attachments"), None);
    let color = atts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["addon"]["id"] == target_id.as_str())
        .and_then(|a| a["name"].as_str())
        .expect("the new add-on's attachment")
        .to_string();

    // heroku maintenance:on
    start(0);
    api.call(
        "PATCH",
        &format!("/apps/{app}"),
        Some(json!({"maintenance": true})),
    );
    // heroku ps:scale web=0 worker=0
    start(1);
    let zero: Vec<Value> = formation
        .iter()
        .map(|(t, _)| json!({"type": t, "quantity": 0}))
        .collect();
    api.call(
        "PATCH",
        &format!("/apps/{app}/formation"),
        Some(json!({"updates": zero})),
    );

    // heroku pg:copy DATABASE_URL <COLOR>_URL --confirm APP
    start(2);
    let resolve = |name: &str| -> (Value, String) {
        let atts = api.call("GET", &format!("/apps/{app}/addon-attachments"), None);
        let a = atts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .expect("attachment");
        let addon_name = a["addon"]["name"].as_str().unwrap().to_string();
        let addon = api.call("GET", &format!("/addons/{addon_name}"), None);
        let config = api.call("GET", &format!("/apps/{app}/config-vars"), None);
        let url = config[format!("{name}_URL")].as_str().unwrap().to_string();
        (addon, url)
    };
    let ((source, source_url), (target, target_url)) = std::thread::scope(|s| {
        let t = s.spawn(|| resolve(&color));
        let src = resolve("DATABASE");
        (src, t.join().unwrap())
    });
    let transfer = api.call(
        "POST",
        &format!(
            "/client/v11/databases/{}/transfers",
            target["id"].as_str().unwrap()
        ),
        Some(json!({"from_name": "DATABASE", "from_url": source_url,
                    "to_name": color, "to_url": target_url})),
    );
    let uuid = transfer["uuid"]
        .as_str()
        .expect("transfer uuid")
        .to_string();
    api.call(
        "GET",
        &format!(
            "/postgres/v0/databases/{}/credentials",
            source["name"].as_str().unwrap()
        ),
        None,
    );
    loop {
        let t = api.call(
            "GET",
            &format!("/client/v11/apps/{app}/transfers/{uuid}"),
            None,
        );
        if !t["finished_at"].is_null() {
            assert_eq!(t["succeeded"], true, "the runbook's copy failed");
            break;
        }
        pause(3000);
    }

    // heroku pg:promote <COLOR>
    start(3);
    let _ = api.call("GET", &format!("/apps/{app}/addon-attachments"), None); // getAttachment
    let atts = api.call("GET", &format!("/apps/{app}/addon-attachments"), None);
    let list = atts.as_array().unwrap();
    let current = list
        .iter()
        .find(|a| a["name"] == "DATABASE")
        .expect("DATABASE")
        .clone();
    let has_alias = list
        .iter()
        .any(|a| a["addon"]["id"] == current["addon"]["id"] && a["name"] != "DATABASE");
    if !has_alias {
        api.call(
            "POST",
            "/addon-attachments",
            Some(json!({"app": app, "addon": current["addon"]["name"], "confirm": app})),
        );
    }
    api.call(
        "GET",
        &format!("/client/v11/databases/{target_id}/wait_status"),
        None,
    );
    api.call(
        "POST",
        "/addon-attachments",
        Some(json!({"name": "DATABASE", "app": app, "addon": target_name, "confirm": app})),
    );
    api.call("GET", &format!("/client/v11/databases/{target_id}"), None);
    let f = api.call("GET", &format!("/apps/{app}/formation"), None);
    let release_phase = f.as_array().unwrap().iter().any(|p| p["type"] == "release");
    if release_phase {
        let rs = api.call_with(
            "GET",
            &format!("/apps/{app}/releases"),
            None,
            Some("version ..; max=5, order=desc"),
        );
        let find = |what: &str| {
            rs.as_array()
                .unwrap()
                .iter()
                .find(|r| r["description"].as_str().is_some_and(|d| d.contains(what)))
                .map(|r| r["id"].as_str().unwrap().to_string())
                .expect("release")
        };
        let (attach, detach) = (find("Attach DATABASE"), find("Detach DATABASE"));
        loop {
            let a = api.call("GET", &format!("/apps/{app}/releases/{attach}"), None);
            if a["status"] == "succeeded" || a["status"] == "failed" {
                api.call("GET", &format!("/apps/{app}/releases/{detach}"), None);
                break;
            }
            pause(5000);
        }
    }

    // heroku ps:scale web=N worker=M
    start(4);
    let back: Vec<Value> = formation
        .iter()
        .map(|(t, q)| json!({"type": t, "quantity": q}))
        .collect();
    api.call(
        "PATCH",
        &format!("/apps/{app}/formation"),
        Some(json!({"updates": back})),
    );
    // heroku maintenance:off
    start(5);
    api.call(
        "PATCH",
        &format!("/apps/{app}"),
        Some(json!({"maintenance": false})),
    );
}
