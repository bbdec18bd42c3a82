//! `maintenance-on` and `maintenance-off`: the ends of the maintenance
//! window. Each records when it happened; each undo switches back.

use crate::engine::{Done, Io, Request, StepError, Undo, Undone};
use crate::journal::Journal;
use crate::methods::aspects;
use crate::methods::outputs::{id, Switched};
use crate::methods::steps::releases;
use crate::methods::steps::scale::refuse_one_offs;
use crate::methods::{on_off, read_error, write_error, Ctx, Def};

pub fn on<'a>() -> Def<'a> {
    Def::write(
        id::MAINTENANCE_ON,
        "turn maintenance mode on",
        prepare_on,
        |ctx, j| reconcile(ctx, j, true),
        Undo::Compensate {
            words: "turn maintenance mode off",
            polls: false,
            run: |ctx, io| switch_back(ctx, io, false),
        },
    )
    .skipped_when(|j| was_on(j).then(|| "maintenance was already on".into()))
    .setting(&[aspects::MAINTENANCE_ON])
}

/// `no_return`: set by the method (the copy's maintenance-off is a point
/// past which the app has run on the new database).
pub fn off<'a>() -> Def<'a> {
    Def::write(
        id::MAINTENANCE_OFF,
        "turn maintenance mode off",
        |ctx, io| Ok(switch(ctx, io.journal(), false)),
        |ctx, j| reconcile(ctx, j, false),
        Undo::Compensate {
            words: "turn maintenance mode on",
            polls: false,
            run: |ctx, io| switch_back(ctx, io, true),
        },
    )
    .skipped_when(|j| was_on(j).then(|| "maintenance was on before the run, so it stays on".into()))
    .setting(&[aspects::MAINTENANCE_OFF])
}

fn was_on(j: &Journal) -> bool {
    j.facts.as_ref().is_some_and(|f| f.maintenance_was_on)
}

/// One-off dynos are not stopped by scaling and could write to the old
/// database during the copy: refuse to go on while any is up (a read,
/// before the app is touched).
pub fn prepare_on<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    refuse_one_offs(ctx, &j.app)?;
    super::others::check(ctx, j)?;
    releases::before_window(ctx, j)?;
    Ok(switch(ctx, j, true))
}

fn switch<'a>(_: &mut Ctx<'a>, j: &Journal, on: bool) -> Request<Ctx<'a>, Journal> {
    let app = j.app.clone();
    Request::new(
        format!("PATCH /apps/{app} maintenance={on}"),
        move |ctx: &mut Ctx<'a>, _| {
            ctx.client
                .set_maintenance(&app, on)
                .map_err(|e| write_error(&e))?;
            Ok(Done::with(
                format!("maintenance is {}", on_off(on)),
                &Switched {
                    at: crate::store::now(),
                },
            ))
        },
    )
}

fn reconcile(ctx: &mut Ctx<'_>, j: &Journal, on: bool) -> Result<Option<Done>, StepError> {
    let a = ctx.client.app(&j.app).map_err(|e| read_error(&e))?;
    Ok((a.maintenance == on).then(|| Done::words(format!("maintenance is {}", on_off(on)))))
}

fn switch_back(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>, on: bool) -> Result<Undone, StepError> {
    let app = io.journal().app.clone();
    ctx.client
        .set_maintenance(&app, on)
        .map_err(|e| write_error(&e))?;
    Ok(Undone::Done(format!("maintenance is {}", on_off(on))))
}
