//! What the releases of an app say: whether a release phase is done, and
//! which releases failed.

use crate::heroku::types::Release;

/// Where an app's releases stand, for a step that must not start dynos
/// (or the copy) before Heroku has deployed the run's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseVerdict<'a> {
    /// The API listed no release at all and none is expected.
    NoRelease,
    /// The newest release is not newer than `floor` yet.
    NotYet(Option<&'a Release>),
    /// The newest release is running its release command.
    Pending(&'a Release),
    /// The newest release is deployed: dynos started now run it.
    Succeeded(&'a Release),
    /// The newest release failed (or expired): Heroku did not deploy it.
    Failed(&'a Release),
}

/// Judge the newest releases (`GET /apps/{app}/releases`, any order).
/// Dynos boot on the newest release that succeeded (Dev Center, Release
/// Phase), and a release carries the app's whole config when it is made,
/// so once the newest release has succeeded, every change before it is
/// what dynos run. `floor`: a version the newest must exceed (the last
/// release seen before the run's own changes).
pub fn release_verdict(releases: &[Release], floor: Option<u64>) -> ReleaseVerdict<'_> {
    let newest = releases.iter().max_by_key(|r| r.version);
    match newest {
        None if floor.is_none() => ReleaseVerdict::NoRelease,
        None => ReleaseVerdict::NotYet(None),
        Some(r) if floor.is_some_and(|f| r.version <= f) => ReleaseVerdict::NotYet(Some(r)),
        Some(r) if r.is_pending() => ReleaseVerdict::Pending(r),
        Some(r) if r.succeeded() => ReleaseVerdict::Succeeded(r),
        Some(r) => ReleaseVerdict::Failed(r),
    }
}

/// The run's releases that Heroku did not deploy although a newer one
/// was: newer than `floor` (the last release seen before the run's
/// changes), older than the newest, and failed or expired. Dynos run the
/// newest (which carries their config too), but a failed release of the
/// cut-over must still be named: its release command did not run on the
/// new database's config. Oldest first.
pub fn failed_since(releases: &[Release], floor: Option<u64>) -> Vec<&Release> {
    let (Some(floor), Some(newest)) = (floor, releases.iter().map(|r| r.version).max()) else {
        return vec![];
    };
    let mut out: Vec<&Release> = releases
        .iter()
        .filter(|r| r.version > floor && r.version < newest)
        .filter(|r| !r.is_pending() && !r.succeeded())
        .collect();
    out.sort_by_key(|r| r.version);
    out
}
