//! The faults a scenario injects: which one hits a request, and the
//! admin controls over them.

use super::*;

impl World {
    /// Count a fault that fired outside the request rules (a release
    /// command that fails).
    pub(super) fn count_fault(&mut self) {
        self.faults_fired += 1;
    }

    /// Decide which fault, if any, hits this request.
    pub(super) fn fault_for(&mut self, method: &str, path: &str) -> Option<FaultAction> {
        for f in &mut self.faults {
            let m = f
                .rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            let p = f
                .rule
                .path_contains
                .as_deref()
                .is_none_or(|s| path.contains(s));
            let bare = path.split('?').next().unwrap_or(path);
            let e = f
                .rule
                .path_ends_with
                .as_deref()
                .is_none_or(|s| bare.ends_with(s));
            if !(m && p && e) {
                continue;
            }
            f.seen += 1;
            let from = f.rule.nth.unwrap_or(1);
            let within = f.rule.times == 0 || f.fired < f.rule.times;
            if f.seen >= from && within {
                f.fired += 1;
                self.faults_fired += 1;
                return Some(f.rule.action.clone());
            }
        }
        None
    }

    pub fn faults_fired(&self) -> u32 {
        self.faults_fired
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub fn add_fault(&mut self, fault: Fault) {
        self.faults.push(FaultState {
            rule: fault,
            seen: 0,
            fired: 0,
        });
    }
}
