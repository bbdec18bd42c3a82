//! Asking the official CLI for the token: `heroku auth:token`. Heroku CLI 11
//! keeps the token in the OS keychain (macOS, Windows, most Linux
//! desktops), where only the CLI reads it, so `~/.netrc` is often empty;
//! `heroku auth:token` prints it whatever the storage.
//!
//! The command runs with stdin closed (it cannot prompt), its own process
//! group, and a time limit after which the whole group is killed. Its
//! output is never printed or logged: stdout is the token; of stderr only
//! one cleaned, redacted line goes into the "no token" explanation.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::token::Token;

/// How long `heroku auth:token` may take (it normally answers in about a
/// second; a first run may update itself).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The most of each output stream that is read.
const MAX_OUTPUT: u64 = 64 * 1024;

/// The first `heroku` executable on `path` (a `PATH` value). Empty and
/// relative entries are skipped: they name the current directory, and a
/// `heroku` there is not one the user installed.
pub fn find_heroku(path: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("heroku"))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Runs `exe auth:token` and returns the token it prints, or why there is
/// none (a sentence for [`super::ConfigError::NoToken`], without the
/// token).
pub fn auth_token(exe: &Path, timeout: Duration) -> Result<Token, String> {
    let shown = format!("`{} auth:token`", exe.display());
    let mut command = Command::new(exe);
    command
        .arg("auth:token")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own group, so that a timeout kills what it started too.
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("{shown} could not be started ({e})"))?;
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    for (is_stdout, stream) in [
        (
            true,
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![];
            if let Some(stream) = stream {
                let _ = stream.take(MAX_OUTPUT).read_to_end(&mut buf);
            }
            let _ = tx.send((is_stdout, buf));
        });
    }
    drop(tx);

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not answer within {} s and was stopped",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(format!("{shown} could not be waited for ({e})"));
            }
        }
    };
    // The streams close when the command exits (unless something it left
    // behind holds them: then what arrived within a second is used).
    let (mut stdout, mut stderr) = (vec![], vec![]);
    let until = Instant::now() + Duration::from_secs(1);
    for _ in 0..2 {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, bytes)) => stdout = bytes,
            Ok((false, bytes)) => stderr = bytes,
            Err(_) => break,
        }
    }
    let stdout = String::from_utf8_lossy(&stdout);
    let candidate = stdout.trim();
    if !status.success() {
        let code = status.code().map_or_else(
            || "killed by a signal".to_string(),
            |c| format!("exit status {c}"),
        );
        return Err(format!(
            "{shown} failed ({code}){}",
            stderr_summary(&stderr, candidate)
        ));
    }
    if candidate.is_empty() {
        return Err(format!(
            "{shown} printed no token (not logged in?){}",
            stderr_summary(&stderr, candidate)
        ));
    }
    if candidate
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{shown} printed something that is not a single token"
        ));
    }
    Ok(Token::new(candidate))
}

/// One line of what the command said on stderr: its last non-empty line,
/// without terminal escapes or control characters, without anything that
/// looks like a credential or the token, and cut at 160 characters.
fn stderr_summary(stderr: &[u8], token: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let Some(line) = text
        .lines()
        .rev()
        .map(strip_escapes)
        .find(|l| !l.trim().is_empty())
    else {
        return String::new();
    };
    let mut line = crate::secrets::redact(line.trim());
    if !token.is_empty() {
        line = line.replace(token, "REDACTED");
    }
    if line.chars().count() > 160 {
        line = line.chars().take(160).collect::<String>() + "...";
    }
    format!(": it said {line:?}")
}

/// Removes ANSI escape sequences (`ESC [ ... letter`) and other control
/// characters.
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

#[cfg(unix)]
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // child leads (it was started with process_group(0)); no memory is
        // involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

#[cfg(not(unix))]
fn kill_group(child: &mut std::process::Child) {
    let _ = child.kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("heroku");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    #[cfg(unix)]
    fn finds_only_absolute_executables() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("heroku"), "not executable").unwrap();
        let path = std::env::join_paths([other.as_path(), bin.as_path()]).unwrap();
        let path = path.to_str().unwrap();
        assert_eq!(find_heroku(path), None);
        let exe = script(&bin, "echo t");
        assert_eq!(find_heroku(path), Some(exe));
        assert_eq!(find_heroku(&format!(".:{}", other.display())), None);
        assert_eq!(find_heroku(""), None);
    }

    #[test]
    #[cfg(unix)]
    fn reads_the_token_and_explains_failures_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let exe = script(
            dir.path(),
            "[ \"$1\" = auth:token ] || exit 9\necho '  tok-123  '",
        );
        assert_eq!(auth_token(&exe, TIMEOUT).unwrap().expose(), "tok-123");

        let exe = script(
            dir.path(),
            "echo half-token\nprintf '\\033[31m ›   Error: not logged in\\033[0m\\n' >&2\nexit 1",
        );
        let e = auth_token(&exe, TIMEOUT).unwrap_err();
        assert!(e.contains("exit status 1"), "{e}");
        assert!(e.contains("Error: not logged in"), "{e}");
        assert!(!e.contains('\u{1b}') && !e.contains("half-token"), "{e}");

        let exe = script(dir.path(), "echo >&2 'a warning'\nexit 0");
        let e = auth_token(&exe, TIMEOUT).unwrap_err();
        assert!(e.contains("printed no token"), "{e}");

        let exe = script(dir.path(), "echo 'two words'");
        let e = auth_token(&exe, TIMEOUT).unwrap_err();
        assert!(
            e.contains("not a single token") && !e.contains("two"),
            "{e}"
        );

        // Stdin is closed: a command that reads it gets EOF, not a hang.
        let exe = script(dir.path(), "read line || echo from-eof");
        assert_eq!(auth_token(&exe, TIMEOUT).unwrap().expose(), "from-eof");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_hanging_command_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let exe = script(
            dir.path(),
            &format!("sleep 300 &\necho $! > {}\nwait", pidfile.display()),
        );
        let e = auth_token(&exe, Duration::from_millis(500)).unwrap_err();
        assert!(e.contains("did not answer within"), "{e}");
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let pid: i32 = pid.trim().parse().unwrap();
        // The background `sleep` was in the group: it is gone (or a zombie
        // about to be reaped by init), not sleeping on.
        let mut gone = false;
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "the command's child {pid} still runs");
    }
}
