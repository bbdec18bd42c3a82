//! `catch-up` and `final-catch-up`: wait for the follower to replay its
//! leader. While the app runs, "caught up" means within a few commits
//! (writers keep it a little behind); once writers are stopped, it means
//! `Behind By` 0 on consecutive reads, never a finished `pg:wait` alone
//! (which may only mean "provisioned"). A missing or unreadable `Behind By`
//! is "unknown", never 0.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::shared::follower_id;
use crate::decisions;
use crate::engine::{Done, Io, StepError};
use crate::heroku::types::DatabaseInfo;
use crate::journal::Journal;
use crate::methods::{read_error, round, Ctx, Def};

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
    Def::wait(
        super::shared::CATCH_UP,
        "wait until the follower has caught up (the app runs)",
        |ctx, io| wait(ctx, io, false),
    )
}

pub fn last<'a>() -> Def<'a> {
    Def::wait(
        super::shared::FINAL_CATCH_UP,
        "wait until the follower has replayed every commit",
        |ctx, io| wait(ctx, io, true),
    )
}

/// Reads in a row without any lag figure after which the wait goes on
/// without one (see [`Tally`]).
pub const UNKNOWN_READS: u32 = 5;

/// What the reads so far say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    zeros: u32,
    unknown: u32,
}

/// The verdict of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Wait,
    CaughtUp,
    /// Heroku gives no lag figure at all (neither `Behind By` nor the
    /// transactions): go on, relying on what follows. With writers stopped
    /// the unfollow replays everything the leader has before the database
    /// turns writable, and `wait-writable` waits for that; while the app
    /// runs, the final catch-up comes later anyway.
    NoFigure,
}

impl Tally {
    /// Account for one read: `behind` commits, or `None` when unknown.
    pub fn read(&mut self, stopped: bool, behind: Option<u64>) -> Verdict {
        match behind {
            Some(n) => {
                self.unknown = 0;
                if !stopped {
                    return if n <= RUNNING_LAG_COMMITS {
                        Verdict::CaughtUp
                    } else {
                        Verdict::Wait
                    };
                }
                if n == 0 {
                    self.zeros += 1;
                } else {
                    self.zeros = 0;
                }
                if self.zeros >= ZERO_READS {
                    Verdict::CaughtUp
                } else {
                    Verdict::Wait
                }
            }
            None => {
                self.zeros = 0;
                self.unknown += 1;
                if self.unknown >= UNKNOWN_READS {
                    Verdict::NoFigure
                } else {
                    Verdict::Wait
                }
            }
        }
    }
}

/// How far behind the follower is: `Behind By`, else its leader's
/// transaction minus its own when Heroku reports both; `None` if neither.
/// `leader`: the leader's transaction when already read.
fn behind(
    ctx: &Ctx<'_>,
    j: &Journal,
    db: &DatabaseInfo,
    leader: Option<Option<u64>>,
) -> Result<Option<u64>, StepError> {
    if let Some(n) = db.behind_by() {
        return Ok(Some(n));
    }
    let Some(mine) = db.transaction() else {
        return Ok(None);
    };
    let theirs = match leader {
        Some(t) => t,
        None => leader_transaction(ctx, j)?,
    };
    Ok(theirs.map(|t| t.saturating_sub(mine)))
}

fn leader_transaction(ctx: &Ctx<'_>, j: &Journal) -> Result<Option<u64>, StepError> {
    let leader = crate::methods::facts(j)?.source.id.clone();
    Ok(ctx
        .client
        .database(&leader)
        .map_err(|e| read_error(&e))?
        .transaction())
}

/// One look with the writers stopped: the follower and its leader read
/// together (two independent reads sent at once, so the look costs one
/// round trip). Answers the follower and the leader's transaction.
fn look_stopped(
    ctx: &Ctx<'_>,
    j: &Journal,
    id: &str,
) -> Result<(DatabaseInfo, Option<u64>), StepError> {
    let leader = crate::methods::facts(j)?.source.id.clone();
    let client = ctx.client;
    let (mine, theirs) = std::thread::scope(|s| {
        let theirs = s.spawn(|| client.database(&leader));
        let mine = client.database(id);
        (mine, theirs.join())
    });
    let theirs = theirs.map_err(|_| StepError::Definite("reading the leader panicked".into()))?;
    let theirs = theirs.map_err(|e| read_error(&e))?.transaction();
    Ok((mine.map_err(|e| read_error(&e))?, theirs))
}

/// Whether one look settles the final catch-up: with every writer gone
/// (the drain is over before this step), the leader's transaction cannot
/// move, so a follower that reports 0 commits behind and has replayed up
/// to exactly the leader's current transaction (both read in the same
/// look, after the writers stopped) has every commit: nothing is left to
/// replay, and no later read could say otherwise. Any other figure (a lag,
/// a missing transaction, the two transactions apart) falls back to
/// [`ZERO_READS`] reads in a row. The unfollow then replays whatever the
/// leader had at its request before the database turns writable, and
/// `wait-writable` waits for that: a second guard.
pub fn settled_in_one_look(behind: Option<u64>, mine: Option<u64>, leader: Option<u64>) -> bool {
    behind == Some(0) && mine.is_some() && mine == leader
}

fn wait(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>, stopped: bool) -> Result<Done, StepError> {
    let id = follower_id(io.journal())?;
    let j = io.journal().clone();
    let app = j.app.clone();
    let start = Instant::now();
    let timeout = if stopped {
        ctx.settings.final_catch_up_timeout
    } else {
        ctx.settings.catch_up_timeout
    };
    let mut tally = Tally::default();
    let mut reads = 0;
    loop {
        let (db, leader): (DatabaseInfo, Option<Option<u64>>) = if stopped {
            let (db, t) = look_stopped(ctx, &j, &id)?;
            (db, Some(t))
        } else {
            (ctx.client.database(&id).map_err(|e| read_error(&e))?, None)
        };
        io.polled();
        reads += 1;
        if !db.is_following() {
            // Only pgmigrate unfollows, after this step: a follower that no
            // longer follows was unfollowed or failed over by someone else,
            // and may have missed commits.
            return Err(StepError::Definite(format!(
                "the follower no longer follows the old database (Heroku's `following` is \
                 empty) although pgmigrate has not unfollowed it: it may miss commits. Check it \
                 with `heroku pg:info --app {app}`; `pgmigrate rollback --app {app}` removes it"
            )));
        }
        let behind = behind(ctx, &j, &db, leader)?;
        let lag = Lag {
            behind_by: behind,
            reads,
        };
        let elapsed = round(start.elapsed());
        if stopped && settled_in_one_look(behind, db.transaction(), leader.flatten()) {
            return Ok(Done::with(
                format!(
                    "the follower has replayed every commit (0 behind, at the leader's \
                     transaction, with the app stopped) after {}",
                    humantime::format_duration(elapsed)
                ),
                &lag,
            ));
        }
        match tally.read(stopped, behind) {
            Verdict::CaughtUp if stopped => {
                return Ok(Done::with(
                    format!(
                        "the follower has replayed every commit ({ZERO_READS} reads of 0 behind \
                         with the app stopped) after {}",
                        humantime::format_duration(elapsed)
                    ),
                    &lag,
                ))
            }
            Verdict::CaughtUp => {
                return Ok(Done::with(
                    format!(
                        "the follower is {} commit(s) behind while the app runs, after {}",
                        behind.unwrap_or(0),
                        humantime::format_duration(elapsed)
                    ),
                    &lag,
                ))
            }
            Verdict::NoFigure => {
                ctx.warn(format!(
                    "Heroku reports no lag for the follower (no `Behind By`, no transactions) \
                     after {UNKNOWN_READS} reads; {}",
                    if stopped {
                        "with the app's writers stopped, the unfollow replays everything the old \
                         database has before it turns writable, and pgmigrate waits for that"
                    } else {
                        "going on: the last catch-up happens with the app's writers stopped"
                    }
                ));
                return Ok(Done::with(
                    "no lag figure from Heroku: relying on the unfollow's replay",
                    &lag,
                ));
            }
            Verdict::Wait => {}
        }
        if start.elapsed() > timeout {
            io.keep(&lag)?;
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
                None => "the follower's lag (Heroku does not report it yet)".into(),
            },
            start.elapsed(),
        );
        // With the app down every moment is downtime: look again at once
        // (each look is a round trip); while it runs there is no hurry.
        let pause = if stopped {
            Duration::from_millis(50).min(ctx.settings.poll_cap)
        } else {
            decisions::backoff_poll(start.elapsed(), ctx.settings.poll_cap)
        };
        io.pause(pause)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_writers_stopped_only_consecutive_zeros_count() {
        let mut t = Tally::default();
        assert_eq!(t.read(true, Some(0)), Verdict::Wait);
        assert_eq!(t.read(true, Some(0)), Verdict::Wait);
        assert_eq!(t.read(true, Some(3)), Verdict::Wait);
        assert_eq!(t.read(true, Some(0)), Verdict::Wait);
        assert_eq!(t.read(true, None), Verdict::Wait, "unknown is never 0");
        for _ in 1..ZERO_READS {
            assert_eq!(t.read(true, Some(0)), Verdict::Wait);
        }
        assert_eq!(t.read(true, Some(0)), Verdict::CaughtUp);
    }

    #[test]
    fn one_look_settles_only_at_zero_and_at_the_leaders_transaction() {
        assert!(settled_in_one_look(Some(0), Some(41), Some(41)));
        assert!(!settled_in_one_look(Some(0), Some(40), Some(41)), "behind");
        assert!(!settled_in_one_look(Some(1), Some(41), Some(41)));
        assert!(!settled_in_one_look(None, Some(41), Some(41)), "unknown");
        assert!(!settled_in_one_look(Some(0), None, None), "no figures");
        assert!(!settled_in_one_look(Some(0), Some(41), None));
    }

    #[test]
    fn while_the_app_runs_a_few_commits_behind_is_caught_up() {
        let mut t = Tally::default();
        assert_eq!(t.read(false, Some(RUNNING_LAG_COMMITS + 1)), Verdict::Wait);
        assert_eq!(t.read(false, Some(40)), Verdict::CaughtUp);
    }

    #[test]
    fn no_figure_at_all_goes_on_only_after_several_reads_in_a_row() {
        let mut t = Tally::default();
        for _ in 1..UNKNOWN_READS {
            assert_eq!(t.read(true, None), Verdict::Wait);
        }
        assert_eq!(t.read(true, Some(2)), Verdict::Wait, "a figure resets it");
        for _ in 1..UNKNOWN_READS {
            assert_eq!(t.read(true, None), Verdict::Wait);
        }
        assert_eq!(t.read(true, None), Verdict::NoFigure);
    }
}
