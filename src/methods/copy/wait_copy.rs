//! `wait-copy`: follow the transfer until Heroku reports it finished. A
//! healthy copy is never cancelled: a long silence (queued, or no byte
//! moving while pg_restore builds indexes) is reported and left to the
//! operator; failed looks are tolerated as the official CLI tolerates
//! them. A failed copy stops the run before anything is switched, and
//! resuming starts a new transfer. A copy that succeeded with warnings is
//! suspect: with `--verify none` the run stops before the cut-over unless
//! `--force`.

use std::time::{Duration, Instant};

use crate::engine::{Done, Effect, Forward, Io, StepError, Undo};
use crate::error::describe_api;
use crate::heroku::types::Transfer;
use crate::journal::Journal;
use crate::methods::copy::{TransferRecord, START_COPY, WAIT_COPY};
use crate::methods::{human_bytes, read_error, round, Ctx, Def, Progress};
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
    let name = steps::transfer_name(record.num).unwrap_or_else(|| record.uuid.clone());
    let info = format!("heroku pg:backups:info {name} --app {app}");
    let start = Instant::now();
    let mut silence = StallWatch::new(ctx.settings.copy_stall_timeout);
    let mut failures = 0u32;
    let min = Duration::from_millis(100);
    loop {
        // The schedule spaces the looks, not the pauses: a look's own round
        // trip is part of the gap (with the app down, a gap of a tenth of
        // the elapsed time plus a round trip is noticed that much later).
        let look = Instant::now();
        let t = match ctx.client.transfer(&app, &record.uuid, false) {
            Ok(t) => t,
            // A revoked token or lost access fails every later look too.
            Err(e) if matches!(e.status(), Some(401) | Some(403)) => return Err(read_error(&e)),
            Err(e) => {
                // A failed look does not stop the copy at Heroku: look again,
                // as the official CLI does, up to its limit.
                failures += 1;
                let limit = steps::COPY_POLL_FAILURES_TOLERATED;
                if failures > limit {
                    return Err(StepError::Definite(format!(
                        "{failures} looks at transfer {name} failed (the last: {}). The \
                         transfer may still be running at Heroku (`{info}`); nothing was \
                         switched. `pgmigrate resume` follows the same transfer",
                        describe_api(&e)
                    )));
                }
                ctx.warn(format!(
                    "looking at transfer {name} failed ({failures} of {limit} tolerated): {}; \
                     the copy goes on at Heroku, looking again",
                    describe_api(&e)
                ));
                io.pause(steps::copy_poll(
                    start.elapsed(),
                    min,
                    ctx.settings.copy_poll_max,
                ))?;
                continue;
            }
        };
        io.polled();
        let elapsed = start.elapsed();
        match steps::copy_verdict(&t) {
            CopyVerdict::Succeeded {
                processed,
                warnings,
            } => {
                if warnings > 0 {
                    suspect_copy(ctx, io, &name, &t, warnings)?;
                }
                return Ok(Done::with(
                    format!(
                        "copied {} in {}{}",
                        human_bytes(processed),
                        humantime::format_duration(round(elapsed)),
                        if warnings > 0 {
                            format!(" ({warnings} warnings)")
                        } else {
                            String::new()
                        }
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
            verdict @ (CopyVerdict::Queued | CopyVerdict::Running { .. }) => {
                let (processed, total, queued) = match verdict {
                    CopyVerdict::Running { processed, total } => (processed, total, false),
                    _ => (0, t.source_bytes, true),
                };
                ctx.observer.progress(&Progress::Copy {
                    processed,
                    total,
                    elapsed,
                    queued,
                });
                if let Some(quiet) = silence.silence(processed, elapsed) {
                    report_silence(ctx, io, &name, &info, queued, processed, quiet)?;
                }
                let gap = steps::copy_poll(elapsed, min, ctx.settings.copy_poll_max);
                io.pause(gap.saturating_sub(look.elapsed()))?;
            }
        }
    }
}

/// A long silence of a transfer Heroku has not failed: said, put in the
/// step's note (so `status` shows it), never acted on. Only the operator
/// decides: wait, or `rollback` (which cancels the transfer).
fn report_silence(
    ctx: &Ctx<'_>,
    io: &mut Io<'_, Journal>,
    name: &str,
    info: &str,
    queued: bool,
    processed: u64,
    quiet: Duration,
) -> Result<(), StepError> {
    let app = io.journal().app.clone();
    let quiet = humantime::format_duration(Duration::from_secs(quiet.as_secs()));
    let what = if queued {
        format!("transfer {name} has been queued at Heroku for {quiet} (not started yet)")
    } else {
        format!(
            "transfer {name} has moved no byte for {quiet} (at {}; pg_restore may be building \
             indexes)",
            human_bytes(processed)
        )
    };
    let message = format!(
        "{what}. Heroku has not failed it, so pgmigrate keeps waiting; see `{info}`. To give up \
         instead: Ctrl-C, then `pgmigrate rollback --app {app}` (cancels the transfer)"
    );
    ctx.warn(message.clone());
    io.annotate(&message)?;
    Ok(())
}

/// A transfer Heroku reports as succeeded although pg_restore ignored
/// errors: warn with the count and the last log lines, and with `--verify
/// none` stop before the cut-over unless `--force` (with a verify step,
/// that step decides).
fn suspect_copy(
    ctx: &Ctx<'_>,
    io: &mut Io<'_, Journal>,
    name: &str,
    t: &Transfer,
    warnings: u64,
) -> Result<(), StepError> {
    let app = io.journal().app.clone();
    let logs = ctx
        .client
        .transfer(&app, &t.uuid, true)
        .map(|v| steps::last_logs(&v, 5))
        .unwrap_or_default();
    let mut message = format!(
        "Heroku reports transfer {name} succeeded with {warnings} warning(s): pg_restore ignored \
         errors (\"errors ignored on restore\"), so the copy may be incomplete"
    );
    if !logs.is_empty() {
        message.push_str(&format!(
            "\n  last transfer log lines:\n    {}",
            logs.join("\n    ")
        ));
    }
    ctx.warn(message.clone());
    io.keep(&TransferRecord::of(t))?;
    io.note(crate::engine::EventKind::Note, &message)?;
    if io.journal().options.verify == crate::verify::VerifyMode::None && !ctx.settings.force {
        return Err(StepError::Definite(format!(
            "{message}\n  With --verify none nothing checks the copy, so pgmigrate stops before \
             the cut-over; nothing was switched. Check the copy (`heroku pg:backups:info {name} \
             --app {app}`, or `pgmigrate resume --app {app} --verify counts`), then `pgmigrate \
             resume --app {app} --force` to switch to it anyway, or `pgmigrate rollback --app \
             {app}`"
        )));
    }
    Ok(())
}
