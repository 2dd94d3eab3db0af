//! The GitHub webhook's secret from Secrets Manager: its current version and, during a rotation, its previous one
//! (the `AWSCURRENT` and `AWSPREVIOUS` stages,
//! <https://docs.aws.amazon.com/secretsmanager/latest/userguide/whats-in-a-secret.html#term_version>).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use secrecy::SecretString;
use tracing::instrument;

use crate::github::WebhookSecrets;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret {secret_id} could not be read; check its name and the function's secretsmanager:GetSecretValue permission"
    )]
    Unreadable {
        secret_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {secret_id} has no string value: store the webhook secret as a plain string")]
    Empty { secret_id: String },
}

/// Reads the webhook secret `secret_id` (name or ARN): the current version, and the previous one if there is one.
#[instrument(skip(client))]
pub async fn webhook_secrets(client: &Client, secret_id: &str) -> Result<WebhookSecrets, SecretError> {
    let unreadable = |source: Box<dyn std::error::Error + Send + Sync>| SecretError::Unreadable {
        secret_id: secret_id.to_owned(),
        source,
    };
    let current = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| unreadable(Box::new(error)))?
        .secret_string
        .filter(|value| !value.is_empty())
        .ok_or_else(|| SecretError::Empty { secret_id: secret_id.to_owned() })?;
    let previous = match client.get_secret_value().secret_id(secret_id).version_stage("AWSPREVIOUS").send().await {
        Ok(output) => output.secret_string,
        Err(SdkError::ServiceError(service)) if service.err().is_resource_not_found_exception() => None,
        Err(error) => return Err(unreadable(Box::new(error))),
    };
    Ok(WebhookSecrets::new([Some(current), previous].into_iter().flatten().map(SecretString::from)))
}
