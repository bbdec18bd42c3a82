//! Journals written by pgmigrate 0.1 (format v1, fixtures/journals/v1/)
//! are read, resumed and rolled back by this release. Each test builds the
//! sandbox from the `crash` scenario, restores the state the journal was
//! written against (a test facility of the sandbox) and puts the journal
//! in PGMIGRATE_HOME.

mod common;

use common::Env;
use serde_json::Value;

const APP: &str = "crash-app";

fn load(name: &str) -> (Value, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/journals/v1");
    let read = |f: String| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).expect("fixture")).unwrap()
    };
    (
        read(format!("{name}.json")),
        read(format!("{name}.state.json")),
    )
}

/// A sandbox in the journal's state, with the journal in place.
fn env_with(name: &str) -> (Env, Value) {
    let (journal, state) = load(name);
    let env = Env::new("crash");
    env.sandbox.restore(&state).expect("restore");
    let runs = env.home.path().join("apps").join(APP).join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let run_id = journal["run_id"].as_str().unwrap();
    std::fs::write(
        runs.join(format!("{run_id}.json")),
        serde_json::to_string_pretty(&journal).unwrap(),
    )
    .unwrap();
    (env, journal)
}

fn formation(app: &Value) -> Vec<(String, u64)> {
    let mut f: Vec<(String, u64)> = app["formation"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "release")
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_string(),
                p["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    f.sort();
    f
}

fn facts_formation(journal: &Value) -> Vec<(String, u64)> {
    let mut f: Vec<(String, u64)> = journal["facts"]["formation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_string(),
                p["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    f.sort();
    f
}

fn status_reads(env: &Env) {
    let out = env.run(&["status", "-a", APP, "--json"]);
    let v: Value = serde_json::from_str(&out.ok().stdout).expect("status --json");
    assert_eq!(v["method"], "copy", "{v}");
    assert!(v["summary"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
}

fn rewritten_as_v2(env: &Env) -> Value {
    let j = env.journal(APP);
    assert_eq!(j["format_version"], 2, "{j}");
    j
}

fn assert_completed(env: &Env, journal: &Value) {
    let j = rewritten_as_v2(env);
    assert_eq!(j["outcome"], "completed", "{j}");
    let app = env.app(APP);
    let target = journal["target"]["addon_name"].as_str().unwrap();
    assert_eq!(app["database"], target, "{app}");
    let vars = &app["config_vars"];
    assert_eq!(vars["REPORTING_URL"], vars["DATABASE_URL"], "{app}");
    assert_eq!(
        formation(&app),
        vec![("web".into(), 2), ("worker".into(), 1)]
    );
    assert_eq!(app["maintenance"], false);
}

fn assert_rolled_back(env: &Env, journal: &Value) {
    let j = rewritten_as_v2(env);
    assert_eq!(j["outcome"], "rolled-back", "{j}");
    let state = env.state();
    let app = &state["apps"][APP];
    let source = journal["facts"]["source"]["name"].as_str().unwrap();
    assert_eq!(app["database"], source, "{app}");
    let target_id = journal["results"]["target_addon_id"].as_str().unwrap();
    let target = state["addons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == target_id)
        .expect("target add-on");
    assert_eq!(target["state"], "deprovisioned", "{target}");
    assert_eq!(formation(app), facts_formation(journal));
    assert_eq!(app["maintenance"], journal["facts"]["maintenance_was_on"]);
    let alias = &journal["results"]["alias"];
    if let Some(id) = alias["id"].as_str() {
        assert!(
            !app["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["id"] == id),
            "alias attachment left: {app}"
        );
    }
    let source_id = journal["facts"]["source"]["id"].as_str().unwrap();
    let on_source: Vec<&Value> = app["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["addon_id"] == source_id && t["namespace"].is_null())
        .collect();
    assert!(
        on_source.iter().all(|t| t["name"] == "DATABASE"),
        "an alias attachment left on the source: {app}"
    );
}

fn resumes(name: &str) {
    let (env, journal) = env_with(name);
    status_reads(&env);
    env.run(&["resume", "-a", APP, "--confirm", APP, "--verify", "none"])
        .ok();
    assert_completed(&env, &journal);
}

fn rolls_back(name: &str, force: bool) {
    let (env, journal) = env_with(name);
    status_reads(&env);
    let mut args = vec!["rollback", "-a", APP, "--confirm", APP];
    if force {
        args.push("--force");
    }
    env.run(&args).ok();
    assert_rolled_back(&env, &journal);
}

#[test]
fn a_v1_journal_stopped_before_maintenance_resumes() {
    resumes("stopped-before-maintenance");
}

#[test]
fn a_v1_journal_stopped_before_cutover_resumes() {
    resumes("stopped-before-cutover");
}

#[test]
fn a_v1_journal_stopped_before_maintenance_rolls_back() {
    rolls_back("stopped-before-maintenance", false);
}

#[test]
fn a_v1_journal_stopped_before_cutover_rolls_back() {
    rolls_back("stopped-before-cutover", false);
}

#[test]
fn a_completed_v1_journal_is_read() {
    let (env, _) = env_with("completed");
    status_reads(&env);
}

#[test]
fn a_completed_v1_journal_rolls_back_with_force() {
    rolls_back("completed", true);
}
