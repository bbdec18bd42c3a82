//! The sandbox's optional PostgreSQL backend: each simulated Postgres
//! add-on is a real database on a given server, its `_URL` a real
//! connection string, and a transfer really copies the data with
//! `pg_dump | pg_restore`, counting the bytes that pass.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::compare::db_error;

/// How a transfer damages the copy after a successful restore (a knob to
/// prove the verify step catches what Heroku would report as success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// The `events` table is missing from the copy.
    DropTable,
    /// One row of `events` is missing.
    DropRows,
    /// One value of `events` differs; row counts agree.
    AlterValue,
}

/// A PostgreSQL server the sandbox creates its databases on.
pub struct Backend {
    admin: url::Url,
    prefix: String,
    created: Mutex<Vec<String>>,
    /// Roles made for new credentials (`rotate`).
    roles: Mutex<Vec<String>>,
}

impl Backend {
    /// Check the server is reachable with the given URL (a superuser or a
    /// role that may create databases).
    pub fn connect(admin_url: &str) -> Result<Backend, String> {
        let admin = url::Url::parse(admin_url)
            .map_err(|e| format!("the PostgreSQL URL is not valid: {e}"))?;
        let b = Backend {
            admin,
            prefix: format!("pgm_sandbox_{:08x}_", super::random::random_u32()),
            created: Mutex::new(vec![]),
            roles: Mutex::new(vec![]),
        };
        b.client("postgres")?
            .simple_query("SELECT 1")
            .map_err(|e| format!("cannot query the PostgreSQL server: {e}"))?;
        Ok(b)
    }

    fn url_for(&self, db: &str) -> String {
        let mut u = self.admin.clone();
        u.set_path(&format!("/{db}"));
        u.to_string()
    }

    fn client(&self, db: &str) -> Result<postgres::Client, String> {
        postgres::Client::connect(&self.url_for(db), postgres::NoTls)
            .map_err(|e| crate::secrets::redact(&format!("cannot connect to PostgreSQL: {e}")))
    }

    /// Create a database for an add-on, seed `rows` rows into a few tables,
    /// and return its URL.
    pub fn create_database(&self, n: u64, rows: u64) -> Result<String, String> {
        let name = format!("{}{n}", self.prefix);
        let mut admin = self.client("postgres")?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {name}")))
            .map_err(|e| format!("cannot create database {name}: {}", db_error(&e)))?;
        if let Ok(mut c) = self.created.lock() {
            c.push(name.clone());
        }
        if rows > 0 {
            let users = (rows / 10).max(1);
            let orders = (rows / 4).max(1);
            let events = rows.saturating_sub(users + orders).max(1);
            let mut c = self.client(&name)?;
            c.batch_execute(&format!(
                "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
                 CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric(12,2));
                 CREATE TABLE events (id bigint PRIMARY KEY, kind text, payload text, at timestamptz);
                 INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, {users}) g;
                 INSERT INTO orders SELECT g, 1 + g % {users}, (g % 1000) / 7.0 FROM generate_series(1, {orders}) g;
                 INSERT INTO events SELECT g, 'kind' || (g % 13), md5(g::text), now() FROM generate_series(1, {events}) g;"
            ))
            .map_err(|e| format!("cannot seed database {name}: {}", db_error(&e)))?;
        }
        Ok(self.url_for(&name))
    }

    /// The size of a database in bytes.
    pub fn size(&self, url: &str) -> u64 {
        postgres::Client::connect(url, postgres::NoTls)
            .ok()
            .and_then(|mut c| {
                c.query_one("SELECT pg_database_size(current_database())", &[])
                    .ok()
            })
            .map(|r| r.get::<_, i64>(0).max(0) as u64)
            .unwrap_or(0)
    }

    /// A new URL for the same database, as a plan change's swap gives one:
    /// new credentials (a new role, a member of the backend's role, so it
    /// reads and writes everything) and, where the server has two names
    /// (`127.0.0.1` and `localhost`), the other host name. The old URL
    /// keeps working: unlike Heroku's, the old server is not gone.
    pub fn rotate(&self, url: &str, n: u64) -> Result<String, String> {
        let mut u = url::Url::parse(url).map_err(|e| format!("bad database URL: {e}"))?;
        let role = format!("{}r{n}", self.prefix);
        let password = format!(
            "p{:08x}{:08x}",
            super::random::random_u32(),
            super::random::random_u32()
        );
        let owner = self.admin.username().replace('"', "\"\"");
        let mut admin = self.client("postgres")?;
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE \"{owner}\""
            ))
            .map_err(|e| format!("cannot create role {role}: {}", db_error(&e)))?;
        if let Ok(mut r) = self.roles.lock() {
            r.push(role.clone());
        }
        let host = match u.host_str() {
            Some("127.0.0.1") => Some("localhost"),
            Some("localhost") => Some("127.0.0.1"),
            _ => None,
        };
        if let Some(h) = host {
            u.set_host(Some(h)).map_err(|e| format!("bad host: {e}"))?;
        }
        u.set_username(&role)
            .and_then(|()| u.set_password(Some(&password)))
            .map_err(|()| "cannot set the credentials".to_string())?;
        Ok(u.to_string())
    }

    /// Drop every database and role this backend created.
    pub fn cleanup(&self) {
        let names = self.created.lock().map(|c| c.clone()).unwrap_or_default();
        let roles = self.roles.lock().map(|c| c.clone()).unwrap_or_default();
        if let Ok(mut admin) = self.client("postgres") {
            for n in names {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"));
            }
            for r in roles {
                let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {r}"));
            }
        }
    }
}

/// How a real copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyEnd {
    /// pg_dump and pg_restore exited 0, or pg_restore exited 1 having
    /// ignored `warnings` errors ("errors ignored on restore: N").
    Succeeded { warnings: u64, logs: Vec<String> },
    /// pg_dump or pg_restore failed otherwise: the last log lines.
    Failed(Vec<String>),
    /// Cancelled: both processes were killed.
    Canceled,
}

/// A running copy.
#[derive(Debug, Default)]
pub struct Copy {
    /// Bytes pg_dump wrote (its custom format, compressed).
    pub processed: AtomicU64,
    /// Set once pg_dump and pg_restore were started (after the queue).
    pub started: AtomicBool,
    /// Set to ask the copy to stop: the processes are killed.
    pub cancel: AtomicBool,
    /// Set only after both processes exited (or were killed and reaped).
    pub result: Mutex<Option<CopyEnd>>,
    /// When `result` was set.
    pub ended_at: Mutex<Option<std::time::Instant>>,
}

impl Copy {
    /// How the copy ended, once both processes exited.
    pub fn end(&self) -> Option<CopyEnd> {
        self.result.lock().ok().and_then(|r| r.clone())
    }
}

/// What the restore meets in the target, to make pg_restore report errors
/// as Heroku would see them (a knob of the sandbox's faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The target already holds `users` with a view on it: pg_restore
    /// cannot drop or create `users`, ignores both errors (exit 1, "errors
    /// ignored on restore: 2") and still loads its rows.
    Ignored,
    /// The same conflict with `--exit-on-error`: pg_restore stops at the
    /// first error (exit 1), the restore failed.
    Fatal,
}

/// Start `pg_dump | pg_restore` from `from` into `to` in a thread, after
/// `queue_ms` in the queue.
pub fn start_copy(
    from: String,
    to: String,
    corrupt: Option<Corruption>,
    conflict: Option<Conflict>,
    queue_ms: u64,
) -> Arc<Copy> {
    let copy = Arc::new(Copy::default());
    let c = copy.clone();
    std::thread::spawn(move || {
        let end = queue(&c, queue_ms)
            .and_then(|()| prepare(&to, conflict))
            .map_or_else(|end| end, |()| run_copy(&from, &to, &c, conflict));
        let end = match (end, corrupt) {
            (CopyEnd::Succeeded { warnings, logs }, Some(how)) => match damage(&to, how) {
                Ok(()) => CopyEnd::Succeeded { warnings, logs },
                Err(l) => CopyEnd::Failed(l),
            },
            (end, _) => end,
        };
        if let Ok(mut at) = c.ended_at.lock() {
            *at = Some(std::time::Instant::now());
        }
        if let Ok(mut r) = c.result.lock() {
            *r = Some(end);
        }
    });
    copy
}

/// Wait in the queue, or end as cancelled.
fn queue(c: &Copy, queue_ms: u64) -> Result<(), CopyEnd> {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(queue_ms);
    while std::time::Instant::now() < until {
        if c.cancel.load(Ordering::SeqCst) {
            return Err(CopyEnd::Canceled);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// Put the conflict in the target before the restore.
fn prepare(to: &str, conflict: Option<Conflict>) -> Result<(), CopyEnd> {
    if conflict.is_none() {
        return Ok(());
    }
    postgres::Client::connect(to, postgres::NoTls)
        .and_then(|mut c| {
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS users (id bigint, email text);
                 CREATE OR REPLACE VIEW users_seen AS SELECT id FROM users;",
            )
        })
        .map_err(|e| CopyEnd::Failed(vec![crate::secrets::redact(&e.to_string())]))
}

/// Lines of a process's stderr, credentials removed.
fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(crate::secrets::redact)
        .collect()
}

/// The count in pg_restore's "errors ignored on restore: N".
/// FACT: PostgreSQL src/bin/pg_dump/pg_restore.c prints
/// `warning: errors ignored on restore: %d` and exits 1.
fn ignored_errors(log: &[String]) -> Option<u64> {
    log.iter().find_map(|l| {
        l.split("errors ignored on restore:")
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
    })
}

fn run_copy(from: &str, to: &str, c: &Copy, conflict: Option<Conflict>) -> CopyEnd {
    let fail = |m: String| CopyEnd::Failed(vec![crate::secrets::redact(&m)]);
    let mut dump = match Command::new("pg_dump")
        .args([
            "--format=custom",
            "--no-owner",
            "--no-acl",
            "--dbname",
            from,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot start pg_dump: {e}")),
    };
    let mut args = vec!["--clean", "--if-exists", "--no-owner", "--no-acl"];
    if conflict == Some(Conflict::Fatal) {
        args.push("--exit-on-error");
    }
    let mut restore = match Command::new("pg_restore")
        .args(&args)
        .args(["--dbname", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = dump.kill();
            let _ = dump.wait();
            return fail(format!("cannot start pg_restore: {e}"));
        }
    };
    c.started.store(true, Ordering::SeqCst);
    let (Some(mut out), Some(mut input), Some(mut dump_err), Some(mut restore_err)) = (
        dump.stdout.take(),
        restore.stdin.take(),
        dump.stderr.take(),
        restore.stderr.take(),
    ) else {
        let _ = (dump.kill(), restore.kill(), dump.wait(), restore.wait());
        return fail("cannot connect pg_dump to pg_restore".into());
    };
    std::thread::scope(|scope| {
        let processed = &c.processed;
        scope.spawn(move || {
            let mut buf = vec![0; 1 << 16];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if input.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        processed.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
            // Dropping `input` closes pg_restore's stdin.
        });
        let dump_log = scope.spawn(move || {
            let mut v = vec![];
            let _ = dump_err.read_to_end(&mut v);
            v
        });
        let restore_log = scope.spawn(move || {
            let mut v = vec![];
            let _ = restore_err.read_to_end(&mut v);
            v
        });
        // The copy is over only when both processes exited: a cancel kills
        // them, and is reported only once they are reaped.
        let mut canceled = false;
        let (dump_status, restore_status) = loop {
            if c.cancel.load(Ordering::SeqCst) && !canceled {
                canceled = true;
                let _ = dump.kill();
                let _ = restore.kill();
            }
            match (dump.try_wait(), restore.try_wait()) {
                (Ok(Some(d)), Ok(Some(r))) => break (Some(d), Some(r)),
                (Err(_), _) | (_, Err(_)) => {
                    let _ = (dump.kill(), restore.kill());
                    break (dump.wait().ok(), restore.wait().ok());
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        let dump_log = lines(&dump_log.join().unwrap_or_default());
        let restore_log = lines(&restore_log.join().unwrap_or_default());
        if canceled {
            return CopyEnd::Canceled;
        }
        let dump_ok = dump_status.is_some_and(|s| s.success());
        let restore_code = restore_status.and_then(|s| s.code());
        // GUESS: Heroku reports a restore that ignored errors (pg_restore
        // exit 1 with "errors ignored on restore: N") as succeeded with N
        // warnings (`heroku pg:backups` shows "Finished with N warnings"),
        // and any other non-zero exit as failed.
        match (dump_ok, restore_code) {
            (true, Some(0)) => CopyEnd::Succeeded {
                warnings: 0,
                logs: restore_log,
            },
            (true, Some(1)) => match ignored_errors(&restore_log) {
                Some(n) => CopyEnd::Succeeded {
                    warnings: n,
                    logs: restore_log,
                },
                None => CopyEnd::Failed(tail(dump_log, restore_log)),
            },
            _ => CopyEnd::Failed(tail(dump_log, restore_log)),
        }
    })
}

fn tail(mut dump_log: Vec<String>, restore_log: Vec<String>) -> Vec<String> {
    dump_log.extend(restore_log);
    let start = dump_log.len().saturating_sub(5);
    dump_log[start..].to_vec()
}

fn damage(url: &str, how: Corruption) -> Result<(), Vec<String>> {
    let sql = match how {
        Corruption::DropTable => "DROP TABLE IF EXISTS events",
        Corruption::DropRows => "DELETE FROM events WHERE id = (SELECT max(id) FROM events)",
        Corruption::AlterValue => {
            "UPDATE events SET payload = 'tampered' WHERE id = (SELECT min(id) FROM events)"
        }
    };
    postgres::Client::connect(url, postgres::NoTls)
        .and_then(|mut c| c.batch_execute(sql))
        .map_err(|e| vec![crate::secrets::redact(&e.to_string())])
}
