//! `status` (where the app's latest migration stands, or every run with
//! `--all`) and `list` (every journaled run of every app).

use super::args::{home, resolve_app};
use super::command::StatusArgs;
use super::render::{print_json, print_report, print_runs};
use crate::error::Error;
use crate::journal::writer::{latest, load_path};
use crate::status;
use crate::store::lock::current_holder;
use crate::store::Home;

pub(super) fn list(json: bool) -> Result<(), Error> {
    list_runs(&home()?, None, json)
}

/// Every journaled run (of one app, or of all), newest first.
fn list_runs(home: &Home, only: Option<&str>, json: bool) -> Result<(), Error> {
    let apps = match only {
        Some(app) => vec![app.to_string()],
        None => home.apps()?,
    };
    let mut runs = Vec::new();
    for app in apps {
        for id in home.run_ids(&app)? {
            let path = home.journal_path(&app, &id);
            runs.push(status::summarize(&load_path(&path)?));
        }
    }
    runs.sort_by(|x, y| y.run_id.cmp(&x.run_id));
    print_runs(home.root(), &runs, json);
    Ok(())
}

pub(super) fn status(a: StatusArgs) -> Result<(), Error> {
    let home = home()?;
    if a.all {
        let only = match &a.app.app {
            Some(_) => Some(resolve_app(&a.app)?),
            None => None,
        };
        return list_runs(&home, only.as_deref(), a.json);
    }
    let app = resolve_app(&a.app)?;
    let (journal, path) = latest(&home, &app)?.ok_or_else(|| Error::NoRun {
        app: app.clone(),
        home: home.root().to_path_buf(),
    })?;
    let holder = current_holder(&home, &app);
    let report = status::report(&journal, holder, &path);
    if a.json {
        print_json(&report);
    } else {
        print_report(&report);
    }
    Ok(())
}
