//! Bad input: each case gives a clear error naming the problem and the fix,
//! exits non-zero, and changes nothing on the app (no request other than
//! GET reaches the sandbox). The table of cases and their messages:
//!
//! | case | exit | message contains |
//! |---|---|---|
//! | invalid app name | 2 | "is not a valid Heroku app name" |
//! | unknown app | 1 | "no app named" |
//! | no DATABASE attachment | 1 | "has no add-on attached as DATABASE" |
//! | DATABASE not Heroku Postgres | 1 | "not Heroku Postgres" |
//! | DATABASE is a follower | 1 | "is a follower" |
//! | unknown plan | 1 | "no Postgres plan named" |
//! | plan of another service | 2 | "is not a Heroku Postgres plan" |
//! | the source's own plan | 1 | "--force" |
//! | one-off dynos running | 1 | "one-off dynos are running" |
//! | a one-off dyno started after preflight or while the app is down | 3 (before the app is touched, or before the copy) | "one-off dynos are running" |
//! | no token | 2 | "no Heroku API token" |
//! | token refused (401) | 1 | "refused the API token" |
//! | no access to the app (403) | 1 | "may not change" |
//! | malformed ~/.netrc | 2 | ".netrc" |
//! | no --confirm and no terminal | 2 | "--confirm" |
//! | --confirm for another app | 2 | "does not match" |
//! | plain http to a non-loopback host | 2 | "HEROKU_HOST" |
//! | PGMIGRATE_HOME a file, not a directory | 2 (environment) | "PGMIGRATE_HOME", "not a directory" |
//! | a second run while one holds the lock | 4 | "holds the lock", "pid" |
//! | a run while the last one is unfinished | 5 | "unfinished", "pgmigrate resume" |
//! | a damaged journal | 1 | "is damaged" |
//! | a journal from a newer pgmigrate | 1 | "newer pgmigrate" |

mod common;

use common::Env;

fn refuses(env: &Env, args: &[&str], code: i32, text: &str) {
    let before = env.state()["apps"].clone();
    let out = env.run(args);
    out.code(code).stderr_has(text);
    assert!(
        env.mutations().is_empty(),
        "nothing may change: {:?}",
        env.mutations()
    );
    assert_eq!(env.state()["apps"], before);
    assert_eq!(
        env.state()["addons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["name"].as_str().unwrap().contains("pgmigrate"))
            .count(),
        0,
        "no add-on created"
    );
}

#[test]
fn invalid_app_name() {
    let env = Env::new("demo");
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "Demo_App",
            "--confirm",
            "Demo_App",
        ],
        2,
        "is not a valid Heroku app name",
    );
}

#[test]
fn unknown_app() {
    let env = Env::new("demo");
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "no-such-app",
            "--confirm",
            "no-such-app",
        ],
        1,
        "no app named no-such-app",
    );
}

#[test]
fn app_without_database() {
    let env = Env::new("no-database");
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "bare-app",
            "--confirm",
            "bare-app",
        ],
        1,
        "has no add-on attached as DATABASE",
    );
}

#[test]
fn database_that_is_not_postgres() {
    let env = Env::new("not-postgres");
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "redis-app",
            "--confirm",
            "redis-app",
        ],
        1,
        "not Heroku Postgres",
    );
}

#[test]
fn database_that_is_a_follower() {
    let env = Env::new("follower");
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "follower-app",
            "--confirm",
            "follower-app",
        ],
        1,
        "is a follower",
    );
}

#[test]
fn unknown_plan() {
    let env = Env::new("demo");
    refuses(
        &env,
        &[
            "run",
            "-a",
            "demo-app",
            "--confirm",
            "demo-app",
            "--to",
            "heroku-postgresql:gigantic-9",
        ],
        1,
        "no Postgres plan named gigantic-9",
    );
}

#[test]
fn plan_of_another_service() {
    let env = Env::new("demo");
    refuses(
        &env,
        &[
            "run",
            "-a",
            "demo-app",
            "--confirm",
            "demo-app",
            "--to",
            "heroku-redis:mini",
        ],
        2,
        "is not a Heroku Postgres plan",
    );
}

#[test]
fn the_source_plan_needs_force() {
    let env = Env::new("demo");
    refuses(
        &env,
        &[
            "run",
            "-a",
            "demo-app",
            "--confirm",
            "demo-app",
            "--to",
            "mini",
        ],
        1,
        "--force",
    );
}

#[test]
fn one_off_dynos_running() {
    let env = Env::new("one-off");
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "busy-app",
            "--confirm",
            "busy-app",
        ],
        1,
        "one-off dynos are running on busy-app: run.1",
    );
}

#[test]
fn no_token() {
    let env = Env::new("demo");
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    c.env_remove("HEROKU_API_KEY");
    common::output(c).code(2).stderr_has("no Heroku API token");
    assert!(env.sandbox.requests().is_empty());
}

#[test]
fn token_from_netrc_is_used() {
    let env = Env::new("demo");
    // The entry of the configured API host (HEROKU_HOST is the sandbox's
    // `http://127.0.0.1:PORT`), as the heroku CLI reads it: the token of
    // `api.heroku.com` is not sent to another host.
    let machine = env
        .sandbox
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    std::fs::write(
        env.user_home.path().join(".netrc"),
        format!(
            "machine {machine}\n  login me@example.com\n  password {}\n",
            env.sandbox.token()
        ),
    )
    .unwrap();
    // A preflight that gets as far as the plan check has been authorised.
    let mut c = env.command(&[
        "run",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
        "--to",
        "mini",
    ]);
    c.env_remove("HEROKU_API_KEY");
    common::output(c).code(1).stderr_has("--force");
    assert!(env.sandbox.requests().iter().all(|r| r.status != 401));
}

#[test]
fn bad_token() {
    let env = Env::new("demo");
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    c.env("HEROKU_API_KEY", "not-the-token");
    common::output(c)
        .code(1)
        .stderr_has("refused the API token");
    assert!(env.mutations().is_empty());
}

#[test]
fn no_access_to_the_app() {
    let mut s = common::scenario("demo");
    s.faults.push(pgmigrate::sim::Fault {
        method: Some("GET".into()),
        path_contains: Some("/apps/demo-app".into()),
        path_ends_with: None,
        nth: None,
        times: 0,
        action: pgmigrate::sim::FaultAction::Status {
            status: 403,
            id: "forbidden".into(),
            message: "You do not have access to the app demo-app.".into(),
            retry_after: None,
        },
    });
    let env = Env::with(s);
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "demo-app",
            "--confirm",
            "demo-app",
        ],
        1,
        "may not change demo-app (403 forbidden)",
    );
    assert!(env.sandbox.faults_fired() >= 1, "the 403 was answered");
}

#[test]
fn malformed_netrc() {
    let env = Env::new("demo");
    std::fs::write(
        env.user_home.path().join(".netrc"),
        "machine api.heroku.com login\n",
    )
    .unwrap();
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    c.env_remove("HEROKU_API_KEY");
    let out = common::output(c);
    out.code(2).stderr_has(".netrc");
    assert!(env.sandbox.requests().is_empty());
}

#[test]
fn no_confirmation_without_a_terminal() {
    let env = Env::new("demo");
    refuses(
        &env,
        &["run", "--to", "essential-0", "-a", "demo-app"],
        2,
        "--confirm demo-app",
    );
}

#[test]
fn confirmation_for_another_app() {
    let env = Env::new("demo");
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "demo-app",
            "--confirm",
            "other-app",
        ],
        2,
        "does not match",
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let env = Env::new("demo");
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    c.env("HEROKU_HOST", "http://api.example.com");
    common::output(c).code(2).stderr_has("HEROKU_HOST");
    assert!(env.sandbox.requests().is_empty());
}

#[test]
fn unwritable_home() {
    let env = Env::new("demo");
    let file = env.home.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let mut c = env.command(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    c.env("PGMIGRATE_HOME", &file);
    common::output(c)
        .code(2)
        .stderr_has("PGMIGRATE_HOME")
        .stderr_has("not a directory");
    assert!(env.mutations().is_empty());
}

#[test]
fn a_second_run_while_the_lock_is_held() {
    let env = Env::new("demo");
    let home = pgmigrate::store::Home::at(env.home.path());
    let _held = pgmigrate::store::lock::AppLock::acquire(&home, "demo-app", "run").unwrap();
    refuses(
        &env,
        &[
            "run",
            "--to",
            "essential-0",
            "-a",
            "demo-app",
            "--confirm",
            "demo-app",
        ],
        4,
        "holds the lock for demo-app: pid",
    );
}

#[test]
fn a_run_while_the_last_one_is_unfinished() {
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
        "maintenance-on",
    ])
    .code(3);
    let n = env.mutations().len();
    let out = env.run(&[
        "run",
        "--to",
        "essential-0",
        "-a",
        "demo-app",
        "--confirm",
        "demo-app",
    ]);
    out.code(5)
        .stderr_has("unfinished")
        .stderr_has("pgmigrate resume --app demo-app");
    assert_eq!(env.mutations().len(), n, "nothing more changed");
}

fn damage_journal(env: &Env, change: impl Fn(String) -> String) -> std::path::PathBuf {
    let path = env.stopped_run("demo-app", "maintenance-on");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, change(text)).unwrap();
    path
}

#[test]
fn a_truncated_journal_is_refused_not_reinitialised() {
    let env = Env::new("demo");
    let path = damage_journal(&env, |t| t[..t.len() / 2].to_string());
    let damaged = std::fs::read(&path).unwrap();
    let n = env.mutations().len();
    for args in [
        vec!["status", "--app", "demo-app"],
        vec!["resume", "--app", "demo-app", "--confirm", "demo-app"],
        vec!["rollback", "--app", "demo-app", "--confirm", "demo-app"],
        vec![
            "run",
            "--to",
            "essential-0",
            "--app",
            "demo-app",
            "--confirm",
            "demo-app",
        ],
    ] {
        env.run(&args)
            .code(1)
            .stderr_has("is damaged")
            .stderr_has(&path.display().to_string());
    }
    assert_eq!(std::fs::read(&path).unwrap(), damaged, "left as it was");
    assert_eq!(env.mutations().len(), n);
}

#[test]
fn a_journal_from_a_newer_pgmigrate_is_refused() {
    let env = Env::new("demo");
    damage_journal(&env, |t| {
        t.replace("\"format_version\": 2", "\"format_version\": 3")
    });
    env.run(&["resume", "--app", "demo-app", "--confirm", "demo-app"])
        .code(1)
        .stderr_has("newer pgmigrate");
}

/// A one-off dyno started after preflight stops the run before the app is
/// touched (before maintenance, or before the scale-down when maintenance
/// was already on), and resume goes on once it is gone.
#[test]
fn a_one_off_dyno_started_after_preflight_stops_the_run_before_the_app_is_touched() {
    for (scenario, app, stop_before) in [
        ("demo", "demo-app", "maintenance"),
        ("maintenance-on", "quiet-app", "scale-down"),
    ] {
        let env = Env::new(scenario);
        env.stopped_run(app, stop_before);
        env.sandbox.start_one_off(app, "run.7");
        let before = env.app(app);
        env.run(&["resume", "-a", app, "--confirm", app])
            .code(3)
            .stderr_has("one-off dynos are running: run.7");
        let after = env.app(app);
        assert_eq!(after["maintenance"], before["maintenance"], "{scenario}");
        assert_eq!(after["formation"], before["formation"], "{scenario}");
        assert!(env.sandbox.stop_one_off(app, "run.7"));
        env.run(&["resume", "-a", app, "--confirm", app]).ok();
    }
}

#[test]
fn a_one_off_dyno_started_while_the_app_is_down_stops_the_run_before_the_copy() {
    let env = Env::new("demo");
    let app = "demo-app";
    env.stopped_run(app, "wait-dynos");
    env.sandbox.start_one_off(app, "run.8");
    env.run(&["resume", "-a", app, "--confirm", app])
        .code(3)
        .stderr_has("stopped at step wait-dynos")
        .stderr_has("one-off dynos are running: run.8");
    assert!(
        !env.mutations()
            .iter()
            .any(|r| r.path.contains("/transfers")),
        "no copy while a one-off dyno could write"
    );
    assert!(env.sandbox.stop_one_off(app, "run.8"));
    env.run(&["resume", "-a", app, "--confirm", app]).ok();
}
