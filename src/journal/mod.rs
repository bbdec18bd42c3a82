//! The on-disk journal of one run: what it was asked, what preflight found,
//! the names chosen before anything was created, and the engine's log (the
//! method, one record per step of its plan with each step's output, and
//! the history). Its format is documented in `journal-format.md` (v2).
//!
//! The journal never holds a secret: no database URL, password or token.
//! Where a URL must be recognised later, a [`crate::secrets::fingerprint`]
//! is stored instead.
//!
//! Reading: a v2 journal is decoded as is; a v1 journal (pgmigrate 0.1) is
//! upgraded first (`v1.rs`); a newer one is refused, never guessed.

use serde::{Deserialize, Serialize};

pub mod log;
pub mod v1;
pub mod writer;

use self::log::{Journaled, Log};

/// The `format` field of every journal.
pub const FORMAT: &str = "pgmigrate-journal";
/// The journal format version this build writes.
pub const FORMAT_VERSION: u32 = 2;

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
    /// What preflight found; `None` until preflight finished.
    pub facts: Option<Facts>,
    /// Names chosen before anything was created, so that a lost response
    /// can be reconciled by looking the thing up.
    pub target: TargetPlan,
    /// The method, direction, outcome, steps and history.
    #[serde(flatten)]
    pub log: Log,
}

impl Journaled for Journal {
    fn log(&self) -> &Log {
        &self.log
    }
    fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }
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
    pub verify: crate::compare::VerifyMode,
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
    /// pg:info's `Fork/Follow` for the source ("Available", …), when read.
    /// Absent in journals of 0.1 and 0.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_follow: Option<String>,
    /// The databases following the source (pg:info's `Followers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_followers: Vec<String>,
    /// The status of the source's data maintenance, when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_maintenance: Option<String>,
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

impl Journal {
    /// A fresh journal for a new run of `method`'s plan (its step ids).
    pub fn new(
        run_id: String,
        app: String,
        options: RunOptions,
        target: TargetPlan,
        method: &str,
        step_ids: &[&str],
    ) -> Journal {
        let at = crate::store::now();
        Journal {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            pgmigrate_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id,
            app,
            created_at: at.clone(),
            updated_at: at,
            options,
            facts: None,
            target,
            log: Log::new(method, step_ids),
        }
    }
}

/// Why bytes are not a journal this build can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decode {
    /// Written by a newer pgmigrate (its format_version).
    Newer(u32),
    /// Not a valid journal: what is wrong.
    Corrupt(String),
}

/// Decode a journal from bytes, upgrading a v1 journal. Never panics,
/// whatever the input. The step list is checked against the method's plan
/// by the caller, which knows the plans.
pub fn decode(bytes: &[u8]) -> Result<Journal, Decode> {
    // Look at the version first, so that a newer journal is reported as
    // such even when its fields are not ones this build knows.
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
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
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(Decode::Corrupt(format!("its `format` is not {FORMAT:?}")));
    }
    match version {
        1 => value = v1::upgrade(value).map_err(Decode::Corrupt)?,
        2 => {}
        v => {
            return Err(Decode::Corrupt(format!(
                "its format_version {v} is unknown"
            )))
        }
    }
    let journal: Journal = serde_json::from_value(value)
        .map_err(|e| Decode::Corrupt(format!("a field is missing or wrong ({e})")))?;
    if journal
        .log
        .events
        .windows(2)
        .any(|w| w[1].seq != w[0].seq + 1)
    {
        return Err(Decode::Corrupt("its event sequence has a gap".into()));
    }
    Ok(journal)
}

/// Encode a journal as pretty JSON with a trailing newline.
pub fn encode(journal: &Journal) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(journal).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
pub(crate) mod tests {
    use super::log::EventKind;
    use super::*;

    /// A journal as it stands after a typical preflight (no step run yet).
    pub(crate) fn sample_journal() -> Journal {
        let mut j = Journal::new(
            "20261124T221312Z-3f9a1c2b".into(),
            "demo-app".into(),
            RunOptions {
                to_plan: "heroku-postgresql:essential-0".into(),
                from_attachment: "DATABASE".into(),
                verify: crate::compare::VerifyMode::Counts,
            },
            TargetPlan {
                addon_name: "demo-app-pgmigrate-3f9a1c2b".into(),
                attachment_name: "PGMIGRATE_3F9A1C2B".into(),
            },
            "copy",
            &v1::V1_STEPS,
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
            fork_follow: None,
            source_followers: vec![],
            source_maintenance: None,
        });
        j
    }

    fn sample() -> Journal {
        let mut j = sample_journal();
        j.log
            .push_event(Some("create-target"), EventKind::Intent, "create", "t");
        j
    }

    #[test]
    fn round_trips_with_the_method_at_the_top() {
        let j = sample();
        let bytes = encode(&j);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["method"], "copy");
        assert_eq!(v["format_version"], 2);
        assert_eq!(v["steps"][1]["id"], "create-target");
        assert_eq!(decode(&bytes).unwrap(), j);
    }

    #[test]
    fn every_truncation_is_a_clear_error_never_a_panic() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() - 1 {
            match decode(&bytes[..n]) {
                Err(Decode::Corrupt(msg)) => assert!(!msg.is_empty()),
                Ok(_) => assert!(bytes[n..].iter().all(|b| b.is_ascii_whitespace())),
                Err(other) => panic!("cut at {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn newer_and_foreign_journals_are_refused() {
        let mut v: serde_json::Value = serde_json::to_value(sample()).unwrap();
        v["format_version"] = 3.into();
        v["something_new"] = true.into();
        assert_eq!(
            decode(&serde_json::to_vec(&v).unwrap()),
            Err(Decode::Newer(3))
        );
        v["format_version"] = 2.into();
        v["format"] = "other".into();
        assert!(matches!(
            decode(&serde_json::to_vec(&v).unwrap()),
            Err(Decode::Corrupt(_))
        ));
        let mut v: serde_json::Value = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("method");
        assert!(matches!(
            decode(&serde_json::to_vec(&v).unwrap()),
            Err(Decode::Corrupt(m)) if m.contains("method")
        ));
        assert!(matches!(decode(b"[]"), Err(Decode::Corrupt(_))));
        assert!(matches!(decode(b"\xff\xfe"), Err(Decode::Corrupt(_))));
    }
}
