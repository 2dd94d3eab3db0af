//! The handler from AWS's sample CodeBuild events.

use aws_lambda_events::event::codebuild::CodeBuildEvent;
use serde_json::{Value, json};

use super::*;

const STATE_CHANGE: &str = include_str!("../../../../shared/tests/fixtures/example-codebuild-state-change.json");

fn sample(edit: impl FnOnce(&mut Value)) -> CodeBuildEvent {
    let mut value: Value = serde_json::from_str(STATE_CHANGE).expect("fixture is JSON");
    edit(&mut value);
    serde_json::from_value(value).expect("a CodeBuild event")
}

#[test]
fn awss_sample_event_reads_as_a_succeeded_build_sluice_did_not_start() {
    let change = change_of(&sample(|_| {}));
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
    let change = change_of(&sample(|event| {
        event["detail"]["build-status"] = json!("FAILED");
        event["detail"]["additional-information"]["environment"]["environment-variables"] = json!([
            { "name": "SLUICE_EXECUTION_ID", "type": "PLAINTEXT", "value": "web-d-1" },
            { "name": "SLUICE_PIPELINE", "type": "PLAINTEXT", "value": "web" }
        ]);
        let phases = event["detail"]["additional-information"]["phases"].as_array_mut().expect("phases");
        let build = phases.iter_mut().find(|p| p["phase-type"] == "BUILD").expect("a BUILD phase");
        build["phase-status"] = json!("FAILED");
    }));
    assert_eq!(change.execution_id.as_deref(), Some("web-d-1"));
    assert_eq!(change.pipeline.as_deref(), Some("web"));
    assert_eq!(change.failed_phase.as_deref(), Some("BUILD"));
}
