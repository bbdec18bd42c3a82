//! The three methods and the choice between them: a follower changeover
//! and an in-place upgrade of a Standard database, an Essential plan
//! changed in place, a cross-tier move that still copies, a read replica
//! that ends following the new primary, an impossible --method refused with
//! nothing changed, `plan --json`, and rollback of each.

mod common;

use common::changeover::{assert_followed_over, assert_restored, assert_upgraded};
use common::Env;
use serde_json::Value;

const STD: &str = "std-app";
const OLD: &str = "postgresql-std-old";

/// The methods scenario, pgmigrate choosing (`--method auto`).
fn env() -> Env {
    let mut env = Env::new("methods");
    env.method = None;
    env
}

fn run(env: &Env, app: &str, extra: &[&str]) -> common::Out {
    let mut args = vec!["run", "-a", app, "--confirm", app];
    if !extra.contains(&"--to") {
        args.extend_from_slice(&["--to", "essential-0"]);
    }
    args.extend_from_slice(extra);
    env.run(&args)
}

fn plan_json(env: &Env, app: &str, to: &str) -> Value {
    let out = env.run(&["plan", "-a", app, "--to", to, "--json"]);
    out.ok();
    serde_json::from_str(&out.stdout).expect("plan --json is JSON")
}

fn method_of(plan: &Value, m: &str) -> Value {
    plan["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["method"] == m)
        .cloned()
        .unwrap_or_else(|| panic!("{m} judged: {plan:#}"))
}

/// Seconds between maintenance on and off, from the journal.
fn window_s(j: &Value) -> Option<f64> {
    let at = |id: &str| {
        j["steps"]
            .as_array()?
            .iter()
            .find(|s| s["id"] == id)?
            .get("output")?
            .get("at")?
            .as_str()
            .map(str::to_string)
    };
    let (on, off) = (at("maintenance-on")?, at("maintenance-off")?);
    let t = |s: &str| humantime::parse_rfc3339(s).ok();
    Some(t(&off)?.duration_since(t(&on)?).ok()?.as_secs_f64())
}

#[test]
fn plan_json_judges_every_method_and_names_the_one_run_would_use() {
    let env = env();
    let p = plan_json(&env, STD, "standard-2");
    assert_eq!(p["method"], "follower", "{p:#}");
    for m in ["copy", "follower", "upgrade"] {
        let o = method_of(&p, m);
        assert_eq!(o["possible"], true, "{m}: {o:#}");
        assert!(o["why"].as_str().unwrap().len() > 10, "{o:#}");
        assert!(o["downtime_estimate_s"].as_f64().unwrap() > 0.0, "{o:#}");
    }
    let est = |m| method_of(&p, m)["downtime_estimate_s"].as_f64().unwrap();
    assert!(est("follower") < est("upgrade") && est("follower") <= est("copy"));
    // The words say the same.
    env.run(&["plan", "-a", STD, "--to", "standard-2"])
        .ok()
        .stdout_has("method   follower")
        .stdout_has("Methods:")
        .stdout_has("Point of no return: scale-up");
    // Across tiers only a copy is possible.
    let p = plan_json(&env, "cooldown-app", "essential-1");
    assert_eq!(p["method"], "copy");
    assert_eq!(method_of(&p, "follower")["possible"], false);
    assert_eq!(method_of(&p, "upgrade")["possible"], false);
    assert!(method_of(&p, "upgrade")["why"]
        .as_str()
        .unwrap()
        .contains("tiers"));
    // Essential to Essential: in place.
    let p = plan_json(&env, "ess-app", "essential-1");
    assert_eq!(p["method"], "upgrade");
    assert_eq!(method_of(&p, "follower")["possible"], false);
    assert!(env.mutations().is_empty(), "plan changed nothing");
}

#[test]
fn auto_moves_a_standard_database_by_a_follower_with_the_app_down_only_briefly() {
    let env = env();
    let before = env.app(STD);
    let out = run(&env, STD, &["--to", "standard-2"]);
    out.ok().stdout_has("method: follower");
    common::settle();
    assert_followed_over(&env, STD, OLD, &before, "auto");
    let j = env.journal(STD);
    assert_eq!(j["method"], "follower");
    // The follower caught up while the app ran: the window holds the drain
    // and the last commits, never a copy.
    let ids: Vec<&str> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"unfollow") && !ids.contains(&"start-copy"));
    assert!(
        !env.sandbox
            .requests()
            .iter()
            .any(|r| r.path.contains("/transfers")),
        "no transfer"
    );
    let unfollows: Vec<_> = env
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/unfollow"))
        .collect();
    assert_eq!(unfollows.len(), 1, "one unfollow, of the follower");
    let state = env.state();
    let new = common::crash::pgmigrate_addons(&state)[0].clone();
    assert!(unfollows[0].path.contains(new["id"].as_str().unwrap()));
    // status answers in plain words.
    let s = env.run(&["status", "-a", STD, "--json"]);
    let s: Value = serde_json::from_str(&s.ok().stdout).unwrap();
    assert_eq!(s["method"], "follower");
    assert_eq!(s["answers"]["follower"]["value"], "unfollowed");
    assert_eq!(s["answers"]["database_url"]["value"], "new");
    eprintln!("follower window: {:?} s", window_s(&j));
}

#[test]
fn an_in_place_upgrade_moves_a_standard_database_and_rebinds_the_new_url() {
    let env = env();
    let before = env.app(STD);
    run(&env, STD, &["--to", "standard-2", "--method", "upgrade"])
        .ok()
        .stdout_has("method: upgrade");
    common::settle();
    assert_upgraded(
        &env,
        STD,
        OLD,
        "heroku-postgresql:standard-2",
        &before,
        "upgrade",
    );
    let state = env.state();
    assert_eq!(common::addon(&state, OLD)["maintenance"], "completed");
    let j = env.journal(STD);
    assert_eq!(j["method"], "upgrade");
    let s = env.run(&["status", "-a", STD, "--json"]);
    let s: Value = serde_json::from_str(&s.ok().stdout).unwrap();
    assert_eq!(s["answers"]["plan_change"]["value"], "swapped");
    assert_eq!(s["answers"]["way_back"]["value"], "none");
    // The add-on is the database: nothing old to remove.
    assert_eq!(s["target_addon"], OLD);
    assert!(
        !s["next_commands"].to_string().contains("addons:destroy"),
        "{s:#}"
    );
    // Past the swap there is no way back, not even with --force.
    let r = env.run(&["rollback", "-a", STD, "--confirm", STD, "--force"]);
    // A refusal, not bad input: exit 1 (failed, nothing changed), not 2.
    assert_eq!(r.code, 1, "{r}");
    r.stderr_has("the old server is gone")
        .stderr_has("Nothing was changed on the app");
    eprintln!("upgrade window: {:?} s", window_s(&j));
}

#[test]
fn an_essential_plan_changes_in_place_with_the_app_up() {
    let env = env();
    let before = env.app("ess-app");
    run(&env, "ess-app", &["--to", "essential-1"])
        .ok()
        .stdout_has("method: upgrade");
    let state = env.state();
    assert_eq!(
        common::addon(&state, "postgresql-ess")["plan"],
        "heroku-postgresql:essential-1"
    );
    assert!(common::crash::pgmigrate_addons(&state).is_empty());
    let a = &state["apps"]["ess-app"];
    assert_eq!(a["formation"], before["formation"]);
    // Never taken down: no maintenance switch, no scaling.
    assert!(
        !env.mutations()
            .iter()
            .any(|r| r.path.ends_with("/formation") || r.path == "/apps/ess-app"),
        "{:#?}",
        env.mutations()
    );
    // And back: rollback changes the plan back.
    env.run(&["rollback", "-a", "ess-app", "--confirm", "ess-app"])
        .ok();
    assert_eq!(
        common::addon(&env.state(), "postgresql-ess")["plan"],
        "heroku-postgresql:essential-0"
    );
}

#[test]
fn a_cross_tier_move_still_copies() {
    let env = env();
    run(&env, "ess-app", &["--to", "standard-0"])
        .ok()
        .stdout_has("method: copy");
    assert_eq!(env.journal("ess-app")["method"], "copy");
    assert!(env
        .sandbox
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/transfers")));
}

#[test]
fn a_database_with_a_read_replica_is_upgraded_and_the_replica_follows_the_new_primary() {
    let env = env();
    let p = plan_json(&env, "replica-app", "premium-2");
    assert_eq!(p["method"], "upgrade", "{p:#}");
    assert!(method_of(&p, "follower")["why"]
        .as_str()
        .unwrap()
        .contains("followers"));
    run(&env, "replica-app", &["--to", "premium-2"]).ok();
    let state = env.state();
    let leader = common::addon(&state, "postgresql-replica-leader");
    assert_eq!(leader["plan"], "heroku-postgresql:premium-2");
    let replica = common::addon(&state, "postgresql-replica");
    assert_eq!(
        replica["following"], "postgresql-replica-leader",
        "{replica:#}"
    );
    // The replica's Data API view follows the leader's new URL.
    let db: Value = ureq::get(&format!(
        "{}/client/v11/databases/{}",
        env.sandbox.base_url(),
        replica["id"].as_str().unwrap()
    ))
    .set("Authorization", &format!("Bearer {}", env.sandbox.token()))
    .set("Accept", "application/vnd.heroku+json; version=3")
    .call()
    .expect("GET the replica's database")
    .into_json()
    .expect("JSON");
    assert_eq!(db["following"], leader["url"], "{db:#}");
}

#[test]
fn an_impossible_method_is_refused_with_the_one_that_works_and_nothing_changed() {
    let env = env();
    for (app, to, method, works) in [
        ("ess-app", "standard-0", "follower", "copy"),
        ("ess-app", "standard-0", "upgrade", "copy"),
        ("cooldown-app", "standard-2", "follower", "upgrade"),
        (STD, "private-2", "upgrade", "copy"),
    ] {
        let out = run(&env, app, &["--to", to, "--method", method]);
        out.code(1)
            .stderr_has(&format!("--method {method} cannot move"))
            .stderr_has(&format!("--method {works}"));
        let p = env.run(&["plan", "-a", app, "--to", to, "--method", method]);
        p.code(1);
    }
    assert!(env.mutations().is_empty(), "{:#?}", env.mutations());
    for app in ["ess-app", "cooldown-app", STD] {
        assert!(
            env.journal_paths(app).is_empty(),
            "no journal for a refused method"
        );
    }
}

#[test]
fn a_follower_changeover_rolled_back_before_the_scale_up_leaves_the_app_as_it_was() {
    let env = env();
    let before = env.app(STD);
    let out = run(
        &env,
        STD,
        &["--to", "standard-2", "--stop-before", "scale-up"],
    );
    assert_eq!(out.code, 3, "{out}");
    let s = env.run(&["status", "-a", STD, "--json"]);
    let s: Value = serde_json::from_str(&s.ok().stdout).unwrap();
    assert_eq!(s["answers"]["follower"]["value"], "unfollowed");
    env.run(&["rollback", "-a", STD, "--confirm", STD]).ok();
    common::settle();
    assert_restored(
        &env,
        STD,
        OLD,
        "heroku-postgresql:standard-0",
        &before,
        "rollback",
    );
}

#[test]
fn an_upgrade_rolled_back_before_the_swap_changes_the_plan_back() {
    let env = env();
    let before = env.app(STD);
    let out = run(
        &env,
        STD,
        &[
            "--to",
            "standard-2",
            "--method",
            "upgrade",
            "--stop-before",
            "cutover",
        ],
    );
    assert_eq!(out.code, 3, "{out}");
    let s = env.run(&["status", "-a", STD, "--json"]);
    let s: Value = serde_json::from_str(&s.ok().stdout).unwrap();
    assert_eq!(s["answers"]["plan_change"]["value"], "ready");
    assert_eq!(s["answers"]["way_back"]["value"], "plan-change-back");
    env.run(&["rollback", "-a", STD, "--confirm", STD]).ok();
    common::settle();
    assert_restored(
        &env,
        STD,
        OLD,
        "heroku-postgresql:standard-0",
        &before,
        "rollback",
    );
    let state = env.state();
    let m = state["maintenances"].as_array().unwrap();
    assert!(
        m.iter()
            .all(|m| m["status"] != "running" && m["status"] != "completed"),
        "the prepared swap never ran: {m:#?}"
    );
}
