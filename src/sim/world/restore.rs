//! Restoring a world from a `/__sandbox/state` snapshot.
//!
//! TEST FACILITY, not Heroku behaviour: it lets the tests put the sandbox
//! back in the state a journal of an older release was written against
//! (fixtures/journals/). Only what those journals need is restored.

use super::*;

impl World {
    /// Overwrite the add-ons, attachments, apps and finished transfers
    /// with those of `snap` (as `snapshot` writes them). The world should
    /// have been built from the scenario the snapshot was taken with.
    pub fn restore(&mut self, snap: &Value) -> Result<(), String> {
        let s = |v: &Value, k: &str| v[k].as_str().map(str::to_string);
        let need = |v: &Value, k: &str| s(v, k).ok_or_else(|| format!("snapshot: no `{k}`"));
        self.addons.clear();
        for a in snap["addons"].as_array().into_iter().flatten() {
            let deleted = a["deleted"].as_bool().unwrap_or(false)
                || s(a, "state").as_deref() == Some("deprovisioned");
            self.addons.push(Addon {
                id: need(a, "id")?,
                name: need(a, "name")?,
                app: need(a, "app")?,
                plan: need(a, "plan")?,
                created_ms: 0,
                ready_ms: 0,
                available_ms: 0,
                unknown_until_ms: 0,
                fails: false,
                deleted,
                url: need(a, "url")?,
                rows: a["rows"].as_u64().unwrap_or(0) as f64,
                follower_of: s(a, "following"),
                extra_credentials: vec![],
                repl: Replication {
                    // A follower follows on; one that was unfollowing is
                    // restored unfollowed (its writes no longer refused).
                    follow: s(a, "following_id")
                        .filter(|_| a["unfollowing"] != true)
                        .map(|leader| super::followers::Follow {
                            leader,
                            since_ms: 0,
                            unfollow: None,
                            copy: None,
                        }),
                    commits: a["commits"].as_u64().unwrap_or(0) as f64,
                    refused_writes: a["refused_writes"].as_u64().unwrap_or(0) as f64,
                    blocked: a["fork_follow"] == "Temporarily Unavailable",
                    ..Replication::default()
                },
            });
        }
        for i in 0..self.addons.len() {
            if self.addons[i].repl.follow.is_none() {
                self.addons[i].follower_of = None;
            }
            self.note_rows(i, self.now_ms());
        }
        // Maintenances: each in the state it was in, from now on.
        let now = self.now_ms();
        self.maintenances.clear();
        for m in snap["maintenances"].as_array().into_iter().flatten() {
            let status = s(m, "status").unwrap_or_default();
            let run_ms = self.timing.maintenance_run_ms;
            self.maintenances.push(Maintenance {
                id: need(m, "id")?,
                addon_id: need(m, "addon_id")?,
                from_plan: need(m, "from_plan")?,
                to_plan: need(m, "to_plan")?,
                created_ms: 0,
                ready_ms: match status.as_str() {
                    "preparing" => now + self.timing.plan_change_prepare_ms,
                    _ => 0,
                },
                started_ms: match status.as_str() {
                    "running" => Some(now),
                    "completed" => Some(0),
                    _ => None,
                },
                run_ms,
                applied: status == "completed",
                canceled: status == "canceled",
            });
        }
        self.attachments.clear();
        let apps = snap["apps"].as_object().ok_or("snapshot: no `apps`")?;
        for (name, v) in apps {
            for t in v["attachments"].as_array().into_iter().flatten() {
                self.attachments.push(Attachment {
                    id: need(t, "id")?,
                    name: need(t, "name")?,
                    app: name.clone(),
                    addon_id: need(t, "addon_id")?,
                    namespace: s(t, "namespace"),
                });
            }
        }
        for (name, v) in apps {
            let att_vars: BTreeSet<String> = self
                .attachments
                .iter()
                .filter(|t| &t.app == name)
                .map(|t| format!("{}_URL", t.name))
                .collect();
            let Some(app) = self.apps.get_mut(name) else {
                return Err(format!("snapshot: app {name} is not in the scenario"));
            };
            if let Some(id) = s(v, "id") {
                app.id = id;
            }
            app.maintenance = v["maintenance"].as_bool().unwrap_or(false);
            let refused = v["refused_writes"].as_u64().unwrap_or(0) as f64;
            self.refused_by_app.insert(name.clone(), refused);
            // Config vars verbatim; those an attachment sets come back
            // from the attachments.
            app.config = v["config_vars"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !att_vars.contains(*k))
                .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                .collect();
            app.dynos.clear();
            for p in &mut app.formation {
                p.quantity = 0;
            }
            // The app's history restarts with one release on its DATABASE.
            self.releases.retain(|r| &r.app != name);
            self.first_release(name);
            for p in v["formation"].as_array().into_iter().flatten() {
                let ptype = need(p, "type")?;
                let quantity = p["quantity"].as_u64().unwrap_or(0) as u32;
                if let Some(app) = self.apps.get_mut(name) {
                    match app.formation.iter_mut().find(|x| x.process_type == ptype) {
                        Some(x) => x.size = s(p, "size").unwrap_or(x.size.clone()),
                        None => return Err(format!("snapshot: no process type {ptype}")),
                    }
                }
                self.scale(name, &ptype, quantity, 0, true);
            }
        }
        self.transfers.clear();
        for (i, t) in snap["transfers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if !t["finished"].as_bool().unwrap_or(false) {
                continue;
            }
            let from_addon = need(t, "from_addon")?;
            let to_addon = need(t, "to_addon")?;
            let addon = |id: &str| self.addons.iter().find(|a| a.id == id).cloned();
            let (Some(from), Some(to)) = (addon(&from_addon), addon(&to_addon)) else {
                return Err("snapshot: a transfer between unknown add-ons".into());
            };
            self.transfers.push(Transfer {
                uuid: need(t, "uuid")?,
                num: i as u64 + 1,
                app: to.app.clone(),
                from_name: from.name.clone(),
                to_name: s(t, "to_name").unwrap_or(to.name.clone()),
                from_addon,
                to_addon,
                created_ms: 0,
                source_rows: t["source_rows_at_start"].as_u64().unwrap_or(0) as f64,
                source_bytes: t["source_rows_at_start"].as_u64().unwrap_or(0).max(1)
                    * self.timing.bytes_per_row,
                fails: !t["succeeded"].as_bool().unwrap_or(false),
                stalls: false,
                warns: None,
                queue_ms: 0,
                dump_ratio: self.timing.dump_ratio,
                tail_ratio: self.timing.transfer_tail_ratio,
                canceled_ms: t["canceled"].as_bool().unwrap_or(false).then_some(0),
                finished: true,
                pg_copy: None,
                ended_ms: Some(0),
                failure_logs: vec![],
                real_warnings: 0,
            });
        }
        Ok(())
    }
}
