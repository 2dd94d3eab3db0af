//! A push through the whole of what exists, with the sandbox playing CodeBuild: GitHub's signed push over HTTP to the
//! webhook function; the build started in the CodeBuild sandbox, which writes the build's artifacts to S3 (moto) and
//! publishes its state changes to EventBridge (moto); the template's rule delivers them to the build-events
//! function; the run moves on, or fails, as the scenario says.

use std::time::Duration;

use anyhow::{Context, Result};
use build_events::handler::{AwsApp, on_event};
use sluice::adapters::CodeBuildStarter;
use sluice::contract::ports::PipelineStore;
use sluice::github::webhook::sign;
use sluice::pipeline::{ExecutionId, Stage, Status};
use sluice_integration::wiring::handler;
use sluice_integration::{Stack, unique};
use sluice_sandbox::codebuild::{CodeBuildSandbox, Outputs, Scenario, TestCase};
use sluice_sandbox::pump::Pump;

use crate::webhook::{Deployed, PUSH, deliver, deployed_with};

const HEAD: &str = "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b";
const WAIT: Duration = Duration::from_secs(15);

struct Running {
    deployed: Deployed,
    codebuild: CodeBuildSandbox,
    _build_events: Vec<Pump>,
}

/// The stack, the CodeBuild sandbox playing `scenario` for the web pipeline's project, the webhook function on a
/// function URL, and the build-events function fed by the CodeBuild rule's target.
async fn running(scenario: Scenario) -> Result<Running> {
    let stack = Stack::create().await?;
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.config).force_path_style(true).build());
    let bucket = unique("artifacts");
    s3.create_bucket().bucket(&bucket).send().await?;
    let codebuild = CodeBuildSandbox::start(Outputs {
        s3: s3.clone(),
        ecr: aws_sdk_ecr::Client::new(&stack.config),
        bucket,
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        duration: Duration::from_millis(300),
    })
    .await?;
    let project = unique("web-build");
    codebuild.project(&project, scenario);
    // sluice's CodeBuild client speaks to the sandbox, as AWS_ENDPOINT_URL_CODEBUILD would make it.
    let aws = sluice_integration::aws_config_with(
        &sluice_integration::moto().endpoint,
        &[("codebuild", &codebuild.endpoint)],
    )
    .await;
    let common = sluice::runtime::config::Common { table: stack.table.clone(), event_bus: stack.bus.clone() };
    let app = std::sync::Arc::new(AwsApp::from_aws(&aws, &common));
    let build_events = stack.wire(vec![(
        "BuildEventsFunction",
        handler(move |event: serde_json::Value| {
            let app = std::sync::Arc::clone(&app);
            async move {
                let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
                on_event(&app, event, chrono::Utc::now()).await
            }
        }),
    )])?;
    let deployed = deployed_with(stack, project, &aws).await?;
    Ok(Running { deployed, codebuild, _build_events: build_events })
}

async fn push(running: &Running, delivery: &str) -> Result<ExecutionId> {
    let (status, body) = deliver(&running.deployed, delivery, Some(&sign(&running.deployed.secret, &PUSH))).await?;
    assert_eq!(status, 202, "{body}");
    Ok(ExecutionId(format!("web-{delivery}")))
}

#[tokio::test]
async fn the_build_succeeds_and_the_run_waits_for_approval_with_the_image_recorded() -> Result<()> {
    let running = running(Scenario::Succeed).await?;
    let stack = &running.deployed.stack;

    let execution_id = push(&running, "d-succeeds").await?;

    let requests = stack.receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, WAIT).await?;
    assert_eq!(requests.len(), 1, "an approval request reached the approval rule's target");
    // The build's tag, pinned by the digest ECR (moto) gives it: what the run deploys
    let ecr = aws_sdk_ecr::Client::new(&stack.config);
    let project = &running.deployed.project;
    let tagged = aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(HEAD).build();
    let described = ecr.describe_images().repository_name(project).image_ids(tagged).send().await?;
    let digest = described.image_details().first().and_then(|d| d.image_digest()).context("the pushed image")?;
    let image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{project}@{digest}");
    assert_eq!(requests[0]["detail"]["image_uri"], image.as_str());
    let execution = running.deployed.store.execution(&execution_id).await?.context("stored")?;
    assert_eq!(execution.status, Status::Running(Stage::APPROVAL));
    let build = execution.build.context("build facts")?;
    assert_eq!(build.image_uri.as_deref(), Some(image.as_str()));
    assert!(build.artifacts.is_some_and(|a| a.starts_with("s3://")));
    let played = running.codebuild.builds();
    assert_eq!(played.len(), 1);
    assert_eq!(played[0]["sourceVersion"], HEAD, "CodeBuild built the pushed commit");
    // A build that fails ends its run: the project's auto-retry must not build it again (the project's limit is 2).
    assert_eq!(played[0]["autoRetryConfig"]["autoRetryLimit"], 0, "{}", played[0]);
    Ok(())
}

#[tokio::test]
async fn the_build_fails_in_a_phase_and_the_run_fails_saying_where() -> Result<()> {
    let running = running(Scenario::FailIn("BUILD".into())).await?;
    let stack = &running.deployed.stack;

    let execution_id = push(&running, "d-fails").await?;

    let finished = stack.receive(stack.queue_to("NotifierFunction", "Execution Finished")?, 1, WAIT).await?;
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["detail"]["outcome"], "failed");
    assert_eq!(finished[0]["detail"]["reason"], "the build failed in phase BUILD");
    let execution = running.deployed.store.execution(&execution_id).await?.context("stored")?;
    assert_eq!(execution.status, Status::Failed);
    assert!(
        stack
            .receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, Duration::from_secs(1))
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_stopped_or_timed_out_build_ends_the_run_as_codebuild_says() -> Result<()> {
    for (scenario, outcome, reason) in [
        (Scenario::StopIn("BUILD".into()), "failed", "the build was stopped in phase BUILD"),
        (Scenario::TimeOutIn("POST_BUILD".into()), "timed_out", "the build timed out in phase POST_BUILD"),
    ] {
        let running = running(scenario).await?;
        let stack = &running.deployed.stack;
        push(&running, "d-ended").await?;
        let finished = stack.receive(stack.queue_to("NotifierFunction", "Execution Finished")?, 1, WAIT).await?;
        assert_eq!(finished.len(), 1, "{reason}");
        assert_eq!(finished[0]["detail"]["outcome"], outcome);
        assert_eq!(finished[0]["detail"]["reason"], reason);
    }
    Ok(())
}

#[tokio::test]
async fn when_the_build_event_is_lost_the_scheduled_look_moves_the_run_on() -> Result<()> {
    let running = running(Scenario::Lost).await?;
    let stack = &running.deployed.stack;

    let execution_id = push(&running, "d-lost").await?;

    // Longer than a played build takes: no event arrives, and the run does not move by itself.
    assert!(
        stack
            .receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, Duration::from_secs(2))
            .await?
            .is_empty()
    );
    let execution = running.deployed.store.execution(&execution_id).await?.context("stored")?;
    assert_eq!(execution.status, Status::Running(Stage::BUILD));

    // The reconciler's scheduled run, once the build has been quiet long enough, asks CodeBuild and moves it on.
    let aws = sluice_integration::aws_config_with(
        &sluice_integration::moto().endpoint,
        &[("codebuild", &running.codebuild.endpoint)],
    )
    .await;
    let reconciler = reconciler::handler::AwsApp::from_aws(&aws, &running.deployed.config.common.clone().into());
    let later = chrono::Utc::now() + sluice::usecases::QUIET_FOR + chrono::TimeDelta::minutes(1);
    let summary = reconciler::handler::on_schedule(&reconciler, later).await?;
    assert_eq!(summary["moved"], 1, "{summary}");

    let requests = stack.receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, WAIT).await?;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["detail"]["execution_id"], execution_id.0.as_str());
    let execution = running.deployed.store.execution(&execution_id).await?.context("stored")?;
    assert_eq!(execution.status, Status::Running(Stage::APPROVAL));
    Ok(())
}

#[tokio::test]
async fn the_codebuild_sandbox_answers_as_codebuild_does_for_an_unknown_project_and_for_batch_get_builds() -> Result<()>
{
    use sluice::contract::ports::{BuildRequest, BuildStartError, BuildStarter};
    let running = running(Scenario::Lost).await?;
    let stack = &running.deployed.stack;
    let client = aws_sdk_codebuild::Client::from_conf(
        aws_sdk_codebuild::config::Builder::from(&stack.config).endpoint_url(&running.codebuild.endpoint).build(),
    );
    let environment = std::collections::BTreeMap::new();
    let request = BuildRequest {
        project: "nobody-declared-this",
        source_version: HEAD,
        environment: &environment,
        idempotency_token: "t",
        timeout_minutes: None,
    };
    match CodeBuildStarter::new(client.clone()).start_build(&request).await {
        Err(BuildStartError::Refused { message, .. }) => {
            assert!(message.starts_with("ResourceNotFoundException"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let request = BuildRequest { project: &running.deployed.project, ..request };
    let arn = CodeBuildStarter::new(client.clone()).start_build(&request).await?;
    let builds = client.batch_get_builds().ids(&arn).ids("missing:1").send().await?;
    assert_eq!(builds.builds().len(), 1);
    assert_eq!(builds.builds()[0].source_version(), Some(HEAD));
    assert_eq!(builds.builds_not_found(), ["missing:1"]);
    Ok(())
}

/// The CodeBuild sandbox alone, its test project `project` playing `cases`, and sluice's CodeBuild client on it.
async fn test_project(project: &str, cases: Vec<TestCase>) -> Result<(CodeBuildSandbox, CodeBuildStarter)> {
    let stack = Stack::create().await?;
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.config).force_path_style(true).build());
    let codebuild = CodeBuildSandbox::start(Outputs {
        s3,
        ecr: aws_sdk_ecr::Client::new(&stack.config),
        bucket: unique("artifacts"),
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        duration: Duration::from_millis(100),
    })
    .await?;
    codebuild.project(project, Scenario::Tests { cases, fails: false });
    codebuild.project("web-unmade-build", Scenario::UnmadeReport);
    let aws = sluice_integration::aws_config_with(
        &sluice_integration::moto().endpoint,
        &[("codebuild", &codebuild.endpoint)],
    )
    .await;
    Ok((codebuild, CodeBuildStarter::new(aws_sdk_codebuild::Client::new(&aws))))
}

/// Starts a build of `project` and waits until CodeBuild reports it ended.
async fn finished_build(starter: &CodeBuildStarter, project: &str) -> Result<String> {
    use sluice::contract::ports::{BuildRequest, BuildStarter};
    let environment = std::collections::BTreeMap::new();
    let request = BuildRequest {
        project,
        source_version: HEAD,
        environment: &environment,
        idempotency_token: "t",
        timeout_minutes: Some(30),
    };
    let build_id = starter.start_build(&request).await?;
    let deadline = std::time::Instant::now() + WAIT;
    while starter.build_report(&build_id).await?.is_none_or(|report| report.status == "IN_PROGRESS") {
        anyhow::ensure!(std::time::Instant::now() < deadline, "build {build_id} did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(build_id)
}

#[tokio::test]
async fn a_test_builds_report_is_read_as_codebuild_documents_it_counts_and_at_most_ten_failed_cases() -> Result<()> {
    use sluice::contract::ports::TestReports;
    // GIVEN a test project whose report has 3 passed, 1 skipped, 12 failed and 1 errored case
    let mut cases = vec![
        TestCase::new("CheckoutTest", "pays", "SUCCEEDED", None),
        TestCase::new("CheckoutTest", "refunds", "SUCCEEDED", None),
        TestCase::new("SearchTest", "finds", "SUCCEEDED", None),
        TestCase::new("SearchTest", "by_sku", "SKIPPED", Some("not seeded")),
        TestCase::new("LoginTest", "times_out", "ERROR", Some("connection reset")),
    ];
    cases.extend(
        (1..=12).map(|k| TestCase::new("CartTest", &format!("case_{k:02}"), "FAILED", Some("expected 1, got 2"))),
    );
    let (_codebuild, starter) = test_project("web-e2e-build", cases).await?;
    // WHEN its build ends and sluice reads its reports
    let build_id = finished_build(&starter, "web-e2e-build").await?;
    let results = starter.test_results(&build_id).await?.context("the build made a test report")?;
    // THEN the counts are CodeBuild's, and the failed cases (FAILED first, then ERROR) at most ten, named with their
    // prefix
    assert_eq!((results.passed, results.failed, results.errors, results.skipped), (3, 12, 1, 1));
    assert_eq!(results.summary(), "3 passed, 12 failed, 1 error, 1 skipped");
    assert_eq!(results.failures.len(), sluice::pipeline::MAX_FAILED_TESTS);
    assert_eq!(results.failures[0].name, "CartTest.case_01");
    assert_eq!(results.failures[0].message.as_deref(), Some("expected 1, got 2"));
    Ok(())
}

#[tokio::test]
async fn a_build_without_test_reports_has_no_results_and_an_errored_case_is_named() -> Result<()> {
    use sluice::contract::ports::TestReports;
    let cases = vec![TestCase::new("LoginTest", "times_out", "ERROR", Some("connection reset"))];
    let (codebuild, starter) = test_project("web-e2e-build", cases).await?;
    let build_id = finished_build(&starter, "web-e2e-build").await?;
    let results = starter.test_results(&build_id).await?.context("a report")?;
    assert_eq!(results.failures.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["LoginTest.times_out"]);
    // A project that makes no report (the run's own build)
    codebuild.project("web-build", Scenario::FailIn("BUILD".into()));
    let plain = finished_build(&starter, "web-build").await?;
    assert_eq!(starter.test_results(&plain).await?, None);
    Ok(())
}

#[tokio::test]
async fn a_test_report_codebuild_could_not_make_is_told_as_such_never_read_as_no_report() -> Result<()> {
    use sluice::contract::ports::{ReportError, TestReports};
    let (_codebuild, starter) = test_project("web-e2e-build", Vec::new()).await?;
    let build_id = finished_build(&starter, "web-unmade-build").await?;
    match starter.test_results(&build_id).await {
        Err(ReportError::Unmade { report, status }) => {
            assert!(report.contains(":report/web-unmade-build-reports:"), "{report}");
            assert_eq!(status, "FAILED");
        }
        other => panic!("an unmade report must not read as {other:?}"),
    }
    Ok(())
}
