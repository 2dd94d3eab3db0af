//! The handler from a real function URL request (AWS's sample, carrying GitHub's push) with the in-memory twins.

use base64::Engine;
use chrono::TimeZone;
use secrecy::SecretString;
use serde_json::Value;
use sluice::contract::testing::{FixedSecrets, InMemoryStore, RecordingBuilds, RecordingPublisher};
use sluice::github::webhook::WebhookSecrets;
use sluice::github::webhook::sign;
use sluice::usecases::StageEffects;

use super::*;

const SECRET: &str = "s3cr3t-for-tests";
const FUNCTION_URL_REQUEST: &str =
    include_str!("../../../../shared/tests/fixtures/example-lambda-function-url-request.json");
const PUSH: &[u8] = include_bytes!("../../../../shared/tests/fixtures/github-push.json");
const EXAMPLE: &str = include_str!("../../../../infra/pipelines.example.toml");

type TestApp = App<InMemoryStore, InMemoryStore, StageEffects<RecordingPublisher, RecordingBuilds>, FixedSecrets>;

async fn app(published: Option<&str>) -> TestApp {
    let definitions = InMemoryStore::new();
    if let Some(text) = published {
        definitions.publish(text, None, Utc::now()).await.expect("published");
    }
    App {
        store: InMemoryStore::new(),
        definitions: CachedDefinitions::new(definitions),
        effects: StageEffects { publisher: RecordingPublisher::new(), builds: RecordingBuilds::new() },
        keys: WebhookKeys::load(FixedSecrets(WebhookSecrets::new([SecretString::from(SECRET)]))).await.expect("read"),
        github: None,
    }
}

/// GitHub's POST as a function URL delivers it: AWS's sample request with GitHub's headers and body.
fn request(body: &[u8], signature: Option<&str>, base64: bool) -> Request {
    let mut event: Value = serde_json::from_str(FUNCTION_URL_REQUEST).expect("fixture is JSON");
    event["rawPath"] = "/".into();
    event["rawQueryString"] = "".into();
    event["requestContext"]["http"]["method"] = "POST".into();
    event["requestContext"]["http"]["path"] = "/".into();
    event["requestContext"]["http"]["userAgent"] = "GitHub-Hookshot/5b1e2f0".into();
    let headers = event["headers"].as_object_mut().expect("headers");
    headers.insert("content-type".into(), "application/json".into());
    headers.insert("user-agent".into(), "GitHub-Hookshot/5b1e2f0".into());
    headers.insert("x-github-event".into(), "push".into());
    headers.insert("x-github-delivery".into(), "0b989ba4-242f-11e5-81e1-c7b6966d2516".into());
    headers.insert("x-github-hook-id".into(), "479201554".into());
    if let Some(signature) = signature {
        headers.insert("x-hub-signature-256".into(), signature.into());
    }
    if base64 {
        event["body"] = base64::engine::general_purpose::STANDARD.encode(body).into();
        event["isBase64Encoded"] = true.into();
    } else {
        event["body"] = String::from_utf8_lossy(body).into_owned().into();
    }
    lambda_http::request::from_str(&event.to_string()).expect("a function URL request")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date")
}

fn body_json(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("the body is JSON")
}

#[tokio::test]
async fn a_signed_push_through_the_function_url_is_accepted_and_starts_the_build() {
    let app = app(Some(EXAMPLE)).await;
    let response = respond(&app, request(PUSH, Some(&sign(SECRET, PUSH)), false), now()).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let body = body_json(&response);
    assert_eq!(body["executions"][0]["execution_id"], "web-0b989ba4-242f-11e5-81e1-c7b6966d2516");
    let builds = app.effects.builds.started();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0].source_version, "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b");
}

#[tokio::test]
async fn a_base64_encoded_body_is_verified_on_the_bytes_github_signed() {
    let app = app(Some(EXAMPLE)).await;
    let response = respond(&app, request(PUSH, Some(&sign(SECRET, PUSH)), true), now()).await;
    assert_eq!(response.status(), 202, "{}", body_json(&response));
}

#[tokio::test]
async fn an_unsigned_request_gets_a_401_and_starts_nothing() {
    let app = app(Some(EXAMPLE)).await;
    let response = respond(&app, request(PUSH, None, false), now()).await;
    assert_eq!(response.status(), 401);
    assert_eq!(body_json(&response)["message"], "X-Hub-Signature-256 is missing: set a secret on the webhook");
    assert!(app.effects.builds.started().is_empty());
}

#[tokio::test]
async fn without_published_definitions_it_answers_503() {
    let app = app(None).await;
    let response = respond(&app, request(PUSH, Some(&sign(SECRET, PUSH)), false), now()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(body_json(&response)["message"], "sluice has no usable pipeline definitions");
}

#[test]
fn the_configuration_names_what_is_missing() {
    let all = |name: &str| (name != WEBHOOK_SECRET_GRACE_HOURS).then(|| format!("value of {name}"));
    let config = Config::from_lookup(all).expect("complete");
    assert_eq!(config.secret_id, "value of SLUICE_WEBHOOK_SECRET");
    assert_eq!(config.secret_grace, TimeDelta::hours(24), "a day unless told");
    let grace = |hours: &'static str| {
        move |name: &str| Some(if name == WEBHOOK_SECRET_GRACE_HOURS { hours.to_owned() } else { "x".to_owned() })
    };
    assert_eq!(Config::from_lookup(grace("0")).map(|c| c.secret_grace), Ok(TimeDelta::zero()));
    let invalid = Config::from_lookup(grace("a day"));
    assert!(matches!(invalid, Err(ConfigError::Invalid { name: WEBHOOK_SECRET_GRACE_HOURS, .. })), "{invalid:?}");
    let missing = Config::from_lookup(|name| (name != WEBHOOK_SECRET).then(|| "x".to_owned()));
    assert_eq!(missing, Err(ConfigError::Missing("SLUICE_WEBHOOK_SECRET")));
}

#[tokio::test]
async fn a_get_gets_405_with_allow_post() {
    let app = app(Some(EXAMPLE)).await;
    let mut request = request(PUSH, None, false);
    *request.method_mut() = lambda_http::http::Method::GET;
    let response = respond(&app, request, now()).await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
}
