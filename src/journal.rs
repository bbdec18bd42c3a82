//! The on-disk journal of one migration run: what it knows, what it did and
//! what it was about to do. Its format is documented in `journal-format.md`.
//!
//! One JSON document per run, `runs/<run-id>.json` in the app's directory.
//! Every change rewrites the whole document atomically: write a temporary
//! file in the same directory, fsync it, rename it over the journal, fsync
//! the directory. A crash therefore leaves either the previous journal or
//! the new one, never a half-written one. Writing requires the app's lock
//! (see [`crate::lock`]): a [`JournalWriter`] can only be made from an
//! [`AppLock`].
//!
//! The journal never holds a secret: no database URL, password or token.
//! Where a URL must be recognised later, a [`crate::secrets::fingerprint`]
//! is stored instead.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::lock::AppLock;
use crate::steps::Step;

/// The `format` field of every journal.
pub const FORMAT: &str = "pgmigrate-journal";
/// The journal format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The whole journal of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The pgmigrate version that last wrote the journal.
    pub pgmigrate_version: String,
    /// Sortable, unique: `20261124T221312345Z-3f9a1c2b`.
    pub run_id: String,
    /// The Heroku app name.
    pub app: String,
    pub created_at: String,
    pub updated_at: String,
    /// What the run was asked to do.
    pub options: RunOptions,
    /// Forward (running the migration) or rollback (undoing it).
    pub direction: Direction,
    /// Where the run stands as a whole.
    pub outcome: Outcome,
    /// What preflight found; `None` until preflight finished.
    pub facts: Option<Facts>,
    /// Names chosen before anything was created, so that a lost response
    /// can be reconciled by looking the thing up.
    pub target: TargetPlan,
    /// What the side effects produced.
    pub results: Results,
    /// One record per step, in [`Step::ALL`] order.
    pub steps: Vec<StepRecord>,
    /// Append-only history of intents, outcomes and notes.
    pub events: Vec<Event>,
}

/// The options the run was started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Full plan name, `heroku-postgresql:essential-0`.
    pub to_plan: String,
    /// The attachment whose add-on is moved (normally `DATABASE`).
    pub from_attachment: String,
    /// How the copy is checked before the cut-over.
    #[serde(default)]
    pub verify: crate::verify::VerifyMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Forward,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A process is (or was, if it died) working on it.
    InProgress,
    /// Stopped at a resumable point after an error.
    Stopped,
    /// Every step done: the app runs on the target.
    Completed,
    /// Preflight refused: nothing was changed.
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

/// What preflight recorded about the app before changing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub app_id: String,
    pub maintenance_was_on: bool,
    /// Every process type with its quantity and size.
    pub formation: Vec<ProcessRecord>,
    /// The add-on being moved.
    pub source: AddonRecord,
    /// Fingerprint of the source URL (see `crate::secrets::fingerprint`).
    pub source_url_fingerprint: String,
    /// Other (non-pool) attachments of the source add-on on this app.
    pub source_other_attachments: Vec<String>,
    /// Plain config vars holding the source URL, to be rebound.
    pub rebind_vars: Vec<String>,
    /// The connection pooler attachment pointing at the source, if any.
    pub pool: Option<PoolRecord>,
    /// Size of the source database as Heroku reports it, when known.
    pub source_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: u32,
    pub size: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonRecord {
    pub id: String,
    pub name: String,
    pub plan: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    pub attachment_id: String,
    pub name: String,
}

/// Names chosen when the run began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPlan {
    /// The target add-on's (globally unique) name.
    pub addon_name: String,
    /// The target's first attachment, and so its config var `<name>_URL`.
    pub attachment_name: String,
}

/// What the side effects produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Results {
    /// The target add-on's id, once known.
    pub target_addon_id: Option<String>,
    /// True once this run is known to have created the target.
    pub target_created: bool,
    /// True once rollback destroyed the target.
    pub target_destroyed: bool,
    /// The second attachment this run gave the source add-on.
    pub alias: Option<AttachmentRecord>,
    /// The transfer this run started.
    pub transfer: Option<TransferRecord>,
    /// Fingerprint of the target URL, once read.
    pub target_url_fingerprint: Option<String>,
    /// Maintenance-window timing, once known.
    pub window: Option<WindowRecord>,
    /// The verify step's comparison (table names and counts, no data).
    #[serde(default)]
    pub verify: Option<crate::verify::VerifyReport>,
    /// The app's releases as the run saw them (release phase); absent in
    /// journals of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<ReleasesRecord>,
}

/// The releases a run waited for: dynos start on the newest release that
/// succeeded, so the formation is restored only once the release made by
/// the run's last config change has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasesRecord {
    /// The app's newest release when the dynos were gone, before the copy
    /// and the cut-over: the cut-over's releases are newer.
    #[serde(default)]
    pub before_cutover: Option<u64>,
    /// The release the scale-up waited for.
    #[serde(default)]
    pub cutover: Option<ReleaseRecord>,
    /// The release the rollback's restore of the formation waited for.
    #[serde(default)]
    pub rollback: Option<ReleaseRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub version: u64,
    /// `succeeded`, or `failed`/`expired` when the wait stopped on it.
    pub status: String,
    /// Heroku's description of the release (redacted).
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub uuid: String,
    pub num: Option<u64>,
    /// `None` while running or in doubt.
    pub succeeded: Option<bool>,
    pub processed_bytes: Option<u64>,
    pub source_bytes: Option<u64>,
    pub finished_at: Option<String>,
    /// Errors pg_restore ignored ("errors ignored on restore") in a
    /// transfer Heroku reports as succeeded; absent in journals of earlier
    /// releases and while the transfer runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub maintenance_on_at: Option<String>,
    pub maintenance_off_at: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    pub state: StepState,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why it was skipped, or what went wrong.
    pub note: Option<String>,
    /// The state of this step's undo; `None` unless rollback reached it.
    pub undo: Option<StepState>,
    pub undo_started_at: Option<String>,
    pub undo_finished_at: Option<String>,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3… in write order.
    pub seq: u64,
    pub at: String,
    pub step: Option<Step>,
    pub kind: EventKind,
    /// Secret-free text (passed through `crate::secrets::redact`).
    pub detail: String,
}

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

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl Journal {
    /// A fresh journal for a new run: every step pending.
    pub fn new(run_id: String, app: String, options: RunOptions, target: TargetPlan) -> Journal {
        let at = now();
        Journal {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            pgmigrate_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id,
            app,
            created_at: at.clone(),
            updated_at: at,
            options,
            direction: Direction::Forward,
            outcome: Outcome::InProgress,
            facts: None,
            target,
            results: Results::default(),
            steps: Step::ALL
                .iter()
                .map(|s| StepRecord {
                    step: *s,
                    state: StepState::Pending,
                    started_at: None,
                    finished_at: None,
                    note: None,
                    undo: None,
                    undo_started_at: None,
                    undo_finished_at: None,
                })
                .collect(),
            events: Vec::new(),
        }
    }

    pub fn record(&self, step: Step) -> Option<&StepRecord> {
        self.steps.iter().find(|r| r.step == step)
    }

    pub fn record_mut(&mut self, step: Step) -> &mut StepRecord {
        let i = step.index();
        &mut self.steps[i]
    }

    pub fn step_state(&self, step: Step) -> Option<StepState> {
        self.record(step).map(|r| r.state)
    }

    /// The note of a skipped step.
    pub fn skip_reason(&self, step: Step) -> Option<&str> {
        self.record(step)
            .filter(|r| r.state == StepState::Skipped)
            .and_then(|r| r.note.as_deref())
    }

    /// Append a history entry (secret-free by construction: `detail` is
    /// redacted here once more).
    pub fn push_event(&mut self, step: Option<Step>, kind: EventKind, detail: &str) {
        let seq = self.events.last().map_or(1, |e| e.seq + 1);
        self.events.push(Event {
            seq,
            at: now(),
            step,
            kind,
            detail: crate::secrets::redact(detail),
        });
    }

    /// Check what was read from disk: format, version, and the step list.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("its `format` is {:?}, not {FORMAT:?}", self.format));
        }
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "its format_version is {}, this pgmigrate reads {FORMAT_VERSION}",
                self.format_version
            ));
        }
        let listed: Vec<Step> = self.steps.iter().map(|r| r.step).collect();
        if listed != Step::ALL {
            return Err("its step list is not the one this pgmigrate runs".into());
        }
        if self.events.windows(2).any(|w| w[1].seq != w[0].seq + 1) {
            return Err("its event sequence has a gap".into());
        }
        Ok(())
    }
}

/// Where journals and locks live: `PGMIGRATE_HOME` or the platform data
/// directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home from `PGMIGRATE_HOME` if set, else the platform data dir.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Home, Error> {
        if let Some(dir) = env("PGMIGRATE_HOME").filter(|s| !s.is_empty()) {
            return Ok(Home {
                root: PathBuf::from(dir),
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "pgmigrate").ok_or_else(|| {
            Error::Usage(
                "cannot find a data directory for pgmigrate (no home directory): set \
                 PGMIGRATE_HOME to a directory where journals can be kept"
                    .into(),
            )
        })?;
        Ok(Home {
            root: dirs.data_dir().to_path_buf(),
        })
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<home>/apps/<app>`.
    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.root.join("apps").join(app)
    }

    /// `<home>/apps/<app>/runs`.
    pub fn runs_dir(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("runs")
    }

    pub fn journal_path(&self, app: &str, run_id: &str) -> PathBuf {
        self.runs_dir(app).join(format!("{run_id}.json"))
    }

    /// Create a directory (and parents) private to the user (0700).
    pub fn ensure_dir(&self, dir: &Path) -> Result<(), Error> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|source| Error::Io {
            action: "create the directory",
            path: dir.to_path_buf(),
            source,
        })
    }

    /// The apps that have journals, sorted.
    pub fn apps(&self) -> Result<Vec<String>, Error> {
        let dir = self.root.join("apps");
        let mut apps = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(apps),
            Err(source) => {
                return Err(Error::Io {
                    action: "list",
                    path: dir,
                    source,
                })
            }
        };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                apps.push(name.to_string());
            }
        }
        apps.sort();
        Ok(apps)
    }

    /// The run ids journaled for an app, oldest first.
    pub fn run_ids(&self, app: &str) -> Result<Vec<String>, Error> {
        let dir = self.runs_dir(app);
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(source) => {
                return Err(Error::Io {
                    action: "list",
                    path: dir,
                    source,
                })
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".json") {
                if !id.starts_with('.') {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Read and check one journal.
    pub fn load(&self, app: &str, run_id: &str) -> Result<Journal, Error> {
        load_path(&self.journal_path(app, run_id))
    }

    /// The app's latest run, if any.
    pub fn latest(&self, app: &str) -> Result<Option<Journal>, Error> {
        match self.run_ids(app)?.last() {
            Some(id) => self.load(app, id).map(Some),
            None => Ok(None),
        }
    }
}

/// Read and check a journal file. A journal that does not parse, or was
/// written by a newer pgmigrate, is refused, never re-initialised.
pub fn load_path(path: &Path) -> Result<Journal, Error> {
    let bytes = fs::read(path).map_err(|source| Error::Io {
        action: "read the journal",
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes).map_err(|problem| match problem {
        Decode::Newer(v) => Error::JournalNewer {
            path: path.to_path_buf(),
            version: v,
        },
        Decode::Corrupt(problem) => Error::JournalCorrupt {
            path: path.to_path_buf(),
            problem,
        },
    })
}

/// Why bytes are not a journal this build can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decode {
    /// Written by a newer pgmigrate (its format_version).
    Newer(u32),
    /// Not a valid journal: what is wrong.
    Corrupt(String),
}

/// Decode a journal from bytes. Never panics, whatever the input.
pub fn decode(bytes: &[u8]) -> Result<Journal, Decode> {
    // Look at the version first, so that a newer journal is reported as
    // such even when its fields are not ones this build knows.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Decode::Corrupt(if e.is_eof() {
            format!(
                "it ends early (truncated at line {}, column {})",
                e.line(),
                e.column()
            )
        } else {
            format!("it is not valid JSON ({e})")
        })
    })?;
    let version = value
        .get("format_version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| Decode::Corrupt("it has no numeric format_version".into()))?;
    if version > u64::from(FORMAT_VERSION) {
        return Err(Decode::Newer(u32::try_from(version).unwrap_or(u32::MAX)));
    }
    let journal: Journal = serde_json::from_value(value)
        .map_err(|e| Decode::Corrupt(format!("a field is missing or wrong ({e})")))?;
    journal.validate().map_err(Decode::Corrupt)?;
    Ok(journal)
}

/// Encode a journal as pretty JSON with a trailing newline.
pub fn encode(journal: &Journal) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(journal).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Durably replace `path` with `bytes`: write `.<name>.tmp` in the same
/// directory with mode 0600, fsync it, rename it over `path`, fsync the
/// directory. It does not keep the previous version.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("journal path has no directory"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("journal path has no file name"))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The only way to write a journal: holds the app's lock and the journal,
/// and persists every change before returning.
pub struct JournalWriter {
    lock: AppLock,
    path: PathBuf,
    journal: Journal,
}

impl JournalWriter {
    /// Start a journal for a new run and write it.
    pub fn create(home: &Home, lock: AppLock, journal: Journal) -> Result<JournalWriter, Error> {
        let dir = home.runs_dir(&journal.app);
        home.ensure_dir(&dir)?;
        let path = home.journal_path(&journal.app, &journal.run_id);
        let mut w = JournalWriter {
            lock,
            path,
            journal,
        };
        w.persist()?;
        Ok(w)
    }

    /// Continue an existing journal.
    pub fn open(home: &Home, lock: AppLock, journal: Journal) -> JournalWriter {
        let path = home.journal_path(&journal.app, &journal.run_id);
        JournalWriter {
            lock,
            path,
            journal,
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lock(&self) -> &AppLock {
        &self.lock
    }

    /// Change the journal and write it durably before returning.
    pub fn update(&mut self, change: impl FnOnce(&mut Journal)) -> Result<(), Error> {
        change(&mut self.journal);
        self.persist()
    }

    fn persist(&mut self) -> Result<(), Error> {
        self.journal.updated_at = now();
        self.journal.pgmigrate_version = env!("CARGO_PKG_VERSION").to_string();
        write_atomic(&self.path, &encode(&self.journal)).map_err(|source| Error::Io {
            action: "write the journal",
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A journal as it stands after a typical preflight (no step run yet).
    pub(crate) fn sample_journal() -> Journal {
        let mut j = Journal::new(
            "20261124T221312Z-3f9a1c2b".into(),
            "demo-app".into(),
            RunOptions {
                to_plan: "heroku-postgresql:essential-0".into(),
                from_attachment: "DATABASE".into(),
                verify: crate::verify::VerifyMode::Counts,
            },
            TargetPlan {
                addon_name: "demo-app-pgmigrate-3f9a1c2b".into(),
                attachment_name: "PGMIGRATE_3F9A1C2B".into(),
            },
        );
        j.facts = Some(Facts {
            app_id: "app-id".into(),
            maintenance_was_on: false,
            formation: vec![
                ProcessRecord {
                    process_type: "web".into(),
                    quantity: 2,
                    size: Some("standard-2X".into()),
                },
                ProcessRecord {
                    process_type: "worker".into(),
                    quantity: 1,
                    size: Some("standard-1X".into()),
                },
                ProcessRecord {
                    process_type: "release".into(),
                    quantity: 0,
                    size: Some("standard-1X".into()),
                },
            ],
            source: AddonRecord {
                id: "src-id".into(),
                name: "postgresql-old-123".into(),
                plan: "heroku-postgresql:mini".into(),
            },
            source_url_fingerprint: "sha256:0123456789abcdef".into(),
            source_other_attachments: vec![],
            rebind_vars: vec!["COPY_URL".into()],
            pool: None,
            source_bytes: Some(1000),
        });
        j
    }

    #[test]
    fn round_trips() {
        let mut j = sample_journal();
        j.push_event(Some(Step::CreateTarget), EventKind::Intent, "create");
        j.push_event(None, EventKind::Note, "hello");
        let back = decode(&encode(&j)).unwrap();
        assert_eq!(back, j);
        assert_eq!(back.events[1].seq, 2);
    }

    #[test]
    fn every_truncation_is_a_clear_error_never_a_panic() {
        let bytes = encode(&sample_journal());
        for n in 0..bytes.len() - 1 {
            match decode(&bytes[..n]) {
                Err(Decode::Corrupt(msg)) => assert!(!msg.is_empty()),
                // Cutting only trailing whitespace leaves a whole document.
                Ok(_) => assert!(bytes[n..].iter().all(|b| b.is_ascii_whitespace())),
                Err(other) => panic!("cut at {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn newer_and_foreign_journals_are_refused() {
        let mut v: serde_json::Value = serde_json::to_value(sample_journal()).unwrap();
        v["format_version"] = 7.into();
        v["something_new"] = true.into();
        let bytes = serde_json::to_vec(&v).unwrap();
        assert_eq!(decode(&bytes), Err(Decode::Newer(7)));
        v["format_version"] = 1.into();
        v["format"] = "other".into();
        assert!(matches!(
            decode(&serde_json::to_vec(&v).unwrap()),
            Err(Decode::Corrupt(_))
        ));
        assert!(matches!(decode(b"[]"), Err(Decode::Corrupt(_))));
        assert!(matches!(decode(b"\xff\xfe"), Err(Decode::Corrupt(_))));
    }

    #[test]
    fn a_missing_step_is_corrupt() {
        let mut j = sample_journal();
        j.steps.remove(3);
        assert!(matches!(decode(&encode(&j)), Err(Decode::Corrupt(_))));
    }

    #[test]
    fn events_are_redacted() {
        let mut j = sample_journal();
        j.push_event(
            None,
            EventKind::Error,
            "failed: postgres://user:hunter2@host/db",
        );
        assert!(!j.events[0].detail.contains("hunter2"));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
