//! The copy method, Heroku's pg:copy runbook: create the new database and
//! wait, take the app down (maintenance on, every process type at zero,
//! the dynos gone), copy with a Heroku Postgres transfer, verify the copy,
//! point DATABASE (and every var that held the old URL) at the new
//! database, bring the app back. Its downtime grows with the database
//! (about 3 minutes per GB by Heroku's figures).

pub mod start_copy;
pub mod status;
pub mod verify;
pub mod wait_copy;

use serde::{Deserialize, Serialize};

use crate::engine::{NoReturn, Plan};
use crate::journal_v2::Journal;
use crate::methods::outputs::id;
use crate::methods::steps::{
    alias_source, attach, create_target, maintenance, rebind, scale, wait_target,
};
use crate::methods::{preflight, Ctx};

/// The method's journaled name.
pub const METHOD: &str = "copy";

pub const START_COPY: &str = "start-copy";
pub const WAIT_COPY: &str = "wait-copy";
pub const VERIFY: &str = "verify";

/// Once the app runs on the new database again, what it writes there
/// exists nowhere else: rollback would strand it.
pub const RAN_ON_TARGET: NoReturn = NoReturn {
    why: "has run on the new database since the cut-over (its dynos were scaled back up), \
          so rolling back would strand whatever it wrote there",
    force_allows: true,
};

/// The copy's plan.
pub fn plan<'a>() -> Plan<Ctx<'a>, Journal> {
    let mut up = scale::up();
    up.no_return = Some(RAN_ON_TARGET);
    let mut off = maintenance::off();
    off.no_return = Some(RAN_ON_TARGET);
    Plan {
        method: METHOD,
        steps: vec![
            preflight::def(),
            create_target::def(),
            wait_target::def(),
            alias_source::def(),
            maintenance::on(),
            scale::down(),
            scale::wait(),
            start_copy::def(),
            wait_copy::def(),
            verify::def(),
            attach::promote(),
            attach::repoint_pool(),
            rebind::def(),
            up,
            off,
        ],
        window: (id::MAINTENANCE_ON, id::MAINTENANCE_OFF),
    }
}

/// The expected downtime of a migration: the dynos' drain (up to 30 s),
/// the copy at Heroku's rule of thumb of about 3 minutes per GB, and a few
/// seconds of requests. `None` when the size is unknown.
pub fn expected_downtime(facts: &crate::journal_v2::Facts) -> Option<std::time::Duration> {
    let bytes = facts.source_bytes?;
    let drain = if crate::steps::running_types(facts).is_empty() {
        0.0
    } else {
        30.0
    };
    let copy = bytes as f64 / 1e9 * 180.0;
    Some(std::time::Duration::from_secs_f64(
        drain + copy.max(5.0) + 5.0,
    ))
}

/// `start-copy` and `wait-copy`: the transfer, as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub uuid: String,
    pub num: Option<u64>,
    /// `None` while running or in doubt.
    pub succeeded: Option<bool>,
    pub processed_bytes: Option<u64>,
    pub source_bytes: Option<u64>,
    pub finished_at: Option<String>,
    /// Errors pg_restore ignored ("errors ignored on restore") in a
    /// transfer Heroku reports as succeeded; absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<u64>,
}

impl TransferRecord {
    pub fn of(t: &crate::heroku::types::Transfer) -> TransferRecord {
        TransferRecord {
            uuid: t.uuid.clone(),
            num: t.num,
            succeeded: t.succeeded,
            processed_bytes: t.processed_bytes,
            source_bytes: t.source_bytes,
            finished_at: t.finished_at.clone(),
            warnings: t.warnings.filter(|w| *w > 0),
        }
    }
}

/// The transfer this run started, as last seen: the wait's look if it
/// has one, else the start's answer.
pub fn transfer(j: &Journal) -> Option<TransferRecord> {
    j.log.output(WAIT_COPY).or_else(|| j.log.output(START_COPY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_the_v1_step_list_so_v1_journals_replay_it() {
        assert_eq!(plan().ids(), crate::journal_v1::V1_STEPS);
    }

    #[test]
    fn every_write_can_be_reconciled_and_every_id_is_unique() {
        let p = plan();
        for s in &p.steps {
            assert_eq!(
                s.has_side_effect(),
                s.reconcile.is_some(),
                "{}: a write needs a reconciliation, a wait has none",
                s.id
            );
            assert_eq!(p.steps.iter().filter(|o| o.id == s.id).count(), 1);
        }
        assert!(p.in_window(WAIT_COPY) && !p.in_window(id::WAIT_TARGET));
    }
}
