//! Test-only crash points, after rustup's `cli_crash` tests: named places
//! in a run where a test can stop the process dead. Compiled in only in a
//! build with debug assertions (the `dev` and `test` profiles: `cargo
//! build`, `cargo test`); in every build without them (`--release`, `cargo
//! install`, `cargo bench`) [`point`] is an empty inline function and the
//! binary holds no trace of them, whatever else was built before. (They
//! used to hang on a cargo feature that the tests' self dev-dependency
//! turned on, which leaked into `target/release/pgmigrate` after `cargo
//! test --release` or `cargo bench`.)
//!
//! With `PGMIGRATE_CRASH_AT=<name>` (and optionally `PGMIGRATE_CRASH_HIT=N`
//! for the Nth time the point is reached, default 1), the process prints
//! `pgmigrate-crash-point <name>` on stderr and parks; the test then kills
//! it with SIGKILL, so no destructor runs and nothing is flushed or
//! journaled that was not already.

/// Park here if the environment names this point.
#[cfg(debug_assertions)]
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
    let _ = writeln!(err, "{MARKER} {name}");
    let _ = err.flush();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Without debug assertions, crash points cost nothing and do nothing.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}

/// Whether this build has live crash points (the tests that need them
/// skip, loudly, when it has not).
pub fn enabled() -> bool {
    cfg!(debug_assertions)
}

/// The line a parked crash point prints; a build without crash points does
/// not contain it (the benchmarks check their binary for it).
pub const MARKER: &str = "pgmigrate-crash-point";
