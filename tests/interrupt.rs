//! Ctrl-C and SIGTERM during a run: the request in flight finishes and is
//! journaled, the run stops at a resumable point (exit 3: README, "the run
//! or rollback stopped at a resumable point"), and `resume` finishes it. A
//! second signal stops the process at once, with 130 (128 + SIGINT, as a
//! shell reports a process ended by Ctrl-C); the journal already covers
//! every request sent, so `resume` finishes that run too.

mod common;

use std::process::Child;
use std::time::Duration;

use common::process::{self, finish, signal};
use common::Env;
use pgmigrate::sim::{Fault, FaultAction};

const APP: &str = "crash-app";

fn slow_copy() -> Env {
    let mut s = common::scenario("crash");
    s.timing.transfer_ms = 4000;
    s.timing.provision_ms = 1500;
    Env::with(s)
}

/// Start a run and return once its stdout shows `marker`. The app has a
/// connection pooler, so the target is a plan that can pool.
fn start_until(env: &Env, marker: &str) -> Child {
    process::start_until(
        env,
        &["run", "-a", APP, "--confirm", APP, "--to", "premium-0"],
        marker,
    )
}

#[test]
fn ctrl_c_during_the_copy_stops_resumably_and_resume_finishes() {
    let env = slow_copy();
    let child = start_until(&env, "wait-copy: copy the data");
    signal(&child, "INT");
    let (code, stderr) = finish(child);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains("pgmigrate resume --app crash-app"),
        "{stderr}"
    );
    let j = env.journal(APP);
    assert_eq!(j["outcome"], "stopped");
    assert_eq!(env.state()["apps"][APP]["database"], "postgresql-crash-old");
    env.run(&["resume", "-a", APP, "--confirm", APP]).ok();
    assert_eq!(env.journal(APP)["outcome"], "completed");
    assert_eq!(
        env.state()["transfers"].as_array().unwrap().len(),
        1,
        "the running transfer was followed, not restarted"
    );
}

#[test]
fn sigterm_while_provisioning_stops_resumably_and_rollback_cleans_up() {
    let env = slow_copy();
    let before = env.app(APP);
    let child = start_until(&env, "wait-target: wait until");
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let j = env.journal(APP);
    assert_eq!(j["outcome"], "stopped");
    assert_eq!(j["steps"][1]["state"], "done", "the create was journaled");
    env.run(&["rollback", "-a", APP, "--confirm", APP]).ok();
    common::settle();
    assert_eq!(common::shape(&env.app(APP)), common::shape(&before));
}

#[test]
fn a_second_ctrl_c_stops_at_once() {
    // Every look at the transfer hangs for 20 s: the first Ctrl-C arrives
    // while a request is in flight, so the run is still waiting for its
    // answer (the first signal lets it finish) when the second arrives.
    let env = slow_copy();
    env.sandbox.add_fault(Fault::on(
        "GET",
        "/transfers/",
        0,
        FaultAction::Hang { ms: 20_000 },
    ));
    let child = start_until(&env, "wait-copy: copy the data");
    // The sandbox logs a request before it starts to hang on it.
    while !env
        .sandbox
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path.contains("/transfers/"))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.sandbox.faults_fired(), 1, "the poll hangs");
    signal(&child, "INT");
    // Apart, so that the kernel cannot merge the two into one.
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "INT");
    let (code, stderr) = finish(child);
    assert_eq!(code, 130, "{stderr}");
    assert_eq!(
        env.sandbox.faults_fired(),
        1,
        "it exited during the hung request, not after it"
    );
    let out = env.run(&["status", "-a", APP, "--json"]);
    out.ok().stdout_has("pgmigrate resume");
    env.sandbox.clear_faults();
    env.run(&["resume", "-a", APP, "--confirm", APP]).ok();
    assert_eq!(env.journal(APP)["outcome"], "completed");
    assert_eq!(
        env.state()["transfers"].as_array().unwrap().len(),
        1,
        "the transfer started before the exit was followed, not restarted"
    );
}
