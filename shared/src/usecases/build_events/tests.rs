//! Build state changes with the in-memory store, artifacts, bus and CodeBuild.

use chrono::TimeZone;

use super::*;
use crate::contract::events::SluiceEvent;
use crate::contract::testing::{InMemoryArtifacts, InMemoryStore, RecordingBuilds, RecordingPublisher, push};
use crate::definitions::ExecutionMode;
use crate::pipeline::{Stage, Status};
use crate::usecases::StageEffects;

const BUCKET: &str = "sluice-artifacts";
const TASKDEF: &str = r#"{"family":"web","containerDefinitions":[{"name":"web","image":"<IMAGE1_NAME>"}]}"#;
const APPSPEC_YAML: &str = include_str!("../../../../infra/sample-app/appspec.yaml");

struct World {
    store: InMemoryStore,
    effects: StageEffects<RecordingPublisher, RecordingBuilds>,
    artifacts: InMemoryArtifacts,
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date")
}

impl World {
    /// `executions` pushed one after the other; the first builds, the others wait.
    async fn with(executions: &[&str]) -> Self {
        let world = Self {
            store: InMemoryStore::new(),
            effects: StageEffects { publisher: RecordingPublisher::new(), builds: RecordingBuilds::new() },
            artifacts: InMemoryArtifacts::new(),
        };
        for execution in executions {
            let event = push(execution, ExecutionMode::Superseded, true);
            let input =
                Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &event, receipt: None, now: now() };
            handle(&world.store, &world.effects, input).await.expect("pushed");
        }
        world
    }

    fn outputs(&self, execution: &str, files: &[(&str, &str)]) {
        for (name, content) in files {
            self.artifacts.put(BUCKET, &format!("web/{execution}/{name}"), content.as_bytes());
        }
    }

    async fn build_id(&self, execution: &str) -> String {
        let execution = self.store.execution(&ExecutionId(execution.into())).await.ok().flatten().expect("stored");
        execution.build.and_then(|b| b.build_id).expect("the build started")
    }

    async fn change(&self, execution: &str, event_id: &str, status: &str) -> BuildStateChange {
        BuildStateChange {
            event_id: event_id.into(),
            build_id: self.build_id(execution).await,
            status: status.into(),
            current_phase: Some("COMPLETED".into()),
            failed_phase: None,
            execution_id: Some(execution.into()),
            pipeline: Some("web".into()),
            stage: None,
            artifact_location: Some(format!("arn:aws:s3:::{BUCKET}/web/{execution}")),
        }
    }

    async fn record(&self, change: &BuildStateChange) -> BuildEventOutcome {
        record_build_event(&self.store, &self.effects, &self.artifacts, change, now()).await.expect("recorded")
    }

    async fn execution(&self, execution: &str) -> crate::pipeline::Execution {
        self.store.execution(&ExecutionId(execution.into())).await.ok().flatten().expect("stored")
    }

    fn published(&self) -> Vec<&'static str> {
        self.effects.publisher.published().iter().map(SluiceEvent::detail_type).collect()
    }
}

const ALL_OUTPUTS: [(&str, &str); 3] = [
    (
        "imageDetail.json",
        r#"{"ImageURI":"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091"}"#,
    ),
    ("taskdef.json", TASKDEF),
    ("appspec.yaml", APPSPEC_YAML),
];

#[tokio::test]
async fn a_successful_build_records_the_image_and_asks_for_approval() {
    let world = World::with(&["e1"]).await;
    world.outputs("e1", &ALL_OUTPUTS);

    let outcome = world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;

    assert_eq!(outcome, BuildEventOutcome::Handled(Handled::Applied));
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Running(Stage::APPROVAL));
    let build = execution.build.expect("build facts");
    assert_eq!(
        build.image_uri.as_deref(),
        Some(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091"
        )
    );
    assert_eq!(build.artifacts.as_deref(), Some("s3://sluice-artifacts/web/e1"));
    assert_eq!(world.published(), ["Execution Started", "Approval Requested"]);
}

#[tokio::test]
async fn a_successful_build_lets_the_next_waiting_run_build() {
    let world = World::with(&["e1", "e2"]).await;
    world.outputs("e1", &ALL_OUTPUTS);
    world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;
    let builds = world.effects.builds.started();
    assert_eq!(builds.iter().map(|b| b.source_version.as_str()).collect::<Vec<_>>(), ["sha-e1", "sha-e2"]);
    assert_eq!(world.execution("e2").await.status, Status::Running(Stage::BUILD));
}

#[tokio::test]
async fn each_missing_or_malformed_output_fails_the_run_naming_the_file() {
    let image = r#"{"ImageURI":"repo/web:1"}"#;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("taskdef.json", TASKDEF), ("appspec.yaml", APPSPEC_YAML)],
            "imageDetail.json is missing from the build's artifacts (s3://sluice-artifacts/web/e1)",
        ),
        (
            vec![("imageDetail.json", "{}"), ("taskdef.json", TASKDEF), ("appspec.yaml", APPSPEC_YAML)],
            "imageDetail.json has no ImageURI",
        ),
        (vec![("imageDetail.json", "not json")], "imageDetail.json is not JSON"),
        (vec![("imageDetail.json", image), ("appspec.yaml", APPSPEC_YAML)], "taskdef.json is missing"),
        (
            vec![("imageDetail.json", image), ("taskdef.json", "{}"), ("appspec.yaml", APPSPEC_YAML)],
            "taskdef.json: not an ECS task definition: missing field `family`",
        ),
        (vec![("imageDetail.json", image), ("taskdef.json", TASKDEF)], "appspec.yaml is missing"),
        (
            vec![("imageDetail.json", image), ("taskdef.json", TASKDEF), ("appspec.yaml", "version: 0.0")],
            "appspec.yaml: field `Resources` is missing",
        ),
    ];
    for (files, reason) in cases {
        // GIVEN a build that left these files, WHEN it succeeds, THEN the run fails and says which file is wrong
        let world = World::with(&["e1"]).await;
        world.outputs("e1", &files);
        world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;
        let execution = world.execution("e1").await;
        assert_eq!(execution.status, Status::Failed, "{reason}");
        let got = execution.reason.unwrap_or_default();
        assert!(got.starts_with(reason), "{got:?} should start with {reason:?}");
    }
}

#[tokio::test]
async fn zipped_or_absent_artifacts_fail_the_run_with_what_to_change() {
    let world = World::with(&["e1"]).await;
    let mut change = world.change("e1", "ev-1", "SUCCEEDED").await;
    change.artifact_location = Some(format!("arn:aws:s3:::{BUCKET}/web/e1.zip"));
    world.record(&change).await;
    let reason = world.execution("e1").await.reason.unwrap_or_default();
    assert!(reason.contains("packaging to NONE"), "{reason}");

    let world = World::with(&["e1"]).await;
    let mut change = world.change("e1", "ev-1", "SUCCEEDED").await;
    change.artifact_location = None;
    world.record(&change).await;
    let reason = world.execution("e1").await.reason.unwrap_or_default();
    assert!(reason.starts_with("the build has no artifacts"), "{reason}");
}

#[tokio::test]
async fn a_build_that_ends_without_success_ends_the_run_with_the_phase() {
    for (status, outcome, reason) in [
        ("FAILED", Status::Failed, "the build failed in phase BUILD"),
        ("FAULT", Status::Failed, "the build failed in phase BUILD"),
        ("STOPPED", Status::Failed, "the build was stopped in phase BUILD"),
        ("TIMED_OUT", Status::TimedOut, "the build timed out in phase BUILD"),
    ] {
        let world = World::with(&["e1"]).await;
        let mut change = world.change("e1", "ev-1", status).await;
        change.failed_phase = Some("BUILD".into());
        world.record(&change).await;
        let execution = world.execution("e1").await;
        assert_eq!((execution.status, execution.reason.as_deref()), (outcome, Some(reason)), "{status}");
        assert_eq!(execution.build.and_then(|b| b.phase).as_deref(), Some("BUILD"));
    }
}

#[tokio::test]
async fn an_in_progress_event_arriving_after_success_changes_nothing() {
    let world = World::with(&["e1"]).await;
    world.outputs("e1", &ALL_OUTPUTS);
    world.record(&world.change("e1", "ev-2", "SUCCEEDED").await).await;
    let before = world.store.load("web").await.ok().flatten();

    let mut late = world.change("e1", "ev-1", "IN_PROGRESS").await;
    late.current_phase = Some("BUILD".into());
    let outcome = world.record(&late).await;

    assert!(matches!(outcome, BuildEventOutcome::Handled(Handled::Ignored(_))), "{outcome:?}");
    assert_eq!(world.store.load("web").await.ok().flatten(), before);
}

#[tokio::test]
async fn the_same_event_delivered_twice_moves_the_run_once() {
    let world = World::with(&["e1"]).await;
    world.outputs("e1", &ALL_OUTPUTS);
    let change = world.change("e1", "ev-1", "SUCCEEDED").await;
    world.record(&change).await;
    let again = world.record(&change).await;
    assert!(matches!(again, BuildEventOutcome::Handled(Handled::Ignored(_) | Handled::Duplicate { .. })), "{again:?}");
    assert_eq!(world.published(), ["Execution Started", "Approval Requested"]);
}

#[tokio::test]
async fn a_build_sluice_did_not_start_is_left_alone() {
    let world = World::with(&["e1"]).await;
    let mut change = world.change("e1", "ev-1", "SUCCEEDED").await;
    change.execution_id = None;
    assert_eq!(world.record(&change).await, BuildEventOutcome::NotOurs("the build was not started by sluice"));
    assert_eq!(world.execution("e1").await.status, Status::Running(Stage::BUILD));
}

#[tokio::test]
async fn another_build_claiming_a_known_execution_is_refused() {
    let world = World::with(&["e1"]).await;
    world.outputs("e1", &ALL_OUTPUTS);
    let mut change = world.change("e1", "ev-1", "SUCCEEDED").await;
    change.build_id = "arn:aws:codebuild:us-east-1:123456789012:build/web-build:someone-else".into();
    let outcome = world.record(&change).await;
    assert!(matches!(outcome, BuildEventOutcome::Handled(Handled::Refused(_))), "{outcome:?}");
    assert_eq!(world.execution("e1").await.status, Status::Running(Stage::BUILD));
}

#[test]
fn artifact_locations_read_from_codebuilds_arn_or_an_s3_uri() {
    let from_arn = artifact_location("arn:aws:s3:::codebuild-123456789012-output-bucket/my-output-artifact.zip");
    assert_eq!(
        from_arn,
        Some(ArtifactLocation {
            bucket: "codebuild-123456789012-output-bucket".into(),
            prefix: "my-output-artifact.zip".into()
        })
    );
    let from_uri = artifact_location("s3://bucket/web/e1");
    assert_eq!(from_uri.map(|l| l.uri()), Some("s3://bucket/web/e1".to_owned()));
    assert_eq!(artifact_location("somewhere"), None);
}

const DIGEST: &str = "sha256:9d1c8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d";

fn tagged(image: &str) -> [(&'static str, String); 3] {
    [
        ("imageDetail.json", format!(r#"{{"ImageURI":"{image}"}}"#)),
        ("taskdef.json", TASKDEF.to_owned()),
        ("appspec.yaml", APPSPEC_YAML.to_owned()),
    ]
}

impl World {
    fn tagged_outputs(&self, execution: &str, image: &str) {
        let files = tagged(image);
        let files: Vec<(&str, &str)> = files.iter().map(|(name, text)| (*name, text.as_str())).collect();
        self.outputs(execution, &files);
    }
}

#[tokio::test]
async fn an_ecr_tag_is_pinned_by_the_digest_it_names_when_the_build_ends_and_the_run_deploys_that() {
    let world = World::with(&["e1"]).await;
    world.tagged_outputs("e1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:sha-e1");
    world.artifacts.push_image("team/web", "sha-e1", DIGEST);

    world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;

    let pinned = format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web@{DIGEST}");
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Running(Stage::APPROVAL));
    assert_eq!(execution.build.and_then(|b| b.image_uri), Some(pinned.clone()));
    // The approvers are shown the pinned image: what the run deploys
    let approval = world.effects.publisher.published().into_iter().find_map(|event| match event {
        SluiceEvent::ApprovalRequested(request) => Some(request),
        _ => None,
    });
    assert_eq!(approval.and_then(|request| request.image_uri), Some(pinned));
}

#[tokio::test]
async fn an_ecr_tag_the_registry_does_not_have_fails_the_run_saying_so() {
    let world = World::with(&["e1"]).await;
    world.tagged_outputs("e1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:sha-e1");

    world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;

    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Failed);
    let reason = execution.reason.unwrap_or_default();
    assert!(
        reason.contains("which ECR does not have (repository web in registry 123456789012, eu-west-1)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_registry_that_does_not_answer_leaves_the_run_in_its_build_and_the_event_is_tried_again() {
    let world = World::with(&["e1"]).await;
    world.tagged_outputs("e1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:sha-e1");
    world.artifacts.push_image("web", "sha-e1", DIGEST);
    world.artifacts.registry_down_for(1);
    let change = world.change("e1", "ev-1", "SUCCEEDED").await;

    let error = record_build_event(&world.store, &world.effects, &world.artifacts, &change, now()).await;

    let error = error.expect_err("not recorded");
    assert!(error.is_retryable() && matches!(error, BuildEventError::Registry { .. }), "{error:?}");
    assert_eq!(world.execution("e1").await.status, Status::Running(Stage::BUILD));
    world.record(&change).await;
    assert_eq!(world.execution("e1").await.status, Status::Running(Stage::APPROVAL));
}

#[tokio::test]
async fn a_digest_that_is_not_one_fails_the_run_and_an_image_outside_ecr_is_deployed_as_named() {
    let world = World::with(&["e1", "e2"]).await;
    world.tagged_outputs("e1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:4e2f");
    world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;
    let failed = world.execution("e1").await;
    assert_eq!(failed.status, Status::Failed);
    assert!(failed.reason.unwrap_or_default().contains("names digest sha256:4e2f, which is not a sha256 digest"));

    world.tagged_outputs("e2", "ghcr.io/acme/web:sha-e2");
    world.record(&world.change("e2", "ev-2", "SUCCEEDED").await).await;
    let execution = world.execution("e2").await;
    assert_eq!(execution.build.and_then(|b| b.image_uri).as_deref(), Some("ghcr.io/acme/web:sha-e2"));
}

#[tokio::test]
async fn a_registry_that_denies_or_refuses_the_lookup_fails_the_run_saying_what_to_do() {
    use crate::contract::testing::RegistryRefusal;
    for (refusal, said) in [
        (RegistryRefusal::Denied, "ECR denied access; sluice needs ecr:DescribeImages on repository web"),
        (
            RegistryRefusal::Refused,
            "ECR refused the request (InvalidParameterException: bad tag); check the repository",
        ),
    ] {
        let world = World::with(&["e1"]).await;
        world.tagged_outputs("e1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:sha-e1");
        world.artifacts.push_image("web", "sha-e1", DIGEST);
        world.artifacts.registry_refuses(refusal);

        world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;

        let execution = world.execution("e1").await;
        assert_eq!(execution.status, Status::Failed, "{refusal:?}");
        let reason = execution.reason.unwrap_or_default();
        assert!(reason.contains(said), "{refusal:?}: {reason}");
    }
}

#[tokio::test]
async fn a_tag_pushed_again_while_the_run_waits_changes_nothing_it_deploys() {
    let world = World::with(&["e1"]).await;
    world.tagged_outputs("e1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:sha-e1");
    world.artifacts.push_image("web", "sha-e1", DIGEST);
    world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;
    // WHEN the tag is pushed again with other bytes while the run waits for its approval, then it is approved
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    world.artifacts.push_image("web", "sha-e1", other);
    let approved = Event::ApprovalDecided {
        execution_id: ExecutionId("e1".into()),
        decision: crate::pipeline::ApprovalDecision::Approved,
        approver: "Jane".into(),
        comment: None,
        token_hash: None,
        source_ip: None,
        user_agent: None,
    };
    let input = Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &approved, receipt: None, now: now() };
    handle(&world.store, &world.effects, input).await.expect("approved");
    // THEN the deployment asked for is of the digest the build made
    let requested = world.effects.publisher.published().into_iter().find_map(|event| match event {
        SluiceEvent::DeploymentRequested(requested) => requested.image_uri,
        _ => None,
    });
    assert_eq!(requested, Some(format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@{DIGEST}")));
}

#[tokio::test]
async fn a_task_definition_one_deploy_stage_cannot_run_fails_the_run_at_its_build_naming_that_stage() {
    // GIVEN a run in stages whose production names a container the build's taskdef.json does not have
    let world = World::with(&[]).await;
    let mut event = push("e1", ExecutionMode::Superseded, false);
    if let Event::Triggered { plan, .. } = &mut event {
        let deploy = |name: &str, target| crate::definitions::StageDefinition {
            name: Stage::new(name).expect("a stage name"),
            kind: crate::definitions::StageKind::Deploy(Box::new(crate::definitions::DeployStage::of(target))),
        };
        let mut production = crate::contract::testing::rolling(Vec::new());
        production.container = Some("api".into());
        plan.stages = vec![
            deploy("staging", crate::definitions::DeployTarget::Rolling(crate::contract::testing::rolling(Vec::new()))),
            deploy("production", crate::definitions::DeployTarget::Rolling(production)),
        ];
    }
    let input = Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &event, receipt: None, now: now() };
    handle(&world.store, &world.effects, input).await.expect("pushed");
    // WHEN its build succeeds
    world.outputs("e1", &ALL_OUTPUTS);
    world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;
    // THEN the run fails before staging deploys anything, saying which stage could not run it
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Failed);
    let reason = execution.reason.unwrap_or_default();
    assert!(reason.starts_with("for stage production: "), "{reason}");
    assert!(execution.stages.is_empty(), "{:?}", execution.stages);
}

/// A run in stages `e2e` (CodeBuild project web-e2e, 30 minutes) then `production`, whose build succeeded: it holds
/// e2e, its test build started (`arn:...:build/web-e2e:e1`).
async fn testing_world() -> World {
    let world = World::with(&[]).await;
    let mut event = push("e1", ExecutionMode::Superseded, false);
    if let Event::Triggered { plan, .. } = &mut event {
        let production = crate::definitions::StageDefinition {
            name: Stage::new("production").expect("a stage name"),
            kind: crate::definitions::StageKind::Deploy(Box::new(crate::definitions::DeployStage::of(
                crate::definitions::DeployTarget::Rolling(crate::contract::testing::rolling(Vec::new())),
            ))),
        };
        let e2e = crate::definitions::StageDefinition {
            name: e2e(),
            kind: crate::definitions::StageKind::Test(crate::definitions::TestStage {
                run: crate::definitions::TestRun::CodeBuild("web-e2e".into()),
                timeout_minutes: Some(30),
                on_failure: Default::default(),
            }),
        };
        plan.stages = vec![e2e, production];
    }
    let input = Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &event, receipt: None, now: now() };
    handle(&world.store, &world.effects, input).await.expect("pushed");
    world.outputs("e1", &ALL_OUTPUTS);
    world.record(&world.change("e1", "ev-1", "SUCCEEDED").await).await;
    world
}

const TEST_BUILD: &str = "arn:aws:codebuild:us-east-1:123456789012:build/web-e2e:e1";

fn e2e() -> Stage {
    Stage::new("e2e").expect("a stage name")
}

/// The state change of the e2e test build.
fn test_change(event_id: &str, status: &str) -> BuildStateChange {
    BuildStateChange {
        event_id: event_id.into(),
        build_id: TEST_BUILD.into(),
        status: status.into(),
        current_phase: Some("COMPLETED".into()),
        failed_phase: (status == "FAILED").then(|| "BUILD".into()),
        execution_id: Some("e1".into()),
        pipeline: Some("web".into()),
        stage: Some("e2e".into()),
        artifact_location: None,
    }
}

fn two_failed() -> crate::pipeline::TestResults {
    let failures = ["checkout.pays_with_card", "login.rejects_bad_password"]
        .map(|name| crate::pipeline::FailedTest::new(name, Some("expected 200, got 500")));
    crate::pipeline::TestResults { passed: 118, failed: 2, failures: failures.to_vec(), ..Default::default() }
}

#[tokio::test]
async fn a_build_in_a_test_stage_is_the_stages_test_build_started_on_the_commit_with_its_timeout() {
    let world = testing_world().await;
    let started = world.effects.builds.started();
    let test = started.last().expect("the test build");
    assert_eq!((test.project.as_str(), test.source_version.as_str()), ("web-e2e", "sha-e1"));
    assert_eq!(test.timeout_minutes, Some(30));
    assert_eq!(test.environment.get("SLUICE_STAGE").map(String::as_str), Some("e2e"));
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Running(e2e()));
    let facts = execution.record(e2e()).and_then(|record| record.test.clone()).expect("the test's record");
    assert_eq!(facts.build_id.as_deref(), Some(TEST_BUILD));
}

#[tokio::test]
async fn a_test_build_that_succeeds_with_failed_cases_fails_the_run_with_its_reports_results() {
    let world = testing_world().await;
    world.artifacts.reports(TEST_BUILD, two_failed());
    let outcome = world.record(&test_change("ev-2", "SUCCEEDED")).await;
    assert_eq!(outcome, BuildEventOutcome::Handled(Handled::Applied));
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Failed);
    let reason = execution.reason.clone().unwrap_or_default();
    assert_eq!(
        reason,
        "in e2e: 2 test cases failed (118 passed, 2 failed: checkout.pays_with_card, login.rejects_bad_password)"
    );
    let facts = execution.record(e2e()).and_then(|record| record.test.clone()).expect("the test's record");
    assert_eq!(facts.results, Some(two_failed()));
    assert!(!world.published().contains(&"Deployment Requested"), "production is untouched");
    // A redelivery reads no report again and changes nothing.
    let reads = world.artifacts.report_reads();
    let again = world.record(&test_change("ev-2-again", "SUCCEEDED")).await;
    assert!(matches!(again, BuildEventOutcome::Handled(Handled::Ignored(_))), "{again:?}");
    assert_eq!(world.artifacts.report_reads(), reads);
}

#[tokio::test]
async fn a_test_build_that_passes_moves_the_run_on_and_one_that_fails_ends_it_in_its_phase() {
    let world = testing_world().await;
    let mut passed = crate::pipeline::TestResults::default();
    passed.count("SUCCEEDED", 12);
    world.artifacts.reports(TEST_BUILD, passed.clone());
    world.record(&test_change("ev-2", "SUCCEEDED")).await;
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Running(Stage::new("production").expect("a stage name")));
    let facts = execution.record(e2e()).and_then(|record| record.test.clone()).expect("the test's record");
    assert_eq!((facts.passed, facts.results), (Some(true), Some(passed)));

    let world = testing_world().await;
    world.record(&test_change("ev-2", "FAILED")).await;
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Failed);
    assert_eq!(execution.reason.as_deref(), Some("in e2e: the test build failed in phase BUILD"));
}

#[tokio::test]
async fn unreadable_reports_are_tried_again_and_denied_ones_fail_the_stage_saying_what_is_missing() {
    // GIVEN the build service is unreachable for the first read
    let world = testing_world().await;
    world.artifacts.reports(TEST_BUILD, two_failed());
    world.artifacts.reports_down_for(1);
    let error =
        record_build_event(&world.store, &world.effects, &world.artifacts, &test_change("ev-2", "SUCCEEDED"), now())
            .await
            .expect_err("tried again");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(world.execution("e1").await.status, Status::Running(e2e()), "nothing changed");
    // WHEN the event comes again, THEN it is recorded
    world.record(&test_change("ev-2", "SUCCEEDED")).await;
    assert_eq!(world.execution("e1").await.status, Status::Failed);

    // GIVEN the build's report is one CodeBuild could not make: never a pass
    let world = testing_world().await;
    world.artifacts.report_unmade(TEST_BUILD);
    world.record(&test_change("ev-2", "SUCCEEDED")).await;
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Failed);
    let reason = execution.reason.unwrap_or_default();
    assert!(
        reason.starts_with("in e2e: the test build succeeded, but CodeBuild could not make test report"),
        "{reason}"
    );

    // GIVEN sluice may not read reports
    let world = testing_world().await;
    world.artifacts.reports_denied();
    world.record(&test_change("ev-2", "SUCCEEDED")).await;
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Failed);
    let reason = execution.reason.unwrap_or_default();
    assert!(reason.starts_with("in e2e: the test build succeeded, but its test reports could not be read"), "{reason}");
    assert!(reason.contains("codebuild:BatchGetReports"), "{reason}");
}

#[tokio::test]
async fn a_test_build_event_naming_no_stage_of_the_run_is_refused_and_changes_nothing() {
    let world = testing_world().await;
    let before = world.execution("e1").await;
    let garbage = BuildStateChange { stage: Some("Not A Stage".into()), ..test_change("ev-3", "SUCCEEDED") };
    assert!(matches!(world.record(&garbage).await, BuildEventOutcome::NotOurs(_)));
    let elsewhere = BuildStateChange { stage: Some("staging".into()), ..test_change("ev-4", "SUCCEEDED") };
    let refused = record_build_event(&world.store, &world.effects, &world.artifacts, &elsewhere, now()).await;
    assert!(refused.is_err() || matches!(refused, Ok(BuildEventOutcome::Handled(Handled::Refused(_)))), "{refused:?}");
    assert_eq!(world.execution("e1").await, before);
}
