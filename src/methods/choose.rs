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

use crate::error::Error;
use crate::journal::RunOptions;
use crate::methods::judge::{MethodOption, Source};
use crate::methods::method::Method;
use crate::methods::preflight::PreflightReading;
use crate::methods::registry;
use serde::Serialize;

/// `--method`: a method of the registry, or `auto`.
#[derive(Clone, Copy)]
pub enum Wanted {
    Auto,
    Method(&'static dyn Method),
}

impl std::fmt::Debug for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for Wanted {
    fn eq(&self, other: &Wanted) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Wanted {}

impl Wanted {
    /// `auto`, `--method`'s default.
    pub const AUTO: &'static str = "auto";

    /// Every value of `--method` with its help, `auto` first.
    pub fn values() -> Vec<(&'static str, &'static str)> {
        let mut v = vec![(
            Wanted::AUTO,
            "the possible method with the least expected downtime, and why",
        )];
        v.extend(registry::all().map(|m| (m.name(), m.help())));
        v
    }

    pub fn parse(text: &str) -> Option<Wanted> {
        if text == Wanted::AUTO {
            return Some(Wanted::Auto);
        }
        registry::named(text).map(Wanted::Method)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Wanted::Auto => Wanted::AUTO,
            Wanted::Method(m) => m.name(),
        }
    }
}

/// What was decided: the method to run and every method judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub method: &'static str,
    /// Why this one, in a sentence.
    pub why: String,
    pub methods: Vec<MethodOption>,
}

impl Choice {
    /// The method chosen.
    pub fn chosen(&self) -> &'static dyn Method {
        registry::named(self.method).expect("a choice names a registered method")
    }

    /// The chosen method's verdict.
    pub fn option(&self) -> Option<&MethodOption> {
        self.methods.iter().find(|m| m.method == self.method)
    }
}

/// Why `auto` took `method`, in words: its own reason, then why each
/// method it prefers could not.
fn auto_reason(methods: &[MethodOption], chosen: &dyn Method) -> String {
    let own = methods
        .iter()
        .find(|o| o.method == chosen.name())
        .map(|o| o.why.clone())
        .unwrap_or_default();
    let mut parts = vec![own];
    let mut preferred: Vec<&dyn Method> = registry::all()
        .filter(|m| m.rank() < chosen.rank())
        .collect();
    preferred.sort_by_key(|m| m.rank());
    for m in preferred {
        parts.extend(
            methods
                .iter()
                .find(|o| o.method == m.name() && !o.possible)
                .map(|o| format!("no {}: {}", o.method, o.why)),
        );
    }
    parts.join("; ")
}

/// Judge every method and pick one: the wanted one if possible; for
/// `auto`, the possible one `auto` prefers (the lowest rank), which is
/// the one with the least expected downtime for any but a tiny database:
/// the low-downtime methods' downtime does not grow with the database, a
/// copy's does.
pub fn choose(s: &Source, to: &str, wanted: Wanted) -> Result<Choice, (String, Choice)> {
    let methods: Vec<MethodOption> = registry::all().map(|m| m.judge(s, to)).collect();
    let best = registry::all()
        .zip(&methods)
        .filter(|(_, o)| o.possible)
        .min_by_key(|(m, _)| m.rank())
        .map(|(m, _)| m)
        .or_else(|| registry::all().max_by_key(|m| m.rank()))
        .expect("the registry lists methods");
    let auto = Choice {
        method: best.name(),
        why: format!("{}: {}", best.name(), auto_reason(&methods, best)),
        methods: methods.clone(),
    };
    let Wanted::Method(wanted) = wanted else {
        return Ok(auto);
    };
    let pick = methods
        .iter()
        .find(|m| m.method == wanted.name())
        .cloned()
        .expect("every registered method is judged");
    if !pick.possible {
        return Err((pick.why.clone(), auto));
    }
    Ok(Choice {
        method: pick.method,
        why: format!("{}: asked for with --method ({})", pick.method, pick.why),
        methods,
    })
}

/// Choose the method for what preflight read; an impossible `--method` is
/// refused with its reason and the method that would work, before
/// anything changes.
pub fn decide(
    app: &str,
    options: &RunOptions,
    reading: &PreflightReading,
    wanted: Wanted,
) -> Result<Choice, Error> {
    choose(&Source::of(&reading.facts), &options.to_plan, wanted).map_err(|(why, auto)| {
        Error::Preflight {
            problem: format!(
                "--method {} cannot move {app}'s database to {}: {why}.",
                wanted.name(),
                options.to_plan
            ),
            fix: format!(
                "run with --method {} instead ({}), or leave --method out to let pgmigrate \
                 choose; `pgmigrate plan --app {app} --to {}` shows every method",
                auto.method,
                auto.option().map(|m| m.why.as_str()).unwrap_or(""),
                options.to_plan
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::judge::essential_tier;

    const COPY: &str = "copy";
    const FOLLOWER: &str = "follower";
    const UPGRADE: &str = "upgrade";

    fn wanted(name: &str) -> Wanted {
        Wanted::parse(name).unwrap()
    }

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
            wanted(FOLLOWER),
        )
        .unwrap_err();
        assert!(why.contains("Essential"), "{why}");
        assert_eq!(auto.method, COPY);
        let c = choose(
            &source("standard-0"),
            "heroku-postgresql:standard-2",
            wanted(COPY),
        )
        .unwrap();
        assert_eq!(c.method, COPY);
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
