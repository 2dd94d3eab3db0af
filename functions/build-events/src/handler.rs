//! "CodeBuild Build State Change" event -> `record_build_event`. The event is read leniently
//! ([`BuildStateChange::read`]): one sluice cannot read is answered and logged. Errors recording one are returned so
//! that Lambda retries the event and, past its retries, sends it to the dead-letter queue: a build result is never
//! dropped silently. A `Test Requested` event of the sluice bus is a doorbell -> `answer_doorbell`: the pipeline's
//! due builds (a test stage's) are started.

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use sluice::adapters::{CodeBuildStarter, DynamoDbStore, EcrImages, EventBridgePublisher, S3Artifacts, stage_effects};
use sluice::contract::ports::{ArtifactStore, Built, ImageRegistry, PipelineStore, TestReports};
use sluice::runtime::telemetry::Chain;
use sluice::usecases::{
    BuildEventError, BuildEventOutcome, BuildStateChange, DoorbellError, EffectRunner, StageEffects, answer_doorbell,
    record_build_event,
};
use tracing::{info, warn};

/// The function's configuration: the table and the bus, from its environment.
pub type Config = sluice::runtime::config::Common;

/// What the handler needs, built once per instance.
pub struct App<S, R, A> {
    pub store: S,
    pub effects: R,
    pub artifacts: A,
}

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = StageEffects<EventBridgePublisher, CodeBuildStarter>;

/// The function as it runs on AWS.
pub type AwsApp = App<DynamoDbStore, Effects, Built<S3Artifacts, EcrImages, CodeBuildStarter>>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        App {
            store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.table),
            effects: stage_effects(aws, &config.event_bus),
            artifacts: sluice::adapters::build_outputs(aws),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the build event {event_id} could not be recorded (retryable: {retryable})")]
    Build {
        event_id: String,
        retryable: bool,
        #[source]
        source: BuildEventError,
    },
    /// A doorbell whose due builds could not be started now: delivered again, it tries again.
    #[error("the due builds could not be started yet")]
    Doorbell(#[from] DoorbellError),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        // The type names what was not done, as every function's does, and marks whether delivering it again can help.
        let error_type = match &error {
            HandlerError::Build { retryable: true, .. } => "sluice.BuildEventNotRecorded.Retryable",
            HandlerError::Build { .. } => "sluice.BuildEventNotRecorded",
            HandlerError::Doorbell(_) => "sluice.BuildNotStarted",
        };
        Self { error_type: error_type.to_owned(), error_message: Chain(&error).to_string() }
    }
}

/// Handles one event.
pub async fn on_event<S: PipelineStore, R: EffectRunner, A: ArtifactStore + ImageRegistry + TestReports>(
    app: &App<S, R, A>,
    event: LambdaEvent<Value>,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    if event.payload.get("source").and_then(Value::as_str) == Some("sluice") {
        answer_doorbell(&app.store, &app.effects, &event.payload, now).await?;
        return Ok(());
    }
    // Every build of the account reaches the rule: an event sluice cannot read is answered, never retried.
    let Some(change) = BuildStateChange::read(&event.payload) else {
        let detail_type = event.payload.get("detail-type").and_then(Value::as_str).unwrap_or("-");
        info!(detail_type, "not a build state change sluice can read (no build id or status); ignored");
        return Ok(());
    };
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
            Err(HandlerError::Build { event_id: change.event_id, retryable, source })
        }
    }
}

#[cfg(test)]
mod tests;
