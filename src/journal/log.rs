//! The engine's part of a journal: one record per step of the plan, in plan
//! order, and the append-only history of events. The record of a step can
//! only change through [`Log::apply`], which refuses a transition the state
//! machine does not allow (after steno's `SagaNodeEventType`/`next_status`):
//! a bug that would, say, mark a step done that never started is an error,
//! not a journal that lies.
//!
//! Nothing here does I/O; the engine's runner persists the log through a
//! [`Store`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A journal type the engine can run: it holds a [`Log`].
pub trait Journaled {
    fn log(&self) -> &Log;
    fn log_mut(&mut self) -> &mut Log;
}

/// Where the journal lives: every change is written through `update`
/// before the runner goes on (the journal writer writes it atomically).
pub trait Store<J> {
    fn journal(&self) -> &J;
    fn update(&mut self, change: &mut dyn FnMut(&mut J)) -> Result<(), Error>;
}

/// The state of one step (and, during rollback, of its undo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// Started: for a step with a side effect, its intent is journaled and
    /// its outcome is not (in doubt if the process is gone).
    Running,
    /// Finished; outcome journaled.
    Done,
    /// Not needed for this app (the reason is in `note`).
    Skipped,
    /// Failed with a definite answer; may be retried by `resume`.
    Failed,
}

/// Forward (running the migration) or rollback (undoing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Forward,
    Rollback,
}

/// Where a run stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A process is (or was, if it died) working on it.
    InProgress,
    /// Stopped at a resumable point after an error.
    Stopped,
    /// Every step done: the app runs on the target.
    Completed,
    /// Refused before anything changed.
    Refused,
    /// Rollback finished: the app is as it was before the run.
    RolledBack,
}

impl Outcome {
    /// Whether the run still needs `resume` or `rollback`.
    pub fn is_unfinished(self) -> bool {
        matches!(self, Outcome::InProgress | Outcome::Stopped)
    }
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The id of the step's definition in the plan (`create-target`).
    pub id: String,
    pub state: StepState,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why it was skipped, or what went wrong.
    pub note: Option<String>,
    /// What the step produced, read back by later steps and by `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// The state of this step's undo; `None` unless rollback reached it.
    pub undo: Option<StepState>,
    /// What the undo found and kept (as `output` for the forward action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_output: Option<serde_json::Value>,
    pub undo_started_at: Option<String>,
    pub undo_finished_at: Option<String>,
}

impl StepRecord {
    pub fn pending(id: &str) -> StepRecord {
        StepRecord {
            id: id.to_string(),
            state: StepState::Pending,
            started_at: None,
            finished_at: None,
            note: None,
            output: None,
            undo: None,
            undo_output: None,
            undo_started_at: None,
            undo_finished_at: None,
        }
    }
}

/// What kind of history entry an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// About to send a request that changes something.
    Intent,
    /// The request's outcome (success).
    Outcome,
    /// The request failed; `detail` says how and whether it may have acted.
    Error,
    /// Anything else worth keeping (a skip, a reconciliation, a start).
    Note,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3… in write order.
    pub seq: u64,
    pub at: String,
    /// The step's id, when the event is about one.
    pub step: Option<String>,
    pub kind: EventKind,
    /// Secret-free text (passed through `crate::secrets::redact`).
    pub detail: String,
}

/// A change of a step's record, as the runner asks for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Start the step (its intent, or the start of a wait).
    Begin,
    /// The step finished, with what it produced.
    Succeed(Option<serde_json::Value>),
    /// The step is not needed, for this reason.
    Skip(String),
    /// The step failed with a definite answer.
    Fail(String),
    /// A started step is found not to have acted: back to pending.
    Reset(String),
    /// A step keeps what it found so far (a failed copy's last status, a
    /// failed release seen before its request), without finishing.
    Keep(serde_json::Value),
    /// A running undo keeps what it found.
    KeepUndo(serde_json::Value),
    /// A step (in any state) says something `status` shows in its note,
    /// such as a long silence of what it waits for.
    Annotate(String),
    /// Run the step again from scratch: a later step found that what this
    /// one started failed (a failed copy is started anew).
    Redo(String),
    /// Start (or start again) the step's undo.
    UndoBegin,
    /// The undo finished (`Done`) or found nothing to do (`Skipped`).
    UndoEnd(StepState),
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal journal transition for step {step}: {transition} while {state}")]
pub struct Illegal {
    pub step: String,
    pub transition: &'static str,
    pub state: String,
}

impl Transition {
    fn name(&self) -> &'static str {
        match self {
            Transition::Begin => "begin",
            Transition::Succeed(_) => "succeed",
            Transition::Skip(_) => "skip",
            Transition::Fail(_) => "fail",
            Transition::Reset(_) => "reset",
            Transition::Keep(_) => "keep",
            Transition::KeepUndo(_) => "keep-undo",
            Transition::Annotate(_) => "annotate",
            Transition::Redo(_) => "redo",
            Transition::UndoBegin => "undo-begin",
            Transition::UndoEnd(_) => "undo-end",
        }
    }
}

/// The state a step's forward record moves to, or `None` if the transition
/// is illegal from `from`. `Begin` from `Running` is legal: a wait that was
/// interrupted simply starts again (the runner never begins a write that
/// is in doubt: it reconciles it first).
pub fn next_state(from: StepState, t: &Transition) -> Option<StepState> {
    use StepState::*;
    match (from, t) {
        (Pending | Failed | Running, Transition::Begin) => Some(Running),
        (Running, Transition::Succeed(_)) => Some(Done),
        (Pending | Failed, Transition::Skip(_)) => Some(Skipped),
        // A check before the request can fail a step that never began.
        (Pending | Running | Failed, Transition::Fail(_)) => Some(Failed),
        (Running | Failed, Transition::Reset(_)) => Some(Pending),
        (Pending | Running | Failed, Transition::Keep(_)) => Some(from),
        (Done | Failed | Running | Skipped, Transition::Redo(_)) => Some(Pending),
        _ => None,
    }
}

/// The state a step's undo moves to, or `None` if illegal. Only a step
/// whose forward action may have acted (done, running or failed) is undone.
pub fn next_undo_state(
    forward: StepState,
    undo: Option<StepState>,
    t: &Transition,
) -> Option<StepState> {
    let may_have_acted = matches!(
        forward,
        StepState::Done | StepState::Running | StepState::Failed
    );
    match (undo, t) {
        (None | Some(StepState::Running), Transition::UndoBegin) if may_have_acted => {
            Some(StepState::Running)
        }
        (Some(StepState::Running), Transition::UndoEnd(s))
            if matches!(s, StepState::Done | StepState::Skipped) =>
        {
            Some(*s)
        }
        _ => None,
    }
}

/// The engine's part of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// The method whose plan the steps are (`copy`).
    pub method: String,
    pub direction: Direction,
    pub outcome: Outcome,
    /// One record per step, in plan order.
    pub steps: Vec<StepRecord>,
    /// Append-only history of intents, outcomes and notes.
    pub events: Vec<Event>,
}

impl Log {
    /// A fresh log for a plan: every step pending, going forward.
    pub fn new(method: &str, ids: &[&str]) -> Log {
        Log {
            method: method.to_string(),
            direction: Direction::Forward,
            outcome: Outcome::InProgress,
            steps: ids.iter().map(|id| StepRecord::pending(id)).collect(),
            events: Vec::new(),
        }
    }

    pub fn record(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.id == id)
    }

    pub fn state(&self, id: &str) -> Option<StepState> {
        self.record(id).map(|r| r.state)
    }

    /// The output a finished step recorded, decoded.
    pub fn output<T: DeserializeOwned>(&self, id: &str) -> Option<T> {
        self.record(id)
            .and_then(|r| r.output.clone())
            .and_then(|v| serde_json::from_value(v).ok())
    }

    /// The note of a skipped step.
    pub fn skip_reason(&self, id: &str) -> Option<&str> {
        self.record(id)
            .filter(|r| r.state == StepState::Skipped)
            .and_then(|r| r.note.as_deref())
    }

    /// Append a history entry (`detail` is redacted once more here).
    pub fn push_event(&mut self, step: Option<&str>, kind: EventKind, detail: &str, at: &str) {
        let seq = self.events.last().map_or(1, |e| e.seq + 1);
        self.events.push(Event {
            seq,
            at: at.to_string(),
            step: step.map(str::to_string),
            kind,
            detail: crate::secrets::redact(detail),
        });
    }

    /// Change a step's record as `t` says, stamped `at`; refuses an
    /// illegal transition and leaves the record as it was.
    pub fn apply(&mut self, id: &str, t: Transition, at: &str) -> Result<(), Illegal> {
        let Some(r) = self.steps.iter_mut().find(|r| r.id == id) else {
            return Err(Illegal {
                step: id.to_string(),
                transition: t.name(),
                state: "not in the plan".into(),
            });
        };
        let illegal = |r: &StepRecord| Illegal {
            step: id.to_string(),
            transition: t.name(),
            state: format!("{:?} (undo {:?})", r.state, r.undo).to_lowercase(),
        };
        match &t {
            Transition::Annotate(text) => r.note = Some(crate::secrets::redact(text)),
            Transition::KeepUndo(v) => {
                if r.undo != Some(StepState::Running) {
                    return Err(illegal(r));
                }
                r.undo_output = Some(v.clone());
            }
            Transition::UndoBegin | Transition::UndoEnd(_) => {
                let next = next_undo_state(r.state, r.undo, &t).ok_or_else(|| illegal(r))?;
                if t == Transition::UndoBegin {
                    r.undo_started_at = Some(at.to_string());
                } else {
                    r.undo_finished_at = Some(at.to_string());
                }
                r.undo = Some(next);
            }
            _ => {
                let next = next_state(r.state, &t).ok_or_else(|| illegal(r))?;
                match t {
                    Transition::Begin => {
                        r.started_at = Some(at.to_string());
                        r.note = None;
                    }
                    Transition::Succeed(output) => {
                        r.finished_at = Some(at.to_string());
                        if output.is_some() {
                            r.output = output;
                        }
                    }
                    Transition::Skip(why) => {
                        r.finished_at = Some(at.to_string());
                        r.note = Some(why);
                    }
                    Transition::Fail(why) | Transition::Reset(why) => {
                        r.note = Some(crate::secrets::redact(&why));
                    }
                    Transition::Keep(output) => r.output = Some(output),
                    Transition::Redo(why) => {
                        r.note = Some(crate::secrets::redact(&why));
                        r.output = None;
                        r.started_at = None;
                        r.finished_at = None;
                    }
                    Transition::UndoBegin
                    | Transition::UndoEnd(_)
                    | Transition::KeepUndo(_)
                    | Transition::Annotate(_) => {}
                }
                r.state = next;
            }
        }
        Ok(())
    }

    /// Check the log read from disk against the plan it claims: the same
    /// steps in the same order, and no gap in the event sequence.
    pub fn validate(&self, method: &str, ids: &[&str]) -> Result<(), String> {
        if self.method != method {
            return Err(format!("its method is {:?}, not {method:?}", self.method));
        }
        let listed: Vec<&str> = self.steps.iter().map(|r| r.id.as_str()).collect();
        if listed != ids {
            return Err(format!(
                "its step list is not the plan of method {method} that this pgmigrate runs"
            ));
        }
        if self.events.windows(2).any(|w| w[1].seq != w[0].seq + 1) {
            return Err("its event sequence has a gap".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Log {
        Log::new("test", &["a", "b"])
    }

    #[test]
    fn the_forward_path_is_legal() {
        let mut l = log();
        l.apply("a", Transition::Begin, "t1").unwrap();
        l.apply(
            "a",
            Transition::Succeed(Some(serde_json::json!({"id": 7}))),
            "t2",
        )
        .unwrap();
        assert_eq!(l.state("a"), Some(StepState::Done));
        assert_eq!(l.output::<serde_json::Value>("a").unwrap()["id"], 7);
        l.apply("b", Transition::Skip("not needed".into()), "t3")
            .unwrap();
        assert_eq!(l.skip_reason("b"), Some("not needed"));
    }

    #[test]
    fn illegal_transitions_are_refused_and_change_nothing() {
        let mut l = log();
        let before = l.clone();
        // Done without having started.
        assert!(l.apply("a", Transition::Succeed(None), "t").is_err());
        // Undo of a step that never acted.
        assert!(l.apply("a", Transition::UndoBegin, "t").is_err());
        // A step the plan does not have.
        assert!(l.apply("zz", Transition::Begin, "t").is_err());
        assert_eq!(l, before);
        l.apply("a", Transition::Begin, "t").unwrap();
        l.apply("a", Transition::Succeed(None), "t").unwrap();
        // Done cannot be begun again, skipped or failed.
        assert!(l.apply("a", Transition::Begin, "t").is_err());
        assert!(l.apply("a", Transition::Skip("x".into()), "t").is_err());
        assert!(l.apply("a", Transition::Fail("x".into()), "t").is_err());
        assert!(l.apply("a", Transition::Reset("x".into()), "t").is_err());
        // An undo ends only once begun, and only as done or skipped.
        assert!(l
            .apply("a", Transition::UndoEnd(StepState::Done), "t")
            .is_err());
        l.apply("a", Transition::UndoBegin, "t").unwrap();
        assert!(l
            .apply("a", Transition::UndoEnd(StepState::Failed), "t")
            .is_err());
        l.apply("a", Transition::UndoEnd(StepState::Done), "t")
            .unwrap();
        assert!(l.apply("a", Transition::UndoBegin, "t").is_err());
    }

    #[test]
    fn a_failed_or_in_doubt_step_can_be_retried_or_reset() {
        let mut l = log();
        l.apply("a", Transition::Begin, "t").unwrap();
        l.apply("a", Transition::Fail("boom".into()), "t").unwrap();
        assert_eq!(l.record("a").unwrap().note.as_deref(), Some("boom"));
        l.apply("a", Transition::Begin, "t").unwrap();
        l.apply("a", Transition::Reset("had not acted".into()), "t")
            .unwrap();
        assert_eq!(l.state("a"), Some(StepState::Pending));
        // A failed step's undo may run: its request may have acted.
        l.apply("a", Transition::Begin, "t").unwrap();
        l.apply("a", Transition::Fail("x".into()), "t").unwrap();
        l.apply("a", Transition::UndoBegin, "t").unwrap();
    }

    #[test]
    fn keep_and_redo() {
        let mut l = log();
        l.apply("a", Transition::Keep(serde_json::json!(0)), "t")
            .unwrap();
        assert_eq!(l.state("a"), Some(StepState::Pending));
        assert!(l
            .apply("a", Transition::KeepUndo(serde_json::json!(1)), "t")
            .is_err());
        l.apply("a", Transition::Begin, "t").unwrap();
        l.apply("a", Transition::Keep(serde_json::json!(1)), "t")
            .unwrap();
        assert_eq!(l.state("a"), Some(StepState::Running));
        assert_eq!(l.output::<u32>("a"), Some(1));
        l.apply("a", Transition::Fail("x".into()), "t").unwrap();
        l.apply("a", Transition::Redo("again".into()), "t").unwrap();
        assert_eq!(l.state("a"), Some(StepState::Pending));
        assert_eq!(l.output::<u32>("a"), None);
        assert!(l.apply("b", Transition::Redo("x".into()), "t").is_err());
    }

    #[test]
    fn validate_names_what_is_wrong() {
        let mut l = log();
        assert!(l.validate("test", &["a", "b"]).is_ok());
        assert!(l
            .validate("other", &["a", "b"])
            .unwrap_err()
            .contains("method"));
        assert!(l
            .validate("test", &["b", "a"])
            .unwrap_err()
            .contains("step list"));
        l.push_event(None, EventKind::Note, "one", "t");
        l.push_event(None, EventKind::Note, "two", "t");
        l.events[1].seq = 5;
        assert!(l.validate("test", &["a", "b"]).unwrap_err().contains("gap"));
    }
}
