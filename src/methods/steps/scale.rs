//! `scale-down`, `wait-dynos` and `scale-up`: every process type to zero in
//! one request, the drain (every dyno but one-offs gone), and back to
//! exactly the recorded formation in one request. One-off `run.N` dynos are
//! not stopped by scaling: they are refused, never waited for.

use std::time::Instant;

use crate::engine::{Done, Effect, Forward, Io, Request, StepError, Undo, Undone};
use crate::heroku::types::Dyno;
use crate::journal_v2::Journal;
use crate::methods::outputs::id;
use crate::methods::{facts, read_error, round, write_error, Ctx, Def};
use crate::steps;

fn no_dynos(j: &Journal) -> Option<String> {
    j.facts
        .as_ref()
        .filter(|f| steps::running_types(f).is_empty())
        .map(|_| "no process type has dynos".into())
}

pub fn down<'a>() -> Def<'a> {
    Def {
        id: id::SCALE_DOWN,
        words: "scale every process type to zero",
        effect: Effect::Writes,
        skip: no_dynos,
        forward: Forward::Write(prepare_down),
        reconcile: Some(reconcile_down),
        undo: Undo::Compensate {
            words: "scale back to the original formation",
            polls: false,
            run: restore,
        },
        no_return: None,
        sets: &[("formation", "at-zero")],
    }
}

pub fn wait<'a>() -> Def<'a> {
    Def {
        id: id::WAIT_DYNOS,
        words: "wait until the dynos are gone",
        effect: Effect::Waits,
        skip: no_dynos,
        forward: Forward::Run(wait_dynos),
        reconcile: None,
        undo: Undo::Nothing,
        no_return: None,
        sets: &[],
    }
}

/// `no_return`: set by the method (after the cut-over, scaling up means
/// the app has run on the new database).
pub fn up<'a>() -> Def<'a> {
    Def {
        id: id::SCALE_UP,
        words: "scale back to the original formation",
        effect: Effect::Writes,
        skip: no_dynos,
        forward: Forward::Write(prepare_up),
        reconcile: Some(reconcile_up),
        undo: Undo::Compensate {
            words: "scale to zero and wait for the dynos to be gone",
            polls: true,
            run: to_zero,
        },
        no_return: None,
        sets: &[("formation", "as-recorded")],
    }
}

fn prepare_down<'a>(
    ctx: &mut Ctx<'a>,
    j: &Journal,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let facts = facts(j)?;
    if facts.maintenance_was_on {
        // maintenance-on was skipped, and with it its check.
        refuse_one_offs(ctx, &j.app)?;
    }
    let app = j.app.clone();
    let updates = steps::scale_down_updates(facts);
    let list = list(&updates);
    Ok(Request::new(
        format!("PATCH /apps/{app}/formation {list}"),
        move |ctx: &mut Ctx<'a>, _| {
            let live = ctx
                .client
                .update_formation(&app, &updates)
                .map_err(|e| write_error(&e))?;
            ctx.live_formation = live;
            Ok(Done::words(format!("scaled {list}")))
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
    let zero = steps::running_types(facts).iter().all(|p| {
        f.iter()
            .any(|l| l.process_type == p.process_type && l.quantity == 0)
    });
    if zero {
        ctx.live_formation = f;
    }
    Ok(zero.then(|| Done::words("the formation is at zero")))
}

fn restore(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let app = io.journal().app.clone();
    let updates = steps::scale_up_updates(facts(io.journal())?, &[]);
    ctx.client
        .update_formation(&app, &updates)
        .map_err(|e| write_error(&e))?;
    Ok(Undone::Done("formation restored".into()))
}

fn wait_dynos(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let start = Instant::now();
    let last = drain(ctx, io)?;
    // One started while the app was already down (refused earlier
    // otherwise) would write to the old database during the copy.
    one_offs_running(&io.journal().app, &last)?;
    Ok(Done::words(format!(
        "all dynos gone after {}",
        humantime::format_duration(round(start.elapsed()))
    )))
}

/// Wait until no dyno is left but one-off ones ([`steps::dynos_left`]);
/// answers the last list of dynos seen.
pub fn drain(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Vec<Dyno>, StepError> {
    let app = io.journal().app.clone();
    let start = Instant::now();
    loop {
        let dynos = ctx.client.dynos(&app).map_err(|e| read_error(&e))?;
        io.polled();
        let left = steps::dynos_left(&dynos);
        if left.is_empty() {
            return Ok(dynos);
        }
        let elapsed = start.elapsed();
        if elapsed > ctx.settings.drain_timeout {
            return Err(StepError::Definite(format!(
                "dynos still running after {}: {}. They can still write to the old \
                 database; stop them (`heroku ps:stop {} --app {app}`) and resume",
                humantime::format_duration(ctx.settings.drain_timeout),
                left.join(", "),
                left[0]
            )));
        }
        ctx.waiting(
            io.step(),
            format!("{} dyno(s) stopping", left.len()),
            elapsed,
        );
        io.pause(steps::drain_poll(elapsed).min(ctx.settings.poll_cap))?;
    }
}

fn prepare_up<'a>(ctx: &mut Ctx<'a>, j: &Journal) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let app = j.app.clone();
    let updates = steps::scale_up_updates(facts(j)?, &ctx.live_formation);
    let list = list(&updates);
    Ok(Request::new(
        format!("PATCH /apps/{app}/formation {list}"),
        move |ctx: &mut Ctx<'a>, _| {
            ctx.client
                .update_formation(&app, &updates)
                .map_err(|e| write_error(&e))?;
            Ok(Done::words(format!("scaled {list}")))
        },
    ))
}

fn reconcile_up(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let f = ctx.client.formation(&j.app).map_err(|e| read_error(&e))?;
    Ok(steps::formation_matches(&facts(j)?.formation, &f)
        .then(|| Done::words("the formation is as recorded")))
}

fn to_zero(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let app = io.journal().app.clone();
    let updates = steps::scale_down_updates(facts(io.journal())?);
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
    let one_offs = steps::one_off_names(dynos);
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
