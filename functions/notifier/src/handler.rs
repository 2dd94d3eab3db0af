//! `Execution Started`, `Deployment Requested`, `Execution Finished` or `Effects Due` event -> `answer_doorbell`: the
//! pipeline's due outcome notifications are sent to its notification topic, and its runs are shown on GitHub.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice::adapters::{DynamoDbStore, GitHubApi, SecretsManagerSecret, SnsNotifier};
use sluice::contract::ports::PipelineStore;
use sluice::present::text::with_slash;
use sluice::runtime::config::{APPROVAL_URL, Common, ConfigError, STATUS_KEY, optional_from};
use sluice::runtime::telemetry::Chain;
use sluice::usecases::{
    DoorbellError, EffectRunner, GitHubEffects, KeptSecret, NotifierEffects, NotifyEffects, RunPages, answer_doorbell,
};

pub use sluice::runtime::config::{GITHUB_API_URL, GITHUB_TOKEN};

/// The function's configuration, from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    /// The AWS region, named in each notification's JSON form (Lambda sets `AWS_REGION`).
    pub region: String,
    pub github_token: Option<String>,
    pub github_api: String,
    pub status_key: Option<String>,
    pub approval_url: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (github_token, github_api) = sluice::runtime::config::github_from(&lookup);
        Ok(Self {
            common: Common::from_lookup(&lookup)?,
            region: sluice::runtime::config::region_from(&lookup),
            github_token,
            github_api,
            status_key: optional_from(STATUS_KEY, &lookup),
            approval_url: optional_from(APPROVAL_URL, &lookup).map(|url| with_slash(&url)),
        })
    }
}

/// What the handler needs, built once per instance.
pub struct App<S, R> {
    pub store: S,
    pub effects: R,
}

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = NotifierEffects<Arc<DynamoDbStore>, SnsNotifier, GitHubApi, SecretsManagerSecret>;

/// The function as it runs on AWS: one store, which the use case and the notifications (to read the runs) share.
pub type AwsApp = App<Arc<DynamoDbStore>, Effects>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`. The secrets
    /// are read when first needed.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let store = Arc::new(DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.common.table));
        let secrets = aws_sdk_secretsmanager::Client::new(aws);
        let secret = |id: &String| KeptSecret::new(SecretsManagerSecret::new(secrets.clone(), id));
        let pages = match (&config.approval_url, &config.status_key) {
            (Some(base), Some(key)) => Some(RunPages { base: base.clone(), key: secret(key) }),
            _ => None,
        };
        App {
            store: Arc::clone(&store),
            effects: NotifierEffects {
                notify: NotifyEffects {
                    store: Arc::clone(&store),
                    notifier: SnsNotifier::new(aws_sdk_sns::Client::new(aws)),
                    region: aws.region().map_or_else(|| config.region.clone(), ToString::to_string),
                },
                github: GitHubEffects {
                    store,
                    github: GitHubApi::new(&config.github_api),
                    credentials: config.github_token.as_ref().map(secret),
                    pages,
                },
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
