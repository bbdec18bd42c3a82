//! `change-plan` and `wait-plan`: ask Heroku to change the add-on's plan
//! (`PATCH /apps/{app}/addons/{id}`, as `heroku addons:upgrade` does),
//! and, between Essential plans, wait until the change is done. The answer
//! already names the new plan (the CLI prints its price), so the plan name
//! alone never says the database was replaced.
//!
//! Undo: change the plan back. Before the swap that cancels what Heroku
//! scheduled (expected, not verified against Heroku); after it, nothing
//! can (see [`super::shared::SWAPPED`]), and rollback is refused before it gets
//! here.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::decisions;
use crate::engine::{Done, Io, Request, StepError, Undo, Undone};
use crate::error::describe_api;
use crate::heroku::ApiError;
use crate::journal::Journal;
use crate::methods::aspects;
use crate::methods::steps::wait_status::{availability, Availability};
use crate::methods::{facts, read_error, round, write_error, Ctx, Def};

/// `change-plan`: the plans before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanChange {
    pub from: String,
    pub to: String,
}

pub fn def<'a>() -> Def<'a> {
    Def::write(
        super::shared::CHANGE_PLAN,
        "change the add-on's plan (addons:upgrade)",
        prepare,
        reconcile,
        Undo::Compensate {
            words: "change the plan back",
            polls: true,
            run: change_back,
        },
    )
    .setting(&[aspects::PLAN_CHANGED])
}

pub fn wait<'a>() -> Def<'a> {
    Def::wait(
        super::shared::WAIT_PLAN,
        "wait until the Essential plan change is done",
        |ctx, io| {
            let j = io.journal().clone();
            let plan = j.options.to_plan.clone();
            wait_for_plan(ctx, io, &j, &plan)
        },
    )
    .skipped_when(|j| {
        (!super::shared::in_place_essential(j))
            .then(|| "from Standard up, Heroku replaces the database in a maintenance".to_string())
    })
}

fn prepare<'a>(
    _: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let f = facts(j)?;
    let (app, addon) = (j.app.clone(), f.source.id.clone());
    let change = PlanChange {
        from: f.source.plan.clone(),
        to: j.options.to_plan.clone(),
    };
    Ok(Request::new(
        format!(
            "PATCH /apps/{app}/addons/{} plan={} (was {})",
            f.source.name, change.to, change.from
        ),
        move |ctx: &mut Ctx<'a>, _| {
            ctx.client
                .change_plan(&app, &addon, &change.to)
                .map_err(|e| match e {
                    ApiError::Http {
                        status: 400 | 402 | 404 | 422,
                        ..
                    } => StepError::Refused {
                        reason: describe_api(&e),
                        fix: format!(
                            "Heroku would not change the plan to {} in place; run again with \
                             --method copy (or --method follower), or check the plan with \
                             `heroku addons:plans heroku-postgresql`",
                            change.to
                        ),
                    },
                    e => write_error(&e),
                })?;
            Ok(Done::with(
                format!("Heroku accepted the plan change to {}", change.to),
                &change,
            ))
        },
    ))
}

/// The PATCH took effect when the add-on names the new plan.
fn reconcile(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let f = facts(j)?;
    let addon = ctx.client.addon(&f.source.id).map_err(|e| read_error(&e))?;
    Ok(
        (addon.plan_name() == Some(j.options.to_plan.as_str())).then(|| {
            Done::with(
                format!("the add-on is on {}", j.options.to_plan),
                &PlanChange {
                    from: f.source.plan.clone(),
                    to: j.options.to_plan.clone(),
                },
            )
        }),
    )
}

/// Poll the add-on until it names `plan` and its database is available.
fn wait_for_plan(
    ctx: &mut Ctx<'_>,
    io: &mut Io<'_, Journal>,
    j: &Journal,
    plan: &str,
) -> Result<Done, StepError> {
    let f = facts(j)?;
    let start = Instant::now();
    loop {
        let addon = ctx.client.addon(&f.source.id).map_err(|e| read_error(&e))?;
        io.polled();
        let what = if addon.plan_name() != Some(plan) {
            format!(
                "the add-on to report {plan} (it reports {})",
                addon.plan_name().unwrap_or("no plan")
            )
        } else {
            match availability(ctx, &f.source.id, "the database changing plan")? {
                Availability::Waiting(message) => format!("the database: {message}"),
                Availability::Unknown => {
                    return Err(StepError::Definite(format!(
                        "the Data API does not know {} (its wait_status answers 404)",
                        f.source.name
                    )))
                }
                Availability::Ready => {
                    return Ok(Done::words(format!(
                        "the add-on is on {plan} after {}",
                        humantime::format_duration(round(start.elapsed()))
                    )))
                }
            }
        };
        let elapsed = start.elapsed();
        if elapsed > ctx.settings.maintenance_timeout {
            return Err(StepError::Definite(format!(
                "the plan change to {plan} is not done after {}; check it with `heroku \
                 pg:info --app {}`, then resume",
                humantime::format_duration(ctx.settings.maintenance_timeout),
                j.app
            )));
        }
        ctx.waiting(io.step(), format!("waiting for {what}"), elapsed);
        io.pause(decisions::backoff_poll(elapsed, ctx.settings.poll_cap))?;
    }
}

fn change_back(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let j = io.journal().clone();
    let f = facts(&j)?;
    if !super::shared::in_place_essential(&j) {
        // The swap may have been run by Heroku itself (at the maintenance's
        // required-by date): then there is no old server to go back to.
        if let Ok(m) = ctx.client.maintenance(&f.source.id) {
            if matches!(m.status.as_str(), "running") {
                return Err(StepError::Definite(format!(
                    "Heroku's maintenance of {} is running (the database is being replaced); \
                     it cannot be undone. Wait until it completes, then `pgmigrate resume`",
                    f.source.name
                )));
            }
        }
    }
    let addon = ctx.client.addon(&f.source.id).map_err(|e| read_error(&e))?;
    if addon.plan_name() != Some(f.source.plan.as_str()) {
        ctx.client
            .change_plan(&j.app, &f.source.id, &f.source.plan)
            .map_err(|e| write_error(&e))?;
    }
    if super::shared::in_place_essential(&j) {
        wait_for_plan(ctx, io, &j, &f.source.plan)?;
        return Ok(Undone::Done(format!(
            "{} is on {} again",
            f.source.name, f.source.plan
        )));
    }
    // Heroku is expected to drop the replacement it prepared (not
    // documented): look, for a while, and say what was seen.
    let start = Instant::now();
    loop {
        let m = ctx
            .client
            .maintenance(&f.source.id)
            .map_err(|e| read_error(&e))?;
        io.polled();
        if !matches!(m.status.as_str(), "pending" | "preparing" | "ready") {
            return Ok(Undone::Done(format!(
                "{} is on {} again; Heroku no longer lists the prepared replacement \
                 (maintenance {})",
                f.source.name, f.source.plan, m.status
            )));
        }
        if start.elapsed() > CANCEL_WAIT {
            ctx.warn(format!(
                "{} is on {} again, but Heroku still lists a maintenance {} after {}: check \
                 it with `heroku data:maintenances:info {} --app {}` before it runs",
                f.source.name,
                f.source.plan,
                m.status,
                humantime::format_duration(CANCEL_WAIT),
                f.source.name,
                j.app
            ));
            return Ok(Undone::Done(format!(
                "{} is on {} again; a maintenance is still listed ({})",
                f.source.name, f.source.plan, m.status
            )));
        }
        ctx.waiting(
            io.step(),
            format!(
                "Heroku to drop the prepared replacement (maintenance {})",
                m.status
            ),
            start.elapsed(),
        );
        io.pause(decisions::backoff_poll(
            start.elapsed(),
            ctx.settings.poll_cap,
        ))?;
    }
}

/// How long rollback looks for Heroku to drop a prepared replacement once
/// the plan is changed back.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
