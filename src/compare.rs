//! Comparing two databases, what the copy's `verify` step (`--verify`)
//! runs: before the app is switched to the new database, compare it with
//! the old one table by table — the set of tables, exact row counts
//! and, with `--verify checksum`, an order-independent checksum of each
//! table's rows. Heroku can report a transfer as succeeded although
//! pg_restore skipped errors; this is where that is caught.
//!
//! Database URLs come from the app's config vars, live, and stay in memory.
//! TLS follows libpq's `sslmode` as far as the URL makes it stricter:
//!
//! - no `sslmode`, or a weaker one than `require` (`disable`, `allow`,
//!   `prefer`): `require` for any host that is not loopback: encrypted, the
//!   server's certificate not verified, as Heroku documents (Common Runtime
//!   certificates are not signed for their host names). That stops passive
//!   eavesdropping, not an active man in the middle. Loopback databases
//!   (the sandbox) use TLS when the server offers it, plain text otherwise.
//! - `verify-ca`: the certificate chain must lead to a root in
//!   `sslrootcert` (default `~/.postgresql/root.crt`, as libpq); the host
//!   name is not checked.
//! - `verify-full`: the chain, and the certificate must name the host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
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

/// What TLS a connection uses (from the URL's `sslmode`, see the module
/// documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS if the server offers it (loopback only).
    Prefer,
    /// Encrypted; certificate not verified.
    Require,
    /// Encrypted; the chain verified against the roots in the file.
    VerifyCa { root: PathBuf },
    /// Encrypted; the chain verified and the host name checked.
    VerifyFull { root: PathBuf },
}

impl TlsMode {
    fn describe(&self) -> String {
        match self {
            TlsMode::Prefer => "sslmode=prefer".into(),
            TlsMode::Require => "sslmode=require".into(),
            TlsMode::VerifyCa { root } => format!(
                "sslmode=verify-ca: the server's certificate must be signed by a root in {}",
                root.display()
            ),
            TlsMode::VerifyFull { root } => format!(
                "sslmode=verify-full: the server's certificate must be signed by a root in {} \
                 and name the host",
                root.display()
            ),
        }
    }
}

/// Reads the TLS mode a database URL asks for, and returns the URL without
/// the parameters that pgmigrate, not the driver, handles (`sslmode`,
/// `sslrootcert`). `home` is where `~/.postgresql/root.crt` is looked for
/// when `verify-*` names no `sslrootcert`. Errors never quote the URL.
pub fn tls_mode(url: &url::Url, home: Option<&Path>) -> Result<(TlsMode, url::Url), String> {
    let mut sslmode: Option<String> = None;
    let mut rootcert: Option<String> = None;
    let mut kept: Vec<(String, String)> = vec![];
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "sslmode" => sslmode = Some(v.into_owned()),
            "sslrootcert" => rootcert = Some(v.into_owned()),
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    let mut stripped = url.clone();
    if kept.is_empty() {
        stripped.set_query(None);
    } else {
        stripped.query_pairs_mut().clear().extend_pairs(kept);
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let root = || -> Result<PathBuf, String> {
        match rootcert.as_deref() {
            Some("system") => Err(
                "sslrootcert=system (the system's roots) is not supported: give the path of a \
                 PEM file with the root certificates"
                    .into(),
            ),
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => match home {
                Some(home) => Ok(home.join(".postgresql").join("root.crt")),
                None => Err(
                    "sslmode=verify-* without sslrootcert needs ~/.postgresql/root.crt, and \
                     there is no home directory: add sslrootcert=PATH to the URL"
                        .into(),
                ),
            },
        }
    };
    let mode = match sslmode.as_deref() {
        None | Some("disable" | "allow" | "prefer") if loopback => TlsMode::Prefer,
        None | Some("disable" | "allow" | "prefer" | "require") => TlsMode::Require,
        Some("verify-ca") => TlsMode::VerifyCa { root: root()? },
        Some("verify-full") => TlsMode::VerifyFull { root: root()? },
        Some(other) => {
            return Err(format!(
                "a database URL has sslmode={other:?}, which is not one of disable, allow, \
                 prefer, require, verify-ca, verify-full"
            ))
        }
    };
    Ok((mode, stripped))
}

/// Connect to a database URL with the TLS its `sslmode` asks for (at
/// least `require` off loopback: see the module documentation).
pub fn connect(url: &str) -> Result<postgres::Client, String> {
    let parsed =
        url::Url::parse(url).map_err(|_| "a database URL is not a valid URL".to_string())?;
    let host = parsed.host_str().unwrap_or("").to_owned();
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let (mode, stripped) = tls_mode(&parsed, home.as_deref())?;
    let mut config: postgres::Config = stripped
        .as_str()
        .parse()
        .map_err(|e| crate::secrets::redact(&format!("cannot read a database URL: {e}")))?;
    config.connect_timeout(Duration::from_secs(15));
    config.application_name("pgmigrate-verify");
    config.ssl_mode(match mode {
        TlsMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    let tls = tls(&mode)?;
    let result = config.connect(tls);
    result.map_err(|e| {
        let why = error_chain(&e);
        let hint = match mode {
            TlsMode::VerifyCa { .. } | TlsMode::VerifyFull { .. } => {
                format!(
                    " ({}; fix sslrootcert or the URL's sslmode)",
                    mode.describe()
                )
            }
            _ => String::new(),
        };
        crate::secrets::redact(&format!(
            "cannot connect to the database on {host}: {why}{hint}"
        ))
    })
}

/// The server's message, or the error with its causes (a TLS failure says
/// why only in its source).
fn error_chain(e: &postgres::Error) -> String {
    if e.as_db_error().is_some() {
        return db_error(e);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The rustls configuration of a mode.
fn tls(mode: &TlsMode) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let config = match mode {
        TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RequireOnly(provider)))
            .with_no_client_auth(),
        TlsMode::VerifyCa { root } | TlsMode::VerifyFull { root } => {
            let roots = Arc::new(root_store(root)?);
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| format!("cannot use the roots in {}: {e}", root.display()))?;
            let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> =
                if matches!(mode, TlsMode::VerifyCa { .. }) {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The root certificates of a PEM file (libpq's `sslrootcert`).
fn root_store(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    if !path.exists() {
        return Err(format!(
            "the root certificate file {} does not exist: give the server's root certificate \
             with sslrootcert=PATH in the database URL, or use a weaker sslmode than verify-ca \
             / verify-full",
            path.display()
        ));
    }
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "cannot read the root certificates in {}: {e}",
                path.display()
            )
        })?;
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{} holds no usable PEM certificate (sslrootcert)",
            path.display()
        ));
    }
    Ok(store)
}

/// `sslmode=verify-ca`: the chain is verified, the host name is not.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        // webpki checks the chain first and the name last: a name error
        // means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
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

    fn mode_of(url: &str, home: Option<&Path>) -> Result<(TlsMode, String), String> {
        tls_mode(&url::Url::parse(url).unwrap(), home).map(|(m, u)| (m, u.to_string()))
    }

    #[test]
    fn sslmode_is_honoured_when_stricter_and_require_otherwise() {
        let home = Path::new("/home/me");
        let heroku = "postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d";
        assert_eq!(
            mode_of(heroku, Some(home)).unwrap(),
            (TlsMode::Require, heroku.into())
        );
        for weak in ["disable", "allow", "prefer", "require"] {
            let (m, u) = mode_of(&format!("{heroku}?sslmode={weak}"), Some(home)).unwrap();
            assert_eq!(m, TlsMode::Require, "{weak}");
            assert_eq!(u, heroku, "the driver never sees sslmode");
        }
        let (m, u) = mode_of(
            &format!("{heroku}?sslmode=verify-full&sslrootcert=/etc/db/root.pem&connect_timeout=5"),
            Some(home),
        )
        .unwrap();
        assert_eq!(
            m,
            TlsMode::VerifyFull {
                root: "/etc/db/root.pem".into()
            }
        );
        assert_eq!(u, format!("{heroku}?connect_timeout=5"));
        // libpq's default root file.
        let (m, _) = mode_of(&format!("{heroku}?sslmode=verify-ca"), Some(home)).unwrap();
        assert_eq!(
            m,
            TlsMode::VerifyCa {
                root: "/home/me/.postgresql/root.crt".into()
            }
        );
        assert!(mode_of(&format!("{heroku}?sslmode=verify-ca"), None)
            .unwrap_err()
            .contains("sslrootcert=PATH"));
        assert!(mode_of(
            &format!("{heroku}?sslmode=verify-ca&sslrootcert=system"),
            Some(home)
        )
        .unwrap_err()
        .contains("not supported"));
        let e = mode_of(&format!("{heroku}?sslmode=bogus"), Some(home)).unwrap_err();
        assert!(e.contains("\"bogus\"") && !e.contains("u:p"), "{e}");
        // Loopback without a strict mode: TLS if offered (the sandbox).
        for url in [
            "postgres://u@127.0.0.1/d",
            "postgres://u@localhost/d?sslmode=disable",
            "postgres://u@[::1]/d",
        ] {
            assert_eq!(
                mode_of(url, Some(home)).unwrap().0,
                TlsMode::Prefer,
                "{url}"
            );
        }
        assert_eq!(
            mode_of("postgres://u@127.0.0.1/d?sslmode=require", Some(home))
                .unwrap()
                .0,
            TlsMode::Require
        );
    }

    #[test]
    fn a_missing_or_empty_root_file_is_named() {
        let e = tls(&TlsMode::VerifyCa {
            root: "/nonexistent/root.crt".into(),
        })
        .err()
        .unwrap();
        assert!(
            e.contains("/nonexistent/root.crt") && e.contains("does not exist"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("root.crt");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = tls(&TlsMode::VerifyFull {
            root: empty.clone(),
        })
        .err()
        .unwrap();
        assert!(e.contains("no usable PEM certificate"), "{e}");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }
}
