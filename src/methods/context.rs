//! What a step works with besides the journal: the run's settings, the
//! progress it reports, the Heroku client and what it keeps in memory.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{StepDef, StepError};
use crate::error::{describe_api, Error};
use crate::heroku::types::Formation;
use crate::heroku::{ApiError, Client};
use crate::journal::{Facts, Journal};
use crate::methods::outputs;

/// How long the Data API may answer 404 for a new add-on's wait_status:
/// as long as `heroku pg:wait` tolerates it (heroku/cli
/// src/commands/pg/wait.ts: 20 polls answered 404, 5 s apart).
pub const WAIT_STATUS_404_FOR: Duration = Duration::from_secs(20 * 5);

/// Limits and switches of a run, resume or rollback.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long to wait for the new add-on to be provisioned.
    pub provision_timeout: Duration,
    /// How long the Data API may answer 404 for the new add-on's
    /// wait_status (it does not know it yet) before the run stops.
    pub wait_status_404_for: Duration,
    /// How long to wait for scaled-down dynos to be gone.
    pub drain_timeout: Duration,
    /// A transfer with no byte moving for this long is reported (a warning,
    /// a note `status` shows), never cancelled: only Heroku fails a copy.
    pub copy_stall_timeout: Duration,
    /// How long to wait for a release command (release phase) to end.
    pub release_timeout: Duration,
    /// How long a new follower may take to catch up while the app runs.
    pub catch_up_timeout: Duration,
    /// How long the follower may take to replay the last commits once the
    /// app is down, before the run stops (and `rollback` is clean).
    pub final_catch_up_timeout: Duration,
    /// How long an unfollowed database may stay read-only.
    pub unfollow_timeout: Duration,
    /// How long Heroku may take to prepare a plan change's replacement.
    pub prepare_timeout: Duration,
    /// How long a maintenance (the swap) may run.
    pub maintenance_timeout: Duration,
    /// The longest pause between two looks at a wait.
    pub poll_cap: Duration,
    /// The longest pause between two looks at a transfer.
    pub copy_poll_max: Duration,
    /// Rollback: keep the new add-on instead of destroying it.
    pub keep_target: bool,
    /// Proceed past a refusal that `--force` may override.
    pub force: bool,
    /// Stop before this step (a postponed cut-over), by id.
    pub stop_before: Option<String>,
    /// Set (by a signal handler) to ask the run to stop at the next
    /// resumable point: after the request in flight and its journal record.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            provision_timeout: Duration::from_secs(30 * 60),
            wait_status_404_for: WAIT_STATUS_404_FOR,
            drain_timeout: Duration::from_secs(3 * 60),
            copy_stall_timeout: Duration::from_secs(15 * 60),
            // FACT (Dev Center, Release Phase): a release command is
            // stopped after one hour; a little more for Heroku to say so.
            release_timeout: Duration::from_secs(65 * 60),
            catch_up_timeout: Duration::from_secs(24 * 3600),
            final_catch_up_timeout: Duration::from_secs(10 * 60),
            unfollow_timeout: Duration::from_secs(30 * 60),
            // FACT (Dev Center, changing the plan): "up to several hours
            // to prepare a replacement".
            prepare_timeout: Duration::from_secs(24 * 3600),
            maintenance_timeout: Duration::from_secs(60 * 60),
            poll_cap: Duration::from_secs(5),
            copy_poll_max: Duration::from_secs(30),
            keep_target: false,
            force: false,
            stop_before: None,
            interrupt: None,
        }
    }
}

/// What a run reports while it works; rendered by the CLI.
#[derive(Debug, Clone)]
pub enum Progress {
    StepStarted(&'static str, &'static str),
    StepDone(&'static str, String),
    StepSkipped(&'static str, String),
    /// A wait is still waiting: what for, and for how long so far.
    Waiting(&'static str, String, Duration),
    /// A transfer's progress, in words (see the step that sends it).
    Transfer {
        step: &'static str,
        words: String,
        /// Accepted by Heroku, not started yet.
        queued: bool,
    },
    UndoStarted(&'static str, &'static str),
    UndoDone(&'static str, String),
    UndoSkipped(&'static str, String),
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

/// Database URLs read live, kept in memory only (never journaled).
#[derive(Debug, Default, Clone)]
pub struct Urls {
    pub source: Option<String>,
    pub target: Option<String>,
}

/// What a step works with besides the journal.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub settings: Settings,
    pub observer: &'a dyn Observer,
    pub urls: Urls,
    /// The formation as the scale-down answered it (sizes), if seen.
    pub live_formation: Vec<Formation>,
    /// A release command's dyno was seen while draining.
    pub saw_release_dyno: bool,
    /// The newest release, read just before maintenance went on, when
    /// none was pending then (`Some(None)`: the app listed none): the
    /// floor `wait-dynos` records, known before the window so not read in
    /// it. `None` when not read (no release phase, a resumed run, or a
    /// release pending then).
    pub release_before_window: Option<Option<u64>>,
    /// This process compared the two databases itself (the `verify`
    /// step ran here, not in a run this one resumes).
    pub verified_here: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(client: &'a Client, settings: Settings, observer: &'a dyn Observer) -> Ctx<'a> {
        Ctx {
            client,
            settings,
            observer,
            urls: Urls::default(),
            live_formation: Vec::new(),
            saw_release_dyno: false,
            verified_here: false,
            release_before_window: None,
        }
    }

    pub fn warn(&self, text: impl Into<String>) {
        self.observer.progress(&Progress::Warning(text.into()));
    }

    pub fn waiting(&self, step: &'static str, what: impl Into<String>, elapsed: Duration) {
        self.observer
            .progress(&Progress::Waiting(step, what.into(), elapsed));
    }

    /// Read the source and new database URLs from the app's config vars,
    /// into memory only. The source is found through any non-pool
    /// attachment of the source add-on, so this works before and after the
    /// cut-over.
    pub fn read_urls(&mut self, j: &Journal) -> Result<(), ApiError> {
        let Some(facts) = j.facts.as_ref() else {
            return Ok(());
        };
        let target_id = outputs::target_id(j);
        let attachments = self.client.attachments(&j.app)?;
        let config = self.client.config_vars(&j.app)?;
        let from = &j.options.from_attachment;
        let target_var = format!("{}_URL", j.target.attachment_name);
        let url_of = |addon_id: &str| {
            let mut candidates: Vec<_> = attachments
                .iter()
                .filter(|a| a.addon_id() == Some(addon_id) && a.namespace.is_none())
                .collect();
            // Prefer the journaled attachment name (stable) over others.
            candidates.sort_by_key(|a| &a.name != from);
            candidates
                .iter()
                .find_map(|a| config.get(&a.config_var()).cloned())
        };
        self.urls.source = url_of(&facts.source.id);
        // The target is looked up by its own attachment first, so that
        // DATABASE pointing at it (after the cut-over) changes nothing.
        self.urls.target = target_id
            .as_deref()
            .and_then(|id| config.get(&target_var).cloned().or_else(|| url_of(id)));
        Ok(())
    }

    /// The URLs, read now unless already known.
    pub fn urls(&mut self, j: &Journal) -> Result<(String, String), StepError> {
        if self.urls.source.is_none() || self.urls.target.is_none() {
            self.read_urls(j).map_err(|e| read_error(&e))?;
        }
        match (self.urls.source.clone(), self.urls.target.clone()) {
            (Some(s), Some(t)) => Ok((s, t)),
            _ => Err(StepError::Definite(
                "cannot read the old or new database's URL from the app's config vars".into(),
            )),
        }
    }
}

/// A step definition of any method.
pub type Def<'a> = StepDef<Ctx<'a>, Journal>;

/// The facts preflight recorded, which every step after it needs.
pub fn facts(j: &Journal) -> Result<&Facts, StepError> {
    j.facts.as_ref().ok_or_else(|| {
        StepError::Local(Error::Internal(
            "the journal has no preflight facts although preflight is done".into(),
        ))
    })
}

/// Classify an API error of a request that changes something.
pub fn write_error(e: &ApiError) -> StepError {
    if e.not_applied() {
        StepError::Definite(describe_api(e))
    } else {
        StepError::Doubt(describe_api(e))
    }
}

/// Classify an API error of a read (a read never acts).
pub fn read_error(e: &ApiError) -> StepError {
    StepError::Definite(describe_api(e))
}
