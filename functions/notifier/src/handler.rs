//! `Execution Finished` or `Effects Due` event -> `answer_doorbell`: the pipeline's due outcome notifications are
//! sent to its notification topic.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice::adapters::{DynamoDbStore, SnsNotifier};
use sluice::config::{Common, ConfigError};
use sluice::ports::PipelineStore;
use sluice::telemetry::Chain;
use sluice::usecases::{DoorbellError, EffectRunner, NotifyEffects, answer_doorbell};

/// The function's configuration, from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// The AWS region, named in each notification's JSON form (Lambda sets `AWS_REGION`).
    pub region: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { common: Common::from_lookup(&lookup)?, region: sluice::config::region_from(&lookup) })
    }
}

/// What the handler needs, built once per instance.
pub struct App<S, R> {
    pub store: S,
    pub effects: R,
}

/// The function as it runs on AWS: one store, which the use case and the notifications (to read the runs) share.
pub type AwsApp = App<Arc<DynamoDbStore>, NotifyEffects<Arc<DynamoDbStore>, SnsNotifier>>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let store = Arc::new(DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.common.table));
        App {
            store: Arc::clone(&store),
            effects: NotifyEffects {
                store,
                notifier: SnsNotifier::new(aws_sdk_sns::Client::new(aws)),
                region: aws.region().map_or_else(|| config.region.clone(), ToString::to_string),
            },
        }
    }
}

/// The event could not be acted on.
#[derive(Debug, thiserror::Error)]
#[error("the outcome notifications were not sent yet")]
pub struct HandlerError(#[from] DoorbellError);

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        Self { error_type: "sluice.OutcomeNotNotified".to_owned(), error_message: Chain(&error).to_string() }
    }
}

/// Sends the pipeline's due outcome notifications. An error is returned (and the event retried by EventBridge) only
/// when the event names no pipeline or the pipeline's state could not be read or written; a notification the topic
/// refuses is parked with SNS's reason, one that could not be sent yet waits for the reconciler's doorbell.
pub async fn on_event<S: PipelineStore, R: EffectRunner>(
    app: &App<S, R>,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    answer_doorbell(&app.store, &app.effects, event, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_what_is_missing_and_takes_the_region_lambda_sets() {
        let error = Config::from_lookup(|_| None).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(error.contains("SLUICE_TABLE"), "{error}");
        let config = Config::from_lookup(|name| match name {
            "AWS_REGION" => Some("eu-west-1".into()),
            other => Some(other.to_lowercase()),
        })
        .expect("complete");
        assert_eq!(config.region, "eu-west-1");
    }
}
