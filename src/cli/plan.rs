//! `plan` (and `run --dry-run`): what `run` would do, reading the app only.

use super::args::{client, migration};
use super::render::{plan_json, print_json, print_plan};
use super::MigrationArgs;
use crate::error::Error;
use crate::methods::preflight::{decide, preflight};

pub(super) fn plan(what: &MigrationArgs, json: bool) -> Result<(), Error> {
    let (app, options) = migration(what)?;
    let client = client()?;
    let reading = preflight(&client, &app, &options, what.force)?;
    let choice = decide(&app, &options, &reading, what.method)?;
    if json {
        print_json(&plan_json(&app, &options, &reading, &choice));
    } else {
        print_plan(&app, &options, &reading, &choice);
    }
    Ok(())
}
