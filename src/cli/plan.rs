//! `plan` (and `run --dry-run`): what `run` would do, reading the app only.
//! A refusal found once the app was read (a pooler with an Essential
//! target, an impossible `--method`…) still shows every method judged,
//! then the refusal, and exits as `run` would.

use std::io::Write;

use super::args::{client, migration};
use super::command::MigrationArgs;
use super::render::{plan_json, print_json, print_plan, render_methods, PlanView};
use crate::error::Error;
use crate::methods::choose::decide;
use crate::methods::choose::Wanted;
use crate::methods::preflight::{read, Allow};

pub(super) fn plan(what: &MigrationArgs, json: bool) -> Result<(), Error> {
    let (app, options) = migration(what)?;
    let client = client()?;
    let allow = Allow {
        force: what.force,
        restore_formation: None,
    };
    let mut reading = read(&client, &app, &options, &allow)?;
    let refusal = reading.refusal.take();
    let choice = decide(&app, &options, &reading, what.method);
    let refusal = match (refusal, choice) {
        (None, Ok(choice)) => {
            if json {
                print_json(&plan_json(&app, &options, &reading, &choice));
            } else {
                print_plan(
                    &app,
                    &options,
                    &reading,
                    &choice,
                    PlanView::Plan { force: what.force },
                );
            }
            return Ok(());
        }
        (Some(e), _) | (None, Err(e)) => e,
    };
    // What every method would be, had nothing refused: auto never refuses.
    if !json {
        if let Ok(all) = decide(&app, &options, &reading, Wanted::Auto) {
            out!(
                "Plan for {app} (read only: nothing was changed): refused, see below\n\n{}",
                render_methods(&all)
            );
        }
    }
    Err(refusal)
}
