//! The command line: the clap definitions, the entry point, dispatch to
//! one file per command and the mapping of errors to exit codes. Raw
//! arguments and the environment become checked values once, in `args`;
//! everything that prints lives in `render`. The only module that prints.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::compare::VerifyMode;
use crate::error::{exit, Error};
use crate::secrets::redact;

/// Print a line on stdout. A closed stdout (`pgmigrate status | head`) is
/// not an error and must never abort a run midway, so write errors are
/// ignored.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout (see `outln!`).
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! errln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod args;
mod plan;
mod render;
mod run;
mod sandbox;
mod status;

pub use args::heroku_apps_in_remotes;
pub use render::{render_plan, render_report};

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
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log lines on stderr as text or as JSON objects.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the app's database to a new add-on of another plan.
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
struct MigrationArgs {
    #[command(flatten)]
    app: AppArg,
    /// The target plan (required: pgmigrate never picks one for you), e.g.
    /// `standard-0` or `heroku-postgresql:essential-1`.
    #[arg(long, value_name = "PLAN")]
    to: Option<String>,
    /// The attachment of the database to move.
    #[arg(long, value_name = "ATTACHMENT", default_value = "DATABASE")]
    from: String,
    /// Allow a target plan equal to the source's, or one whose published
    /// storage is smaller than the data.
    #[arg(long)]
    force: bool,
    /// Compare the new database with the old one before the cut-over.
    #[arg(long, value_enum, env = "PGMIGRATE_VERIFY", default_value_t = VerifyMode::Counts)]
    verify: VerifyMode,
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
    method: crate::methods::choose::Wanted,
}

/// `--method`: its values, from the type that knows them (so that shell
/// completions and `--help` offer them).
fn method_parser() -> impl clap::builder::TypedValueParser<Value = crate::methods::choose::Wanted> {
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
fn stop_before_parser() -> clap::builder::PossibleValuesParser {
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
struct PlanArgs {
    #[command(flatten)]
    what: MigrationArgs,
    /// Print one JSON object (the chosen method and every method judged).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AppArg {
    /// The Heroku app (default: $HEROKU_APP, else the repository's Heroku git remote).
    #[arg(short, long)]
    app: Option<String>,
}

#[derive(Debug, Args)]
struct ConfirmArg {
    /// Answer the confirmation prompt: the app's name.
    #[arg(long, value_name = "APP")]
    confirm: Option<String>,
}

#[derive(Debug, Args, Clone)]
struct Timeouts {
    /// Seconds to wait for the target add-on to be provisioned (at most a
    /// week).
    #[arg(long, value_name = "SECS", default_value_t = PROVISION_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    provision_timeout: u64,
    /// Seconds to wait for scaled-down dynos to stop (at most a week).
    #[arg(long, value_name = "SECS", default_value_t = DRAIN_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    drain_timeout: u64,
    /// Seconds without copy progress before pgmigrate warns (it never
    /// cancels a copy Heroku has not failed; `rollback` does; at most a
    /// week).
    #[arg(long, value_name = "SECS", default_value_t = COPY_STALL_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    copy_stall_timeout: u64,
}

const PROVISION_TIMEOUT_S: u64 = 1800;
const DRAIN_TIMEOUT_S: u64 = 180;
const COPY_STALL_TIMEOUT_S: u64 = 900;

/// The largest timeout option: a week (a larger one cannot be added to the
/// clock on every platform, and no wait of pgmigrate's is meant to last
/// longer).
const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    what: MigrationArgs,
    #[command(flatten)]
    confirm: ConfirmArg,
    /// Stop before this step, resumable: `cutover` (copy done, maintenance still on),
    /// `maintenance` (only provision), or a step of the method's plan (`pgmigrate plan`
    /// lists them; shell completions offer them).
    #[arg(long, value_name = "STEP", value_parser = stop_before_parser(), hide_possible_values = true)]
    stop_before: Option<String>,
    /// Only show what would be done (as `pgmigrate plan`); change nothing.
    #[arg(long)]
    dry_run: bool,
    /// For an app found in maintenance with every dyno at zero (refused
    /// otherwise, as another run may have it down): with --force, the
    /// formation it should run after the run, `web=2,worker=1` (a size:
    /// `web=2:standard-2X`); maintenance then ends off.
    #[arg(long, value_name = "TYPE=N,...", value_parser = parse_formation)]
    restore_formation: Option<RestoreFormation>,
    #[command(flatten)]
    timeouts: Timeouts,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    app: AppArg,
    /// Print a JSON object (documented in the README) instead of text.
    #[arg(long)]
    json: bool,
    /// List every journaled run (of the app, or of all apps without --app).
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct ResumeArgs {
    #[command(flatten)]
    app: AppArg,
    #[command(flatten)]
    confirm: ConfirmArg,
    /// Change how the copy is compared before the cut-over (e.g. `none` when
    /// this machine cannot reach the databases).
    #[arg(long, value_enum)]
    verify: Option<VerifyMode>,
    /// Proceed even if the app was changed outside pgmigrate.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    timeouts: Timeouts,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    #[command(flatten)]
    app: AppArg,
    #[command(flatten)]
    confirm: ConfirmArg,
    /// Keep the target add-on instead of destroying it.
    #[arg(long)]
    keep_target: bool,
    /// Roll back even after the app ran on the new database, or after drift.
    #[arg(long)]
    force: bool,
    /// Seconds to wait for dynos to stop when undoing the scale-up (the
    /// only wait of a rollback with a limit of its own).
    #[arg(long, value_name = "SECS", default_value_t = DRAIN_TIMEOUT_S)]
    drain_timeout: u64,
}

impl RollbackArgs {
    /// Rollback provisions nothing and follows no copy: only the drain
    /// limit is its own, the others keep their defaults (unused).
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            provision_timeout: PROVISION_TIMEOUT_S,
            drain_timeout: self.drain_timeout,
            copy_stall_timeout: COPY_STALL_TIMEOUT_S,
        }
    }
}

#[derive(Debug, Args)]
struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 5050)]
    port: u16,
    /// A scenario JSON file (default: the demo scenario).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Back the Postgres add-ons with real databases on this PostgreSQL
    /// server (a URL of a role that may create databases).
    #[arg(long, value_name = "URL", env = "PGMIGRATE_SANDBOX_POSTGRES")]
    postgres: Option<String>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// A scenario JSON file (default: the built-in demo app).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The app of the scenario to migrate.
    #[arg(long, default_value = "demo-app")]
    app: String,
    /// Back the Postgres add-ons with real databases on this PostgreSQL
    /// server (a URL of a role that may create databases).
    #[arg(long, value_name = "URL", env = "PGMIGRATE_SANDBOX_POSTGRES")]
    postgres: Option<String>,
}

/// `--restore-formation`'s value (a newtype: clap reads a bare `Vec` as
/// repeated values).
#[derive(Debug, Clone)]
struct RestoreFormation(Vec<crate::journal::ProcessRecord>);

/// `web=2,worker=1:standard-2X` (commas or spaces between types).
fn parse_formation(s: &str) -> Result<RestoreFormation, String> {
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

/// Entry point of the binary: parse, run, report, exit.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    init_tracing(cli.verbose, cli.quiet, cli.log_format);
    match dispatch(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn report_error(e: &Error) {
    let mut text = if e.is_asked_stop() {
        format!("stopped: {e}")
    } else {
        format!("error: {e}")
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    let text = redact(&text);
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn init_tracing(verbose: u8, quiet: bool, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = std::env::var("PGMIGRATE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|_| verbose == 0 && !quiet)
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("pgmigrate={default},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        // A lost terminal (SIGHUP, a closed pipe) must not stop a run: the
        // default would report a failed write with `eprintln!`, which
        // panics when stderr itself is gone.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Hand each command to its file.
fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Status(a) => status::status(a),
        Command::Resume(a) => run::resume(a),
        Command::Rollback(a) => run::rollback(a),
        Command::Sandbox(a) => sandbox::sandbox(a),
        Command::Demo(a) => sandbox::demo(a),
        Command::Plan(a) => plan::plan(&a.what, a.json),
        Command::List(a) => status::list(a.json),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pgmigrate", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(())
        }
    }
}
