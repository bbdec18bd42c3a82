//! Releases and release phase in the sandbox (a child module of `world`,
//! kept apart so that `world.rs` does not grow further).
//!
//! What Heroku does, and where that is known from:
//!
//! - FACT (Dev Center "Releases"): deploying, changing config vars and
//!   adding or removing add-on resources each create a release, numbered
//!   `vNN` in increasing order; the app is restarted on it.
//! - FACT (heroku/cli `src/commands/addons/attach.ts`, `detach.ts`): right
//!   after an attachment is created or deleted, the CLI reads
//!   `GET /apps/{app}/releases` with `Range: version ..; max=1, order=desc`
//!   and prints that version as the release of the change: the release
//!   exists when the attachment request has answered.
//! - FACT (heroku/cli `src/commands/pg/promote.ts`; API-NOTES): replacing
//!   the DATABASE attachment makes two releases, one whose description
//!   contains "Detach DATABASE" and one with "Attach DATABASE"; each ends
//!   `succeeded` or `failed`; promote.ts decides that an app has release
//!   phase from a formation entry of type `release`.
//! - FACT (Dev Center "Release Phase"): the release command runs in a
//!   one-off dyno of type `release` whenever a new release is created
//!   (builds, config var changes, rollbacks, releases made through the
//!   Platform API, provisioning an add-on), except releases add-ons make
//!   for their own config vars; "app dynos do not boot for a new release
//!   until release phase finishes successfully"; if it fails, the release
//!   is not deployed and the app keeps running the current release; the
//!   command has a 1-hour timeout.
//! - FACT (schema `definitions.release`): `status` is `failed`, `pending`,
//!   `succeeded` or `expired`; `current`, `output_stream_url`, `version`.
//! - FACT (heroku/cli `src/commands/releases/retry.ts`): `releases:retry`
//!   posts `POST /apps/{app}/releases {slug, description: "Retry of vN:
//!   <description>"}`, which runs the release command again.
//! - GUESS: maintenance mode and formation changes create no release (the
//!   Dev Center lists of what creates a release do not name them).
//! - GUESS: the exact descriptions ("Attach X (@ref:addon)", "Set A, B
//!   config vars"), the `release.NNNN` dyno name, that release commands of
//!   releases made close together run at the same time rather than queued,
//!   that `current` marks the release the dynos run (the newest succeeded
//!   one), that dynos restart onto a release the moment it succeeds, and
//!   that the formation lists the `release` type at quantity 0.

use serde_json::{json, Value};

use super::{err, no_app, stamp, Answer, Dyno, World};
use crate::sim::scenario::ReleasePhaseSpec;

/// One release of an app.
#[derive(Debug, Clone)]
pub struct Release {
    pub id: String,
    pub app: String,
    pub version: u64,
    pub description: String,
    pub created_ms: u64,
    /// When its release command ends (its creation when none runs).
    pub ends_ms: u64,
    /// Its release command fails.
    pub fails: bool,
    /// Whether a release command runs for it.
    pub runs_command: bool,
    /// The add-on DATABASE pointed at in this release's config.
    pub database: Option<String>,
    /// Set once its outcome has been applied to the dynos.
    pub settled: bool,
}

impl Release {
    pub fn status(&self, now: u64) -> &'static str {
        if now < self.ends_ms {
            "pending"
        } else if self.fails {
            "failed"
        } else {
            "succeeded"
        }
    }
}

/// The release phase of one app and how many releases each failure rule
/// has matched so far.
#[derive(Debug, Clone)]
pub struct ReleasePhase {
    pub spec: ReleasePhaseSpec,
    pub seen: Vec<u32>,
    pub fired: Vec<bool>,
}

impl ReleasePhase {
    pub fn new(spec: ReleasePhaseSpec) -> ReleasePhase {
        let n = spec.fail.len();
        ReleasePhase {
            spec,
            seen: vec![0; n],
            fired: vec![false; n],
        }
    }
}

/// The release the app's history starts with (a deploy).
pub const FIRST_VERSION: u64 = 41;

impl World {
    /// The app's history before the sandbox starts: one deployed release.
    pub(super) fn first_release(&mut self, app: &str) {
        let id = self.uuid();
        let database = self.database_of(app);
        self.releases.push(Release {
            id,
            app: app.to_string(),
            version: FIRST_VERSION,
            description: "Deploy 3f9a1c2".into(),
            created_ms: 0,
            ends_ms: 0,
            fails: false,
            runs_command: false,
            database,
            settled: true,
        });
    }

    /// Record a release of `app` made by a change just applied; runs the
    /// release command if the app has one. Answers its version.
    pub(super) fn new_release(&mut self, app: &str, description: String) -> u64 {
        let now = self.now_ms();
        let version = self
            .releases
            .iter()
            .filter(|r| r.app == app)
            .map(|r| r.version)
            .max()
            .unwrap_or(FIRST_VERSION - 1)
            + 1;
        let id = self.uuid();
        let database = self.database_of(app);
        let mut fails = false;
        let mut command_ms = None;
        if let Some(phase) = self.release_phases.get_mut(app) {
            command_ms = Some(phase.spec.command_ms);
            for (i, rule) in phase.spec.fail.iter().enumerate() {
                let matches = rule
                    .description_starts_with
                    .as_deref()
                    .is_none_or(|p| description.starts_with(p));
                if !matches || phase.fired[i] {
                    continue;
                }
                phase.seen[i] += 1;
                if phase.seen[i] >= rule.nth.unwrap_or(1) {
                    phase.fired[i] = true;
                    fails = true;
                }
            }
        }
        if fails {
            self.count_fault();
        }
        let runs_command = command_ms.is_some();
        let ends_ms = now + command_ms.unwrap_or(0);
        if let Some(ms) = command_ms {
            // The release command's one-off dyno: it runs with the new
            // release's config and writes to its database like any dyno.
            let name = format!("release.{}", 1000 + (self.counter * 7919) % 9000);
            let dyno_id = self.uuid();
            if let Some(a) = self.apps.get_mut(app) {
                a.dynos.push(Dyno {
                    id: dyno_id,
                    name,
                    process_type: "release".into(),
                    size: "standard-1X".into(),
                    started_ms: now,
                    stop_ms: Some(now + ms),
                    settled_ms: now,
                    db_addon: database.clone(),
                    started_db: database.clone(),
                });
            }
        }
        self.releases.push(Release {
            id,
            app: app.to_string(),
            version,
            description,
            created_ms: now,
            ends_ms,
            fails,
            runs_command,
            database,
            settled: false,
        });
        // A release without a command is deployed at once.
        self.settle_releases(now);
        version
    }

    /// The database the app's dynos run with: that of its newest
    /// succeeded release.
    pub(super) fn running_database(&self, app: &str) -> Option<String> {
        let now = self.now_ms();
        self.releases
            .iter()
            .filter(|r| r.app == app && r.status(now) == "succeeded")
            .max_by_key(|r| r.version)
            .map_or_else(|| self.database_of(app), |r| r.database.clone())
    }

    /// The version of the app's newest succeeded release.
    fn current_version(&self, app: &str, now: u64) -> Option<u64> {
        self.releases
            .iter()
            .filter(|r| r.app == app && r.status(now) == "succeeded")
            .map(|r| r.version)
            .max()
    }

    /// The end times of release commands not yet applied, up to `now`,
    /// in order (so that rows are written to the right database).
    pub(super) fn release_ends(&self, now: u64) -> Vec<u64> {
        let mut ends: Vec<u64> = self
            .releases
            .iter()
            .filter(|r| !r.settled && r.ends_ms <= now)
            .map(|r| r.ends_ms)
            .collect();
        ends.sort_unstable();
        ends.dedup();
        ends
    }

    /// Apply the outcome of every release whose command ended by `t`: a
    /// release that succeeded and is newer than the one the dynos run
    /// restarts them on its config.
    pub(super) fn settle_releases(&mut self, t: u64) {
        let mut done: Vec<usize> = (0..self.releases.len())
            .filter(|&i| !self.releases[i].settled && self.releases[i].ends_ms <= t)
            .collect();
        done.sort_by_key(|&i| self.releases[i].version);
        for i in done {
            let r = self.releases[i].clone();
            let newer = self
                .releases
                .iter()
                .filter(|x| x.app == r.app && x.settled && !x.fails && x.version > r.version)
                .count()
                == 0;
            self.releases[i].settled = true;
            if r.fails || !newer {
                continue;
            }
            if let Some(a) = self.apps.get_mut(&r.app) {
                for d in a
                    .dynos
                    .iter_mut()
                    .filter(|d| d.process_type != "release" && d.stop_ms.is_none())
                {
                    d.db_addon = r.database.clone();
                }
            }
        }
    }

    fn release_json(&self, r: &Release) -> Value {
        let now = self.now_ms();
        let app_id = self.apps.get(&r.app).map(|a| a.id.clone());
        let plans: Vec<String> = self
            .addons
            .iter()
            .filter(|a| a.app == r.app && !a.deleted)
            .map(|a| a.plan.clone())
            .collect();
        json!({
            "id": r.id, "version": r.version, "description": r.description,
            "status": r.status(now),
            "current": self.current_version(&r.app, now) == Some(r.version),
            "created_at": stamp(r.created_ms), "updated_at": stamp(r.ends_ms.min(now)),
            "app": {"id": app_id, "name": r.app},
            "slug": {"id": slug_id(&r.app)},
            "user": {"id": "00000000-0000-4000-8000-000000000001", "email": "owner@example.com"},
            "addon_plan_names": plans, "artifacts": [],
            "output_stream_url": r.runs_command
                .then(|| format!("https://release-output.heroku.com/streams/{}", r.id)),
            "eligible_for_rollback": true,
        })
    }

    /// `GET /apps/{app}/releases`: by `id` (default) or `version`, in
    /// either order, paginated like every list.
    pub(super) fn list_releases(&self, app: &str, range: Option<&str>) -> Answer {
        if !self.apps.contains_key(app) {
            return no_app(app);
        }
        let mut mine: Vec<&Release> = self.releases.iter().filter(|r| r.app == app).collect();
        mine.sort_by_key(|r| r.version);
        let Some(range) = range.map(str::trim).filter(|r| r.starts_with("version")) else {
            let items = mine.iter().map(|r| self.release_json(r)).collect();
            return self.list(items, range);
        };
        // `version ..; max=5, order=desc` or `version ]12..; max=5, order=desc`.
        let (head, tail) = range.split_once(';').unwrap_or((range, ""));
        let after = head
            .trim_start_matches("version")
            .trim()
            .strip_prefix(']')
            .and_then(|r| r.split("..").next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut max = self.page_size;
        let mut desc = false;
        for part in tail.split([',', ';']) {
            let part = part.trim();
            if let Some(m) = part.strip_prefix("max=") {
                match m.trim().parse::<usize>() {
                    Ok(n) => max = n.clamp(1, 1000).min(self.page_size),
                    Err(_) => return err(400, "bad_request", "Invalid Range header."),
                }
            } else if let Some(o) = part.strip_prefix("order=") {
                desc = o.trim() == "desc";
            }
        }
        if desc {
            mine.reverse();
        }
        let start = match after {
            Some(v) => mine
                .iter()
                .position(|r| r.version == v)
                .map_or(mine.len(), |p| p + 1),
            None => 0,
        };
        let end = (start + max).min(mine.len());
        let page: Vec<Value> = mine[start..end]
            .iter()
            .map(|r| self.release_json(r))
            .collect();
        if end < mine.len() {
            let mut a = Answer::status(206, json!(page));
            a.headers.push((
                "Next-Range".into(),
                format!(
                    "version ]{}..; max={max}, order={}",
                    mine[end - 1].version,
                    if desc { "desc" } else { "asc" }
                ),
            ));
            a
        } else {
            Answer::ok(json!(page))
        }
    }

    /// `GET /apps/{app}/releases/{id or version}`.
    pub(super) fn get_release(&self, app: &str, key: &str) -> Answer {
        if !self.apps.contains_key(app) {
            return no_app(app);
        }
        let version = key.parse::<u64>().ok();
        match self
            .releases
            .iter()
            .find(|r| r.app == app && (r.id == key || Some(r.version) == version))
        {
            Some(r) => Answer::ok(self.release_json(r)),
            None => err(404, "not_found", "Couldn't find that release."),
        }
    }

    /// `POST /apps/{app}/releases {slug, description}` (what
    /// `heroku releases:retry` sends).
    pub(super) fn post_release(&mut self, app: &str, b: &Value) -> Answer {
        if !self.apps.contains_key(app) {
            return no_app(app);
        }
        if b.get("slug").and_then(Value::as_str).is_none() {
            return err(422, "invalid_params", "slug is required.");
        }
        let description = b
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("Release via the Platform API")
            .to_string();
        let version = self.new_release(app, description);
        match self
            .releases
            .iter()
            .find(|r| r.app == app && r.version == version)
        {
            Some(r) => Answer::status(201, self.release_json(r)),
            None => err(500, "internal_server_error", "release vanished"),
        }
    }

    /// What `heroku releases:retry` does: a copy of the newest release
    /// that runs the release command again. Answers its version.
    pub fn retry_release(&mut self, app: &str) -> Option<u64> {
        self.advance();
        let newest = self
            .releases
            .iter()
            .filter(|r| r.app == app)
            .max_by_key(|r| r.version)?
            .clone();
        Some(self.new_release(
            app,
            format!("Retry of v{}: {}", newest.version, newest.description),
        ))
    }

    /// The releases of an app for the admin view.
    pub(super) fn releases_snapshot(&self, app: &str) -> Vec<Value> {
        let now = self.now_ms();
        let db_name = |id: &Option<String>| {
            id.as_ref()
                .and_then(|id| self.addons.iter().find(|a| &a.id == id))
                .map(|a| a.name.clone())
        };
        let mut list: Vec<&Release> = self.releases.iter().filter(|r| r.app == app).collect();
        list.sort_by_key(|r| r.version);
        list.iter()
            .map(|r| {
                json!({"version": r.version, "description": r.description,
                       "status": r.status(now), "database": db_name(&r.database),
                       "release_command": r.runs_command})
            })
            .collect()
    }
}

/// The description of an attachment's release.
pub(super) fn attach_description(verb: &str, name: &str, addon: &str) -> String {
    format!("{verb} {name} (@ref:{addon})")
}

fn slug_id(app: &str) -> String {
    let mut h: u64 = 0x9e3779b97f4a7c15;
    for b in app.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!(
        "{:08x}-5106-4000-8000-{:012x}",
        (h >> 32) as u32,
        h & 0xffff_ffff_ffff
    )
}
