//! End-to-end: the real binary migrates sandbox apps; the app must end with
//! DATABASE on the new add-on, every copied var rebound, formation, sizes
//! and maintenance restored, the old database kept, and no row written to
//! the old database after the copy started.

mod common;

use common::{addon, assert_no_secret, live_addons, Env};
use serde_json::Value;

fn migrate(env: &Env, app: &str, extra: &[&str]) -> common::Out {
    let mut args = vec!["run", "--app", app, "--confirm", app];
    if !extra.contains(&"--to") {
        args.extend_from_slice(&["--to", "essential-0"]);
    }
    args.extend_from_slice(extra);
    let out = env.run(&args);
    out.ok();
    out
}

/// The checks every successful migration must pass.
fn assert_migrated(env: &Env, app: &str, before: &Value, plan: &str) -> Value {
    let state = env.state();
    let after = &state["apps"][app];
    let old_name = before["database"].as_str().unwrap();
    let new_name = after["database"].as_str().unwrap();
    assert_ne!(new_name, old_name, "DATABASE moved");
    let new = addon(&state, new_name);
    assert_eq!(new["plan"], plan);
    assert_eq!(new["state"], "provisioned");
    // The old database is kept and still attached under another name.
    let old = addon(&state, old_name);
    assert!(
        after["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["addon_name"] == old_name && a["namespace"].is_null()),
        "old database still attached: {after:#}"
    );
    // Every var that held the old URL now holds the new one.
    let old_url = old["url"].as_str().unwrap();
    let new_url = new["url"].as_str().unwrap();
    let vars = after["config_vars"].as_object().unwrap();
    assert_eq!(vars["DATABASE_URL"], new_url);
    for (k, v) in before["config_vars"].as_object().unwrap() {
        let v = v.as_str().unwrap();
        let same_db = pgmigrate::decisions::same_database(v, old_url);
        let attachment_var = before["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| format!("{}_URL", a["name"].as_str().unwrap()) == *k);
        if same_db && !attachment_var {
            assert_eq!(vars[k], new_url, "{k} rebound");
        } else if !same_db {
            assert_eq!(vars[k], v, "{k} untouched");
        }
    }
    // Formation (quantities and sizes) and maintenance as before.
    assert_eq!(after["formation"], before["formation"]);
    assert_eq!(after["maintenance"], before["maintenance"]);
    // Exactly one add-on created, one transfer, and no write lost: the old
    // database got no row after the copy started.
    let transfers = state["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 1, "one transfer");
    assert_eq!(transfers[0]["succeeded"], true);
    assert_eq!(
        old["rows"], transfers[0]["source_rows_at_start"],
        "rows written to the old database after the copy started"
    );
    state
}

#[test]
fn demo_app_migrates_and_everything_is_restored() {
    let env = Env::new("demo");
    let before = env.app("demo-app");
    let out = migrate(&env, "demo-app", &[]);
    out.stdout_has("completed");
    let state = assert_migrated(&env, "demo-app", &before, "heroku-postgresql:essential-0");
    assert_eq!(live_addons(&state, "demo-app").len(), 3);
    // The dynos wrote rows before maintenance went on (the seed is 25,000)
    // and the copy took them all: the new database holds at least what the
    // old one held when the copy started (its dynos, back up, write on
    // into it), and the old one got nothing after that (assert_migrated).
    let at_copy = state["transfers"][0]["source_rows_at_start"]
        .as_u64()
        .unwrap();
    assert!(at_copy > 25_000, "the dynos wrote before the window");
    let new_name = state["apps"]["demo-app"]["database"].as_str().unwrap();
    let new_rows = addon(&state, new_name)["rows"].as_u64().unwrap();
    assert!(new_rows >= at_copy, "{new_rows} rows copied of {at_copy}");
    // Maintenance was turned on and off, scaling was one batch each way.
    let formation_patches: Vec<_> = env
        .mutations()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/formation"))
        .collect();
    assert_eq!(formation_patches.len(), 2);
    let j = env.journal("demo-app");
    assert_eq!(j["outcome"], "completed");
    assert!(j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["state"] == "done" || s["state"] == "skipped"));
}

#[test]
fn an_app_already_in_maintenance_stays_in_maintenance() {
    let env = Env::new("maintenance-on");
    let before = env.app("quiet-app");
    migrate(&env, "quiet-app", &["--to", "heroku-postgresql:standard-2"]);
    assert_migrated(&env, "quiet-app", &before, "heroku-postgresql:standard-2");
    assert!(
        !env.mutations()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == "/apps/quiet-app"),
        "maintenance was not touched"
    );
    let j = env.journal("quiet-app");
    let skipped: Vec<&str> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "skipped")
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(skipped.contains(&"maintenance-on") && skipped.contains(&"maintenance-off"));
}

#[test]
fn the_connection_pooler_follows_and_an_existing_alias_is_reused() {
    let env = Env::new("pooler");
    let before = env.app("pooled-app");
    migrate(&env, "pooled-app", &["--to", "premium-0"]);
    let state = assert_migrated(&env, "pooled-app", &before, "heroku-postgresql:premium-0");
    let after = &state["apps"]["pooled-app"];
    let new_name = after["database"].as_str().unwrap();
    let pool = after["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "DATABASE_CONNECTION_POOL")
        .expect("pooler still attached");
    assert_eq!(pool["addon_name"], new_name);
    assert_eq!(pool["namespace"], "connection-pooling:default");
    // The old database already had HEROKU_POSTGRESQL_RED: no new alias.
    assert!(!env
        .mutations()
        .iter()
        .any(|r| r.path == "/addon-attachments"
            && r.body.as_ref().is_some_and(|b| b.get("name").is_none())));
}

#[test]
fn paginated_lists_are_followed_to_the_end() {
    let env = Env::new("paginated");
    let before = env.app("big-app");
    migrate(&env, "big-app", &["--to", "standard-0"]);
    assert_migrated(&env, "big-app", &before, "heroku-postgresql:standard-0");
    assert!(
        env.sandbox.requests().iter().any(|r| r.status == 206),
        "lists were paginated"
    );
}

#[test]
fn status_answers_in_words_and_in_json() {
    let env = Env::new("demo");
    migrate(&env, "demo-app", &[]);
    env.run(&["status", "--app", "demo-app"])
        .ok()
        .stdout_has("DATABASE_URL points at the new database")
        .stdout_has("fully rebound")
        .stdout_has("Maintenance is off as it was before the run")
        .stdout_has("heroku addons:destroy postgresql-demo-old");
    let out = env.run(&["status", "--app", "demo-app", "--json"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["status_version"], 1);
    assert_eq!(v["outcome"], "completed");
    assert_eq!(v["answers"]["copy"]["value"], "succeeded");
    assert_eq!(v["answers"]["database_url"]["value"], "new");
    assert_eq!(v["answers"]["rebinding"]["value"], "fully");
    assert_eq!(v["answers"]["maintenance"]["value"], "as-before");
    assert_eq!(v["answers"]["formation"]["value"], "as-before");
    assert_eq!(v["answers"]["target_addon"]["value"], "exists");
    assert_eq!(v["steps"].as_array().unwrap().len(), 15);
    assert!(v["steps"][8]["duration_ms"].as_u64().unwrap() > 0);
    let all = env.run(&["status", "--all", "--json"]);
    let v: Value = serde_json::from_str(&all.ok().stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn the_demo_command_runs_a_whole_migration() {
    let out = common::output({
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pgmigrate"));
        c.arg("demo").env_remove("HEROKU_API_KEY");
        c
    });
    out.ok()
        .stdout_has("Migrated demo-app: completed")
        .stdout_has("downtime (maintenance on → off): ")
        .stdout_has("DATABASE_URL points at the new database");
    // The summary gives the copy's size and time.
    let copied = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("copied: "))
        .expect("a copied line");
    assert!(
        copied.contains(" MB in ") && copied.ends_with('s'),
        "{copied}"
    );
}

#[test]
fn nothing_secret_reaches_the_journal_or_the_output() {
    let env = Env::new("demo");
    let run = env.run(&[
        "-vvv",
        "run",
        "--to",
        "essential-0",
        "--app",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    run.ok();
    let status = env.run(&["-vvv", "status", "--app", "demo-app", "--json"]);
    let human = env.run(&["-vvv", "status", "--app", "demo-app"]);
    let rollback = env.run(&[
        "-vvv",
        "rollback",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
        "--force",
    ]);
    rollback.ok();
    assert!(
        run.stderr.contains("DEBUG"),
        "the most verbose logging was on"
    );
    assert_no_secret(&env, &[run, status, human, rollback]);
}

#[test]
fn nothing_secret_reaches_the_output_of_a_failed_run() {
    let mut s = common::scenario("demo");
    s.faults.push(pgmigrate::sim::Fault::on(
        "POST",
        "/transfers",
        1,
        pgmigrate::sim::FaultAction::TransferFails,
    ));
    // The copy fails, and a look at it is answered by an error whose
    // message carries a database URL with its password (as a proxy or an
    // upstream error can): neither may reach the output or the journal.
    s.faults.push(pgmigrate::sim::Fault {
        method: Some("GET".into()),
        path_contains: Some("/transfers/".into()),
        path_ends_with: None,
        nth: Some(1),
        times: 1,
        action: pgmigrate::sim::FaultAction::Status {
            status: 503,
            id: "unavailable".into(),
            message: "upstream postgres://u:other-credential-secret@db.example.com/d failed".into(),
            retry_after: None,
        },
    });
    let env = Env::with(s);
    let run = env.run(&[
        "-vvv",
        "run",
        "--to",
        "essential-0",
        "--app",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    run.code(3).stderr_has("the copy failed");
    assert_eq!(env.sandbox.faults_fired(), 2, "both faults fired");
    assert!(
        env.sandbox
            .requests()
            .iter()
            .any(|r| r.status == 503 && r.path.contains("/transfers/")),
        "the error with the URL was answered"
    );
    let status = env.run(&["-vvv", "status", "--app", "demo-app", "--json"]);
    let rollback = env.run(&[
        "-vvv",
        "rollback",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    rollback.ok();
    assert_no_secret(&env, &[run, status, rollback]);
}

/// The new database keeps its creation attachment (README, "What a copy
/// does"): `status` says how to remove it, and once it is removed a
/// `rollback --force` of the run still puts the app back.
#[test]
fn the_creation_attachment_is_named_by_status_and_rollback_works_without_it() {
    let env = Env::new("demo");
    let app = "demo-app";
    let before = env.app(app);
    migrate(&env, app, &[]);
    let alias: Vec<Value> = env.app(app)["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"].as_str().unwrap().starts_with("PGMIGRATE_"))
        .cloned()
        .collect();
    assert_eq!(alias.len(), 1, "{alias:?}");
    let name = alias[0]["name"].as_str().unwrap().to_string();
    env.run(&["status", "-a", app])
        .ok()
        .stdout_has(&format!("heroku addons:detach {name} --app {app}"))
        .stdout_has("detaching restarts the dynos");
    // Detached as the status says (`heroku addons:detach` sends this).
    let base = env.sandbox.base_url();
    let agent = ureq::AgentBuilder::new().build();
    let auth = format!("Bearer {}", env.sandbox.token());
    let list: Value = agent
        .get(&format!("{base}/apps/{app}/addon-attachments"))
        .set("Accept", "application/vnd.heroku+json; version=3")
        .set("Authorization", &auth)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name.as_str())
        .and_then(|a| a["id"].as_str())
        .unwrap()
        .to_string();
    agent
        .delete(&format!("{base}/addon-attachments/{id}"))
        .set("Accept", "application/vnd.heroku+json; version=3")
        .set("Authorization", &auth)
        .call()
        .unwrap();
    assert!(!env.app(app)["attachments"]
        .to_string()
        .contains(name.as_str()));
    env.run(&["rollback", "-a", app, "--confirm", app, "--force"])
        .ok();
    common::settle();
    let after = env.app(app);
    assert_eq!(after["database"], before["database"]);
    assert_eq!(env.journal(app)["outcome"], "rolled-back");
    // Every var back on the old database (ANALYTICS_DB held it with other
    // credentials: README, "Known limits"), and no PGMIGRATE_ var left.
    for var in ["DATABASE_URL", "REPORTING_DATABASE_URL"] {
        assert_eq!(
            after["config_vars"][var], before["config_vars"][var],
            "{var}"
        );
    }
    assert!(!after["config_vars"].to_string().contains("PGMIGRATE_"));
}
