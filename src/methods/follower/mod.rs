//! The follower changeover, Heroku's documented way to change plans within
//! Standard, Premium, Private and Shield with a downtime that does not grow
//! with the database: create a follower on the new plan while the app runs
//! and let it catch up; then take the app down (maintenance on, every
//! process type at zero, the dynos gone), wait until the follower has
//! replayed every commit, unfollow it, wait until it is writable, attach it
//! as DATABASE (and the pooler), rebind the copied vars, bring the app
//! back. The old leader stays attached and untouched, as after a copy.
//!
//! Rollback before the scale-up is clean: the old database received no
//! write since the app went down, so re-attaching it and destroying the
//! follower leaves the app exactly as it was.

pub mod catch_up;
pub mod shared;
pub mod status;
pub mod unfollow;

use crate::engine::Plan;
use crate::journal::Journal;
use crate::methods::answers::Answers;
use crate::methods::judge::{
    drain, essential_tier, level, min_follower_level, placement, tier, MethodOption, Source,
};
use crate::methods::method::{Method, Target};
use crate::methods::outputs::id;
use crate::methods::steps::{
    alias_source, attach, create_target, maintenance, rebind, scale, wait_target,
};
use crate::methods::{preflight, Ctx};
pub use shared::*;

/// The method's name (journaled, `--method follower`).
const NAME: &str = "follower";

/// The follower changeover, as the registry lists it.
pub struct Changeover;

impl Method for Changeover {
    fn name(&self) -> &'static str {
        NAME
    }
    fn help(&self) -> &'static str {
        "a follower on the new plan, caught up while the app runs, takes over"
    }
    fn rank(&self) -> u8 {
        0
    }
    fn target(&self) -> Target {
        Target::NewAddon {
            created_by: id::CREATE_FOLLOWER,
            noun: "follower",
        }
    }
    fn cutover(&self) -> &'static str {
        id::PROMOTE_TARGET
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
        "create the follower"
    }
}

/// A follower changeover: the drain, then the last commits replayed, the
/// unfollow and the re-attach: seconds, whatever the size.
const FOLLOWER_SWAP_S: f64 = 10.0;
fn judge(s: &Source, to: &str) -> MethodOption {
    let no = |why: String| MethodOption {
        method: NAME,
        possible: false,
        why,
        downtime_estimate_s: None,
        before_downtime: None,
    };
    let (from_tier, to_tier) = (tier(&s.plan), tier(to));
    let essential = essential_tier;
    if essential(&s.plan) || essential(to) {
        return no("Essential-tier databases can neither follow nor be followed".into());
    }
    if placement(from_tier) != placement(to_tier) {
        return no(format!(
            "a follower stays in {}: it cannot move the database to {}",
            placement(from_tier),
            placement(to_tier)
        ));
    }
    if !s.followers.is_empty() {
        return no(format!(
            "the database has followers of its own ({}), which would keep following the old \
             database; addons:upgrade re-points them",
            s.followers
                .iter()
                // A journal of an earlier release may hold their URLs
                // (with a password): never shown.
                .map(|f| if f.contains("://") {
                    "a follower"
                } else {
                    f.as_str()
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match s.fork_follow.as_deref() {
        Some(v) if v.eq_ignore_ascii_case("available") => {}
        Some(v) => {
            return no(format!(
                "Heroku reports Fork/Follow \"{v}\" for the database (it cannot be followed \
                 now; after a fork or an unfollow this lasts a while)"
            ))
        }
        None => return no("Heroku did not report whether the database can be followed".into()),
    }
    if let (Some(from), Some(target)) = (level(&s.plan), level(to)) {
        let min = min_follower_level(from);
        if target < min {
            return no(format!(
                "a follower can be at most a few plans below its leader: below {} it must be \
                 at least {from_tier}-{min}",
                s.plan.split_once(':').map_or(s.plan.as_str(), |(_, p)| p)
            ));
        }
    }
    MethodOption {
        method: NAME,
        possible: true,
        why: "a follower on the new plan catches up while the app runs; the app is down only \
              while the last commits are replayed and the follower takes over"
            .into(),
        downtime_estimate_s: Some(drain(s) + FOLLOWER_SWAP_S),
        before_downtime: Some(
            "the follower is provisioned and catches up (minutes to hours, by size)".into(),
        ),
    }
}

/// The follower changeover's plan.
pub fn plan<'a>() -> Plan<Ctx<'a>, Journal> {
    let [up, off] = crate::methods::steps::back_on_target();
    Plan {
        method: NAME,
        steps: vec![
            preflight::def(),
            create_target::follower(),
            wait_target::def(),
            catch_up::running(),
            alias_source::def(),
            maintenance::on(),
            scale::down(),
            scale::wait(),
            catch_up::last(),
            unfollow::def(),
            unfollow::wait_writable(),
            attach::promote(),
            attach::repoint_pool(),
            rebind::def(),
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
    fn the_follower_catches_up_outside_the_window_and_unfollows_inside() {
        let p = plan();
        assert!(!p.in_window(CATCH_UP));
        assert!(!p.in_window(id::WAIT_TARGET));
        for s in [FINAL_CATCH_UP, UNFOLLOW, WAIT_WRITABLE, id::PROMOTE_TARGET] {
            assert!(p.in_window(s), "{s}");
        }
        // Writers are stopped before the last lag check, and the lag is
        // checked before the unfollow (the pitfall of unfollowing behind).
        let at = |s| p.index(s).unwrap();
        assert!(at(id::WAIT_DYNOS) < at(FINAL_CATCH_UP));
        assert!(at(FINAL_CATCH_UP) < at(UNFOLLOW));
        assert!(at(WAIT_WRITABLE) < at(id::PROMOTE_TARGET));
    }

    #[test]
    fn rollback_is_clean_until_the_app_runs_on_the_follower() {
        let p = plan();
        let first = p.steps.iter().find(|s| s.no_return.is_some()).unwrap();
        assert_eq!(first.id, id::SCALE_UP);
    }
}
