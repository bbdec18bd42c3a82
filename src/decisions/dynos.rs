//! The dynos and the formation: which process types ran, which dynos a
//! drain waits for, what the scale-down and scale-up send, whether the
//! live formation is the recorded one.

use crate::heroku::types::{Dyno, DynoSizeRef, Formation, FormationUpdate};
use crate::journal::{Facts, ProcessRecord};

// The process types that had dynos before the run.
pub fn running_types(facts: &Facts) -> Vec<&ProcessRecord> {
    facts.formation.iter().filter(|p| p.quantity > 0).collect()
}

/// The dynos the copy must wait for: every dyno but one-off `run.N` ones
/// (those are refused before the app is touched). Not only those of the
/// types pgmigrate scaled down: a dyno of a type that was already at zero
/// but is still stopping, or a scheduler job, can write to the old
/// database just as well.
pub fn dynos_left(dynos: &[Dyno]) -> Vec<&str> {
    dynos
        .iter()
        .filter(|d| !d.is_one_off())
        .map(|d| d.name.as_str())
        .collect()
}

/// The one-off dynos (`heroku run`) that are up: scaling does not stop
/// them, so they are refused rather than waited for.
pub fn one_off_names(dynos: &[Dyno]) -> Vec<&str> {
    dynos
        .iter()
        .filter(|d| d.is_one_off())
        .map(|d| d.name.as_str())
        .collect()
}

/// The one batch update that scales every running process type to zero.
pub fn scale_down_updates(facts: &Facts) -> Vec<FormationUpdate> {
    running_types(facts)
        .into_iter()
        .map(|p| FormationUpdate {
            process_type: p.process_type.clone(),
            quantity: 0,
            dyno_size: None,
        })
        .collect()
}

/// The one batch update that restores the recorded formation. A size is
/// sent only where the live formation's size differs from the recorded one
/// (sizes survive a scale to zero, so normally none is sent). `current` may
/// be empty when the live formation is unknown; then every size is sent.
pub fn scale_up_updates(facts: &Facts, current: &[Formation]) -> Vec<FormationUpdate> {
    running_types(facts)
        .into_iter()
        .map(|p| {
            let live_size = current
                .iter()
                .find(|f| f.process_type == p.process_type)
                .and_then(|f| f.size_name());
            let dyno_size = match (&p.size, live_size) {
                (Some(want), Some(have)) if want.eq_ignore_ascii_case(have) => None,
                (Some(want), _) => Some(DynoSizeRef { name: want.clone() }),
                (None, _) => None,
            };
            FormationUpdate {
                process_type: p.process_type.clone(),
                quantity: p.quantity,
                dyno_size,
            }
        })
        .collect()
}

/// Whether the live formation equals the recorded one (quantities and sizes).
pub fn formation_matches(recorded: &[ProcessRecord], live: &[Formation]) -> bool {
    recorded.iter().all(|p| {
        live.iter().any(|f| {
            f.process_type == p.process_type
                && f.quantity == p.quantity
                && match (&p.size, f.size_name()) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    _ => true,
                }
        })
    }) && live
        .iter()
        .filter(|f| f.quantity > 0)
        .all(|f| recorded.iter().any(|p| p.process_type == f.process_type))
}
