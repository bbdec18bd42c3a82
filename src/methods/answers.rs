//! The plain-words answers `status` gives about a run, the ones the 2012
//! plugin left to a person after an abort. Each method lists its own (see
//! [`super::answers`]); the ones every method shares are here. Pure
//! functions of the journal and the plan.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::engine::{Plan, StepState};
use crate::journal::Journal;
use crate::methods::outputs::id;
use crate::methods::{on_off, Ctx};

/// One answer: a stable machine value and the sentence for people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Answer {
    /// The key in `status --json`'s `answers` object.
    #[serde(skip)]
    pub key: &'static str,
    /// The label in the words report.
    #[serde(skip)]
    pub label: &'static str,
    pub value: &'static str,
    pub words: String,
}

pub fn answer(
    key: &'static str,
    label: &'static str,
    value: &'static str,
    words: impl Into<String>,
) -> Answer {
    Answer {
        key,
        label,
        value,
        words: words.into(),
    }
}

/// A method's answers, in the order they are shown; a JSON object by key.
#[derive(Debug, Clone, Default)]
pub struct Answers(pub Vec<Answer>);

impl Answers {
    pub fn get(&self, key: &str) -> Option<&Answer> {
        self.0.iter().find(|a| a.key == key)
    }
}

impl Serialize for Answers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for a in &self.0 {
            m.serialize_entry(a.key, a)?;
        }
        m.end()
    }
}

fn state(j: &Journal, id: &str) -> StepState {
    j.log.state(id).unwrap_or(StepState::Pending)
}

fn in_doubt<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal, id: &str) -> bool {
    state(j, id) == StepState::Running && plan.step(id).is_some_and(|s| s.has_side_effect())
}

/// The run's releases that failed although a later one was deployed
/// (only when there are some): dynos run the later one, but the failed
/// release's command did not run, and its output says why.
pub fn failed_releases(j: &Journal) -> Option<Answer> {
    let started: crate::methods::steps::scale::StartedOn = j.log.output(id::SCALE_UP)?;
    let deployed = started.release.as_ref()?;
    if started.failed.is_empty() {
        return None;
    }
    Some(answer(
        "failed_releases",
        "Failed releases",
        "failed-then-superseded",
        crate::methods::steps::releases::failed_but_superseded(&j.app, &started.failed, deployed),
    ))
}

/// Which database `<attachment>_URL` points at.
pub fn database_url<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answer {
    let from = &j.options.from_attachment;
    let a = |v, w: String| answer("database_url", "DATABASE_URL", v, w);
    match crate::methods::aspects::expected(plan, j).get("database") {
        Some(Some("new")) => a("new", format!("{from}_URL points at the new database.")),
        Some(Some(_)) | None => a("old", format!("{from}_URL points at the old database.")),
        Some(None) => a(
            "unknown",
            format!("{from}_URL may point at either database: the re-attach is in doubt."),
        ),
    }
}

/// Whether the attachment, the pooler and the other config vars were
/// rebound: `not-needed`, `none`, `partly`, `fully` or `in-doubt`.
pub fn rebinding<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answer {
    let a = |v, w: String| answer("rebinding", "Config vars", v, w);
    let from = &j.options.from_attachment;
    let parts = [id::PROMOTE_TARGET, id::REPOINT_POOL, id::REBIND_CONFIG];
    let needed: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|s| plan.step(s).is_some() && state(j, s) != StepState::Skipped)
        .collect();
    let undo = |s: &str| j.log.record(s).and_then(|r| r.undo);
    let rebound: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|s| state(j, s) == StepState::Done && undo(s) != Some(StepState::Done))
        .collect();
    let doubt = needed
        .iter()
        .any(|s| in_doubt(plan, j, s) || undo(s) == Some(StepState::Running));
    let vars = j
        .facts
        .as_ref()
        .map(|f| f.rebind_vars.join(", "))
        .unwrap_or_default();
    if doubt {
        a(
            "in-doubt",
            "A re-point of the database's config vars is in doubt (resume or rollback checks it)."
                .into(),
        )
    } else if needed.is_empty() {
        a("not-needed", "Nothing needed rebinding.".into())
    } else if rebound.is_empty() {
        a(
            "none",
            "No config var was rebound: everything still uses the old database.".into(),
        )
    } else if rebound.len() == needed.len() {
        a(
            "fully",
            format!(
                "Config vars are fully rebound to the new database ({from}{}{}).",
                if j.facts.as_ref().is_some_and(|f| f.pool.is_some()) {
                    ", DATABASE_CONNECTION_POOL"
                } else {
                    ""
                },
                if vars.is_empty() {
                    String::new()
                } else {
                    format!(", {vars}")
                }
            ),
        )
    } else {
        a(
            "partly",
            format!(
                "Config vars are partly rebound: done: {}; the rest still use the old database.",
                rebound.join(", ")
            ),
        )
    }
}

/// Maintenance mode against what it was before the run.
pub fn maintenance<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answer {
    let a = |v, w: String| answer("maintenance", "Maintenance", v, w);
    let expect = crate::methods::aspects::expected(plan, j);
    match (
        expect.get("maintenance").copied().flatten(),
        j.facts.as_ref(),
    ) {
        (Some(m), Some(f)) if (m == "on") == f.maintenance_was_on => a(
            "as-before",
            format!("Maintenance is {m} as it was before the run."),
        ),
        (Some(m), Some(f)) => a(
            "changed",
            format!(
                "Maintenance is {m} (it was {} before the run).",
                on_off(f.maintenance_was_on)
            ),
        ),
        _ => a(
            "unknown",
            "Maintenance mode is in doubt or not yet recorded.".into(),
        ),
    }
}

/// The formation against the recorded one.
pub fn formation<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answer {
    let a = |v, w: String| answer("formation", "Formation", v, w);
    let recorded = j
        .facts
        .as_ref()
        .map(|f| {
            f.formation
                .iter()
                .map(|p| format!("{}={}", p.process_type, p.quantity))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    match crate::methods::aspects::expected(plan, j).get("formation") {
        Some(Some("at-zero")) => a(
            "at-zero",
            format!("Every process type is scaled to zero (recorded: {recorded})."),
        ),
        Some(None) => a("unknown", "A scale request is in doubt.".into()),
        _ => a(
            "as-before",
            format!("The formation is as recorded ({recorded})."),
        ),
    }
}

/// The new add-on: `not-created`, `exists`, `destroyed`, `kept`, `in-doubt`.
pub fn target_addon<'a>(plan: &Plan<Ctx<'a>, Journal>, j: &Journal) -> Answer {
    let a = |v, w: String| answer("target_addon", "Target add-on", v, w);
    let name = &j.target.addon_name;
    let create = if plan.step(id::CREATE_FOLLOWER).is_some() {
        id::CREATE_FOLLOWER
    } else {
        id::CREATE_TARGET
    };
    let undo = j.log.record(create).and_then(|r| r.undo);
    match (state(j, create), undo) {
        (_, Some(StepState::Done)) => a(
            "destroyed",
            format!("The target add-on {name} was destroyed by rollback."),
        ),
        (_, Some(StepState::Skipped)) if !in_doubt(plan, j, create) => a(
            "kept",
            format!("The target add-on {name} was kept (--keep-target)."),
        ),
        (StepState::Done, _) => a(
            "exists",
            format!("The target add-on {name} exists; this run created it."),
        ),
        (StepState::Running, _) => a(
            "in-doubt",
            format!("The target add-on {name} may exist: its creation was not confirmed."),
        ),
        _ => a("not-created", "No target add-on was created.".into()),
    }
}
