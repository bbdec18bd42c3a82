//! The decisions' unit tests.

use std::time::Duration;

use super::*;
use crate::heroku::types::{Dyno, DynoSizeRef, Formation, Release, Transfer};
use std::collections::{BTreeMap, BTreeSet};

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
