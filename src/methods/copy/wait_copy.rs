//! `wait-copy`: follow the transfer until Heroku reports it finished. A
//! failed copy stops the run before anything is switched; resuming starts
//! a new transfer.

use std::time::{Duration, Instant};

use crate::engine::{Done, Effect, Forward, Io, StepError, Undo};
use crate::error::describe_api;
use crate::journal_v2::Journal;
use crate::methods::copy::{TransferRecord, START_COPY, WAIT_COPY};
use crate::methods::{read_error, round, Ctx, Def, Progress};
use crate::steps::{self, CopyVerdict, StallWatch};

pub fn def<'a>() -> Def<'a> {
    Def {
        id: WAIT_COPY,
        words: "copy the data",
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
    let app = io.journal().app.clone();
    let Some(record) = io.journal().log.output::<TransferRecord>(START_COPY) else {
        return Err(StepError::Redo {
            from: START_COPY,
            why: "no transfer is recorded; starting one".into(),
        });
    };
    let previous: Option<TransferRecord> = io.journal().log.output(WAIT_COPY);
    if previous.is_some_and(|p| p.uuid == record.uuid && p.succeeded == Some(false)) {
        // A resume after a failed copy: start a new transfer.
        return Err(StepError::Redo {
            from: START_COPY,
            why: "the previous transfer failed; starting a new one".into(),
        });
    }
    let start = Instant::now();
    let mut stall = StallWatch::new(ctx.settings.copy_stall_timeout);
    let min = Duration::from_millis(100);
    loop {
        let t = ctx
            .client
            .transfer(&app, &record.uuid, false)
            .map_err(|e| read_error(&e))?;
        io.polled();
        let elapsed = start.elapsed();
        match steps::copy_verdict(&t) {
            CopyVerdict::Succeeded { processed } => {
                return Ok(Done::with(
                    format!(
                        "copied {} in {}",
                        crate::methods::human_bytes(processed),
                        humantime::format_duration(round(elapsed))
                    ),
                    &TransferRecord::of(&t),
                ));
            }
            CopyVerdict::Failed { reason, .. } => {
                // Fetch the logs for the message.
                let logs = ctx
                    .client
                    .transfer(&app, &record.uuid, true)
                    .map(|t| match steps::copy_verdict(&t) {
                        CopyVerdict::Failed { last_logs, .. } => last_logs,
                        _ => Vec::new(),
                    })
                    .unwrap_or_default();
                let mut failed = TransferRecord::of(&t);
                failed.succeeded = Some(false);
                io.keep(&failed)?;
                return Err(StepError::Definite(format!(
                    "the copy failed: {reason}. Nothing was switched.{}",
                    if logs.is_empty() {
                        String::new()
                    } else {
                        format!("\n  last transfer log lines:\n    {}", logs.join("\n    "))
                    }
                )));
            }
            CopyVerdict::Running { processed, total } => {
                ctx.observer.progress(&Progress::Copy {
                    processed,
                    total,
                    elapsed,
                });
                if stall.stalled(processed, elapsed) {
                    let cancel = ctx.client.cancel_transfer(&app, &record.uuid);
                    let mut failed = TransferRecord::of(&t);
                    failed.succeeded = Some(false);
                    io.keep(&failed)?;
                    return Err(StepError::Definite(format!(
                        "the copy made no progress for {} (stuck at {}); {}. Nothing was \
                         switched",
                        humantime::format_duration(ctx.settings.copy_stall_timeout),
                        crate::methods::human_bytes(processed),
                        match cancel {
                            Ok(()) => "the transfer was cancelled".to_string(),
                            Err(e) => format!("cancelling it failed: {}", describe_api(&e)),
                        }
                    )));
                }
                io.pause(steps::copy_poll(
                    elapsed,
                    processed,
                    total,
                    min,
                    ctx.settings.copy_poll_max,
                ))?;
            }
        }
    }
}
