//! `wait-target`: wait until the new add-on is provisioned and its
//! database available, then read both URLs (in memory only) while the app
//! is still up.

use std::time::Instant;

use crate::decisions;
use crate::engine::{Done, Io, StepError};
use crate::journal::Journal;
use crate::methods::outputs::{self, id, Provisioned};
use crate::methods::steps::wait_status::{availability, Availability};
use crate::methods::{read_error, round, Ctx, Def};
use crate::secrets::fingerprint;

pub use crate::methods::context::WAIT_STATUS_404_FOR;

pub fn def<'a>() -> Def<'a> {
    Def::wait(
        id::WAIT_TARGET,
        "wait until the target is provisioned",
        wait,
    )
}

fn wait(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let id = outputs::target_id(io.journal())
        .ok_or_else(|| StepError::Definite("the target add-on's id is not known".into()))?;
    let app = io.journal().app.clone();
    let start = Instant::now();
    // Since the first wait_status 404 of this wait: the Data API does not
    // know a new add-on for a while. Never reset, as `heroku pg:wait`
    // counts its 404s; never taken as an answer.
    let mut first_404: Option<Instant> = None;
    loop {
        let addon = ctx.client.addon(&id).map_err(|e| read_error(&e))?;
        io.polled();
        let waiting_for = match addon.state.as_deref() {
            // As `heroku addons:create --wait` ends on `deprovisioned`
            // (src/lib/addons/addons-wait.ts); `deprovisioning` is on its
            // way there.
            Some(state @ ("deprovisioning" | "deprovisioned")) => {
                return Err(StepError::Definite(format!(
                    "the target add-on {} is {state}: Heroku could not create it. The app is \
                     untouched (maintenance off, no dyno scaled); `pgmigrate rollback --app \
                     {app}` removes what is left of the add-on, then `pgmigrate run` tries again",
                    addon.name
                )))
            }
            // Ready takes both APIs: the add-on's state (Platform API) and
            // its wait_status (Data API) disagree for a while after
            // creation, either way. No state at all: wait_status alone
            // decides.
            Some("provisioned") | None => {
                match availability(ctx, &id, "the target database, provisioning,")? {
                    Availability::Ready => break,
                    Availability::Waiting(m) if m.is_empty() => {
                        "the database to be available".to_string()
                    }
                    Availability::Waiting(m) => format!("the database: {m}"),
                    Availability::Unknown => {
                        let since = *first_404.get_or_insert_with(Instant::now);
                        if since.elapsed() >= ctx.settings.wait_status_404_for {
                            return Err(StepError::Definite(format!(
                            "the Data API still does not know the target database {name} after \
                             {} (its wait_status answers 404; `heroku pg:wait` gives up after \
                             as long). The app is untouched: maintenance is off and no dyno was \
                             scaled; only the new add-on exists. Wait for it with `heroku \
                             pg:wait {name} --app {app}`, then `pgmigrate resume --app {app}` \
                             carries on; or `pgmigrate rollback --app {app}` removes it",
                            humantime::format_duration(ctx.settings.wait_status_404_for),
                            name = addon.name,
                        )));
                        }
                        "the Data API to know the new database".to_string()
                    }
                }
            }
            Some(state) => format!("the add-on, {state}"),
        };
        let elapsed = start.elapsed();
        if elapsed > ctx.settings.provision_timeout {
            return Err(StepError::Definite(format!(
                "the target was not provisioned within {}",
                humantime::format_duration(ctx.settings.provision_timeout)
            )));
        }
        ctx.waiting(
            io.step(),
            format!("provisioning: waiting for {waiting_for}"),
            elapsed,
        );
        io.pause(decisions::backoff_poll(elapsed, ctx.settings.poll_cap))?;
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
