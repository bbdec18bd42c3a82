//! The Data API's `wait_status` of a database, read in one place for
//! every step that waits on it (a new add-on provisioning, a plan change,
//! a maintenance, an unfollow).
//!
//! FACT (heroku/cli src/commands/pg/wait.ts): `waiting?` true while the
//! database is not available, with a `message`; `error?` true when it
//! failed; a 404 while the Data API does not know the add-on yet (each
//! caller decides what that means for it).

use crate::engine::StepError;
use crate::methods::{read_error, Ctx};

/// What `wait_status` says of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Available.
    Ready,
    /// Not yet: Heroku's message, maybe empty.
    Waiting(String),
    /// The Data API does not know the add-on (404).
    Unknown,
}

/// Read the database's `wait_status`. An `error?` stops the step: `what`
/// names the database in the message ("the new database").
pub fn availability(ctx: &Ctx, addon_id: &str, what: &str) -> Result<Availability, StepError> {
    match ctx.client.wait_status(addon_id) {
        Ok(w) if w.error => Err(StepError::Definite(format!(
            "{what} reports an error: {}",
            w.message
        ))),
        Ok(w) if w.waiting => Ok(Availability::Waiting(w.message)),
        Ok(_) => Ok(Availability::Ready),
        Err(e) if e.is_not_found() => Ok(Availability::Unknown),
        Err(e) => Err(read_error(&e)),
    }
}
