//! What Heroku publishes about its Postgres plans that a move must respect:
//! how much data each plan can hold, and what a database loses when it
//! moves to the Essential tier. Kept in one place, with its sources, so
//! that a change in Heroku's published limits is one edit.
//!
//! FACT (Dev Center, "Heroku Postgres Plans" / "Choosing the Right Heroku
//! Postgres Plan", and "Heroku Postgres Essential Tier"; read 2024–2025):
//! - Essential: `essential-0` 1 GB, `essential-1` 10 GB, `essential-2`
//!   32 GB; the legacy `mini` 1 GB and `basic` 10 GB.
//! - Standard, Premium, Private and Shield share their storage by level:
//!   0: 64 GB, 2: 256 GB, 3: 512 GB, 4: 768 GB, 5: 1 TB, 6: 1.5 TB,
//!   7: 2 TB, 8: 3 TB, 9: 4 TB, 10: 4 TB.
//! - The tier table: Essential has no fork, no follow, no rollback and no
//!   HA; the official CLI refuses connection pooling on it
//!   (`pg:connection-pooling:attach`, heroku-cli-util isEssentialDatabase).
//!
//! GUESS: "GB" is taken as 10^9 bytes, the smaller reading, so a database
//! that might not fit is refused rather than let through. A plan this table
//! does not know is not judged: Heroku has the last word when the add-on is
//! created or the data is copied.

/// Whether a Postgres plan is of the Essential tier, which cannot pool
/// connections: `essential-*` and the legacy `dev`, `basic` and `mini`, by
/// the official CLI's rule (heroku-cli-util isEssentialDatabase /
/// isLegacyEssentialDatabase, used by `pg:connection-pooling:attach`).
pub fn essential_tier(plan: &str) -> bool {
    let tier = plan.split_once(':').map_or(plan, |(_, p)| p);
    ["essential", "dev", "basic", "mini"]
        .iter()
        .any(|p| tier.starts_with(p))
}

/// The tier of a Postgres plan: `essential`, `standard`, `premium`,
/// `private`, `shield`, or the legacy names.
pub fn tier(plan: &str) -> &str {
    let p = plan.split_once(':').map_or(plan, |(_, p)| p);
    p.split('-').next().unwrap_or(p)
}

/// The plan's level: `standard-2` is 2. `None` for names without one.
pub fn level(plan: &str) -> Option<u32> {
    let p = plan.split_once(':').map_or(plan, |(_, p)| p);
    p.rsplit_once('-')?.1.parse().ok()
}

const GB: u64 = 1_000_000_000;

/// The storage a plan offers, in bytes, when Heroku publishes it.
pub fn storage_bytes(plan: &str) -> Option<u64> {
    let name = plan.split_once(':').map_or(plan, |(_, p)| p);
    let gb = match (tier(name), level(name)) {
        ("essential", Some(0)) | ("mini", None) => 1,
        ("essential", Some(1)) | ("basic", None) => 10,
        ("essential", Some(2)) => 32,
        ("standard" | "premium" | "private" | "shield", Some(l)) => match l {
            0 => 64,
            2 => 256,
            3 => 512,
            4 => 768,
            5 => 1_000,
            6 => 1_500,
            7 => 2_000,
            8 => 3_000,
            9 | 10 => 4_000,
            _ => return None,
        },
        _ => return None,
    };
    Some(gb * GB)
}

/// The plans of `plan`'s tier whose published storage holds `bytes`,
/// smallest first (at most `most`), for a refusal's hint.
pub fn plans_that_fit(plan: &str, bytes: u64, most: usize) -> Vec<String> {
    let name = plan.split_once(':').map_or(plan, |(_, p)| p);
    let levels: &[u32] = if essential_tier(name) {
        &[0, 1, 2]
    } else {
        &[0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    };
    let t = if essential_tier(name) {
        "essential"
    } else {
        tier(name)
    };
    levels
        .iter()
        .map(|l| format!("{t}-{l}"))
        .filter(|p| storage_bytes(p).is_some_and(|s| s >= bytes))
        .take(most)
        .collect()
}

/// What the database gives up by moving from `from` to `to`, in words;
/// empty unless the move goes down to the Essential tier.
pub fn losses(from: &str, to: &str) -> Vec<&'static str> {
    if essential_tier(from) || !essential_tier(to) {
        return vec![];
    }
    vec![
        "followers (read replicas) and forks: Essential databases can neither follow nor be \
         followed",
        "rollback (point-in-time recovery) and high availability",
        "connection pooling (DATABASE_CONNECTION_POOL)",
        "credentials other than the default one",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_storage_by_plan() {
        assert_eq!(storage_bytes("heroku-postgresql:essential-0"), Some(GB));
        assert_eq!(storage_bytes("essential-2"), Some(32 * GB));
        assert_eq!(storage_bytes("heroku-postgresql:standard-0"), Some(64 * GB));
        assert_eq!(storage_bytes("premium-4"), Some(768 * GB));
        assert_eq!(storage_bytes("shield-9"), Some(4_000 * GB));
        assert_eq!(storage_bytes("heroku-postgresql:mini"), Some(GB));
        assert_eq!(storage_bytes("standard-1"), None, "no such level");
        assert_eq!(storage_bytes("hobby-dev"), None, "not published here");
    }

    #[test]
    fn the_plans_that_fit_are_of_the_same_tier_smallest_first() {
        assert_eq!(
            plans_that_fit("heroku-postgresql:essential-0", 1_200_000_000, 3),
            vec!["essential-1", "essential-2"]
        );
        assert_eq!(
            plans_that_fit("standard-0", 100 * GB, 2),
            vec!["standard-2", "standard-3"]
        );
        assert!(plans_that_fit("essential-0", 40 * GB, 3).is_empty());
    }

    #[test]
    fn only_a_move_down_to_essential_loses_features() {
        assert!(!losses(
            "heroku-postgresql:standard-0",
            "heroku-postgresql:essential-1"
        )
        .is_empty());
        assert!(losses("essential-0", "essential-1").is_empty());
        assert!(losses("standard-0", "premium-0").is_empty());
        assert!(losses("essential-0", "standard-0").is_empty());
    }
}
