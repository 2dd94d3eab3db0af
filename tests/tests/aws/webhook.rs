//! The GitHub webhook function, hosted by the sandbox on a loopback function URL, with every real adapter against
//! moto: a signed push over HTTP becomes an execution in DynamoDB and a build in CodeBuild on the pushed commit.

use std::sync::Arc;

use anyhow::{Context, Result};
use github_webhook::handler::{AwsApp, Config, respond};
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{DefinitionsStore, PipelineStore};
use sluice::github::webhook::sign;
use sluice::pipeline::{ExecutionId, Stage, Status};
use sluice_integration::{Stack, post, unique, workspace_root};
use sluice_sandbox::function_url::{FunctionUrl, serve};

/// GitHub's push fixture, pushed now (a push older than the receipt window is refused).
pub static PUSH: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    sluice::contract::testing::pushed_at(
        include_bytes!("../../../shared/tests/fixtures/github-push.json"),
        chrono::Utc::now(),
    )
});
const HEAD: &str = "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b";

pub struct Deployed {
    pub stack: Stack,
    pub store: DynamoDbStore,
    pub project: String,
    pub secret: String,
    pub url: FunctionUrl,
    /// The webhook's configuration; its `common` part is every function's.
    pub config: Config,
}

/// The stack in moto with the example pipelines published, a CodeBuild project for `web`, the webhook secret in
/// Secrets Manager, and the webhook function served as a function URL, wired by its own `from_aws`.
pub async fn deployed() -> Result<Deployed> {
    let stack = Stack::create().await?;
    let project = unique("web-build");
    stack.create_build_project(&project).await?;
    let config = stack.config.clone();
    deployed_with(stack, project, &config).await
}

/// As [`deployed`], with the stack made, `project` known to CodeBuild, and the function wired on `aws` (moto, with
/// CodeBuild at the sandbox's endpoint, say).
pub async fn deployed_with(stack: Stack, project: String, aws: &aws_config::SdkConfig) -> Result<Deployed> {
    deployed_configured(stack, project, aws, &[]).await
}

/// As [`deployed_with`], the function's environment having `more` variables besides the table, bus and secret.
pub async fn deployed_configured(
    stack: Stack,
    project: String,
    aws: &aws_config::SdkConfig,
    more: &[(&str, String)],
) -> Result<Deployed> {
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let example = std::fs::read_to_string(workspace_root().join("infra/pipelines.example.toml"))?;
    store.publish(&example.replace("\"web-build\"", &format!("\"{project}\"")), None, chrono::Utc::now()).await?;
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&stack.config);
    let secret_name = unique("sluice/webhook");
    let secret = "6d1f0c2e9a8b7c4d5e3f2a1b0c9d8e7f6a5b4c3d".to_owned();
    secrets_manager.create_secret().name(&secret_name).secret_string(&secret).send().await?;

    let config = Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_WEBHOOK_SECRET" => Some(secret_name.clone()),
        other => more.iter().find(|(name, _)| *name == other).map(|(_, value)| value.clone()),
    })?;
    let app = Arc::new(AwsApp::from_aws(aws, &config).await?);
    let url = serve("github-webhook", move |request| {
        let app = Arc::clone(&app);
        async move { respond(&app, request, chrono::Utc::now()).await }
    })
    .await?;
    Ok(Deployed { stack, store, project, secret, url, config })
}

pub async fn deliver(deployed: &Deployed, delivery: &str, signature: Option<&str>) -> Result<(u16, serde_json::Value)> {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("user-agent", "GitHub-Hookshot/5b1e2f0"),
        ("x-github-event", "push"),
        ("x-github-delivery", delivery),
    ];
    if let Some(signature) = signature {
        headers.push(("x-hub-signature-256", signature));
    }
    post(&deployed.url.url, &headers, PUSH.to_vec()).await
}

#[tokio::test]
async fn a_signed_push_over_http_records_the_execution_and_builds_the_pushed_commit() -> Result<()> {
    let deployed = deployed().await?;
    let signature = sign(&deployed.secret, &PUSH);

    let (status, body) = deliver(&deployed, "0b989ba4-242f-11e5-81e1-c7b6966d2516", Some(&signature)).await?;

    assert_eq!(status, 202, "{body}");
    let execution_id = "web-0b989ba4-242f-11e5-81e1-c7b6966d2516";
    assert_eq!(body["executions"][0]["execution_id"], execution_id);
    let execution = deployed.store.execution(&ExecutionId(execution_id.into())).await?.context("in DynamoDB")?;
    assert_eq!(execution.status, Status::Running(Stage::BUILD));
    assert_eq!(execution.source.commit, HEAD);
    let build_arn = execution.build.and_then(|b| b.build_id).context("the build id was recorded")?;

    let codebuild = aws_sdk_codebuild::Client::new(&deployed.stack.config);
    let ids = codebuild.list_builds_for_project().project_name(&deployed.project).send().await?;
    assert_eq!(ids.ids().len(), 1, "one build");
    assert!(build_arn.ends_with(&ids.ids()[0]), "{build_arn} is the build CodeBuild started");
    let builds = codebuild.batch_get_builds().ids(&ids.ids()[0]).send().await?;
    assert_eq!(builds.builds()[0].source_version(), Some(HEAD));
    Ok(())
}

#[tokio::test]
async fn a_redelivery_over_http_gets_the_same_answer_and_no_second_build() -> Result<()> {
    let deployed = deployed().await?;
    let signature = sign(&deployed.secret, &PUSH);
    let first = deliver(&deployed, "d-redelivered", Some(&signature)).await?;
    let again = deliver(&deployed, "d-redelivered", Some(&signature)).await?;
    assert_eq!(first.0, 202);
    assert_eq!(again, first);
    let codebuild = aws_sdk_codebuild::Client::new(&deployed.stack.config);
    let ids = codebuild.list_builds_for_project().project_name(&deployed.project).send().await?;
    assert_eq!(ids.ids().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_forged_push_over_http_is_refused_and_leaves_no_trace() -> Result<()> {
    let deployed = deployed().await?;
    let forged = sign("not the secret", &PUSH);
    let (status, body) = deliver(&deployed, "d-forged", Some(&forged)).await?;
    assert_eq!(status, 401, "{body}");
    let (status, _) = deliver(&deployed, "d-unsigned", None).await?;
    assert_eq!(status, 401);
    assert!(deployed.store.load("web").await?.is_none(), "nothing recorded");
    let codebuild = aws_sdk_codebuild::Client::new(&deployed.stack.config);
    let ids = codebuild.list_builds_for_project().project_name(&deployed.project).send().await?;
    assert!(ids.ids().is_empty(), "nothing built");
    Ok(())
}
