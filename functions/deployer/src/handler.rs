//! `Deployment Requested`, `Rollback Requested`, `Deployment Paused`, `Approval Decided` (at a pause) or `Effects
//! Due` event -> `answer_doorbell`: the pipeline's due deployments are started (the task definition registered,
//! then CodeDeploy or ECS asked), rolled back, or continued at a pause, and the runs record them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice::adapters::{
    CloudWatchAlarms, CodeDeployDeployments, DynamoDbStore, EcsDeployer, EventBridgePublisher, S3Artifacts,
};
use sluice::contract::ports::PipelineStore;
use sluice::runtime::config::{Common, ConfigError, optional_from};
use sluice::runtime::telemetry::Chain;
use sluice::usecases::{DeployEffects, DoorbellError, EffectRunner, answer_doorbell};

/// The ARN of the function CodeDeploy and ECS invoke for the lifecycle hooks where pipelines run checks.
pub const HOOKS_FUNCTION: &str = "SLUICE_HOOKS_FUNCTION";
/// The ARN of the role ECS assumes to invoke it at an ECS-native deployment's lifecycle stages.
pub const HOOK_ROLE: &str = "SLUICE_ECS_HOOK_ROLE";

/// The function's configuration, from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub hooks_function: Option<String>,
    pub hook_role: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            common: Common::from_lookup(&lookup)?,
            hooks_function: optional_from(HOOKS_FUNCTION, &lookup),
            hook_role: optional_from(HOOK_ROLE, &lookup),
        })
    }
}

/// What the handler needs, built once per instance.
pub struct App<S, R> {
    pub store: S,
    pub effects: R,
}

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = DeployEffects<
    EventBridgePublisher,
    S3Artifacts,
    EcsDeployer,
    CodeDeployDeployments,
    EcsDeployer,
    DynamoDbStore,
    CloudWatchAlarms,
>;

/// The function as it runs on AWS.
pub type AwsApp = App<DynamoDbStore, Effects>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let ecs = EcsDeployer::new(aws_sdk_ecs::Client::new(aws));
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.common.table);
        App {
            store: store.clone(),
            effects: DeployEffects {
                publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(aws), &config.common.event_bus),
                artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(aws)),
                task_definitions: ecs.clone(),
                blue_green: CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(aws)),
                ecs,
                hooks_function: config.hooks_function.clone(),
                hook_role: config.hook_role.clone(),
                supersessions: store,
                alarms: CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(aws)),
                clock: chrono::Utc::now,
            },
        }
    }
}

/// The event could not be acted on.
#[derive(Debug, thiserror::Error)]
#[error("the deployments were not started yet")]
pub struct HandlerError(#[from] DoorbellError);

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        Self { error_type: "sluice.DeploymentNotStarted".to_owned(), error_message: Chain(&error).to_string() }
    }
}

/// Starts, rolls back or continues the pipeline's due deployments. An error is returned (and the event retried by EventBridge) only when the
/// event names no pipeline or the pipeline's state could not be read or written; a deployment that failed to start
/// is in the run's history.
pub async fn on_event<S: PipelineStore, R: EffectRunner>(
    app: &App<S, R>,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    answer_doorbell(&app.store, &app.effects, event, now).await?;
    Ok(())
}
