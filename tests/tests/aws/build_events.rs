//! From a push to an approval request, through every real adapter and EventBridge rule: GitHub's push over HTTP
//! starts a build in CodeBuild (moto); the build's state change, published on the (stand-in) default bus, reaches
//! the build-events function through the rule of template.yaml; its artifacts are read from S3 (moto); the approval
//! request reaches the approval rule's target.

use std::time::Duration;

use anyhow::{Context, Result};
use build_events::handler::{AwsApp, on_event};
use serde_json::{Value, json};
use sluice::contract::ports::PipelineStore;
use sluice::github::webhook::sign;
use sluice::pipeline::{ExecutionId, Stage, Status};
use sluice_integration::unique;

use crate::webhook::{PUSH, deliver, deployed};

const STATE_CHANGE: &str = include_str!("../../../shared/tests/fixtures/example-codebuild-state-change.json");
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_pushed_commit_whose_build_succeeds_waits_for_approval_with_its_image() -> Result<()> {
    let deployed = deployed().await?;
    let stack = &deployed.stack;
    let (status, body) = deliver(&deployed, "d-build-events", Some(&sign(&deployed.secret, &PUSH))).await?;
    assert_eq!(status, 202, "{body}");
    let execution_id = ExecutionId("web-d-build-events".into());
    let build_arn = deployed.store.execution(&execution_id).await?.and_then(|e| e.build?.build_id).context("built")?;

    // The build leaves its outputs in S3, as its buildspec says.
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.config).force_path_style(true).build());
    let bucket = unique("artifacts");
    s3.create_bucket().bucket(&bucket).send().await?;
    // The project's artifacts namespace is BUILD_ID: the build's own folder.
    let uuid = build_arn.rsplit(':').next().context("a build id")?;
    let prefix = format!("web/{uuid}");
    for (name, content) in [
        (
            "imageDetail.json",
            r#"{"ImageURI":"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091"}"#,
        ),
        ("taskdef.json", r#"{"family":"web","containerDefinitions":[{"name":"web","image":"<IMAGE1_NAME>"}]}"#),
        ("appspec.yaml", include_str!("../../../infra/sample-app/appspec.yaml")),
    ] {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("{prefix}/{name}"))
            .body(content.as_bytes().to_vec().into())
            .send()
            .await?;
    }

    // CodeBuild's SUCCEEDED event for that build (AWS's sample, with this build's facts), on the default bus.
    let mut detail: Value = serde_json::from_str::<Value>(STATE_CHANGE)?["detail"].clone();
    detail["build-id"] = json!(build_arn);
    detail["project-name"] = json!(deployed.project);
    detail["additional-information"]["artifact"]["location"] = json!(format!("arn:aws:s3:::{bucket}/{prefix}"));
    detail["additional-information"]["environment"]["environment-variables"] = json!([
        { "name": "SLUICE_EXECUTION_ID", "type": "PLAINTEXT", "value": execution_id.0 },
        { "name": "SLUICE_PIPELINE", "type": "PLAINTEXT", "value": "web" }
    ]);
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(&stack.default_bus)
        .source("aws.codebuild")
        .detail_type("CodeBuild Build State Change")
        .resources(&build_arn)
        .detail(detail.to_string())
        .build();
    stack.eventbridge.put_events().entries(entry).send().await?;

    // The rule delivers it; the function handles what it delivers.
    let delivered =
        stack.receive(stack.queue_to("BuildEventsFunction", "CodeBuild Build State Change")?, 1, WAIT).await?;
    assert_eq!(delivered.len(), 1);
    let event = delivered[0].clone();
    let app = AwsApp::from_aws(&stack.config, &deployed.config.common);
    let lambda_event = || lambda_runtime::LambdaEvent::new(event.clone(), lambda_runtime::Context::default());
    on_event(&app, lambda_event(), chrono::Utc::now()).await?;

    let execution = deployed.store.execution(&execution_id).await?.context("stored")?;
    assert_eq!(execution.status, Status::Running(Stage::APPROVAL));
    let build = execution.build.context("build facts")?;
    assert_eq!(
        build.image_uri.as_deref(),
        Some(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091"
        )
    );
    let requests = stack.receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, WAIT).await?;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0]["detail"]["execution_id"], execution_id.0);
    assert_eq!(
        requests[0]["detail"]["image_uri"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091"
    );

    // EventBridge may deliver the same event again: nothing moves twice.
    on_event(&app, lambda_event(), chrono::Utc::now()).await?;
    assert!(
        stack
            .receive(stack.queue_to("ApprovalRequestsFunction", "Approval Requested")?, 1, Duration::from_secs(1))
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn ecr_answers_the_digest_a_tag_names_and_nothing_for_a_tag_or_repository_it_does_not_have() -> Result<()> {
    use sluice::adapters::EcrImages;
    use sluice::contract::ports::ImageRegistry;
    use sluice::deploy::image::{EcrImage, ImageRef};
    let stack = sluice_integration::Stack::create().await?;
    let ecr = aws_sdk_ecr::Client::new(&stack.config);
    let repository = unique("web");
    ecr.create_repository().repository_name(&repository).send().await?;
    let layer = "sha256:1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988";
    let media = "application/vnd.docker.distribution.manifest.v2+json";
    let manifest = json!({ "schemaVersion": 2, "mediaType": media, "layers": [{ "digest": layer }] }).to_string();
    let pushed = ecr.put_image().repository_name(&repository).image_tag("v1").image_manifest(manifest).send().await?;
    let digest = pushed.image().and_then(|i| i.image_id()).and_then(|id| id.image_digest()).context("a digest")?;
    let images = EcrImages::new(ecr.clone());
    let image = |uri: &str| match ImageRef::parse(uri) {
        ImageRef::EcrTag(image) => Ok::<EcrImage, anyhow::Error>(image),
        other => anyhow::bail!("{uri} read as {other:?}"),
    };

    let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let found = images.digest(&image(&format!("{host}/{repository}:v1"))?).await?;
    assert_eq!(found.as_deref(), Some(digest));
    assert_eq!(images.digest(&image(&format!("{host}/{repository}:v2"))?).await?, None);
    assert_eq!(images.digest(&image(&format!("{host}/{}:v1", unique("gone")))?).await?, None);
    Ok(())
}
