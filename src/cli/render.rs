//! Everything the command line shows: the `Printer` progress observer,
//! the status, plan, list and summary renderers, the sandbox's banner and
//! JSON output. Commands hand values here; nothing here runs a command.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::decisions;
use crate::engine::StepState;
use crate::journal::{Journal, RunOptions};
use crate::methods::choose::Choice;
use crate::methods::describe::outcome_words;
use crate::methods::method::Target;
use crate::methods::outputs::{self, window};
use crate::methods::preflight::PreflightReading;
use crate::methods::preview::{point_of_no_return, preview, runs};
use crate::methods::registry;
use crate::methods::{human_bytes, Observer, Progress};
use crate::secrets::redact;
use crate::sim::describe_app;
use crate::status::{self, RunSummary, StatusReport};

fn seconds(s: f64) -> String {
    humantime::format_duration(Duration::from_secs(s.round() as u64)).to_string()
}

/// Where a plan is shown: by `plan` (with what reproduces it), or by
/// `run` before it asks for the confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanView {
    /// `plan` and `run --dry-run`; `force` as given.
    Plan { force: bool },
    /// `run`, before the confirmation.
    Confirm,
}

/// The command that reproduces a plan: the method it chose, the verify
/// mode and `--force`, so that what runs is what was shown.
pub fn run_command(app: &str, options: &RunOptions, method: &str, force: bool) -> String {
    let mut c = format!("pgmigrate run --app {app} --to {}", options.to_plan);
    if options.from_attachment != "DATABASE" {
        c.push_str(&format!(" --from {}", options.from_attachment));
    }
    c.push_str(&format!(" --method {method} --verify {}", options.verify));
    if force {
        c.push_str(" --force");
    }
    c
}

/// Every method judged, one line each, for people.
pub fn render_methods(choice: &Choice) -> String {
    let mut s = String::from("Methods:\n");
    for m in &choice.methods {
        s.push_str(&format!(
            "  {:<9}{:<13}{:<14}{}\n",
            m.method,
            if m.possible {
                "possible"
            } else {
                "not possible"
            },
            m.downtime_estimate_s
                .map(|d| format!("~{}", seconds(d)))
                .unwrap_or_else(|| "-".into()),
            m.why
        ));
    }
    s
}

/// What `run` would do, for people.
pub fn render_plan(
    app: &str,
    options: &RunOptions,
    r: &PreflightReading,
    choice: &Choice,
    view: PlanView,
) -> String {
    let f = &r.facts;
    let mut s = match view {
        PlanView::Plan { .. } => format!("Plan for {app} (read only: nothing was changed)\n\n"),
        PlanView::Confirm => format!("pgmigrate will migrate {app}'s database:\n\n"),
    };
    s.push_str(&format!(
        "  source   {} ({}){}\n",
        f.source.name,
        f.source.plan,
        f.source_bytes
            .map(|b| format!(", {}", human_bytes(b)))
            .unwrap_or_default()
    ));
    let method = choice.chosen();
    let steps = preview(app, options, r, method);
    s.push_str(&match method.target() {
        Target::InPlace => format!(
            "  target   {} in place: the same add-on, its plan changed by Heroku\n",
            options.to_plan
        ),
        Target::NewAddon { noun, .. } => format!(
            "  target   a new {} {noun}, attached as {} in place of the old one\n",
            options.to_plan, options.from_attachment
        ),
    });
    s.push_str(&format!("  method   {}\n", choice.why));
    let running: Vec<String> = decisions::running_types(f)
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
        "  scale    {} to zero while the app is down, then back\n",
        if running.is_empty() || !runs(&steps, outputs::id::SCALE_DOWN) {
            "nothing".to_string()
        } else {
            running.join(", ")
        }
    ));
    s.push_str(&format!(
        "  rebind   {}\n",
        if f.rebind_vars.is_empty() {
            "no other config var".to_string()
        } else if !runs(&steps, outputs::id::REBIND_CONFIG) {
            "no other config var: the database's URL does not change".to_string()
        } else {
            f.rebind_vars.join(", ")
        }
    ));
    if let Some(p) = &f.pool {
        s.push_str(&format!("  pooler   {} follows the database\n", p.name));
    }
    let chosen = choice.option();
    s.push_str(&format!(
        "  downtime {}\n",
        match chosen.and_then(|m| m.downtime_estimate_s) {
            Some(0.0) => "none expected: the app is not taken down".to_string(),
            Some(d) => format!(
                "about {} (maintenance on → off){}",
                seconds(d),
                method.downtime_words()
            ),
            None => "unknown (Heroku did not report the database size); about 3 min/GB".into(),
        }
    ));
    if let Some(before) = chosen.and_then(|m| m.before_downtime.as_deref()) {
        s.push_str(&format!("  before   {before}, while the app runs\n"));
    }
    s.push('\n');
    s.push_str(&render_methods(choice));
    s.push_str("\nSteps (down: while the app is down):\n");
    for step in &steps {
        let down = if step.in_window { "down" } else { "" };
        match &step.skip {
            Some(why) => s.push_str(&format!("  {:<16} {down:<5}skip: {why}\n", step.id)),
            None => s.push_str(&format!("  {:<16} {down:<5}{}\n", step.id, step.words)),
        }
    }
    if let Some(nr) = point_of_no_return(&steps) {
        s.push_str(&format!(
            "\nPoint of no return: {} (after it the app {}).\n",
            nr.id,
            nr.no_return.unwrap_or("")
        ));
        for note in method.rollback_notes() {
            s.push_str(&format!("  {note}\n"));
        }
    }
    for w in method.warnings(r) {
        s.push_str(&format!("\nwarning: {w}\n"));
    }
    if let PlanView::Plan { force } = view {
        s.push_str(&format!(
            "\nRun it with: {}\n",
            run_command(app, options, method.name(), force)
        ));
    }
    s
}

/// `plan --json`: the method `run` would use, every method judged, and
/// the steps.
pub fn plan_json(app: &str, options: &RunOptions, r: &PreflightReading, choice: &Choice) -> Value {
    let f = &r.facts;
    let steps: Vec<Value> = preview(app, options, r, choice.chosen())
        .iter()
        .map(|st| {
            serde_json::json!({
                "id": st.id,
                "words": st.words,
                "skip": st.skip,
                "in_window": st.in_window,
                "point_of_no_return": st.no_return,
            })
        })
        .collect();
    serde_json::json!({
        "app": app,
        "method": choice.method,
        "why": choice.why,
        "methods": choice.methods,
        "source": {"addon": f.source.name, "plan": f.source.plan, "bytes": f.source_bytes},
        "to_plan": options.to_plan,
        "steps": steps,
        "warnings": choice.chosen().warnings(r),
    })
}

pub(super) fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => outln!("{s}"),
        Err(e) => errln!("error: cannot encode JSON: {e}"),
    }
}

/// Print what `run` would do.
pub(super) fn print_plan(
    app: &str,
    options: &RunOptions,
    r: &PreflightReading,
    choice: &Choice,
    view: PlanView,
) {
    out!("{}", render_plan(app, options, r, choice, view));
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
    s.push_str(&format!("  The app is {}\n", r.app_state.words));
    if let Some(a) = &r.advice {
        s.push_str(&format!("  Loses less: {a}\n"));
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
            (Some(n), StepState::Skipped) => format!("  ({n})"),
            _ => String::new(),
        };
        s.push_str(&format!(
            "  {:<16} {:<8}{at}{dur}{undo}{note}\n",
            st.name, state
        ));
        if let Some(n) = &st.note {
            if !matches!(st.state, StepState::Done | StepState::Skipped) {
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

pub(super) fn print_report(r: &StatusReport) {
    out!("{}", render_report(r));
}

pub(super) fn print_summary(j: &Journal, took: Duration, requests: u64) {
    let between = |a: Option<&String>, b: Option<&String>| {
        status::duration_ms(a.map(String::as_str), b.map(String::as_str)).map(Duration::from_millis)
    };
    let mut lines = vec![format!("Migrated {}: {}", j.app, outcome_words(j))];
    let (on, off) = window(j);
    if let Some(d) = between(on.as_ref(), off.as_ref()) {
        lines.push(format!(
            "  downtime (maintenance on → off): {:.1}s",
            d.as_secs_f64()
        ));
    }
    if let Some(m) = registry::named(&j.log.method) {
        lines.extend(m.summary(j));
    }
    if let Some(f) = &j.facts {
        // In place, the add-on is the database: no other add-on exists,
        // and nothing is "old".
        lines.push(if outputs::in_place(j) {
            format!(
                "  DATABASE now: {} ({}), the same add-on, its plan changed in place",
                f.source.name, j.options.to_plan
            )
        } else {
            format!(
                "  DATABASE now: {} ({}); old database {} kept attached",
                outputs::target_name(j),
                j.options.to_plan,
                f.source.name
            )
        });
        let rebound = j.log.state(outputs::id::REBIND_CONFIG) == Some(StepState::Done);
        if rebound && !f.rebind_vars.is_empty() {
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
/// time for waits and for the copy (bytes, share of the source, rate), above
/// which finished steps scroll; otherwise plain timestamped lines, with
/// waits and copy progress throttled to one line every 5 s.
pub(super) struct Printer {
    tty: bool,
    last_wait: Mutex<Option<Instant>>,
    /// Whether the last copy line said "queued": a change is always shown.
    copy_queued: Mutex<Option<bool>>,
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Printer {
    pub(super) fn new() -> Printer {
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
        let text = format!("[{clock}] {}", redact(text));
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
            Progress::Transfer {
                step,
                words,
                queued,
            } => {
                let changed = self
                    .copy_queued
                    .lock()
                    .map(|mut q| q.replace(*queued) != Some(*queued))
                    .unwrap_or(false);
                if self.tty {
                    self.with_bar(false, |b| b.set_message(format!("{step}: {words}")));
                } else if !self.throttled() || changed {
                    self.line(&format!("{step}: {words}"))
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

/// The journaled runs `list` and `status --all` found, newest first.
pub(super) fn print_runs(home_root: &Path, runs: &[RunSummary], json: bool) {
    if json {
        print_json(
            &serde_json::json!({ "status_version": status::STATUS_JSON_VERSION, "runs": runs }),
        );
    } else if runs.is_empty() {
        outln!("No migration is journaled in {}.", home_root.display());
    } else {
        for r in runs {
            outln!("{}  {:<30}  {}", r.run_id, r.app, r.summary);
        }
    }
}

/// The last line of `rollback`: every step undone, and the app as it was
/// checked live afterwards (maintenance, formation, the database attached).
pub(super) fn print_rolled_back(j: &Journal, differences: Result<&[String], String>) {
    let differences = match differences {
        Ok(d) => d,
        Err(e) => {
            outln!(
                "Rolled back {}: every step the run took was undone. The app could not be \
                 checked afterwards ({}): `heroku ps`, `heroku maintenance` and `heroku addons` \
                 show it.",
                j.app,
                redact(&e)
            );
            return;
        }
    };
    if differences.is_empty() {
        outln!(
            "Rolled back {}: every step was undone, and the app is as it was before the run \
             (checked live: maintenance, formation, the database attached).",
            j.app
        );
    } else {
        outln!(
            "Rolled back {}: every step the run took was undone, but the app is NOT as it was \
             before the run:\n  - {}\n  These were changed outside pgmigrate (or passed with \
             --force); put them back by hand if they should be.",
            j.app,
            differences.join("\n  - ")
        );
    }
}

/// How to point pgmigrate at a sandbox just started.
pub(super) fn print_sandbox_banner(url: &str, token: &str, has_postgres: bool) {
    outln!("Sandbox Heroku listening on {url}");
    outln!("Point pgmigrate at it with:\n");
    outln!("  export HEROKU_HOST={url}");
    outln!("  export HEROKU_DATA_HOST={url}");
    outln!("  export HEROKU_API_KEY={}", token);
    outln!("  export PGMIGRATE_HOME=$(mktemp -d)");
    if !has_postgres {
        // The simulated databases cannot be connected to: nothing to verify.
        outln!("  export PGMIGRATE_VERIFY=none   # simulated databases (use --postgres URL for real ones)");
    }
    outln!();
    outln!("State: {url}/__sandbox/state   Requests: {url}/__sandbox/requests");
    outln!("Stop with Ctrl-C.");
    let _ = std::io::stdout().flush();
}

/// The first line of `demo`.
pub(super) fn print_demo_start(url: &str, dir: &Path) {
    outln!(
        "pgmigrate demo: a simulated Heroku on {url}, journals in {}\n",
        dir.display()
    );
}

/// The line `demo` shows before the status of its run.
pub(super) fn print_demo_status_heading(app: &str) {
    outln!("\n$ pgmigrate status --app {}\n", app);
}

/// The end of `demo`: the sandbox app before and after.
pub(super) fn print_demo_end(app: &str, before: &Value, after: &Value) {
    outln!("\nThe sandbox app before and after:");
    outln!("{}", describe_app(before, app));
    outln!("{}", describe_app(after, app));
}
