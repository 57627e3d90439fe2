//! Names as users write them: data source names, descriptions, project names and credentials
//! with `'`, `"`, `&`, `<`, `>`, non-ASCII and emoji publish exactly, against an emulator that
//! (like Tableau's publish endpoint, reportedly) refuses `&apos;` in tsRequest attribute values.

mod common;

use common::{extract, publish, sha256_hex, Env};
use serde_json::json;
use tableau_emulator::{Config as EmuConfig, Seed, SeedPat, SeedUser};
use tableau_publisher::{ErrorKind, PublishResult};

const NAMES: [&str; 5] = [
    "O'Brien's Sales",
    "Say \"hi\"",
    "R&D <beta> >",
    "Café Zürich 数据",
    "📊 Quarterly 🚀",
];

/// A description with the same characters, and whitespace an XML parser would normalise away
/// if it were written literally.
fn description_for(name: &str) -> String {
    format!("About {name}: it's \"ours\" & <new> > Café 数据 📊\n\tindented\r\nlast line")
}

/// Name and description of data source `id` as the REST API answers them (Get Data Source),
/// read with quick-xml directly: neither the client's parser nor the emulator's.
fn rest_name_and_description(env: &Env, id: &str) -> (String, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("{}/api/3.25", env.emu.url());
        let signin = http
            .post(format!("{base}/auth/signin"))
            .body(r#"<tsRequest><credentials name="admin" password="admin-pass"><site contentUrl=""/></credentials></tsRequest>"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let token = attr(&signin, "credentials", "token").expect("signed in");
        let site = attr(&signin, "site", "id").unwrap();
        let body = http
            .get(format!("{base}/sites/{site}/datasources/{id}"))
            .header("X-Tableau-Auth", &token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        http.post(format!("{base}/auth/signout"))
            .header("X-Tableau-Auth", &token)
            .send()
            .await
            .unwrap();
        body
    });
    assert!(!body.contains("&apos;"), "{body}");
    (
        attr(&body, "datasource", "name").expect("name"),
        attr(&body, "datasource", "description").expect("description"),
    )
}

/// Attribute `name` of the first element with local name `elem`.
fn attr(xml: &str, elem: &str, name: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event().expect("XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.local_name().as_ref() == elem.as_bytes() =>
            {
                return e
                    .try_get_attribute(name)
                    .unwrap()
                    .map(|a| a.unescape_value().unwrap().into_owned());
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
    }
}

/// No request was refused (the emulator answers `&apos;` with 400).
fn assert_no_refusals(env: &Env) {
    let refused: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.status >= 400)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
}

fn assert_published(env: &Env, r: &PublishResult, name: &str, description: &str, data: &[u8]) {
    assert_eq!(r.datasource_name, name);
    let stored = env.datasource(name);
    assert_eq!(stored.name.as_bytes(), name.as_bytes());
    assert_eq!(stored.sha256, sha256_hex(data), "{name}");
    assert_eq!(r.sha256, stored.sha256);
    assert_eq!(r.datasource_id.as_deref(), Some(stored.id.as_str()));
    let (rest_name, rest_description) = rest_name_and_description(env, &stored.id);
    assert_eq!(rest_name.as_bytes(), name.as_bytes());
    assert_eq!(
        rest_description.as_bytes(),
        description.as_bytes(),
        "{name}"
    );
}

#[test]
fn names_and_descriptions_publish_exactly() {
    let env = Env::start();
    for (i, name) in NAMES.iter().enumerate() {
        let description = description_for(name);
        let data = extract(3000 + i, i as u64);
        let cfg = env.config(json!({"datasource_name": name, "description": description}));
        let r = publish(&cfg, &data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_published(&env, &r, name, &description, &data);
    }
    assert_eq!(env.datasources().len(), NAMES.len());
    assert_no_refusals(&env);
}

#[test]
fn the_lookup_by_name_finds_them_again() {
    let env = Env::start();
    for (i, name) in NAMES.iter().enumerate() {
        let first = extract(2000, 10 + i as u64);
        let second = extract(2500, 20 + i as u64);
        let description = description_for(name);
        let cfg = |mode: &str| {
            env.config(json!({"datasource_name": name, "description": description, "mode": mode}))
        };
        let a = publish(&cfg("create_new"), &first).unwrap_or_else(|e| panic!("{name}: {e}"));

        // create_new sees the clash itself, before uploading anything.
        let posts = env.count("POST", "/datasources");
        let err = publish(&cfg("create_new"), &first).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{name}: {err}");
        assert!(err.message().contains("already exists"), "{err}");
        assert_eq!(env.count("POST", "/datasources"), posts, "{name}");

        // overwrite replaces the same data source.
        let b = publish(&cfg("overwrite"), &second).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.datasource_id, b.datasource_id, "{name}");
        assert_published(&env, &b, name, &description, &second);
        let ops: Vec<_> = env
            .datasource(name)
            .history
            .iter()
            .map(|h| h.op.clone())
            .collect();
        assert_eq!(ops, ["create", "overwrite"], "{name}");
    }
    // The clashes were seen by the client, so the server refused nothing.
    assert_no_refusals(&env);
}

#[test]
fn a_lost_publish_answer_is_recognised_by_name() {
    // The publish applies but its answer is lost: the client finds the data source by its name
    // and reports success instead of publishing twice.
    let env = Env::start();
    let name = NAMES[0];
    let data = extract(4000, 7);
    env.fault(
        "POST",
        "/datasources",
        1,
        1,
        tableau_emulator::FaultAction::ResetAfterBody,
    );
    let cfg = env.config(json!({
        "datasource_name": name,
        "retry": {"base_delay_ms": 10, "max_delay_ms": 50, "commit_verify_secs": 3},
    }));
    let r = publish(&cfg, &data).unwrap_or_else(|e| panic!("{e}"));
    let applied = env
        .requests()
        .iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/datasources") && q.applied)
        .count();
    assert_eq!(applied, 1);
    let stored = env.datasource(name);
    assert_eq!(stored.history.len(), 1);
    assert_eq!(r.datasource_id.as_deref(), Some(stored.id.as_str()));
    assert_eq!(stored.sha256, sha256_hex(&data));
}

#[test]
fn project_names_with_the_same_characters_resolve() {
    let env = Env::start();
    // `&` cannot be expressed in a filter (the level is listed and matched here); the others can.
    let parent = env.emu.add_project("", None, "Ops & Co's <Team> 📊");
    let child = env
        .emu
        .add_project("", Some(&parent), "Café \"Zürich\" 数据");
    for (i, name) in NAMES.iter().enumerate() {
        let data = extract(1500, 30 + i as u64);
        let cfg = env.config(json!({
            "datasource_name": name,
            "project": ["Ops & Co's <Team> 📊", "Café \"Zürich\" 数据"],
            "mode": "overwrite",
        }));
        publish(&cfg, &data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = publish(&cfg, &data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again.project_id, child);
        let stored = env.datasource(name);
        assert_eq!(stored.project_id, child);
        assert_eq!(stored.project_name, "Café \"Zürich\" 数据");
        assert_eq!(stored.history.len(), 2, "{name}");
    }
    assert_no_refusals(&env);
}

#[test]
fn credentials_with_markup_characters_and_tabs_sign_in() {
    let mut seed = Seed::default();
    let site = &mut seed.sites[0];
    assert_eq!(site.content_url, "");
    let password = "p'a\"s&s<w>o\trd ü📊";
    site.users.push(SeedUser {
        name: "O'Brien & \"Søn\" <ops>".into(),
        password: Some(password.into()),
        site_role: "ServerAdministrator".into(),
        pats: vec![SeedPat {
            name: "O'Brien's token".into(),
            secret: "s'e\"c&r<e>t\n".into(),
        }],
    });
    let env = Env::with(EmuConfig {
        seed,
        ..EmuConfig::default()
    });
    let auths = [
        json!({"method": "password", "username": "O'Brien & \"Søn\" <ops>", "password": password}),
        json!({"method": "pat", "token_name": "O'Brien's token", "token_secret": "s'e\"c&r<e>t\n"}),
    ];
    for (i, auth) in auths.into_iter().enumerate() {
        let name = NAMES[i];
        let data = extract(1000, 40 + i as u64);
        let cfg = env.config(json!({"datasource_name": name, "auth": auth}));
        let r = publish(&cfg, &data).unwrap_or_else(|e| panic!("{auth}: {e}"));
        assert_eq!(r.sign_ins, 1);
        assert_eq!(env.datasource(name).sha256, sha256_hex(&data));
    }
    assert_no_refusals(&env);
}

#[test]
fn characters_xml_cannot_carry_are_a_config_error_naming_the_field() {
    let env = Env::start();
    for (overrides, field, code) in [
        (
            json!({"datasource_name": "Sales\u{1}"}),
            "\"datasource_name\"",
            "U+0001",
        ),
        (
            json!({"description": "nul \u{0} here"}),
            "\"description\"",
            "U+0000",
        ),
    ] {
        let err = publish(&env.config(overrides.clone()), &extract(1000, 1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{overrides}: {err}");
        assert!(err.message().contains(field), "{err}");
        assert!(err.message().contains(code), "{err}");
    }
    assert_eq!(
        env.count("POST", "/datasources"),
        0,
        "nothing was published"
    );
    assert!(env.datasources().is_empty());
}
