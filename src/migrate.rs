//! The executor: runs the steps of [`crate::steps`] against Heroku, forward
//! (`run`, `resume`) and backward (`rollback`), journaling the intent of
//! every side effect before its request and the outcome after it.
//!
//! Decisions come from the pure functions in `steps`; this module only
//! performs them. Database URLs are read live when a step needs them, kept
//! in memory, and never journaled or reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{describe_api, Error};
use crate::heroku::types::{
    AttachmentName, CreateAddon, CreateAttachment, CreateTransfer, Formation, POOL_ATTACHMENT,
    POOL_NAMESPACE,
};
use crate::heroku::{ApiError, Client};
use crate::journal::{
    AddonRecord, AttachmentRecord, Direction, EventKind, Facts, Home, Journal, JournalWriter,
    Outcome, PoolRecord, ProcessRecord, RunOptions, StepState, TargetPlan, TransferRecord,
    WindowRecord,
};
use crate::lock::AppLock;
use crate::secrets::fingerprint;
use crate::steps::{self, CopyVerdict, NextForward, NextRollback, StallWatch, Step, Undo};

/// Limits and switches of a run, resume or rollback.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long to wait for the target add-on to be provisioned.
    pub provision_timeout: Duration,
    /// How long to wait for scaled-down dynos to be gone.
    pub drain_timeout: Duration,
    /// A transfer with no byte moving for this long is reported (a warning,
    /// a note `status` shows), never cancelled: only Heroku fails a copy.
    pub copy_stall_timeout: Duration,
    /// The longest pause between two looks at a wait.
    pub poll_cap: Duration,
    /// The longest pause between two looks at a transfer.
    pub copy_poll_max: Duration,
    /// Rollback: keep the target add-on instead of destroying it.
    pub keep_target: bool,
    /// Proceed past a refusal that `--force` may override.
    pub force: bool,
    /// Stop before this step (a postponed cut-over).
    pub stop_before: Option<Step>,
    /// Set (by a signal handler) to ask the run to stop at the next
    /// resumable point: after the request in flight and its journal record.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            provision_timeout: Duration::from_secs(30 * 60),
            drain_timeout: Duration::from_secs(3 * 60),
            copy_stall_timeout: Duration::from_secs(15 * 60),
            poll_cap: Duration::from_secs(5),
            copy_poll_max: Duration::from_secs(30),
            keep_target: false,
            force: false,
            stop_before: None,
            interrupt: None,
        }
    }
}

/// What the executor reports while it works; rendered by the CLI.
#[derive(Debug, Clone)]
pub enum Progress {
    StepStarted(Step),
    StepDone(Step, String),
    StepSkipped(Step, String),
    /// A wait is still waiting: what for, and for how long so far.
    Waiting(Step, String, Duration),
    /// Copy progress.
    Copy {
        processed: u64,
        total: Option<u64>,
        elapsed: Duration,
        /// Accepted by Heroku, not started yet (`started_at` null).
        queued: bool,
    },
    UndoStarted(Step, Undo),
    UndoDone(Step, Undo, String),
    UndoSkipped(Step, Undo, String),
    Note(String),
    Warning(String),
}

/// Receives [`Progress`]; the CLI's renderer implements it.
pub trait Observer {
    fn progress(&self, event: &Progress);
}

/// An observer that drops everything (tests, the library's own callers).
pub struct Silent;

impl Observer for Silent {
    fn progress(&self, _: &Progress) {}
}

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub app: String,
    pub options: RunOptions,
}

/// A failure inside a step, before it becomes an [`Error::Stopped`].
#[derive(Debug)]
enum StepError {
    /// The step did not act (a refusal, a failed wait): it may be retried.
    Definite(String),
    /// The request may or may not have acted: the step stays in doubt.
    Doubt(String),
    /// A local error (the journal could not be written): passed up as is.
    Local(Error),
    /// Interrupted (Ctrl-C, SIGTERM) at a resumable point.
    Interrupted,
    /// Heroku refused the run's first change (creating the target) for a
    /// reason trying again will not fix: nothing was changed, so the run
    /// ends as refused rather than stopped (a later `run` is not blocked).
    Refused { reason: String, fix: String },
}

impl From<Error> for StepError {
    fn from(e: Error) -> StepError {
        StepError::Local(e)
    }
}

/// Classify an API error of a request that changes something.
fn write_error(e: &ApiError) -> StepError {
    if e.not_applied() {
        StepError::Definite(describe_api(e))
    } else {
        StepError::Doubt(describe_api(e))
    }
}

/// If Heroku's answer to creating the target add-on is a refusal that
/// trying again will not change (a bad or unknown plan, billing, a missing
/// app), what the user should do about it. Rate limits, timeouts, 5xx and
/// 401/403 (which a fixed token or permission resolves on `resume`) are not
/// refusals.
fn create_refusal(e: &ApiError, plan: &str) -> Option<String> {
    let ApiError::Http { status, .. } = e else {
        return None;
    };
    match status {
        400 | 404 | 422 => Some(format!(
            "check the plan ({plan}) with `heroku addons:plans heroku-postgresql` and the \
             account's add-on limits, then run again"
        )),
        402 => Some(
            "the account cannot be billed for the add-on: fix its billing on the Heroku \
             dashboard, then run again"
                .into(),
        ),
        _ => None,
    }
}

/// Classify an API error of a read (a read never acts).
fn read_error(e: &ApiError) -> StepError {
    StepError::Definite(describe_api(e))
}

/// How long a provisioned add-on's wait_status may answer 404 before the
/// add-on's own state is taken as the answer.
const WAIT_STATUS_GRACE: Duration = Duration::from_secs(20);

/// How often one process reconciles and retries a request whose outcome
/// was lost before it stops and leaves the step in doubt.
const MAX_DOUBT_RETRIES: u32 = 3;

/// The executor of one run.
pub struct Migration<'a> {
    client: &'a Client,
    writer: JournalWriter,
    settings: Settings,
    observer: &'a dyn Observer,
    /// Database URLs read live, kept in memory only.
    urls: Urls,
    /// The formation as the scale-down answered it (sizes), if seen.
    live_formation: Vec<Formation>,
}

#[derive(Default)]
struct Urls {
    source: Option<String>,
    target: Option<String>,
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
pub fn target_plan(app: &str, run_id: &str) -> TargetPlan {
    let suffix = run_id
        .rsplit('-')
        .next()
        .unwrap_or(run_id)
        .to_ascii_lowercase();
    TargetPlan {
        addon_name: format!("{app}-pgmigrate-{suffix}"),
        attachment_name: format!("PGMIGRATE_{}", suffix.to_ascii_uppercase()),
    }
}

/// Everything preflight reads, gathered before anything changes.
pub struct PreflightReading {
    pub facts: Facts,
    pub warnings: Vec<String>,
}

/// Preflight: read the app and decide whether it can be migrated. Changes
/// nothing. `force` allows a target plan equal to the source's.
pub fn preflight(
    client: &Client,
    app: &str,
    options: &RunOptions,
    force: bool,
) -> Result<PreflightReading, Error> {
    tracing::info!(app, to = %options.to_plan, from = %options.from_attachment, "preflight");
    let api = |context: &str| {
        let context = context.to_string();
        move |source: ApiError| preflight_api_error(app, &context, source)
    };
    let app_info = client.app(app).map_err(api("reading the app"))?;
    let attachments = client
        .attachments(app)
        .map_err(api("listing the app's add-on attachments"))?;
    let from = &options.from_attachment;
    let source_att = attachments
        .iter()
        .find(|a| &a.name == from && a.namespace.is_none())
        .ok_or_else(|| Error::Preflight {
            problem: format!("{app} has no add-on attached as {from}."),
            fix: if from == "DATABASE" {
                format!(
                    "attach the database to move as DATABASE (`heroku addons:attach ADDON \
                     --as DATABASE --app {app}`), or name its attachment with --from"
                )
            } else {
                format!("check the name with `heroku addons --app {app}` and pass it to --from")
            },
        })?;
    let source_id = source_att.addon_id().unwrap_or_default().to_string();
    let addon = client
        .addon(if source_id.is_empty() {
            source_att.addon.name.as_deref().unwrap_or_default()
        } else {
            &source_id
        })
        .map_err(api("reading the source add-on"))?;
    if !addon.is_postgres() {
        return Err(Error::Preflight {
            problem: format!(
                "{from} on {app} is the add-on {} ({}), which is not Heroku Postgres.",
                addon.name,
                addon.plan_name().unwrap_or("unknown plan")
            ),
            fix: "pgmigrate moves heroku-postgresql add-ons only; pass --from with the \
                  attachment of a Heroku Postgres database"
                .into(),
        });
    }
    let db = client
        .database(&addon.id)
        .map_err(api("reading the source database"))?;
    if let Some(leader) = db.leader_name() {
        return Err(Error::Preflight {
            problem: format!(
                "{} ({from}) is a follower of {leader}: a read-only replica.",
                addon.name
            ),
            fix: format!(
                "migrate the leader instead, or unfollow first (`heroku pg:unfollow {} --app \
                 {app}`)",
                addon.name
            ),
        });
    }
    let mut warnings = Vec::new();
    // A transfer copies what the default credential can read (`heroku
    // pg:copy` warns the same). Essential plans have no other credentials
    // and answer this with an error: that, or any failure, means no warning.
    match client.credentials(&addon.name) {
        Ok(creds) if creds.len() > 1 => {
            let others: Vec<&str> = creds
                .iter()
                .map(|c| c.name.as_str())
                .filter(|n| *n != "default")
                .collect();
            warnings.push(format!(
                "{} has credentials besides the default one ({}): a Heroku transfer copies only \
                 the data the default credential can read, and the new database will not have \
                 those credentials. Check that they own no data of their own, and create them \
                 again afterwards (`heroku pg:credentials:create`)",
                addon.name,
                others.join(", ")
            ));
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(
            error = %describe_api(&e),
            "could not list the source's credentials"
        ),
    }
    let source_plan = addon.plan_name().unwrap_or_default().to_string();
    if source_plan == options.to_plan && !force {
        return Err(Error::Preflight {
            problem: format!(
                "{} is already on {}; migrating to the same plan only copies the data.",
                addon.name, options.to_plan
            ),
            fix: "choose another plan with --to, or pass --force to copy to a new add-on of \
                  the same plan"
                .into(),
        });
    }
    let plan_name = options
        .to_plan
        .split_once(':')
        .map(|(_, p)| p)
        .unwrap_or(&options.to_plan);
    match client.plan("heroku-postgresql", &options.to_plan) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            // Heroku always knows the heroku-postgresql service, so a 404
            // for the service too means this API does not serve plan
            // lookups (a partial implementation of Heroku's API, not
            // Heroku): the plan is then checked when the add-on is created,
            // which changes nothing on the app if it is refused.
            match client.addon_service("heroku-postgresql") {
                Ok(_) => {
                    return Err(Error::Preflight {
                        problem: format!("Heroku has no Postgres plan named {plan_name}."),
                        fix: "list the plans with `heroku addons:plans heroku-postgresql` and \
                              pass one to --to"
                            .into(),
                    })
                }
                Err(s) if s.is_not_found() => warnings.push(format!(
                    "this API does not serve plan lookups, so {} is checked only when the \
                     target add-on is created",
                    options.to_plan
                )),
                Err(s) => return Err(preflight_api_error(app, "checking the target plan", s)),
            }
        }
        Err(e) => return Err(preflight_api_error(app, "checking the target plan", e)),
    }
    let formation = client
        .formation(app)
        .map_err(api("reading the formation"))?;
    let dynos = client.dynos(app).map_err(api("listing the dynos"))?;
    let config = client
        .config_vars(app)
        .map_err(api("reading the config vars"))?;
    let source_var = source_att.config_var();
    let source_url = config.get(&source_var).ok_or_else(|| Error::Preflight {
        problem: format!("{app} has no config var {source_var} for its {from} attachment."),
        fix: format!(
            "check the attachment with `heroku addons:info {} --app {app}`",
            addon.name
        ),
    })?;
    let owned: BTreeSet<String> = attachments.iter().map(|a| a.config_var()).collect();
    let rebind_vars = steps::rebind_candidates(&config, source_url, &owned);
    let source_other_attachments = attachments
        .iter()
        .filter(|a| {
            a.addon_id() == Some(addon.id.as_str()) && a.namespace.is_none() && &a.name != from
        })
        .map(|a| a.name.clone())
        .collect();
    let pool = attachments
        .iter()
        .find(|a| {
            a.name == POOL_ATTACHMENT
                && a.namespace.as_deref() == Some(POOL_NAMESPACE)
                && a.addon_id() == Some(addon.id.as_str())
        })
        .map(|a| PoolRecord {
            attachment_id: a.id.clone(),
            name: a.name.clone(),
        });
    let one_offs = steps::one_off_names(&dynos);
    if !one_offs.is_empty() {
        return Err(one_off_error(app, &one_offs));
    }
    if formation.iter().all(|f| f.quantity == 0) {
        warnings.push(format!(
            "{app} has no dynos running; nothing will be scaled."
        ));
    }
    Ok(PreflightReading {
        facts: Facts {
            app_id: app_info.id,
            maintenance_was_on: app_info.maintenance,
            formation: formation
                .iter()
                .map(|f| ProcessRecord {
                    process_type: f.process_type.clone(),
                    quantity: f.quantity,
                    size: f.size_name().map(str::to_string),
                })
                .collect(),
            source: AddonRecord {
                id: addon.id.clone(),
                name: addon.name.clone(),
                plan: source_plan,
            },
            source_url_fingerprint: fingerprint(source_url),
            source_other_attachments,
            rebind_vars,
            pool,
            source_bytes: db.data_size(),
        },
        warnings,
    })
}

fn one_off_error(app: &str, names: &[&str]) -> Error {
    Error::Preflight {
        problem: format!(
            "one-off dynos are running on {app}: {}. Scaling does not stop them, and they \
             could write to the old database during the copy.",
            names.join(", ")
        ),
        fix: format!(
            "let them finish or stop them (`heroku ps:stop {} --app {app}`), then run again",
            names[0]
        ),
    }
}

fn preflight_api_error(app: &str, context: &str, source: ApiError) -> Error {
    match (source.status(), source.error_id()) {
        (Some(404), _) if context == "reading the app" => Error::Preflight {
            problem: format!("Heroku has no app named {app} that this account can see."),
            fix: "check the name with `heroku apps`, and that HEROKU_API_KEY or ~/.netrc \
                  belongs to an account with access to it"
                .into(),
        },
        (Some(401), _) => Error::Preflight {
            problem: "Heroku refused the API token (401 unauthorized).".into(),
            fix: "log in again (`heroku login`) or set HEROKU_API_KEY to a valid token \
                  (`heroku authorizations:create`)"
                .into(),
        },
        (Some(403), _) => Error::Preflight {
            problem: format!(
                "this account may not change {app} (403 {}).",
                source.error_id().unwrap_or("forbidden")
            ),
            fix: format!(
                "ask an owner of {app} for the operate/deploy/manage permissions, or use their \
                 token"
            ),
        },
        _ => Error::Api {
            context: format!("preflight failed while {context}"),
            source: Box::new(source),
        },
    }
}

impl<'a> Migration<'a> {
    /// Begin a new run: lock, refuse if the last run is unfinished,
    /// preflight, then journal and run every step.
    pub fn start(
        client: &'a Client,
        home: &Home,
        request: &RunRequest,
        settings: Settings,
        observer: &'a dyn Observer,
    ) -> Result<Journal, Error> {
        let app = &request.app;
        // Check that the home is usable before reading anything.
        home.ensure_dir(&home.app_dir(app))?;
        let lock = AppLock::acquire(home, app, "run")?;
        if let Some(last) = home.latest(app)? {
            if last.outcome.is_unfinished() {
                return Err(Error::Unfinished {
                    app: app.clone(),
                    state: crate::status::outcome_words(&last),
                    run_id: last.run_id,
                });
            }
        }
        let started = journal_now();
        observer.progress(&Progress::StepStarted(Step::Preflight));
        let reading = preflight(client, app, &request.options, settings.force)?;
        for w in &reading.warnings {
            observer.progress(&Progress::Warning(w.clone()));
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
        );
        journal.facts = Some(reading.facts);
        {
            let r = journal.record_mut(Step::Preflight);
            r.state = StepState::Done;
            r.started_at = Some(started);
            r.finished_at = Some(journal_now());
        }
        journal.push_event(
            Some(Step::Preflight),
            EventKind::Note,
            &format!(
                "preflight passed; moving {} to {}",
                journal
                    .facts
                    .as_ref()
                    .map(|f| f.source.name.as_str())
                    .unwrap_or("?"),
                journal.options.to_plan
            ),
        );
        let writer = JournalWriter::create(home, lock, journal)?;
        observer.progress(&Progress::StepDone(
            Step::Preflight,
            preflight_summary(writer.journal()),
        ));
        let mut m = Migration {
            client,
            writer,
            settings,
            observer,
            urls: Urls::default(),
            live_formation: Vec::new(),
        };
        m.forward()?;
        Ok(m.writer.journal().clone())
    }

    /// Continue an existing journal (resume or rollback): lock and load.
    pub fn open(
        client: &'a Client,
        home: &Home,
        app: &str,
        command: &str,
        settings: Settings,
        observer: &'a dyn Observer,
    ) -> Result<Migration<'a>, Error> {
        let lock = AppLock::acquire(home, app, command)?;
        let journal = home.latest(app)?.ok_or_else(|| Error::NoRun {
            app: app.to_string(),
            home: home.root().to_path_buf(),
        })?;
        let writer = JournalWriter::open(home, lock, journal);
        Ok(Migration {
            client,
            writer,
            settings,
            observer,
            urls: Urls::default(),
            live_formation: Vec::new(),
        })
    }

    pub fn journal(&self) -> &Journal {
        self.writer.journal()
    }

    fn app(&self) -> String {
        self.journal().app.clone()
    }

    fn facts(&self) -> Result<Facts, Error> {
        self.journal()
            .facts
            .clone()
            .ok_or_else(|| Error::JournalCorrupt {
                path: self.writer.path().to_path_buf(),
                problem: "it has no preflight facts although preflight is done".into(),
            })
    }

    fn note(&mut self, step: Option<Step>, kind: EventKind, detail: &str) -> Result<(), Error> {
        self.writer.update(|j| j.push_event(step, kind, detail))
    }

    /// Change the verify mode of the run (`resume --verify`), journaled.
    /// A verify step that failed is run again under the new mode.
    pub fn set_verify(&mut self, mode: crate::verify::VerifyMode) -> Result<(), Error> {
        self.writer.update(|j| {
            let was = j.options.verify;
            j.options.verify = mode;
            let r = j.record_mut(Step::Verify);
            if r.state == StepState::Failed {
                r.state = StepState::Pending;
            }
            j.push_event(
                Some(Step::Verify),
                EventKind::Note,
                &format!("verify mode changed from {was} to {mode} on resume"),
            );
        })
    }

    /// Resume: continue forward from wherever the journal stands.
    pub fn resume(&mut self) -> Result<Journal, Error> {
        let j = self.journal().clone();
        if j.direction == Direction::Rollback && j.outcome != Outcome::RolledBack {
            return Err(Error::Usage(format!(
                "the last run of {app} ({}) is being rolled back; finish that with `pgmigrate \
                 rollback --app {app}`",
                j.run_id,
                app = j.app
            )));
        }
        if !j.outcome.is_unfinished() {
            return Err(Error::Usage(format!(
                "the last run of {app} ({}) is {}: there is nothing to resume. `pgmigrate status \
                 --app {app}` shows it.",
                j.run_id,
                crate::status::outcome_words(&j),
                app = j.app
            )));
        }
        self.check_drift()?;
        self.writer.update(|j| {
            j.outcome = Outcome::InProgress;
            j.push_event(None, EventKind::Note, "resume started");
        })?;
        self.forward()?;
        Ok(self.journal().clone())
    }

    /// The forward loop: run, skip or reconcile steps until done or stopped.
    fn forward(&mut self) -> Result<(), Error> {
        let mut doubts = 0;
        loop {
            let next = steps::next_forward(self.journal());
            let step = match next {
                NextForward::Finished => break,
                NextForward::Run(s) | NextForward::InDoubt(s) => s,
            };
            if self.settings.stop_before == Some(step) {
                return self.pause(step);
            }
            if self.interrupted() {
                return Err(self.stopped(step, StepError::Interrupted));
            }
            let result = match next {
                NextForward::InDoubt(s) => self.reconcile(s).map_err(|e| match e {
                    // Could not find out: the step stays in doubt.
                    StepError::Definite(r) => StepError::Doubt(r),
                    other => other,
                }),
                _ => self.run_step(step),
            };
            match result {
                Ok(()) => {}
                Err(StepError::Doubt(reason)) if doubts < MAX_DOUBT_RETRIES => {
                    // The step stays `running` in the journal, so the next
                    // turn of the loop reconciles it against the live app.
                    doubts += 1;
                    self.note(
                        Some(step),
                        EventKind::Error,
                        &format!("{reason}; checking whether it took effect"),
                    )?;
                }
                Err(e) => return Err(self.stopped(step, e)),
            }
        }
        self.writer.update(|j| {
            j.outcome = Outcome::Completed;
            j.push_event(None, EventKind::Note, "migration completed");
        })?;
        Ok(())
    }

    fn pause(&mut self, step: Step) -> Result<(), Error> {
        self.writer.update(|j| {
            j.outcome = Outcome::Stopped;
            j.push_event(
                Some(step),
                EventKind::Note,
                &format!("stopped before {step} as asked (--stop-before)"),
            );
        })?;
        Err(Error::Stopped {
            verb: "the migration",
            app: self.app(),
            run_id: self.journal().run_id.clone(),
            step,
            reason: "stopped here as asked by --stop-before".into(),
        })
    }

    /// Journal a step failure and turn it into the error the user sees.
    fn stopped(&mut self, step: Step, e: StepError) -> Error {
        let current = self
            .journal()
            .step_state(step)
            .unwrap_or(StepState::Pending);
        let (reason, state) = match e {
            StepError::Local(e) => return e,
            StepError::Refused { reason, fix } => return self.refused(step, reason, fix),
            StepError::Interrupted => (
                "interrupted (Ctrl-C or SIGTERM); the request in flight was finished and journaled"
                    .to_string(),
                current,
            ),
            StepError::Definite(r) => (r, StepState::Failed),
            StepError::Doubt(r) => (
                format!("{r} (the request may or may not have taken effect; resume and rollback check first)"),
                StepState::Running,
            ),
        };
        let written = self.writer.update(|j| {
            let rec = j.record_mut(step);
            rec.state = state;
            if state != StepState::Pending {
                rec.note = Some(crate::secrets::redact(&reason));
            }
            j.outcome = Outcome::Stopped;
            j.push_event(Some(step), EventKind::Error, &reason);
        });
        if let Err(local) = written {
            return local;
        }
        Error::Stopped {
            verb: "the migration",
            app: self.app(),
            run_id: self.journal().run_id.clone(),
            step,
            reason: crate::secrets::redact(&reason),
        }
    }

    /// Journal a refusal of the run's first change: the run is over and
    /// changed nothing.
    fn refused(&mut self, step: Step, reason: String, fix: String) -> Error {
        let reason = crate::secrets::redact(&reason);
        let written = self.writer.update(|j| {
            let rec = j.record_mut(step);
            rec.state = StepState::Failed;
            rec.note = Some(reason.clone());
            rec.finished_at = Some(journal_now());
            j.outcome = Outcome::Refused;
            j.push_event(
                Some(step),
                EventKind::Error,
                &format!("refused by Heroku; nothing was changed: {reason}"),
            );
        });
        if let Err(local) = written {
            return local;
        }
        Error::Preflight {
            problem: format!("Heroku refused to create the target add-on: {reason}"),
            fix,
        }
    }

    fn run_step(&mut self, step: Step) -> Result<(), StepError> {
        let facts = self.facts()?;
        let options = self.journal().options.clone();
        if let Some(reason) = steps::skip_reason(step, &facts, &options) {
            self.writer.update(|j| {
                let r = j.record_mut(step);
                r.state = StepState::Skipped;
                r.note = Some(reason.to_string());
                r.finished_at = Some(journal_now());
                j.push_event(Some(step), EventKind::Note, &format!("skipped: {reason}"));
            })?;
            self.observer
                .progress(&Progress::StepSkipped(step, reason.to_string()));
            return Ok(());
        }
        self.observer.progress(&Progress::StepStarted(step));
        let detail = match step {
            Step::Preflight => {
                // Preflight is done before the journal exists.
                self.finish(step, "preflight passed")?;
                return Ok(());
            }
            Step::CreateTarget => self.create_target()?,
            Step::WaitTarget => self.wait_target()?,
            Step::AliasSource => self.alias_source(&facts)?,
            Step::MaintenanceOn => self.maintenance_on()?,
            Step::ScaleDown => self.scale_down(&facts)?,
            Step::WaitDynos => self.wait_dynos(step)?,
            Step::StartCopy => self.start_copy(&facts)?,
            Step::WaitCopy => self.wait_copy()?,
            Step::Verify => self.verify(options.verify)?,
            Step::PromoteTarget => self.promote_target()?,
            Step::RepointPool => self.repoint_pool(&facts)?,
            Step::RebindConfig => self.rebind_config(&facts)?,
            Step::ScaleUp => self.scale_up(&facts)?,
            Step::MaintenanceOff => self.maintenance_off()?,
        };
        self.observer.progress(&Progress::StepDone(step, detail));
        Ok(())
    }

    /// Journal the intent of a side effect (or the start of a wait).
    fn begin(&mut self, step: Step, intent: &str) -> Result<(), Error> {
        let kind = if step.has_side_effect() {
            EventKind::Intent
        } else {
            EventKind::Note
        };
        tracing::info!(step = step.name(), intent = %crate::secrets::redact(intent), "step started");
        self.writer.update(|j| {
            let r = j.record_mut(step);
            r.state = StepState::Running;
            r.started_at = Some(journal_now());
            r.note = None;
            j.push_event(Some(step), kind, intent);
        })?;
        crate::crash::point(&format!("after-intent:{step}"));
        Ok(())
    }

    /// Journal a step's outcome.
    fn finish(&mut self, step: Step, outcome: &str) -> Result<(), Error> {
        self.finish_with(step, outcome, |_| {})
    }

    fn finish_with(
        &mut self,
        step: Step,
        outcome: &str,
        change: impl FnOnce(&mut Journal),
    ) -> Result<(), Error> {
        let kind = if step.has_side_effect() {
            EventKind::Outcome
        } else {
            EventKind::Note
        };
        crate::crash::point(&format!("before-outcome:{step}"));
        tracing::info!(step = step.name(), outcome = %crate::secrets::redact(outcome), "step done");
        self.writer.update(|j| {
            change(j);
            let r = j.record_mut(step);
            r.state = StepState::Done;
            r.finished_at = Some(journal_now());
            j.push_event(Some(step), kind, outcome);
        })?;
        crate::crash::point(&format!("after-outcome:{step}"));
        Ok(())
    }

    /// Put an in-doubt or failed step back to pending with a note.
    fn reset(&mut self, step: Step, why: &str) -> Result<(), Error> {
        self.writer.update(|j| {
            let r = j.record_mut(step);
            r.state = StepState::Pending;
            r.note = Some(why.to_string());
            j.push_event(Some(step), EventKind::Note, why);
        })
    }

    // ----- forward steps -------------------------------------------------

    fn create_target(&mut self) -> Result<String, StepError> {
        let app = self.app();
        let target = self.journal().target.clone();
        let plan = self.journal().options.to_plan.clone();
        self.begin(
            Step::CreateTarget,
            &format!(
                "POST /apps/{app}/addons plan={plan} name={} attachment={}",
                target.addon_name, target.attachment_name
            ),
        )?;
        let body = CreateAddon {
            plan: plan.clone(),
            name: target.addon_name.clone(),
            attachment: AttachmentName {
                name: target.attachment_name.clone(),
            },
            confirm: app.clone(),
        };
        let addon =
            self.client
                .create_addon(&app, &body)
                .map_err(|e| match create_refusal(&e, &plan) {
                    Some(fix) => StepError::Refused {
                        reason: describe_api(&e),
                        fix,
                    },
                    None => write_error(&e),
                })?;
        let detail = format!("created {} ({plan}), id {}", addon.name, addon.id);
        self.finish_with(Step::CreateTarget, &detail, |j| {
            j.results.target_addon_id = Some(addon.id.clone());
            j.results.target_created = true;
        })?;
        Ok(detail)
    }

    fn wait_target(&mut self) -> Result<String, StepError> {
        let id = self.target_id()?;
        self.begin(Step::WaitTarget, "waiting for the target to be provisioned")?;
        let start = Instant::now();
        // Since when the add-on says `provisioned` but its wait_status is
        // 404: Heroku answers 404 only for a moment after creation.
        let mut unknown_since: Option<Instant> = None;
        loop {
            let addon = self.client.addon(&id).map_err(|e| read_error(&e))?;
            crate::crash::point("polling:wait-target");
            match addon.state.as_deref() {
                Some("deprovisioned") => {
                    return Err(StepError::Definite(format!(
                        "the target add-on {} was deprovisioned while provisioning: Heroku \
                         could not create it",
                        addon.name
                    )))
                }
                // No state at all: wait_status alone decides.
                Some("provisioned") | None => match self.client.wait_status(&id) {
                    Ok(w) if w.error => {
                        return Err(StepError::Definite(format!(
                            "the target database reports an error while provisioning: {}",
                            w.message
                        )))
                    }
                    Ok(w) if !w.waiting => break,
                    Ok(_) => unknown_since = None,
                    Err(e) if e.is_not_found() => {
                        let since = *unknown_since.get_or_insert_with(Instant::now);
                        if addon.state.is_some() && since.elapsed() >= WAIT_STATUS_GRACE {
                            self.observer.progress(&Progress::Warning(format!(
                                "the Data API has no wait_status for {} after {}; going by \
                                 the add-on's state, provisioned (a copy into a database that \
                                 is not ready fails before anything is switched)",
                                addon.name,
                                humantime::format_duration(WAIT_STATUS_GRACE)
                            )));
                            break;
                        }
                    }
                    Err(e) => return Err(read_error(&e)),
                },
                _ => {}
            }
            let elapsed = start.elapsed();
            if elapsed > self.settings.provision_timeout {
                return Err(StepError::Definite(format!(
                    "the target was not provisioned within {}",
                    humantime::format_duration(self.settings.provision_timeout)
                )));
            }
            self.observer.progress(&Progress::Waiting(
                Step::WaitTarget,
                "provisioning".into(),
                elapsed,
            ));
            self.pause_poll(steps::backoff_poll(elapsed, self.settings.poll_cap))?;
        }
        // Read both URLs now, outside the maintenance window.
        self.read_urls().map_err(|e| read_error(&e))?;
        let detail = format!(
            "provisioned after {}",
            humantime::format_duration(round(start.elapsed()))
        );
        let fp = self.urls.target.as_deref().map(fingerprint);
        self.finish_with(Step::WaitTarget, &detail, |j| {
            j.results.target_url_fingerprint = fp;
        })?;
        Ok(detail)
    }

    fn alias_source(&mut self, facts: &Facts) -> Result<String, StepError> {
        let app = self.app();
        self.begin(
            Step::AliasSource,
            &format!(
                "POST /addon-attachments addon={} (API-chosen name)",
                facts.source.name
            ),
        )?;
        let body = CreateAttachment {
            addon: facts.source.id.clone(),
            app: app.clone(),
            name: None,
            namespace: None,
            confirm: app.clone(),
        };
        let att = self
            .client
            .create_attachment(&body)
            .map_err(|e| write_error(&e))?;
        let detail = format!("{} now also reaches the old database", att.config_var());
        self.finish_with(Step::AliasSource, &detail, |j| {
            j.results.alias = Some(AttachmentRecord {
                id: att.id.clone(),
                name: att.name.clone(),
            });
        })?;
        Ok(detail)
    }

    fn maintenance_on(&mut self) -> Result<String, StepError> {
        self.refuse_one_offs()?;
        self.switch_maintenance(Step::MaintenanceOn, true)
    }

    /// One-off dynos are not stopped by scaling and could write to the old
    /// database during the copy: refuse to go on while any is up. A read;
    /// it runs before the app is touched (before maintenance, or before
    /// the scale-down when maintenance was already on).
    fn refuse_one_offs(&mut self) -> Result<(), StepError> {
        let app = self.app();
        let dynos = self.client.dynos(&app).map_err(|e| read_error(&e))?;
        one_offs_running(&app, &dynos)
    }

    /// Turn maintenance on or off as `step`, recording when it happened
    /// (the ends of the maintenance window).
    fn switch_maintenance(&mut self, step: Step, on: bool) -> Result<String, StepError> {
        let app = self.app();
        self.begin(step, &format!("PATCH /apps/{app} maintenance={on}"))?;
        self.client
            .set_maintenance(&app, on)
            .map_err(|e| write_error(&e))?;
        let at = journal_now();
        let detail = format!("maintenance is {}", on_off(on));
        self.finish_with(step, &detail, |j| {
            let w = j.results.window.get_or_insert(WindowRecord {
                maintenance_on_at: None,
                maintenance_off_at: None,
            });
            if on {
                w.maintenance_on_at = Some(at);
            } else {
                w.maintenance_off_at = Some(at);
            }
        })?;
        Ok(detail)
    }

    fn scale_down(&mut self, facts: &Facts) -> Result<String, StepError> {
        if facts.maintenance_was_on {
            // maintenance-on was skipped, and with it its check.
            self.refuse_one_offs()?;
        }
        let app = self.app();
        let updates = steps::scale_down_updates(facts);
        let list = updates
            .iter()
            .map(|u| format!("{}=0", u.process_type))
            .collect::<Vec<_>>()
            .join(" ");
        self.begin(
            Step::ScaleDown,
            &format!("PATCH /apps/{app}/formation {list}"),
        )?;
        let live = self
            .client
            .update_formation(&app, &updates)
            .map_err(|e| write_error(&e))?;
        self.live_formation = live;
        let detail = format!("scaled {list}");
        self.finish(Step::ScaleDown, &detail)?;
        Ok(detail)
    }

    fn wait_dynos(&mut self, step: Step) -> Result<String, StepError> {
        self.begin(step, "waiting for the dynos to be gone")?;
        let start = Instant::now();
        let last = self.drain(step)?;
        // One started while the app was already down (refused earlier
        // otherwise) would write to the old database during the copy.
        one_offs_running(&self.app(), &last)?;
        let detail = format!(
            "all dynos gone after {}",
            humantime::format_duration(round(start.elapsed()))
        );
        self.finish(step, &detail)?;
        Ok(detail)
    }

    /// Wait until no dyno is left but one-off ones ([`steps::dynos_left`]);
    /// answers the last list of dynos seen.
    fn drain(&mut self, step: Step) -> Result<Vec<crate::heroku::types::Dyno>, StepError> {
        let app = self.app();
        let start = Instant::now();
        loop {
            let dynos = self.client.dynos(&app).map_err(|e| read_error(&e))?;
            crate::crash::point(&format!("polling:{step}"));
            let left = steps::dynos_left(&dynos);
            if left.is_empty() {
                return Ok(dynos);
            }
            let elapsed = start.elapsed();
            if elapsed > self.settings.drain_timeout {
                return Err(StepError::Definite(format!(
                    "dynos still running after {}: {}. They can still write to the old \
                     database; stop them (`heroku ps:stop {} --app {app}`) and resume",
                    humantime::format_duration(self.settings.drain_timeout),
                    left.join(", "),
                    left[0]
                )));
            }
            self.observer.progress(&Progress::Waiting(
                step,
                format!("{} dyno(s) stopping", left.len()),
                elapsed,
            ));
            self.pause_poll(steps::drain_poll(elapsed).min(self.settings.poll_cap))?;
        }
    }

    fn start_copy(&mut self, facts: &Facts) -> Result<String, StepError> {
        let target_id = self.target_id()?;
        let target = self.journal().target.clone();
        let from = self.journal().options.from_attachment.clone();
        if self.urls.source.is_none() || self.urls.target.is_none() {
            self.read_urls().map_err(|e| read_error(&e))?;
        }
        let (Some(source_url), Some(target_url)) =
            (self.urls.source.clone(), self.urls.target.clone())
        else {
            return Err(StepError::Definite(
                "cannot read the source or target URL from the app's config vars".into(),
            ));
        };
        if fingerprint(&source_url) != facts.source_url_fingerprint {
            self.observer.progress(&Progress::Warning(format!(
                "{from}_URL changed since preflight (credentials rotated?); copying from its \
                 current value"
            )));
        }
        self.begin(
            Step::StartCopy,
            &format!(
                "POST /client/v11/databases/{target_id}/transfers from={from} to={}",
                target.attachment_name
            ),
        )?;
        let body = CreateTransfer {
            from_name: from.clone(),
            from_url: source_url,
            to_name: target.attachment_name.clone(),
            to_url: target_url,
        };
        let t = self
            .client
            .create_transfer(&target_id, &body)
            .map_err(|e| write_error(&e))?;
        let detail = format!("transfer {} started", t.uuid);
        self.finish_with(Step::StartCopy, &detail, |j| {
            j.results.transfer = Some(transfer_record(&t));
        })?;
        Ok(detail)
    }

    fn wait_copy(&mut self) -> Result<String, StepError> {
        let app = self.app();
        let Some(record) = self.journal().results.transfer.clone() else {
            self.reset(Step::StartCopy, "no transfer is recorded; starting one")?;
            return Err(StepError::Definite("no transfer recorded".into()));
        };
        if record.succeeded == Some(false) {
            // A resume after a failed copy: start a new transfer.
            self.writer.update(|j| {
                j.results.transfer = None;
                let r = j.record_mut(Step::StartCopy);
                r.state = StepState::Pending;
                r.note = Some("the previous transfer failed; a new one will be started".into());
                j.record_mut(Step::WaitCopy).state = StepState::Pending;
                j.push_event(
                    Some(Step::StartCopy),
                    EventKind::Note,
                    "the previous transfer failed; starting a new one",
                );
            })?;
            return self
                .run_step(Step::StartCopy)
                .and_then(|_| self.wait_copy());
        }
        self.begin(
            Step::WaitCopy,
            &format!("following transfer {}", record.uuid),
        )?;
        let name = steps::transfer_name(record.num).unwrap_or_else(|| record.uuid.clone());
        let info = format!("heroku pg:backups:info {name} --app {app}");
        let start = Instant::now();
        let mut silence = StallWatch::new(self.settings.copy_stall_timeout);
        let mut failures = 0u32;
        let min = Duration::from_millis(100);
        loop {
            let t = match self.client.transfer(&app, &record.uuid, false) {
                Ok(t) => t,
                // A revoked token or lost access fails every later look too.
                Err(e) if matches!(e.status(), Some(401) | Some(403)) => {
                    return Err(read_error(&e))
                }
                Err(e) => {
                    // A failed look does not stop the copy at Heroku: look
                    // again, as the official CLI does, up to its limit.
                    failures += 1;
                    let limit = steps::COPY_POLL_FAILURES_TOLERATED;
                    if failures > limit {
                        return Err(StepError::Definite(format!(
                            "{failures} looks at transfer {name} failed (the last: {}). The \
                             transfer may still be running at Heroku (`{info}`); nothing was \
                             switched. `pgmigrate resume` follows the same transfer",
                            describe_api(&e)
                        )));
                    }
                    self.observer.progress(&Progress::Warning(format!(
                        "looking at transfer {name} failed ({failures} of {limit} tolerated): \
                         {}; the copy goes on at Heroku, looking again",
                        describe_api(&e)
                    )));
                    self.pause_poll(steps::copy_poll(
                        start.elapsed(),
                        min,
                        self.settings.copy_poll_max,
                    ))?;
                    continue;
                }
            };
            crate::crash::point("polling:wait-copy");
            let elapsed = start.elapsed();
            match steps::copy_verdict(&t) {
                CopyVerdict::Succeeded {
                    processed,
                    warnings,
                } => {
                    if warnings > 0 {
                        self.suspect_copy(&app, &name, &t, warnings)?;
                    }
                    let detail = format!(
                        "copied {} in {}{}",
                        human_bytes(processed),
                        humantime::format_duration(round(elapsed)),
                        if warnings > 0 {
                            format!(" ({warnings} warnings)")
                        } else {
                            String::new()
                        }
                    );
                    self.finish_with(Step::WaitCopy, &detail, |j| {
                        j.results.transfer = Some(transfer_record(&t));
                    })?;
                    return Ok(detail);
                }
                CopyVerdict::Failed { reason, .. } => {
                    // Fetch the logs for the message.
                    let logs = self
                        .client
                        .transfer(&app, &record.uuid, true)
                        .map(|t| match steps::copy_verdict(&t) {
                            CopyVerdict::Failed { last_logs, .. } => last_logs,
                            _ => Vec::new(),
                        })
                        .unwrap_or_default();
                    self.writer.update(|j| {
                        j.results.transfer = Some(transfer_record(&t));
                        if let Some(tr) = j.results.transfer.as_mut() {
                            tr.succeeded = Some(false);
                        }
                    })?;
                    return Err(StepError::Definite(format!(
                        "the copy failed: {reason}. Nothing was switched.{}",
                        if logs.is_empty() {
                            String::new()
                        } else {
                            format!("\n  last transfer log lines:\n    {}", logs.join("\n    "))
                        }
                    )));
                }
                verdict @ (CopyVerdict::Queued | CopyVerdict::Running { .. }) => {
                    let (processed, total, queued) = match verdict {
                        CopyVerdict::Running { processed, total } => (processed, total, false),
                        _ => (0, t.source_bytes, true),
                    };
                    self.observer.progress(&Progress::Copy {
                        processed,
                        total,
                        elapsed,
                        queued,
                    });
                    if let Some(quiet) = silence.silence(processed, elapsed) {
                        self.report_silence(&name, &info, queued, processed, quiet)?;
                    }
                    self.pause_poll(steps::copy_poll(elapsed, min, self.settings.copy_poll_max))?;
                }
            }
        }
    }

    /// A long silence of a transfer Heroku has not failed: said, journaled
    /// on the step (so `status` shows it), never acted on. Only the
    /// operator decides: wait, or `rollback` (which cancels the transfer).
    fn report_silence(
        &mut self,
        name: &str,
        info: &str,
        queued: bool,
        processed: u64,
        quiet: Duration,
    ) -> Result<(), StepError> {
        let app = self.app();
        let what = if queued {
            format!(
                "transfer {name} has been queued at Heroku for {} (not started yet)",
                humantime::format_duration(Duration::from_secs(quiet.as_secs()))
            )
        } else {
            format!(
                "transfer {name} has moved no byte for {} (at {}; pg_restore may be building \
                 indexes)",
                humantime::format_duration(Duration::from_secs(quiet.as_secs())),
                human_bytes(processed)
            )
        };
        let message = format!(
            "{what}. Heroku has not failed it, so pgmigrate keeps waiting; see `{info}`. To give \
             up instead: Ctrl-C, then `pgmigrate rollback --app {app}` (cancels the transfer)"
        );
        self.observer.progress(&Progress::Warning(message.clone()));
        self.writer.update(|j| {
            j.record_mut(Step::WaitCopy).note = Some(message.clone());
            j.push_event(Some(Step::WaitCopy), EventKind::Note, &message);
        })?;
        Ok(())
    }

    /// A transfer Heroku reports as succeeded although pg_restore ignored
    /// errors: warn with the count and the last log lines, journal it, and
    /// with `--verify none` stop before the cut-over unless `--force` (with
    /// a verify step, that step decides).
    fn suspect_copy(
        &mut self,
        app: &str,
        name: &str,
        t: &crate::heroku::types::Transfer,
        warnings: u64,
    ) -> Result<(), StepError> {
        let logs = self
            .client
            .transfer(app, &t.uuid, true)
            .map(|v| steps::last_logs(&v, 5))
            .unwrap_or_default();
        let mut message = format!(
            "Heroku reports transfer {name} succeeded with {warnings} warning(s): pg_restore \
             ignored errors (\"errors ignored on restore\"), so the copy may be incomplete"
        );
        if !logs.is_empty() {
            message.push_str(&format!(
                "\n  last transfer log lines:\n    {}",
                logs.join("\n    ")
            ));
        }
        self.observer.progress(&Progress::Warning(message.clone()));
        let record = transfer_record(t);
        self.writer.update(|j| {
            j.results.transfer = Some(record);
            j.push_event(Some(Step::WaitCopy), EventKind::Note, &message);
        })?;
        let verify = self.journal().options.verify;
        if verify == crate::verify::VerifyMode::None && !self.settings.force {
            return Err(StepError::Definite(format!(
                "{message}\n  With --verify none nothing checks the copy, so pgmigrate stops \
                 before the cut-over; nothing was switched. Check the copy (`heroku \
                 pg:backups:info {name} --app {app}`, or `pgmigrate resume --app {app} --verify \
                 counts`), then `pgmigrate resume --app {app} --force` to switch to it anyway, or \
                 `pgmigrate rollback --app {app}`"
            )));
        }
        Ok(())
    }

    fn verify(&mut self, mode: crate::verify::VerifyMode) -> Result<String, StepError> {
        self.begin(Step::Verify, &format!("comparing the databases ({mode})"))?;
        // The URLs read before the window are reused (two fewer requests
        // while the app is down); a resumed run reads them again.
        if self.urls.source.is_none() || self.urls.target.is_none() {
            self.read_urls().map_err(|e| read_error(&e))?;
        }
        let (Some(source), Some(target)) = (self.urls.source.clone(), self.urls.target.clone())
        else {
            return Err(StepError::Definite(
                "cannot read the old or new database's URL from the app's config vars".into(),
            ));
        };
        crate::crash::point("polling:verify");
        let report = crate::verify::verify(&source, &target, mode).map_err(|e| {
            StepError::Definite(format!(
                "the databases could not be compared: {e}. If this machine cannot reach \
                 them, `pgmigrate resume --verify none` goes on without the comparison"
            ))
        })?;
        let mismatches = report.mismatches;
        let listing = report.describe_mismatches();
        let tables = report.tables.len();
        let took = report.elapsed_ms;
        self.writer.update(|j| j.results.verify = Some(report))?;
        if mismatches > 0 {
            return Err(StepError::Definite(format!(
                "the new database differs from the old one in {mismatches} of {tables} table(s); \
                 nothing was switched:\n    {listing}\n  `pgmigrate rollback` is the way back"
            )));
        }
        let detail = format!(
            "{tables} table(s) match ({mode}) in {:.1}s",
            took as f64 / 1000.0
        );
        self.finish(Step::Verify, &detail)?;
        Ok(detail)
    }

    fn promote_target(&mut self) -> Result<String, StepError> {
        let name = self.journal().options.from_attachment.clone();
        self.attach_target(Step::PromoteTarget, name, None)
    }

    fn repoint_pool(&mut self, facts: &Facts) -> Result<String, StepError> {
        let pool = facts.pool.clone().map(|p| p.name).unwrap_or_default();
        self.attach_target(Step::RepointPool, pool, Some(POOL_NAMESPACE))
    }

    /// Attach the target as `name` (in `namespace`) in place of whatever
    /// holds that attachment now, as `heroku pg:promote` does.
    fn attach_target(
        &mut self,
        step: Step,
        name: String,
        namespace: Option<&str>,
    ) -> Result<String, StepError> {
        let app = self.app();
        let target_id = self.target_id()?;
        self.begin(
            step,
            &format!(
                "POST /addon-attachments addon={target_id} name={name}{} confirm",
                namespace
                    .map(|n| format!(" namespace={n}"))
                    .unwrap_or_default()
            ),
        )?;
        let body = CreateAttachment {
            addon: target_id,
            app: app.clone(),
            name: Some(name.clone()),
            namespace: namespace.map(str::to_string),
            confirm: app,
        };
        self.client
            .create_attachment(&body)
            .map_err(|e| write_error(&e))?;
        let detail = format!("{name} now points at the new database");
        self.finish(step, &detail)?;
        Ok(detail)
    }

    fn rebind_config(&mut self, facts: &Facts) -> Result<String, StepError> {
        let app = self.app();
        if self.urls.target.is_none() {
            self.read_urls().map_err(|e| read_error(&e))?;
        }
        let Some(url) = self.urls.target.clone() else {
            return Err(StepError::Definite(
                "cannot read the target's URL from the app's config vars".into(),
            ));
        };
        let vars: BTreeMap<String, Option<String>> = facts
            .rebind_vars
            .iter()
            .map(|v| (v.clone(), Some(url.clone())))
            .collect();
        let names = facts.rebind_vars.join(", ");
        self.begin(
            Step::RebindConfig,
            &format!("PATCH /apps/{app}/config-vars {names} = the new database's URL"),
        )?;
        self.client
            .update_config_vars(&app, &vars)
            .map_err(|e| write_error(&e))?;
        let detail = format!("rebound {names}");
        self.finish(Step::RebindConfig, &detail)?;
        Ok(detail)
    }

    fn scale_up(&mut self, facts: &Facts) -> Result<String, StepError> {
        let app = self.app();
        let updates = steps::scale_up_updates(facts, &self.live_formation);
        let list = updates
            .iter()
            .map(|u| format!("{}={}", u.process_type, u.quantity))
            .collect::<Vec<_>>()
            .join(" ");
        self.begin(
            Step::ScaleUp,
            &format!("PATCH /apps/{app}/formation {list}"),
        )?;
        self.client
            .update_formation(&app, &updates)
            .map_err(|e| write_error(&e))?;
        let detail = format!("scaled {list}");
        self.finish(Step::ScaleUp, &detail)?;
        Ok(detail)
    }

    fn maintenance_off(&mut self) -> Result<String, StepError> {
        self.switch_maintenance(Step::MaintenanceOff, false)
    }

    // ----- helpers -------------------------------------------------------

    fn interrupted(&self) -> bool {
        self.settings
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Sleep between two polls, waking early (with `Interrupted`) when the
    /// run is asked to stop.
    fn pause_poll(&self, d: Duration) -> Result<(), StepError> {
        let end = Instant::now() + d;
        loop {
            if self.interrupted() {
                return Err(StepError::Interrupted);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    fn target_id(&self) -> Result<String, StepError> {
        self.journal()
            .results
            .target_addon_id
            .clone()
            .ok_or_else(|| StepError::Definite("the target add-on's id is not known".into()))
    }

    /// Read the source and target URLs from the app's config vars, into
    /// memory only. The source is found through any non-pool attachment of
    /// the source add-on, so this works before and after the cut-over.
    fn read_urls(&mut self) -> Result<(), ApiError> {
        let app = self.app();
        let Some(facts) = self.journal().facts.clone() else {
            return Ok(());
        };
        let target_id = self.journal().results.target_addon_id.clone();
        let attachments = self.client.attachments(&app)?;
        let config = self.client.config_vars(&app)?;
        let from = self.journal().options.from_attachment.clone();
        let target_var = format!("{}_URL", self.journal().target.attachment_name);
        let url_of = |addon_id: &str| {
            let mut candidates: Vec<_> = attachments
                .iter()
                .filter(|a| a.addon_id() == Some(addon_id) && a.namespace.is_none())
                .collect();
            // Prefer the journaled attachment name (stable) over others.
            candidates.sort_by_key(|a| a.name != from);
            candidates
                .iter()
                .find_map(|a| config.get(&a.config_var()).cloned())
        };
        let source = url_of(&facts.source.id);
        // The target is looked up by its own attachment first, so that
        // DATABASE pointing at it (after the cut-over) changes nothing.
        let target = target_id
            .as_deref()
            .and_then(|id| config.get(&target_var).cloned().or_else(|| url_of(id)));
        self.urls.source = source;
        self.urls.target = target;
        Ok(())
    }

    // ----- reconciliation of in-doubt steps ------------------------------

    /// A step's intent was journaled but not its outcome: find out from the
    /// live API whether it took effect, and record what was found (Done) or
    /// put it back to pending.
    fn reconcile(&mut self, step: Step) -> Result<(), StepError> {
        let app = self.app();
        let facts = self.facts()?;
        let found: Option<String> = match step {
            Step::CreateTarget => return self.reconcile_create_target(),
            Step::AliasSource => {
                let atts = self.client.attachments(&app).map_err(|e| read_error(&e))?;
                let known: BTreeSet<&str> = facts
                    .source_other_attachments
                    .iter()
                    .map(String::as_str)
                    .chain([self.journal().options.from_attachment.as_str()])
                    .collect();
                let alias = atts.iter().find(|a| {
                    a.addon_id() == Some(facts.source.id.as_str())
                        && a.namespace.is_none()
                        && !known.contains(a.name.as_str())
                });
                match alias {
                    Some(a) => {
                        let rec = AttachmentRecord {
                            id: a.id.clone(),
                            name: a.name.clone(),
                        };
                        self.writer.update(|j| j.results.alias = Some(rec))?;
                        Some(format!("found the alias attachment {}", a.name))
                    }
                    None => None,
                }
            }
            Step::MaintenanceOn => {
                let a = self.client.app(&app).map_err(|e| read_error(&e))?;
                a.maintenance.then(|| "maintenance is on".to_string())
            }
            Step::MaintenanceOff => {
                let a = self.client.app(&app).map_err(|e| read_error(&e))?;
                (!a.maintenance).then(|| "maintenance is off".to_string())
            }
            Step::ScaleDown => {
                let f = self.client.formation(&app).map_err(|e| read_error(&e))?;
                let zero = steps::running_types(&facts).iter().all(|p| {
                    f.iter()
                        .any(|l| l.process_type == p.process_type && l.quantity == 0)
                });
                if zero {
                    self.live_formation = f;
                }
                zero.then(|| "the formation is at zero".to_string())
            }
            Step::ScaleUp => {
                let f = self.client.formation(&app).map_err(|e| read_error(&e))?;
                steps::formation_matches(&facts.formation, &f)
                    .then(|| "the formation is as recorded".to_string())
            }
            Step::StartCopy => {
                let target = self.journal().target.attachment_name.clone();
                let list = match self.client.transfers(&app) {
                    Ok(list) => list,
                    // Heroku lists an app's transfers (`heroku pg:backups`
                    // reads the same list); an API that does not cannot say
                    // whether the lost request started one. Starting a new
                    // transfer is then the only way on: it empties the
                    // target before it restores, and the target is this
                    // run's own add-on, so no data but a copy is at stake.
                    Err(e) if e.is_not_found() => {
                        let why = "this API does not list transfers, so whether the lost \
                                   request started one cannot be checked; it is taken as not \
                                   started (a new transfer empties the target first, and \
                                   destroying the target stops any transfer into it)";
                        self.observer.progress(&Progress::Warning(why.into()));
                        self.note(Some(step), EventKind::Note, why)?;
                        Vec::new()
                    }
                    Err(e) => return Err(read_error(&e)),
                };
                // The newest transfer to this run's target attachment.
                match list
                    .iter()
                    .filter(|t| t.to_name.as_deref() == Some(target.as_str()))
                    .max_by_key(|t| t.num.unwrap_or(0))
                {
                    Some(t) => {
                        let rec = transfer_record(t);
                        self.writer.update(|j| j.results.transfer = Some(rec))?;
                        Some(format!("found transfer {}", t.uuid))
                    }
                    None => None,
                }
            }
            Step::PromoteTarget | Step::RepointPool => {
                let target_id = self.target_id()?;
                let atts = self.client.attachments(&app).map_err(|e| read_error(&e))?;
                let (name, ns) = if step == Step::PromoteTarget {
                    (self.journal().options.from_attachment.clone(), None)
                } else {
                    (
                        facts.pool.clone().map(|p| p.name).unwrap_or_default(),
                        Some(POOL_NAMESPACE.to_string()),
                    )
                };
                atts.iter()
                    .any(|a| {
                        a.name == name
                            && a.namespace == ns
                            && a.addon_id() == Some(target_id.as_str())
                    })
                    .then(|| format!("{name} points at the target"))
            }
            Step::RebindConfig => {
                self.read_urls().map_err(|e| read_error(&e))?;
                let config = self.client.config_vars(&app).map_err(|e| read_error(&e))?;
                let target = self.urls.target.clone();
                (target.is_some()
                    && facts
                        .rebind_vars
                        .iter()
                        .all(|v| config.get(v) == target.as_ref()))
                .then(|| "the config vars hold the new URL".to_string())
            }
            Step::Preflight
            | Step::WaitTarget
            | Step::WaitDynos
            | Step::WaitCopy
            | Step::Verify => None,
        };
        match found {
            Some(what) => {
                self.finish(step, &format!("reconciled: {what}"))?;
                self.observer
                    .progress(&Progress::StepDone(step, format!("reconciled: {what}")));
            }
            None => self.reset(step, "reconciled: the request had not taken effect")?,
        }
        Ok(())
    }

    fn reconcile_create_target(&mut self) -> Result<(), StepError> {
        let app = self.app();
        let name = self.journal().target.addon_name.clone();
        match self.client.addon(&name) {
            Ok(addon) => {
                let owned_here = addon
                    .app
                    .as_ref()
                    .and_then(|a| a.name.as_deref())
                    .is_none_or(|n| n == app);
                if !owned_here {
                    return Err(StepError::Definite(format!(
                        "an add-on named {name} exists but belongs to another app"
                    )));
                }
                let id = addon.id.clone();
                self.finish_with(
                    Step::CreateTarget,
                    &format!("reconciled: found {name} (id {id}), adopting it"),
                    |j| {
                        j.results.target_addon_id = Some(id.clone());
                        j.results.target_created = true;
                    },
                )?;
                Ok(())
            }
            Err(e) if e.is_not_found() => {
                self.reset(
                    Step::CreateTarget,
                    &format!("reconciled: no add-on named {name} exists; it will be created"),
                )?;
                Ok(())
            }
            Err(e) => Err(read_error(&e)),
        }
    }

    // ----- drift ---------------------------------------------------------

    /// Compare the live app with what the journal expects; stop and show
    /// the differences unless `--force`.
    pub fn check_drift(&mut self) -> Result<(), Error> {
        let app = self.app();
        let expect = crate::status::expectations(self.journal());
        let api = |context: &'static str| {
            move |source: ApiError| Error::Api {
                context: format!("checking the live app ({context})"),
                source: Box::new(source),
            }
        };
        let mut diffs = Vec::new();
        if let Some(m) = expect.maintenance {
            let live = self.client.app(&app).map_err(api("app"))?.maintenance;
            if live != m {
                diffs.push(format!(
                    "maintenance is {}, the journal expects {}",
                    on_off(live),
                    on_off(m)
                ));
            }
        }
        if let Some(zero) = expect.formation_at_zero {
            let facts = self.facts()?;
            let live = self.client.formation(&app).map_err(api("formation"))?;
            let ok = if zero {
                steps::running_types(&facts).iter().all(|p| {
                    live.iter()
                        .any(|l| l.process_type == p.process_type && l.quantity == 0)
                })
            } else {
                steps::formation_matches(&facts.formation, &live)
            };
            if !ok {
                diffs.push(format!(
                    "the formation is {}, the journal expects {}",
                    live.iter()
                        .map(|f| format!("{}={}", f.process_type, f.quantity))
                        .collect::<Vec<_>>()
                        .join(" "),
                    if zero {
                        "every process type at zero".to_string()
                    } else {
                        facts
                            .formation
                            .iter()
                            .map(|p| format!("{}={}", p.process_type, p.quantity))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                ));
            }
        }
        if let Some(on_target) = expect.database_on_target {
            let facts = self.facts()?;
            let from = self.journal().options.from_attachment.clone();
            let atts = self.client.attachments(&app).map_err(api("attachments"))?;
            let live = atts
                .iter()
                .find(|a| a.name == from && a.namespace.is_none())
                .and_then(|a| a.addon_id().map(str::to_string));
            let want = if on_target {
                self.journal().results.target_addon_id.clone()
            } else {
                Some(facts.source.id.clone())
            };
            if live != want {
                diffs.push(format!(
                    "{from} is attached to {}, the journal expects the {} database",
                    live.as_deref().unwrap_or("nothing"),
                    if on_target { "new" } else { "old" }
                ));
            }
        }
        if diffs.is_empty() {
            return Ok(());
        }
        if self.settings.force {
            let text = format!("drift ignored (--force): {}", diffs.join("; "));
            self.observer.progress(&Progress::Warning(text.clone()));
            self.note(None, EventKind::Note, &text)?;
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{app} was changed outside pgmigrate since the journal was written:\n  - {}\n  \
             help: put it back as the journal expects, or pass --force to proceed from the app \
             as it is now.",
            diffs.join("\n  - ")
        )))
    }

    // ----- rollback ------------------------------------------------------

    /// Roll the run back step by step, journaling each undo.
    pub fn rollback(&mut self) -> Result<Journal, Error> {
        let j = self.journal().clone();
        if j.outcome == Outcome::RolledBack {
            return Err(Error::Usage(format!(
                "the last run of {} ({}) is already rolled back",
                j.app, j.run_id
            )));
        }
        if j.outcome == Outcome::Refused {
            return Err(Error::Usage(format!(
                "the last run of {} ({}) changed nothing: there is nothing to roll back",
                j.app, j.run_id
            )));
        }
        if j.direction == Direction::Forward && steps::app_ran_on_target(&j) && !self.settings.force
        {
            return Err(Error::Usage(format!(
                "{app} has run on the new database since the cut-over (its dynos were scaled \
                 back up), so rolling back would strand whatever it wrote there.\n  help: copy \
                 that data back yourself first, or pass --force to roll back anyway.",
                app = j.app
            )));
        }
        self.check_drift()?;
        self.writer.update(|j| {
            j.direction = Direction::Rollback;
            j.outcome = Outcome::InProgress;
            j.push_event(None, EventKind::Note, "rollback started");
        })?;
        let mut doubts = 0;
        loop {
            match steps::next_rollback(self.journal()) {
                NextRollback::Finished => break,
                NextRollback::Undo(step, undo) => {
                    if self.interrupted() {
                        return Err(self.undo_stopped(step, StepError::Interrupted));
                    }
                    match self.undo(step, undo) {
                        Ok(()) => {}
                        // Every undo checks the live app or is safe to
                        // repeat, so an undo whose answer was lost is simply
                        // taken again (its record stays `running`).
                        Err(StepError::Doubt(reason)) if doubts < MAX_DOUBT_RETRIES => {
                            doubts += 1;
                            self.note(
                                Some(step),
                                EventKind::Error,
                                &format!("undo: {reason}; trying it again"),
                            )?;
                        }
                        Err(e) => return Err(self.undo_stopped(step, e)),
                    }
                }
            }
        }
        self.writer.update(|j| {
            j.outcome = Outcome::RolledBack;
            j.push_event(None, EventKind::Note, "rollback completed");
        })?;
        Ok(self.journal().clone())
    }

    fn undo_stopped(&mut self, step: Step, e: StepError) -> Error {
        let reason = match e {
            StepError::Local(e) => return e,
            StepError::Interrupted => "interrupted (Ctrl-C or SIGTERM); the request in flight \
                                       was finished and journaled"
                .to_string(),
            StepError::Definite(r) | StepError::Doubt(r) | StepError::Refused { reason: r, .. } => {
                r
            }
        };
        let written = self.writer.update(|j| {
            j.outcome = Outcome::Stopped;
            j.push_event(
                Some(step),
                EventKind::Error,
                &format!("undo failed: {reason}"),
            );
        });
        if let Err(local) = written {
            return local;
        }
        Error::Stopped {
            verb: crate::error::ROLLBACK_VERB,
            app: self.app(),
            run_id: self.journal().run_id.clone(),
            step,
            reason: crate::secrets::redact(&reason),
        }
    }

    fn undo_begin(&mut self, step: Step, undo: Undo) -> Result<(), Error> {
        self.observer.progress(&Progress::UndoStarted(step, undo));
        self.writer.update(|j| {
            let r = j.record_mut(step);
            r.undo = Some(StepState::Running);
            r.undo_started_at = Some(journal_now());
            j.push_event(
                Some(step),
                EventKind::Intent,
                &format!("undo: {}", undo.describe()),
            );
        })?;
        crate::crash::point(&format!("undo-after-intent:{step}"));
        Ok(())
    }

    fn undo_end(
        &mut self,
        step: Step,
        undo: Undo,
        state: StepState,
        detail: &str,
    ) -> Result<(), Error> {
        crate::crash::point(&format!("undo-before-outcome:{step}"));
        self.writer.update(|j| {
            let r = j.record_mut(step);
            r.undo = Some(state);
            r.undo_finished_at = Some(journal_now());
            j.push_event(Some(step), EventKind::Outcome, &format!("undo: {detail}"));
        })?;
        crate::crash::point(&format!("undo-after-outcome:{step}"));
        self.observer.progress(&if state == StepState::Skipped {
            Progress::UndoSkipped(step, undo, detail.to_string())
        } else {
            Progress::UndoDone(step, undo, detail.to_string())
        });
        Ok(())
    }

    fn undo(&mut self, step: Step, undo: Undo) -> Result<(), StepError> {
        let app = self.app();
        let facts = self.facts()?;
        self.undo_begin(step, undo)?;
        let (state, detail) = match undo {
            Undo::Nothing => (StepState::Skipped, "nothing to undo".to_string()),
            Undo::ScaleToZero => {
                let updates = steps::scale_down_updates(&facts);
                self.client
                    .update_formation(&app, &updates)
                    .map_err(|e| write_error(&e))?;
                self.drain(step)?;
                (StepState::Done, "scaled to zero; dynos gone".to_string())
            }
            Undo::MaintenanceOn => {
                self.client
                    .set_maintenance(&app, true)
                    .map_err(|e| write_error(&e))?;
                (StepState::Done, "maintenance is on".to_string())
            }
            Undo::MaintenanceOff => {
                self.client
                    .set_maintenance(&app, false)
                    .map_err(|e| write_error(&e))?;
                (StepState::Done, "maintenance is off".to_string())
            }
            Undo::RestoreFormation => {
                let updates = steps::scale_up_updates(&facts, &[]);
                self.client
                    .update_formation(&app, &updates)
                    .map_err(|e| write_error(&e))?;
                (StepState::Done, "formation restored".to_string())
            }
            Undo::RestoreConfig => {
                self.read_urls().map_err(|e| read_error(&e))?;
                let Some(url) = self.urls.source.clone() else {
                    return Err(StepError::Definite(
                        "cannot read the old database's URL: it has no attachment left on the app"
                            .into(),
                    ));
                };
                if fingerprint(&url) != facts.source_url_fingerprint {
                    self.observer.progress(&Progress::Warning(
                        "the old database's URL differs from the one recorded (credentials \
                         rotated?); restoring its current URL"
                            .into(),
                    ));
                }
                let vars: BTreeMap<String, Option<String>> = facts
                    .rebind_vars
                    .iter()
                    .map(|v| (v.clone(), Some(url.clone())))
                    .collect();
                self.client
                    .update_config_vars(&app, &vars)
                    .map_err(|e| write_error(&e))?;
                (
                    StepState::Done,
                    format!("{} hold the old URL again", facts.rebind_vars.join(", ")),
                )
            }
            Undo::RepointPoolToSource => {
                let pool = facts.pool.clone().map(|p| p.name).unwrap_or_default();
                self.reattach_source(&facts, &pool, Some(POOL_NAMESPACE))?;
                (
                    StepState::Done,
                    format!("{pool} points at the old database"),
                )
            }
            Undo::ReattachSource => {
                let name = self.journal().options.from_attachment.clone();
                self.reattach_source(&facts, &name, None)?;
                (
                    StepState::Done,
                    format!("{name} points at the old database"),
                )
            }
            Undo::CancelTransfer => self.undo_transfer()?,
            Undo::DetachAlias => {
                if self.journal().results.alias.is_none() {
                    // Its creation was in doubt: look for it.
                    let _ = self.reconcile(Step::AliasSource);
                }
                match self.journal().results.alias.clone() {
                    Some(alias) => match self.client.delete_attachment(&alias.id) {
                        Ok(()) => (StepState::Done, format!("removed {}", alias.name)),
                        Err(e) if e.is_not_found() => {
                            (StepState::Done, format!("{} was already gone", alias.name))
                        }
                        Err(e) => return Err(write_error(&e)),
                    },
                    None => (StepState::Skipped, "no alias attachment exists".to_string()),
                }
            }
            Undo::DestroyTarget => {
                let name = self.journal().target.addon_name.clone();
                if self.settings.keep_target {
                    (StepState::Skipped, format!("kept {name} (--keep-target)"))
                } else {
                    match self.client.delete_addon(&app, &name) {
                        Ok(()) => {
                            self.writer.update(|j| j.results.target_destroyed = true)?;
                            (StepState::Done, format!("destroyed {name}"))
                        }
                        Err(e) if e.is_not_found() => {
                            self.writer.update(|j| j.results.target_destroyed = true)?;
                            (StepState::Done, format!("{name} does not exist"))
                        }
                        Err(e) => return Err(write_error(&e)),
                    }
                }
            }
        };
        self.undo_end(step, undo, state, &detail)?;
        Ok(())
    }

    /// Attach the source add-on as `name` (in `namespace`) again.
    fn reattach_source(
        &self,
        facts: &Facts,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<(), StepError> {
        let app = self.app();
        // Already so (a retry after a lost response, or a rollback run
        // again): attaching it again is not needed, and Heroku may refuse it.
        let atts = self.client.attachments(&app).map_err(|e| read_error(&e))?;
        if atts.iter().any(|a| {
            a.name == name
                && a.namespace.as_deref() == namespace
                && a.addon_id() == Some(facts.source.id.as_str())
        }) {
            return Ok(());
        }
        let body = CreateAttachment {
            addon: facts.source.id.clone(),
            app: app.clone(),
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            confirm: app,
        };
        self.client
            .create_attachment(&body)
            .map(|_| ())
            .map_err(|e| write_error(&e))
    }

    fn undo_transfer(&mut self) -> Result<(StepState, String), StepError> {
        let app = self.app();
        if self.journal().results.transfer.is_none() {
            let _ = self.reconcile(Step::StartCopy);
        }
        let Some(rec) = self.journal().results.transfer.clone() else {
            return Ok((StepState::Skipped, "no transfer was started".into()));
        };
        let t = self
            .client
            .transfer(&app, &rec.uuid, false)
            .map_err(|e| read_error(&e))?;
        if t.is_finished() {
            return Ok((
                StepState::Skipped,
                format!("transfer {} had already ended", rec.uuid),
            ));
        }
        self.client
            .cancel_transfer(&app, &rec.uuid)
            .map_err(|e| write_error(&e))?;
        Ok((StepState::Done, format!("cancelled transfer {}", rec.uuid)))
    }
}

/// An error if one-off dynos are up: scaling does not stop them, and they
/// could write to the old database during the copy.
fn one_offs_running(app: &str, dynos: &[crate::heroku::types::Dyno]) -> Result<(), StepError> {
    let one_offs = steps::one_off_names(dynos);
    if one_offs.is_empty() {
        return Ok(());
    }
    Err(StepError::Definite(format!(
        "one-off dynos are running: {} (scaling does not stop them). Stop them with \
         `heroku ps:stop {} --app {app}` and resume",
        one_offs.join(", "),
        one_offs[0]
    )))
}

fn transfer_record(t: &crate::heroku::types::Transfer) -> TransferRecord {
    TransferRecord {
        uuid: t.uuid.clone(),
        num: t.num,
        succeeded: t.succeeded,
        processed_bytes: t.processed_bytes,
        source_bytes: t.source_bytes,
        finished_at: t.finished_at.clone(),
        warnings: t.warnings.filter(|w| *w > 0),
    }
}

fn preflight_summary(j: &Journal) -> String {
    let Some(f) = j.facts.as_ref() else {
        return "preflight passed".into();
    };
    format!(
        "{} ({}) → {}; formation {}; maintenance {}; {} var(s) to rebind{}",
        f.source.name,
        f.source.plan,
        j.options.to_plan,
        if f.formation.is_empty() {
            "empty".to_string()
        } else {
            f.formation
                .iter()
                .map(|p| format!("{}={}", p.process_type, p.quantity))
                .collect::<Vec<_>>()
                .join(" ")
        },
        on_off(f.maintenance_was_on),
        f.rebind_vars.len(),
        if f.pool.is_some() {
            "; connection pooler present"
        } else {
            ""
        }
    )
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn journal_now() -> String {
    crate::journal::now()
}

fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64 / 100 * 100)
}

/// The expected downtime of a migration: the dynos' drain (up to 30 s),
/// the copy at Heroku's rule of thumb of about 3 minutes per GB, and a few
/// seconds of requests. `None` when the size is unknown.
pub fn expected_downtime(facts: &Facts) -> Option<Duration> {
    let bytes = facts.source_bytes?;
    let drain = if steps::running_types(facts).is_empty() {
        0.0
    } else {
        30.0
    };
    let copy = bytes as f64 / 1e9 * 180.0;
    Some(Duration::from_secs_f64(drain + copy.max(5.0) + 5.0))
}

/// Bytes for people: 1.5 MB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
