//! The migration methods. Each is a folder (`copy/`, `follower/`,
//! `upgrade/`) that exports one value implementing [`method::Method`]: its
//! plan of step definitions, its judge of whether it can move a database,
//! its `status` answers; [`registry`] lists them, and everything else asks
//! the registry. The steps every method shares (creating the new add-on,
//! maintenance, scaling, the cut-over) live in `steps/`, one file each. A
//! step reads and writes only through its context [`Ctx`] and the journal
//! the engine hands it.

pub mod answers;
pub mod aspects;
pub mod choose;
pub mod context;
pub mod copy;
pub mod describe;
pub mod follower;
pub mod judge;
pub mod method;
pub mod outputs;
pub mod preflight;
pub mod preview;
pub mod registry;
pub mod session;
pub mod steps;
pub mod upgrade;

use std::time::Duration;

pub use context::{
    facts, read_error, write_error, Ctx, Def, Observer, Progress, Settings, Silent, Urls,
};

/// "on" or "off".
pub fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// A duration rounded down to a tenth of a second, for people.
pub fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64 / 100 * 100)
}

/// Bytes for people: 1.5 MB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The milliseconds between two journal timestamps, if both parse and are
/// in order.
pub fn duration_ms(a: Option<&str>, b: Option<&str>) -> Option<u64> {
    let a = humantime::parse_rfc3339(a?).ok()?;
    let b = humantime::parse_rfc3339(b?).ok()?;
    b.duration_since(a).ok().map(|d| d.as_millis() as u64)
}
