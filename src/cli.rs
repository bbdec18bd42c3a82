//! The command line: clap definitions, turning raw arguments into checked
//! settings in one place, dispatch to the library, and rendering results
//! for people (plain lines) or scripts (JSON). The only module that prints.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::error::{exit, Error};
use crate::heroku::{Client, Endpoints, RetryPolicy, Token};
use crate::journal::RunOptions;
use crate::methods::session::{self, RunRequest, Session};
use crate::methods::{copy, human_bytes, Observer, Progress, Settings};
use crate::status::{self, StatusReport};
use crate::steps;
use crate::store::Home;
use crate::verify::VerifyMode;

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

const EXAMPLES_RUN: &str = "Examples:\n  pgmigrate run --app myapp\n  pgmigrate run --app myapp --to heroku-postgresql:standard-0 --confirm myapp";
const EXAMPLES_STATUS: &str =
    "Examples:\n  pgmigrate status --app myapp\n  pgmigrate status --app myapp --json\n  pgmigrate status --all";
const EXAMPLES_RESUME: &str = "Example:\n  pgmigrate resume --app myapp --confirm myapp";
const EXAMPLES_ROLLBACK: &str = "Examples:\n  pgmigrate rollback --app myapp --confirm myapp\n  pgmigrate rollback --app myapp --confirm myapp --keep-target";
const EXAMPLES_SANDBOX: &str =
    "Example:\n  pgmigrate sandbox --port 5050 --scenario fixtures/scenarios/demo.json";
const EXAMPLES_DEMO: &str = "Example:\n  pgmigrate demo";
const EXAMPLES_PLAN: &str =
    "Examples:\n  pgmigrate plan --app myapp\n  pgmigrate plan --app myapp --to heroku-postgresql:standard-0";
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
    /// The target plan.
    #[arg(
        long,
        value_name = "PLAN",
        default_value = "heroku-postgresql:essential-0"
    )]
    to: String,
    /// The attachment of the database to move.
    #[arg(long, value_name = "ATTACHMENT", default_value = "DATABASE")]
    from: String,
    /// Allow a target plan equal to the source's.
    #[arg(long)]
    force: bool,
    /// Compare the new database with the old one before the cut-over.
    #[arg(long, value_enum, env = "PGMIGRATE_VERIFY", default_value_t = VerifyMode::Counts)]
    verify: VerifyMode,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    what: MigrationArgs,
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
    /// Seconds to wait for the target add-on to be provisioned.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    provision_timeout: u64,
    /// Seconds to wait for scaled-down dynos to stop.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    drain_timeout: u64,
    /// Seconds without copy progress before pgmigrate warns (it never
    /// cancels a copy Heroku has not failed; `rollback` does).
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    copy_stall_timeout: u64,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    what: MigrationArgs,
    #[command(flatten)]
    confirm: ConfirmArg,
    /// Stop before this step, resumable: `cutover` (copy done, maintenance still on),
    /// `maintenance` (only provision), or any step name.
    #[arg(long, value_name = "STEP", value_parser = parse_step)]
    stop_before: Option<String>,
    /// Only show what would be done (as `pgmigrate plan`); change nothing.
    #[arg(long)]
    dry_run: bool,
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
    #[command(flatten)]
    timeouts: Timeouts,
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

fn parse_step(s: &str) -> Result<String, String> {
    // Short names for the two places a person usually wants to pause.
    let s = match s {
        "cutover" | "cut-over" => "promote-target",
        "maintenance" => "maintenance-on",
        other => other,
    };
    let ids = copy::plan().ids();
    if ids.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown step `{s}`; use cutover, maintenance, or one of: {}",
            ids.join(", ")
        ))
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
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn report_error(e: &Error) {
    let mut text = format!("error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    let text = crate::secrets::redact(&text);
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
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
}

/// `--app`, else `HEROKU_APP`, else the one Heroku git remote of the
/// current repository, as the official CLI does; validated.
fn resolve_app(arg: &AppArg) -> Result<String, Error> {
    let app = match arg
        .app
        .clone()
        .or_else(|| env("HEROKU_APP").filter(|s| !s.is_empty()))
    {
        Some(app) => app,
        None => app_from_git()?,
    };
    if !steps::valid_app_name(&app) {
        return Err(Error::Usage(format!(
            "`{app}` is not a valid Heroku app name: app names are 3 to 30 characters, lower-case \
             letters, digits and dashes, starting with a letter; check it with `heroku apps`"
        )));
    }
    Ok(app)
}

/// The app named by the current repository's Heroku git remotes.
fn app_from_git() -> Result<String, Error> {
    let none = || Error::Usage("no app given: pass --app APP (or set HEROKU_APP)".into());
    let out = std::process::Command::new("git")
        .args(["remote", "-v"])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|_| none())?;
    if !out.status.success() {
        return Err(none());
    }
    let apps = heroku_apps_in_remotes(&String::from_utf8_lossy(&out.stdout));
    match apps.as_slice() {
        [] => Err(none()),
        [one] => Ok(one.clone()),
        many => Err(Error::Usage(format!(
            "this repository has git remotes for several Heroku apps ({}): pass --app APP",
            many.join(", ")
        ))),
    }
}

/// The distinct app names in `git remote -v` output whose URL is
/// `https://git.heroku.com/<app>.git` or `git@heroku.com:<app>.git`.
pub fn heroku_apps_in_remotes(text: &str) -> Vec<String> {
    let mut apps: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|url| {
            url.strip_prefix("https://git.heroku.com/")
                .or_else(|| url.strip_prefix("git@heroku.com:"))
                .and_then(|rest| rest.strip_suffix(".git"))
                .map(str::to_string)
        })
        .collect();
    apps.sort();
    apps.dedup();
    apps
}

fn client() -> Result<Client, Error> {
    let endpoints = Endpoints::from_env(&env)?;
    let token =
        crate::heroku::token_from_env(&env, home_dir().as_deref(), &endpoints.netrc_machine())?;
    Ok(Client::new(endpoints, token, retry_policy()?))
}

/// The retry policy, with the limits `PGMIGRATE_HTTP_TIMEOUT` (one
/// request) and `PGMIGRATE_RETRY_FOR` (all retries of one call), in
/// seconds, when set.
fn retry_policy() -> Result<RetryPolicy, Error> {
    let mut p = RetryPolicy::default();
    if let Some(d) = env_secs("PGMIGRATE_HTTP_TIMEOUT")? {
        p.request_timeout = d;
    }
    if let Some(d) = env_secs("PGMIGRATE_RETRY_FOR")? {
        p.max_elapsed = d;
    }
    Ok(p)
}

/// An environment variable holding a positive number of seconds, if set.
fn env_secs(name: &str) -> Result<Option<Duration>, Error> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{name}={v} is not a number of seconds: set it to a positive number such \
                     as 30, or unset it"
                ))
            }),
    }
}

fn home() -> Result<Home, Error> {
    Home::from_env(&env)
}

/// Check `--confirm`, or ask on a terminal; refuse without either.
fn confirm(what: &str, app: &str, given: &ConfirmArg) -> Result<(), Error> {
    if let Some(c) = &given.confirm {
        if c == app {
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "--confirm {c} does not match the app {app}: pass --confirm {app}"
        )));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::NotConfirmed {
            what: what.to_string(),
            app: app.to_string(),
        });
    }
    let mut out = std::io::stdout();
    let _ = write!(
        out,
        "{what} will change the app {app}.\nType the app name to confirm: "
    );
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::Usage(format!("cannot read the confirmation: {e}")))?;
    if line.trim() == app {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "confirmation `{}` does not match {app}; nothing was changed",
            line.trim()
        )))
    }
}

fn settings(t: &Timeouts) -> Result<Settings, Error> {
    Ok(Settings {
        provision_timeout: Duration::from_secs(t.provision_timeout),
        // For tests: Heroku's budget is that of `heroku pg:wait`.
        wait_status_404_for: env_secs("PGMIGRATE_WAIT_STATUS_404_FOR")?
            .unwrap_or(crate::methods::steps::wait_target::WAIT_STATUS_404_FOR),
        drain_timeout: Duration::from_secs(t.drain_timeout),
        copy_stall_timeout: Duration::from_secs(t.copy_stall_timeout),
        interrupt: Some(interrupt_flag()),
        ..Settings::default()
    })
}

/// Ctrl-C and SIGTERM set a flag that the executor checks at every
/// resumable point (the request in flight finishes and is journaled
/// first). A second signal exits at once with status 130: the journal
/// already covers everything sent.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let second = signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone());
        let first = signal_hook::flag::register(signal, flag.clone());
        if let Err(e) = second.and(first) {
            tracing::warn!("cannot handle signal {signal}: {e}");
        }
    }
    flag
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Status(a) => cmd_status(a),
        Command::Resume(a) => cmd_resume(a),
        Command::Rollback(a) => cmd_rollback(a),
        Command::Sandbox(a) => cmd_sandbox(a),
        Command::Demo(a) => cmd_demo(a),
        Command::Plan(a) => cmd_plan(&a.what),
        Command::List(a) => cmd_list(a.json),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pgmigrate", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(())
        }
    }
}

fn cmd_plan(what: &MigrationArgs) -> Result<(), Error> {
    let (app, options) = migration(what)?;
    let client = client()?;
    let reading = crate::methods::preflight::preflight(&client, &app, &options, what.force)?;
    out!("{}", render_plan(&app, &options, &reading));
    Ok(())
}

/// What `run` would do, for people.
pub fn render_plan(
    app: &str,
    options: &RunOptions,
    r: &crate::methods::preflight::PreflightReading,
) -> String {
    let f = &r.facts;
    let mut s = format!("Plan for {app} (read only: nothing was changed)\n\n");
    s.push_str(&format!(
        "  source   {} ({}){}\n",
        f.source.name,
        f.source.plan,
        f.source_bytes
            .map(|b| format!(", {}", human_bytes(b)))
            .unwrap_or_default()
    ));
    s.push_str(&format!(
        "  target   a new {} add-on, attached as {} in place of the old one\n",
        options.to_plan, options.from_attachment
    ));
    let running: Vec<String> = steps::running_types(f)
        .iter()
        .map(|p| {
            format!(
                "{}={}{}",
                p.process_type,
                p.quantity,
                p.size
                    .as_deref()
                    .map(|z| format!(" ({z})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    s.push_str(&format!(
        "  scale    {} to zero during the copy, then back\n",
        if running.is_empty() {
            "nothing".to_string()
        } else {
            running.join(", ")
        }
    ));
    s.push_str(&format!(
        "  rebind   {}\n",
        if f.rebind_vars.is_empty() {
            "no other config var".to_string()
        } else {
            f.rebind_vars.join(", ")
        }
    ));
    if let Some(p) = &f.pool {
        s.push_str(&format!("  pooler   {} follows the database\n", p.name));
    }
    s.push_str(&format!(
        "  downtime {}\n\nSteps:\n",
        match copy::expected_downtime(f) {
            Some(d) => format!(
                "about {} (maintenance on → off: drain up to 30 s, copy at about 3 min/GB)",
                humantime::format_duration(Duration::from_secs(d.as_secs()))
            ),
            None => "unknown (Heroku did not report the database size); about 3 min/GB".into(),
        }
    ));
    // The plan's own skip rules, asked of the journal the run would start.
    let plan = copy::plan();
    let mut j = crate::journal::Journal::new(
        String::new(),
        app.to_string(),
        options.clone(),
        session::target_plan(app, "0"),
        plan.method,
        &plan.ids(),
    );
    j.facts = Some(f.clone());
    for step in plan.steps.iter().skip(1) {
        match (step.skip)(&j) {
            Some(why) => s.push_str(&format!("  {:<16} skip: {why}\n", step.id)),
            None => s.push_str(&format!("  {:<16} {}\n", step.id, step.words)),
        }
    }
    for w in &r.warnings {
        s.push_str(&format!("\nwarning: {w}\n"));
    }
    s.push_str(&format!(
        "\nRun it with: pgmigrate run --app {app} --to {}\n",
        options.to_plan
    ));
    s
}

fn cmd_list(json: bool) -> Result<(), Error> {
    print_runs(&home()?, None, json)
}

/// Every journaled run (of one app, or of all), newest first.
fn print_runs(home: &Home, only: Option<&str>, json: bool) -> Result<(), Error> {
    let apps = match only {
        Some(app) => vec![app.to_string()],
        None => home.apps()?,
    };
    let mut runs = Vec::new();
    for app in apps {
        for id in home.run_ids(&app)? {
            let path = home.journal_path(&app, &id);
            runs.push(status::summarize(&crate::journal::writer::load_path(
                &path,
            )?));
        }
    }
    runs.sort_by(|x, y| y.run_id.cmp(&x.run_id));
    if json {
        print_json(
            &serde_json::json!({ "status_version": status::STATUS_JSON_VERSION, "runs": runs }),
        );
    } else if runs.is_empty() {
        outln!("No migration is journaled in {}.", home.root().display());
    } else {
        for r in runs {
            outln!("{}  {:<30}  {}", r.run_id, r.app, r.summary);
        }
    }
    Ok(())
}

/// The app and run options from the command line, checked.
fn migration(what: &MigrationArgs) -> Result<(String, RunOptions), Error> {
    let app = resolve_app(&what.app)?;
    let options = RunOptions {
        to_plan: steps::normalise_plan(&what.to).map_err(Error::Usage)?,
        from_attachment: what.from.clone(),
        verify: what.verify,
    };
    Ok((app, options))
}

fn cmd_run(a: RunArgs) -> Result<(), Error> {
    if a.dry_run {
        return cmd_plan(&a.what);
    }
    let (app, options) = migration(&a.what)?;
    let home = home()?;
    let client = client()?;
    confirm("pgmigrate run", &app, &a.confirm)?;
    let mut s = settings(&a.timeouts)?;
    s.force = a.what.force;
    s.stop_before = a.stop_before;
    let request = RunRequest {
        app: app.clone(),
        options,
        method: copy::METHOD,
    };
    let out = Printer::new();
    let started = Instant::now();
    let journal = session::start(&client, &home, &request, s, &out)?;
    print_summary(&journal, started.elapsed(), client.request_count());
    Ok(())
}

fn cmd_resume(a: ResumeArgs) -> Result<(), Error> {
    let app = resolve_app(&a.app)?;
    let home = home()?;
    let client = client()?;
    confirm("pgmigrate resume", &app, &a.confirm)?;
    let mut s = settings(&a.timeouts)?;
    s.force = a.force;
    let out = Printer::new();
    let started = Instant::now();
    let mut m = Session::open(&client, &home, &app, "resume", s, &out)?;
    if let Some(mode) = a.verify {
        m.set_verify(mode)?;
    }
    let journal = m.resume()?;
    print_summary(&journal, started.elapsed(), client.request_count());
    Ok(())
}

fn cmd_rollback(a: RollbackArgs) -> Result<(), Error> {
    let app = resolve_app(&a.app)?;
    let home = home()?;
    let client = client()?;
    confirm("pgmigrate rollback", &app, &a.confirm)?;
    let mut s = settings(&a.timeouts)?;
    s.force = a.force;
    s.keep_target = a.keep_target;
    let out = Printer::new();
    let mut m = Session::open(&client, &home, &app, "rollback", s, &out)?;
    let journal = m.rollback()?;
    outln!(
        "Rolled back {}: {}",
        journal.app,
        crate::methods::outcome_words(&journal)
    );
    Ok(())
}

fn cmd_status(a: StatusArgs) -> Result<(), Error> {
    let home = home()?;
    if a.all {
        let apps = match &a.app.app {
            Some(_) => vec![resolve_app(&a.app)?],
            None => home.apps()?,
        };
        let mut runs = Vec::new();
        for app in apps {
            for id in home.run_ids(&app)? {
                let path = home.journal_path(&app, &id);
                runs.push(status::summarize(&crate::journal::writer::load_path(
                    &path,
                )?));
            }
        }
        runs.sort_by(|x, y| y.run_id.cmp(&x.run_id));
        if a.json {
            print_json(
                &serde_json::json!({ "status_version": status::STATUS_JSON_VERSION, "runs": runs }),
            );
        } else if runs.is_empty() {
            outln!("No migration is journaled in {}.", home.root().display());
        } else {
            for r in runs {
                outln!("{}  {:<30}  {}", r.run_id, r.app, r.summary);
            }
        }
        return Ok(());
    }
    let app = resolve_app(&a.app)?;
    let (journal, path) =
        crate::journal::writer::latest(&home, &app)?.ok_or_else(|| Error::NoRun {
            app: app.clone(),
            home: home.root().to_path_buf(),
        })?;
    let holder = crate::store::lock::current_holder(&home, &app);
    let report = status::report(&journal, holder, &path);
    if a.json {
        print_json(&report);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => outln!("{s}"),
        Err(e) => errln!("error: cannot encode JSON: {e}"),
    }
}

/// Render a status report for people.
pub fn render_report(r: &StatusReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Migration {} of {}: {}\n",
        r.run_id, r.app, r.summary
    ));
    s.push_str(&format!(
        "  {} ({}) → {} as {}\n",
        r.source_addon.as_deref().unwrap_or("?"),
        r.source_plan.as_deref().unwrap_or("?"),
        r.target_addon,
        r.target_plan
    ));
    if let Some(h) = &r.running_process {
        s.push_str(&format!("  Running now: {h}\n"));
    }
    s.push_str("\nSteps:\n");
    for st in &r.steps {
        let state = if st.in_doubt {
            "IN DOUBT".to_string()
        } else {
            serde_json::to_value(st.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let dur = st
            .duration_ms
            .map(|ms| format!(" {:.1}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        let at = st
            .started_at
            .as_deref()
            .map(|t| format!(" {}", t.get(11..19).unwrap_or(t)))
            .unwrap_or_default();
        let undo = st
            .undo
            .and_then(|u| serde_json::to_value(u).ok())
            .and_then(|v| v.as_str().map(|u| format!("  [undo: {u}]")))
            .unwrap_or_default();
        let note = match (&st.note, st.state) {
            (Some(n), crate::engine::StepState::Skipped) => format!("  ({n})"),
            _ => String::new(),
        };
        s.push_str(&format!(
            "  {:<16} {:<8}{at}{dur}{undo}{note}\n",
            st.name, state
        ));
        if let Some(n) = &st.note {
            if !matches!(
                st.state,
                crate::engine::StepState::Done | crate::engine::StepState::Skipped
            ) {
                s.push_str(&format!(
                    "  {:<16} {}\n",
                    "",
                    n.lines().next().unwrap_or("")
                ));
            }
        }
    }
    s.push_str("\nWhere things stand:\n");
    for ans in &r.answers.0 {
        s.push_str(&format!("  {:<14} {}\n", ans.label, ans.words));
    }
    if r.next_commands.is_empty() {
        s.push_str("\nNothing to do next.\n");
    } else {
        s.push_str("\nNext:\n");
        for c in &r.next_commands {
            s.push_str(&format!("  {c}\n"));
        }
    }
    s.push_str(&format!("\nJournal: {}\n", r.journal_path));
    s
}

fn print_report(r: &StatusReport) {
    out!("{}", render_report(r));
}

fn print_summary(j: &crate::journal::Journal, took: Duration, requests: u64) {
    let between = |a: Option<&String>, b: Option<&String>| {
        status::duration_ms(a.map(String::as_str), b.map(String::as_str)).map(Duration::from_millis)
    };
    let mut lines = vec![format!(
        "Migrated {}: {}",
        j.app,
        crate::methods::outcome_words(j)
    )];
    let (on, off) = crate::methods::outputs::window(j);
    if let Some(d) = between(on.as_ref(), off.as_ref()) {
        lines.push(format!(
            "  downtime (maintenance on → off): {:.1}s",
            d.as_secs_f64()
        ));
    }
    if let Some(t) = copy::transfer(j) {
        let copy_time = between(
            j.log
                .record(copy::START_COPY)
                .and_then(|r| r.started_at.as_ref()),
            j.log
                .record(copy::WAIT_COPY)
                .and_then(|r| r.finished_at.as_ref()),
        )
        .map(|d| format!(" in {:.1}s", d.as_secs_f64()))
        .unwrap_or_default();
        lines.push(format!(
            "  copied: {}{copy_time}",
            t.processed_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "?".into())
        ));
    }
    if let Some(f) = &j.facts {
        lines.push(format!(
            "  DATABASE now: {} ({}); old database {} kept attached",
            j.target.addon_name, j.options.to_plan, f.source.name
        ));
        if !f.rebind_vars.is_empty() {
            lines.push(format!("  rebound: {}", f.rebind_vars.join(", ")));
        }
    }
    lines.push(format!(
        "  took {:.1}s, {requests} API requests",
        took.as_secs_f64()
    ));
    outln!("{}", lines.join("\n"));
}

/// Renders progress on stdout: on a terminal, a spinner with the elapsed
/// time for waits and a progress bar (bytes, rate, ETA) for the copy, above
/// which finished steps scroll; otherwise plain timestamped lines, with
/// waits and copy progress throttled to one line every 5 s.
struct Printer {
    tty: bool,
    last_wait: Mutex<Option<Instant>>,
    /// Whether the last copy line said "queued": a change is always shown.
    copy_queued: Mutex<Option<bool>>,
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Printer {
    fn new() -> Printer {
        Printer {
            tty: std::io::stdout().is_terminal(),
            last_wait: Mutex::new(None),
            copy_queued: Mutex::new(None),
            bar: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let clock = now.get(11..19).unwrap_or(&now).to_string();
        let text = format!("[{clock}] {}", crate::secrets::redact(text));
        let bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match bar.as_ref() {
            Some(b) => b.println(text),
            None => outln!("{text}"),
        }
    }

    /// Throttle repeated wait/progress lines to one every 5 s.
    fn throttled(&self) -> bool {
        let mut last = self.last_wait.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if due {
            *last = Some(Instant::now());
        }
        !due
    }

    /// The terminal's spinner or bar, made on first use.
    fn with_bar(&self, copy: bool, f: impl FnOnce(&indicatif::ProgressBar)) {
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        let b = bar.get_or_insert_with(|| {
            let b = if copy {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "  copying [{bar:32}] {decimal_bytes}/{decimal_total_bytes} {msg} ({elapsed})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b
            } else {
                let b = indicatif::ProgressBar::new_spinner();
                b.set_style(
                    indicatif::ProgressStyle::with_template("  {spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                b
            };
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        f(b);
    }

    fn clear_bar(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

impl Observer for Printer {
    fn progress(&self, e: &Progress) {
        match e {
            Progress::StepStarted(s, words) => {
                if let Ok(mut l) = self.last_wait.lock() {
                    *l = Some(Instant::now());
                }
                self.clear_bar();
                self.line(&format!("{s}: {words}…"))
            }
            Progress::StepDone(s, d) => {
                self.clear_bar();
                self.line(&format!("{s}: {d}"))
            }
            Progress::StepSkipped(s, why) => self.line(&format!("{s}: skipped ({why})")),
            Progress::Waiting(s, what, elapsed) => {
                if self.tty {
                    self.with_bar(false, |b| b.set_message(format!("{s}: {what}")));
                } else if !self.throttled() {
                    self.line(&format!("{s}: {what} ({}s)", elapsed.as_secs()))
                }
            }
            Progress::Copy {
                processed,
                total,
                elapsed,
                queued,
            } => {
                // Heroku counts dump bytes (compressed): they end well below
                // the source's size, so no percentage or ETA is derived
                // from the two.
                let source = total
                    .map(|t| format!(" (source database {})", human_bytes(t)))
                    .unwrap_or_default();
                let what = if *queued {
                    format!("queued at Heroku, not started yet{source}")
                } else {
                    let secs = elapsed.as_secs_f64();
                    let rate = if secs > 0.0 {
                        format!(", {}/s", human_bytes((*processed as f64 / secs) as u64))
                    } else {
                        String::new()
                    };
                    format!("{} dumped{rate}{source}", human_bytes(*processed))
                };
                let changed = self
                    .copy_queued
                    .lock()
                    .map(|mut q| q.replace(*queued) != Some(*queued))
                    .unwrap_or(false);
                if self.tty {
                    self.with_bar(false, |b| b.set_message(format!("wait-copy: {what}")));
                } else if !self.throttled() || changed {
                    self.line(&format!("wait-copy: {what}"))
                }
            }
            Progress::UndoStarted(s, words) => {
                self.clear_bar();
                self.line(&format!("undo {s}: {words}…"))
            }
            Progress::UndoDone(s, d) => {
                self.clear_bar();
                self.line(&format!("undo {s}: {d}"))
            }
            Progress::UndoSkipped(s, d) => self.line(&format!("undo {s}: skipped ({d})")),
            Progress::Note(n) => self.line(n),
            Progress::Warning(w) => self.line(&format!("warning: {w}")),
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.clear_bar();
    }
}

fn load_scenario(path: Option<&PathBuf>) -> Result<crate::sim::Scenario, Error> {
    match path {
        Some(p) => crate::sim::Scenario::from_file(p).map_err(|e| Error::Sandbox(e.to_string())),
        None => Ok(crate::sim::Scenario::demo()),
    }
}

fn cmd_sandbox(a: SandboxArgs) -> Result<(), Error> {
    let scenario = load_scenario(a.scenario.as_ref())?;
    let sandbox = crate::sim::Sandbox::start_with(scenario, a.port, a.postgres.as_deref())
        .map_err(|e| {
            Error::Sandbox(crate::secrets::redact(&format!(
                "cannot start on 127.0.0.1:{}: {e}",
                a.port
            )))
        })?;
    let url = sandbox.base_url();
    outln!("Sandbox Heroku listening on {url}");
    outln!("Point pgmigrate at it with:\n");
    outln!("  export HEROKU_HOST={url}");
    outln!("  export HEROKU_DATA_HOST={url}");
    outln!("  export HEROKU_API_KEY={}", sandbox.token());
    outln!("  export PGMIGRATE_HOME=$(mktemp -d)");
    if !sandbox.has_postgres() {
        // The simulated databases cannot be connected to: nothing to verify.
        outln!("  export PGMIGRATE_VERIFY=none   # simulated databases (use --postgres URL for real ones)");
    }
    outln!();
    outln!("State: {url}/__sandbox/state   Requests: {url}/__sandbox/requests");
    outln!("Stop with Ctrl-C.");
    let _ = std::io::stdout().flush();
    sandbox.serve_forever();
    Ok(())
}

fn cmd_demo(a: DemoArgs) -> Result<(), Error> {
    let scenario = load_scenario(a.scenario.as_ref())?;
    let sandbox =
        crate::sim::Sandbox::start_with(scenario, 0, a.postgres.as_deref()).map_err(|e| {
            Error::Sandbox(crate::secrets::redact(&format!(
                "cannot start the sandbox: {e}"
            )))
        })?;
    let url = sandbox.base_url();
    let dir = std::env::temp_dir().join(format!("pgmigrate-demo-{}", session::new_run_id()));
    let home = Home::at(&dir);
    outln!(
        "pgmigrate demo: a simulated Heroku on {url}, journals in {}\n",
        dir.display()
    );
    let endpoints = Endpoints::from_env(&|name: &str| match name {
        "HEROKU_HOST" | "HEROKU_DATA_HOST" => Some(url.clone()),
        _ => None,
    })?;
    let client = Client::new(
        endpoints,
        Token::new(sandbox.token()),
        RetryPolicy::default(),
    );
    let request = RunRequest {
        app: a.app.clone(),
        options: RunOptions {
            to_plan: "heroku-postgresql:essential-0".into(),
            from_attachment: "DATABASE".into(),
            // Without a PostgreSQL server behind it the sandbox's databases
            // are simulated: there is nothing to compare.
            verify: if sandbox.has_postgres() {
                VerifyMode::Checksum
            } else {
                VerifyMode::None
            },
        },
        method: copy::METHOD,
    };
    let before = sandbox.snapshot();
    let out = Printer::new();
    let started = Instant::now();
    let journal = session::start(&client, &home, &request, Settings::default(), &out)?;
    print_summary(&journal, started.elapsed(), client.request_count());
    outln!("\n$ pgmigrate status --app {}\n", a.app);
    let path = home.journal_path(&a.app, &journal.run_id);
    print_report(&status::report(&journal, None, &path));
    let after = sandbox.snapshot();
    outln!("\nThe sandbox app before and after:");
    outln!("{}", crate::sim::describe_app(&before, &a.app));
    outln!("{}", crate::sim::describe_app(&after, &a.app));
    sandbox.shutdown();
    Ok(())
}
