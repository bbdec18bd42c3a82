//! Real data: migrations through the sandbox backed by a real PostgreSQL
//! server (`PGMIGRATE_TEST_POSTGRES`; `.ci/run` starts one). Seeded rows are
//! copied by pg_dump | pg_restore and verified before the cut-over; a copy
//! that silently loses a table or rows, or changes a value, is caught
//! before anything is switched, and rollback is then clean.

mod common;

use common::{addon, Env};
use pgmigrate::sim::pg::Corruption;
use pgmigrate::sim::{Fault, FaultAction};

const APP: &str = "demo-app";

fn env(test: &str, corrupt: Option<Corruption>) -> Option<Env> {
    let url = common::postgres_url(test)?;
    let mut s = common::scenario("demo");
    s.writes_per_second_per_dyno = 0.0;
    if let Some(how) = corrupt {
        s.faults.push(Fault::on(
            "POST",
            "/transfers",
            1,
            FaultAction::TransferCorrupts { how },
        ));
    }
    Some(Env::with_postgres(s, &url))
}

fn run(env: &Env, verify: &str) -> common::Out {
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        APP,
        "--confirm",
        APP,
        "--verify",
        verify,
    ]);
    c.env_remove("PGMIGRATE_VERIFY");
    common::output(c)
}

/// Count rows of a table through the database URL the sandbox gave.
fn count(url: &str, table: &str) -> Option<i64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).ok()?;
    c.query_one(format!("SELECT count(*) FROM {table}").as_str(), &[])
        .ok()
        .map(|r| r.get(0))
}

#[test]
fn verify_connects_with_tls_when_the_server_offers_it() {
    let Some(url) = common::postgres_url("verify_connects_with_tls_when_the_server_offers_it")
    else {
        return;
    };
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let ssl_on: String = admin.query_one("SHOW ssl", &[]).unwrap().get(0);
    let mut c = pgmigrate::compare::connect(&url).expect("connects");
    // Debian's cluster has TLS on (a snake-oil certificate, which
    // sslmode=require semantics accept); elsewhere it may be off.
    assert_eq!(
        pgmigrate::compare::uses_tls(&mut c).unwrap(),
        ssl_on == "on"
    );
}

#[test]
fn seeded_rows_are_copied_and_verified_end_to_end() {
    let Some(env) = env("seeded_rows_are_copied_and_verified_end_to_end", None) else {
        return;
    };
    run(&env, "checksum")
        .ok()
        .stdout_has("verify: 3 table(s) match (checksum)");
    let state = env.state();
    let new = state["apps"][APP]["database"].as_str().unwrap().to_string();
    let new_url = addon(&state, &new)["url"].as_str().unwrap().to_string();
    let old_url = addon(&state, "postgresql-demo-old")["url"]
        .as_str()
        .unwrap()
        .to_string();
    for table in ["users", "orders", "events"] {
        let n = count(&new_url, table).expect("table copied");
        assert!(n > 0);
        assert_eq!(Some(n), count(&old_url, table), "{table}");
    }
    let status = env.run(&["status", "-a", APP, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.ok().stdout).unwrap();
    assert_eq!(v["answers"]["verify"]["value"], "matched");
    let j = env.journal(APP);
    assert_eq!(
        j["steps"][9]["output"]["tables"].as_array().unwrap().len(),
        3
    );
    assert!(
        !serde_json::to_string(&j)
            .unwrap()
            .contains("pgmigrate-test"),
        "no password journaled"
    );
}

fn caught(test: &str, how: Corruption, verify: &str, table_verdict: &str) {
    let Some(env) = env(test, Some(how)) else {
        return;
    };
    let before = common::shape(&env.app(APP));
    let out = run(&env, verify);
    out.code(3)
        .stderr_has("differs from the old one")
        .stderr_has(table_verdict)
        .stderr_has("nothing was switched");
    assert_eq!(
        env.app(APP)["database"],
        "postgresql-demo-old",
        "not switched"
    );
    let status = env.run(&["status", "-a", APP]);
    status.ok().stdout_has("differs");
    env.run(&["rollback", "-a", APP, "--confirm", APP]).ok();
    common::settle();
    assert_eq!(common::shape(&env.app(APP)), before, "rolled back");
}

#[test]
fn a_copy_missing_a_table_is_caught_before_cut_over() {
    caught(
        "a_copy_missing_a_table_is_caught_before_cut_over",
        Corruption::DropTable,
        "counts",
        "public.events: missing-in-target",
    );
}

#[test]
fn a_copy_missing_rows_is_caught_before_cut_over() {
    caught(
        "a_copy_missing_rows_is_caught_before_cut_over",
        Corruption::DropRows,
        "counts",
        "public.events: count-differs",
    );
}

#[test]
fn a_changed_value_is_caught_by_checksums_only() {
    caught(
        "a_changed_value_is_caught_by_checksums_only",
        Corruption::AlterValue,
        "checksum",
        "public.events: checksum-differs",
    );
    // With counts alone the same damage goes unnoticed (documented).
    let Some(env) = env(
        "a_changed_value_is_caught_by_checksums_only",
        Some(Corruption::AlterValue),
    ) else {
        return;
    };
    run(&env, "counts").ok();
}

/// A writer the formation does not show (an outside worker, a console)
/// writes to the old database during a `--stop-before cutover` pause: the
/// resumed run compares again, sees the difference, and copies again.
#[test]
fn rows_written_during_a_pause_are_seen_by_the_comparison_and_copied_again() {
    let Some(env) = env(
        "rows_written_during_a_pause_are_seen_by_the_comparison_and_copied_again",
        None,
    ) else {
        return;
    };
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        APP,
        "--confirm",
        APP,
        "--verify",
        "counts",
        "--stop-before",
        "cutover",
    ]);
    c.env_remove("PGMIGRATE_VERIFY");
    common::output(c).code(3);
    let old_url = addon(&env.state(), "postgresql-demo-old")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let before = count(&old_url, "events").unwrap();
    let mut db = postgres::Client::connect(&old_url, postgres::NoTls).unwrap();
    db.batch_execute(
        "INSERT INTO events (id, kind, payload, at) \
         SELECT coalesce(max(id), 0) + 1, 'late', 'written during the pause', now() FROM events",
    )
    .expect("a row written to the old database");
    let after = count(&old_url, "events").unwrap();
    assert!(after > before, "the writer wrote");
    let mut c = env.command(&["resume", "-a", APP, "--confirm", APP]);
    c.env_remove("PGMIGRATE_VERIFY");
    common::output(c)
        .ok()
        .stdout_has("after the pause, the new database differs");
    let state = env.state();
    let new = state["apps"][APP]["database"].as_str().unwrap().to_string();
    let new_url = addon(&state, &new)["url"].as_str().unwrap().to_string();
    assert_eq!(count(&new_url, "events"), Some(after), "the row was copied");
    assert_eq!(state["transfers"].as_array().unwrap().len(), 2);
}
