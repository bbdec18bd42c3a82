//! What the verify step costs, against the copy it checks: builds a source
//! database of about `VERIFY_BENCH_GB` GB (default 1.0) on the PostgreSQL
//! server at `PGMIGRATE_TEST_POSTGRES`, copies it with the sandbox's
//! `pg_dump | pg_restore` (what Heroku's transfer does), then times the
//! verify step in `counts` and `checksum` modes. Prints figures; asserts
//! nothing. Run: `cargo bench --bench verify`.

mod common;
use common::machine;
use std::time::{Duration, Instant};

use pgmigrate::compare::{verify, VerifyMode};
use pgmigrate::sim::pg::{start_copy, Backend};

fn main() {
    // The verify code runs in this process: measured without crash points
    // (they exist only with debug assertions, which `cargo bench` lacks).
    assert!(
        !pgmigrate::crash::enabled(),
        "built with debug assertions: run `cargo bench`, which measures a release build"
    );
    println!("crash points: compiled out (no debug assertions)");
    let Ok(url) = std::env::var("PGMIGRATE_TEST_POSTGRES") else {
        println!(
            "verify bench skipped: set PGMIGRATE_TEST_POSTGRES (bash .ci/postgres.sh prints one)"
        );
        return;
    };
    let gb: f64 = std::env::var("VERIFY_BENCH_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    // About 100 bytes a row on disk with the seeded schema (measured at
    // 0.65 GB for 6.7 M rows; small databases have more overhead a row).
    let rows = (gb * 1e9 / 97.0) as u64;
    let backend = match Backend::connect(&url) {
        Ok(b) => b,
        Err(e) => {
            println!("verify bench skipped: {e}");
            return;
        }
    };
    println!("{}", machine());
    let t = Instant::now();
    let source = backend.create_database(1, rows).expect("seed the source");
    let target = backend.create_database(2, 0).expect("create the target");
    let size = backend.size(&source);
    println!(
        "source: {rows} rows, {:.2} GB on disk, seeded in {:.0}s",
        size as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let copy = start_copy(source.clone(), target.clone(), None, None, 0);
    loop {
        if let Some(end) = copy.end() {
            assert!(
                matches!(
                    end,
                    pgmigrate::sim::pg::CopyEnd::Succeeded { warnings: 0, .. }
                ),
                "the copy succeeds: {end:?}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let copy_secs = t.elapsed().as_secs_f64();
    let dump_bytes = copy.processed.load(std::sync::atomic::Ordering::Relaxed);

    let mut rows_out = vec![("pg_dump | pg_restore".to_string(), copy_secs)];
    for mode in [VerifyMode::Counts, VerifyMode::Checksum] {
        let t = Instant::now();
        let report = verify(&source, &target, mode).expect("verify runs");
        assert_eq!(report.mismatches, 0, "a clean copy matches");
        rows_out.push((format!("verify {mode}"), t.elapsed().as_secs_f64()));
    }
    println!(
        "dump size (compressed custom format): {:.1} MB",
        dump_bytes as f64 / 1e6
    );
    println!("\n{:<24} {:>10} {:>14}", "what", "seconds", "vs the copy");
    for (what, secs) in &rows_out {
        println!(
            "{what:<24} {secs:>10.1} {:>13.0}%",
            secs / copy_secs * 100.0
        );
    }
    backend.cleanup();
}
