//! One migration per app, across machines. The local lock cannot see a run
//! started from another machine (another `PGMIGRATE_HOME`), so the app on
//! Heroku must tell:
//!
//! - a run under way has a target add-on attached only as
//!   `PGMIGRATE_<ID>` (the attachment it is created with; a completed run
//!   removes it, see `journal-format.md`): preflight refuses while another
//!   one exists;
//! - two runs that passed preflight at the same moment both create a
//!   target. Before it takes the app down (maintenance on, or the scale-down
//!   when maintenance was already on), each run lists the app's add-ons:
//!   the run whose target is not the first by creation (`created_at`, then
//!   the add-on's name) loses, stops, and removes its own target. Both look
//!   only after their own target was provisioned, so each sees the other's
//!   (a run whose create request comes later sees an earlier target and
//!   loses), and both order the same set the same way.

use crate::engine::StepError;
use crate::heroku::types::{Addon, Attachment};
use crate::heroku::Client;
use crate::journal::Journal;
use crate::methods::{facts, read_error, Ctx};

/// The start of the note of a run that found another one first.
pub const LOST_RACE: &str = "another migration of this app started at the same moment";

/// The attachment name prefix of a run's target (`PGMIGRATE_<ID>`).
pub const PREFIX: &str = "PGMIGRATE_";

/// An add-on that is another run's target, as Heroku shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub attachment: String,
    pub created_at: Option<String>,
}

/// The targets of runs under way: add-ons other than `source` whose every
/// attachment to the app is a `PGMIGRATE_<ID>` one.
pub fn targets(addons: &[Addon], attachments: &[Attachment], source: &str) -> Vec<Target> {
    let mut found: Vec<Target> = addons
        .iter()
        .filter(|a| a.id != source)
        .filter(|a| !matches!(a.state.as_deref(), Some("deprovisioning" | "deprovisioned")))
        .filter_map(|a| {
            let mine: Vec<&Attachment> = attachments
                .iter()
                .filter(|t| t.addon_id() == Some(a.id.as_str()))
                .collect();
            let only_ours = !mine.is_empty() && mine.iter().all(|t| t.name.starts_with(PREFIX));
            only_ours.then(|| Target {
                id: a.id.clone(),
                name: a.name.clone(),
                attachment: mine[0].name.clone(),
                created_at: a.created_at.clone(),
            })
        })
        .collect();
    found.sort_by(|x, y| (&x.created_at, &x.name).cmp(&(&y.created_at, &y.name)));
    found
}

/// Read the app's add-ons and attachments and find the runs under way.
pub fn under_way(
    client: &Client,
    app: &str,
    source: &str,
) -> Result<Vec<Target>, crate::heroku::ApiError> {
    let addons = client.addons(app)?;
    let attachments = client.attachments(app)?;
    Ok(targets(&addons, &attachments, source))
}

/// Before the window: does another run's target come first? Then this run
/// lost the race: it stops (its session removes its own target). Skipped
/// by a run that created no target (an in-place change).
pub fn check(ctx: &Ctx<'_>, j: &Journal) -> Result<(), StepError> {
    let f = facts(j)?;
    let Some(own) = crate::methods::outputs::target_id(j).filter(|id| *id != f.source.id) else {
        return Ok(());
    };
    let all = under_way(ctx.client, &j.app, &f.source.id).map_err(|e| read_error(&e))?;
    match all.first() {
        Some(first) if first.id != own => Err(StepError::Definite(format!(
            "{LOST_RACE}: its target {} ({}, created {}) came first, so this run gives way \
             before taking the app down",
            first.name,
            first.attachment,
            first.created_at.as_deref().unwrap_or("at an unknown time")
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heroku::types::NamedRef;

    fn addon(id: &str, created: &str) -> Addon {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": format!("app-pgmigrate-{id}"), "created_at": created,
            "state": "provisioned"
        }))
        .unwrap()
    }

    fn att(name: &str, addon: &str) -> Attachment {
        Attachment {
            id: format!("att-{name}"),
            name: name.into(),
            addon: NamedRef {
                id: Some(addon.into()),
                name: None,
            },
            app: None,
            namespace: None,
        }
    }

    #[test]
    fn only_add_ons_attached_only_as_pgmigrate_are_runs_under_way_oldest_first() {
        let addons = [
            addon("src", "2026-01-01T00:00:00Z"),
            addon("b", "2026-01-01T00:00:05Z"),
            addon("a", "2026-01-01T00:00:05Z"),
            addon("old", "2025-01-01T00:00:00Z"),
        ];
        let atts = [
            att("DATABASE", "src"),
            att("PGMIGRATE_B", "b"),
            att("PGMIGRATE_A", "a"),
            // A kept old database: attached under another name too.
            att("PGMIGRATE_OLD", "old"),
            att("HEROKU_POSTGRESQL_RED", "old"),
        ];
        let found: Vec<String> = targets(&addons, &atts, "src")
            .into_iter()
            .map(|t| t.id)
            .collect();
        // Same second: the name decides, the same way for every run.
        assert_eq!(found, ["a", "b"]);
    }
}
