//! The aspects of the app a step changes, each in one place: its name in
//! the journal's replay (a step's `sets`), its value before the run, and
//! how to read it live. `status`, the app's state and the drift check all
//! replay the steps' `sets` from these values (see [`expected`]), and the
//! drift check asks each aspect whether the live app still agrees.

use std::collections::BTreeMap;

use crate::decisions;
use crate::engine::Plan;
use crate::error::Error;
use crate::heroku::Client;
use crate::journal::{Facts, Journal};
use crate::methods::{on_off, Ctx};

/// Something about the app that a step changes and its undo puts back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aspect {
    /// The app's maintenance mode: `on` or `off`.
    Maintenance,
    /// The dynos: `as-recorded` (the formation preflight recorded) or
    /// `at-zero` (every process type that ran, at zero).
    Formation,
    /// The add-on attached under the run's attachment name (DATABASE):
    /// `old` (the source) or `new` (the target).
    Database,
    /// The source add-on's plan: `old` or `new` (changed in place).
    Plan,
}

/// An aspect and the value a step leaves it at (a step's `sets`).
pub type Set = (&'static str, &'static str);

pub const MAINTENANCE_ON: Set = (Aspect::Maintenance.key(), "on");
pub const MAINTENANCE_OFF: Set = (Aspect::Maintenance.key(), "off");
pub const AT_ZERO: Set = (Aspect::Formation.key(), "at-zero");
pub const AS_RECORDED: Set = (Aspect::Formation.key(), "as-recorded");
pub const ON_TARGET: Set = (Aspect::Database.key(), "new");
pub const PLAN_CHANGED: Set = (Aspect::Plan.key(), "new");

impl Aspect {
    pub const ALL: [Aspect; 4] = [
        Aspect::Maintenance,
        Aspect::Formation,
        Aspect::Database,
        Aspect::Plan,
    ];

    /// Its name in the replay (and in `sets`).
    pub const fn key(self) -> &'static str {
        match self {
            Aspect::Maintenance => "maintenance",
            Aspect::Formation => "formation",
            Aspect::Database => "database",
            Aspect::Plan => "plan",
        }
    }

    /// Its value before the run, as preflight found the app.
    pub fn before(self, f: &Facts) -> &'static str {
        match self {
            Aspect::Maintenance if f.maintenance_was_on => MAINTENANCE_ON.1,
            Aspect::Maintenance => MAINTENANCE_OFF.1,
            Aspect::Formation => AS_RECORDED.1,
            Aspect::Database | Aspect::Plan => "old",
        }
    }

    /// Whether a step that sets this aspect moves the database (the
    /// cut-over of a run is the first such step that runs).
    pub fn moves_the_database(self) -> bool {
        matches!(self, Aspect::Database | Aspect::Plan)
    }

    /// How the live app differs from `want`, in words; `None` when it
    /// agrees.
    pub fn differs(
        self,
        client: &Client,
        j: &Journal,
        f: &Facts,
        want: &str,
    ) -> Result<Option<String>, Error> {
        let app = &j.app;
        let api = |context: &'static str| {
            move |source: crate::heroku::ApiError| Error::Api {
                context: format!("checking the live app ({context})"),
                source: Box::new(source),
            }
        };
        match self {
            Aspect::Maintenance => {
                let want = want == MAINTENANCE_ON.1;
                let live = client.app(app).map_err(api("app"))?.maintenance;
                Ok((live != want).then(|| {
                    format!(
                        "maintenance is {}, the journal expects {}",
                        on_off(live),
                        on_off(want)
                    )
                }))
            }
            Aspect::Formation => {
                let zero = want == AT_ZERO.1;
                let live = client.formation(app).map_err(api("formation"))?;
                let ok = if zero {
                    decisions::running_types(f).iter().all(|p| {
                        live.iter()
                            .any(|l| l.process_type == p.process_type && l.quantity == 0)
                    })
                } else {
                    decisions::formation_matches(&f.formation, &live)
                };
                let show = |it: Vec<(&str, u32)>| {
                    it.iter()
                        .map(|(t, q)| format!("{t}={q}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                Ok((!ok).then(|| {
                    format!(
                        "the formation is {}, the journal expects {}",
                        show(
                            live.iter()
                                .map(|l| (l.process_type.as_str(), l.quantity))
                                .collect()
                        ),
                        if zero {
                            "every process type at zero".to_string()
                        } else {
                            show(
                                f.formation
                                    .iter()
                                    .map(|p| (p.process_type.as_str(), p.quantity))
                                    .collect(),
                            )
                        }
                    )
                }))
            }
            Aspect::Database => {
                let on_target = want == ON_TARGET.1;
                let from = &j.options.from_attachment;
                let atts = client.attachments(app).map_err(api("attachments"))?;
                let live = atts
                    .iter()
                    .find(|a| &a.name == from && a.namespace.is_none())
                    .and_then(|a| a.addon_id().map(str::to_string));
                let expected = if on_target {
                    crate::methods::outputs::target_id(j)
                } else {
                    Some(f.source.id.clone())
                };
                Ok((live != expected).then(|| {
                    format!(
                        "{from} is attached to {}, the journal expects the {} database",
                        live.as_deref().unwrap_or("nothing"),
                        if on_target { "new" } else { "old" }
                    )
                }))
            }
            Aspect::Plan => {
                let expected = if want == PLAN_CHANGED.1 {
                    j.options.to_plan.as_str()
                } else {
                    f.source.plan.as_str()
                };
                let live = client.addon(&f.source.id).map_err(api("add-on"))?;
                Ok((live.plan_name() != Some(expected)).then(|| {
                    format!(
                        "{} is on {}, the journal expects {expected}",
                        f.source.name,
                        live.plan_name().unwrap_or("no plan")
                    )
                }))
            }
        }
    }
}

/// What the app should look like now according to the journal (see
/// [`Plan::expected`]), by aspect key; `None` where a request is in doubt.
pub fn expected<'a>(
    plan: &Plan<Ctx<'a>, Journal>,
    j: &Journal,
) -> BTreeMap<&'static str, Option<&'static str>> {
    let Some(f) = j.facts.as_ref() else {
        return Default::default();
    };
    let initial: Vec<Set> = Aspect::ALL.iter().map(|a| (a.key(), a.before(f))).collect();
    plan.expected(&j.log, &initial)
}

/// The expected value of one aspect: `None` when the journal says nothing
/// of it, `Some(None)` when a request that sets it is in doubt.
pub fn expect(
    expected: &BTreeMap<&'static str, Option<&'static str>>,
    aspect: Aspect,
) -> Option<Option<&'static str>> {
    expected.get(aspect.key()).copied()
}

/// How the live app differs from what the journal expects now, aspect by
/// aspect (an aspect in doubt is not checked).
pub fn drift<'a>(
    client: &Client,
    plan: &Plan<Ctx<'a>, Journal>,
    j: &Journal,
) -> Result<Vec<String>, Error> {
    let Some(f) = j.facts.as_ref() else {
        return Ok(vec![]);
    };
    let expected = expected(plan, j);
    let mut diffs = Vec::new();
    for aspect in Aspect::ALL {
        if let Some(Some(want)) = expect(&expected, aspect) {
            diffs.extend(aspect.differs(client, j, f, want)?);
        }
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_before_the_run_is_the_one_steps_set_back() {
        let mut j = crate::journal::tests::sample_journal();
        let f = j.facts.as_mut().unwrap();
        f.maintenance_was_on = false;
        assert_eq!(Aspect::Maintenance.before(f), MAINTENANCE_OFF.1);
        f.maintenance_was_on = true;
        assert_eq!(Aspect::Maintenance.before(f), MAINTENANCE_ON.1);
        assert_eq!(Aspect::Formation.before(f), AS_RECORDED.1);
        for a in Aspect::ALL {
            assert_eq!(Aspect::ALL.iter().filter(|b| b.key() == a.key()).count(), 1);
        }
    }
}
