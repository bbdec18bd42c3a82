//! What the follower changeover's steps share: their ids and the
//! follower's add-on id.

use crate::journal::Journal;

pub const CATCH_UP: &str = "catch-up";
pub const FINAL_CATCH_UP: &str = "final-catch-up";
pub const UNFOLLOW: &str = "unfollow";
pub const WAIT_WRITABLE: &str = "wait-writable";

/// The follower's add-on id, once created.
pub fn follower_id(j: &Journal) -> Result<String, crate::engine::StepError> {
    crate::methods::outputs::target_id(j).ok_or_else(|| {
        crate::engine::StepError::Definite("the follower's add-on id is not known".into())
    })
}
