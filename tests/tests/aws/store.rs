//! `DynamoDbStore` against DynamoDB in moto: the promises `PipelineStore` makes.

use anyhow::Result;
use serde_json::json;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{PipelineStore, Receipt, ReceiptKey, StoreError, Version, Write};
use sluice::contract::testing;
use sluice::definitions::ExecutionMode;
use sluice::pipeline::{BuildFailure, Event, ExecutionId, PipelineState, RETAINED_FINISHED, Status};
use sluice_integration::Stack;

use crate::{apply, at, push};

async fn store() -> Result<(Stack, DynamoDbStore)> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    Ok((stack, store))
}

/// Saves `state` whole (every execution), as a first write does.
async fn save(
    store: &DynamoDbStore,
    state: &PipelineState,
    expected: Option<Version>,
    receipt: Option<&Receipt>,
) -> Result<Version, StoreError> {
    store.save(&Write::between(None, state, expected).with_receipt(receipt)).await
}

fn fresh() -> PipelineState {
    PipelineState::new("web", ExecutionMode::Superseded)
}

fn receipt(key: ReceiptKey, answer: serde_json::Value) -> Receipt {
    Receipt { key, answer, recorded_at: at(0) }
}

#[tokio::test]
async fn a_saved_pipeline_loads_back_as_it_was_with_its_version() -> Result<()> {
    let (_stack, store) = store().await?;
    let (state, _) = apply(&fresh(), &push("e1"), at(0));

    let version = save(&store, &state, None, None).await?;

    assert_eq!(version, Version(1));
    let loaded = store.load("web").await?.expect("the pipeline is stored");
    assert_eq!(loaded.value, state);
    assert_eq!(loaded.version, Version(1));
    let execution = store.execution(&ExecutionId::from("e1")).await?.expect("the execution is stored");
    assert_eq!(execution.status, Status::Running(sluice::pipeline::Stage::BUILD));
    assert_eq!(execution.plan, crate::web_plan());
    Ok(())
}

#[tokio::test]
async fn a_pipeline_or_execution_never_stored_is_none() -> Result<()> {
    let (_stack, store) = store().await?;
    assert!(store.load("never-ran").await?.is_none());
    assert!(store.execution(&ExecutionId::from("nope")).await?.is_none());
    assert!(store.history("never-ran", 10).await?.is_empty());
    assert!(store.receipt(&ReceiptKey::event("nope")).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn a_write_based_on_a_stale_read_is_refused_as_a_conflict_and_changes_nothing() -> Result<()> {
    let (_stack, store) = store().await?;
    let (first, _) = apply(&fresh(), &push("e1"), at(0));
    save(&store, &first, None, None).await?;
    // Two functions read version 1 ...
    let read_by_a = store.load("web").await?.expect("stored");
    let read_by_b = read_by_a.clone();
    // ... A writes first ...
    let (by_a, _) = apply(&read_by_a.value, &push("e2"), at(1));
    assert_eq!(save(&store, &by_a, Some(read_by_a.version), None).await?, Version(2));
    // ... so B's write, based on version 1, is refused.
    let (by_b, _) = apply(&read_by_b.value, &push("e3"), at(2));
    let refused = save(&store, &by_b, Some(read_by_b.version), None).await;

    assert!(matches!(refused, Err(StoreError::Conflict { ref pipeline }) if pipeline == "web"), "{refused:?}");
    assert!(refused.as_ref().err().is_some_and(StoreError::is_retryable));
    let stored = store.load("web").await?.expect("stored");
    assert_eq!((stored.value, stored.version), (by_a, Version(2)));
    assert!(store.execution(&ExecutionId::from("e3")).await?.is_none(), "nothing of B's write landed");
    Ok(())
}

#[tokio::test]
async fn creating_a_pipeline_state_that_already_exists_is_a_conflict() -> Result<()> {
    let (_stack, store) = store().await?;
    let (state, _) = apply(&fresh(), &push("e1"), at(0));
    save(&store, &state, None, None).await?;
    let again = save(&store, &state, None, None).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    Ok(())
}

#[tokio::test]
async fn of_two_concurrent_writers_exactly_one_wins() -> Result<()> {
    let (_stack, store) = store().await?;
    let (state, _) = apply(&fresh(), &push("e1"), at(0));
    let version = save(&store, &state, None, None).await?;
    let (a, _) = apply(&state, &push("e2"), at(1));
    let (b, _) = apply(&state, &push("e3"), at(1));

    let (ra, rb) = tokio::join!(save(&store, &a, Some(version), None), save(&store, &b, Some(version), None));

    let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    let conflicts = [&ra, &rb].iter().filter(|r| matches!(r, Err(StoreError::Conflict { .. }))).count();
    assert_eq!((wins, conflicts), (1, 1), "{ra:?} {rb:?}");
    Ok(())
}

#[tokio::test]
async fn a_redelivered_webhook_is_detected_and_its_state_change_does_not_land() -> Result<()> {
    let (_stack, store) = store().await?;
    let key = ReceiptKey::delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", "web");
    let (state, _) = apply(&fresh(), &push("e1"), at(0));
    save(&store, &state, None, Some(&receipt(key.clone(), json!({"executions": ["e1"]})))).await?;

    // The same delivery again, which a careless handler would turn into a second execution.
    let (again, _) = apply(&state, &push("e2"), at(1));
    let duplicate =
        save(&store, &again, Some(Version(1)), Some(&receipt(key.clone(), json!({"executions": ["e2"]})))).await;

    assert!(matches!(duplicate, Err(StoreError::Duplicate { key: ref k }) if *k == key), "{duplicate:?}");
    let stored = store.load("web").await?.expect("stored");
    assert_eq!((stored.value, stored.version), (state, Version(1)), "the duplicate changed nothing");
    let first = store.receipt(&key).await?.expect("the receipt is kept");
    assert_eq!(first.answer, json!({"executions": ["e1"]}), "the first answer is what a redelivery gets");
    Ok(())
}

#[tokio::test]
async fn an_eventbridge_event_seen_twice_is_detected() -> Result<()> {
    let (_stack, store) = store().await?;
    let key = ReceiptKey::event("c030038d-8c4d-6141-9545-00ff7b7153EX");
    store.record_receipt(&receipt(key.clone(), json!("applied"))).await?;
    let again = store.record_receipt(&receipt(key.clone(), json!("applied"))).await;
    assert!(matches!(again, Err(StoreError::Duplicate { .. })), "{again:?}");
    assert!(again.as_ref().err().is_some_and(|e| !e.is_retryable()));
    Ok(())
}

#[tokio::test]
async fn history_comes_back_newest_first_and_keeps_runs_the_state_has_let_go() -> Result<()> {
    let (_stack, store) = store().await?;
    let mut state = fresh();
    let mut version = None;
    let runs = RETAINED_FINISHED + 3;
    for n in 0..runs {
        let id = format!("e{n}");
        let failed = Event::BuildFailed {
            execution_id: ExecutionId::from(id.as_str()),
            build_id: format!("build-{id}"),
            status: BuildFailure::Failed,
            phase: Some("BUILD".into()),
            reason: "tests failed".into(),
        };
        for event in [push(&id), failed] {
            state = apply(&state, &event, at(n as i64)).0;
            version = Some(save(&store, &state, version, None).await?);
        }
    }
    assert_eq!(state.executions.len(), RETAINED_FINISHED, "the state keeps only the last few");

    let history = store.history("web", 50).await?;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=runs as u64).rev().collect::<Vec<_>>());
    assert!(history.iter().all(|e| e.status == Status::Failed), "every run kept its final status");
    let newest_two: Vec<String> = store.history("web", 2).await?.into_iter().map(|e| e.id.0).collect();
    assert_eq!(newest_two, [format!("e{}", runs - 1), format!("e{}", runs - 2)]);
    Ok(())
}

#[tokio::test]
async fn history_is_kept_per_pipeline() -> Result<()> {
    let (_stack, store) = store().await?;
    let (web, _) = apply(&fresh(), &push("web-1"), at(0));
    let (api, _) = apply(&PipelineState::new("api", ExecutionMode::Queued), &push("api-1"), at(0));
    save(&store, &web, None, None).await?;
    save(&store, &api, None, None).await?;
    let ids: Vec<String> = store.history("api", 10).await?.into_iter().map(|e| e.id.0).collect();
    assert_eq!(ids, ["api-1"]);
    Ok(())
}

#[tokio::test]
async fn an_aws_id_finds_its_execution_in_one_read_once_the_state_that_recorded_it_is_saved() -> Result<()> {
    let (_stack, store) = store().await?;
    // A pipeline without an approval stage: the build, then the deploy stage.
    let (state, _) = apply(&fresh(), &testing::push("e1", ExecutionMode::Superseded, false), at(0));
    let mut version = save(&store, &state, None, None).await?;
    // A build needs no link: its events name the run (SLUICE_EXECUTION_ID, SLUICE_PIPELINE).
    let build_arn = "arn:aws:codebuild:us-east-1:123456789012:build/web-build:2f6c0f4e";
    let started = Event::BuildStarted { execution_id: ExecutionId::from("e1"), build_id: build_arn.into() };
    let (building, _) = apply(&state, &started, at(1));
    let write = Write::between(Some(&state), &building, Some(version));
    assert!(write.executions.is_empty(), "the run stays at its stage: the pipeline's item holds what it learnt");
    assert!(write.links.is_empty(), "{:?}", write.links);
    version = store.save(&write).await?;
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e1"),
        build_id: build_arn.into(),
        outputs: sluice::pipeline::BuildOutputs { image_uri: "web@sha256:ab12".into(), artifacts: None },
    };
    let (deploying, _) = apply(&building, &built, at(2));
    version = store.save(&Write::between(Some(&building), &deploying, Some(version))).await?;
    let deployment = "d-4JZC7PJ8X";
    assert!(store.find(deployment).await?.is_none(), "not before the deployment is recorded");

    let started = Event::DeploymentStarted {
        execution_id: ExecutionId::from("e1"),
        deployment_id: deployment.into(),
        service_deployment: None,
        task_definition: None,
        previous_task_definition: None,
        in_alarm: None,
    };
    let (next, _) = apply(&deploying, &started, at(3));
    let write = Write::between(Some(&deploying), &next, Some(version));
    assert_eq!(write.links.len(), 1, "{:?}", write.links);
    version = store.save(&write).await?;

    let link = store.find(deployment).await?.expect("linked");
    assert_eq!((link.pipeline.as_str(), link.execution.0.as_str()), ("web", "e1"));
    assert_eq!(link.expires_at, None, "the run goes on: its link is kept");

    // Once the run ends, its link is kept for as long as receipts are, then the table's TTL may remove it
    let failed = Event::DeploymentFailed {
        execution_id: ExecutionId::from("e1"),
        deployment_id: Some(deployment.into()),
        reason: "failed".into(),
        rolled_back: false,
    };
    let (ended, _) = apply(&next, &failed, at(4));
    assert!(ended.execution(&ExecutionId::from("e1")).is_some_and(|run| run.status.is_finished()));
    let write = Write::between(Some(&next), &ended, Some(version));
    assert_eq!(write.links.len(), 1, "{:?}", write.links);
    store.save(&write).await?;
    let link = store.find(deployment).await?.expect("still linked");
    let expected = at(4) + chrono::TimeDelta::days(sluice::contract::ports::RECEIPT_DAYS);
    assert_eq!(link.expires_at.map(|at| at.timestamp()), Some(expected.timestamp()));
    assert_eq!(link.execution.0, "e1");
    Ok(())
}

#[tokio::test]
async fn a_run_recorded_without_its_own_item_is_found_and_listed_from_its_pipelines_item() -> Result<()> {
    let (_stack, store) = store().await?;
    // Two pipelines whose names one run's id could start with: "web" and "web-d".
    let (other, _) = apply(&PipelineState::new("web-d", ExecutionMode::Superseded), &push("web-d-0"), at(0));
    save(&store, &other, None, None).await?;
    let queued = PipelineState::new("web", ExecutionMode::Queued);
    let (first, _) = apply(&queued, &push("web-d-1"), at(0));
    let version = save(&store, &first, None, None).await?;
    let (second, _) = apply(&first, &push("web-d-2"), at(1));

    let write = Write::between(Some(&first), &second, Some(version)).new_runs_in_the_state(Some(&first));
    assert!(write.executions.is_empty(), "{:?}", write.executions);
    store.save(&write).await?;

    let id = ExecutionId::from("web-d-2");
    let found = store.execution(&id).await?.expect("found in web's item");
    assert_eq!((found.pipeline.as_str(), found.seq), ("web", 2));
    let listed: Vec<String> = store.history("web", 10).await?.into_iter().map(|run| run.id.0).collect();
    assert_eq!(listed, ["web-d-2", "web-d-1"]);
    let listed: Vec<String> = store.history("web", 1).await?.into_iter().map(|run| run.id.0).collect();
    assert_eq!(listed, ["web-d-2"]);
    assert!(store.execution(&ExecutionId::from("web-d-9")).await?.is_none());

    // A name of many dashes, then GitHub's delivery GUID.
    let name = "a-b-c-d-e-f-g-h-i-j";
    let id = format!("{name}-72d3162e-cc78-11e3-81ab-4c9367dc0958");
    let (dashed, _) = apply(&PipelineState::new(name, ExecutionMode::Queued), &push(&id), at(0));
    let write = Write::between(None, &dashed, None).new_runs_in_the_state(None);
    assert!(write.executions.is_empty(), "{:?}", write.executions);
    store.save(&write).await?;
    let found = store.execution(&ExecutionId(id)).await?.expect("found in its pipeline's item");
    assert_eq!(found.pipeline, name);
    Ok(())
}

#[tokio::test]
async fn a_save_writes_only_the_executions_that_changed() -> Result<()> {
    let (stack, store) = store().await?;
    let (one, _) = apply(&fresh(), &push("e1"), at(0));
    let (two, _) = apply(&one, &push("e2"), at(1));
    let version = save(&store, &two, None, None).await?;
    // e1 is changed in the state but the write names only e2's change: e1's own item keeps what it had.
    let mut three = two.clone();
    three.executions[0].updated_at = at(5);
    let mut write = Write::between(Some(&two), &three, Some(version));
    write.executions.clear();
    store.save(&write).await?;
    let item = stack
        .dynamodb
        .get_item()
        .table_name(&stack.table)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("EXECUTION#e1".into()))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("EXECUTION".into()))
        .send()
        .await?;
    let written = item.item().and_then(|item| item.get("updated_at")?.as_s().ok().cloned());
    assert_eq!(written, Some(at(0).to_rfc3339()), "an execution not in the write is not written");
    assert_eq!(store.load("web").await?.expect("stored").value, three, "the state item is");
    Ok(())
}

#[tokio::test]
async fn a_save_of_the_state_alone_lands_once_and_a_stale_one_is_a_conflict_that_changes_nothing() -> Result<()> {
    let (stack, store) = store().await?;
    let (mut state, effects) = apply(&fresh(), &push("e1"), at(0));
    state.enqueue(effects, 1);
    save(&store, &state, None, None).await?;
    let read = store.load("web").await?.expect("stored");
    assert!(read.value.pending.len() > 1, "the push left effects to carry out");
    // The outbox emptied: no execution changed, so only the state item is written
    let mut emptied = read.value.clone();
    emptied.pending.clear();
    let write = Write::between(Some(&read.value), &emptied, Some(read.version));
    assert!(write.executions.is_empty() && write.receipt.is_none() && write.links.is_empty());
    // ... as one PutItem, not a transaction, as the meter on the wire sees it
    let meter = sluice_integration::meter::Meter::start(&sluice_integration::moto().endpoint).await?;
    let metered = sluice_integration::aws_config(&meter.endpoint).await;
    let metered = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&metered), stack.table.clone());
    assert_eq!(metered.save(&write).await?, Version(2));
    assert_eq!(meter.take().calls, ["DynamoDB_20120810.PutItem"]);
    let stored = store.load("web").await?.expect("stored");
    assert_eq!((&stored.value, stored.version), (&emptied, Version(2)));
    // The same write again, from the read of version 1, is refused and leaves version 2 as it was
    let mut other = read.value.clone();
    other.pending.truncate(1);
    let refused = store.save(&Write::between(Some(&read.value), &other, Some(read.version))).await;
    assert!(matches!(refused, Err(StoreError::Conflict { ref pipeline }) if pipeline == "web"), "{refused:?}");
    assert_eq!(store.load("web").await?.expect("stored").value, emptied);
    Ok(())
}

#[tokio::test]
async fn the_state_and_each_run_are_stored_deflated_at_a_fraction_of_their_json() -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (stack, store) = store().await?;
    let (state, _) = apply(&fresh(), &push("e1"), at(0));
    save(&store, &state, None, None).await?;
    let raw = |pk: &str, sk: &str| {
        let get = stack.dynamodb.get_item().table_name(&stack.table);
        get.key("PK", AttributeValue::S(pk.into())).key("SK", AttributeValue::S(sk.into())).send()
    };
    let state_item = raw("PIPELINE#web", "STATE").await?.item.unwrap_or_default();
    let run_item = raw("EXECUTION#e1", "EXECUTION").await?.item.unwrap_or_default();
    let json = sluice::adapters::encode_state(&state)?;
    let packed = state_item.get("state").and_then(|value| value.as_b().ok()).map(|blob| blob.as_ref().len());
    assert!(packed.is_some_and(|bytes| bytes * 2 < json.len()), "{packed:?} bytes packed for {} of JSON", json.len());
    assert!(run_item.get("body").is_some_and(AttributeValue::is_b), "the run's record is binary too");
    // ... and read back as they were
    assert_eq!(store.load("web").await?.map(|stored| stored.value), Some(state));
    Ok(())
}

#[tokio::test]
async fn the_pauses_of_a_stage_a_run_went_past_are_kept_in_items_of_their_own_and_read_back_whole() -> Result<()> {
    let (_stack, store) = store().await?;
    let token_hash = "c".repeat(64);
    let events = sluice::contract::testing::through_a_paused_staging("e1", std::slice::from_ref(&token_hash));
    let (mut state, mut version) = (PipelineState::new("web", ExecutionMode::Queued), None);
    // Saved as the use cases save, one write per event, each based on the state as read back
    for (minute, event) in events.iter().enumerate() {
        let (next, _) = apply(&state, event, at(minute as i64));
        let saved = store.save(&Write::between(Some(&state), &next, version)).await?;
        let loaded = store.load("web").await?.expect("stored");
        (state, version) = (loaded.value, Some(saved));
    }
    let id = ExecutionId::from("e1");
    let e1 = state.execution(&id).expect("e1");
    assert_eq!(e1.status, Status::Running(sluice::pipeline::Stage::new("sign-off").expect("a stage")));
    assert_eq!(e1.pauses().count(), 0, "neither the pipeline's item keeps staging's pauses");
    let item = store.execution(&id).await?.expect("e1's item");
    assert_eq!(item.pauses().count(), 0, "nor the run's");
    let apart = store.pauses_apart(&id).await?;
    assert_eq!(apart.iter().map(|batch| (batch.from, batch.pauses.len())).collect::<Vec<_>>(), [(0, 2)]);
    // Read whole, the run has them, and the decision's link still finds it, kept as long as receipts past the
    // pause's deadline
    let whole = store.whole(&id).await?.expect("e1");
    let decided: Vec<Option<&str>> =
        whole.pauses().map(|pause| pause.approval.as_ref().and_then(|a| a.approver.as_deref())).collect();
    assert_eq!(decided, [None, Some("ada@example.com")]);
    assert!(!whole.has_pauses_apart());
    let link = store.find(&sluice::contract::ports::approval_link(&token_hash)).await?.expect("linked");
    assert_eq!(link.execution, id);
    let deadline = whole.pauses().last().and_then(|pause| pause.approval.as_ref()).map(|approval| approval.expires_at);
    let kept = deadline.map(|at| (at + chrono::TimeDelta::days(sluice::contract::ports::RECEIPT_DAYS)).timestamp());
    assert_eq!(link.expires_at.map(|at| at.timestamp()), kept);
    // History lists the run, counting them
    let listed = store.history("web", 5).await?;
    let counted = listed[0].stages[0].deploy.as_ref().map(|deploy| deploy.pauses_apart);
    assert_eq!(counted, Some(2));
    Ok(())
}
