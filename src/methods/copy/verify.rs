//! `verify`: compare the new database with the old one before anything is
//! switched (`--verify counts|checksum|none`). Heroku reports a transfer as
//! succeeded even when pg_restore skipped errors.

use crate::compare::VerifyMode;
use crate::engine::{Done, Io, StepError};
use crate::journal::Journal;
use crate::methods::copy::shared::VERIFY;
use crate::methods::{Ctx, Def};

pub fn def<'a>() -> Def<'a> {
    Def::read(VERIFY, "compare the new database with the old one", run)
        .skipped_when(|j| (j.options.verify == VerifyMode::None).then(|| "--verify none".into()))
}

fn run(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let mode = io.journal().options.verify;
    // The URLs read before the window are reused (two fewer requests while
    // the app is down); a resumed run reads them again.
    let (source, target) = ctx.urls(io.journal())?;
    io.polled();
    let report = crate::compare::verify(&source, &target, mode).map_err(|e| {
        StepError::Definite(format!(
            "the databases could not be compared: {e}. If this machine cannot reach them, \
             `pgmigrate resume --verify none` goes on without the comparison"
        ))
    })?;
    let tables = report.tables.len();
    ctx.verified_here = report.mismatches == 0;
    if report.mismatches > 0 {
        let (n, listing) = (report.mismatches, report.describe_mismatches());
        io.keep(&report)?;
        return Err(StepError::Definite(format!(
            "the new database differs from the old one in {n} of {tables} table(s); nothing \
             was switched:\n    {listing}\n  `pgmigrate rollback` is the way back"
        )));
    }
    Ok(Done::with(
        format!(
            "{tables} table(s) match ({mode}) in {:.1}s",
            report.elapsed_ms as f64 / 1000.0
        ),
        &report,
    ))
}

/// Before the window (the copy's `maintenance-on`, or its `scale-down` when
/// maintenance was already on): with `--verify counts|checksum`, both
/// databases must be reachable from this machine, or the run would copy
/// with the app down and then stop at `verify`. Nothing is changed when
/// this refuses; `resume --verify none` goes on without the comparison.
pub fn reachable(ctx: &mut Ctx<'_>, j: &Journal) -> Result<(), StepError> {
    let mode = j.options.verify;
    if mode == VerifyMode::None {
        return Ok(());
    }
    let (source, target) = ctx.urls(j)?;
    for (which, url) in [("old", source), ("new", target)] {
        crate::compare::connect(&url).map_err(|e| {
            StepError::Definite(format!(
                "the app was not taken down: the {which} database cannot be reached from this \
                 machine ({e}), and --verify {mode} compares the two databases before the \
                 cut-over, so the run would have stopped with the app down. Run pgmigrate \
                 where both databases can be reached, or `pgmigrate resume --app {app} \
                 --verify none`, which gives up that comparison: Heroku's report that the \
                 transfer succeeded is then all that says the copy is whole",
                app = j.app
            ))
        })?;
    }
    Ok(())
}

/// Just before the cut-over of a resumed run (the comparison was made by
/// an earlier process, before a pause in which writers could have come and
/// gone unseen by the formation): compare again, when the databases can be
/// compared. A difference now means rows were written after the copy: copy
/// again from `scale-down` (the writers check before this found them
/// stopped).
pub fn again_after_a_pause(ctx: &mut Ctx<'_>, j: &Journal) -> Result<(), StepError> {
    let mode = j.options.verify;
    if mode == VerifyMode::None
        || ctx.verified_here
        || j.log.state(VERIFY) != Some(crate::engine::StepState::Done)
    {
        return Ok(());
    }
    let (source, target) = ctx.urls(j)?;
    let report = crate::compare::verify(&source, &target, mode).map_err(|e| {
        StepError::Definite(format!(
            "the databases could not be compared again after the pause: {e}. `pgmigrate resume \
             --verify none` goes on without it"
        ))
    })?;
    if report.mismatches == 0 {
        ctx.verified_here = true;
        return Ok(());
    }
    let why = format!(
        "{}: after the pause, the new database differs from the old one ({}); copying again, \
         with the writers stopped",
        crate::methods::steps::writers::WRITERS_BACK,
        report.describe_mismatches()
    );
    ctx.warn(why.clone());
    Err(StepError::Redo {
        from: crate::methods::outputs::id::SCALE_DOWN,
        why,
    })
}
