//! The in-place plan change, Heroku's `addons:upgrade`: the add-on keeps
//! its id, name and attachments; its database is replaced.
//!
//! - Between Essential plans Heroku changes the plan in place: change it
//!   and wait until the add-on reports the new plan and `wait_status` is
//!   done. The app is not taken down.
//! - From Standard up, Heroku prepares a replacement while the app runs (a
//!   data maintenance, `preparing` then `ready`, possibly for hours: the
//!   run may stop there and be resumed later); then the app is taken down
//!   (maintenance on, every process type at zero, the dynos gone), the
//!   maintenance is run and waited for (`completed`), the vars that held a
//!   copy of the old URL get the new one, and the app comes back.
//!
//! Once the maintenance has run, the old server is gone: rollback cannot
//! bring it back (a plan change back is a new run). Before that, rollback
//! changes the plan back with a second PATCH, which Heroku is expected to
//! take as cancelling the replacement it prepared (not verified against
//! Heroku: METHODS notes in the README).

pub mod change_plan;
pub mod shared;
pub mod status;
pub mod swap;

use crate::engine::Plan;
use crate::journal::Journal;
use crate::methods::answers::Answers;
use crate::methods::judge::{drain, essential_tier, placement, tier, MethodOption, Source};
use crate::methods::method::{Method, Target};
use crate::methods::outputs::id;
use crate::methods::steps::{maintenance, rebind, scale};
use crate::methods::{preflight, Ctx, Def};
pub use shared::*;

/// The method's name (journaled, `--method upgrade`).
const NAME: &str = "upgrade";

/// The in-place change, as the registry lists it.
pub struct InPlace;

impl Method for InPlace {
    fn name(&self) -> &'static str {
        NAME
    }
    fn help(&self) -> &'static str {
        "addons:upgrade: Heroku changes the plan of the same add-on, in place"
    }
    fn rank(&self) -> u8 {
        1
    }
    fn target(&self) -> Target {
        Target::InPlace
    }
    fn cutover(&self) -> &'static str {
        RUN_MAINTENANCE
    }
    fn plan<'a>(&self) -> Plan<Ctx<'a>, Journal> {
        plan()
    }
    fn judge(&self, s: &Source, to: &str) -> MethodOption {
        judge(s, to)
    }
    fn answers(&self, plan: &Plan<Ctx<'_>, Journal>, j: &Journal) -> Answers {
        status::answers(plan, j)
    }
    fn first_write(&self) -> &'static str {
        "change the plan"
    }
    fn rollback_notes(&self) -> &'static [&'static str] {
        &[
            "Before it, rollback changes the plan back with a second PATCH, which should cancel \
           the replacement Heroku prepares (undocumented by Heroku), and undoes maintenance \
           and scaling; it cannot undo the time billed on the new plan or a maintenance \
           Heroku starts on its own.",
        ]
    }
}

/// `addons:upgrade` from Standard up: the drain, then Heroku's maintenance
/// swaps the primary. FACT (Dev Center, Heroku Postgres maintenance): the
/// database is "usually only offline for 10–60 seconds".
const UPGRADE_SWAP_S: f64 = 30.0;

fn judge(s: &Source, to: &str) -> MethodOption {
    let no = |why: String| MethodOption {
        method: NAME,
        possible: false,
        why,
        downtime_estimate_s: None,
        before_downtime: None,
    };
    let essential = essential_tier;
    let (from_tier, to_tier) = (tier(&s.plan), tier(to));
    if essential(&s.plan) != essential(to) {
        return no(
            "addons:upgrade cannot cross tiers (Essential and the others): only a copy can".into(),
        );
    }
    if essential(&s.plan) {
        return MethodOption {
            method: NAME,
            possible: true,
            why: "between Essential plans Heroku changes the plan in place; the app is not \
                  taken down"
                .into(),
            downtime_estimate_s: Some(0.0),
            before_downtime: None,
        };
    }
    if placement(from_tier) != placement(to_tier) {
        return no(format!(
            "addons:upgrade does not move a database from {} to {}",
            placement(from_tier),
            placement(to_tier)
        ));
    }
    if let Some(m) = s.maintenance.as_deref() {
        if !matches!(m, "" | "none" | "completed") {
            return no(format!(
                "a maintenance of the database is already {m}: run or wait for it first \
                 (`heroku data:maintenances:info`)"
            ));
        }
    }
    MethodOption {
        method: NAME,
        possible: true,
        why: "Heroku prepares a replacement on the new plan while the app runs, then a \
              maintenance swaps it in; the old server is gone afterwards"
            .into(),
        downtime_estimate_s: Some(drain(s) + UPGRADE_SWAP_S),
        before_downtime: Some("Heroku prepares the replacement (up to several hours)".into()),
    }
}

/// A shared step, skipped for an Essential plan change.
fn unless_essential<'a>(mut def: Def<'a>, own: fn(&Journal) -> Option<String>) -> Def<'a> {
    def.skip = own;
    def
}

/// The in-place plan change's plan.
pub fn plan<'a>() -> Plan<Ctx<'a>, Journal> {
    let on = unless_essential(maintenance::on(), |j| {
        essential_skip(j).or_else(|| (maintenance::on().skip)(j))
    });
    let down = unless_essential(scale::down(), |j| {
        essential_skip(j).or_else(|| (scale::down().skip)(j))
    });
    let wait = unless_essential(scale::wait(), |j| {
        essential_skip(j).or_else(|| (scale::wait().skip)(j))
    });
    let rebind = unless_essential(rebind::def(), |j| {
        essential_skip(j).or_else(|| (rebind::def().skip)(j))
    });
    let up = unless_essential(scale::up(), |j| {
        essential_skip(j).or_else(|| (scale::up().skip)(j))
    });
    let off = unless_essential(maintenance::off(), |j| {
        essential_skip(j).or_else(|| (maintenance::off().skip)(j))
    });
    Plan {
        method: NAME,
        steps: vec![
            preflight::def(),
            change_plan::def(),
            change_plan::wait(),
            swap::wait_ready(),
            on,
            down,
            wait,
            swap::run(),
            swap::wait_done(),
            rebind,
            up,
            off,
        ],
        window: (id::MAINTENANCE_ON, id::MAINTENANCE_OFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swap_is_the_point_of_no_return_and_runs_in_the_window() {
        let p = plan();
        let nr: Vec<_> = p.steps.iter().filter(|s| s.no_return.is_some()).collect();
        assert_eq!(nr.len(), 1);
        assert_eq!(nr[0].id, RUN_MAINTENANCE);
        assert!(!nr[0].no_return.unwrap().force_allows);
        assert!(p.in_window(RUN_MAINTENANCE) && p.in_window(WAIT_MAINTENANCE));
        assert!(!p.in_window(WAIT_READY) && !p.in_window(CHANGE_PLAN));
    }

    #[test]
    fn an_essential_change_skips_the_window() {
        let p = plan();
        let mut j = crate::journal::tests::sample_journal();
        j.log.method = NAME.into();
        j.facts.as_mut().unwrap().source.plan = "heroku-postgresql:essential-0".into();
        for s in &p.steps {
            let skipped = (s.skip)(&j).is_some();
            let runs = [id::PREFLIGHT, CHANGE_PLAN, WAIT_PLAN].contains(&s.id);
            assert_eq!(!skipped, runs, "{}", s.id);
        }
        j.facts.as_mut().unwrap().source.plan = "heroku-postgresql:standard-0".into();
        assert!((p.step(WAIT_PLAN).unwrap().skip)(&j).is_some());
        assert!((p.step(RUN_MAINTENANCE).unwrap().skip)(&j).is_none());
        assert!((p.step(id::MAINTENANCE_ON).unwrap().skip)(&j).is_none());
    }
}
