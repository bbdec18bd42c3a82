//! `rebind-config`: set every plain config var that held the old URL to
//! the new one, in one request. Undo: set them to the old URL again.

use std::collections::BTreeMap;

use crate::engine::{Done, Io, Request, StepError, Undo, Undone};
use crate::journal::Journal;
use crate::methods::outputs::id;
use crate::methods::{facts, read_error, write_error, Ctx, Def};
use crate::secrets::fingerprint;

pub fn def<'a>() -> Def<'a> {
    Def::write(
        id::REBIND_CONFIG,
        "rebind config vars that held the old URL",
        prepare,
        reconcile,
        Undo::Compensate {
            words: "set the rebound config vars to the old URL",
            polls: false,
            run: restore,
        },
    )
    .skipped_when(|j| {
        j.facts
            .as_ref()
            .filter(|f| f.rebind_vars.is_empty())
            .map(|_| "no other config var holds the old URL".into())
    })
}

fn prepare<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let app = j.app.clone();
    if ctx.urls.target.is_none() {
        ctx.read_urls(j).map_err(|e| read_error(&e))?;
    }
    let Some(url) = ctx.urls.target.clone() else {
        return Err(StepError::Definite(
            "cannot read the target's URL from the app's config vars".into(),
        ));
    };
    let facts = facts(j)?;
    let vars: BTreeMap<String, Option<String>> = facts
        .rebind_vars
        .iter()
        .map(|v| (v.clone(), Some(url.clone())))
        .collect();
    let names = facts.rebind_vars.join(", ");
    Ok(Request::new(
        format!("PATCH /apps/{app}/config-vars {names} = the new database's URL"),
        move |ctx: &mut Ctx<'a>, _| {
            ctx.client
                .update_config_vars(&app, &vars)
                .map_err(|e| write_error(&e))?;
            Ok(Done::words(format!("rebound {names}")))
        },
    ))
}

fn reconcile(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    ctx.read_urls(j).map_err(|e| read_error(&e))?;
    let config = ctx.client.config_vars(&j.app).map_err(|e| read_error(&e))?;
    let target = ctx.urls.target.clone();
    Ok((target.is_some()
        && facts(j)?
            .rebind_vars
            .iter()
            .all(|v| config.get(v) == target.as_ref()))
    .then(|| Done::words("the config vars hold the new URL")))
}

fn restore(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let j = io.journal();
    ctx.read_urls(j).map_err(|e| read_error(&e))?;
    let facts = facts(j)?;
    let Some(url) = ctx.urls.source.clone() else {
        return Err(StepError::Definite(
            "cannot read the old database's URL: it has no attachment left on the app".into(),
        ));
    };
    if fingerprint(&url) != facts.source_url_fingerprint {
        ctx.warn(
            "the old database's URL differs from the one recorded (credentials rotated?); \
             restoring its current URL",
        );
    }
    let vars: BTreeMap<String, Option<String>> = facts
        .rebind_vars
        .iter()
        .map(|v| (v.clone(), Some(url.clone())))
        .collect();
    let names = facts.rebind_vars.join(", ");
    ctx.client
        .update_config_vars(&j.app, &vars)
        .map_err(|e| write_error(&e))?;
    Ok(Undone::Done(format!("{names} hold the old URL again")))
}
