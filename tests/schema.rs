//! Every request body pgmigrate sends to the Platform API validates against
//! the endpoint's schema in the Platform API hyper-schema
//! (`fixtures/heroku/platform-api-schema.json`), across a migration with a
//! pooler, a stopped run, and a rollback.

mod common;

use common::{schema::PlatformSchema, Env};
use serde_json::json;

fn check_all(env: &Env, schema: &PlatformSchema) -> usize {
    let mut checked = 0;
    for r in env.mutations() {
        let body = r.body.clone().unwrap_or(serde_json::Value::Null);
        if r.path.starts_with("/client/") || r.path.starts_with("/data/") {
            // The Data API is not in the Platform schema: check the
            // transfer body's shape by hand.
            if r.path.ends_with("/transfers") {
                for k in ["from_name", "from_url", "to_name", "to_url"] {
                    assert!(body[k].is_string(), "transfer body lacks {k}");
                }
                assert_eq!(body.as_object().unwrap().len(), 4);
            }
            continue;
        }
        match schema.check(&r.method, &r.path, &body) {
            Ok(true) => checked += 1,
            Ok(false) => {}
            Err(e) => panic!("{e}"),
        }
    }
    checked
}

#[test]
fn the_schema_check_itself_rejects_bad_bodies() {
    let schema = PlatformSchema::load();
    assert!(schema
        .check(
            "PATCH",
            "/apps/a1b/formation",
            &json!({"updates": [{"type": "web", "quantity": 0}]})
        )
        .unwrap());
    // `size` is not a field of a batch update: additionalProperties false.
    assert!(schema
        .check(
            "PATCH",
            "/apps/a1b/formation",
            &json!({"updates": [{"type": "web", "size": "x"}]})
        )
        .is_err());
    assert!(schema
        .check(
            "POST",
            "/addon-attachments",
            &json!({"addon": {"name": "x"}, "app": "a1b"})
        )
        .is_err());
    assert!(schema
        .check("POST", "/apps/a1b/addons", &json!({"name": "x"}))
        .is_err());
    assert!(schema
        .check("PATCH", "/apps/a1b/config-vars", &json!({"A": 1}))
        .is_err());
    assert!(schema.check("PUT", "/nowhere", &json!({})).is_err());
}

#[test]
fn every_body_sent_validates_against_the_platform_schema() {
    let schema = PlatformSchema::load();
    let env = Env::new("pooler");
    env.run(&[
        "run",
        "-a",
        "pooled-app",
        "--confirm",
        "pooled-app",
        "--to",
        "premium-0",
    ])
    .ok();
    let n = check_all(&env, &schema);
    assert!(n >= 8, "checked {n} bodies");

    let env = Env::new("demo");
    env.run(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
        "--stop-before",
        "scale-up",
    ])
    .code(3);
    env.run(&["rollback", "-a", "demo-app", "--confirm", "demo-app"])
        .ok();
    let n = check_all(&env, &schema);
    assert!(n >= 12, "checked {n} bodies");
}

#[test]
fn the_bodies_of_a_follower_changeover_and_an_upgrade_validate_too() {
    let schema = PlatformSchema::load();
    for method in ["follower", "upgrade"] {
        let mut env = Env::new("methods");
        env.method = Some(method);
        env.run(&[
            "run",
            "-a",
            "std-app",
            "--confirm",
            "std-app",
            "--to",
            "standard-2",
        ])
        .ok();
        let n = check_all(&env, &schema);
        assert!(n >= 6, "{method}: checked {n} bodies");
        let sent = |verb: &str, path: &str| {
            env.mutations()
                .into_iter()
                .find(|r| r.method == verb && r.path.starts_with(path))
                .and_then(|r| r.body)
        };
        match method {
            // The follower's creation carries config.follow, a string.
            "follower" => {
                let body = sent("POST", "/apps/std-app/addons").expect("created");
                assert_eq!(body["config"]["follow"], "DATABASE", "{body:#}");
            }
            // The plan change is `{"plan": "..."}`, checked above against
            // the add-on Update link.
            _ => {
                let body = sent("PATCH", "/apps/std-app/addons/").expect("changed");
                assert_eq!(body["plan"], "heroku-postgresql:standard-2");
            }
        }
    }
}
