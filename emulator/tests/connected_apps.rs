//! Connected-app (direct trust) JWT sign-in: success, the failure codes, scope enforcement, the
//! `isUat` variant and the seed. JWTs are built here with `jsonwebtoken`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tableau_emulator::{Config, Seed, SeedConnectedApp};

const APP: &str = "ci-app";
const KID: &str = "ci-secret-id";
const SECRET: &str = "ci-app-secret-value-0123456789abcdef";

const ALL_SCOPES: &[&str] = &[
    "tableau:content:read",
    "tableau:jobs:read",
    "tableau:file_uploads:create",
    "tableau:datasources:create",
];

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("jti-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

/// Claims as Tableau's own TypeScript client builds them (exp now+5 min, iat/nbf now−5 s).
fn claims(sub: &str, scopes: &[&str]) -> Value {
    let t = now();
    json!({"iss": APP, "sub": sub, "aud": "tableau", "exp": t + 300, "iat": t - 5, "nbf": t - 5,
           "jti": jti(), "scp": scopes})
}

fn sign(kid: &str, secret: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.to_owned());
    h.typ = Some("JWT".to_owned());
    encode(&h, claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn good(scopes: &[&str]) -> String {
    sign(KID, SECRET, &claims("admin", scopes))
}

fn jwt_body(jwt: &str, site: &str, extra: &str) -> String {
    format!(
        r#"<tsRequest><credentials jwt="{jwt}"{extra}><site contentUrl="{site}"/></credentials></tsRequest>"#
    )
}

async fn jwt_signin(url: &str, jwt: &str, site: &str) -> Session {
    signin_with(url, jwt_body(jwt, site, "")).await
}

/// Sign in with `body` and expect 401 401001 with `(errorCode=N)` (or no number for `None`).
async fn expect_refused(url: &str, body: String, n: Option<u32>, jwt: &str) {
    let (s, text) = signin_raw(url, body).await;
    assert_eq!(s, 401, "{text}");
    assert_eq!(error_code(&text).as_deref(), Some("401001"), "{text}");
    assert!(text.contains("<summary>Signin Error</summary>"), "{text}");
    let detail = match n {
        Some(n) => format!("<detail>Error signing in to Tableau Server (errorCode={n})</detail>"),
        None => "<detail>Error signing in to Tableau Server</detail>".to_owned(),
    };
    assert!(text.contains(&detail), "{text}");
    assert!(!text.contains(jwt), "the JWT must not be echoed");
}

fn sample() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/sample.hyper"
    ))
    .unwrap()
}

#[tokio::test]
async fn good_jwt_signs_in_and_publishes() {
    let emu = start(Config::default());
    let url = emu.url();
    // TSC adds isUat="false"; that is accepted.
    let jwt = good(ALL_SCOPES);
    let (st, body) = signin_raw(&url, jwt_body(&jwt, "", r#" isUat="false""#)).await;
    assert_eq!(st, 200, "{body}");
    assert!(attr(&body, "credentials", "token").is_some());

    let s = jwt_signin(&url, &good(ALL_SCOPES), "").await;
    let (st, _, body) = s.current().await;
    assert_eq!(st, 200);
    assert_eq!(attr(&body, "user", "name").as_deref(), Some("admin"));

    // Single-request publish of the sample file.
    let project = s.project_id("default").await;
    let data = sample();
    created(
        s.publish_file("", "FromJwt", &project, "sample.hyper", &data)
            .await,
    );
    let d = emu
        .datasources()
        .into_iter()
        .find(|d| d.name == "FromJwt")
        .unwrap();
    assert_eq!(
        (d.size, d.sha256.clone()),
        (data.len() as u64, sha_hex(&data))
    );

    // Chunked upload + async publish + job polling.
    let id = s.upload(Style::FormData, &data).await;
    let (st, _, body) = s.commit_job(&id, "FromJwtAsync", &project).await;
    assert_eq!(st, 202, "{body}");
    let job = attr(&body, "job", "id").unwrap();
    let (st, _, _) = s.job(&job).await;
    assert_eq!(st, 200);
    let (st, _, body) = s.datasources("filter=name:eq:FromJwt").await;
    assert_eq!((st, count(&body, "datasource")), (200, 1), "{body}");

    // A JWT session behaves like a password session: a second JWT sign-in does not end it.
    let other = jwt_signin(&url, &good(ALL_SCOPES), "").await;
    assert_eq!(s.projects("").await.0, 200);
    assert_eq!(other.projects("").await.0, 200);

    // The same JWT (same jti) cannot be used twice.
    expect_refused(&url, jwt_body(&jwt, "", ""), Some(16), &jwt).await;

    // JSON sign-in.
    let jwt = good(ALL_SCOPES);
    let r = signin_json(
        &url,
        json!({"credentials": {"jwt": jwt, "site": {"contentUrl": "qa"}}}).to_string(),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let v = json(r).await;
    assert_eq!(v["credentials"]["site"]["contentUrl"], "qa");

    // Neither the JWT nor the token reaches the request log.
    let log = serde_json::to_string(&emu.requests()).unwrap();
    assert!(!log.contains(&jwt) && !log.contains(&s.token));
}

#[tokio::test]
async fn failure_codes() {
    let emu = start(Config::default());
    let url = emu.url();
    let r = |jwt: &str| jwt_body(jwt, "", "");

    // 16: bad signature.
    let jwt = sign(KID, "not-the-secret", &claims("admin", ALL_SCOPES));
    expect_refused(&url, r(&jwt), Some(16), &jwt).await;
    // 16: exp 20 minutes ahead.
    let mut c = claims("admin", ALL_SCOPES);
    c["exp"] = json!(now() + 20 * 60);
    let jwt = sign(KID, SECRET, &c);
    expect_refused(&url, r(&jwt), Some(16), &jwt).await;
    // 16: expired.
    let mut c = claims("admin", ALL_SCOPES);
    c["exp"] = json!(now() - 120);
    let jwt = sign(KID, SECRET, &c);
    expect_refused(&url, r(&jwt), Some(16), &jwt).await;
    // 16: wrong aud.
    let mut c = claims("admin", ALL_SCOPES);
    c["aud"] = json!("tableau-cloud");
    let jwt = sign(KID, SECRET, &c);
    expect_refused(&url, r(&jwt), Some(16), &jwt).await;
    // 16: unknown user, and the user name is case-sensitive.
    let jwt = sign(KID, SECRET, &claims("nobody", ALL_SCOPES));
    expect_refused(&url, r(&jwt), Some(16), &jwt).await;
    let jwt = sign(KID, SECRET, &claims("Admin", ALL_SCOPES));
    expect_refused(&url, r(&jwt), Some(16), &jwt).await;
    // 16: garbage.
    expect_refused(&url, r("not.a.jwt"), Some(16), "not.a.jwt").await;
    // 126: unknown iss.
    let mut c = claims("admin", ALL_SCOPES);
    c["iss"] = json!("some-other-app");
    let jwt = sign(KID, SECRET, &c);
    expect_refused(&url, r(&jwt), Some(126), &jwt).await;
    // 127: unknown kid for that app.
    let jwt = sign("other-secret-id", SECRET, &claims("admin", ALL_SCOPES));
    expect_refused(&url, r(&jwt), Some(127), &jwt).await;
    // Unknown site: plain 401001.
    let jwt = good(ALL_SCOPES);
    expect_refused(&url, jwt_body(&jwt, "nosuchsite", ""), None, &jwt).await;
    // isUat="true" (Tableau Cloud unified access token): refused.
    let jwt = good(ALL_SCOPES);
    expect_refused(&url, jwt_body(&jwt, "", r#" isUat="true""#), None, &jwt).await;

    // 67: the app is disabled (on that site only); sessions it created stay valid.
    let s = jwt_signin(&url, &good(ALL_SCOPES), "").await;
    assert!(emu.set_connected_app_enabled("", APP, false));
    assert!(!emu.set_connected_app_enabled("", "no-such-app", false));
    assert!(!emu.set_connected_app_enabled("nosuchsite", APP, false));
    let jwt = good(ALL_SCOPES);
    expect_refused(&url, r(&jwt), Some(67), &jwt).await;
    assert_eq!(s.projects("").await.0, 200);
    jwt_signin(&url, &good(ALL_SCOPES), "qa").await;
    // Re-enabled through the control API.
    let resp = control_post(
        &url,
        "connected-apps",
        r#"{"site":"","client_id":"ci-app","enabled":true}"#,
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    jwt_signin(&url, &good(ALL_SCOPES), "").await;

    // Every refusal is logged as 401001.
    let refused = emu
        .requests()
        .iter()
        .filter(|r| r.code.as_deref() == Some("401001"))
        .count();
    assert_eq!(refused, 12);
}

#[tokio::test]
async fn scopes_are_enforced() {
    let emu = start(Config::default());
    let url = emu.url();
    let forbidden = |(st, code, body): (u16, Option<String>, String), scope: &str| {
        assert_eq!(st, 403, "{body}");
        assert_eq!(code.as_deref(), Some("403157"), "{body}");
        assert!(
            body.contains(&format!(
                "The JWT does not grant scope '{scope}' needed for this call."
            )),
            "{body}"
        );
    };

    // Read-only: queries work, uploads and publishing do not.
    let ro = jwt_signin(&url, &good(&["tableau:content:read"]), "").await;
    let (st, _, body) = ro.projects("").await;
    assert_eq!(st, 200);
    let project = attr(&body, "project", "id").unwrap();
    assert_eq!(ro.datasources("").await.0, 200);
    forbidden(ro.initiate_raw().await, "tableau:file_uploads:create");
    forbidden(
        ro.publish_file("", "Nope", &project, "sample.hyper", &sample())
            .await,
        "tableau:datasources:create",
    );
    assert!(emu.datasources().is_empty());

    // Upload + publish only: both work, but the queries need content:read and jobs jobs:read.
    let rw = jwt_signin(
        &url,
        &good(&["tableau:file_uploads:create", "tableau:datasources:create"]),
        "",
    )
    .await;
    let id = rw.upload(Style::Docs, &sample()).await;
    let (st, _, body) = rw.commit_job(&id, "Scoped", &project).await;
    assert_eq!(st, 202, "{body}");
    let job = attr(&body, "job", "id").unwrap();
    forbidden(rw.projects("").await, "tableau:content:read");
    forbidden(rw.datasources("").await, "tableau:content:read");
    forbidden(rw.job(&job).await, "tableau:jobs:read");
    // Scope-free calls.
    assert_eq!(rw.current().await.0, 200);
    // content:read or jobs:read covers Query Job.
    assert_eq!(ro.job(&job).await.0, 200);
    let jobs = jwt_signin(&url, &good(&["tableau:jobs:read"]), "").await;
    assert_eq!(jobs.job(&job).await.0, 200);
    forbidden(jobs.projects("").await, "tableau:content:read");

    // A PAT session on the same site is not restricted.
    let pat = signin(&url, "").await;
    assert_eq!(pat.projects("").await.0, 200);
    assert_eq!(pat.job(&job).await.0, 200);

    // Sign-out needs no scope.
    assert_eq!(rw.signout().await.0, 204);
}

#[tokio::test]
async fn seeded_apps_and_secrets() {
    // Seed: two secrets for one app, an app seeded disabled, no apps on the second site.
    let app = |client_id: &str, secret_id: &str, secret: &str, enabled: bool| SeedConnectedApp {
        client_id: client_id.into(),
        secret_id: secret_id.into(),
        secret_value: secret.into(),
        enabled,
    };
    let mut seed = Seed::default();
    seed.sites[0].connected_apps = vec![
        app("ci-app", "s1", "value-one", true),
        app("ci-app", "s2", "value-two", true),
        app("off-app", "s3", "value-three", false),
    ];
    seed.sites[1].connected_apps = vec![];
    let emu = start(Config {
        seed,
        ..Config::default()
    });
    let url = emu.url();
    jwt_signin(
        &url,
        &sign("s1", "value-one", &claims("admin", ALL_SCOPES)),
        "",
    )
    .await;
    jwt_signin(
        &url,
        &sign("s2", "value-two", &claims("admin", ALL_SCOPES)),
        "",
    )
    .await;
    // A secret id of the app, with the other secret's value: bad signature.
    let jwt = sign("s2", "value-one", &claims("admin", ALL_SCOPES));
    expect_refused(&url, jwt_body(&jwt, "", ""), Some(16), &jwt).await;
    let mut c = claims("admin", ALL_SCOPES);
    c["iss"] = json!("off-app");
    let jwt = sign("s3", "value-three", &c);
    expect_refused(&url, jwt_body(&jwt, "", ""), Some(67), &jwt).await;
    // The app is per site.
    let jwt = sign("s1", "value-one", &claims("admin", ALL_SCOPES));
    expect_refused(&url, jwt_body(&jwt, "qa", ""), Some(126), &jwt).await;

    // Seed JSON: connected_apps is optional and `enabled` defaults to true.
    let s = Seed::from_json(
        r#"{"sites":[{"content_url":"","users":[{"name":"u"}],
            "connected_apps":[{"client_id":"c","secret_id":"k","secret_value":"v"}]},
           {"content_url":"x"}]}"#,
    )
    .unwrap();
    assert!(s.sites[0].connected_apps[0].enabled);
    assert!(s.sites[1].connected_apps.is_empty());
}
