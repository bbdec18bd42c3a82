//! What `status` says about a run, derived from its journal and its
//! method's plan alone: each step's state and timing (named and described
//! by the plan), where the run stands, the method's answers in plain words,
//! and what to run next. Pure functions: the CLI renders the
//! [`StatusReport`] for people or as JSON.

use serde::Serialize;

use crate::engine::{Direction, Outcome, StepState, Undo};
use crate::holder::Holder;
use crate::journal::Journal;
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
    /// The journal's outcome, except `interrupted`: the journal says a
    /// process works on it (`in-progress`) and none does (it was killed).
    pub outcome: ReportOutcome,
    /// The outcome in words ("stopped at wait-copy").
    pub summary: String,
    /// Where the app stands: down (maintenance on, dynos at zero) since
    /// when, or up.
    pub app_state: crate::methods::describe::AppState,
    /// Which way on loses less, resume or rollback, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
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

/// `status`'s outcome: the journal's, and `interrupted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportOutcome {
    InProgress,
    /// The journal says `in-progress` and no process holds the app's lock:
    /// the process was killed (or the machine stopped) mid-run. Resumable.
    Interrupted,
    Stopped,
    Completed,
    Refused,
    RolledBack,
}

impl ReportOutcome {
    pub fn of(outcome: Outcome, running: bool) -> ReportOutcome {
        match outcome {
            Outcome::InProgress if running => ReportOutcome::InProgress,
            Outcome::InProgress => ReportOutcome::Interrupted,
            Outcome::Stopped => ReportOutcome::Stopped,
            Outcome::Completed => ReportOutcome::Completed,
            Outcome::Refused => ReportOutcome::Refused,
            Outcome::RolledBack => ReportOutcome::RolledBack,
        }
    }
}

/// Which way on from an unfinished forward run loses less: before the
/// cut-over a rollback puts the app back up on its old database at once
/// (only the work done so far is lost); once the new database holds the
/// app's data, or only the last steps remain, resume does.
fn advice(j: &Journal, running: bool) -> Option<String> {
    if running || !j.log.outcome.is_unfinished() || j.log.direction != Direction::Forward {
        return None;
    }
    let plan = crate::methods::registry::plan(&j.log.method)?;
    let state = crate::methods::describe::app_state(j);
    if plan.passed_no_return(&j.log).is_some() {
        return Some(
            "resume: the run is past its point of no return, and resume ends it on the new \
             database"
                .into(),
        );
    }
    let next = crate::methods::describe::current_step(j)?;
    let cutover = plan.index(crate::methods::session::stop_alias(
        &j.log.method,
        "cutover",
    ));
    let at = plan.index(next)?;
    let before_cutover = cutover.is_some_and(|c| at <= c);
    Some(match (state.down, before_cutover) {
        (Some(true), true) if cutover == Some(at) => "resume: everything before the cut-over \
                                                       is done and only the switch and bringing \
                                                       the app back remain (seconds); rollback \
                                                       also brings it back in seconds, on its \
                                                       old database, and throws the new one away"
            .into(),
        (Some(true), true) => "rollback brings the app back up soonest, on its old database, \
                               unchanged (what was copied so far is thrown away); resume keeps \
                               the app down until the rest is done"
            .into(),
        (Some(true), false) => "resume: the app already points at the new database, and only \
                                the steps that bring it back up remain"
            .into(),
        (_, true) => "either: the app is up on its old database; resume goes on, rollback \
                      removes what the run made"
            .into(),
        _ => "resume: the run is past its cut-over".into(),
    })
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
        summary: crate::methods::describe::outcome_words(j),
    }
}

pub use crate::methods::duration_ms;

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
        (_, Outcome::Completed) => crate::methods::describe::after_completion(j),
        (_, Outcome::RolledBack) => vec![],
        (_, Outcome::Refused) => vec![format!(
            "fix what Heroku reported (the failed step's note), then: pgmigrate run --app {app} \
             --to {}",
            j.options.to_plan
        )],
        (Direction::Rollback, _) => vec![format!("pgmigrate rollback --app {app} --confirm {app}")],
        (Direction::Forward, _) => {
            let mut v = vec![format!("pgmigrate resume --app {app} --confirm {app}")];
            let rb = format!("pgmigrate rollback --app {app} --confirm {app}");
            let passed = crate::methods::registry::plan(&j.log.method)
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
    let plan = crate::methods::registry::plan(&j.log.method);
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
        outcome: ReportOutcome::of(j.log.outcome, holder.is_some()),
        summary: if holder.is_none() && j.log.outcome == Outcome::InProgress {
            crate::methods::describe::outcome_words(j).replacen(
                "in progress",
                "interrupted (no pgmigrate process is running it: it was killed or its machine \
                 stopped)",
                1,
            )
        } else {
            crate::methods::describe::outcome_words(j)
        },
        app_state: crate::methods::describe::app_state(j),
        advice: advice(j, holder.is_some()),
        source_addon: j.facts.as_ref().map(|f| f.source.name.clone()),
        source_plan: j.facts.as_ref().map(|f| f.source.plan.clone()),
        target_plan: j.options.to_plan.clone(),
        target_addon: crate::methods::outputs::target_name(j),
        steps,
        answers: crate::methods::describe::answers(j),
        next_commands: next_commands(j, holder.as_ref()),
        running_process: holder,
        journal_path: journal_path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Transition;
    use crate::journal::{AddonRecord, Facts, ProcessRecord, RunOptions, TargetPlan};
    use crate::methods::copy;

    fn sample() -> Journal {
        let plan = copy::plan();
        let mut j = Journal::new(
            "20261124T221312Z-3f9a1c2b".into(),
            "demo-app".into(),
            RunOptions {
                to_plan: "heroku-postgresql:essential-0".into(),
                from_attachment: "DATABASE".into(),
                verify: crate::compare::VerifyMode::Counts,
            },
            TargetPlan {
                addon_name: "demo-app-pgmigrate-3f9a1c2b".into(),
                attachment_name: "PGMIGRATE_3F9A1C2B".into(),
            },
            "copy",
            &plan.ids(),
        );
        j.facts = Some(Facts {
            app_id: "app-id".into(),
            maintenance_was_on: false,
            formation: vec![ProcessRecord {
                process_type: "web".into(),
                quantity: 2,
                size: Some("standard-2X".into()),
            }],
            source: AddonRecord {
                id: "src-id".into(),
                name: "postgresql-old-123".into(),
                plan: "heroku-postgresql:mini".into(),
            },
            source_url_fingerprint: "sha256:0123456789abcdef".into(),
            source_other_attachments: vec![],
            rebind_vars: vec!["COPY_URL".into()],
            pool: None,
            source_bytes: Some(1000),
            fork_follow: None,
            source_followers: vec![],
            source_maintenance: None,
        });
        j
    }

    /// Mark every step up to and including `upto` done (skipping the
    /// ones the sample app does not need).
    fn done(j: &mut Journal, upto: &str) {
        let plan = copy::plan();
        for s in &plan.steps {
            if j.log.state(s.id) == Some(StepState::Pending) {
                if let Some(why) = (s.skip)(j) {
                    j.log.apply(s.id, Transition::Skip(why), "t").unwrap();
                } else {
                    j.log.apply(s.id, Transition::Begin, "t").unwrap();
                    j.log.apply(s.id, Transition::Succeed(None), "t").unwrap();
                }
            }
            if s.id == upto {
                break;
            }
        }
    }

    fn value(r: &StatusReport, key: &str) -> &'static str {
        r.answers.get(key).unwrap().value
    }

    #[test]
    fn expectations_follow_done_steps_doubt_and_undos() {
        let plan = copy::plan();
        let mut j = sample();
        let e = crate::methods::aspects::expected(&plan, &j);
        assert_eq!(e["maintenance"], Some("off"));
        assert_eq!(e["formation"], Some("as-recorded"));
        assert_eq!(e["database"], Some("old"));
        done(&mut j, "scale-down");
        let e = crate::methods::aspects::expected(&plan, &j);
        assert_eq!(e["maintenance"], Some("on"));
        assert_eq!(e["formation"], Some("at-zero"));
        done(&mut j, "verify");
        j.log
            .apply("promote-target", Transition::Begin, "t")
            .unwrap();
        assert_eq!(
            crate::methods::aspects::expected(&plan, &j)["database"],
            None
        );
        j.log
            .apply("promote-target", Transition::Succeed(None), "t")
            .unwrap();
        done(&mut j, "maintenance-off");
        let e = crate::methods::aspects::expected(&plan, &j);
        assert_eq!(e["maintenance"], Some("off"));
        assert_eq!(e["formation"], Some("as-recorded"));
        assert_eq!(e["database"], Some("new"));
        for s in [
            "maintenance-off",
            "scale-up",
            "rebind-config",
            "promote-target",
        ] {
            j.log.apply(s, Transition::UndoBegin, "t").unwrap();
            j.log
                .apply(s, Transition::UndoEnd(StepState::Done), "t")
                .unwrap();
        }
        let e = crate::methods::aspects::expected(&plan, &j);
        assert_eq!(e["maintenance"], Some("on"));
        assert_eq!(e["formation"], Some("at-zero"));
        assert_eq!(e["database"], Some("old"));
    }

    #[test]
    fn answers_for_a_run_stopped_mid_copy() {
        let mut j = sample();
        done(&mut j, "start-copy");
        j.log.apply("wait-copy", Transition::Begin, "t").unwrap();
        j.log
            .apply(
                "wait-copy",
                Transition::Keep(serde_json::json!({"uuid": "t-1", "num": 1,
                    "succeeded": false, "processed_bytes": 5, "source_bytes": 10,
                    "finished_at": null})),
                "t",
            )
            .unwrap();
        j.log
            .apply("wait-copy", Transition::Fail("failed".into()), "t")
            .unwrap();
        j.log.outcome = Outcome::Stopped;
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(value(&r, "copy"), "failed");
        assert_eq!(value(&r, "database_url"), "old");
        assert_eq!(value(&r, "rebinding"), "none");
        assert_eq!(value(&r, "maintenance"), "changed");
        assert_eq!(value(&r, "formation"), "at-zero");
        assert_eq!(value(&r, "target_addon"), "exists");
        assert_eq!(r.summary, "stopped at wait-copy");
        assert_eq!(r.method, "copy");
        assert!(r.next_commands[0].starts_with("pgmigrate resume --app demo-app"));
        assert!(r.next_commands[1].starts_with("pgmigrate rollback --app demo-app"));
    }

    #[test]
    fn partly_rebound_and_in_doubt() {
        let mut j = sample();
        done(&mut j, "repoint-pool");
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(value(&r, "rebinding"), "partly");
        assert_eq!(value(&r, "database_url"), "new");
        j.log
            .apply("rebind-config", Transition::Begin, "t")
            .unwrap();
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(value(&r, "rebinding"), "in-doubt");
        assert!(r
            .steps
            .iter()
            .any(|s| s.name == "rebind-config" && s.in_doubt));
    }

    #[test]
    fn a_completed_run_names_the_old_addon_and_needs_force_to_roll_back() {
        let mut j = sample();
        done(&mut j, "maintenance-off");
        let r = report(&j, None, std::path::Path::new("/x"));
        assert_eq!(value(&r, "rebinding"), "fully");
        assert_eq!(value(&r, "maintenance"), "as-before");
        assert_eq!(value(&r, "formation"), "as-before");
        j.log.outcome = Outcome::Completed;
        let r = report(&j, None, std::path::Path::new("/x"));
        assert!(r.next_commands[0].contains("addons:destroy postgresql-old-123"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status_version"], 1);
        assert_eq!(json["method"], "copy");
        assert_eq!(json["steps"][0]["state"], "done");
        assert_eq!(json["answers"]["copy"]["value"], "succeeded");
        // Stopped after the scale-up: rollback needs --force.
        j.log.outcome = Outcome::Stopped;
        let r = report(&j, None, std::path::Path::new("/x"));
        assert!(r.next_commands[1].ends_with("--force (the app has run on the new database)"));
    }

    #[test]
    fn a_live_process_is_waited_for() {
        let h = Holder {
            pid: 1,
            host: "h".into(),
            started_at: "t".into(),
            command: "run".into(),
        };
        let r = report(&sample(), Some(h), std::path::Path::new("/x"));
        assert!(r.next_commands[0].starts_with("wait"));
    }

    #[test]
    fn golden_v1_journals_read_as_copy_runs() {
        for (name, summary) in [
            ("stopped-before-cutover", "stopped at promote-target"),
            ("stopped-before-maintenance", "stopped at maintenance-on"),
            ("completed", "completed: the app runs on the new database"),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/journals/v1")
                .join(format!("{name}.json"));
            let j = crate::journal::decode(&std::fs::read(&path).unwrap()).unwrap();
            let plan = copy::plan();
            j.log.validate(plan.method, &plan.ids()).unwrap();
            let r = report(&j, None, &path);
            assert_eq!(r.summary, summary, "{name}");
            assert_eq!(value(&r, "target_addon"), "exists", "{name}");
            if name != "stopped-before-maintenance" {
                assert_eq!(value(&r, "copy"), "succeeded", "{name}");
            }
        }
    }
}
