//! "CodeBuild Build State Change" event -> `record_build_event`. Errors are returned so that Lambda retries the
//! event and, past its retries, sends it to the dead-letter queue: a build result is never dropped silently.

use aws_lambda_events::event::codebuild::CodeBuildEvent;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use sluice::adapters::{CodeBuildStarter, DynamoDbStore, EventBridgePublisher, S3Artifacts, stage_effects};
use sluice::ports::{ArtifactStore, PipelineStore};
use sluice::telemetry::Chain;
use sluice::usecases::{
    BuildEventError, BuildEventOutcome, BuildStateChange, EffectRunner, StageEffects, record_build_event,
};
use tracing::{info, warn};

/// The function's configuration: the table and the bus, from its environment.
pub type Config = sluice::config::Common;

/// What the handler needs, built once per instance.
pub struct App<S, R, A> {
    pub store: S,
    pub effects: R,
    pub artifacts: A,
}

/// The function as it runs on AWS.
pub type AwsApp = App<DynamoDbStore, StageEffects<EventBridgePublisher, CodeBuildStarter>, S3Artifacts>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        App {
            store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.table),
            effects: stage_effects(aws, &config.event_bus),
            artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(aws)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the build event {event_id} could not be recorded (retryable: {retryable})")]
pub struct HandlerError {
    pub event_id: String,
    pub retryable: bool,
    #[source]
    pub source: BuildEventError,
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        let error_type = if error.retryable { "sluice.Retryable" } else { "sluice.NotRecorded" };
        Self { error_type: error_type.to_owned(), error_message: error.to_string() }
    }
}

/// The facts sluice uses of a CodeBuild state-change event.
pub fn change_of(event: &CodeBuildEvent) -> BuildStateChange {
    let detail = &event.detail;
    let information = &detail.additional_information;
    let variable = |name: &str| {
        information
            .environment
            .environment_variables
            .iter()
            .find(|variable| variable.name.as_deref() == Some(name))
            .and_then(|variable| variable.value.clone())
            .filter(|value| !value.is_empty())
    };
    let failed_phase = information
        .phases
        .iter()
        .find(|phase| phase.phase_status.as_deref().is_some_and(|status| status != "SUCCEEDED"))
        .map(|phase| phase.phase_type.clone());
    BuildStateChange {
        event_id: event.id.clone().unwrap_or_default(),
        build_id: detail.build_id.clone().unwrap_or_default(),
        status: detail.build_status.clone().unwrap_or_default(),
        current_phase: detail.current_phase.clone(),
        failed_phase,
        execution_id: variable("SLUICE_EXECUTION_ID"),
        pipeline: variable("SLUICE_PIPELINE"),
        artifact_location: information.artifact.location.clone(),
    }
}

/// Handles one event.
pub async fn on_event<S: PipelineStore, R: EffectRunner, A: ArtifactStore>(
    app: &App<S, R, A>,
    event: LambdaEvent<CodeBuildEvent>,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let change = change_of(&event.payload);
    match record_build_event(&app.store, &app.effects, &app.artifacts, &change, now).await {
        Ok(BuildEventOutcome::NotOurs(why)) => {
            info!(build = %change.build_id, why, "build event ignored");
            Ok(())
        }
        Ok(BuildEventOutcome::Handled(handled)) => {
            info!(build = %change.build_id, ?handled, "build event handled");
            Ok(())
        }
        Err(source) => {
            let retryable = source.is_retryable();
            warn!(error = %Chain(&source), retryable, "build event not recorded");
            Err(HandlerError { event_id: change.event_id, retryable, source })
        }
    }
}

#[cfg(test)]
mod tests;
