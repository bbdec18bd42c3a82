//! `unfollow` and `wait-writable`: make the caught-up follower a database
//! of its own, as `heroku pg:unfollow` does (`PUT .../unfollow`), then wait
//! until it is writable. The unfollow is asynchronous: the database stays
//! read-only until it has replayed its backlog (heroku/heroku-pg PR #187's
//! warning), and the official CLI does not wait at all. pgmigrate waits
//! until Heroku's `following` is empty and the server is not in recovery,
//! so no write of the app is refused by a read-only database.

use std::time::Instant;

use super::shared::follower_id;
use crate::decisions;
use crate::engine::{Done, Effect, Forward, Io, Request, StepError, Undo, Undone};
use crate::error::describe_api;
use crate::heroku::ApiError;
use crate::journal::Journal;
use crate::methods::steps::wait_status::{availability, Availability};
use crate::methods::{read_error, round, write_error, Ctx, Def};

pub fn def<'a>() -> Def<'a> {
    Def {
        id: super::shared::UNFOLLOW,
        words: "unfollow: make the follower writable",
        effect: Effect::Writes,
        skip: |_| None,
        forward: Forward::Write(prepare),
        reconcile: Some(reconcile),
        // An unfollowed database cannot follow again (Heroku: "This cannot
        // be undone"); it is destroyed with the undo of create-follower.
        undo: Undo::Compensate {
            words: "nothing: the unfollowed follower is destroyed with its creation's undo",
            polls: false,
            run: |_, _| {
                Ok(Undone::Skipped(
                    "an unfollowed database cannot follow again; it is destroyed next".into(),
                ))
            },
        },
        no_return: None,
        sets: &[],
    }
}

pub fn wait_writable<'a>() -> Def<'a> {
    Def::wait(
        super::shared::WAIT_WRITABLE,
        "wait until the unfollowed database is writable",
        wait,
    )
}

fn prepare<'a>(
    _: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    // By id, the add-on pgmigrate created: never an attachment name, which
    // could name the leader (the public scripts' pitfall).
    let id = follower_id(io.journal())?;
    Ok(Request::new(
        format!("PUT /client/v11/databases/{id}/unfollow"),
        move |ctx: &mut Ctx<'a>, _| match ctx.client.unfollow(&id) {
            Ok(()) => Ok(Done::words("unfollow requested")),
            // Sent again after a lost answer, Heroku may say it is not a
            // follower any more: read back, that is done.
            Err(
                e @ ApiError::Http {
                    status: 400..=422, ..
                },
            ) => {
                let db = ctx.client.database(&id).map_err(|e| read_error(&e))?;
                if db.is_following() {
                    Err(StepError::Definite(format!(
                        "Heroku refused to unfollow the follower: {}",
                        describe_api(&e)
                    )))
                } else {
                    Ok(Done::words(
                        "the follower no longer follows (already unfollowed)",
                    ))
                }
            }
            Err(e) => Err(write_error(&e)),
        },
    ))
}

/// The unfollow took effect when Heroku no longer reports a leader. A
/// database still `following` may be mid-unfollow or may never have got
/// the request; sending it again is harmless either way.
fn reconcile(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let id = follower_id(j)?;
    let db = ctx.client.database(&id).map_err(|e| read_error(&e))?;
    Ok((!db.is_following()).then(|| Done::words("the follower no longer follows")))
}

fn wait(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let id = follower_id(io.journal())?;
    let app = io.journal().app.clone();
    let start = Instant::now();
    loop {
        let db = ctx.client.database(&id).map_err(|e| read_error(&e))?;
        io.polled();
        let waiting_for = if db.is_following() {
            Some("Heroku to finish the unfollow (the database replays its backlog)")
        } else if db.in_recovery == Some(true) {
            Some("the database to leave recovery")
        } else if db.in_recovery == Some(false) {
            // No longer following and out of recovery: it takes writes.
            // Known from this read; a wait_status read after it would only
            // add a round trip to the window.
            None
        } else {
            // Heroku does not say whether it is in recovery: ask the Data
            // API whether it is available.
            match availability(ctx, &id, "the unfollowed database")? {
                Availability::Waiting(_) => Some("the database to be available"),
                Availability::Ready | Availability::Unknown => None,
            }
        };
        let Some(what) = waiting_for else {
            return Ok(Done::words(format!(
                "the new database is writable after {}",
                humantime::format_duration(round(start.elapsed()))
            )));
        };
        let elapsed = start.elapsed();
        if elapsed > ctx.settings.unfollow_timeout {
            return Err(StepError::Definite(format!(
                "the unfollowed database is still not writable after {}. The app is down \
                 (maintenance on, dynos at zero) and DATABASE still points at the old \
                 database, which is intact: `pgmigrate resume --app {app}` waits again, or \
                 `pgmigrate rollback --app {app}` brings the app back unchanged",
                humantime::format_duration(ctx.settings.unfollow_timeout)
            )));
        }
        ctx.waiting(io.step(), format!("waiting for {what}"), elapsed);
        // In the window: every moment is downtime, so look again soon
        // (each look is a round trip) for the first seconds, then back off.
        let pause = if elapsed < std::time::Duration::from_secs(10) {
            std::time::Duration::from_millis(50).min(ctx.settings.poll_cap)
        } else {
            decisions::backoff_poll(elapsed, ctx.settings.poll_cap)
        };
        io.pause(pause)?;
    }
}
