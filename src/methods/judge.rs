//! What every method's judge works with: the source as preflight read it,
//! the verdict on one method, and Heroku's rules that more than one method
//! shares (placements, follower levels, the drain). Pure: unit-tested
//! without HTTP.

use serde::Serialize;

use crate::journal::Facts;
pub use crate::plans::{essential_tier, level, tier};

/// One method, judged for this migration (`plan --json`'s `methods[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodOption {
    pub method: &'static str,
    pub possible: bool,
    pub why: String,
    /// How long the app is expected to be down, in seconds; `null` when
    /// it cannot be estimated (a copy of a database of unknown size).
    pub downtime_estimate_s: Option<f64>,
    /// Work done while the app stays up (provisioning, catching up,
    /// Heroku preparing a replacement), for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_downtime: Option<String>,
}

/// What the choice needs besides the facts' formation and size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub plan: String,
    pub bytes: Option<u64>,
    /// pg:info's `Fork/Follow` ("Available", …), when read.
    pub fork_follow: Option<String>,
    /// The databases following the source.
    pub followers: Vec<String>,
    /// The status of the source's data maintenance, when read.
    pub maintenance: Option<String>,
    /// Process types with dynos running (something to drain).
    pub running: bool,
}

impl Source {
    pub fn of(facts: &Facts) -> Source {
        Source {
            plan: facts.source.plan.clone(),
            bytes: facts.source_bytes,
            fork_follow: facts.fork_follow.clone(),
            followers: facts.source_followers.clone(),
            maintenance: facts.source_maintenance.clone(),
            running: !crate::decisions::running_types(facts).is_empty(),
        }
    }
}

/// Where a database of this tier lives: followers and `addons:upgrade`
/// stay within one (Common Runtime, a Private Space, a Shield Space).
pub fn placement(tier: &str) -> &'static str {
    match tier {
        "private" => "a Private Space",
        "shield" => "a Shield Space",
        _ => "the Common Runtime",
    }
}

/// The lowest follower level Heroku allows below a leader of `leader`
/// level. FACT (help.heroku.com/JRN5S7V6, undated): "Followers can be up
/// to 4 plans below their leader's plan, unless the follower's plan has
/// burstable characteristics (*-0 plans)", with the table 0→0, 2→0, 3→2,
/// 4→3, 5→3, 6→3, 7→3, 8→4. A real refusal (private-4 → private-0,
/// "Please provision at least a private-3 plan") agrees. Levels above the
/// table: four below. The server has the last word: its refusal at
/// creation stops the run with nothing changed.
pub fn min_follower_level(leader: u32) -> u32 {
    match leader {
        0..=2 => 0,
        3 => 2,
        4..=7 => 3,
        n => n - 4,
    }
}

/// The drain: dynos get up to 30 s to stop after SIGTERM (Heroku's
/// shutdown grace period), when any run.
pub fn drain(s: &Source) -> f64 {
    if s.running {
        30.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_follower_levels() {
        let table = [
            (0, 0),
            (2, 0),
            (3, 2),
            (4, 3),
            (5, 3),
            (6, 3),
            (7, 3),
            (8, 4),
        ];
        for (leader, min) in table {
            assert_eq!(min_follower_level(leader), min, "{leader}");
        }
        assert_eq!(level("heroku-postgresql:standard-2"), Some(2));
        assert_eq!(level("heroku-postgresql:essential-0"), Some(0));
        assert_eq!(tier("heroku-postgresql:premium-4"), "premium");
    }
}
