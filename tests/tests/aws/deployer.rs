//! The deployer function against S3 and DynamoDB in moto and the sandbox's ECS and CodeDeploy, spoken to by the
//! real SDK clients: a run in its deploy stage registers the build's task definition with the built image and
//! starts a CodeDeploy blue/green deployment whose AppSpec names the task definition and sluice's hooks, or an ECS
//! rolling update; a retried effect finds the deployment it created; files that cannot be deployed fail the run.

use std::time::Duration;

use anyhow::{Context, Result};
use deployer::handler::{AwsApp, Config, on_event};
use serde_json::json;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::PipelineStore;
use sluice::contract::testing::RecordingRunner;
use sluice::definitions::{Check, DeployTarget, Rolling};
use sluice::pipeline::{Effect, EffectKind, Event, ExecutionId, Stage, Status};
use sluice::usecases::EffectRunner;
use sluice_integration::{Stack, aws_config_with, built_run, moto};
use sluice_sandbox::codedeploy::{CodeDeploySandbox, Settings};
use sluice_sandbox::ecs::{EcsSandbox, Events, Rollout};
use sluice_sandbox::sample_app::SampleApp;

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sample-app@sha256:4e2f0a6c7b1d9e8f3a2b5c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";
const TASKDEF: &str = include_str!("../../../infra/sample-app/taskdef.json");
const APPSPEC: &str = include_str!("../../../infra/sample-app/appspec.yaml");
/// Stands for the sample app's test listener in the checks (its port is known once it serves).
const SAMPLE_APP: &str = "http://sample-app.test";

struct World {
    stack: Stack,
    store: DynamoDbStore,
    codedeploy_sandbox: CodeDeploySandbox,
    ecs_sandbox: EcsSandbox,
    codedeploy: aws_sdk_codedeploy::Client,
    ecs: aws_sdk_ecs::Client,
    app: AwsApp,
}

/// Run `web-1` pushed and built (its files in S3), waiting in its deploy stage for `target`.
async fn deploying(target: DeployTarget, taskdef: &str) -> Result<World> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let sample = SampleApp::serve(true).await?;
    let codedeploy_sandbox = CodeDeploySandbox::start(Settings {
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        minute: Duration::from_millis(20),
        hook_timeout: Duration::from_secs(10),
        app: Some(std::sync::Arc::clone(&sample)),
    })
    .await?;
    codedeploy_sandbox.deployment_group("web", "web-prod");
    let ecs_sandbox = EcsSandbox::start(Events {
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        duration: Duration::from_millis(50),
    })
    .await?;
    let previous = "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0";
    ecs_sandbox.service("prod", "web", previous, Rollout::Healthy);
    let aws = aws_config_with(
        &moto().endpoint,
        &[("codedeploy", &codedeploy_sandbox.endpoint), ("ecs", &ecs_sandbox.endpoint)],
    )
    .await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&aws);
    let ecs = aws_sdk_ecs::Client::new(&aws);

    // sluice's hooks function, as CodeDeploy invokes it.
    let common = sluice::runtime::config::Common { table: stack.table.clone(), event_bus: stack.bus.clone() };
    let hooks = std::sync::Arc::new(hooks::handler::AwsApp::from_aws(&aws, &common)?);
    codedeploy_sandbox.function("sluice-hooks", move |payload| {
        let hooks = std::sync::Arc::clone(&hooks);
        async move {
            let _ = hooks::handler::on_event(&hooks, &payload, None, chrono::Utc::now()).await;
        }
    });

    let mut target = target;
    if let DeployTarget::BlueGreen(blue_green) = &mut target {
        for check in &mut blue_green.checks {
            check.url = check.url.replace(SAMPLE_APP, &sample.test.url);
        }
    }
    let runner = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
    built_run(&stack, &store, &runner, target, None, &[("taskdef.json", taskdef), ("appspec.yaml", APPSPEC)], IMAGE)
        .await?;
    let config = Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_HOOKS_FUNCTION" => Some("sluice-hooks".into()),
        _ => None,
    })?;
    let app = AwsApp::from_aws(&aws, &config);
    Ok(World { stack, store, codedeploy_sandbox, ecs_sandbox, codedeploy, ecs, app })
}

fn blue_green(checks: &[&str]) -> DeployTarget {
    let checks = checks.iter().map(|hook| Check::new(*hook, format!("{SAMPLE_APP}/health"))).collect();
    DeployTarget::BlueGreen(sluice::contract::testing::blue_green(checks))
}

const REQUESTED: fn() -> serde_json::Value =
    || json!({ "detail-type": "Deployment Requested", "detail": { "pipeline": "web", "execution_id": "web-1" } });

impl World {
    async fn run(&self) -> Result<sluice::pipeline::Execution> {
        self.store.execution(&ExecutionId::from("web-1")).await?.context("the run")
    }
}

#[tokio::test]
async fn a_blue_green_run_registers_its_image_and_codedeploy_calls_sluices_hooks_once_per_effect() -> Result<()> {
    let world = deploying(blue_green(&["BeforeAllowTraffic"]), TASKDEF).await?;
    let state = world.store.load("web").await?.context("state")?.value;
    let pending = state.pending.iter().find(|p| p.effect.kind() == EffectKind::StartDeployment).context("due")?;
    let (effect_id, effect): (String, Effect) = (pending.id.clone(), pending.effect.clone());

    on_event(&world.app, &REQUESTED(), chrono::Utc::now()).await?;

    // The run records the deployment CodeDeploy created, and the effect is done.
    let run = world.run().await?;
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    let deploy = run.deploy().cloned().context("deploy facts")?;
    let deployment_id = deploy.deployment_id.context("a deployment id")?;
    // ... and the task definition it registered for it.
    let registered = deploy.task_definition.context("the task definition")?;
    assert!(registered.contains(":task-definition/sample-app:"), "{registered}");
    let state = world.store.load("web").await?.context("state")?.value;
    assert!(state.pending.iter().all(|p| p.effect.kind() != EffectKind::StartDeployment));
    let info = world.codedeploy.get_deployment().deployment_id(&deployment_id).send().await?;
    let info = info.deployment_info().context("info")?;
    assert_eq!((info.application_name(), info.deployment_group_name()), (Some("web"), Some("web-prod")));
    assert!(info.description().unwrap_or_default().contains(&format!("[sluice effect {effect_id}]")));

    // CodeDeploy invokes the hooks function at the checked lifecycle event: the AppSpec named it there.
    for _ in 0..100 {
        if world
            .codedeploy_sandbox
            .lifecycle(&deployment_id)
            .iter()
            .any(|(e, s)| e == "AfterAllowTraffic" && s != "InProgress")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lifecycle = world.codedeploy_sandbox.lifecycle(&deployment_id);
    assert!(lifecycle.contains(&("BeforeAllowTraffic".into(), "Succeeded".into())), "{lifecycle:?}");
    assert!(lifecycle.contains(&("AfterInstall".into(), "Skipped".into())), "{lifecycle:?}");

    // The task definition registered is the build's, with the image in place of <IMAGE1_NAME>.
    let registered = world.ecs.describe_services().cluster("prod").services("web").send().await?;
    assert!(
        registered.services()[0].task_definition().is_some_and(|t| t.ends_with("sample-app:0")),
        "blue/green leaves the service to CodeDeploy"
    );

    // The same effect carried out again (a crash before its result was saved) finds the deployment it created.
    let again = world.app.effects.run(&effect_id, &effect).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(
        again,
        Some(Event::DeploymentStarted {
            execution_id: ExecutionId::from("web-1"),
            deployment_id: deployment_id.clone(),
            service_deployment: None,
            // Found by its description, and the task definition its first attempt registered by its tag.
            task_definition: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:1".into()),
            previous_task_definition: None,
            in_alarm: None,
        })
    );
    let listed =
        world.codedeploy.list_deployments().application_name("web").deployment_group_name("web-prod").send().await?;
    assert_eq!(listed.deployments(), [deployment_id]);
    drop(world.stack);
    Ok(())
}

#[tokio::test]
async fn a_rolling_run_updates_the_service_to_the_registered_task_definition() -> Result<()> {
    let target =
        DeployTarget::Rolling(Rolling { minimum_healthy_percent: 50, ..sluice::contract::testing::rolling(vec![]) });
    let world = deploying(target, TASKDEF).await?;
    let state = world.store.load("web").await?.context("state")?.value;
    let pending = state.pending.iter().find(|p| p.effect.kind() == EffectKind::StartDeployment).context("due")?;
    let (effect_id, effect): (String, Effect) = (pending.id.clone(), pending.effect.clone());
    on_event(&world.app, &REQUESTED(), chrono::Utc::now()).await?;

    let run = world.run().await?;
    let deploy = run.deploy().cloned().context("deploy facts")?;
    // What the service ran before, from UpdateService's answer: what failed AfterRollout checks go back to.
    assert_eq!(
        deploy.previous_task_definition.as_deref(),
        Some("arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0")
    );
    let deployment_id = deploy.deployment_id.context("a deployment id")?;
    assert!(deployment_id.starts_with("ecs-svc/"), "{deployment_id}");

    // The same effect carried out again (a crash before its result was saved): ECS takes no client token, so the
    // deployer finds the revision it registered by its tag, and updating the service to what it runs starts nothing.
    let again = world.app.effects.run(&effect_id, &effect).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(Event::DeploymentStarted { deployment_id: again, task_definition, .. }) = again else {
        anyhow::bail!("the retry did not find the deployment: {again:?}");
    };
    assert_eq!(again, deployment_id);
    assert_eq!(task_definition.as_deref(), Some("arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:1"));
    let revisions = world.ecs.list_task_definitions().family_prefix("sample-app").send().await?;
    assert_eq!(revisions.task_definition_arns().len(), 1, "one revision registered");
    let described = world.ecs.describe_services().cluster("prod").services("web").send().await?;
    let service = &described.services()[0];
    assert_eq!(service.task_definition(), Some("arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:1"));
    let configuration = service.deployment_configuration().context("configuration")?;
    assert_eq!((configuration.minimum_healthy_percent(), configuration.maximum_percent()), (Some(50), Some(200)));
    let breaker = configuration.deployment_circuit_breaker().context("breaker")?;
    assert!(breaker.enable() && breaker.rollback());
    assert_eq!(service.deployments()[0].id(), Some(deployment_id.as_str()));
    drop(world.ecs_sandbox);
    Ok(())
}

#[tokio::test]
async fn a_task_definition_without_the_image_placeholder_fails_the_run_naming_the_file_and_field() -> Result<()> {
    let taskdef = TASKDEF.replace("<IMAGE1_NAME>", "nginx:latest");
    let world = deploying(blue_green(&[]), &taskdef).await?;
    on_event(&world.app, &REQUESTED(), chrono::Utc::now()).await?;
    let run = world.run().await?;
    assert_eq!(run.status, Status::Failed);
    let reason = run.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "the deployment could not start: taskdef.json: no `containerDefinitions[].image` is <IMAGE1_NAME>"
        ),
        "{reason}"
    );
    let listed =
        world.codedeploy.list_deployments().application_name("web").deployment_group_name("web-prod").send().await?;
    assert!(listed.deployments().is_empty(), "nothing was deployed");
    Ok(())
}

#[tokio::test]
async fn a_deployment_group_codedeploy_does_not_know_fails_the_run_with_codedeploys_words() -> Result<()> {
    let mut target = blue_green(&[]);
    if let DeployTarget::BlueGreen(bg) = &mut target {
        bg.deployment_group = "no-such-group".into();
    }
    let world = deploying(target, TASKDEF).await?;
    on_event(&world.app, &REQUESTED(), chrono::Utc::now()).await?;
    let run = world.run().await?;
    assert_eq!(run.status, Status::Failed);
    let reason = run.reason.unwrap_or_default();
    assert!(reason.contains("CodeDeploy refused the deployment: DeploymentGroupDoesNotExistException"), "{reason}");
    Ok(())
}

#[tokio::test]
async fn a_pipeline_that_names_its_container_gets_the_image_there_without_a_placeholder() -> Result<()> {
    let taskdef: serde_json::Value = serde_json::from_str(TASKDEF)?;
    let container = taskdef["containerDefinitions"][0]["name"].as_str().context("a container name")?.to_owned();
    let target = DeployTarget::Rolling(Rolling {
        container: Some(container.clone()),
        ..sluice::contract::testing::rolling(vec![])
    });
    // The build's taskdef.json names a fixed image, as a task definition exported from ECS does.
    let world = deploying(target, &TASKDEF.replace("<IMAGE1_NAME>", "nginx:latest")).await?;
    on_event(&world.app, &REQUESTED(), chrono::Utc::now()).await?;

    let run = world.run().await?;
    assert_eq!(run.status, Status::Running(Stage::DEPLOY), "{:?}", run.reason);
    let arn = run.deploy().and_then(|d| d.task_definition.clone()).context("the registered task definition")?;
    let described = world.ecs.describe_task_definition().task_definition(&arn).send().await?;
    let registered = described.task_definition().context("the task definition")?;
    let named = registered.container_definitions().iter().find(|c| c.name() == Some(container.as_str()));
    assert_eq!(named.and_then(|c| c.image()), Some(IMAGE));
    drop(world.ecs_sandbox);
    Ok(())
}

#[tokio::test]
async fn a_rollback_ecs_refuses_ends_the_run_failed_saying_the_new_task_definition_still_runs() -> Result<()> {
    let rolling = sluice::contract::testing::rolling(vec![Check::new("AfterRollout", "http://web/health")]);
    let world = deploying(DeployTarget::Rolling(rolling.clone()), TASKDEF).await?;
    // A rollback for a service ECS does not know (deleted meanwhile, say).
    let gone = DeployTarget::Rolling(Rolling { service: "deleted".into(), ..rolling });
    let effect = Effect::RollBack {
        execution_id: ExecutionId::from("web-1"),
        deployment_id: "ecs-svc/1".into(),
        stage: sluice::pipeline::Stage::DEPLOY,
        target: gone,
        task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0".into(),
        artifacts: None,
    };
    let answer = world.app.effects.run("web-9-0", &effect).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(Event::DeploymentFailed { rolled_back, reason, deployment_id, .. }) = answer else {
        anyhow::bail!("expected the run to fail: {answer:?}");
    };
    assert!(!rolled_back, "nothing went back");
    assert_eq!(deployment_id.as_deref(), Some("ecs-svc/1"));
    assert!(reason.starts_with("ECS refused the rollback to arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0 (ServiceNotFoundException: Service not found.)"), "{reason}");
    assert!(reason.ends_with("the service still runs the new task definition"), "{reason}");
    drop(world.ecs_sandbox);
    Ok(())
}

#[tokio::test]
async fn a_blue_green_rollback_deploys_the_builds_appspec_naming_what_ran_before_once_per_effect() -> Result<()> {
    let world = deploying(blue_green(&["BeforeAllowTraffic"]), TASKDEF).await?;
    let replaced = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = std::sync::Arc::clone(&replaced);
    world.codedeploy_sandbox.on_replaced("web-prod", move |task_definition| {
        *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task_definition.to_owned());
    });
    let before = "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0";
    let artifacts = world.run().await?.build.and_then(|build| build.artifacts).context("the build's artifacts")?;
    let effect = Effect::RollBack {
        execution_id: ExecutionId::from("web-1"),
        deployment_id: "d-1".into(),
        stage: Stage::DEPLOY,
        target: blue_green(&["BeforeAllowTraffic"]),
        task_definition: before.into(),
        artifacts: Some(artifacts),
    };
    let answer = world.app.effects.run("web-9-1", &effect).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(Event::DeploymentFailed { rolled_back, reason, .. }) = answer else { anyhow::bail!("{answer:?}") };
    assert!(rolled_back, "{reason}");
    assert!(
        reason.starts_with(&format!("sluice rolled service web back to {before} (CodeDeploy deployment d-")),
        "{reason}"
    );
    let listed =
        world.codedeploy.list_deployments().application_name("web").deployment_group_name("web-prod").send().await?;
    let [deployment_id] = listed.deployments() else { anyhow::bail!("one deployment: {listed:?}") };
    let info = world.codedeploy.get_deployment().deployment_id(deployment_id).send().await?;
    let description = info.deployment_info().and_then(|i| i.description()).unwrap_or_default().to_owned();
    // Its description names no run: its events are not taken for the run's own deployment's.
    assert_eq!(description, format!("sluice rollback to {before} [sluice effect web-9-1]"));
    assert_eq!(sluice::deploy::execution_of(&description), None);
    // CodeDeploy puts the service on the task definition the AppSpec names, without hooks in the way.
    for _ in 0..200 {
        if replaced.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(replaced.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_deref(), Some(before));
    assert!(world.codedeploy_sandbox.lifecycle(deployment_id).iter().all(|(_, status)| status != "Failed"));
    // Carried out again (a crash before its answer was saved), it finds the deployment it made.
    let again = world.app.effects.run("web-9-1", &effect).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(matches!(again, Some(Event::DeploymentFailed { rolled_back: true, .. })), "{again:?}");
    let listed =
        world.codedeploy.list_deployments().application_name("web").deployment_group_name("web-prod").send().await?;
    assert_eq!(listed.deployments().len(), 1);
    drop(world.stack);
    Ok(())
}

#[tokio::test]
async fn an_ecs_native_rollback_starts_a_deployment_of_its_strategy_back_to_what_ran_before() -> Result<()> {
    let native = sluice::contract::testing::ecs_native(sluice::definitions::TrafficShift::BlueGreen);
    let world = deploying(DeployTarget::EcsNative(native.clone()), TASKDEF).await?;
    let before = "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0";
    // The service runs another revision now (the run's, which failed its verification).
    on_event(&world.app, &REQUESTED(), chrono::Utc::now()).await?;
    let ours = world.run().await?.deploy().and_then(|deploy| deploy.task_definition.clone()).context("registered")?;
    assert_eq!(world.run().await?.deploy().and_then(|d| d.previous_task_definition.clone()).as_deref(), Some(before));
    let effect = Effect::RollBack {
        execution_id: ExecutionId::from("web-1"),
        deployment_id: "ecs-svc/1".into(),
        stage: Stage::DEPLOY,
        target: DeployTarget::EcsNative(native),
        task_definition: before.into(),
        artifacts: None,
    };
    let answer = world.app.effects.run("web-9-2", &effect).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(Event::DeploymentFailed { rolled_back, reason, .. }) = answer else { anyhow::bail!("{answer:?}") };
    assert!(rolled_back, "{reason}");
    assert!(
        reason.starts_with(&format!("sluice rolled service web back to {before} (ECS deployment ecs-svc/")),
        "{reason}"
    );
    let described = world.ecs.describe_services().cluster("prod").services("web").send().await?;
    let service = described.services().first().context("the service")?;
    assert_eq!(service.task_definition(), Some(before), "from {ours}");
    let strategy = service.deployment_configuration().and_then(|c| c.strategy()).map(|s| s.as_str().to_owned());
    assert_eq!(strategy.as_deref(), Some("BLUE_GREEN"));
    assert!(
        service.deployment_configuration().is_none_or(|c| c.lifecycle_hooks().is_empty()),
        "the way back calls no hook"
    );
    drop(world.ecs_sandbox);
    Ok(())
}
