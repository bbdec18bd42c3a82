//! A journal in words, whatever its method: where the run stands, what
//! `status` answers, where the app stands, how to put it back by hand,
//! and what to do once it has completed.

use std::time::Duration;

use crate::journal::Journal;
use crate::methods::answers::{self, Answers};
use crate::methods::aspects::{self, Aspect};
use crate::methods::{on_off, outputs, registry};

/// The step a run is at: the first not finished (forward) or the undo
/// under way.
pub fn current_step(j: &Journal) -> Option<&'static str> {
    let plan = registry::plan(&j.log.method)?;
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
        (_, Outcome::Completed) => match j.facts.as_ref() {
            Some(f) if outputs::in_place(j) => format!(
                "completed: {} is on {} in place, the same add-on",
                f.source.name, j.options.to_plan
            ),
            _ => "completed: the app runs on the new database".into(),
        },
        (_, Outcome::RolledBack) => "rolled back: every step the run took was undone".into(),
        (_, Outcome::Refused) => "refused: nothing was changed".into(),
        (Direction::Forward, Outcome::InProgress) => format!("in progress{at}"),
        (Direction::Forward, Outcome::Stopped) => format!("stopped{at}"),
        (Direction::Rollback, Outcome::InProgress) => format!("rollback in progress{at}"),
        (Direction::Rollback, Outcome::Stopped) => format!("rollback stopped{at}"),
    }
}

/// What `status` answers about a run of a method, in words.
pub fn answers(j: &Journal) -> Answers {
    let mut a = match registry::named(&j.log.method) {
        Some(m) => m.answers(&m.plan(), j),
        None => Answers::default(),
    };
    a.0.extend(answers::failed_releases(j));
    a
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
            outputs::target_name(j),
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
    match j.facts.as_ref() {
        // In place, the add-on is the database: there is no old one, and
        // nothing to remove.
        Some(f) if outputs::in_place(j) => vec![format!(
            "check the app: {} is on {} in place, the same add-on",
            f.source.name, j.options.to_plan
        )],
        Some(f) => vec![
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
        None => vec![],
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
    let Some(plan) = registry::plan(&j.log.method) else {
        return AppState {
            down: None,
            down_since: None,
            words: "unknown (the journal's method is not one this pgmigrate knows)".into(),
        };
    };
    let expect = aspects::expected(&plan, j);
    let was_on = j.facts.as_ref().is_some_and(|f| f.maintenance_was_on);
    let maintenance = expect.get(Aspect::Maintenance.key()).copied().flatten();
    let formation = expect.get(Aspect::Formation.key()).copied().flatten();
    let in_doubt = expect.get(Aspect::Maintenance.key()) == Some(&None)
        || expect.get(Aspect::Formation.key()) == Some(&None);
    let maint_on = maintenance == Some(aspects::MAINTENANCE_ON.1) && !was_on;
    let at_zero = formation == Some(aspects::AT_ZERO.1);
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
