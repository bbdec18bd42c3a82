//! `create-target`: create the new add-on under a name chosen in advance,
//! so that a lost answer is reconciled by looking the name up (never a
//! second add-on). Undo: destroy it, unless `--keep-target`.
//! `create-follower` is the same request with `config.follow`: the new
//! add-on follows the source (`heroku addons:create PLAN -- --follow X`).

use crate::engine::{Done, Forward, Io, Request, StepError, Undo, Undone};
use crate::error::describe_api;
use crate::heroku::types::{AttachmentName, CreateAddon};
use crate::heroku::ApiError;
use crate::journal::Journal;
use crate::methods::outputs::{id, CreatedAddon};
use crate::methods::{read_error, write_error, Ctx, Def};

pub fn def<'a>() -> Def<'a> {
    Def::write(
        id::CREATE_TARGET,
        "create the target add-on",
        prepare,
        reconcile,
        Undo::Compensate {
            words: "destroy the target add-on",
            polls: false,
            run: destroy,
        },
    )
}

/// `create-follower`: the new add-on, following the source.
pub fn follower<'a>() -> Def<'a> {
    Def {
        id: id::CREATE_FOLLOWER,
        words: "create the follower on the new plan",
        forward: Forward::Write(|ctx, io| prepare_follow(ctx, io, true)),
        undo: Undo::Compensate {
            words: "destroy the follower",
            polls: false,
            run: destroy,
        },
        ..def()
    }
}

fn prepare<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    prepare_follow(ctx, io, false)
}

fn prepare_follow<'a>(
    _: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
    follow: bool,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let app = j.app.clone();
    let target = j.target.clone();
    let plan = j.options.to_plan.clone();
    // The source by its attachment name, which Heroku's docs use
    // (`--follow DATABASE_URL` and attachment names; heroku/cli passes the
    // value through untouched): resolved by Heroku in the app's context.
    let config: std::collections::BTreeMap<String, String> = if follow {
        [("follow".to_string(), j.options.from_attachment.clone())].into()
    } else {
        Default::default()
    };
    let intent = format!(
        "POST /apps/{app}/addons plan={plan} name={} attachment={}{}",
        target.addon_name,
        target.attachment_name,
        config
            .get("follow")
            .map(|f| format!(" config.follow={f}"))
            .unwrap_or_default()
    );
    let body = CreateAddon {
        config,
        plan: plan.clone(),
        name: target.addon_name.clone(),
        attachment: AttachmentName {
            name: target.attachment_name.clone(),
        },
        confirm: app.clone(),
    };
    Ok(Request::new(intent, move |ctx: &mut Ctx<'a>, _| {
        let addon = ctx.client.create_addon(&app, &body).map_err(|e| {
            match create_refusal(&e, &plan, follow) {
                Some(fix) => StepError::Refused {
                    reason: describe_api(&e),
                    fix,
                },
                None => write_error(&e),
            }
        })?;
        Ok(Done::with(
            format!("created {} ({plan}), id {}", addon.name, addon.id),
            &CreatedAddon { addon_id: addon.id },
        ))
    }))
}

/// If Heroku's answer to creating the new add-on is a refusal that trying
/// again will not change (a bad or unknown plan, billing, a missing app),
/// what the user should do about it. Rate limits, timeouts, 5xx and
/// 401/403 (which a fixed token or permission resolves on `resume`) are
/// not refusals.
fn create_refusal(e: &ApiError, plan: &str, follow: bool) -> Option<String> {
    let ApiError::Http { status, .. } = e else {
        return None;
    };
    match status {
        422 if follow => Some(format!(
            "Heroku would not create a follower on {plan} (see its reason above); run again \
             with --method upgrade (Heroku's addons:upgrade) or --method copy, or choose the \
             plan Heroku names with --to"
        )),
        400 | 404 | 422 => Some(format!(
            "check the plan ({plan}) with `heroku addons:plans heroku-postgresql` and the \
             account's add-on limits, then run again"
        )),
        402 => Some(
            "the account cannot be billed for the add-on: fix its billing on the Heroku \
             dashboard, then run again"
                .into(),
        ),
        _ => None,
    }
}

/// The add-on of the name chosen in advance exists: adopt it.
fn reconcile(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let name = &j.target.addon_name;
    match ctx.client.addon(name) {
        Ok(addon) => {
            let owned_here = addon
                .app
                .as_ref()
                .and_then(|a| a.name.as_deref())
                .is_none_or(|n| n == j.app);
            if !owned_here {
                return Err(StepError::Definite(format!(
                    "an add-on named {name} exists but belongs to another app"
                )));
            }
            Ok(Some(Done::with(
                format!("found {name} (id {}), adopting it", addon.id),
                &CreatedAddon { addon_id: addon.id },
            )))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(read_error(&e)),
    }
}

fn destroy(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let app = io.journal().app.clone();
    let name = io.journal().target.addon_name.clone();
    if ctx.settings.keep_target {
        return Ok(Undone::Skipped(format!("kept {name} (--keep-target)")));
    }
    match ctx.client.delete_addon(&app, &name) {
        Ok(()) => Ok(Undone::Done(format!("destroyed {name}"))),
        Err(e) if e.is_not_found() => Ok(Undone::Done(format!("{name} does not exist"))),
        Err(e) => Err(write_error(&e)),
    }
}
