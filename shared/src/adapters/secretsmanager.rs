//! The GitHub webhook's secret from Secrets Manager: its current version and, for a grace period after a rotation,
//! its previous one (the `AWSCURRENT` and `AWSPREVIOUS` stages,
//! <https://docs.aws.amazon.com/secretsmanager/latest/userguide/whats-in-a-secret.html#term_version>). The grace
//! period runs from the current version's `CreatedDate`
//! (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html>).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::SecretString;
use tracing::instrument;

use crate::contract::ports::{SecretError, SecretSource, WebhookSecretSource};
use crate::github::webhook::WebhookSecrets;

/// The webhook secret `secret_id` (name or ARN) in Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManagerWebhookSecret {
    client: Client,
    secret_id: String,
    grace: TimeDelta,
}

impl SecretsManagerWebhookSecret {
    /// `grace`: how long the previous version keeps verifying after the current one was created.
    pub fn new(client: Client, secret_id: impl Into<String>, grace: TimeDelta) -> Self {
        Self { client, secret_id: secret_id.into(), grace }
    }
}

impl WebhookSecretSource for SecretsManagerWebhookSecret {
    #[instrument(skip(self), fields(secret = %self.secret_id))]
    async fn read(&self) -> Result<WebhookSecrets, SecretError> {
        let secret_id = &self.secret_id;
        let unreadable = |source: Box<dyn std::error::Error + Send + Sync>| SecretError::Unreadable {
            secret_id: secret_id.to_owned(),
            source,
        };
        let current = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|error| unreadable(Box::new(error)))?;
        let created =
            current.created_date().and_then(|date| DateTime::<Utc>::from_timestamp(date.secs(), date.subsec_nanos()));
        let value = current
            .secret_string
            .filter(|value| !value.is_empty())
            .ok_or_else(|| SecretError::Empty { secret_id: secret_id.to_owned() })?;
        let previous =
            match self.client.get_secret_value().secret_id(secret_id).version_stage("AWSPREVIOUS").send().await {
                Ok(output) => output.secret_string,
                Err(SdkError::ServiceError(service)) if service.err().is_resource_not_found_exception() => None,
                Err(error) => return Err(unreadable(Box::new(error))),
            };
        Ok(WebhookSecrets::rotating(SecretString::from(value), created, previous.map(SecretString::from), self.grace))
    }
}

/// A plain secret `secret_id` (name or ARN) in Secrets Manager: its current value.
#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSecret {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self { client, secret_id: secret_id.into() }
    }
}

impl SecretSource for SecretsManagerSecret {
    #[instrument(skip(self), fields(secret = %self.secret_id))]
    async fn read(&self) -> Result<SecretString, SecretError> {
        let secret_id = &self.secret_id;
        let output =
            self.client.get_secret_value().secret_id(secret_id).send().await.map_err(|error| {
                SecretError::Unreadable { secret_id: secret_id.to_owned(), source: Box::new(error) }
            })?;
        output
            .secret_string
            .filter(|value| !value.trim().is_empty())
            .map(SecretString::from)
            .ok_or_else(|| SecretError::Empty { secret_id: secret_id.to_owned() })
    }
}
