//! What `status` answers about a copy: its own questions (the copy, the
//! verify) and the ones every method shares.

use crate::compare::VerifyReport;
use crate::engine::{Plan, StepState};
use crate::journal::Journal;
use crate::methods::answers::{self, answer, Answer, Answers};
use crate::methods::copy::shared::{transfer, START_COPY, VERIFY, WAIT_COPY};
use crate::methods::{human_bytes, Ctx};

pub fn answers<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answers {
    Answers(vec![
        copy(j),
        verify(j),
        answers::database_url(plan, j),
        answers::rebinding(plan, j),
        answers::maintenance(plan, j),
        answers::formation(plan, j),
        answers::target_addon(plan, j),
    ])
}

fn state(j: &Journal, id: &str) -> StepState {
    j.log.state(id).unwrap_or(StepState::Pending)
}

/// `not-started`, `running`, `succeeded`, `failed` or `in-doubt`.
fn copy(j: &Journal) -> Answer {
    let a = |v, w: String| answer("copy", "Copy", v, w);
    match (state(j, START_COPY), state(j, WAIT_COPY)) {
        (_, StepState::Done) => {
            let bytes = transfer(j)
                .and_then(|t| t.processed_bytes)
                .map(human_bytes)
                .unwrap_or_else(|| "?".into());
            let words = match transfer(j).and_then(|t| t.warnings) {
                Some(w) if w > 0 => format!(
                    "The copy finished and Heroku reports it succeeded ({bytes}) with {w} \
                     warning(s): pg_restore ignored errors."
                ),
                _ => format!("The copy finished and Heroku reports it succeeded ({bytes})."),
            };
            a("succeeded", words)
        }
        (_, StepState::Failed) if transfer(j).is_some_and(|t| t.succeeded == Some(true)) => {
            let w = transfer(j).and_then(|t| t.warnings).unwrap_or(0);
            a(
                "succeeded",
                format!(
                    "Heroku reports the copy succeeded with {w} warning(s) (pg_restore ignored \
                     errors); the run stopped before the cut-over: check the copy."
                ),
            )
        }
        (StepState::Running, _) => a(
            "in-doubt",
            "A transfer may have been started; its start was not confirmed (resume or rollback \
             looks it up)."
                .into(),
        ),
        (StepState::Done, _) => match transfer(j) {
            Some(t) if t.succeeded == Some(false) => a(
                "failed",
                format!(
                    "The copy (transfer {}) failed; nothing was switched.",
                    t.uuid
                ),
            ),
            Some(t) => a(
                "running",
                format!(
                    "The copy (transfer {}) was started and has not been seen to finish.",
                    t.uuid
                ),
            ),
            None => a("running", "A copy was started.".into()),
        },
        _ => a("not-started", "The copy has not started.".into()),
    }
}

/// `skipped`, `not-yet`, `matched` or `differs`.
fn verify(j: &Journal) -> Answer {
    let a = |v, w: String| answer("verify", "Verify", v, w);
    let report: Option<VerifyReport> = j.log.output(VERIFY);
    match (report, state(j, VERIFY)) {
        (_, StepState::Skipped) => a(
            "skipped",
            "The copy was not compared (--verify none).".into(),
        ),
        (Some(r), _) if r.mismatches == 0 => a(
            "matched",
            format!(
                "The new database matched the old one ({}, {} tables).",
                r.mode,
                r.tables.len()
            ),
        ),
        (Some(r), _) => a(
            "differs",
            format!(
                "The new database differs from the old one: {}",
                r.describe_mismatches().replace("\n    ", "; ")
            ),
        ),
        (None, _) => a("not-yet", "The copy has not been compared yet.".into()),
    }
}

/// What the summary of a completed copy adds: how much was copied, and in
/// how long.
pub fn summary(j: &Journal) -> Vec<String> {
    let Some(t) = transfer(j) else {
        return Vec::new();
    };
    let at = |id: &str, end: bool| {
        j.log.record(id).and_then(|r| {
            if end {
                r.finished_at.clone()
            } else {
                r.started_at.clone()
            }
        })
    };
    let took = crate::methods::duration_ms(
        at(START_COPY, false).as_deref(),
        at(WAIT_COPY, true).as_deref(),
    )
    .map(|ms| format!(" in {:.1}s", ms as f64 / 1000.0))
    .unwrap_or_default();
    vec![format!(
        "  copied: {}{took}",
        t.processed_bytes
            .map(human_bytes)
            .unwrap_or_else(|| "?".into())
    )]
}
