//! Test-only crash points, after rustup's `cli_crash` tests: named places
//! in a run where a test can stop the process dead. Compiled in only with
//! the `crash-points` feature, which building the tests turns on; in a
//! normal build [`point`] is an empty inline function.
//!
//! With `PGMIGRATE_CRASH_AT=<name>` (and optionally `PGMIGRATE_CRASH_HIT=N`
//! for the Nth time the point is reached, default 1), the process prints
//! `pgmigrate-crash-point <name>` on stderr and parks; the test then kills
//! it with SIGKILL, so no destructor runs and nothing is flushed or
//! journaled that was not already.

use crate::steps::{Step, Undo};

/// Park here if the environment names this point.
#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};
    static HITS: AtomicU32 = AtomicU32::new(0);
    if std::env::var("PGMIGRATE_CRASH_AT").ok().as_deref() != Some(name) {
        return;
    }
    let nth: u32 = std::env::var("PGMIGRATE_CRASH_HIT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 != nth {
        return;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "pgmigrate-crash-point {name}");
    let _ = err.flush();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Without the feature, crash points cost nothing.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// Every crash point of a forward run, in the order they are reached.
pub fn forward_points() -> Vec<String> {
    let mut v = vec![];
    // The verify step only reads, and needs real databases: the recovery
    // tests, which run on the simulated sandbox, skip it.
    for s in Step::ALL.iter().skip(1).filter(|s| **s != Step::Verify) {
        v.push(format!("after-intent:{s}"));
        if !s.has_side_effect() {
            v.push(format!("polling:{s}"));
        }
        v.push(format!("before-outcome:{s}"));
        v.push(format!("after-outcome:{s}"));
    }
    v
}

/// Every crash point of a rollback from a completed run, in order.
pub fn undo_points() -> Vec<String> {
    let mut v = vec![];
    for s in Step::ALL.iter().rev() {
        if s.undo() == Undo::Nothing {
            continue;
        }
        v.push(format!("undo-after-intent:{s}"));
        if s.undo() == Undo::ScaleToZero {
            v.push(format!("polling:{s}"));
        }
        v.push(format!("undo-before-outcome:{s}"));
        v.push(format!("undo-after-outcome:{s}"));
    }
    v
}
