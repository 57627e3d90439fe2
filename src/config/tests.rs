//! Tests of the configuration: what is accepted, and the message for each kind of mistake.

use super::read::{Want, MAX_SHOWN, METHOD, MODE};
use super::*;

#[test]
fn a_tls_ca_file_that_is_a_device_or_too_large_is_refused_without_reading_it_all() {
    let mut b = base();
    let dir = tempfile::tempdir().unwrap();
    // Something that is not a regular file: a device where there are device files.
    let not_a_file = if cfg!(unix) {
        "/dev/zero".into()
    } else {
        dir.path().to_owned()
    };
    b["tls_ca_file"] = not_a_file.to_str().unwrap().into();
    let e = Config::from_json(&b.to_string()).unwrap_err();
    assert!(e.message().contains("not a regular file"), "{e}");
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; (MAX_CA_FILE_BYTES + 1) as usize]).unwrap();
    b["tls_ca_file"] = big.to_str().unwrap().into();
    let e = Config::from_json(&b.to_string()).unwrap_err();
    assert!(e.message().contains("larger than 4 MiB"), "{e}");
}

fn base() -> serde_json::Value {
    serde_json::json!({
        "server_url": "https://tableau.example.com/",
        "site": "",
        "auth": {"method": "pat", "token_name": "ci", "token_secret": "s3cret-value"},
        "project": "Finance/Quarterly",
        "datasource_name": "Sales",
        "mode": "create_new"
    })
}

fn with(key: &str, v: serde_json::Value) -> String {
    let mut b = base();
    b[key] = v;
    b.to_string()
}

fn err(json: &str) -> String {
    Config::from_json(json).unwrap_err().message().to_owned()
}

#[test]
fn valid_config_parses_with_defaults() {
    let c = Config::from_json(&base().to_string()).unwrap();
    assert_eq!(c.server_url, "https://tableau.example.com");
    assert_eq!(
        c.project,
        ProjectTarget::Path(vec!["Finance".into(), "Quarterly".into()])
    );
    assert_eq!(c.chunk_size_bytes, DEFAULT_CHUNK_BYTES);
    assert_eq!(c.as_job, AsJob::Auto);
    assert!(
        !format!("{c:?}").contains("s3cret-value"),
        "Debug must redact secrets"
    );
}

#[test]
fn modes_are_read_and_named_from_one_table() {
    for mode in Mode::ALL {
        let c = Config::from_json(&with("mode", mode.name().into())).unwrap();
        assert_eq!(c.mode, mode);
    }
    assert_eq!(Mode::NAMES, ["create_new", "overwrite", "append"]);
    assert_eq!(MODE.what(), "\"create_new\", \"overwrite\" or \"append\"");
    assert_eq!(METHOD.what(), "\"pat\", \"connected_app\" or \"password\"");
    assert_eq!(Want::one_of(&["only"]).what(), "\"only\"");
}

#[test]
fn api_version_is_parsed_once() {
    let c = Config::from_json(&with("api_version", "3.19".into())).unwrap();
    assert_eq!(c.api_version, Some(ApiVersion::new(3, 19)));
    assert_eq!(c.api_version.unwrap().to_string(), "3.19");
    assert!(Config::from_json(&base().to_string())
        .unwrap()
        .api_version
        .is_none());
    assert_eq!(
        err(&with("api_version", "3.x".into())),
        "\"api_version\" must look like \"3.21\", not \"3.x\""
    );
}

#[test]
fn unknown_keys_are_named() {
    assert!(err(&with("chunk_size", 5.into())).contains("chunk_size"));
    let mut b = base();
    b["auth"]["tokn_name"] = "x".into();
    assert!(err(&b.to_string()).contains("auth.tokn_name"));
}

#[test]
fn plain_http_only_for_loopback_or_opt_in() {
    assert!(
        err(&with("server_url", "http://tableau.example.com".into()))
            .contains("allow_insecure_http")
    );
    assert!(Config::from_json(&with("server_url", "http://127.0.0.1:8080".into())).is_ok());
    assert!(Config::from_json(&with("server_url", "http://[::1]:8080".into())).is_ok());
    let mut b = base();
    b["server_url"] = "http://tableau.example.com".into();
    b["allow_insecure_http"] = true.into();
    assert!(Config::from_json(&b.to_string()).is_ok());
}

#[test]
fn secrets_from_env_are_read_late() {
    let mut b = base();
    b["auth"] = serde_json::json!({"method": "password", "username": "u", "password_env": "TP_TEST_UNSET_VAR_123"});
    let c = Config::from_json(&b.to_string()).unwrap();
    let Auth::Password { password, .. } = &c.auth else {
        panic!()
    };
    let e = password.resolve().unwrap_err();
    assert!(e.message().contains("TP_TEST_UNSET_VAR_123"));
}

#[test]
fn bad_values_get_clear_errors() {
    assert!(err(&with("chunk_size_bytes", (MAX_CHUNK_BYTES + 1).into())).contains("64 MiB"));
    assert!(err(&with("project", "Finance//Q".into())).contains("empty name"));
    assert!(err(&with("mode", "upsert".into())).contains("upsert"));
    assert!(err(&with("api_version", "three".into())).contains("api_version"));
    assert!(err(&with("as_job", "sometimes".into())).contains("as_job"));
    let mut b = base();
    b["mode"] = "append".into();
    b["file_type"] = "tdsx".into();
    assert!(err(&b.to_string()).contains("append"));
    let mut b = base();
    b.as_object_mut().unwrap().remove("site");
    assert!(err(&b.to_string()).contains("\"site\""));
    assert!(err("[1]").contains("JSON object"));
    assert!(err("{").contains("not valid JSON"));
}

#[test]
fn connected_app_auth_with_default_scopes() {
    let mut b = base();
    b["auth"] = serde_json::json!({"method": "connected_app", "client_id": "c", "secret_id": "k",
        "secret_value_env": "TP_APP_SECRET", "username": "ana@example.com"});
    let c = Config::from_json(&b.to_string()).unwrap();
    let Auth::ConnectedApp { scopes, .. } = &c.auth else {
        panic!()
    };
    assert_eq!(scopes.len(), PUBLISH_SCOPES.len());
    b["auth"]["scopes"] = serde_json::json!([]);
    assert!(err(&b.to_string()).contains("auth.scopes"));
    b["auth"]["scopes"] = serde_json::json!(["tableau:datasources:create"]);
    b["auth"]["password"] = "x".into();
    assert!(err(&b.to_string()).contains("auth.password"));
}

/// The message of the configuration error `config` gets (it must get one).
fn problems(config: &serde_json::Value) -> String {
    let e = Config::from_json(&config.to_string()).unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::Config, "{e}");
    e.message().to_owned()
}

fn with_auth(auth: serde_json::Value) -> serde_json::Value {
    let mut b = base();
    b["auth"] = auth;
    b
}

#[test]
fn a_misspelled_key_is_named_with_the_key_it_probably_means() {
    let mut b = base();
    let name = b
        .as_object_mut()
        .unwrap()
        .remove("datasource_name")
        .unwrap();
    b["datasourcename"] = name;
    assert_eq!(
        problems(&b),
        "config has 2 problems: (1) unknown key \"datasourcename\" (did you mean \"datasource_name\"?); \
         (2) missing the required key \"datasource_name\" (a string)"
    );
}

#[test]
fn a_type_error_names_the_key_what_was_expected_and_what_was_found() {
    let mut b = base();
    b["chunk_size_bytes"] = "big".into();
    assert_eq!(
        problems(&b),
        "config: \"chunk_size_bytes\": expected an integer, found the string \"big\""
    );
    // A number out of range: the range is said.
    b["chunk_size_bytes"] = serde_json::json!(-1);
    assert_eq!(
        problems(&b),
        "config: \"chunk_size_bytes\": expected an integer from 0 to 18446744073709551615, found the number -1"
    );
    let mut b = base();
    b["retry"] = serde_json::json!({"max_attempts": 5_000_000_000u64, "base_delay_ms": 1.5});
    assert_eq!(
        problems(&b),
        "config has 2 problems: (1) \"retry.max_attempts\": expected an integer from 0 to 4294967295, found the number 5000000000; \
         (2) \"retry.base_delay_ms\": expected an integer from 0 to 18446744073709551615, found the number 1.5"
    );
    // Inside an array: the element's path.
    let mut b = base();
    b["project"] = serde_json::json!(["Finance", 7]);
    assert_eq!(
        problems(&b),
        "config: \"project[1]\": expected a string, found the number 7"
    );
    let msg = problems(&with_auth(serde_json::json!({"method": "connected_app",
        "client_id": "c", "secret_id": "k", "secret_value_env": "V", "username": "u",
        "scopes": ["tableau:content:read", 5]})));
    assert_eq!(
        msg,
        "config: \"auth.scopes[1]\": expected a string, found the number 5"
    );
    // A word that is close to an accepted one gets a suggestion.
    let mut b = base();
    b["mode"] = "overwite".into();
    assert_eq!(
        problems(&b),
        "config: \"mode\": expected \"create_new\", \"overwrite\" or \"append\", found the string \"overwite\" (did you mean \"overwrite\"?)"
    );
    let mut b = base();
    b["allow_insecure_http"] = "yes".into();
    b["site"] = serde_json::Value::Null;
    assert_eq!(
        problems(&b),
        "config has 2 problems: (1) \"allow_insecure_http\": expected true or false, found the string \"yes\"; \
         (2) \"site\": expected a string, found null"
    );
    let mut b = base();
    b["retry"] = "often".into();
    assert_eq!(
        problems(&b),
        "config: \"retry\": expected an object, found a string"
    );
}

#[test]
fn null_is_absent_for_optional_top_level_keys() {
    let mut b = base();
    for key in [
        "description",
        "chunk_size_bytes",
        "as_job",
        "proxy",
        "project_id",
    ] {
        b[key] = serde_json::Value::Null;
    }
    let c = Config::from_json(&b.to_string()).unwrap();
    assert_eq!(c.chunk_size_bytes, DEFAULT_CHUNK_BYTES);
    assert!(c.proxy.is_none() && c.description.is_none());
}

#[test]
fn an_unknown_key_in_retry_is_named_with_its_path() {
    let mut b = base();
    b["retry"] = serde_json::json!({"max_atempts": 3});
    assert_eq!(
        problems(&b),
        "config: unknown key \"retry.max_atempts\" (did you mean \"max_attempts\"?)"
    );
}

#[test]
fn unknown_keys_in_auth_and_proxy_are_named_with_their_paths() {
    let msg = problems(&with_auth(
        serde_json::json!({"method": "pat", "tokn_name": "ci", "token_secret": "s3cret-value"}),
    ));
    assert_eq!(
        msg,
        "config has 2 problems: (1) unknown key \"auth.tokn_name\" for method \"pat\" (did you mean \"token_name\"?); \
         (2) missing the required key \"auth.token_name\" (a string)"
    );
    let mut b = base();
    b["proxy"] = serde_json::json!({"url": "http://proxy.example.com:3128", "username": "etl", "pasword": "pw-4711"});
    let msg = problems(&b);
    assert!(
        msg.contains("unknown key \"proxy.pasword\" (did you mean \"password\"?)"),
        "{msg}"
    );
    assert!(msg.contains("go together"), "{msg}");
    assert!(!msg.contains("pw-4711"), "{msg}");
    b["proxy"] = serde_json::json!({"url": "http://proxy.example.com:3128", "colour": "red"});
    assert_eq!(
        problems(&b),
        "config: unknown key \"proxy.colour\" (allowed: url, username, password, password_env)"
    );
    // The method is misspelled: which keys belong cannot be told, so only that is said.
    let msg = problems(&with_auth(serde_json::json!({"method": "pta", "tokn": 1})));
    assert!(
        msg.contains("\"auth.method\" \"pta\" is not supported"),
        "{msg}"
    );
    assert!(msg.ends_with("(did you mean \"pat\"?)"), "{msg}");
}

#[test]
fn did_you_mean_only_when_a_known_key_is_close() {
    let mut b = base();
    b["colour"] = "red".into();
    assert_eq!(
        problems(&b),
        "config: unknown key \"colour\": remove it, or see the README's config table for the keys"
    );
    for far in ["foo", "chunk_größe", "timeout", "secret"] {
        let mut b = base();
        b[far] = 1.into();
        let msg = problems(&b);
        assert!(
            msg.contains(&format!("unknown key \"{far}\": remove it")),
            "{msg}"
        );
        assert!(!msg.contains("did you mean"), "{far}: {msg}");
    }
    for (near, meant) in [
        ("chunk_sise", "chunk_size_bytes"),
        ("Description", "description"),
        ("projectid", "project_id"),
        ("request_timeout", "request_timeout_secs"),
    ] {
        let mut b = base();
        b[near] = 1.into();
        let msg = problems(&b);
        assert!(
            msg.contains(&format!("(did you mean \"{meant}\"?)")),
            "{near}: {msg}"
        );
    }
    // A key already given is not suggested.
    let mut b = base();
    b["datasource-name"] = "Sales".into();
    assert!(!problems(&b).contains("did you mean"));
}

#[test]
fn all_problems_are_reported_at_once() {
    let config = serde_json::json!({
        "server_url": "https://tableau.example.com",
        "site": 5,
        "auth": {"method": "pat", "token_name": "", "token_secret": "s3cret-value", "extra": 1},
        "project": "P",
        "datasourcename": "Sales",
        "mode": "create_new",
        "chunk_size_bytes": "big",
        "retry": {"max_atempts": 3, "base_delay_ms": "fast"},
        "proxy": {"url": 3128}
    });
    let msg = problems(&config);
    assert!(
        msg.starts_with("config has 9 problems: (1) unknown key \"datasourcename\" (did you mean \"datasource_name\"?); "),
        "{msg}"
    );
    for part in [
        "\"site\": expected a string, found the number 5",
        "unknown key \"auth.extra\" for method \"pat\" (allowed: method, token_name, token_secret, token_secret_env)",
        "\"auth.token_name\" is empty",
        "missing the required key \"datasource_name\" (a string)",
        "\"chunk_size_bytes\": expected an integer, found the string \"big\"",
        "unknown key \"retry.max_atempts\" (did you mean \"max_attempts\"?)",
        "\"retry.base_delay_ms\": expected an integer, found the string \"fast\"",
        "\"proxy.url\": expected a string, found the number 3128",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    assert!(!msg.contains("s3cret-value"), "{msg}");
    // Everything missing: every required key named.
    let msg = problems(&serde_json::json!({}));
    assert!(msg.starts_with("config has 5 problems: "), "{msg}");
    for key in REQUIRED {
        assert!(
            msg.contains(&format!("missing the required key \"{key}\"")),
            "{msg}"
        );
    }
}

const REQUIRED: [&str; 5] = ["server_url", "site", "auth", "datasource_name", "mode"];

#[test]
fn many_problems_are_listed_up_to_a_limit() {
    let mut b = base();
    for i in 0..30 {
        b[format!("extra_{i:02}")] = i.into();
    }
    let msg = problems(&b);
    assert!(msg.starts_with("config has 30 problems: "), "{msg}");
    assert!(msg.contains(&format!("({MAX_SHOWN}) unknown key")), "{msg}");
    assert!(!msg.contains(&format!("({}) ", MAX_SHOWN + 1)), "{msg}");
    assert!(msg.ends_with("; and 10 more"), "{msg}");
}

#[test]
fn a_secret_of_the_wrong_type_is_not_echoed() {
    let app = |secret: serde_json::Value| {
        serde_json::json!({"method": "connected_app", "client_id": "c", "secret_id": "k",
            "secret_value": secret, "username": "ana@example.com"})
    };
    for (auth, says) in [
        (
            serde_json::json!({"method": "pat", "token_name": "ci", "token_secret": 918273645}),
            "\"auth.token_secret\": expected a string, found a number",
        ),
        (
            serde_json::json!({"method": "pat", "token_name": "ci", "token_secret_env": 918273645}),
            "\"auth.token_secret_env\": expected the name of an environment variable (a string), found a number",
        ),
        (
            serde_json::json!({"method": "password", "username": "u", "password": true}),
            "\"auth.password\": expected a string, found a boolean",
        ),
        (
            serde_json::json!({"method": "password", "username": "u", "password": ["918273645"]}),
            "\"auth.password\": expected a string, found an array",
        ),
        (
            app(serde_json::json!({"value": "918273645"})),
            "\"auth.secret_value\": expected a string, found an object",
        ),
        (
            serde_json::json!("pat:918273645"),
            "\"auth\": expected an object such as",
        ),
    ] {
        let msg = problems(&with_auth(auth));
        assert!(msg.contains(says), "{says}: {msg}");
        assert!(!msg.contains("918273645"), "{msg}");
    }
    let mut b = base();
    b["proxy"] = serde_json::json!({"url": "http://proxy.example.com:3128", "username": "etl", "password": 918273645});
    assert_eq!(
        problems(&b),
        "config: \"proxy.password\": expected a string, found a number"
    );
    b["proxy"] = "http://etl:918273645@proxy.example.com:3128".into();
    assert_eq!(
        problems(&b),
        "config: \"proxy\": expected an object, found a string"
    );
    // Credentials in a server URL that does not parse are not echoed either.
    let mut b = base();
    b["server_url"] = "https://etl:918273645@tableau.example.com:port".into();
    let msg = problems(&b);
    assert!(msg.contains("\"server_url\" (not shown"), "{msg}");
    assert!(!msg.contains("918273645"), "{msg}");
    // A secret under a misspelled key: the key is named, its value is not.
    let msg = problems(&with_auth(
        serde_json::json!({"method": "pat", "token_name": "ci", "tokensecret": "918273645"}),
    ));
    assert!(msg.contains("unknown key \"auth.tokensecret\""), "{msg}");
    assert!(!msg.contains("918273645"), "{msg}");
}

#[test]
fn a_root_that_is_not_an_object_is_refused_without_echoing_it() {
    for (json, found) in [
        ("[1]", "an array"),
        ("\"s3cret-token\"", "a string"),
        ("null", "null"),
        ("42", "a number"),
        ("true", "a boolean"),
    ] {
        let e = Config::from_json(json).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        assert_eq!(
            e.message(),
            format!("config must be a JSON object, like {{\"server_url\": …, \"site\": …, …}}, not {found}")
        );
    }
}

#[test]
fn any_value_under_any_key_is_accepted_or_a_config_error() {
    let deep = (0..100).fold(serde_json::json!(1), |v, _| serde_json::json!([v]));
    let values = [
        serde_json::Value::Null,
        true.into(),
        (-1).into(),
        1.5.into(),
        1e300.into(),
        u64::MAX.into(),
        "".into(),
        "x".into(),
        "\"\n\u{1b}é".repeat(5_000).into(),
        serde_json::json!([]),
        serde_json::json!([null, 1, "a", {}]),
        serde_json::json!({}),
        serde_json::json!({"a": {"b": [null]}}),
        deep,
    ];
    // Messages quote what they echo, cut short; only a path is named in full.
    let check = |config: &serde_json::Value| match Config::from_json(&config.to_string()) {
        Ok(_) => {}
        Err(e) => {
            assert_eq!(e.kind(), crate::error::ErrorKind::Config, "{e}");
            let names_a_path = ["spool_dir", "tls_ca_file"]
                .iter()
                .any(|k| e.message().starts_with(&format!("\"{k}\"")));
            assert!(
                !e.message().is_empty() && (e.message().len() < 2_000 || names_a_path),
                "{e}"
            );
        }
    };
    let top = [
        "server_url",
        "allow_insecure_http",
        "site",
        "auth",
        "project",
        "project_id",
        "datasource_name",
        "mode",
        "file_type",
        "description",
        "api_version",
        "spool_dir",
        "chunk_size_bytes",
        "as_job",
        "request_timeout_secs",
        "job_timeout_secs",
        "single_request_max_bytes",
        "session_max_age_secs",
        "retry",
        "tls_ca_file",
        "proxy",
        "unknown",
    ];
    let auths = [
        serde_json::json!({"method": "pat", "token_name": "ci", "token_secret": "s"}),
        serde_json::json!({"method": "password", "username": "u", "password_env": "V"}),
        serde_json::json!({"method": "connected_app", "client_id": "c", "secret_id": "k",
            "secret_value": "s", "username": "u", "scopes": ["a"]}),
    ];
    let nested = [
        (
            "auth",
            vec![
                "method",
                "token_name",
                "token_secret",
                "token_secret_env",
                "username",
                "password",
                "password_env",
                "client_id",
                "secret_id",
                "secret_value",
                "secret_value_env",
                "scopes",
                "unknown",
            ],
        ),
        (
            "proxy",
            vec!["url", "username", "password", "password_env", "unknown"],
        ),
        (
            "retry",
            vec![
                "max_attempts",
                "max_elapsed_secs",
                "base_delay_ms",
                "max_delay_ms",
                "max_rate_limit_wait_secs",
                "max_reauthentications",
                "max_upload_restarts",
                "commit_verify_secs",
                "unknown",
            ],
        ),
    ];
    for value in &values {
        for key in top {
            let mut b = base();
            b[key] = value.clone();
            check(&b);
        }
        for (section, keys) in &nested {
            let starts: Vec<serde_json::Value> = match *section {
                "auth" => auths.to_vec(),
                "proxy" => vec![serde_json::json!({"url": "http://proxy.example.com:3128"})],
                _ => vec![serde_json::json!({})],
            };
            for start in starts {
                for key in keys {
                    let mut b = base();
                    b[*section] = start.clone();
                    b[*section][*key] = value.clone();
                    check(&b);
                }
            }
        }
    }
    // Numbers beyond u64 and f64, and nesting beyond serde_json's limit of 128.
    let text = base().to_string();
    for (value, says) in [
        (
            "18446744073709551616",
            "found the number 1.8446744073709552e+19",
        ),
        ("1e400", "not valid JSON"),
        (
            &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
            "not valid JSON",
        ),
    ] {
        let json = text.replacen('{', &format!("{{\"chunk_size_bytes\": {value}, "), 1);
        let e = Config::from_json(&json).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        assert!(e.message().contains(says), "{says}: {e}");
    }
}

#[test]
fn project_as_array_allows_slashes_in_names() {
    let c = Config::from_json(&with("project", serde_json::json!(["A/B", "C, D"]))).unwrap();
    assert_eq!(
        c.project,
        ProjectTarget::Path(vec!["A/B".into(), "C, D".into()])
    );
}
