//! The Heroku resources pgmigrate reads, as they come over the wire.
//!
//! Only the fields pgmigrate uses are declared; unknown fields are ignored so
//! that Heroku adding a field never breaks a run. Request bodies are built
//! here too, so that every body pgmigrate sends has one definition that the
//! schema test checks against the Platform API schema.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A field Heroku may send as `null` as well as leave out: both read as the
/// type's default (an empty string or list, `false`), so that a null where
/// a value was expected never fails a run.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /apps/{app}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub maintenance: bool,
}

/// One process type of `GET /apps/{app}/formation`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Formation {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: u32,
    /// The dyno size name ("standard-1X"); Heroku sends it both as the
    /// deprecated `size` string and as `dyno_size.name`.
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub dyno_size: Option<NamedRef>,
    /// When this process type was last updated (scaled or resized).
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Formation {
    /// The size name, from `dyno_size.name` or else the deprecated `size`.
    pub fn size_name(&self) -> Option<&str> {
        self.dyno_size
            .as_ref()
            .and_then(|d| d.name.as_deref())
            .or(self.size.as_deref())
    }
}

/// A `{id, name}` reference as Heroku embeds them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct NamedRef {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// One element of the batch formation update (`PATCH /apps/{app}/formation`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FormationUpdate {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dyno_size: Option<DynoSizeRef>,
}

/// The `dyno_size` object of a formation update.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DynoSizeRef {
    pub name: String,
}

/// The body of `PATCH /apps/{app}/formation`.
#[derive(Debug, Clone, Serialize)]
pub struct FormationBatch<'a> {
    pub updates: &'a [FormationUpdate],
}

/// One dyno of `GET /apps/{app}/dynos`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Dyno {
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub state: String,
}

impl Dyno {
    /// One-off dynos (`heroku run`) are named `run.N` and are not part of
    /// the formation, so scaling does not stop them.
    pub fn is_one_off(&self) -> bool {
        self.process_type == "run" || self.name.starts_with("run.")
    }

    /// The one-off dyno of a release command (`release.N`, type
    /// `release`): it runs while the release is pending and can write to
    /// the database; it is waited for, never stopped (that fails the
    /// release).
    pub fn is_release(&self) -> bool {
        self.process_type == "release" || self.name.starts_with("release.")
    }
}

/// An add-on (`GET /apps/{app}/addons`, `POST /apps/{app}/addons`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Addon {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub plan: Option<NamedRef>,
    #[serde(default)]
    pub addon_service: Option<NamedRef>,
    #[serde(default)]
    pub app: Option<NamedRef>,
    #[serde(default, deserialize_with = "null_default")]
    pub config_vars: Vec<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl Addon {
    pub fn plan_name(&self) -> Option<&str> {
        self.plan.as_ref().and_then(|p| p.name.as_deref())
    }
    pub fn service_name(&self) -> Option<&str> {
        self.addon_service.as_ref().and_then(|p| p.name.as_deref())
    }
    pub fn is_postgres(&self) -> bool {
        self.service_name() == Some("heroku-postgresql")
            || self
                .plan_name()
                .is_some_and(|p| p.starts_with("heroku-postgresql:"))
    }
}

/// The body of `POST /apps/{app}/addons`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateAddon {
    pub plan: String,
    pub name: String,
    pub attachment: AttachmentName,
    pub confirm: String,
    /// Provider options: `{"follow": "DATABASE"}` makes a follower (the
    /// value is what `heroku addons:create ... -- --follow X` sends, passed
    /// through untouched: heroku/cli src/commands/addons/create.ts). The
    /// schema wants string values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// The body of `PATCH /apps/{app}/addons/{addon}` (`heroku
/// addons:upgrade`): the plan to change to. The Platform API schema's
/// add-on Update link takes `plan` as a plan identity (an id or a name,
/// a string), which is sent; the official CLI sends `{"name": ...}`, which
/// Heroku also accepts.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateAddon {
    pub plan: String,
}

/// Data API `GET /data/maintenances/v1/{addon_id}` (heroku/cli
/// src/lib/data/types.ts `Maintenance`); only what a migration reads.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct Maintenance {
    /// `none`, `pending`, `preparing`, `ready`, `running` or `completed`.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub scheduled_for: Option<String>,
    #[serde(default)]
    pub required_by: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    /// A string in heroku/cli's types (src/lib/data/types.ts); read as
    /// whatever comes.
    #[serde(default)]
    pub duration_seconds: Option<serde_json::Value>,
}

impl Maintenance {
    /// Nothing scheduled or under way.
    pub fn is_idle(&self) -> bool {
        matches!(self.status.as_str(), "" | "none" | "completed")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentName {
    pub name: String,
}

/// An add-on attachment (`GET /apps/{app}/addon-attachments`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub addon: NamedRef,
    #[serde(default)]
    pub app: Option<NamedRef>,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl Attachment {
    /// The config var the attachment owns.
    pub fn config_var(&self) -> String {
        format!("{}_URL", self.name)
    }
    pub fn addon_id(&self) -> Option<&str> {
        self.addon.id.as_deref()
    }
}

/// The namespace of the connection pooler's attachment.
pub const POOL_NAMESPACE: &str = "connection-pooling:default";
/// The attachment name the connection pooler uses.
pub const POOL_ATTACHMENT: &str = "DATABASE_CONNECTION_POOL";

/// The body of `POST /addon-attachments`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateAttachment {
    pub addon: String,
    pub app: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Serialized as `null` when absent, as `heroku pg:promote` does.
    pub namespace: Option<String>,
    pub confirm: String,
}

/// A plan (`GET /addon-services/{service}/plans/{plan}`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
}

/// Data API `GET /client/v11/databases/{addon_id}/wait_status`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct WaitStatus {
    #[serde(rename = "waiting?", default, deserialize_with = "null_default")]
    pub waiting: bool,
    #[serde(rename = "error?", default, deserialize_with = "null_default")]
    pub error: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
}

/// One credential of Data API `GET /postgres/v0/databases/{name}/credentials`.
/// Only its name is read: the rest of the answer holds passwords, and
/// serde drops it unread.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Credential {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

/// Data API `GET /client/v11/databases/{addon_id}` (only what we use).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// Heroku sends the leader as a string; any other non-empty value is
    /// read as "a follower" too (see [`DatabaseInfo::leader_name`]).
    #[serde(default)]
    pub following: Option<serde_json::Value>,
    #[serde(default)]
    pub leader: Option<serde_json::Value>,
    /// The database size in bytes (`num_bytes`), where sent.
    #[serde(default)]
    pub num_bytes: Option<u64>,
    /// `[{"name": "Data Size", "values": ["1.2 GB"]}, …]` as `pg:info` shows.
    #[serde(default, deserialize_with = "null_default")]
    pub info: Vec<InfoItem>,
    /// Whether the server is a standby (heroku/cli src/lib/pg/types.ts;
    /// no CLI code reads it, so it is only ever a second opinion).
    #[serde(default, rename = "is_in_recovery")]
    pub in_recovery: Option<bool>,
    /// The transaction the server is at (heroku/cli src/lib/pg/types.ts;
    /// no CLI code reads it): on a follower, how far it has replayed.
    #[serde(default)]
    pub current_transaction: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct InfoItem {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<serde_json::Value>,
}

impl DatabaseInfo {
    /// The database size in bytes: `num_bytes`, else the "Data Size" line.
    pub fn data_size(&self) -> Option<u64> {
        if let Some(n) = self.num_bytes {
            return Some(n);
        }
        let item = self.info.iter().find(|i| i.name == "Data Size")?;
        let text = item.values.first()?.as_str()?;
        parse_size(text)
    }

    /// The values of one `info` entry, joined as `pg:info` shows them.
    pub fn info_value(&self, name: &str) -> Option<String> {
        let item = self.info.iter().find(|i| i.name == name)?;
        let parts: Vec<String> = item
            .values
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        Some(parts.join(", "))
    }

    /// How far a follower is behind its leader, in commits: the leading
    /// integer of `Behind By` ("12 commits"; the server renders it, its
    /// format is not documented). `None` when absent or unreadable:
    /// unknown, never 0.
    pub fn behind_by(&self) -> Option<u64> {
        let text = self.info_value("Behind By")?;
        let digits: String = text
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(|c| *c != ',')
            .collect();
        digits.parse().ok()
    }

    /// `current_transaction` as a number, when it is one.
    pub fn transaction(&self) -> Option<u64> {
        match self.current_transaction.as_ref()? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `Fork/Follow` as pg:info shows it: "Available", "Unsupported",
    /// "Unavailable on followers", "Temporarily Unavailable"….
    pub fn fork_follow(&self) -> Option<String> {
        self.info_value("Fork/Follow")
    }

    /// The databases following this one, as `Followers` names them.
    pub fn followers(&self) -> Vec<String> {
        self.info
            .iter()
            .find(|i| i.name == "Followers")
            .map(|i| {
                i.values
                    .iter()
                    .filter_map(|v| v.as_str())
                    .flat_map(|s| s.split(','))
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether it still follows a leader (`following` set: the official
    /// CLI's only test, src/commands/pg/unfollow.ts).
    pub fn is_following(&self) -> bool {
        match &self.following {
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(serde_json::Value::Null) | None => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => true,
        }
    }

    /// If this database follows another (a read-only replica), how to name
    /// its leader. Heroku sends `following` and `leader` as strings; an
    /// object with a `name`, or `true`, is read the same way, defensively.
    pub fn leader_name(&self) -> Option<String> {
        // `leader` names the leader; `following` is its URL on Heroku
        // (heroku/cli test fixtures of pg:unfollow), never shown.
        [&self.leader, &self.following]
            .into_iter()
            .flatten()
            .find_map(|v| match v {
                serde_json::Value::String(s) if s.contains("://") => Some("its leader".to_string()),
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Object(o) => Some(
                    o.get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("its leader")
                        .to_string(),
                ),
                serde_json::Value::Bool(true) => Some("its leader".to_string()),
                _ => None,
            })
    }
}

/// Parse a size as Heroku prints it: "1.2 GB", "512 MB", "7.9 kB", "100 B".
pub fn parse_size(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let n: f64 = parts.next()?.parse().ok()?;
    let unit = parts.next().unwrap_or("B").to_ascii_lowercase();
    let mult = match unit.as_str() {
        "b" | "bytes" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some((n * mult) as u64)
}

/// The body of Data API `POST /client/v11/databases/{target}/transfers`.
///
/// It carries database URLs: it is built in memory, sent, and dropped; it
/// is never logged, journaled or printed (its `Debug` hides the URLs).
#[derive(Clone, Serialize)]
pub struct CreateTransfer {
    pub from_name: String,
    pub from_url: String,
    pub to_name: String,
    pub to_url: String,
}

impl std::fmt::Debug for CreateTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateTransfer")
            .field("from_name", &self.from_name)
            .field("from_url", &"<redacted>")
            .field("to_name", &self.to_name)
            .field("to_url", &"<redacted>")
            .finish()
    }
}

/// A transfer (Data API `GET /client/v11/apps/{app}/transfers/{uuid}`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Transfer {
    pub uuid: String,
    #[serde(default)]
    pub num: Option<u64>,
    #[serde(default)]
    pub from_name: Option<String>,
    #[serde(default)]
    pub to_name: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub canceled_at: Option<String>,
    #[serde(default)]
    pub succeeded: Option<bool>,
    #[serde(default)]
    pub processed_bytes: Option<u64>,
    #[serde(default)]
    pub source_bytes: Option<u64>,
    /// Errors pg_restore ignored in a transfer Heroku reports as succeeded
    /// (`heroku pg:backups` shows "Finished with N warnings").
    #[serde(default)]
    pub warnings: Option<u64>,
    #[serde(default, deserialize_with = "null_default")]
    pub logs: Vec<TransferLog>,
}

impl Transfer {
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some() || self.canceled_at.is_some()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TransferLog {
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
}

/// One release of `GET /apps/{app}/releases` (schema `definitions.release`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Release {
    pub id: String,
    pub version: u64,
    #[serde(default)]
    pub description: Option<String>,
    /// `pending`, `succeeded`, `failed` or `expired`.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default)]
    pub current: Option<bool>,
}

impl Release {
    /// Still running its release command (or about to).
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    /// Deployed: dynos that start now run it.
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }

    pub fn description(&self) -> &str {
        self.description.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_read_as_defaults() {
        let d: Dyno =
            serde_json::from_str(r#"{"name":"web.1","type":"web","state":null}"#).unwrap();
        assert_eq!(d.state, "");
        let w: WaitStatus =
            serde_json::from_str(r#"{"waiting?":null,"error?":null,"message":null}"#).unwrap();
        assert!(!w.waiting && !w.error && w.message.is_empty());
        let a: Addon = serde_json::from_str(r#"{"id":"1","name":"a","config_vars":null}"#).unwrap();
        assert!(a.config_vars.is_empty());
        let t: Transfer = serde_json::from_str(
            r#"{"uuid":"u","logs":[{"message":null}],"succeeded":null,"num":null}"#,
        )
        .unwrap();
        assert_eq!(t.logs[0].message, "");
        assert_eq!(t.succeeded, None);
        let app: App = serde_json::from_str(r#"{"id":"1","name":"a","maintenance":null}"#).unwrap();
        assert!(!app.maintenance);
        // A wrong type is still an error, not a silent default.
        assert!(serde_json::from_str::<Dyno>(r#"{"name":"w","type":"web","state":3}"#).is_err());
    }

    #[test]
    fn a_follower_is_recognised_however_its_leader_is_sent() {
        let leader = |json: &str| {
            serde_json::from_str::<DatabaseInfo>(json)
                .unwrap()
                .leader_name()
        };
        assert_eq!(leader(r#"{}"#), None);
        assert_eq!(leader(r#"{"following":null,"leader":null}"#), None);
        assert_eq!(leader(r#"{"following":""}"#), None);
        assert_eq!(leader(r#"{"following":false}"#), None);
        assert_eq!(
            leader(r#"{"following":"postgresql-leader-1"}"#).as_deref(),
            Some("postgresql-leader-1")
        );
        assert_eq!(
            leader(r#"{"leader":{"addon_id":"x","name":"postgresql-l"}}"#).as_deref(),
            Some("postgresql-l")
        );
        assert_eq!(
            leader(r#"{"following":true}"#).as_deref(),
            Some("its leader")
        );
    }

    #[test]
    fn the_size_comes_from_num_bytes_or_the_info_line() {
        let d: DatabaseInfo = serde_json::from_str(
            r#"{"num_bytes":1234,"info":[{"name":"Data Size","values":["5 GB"]}]}"#,
        )
        .unwrap();
        assert_eq!(d.data_size(), Some(1234));
        let d: DatabaseInfo =
            serde_json::from_str(r#"{"info":[{"name":"Data Size","values":["5 GB"]}]}"#).unwrap();
        assert_eq!(d.data_size(), Some(5_000_000_000));
    }

    #[test]
    fn sizes_parse_as_heroku_prints_them() {
        assert_eq!(parse_size("1.5 GB"), Some(1_500_000_000));
        assert_eq!(parse_size("512 MB"), Some(512_000_000));
        assert_eq!(parse_size("7.9 kB"), Some(7_900));
        assert_eq!(parse_size("100 B"), Some(100));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("-1 GB"), None);
        assert_eq!(parse_size(""), None);
    }
}
