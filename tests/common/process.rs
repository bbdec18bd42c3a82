//! Test support: the real binary as a child process, stopped by signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use super::Env;

/// Start a run and return once its stdout shows `marker`; the rest of its
/// stdout is drained in the background.
pub fn start_until(env: &Env, args: &[&str], marker: &str) -> Child {
    let mut c = env.command(args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains(marker) => break,
            Some(_) => {}
            None => panic!("the run ended before {marker:?}"),
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

pub fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok);
}

pub fn finish(child: Child) -> (i32, String) {
    let o = child.wait_with_output().expect("wait");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
