//! What a finished or rolled-back follower changeover or in-place upgrade
//! must look like in the sandbox's state, shared by methods.rs and
//! method_recovery.rs.

#![allow(dead_code)]

use serde_json::Value;

use super::crash::pgmigrate_addons;
use super::{addon, shape, Env};

/// No write of the app was refused by a read-only database.
pub fn assert_no_write_refused(state: &Value, app: &str, point: &str) {
    let refused = state["apps"][app]["refused_writes"].as_f64().unwrap_or(0.0);
    assert!(
        refused < 1.0,
        "{point}: {refused} app writes were refused by a read-only database"
    );
}

/// The app runs on the one follower pgmigrate created, unfollowed, with
/// every row of the old database and every var re-pointed; the old
/// database is still attached; formation and maintenance are as before.
pub fn assert_followed_over(env: &Env, app: &str, old: &str, before: &Value, point: &str) {
    let state = env.state();
    let a = &state["apps"][app];
    let created: Vec<Value> = pgmigrate_addons(&state)
        .into_iter()
        .filter(|x| x["deleted"] == false)
        .collect();
    assert_eq!(created.len(), 1, "{point}: one follower: {created:#?}");
    let all = pgmigrate_addons(&state);
    assert_eq!(all.len(), 1, "{point}: never a second follower: {all:#?}");
    let new = &created[0];
    let new_name = new["name"].as_str().unwrap();
    assert_eq!(a["database"], new_name, "{point}: DATABASE on the follower");
    assert!(new["following"].is_null(), "{point}: unfollowed: {new:#}");
    assert_ne!(new["read_only"], true, "{point}: writable");
    if before["config_vars"].get("REPORTING_URL").is_some() {
        assert_eq!(
            a["config_vars"]["REPORTING_URL"], new["url"],
            "{point}: REPORTING_URL rebound"
        );
    }
    for att in a["attachments"].as_array().unwrap() {
        if att["name"] == "DATABASE_CONNECTION_POOL" {
            assert_eq!(att["addon_name"], new_name, "{point}: pooler moved");
        }
    }
    assert!(
        a["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["addon_name"] == old && x["namespace"].is_null()),
        "{point}: the old database stays attached"
    );
    assert_eq!(a["formation"], before["formation"], "{point}");
    assert_eq!(a["maintenance"], before["maintenance"], "{point}");
    let (old_rows, new_rows) = (
        addon(&state, old)["rows"].as_f64().unwrap(),
        new["rows"].as_f64().unwrap(),
    );
    assert!(
        new_rows + 0.5 >= old_rows,
        "{point}: rows lost: the old database has {old_rows}, the new {new_rows}"
    );
    assert_no_write_refused(&state, app, point);
}

/// The add-on is on `to` in place (same id), with a new URL every copy of
/// which was re-pointed, every row kept, the maintenance completed, and
/// formation and maintenance mode as before.
pub fn assert_upgraded(env: &Env, app: &str, name: &str, to: &str, before: &Value, point: &str) {
    let state = env.state();
    let a = &state["apps"][app];
    assert!(
        pgmigrate_addons(&state).is_empty(),
        "{point}: nothing created"
    );
    let db = addon(&state, name);
    assert_eq!(db["plan"], to, "{point}: the plan changed");
    assert_eq!(a["database"], name, "{point}: DATABASE on the same add-on");
    if let Some(old) = before["config_vars"].get("REPORTING_URL") {
        assert_ne!(&db["url"], old, "{point}: the swap gave a new URL");
        assert_eq!(
            a["config_vars"]["REPORTING_URL"], db["url"],
            "{point}: REPORTING_URL rebound"
        );
    }
    assert_eq!(a["formation"], before["formation"], "{point}");
    assert_eq!(a["maintenance"], before["maintenance"], "{point}");
    assert_no_write_refused(&state, app, point);
}

/// The app is as it was (attachments, vars, formation, maintenance), the
/// source on its old plan, and whatever pgmigrate created destroyed.
pub fn assert_restored(
    env: &Env,
    app: &str,
    source: &str,
    plan: &str,
    before: &Value,
    point: &str,
) {
    let state = env.state();
    assert_eq!(
        shape(&state["apps"][app]),
        shape(before),
        "{point}: app restored"
    );
    assert_eq!(
        addon(&state, source)["plan"],
        plan,
        "{point}: plan as before"
    );
    for x in pgmigrate_addons(&state) {
        assert_eq!(x["deleted"], true, "{point}: follower destroyed: {x:#}");
    }
    assert_no_write_refused(&state, app, point);
}
