//! The runner against scripted steps: no sandbox, no HTTP. A `World`
//! stands for the remote service: it records every request it receives
//! and can lose an answer (after acting or before), fail, or refuse.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::*;
use crate::engine::{Effect, Log, Request, Undone};

#[derive(Default)]
struct World {
    /// Every request received, in order (`a`, `undo:a`).
    sent: Vec<String>,
    /// What has taken effect.
    applied: BTreeSet<String>,
    /// Lose the answer to the next N requests of a step, after acting.
    lose_after: BTreeMap<&'static str, u32>,
    /// Lose the answer to the next N requests of a step, before acting.
    lose_before: BTreeMap<&'static str, u32>,
    /// Fail the next request of a step definitely.
    fail: BTreeSet<&'static str>,
    /// Refuse the next request of a step.
    refuse: BTreeSet<&'static str>,
    /// Set the interrupt flag when this step's request is sent.
    interrupt_at: Option<&'static str>,
    flag: Option<Arc<AtomicBool>>,
    /// What the journal said when each request was sent: (state, last event kind).
    seen_at_send: Vec<(String, StepState, EventKind)>,
    polls: u32,
}

impl World {
    fn request(&mut self, id: &'static str, io: &Io<'_, TJ>) -> Result<Done, StepError> {
        let log = &io.journal().log;
        self.seen_at_send.push((
            id.to_string(),
            log.state(id).unwrap(),
            log.events.last().unwrap().kind,
        ));
        self.sent.push(id.to_string());
        if self.interrupt_at == Some(id) {
            if let Some(f) = &self.flag {
                f.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        if self.refuse.remove(id) {
            return Err(StepError::Refused {
                reason: "no such plan".into(),
                fix: "pick another".into(),
            });
        }
        if self.fail.remove(id) {
            return Err(StepError::Definite("500 then gave up".into()));
        }
        if let Some(n) = self.lose_before.get_mut(id).filter(|n| **n > 0) {
            *n -= 1;
            return Err(StepError::Doubt("connection reset".into()));
        }
        self.applied.insert(id.to_string());
        if let Some(n) = self.lose_after.get_mut(id).filter(|n| **n > 0) {
            *n -= 1;
            return Err(StepError::Doubt("timed out".into()));
        }
        Ok(Done::with(
            format!("did {id}"),
            &serde_json::json!({ "id": id }),
        ))
    }
}

#[derive(Debug, Clone)]
struct TJ {
    log: Log,
}

impl Journaled for TJ {
    fn log(&self) -> &Log {
        &self.log
    }
    fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }
}

struct Mem {
    j: TJ,
    writes: usize,
}

impl Store<TJ> for Mem {
    fn journal(&self) -> &TJ {
        &self.j
    }
    fn update(&mut self, change: &mut dyn FnMut(&mut TJ)) -> Result<(), Error> {
        change(&mut self.j);
        self.writes += 1;
        Ok(())
    }
}

macro_rules! write_step {
    ($id:literal, $no_return:expr) => {{
        fn prepare(_: &mut World, _: &mut Io<'_, TJ>) -> Result<Request<World, TJ>, StepError> {
            Ok(Request::new(concat!("send ", $id), |w: &mut World, io| {
                w.request($id, io)
            }))
        }
        fn reconcile(w: &mut World, _: &TJ) -> Result<Option<Done>, StepError> {
            Ok(w.applied
                .contains($id)
                .then(|| Done::words(concat!("found ", $id))))
        }
        fn undo(w: &mut World, _: &mut Io<'_, TJ>) -> Result<Undone, StepError> {
            w.sent.push(concat!("undo:", $id).to_string());
            Ok(if w.applied.remove($id) {
                Undone::Done(concat!("undid ", $id).into())
            } else {
                Undone::Skipped(concat!($id, " had not acted").into())
            })
        }
        fn skip(_: &TJ) -> Option<String> {
            None
        }
        StepDef {
            id: $id,
            words: concat!("step ", $id),
            effect: Effect::Writes,
            skip,
            forward: Forward::Write(prepare),
            reconcile: Some(reconcile),
            undo: Undo::Compensate {
                words: concat!("undo ", $id),
                polls: false,
                run: undo,
            },
            no_return: $no_return,
            sets: &[],
        }
    }};
}

fn wait_step() -> StepDef<World, TJ> {
    fn run(w: &mut World, io: &mut Io<'_, TJ>) -> Result<Done, StepError> {
        for _ in 0..3 {
            w.polls += 1;
            io.polled();
            io.pause(std::time::Duration::from_millis(1))?;
        }
        Ok(Done::words("waited"))
    }
    fn skip(_: &TJ) -> Option<String> {
        None
    }
    StepDef {
        id: "wait",
        words: "wait for it",
        effect: Effect::Waits,
        skip,
        forward: Forward::Run(run),
        reconcile: None,
        undo: Undo::Nothing,
        no_return: None,
        sets: &[],
    }
}

fn skipped_step() -> StepDef<World, TJ> {
    fn run(_: &mut World, _: &mut Io<'_, TJ>) -> Result<Done, StepError> {
        panic!("a skipped step must not run")
    }
    fn skip(_: &TJ) -> Option<String> {
        Some("not needed here".into())
    }
    StepDef {
        id: "optional",
        words: "only sometimes",
        effect: Effect::Waits,
        skip,
        forward: Forward::Run(run),
        reconcile: None,
        undo: Undo::Nothing,
        no_return: None,
        sets: &[],
    }
}

const COMMIT: NoReturn = NoReturn {
    why: "the app has run on the new database",
    force_allows: true,
};

fn plan() -> Plan<World, TJ> {
    Plan {
        method: "test",
        steps: vec![
            write_step!("a", None),
            wait_step(),
            skipped_step(),
            write_step!("b", None),
            write_step!("c", Some(COMMIT)),
        ],
        window: ("a", "b"),
    }
}

fn store(p: &Plan<World, TJ>) -> Mem {
    Mem {
        j: TJ {
            log: Log::new(p.method, &p.ids()),
        },
        writes: 0,
    }
}

fn settings() -> Settings {
    Settings {
        max_doubt_retries: 3,
        ..Settings::default()
    }
}

fn run(p: &Plan<World, TJ>, s: Settings, w: &mut World, m: &mut Mem) -> Result<(), Halt> {
    Runner::new(p, s, &|_| {}).forward(w, m)
}

#[test]
fn runs_every_step_in_order_with_the_intent_journaled_before_each_request() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    run(&p, settings(), &mut w, &mut m).unwrap();
    assert_eq!(w.sent, ["a", "b", "c"]);
    assert_eq!(w.polls, 3);
    for (id, state, kind) in &w.seen_at_send {
        assert_eq!(*state, StepState::Running, "{id} sent before its intent");
        assert_eq!(*kind, EventKind::Intent, "{id} sent before its intent");
    }
    let log = &m.j.log;
    assert_eq!(log.outcome, Outcome::Completed);
    assert_eq!(log.skip_reason("optional"), Some("not needed here"));
    assert_eq!(log.output::<serde_json::Value>("b").unwrap()["id"], "b");
    // Each request's intent precedes its outcome in the history.
    let kinds: Vec<_> = log
        .events
        .iter()
        .filter(|e| e.step.as_deref() == Some("a"))
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [EventKind::Intent, EventKind::Outcome]);
}

#[test]
fn a_lost_answer_after_acting_is_reconciled_not_sent_again() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    w.lose_after.insert("b", 1);
    run(&p, settings(), &mut w, &mut m).unwrap();
    assert_eq!(w.sent, ["a", "b", "c"], "b must not be sent twice");
    assert_eq!(w.lose_after["b"], 0, "the fault fired");
    let b = m.j.log.record("b").unwrap();
    assert_eq!(b.state, StepState::Done);
    assert!(m
        .j
        .log
        .events
        .iter()
        .any(|e| e.detail == "reconciled: found b"));
}

#[test]
fn a_lost_request_that_did_not_act_is_sent_again() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    w.lose_before.insert("a", 2);
    run(&p, settings(), &mut w, &mut m).unwrap();
    assert_eq!(w.sent, ["a", "a", "a", "b", "c"]);
    assert_eq!(w.lose_before["a"], 0, "the fault fired");
}

#[test]
fn doubts_are_retried_a_bounded_number_of_times_then_left_in_doubt() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    w.lose_before.insert("a", 100);
    let halt = run(&p, settings(), &mut w, &mut m).unwrap_err();
    assert!(matches!(halt, Halt::Stopped { step: "a", .. }), "{halt:?}");
    assert_eq!(w.sent.len(), 4, "one try and three retries");
    assert_eq!(m.j.log.state("a"), Some(StepState::Running));
    assert_eq!(m.j.log.outcome, Outcome::Stopped);
    // A later resume reconciles first, then sends.
    w.lose_before.clear();
    run(&p, settings(), &mut w, &mut m).unwrap();
    assert_eq!(m.j.log.outcome, Outcome::Completed);
}

#[test]
fn a_definite_failure_stops_and_resume_retries_that_step() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    w.fail.insert("b");
    let halt = run(&p, settings(), &mut w, &mut m).unwrap_err();
    assert!(matches!(halt, Halt::Stopped { step: "b", .. }), "{halt:?}");
    assert_eq!(m.j.log.state("b"), Some(StepState::Failed));
    assert_eq!(m.j.log.state("a"), Some(StepState::Done));
    run(&p, settings(), &mut w, &mut m).unwrap();
    assert_eq!(w.sent, ["a", "b", "b", "c"]);
}

#[test]
fn a_refusal_ends_the_run_as_refused() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    w.refuse.insert("a");
    let halt = run(&p, settings(), &mut w, &mut m).unwrap_err();
    assert!(matches!(halt, Halt::Refused { step: "a", .. }), "{halt:?}");
    assert_eq!(m.j.log.outcome, Outcome::Refused);
}

#[test]
fn stop_before_pauses_with_the_step_untouched() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    let s = Settings {
        stop_before: Some("b".into()),
        ..settings()
    };
    let halt = run(&p, s, &mut w, &mut m).unwrap_err();
    assert!(matches!(halt, Halt::Paused { step: "b" }), "{halt:?}");
    assert_eq!(m.j.log.state("b"), Some(StepState::Pending));
    assert_eq!(m.j.log.outcome, Outcome::Stopped);
    assert_eq!(w.sent, ["a"]);
}

#[test]
fn an_interrupt_stops_at_the_next_safe_point() {
    let p = plan();
    let mut m = store(&p);
    let flag = Arc::new(AtomicBool::new(false));
    let mut w = World {
        interrupt_at: Some("a"),
        flag: Some(flag.clone()),
        ..World::default()
    };
    let s = Settings {
        interrupt: Some(flag),
        ..settings()
    };
    let halt = run(&p, s, &mut w, &mut m).unwrap_err();
    // The request in flight finished and was journaled; the wait noticed.
    assert_eq!(m.j.log.state("a"), Some(StepState::Done));
    assert!(
        matches!(halt, Halt::Stopped { step: "wait", .. }),
        "{halt:?}"
    );
    assert_eq!(w.sent, ["a"]);
}

#[test]
fn rollback_undoes_what_acted_latest_first() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    w.fail.insert("b");
    run(&p, settings(), &mut w, &mut m).unwrap_err();
    Runner::new(&p, settings(), &|_| {})
        .rollback(&mut w, &mut m)
        .unwrap();
    // b failed definitely, but its undo still runs (and finds nothing).
    assert_eq!(w.sent, ["a", "b", "undo:b", "undo:a"]);
    assert!(w.applied.is_empty());
    assert_eq!(m.j.log.outcome, Outcome::RolledBack);
    assert_eq!(m.j.log.record("b").unwrap().undo, Some(StepState::Skipped));
    assert_eq!(m.j.log.record("a").unwrap().undo, Some(StepState::Done));
    assert_eq!(m.j.log.record("c").unwrap().undo, None);
}

#[test]
fn rollback_past_a_point_of_no_return_needs_force_where_allowed() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    run(&p, settings(), &mut w, &mut m).unwrap();
    let halt = Runner::new(&p, settings(), &|_| {})
        .rollback(&mut w, &mut m)
        .unwrap_err();
    assert!(
        matches!(halt, Halt::PastNoReturn { step: "c", .. }),
        "{halt:?}"
    );
    assert_eq!(m.j.log.direction, Direction::Forward, "nothing changed");
    let forced = Settings {
        force: true,
        ..settings()
    };
    Runner::new(&p, forced, &|_| {})
        .rollback(&mut w, &mut m)
        .unwrap();
    assert_eq!(w.sent[3..], ["undo:c", "undo:b", "undo:a"]);
}

#[test]
fn a_point_of_no_return_that_force_cannot_pass() {
    let mut p = plan();
    p.steps[4].no_return = Some(NoReturn {
        why: "the old server is gone",
        force_allows: false,
    });
    let mut m = store(&p);
    let mut w = World::default();
    run(&p, settings(), &mut w, &mut m).unwrap();
    let forced = Settings {
        force: true,
        ..settings()
    };
    let halt = Runner::new(&p, forced, &|_| {})
        .rollback(&mut w, &mut m)
        .unwrap_err();
    assert!(matches!(halt, Halt::PastNoReturn { .. }), "{halt:?}");
}

#[test]
fn a_lost_undo_answer_is_retried() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    w.fail.insert("b");
    run(&p, settings(), &mut w, &mut m).unwrap_err();
    // An undo that fails with a doubt is run again (undos are safe to repeat).
    fn flaky(w: &mut World, _: &mut Io<'_, TJ>) -> Result<Undone, StepError> {
        w.sent.push("undo:a".into());
        if w.sent.iter().filter(|s| *s == "undo:a").count() < 2 {
            return Err(StepError::Doubt("timed out".into()));
        }
        w.applied.remove("a");
        Ok(Undone::Done("undid a".into()))
    }
    let mut p = p;
    p.steps[0].undo = Undo::Compensate {
        words: "undo a",
        polls: false,
        run: flaky,
    };
    Runner::new(&p, settings(), &|_| {})
        .rollback(&mut w, &mut m)
        .unwrap();
    assert_eq!(w.sent, ["a", "b", "undo:b", "undo:a", "undo:a"]);
    assert_eq!(m.j.log.outcome, Outcome::RolledBack);
}

#[test]
fn the_crash_matrix_comes_from_the_plan() {
    let p = plan();
    let points = p.forward_crash_points();
    for id in ["a", "wait", "optional", "b", "c"] {
        for side in ["after-intent", "before-outcome", "after-outcome"] {
            let name = format!("{side}:{id}");
            assert_eq!(
                id == "a",
                !points.contains(&name),
                "{name}: the first step (preflight) runs before the journal"
            );
        }
    }
    assert!(points.contains(&"polling:wait".to_string()));
    assert!(!points.contains(&"polling:b".to_string()));
    assert_eq!(
        p.undo_crash_points(),
        [
            "undo-after-intent:c",
            "undo-before-outcome:c",
            "undo-after-outcome:c",
            "undo-after-intent:b",
            "undo-before-outcome:b",
            "undo-after-outcome:b",
            "undo-after-intent:a",
            "undo-before-outcome:a",
            "undo-after-outcome:a",
        ]
    );
    assert!(p.in_window("wait") && p.in_window("b") && !p.in_window("c"));
}

#[test]
fn every_journal_write_is_persisted_through_the_store() {
    let p = plan();
    let mut m = store(&p);
    let mut w = World::default();
    run(&p, settings(), &mut w, &mut m).unwrap();
    // Begin and end of four steps, one skip, the completion: at least ten.
    assert!(m.writes >= 10, "{}", m.writes);
}
