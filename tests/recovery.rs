//! Resume and rollback from any point, proven by killing the process.
//!
//! For every crash point (src/crash.rs) of a run, the binary is stopped
//! there with SIGKILL, then `resume` must end exactly like an uninterrupted
//! run (one add-on created, at most one successful transfer, no row lost)
//! and `rollback` must restore the app as it was. Rollbacks are killed at
//! every undo point and run again. Non-idempotent requests whose responses
//! are lost must converge without duplicates.

mod common;

use common::crash::{
    assert_completed, assert_converged, assert_rolled_back, crash_points, kill_at,
    pgmigrate_addons, run_args, APP,
};
use common::Env;
use pgmigrate::sim::{Fault, FaultAction};
use serde_json::Value;

/// Points from which rollback needs --force (the app ran on the target).
fn after_scale_up(point: &str) -> bool {
    point.ends_with(":scale-up")
        && !point.starts_with("after-intent")
        && !point.starts_with("polling")
        || point.ends_with(":maintenance-off")
        || point == "after-intent:scale-up"
}

/// Every crash point of a forward run of the copy, as the engine names
/// them from the plan. The verify step only reads, and needs real
/// databases: these tests, on the simulated sandbox, skip it.
fn forward_points() -> Vec<String> {
    pgmigrate::methods::copy::plan()
        .forward_crash_points()
        .into_iter()
        .filter(|p| !p.ends_with(":verify"))
        .collect()
}

/// Every crash point of a rollback of a completed copy, in order.
fn undo_points() -> Vec<String> {
    pgmigrate::methods::copy::plan().undo_crash_points()
}

#[test]
fn crash_points_are_listed_in_order() {
    let points = forward_points();
    assert_eq!(points.first().unwrap(), "after-intent:create-target");
    assert_eq!(points.last().unwrap(), "after-outcome:maintenance-off");
    assert_eq!(points.len(), 13 * 3 + 3);
    assert_eq!(undo_points().len(), 10 * 3 + 1);
}

#[test]
fn killed_anywhere_then_resumed_ends_like_an_uninterrupted_run() {
    if !crash_points("killed_anywhere_then_resumed_ends_like_an_uninterrupted_run") {
        return;
    }
    for point in forward_points() {
        let env = Env::new("crash");
        let before = env.app(APP);
        kill_at(&env, &run_args(), &point);
        env.run(&["status", "-a", APP])
            .ok()
            .stdout_has("pgmigrate resume");
        let out = env.run(&["resume", "-a", APP, "--confirm", APP]);
        assert_eq!(out.code, 0, "{point}: resume\n{out}");
        common::settle();
        assert_completed(&env, &before, &point);
        let j = env.journal(APP);
        assert_eq!(j["outcome"], "completed", "{point}");
    }
}

#[test]
fn killed_anywhere_then_rolled_back_restores_the_app() {
    if !crash_points("killed_anywhere_then_rolled_back_restores_the_app") {
        return;
    }
    for point in forward_points() {
        let env = Env::new("crash");
        let before = env.app(APP);
        kill_at(&env, &run_args(), &point);
        let mut args = vec!["rollback", "-a", APP, "--confirm", APP];
        if after_scale_up(&point) {
            let refused = env.run(&args);
            // Refused having changed nothing: exit 1, not 2 (bad command line).
            assert_eq!(
                refused.code, 1,
                "{point}: rollback needs --force\n{refused}"
            );
            assert!(refused.stderr.contains("Nothing was changed"), "{refused}");
            assert!(refused.stderr.contains("--force"), "{refused}");
            args.push("--force");
        }
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{point}: rollback\n{out}");
        common::settle();
        assert_rolled_back(&env, &before, &point);
        env.run(&["status", "-a", APP, "--json"])
            .ok()
            .stdout_has("\"rolled-back\"");
    }
}

#[test]
fn a_rollback_killed_anywhere_is_finished_by_rollback() {
    if !crash_points("a_rollback_killed_anywhere_is_finished_by_rollback") {
        return;
    }
    for point in undo_points() {
        let env = Env::new("crash");
        let before = env.app(APP);
        env.run(&run_args()).ok();
        let args = ["rollback", "-a", APP, "--confirm", APP, "--force"];
        kill_at(&env, &args, &point);
        env.run(&["status", "-a", APP]).ok().stdout_has("rollback");
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{point}: second rollback\n{out}");
        common::settle();
        assert_rolled_back(&env, &before, &point);
    }
}

fn lost_response(method: &str, path: &str, nth: u32, action: FaultAction) {
    let mut s = common::scenario("crash");
    s.faults.push(Fault {
        method: Some(method.into()),
        path_contains: Some(path.into()),
        path_ends_with: None,
        nth: Some(nth),
        times: 1,
        action,
    });
    let env = Env::with(s);
    let before = env.app(APP);
    let out = env.run(&run_args());
    assert_eq!(out.code, 0, "{method} {path} #{nth}\n{out}");
    assert_eq!(
        env.sandbox.faults_fired(),
        1,
        "{method} {path} #{nth}: the fault fired"
    );
    assert!(
        env.sandbox
            .requests()
            .iter()
            .any(|r| r.status == 0 && r.method == method && r.path.contains(path)),
        "{method} {path} #{nth}: its answer was lost"
    );
    common::settle();
    assert_completed(&env, &before, &format!("{method} {path} #{nth}"));
}

#[test]
fn lost_responses_of_non_idempotent_requests_converge_without_duplicates() {
    for action in [FaultAction::DropAfterApply, FaultAction::Drop] {
        lost_response("POST", "/addons", 1, action.clone());
        lost_response("POST", "/transfers", 1, action.clone());
        // 1: the old database's alias, 2: DATABASE, 3: the pooler.
        for nth in 1..=3 {
            lost_response("POST", "/addon-attachments", nth, action.clone());
        }
        lost_response("PATCH", "/config-vars", 1, action.clone());
        lost_response("PATCH", "/formation", 1, action.clone());
    }
}

#[test]
fn a_lost_transfer_start_converges_even_where_transfers_cannot_be_listed() {
    // Heroku lists an app's transfers, which is how a transfer whose start
    // was lost is found. An API without that list cannot say; pgmigrate
    // then starts a new transfer (it empties the target first) and warns.
    let mut s = common::scenario("crash");
    s.faults.push(Fault {
        method: Some("GET".into()),
        path_contains: None,
        path_ends_with: Some("/transfers".into()),
        nth: None,
        times: 0,
        action: FaultAction::Status {
            status: 404,
            id: "not_found".into(),
            message: "Not found.".into(),
            retry_after: None,
        },
    });
    s.faults.push(Fault::on(
        "POST",
        "/transfers",
        1,
        FaultAction::DropAfterApply,
    ));
    let env = Env::with(s);
    let before = env.app(APP);
    let out = env.run(&run_args());
    out.ok().stdout_has("does not list transfers");
    assert!(
        env.sandbox
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/transfers") && r.status == 404),
        "the list was asked for and refused"
    );
    assert!(
        env.sandbox
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/transfers") && r.status == 0),
        "the transfer's start response was lost"
    );
    common::settle();
    assert_converged(&env, &before, "no transfer list", 2);
}

#[test]
fn a_failed_copy_stops_before_cut_over_and_rolls_back_cleanly() {
    let mut s = common::scenario("crash");
    s.faults.push(Fault::on(
        "POST",
        "/transfers",
        1,
        FaultAction::TransferFails,
    ));
    let env = Env::with(s);
    let before = env.app(APP);
    let out = env.run(&run_args());
    out.code(3)
        .stderr_has("the copy failed")
        .stderr_has("pg_restore: error")
        .stderr_has("pgmigrate rollback --app crash-app");
    let state = env.state();
    assert_eq!(
        state["apps"][APP]["database"], "postgresql-crash-old",
        "nothing switched"
    );
    let status = env.run(&["status", "-a", APP, "--json"]);
    let v: Value = serde_json::from_str(&status.ok().stdout).unwrap();
    assert_eq!(v["answers"]["copy"]["value"], "failed");
    assert_eq!(v["answers"]["database_url"]["value"], "old");
    assert_eq!(v["answers"]["rebinding"]["value"], "none");
    env.run(&["rollback", "-a", APP, "--confirm", APP]).ok();
    common::settle();
    assert_rolled_back(&env, &before, "failed copy");
}

#[test]
fn a_failed_copy_can_be_resumed_with_a_new_transfer() {
    let mut s = common::scenario("crash");
    s.faults.push(Fault::on(
        "POST",
        "/transfers",
        1,
        FaultAction::TransferFails,
    ));
    let env = Env::with(s);
    let before = env.app(APP);
    env.run(&run_args()).code(3);
    env.run(&["resume", "-a", APP, "--confirm", APP]).ok();
    common::settle();
    assert_completed(&env, &before, "resume after failed copy");
}

#[test]
fn stop_before_cut_over_then_resume() {
    let env = Env::new("crash");
    let before = env.app(APP);
    let mut args = run_args();
    args.extend(["--stop-before", "cutover"]);
    env.run(&args).code(3).stderr_has("--stop-before");
    let app = env.app(APP);
    assert_eq!(app["maintenance"], true, "still in maintenance, copy done");
    assert_eq!(app["database"], "postgresql-crash-old");
    env.run(&["resume", "-a", APP, "--confirm", APP]).ok();
    common::settle();
    assert_completed(&env, &before, "stop-before");
}

#[test]
fn drift_stops_resume_and_rollback_unless_forced() {
    let env = Env::new("crash");
    let mut args = run_args();
    args.extend(["--stop-before", "start-copy"]);
    env.run(&args).code(3);
    // Someone turns maintenance off by hand.
    let token = env.sandbox.token();
    let agent = ureq::AgentBuilder::new().build();
    agent
        .patch(&format!("{}/apps/{APP}", env.sandbox.base_url()))
        .set("Accept", "application/vnd.heroku+json; version=3")
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(serde_json::json!({"maintenance": false}))
        .unwrap();
    let n = env.mutations().len();
    // Refusals having changed nothing (exit 1), not bad input (2).
    env.run(&["resume", "-a", APP, "--confirm", APP])
        .code(1)
        .stderr_has("changed outside pgmigrate")
        .stderr_has("maintenance is off, the journal expects on")
        .stderr_has("Nothing was changed on the app");
    env.run(&["rollback", "-a", APP, "--confirm", APP])
        .code(1)
        .stderr_has("changed outside pgmigrate");
    assert_eq!(env.mutations().len(), n, "nothing changed");
    env.run(&["rollback", "-a", APP, "--confirm", APP, "--force"])
        .ok();
}

#[test]
fn rollback_keep_target_keeps_the_add_on() {
    let env = Env::new("crash");
    let mut args = run_args();
    args.extend(["--stop-before", "scale-up"]);
    env.run(&args).code(3);
    env.run(&["rollback", "-a", APP, "--confirm", APP, "--keep-target"])
        .ok();
    let state = env.state();
    let created = pgmigrate_addons(&state);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["deleted"], false, "kept");
    assert_eq!(state["apps"][APP]["database"], "postgresql-crash-old");
}

#[test]
fn resume_can_turn_verification_off_when_the_databases_are_unreachable() {
    let env = Env::new("crash");
    let before = env.app(APP);
    // The sandbox's simulated databases cannot be connected to.
    let mut c = env.command(&run_args());
    c.env("PGMIGRATE_VERIFY", "counts");
    // Found before the window: the app was never taken down.
    common::output(c)
        .code(3)
        .stderr_has("stopped at step maintenance-on")
        .stderr_has("the app was not taken down")
        .stderr_has("--verify none");
    assert_eq!(
        env.app(APP)["database"],
        "postgresql-crash-old",
        "nothing switched"
    );
    assert_eq!(env.app(APP)["maintenance"], false, "never taken down");
    assert_eq!(env.app(APP)["formation"], before["formation"]);
    env.run(&["resume", "-a", APP, "--confirm", APP, "--verify", "none"])
        .ok();
    common::settle();
    assert_completed(&env, &before, "resume --verify none");
    let j = env.journal(APP);
    assert_eq!(j["options"]["verify"], "none");
    assert_eq!(j["steps"][9]["state"], "skipped");
}
