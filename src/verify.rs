//! The verify step: before the app is switched to the new database, compare
//! it with the old one table by table — the set of tables, exact row counts
//! and, with `--verify checksum`, an order-independent checksum of each
//! table's rows. Heroku can report a transfer as succeeded although
//! pg_restore skipped errors; this is where that is caught.
//!
//! Database URLs come from the app's config vars, live, and stay in memory.
//! Every host is reached with TLS required but, as libpq's `sslmode=require`
//! and Heroku's own instructions, without verifying the server's
//! certificate (Heroku Postgres certificates are not signed for their host
//! names); loopback databases (the sandbox) use TLS when the server offers
//! it and plain text otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How thoroughly to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// Do not compare.
    None,
    /// Same tables, exact row counts.
    #[default]
    Counts,
    /// Counts and a checksum of every table's rows.
    Checksum,
}

impl std::fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyMode::None => "none",
            VerifyMode::Counts => "counts",
            VerifyMode::Checksum => "checksum",
        })
    }
}

/// One table's figures on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFigures {
    pub rows: u64,
    pub checksum: Option<String>,
}

/// What was found for one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReport {
    /// `schema.table`.
    pub table: String,
    pub source_rows: Option<u64>,
    pub target_rows: Option<u64>,
    /// ok | missing-in-target | extra-in-target | count-differs | checksum-differs
    pub verdict: String,
}

/// The whole comparison (journaled: table names and counts only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub mode: VerifyMode,
    pub tables: Vec<TableReport>,
    pub mismatches: usize,
    pub elapsed_ms: u64,
}

impl VerifyReport {
    /// The mismatching tables, one per line, for an error message.
    pub fn describe_mismatches(&self) -> String {
        self.tables
            .iter()
            .filter(|t| t.verdict != "ok")
            .map(|t| {
                format!(
                    "{}: {} (old {}, new {})",
                    t.table,
                    t.verdict,
                    t.source_rows.map_or("-".into(), |n| n.to_string()),
                    t.target_rows.map_or("-".into(), |n| n.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join("\n    ")
    }
}

/// Compare the figures of both sides (pure).
pub fn compare(
    mode: VerifyMode,
    source: &BTreeMap<String, TableFigures>,
    target: &BTreeMap<String, TableFigures>,
) -> VerifyReport {
    let names: BTreeSet<&String> = source.keys().chain(target.keys()).collect();
    let tables: Vec<TableReport> = names
        .into_iter()
        .map(|name| {
            let s = source.get(name);
            let t = target.get(name);
            let verdict = match (s, t) {
                (Some(_), None) => "missing-in-target",
                (None, Some(_)) => "extra-in-target",
                (Some(a), Some(b)) if a.rows != b.rows => "count-differs",
                (Some(a), Some(b)) if mode == VerifyMode::Checksum && a.checksum != b.checksum => {
                    "checksum-differs"
                }
                _ => "ok",
            };
            TableReport {
                table: name.clone(),
                source_rows: s.map(|f| f.rows),
                target_rows: t.map(|f| f.rows),
                verdict: verdict.to_string(),
            }
        })
        .collect();
    let mismatches = tables.iter().filter(|t| t.verdict != "ok").count();
    VerifyReport {
        mode,
        tables,
        mismatches,
        elapsed_ms: 0,
    }
}

/// The server's own message for an error, not just "db error".
pub fn db_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

/// Quote an identifier for SQL.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Connect to a database URL: TLS required, except on loopback where it is
/// preferred.
pub fn connect(url: &str) -> Result<postgres::Client, String> {
    let parsed =
        url::Url::parse(url).map_err(|_| "a database URL is not a valid URL".to_string())?;
    let host = parsed.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| crate::secrets::redact(&format!("cannot read a database URL: {e}")))?;
    config.connect_timeout(Duration::from_secs(15));
    config.application_name("pgmigrate-verify");
    // Loopback (the sandbox) may go without TLS; any other host must use it.
    config.ssl_mode(if loopback {
        postgres::config::SslMode::Prefer
    } else {
        postgres::config::SslMode::Require
    });
    let result = config.connect(tls());
    result.map_err(|e| {
        crate::secrets::redact(&format!(
            "cannot connect to the database on {host}: {}",
            db_error(&e)
        ))
    })
}

/// TLS as `sslmode=require`: encrypted, certificate not verified.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(RequireOnly(provider)))
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// Accepts any server certificate but still checks the handshake
/// signatures, which is what `sslmode=require` means.
#[derive(Debug)]
struct RequireOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for RequireOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Read every user table's figures from one database.
pub fn inspect(
    client: &mut postgres::Client,
    mode: VerifyMode,
) -> Result<BTreeMap<String, TableFigures>, String> {
    let rows = client
        .query(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' \
             AND table_schema NOT IN ('pg_catalog', 'information_schema') \
             AND table_schema NOT LIKE 'pg_toast%' ORDER BY 1, 2",
            &[],
        )
        .map_err(|e| format!("cannot list the tables: {}", db_error(&e)))?;
    let mut out = BTreeMap::new();
    for row in rows {
        let schema: String = row.get(0);
        let table: String = row.get(1);
        let qualified = format!("{}.{}", ident(&schema), ident(&table));
        // The checksum sums 60 bits of each row's md5, so it does not depend
        // on row order and needs constant memory.
        let sql = match mode {
            VerifyMode::Checksum => format!(
                "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text \
                 FROM {qualified} AS t"
            ),
            _ => format!("SELECT count(*), NULL::text FROM {qualified}"),
        };
        let r = client
            .query_one(sql.as_str(), &[])
            .map_err(|e| format!("cannot read {schema}.{table}: {}", db_error(&e)))?;
        let count: i64 = r.get(0);
        let checksum: Option<String> = r.get(1);
        out.insert(
            format!("{schema}.{table}"),
            TableFigures {
                rows: count.max(0) as u64,
                checksum,
            },
        );
    }
    Ok(out)
}

/// Compare two databases; the error is a redacted, one-line reason.
pub fn verify(
    source_url: &str,
    target_url: &str,
    mode: VerifyMode,
) -> Result<VerifyReport, String> {
    let start = Instant::now();
    let mut source = connect(source_url).map_err(|e| format!("old database: {e}"))?;
    let mut target = connect(target_url).map_err(|e| format!("new database: {e}"))?;
    let s = inspect(&mut source, mode).map_err(|e| format!("old database: {e}"))?;
    let t = inspect(&mut target, mode).map_err(|e| format!("new database: {e}"))?;
    let mut report = compare(mode, &s, &t);
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(report)
}

/// Whether a connection is encrypted (for tests and diagnostics).
pub fn uses_tls(client: &mut postgres::Client) -> Result<bool, String> {
    client
        .query_one(
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
            &[],
        )
        .map(|r| r.get(0))
        .map_err(|e| db_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(list: &[(&str, u64, &str)]) -> BTreeMap<String, TableFigures> {
        list.iter()
            .map(|(n, r, c)| {
                (
                    n.to_string(),
                    TableFigures {
                        rows: *r,
                        checksum: Some(c.to_string()),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn comparisons_name_every_kind_of_difference() {
        let s = figures(&[
            ("public.a", 10, "x"),
            ("public.b", 5, "y"),
            ("public.c", 1, "z"),
        ]);
        let t = figures(&[
            ("public.a", 10, "x"),
            ("public.b", 4, "y"),
            ("public.d", 0, ""),
        ]);
        let r = compare(VerifyMode::Counts, &s, &t);
        let verdicts: Vec<(&str, &str)> = r
            .tables
            .iter()
            .map(|t| (t.table.as_str(), t.verdict.as_str()))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("public.a", "ok"),
                ("public.b", "count-differs"),
                ("public.c", "missing-in-target"),
                ("public.d", "extra-in-target")
            ]
        );
        assert_eq!(r.mismatches, 3);
        assert!(r
            .describe_mismatches()
            .contains("public.b: count-differs (old 5, new 4)"));
    }

    #[test]
    fn checksums_count_only_in_checksum_mode() {
        let s = figures(&[("public.a", 10, "x")]);
        let t = figures(&[("public.a", 10, "other")]);
        assert_eq!(compare(VerifyMode::Counts, &s, &t).mismatches, 0);
        let r = compare(VerifyMode::Checksum, &s, &t);
        assert_eq!(r.tables[0].verdict, "checksum-differs");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }
}
