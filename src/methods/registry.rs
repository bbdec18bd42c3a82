//! Every method pgmigrate knows, one line each. Adding a method is its
//! folder under `src/methods/` and one line here: `--method`, its help and
//! completions, `plan`'s table, `--stop-before`, `status`, the summary and
//! the refusals all ask this list.

use crate::engine::Plan;
use crate::journal::Journal;
use crate::methods::method::Method;
use crate::methods::{copy, follower, upgrade, Ctx};

/// Every method, in the order `plan` shows them.
pub static METHODS: &[&dyn Method] = &[&copy::Transfer, &follower::Changeover, &upgrade::InPlace];

/// Every method.
pub fn all() -> impl Iterator<Item = &'static dyn Method> {
    METHODS.iter().copied()
}

/// The method of this name (journaled, or given to `--method`).
pub fn named(name: &str) -> Option<&'static dyn Method> {
    all().find(|m| m.name() == name)
}

/// The plan of the method of this name.
pub fn plan<'a>(name: &str) -> Option<Plan<Ctx<'a>, Journal>> {
    named(name).map(|m| m.plan())
}

/// Every step id of every method's plan, each once (`--stop-before`).
pub fn step_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = Vec::new();
    for m in all() {
        for id in m.plan().ids() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::method::Target;

    /// The rules every plan keeps, checked once for every method: see
    /// [`Plan::problems`].
    #[test]
    fn every_registered_plan_keeps_the_rules() {
        for m in all() {
            let plan = m.plan();
            assert_eq!(plan.method, m.name());
            assert_eq!(plan.problems(), Vec::<String>::new(), "{}", m.name());
            assert!(plan.index(m.cutover()).is_some(), "{}: cut-over", m.name());
            // The target is what the plan does: a new add-on is created
            // by a step of the plan; in place, no step creates one.
            match m.target() {
                Target::NewAddon { created_by, .. } => {
                    assert!(plan.index(created_by).is_some(), "{}", m.name())
                }
                Target::InPlace => assert!(
                    !crate::methods::outputs::CREATES
                        .iter()
                        .any(|s| plan.index(s).is_some()),
                    "{}",
                    m.name()
                ),
            }
        }
    }

    #[test]
    fn a_plan_that_breaks_a_rule_is_told() {
        let mut plan = all().next().unwrap().plan();
        assert!(plan.problems().is_empty());
        let write = plan.steps.iter().position(|s| s.has_side_effect()).unwrap();
        plan.steps[write].reconcile = None;
        plan.steps[write].undo = crate::engine::Undo::Nothing;
        let read = plan
            .steps
            .iter()
            .position(|s| !s.has_side_effect())
            .unwrap();
        plan.steps[read].no_return = Some(crate::engine::NoReturn {
            why: "",
            force_allows: true,
        });
        let dup = plan.steps[0].id;
        plan.steps[1].id = dup;
        plan.window = (plan.window.1, plan.window.0);
        let problems = plan.problems().join("\n");
        for expected in [
            "without a reconciliation",
            "without an undo",
            "writes nothing",
            "not unique",
            "the window",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }
    }

    #[test]
    fn names_and_ranks_are_unique() {
        for m in all() {
            assert_eq!(all().filter(|o| o.name() == m.name()).count(), 1);
            assert_eq!(all().filter(|o| o.rank() == m.rank()).count(), 1);
            assert_ne!(m.name(), "auto", "`auto` is --method's own value");
        }
    }
}
