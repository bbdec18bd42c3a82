//! Data API transfers (`pg:copy`): creating them, their progress and
//! their JSON view.

use super::*;

impl World {
    pub(super) fn create_transfer(
        &mut self,
        target_id: &str,
        b: &Value,
        (fails, stalls, warns): (bool, bool, Option<u32>),
        corrupt: Option<crate::sim::pg::Corruption>,
    ) -> Answer {
        let get = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(from_name), Some(from_url), Some(to_name), Some(to_url)) = (
            get("from_name"),
            get("from_url"),
            get("to_name"),
            get("to_url"),
        ) else {
            return err(
                422,
                "invalid_params",
                "from_name, from_url, to_name and to_url are required.",
            );
        };
        let Some(target) = self.addon_by_id(target_id).cloned() else {
            return err(404, "not_found", "Couldn't find that database.");
        };
        if target.url != to_url {
            return err(
                422,
                "invalid_params",
                "to_url does not belong to the database the transfer is posted on.",
            );
        }
        let Some(source) = self
            .addons
            .iter()
            .find(|a| a.url == from_url && !a.deleted)
            .cloned()
        else {
            return err(
                422,
                "invalid_params",
                "from_url is not a database this account can reach.",
            );
        };
        if source.id == target.id {
            return err(
                422,
                "invalid_params",
                "Source and target are the same database.",
            );
        }
        let now = self.now_ms();
        let num = self.transfers.len() as u64 + 1;
        let uuid = self.uuid();
        let t = Transfer {
            uuid,
            num,
            app: target.app.clone(),
            from_name,
            to_name,
            from_addon: source.id.clone(),
            to_addon: target.id.clone(),
            created_ms: now,
            source_rows: source.rows,
            source_bytes: match &self.pg {
                Some(pg) => pg.size(&source.url),
                None => (source.rows as u64).max(1) * self.timing.bytes_per_row,
            },
            fails,
            stalls,
            warns,
            queue_ms: self.timing.transfer_queue_ms,
            dump_ratio: self.timing.dump_ratio,
            tail_ratio: self.timing.transfer_tail_ratio,
            canceled_ms: None,
            finished: false,
            pg_copy: self.pg.as_ref().map(|_| {
                // With a real server, the faults act on the real copy: a
                // conflict in the target that pg_restore ignores (warnings)
                // or stops at (failed).
                let conflict = if fails {
                    Some(crate::sim::pg::Conflict::Fatal)
                } else {
                    warns.map(|_| crate::sim::pg::Conflict::Ignored)
                };
                crate::sim::pg::start_copy(
                    source.url.clone(),
                    target.url.clone(),
                    corrupt,
                    conflict,
                    self.timing.transfer_queue_ms,
                )
            }),
            ended_ms: None,
            failure_logs: vec![],
            real_warnings: 0,
        };
        self.transfers.push(t.clone());
        Answer::status(201, self.transfer_json(&t, false))
    }

    /// When a transfer started (ms), if it has.
    pub(super) fn transfer_started_ms(&self, t: &Transfer, now: u64) -> Option<u64> {
        let queued_until = t.created_ms + t.queue_ms;
        let started = match &t.pg_copy {
            Some(c) => c.started.load(std::sync::atomic::Ordering::SeqCst) || t.finished,
            None => now >= queued_until || t.finished,
        };
        let started = started && t.canceled_ms.is_none_or(|c| c >= queued_until);
        started.then_some(queued_until)
    }

    /// When a transfer finished (ms), if it has.
    pub(super) fn transfer_finished_ms(&self, t: &Transfer) -> Option<u64> {
        t.finished.then(|| {
            t.ended_ms
                .unwrap_or(t.created_ms + t.queue_ms + self.timing.transfer_ms)
        })
    }

    pub(super) fn transfer_json(&self, t: &Transfer, verbose: bool) -> Value {
        let now = self.now_ms();
        let d = self.timing.transfer_ms.max(1) as f64;
        let started_ms = self.transfer_started_ms(t, now);
        let finished_ms = self.transfer_finished_ms(t);
        // Fake mode: dump bytes move linearly while the data is copied,
        // then stand still during the tail (indexes, constraints), and end
        // at `dump_ratio` of the source's size.
        let until = [Some(now), t.canceled_ms, finished_ms]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        let ran = started_ms.map_or(0.0, |s| until.saturating_sub(s) as f64);
        let moving = (d * (1.0 - t.tail_ratio)).max(1.0);
        let mut frac = (ran / moving).min(1.0);
        if t.stalls {
            frac = frac.min(0.3);
        }
        if t.fails {
            frac = frac.min(0.6);
        }
        let processed = match &t.pg_copy {
            Some(c) => c.processed.load(std::sync::atomic::Ordering::Relaxed),
            None => (t.source_bytes as f64 * t.dump_ratio * frac) as u64,
        };
        let warnings = match &t.pg_copy {
            Some(_) => t.real_warnings,
            None if t.finished && !t.fails => u64::from(t.warns.unwrap_or(0)),
            None => 0,
        };
        let end = finished_ms.unwrap_or(now);
        let succeeded = if t.finished { Some(!t.fails) } else { None };
        let log = |at: u64, level: &str, message: &str| json!({"created_at": stamp(at), "level": level, "message": message});
        let mut logs = vec![log(t.created_ms, "info", "Starting transfer")];
        if let Some(s) = started_ms {
            logs.push(log(s, "info", "Running pg_dump | pg_restore"));
        }
        if t.finished && t.fails && !t.failure_logs.is_empty() {
            for l in &t.failure_logs {
                logs.push(log(end, "error", l));
            }
            logs.push(log(end, "error", "Transfer failed"));
        } else if t.finished && t.fails {
            logs.push(log(end, "error", "pg_restore: error: could not execute query: ERROR:  relation \"events\" already exists"));
            logs.push(log(
                end,
                "error",
                "pg_restore: error: COPY failed for table \"orders\": ERROR:  out of disk",
            ));
            logs.push(log(end, "error", "Transfer failed"));
        } else if t.finished {
            if warnings > 0 {
                if t.pg_copy.is_none() {
                    logs.push(log(end, "warning", "pg_restore: error: could not execute query: ERROR:  cannot drop table public.users because other objects depend on it"));
                }
                logs.push(log(
                    end,
                    "warning",
                    &format!("pg_restore: warning: errors ignored on restore: {warnings}"),
                ));
            }
            logs.push(log(end, "info", "Transfer complete"));
        }
        if let Some(c) = t.canceled_ms {
            logs.push(log(c, "info", "Transfer canceled"));
        }
        // FACT: the fields heroku/cli reads (src/lib/pg/types.ts
        // BackupTransfer): uuid, num, from_name/type, to_name/type,
        // created_at, started_at (null while queued), finished_at,
        // canceled_at, updated_at, succeeded, warnings, processed_bytes,
        // source_bytes, logs (only with `verbose=true`).
        let updated = [Some(t.created_ms), started_ms, finished_ms, t.canceled_ms]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(t.created_ms);
        let mut v = json!({
            "uuid": t.uuid, "num": t.num, "from_name": t.from_name, "to_name": t.to_name,
            "from_type": "pg_dump", "to_type": "pg_restore", "options": {},
            "created_at": stamp(t.created_ms), "started_at": started_ms.map(stamp),
            "finished_at": finished_ms.map(stamp), "canceled_at": t.canceled_ms.map(stamp),
            "updated_at": stamp(updated), "deleted_at": null, "purged_at": null,
            "succeeded": succeeded, "warnings": warnings,
            "processed_bytes": processed, "source_bytes": t.source_bytes,
        });
        if verbose {
            v["logs"] = json!(logs);
        }
        v
    }
}
