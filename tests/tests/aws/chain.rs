//! The use case over the real adapters: state in DynamoDB, each stage's event on EventBridge reaching the rule that
//! chains the next function.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{PipelineStore, ReceiptKey};
use sluice::definitions::ExecutionMode;
use sluice::pipeline::{ApprovalDecision, BuildOutputs, EffectKind, Event, ExecutionId, Stage, Status};
use sluice::usecases::{Handled, Input, handle};
use sluice_integration::{BusRunner, Stack};

use crate::{at, push};

const WAIT: Duration = Duration::from_secs(10);

fn input(event: &Event, minute: i64, receipt: Option<ReceiptKey>) -> Input<'_> {
    Input {
        pipeline: "web",
        mode: ExecutionMode::Superseded,
        event,
        receipt: receipt.map(|key| (key, json!({ "execution": event.execution_id().map(ToString::to_string) }))),
        now: at(minute),
    }
}

#[tokio::test]
async fn a_run_is_chained_stage_by_stage_through_the_bus_with_its_state_in_dynamodb() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let runner = BusRunner::new(&stack);
    let e1 = ExecutionId::from("e1");

    // A push: recorded, and its build started (the build id comes back as CodeBuild gives it).
    let pushed = push("e1");
    let handled = handle(&store, &runner, input(&pushed, 0, Some(ReceiptKey::delivery("d-1", "web")))).await?;
    assert_eq!(handled, Handled::Applied);
    let execution = store.execution(&e1).await?.context("stored")?;
    assert_eq!(execution.status, Status::Running(Stage::BUILD));
    assert_eq!(execution.build.as_ref().and_then(|b| b.build_id.clone()).as_deref(), Some("build-e1"));

    // The build succeeds: the approval request reaches the approval rule's target.
    let built = Event::BuildSucceeded {
        execution_id: e1.clone(),
        build_id: "build-e1".into(),
        outputs: BuildOutputs {
            image_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:e1".into(),
            artifacts: None,
        },
    };
    assert_eq!(handle(&store, &runner, input(&built, 5, Some(ReceiptKey::event("ev-1")))).await?, Handled::Applied);
    let requests = stack.receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, WAIT).await?;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0]["detail"]["execution_id"], "e1");
    assert_eq!(requests[0]["detail"]["image_uri"], "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:e1");

    // EventBridge delivers the build event again: nothing changes, nothing is published again.
    let again = handle(&store, &runner, input(&built, 6, Some(ReceiptKey::event("ev-1")))).await?;
    assert!(matches!(again, Handled::Ignored(_) | Handled::Duplicate { .. }), "{again:?}");

    // A person approves: the deployment request reaches the deploy rule's target.
    let approved = Event::ApprovalDecided {
        execution_id: e1.clone(),
        decision: ApprovalDecision::Approved,
        approver: "alice@example.com".into(),
        comment: None,
        token_hash: None,
        source_ip: None,
        user_agent: None,
    };
    assert_eq!(handle(&store, &runner, input(&approved, 10, None)).await?, Handled::Applied);
    let deployments = stack.receive(stack.queue_to("DeployerFunction", "Deployment Requested")?, 1, WAIT).await?;
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["detail"]["target"]["strategy"], "blue_green");

    // The deployment succeeds: the run is finished, in the history, and announced.
    let deployed = Event::DeploymentSucceeded { execution_id: e1.clone(), deployment_id: "d-123".into(), tasks: None };
    assert_eq!(handle(&store, &runner, input(&deployed, 20, None)).await?, Handled::Applied);
    let finished = stack.receive(stack.queue_to("NotifierFunction", "Execution Finished")?, 1, WAIT).await?;
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["detail"]["outcome"], "succeeded");
    let history = store.history("web", 10).await?;
    assert_eq!(history.first().map(|e| e.status), Some(Status::Succeeded));
    // What is left in the outbox is the notifier's: the outcome for the pipeline's notify.topic, which the
    // Execution Finished just received wakes it for.
    let pending = store.load("web").await?.context("stored")?.value.pending;
    let left: Vec<EffectKind> = pending.iter().map(|p| p.effect.kind()).collect();
    assert_eq!(left, [EffectKind::NotifyOutcome]);
    // Nothing was published twice.
    assert!(
        stack
            .receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, Duration::from_secs(1))
            .await?
            .is_empty()
    );
    Ok(())
}
