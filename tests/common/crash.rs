//! The `crash` scenario's app and what a finished, converged or
//! rolled-back migration of it must look like, shared by the tests that
//! interrupt runs (recovery.rs) and inject faults into them (fault_sweep.rs).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use super::{addon, shape, Env};

pub const APP: &str = "crash-app";

pub fn run_args() -> Vec<&'static str> {
    vec!["run", "-a", APP, "--confirm", APP, "--to", "premium-0"]
}

pub fn pgmigrate_addons(state: &Value) -> Vec<Value> {
    state["addons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"].as_str().unwrap().contains("-pgmigrate-"))
        .cloned()
        .collect()
}

/// The app ended exactly as an uninterrupted migration leaves it.
pub fn assert_completed(env: &Env, before: &Value, point: &str) {
    assert_converged(env, before, point, 1);
}

/// As [`assert_completed`], with up to `transfers` successful transfers
/// (each from the old database as it was once its dynos were gone).
pub fn assert_converged(env: &Env, before: &Value, point: &str, transfers: usize) {
    let state = env.state();
    let app = &state["apps"][APP];
    let created = pgmigrate_addons(&state);
    assert_eq!(
        created.len(),
        1,
        "{point}: exactly one add-on created: {created:#?}"
    );
    assert_eq!(created[0]["deleted"], false);
    let new_name = created[0]["name"].as_str().unwrap();
    assert_eq!(app["database"], new_name, "{point}: DATABASE on the target");
    let new_url = addon(&state, new_name)["url"].clone();
    assert_eq!(app["config_vars"]["REPORTING_URL"], new_url, "{point}");
    assert_eq!(app["config_vars"]["PLAIN"], "value");
    let pool = app["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "DATABASE_CONNECTION_POOL")
        .unwrap();
    assert_eq!(pool["addon_name"], new_name, "{point}: pooler moved");
    assert!(app["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["addon_name"] == "postgresql-crash-old" && a["namespace"].is_null()));
    assert_eq!(app["formation"], before["formation"], "{point}");
    assert_eq!(app["maintenance"], before["maintenance"], "{point}");
    let ok: Vec<&Value> = state["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["succeeded"] == true)
        .collect();
    assert!(
        (1..=transfers).contains(&ok.len()),
        "{point}: {} successful transfers",
        ok.len()
    );
    let old = addon(&state, "postgresql-crash-old");
    for t in ok {
        assert_eq!(
            old["rows"], t["source_rows_at_start"],
            "{point}: rows written to the old database after the copy"
        );
    }
}

/// The app is as it was before the run, and the target is gone.
pub fn assert_rolled_back(env: &Env, before: &Value, point: &str) {
    let state = env.state();
    assert_eq!(
        shape(&state["apps"][APP]),
        shape(before),
        "{point}: app restored"
    );
    for a in pgmigrate_addons(&state) {
        assert_eq!(a["deleted"], true, "{point}: target destroyed: {a:#}");
    }
    assert!(
        state["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["finished"] == true || t["canceled"] == true),
        "{point}: no transfer left running"
    );
}

/// Whether the binary under test has live crash points: only a build with
/// debug assertions has them (src/crash.rs), so `cargo test --release`
/// cannot turn them on in `target/release/pgmigrate`. Without them the
/// tests that stop the process at a crash point are skipped, loudly (past
/// the harness's capture); `.ci/run` runs a debug `cargo test`, where they
/// run.
pub fn crash_points(test: &str) -> bool {
    if !pgmigrate::crash::enabled() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: crash points exist only in builds with debug assertions (this \
             is a release build); run `cargo test` without --release to run it"
        );
    }
    pgmigrate::crash::enabled()
}

/// Run `args` until the process reaches `point`, then SIGKILL it.
pub fn kill_at(env: &Env, args: &[&str], point: &str) {
    let mut c = env.command(args);
    c.env("PGMIGRATE_CRASH_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    let mut reached = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        if line == format!("pgmigrate-crash-point {point}") {
            reached = true;
            break;
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        reached,
        "crash point {point} was never reached; stderr:\n{seen}"
    );
}
