//! `start-copy`: start the Heroku Postgres transfer old → new. A lost
//! answer is reconciled from the app's transfer list. Undo: cancel the
//! transfer if it still runs.

use crate::engine::{Done, Io, Request, StepError, Undo, Undone};
use crate::heroku::types::CreateTransfer;
use crate::journal::Journal;
use crate::methods::copy::shared::{transfer, TransferRecord, START_COPY};
use crate::methods::{facts, outputs, read_error, write_error, Ctx, Def};
use crate::secrets::fingerprint;

pub fn def<'a>() -> Def<'a> {
    Def::write(
        START_COPY,
        "start the transfer to the target",
        prepare,
        reconcile,
        Undo::Compensate {
            words: "cancel the transfer if it still runs",
            polls: false,
            run: cancel,
        },
    )
}

fn prepare<'a>(
    ctx: &mut Ctx<'a>,
    io: &mut Io<'_, Journal>,
) -> Result<Request<Ctx<'a>, Journal>, StepError> {
    let j = io.journal();
    let target_id = outputs::target_id(j)
        .ok_or_else(|| StepError::Definite("the target add-on's id is not known".into()))?;
    let from = j.options.from_attachment.clone();
    let to = j.target.attachment_name.clone();
    let (source_url, target_url) = ctx.urls(j)?;
    if fingerprint(&source_url) != facts(j)?.source_url_fingerprint {
        ctx.warn(format!(
            "{from}_URL changed since preflight (credentials rotated?); copying from its \
             current value"
        ));
    }
    let body = CreateTransfer {
        from_name: from.clone(),
        from_url: source_url,
        to_name: to.clone(),
        to_url: target_url,
    };
    Ok(Request::new(
        format!("POST /client/v11/databases/{target_id}/transfers from={from} to={to}"),
        move |ctx: &mut Ctx<'a>, _| {
            let t = ctx
                .client
                .create_transfer(&target_id, &body)
                .map_err(|e| write_error(&e))?;
            Ok(Done::with(
                format!("transfer {} started", t.uuid),
                &TransferRecord::of(&t),
            ))
        },
    ))
}

/// The newest transfer to this run's target attachment is ours.
fn reconcile(ctx: &mut Ctx<'_>, j: &Journal) -> Result<Option<Done>, StepError> {
    let target = &j.target.attachment_name;
    let list = match ctx.client.transfers(&j.app) {
        Ok(list) => list,
        // Heroku lists an app's transfers (`heroku pg:backups` reads the
        // same list); an API that does not cannot say whether the lost
        // request started one. Starting a new transfer is then the only way
        // on: it empties the target before it restores, and the target is
        // this run's own add-on, so no data but a copy is at stake.
        Err(e) if e.is_not_found() => {
            ctx.warn(
                "this API does not list transfers, so whether the lost request started one \
                 cannot be checked; it is taken as not started (a new transfer empties the \
                 target first, and destroying the target stops any transfer into it)",
            );
            Vec::new()
        }
        Err(e) => return Err(read_error(&e)),
    };
    Ok(list
        .iter()
        .filter(|t| t.to_name.as_deref() == Some(target.as_str()))
        .max_by_key(|t| t.num.unwrap_or(0))
        .map(|t| Done::with(format!("found transfer {}", t.uuid), &TransferRecord::of(t))))
}

fn cancel(ctx: &mut Ctx<'_>, io: &mut Io<'_, Journal>) -> Result<Undone, StepError> {
    let j = io.journal();
    let rec = match transfer(j) {
        Some(r) => Some(r),
        // Its start was in doubt: look for it.
        None => reconcile(ctx, j)?
            .and_then(|d| d.output)
            .and_then(|v| serde_json::from_value::<TransferRecord>(v).ok()),
    };
    let Some(rec) = rec else {
        return Ok(Undone::Skipped("no transfer was started".into()));
    };
    let t = ctx
        .client
        .transfer(&j.app, &rec.uuid, false)
        .map_err(|e| read_error(&e))?;
    if t.is_finished() {
        return Ok(Undone::Skipped(format!(
            "transfer {} had already ended",
            rec.uuid
        )));
    }
    ctx.client
        .cancel_transfer(&j.app, &rec.uuid)
        .map_err(|e| write_error(&e))?;
    Ok(Undone::Done(format!("cancelled transfer {}", rec.uuid)))
}
