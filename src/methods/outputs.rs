//! What steps record as their outputs in the journal (`steps[].output`),
//! and the accessors later steps and `status` read them with. The field
//! names are part of the journal format (`journal-format.md`), and a v1
//! journal's `results` are upgraded into these same shapes.

use serde::{Deserialize, Serialize};

use crate::journal::Journal;

/// Step ids shared by every method's plan.
pub mod id {
    pub const PREFLIGHT: &str = "preflight";
    pub const CREATE_TARGET: &str = "create-target";
    pub const CREATE_FOLLOWER: &str = "create-follower";
    pub const WAIT_TARGET: &str = "wait-target";
    pub const ALIAS_SOURCE: &str = "alias-source";
    pub const MAINTENANCE_ON: &str = "maintenance-on";
    pub const SCALE_DOWN: &str = "scale-down";
    pub const WAIT_DYNOS: &str = "wait-dynos";
    pub const PROMOTE_TARGET: &str = "promote-target";
    pub const REPOINT_POOL: &str = "repoint-pool";
    pub const REBIND_CONFIG: &str = "rebind-config";
    pub const SCALE_UP: &str = "scale-up";
    pub const MAINTENANCE_OFF: &str = "maintenance-off";
    /// Comparing the two databases (`--verify`): a resumed run with
    /// another mode runs it again.
    pub const VERIFY: &str = "verify";
}

/// `create-target`: the new add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedAddon {
    pub addon_id: String,
}

/// `wait-target`: the new database's URL, as a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provisioned {
    pub url_fingerprint: Option<String>,
}

/// `alias-source`: the old database's second attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub id: String,
    pub name: String,
}

/// `maintenance-on` / `maintenance-off`: when (the ends of the window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switched {
    pub at: String,
}

/// `scale-down`: each process type's `updated_at` as the scale-down left
/// it, so that a later change (someone scaling back up, even if down
/// again) is seen before the cut-over. Absent in journals of earlier
/// releases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaledDown {
    pub formation_updated_at: std::collections::BTreeMap<String, String>,
}

impl ScaledDown {
    pub fn of(formation: &[crate::heroku::types::Formation]) -> ScaledDown {
        ScaledDown {
            formation_updated_at: formation
                .iter()
                .filter_map(|f| Some((f.process_type.clone(), f.updated_at.clone()?)))
                .collect(),
        }
    }
}

/// The shared steps that create the new add-on: a plan with none of them
/// changes the database in place.
pub const CREATES: [&str; 2] = [id::CREATE_TARGET, id::CREATE_FOLLOWER];

/// Whether the run changes the source add-on in place: its plan has no
/// step that creates an add-on (the journal lists every step of its plan).
pub fn in_place(j: &Journal) -> bool {
    !j.log.steps.iter().any(|r| CREATES.contains(&r.id.as_str()))
}

/// The new database's add-on id, once known: the add-on created (a copy's
/// target, a follower), or, for a change in place, the source add-on
/// itself (its database is replaced under the same add-on).
pub fn target_id(j: &Journal) -> Option<String> {
    if in_place(j) {
        return j.facts.as_ref().map(|f| f.source.id.clone());
    }
    CREATES
        .iter()
        .find_map(|s| j.log.output::<CreatedAddon>(s))
        .map(|c| c.addon_id)
}

/// The name of the add-on the run moves the database to: the one it
/// creates, or, in place, the source itself.
pub fn target_name(j: &Journal) -> String {
    match (in_place(j), j.facts.as_ref()) {
        (true, Some(f)) => f.source.name.clone(),
        _ => j.target.addon_name.clone(),
    }
}

/// The old database's alias attachment, once known.
pub fn alias(j: &Journal) -> Option<AttachmentRecord> {
    j.log.output(id::ALIAS_SOURCE)
}

/// When maintenance went on and off, where known.
pub fn window(j: &Journal) -> (Option<String>, Option<String>) {
    let at = |id: &str| j.log.output::<Switched>(id).map(|s| s.at);
    (at(id::MAINTENANCE_ON), at(id::MAINTENANCE_OFF))
}
