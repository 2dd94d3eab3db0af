//! How sluice signs in to GitHub's REST API, from the secret the stack names in `GitHubTokenSecret`:
//!
//! - a token (a fine-grained personal access token, `github_pat_...`), used as it is; or
//! - a GitHub App: the secret is JSON, `{"app_id": 123456, "private_key": "-----BEGIN RSA PRIVATE KEY-----..."}`
//!   (the key as GitHub hands it out, its `.pem` file; `client_id` may stand for `app_id`). sluice signs a JWT with
//!   the key (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>)
//!   and trades it for an installation access token for the one repository it reports on.
//!
//! Parsing and signing are pure: nothing here reads a clock or logs a secret, and no error repeats what the secret
//! holds.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// How far back a JWT's `iat` is set, for a GitHub whose clock is behind (GitHub's advice: 60 seconds).
pub const JWT_BACKDATE: TimeDelta = TimeDelta::seconds(60);
/// How long a JWT is good for after it is made; GitHub refuses one that lives over 10 minutes.
pub const JWT_LIFETIME: TimeDelta = TimeDelta::seconds(9 * 60);

/// What sluice signs in to GitHub with.
#[derive(Clone)]
pub enum GitHubCredentials {
    /// A token, sent as it is.
    Token(SecretString),
    /// A GitHub App, which gets an installation access token per repository.
    App(GitHubApp),
}

/// A GitHub App: its id (or client id) and private key.
#[derive(Clone)]
pub struct GitHubApp {
    /// The JWT's issuer: the app's id, or its client id.
    pub issuer: String,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for GitHubCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("GitHubCredentials::Token([REDACTED])"),
            Self::App(app) => write!(f, "GitHubCredentials::App({app:?})"),
        }
    }
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApp").field("issuer", &self.issuer).field("key", &"[REDACTED]").finish()
    }
}

/// The secret does not hold credentials sluice can use. The message never quotes the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the GitHub secret {0}")]
pub struct CredentialsError(String);

impl CredentialsError {
    fn new(what: &str) -> Self {
        Self(what.to_owned())
    }
}

impl GitHubCredentials {
    /// Reads the secret: JSON (it starts with `{`) is a GitHub App, anything else a token.
    pub fn parse(secret: &SecretString) -> Result<Self, CredentialsError> {
        let text = secret.expose_secret().trim();
        if text.starts_with('{') {
            return GitHubApp::parse(text).map(Self::App);
        }
        if text.is_empty() {
            return Err(CredentialsError::new("is empty"));
        }
        if !text.chars().all(|c| c.is_ascii_graphic()) {
            return Err(CredentialsError::new(
                "is not a token: it holds spaces or characters a token does not have (a GitHub App's secret is JSON)",
            ));
        }
        Ok(Self::Token(SecretString::from(text.to_owned())))
    }
}

impl GitHubApp {
    fn parse(text: &str) -> Result<Self, CredentialsError> {
        let json: Value = serde_json::from_str(text)
            .map_err(|_| CredentialsError::new("starts with `{` but is not JSON: a GitHub App's secret is JSON"))?;
        let issuer = match (json.get("app_id"), json.get("client_id")) {
            (Some(Value::Number(id)), _) if id.is_u64() => id.to_string(),
            (Some(Value::String(id)), _) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => id.clone(),
            (None, Some(Value::String(id))) if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) => {
                id.clone()
            }
            (None, None) => return Err(CredentialsError::new("is JSON without an `app_id` (or `client_id`)")),
            _ => {
                return Err(CredentialsError::new(
                    "has an `app_id` that is not a number (or a `client_id` that is not letters and digits)",
                ));
            }
        };
        let Some(pem) = json.get("private_key").and_then(Value::as_str) else {
            return Err(CredentialsError::new("is JSON without a `private_key` (the GitHub App's .pem file)"));
        };
        let key = private_key(pem)?;
        Ok(Self { issuer, key: Arc::new(key) })
    }

    /// A JWT that signs in as the app from `now` for [`JWT_LIFETIME`], backdated by [`JWT_BACKDATE`]
    /// (RS256, claims `iat`, `exp`, `iss`).
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<SecretString, CredentialsError> {
        let issuer = match self.issuer.parse::<u64>() {
            Ok(id) => json!(id),
            Err(_) => json!(self.issuer),
        };
        let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "RS256", "typ": "JWT" }).to_string());
        let claims = json!({
            "iat": (now - JWT_BACKDATE).timestamp(),
            "exp": (now + JWT_LIFETIME).timestamp(),
            "iss": issuer,
        });
        let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
            .map_err(|_| CredentialsError::new("holds a private key that could not sign"))?;
        Ok(SecretString::from(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))))
    }

    /// The app's public key (DER `RSAPublicKey`), which verifies its JWTs.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }
}

/// An RSA private key in PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, GitHub's form) or PKCS#8 (`BEGIN PRIVATE KEY`).
fn private_key(pem: &str) -> Result<RsaKeyPair, CredentialsError> {
    let not_a_key = || {
        CredentialsError::new(
            "has a `private_key` that is not an RSA private key in PEM form (GitHub's .pem file, from `-----BEGIN \
             RSA PRIVATE KEY-----` to its END line)",
        )
    };
    let body = |label: &str| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = pem.find(&begin)? + begin.len();
        let stop = start + pem[start..].find(&end)?;
        let base64: String = pem[start..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
        STANDARD.decode(base64).ok()
    };
    let key = if let Some(der) = body("RSA PRIVATE KEY") {
        RsaKeyPair::from_der(&der)
    } else if let Some(der) = body("PRIVATE KEY") {
        RsaKeyPair::from_pkcs8(&der)
    } else {
        return Err(not_a_key());
    };
    key.map_err(|_| not_a_key())
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/github-app-test-key.pem");

    fn app_secret(app_id: Value) -> SecretString {
        SecretString::from(json!({ "app_id": app_id, "private_key": KEY }).to_string())
    }

    fn claims(jwt: &str) -> Value {
        let part = jwt.split('.').nth(1).unwrap_or_default();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn a_plain_secret_is_a_token_used_as_it_is_without_its_surrounding_whitespace() {
        let parsed = GitHubCredentials::parse(&SecretString::from("github_pat_11ABC_def\n")).expect("a token");
        let GitHubCredentials::Token(token) = parsed else { panic!("not a token: {parsed:?}") };
        assert_eq!(token.expose_secret(), "github_pat_11ABC_def");
        assert!(!format!("{:?}", GitHubCredentials::Token(token)).contains("github_pat"));
    }

    #[test]
    fn a_json_secret_with_an_app_id_and_githubs_pem_key_is_a_github_app() {
        for app_id in [json!(123_456), json!("123456")] {
            let parsed = GitHubCredentials::parse(&app_secret(app_id)).expect("an app");
            let GitHubCredentials::App(app) = parsed else { panic!("not an app") };
            assert_eq!(app.issuer, "123456");
            assert!(!format!("{app:?}").contains("BEGIN"), "the key is never shown");
        }
        let by_client = json!({ "client_id": "Iv23liAbCdEf", "private_key": KEY }).to_string();
        let parsed = GitHubCredentials::parse(&SecretString::from(by_client)).expect("an app");
        assert!(matches!(parsed, GitHubCredentials::App(app) if app.issuer == "Iv23liAbCdEf"));
    }

    #[test]
    fn the_jwt_is_rs256_backdated_a_minute_lives_nine_and_verifies_with_the_apps_public_key() {
        let GitHubCredentials::App(app) = GitHubCredentials::parse(&app_secret(json!(42))).expect("an app") else {
            panic!("not an app")
        };
        let now = DateTime::from_timestamp(1_780_000_000, 0).expect("a time");
        let jwt = app.jwt(now).expect("signed");
        let jwt = jwt.expose_secret();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64url")).expect("json");
        assert_eq!(header, json!({ "alg": "RS256", "typ": "JWT" }));
        assert_eq!(claims(jwt), json!({ "iat": 1_780_000_000 - 60, "exp": 1_780_000_000 + 540, "iss": 42 }));

        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url");
        let signed = format!("{}.{}", parts[0], parts[1]);
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, app.public_key());
        assert!(public.verify(signed.as_bytes(), &signature).is_ok());
        assert!(public.verify(format!("{signed}x").as_bytes(), &signature).is_err(), "a changed claim fails");
        let other = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("a key");
        let wrong = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, other.public_key().as_ref().to_vec());
        assert!(wrong.verify(signed.as_bytes(), &signature).is_err(), "another key does not verify it");
    }

    #[test]
    fn a_pkcs8_key_serves_as_well_as_githubs_pkcs1_form() {
        use aws_lc_rs::encoding::AsDer;
        let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("a key");
        let der = key.as_der().expect("pkcs8");
        let pem =
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(der.as_ref()));
        let secret = SecretString::from(json!({ "app_id": 7, "private_key": pem }).to_string());
        let GitHubCredentials::App(app) = GitHubCredentials::parse(&secret).expect("an app") else { panic!("no app") };
        assert_eq!(app.public_key(), key.public_key().as_ref());
    }

    #[test]
    fn a_secret_sluice_cannot_use_is_refused_with_a_reason_that_never_quotes_it() {
        let truncated = &KEY[..KEY.len() / 2];
        let cases = [
            ("", "is empty"),
            ("github_pat_1 2", "holds spaces"),
            ("{\"app_id\": 1, \"private_key\": ", "not JSON"),
            ("{\"private_key\": \"x\"}", "without an `app_id`"),
            ("{\"app_id\": -1, \"private_key\": \"x\"}", "not a number"),
            ("{\"app_id\": \"12a\", \"private_key\": \"x\"}", "not a number"),
            ("{\"app_id\": 1}", "without a `private_key`"),
            ("{\"app_id\": 1, \"private_key\": \"ghp_not_a_key\"}", "not an RSA private key"),
        ];
        for (secret, reason) in cases {
            let error = GitHubCredentials::parse(&SecretString::from(secret)).expect_err(secret).to_string();
            assert!(error.contains(reason), "{secret:?}: {error}");
            assert!(!error.contains("ghp_") && !error.contains("github_pat"), "{error}");
        }
        let secret = json!({ "app_id": 1, "private_key": truncated }).to_string();
        let error = GitHubCredentials::parse(&SecretString::from(secret)).expect_err("truncated").to_string();
        assert!(error.contains("not an RSA private key") && !error.contains("MII"), "{error}");
    }
}
