//! `run` (a new migration), `resume` (continue the unfinished one) and
//! `rollback` (undo the latest one): the commands that change the app.

use std::time::Instant;

use super::args::{client, confirm, home, migration, resolve_app, settings};
use super::plan::plan;
use super::render::{print_rolled_back, print_summary, Printer};
use super::{ResumeArgs, RollbackArgs, RunArgs};
use crate::error::Error;
use crate::methods::session::{self, RunRequest, Session};

pub(super) fn run(a: RunArgs) -> Result<(), Error> {
    if a.dry_run {
        return plan(&a.what, false);
    }
    let (app, options) = migration(&a.what)?;
    let home = home()?;
    let client = client()?;
    confirm("pgmigrate run", &app, &a.confirm)?;
    let mut s = settings(&a.timeouts)?;
    s.force = a.what.force;
    s.stop_before = a.stop_before;
    let request = RunRequest {
        app: app.clone(),
        options,
        method: a.what.method,
    };
    let out = Printer::new();
    let started = Instant::now();
    let journal = session::start(&client, &home, &request, s, &out)?;
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
    print_rolled_back(&journal);
    Ok(())
}
