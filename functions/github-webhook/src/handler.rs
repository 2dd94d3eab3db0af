//! Function URL request -> `receive_webhook` -> HTTP response.

use chrono::{DateTime, Utc};
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use sluice::config::{Common, ConfigError, required_from};
use sluice::github::WebhookSecrets;
use sluice::ports::{DefinitionsStore, PipelineStore};
use sluice::usecases::{CachedDefinitions, Delivery, EffectRunner, receive_webhook};
use tracing::error;

/// The name or ARN of the Secrets Manager secret that holds the webhook secret.
pub const WEBHOOK_SECRET: &str = "SLUICE_WEBHOOK_SECRET";

/// The function's configuration, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub common: Common,
    pub secret_id: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { common: Common::from_lookup(&lookup)?, secret_id: required_from(WEBHOOK_SECRET, &lookup)? })
    }
}

/// What the handler needs, built once per instance.
pub struct App<S, D, R> {
    pub store: S,
    pub definitions: CachedDefinitions<D>,
    pub effects: R,
    pub secrets: WebhookSecrets,
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// Answers one delivery. Every outcome is a response; nothing here panics on input.
pub async fn respond<S: PipelineStore, D: DefinitionsStore, R: EffectRunner>(
    app: &App<S, D, R>,
    request: Request,
    now: DateTime<Utc>,
) -> Response<Body> {
    let header = |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok());
    let delivery = Delivery {
        event: header("x-github-event"),
        delivery_id: header("x-github-delivery"),
        signature: header("x-hub-signature-256"),
        body: request.body().as_ref(),
    };
    let definitions = match app.definitions.get().await {
        Ok(definitions) => definitions,
        Err(cause) => {
            error!(error = %cause, "no usable pipeline definitions");
            return json_response(503, &json!({ "message": "sluice has no usable pipeline definitions" }));
        }
    };
    let reply = receive_webhook(&app.store, &app.effects, &definitions, &app.secrets, delivery, now).await;
    json_response(reply.status, &reply.body)
}

#[cfg(test)]
mod tests;
