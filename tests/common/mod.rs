//! Test support: a sandbox Heroku in the test process and a builder that
//! runs the real `pgmigrate` binary against it with a hermetic
//! environment (its own HOME and PGMIGRATE_HOME, no inherited Heroku
//! variables), returning exit status, stdout and stderr.

#![allow(dead_code)]

pub mod changeover;
pub mod crash;
pub mod process;
pub mod schema;

use std::path::{Path, PathBuf};
use std::process::Command;

use pgmigrate::sim::{LoggedRequest, Sandbox, Scenario};
use serde_json::Value;

pub struct Env {
    pub sandbox: Sandbox,
    pub home: tempfile::TempDir,
    pub user_home: tempfile::TempDir,
    /// `PGMIGRATE_METHOD` for every command: `copy` for the suites written
    /// for the copy (their scenarios' Standard databases could otherwise
    /// be moved by a follower); `None` lets pgmigrate choose (`auto`), as
    /// the tests of the choice and of the other methods do.
    pub method: Option<&'static str>,
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Out {
        assert_eq!(self.code, 0, "expected success\n{self}");
        self
    }
    pub fn code(&self, code: i32) -> &Out {
        assert_eq!(self.code, code, "expected exit {code}\n{self}");
        self
    }
    pub fn stderr_has(&self, text: &str) -> &Out {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}\n{self}");
        self
    }
    pub fn stdout_has(&self, text: &str) -> &Out {
        assert!(self.stdout.contains(text), "stdout lacks {text:?}\n{self}");
        self
    }
    pub fn stdout_lacks(&self, text: &str) -> &Out {
        assert!(!self.stdout.contains(text), "stdout has {text:?}\n{self}");
        self
    }
    pub fn stderr_lacks(&self, text: &str) -> &Out {
        assert!(!self.stderr.contains(text), "stderr has {text:?}\n{self}");
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(format!("{name}.json"))
}

/// Load a fixture scenario with timings shortened for tests.
pub fn scenario(name: &str) -> Scenario {
    let mut s = Scenario::from_file(&fixture(name)).expect("fixture scenario");
    s.timing.provision_ms = s.timing.provision_ms.min(300);
    s.timing.dyno_stop_ms = s.timing.dyno_stop_ms.min(400);
    s.timing.dyno_start_ms = s.timing.dyno_start_ms.min(100);
    s.timing.transfer_ms = s.timing.transfer_ms.min(600);
    s
}

/// The PostgreSQL server for tests that need one: `PGMIGRATE_TEST_POSTGRES`
/// (a URL of a role that may create databases). Without it the test is
/// skipped with a visible message, except in CI (`CI` set), where a
/// missing server is a failure: `.ci/run` always provides one.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("PGMIGRATE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
            panic!("{test}: CI must provide PGMIGRATE_TEST_POSTGRES (see .ci/run)")
        }
        _ => {
            // Written to the real stderr, past the test harness's capture,
            // so that the skip is visible in a passing run.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no PostgreSQL server; run `bash .ci/postgres.sh` and set \
                 PGMIGRATE_TEST_POSTGRES to the URL it prints"
            );
            None
        }
    }
}

impl Env {
    /// A sandbox whose Postgres add-ons are real databases on `postgres`.
    pub fn with_postgres(s: Scenario, postgres: &str) -> Env {
        Env {
            sandbox: Sandbox::start_with(s, 0, Some(postgres)).expect("sandbox on PostgreSQL"),
            home: tempfile::tempdir().expect("tempdir"),
            user_home: tempfile::tempdir().expect("tempdir"),
            method: Some("copy"),
        }
    }

    pub fn new(name: &str) -> Env {
        Env::with(scenario(name))
    }

    pub fn with(s: Scenario) -> Env {
        Env {
            sandbox: Sandbox::start(s, 0).expect("sandbox starts"),
            home: tempfile::tempdir().expect("tempdir"),
            user_home: tempfile::tempdir().expect("tempdir"),
            method: Some("copy"),
        }
    }

    /// The binary with a hermetic environment pointed at the sandbox.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pgmigrate"));
        c.args(args)
            .env_clear()
            .env("PATH", hermetic_path())
            .env("HOME", self.user_home.path())
            .env("HEROKU_HOST", self.sandbox.base_url())
            .env("HEROKU_DATA_HOST", self.sandbox.base_url())
            .env("HEROKU_API_KEY", self.sandbox.token())
            .env("PGMIGRATE_HOME", self.home.path())
            // The simulated databases have nothing to compare; the tests
            // against a real PostgreSQL turn verification on.
            .env("PGMIGRATE_VERIFY", "none")
            .stdin(std::process::Stdio::null());
        if let Some(m) = self.method {
            c.env("PGMIGRATE_METHOD", m);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        output(self.command(args))
    }

    pub fn state(&self) -> Value {
        self.sandbox.snapshot()
    }

    pub fn app(&self, app: &str) -> Value {
        self.state()["apps"][app].clone()
    }

    /// Requests that could change something (everything but GET).
    pub fn mutations(&self) -> Vec<LoggedRequest> {
        self.sandbox
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    /// Files under PGMIGRATE_HOME, with their contents.
    pub fn home_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = vec![];
        let mut stack = vec![self.home.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let bytes = std::fs::read(&p).unwrap_or_default();
                    out.push((p, bytes));
                }
            }
        }
        out
    }

    /// The journals of an app, oldest first (none if it has no runs dir).
    pub fn journal_paths(&self, app: &str) -> Vec<PathBuf> {
        let dir = self.home.path().join("apps").join(app).join("runs");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        });
        files.sort();
        files
    }

    /// The path of the latest journal of an app.
    pub fn journal_path(&self, app: &str) -> PathBuf {
        self.journal_paths(app).pop().expect("a journal")
    }

    /// The latest journal of an app, parsed.
    pub fn journal(&self, app: &str) -> Value {
        let text = std::fs::read_to_string(self.journal_path(app)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Run a migration of `app` that stops before `step` (exit 3) and
    /// return its journal's path.
    pub fn stopped_run(&self, app: &str, step: &str) -> PathBuf {
        self.run(&[
            "run",
            "--to",
            "essential-0",
            "-a",
            app,
            "--confirm",
            app,
            "--stop-before",
            step,
        ])
        .code(3);
        self.journal_path(app)
    }
}

/// The test process's PATH without any directory holding a `heroku`
/// executable: pgmigrate asks `heroku auth:token` for a token when it has
/// none, and a real CLI logged in on this machine must not answer a test.
/// Tests that want a `heroku` put their own first with [`prepend_path`].
pub fn hermetic_path() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("heroku").exists())
        .collect();
    std::env::join_paths(dirs).unwrap_or_default()
}

/// Puts `dir` first on the PATH of `c` (a command from [`Env::command`]).
pub fn prepend_path(c: &mut Command, dir: &Path) {
    let current = c
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v.map(|v| v.to_os_string()))
        .unwrap_or_default();
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&current));
    c.env("PATH", std::env::join_paths(dirs).expect("a PATH"));
}

pub fn output(mut c: Command) -> Out {
    let o = c.output().expect("binary runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The add-on record (from the snapshot) named `name`.
pub fn addon<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["addons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name && a["deleted"] == false)
        .unwrap_or_else(|| panic!("no live add-on {name}"))
}

/// Live (not deleted) add-ons of an app.
pub fn live_addons(state: &Value, app: &str) -> Vec<Value> {
    state["addons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["app"] == app && a["deleted"] == false)
        .cloned()
        .collect()
}

/// Everything about the app that a migration must restore or change,
/// minus things that legitimately differ (dyno names).
pub fn shape(app: &Value) -> Value {
    let mut atts: Vec<(String, String, String)> = app["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or("").to_string(),
                a["namespace"].as_str().unwrap_or("").to_string(),
                a["addon_name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    atts.sort();
    serde_json::json!({
        "maintenance": app["maintenance"],
        "formation": app["formation"],
        "config_vars": app["config_vars"],
        "attachments": atts,
    })
}

/// Wait until the app's dynos have settled (started ones are up).
pub fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(150));
}

/// The transfer a journal last saw: the wait's look, else the start's
/// answer (journal v2 keeps each under the step that produced it).
pub fn transfer(journal: &Value) -> Value {
    let out = |id: &str| {
        journal["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|r| r["id"] == id))
            .map(|r| r["output"].clone())
            .filter(|o| !o.is_null())
    };
    out("wait-copy")
        .or_else(|| out("start-copy"))
        .unwrap_or(Value::Null)
}

/// Every credential the sandbox knows: its token, each add-on's URL and
/// password, and the other credential of a same-host var.
pub fn secrets(env: &Env) -> Vec<String> {
    let state = env.state();
    let mut secrets = vec![env.sandbox.token()];
    for a in state["addons"].as_array().unwrap() {
        let url = url::Url::parse(a["url"].as_str().unwrap()).unwrap();
        secrets.push(url.password().unwrap().to_string());
        secrets.push(a["url"].as_str().unwrap().to_string());
    }
    secrets.push("other-credential-secret".into());
    secrets
}

/// Scan every output and every byte under PGMIGRATE_HOME for secrets.
pub fn assert_no_secret(env: &Env, outs: &[Out]) {
    let secrets = secrets(env);
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![];
    for (i, o) in outs.iter().enumerate() {
        haystacks.push((format!("output {i} stdout"), o.stdout.clone().into_bytes()));
        haystacks.push((format!("output {i} stderr"), o.stderr.clone().into_bytes()));
    }
    let files = env.home_files();
    assert!(!files.is_empty());
    for (p, bytes) in files {
        haystacks.push((p.display().to_string(), bytes));
    }
    for (name, bytes) in &haystacks {
        let text = String::from_utf8_lossy(bytes);
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{name} contains a secret");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (p, _) in env.home_files() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let mut dirs = vec![env.home.path().join("apps")];
        while let Some(dir) = dirs.pop() {
            if !dir.exists() {
                continue;
            }
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                if e.path().is_dir() {
                    dirs.push(e.path());
                }
            }
        }
    }
}
