//! What a run would do, step by step, before it starts: each step of the
//! method's plan asked, with what preflight read, whether it would run
//! (its own skip rule), whether the app is down then, and whether it is
//! the point of no return. `plan` and the confirmation show it.

use crate::journal::{Journal, RunOptions};
use crate::methods::method::Method;
use crate::methods::outputs::id;
use crate::methods::preflight::PreflightReading;
use crate::methods::session;

/// One step as a run would take it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPreview {
    pub id: &'static str,
    pub words: &'static str,
    /// Why this run would skip it.
    pub skip: Option<String>,
    /// It runs while the app is down.
    pub in_window: bool,
    /// Past it, rollback is refused or needs `--force`: why.
    pub no_return: Option<&'static str>,
}

/// The steps after preflight, as a run of `method` would take them.
pub fn preview(
    app: &str,
    options: &RunOptions,
    reading: &PreflightReading,
    method: &dyn Method,
) -> Vec<StepPreview> {
    let plan = method.plan();
    // The journal a run would start with, to ask the plan's own skip rules.
    let mut j = Journal::new(
        String::new(),
        app.to_string(),
        options.clone(),
        session::target_plan(app, "0"),
        plan.method,
        &plan.ids(),
    );
    j.facts = Some(reading.facts.clone());
    plan.steps
        .iter()
        .filter(|s| s.id != id::PREFLIGHT)
        .map(|s| StepPreview {
            id: s.id,
            words: s.words,
            skip: (s.skip)(&j),
            in_window: plan.in_window(s.id),
            no_return: s.no_return.map(|n| n.why),
        })
        .collect()
}

/// The first step of a preview that would run and is a point of no return.
pub fn point_of_no_return(steps: &[StepPreview]) -> Option<&StepPreview> {
    steps
        .iter()
        .find(|s| s.no_return.is_some() && s.skip.is_none())
}

/// Whether a run would take the step `id` (it is in the plan, not skipped).
pub fn runs(steps: &[StepPreview], id: &str) -> bool {
    steps.iter().any(|s| s.id == id && s.skip.is_none())
}
