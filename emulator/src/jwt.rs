//! Connected-app (direct trust) JWT checks for sign-in. Verification of the HS256 signature is
//! done by `jsonwebtoken`; every claim check (`exp` window, `aud`, `nbf`, `iat`, `jti`, `scp`) is
//! done here, so the rules are exactly the ones documented in the README.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Tableau's connected-app sign-in failure numbers (shown as `(errorCode=N)` in the detail).
pub(crate) const LOGIN_FAILED: u32 = 16;
pub(crate) const FEATURE_NOT_ENABLED: u32 = 67;
pub(crate) const CONNECTED_APP_NOT_FOUND: u32 = 126;
pub(crate) const CONNECTED_APP_SECRET_NOT_FOUND: u32 = 127;

/// `exp` may be at most this far in the future (seconds).
pub(crate) const MAX_LIFETIME_SECS: f64 = 600.0;
/// Clock skew allowed on every time check (seconds).
pub(crate) const SKEW_SECS: f64 = 60.0;

/// A connected app of a site (one per client id; it may have several secrets).
#[derive(Clone, Debug)]
pub(crate) struct ConnectedApp {
    pub site_id: String,
    pub client_id: String,
    pub enabled: bool,
    /// (secret id, secret value)
    pub secrets: Vec<(String, String)>,
}

/// What a valid token grants. The user (`sub`) is resolved by the caller.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub client_id: String,
    pub sub: String,
    pub jti: String,
    pub exp: f64,
    pub scopes: Vec<String>,
}

fn validation(verify_signature: bool) -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    if !verify_signature {
        v.insecure_disable_signature_validation();
    }
    v
}

fn num(claims: &Map<String, Value>, k: &str) -> Result<Option<f64>, u32> {
    match claims.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(LOGIN_FAILED),
    }
}

/// Check a token against the site's connected apps at time `now` (Unix seconds).
/// Err is the Tableau error number.
pub(crate) fn verify(jwt: &str, apps: &[&ConnectedApp], now: f64) -> Result<Verified, u32> {
    let jwt = jwt.trim();
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| LOGIN_FAILED)?;
    if header.alg != Algorithm::HS256 {
        return Err(LOGIN_FAILED);
    }
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
    {
        return Err(LOGIN_FAILED);
    }
    // Read the claims unverified first: the issuer says which app (and so which secret) to use.
    let unverified = jsonwebtoken::decode::<Map<String, Value>>(
        jwt,
        &DecodingKey::from_secret(b""),
        &validation(false),
    )
    .map_err(|_| LOGIN_FAILED)?
    .claims;
    let iss = unverified
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(CONNECTED_APP_NOT_FOUND)?;
    let app = apps
        .iter()
        .find(|a| a.client_id == iss)
        .ok_or(CONNECTED_APP_NOT_FOUND)?;
    if !app.enabled {
        return Err(FEATURE_NOT_ENABLED);
    }
    let kid = header
        .kid
        .as_deref()
        .ok_or(CONNECTED_APP_SECRET_NOT_FOUND)?;
    let secret = app
        .secrets
        .iter()
        .find(|(id, _)| id == kid)
        .map(|(_, v)| v)
        .ok_or(CONNECTED_APP_SECRET_NOT_FOUND)?;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(
        jwt,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation(true),
    )
    .map_err(|_| LOGIN_FAILED)?
    .claims;

    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == "tableau",
        Some(Value::Array(v)) => v.iter().any(|a| a.as_str() == Some("tableau")),
        _ => false,
    };
    if !aud_ok {
        return Err(LOGIN_FAILED);
    }
    let exp = num(&claims, "exp")?.ok_or(LOGIN_FAILED)?;
    if exp <= now - SKEW_SECS || exp > now + MAX_LIFETIME_SECS + SKEW_SECS {
        return Err(LOGIN_FAILED);
    }
    if num(&claims, "nbf")?.is_some_and(|nbf| nbf > now + SKEW_SECS) {
        return Err(LOGIN_FAILED);
    }
    if num(&claims, "iat")?.is_some_and(|iat| iat > now + SKEW_SECS) {
        return Err(LOGIN_FAILED);
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(LOGIN_FAILED)?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(LOGIN_FAILED)?;
    let scopes = match claims.get("scp") {
        Some(Value::Array(v)) => v
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(LOGIN_FAILED)?,
        _ => return Err(LOGIN_FAILED),
    };
    Ok(Verified {
        client_id: app.client_id.clone(),
        sub: sub.to_owned(),
        jti: jti.to_owned(),
        exp,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn app(enabled: bool) -> ConnectedApp {
        ConnectedApp {
            site_id: "s".into(),
            client_id: "cid".into(),
            enabled,
            secrets: vec![("kid1".into(), "secret-one".into())],
        }
    }

    fn token(kid: &str, secret: &str, claims: Value) -> String {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.into());
        encode(&h, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    fn claims(now: f64) -> Value {
        serde_json::json!({"iss":"cid","sub":"admin","aud":"tableau","exp":now + 300.0,
                           "jti":"j1","scp":["tableau:content:read"]})
    }

    #[test]
    fn codes() {
        let now = 1_700_000_000.0;
        let a = app(true);
        let apps = [&a];
        let ok = verify(&token("kid1", "secret-one", claims(now)), &apps, now).unwrap();
        assert_eq!(ok.scopes, vec!["tableau:content:read".to_owned()]);
        assert_eq!(ok.sub, "admin");
        let v = |c: Value| verify(&token("kid1", "secret-one", c), &apps, now).unwrap_err();
        let mut c = claims(now);
        c["exp"] = (now + 601.0 + SKEW_SECS).into();
        assert_eq!(v(c), LOGIN_FAILED);
        let mut c = claims(now);
        c["exp"] = (now + 600.0 + SKEW_SECS).into();
        assert!(verify(&token("kid1", "secret-one", c), &apps, now).is_ok());
        let mut c = claims(now);
        c["exp"] = (now - SKEW_SECS).into();
        assert_eq!(v(c), LOGIN_FAILED);
        let mut c = claims(now);
        c["aud"] = "other".into();
        assert_eq!(v(c), LOGIN_FAILED);
        let mut c = claims(now);
        c["scp"] = "tableau:content:read".into();
        assert_eq!(v(c), LOGIN_FAILED);
        let mut c = claims(now);
        c["nbf"] = (now + 120.0).into();
        assert_eq!(v(c), LOGIN_FAILED);
        let mut c = claims(now);
        c["iss"] = "nope".into();
        assert_eq!(v(c), CONNECTED_APP_NOT_FOUND);
        assert_eq!(
            verify(&token("kid2", "secret-one", claims(now)), &apps, now).unwrap_err(),
            CONNECTED_APP_SECRET_NOT_FOUND
        );
        assert_eq!(
            verify(&token("kid1", "wrong", claims(now)), &apps, now).unwrap_err(),
            LOGIN_FAILED
        );
        assert_eq!(verify("not.a.jwt", &apps, now).unwrap_err(), LOGIN_FAILED);
        let d = app(false);
        assert_eq!(
            verify(&token("kid1", "secret-one", claims(now)), &[&d], now).unwrap_err(),
            FEATURE_NOT_ENABLED
        );
        // HS384 is refused even with the right secret.
        let mut h = Header::new(Algorithm::HS384);
        h.kid = Some("kid1".into());
        let t = encode(&h, &claims(now), &EncodingKey::from_secret(b"secret-one")).unwrap();
        assert_eq!(verify(&t, &apps, now).unwrap_err(), LOGIN_FAILED);
    }
}
