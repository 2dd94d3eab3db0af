//! `make demo`: one pipeline's runs through sluice's core against a local AWS.
//!
//! moto_server plays DynamoDB and EventBridge (with the rules of template.yaml, each targeting an SQS queue). This
//! script plays everything outside: GitHub's pushes, CodeBuild's results, the approver's clicks and CodeDeploy's
//! outcome. sluice's own use case, state machine and AWS adapters do the rest, as they will in Lambda.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use sluice::adapters::DynamoDbStore;
use sluice::definitions::Definitions;
use sluice::pipeline::{ApprovalDecision, BuildOutputs, Effect, Event, ExecutionId, Plan, SourceFacts};
use sluice::ports::{DefinitionsStore, PipelineStore, ReceiptKey};
use sluice::usecases::{EffectError, EffectRunner, Handled, Input, handle};
use sluice_integration::{BusRunner, Stack, Template, moto, workspace_root};

/// Prints each effect as it is carried out, then carries it out.
struct Narrated(BusRunner);

impl EffectRunner for Narrated {
    async fn run(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        let line = match effect {
            Effect::Publish(event) => {
                format!("published “{}” for {} on the bus", event.detail_type(), event.execution_id())
            }
            Effect::StartBuild { project, source_version, .. } => {
                let commit = &source_version[..7.min(source_version.len())];
                format!("StartBuild {project} at {commit} (CodeBuild's part is played by this demo)")
            }
            Effect::ReportHookStatus { hook_execution_id, status, .. } => {
                format!(
                    "PutLifecycleEventHookExecutionStatus {hook_execution_id}: {status:?} (CodeDeploy played by this demo)"
                )
            }
        };
        println!("         ↳ {line}");
        self.0.run(id, effect).await
    }
}

/// The commits the demo's pushes carry.
const COMMITS: [&str; 3] = [
    "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    "b81e07d3c5a4f2e1d0c9b8a7f6e5d4c3b2a19087",
    "e9c4b2a7d1f0e3c6b5a4d3c2b1a0f9e8d7c6b5a4",
];

fn commit(n: u8) -> String {
    COMMITS[usize::from(n.saturating_sub(1)) % COMMITS.len()].to_owned()
}

fn push(execution: &str, n: u8, message: &str, plan: &Plan) -> Event {
    Event::Triggered {
        execution_id: ExecutionId::from(execution),
        source: SourceFacts {
            repository: "acme/web".into(),
            commit: commit(n),
            git_ref: "refs/heads/main".into(),
            pusher: "octocat".into(),
            delivery_id: format!("delivery-{n}"),
            message: message.into(),
            compare_url: String::new(),
        },
        plan: Box::new(plan.clone()),
        mode: sluice::definitions::ExecutionMode::Superseded,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let start: DateTime<Utc> = "2026-11-23T09:00:00Z".parse()?;
    println!("sluice demo: a pipeline's runs through sluice's core, against a local AWS\n");
    println!("  local AWS       moto_server at {}", moto().endpoint);
    let stack = Stack::create().await.context("creating the stack in moto")?;
    let rules: Vec<String> = Template::load()?.rules()?.into_iter().map(|r| r.logical_id).collect();
    println!("  DynamoDB table  {}", stack.table);
    println!("  event bus       {} (rules from template.yaml: {})", stack.bus, rules.join(", "));

    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let text = std::fs::read_to_string(workspace_root().join("infra/pipelines.example.toml"))?;
    Definitions::parse("infra/pipelines.example.toml", &text)?;
    let revision = store.publish(&text, None, start).await?;
    let published = store.current().await?.context("definitions were just published")?;
    let definitions = Definitions::parse("published definitions", &published.text)?;
    let web = definitions.get("web").context("the example defines web")?;
    println!("  definitions     infra/pipelines.example.toml published as revision {revision}");
    println!(
        "  pipeline        web: {} → build {} → approval by email → {} deploy, mode {:?}\n",
        web.source.repository,
        web.build.project,
        web.deploy.strategy(),
        web.mode
    );
    let plan = Plan::from(web);
    let runner = Narrated(BusRunner::new(&stack));

    let image = |e: &str| format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:{e}");
    let built = |e: &str| Event::BuildSucceeded {
        execution_id: ExecutionId::from(e),
        build_id: format!("build-{e}"),
        outputs: BuildOutputs { image_uri: image(e), artifacts: Some(format!("s3://web-artifacts/{e}.zip")) },
    };
    let decided = |e: &str, decision| Event::ApprovalDecided {
        execution_id: ExecutionId::from(e),
        decision,
        approver: "alice@example.com".into(),
        comment: Some(if decision == ApprovalDecision::Approved { "ship it" } else { "not on a Friday" }.into()),
    };
    let steps: Vec<(&str, Event, Option<ReceiptKey>)> = vec![
        (
            "GitHub: push of 4f2a9c1 “Add search”",
            push("e1", 1, "Add search", &plan),
            Some(ReceiptKey::delivery("delivery-1", "web")),
        ),
        (
            "GitHub: push of b81e07d “Fix typo”",
            push("e2", 2, "Fix typo", &plan),
            Some(ReceiptKey::delivery("delivery-2", "web")),
        ),
        (
            "GitHub: push of e9c4b2a “Faster search”",
            push("e3", 3, "Faster search", &plan),
            Some(ReceiptKey::delivery("delivery-3", "web")),
        ),
        (
            "GitHub: the first push, delivered again",
            push("e1-again", 1, "Add search", &plan),
            Some(ReceiptKey::delivery("delivery-1", "web")),
        ),
        ("CodeBuild: e1's build SUCCEEDED", built("e1"), Some(ReceiptKey::event("codebuild-e1"))),
        ("CodeBuild: the same event, delivered again", built("e1"), Some(ReceiptKey::event("codebuild-e1"))),
        ("alice approves e1 from her inbox", decided("e1", ApprovalDecision::Approved), None),
        (
            "CodeDeploy: e1's deployment d-E1 started",
            Event::DeploymentStarted { execution_id: ExecutionId::from("e1"), deployment_id: "d-E1".into() },
            None,
        ),
        (
            "CodeDeploy: AfterAllowTestTraffic hook, check passed",
            Event::HookCompleted {
                execution_id: ExecutionId::from("e1"),
                deployment_id: "d-E1".into(),
                lifecycle_event: "AfterAllowTestTraffic".into(),
                hook_execution_id: "hook-1".into(),
                passed: true,
                detail: Some("GET /health → 200".into()),
            },
            None,
        ),
        (
            "CodeDeploy: deployment d-E1 SUCCEEDED",
            Event::DeploymentSucceeded { execution_id: ExecutionId::from("e1"), deployment_id: "d-E1".into() },
            None,
        ),
        ("CodeBuild: e3's build SUCCEEDED", built("e3"), Some(ReceiptKey::event("codebuild-e3"))),
        ("alice rejects e3", decided("e3", ApprovalDecision::Rejected), None),
    ];

    for (minute, (what, event, receipt)) in steps.iter().enumerate() {
        let now = start + TimeDelta::minutes(2 * minute as i64);
        println!("  {}  {what}", now.format("%H:%M"));
        let answer = serde_json::json!({ "execution": event.execution_id().to_string() });
        let input =
            Input { pipeline: "web", mode: web.mode, event, receipt: receipt.clone().map(|key| (key, answer)), now };
        match handle(&store, &runner, input).await? {
            Handled::Applied => {}
            Handled::Ignored(reason) => println!("         ↳ nothing to do ({reason:?})"),
            Handled::Refused(error) => println!("         ↳ refused: {error}"),
            Handled::Duplicate { answer } => {
                println!("         ↳ already handled; answered as the first time: {answer}")
            }
        }
        let state = store.load("web").await?.context("stored")?.value;
        let active: Vec<String> = state.active().map(|e| format!("{} {}", e.id, e.status)).collect();
        if !active.is_empty() {
            println!("         ↳ now: {}", active.join(", "));
        }
    }

    println!("\n  What reached each rule's target queue (EventBridge → SQS):");
    for rule in ["ApprovalRequestedRule", "DeploymentRequestedRule", "ExecutionFinishedRule"] {
        let messages = stack.receive(stack.queue(rule)?, 10, Duration::from_secs(2)).await?;
        let seen: Vec<String> = messages
            .iter()
            .map(|m| {
                let outcome = m["detail"]["outcome"].as_str().map(|o| format!(" {o}")).unwrap_or_default();
                format!("{}{outcome}", m["detail"]["execution_id"].as_str().unwrap_or("?"))
            })
            .collect();
        println!("    {rule:<24} {}", seen.join(", "));
    }

    println!("\n  History of web, newest first (DynamoDB, index `history`):");
    for execution in store.history("web", 10).await? {
        let reason = execution.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        println!(
            "    #{} {:<3} {} {:<11}{reason}",
            execution.seq,
            execution.id,
            &execution.source.commit[..7],
            execution.status.to_string()
        );
    }
    println!("\nDone. Everything ran on loopback; moto_server stops with this program.");
    Ok(())
}
