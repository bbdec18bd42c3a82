//! The command line: the entry point, dispatch to one file per command
//! (the clap definitions are in `command`) and the mapping of errors to exit codes. Raw
//! arguments and the environment become checked values once, in `args`;
//! everything that prints lives in `render`. The only module that prints.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

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
mod command;
mod plan;
mod render;
mod run;
mod sandbox;
mod status;

pub use args::heroku_apps_in_remotes;
pub use render::{render_plan, render_report};

use command::{Cli, Command, LogFormat};

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
