//! What the benchmarks share: the machine they ran on, the check that the
//! binary measured is a release build, a median.

#![allow(dead_code)]

pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("machine: {cpus} cores, {model}")
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Refuses to measure a binary with crash points (src/crash.rs): they
/// exist only in builds with debug assertions, which `cargo bench` (the
/// release profile) does not have; the binary is searched for the
/// variable that arms them, which only the crash-point code names.
pub fn check_no_crash_points(path: &str) {
    let bytes = std::fs::read(path).expect("read the binary under test");
    let needle = b"PGMIGRATE_CRASH_AT";
    let found = bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        !found,
        "{path} contains crash points (PGMIGRATE_CRASH_AT): benchmarks measure a release \
         binary; run `cargo bench`, not a debug build"
    );
    println!("binary: {path}, no crash points (PGMIGRATE_CRASH_AT not in it)");
}

/// What a request in the sandbox's log is, by its method and path (ids
/// and names left out), so that the window's requests can be counted by
/// kind; the step that makes each kind is named after it.
pub fn kind(method: &str, path: &str, body: Option<&serde_json::Value>) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let what = match (method, segs.as_slice()) {
        ("PATCH", ["apps", _]) => match body.and_then(|b| b["maintenance"].as_bool()) {
            Some(true) => "maintenance on (maintenance-on)",
            Some(false) => "maintenance off (maintenance-off)",
            None => "PATCH app",
        },
        ("GET", ["apps", _]) => "app read",
        ("PATCH", ["apps", _, "formation", ..]) => "formation change (scale-down/up)",
        ("GET", ["apps", _, "formation"]) => "formation read",
        ("GET", ["apps", _, "dynos"]) => "dynos read (drain)",
        ("GET", ["apps", _, "releases", ..]) => "releases read",
        ("GET", ["apps", _, "config-vars"]) => "config read",
        ("PATCH", ["apps", _, "config-vars"]) => "config change (rebind-config)",
        ("GET", ["apps", _, "addon-attachments"]) => "attachments read",
        ("POST", ["addon-attachments"]) => "attach (promote-target)",
        ("GET", ["apps", _, "addons"]) => "add-ons read",
        ("GET", ["addons", _]) | ("GET", ["apps", _, "addons", _]) => "add-on read",
        ("POST", ["client", "v11", "databases", _, "transfers"]) => "transfer start (start-copy)",
        ("GET", ["client", "v11", "apps", _, "transfers", _]) => "transfer read (wait-copy)",
        ("GET", ["client", "v11", "databases", _, "wait_status"]) => "wait_status read",
        ("GET", ["client", "v11", "databases", _]) => "database info read",
        ("PUT", ["client", "v11", "databases", _, "unfollow"]) => "unfollow",
        ("GET", ["postgres", "v0", "databases", _, "credentials"]) => "credentials read",
        _ => return format!("{method} {path}"),
    };
    what.to_string()
}

/// The requests logged in the window (after `on`, up to `off`), counted by
/// [`kind`], in the order each kind first appeared.
pub fn window_kinds(
    log: &[pgmigrate::sim::LoggedRequest],
    on: u64,
    off: u64,
) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = vec![];
    for r in log.iter().filter(|r| r.at_ms > on && r.at_ms <= off) {
        let k = kind(&r.method, &r.path, r.body.as_ref());
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some((_, c)) => *c += 1,
            None => out.push((k, 1)),
        }
    }
    out
}
pub mod runbook;
