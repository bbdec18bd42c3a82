//! The copy method, Heroku's pg:copy runbook: create the new database and
//! wait, take the app down (maintenance on, every process type at zero,
//! the dynos gone), copy with a Heroku Postgres transfer, verify the copy,
//! point DATABASE (and every var that held the old URL) at the new
//! database, bring the app back. Its downtime grows with the database
//! (about 3 minutes per GB by Heroku's figures).

pub mod shared;
pub mod start_copy;
pub mod status;
pub mod verify;
pub mod wait_copy;

pub use shared::*;

use crate::engine::{Forward, Plan, StepState};
use crate::journal::Journal;
use crate::methods::answers::Answers;
use crate::methods::judge::{drain, essential_tier, MethodOption, Source};
use crate::methods::method::{Method, Target};
use crate::methods::outputs::id;
use crate::methods::preflight::PreflightReading;
use crate::methods::steps::{
    self, alias_source, attach, create_target, maintenance, rebind, scale, wait_target, writers,
};
use crate::methods::{preflight, Ctx};

/// The method's name (journaled, `--method copy`).
const NAME: &str = "copy";

/// The copy, as the registry lists it.
pub struct Transfer;

impl Method for Transfer {
    fn name(&self) -> &'static str {
        NAME
    }
    fn help(&self) -> &'static str {
        "a Heroku Postgres transfer to a new add-on, the app down for the whole copy"
    }
    fn rank(&self) -> u8 {
        2
    }
    fn target(&self) -> Target {
        Target::NewAddon {
            created_by: id::CREATE_TARGET,
            noun: "add-on",
        }
    }
    fn cutover(&self) -> &'static str {
        id::PROMOTE_TARGET
    }
    fn plan<'a>(&self) -> Plan<Ctx<'a>, Journal> {
        plan()
    }
    fn judge(&self, s: &Source, to: &str) -> MethodOption {
        judge(s, to)
    }
    fn answers(&self, plan: &Plan<Ctx<'_>, Journal>, j: &Journal) -> Answers {
        status::answers(plan, j)
    }
    fn first_write(&self) -> &'static str {
        "create the target add-on"
    }
    fn downtime_words(&self) -> &'static str {
        ": drain up to 30 s, copy at about 3 min/GB"
    }
    fn warnings(&self, r: &PreflightReading) -> Vec<String> {
        let mut w = r.warnings.clone();
        w.extend(r.transfer_warnings.iter().cloned());
        w
    }
    fn summary(&self, j: &Journal) -> Vec<String> {
        status::summary(j)
    }
}
/// A copy: the drain, Heroku's rule of thumb of about 3 minutes per GB
/// (at least a few seconds: a transfer is queued, started and finished
/// even for an empty database), and a few seconds of requests.
pub fn downtime(s: &Source) -> Option<f64> {
    let bytes = s.bytes?;
    Some(drain(s) + (bytes as f64 / 1e9 * 180.0).max(5.0) + 5.0)
}

fn judge(s: &Source, to: &str) -> MethodOption {
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
        method: NAME,
        possible: true,
        why,
        downtime_estimate_s: downtime(s),
        before_downtime: Some("the new add-on is provisioned".into()),
    }
}

/// The copy's plan.
pub fn plan<'a>() -> Plan<Ctx<'a>, Journal> {
    let [up, off] = steps::back_on_target();
    // What would stop the run inside the window is checked before it.
    let mut on = maintenance::on();
    on.forward = Forward::Write(|ctx, io| {
        verify::reachable(ctx, io.journal())?;
        maintenance::prepare_on(ctx, io)
    });
    // Writers that came and went during the copy: copy again with them
    // stopped (scale-down again records the formation anew).
    let mut promote = attach::promote();
    promote.forward = Forward::Write(|ctx, io| {
        writers::guard(ctx, io.journal(), Some(id::SCALE_DOWN))?;
        verify::again_after_a_pause(ctx, io.journal())?;
        attach::prepare_promote(ctx, io)
    });
    let mut down = scale::down();
    down.forward = Forward::Write(|ctx, io| {
        if io.journal().log.state(id::MAINTENANCE_ON) == Some(StepState::Skipped) {
            verify::reachable(ctx, io.journal())?;
        }
        scale::prepare_down(ctx, io)
    });
    Plan {
        method: NAME,
        steps: vec![
            preflight::def(),
            create_target::def(),
            wait_target::def(),
            alias_source::def(),
            on,
            down,
            scale::wait(),
            start_copy::def(),
            wait_copy::def(),
            verify::def(),
            promote,
            attach::repoint_pool(),
            rebind::def(),
            up,
            off,
        ],
        window: (id::MAINTENANCE_ON, id::MAINTENANCE_OFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_the_v1_step_list_so_v1_journals_replay_it() {
        assert_eq!(plan().ids(), crate::journal::v1::V1_STEPS);
    }

    #[test]
    fn the_window_is_maintenance_on_to_off() {
        let p = plan();
        let inside: Vec<_> = p.steps.iter().filter(|s| p.in_window(s.id)).collect();
        assert_eq!(inside.first().unwrap().id, id::MAINTENANCE_ON);
        assert_eq!(inside.last().unwrap().id, id::MAINTENANCE_OFF);
        assert!(!p.in_window(id::ALIAS_SOURCE));
        assert!(!p.in_window(id::WAIT_TARGET));
    }

    #[test]
    fn skips_follow_the_facts() {
        let p = plan();
        let skip = |j: &Journal, step: &str| (p.step(step).unwrap().skip)(j);
        let mut j = crate::journal::tests::sample_journal();
        assert_eq!(skip(&j, VERIFY), None);
        j.options.verify = crate::compare::VerifyMode::None;
        assert!(skip(&j, VERIFY).is_some());
        assert_eq!(skip(&j, id::MAINTENANCE_ON), None);
        assert!(skip(&j, id::REPOINT_POOL).is_some());
        let facts = j.facts.as_mut().unwrap();
        facts.maintenance_was_on = true;
        assert!(skip(&j, id::MAINTENANCE_ON).is_some());
        assert!(skip(&j, id::MAINTENANCE_OFF).is_some());
        j.facts.as_mut().unwrap().pool = Some(crate::journal::PoolRecord {
            attachment_id: "p".into(),
            name: "DATABASE_CONNECTION_POOL".into(),
        });
        assert_eq!(skip(&j, id::REPOINT_POOL), None);
        j.facts.as_mut().unwrap().rebind_vars.clear();
        assert!(skip(&j, id::REBIND_CONFIG).is_some());
        for p in &mut j.facts.as_mut().unwrap().formation {
            p.quantity = 0;
        }
        assert!(skip(&j, id::SCALE_DOWN).is_some());
        assert!(skip(&j, id::SCALE_UP).is_some());
        j.facts
            .as_mut()
            .unwrap()
            .source_other_attachments
            .push("HEROKU_POSTGRESQL_RED".into());
        assert!(skip(&j, id::ALIAS_SOURCE).is_some());
    }

    #[test]
    fn next_forward_walks_the_plan_and_flags_doubt() {
        use crate::engine::{next_forward, Next, Transition};
        let p = plan();
        let mut j = crate::journal::tests::sample_journal();
        assert_eq!(next_forward(&p, &j.log), Next::Run(0));
        j.log.apply(id::PREFLIGHT, Transition::Begin, "t").unwrap();
        j.log
            .apply(id::PREFLIGHT, Transition::Succeed(None), "t")
            .unwrap();
        assert_eq!(next_forward(&p, &j.log), Next::Run(1));
        j.log
            .apply(id::CREATE_TARGET, Transition::Begin, "t")
            .unwrap();
        assert_eq!(next_forward(&p, &j.log), Next::InDoubt(1));
        j.log
            .apply(id::CREATE_TARGET, Transition::Succeed(None), "t")
            .unwrap();
        // A wait that was running is simply run again.
        j.log
            .apply(id::WAIT_TARGET, Transition::Begin, "t")
            .unwrap();
        assert_eq!(next_forward(&p, &j.log), Next::Run(2));
    }

    #[test]
    fn the_app_ran_on_the_target_only_after_the_scale_up_or_maintenance_off() {
        use crate::engine::Transition;
        let p = plan();
        let mut j = crate::journal::tests::sample_journal();
        for s in &p.steps[..=p.index(id::REBIND_CONFIG).unwrap()] {
            j.log.apply(s.id, Transition::Begin, "t").unwrap();
            j.log.apply(s.id, Transition::Succeed(None), "t").unwrap();
        }
        assert!(p.passed_no_return(&j.log).is_none());
        j.log.apply(id::SCALE_UP, Transition::Begin, "t").unwrap();
        let (at, nr) = p.passed_no_return(&j.log).unwrap();
        assert_eq!(at, id::SCALE_UP);
        assert!(nr.force_allows);
    }

    #[test]
    fn a_transfer_record_of_an_earlier_release_reads_without_warnings() {
        let old = r#"{"uuid":"u","num":3,"succeeded":true,"processed_bytes":5,
                      "source_bytes":9,"finished_at":"t"}"#;
        let r: TransferRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.warnings, None);
        let again = serde_json::to_value(&r).unwrap();
        assert!(again.get("warnings").is_none(), "not written when absent");
        let mut r = r;
        r.warnings = Some(4);
        let back: TransferRecord =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back.warnings, Some(4));
    }
}
