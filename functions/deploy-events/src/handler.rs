//! "CodeDeploy Deployment State-change Notification", "ECS Deployment State Change" or "ECS Hook State Change" event
//! -> `record_deployment_event`. Errors are returned so that Lambda retries the event and, past its retries, sends it
//! to the dead-letter queue: a deployment's outcome is never dropped silently.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice::adapters::{CodeDeployDeployments, DynamoDbStore, EcsDeployer, EventBridgePublisher};
use sluice::contract::ports::{BlueGreenDeployments, DefinitionsStore, NativeDeployments, PipelineStore, ServiceTasks};
use sluice::runtime::telemetry::{Chain, excerpt};
use sluice::usecases::{
    Announcer, DeploymentChange, DeploymentEventError, DeploymentEventOutcome, DeploymentStateChange, EffectRunner,
    record_deployment_event, record_paused_deployments,
};
use tracing::{info, warn};

/// The function's configuration: the table and the bus, from its environment.
pub type Config = sluice::runtime::config::Common;

/// What the handler needs, built once per instance.
pub struct App<S, R, B, N> {
    pub store: S,
    pub effects: R,
    /// CodeDeploy's record of its deployments.
    pub deployments: B,
    /// ECS's record of its service deployments (ECS-native strategies).
    pub native: N,
}

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = Announcer<EventBridgePublisher>;

/// The function as it runs on AWS.
pub type AwsApp = App<DynamoDbStore, Effects, CodeDeployDeployments, EcsDeployer>;

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
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the deployment event {event_id} could not be recorded (retryable: {retryable})")]
pub struct HandlerError {
    pub event_id: String,
    pub retryable: bool,
    #[source]
    pub source: DeploymentEventError,
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
>(
    app: &App<S, R, B, N>,
    event: &Value,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
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
                    Err(HandlerError { event_id: change.event_id, retryable, source })
                }
            }
        }
        Err(source) => {
            let retryable = source.is_retryable();
            warn!(error = %Chain(&source), retryable, "deployment event not recorded");
            Err(HandlerError { event_id: change.event_id, retryable, source })
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
