//! `alias-source`: give the old database a second attachment (an API-chosen
//! `HEROKU_POSTGRESQL_<COLOR>`) so it stays reachable after DATABASE moves,
//! as `heroku pg:promote` does. Undo: remove that attachment.

use std::collections::BTreeSet;

use crate::engine::{Done, Effect, Forward, Io, Request, StepError, Undo, Undone};
use crate::heroku::types::CreateAttachment;
use crate::journal::Journal;
use crate::methods::outputs::{self, id, AttachmentRecord};
use crate::methods::{facts, read_error, write_error, Ctx, Def};

pub fn def<'a>() -> Def<'a> {
    Def {
        id: id::ALIAS_SOURCE,
        words: "keep the old database attached under a second name",
        effect: Effect::Writes,
        // A `PGMIGRATE_<ID>` attachment (the one an earlier run created
        // this database with) does not count: it marks a run's target
        // (`others`), so the old database gets a name of its own.
        skip: |j| {
            j.facts
                .as_ref()
                .filter(|f| {
                    f.source_other_attachments
                        .iter()
                        .any(|a| !a.starts_with(super::others::PREFIX))
                })
                .map(|_| "the old database already has another attachment".into())
        },
        forward: Forward::Write(prepare),
        reconcile: Some(reconcile),
        undo: Undo::Compensate {
            words: "remove the old database's second attachment",
            polls: false,
            run: detach,
        },
        no_return: None,
        sets: &[],
    }
}

fn prepare<'a>(
    _: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let source = facts(j)?.source.clone();
    let app = j.app.clone();
    let body = CreateAttachment {
        addon: source.id.clone(),
        app: app.clone(),
        name: None,
        namespace: None,
        confirm: app,
    };
    Ok(Request::new(
        format!(
            "POST /addon-attachments addon={} (API-chosen name)",
            source.name
        ),
        move |ctx: &mut Ctx<'a>, _| {
            let att = ctx
                .client
                .create_attachment(&body)
                .map_err(|e| write_error(&e))?;
            Ok(Done::with(
                format!("{} now also reaches the old database", att.config_var()),
                &AttachmentRecord {
                    id: att.id.clone(),
                    name: att.name.clone(),
                },
            ))
        },
    ))
}

/// An attachment of the old database that preflight did not see is ours.
fn reconcile(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let facts = facts(j)?;
    let atts = ctx.client.attachments(&j.app).map_err(|e| read_error(&e))?;
    let known: BTreeSet<&str> = facts
        .source_other_attachments
        .iter()
        .map(String::as_str)
        .chain([j.options.from_attachment.as_str()])
        .collect();
    Ok(atts
        .iter()
        .find(|a| {
            a.addon_id() == Some(facts.source.id.as_str())
                && a.namespace.is_none()
                && !known.contains(a.name.as_str())
        })
        .map(|a| {
            Done::with(
                format!("found the alias attachment {}", a.name),
                &AttachmentRecord {
                    id: a.id.clone(),
                    name: a.name.clone(),
                },
            )
        }))
}

fn detach(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    // Its creation may have been in doubt: look for it.
    let alias = match outputs::alias(io.journal()) {
        Some(a) => Some(a),
        None => reconcile(ctx, io.journal())?
            .and_then(|d| d.output)
            .and_then(|v| serde_json::from_value::<AttachmentRecord>(v).ok()),
    };
    let Some(alias) = alias else {
        return Ok(Undone::Skipped("no alias attachment exists".into()));
    };
    match ctx.client.delete_attachment(&alias.id) {
        Ok(()) => Ok(Undone::Done(format!("removed {}", alias.name))),
        Err(e) if e.is_not_found() => Ok(Undone::Done(format!("{} was already gone", alias.name))),
        Err(e) => Err(write_error(&e)),
    }
}
