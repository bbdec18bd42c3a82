//! What `status` answers about a follower changeover: whether the follower
//! still follows, and the questions every method shares.

use crate::engine::{Plan, StepState};
use crate::journal::Journal;
use crate::methods::answers::{self, answer, Answer, Answers};
use crate::methods::follower::catch_up::Lag;
use crate::methods::follower::shared::{CATCH_UP, FINAL_CATCH_UP, UNFOLLOW, WAIT_WRITABLE};
use crate::methods::outputs::id;
use crate::methods::Ctx;

pub fn answers<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answers {
    Answers(vec![
        follower(j),
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

/// `not-created`, `in-doubt`, `following`, `unfollowing`, `unfollowed` or
/// `destroyed`.
fn follower(j: &Journal) -> Answer {
    let a = |v, w: String| answer("follower", "Follower", v, w);
    let name = &j.target.addon_name;
    let created = j.log.record(id::CREATE_FOLLOWER);
    if created.and_then(|r| r.undo) == Some(StepState::Done) {
        return a(
            "destroyed",
            format!("The follower {name} was destroyed by rollback."),
        );
    }
    let lag = |step| {
        j.log
            .output::<Lag>(step)
            .and_then(|l| l.behind_by)
            .map(|n| format!(" (last seen {n} commit(s) behind)"))
            .unwrap_or_default()
    };
    match (
        state(j, id::CREATE_FOLLOWER),
        state(j, UNFOLLOW),
        state(j, WAIT_WRITABLE),
    ) {
        (StepState::Running, _, _) => a(
            "in-doubt",
            format!("The follower {name} may exist: its creation was not confirmed."),
        ),
        (StepState::Done, _, StepState::Done) => a(
            "unfollowed",
            format!("{name} no longer follows the old database and is writable."),
        ),
        (StepState::Done, StepState::Done | StepState::Running, _) => a(
            "unfollowing",
            format!(
                "{name} was asked to unfollow (or may have been); it may still be read-only \
                 while it replays its backlog."
            ),
        ),
        (StepState::Done, _, _) => {
            let seen = match state(j, FINAL_CATCH_UP) {
                StepState::Done => " and has replayed every commit".to_string(),
                _ => Some(lag(FINAL_CATCH_UP))
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| lag(CATCH_UP)),
            };
            a(
                "following",
                format!(
                    "{name} still follows the old database (read-only){seen}; the old \
                     database is untouched."
                ),
            )
        }
        _ => a("not-created", "No follower was created.".into()),
    }
}
