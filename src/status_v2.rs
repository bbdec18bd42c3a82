//! What `status` says about a run, derived from its journal and its
//! method's plan alone: each step's state and timing (named and described
//! by the plan), where the run stands, the method's answers in plain words,
//! and what to run next. Pure functions: the CLI renders the
//! [`StatusReport`] for people or as JSON.

use serde::Serialize;

use crate::engine::{Direction, Outcome, StepState, Undo};
use crate::journal_v2::Journal;
use crate::lock::Holder;
use crate::methods::answers::Answers;

/// The version of the `status --json` object (see README).
pub const STATUS_JSON_VERSION: u32 = 1;

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

/// The whole `status` report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub status_version: u32,
    pub app: String,
    pub run_id: String,
    pub created_at: String,
    pub updated_at: String,
    /// The method whose plan the run follows (`copy`).
    pub method: String,
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
    pub method: String,
    pub outcome: Outcome,
    pub direction: Direction,
    pub summary: String,
}

pub fn summarize(j: &Journal) -> RunSummary {
    RunSummary {
        app: j.app.clone(),
        run_id: j.run_id.clone(),
        created_at: j.created_at.clone(),
        method: j.log.method.clone(),
        outcome: j.log.outcome,
        direction: j.log.direction,
        summary: crate::methods::outcome_words(j),
    }
}

/// The milliseconds between two journal timestamps, if both parse and are
/// in order.
pub fn duration_ms(a: Option<&str>, b: Option<&str>) -> Option<u64> {
    let a = humantime::parse_rfc3339(a?).ok()?;
    let b = humantime::parse_rfc3339(b?).ok()?;
    b.duration_since(a).ok().map(|d| d.as_millis() as u64)
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
    match (j.log.direction, j.log.outcome) {
        (_, Outcome::Completed) => j
            .facts
            .as_ref()
            .map(|f| {
                vec![format!(
                    "check the app, then remove the old database: heroku addons:destroy {} \
                     --app {app}",
                    f.source.name
                )]
            })
            .unwrap_or_default(),
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
            let passed = crate::methods::plan(&j.log.method)
                .and_then(|p| p.passed_no_return(&j.log).map(|(_, nr)| nr));
            match passed {
                Some(nr) if nr.force_allows => v.push(format!(
                    "{rb} --force (the app has run on the new database)"
                )),
                Some(_) => {}
                None => v.push(rb),
            }
            v
        }
    }
}

/// Build the report for one journal.
pub fn report(j: &Journal, holder: Option<Holder>, journal_path: &std::path::Path) -> StatusReport {
    let plan = crate::methods::plan(&j.log.method);
    let steps = j
        .log
        .steps
        .iter()
        .map(|r| {
            let def = plan.as_ref().and_then(|p| p.step(&r.id));
            StepStatus {
                name: def.map(|d| d.id).unwrap_or("?"),
                description: def.map(|d| d.words).unwrap_or(""),
                state: r.state,
                in_doubt: r.state == StepState::Running && def.is_some_and(|d| d.has_side_effect()),
                started_at: r.started_at.clone(),
                finished_at: r.finished_at.clone(),
                duration_ms: duration_ms(r.started_at.as_deref(), r.finished_at.as_deref()),
                note: r.note.clone(),
                undo: r.undo,
                undo_description: r
                    .undo
                    .and(def)
                    .filter(|d| !matches!(d.undo, Undo::Nothing))
                    .map(|d| d.undo_words()),
            }
        })
        .collect();
    StatusReport {
        status_version: STATUS_JSON_VERSION,
        app: j.app.clone(),
        run_id: j.run_id.clone(),
        created_at: j.created_at.clone(),
        updated_at: j.updated_at.clone(),
        method: j.log.method.clone(),
        direction: j.log.direction,
        outcome: j.log.outcome,
        summary: crate::methods::outcome_words(j),
        source_addon: j.facts.as_ref().map(|f| f.source.name.clone()),
        source_plan: j.facts.as_ref().map(|f| f.source.plan.clone()),
        target_plan: j.options.to_plan.clone(),
        target_addon: j.target.addon_name.clone(),
        steps,
        answers: crate::methods::answers(j),
        next_commands: next_commands(j, holder.as_ref()),
        running_process: holder,
        journal_path: journal_path.display().to_string(),
    }
}
