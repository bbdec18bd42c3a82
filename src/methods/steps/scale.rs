//! `scale-down`, `wait-dynos` and `scale-up`: every process type to zero in
//! one request, the drain (every dyno but one-offs gone), and back to
//! exactly the recorded formation in one request. One-off `run.N` dynos are
//! not stopped by scaling: they are refused, never waited for.

use std::time::Instant;

use crate::decisions::{self, ReleaseVerdict};
use crate::engine::{Done, Io, Request, StepError, Undo, Undone};
use crate::heroku::types::Dyno;
use crate::journal::Journal;
use crate::methods::aspects;
use crate::methods::outputs::{id, ScaledDown};
use crate::methods::steps::releases::{self, ReleaseRecord, Waited};
use crate::methods::{facts, read_error, round, write_error, Ctx, Def};

/// `wait-dynos`: the app's newest release when the dynos were gone, before
/// the copy and the cut-over (the cut-over's releases are newer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Drained {
    pub release_before_cutover: Option<u64>,
}

/// `scale-up` (and the undo of `scale-down`): the release the dynos were
/// started on, or the failed one the wait stopped on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartedOn {
    pub release: Option<ReleaseRecord>,
    /// The run's releases that failed before `release` succeeded (the
    /// cut-over's `Attach DATABASE`, say), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<ReleaseRecord>,
}

fn no_dynos(j: &Journal) -> Option<String> {
    j.facts
        .as_ref()
        .filter(|f| decisions::running_types(f).is_empty())
        .map(|_| "no process type has dynos".into())
}

pub fn down<'a>() -> Def<'a> {
    Def::write(
        id::SCALE_DOWN,
        "scale every process type to zero",
        prepare_down,
        reconcile_down,
        Undo::Compensate {
            words: "scale back to the original formation",
            polls: false,
            run: restore,
        },
    )
    .skipped_when(no_dynos)
    .setting(&[aspects::AT_ZERO])
}

pub fn wait<'a>() -> Def<'a> {
    Def::wait(id::WAIT_DYNOS, "wait until the dynos are gone", wait_dynos).skipped_when(no_dynos)
}

/// `no_return`: set by the method (after the cut-over, scaling up means
/// the app has run on the new database).
pub fn up<'a>() -> Def<'a> {
    Def::write(
        id::SCALE_UP,
        "scale back to the original formation",
        prepare_up,
        reconcile_up,
        Undo::Compensate {
            words: "scale to zero and wait for the dynos to be gone",
            polls: true,
            run: to_zero,
        },
    )
    .skipped_when(no_dynos)
    .setting(&[aspects::AS_RECORDED])
}

pub fn prepare_down<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let facts = facts(j)?;
    if facts.maintenance_was_on {
        // maintenance-on was skipped, and with it its checks.
        refuse_one_offs(ctx, &j.app)?;
        super::others::check(ctx, j)?;
    }
    let app = j.app.clone();
    let updates = decisions::scale_down_updates(facts);
    let list = list(&updates);
    Ok(Request::new(
        format!("PATCH /apps/{app}/formation {list}"),
        move |ctx: &mut Ctx<'a>, _| {
            let live = ctx
                .client
                .update_formation(&app, &updates)
                .map_err(|e| write_error(&e))?;
            let recorded = ScaledDown::of(&live);
            ctx.live_formation = live;
            Ok(Done::with(format!("scaled {list}"), &recorded))
        },
    ))
}

fn list(updates: &[crate::heroku::types::FormationUpdate]) -> String {
    updates
        .iter()
        .map(|u| format!("{}={}", u.process_type, u.quantity))
        .collect::<Vec<_>>()
        .join(" ")
}

fn reconcile_down(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let facts = facts(j)?;
    let f = ctx.client.formation(&j.app).map_err(|e| read_error(&e))?;
    let zero = decisions::running_types(facts).iter().all(|p| {
        f.iter()
            .any(|l| l.process_type == p.process_type && l.quantity == 0)
    });
    if !zero {
        return Ok(None);
    }
    let recorded = ScaledDown::of(&f);
    ctx.live_formation = f;
    Ok(Some(Done::with("the formation is at zero", &recorded)))
}

fn restore(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let app = io.journal().app.clone();
    // As scale-up: dynos boot on the newest succeeded release, so they
    // wait for the rollback's own releases (the old database attached
    // again), or they would start on the new one.
    let j = io.journal().clone();
    match releases::wait_release(ctx, io, &j, None, true)? {
        Waited::Nothing => {}
        Waited::Succeeded(r, failed) => {
            io.note(
                crate::engine::EventKind::Note,
                &format!(
                    "undo: release v{} ({}) has succeeded: dynos start on it",
                    r.version, r.description
                ),
            )?;
            io.keep(&StartedOn {
                release: Some(r),
                failed,
            })?;
        }
        Waited::Failed(r, message) => {
            io.keep(&StartedOn {
                release: Some(r),
                failed: vec![],
            })?;
            return Err(StepError::Definite(message));
        }
    }
    let updates = decisions::scale_up_updates(facts(io.journal())?, &[]);
    ctx.client
        .update_formation(&app, &updates)
        .map_err(|e| write_error(&e))?;
    Ok(Undone::Done("formation restored".into()))
}

fn wait_dynos(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let start = Instant::now();
    // A release command runs in its own dyno while its release is pending,
    // with a database URL, while the app is down: a writer like any other,
    // so the copy waits for it too. A release can be pending a moment
    // before its dyno shows, so both are looked at, on an app with release
    // phase (a `release` process type, as promote.ts decides, or a release
    // dyno seen): elsewhere releases succeed at once and the window is
    // spared the request.
    let has_release_type = releases::has_release_type(io.journal());
    let newest = loop {
        let last = drain(ctx, io)?;
        // One started while the app was already down (refused earlier
        // otherwise) would write to the old database during the copy.
        one_offs_running(&io.journal().app, &last)?;
        if !has_release_type && !ctx.saw_release_dyno {
            break None;
        }
        // Read just before the window with none pending, and no release
        // dyno since: known, not read again with the app down.
        if let (Some(floor), false) = (ctx.release_before_window, ctx.saw_release_dyno) {
            break floor;
        }
        let Some(list) = releases::read_releases(ctx, io.journal())? else {
            break None;
        };
        match decisions::release_verdict(&list, None) {
            ReleaseVerdict::Pending(r) => {
                let elapsed = start.elapsed();
                let app = io.journal().app.clone();
                let what = crate::secrets::redact(r.description());
                if elapsed > ctx.settings.release_timeout {
                    return Err(StepError::Definite(format!(
                        "release v{} ({what}) is still pending after {}; its release command \
                         can write to the old database. See `heroku releases:output {} --app \
                         {app}`, then resume",
                        r.version,
                        humantime::format_duration(ctx.settings.release_timeout),
                        r.version,
                    )));
                }
                ctx.waiting(
                    io.step(),
                    format!(
                        "release v{} ({what}) is pending: waiting for its release command",
                        r.version
                    ),
                    elapsed,
                );
                io.pause(decisions::backoff_poll(elapsed, ctx.settings.poll_cap))?;
            }
            ReleaseVerdict::NoRelease | ReleaseVerdict::NotYet(_) => break None,
            ReleaseVerdict::Succeeded(r) | ReleaseVerdict::Failed(r) => break Some(r.version),
        }
    };
    Ok(Done::with(
        format!(
            "all dynos gone after {}",
            humantime::format_duration(round(start.elapsed()))
        ),
        &Drained {
            release_before_cutover: newest,
        },
    ))
}

/// Wait until no dyno is left but one-off ones ([`decisions::dynos_left`]);
/// answers the last list of dynos seen.
pub fn drain(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Vec<Dyno>, StepError> {
    let app = io.journal().app.clone();
    let start = Instant::now();
    loop {
        let dynos = ctx.client.dynos(&app).map_err(|e| read_error(&e))?;
        io.polled();
        let left = decisions::dynos_left(&dynos);
        if left.is_empty() {
            return Ok(dynos);
        }
        let elapsed = start.elapsed();
        let releasing: Vec<&str> = dynos
            .iter()
            .filter(|d| d.is_release())
            .map(|d| d.name.as_str())
            .collect();
        if !releasing.is_empty() {
            ctx.saw_release_dyno = true;
        }
        if !releasing.is_empty() && left.len() == releasing.len() {
            // Only release commands are left: stopping one fails its
            // release, so it is waited for up to Heroku's own limit.
            if elapsed > ctx.settings.release_timeout {
                return Err(StepError::Definite(format!(
                    "a release command is still running after {} ({}); it can write to the \
                     old database. See `heroku releases:output --app {app}`, then resume",
                    humantime::format_duration(ctx.settings.release_timeout),
                    releasing.join(", ")
                )));
            }
            ctx.waiting(
                io.step(),
                format!("release command running ({})", releasing.join(", ")),
                elapsed,
            );
            io.pause(decisions::drain_poll(elapsed).min(ctx.settings.poll_cap))?;
            continue;
        }
        if elapsed > ctx.settings.drain_timeout {
            return Err(StepError::Definite(format!(
                "dynos still running after {}: {}. They can still write to the old \
                 database; stop them (`heroku ps:stop {} --app {app}`) and resume",
                humantime::format_duration(ctx.settings.drain_timeout),
                left.join(", "),
                // Not a release command's: stopping that fails its release.
                left.iter()
                    .find(|n| !releasing.contains(*n))
                    .unwrap_or(&left[0])
            )));
        }
        ctx.waiting(
            io.step(),
            format!("{} dyno(s) stopping", left.len()),
            elapsed,
        );
        io.pause(decisions::drain_poll(elapsed).min(ctx.settings.poll_cap))?;
    }
}

fn prepare_up<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    // Before the intent: a read. Dynos started before the cut-over's
    // release has succeeded would run the old DATABASE_URL.
    let floor = io
        .journal()
        .log
        .output::<Drained>(id::WAIT_DYNOS)
        .and_then(|d| d.release_before_cutover);
    let j = io.journal().clone();
    let waited = if releases::scale_up_reads(ctx, &j, floor) {
        releases::wait_release(ctx, io, &j, floor, false)?
    } else {
        Waited::Nothing
    };
    let (seen, failed) = match waited {
        Waited::Nothing => (None, vec![]),
        Waited::Succeeded(r, failed) => {
            io.note(
                crate::engine::EventKind::Note,
                &format!(
                    "release v{} ({}) has succeeded: dynos start on it",
                    r.version, r.description
                ),
            )?;
            if !failed.is_empty() {
                // Not silent: on stderr now, in the journal, and in the
                // step's note and answers `status` shows.
                let warning = releases::failed_but_superseded(&j.app, &failed, &r);
                ctx.warn(warning.clone());
                io.note(crate::engine::EventKind::Note, &warning)?;
            }
            (Some(r), failed)
        }
        Waited::Failed(r, message) => {
            io.keep(&StartedOn {
                release: Some(r),
                failed: vec![],
            })?;
            return Err(StepError::Definite(message));
        }
    };
    let failed_words = match (&seen, failed.is_empty()) {
        (Some(r), false) => format!("; {}", releases::failed_but_superseded(&j.app, &failed, r)),
        _ => String::new(),
    };
    let j = io.journal();
    let app = j.app.clone();
    let updates = decisions::scale_up_updates(facts(j)?, &ctx.live_formation);
    let list = list(&updates);
    Ok(Request::new(
        format!("PATCH /apps/{app}/formation {list}"),
        move |ctx: &mut Ctx<'a>, _| {
            ctx.client
                .update_formation(&app, &updates)
                .map_err(|e| write_error(&e))?;
            Ok(Done::with(
                format!("scaled {list}{failed_words}"),
                &StartedOn {
                    release: seen,
                    failed,
                },
            ))
        },
    ))
}

fn reconcile_up(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let f = ctx.client.formation(&j.app).map_err(|e| read_error(&e))?;
    Ok(decisions::formation_matches(&facts(j)?.formation, &f)
        .then(|| Done::words("the formation is as recorded")))
}

fn to_zero(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let app = io.journal().app.clone();
    let updates = decisions::scale_down_updates(facts(io.journal())?);
    ctx.client
        .update_formation(&app, &updates)
        .map_err(|e| write_error(&e))?;
    drain(ctx, io)?;
    Ok(Undone::Done("scaled to zero; dynos gone".into()))
}

/// Refuse while one-off dynos are up (a read, before the app is touched).
pub fn refuse_one_offs(ctx: &mut Ctx<'_>, app: &str) -> Result<(), StepError> {
    let dynos = ctx.client.dynos(app).map_err(|e| read_error(&e))?;
    one_offs_running(app, &dynos)
}

/// An error if one-off dynos are up: scaling does not stop them, and they
/// could write to the old database during the copy.
pub fn one_offs_running(app: &str, dynos: &[Dyno]) -> Result<(), StepError> {
    let one_offs = decisions::one_off_names(dynos);
    if one_offs.is_empty() {
        return Ok(());
    }
    Err(StepError::Definite(format!(
        "one-off dynos are running: {} (scaling does not stop them). Stop them with \
         `heroku ps:stop {} --app {app}` and resume",
        one_offs.join(", "),
        one_offs[0]
    )))
}
