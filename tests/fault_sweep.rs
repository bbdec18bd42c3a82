//! A fault at every request of a run, as an outside checker injects them:
//! for each request number n of a migration (counted over a fault-free
//! run), the n-th request is answered with a fault, and the run must end
//! where the message says it can be finished from. A single fault, within
//! the client's retry budget, must be absorbed: the run completes. An
//! outage longer than the budget ends the run either refused having
//! changed nothing (exit 1: run it again) or stopped at a resumable point
//! (exit 3: resume). Either way, after the fault, the app
//! ends exactly as an uninterrupted migration leaves it: one add-on
//! created, one successful transfer, no row written after the copy lost.
//!
//! Kills from the outside: the process is SIGKILLed while its n-th request
//! is in flight (the sandbox has acted on it and holds the answer back),
//! for every n of a run (then `resume`, or `rollback`) and of a rollback
//! (then `rollback` again).
//!
//! Rollbacks (of a finished run, with --force) are swept the same way
//! with lost responses and outages, and must end with the app as it was.
//!
//! The same sweeps run over the follower changeover and the in-place
//! upgrade of a Standard database (`methods` scenario): lost responses,
//! outages and kills at every request, each ending as an uninterrupted run
//! of that method leaves the app (one follower, never two; the plan changed
//! in place; no row lost, no write refused).
//!
//! Faults: the connection dropped before the request acts, a lost response
//! (it acts, the answer never comes), an answer slower than the request
//! timeout, a 429 without Retry-After, and an outage (503 from that
//! request on, longer than the retry budget).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::changeover::{assert_followed_over, assert_restored, assert_upgraded};
use common::crash::{assert_completed, assert_rolled_back, pgmigrate_addons, run_args, APP};
use common::{shape, Env};
use pgmigrate::sim::{Fault, FaultAction};
use serde_json::Value;

/// What is migrated, how, and what its end must look like.
struct Subject {
    scenario: &'static str,
    app: &'static str,
    method: &'static str,
    run: &'static [&'static str],
    rollback: &'static [&'static str],
    completed: fn(&Env, &Value, &str),
    rolled_back: fn(&Env, &Value, &str),
}

impl Subject {
    fn env(&self) -> Env {
        self.env_with(common::scenario(self.scenario))
    }
    fn env_with(&self, s: pgmigrate::sim::Scenario) -> Env {
        let mut env = Env::with(s);
        env.method = Some(self.method);
        env
    }
    fn resume(&self) -> Vec<&'static str> {
        vec!["resume", "-a", self.app, "--confirm", self.app]
    }
}

const CRASH_RUN: [&str; 7] = ["run", "-a", APP, "--confirm", APP, "--to", "premium-0"];

/// The copy of the crash scenario's app.
const COPY: Subject = Subject {
    scenario: "crash",
    app: APP,
    method: "copy",
    run: &CRASH_RUN,
    rollback: &ROLLBACK,
    completed: assert_completed,
    rolled_back: assert_rolled_back,
};

const STD: &str = "std-app";
const STD_OLD: &str = "postgresql-std-old";
const STD_RUN: [&str; 7] = ["run", "-a", STD, "--confirm", STD, "--to", "standard-2"];
const STD_ROLLBACK: [&str; 6] = ["rollback", "-a", STD, "--confirm", STD, "--force"];

const FOLLOWER: Subject = Subject {
    scenario: "methods",
    app: STD,
    method: "follower",
    run: &STD_RUN,
    rollback: &STD_ROLLBACK,
    completed: |env, before, label| assert_followed_over(env, STD, STD_OLD, before, label),
    rolled_back: |env, before, label| {
        assert_restored(
            env,
            STD,
            STD_OLD,
            "heroku-postgresql:standard-0",
            before,
            label,
        )
    },
};

const UPGRADE: Subject = Subject {
    scenario: "methods",
    app: STD,
    method: "upgrade",
    run: &STD_RUN,
    rollback: &STD_ROLLBACK,
    completed: |env, before, label| {
        assert_upgraded(
            env,
            STD,
            STD_OLD,
            "heroku-postgresql:standard-2",
            before,
            label,
        )
    },
    // A finished upgrade cannot be rolled back (the old server is gone):
    // its rollbacks are not swept.
    rolled_back: |_, _, label| panic!("{label}: an upgrade is not rolled back"),
};

fn fault_at(n: u32, times: u32, action: FaultAction) -> Fault {
    Fault {
        method: None,
        path_contains: None,
        path_ends_with: None,
        nth: Some(n),
        times,
        action,
    }
}

/// Every request from the `i`-th on answers 503, until the faults are
/// cleared.
fn outage_from(i: u32) -> Fault {
    fault_at(
        i,
        0,
        FaultAction::Status {
            status: 503,
            id: "unavailable".into(),
            message: "Heroku is down.".into(),
            retry_after: None,
        },
    )
}

/// How long the client may retry one request, in seconds: a single fault
/// must be absorbed within it; an outage must outlast it.
#[derive(Clone, Copy)]
enum Budget {
    Absorbs,
    Exhausted,
}

fn with_budgets(env: &Env, budget: Budget, args: &[&str]) -> common::Out {
    // Timeouts are short so that the sweep is quick, but not so short that
    // a loaded machine (this file runs 40 processes at once) times out a
    // healthy request; the follow-up commands use the defaults.
    let retry_for = match budget {
        Budget::Absorbs => "8",
        Budget::Exhausted => "0.4",
    };
    let mut c = env.command(args);
    c.env("PGMIGRATE_HTTP_TIMEOUT", "1")
        .env("PGMIGRATE_RETRY_FOR", retry_for);
    common::output(c)
}

/// What is swept: a migration, or the rollback of a finished one.
#[derive(Clone, Copy)]
enum Verb {
    Run,
    Rollback,
}

const ROLLBACK: [&str; 6] = ["rollback", "-a", APP, "--confirm", APP, "--force"];

/// Run `verb` with `fault`, then finish the way the message says. Returns
/// whether the fault was hit at all (a run may make fewer requests than the
/// fault-free one it was counted on) and the first exit status.
fn case(sub: &Subject, verb: Verb, fault: Fault, budget: Budget, label: &str) -> (bool, i32) {
    let mut s = common::scenario(sub.scenario);
    if let Verb::Run = verb {
        s.faults.push(fault.clone());
    }
    let env = sub.env_with(s);
    let app = sub.app;
    let before = env.app(app);
    let args: Vec<&str> = match verb {
        Verb::Run => sub.run.to_vec(),
        Verb::Rollback => {
            env.run(sub.run).ok();
            common::settle();
            env.sandbox.add_fault(fault);
            sub.rollback.to_vec()
        }
    };
    let again: Vec<&str> = match verb {
        Verb::Run => sub.resume(),
        Verb::Rollback => sub.rollback.to_vec(),
    };
    let out = with_budgets(&env, budget, &args);
    let hit = env.sandbox.faults_fired() > 0;
    match (verb, out.code) {
        (_, 0) => {}
        (_, c) if matches!(budget, Budget::Absorbs) => {
            panic!("{label}: a single fault must be absorbed, not exit {c}\n{out}")
        }
        (Verb::Run, 1) => {
            out.stderr_has("changed nothing");
            common::settle();
            let state = env.state();
            assert_eq!(
                shape(&state["apps"][app]),
                shape(&before),
                "{label}: exit 1 must leave the app as it was\n{out}"
            );
            assert!(pgmigrate_addons(&state).is_empty(), "{label}: no add-on");
            env.sandbox.clear_faults();
            env.run(sub.run).ok();
        }
        // The live check before a rollback failed: nothing was undone yet.
        (Verb::Rollback, 1) => {
            out.stderr_has("changed nothing");
            env.sandbox.clear_faults();
            env.run(&again).ok();
        }
        (_, 3) => {
            out.stderr_has(&format!("pgmigrate {} --app {app}", again[0]));
            if let Verb::Rollback = verb {
                assert!(
                    !out.stderr.contains("pgmigrate resume"),
                    "{label}: a stopped rollback is carried on by rollback\n{out}"
                );
            }
            env.sandbox.clear_faults();
            env.run(&again).ok();
        }
        (_, c) => panic!("{label}: unexpected exit {c}\n{out}"),
    }
    common::settle();
    match verb {
        Verb::Run => (sub.completed)(&env, &before, label),
        Verb::Rollback => (sub.rolled_back)(&env, &before, label),
    }
    (hit, out.code)
}

/// How many requests `verb` makes without faults.
fn requests_of_a_clean(sub: &Subject, verb: Verb) -> u32 {
    let env = sub.env();
    env.run(sub.run).ok();
    let ran = env.sandbox.requests().len();
    if let Verb::Rollback = verb {
        common::settle();
        env.run(sub.rollback).ok();
        return (env.sandbox.requests().len() - ran) as u32;
    }
    ran as u32
}

/// Every case of `faults` at every request number, on a few threads.
fn sweep(
    sub: &Subject,
    verb: Verb,
    name: &str,
    budget: Budget,
    faults: &(dyn Fn(u32) -> Fault + Sync),
) {
    sweep_with(sub, verb, name, &|i, label| {
        case(sub, verb, faults(i), budget, label)
    });
}

/// Run `one(i, label)` for every request number i of a clean `verb`, on a
/// few threads; report every failure, how many cases reached their
/// request, and the exit statuses seen.
fn sweep_with(
    sub: &Subject,
    verb: Verb,
    name: &str,
    one: &(dyn Fn(u32, &str) -> (bool, i32) + Sync),
) {
    let n = requests_of_a_clean(sub, verb);
    let name = format!("{} {name}", sub.method);
    let next = AtomicUsize::new(1);
    let hits = AtomicUsize::new(0);
    let codes = Mutex::new(std::collections::BTreeMap::<i32, u32>::new());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst) as u32;
                if i > n {
                    break;
                }
                let label = format!("{name} at request {i} of {n}");
                let run = std::panic::AssertUnwindSafe(|| one(i, &label));
                match std::panic::catch_unwind(run) {
                    Ok((hit, code)) => {
                        if hit {
                            hits.fetch_add(1, Ordering::SeqCst);
                        }
                        *codes.lock().unwrap().entry(code).or_default() += 1;
                    }
                    Err(e) => {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.lock().unwrap().push(format!("{label}: {msg}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let hits = hits.into_inner();
    eprintln!(
        "{name}: the fault hit {hits} of {n} runs; exit statuses {:?}",
        codes.into_inner().unwrap()
    );
    // Polls make the count vary a little from run to run; most must hit.
    assert!(
        hits * 10 >= n as usize * 8,
        "{name}: only {hits} of {n} hit"
    );
}

#[test]
fn a_connection_dropped_before_any_request_acts() {
    sweep(&COPY, Verb::Run, "drop", Budget::Absorbs, &|i| {
        fault_at(i, 1, FaultAction::Drop)
    });
}

#[test]
fn a_lost_response_to_any_request() {
    sweep(&COPY, Verb::Run, "lost response", Budget::Absorbs, &|i| {
        fault_at(i, 1, FaultAction::DropAfterApply)
    });
}

#[test]
fn an_answer_slower_than_the_timeout_to_any_request() {
    sweep(&COPY, Verb::Run, "slow answer", Budget::Absorbs, &|i| {
        fault_at(i, 1, FaultAction::Hang { ms: 2500 })
    });
}

#[test]
fn a_rate_limit_at_any_request() {
    sweep(&COPY, Verb::Run, "429", Budget::Absorbs, &|i| {
        fault_at(
            i,
            1,
            FaultAction::Status {
                status: 429,
                id: "rate_limit".into(),
                message: "Your account reached the API rate limit.".into(),
                retry_after: None,
            },
        )
    });
}

#[test]
fn an_outage_from_any_request_on() {
    sweep(&COPY, Verb::Run, "outage", Budget::Exhausted, &outage_from);
}

#[test]
fn a_lost_response_to_any_request_of_a_rollback() {
    sweep(
        &COPY,
        Verb::Rollback,
        "rollback, lost response",
        Budget::Absorbs,
        &|i| fault_at(i, 1, FaultAction::DropAfterApply),
    );
}

#[test]
fn an_outage_from_any_request_of_a_rollback_on() {
    sweep(
        &COPY,
        Verb::Rollback,
        "rollback, outage",
        Budget::Exhausted,
        &outage_from,
    );
}

/// Start `args`, and SIGKILL the process while its `n`-th request is in
/// flight: the sandbox has acted on it but holds the answer back. Returns
/// whether that request was reached before the process ended by itself.
fn kill_in_flight(env: &Env, args: &[&str], n: u32) -> bool {
    env.sandbox
        .add_fault(fault_at(n, 1, FaultAction::Hang { ms: 5_000 }));
    let mut c = env.command(args);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().expect("spawn");
    let hit = loop {
        if env.sandbox.faults_fired() > 0 {
            // The request is being answered late; it has acted already.
            std::thread::sleep(std::time::Duration::from_millis(50));
            break true;
        }
        if child.try_wait().expect("wait").is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    child.kill().ok();
    child.wait().ok();
    env.sandbox.clear_faults();
    hit
}

/// Kill a run with its `n`-th request in flight, then finish it the way
/// `then` says: `resume`, or `rollback`.
fn killed_case(sub: &Subject, then: Verb, n: u32, label: &str) -> (bool, i32) {
    let env = sub.env();
    let app = sub.app;
    let before = env.app(app);
    let hit = kill_in_flight(&env, sub.run, n);
    common::settle();
    if !hit {
        // The run made fewer requests than the fault-free one counted
        // (its polls vary with timing: the follower's last catch-up can be
        // settled in one look or take a few) and ended before its n-th:
        // it was not killed, so it must have completed. Counted as a miss
        // (most must hit, see sweep_with).
        assert_eq!(
            env.journal(app)["outcome"],
            "completed",
            "{label}: not killed"
        );
        (sub.completed)(&env, &before, label);
        return (false, 0);
    }
    // A run killed during its preflight has no journal: it changed nothing
    // and is simply run again.
    let out = match (then, !env.journal_paths(app).is_empty()) {
        (Verb::Run, true) => env.run(&sub.resume()),
        (Verb::Run, false) => env.run(sub.run),
        (Verb::Rollback, true) => env.run(sub.rollback),
        (Verb::Rollback, false) => {
            // Killed in preflight: nothing was changed, nothing to undo.
            assert_eq!(shape(&env.app(app)), shape(&before), "{label}");
            assert!(pgmigrate_addons(&env.state()).is_empty(), "{label}");
            return (hit, 0);
        }
    };
    assert_eq!(out.code, 0, "{label}\n{out}");
    common::settle();
    match then {
        Verb::Run => (sub.completed)(&env, &before, label),
        Verb::Rollback => (sub.rolled_back)(&env, &before, label),
    }
    (hit, out.code)
}

#[test]
fn killed_with_any_request_in_flight_then_resumed() {
    sweep_with(&COPY, Verb::Run, "killed, resumed", &|i, label| {
        killed_case(&COPY, Verb::Run, i, label)
    });
}

#[test]
fn killed_with_any_request_in_flight_then_rolled_back() {
    sweep_with(&COPY, Verb::Run, "killed, rolled back", &|i, label| {
        killed_case(&COPY, Verb::Rollback, i, label)
    });
}

#[test]
fn a_rollback_killed_with_any_request_in_flight_then_run_again() {
    sweep_with(&COPY, Verb::Rollback, "rollback killed", &|i, label| {
        let env = COPY.env();
        let before = env.app(APP);
        env.run(&run_args()).ok();
        common::settle();
        let hit = kill_in_flight(&env, &ROLLBACK, i);
        common::settle();
        let out = env.run(&ROLLBACK);
        assert_eq!(out.code, 0, "{label}\n{out}");
        common::settle();
        assert_rolled_back(&env, &before, label);
        (hit, out.code)
    });
}

// The follower changeover and the in-place upgrade: every request of a
// run lost, every request the start of an outage, every request in flight
// when the process is killed.

#[test]
fn a_follower_changeover_with_a_lost_response_to_any_request() {
    sweep(
        &FOLLOWER,
        Verb::Run,
        "lost response",
        Budget::Absorbs,
        &|i| fault_at(i, 1, FaultAction::DropAfterApply),
    );
}

#[test]
fn a_follower_changeover_with_an_outage_from_any_request_on() {
    sweep(
        &FOLLOWER,
        Verb::Run,
        "outage",
        Budget::Exhausted,
        &outage_from,
    );
}

#[test]
fn a_follower_changeover_killed_with_any_request_in_flight_then_resumed() {
    sweep_with(&FOLLOWER, Verb::Run, "killed, resumed", &|i, label| {
        killed_case(&FOLLOWER, Verb::Run, i, label)
    });
}

#[test]
fn a_follower_changeover_rolled_back_with_a_lost_response_to_any_request() {
    sweep(
        &FOLLOWER,
        Verb::Rollback,
        "rollback, lost response",
        Budget::Absorbs,
        &|i| fault_at(i, 1, FaultAction::DropAfterApply),
    );
}

#[test]
fn an_upgrade_with_a_lost_response_to_any_request() {
    sweep(
        &UPGRADE,
        Verb::Run,
        "lost response",
        Budget::Absorbs,
        &|i| fault_at(i, 1, FaultAction::DropAfterApply),
    );
}

#[test]
fn an_upgrade_with_an_outage_from_any_request_on() {
    sweep(
        &UPGRADE,
        Verb::Run,
        "outage",
        Budget::Exhausted,
        &outage_from,
    );
}

#[test]
fn an_upgrade_killed_with_any_request_in_flight_then_resumed() {
    sweep_with(&UPGRADE, Verb::Run, "killed, resumed", &|i, label| {
        killed_case(&UPGRADE, Verb::Run, i, label)
    });
}
