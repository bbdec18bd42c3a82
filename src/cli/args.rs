//! Raw arguments and the environment turned into checked values, once:
//! the app (from `--app`, `HEROKU_APP` or the git remote), the
//! confirmation, the run options, settings and timeouts, and the Heroku
//! client and journal home the commands work with.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::command::{AppArg, ConfirmArg, MigrationArgs, Timeouts};
use crate::decisions;
use crate::error::Error;
use crate::heroku::{token_from_env, Client, Endpoints, RetryPolicy};
use crate::journal::RunOptions;
use crate::methods::steps::wait_target::WAIT_STATUS_404_FOR;
use crate::methods::Settings;
use crate::store::Home;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
}

/// `--app`, else `HEROKU_APP`, else the one Heroku git remote of the
/// current repository, as the official CLI does; validated.
pub(super) fn resolve_app(arg: &AppArg) -> Result<String, Error> {
    let app = match arg
        .app
        .clone()
        .or_else(|| env("HEROKU_APP").filter(|s| !s.is_empty()))
    {
        Some(app) => app,
        None => app_from_git()?,
    };
    if !decisions::valid_app_name(&app) {
        return Err(Error::Usage(format!(
            "`{app}` is not a valid Heroku app name: app names are 3 to 30 characters, lower-case \
             letters, digits and dashes, starting with a letter; check it with `heroku apps`"
        )));
    }
    Ok(app)
}

/// The app named by the current repository's Heroku git remotes.
fn app_from_git() -> Result<String, Error> {
    let none = || Error::Usage("no app given: pass --app APP (or set HEROKU_APP)".into());
    let out = std::process::Command::new("git")
        .args(["remote", "-v"])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|_| none())?;
    if !out.status.success() {
        return Err(none());
    }
    let apps = heroku_apps_in_remotes(&String::from_utf8_lossy(&out.stdout));
    match apps.as_slice() {
        [] => Err(none()),
        [one] => Ok(one.clone()),
        many => Err(Error::Usage(format!(
            "this repository has git remotes for several Heroku apps ({}): pass --app APP",
            many.join(", ")
        ))),
    }
}

/// The distinct app names in `git remote -v` output whose URL is
/// `https://git.heroku.com/<app>.git` or `git@heroku.com:<app>.git`.
pub fn heroku_apps_in_remotes(text: &str) -> Vec<String> {
    let mut apps: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|url| {
            url.strip_prefix("https://git.heroku.com/")
                .or_else(|| url.strip_prefix("git@heroku.com:"))
                .and_then(|rest| rest.strip_suffix(".git"))
                .map(str::to_string)
        })
        .collect();
    apps.sort();
    apps.dedup();
    apps
}

pub(super) fn client() -> Result<Client, Error> {
    let endpoints = Endpoints::from_env(&env)?;
    let token = token_from_env(&env, home_dir().as_deref(), &endpoints.netrc_machine())?;
    Ok(Client::new(endpoints, token, retry_policy()?))
}

/// The retry policy, with the limits `PGMIGRATE_HTTP_TIMEOUT` (one
/// request) and `PGMIGRATE_RETRY_FOR` (all retries of one call), in
/// seconds, when set.
fn retry_policy() -> Result<RetryPolicy, Error> {
    let mut p = RetryPolicy::default();
    if let Some(d) = env_secs("PGMIGRATE_HTTP_TIMEOUT", MAX_HTTP_TIMEOUT)? {
        p.request_timeout = d;
    }
    if let Some(d) = env_secs("PGMIGRATE_RETRY_FOR", MAX_RETRY_FOR)? {
        p.max_elapsed = d;
    }
    Ok(p)
}

/// The largest `PGMIGRATE_HTTP_TIMEOUT`: an hour for one request.
const MAX_HTTP_TIMEOUT: u64 = 3600;
/// The largest `PGMIGRATE_RETRY_FOR` and `PGMIGRATE_WAIT_STATUS_404_FOR`:
/// a day.
const MAX_RETRY_FOR: u64 = 86_400;
/// The smallest number of seconds a setting takes (a millisecond).
const MIN_SECS: f64 = 0.001;

/// An environment variable holding a number of seconds from a
/// millisecond to `max`, if set. Anything else (not a number, zero,
/// negative, infinite, beyond `max`) is a usage error naming the variable
/// and the range: a duration too large to add to the clock must never
/// reach it (that panics).
fn env_secs(name: &str, max: u64) -> Result<Option<Duration>, Error> {
    match env(name) {
        None => Ok(None),
        Some(v) => secs_in_range(&v, max).map(Some).ok_or_else(|| {
            Error::Usage(format!(
                "{name}={v:?} is not a usable number of seconds: set it to a number from \
                 {MIN_SECS} to {max} (e.g. 30), or unset it"
            ))
        }),
    }
}

/// `text` as seconds from [`MIN_SECS`] to `max`.
fn secs_in_range(text: &str, max: u64) -> Option<Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= MIN_SECS && *s <= max as f64)
        .map(Duration::from_secs_f64)
}

pub(super) fn home() -> Result<Home, Error> {
    Home::from_env(&env)
}

/// Check `--confirm`, or ask on a terminal; refuse without either.
pub(super) fn confirm(what: &str, app: &str, given: &ConfirmArg) -> Result<(), Error> {
    if confirmed(what, app, given)? {
        return Ok(());
    }
    ask(what, app)
}

/// Whether `--confirm` answers the confirmation (`false`: a person must be
/// asked on the terminal); refuses a wrong `--confirm`, or no terminal to
/// ask on. Nothing is read from the app before this.
pub(super) fn confirmed(what: &str, app: &str, given: &ConfirmArg) -> Result<bool, Error> {
    if let Some(c) = &given.confirm {
        if c == app {
            return Ok(true);
        }
        return Err(Error::Usage(format!(
            "--confirm {c} does not match the app {app}: pass --confirm {app}"
        )));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::NotConfirmed {
            what: what.to_string(),
            app: app.to_string(),
        });
    }
    Ok(false)
}

/// Ask on the terminal for the app's name.
pub(super) fn ask(what: &str, app: &str) -> Result<(), Error> {
    let mut out = std::io::stdout();
    let _ = write!(
        out,
        "{what} will change the app {app}.\nType the app name to confirm: "
    );
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::Usage(format!("cannot read the confirmation: {e}")))?;
    if line.trim() == app {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "confirmation `{}` does not match {app}; nothing was changed",
            line.trim()
        )))
    }
}

pub(super) fn settings(t: &Timeouts) -> Result<Settings, Error> {
    Ok(Settings {
        provision_timeout: Duration::from_secs(t.provision_timeout),
        // For tests: Heroku's budget is that of `heroku pg:wait`.
        wait_status_404_for: env_secs("PGMIGRATE_WAIT_STATUS_404_FOR", MAX_RETRY_FOR)?
            .unwrap_or(WAIT_STATUS_404_FOR),
        drain_timeout: Duration::from_secs(t.drain_timeout),
        copy_stall_timeout: Duration::from_secs(t.copy_stall_timeout),
        interrupt: Some(interrupt_flag()),
        ..Settings::default()
    })
}

/// Ctrl-C, SIGTERM and SIGQUIT set a flag that the executor checks at
/// every resumable point (the request in flight finishes and is journaled
/// first). A second signal exits at once with status 130: the journal
/// already covers everything sent.
///
/// SIGHUP (the terminal closed, the ssh session lost) is caught and
/// otherwise ignored, as under `nohup`: the run goes on to the end, its
/// output to the lost terminal discarded (every print ignores write
/// errors), and `status` from another terminal shows it holding the lock.
pub(super) fn interrupt_flag() -> Arc<AtomicBool> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGQUIT] {
        let second = signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone());
        let first = signal_hook::flag::register(signal, flag.clone());
        if let Err(e) = second.and(first) {
            tracing::warn!("cannot handle signal {signal}: {e}");
        }
    }
    if let Err(e) = signal_hook::flag::register(SIGHUP, Arc::new(AtomicBool::new(false))) {
        tracing::warn!("cannot handle signal {SIGHUP}: {e}");
    }
    flag
}

/// The app and run options from the command line, checked.
pub(super) fn migration(what: &MigrationArgs) -> Result<(String, RunOptions), Error> {
    let app = resolve_app(&what.app)?;
    let options = RunOptions {
        to_plan: decisions::normalise_plan(what.to.as_deref().ok_or_else(|| {
            Error::Usage(format!(
                "no target plan: pass --to PLAN (e.g. `--to standard-0`); pgmigrate never picks \
                 one for you. `heroku addons:plans heroku-postgresql` lists the plans, and \
                 `pgmigrate plan --app {app} --to PLAN` shows what a move would do"
            ))
        })?)
        .map_err(Error::Usage)?,
        from_attachment: what.from.clone(),
        verify: what.verify,
    };
    Ok((app, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_out_of_range_are_refused_not_panicking() {
        assert_eq!(secs_in_range("30", 3600), Some(Duration::from_secs(30)));
        assert_eq!(
            secs_in_range(" 0.5 ", 3600),
            Some(Duration::from_millis(500))
        );
        assert_eq!(secs_in_range("3600", 3600), Some(Duration::from_secs(3600)));
        for bad in [
            "3601",
            "1e300",
            "1e20",
            "18446744073709551616",
            "inf",
            "NaN",
            "-1",
            "0",
            "0.0001",
            "",
            "thirty",
            "1e-320",
        ] {
            assert_eq!(secs_in_range(bad, 3600), None, "{bad}");
        }
    }
}
