//! What pgmigrate says is true, and its defaults are safe: no secret in
//! any output, no target picked for the user, a target too small refused,
//! and a move down to Essential says what it gives up.

mod common;

use common::{assert_no_secret, Env};
use pgmigrate::sim::Scenario;
use serde_json::{json, Value};

/// The methods scenario, its replica app's leader also pooled: a
/// database with a follower and a pooler.
fn follower_and_pooler() -> Env {
    let mut s = serde_json::to_value(common::scenario("methods")).unwrap();
    let app = s["apps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["name"] == "replica-app")
        .unwrap();
    app["addons"][0]["namespace_attachments"] = json!([
        {"name": "DATABASE_CONNECTION_POOL", "namespace": "connection-pooling:default"}
    ]);
    app["config_vars"] = json!({"REPORTING_URL": "{{DATABASE_URL}}"});
    let mut env = Env::with(serde_json::from_value::<Scenario>(s).unwrap());
    env.method = None;
    env
}

#[test]
fn no_password_or_url_in_any_output_of_any_verb() {
    let env = follower_and_pooler();
    let app = "replica-app";
    let plan = |extra: &[&str]| {
        let mut a = vec!["-vvv", "plan", "-a", app, "--to", "standard-4"];
        a.extend_from_slice(extra);
        env.run(&a)
    };
    let mut outs = vec![
        plan(&[]),
        plan(&["--json"]),
        plan(&["--method", "follower"]),
    ];
    // The follower is impossible because of the database's own follower:
    // the reason names it by add-on and attachment, as pg:info does.
    outs[0]
        .ok()
        .stdout_has("postgresql-replica (HEROKU_POSTGRESQL_GOLD)");
    outs[2]
        .code(1)
        .stderr_has("postgresql-replica (HEROKU_POSTGRESQL_GOLD)");
    let base = ["-a", app, "--confirm", app];
    let run = |verb: &str, extra: &[&str]| {
        let mut a = vec!["-vvv", verb];
        a.extend_from_slice(&base);
        a.extend_from_slice(extra);
        env.run(&a)
    };
    let first = run(
        "run",
        &["--to", "standard-4", "--stop-before", "maintenance"],
    );
    first.code(3);
    outs.push(first);
    for extra in [&[][..], &["--json"][..], &["--all", "--json"][..]] {
        let mut a = vec!["-vvv", "status", "-a", app];
        a.extend_from_slice(extra);
        outs.push(env.run(&a));
    }
    outs.push(run("rollback", &[]));
    outs.last().unwrap().ok();
    outs.push(run("run", &["--to", "standard-4", "--dry-run"]));
    let done = run("run", &["--to", "standard-4"]);
    done.ok();
    outs.push(done);
    outs.push(env.run(&["-vvv", "status", "-a", app, "--json"]));
    outs.push(env.run(&["-vvv", "list", "--json"]));
    assert!(outs[3].stderr.contains("DEBUG"), "-vvv logs at debug");
    assert_no_secret(&env, &outs);
}

#[test]
fn without_a_target_nothing_is_picked_and_nothing_is_sent() {
    let env = Env::new("demo");
    for args in [
        vec!["run", "-a", "demo-app", "--confirm", "demo-app"],
        vec!["plan", "-a", "demo-app"],
        vec!["run", "-a", "demo-app", "--dry-run"],
    ] {
        env.run(&args)
            .code(2)
            .stderr_has("no target plan: pass --to PLAN")
            .stderr_has("never picks");
    }
    assert!(env.sandbox.requests().is_empty(), "nothing was sent");
}

/// A Standard database holding 1.2 GB (1,200 rows of 1 MB).
fn big_standard() -> Env {
    let mut s = serde_json::to_value(common::scenario("demo")).unwrap();
    s["timing"]["bytes_per_row"] = json!(1_000_000);
    let db = &mut s["apps"][0]["addons"][0];
    db["plan"] = json!("heroku-postgresql:standard-0");
    db["rows"] = json!(1200);
    Env::with(serde_json::from_value::<Scenario>(s).unwrap())
}

#[test]
fn a_target_smaller_than_the_data_is_refused_with_both_sizes_and_the_plans_that_fit() {
    let env = big_standard();
    let before = env.app("demo-app");
    for args in [
        vec![
            "run",
            "-a",
            "demo-app",
            "--confirm",
            "demo-app",
            "--to",
            "essential-0",
        ],
        vec!["plan", "-a", "demo-app", "--to", "essential-0"],
    ] {
        env.run(&args)
            .code(1)
            .stderr_has("holds 1.2 GB of data")
            .stderr_has("offers 1.0 GB of storage")
            .stderr_has("--to (essential-1, essential-2, or a larger tier)")
            .stderr_has("--force")
            .stderr_has("Nothing was changed");
    }
    assert!(env.mutations().is_empty(), "nothing was changed");
    assert_eq!(env.app("demo-app"), before);
    // --force is the person's word that it fits.
    env.run(&["plan", "-a", "demo-app", "--to", "essential-0", "--force"])
        .ok();
    // A plan that holds it is not refused.
    env.run(&["plan", "-a", "demo-app", "--to", "essential-1"])
        .ok();
}

#[test]
fn a_move_down_to_essential_says_what_it_gives_up() {
    let env = big_standard();
    let out = env.run(&["plan", "-a", "demo-app", "--to", "essential-1"]);
    out.ok()
        .stdout_has("moves down from heroku-postgresql:standard-0 to the Essential tier")
        .stdout_has("followers")
        .stdout_has("rollback")
        .stdout_has("connection pooling");
    let json = env.run(&["plan", "-a", "demo-app", "--to", "essential-1", "--json"]);
    let v: Value = serde_json::from_str(&json.ok().stdout).unwrap();
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("gives up")),
        "{v:#}"
    );
    // A move within the tier says nothing of the kind.
    env.run(&["plan", "-a", "demo-app", "--to", "standard-2"])
        .ok()
        .stdout_lacks("gives up");
}

fn demo_run(extra: &[&str]) -> Vec<&'static str> {
    let mut a = vec![
        "run",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
        "--to",
        "essential-0",
    ];
    for e in extra {
        a.push(Box::leak(e.to_string().into_boxed_str()));
    }
    a
}

#[test]
fn the_plan_is_shown_before_anything_changes() {
    let env = Env::new("demo");
    let out = env.run(&demo_run(&[]));
    out.ok()
        .stdout_has("pgmigrate will migrate demo-app's database")
        .stdout_has("  method   ")
        .stdout_has("  downtime about")
        .stdout_has("Steps (down: while the app is down)")
        .stdout_has("start-copy       down ")
        .stdout_has("Point of no return: scale-up");
    // Shown before the first step, not after the run.
    let plan_at = out.stdout.find("pgmigrate will migrate").unwrap();
    let create_at = out.stdout.find("create-target").unwrap();
    assert!(plan_at < create_at, "{out}");
}

/// The confirmation on a terminal: the plan, then the question. `script`
/// (util-linux) gives the command a terminal.
#[test]
fn on_a_terminal_the_plan_comes_before_the_question() {
    let env = Env::new("demo");
    let bin = env!("CARGO_BIN_EXE_pgmigrate");
    let mut c = std::process::Command::new("script");
    c.args([
        "-qec",
        &format!("{bin} run -a demo-app --to essential-0"),
        "/dev/null",
    ]);
    // The hermetic environment of `env.command`, for `script`'s child.
    let hermetic = env.command(&[]);
    c.env_clear();
    for (k, v) in hermetic.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("script (util-linux) runs");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"wrong-app\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let plan_at = stdout.find("pgmigrate will migrate demo-app's database");
    let ask_at = stdout.find("Type the app name to confirm");
    assert!(
        matches!((plan_at, ask_at), (Some(p), Some(a)) if p < a),
        "the plan, then the question:\n{stdout}"
    );
    assert!(stdout.contains("does not match demo-app"), "{stdout}");
    assert!(env.mutations().is_empty(), "a wrong answer changes nothing");
}

#[test]
fn unreachable_databases_are_found_before_the_app_goes_down() {
    let env = Env::new("demo");
    let before = env.app("demo-app");
    let mut c = env.command(&demo_run(&[]));
    // The sandbox's databases (without a PostgreSQL behind it) are on
    // hosts this machine cannot reach.
    c.env("PGMIGRATE_VERIFY", "counts");
    let out = common::output(c);
    out.code(3)
        .stderr_has("the app was not taken down")
        .stderr_has("cannot be reached")
        .stderr_has("--verify none")
        .stderr_has("The app is up");
    let after = env.app("demo-app");
    assert_eq!(after["maintenance"], before["maintenance"]);
    assert_eq!(after["formation"], before["formation"]);
    assert!(
        !env.mutations().iter().any(|r| r.path.contains("/formation")
            || r.body
                .as_ref()
                .is_some_and(|b| b.get("maintenance").is_some())),
        "nothing of the window was touched: {:#?}",
        env.mutations()
    );
    // The way on it names works.
    env.run(&[
        "resume",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
        "--verify",
        "none",
    ])
    .ok();
}

#[test]
fn a_stop_that_was_asked_for_is_no_error_and_says_where_the_app_stands() {
    let env = Env::new("demo");
    let out = env.run(&demo_run(&["--stop-before", "cutover"]));
    out.code(3)
        .stderr_has("stopped: ")
        .stderr_lacks("error:")
        .stderr_has("stopped before step promote-target")
        .stderr_has("The app is DOWN: maintenance on and every process type at zero since ")
        .stderr_has("pgmigrate resume --app demo-app")
        .stderr_has("pgmigrate rollback --app demo-app");
    env.run(&["rollback", "-a", "demo-app", "--confirm", "demo-app"])
        .ok();
    env.run(&demo_run(&["--stop-before", "maintenance"]))
        .code(3)
        .stderr_has("stopped before step maintenance-on")
        .stderr_has("The app is up");
}

#[test]
fn after_a_kill_status_says_interrupted_how_long_down_and_which_way_loses_less() {
    if !common::crash::crash_points("after_a_kill_status_says_interrupted") {
        return;
    }
    let env = Env::new("demo");
    common::crash::kill_at(&env, &demo_run(&[]), "polling:wait-copy");
    let text = env.run(&["status", "-a", "demo-app"]);
    text.ok()
        .stdout_has("interrupted (no pgmigrate process is running it")
        .stdout_lacks("in progress")
        .stdout_has("The app is DOWN: maintenance on and every process type at zero since ")
        .stdout_has(" ago)")
        .stdout_has("Loses less: rollback brings the app back up soonest");
    let json = env.run(&["status", "-a", "demo-app", "--json"]);
    let v: Value = serde_json::from_str(&json.ok().stdout).unwrap();
    assert_eq!(v["outcome"], "interrupted");
    assert_eq!(v["app_state"]["down"], true);
    assert!(v["app_state"]["down_since"].is_string(), "{v:#}");
    assert!(v["advice"].as_str().unwrap().starts_with("rollback"));
}

#[test]
fn plans_run_it_with_reproduces_the_plan() {
    let mut env = Env::new("methods");
    env.method = None;
    let out = env.run(&[
        "plan",
        "-a",
        "std-app",
        "--to",
        "standard-2",
        "--method",
        "copy",
        "--verify",
        "none",
    ]);
    out.ok().stdout_has(
        "Run it with: pgmigrate run --app std-app --to heroku-postgresql:standard-2 --method copy \
         --verify none\n",
    );
    let forced = env.run(&["plan", "-a", "std-app", "--to", "standard-0", "--force"]);
    let line = forced
        .ok()
        .stdout
        .lines()
        .find(|l| l.starts_with("Run it with: "))
        .unwrap()
        .to_string();
    assert!(line.ends_with(" --force"), "{line}");
    // The command, run as printed, does what the plan said: its method.
    let mut args: Vec<&str> = line["Run it with: pgmigrate ".len()..].split(' ').collect();
    args.extend(["--confirm", "std-app"]);
    let method = args[args.iter().position(|a| *a == "--method").unwrap() + 1];
    assert_eq!(method, "follower", "{forced}");
    env.run(&args).ok();
    assert_eq!(env.journal("std-app")["method"], method);
}

#[test]
fn an_in_place_summary_names_only_add_ons_that_exist() {
    let mut env = Env::new("methods");
    env.method = None;
    for (app, to) in [("ess-app", "essential-1"), ("std-app", "standard-2")] {
        let out = env.run(&[
            "run",
            "-a",
            app,
            "--confirm",
            app,
            "--to",
            to,
            "--method",
            "upgrade",
        ]);
        out.ok();
        let state = env.state();
        let exists = |name: &str| {
            state["addons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == name && a["deleted"] == false)
        };
        let line = out
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("DATABASE now:"))
            .unwrap_or_else(|| panic!("a summary line\n{out}"))
            .to_string();
        assert!(line.contains("changed in place"), "{line}");
        assert!(!line.contains("old database"), "{line}");
        for word in line.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',') {
            if word.contains("pgmigrate-") || word.starts_with("postgresql-") {
                assert!(exists(word), "{word} does not exist: {line}");
            }
        }
        let status = env.run(&["status", "-a", app]);
        status.ok().stdout_lacks("addons:destroy");
    }
}
