//! The sandbox's state and its answers to the Platform API and Data API
//! requests a migration makes. Time-dependent state (provisioning, dynos
//! stopping, transfers, rows written by dynos) is advanced lazily from the
//! clock at each request.
//!
//! Responses are built as JSON by hand, independently of the client's
//! types, so that the sandbox is a check on the client rather than a mirror.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::sim::random::random_u64;
use crate::sim::scenario::{Fault, FaultAction, Scenario, Timing};

mod addons;
mod faults;
mod followers;
mod formation;
mod maintenances;
#[cfg(test)]
mod methods_tests;
mod releases;
mod restore;
mod router;
mod snapshot;
mod transfers;

pub use crate::sim::scenario::is_essential_plan;
pub use followers::Replication;
pub use maintenances::Maintenance;
pub use releases::Release;
use releases::{attach_description, ReleasePhase};

#[derive(Debug, Clone)]
pub struct Addon {
    pub id: String,
    pub name: String,
    pub app: String,
    pub plan: String,
    pub created_ms: u64,
    /// When the Platform API's `state` turns `provisioned` (or, for an
    /// add-on that fails, `deprovisioning`).
    pub ready_ms: u64,
    /// When the Data API's wait_status answers `waiting?: false`.
    pub available_ms: u64,
    /// Until when the Data API does not know the add-on (wait_status 404).
    pub unknown_until_ms: u64,
    pub fails: bool,
    pub deleted: bool,
    pub url: String,
    pub rows: f64,
    pub follower_of: Option<String>,
    /// Credentials besides `default`.
    pub extra_credentials: Vec<String>,
    /// Following, lag, read-only (see `followers`).
    pub repl: Replication,
}

impl Addon {
    fn service(&self) -> &str {
        self.plan.split(':').next().unwrap_or("")
    }
    fn state(&self, now: u64) -> &'static str {
        // GUESS: a Postgres add-on that fails to provision goes through
        // `deprovisioning` (for as long as it took to fail) to
        // `deprovisioned`. FACT: the state `deprovisioning` exists beyond
        // the schema's enum (heroku/cli src/lib/addons/addons-wait.ts
        // loops while an add-on is `deprovisioning`), and a failed
        // provisioning ends `deprovisioned` (the same file:
        // waitForAddonProvisioning throws on it).
        let failed_for = self.ready_ms.saturating_sub(self.created_ms);
        if self.deleted || (self.fails && now >= self.ready_ms + failed_for) {
            "deprovisioned"
        } else if self.fails && now >= self.ready_ms {
            "deprovisioning"
        } else if now >= self.ready_ms {
            "provisioned"
        } else {
            "provisioning"
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub app: String,
    pub addon_id: String,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Process {
    pub process_type: String,
    pub quantity: u32,
    pub size: String,
    pub id: String,
    /// When this process type was last updated (`updated_at`).
    pub updated_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Dyno {
    pub id: String,
    pub name: String,
    pub process_type: String,
    pub size: String,
    pub started_ms: u64,
    pub stop_ms: Option<u64>,
    /// Rows are written up to here.
    pub settled_ms: u64,
    /// The add-on the DATABASE_URL of the release it runs points at.
    pub db_addon: Option<String>,
    /// The same, when it booted.
    pub started_db: Option<String>,
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub name: String,
    pub maintenance: bool,
    pub formation: Vec<Process>,
    pub dynos: Vec<Dyno>,
    pub one_offs: Vec<String>,
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub uuid: String,
    pub num: u64,
    pub app: String,
    pub from_name: String,
    pub to_name: String,
    pub from_addon: String,
    pub to_addon: String,
    pub created_ms: u64,
    pub source_rows: f64,
    pub source_bytes: u64,
    pub fails: bool,
    pub stalls: bool,
    /// Errors pg_restore ignores (fake mode; a real copy counts its own).
    pub warns: Option<u32>,
    /// Copied from the timing when the transfer was created.
    pub queue_ms: u64,
    pub dump_ratio: f64,
    pub tail_ratio: f64,
    pub canceled_ms: Option<u64>,
    /// Set when the result was applied to the target.
    pub finished: bool,
    /// The real copy, with a PostgreSQL backend.
    pub pg_copy: Option<Arc<crate::sim::pg::Copy>>,
    /// When a real copy was seen to have ended (ms), and its last log
    /// lines if it failed.
    pub ended_ms: Option<u64>,
    pub failure_logs: Vec<String>,
    /// Warnings a real copy reported (pg_restore's ignored errors).
    pub real_warnings: u64,
}

/// One logged request.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
    pub status: u16,
    pub at_ms: u64,
}

struct FaultState {
    rule: Fault,
    seen: u32,
    fired: u32,
}

/// The whole simulated Heroku.
pub struct World {
    start: Instant,
    pub token: String,
    pub latency_ms: u64,
    page_size: usize,
    timing: Timing,
    writes_per_second: f64,
    plans: Vec<String>,
    pub apps: BTreeMap<String, App>,
    pub addons: Vec<Addon>,
    pub attachments: Vec<Attachment>,
    pub transfers: Vec<Transfer>,
    /// Every app's releases (see `releases`).
    pub releases: Vec<Release>,
    /// Plan changes' maintenances (see `maintenances`).
    pub maintenances: Vec<Maintenance>,
    /// Rows each app's dynos could not write (read-only databases).
    refused_by_app: BTreeMap<String, f64>,
    /// The apps that have a release command.
    release_phases: BTreeMap<String, ReleasePhase>,
    faults: Vec<FaultState>,
    /// How many requests a fault has hit, over the sandbox's life.
    faults_fired: u32,
    pub log: Vec<LoggedRequest>,
    counter: u64,
    rate_remaining: u64,
    pg: Option<Arc<crate::sim::pg::Backend>>,
}

/// What the router decided, before the wire.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
    /// Close without answering (after acting or not, see the fault).
    pub drop: bool,
    /// Delay before answering.
    pub hang_ms: u64,
    /// Send this raw text instead of `body`.
    pub raw: Option<String>,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body,
            headers: vec![],
            drop: false,
            hang_ms: 0,
            raw: None,
        }
    }
    fn status(status: u16, body: Value) -> Answer {
        Answer {
            status,
            ..Answer::ok(body)
        }
    }
}

fn err(status: u16, id: &str, message: impl Into<String>) -> Answer {
    Answer::status(status, json!({"id": id, "message": message.into()}))
}

const COLORS: [&str; 12] = [
    "AMBER", "BLUE", "BRONZE", "CHARCOAL", "COBALT", "CRIMSON", "GOLD", "GRAY", "GREEN", "IVORY",
    "JADE", "MAROON",
];

impl World {
    /// A world whose Postgres add-ons are simulated.
    pub fn new(s: &Scenario) -> World {
        match World::build(s, None) {
            Ok(w) => w,
            Err(e) => unreachable!("a simulated world cannot fail to build: {e}"),
        }
    }

    /// A world whose Postgres add-ons are real databases on `pg` (when
    /// given), seeded with each add-on's `rows`.
    pub fn build(s: &Scenario, pg: Option<Arc<crate::sim::pg::Backend>>) -> Result<World, String> {
        let mut w = World {
            start: Instant::now(),
            token: s.token.clone(),
            latency_ms: s.latency_ms,
            page_size: s.page_size,
            timing: s.timing.clone(),
            writes_per_second: s.writes_per_second_per_dyno,
            plans: s.plans.clone(),
            apps: BTreeMap::new(),
            addons: vec![],
            attachments: vec![],
            transfers: vec![],
            releases: vec![],
            maintenances: vec![],
            refused_by_app: BTreeMap::new(),
            release_phases: BTreeMap::new(),
            faults: s
                .faults
                .iter()
                .map(|f| FaultState {
                    rule: f.clone(),
                    seen: 0,
                    fired: 0,
                })
                .collect(),
            faults_fired: 0,
            log: vec![],
            counter: 0,
            rate_remaining: 4500,
            pg,
        };
        for spec in &s.apps {
            let app_id = w.uuid();
            for a in &spec.addons {
                let id = w.uuid();
                let url = if a.plan.starts_with("heroku-postgresql:") {
                    w.new_url(a.rows)?
                } else {
                    w.fake_url()
                };
                w.addons.push(Addon {
                    id: id.clone(),
                    name: a.name.clone(),
                    app: spec.name.clone(),
                    plan: a.plan.clone(),
                    created_ms: 0,
                    ready_ms: 0,
                    available_ms: 0,
                    unknown_until_ms: 0,
                    fails: false,
                    deleted: false,
                    url,
                    rows: a.rows as f64,
                    follower_of: a.follower_of.clone(),
                    extra_credentials: a.credentials.clone(),
                    repl: Replication {
                        blocked: a.fork_follow.as_deref() == Some("temporarily-unavailable"),
                        ..Replication::default()
                    },
                });
                for name in &a.attachments {
                    let att = w.uuid();
                    w.attachments.push(Attachment {
                        id: att,
                        name: name.clone(),
                        app: spec.name.clone(),
                        addon_id: id.clone(),
                        namespace: None,
                    });
                }
                for na in &a.namespace_attachments {
                    let att = w.uuid();
                    w.attachments.push(Attachment {
                        id: att,
                        name: na.name.clone(),
                        app: spec.name.clone(),
                        addon_id: id.clone(),
                        namespace: Some(na.namespace.clone()),
                    });
                }
            }
            let mut app = App {
                id: app_id,
                name: spec.name.clone(),
                maintenance: spec.maintenance,
                formation: vec![],
                dynos: vec![],
                one_offs: spec.one_off_dynos.clone(),
                config: BTreeMap::new(),
            };
            for p in &spec.formation {
                let id = w.uuid();
                app.formation.push(Process {
                    process_type: p.process_type.clone(),
                    quantity: 0,
                    size: p.size.clone(),
                    id,
                    updated_ms: 0,
                });
            }
            if let Some(phase) = &spec.release_phase {
                // GUESS: a Procfile `release:` line shows in the formation
                // as a `release` type at quantity 0 (FACT: promote.ts and
                // releases/retry.ts detect release phase by it).
                if !app.formation.iter().any(|p| p.process_type == "release") {
                    let id = w.uuid();
                    app.formation.push(Process {
                        process_type: "release".into(),
                        quantity: 0,
                        size: "standard-1X".into(),
                        id,
                        updated_ms: 0,
                    });
                }
                w.release_phases
                    .insert(spec.name.clone(), ReleasePhase::new(phase.clone()));
            }
            w.apps.insert(spec.name.clone(), app);
            // Resolve config placeholders against the attachments.
            for (k, v) in &spec.config_vars {
                let value = w.resolve_placeholder(&spec.name, v);
                if let Some(app) = w.apps.get_mut(&spec.name) {
                    app.config.insert(k.clone(), value);
                }
            }
            w.first_release(&spec.name);
            // Start the dynos of the formation (already up).
            for p in &spec.formation {
                w.scale(&spec.name, &p.process_type, p.quantity, 0, true);
            }
        }
        // Scenario followers follow from the start.
        for i in 0..w.addons.len() {
            let leader = w.addons[i]
                .follower_of
                .as_ref()
                .and_then(|n| w.addons.iter().find(|l| &l.name == n))
                .map(|l| l.id.clone());
            if let Some(leader) = leader {
                w.addons[i].repl.follow = Some(followers::Follow {
                    leader,
                    since_ms: 0,
                    unfollow: None,
                    copy: None,
                });
            }
            w.note_rows(i, 0);
        }
        Ok(w)
    }

    fn resolve_placeholder(&self, app: &str, v: &str) -> String {
        let inner = v.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"));
        let Some(inner) = inner else {
            return v.to_string();
        };
        let (kind, name) = match inner.split_once(':') {
            Some((k, n)) => (k, n.to_string()),
            None if inner.ends_with("_URL") => {
                ("ATTACHMENT", inner.trim_end_matches("_URL").to_string())
            }
            None => return v.to_string(),
        };
        let url = self
            .attachments
            .iter()
            .find(|a| a.app == app && a.name == name && a.namespace.is_none())
            .and_then(|a| self.addon_by_id(&a.addon_id))
            .map(|a| a.url.clone())
            .unwrap_or_default();
        if kind == "SAME_HOST" {
            match url::Url::parse(&url) {
                Ok(mut u) => {
                    let _ = u.set_username("other_user");
                    let _ = u.set_password(Some("other-credential-secret"));
                    u.to_string()
                }
                Err(_) => url,
            }
        } else {
            url
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Move the clock on by `ms` at once (tests: no sleeping, no timing).
    #[cfg(test)]
    fn skip(&mut self, ms: u64) {
        if let Some(s) = self.start.checked_sub(std::time::Duration::from_millis(ms)) {
            self.start = s;
        }
    }

    fn uuid(&mut self) -> String {
        self.counter += 1;
        let r = random_u64() ^ self.counter;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            (r & 0xfff) as u16,
            (self.counter & 0xfff) as u16,
            (random_u64() & 0xffff_ffff_ffff)
        )
    }

    /// A new database URL: a real database with a backend, else made up.
    fn new_url(&mut self, rows: u64) -> Result<String, String> {
        match self.pg.clone() {
            Some(pg) => {
                self.counter += 1;
                pg.create_database(self.counter, rows)
            }
            None => Ok(self.fake_url()),
        }
    }

    pub fn has_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Drop the databases a backend created.
    pub fn cleanup(&self) {
        if let Some(pg) = &self.pg {
            pg.cleanup();
        }
    }

    fn fake_url(&mut self) -> String {
        let user = format!("u{:012x}", random_u64() & 0xffff_ffff_ffff);
        let pass = format!("p{:016x}{:016x}", random_u64(), random_u64());
        let host = format!(
            "ec2-{}-{}.compute-1.amazonaws.com",
            random_u64() % 250,
            self.counter
        );
        let db = format!("d{:012x}", random_u64() & 0xffff_ffff_ffff);
        format!("postgres://{user}:{pass}@{host}:5432/{db}")
    }

    pub fn addon_by_id(&self, id: &str) -> Option<&Addon> {
        self.addons.iter().find(|a| a.id == id && !a.deleted)
    }

    fn addon_ref(&self, key: &str) -> Option<usize> {
        self.addons
            .iter()
            .position(|a| !a.deleted && (a.id == key || a.name == key))
    }

    /// The add-on an app's DATABASE attachment points at.
    pub fn database_of(&self, app: &str) -> Option<String> {
        self.attachments
            .iter()
            .find(|a| a.app == app && a.name == "DATABASE" && a.namespace.is_none())
            .map(|a| a.addon_id.clone())
    }

    /// Config vars as Heroku shows them: plain vars plus attachment vars.
    pub fn config_of(&self, app: &str) -> BTreeMap<String, String> {
        let mut vars = self
            .apps
            .get(app)
            .map(|a| a.config.clone())
            .unwrap_or_default();
        for att in self.attachments.iter().filter(|a| a.app == app) {
            if let Some(addon) = self.addon_by_id(&att.addon_id) {
                vars.insert(format!("{}_URL", att.name), addon.url.clone());
            }
        }
        vars
    }

    /// Advance time-dependent state to now.
    pub fn advance(&mut self) {
        let now = self.now_ms();
        // Rows written up to each release that ended, then the release
        // applied (dynos restart on its config), then rows up to now. The
        // same at each point where a write rate or a database's
        // writability changes (dynos stopping, unfollows, maintenances).
        let mut points = self.release_ends(now);
        points.extend(self.event_points(now));
        points.sort_unstable();
        points.dedup();
        for t in points {
            self.write_rows(t);
            self.settle_releases(t);
            self.apply_events(t);
        }
        self.write_rows(now);
        for app in self.apps.values_mut() {
            app.dynos.retain(|d| d.stop_ms.is_none_or(|s| s > now));
        }
        // Transfers that finished.
        let duration = self.timing.transfer_ms;
        let origin = self.start;
        let ended_ms = |c: &crate::sim::pg::Copy| {
            c.ended_at.lock().ok().and_then(|at| *at).map_or(now, |at| {
                at.saturating_duration_since(origin).as_millis() as u64
            })
        };
        let mut results = vec![];
        for t in &mut self.transfers {
            if t.finished || t.canceled_ms.is_some() || t.stalls {
                continue;
            }
            match &t.pg_copy {
                // A real copy ends when pg_dump and pg_restore have exited,
                // and its result is theirs, not the clock's.
                Some(c) => match c.end() {
                    Some(crate::sim::pg::CopyEnd::Succeeded { warnings, .. }) => {
                        t.finished = true;
                        t.fails = false;
                        t.real_warnings = warnings;
                        t.ended_ms = Some(ended_ms(c));
                        results.push((t.to_addon.clone(), t.source_rows));
                    }
                    Some(crate::sim::pg::CopyEnd::Failed(logs)) => {
                        t.finished = true;
                        t.fails = true;
                        t.failure_logs = logs;
                        t.ended_ms = Some(ended_ms(c));
                    }
                    Some(crate::sim::pg::CopyEnd::Canceled) | None => {}
                },
                None => {
                    if now >= t.created_ms + t.queue_ms + duration {
                        t.finished = true;
                        if !t.fails {
                            results.push((t.to_addon.clone(), t.source_rows));
                        }
                    }
                }
            }
        }
        for (to, rows) in results {
            if let Some(i) = self.addons.iter().position(|a| a.id == to) {
                self.note_rows(i, now);
                let a = &mut self.addons[i];
                // GUESS: a restore counts one commit per row it loads.
                a.repl.commits += rows;
                a.rows = rows;
                self.note_rows(i, now);
            }
        }
        self.sync_followers(now);
    }

    /// Rows written by running dynos into their databases, up to `t`.
    fn write_rows(&mut self, t: u64) {
        let rate = self.writes_per_second;
        let mut writes: Vec<(String, String, u64, u64, f64)> = vec![];
        for app in self.apps.values_mut() {
            for d in &mut app.dynos {
                let until = d.stop_ms.map_or(t, |s| s.min(t));
                if until > d.settled_ms {
                    if let Some(db) = &d.db_addon {
                        let n = rate * (until - d.settled_ms) as f64 / 1000.0;
                        writes.push((app.name.clone(), db.clone(), d.settled_ms, until, n));
                    }
                    d.settled_ms = until;
                }
            }
        }
        for (app, db, from, until, n) in writes {
            if n > 0.0 && self.apply_write(&db, from, until, n) {
                *self.refused_by_app.entry(app).or_default() += n;
            }
        }
    }

    /// Start a one-off dyno (admin).
    pub fn start_one_off(&mut self, app: &str, name: &str) {
        if let Some(a) = self.apps.get_mut(app) {
            a.one_offs.push(name.to_string());
        }
    }

    /// Stop a one-off dyno (admin).
    pub fn stop_one_off(&mut self, app: &str, name: &str) -> bool {
        match self.apps.get_mut(app) {
            Some(a) => {
                let before = a.one_offs.len();
                a.one_offs.retain(|n| n != name);
                before != a.one_offs.len()
            }
            None => false,
        }
    }
}

fn no_app(app: &str) -> Answer {
    err(404, "not_found", format!("Couldn't find that app: {app}."))
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

fn plan_id(name: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        (h >> 32) as u32,
        h & 0xffff_ffff_ffff
    )
}

pub(super) fn stamp(ms: u64) -> String {
    // Timestamps relative to a fixed epoch keep the sandbox deterministic
    // enough for people and tests.
    let base = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    humantime::format_rfc3339_seconds(base + std::time::Duration::from_millis(ms)).to_string()
}
