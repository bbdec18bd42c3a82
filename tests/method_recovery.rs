//! The crash matrix and lost responses of the follower changeover and the
//! in-place upgrade, generated from their plans as the copy's is
//! (recovery.rs): killed with SIGKILL at every crash point of a run, then
//! `resume` must end like an uninterrupted run (one follower, never two;
//! no row lost; no write refused) and `rollback` must put the app back
//! (or, past the upgrade's swap, refuse and let `resume` finish).

mod common;

use common::changeover::{assert_followed_over, assert_restored, assert_upgraded};
use common::crash::{crash_points, kill_at};
use common::Env;
use pgmigrate::sim::{Fault, FaultAction};

const APP: &str = "std-app";
const OLD: &str = "postgresql-std-old";
const FROM: &str = "heroku-postgresql:standard-0";
const TO: &str = "heroku-postgresql:standard-2";

fn env(method: &'static str) -> Env {
    let mut env = Env::new("methods");
    env.method = Some(method);
    env
}

fn run_args() -> Vec<&'static str> {
    vec!["run", "-a", APP, "--confirm", APP, "--to", "standard-2"]
}

fn follower_points() -> Vec<String> {
    pgmigrate::methods::follower::plan().forward_crash_points()
}

/// The upgrade's points, without the Essential-only wait (skipped here).
fn upgrade_points() -> Vec<String> {
    pgmigrate::methods::upgrade::plan()
        .forward_crash_points()
        .into_iter()
        .filter(|p| !p.ends_with(":wait-plan"))
        .collect()
}

fn step_of(point: &str) -> &str {
    point.rsplit(':').next().unwrap()
}

/// Whether a follower run killed here has let the app run on the follower.
fn follower_past_scale_up(point: &str) -> bool {
    let s = step_of(point);
    (s == "scale-up" && !point.starts_with("polling")) || s == "maintenance-off"
}

/// Whether an upgrade killed here may have asked Heroku for the swap.
fn upgrade_past_swap(point: &str) -> bool {
    let p = pgmigrate::methods::upgrade::plan();
    let at = p.index(step_of(point)).unwrap();
    at >= p
        .index(pgmigrate::methods::upgrade::RUN_MAINTENANCE)
        .unwrap()
}

#[test]
fn the_matrices_cover_every_new_request() {
    let f = follower_points();
    for s in [
        "create-follower",
        "unfollow",
        "wait-writable",
        "promote-target",
    ] {
        assert!(f.contains(&format!("before-outcome:{s}")), "{s}");
    }
    let u = upgrade_points();
    for s in [
        "change-plan",
        "wait-ready",
        "run-maintenance",
        "wait-maintenance",
    ] {
        assert!(u.contains(&format!("before-outcome:{s}")), "{s}");
    }
}

#[test]
fn a_follower_changeover_killed_anywhere_then_resumed_ends_moved() {
    if !crash_points("follower resume") {
        return;
    }
    for point in follower_points() {
        let env = env("follower");
        let before = env.app(APP);
        kill_at(&env, &run_args(), &point);
        let out = env.run(&["resume", "-a", APP, "--confirm", APP]);
        assert_eq!(out.code, 0, "{point}: resume\n{out}");
        common::settle();
        assert_followed_over(&env, APP, OLD, &before, &point);
    }
}

#[test]
fn a_follower_changeover_killed_anywhere_then_rolled_back_is_undone() {
    if !crash_points("follower rollback") {
        return;
    }
    for point in follower_points() {
        let env = env("follower");
        let before = env.app(APP);
        kill_at(&env, &run_args(), &point);
        let mut args = vec!["rollback", "-a", APP, "--confirm", APP];
        if follower_past_scale_up(&point) {
            let refused = env.run(&args);
            assert_eq!(refused.code, 1, "{point}: needs --force\n{refused}");
            args.push("--force");
        }
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{point}: rollback\n{out}");
        common::settle();
        if follower_past_scale_up(&point) {
            // The app wrote to the follower: forced back to the old one.
            let state = env.state();
            assert_eq!(state["apps"][APP]["database"], OLD, "{point}");
        } else {
            assert_restored(&env, APP, OLD, FROM, &before, &point);
        }
    }
}

#[test]
fn an_upgrade_killed_anywhere_then_resumed_ends_upgraded() {
    if !crash_points("upgrade resume") {
        return;
    }
    for point in upgrade_points() {
        let env = env("upgrade");
        let before = env.app(APP);
        kill_at(&env, &run_args(), &point);
        let out = env.run(&["resume", "-a", APP, "--confirm", APP]);
        assert_eq!(out.code, 0, "{point}: resume\n{out}");
        common::settle();
        assert_upgraded(&env, APP, OLD, TO, &before, &point);
    }
}

#[test]
fn an_upgrade_killed_anywhere_is_rolled_back_before_the_swap_and_finished_after() {
    if !crash_points("upgrade rollback") {
        return;
    }
    for point in upgrade_points() {
        let env = env("upgrade");
        let before = env.app(APP);
        kill_at(&env, &run_args(), &point);
        let args = ["rollback", "-a", APP, "--confirm", APP, "--force"];
        let out = env.run(&args);
        if upgrade_past_swap(&point) {
            assert_eq!(out.code, 1, "{point}: no way back past the swap\n{out}");
            assert!(out.stderr.contains("the old server is gone"), "{out}");
            let out = env.run(&["resume", "-a", APP, "--confirm", APP]);
            assert_eq!(out.code, 0, "{point}: resume after the refusal\n{out}");
            common::settle();
            assert_upgraded(&env, APP, OLD, TO, &before, &point);
        } else {
            assert_eq!(out.code, 0, "{point}: rollback\n{out}");
            common::settle();
            assert_restored(&env, APP, OLD, FROM, &before, &point);
        }
    }
}

#[test]
fn a_rollback_killed_anywhere_is_finished_by_rollback() {
    if !crash_points("rollback of rollback") {
        return;
    }
    // A follower changeover stopped before the scale-up, and an upgrade
    // stopped before the swap: every undo they reach, killed.
    for (method, stop) in [("follower", "scale-up"), ("upgrade", "cutover")] {
        let plan = pgmigrate::methods::registry::plan(method).unwrap();
        let last = plan
            .index(pgmigrate::methods::session::stop_alias(method, stop))
            .unwrap();
        let points: Vec<String> = plan
            .undo_crash_points()
            .into_iter()
            .filter(|p| plan.index(step_of(p)).unwrap() < last)
            .collect();
        assert!(points.len() >= 9, "{method}: {points:?}");
        for point in points {
            let env = env(method);
            let before = env.app(APP);
            let mut args = run_args();
            args.extend(["--stop-before", stop]);
            assert_eq!(env.run(&args).code, 3, "{method}: stopped");
            let args = ["rollback", "-a", APP, "--confirm", APP];
            kill_at(&env, &args, &point);
            let out = env.run(&args);
            assert_eq!(out.code, 0, "{method} {point}: second rollback\n{out}");
            common::settle();
            assert_restored(&env, APP, OLD, FROM, &before, &point);
        }
    }
}

fn lost(method: &'static str, verb: &str, path: &str, nth: u32, action: FaultAction) {
    let mut s = common::scenario("methods");
    s.faults.push(Fault {
        method: Some(verb.into()),
        path_contains: Some(path.into()),
        path_ends_with: None,
        nth: Some(nth),
        times: 1,
        action,
    });
    let mut env = Env::with(s);
    env.method = Some(method);
    let before = env.app(APP);
    let what = format!("{method}: {verb} {path} #{nth}");
    let out = env.run(&run_args());
    assert_eq!(out.code, 0, "{what}\n{out}");
    assert_eq!(env.sandbox.faults_fired(), 1, "{what}: the fault fired");
    assert!(
        env.sandbox
            .requests()
            .iter()
            .any(|r| r.status == 0 && r.method == verb && r.path.contains(path)),
        "{what}: its answer was lost"
    );
    common::settle();
    if method == "follower" {
        assert_followed_over(&env, APP, OLD, &before, &what);
    } else {
        assert_upgraded(&env, APP, OLD, TO, &before, &what);
    }
}

#[test]
fn lost_responses_of_the_new_requests_converge_without_duplicates() {
    for action in [FaultAction::DropAfterApply, FaultAction::Drop] {
        lost(
            "follower",
            "POST",
            "/apps/std-app/addons",
            1,
            action.clone(),
        );
        lost("follower", "PUT", "/unfollow", 1, action.clone());
        for nth in 1..=3 {
            lost(
                "follower",
                "POST",
                "/addon-attachments",
                nth,
                action.clone(),
            );
        }
        lost("follower", "PATCH", "/config-vars", 1, action.clone());
        lost(
            "upgrade",
            "PATCH",
            "/apps/std-app/addons/",
            1,
            action.clone(),
        );
        lost("upgrade", "POST", "/run", 1, action.clone());
        lost("upgrade", "PATCH", "/config-vars", 1, action.clone());
        lost("upgrade", "PATCH", "/formation", 1, action.clone());
    }
}
