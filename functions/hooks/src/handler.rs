//! ECS's lifecycle hook invocation (`{executionId, lifecycleStage, resourceArn, executionDetails, hookDetails}`) ->
//! `answer_stage`, whose answer is the invocation's result (`{hookStatus, callBackDelay, hookDetails}`);
//! CodeDeploy's hook invocation (`{DeploymentId, LifecycleEventHookExecutionId}`) -> `answer_hook`; a `Checks
//! Requested` or `Effects Due` event -> `answer_doorbell` (a rolling update's AfterRollout checks, and hook answers
//! that could not be sent before). The checks get the invocation's
//! time left, less a margin to record and report, so that a hook is always answered before the function times out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice::adapters::{CodeDeployDeployments, DynamoDbStore, EcsDeployer, EventBridgePublisher, HttpProber};
use sluice::contract::ports::{
    BlueGreenDeployments, DeployError, HttpProbe, LifecycleHooks, NativeDeployments, PipelineStore, ProbeError,
};
use sluice::deploy::StageProgress;
use sluice::runtime::telemetry::Chain;
use sluice::usecases::{
    DoorbellError, EffectRunner, HookCall, HookEffects, HookError, StageAnswer, StageCall, answer_doorbell,
    answer_hook, answer_stage,
};
use tracing::{info, warn};

/// The function's configuration: the table and the bus, from its environment.
pub type Config = sluice::runtime::config::Common;

/// Kept back from the invocation's time for recording the result and reporting it.
pub const MARGIN: Duration = Duration::from_secs(sluice::definitions::HOOK_ANSWER_MARGIN_SECS);
/// The checks' time when the invocation's deadline is unknown.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);

/// What the handler needs, built once per instance.
pub struct App<S, R, H, C, N> {
    pub store: S,
    pub effects: R,
    pub hooks: H,
    pub probe: C,
    /// ECS's record of its service deployments: whether one is rolling back.
    pub native: N,
}

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = HookEffects<EventBridgePublisher, CodeDeployDeployments, HttpProber>;

/// The function as it runs on AWS.
pub type AwsApp = App<DynamoDbStore, Effects, CodeDeployDeployments, HttpProber, EcsDeployer>;

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
            native: EcsDeployer::new(aws_sdk_ecs::Client::new(aws)),
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

/// The key of `hookDetails` under which sluice carries a hook's progress from one invocation to the next.
pub const PROGRESS_KEY: &str = "sluice";

/// The facts of an ECS lifecycle hook invocation, if `event` is one.
pub fn stage_call(event: &Value) -> Option<StageCall> {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (execution_id, stage, service_deployment) =
        (text("/executionId")?, text("/lifecycleStage")?, text("/resourceArn")?);
    // What sluice left after IN_PROGRESS; anything else there (the service's own hookDetails) is not sluice's.
    let progress = event
        .pointer(&format!("/hookDetails/{PROGRESS_KEY}"))
        .and_then(|progress| serde_json::from_value::<StageProgress>(progress.clone()).ok())
        .unwrap_or_default();
    Some(StageCall {
        execution_id: execution_id.to_owned(),
        stage: stage.to_owned(),
        service_deployment: service_deployment.to_owned(),
        progress,
    })
}

/// The invocation's result ECS reads (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html>).
pub fn stage_result(answer: &StageAnswer) -> Value {
    match answer {
        StageAnswer::Succeeded => serde_json::json!({ "hookStatus": "SUCCEEDED" }),
        StageAnswer::Failed => serde_json::json!({ "hookStatus": "FAILED" }),
        StageAnswer::InProgress { delay_secs, progress } => serde_json::json!({
            "hookStatus": "IN_PROGRESS",
            "callBackDelay": delay_secs,
            "hookDetails": { PROGRESS_KEY: progress },
        }),
    }
}

/// Handles one invocation and gives its result: ECS's lifecycle hooks read it (`hookStatus`); for everything else
/// it is `null`. An ECS hook whose result cannot be recorded is answered FAILED rather than retried: ECS takes a
/// failed invocation as FAILED anyway, and the answer says so plainly.
pub async fn on_invocation<S, R, H, C, N>(
    app: &App<S, R, H, C, N>,
    event: &Value,
    remaining: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<Value, HandlerError>
where
    S: PipelineStore,
    R: EffectRunner,
    H: LifecycleHooks + BlueGreenDeployments,
    C: HttpProbe,
    N: NativeDeployments,
{
    let Some(call) = stage_call(event) else {
        on_event(app, event, remaining, now).await?;
        return Ok(Value::Null);
    };
    let answered = answer_stage(&app.store, &app.effects, &app.probe, &app.native, &call, budget(remaining), now);
    let answer = match answered.await {
        Ok(answer) => answer,
        Err(error) => {
            warn!(error = %Chain(&error), "stage hook not recorded; answering FAILED");
            StageAnswer::Failed
        }
    };
    info!(stage = %call.stage, ?answer, "stage hook answered");
    Ok(stage_result(&answer))
}

/// Handles one invocation. An error (Lambda retries the invocation) means the hook could not be answered or its
/// result not recorded; anything else is answered or logged.
pub async fn on_event<S, R, H, C, N>(
    app: &App<S, R, H, C, N>,
    event: &Value,
    remaining: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<(), HandlerError>
where
    S: PipelineStore,
    R: EffectRunner,
    H: LifecycleHooks + BlueGreenDeployments,
    C: HttpProbe,
    N: NativeDeployments,
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

    /// The payload AWS documents for a lifecycle hook
    /// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html>), at
    /// POST_TEST_TRAFFIC_SHIFT, with what sluice left after an IN_PROGRESS answer.
    const ECS_HOOK: &str = include_str!("../../../shared/tests/fixtures/ecs-lifecycle-hook.json");

    #[test]
    fn an_ecs_hook_payload_gives_the_stage_the_service_deployment_and_sluices_progress() {
        let event: Value = serde_json::from_str(ECS_HOOK).expect("JSON");
        let call = stage_call(&event).expect("an ECS hook");
        assert_eq!(call.execution_id, "a0ad2ba0-1640-4b1e-a2e6-2bfd3d2d8ec2");
        assert_eq!(call.stage, "POST_TEST_TRAFFIC_SHIFT");
        assert!(
            call.service_deployment.ends_with("service-deployment/myBGCluster/nginxBGservice/nSmU4GWo24zDCrTUP0qGp")
        );
        assert_eq!(call.progress.tries.get(&2), Some(&1));
        assert_eq!(call.progress.passed.get(&1), Some(&(200, 12)));
        // A CodeDeploy invocation is not one.
        let codedeploy = serde_json::json!({ "DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h-1" });
        assert_eq!(stage_call(&codedeploy), None);
    }

    #[test]
    fn the_result_is_what_ecs_reads_and_in_progress_hands_the_progress_back() {
        assert_eq!(stage_result(&StageAnswer::Succeeded), serde_json::json!({ "hookStatus": "SUCCEEDED" }));
        assert_eq!(stage_result(&StageAnswer::Failed), serde_json::json!({ "hookStatus": "FAILED" }));
        let event: Value = serde_json::from_str(ECS_HOOK).expect("JSON");
        let progress = stage_call(&event).expect("an ECS hook").progress;
        let result = stage_result(&StageAnswer::InProgress { delay_secs: 5, progress: progress.clone() });
        assert_eq!(result["hookStatus"], "IN_PROGRESS");
        assert_eq!(result["callBackDelay"], 5);
        // Handed back on the next invocation, it reads as it was.
        let again = serde_json::json!({ "hookDetails": result["hookDetails"].clone() });
        let read: StageProgress = serde_json::from_value(again["hookDetails"][PROGRESS_KEY].clone()).expect("progress");
        assert_eq!(read, progress);
    }

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
