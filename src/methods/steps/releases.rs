//! Release phase. Attaching DATABASE and setting config vars make releases;
//! on an app with a release command each runs it in a `release.N` dyno
//! and can fail. Dynos boot on the newest release that succeeded, so the
//! formation is restored only once the release of the run's last change
//! has (heroku/cli src/commands/pg/promote.ts waits for its releases the
//! same way), and a running release command is a writer the copy waits
//! for.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::decisions::{self, ReleaseVerdict};
use crate::engine::{Io, StepError};
use crate::error::describe_api;
use crate::heroku::types::Release;
use crate::journal::Journal;
use crate::methods::{facts, read_error, Ctx};

/// A release a step waited for (kept in its output, or its undo's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub version: u64,
    /// `succeeded`, or `failed`/`expired` when the wait stopped on it.
    pub status: String,
    /// Heroku's description of the release (redacted).
    pub description: String,
}

impl ReleaseRecord {
    fn of(r: &Release) -> ReleaseRecord {
        ReleaseRecord {
            version: r.version,
            status: r.status.clone(),
            description: crate::secrets::redact(r.description()),
        }
    }
}

/// Whether the app has release phase: a `release` process type in the
/// recorded formation (as promote.ts decides).
pub fn has_release_type(j: &Journal) -> bool {
    j.facts
        .as_ref()
        .is_some_and(|f| f.formation.iter().any(|p| p.process_type == "release"))
}

/// The app's newest releases, or `None` when the API does not serve them
/// (404) and the app has no release process type, so that no release
/// command can be pending.
pub fn read_releases(ctx: &Ctx<'_>, j: &Journal) -> Result<Option<Vec<Release>>, StepError> {
    let app = &j.app;
    match ctx.client.newest_releases(app) {
        Ok(list) => Ok(Some(list)),
        Err(e) if e.is_not_found() => {
            facts(j)?;
            if has_release_type(j) {
                return Err(StepError::Definite(format!(
                    "{} while {app} has a release command: whether dynos would start on the \
                     new database cannot be checked",
                    describe_api(&e)
                )));
            }
            ctx.warn(
                "this API does not list the app's releases; the app has no release process \
                 type, so no release command is waited for",
            );
            Ok(None)
        }
        Err(e) => Err(read_error(&e)),
    }
}

/// On an app with release phase, read its releases just before
/// maintenance goes on (a read, outside the window): when none is pending,
/// the newest is the floor the cut-over's releases must exceed, and no
/// release command of the run is running, so `wait-dynos` need not read
/// them again with the app down (a release command started later shows as
/// a `release.N` dyno, which the drain waits for). A pending release is
/// left to `wait-dynos` (read again there, as before).
pub fn before_window(ctx: &mut Ctx<'_>, j: &Journal) -> Result<(), StepError> {
    ctx.release_before_window = None;
    if !has_release_type(j) {
        return Ok(());
    }
    let Some(list) = read_releases(ctx, j)? else {
        return Ok(());
    };
    match decisions::release_verdict(&list, None) {
        ReleaseVerdict::NoRelease => ctx.release_before_window = Some(None),
        ReleaseVerdict::Succeeded(r) | ReleaseVerdict::Failed(r) => {
            ctx.release_before_window = Some(Some(r.version))
        }
        ReleaseVerdict::Pending(_) | ReleaseVerdict::NotYet(_) => {}
    }
    Ok(())
}

/// Whether the scale-up must look at the releases: on an app with release
/// phase (a `release` process type, as promote.ts decides, or a release
/// dyno seen, or a floor read), a release command can fail or be pending;
/// elsewhere every release succeeds at once (Dev Center, Release Phase:
/// without a release command there is no release phase), so the answer is
/// known before the window and the request is not made in it.
pub fn scale_up_reads(ctx: &Ctx<'_>, j: &Journal, floor: Option<u64>) -> bool {
    has_release_type(j) || ctx.saw_release_dyno || floor.is_some()
}

/// What waiting for a release ended on.
pub enum Waited {
    /// No release to wait for (none listed, or the API lists none).
    Nothing,
    /// The newest release succeeded; with the run's releases before it
    /// that failed (see [`decisions::failed_since`]), oldest first.
    Succeeded(ReleaseRecord, Vec<ReleaseRecord>),
    /// Heroku did not deploy it: the message names it and the ways on.
    Failed(ReleaseRecord, String),
}

/// Wait until the app's newest release (newer than `floor`) has succeeded,
/// so that dynos started next run the config the run set. `rollback`: the
/// wait is the rollback's (the message's ways on differ). Polls with the
/// step's pauses; a failed release ends the wait (nothing changed yet).
pub fn wait_release(
    ctx: &Ctx<'_>,
    io: &Io<'_, Journal>,
    j: &Journal,
    floor: Option<u64>,
    rollback: bool,
) -> Result<Waited, StepError> {
    let app = j.app.clone();
    let start = Instant::now();
    loop {
        let Some(releases) = read_releases(ctx, j)? else {
            return Ok(Waited::Nothing);
        };
        let elapsed = start.elapsed();
        let waiting = match decisions::release_verdict(&releases, floor) {
            ReleaseVerdict::NoRelease => return Ok(Waited::Nothing),
            ReleaseVerdict::Succeeded(r) => {
                let failed = decisions::failed_since(&releases, floor)
                    .into_iter()
                    .map(ReleaseRecord::of)
                    .collect();
                return Ok(Waited::Succeeded(ReleaseRecord::of(r), failed));
            }
            ReleaseVerdict::Failed(r) => {
                let rec = ReleaseRecord::of(r);
                let message = release_failed(&app, &rec, rollback);
                return Ok(Waited::Failed(rec, message));
            }
            ReleaseVerdict::Pending(r) => format!(
                "release v{} ({}) is running its release command; dynos start once it has \
                 succeeded",
                r.version,
                crate::secrets::redact(r.description())
            ),
            ReleaseVerdict::NotYet(r) => format!(
                "waiting for the release of the cut-over (newest is v{}, the cut-over's must be \
                 newer than v{})",
                r.map_or(0, |r| r.version),
                floor.unwrap_or(0)
            ),
        };
        if elapsed > ctx.settings.release_timeout {
            return Err(StepError::Definite(format!(
                "{waiting}, still after {}: the dynos stay at zero. See `heroku releases --app \
                 {app}`",
                humantime::format_duration(ctx.settings.release_timeout)
            )));
        }
        ctx.waiting(io.step(), waiting, elapsed);
        io.pause(decisions::backoff_poll(elapsed, ctx.settings.poll_cap))?;
    }
}

/// Why a step stopped on a release that Heroku did not deploy, and the
/// ways on.
fn release_failed(app: &str, r: &ReleaseRecord, rollback: bool) -> String {
    let (on, back) = if !rollback {
        (
            "the old DATABASE_URL (or none)",
            format!(
                "then `pgmigrate resume --app {app}`, which picks up the newer release; or \
                 `pgmigrate rollback --app {app}` to go back to the old database"
            ),
        )
    } else {
        (
            "the new database",
            format!("then `pgmigrate rollback --app {app}` again"),
        )
    };
    format!(
        "release v{v} ({d}) {status}: Heroku did not deploy it, so dynos started now would run \
         an earlier release, with {on}. The dynos stay at zero and maintenance stays on. See why \
         with `heroku releases:output {v} --app {app}`; fix the release command and run `heroku \
         releases:retry --app {app}`, {back}",
        v = r.version,
        d = r.description,
        status = r.status,
    )
}

/// The warning for releases of the run that failed although a newer one
/// succeeded: dynos run the newer one (it carries the same config), so the
/// run goes on, but what the failed release's command would have done on
/// the new database was not done, and a person must know which one and
/// where its output is.
pub fn failed_but_superseded(
    app: &str,
    failed: &[ReleaseRecord],
    deployed: &ReleaseRecord,
) -> String {
    let each: Vec<String> = failed
        .iter()
        .map(|r| {
            format!(
                "release v{v} ({d}) {s}; see why with `heroku releases:output {v} --app {app}`",
                v = r.version,
                d = r.description,
                s = r.status
            )
        })
        .collect();
    format!(
        "{}. Heroku deployed the later release v{} ({}), which carries the same config, so \
         the dynos run on it; check that its release command did what the failed one should \
         have",
        each.join("; "),
        deployed.version,
        deployed.description
    )
}
