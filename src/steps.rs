//! The pure decisions the step definitions (`crate::methods`) ask for:
//! which dynos to wait for, which formation to send, which config vars
//! hold the database, what a transfer or a release says, how long to wait
//! before the next look, whether a plan or app name is valid.
//!
//! Nothing here does I/O; every function is unit-tested without a network.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::heroku::types::{Dyno, DynoSizeRef, Formation, FormationUpdate, Release, Transfer};
use crate::journal::{Facts, ProcessRecord};

/// The process types that had dynos before the run.
pub fn running_types(facts: &Facts) -> Vec<&ProcessRecord> {
    facts.formation.iter().filter(|p| p.quantity > 0).collect()
}

/// The dynos the copy must wait for: every dyno but one-off `run.N` ones
/// (those are refused before the app is touched). Not only those of the
/// types pgmigrate scaled down: a dyno of a type that was already at zero
/// but is still stopping, or a scheduler job, can write to the old
/// database just as well.
pub fn dynos_left(dynos: &[Dyno]) -> Vec<&str> {
    dynos
        .iter()
        .filter(|d| !d.is_one_off())
        .map(|d| d.name.as_str())
        .collect()
}

/// The one-off dynos (`heroku run`) that are up: scaling does not stop
/// them, so they are refused rather than waited for.
pub fn one_off_names(dynos: &[Dyno]) -> Vec<&str> {
    dynos
        .iter()
        .filter(|d| d.is_one_off())
        .map(|d| d.name.as_str())
        .collect()
}

/// Where an app's releases stand, for a step that must not start dynos
/// (or the copy) before Heroku has deployed the run's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseVerdict<'a> {
    /// The API listed no release at all and none is expected.
    NoRelease,
    /// The newest release is not newer than `floor` yet.
    NotYet(Option<&'a Release>),
    /// The newest release is running its release command.
    Pending(&'a Release),
    /// The newest release is deployed: dynos started now run it.
    Succeeded(&'a Release),
    /// The newest release failed (or expired): Heroku did not deploy it.
    Failed(&'a Release),
}

/// Judge the newest releases (`GET /apps/{app}/releases`, any order).
/// Dynos boot on the newest release that succeeded (Dev Center, Release
/// Phase), and a release carries the app's whole config when it is made,
/// so once the newest release has succeeded, every change before it is
/// what dynos run. `floor`: a version the newest must exceed (the last
/// release seen before the run's own changes).
pub fn release_verdict(releases: &[Release], floor: Option<u64>) -> ReleaseVerdict<'_> {
    let newest = releases.iter().max_by_key(|r| r.version);
    match newest {
        None if floor.is_none() => ReleaseVerdict::NoRelease,
        None => ReleaseVerdict::NotYet(None),
        Some(r) if floor.is_some_and(|f| r.version <= f) => ReleaseVerdict::NotYet(Some(r)),
        Some(r) if r.is_pending() => ReleaseVerdict::Pending(r),
        Some(r) if r.succeeded() => ReleaseVerdict::Succeeded(r),
        Some(r) => ReleaseVerdict::Failed(r),
    }
}

/// The run's releases that Heroku did not deploy although a newer one
/// was: newer than `floor` (the last release seen before the run's
/// changes), older than the newest, and failed or expired. Dynos run the
/// newest (which carries their config too), but a failed release of the
/// cut-over must still be named: its release command did not run on the
/// new database's config. Oldest first.
pub fn failed_since(releases: &[Release], floor: Option<u64>) -> Vec<&Release> {
    let (Some(floor), Some(newest)) = (floor, releases.iter().map(|r| r.version).max()) else {
        return vec![];
    };
    let mut out: Vec<&Release> = releases
        .iter()
        .filter(|r| r.version > floor && r.version < newest)
        .filter(|r| !r.is_pending() && !r.succeeded())
        .collect();
    out.sort_by_key(|r| r.version);
    out
}

/// The one batch update that scales every running process type to zero.
pub fn scale_down_updates(facts: &Facts) -> Vec<FormationUpdate> {
    running_types(facts)
        .into_iter()
        .map(|p| FormationUpdate {
            process_type: p.process_type.clone(),
            quantity: 0,
            dyno_size: None,
        })
        .collect()
}

/// The one batch update that restores the recorded formation. A size is
/// sent only where the live formation's size differs from the recorded one
/// (sizes survive a scale to zero, so normally none is sent). `current` may
/// be empty when the live formation is unknown; then every size is sent.
pub fn scale_up_updates(facts: &Facts, current: &[Formation]) -> Vec<FormationUpdate> {
    running_types(facts)
        .into_iter()
        .map(|p| {
            let live_size = current
                .iter()
                .find(|f| f.process_type == p.process_type)
                .and_then(|f| f.size_name());
            let dyno_size = match (&p.size, live_size) {
                (Some(want), Some(have)) if want.eq_ignore_ascii_case(have) => None,
                (Some(want), _) => Some(DynoSizeRef { name: want.clone() }),
                (None, _) => None,
            };
            FormationUpdate {
                process_type: p.process_type.clone(),
                quantity: p.quantity,
                dyno_size,
            }
        })
        .collect()
}

/// Whether the live formation equals the recorded one (quantities and sizes).
pub fn formation_matches(recorded: &[ProcessRecord], live: &[Formation]) -> bool {
    recorded.iter().all(|p| {
        live.iter().any(|f| {
            f.process_type == p.process_type
                && f.quantity == p.quantity
                && match (&p.size, f.size_name()) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    _ => true,
                }
        })
    }) && live
        .iter()
        .filter(|f| f.quantity > 0)
        .all(|f| recorded.iter().any(|p| p.process_type == f.process_type))
}

/// The parts of a `postgres://` URL that identify a database, without the
/// credentials: host, port and database path.
fn database_identity(url: &str) -> Option<(String, u16, String)> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return None;
    }
    Some((
        parsed.host_str()?.to_ascii_lowercase(),
        parsed.port().unwrap_or(5432),
        parsed.path().to_string(),
    ))
}

/// Whether two config values name the same database, as the official CLI's
/// `configVarNamesFromValue` decides: equal strings, or both `postgres://`
/// URLs with the same host, port and database path (credentials may differ).
pub fn same_database(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (database_identity(a), database_identity(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The names of the plain config vars (not owned by an attachment) that
/// hold the source database's URL and must follow it to the target.
pub fn rebind_candidates(
    config: &BTreeMap<String, String>,
    source_url: &str,
    attachment_owned: &BTreeSet<String>,
) -> Vec<String> {
    config
        .iter()
        .filter(|(name, value)| {
            !attachment_owned.contains(*name) && same_database(value, source_url)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

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

/// How long to wait before the next look at something that is expected to
/// finish soon (a drain, a provision): quickly at first, then backing off to
/// `cap`.
pub fn backoff_poll(elapsed: Duration, cap: Duration) -> Duration {
    let ms = elapsed.as_millis() as u64;
    let d = if ms < 2_000 {
        Duration::from_millis(250)
    } else if ms < 10_000 {
        Duration::from_millis(500)
    } else if ms < 60_000 {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    d.min(cap)
}

/// How long to wait before the next look at the draining dynos. Every
/// moment of the drain is downtime and dynos are gone within 30 s, so look
/// often during the first seconds (a request every ~150 ms with Heroku's
/// latency), then back off; a 30 s drain costs about 60 requests.
pub fn drain_poll(elapsed: Duration) -> Duration {
    let ms = elapsed.as_millis() as u64;
    Duration::from_millis(if ms < 5_000 {
        50
    } else if ms < 15_000 {
        250
    } else if ms < 60_000 {
        1_000
    } else {
        5_000
    })
}

/// The share of the time a transfer has run that may pass before the next
/// look at it: the end is noticed at most this fraction late (and at most
/// `max`), whatever the final byte count.
pub const COPY_POLL_FRACTION: f64 = 0.1;

/// How long to wait before the next look at a transfer: a fraction of the
/// time it has run so far, never sooner than `min` nor later than `max`.
///
/// It needs no prediction of the end: `processed_bytes` counts dump bytes
/// (compressed), so it ends well below `source_bytes`, and pg_restore can
/// build indexes for a long time with no byte moving. A copy that ends at
/// time T is noticed at most `min(T * COPY_POLL_FRACTION, max)` late
/// (plus a request), and a copy of length T costs about
/// `ln(T / 1 s) / ln(1 + COPY_POLL_FRACTION)` looks until the gap reaches
/// `max`, then one every `max`.
pub fn copy_poll(elapsed: Duration, min: Duration, max: Duration) -> Duration {
    elapsed.mul_f64(COPY_POLL_FRACTION).clamp(min, max.max(min))
}

/// Validate and normalise a plan name: `essential-0` becomes
/// `heroku-postgresql:essential-0`; another service is refused.
pub fn normalise_plan(plan: &str) -> Result<String, String> {
    let plan = plan.trim();
    let (service, name) = match plan.split_once(':') {
        Some((s, n)) => (s, n),
        None => ("heroku-postgresql", plan),
    };
    if service != "heroku-postgresql" {
        return Err(format!(
            "`{plan}` is not a Heroku Postgres plan: pgmigrate moves databases between \
             heroku-postgresql plans; pass --to heroku-postgresql:PLAN (for example \
             heroku-postgresql:standard-0)"
        ));
    }
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "`{plan}` is not a valid plan name: plan names look like \
             heroku-postgresql:standard-0; see `heroku addons:plans heroku-postgresql`"
        ));
    }
    Ok(format!("heroku-postgresql:{name}"))
}

/// Whether `name` is a valid Heroku app name.
pub fn valid_app_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::sample_journal;

    #[test]
    fn every_dyno_but_one_offs_is_waited_for() {
        let d = |name: &str, t: &str| Dyno {
            name: name.into(),
            process_type: t.into(),
            state: "up".into(),
        };
        let dynos = [
            d("web.1", "web"),
            d("run.3", "run"),
            d("scheduler.4021", "scheduler"),
            d("clock.1", "clock"),
        ];
        assert_eq!(dynos_left(&dynos), ["web.1", "scheduler.4021", "clock.1"]);
        assert!(dynos_left(&[d("run.1", "run")]).is_empty());
        assert_eq!(one_off_names(&dynos), ["run.3"]);
        // A release command's dyno is a writer to wait for, not a `run.N`
        // one-off to refuse.
        let release = [d("release.4711", "release")];
        assert_eq!(dynos_left(&release), ["release.4711"]);
        assert!(one_off_names(&release).is_empty());
        assert!(release[0].is_release() && !release[0].is_one_off());
    }

    #[test]
    fn the_newest_release_decides_and_must_be_newer_than_the_floor() {
        let r = |version: u64, status: &str| Release {
            id: format!("r{version}"),
            version,
            description: Some(format!("v{version}")),
            status: status.into(),
            current: None,
        };
        assert_eq!(release_verdict(&[], None), ReleaseVerdict::NoRelease);
        assert_eq!(release_verdict(&[], Some(3)), ReleaseVerdict::NotYet(None));
        // Any order: the highest version is the newest.
        let list = [r(12, "succeeded"), r(14, "pending"), r(13, "failed")];
        assert_eq!(
            release_verdict(&list, Some(11)),
            ReleaseVerdict::Pending(&list[1])
        );
        assert_eq!(
            release_verdict(&list, Some(14)),
            ReleaseVerdict::NotYet(Some(&list[1]))
        );
        // A failed release before a newer one that succeeded does not
        // matter: the newer one carries its config too.
        let list = [r(13, "failed"), r(14, "succeeded")];
        assert_eq!(
            release_verdict(&list, Some(12)),
            ReleaseVerdict::Succeeded(&list[1])
        );
        // ... but it is named: versions above the floor only, newest
        // excluded, oldest first.
        let list = [
            r(15, "succeeded"),
            r(13, "failed"),
            r(11, "failed"),
            r(14, "expired"),
            r(12, "succeeded"),
        ];
        let failed: Vec<u64> = failed_since(&list, Some(11))
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(failed, [13, 14]);
        assert!(
            failed_since(&list, None).is_empty(),
            "no floor, no run's own"
        );
        let newest_failed = [r(12, "succeeded"), r(13, "failed")];
        assert!(failed_since(&newest_failed, Some(11)).is_empty());
        for bad in ["failed", "expired", ""] {
            let list = [r(13, "succeeded"), r(14, bad)];
            assert_eq!(
                release_verdict(&list, None),
                ReleaseVerdict::Failed(&list[1])
            );
        }
    }

    fn formation(t: &str, q: u32, size: &str) -> Formation {
        Formation {
            process_type: t.into(),
            quantity: q,
            size: Some(size.into()),
            dyno_size: None,
            updated_at: None,
        }
    }

    #[test]
    fn scale_down_is_one_batch_of_running_types() {
        let j = sample_journal();
        let u = scale_down_updates(j.facts.as_ref().unwrap());
        assert_eq!(u.len(), 2);
        assert!(u.iter().all(|u| u.quantity == 0 && u.dyno_size.is_none()));
    }

    #[test]
    fn scale_up_sends_a_size_only_when_it_drifted() {
        let j = sample_journal();
        let facts = j.facts.as_ref().unwrap();
        let live = vec![
            formation("web", 0, "standard-2X"),
            formation("worker", 0, "performance-m"),
        ];
        let u = scale_up_updates(facts, &live);
        assert_eq!(u[0].quantity, 2);
        assert_eq!(u[0].dyno_size, None);
        assert_eq!(
            u[1].dyno_size,
            Some(DynoSizeRef {
                name: "standard-1X".into()
            })
        );
        let all = scale_up_updates(facts, &[]);
        assert!(all.iter().all(|u| u.dyno_size.is_some()));
    }

    #[test]
    fn formation_match_compares_quantity_and_size() {
        let j = sample_journal();
        let rec = &j.facts.as_ref().unwrap().formation;
        let mut live = vec![
            formation("web", 2, "Standard-2X"),
            formation("worker", 1, "standard-1X"),
            formation("release", 0, "standard-1X"),
        ];
        assert!(formation_matches(rec, &live));
        live[1].quantity = 0;
        assert!(!formation_matches(rec, &live));
        live[1].quantity = 1;
        live[0].size = Some("performance-l".into());
        assert!(!formation_matches(rec, &live));
        live[0].size = Some("standard-2X".into());
        live.push(formation("clock", 1, "basic"));
        assert!(!formation_matches(rec, &live));
    }

    #[test]
    fn same_database_ignores_credentials_but_not_host_port_or_path() {
        let a = "postgres://u1:p1@db.example.com:5432/d1";
        assert!(same_database(a, a));
        assert!(same_database(a, "postgresql://other:pw@DB.example.com/d1"));
        assert!(!same_database(a, "postgres://u1:p1@db.example.com:5433/d1"));
        assert!(!same_database(a, "postgres://u1:p1@db.example.com:5432/d2"));
        assert!(!same_database(a, "redis://u1:p1@db.example.com:5432/d1"));
        assert!(!same_database(a, "not a url"));
    }

    #[test]
    fn rebind_candidates_skip_attachment_owned_vars() {
        let src = "postgres://u:p@h:5432/d";
        let config: BTreeMap<String, String> = [
            ("DATABASE_URL", src),
            ("HEROKU_POSTGRESQL_RED_URL", src),
            ("COPY_URL", src),
            ("SAME_HOST", "postgres://x:y@h/d"),
            ("OTHER", "postgres://u:p@h:5432/other"),
            ("PLAIN", "hello"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let owned: BTreeSet<String> = ["DATABASE_URL", "HEROKU_POSTGRESQL_RED_URL"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            rebind_candidates(&config, src, &owned),
            vec!["COPY_URL".to_string(), "SAME_HOST".to_string()]
        );
    }

    fn transfer() -> Transfer {
        Transfer {
            uuid: "u".into(),
            num: Some(1),
            from_name: None,
            to_name: None,
            created_at: None,
            started_at: Some("then".into()),
            finished_at: None,
            canceled_at: None,
            succeeded: None,
            processed_bytes: Some(10),
            source_bytes: Some(100),
            warnings: None,
            logs: vec![],
        }
    }

    #[test]
    fn copy_verdicts() {
        let mut t = transfer();
        assert_eq!(
            copy_verdict(&t),
            CopyVerdict::Running {
                processed: 10,
                total: Some(100)
            }
        );
        t.finished_at = Some("now".into());
        t.succeeded = Some(true);
        assert_eq!(
            copy_verdict(&t),
            CopyVerdict::Succeeded {
                processed: 10,
                warnings: 0
            }
        );
        t.warnings = Some(3);
        assert_eq!(
            copy_verdict(&t),
            CopyVerdict::Succeeded {
                processed: 10,
                warnings: 3
            }
        );
        t.succeeded = Some(false);
        t.logs = (0..8)
            .map(|i| crate::heroku::types::TransferLog {
                created_at: None,
                message: format!("line {i} postgres://u:secret@h/d"),
            })
            .collect();
        match copy_verdict(&t) {
            CopyVerdict::Failed { last_logs, .. } => {
                assert_eq!(last_logs.len(), 5);
                assert!(last_logs[4].starts_with("line 7"));
                assert!(!last_logs.iter().any(|l| l.contains("secret")));
            }
            other => panic!("{other:?}"),
        }
        t.succeeded = None;
        assert!(matches!(copy_verdict(&t), CopyVerdict::Failed { .. }));
    }

    #[test]
    fn a_transfer_not_started_is_queued_not_stalled() {
        let mut t = transfer();
        t.started_at = None;
        t.processed_bytes = Some(0);
        assert_eq!(copy_verdict(&t), CopyVerdict::Queued);
        // Bytes without started_at: running (an API that omits the field).
        t.processed_bytes = Some(5);
        assert!(matches!(copy_verdict(&t), CopyVerdict::Running { .. }));
        t.canceled_at = Some("now".into());
        assert!(matches!(copy_verdict(&t), CopyVerdict::Failed { .. }));
        assert_eq!(transfer_name(Some(7)).as_deref(), Some("c007"));
        assert_eq!(transfer_name(Some(1234)).as_deref(), Some("c1234"));
    }

    #[test]
    fn silence_is_reported_after_the_limit_then_at_doublings() {
        let s = Duration::from_secs;
        let mut w = StallWatch::new(s(10));
        assert_eq!(w.silence(0, s(0)), None);
        assert_eq!(w.silence(0, s(10)), None);
        assert_eq!(w.silence(0, s(11)), Some(s(11)));
        // Not again at every poll: next after twice the limit.
        assert_eq!(w.silence(0, s(15)), None);
        assert_eq!(w.silence(0, s(21)), Some(s(21)));
        assert_eq!(w.silence(0, s(35)), None);
        assert_eq!(w.silence(0, s(41)), Some(s(41)));
        // Progress resets it.
        assert_eq!(w.silence(5, s(42)), None);
        assert_eq!(w.silence(5, s(51)), None);
        assert_eq!(w.silence(5, s(53)), Some(s(11)));
    }

    #[test]
    fn polls_back_off_and_copy_polls_follow_the_elapsed_time() {
        let cap = Duration::from_secs(5);
        assert_eq!(
            backoff_poll(Duration::ZERO, cap),
            Duration::from_millis(250)
        );
        assert!(backoff_poll(Duration::from_secs(30), cap) > Duration::from_millis(500));
        assert_eq!(backoff_poll(Duration::from_secs(3600), cap), cap);
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(30);
        assert_eq!(copy_poll(Duration::ZERO, min, max), min);
        assert_eq!(
            copy_poll(Duration::from_secs(10), min, max),
            Duration::from_secs(1)
        );
        assert_eq!(copy_poll(Duration::from_secs(3600), min, max), max);
    }

    /// The look after the end, for a copy that ends at `end`: how late it
    /// is noticed, and how many looks it took.
    fn simulate(end: Duration) -> (Duration, u32) {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(30));
        let mut t = Duration::ZERO;
        let mut polls = 1;
        while t < end {
            t += copy_poll(t, min, max);
            polls += 1;
        }
        (t - end, polls)
    }

    #[test]
    fn the_end_is_noticed_within_a_tenth_of_the_copy_whatever_its_length() {
        for ms in [50u64, 900, 3_000, 17_000, 120_000, 600_000, 3_600_000] {
            let end = Duration::from_millis(ms);
            let (late, _) = simulate(end);
            let bound = end
                .mul_f64(COPY_POLL_FRACTION)
                .clamp(Duration::from_millis(100), Duration::from_secs(30));
            assert!(late <= bound, "{ms} ms: {late:?} late, bound {bound:?}");
        }
        let (_, polls) = simulate(Duration::from_secs(3600));
        assert!(polls <= 200, "{polls} polls for an hour");
    }

    #[test]
    fn plan_names_are_normalised_or_refused() {
        assert_eq!(
            normalise_plan("essential-0").unwrap(),
            "heroku-postgresql:essential-0"
        );
        assert_eq!(
            normalise_plan("heroku-postgresql:standard-0").unwrap(),
            "heroku-postgresql:standard-0"
        );
        assert!(normalise_plan("heroku-redis:mini").is_err());
        assert!(normalise_plan("heroku-postgresql:").is_err());
        assert!(normalise_plan("heroku-postgresql:Bad Plan").is_err());
    }

    #[test]
    fn app_names() {
        assert!(valid_app_name("my-app-1"));
        assert!(!valid_app_name("My-App"));
        assert!(!valid_app_name("ab"));
        assert!(!valid_app_name("1app"));
        assert!(!valid_app_name("app-"));
        assert!(!valid_app_name(&"a".repeat(31)));
    }
}
