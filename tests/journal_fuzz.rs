//! The journal reader on hostile input: arbitrary bytes, every truncation
//! and every single-byte change of a real journal, and random splices. It
//! must never panic; it accepts only what is a whole, valid journal, and
//! otherwise names the problem (or says the journal is from a newer
//! pgmigrate). Deterministic: a seeded xorshift drives the random cases.

mod common;

use pgmigrate::journal::{decode, encode, Decode};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A real journal, written by the binary during a stopped run.
fn real_journal() -> Vec<u8> {
    let env = common::Env::new("demo");
    let path = env.stopped_run("demo-app", "cutover");
    std::fs::read(path).unwrap()
}

/// Decoding must not panic; an accepted input must re-encode to a
/// document that decodes to the same journal.
fn check(bytes: &[u8]) -> Result<(), Decode> {
    match decode(bytes) {
        Ok(j) => {
            assert_eq!(decode(&encode(&j)).expect("re-decodes"), j);
            Ok(())
        }
        Err(Decode::Corrupt(msg)) => {
            assert!(!msg.is_empty());
            Err(Decode::Corrupt(msg))
        }
        Err(e) => Err(e),
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for _ in 0..20_000 {
        let len = rng.below(300);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(check(&bytes).is_err());
    }
    // JSON-shaped noise.
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"format_version\"",
        ":",
        "1",
        "2",
        ",",
        "\"steps\"",
        "null",
        "\"x\"",
    ];
    for _ in 0..20_000 {
        let n = rng.below(30);
        let text: String = (0..n).map(|_| pieces[rng.below(pieces.len())]).collect();
        let _ = check(text.as_bytes());
    }
}

#[test]
fn every_truncation_and_byte_change_of_a_real_journal_is_handled() {
    let good = real_journal();
    check(&good).expect("the real journal reads");
    for cut in 0..good.len() {
        let r = check(&good[..cut]);
        let only_whitespace_lost = good[cut..].iter().all(|b| b.is_ascii_whitespace());
        assert_eq!(r.is_ok(), only_whitespace_lost, "cut at {cut}");
    }
    let mut rng = Rng(42);
    let mut accepted = 0;
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] = rng.next() as u8;
        if check(&bad).is_ok() {
            accepted += 1;
        }
    }
    // A changed byte inside a string value can still be a valid journal
    // (a different note); everything structural is caught.
    assert!(
        accepted < good.len() / 2,
        "{accepted} of {} accepted",
        good.len()
    );
}

#[test]
fn spliced_journals_never_panic() {
    let good = real_journal();
    let mut rng = Rng(7);
    for _ in 0..5_000 {
        let a = rng.below(good.len());
        let b = rng.below(good.len());
        let (lo, hi) = (a.min(b), a.max(b));
        let mut spliced = good[..lo].to_vec();
        spliced.extend_from_slice(&good[hi..]);
        let _ = check(&spliced);
    }
}

#[test]
fn a_newer_version_is_named_as_such() {
    let good = String::from_utf8(real_journal()).unwrap();
    let newer = good.replace("\"format_version\": 2", "\"format_version\": 9");
    assert_eq!(decode(newer.as_bytes()), Err(Decode::Newer(9)));
}

#[test]
fn a_stale_temporary_file_beside_a_journal_is_ignored() {
    let env = common::Env::new("demo");
    let journal = env.stopped_run("demo-app", "cutover");
    // What a crash between write and rename leaves: a half-written temp.
    let name = journal.file_name().unwrap().to_str().unwrap().to_string();
    let dir = journal.parent().unwrap();
    std::fs::write(dir.join(format!(".{name}.tmp")), b"{\"format\": \"pgmig").unwrap();
    env.run(&["status", "-a", "demo-app"])
        .ok()
        .stdout_has("stopped");
    env.run(&["resume", "-a", "demo-app", "--confirm", "demo-app"])
        .ok();
}

#[test]
fn a_journal_corrupted_in_the_middle_is_refused_and_left_alone() {
    let env = common::Env::new("demo");
    let path = env.stopped_run("demo-app", "cutover");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 8].copy_from_slice(b"\0\0\0\0\0\0\0\0");
    std::fs::write(&path, &bytes).unwrap();
    for verb in ["status", "resume", "rollback"] {
        let mut args = vec![verb, "-a", "demo-app"];
        if verb != "status" {
            args.extend(["--confirm", "demo-app"]);
        }
        env.run(&args).code(1).stderr_has("is damaged");
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
}
