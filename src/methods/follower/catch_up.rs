//! `catch-up` and `final-catch-up`: wait for the follower to replay its
//! leader. While the app runs, "caught up" means within a few commits
//! (writers keep it a little behind); once writers are stopped, it means
//! `Behind By` 0 on consecutive reads, never a finished `pg:wait` alone
//! (which may only mean "provisioned"). A missing or unreadable `Behind By`
//! is "unknown", never 0.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::{Done, Effect, Forward, Io, StepError, Undo};
use crate::heroku::types::DatabaseInfo;
use crate::journal::Journal;
use crate::methods::{outputs, read_error, round, Ctx, Def};
use crate::steps;

/// While the app runs, the follower is caught up enough to go on when it is
/// at most this many commits behind: the rest is replayed once writers
/// stop, in seconds.
pub const RUNNING_LAG_COMMITS: u64 = 1_000;

/// Reads of `Behind By` 0 in a row, with writers stopped, that make the
/// follower caught up: one read could be a stale figure.
pub const ZERO_READS: u32 = 3;

/// What a catch-up saw last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lag {
    /// Commits behind, when Heroku said.
    pub behind_by: Option<u64>,
    /// How many reads it took.
    pub reads: u32,
}

pub fn running<'a>() -> Def<'a> {
    Def {
        id: super::CATCH_UP,
        words: "wait until the follower has caught up (the app runs)",
        effect: Effect::Waits,
        skip: |_| None,
        forward: Forward::Run(|ctx, io| wait(ctx, io, false)),
        reconcile: None,
        undo: Undo::Nothing,
        no_return: None,
        sets: &[],
    }
}

pub fn last<'a>() -> Def<'a> {
    Def {
        id: super::FINAL_CATCH_UP,
        words: "wait until the follower has replayed every commit",
        effect: Effect::Waits,
        skip: |_| None,
        forward: Forward::Run(|ctx, io| wait(ctx, io, true)),
        reconcile: None,
        undo: Undo::Nothing,
        no_return: None,
        sets: &[],
    }
}

fn follower_id(j: &Journal) -> Result<String, StepError> {
    outputs::target_id(j)
        .ok_or_else(|| StepError::Definite("the follower's add-on id is not known".into()))
}

fn wait(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>, stopped: bool) -> Result<Done, StepError> {
    let id = follower_id(io.journal())?;
    let app = io.journal().app.clone();
    let start = Instant::now();
    let timeout = if stopped {
        ctx.settings.final_catch_up_timeout
    } else {
        ctx.settings.catch_up_timeout
    };
    let mut zeros = 0;
    let mut reads = 0;
    loop {
        let db: DatabaseInfo = ctx.client.database(&id).map_err(|e| read_error(&e))?;
        io.polled();
        reads += 1;
        let behind = db.behind_by();
        let following = db.is_following();
        if !following {
            // Only pgmigrate unfollows, after this step: a follower that no
            // longer follows was unfollowed or failed over by someone else,
            // and may have missed commits.
            return Err(StepError::Definite(format!(
                "the follower no longer follows the old database (Heroku's `following` is \
                 empty) although pgmigrate has not unfollowed it: it may miss commits. Check it \
                 with `heroku pg:info --app {app}`; `pgmigrate rollback --app {app}` removes it"
            )));
        }
        let done = match (stopped, behind) {
            (false, Some(n)) => n <= RUNNING_LAG_COMMITS,
            (true, Some(0)) => {
                zeros += 1;
                zeros >= ZERO_READS
            }
            (true, _) => {
                zeros = 0;
                false
            }
            (false, None) => false,
        };
        if done {
            let words = if stopped {
                format!(
                    "the follower has replayed every commit ({ZERO_READS} reads of Behind By 0 \
                     with the app stopped) after {}",
                    humantime::format_duration(round(start.elapsed()))
                )
            } else {
                format!(
                    "the follower is {} commit(s) behind while the app runs, after {}",
                    behind.unwrap_or(0),
                    humantime::format_duration(round(start.elapsed()))
                )
            };
            return Ok(Done::with(
                words,
                &Lag {
                    behind_by: behind,
                    reads,
                },
            ));
        }
        let elapsed = start.elapsed();
        if elapsed > timeout {
            io.keep(&Lag {
                behind_by: behind,
                reads,
            })?;
            let shown = behind.map_or("an unknown number of".into(), |n| n.to_string());
            return Err(StepError::Definite(if stopped {
                format!(
                    "the follower is still {shown} commit(s) behind after {} with the app \
                     stopped; unfollowing it now would lose them. The app is down (maintenance \
                     on, dynos at zero) and still on the old database, which is intact: \
                     `pgmigrate rollback --app {app}` brings it back unchanged and removes the \
                     follower, or `pgmigrate resume --app {app}` waits again",
                    humantime::format_duration(timeout)
                )
            } else {
                format!(
                    "the follower is still {shown} commit(s) behind after {}; the app is \
                     untouched and runs on the old database. `pgmigrate resume --app {app}` \
                     waits again, or `pgmigrate rollback --app {app}` removes the follower",
                    humantime::format_duration(timeout)
                )
            }));
        }
        ctx.waiting(
            io.step(),
            match behind {
                Some(n) => format!("the follower is {n} commit(s) behind"),
                None => "the follower's lag (Heroku does not report Behind By yet)".into(),
            },
            elapsed,
        );
        // With the app down every second counts; while it runs there is no
        // hurry.
        let pause = if stopped {
            Duration::from_millis(500).min(ctx.settings.poll_cap)
        } else {
            steps::backoff_poll(elapsed, ctx.settings.poll_cap)
        };
        io.pause(pause)?;
    }
}
