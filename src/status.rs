//! What `status` says about a run, derived from its journal alone: each
//! step's state and timing, where the run stands, and in plain words the
//! answers the 2012 plugin left to a person after an abort. Pure functions:
//! the CLI renders the [`StatusReport`] for people or as JSON.

use serde::Serialize;

use crate::journal::{Direction, Journal, Outcome, StepState};
use crate::lock::Holder;
use crate::steps::{self, Step, Undo};

/// The version of the `status --json` object (see README).
pub const STATUS_JSON_VERSION: u32 = 1;

/// What the live app should look like according to the journal; `None`
/// where a request is in doubt (or nothing is known yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expectations {
    pub maintenance: Option<bool>,
    /// `Some(true)`: every recorded type at zero; `Some(false)`: the
    /// recorded formation.
    pub formation_at_zero: Option<bool>,
    /// Whether the moved attachment (DATABASE) points at the target.
    pub database_on_target: Option<bool>,
}

/// Replay the journal's completed effects (forward in order, then undos in
/// reverse) to find what the app should look like now.
pub fn expectations(j: &Journal) -> Expectations {
    let Some(facts) = j.facts.as_ref() else {
        return Expectations::default();
    };
    let mut e = Expectations {
        maintenance: Some(facts.maintenance_was_on),
        formation_at_zero: Some(false),
        database_on_target: Some(false),
    };
    fn apply(e: &mut Expectations, step: Step, undo: bool, value: Option<()>) {
        // `value` None = the request is in doubt.
        let set = |slot: &mut Option<bool>, v: bool| *slot = value.map(|_| v);
        match (step, undo) {
            (Step::MaintenanceOn, false) | (Step::MaintenanceOff, true) => {
                set(&mut e.maintenance, true)
            }
            (Step::MaintenanceOff, false) | (Step::MaintenanceOn, true) => {
                set(&mut e.maintenance, false)
            }
            (Step::ScaleDown, false) | (Step::ScaleUp, true) => set(&mut e.formation_at_zero, true),
            (Step::ScaleUp, false) | (Step::ScaleDown, true) => {
                set(&mut e.formation_at_zero, false)
            }
            (Step::PromoteTarget, false) => set(&mut e.database_on_target, true),
            (Step::PromoteTarget, true) => set(&mut e.database_on_target, false),
            _ => {}
        }
    }
    for r in &j.steps {
        match r.state {
            StepState::Done => apply(&mut e, r.step, false, Some(())),
            StepState::Running if r.step.has_side_effect() => apply(&mut e, r.step, false, None),
            _ => {}
        }
    }
    for r in j.steps.iter().rev() {
        match r.undo {
            Some(StepState::Done) => apply(&mut e, r.step, true, Some(())),
            Some(StepState::Running) => apply(&mut e, r.step, true, None),
            _ => {}
        }
    }
    e
}

/// One step as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StepStatus {
    pub name: &'static str,
    pub description: &'static str,
    pub state: StepState,
    /// True when the intent is journaled and the outcome is not.
    pub in_doubt: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub note: Option<String>,
    pub undo: Option<StepState>,
    pub undo_description: Option<&'static str>,
}

/// One answer: a stable machine value and the sentence for people.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub value: &'static str,
    pub words: String,
}

/// The questions a person has after an abort.
#[derive(Debug, Clone, Serialize)]
pub struct Answers {
    /// not-started | running | succeeded | failed | in-doubt
    pub copy: Answer,
    /// old | new | unknown
    pub database_url: Answer,
    /// not-needed | none | partly | fully | in-doubt
    pub rebinding: Answer,
    /// as-before | changed | unknown
    pub maintenance: Answer,
    /// as-before | at-zero | unknown
    pub formation: Answer,
    /// not-created | exists | destroyed | kept | in-doubt
    pub target_addon: Answer,
    /// skipped | not-yet | matched | differs
    pub verify: Answer,
}

/// The whole `status` report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub status_version: u32,
    pub app: String,
    pub run_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub direction: Direction,
    pub outcome: Outcome,
    /// The outcome in words ("stopped at wait-copy").
    pub summary: String,
    pub source_addon: Option<String>,
    pub source_plan: Option<String>,
    pub target_plan: String,
    pub target_addon: String,
    pub steps: Vec<StepStatus>,
    pub answers: Answers,
    /// The pgmigrate process working on it now, if any.
    pub running_process: Option<Holder>,
    /// What to run next, most advisable first (empty when nothing).
    pub next_commands: Vec<String>,
    pub journal_path: String,
}

/// A run in a list (`status --all`, `list`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub app: String,
    pub run_id: String,
    pub created_at: String,
    pub outcome: Outcome,
    pub direction: Direction,
    pub summary: String,
}

pub fn summarize(j: &Journal) -> RunSummary {
    RunSummary {
        app: j.app.clone(),
        run_id: j.run_id.clone(),
        created_at: j.created_at.clone(),
        outcome: j.outcome,
        direction: j.direction,
        summary: outcome_words(j),
    }
}

fn state_of(j: &Journal, s: Step) -> StepState {
    j.step_state(s).unwrap_or(StepState::Pending)
}

fn in_doubt(j: &Journal, s: Step) -> bool {
    state_of(j, s) == StepState::Running && s.has_side_effect()
}

/// The step the run is at: the first not finished (forward) or the undo
/// under way.
fn current_step(j: &Journal) -> Option<Step> {
    match j.direction {
        Direction::Forward => match steps::next_forward(j) {
            steps::NextForward::Run(s) | steps::NextForward::InDoubt(s) => Some(s),
            steps::NextForward::Finished => None,
        },
        Direction::Rollback => match steps::next_rollback(j) {
            steps::NextRollback::Undo(s, _) => Some(s),
            steps::NextRollback::Finished => None,
        },
    }
}

/// Where the run stands, in words.
pub fn outcome_words(j: &Journal) -> String {
    let at = current_step(j)
        .map(|s| format!(" at {s}"))
        .unwrap_or_default();
    match (j.direction, j.outcome) {
        (_, Outcome::Completed) => "completed: the app runs on the new database".into(),
        (_, Outcome::RolledBack) => "rolled back: the app is as it was before the run".into(),
        (_, Outcome::Refused) => "refused: nothing was changed".into(),
        (Direction::Forward, Outcome::InProgress) => format!("in progress{at}"),
        (Direction::Forward, Outcome::Stopped) => format!("stopped{at}"),
        (Direction::Rollback, Outcome::InProgress) => format!("rollback in progress{at}"),
        (Direction::Rollback, Outcome::Stopped) => format!("rollback stopped{at}"),
    }
}

/// The milliseconds between two journal timestamps, if both parse and are
/// in order.
pub fn duration_ms(a: Option<&str>, b: Option<&str>) -> Option<u64> {
    let a = humantime::parse_rfc3339(a?).ok()?;
    let b = humantime::parse_rfc3339(b?).ok()?;
    b.duration_since(a).ok().map(|d| d.as_millis() as u64)
}

fn answer(value: &'static str, words: impl Into<String>) -> Answer {
    Answer {
        value,
        words: words.into(),
    }
}

fn answers(j: &Journal) -> Answers {
    let expect = expectations(j);
    let copy = match (state_of(j, Step::StartCopy), state_of(j, Step::WaitCopy)) {
        (_, StepState::Done) => {
            let bytes = j
                .results
                .transfer
                .as_ref()
                .and_then(|t| t.processed_bytes)
                .map(crate::migrate::human_bytes)
                .unwrap_or_else(|| "?".into());
            let warnings = j.results.transfer.as_ref().and_then(|t| t.warnings);
            answer(
                "succeeded",
                match warnings {
                    Some(w) if w > 0 => format!(
                        "The copy finished and Heroku reports it succeeded ({bytes}) with {w} \
                         warning(s): pg_restore ignored errors."
                    ),
                    _ => format!("The copy finished and Heroku reports it succeeded ({bytes})."),
                },
            )
        }
        (_, StepState::Failed)
            if j.results
                .transfer
                .as_ref()
                .is_some_and(|t| t.succeeded == Some(true)) =>
        {
            let w = j
                .results
                .transfer
                .as_ref()
                .and_then(|t| t.warnings)
                .unwrap_or(0);
            answer(
                "succeeded",
                format!(
                    "Heroku reports the copy succeeded with {w} warning(s) (pg_restore ignored \
                     errors); the run stopped before the cut-over: check the copy."
                ),
            )
        }
        (StepState::Running, _) => answer(
            "in-doubt",
            "A transfer may have been started; its start was not confirmed (resume or rollback \
             looks it up).",
        ),
        (StepState::Done, _) => match j.results.transfer.as_ref() {
            Some(t) if t.succeeded == Some(false) => answer(
                "failed",
                format!(
                    "The copy (transfer {}) failed; nothing was switched.",
                    t.uuid
                ),
            ),
            Some(t) => answer(
                "running",
                format!(
                    "The copy (transfer {}) was started and has not been seen to finish.",
                    t.uuid
                ),
            ),
            None => answer("running", "A copy was started."),
        },
        _ => answer("not-started", "The copy has not started."),
    };
    let from = &j.options.from_attachment;
    let database_url = match expect.database_on_target {
        Some(true) => answer("new", format!("{from}_URL points at the new database.")),
        Some(false) => answer("old", format!("{from}_URL points at the old database.")),
        None => answer(
            "unknown",
            format!("{from}_URL may point at either database: the re-attach is in doubt."),
        ),
    };
    // Rebinding = the moved attachment, the pooler, the other config vars.
    let parts = [Step::PromoteTarget, Step::RepointPool, Step::RebindConfig];
    let needed: Vec<Step> = parts
        .iter()
        .copied()
        .filter(|s| state_of(j, *s) != StepState::Skipped)
        .collect();
    let undone = |s: Step| {
        j.record(s)
            .and_then(|r| r.undo)
            .is_some_and(|u| u == StepState::Done)
    };
    let done = needed
        .iter()
        .filter(|s| state_of(j, **s) == StepState::Done && !undone(**s))
        .count();
    let doubt = needed.iter().any(|s| in_doubt(j, *s))
        || needed
            .iter()
            .any(|s| j.record(*s).and_then(|r| r.undo) == Some(StepState::Running));
    let vars = j
        .facts
        .as_ref()
        .map(|f| f.rebind_vars.join(", "))
        .unwrap_or_default();
    let rebinding = if doubt {
        answer(
            "in-doubt",
            "A re-point of the database's config vars is in doubt (resume or rollback checks it).",
        )
    } else if needed.is_empty() {
        answer("not-needed", "Nothing needed rebinding.")
    } else if done == 0 {
        answer(
            "none",
            "No config var was rebound: everything still uses the old database.",
        )
    } else if done == needed.len() {
        answer(
            "fully",
            format!(
                "Config vars are fully rebound to the new database ({from}{}{}).",
                if j.facts.as_ref().is_some_and(|f| f.pool.is_some()) {
                    ", DATABASE_CONNECTION_POOL"
                } else {
                    ""
                },
                if vars.is_empty() {
                    String::new()
                } else {
                    format!(", {vars}")
                }
            ),
        )
    } else {
        let which: Vec<&str> = needed
            .iter()
            .filter(|s| state_of(j, **s) == StepState::Done && !undone(**s))
            .map(|s| s.name())
            .collect();
        answer(
            "partly",
            format!(
                "Config vars are partly rebound: done: {}; the rest still use the old database.",
                which.join(", ")
            ),
        )
    };
    let facts = j.facts.as_ref();
    let maintenance = match (expect.maintenance, facts) {
        (Some(m), Some(f)) if m == f.maintenance_was_on => answer(
            "as-before",
            format!("Maintenance is {} as it was before the run.", on_off(m)),
        ),
        (Some(m), Some(f)) => answer(
            "changed",
            format!(
                "Maintenance is {} (it was {} before the run).",
                on_off(m),
                on_off(f.maintenance_was_on)
            ),
        ),
        _ => answer(
            "unknown",
            "Maintenance mode is in doubt or not yet recorded.",
        ),
    };
    let recorded = facts
        .map(|f| {
            f.formation
                .iter()
                .map(|p| format!("{}={}", p.process_type, p.quantity))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let formation = match expect.formation_at_zero {
        Some(false) => answer(
            "as-before",
            format!("The formation is as recorded ({recorded})."),
        ),
        Some(true) => answer(
            "at-zero",
            format!("Every process type is scaled to zero (recorded: {recorded})."),
        ),
        None => answer("unknown", "A scale request is in doubt."),
    };
    let name = &j.target.addon_name;
    let target_addon = if j.results.target_destroyed {
        answer(
            "destroyed",
            format!("The target add-on {name} was destroyed by rollback."),
        )
    } else if j.record(Step::CreateTarget).and_then(|r| r.undo) == Some(StepState::Skipped) {
        answer(
            "kept",
            format!("The target add-on {name} was kept (--keep-target)."),
        )
    } else if j.results.target_created {
        answer(
            "exists",
            format!("The target add-on {name} exists; this run created it."),
        )
    } else if in_doubt(j, Step::CreateTarget) {
        answer(
            "in-doubt",
            format!("The target add-on {name} may exist: its creation was not confirmed."),
        )
    } else {
        answer("not-created", "No target add-on was created.")
    };
    let verify = match (&j.results.verify, state_of(j, Step::Verify)) {
        (_, StepState::Skipped) => answer("skipped", "The copy was not compared (--verify none)."),
        (Some(r), _) if r.mismatches == 0 => answer(
            "matched",
            format!(
                "The new database matched the old one ({}, {} tables).",
                r.mode,
                r.tables.len()
            ),
        ),
        (Some(r), _) => answer(
            "differs",
            format!(
                "The new database differs from the old one: {}",
                r.describe_mismatches().replace("\n    ", "; ")
            ),
        ),
        (None, _) => answer("not-yet", "The copy has not been compared yet."),
    };
    Answers {
        verify,
        copy,
        database_url,
        rebinding,
        maintenance,
        formation,
        target_addon,
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The commands to run next.
fn next_commands(j: &Journal, holder: Option<&Holder>) -> Vec<String> {
    let app = &j.app;
    if holder.is_some() {
        return vec![format!(
            "wait: a pgmigrate process is working on it (`pgmigrate status --app {app}` again \
             later)"
        )];
    }
    match (j.direction, j.outcome) {
        (_, Outcome::Completed) => {
            let mut v = vec![];
            if let Some(f) = j.facts.as_ref() {
                v.push(format!(
                    "check the app, then remove the old database: heroku addons:destroy {} \
                     --app {app}",
                    f.source.name
                ));
            }
            v
        }
        (_, Outcome::RolledBack) => vec![],
        (_, Outcome::Refused) => vec![format!(
            "fix what Heroku reported (the create-target step's note), then: pgmigrate run --app \
             {app} --to {}",
            j.options.to_plan
        )],
        (Direction::Rollback, _) => vec![format!("pgmigrate rollback --app {app} --confirm {app}")],
        (Direction::Forward, _) => {
            let mut v = vec![format!("pgmigrate resume --app {app} --confirm {app}")];
            let rb = format!("pgmigrate rollback --app {app} --confirm {app}");
            if steps::app_ran_on_target(j) {
                v.push(format!(
                    "{rb} --force (the app has run on the new database)"
                ));
            } else {
                v.push(rb);
            }
            v
        }
    }
}

/// Build the report for one journal.
pub fn report(j: &Journal, holder: Option<Holder>, journal_path: &std::path::Path) -> StatusReport {
    let steps = j
        .steps
        .iter()
        .map(|r| StepStatus {
            name: r.step.name(),
            description: r.step.describe(),
            state: r.state,
            in_doubt: r.state == StepState::Running && r.step.has_side_effect(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            duration_ms: duration_ms(r.started_at.as_deref(), r.finished_at.as_deref()),
            note: r.note.clone(),
            undo: r.undo,
            undo_description: r
                .undo
                .map(|_| r.step.undo())
                .filter(|u| *u != Undo::Nothing)
                .map(Undo::describe),
        })
        .collect();
    StatusReport {
        status_version: STATUS_JSON_VERSION,
        app: j.app.clone(),
        run_id: j.run_id.clone(),
        created_at: j.created_at.clone(),
        updated_at: j.updated_at.clone(),
        direction: j.direction,
        outcome: j.outcome,
        summary: outcome_words(j),
        source_addon: j.facts.as_ref().map(|f| f.source.name.clone()),
        source_plan: j.facts.as_ref().map(|f| f.source.plan.clone()),
        target_plan: j.options.to_plan.clone(),
        target_addon: j.target.addon_name.clone(),
        steps,
        answers: answers(j),
        next_commands: next_commands(j, holder.as_ref()),
        running_process: holder,
        journal_path: journal_path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::sample_journal;

    fn done(j: &mut Journal, upto: Step) {
        for s in Step::ALL {
            if s.index() <= upto.index() {
                j.record_mut(s).state = StepState::Done;
            }
        }
    }

    #[test]
    fn expectations_follow_done_steps_and_doubt() {
        let mut j = sample_journal();
        assert_eq!(
            expectations(&j),
            Expectations {
                maintenance: Some(false),
                formation_at_zero: Some(false),
                database_on_target: Some(false)
            }
        );
        done(&mut j, Step::ScaleDown);
        let e = expectations(&j);
        assert_eq!(e.maintenance, Some(true));
        assert_eq!(e.formation_at_zero, Some(true));
        j.record_mut(Step::PromoteTarget).state = StepState::Running;
        assert_eq!(expectations(&j).database_on_target, None);
        done(&mut j, Step::MaintenanceOff);
        let e = expectations(&j);
        assert_eq!(e.maintenance, Some(false));
        assert_eq!(e.formation_at_zero, Some(false));
        assert_eq!(e.database_on_target, Some(true));
        // Undo the last four.
        for s in [
            Step::MaintenanceOff,
            Step::ScaleUp,
            Step::RebindConfig,
            Step::PromoteTarget,
        ] {
            j.record_mut(s).undo = Some(StepState::Done);
        }
        let e = expectations(&j);
        assert_eq!(e.maintenance, Some(true));
        assert_eq!(e.formation_at_zero, Some(true));
        assert_eq!(e.database_on_target, Some(false));
    }

    #[test]
    fn answers_for_a_run_stopped_mid_copy() {
        let mut j = sample_journal();
        done(&mut j, Step::StartCopy);
        j.outcome = Outcome::Stopped;
        j.results.transfer = Some(crate::journal::TransferRecord {
            uuid: "t-1".into(),
            num: Some(1),
            succeeded: Some(false),
            processed_bytes: Some(5),
            source_bytes: Some(10),
            finished_at: None,
            warnings: None,
        });
        j.results.target_created = true;
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(r.answers.copy.value, "failed");
        assert_eq!(r.answers.database_url.value, "old");
        assert_eq!(r.answers.rebinding.value, "none");
        assert_eq!(r.answers.maintenance.value, "changed");
        assert_eq!(r.answers.formation.value, "at-zero");
        assert_eq!(r.answers.target_addon.value, "exists");
        assert_eq!(r.summary, "stopped at wait-copy");
        assert!(r.next_commands[0].starts_with("pgmigrate resume --app demo-app"));
        assert!(r.next_commands[1].starts_with("pgmigrate rollback --app demo-app"));
    }

    #[test]
    fn partly_rebound_and_in_doubt() {
        let mut j = sample_journal();
        done(&mut j, Step::PromoteTarget);
        j.record_mut(Step::RepointPool).state = StepState::Skipped;
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(r.answers.rebinding.value, "partly");
        assert_eq!(r.answers.database_url.value, "new");
        j.record_mut(Step::RebindConfig).state = StepState::Running;
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(r.answers.rebinding.value, "in-doubt");
        assert!(r.steps[Step::RebindConfig.index()].in_doubt);
    }

    #[test]
    fn completed_run_names_the_old_addon_to_remove() {
        let mut j = sample_journal();
        done(&mut j, Step::MaintenanceOff);
        j.outcome = Outcome::Completed;
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(r.answers.rebinding.value, "fully");
        assert_eq!(r.answers.maintenance.value, "as-before");
        assert_eq!(r.answers.formation.value, "as-before");
        assert!(r.next_commands[0].contains("addons:destroy postgresql-old-123"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status_version"], 1);
        assert_eq!(json["steps"][0]["state"], "done");
    }

    #[test]
    fn a_live_process_is_waited_for() {
        let j = sample_journal();
        let h = Holder {
            pid: 1,
            host: "h".into(),
            started_at: "t".into(),
            command: "run".into(),
        };
        let r = report(&j, Some(h), std::path::Path::new("/x"));
        assert!(r.next_commands[0].starts_with("wait"));
    }
}
