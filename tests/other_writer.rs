//! No other writer (issue 17): a dyno scaled back up while the app is down
//! never lets the run cut over onto a copy that misses its rows; an
//! Essential plan changed in place stops before the change when asked to
//! stop before the cut-over; a forced rollback says how it finds the app.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{addon, Env};
use pgmigrate::sim::Scenario;
use serde_json::{json, Value};

const APP: &str = "demo-app";

/// The demo app, with a copy slow enough to act during it.
fn slow_copy() -> Env {
    let mut s = serde_json::to_value(common::scenario("demo")).unwrap();
    s["timing"]["transfer_ms"] = json!(4000);
    Env::with(serde_json::from_value::<Scenario>(s).unwrap())
}

/// `heroku ps:scale TYPE=N`, as another person or tool would send it.
fn scale(env: &Env, ptype: &str, n: u32) {
    let url = format!("{}/apps/{APP}/formation", env.sandbox.base_url());
    let r = ureq::patch(&url)
        .set("Authorization", &format!("Bearer {}", env.sandbox.token()))
        .set("Accept", "application/vnd.heroku+json; version=3")
        .send_json(json!({"updates": [{"type": ptype, "quantity": n}]}));
    assert!(r.is_ok(), "scaling {ptype}={n}: {r:?}");
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn transfers(env: &Env) -> usize {
    env.state()["transfers"].as_array().map_or(0, Vec::len)
}

fn run_args() -> Vec<&'static str> {
    vec!["run", "-a", APP, "--confirm", APP, "--to", "essential-0"]
}

/// Every row of the old database is on the one DATABASE points at.
fn assert_no_row_lost(env: &Env) {
    let state = env.state();
    let app = &state["apps"][APP];
    let new = app["database"].as_str().unwrap();
    assert_ne!(new, "postgresql-demo-old", "DATABASE moved");
    let (old_rows, new_rows) = (
        addon(&state, "postgresql-demo-old")["rows"]
            .as_f64()
            .unwrap(),
        addon(&state, new)["rows"].as_f64().unwrap(),
    );
    assert!(
        new_rows + 0.5 >= old_rows,
        "rows lost: the old database has {old_rows}, the new one {new_rows}"
    );
}

#[test]
fn a_dyno_scaled_up_during_the_copy_stops_the_cut_over_and_resume_copies_again() {
    let env = slow_copy();
    let child = env
        .command(&run_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the copy started", || transfers(&env) == 1);
    scale(&env, "web", 1);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("writers came back while the app was down"),
        "{stderr}"
    );
    assert!(stderr.contains("web is scaled to 1"), "{stderr}");
    assert!(
        stderr.contains("pgmigrate rollback --app demo-app"),
        "{stderr}"
    );
    let state = env.state();
    assert_eq!(
        state["apps"][APP]["database"], "postgresql-demo-old",
        "nothing was switched"
    );
    // The dyno wrote to the old database after the copy was taken.
    let old_rows = addon(&state, "postgresql-demo-old")["rows"]
        .as_f64()
        .unwrap();
    let at_copy = state["transfers"][0]["source_rows_at_start"]
        .as_f64()
        .unwrap();
    assert!(old_rows > at_copy, "the dyno wrote: {old_rows} > {at_copy}");
    // The way on it names: writers stopped again, then resume.
    scale(&env, "web", 0);
    common::settle();
    env.run(&["resume", "-a", APP, "--confirm", APP])
        .ok()
        .stdout_has("copying again");
    assert_eq!(
        transfers(&env),
        2,
        "a second copy, with the writers stopped"
    );
    assert_no_row_lost(&env);
}

#[test]
fn a_dyno_scaled_up_and_down_during_a_pause_is_seen_and_the_resume_copies_again() {
    let env = Env::new("demo");
    env.run(&[run_args(), vec!["--stop-before", "cutover"]].concat())
        .code(3);
    // Someone brings web back for a few seconds during the pause (writes
    // land on the old database), then takes it down again: formation and
    // dynos look as pgmigrate left them, but for `updated_at`.
    std::thread::sleep(Duration::from_millis(1100));
    scale(&env, "web", 1);
    std::thread::sleep(Duration::from_millis(1500));
    scale(&env, "web", 0);
    common::settle();
    let rows_before_resume = addon(&env.state(), "postgresql-demo-old")["rows"]
        .as_f64()
        .unwrap();
    let at_copy = env.state()["transfers"][0]["source_rows_at_start"]
        .as_f64()
        .unwrap();
    assert!(
        rows_before_resume > at_copy,
        "the dyno wrote during the pause"
    );
    env.run(&["resume", "-a", APP, "--confirm", APP])
        .ok()
        .stdout_has("copying again");
    assert_eq!(transfers(&env), 2);
    assert_no_row_lost(&env);
}

#[test]
fn without_a_writer_the_cut_over_is_not_held_back() {
    let env = Env::new("demo");
    env.run(&run_args()).ok();
    assert_eq!(transfers(&env), 1, "one copy");
    assert_no_row_lost(&env);
}

#[test]
fn stop_before_cutover_on_an_essential_change_in_place_stops_before_the_change() {
    let mut env = Env::new("methods");
    env.method = None;
    let before = env.app("ess-app");
    env.run(&[
        "run",
        "-a",
        "ess-app",
        "--confirm",
        "ess-app",
        "--to",
        "essential-1",
        "--stop-before",
        "cutover",
    ])
    .code(3)
    .stderr_has("stopped before step change-plan");
    assert_eq!(
        addon(&env.state(), "postgresql-ess")["plan"],
        "heroku-postgresql:essential-0",
        "the plan was not changed"
    );
    assert!(env.mutations().is_empty(), "nothing was sent");
    assert_eq!(env.app("ess-app"), before);
    env.run(&["resume", "-a", "ess-app", "--confirm", "ess-app"])
        .ok();
    assert_eq!(
        addon(&env.state(), "postgresql-ess")["plan"],
        "heroku-postgresql:essential-1"
    );
}

#[test]
fn a_forced_rollback_reports_the_app_as_it_finds_it() {
    let env = Env::new("demo");
    env.run(&[run_args(), vec!["--stop-before", "cutover"]].concat())
        .code(3);
    // During the pause someone attaches the new database as DATABASE by
    // hand (`heroku addons:attach … --as DATABASE`): rollback undoes only
    // what the run did, so it cannot put that back.
    let state = env.state();
    let target = state["addons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"].as_str().unwrap().contains("-pgmigrate-"))
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/addon-attachments", env.sandbox.base_url());
    let r = ureq::post(&url)
        .set("Authorization", &format!("Bearer {}", env.sandbox.token()))
        .set("Accept", "application/vnd.heroku+json; version=3")
        .send_json(json!({"addon": target, "app": APP, "name": "DATABASE",
                          "namespace": null, "confirm": APP}));
    assert!(r.is_ok(), "{r:?}");
    env.run(&["rollback", "-a", APP, "--confirm", APP])
        .code(1)
        .stderr_has("changed outside pgmigrate");
    env.run(&["rollback", "-a", APP, "--confirm", APP, "--force"])
        .ok()
        .stdout_has("NOT as it was before the run")
        .stdout_has("DATABASE is attached to")
        .stdout_lacks("the app is as it was before the run");
    // Without drift, a rollback says the app is as it was, checked live.
    let env = Env::new("demo");
    env.run(&[run_args(), vec!["--stop-before", "cutover"]].concat())
        .code(3);
    env.run(&["rollback", "-a", APP, "--confirm", APP])
        .ok()
        .stdout_has("the app is as it was before the run (checked live");
}

/// A second operator with their own `PGMIGRATE_HOME`, same sandbox.
fn second_operator(env: &Env) -> tempfile::TempDir {
    let _ = env;
    tempfile::tempdir().unwrap()
}

fn run_from(env: &Env, home: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut c = env.command(&[run_args(), extra.to_vec()].concat());
    c.env("PGMIGRATE_HOME", home);
    c
}

#[test]
fn a_second_operator_from_another_machine_is_refused_while_a_run_is_under_way() {
    let env = slow_copy();
    let before = env.app(APP);
    let first = env
        .command(&run_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first run's target exists", || {
        env.state()["addons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"].as_str().unwrap().contains("-pgmigrate-"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let other = second_operator(&env);
    let mutations_before = env.mutations().len();
    let out = common::output(run_from(&env, other.path(), &[]));
    out.code(1)
        .stderr_has("another migration of demo-app looks under way")
        .stderr_has("attached only as PGMIGRATE_")
        .stderr_has("Nothing was changed");
    assert_eq!(
        env.mutations().len(),
        mutations_before + count_new(&env, mutations_before),
        "the second run sent no change"
    );
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_row_lost(&env);
    assert_eq!(env.app(APP)["formation"], before["formation"]);
    let created: Vec<Value> = env.state()["addons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"].as_str().unwrap().contains("-pgmigrate-"))
        .cloned()
        .collect();
    assert_eq!(created.len(), 1, "one target: {created:#?}");
}

/// The changes sent since `from` by anyone but the first run (none, when
/// the second was refused): counted by their source being the first run's
/// own requests is not possible here, so the second run's are told by the
/// absence of a second `POST /apps/demo-app/addons`.
fn count_new(env: &Env, from: usize) -> usize {
    let creates = env.mutations()[from..]
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/apps/demo-app/addons")
        .count();
    assert_eq!(creates, 0, "no second target was created");
    env.mutations().len() - from
}

#[test]
fn two_operators_at_the_same_moment_one_gives_way_and_removes_its_target() {
    let env = slow_copy();
    let before = env.app(APP);
    let homes = [second_operator(&env), second_operator(&env)];
    let spawn = |h: &tempfile::TempDir| {
        run_from(&env, h.path(), &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&homes[0]), spawn(&homes[1]));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    let texts = [
        String::from_utf8_lossy(&a.stderr).to_string(),
        String::from_utf8_lossy(&b.stderr).to_string(),
    ];
    let winners = codes.iter().filter(|c| **c == Some(0)).count();
    assert_eq!(
        winners, 1,
        "exactly one run succeeds: {codes:?}\n{texts:#?}"
    );
    let loser = codes.iter().position(|c| *c != Some(0)).unwrap();
    assert_eq!(codes[loser], Some(1), "{}", texts[loser]);
    // Either refused at preflight (the other's target was already there)
    // or it gave way after creating its own.
    assert!(
        texts[loser].contains("looks under way")
            || texts[loser].contains("started at the same moment"),
        "{}",
        texts[loser]
    );
    eprintln!("the loser: {}", texts[loser].lines().next().unwrap_or(""));
    common::settle();
    let state = env.state();
    let live: Vec<&Value> = state["addons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"].as_str().unwrap().contains("-pgmigrate-") && a["deleted"] == false)
        .collect();
    assert_eq!(live.len(), 1, "nothing of the other run is left: {live:#?}");
    assert_eq!(state["apps"][APP]["database"], live[0]["name"]);
    assert_no_row_lost(&env);
    assert_eq!(env.app(APP)["formation"], before["formation"]);
    assert_eq!(env.app(APP)["maintenance"], false);
}

#[test]
fn an_app_found_down_with_no_journal_here_is_refused_until_told_its_formation() {
    let env = Env::new("demo");
    // Another run (elsewhere) has it down: maintenance on, dynos at zero.
    let url = format!("{}/apps/{APP}", env.sandbox.base_url());
    ureq::patch(&url)
        .set("Authorization", &format!("Bearer {}", env.sandbox.token()))
        .set("Accept", "application/vnd.heroku+json; version=3")
        .send_json(json!({"maintenance": true}))
        .unwrap();
    scale(&env, "web", 0);
    scale(&env, "worker", 0);
    let n = env.mutations().len();
    env.run(&run_args())
        .code(1)
        .stderr_has("is in maintenance with every process type at zero")
        .stderr_has("--force --restore-formation");
    env.run(&[run_args(), vec!["--force"]].concat())
        .code(1)
        .stderr_has("--restore-formation");
    assert_eq!(env.mutations().len(), n, "nothing was changed");
    env.run(
        &[
            run_args(),
            vec!["--force", "--restore-formation", "web=2,worker=1"],
        ]
        .concat(),
    )
    .ok();
    let app = env.app(APP);
    assert_eq!(app["maintenance"], false, "maintenance ends off");
    let q = |t: &str| {
        app["formation"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == t)
            .unwrap()["quantity"]
            .clone()
    };
    assert_eq!((q("web"), q("worker")), (json!(2), json!(1)));
}

#[test]
fn migrations_one_after_another_are_not_taken_for_a_run_under_way() {
    let env = Env::new("demo");
    for to in ["essential-0", "essential-1", "essential-2"] {
        env.run(&["run", "-a", APP, "--confirm", APP, "--to", to])
            .ok();
        common::settle();
    }
    let state = env.state();
    let db = state["apps"][APP]["database"].as_str().unwrap();
    assert_eq!(addon(&state, db)["plan"], "heroku-postgresql:essential-2");
}
