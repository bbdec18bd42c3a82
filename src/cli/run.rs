//! `run` (a new migration), `resume` (continue the unfinished one) and
//! `rollback` (undo the latest one): the commands that change the app.

use std::time::Instant;

use super::args::{ask, client, confirm, confirmed, home, migration, resolve_app, settings};
use super::command::{ResumeArgs, RollbackArgs, RunArgs};
use super::plan::plan;
use super::render::{print_plan, print_rolled_back, print_summary, PlanView, Printer};
use crate::error::Error;
use crate::methods::choose::Choice;
use crate::methods::preflight::PreflightReading;
use crate::methods::session::{self, RunRequest, Session};

pub(super) fn run(a: RunArgs) -> Result<(), Error> {
    if a.dry_run {
        return plan(&a.what, false);
    }
    let (app, options) = migration(&a.what)?;
    let home = home()?;
    let client = client()?;
    let confirmed = confirmed("pgmigrate run", &app, &a.confirm)?;
    let mut s = settings(&a.timeouts)?;
    s.force = a.what.force;
    s.stop_before = a.stop_before;
    let request = RunRequest {
        app: app.clone(),
        options: options.clone(),
        method: a.what.method,
        restore_formation: a.restore_formation.clone().map(|f| f.0),
    };
    // The plan is shown before the app name is asked for (or, with
    // --confirm, before anything changes), as `terraform apply` does.
    let approve = |reading: &PreflightReading, choice: &Choice| {
        print_plan(&app, &options, reading, choice, PlanView::Confirm);
        if confirmed {
            Ok(())
        } else {
            ask("pgmigrate run", &app)
        }
    };
    let out = Printer::new();
    let started = Instant::now();
    let journal = session::start(&client, &home, &request, s, &out, &approve)?;
    print_summary(&journal, started.elapsed(), client.request_count());
    Ok(())
}

pub(super) fn resume(a: ResumeArgs) -> Result<(), Error> {
    let app = resolve_app(&a.app)?;
    let home = home()?;
    let client = client()?;
    confirm("pgmigrate resume", &app, &a.confirm)?;
    let mut s = settings(&a.timeouts)?;
    s.force = a.force;
    let out = Printer::new();
    let started = Instant::now();
    let mut m = Session::open(&client, &home, &app, "resume", s, &out)?;
    if let Some(mode) = a.verify {
        m.set_verify(mode)?;
    }
    let journal = m.resume()?;
    print_summary(&journal, started.elapsed(), client.request_count());
    Ok(())
}

pub(super) fn rollback(a: RollbackArgs) -> Result<(), Error> {
    let app = resolve_app(&a.app)?;
    let home = home()?;
    let client = client()?;
    confirm("pgmigrate rollback", &app, &a.confirm)?;
    let mut s = settings(&a.timeouts())?;
    s.force = a.force;
    s.keep_target = a.keep_target;
    let out = Printer::new();
    let mut m = Session::open(&client, &home, &app, "rollback", s, &out)?;
    let journal = m.rollback()?;
    // What is printed is what the live app shows, not what the journal
    // hoped for: after `--force` past drift the two can differ.
    // A failed look does not undo the rollback: it is said, and the
    // command still did what it was asked.
    let differences = m.differences_after_rollback();
    print_rolled_back(&journal, differences.as_deref().map_err(|e| e.to_string()));
    Ok(())
}
