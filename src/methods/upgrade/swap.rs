//! `wait-ready`, `run-maintenance` and `wait-maintenance`: from Standard up
//! a plan change is a data maintenance (heroku/cli
//! src/commands/data/maintenances/*.ts): Heroku prepares a replacement
//! (`preparing`), says when it can be swapped in (`ready`), swaps it when
//! asked (`running`) and says when it is done (`completed`). The run waits
//! for `ready` while the app is up, runs the maintenance with the app down,
//! and waits for `completed` itself: the CLI's own wait returns at once when
//! called right after the run, while the status still says `ready`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::decisions;
use crate::engine::{Done, Io, Request, StepError, Undo};
use crate::error::describe_api;
use crate::heroku::types::Maintenance;
use crate::journal::Journal;
use crate::methods::steps::wait_status::{availability, Availability};
use crate::methods::{facts, read_error, round, write_error, Ctx, Def};
use crate::secrets::fingerprint;

/// What a wait saw of the maintenance: every status, in order (kept while
/// it waits, so that a resumed wait knows what came before).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub statuses: Vec<String>,
    /// Heroku swapped the database before pgmigrate asked (at the
    /// maintenance's own time): nothing to run.
    #[serde(default)]
    pub swapped_by_heroku: bool,
}

impl Seen {
    fn saw(&self, status: &str) -> bool {
        self.statuses.iter().any(|s| s == status)
    }
    fn note(&mut self, status: &str) -> bool {
        if self.statuses.last().map(String::as_str) == Some(status) {
            return false;
        }
        self.statuses.push(status.to_string());
        true
    }
}

/// `wait-maintenance`: the new database's URL, as a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swapped {
    pub url_fingerprint: Option<String>,
    /// Whether the URL differs from the one preflight recorded.
    pub url_changed: Option<bool>,
}

fn essential_skip(j: &Journal) -> Option<String> {
    super::shared::in_place_essential(j)
        .then(|| "an Essential plan changes in place, without a maintenance".to_string())
}

pub fn wait_ready<'a>() -> Def<'a> {
    Def::wait(
        super::shared::WAIT_READY,
        "wait until Heroku has prepared the replacement (the app runs)",
        ready,
    )
    .skipped_when(essential_skip)
}

pub fn run<'a>() -> Def<'a> {
    Def::write(
        super::shared::RUN_MAINTENANCE,
        "run the maintenance: Heroku swaps in the new database",
        prepare_run,
        reconcile_run,
        Undo::Nothing,
    )
    .skipped_when(|j| {
        essential_skip(j).or_else(|| {
            j.log
                .output::<Seen>(super::shared::WAIT_READY)
                .filter(|s| s.swapped_by_heroku)
                .map(|_| "Heroku ran the maintenance itself".to_string())
        })
    })
    .past_no_return(super::shared::SWAPPED)
}

pub fn wait_done<'a>() -> Def<'a> {
    Def::wait(
        super::shared::WAIT_MAINTENANCE,
        "wait until the maintenance has completed",
        completed,
    )
    .skipped_when(essential_skip)
}

fn maintenance(ctx: &Ctx<'_>, j: &Journal) -> Result<Maintenance, StepError> {
    let f = facts(j)?;
    ctx.client
        .maintenance(&f.source.id)
        .map_err(|e| read_error(&e))
}

fn ready(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let j = io.journal().clone();
    let app = j.app.clone();
    let mut seen: Seen = j.log.output(super::shared::WAIT_READY).unwrap_or_default();
    let start = Instant::now();
    loop {
        let m = maintenance(ctx, &j)?;
        io.polled();
        let status = m.status.clone();
        if seen.note(&status) {
            io.keep(&seen)?;
        }
        match status.as_str() {
            "ready" => {
                return Ok(Done::with(
                    format!(
                        "the replacement is ready after {}",
                        humantime::format_duration(round(start.elapsed()))
                    ),
                    &seen,
                ))
            }
            // Heroku swapped it on its own schedule (its `required_by`):
            // a completed maintenance counts only after one of ours was
            // seen under way, never an earlier one.
            "running" => {
                seen.swapped_by_heroku = true;
                return Ok(Done::with(
                    "Heroku is running the maintenance itself",
                    &seen,
                ));
            }
            "completed" if seen.saw("preparing") || seen.saw("ready") => {
                seen.swapped_by_heroku = true;
                return Ok(Done::with("Heroku has run the maintenance itself", &seen));
            }
            _ => {}
        }
        let elapsed = start.elapsed();
        if elapsed > ctx.settings.prepare_timeout {
            return Err(StepError::Definite(format!(
                "Heroku has not prepared the replacement after {} (maintenance status {status}). \
                 The app is untouched; the plan change is scheduled. `pgmigrate resume --app \
                 {app}` waits again, or `pgmigrate rollback --app {app}` changes the plan back",
                humantime::format_duration(ctx.settings.prepare_timeout)
            )));
        }
        let when = m
            .scheduled_for
            .as_deref()
            .map(|s| format!(", scheduled for {s}"))
            .unwrap_or_default();
        ctx.waiting(
            io.step(),
            format!("Heroku prepares the replacement (maintenance {status}{when})"),
            elapsed,
        );
        io.pause(decisions::backoff_poll(elapsed, ctx.settings.poll_cap))?;
    }
}

fn prepare_run<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let m = maintenance(ctx, j)?;
    if m.status != "ready" {
        return Err(StepError::Definite(format!(
            "the maintenance is {}, not ready; `pgmigrate resume --app {}` looks again",
            m.status, j.app
        )));
    }
    let id = facts(j)?.source.id.clone();
    Ok(Request::new(
        format!("POST /data/maintenances/v1/{id}/run"),
        move |ctx: &mut Ctx<'a>, _| match ctx.client.run_maintenance(&id) {
            Ok(()) => Ok(Done::words("Heroku is swapping in the new database")),
            Err(e) if e.not_applied() => {
                // Sent again after a lost answer: read back.
                match ctx.client.maintenance(&id) {
                    Ok(m) if matches!(m.status.as_str(), "running" | "completed") => {
                        Ok(Done::words("the maintenance is under way"))
                    }
                    _ => Err(StepError::Definite(describe_api(&e))),
                }
            }
            Err(e) => Err(write_error(&e)),
        },
    ))
}

/// The run took effect when the maintenance is under way or done; still
/// `ready` means it never arrived (and asking again is what to do).
fn reconcile_run(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let m = maintenance(ctx, j)?;
    Ok(matches!(m.status.as_str(), "running" | "completed")
        .then(|| Done::words(format!("the maintenance is {}", m.status))))
}

fn completed(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Done, StepError> {
    let j = io.journal().clone();
    let app = j.app.clone();
    let f = facts(&j)?.clone();
    let mut seen: Seen = j
        .log
        .output(super::shared::WAIT_MAINTENANCE)
        .unwrap_or_default();
    let start = Instant::now();
    loop {
        let m = maintenance(ctx, &j)?;
        io.polled();
        if seen.note(&m.status) {
            io.keep(&seen)?;
        }
        // `none` after it ran: Heroku no longer lists one.
        let done = m.status == "completed" || (m.status == "none" && seen.saw("running"));
        if done {
            let available = !matches!(
                availability(ctx, &f.source.id, "the new database")?,
                Availability::Waiting(_)
            );
            if available {
                ctx.urls = Default::default();
                ctx.read_urls(&j).map_err(|e| read_error(&e))?;
                let url_fingerprint = ctx.urls.target.as_deref().map(fingerprint);
                let url_changed = url_fingerprint
                    .as_ref()
                    .map(|u| *u != f.source_url_fingerprint);
                return Ok(Done::with(
                    format!(
                        "the maintenance completed after {}; the database's URL {}",
                        humantime::format_duration(round(start.elapsed())),
                        match url_changed {
                            Some(true) => "changed",
                            Some(false) => "is the same",
                            None => "could not be read",
                        }
                    ),
                    &Swapped {
                        url_fingerprint,
                        url_changed,
                    },
                ));
            }
        }
        let elapsed = start.elapsed();
        if elapsed > ctx.settings.maintenance_timeout {
            return Err(StepError::Definite(format!(
                "the maintenance has not completed after {} (status {}); the app is down. \
                 Check it with `heroku data:maintenances:info {} --app {app}`, then `pgmigrate \
                 resume --app {app}`",
                humantime::format_duration(ctx.settings.maintenance_timeout),
                m.status,
                f.source.name
            )));
        }
        ctx.waiting(
            io.step(),
            format!(
                "Heroku swaps in the new database (maintenance {})",
                m.status
            ),
            elapsed,
        );
        io.pause(std::time::Duration::from_millis(500).min(ctx.settings.poll_cap))?;
    }
}
