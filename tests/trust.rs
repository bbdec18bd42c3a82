//! Trust (issue 9, items 6-8), with the real binary:
//!
//! - the API token goes only to Heroku API hosts over https, or to
//!   loopback: any other `HEROKU_HOST` / `HEROKU_DATA_HOST` is refused
//!   before any request (exit 2), naming the variable and the fix;
//! - the netrc entry read is the configured API host's, never `default`,
//!   and keywords other tools write are skipped;
//! - after `HEROKU_API_KEY` and the netrc, `heroku auth:token` is asked
//!   (a fake `heroku` on PATH): its token is used and never shown; one that
//!   fails or hangs means "no token", bounded in time, with the way to log
//!   in;
//! - database TLS in verify honours `sslmode=verify-ca` / `verify-full` with
//!   `sslrootcert` (needs PGMIGRATE_TEST_POSTGRES).

mod common;

use std::path::{Path, PathBuf};

use common::{output, prepend_path, Env};

const APP: &str = "demo-app";

/// A preflight that gets as far as the plan check (refused without
/// `--force`, exit 1) has been authorised: it read the app.
fn preflight(env: &Env) -> std::process::Command {
    env.command(&["run", "-a", APP, "--confirm", APP, "--to", "mini"])
}

fn authorised(env: &Env, out: &common::Out) {
    out.code(1).stderr_has("--force");
    let requests = env.sandbox.requests();
    assert!(!requests.is_empty(), "no request was made\n{out}");
    assert!(requests.iter().all(|r| r.status != 401), "{requests:#?}");
    assert!(env.mutations().is_empty(), "{:#?}", env.mutations());
    let token = env.sandbox.token();
    assert!(
        !out.stdout.contains(&token) && !out.stderr.contains(&token),
        "{out}"
    );
}

/// The sandbox's API host as the netrc names it: `127.0.0.1:PORT`.
fn machine(env: &Env) -> String {
    env.sandbox
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

// --- item 6: the token only to Heroku -------------------------------------

#[test]
fn an_https_host_that_is_not_heroku_gets_no_token() {
    let env = Env::new("demo");
    let mut c = preflight(&env);
    c.env("HEROKU_HOST", "https://evil.example")
        .env_remove("HEROKU_DATA_HOST");
    let out = output(c);
    out.code(2)
        .stderr_has("HEROKU_HOST=\"https://evil.example\"")
        .stderr_has("not a Heroku API host")
        .stderr_has("Unset HEROKU_HOST");
    assert!(!out.stderr.contains(&env.sandbox.token()), "{out}");
    assert!(env.sandbox.requests().is_empty());
}

#[test]
fn a_bare_data_host_elsewhere_gets_no_token() {
    let env = Env::new("demo");
    let mut c = preflight(&env);
    c.env("HEROKU_DATA_HOST", "evil.example");
    let out = output(c);
    out.code(2)
        .stderr_has("HEROKU_DATA_HOST=\"evil.example\"")
        .stderr_has("not a Heroku API host")
        .stderr_has("Unset HEROKU_DATA_HOST");
    assert!(env.sandbox.requests().is_empty());
}

#[test]
fn the_netrc_entry_of_the_configured_host_with_other_tools_keywords() {
    let env = Env::new("demo");
    std::fs::write(
        env.user_home.path().join(".netrc"),
        format!(
            "machine api.heroku.com\n  login me@example.com\n  password not-for-the-sandbox\n\
             machine {}\n  login me@example.com\n  password {}\n  port 5000\n  protocol http\n\
             machine ftp.example.com login anonymous password x account y port 21\n\
             macdef init\nbinary\n\n",
            machine(&env),
            env.sandbox.token()
        ),
    )
    .unwrap();
    let mut c = preflight(&env);
    c.env_remove("HEROKU_API_KEY");
    authorised(&env, &output(c));
}

#[test]
fn a_netrc_with_only_a_default_entry_gives_no_token() {
    let env = Env::new("demo");
    std::fs::write(
        env.user_home.path().join(".netrc"),
        format!("default login me password {}\n", env.sandbox.token()),
    )
    .unwrap();
    let mut c = preflight(&env);
    c.env_remove("HEROKU_API_KEY");
    let out = output(c);
    out.code(2)
        .stderr_has("no Heroku API token")
        .stderr_has("`default` entry is not used")
        .stderr_has("HEROKU_API_KEY");
    assert!(env.sandbox.requests().is_empty());
}

#[test]
fn a_netrc_entry_for_api_heroku_com_is_not_sent_to_another_host() {
    let env = Env::new("demo");
    std::fs::write(
        env.user_home.path().join(".netrc"),
        format!("machine api.heroku.com password {}\n", env.sandbox.token()),
    )
    .unwrap();
    let mut c = preflight(&env);
    c.env_remove("HEROKU_API_KEY");
    let out = output(c);
    out.code(2)
        .stderr_has(&format!("no `machine {}` entry", machine(&env)));
    assert!(env.sandbox.requests().is_empty());
}

// --- item 7: heroku auth:token ----------------------------------------------

/// A directory with a fake `heroku` running `body` (sh), which first
/// records its arguments and whether its stdin is at end of file.
fn fake_heroku(body: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let exe = dir.path().join("heroku");
    std::fs::write(
        &exe,
        format!(
            "#!/bin/sh\necho \"args=$*\" >> '{}'\nif read -r _; then echo stdin=data; else echo \
             stdin=eof; fi >> '{}'\n{body}\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn calls(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
}

fn without_token(env: &Env, path: &Path) -> std::process::Command {
    let mut c = preflight(env);
    c.env_remove("HEROKU_API_KEY");
    prepend_path(&mut c, path);
    c
}

#[test]
fn the_token_from_heroku_auth_token_when_there_is_no_netrc() {
    let env = Env::new("demo");
    let bin = fake_heroku(&format!("echo '{}'", env.sandbox.token()));
    let out = output(without_token(&env, bin.path()));
    authorised(&env, &out);
    assert_eq!(calls(bin.path()), "args=auth:token\nstdin=eof\n");
}

#[test]
fn the_token_from_heroku_auth_token_when_the_netrc_has_only_default() {
    let env = Env::new("demo");
    std::fs::write(
        env.user_home.path().join(".netrc"),
        "default login me password wrong\n",
    )
    .unwrap();
    let bin = fake_heroku(&format!("echo '{}'", env.sandbox.token()));
    authorised(&env, &output(without_token(&env, bin.path())));
    assert_eq!(calls(bin.path()), "args=auth:token\nstdin=eof\n");
}

#[test]
fn heroku_auth_token_is_not_asked_when_the_key_or_netrc_has_it() {
    let env = Env::new("demo");
    let bin = fake_heroku("echo wrong-token");
    let mut c = preflight(&env);
    prepend_path(&mut c, bin.path());
    authorised(&env, &output(c));
    std::fs::write(
        env.user_home.path().join(".netrc"),
        format!(
            "machine {} password {}\n",
            machine(&env),
            env.sandbox.token()
        ),
    )
    .unwrap();
    authorised(&env, &output(without_token(&env, bin.path())));
    assert_eq!(calls(bin.path()), "");
}

#[test]
fn a_failing_heroku_auth_token_means_no_token_and_says_how_to_log_in() {
    let env = Env::new("demo");
    let bin =
        fake_heroku("printf '\\033[31m \u{203a}   Error: not logged in\\033[0m\\n' >&2\nexit 1");
    let out = output(without_token(&env, bin.path()));
    out.code(2)
        .stderr_has("no Heroku API token")
        .stderr_has("auth:token` failed (exit status 1)")
        .stderr_has("heroku login")
        .stderr_has("HEROKU_API_KEY");
    assert!(env.sandbox.requests().is_empty());
    assert_eq!(calls(bin.path()), "args=auth:token\nstdin=eof\n");
    // Its stderr is not passed through raw: one cleaned line, quoted.
    assert!(
        out.stderr
            .contains("it said \"\u{203a}   Error: not logged in\""),
        "{out}"
    );
    assert!(!out.stderr.contains('\u{1b}'), "{out}");
}

#[test]
fn an_empty_heroku_auth_token_means_no_token() {
    let env = Env::new("demo");
    let bin = fake_heroku("exit 0");
    output(without_token(&env, bin.path()))
        .code(2)
        .stderr_has("printed no token")
        .stderr_has("heroku login");
    assert!(env.sandbox.requests().is_empty());
}

#[test]
fn a_hanging_heroku_auth_token_is_stopped() {
    let env = Env::new("demo");
    // It would sleep for 10 minutes, holding its output open: pgmigrate
    // returning at all (with this message) shows the wait is bounded.
    let bin = fake_heroku(&format!(
        "sleep 600 &\necho $! > '{}'\nwait",
        bin_pid_path().display()
    ));
    let pidfile = bin_pid_path();
    let out = output(without_token(&env, bin.path()));
    out.code(2)
        .stderr_has("did not answer within 10 s and was stopped")
        .stderr_has("HEROKU_API_KEY");
    assert!(env.sandbox.requests().is_empty());
    // What it started was stopped with it.
    // (SIGKILL lands at once, but the state shows it a moment later.)
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let mut stat = String::new();
    for _ in 0..250 {
        stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "sleep {pid} still runs: {stat}"
    );
    let _ = std::fs::remove_file(pidfile);
}

fn bin_pid_path() -> PathBuf {
    std::env::temp_dir().join(format!("pgmigrate-trust-hang-{}.pid", std::process::id()))
}

// --- item 8: database TLS in verify ----------------------------------------

/// The test server's URL with `params` added, on `host`.
fn pg_url(base: &str, host: &str, params: &str) -> String {
    let mut url = url::Url::parse(base).expect("PGMIGRATE_TEST_POSTGRES is a URL");
    url.set_host(Some(host)).unwrap();
    format!("{url}?{params}")
}

/// The server's own certificate (Debian's snakeoil: self-signed, for
/// `localhost`), which is then its own root. Fails, does not skip, when the
/// server has no TLS: `.ci/postgres.sh` sets up one that has.
fn server_certificate(base: &str) -> String {
    let mut c = pgmigrate::compare::connect(base).expect("connect to the test server");
    let ssl: String = c.query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "the test server must have ssl=on (see .ci/postgres.sh)"
    );
    let file: String = c.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
    let data_dir: String = c.query_one("SHOW data_directory", &[]).unwrap().get(0);
    let path = Path::new(&data_dir).join(&file);
    assert!(
        path.exists(),
        "the server's certificate {} is not readable here",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

#[test]
fn verify_ca_with_the_right_root_connects_encrypted() {
    let Some(base) = common::postgres_url("verify_ca_with_the_right_root_connects_encrypted")
    else {
        return;
    };
    let root = server_certificate(&base);
    // verify-ca does not check the name: 127.0.0.1 is not in the
    // certificate, and that is fine.
    for host in ["127.0.0.1", "localhost"] {
        let url = pg_url(
            &base,
            host,
            &format!("sslmode=verify-ca&sslrootcert={root}"),
        );
        let mut c = pgmigrate::compare::connect(&url).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(pgmigrate::compare::uses_tls(&mut c).unwrap(), "{host}");
    }
    // verify-full with the name the certificate holds.
    let url = pg_url(
        &base,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    let mut c = pgmigrate::compare::connect(&url).unwrap_or_else(|e| panic!("{e}"));
    assert!(pgmigrate::compare::uses_tls(&mut c).unwrap());
}

#[test]
fn verify_full_with_a_name_mismatch_fails_clearly() {
    let Some(base) = common::postgres_url("verify_full_with_a_name_mismatch_fails_clearly") else {
        return;
    };
    let root = server_certificate(&base);
    let url = pg_url(
        &base,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    let e = pgmigrate::compare::connect(&url).err().expect("refused");
    assert!(
        e.contains("cannot connect to the database on 127.0.0.1"),
        "{e}"
    );
    assert!(e.contains("not valid for name"), "{e}");
    assert!(
        e.contains("sslmode=verify-full") && e.contains(&root),
        "{e}"
    );
    assert!(!e.contains("pgmigrate-test"), "{e}");
}

#[test]
fn a_wrong_root_fails_clearly() {
    let Some(base) = common::postgres_url("a_wrong_root_fails_clearly") else {
        return;
    };
    server_certificate(&base);
    // The public roots: none signed the server's self-signed certificate.
    let wrong = "/etc/ssl/certs/ca-certificates.crt";
    assert!(
        Path::new(wrong).exists(),
        "{wrong} (Debian's ca-certificates) is needed"
    );
    for mode in ["verify-ca", "verify-full"] {
        let url = pg_url(
            &base,
            "localhost",
            &format!("sslmode={mode}&sslrootcert={wrong}"),
        );
        let e = pgmigrate::compare::connect(&url).err().expect("refused");
        assert!(
            e.contains("UnknownIssuer") || e.contains("unknown issuer"),
            "{mode}: {e}"
        );
        assert!(
            e.contains(&format!("sslmode={mode}")) && e.contains(wrong),
            "{e}"
        );
    }
    // A root file that is not there: named, with the fix.
    let url = pg_url(
        &base,
        "localhost",
        "sslmode=verify-ca&sslrootcert=/nonexistent/root.crt",
    );
    let e = pgmigrate::compare::connect(&url).err().expect("refused");
    assert!(
        e.contains("/nonexistent/root.crt") && e.contains("does not exist"),
        "{e}"
    );
}

#[test]
fn without_a_strict_sslmode_verify_requires_tls_without_checking_the_certificate() {
    let Some(base) = common::postgres_url(
        "without_a_strict_sslmode_verify_requires_tls_without_checking_the_certificate",
    ) else {
        return;
    };
    server_certificate(&base);
    // The self-signed certificate is accepted: `require` encrypts, it does
    // not authenticate the server.
    let url = pg_url(&base, "127.0.0.1", "sslmode=require");
    let mut c = pgmigrate::compare::connect(&url).unwrap_or_else(|e| panic!("{e}"));
    assert!(pgmigrate::compare::uses_tls(&mut c).unwrap());
}
