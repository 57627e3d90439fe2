//! Connected-app (direct trust) sign-in tokens: an HS256 JWT signed with the app's secret,
//! valid for 5 minutes (Tableau refuses more than 10), made afresh for every sign-in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::config::{Auth, Secret};
use crate::error::{Error, ErrorKind, Result};

/// How long a token is valid.
const LIFETIME: Duration = Duration::from_secs(300);

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: String,
    scp: &'a [String],
}

/// A token id unique per sign-in: the time and 64 random bits.
fn jti(now: Duration) -> String {
    format!("{:x}-{:016x}", now.as_nanos(), fastrand::u64(..))
}

/// Signs a sign-in JWT for a connected app. Other auth methods have none.
pub fn sign(auth: &Auth) -> Result<Secret> {
    let Auth::ConnectedApp {
        client_id,
        secret_id,
        secret_value,
        username,
        scopes,
    } = auth
    else {
        return Err(Error::new(
            ErrorKind::Internal,
            "a JWT was requested for a non-JWT sign-in",
        ));
    };
    let key = secret_value.resolve()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| {
        Error::config(
            "the system clock is before 1970; connected-app sign-in needs a correct UTC clock",
        )
    })?;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(secret_id.clone());
    let claims = Claims {
        iss: client_id,
        sub: username,
        aud: "tableau",
        exp: (now + LIFETIME).as_secs(),
        // A few seconds back, for servers whose clock is slightly behind.
        iat: now.as_secs().saturating_sub(5),
        jti: jti(now),
        scp: scopes,
    };
    encode(
        &header,
        &claims,
        &EncodingKey::from_secret(key.expose().as_bytes()),
    )
    .map(Secret::new)
    .map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot sign the connected-app JWT: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretSource;

    #[test]
    fn signs_a_verifiable_token_with_the_documented_claims() {
        let auth = Auth::ConnectedApp {
            client_id: "client".into(),
            secret_id: "kid-1".into(),
            secret_value: SecretSource::Inline(Secret::new("s3cret-s3cret-s3cret".into())),
            username: "ana@example.com".into(),
            scopes: vec!["tableau:datasources:create".into()],
        };
        let token = sign(&auth).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_audience(&["tableau"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            token.expose(),
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret-s3cret-s3cret"),
            &validation,
        )
        .unwrap();
        assert_eq!(data.header.kid.as_deref(), Some("kid-1"));
        assert_eq!(data.claims["iss"], "client");
        assert_eq!(data.claims["sub"], "ana@example.com");
        assert_eq!(data.claims["scp"][0], "tableau:datasources:create");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let exp = data.claims["exp"].as_u64().unwrap();
        assert!(
            exp > now && exp <= now + 600,
            "valid, and at most 10 minutes"
        );
        assert_ne!(
            sign(&auth).unwrap().expose(),
            token.expose(),
            "fresh jti per sign-in"
        );
    }
}
