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
pub mod status;
pub mod unfollow;

use crate::engine::Plan;
use crate::journal::Journal;
use crate::methods::outputs::id;
use crate::methods::steps::{
    alias_source, attach, create_target, maintenance, rebind, scale, wait_target,
};
use crate::methods::{preflight, Ctx};

/// The method's journaled name.
pub const METHOD: &str = crate::methods::choose::FOLLOWER;

pub const CATCH_UP: &str = "catch-up";
pub const FINAL_CATCH_UP: &str = "final-catch-up";
pub const UNFOLLOW: &str = "unfollow";
pub const WAIT_WRITABLE: &str = "wait-writable";

/// The follower's add-on id, once created.
fn follower_id(j: &Journal) -> Result<String, crate::engine::StepError> {
    crate::methods::outputs::target_id(j).ok_or_else(|| {
        crate::engine::StepError::Definite("the follower's add-on id is not known".into())
    })
}

/// The follower changeover's plan.
pub fn plan<'a>() -> Plan<Ctx<'a>, Journal> {
    let [up, off] = crate::methods::copy::back_on_target();
    Plan {
        method: METHOD,
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
    use crate::engine::Undo;

    #[test]
    fn every_write_is_reconciled_and_undone() {
        let p = plan();
        for s in &p.steps {
            assert_eq!(s.has_side_effect(), s.reconcile.is_some(), "{}", s.id);
            assert_eq!(
                s.has_side_effect(),
                !matches!(s.undo, Undo::Nothing),
                "{}",
                s.id
            );
            assert_eq!(p.steps.iter().filter(|o| o.id == s.id).count(), 1);
        }
    }

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
