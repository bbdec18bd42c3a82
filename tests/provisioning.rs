//! Before the app goes down: the target add-on is waited for the way
//! Heroku needs it (issue 9, items 4 and 5), and the sandbox answers as
//! Heroku does.
//!
//! - wait_status answering 404 (the Data API does not know a new add-on
//!   yet) is waited out as long as `heroku pg:wait` waits (20 polls, 5 s
//!   apart: 100 s), never taken as "ready"; past that the run stops before
//!   maintenance with `heroku pg:wait`, `resume` and `rollback` named.
//! - the add-on's `state` and its wait_status disagree for a while, either
//!   way: the run goes on only when both say ready.
//! - `deprovisioning` / `deprovisioned` are failures.
//! - an app with a connection pooler and an Essential target is refused at
//!   preflight, and Essential add-ons refuse a pooler attachment.
//! - the sandbox refuses requests without `Accept: application/vnd.heroku+json;
//!   version=3`, and pgmigrate sends it on every request.

mod common;

use common::crash::{assert_completed, assert_rolled_back, pgmigrate_addons, run_args, APP};
use common::{shape, Env, Out};
use pgmigrate::sim::{Fault, FaultAction, LoggedRequest, Scenario};
use serde_json::{json, Value};

fn crash() -> Scenario {
    common::scenario("crash")
}

/// `run` with `PGMIGRATE_WAIT_STATUS_404_FOR` set (seconds), if given.
fn run_with_404_budget(env: &Env, args: &[&str], budget: Option<&str>) -> Out {
    let mut c = env.command(args);
    if let Some(b) = budget {
        c.env("PGMIGRATE_WAIT_STATUS_404_FOR", b);
    }
    common::output(c)
}

fn is_wait_status(r: &LoggedRequest) -> bool {
    r.method == "GET" && r.path.ends_with("/wait_status")
}

/// When the sandbox handled the request that created the target add-on.
fn target_created_at(env: &Env) -> u64 {
    env.sandbox
        .requests()
        .iter()
        .find(|r| r.method == "POST" && r.path == format!("/apps/{APP}/addons"))
        .expect("the target was created")
        .at_ms
}

/// The first request after the target's creation that changed something
/// (the old database's alias, the first change after wait-target).
fn first_change_after_creation(env: &Env) -> LoggedRequest {
    env.mutations()
        .into_iter()
        .filter(|r| !(r.method == "POST" && r.path == format!("/apps/{APP}/addons")))
        .find(|r| r.status != 0)
        .expect("a change after the target was created")
}

fn completed(env: &Env, before: &Value, label: &str) {
    common::settle();
    assert_completed(env, before, label);
    assert_eq!(env.journal(APP)["outcome"], "completed", "{label}");
}

#[test]
fn a_wait_status_404_for_a_while_is_waited_out_never_taken_as_ready() {
    // The Data API does not know the new add-on for 1.5 s, long after its
    // state says `provisioned` (150 ms): well inside the 100 s budget.
    let mut s = crash();
    s.timing.wait_status_404_ms = 1500;
    let env = Env::with(s);
    let before = env.app(APP);
    run_with_404_budget(&env, &run_args(), None).ok();
    completed(&env, &before, "wait_status 404 for 1.5 s");
    let requests = env.sandbox.requests();
    let not_found = requests
        .iter()
        .filter(|r| is_wait_status(r) && r.status == 404)
        .count();
    assert!(not_found >= 2, "the 404s were seen ({not_found})");
    // Nothing changed after the creation until wait_status answered.
    let change = first_change_after_creation(&env);
    let answered = requests
        .iter()
        .find(|r| is_wait_status(r) && r.status == 200)
        .expect("wait_status answered");
    assert!(
        answered.at_ms <= change.at_ms,
        "{} {} went ahead of wait_status",
        change.method,
        change.path
    );
    assert!(change.at_ms >= target_created_at(&env) + 1500);
}

#[test]
fn a_wait_status_404_forever_stops_before_maintenance_and_names_the_way_back() {
    let mut s = crash();
    s.timing.wait_status_404_ms = 1_000_000_000;
    let env = Env::with(s);
    let before = env.app(APP);
    let out = run_with_404_budget(&env, &run_args(), Some("1"));
    out.code(3)
        .stderr_has("stopped at step wait-target")
        .stderr_has("still does not know the target database")
        .stderr_has("heroku pg:wait crash-app-pgmigrate-")
        .stderr_has("pgmigrate resume --app crash-app")
        .stderr_has("pgmigrate rollback --app crash-app")
        .stderr_has("maintenance is off and no dyno was scaled");
    assert_eq!(env.journal(APP)["outcome"], "stopped");
    // The target is the only change: no maintenance, no scaling.
    let changes: Vec<String> = env
        .mutations()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(changes, vec![format!("POST /apps/{APP}/addons")]);
    let app = env.app(APP);
    assert_eq!(app["maintenance"], false);
    assert_eq!(app["formation"], before["formation"]);
    assert!(env
        .sandbox
        .requests()
        .iter()
        .filter(|r| is_wait_status(r))
        .all(|r| r.status == 404));
    let st = env.run(&["status", "-a", APP, "--json"]);
    let v: Value = serde_json::from_str(&st.ok().stdout).unwrap();
    assert_eq!(v["answers"]["maintenance"]["value"], "as-before");
    assert_eq!(v["answers"]["target_addon"]["value"], "exists");
    env.run(&["rollback", "-a", APP, "--confirm", APP]).ok();
    common::settle();
    assert_rolled_back(&env, &before, "rollback after the 404 budget");
    assert_eq!(shape(&env.app(APP)), shape(&before));
}

#[test]
fn a_run_stopped_by_the_404_budget_resumes_once_the_data_api_knows_the_database() {
    let env = Env::with(crash());
    let before = env.app(APP);
    env.sandbox.add_fault(Fault::on(
        "GET",
        "/wait_status",
        0,
        FaultAction::Status {
            status: 404,
            id: "not_found".into(),
            message: "Couldn't find that database.".into(),
            retry_after: None,
        },
    ));
    run_with_404_budget(&env, &run_args(), Some("0.5"))
        .code(3)
        .stderr_has("stopped at step wait-target")
        .stderr_has("heroku pg:wait");
    let fired = env.sandbox.faults_fired();
    assert!(fired >= 2, "the 404 fault fired ({fired})");
    env.sandbox.clear_faults();
    env.run(&["resume", "-a", APP, "--confirm", APP]).ok();
    completed(&env, &before, "resume after the 404 budget");
}

#[test]
fn an_add_on_provisioned_while_wait_status_still_waits_is_waited_for() {
    // The Platform API says `provisioned` at 100 ms, the Data API says
    // available only at 1.2 s.
    let mut s = crash();
    s.timing.provision_ms = 100;
    s.timing.wait_status_ready_ms = Some(1200);
    let env = Env::with(s);
    let before = env.app(APP);
    env.run(&run_args()).ok();
    completed(&env, &before, "state first");
    assert!(first_change_after_creation(&env).at_ms >= target_created_at(&env) + 1200);
}

#[test]
fn an_add_on_still_provisioning_whose_wait_status_is_done_is_waited_for() {
    // The Data API says available at once (after its 100 ms of 404), the
    // add-on's state turns `provisioned` only at 1.2 s.
    let mut s = crash();
    s.timing.provision_ms = 1200;
    s.timing.wait_status_ready_ms = Some(0);
    let env = Env::with(s);
    let before = env.app(APP);
    env.run(&run_args()).ok();
    completed(&env, &before, "wait_status first");
    assert!(first_change_after_creation(&env).at_ms >= target_created_at(&env) + 1200);
}

#[test]
fn the_sandbox_state_and_wait_status_disagree_both_ways() {
    for (provision_ms, ready_ms, state, waiting) in [
        (0, 60_000, "provisioned", true),
        (60_000, 0, "provisioning", false),
    ] {
        let mut s = crash();
        s.timing.provision_ms = provision_ms;
        s.timing.wait_status_ready_ms = Some(ready_ms);
        s.timing.wait_status_404_ms = 0;
        let env = Env::with(s);
        let (code, addon) = api(
            &env,
            "POST",
            &format!("/apps/{APP}/addons"),
            Some(json!({"plan": "heroku-postgresql:premium-0", "name": "disagreeing"})),
        );
        assert_eq!(code, 201, "{addon}");
        let id = addon["id"].as_str().unwrap();
        let (_, addon) = api(&env, "GET", &format!("/addons/{id}"), None);
        assert_eq!(addon["state"], state);
        let (code, w) = api(
            &env,
            "GET",
            &format!("/client/v11/databases/{id}/wait_status"),
            None,
        );
        assert_eq!(code, 200);
        assert_eq!(w["waiting?"], waiting, "{w}");
    }
}

#[test]
fn a_target_going_deprovisioning_stops_the_run_before_maintenance() {
    // It fails after 1.5 s and is `deprovisioning` for the next 1.5 s:
    // the run looks every 250-500 ms, so it sees that state.
    let mut s = crash();
    s.timing.provision_ms = 1500;
    s.faults.push(Fault::on(
        "POST",
        "/apps/crash-app/addons",
        1,
        FaultAction::ProvisionFails,
    ));
    let env = Env::with(s);
    let before = env.app(APP);
    env.run(&run_args())
        .code(3)
        .stderr_has("stopped at step wait-target")
        .stderr_has("is deprovisioning: Heroku could not create it")
        .stderr_has("pgmigrate rollback --app crash-app");
    assert_eq!(env.sandbox.faults_fired(), 1);
    assert_eq!(env.app(APP)["maintenance"], false);
    assert_eq!(pgmigrate_addons(&env.state()).len(), 1);
    env.run(&["rollback", "-a", APP, "--confirm", APP]).ok();
    common::settle();
    assert_rolled_back(&env, &before, "rollback of a failed target");
}

// ----- the connection pooler and Essential plans ------------------------

#[test]
fn a_pooler_with_an_essential_target_is_refused_at_preflight() {
    let env = Env::with(crash());
    let before = env.app(APP);
    let run = vec!["run", "-a", APP, "--confirm", APP];
    for args in [
        [run.as_slice(), &["--to", "essential-0"]].concat(),
        [run.as_slice(), &["--to", "essential-2"]].concat(),
        [run.as_slice(), &["--to", "heroku-postgresql:mini"]].concat(),
        vec!["plan", "--to", "essential-0", "-a", APP],
        vec!["run", "--to", "essential-0", "-a", APP, "--dry-run"],
    ] {
        let out = env.run(&args);
        out.code(1)
            .stderr_has("connection pooler (DATABASE_CONNECTION_POOL)")
            .stderr_has("Essential-tier plan, which cannot pool connections")
            // Never the plan the database is already on (standard-0).
            .stderr_has("--to heroku-postgresql:standard-2")
            .stderr_lacks("--to heroku-postgresql:standard-0")
            .stderr_has("heroku addons:detach DATABASE_CONNECTION_POOL --app crash-app");
        if args[0] == "plan" || args.contains(&"--dry-run") {
            // The methods table is still shown, with the reason of each.
            out.stdout_has("refused, see below")
                .stdout_has("Methods:")
                .stdout_has("follower not possible");
        }
    }
    assert!(env.mutations().is_empty(), "nothing was changed");
    assert_eq!(env.app(APP), before);
    // A Standard-or-higher target goes.
    env.run(&["plan", "-a", APP, "--to", "premium-0"])
        .ok()
        .stdout_has("DATABASE_CONNECTION_POOL follows");
}

#[test]
fn without_a_pooler_an_essential_target_is_fine() {
    let env = Env::new("demo");
    env.run(&["plan", "--to", "essential-0", "-a", "demo-app"])
        .ok()
        .stdout_has("heroku-postgresql:essential-0");
}

#[test]
fn essential_databases_refuse_a_pooler_attachment() {
    let env = Env::with(crash());
    for (plan, name, code) in [
        ("heroku-postgresql:essential-0", "tiny", 422),
        ("heroku-postgresql:mini", "legacy-tiny", 422),
        ("heroku-postgresql:premium-0", "big", 201),
    ] {
        let (c, _) = api(
            &env,
            "POST",
            &format!("/apps/{APP}/addons"),
            Some(json!({"plan": plan, "name": name})),
        );
        assert_eq!(c, 201);
        let (c, body) = api(
            &env,
            "POST",
            "/addon-attachments",
            Some(
                json!({"addon": name, "app": APP, "name": "DATABASE_CONNECTION_POOL",
                        "namespace": "connection-pooling:default", "confirm": APP}),
            ),
        );
        assert_eq!(c, code, "{plan}: {body}");
        if code == 422 {
            assert_eq!(
                body["message"],
                "You can't perform this operation on Essential-tier databases."
            );
        }
    }
    // Nor can a scenario describe one.
    let impossible = r#"{"apps": [{"name": "a", "addons": [{"name": "db",
        "plan": "heroku-postgresql:essential-0", "attachments": ["DATABASE"],
        "namespace_attachments": [{"name": "DATABASE_CONNECTION_POOL",
                                   "namespace": "connection-pooling:default"}]}]}]}"#;
    let e = Scenario::from_json(impossible).unwrap_err().to_string();
    assert!(e.contains("connection pooler"), "{e}");
    // A plain attachment of an Essential database is fine.
    let (c, body) = api(
        &env,
        "POST",
        "/addon-attachments",
        Some(json!({"addon": "tiny", "app": APP, "confirm": APP})),
    );
    assert_eq!(c, 201, "{body}");
}

// ----- the Accept header -------------------------------------------------

#[test]
fn requests_without_the_v3_accept_header_are_refused_as_heroku_does() {
    let env = Env::with(crash());
    let state = env.state();
    let id = state["addons"][0]["id"].as_str().unwrap().to_string();
    for path in [
        format!("/apps/{APP}"),
        format!("/apps/{APP}/formation"),
        format!("/client/v11/databases/{id}"),
    ] {
        for accept in [None, Some("application/json"), Some("*/*")] {
            let (code, body) = request(&env, "GET", &path, accept, None);
            assert_eq!(code, 400, "{path} with {accept:?}: {body}");
            assert_eq!(body["id"], "missing_version", "{body}");
            assert!(body["error"]
                .as_str()
                .unwrap()
                .contains("Accept: application/vnd.heroku+json; version=3"));
        }
        for accept in [
            "application/vnd.heroku+json; version=3",
            "application/vnd.heroku+json; version=3.sdk",
        ] {
            let (code, body) = request(&env, "GET", &path, Some(accept), None);
            assert_eq!(code, 200, "{path} with {accept}: {body}");
        }
    }
    assert!(env.mutations().is_empty());
}

#[test]
fn pgmigrate_sends_the_accept_header_on_every_request() {
    let env = Env::with(crash());
    let before = env.app(APP);
    env.run(&run_args()).ok();
    completed(&env, &before, "a whole run");
    env.run(&["rollback", "-a", APP, "--confirm", APP, "--force"])
        .ok();
    let requests = env.sandbox.requests();
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.status == 400)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    // Both APIs and both kinds of authorization were exercised.
    for part in [
        "/client/v11/",
        "/postgres/v0/",
        "/addon-attachments",
        "/formation",
    ] {
        assert!(
            requests.iter().any(|r| r.path.contains(part)),
            "no request to {part}"
        );
    }
}

// ----- plain HTTP against the sandbox -----------------------------------

const V3: &str = "application/vnd.heroku+json; version=3";

/// A request to the sandbox as the official CLI sends it.
fn api(env: &Env, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    request(env, method, path, Some(V3), body)
}

fn request(
    env: &Env,
    method: &str,
    path: &str,
    accept: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", env.sandbox.base_url());
    let mut r = ureq::request(method, &url)
        .set("Authorization", &format!("Bearer {}", env.sandbox.token()));
    if let Some(a) = accept {
        r = r.set("Accept", a);
    }
    let result = match body {
        Some(b) => r.send_json(b),
        None => r.call(),
    };
    let response = match result {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let code = response.status();
    let text = response.into_string().unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}
