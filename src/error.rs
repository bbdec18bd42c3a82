//! Every error pgmigrate reports: each names what went wrong, keeps its
//! cause in `source()`, says what to do next, and knows its exit status.

use std::path::PathBuf;

use crate::heroku::{ApiError, ConfigError};
use crate::holder::Holder;

/// Exit statuses (documented in the README).
pub mod exit {
    /// The command did what it was asked.
    pub const OK: u8 = 0;
    /// It failed; nothing is half-done (or it was not a run).
    pub const FAILED: u8 = 1;
    /// The command line or the environment is wrong; nothing was changed.
    pub const USAGE: u8 = 2;
    /// A run or rollback stopped at a resumable point: see `status`.
    pub const STOPPED: u8 = 3;
    /// Another pgmigrate process holds the app's lock.
    pub const LOCKED: u8 = 4;
    /// The app has an unfinished run: resume or roll it back first.
    pub const UNFINISHED: u8 = 5;
    /// A run or rollback stopped because its journal could not be written,
    /// or because another process removed or replaced its lock or changed
    /// its journal: the app may be changed, and the message says how.
    pub const JOURNAL_LOST: u8 = 6;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input found before anything was sent.
    #[error("{0}")]
    Usage(String),

    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The app is not fit to migrate; nothing was changed.
    #[error("{problem}\n  help: {fix}\n  Nothing was changed on the app.")]
    Preflight { problem: String, fix: String },

    /// A Heroku request failed outside a run's steps (nothing changed).
    #[error(
        "{context}: {source}\n  help: this command changed nothing. {}",
        api_help(source)
    )]
    Api {
        context: String,
        #[source]
        source: Box<ApiError>,
    },

    #[error(
        "another pgmigrate process holds the lock for {app}{}\n  help: wait for it to finish, or \
         check it with `pgmigrate status --app {app}`. The lock is {}; it frees itself when that \
         process exits.",
        holder.as_ref().map(|h| format!(": {h}")).unwrap_or_default(),
        path.display()
    )]
    Locked {
        app: String,
        holder: Option<Box<Holder>>,
        path: PathBuf,
    },

    #[error(
        "{app} has an unfinished migration (run {run_id}, {state}).\n  help: see where it stands \
         with `pgmigrate status --app {app}`, then finish it with `pgmigrate resume --app {app}` \
         or undo it with `pgmigrate rollback --app {app}`."
    )]
    Unfinished {
        app: String,
        run_id: String,
        state: String,
    },

    #[error(
        "the journal {} is damaged: {problem}.\n  help: pgmigrate will not guess what a damaged \
         journal said. Keep the file; check the app by hand (`heroku addons`, `heroku config`, \
         `heroku ps`, `heroku maintenance`) against journal-format.md.",
        path.display()
    )]
    JournalCorrupt { path: PathBuf, problem: String },

    #[error(
        "the journal {} was written by a newer pgmigrate (format version {version}; this one \
         reads {reads}).\n  help: use that newer pgmigrate to resume, roll back or inspect this run.",
        path.display()
    )]
    JournalNewer {
        path: PathBuf,
        version: u32,
        /// The newest format version this build reads.
        reads: u32,
    },

    #[error("cannot {action} {}: {source}\n  help: check that the directory exists and is writable, or set PGMIGRATE_HOME to one that is.", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A directory or file under the home that pgmigrate will not use (a
    /// symbolic link, another user's, writable by others); nothing changed.
    #[error(
        "refusing to use {}: {reason}.\n  help: {fix}. pgmigrate keeps its journals and locks \
         only in directories private to you (as ssh does with ~/.ssh). Nothing was changed.",
        path.display()
    )]
    UnsafeHome {
        path: PathBuf,
        reason: String,
        fix: String,
    },

    /// The journal of a run under way could not be written, or another
    /// process took its lock or changed it: the run stopped at once,
    /// without writing its view over the other's.
    #[error(
        "{app}: {what} stopped because its journal {} {problem}.\n  The app may be in the \
         middle of the migration. What this run knew when it stopped:\n{state}\n  help: check \
         the app with `heroku maintenance`, `heroku ps` and `heroku addons`; if another \
         pgmigrate is working on {app}, leave it to that one. Otherwise put the journal back \
         (or fix the disk) and run `pgmigrate status --app {app}`, or put the app back by hand \
         as above.",
        path.display()
    )]
    JournalLost {
        /// "the run" or "the rollback".
        what: &'static str,
        app: String,
        path: PathBuf,
        /// What happened to the journal or the lock, in words.
        problem: String,
        /// The app's state as the run last journaled it, and the way back
        /// by hand, one indented line each (filled in by the methods).
        state: String,
    },

    #[error("{what} changes the app {app}; confirm with --confirm {app} (no terminal to ask on).")]
    NotConfirmed { what: String, app: String },

    /// A run or rollback stopped before it finished; the journal is at a
    /// resumable point.
    #[error(
        "{verb} of {app} stopped {}: {reason}\n  The app is {app_state}.\n  The journal \
         ({run_id}) is at a resumable point; nothing is lost.\n  help: `pgmigrate status --app \
         {app}` shows where it stands; {}",
        if *asked { format!("before step {step}") } else { format!("at step {step}") },
        stopped_help(verb, app)
    )]
    Stopped {
        verb: &'static str,
        app: String,
        run_id: String,
        /// The id of the step it stopped at.
        step: Box<str>,
        reason: Box<str>,
        /// Where the app stands (down since when, or up), in words.
        app_state: Box<str>,
        /// Stopped as asked (`--stop-before`): not an error.
        asked: bool,
    },

    /// `resume` or `rollback` refused by the state of the run or of the
    /// app (past a point of no return, nothing left to do, the app changed
    /// outside pgmigrate), before changing anything. Not bad input (the
    /// command line was right), so not exit 2: the command failed having
    /// changed nothing.
    #[error("{message}\n  Nothing was changed on the app.")]
    Refused { message: String },

    #[error("no migration of {app} is journaled in {}\n  help: start one with `pgmigrate run --app {app} --to PLAN`, or set PGMIGRATE_HOME to where its journals are.", home.display())]
    NoRun { app: String, home: PathBuf },

    #[error("the sandbox failed: {0}")]
    Sandbox(String),

    /// A bug in pgmigrate caught before it could write a false journal.
    #[error("internal error: {0}\n  help: this is a bug in pgmigrate; the journal was left as it was. Please report it with `pgmigrate status --json`.")]
    Internal(String),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config(_) | Error::NotConfirmed { .. } => exit::USAGE,
            Error::Stopped { .. } => exit::STOPPED,
            Error::Locked { .. } => exit::LOCKED,
            Error::Unfinished { .. } => exit::UNFINISHED,
            Error::UnsafeHome { .. } => exit::USAGE,
            Error::JournalLost { .. } => exit::JOURNAL_LOST,
            _ => exit::FAILED,
        }
    }
}

impl Error {
    /// A stop the person asked for (`--stop-before`): reported as such,
    /// not as an error (its exit status is still "stopped").
    pub fn is_asked_stop(&self) -> bool {
        matches!(self, Error::Stopped { asked: true, .. })
    }
}

/// The next commands after a run or a rollback stopped.
fn stopped_help(verb: &str, app: &str) -> String {
    if verb == ROLLBACK_VERB {
        format!("`pgmigrate rollback --app {app} --confirm {app}` carries the rollback on.")
    } else {
        format!(
            "`pgmigrate resume --app {app} --confirm {app}` carries on, `pgmigrate rollback \
             --app {app} --confirm {app}` undoes it."
        )
    }
}

/// [`Error::Stopped`]'s `verb` for a rollback.
pub const ROLLBACK_VERB: &str = "the rollback";

/// What to do about an API error that stopped a command before it changed
/// anything.
fn api_help(e: &ApiError) -> &'static str {
    if e.is_transient() {
        "Heroku did not answer normally (an outage or the rate limit, see \
         https://status.heroku.com); run the same command again in a few minutes"
    } else {
        "Fix what Heroku reports above, then run the same command again"
    }
}

/// Describe an API error for a person: method, path, status, Heroku's error
/// id and message, Request-Id (the API error's own text), redacted.
pub fn describe_api(e: &ApiError) -> String {
    crate::secrets::redact(&e.to_string())
}
