//! CodeDeploy's hook invocation (`{DeploymentId, LifecycleEventHookExecutionId}`) -> `answer_hook`; a `Checks
//! Requested` or `Effects Due` event -> `answer_doorbell` (a rolling update's AfterRollout checks, and hook answers
//! that could not be sent before). The checks get the invocation's
//! time left, less a margin to record and report, so that a hook is always answered before the function times out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice::adapters::{CodeDeployDeployments, DynamoDbStore, EventBridgePublisher, HttpProber};
use sluice::ports::{BlueGreenDeployments, DeployError, HttpProbe, LifecycleHooks, PipelineStore, ProbeError};
use sluice::telemetry::Chain;
use sluice::usecases::{DoorbellError, EffectRunner, HookCall, HookEffects, HookError, answer_doorbell, answer_hook};
use tracing::{info, warn};

/// The function's configuration: the table and the bus, from its environment.
pub type Config = sluice::config::Common;

/// Kept back from the invocation's time for recording the result and reporting it.
pub const MARGIN: Duration = Duration::from_secs(5);
/// The checks' time when the invocation's deadline is unknown.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);

/// What the handler needs, built once per instance.
pub struct App<S, R, H, C> {
    pub store: S,
    pub effects: R,
    pub hooks: H,
    pub probe: C,
}

/// The function as it runs on AWS.
pub type AwsApp = App<
    DynamoDbStore,
    HookEffects<EventBridgePublisher, CodeDeployDeployments, HttpProber>,
    CodeDeployDeployments,
    HttpProber,
>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Result<Self, ProbeError> {
        let codedeploy = CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(aws));
        let probe = HttpProber::new()?;
        Ok(App {
            store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.table),
            effects: HookEffects {
                publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(aws), &config.event_bus),
                hooks: codedeploy.clone(),
                probe: probe.clone(),
            },
            hooks: codedeploy,
            probe,
        })
    }
}

/// The time the checks may take: what is left of the invocation (its deadline, in epoch milliseconds, as the
/// Lambda runtime gives it) less [`MARGIN`]; [`DEFAULT_BUDGET`] when the deadline is unknown.
pub fn remaining(deadline_ms: u64, now: DateTime<Utc>) -> Option<Duration> {
    let now_ms = u64::try_from(now.timestamp_millis()).ok()?;
    (deadline_ms > 0).then(|| Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

fn budget(remaining: Option<Duration>) -> Duration {
    remaining.map_or(DEFAULT_BUDGET, |left| left.saturating_sub(MARGIN).max(Duration::from_secs(1)))
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the hook could not be answered")]
    Hook(#[source] HookError),
    #[error("the hook answers were not sent yet")]
    Flush(#[source] DoorbellError),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        Self { error_type: "sluice.HookNotAnswered".to_owned(), error_message: Chain(&error).to_string() }
    }
}

/// Handles one invocation. An error (Lambda retries the invocation) means the hook could not be answered or its
/// result not recorded; anything else is answered or logged.
pub async fn on_event<S, R, H, C>(
    app: &App<S, R, H, C>,
    event: &Value,
    remaining: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<(), HandlerError>
where
    S: PipelineStore,
    R: EffectRunner,
    H: LifecycleHooks + BlueGreenDeployments,
    C: HttpProbe,
{
    let text = |key: &str| event.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let (Some(deployment_id), Some(hook_execution_id)) =
        (text("DeploymentId"), text("LifecycleEventHookExecutionId"))
    {
        let call =
            HookCall { deployment_id: deployment_id.to_owned(), hook_execution_id: hook_execution_id.to_owned() };
        return match answer_hook(&app.store, &app.effects, &app.hooks, &app.probe, &call, budget(remaining), now).await
        {
            Ok(outcome) => {
                info!(?outcome, "hook answered");
                Ok(())
            }
            // CodeDeploy refused the answer for good (no such deployment or hook): trying again cannot help.
            Err(error @ HookError::Answer { source: DeployError::Refused { .. }, .. }) => {
                warn!(error = %Chain(&error), "hook answer refused; not retried");
                Ok(())
            }
            Err(error) => {
                warn!(error = %Chain(&error), "hook not answered");
                Err(HandlerError::Hook(error))
            }
        };
    }
    match answer_doorbell(&app.store, &app.effects, event, now).await {
        Ok(_) => Ok(()),
        // Neither a hook invocation nor a doorbell: logged, and not worth a retry.
        Err(DoorbellError::Unrecognised) => Ok(()),
        Err(error) => Err(HandlerError::Flush(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_get_the_invocations_time_less_the_margin_and_never_nothing() {
        let now = DateTime::from_timestamp_millis(1_000_000).unwrap_or_default();
        assert_eq!(remaining(1_000_000 + 300_000, now), Some(Duration::from_secs(300)));
        assert_eq!(budget(remaining(1_000_000 + 300_000, now)), Duration::from_secs(295));
        assert_eq!(budget(remaining(1_000_000 + 2_000, now)), Duration::from_secs(1));
        assert_eq!(remaining(0, now), None);
        assert_eq!(budget(None), DEFAULT_BUDGET);
    }
}
