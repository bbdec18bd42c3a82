//! The engine: a migration method is data — a [`Plan`] of [`StepDef`]s —
//! and one [`Runner`] runs any plan forward or back, enforcing the
//! journaling protocol so that no step body can forget it.
//!
//! A step is defined once: its id and words, whether it reads, waits or
//! writes, its forward action, how to reconcile it when its outcome is in
//! doubt, its undo (registered with the action, as Oxide's steno does), and
//! whether it is a point past which rollback needs `--force` or cannot go.
//! For a step that writes, the definition *prepares* the request (reads and
//! decisions allowed) and hands the runner a [`Request`]; the runner
//! journals the intent, reaches the crash points, sends it, and journals
//! the outcome. The one side effect is only reachable through the runner.
//!
//! The engine knows nothing of Heroku: a method's context `C` and its
//! journal type `J` are parameters. Its part of the journal is a
//! [`Log`] reached through [`Journaled`]; persistence is a [`Store`]
//! (both defined with the journal, below the engine).

pub mod runner;

use std::time::Duration;

use crate::error::Error;

pub use crate::journal::log::{
    Direction, EventKind, Journaled, Log, Outcome, StepRecord, StepState, Store, Transition,
};
pub use runner::{Io, Runner, Settings as RunnerSettings};

/// What a step does to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Only reads (preflight, verify): nothing to be in doubt about.
    Reads,
    /// Waits for something to happen (polls); nothing to be in doubt about.
    Waits,
    /// Sends one request that changes something: its intent is journaled
    /// before and its outcome after, and a lost answer is reconciled.
    Writes,
}

/// What a step (or undo) produced: words for people and the journal, and
/// an output kept under the step's id for later steps and `status`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Done {
    pub detail: String,
    pub output: Option<serde_json::Value>,
}

impl Done {
    pub fn words(detail: impl Into<String>) -> Done {
        Done {
            detail: detail.into(),
            output: None,
        }
    }

    pub fn with<T: serde::Serialize>(detail: impl Into<String>, output: &T) -> Done {
        Done {
            detail: detail.into(),
            output: serde_json::to_value(output).ok(),
        }
    }
}

/// How a step (or undo) failed.
#[derive(Debug)]
pub enum StepError {
    /// A local failure (journal write): stop at once, journal untouched.
    Local(Error),
    /// Heroku refused the run's first change: nothing was changed.
    Refused { reason: String, fix: String },
    /// Ctrl-C or SIGTERM: stop at the next safe point.
    Interrupted,
    /// A definite failure: the request did not act (or the wait failed).
    Definite(String),
    /// The request may or may not have acted (lost answer, timeout).
    Doubt(String),
    /// A definite failure, with what the step found (kept as its output).
    FailedWith {
        reason: String,
        keep: serde_json::Value,
    },
    /// What an earlier step (`from`) started has failed: run the plan
    /// again from that step (a failed copy: start a new transfer).
    Redo { from: &'static str, why: String },
}

impl From<Error> for StepError {
    fn from(e: Error) -> StepError {
        StepError::Local(e)
    }
}

/// The one request of a step that writes, prepared: its intent (journaled
/// before it is sent) and the sending itself, which only the runner calls.
/// The sending closure owns what it sends (the body decided in prepare) and
/// gets the context again when called.
pub struct Request<C, J> {
    pub intent: String,
    #[allow(clippy::type_complexity)]
    pub send: Box<dyn FnOnce(&mut C, &mut Io<'_, J>) -> Result<Done, StepError>>,
}

impl<C, J> Request<C, J> {
    pub fn new(
        intent: impl Into<String>,
        send: impl FnOnce(&mut C, &mut Io<'_, J>) -> Result<Done, StepError> + 'static,
    ) -> Request<C, J> {
        Request {
            intent: intent.into(),
            send: Box::new(send),
        }
    }
}

/// Prepares a write's one request (see [`Forward::Write`]).
pub type Prepare<C, J> = fn(&mut C, &mut Io<'_, J>) -> Result<Request<C, J>, StepError>;

/// A step's forward action.
pub enum Forward<C, J> {
    /// Reads or waits: run as a whole between a start and an end record.
    Run(fn(&mut C, &mut Io<'_, J>) -> Result<Done, StepError>),
    /// Writes: prepare the request (reads, checks and waits allowed, and
    /// keeping what they found; nothing sent), and the runner sends it
    /// between intent and outcome.
    Write(Prepare<C, J>),
}

/// A step's undo, registered with its action.
pub enum Undo<C, J> {
    /// Nothing to undo (reads and waits).
    Nothing,
    /// The compensating action. It must be safe to run again: it checks
    /// the live app first or is idempotent, so an undo whose answer was
    /// lost is simply run again.
    Compensate {
        words: &'static str,
        /// Whether it polls (waits for something), so that the crash
        /// matrix kills it mid-wait too.
        polls: bool,
        run: fn(&mut C, &mut Io<'_, J>) -> Result<Undone, StepError>,
    },
}

/// What an undo found.
#[derive(Debug, Clone, PartialEq)]
pub enum Undone {
    /// It acted.
    Done(String),
    /// There was nothing to undo.
    Skipped(String),
}

/// A point past which rollback is no longer a clean undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoReturn {
    /// Why, in words that end the refusal's first sentence.
    pub why: &'static str,
    /// Whether `--force` lets rollback go past it anyway.
    pub force_allows: bool,
}

/// How to reconcile a write whose outcome is in doubt: `Some` if the live
/// app shows it took effect (with what it produced), `None` if not.
pub type Reconcile<C, J> = fn(&mut C, &J) -> Result<Option<Done>, StepError>;

/// One step, defined once.
pub struct StepDef<C, J> {
    /// Journaled and shown (`create-target`); unique in its plan.
    pub id: &'static str,
    /// What it does, in a few words for people.
    pub words: &'static str,
    pub effect: Effect,
    /// Why the step is not needed for this run (`None`: it runs).
    pub skip: fn(&J) -> Option<String>,
    pub forward: Forward<C, J>,
    /// Only for [`Effect::Writes`].
    pub reconcile: Option<Reconcile<C, J>>,
    pub undo: Undo<C, J>,
    /// Once this step has acted (done or in doubt, not skipped), rollback
    /// needs `--force` or is impossible.
    pub no_return: Option<NoReturn>,
    /// What the step changes about the app, as (aspect, value) pairs
    /// (`("maintenance", "on")`); its undo puts back the values before it.
    /// `status` and the drift check replay these (see [`Plan::expected`]).
    pub sets: &'static [(&'static str, &'static str)],
}

impl<C, J> StepDef<C, J> {
    pub fn has_side_effect(&self) -> bool {
        self.effect == Effect::Writes
    }

    pub fn undo_words(&self) -> &'static str {
        match &self.undo {
            Undo::Nothing => "nothing to undo",
            Undo::Compensate { words, .. } => words,
        }
    }
}

/// A method and its steps, in order.
pub struct Plan<C, J> {
    /// The method's name, journaled (`copy`).
    pub method: &'static str,
    pub steps: Vec<StepDef<C, J>>,
    /// The step that takes the app down and the one that brings it back:
    /// the steps from the first to the last are the maintenance window.
    pub window: (&'static str, &'static str),
}

impl<C, J> Plan<C, J> {
    pub fn ids(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.id).collect()
    }

    pub fn index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    pub fn step(&self, id: &str) -> Option<&StepDef<C, J>> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Whether the step runs while the app is down.
    pub fn in_window(&self, id: &str) -> bool {
        match (
            self.index(id),
            self.index(self.window.0),
            self.index(self.window.1),
        ) {
            (Some(i), Some(a), Some(b)) => i >= a && i <= b,
            _ => false,
        }
    }

    /// Every crash point of a forward run, in the order reached: for each
    /// step after the first, after its intent, at each poll of a wait, and
    /// on both sides of its outcome. Generated, so a new step is killed at
    /// both sides of its side effect without anyone listing it.
    pub fn forward_crash_points(&self) -> Vec<String> {
        let mut v = Vec::new();
        for s in self.steps.iter().skip(1) {
            v.push(format!("after-intent:{}", s.id));
            if s.effect == Effect::Waits {
                v.push(format!("polling:{}", s.id));
            }
            v.push(format!("before-outcome:{}", s.id));
            v.push(format!("after-outcome:{}", s.id));
        }
        v
    }

    /// Every crash point of a rollback from a completed run, in order.
    pub fn undo_crash_points(&self) -> Vec<String> {
        let mut v = Vec::new();
        for s in self.steps.iter().rev() {
            let Undo::Compensate { polls, .. } = s.undo else {
                continue;
            };
            v.push(format!("undo-after-intent:{}", s.id));
            if polls {
                v.push(format!("polling:{}", s.id));
            }
            v.push(format!("undo-before-outcome:{}", s.id));
            v.push(format!("undo-after-outcome:{}", s.id));
        }
        v
    }

    /// The point of no return the journal has passed, if any: the latest
    /// step with one that acted (done or in doubt) and was not skipped.
    pub fn passed_no_return(&self, log: &Log) -> Option<(&'static str, NoReturn)> {
        if log.direction != Direction::Forward {
            return None;
        }
        self.steps.iter().rev().find_map(|s| {
            let nr = s.no_return?;
            let acted = matches!(
                log.state(s.id),
                Some(StepState::Done) | Some(StepState::Running)
            );
            acted.then_some((s.id, nr))
        })
    }
}

impl<C, J> Plan<C, J> {
    /// Replay the log to find what the app should look like now: start
    /// from `initial`, apply each step that is done (in doubt: unknown),
    /// then each undo in reverse (putting back the values before the
    /// step). `None` means unknown (a request in doubt).
    pub fn expected(
        &self,
        log: &Log,
        initial: &[(&'static str, &'static str)],
    ) -> std::collections::BTreeMap<&'static str, Option<&'static str>> {
        let mut now: std::collections::BTreeMap<&'static str, Option<&'static str>> =
            initial.iter().map(|(k, v)| (*k, Some(*v))).collect();
        let mut before = Vec::new();
        for s in &self.steps {
            let state = log.state(s.id);
            let value_of = |v: &'static str| match state {
                Some(StepState::Done) => Some(Some(v)),
                Some(StepState::Running) if s.has_side_effect() => Some(None),
                _ => None,
            };
            let mut prev = Vec::new();
            for (k, v) in s.sets {
                if let Some(new) = value_of(v) {
                    prev.push((*k, now.get(k).copied().flatten()));
                    now.insert(*k, new);
                }
            }
            before.push(prev);
        }
        for (s, prev) in self.steps.iter().zip(before).rev() {
            let undo = log.record(s.id).and_then(|r| r.undo);
            for (k, old) in prev {
                match undo {
                    Some(StepState::Done) => {
                        now.insert(k, old);
                    }
                    Some(StepState::Running) => {
                        now.insert(k, None);
                    }
                    _ => {}
                }
            }
        }
        now
    }
}

/// What the forward runner must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run this step (pending, failed, or a wait that was interrupted).
    Run(usize),
    /// This write's intent was journaled but not its outcome.
    InDoubt(usize),
    /// Every step is done or skipped.
    Finished,
}

/// The next forward action: the first step not done or skipped.
pub fn next_forward<C, J>(plan: &Plan<C, J>, log: &Log) -> Next {
    for (i, def) in plan.steps.iter().enumerate() {
        match log.state(def.id) {
            Some(StepState::Done) | Some(StepState::Skipped) => continue,
            Some(StepState::Running) if def.has_side_effect() => return Next::InDoubt(i),
            _ => return Next::Run(i),
        }
    }
    Next::Finished
}

/// The next undo: the latest step whose forward action took effect (or may
/// have) and whose undo is not finished yet.
pub fn next_rollback<C, J>(plan: &Plan<C, J>, log: &Log) -> Option<usize> {
    plan.steps.iter().enumerate().rev().find_map(|(i, def)| {
        let r = log.record(def.id)?;
        let may_have_acted = matches!(
            r.state,
            StepState::Done | StepState::Running | StepState::Failed
        );
        let finished = matches!(r.undo, Some(StepState::Done) | Some(StepState::Skipped));
        let has_undo = !matches!(def.undo, Undo::Nothing);
        (may_have_acted && !finished && has_undo).then_some(i)
    })
}

/// How long to sleep in one slice while pausing, so that an interrupt is
/// noticed promptly.
const PAUSE_SLICE: Duration = Duration::from_millis(50);

impl<C, J> Plan<C, J> {
    /// How the plan breaks the rules every plan keeps, in words (empty
    /// when it keeps them): ids are unique; both ends of the window are
    /// steps, in order; a write can be reconciled and is undone unless it
    /// is a point of no return that `--force` cannot pass; a read or wait
    /// has neither; a point of no return writes. The registry checks every
    /// method's plan against them once.
    pub fn problems(&self) -> Vec<String> {
        let mut v = Vec::new();
        for s in &self.steps {
            if self.steps.iter().filter(|o| o.id == s.id).count() > 1 {
                v.push(format!("{}: the id is not unique", s.id));
            }
            let undone = !matches!(s.undo, Undo::Nothing);
            let final_write = s.no_return.is_some_and(|n| !n.force_allows);
            if s.has_side_effect() {
                if s.reconcile.is_none() {
                    v.push(format!("{}: a write without a reconciliation", s.id));
                }
                if !undone && !final_write {
                    v.push(format!("{}: a write without an undo", s.id));
                }
            } else {
                if s.reconcile.is_some() || undone {
                    v.push(format!("{}: a read with a reconciliation or an undo", s.id));
                }
                if s.no_return.is_some() {
                    v.push(format!(
                        "{}: a point of no return that writes nothing",
                        s.id
                    ));
                }
            }
        }
        match (self.index(self.window.0), self.index(self.window.1)) {
            (Some(a), Some(b)) if a < b => {}
            _ => v.push(format!(
                "the window {} → {} is not two steps in order",
                self.window.0, self.window.1
            )),
        }
        v
    }
}

/// The common shapes of a step (as steno's `new_action` and
/// `new_action_noop_undo`): a read or a wait, which changes nothing and
/// has nothing to reconcile or undo, and a write with its reconciliation
/// and its undo. The rest is set with the builders below.
impl<C, J> StepDef<C, J> {
    fn plain(
        id: &'static str,
        words: &'static str,
        effect: Effect,
        forward: Forward<C, J>,
    ) -> Self {
        StepDef {
            id,
            words,
            effect,
            skip: |_| None,
            forward,
            reconcile: None,
            undo: Undo::Nothing,
            no_return: None,
            sets: &[],
        }
    }

    /// A step that reads once and changes nothing.
    pub fn read(
        id: &'static str,
        words: &'static str,
        run: fn(&mut C, &mut Io<'_, J>) -> Result<Done, StepError>,
    ) -> Self {
        StepDef::plain(id, words, Effect::Reads, Forward::Run(run))
    }

    /// A step that waits (looks again and again) and changes nothing.
    pub fn wait(
        id: &'static str,
        words: &'static str,
        run: fn(&mut C, &mut Io<'_, J>) -> Result<Done, StepError>,
    ) -> Self {
        StepDef::plain(id, words, Effect::Waits, Forward::Run(run))
    }

    /// A step that sends one request: `prepare` decides it, `reconcile`
    /// settles a lost answer, `undo` compensates.
    pub fn write(
        id: &'static str,
        words: &'static str,
        prepare: Prepare<C, J>,
        reconcile: Reconcile<C, J>,
        undo: Undo<C, J>,
    ) -> Self {
        StepDef {
            reconcile: Some(reconcile),
            undo,
            ..StepDef::plain(id, words, Effect::Writes, Forward::Write(prepare))
        }
    }

    /// Skipped when `why` says so.
    pub fn skipped_when(mut self, why: fn(&J) -> Option<String>) -> Self {
        self.skip = why;
        self
    }

    /// What it changes about the app (see [`StepDef::sets`]).
    pub fn setting(mut self, sets: &'static [(&'static str, &'static str)]) -> Self {
        self.sets = sets;
        self
    }

    /// A point of no return once it has acted.
    pub fn past_no_return(mut self, no_return: NoReturn) -> Self {
        self.no_return = Some(no_return);
        self
    }
}
