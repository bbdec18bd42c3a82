//! What the in-place change's steps share: their ids, its point of no
//! return, and whether the change is an Essential one (no window).

use crate::engine::NoReturn;
use crate::journal::Journal;
use crate::methods::judge::essential_tier;

pub const CHANGE_PLAN: &str = "change-plan";
pub const WAIT_PLAN: &str = "wait-plan";
pub const WAIT_READY: &str = "wait-ready";
pub const RUN_MAINTENANCE: &str = "run-maintenance";
pub const WAIT_MAINTENANCE: &str = "wait-maintenance";

/// Once Heroku's maintenance has swapped the primary, the old server is
/// gone.
pub const SWAPPED: NoReturn = NoReturn {
    why: "has had its database replaced by Heroku (the plan change's maintenance ran): the \
          old server is gone, so there is nothing to roll back to. `pgmigrate resume` finishes \
          the run; a plan change back is a new `pgmigrate run --to <the old plan>`",
    force_allows: false,
};

/// Whether the run changes an Essential plan in place (no window).
pub fn in_place_essential(j: &Journal) -> bool {
    j.facts
        .as_ref()
        .is_some_and(|f| essential_tier(&f.source.plan))
}

pub fn essential_skip(j: &Journal) -> Option<String> {
    in_place_essential(j)
        .then(|| "an Essential plan changes in place: the app is not taken down".to_string())
}
