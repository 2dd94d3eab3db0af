//! "CodeDeploy Deployment State-change Notification", "ECS Deployment State Change" or "ECS Hook State Change" event
//! -> `record_deployment_event`. Errors are returned so that Lambda retries the event and, past its retries, sends it
//! to the dead-letter queue: a deployment's outcome is never dropped silently.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice::adapters::{CloudWatchAlarms, CodeDeployDeployments, DynamoDbStore, EcsDeployer, EventBridgePublisher};
use sluice::contract::events::{SOURCE, SluiceEvent};
use sluice::contract::ports::{
    AlarmStates, BlueGreenDeployments, DefinitionsStore, NativeDeployments, PipelineStore, ServiceTasks,
};
use sluice::runtime::telemetry::{Chain, excerpt};
use sluice::usecases::{
    AlarmChange, Announcer, DeploymentChange, DeploymentEventError, DeploymentEventOutcome, DeploymentStateChange,
    EffectRunner, SoakError, alarm_time, end_soak, record_alarm, record_deployment_event, record_paused_deployments,
};
use tracing::{info, warn};

/// The function's configuration: the table and the bus, from its environment.
pub type Config = sluice::runtime::config::Common;

/// What the handler needs, built once per instance.
pub struct App<S, R, B, N, C> {
    pub store: S,
    pub effects: R,
    /// CodeDeploy's record of its deployments.
    pub deployments: B,
    /// ECS's record of its service deployments (ECS-native strategies), and the services' tasks.
    pub native: N,
    /// CloudWatch: the states of the alarms that watch a soak, read as it ends.
    pub alarms: C,
}

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = Announcer<EventBridgePublisher>;

/// The function as it runs on AWS.
pub type AwsApp = App<DynamoDbStore, Effects, CodeDeployDeployments, EcsDeployer, CloudWatchAlarms>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        App {
            store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.table),
            effects: Announcer {
                publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(aws), &config.event_bus),
            },
            deployments: CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(aws)),
            native: EcsDeployer::new(aws_sdk_ecs::Client::new(aws)),
            alarms: CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(aws)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the deployment event {event_id} could not be recorded (retryable: {retryable})")]
pub struct HandlerError {
    pub event_id: String,
    pub retryable: bool,
    #[source]
    pub source: NotRecorded,
}

/// What was not recorded: a deployment's event, or a soak's alarm.
#[derive(Debug, thiserror::Error)]
pub enum NotRecorded {
    #[error(transparent)]
    Deployment(#[from] DeploymentEventError),
    #[error(transparent)]
    Soak(#[from] SoakError),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        // The type names what was not done, as every function's does, and marks whether delivering it again can help.
        let error_type = if error.retryable {
            "sluice.DeploymentEventNotRecorded.Retryable"
        } else {
            "sluice.DeploymentEventNotRecorded"
        };
        Self { error_type: error_type.to_owned(), error_message: Chain(&error).to_string() }
    }
}

/// What a soak is told: an alarm changed state, or (sluice's `Soak Ended`) a soak watched by alarms is over.
#[derive(Debug)]
pub enum Soak {
    Alarm { event_id: String, change: AlarmChange },
    Ended { event_id: String, ended: sluice::contract::events::SoakEnded },
}

/// The soak an event is about: CloudWatch's "CloudWatch Alarm State Change" (`detail.alarmName`,
/// `detail.state.value`, `detail.state.reason`), or sluice's `Soak Ended`; `None` for any other event.
pub fn soak_of(event: &Value) -> Option<Soak> {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str);
    let event_id = text("/id").unwrap_or_default().to_owned();
    match (text("/source")?, text("/detail-type")?) {
        ("aws.cloudwatch", "CloudWatch Alarm State Change") => {
            let change = AlarmChange {
                alarm: text("/detail/alarmName").unwrap_or_default().to_owned(),
                state: text("/detail/state/value").unwrap_or_default().to_owned(),
                reason: text("/detail/state/reason").map(str::to_owned),
                at: text("/detail/state/timestamp").and_then(alarm_time),
            };
            Some(Soak::Alarm { event_id, change })
        }
        (SOURCE, SluiceEvent::SOAK_ENDED) => {
            let detail = event.get("detail").cloned().unwrap_or_default();
            match SluiceEvent::from_parts(SluiceEvent::SOAK_ENDED, detail) {
                Ok(SluiceEvent::SoakEnded(ended)) => Some(Soak::Ended { event_id, ended }),
                _ => {
                    warn!(event = %excerpt(event), "a malformed Soak Ended event ignored");
                    None
                }
            }
        }
        _ => None,
    }
}

/// Records what a soak is told; a failure that delivering the event again can mend is returned, to be retried.
async fn on_soak<S, R, B, N, C>(app: &App<S, R, B, N, C>, soak: Soak, now: DateTime<Utc>) -> Result<(), HandlerError>
where
    S: PipelineStore + DefinitionsStore,
    R: EffectRunner,
    C: AlarmStates,
{
    let (event_id, done) = match soak {
        Soak::Alarm { event_id, change } => {
            if change.alarm.is_empty() {
                warn!("an alarm state change names no alarm; ignored");
                return Ok(());
            }
            (
                event_id,
                record_alarm(&app.store, &app.effects, &change, now).await.map(|moved| info!(moved, "alarm recorded")),
            )
        }
        Soak::Ended { event_id, ended } => {
            let handled = end_soak(&app.store, &app.effects, &app.alarms, &ended, now).await;
            (event_id, handled.map(|handled| info!(?handled, execution = %ended.execution_id, "soak's end recorded")))
        }
    };
    done.or_else(|source| {
        let retryable = source.is_retryable();
        warn!(error = %Chain(&source), retryable, "soak not told");
        if retryable { Err(HandlerError { event_id, retryable, source: source.into() }) } else { Ok(()) }
    })
}

/// The facts sluice uses of a deployment event, or why it is not one.
pub fn change_of(event: &Value) -> Result<DeploymentStateChange, &'static str> {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty());
    let event_id = text("/id").ok_or("the event has no id")?.to_owned();
    if let (Some("aws.ecs"), Some("ECS Hook State Change")) = (text("/source"), text("/detail-type")) {
        // AWS documents the event's name, not the rest of its detail: it is a doorbell. The run is found by any id
        // the event carries (its resources' ARNs first, then the detail's), or else by asking ECS about the runs
        // deploying; DescribeServiceDeployments tells which hook waits, where, until when.
        let resources =
            event.get("resources").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
        let mut ids: Vec<String> = resources.map(str::to_owned).collect();
        for pointer in ["/detail/serviceDeploymentArn", "/detail/deploymentId"] {
            ids.extend(text(pointer).map(str::to_owned));
        }
        ids.dedup();
        let event_name = text("/detail/eventName").ok_or("the event has no detail.eventName")?.to_owned();
        let deployment_id = if ids.is_empty() { String::new() } else { ids.remove(0) };
        let change = DeploymentChange::EcsHook { event_name, also: ids };
        return Ok(DeploymentStateChange { event_id, deployment_id, change });
    }
    let deployment_id = text("/detail/deploymentId").ok_or("the event has no detail.deploymentId")?.to_owned();
    let change = match (text("/source"), text("/detail-type")) {
        (Some("aws.codedeploy"), Some("CodeDeploy Deployment State-change Notification")) => {
            DeploymentChange::CodeDeploy { state: text("/detail/state").ok_or("the event has no detail.state")?.into() }
        }
        (Some("aws.ecs"), Some("ECS Deployment State Change")) => DeploymentChange::Ecs {
            event_name: text("/detail/eventName").ok_or("the event has no detail.eventName")?.into(),
            reason: text("/detail/reason").map(str::to_owned),
        },
        _ => return Err("not a CodeDeploy or ECS deployment state change"),
    };
    Ok(DeploymentStateChange { event_id, deployment_id, change })
}

/// Handles one event. One that is not a deployment state change is logged and dropped (retrying cannot make it
/// one).
pub async fn on_event<
    S: PipelineStore + DefinitionsStore,
    R: EffectRunner,
    B: BlueGreenDeployments,
    N: NativeDeployments + ServiceTasks,
    C: AlarmStates,
>(
    app: &App<S, R, B, N, C>,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    if let Some(soak) = soak_of(event) {
        return on_soak(app, soak, now).await;
    }
    let change = match change_of(event) {
        Ok(change) => change,
        Err(why) => {
            warn!(why, event = %excerpt(event), "event ignored");
            return Ok(());
        }
    };
    match record_deployment_event(&app.store, &app.effects, &app.deployments, &app.native, &change, now).await {
        Ok(DeploymentEventOutcome::NotOurs(why)) => {
            info!(deployment = %change.deployment_id, why, "deployment event ignored");
            Ok(())
        }
        Ok(DeploymentEventOutcome::Handled(handled)) => {
            info!(deployment = %change.deployment_id, ?handled, "deployment event handled");
            Ok(())
        }
        Ok(DeploymentEventOutcome::UnknownPause) => {
            match record_paused_deployments(&app.store, &app.effects, &app.native, now).await {
                Ok(recorded) => {
                    info!(deployment = %change.deployment_id, recorded, "pause found by asking about the runs");
                    Ok(())
                }
                Err(source) => {
                    let retryable = source.is_retryable();
                    warn!(error = %Chain(&source), retryable, "runs deploying not asked about the pause");
                    Err(HandlerError { event_id: change.event_id, retryable, source: source.into() })
                }
            }
        }
        Err(source) => {
            let retryable = source.is_retryable();
            warn!(error = %Chain(&source), retryable, "deployment event not recorded");
            Err(HandlerError { event_id: change.event_id, retryable, source: source.into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEDEPLOY: &str = include_str!("../../../shared/tests/fixtures/example-codedeploy-deployment-event.json");
    const ECS: &str = include_str!("../../../shared/tests/fixtures/ecs-deployment-state-change.json");

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("the fixture is JSON")
    }

    #[test]
    fn awss_alarm_state_change_sample_and_a_composite_alarms_give_the_alarm_its_state_and_why() {
        let event = parse(include_str!("../../../shared/tests/fixtures/cloudwatch-alarm-state-change.json"));
        let Some(Soak::Alarm { event_id, change }) = soak_of(&event) else { panic!("an alarm's state change") };
        assert_eq!(
            (event_id.as_str(), change.alarm.as_str(), change.state.as_str()),
            ("c4c1c1c9-6542-e61b-6ef0-8c4d36933a92", "ServerCpuTooHigh", "ALARM")
        );
        assert!(
            change.reason.as_deref().is_some_and(|reason| reason.starts_with("Threshold Crossed: 1 out of the last 1"))
        );
        // A composite alarm's event: its configuration has a rule instead of metrics, its state who suppressed it
        let composite = serde_json::json!({
            "id": "e-2", "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-staging-health"],
            "detail": {
                "alarmName": "web-staging-health",
                "configuration": { "alarmRule": "ALARM(web-staging-5xx) OR ALARM(web-staging-latency)" },
                "state": { "value": "ALARM", "timestamp": "2026-12-07T09:10:00.000+0000",
                           "reasonData": "{\"triggeringAlarms\":[]}", "actionsSuppressedBy": "None" }
            }
        });
        let Some(Soak::Alarm { change, .. }) = soak_of(&composite) else { panic!("an alarm's state change") };
        assert_eq!(
            (change.alarm.as_str(), change.state.as_str(), change.reason),
            ("web-staging-health", "ALARM", None)
        );
        // sluice's own Soak Ended, and nothing else
        let ended = serde_json::json!({
            "id": "e-3", "source": "sluice", "detail-type": "Soak Ended",
            "detail": { "pipeline": "web", "execution_id": "web-1", "stage": "staging", "alarms": ["web-staging-5xx"] }
        });
        assert!(matches!(soak_of(&ended), Some(Soak::Ended { ended, .. }) if ended.pipeline == "web"));
        assert!(soak_of(&parse(CODEDEPLOY)).is_none());
        let malformed =
            serde_json::json!({ "id": "e-4", "source": "sluice", "detail-type": "Soak Ended", "detail": {} });
        assert!(soak_of(&malformed).is_none());
    }

    #[test]
    fn awss_codedeploy_sample_event_gives_the_deployment_and_its_state() {
        let change = change_of(&parse(CODEDEPLOY)).expect("a deployment event");
        assert_eq!(change.event_id, "c071bfbf-83c4-49ca-a6ff-3df053957145");
        assert_eq!(change.deployment_id, "d-123456789");
        assert_eq!(change.change, DeploymentChange::CodeDeploy { state: "SUCCESS".into() });
    }

    #[test]
    fn awss_ecs_sample_event_gives_the_service_deployment_its_name_and_reason() {
        let event = parse(ECS);
        let change = change_of(&event).expect("a deployment event");
        assert_eq!(change.deployment_id, event["detail"]["deploymentId"].as_str().unwrap_or_default());
        let DeploymentChange::Ecs { event_name, reason } = change.change else { panic!("an ECS change") };
        assert_eq!(event_name, event["detail"]["eventName"].as_str().unwrap_or_default());
        assert_eq!(reason.as_deref(), event["detail"]["reason"].as_str());
    }

    #[test]
    fn a_hook_state_change_finds_its_deployment_by_whichever_id_it_carries() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/aBcD";
        let by_resource = serde_json::json!({
            "id": "e-1", "source": "aws.ecs", "detail-type": "ECS Hook State Change", "resources": [arn],
            "detail": { "eventName": "HOOK_AWAITING_ACTION" }
        });
        let change = change_of(&by_resource).expect("a hook change");
        assert_eq!(change.deployment_id, arn);
        assert_eq!(
            change.change,
            DeploymentChange::EcsHook { event_name: "HOOK_AWAITING_ACTION".into(), also: vec![] }
        );
        // The resource's ARN first, then the detail's ids
        let mut by_id = by_resource.clone();
        by_id["detail"]["deploymentId"] = "ecs-svc/123".into();
        let change = change_of(&by_id).expect("a hook change");
        assert_eq!(change.deployment_id, arn);
        assert_eq!(
            change.change,
            DeploymentChange::EcsHook { event_name: "HOOK_AWAITING_ACTION".into(), also: vec!["ecs-svc/123".into()] }
        );
        // AWS's documented example: no deploymentId, the service deployment's ARN in the detail and the resources
        let documented = serde_json::json!({
            "id": "e-2", "source": "aws.ecs", "detail-type": "ECS Hook State Change", "resources": [arn],
            "detail": { "eventType": "INFO", "eventName": "HOOK_AWAITING_ACTION", "hookId": "h-1", "hookType": "PAUSE",
                        "lifecycleStage": "PRE_PRODUCTION_TRAFFIC_SHIFT", "serviceDeploymentArn": arn }
        });
        assert_eq!(change_of(&documented).map(|c| c.deployment_id), Ok(arn.to_owned()));
        // No id at all: still a doorbell, whose runs are asked about
        let mut bare = by_resource;
        bare["resources"] = serde_json::json!([]);
        let change = change_of(&bare).expect("a hook change");
        assert_eq!(change.deployment_id, "");
    }

    #[test]
    fn an_event_of_another_kind_or_without_a_deployment_is_not_a_change() {
        let mut build = parse(CODEDEPLOY);
        build["source"] = "aws.codebuild".into();
        assert_eq!(change_of(&build), Err("not a CodeDeploy or ECS deployment state change"));
        let mut bare = parse(CODEDEPLOY);
        bare["detail"] = serde_json::json!({});
        assert_eq!(change_of(&bare), Err("the event has no detail.deploymentId"));
        assert_eq!(change_of(&Value::Null), Err("the event has no id"));
    }
}
