//! `wait-copy`: follow the transfer until Heroku reports it finished. A
//! healthy copy is never cancelled: a long silence (queued, or no byte
//! moving while pg_restore builds indexes) is reported and left to the
//! operator; failed looks are tolerated as the official CLI tolerates
//! them. A failed copy stops the run before anything is switched, and
//! resuming starts a new transfer. A copy that succeeded with warnings is
//! suspect: with `--verify none` the run stops before the cut-over unless
//! `--force`.

use std::time::{Duration, Instant};

use crate::decisions::{self, CopyVerdict, StallWatch};
use crate::engine::{Done, Io, StepError};
use crate::error::describe_api;
use crate::heroku::types::Transfer;
use crate::journal::Journal;
use crate::methods::copy::shared::{TransferRecord, START_COPY, WAIT_COPY};
use crate::methods::{human_bytes, read_error, round, Ctx, Def, Progress};

pub fn def<'a>() -> Def<'a> {
    Def::wait(WAIT_COPY, "copy the data", wait)
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
    let name = decisions::transfer_name(record.num).unwrap_or_else(|| record.uuid.clone());
    let info = format!("heroku pg:backups:info {name} --app {app}");
    let start = Instant::now();
    let mut silence = StallWatch::new(ctx.settings.copy_stall_timeout);
    let mut failures = 0u32;
    let min = Duration::from_millis(100);
    // The processed bytes at this process's first look, and when: a
    // resumed copy's rate counts only what moved since.
    let mut first_look: Option<(u64, Duration)> = None;
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
                let limit = decisions::COPY_POLL_FAILURES_TOLERATED;
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
                io.pause(decisions::copy_poll(
                    start.elapsed(),
                    min,
                    ctx.settings.copy_poll_max,
                ))?;
                continue;
            }
        };
        io.polled();
        let elapsed = start.elapsed();
        let first = first_look.is_none();
        let (base, since) = *first_look.get_or_insert((t.processed_bytes.unwrap_or(0), elapsed));
        match decisions::copy_verdict(&t) {
            CopyVerdict::Succeeded {
                processed,
                warnings,
            } => {
                if warnings > 0 {
                    suspect_copy(ctx, io, &name, &t, warnings)?;
                }
                // After a resume, the time is only this process's share.
                let took = if first {
                    " (done at this process's first look)".to_string()
                } else if base > 0 {
                    format!(
                        "; {} of it in the {} this process followed it",
                        human_bytes(processed.saturating_sub(base)),
                        humantime::format_duration(round(elapsed.saturating_sub(since)))
                    )
                } else {
                    format!(" in {}", humantime::format_duration(round(elapsed)))
                };
                return Ok(Done::with(
                    format!(
                        "copied {}{took}{}",
                        human_bytes(processed),
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
                    .map(|t| match decisions::copy_verdict(&t) {
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
                // Heroku counts dump bytes (compressed): they end below the
                // source's size, which the words say with the percentage.
                let words = if queued {
                    let source = total
                        .map(|t| format!(" (source database {})", human_bytes(t)))
                        .unwrap_or_default();
                    format!("queued at Heroku, not started yet{source}")
                } else {
                    progress_words(
                        processed,
                        total,
                        processed.saturating_sub(base),
                        elapsed.saturating_sub(since),
                    )
                };
                ctx.observer.progress(&Progress::Transfer {
                    step: WAIT_COPY,
                    words,
                    queued,
                });
                if let Some(quiet) = silence.silence(processed, elapsed) {
                    report_silence(ctx, io, &name, &info, queued, processed, quiet)?;
                }
                let gap = decisions::copy_poll(elapsed, min, ctx.settings.copy_poll_max);
                io.pause(gap.saturating_sub(look.elapsed()))?;
            }
        }
    }
}

/// A running copy's progress in words: the dump bytes so far and, from
/// the bytes moved since this process began following the transfer (a
/// resumed copy's earlier bytes are not counted), the rate. When Heroku
/// reports the source's size, a percentage of it and the time left at
/// this rate to reach it, said for what they are: the processed bytes are
/// the dump's, which usually ends below the source's size, so the copy
/// tends to end before 100%.
pub fn progress_words(
    processed: u64,
    total: Option<u64>,
    moved: u64,
    moving_for: Duration,
) -> String {
    let secs = moving_for.as_secs_f64();
    let rate = (secs > 0.0 && moved > 0).then(|| moved as f64 / secs);
    let mut s = format!("{} dumped", human_bytes(processed));
    if let Some(total) = total.filter(|t| *t > 0) {
        let pct = (processed as f64 * 100.0 / total as f64).min(100.0);
        s.push_str(&format!(
            ", {pct:.0}% of about {} (the source's size; a dump is usually smaller, so the \
             copy may end before 100%)",
            human_bytes(total)
        ));
    }
    if let Some(rate) = rate {
        s.push_str(&format!(", {}/s", human_bytes(rate as u64)));
        if let Some(total) = total.filter(|t| *t > processed) {
            let left = Duration::from_secs(((total - processed) as f64 / rate).ceil() as u64);
            s.push_str(&format!(
                ", about {} to reach that size at this rate",
                humantime::format_duration(left)
            ));
        }
    }
    s
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
        .map(|v| decisions::last_logs(&v, 5))
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
    if io.journal().options.verify == crate::compare::VerifyMode::None && !ctx.settings.force {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_gives_a_percentage_and_a_time_left_of_the_source_size_said_as_such() {
        let s = progress_words(
            25_000_000,
            Some(100_000_000),
            10_000_000,
            Duration::from_secs(5),
        );
        assert!(
            s.starts_with("25.0 MB dumped, 25% of about 100.0 MB (the source's size"),
            "{s}"
        );
        assert!(s.contains("a dump is usually smaller"), "{s}");
        assert!(s.contains("2.0 MB/s"), "{s}");
        // 75 MB to go at 2 MB/s.
        assert!(
            s.contains("about 38s to reach that size at this rate"),
            "{s}"
        );
    }

    #[test]
    fn the_rate_is_of_the_bytes_moved_since_the_first_look_only() {
        // A resumed copy: 900 MB were moved before; 10 MB in 5 s since.
        let s = progress_words(910_000_000, None, 10_000_000, Duration::from_secs(5));
        assert!(s.contains("2.0 MB/s"), "{s}");
        // Nothing measured yet: no rate, no time left.
        let s = progress_words(910_000_000, Some(2_000_000_000), 0, Duration::ZERO);
        assert!(!s.contains("/s") && !s.contains("to reach"), "{s}");
        assert!(s.contains("46% of about 2.0 GB"), "{s}");
    }

    #[test]
    fn a_dump_past_the_source_size_says_100_percent_and_no_time_left() {
        let s = progress_words(120, Some(100), 20, Duration::from_secs(1));
        assert!(s.contains("100% of about 100 B"), "{s}");
        assert!(!s.contains("to reach"), "{s}");
    }
}
