//! Followers (read-only replicas): creating one with `config.follow`, its
//! replay of the leader with a lag, `Behind By` and `Fork/Follow`, the
//! asynchronous unfollow, and the Data API's view of a database.
//!
//! The model: every Postgres add-on keeps samples `(t, rows, commits)` of
//! its history (a row a dyno writes is a commit). A follower holds its
//! leader's data as of `now - replica_delay_ms`, interpolated between the
//! samples (rows grow linearly between two samples: the sandbox takes a
//! sample at every point where a write rate changes). An unfollow
//! requested at `U` cuts the stream at `U`: the follower replays up to the
//! leader's state at `U` and no further, then turns writable.

use super::*;

/// The replication state of one add-on.
#[derive(Debug, Clone, Default)]
pub struct Replication {
    /// What it follows, while it does.
    pub follow: Option<Follow>,
    /// Commits made on it so far (GUESS: one per row written).
    pub commits: f64,
    /// Its history, for its followers.
    pub samples: Vec<Sample>,
    /// Rows dynos tried to write while it was read-only.
    pub refused_writes: f64,
    /// `Fork/Follow` is `Temporarily Unavailable` until then.
    pub cooldown_until_ms: u64,
    /// The scenario says `fork_follow: temporarily-unavailable`.
    pub blocked: bool,
    /// An Essential plan change keeps wait_status waiting until then.
    pub changing_until_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Follow {
    /// The leader's add-on id.
    pub leader: String,
    /// When it started following (its base backup).
    pub since_ms: u64,
    pub unfollow: Option<Unfollow>,
    /// With a PostgreSQL backend: the leader's data copied into the
    /// follower's real database as of the unfollow request.
    pub copy: Option<std::sync::Arc<crate::sim::pg::Copy>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Unfollow {
    pub requested_ms: u64,
    /// When it has replayed its backlog and is writable.
    pub writable_ms: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t: u64,
    pub rows: f64,
    pub commits: f64,
}

/// The plan's level: its trailing number ("standard-2" is 2).
pub(super) fn plan_level(plan: &str) -> Option<u32> {
    plan.rsplit('-').next().and_then(|n| n.parse().ok())
}

/// The plan's family: "standard" for "heroku-postgresql:standard-2".
pub(super) fn plan_family(plan: &str) -> &str {
    let tier = plan.split_once(':').map_or(plan, |(_, t)| t);
    tier.rsplit_once('-').map_or(tier, |(f, _)| f)
}

/// The lowest follower level a leader of `level` allows.
/// FACT: help.heroku.com/JRN5S7V6, leader → minimum follower level:
/// 0→0, 2→0, 3→2, 4→3, 5→3, 6→3, 7→3, 8→4. GUESS: level 1 (no such
/// plan today) as 0, and above 8 "up to 4 plans below" (the same article).
fn min_follower_level(leader: u32) -> u32 {
    match leader {
        0..=2 => 0,
        3 => 2,
        4..=7 => 3,
        8 => 4,
        n => n - 4,
    }
}

impl World {
    /// The add-on `key` names in `app`'s context: an attachment name
    /// (`DATABASE`), its config var (`DATABASE_URL`), or the name or id of
    /// an add-on the app owns or has attached.
    /// FACT: the CLI passes `config.follow` untouched and Heroku resolves
    /// it in the app's context (heroku/cli src/lib/addons/create-addon.ts;
    /// Dev Center uses `DATABASE_URL` and `HEROKU_POSTGRESQL_<COLOR>_URL`).
    /// GUESS: that add-on names and ids are accepted (unverified).
    fn resolve_in_app(&self, app: &str, key: &str) -> Option<usize> {
        let by_attachment = self
            .attachments
            .iter()
            .find(|t| {
                t.app == app
                    && t.namespace.is_none()
                    && (t.name == key || format!("{}_URL", t.name) == key)
            })
            .map(|t| t.addon_id.clone());
        if let Some(id) = by_attachment {
            return self.addons.iter().position(|a| a.id == id && !a.deleted);
        }
        let i = self.addon_ref(key)?;
        let a = &self.addons[i];
        let attached = self
            .attachments
            .iter()
            .any(|t| t.app == app && t.addon_id == a.id);
        (a.app == app || attached).then_some(i)
    }

    /// Check a `config.follow` on a new add-on of `plan`: the leader's
    /// add-on id, or the 422 Heroku answers.
    pub(super) fn check_follow(&self, app: &str, key: &str, plan: &str) -> Result<String, Answer> {
        let refuse = |m: String| Err(err(422, "unprocessable_entity", m));
        let Some(i) = self.resolve_in_app(app, key) else {
            // GUESS: the wording; a name that matches nothing is refused.
            return refuse(format!("Could not find a database to follow: {key}."));
        };
        let leader = &self.addons[i];
        if leader.service() != "heroku-postgresql" {
            return refuse(format!(
                "{} is not a Heroku Postgres database.",
                leader.name
            ));
        }
        // FACT: Essential can neither follow nor be followed (Dev Center
        // follower article). GUESS: the server's words are those of the
        // CLI's former client-side check (heroku/cli commit ae252a2b).
        if is_essential_plan(&leader.plan) || is_essential_plan(plan) {
            return refuse("You can't perform this operation on Essential-tier databases.".into());
        }
        // FACT: no chains (Dev Center follower article). GUESS: the words.
        if leader.repl.follow.is_some() {
            return refuse(format!(
                "{} is a follower and cannot be followed: followers cannot be chained.",
                leader.name
            ));
        }
        // FACT: not for a while after a fork or an unfollow (Dev Center
        // follower article). GUESS: the words.
        if self.fork_follow(leader) == "Temporarily Unavailable" {
            return refuse(format!(
                "{} cannot be followed right now (Fork/Follow: Temporarily Unavailable). \
                 Please try again later.",
                leader.name
            ));
        }
        if let (Some(l), Some(f)) = (plan_level(&leader.plan), plan_level(plan)) {
            let min = min_follower_level(l);
            if f < min {
                // FACT: the words (tetsuya.dev 2021, a real refusal).
                return refuse(format!(
                    "Database followers are not supported more than {} levels below this \
                     leader's plan. Please provision at least a {}-{min} plan.",
                    l - min,
                    plan_family(plan)
                ));
            }
        }
        Ok(leader.id.clone())
    }

    /// `Fork/Follow` as pg:info shows it.
    /// FACT: "Available", "Unsupported" on Essential, "Unavailable on
    /// followers" (gist r38y 2014), "Temporarily Unavailable" for a while
    /// after a fork or an unfollow (Dev Center follower article).
    pub(super) fn fork_follow(&self, a: &Addon) -> &'static str {
        if is_essential_plan(&a.plan) {
            "Unsupported"
        } else if a.repl.follow.is_some() {
            "Unavailable on followers"
        } else if a.repl.blocked || self.now_ms() < a.repl.cooldown_until_ms {
            "Temporarily Unavailable"
        } else {
            "Available"
        }
    }

    /// An add-on's rows and commits at `t`, from its samples.
    fn history_at(&self, i: usize, t: u64) -> (f64, f64) {
        let a = &self.addons[i];
        let s = &a.repl.samples;
        let after = s.partition_point(|x| x.t <= t);
        match (after.checked_sub(1).map(|k| s[k]), s.get(after)) {
            (None, Some(first)) => (first.rows, first.commits),
            (None, None) => (a.rows, a.repl.commits),
            (Some(p), None) => (p.rows, p.commits),
            (Some(p), Some(n)) => {
                let f = (t - p.t) as f64 / (n.t - p.t).max(1) as f64;
                (
                    p.rows + (n.rows - p.rows) * f,
                    p.commits + (n.commits - p.commits) * f,
                )
            }
        }
    }

    /// Record add-on `i`'s rows and commits at `t`.
    pub(super) fn note_rows(&mut self, i: usize, t: u64) {
        let keep_from =
            t.saturating_sub(self.timing.replica_delay_ms + self.timing.unfollow_ms + 10_000);
        let a = &mut self.addons[i];
        let s = &mut a.repl.samples;
        if let Some(last) = s.last() {
            if last.t == t && last.rows == a.rows && last.commits == a.repl.commits {
                return;
            }
        }
        s.push(Sample {
            t,
            rows: a.rows,
            commits: a.repl.commits,
        });
        // Keep one sample before the horizon.
        let old = s.partition_point(|x| x.t < keep_from);
        if old > 1 {
            s.drain(..old - 1);
        }
    }

    /// Rows written to add-on `id` at `t` (the end of a write interval
    /// that started at `from`): added, or refused and counted when it is
    /// read-only. Answers whether they were refused.
    pub(super) fn apply_write(&mut self, id: &str, from: u64, t: u64, n: f64) -> bool {
        let Some(i) = self.addons.iter().position(|a| a.id == id) else {
            return false;
        };
        if self.read_only_at(i, from) {
            self.addons[i].repl.refused_writes += n;
            return true;
        }
        if self.addons[i]
            .repl
            .samples
            .last()
            .is_none_or(|s| s.t < from)
        {
            self.note_rows(i, from);
        }
        self.addons[i].rows += n;
        self.addons[i].repl.commits += n;
        self.note_rows(i, t);
        false
    }

    /// Whether add-on `i` refuses writes at `t`: a follower (until its
    /// unfollow completes), or a database whose maintenance runs.
    /// FACT: a follower is read-only (Dev Center follower article), and an
    /// unfollowed database stays read-only until it has replayed its
    /// backlog (heroku/heroku-pg PR #187's warning; inferred, METHODS §3).
    /// GUESS: writes during a maintenance run fail (help.heroku.com
    /// CM2A0TGW: "pg is read only" in the logs during a changeover).
    fn read_only_at(&self, i: usize, t: u64) -> bool {
        self.addons[i].repl.follow.is_some() || self.maintenance_running(&self.addons[i].id, t)
    }

    /// What follower `i` has replayed by `now`: rows and commits.
    fn replayed(&self, i: usize, now: u64) -> Option<(f64, f64)> {
        let f = self.addons[i].repl.follow.as_ref()?;
        let l = self.addons.iter().position(|a| a.id == f.leader)?;
        let mut cut = now
            .saturating_sub(self.timing.replica_delay_ms)
            .max(f.since_ms);
        if let Some(u) = f.unfollow {
            cut = cut.min(u.requested_ms);
        }
        Some(self.history_at(l, cut))
    }

    /// How many commits follower `i` is behind: the leader's (as of the
    /// unfollow, once requested) minus what it replayed.
    fn behind_by(&self, i: usize, now: u64) -> Option<u64> {
        let f = self.addons[i].repl.follow.as_ref()?;
        let l = self.addons.iter().position(|a| a.id == f.leader)?;
        let target = match f.unfollow {
            Some(u) => self.history_at(l, u.requested_ms).1,
            None => self.addons[l].repl.commits,
        };
        let (_, done) = self.replayed(i, now)?;
        Some((target.floor() - done.floor()).max(0.0) as u64)
    }

    /// The times up to `now` where a write rate or a database's
    /// writability changes: dynos stopping, unfollows completing,
    /// maintenances starting and ending.
    pub(super) fn event_points(&self, now: u64) -> Vec<u64> {
        let mut points: Vec<u64> = self
            .apps
            .values()
            .flat_map(|a| &a.dynos)
            .filter_map(|d| d.stop_ms.filter(|s| *s > d.settled_ms && *s <= now))
            .collect();
        points.extend(
            self.addons
                .iter()
                .filter_map(|a| a.repl.follow.as_ref()?.unfollow)
                .map(|u| u.writable_ms)
                .filter(|t| *t <= now),
        );
        points.extend(self.maintenance_points(now));
        points
    }

    /// Apply what happens at `t`: unfollows that complete, maintenances
    /// that end.
    pub(super) fn apply_events(&mut self, t: u64) {
        for i in 0..self.addons.len() {
            let Some(u) = self.addons[i].repl.follow.as_ref().and_then(|f| f.unfollow) else {
                continue;
            };
            let copying = self.addons[i]
                .repl
                .follow
                .as_ref()
                .and_then(|f| f.copy.as_ref());
            if u.writable_ms > t || copying.is_some_and(|c| c.end().is_none()) {
                continue;
            }
            if let Some(end) = copying.and_then(|c| c.end()) {
                if !matches!(end, crate::sim::pg::CopyEnd::Succeeded { .. }) {
                    tracing::warn!("sandbox: the unfollowed database's real copy failed: {end:?}");
                }
            }
            if let Some((rows, commits)) = self.replayed(i, t) {
                self.addons[i].rows = rows;
                self.addons[i].repl.commits = commits;
            }
            let cooldown = t + self.timing.fork_follow_cooldown_ms;
            let a = &mut self.addons[i];
            a.repl.follow = None;
            a.follower_of = None;
            a.repl.samples.clear();
            // FACT: an unfollowed database counts as a fresh fork: it
            // cannot be followed for a while (Dev Center follower article).
            a.repl.cooldown_until_ms = cooldown;
            self.note_rows(i, t);
        }
        self.apply_maintenances(t);
    }

    /// Followers' rows: what they have replayed by `now`.
    pub(super) fn sync_followers(&mut self, now: u64) {
        for i in 0..self.addons.len() {
            if self.addons[i].repl.follow.is_none() || now < self.addons[i].ready_ms {
                continue;
            }
            if let Some((rows, commits)) = self.replayed(i, now) {
                self.addons[i].rows = rows;
                self.addons[i].repl.commits = commits;
            }
        }
    }

    /// `PUT /client/v11/databases/{id}/unfollow` (no body).
    /// FACT: heroku/cli src/commands/pg/unfollow.ts sends it with no body
    /// and ignores the answer. Inferred (METHODS §3, heroku-pg PR #187):
    /// it is asynchronous; the database stays read-only until it has
    /// replayed its backlog. GUESS: the answer `{leader_xact,
    /// follower_xact}` (what PR #187 read; unverified today), 200; a second
    /// request while it is unfollowing answers the same and changes nothing.
    pub(super) fn unfollow(&mut self, id: &str) -> Answer {
        let now = self.now_ms();
        let Some(i) = self
            .addons
            .iter()
            .position(|a| a.id == id && !a.deleted && now >= a.unknown_until_ms)
            .filter(|i| self.addons[*i].service() == "heroku-postgresql")
        else {
            return err(404, "not_found", "Couldn't find that database.");
        };
        let name = self.addons[i].name.clone();
        let Some(f) = self.addons[i].repl.follow.clone() else {
            // GUESS: the CLI's own words (unfollow.ts checks `following`
            // first and fails with "<addon> is not a follower").
            return err(
                422,
                "unprocessable_entity",
                format!("{name} is not a follower"),
            );
        };
        if now < self.addons[i].available_ms {
            // GUESS: a follower still provisioning cannot be unfollowed.
            return err(
                422,
                "unprocessable_entity",
                format!("{name} is still provisioning."),
            );
        }
        if f.unfollow.is_none() {
            let backlog = self.behind_by(i, now).unwrap_or(0);
            let replay = if backlog > 0 {
                self.timing.replica_delay_ms
            } else {
                0
            };
            let writable_ms = now + replay + self.timing.unfollow_ms;
            // With a PostgreSQL backend the follower's real database is
            // filled now with the leader's data as of this request (a
            // sandbox stand-in for replication: while it follows, its real
            // database is empty).
            let copy = self.pg.as_ref().and_then(|_| {
                let leader = self.addons.iter().find(|a| a.id == f.leader)?;
                let (from, to) = (leader.url.clone(), self.addons[i].url.clone());
                Some(crate::sim::pg::start_copy(from, to, None, None, 0))
            });
            if let Some(f) = self.addons[i].repl.follow.as_mut() {
                f.unfollow = Some(Unfollow {
                    requested_ms: now,
                    writable_ms,
                });
                f.copy = copy;
            }
        }
        let leader_xact = self
            .addons
            .iter()
            .position(|a| a.id == f.leader)
            .map_or(0.0, |l| self.addons[l].repl.commits);
        let follower_xact = self.replayed(i, now).map_or(0.0, |r| r.1);
        Answer::ok(json!({"leader_xact": leader_xact.floor() as u64,
                          "follower_xact": follower_xact.floor() as u64}))
    }

    /// `GET /client/v11/databases/{id}` for a Postgres add-on.
    /// FACT: the fields are those of `PgDatabaseService` (heroku/cli
    /// src/lib/pg/types.ts): `following` is the leader's URL (the
    /// unfollow test fixture), absent or falsy on a leader; `leader` a
    /// name or null; `info[]` entries `{name, values[]}` that pg:info
    /// prints as they come, `resolve_db_name` mapping URLs to config vars.
    pub(super) fn database_json(&self, id: &str) -> Answer {
        let Some(a) = self
            .addon_by_id(id)
            .filter(|a| a.service() == "heroku-postgresql")
        else {
            return err(404, "not_found", "Couldn't find that database.");
        };
        let now = self.now_ms();
        let i = self.addons.iter().position(|x| x.id == a.id).unwrap_or(0);
        let leader = a
            .repl
            .follow
            .as_ref()
            .and_then(|f| self.addons.iter().find(|l| l.id == f.leader));
        // A scenario follower whose leader is not in the world still says
        // so by name, as before.
        let following = leader
            .map(|l| json!(l.url))
            .unwrap_or_else(|| json!(a.follower_of));
        let mut info = vec![
            // GUESS: the wording ("Standard 2" as pg:info shows plans).
            json!({"name": "Plan", "values": [plan_title(&a.plan)]}),
            json!({"name": "Status", "values": [self.status_line(a, now)]}),
            json!({"name": "Rows", "values": [a.rows as u64]}),
            json!({"name": "Data Size", "values": [human_size(a.rows as u64 * self.timing.bytes_per_row)]}),
            json!({"name": "Fork/Follow", "values": [self.fork_follow(a)]}),
        ];
        if let Some(l) = leader {
            info.push(json!({"name": "Following", "values": [l.url], "resolve_db_name": true}));
            if now >= a.ready_ms {
                // GUESS: the format "N commits" (METHODS §2: the metrics
                // log's `follower-lag-commits` counts commits).
                let n = self.behind_by(i, now).unwrap_or(0);
                info.push(json!({"name": "Behind By", "values": [format!("{n} commits")]}));
            }
        }
        let followers: Vec<&str> = self
            .addons
            .iter()
            .filter(|f| !f.deleted && f.repl.follow.as_ref().is_some_and(|x| x.leader == a.id))
            .map(|f| f.url.as_str())
            .collect();
        if !followers.is_empty() {
            // GUESS: followers' URLs, resolved to names like `Following`.
            info.push(json!({"name": "Followers", "values": followers, "resolve_db_name": true}));
        }
        if let Some(m) = self.maintenance_info(&a.id, now) {
            info.push(json!({"name": "Maintenance", "values": [m]}));
        }
        let in_recovery = a.repl.follow.is_some();
        Answer::ok(json!({
            "addon_id": a.id, "name": a.name, "plan": a.plan,
            "following": following,
            "leader": leader.map(|l| l.name.clone()),
            "info": info,
            // GUESS: what these mean (no CLI code reads them): commits
            // replayed or made, and whether it is still a standby.
            "current_transaction": a.repl.commits.floor() as u64,
            "target_transaction": Value::Null,
            "is_in_recovery": in_recovery,
            "hot_standby?": in_recovery,
            "waiting?": self.waiting(a, now).is_some(),
            "resource_url": a.url,
            "created_at": stamp(a.created_ms),
        }))
    }

    /// The replication fields of add-on `i` in `/__sandbox/state`.
    pub(super) fn repl_snapshot(&self, i: usize, now: u64) -> Value {
        let a = &self.addons[i];
        let f = a.repl.follow.as_ref();
        let leader = f.and_then(|f| self.addons.iter().find(|l| l.id == f.leader));
        let maintenance = self
            .maintenances
            .iter()
            .rev()
            .find(|m| m.addon_id == a.id && !m.canceled)
            .map(|m| m.status(now));
        json!({"following": leader.map(|l| l.name.clone()),
               "following_id": leader.map(|l| l.id.clone()),
               "unfollowing": f.is_some_and(|f| f.unfollow.is_some()),
               "read_only": self.read_only_at(i, now),
               "behind_by": self.behind_by(i, now),
               "commits": a.repl.commits.floor() as u64,
               "refused_writes": a.repl.refused_writes.floor() as u64,
               "fork_follow": self.fork_follow(a),
               "maintenance": maintenance.unwrap_or("none")})
    }

    /// Rows an app's dynos could not write, so far.
    pub(super) fn refused_of(&self, app: &str) -> u64 {
        self.refused_by_app.get(app).copied().unwrap_or(0.0).floor() as u64
    }

    /// Why wait_status says `waiting?: true` (after provisioning), if it does.
    pub(super) fn waiting(&self, a: &Addon, now: u64) -> Option<&'static str> {
        if now < a.available_ms {
            Some("Provisioning")
        } else if now < a.repl.changing_until_ms {
            // GUESS: an Essential plan change in place waits a moment.
            Some("Changing plan")
        } else if self.maintenance_running(&a.id, now) {
            // GUESS: the database is offline while the swap runs.
            Some("Maintenance in progress")
        } else {
            None
        }
    }

    /// pg:info's `Status`.
    fn status_line(&self, a: &Addon, now: u64) -> String {
        if now < a.available_ms {
            // GUESS: the wording while provisioning.
            return "Creating".into();
        }
        if let Some(s) = self.maintenance_status_line(&a.id, now) {
            return s.into();
        }
        // FACT: pg:info shows "Available" for a healthy database.
        "Available".into()
    }
}

/// "heroku-postgresql:standard-2" as "Standard 2".
fn plan_title(plan: &str) -> String {
    let tier = plan.split_once(':').map_or(plan, |(_, t)| t);
    tier.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}
