//! Before the cut-over: did anything write to the old database since the
//! writers were stopped? A dyno scaled back up during the copy (by a
//! person, a script, an autoscaler) writes rows the copy does not have;
//! cutting over would strand them. Looked at just before the cut-over, in
//! every process that gets there (a resume inside the window included):
//! maintenance still on (when the run turned it on), no dyno up, every
//! process type still at zero, and none updated since the scale-down (its
//! `updated_at`, as the scale-down recorded it), which also catches a
//! scale up and back down.
//!
//! The three reads go out together: they are on the critical path, inside
//! the window.

use crate::decisions;
use crate::engine::StepError;
use crate::journal::Journal;
use crate::methods::outputs::{id, ScaledDown};
use crate::methods::{facts, read_error, Ctx};

/// The start of the note of a cut-over refused because writers came back.
pub const WRITERS_BACK: &str = "writers came back while the app was down";

/// What the look before the cut-over found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writers {
    /// Nothing changed since the writers were stopped.
    Stopped,
    /// Writers are up now: what was seen.
    Up(Vec<String>),
    /// None is up now, but the formation changed since the scale-down:
    /// writers came and went.
    Returned(Vec<String>),
}

/// Look at the app (three reads, sent together).
pub fn look(ctx: &Ctx<'_>, j: &Journal) -> Result<Writers, StepError> {
    let f = facts(j)?;
    let app = j.app.as_str();
    let client = ctx.client;
    let turned_on = !f.maintenance_was_on && j.log.state(id::MAINTENANCE_ON).is_some();
    let (maintenance, dynos, formation) = std::thread::scope(|s| {
        let m = s.spawn(|| turned_on.then(|| client.app(app)));
        let d = s.spawn(|| client.dynos(app));
        let fo = client.formation(app);
        (m.join(), d.join(), fo)
    });
    let lost = |_| StepError::Definite("a look at the app failed inside pgmigrate".into());
    let (maintenance, dynos) = (maintenance.map_err(lost)?, dynos.map_err(lost)?);
    let mut up = Vec::new();
    if let Some(a) = maintenance {
        if !a.map_err(|e| read_error(&e))?.maintenance {
            up.push("maintenance is off".to_string());
        }
    }
    let dynos = dynos.map_err(|e| read_error(&e))?;
    let formation = formation.map_err(|e| read_error(&e))?;
    for p in decisions::running_types(f) {
        if let Some(live) = formation
            .iter()
            .find(|l| l.process_type == p.process_type && l.quantity > 0)
        {
            up.push(format!(
                "{} is scaled to {}",
                live.process_type, live.quantity
            ));
        }
    }
    let running = dynos
        .iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !up.is_empty() {
        if !running.is_empty() {
            up.push(format!("dynos are up: {running}"));
        }
        return Ok(Writers::Up(up));
    }
    let recorded: ScaledDown = j.log.output(id::SCALE_DOWN).unwrap_or_default();
    let mut changed: Vec<String> = recorded
        .formation_updated_at
        .iter()
        .filter_map(|(t, at)| {
            let live = formation.iter().find(|l| &l.process_type == t)?;
            let now = live.updated_at.as_deref()?;
            (now != at).then(|| format!("{t} was scaled at {now} (after the scale-down at {at})"))
        })
        .collect();
    // Scaled to zero again, but still stopping (a dyno has up to 30 s):
    // writers all the same, until they are gone.
    if !running.is_empty() {
        changed.push(format!("dynos are still up: {running}"));
    }
    Ok(if changed.is_empty() {
        Writers::Stopped
    } else {
        Writers::Returned(changed)
    })
}

/// The refusal of a cut-over over writers that came back, with the ways on
/// (`recopy`: the method can copy again once they are stopped).
pub fn refusal(j: &Journal, seen: &[String], recopy: bool) -> StepError {
    let app = &j.app;
    StepError::Definite(format!(
        "{WRITERS_BACK} ({}): they may have written to the old database after it was copied, \
         so nothing was switched. Ways on: {}`pgmigrate rollback --app {app}` puts the app back \
         on the old database, which has every row",
        seen.join("; "),
        if recopy {
            format!(
                "scale them to zero again (`heroku ps:scale <type>=0 --app {app}`), then \
                 `pgmigrate resume --app {app}` copies again with the writers stopped; or "
            )
        } else {
            String::new()
        }
    ))
}

/// The look before a cut-over, as a step's check: stop over writers that
/// are up; over writers that came and went, copy again when the method can
/// (`recopy_from`: the step to redo from, which stops the writers again and
/// records the formation anew), else stop.
pub fn guard(
    ctx: &Ctx<'_>,
    j: &Journal,
    recopy_from: Option<&'static str>,
) -> Result<(), StepError> {
    match look(ctx, j)? {
        Writers::Stopped => Ok(()),
        Writers::Up(seen) => Err(refusal(j, &seen, recopy_from.is_some())),
        Writers::Returned(seen) => match recopy_from {
            Some(from) => {
                let why = format!(
                    "{WRITERS_BACK} ({}): copying again, with the writers stopped, so that the \
                     new database has their rows",
                    seen.join("; ")
                );
                ctx.warn(why.clone());
                Err(StepError::Redo { from, why })
            }
            None => Err(refusal(j, &seen, false)),
        },
    }
}
