//! `plan` (and `run --dry-run`): what `run` would do, reading the app only.

use super::args::{client, migration};
use super::render::print_plan;
use super::MigrationArgs;
use crate::error::Error;
use crate::methods::preflight::preflight;

pub(super) fn plan(what: &MigrationArgs) -> Result<(), Error> {
    let (app, options) = migration(what)?;
    let client = client()?;
    let reading = preflight(&client, &app, &options, what.force)?;
    print_plan(&app, &options, &reading);
    Ok(())
}
