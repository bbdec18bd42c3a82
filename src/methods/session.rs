//! A run of a method's plan against one app: take the app's lock, read or
//! create its journal, check the live app against what the journal
//! expects, and hand the plan to the engine forward (`run`, `resume`) or
//! back (`rollback`). The engine's halts become the errors users see.

use std::time::Duration;

use crate::engine::runner::{Halt, StepEvent};
use crate::engine::{self, EventKind, Outcome, Plan, Runner, RunnerSettings, StepState};
use crate::error::Error;
use crate::heroku::Client;
use crate::journal::{Journal, RunOptions};
use crate::methods::aspects::{self, Aspect};
use crate::methods::choose::decide;
use crate::methods::describe;
use crate::methods::method::Method;
use crate::methods::outputs::id;
use crate::methods::steps::others::LOST_RACE;
use crate::methods::{preflight, registry, Ctx, Observer, Progress, Settings};
use crate::store::lock::AppLock;
use crate::store::Home;

use crate::journal::writer::{self, Writer};

/// How often one process reconciles and retries a request whose outcome
/// was lost before it stops and leaves the step in doubt.
const MAX_DOUBT_RETRIES: u32 = 3;

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub app: String,
    pub options: RunOptions,
    /// The method asked for (`--method`, `auto` by default).
    pub method: crate::methods::choose::Wanted,
    /// `--restore-formation`, for an app found down (see preflight).
    pub restore_formation: Option<Vec<crate::journal::ProcessRecord>>,
}

/// One journaled run, open for resuming or rolling back.
pub struct Session<'a> {
    ctx: Ctx<'a>,
    writer: Writer,
    method: &'static dyn Method,
    plan: Plan<Ctx<'a>, Journal>,
}

/// The method of a journal and its plan, or why there is none.
fn plan_of<'a>(
    j: &Journal,
    path: &std::path::Path,
) -> Result<(&'static dyn Method, Plan<Ctx<'a>, Journal>), Error> {
    let corrupt = |problem: String| Error::JournalCorrupt {
        path: path.to_path_buf(),
        problem,
    };
    let method = registry::named(&j.log.method).ok_or_else(|| {
        corrupt(format!(
            "its method {:?} is not one this pgmigrate knows (a newer pgmigrate may)",
            j.log.method
        ))
    })?;
    let plan = method.plan();
    j.log.validate(plan.method, &plan.ids()).map_err(corrupt)?;
    Ok((method, plan))
}

/// A fresh run id: UTC time to the millisecond and 8 hex digits of
/// randomness (`20261124T221312345Z-3f9a1c2b`). Ids sort by time; `start`
/// makes sure a new id sorts after the app's previous ones.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let stamp: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{stamp}-{:08x}", h.finish() as u32)
}

/// The names chosen in advance for a run's target, derived from the run id
/// so that they are unique and can be looked up after a lost response.
pub fn target_plan(app: &str, run_id: &str) -> crate::journal::TargetPlan {
    let suffix = run_id
        .rsplit('-')
        .next()
        .unwrap_or(run_id)
        .to_ascii_lowercase();
    crate::journal::TargetPlan {
        addon_name: format!("{app}-pgmigrate-{suffix}"),
        attachment_name: format!("PGMIGRATE_{}", suffix.to_ascii_uppercase()),
    }
}

/// The step a short name of `--stop-before` means in the plan of the
/// method named `method`: `cutover` is the step that puts the app on the
/// new database, `maintenance` the one that takes the app down.
pub fn stop_alias<'s>(method: &str, step: &'s str) -> &'s str {
    match step {
        "cutover" | "cut-over" => registry::named(method).map_or(step, |m| m.cutover()),
        "maintenance" => id::MAINTENANCE_ON,
        other => other,
    }
}

/// The cut-over of this run, not of the method in general: when the
/// method's cut-over step is skipped for this app (an Essential plan is
/// changed in place, without a maintenance), the cut-over is the first
/// step that moves the database or changes its plan.
fn cutover_of_this_run(plan: &Plan<Ctx<'_>, Journal>, j: &Journal, step: String) -> String {
    let skipped = plan.step(&step).is_some_and(|d| (d.skip)(j).is_some());
    if !skipped {
        return step;
    }
    plan.steps
        .iter()
        .find(|d| {
            (d.skip)(j).is_none()
                && d.sets.iter().any(|(k, _)| {
                    Aspect::ALL
                        .iter()
                        .any(|a| a.key() == *k && a.moves_the_database())
                })
        })
        .map_or(step, |d| d.id.to_string())
}

/// Asked with what preflight read and the method chosen, before anything
/// changes: shows the plan and takes the person's confirmation, or refuses.
pub type Approve<'x> =
    &'x dyn Fn(&preflight::PreflightReading, &crate::methods::choose::Choice) -> Result<(), Error>;

/// Begin a new run: lock, refuse if the last run is unfinished, preflight,
/// choose the method, have it approved, then journal and run every step.
pub fn start(
    client: &Client,
    home: &Home,
    request: &RunRequest,
    settings: Settings,
    observer: &dyn Observer,
    approve: Approve<'_>,
) -> Result<Journal, Error> {
    let app = &request.app;
    // Check that the home is usable before reading anything.
    home.ensure_dir(&home.app_dir(app))?;
    let lock = AppLock::acquire(home, app, "run")?;
    if let Some((last, _)) = writer::latest(home, app)? {
        if last.log.outcome.is_unfinished() {
            return Err(Error::Unfinished {
                app: app.clone(),
                state: describe::outcome_words(&last),
                run_id: last.run_id,
            });
        }
    }
    let started = crate::store::now();
    observer.progress(&Progress::StepStarted(
        id::PREFLIGHT,
        preflight::def().words,
    ));
    let allow = preflight::Allow {
        force: settings.force,
        restore_formation: request.restore_formation.clone(),
    };
    let reading = preflight::preflight(client, app, &request.options, &allow)?;
    let choice = decide(app, &request.options, &reading, request.method)?;
    let method = choice.chosen();
    let plan = method.plan();
    let mut settings = settings;
    let request_stop = settings.stop_before.clone();
    settings.stop_before = settings
        .stop_before
        .as_deref()
        .map(|s| stop_alias(plan.method, s).to_string());
    if let Some(step) = &settings.stop_before {
        if plan.index(step).is_none() {
            return Err(Error::Usage(format!(
                "--stop-before {step}: the {} method has no such step; its steps are {}",
                plan.method,
                plan.ids().join(", ")
            )));
        }
    }
    approve(&reading, &choice)?;
    observer.progress(&Progress::Note(format!("method: {}", choice.why)));
    for w in method.warnings(&reading) {
        observer.progress(&Progress::Warning(w));
    }
    let previous = home.run_ids(app)?.pop();
    let run_id = loop {
        let id = new_run_id();
        if previous.as_ref().is_none_or(|p| id > *p) {
            break id;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut journal = Journal::new(
        run_id.clone(),
        app.clone(),
        request.options.clone(),
        target_plan(app, &run_id),
        plan.method,
        &plan.ids(),
    );
    journal.facts = Some(reading.facts);
    if matches!(request_stop.as_deref(), Some("cutover" | "cut-over")) {
        settings.stop_before = settings
            .stop_before
            .map(|s| cutover_of_this_run(&plan, &journal, s));
    }
    let at = crate::store::now();
    let summary = preflight::summary(&journal);
    {
        let log = &mut journal.log;
        let mark = |log: &mut engine::Log, t, at: &str| {
            log.apply(id::PREFLIGHT, t, at)
                .map_err(|e| Error::Internal(e.to_string()))
        };
        mark(log, engine::Transition::Begin, &started)?;
        mark(log, engine::Transition::Succeed(None), &at)?;
        log.push_event(
            Some(id::PREFLIGHT),
            EventKind::Note,
            &format!("preflight passed; {summary}; method {}", choice.why),
            &at,
        );
    }
    let mut writer = Writer::create(home, lock, journal)?;
    writer.describe_with(describe::by_hand);
    observer.progress(&Progress::StepDone(id::PREFLIGHT, summary));
    let mut s = Session {
        ctx: Ctx::new(client, settings, observer),
        writer,
        method,
        plan,
    };
    match s.forward() {
        Ok(()) => Ok(s.journal().clone()),
        Err(Error::Stopped { reason, .. }) if reason.starts_with(LOST_RACE) => {
            Err(s.give_way(&reason))
        }
        Err(e) => Err(e),
    }
}

impl<'a> Session<'a> {
    /// Open the app's latest run (to resume or roll back): lock and load.
    pub fn open(
        client: &'a Client,
        home: &Home,
        app: &str,
        command: &str,
        settings: Settings,
        observer: &'a dyn Observer,
    ) -> Result<Session<'a>, Error> {
        let lock = AppLock::acquire(home, app, command)?;
        let (journal, path) = writer::latest(home, app)?.ok_or_else(|| Error::NoRun {
            app: app.to_string(),
            home: home.root().to_path_buf(),
        })?;
        let (method, plan) = plan_of(&journal, &path)?;
        let mut writer = Writer::open(lock, path, journal)?;
        writer.describe_with(describe::by_hand);
        Ok(Session {
            ctx: Ctx::new(client, settings, observer),
            writer,
            method,
            plan,
        })
    }

    pub fn journal(&self) -> &Journal {
        use crate::engine::Store;
        self.writer.journal()
    }

    fn runner_settings(&self) -> RunnerSettings {
        RunnerSettings {
            stop_before: self.ctx.settings.stop_before.clone(),
            max_doubt_retries: MAX_DOUBT_RETRIES,
            interrupt: self.ctx.settings.interrupt.clone(),
            force: self.ctx.settings.force,
        }
    }

    /// Change the verify mode of the run (`resume --verify`), journaled.
    /// A verify step that failed is run again under the new mode.
    pub fn set_verify(&mut self, mode: crate::compare::VerifyMode) -> Result<(), Error> {
        use crate::engine::Store;
        let at = crate::store::now();
        let verify = id::VERIFY;
        self.writer.update(&mut |j: &mut Journal| {
            let was = j.options.verify;
            j.options.verify = mode;
            if j.log.state(verify) == Some(StepState::Failed) {
                let _ = j.log.apply(
                    verify,
                    engine::Transition::Reset("verify mode changed".into()),
                    &at,
                );
            }
            j.log.push_event(
                Some(verify),
                EventKind::Note,
                &format!("verify mode changed from {was} to {mode} on resume"),
                &at,
            );
        })
    }

    /// Resume: continue forward from wherever the journal stands.
    pub fn resume(&mut self) -> Result<Journal, Error> {
        use crate::engine::Store;
        let j = self.journal().clone();
        if j.log.direction == engine::Direction::Rollback && j.log.outcome != Outcome::RolledBack {
            return Err(Error::Refused {
                message: format!(
                    "the last run of {app} ({}) is being rolled back; finish that with `pgmigrate \
                 rollback --app {app}`",
                    j.run_id,
                    app = j.app
                ),
            });
        }
        if !j.log.outcome.is_unfinished() {
            return Err(Error::Refused {
                message: format!(
                "the last run of {app} ({}) is {}: there is nothing to resume. `pgmigrate status \
                 --app {app}` shows it.",
                j.run_id,
                describe::outcome_words(&j),
                app = j.app
            ),
            });
        }
        self.check_drift()?;
        let at = crate::store::now();
        self.writer.update(&mut |j: &mut Journal| {
            j.log.outcome = Outcome::InProgress;
            j.log
                .push_event(None, EventKind::Note, "resume started", &at);
        })?;
        self.forward()?;
        Ok(self.journal().clone())
    }

    fn forward(&mut self) -> Result<(), Error> {
        let settings = self.runner_settings();
        let watch = watcher(&self.plan, self.ctx.observer);
        let runner = Runner::new(&self.plan, settings, &watch);
        let result = runner.forward(&mut self.ctx, &mut self.writer);
        result.map_err(|h| self.halt_error(h, "the migration"))
    }

    /// Roll the run back step by step, journaling each undo.
    pub fn rollback(&mut self) -> Result<Journal, Error> {
        let j = self.journal().clone();
        if j.log.outcome == Outcome::RolledBack {
            // Nothing left to undo (a rollback killed after its last undo
            // gets here): what was asked is done; the app is checked live.
            self.ctx.observer.progress(&Progress::Note(format!(
                "the last run of {} ({}) is already rolled back",
                j.app, j.run_id
            )));
            return Ok(j);
        }
        if j.log.outcome == Outcome::Refused {
            return Err(Error::Refused {
                message: format!(
                    "the last run of {} ({}) changed nothing: there is nothing to roll back",
                    j.app, j.run_id
                ),
            });
        }
        // Refused past a point of no return before anything is read.
        if let Some((_, nr)) = self.plan.passed_no_return(&j.log) {
            if !(nr.force_allows && self.ctx.settings.force) {
                return Err(no_return_error(&j.app, nr));
            }
        }
        self.check_drift()?;
        let settings = self.runner_settings();
        let watch = watcher(&self.plan, self.ctx.observer);
        let runner = Runner::new(&self.plan, settings, &watch);
        let result = runner.rollback(&mut self.ctx, &mut self.writer);
        result.map_err(|h| self.halt_error(h, crate::error::ROLLBACK_VERB))?;
        Ok(self.journal().clone())
    }

    /// Another run of the app came first (see `steps::others`): undo what
    /// this run did (its own target, its alias), and nothing else. The
    /// live app is not compared with the journal: the other run may be
    /// changing it right now.
    fn give_way(&mut self, why: &str) -> Error {
        use crate::engine::Store;
        // The step that found the other run failed in its check, before
        // its request: it did nothing, so its undo (maintenance off!) must
        // not run under the other run's feet.
        let at = crate::store::now();
        let reset = self.writer.update(&mut |j: &mut Journal| {
            let failed: Vec<String> = j
                .log
                .steps
                .iter()
                .filter(|r| r.state == StepState::Failed)
                .filter(|r| r.note.as_deref().is_some_and(|n| n.starts_with(LOST_RACE)))
                .map(|r| r.id.clone())
                .collect();
            for id in failed {
                let _ = j.log.apply(
                    &id,
                    engine::Transition::Reset("gave way before its request".into()),
                    &at,
                );
            }
        });
        if let Err(e) = reset {
            return e;
        }
        let j = self.journal().clone();
        let app = j.app.clone();
        let settings = self.runner_settings();
        let watch = watcher(&self.plan, self.ctx.observer);
        let runner = Runner::new(&self.plan, settings, &watch);
        if let Err(h) = runner.rollback(&mut self.ctx, &mut self.writer) {
            return self.halt_error(h, crate::error::ROLLBACK_VERB);
        }
        Error::Preflight {
            problem: format!(
                "{why}. This run removed what it had made ({}) and changed nothing else.",
                j.target.addon_name
            ),
            fix: format!(
                "the other run goes on, perhaps from another machine: let it finish (`pgmigrate \
                 status --app {app}` where it was started); `pgmigrate run` again afterwards \
                 only if the app still needs it"
            ),
        }
    }

    /// After a rollback: how the live app still differs from the app
    /// before the run (after a `--force` past drift, it can). Empty when
    /// it is as it was.
    pub fn differences_after_rollback(&self) -> Result<Vec<String>, Error> {
        self.drift()
    }

    fn halt_error(&self, h: Halt, verb: &'static str) -> Error {
        let j = self.journal();
        match h {
            Halt::Local(e) => e,
            Halt::Paused { step } => Error::Stopped {
                verb,
                app: j.app.clone(),
                run_id: j.run_id.clone(),
                step: step.into(),
                reason: "as asked by --stop-before".into(),
                app_state: describe::app_state(j).words.into(),
                asked: true,
            },
            Halt::Stopped { step, reason } => Error::Stopped {
                verb,
                app: j.app.clone(),
                run_id: j.run_id.clone(),
                step: step.into(),
                reason: reason.into(),
                app_state: describe::app_state(j).words.into(),
                asked: false,
            },
            Halt::Refused { reason, fix, .. } => Error::Preflight {
                problem: format!("Heroku refused to {}: {reason}", self.method.first_write()),
                fix,
            },
            Halt::PastNoReturn { no_return, .. } => no_return_error(&j.app, no_return),
        }
    }

    /// Compare the live app with what the journal expects; stop and show
    /// the differences unless `--force`.
    pub fn check_drift(&mut self) -> Result<(), Error> {
        use crate::engine::Store;
        let diffs = self.drift()?;
        let app = self.journal().app.clone();
        let app = &app;
        if diffs.is_empty() {
            return Ok(());
        }
        if self.ctx.settings.force {
            let text = format!("drift ignored (--force): {}", diffs.join("; "));
            self.ctx.warn(text.clone());
            let at = crate::store::now();
            return self.writer.update(&mut |j: &mut Journal| {
                j.log.push_event(None, EventKind::Note, &text, &at)
            });
        }
        Err(Error::Refused {
            message: format!(
                "{app} was changed outside pgmigrate since the journal was written:\n  - {}\n  \
                 help: put it back as the journal expects, or pass --force to proceed from the \
                 app as it is now.",
                diffs.join("\n  - ")
            ),
        })
    }

    /// How the live app differs from what the journal expects now
    /// (see [`aspects::drift`]).
    pub fn drift(&self) -> Result<Vec<String>, Error> {
        aspects::drift(self.ctx.client, &self.plan, self.journal())
    }
}

/// Turns the engine's step events into [`Progress`] for the observer.
fn watcher<'p, C, J>(
    plan: &'p Plan<C, J>,
    observer: &'p dyn Observer,
) -> impl Fn(StepEvent<'_>) + 'p {
    move |e| {
        let words = |id: &str| plan.step(id).map(|s| s.words).unwrap_or("");
        observer.progress(&match e {
            StepEvent::Started(id) => Progress::StepStarted(id, words(id)),
            StepEvent::Skipped(id, why) => Progress::StepSkipped(id, why.into()),
            StepEvent::Done(id, d) => Progress::StepDone(id, d.into()),
            StepEvent::UndoStarted(id, undo) => Progress::UndoStarted(id, undo),
            StepEvent::UndoDone(id, d) => Progress::UndoDone(id, d.into()),
            StepEvent::UndoSkipped(id, d) => Progress::UndoSkipped(id, d.into()),
        });
    }
}

fn no_return_error(app: &str, nr: engine::NoReturn) -> Error {
    let message = if nr.force_allows {
        format!(
            "{app} {}.\n  help: copy that data back yourself first, or pass --force to roll \
             back anyway.",
            nr.why
        )
    } else {
        format!("{app} {}: rollback cannot undo that.", nr.why)
    };
    Error::Refused { message }
}
