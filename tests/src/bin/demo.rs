//! `make demo`: a push to deployment, locally, through sluice's real functions.
//!
//! moto_server plays DynamoDB, EventBridge (the rules of template.yaml, each targeting an SQS queue), S3, Secrets
//! Manager and SQS. The sandbox plays the rest of AWS: the webhook function is served on a loopback function URL,
//! CodeBuild's builds run and report as CodeBuild does, and each rule's target feeds its function. The approval
//! function mails the request through SNS (moto) and serves its page on a loopback function URL; the demo opens the
//! link as a mail scanner would (GET: nothing changes), then decides through the page's form as a person would
//! (`make demo APPROVE=manual` prints the link and waits for you to decide in a browser). The demo plays GitHub
//! (signed pushes over HTTP) and, until the deploy function is built, CodeDeploy.

#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::codebuild::CodeBuildEvent;
use serde_json::Value;
use sluice::adapters::DynamoDbStore;
use sluice::definitions::Definitions;
use sluice::github::sign;
use sluice::pipeline::{Event, ExecutionId, Stage, Status};
use sluice::ports::{DefinitionsStore, PipelineStore};
use sluice::usecases::{Handled, Input, handle};
use sluice_integration::{
    Stack, Template, approval_link, form_token, moto, post, request, sns_messages, workspace_root,
};
use sluice_sandbox::codebuild::{CodeBuildSandbox, Outputs, Scenario};
use sluice_sandbox::function_url::serve;
use sluice_sandbox::pump::pump;

const PUSH: &[u8] = include_bytes!("../../../shared/tests/fixtures/github-push.json");
const SECRET: &str = "demo-webhook-secret-0123456789abcdef";
/// The commit the pushed payload leaves `main` at.
const HEAD: &str = "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b";

fn show(what: &str, status: u16, body: &Value) {
    println!("  {what}\n    ← {status} {body}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    println!("sluice demo: a push to deployment, locally, through sluice's real functions\n");
    let stack = Stack::create().await.context("creating the stack in moto")?;
    let rules: Vec<String> = Template::load()?.rules()?.into_iter().map(|r| r.logical_id).collect();
    println!("  local AWS      moto_server at {}", moto().endpoint);
    println!("  table, bus     {} · {} (rules from template.yaml: {})", stack.table, stack.bus, rules.join(", "));

    // Pipelines, as `sluice publish infra/pipelines.example.toml` publishes them.
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let text = std::fs::read_to_string(workspace_root().join("infra/pipelines.example.toml"))?
        .replace("arn:aws:sns:eu-west-1:123456789012:web-approvals", &stack.approval_topic);
    Definitions::parse("infra/pipelines.example.toml", &text)?;
    let revision = store.publish(&text, None, chrono::Utc::now()).await?;
    println!("  definitions    infra/pipelines.example.toml, revision {revision}");

    // The CodeBuild sandbox, writing artifacts to S3 and events to the default bus.
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.config).force_path_style(true).build());
    s3.create_bucket().bucket("sluice-demo-artifacts").send().await?;
    let sandbox = CodeBuildSandbox::start(Outputs {
        s3: s3.clone(),
        bucket: "sluice-demo-artifacts".into(),
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        duration: Duration::from_millis(800),
    })
    .await?;
    sandbox.project("web-build", Scenario::Succeed);
    sandbox.project("api-build", Scenario::Succeed);
    // Every sluice client speaks to moto, but CodeBuild's, which speaks to the sandbox: as AWS_ENDPOINT_URL and
    // AWS_ENDPOINT_URL_CODEBUILD would set them on a laptop.
    let aws = sluice_integration::aws_config_with(&moto().endpoint, &[("codebuild", &sandbox.endpoint)]).await;
    println!("  CodeBuild      sandbox at {}", sandbox.endpoint);

    // The webhook function on a function URL, wired by its own `from_aws`, as its main.rs wires it.
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&stack.config);
    secrets_manager.create_secret().name("sluice/github-webhook").secret_string(SECRET).send().await?;
    let config = github_webhook::handler::Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_WEBHOOK_SECRET" => Some("sluice/github-webhook".to_owned()),
        _ => None,
    })?;
    let webhook = Arc::new(github_webhook::handler::AwsApp::from_aws(&aws, &config).await?);
    let url = serve("github-webhook", move |request| {
        let app = Arc::clone(&webhook);
        async move { github_webhook::handler::respond(&app, request, chrono::Utc::now()).await }
    })
    .await?;
    println!("  webhook        {} (function URL on loopback)", url.url);

    // The build-events function, fed by the CodeBuild rule's target.
    let build_events = Arc::new(build_events::handler::AwsApp::from_aws(&aws, &config.common));
    let effects = sluice::adapters::stage_effects(&aws, &config.common.event_bus);
    let _pump =
        pump(stack.sqs.clone(), stack.queue("CodeBuildStateChangeRule")?.to_owned(), move |event: CodeBuildEvent| {
            let app = Arc::clone(&build_events);
            async move {
                let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
                build_events::handler::on_event(&app, event, chrono::Utc::now()).await
            }
        });
    println!("  build-events   fed by CodeBuildStateChangeRule");

    // The approval function: its page on a function URL, its requests sent on `Approval Requested`.
    let approval_config = approval::handler::Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        _ => None,
    })?;
    let approval_app = Arc::new(approval::handler::AwsApp::from_aws(&aws, &approval_config));
    let app = Arc::clone(&approval_app);
    let approval_url = serve("approval", move |request| {
        let app = Arc::clone(&app);
        async move { approval::handler::respond(&app, request, chrono::Utc::now()).await }
    })
    .await?;
    let _ = approval_app.approval_url.set(approval_url.url.clone());
    let app = Arc::clone(&approval_app);
    let _approvals = pump(stack.sqs.clone(), stack.queue("ApprovalRequestedRule")?.to_owned(), move |event: Value| {
        let app = Arc::clone(&app);
        async move { approval::handler::on_event(&app, &event, chrono::Utc::now()).await }
    });
    println!("  approval       {} (function URL on loopback), fed by ApprovalRequestedRule\n", approval_url.url);

    println!("GitHub (played by the demo) delivers a signed push of acme/web main:");
    let signature = sign(SECRET, PUSH);
    let headers = |delivery: &'static str, signature: &str| {
        vec![
            ("content-type", "application/json".to_owned()),
            ("x-github-event", "push".to_owned()),
            ("x-github-delivery", delivery.to_owned()),
            ("x-hub-signature-256", signature.to_owned()),
        ]
    };
    let send = |headers: Vec<(&'static str, String)>| {
        let url = url.url.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&url, &headers, PUSH.to_vec()).await
        }
    };
    let (status, body) = send(headers("72d3162e-cc78-11e3-81ab-4c9367dc0958", &signature)).await?;
    show("POST push (delivery 72d3162e…)", status, &body);
    let (status, body) = send(headers("72d3162e-cc78-11e3-81ab-4c9367dc0958", &signature)).await?;
    show("POST the same delivery again", status, &body);
    let (status, body) = send(headers("0b989ba4-242f-11e5-81e1-c7b6966d2516", &sign("guessed", PUSH))).await?;
    show("POST a push signed with the wrong secret", status, &body);

    let execution_id = ExecutionId("web-72d3162e-cc78-11e3-81ab-4c9367dc0958".into());
    println!("\nCodeBuild (sandbox) builds {}; its events reach build-events through the rule:", &HEAD[..7]);
    let email = wait_for_email(&stack.approval_topic).await?;
    println!("\nThe approval function mailed the approvers (SNS topic {}), as moto recorded it:", stack.approval_topic);
    println!("  Subject: {}", email.0);
    for line in email.1.lines() {
        println!("  | {line}");
    }
    let link = approval_link(&email.1).context("no review link in the email")?;

    let status_of = |store: DynamoDbStore, id: ExecutionId| async move {
        store.execution(&id).await.map(|execution| execution.map(|execution| execution.status))
    };
    let (status, _, _) = request("GET", &link, &[("user-agent", "Mimecast-LinkScanner/1.0")], vec![]).await?;
    let now = describe(status_of(store.clone(), execution_id.clone()).await?);
    println!("\nA mail scanner fetches the link (GET): {status}; the run is still {now}");

    if std::env::var("APPROVE").is_ok_and(|how| how == "manual") {
        println!("\nOpen this link in a browser and decide (the demo waits up to 10 minutes):\n  {link}");
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        while status_of(store.clone(), execution_id.clone()).await? == Some(Status::Running(Stage::Approval)) {
            if std::time::Instant::now() > deadline {
                anyhow::bail!("nobody decided within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    } else {
        println!("A person opens it, types a name and a comment, and presses Approve (POST from the page):");
        let (_, _, page) = request("GET", &link, &[("user-agent", "Mozilla/5.0 (demo)")], vec![]).await?;
        let token = form_token(&page).context("no form on the review page")?;
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("form_token", &token)
            .append_pair("approver", "alice@example.com")
            .append_pair("comment", "ship it")
            .append_pair("decision", "approve")
            .finish();
        let headers = [("content-type", "application/x-www-form-urlencoded"), ("user-agent", "Mozilla/5.0 (demo)")];
        let (status, _, page) = request("POST", &link, &headers, form.clone().into_bytes()).await?;
        println!("  POST approve: {status} {}", heading(&page));
        let (status, _, page) = request("POST", &link, &headers, form.into_bytes()).await?;
        println!("  POST again:   {status} {}", heading(&page));
    }
    println!("  the run is now {}", describe(status_of(store.clone(), execution_id.clone()).await?));

    println!("\nCodeDeploy (played by the demo, which does not run the deployer yet):");
    let runner = effects.clone();
    for (what, event) in [
        (
            "CodeDeploy starts d-DEMO",
            Event::DeploymentStarted { execution_id: execution_id.clone(), deployment_id: "d-DEMO".into() },
        ),
        (
            "CodeDeploy reports success",
            Event::DeploymentSucceeded { execution_id: execution_id.clone(), deployment_id: "d-DEMO".into() },
        ),
    ] {
        let input =
            Input { pipeline: "web", mode: Default::default(), event: &event, receipt: None, now: chrono::Utc::now() };
        let handled = handle(&store, &runner, input).await?;
        println!(
            "  {what}: {}",
            if handled == Handled::Applied { "applied".to_owned() } else { format!("{handled:?}") }
        );
    }
    for rule in ["DeploymentRequestedRule", "ExecutionFinishedRule"] {
        let messages = stack.receive(stack.queue(rule)?, 1, Duration::from_secs(10)).await?;
        let kinds: Vec<String> = messages.iter().map(|m| m["detail-type"].as_str().unwrap_or("?").to_owned()).collect();
        println!("  {rule} received: {}", kinds.join(", "));
    }

    println!("\nHistory of web, newest first (DynamoDB, index `history`):");
    for execution in store.history("web", 10).await? {
        let build = execution.build.as_ref();
        println!(
            "  #{} {} {} {} — build {} image {}",
            execution.seq,
            execution.id,
            &execution.source.commit[..7],
            execution.status,
            build.and_then(|b| b.build_id.as_deref()).unwrap_or("-"),
            build.and_then(|b| b.image_uri.as_deref()).unwrap_or("-"),
        );
    }
    println!("\nDone. Everything ran on loopback; moto_server and the sandbox stop with this program.");
    Ok(())
}

/// The first approval email SNS recorded on `topic`: subject and text.
async fn wait_for_email(topic: &str) -> Result<(String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((subject, message)) = sns_messages(topic).await?.into_iter().next() {
            let message: Value = serde_json::from_str(&message).context("the SNS message is not JSON")?;
            let text = message["email"].as_str().context("no email form in the SNS message")?.to_owned();
            return Ok((subject.unwrap_or_default(), text));
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("no approval email was published within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn describe(status: Option<Status>) -> String {
    status.map_or_else(|| "unknown".to_owned(), |status| status.to_string())
}

/// The page's first heading.
fn heading(html: &str) -> &str {
    let start = html.find("<h1>").map_or(0, |i| i + 4);
    let end = html[start..].find("</h1>").map_or(html.len(), |i| i + start);
    &html[start..end]
}
