//! The ECS sandbox against ECS's documented contracts, spoken to by the real aws-sdk-ecs client: rolling updates
//! that complete, that trip the deployment circuit breaker and roll back, or that never finish without it; the
//! service's tasks and the digests their containers run, as the digest check reads them.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_ecs::types::{DeploymentCircuitBreaker, DeploymentConfiguration};
use serde_json::{Value, json};
use sluice_integration::{Stack, workspace_root};
use sluice_sandbox::ecs::{EcsSandbox, Events, Rollout};

const WAIT: Duration = Duration::from_secs(10);

struct World {
    stack: Stack,
    sandbox: EcsSandbox,
    ecs: aws_sdk_ecs::Client,
    events: String,
    current: String,
    new: String,
}

/// A service `prod/api` on the sample app's task definition, and a new revision of it to roll out.
async fn world(rollout: Rollout) -> Result<World> {
    let stack = Stack::create().await?;
    let sandbox = EcsSandbox::start(Events {
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        duration: Duration::from_millis(300),
    })
    .await?;
    let ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&stack.config).endpoint_url(&sandbox.endpoint).build(),
    );
    // AWS's documented pattern for these events.
    let events =
        stack.listen(&json!({ "source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"] })).await?;
    let taskdef: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace_root().join("infra/sample-app/taskdef.json"))?)?;
    let register = || {
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name(taskdef["containerDefinitions"][0]["name"].as_str().unwrap_or("app"))
            .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/sample-app:1")
            .build();
        ecs.register_task_definition()
            .family(taskdef["family"].as_str().unwrap_or("app"))
            .container_definitions(container)
            .send()
    };
    let current =
        register().await?.task_definition().and_then(|t| t.task_definition_arn()).context("an ARN")?.to_owned();
    let new = register().await?.task_definition().and_then(|t| t.task_definition_arn()).context("an ARN")?.to_owned();
    sandbox.service("prod", "api", &current, rollout);
    Ok(World { stack, sandbox, ecs, events, current, new })
}

fn configuration(breaker: bool) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .minimum_healthy_percent(100)
        .maximum_percent(200)
        .deployment_circuit_breaker(DeploymentCircuitBreaker::builder().enable(breaker).rollback(breaker).build())
        .build()
}

/// UpdateService of api to the new revision with `configuration`: the service as ECS answers.
async fn update(world: &World, configuration: DeploymentConfiguration) -> Result<aws_sdk_ecs::types::Service> {
    let updated = world
        .ecs
        .update_service()
        .cluster("prod")
        .service("api")
        .task_definition(&world.new)
        .deployment_configuration(configuration)
        .send()
        .await?;
    updated.service().cloned().context("UpdateService answered no service")
}

async fn roll_out(world: &World, breaker: bool) -> Result<()> {
    let service = update(world, configuration(breaker)).await?;
    let deployment = service.deployments().first().context("a deployment")?;
    assert_eq!(deployment.rollout_state().map(|s| s.as_str()), Some("IN_PROGRESS"));
    assert_eq!(deployment.task_definition(), Some(world.new.as_str()));
    Ok(())
}

/// The `eventName`s and reasons received, in order of arrival; each event has the fields of the documented example.
async fn event_names(world: &World, expected: usize, wait: Duration) -> Result<Vec<(String, String)>> {
    let received = world.stack.receive(&world.events, expected, wait).await?;
    let sample: Value =
        serde_json::from_str(include_str!("../../../shared/tests/fixtures/ecs-deployment-state-change.json"))?;
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    Ok(received
        .iter()
        .map(|e| {
            assert_eq!(keys(&e["detail"]), keys(&sample["detail"]));
            assert_eq!(e["detail-type"], sample["detail-type"]);
            assert_eq!(e["source"], "aws.ecs");
            assert_eq!(e["resources"][0], "arn:aws:ecs:us-east-1:123456789012:service/prod/api");
            (
                e["detail"]["eventName"].as_str().unwrap_or("?").to_owned(),
                e["detail"]["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect())
}

async fn service(world: &World) -> Result<aws_sdk_ecs::types::Service> {
    let described = world.ecs.describe_services().cluster("prod").services("api").send().await?;
    described.services().first().cloned().context("the service")
}

#[tokio::test]
async fn a_rolling_update_of_healthy_tasks_completes_with_ecss_events() -> Result<()> {
    let world = world(Rollout::Healthy).await?;
    roll_out(&world, true).await?;
    let names: Vec<String> = event_names(&world, 2, WAIT).await?.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"]);
    let service = service(&world).await?;
    assert_eq!(service.task_definition(), Some(world.new.as_str()));
    assert_eq!(service.deployments().len(), 1);
    assert_eq!(service.deployments()[0].rollout_state().map(|s| s.as_str()), Some("COMPLETED"));
    Ok(())
}

#[tokio::test]
async fn failing_tasks_trip_the_circuit_breaker_which_rolls_back_to_the_previous_task_definition() -> Result<()> {
    let world = world(Rollout::TasksFail).await?;
    roll_out(&world, true).await?;
    let events = event_names(&world, 4, WAIT).await?;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "SERVICE_DEPLOYMENT_FAILED",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "SERVICE_DEPLOYMENT_COMPLETED"
        ]
    );
    assert!(events[2].1.starts_with("ECS deployment circuit breaker: rolling back"), "{}", events[2].1);
    assert_eq!(service(&world).await?.task_definition(), Some(world.current.as_str()), "rolled back");
    Ok(())
}

#[tokio::test]
async fn without_the_circuit_breaker_a_rollout_of_failing_tasks_never_finishes() -> Result<()> {
    let world = world(Rollout::TasksFail).await?;
    roll_out(&world, false).await?;
    let names: Vec<String> =
        event_names(&world, 2, Duration::from_secs(2)).await?.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["SERVICE_DEPLOYMENT_IN_PROGRESS"]);
    let service = service(&world).await?;
    assert_eq!(service.deployments()[0].rollout_state().map(|s| s.as_str()), Some("IN_PROGRESS"));
    assert!(service.deployments()[0].failed_tasks() > 0);
    Ok(())
}

#[tokio::test]
async fn an_unknown_service_is_refused_and_reported_missing_as_ecs_does() -> Result<()> {
    let world = world(Rollout::Healthy).await?;
    let refused = world.ecs.update_service().cluster("prod").service("nope").task_definition(&world.new).send().await;
    let error = refused.expect_err("no such service");
    assert!(error.as_service_error().is_some_and(|e| e.is_service_not_found_exception()), "{error:?}");
    let described = world.ecs.describe_services().cluster("prod").services("nope").send().await?;
    assert!(described.services().is_empty());
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));
    Ok(())
}

#[tokio::test]
async fn updating_a_service_to_the_task_definition_it_runs_starts_no_deployment_as_ecs_does() -> Result<()> {
    let world = world(Rollout::Healthy).await?;
    roll_out(&world, true).await?;
    let first = service(&world).await?.deployments()[0].id().map(str::to_owned);
    // The same update again (a retried request): the same deployment, no second rollout.
    let again = world
        .ecs
        .update_service()
        .cluster("prod")
        .service("api")
        .task_definition(&world.new)
        .deployment_configuration(configuration(true))
        .send()
        .await?;
    let deployments = again.service().map(|s| s.deployments().to_vec()).unwrap_or_default();
    assert_eq!(deployments.iter().filter(|d| d.task_definition() == Some(world.new.as_str())).count(), 1);
    assert_eq!(deployments.iter().find(|d| d.status() == Some("PRIMARY")).and_then(|d| d.id()), first.as_deref());
    Ok(())
}

#[tokio::test]
async fn task_definitions_are_listed_newest_first_by_family_and_described_with_their_tags() -> Result<()> {
    let world = world(Rollout::Healthy).await?;
    let container = aws_sdk_ecs::types::ContainerDefinition::builder().name("app").image("nginx").build();
    let tag = aws_sdk_ecs::types::Tag::builder().key("sluice:effect").value("web-3-7").build();
    let registered = world
        .ecs
        .register_task_definition()
        .family("sample-app")
        .container_definitions(container)
        .tags(tag)
        .send()
        .await?;
    let arn = registered.task_definition().and_then(|t| t.task_definition_arn()).context("an ARN")?.to_owned();
    assert_eq!(registered.tags().len(), 1);

    let listed = world
        .ecs
        .list_task_definitions()
        .family_prefix("sample-app")
        .sort(aws_sdk_ecs::types::SortOrder::Desc)
        .max_results(2)
        .send()
        .await?;
    assert_eq!(listed.task_definition_arns(), [arn.clone(), world.new.clone()]);
    let plain = world.ecs.describe_task_definition().task_definition(&arn).send().await?;
    assert!(plain.tags().is_empty(), "tags only when asked for");
    let tagged = world
        .ecs
        .describe_task_definition()
        .task_definition(&arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await?;
    assert_eq!(tagged.tags().first().and_then(|t| t.value()), Some("web-3-7"));
    assert_eq!(tagged.task_definition().map(|t| t.revision()), Some(3));
    Ok(())
}

/// A BLUE_GREEN deployment configuration with a PAUSE hook at `stage` (`timeout` minutes, then `action`).
fn paused_at(stage: &str, timeout: i32, action: &str) -> DeploymentConfiguration {
    use aws_sdk_ecs::types::{
        DeploymentLifecycleHook, DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
        DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration, DeploymentStrategy,
    };
    let timeout = DeploymentLifecycleHookTimeoutConfiguration::builder()
        .timeout_in_minutes(timeout)
        .action(DeploymentLifecycleHookAction::from(action))
        .build();
    let pause = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::from(stage))
        .timeout_configuration(timeout)
        .build();
    DeploymentConfiguration::builder().strategy(DeploymentStrategy::BlueGreen).lifecycle_hooks(pause).build()
}

/// Starts a deployment of the new revision with `configuration`; its service deployment ARN.
async fn deploy_native(world: &World, configuration: DeploymentConfiguration) -> Result<String> {
    let service = update(world, configuration).await?;
    Ok(service.current_service_deployment().context("a service deployment")?.to_owned())
}

/// The service deployment as DescribeServiceDeployments tells it, once `ready` holds of it (within 10 s).
async fn described_when(
    world: &World,
    arn: &str,
    ready: impl Fn(&aws_sdk_ecs::types::ServiceDeployment) -> bool,
) -> Result<aws_sdk_ecs::types::ServiceDeployment> {
    for _ in 0..200 {
        let described = world.ecs.describe_service_deployments().service_deployment_arns(arn).send().await?;
        if let Some(found) = described.service_deployments().first().filter(|d| ready(d)) {
            return Ok(found.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("service deployment {arn} did not get there within 10 s")
}

fn awaiting(d: &aws_sdk_ecs::types::ServiceDeployment) -> Option<String> {
    use aws_sdk_ecs::types::{DeploymentLifecycleHookStatus, DeploymentLifecycleHookTargetType};
    d.lifecycle_hook_details()
        .iter()
        .find(|h| {
            h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
                && h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction)
        })
        .and_then(|h| h.hook_id())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_pause_hook_waits_for_continue_service_deployment_announced_by_a_hook_state_change() -> Result<()> {
    use aws_sdk_ecs::types::{DeploymentLifecycleHookAction, ServiceDeploymentStatus};
    let world = world(Rollout::Healthy).await?;
    let hooks = world.stack.listen(&json!({ "source": ["aws.ecs"], "detail-type": ["ECS Hook State Change"] })).await?;
    // ECS refuses a pause where traffic moves.
    let refused = world
        .ecs
        .update_service()
        .cluster("prod")
        .service("api")
        .task_definition(&world.new)
        .deployment_configuration(paused_at("PRODUCTION_TRAFFIC_SHIFT", 10, "ROLLBACK"))
        .send()
        .await;
    let error = refused.err().context("refused")?.into_service_error();
    assert!(error.is_invalid_parameter_exception(), "{error:?}");

    let arn = deploy_native(&world, paused_at("POST_TEST_TRAFFIC_SHIFT", 60, "ROLLBACK")).await?;
    let paused = described_when(&world, &arn, |d| awaiting(d).is_some()).await?;
    let hook_id = awaiting(&paused).context("a pause awaiting action")?;
    assert_eq!(paused.lifecycle_stage().map(|s| s.as_str()), Some("POST_TEST_TRAFFIC_SHIFT"));
    let detail = paused.lifecycle_hook_details().iter().find(|h| h.hook_id() == Some(&hook_id)).context("detail")?;
    assert_eq!(detail.timeout_action(), Some(&DeploymentLifecycleHookAction::Rollback));
    assert!(detail.expires_at().is_some_and(|at| at.secs() > chrono::Utc::now().timestamp()));
    let announced = world.stack.receive(&hooks, 1, WAIT).await?;
    assert_eq!(announced[0]["detail"]["eventName"], "HOOK_AWAITING_ACTION");
    assert_eq!(announced[0]["resources"][0], arn.as_str());

    // A hook that does not wait is refused; the paused one continues.
    let wrong = world
        .ecs
        .continue_service_deployment()
        .service_deployment_arn(&arn)
        .hook_id("ecs-pause-unknown")
        .action(DeploymentLifecycleHookAction::Continue)
        .send()
        .await;
    assert!(wrong.err().context("refused")?.into_service_error().is_invalid_parameter_exception());
    world
        .ecs
        .continue_service_deployment()
        .service_deployment_arn(&arn)
        .hook_id(&hook_id)
        .action(DeploymentLifecycleHookAction::Continue)
        .send()
        .await?;
    let done = described_when(&world, &arn, |d| d.status() != Some(&ServiceDeploymentStatus::InProgress)).await?;
    assert_eq!(done.status(), Some(&ServiceDeploymentStatus::Successful));
    assert_eq!(service(&world).await?.task_definition(), Some(world.new.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_pause_nobody_answers_takes_its_timeout_action_and_a_stopped_deployment_rolls_back_and_is_listed_so()
-> Result<()> {
    use aws_sdk_ecs::types::{ServiceDeploymentStatus, StopServiceDeploymentStopType};
    let world = world(Rollout::Healthy).await?;
    // Timed out (one minute, 300 ms here), ROLLBACK: the service goes back to the revision it ran.
    let arn = deploy_native(&world, paused_at("POST_SCALE_UP", 1, "ROLLBACK")).await?;
    let ended =
        described_when(&world, &arn, |d| d.status() == Some(&ServiceDeploymentStatus::RollbackSuccessful)).await?;
    let timed_out = ended.lifecycle_hook_details().iter().any(|h| h.status().map(|s| s.as_str()) == Some("TIMED_OUT"));
    assert!(timed_out, "{ended:?}");
    assert_eq!(service(&world).await?.task_definition(), Some(world.current.as_str()));

    // Stopped while paused, ROLLBACK: rolled back, and a stopped deployment cannot be stopped again.
    let arn = deploy_native(&world, paused_at("POST_SCALE_UP", 60, "CONTINUE")).await?;
    described_when(&world, &arn, |d| awaiting(d).is_some()).await?;
    let stop = |arn: String| {
        world
            .ecs
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(StopServiceDeploymentStopType::Rollback)
            .send()
    };
    // ListServiceDeployments, filtered by status, lists the ongoing one only.
    let list = |status: Option<ServiceDeploymentStatus>| {
        world.ecs.list_service_deployments().cluster("prod").service("api").set_status(status.map(|s| vec![s])).send()
    };
    let ongoing = list(Some(ServiceDeploymentStatus::InProgress)).await?;
    let arns: Vec<&str> = ongoing.service_deployments().iter().filter_map(|d| d.service_deployment_arn()).collect();
    assert_eq!(arns, [arn.as_str()]);
    stop(arn.clone()).await?;
    let ended =
        described_when(&world, &arn, |d| d.status() == Some(&ServiceDeploymentStatus::RollbackSuccessful)).await?;
    assert!(
        ended.rollback().and_then(|r| r.reason()).is_some_and(|r| r.contains("StopServiceDeployment")),
        "{ended:?}"
    );
    assert!(stop(arn.clone()).await.err().context("refused")?.into_service_error().is_invalid_parameter_exception());
    assert!(list(Some(ServiceDeploymentStatus::InProgress)).await?.service_deployments().is_empty());
    let all = list(None).await?;
    let statuses: Vec<_> = all.service_deployments().iter().map(|d| (d.service_deployment_arn(), d.status())).collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0], (Some(arn.as_str()), Some(&ServiceDeploymentStatus::RollbackSuccessful)), "newest first");
    assert_eq!(service(&world).await?.task_definition(), Some(world.current.as_str()));
    Ok(())
}

#[tokio::test]
async fn the_digest_check_reads_a_services_tasks_and_what_their_containers_run() -> Result<()> {
    use sluice::contract::ports::{DeployError, ServiceTasks};
    let world = world(Rollout::Healthy).await?;
    let ecs = sluice::adapters::EcsDeployer::new(world.ecs.clone());
    // The service's two tasks run its task definition; the image named by tag resolved to one digest.
    let tasks = ecs.tasks("prod", "api").await?;
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|task| task.task_definition == world.current), "{tasks:?}");
    let digests: Vec<Option<String>> = tasks.iter().map(|task| task.containers[0].digest.clone()).collect();
    let resolved = digests[0].clone().context("a digest")?;
    assert!(resolved.starts_with("sha256:") && digests.iter().all(|d| d.as_deref() == Some(resolved.as_str())));
    let release = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/sample-app@{resolved}");
    let check = sluice::deploy::digests::judge(&release, &world.current, &tasks).context("a digest to compare")?;
    assert_eq!((check.passed(), check.tasks), (true, 2));
    // Told to run another digest (the tag moved), the same tasks fail the check.
    world.sandbox.runs_digest("prod", "api", "sha256:0000000000000000000000000000000000000000000000000000000000000001");
    let moved = ecs.tasks("prod", "api").await?;
    let check = sluice::deploy::digests::judge(&release, &world.current, &moved).context("a digest to compare")?;
    assert_eq!((check.passed(), check.others), (false, 2));
    // A service ECS does not know is refused, as ECS does.
    let refused = ecs.tasks("prod", "gone").await;
    assert!(matches!(refused, Err(DeployError::Refused { .. })), "{refused:?}");
    Ok(())
}
