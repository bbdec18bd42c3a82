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
