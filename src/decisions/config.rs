//! Which config vars hold the database (by what the official CLI takes as
//! the same database).

use std::collections::{BTreeMap, BTreeSet};

/// The parts of a `postgres://` URL that identify a database, without the
/// credentials: host, port and database path.
fn database_identity(url: &str) -> Option<(String, u16, String)> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return None;
    }
    Some((
        parsed.host_str()?.to_ascii_lowercase(),
        parsed.port().unwrap_or(5432),
        parsed.path().to_string(),
    ))
}

/// Whether two config values name the same database, as the official CLI's
/// `configVarNamesFromValue` decides: equal strings, or both `postgres://`
/// URLs with the same host, port and database path (credentials may differ).
pub fn same_database(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (database_identity(a), database_identity(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The names of the plain config vars (not owned by an attachment) that
/// hold the source database's URL and must follow it to the target.
pub fn rebind_candidates(
    config: &BTreeMap<String, String>,
    source_url: &str,
    attachment_owned: &BTreeSet<String>,
) -> Vec<String> {
    config
        .iter()
        .filter(|(name, value)| {
            !attachment_owned.contains(*name) && same_database(value, source_url)
        })
        .map(|(name, _)| name.clone())
        .collect()
}
