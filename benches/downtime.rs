//! How long the app is down, and where the time goes: drives the real
//! binary against the sandbox with 100 ms added to every request, a 3 s
//! copy and a 2 s drain, and reads the sandbox's request log (each request
//! is logged when the sandbox applied it, after the added latency) to
//! report per run: the maintenance window, drain, copy, overhead (window
//! minus drain minus copy), requests inside the window, total requests,
//! and how long after the copy finished the run noticed. The transfer
//! behaves as the sandbox models Heroku by default: it sits queued a
//! moment, its processed (dump, compressed) bytes end at about a third of
//! the source's size, and nothing moves during its tail. Then the status
//! requests a simulated one-hour copy makes with the same polling schedule.
//! Prints figures; asserts nothing. `cargo bench --bench downtime`
//! (`DOWNTIME_RUNS` sets the number of runs, default 3).

use std::process::Command;
use std::time::Duration;

use pgmigrate::sim::{Sandbox, Scenario};

mod common;
use common::{check_no_crash_points, machine, median, runbook, window_kinds};

const LATENCY_MS: u64 = 100;
const COPY_MS: u64 = 3000;
const DRAIN_MS: u64 = 2000;
/// The demo's Essential target (the plan `run` moved it to by default).
const TO_PLAN: &str = "heroku-postgresql:essential-0";

struct Figures {
    window: f64,
    drain: f64,
    copy: f64,
    overhead: f64,
    in_window: usize,
    total: usize,
    detection: f64,
    /// The window's requests by kind.
    kinds: Vec<(String, usize)>,
}

fn scenario() -> Scenario {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/scenarios/demo.json"
    ))
    .expect("demo scenario");
    let mut s = Scenario::from_json(&text).expect("valid");
    // An app without release phase (the figure): the demo lists a
    // `release` process type but the sandbox runs no release command for
    // it; on Heroku the type exists exactly when a release command does.
    s.apps[0].formation.retain(|p| p.process_type != "release");
    s.latency_ms = LATENCY_MS;
    s.timing.transfer_ms = COPY_MS;
    s.timing.dyno_stop_ms = DRAIN_MS;
    s.timing.provision_ms = 500;
    s
}

fn one_run() -> Figures {
    let sandbox = Sandbox::start(scenario(), 0).expect("sandbox");
    let home = tempfile::tempdir().expect("tempdir");
    let user = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_pgmigrate"))
        .args([
            "run",
            "--to",
            "essential-0",
            "--app",
            "demo-app",
            "--confirm",
            "demo-app",
            "--to",
            TO_PLAN,
            "--verify",
            "none",
            // The copy's window: the demo's Essential plans could also be
            // changed in place (`auto` would).
            "--method",
            "copy",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", user.path())
        .env("HEROKU_HOST", sandbox.base_url())
        .env("HEROKU_DATA_HOST", sandbox.base_url())
        .env("HEROKU_API_KEY", sandbox.token())
        .env("PGMIGRATE_HOME", home.path())
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "the run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    figures(&sandbox)
}

/// How long two spans of time (ms) overlap.
fn overlap(a: (u64, u64), b: (u64, u64)) -> u64 {
    a.1.min(b.1).saturating_sub(a.0.max(b.0))
}

/// The window's figures, from the sandbox's request log and state.
fn figures(sandbox: &Sandbox) -> Figures {
    let log = sandbox.requests();
    let maintenance = |on: bool| {
        log.iter()
            .find(|r| {
                r.method == "PATCH"
                    && r.path == "/apps/demo-app"
                    && r.body.as_ref().and_then(|b| b["maintenance"].as_bool()) == Some(on)
            })
            .map(|r| r.at_ms)
            .expect("maintenance request")
    };
    let (on, off) = (maintenance(true), maintenance(false));
    if std::env::var_os("DOWNTIME_TIMELINE").is_some() {
        for r in log.iter().filter(|r| r.at_ms >= on && r.at_ms <= off) {
            println!(
                "  +{:>5} ms  {}",
                r.at_ms - on,
                common::kind(&r.method, &r.path, r.body.as_ref())
            );
        }
    }
    // When the copy really ended, as the sandbox reports it: after its
    // queue and its quiet tail, its dump bytes at `dump_ratio` of the
    // source (the sandbox's realistic defaults).
    let state = sandbox.snapshot();
    let t = &state["transfers"][0];
    let started = t["started_ms"].as_u64().expect("transfer started");
    let finished = t["finished_ms"].as_u64().expect("transfer finished");
    let noticed = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/transfers/") && r.at_ms >= finished)
        .map(|r| r.at_ms)
        .min()
        .unwrap_or(finished);
    let window = (off - on) as f64 / 1000.0;
    let drain = DRAIN_MS as f64 / 1000.0;
    let copy = (finished - started) as f64 / 1000.0;
    // The drain runs from the scale-down for DRAIN_MS. The overhead is the
    // window less the time covered by the drain or the copy: for a run
    // that copies after the drain (pgmigrate) exactly window - drain -
    // copy; for one whose copy starts while dynos still stop (the
    // runbook), the overlap is counted once.
    let scaled = log
        .iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/formation") && r.at_ms > on)
        .map(|r| r.at_ms)
        .expect("scale-down");
    let (d0, d1) = (scaled, scaled + DRAIN_MS);
    let covered = (d1 - d0) + (finished - started) - overlap((d0, d1), (started, finished));
    Figures {
        window,
        drain,
        copy,
        overhead: window - covered as f64 / 1000.0,
        in_window: log
            .iter()
            .filter(|r| r.at_ms > on && r.at_ms <= off)
            .count(),
        total: log.len(),
        detection: (noticed - finished) as f64 / 1000.0,
        kinds: window_kinds(&log, on, off),
    }
}

/// The same window, drain and copy figures for the official CLI's runbook
/// (`common::runbook`) against a fresh sandbox of the same scenario.
fn runbook_run(starts: Option<&[f64]>) -> Figures {
    let sandbox = Sandbox::start(scenario(), 0).expect("sandbox");
    runbook::run(
        &sandbox.base_url(),
        &sandbox.token(),
        "demo-app",
        TO_PLAN,
        &[("web", 2), ("worker", 1)],
        starts,
    );
    figures(&sandbox)
}

fn main() {
    check_no_crash_points(env!("CARGO_BIN_EXE_pgmigrate"));
    let runs: usize = std::env::var("DOWNTIME_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!("{}", machine());
    println!(
        "sandbox: +{LATENCY_MS} ms a request, copy {:.1} s, drain {:.1} s; target: overhead <= 0.8 s, detection <= 0.5 s\n",
        COPY_MS as f64 / 1000.0,
        DRAIN_MS as f64 / 1000.0
    );
    println!(
        "{:<8} {:>8} {:>7} {:>7} {:>9} {:>10} {:>8} {:>10}",
        "run", "window", "drain", "copy", "overhead", "in-window", "total", "detection"
    );
    let mut all = vec![];
    for i in 0..runs {
        let f = one_run();
        println!(
            "{:<8} {:>7.2}s {:>6.2}s {:>6.2}s {:>8.2}s {:>10} {:>8} {:>9.2}s",
            i + 1,
            f.window,
            f.drain,
            f.copy,
            f.overhead,
            f.in_window,
            f.total,
            f.detection
        );
        all.push(f);
    }
    println!(
        "{:<8} {:>7.2}s {:>6.2}s {:>6.2}s {:>8.2}s {:>10} {:>8} {:>9.2}s",
        "median",
        median(all.iter().map(|f| f.window).collect()),
        median(all.iter().map(|f| f.drain).collect()),
        median(all.iter().map(|f| f.copy).collect()),
        median(all.iter().map(|f| f.overhead).collect()),
        median(all.iter().map(|f| f.in_window as f64).collect()),
        median(all.iter().map(|f| f.total as f64).collect()),
        median(all.iter().map(|f| f.detection).collect()),
    );
    println!("\nrequests in the window of run 1, by kind:");
    for (k, n) in &all[0].kinds {
        println!("  {n:>3}  {k}");
    }

    // The official CLI's runbook against the same sandbox (simulated: see
    // benches/common/runbook.rs for what is and is not modelled).
    let starts = runbook::measured_starts();
    match &starts {
        Some(s) => println!(
            "\nthe official CLI's runbook, simulated (its requests, same sandbox; each command \
             waits its measured start first: {}; a person's pauses not modelled; its copy starts \
             during the drain, so the overhead subtracts the time covered by the drain or the copy):",
            runbook::COMMANDS
                .iter()
                .zip(s)
                .map(|(c, t)| format!("{c} {t:.2} s"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => println!(
            "\nthe official CLI's runbook, simulated (its requests, same sandbox; the CLI's process \
             start NOT modelled (set PGMIGRATE_BENCH_HEROKU to a heroku binary to measure it) nor \
             a person's pauses; its copy starts during the drain, so the overhead subtracts the time \
             covered by the drain or the copy):"
        ),
    }
    let mut cli = vec![];
    for i in 0..runs {
        let f = runbook_run(starts.as_deref());
        println!(
            "{:<8} {:>7.2}s {:>6.2}s {:>6.2}s {:>8.2}s {:>10} {:>8} {:>9.2}s",
            format!("cli {}", i + 1),
            f.window,
            f.drain,
            f.copy,
            f.overhead,
            f.in_window,
            f.total,
            f.detection
        );
        cli.push(f);
    }
    let ours = median(all.iter().map(|f| f.overhead).collect());
    let theirs = median(cli.iter().map(|f| f.overhead).collect());
    println!(
        "overhead (window - drain - copy), medians: pgmigrate {ours:.2} s, official CLI runbook \
         {theirs:.2} s, ratio {:.2} (target <= 0.10)",
        ours / theirs
    );
    println!("requests in the window of cli run 1, by kind:");
    for (k, n) in &cli[0].kinds {
        println!("  {n:>3}  {k}");
    }

    // A one-hour copy, with the schedule wait_copy uses. The schedule does
    // not read the byte count, so neither the final count nor a quiet tail
    // changes it: only when the copy ends does.
    let settings = pgmigrate::methods::Settings::default();
    let (min, max) = (Duration::from_millis(100), settings.copy_poll_max);
    let end = Duration::from_secs(3600);
    let mut t = Duration::ZERO;
    let mut polls = 1;
    while t < end {
        t += pgmigrate::decisions::copy_poll(t, min, max);
        polls += 1;
    }
    println!(
        "\nsimulated 1-hour copy: {polls} status requests (target <= 200), finish noticed {:.2} s late (bound: min(10% of the copy, {} s))",
        (t - end).as_secs_f64(),
        max.as_secs()
    );
}
