use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn endpoints(pairs: &[(&str, &str)]) -> Result<Endpoints, ConfigError> {
    Endpoints::from_env(&env_of(pairs))
}

fn urls(pairs: &[(&str, &str)]) -> (String, String) {
    let e = endpoints(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
    (e.platform.to_string(), e.data.to_string())
}

#[test]
fn defaults_are_herokus_apis() {
    assert_eq!(
        urls(&[]),
        (
            "https://api.heroku.com/".into(),
            "https://api.data.heroku.com/".into()
        )
    );
    assert_eq!(endpoints(&[]).unwrap(), Endpoints::heroku());
    // Empty counts as unset.
    assert_eq!(
        urls(&[("HEROKU_HOST", " "), ("HEROKU_DATA_HOST", "")]),
        urls(&[])
    );
}

#[test]
fn bare_heroku_host_means_api_dot_host() {
    assert_eq!(
        urls(&[("HEROKU_HOST", "heroku.com")]),
        (
            "https://api.heroku.com/".into(),
            "https://api.data.heroku.com/".into()
        )
    );
    assert_eq!(
        urls(&[("HEROKU_HOST", "staging.herokudev.com")]).0,
        "https://api.staging.herokudev.com/"
    );
}

#[test]
fn full_url_serves_both_apis_and_loses_trailing_slash() {
    let (p, d) = urls(&[("HEROKU_HOST", "http://127.0.0.1:5000/")]);
    assert_eq!(p, "http://127.0.0.1:5000/");
    assert_eq!(d, p);
    let e = endpoints(&[("HEROKU_HOST", "https://proxy.herokudev.com/heroku/")]).unwrap();
    assert_eq!(e.platform.as_str(), "https://proxy.herokudev.com/heroku");
    assert_eq!(e.data, e.platform);
    assert_eq!(
        urls(&[("HEROKU_HOST", "HTTP://LOCALHOST:8080")]).0,
        "http://localhost:8080/"
    );
}

#[test]
fn data_host_rules() {
    // A bare data host replaces the host of the platform base only.
    assert_eq!(
        urls(&[
            ("HEROKU_HOST", "http://127.0.0.1:5000"),
            ("HEROKU_DATA_HOST", "localhost")
        ])
        .1,
        "http://localhost:5000/"
    );
    assert_eq!(
        urls(&[("HEROKU_DATA_HOST", "postgres-api.heroku.com")]).1,
        "https://postgres-api.heroku.com/"
    );
    // A full URL is taken as it is.
    assert_eq!(
        urls(&[
            ("HEROKU_HOST", "http://127.0.0.1:5000"),
            ("HEROKU_DATA_HOST", "http://[::1]:6000/")
        ])
        .1,
        "http://[::1]:6000/"
    );
    // HEROKU_POSTGRESQL_HOST is the fallback, HEROKU_DATA_HOST wins.
    assert_eq!(
        urls(&[("HEROKU_POSTGRESQL_HOST", "pg.herokai.com")]).1,
        "https://pg.herokai.com/"
    );
    assert_eq!(
        urls(&[
            ("HEROKU_POSTGRESQL_HOST", "pg.herokai.com"),
            ("HEROKU_DATA_HOST", "data.herokuspace.com")
        ])
        .1,
        "https://data.herokuspace.com/"
    );
    // A bare HEROKU_HOST does not move the Data API.
    assert_eq!(
        urls(&[("HEROKU_HOST", "herokudev.com")]).1,
        "https://api.data.heroku.com/"
    );
}

#[test]
fn plain_http_only_to_loopback() {
    for ok in [
        "http://127.0.0.1:5000",
        "http://127.8.9.10",
        "http://[::1]:5000",
        "http://localhost",
        "https://localhost:8443",
        "https://api.heroku.com",
    ] {
        assert!(endpoints(&[("HEROKU_HOST", ok)]).is_ok(), "{ok}");
    }
    for bad in [
        "http://api.heroku.com",
        "http://api.staging.herokudev.com:80",
    ] {
        let e = endpoints(&[("HEROKU_HOST", bad)]).unwrap_err();
        assert!(matches!(e, ConfigError::Insecure { .. }), "{bad}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains("HEROKU_HOST") && msg.contains(bad), "{msg}");
        assert!(msg.contains("https://"), "{msg}");
    }
    // The data API is held to the same rule, named by its variable.
    let e = endpoints(&[("HEROKU_DATA_HOST", "http://data.heroku.com")]).unwrap_err();
    assert!(matches!(e, ConfigError::Insecure { .. }), "{e:?}");
    assert!(e.to_string().contains("HEROKU_DATA_HOST"), "{e}");
    // A bare data host under a loopback http platform base stays http.
    let e = endpoints(&[
        ("HEROKU_HOST", "http://127.0.0.1:5000"),
        ("HEROKU_POSTGRESQL_HOST", "pg.heroku.com"),
    ])
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Insecure {
                var: "HEROKU_POSTGRESQL_HOST",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn the_token_goes_only_to_heroku_hosts_or_loopback() {
    // FACT: heroku/heroku-cli-command src/api-client.ts
    // authorizationAllowed: https and (a Heroku domain, or one of its
    // subdomains), or loopback.
    for (value, ok) in [
        ("https://api.heroku.com", true),
        ("https://heroku.com", true),
        ("https://api.staging.herokudev.com", true),
        ("https://x.herokai.com", true),
        ("https://api.HEROKUSPACE.com", true),
        ("https://127.0.0.1:5000", true),
        ("https://evil.example", false),
        ("https://evilheroku.com", false),
        ("https://api.heroku.com.evil.example", false),
        ("https://heroku.community", false),
        ("http://example.com", false),
        ("http://10.0.0.1:5000", false),
        ("http://[::2]", false),
        ("http://localhost.evil.com", false),
        ("https://192.168.1.10", false),
    ] {
        let url = Url::parse(value).unwrap();
        assert_eq!(may_carry_token(&url), ok, "{value}");
        let e = endpoints(&[("HEROKU_HOST", value)]);
        assert_eq!(e.is_ok(), ok, "{value}: {e:?}");
        if !ok {
            let e = e.unwrap_err();
            assert!(matches!(e, ConfigError::NotHeroku { .. }), "{value}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains("HEROKU_HOST") && msg.contains(value), "{msg}");
            assert!(msg.contains("not a Heroku API host"), "{msg}");
            assert!(msg.contains("Unset HEROKU_HOST"), "{msg}");
        }
    }
    // A bare host is `api.<host>`: the same rule.
    let e = endpoints(&[("HEROKU_HOST", "example.com")]).unwrap_err();
    assert!(matches!(e, ConfigError::NotHeroku { .. }), "{e:?}");
    assert!(e.to_string().contains("api.example.com"), "{e}");
    // The Data API too, bare or full, named by its variable.
    for (var, value) in [
        ("HEROKU_DATA_HOST", "evil.example"),
        ("HEROKU_DATA_HOST", "https://evil.example"),
        ("HEROKU_POSTGRESQL_HOST", "pg.example.com"),
    ] {
        let e = endpoints(&[(var, value)]).unwrap_err();
        assert!(matches!(e, ConfigError::NotHeroku { .. }), "{value}: {e:?}");
        assert!(e.to_string().contains(var), "{e}");
    }
    // Loopback data host under a Heroku platform: allowed over https.
    assert!(endpoints(&[("HEROKU_DATA_HOST", "localhost")]).is_ok());
}

#[test]
fn the_netrc_machine_is_the_configured_api_host() {
    let m = |pairs: &[(&str, &str)]| endpoints(pairs).unwrap().netrc_machine();
    assert_eq!(m(&[]), "api.heroku.com");
    assert_eq!(m(&[("HEROKU_HOST", "herokudev.com")]), "api.herokudev.com");
    assert_eq!(
        m(&[("HEROKU_HOST", "http://127.0.0.1:5000")]),
        "127.0.0.1:5000"
    );
    assert_eq!(
        m(&[("HEROKU_HOST", "https://api.heroku.com:443")]),
        "api.heroku.com"
    );
    assert_eq!(m(&[("HEROKU_HOST", "http://localhost")]), "localhost");
}

#[test]
fn a_bare_data_host_may_carry_a_port() {
    let e = endpoints(&[
        ("HEROKU_HOST", "http://127.0.0.1:5000"),
        ("HEROKU_DATA_HOST", "127.0.0.1:5001"),
    ])
    .unwrap();
    assert_eq!(
        e.data.as_str().trim_end_matches('/'),
        "http://127.0.0.1:5001"
    );
    let e = endpoints(&[
        ("HEROKU_HOST", "http://127.0.0.1:5000"),
        ("HEROKU_DATA_HOST", "localhost"),
    ])
    .unwrap();
    assert_eq!(
        e.data.as_str().trim_end_matches('/'),
        "http://localhost:5000"
    );
}

#[test]
fn bad_urls_are_named() {
    for (var, bad) in [
        ("HEROKU_HOST", "https://"),
        ("HEROKU_HOST", "heroku.com/path"),
        ("HEROKU_HOST", "heroku.com:8080"),
        ("HEROKU_HOST", "https://api.heroku.com/?x=1"),
        ("HEROKU_DATA_HOST", "bad host"),
        ("HEROKU_DATA_HOST", "https://exa mple.com"),
    ] {
        let e = endpoints(&[(var, bad)]).unwrap_err();
        assert!(matches!(e, ConfigError::BadUrl { .. }), "{bad}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(var), "{msg}");
        assert!(msg.contains("unset"), "{msg}");
    }
    let e = endpoints(&[("HEROKU_HOST", "https://me:s3cret@api.heroku.com")]).unwrap_err();
    assert!(matches!(e, ConfigError::BadUrl { .. }));
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

// --- token -----------------------------------------------------------

fn home_with_netrc(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".netrc"), text).expect("write netrc");
    dir
}

fn token_from(pairs: &[(&str, &str)], netrc: Option<&str>) -> Result<Token, ConfigError> {
    let dir = home_with_netrc("");
    if let Some(text) = netrc {
        std::fs::write(dir.path().join(".netrc"), text).expect("write netrc");
    } else {
        std::fs::remove_file(dir.path().join(".netrc")).expect("rm");
    }
    token_from_env(&env_of(pairs), Some(dir.path()), NETRC_MACHINE)
}

#[test]
fn token_is_redacted() {
    let t = Token::new(" abc-123\n");
    assert_eq!(t.expose(), "abc-123");
    assert_eq!(format!("{t}"), "<redacted>");
    assert_eq!(format!("{t:?}"), "<redacted>");
}

#[test]
fn api_key_env_wins() {
    let t = token_from(
        &[("HEROKU_API_KEY", "  from-env  ")],
        Some("machine api.heroku.com password from-netrc"),
    )
    .unwrap();
    assert_eq!(t.expose(), "from-env");
    // Blank means unset.
    let t = token_from(
        &[("HEROKU_API_KEY", "  ")],
        Some("machine api.heroku.com password from-netrc"),
    )
    .unwrap();
    assert_eq!(t.expose(), "from-netrc");
}

#[test]
fn netrc_with_several_machines_comments_and_macdef() {
    let text = "# written by heroku login\n\
                machine git.heroku.com\n  login me@example.com\n  password git-token\n\
                macdef init\ncd /pub\nmachine api.heroku.com password not-this\n\n\
                machine example.com login x password y # trailing comment\n\
                machine API.Heroku.com\n  login me@example.com\n  account acct\n  password \"the token\"\n\
                machine api.heroku.com password second-entry-ignored\n";
    let t = token_from(&[], Some(text)).unwrap();
    assert_eq!(t.expose(), "the token");
}

#[test]
fn netrc_single_line_and_hash_password() {
    let t = token_from(
        &[],
        Some("machine api.heroku.com login a@b.c password #hash-start"),
    )
    .unwrap();
    assert_eq!(t.expose(), "#hash-start");
}

#[test]
fn netrc_default_entry_is_never_used() {
    let text = "machine other.com password other\ndefault login anon password fallback\n";
    let e = token_from(&[], Some(text)).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("`default` entry is not used"), "{msg}");
    assert!(msg.contains("machine api.heroku.com"), "{msg}");
    assert!(!msg.contains("fallback") && !msg.contains("anon"), "{msg}");
    let e = token_from(&[], Some("default password fallback\n")).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
    // A specific machine is used, whatever the order.
    let text = "default password fallback\nmachine api.heroku.com password specific\n";
    assert_eq!(token_from(&[], Some(text)).unwrap().expose(), "specific");
}

#[test]
fn netrc_keywords_of_other_tools_are_ignored() {
    let text = "machine ftp.example.com login a password b port 21 protocol ftp\n\
                machine api.heroku.com\n  login me@example.com\n  password tok\n  method \
                interactive\n  org acme\n  port 443\n  protocol https\n\
                machine git.heroku.com login me password tok2 account x\n";
    assert_eq!(token_from(&[], Some(text)).unwrap().expose(), "tok");
    let text = "port 22\nmachine api.heroku.com password tok port 443";
    assert_eq!(token_from(&[], Some(text)).unwrap().expose(), "tok");
    // A keyword without its value is still malformed, and not quoted.
    let e = token_from(&[], Some("machine api.heroku.com password t port")).unwrap_err();
    assert!(
        matches!(e, ConfigError::NetrcMalformed { line: 1, .. }),
        "{e:?}"
    );
}

#[test]
fn netrc_entry_of_the_configured_host() {
    let dir = home_with_netrc(
        "machine api.heroku.com password heroku-token\n\
         machine 127.0.0.1:5000 password local-token\n",
    );
    let env = env_of(&[]);
    let t = token_from_env(&env, Some(dir.path()), "127.0.0.1:5000").unwrap();
    assert_eq!(t.expose(), "local-token");
    let t = token_from_env(&env, Some(dir.path()), "api.heroku.com").unwrap();
    assert_eq!(t.expose(), "heroku-token");
    // The api.heroku.com token does not go to another host.
    let e = token_from_env(&env, Some(dir.path()), "api.herokudev.com").unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
    assert!(e.to_string().contains("machine api.herokudev.com"), "{e}");
}

#[test]
fn netrc_env_var_names_the_file() {
    let dir = home_with_netrc("machine api.heroku.com password home");
    let other = dir.path().join("other-netrc");
    std::fs::write(&other, "machine api.heroku.com password other").unwrap();
    let other_s = other.to_string_lossy().into_owned();
    let t = token_from_env(
        &env_of(&[("NETRC", &other_s)]),
        Some(dir.path()),
        NETRC_MACHINE,
    )
    .unwrap();
    assert_eq!(t.expose(), "other");
    // A NETRC that names a missing file is an error, not "no token".
    let missing = dir.path().join("missing").to_string_lossy().into_owned();
    let e = token_from_env(
        &env_of(&[("NETRC", &missing)]),
        Some(dir.path()),
        NETRC_MACHINE,
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::NetrcUnreadable { .. }), "{e:?}");
    assert!(e.to_string().contains(&missing), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn no_token_anywhere() {
    let e = token_from(&[], None).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }));
    let msg = e.to_string();
    assert!(msg.contains("HEROKU_API_KEY"), "{msg}");
    assert!(msg.contains("heroku login"), "{msg}");
    assert!(msg.contains("keychain"), "{msg}");
    assert!(
        msg.contains("there is no") && msg.contains(".netrc"),
        "{msg}"
    );
    assert!(msg.contains("no `heroku` command on PATH"), "{msg}");
    let e = token_from_env(&env_of(&[]), None, NETRC_MACHINE).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }));
}

#[test]
#[cfg(unix)]
fn heroku_auth_token_comes_after_the_netrc() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("heroku");
    std::fs::write(&exe, "#!/bin/sh\necho from-cli\n").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = bin.path().to_string_lossy().into_owned();
    // No netrc, a netrc without the machine, one with only `default`.
    for netrc in [
        None,
        Some("machine x password y"),
        Some("default password d"),
    ] {
        let t = token_from(&[("PATH", &path)], netrc).unwrap();
        assert_eq!(t.expose(), "from-cli", "{netrc:?}");
    }
    // The netrc entry wins; HEROKU_API_KEY wins over both.
    let t = token_from(
        &[("PATH", &path)],
        Some("machine api.heroku.com password n"),
    )
    .unwrap();
    assert_eq!(t.expose(), "n");
    let t = token_from(&[("PATH", &path), ("HEROKU_API_KEY", "k")], None).unwrap();
    assert_eq!(t.expose(), "k");
    // A failing CLI: no token, and the reason says so.
    std::fs::write(
        &exe,
        "#!/bin/sh\necho 'Error: not logged in' >&2\nexit 100\n",
    )
    .unwrap();
    let e = token_from(&[("PATH", &path)], None).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("auth:token` failed (exit status 100)"),
        "{msg}"
    );
    assert!(msg.contains("not logged in"), "{msg}");
}

#[test]
fn netrc_unreadable() {
    // A directory where the file should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".netrc")).unwrap();
    let e = token_from_env(&env_of(&[]), Some(dir.path()), NETRC_MACHINE).unwrap_err();
    assert!(matches!(e, ConfigError::NetrcUnreadable { .. }), "{e:?}");
    assert!(e.to_string().contains(".netrc"));
}

#[test]
fn netrc_without_machine_or_password() {
    let e = token_from(&[], Some("machine git.heroku.com password t0ken")).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
    assert!(e.to_string().contains("heroku login"));
    assert!(
        e.to_string().contains("no `machine api.heroku.com` entry"),
        "{e}"
    );
    assert!(!e.to_string().contains("t0ken"));
    let e = token_from(&[], Some("machine api.heroku.com login me@example.com")).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
    assert!(e.to_string().contains("has no password"), "{e}");
    let e = token_from(&[], Some("")).unwrap_err();
    assert!(matches!(e, ConfigError::NoToken { .. }), "{e:?}");
}

#[test]
fn netrc_malformed() {
    let cases: &[(&str, usize)] = &[
        ("login me\nmachine api.heroku.com password x", 1),
        ("machine api.heroku.com\npassword", 2),
        ("machine api.heroku.com\n\npassword secret token-part", 3),
        ("machine api.heroku.com password \"unterminated\n", 1),
        ("machine", 1),
    ];
    for (text, line) in cases {
        let e = token_from(&[], Some(text)).unwrap_err();
        match &e {
            ConfigError::NetrcMalformed { line: l, .. } => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains(".netrc") && msg.contains("HEROKU_API_KEY"),
            "{msg}"
        );
        assert!(
            !msg.contains("token-part") && !msg.contains("secret"),
            "{msg}"
        );
    }
}

#[test]
fn macdef_body_ends_at_blank_line_or_eof() {
    let n = Netrc::parse("macdef m\nmachine fake password no\n\nmachine a password b").unwrap();
    assert_eq!(n.entries.len(), 1);
    assert_eq!(n.entries[0].machine.as_deref(), Some("a"));
    let n = Netrc::parse("machine a password b\nmacdef m\nmachine c password d").unwrap();
    assert_eq!(n.entries.len(), 1);
    assert_eq!(n.entries[0].password.as_deref(), Some("b"));
}

#[test]
fn a_token_that_cannot_go_in_a_header_is_refused_from_every_source() {
    match token_from(&[("HEROKU_API_KEY", "abc\u{200B}def")], None) {
        Err(ConfigError::BadToken { from, problem }) => {
            assert_eq!(from, "HEROKU_API_KEY");
            assert!(problem.contains("zero-width space"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    let e = token_from(
        &[],
        Some("machine api.heroku.com password abc\u{200B}def\n"),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(text.contains(".netrc") && !text.contains("abc"), "{text}");
}
