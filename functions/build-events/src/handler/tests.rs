//! The handler from AWS's sample CodeBuild events, and from the shapes CodeBuild may send besides the sample's (its
//! events are documented by sample only, and the rule takes every build in the account).

use serde_json::{Value, json};
use sluice::contract::ports::PipelineStore;
use sluice::contract::testing::{InMemoryArtifacts, InMemoryStore, RecordingRunner};
use sluice::pipeline::{ExecutionId, Status};

use super::*;

const STATE_CHANGE: &str = include_str!("../../../../shared/tests/fixtures/example-codebuild-state-change.json");

fn sample(edit: impl FnOnce(&mut Value)) -> Value {
    let mut value: Value = serde_json::from_str(STATE_CHANGE).expect("fixture is JSON");
    edit(&mut value);
    value
}

fn read(event: &Value) -> BuildStateChange {
    BuildStateChange::read(event).expect("a build state change")
}

fn ours(event: &mut Value, status: &str) {
    event["detail"]["build-status"] = json!(status);
    event["detail"]["additional-information"]["environment"]["environment-variables"] = json!([
        { "name": "SLUICE_EXECUTION_ID", "type": "PLAINTEXT", "value": "web-d-1" },
        { "name": "SLUICE_PIPELINE", "type": "PLAINTEXT", "value": "web" }
    ]);
}

#[test]
fn awss_sample_event_reads_as_a_succeeded_build_sluice_did_not_start() {
    let change = read(&sample(|_| {}));
    assert_eq!(change.event_id, "c030038d-8c4d-6141-9545-00ff7b7153EX");
    assert_eq!(change.status, "SUCCEEDED");
    assert_eq!(
        change.build_id,
        "arn:aws:codebuild:us-west-2:123456789012:build/my-sample-project:8745a7a9-c340-456a-9166-edf953571bEX"
    );
    assert_eq!(
        change.artifact_location.as_deref(),
        Some("arn:aws:s3:::codebuild-123456789012-output-bucket/my-output-artifact.zip")
    );
    assert_eq!((change.execution_id, change.pipeline), (None, None), "the sample build carries no SLUICE_ variables");
    assert_eq!(change.failed_phase, None, "every phase of the sample succeeded");
}

#[test]
fn sluices_variables_and_the_failed_phase_are_found() {
    let change = read(&sample(|event| {
        ours(event, "FAILED");
        let phases = event["detail"]["additional-information"]["phases"].as_array_mut().expect("phases");
        let build = phases.iter_mut().find(|p| p["phase-type"] == "BUILD").expect("a BUILD phase");
        build["phase-status"] = json!("FAILED");
    }));
    assert_eq!(change.execution_id.as_deref(), Some("web-d-1"));
    assert_eq!(change.pipeline.as_deref(), Some("web"));
    assert_eq!(change.failed_phase.as_deref(), Some("BUILD"));
}

#[test]
fn an_in_progress_event_without_build_complete_phases_or_times_reads_with_its_variables() {
    // CodeBuild's IN_PROGRESS events carry no `build-complete` and, early, no phases; the start time may be ISO 8601.
    let change = read(&sample(|event| {
        ours(event, "IN_PROGRESS");
        let information = event["detail"]["additional-information"].as_object_mut().expect("an object");
        information.remove("build-complete");
        information.remove("phases");
        information.remove("timeout-in-minutes");
        information.remove("logs");
        information.remove("source");
        information["build-start-time"] = json!("2026-12-05T08:43:22.123Z");
        event["detail"]["current-phase"] = json!("SUBMITTED");
    }));
    assert_eq!((change.status.as_str(), change.current_phase.as_deref()), ("IN_PROGRESS", Some("SUBMITTED")));
    assert_eq!(change.execution_id.as_deref(), Some("web-d-1"));
    assert_eq!(change.failed_phase, None);
}

#[test]
fn an_event_with_no_environment_block_or_fields_of_unexpected_types_reads_as_a_build_sluice_did_not_start() {
    let change = read(&sample(|event| {
        let information = event["detail"]["additional-information"].as_object_mut().expect("an object");
        information.remove("environment");
        information["phases"] = json!("not a list");
        information["artifact"] = json!(7);
    }));
    assert_eq!((change.execution_id, change.pipeline, change.artifact_location), (None, None, None));
    assert_eq!(change.status, "SUCCEEDED");
}

#[test]
fn an_event_without_a_build_id_or_status_is_not_read_as_a_build_state_change() {
    assert_eq!(BuildStateChange::read(&sample(|event| event["detail"]["build-id"] = Value::Null)), None);
    assert_eq!(BuildStateChange::read(&sample(|event| event["detail"]["build-status"] = json!(""))), None);
    assert_eq!(BuildStateChange::read(&json!("a string")), None);
    assert_eq!(BuildStateChange::read(&json!({ "detail-type": "CodeBuild Build Phase Change" })), None);
}

fn app() -> App<InMemoryStore, RecordingRunner, InMemoryArtifacts> {
    App { store: InMemoryStore::new(), effects: RecordingRunner::new(), artifacts: InMemoryArtifacts::new() }
}

fn invoke(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, lambda_runtime::Context::default())
}

#[tokio::test]
async fn events_sluice_cannot_read_or_did_not_start_are_answered_without_an_error_and_change_nothing() {
    let app = app();
    for payload in [
        json!({ "detail-type": "CodeBuild Build State Change", "detail": {} }),
        json!([1, 2, 3]),
        sample(|event| event["detail"]["additional-information"].as_object_mut().expect("object").clear()),
        sample(|event| ours(event, "QUEUED")),
    ] {
        on_event(&app, invoke(payload.clone()), chrono::Utc::now()).await.unwrap_or_else(|e| panic!("{payload}: {e}"));
    }
    assert!(app.effects.ran().is_empty());
    let run = app.store.execution(&ExecutionId::from("web-d-1")).await.expect("the store answers");
    assert_eq!(run.map(|run| run.status), None::<Status>);
}

#[tokio::test]
async fn a_test_requested_doorbell_starts_the_test_build_its_run_waits_for_and_nothing_twice() {
    use sluice::pipeline::{Effect, EffectKind};
    use sluice::usecases::{Input, handle};
    // GIVEN run e1 moved into its test stage e2e by a function that does not start builds (deploy-events, say)
    let app = app();
    let elsewhere = RecordingRunner::owning(&[EffectKind::Publish]);
    for event in sluice::contract::testing::to_e2e("e1") {
        let mode = sluice::definitions::ExecutionMode::Queued;
        let input = Input { pipeline: "web", mode, event: &event, receipt: None, now: chrono::Utc::now() };
        handle(&app.store, &elsewhere, input).await.expect("handled");
    }
    assert!(app.effects.ran().is_empty());
    // WHEN its Test Requested reaches build-events, twice
    let doorbell = json!({
        "source": "sluice", "detail-type": "Test Requested",
        "detail": { "pipeline": "web", "execution_id": "e1", "stage": "e2e", "project": "web-e2e", "commit": "sha-e1" },
    });
    on_event(&app, invoke(doorbell.clone()), chrono::Utc::now()).await.expect("answered");
    on_event(&app, invoke(doorbell), chrono::Utc::now()).await.expect("answered again");
    // THEN the test build was started once, for e2e
    let started: Vec<(String, Option<String>)> = app
        .effects
        .ran()
        .into_iter()
        .filter_map(|(_, effect)| match effect {
            Effect::StartBuild { project, stage, .. } => Some((project, stage.map(|stage| stage.to_string()))),
            _ => None,
        })
        .collect();
    assert_eq!(started, [("web-e2e".to_owned(), Some("e2e".to_owned()))]);
}
