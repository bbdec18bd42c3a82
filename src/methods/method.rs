//! What a method is to the rest of pgmigrate: one value per method folder,
//! listed in [`crate::methods::registry`]. Nothing outside the folders and
//! the registry knows a method by its name; everything asks the value.

use crate::engine::Plan;
use crate::journal::Journal;
use crate::methods::answers::Answers;
use crate::methods::judge::{MethodOption, Source};
use crate::methods::preflight::PreflightReading;
use crate::methods::Ctx;

/// What a method moves the database to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The source add-on itself: its id, name and attachments stay, no
    /// other add-on exists, and nothing is "old". Its plan (or version)
    /// is changed by Heroku.
    InPlace,
    /// A new add-on, created by the step `created_by`, which becomes
    /// DATABASE; the old one stays attached. `noun` names it for people
    /// ("add-on", "follower").
    NewAddon {
        created_by: &'static str,
        noun: &'static str,
    },
}

/// A migration method.
pub trait Method: Sync {
    /// The name journaled, given to `--method` and shown everywhere.
    fn name(&self) -> &'static str;
    /// One line for `--help` and completions.
    fn help(&self) -> &'static str;
    /// `auto`'s preference among the possible methods: lower first.
    fn rank(&self) -> u8;
    /// What the run moves the database to.
    fn target(&self) -> Target;
    /// The step that puts the app on the new database (`--stop-before
    /// cutover`).
    fn cutover(&self) -> &'static str;
    /// The plan the engine runs.
    fn plan<'a>(&self) -> Plan<Ctx<'a>, Journal>;
    /// Whether it can move this source to the plan `to`, why, and its
    /// expected downtime.
    fn judge(&self, source: &Source, to: &str) -> MethodOption;
    /// What `status` answers about a run of it.
    fn answers(&self, plan: &Plan<Ctx<'_>, Journal>, j: &Journal) -> Answers;
    /// What Heroku refuses when it refuses the method's first write, for
    /// "Heroku refused to …" ("create the follower").
    fn first_write(&self) -> &'static str;
    /// How its expected downtime grows, after the figure in `plan`.
    fn downtime_words(&self) -> &'static str {
        ", whatever the database's size"
    }
    /// What `plan` adds after the point of no return.
    fn rollback_notes(&self) -> &'static [&'static str] {
        &[]
    }
    /// The warnings of preflight that matter to it.
    fn warnings(&self, reading: &PreflightReading) -> Vec<String> {
        reading.warnings.clone()
    }
    /// Lines the summary of a completed run adds (what was copied).
    fn summary(&self, _j: &Journal) -> Vec<String> {
        Vec::new()
    }
}
