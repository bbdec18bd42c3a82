//! A hostile world: API faults during a run, injected by the sandbox. Short
//! bursts are absorbed by the client's bounded retries and the run
//! completes; longer outages, refusals and broken transfers stop the run at
//! a resumable point (exit 3) with a message naming the step, the HTTP
//! status, Heroku's error id, the Request-Id and the next commands; after
//! the outage `resume` (or `rollback`) finishes the job.

mod common;

use common::crash::assert_completed;
use common::Env;
use pgmigrate::sim::{Fault, FaultAction};
use serde_json::Value;

const APP: &str = "crash-app";

fn status(code: u16, id: &str, retry_after: Option<u64>) -> FaultAction {
    FaultAction::Status {
        status: code,
        id: id.into(),
        message: format!("injected {code}"),
        retry_after,
    }
}

fn fault(method: &str, path: &str, times: u32, action: FaultAction) -> Fault {
    Fault::on(method, path, times, action)
}

fn env_with(faults: Vec<Fault>) -> Env {
    let mut s = common::scenario("crash");
    s.faults = faults;
    Env::with(s)
}

/// Run with short network budgets.
fn run(env: &Env, extra: &[&str]) -> common::Out {
    run_for(env, "1.5", extra)
}

fn run_for(env: &Env, retry_for: &str, extra: &[&str]) -> common::Out {
    let mut args = vec!["run", "-a", APP, "--confirm", APP, "--to", "premium-0"];
    args.extend_from_slice(extra);
    let mut c = env.command(&args);
    c.env("PGMIGRATE_HTTP_TIMEOUT", "0.5")
        .env("PGMIGRATE_RETRY_FOR", retry_for);
    common::output(c)
}

/// The app as the `crash` scenario starts it (every test here starts from
/// it): what a completed run must restore.
fn pristine() -> Value {
    let sandbox = pgmigrate::sim::Sandbox::start(common::scenario("crash"), 0).expect("sandbox");
    sandbox.snapshot()["apps"][APP].clone()
}

/// The run completed: the app exactly as an uninterrupted migration leaves
/// it (the shared check of recovery.rs and fault_sweep.rs), and the journal
/// says so.
fn completed(env: &Env) {
    common::settle();
    assert_completed(env, &pristine(), "api_faults");
    assert_eq!(env.journal(APP)["outcome"], "completed");
}

/// Every injected fault hit a request (`at_least` of them).
fn fired(env: &Env, at_least: u32) {
    let n = env.sandbox.faults_fired();
    assert!(n >= at_least, "{n} fault(s) fired, expected {at_least}");
}

/// The run stopped resumably, said why and what to do next.
fn stopped(env: &Env, out: &common::Out, step: &str, needles: &[&str]) {
    out.code(3)
        .stderr_has(&format!("stopped at step {step}"))
        .stderr_has("pgmigrate resume --app crash-app")
        .stderr_has("pgmigrate rollback --app crash-app");
    for n in needles {
        out.stderr_has(n);
    }
    let j = env.journal(APP);
    assert_eq!(j["outcome"], "stopped");
    let st = env.run(&["status", "-a", APP, "--json"]);
    let v: Value = serde_json::from_str(&st.ok().stdout).unwrap();
    assert!(v["next_commands"][0]
        .as_str()
        .unwrap()
        .starts_with("pgmigrate resume"));
}

fn resume(env: &Env) {
    env.sandbox.clear_faults();
    env.run(&["resume", "-a", APP, "--confirm", APP]).ok();
    completed(env);
}

#[test]
fn rate_limits_with_and_without_retry_after_are_waited_out() {
    let env = env_with(vec![
        fault("GET", "/dynos", 2, status(429, "rate_limit", Some(1))),
        fault("PATCH", "/formation", 1, status(429, "rate_limit", None)),
    ]);
    run_for(&env, "10", &[]).ok();
    completed(&env);
    let refused = env
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(refused, 3, "every 429 was retried");
    assert_eq!(env.sandbox.faults_fired(), 3);
}

#[test]
fn bursts_of_500_and_503_and_resets_are_absorbed() {
    let env = env_with(vec![
        fault(
            "GET",
            "/apps/crash-app/formation",
            2,
            status(500, "internal_server_error", None),
        ),
        fault("PATCH", "/config-vars", 2, status(503, "unavailable", None)),
        fault("GET", "/transfers/", 1, FaultAction::Drop),
        fault("GET", "/wait_status", 1, FaultAction::Hang { ms: 1500 }),
    ]);
    run(&env, &[]).ok();
    assert_eq!(env.sandbox.faults_fired(), 6, "every fault hit a request");
    completed(&env);
}

#[test]
fn an_outage_longer_than_the_retry_budget_stops_resumably() {
    // The second look at the dynos, just before maintenance goes on (the
    // first is preflight's).
    let mut f = fault("GET", "/dynos", 0, status(503, "unavailable", None));
    f.nth = Some(2);
    let env = env_with(vec![f]);
    let out = run(&env, &[]);
    stopped(
        &env,
        &out,
        "maintenance-on",
        &["HTTP 503 unavailable", "Request-Id"],
    );
    assert_eq!(
        env.app(APP)["maintenance"],
        false,
        "stopped before the app was touched"
    );
    fired(&env, 1);
    resume(&env);
}

#[test]
fn an_outage_inside_the_window_stops_resumably_and_resume_finishes() {
    let env = env_with(vec![fault(
        "POST",
        "/addon-attachments",
        0,
        status(503, "unavailable", None),
    )]);
    // The alias attach is refused at once (a POST is not retried on 503).
    let out = run(&env, &[]);
    stopped(
        &env,
        &out,
        "alias-source",
        &["HTTP 503 unavailable", "Request-Id"],
    );
    fired(&env, 1);
    resume(&env);
}

#[test]
fn a_request_that_never_answers_times_out() {
    let env = env_with(vec![fault(
        "GET",
        "/transfers/",
        0,
        FaultAction::Hang { ms: 3000 },
    )]);
    // Each look at the transfer times out; a failed look does not stop the
    // copy at Heroku, so 20 are tolerated (as the official CLI does), each
    // said, then the run stops resumably.
    let out = run_for(&env, "0.4", &[]);
    out.stdout_has("no answer from Heroku")
        .stdout_has("(20 of 20 tolerated)");
    stopped(
        &env,
        &out,
        "wait-copy",
        &["no answer from Heroku", "21 looks at transfer c001 failed"],
    );
    assert!(env.sandbox.faults_fired() >= 21, "every look hung");
    assert_eq!(env.app(APP)["database"], "postgresql-crash-old");
    fired(&env, 1);
    resume(&env);
}

#[test]
fn an_answer_that_is_not_json_is_said_and_looked_at_again() {
    let env = env_with(vec![fault("GET", "/transfers/", 1, FaultAction::BadBody)]);
    let out = run(&env, &[]);
    out.ok()
        .stdout_has("not what pgmigrate expects")
        .stdout_has("(1 of 20 tolerated)");
    assert_eq!(env.sandbox.faults_fired(), 1);
    completed(&env);
}

#[test]
fn a_stalled_copy_is_reported_never_cancelled_and_rollback_cancels_it() {
    use std::io::{BufRead, BufReader};
    let env = env_with(vec![fault(
        "POST",
        "/transfers",
        1,
        FaultAction::TransferStalls,
    )]);
    let mut c = env.command(&[
        "run",
        "-a",
        APP,
        "--confirm",
        APP,
        "--to",
        "premium-0",
        "--copy-stall-timeout",
        "1",
    ]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let warning = loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("has moved no byte") => break l,
            Some(_) => {}
            None => panic!("the run ended without reporting the silence"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    assert!(
        warning.contains("heroku pg:backups:info c001 --app crash-app"),
        "{warning}"
    );
    assert_eq!(env.sandbox.faults_fired(), 1);
    // Reported, not acted on: the run is still waiting, nothing cancelled.
    assert!(child.try_wait().unwrap().is_none(), "still waiting");
    assert_eq!(env.state()["transfers"][0]["canceled"], false);
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(killed);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(env.state()["transfers"][0]["canceled"], false);
    assert_eq!(env.app(APP)["database"], "postgresql-crash-old");
    env.run(&["rollback", "-a", APP, "--confirm", APP])
        .ok()
        .stdout_has("cancelled transfer");
    assert_eq!(env.state()["transfers"][0]["canceled"], true);
}

#[test]
fn a_target_that_fails_to_provision_stops_and_rolls_back() {
    let env = env_with(vec![fault(
        "POST",
        "/apps/crash-app/addons",
        1,
        FaultAction::ProvisionFails,
    )]);
    let before = common::shape(&env.app(APP));
    let out = run(&env, &[]);
    stopped(&env, &out, "wait-target", &["Heroku could not create it"]);
    assert_eq!(env.sandbox.faults_fired(), 1);
    env.run(&["rollback", "-a", APP, "--confirm", APP]).ok();
    assert_eq!(common::shape(&env.app(APP)), before);
}

#[test]
fn a_revoked_token_or_lost_access_mid_run_stops_resumably() {
    for (code, id) in [(401, "unauthorized"), (403, "forbidden")] {
        let env = env_with(vec![fault(
            "PATCH",
            "/formation",
            1,
            status(code, id, None),
        )]);
        let out = run(&env, &[]);
        stopped(
            &env,
            &out,
            "scale-down",
            &[&format!("HTTP {code} {id}"), "Request-Id"],
        );
        // Maintenance is on, nothing scaled: resume finishes the job.
        assert_eq!(env.app(APP)["maintenance"], true);
        assert_eq!(env.sandbox.faults_fired(), 1);
        resume(&env);
    }
}

/// The app and every add-on are as they were: nothing was created.
fn untouched(env: &Env, before: &Value) {
    let state = env.state();
    assert_eq!(state["apps"][APP], *before, "the app is as it was");
    assert!(
        !state["addons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"].as_str().unwrap().contains("-pgmigrate-")),
        "no add-on created"
    );
}

#[test]
fn heroku_refusing_to_create_the_target_ends_the_run_as_refused() {
    // A plan Heroku will not provision (422), or an account it cannot bill
    // (402): creating the target is the run's first change, so nothing was
    // changed and the run is over, not stopped: it does not block the next.
    for (code, id, fix) in [
        (
            422,
            "invalid_params",
            "heroku addons:plans heroku-postgresql",
        ),
        (402, "delinquent", "billing"),
    ] {
        let env = env_with(vec![fault("POST", "/addons", 0, status(code, id, None))]);
        let before = env.app(APP);
        let out = run(&env, &[]);
        out.code(1)
            .stderr_has("Heroku refused to create the target add-on")
            .stderr_has(&format!("HTTP {code} {id}"))
            .stderr_has("Request-Id")
            .stderr_has(fix)
            .stderr_has("Nothing was changed on the app");
        untouched(&env, &before);
        fired(&env, 1);
        assert_eq!(env.journal(APP)["outcome"], "refused");
        env.run(&["status", "-a", APP])
            .ok()
            .stdout_has("refused: nothing was changed")
            .stdout_has(&format!("HTTP {code} {id}"))
            .stdout_has("pgmigrate run --app crash-app --to heroku-postgresql:premium-0");
        env.run(&["rollback", "-a", APP, "--confirm", APP])
            .code(1)
            .stderr_has("nothing to roll back");
        env.sandbox.clear_faults();
        run(&env, &[]).ok();
        completed(&env);
    }
}

#[test]
fn an_api_without_plan_lookups_checks_the_plan_when_the_target_is_created() {
    // Heroku serves `GET /addon-services/{service}/plans/{plan}`; an API
    // that answers 404 for the service itself does not, and the plan is
    // then checked by the add-on creation, which changes nothing if refused.
    let no_lookups = || fault("GET", "/addon-services/", 0, status(404, "not_found", None));
    let env = env_with(vec![no_lookups()]);
    let out = run(&env, &[]);
    out.ok().stdout_has("does not serve plan lookups");
    fired(&env, 2);
    completed(&env);

    let env = env_with(vec![no_lookups()]);
    let before = env.app(APP);
    let mut c = env.command(&[
        "run",
        "-a",
        APP,
        "--confirm",
        APP,
        "--to",
        "heroku-postgresql:gigantic-9",
    ]);
    c.env("PGMIGRATE_RETRY_FOR", "1.5");
    common::output(c)
        .code(1)
        .stderr_has("Heroku refused to create the target add-on")
        .stderr_has("gigantic-9");
    untouched(&env, &before);
    fired(&env, 2);

    // With lookups (Heroku), an unknown plan is refused before anything is
    // sent but reads.
    let env = env_with(vec![]);
    let mut c = env.command(&["run", "-a", APP, "--confirm", APP, "--to", "gigantic-9"]);
    c.env("PGMIGRATE_RETRY_FOR", "1.5");
    common::output(c)
        .code(1)
        .stderr_has("no Postgres plan named gigantic-9");
    assert!(env.mutations().is_empty());
}

#[test]
fn dynos_that_outlive_the_drain_timeout_stop_the_run_before_the_copy() {
    let mut s = common::scenario("crash");
    s.timing.dyno_stop_ms = 4000;
    let env = Env::with(s);
    let out = run(&env, &["--drain-timeout", "1"]);
    stopped(
        &env,
        &out,
        "wait-dynos",
        &["dynos still running after 1s", "heroku ps:stop"],
    );
    assert!(
        !env.sandbox
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("/transfers")),
        "no copy started while dynos could still write"
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    resume(&env);
}

#[test]
fn an_outage_during_preflight_changes_nothing_and_says_to_run_again() {
    let env = env_with(vec![fault(
        "GET",
        "/formation",
        0,
        status(503, "unavailable", None),
    )]);
    let before = env.app(APP);
    run(&env, &[])
        .code(1)
        .stderr_has("preflight failed while reading the formation")
        .stderr_has("HTTP 503")
        .stderr_has("Request-Id")
        .stderr_has("this command changed nothing")
        .stderr_has("run the same command again");
    assert!(env.mutations().is_empty());
    fired(&env, 1);
    untouched(&env, &before);
    env.sandbox.clear_faults();
    run(&env, &[]).ok();
    completed(&env);
}
