//! Function URL request -> `receive_webhook` -> HTTP response.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use sluice::adapters::{
    CodeBuildStarter, DynamoDbStore, EventBridgePublisher, GitHubApi, SecretsManagerSecret,
    SecretsManagerWebhookSecret, github_access, stage_effects,
};
use sluice::contract::ports::{
    CommitHistory, DefinitionsStore, PipelineStore, SecretError, SecretSource, WebhookSecretSource,
};
use sluice::runtime::config::{Common, ConfigError, optional_from, required_from};
use sluice::usecases::{
    CachedDefinitions, Delivery, EffectRunner, GitHubAccess, RecentStates, StageEffects, Webhook, WebhookKeys,
    receive_webhook,
};

/// The name or ARN of the Secrets Manager secret that holds the webhook secret.
pub const WEBHOOK_SECRET: &str = "SLUICE_WEBHOOK_SECRET";
/// How many hours the previous secret keeps verifying after a rotation (default 24).
pub const WEBHOOK_SECRET_GRACE_HOURS: &str = "SLUICE_WEBHOOK_SECRET_GRACE_HOURS";

/// The function's configuration, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub common: Common,
    pub secret_id: String,
    pub secret_grace: TimeDelta,
    /// The secret sluice signs in to GitHub with, to order two pushes of a ref made in the same second; `None`:
    /// the one that arrives last counts as newest.
    pub github_token: Option<String>,
    pub github_api: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let common = Common::from_lookup(&lookup)?;
        let secret_id = required_from(WEBHOOK_SECRET, &lookup)?;
        let secret_grace = match optional_from(WEBHOOK_SECRET_GRACE_HOURS, &lookup) {
            None => TimeDelta::hours(24),
            Some(value) => match value.parse::<i64>() {
                Ok(hours @ 0..=720) => TimeDelta::hours(hours),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: WEBHOOK_SECRET_GRACE_HOURS,
                        reason: format!("must be a whole number of hours from 0 to 720 (got {value:?})"),
                    });
                }
            },
        };
        let (github_token, github_api) = sluice::runtime::config::github_from(&lookup);
        Ok(Self { common, secret_id, secret_grace, github_token, github_api })
    }
}

/// What the handler needs, built once per instance.
pub struct App<S, D, R, K, G = GitHubApi, C = SecretsManagerSecret> {
    pub store: S,
    pub definitions: CachedDefinitions<D>,
    pub effects: R,
    pub keys: WebhookKeys<K>,
    /// Where two pushes of a ref made in the same second are compared; `None` without GitHub credentials.
    pub github: Option<GitHubAccess<G, C>>,
}

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the webhook secret could not be read")]
    WebhookSecret(#[from] SecretError),
}

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = StageEffects<EventBridgePublisher, CodeBuildStarter>;

/// The pipelines' states, remembered for a few seconds after this instance wrote them: a burst of pushes is decided
/// without reading the state again (each save is conditional on the version it was decided from).
pub type Store = RecentStates<DynamoDbStore>;

/// The function as it runs on AWS.
pub type AwsApp = App<Store, DynamoDbStore, Effects, SecretsManagerWebhookSecret>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`. Reads the
    /// webhook secret once, so that a function that cannot read it fails at start-up, naming it.
    pub async fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Result<Self, StartError> {
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.common.table);
        let secret = SecretsManagerWebhookSecret::new(
            aws_sdk_secretsmanager::Client::new(aws),
            &config.secret_id,
            config.secret_grace,
        );
        let definitions = CachedDefinitions::new(store.clone());
        // The published definitions are read while the secret is (every push needs both): a function that starts
        // before any are published reads them at its first push.
        let (keys, read) = tokio::join!(WebhookKeys::load(secret), definitions.get());
        let store = RecentStates::new(store);
        match read {
            // An instance starts for a delivery: with few pipelines, their states are read now, so that the push
            // that started it is decided without waiting for a read.
            Ok(definitions) => {
                let names: Vec<&str> = definitions.iter().map(|pipeline| pipeline.name.as_str()).collect();
                store.read_ahead(&names).await;
            }
            Err(error) => {
                tracing::info!(error = %sluice::runtime::telemetry::Chain(&error), "no definitions read at start-up; the first push reads them");
            }
        }
        Ok(App {
            store,
            definitions,
            effects: stage_effects(aws, &config.common.event_bus),
            keys: keys?,
            github: github_access(aws, config.github_token.as_deref(), &config.github_api),
        })
    }
}

fn json_response(status: u16, body: &serde_json::Value, allow: Option<&'static str>) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    response
}

/// Answers one delivery. Every outcome is a response; nothing here panics on input.
pub async fn respond<S, D, R, K, G, C>(
    app: &App<S, D, R, K, G, C>,
    request: Request,
    now: DateTime<Utc>,
) -> Response<Body>
where
    S: PipelineStore,
    D: DefinitionsStore,
    R: EffectRunner,
    K: WebhookSecretSource,
    G: CommitHistory,
    C: SecretSource,
{
    let header = |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok());
    let delivery = Delivery {
        method: request.method().as_str(),
        content_type: header("content-type"),
        event: header("x-github-event"),
        delivery_id: header("x-github-delivery"),
        hook_id: header("x-github-hook-id"),
        hook_target: header("x-github-hook-installation-target-type"),
        signature: header("x-hub-signature-256"),
        body: request.body().as_ref(),
    };
    let webhook = Webhook {
        store: &app.store,
        effects: &app.effects,
        definitions: &app.definitions,
        keys: &app.keys,
        github: app.github.as_ref(),
    };
    let reply = receive_webhook(webhook, delivery, now).await;
    json_response(reply.status, &reply.body, reply.allow)
}

#[cfg(test)]
mod tests;
