//! Items written by an earlier sluice stay readable: the table's items as `make demo` left them (at commit c34ff76,
//! before the pipeline grew stages), put back into a table in moto, are read by today's adapter and use cases, and
//! a run stored while it waited for its approval finishes.

use anyhow::{Context, Result};
use chrono::Utc;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{DefinitionsStore, PipelineStore, ReceiptKey};
use sluice::contract::testing::RecordingRunner;
use sluice::definitions::{Definitions, ExecutionMode};
use sluice::pipeline::{ApprovalDecision, EffectKind, Event, ExecutionId, Stage, Status};
use sluice::usecases::{Input, handle};
use sluice_integration::Stack;

/// The run every demo makes.
const RUN: &str = "web-72d3162e-cc78-11e3-81ab-4c9367dc0958";

/// The items of `tests/fixtures/stored/<fixture>.json`, in DynamoDB's JSON.
fn fixture_items(fixture: &str) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let path = sluice_integration::workspace_root().join(format!("tests/fixtures/stored/{fixture}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
    Ok(serde_json::from_str(&text)?)
}

/// The stack's table holding the fixture's items, as stored.
async fn stored(fixture: &str) -> Result<(Stack, DynamoDbStore)> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let items = fixture_items(fixture)?;
    let stack = Stack::create().await?;
    for item in items {
        let mut put = stack.dynamodb.put_item().table_name(&stack.table);
        for (name, value) in item {
            let value = match (&value["S"], &value["N"], &value["BOOL"]) {
                (serde_json::Value::String(s), _, _) => AttributeValue::S(s.clone()),
                (_, serde_json::Value::String(n), _) => AttributeValue::N(n.clone()),
                (_, _, serde_json::Value::Bool(b)) => AttributeValue::Bool(*b),
                _ => anyhow::bail!("{fixture}: attribute {name} is of a type the fixture should not hold: {value}"),
            };
            put = put.item(name, value);
        }
        put.send().await.with_context(|| format!("putting an item of {fixture}"))?;
    }
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    Ok((stack, store))
}

/// The partition keys of the fixture's items.
fn partition_keys(fixture: &str) -> Result<Vec<String>> {
    let items = fixture_items(fixture)?;
    Ok(items.iter().filter_map(|item| item.get("PK")?["S"].as_str().map(str::to_owned)).collect())
}

/// `events` handled in order by use cases that carry out nothing (the outbox keeps what they decide).
async fn apply(store: &DynamoDbStore, events: &[Event]) -> Result<()> {
    let runner = RecordingRunner::owning(&[EffectKind::ReportToGitHub]);
    for event in events {
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event, receipt: None, now: Utc::now() };
        handle(store, &runner, input).await.with_context(|| format!("handling {}", event.name()))?;
    }
    Ok(())
}

fn decided(decision: ApprovalDecision) -> Event {
    Event::ApprovalDecided {
        execution_id: ExecutionId(RUN.into()),
        decision,
        approver: "arn:aws:iam::123456789012:user/jane".into(),
        comment: Some("read from an earlier version".into()),
        token_hash: None,
        source_ip: None,
        user_agent: None,
    }
}

#[tokio::test]
async fn every_item_an_earlier_demo_stored_is_read_as_it_was_written() -> Result<()> {
    for scenario in ["success", "rolling", "canary"] {
        for moment in ["waiting-for-approval", "finished"] {
            let fixture = format!("{scenario}-{moment}");
            let (_stack, store) = stored(&fixture).await?;
            let state = store.load("web").await?.with_context(|| format!("{fixture}: the state"))?.value;
            let run = store.execution(&ExecutionId(RUN.into())).await?.context("the run")?;
            let expected = if moment == "finished" { Status::Succeeded } else { Status::Running(Stage::APPROVAL) };
            assert_eq!(run.status, expected, "{fixture}");
            assert_eq!(state.executions.iter().map(|e| e.id.0.as_str()).collect::<Vec<_>>(), [RUN], "{fixture}");
            let history = store.history("web", 10).await?;
            assert_eq!(history.len(), 1, "{fixture}");
            let published = store.current().await?.context("the definitions")?;
            Definitions::parse("published", &published.text).map_err(|e| anyhow::anyhow!("{fixture}: {e}"))?;
            if moment == "finished" {
                assert!(run.deploy().is_some() && run.finished_at.is_some(), "{fixture}: {run:?}");
            }
            // Each link from an AWS id to its run, and each receipt of an input handled
            let (mut links, mut receipts) = (0, 0);
            for key in partition_keys(&fixture)? {
                if let Some(aws_id) = key.strip_prefix("AWSID#") {
                    let link = store.find(aws_id).await?.with_context(|| format!("{fixture}: link {aws_id}"))?;
                    assert_eq!((link.pipeline.as_str(), link.execution.0.as_str()), ("web", RUN), "{fixture}");
                    links += 1;
                } else if let Some(receipt) = key.strip_prefix("RECEIPT#") {
                    let key: ReceiptKey = serde_json::from_value(serde_json::json!(receipt))?;
                    store.receipt(&key).await?.with_context(|| format!("{fixture}: receipt {receipt}"))?;
                    receipts += 1;
                }
            }
            assert!(links >= 2 && receipts >= 3, "{fixture}: {links} links, {receipts} receipts");
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_blue_green_run_stored_at_its_approval_is_approved_and_deployed_by_todays_code() -> Result<()> {
    let (_stack, store) = stored("success-waiting-for-approval").await?;
    let id = ExecutionId(RUN.into());
    apply(&store, &[decided(ApprovalDecision::Approved)]).await?;
    let run = store.execution(&id).await?.context("the run")?;
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    apply(
        &store,
        &[
            Event::DeploymentStarted {
                execution_id: id.clone(),
                deployment_id: "d-000000009".into(),
                service_deployment: None,
                task_definition: None,
                previous_task_definition: None,
                in_alarm: None,
            },
            Event::DeploymentSucceeded { execution_id: id.clone(), deployment_id: "d-000000009".into(), tasks: None },
        ],
    )
    .await?;
    let run = store.execution(&id).await?.context("the run")?;
    assert_eq!(run.status, Status::Succeeded, "{run:?}");
    Ok(())
}

#[tokio::test]
async fn runs_stored_at_their_approval_are_rejected_and_end_so_by_todays_code() -> Result<()> {
    for fixture in ["rolling-waiting-for-approval", "canary-waiting-for-approval"] {
        let (_stack, store) = stored(fixture).await?;
        apply(&store, &[decided(ApprovalDecision::Rejected)]).await?;
        let run = store.execution(&ExecutionId(RUN.into())).await?.context("the run")?;
        assert_eq!(run.status, Status::Rejected, "{fixture}: {run:?}");
        assert!(run.finished_at.is_some(), "{fixture}");
    }
    Ok(())
}

#[tokio::test]
async fn a_pipeline_whose_last_run_an_earlier_version_finished_takes_the_next_push() -> Result<()> {
    let (_stack, store) = stored("canary-finished").await?;
    let push = sluice::contract::testing::push("web-next", ExecutionMode::Queued, false);
    apply(&store, &[push]).await?;
    let run = store.execution(&ExecutionId("web-next".into())).await?.context("the new run")?;
    assert_eq!(run.status, Status::Running(Stage::BUILD), "{run:?}");
    let state = store.load("web").await?.context("the state")?.value;
    assert_eq!(state.executions.len(), 2);
    Ok(())
}
