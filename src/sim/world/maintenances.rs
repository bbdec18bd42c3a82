//! Plan changes (`PATCH /apps/{app}/addons/{addon}`, what `heroku
//! addons:upgrade` sends) and the maintenances they schedule on the Data
//! API (`/data/maintenances/v1/...`, what `heroku data:maintenances:*`
//! call).
//!
//! FACT (Dev Center plan-change article; METHODS §4): Essential plans
//! change in place, and only to another Essential plan; Standard and above
//! get a `changeover` maintenance: a replacement is prepared while the app
//! runs, then a maintenance run swaps it in; the add-on id, name and
//! attachments stay, the URL gets a new host and password, the app
//! restarts, followers are repointed. FACT (heroku/cli
//! src/lib/data/types.ts): status is none|pending|preparing|ready|running|
//! completed. Inferred: preparing = replacement being built, ready = can
//! run now.

use super::*;

/// One plan change's maintenance.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub id: String,
    pub addon_id: String,
    pub from_plan: String,
    pub to_plan: String,
    pub created_ms: u64,
    /// When it turns `ready` (from `preparing`).
    pub ready_ms: u64,
    /// When a run started, and how long it takes.
    pub started_ms: Option<u64>,
    pub run_ms: u64,
    /// Set once its swap was applied (new URL, releases).
    pub applied: bool,
    /// Cancelled by a PATCH back to the original plan.
    pub canceled: bool,
}

impl Maintenance {
    pub fn status(&self, now: u64) -> &'static str {
        match self.started_ms {
            Some(s) if now >= s + self.run_ms => "completed",
            Some(_) => "running",
            None if now >= self.ready_ms => "ready",
            None => "preparing",
        }
    }
    fn ends_ms(&self) -> Option<u64> {
        self.started_ms.map(|s| s + self.run_ms)
    }
}

/// A plan named in a request body: a string (the schema's plan
/// identity, id or name) or an object with `name` or `id` (FACT: the CLI
/// sends `{"plan": {"name": "heroku-postgresql:<plan>"}}`,
/// src/commands/addons/upgrade.ts and src/lib/addons/create-addon.ts).
pub(super) fn plan_in(b: &Value) -> Option<&str> {
    match b.get("plan")? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("name").or(o.get("id")).and_then(Value::as_str),
        _ => None,
    }
}

const DAY_MS: u64 = 86_400_000;

/// FACT: the Data API's maintenance times look like "2019-11-07 22:00:00
/// +0000" (heroku/cli test fixtures of data:maintenances:*).
fn data_stamp(ms: u64) -> String {
    stamp(ms).replacen('T', " ", 1).replace('Z', " +0000")
}

/// FACT: a window reads "Thursdays 22:00 to Fridays 02:00 UTC" (the same
/// fixtures). GUESS: every database has this one.
const WINDOW: &str = "Thursdays 22:00 to Fridays 02:00 UTC";

impl World {
    /// The add-on's maintenance that is not over (not completed or cancelled).
    fn open_maintenance(&self, addon_id: &str, now: u64) -> Option<usize> {
        self.maintenances
            .iter()
            .rposition(|m| m.addon_id == addon_id && !m.canceled && m.status(now) != "completed")
    }

    pub(super) fn maintenance_running(&self, addon_id: &str, t: u64) -> bool {
        self.maintenances.iter().any(|m| {
            m.addon_id == addon_id
                && !m.canceled
                && m.started_ms.is_some_and(|s| s <= t && t < s + m.run_ms)
        })
    }

    /// When maintenances start or end, up to `now` (write intervals split there).
    pub(super) fn maintenance_points(&self, now: u64) -> Vec<u64> {
        self.maintenances
            .iter()
            .filter(|m| !m.canceled && !m.applied)
            .flat_map(|m| [m.started_ms, m.ends_ms()])
            .flatten()
            .filter(|t| *t <= now)
            .collect()
    }

    /// Apply the swap of every maintenance whose run ended by `t`.
    pub(super) fn apply_maintenances(&mut self, t: u64) {
        for k in 0..self.maintenances.len() {
            let m = &self.maintenances[k];
            if m.canceled || m.applied || m.ends_ms().is_none_or(|e| e > t) {
                continue;
            }
            self.maintenances[k].applied = true;
            let id = self.maintenances[k].addon_id.clone();
            let Some(old) = self
                .addons
                .iter()
                .find(|a| a.id == id)
                .map(|a| a.url.clone())
            else {
                continue;
            };
            // With a PostgreSQL backend, new credentials for the same
            // database (see `Backend::rotate`).
            let url = match self.pg.clone() {
                Some(pg) => {
                    self.counter += 1;
                    match pg.rotate(&old, self.counter) {
                        Ok(u) => u,
                        Err(e) => {
                            tracing::warn!("sandbox: the swap kept the old URL: {e}");
                            old
                        }
                    }
                }
                None => self.fake_url(),
            };
            let Some(a) = self.addons.iter_mut().find(|a| a.id == id) else {
                continue;
            };
            // FACT (METHODS §4, the changeover email): the new primary's
            // credentials are pushed to the app: a new host and password,
            // the same add-on, attachments and data. Its followers follow
            // the new primary (they read the leader's URL from here).
            a.url = url;
            let addon_name = a.name.clone();
            let mut apps: Vec<(String, String)> = self
                .attachments
                .iter()
                .filter(|x| x.addon_id == id)
                .map(|x| (x.app.clone(), x.name.clone()))
                .collect();
            apps.sort();
            apps.dedup_by(|x, y| x.0 == y.0);
            for (app, att) in apps {
                // FACT (Dev Center "Release Phase"): releases an add-on
                // makes for its own config vars do not run the release
                // command; a config change restarts the dynos. GUESS: the
                // description, one release per app.
                let phase = self.release_phases.remove(&app);
                self.new_release(&app, format!("Update {att} by {addon_name}"));
                if let Some(p) = phase {
                    self.release_phases.insert(app, p);
                }
            }
        }
    }

    /// `PATCH /apps/{app}/addons/{id or name}` `{"plan": ...}`.
    /// Inferred (METHODS §4): the answer already names the target plan.
    pub(super) fn update_addon(&mut self, app: &str, key: &str, b: &Value) -> Answer {
        if !self.apps.contains_key(app) {
            return no_app(app);
        }
        let Some(i) = self.addon_ref(key).filter(|i| self.addons[*i].app == app) else {
            return err(
                404,
                "not_found",
                format!("Couldn't find that add-on: {key}."),
            );
        };
        let Some(plan) = plan_in(b).map(str::to_string) else {
            return err(422, "invalid_params", "plan is required.");
        };
        let a = &self.addons[i];
        let plan = if plan.contains(':') {
            plan
        } else {
            format!("{}:{plan}", a.service())
        };
        if !self.plans.contains(&plan) || !plan.starts_with(&format!("{}:", a.service())) {
            // FACT: the CLI special-cases this prefix (upgrade.ts).
            return err(
                422,
                "invalid_params",
                format!(
                    "Couldn't find either the add-on service or the add-on plan of \"{plan}\"."
                ),
            );
        }
        let now = self.now_ms();
        let id = a.id.clone();
        let current = a.plan.clone();
        if a.service() != "heroku-postgresql" {
            // GUESS: other add-ons change plan at once.
            self.addons[i].plan = plan;
            return Answer::ok(self.addon_json(&self.addons[i]));
        }
        if is_essential_plan(&current) != is_essential_plan(&plan) {
            // FACT: Essential changes only to Essential; across tiers Dev
            // Center says to use pg:copy. GUESS: a 422, these words.
            return err(
                422,
                "unprocessable_entity",
                "Plan changes between Essential-tier and other databases are not supported. \
                 Use pg:copy to move the data to a new database.",
            );
        }
        if is_essential_plan(&plan) {
            // GUESS: in place, the URL unchanged, wait_status waiting a
            // moment (no maintenance: data:maintenances refuses Essential).
            if plan != current {
                self.addons[i].plan = plan;
                self.addons[i].repl.changing_until_ms = now + self.timing.essential_change_ms;
            }
            return Answer::ok(self.addon_json(&self.addons[i]));
        }
        let mut message = Value::Null;
        match self.open_maintenance(&id, now) {
            Some(k) if self.maintenances[k].status(now) == "running" => {
                // GUESS: no plan change while the swap runs.
                return err(
                    422,
                    "unprocessable_entity",
                    format!("A maintenance is running on {key}. Try again once it has completed."),
                );
            }
            Some(k) if plan == self.maintenances[k].from_plan => {
                // GUESS: back to the original plan before the run cancels
                // the pending change (unverified, METHODS §8 A).
                self.maintenances[k].canceled = true;
                self.addons[i].plan = plan;
            }
            Some(k) if plan != current => {
                // GUESS: another target starts the preparation again.
                let m = &mut self.maintenances[k];
                m.to_plan = plan.clone();
                m.ready_ms = now + self.timing.plan_change_prepare_ms;
                self.addons[i].plan = plan;
            }
            Some(_) => {} // The same target again: nothing changes.
            None if plan == current => {}
            None => {
                let mid = self.uuid();
                self.maintenances.push(Maintenance {
                    id: mid,
                    addon_id: id,
                    from_plan: current,
                    to_plan: plan.clone(),
                    created_ms: now,
                    ready_ms: now + self.timing.plan_change_prepare_ms,
                    started_ms: None,
                    run_ms: self.timing.maintenance_run_ms,
                    applied: false,
                    canceled: false,
                });
                self.addons[i].plan = plan;
                // FACT: the words of a real answer (tetsuya.dev 2021).
                message = json!(
                    "Your database's plan is being changed. This will trigger a \
                                 maintenance that you can run with heroku pg:maintenance."
                );
            }
        }
        let mut json = self.addon_json(&self.addons[i]);
        json["provision_message"] = message;
        Answer::ok(json)
    }

    /// Every maintenance, for `/__sandbox/state`.
    pub(super) fn maintenances_snapshot(&self, now: u64) -> Vec<Value> {
        self.maintenances
            .iter()
            .map(|m| {
                json!({"id": m.id, "addon_id": m.addon_id, "from_plan": m.from_plan,
                       "to_plan": m.to_plan, "canceled": m.canceled,
                       "status": if m.canceled { "canceled" } else { m.status(now) },
                       "created_ms": m.created_ms, "ready_ms": m.ready_ms,
                       "started_ms": m.started_ms,
                       "completed_ms": m.started_ms.filter(|_| m.status(now) == "completed")
                           .map(|s| s + m.run_ms)})
            })
            .collect()
    }

    fn maintenance_json(&self, m: Option<&Maintenance>, a: &Addon, now: u64) -> Value {
        // FACT (the CLI's fixtures): `attachments` are config var names
        // ("DATABASE_URL"), `plan` the plan without the service
        // ("standard-0"), `kind` the service.
        let atts: Vec<String> = self
            .attachments
            .iter()
            .filter(|t| t.addon_id == a.id)
            .map(|t| format!("{}_URL", t.name))
            .collect();
        let app_id = self.apps.get(&a.app).map(|x| x.id.clone());
        let plan = a.plan.split_once(':').map_or(a.plan.as_str(), |(_, p)| p);
        let addon = json!({"attachments": atts, "kind": a.service(), "name": a.name,
                           "plan": plan, "uuid": a.id, "window": WINDOW});
        let app = json!({"name": a.app, "uuid": app_id});
        let Some(m) = m else {
            // GUESS: no maintenance is a Maintenance whose status is
            // `none` (the enum has it; the CLI's fixture of one has
            // `method: changeover`, `reason: routine_maintenance`), times
            // null.
            return json!({"addon": addon, "app": app, "status": "none",
                          "method": "changeover", "reason": "routine_maintenance",
                          "scheduled_for": Value::Null, "required_by": Value::Null,
                          "previously_scheduled_for": Value::Null,
                          "started_at": Value::Null, "completed_at": Value::Null,
                          "duration_seconds": Value::Null,
                          "server_created_at": data_stamp(a.created_ms),
                          "window": WINDOW});
        };
        let status = m.status(now);
        let done = status == "completed";
        // FACT: `method: "changeover"` (the CLI's fixture) and
        // `duration_seconds` a string or null (types.ts). GUESS: the
        // reason for a plan change, scheduled in a week and required in
        // two (the sandbox never runs it by itself).
        json!({"addon": addon, "app": app, "status": status,
               "method": "changeover", "reason": "plan_change",
               "scheduled_for": data_stamp(m.created_ms + 7 * DAY_MS),
               "required_by": data_stamp(m.created_ms + 14 * DAY_MS),
               "previously_scheduled_for": Value::Null,
               "started_at": m.started_ms.map(data_stamp),
               "completed_at": done.then(|| m.ends_ms().map(data_stamp)).flatten(),
               "duration_seconds": done.then(|| (m.run_ms / 1000).max(1).to_string()),
               "server_created_at": data_stamp(m.created_ms),
               "window": WINDOW})
    }

    fn data_addon(&self, key: &str) -> Result<usize, Answer> {
        self.addon_ref(key)
            .filter(|i| self.now_ms() >= self.addons[*i].unknown_until_ms)
            .ok_or_else(|| err(404, "not_found", "Couldn't find that add-on."))
    }

    /// `GET /data/maintenances/v1/{addon_id}`: the most recent maintenance
    /// (FACT: data:maintenances:info "display details of the most recent
    /// maintenance").
    pub(super) fn get_maintenance(&self, key: &str) -> Answer {
        let i = match self.data_addon(key) {
            Ok(i) => i,
            Err(a) => return a,
        };
        let a = &self.addons[i];
        let m = self
            .maintenances
            .iter()
            .rev()
            .find(|m| m.addon_id == a.id && !m.canceled);
        Answer::ok(self.maintenance_json(m, a, self.now_ms()))
    }

    /// `POST /data/maintenances/v1/{addon_id}/run` (no body): a ready
    /// maintenance starts running.
    pub(super) fn run_maintenance(&mut self, key: &str) -> Answer {
        let i = match self.data_addon(key) {
            Ok(i) => i,
            Err(a) => return a,
        };
        let now = self.now_ms();
        let a = &self.addons[i];
        if is_essential_plan(&a.plan) {
            // FACT: the words (heroku/cli data/maintenances/run.ts, which
            // checks on the client; GUESS: the server says the same).
            return err(
                422,
                "unprocessable_entity",
                "You can't trigger maintenance on an Essential tier database.",
            );
        }
        let name = a.name.clone();
        let Some(k) = self.open_maintenance(&a.id, now) else {
            // GUESS: nothing to run.
            return err(
                422,
                "unprocessable_entity",
                format!("{name} has no maintenance to run."),
            );
        };
        match self.maintenances[k].status(now) {
            "ready" => {
                self.maintenances[k].started_ms = Some(now);
                self.maintenances[k].run_ms = self.timing.maintenance_run_ms;
            }
            // GUESS: a run is refused while the replacement is prepared
            // (unverified, METHODS §4).
            "preparing" => {
                return err(
                    422,
                    "unprocessable_entity",
                    format!("The maintenance of {name} is not ready to run yet: its replacement is being prepared."),
                )
            }
            // GUESS: a second run while one runs is refused.
            _ => {
                return err(
                    422,
                    "unprocessable_entity",
                    format!("A maintenance is already running on {name}."),
                )
            }
        }
        // FACT: the CLI's fixture of this answer (maintenancesRunResponse)
        // has only these four fields.
        let m = &self.maintenances[k];
        Answer::ok(json!({"previously_scheduled_for": Value::Null,
                          "required_by": data_stamp(m.created_ms + 14 * DAY_MS),
                          "scheduled_for": data_stamp(m.created_ms + 7 * DAY_MS),
                          "window": WINDOW}))
    }

    /// `GET /data/maintenances/v1/{addon_id}/history?limit=N`:
    /// `{"maintenances": [...]}`, newest first (FACT: the CLI reads
    /// `maintenances`, at most 20). GUESS: only completed ones.
    pub(super) fn maintenance_history(&self, key: &str, query: &str) -> Answer {
        let i = match self.data_addon(key) {
            Ok(i) => i,
            Err(a) => return a,
        };
        let now = self.now_ms();
        let limit = query
            .split('&')
            .find_map(|p| p.strip_prefix("limit="))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(20)
            .min(20);
        let a = &self.addons[i];
        let list: Vec<Value> = self
            .maintenances
            .iter()
            .rev()
            .filter(|m| m.addon_id == a.id && !m.canceled && m.status(now) == "completed")
            .take(limit)
            .map(|m| self.maintenance_json(Some(m), a, now))
            .collect();
        Answer::ok(json!({"maintenances": list}))
    }

    /// pg:info `Status` while a plan change is prepared or runs.
    pub(super) fn maintenance_status_line(&self, addon_id: &str, now: u64) -> Option<&'static str> {
        let k = self.open_maintenance(addon_id, now)?;
        Some(match self.maintenances[k].status(now) {
            // FACT: tetsuya.dev 2021, while the replacement was prepared.
            "preparing" => "Upgrading plan: replacing primary, maintenance scheduled",
            // GUESS: the wording once ready and while running.
            "ready" => "Upgrading plan: replacement ready, maintenance scheduled",
            _ => "Upgrading plan: replacing primary, maintenance running",
        })
    }

    /// pg:info `Maintenance` while one is scheduled.
    /// FACT: the form "scheduled for <time>, required by <time>,
    /// replacement currently being prepared" (Dev Center maintenance
    /// article). GUESS: "replacement ready" once ready.
    pub(super) fn maintenance_info(&self, addon_id: &str, now: u64) -> Option<String> {
        let m = &self.maintenances[self.open_maintenance(addon_id, now)?];
        let state = match m.status(now) {
            "preparing" => "replacement currently being prepared",
            "ready" => "replacement ready",
            _ => "running",
        };
        Some(format!(
            "scheduled for {}, required by {}, {state}",
            data_stamp(m.created_ms + 7 * DAY_MS),
            data_stamp(m.created_ms + 14 * DAY_MS)
        ))
    }
}
