//! Who holds an app's lock, as the lock file names it (so that a second
//! process, an error and `status` can say who is working on the app).

use serde::{Deserialize, Serialize};

/// Who holds an app's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_at: String,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} since {} (`pgmigrate {}`)",
            self.pid, self.host, self.started_at, self.command
        )
    }
}
