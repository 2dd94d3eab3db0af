//! The whole deploy stage through sluice's real functions: the deployer fed by `DeploymentRequestedRule`, the hooks
//! function invoked by the CodeDeploy sandbox for each lifecycle hook the AppSpec names, and deploy-events fed by
//! `DeploymentStateChangeRule` from the CodeDeploy and ECS sandboxes' events. DynamoDB, S3, EventBridge and SQS are
//! moto's; the checks hit the sandbox's sample app through its load balancer listeners.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sluice::adapters::{DynamoDbStore, EventBridgePublisher};
use sluice::contract::ports::PipelineStore;
use sluice::contract::testing::RecordingRunner;
use sluice::definitions::{BlueGreen, Check, DeployTarget, EcsNative, ExecutionMode, TrafficShift};
use sluice::pipeline::{EffectKind, Execution, ExecutionId, Status};
use sluice::usecases::{Announcer, flush};
use sluice_integration::wiring::handler;
use sluice_integration::{BuiltRun, Stack, aws_config_with, built, moto};
use sluice_sandbox::codedeploy::{CodeDeploySandbox, Settings};
use sluice_sandbox::ecs::{EcsSandbox, Events, Rollout};
use sluice_sandbox::pump::Pump;
use sluice_sandbox::sample_app::SampleApp;

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sample-app@sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";
const TASKDEF: &str = include_str!("../../../infra/sample-app/taskdef.json");
const APPSPEC: &str = include_str!("../../../infra/sample-app/appspec.yaml");
const HOOKS: &str = "CodeDeployHook_sluice";
/// The role ECS assumes to invoke the hooks function (ECS-native strategies).
const HOOK_ROLE: &str = "arn:aws:iam::123456789012:role/sluice-ecs-hooks";

/// Everything one deploy-stage test runs on.
struct World {
    stack: Stack,
    store: DynamoDbStore,
    app: Arc<SampleApp>,
    codedeploy: CodeDeploySandbox,
    ecs: EcsSandbox,
    aws: aws_config::SdkConfig,
    /// The pipeline's notification topic, which the notifier tells each outcome.
    outcomes: String,
    /// What feeds the deployer, the notifier and the hooks function: every rule template.yaml routes to them.
    _pumps: Vec<Pump>,
    /// What feeds deploy-events: dropped, CodeDeploy's and ECS's deployment state changes are lost.
    deployment_events: Vec<Pump>,
}

/// How long the hooks function is given per invocation (its Lambda's time left), as the sandbox invokes it.
#[derive(Clone, Copy)]
struct HookTime(Duration);

async fn world(green_healthy: bool, rollout: Rollout, hook_time: HookTime) -> Result<World> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let app = SampleApp::serve(green_healthy).await?;
    let (codedeploy, ecs) = sandboxes(&stack, &app, rollout).await?;
    let aws = aws_config_with(&moto().endpoint, &[("codedeploy", &codedeploy.endpoint), ("ecs", &ecs.endpoint)]).await;
    let common = sluice::runtime::config::Common { table: stack.table.clone(), event_bus: stack.bus.clone() };

    // The hooks function, as CodeDeploy invokes it: the AppSpec names it by its function name.
    let hooks = Arc::new(hooks::handler::AwsApp::from_aws(&aws, &common)?);
    let checks = Arc::clone(&hooks);
    codedeploy.function(HOOKS, move |payload| {
        let hooks = Arc::clone(&hooks);
        async move {
            let now = chrono::Utc::now();
            if let Err(error) = hooks::handler::on_event(&hooks, &payload, Some(hook_time.0), now).await {
                eprintln!("hooks function failed: {error}");
            }
        }
    });
    // The hooks function, as ECS invokes it at an ECS-native deployment's lifecycle stages: its result is the answer.
    ecs.app(Arc::clone(&app));
    let stages = Arc::clone(&checks);
    ecs.function(HOOKS, move |payload| {
        let hooks = Arc::clone(&stages);
        async move {
            let now = chrono::Utc::now();
            hooks::handler::on_invocation(&hooks, &payload, Some(hook_time.0), now).await.unwrap_or(Value::Null)
        }
    });
    // The deployer, deploy-events, the notifier and the hooks function, fed by the rules template.yaml routes to them.
    let deployer = Arc::new(deployer::handler::AwsApp::from_aws(&aws, &deployer_config(&common)));
    let deploy_events = Arc::new(deploy_events::handler::AwsApp::from_aws(&aws, &common));
    let (notifier, outcomes) = notifier(&stack, &aws, &common).await?;
    let pumps = stack.wire(vec![
        (
            "DeployerFunction",
            handler(move |event: Value| {
                let app = Arc::clone(&deployer);
                async move { deployer::handler::on_event(&app, &event, chrono::Utc::now()).await }
            }),
        ),
        (
            "NotifierFunction",
            handler(move |event: Value| {
                let app = Arc::clone(&notifier);
                async move { notifier::handler::on_event(&app, &event, chrono::Utc::now()).await }
            }),
        ),
        (
            "HooksFunction",
            handler(move |event: Value| {
                let app = Arc::clone(&checks);
                async move { hooks::handler::on_event(&app, &event, Some(hook_time.0), chrono::Utc::now()).await }
            }),
        ),
    ])?;
    let deployment_events = stack.wire(vec![(
        "DeployEventsFunction",
        handler(move |event: Value| {
            let app = Arc::clone(&deploy_events);
            async move { deploy_events::handler::on_event(&app, &event, chrono::Utc::now()).await }
        }),
    )])?;
    Ok(World { stack, store, app, codedeploy, ecs, aws, outcomes, _pumps: pumps, deployment_events })
}

/// CodeDeploy's deployment group web/web-prod and ECS's service prod/web, played by the sandbox, shifting `app`'s
/// traffic and rolling out as `rollout` says.
async fn sandboxes(stack: &Stack, app: &Arc<SampleApp>, rollout: Rollout) -> Result<(CodeDeploySandbox, EcsSandbox)> {
    let codedeploy = CodeDeploySandbox::start(Settings {
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        minute: Duration::from_millis(20),
        hook_timeout: Duration::from_secs(20),
        app: Some(Arc::clone(app)),
    })
    .await?;
    codedeploy.deployment_group("web", "web-prod");
    let ecs = EcsSandbox::start(Events {
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        duration: Duration::from_millis(100),
    })
    .await?;
    ecs.service("prod", "web", "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0", rollout);
    Ok((codedeploy, ecs))
}

/// The notifier, and the pipeline's topic it tells each outcome.
async fn notifier(
    stack: &Stack,
    aws: &aws_config::SdkConfig,
    common: &sluice::runtime::config::Common,
) -> Result<(Arc<notifier::handler::AwsApp>, String)> {
    let topic = stack.sns.create_topic().name(sluice_integration::unique("outcomes")).send().await?;
    let outcomes = topic.topic_arn().context("a topic ARN")?.to_owned();
    let notifier_config = notifier::handler::Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(common.table.clone()),
        "SLUICE_EVENT_BUS" => Some(common.event_bus.clone()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })?;
    let notifier = Arc::new(notifier::handler::AwsApp::from_aws(aws, &notifier_config));
    Ok((notifier, outcomes))
}

/// The deployer's configuration: the hooks function, and the role ECS invokes it with.
fn deployer_config(common: &sluice::runtime::config::Common) -> deployer::handler::Config {
    deployer::handler::Config {
        common: common.clone(),
        hooks_function: Some(HOOKS.into()),
        hook_role: Some(HOOK_ROLE.into()),
    }
}

impl World {
    /// The deployer, tried again once a start's backoff has passed: it carries out `pipeline`'s due effects a
    /// minute from now.
    async fn deployer_retries(&self, pipeline: &str) -> Result<()> {
        let common =
            sluice::runtime::config::Common { table: self.stack.table.clone(), event_bus: self.stack.bus.clone() };
        let deployer = deployer::handler::AwsApp::from_aws(&self.aws, &deployer_config(&common));
        let later = chrono::Utc::now() + chrono::TimeDelta::minutes(1);
        Ok(flush(&self.store, &deployer.effects, pipeline, later).await?)
    }

    /// Run `web-1`, pushed and built (its files in S3), let into its deploy stage for `target`: its `Deployment
    /// Requested` goes on the bus.
    async fn deploy(&self, target: DeployTarget) -> Result<()> {
        self.deploy_run("web", "web-1", ExecutionMode::Superseded, target).await
    }

    /// As [`World::deploy`], for run `execution` of `pipeline` in `mode`.
    async fn deploy_run(
        &self,
        pipeline: &str,
        execution: &str,
        mode: ExecutionMode,
        target: DeployTarget,
    ) -> Result<()> {
        // The build stage's own effects are not this test's: only StartBuild is taken (and dropped).
        let builds = RecordingRunner::owning(&[EffectKind::StartBuild]);
        let files = [("taskdef.json", TASKDEF), ("appspec.yaml", APPSPEC)];
        let run =
            BuiltRun { pipeline, execution, mode, target, notify: Some(&self.outcomes), files: &files, image: IMAGE };
        built(&self.stack, &self.store, &builds, run).await?;
        let announcer = Announcer {
            publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&self.aws), &self.stack.bus),
        };
        flush(&self.store, &announcer, pipeline, chrono::Utc::now()).await?;
        Ok(())
    }

    /// The run once it has ended and its announcements and notification went out (within 60 s).
    async fn finished(&self) -> Result<Execution> {
        self.finished_run("web", "web-1").await
    }

    /// As [`World::finished`], for run `execution` of `pipeline`.
    async fn finished_run(&self, pipeline: &str, execution: &str) -> Result<Execution> {
        for _ in 0..600 {
            let run = self.store.execution(&ExecutionId::from(execution)).await?.context("the run")?;
            let state = self.store.load(pipeline).await?.context("the pipeline")?.value;
            if run.status.is_finished() && state.pending.is_empty() {
                return Ok(run);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let run = self.store.execution(&ExecutionId::from(execution)).await?;
        anyhow::bail!("the run did not finish within 60 s: {run:#?}")
    }

    /// Run `execution`'s CodeDeploy deployment, once it is waiting for its `event` hook (within 30 s).
    async fn deploying_at(&self, execution: &str, event: &str) -> Result<String> {
        for _ in 0..300 {
            let run = self.store.execution(&ExecutionId::from(execution)).await?.context("the run")?;
            if let Some(id) = run.deploy().and_then(|d| d.deployment_id.clone())
                && self.codedeploy.lifecycle(&id).last().is_some_and(|(e, status)| e == event && status == "InProgress")
            {
                return Ok(id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{execution}'s deployment did not reach {event} within 30 s")
    }
}

impl World {
    /// From now on CodeDeploy's and ECS's deployment state changes are lost: nothing feeds deploy-events.
    fn lose_deployment_events(&mut self) {
        self.deployment_events.clear();
    }

    /// The reconciler's scheduled look, `minutes` from now, as its schedule runs it.
    async fn reconcile_in(&self, minutes: i64) -> Result<Value> {
        let common =
            sluice::runtime::config::Common { table: self.stack.table.clone(), event_bus: self.stack.bus.clone() };
        // The reconciler looks at the pipelines the published definitions name; each run keeps its own plan.
        let definitions = "[pipelines.web]\nsource = { repository = \"acme/web\" }\nbuild = { project = \"web-build\" }\n\
                           deploy = { strategy = \"rolling\", cluster = \"prod\", service = \"web\" }\n";
        if sluice::contract::ports::DefinitionsStore::current(&self.store).await?.is_none() {
            sluice::contract::ports::DefinitionsStore::publish(&self.store, definitions, None, chrono::Utc::now())
                .await?;
        }
        let reconciler = reconciler::handler::AwsApp::from_aws(&self.aws, &common.into());
        let later = chrono::Utc::now() + chrono::TimeDelta::minutes(minutes);
        Ok(reconciler::handler::on_schedule(&reconciler, later).await?)
    }

    /// The run's CodeDeploy deployment, once CodeDeploy has ended it `status` (within 30 s), its state change lost.
    async fn ended_unheard(&self, status: &str) -> Result<String> {
        let codedeploy = aws_sdk_codedeploy::Client::new(&self.aws);
        for _ in 0..300 {
            let run = self.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
            if let Some(id) = run.deploy().and_then(|d| d.deployment_id.clone()) {
                let info = codedeploy.get_deployment().deployment_id(&id).send().await?;
                if info.deployment_info().and_then(|i| i.status()).is_some_and(|s| s.as_str() == status) {
                    anyhow::ensure!(!run.status.is_finished(), "nothing should have told the run: {:?}", run.status);
                    return Ok(id);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the deployment did not end {status} within 30 s")
    }

    /// Once ECS has rolled the service back from the run's deployment to its first task definition (within 30 s).
    async fn rolled_back_unheard(&self) -> Result<()> {
        let ecs = aws_sdk_ecs::Client::new(&self.aws);
        for _ in 0..300 {
            let run = self.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
            if run.deploy().and_then(|d| d.deployment_id.clone()).is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let described = ecs.describe_services().cluster("prod").services("web").send().await?;
            let deployments = described.services()[0].deployments();
            let back = deployments.len() == 1
                && deployments[0].task_definition().is_some_and(|t| t.ends_with("sample-app:0"))
                && deployments[0].rollout_state() == Some(&aws_sdk_ecs::types::DeploymentRolloutState::Completed);
            if back {
                let run = self.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
                anyhow::ensure!(!run.status.is_finished(), "nothing should have told the run: {:?}", run.status);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("ECS did not roll the service back within 30 s")
    }

    /// The one notification the pipeline's topic got (its subject and the email subscribers' text), within 30 s.
    async fn notification(&self) -> Result<(String, String)> {
        for _ in 0..150 {
            let sent = sluice_integration::sns_messages(&self.outcomes).await?;
            if let Some((subject, message)) = sent.first() {
                anyhow::ensure!(sent.len() == 1, "one notification per run, not {}", sent.len());
                let message: Value = serde_json::from_str(message).context("a JSON message")?;
                let email = message["email"].as_str().context("an email form")?.to_owned();
                return Ok((subject.clone().unwrap_or_default(), email));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::bail!("no notification reached {}", self.outcomes)
    }
}

fn checked(url: &str, hooks: &[&str]) -> Vec<Check> {
    hooks
        .iter()
        .map(|hook| Check {
            expect_body: Some("\"status\":\"ok\"".into()),
            timeout_secs: 2,
            ..Check::new(*hook, format!("{url}/health"))
        })
        .collect()
}

fn blue_green(checks: Vec<Check>) -> DeployTarget {
    let deployment_config = "CodeDeployDefault.ECSLinear10PercentEvery1Minutes".into();
    DeployTarget::BlueGreen(BlueGreen { deployment_config, ..sluice::contract::testing::blue_green(checks) })
}

fn rolling() -> DeployTarget {
    rolling_checked(Vec::new())
}

fn rolling_checked(checks: Vec<Check>) -> DeployTarget {
    DeployTarget::Rolling(sluice::contract::testing::rolling(checks))
}

const ALL_HOOKS: [&str; 5] =
    ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"];

#[tokio::test]
async fn a_blue_green_run_passes_its_checks_at_all_five_hooks_shifts_traffic_and_succeeds() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let url = world.app.test.url.clone();
    world.deploy(blue_green(checked(&url, &ALL_HOOKS))).await?;

    let run = world.finished().await?;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    let deploy = run.deploy().cloned().context("deploy facts")?;
    let hooks: Vec<(&str, bool)> = deploy.hooks.iter().map(|h| (h.lifecycle_event.as_str(), h.passed)).collect();
    assert_eq!(hooks, ALL_HOOKS.map(|hook| (hook, true)));
    assert!(deploy.hooks.iter().all(|h| h.detail.as_deref().is_some_and(|d| d.starts_with("1/1 passed: #"))));
    assert!(deploy.hooks.iter().all(|h| h.millis.is_some()));
    // CodeDeploy got every hook's answer, shifted all traffic, and production now reaches green.
    let deployment_id = deploy.deployment_id.context("a deployment id")?;
    let lifecycle = world.codedeploy.lifecycle(&deployment_id);
    assert!(lifecycle.iter().all(|(_, status)| status == "Succeeded"), "{lifecycle:?}");
    assert_eq!(world.codedeploy.traffic(&deployment_id).last(), Some(&100));
    assert_eq!(world.app.production.routed(), "green");
    // The notifier told the pipeline's topic what shipped, and how each hook's checks went.
    let (subject, email) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web succeeded");
    assert!(email.starts_with(&format!("Pipeline web shipped {IMAGE}.")), "{email}");
    assert!(
        email.contains("Task definition: arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:"),
        "{email}"
    );
    assert!(email.contains(&format!("Deployment:      {deployment_id} (blue/green)")), "{email}");
    for hook in ALL_HOOKS {
        assert!(email.contains(&format!("  {hook:<22} passed in ")), "{hook} in {email}");
    }
    Ok(())
}

#[tokio::test]
async fn a_failing_before_allow_traffic_check_is_answered_failed_and_the_rollback_ends_the_run_rolled_back()
-> Result<()> {
    let world = world(false, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let url = world.app.test.url.clone();
    world.deploy(blue_green(checked(&url, &["BeforeInstall", "BeforeAllowTraffic"]))).await?;

    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    // The reason names the hook, the check and what it got, then what CodeDeploy did.
    let reason = run.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("the BeforeAllowTraffic checks failed (0/1 passed: #2 GET http://"), "{reason}");
    assert!(reason.contains("answered 503, expected 200"), "{reason}");
    assert!(reason.contains("CodeDeploy failed the deployment and rolled it back"), "{reason}");
    // BeforeInstall hit blue through the test listener and passed; BeforeAllowTraffic hit green and failed.
    let deploy = run.deploy().cloned().context("deploy facts")?;
    let hooks: Vec<(&str, bool)> = deploy.hooks.iter().map(|h| (h.lifecycle_event.as_str(), h.passed)).collect();
    assert_eq!(hooks, [("BeforeInstall", true), ("BeforeAllowTraffic", false)]);
    // Production never left blue.
    assert_eq!(world.app.production.routed(), "blue");
    let lifecycle = world.codedeploy.lifecycle(deploy.deployment_id.as_deref().unwrap_or_default());
    assert!(lifecycle.contains(&("BeforeAllowTraffic".into(), "Failed".into())), "{lifecycle:?}");
    // The notification says it was rolled back, names the check and what it got, and what serves now.
    let (subject, email) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web rolled back");
    assert!(email.contains("Why: the BeforeAllowTraffic checks failed (0/1 passed: #2 GET http://"), "{email}");
    assert!(email.contains("answered 503, expected 200"), "{email}");
    assert!(email.contains("Rolled back: CodeDeploy sent production traffic back to the original task set."));
    assert!(email.contains("  BeforeAllowTraffic     FAILED in "), "{email}");
    Ok(())
}

#[tokio::test]
async fn a_check_that_hangs_is_answered_failed_before_the_hooks_function_runs_out_of_time() -> Result<()> {
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_url = format!("http://{}", silent.local_addr()?);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    // The function has 6 s left per invocation: 1 s for its checks once its margin is kept.
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(6))).await?;
    let check = Check { timeout_secs: 30, ..Check::new("AfterInstall", format!("{silent_url}/health")) };
    let started = std::time::Instant::now();
    world.deploy(blue_green(vec![check])).await?;

    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.unwrap_or_default();
    assert!(reason.contains("did not finish within the 1 s the hooks function had left"), "{reason}");
    // Answered in time: well before the check's own 30 s, or CodeDeploy's wait.
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    held.abort();
    Ok(())
}

#[tokio::test]
async fn a_hook_invoked_twice_is_answered_the_same_and_late_or_repeated_deployment_events_change_nothing() -> Result<()>
{
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let url = world.app.test.url.clone();
    world.deploy(blue_green(checked(&url, &["AfterInstall"]))).await?;
    let run = world.finished().await?;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    let deploy = run.deploy().cloned().context("deploy facts")?;
    let deployment_id = deploy.deployment_id.clone().context("a deployment id")?;
    let before = world.store.load("web").await?.context("state")?;

    // CodeDeploy invokes the hook again (Lambda retried the async invocation): answered the same, nothing rerun.
    let common =
        sluice::runtime::config::Common { table: world.stack.table.clone(), event_bus: world.stack.bus.clone() };
    let hooks = hooks::handler::AwsApp::from_aws(&world.aws, &common)?;
    let payload = json!({
        "DeploymentId": deployment_id,
        "LifecycleEventHookExecutionId": deploy.hooks[0].hook_execution_id,
    });
    hooks::handler::on_event(&hooks, &payload, None, chrono::Utc::now()).await?;
    // A failure notice arriving after the success, and the success delivered again, change nothing.
    let events = deploy_events::handler::AwsApp::from_aws(&world.aws, &common);
    for (id, state) in [("late-failure", "FAILURE"), ("late-failure", "FAILURE"), ("again", "SUCCESS")] {
        let event = json!({
            "id": id, "source": "aws.codedeploy", "detail-type": "CodeDeploy Deployment State-change Notification",
            "detail": { "deploymentId": deployment_id, "state": state, "application": "web", "deploymentGroup": "web-prod" },
        });
        deploy_events::handler::on_event(&events, &event, chrono::Utc::now()).await?;
    }
    let after = world.store.load("web").await?.context("state")?;
    assert_eq!(after.value.executions, before.value.executions);
    assert_eq!(after.version, before.version, "nothing was written");
    // A hook of a deployment sluice did not start runs no check and records nothing (it is answered Failed; here
    // CodeDeploy knows no such deployment and refuses the answer, which is not retried).
    let foreign = json!({ "DeploymentId": "d-FOREIGN", "LifecycleEventHookExecutionId": "hook-x" });
    hooks::handler::on_event(&hooks, &foreign, None, chrono::Utc::now()).await?;
    let after = world.store.load("web").await?.context("state")?;
    assert_eq!(after.version, before.version, "nothing was written");
    Ok(())
}

#[tokio::test]
async fn a_rolling_run_succeeds_when_ecs_reports_the_rollout_completed() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    world.deploy(rolling()).await?;
    let run = world.finished().await?;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    assert!(run.deploy().and_then(|d| d.deployment_id.clone()).is_some_and(|id| id.starts_with("ecs-svc/")));
    Ok(())
}

#[tokio::test]
async fn a_rolling_run_runs_its_after_rollout_checks_once_ecs_completed_it_and_succeeds_when_they_pass() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let url = world.app.production.url.clone();
    world.deploy(rolling_checked(checked(&url, &["AfterRollout"]))).await?;
    let run = world.finished().await?;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    let deploy = run.deploy().cloned().context("deploy facts")?;
    let hooks: Vec<(&str, bool)> = deploy.hooks.iter().map(|h| (h.lifecycle_event.as_str(), h.passed)).collect();
    assert_eq!(hooks, [("AfterRollout", true)]);
    assert!(deploy.rolled_out_at.is_some_and(|at| Some(at) <= deploy.finished_at), "{deploy:#?}");
    let (_, email) = world.notification().await?;
    assert!(email.contains("AfterRollout"), "{email}");
    Ok(())
}

#[tokio::test]
async fn a_rolling_run_whose_after_rollout_check_fails_puts_the_service_back_on_the_task_definition_it_ran_before()
-> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    // The new version answers, but not what the check expects of it.
    let url = world.app.production.url.clone();
    let check =
        Check { expect_body: Some("\"version\":\"never\"".into()), ..checked(&url, &["AfterRollout"]).remove(0) };
    world.deploy(rolling_checked(vec![check])).await?;
    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("the AfterRollout checks failed (0/1 passed: #1 GET "), "{reason}");
    assert!(
        reason.contains(
            "sluice rolled service web back to arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0"
        ),
        "{reason}"
    );
    // ECS runs the task definition from before the run again.
    let ecs = aws_sdk_ecs::Client::new(&world.aws);
    let described = ecs.describe_services().cluster("prod").services("web").send().await?;
    assert_eq!(
        described.services()[0].task_definition(),
        Some("arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0")
    );
    let (subject, email) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web rolled back");
    assert!(email.contains("AfterRollout"), "{email}");
    Ok(())
}

#[tokio::test]
async fn a_rolling_update_that_never_settles_fails_at_its_deadline_on_the_reconcilers_look_and_is_rolled_back()
-> Result<()> {
    // GIVEN a rolling update whose tasks keep failing, with ECS's circuit breaker off: ECS sends no event that ends it
    let world = world(true, Rollout::TasksFail, HookTime(Duration::from_secs(300))).await?;
    let target = match rolling() {
        DeployTarget::Rolling(rolling) => DeployTarget::Rolling(sluice::definitions::Rolling {
            circuit_breaker: sluice::definitions::CircuitBreaker { enable: false, rollback: false },
            ..rolling
        }),
        other => other,
    };
    world.deploy(target).await?;
    let mut started = None;
    for _ in 0..100 {
        let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
        started = run.deploy().cloned().filter(|d| d.previous_task_definition.is_some());
        if started.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let previous = started.and_then(|d| d.previous_task_definition).context("the update started")?;
    // WHEN the reconciler looks before its deadline (the 5 minutes its AfterRollout checks may take, and 60), nothing
    world.reconcile_in(30).await?;
    let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    assert_eq!(run.status, Status::Running(sluice::pipeline::Stage::DEPLOY));
    // WHEN it looks after it
    world.reconcile_in(70).await?;
    // THEN the run fails, saying why
    let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    assert_eq!(run.status, Status::Failed, "{run:#?}");
    let reason = run.reason.unwrap_or_default();
    assert!(reason.starts_with("the deployment did not finish within 1h 5m"), "{reason}");
    // AND the deployer puts the service back on the task definition it ran before
    world.deployer_retries("web").await?;
    let ecs = aws_sdk_ecs::Client::new(&world.aws);
    let described = ecs.describe_services().cluster("prod").services("web").send().await?;
    let service = described.services().first().context("the service")?;
    assert_eq!(service.task_definition(), Some(previous.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_rolling_run_whose_tasks_fail_trips_the_circuit_breaker_and_ends_rolled_back() -> Result<()> {
    let world = world(true, Rollout::TasksFail, HookTime(Duration::from_secs(300))).await?;
    world.deploy(rolling()).await?;
    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.unwrap_or_default();
    assert_eq!(
        reason,
        "ECS failed the deployment and rolled it back: ECS deployment circuit breaker: tasks failed to start."
    );
    let (subject, email) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web rolled back");
    assert!(email.contains("Rolled back: ECS put the service back on its previous task definition."), "{email}");
    assert!(email.contains("(rolling)"), "{email}");
    Ok(())
}

#[tokio::test]
async fn a_blue_green_deployment_whose_state_change_is_lost_is_ended_by_the_reconcilers_look_at_codedeploy()
-> Result<()> {
    // GIVEN a deployment whose BeforeAllowTraffic check fails, and whose state changes never reach sluice
    let mut world = world(false, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    world.lose_deployment_events();
    let url = world.app.test.url.clone();
    world.deploy(blue_green(checked(&url, &["BeforeAllowTraffic"]))).await?;
    let deployment_id = world.ended_unheard("Failed").await?;
    // WHEN the reconciler looks, before and after the run has been quiet for ten minutes
    let early = world.reconcile_in(0).await?;
    let late = world.reconcile_in(11).await?;
    // THEN only the late look asks CodeDeploy, and the run ends as CodeDeploy's record says: rolled back
    assert_eq!(early["deployments_checked"], 0, "{early}");
    assert_eq!((late["deployments_checked"].clone(), late["moved"].clone()), (json!(1), json!(1)), "{late}");
    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("the BeforeAllowTraffic checks failed"), "{reason}");
    assert!(reason.contains("CodeDeploy failed the deployment and rolled it back"), "{reason}");
    assert_eq!(run.deploy().and_then(|d| d.deployment_id.clone()), Some(deployment_id));
    let (subject, _) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web rolled back");
    Ok(())
}

#[tokio::test]
async fn a_rolling_update_whose_state_change_is_lost_is_ended_by_the_reconcilers_look_at_the_service() -> Result<()> {
    // GIVEN a rollout whose tasks fail, rolled back by the circuit breaker, its state changes lost
    let mut world = world(true, Rollout::TasksFail, HookTime(Duration::from_secs(300))).await?;
    world.lose_deployment_events();
    world.deploy(rolling()).await?;
    world.rolled_back_unheard().await?;
    // WHEN the reconciler looks once the run has been quiet for ten minutes
    let done = world.reconcile_in(11).await?;
    // THEN ECS no longer lists the run's deployment and the service runs the previous task definition: rolled back
    assert_eq!(done["moved"], 1, "{done}");
    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.unwrap_or_default();
    assert!(reason.contains("ECS no longer lists deployment ecs-svc/"), "{reason}");
    assert!(reason.contains("the service runs arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0"));
    Ok(())
}

/// A blue/green target whose BeforeInstall check keeps failing for about 30 s: its deployment stays in progress.
fn slow_blue_green(url: &str) -> DeployTarget {
    let check = Check {
        expect_body: Some("never there".into()),
        retries: 20,
        interval_secs: 1,
        timeout_secs: 2,
        ..Check::new("BeforeInstall", format!("{url}/health"))
    };
    blue_green(vec![check])
}

#[tokio::test]
async fn in_superseded_mode_a_run_stops_the_deployment_in_its_groups_way_and_that_run_ends_superseded() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    // GIVEN web-1 deploying to group web-prod, held at its BeforeInstall checks
    world.deploy(slow_blue_green(&world.app.test.url)).await?;
    let stopped = world.deploying_at("web-1", "BeforeInstall").await?;
    // WHEN a run of another pipeline in superseded mode, hotfix-1, deploys to the same group
    world.deploy_run("hotfix", "hotfix-1", ExecutionMode::Superseded, blue_green(Vec::new())).await?;
    // THEN web-1's deployment is stopped (and rolled back), and web-1 ends superseded, naming the run
    let run = world.finished().await?;
    assert_eq!(run.status, Status::Superseded, "{run:#?}");
    let reason = run.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "superseded by execution hotfix-1 of pipeline hotfix, which needed the deployment group: CodeDeploy stopped \
             the deployment"
        ),
        "{reason}"
    );
    let codedeploy = aws_sdk_codedeploy::Client::new(&world.aws);
    let info = codedeploy.get_deployment().deployment_id(&stopped).send().await?;
    assert_eq!(info.deployment_info().and_then(|i| i.status()).map(|s| s.as_str()), Some("Stopped"));
    // AND hotfix-1's start, tried again once its backoff has passed, deploys
    world.deployer_retries("hotfix").await?;
    let hotfix = world.finished_run("hotfix", "hotfix-1").await?;
    assert_eq!(hotfix.status, Status::Succeeded, "{hotfix:#?}");
    Ok(())
}

#[tokio::test]
async fn in_queued_mode_a_run_waits_for_the_deployment_in_its_groups_way_and_stops_nothing() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    world.deploy(slow_blue_green(&world.app.test.url)).await?;
    let going = world.deploying_at("web-1", "BeforeInstall").await?;
    world.deploy_run("hotfix", "hotfix-1", ExecutionMode::Queued, blue_green(Vec::new())).await?;
    // hotfix-1's start found the group busy: it waits in the outbox, to be tried again, and stopped nothing.
    let waiting = world.waiting_start("hotfix").await?;
    let error = waiting.last_error.unwrap_or_default();
    assert!(error.contains("deployment group web-prod already has an active deployment"), "{error}");
    assert_eq!(world.codedeploy.lifecycle(&going).last().map(|(e, _)| e.as_str()), Some("BeforeInstall"));
    let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("web-1")?;
    assert_eq!(run.status, Status::Running(sluice::pipeline::Stage::DEPLOY));
    Ok(())
}

/// web-1 deploying, held for about 2 s at its BeforeInstall checks, which then fail; web-2, then web-3, of the same
/// pipeline in `mode`, built meanwhile. Returns web-1, web-2 and web-3 once all have ended.
async fn two_newer_runs_while_one_deploys(mode: ExecutionMode) -> Result<(World, [Execution; 3])> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let check = Check {
        expect_body: Some("never there".into()),
        retries: 2,
        interval_secs: 1,
        ..Check::new("BeforeInstall", format!("{}/health", world.app.test.url))
    };
    world.deploy_run("web", "web-1", mode, blue_green(vec![check])).await?;
    world.deploying_at("web-1", "BeforeInstall").await?;
    for execution in ["web-2", "web-3"] {
        world.deploy_run("web", execution, mode, blue_green(Vec::new())).await?;
    }
    let mut runs = Vec::new();
    for execution in ["web-1", "web-2", "web-3"] {
        runs.push(world.finished_run("web", execution).await?);
    }
    let runs: [Execution; 3] = runs.try_into().map_err(|_| anyhow::anyhow!("three runs"))?;
    Ok((world, runs))
}

#[tokio::test]
async fn in_superseded_mode_the_newest_run_deploys_after_the_one_deploying_and_the_one_between_never_does() -> Result<()>
{
    let (_world, [web1, web2, web3]) = two_newer_runs_while_one_deploys(ExecutionMode::Superseded).await?;
    assert_eq!(web1.status, Status::RolledBack, "{web1:#?}");
    assert_eq!(web2.status, Status::Superseded, "{web2:#?}");
    assert_eq!(web2.reason.as_deref(), Some("superseded by execution web-3 (commit sha-web-3)"));
    assert!(web2.deploy().is_none(), "web-2 never deployed: {web2:#?}");
    assert_eq!(web3.status, Status::Succeeded, "{web3:#?}");
    let deployed = |run: &Execution| run.deploy().map(|d| d.started_at);
    assert!(deployed(&web3) >= web1.finished_at, "web-3 deployed once web-1 had ended");
    Ok(())
}

#[tokio::test]
async fn in_queued_mode_every_run_deploys_in_the_order_pushed_once_the_one_before_has_ended() -> Result<()> {
    let (world, [web1, web2, web3]) = two_newer_runs_while_one_deploys(ExecutionMode::Queued).await?;
    assert_eq!(web1.status, Status::RolledBack, "{web1:#?}");
    assert_eq!((web2.status, web3.status), (Status::Succeeded, Status::Succeeded), "{web2:#?} {web3:#?}");
    let deploy = |run: &Execution| run.deploy().cloned().context("deploy facts");
    let (second, third) = (deploy(&web2)?, deploy(&web3)?);
    assert!(Some(second.started_at) >= web1.finished_at, "web-2 deployed once web-1 had ended");
    assert!(Some(third.started_at) >= second.finished_at, "web-3 deployed once web-2 had ended");
    // Each its own CodeDeploy deployment, one after the other.
    let ids = [second.deployment_id.context("web-2's")?, third.deployment_id.context("web-3's")?];
    assert_ne!(ids[0], ids[1]);
    let codedeploy = aws_sdk_codedeploy::Client::new(&world.aws);
    for id in &ids {
        let info = codedeploy.get_deployment().deployment_id(id).send().await?;
        assert_eq!(info.deployment_info().and_then(|i| i.status()).map(|s| s.as_str()), Some("Succeeded"), "{id}");
    }
    Ok(())
}

/// An ECS-native deployment of prod/web shifting as `shift`, with `checks`, a minute's bake time and alarm web-5xx.
fn native(shift: TrafficShift, checks: Vec<Check>) -> DeployTarget {
    DeployTarget::EcsNative(EcsNative {
        bake_time_minutes: 1,
        alarms: vec!["web-5xx".into()],
        checks,
        ..sluice::contract::testing::ecs_native(shift)
    })
}

impl World {
    /// The run's service deployment, once it has one (within 30 s).
    async fn service_deployment(&self) -> Result<String> {
        for _ in 0..600 {
            let run = self.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
            if let Some(arn) = run.deploy().and_then(|d| d.service_deployment.clone()) {
                return Ok(arn);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the run recorded no service deployment within 30 s")
    }
}

#[tokio::test]
async fn an_ecs_blue_green_run_passes_its_post_test_traffic_shift_check_and_ecs_shifts_production_to_green()
-> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let url = world.app.test.url.clone();
    world.deploy(native(TrafficShift::BlueGreen, checked(&url, &["POST_TEST_TRAFFIC_SHIFT"]))).await?;

    let run = world.finished().await?;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    let deploy = run.deploy().cloned().context("deploy facts")?;
    assert_eq!(deploy.strategy, "ecs_blue_green");
    let hooks: Vec<(&str, bool)> = deploy.hooks.iter().map(|h| (h.lifecycle_event.as_str(), h.passed)).collect();
    assert_eq!(hooks, [("POST_TEST_TRAFFIC_SHIFT", true)]);
    // ECS invoked sluice only where the pipeline checks, with the documented payload, and got SUCCEEDED.
    let arn = deploy.service_deployment.context("a service deployment")?;
    let invocations = world.ecs.invocations(&arn);
    let stages: Vec<(&str, &str)> = invocations
        .iter()
        .map(|(stage, _, result)| (stage.as_str(), result["hookStatus"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(stages, [("POST_TEST_TRAFFIC_SHIFT", "SUCCEEDED")]);
    assert_eq!(invocations[0].1["resourceArn"], arn.as_str());
    // The service deployment is SUCCESSFUL and production reaches green.
    let record = world.ecs.service_deployment(&arn).context("the record")?;
    assert_eq!(record["status"], "SUCCESSFUL");
    assert_eq!(record["deploymentConfiguration"]["strategy"], "BLUE_GREEN");
    assert_eq!(record["deploymentConfiguration"]["lifecycleHooks"][0]["roleArn"], HOOK_ROLE);
    assert_eq!(world.app.production.routed(), "green");
    Ok(())
}

#[tokio::test]
async fn an_ecs_check_with_a_retry_answers_in_progress_is_invoked_again_with_its_hook_details_and_its_failure_rolls_back()
-> Result<()> {
    // Green answers 503: the check fails, tries once more when ECS calls again, and fails for good.
    let world = world(false, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let url = world.app.test.url.clone();
    let check = Check { retries: 1, interval_secs: 1, ..checked(&url, &["POST_TEST_TRAFFIC_SHIFT"]).remove(0) };
    // A check at PRODUCTION_TRAFFIC_SHIFT too: ECS invokes that stage's hook again as it rolls back.
    let production = checked(&url, &["PRODUCTION_TRAFFIC_SHIFT"]).remove(0);
    world.deploy(native(TrafficShift::BlueGreen, vec![check, production])).await?;

    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("the POST_TEST_TRAFFIC_SHIFT checks failed (0/1 passed: #1 GET "), "{reason}");
    assert!(reason.contains("(2 tries, "), "{reason}");
    assert!(reason.contains("ECS failed the deployment and rolled it back: the lifecycle hook"), "{reason}");
    let arn = world.service_deployment().await?;
    let invocations = world.ecs.invocations(&arn);
    let checked: Vec<&(String, Value, Value)> =
        invocations.iter().filter(|(stage, _, _)| stage == "POST_TEST_TRAFFIC_SHIFT").collect();
    assert_eq!(checked.len(), 2, "{invocations:#?}");
    assert_eq!(checked[0].2["hookStatus"], "IN_PROGRESS");
    assert_eq!(checked[0].2["callBackDelay"], 1);
    // ECS handed back what sluice left, and the second answer was the last.
    assert_eq!(checked[1].1["hookDetails"], checked[0].2["hookDetails"]);
    assert_eq!(checked[1].2["hookStatus"], "FAILED");
    // The rollback's own PRODUCTION_TRAFFIC_SHIFT hook was answered SUCCEEDED without checks holding it up, and
    // traffic is back on blue.
    let stages: Vec<(&str, &str)> = invocations
        .iter()
        .map(|(stage, _, result)| (stage.as_str(), result["hookStatus"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        stages,
        [
            ("POST_TEST_TRAFFIC_SHIFT", "IN_PROGRESS"),
            ("POST_TEST_TRAFFIC_SHIFT", "FAILED"),
            ("PRODUCTION_TRAFFIC_SHIFT", "SUCCEEDED")
        ]
    );
    let hooks = run.deploy().map(|d| d.hooks.len());
    assert_eq!(hooks, Some(1), "the rollback's hook records nothing on the run");
    assert_eq!(world.app.production.routed(), "blue");
    assert_eq!(world.app.test.routed(), "blue");
    assert_eq!(world.ecs.service_deployment(&arn).context("the record")?["status"], "ROLLBACK_SUCCESSFUL");
    Ok(())
}

#[tokio::test]
async fn an_ecs_linear_run_whose_check_fails_at_a_middle_step_is_rolled_back_and_labelled_so() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let url = world.app.test.url.clone();
    let shift = TrafficShift::Linear { step_tenths: 250, step_bake_time_minutes: 3 };
    world.deploy(native(shift, checked(&url, &["PRODUCTION_TRAFFIC_SHIFT"]))).await?;
    // Once the first step (25 %) has passed its check, green starts failing.
    let arn = world.service_deployment().await?;
    for _ in 0..200 {
        if world.ecs.invocations(&arn).iter().any(|(_, _, result)| result["hookStatus"] == "SUCCEEDED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    world.app.green.set_healthy(false);

    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let deploy = run.deploy().cloned().context("deploy facts")?;
    assert_eq!(deploy.strategy, "ecs_linear");
    let passed: Vec<bool> = deploy.hooks.iter().map(|h| h.passed).collect();
    assert_eq!(passed, [true, false], "{:#?}", deploy.hooks);
    let weights: Vec<f64> = world
        .ecs
        .invocations(&arn)
        .iter()
        .filter(|(stage, _, _)| stage == "PRODUCTION_TRAFFIC_SHIFT")
        .filter_map(|(_, payload, _)| {
            let target = payload["executionDetails"]["targetServiceRevisionArn"].as_str()?;
            payload["executionDetails"]["productionTrafficWeights"][target].as_f64()
        })
        .collect();
    assert_eq!(weights[..2], [25.0, 50.0], "the check failed at the second step: {weights:?}");
    let reason = run.reason.unwrap_or_default();
    assert!(reason.starts_with("the PRODUCTION_TRAFFIC_SHIFT checks failed (0/1 passed: "), "{reason}");
    assert!(reason.contains("ECS failed the deployment and rolled it back"), "{reason}");
    assert_eq!(world.app.production.routed(), "blue");
    Ok(())
}

#[tokio::test]
async fn an_alarm_in_alarm_during_the_bake_time_rolls_an_ecs_canary_back_and_the_run_names_the_alarm() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let shift = TrafficShift::Canary { tenths: 100, bake_time_minutes: 1 };
    // A check at each production step, through the production listener.
    let checks = checked(&world.app.production.url, &["PRODUCTION_TRAFFIC_SHIFT"]);
    let target = match native(shift, checks) {
        DeployTarget::EcsNative(target) => DeployTarget::EcsNative(EcsNative { bake_time_minutes: 100, ..target }),
        other => other,
    };
    world.deploy(target).await?;
    let arn = world.service_deployment().await?;
    world.record_when(&arn, "reach its bake time", |r| r["lifecycleStage"] == "BAKE_TIME").await?;
    // The alarm goes off, and the old revision, which traffic goes back to, answers 503 meanwhile.
    world.ecs.alarm("web-5xx", true);
    world.app.blue.set_healthy(false);

    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    assert_eq!(
        run.reason.as_deref(),
        Some("ECS failed the deployment and rolled it back: alarm web-5xx went into ALARM")
    );
    // The hook ECS ran as traffic went back (the new revision's weight at 0) was answered SUCCEEDED without
    // checking: only the two forward steps' checks are on the run, both passed.
    let passed: Vec<bool> = run.deploy().into_iter().flat_map(|d| &d.hooks).map(|h| h.passed).collect();
    assert_eq!(passed, [true, true], "{run:#?}");
    let back = world.ecs.invocations(&arn).into_iter().rfind(|(stage, _, _)| stage == "PRODUCTION_TRAFFIC_SHIFT");
    let (_, payload, result) = back.context("the rollback's hook")?;
    let target = payload["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap_or_default().to_owned();
    assert_eq!(payload["executionDetails"]["productionTrafficWeights"][target], 0.0);
    assert_eq!(result["hookStatus"], "SUCCEEDED");
    assert_eq!(run.deploy().cloned().map(|d| d.strategy).as_deref(), Some("ecs_canary"));
    assert_eq!(world.app.production.routed(), "blue");
    Ok(())
}

/// An ECS-native canary (10 %) that asks for an approval before each production step, for `timeout` minutes.
fn canary_with_pause(timeout_minutes: u32) -> DeployTarget {
    match native(TrafficShift::Canary { tenths: 100, bake_time_minutes: 1 }, Vec::new()) {
        DeployTarget::EcsNative(target) => DeployTarget::EcsNative(EcsNative {
            approval: Some(sluice::definitions::PauseApproval {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                topic_arn: "arn:aws:sns:us-east-1:123456789012:approvers".into(),
                timeout_minutes,
                on_timeout: sluice::definitions::PauseAction::Rollback,
            }),
            ..target
        }),
        other => other,
    }
}

#[tokio::test]
async fn a_canary_pause_nobody_decides_is_timed_out_by_ecs_and_the_run_says_the_timeout_rolled_it_back() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    // Twenty sandbox minutes (two seconds, time enough for the pause to be recorded on a busy machine) to decide;
    // nobody does.
    world.deploy(canary_with_pause(20)).await?;

    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with(
            "rolled back by the pause timeout: nobody decided at the PRE_PRODUCTION_TRAFFIC_SHIFT pause (10% of \
             production on the new revision) by "
        ),
        "{reason}"
    );
    // The pause before the canary step was continued by sluice; the one after it asked, and timed out in ECS.
    let deploy = run.deploy().cloned().context("deploy facts")?;
    let asked: Vec<(u32, bool)> = deploy.pauses.iter().map(|p| (p.shifted_tenths, p.approval.is_some())).collect();
    assert_eq!(asked, [(0, false), (100, true)]);
    let record = world.ecs.service_deployment(&deploy.service_deployment.context("an ARN")?).context("the record")?;
    assert_eq!(hook_statuses(&record), ["SUCCEEDED", "TIMED_OUT"]);
    assert_eq!(world.app.production.routed(), "blue");
    let (subject, _) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web rolled back");
    Ok(())
}

#[tokio::test]
async fn a_canary_approved_at_its_pause_ships_whatever_lifecycle_stage_ecs_reports_while_paused() -> Result<()> {
    use sluice::pipeline::ApprovalDecision;
    use sluice::usecases::{Decided, decide_as};
    use sluice_sandbox::ecs::WhilePreProduction;
    // AWS's ServiceDeploymentLifecycleStage has no PRE_PRODUCTION_TRAFFIC_SHIFT: the sandbox reports the stage before
    // (POST_TEST_TRAFFIC_SHIFT), then the one the deployment enters (PRODUCTION_TRAFFIC_SHIFT).
    for reported in [WhilePreProduction::StageBefore, WhilePreProduction::StageEntered] {
        let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
        world.ecs.while_pre_production(reported);
        // GIVEN web-1's canary, paused after its canary step for a decision (ten hours of sandbox time: a minute)
        world.deploy(canary_with_pause(600)).await?;
        let arn = world.service_deployment().await?;
        world.record_when(&arn, "pause after the canary step", |r| hook_statuses(r).len() == 2).await?;
        let stage = world.ecs.service_deployment(&arn).context("the record")?["lifecycleStage"].clone();
        assert_ne!(stage, "PRE_PRODUCTION_TRAFFIC_SHIFT", "{reported:?}");
        let asked = world.asked_at_pause("web-1").await?;
        assert_eq!(asked, "PRE_PRODUCTION_TRAFFIC_SHIFT", "{reported:?}");
        // WHEN an approver approves it, as `sluice approve` does
        let bus = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&world.aws), world.stack.bus.clone());
        let runner = Announcer { publisher: bus };
        let id = ExecutionId::from("web-1");
        let approved = ApprovalDecision::Approved;
        let decided = decide_as(&world.store, &runner, &id, approved, "carol", None, chrono::Utc::now()).await?;
        assert_eq!(decided, Decided::Pause("PRE_PRODUCTION_TRAFFIC_SHIFT".into()));
        // THEN ECS continues it, production moves to green and the run succeeds
        let run = world.finished().await?;
        assert_eq!(run.status, Status::Succeeded, "{reported:?}: {run:#?}");
        assert_eq!(world.app.production.routed(), "green", "{reported:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_canary_approved_at_its_pause_while_frozen_waits_there_and_ships_once_unfrozen() -> Result<()> {
    use sluice::contract::ports::DefinitionsStore;
    use sluice::pipeline::ApprovalDecision;
    use sluice::usecases::{FreezeOrder, decide_as, set_freeze};
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    let definitions = "[pipelines.web]\nsource = { repository = \"acme/web\" }\nbuild = { project = \"web-build\" }\n\
                       deploy = { strategy = \"rolling\", cluster = \"prod\", service = \"web\" }\n";
    world.store.publish(definitions, None, chrono::Utc::now()).await?;
    let bus = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&world.aws), world.stack.bus.clone());
    let runner = Announcer { publisher: bus };
    let carol = "arn:aws:iam::123456789012:user/carol";
    // GIVEN web-1's canary paused after its canary step for a decision (ten hours of sandbox time: a minute)
    world.deploy(canary_with_pause(600)).await?;
    let arn = world.service_deployment().await?;
    world.record_when(&arn, "pause after the canary step", |r| hook_statuses(r).len() == 2).await?;
    world.asked_at_pause("web-1").await?;
    // WHEN an operator freezes web and an approver approves at the pause
    let freeze = FreezeOrder::Freeze { reason: "incident 4312", until: None };
    let web = ["web".to_owned()];
    set_freeze(&world.store, &runner, (&web, false), freeze, (carol, chrono::Utc::now())).await?;
    let id = ExecutionId::from("web-1");
    decide_as(&world.store, &runner, &id, ApprovalDecision::Approved, "ada", None, chrono::Utc::now()).await?;
    // THEN ECS still waits at the pause (given the time it takes to continue one), the decision recorded and held
    tokio::time::sleep(Duration::from_secs(2)).await;
    let record = world.ecs.service_deployment(&arn).context("the record")?;
    assert_eq!(hook_statuses(&record), ["SUCCEEDED", "AWAITING_ACTION"]);
    let run = world.store.execution(&id).await?.context("the run")?;
    let pause = run.deploy().and_then(|d| d.pauses.last()).context("the pause")?;
    assert!(pause.held, "{pause:#?}");
    assert_eq!(pause.approval.as_ref().and_then(|a| a.decision), Some(ApprovalDecision::Approved));
    // WHEN unfrozen: the deployer, woken at once, continues it; production moves to green and the run succeeds
    set_freeze(&world.store, &runner, (&web, false), FreezeOrder::Unfreeze, (carol, chrono::Utc::now())).await?;
    let run = world.finished().await?;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    assert_eq!(world.app.production.routed(), "green");
    Ok(())
}

impl World {
    /// The stage of the pause run `execution` asks its approvers about, once it does (within 10 s).
    async fn asked_at_pause(&self, execution: &str) -> Result<String> {
        for _ in 0..100 {
            let run = self.store.execution(&ExecutionId::from(execution)).await?.context("the run")?;
            let asking = run.deploy().into_iter().flat_map(|d| &d.pauses).find(|pause| pause.approval.is_some());
            if let Some(pause) = asking {
                return Ok(pause.stage.clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{execution} asked nobody within 10 s")
    }
}

#[tokio::test]
async fn a_pause_whose_hook_event_was_lost_is_found_by_the_reconcilers_look_and_continued() -> Result<()> {
    let mut world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    world.lose_deployment_events();
    // An hour of sandbox time (six seconds) to decide.
    world.deploy(canary_with_pause(60)).await?;
    let arn = world.paused().await?;
    let record = world.ecs.service_deployment(&arn).context("the record")?;
    assert_eq!(hook_statuses(&record), ["AWAITING_ACTION"], "ECS should be paused before the canary step");
    let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    assert!(run.deploy().is_some_and(|d| d.pauses.is_empty()), "nothing told the run: {run:#?}");

    world.reconcile_in(15).await?;

    let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    let pauses = run.deploy().cloned().map(|d| d.pauses).unwrap_or_default();
    assert_eq!(pauses.len(), 1, "the reconciler recorded the pause");
    assert_eq!((pauses[0].stage.as_str(), pauses[0].shifted_tenths), ("PRE_PRODUCTION_TRAFFIC_SHIFT", 0));
    // Nothing had moved yet, so sluice continues it itself: the deployer (woken by `Deployment Paused`) calls
    // ContinueServiceDeployment, and ECS moves on to the canary step and its next pause.
    let record = world.record_when(&arn, "pause again", |r| hook_statuses(r).len() == 2).await?;
    assert_eq!(hook_statuses(&record), ["SUCCEEDED", "AWAITING_ACTION"]);
    Ok(())
}

impl World {
    /// Run `web-1`'s ECS-native deployment, once it is paused awaiting action (within 30 s).
    async fn paused(&self) -> Result<String> {
        let arn = self.service_deployment().await?;
        self.record_when(&arn, "pause", |r| hook_statuses(r).iter().any(|s| s == "AWAITING_ACTION")).await?;
        Ok(arn)
    }

    /// ECS's record of service deployment `arn` once `ready` holds of it (within 30 s); `what` it waited to do.
    async fn record_when(&self, arn: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Result<Value> {
        for _ in 0..600 {
            if let Some(record) = self.ecs.service_deployment(arn).filter(|r| ready(r)) {
                return Ok(record);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("service deployment {arn} did not {what} within 30 s")
    }

    /// The pending start of `pipeline`'s run once it has been tried at least once (within 30 s).
    async fn waiting_start(&self, pipeline: &str) -> Result<sluice::pipeline::PendingEffect> {
        for _ in 0..300 {
            let state = self.store.load(pipeline).await?.context("the pipeline")?.value;
            let waiting = state.pending.iter().find(|p| p.effect.kind() == EffectKind::StartDeployment);
            if let Some(waiting) = waiting.filter(|p| p.attempts > 0) {
                return Ok(waiting.clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{pipeline}'s start was not tried within 30 s")
    }
}

#[tokio::test]
async fn in_superseded_mode_a_run_stops_the_ecs_service_deployment_in_its_way_and_that_run_ends_superseded()
-> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    // GIVEN web-1's ECS canary paused for a decision (ten hours of sandbox time: a minute)
    world.deploy(canary_with_pause(600)).await?;
    let stopped = world.paused().await?;
    // WHEN a run of another pipeline in superseded mode, hotfix-1, deploys to the same service
    world
        .deploy_run("hotfix", "hotfix-1", ExecutionMode::Superseded, native(TrafficShift::BlueGreen, Vec::new()))
        .await?;
    // THEN web-1's service deployment is stopped and rolled back, and web-1 ends superseded, naming the run
    let run = world.finished().await?;
    assert_eq!(run.status, Status::Superseded, "{run:#?}");
    let reason = run.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "superseded by execution hotfix-1 of pipeline hotfix, which needed the service: ECS failed the \
             deployment and rolled it back: Service deployment stopped by StopServiceDeployment (ROLLBACK)"
        ),
        "{reason}"
    );
    assert_eq!(world.ecs.service_deployment(&stopped).context("the record")?["status"], "ROLLBACK_SUCCESSFUL");
    // AND hotfix-1's start, tried again once its backoff has passed, deploys
    let waiting = world.waiting_start("hotfix").await?;
    let error = waiting.last_error.unwrap_or_default();
    assert!(error.contains(&format!("service prod/web was busy with {stopped}; stopped to make way")), "{error}");
    world.deployer_retries("hotfix").await?;
    let hotfix = world.finished_run("hotfix", "hotfix-1").await?;
    assert_eq!(hotfix.status, Status::Succeeded, "{hotfix:#?}");
    assert_ne!(hotfix.deploy().and_then(|d| d.service_deployment.clone()).as_deref(), Some(stopped.as_str()));
    Ok(())
}

#[tokio::test]
async fn in_queued_mode_a_run_waits_for_the_ecs_service_deployment_in_its_way_and_stops_nothing() -> Result<()> {
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    world.deploy(canary_with_pause(600)).await?;
    let going = world.paused().await?;
    world.deploy_run("hotfix", "hotfix-1", ExecutionMode::Queued, native(TrafficShift::BlueGreen, Vec::new())).await?;
    // hotfix-1's start found the service busy: it waits in the outbox, to be tried again, and stopped nothing.
    let waiting = world.waiting_start("hotfix").await?;
    let error = waiting.last_error.unwrap_or_default();
    assert!(
        error.contains(&format!(
            "service prod/web is busy with service deployment {going}; the deployment starts once it has ended \
             (queued mode)"
        )),
        "{error}"
    );
    assert_eq!(world.ecs.service_deployment(&going).context("the record")?["status"], "IN_PROGRESS");
    let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("web-1")?;
    assert_eq!(run.status, Status::Running(sluice::pipeline::Stage::DEPLOY));
    Ok(())
}

#[tokio::test]
async fn an_operator_rolls_back_an_ecs_canary_in_progress_and_the_run_ends_rolled_back_naming_them() -> Result<()> {
    use sluice::usecases::{DeploymentStops, Stop, order_rollback};
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    // GIVEN web-1's ECS canary paused for a decision (a minute of real time), its canary step on production
    world.deploy(canary_with_pause(600)).await?;
    let arn = world.paused().await?;
    // WHEN an operator orders it rolled back, with `sluice rollback`'s own wiring
    let stops = DeploymentStops {
        blue_green: sluice::adapters::CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(&world.aws)),
        ecs: sluice::adapters::EcsDeployer::new(aws_sdk_ecs::Client::new(&world.aws)),
    };
    let by = "arn:aws:iam::123456789012:user/carol";
    let ordered = order_rollback(&world.store, &stops, ("web", None), by, chrono::Utc::now()).await?;
    assert_eq!((ordered.deployment.as_str(), ordered.stop), (arn.as_str(), Stop::Made));
    // THEN ECS stops the service deployment and rolls it back, and the run says who rolled it back
    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    assert_eq!(
        run.reason.as_deref(),
        Some(
            "rolled back by arn:aws:iam::123456789012:user/carol (sluice rollback): ECS failed the deployment \
             and rolled it back: Service deployment stopped by StopServiceDeployment (ROLLBACK)."
        )
    );
    assert_eq!(world.ecs.service_deployment(&arn).context("the record")?["status"], "ROLLBACK_SUCCESSFUL");
    assert_eq!(world.app.production.routed(), "blue");
    let (subject, _) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web rolled back");
    Ok(())
}

#[tokio::test]
async fn an_ecs_blue_green_whose_new_tasks_fail_is_rolled_back_by_the_circuit_breaker_and_labelled_so() -> Result<()> {
    let world = world(true, Rollout::TasksFail, HookTime(Duration::from_secs(300))).await?;
    world.deploy(native(TrafficShift::BlueGreen, Vec::new())).await?;

    let run = world.finished().await?;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    assert_eq!(
        run.reason.as_deref(),
        Some(
            "ECS failed the deployment and rolled it back: the deployment circuit breaker tripped: the new tasks did \
             not reach a steady state"
        )
    );
    assert_eq!(world.app.production.routed(), "blue");
    let (subject, _) = world.notification().await?;
    assert_eq!(subject, "sluice: web sha-web rolled back");
    Ok(())
}

#[tokio::test]
async fn an_ecs_native_deployment_whose_events_are_lost_is_ended_by_the_reconcilers_look_at_the_service_deployment()
-> Result<()> {
    // GIVEN an ECS blue/green deployment that completes, its state changes lost
    let mut world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    world.lose_deployment_events();
    world.deploy(native(TrafficShift::BlueGreen, Vec::new())).await?;
    let arn = world.service_deployment().await?;
    world.record_when(&arn, "succeed", |r| r["status"] == "SUCCESSFUL").await?;
    let run = world.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    assert!(!run.status.is_finished(), "nothing told the run: {run:#?}");
    // WHEN the reconciler looks once the run has been quiet for ten minutes
    let done = world.reconcile_in(11).await?;
    // THEN DescribeServiceDeployments says it succeeded, and so does the run
    assert_eq!(done["moved"], 1, "{done}");
    let run = world.finished().await?;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    Ok(())
}

/// The status of each hook execution in a service deployment's record, in order.
fn hook_statuses(record: &Value) -> Vec<String> {
    let details = record["lifecycleHookDetails"].as_array().into_iter().flatten();
    details.filter_map(|h| h["status"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn an_operator_rolls_back_a_codedeploy_deployment_in_progress_and_the_run_ends_rolled_back_naming_them()
-> Result<()> {
    use sluice::usecases::{DeploymentStops, Stop, order_rollback};
    let world = world(true, Rollout::Healthy, HookTime(Duration::from_secs(300))).await?;
    // GIVEN web-1's blue/green deployment held at its BeforeInstall checks
    world.deploy(slow_blue_green(&world.app.test.url)).await?;
    let deployment_id = world.deploying_at("web-1", "BeforeInstall").await?;
    // WHEN an operator orders it rolled back, with `sluice rollback`'s own wiring
    let stops = DeploymentStops {
        blue_green: sluice::adapters::CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(&world.aws)),
        ecs: sluice::adapters::EcsDeployer::new(aws_sdk_ecs::Client::new(&world.aws)),
    };
    let by = "arn:aws:iam::123456789012:user/carol";
    let ordered = order_rollback(&world.store, &stops, ("web", None), by, chrono::Utc::now()).await?;
    assert_eq!((ordered.deployment.as_str(), ordered.stop), (deployment_id.as_str(), Stop::Made));
    // THEN CodeDeploy stops it, and the run says who rolled it back
    let run = world.finished().await?;
    let reason = run.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("rolled back by arn:aws:iam::123456789012:user/carol (sluice rollback): "), "{reason}");
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    Ok(())
}
