//! What a Heroku Postgres transfer says: its verdict, its last log lines,
//! its name, and whether it has stopped moving bytes.

use std::time::Duration;

use crate::heroku::types::Transfer;

/// What one look at a transfer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyVerdict {
    /// Accepted by Heroku but not started yet (`started_at` null): it
    /// waits for a worker. Waiting, not stalled.
    Queued,
    /// Copying. `processed` counts dump bytes (compressed), so it ends well
    /// below `total` (the source database's size).
    Running { processed: u64, total: Option<u64> },
    /// Finished and Heroku reports success. `warnings` > 0 means pg_restore
    /// ignored errors ("errors ignored on restore"): the copy is suspect.
    Succeeded { processed: u64, warnings: u64 },
    /// Finished without success (or cancelled); carries the last log lines.
    Failed {
        reason: String,
        last_logs: Vec<String>,
    },
}

/// Judge a transfer from its latest status.
pub fn copy_verdict(t: &Transfer) -> CopyVerdict {
    let processed = t.processed_bytes.unwrap_or(0);
    if t.canceled_at.is_some() {
        return CopyVerdict::Failed {
            reason: "the transfer was cancelled".into(),
            last_logs: last_logs(t, 5),
        };
    }
    if t.finished_at.is_none() {
        if t.started_at.is_none() && processed == 0 {
            return CopyVerdict::Queued;
        }
        return CopyVerdict::Running {
            processed,
            total: t.source_bytes,
        };
    }
    match t.succeeded {
        Some(true) => CopyVerdict::Succeeded {
            processed,
            warnings: t.warnings.unwrap_or(0),
        },
        _ => CopyVerdict::Failed {
            reason: "Heroku reports the transfer finished without success".into(),
            last_logs: last_logs(t, 5),
        },
    }
}

/// The last `n` log lines of a transfer (fetched with `verbose=true`),
/// credentials removed.
pub fn last_logs(t: &Transfer, n: usize) -> Vec<String> {
    let start = t.logs.len().saturating_sub(n);
    t.logs[start..]
        .iter()
        .map(|l| crate::secrets::transfer_log(&l.message))
        .collect()
}

/// The transfer's name as `heroku pg:backups:info` takes it: a copy
/// (pg_dump to pg_restore) is `c` and its number on three digits.
/// FACT: heroku/cli src/lib/pg/backups.ts `name()`/`prefix()`, and `num()`
/// accepts `^[abcr](\d+)$`.
pub fn transfer_name(num: Option<u64>) -> Option<String> {
    num.map(|n| format!("c{n:03}"))
}

/// Watches a transfer for silence: no byte moved for longer than a limit.
/// Silence is reported, never acted on: a transfer sits queued, and
/// pg_restore builds indexes for a long time with no byte moving; only
/// Heroku decides that a transfer failed.
#[derive(Debug, Clone)]
pub struct StallWatch {
    limit: Duration,
    last_bytes: Option<u64>,
    since: Duration,
    reported: u32,
}

impl StallWatch {
    pub fn new(limit: Duration) -> StallWatch {
        StallWatch {
            limit,
            last_bytes: None,
            since: Duration::ZERO,
            reported: 0,
        }
    }

    /// Record the bytes seen at time `now` (since the watch began). Returns
    /// how long nothing has moved when that crosses the limit, then twice
    /// the limit, four times, ... (so a long silence is reported a few
    /// times, not at every poll); `None` otherwise. Progress resets it.
    pub fn silence(&mut self, processed: u64, now: Duration) -> Option<Duration> {
        if self.last_bytes != Some(processed) {
            self.last_bytes = Some(processed);
            self.since = now;
            self.reported = 0;
            return None;
        }
        let quiet = now.saturating_sub(self.since);
        let next = self.limit.saturating_mul(1u32 << self.reported.min(20));
        if quiet > next {
            self.reported += 1;
            Some(quiet)
        } else {
            None
        }
    }
}

/// How many failed looks at a transfer are tolerated before the wait
/// stops (resumably: the transfer goes on at Heroku, and `resume` follows
/// it). FACT: heroku/cli src/lib/pg/backups.ts `poll()` loops `while
/// (failures < 21)` and ignores each failed GET until then.
pub const COPY_POLL_FAILURES_TOLERATED: u32 = 20;
