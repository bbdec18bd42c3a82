//! The operator's commands: plan / --dry-run (read only), list,
//! completions, app inference from git remotes, log formats, help text.

mod common;

use common::Env;

#[test]
fn plan_and_dry_run_read_only_and_say_what_would_happen() {
    let env = Env::new("pooler");
    for args in [
        vec!["plan", "-a", "pooled-app", "--to", "standard-2"],
        vec!["run", "-a", "pooled-app", "--to", "standard-2", "--dry-run"],
    ] {
        env.run(&args)
            .ok()
            .stdout_has("read only: nothing was changed")
            .stdout_has("postgresql-pooled (heroku-postgresql:standard-0)")
            .stdout_has("heroku-postgresql:standard-2")
            .stdout_has("web=3 (performance-m), worker=2 (standard-2X), clock=1 (basic)")
            .stdout_has("rebind   LEGACY_DB")
            .stdout_has("DATABASE_CONNECTION_POOL follows")
            .stdout_has(
                "alias-source          skip: the old database already has another attachment",
            )
            .stdout_has("downtime about");
    }
    assert!(env.mutations().is_empty(), "plan changed nothing");
    assert!(!env.home.path().join("apps").exists() || env.home_files().is_empty());
}

#[test]
fn plan_refuses_what_run_would_refuse() {
    let env = Env::new("follower");
    env.run(&["plan", "--to", "essential-0", "-a", "follower-app"])
        .code(1)
        .stderr_has("is a follower");
}

#[test]
fn list_shows_every_run_of_every_app_newest_first() {
    let env = Env::new("demo");
    env.run(&["list"])
        .ok()
        .stdout_has("No migration is journaled");
    env.run(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
        "--stop-before",
        "maintenance-on",
    ])
    .code(3);
    env.run(&["rollback", "-a", "demo-app", "--confirm", "demo-app"])
        .ok();
    env.run(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ])
    .ok();
    let out = env.run(&["list"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("completed"), "{out}");
    assert!(lines[1].contains("rolled back"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&env.run(&["list", "--json"]).stdout).unwrap();
    assert_eq!(v["runs"][0]["outcome"], "completed");
    assert_eq!(v["runs"][1]["outcome"], "rolled-back");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let env = Env::new("demo");
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]);
        out.ok().stdout_has("rollback");
    }
    env.run(&["completions", "tcsh"]).code(2);
}

#[test]
fn completions_offer_the_values_of_method_and_stop_before() {
    let env = Env::new("demo");
    // The values as the code knows them: the plans' step ids and the
    // methods' names, not a list written again here.
    let mut stop_before = vec!["cutover", "maintenance"];
    stop_before.extend(pgmigrate::methods::registry::step_ids());
    assert!(stop_before.contains(&"wait-copy") && stop_before.contains(&"unfollow"));
    let methods: Vec<&str> = pgmigrate::methods::choose::Wanted::values()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(methods.len() >= 4 && methods.contains(&"follower"));
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]);
        out.ok();
        // zsh gives an option's values on its line, fish in its
        // `complete` command, bash in a case arm after it.
        let text = match shell {
            // A value with help takes a line of its own, up to `))`.
            "zsh" => out
                .stdout
                .split("'--method=")
                .skip(1)
                .filter_map(|rest| rest.split("))").next())
                .collect::<Vec<_>>()
                .join("\n"),
            "fish" => out
                .stdout
                .split("-l method")
                .nth(1)
                .and_then(|rest| rest.split("\ncomplete -c").next())
                .unwrap_or_default()
                .to_string(),
            _ => out.stdout.clone(),
        };
        for m in &methods {
            assert!(text.contains(m), "{shell}: --method {m} not offered");
        }
        let text = if shell == "bash" {
            out.stdout.clone()
        } else {
            out.stdout
                .split("stop-before")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        };
        for v in &stop_before {
            assert!(text.contains(v), "{shell}: --stop-before {v} not offered");
        }
    }
}

#[test]
fn rollback_help_lists_only_what_rollback_uses() {
    let env = Env::new("demo");
    let out = env.run(&["rollback", "--help"]);
    out.ok()
        .stdout_has("--confirm")
        .stdout_has("--keep-target")
        .stdout_has("--force")
        .stdout_has("--drain-timeout");
    // Rollback provisions nothing and follows no copy.
    for unused in [
        "--provision-timeout",
        "--copy-stall-timeout",
        "--verify",
        "--to",
        "--method",
    ] {
        assert!(
            !out.stdout.contains(unused),
            "rollback --help lists {unused}\n{out}"
        );
        env.run(&["rollback", "-a", "demo-app", unused, "1"])
            .code(2);
    }
}

#[test]
fn the_app_is_taken_from_heroku_app_or_the_git_remote() {
    let env = Env::new("follower");
    // HEROKU_APP
    let mut c = env.command(&["plan", "--to", "essential-0"]);
    c.env("HEROKU_APP", "follower-app");
    common::output(c).code(1).stderr_has("is a follower");
    // A git repository with one Heroku remote.
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap()
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "heroku",
        "https://git.heroku.com/follower-app.git",
    ]);
    git(&[
        "remote",
        "add",
        "origin",
        "git@github.com:me/follower-app.git",
    ]);
    let mut c = env.command(&["plan", "--to", "essential-0"]);
    c.current_dir(repo.path());
    common::output(c).code(1).stderr_has("is a follower");
    // Two Heroku apps: ask for --app.
    git(&[
        "remote",
        "add",
        "staging",
        "git@heroku.com:follower-staging.git",
    ]);
    let mut c = env.command(&["plan", "--to", "essential-0"]);
    c.current_dir(repo.path());
    common::output(c)
        .code(2)
        .stderr_has("several Heroku apps (follower-app, follower-staging)");
    // No repository, no variable: a clear usage error.
    let empty = tempfile::tempdir().unwrap();
    let mut c = env.command(&["plan", "--to", "essential-0"]);
    c.current_dir(empty.path());
    common::output(c)
        .code(2)
        .stderr_has("no app given: pass --app APP");
}

#[test]
fn remote_urls_are_parsed_like_the_official_cli() {
    let text = "heroku\thttps://git.heroku.com/my-app.git (fetch)\n\
                heroku\thttps://git.heroku.com/my-app.git (push)\n\
                other\tgit@heroku.com:other-app.git (fetch)\n\
                gh\thttps://github.com/x/y.git (fetch)\n";
    assert_eq!(
        pgmigrate::cli::heroku_apps_in_remotes(text),
        vec!["my-app".to_string(), "other-app".to_string()]
    );
}

#[test]
fn json_logs_are_one_object_per_line_on_stderr() {
    let env = Env::new("demo");
    let out = env.run(&[
        "-v",
        "--log-format",
        "json",
        "plan",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
    ]);
    out.ok();
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "{out}");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string());
    }
    assert!(out.stdout.starts_with("Plan for demo-app"));
}

#[test]
fn every_verb_has_an_example_in_its_help() {
    let env = Env::new("demo");
    for verb in [
        "run",
        "status",
        "resume",
        "rollback",
        "sandbox",
        "demo",
        "plan",
        "list",
        "completions",
    ] {
        env.run(&[verb, "--help"]).ok().stdout_has("Example");
    }
}

#[test]
fn other_credentials_on_the_source_are_warned_about() {
    // A transfer copies only what the default credential can read.
    let mut s = common::scenario("crash");
    s.apps[0].addons[0].credentials = vec!["analyst".into()];
    let env = Env::with(s);
    let plan = env.run(&["plan", "-a", "crash-app", "--to", "premium-0"]);
    plan.ok()
        .stdout_has("credentials besides the default one (analyst)")
        .stdout_has("heroku pg:credentials:create");
    let asked = env
        .sandbox
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/credentials"))
        .expect("the credentials were asked for");
    assert_eq!(asked.status, 200, "with the token as HTTP Basic");
    assert!(!plan.stdout.contains("analyst-password"));

    // The default credential alone: no warning.
    let env = Env::new("crash");
    let plan = env.run(&["plan", "-a", "crash-app", "--to", "premium-0"]);
    assert!(!plan.ok().stdout.contains("credentials besides"));
}

/// Files and directories under `dir`, recursively.
fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out
}

#[test]
fn the_demo_says_its_method_and_why_and_leaves_no_directory_behind() {
    let env = Env::new("demo");
    let tmp = tempfile::tempdir().unwrap();
    let mut c = env.command(&["demo"]);
    c.env("TMPDIR", tmp.path());
    let out = common::output(c);
    out.ok()
        .stdout_has("--method copy")
        .stdout_has("the copy, because every move can use it")
        .stdout_has("pgmigrate plan --app APP")
        .stdout_has("Migrated demo-app: completed");
    // It did work in TMPDIR (so the emptiness below means something)...
    assert!(
        out.stdout.contains(&format!(
            "journals in {}",
            tmp.path().join("pgmigrate-demo-").display()
        )),
        "{out}"
    );
    // ...and left nothing there, nor in PGMIGRATE_HOME.
    assert_eq!(entries(tmp.path()), Vec::<std::path::PathBuf>::new());
    assert!(env.home_files().is_empty(), "{:?}", env.home_files());
}

#[test]
fn a_demo_stopped_by_ctrl_c_leaves_no_directory_behind() {
    use std::io::{BufRead, BufReader};
    let env = Env::new("demo");
    let tmp = tempfile::tempdir().unwrap();
    let mut c = env.command(&["demo"]);
    c.env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("wait-target:") => break,
            Some(_) => {}
            None => panic!("the demo ended before wait-target"),
        }
    }
    // The run has journaled in TMPDIR by now.
    assert!(!entries(tmp.path()).is_empty());
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::thread::spawn(move || for _ in lines {});
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the demo stopped at"), "{stderr}");
    assert_eq!(entries(tmp.path()), Vec::<std::path::PathBuf>::new());
}
