//! Names as users write them: `&apos;` in tsRequest attribute values is refused by default (as
//! Tableau's publish endpoint is reported to do) and accepted with `accept_apos_entity`; names
//! with markup characters, non-ASCII and emoji are stored and answered exactly.

mod common;

use common::*;
use tableau_emulator::{Config, Seed, SeedPat};

/// The default seed plus PAT `O'Brien's token` / `it's "secret"` for `admin` on the Default site.
fn seed_with_apostrophe_pat() -> Seed {
    let mut seed = Seed::default();
    let site = seed
        .sites
        .iter_mut()
        .find(|s| s.content_url.is_empty())
        .unwrap();
    site.users[0].pats.push(SeedPat {
        name: "O'Brien's token".into(),
        secret: "it's \"secret\"".into(),
    });
    seed
}

fn apostrophe_pat_body(apostrophe: &str) -> String {
    let a = apostrophe;
    pat_body(
        &format!("O{a}Brien{a}s token"),
        &format!("it{a}s &quot;secret&quot;"),
        "",
    )
}

/// A 400 `400000` "Bad Request" whose detail says the payload XML is malformed.
fn assert_apos_refused((status, body): (u16, String)) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("400000"), "{body}");
    assert!(body.contains("<summary>Bad Request</summary>"), "{body}");
    assert!(
        body.contains("<detail>Payload is either malformed XML or incomplete"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apos_entity_is_refused_by_default() {
    let emu = start(Config {
        seed: seed_with_apostrophe_pat(),
        ..Config::default()
    });
    let url = emu.url();

    // Sign-in: `&apos;` is refused before the credentials are even looked at.
    assert_apos_refused(signin_raw(&url, apostrophe_pat_body("&apos;")).await);
    let (status, body) = signin_raw(&url, password_body("admin", "no&apos;pe", "")).await;
    assert_apos_refused((status, body));
    // A literal `'` and the numeric `&#39;` sign in.
    signin_with(&url, apostrophe_pat_body("'")).await;
    let s = signin_with(&url, apostrophe_pat_body("&#39;")).await;

    // Publish (single request): refused, nothing stored.
    let project = s.project_id("default").await;
    let data = hyper_file(4000, 1);
    let (status, code, body) = s
        .publish_file("", "O&apos;Brien", &project, "o.hyper", &data)
        .await;
    assert_apos_refused((status, body));
    assert_eq!(code.as_deref(), Some("400000"));
    assert!(emu.datasources().is_empty());

    // Commit of an upload session: refused, and the session is still usable afterwards.
    let id = s.upload(Style::Docs, &data).await;
    let (status, _, body) = s
        .commit(&commit_query(&id), "O&apos;Brien&apos;s", &project)
        .await;
    assert_apos_refused((status, body));
    assert!(emu.datasources().is_empty());
    created(
        s.commit(&commit_query(&id), "O&#39;Brien's", &project)
            .await,
    );
    let stored = emu.datasources();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "O'Brien's");
    assert_eq!(stored[0].sha256, sha_hex(&data));

    // The same in a description, and in the project id.
    let payload = |ds_attrs: &str, project: &str| {
        format!(
            r#"<tsRequest><datasource {ds_attrs}><project id="{project}"/></datasource></tsRequest>"#
        )
    };
    for p in [
        payload(r#"name="D" description="it&apos;s""#, &project),
        payload(r#"name="D""#, &format!("{project}&apos;")),
    ] {
        let body = multipart(
            Style::FormData,
            &p,
            Some(("tableau_datasource", "d.hyper", &data)),
        );
        let (status, _, body) = s.publish_raw("", Style::FormData, body).await;
        assert_apos_refused((status, body));
    }
    assert_eq!(emu.datasources().len(), 1);
    // `&apos;` outside attribute values (text) is not what Tableau is reported to refuse.
    let body = multipart(
        Style::FormData,
        &payload(r#"name="Text &#39;ok&#39;""#, &project)
            .replace("</tsRequest>", "&apos;</tsRequest>"),
        Some(("tableau_datasource", "t.hyper", &data)),
    );
    created(s.publish_raw("", Style::FormData, body).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apos_entity_is_accepted_with_the_flag() {
    let emu = start(Config {
        seed: seed_with_apostrophe_pat(),
        accept_apos_entity: true,
        ..Config::default()
    });
    let url = emu.url();
    let s = signin_with(&url, apostrophe_pat_body("&apos;")).await;
    let project = s.project_id("default").await;
    let data = hyper_file(3000, 2);
    let body = created(
        s.publish_file("", "O&apos;Brien&apos;s", &project, "o.hyper", &data)
            .await,
    );
    assert_eq!(
        attr(&body, "datasource", "name").as_deref(),
        Some("O'Brien's")
    );
    let stored = emu.datasources();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "O'Brien's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_round_trip_exactly_through_responses_and_filters() {
    let emu = start(Config::default());
    let s = signin(&emu.url(), "").await;
    let project = s.project_id("default").await;
    let names = [
        "O'Brien's Sales",
        "Say \"hi\"",
        "R&D <beta> >",
        "Café Zürich 数据",
        "📊 Quarterly 🚀",
    ];
    for (i, name) in names.iter().enumerate() {
        let escaped = name
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        let description = format!("about {escaped}");
        let payload = format!(
            r#"<tsRequest><datasource name="{escaped}" description="{description}"><project id="{project}"/></datasource></tsRequest>"#
        );
        let data = hyper_file(2000 + i, i as u64);
        let body = multipart(
            Style::FormData,
            &payload,
            Some(("tableau_datasource", "x.hyper", &data)),
        );
        let body = created(s.publish_raw("", Style::FormData, body).await);
        assert_eq!(attr(&body, "datasource", "name").as_deref(), Some(*name));
        assert!(!body.contains("&apos;"), "{body}");
        let id = attr(&body, "datasource", "id").unwrap();

        let stored = emu.datasources().into_iter().find(|d| d.id == id).unwrap();
        assert_eq!(stored.name, *name);
        assert_eq!(stored.sha256, sha_hex(&data));

        // Get Data Source answers the name and the description as published.
        let (st, _, body) = s.get(&s.site_url(&format!("datasources/{id}"))).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(attr(&body, "datasource", "name").as_deref(), Some(*name));
        assert_eq!(
            attr(&body, "datasource", "description"),
            Some(format!("about {name}"))
        );

        // A name filter finds it (names with `&` or `,` cannot be expressed in a filter).
        if !name.contains(['&', ',']) {
            let (st, _, body) = s
                .datasources(&format!("filter=name:eq:{}", pct(name)))
                .await;
            assert_eq!(st, 200, "{body}");
            assert_eq!(
                attrs_all(&body, "datasource", "id"),
                std::slice::from_ref(&id),
                "{name}"
            );
        }
    }
}

/// Percent-encodes everything but unreserved ASCII (as Tableau's client encodes filter values).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
