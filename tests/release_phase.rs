//! Release phase (issue 9, item 3): attaching DATABASE and setting config
//! vars create releases; on an app with a release command each runs it in
//! a `release.N` dyno first, and dynos boot on a release only once it has
//! succeeded. pgmigrate must not scale up (forward) or restore the
//! formation (rollback) before the release of its last change succeeded,
//! must stop safely on a failed one, and must not copy while a release
//! command (a writer) runs.
//!
//! The sandbox's dynos write rows into the database of the release they
//! run, and record the one they booted on (`booted_on`), so a scale-up made
//! too early shows as rows in the old database and dynos booted on it.

mod common;

use common::{addon, scenario, shape, Env};
use pgmigrate::sim::scenario::ReleaseFailure;
use pgmigrate::sim::Scenario;
use serde_json::Value;

const APP: &str = "release-app";
const OLD: &str = "postgresql-release-old";

fn run(env: &Env, extra: &[&str]) -> common::Out {
    let mut args = vec!["run", "--app", APP, "--confirm", APP];
    if !extra.contains(&"--to") {
        args.extend_from_slice(&["--to", "essential-0"]);
    }
    args.extend_from_slice(extra);
    env.run(&args)
}

/// The scenario, its release command failing on the first "Attach
/// DATABASE" release, and with no other var to rebind (so that no later
/// release, made with the same config, can succeed in its place).
fn failing_attach() -> Scenario {
    let mut s = scenario("release-phase");
    let app = &mut s.apps[0];
    app.config_vars.remove("REPORTING_URL");
    app.release_phase
        .as_mut()
        .expect("release phase")
        .fail
        .push(ReleaseFailure {
            description_starts_with: Some("Attach DATABASE".into()),
            nth: None,
        });
    s
}

fn releases(app: &Value) -> Vec<Value> {
    app["releases"].as_array().unwrap().clone()
}

/// The formation's dynos (not release commands).
fn formation_dynos(app: &Value) -> Vec<Value> {
    app["dynos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["type"] != "release")
        .cloned()
        .collect()
}

/// Every formation dyno booted on, and runs, `database`; there are as
/// many as the formation says.
fn dynos_run_on(app: &Value, database: &str, count: usize) {
    let dynos = formation_dynos(app);
    assert_eq!(dynos.len(), count, "dynos: {dynos:#?}");
    for d in &dynos {
        assert_eq!(d["booted_on"], database, "booted on: {d}");
        assert_eq!(d["database"], database, "runs on: {d}");
    }
}

/// Nothing written to the old database after the copy started, and every
/// dyno started after the window runs the new database.
fn assert_nothing_lost(env: &Env) -> Value {
    let state = env.state();
    let app = &state["apps"][APP];
    let new_name = app["database"].as_str().unwrap().to_string();
    assert_ne!(new_name, OLD);
    let transfers = state["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0]["succeeded"], true);
    assert_eq!(
        addon(&state, OLD)["rows"],
        transfers[0]["source_rows_at_start"],
        "rows written to the old database after the copy started"
    );
    dynos_run_on(app, &new_name, 3);
    state
}

#[test]
fn a_release_phase_that_succeeds_is_waited_for_and_nothing_is_lost() {
    let env = Env::with(scenario("release-phase"));
    let before = env.app(APP);
    let out = run(&env, &[]);
    out.ok().stdout_has("completed");
    let state = assert_nothing_lost(&env);
    let app = &state["apps"][APP];
    assert_eq!(app["formation"], before["formation"]);
    assert_eq!(app["maintenance"], false);
    // The cut-over made the releases promote.ts looks for, and a config
    // release for the rebound var; all ran the release command.
    let list = releases(app);
    let desc = |p: &str| {
        list.iter()
            .find(|r| r["description"].as_str().unwrap().starts_with(p))
    };
    for p in [
        "Detach DATABASE",
        "Attach DATABASE",
        "Set REPORTING_URL config vars",
    ] {
        let r = desc(p).unwrap_or_else(|| panic!("no {p} release: {list:#?}"));
        assert_eq!(r["status"], "succeeded");
        assert_eq!(r["release_command"], true);
    }
    // The journal names the release the scale-up waited for: the newest,
    // newer than the one seen before the cut-over.
    let j = env.journal(APP);
    let cutover = &step(&j, "scale-up")["output"]["release"];
    let before_cutover = &step(&j, "wait-dynos")["output"]["release_before_cutover"];
    let newest = list.last().unwrap();
    assert_eq!(cutover["version"], newest["version"]);
    assert_eq!(cutover["status"], "succeeded");
    assert!(before_cutover.as_u64().unwrap() < newest["version"].as_u64().unwrap());
    // Rows the dynos write now land in the new database.
    let new_name = app["database"].as_str().unwrap();
    let rows = addon(&state, new_name)["rows"].as_u64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let later = env.state();
    assert!(addon(&later, new_name)["rows"].as_u64().unwrap() > rows);
    assert_eq!(env.sandbox.faults_fired(), 0);
}

#[test]
fn a_release_command_longer_than_the_drain_timeout_delays_the_copy() {
    // The old database's second attachment (alias-source, just before
    // maintenance) is a release whose command runs well into the window
    // and writes to the old database. It is waited for (a drain timeout of
    // 1 s applies to formation dynos, not to a release command, which
    // Heroku itself stops after an hour) and the copy starts after it.
    let mut s = scenario("release-phase");
    s.apps[0].release_phase.as_mut().unwrap().command_ms = 2500;
    let env = Env::with(s);
    let out = run(&env, &["--drain-timeout", "1"]);
    out.ok();
    assert_nothing_lost(&env);
    let state = env.state();
    let alias = releases(&state["apps"][APP])
        .into_iter()
        .find(|r| {
            r["description"]
                .as_str()
                .unwrap()
                .starts_with("Attach HEROKU_POSTGRESQL_")
        })
        .expect("the alias's release");
    assert_eq!(alias["status"], "succeeded");
    assert_eq!(
        alias["database"], OLD,
        "its command wrote to the old database"
    );
}

#[test]
fn a_failed_attach_release_stops_before_scale_up_and_rollback_restores_the_app() {
    let env = Env::with(failing_attach());
    let before = env.app(APP);
    let out = run(&env, &[]);
    out.code(3);
    assert_eq!(env.sandbox.faults_fired(), 1, "the release failure fired");
    let app = env.app(APP);
    let failed = releases(&app)
        .into_iter()
        .find(|r| r["status"] == "failed")
        .expect("a failed release");
    assert!(failed["description"]
        .as_str()
        .unwrap()
        .starts_with("Attach DATABASE"));
    let v = failed["version"].as_u64().unwrap();
    out.stderr_has(&format!("release v{v} (Attach DATABASE"))
        .stderr_has(&format!("heroku releases:output {v} --app {APP}"))
        .stderr_has("heroku releases:retry")
        .stderr_has("pgmigrate rollback --app release-app");
    // Stopped safely: maintenance on, every process type at zero, no dyno.
    assert_eq!(app["maintenance"], true);
    for p in app["formation"].as_array().unwrap() {
        assert_eq!(p["quantity"], 0, "{p}");
    }
    assert!(formation_dynos(&app).is_empty());
    let j = env.journal(APP);
    assert_eq!(j["outcome"], "stopped");
    let scale_up = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "scale-up")
        .unwrap();
    assert_eq!(scale_up["state"], "failed");
    assert_eq!(step(&j, "scale-up")["output"]["release"]["version"], v);
    assert_eq!(
        step(&j, "scale-up")["output"]["release"]["status"],
        "failed"
    );
    // No formation request was sent after the scale-down.
    let ups = env
        .mutations()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/formation"))
        .count();
    assert_eq!(ups, 1, "only the scale-down");
    env.run(&["status", "--app", APP]).ok();

    // Rollback restores the app exactly, and its dynos boot on the old
    // database: the restore waited for the rollback's own releases.
    env.run(&["rollback", "--app", APP, "--confirm", APP]).ok();
    let after = env.app(APP);
    assert_eq!(shape(&after), shape(&before));
    assert_eq!(after["database"], OLD);
    dynos_run_on(&after, OLD, 3);
    let j = env.journal(APP);
    assert_eq!(j["outcome"], "rolled-back");
    let rb = &step(&j, "scale-down")["undo_output"]["release"];
    assert_eq!(rb["status"], "succeeded");
    assert!(rb["version"].as_u64().unwrap() > v);
    assert!(rb["description"]
        .as_str()
        .unwrap()
        .starts_with("Attach DATABASE"));
}

#[test]
fn a_failed_attach_release_retried_lets_resume_complete() {
    let env = Env::with(failing_attach());
    run(&env, &[]).code(3);
    assert_eq!(env.sandbox.faults_fired(), 1, "the release failure fired");
    // Resuming before the release is fixed stops again, changing nothing.
    env.run(&["resume", "--app", APP, "--confirm", APP])
        .code(3)
        .stderr_has("heroku releases:output");
    assert!(formation_dynos(&env.app(APP)).is_empty());
    // `heroku releases:retry`, then resume picks up the newer release.
    let retry = env.sandbox.retry_release(APP).expect("a release to retry");
    let out = env.run(&["resume", "--app", APP, "--confirm", APP]);
    out.ok().stdout_has("completed");
    let state = assert_nothing_lost(&env);
    let app = &state["apps"][APP];
    let r = releases(app)
        .into_iter()
        .find(|r| r["version"] == retry)
        .unwrap();
    assert!(r["description"].as_str().unwrap().starts_with("Retry of v"));
    assert_eq!(r["status"], "succeeded");
    let j = env.journal(APP);
    assert_eq!(j["outcome"], "completed");
    assert_eq!(step(&j, "scale-up")["output"]["release"]["version"], retry);
    assert_eq!(
        step(&j, "scale-up")["output"]["release"]["status"],
        "succeeded"
    );
    assert_eq!(env.sandbox.faults_fired(), 1);
}

#[test]
fn without_a_release_process_type_the_releases_are_not_read() {
    // No `release` process type in the formation (as promote.ts checks)
    // and no release dyno: without a release command every release
    // succeeds at once, known before the window, so the window is spared
    // the request (issue 16, item 9).
    let env = Env::new("pooler");
    // A Standard target: a pooler cannot move to an Essential plan.
    env.run(&[
        "run",
        "--app",
        "pooled-app",
        "--confirm",
        "pooled-app",
        "--to",
        "heroku-postgresql:standard-2",
    ])
    .ok();
    assert_eq!(release_reads(&env), 0);
    let j = env.journal("pooled-app");
    assert!(step(&j, "scale-up")["output"]["release"].is_null());
    assert!(step(&j, "wait-dynos")["output"]["release_before_cutover"].is_null());
}

#[test]
fn with_a_release_process_type_and_no_command_running_the_window_reads_them_once() {
    // The demo app has a `release` type; its releases succeed at once:
    // one look just before maintenance goes on (the floor, none pending),
    // one before the scale-up; none while the dynos drain.
    let env = Env::new("demo");
    env.run(&[
        "run",
        "--to",
        "essential-0",
        "--app",
        "demo-app",
        "--confirm",
        "demo-app",
    ])
    .ok();
    assert_eq!(release_reads(&env), 2);
    let log = env.sandbox.requests();
    let on = log
        .iter()
        .position(|r| {
            r.method == "PATCH"
                && r.path == "/apps/demo-app"
                && r.body.as_ref().and_then(|b| b["maintenance"].as_bool()) == Some(true)
        })
        .expect("maintenance on");
    let first = log
        .iter()
        .position(|r| r.method == "GET" && r.path.ends_with("/releases"))
        .unwrap();
    assert!(first < on, "the floor is read before the window");
    let j = env.journal("demo-app");
    let cutover = &step(&j, "scale-up")["output"]["release"];
    let before_cutover = &step(&j, "wait-dynos")["output"]["release_before_cutover"];
    assert_eq!(cutover["status"], "succeeded");
    assert!(before_cutover.as_u64().unwrap() < cutover["version"].as_u64().unwrap());
}

fn release_reads(env: &Env) -> usize {
    env.sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/releases"))
        .count()
}

/// A step's record in a v2 journal, by id.
fn step<'a>(j: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

#[test]
fn a_failed_attach_release_superseded_by_the_rebind_is_named_in_the_warning_and_status() {
    // Issue 16, item 8: the cut-over's `Attach DATABASE` release fails,
    // the rebind's config release after it succeeds (it carries the same
    // config), so the dynos run on the new database and the run completes;
    // it must still say which release failed and how to read its output.
    let mut s = scenario("release-phase");
    s.apps[0]
        .release_phase
        .as_mut()
        .expect("release phase")
        .fail
        .push(ReleaseFailure {
            description_starts_with: Some("Attach DATABASE".into()),
            nth: None,
        });
    let env = Env::with(s);
    let out = run(&env, &[]);
    out.ok().stdout_has("completed");
    assert_eq!(env.sandbox.faults_fired(), 1, "the release failure fired");
    let state = assert_nothing_lost(&env);
    let list = releases(&state["apps"][APP]);
    let failed: Vec<&Value> = list.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{list:#?}");
    assert!(failed[0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Attach DATABASE"));
    let v = failed[0]["version"].as_u64().unwrap();
    let newest = list.last().unwrap();
    assert_eq!(newest["status"], "succeeded");
    assert!(newest["version"].as_u64().unwrap() > v);
    let named = format!("release v{v} (Attach DATABASE");
    let how = format!("heroku releases:output {v} --app {APP}");
    // Said when it happened, as a warning (progress lines go to stdout
    // without a terminal)...
    out.stdout_has(&format!("warning: {named}"))
        .stdout_has(&how);
    // ... kept in the journal...
    let j = env.journal(APP);
    let kept = &step(&j, "scale-up")["output"]["failed"];
    assert_eq!(kept[0]["version"], v, "{kept}");
    assert_eq!(kept[0]["status"], "failed");
    // ... and shown by `status`, in words and in JSON.
    env.run(&["status", "--app", APP])
        .ok()
        .stdout_has(&named)
        .stdout_has(&how);
    let json = env.run(&["status", "--app", APP, "--json"]);
    let report: Value = serde_json::from_str(&json.ok().stdout).expect("status --json");
    let answer = &report["answers"]["failed_releases"];
    assert_eq!(answer["value"], "failed-then-superseded", "{report:#}");
    assert!(answer["words"].as_str().unwrap().contains(&how));
}

#[test]
fn an_outage_on_the_releases_read_before_the_window_stops_with_the_app_up() {
    // The floor is read just before maintenance goes on (issue 16, item
    // 9): an outage there stops the run before the window, nothing of it
    // touched, and a resume completes it.
    let mut s = scenario("demo");
    s.faults.push(pgmigrate::sim::Fault::on(
        "GET",
        "/apps/demo-app/releases",
        0,
        pgmigrate::sim::FaultAction::Status {
            status: 503,
            id: "unavailable".into(),
            message: "injected 503".into(),
            retry_after: None,
        },
    ));
    let env = Env::with(s);
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "--app",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    c.env("PGMIGRATE_HTTP_TIMEOUT", "0.5")
        .env("PGMIGRATE_RETRY_FOR", "1");
    let out = common::output(c);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(env.sandbox.faults_fired() >= 1, "the outage fired");
    let app = env.app("demo-app");
    assert_eq!(app["maintenance"], false, "the window was not opened");
    assert!(
        !env.mutations()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == "/apps/demo-app"),
        "no maintenance request"
    );
    let j = env.journal("demo-app");
    assert_eq!(step(&j, "maintenance-on")["state"], "failed", "{j:#}");
    env.sandbox.clear_faults();
    env.run(&["resume", "--app", "demo-app", "--confirm", "demo-app"])
        .ok()
        .stdout_has("completed");
}
