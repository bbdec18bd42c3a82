//! What the copy's steps share: their ids and the transfer's record.

use serde::{Deserialize, Serialize};

use crate::journal::Journal;

pub const START_COPY: &str = "start-copy";
pub const WAIT_COPY: &str = "wait-copy";
pub use crate::methods::outputs::id::VERIFY;

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
