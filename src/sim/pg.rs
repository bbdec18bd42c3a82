//! The sandbox's optional PostgreSQL backend: each simulated Postgres
//! add-on is a real database on a given server, its `_URL` a real
//! connection string, and a transfer really copies the data with
//! `pg_dump | pg_restore`, counting the bytes that pass.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::verify::db_error;

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
}

impl Backend {
    /// Check the server is reachable with the given URL (a superuser or a
    /// role that may create databases).
    pub fn connect(admin_url: &str) -> Result<Backend, String> {
        let admin = url::Url::parse(admin_url)
            .map_err(|e| format!("the PostgreSQL URL is not valid: {e}"))?;
        let b = Backend {
            admin,
            prefix: format!("pgm_sandbox_{:08x}_", super::world::random_u32()),
            created: Mutex::new(vec![]),
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

    /// Drop every database this backend created.
    pub fn cleanup(&self) {
        let names = self.created.lock().map(|c| c.clone()).unwrap_or_default();
        if let Ok(mut admin) = self.client("postgres") {
            for n in names {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"));
            }
        }
    }
}

/// A running copy.
#[derive(Debug, Default)]
pub struct Copy {
    pub processed: AtomicU64,
    /// `Some(Ok)` when done, `Some(Err(last log lines))` when failed.
    pub result: Mutex<Option<Result<(), Vec<String>>>>,
}

/// Start `pg_dump | pg_restore` from `from` into `to` in a thread.
pub fn start_copy(from: String, to: String, corrupt: Option<Corruption>) -> Arc<Copy> {
    let copy = Arc::new(Copy::default());
    let c = copy.clone();
    std::thread::spawn(move || {
        let result = run_copy(&from, &to, &c.processed).and_then(|()| match corrupt {
            Some(how) => damage(&to, how),
            None => Ok(()),
        });
        if let Ok(mut r) = c.result.lock() {
            *r = Some(result);
        }
    });
    copy
}

fn run_copy(from: &str, to: &str, processed: &AtomicU64) -> Result<(), Vec<String>> {
    let fail = |m: String| vec![crate::secrets::redact(&m)];
    let mut dump = Command::new("pg_dump")
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
        .map_err(|e| fail(format!("cannot start pg_dump: {e}")))?;
    let mut restore = Command::new("pg_restore")
        .args([
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--dbname",
            to,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start pg_restore: {e}")))?;
    let (Some(mut out), Some(mut input)) = (dump.stdout.take(), restore.stdin.take()) else {
        return Err(fail("cannot connect pg_dump to pg_restore".into()));
    };
    let mut buf = vec![0; 1 << 16];
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if input.write_all(&buf[..n]).is_err() {
                    break;
                }
                processed.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(_) => break,
        }
    }
    drop(input);
    let logs = |child: std::process::Child| -> (bool, Vec<String>) {
        match child.wait_with_output() {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .map(crate::secrets::redact)
                    .collect(),
            ),
            Err(e) => (false, vec![e.to_string()]),
        }
    };
    let (dump_ok, mut dump_log) = logs(dump);
    let (restore_ok, restore_log) = logs(restore);
    if dump_ok && restore_ok {
        Ok(())
    } else {
        dump_log.extend(restore_log);
        let start = dump_log.len().saturating_sub(5);
        Err(dump_log[start..].to_vec())
    }
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
