//! `promote-target` and `repoint-pool`: attach the new database as
//! DATABASE (and DATABASE_CONNECTION_POOL in its namespace) in place of the
//! old one, as `heroku pg:promote` does. Undo: attach the old one again.

use crate::engine::{Done, Io, Request, StepError, Undo, Undone};
use crate::heroku::types::{CreateAttachment, POOL_NAMESPACE};
use crate::journal::Journal;
use crate::methods::aspects;
use crate::methods::outputs::{self, id};
use crate::methods::{facts, read_error, write_error, Ctx, Def};

pub fn promote<'a>() -> Def<'a> {
    Def::write(
        id::PROMOTE_TARGET,
        "attach the target as DATABASE",
        |ctx, io| {
            super::writers::guard(ctx, io.journal(), None)?;
            prepare_promote(ctx, io)
        },
        |ctx, j| reconcile(ctx, j, &j.options.from_attachment, None),
        Undo::Compensate {
            words: "attach the old database as DATABASE again",
            polls: false,
            run: |ctx, io| {
                let name = io.journal().options.from_attachment.clone();
                reattach_source(ctx, io, &name, None)
            },
        },
    )
    .setting(&[aspects::ON_TARGET])
}

/// The request of `promote-target`, once its checks passed.
pub fn prepare_promote<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let name = io.journal().options.from_attachment.clone();
    prepare(ctx, io, name, None)
}

pub fn repoint_pool<'a>() -> Def<'a> {
    Def::write(
        id::REPOINT_POOL,
        "re-point DATABASE_CONNECTION_POOL",
        |ctx, io| {
            let name = pool_name(io.journal());
            prepare(ctx, io, name, Some(POOL_NAMESPACE))
        },
        |ctx, j| reconcile(ctx, j, &pool_name(j), Some(POOL_NAMESPACE)),
        Undo::Compensate {
            words: "point DATABASE_CONNECTION_POOL at the old database",
            polls: false,
            run: |ctx, io| {
                let name = pool_name(io.journal());
                reattach_source(ctx, io, &name, Some(POOL_NAMESPACE))
            },
        },
    )
    .skipped_when(|j| {
        j.facts
            .as_ref()
            .filter(|f| f.pool.is_none())
            .map(|_| "the app has no connection pooler".into())
    })
}

fn pool_name(j: &Journal) -> String {
    j.facts
        .as_ref()
        .and_then(|f| f.pool.clone())
        .map(|p| p.name)
        .unwrap_or_default()
}

fn target_id(j: &Journal) -> Result<String, StepError> {
    outputs::target_id(j)
        .ok_or_else(|| StepError::Definite("the target add-on's id is not known".into()))
}

/// Attach the new database as `name` (in `namespace`) in place of whatever
/// holds that attachment now.
fn prepare<'a>(
    _: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
    name: String,
    namespace: Option<&'static str>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let app = j.app.clone();
    let target_id = target_id(j)?;
    let intent = format!(
        "POST /addon-attachments addon={target_id} name={name}{} confirm",
        namespace
            .map(|n| format!(" namespace={n}"))
            .unwrap_or_default()
    );
    let body = CreateAttachment {
        addon: target_id,
        app: app.clone(),
        name: Some(name.clone()),
        namespace: namespace.map(str::to_string),
        confirm: app,
    };
    Ok(Request::new(intent, move |ctx: &mut Ctx<'a>, _| {
        ctx.client
            .create_attachment(&body)
            .map_err(|e| write_error(&e))?;
        Ok(Done::words(format!(
            "{name} now points at the new database"
        )))
    }))
}

fn reconcile(
    ctx: &mut Ctx<'_>,
    j: &Journal,
    name: &str,
    namespace: Option<&str>,
) -> Result<Option<Done>, StepError> {
    let target_id = target_id(j)?;
    let atts = ctx.client.attachments(&j.app).map_err(|e| read_error(&e))?;
    Ok(atts
        .iter()
        .any(|a| {
            a.name == name
                && a.namespace.as_deref() == namespace
                && a.addon_id() == Some(target_id.as_str())
        })
        .then(|| Done::words(format!("{name} points at the target"))))
}

/// Attach the old add-on as `name` (in `namespace`) again.
fn reattach_source(
    ctx: &mut Ctx<'_>,
    io: &mut Io<'_, Journal>,
    name: &str,
    namespace: Option<&str>,
) -> Result<Undone, StepError> {
    let j = io.journal();
    let app = j.app.clone();
    let source = facts(j)?.source.id.clone();
    // Already so (a retry after a lost response, or a rollback run again):
    // attaching it again is not needed, and Heroku may refuse it.
    let atts = ctx.client.attachments(&app).map_err(|e| read_error(&e))?;
    let already = atts.iter().any(|a| {
        a.name == name
            && a.namespace.as_deref() == namespace
            && a.addon_id() == Some(source.as_str())
    });
    if !already {
        let body = CreateAttachment {
            addon: source,
            app: app.clone(),
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            confirm: app,
        };
        ctx.client
            .create_attachment(&body)
            .map_err(|e| write_error(&e))?;
    }
    Ok(Undone::Done(format!("{name} points at the old database")))
}
