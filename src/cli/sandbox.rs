//! `sandbox` (serve a simulated Heroku to rehearse against) and `demo` (a
//! whole migration against a built-in sandbox, then its status).

use std::path::PathBuf;
use std::time::Instant;

use super::command::{DemoArgs, SandboxArgs};
use super::render::{
    print_demo_end, print_demo_start, print_demo_status_heading, print_report,
    print_sandbox_banner, print_summary, Printer,
};
use crate::compare::VerifyMode;
use crate::error::Error;
use crate::heroku::{Client, Endpoints, RetryPolicy, Token};
use crate::journal::RunOptions;
use crate::methods::session::{self, RunRequest};
use crate::methods::{Observer, Progress, Settings};
use crate::secrets::redact;
use crate::sim::DEMO_METHOD;
use crate::sim::{Sandbox, Scenario};
use crate::status;
use crate::store::Home;

fn load_scenario(path: Option<&PathBuf>) -> Result<Scenario, Error> {
    match path {
        Some(p) => Scenario::from_file(p).map_err(|e| Error::Sandbox(e.to_string())),
        None => Ok(Scenario::demo()),
    }
}

pub(super) fn sandbox(a: SandboxArgs) -> Result<(), Error> {
    let scenario = load_scenario(a.scenario.as_ref())?;
    let sandbox = Sandbox::start_with(scenario, a.port, a.postgres.as_deref()).map_err(|e| {
        Error::Sandbox(redact(&format!(
            "cannot start on 127.0.0.1:{}: {e}",
            a.port
        )))
    })?;
    print_sandbox_banner(
        &sandbox.base_url(),
        &sandbox.token(),
        sandbox.has_postgres(),
    );
    sandbox.serve_forever();
    Ok(())
}

/// The demo's journal directory, removed when the demo ends however it
/// ends (a return, an error, a panic that unwinds): a demo leaves nothing
/// behind.
struct DemoDir(PathBuf);

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn demo(a: DemoArgs) -> Result<(), Error> {
    let scenario = load_scenario(a.scenario.as_ref())?;
    let sandbox = Sandbox::start_with(scenario, 0, a.postgres.as_deref())
        .map_err(|e| Error::Sandbox(redact(&format!("cannot start the sandbox: {e}"))))?;
    let url = sandbox.base_url();
    let dir =
        DemoDir(std::env::temp_dir().join(format!("pgmigrate-demo-{}", session::new_run_id())));
    let home = Home::at(&dir.0);
    print_demo_start(&url, &dir.0);
    let endpoints = Endpoints::from_env(&|name: &str| match name {
        "HEROKU_HOST" | "HEROKU_DATA_HOST" => Some(url.clone()),
        _ => None,
    })?;
    let client = Client::new(
        endpoints,
        Token::new(sandbox.token()),
        RetryPolicy::default(),
    );
    let to_plan = "heroku-postgresql:essential-0";
    // Without a PostgreSQL server behind it the sandbox's databases are
    // simulated: there is nothing to compare.
    let verify = if sandbox.has_postgres() {
        VerifyMode::Checksum
    } else {
        VerifyMode::None
    };
    let request = RunRequest {
        app: a.app.clone(),
        options: RunOptions {
            to_plan: to_plan.into(),
            from_attachment: "DATABASE".into(),
            verify,
        },
        // The demo shows the copy, the method every move can use.
        method: crate::methods::choose::Wanted::parse(DEMO_METHOD)
            .ok_or_else(|| Error::Internal(format!("no method {DEMO_METHOD}")))?,
        restore_formation: None,
    };
    let out = Printer::new();
    out.progress(&Progress::Note(format!(
        "the demo runs `pgmigrate run --app {app} --to {to_plan} --method {DEMO_METHOD} --verify \
         {verify}`: the copy, because every move can use it and it has every step to show \
         (`--method auto` may pick a follower or an in-place upgrade for a real app: `pgmigrate \
         plan --app APP` says which, and why)",
        app = a.app
    )));
    let before = sandbox.snapshot();
    let started = Instant::now();
    // The demo shows the plan a run shows before its confirmation.
    let show = |reading: &crate::methods::preflight::PreflightReading,
                choice: &crate::methods::choose::Choice| {
        super::render::print_plan(
            &request.app,
            &request.options,
            reading,
            choice,
            super::render::PlanView::Confirm,
        );
        Ok(())
    };
    // Ctrl-C stops the run at a resumable point and returns here, so
    // that the directory is removed; there is nothing to resume after a
    // demo, whose sandbox ends with it.
    let settings = Settings {
        interrupt: Some(super::args::interrupt_flag()),
        ..Settings::default()
    };
    let journal =
        session::start(&client, &home, &request, settings, &out, &show).map_err(|e| match e {
            Error::Stopped { step, reason, .. } => Error::Sandbox(format!(
                "the demo stopped at {step}: {reason}. Its sandbox and journals end with it \
                 (nothing to resume); run `pgmigrate demo` again"
            )),
            e => e,
        })?;
    print_summary(&journal, started.elapsed(), client.request_count());
    print_demo_status_heading(&a.app);
    let path = home.journal_path(&a.app, &journal.run_id);
    print_report(&status::report(&journal, None, &path));
    let after = sandbox.snapshot();
    print_demo_end(&a.app, &before, &after);
    sandbox.shutdown();
    drop(dir);
    out.progress(&Progress::Note(
        "the demo's sandbox and journals are gone with it; nothing was left behind".into(),
    ));
    Ok(())
}
