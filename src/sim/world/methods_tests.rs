//! Followers, unfollow and plan-change maintenances, driven through the
//! request entry point with the clock moved by hand (no sleeping, no
//! timed assertions).

use super::*;
use crate::sim::scenario::Scenario;

const SCENARIO: &str = r#"{
  "writes_per_second_per_dyno": 100,
  "timing": {"provision_ms": 1000, "wait_status_404_ms": 100, "dyno_stop_ms": 500,
             "replica_delay_ms": 400, "unfollow_ms": 200, "fork_follow_cooldown_ms": 3000,
             "plan_change_prepare_ms": 1500, "maintenance_run_ms": 800,
             "essential_change_ms": 500},
  "plans": ["heroku-postgresql:essential-0", "heroku-postgresql:essential-1",
            "heroku-postgresql:standard-0", "heroku-postgresql:standard-2",
            "heroku-postgresql:standard-3", "heroku-postgresql:standard-4",
            "heroku-postgresql:premium-0", "heroku-postgresql:premium-4"],
  "apps": [
    {"name": "shop",
     "formation": [{"type": "web", "quantity": 2}],
     "config_vars": {"COPY_URL": "{{DATABASE_URL}}"},
     "addons": [
       {"name": "pg-main", "plan": "heroku-postgresql:standard-4", "rows": 1000,
        "attachments": ["DATABASE"]},
       {"name": "pg-replica", "plan": "heroku-postgresql:standard-4",
        "attachments": ["HEROKU_POSTGRESQL_GOLD"], "follower_of": "pg-main"},
       {"name": "pg-busy", "plan": "heroku-postgresql:standard-2",
        "attachments": ["HEROKU_POSTGRESQL_RED"], "fork_follow": "temporarily-unavailable"},
       {"name": "pg-tiny", "plan": "heroku-postgresql:essential-0",
        "attachments": ["HEROKU_POSTGRESQL_BLUE"]}
     ]}
  ]
}"#;

fn world() -> World {
    World::new(&Scenario::from_json(SCENARIO).expect("scenario"))
}

fn call(w: &mut World, method: &str, path: &str, body: Value) -> Answer {
    let bearer = format!("Bearer {}", w.token);
    let raw = if body.is_null() {
        vec![]
    } else {
        serde_json::to_vec(&body).unwrap_or_default()
    };
    w.handle(
        method,
        path,
        "",
        Some(&bearer),
        Some("application/vnd.heroku+json; version=3"),
        None,
        &raw,
    )
}

fn id_of(w: &World, name: &str) -> String {
    w.addons
        .iter()
        .find(|a| a.name == name && !a.deleted)
        .map(|a| a.id.clone())
        .unwrap_or_default()
}

fn info(w: &mut World, name: &str) -> Value {
    let id = id_of(w, name);
    call(
        w,
        "GET",
        &format!("/client/v11/databases/{id}"),
        Value::Null,
    )
    .body
}

fn entry(db: &Value, name: &str) -> Option<String> {
    db["info"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["values"][0].as_str().map(str::to_string))
}

fn behind_by(w: &mut World, name: &str) -> u64 {
    let db = info(w, name);
    let text = entry(&db, "Behind By").unwrap_or_default();
    text.trim_end_matches(" commits")
        .parse()
        .unwrap_or(u64::MAX)
}

fn addon_state(w: &mut World, name: &str) -> Value {
    let snap = w.snapshot();
    snap["addons"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == name && a["deleted"] == false)
        .cloned()
        .unwrap_or(Value::Null)
}

fn follow(w: &mut World, of: &str, plan: &str, name: &str) -> Answer {
    call(
        w,
        "POST",
        "/apps/shop/addons",
        json!({"plan": {"name": format!("heroku-postgresql:{plan}")}, "name": name,
               "attachment": {"name": format!("F_{}", name.replace('-', "_").to_uppercase())},
               "config": {"follow": of}}),
    )
}

fn scale(w: &mut World, n: u32) {
    let a = call(
        w,
        "PATCH",
        "/apps/shop/formation",
        json!({"updates": [{"type": "web", "quantity": n}]}),
    );
    assert_eq!(a.status, 200);
}

#[test]
fn follower_refusals_come_before_anything_is_created() {
    let mut w = world();
    let before = w.addons.len();
    let cases = [
        ("HEROKU_POSTGRESQL_BLUE", "standard-4", "Essential-tier"),
        ("DATABASE", "essential-1", "Essential-tier"),
        ("pg-replica", "standard-4", "cannot be chained"),
        (
            "HEROKU_POSTGRESQL_RED_URL",
            "standard-2",
            "Temporarily Unavailable",
        ),
        (
            "DATABASE_URL",
            "standard-0",
            "Database followers are not supported more than 1 levels below this leader's \
             plan. Please provision at least a standard-3 plan.",
        ),
        ("nothing-like-it", "standard-4", "Could not find"),
    ];
    for (of, plan, why) in cases {
        let a = follow(&mut w, of, plan, "pg-new");
        assert_eq!(a.status, 422, "{of} {plan}: {}", a.body);
        assert_eq!(a.body["id"], "unprocessable_entity");
        let m = a.body["message"].as_str().unwrap_or("");
        assert!(m.contains(why), "{of} {plan}: {m}");
    }
    assert_eq!(w.addons.len(), before);
    // A name already taken, as for any add-on.
    let a = follow(&mut w, "DATABASE", "standard-4", "pg-busy");
    assert_eq!(a.status, 422);
    assert!(a.body["message"]
        .as_str()
        .unwrap_or("")
        .contains("already taken"));
    // One level below is allowed, a larger plan and another family too,
    // and the leader named by id or add-on name.
    let main = id_of(&w, "pg-main");
    for (of, plan, name) in [
        ("DATABASE", "standard-3", "pg-f1"),
        ("DATABASE_URL", "premium-4", "pg-f2"),
        (main.as_str(), "standard-4", "pg-f3"),
        ("pg-main", "standard-4", "pg-f4"),
    ] {
        let a = follow(&mut w, of, plan, name);
        assert_eq!(a.status, 201, "{of} {plan}: {}", a.body);
        assert_eq!(a.body["name"], name);
        assert_eq!(a.body["state"], "provisioning");
    }
}

#[test]
fn a_follower_lags_while_writers_run_and_catches_up_after() {
    let mut w = world();
    assert_eq!(follow(&mut w, "DATABASE", "standard-4", "pg-f").status, 201);
    let id = id_of(&w, "pg-f");
    let ws = format!("/client/v11/databases/{id}/wait_status");
    assert_eq!(call(&mut w, "GET", &ws, Value::Null).status, 404);
    w.skip(1200);
    assert_eq!(
        call(&mut w, "GET", &ws, Value::Null).body["waiting?"],
        false
    );
    let db = info(&mut w, "pg-f");
    assert!(db["following"]
        .as_str()
        .unwrap_or("")
        .starts_with("postgres://"));
    assert_eq!(db["following"], json!(w.addons[0].url));
    assert_eq!(db["leader"], "pg-main");
    assert_eq!(
        entry(&db, "Fork/Follow").as_deref(),
        Some("Unavailable on followers")
    );
    let leader = info(&mut w, "pg-main");
    assert_eq!(leader["following"], Value::Null);
    assert_eq!(entry(&leader, "Fork/Follow").as_deref(), Some("Available"));
    assert!(entry(&leader, "Followers").is_some());
    // Writers run: a few commits behind.
    w.skip(300);
    assert!(behind_by(&mut w, "pg-f") > 0);
    w.skip(300);
    let lag = behind_by(&mut w, "pg-f");
    assert!(lag > 0 && lag < 200, "{lag}");
    // Writers stop: it catches up after the delay.
    scale(&mut w, 0);
    w.skip(500 + 400 + 1);
    assert_eq!(behind_by(&mut w, "pg-f"), 0);
    let (f, l) = (addon_state(&mut w, "pg-f"), addon_state(&mut w, "pg-main"));
    assert_eq!(f["rows"], l["rows"]);
    assert!(l["rows"].as_u64().unwrap_or(0) > 1000);
    assert_eq!(f["following"], "pg-main");
    assert_eq!(f["behind_by"], 0);
}

#[test]
fn writes_to_a_follower_are_refused_and_counted_until_it_is_unfollowed() {
    let mut w = world();
    assert_eq!(follow(&mut w, "DATABASE", "standard-4", "pg-f").status, 201);
    w.skip(1200);
    let id = id_of(&w, "pg-f");
    // Point the app's DATABASE at the follower while it still follows.
    let a = call(
        &mut w,
        "POST",
        "/addon-attachments",
        json!({"addon": id, "app": "shop", "name": "DATABASE", "confirm": "shop"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    w.skip(1000);
    let snap = w.snapshot();
    let refused = snap["apps"]["shop"]["refused_writes"].as_u64().unwrap_or(0);
    assert!(refused > 0, "{}", snap["apps"]["shop"]);
    let f = addon_state(&mut w, "pg-f");
    assert!(f["refused_writes"].as_u64().unwrap_or(0) > 0);
    assert_eq!(f["read_only"], true);
    // The leader gets no writes now, so the follower equals it.
    assert_eq!(f["rows"], addon_state(&mut w, "pg-main")["rows"]);
    // Unfollow: still read-only at first, then writable.
    let u = call(
        &mut w,
        "PUT",
        &format!("/client/v11/databases/{id}/unfollow"),
        Value::Null,
    );
    assert_eq!(u.status, 200, "{}", u.body);
    assert_eq!(addon_state(&mut w, "pg-f")["read_only"], true);
    w.skip(700);
    let before = addon_state(&mut w, "pg-f");
    assert_eq!(before["read_only"], false);
    w.skip(500);
    let after = addon_state(&mut w, "pg-f");
    assert!(after["rows"].as_u64() > before["rows"].as_u64());
    assert_eq!(after["refused_writes"], before["refused_writes"]);
}

#[test]
fn unfollow_is_asynchronous_and_loses_what_the_leader_gets_after_it() {
    let mut w = world();
    assert_eq!(follow(&mut w, "DATABASE", "standard-4", "pg-f").status, 201);
    w.skip(1500);
    let id = id_of(&w, "pg-f");
    let path = format!("/client/v11/databases/{id}/unfollow");
    let u = call(&mut w, "PUT", &path, Value::Null);
    assert_eq!(u.status, 200);
    let leader_at_unfollow = u.body["leader_xact"].as_u64().unwrap_or(0);
    assert!(leader_at_unfollow > u.body["follower_xact"].as_u64().unwrap_or(u64::MAX));
    // Not done yet: still following, read-only.
    let db = info(&mut w, "pg-f");
    assert!(db["following"].is_string());
    assert_eq!(db["is_in_recovery"], true);
    assert_eq!(call(&mut w, "PUT", &path, Value::Null).status, 200);
    // The leader's writers keep writing; the follower stops at the cut.
    w.skip(400 + 200 + 1);
    let db = info(&mut w, "pg-f");
    assert!(db["following"].is_null(), "{db}");
    assert_eq!(db["is_in_recovery"], false);
    assert_eq!(entry(&db, "Behind By"), None);
    assert_eq!(
        entry(&db, "Fork/Follow").as_deref(),
        Some("Temporarily Unavailable")
    );
    let f = addon_state(&mut w, "pg-f");
    let l = addon_state(&mut w, "pg-main");
    let rows = f["rows"].as_u64().unwrap_or(0);
    // 1000 seeded rows: one commit each only for what dynos wrote.
    assert!(rows >= 1000 && rows <= 1000 + leader_at_unfollow + 1, "{f}");
    assert!(l["rows"].as_u64().unwrap_or(0) > rows + 50, "{l} {f}");
    let again = call(&mut w, "PUT", &path, Value::Null);
    assert_eq!(again.status, 422);
    assert_eq!(again.body["message"], "pg-f is not a follower");
    let lead = id_of(&w, "pg-main");
    let a = call(
        &mut w,
        "PUT",
        &format!("/client/v11/databases/{lead}/unfollow"),
        Value::Null,
    );
    assert_eq!(a.body["message"], "pg-main is not a follower");
    // Freshly unfollowed: it cannot be followed for a while.
    let a = follow(&mut w, "pg-f", "standard-4", "pg-g");
    assert_eq!(a.status, 422);
    w.skip(3001);
    assert_eq!(follow(&mut w, "pg-f", "standard-4", "pg-g").status, 201);
}

fn maintenance(w: &mut World, name: &str) -> Value {
    let id = id_of(w, name);
    call(
        w,
        "GET",
        &format!("/data/maintenances/v1/{id}"),
        Value::Null,
    )
    .body
}

#[test]
fn a_plan_change_prepares_runs_and_swaps_in_a_new_url() {
    let mut w = world();
    assert_eq!(maintenance(&mut w, "pg-main")["status"], "none");
    let old_url = w.addons[0].url.clone();
    let id = id_of(&w, "pg-main");
    let a = call(
        &mut w,
        "PATCH",
        "/apps/shop/addons/pg-main",
        json!({"plan": {"name": "heroku-postgresql:standard-3"}}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["plan"]["name"], "heroku-postgresql:standard-3");
    let m = maintenance(&mut w, "pg-main");
    assert_eq!(m["status"], "preparing");
    assert_eq!(m["method"], "changeover");
    assert_eq!(m["addon"]["name"], "pg-main");
    assert_eq!(m["app"]["name"], "shop");
    assert_eq!(
        entry(&info(&mut w, "pg-main"), "Status").as_deref(),
        Some("Upgrading plan: replacing primary, maintenance scheduled")
    );
    let run = format!("/data/maintenances/v1/{id}/run");
    assert_eq!(call(&mut w, "POST", &run, Value::Null).status, 422);
    w.skip(1501);
    assert_eq!(maintenance(&mut w, "pg-main")["status"], "ready");
    let r = call(&mut w, "POST", &run, Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["scheduled_for"].is_string());
    let m = maintenance(&mut w, "pg-main");
    assert_eq!(m["status"], "running");
    assert!(m["started_at"].as_str().unwrap_or("").ends_with(" +0000"));
    assert_eq!(m["addon"]["plan"], "standard-3");
    assert_eq!(m["addon"]["attachments"][0], "DATABASE_URL");
    // While it runs, the dynos' writes are refused.
    w.skip(400);
    let rows_mid = addon_state(&mut w, "pg-main")["rows"].as_u64();
    assert!(
        addon_state(&mut w, "pg-main")["refused_writes"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(call(&mut w, "POST", &run, Value::Null).status, 422);
    let releases_before = w.releases.len();
    w.skip(401);
    let m = maintenance(&mut w, "pg-main");
    assert_eq!(m["status"], "completed", "{m}");
    assert!(m["completed_at"].is_string());
    assert!(m["duration_seconds"].is_string());
    let snap = w.snapshot();
    let vars = &snap["apps"]["shop"]["config_vars"];
    let new_url = vars["DATABASE_URL"].as_str().unwrap_or("").to_string();
    assert_ne!(new_url, old_url);
    let (old, new) = (url::Url::parse(&old_url), url::Url::parse(&new_url));
    let (old, new) = (old.expect("old url"), new.expect("new url"));
    assert_ne!(old.host_str(), new.host_str());
    assert_ne!(old.password(), new.password());
    assert_eq!(
        vars["COPY_URL"],
        json!(old_url),
        "a plain copy keeps the stale URL"
    );
    assert!(w.releases.len() > releases_before);
    assert_eq!(id_of(&w, "pg-main"), id);
    assert_eq!(snap["apps"]["shop"]["database"], "pg-main");
    // Rows preserved and writes accepted again.
    assert!(addon_state(&mut w, "pg-main")["rows"].as_u64() >= rows_mid);
    // The read replica follows the new URL.
    let replica = info(&mut w, "pg-replica");
    assert_eq!(replica["following"], json!(new_url));
    let h = call(
        &mut w,
        "GET",
        &format!("/data/maintenances/v1/{id}/history"),
        Value::Null,
    );
    assert_eq!(h.body["maintenances"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_patch_back_before_the_run_cancels_and_one_during_it_is_refused() {
    let mut w = world();
    let plan = |p: &str| json!({"plan": {"name": format!("heroku-postgresql:{p}")}});
    let path = "/apps/shop/addons/pg-main";
    assert_eq!(call(&mut w, "PATCH", path, plan("premium-4")).status, 200);
    assert_eq!(maintenance(&mut w, "pg-main")["status"], "preparing");
    let back = call(&mut w, "PATCH", path, plan("standard-4"));
    assert_eq!(back.status, 200);
    assert_eq!(back.body["plan"]["name"], "heroku-postgresql:standard-4");
    assert_eq!(maintenance(&mut w, "pg-main")["status"], "none");
    // Again, run it, and PATCH while it runs.
    assert_eq!(call(&mut w, "PATCH", path, plan("premium-4")).status, 200);
    w.skip(1501);
    let id = id_of(&w, "pg-main");
    let run = format!("/data/maintenances/v1/{id}/run");
    assert_eq!(call(&mut w, "POST", &run, Value::Null).status, 200);
    assert_eq!(call(&mut w, "PATCH", path, plan("standard-4")).status, 422);
}

#[test]
fn essential_plans_change_in_place() {
    let mut w = world();
    let url = w.addons[3].url.clone();
    let path = "/apps/shop/addons/pg-tiny";
    let a = call(
        &mut w,
        "PATCH",
        path,
        json!({"plan": "heroku-postgresql:essential-1"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["plan"]["name"], "heroku-postgresql:essential-1");
    let id = id_of(&w, "pg-tiny");
    let ws = format!("/client/v11/databases/{id}/wait_status");
    assert_eq!(call(&mut w, "GET", &ws, Value::Null).body["waiting?"], true);
    w.skip(501);
    assert_eq!(
        call(&mut w, "GET", &ws, Value::Null).body["waiting?"],
        false
    );
    assert_eq!(w.addons[3].url, url);
    let a = call(
        &mut w,
        "PATCH",
        path,
        json!({"plan": {"name": "heroku-postgresql:standard-0"}}),
    );
    assert_eq!(a.status, 422);
    let r = call(
        &mut w,
        "POST",
        &format!("/data/maintenances/v1/{id}/run"),
        Value::Null,
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        "You can't trigger maintenance on an Essential tier database."
    );
    let a = call(
        &mut w,
        "PATCH",
        "/apps/shop/addons/pg-main",
        json!({"plan": "heroku-postgresql:essential-1"}),
    );
    assert_eq!(a.status, 422);
}

#[test]
fn generic_faults_hit_the_new_requests() {
    let mut w = world();
    assert_eq!(follow(&mut w, "DATABASE", "standard-4", "pg-f").status, 201);
    w.skip(1500);
    let id = id_of(&w, "pg-f");
    w.add_fault(crate::sim::Fault::on(
        "PUT",
        "/unfollow",
        1,
        FaultAction::Drop,
    ));
    w.add_fault(crate::sim::Fault::on(
        "PUT",
        "/unfollow",
        1,
        FaultAction::DropAfterApply,
    ));
    let path = format!("/client/v11/databases/{id}/unfollow");
    assert!(call(&mut w, "PUT", &path, Value::Null).drop);
    assert_eq!(addon_state(&mut w, "pg-f")["unfollowing"], false);
    assert!(call(&mut w, "PUT", &path, Value::Null).drop);
    assert_eq!(addon_state(&mut w, "pg-f")["unfollowing"], true);
    w.add_fault(crate::sim::Fault::on(
        "PATCH",
        "/addons/pg-main",
        1,
        FaultAction::Status {
            status: 503,
            id: "unavailable".into(),
            message: String::new(),
            retry_after: None,
        },
    ));
    let body = json!({"plan": {"name": "heroku-postgresql:standard-3"}});
    assert_eq!(
        call(&mut w, "PATCH", "/apps/shop/addons/pg-main", body.clone()).status,
        503
    );
    assert_eq!(maintenance(&mut w, "pg-main")["status"], "none");
    w.add_fault(crate::sim::Fault::on(
        "PATCH",
        "/addons/pg-main",
        1,
        FaultAction::Hang { ms: 5 },
    ));
    let a = call(&mut w, "PATCH", "/apps/shop/addons/pg-main", body);
    assert_eq!((a.status, a.hang_ms), (200, 5));
    w.skip(1501);
    let mid = id_of(&w, "pg-main");
    w.add_fault(crate::sim::Fault::on("POST", "/run", 1, FaultAction::Drop));
    assert!(
        call(
            &mut w,
            "POST",
            &format!("/data/maintenances/v1/{mid}/run"),
            Value::Null
        )
        .drop
    );
    assert_eq!(maintenance(&mut w, "pg-main")["status"], "ready");
}

#[test]
fn snapshot_and_restore_keep_followers_and_maintenances() {
    let mut w = world();
    assert_eq!(follow(&mut w, "DATABASE", "standard-4", "pg-f").status, 201);
    let path = "/apps/shop/addons/pg-main";
    let body = json!({"plan": {"name": "heroku-postgresql:standard-3"}});
    assert_eq!(call(&mut w, "PATCH", path, body).status, 200);
    w.skip(1501);
    let snap = w.snapshot();
    assert_eq!(snap["maintenances"][0]["status"], "ready");
    let mut fresh = world();
    fresh.restore(&snap).expect("restore");
    assert_eq!(addon_state(&mut fresh, "pg-f")["following"], "pg-main");
    assert_eq!(
        addon_state(&mut fresh, "pg-replica")["following"],
        "pg-main"
    );
    assert_eq!(addon_state(&mut fresh, "pg-main")["following"], Value::Null);
    assert_eq!(maintenance(&mut fresh, "pg-main")["status"], "ready");
    assert!(info(&mut fresh, "pg-f")["following"].is_string());
}

/// With a PostgreSQL backend (`PGMIGRATE_TEST_POSTGRES`), the swap gives
/// a URL with new credentials that reaches the same data, and an
/// unfollowed database gets its leader's data. Skipped without a server.
#[test]
fn with_postgres_the_swap_gives_new_credentials_to_the_same_database() {
    let Some(admin) = std::env::var("PGMIGRATE_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: no PGMIGRATE_TEST_POSTGRES");
        return;
    };
    let pg = std::sync::Arc::new(crate::sim::pg::Backend::connect(&admin).expect("backend"));
    let s = Scenario::from_json(SCENARIO).expect("scenario");
    let mut w = World::build(&s, Some(pg)).expect("world");
    // A follower's real database holds the leader's data once unfollowed.
    assert_eq!(follow(&mut w, "DATABASE", "standard-4", "pg-f").status, 201);
    w.skip(1500);
    let fid = id_of(&w, "pg-f");
    let path = format!("/client/v11/databases/{fid}/unfollow");
    assert_eq!(call(&mut w, "PUT", &path, Value::Null).status, 200);
    let mut done = false;
    for _ in 0..600 {
        w.skip(100);
        if addon_state(&mut w, "pg-f")["unfollowing"] == false {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(done, "the real copy of the unfollowed database never ended");
    let users = |url: &str| -> i64 {
        let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
        c.query_one("SELECT count(*) FROM users", &[])
            .expect("count")
            .get(0)
    };
    let furl = w.addons.iter().find(|a| a.id == fid).map(|a| a.url.clone());
    assert_eq!(
        users(&furl.unwrap_or_default()),
        users(&w.addons[0].url.clone())
    );
    let old = w.addons[0].url.clone();
    let body = json!({"plan": {"name": "heroku-postgresql:standard-3"}});
    assert_eq!(
        call(&mut w, "PATCH", "/apps/shop/addons/pg-main", body).status,
        200
    );
    w.skip(1501);
    let id = id_of(&w, "pg-main");
    let run = format!("/data/maintenances/v1/{id}/run");
    assert_eq!(call(&mut w, "POST", &run, Value::Null).status, 200);
    w.skip(801);
    assert_eq!(maintenance(&mut w, "pg-main")["status"], "completed");
    let new = w.addons[0].url.clone();
    assert_ne!(new, old);
    let count = |url: &str| {
        let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
        let n: i64 = c
            .query_one("SELECT count(*) FROM users", &[])
            .expect("count")
            .get(0);
        c.execute(
            "INSERT INTO users VALUES (-1, 'x@example.com') ON CONFLICT DO NOTHING",
            &[],
        )
        .expect("a write with the new credentials");
        n
    };
    assert!(count(&new) > 0);
    w.cleanup();
}
