//! Scenario files: the apps, timings and faults a sandbox starts with
//! (`fixtures/scenarios/*.json`, documented in `fixtures/scenarios/README.md`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A whole sandbox scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The API token the sandbox accepts.
    #[serde(default = "default_token")]
    pub token: String,
    /// Added to every request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Items per page of every list (Heroku's default is 200).
    #[serde(default = "default_page")]
    pub page_size: usize,
    #[serde(default)]
    pub timing: Timing,
    /// Rows each running dyno writes per second into its DATABASE.
    #[serde(default)]
    pub writes_per_second_per_dyno: f64,
    /// Valid heroku-postgresql plans (full names).
    #[serde(default = "default_plans")]
    pub plans: Vec<String>,
    pub apps: Vec<AppSpec>,
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// How long simulated things take, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    pub provision_ms: u64,
    pub dyno_stop_ms: u64,
    pub dyno_start_ms: u64,
    /// How long a transfer runs once started (its tail included).
    pub transfer_ms: u64,
    /// Bytes per row, to report transfer sizes.
    pub bytes_per_row: u64,
    /// How long after creation the Data API answers 404 for a new
    /// add-on's wait_status (it does not know it yet).
    pub wait_status_404_ms: u64,
    /// When a new add-on's wait_status says it is available, if not when
    /// its state turns `provisioned` (`provision_ms`): the two can
    /// disagree either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_status_ready_ms: Option<u64>,
    /// How long a transfer sits queued before it starts (`started_at` null,
    /// `processed_bytes` 0). GUESS: Heroku runs transfers on shared workers
    /// and a new one waits a moment for a free one; the length is not
    /// documented.
    pub transfer_queue_ms: u64,
    /// `processed_bytes` at the end over `source_bytes`. FACT: processed
    /// bytes count the dump, compressed (heroku/cli
    /// src/commands/pg/backups/info.ts shows them as "Backup Size" with a
    /// "% compression" against `source_bytes`). GUESS: 0.35 (pg_dump's
    /// custom format of typical table data; indexes are not dumped).
    pub dump_ratio: f64,
    /// The share of `transfer_ms` at the end where no byte moves while
    /// pg_restore builds indexes and constraints. GUESS: 0.15; on Heroku
    /// it grows with the number and size of indexes.
    pub transfer_tail_ratio: f64,
    /// How far behind its leader a follower replays: it holds the leader's
    /// data as of this long ago. GUESS: Heroku's followers are
    /// asynchronous streaming replicas (Dev Center follower article:
    /// "Behind By" shows the lag); the length is load-dependent and not
    /// documented.
    pub replica_delay_ms: u64,
    /// How long an unfollowed database stays read-only once it has
    /// replayed its backlog. GUESS: the promotion itself takes a moment.
    pub unfollow_ms: u64,
    /// How long after an unfollow `Fork/Follow` says `Temporarily
    /// Unavailable`. FACT (Dev Center follower article): "for a while
    /// after a fork or an unfollow" (minutes to hours); the length is a
    /// GUESS.
    pub fork_follow_cooldown_ms: u64,
    /// How long a Standard+ plan change's maintenance is `preparing`
    /// before it is `ready` (Dev Center: "up to several hours").
    pub plan_change_prepare_ms: u64,
    /// How long a maintenance runs (Dev Center: "usually only offline for
    /// 10-60 seconds").
    pub maintenance_run_ms: u64,
    /// How long an Essential plan change keeps `wait_status` waiting
    /// (GUESS: not documented).
    pub essential_change_ms: u64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            provision_ms: 1500,
            dyno_stop_ms: 1000,
            dyno_start_ms: 300,
            transfer_ms: 2000,
            bytes_per_row: 2048,
            wait_status_404_ms: 100,
            wait_status_ready_ms: None,
            transfer_queue_ms: 200,
            dump_ratio: 0.35,
            transfer_tail_ratio: 0.15,
            replica_delay_ms: 400,
            unfollow_ms: 200,
            fork_follow_cooldown_ms: 3000,
            plan_change_prepare_ms: 1500,
            maintenance_run_ms: 800,
            essential_change_ms: 500,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    pub name: String,
    #[serde(default)]
    pub maintenance: bool,
    #[serde(default)]
    pub formation: Vec<ProcessSpec>,
    #[serde(default)]
    pub addons: Vec<AddonSpec>,
    /// Plain config vars. A value may be a placeholder: `{{DATABASE_URL}}`
    /// or `{{ATTACHMENT:NAME}}` (a copy of that attachment's URL), or
    /// `{{SAME_HOST:NAME}}` (same host, port and database, other credentials).
    #[serde(default)]
    pub config_vars: BTreeMap<String, String>,
    /// One-off dynos that are up (`run.1`).
    #[serde(default)]
    pub one_off_dynos: Vec<String>,
    /// The app has a `release` process type (release phase): every new
    /// release runs its release command first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_phase: Option<ReleasePhaseSpec>,
}

/// An app's release command (a `release:` line in its Procfile).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePhaseSpec {
    /// How long the release command runs, in milliseconds.
    #[serde(default = "default_command_ms")]
    pub command_ms: u64,
    /// Releases whose release command fails (each rule fires once).
    #[serde(default)]
    pub fail: Vec<ReleaseFailure>,
}

/// Which release's command fails: the `nth` (1-based, default 1) release
/// created after the sandbox started whose description starts with
/// `description_starts_with` (any description if absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFailure {
    #[serde(default)]
    pub description_starts_with: Option<String>,
    #[serde(default)]
    pub nth: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: u32,
    #[serde(default = "default_size")]
    pub size: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddonSpec {
    pub name: String,
    /// `heroku-postgresql:standard-0`, `heroku-redis:mini`, …
    pub plan: String,
    /// Attachment names (no namespace), e.g. `["DATABASE"]`.
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Attachments with a namespace, e.g. the connection pooler.
    #[serde(default)]
    pub namespace_attachments: Vec<NamespacedAttachment>,
    /// Name of the add-on this one follows (a read-only follower).
    #[serde(default)]
    pub follower_of: Option<String>,
    /// Rows in the database at the start.
    #[serde(default)]
    pub rows: u64,
    /// Database credentials besides `default` (`heroku pg:credentials`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    /// `available` (default) or `temporarily-unavailable`: whether it can
    /// be followed now (pg:info's `Fork/Follow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_follow: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespacedAttachment {
    pub name: String,
    pub namespace: String,
}

/// A fault rule: which requests it hits and what it does to them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// HTTP method to match (any if absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the path to match (any if absent).
    #[serde(default)]
    pub path_contains: Option<String>,
    /// The path (without its query) must end with this (any if absent):
    /// `/transfers` hits the list and not `/transfers/{uuid}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_ends_with: Option<String>,
    /// Hit only the nth matching request (1-based) and the ones after it,
    /// up to `times`; absent: from the first.
    #[serde(default)]
    pub nth: Option<u32>,
    /// How many times it fires (default 1; 0 = every time).
    #[serde(default = "one")]
    pub times: u32,
    pub action: FaultAction,
}

impl Fault {
    /// A rule for requests of `method` whose path contains `path`, from
    /// the first, `times` times (0: every time).
    pub fn on(method: &str, path: &str, times: u32, action: FaultAction) -> Fault {
        Fault {
            method: Some(method.into()),
            path_contains: Some(path.into()),
            path_ends_with: None,
            nth: None,
            times,
            action,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer with this error instead of acting.
    Status {
        status: u16,
        #[serde(default = "default_error_id")]
        id: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Close the connection without answering, before acting.
    Drop,
    /// Act, then close the connection without answering (a lost response).
    DropAfterApply,
    /// Answer after this delay.
    Hang { ms: u64 },
    /// Answer 200 with a body that is not JSON.
    BadBody,
    /// The transfer this request creates fails.
    TransferFails,
    /// The transfer this request creates goes quiet for good: its bytes
    /// stop moving and Heroku never reports it finished (until cancelled).
    TransferStalls,
    /// The transfer this request creates succeeds with pg_restore errors
    /// ignored: `warnings` in the fake mode; with a PostgreSQL backend a
    /// real conflict in the target makes pg_restore ignore errors (and
    /// the data still arrives).
    TransferWarns {
        #[serde(default = "two")]
        warnings: u32,
    },
    /// The add-on this request creates fails to provision.
    ProvisionFails,
    /// The transfer this request creates succeeds but damages the copy
    /// (PostgreSQL-backed sandbox only): `how` is `drop_table`,
    /// `drop_rows` or `alter_value`.
    TransferCorrupts { how: super::pg::Corruption },
}

fn one() -> u32 {
    1
}
fn default_command_ms() -> u64 {
    1000
}
fn two() -> u32 {
    2
}
fn default_error_id() -> String {
    "internal_server_error".into()
}
fn default_token() -> String {
    "sandbox-token-0123456789abcdef".into()
}
fn default_page() -> usize {
    200
}
fn default_size() -> String {
    "standard-1X".into()
}
fn default_plans() -> Vec<String> {
    [
        "essential-0",
        "essential-1",
        "essential-2",
        "mini",
        "basic",
        "standard-0",
        "standard-2",
        "premium-0",
        "premium-2",
    ]
    .iter()
    .map(|p| format!("heroku-postgresql:{p}"))
    .collect()
}

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read the scenario {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the scenario {path} is not valid: {problem}")]
    Invalid { path: String, problem: String },
}

impl Scenario {
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, "(inline)")
    }

    fn parse(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_json::from_str(text).map_err(|e| ScenarioError::Invalid {
            path: path.to_string(),
            problem: e.to_string(),
        })?;
        s.check().map_err(|problem| ScenarioError::Invalid {
            path: path.to_string(),
            problem,
        })?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        if self.apps.is_empty() {
            return Err("it has no apps".into());
        }
        if self.page_size == 0 {
            return Err("page_size must be at least 1".into());
        }
        let t = &self.timing;
        if !(t.dump_ratio > 0.0 && t.dump_ratio <= 1.0) {
            return Err("timing.dump_ratio must be in (0, 1]".into());
        }
        if !(0.0..1.0).contains(&t.transfer_tail_ratio) {
            return Err("timing.transfer_tail_ratio must be in [0, 1)".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for app in &self.apps {
            for a in &app.addons {
                if !names.insert(a.name.clone()) {
                    return Err(format!("add-on name {} is used twice", a.name));
                }
                if let Some(f) = &a.fork_follow {
                    if f != "available" && f != "temporarily-unavailable" {
                        return Err(format!(
                            "add-on {}: fork_follow must be \"available\" or \"temporarily-unavailable\"",
                            a.name
                        ));
                    }
                }
                // Heroku has no such app: Essential databases cannot pool.
                if is_essential_plan(&a.plan)
                    && a.namespace_attachments
                        .iter()
                        .any(|n| n.namespace.starts_with("connection-pooling:"))
                {
                    return Err(format!(
                        "add-on {} is on the Essential-tier plan {} and has a connection pooler, \
                         which Heroku refuses",
                        a.name, a.plan
                    ));
                }
            }
        }
        Ok(())
    }

    /// The built-in demo: an app with web and worker dynos, a pooler-free
    /// database, and a config var holding a copy of DATABASE_URL.
    pub fn demo() -> Scenario {
        Scenario::from_json(include_str!("../../fixtures/scenarios/demo.json"))
            .unwrap_or_else(|e| panic!("built-in demo scenario: {e}"))
    }
}

/// FACT: Essential-tier Postgres plans are `essential-*` and the legacy
/// `dev`, `basic` and `mini` (heroku/heroku-cli-util
/// src/utils/addons/helpers.ts isEssentialDatabase /
/// isLegacyEssentialDatabase; heroku/cli src/lib/pg/util.ts essentialPlan).
pub fn is_essential_plan(plan: &str) -> bool {
    let Some(("heroku-postgresql", tier)) = plan.split_once(':') else {
        return false;
    };
    ["essential", "dev", "basic", "mini"]
        .iter()
        .any(|p| tier.starts_with(p))
}
