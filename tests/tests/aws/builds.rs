//! `CodeBuildStarter` against CodeBuild in moto, and the webhook secret from Secrets Manager in moto.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::{TimeDelta, Utc};
use sluice::adapters::{CodeBuildStarter, SecretsManagerWebhookSecret};
use sluice::contract::ports::WebhookSecretSource;
use sluice::contract::ports::{BuildRequest, BuildStartError, BuildStarter};
use sluice::github::webhook::{sign, verify_signature};
use sluice_integration::{Stack, unique};

#[tokio::test]
async fn a_build_starts_on_the_pushed_commit_and_its_arn_comes_back() -> Result<()> {
    let stack = Stack::create().await?;
    let project = unique("web-build");
    stack.create_build_project(&project).await?;
    let starter = CodeBuildStarter::new(aws_sdk_codebuild::Client::new(&stack.config));
    let environment = BTreeMap::from([("SLUICE_EXECUTION_ID".to_owned(), "web-d-1".to_owned())]);

    let build_id = starter
        .start_build(&BuildRequest {
            project: &project,
            source_version: "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b",
            environment: &environment,
            idempotency_token: "web-1-1",
            timeout_minutes: None,
        })
        .await?;

    assert!(build_id.starts_with("arn:aws:codebuild:us-east-1:"), "{build_id}");
    assert!(build_id.contains(&format!(":build/{project}:")), "{build_id}");
    let codebuild = aws_sdk_codebuild::Client::new(&stack.config);
    // BatchGetBuilds takes the build id (`project:uuid`), the ARN's last part.
    let id = build_id.split_once(":build/").map(|(_, id)| id).context("an ARN")?;
    let builds = codebuild.batch_get_builds().ids(id).send().await?;
    let build = builds.builds().first().context("CodeBuild knows the build")?;
    assert_eq!(build.source_version(), Some("9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b"));
    assert_eq!(build.project_name(), Some(project.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_build_of_a_project_that_does_not_exist_is_refused_for_good() -> Result<()> {
    let stack = Stack::create().await?;
    let starter = CodeBuildStarter::new(aws_sdk_codebuild::Client::new(&stack.config));
    let environment = BTreeMap::new();
    let result = starter
        .start_build(&BuildRequest {
            project: "no-such-project",
            source_version: "abc",
            environment: &environment,
            idempotency_token: "t",
            timeout_minutes: None,
        })
        .await;
    match result {
        Err(BuildStartError::Refused { message, .. }) => {
            assert!(message.starts_with("ResourceNotFoundException"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_webhook_secret_and_for_a_grace_period_after_a_rotation_the_previous_one_verify_deliveries() -> Result<()> {
    let stack = Stack::create().await?;
    let client = aws_sdk_secretsmanager::Client::new(&stack.config);
    let name = unique("sluice/github-webhook");
    client.create_secret().name(&name).secret_string("first secret").send().await?;
    let grace = TimeDelta::hours(24);
    let source = SecretsManagerWebhookSecret::new(client.clone(), &name, grace);

    let secrets = source.read().await?;
    let body = b"{\"zen\":\"Keep it logically awesome.\"}";
    let now = Utc::now();
    assert!(verify_signature(&secrets, body, Some(&sign("first secret", body)), now).is_ok());
    assert!(verify_signature(&secrets, body, Some(&sign("second secret", body)), now).is_err());

    // Rotated: the new value is AWSCURRENT, the old one AWSPREVIOUS; the old one verifies for the grace period
    // after the new one's CreatedDate, and not after.
    client.put_secret_value().secret_id(&name).secret_string("second secret").send().await?;
    let rotating = source.read().await?;
    assert!(verify_signature(&rotating, body, Some(&sign("second secret", body)), now).is_ok());
    assert!(verify_signature(&rotating, body, Some(&sign("first secret", body)), now).is_ok());
    assert!(verify_signature(&rotating, body, Some(&sign("third secret", body)), now).is_err());
    let after_grace = now + grace + TimeDelta::minutes(5);
    assert!(verify_signature(&rotating, body, Some(&sign("first secret", body)), after_grace).is_err());
    assert!(verify_signature(&rotating, body, Some(&sign("second secret", body)), after_grace).is_ok());
    Ok(())
}

#[tokio::test]
async fn a_missing_secret_is_an_error_that_names_it() -> Result<()> {
    let stack = Stack::create().await?;
    let client = aws_sdk_secretsmanager::Client::new(&stack.config);
    let source = SecretsManagerWebhookSecret::new(client, "sluice/nope", TimeDelta::hours(24));
    let error = source.read().await.expect_err("no such secret");
    assert!(error.to_string().starts_with("secret sluice/nope could not be read"), "{error}");
    Ok(())
}
