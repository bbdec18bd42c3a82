//! Which method moves this database: every method with whether it is
//! possible for this source and target, why, and its expected downtime;
//! `auto` takes the possible one with the least. Pure: a function of what
//! preflight read, unit-tested without HTTP.
//!
//! The rules are Heroku's (see the README's "Methods" section for the
//! sources): across tiers (Essential ↔ the others) only a copy can move a
//! database; between Essential plans `addons:upgrade` changes the plan in
//! place; from Standard up, within one placement (Common Runtime, Private
//! Spaces, Shield Spaces), a follower changeover or `addons:upgrade`, with
//! the follower preferred because the old database stays intact until it
//! is removed, which keeps the way back clean.

use serde::Serialize;

use crate::journal::Facts;
pub use crate::plans::{essential_tier, level, tier};

/// `--method`: a method by name, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Auto,
    Copy,
    Follower,
    Upgrade,
}

impl Wanted {
    /// Every value of `--method`, `auto` first.
    pub const ALL: [Wanted; 4] = [
        Wanted::Auto,
        Wanted::Copy,
        Wanted::Follower,
        Wanted::Upgrade,
    ];

    pub fn parse(text: &str) -> Option<Wanted> {
        match text {
            "auto" => Some(Wanted::Auto),
            "copy" => Some(Wanted::Copy),
            "follower" => Some(Wanted::Follower),
            "upgrade" => Some(Wanted::Upgrade),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Wanted::Auto => "auto",
            Wanted::Copy => COPY,
            Wanted::Follower => FOLLOWER,
            Wanted::Upgrade => UPGRADE,
        }
    }
}

pub const COPY: &str = "copy";
pub const FOLLOWER: &str = "follower";
pub const UPGRADE: &str = "upgrade";

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

/// What was decided: the method to run and every method judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub method: &'static str,
    /// Why this one, in a sentence.
    pub why: String,
    pub methods: Vec<MethodOption>,
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
            running: !crate::steps::running_types(facts).is_empty(),
        }
    }
}

/// Where a database of this tier lives: followers and `addons:upgrade`
/// stay within one (Common Runtime, a Private Space, a Shield Space).
fn placement(tier: &str) -> &'static str {
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
fn drain(s: &Source) -> f64 {
    if s.running {
        30.0
    } else {
        0.0
    }
}

/// A copy: the drain, Heroku's rule of thumb of about 3 minutes per GB
/// (at least a few seconds: a transfer is queued, started and finished
/// even for an empty database), and a few seconds of requests.
pub fn copy_downtime(s: &Source) -> Option<f64> {
    let bytes = s.bytes?;
    Some(drain(s) + (bytes as f64 / 1e9 * 180.0).max(5.0) + 5.0)
}

/// A follower changeover: the drain, then the last commits replayed, the
/// unfollow and the re-attach: seconds, whatever the size.
const FOLLOWER_SWAP_S: f64 = 10.0;
/// `addons:upgrade` from Standard up: the drain, then Heroku's maintenance
/// swaps the primary. FACT (Dev Center, Heroku Postgres maintenance): the
/// database is "usually only offline for 10–60 seconds".
const UPGRADE_SWAP_S: f64 = 30.0;

fn judge_copy(s: &Source, to: &str) -> MethodOption {
    let why = if essential_tier(&s.plan) != essential_tier(to) {
        "a Heroku Postgres transfer: the only way across tiers (Essential and the others); \
         the app is down for the whole copy"
            .to_string()
    } else {
        "a Heroku Postgres transfer to a new add-on; the app is down for the whole copy, \
         about 3 minutes per GB"
            .to_string()
    };
    MethodOption {
        method: COPY,
        possible: true,
        why,
        downtime_estimate_s: copy_downtime(s),
        before_downtime: Some("the new add-on is provisioned".into()),
    }
}

fn judge_follower(s: &Source, to: &str) -> MethodOption {
    let no = |why: String| MethodOption {
        method: FOLLOWER,
        possible: false,
        why,
        downtime_estimate_s: None,
        before_downtime: None,
    };
    let (from_tier, to_tier) = (tier(&s.plan), tier(to));
    let essential = essential_tier;
    if essential(&s.plan) || essential(to) {
        return no("Essential-tier databases can neither follow nor be followed".into());
    }
    if placement(from_tier) != placement(to_tier) {
        return no(format!(
            "a follower stays in {}: it cannot move the database to {}",
            placement(from_tier),
            placement(to_tier)
        ));
    }
    if !s.followers.is_empty() {
        return no(format!(
            "the database has followers of its own ({}), which would keep following the old \
             database; addons:upgrade re-points them",
            s.followers
                .iter()
                // A journal of an earlier release may hold their URLs
                // (with a password): never shown.
                .map(|f| if f.contains("://") {
                    "a follower"
                } else {
                    f.as_str()
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match s.fork_follow.as_deref() {
        Some(v) if v.eq_ignore_ascii_case("available") => {}
        Some(v) => {
            return no(format!(
                "Heroku reports Fork/Follow \"{v}\" for the database (it cannot be followed \
                 now; after a fork or an unfollow this lasts a while)"
            ))
        }
        None => return no("Heroku did not report whether the database can be followed".into()),
    }
    if let (Some(from), Some(target)) = (level(&s.plan), level(to)) {
        let min = min_follower_level(from);
        if target < min {
            return no(format!(
                "a follower can be at most a few plans below its leader: below {} it must be \
                 at least {from_tier}-{min}",
                s.plan.split_once(':').map_or(s.plan.as_str(), |(_, p)| p)
            ));
        }
    }
    MethodOption {
        method: FOLLOWER,
        possible: true,
        why: "a follower on the new plan catches up while the app runs; the app is down only \
              while the last commits are replayed and the follower takes over"
            .into(),
        downtime_estimate_s: Some(drain(s) + FOLLOWER_SWAP_S),
        before_downtime: Some(
            "the follower is provisioned and catches up (minutes to hours, by size)".into(),
        ),
    }
}

fn judge_upgrade(s: &Source, to: &str) -> MethodOption {
    let no = |why: String| MethodOption {
        method: UPGRADE,
        possible: false,
        why,
        downtime_estimate_s: None,
        before_downtime: None,
    };
    let essential = essential_tier;
    let (from_tier, to_tier) = (tier(&s.plan), tier(to));
    if essential(&s.plan) != essential(to) {
        return no(
            "addons:upgrade cannot cross tiers (Essential and the others): only a copy can".into(),
        );
    }
    if essential(&s.plan) {
        return MethodOption {
            method: UPGRADE,
            possible: true,
            why: "between Essential plans Heroku changes the plan in place; the app is not \
                  taken down"
                .into(),
            downtime_estimate_s: Some(0.0),
            before_downtime: None,
        };
    }
    if placement(from_tier) != placement(to_tier) {
        return no(format!(
            "addons:upgrade does not move a database from {} to {}",
            placement(from_tier),
            placement(to_tier)
        ));
    }
    if let Some(m) = s.maintenance.as_deref() {
        if !matches!(m, "" | "none" | "completed") {
            return no(format!(
                "a maintenance of the database is already {m}: run or wait for it first \
                 (`heroku data:maintenances:info`)"
            ));
        }
    }
    MethodOption {
        method: UPGRADE,
        possible: true,
        why: "Heroku prepares a replacement on the new plan while the app runs, then a \
              maintenance swaps it in; the old server is gone afterwards"
            .into(),
        downtime_estimate_s: Some(drain(s) + UPGRADE_SWAP_S),
        before_downtime: Some("Heroku prepares the replacement (up to several hours)".into()),
    }
}

/// Why `auto` took `method`, in words.
fn auto_reason(methods: &[MethodOption], method: &str) -> String {
    let why_not = |m: &str| {
        methods
            .iter()
            .find(|o| o.method == m && !o.possible)
            .map(|o| format!("no {m}: {}", o.why))
    };
    let own = methods
        .iter()
        .find(|o| o.method == method)
        .map(|o| o.why.clone())
        .unwrap_or_default();
    let mut parts = vec![own];
    match method {
        UPGRADE => parts.extend(why_not(FOLLOWER)),
        COPY => {
            parts.extend(why_not(FOLLOWER));
            parts.extend(why_not(UPGRADE));
        }
        _ => {}
    }
    parts.join("; ")
}

/// The order `auto` prefers among the possible methods: a follower (the old
/// database stays intact until pgmigrate removes it, the cleanest way
/// back), then the upgrade, then a copy.
fn rank(method: &str) -> u8 {
    match method {
        FOLLOWER => 0,
        UPGRADE => 1,
        _ => 2,
    }
}

/// Judge every method and pick one: the wanted one if possible; for
/// `auto`, the first possible of follower, upgrade and copy, which is the
/// one with the least expected downtime for any but a tiny database.
pub fn choose(s: &Source, to: &str, wanted: Wanted) -> Result<Choice, (String, Choice)> {
    let methods = vec![
        judge_copy(s, to),
        judge_follower(s, to),
        judge_upgrade(s, to),
    ];
    // The low-downtime methods first, whatever the size: their downtime
    // does not grow with the database, a copy's does (and for a database
    // small enough that the estimates meet, a copy's is the less certain).
    let best = methods
        .iter()
        .filter(|m| m.possible)
        .min_by_key(|m| rank(m.method))
        .cloned()
        .unwrap_or_else(|| methods[0].clone());
    let auto = Choice {
        method: best.method,
        why: format!("{}: {}", best.method, auto_reason(&methods, best.method)),
        methods: methods.clone(),
    };
    if wanted == Wanted::Auto {
        return Ok(auto);
    }
    let pick = methods
        .iter()
        .find(|m| m.method == wanted.name())
        .cloned()
        .unwrap_or_else(|| best.clone());
    if !pick.possible {
        return Err((pick.why.clone(), auto));
    }
    Ok(Choice {
        method: pick.method,
        why: format!("{}: asked for with --method ({})", pick.method, pick.why),
        methods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(plan: &str) -> Source {
        Source {
            plan: format!("heroku-postgresql:{plan}"),
            bytes: Some(8_000_000_000),
            fork_follow: Some("Available".into()),
            followers: vec![],
            maintenance: Some("none".into()),
            running: true,
        }
    }

    fn pick(s: &Source, to: &str) -> &'static str {
        choose(s, &format!("heroku-postgresql:{to}"), Wanted::Auto)
            .unwrap()
            .method
    }

    #[test]
    fn across_tiers_only_a_copy() {
        assert_eq!(pick(&source("essential-0"), "standard-0"), COPY);
        assert_eq!(pick(&source("standard-0"), "essential-1"), COPY);
        let c = choose(
            &source("essential-0"),
            "heroku-postgresql:standard-0",
            Wanted::Auto,
        )
        .unwrap();
        assert!(c.methods.iter().filter(|m| m.possible).count() == 1);
    }

    #[test]
    fn essential_to_essential_in_place() {
        assert_eq!(pick(&source("essential-0"), "essential-1"), UPGRADE);
    }

    #[test]
    fn standard_prefers_a_follower_then_upgrade_then_copy() {
        assert_eq!(pick(&source("standard-0"), "standard-2"), FOLLOWER);
        let mut s = source("standard-0");
        s.followers = vec!["replica".into()];
        assert_eq!(pick(&s, "standard-2"), UPGRADE);
        let mut s = source("standard-0");
        s.fork_follow = Some("Temporarily Unavailable".into());
        assert_eq!(pick(&s, "standard-2"), UPGRADE);
        s.maintenance = Some("pending".into());
        assert_eq!(pick(&s, "standard-2"), COPY);
        // Plan distance: below a standard-6 a follower is at least -3.
        assert_eq!(pick(&source("standard-6"), "standard-2"), UPGRADE);
        assert_eq!(pick(&source("standard-6"), "standard-3"), FOLLOWER);
        // Another placement: only a copy.
        assert_eq!(pick(&source("standard-2"), "private-2"), COPY);
        // Standard and Premium share the Common Runtime.
        assert_eq!(pick(&source("standard-2"), "premium-2"), FOLLOWER);
    }

    #[test]
    fn an_impossible_method_is_refused_with_the_one_that_works() {
        let (why, auto) = choose(
            &source("essential-0"),
            "heroku-postgresql:standard-0",
            Wanted::Follower,
        )
        .unwrap_err();
        assert!(why.contains("Essential"), "{why}");
        assert_eq!(auto.method, COPY);
        let c = choose(
            &source("standard-0"),
            "heroku-postgresql:standard-2",
            Wanted::Copy,
        )
        .unwrap();
        assert_eq!(c.method, COPY);
    }

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

    #[test]
    fn downtime_of_the_low_downtime_methods_does_not_grow_with_size() {
        let mut s = source("standard-0");
        let to = "heroku-postgresql:standard-2";
        let at = |s: &Source, m: &str| {
            choose(s, to, Wanted::Auto)
                .unwrap()
                .methods
                .into_iter()
                .find(|o| o.method == m)
                .unwrap()
                .downtime_estimate_s
                .unwrap()
        };
        let (f1, u1, c1) = (at(&s, FOLLOWER), at(&s, UPGRADE), at(&s, COPY));
        s.bytes = Some(100_000_000_000);
        assert_eq!(at(&s, FOLLOWER), f1);
        assert_eq!(at(&s, UPGRADE), u1);
        assert!(at(&s, COPY) > c1 * 10.0);
        assert!(f1 < u1 && f1 <= c1);
    }

    #[test]
    fn essential_tier_follows_the_official_cli() {
        for plan in [
            "heroku-postgresql:essential-0",
            "essential-2",
            "heroku-postgresql:mini",
            "basic",
            "heroku-postgresql:dev",
        ] {
            assert!(essential_tier(plan), "{plan}");
        }
        for plan in [
            "heroku-postgresql:standard-0",
            "premium-0",
            "heroku-postgresql:private-2",
            "shield-0",
        ] {
            assert!(!essential_tier(plan), "{plan}");
        }
    }
}
