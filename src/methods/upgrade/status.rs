//! What `status` answers about an in-place plan change: where the plan
//! change stands, what `DATABASE_URL` holds, what rollback can still undo,
//! and the questions every method shares.

use crate::engine::{Plan, StepState};
use crate::journal::Journal;
use crate::methods::answers::{self, answer, Answer, Answers};
use crate::methods::upgrade::shared::{
    in_place_essential, CHANGE_PLAN, RUN_MAINTENANCE, WAIT_MAINTENANCE, WAIT_PLAN, WAIT_READY,
};
use crate::methods::upgrade::swap::Seen;
use crate::methods::Ctx;

pub fn answers<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answers {
    Answers(vec![
        plan_change(j),
        database_url(j),
        way_back(j),
        answers::rebinding(plan, j),
        answers::maintenance(plan, j),
        answers::formation(plan, j),
    ])
}

fn state(j: &Journal, id: &str) -> StepState {
    j.log.state(id).unwrap_or(StepState::Pending)
}

fn undone(j: &Journal, id: &str) -> bool {
    j.log.record(id).and_then(|r| r.undo) == Some(StepState::Done)
}

fn swap_ran(j: &Journal) -> bool {
    matches!(
        state(j, RUN_MAINTENANCE),
        StepState::Done | StepState::Running
    ) || j
        .log
        .output::<Seen>(WAIT_READY)
        .is_some_and(|s| s.swapped_by_heroku)
}

/// `not-requested`, `in-doubt`, `changed-back`, `preparing`, `ready`,
/// `swapping`, `swapped` or (Essential) `changing` and `changed`.
fn plan_change(j: &Journal) -> Answer {
    let a = |v, w: String| answer("plan_change", "Plan change", v, w);
    let to = &j.options.to_plan;
    let from = j
        .facts
        .as_ref()
        .map(|f| f.source.plan.clone())
        .unwrap_or_default();
    if undone(j, CHANGE_PLAN) {
        return a(
            "changed-back",
            format!("The plan was changed back to {from} by rollback."),
        );
    }
    match state(j, CHANGE_PLAN) {
        StepState::Running => {
            return a(
                "in-doubt",
                format!(
                    "A change of the plan to {to} may have been accepted: it was not confirmed."
                ),
            )
        }
        StepState::Done => {}
        _ => return a("not-requested", "The plan has not been changed.".into()),
    }
    if in_place_essential(j) {
        return match state(j, WAIT_PLAN) {
            StepState::Done => a(
                "changed",
                format!("The add-on is on {to}, changed in place."),
            ),
            _ => a(
                "changing",
                format!("Heroku is changing the plan to {to} in place."),
            ),
        };
    }
    match (state(j, WAIT_MAINTENANCE), swap_ran(j), state(j, WAIT_READY)) {
        (StepState::Done, _, _) => a(
            "swapped",
            format!("The swap is done: the database on {to} replaced the old one."),
        ),
        (_, true, _) => a(
            "swapping",
            "Heroku's maintenance is swapping in the new database (or may be: it was asked to)."
                .into(),
        ),
        (_, false, StepState::Done) => a(
            "ready",
            format!("Heroku has prepared the database on {to}; the swap has not run."),
        ),
        _ => a(
            "preparing",
            format!("Heroku accepted the change to {to} and prepares the replacement; the app runs on the old database."),
        ),
    }
}

/// `old`, `new` or `unknown`: what `DATABASE_URL` holds.
fn database_url(j: &Journal) -> Answer {
    let from = &j.options.from_attachment;
    let a = |v, w: String| answer("database_url", "DATABASE_URL", v, w);
    if in_place_essential(j) {
        return a(
            "same",
            format!("{from}_URL points at the same database, whatever its plan."),
        );
    }
    match (state(j, WAIT_MAINTENANCE), swap_ran(j)) {
        (StepState::Done, _) => a(
            "new",
            format!("{from}_URL points at the new database (Heroku changed its URL in the swap)."),
        ),
        (_, true) => a(
            "unknown",
            format!("{from}_URL changes when the swap completes; it may not have yet."),
        ),
        _ => a("old", format!("{from}_URL points at the old database.")),
    }
}

/// What rollback can do now: `clean`, `plan-change-back` or `none`.
fn way_back(j: &Journal) -> Answer {
    let a = |v, w: String| answer("way_back", "Way back", v, w);
    let from = j
        .facts
        .as_ref()
        .map(|f| f.source.plan.clone())
        .unwrap_or_default();
    if swap_ran(j) {
        return a(
            "none",
            "Past the point of no return: Heroku replaced the database, and the old server is \
             gone. Rollback is refused; `pgmigrate resume` finishes the run, and going back to \
             the old plan is a new run."
                .into(),
        );
    }
    match state(j, CHANGE_PLAN) {
        StepState::Done | StepState::Running if !undone(j, CHANGE_PLAN) => a(
            "plan-change-back",
            format!(
                "Rollback changes the plan back to {from} with a second PATCH, which should \
                 cancel the replacement Heroku prepares (Heroku does not document this; check \
                 `heroku data:maintenances:info` afterwards), and undoes maintenance and scaling. \
                 It cannot undo the time billed on the new plan or a maintenance Heroku has \
                 already started."
            ),
        ),
        _ => a(
            "clean",
            "Nothing has changed that rollback could not undo.".into(),
        ),
    }
}
