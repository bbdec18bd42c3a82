//! `wait-target`: wait until the new add-on is provisioned and its
//! database available, then read both URLs (in memory only) while the app
//! is still up.

use std::time::{Duration, Instant};

use crate::engine::{Done, Effect, Forward, Io, StepError, Undo};
use crate::journal_v2::Journal;
use crate::methods::outputs::{self, id, Provisioned};
use crate::methods::{read_error, round, Ctx, Def};
use crate::secrets::fingerprint;
use crate::steps;

/// How long a provisioned add-on's wait_status may answer 404 before the
/// add-on's own state is taken as the answer.
const WAIT_STATUS_GRACE: Duration = Duration::from_secs(20);

pub fn def<'a>() -> Def<'a> {
    Def {
        id: id::WAIT_TARGET,
        words: "wait until the target is provisioned",
        effect: Effect::Waits,
        skip: |_| None,
        forward: Forward::Run(wait),
        reconcile: None,
        undo: Undo::Nothing,
        no_return: None,
        sets: &[],
    }
}

fn wait(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let id = outputs::target_id(io.journal())
        .ok_or_else(|| StepError::Definite("the target add-on's id is not known".into()))?;
    let start = Instant::now();
    // Since when the add-on says `provisioned` but its wait_status is 404:
    // Heroku answers 404 only for a moment after creation.
    let mut unknown_since: Option<Instant> = None;
    loop {
        let addon = ctx.client.addon(&id).map_err(|e| read_error(&e))?;
        io.polled();
        match addon.state.as_deref() {
            Some("deprovisioned") => {
                return Err(StepError::Definite(format!(
                    "the target add-on {} was deprovisioned while provisioning: Heroku could \
                     not create it",
                    addon.name
                )))
            }
            // No state at all: wait_status alone decides.
            Some("provisioned") | None => match ctx.client.wait_status(&id) {
                Ok(w) if w.error => {
                    return Err(StepError::Definite(format!(
                        "the target database reports an error while provisioning: {}",
                        w.message
                    )))
                }
                Ok(w) if !w.waiting => break,
                Ok(_) => unknown_since = None,
                Err(e) if e.is_not_found() => {
                    let since = *unknown_since.get_or_insert_with(Instant::now);
                    if addon.state.is_some() && since.elapsed() >= WAIT_STATUS_GRACE {
                        ctx.warn(format!(
                            "the Data API has no wait_status for {} after {}; going by the \
                             add-on's state, provisioned (a copy into a database that is not \
                             ready fails before anything is switched)",
                            addon.name,
                            humantime::format_duration(WAIT_STATUS_GRACE)
                        ));
                        break;
                    }
                }
                Err(e) => return Err(read_error(&e)),
            },
            _ => {}
        }
        let elapsed = start.elapsed();
        if elapsed > ctx.settings.provision_timeout {
            return Err(StepError::Definite(format!(
                "the target was not provisioned within {}",
                humantime::format_duration(ctx.settings.provision_timeout)
            )));
        }
        ctx.waiting(io.step(), "provisioning", elapsed);
        io.pause(steps::backoff_poll(elapsed, ctx.settings.poll_cap))?;
    }
    // Read both URLs now, outside the maintenance window.
    ctx.read_urls(io.journal()).map_err(|e| read_error(&e))?;
    Ok(Done::with(
        format!(
            "provisioned after {}",
            humantime::format_duration(round(start.elapsed()))
        ),
        &Provisioned {
            url_fingerprint: ctx.urls.target.as_deref().map(fingerprint),
        },
    ))
}
