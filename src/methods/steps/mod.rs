//! The steps every method shares, one file each: what they do, how a lost
//! answer is reconciled, and their undo, together.

pub mod alias_source;
pub mod attach;
pub mod create_target;
pub mod maintenance;
pub mod others;
pub mod rebind;
pub mod releases;
pub mod scale;
pub mod wait_status;
pub mod wait_target;
pub mod writers;

use crate::engine::NoReturn;

/// Once the app runs on the new database again, what it writes there
/// exists nowhere else: rollback would strand it.
pub const RAN_ON_TARGET: NoReturn = NoReturn {
    why: "has run on the new database since the cut-over (its dynos were scaled back up), \
          so rolling back would strand whatever it wrote there",
    force_allows: true,
};

/// `scale-up` and `maintenance-off` for a method that moves the app to a
/// new add-on: once they have acted, the app has written there, so each is
/// a point past which rollback needs `--force`.
pub fn back_on_target<'a>() -> [crate::methods::Def<'a>; 2] {
    let mut up = scale::up();
    up.no_return = Some(RAN_ON_TARGET);
    let mut off = maintenance::off();
    off.no_return = Some(RAN_ON_TARGET);
    [up, off]
}
