//! The CodeDeploy sandbox against CodeDeploy's documented contracts, spoken to by the real aws-sdk-codedeploy
//! client: the ECS blue/green lifecycle in order, hooks invoked with the documented payload and waited for, failure
//! and timeout rolling back, one active deployment per group, traffic shifted per configuration, and the
//! documented state-change events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::codedeploy::{CodeDeployEvent, CodeDeployLifecycleEvent};
use aws_sdk_codedeploy::types::{AppSpecContent, LifecycleEventStatus, RevisionLocation, RevisionLocationType};
use serde_json::json;
use sluice_integration::{Stack, get};
use sluice_sandbox::codedeploy::{CodeDeploySandbox, LIFECYCLE, Settings};
use sluice_sandbox::sample_app::SampleApp;

const WAIT: Duration = Duration::from_secs(10);
const APPSPEC: &str = "version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:2
        LoadBalancerInfo:
          ContainerName: sample-app
          ContainerPort: 8080
Hooks:
  - AfterAllowTestTraffic: sluice-hooks
  - BeforeAllowTraffic: sluice-hooks
";

/// What the test's hook function answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Pass,
    FailAt(&'static str),
    Silent,
    /// What `GET <test listener>/health` answers: Succeeded on 200, Failed otherwise.
    CheckTestListener,
}

struct World {
    stack: Stack,
    sandbox: CodeDeploySandbox,
    codedeploy: aws_sdk_codedeploy::Client,
    events: String,
    invocations: Arc<Mutex<Vec<CodeDeployLifecycleEvent>>>,
}

async fn world(answer: Answer) -> Result<World> {
    world_with(answer, None).await
}

async fn world_with(answer: Answer, app: Option<Arc<SampleApp>>) -> Result<World> {
    let stack = Stack::create().await?;
    let test_listener = app.as_ref().map(|app| format!("{}/health", app.test.url));
    let sandbox = CodeDeploySandbox::start(Settings {
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
        minute: Duration::from_millis(20),
        hook_timeout: Duration::from_millis(500),
        app,
    })
    .await?;
    sandbox.deployment_group("sample-app", "sample-app-prod");
    let codedeploy = aws_sdk_codedeploy::Client::from_conf(
        aws_sdk_codedeploy::config::Builder::from(&stack.config).endpoint_url(&sandbox.endpoint).build(),
    );
    let events = stack
        .listen(&json!({ "source": ["aws.codedeploy"], "detail-type": ["CodeDeploy Deployment State-change Notification"] }))
        .await?;
    let invocations = Arc::new(Mutex::new(Vec::new()));
    // The hook function: reads the documented payload, answers as scripted, as a hook Lambda function does.
    let (client, seen) = (codedeploy.clone(), Arc::clone(&invocations));
    sandbox.function("sluice-hooks", move |payload| {
        let (client, seen, test_listener) = (client.clone(), Arc::clone(&seen), test_listener.clone());
        async move {
            let Ok(event) = serde_json::from_value::<CodeDeployLifecycleEvent>(payload) else { return };
            // Which lifecycle event is this? The one of the deployment's target that is in progress.
            let event_name = in_progress(&client, &event.deployment_id).await.unwrap_or_default();
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(event.clone());
            let status = match answer {
                Answer::Silent => return,
                Answer::FailAt(at) if at == event_name => LifecycleEventStatus::Failed,
                Answer::CheckTestListener => match get(test_listener.as_deref().unwrap_or_default()).await {
                    Ok(200) => LifecycleEventStatus::Succeeded,
                    _ => LifecycleEventStatus::Failed,
                },
                _ => LifecycleEventStatus::Succeeded,
            };
            let _ = client
                .put_lifecycle_event_hook_execution_status()
                .deployment_id(&event.deployment_id)
                .lifecycle_event_hook_execution_id(&event.lifecycle_event_hook_execution_id)
                .status(status)
                .send()
                .await;
        }
    });
    Ok(World { stack, sandbox, codedeploy, events, invocations })
}

/// The lifecycle event of the deployment's target that is in progress, as a hook function finds it.
async fn in_progress(client: &aws_sdk_codedeploy::Client, deployment_id: &str) -> Option<String> {
    let targets = client.list_deployment_targets().deployment_id(deployment_id).send().await.ok()?;
    let target_id = targets.target_ids().first()?.clone();
    let target = client.get_deployment_target().deployment_id(deployment_id).target_id(target_id).send().await.ok()?;
    let events = target.deployment_target()?.ecs_target()?.lifecycle_events().to_vec();
    events
        .iter()
        .find(|e| e.status().is_some_and(|s| s.as_str() == "InProgress"))
        .and_then(|e| e.lifecycle_event_name().map(str::to_owned))
}

async fn deploy(world: &World, config: &str) -> Result<String> {
    let revision = RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(APPSPEC).build())
        .build();
    let created = world
        .codedeploy
        .create_deployment()
        .application_name("sample-app")
        .deployment_group_name("sample-app-prod")
        .deployment_config_name(config)
        .revision(revision)
        .send()
        .await?;
    created.deployment_id().map(str::to_owned).context("a deployment id")
}

/// The deployment's state-change events, as aws_lambda_events reads them.
async fn states(world: &World, expected: usize) -> Result<Vec<String>> {
    let received = world.stack.receive(&world.events, expected, WAIT).await?;
    received
        .into_iter()
        .map(|event| {
            let event: CodeDeployEvent = serde_json::from_value(event)?;
            Ok(event.detail.state)
        })
        .collect()
}

async fn status(world: &World, id: &str) -> Result<(String, Option<String>)> {
    let info = world.codedeploy.get_deployment().deployment_id(id).send().await?;
    let info = info.deployment_info().context("deployment info")?;
    let status = info.status().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let code = info.error_information().and_then(|e| e.code()).map(|c| c.as_str().to_owned());
    Ok((status, code))
}

#[tokio::test]
async fn a_deployment_goes_through_the_lifecycle_in_order_and_calls_each_hook_of_the_appspec() -> Result<()> {
    let world = world(Answer::Pass).await?;
    let id = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;

    let received = world.stack.receive(&world.events, 2, WAIT).await?;
    let states: Vec<String> =
        received.iter().map(|e| e["detail"]["state"].as_str().unwrap_or("?").to_owned()).collect();
    assert_eq!(states, ["START", "SUCCESS"]);
    // The events have the fields of AWS's sample, and the hook payload those of AWS's sample invocation.
    let sample: serde_json::Value =
        serde_json::from_str(include_str!("../../../shared/tests/fixtures/example-codedeploy-deployment-event.json"))?;
    let keys = |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(&received[0]["detail"]), keys(&sample["detail"]));
    assert_eq!(received[0]["detail-type"], sample["detail-type"]);
    assert_eq!(received[0]["resources"].as_array().map(Vec::len), Some(2));
    assert_eq!(status(&world, &id).await?, ("Succeeded".to_owned(), None));
    let lifecycle = world.sandbox.lifecycle(&id);
    let names: Vec<&str> = lifecycle.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, LIFECYCLE.iter().map(|(name, _)| *name).collect::<Vec<_>>());
    let hooked: Vec<&str> = lifecycle.iter().filter(|(_, s)| s != "Skipped").map(|(n, _)| n.as_str()).collect();
    assert_eq!(hooked.len(), 5, "Install, AllowTestTraffic, AllowTraffic and the two hooks: {lifecycle:?}");
    let invocations = world.invocations.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(invocations.len(), 2, "AfterAllowTestTraffic and BeforeAllowTraffic");
    assert!(invocations.iter().all(|i| i.deployment_id == id));
    assert_eq!(world.sandbox.traffic(&id), [100]);
    let targets = world.codedeploy.list_deployment_targets().deployment_id(&id).send().await?;
    assert_eq!(targets.target_ids().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_hook_that_reports_failed_fails_the_deployment_before_traffic_moves() -> Result<()> {
    let world = world(Answer::FailAt("BeforeAllowTraffic")).await?;
    let id = deploy(&world, "CodeDeployDefault.ECSCanary10Percent5Minutes").await?;

    assert_eq!(states(&world, 2).await?, ["START", "FAILURE"]);
    assert_eq!(status(&world, &id).await?, ("Failed".to_owned(), Some("HOOK_EXECUTION_FAILURE".to_owned())));
    let lifecycle = world.sandbox.lifecycle(&id);
    assert_eq!(lifecycle.last(), Some(&("BeforeAllowTraffic".to_owned(), "Failed".to_owned())));
    assert!(world.sandbox.traffic(&id).is_empty(), "production traffic never moved");
    Ok(())
}

#[tokio::test]
async fn a_hook_that_never_answers_times_out_and_fails_the_deployment() -> Result<()> {
    let world = world(Answer::Silent).await?;
    let id = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    assert_eq!(states(&world, 2).await?, ["START", "FAILURE"]);
    assert_eq!(status(&world, &id).await?, ("Failed".to_owned(), Some("TIMEOUT".to_owned())));
    Ok(())
}

#[tokio::test]
async fn canary_and_linear_configurations_shift_traffic_in_their_steps() -> Result<()> {
    let world = world(Answer::Pass).await?;
    let canary = deploy(&world, "CodeDeployDefault.ECSCanary10Percent5Minutes").await?;
    assert_eq!(states(&world, 2).await?, ["START", "SUCCESS"]);
    assert_eq!(world.sandbox.traffic(&canary), [10, 100]);
    let linear = deploy(&world, "CodeDeployDefault.ECSLinear10PercentEvery1Minutes").await?;
    assert_eq!(states(&world, 2).await?, ["START", "SUCCESS"]);
    assert_eq!(world.sandbox.traffic(&linear), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    Ok(())
}

#[tokio::test]
async fn a_second_deployment_while_one_is_active_is_refused() -> Result<()> {
    let world = world(Answer::Silent).await?;
    deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    let second = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await;
    let message = format!("{:?}", second.expect_err("one active deployment per group"));
    assert!(message.contains("DeploymentLimitExceededException"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_hook_status_reported_twice_or_for_nothing_is_refused_as_codedeploy_does() -> Result<()> {
    let world = world(Answer::Pass).await?;
    let id = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    states(&world, 2).await?;
    let first = world.invocations.lock().unwrap_or_else(|e| e.into_inner())[0].clone();
    let again = world
        .codedeploy
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&id)
        .lifecycle_event_hook_execution_id(&first.lifecycle_event_hook_execution_id)
        .status(LifecycleEventStatus::Succeeded)
        .send()
        .await;
    let error = again.expect_err("already reported");
    assert!(error.as_service_error().is_some_and(|e| e.is_lifecycle_event_already_completed_exception()), "{error:?}");
    let unknown =
        world.codedeploy.get_deployment().deployment_id("d-NOSUCH000").send().await.expect_err("no such deployment");
    assert!(unknown.as_service_error().is_some_and(|e| e.is_deployment_does_not_exist_exception()), "{unknown:?}");
    Ok(())
}

#[tokio::test]
async fn a_smoke_check_of_the_green_task_set_through_the_test_listener_decides_the_deployment() -> Result<()> {
    // GIVEN a healthy green task set, WHEN the hooks check it through the test listener, THEN production moves to it
    let app = SampleApp::serve(true).await?;
    let world = world_with(Answer::CheckTestListener, Some(Arc::clone(&app))).await?;
    assert_eq!(get(&format!("{}/health", app.production.url)).await?, 200, "blue serves production");
    let id = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    assert_eq!(states(&world, 2).await?, ["START", "SUCCESS"]);
    assert_eq!(status(&world, &id).await?.0, "Succeeded");
    assert_eq!((app.production.routed(), app.test.routed()), ("green".to_owned(), "green".to_owned()));

    // GIVEN an unhealthy green task set, THEN the check fails, the deployment fails, and production stays on blue
    let app = SampleApp::serve(false).await?;
    let world = world_with(Answer::CheckTestListener, Some(Arc::clone(&app))).await?;
    let id = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    assert_eq!(states(&world, 2).await?, ["START", "FAILURE"]);
    assert_eq!(status(&world, &id).await?, ("Failed".to_owned(), Some("HOOK_EXECUTION_FAILURE".to_owned())));
    assert_eq!((app.production.routed(), app.test.routed()), ("blue".to_owned(), "blue".to_owned()), "rolled back");
    assert_eq!(get(&format!("{}/health", app.production.url)).await?, 200);
    Ok(())
}

#[tokio::test]
async fn a_stopped_deployment_ends_stopped_and_cannot_be_continued() -> Result<()> {
    let world = world(Answer::Silent).await?;
    let id = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    let continued = world.codedeploy.continue_deployment().deployment_id(&id).send().await;
    assert!(format!("{continued:?}").contains("DeploymentIsNotInReadyStateException"), "{continued:?}");
    world.codedeploy.stop_deployment().deployment_id(&id).send().await?;
    assert_eq!(states(&world, 2).await?, ["START", "STOP"]);
    assert_eq!(status(&world, &id).await?, ("Stopped".to_owned(), Some("MANUAL_STOP".to_owned())));
    Ok(())
}

#[tokio::test]
async fn the_group_lists_only_the_deployments_of_the_statuses_asked_for() -> Result<()> {
    use aws_sdk_codedeploy::types::DeploymentStatus;
    let world = world(Answer::Silent).await?;
    let first = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    world.codedeploy.stop_deployment().deployment_id(&first).send().await?;
    assert_eq!(states(&world, 2).await?, ["START", "STOP"]);
    let second = deploy(&world, "CodeDeployDefault.ECSAllAtOnce").await?;
    let list = |statuses: &[DeploymentStatus]| {
        let mut list =
            world.codedeploy.list_deployments().application_name("sample-app").deployment_group_name("sample-app-prod");
        for status in statuses {
            list = list.include_only_statuses(status.clone());
        }
        list.send()
    };
    let active = list(&[DeploymentStatus::Created, DeploymentStatus::Queued, DeploymentStatus::InProgress]).await?;
    assert_eq!(active.deployments(), std::slice::from_ref(&second));
    let stopped = list(&[DeploymentStatus::Stopped]).await?;
    assert_eq!(stopped.deployments(), std::slice::from_ref(&first));
    let all = list(&[]).await?;
    assert_eq!(all.deployments(), [second, first], "newest first");
    Ok(())
}
