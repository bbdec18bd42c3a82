//! The app's downtime for each method against the database's size: drives
//! the real binary against the sandbox (100 ms added to every request, a
//! 2 s drain) for a Standard database of 1, 10 and 100 GB moved to
//! standard-2 by `--method copy`, `follower` and `upgrade`, and reads the
//! maintenance window (maintenance on → off) from the sandbox's request
//! log. Prints a table; asserts nothing. `cargo bench --bench methods`.
//!
//! Time is compressed for the copy only: a Heroku transfer moves about a
//! GB in 3 minutes (Heroku's own figure), which would make the 100 GB run
//! five hours, so the sandbox's transfer takes `COPY_MS_PER_GB` (1/300 of
//! that) and the table shows both the measured window and the window with
//! the copy at Heroku's rate (measured window − simulated copy + size × 180
//! s). Nothing else is compressed: the follower's last catch-up, the
//! unfollow, Heroku's maintenance and every request take the sandbox's
//! modelled time whatever the size (its GUESSes: a 0.4 s replication
//! delay, a 0.2 s unfollow, a 0.8 s maintenance run), which is the claim:
//! their downtime does not grow with the database. Provisioning, catching
//! up and Heroku's preparation happen while the app runs and are not in
//! the window.

use std::process::Command;

use pgmigrate::sim::{Sandbox, Scenario};
use serde_json::json;

mod common;
use common::{check_no_crash_points, machine, window_kinds};

const LATENCY_MS: u64 = 100;
const DRAIN_MS: u64 = 2000;
/// Heroku: about 3 minutes per GB; here 1/300 of it.
const HEROKU_MS_PER_GB: f64 = 180_000.0;
const COPY_MS_PER_GB: f64 = HEROKU_MS_PER_GB / 300.0;
const BYTES_PER_ROW: u64 = 2048;

fn scenario(gb: u64) -> Scenario {
    let rows = gb * 1_000_000_000 / BYTES_PER_ROW;
    let text = json!({
        "latency_ms": LATENCY_MS,
        "timing": {
            "provision_ms": 500, "dyno_stop_ms": DRAIN_MS, "dyno_start_ms": 100,
            "transfer_ms": (gb as f64 * COPY_MS_PER_GB) as u64,
            "bytes_per_row": BYTES_PER_ROW,
            "transfer_queue_ms": 0
        },
        "writes_per_second_per_dyno": 20.0,
        "apps": [{
            "name": "bench-app",
            "formation": [
                {"type": "web", "quantity": 2, "size": "standard-2X"},
                {"type": "worker", "quantity": 1, "size": "standard-1X"}
            ],
            "addons": [{
                "name": "postgresql-bench", "plan": "heroku-postgresql:standard-0",
                "attachments": ["DATABASE"], "rows": rows
            }],
            "config_vars": {"REPORTING_URL": "{{DATABASE_URL}}"}
        }]
    });
    Scenario::from_json(&text.to_string()).expect("valid scenario")
}

struct Run {
    window_s: f64,
    copy_s: f64,
    requests_in_window: usize,
    kinds: Vec<(String, usize)>,
}

fn one(gb: u64, method: &str) -> Run {
    let sandbox = Sandbox::start(scenario(gb), 0).expect("sandbox");
    let home = tempfile::tempdir().expect("tempdir");
    let user = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_pgmigrate"))
        .args([
            "run",
            "--app",
            "bench-app",
            "--confirm",
            "bench-app",
            "--to",
            "standard-2",
            "--verify",
            "none",
            "--method",
            method,
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
        "{method} {gb} GB failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = sandbox.requests();
    let at = |on: bool| {
        log.iter()
            .find(|r| {
                r.method == "PATCH"
                    && r.path == "/apps/bench-app"
                    && r.body.as_ref().and_then(|b| b["maintenance"].as_bool()) == Some(on)
            })
            .map(|r| r.at_ms)
            .expect("maintenance request")
    };
    let (on, off) = (at(true), at(false));
    let state = sandbox.snapshot();
    let copy_s = state["transfers"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| Some((t["finished_ms"].as_u64()? - t["started_ms"].as_u64()?) as f64))
        .map_or(0.0, |ms| ms / 1000.0);
    Run {
        window_s: (off - on) as f64 / 1000.0,
        copy_s,
        requests_in_window: log
            .iter()
            .filter(|r| r.at_ms > on && r.at_ms <= off)
            .count(),
        kinds: window_kinds(&log, on, off),
    }
}

fn main() {
    check_no_crash_points(env!("CARGO_BIN_EXE_pgmigrate"));
    println!("{}", machine());
    println!(
        "sandbox: +{LATENCY_MS} ms a request, drain {:.1} s, standard-0 -> standard-2; the copy \
         simulated at 1/300 of Heroku's 3 min/GB\n",
        DRAIN_MS as f64 / 1000.0
    );
    println!(
        "{:>6}  {:<9} {:>16} {:>22} {:>10}",
        "size", "method", "window measured", "window at Heroku rate", "requests"
    );
    let mut follower_8 = None;
    // 8 GB: the follower case (target: drain + 2.8 s).
    for gb in [1u64, 8, 10, 100] {
        for method in ["copy", "follower", "upgrade"] {
            if gb == 8 && method != "follower" {
                continue;
            }
            let r = one(gb, method);
            // Only the copy's own time is compressed; put Heroku's back.
            let heroku = if r.copy_s > 0.0 {
                r.window_s - r.copy_s + gb as f64 * HEROKU_MS_PER_GB / 1000.0
            } else {
                r.window_s
            };
            println!(
                "{:>4} GB  {:<9} {:>15.2}s {:>21.1}s {:>10}",
                gb, method, r.window_s, heroku, r.requests_in_window
            );
            if gb == 8 {
                follower_8 = Some(r);
            }
        }
    }
    if let Some(r) = follower_8 {
        println!(
            "\n8 GB follower: down {:.2} s = drain {:.1} s + {:.2} s (target: drain + 2.8 s); \
             requests in the window by kind:",
            r.window_s,
            DRAIN_MS as f64 / 1000.0,
            r.window_s - DRAIN_MS as f64 / 1000.0
        );
        for (k, n) in &r.kinds {
            println!("  {n:>3}  {k}");
        }
    }
}
