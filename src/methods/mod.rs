//! The migration methods: each is a plan of step definitions that the
//! engine runs (`copy` today). The steps every method shares (creating the
//! new add-on, maintenance, scaling, the cut-over) live in `steps/`, one
//! file each; a method's own steps live in its folder. A step reads and
//! writes only through its context [`Ctx`] (the Heroku client, the run's
//! limits, the progress observer, URLs kept in memory) and the journal the
//! engine hands it.

pub mod answers;
pub mod choose;
pub mod copy;
pub mod follower;
pub mod outputs;
pub mod preflight;
pub mod session;
pub mod steps;
pub mod upgrade;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Plan, StepDef, StepError};
use crate::error::{describe_api, Error};
use crate::heroku::types::Formation;
use crate::heroku::{ApiError, Client};
use crate::journal::{Facts, Journal};

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
            wait_status_404_for: steps::wait_target::WAIT_STATUS_404_FOR,
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
    /// Copy progress.
    Copy {
        /// The transfer's processed bytes: dump bytes, which end below
        /// the source's size (see [`copy::wait_copy::progress_words`]).
        processed: u64,
        /// The source database's size, when Heroku reports it.
        total: Option<u64>,
        elapsed: Duration,
        /// Accepted by Heroku, not started yet (`started_at` null).
        queued: bool,
        /// Bytes moved since this process first looked at the transfer,
        /// and over how long: the rate counts nothing moved before a
        /// resume.
        moved: u64,
        moving_for: Duration,
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

/// The plan of a method by its journaled name.
pub fn plan<'a>(method: &str) -> Option<Plan<Ctx<'a>, Journal>> {
    match method {
        copy::METHOD => Some(copy::plan()),
        follower::METHOD => Some(follower::plan()),
        upgrade::METHOD => Some(upgrade::plan()),
        _ => None,
    }
}

/// What the app should look like now according to the journal (see
/// [`Plan::expected`]): `maintenance` on/off, `formation` as-recorded or
/// at-zero, `database` old or new; `None` where a request is in doubt.
pub fn expected<'a>(
    plan: &Plan<Ctx<'a>, Journal>,
    j: &Journal,
) -> std::collections::BTreeMap<&'static str, Option<&'static str>> {
    let Some(f) = j.facts.as_ref() else {
        return Default::default();
    };
    let initial = [
        (
            "maintenance",
            if f.maintenance_was_on { "on" } else { "off" },
        ),
        ("formation", "as-recorded"),
        ("database", "old"),
        ("plan", "old"),
    ];
    plan.expected(&j.log, &initial)
}

/// The step a run is at: the first not finished (forward) or the undo
/// under way.
pub fn current_step(j: &Journal) -> Option<&'static str> {
    let plan = plan(&j.log.method)?;
    match j.log.direction {
        crate::engine::Direction::Forward => match crate::engine::next_forward(&plan, &j.log) {
            crate::engine::Next::Run(i) | crate::engine::Next::InDoubt(i) => Some(plan.steps[i].id),
            crate::engine::Next::Finished => None,
        },
        crate::engine::Direction::Rollback => {
            crate::engine::next_rollback(&plan, &j.log).map(|i| plan.steps[i].id)
        }
    }
}

/// Where the run stands, in words.
pub fn outcome_words(j: &Journal) -> String {
    use crate::engine::{Direction, Outcome};
    let at = current_step(j)
        .map(|s| format!(" at {s}"))
        .unwrap_or_default();
    match (j.log.direction, j.log.outcome) {
        (_, Outcome::Completed) => "completed: the app runs on the new database".into(),
        (_, Outcome::RolledBack) => "rolled back: every step the run took was undone".into(),
        (_, Outcome::Refused) => "refused: nothing was changed".into(),
        (Direction::Forward, Outcome::InProgress) => format!("in progress{at}"),
        (Direction::Forward, Outcome::Stopped) => format!("stopped{at}"),
        (Direction::Rollback, Outcome::InProgress) => format!("rollback in progress{at}"),
        (Direction::Rollback, Outcome::Stopped) => format!("rollback stopped{at}"),
    }
}

/// What `status` answers about a run of a method, in words.
pub fn answers(j: &Journal) -> answers::Answers {
    let mut a = match (j.log.method.as_str(), plan(&j.log.method)) {
        (copy::METHOD, Some(p)) => copy::status::answers(&p, j),
        (follower::METHOD, Some(p)) => follower::status::answers(&p, j),
        (upgrade::METHOD, Some(p)) => upgrade::status::answers(&p, j),
        _ => answers::Answers::default(),
    };
    a.0.extend(answers::failed_releases(j));
    a
}

/// The name of the add-on the run moves the database to: the one it
/// creates, or for an in-place change the source itself.
pub fn target_name(j: &Journal) -> String {
    match (j.log.method.as_str(), j.facts.as_ref()) {
        (upgrade::METHOD, Some(f)) => f.source.name.clone(),
        _ => j.target.addon_name.clone(),
    }
}

/// The app's state as a journal says it, and how to put the app back by
/// hand: what [`crate::error::Error::JournalLost`] shows when the run can
/// no longer journal (every status answer, the formation recorded at the
/// start with sizes, maintenance before the run, the add-ons).
pub fn by_hand(j: &Journal) -> String {
    let mut lines: Vec<String> = answers(j)
        .0
        .iter()
        .map(|a| format!("  - {}: {}", a.label, a.words))
        .collect();
    let app = &j.app;
    if let Some(f) = j.facts.as_ref() {
        let formation = f
            .formation
            .iter()
            .map(|p| match &p.size {
                Some(size) => format!("{}={}:{size}", p.process_type, p.quantity),
                None => format!("{}={}", p.process_type, p.quantity),
            })
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(format!(
            "  - Recorded at the start: formation {}; maintenance {}; the database {} ({}) \
             attached as {}.",
            if formation.is_empty() {
                "empty"
            } else {
                &formation
            },
            on_off(f.maintenance_was_on),
            f.source.name,
            f.source.plan,
            j.options.from_attachment
        ));
        lines.push(format!(
            "  - The target: {} (to {}).",
            target_name(j),
            j.options.to_plan
        ));
        let mut back = Vec::new();
        if !formation.is_empty() {
            back.push(format!("heroku ps:scale {formation} --app {app}"));
        }
        if !f.maintenance_was_on {
            back.push(format!("heroku maintenance:off --app {app}"));
        }
        if !back.is_empty() {
            lines.push(format!(
                "  - Back as it was, once {} is on the database you want: {}.",
                j.options.from_attachment,
                back.join("; ")
            ));
        }
    }
    lines.join("\n")
}

/// What to do once a run has completed.
pub fn after_completion(j: &Journal) -> Vec<String> {
    let app = &j.app;
    match (j.log.method.as_str(), j.facts.as_ref()) {
        // In place: the add-on is the database; there is no old one.
        (upgrade::METHOD, _) => vec![format!(
            "check the app: the database is on {} in place",
            j.options.to_plan
        )],
        (_, Some(f)) => vec![
            format!(
                "check the app, then remove the old database: heroku addons:destroy {} --app \
                 {app}",
                f.source.name
            ),
            // The new database's creation attachment stays (README, "What
            // a copy does"): removing it is a config change, which restarts
            // every dyno, so it is left to a time that suits.
            format!(
                "optional, when a restart suits: heroku addons:detach {} --app {app} (the new \
                 database's second name, kept as Heroku keeps a promoted database's \
                 HEROKU_POSTGRESQL_<COLOR>; detaching restarts the dynos)",
                j.target.attachment_name
            ),
        ],
        (_, None) => vec![],
    }
}

/// "on" or "off".
pub fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// A duration rounded down to a tenth of a second, for people.
pub fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64 / 100 * 100)
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

/// Where the app stands according to the journal: is it down (maintenance
/// on, dynos at zero), and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppState {
    /// Maintenance on (by the run) or the dynos at zero: the app serves
    /// nothing. `None` when a request that decides it is in doubt.
    pub down: Option<bool>,
    /// When the run took it down (maintenance on, else the scale-down).
    pub down_since: Option<String>,
    /// In words, for people.
    pub words: String,
}

/// [`AppState`] of a journal, from what its plan's steps changed.
pub fn app_state(j: &Journal) -> AppState {
    let Some(plan) = plan(&j.log.method) else {
        return AppState {
            down: None,
            down_since: None,
            words: "unknown (the journal's method is not one this pgmigrate knows)".into(),
        };
    };
    let expect = expected(&plan, j);
    let was_on = j.facts.as_ref().is_some_and(|f| f.maintenance_was_on);
    let maintenance = expect.get("maintenance").copied().flatten();
    let formation = expect.get("formation").copied().flatten();
    let in_doubt =
        expect.get("maintenance") == Some(&None) || expect.get("formation") == Some(&None);
    let maint_on = maintenance == Some("on") && !was_on;
    let at_zero = formation == Some("at-zero");
    let finished = |id: &str| {
        j.log
            .record(id)
            .filter(|r| r.state == crate::engine::StepState::Done)
            .and_then(|r| r.finished_at.clone())
    };
    let since = if maint_on {
        outputs::window(j)
            .0
            .or_else(|| finished(outputs::id::MAINTENANCE_ON))
    } else if at_zero {
        finished(outputs::id::SCALE_DOWN)
    } else {
        None
    };
    let ago = since
        .as_deref()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map(|d| {
            format!(
                " ({} ago)",
                humantime::format_duration(Duration::from_secs(d.as_secs()))
            )
        })
        .unwrap_or_default();
    let when = since
        .as_deref()
        .map(|s| format!(" since {} UTC{ago}", s.get(11..19).unwrap_or(s)))
        .unwrap_or_default();
    let (down, words) = if in_doubt {
        (
            None,
            "maybe down: a request that turns maintenance on or scales the dynos is in doubt; \
             `pgmigrate status` and `heroku ps`/`heroku maintenance` tell"
                .to_string(),
        )
    } else if maint_on || at_zero {
        let what = match (maint_on, at_zero) {
            (true, true) => "maintenance on and every process type at zero",
            (true, false) => "maintenance on",
            _ => "every process type at zero",
        };
        (Some(true), format!("DOWN: {what}{when}"))
    } else if was_on {
        (
            Some(false),
            "as before the run: maintenance was on before it, and stays on".into(),
        )
    } else {
        (
            Some(false),
            "up: maintenance off and its dynos running as before".into(),
        )
    };
    AppState {
        down,
        down_since: if down == Some(true) { since } else { None },
        words,
    }
}
