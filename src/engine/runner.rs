//! One runner for both directions. It enforces, for every step of any
//! plan: intent journaled → request → outcome journaled; reconciliation of
//! a write whose outcome is in doubt before anything else; bounded retries
//! of lost answers; `--stop-before`; interrupts at safe points; crash points
//! on both sides of each side effect (named from the step's id, so a new
//! step gets them without anyone writing them); and the points of no
//! return of rollback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    next_forward, next_rollback, Direction, Done, Forward, Journaled, Next, NoReturn, Plan,
    StepDef, StepError, Store, Undo, Undone, PAUSE_SLICE,
};
use crate::error::Error;
use crate::journal::log::{EventKind, Outcome, StepState, Transition};

/// How a run of the runner ended short of finishing.
#[derive(Debug)]
pub enum Halt {
    /// Stopped before this step, as `--stop-before` asked.
    Paused { step: &'static str },
    /// Stopped at a resumable point; the journal says where and why.
    Stopped { step: &'static str, reason: String },
    /// The run's first change was refused: the run is over, nothing changed.
    Refused {
        step: &'static str,
        reason: String,
        fix: String,
    },
    /// Rollback refused: the run passed a point of no return.
    PastNoReturn {
        step: &'static str,
        no_return: NoReturn,
    },
    /// A local failure (the journal could not be written).
    Local(Error),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Halt {
        Halt::Local(e)
    }
}

/// What the runner tells whoever shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEvent<'a> {
    Started(&'static str),
    Skipped(&'static str, &'a str),
    Done(&'static str, &'a str),
    UndoStarted(&'static str, &'static str),
    UndoDone(&'static str, &'a str),
    UndoSkipped(&'static str, &'a str),
}

/// How one runner behaves.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Stop (resumably) before this step.
    pub stop_before: Option<String>,
    /// How often one process retries a request whose answer was lost
    /// before it stops and leaves the step in doubt.
    pub max_doubt_retries: u32,
    /// Set by Ctrl-C or SIGTERM.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// `--force`: rollback may pass a point of no return that allows it.
    pub force: bool,
}

/// What a step body may do besides its one request: read the journal,
/// keep notes and data in it, poll with pauses that notice an interrupt.
pub struct Io<'s, J> {
    store: &'s mut dyn Store<J>,
    step: &'static str,
    undoing: bool,
    interrupt: Option<&'s AtomicBool>,
}

impl<J> Io<'_, J> {
    pub fn journal(&self) -> &J {
        self.store.journal()
    }

    pub fn step(&self) -> &'static str {
        self.step
    }

    /// Keep a history entry about this step.
    pub fn note(&mut self, kind: EventKind, detail: &str) -> Result<(), Error>
    where
        J: Journaled,
    {
        let step = self.step;
        let at = crate::store::now();
        self.store
            .update(&mut |j: &mut J| j.log_mut().push_event(Some(step), kind, detail, &at))
    }

    /// Change the method's own data in the journal (not step states:
    /// those belong to the runner).
    pub fn update(&mut self, change: impl FnOnce(&mut J)) -> Result<(), Error> {
        let mut change = Some(change);
        self.store.update(&mut |j: &mut J| {
            if let Some(c) = change.take() {
                c(j)
            }
        })
    }

    /// Keep what this step (or, in a rollback, its undo) found so far.
    pub fn keep<T: serde::Serialize>(&mut self, output: &T) -> Result<(), Error>
    where
        J: Journaled,
    {
        let step = self.step;
        let undoing = self.undoing;
        let at = crate::store::now();
        let value = serde_json::to_value(output).ok();
        let mut illegal = None;
        self.store.update(&mut |j: &mut J| {
            if let Some(v) = value.clone() {
                let t = if undoing {
                    Transition::KeepUndo(v)
                } else {
                    Transition::Keep(v)
                };
                if let Err(e) = j.log_mut().apply(step, t, &at) {
                    illegal = Some(e);
                }
            }
        })?;
        match illegal {
            Some(e) => Err(Error::Internal(e.to_string())),
            None => Ok(()),
        }
    }

    /// Put `text` in this step's note (what `status` shows) and history.
    pub fn annotate(&mut self, text: &str) -> Result<(), Error>
    where
        J: Journaled,
    {
        let step = self.step;
        let at = crate::store::now();
        self.store.update(&mut |j: &mut J| {
            let log = j.log_mut();
            let _ = log.apply(step, Transition::Annotate(text.to_string()), &at);
            log.push_event(Some(step), EventKind::Note, text, &at);
        })
    }

    /// Call after each look at something being waited for: a crash point.
    pub fn polled(&self) {
        crate::crash::point(&format!("polling:{}", self.step));
    }

    pub fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Sleep between two polls, waking early with `Interrupted` when the
    /// run is asked to stop.
    pub fn pause(&self, d: Duration) -> Result<(), StepError> {
        let end = Instant::now() + d;
        loop {
            if self.interrupted() {
                return Err(StepError::Interrupted);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(PAUSE_SLICE));
        }
    }
}

/// Runs one plan.
pub struct Runner<'p, C, J> {
    plan: &'p Plan<C, J>,
    settings: Settings,
    watch: &'p dyn Fn(StepEvent<'_>),
}

const INTERRUPTED: &str =
    "interrupted (Ctrl-C or SIGTERM); the request in flight was finished and journaled";

impl<'p, C, J: Journaled> Runner<'p, C, J> {
    pub fn new(
        plan: &'p Plan<C, J>,
        settings: Settings,
        watch: &'p dyn Fn(StepEvent<'_>),
    ) -> Runner<'p, C, J> {
        Runner {
            plan,
            settings,
            watch,
        }
    }

    fn interrupted(&self) -> bool {
        self.settings
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    fn io<'s>(
        &'s self,
        store: &'s mut dyn Store<J>,
        step: &'static str,
        undoing: bool,
    ) -> Io<'s, J> {
        Io {
            store,
            step,
            undoing,
            interrupt: self.settings.interrupt.as_deref(),
        }
    }

    /// Apply a transition and an event in one journal write. A transition
    /// the state machine refuses is a bug: it stops the run, journal
    /// untouched.
    fn record(
        &self,
        store: &mut dyn Store<J>,
        id: &'static str,
        t: Option<Transition>,
        event: Option<(EventKind, &str)>,
        outcome: Option<Outcome>,
    ) -> Result<(), Error> {
        let at = crate::store::now();
        let mut illegal = None;
        let mut t = t;
        store.update(&mut |j: &mut J| {
            let log = j.log_mut();
            if let Some(t) = t.take() {
                if let Err(e) = log.apply(id, t, &at) {
                    illegal = Some(e);
                    return;
                }
            }
            if let Some((kind, detail)) = event {
                log.push_event(Some(id), kind, detail, &at);
            }
            if let Some(o) = outcome {
                log.outcome = o;
            }
        })?;
        match illegal {
            Some(e) => Err(Error::Internal(e.to_string())),
            None => Ok(()),
        }
    }

    /// Run forward from wherever the journal stands until every step is
    /// done or skipped; the run is then `completed`.
    pub fn forward(&self, ctx: &mut C, store: &mut dyn Store<J>) -> Result<(), Halt> {
        let mut doubts = 0;
        loop {
            let next = next_forward(self.plan, store.journal().log());
            let i = match next {
                Next::Finished => break,
                Next::Run(i) | Next::InDoubt(i) => i,
            };
            let def = &self.plan.steps[i];
            if self.settings.stop_before.as_deref() == Some(def.id) {
                let text = format!("stopped before {} as asked (--stop-before)", def.id);
                self.record(
                    store,
                    def.id,
                    None,
                    Some((EventKind::Note, &text)),
                    Some(Outcome::Stopped),
                )?;
                return Err(Halt::Paused { step: def.id });
            }
            if self.interrupted() {
                return Err(self.stopped(store, def, StepError::Interrupted));
            }
            let result = match next {
                Next::InDoubt(_) => self.reconcile(ctx, store, def).map_err(|e| match e {
                    // Could not find out: the step stays in doubt.
                    StepError::Definite(r) => StepError::Doubt(r),
                    other => other,
                }),
                _ => self.run_step(ctx, store, def),
            };
            match result {
                Ok(()) => {}
                Err(StepError::Redo { from, why }) => self.redo(store, from, i, &why)?,
                Err(StepError::Doubt(reason)) if doubts < self.settings.max_doubt_retries => {
                    // The step stays `running`, so the next turn of the loop
                    // reconciles it against the live app.
                    doubts += 1;
                    let text = format!("{reason}; checking whether it took effect");
                    self.record(store, def.id, None, Some((EventKind::Error, &text)), None)?;
                }
                Err(e) => return Err(self.stopped(store, def, e)),
            }
        }
        let at = crate::store::now();
        store.update(&mut |j: &mut J| {
            let log = j.log_mut();
            log.outcome = Outcome::Completed;
            log.push_event(None, EventKind::Note, "migration completed", &at);
        })?;
        Ok(())
    }

    /// Put the steps from `from` to the current one back to pending, so
    /// that the loop runs them again.
    fn redo(
        &self,
        store: &mut dyn Store<J>,
        from: &'static str,
        current: usize,
        why: &str,
    ) -> Result<(), Error> {
        let start = self
            .plan
            .index(from)
            .filter(|s| *s <= current)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "step {} asked to redo from {from}, which is not before it",
                    self.plan.steps[current].id
                ))
            })?;
        for def in &self.plan.steps[start..=current] {
            let pending = store.journal().log().state(def.id) == Some(StepState::Pending);
            if !pending {
                self.record(
                    store,
                    def.id,
                    Some(Transition::Redo(why.into())),
                    None,
                    None,
                )?;
            }
        }
        self.record(store, from, None, Some((EventKind::Note, why)), None)
    }

    fn run_step(
        &self,
        ctx: &mut C,
        store: &mut dyn Store<J>,
        def: &'p StepDef<C, J>,
    ) -> Result<(), StepError> {
        if let Some(why) = (def.skip)(store.journal()) {
            let text = format!("skipped: {why}");
            self.record(
                store,
                def.id,
                Some(Transition::Skip(why.clone())),
                Some((EventKind::Note, &text)),
                None,
            )?;
            (self.watch)(StepEvent::Skipped(def.id, &why));
            return Ok(());
        }
        (self.watch)(StepEvent::Started(def.id));
        let done = match &def.forward {
            Forward::Run(run) => {
                let text = format!("started: {}", def.words);
                tracing::info!(step = def.id, "step started");
                self.record(
                    store,
                    def.id,
                    Some(Transition::Begin),
                    Some((EventKind::Note, &text)),
                    None,
                )?;
                crate::crash::point(&format!("after-intent:{}", def.id));
                run(ctx, &mut self.io(store, def.id, false))?
            }
            Forward::Write(prepare) => {
                let request = prepare(ctx, &mut self.io(store, def.id, false))?;
                tracing::info!(
                    step = def.id,
                    intent = %crate::secrets::redact(&request.intent),
                    "step started"
                );
                self.record(
                    store,
                    def.id,
                    Some(Transition::Begin),
                    Some((EventKind::Intent, &request.intent)),
                    None,
                )?;
                crate::crash::point(&format!("after-intent:{}", def.id));
                (request.send)(ctx, &mut self.io(store, def.id, false))?
            }
        };
        self.finish(store, def, done, "")?;
        Ok(())
    }

    /// Journal a step's outcome, with the crash points on both sides.
    fn finish(
        &self,
        store: &mut dyn Store<J>,
        def: &StepDef<C, J>,
        done: Done,
        prefix: &str,
    ) -> Result<(), Error> {
        let kind = if def.has_side_effect() {
            EventKind::Outcome
        } else {
            EventKind::Note
        };
        let detail = format!("{prefix}{}", done.detail);
        crate::crash::point(&format!("before-outcome:{}", def.id));
        tracing::info!(step = def.id, outcome = %crate::secrets::redact(&detail), "step done");
        self.record(
            store,
            def.id,
            Some(Transition::Succeed(done.output)),
            Some((kind, &detail)),
            None,
        )?;
        crate::crash::point(&format!("after-outcome:{}", def.id));
        (self.watch)(StepEvent::Done(def.id, &detail));
        Ok(())
    }

    /// A write's intent was journaled but not its outcome: ask the live
    /// app whether it took effect, and record what was found.
    fn reconcile(
        &self,
        ctx: &mut C,
        store: &mut dyn Store<J>,
        def: &'p StepDef<C, J>,
    ) -> Result<(), StepError> {
        let Some(reconcile) = def.reconcile else {
            return Err(StepError::Doubt(format!(
                "step {} cannot be checked against the live app",
                def.id
            )));
        };
        match reconcile(ctx, store.journal())? {
            Some(done) => self.finish(store, def, done, "reconciled: ")?,
            None => {
                let why = "reconciled: the request had not taken effect";
                self.record(
                    store,
                    def.id,
                    Some(Transition::Reset(why.into())),
                    Some((EventKind::Note, why)),
                    None,
                )?;
            }
        }
        Ok(())
    }

    /// Journal a step's failure; the run is stopped (or refused).
    fn stopped(&self, store: &mut dyn Store<J>, def: &'p StepDef<C, J>, e: StepError) -> Halt {
        let state = store
            .journal()
            .log()
            .state(def.id)
            .unwrap_or(StepState::Pending);
        let (reason, t) = match e {
            StepError::Local(e) => return Halt::Local(e),
            StepError::Refused { reason, fix } => {
                let reason = crate::secrets::redact(&reason);
                let text = format!("refused by Heroku; nothing was changed: {reason}");
                let written = self.record(
                    store,
                    def.id,
                    Some(Transition::Fail(reason.clone())),
                    Some((EventKind::Error, &text)),
                    Some(Outcome::Refused),
                );
                return match written {
                    Ok(()) => Halt::Refused {
                        step: def.id,
                        reason,
                        fix,
                    },
                    Err(e) => Halt::Local(e),
                };
            }
            StepError::Interrupted => (INTERRUPTED.to_string(), None),
            StepError::Definite(r) | StepError::Redo { why: r, .. } => {
                let t = Transition::Fail(r.clone());
                (r, Some(t))
            }
            StepError::FailedWith { reason, keep } => {
                let at = crate::store::now();
                let mut illegal = None;
                let written = store.update(&mut |j: &mut J| {
                    if let Err(e) = j
                        .log_mut()
                        .apply(def.id, Transition::Keep(keep.clone()), &at)
                    {
                        illegal = Some(e);
                    }
                });
                if let Err(e) = written {
                    return Halt::Local(e);
                }
                if let Some(e) = illegal {
                    return Halt::Local(Error::Internal(e.to_string()));
                }
                let t = Transition::Fail(reason.clone());
                (reason, Some(t))
            }
            // Still running: resume and rollback reconcile it first. A
            // doubt before the request was sent is a plain failure.
            StepError::Doubt(r) if state == StepState::Running => (
                format!(
                    "{r} (the request may or may not have taken effect; resume and rollback \
                     check first)"
                ),
                None,
            ),
            StepError::Doubt(r) => {
                let t = Transition::Fail(r.clone());
                (r, Some(t))
            }
        };
        let reason = crate::secrets::redact(&reason);
        let written = self.record(
            store,
            def.id,
            t,
            Some((EventKind::Error, &reason)),
            Some(Outcome::Stopped),
        );
        match written {
            Ok(()) => Halt::Stopped {
                step: def.id,
                reason,
            },
            Err(e) => Halt::Local(e),
        }
    }

    /// Undo the run step by step, latest first; the run is then
    /// `rolled-back`. Refused past a point of no return (unless `--force`
    /// and the point allows it).
    pub fn rollback(&self, ctx: &mut C, store: &mut dyn Store<J>) -> Result<(), Halt> {
        if let Some((step, nr)) = self.plan.passed_no_return(store.journal().log()) {
            if !(nr.force_allows && self.settings.force) {
                return Err(Halt::PastNoReturn {
                    step,
                    no_return: nr,
                });
            }
        }
        let at = crate::store::now();
        store.update(&mut |j: &mut J| {
            let log = j.log_mut();
            log.direction = Direction::Rollback;
            log.outcome = Outcome::InProgress;
            log.push_event(None, EventKind::Note, "rollback started", &at);
        })?;
        let mut doubts = 0;
        while let Some(i) = next_rollback(self.plan, store.journal().log()) {
            let def = &self.plan.steps[i];
            if self.interrupted() {
                return Err(self.undo_stopped(store, def, StepError::Interrupted));
            }
            match self.undo(ctx, store, def) {
                Ok(()) => {}
                // Every undo checks the live app or is safe to repeat, so an
                // undo whose answer was lost is simply run again.
                Err(StepError::Doubt(reason)) if doubts < self.settings.max_doubt_retries => {
                    doubts += 1;
                    let text = format!("undo: {reason}; trying it again");
                    self.record(store, def.id, None, Some((EventKind::Error, &text)), None)?;
                }
                Err(e) => return Err(self.undo_stopped(store, def, e)),
            }
        }
        let at = crate::store::now();
        store.update(&mut |j: &mut J| {
            let log = j.log_mut();
            log.outcome = Outcome::RolledBack;
            log.push_event(None, EventKind::Note, "rollback completed", &at);
        })?;
        Ok(())
    }

    fn undo(
        &self,
        ctx: &mut C,
        store: &mut dyn Store<J>,
        def: &'p StepDef<C, J>,
    ) -> Result<(), StepError> {
        let Undo::Compensate { words, run, .. } = &def.undo else {
            return Ok(());
        };
        (self.watch)(StepEvent::UndoStarted(def.id, words));
        let text = format!("undo: {words}");
        self.record(
            store,
            def.id,
            Some(Transition::UndoBegin),
            Some((EventKind::Intent, &text)),
            None,
        )?;
        crate::crash::point(&format!("undo-after-intent:{}", def.id));
        let undone = run(ctx, &mut self.io(store, def.id, true))?;
        let (state, detail) = match &undone {
            Undone::Done(d) => (StepState::Done, d.as_str()),
            Undone::Skipped(d) => (StepState::Skipped, d.as_str()),
        };
        crate::crash::point(&format!("undo-before-outcome:{}", def.id));
        let text = format!("undo: {detail}");
        self.record(
            store,
            def.id,
            Some(Transition::UndoEnd(state)),
            Some((EventKind::Outcome, &text)),
            None,
        )?;
        crate::crash::point(&format!("undo-after-outcome:{}", def.id));
        (self.watch)(match undone {
            Undone::Done(_) => StepEvent::UndoDone(def.id, detail),
            Undone::Skipped(_) => StepEvent::UndoSkipped(def.id, detail),
        });
        Ok(())
    }

    fn undo_stopped(&self, store: &mut dyn Store<J>, def: &'p StepDef<C, J>, e: StepError) -> Halt {
        let reason = match e {
            StepError::Local(e) => return Halt::Local(e),
            StepError::Interrupted => INTERRUPTED.to_string(),
            StepError::Definite(r)
            | StepError::Doubt(r)
            | StepError::Refused { reason: r, .. }
            | StepError::FailedWith { reason: r, .. }
            | StepError::Redo { why: r, .. } => r,
        };
        let reason = crate::secrets::redact(&reason);
        let text = format!("undo failed: {reason}");
        match self.record(
            store,
            def.id,
            None,
            Some((EventKind::Error, &text)),
            Some(Outcome::Stopped),
        ) {
            Ok(()) => Halt::Stopped {
                step: def.id,
                reason,
            },
            Err(e) => Halt::Local(e),
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
