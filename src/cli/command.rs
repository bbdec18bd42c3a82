//! The command line's shape: the clap definitions of every command and
//! option, with their help, examples and value parsers.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::compare::VerifyMode;

const EXAMPLES_RUN: &str = "Examples:\n  pgmigrate run --app myapp --to standard-0\n  pgmigrate run --app myapp --to heroku-postgresql:standard-0 --confirm myapp";
const EXAMPLES_STATUS: &str =
    "Examples:\n  pgmigrate status --app myapp\n  pgmigrate status --app myapp --json\n  pgmigrate status --all";
const EXAMPLES_RESUME: &str = "Example:\n  pgmigrate resume --app myapp --confirm myapp";
const EXAMPLES_ROLLBACK: &str = "Examples:\n  pgmigrate rollback --app myapp --confirm myapp\n  pgmigrate rollback --app myapp --confirm myapp --keep-target";
const EXAMPLES_SANDBOX: &str =
    "Example:\n  pgmigrate sandbox --port 5050 --scenario fixtures/scenarios/demo.json";
const EXAMPLES_DEMO: &str = "Example:\n  pgmigrate demo";
const EXAMPLES_PLAN: &str =
    "Examples:\n  pgmigrate plan --app myapp --to standard-0\n  pgmigrate plan --app myapp --to heroku-postgresql:standard-0";
const EXAMPLES_LIST: &str = "Examples:\n  pgmigrate list\n  pgmigrate list --json";
const EXAMPLES_COMPLETIONS: &str =
    "Examples:\n  pgmigrate completions bash > ~/.local/share/bash-completion/completions/pgmigrate\n  pgmigrate completions zsh > ~/.zfunc/_pgmigrate";

/// Move a Heroku app's Postgres database to another plan, journaled,
/// resumable and reversible.
#[derive(Debug, Parser)]
#[command(name = "pgmigrate", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(super) verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub(super) quiet: bool,
    /// Log lines on stderr as text or as JSON objects.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(super) log_format: LogFormat,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Migrate the app's database to another plan: a copy to a new add-on, a
    /// follower changeover, or a change in place (`plan` says which).
    #[command(after_help = EXAMPLES_RUN)]
    Run(RunArgs),
    /// Show where the app's latest migration stands.
    #[command(after_help = EXAMPLES_STATUS)]
    Status(StatusArgs),
    /// Continue the app's unfinished migration from its journal.
    #[command(after_help = EXAMPLES_RESUME)]
    Resume(ResumeArgs),
    /// Undo the app's latest migration step by step.
    #[command(after_help = EXAMPLES_ROLLBACK)]
    Rollback(RollbackArgs),
    /// Serve a local simulated Heroku to rehearse against.
    #[command(after_help = EXAMPLES_SANDBOX)]
    Sandbox(SandboxArgs),
    /// Run a whole migration against a built-in sandbox and show its status.
    #[command(after_help = EXAMPLES_DEMO)]
    Demo(DemoArgs),
    /// Show what `run` would do, reading the app only; changes nothing.
    #[command(after_help = EXAMPLES_PLAN)]
    Plan(PlanArgs),
    /// List every journaled run of every app, newest first.
    #[command(after_help = EXAMPLES_LIST)]
    List(ListArgs),
    /// Print a shell completion script.
    #[command(after_help = EXAMPLES_COMPLETIONS)]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// What to migrate and how: shared by `run` and `plan`.
#[derive(Debug, Args)]
pub(super) struct MigrationArgs {
    #[command(flatten)]
    pub(super) app: AppArg,
    /// The target plan (required: pgmigrate never picks one for you), e.g.
    /// `standard-0` or `heroku-postgresql:essential-1`.
    #[arg(long, value_name = "PLAN")]
    pub(super) to: Option<String>,
    /// The attachment of the database to move.
    #[arg(long, value_name = "ATTACHMENT", default_value = "DATABASE")]
    pub(super) from: String,
    /// Allow a target plan equal to the source's, or one whose published
    /// storage is smaller than the data.
    #[arg(long)]
    pub(super) force: bool,
    /// Compare the new database with the old one before the cut-over.
    #[arg(long, value_enum, env = "PGMIGRATE_VERIFY", default_value_t = VerifyMode::Counts)]
    pub(super) verify: VerifyMode,
    /// How to move it: `auto` judges every method for this database and
    /// target and takes the possible one it prefers (a follower keeps the
    /// old database intact for a clean way back, then in place, then a
    /// copy, the only way across tiers), and says why; `plan` shows each
    /// with its expected downtime.
    #[arg(
        long,
        value_name = "METHOD",
        env = "PGMIGRATE_METHOD",
        default_value = "auto",
        value_parser = method_parser()
    )]
    pub(super) method: crate::methods::choose::Wanted,
}

/// `--method`: its values, from the type that knows them (so that shell
/// completions and `--help` offer them).
pub(super) fn method_parser(
) -> impl clap::builder::TypedValueParser<Value = crate::methods::choose::Wanted> {
    use crate::methods::choose::Wanted;
    use clap::builder::TypedValueParser;
    let values = Wanted::values()
        .into_iter()
        .map(|(name, help)| clap::builder::PossibleValue::new(name).help(help));
    clap::builder::PossibleValuesParser::new(values)
        .try_map(|s| Wanted::parse(&s).ok_or_else(|| format!("unknown method `{s}`")))
}

/// `--stop-before`: `cutover`, `maintenance` and every step id of every
/// method's plan, as the plans give them (for completions and `--help`).
pub(super) fn stop_before_parser() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    let mut values = vec![
        PossibleValue::new("cutover")
            .alias("cut-over")
            .help("before the app is put on the new database (maintenance still on)"),
        PossibleValue::new("maintenance").help("before the app is taken down"),
    ];
    values.extend(
        crate::methods::registry::step_ids()
            .into_iter()
            .map(PossibleValue::new),
    );
    clap::builder::PossibleValuesParser::new(values)
}

#[derive(Debug, Args)]
pub(super) struct PlanArgs {
    #[command(flatten)]
    pub(super) what: MigrationArgs,
    /// Print one JSON object (the chosen method and every method judged).
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub(super) struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub(super) struct AppArg {
    /// The Heroku app (default: $HEROKU_APP, else the repository's Heroku git remote).
    #[arg(short, long)]
    pub(super) app: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct ConfirmArg {
    /// Answer the confirmation prompt: the app's name.
    #[arg(long, value_name = "APP")]
    pub(super) confirm: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub(super) struct Timeouts {
    /// Seconds to wait for the target add-on to be provisioned (at most a
    /// week).
    #[arg(long, value_name = "SECS", default_value_t = PROVISION_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub(super) provision_timeout: u64,
    /// Seconds to wait for scaled-down dynos to stop (at most a week).
    #[arg(long, value_name = "SECS", default_value_t = DRAIN_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub(super) drain_timeout: u64,
    /// Seconds without copy progress before pgmigrate warns (it never
    /// cancels a copy Heroku has not failed; `rollback` does; at most a
    /// week).
    #[arg(long, value_name = "SECS", default_value_t = COPY_STALL_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub(super) copy_stall_timeout: u64,
}

const PROVISION_TIMEOUT_S: u64 = 1800;
const DRAIN_TIMEOUT_S: u64 = 180;
const COPY_STALL_TIMEOUT_S: u64 = 900;

/// The largest timeout option: a week (a larger one cannot be added to the
/// clock on every platform, and no wait of pgmigrate's is meant to last
/// longer).
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    pub(super) what: MigrationArgs,
    #[command(flatten)]
    pub(super) confirm: ConfirmArg,
    /// Stop before this step, resumable: `cutover` (copy done, maintenance still on),
    /// `maintenance` (only provision), or a step of the method's plan (`pgmigrate plan`
    /// lists them; shell completions offer them).
    #[arg(long, value_name = "STEP", value_parser = stop_before_parser(), hide_possible_values = true)]
    pub(super) stop_before: Option<String>,
    /// Only show what would be done (as `pgmigrate plan`); change nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// For an app found in maintenance with every dyno at zero (refused
    /// otherwise, as another run may have it down): with --force, the
    /// formation it should run after the run, `web=2,worker=1` (a size:
    /// `web=2:standard-2X`); maintenance then ends off.
    #[arg(long, value_name = "TYPE=N,...", value_parser = parse_formation)]
    pub(super) restore_formation: Option<RestoreFormation>,
    #[command(flatten)]
    pub(super) timeouts: Timeouts,
}

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    pub(super) app: AppArg,
    /// Print a JSON object (documented in the README) instead of text.
    #[arg(long)]
    pub(super) json: bool,
    /// List every journaled run (of the app, or of all apps without --app).
    #[arg(long)]
    pub(super) all: bool,
}

#[derive(Debug, Args)]
pub(super) struct ResumeArgs {
    #[command(flatten)]
    pub(super) app: AppArg,
    #[command(flatten)]
    pub(super) confirm: ConfirmArg,
    /// Change how the copy is compared before the cut-over (e.g. `none` when
    /// this machine cannot reach the databases).
    #[arg(long, value_enum)]
    pub(super) verify: Option<VerifyMode>,
    /// Proceed even if the app was changed outside pgmigrate.
    #[arg(long)]
    pub(super) force: bool,
    #[command(flatten)]
    pub(super) timeouts: Timeouts,
}

#[derive(Debug, Args)]
pub(super) struct RollbackArgs {
    #[command(flatten)]
    pub(super) app: AppArg,
    #[command(flatten)]
    pub(super) confirm: ConfirmArg,
    /// Keep the target add-on instead of destroying it.
    #[arg(long)]
    pub(super) keep_target: bool,
    /// Roll back even after the app ran on the new database, or after drift.
    #[arg(long)]
    pub(super) force: bool,
    /// Seconds to wait for dynos to stop when undoing the scale-up (the
    /// only wait of a rollback with a limit of its own).
    #[arg(long, value_name = "SECS", default_value_t = DRAIN_TIMEOUT_S)]
    pub(super) drain_timeout: u64,
}

impl RollbackArgs {
    /// Rollback provisions nothing and follows no copy: only the drain
    /// limit is its own, the others keep their defaults (unused).
    pub(super) fn timeouts(&self) -> Timeouts {
        Timeouts {
            provision_timeout: PROVISION_TIMEOUT_S,
            drain_timeout: self.drain_timeout,
            copy_stall_timeout: COPY_STALL_TIMEOUT_S,
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 5050)]
    pub(super) port: u16,
    /// A scenario JSON file (default: the demo scenario).
    #[arg(long, value_name = "FILE")]
    pub(super) scenario: Option<PathBuf>,
    /// Back the Postgres add-ons with real databases on this PostgreSQL
    /// server (a URL of a role that may create databases).
    #[arg(long, value_name = "URL", env = "PGMIGRATE_SANDBOX_POSTGRES")]
    pub(super) postgres: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// A scenario JSON file (default: the built-in demo app).
    #[arg(long, value_name = "FILE")]
    pub(super) scenario: Option<PathBuf>,
    /// The app of the scenario to migrate.
    #[arg(long, default_value = "demo-app")]
    pub(super) app: String,
    /// Back the Postgres add-ons with real databases on this PostgreSQL
    /// server (a URL of a role that may create databases).
    #[arg(long, value_name = "URL", env = "PGMIGRATE_SANDBOX_POSTGRES")]
    pub(super) postgres: Option<String>,
}

/// `--restore-formation`'s value (a newtype: clap reads a bare `Vec` as
/// repeated values).
#[derive(Debug, Clone)]
pub(super) struct RestoreFormation(pub(super) Vec<crate::journal::ProcessRecord>);

/// `web=2,worker=1:standard-2X` (commas or spaces between types).
pub(super) fn parse_formation(s: &str) -> Result<RestoreFormation, String> {
    let bad = |p: &str| format!("`{p}` is not TYPE=N or TYPE=N:SIZE (e.g. web=2,worker=1)");
    let out: Result<Vec<_>, String> = s
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (t, rest) = p.split_once('=').ok_or_else(|| bad(p))?;
            let (n, size) = match rest.split_once(':') {
                Some((n, z)) => (n, Some(z.to_string())),
                None => (rest, None),
            };
            let quantity = n.parse::<u32>().map_err(|_| bad(p))?;
            if t.is_empty() || quantity > 10_000 {
                return Err(bad(p));
            }
            Ok(crate::journal::ProcessRecord {
                process_type: t.to_string(),
                quantity,
                size,
            })
        })
        .collect();
    match out {
        Ok(v) if v.is_empty() => Err("name at least one process type: web=2".into()),
        other => other.map(RestoreFormation),
    }
}
