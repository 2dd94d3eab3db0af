//! The `sluice` command, run as a user runs it, against DynamoDB in moto.

use std::process::{Command, Output};

use anyhow::Result;
use sluice::adapters::DynamoDbStore;
use sluice::ports::{DefinitionsStore, PipelineStore};
use sluice_integration::{Stack, moto, workspace_root};

const EXAMPLE: &str = "infra/pipelines.example.toml";

/// Runs `sluice args...` from the workspace root, with AWS pointed at this binary's moto and nothing else inherited.
fn sluice(args: &[&str]) -> Output {
    sluice_with(args, &[])
}

/// As [`sluice`], with more environment variables (`AWS_ENDPOINT_URL_ECS`, say).
fn sluice_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(workspace_root())
        .env_clear()
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .envs(env.iter().copied())
        .output()
        .expect("the sluice binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn broken_copy(name: &str) -> Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(workspace_root().join(EXAMPLE))?;
    let broken = text.replace("repository = \"acme/web\"", "repository = \"acme\"");
    let path = workspace_root().join("target").join(name);
    std::fs::write(&path, broken)?;
    Ok(path)
}

#[test]
fn checking_a_valid_file_lists_its_pipelines() {
    let output = sluice(&["check", EXAMPLE]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "ok: 2 pipelines: api (acme/api, rolling), web (acme/web, blue_green)");
}

#[test]
fn checking_an_invalid_file_fails_and_points_at_the_line() -> Result<()> {
    let path = broken_copy("cli-check-broken.toml")?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains(
            "cli-check-broken.toml:9:14: pipeline `web`, field `source.repository`: must look like owner/name"
        ),
        "{error}"
    );
    assert!(error.contains("1 error in"), "{error}");
    Ok(())
}

#[test]
fn a_mistyped_command_says_how_to_use_it() {
    let output = sluice(&["chekc", EXAMPLE]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("unknown command \"chekc\""), "{}", stderr(&output));
    assert!(stderr(&output).contains("sluice publish FILE --table TABLE"));
}

#[tokio::test]
async fn publishing_stores_a_new_revision_only_when_the_file_changed() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());

    let first = sluice(&["publish", EXAMPLE, "--table", &stack.table]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).starts_with("published infra/pipelines.example.toml as revision 1: 2 pipelines"));
    let current = store.current().await?.expect("published");
    assert_eq!(current.revision, 1);
    assert_eq!(current.text, std::fs::read_to_string(workspace_root().join(EXAMPLE))?);

    let again = sluice(&["publish", EXAMPLE, "--table", &stack.table]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again).trim(), "unchanged: infra/pipelines.example.toml is already revision 1");

    let changed = workspace_root().join("target/cli-publish-changed.toml");
    std::fs::write(&changed, current.text.replace("timeout = \"2d\"", "timeout = \"3d\""))?;
    let second = sluice(&["publish", &changed.to_string_lossy(), "--table", &stack.table]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(store.current().await?.map(|c| c.revision), Some(2));

    let shown = sluice(&["show", "--table", &stack.table]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).starts_with("# revision 2, published "), "{}", stdout(&shown));
    assert!(stdout(&shown).contains("timeout = \"3d\""));
    Ok(())
}

#[tokio::test]
async fn an_invalid_file_is_never_published() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let path = broken_copy("cli-publish-broken.toml")?;

    let output = sluice(&["publish", &path.to_string_lossy(), "--table", &stack.table]);

    assert!(!output.status.success());
    assert!(stderr(&output).contains("must look like owner/name"), "{}", stderr(&output));
    assert!(store.current().await?.is_none(), "nothing was written");
    Ok(())
}

#[tokio::test]
async fn a_publish_based_on_an_old_revision_is_refused() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let now = chrono::Utc::now();
    assert_eq!(store.publish("a", None, now).await?, 1);
    assert_eq!(store.publish("b", Some(1), now).await?, 2);
    let stale = store.publish("c", Some(1), now).await;
    assert!(matches!(stale, Err(sluice::ports::StoreError::Conflict { .. })), "{stale:?}");
    assert_eq!(store.current().await?.map(|c| c.text), Some("b".to_owned()));
    Ok(())
}

#[test]
fn showing_before_anything_is_published_says_what_to_do() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stack = runtime.block_on(Stack::create()).expect("stack");
    let output = sluice(&["show", "--table", &stack.table]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no definitions are published yet"), "{}", stderr(&output));
}

#[tokio::test]
async fn a_parked_effect_is_listed_with_its_error_and_can_be_put_back_by_hand() -> Result<()> {
    use sluice::definitions::ExecutionMode;
    use sluice::testing::{RecordingRunner, push};
    use sluice::usecases::{Input, handle};

    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    // CodeBuild refuses the build for good (access denied): the StartBuild effect is parked at once. The runner, as
    // the webhook's would be, does not publish here: the announcement waits in the outbox.
    let runner = RecordingRunner::owning(&[sluice::pipeline::EffectKind::StartBuild]);
    runner.refuse_next(1);
    let event = push("web-1", ExecutionMode::Superseded, false);
    let input = Input {
        pipeline: "web",
        mode: ExecutionMode::Superseded,
        event: &event,
        receipt: None,
        now: chrono::Utc::now(),
    };
    handle(&store, &runner, input).await?;
    let state = store.load("web").await?.expect("the pipeline").value;
    let (parked, pending) = (state.parked[0].id.clone(), state.pending[0].id.clone());

    let listed = sluice(&["effects", "web", "--table", &stack.table]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(text.starts_with("web: 1 pending, 1 parked\n"), "{text}");
    assert!(text.contains(&format!("pending  {pending}  publish Execution Started for web-1")), "{text}");
    let line = format!("parked   {parked}  start CodeBuild project web-build on sha-web-1 for web-1");
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("after 1 attempt(s): "), "{text}");
    assert!(text.contains("AccessDeniedException"), "{text}");
    let retry = format!("retry: sluice retry-effect web {parked} --table {}", stack.table);
    assert!(text.contains(&retry), "{text}");

    let retried = sluice(&["retry-effect", "web", &parked, "--table", &stack.table]);
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert!(stdout(&retried).starts_with(&format!("{parked} is back in web's outbox")), "{}", stdout(&retried));
    let state = store.load("web").await?.expect("the pipeline").value;
    assert!(state.parked.is_empty());
    assert!(state.pending.iter().any(|p| p.id == parked && p.attempts == 0), "{:?}", state.pending);

    let again = sluice(&["retry-effect", "web", &parked, "--table", &stack.table]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains(&format!("web has no parked effect {parked}")), "{}", stderr(&again));
    Ok(())
}

#[tokio::test]
async fn history_lists_runs_newest_first_and_show_run_tells_one_runs_timeline() -> Result<()> {
    use sluice::definitions::ExecutionMode;
    use sluice::testing::{RecordingRunner, push};
    use sluice::usecases::{Input, handle};

    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let runner = RecordingRunner::new();
    for run in ["web-1", "web-2"] {
        let event = push(run, ExecutionMode::Superseded, false);
        let now = chrono::Utc::now();
        handle(
            &store,
            &runner,
            Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &event, receipt: None, now },
        )
        .await?;
    }

    let history = sluice(&["history", "web", "--table", &stack.table]);
    assert!(history.status.success(), "{}", stderr(&history));
    let text = stdout(&history);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("#2 ") && lines[0].ends_with("  web-2"), "{text}");
    assert!(lines[0].contains("  sha-web  octocat "), "{text}");
    // The first run holds the build stage; the second waits for it.
    assert!(lines[0].contains(" waiting for build "), "{text}");
    assert!(lines[1].starts_with("#1 ") && lines[1].ends_with("  web-1"), "{text}");
    assert!(lines[1].contains(" running build ") && lines[1].contains(" build …  "), "{text}");
    let limited = sluice(&["history", "web", "--table", &stack.table, "--limit", "1"]);
    assert_eq!(stdout(&limited).lines().count(), 1, "{}", stdout(&limited));

    let shown = sluice(&["show-run", "web-1", "--table", &stack.table]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.starts_with("web-1 (pipeline web, run #1): acme/web at sha-web-1 pushed by octocat, "), "{text}");
    assert!(text.contains(" source    push of sha-web to refs/heads/main by octocat recorded as run #1"), "{text}");
    assert!(text.contains(" build     CodeBuild project web-build started"), "{text}");

    let unknown = sluice(&["show-run", "web-9", "--table", &stack.table]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("there is no run web-9: `sluice history PIPELINE --table TABLE` lists them"));
    let nothing = sluice(&["history", "api", "--table", &stack.table]);
    assert!(!nothing.status.success());
    assert!(stderr(&nothing).contains("pipeline api has no runs"), "{}", stderr(&nothing));
    let zero = sluice(&["history", "web", "--table", &stack.table, "--limit", "0"]);
    assert!(stderr(&zero).contains("--limit takes a number of runs from 1 to 100"), "{}", stderr(&zero));
    Ok(())
}

// Multi-threaded: the ECS sandbox serves the command while the test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_stops_the_ecs_deployment_of_the_run_deploying_as_the_callers_identity() -> Result<()> {
    use aws_sdk_ecs::types::{
        DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookStage,
        DeploymentLifecycleHookTargetType, DeploymentStrategy,
    };
    use sluice::pipeline::{Event, ExecutionId, Status};
    use sluice::testing::RecordingRunner;
    use sluice::usecases::{Input, handle};
    use sluice_sandbox::ecs::{EcsSandbox, Events, Rollout};

    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    // A pipeline that never ran has nothing to roll back; web-1, whose deployment has not started, neither.
    let never = sluice(&["rollback", "api", "--table", &stack.table]);
    assert!(!never.status.success());
    assert!(stderr(&never).contains("pipeline api has never run"), "{}", stderr(&never));
    let runner = RecordingRunner::owning(&[]);
    let target = sluice::definitions::DeployTarget::EcsNative(sluice::testing::ecs_native(
        sluice::definitions::TrafficShift::BlueGreen,
    ));
    sluice_integration::built_run(&stack, &store, &runner, target, None, &[], "web:1").await?;
    let idle = sluice(&["rollback", "web", "--table", &stack.table]);
    assert!(!idle.status.success());
    assert!(
        stderr(&idle).contains("rolling back web: execution web-1's deployment cannot be rolled back now: its deployment has not started yet"),
        "{}",
        stderr(&idle)
    );

    // GIVEN web-1's ECS blue/green deployment in progress, paused after scaling up
    let events =
        Events { eventbridge: stack.eventbridge.clone(), bus: stack.default_bus.clone(), duration: WAIT_MINUTE };
    let ecs = EcsSandbox::start(events).await?;
    ecs.service("prod", "web", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", Rollout::Healthy);
    let client = aws_sdk_ecs::Client::new(
        &sluice_integration::aws_config_with(&moto().endpoint, &[("ecs", &ecs.endpoint)]).await,
    );
    let pause = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::PostScaleUp)
        .build();
    let configuration =
        DeploymentConfiguration::builder().strategy(DeploymentStrategy::BlueGreen).lifecycle_hooks(pause).build();
    let updated = client
        .update_service()
        .cluster("prod")
        .service("web")
        .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/web:2")
        .deployment_configuration(configuration)
        .send()
        .await?;
    let service = updated.service().expect("the service");
    let arn = service.current_service_deployment().expect("a service deployment").to_owned();
    let started = Event::DeploymentStarted {
        execution_id: ExecutionId::from("web-1"),
        deployment_id: service.deployments()[0].id().unwrap_or_default().to_owned(),
        service_deployment: Some(arn.clone()),
        task_definition: None,
        previous_task_definition: None,
    };
    let now = chrono::Utc::now();
    let input = Input { pipeline: "web", mode: Default::default(), event: &started, receipt: None, now };
    handle(&store, &runner, input).await?;

    // WHEN the operator rolls web back
    let output = sluice_with(&["rollback", "web", "--table", &stack.table], &[("AWS_ENDPOINT_URL_ECS", &ecs.endpoint)]);

    // THEN ECS stops the service deployment and rolls it back, and the run records who ordered it
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("web-1 (commit sha-web-1): deployment {arn} stopped and rolling back")),
        "{text}"
    );
    let run = store.execution(&ExecutionId::from("web-1")).await?.expect("the run");
    assert_eq!(run.status, Status::Running(sluice::pipeline::Stage::Deploy), "its events end it, not the command");
    let by = run.deploy.and_then(|d| d.rollback_ordered).map(|o| o.by).unwrap_or_default();
    assert!(by.starts_with("arn:aws:") && text.contains(&format!("naming {by}")), "{by}: {text}");
    let record = ecs.service_deployment(&arn).expect("the record");
    assert!(record["status"].as_str().is_some_and(|s| s.starts_with("ROLLBACK_")), "{record}");

    // AND ordering it again changes nothing
    let again = sluice_with(&["rollback", "web", "--table", &stack.table], &[("AWS_ENDPOINT_URL_ECS", &ecs.endpoint)]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("its rollback was already ordered"), "{}", stdout(&again));
    Ok(())
}

/// One sandbox minute: long enough that a pause without a timeout (24 h) never ends during the test.
const WAIT_MINUTE: std::time::Duration = std::time::Duration::from_millis(100);
