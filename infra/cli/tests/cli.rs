//! The `sluice` command, run as a user runs it, against DynamoDB in moto.

mod common;

use std::process::Command;

use anyhow::{Context, Result};
use common::{OnATerminal, sluice, sluice_with, stderr, stdout};
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{DefinitionsStore, PipelineStore};
use sluice_integration::{Stack, moto, workspace_root};

const EXAMPLE: &str = "infra/pipelines.example.toml";

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
    // What triggers each, what gates it and where it deploys: what a filter means, at a glance
    assert_eq!(
        stdout(&output).trim(),
        "ok: 3 pipelines\n  api: acme/api pushes to the default branch; build api-build; rolling update of internal/api\n  \
         shop: acme/shop pushes to the default branch; build shop-build; stages staging (rolling update of \
         staging/shop, soaks 30m watched by shop-staging-5xx) → e2e (tests by CodeBuild project shop-e2e-build) → sign-off (approval by arn:aws:sns:eu-west-1:123456789012:shop-approvals) → production \
         (ecs_canary of prod/shop)\n  \
         web: acme/web pushes to branches main, release/* and tags v* (not v*-rc*) when files src/**, Dockerfile (not \
         **/*.md) change; build web-build, approval by arn:aws:sns:eu-west-1:123456789012:web-approvals; CodeDeploy \
         blue/green of prod/web (web/web-prod, CodeDeployDefault.ECSCanary10Percent5Minutes)"
    );
    // The README shows it as it is
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    for line in stdout(&output).lines() {
        assert!(readme.lines().any(|shown| shown == line), "the README does not show {line:?}");
    }
}

#[test]
fn checking_a_pipeline_of_stages_prints_each_stage_in_order() -> Result<()> {
    let staged = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "staging"
deploy = { strategy = "rolling", cluster = "staging", service = "web" }

[[pipelines.web.stages]]
name = "sign-off"
approval = { topic = "arn:aws:sns:eu-west-1:123456789012:web-approvals" }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "ecs_canary", cluster = "prod", service = "web", canary = { percent = 10, bake_time = "15m" } }
"#;
    let path = workspace_root().join("target").join("cli-check-stages.toml");
    std::fs::write(&path, staged)?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "ok: 1 pipeline\n  web: acme/web pushes to the default branch; build web-build; stages staging (rolling update of \
         staging/web) → sign-off (approval by arn:aws:sns:eu-west-1:123456789012:web-approvals) → production (ecs_canary \
         of prod/web)"
    );
    let output = sluice(&["--json", "check", &path.to_string_lossy()]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output))?;
    let stages: Vec<(&str, &str)> = json["pipelines"][0]["stages"]
        .as_array()
        .context("stages")?
        .iter()
        .map(|stage| (stage["name"].as_str().unwrap_or_default(), stage["kind"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(stages, [("staging", "deploy"), ("sign-off", "approval"), ("production", "deploy")]);
    Ok(())
}

#[test]
fn checking_a_gated_stage_says_when_it_may_start_and_refuses_a_time_zone_nobody_keeps() -> Result<()> {
    let gated = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }
windows = [{ days = "mon-fri", hours = "09:00-16:00", timezone = "Europe/Berlin" }]

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "web" }
deny = [{ from = "2026-12-20", to = "2027-01-04", timezone = "Europe/Berlin", reason = "holidays" }]
entry_alarms = ["prod-5xx"]
"#;
    let path = workspace_root().join("target").join("cli-check-gated.toml");
    std::fs::write(&path, gated)?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "ok: 1 pipeline\n  web: acme/web pushes to the default branch; build web-build; stages production (rolling \
         update of prod/web, windows mon-fri 09:00-16:00 Europe/Berlin, denied 2026-12-20 to 2027-01-04 \
         Europe/Berlin, entered while prod-5xx is not in ALARM (waiting at most 1h))",
        "the pipeline's windows, the stage's own deny period"
    );
    std::fs::write(&path, gated.replace("timezone = \"Europe/Berlin\" }]\n\n", "timezone = \"Europe/Berlln\" }]\n\n"))?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(":5:66: pipeline `web`, field `windows[0].timezone`: an IANA time zone such as"),
        "{}",
        stderr(&output)
    );
    Ok(())
}

#[test]
fn checking_with_json_gives_every_mistake_as_data_for_editors_and_ci() -> Result<()> {
    let path = broken_copy("cli-check-json.toml")?;
    let output = sluice(&["--json", "check", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&output))?;
    assert_eq!(answer["ok"], false);
    let error = &answer["errors"][0];
    assert_eq!((error["line"].as_u64(), error["column"].as_u64()), (Some(9), Some(14)), "{answer}");
    assert_eq!((error["pipeline"].as_str(), error["field"].as_str()), (Some("web"), Some("source.repository")));
    assert!(error["message"].as_str().is_some_and(|m| m.starts_with("must look like owner/name")), "{answer}");
    let valid = sluice(&["check", "--json", EXAMPLE]);
    assert!(valid.status.success(), "{}", stderr(&valid));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&valid))?;
    assert_eq!(answer["pipelines"][0]["triggers"], "pushes to the default branch");
    Ok(())
}

#[test]
fn checking_a_file_that_runs_but_perhaps_not_as_meant_succeeds_and_tells_each_warning() -> Result<()> {
    // The example's api pipeline, copied as api-copy: both deploy internal/api
    let text = std::fs::read_to_string(workspace_root().join(EXAMPLE))?;
    let api = text.find("[pipelines.api]").context("the example has an api pipeline")?;
    let copy = text[api..].replace("[pipelines.api", "[pipelines.api-copy");
    let path = workspace_root().join("target").join("cli-check-warning.toml");
    std::fs::write(&path, format!("{text}\n{copy}"))?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let warning = stderr(&output);
    assert!(
        warning.starts_with("warning: ")
            && warning.contains("pipeline `api-copy`, field `deploy.service`: pipeline `api` deploys this service too"),
        "{warning}"
    );
    assert!(stdout(&output).starts_with("ok: 4 pipelines"), "{}", stdout(&output));
    let json = sluice(&["--json", "check", &path.to_string_lossy()]);
    assert!(json.status.success(), "{}", stderr(&json));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&json))?;
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["warnings"][0]["pipeline"], "api-copy", "{answer}");
    assert_eq!(answer["warnings"][0]["field"], "deploy.service", "{answer}");
    assert_eq!(answer["warnings"].as_array().map(Vec::len), Some(1), "{answer}");
    // The example itself has none
    let clean = sluice(&["--json", "check", EXAMPLE]);
    let answer: serde_json::Value = serde_json::from_str(&stdout(&clean))?;
    assert_eq!(answer["warnings"], serde_json::json!([]));
    assert_eq!(stderr(&sluice(&["check", EXAMPLE])), "");
    Ok(())
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
fn checking_reads_no_more_than_sluice_stores_and_prints_the_first_fifty_mistakes_and_how_many_more() -> Result<()> {
    // `check /dev/zero` ends at once, saying why
    let output = sluice(&["check", "/dev/zero"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("/dev/zero: more than 358400 bytes; sluice stores at most that"),
        "{}",
        stderr(&output)
    );
    // and --json says so as data, as it does every mistake
    let json = sluice(&["--json", "check", "/dev/zero"]);
    assert_eq!(json.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&json))?;
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["errors"][0]["file"], "/dev/zero");
    assert_eq!(answer["errors"][0]["line"], serde_json::Value::Null);
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("more than 358400 bytes"), "{answer}");
    // 60 empty patterns: 50 shown, then the count of the rest
    let path = std::env::temp_dir().join(format!("cli-check-many-{}.toml", std::process::id()));
    let empties = vec!["\"\""; 60].join(", ");
    std::fs::write(
        &path,
        format!(
            "[pipelines.api]\nsource = {{ repository = \"acme/api\", paths = {{ include = [{empties}] }} }}\n\
             build = {{ project = \"api-build\" }}\ndeploy = {{ strategy = \"rolling\", cluster = \"c\", service = \"s\" }}\n"
        ),
    )?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert_eq!(error.matches("a pattern cannot be empty").count(), 50, "{error}");
    assert!(error.contains("... and 10 more\n60 errors in"), "{error}");
    Ok(())
}

#[test]
fn a_mistyped_command_or_option_says_how_to_use_it_and_exits_2() {
    for args in [&["chekc", EXAMPLE][..], &["history", "web", "--limt", "3"], &["history"], &[]] {
        let output = sluice(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("Usage: sluice"), "{}", stderr(&output));
    }
    // clap's words, with a suggestion for what was probably meant
    let mistyped = stderr(&sluice(&["chekc", EXAMPLE]));
    assert!(mistyped.contains("unrecognized subcommand 'chekc'"), "{mistyped}");
    assert!(mistyped.contains("a similar subcommand exists: 'check'"), "{mistyped}");
    let option = stderr(&sluice(&["history", "web", "--limt", "3"]));
    assert!(option.contains("unexpected argument '--limt'") && option.contains("'--limit'"), "{option}");
    let missing = stderr(&sluice(&["history"]));
    assert!(missing.contains("required arguments were not provided") && missing.contains("<PIPELINE>"), "{missing}");
    // A word or an option the command does not take is a mistake too, not ignored
    for args in [&["status", "web", "api"][..], &["check", EXAMPLE, "--wait"], &["show", "--limit", "3"]] {
        let output = sluice(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("unexpected argument"), "{args:?}: {}", stderr(&output));
    }
}

#[tokio::test]
async fn publishing_stores_a_new_revision_only_when_the_file_changed() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());

    let first = sluice(&["publish", EXAMPLE, "--table", &stack.table]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).starts_with("published infra/pipelines.example.toml as revision 1: 3 pipelines"));
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
async fn a_file_with_warnings_is_published_and_each_warning_is_told() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    // The example with its api pipeline copied: both deploy internal/api
    let text = std::fs::read_to_string(workspace_root().join(EXAMPLE))?;
    let api = text.find("[pipelines.api]").context("the example has an api pipeline")?;
    let path = workspace_root().join("target").join("cli-publish-warning.toml");
    std::fs::write(&path, format!("{text}\n{}", text[api..].replace("[pipelines.api", "[pipelines.api-copy")))?;
    let output = sluice(&["publish", &path.to_string_lossy(), "--table", &stack.table]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("warning: "), "{}", stderr(&output));
    assert!(stderr(&output).contains("pipeline `api` deploys this service too"), "{}", stderr(&output));
    assert!(stdout(&output).contains("as revision 1: 4 pipelines"), "{}", stdout(&output));
    assert_eq!(store.current().await?.map(|current| current.revision), Some(1));
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
    assert!(matches!(stale, Err(sluice::contract::ports::StoreError::Conflict { .. })), "{stale:?}");
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
    use sluice::contract::testing::{RecordingRunner, push};
    use sluice::definitions::ExecutionMode;
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
    use sluice::contract::testing::{RecordingRunner, push};
    use sluice::definitions::ExecutionMode;
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
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("there is no run web-9: `sluice history PIPELINE` lists them"));
    let nothing = sluice(&["history", "api", "--table", &stack.table]);
    assert!(!nothing.status.success());
    assert!(stderr(&nothing).contains("pipeline api has no runs"), "{}", stderr(&nothing));
    let zero = sluice(&["history", "web", "--table", &stack.table, "--limit", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(stderr(&zero).contains("--limit takes a number of runs from 1 to 100"), "{}", stderr(&zero));
    Ok(())
}

/// Web-1's ECS blue/green deployment, started in the ECS sandbox and paused after scaling up, recorded on the run:
/// the sandbox, and the service deployment's ARN.
async fn paused_ecs_deployment(
    stack: &Stack,
    store: &DynamoDbStore,
    runner: &sluice::contract::testing::RecordingRunner,
) -> Result<(sluice_sandbox::ecs::EcsSandbox, String)> {
    use aws_sdk_ecs::types::{
        DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookStage,
        DeploymentLifecycleHookTargetType, DeploymentStrategy,
    };
    use sluice::pipeline::{Event, ExecutionId};
    use sluice::usecases::{Input, handle};
    use sluice_sandbox::ecs::{EcsSandbox, Events, Rollout};

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
        in_alarm: None,
    };
    let now = chrono::Utc::now();
    let input = Input { pipeline: "web", mode: Default::default(), event: &started, receipt: None, now };
    handle(store, runner, input).await?;
    Ok((ecs, arn))
}

// Multi-threaded: the ECS sandbox serves the command while the test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_stops_the_ecs_deployment_of_the_run_deploying_as_the_callers_identity() -> Result<()> {
    use sluice::contract::testing::RecordingRunner;
    use sluice::pipeline::{ExecutionId, Status};

    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    // A pipeline that never ran has nothing to roll back; web-1, whose deployment has not started, neither.
    let never = sluice(&["rollback", "api", "--table", &stack.table]);
    assert!(!never.status.success());
    assert!(stderr(&never).contains("pipeline api has never run"), "{}", stderr(&never));
    let runner = RecordingRunner::owning(&[]);
    let target = sluice::definitions::DeployTarget::EcsNative(sluice::contract::testing::ecs_native(
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
    let (ecs, arn) = paused_ecs_deployment(&stack, &store, &runner).await?;

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
    assert_eq!(run.status, Status::Running(sluice::pipeline::Stage::DEPLOY), "its events end it, not the command");
    let by = run.deploy().and_then(|d| d.rollback_ordered.clone()).map(|o| o.by).unwrap_or_default();
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

/// Run `id` of pipeline web in `stack`'s table: pushed (with an approval stage) and, if `built`, built and waiting
/// for its approval.
async fn web_run(store: &DynamoDbStore, id: &str, built: bool) -> Result<()> {
    use sluice::contract::testing::{RecordingRunner, push};
    use sluice::definitions::ExecutionMode;
    use sluice::pipeline::{BuildOutputs, Event, ExecutionId};
    use sluice::usecases::{Input, handle};
    let runner = RecordingRunner::new();
    let pushed = push(id, ExecutionMode::Queued, true);
    let built_event = Event::BuildSucceeded {
        execution_id: ExecutionId::from(id),
        build_id: format!("build-{id}"),
        outputs: BuildOutputs { image_uri: format!("web:{id}"), artifacts: None },
    };
    let events = if built { vec![&pushed, &built_event] } else { vec![&pushed] };
    for event in events {
        let now = chrono::Utc::now();
        handle(store, &runner, Input { pipeline: "web", mode: ExecutionMode::Queued, event, receipt: None, now })
            .await?;
    }
    Ok(())
}

/// A CloudFormation stack in moto whose outputs are those of a deployed sluice stack over `stack`'s table and bus.
async fn deployed(stack: &Stack, name: &str) -> Result<()> {
    deployed_with(stack, name, &[]).await
}

/// As [`deployed`], with more outputs.
async fn deployed_with(stack: &Stack, name: &str, more: &[(&str, &str)]) -> Result<()> {
    let mut outputs = serde_json::json!({
        "PipelineTableName": { "Value": stack.table },
        "EventBusName": { "Value": stack.bus },
    });
    for (key, value) in more {
        outputs[*key] = serde_json::json!({ "Value": value });
    }
    let template = serde_json::json!({
        "Resources": { "Marker": { "Type": "AWS::SQS::Queue", "Properties": { "QueueName": format!("{name}-marker") } } },
        "Outputs": outputs,
    });
    let cloudformation = aws_sdk_cloudformation::Client::new(&stack.config);
    cloudformation.create_stack().stack_name(name).template_body(template.to_string()).send().await?;
    Ok(())
}

#[tokio::test]
async fn the_stack_is_found_by_name_and_its_outputs_say_where_the_runs_are() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    web_run(&store, "web-1", false).await?;
    let name = sluice_integration::unique("sluice-cli");
    deployed(&stack, &name).await?;

    let by_flag = sluice(&["--stack", &name, "history", "web"]);
    assert!(by_flag.status.success(), "{}", stderr(&by_flag));
    assert!(stdout(&by_flag).contains("  web-1"), "{}", stdout(&by_flag));
    let by_environment = sluice_with(&["history", "web"], &[("SLUICE_STACK", &name)]);
    assert_eq!(stdout(&by_environment), stdout(&by_flag));

    let missing = sluice(&["--stack", "no-such-stack", "history", "web"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing),
        "error: there is no stack `no-such-stack` in us-east-1: deploy it or pass --stack\n",
        "in plain words, once"
    );
    let anonymous = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--stack", &name, "history", "web"])
        .env_clear()
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("HOME", workspace_root().join("target"))
        .output()?;
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(stderr(&anonymous).contains("are AWS credentials and region set"), "{}", stderr(&anonymous));
    Ok(())
}

#[tokio::test]
async fn status_shows_each_pipelines_runs_in_progress_what_they_wait_for_and_its_parked_effects() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&std::fs::read_to_string(workspace_root().join(EXAMPLE))?, None, chrono::Utc::now()).await?;
    web_run(&store, "web-1", true).await?;
    web_run(&store, "web-2", false).await?;
    // CodeBuild refuses api-1's build for good: its start is parked.
    let runner = sluice::contract::testing::RecordingRunner::owning(&[sluice::pipeline::EffectKind::StartBuild]);
    runner.refuse_next(1);
    let pushed = sluice::contract::testing::push("api-1", sluice::definitions::ExecutionMode::Queued, false);
    let now = chrono::Utc::now();
    let input =
        sluice::usecases::Input { pipeline: "api", mode: Default::default(), event: &pushed, receipt: None, now };
    sluice::usecases::handle(&store, &runner, input).await?;

    let output = sluice(&["status", "--table", &stack.table]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("web  (blue_green, acme/web)\n  #1    sha-web  octocat      running approval"), "{text}");
    assert!(text.contains("        waits for a decision, until "), "{text}");
    assert!(text.contains("  #2    sha-web  octocat      running build "), "{text}");
    assert!(text.contains("        waits for CodeBuild build build-web-2"), "{text}");
    assert!(text.contains("api  (rolling, acme/api)\n  #1    sha-api  octocat      running build "), "{text}");
    assert!(text.contains("        waits for CodeBuild to start its build\n"), "{text}");
    let parked = "  parked api-1-1  start CodeBuild project web-build on sha-api-1 for api-1\n        ";
    assert!(text.contains(parked) && text.contains("AccessDeniedException"), "{text}");

    let one = sluice(&["status", "api", "--table", &stack.table, "--json"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let report: serde_json::Value = serde_json::from_slice(&one.stdout)?;
    assert_eq!(report["pipelines"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["pipelines"][0]["pipeline"], "api");
    assert_eq!(report["pipelines"][0]["parked"][0]["id"], "api-1-1", "{report}");
    let all: serde_json::Value =
        serde_json::from_slice(&sluice(&["status", "--table", &stack.table, "--json"]).stdout)?;
    let web = &all["pipelines"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["pipeline"] == "web").cloned())
        .unwrap_or_default();
    assert_eq!(web["runs"][0]["status"], "running", "{all}");
    assert_eq!(web["runs"][0]["stage"], "approval", "{all}");

    let unknown = sluice(&["status", "nope", "--table", &stack.table]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("there is no pipeline nope in the published definitions"),
        "{}",
        stderr(&unknown)
    );
    Ok(())
}

#[tokio::test]
async fn approve_and_reject_decide_as_the_callers_aws_identity_and_announce_it_on_the_bus() -> Result<()> {
    use sluice::pipeline::{ExecutionId, Stage, Status};
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    web_run(&store, "web-1", true).await?;
    let name = sluice_integration::unique("sluice-cli");
    deployed(&stack, &name).await?;

    // Without the bus, a decision could not be announced: refused before anything is recorded.
    let busless = sluice(&["approve", "web-1", "--table", &stack.table]);
    assert_eq!(busless.status.code(), Some(1));
    assert!(stderr(&busless).contains("announced on the stack's bus"), "{}", stderr(&busless));

    let approved = sluice(&["--stack", &name, "approve", "web-1", "--comment", "ship it"]);
    assert!(approved.status.success(), "{}", stderr(&approved));
    let text = stdout(&approved);
    let run = store.execution(&ExecutionId::from("web-1")).await?.expect("the run");
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    let approval = run.approval().cloned().expect("its approval");
    let by = approval.approver.unwrap_or_default();
    assert!(by.starts_with("arn:aws:"), "{by}");
    assert_eq!(text, format!("web-1: approved by {by} (its approval stage)\n"));
    assert_eq!(approval.comment.as_deref(), Some("ship it"));
    let requested = stack
        .receive(stack.queue_to("DeployerFunction", "Deployment Requested")?, 1, std::time::Duration::from_secs(10))
        .await?;
    assert_eq!(requested.len(), 1, "the deployer is told at once");
    assert_eq!(requested[0]["detail"]["execution_id"], "web-1", "{}", requested[0]);

    let otherwise = sluice(&["--stack", &name, "reject", "web-1"]);
    assert_eq!(otherwise.status.code(), Some(1));
    assert!(stderr(&otherwise).contains("was already Approved; the decision stands"), "{}", stderr(&otherwise));
    let unknown = sluice(&["--stack", &name, "approve", "web-9"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("there is no run web-9: `sluice history PIPELINE` lists them"));

    web_run(&store, "web-2", true).await?;
    let rejected = sluice(&["--stack", &name, "--json", "reject", "web-2", "--comment", "not on a Friday"]);
    assert!(rejected.status.success(), "{}", stderr(&rejected));
    let answer: serde_json::Value = serde_json::from_slice(&rejected.stdout)?;
    assert_eq!((answer["decision"].as_str(), answer["decided"].as_str()), (Some("rejected"), Some("stage")));
    let waited = sluice(&["--stack", &name, "show-run", "web-2", "--wait"]);
    assert_eq!(waited.status.code(), Some(1), "a run that did not ship: {}", stdout(&waited));
    assert!(
        stdout(&waited).ends_with(&format!("web-2 rejected: rejected by {by}: not on a Friday\n")),
        "{}",
        stdout(&waited)
    );
    web_run(&store, "web-3", false).await?;
    let building = sluice(&["--stack", &name, "approve", "web-3"]);
    assert_eq!(building.status.code(), Some(1));
    assert!(
        stderr(&building).contains("run web-3 is running build: it waits for no decision"),
        "{}",
        stderr(&building)
    );
    let json = sluice(&["--stack", &name, "--json", "show-run", "web-2"]);
    let shown: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    assert_eq!(shown["status"], "rejected");
    assert!(shown["timeline"].as_array().is_some_and(|t| t.len() >= 4), "{shown}");
    Ok(())
}

#[tokio::test]
async fn freeze_holds_a_run_out_of_its_deploy_stage_until_an_override_or_unfreeze_as_the_callers_identity() -> Result<()>
{
    use sluice::pipeline::{ExecutionId, Stage, Status};
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&std::fs::read_to_string(workspace_root().join(EXAMPLE))?, None, chrono::Utc::now()).await?;
    web_run(&store, "web-1", true).await?;
    let name = sluice_integration::unique("sluice-cli");
    deployed(&stack, &name).await?;

    // A freeze says why, names pipelines that exist, and ends in the future
    assert_eq!(sluice(&["--stack", &name, "freeze", "web"]).status.code(), Some(2), "no reason");
    assert_eq!(sluice(&["--stack", &name, "freeze", "--reason", "x"]).status.code(), Some(2), "no pipeline");
    let unknown = sluice(&["--stack", &name, "freeze", "web", "nope", "--reason", "x"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("pipeline nope is not in the published definitions"), "{}", stderr(&unknown));
    let past = sluice(&["--stack", &name, "freeze", "web", "--reason", "x", "--until", "2020-01-01T00:00:00Z"]);
    assert_eq!(past.status.code(), Some(1));
    assert!(stderr(&past).contains("web: a freeze must end in the future"), "{}", stderr(&past));
    assert_eq!(store.load("web").await?.and_then(|s| s.value.freeze), None, "nothing was frozen");

    // WHEN an operator freezes web and web-1 is approved
    let frozen = sluice(&["--stack", &name, "freeze", "web", "--reason", "incident 4312", "--until", "2h"]);
    assert!(frozen.status.success(), "{}", stderr(&frozen));
    assert!(stdout(&frozen).starts_with("web: frozen until "), "{}", stdout(&frozen));
    assert!(stdout(&frozen).ends_with(" UTC: incident 4312\n"), "{}", stdout(&frozen));
    let approved = sluice(&["--stack", &name, "approve", "web-1"]);
    assert!(approved.status.success(), "{}", stderr(&approved));
    // THEN web-1 waits before its deploy stage, and status says why
    let run = store.execution(&ExecutionId::from("web-1")).await?.expect("the run");
    assert_eq!(run.status, Status::Waiting(Stage::DEPLOY));
    let status = stdout(&sluice(&["--stack", &name, "status", "web"]));
    let by = store.load("web").await?.and_then(|s| s.value.freeze).map(|f| f.by).unwrap_or_default();
    assert!(by.starts_with("arn:aws:"), "{by}");
    assert!(status.contains(&format!("  deployments stopped: frozen by {by} since ")), "{status}");
    assert!(status.contains("        waits for the freeze to lift: frozen by "), "{status}");

    // WHEN an operator lets web-1 through the freeze: it takes its deploy stage and the deployer is told at once
    let approval = sluice(&["--stack", &name, "override", "web-1", "--stage", "approval", "--reason", "x"]);
    assert_eq!(approval.status.code(), Some(1));
    assert!(stderr(&approval).contains("approval is not a deploy stage"), "{}", stderr(&approval));
    let let_in = sluice(&["--stack", &name, "override", "web-1", "--stage", "deploy", "--reason", "the fix for 4312"]);
    assert!(let_in.status.success(), "{}", stderr(&let_in));
    assert_eq!(stdout(&let_in), format!("web-1: let into deploy by {by}: the fix for 4312; it is running deploy\n"));
    let run = store.execution(&ExecutionId::from("web-1")).await?.expect("the run");
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    let shown = stdout(&sluice(&["--stack", &name, "show-run", "web-1"]));
    let told = format!("deploy    let through the freeze by {by}: the fix for 4312\n");
    assert!(shown.contains(&told) && shown.find(&told) < shown.find("blue_green deployment started"), "{shown}");
    // AND unfrozen, web is free again
    let unfrozen = sluice(&["--stack", &name, "unfreeze", "web"]);
    assert!(unfrozen.status.success(), "{}", stderr(&unfrozen));
    assert_eq!(stdout(&unfrozen), "web: unfrozen; deploying: web-1 (deploy)\n");
    let requested = stack
        .receive(stack.queue_to("DeployerFunction", "Deployment Requested")?, 1, std::time::Duration::from_secs(10))
        .await?;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0]["detail"]["execution_id"], "web-1", "{}", requested[0]);
    assert_eq!(stdout(&sluice(&["--stack", &name, "unfreeze", "web"])), "web: was not frozen\n");

    // AND --all freezes every published pipeline
    let all = sluice(&["--stack", &name, "--json", "freeze", "--all", "--reason", "holidays"]);
    assert!(all.status.success(), "{}", stderr(&all));
    let lines: Vec<serde_json::Value> = stdout(&all).lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let names: Vec<&str> = lines.iter().filter_map(|line| line["pipeline"].as_str()).collect();
    assert!(names.contains(&"web") && names.len() >= 2, "{names:?}");
    for pipeline in names {
        assert!(store.load(pipeline).await?.and_then(|s| s.value.freeze).is_some(), "{pipeline} frozen");
    }
    Ok(())
}

/// Run `id` of pipeline web, built, approved and shipped.
async fn shipped(store: &DynamoDbStore, id: &str) -> Result<()> {
    applied(store, &sluice::contract::testing::shipped(id)).await
}

#[tokio::test]
async fn rollback_with_nothing_deploying_runs_the_build_of_the_succeeded_run_before_the_last_through_the_deploy_stage()
-> Result<()> {
    use sluice::pipeline::{ExecutionId, Stage, Status};
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&std::fs::read_to_string(workspace_root().join(EXAMPLE))?, None, chrono::Utc::now()).await?;
    shipped(&store, "web-1").await?;
    shipped(&store, "web-2").await?;
    let name = sluice_integration::unique("sluice-cli");
    deployed(&stack, &name).await?;

    let output = sluice(&["--stack", &name, "rollback", "web"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("web-redeploy-3: a run of web that deploys the build of web-1, ordered by arn:aws:"),
        "{text}"
    );
    assert!(text.contains("; it is running deploy\nfollow it with: sluice show-run web-redeploy-3 --wait\n"), "{text}");
    let run = store.execution(&ExecutionId::from("web-redeploy-3")).await?.expect("the new run");
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    assert_eq!(run.build.and_then(|b| b.image_uri), Some("web:web-1".to_owned()));
    let requested = stack
        .receive(stack.queue_to("DeployerFunction", "Deployment Requested")?, 1, std::time::Duration::from_secs(10))
        .await?;
    assert_eq!(requested[0]["detail"]["execution_id"], "web-redeploy-3", "the deployer is told at once");
    assert_eq!(requested[0]["detail"]["image_uri"], "web:web-1");

    // --to names the run; it must have succeeded.
    let to = sluice(&["--stack", &name, "--json", "rollback", "web", "--to", "web-redeploy-3"]);
    assert_eq!(to.status.code(), Some(1));
    assert!(
        stderr(&to).contains("run web-redeploy-3 is running deploy: only a succeeded run's build is rolled back to"),
        "{}",
        stderr(&to)
    );
    let retry = sluice(&["--stack", &name, "retry", "web-2"]);
    assert_eq!(retry.status.code(), Some(1));
    assert!(
        stderr(&retry).contains("run web-2 is succeeded: only a run that did not succeed can be retried"),
        "{}",
        stderr(&retry)
    );
    let rerun = sluice(&["--stack", &name, "rerun", "web", "0badc0de"]);
    assert_eq!(rerun.status.code(), Some(1));
    assert!(stderr(&rerun).contains("pipeline web ran no commit starting 0badc0de"), "{}", stderr(&rerun));
    Ok(())
}

#[tokio::test]
async fn sluice_page_prints_the_status_pages_address_and_a_runs_which_the_approval_function_serves() -> Result<()> {
    use std::sync::Arc;
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&std::fs::read_to_string(workspace_root().join(EXAMPLE))?, None, chrono::Utc::now()).await?;
    web_run(&store, "web-1", true).await?;
    // The stack's key, and the approval function reading it, served on a function URL.
    let key = "Gm4xT8pQ2vZr7NcW5yLb9KdH3sFj";
    let secret = sluice_integration::unique("sluice/status-key");
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    let arn = secrets.create_secret().name(&secret).secret_string(key).send().await?.arn.unwrap_or_default();
    let config = approval::handler::Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_STATUS_KEY" => Some(arn.clone()),
        _ => None,
    })?;
    let app = Arc::new(approval::handler::AwsApp::from_aws(&stack.config, &config));
    let url = sluice_sandbox::function_url::serve("approval", move |request| {
        let app = Arc::clone(&app);
        async move { approval::handler::respond(&app, request, chrono::Utc::now()).await }
    })
    .await?;
    let name = sluice_integration::unique("sluice-cli");
    deployed_with(&stack, &name, &[("ApprovalUrl", &url.url), ("StatusKeySecretArn", &arn)]).await?;

    let overview = sluice(&["--stack", &name, "page"]);
    assert!(overview.status.success(), "{}", stderr(&overview));
    assert_eq!(stdout(&overview), format!("{}status/{key}\n", url.url));
    let (code, _, page) = sluice_integration::request("GET", stdout(&overview).trim(), &[], vec![]).await?;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("web-1") && page.contains("sluice status"), "{page}");

    let one = sluice(&["--stack", &name, "--json", "page", "web-1"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let printed: serde_json::Value = serde_json::from_str(&stdout(&one))?;
    let address = printed["url"].as_str().unwrap_or_default();
    assert!(address.starts_with(&format!("{}status/run/web-1/", url.url)) && !address.contains(key), "{address}");
    let (code, _, page) = sluice_integration::request("GET", address, &[], vec![]).await?;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("web run #1"), "{page}");

    let unknown = sluice(&["--stack", &name, "page", "web-9"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("there is no run web-9"), "{}", stderr(&unknown));
    let by_table = sluice(&["--table", &stack.table, "page"]);
    assert_eq!(by_table.status.code(), Some(1));
    assert!(stderr(&by_table).contains("name the stack"), "{}", stderr(&by_table));
    Ok(())
}

/// Applies `events` to pipeline web in `store`, as the stage functions would.
async fn applied(store: &DynamoDbStore, events: &[sluice::pipeline::Event]) -> Result<()> {
    use sluice::contract::testing::RecordingRunner;
    use sluice::definitions::ExecutionMode;
    use sluice::usecases::{Input, handle};
    let runner = RecordingRunner::new();
    for event in events {
        let now = chrono::Utc::now();
        handle(store, &runner, Input { pipeline: "web", mode: ExecutionMode::Superseded, event, receipt: None, now })
            .await?;
    }
    Ok(())
}

/// Orders of a run or a commit the stack `name` does not know are refused, each saying so.
fn refuses_unknown_runs(name: &str) {
    for (args, error) in [
        (["retry", "web-9"].as_slice(), "there is no run web-9: `sluice history PIPELINE` lists them"),
        (["rollback", "web", "--to", "web-9"].as_slice(), "there is no run web-9"),
        (["rerun", "api", "1111111"].as_slice(), "pipeline api ran no commit starting 1111111"),
    ] {
        let refused = sluice(&[["--stack", name].as_slice(), args].concat());
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        assert!(stderr(&refused).contains(error), "{args:?}: {}", stderr(&refused));
    }
}

/// Commit `n` repeated: `111…`.
fn commit(n: char) -> String {
    n.to_string().repeat(40)
}

/// Main went to commit 111… (web-1, shipped), then 222… (web-2, whose deployment failed and rolled back), then 333…
/// (web-3, whose build failed), as GitHub's pushes say.
async fn three_commits_of_main(store: &DynamoDbStore) -> Result<()> {
    use sluice::contract::testing::push;
    use sluice::pipeline::{Event, ExecutionId};
    let chained = |mut event: Event, before: char, after: char| {
        if let Event::Triggered { source, .. } = &mut event {
            (source.before, source.commit) = (commit(before), commit(after));
        }
        event
    };
    let mut web_1 = sluice::contract::testing::shipped("web-1");
    web_1[0] = chained(web_1[0].clone(), '0', '1');
    applied(store, &web_1).await?;
    let mut web_2 = sluice::contract::testing::shipped("web-2");
    web_2[0] = chained(web_2[0].clone(), '1', '2');
    web_2.pop();
    web_2.push(Event::DeploymentFailed {
        execution_id: ExecutionId::from("web-2"),
        deployment_id: Some("d-web-2".into()),
        reason: "the deployment's alarm went off".into(),
        rolled_back: true,
    });
    applied(store, &web_2).await?;
    let web_3 = [
        chained(push("web-3", sluice::definitions::ExecutionMode::Superseded, true), '2', '3'),
        sluice::contract::testing::build_failed("web-3"),
    ];
    applied(store, &web_3).await?;
    Ok(())
}

#[tokio::test]
async fn retry_builds_a_failed_builds_commit_again_and_redeploys_a_failed_deployments_build_and_rerun_builds_a_commit()
-> Result<()> {
    use sluice::pipeline::{ExecutionId, Stage, Status};
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&std::fs::read_to_string(workspace_root().join(EXAMPLE))?, None, chrono::Utc::now()).await?;
    stack.create_build_project("web-build").await?;
    let codebuild = aws_sdk_codebuild::Client::new(&stack.config);
    // GIVEN main went to commit 111… (web-1, shipped), then 222… (web-2, whose deployment failed and rolled back),
    // then 333… (web-3, whose build failed), as GitHub's pushes say
    three_commits_of_main(&store).await?;
    let name = sluice_integration::unique("sluice-cli");
    deployed(&stack, &name).await?;

    // An unknown run or commit is refused, saying so, and nothing is ordered.
    refuses_unknown_runs(&name);

    // WHEN web-3 is retried, THEN its commit is built again on CodeBuild in a new run, pushed by the caller
    let retry = sluice(&["--stack", &name, "retry", "web-3"]);
    assert!(retry.status.success(), "{}", stderr(&retry));
    let text = stdout(&retry);
    assert!(
        text.starts_with("web-rerun-4: a run of web that builds commit 333333333333 again, ordered by arn:aws:"),
        "{text}"
    );
    assert!(text.contains("; it is running build\n"), "{text}");
    let run = store.execution(&ExecutionId::from("web-rerun-4")).await?.expect("the new run");
    assert_eq!((run.status, run.source.commit.as_str()), (Status::Running(Stage::BUILD), commit('3').as_str()));
    assert!(run.source.pusher.starts_with("arn:aws:"), "{}", run.source.pusher);
    let build_id = run.build.as_ref().and_then(|build| build.build_id.clone()).expect("CodeBuild's build id");
    let listed = codebuild.list_builds_for_project().project_name("web-build").send().await?;
    let [started] = listed.ids() else { panic!("one build: {listed:?}") };
    assert!(build_id.ends_with(&format!("build/{started}")), "{build_id} names {started}");
    let builds = codebuild.batch_get_builds().ids(started).send().await?;
    let build = builds.builds().first().unwrap_or_else(|| panic!("the build {build_id}, in CodeBuild: {builds:?}"));
    assert_eq!((build.project_name(), build.source_version()), (Some("web-build"), Some(commit('3').as_str())));

    // WHEN web-2 is retried, THEN the build it deployed is deployed again, without a new build or approval
    let retry = sluice(&["--stack", &name, "--json", "retry", "web-2"]);
    assert!(retry.status.success(), "{}", stderr(&retry));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&retry))?;
    assert_eq!(answer["run"], "web-redeploy-5");
    assert_eq!((answer["of"].as_str(), answer["redeploys"].as_bool()), (Some("web-2"), Some(true)));
    assert_eq!(answer["status"], "running deploy");
    let requested = stack
        .receive(stack.queue_to("DeployerFunction", "Deployment Requested")?, 1, std::time::Duration::from_secs(10))
        .await?;
    assert_eq!(requested[0]["detail"]["execution_id"], "web-redeploy-5", "the deployer is told at once");
    assert_eq!(requested[0]["detail"]["image_uri"], "web:web-2");

    // WHEN web's latest commit is run again by a prefix of it, THEN a new run builds it again, after web-rerun-4
    let rerun = sluice(&["--stack", &name, "rerun", "web", "3333333"]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert!(
        stdout(&rerun).starts_with("web-rerun-6: a run of web that builds commit 333333333333 again"),
        "{}",
        stdout(&rerun)
    );
    let builds = codebuild.list_builds_for_project().project_name("web-build").send().await?;
    assert!(stdout(&rerun).contains("; it is waiting for build\n"), "one build at a time: {}", stdout(&rerun));
    assert_eq!(builds.ids().len(), 1, "its build starts when web-rerun-4's ends: {builds:?}");
    // AND a commit main has moved past is not built again: the run is skipped, saying why, and the command fails
    let older = sluice(&["--stack", &name, "rerun", "web", "111111"]);
    assert_eq!(older.status.code(), Some(1), "{}", stderr(&older));
    assert!(
        stdout(&older).contains(
            "; it is skipped: commit 1111111 is older than 3333333, which web already ran for refs/heads/main; sluice \
             never deploys backwards\n"
        ),
        "{}",
        stdout(&older)
    );
    Ok(())
}

#[tokio::test]
async fn show_run_wait_on_a_terminal_colours_the_status_and_spins_a_progress_line_it_clears_unless_no_color()
-> Result<()> {
    use sluice::pipeline::{ApprovalDecision, Event, ExecutionId};
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    web_run(&store, "web-1", true).await?;
    let table = stack.table.clone();
    // GIVEN web-1 waits for its approval, and two people follow it at their terminals, one with NO_COLOR set
    let coloured = OnATerminal::start(&["--table", &table, "show-run", "web-1", "--wait"], &[])?;
    let plain = OnATerminal::start(&["--table", &table, "show-run", "web-1", "--wait"], &[("NO_COLOR", "1")])?;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // WHEN it is rejected
    let rejected = Event::ApprovalDecided {
        execution_id: ExecutionId::from("web-1"),
        decision: ApprovalDecision::Rejected,
        approver: "Jane".into(),
        comment: Some("not today".into()),
        token_hash: None,
        source_ip: None,
        user_agent: None,
    };
    applied(&store, &[rejected]).await?;
    let (code, screen) = tokio::task::spawn_blocking(move || coloured.finish()).await??;
    let (plain_code, plain_screen) = tokio::task::spawn_blocking(move || plain.finish()).await??;

    // THEN both exit 1, the run having not succeeded
    assert_eq!((code, plain_code), (Some(1), Some(1)), "{screen}\n{plain_screen}");
    // AND the status is yellow while the run runs and red once rejected
    assert!(screen.contains("\x1b[33mrunning approval\x1b[0m"), "{screen:?}");
    assert!(screen.contains("web-1 \x1b[31mrejected\x1b[0m: rejected by Jane: not today\r\n"), "{screen:?}");
    // AND while it waits, a spinner turns on one line, saying what the run waits for, and is cleared before the end
    let progress = "web-1 running approval, waiting for a decision";
    // (indicatif's drawing: each frame erases the line, ESC [2K, and draws it again)
    let frames: std::collections::BTreeSet<char> = screen
        .split("\x1b[2K  ")
        .filter(|drawn| drawn.contains(progress))
        .filter_map(|drawn| drawn.chars().next())
        .collect();
    assert!(frames.len() >= 5, "the spinner turns: {frames:?} in {screen:?}");
    let cleared = screen.rfind("\r\x1b[2K").expect("the line is cleared");
    assert!(cleared < screen.rfind("web-1 \x1b[31mrejected").unwrap_or_default(), "{screen:?}");
    // AND with NO_COLOR, the same words without a colour, and the spinner still (it is not colour)
    assert!(!plain_screen.contains("\x1b[3"), "{plain_screen:?}");
    assert!(plain_screen.contains("web-1 rejected: rejected by Jane: not today\r\n"), "{plain_screen:?}");
    assert!(plain_screen.contains(progress), "{plain_screen:?}");
    Ok(())
}

#[test]
fn help_version_and_completions_print_to_stdout_and_exit_0() {
    let help = sluice(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    for verb in ["status", "history", "show-run", "approve", "rollback", "check", "publish", "init", "doctor"] {
        assert!(stdout(&help).contains(&format!("\n  {verb} ")), "{verb} in {}", stdout(&help));
    }
    let rollback = sluice(&["help", "rollback"]);
    assert_eq!(rollback.status.code(), Some(0));
    assert!(stdout(&rollback).contains("--to <RUN>") && stdout(&rollback).contains("Examples:\n  sluice rollback web"));
    let version = sluice(&["--version"]);
    assert_eq!(stdout(&version), format!("sluice {}\n", env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = sluice(&["completions", shell]);
        assert_eq!(script.status.code(), Some(0), "{shell}");
        assert!(stdout(&script).contains("retry-effect"), "{shell} completes every verb");
    }
    assert_eq!(sluice(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_stack_and_the_table_together_are_refused_as_a_usage_mistake() {
    let both = sluice(&["--stack", "sluice", "--table", "sluice-table", "status"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr(&both).contains("--stack and --table both say where the runs are"), "{}", stderr(&both));
}

#[test]
fn check_takes_several_files_and_standard_input() -> Result<()> {
    let broken = broken_copy("cli-check-several.toml")?;
    let both = sluice(&["check", EXAMPLE, &broken.to_string_lossy()]);
    assert_eq!(both.status.code(), Some(1), "one of them has a mistake");
    assert!(stdout(&both).starts_with(&format!("{EXAMPLE}: ok: 3 pipelines")), "{}", stdout(&both));
    assert!(stderr(&both).contains("cli-check-several.toml:9:14: pipeline `web`"), "{}", stderr(&both));
    let piped =
        common::command(&["check", "-"], &[]).stdin(std::fs::File::open(workspace_root().join(EXAMPLE))?).output()?;
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(stdout(&piped).starts_with("ok: 3 pipelines"), "{}", stdout(&piped));
    let piped_broken = common::command(&["--json", "check", "-"], &[]).stdin(std::fs::File::open(&broken)?).output()?;
    let answer: serde_json::Value = serde_json::from_str(&stdout(&piped_broken))?;
    assert_eq!(answer["errors"][0]["file"], "<stdin>", "{answer}");
    // With --json, the good file's pipelines are there beside the other's mistakes, each naming its file
    let json = sluice(&["--json", "check", EXAMPLE, &broken.to_string_lossy()]);
    assert_eq!(json.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&json))?;
    assert_eq!(answer["pipelines"].as_array().map(Vec::len), Some(3), "{answer}");
    assert!(answer["pipelines"].as_array().is_some_and(|p| p.iter().all(|p| p["file"] == EXAMPLE)), "{answer}");
    assert!(answer["errors"][0]["file"].as_str().is_some_and(|f| f.ends_with("cli-check-several.toml")), "{answer}");
    // Standard input is read once
    let twice = sluice(&["check", "-", "-"]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(stderr(&twice).contains("standard input (-) can be read once"), "{}", stderr(&twice));
    Ok(())
}

#[tokio::test]
async fn history_of_a_published_pipeline_not_yet_run_says_so_and_exits_0() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&std::fs::read_to_string(workspace_root().join(EXAMPLE))?, None, chrono::Utc::now()).await?;
    let none = sluice(&["history", "api", "--table", &stack.table]);
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    assert!(stdout(&none).starts_with("api has no runs yet"), "{}", stdout(&none));
    let json = sluice(&["--json", "history", "api", "--table", &stack.table]);
    let answer: serde_json::Value = serde_json::from_str(&stdout(&json))?;
    assert_eq!(answer["runs"], serde_json::json!([]));
    let unknown = sluice(&["history", "nope", "--table", &stack.table]);
    assert_eq!(unknown.status.code(), Some(1));
    Ok(())
}

#[test]
fn a_missing_table_is_named_with_its_region_once_and_json_errors_are_json() -> Result<()> {
    let missing = sluice(&["--table", "no-such-table", "history", "web"]);
    assert_eq!(missing.status.code(), Some(1));
    let said = stderr(&missing);
    assert!(said.contains("there is no table no-such-table in us-east-1"), "{said}");
    assert_eq!(said.matches("no-such-table").count(), 1, "said once: {said}");
    let json = sluice(&["--json", "--table", "no-such-table", "history", "web"]);
    let answer: serde_json::Value = serde_json::from_str(&stderr(&json))?;
    assert_eq!(answer["ok"], false);
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("there is no table no-such-table")), "{answer}");
    assert_eq!(stdout(&json), "", "stdout holds answers only");
    // The verbs that change a run say it as plainly, naming the table once
    for verb in [
        &["approve", "web-1"][..],
        &["reject", "web-1"],
        &["retry", "web-1"],
        &["rerun", "web", "9b2c5f0"],
        &["rollback", "web"],
        &["retry-effect", "web", "web-1-1"],
    ] {
        let args = [&["--table", "no-such-table", "--bus", "default"][..], verb].concat();
        let missing = sluice(&args);
        assert_eq!(missing.status.code(), Some(1), "{verb:?}");
        let said = stderr(&missing);
        assert!(said.contains("there is no table no-such-table in us-east-1"), "{verb:?}: {said}");
        assert!(!said.contains("ResourceNotFoundException"), "{verb:?}: {said}");
    }
    Ok(())
}

#[tokio::test]
async fn colours_follow_clicolor_force_and_no_color_when_not_on_a_terminal() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    web_run(&store, "web-1", false).await?;
    let args = ["history", "web", "--table", &stack.table];
    assert!(!stdout(&sluice(&args)).contains('\x1b'), "piped: no colours");
    let forced = stdout(&sluice_with(&args, &[("CLICOLOR_FORCE", "1")]));
    assert!(forced.contains("\x1b[33m"), "CLICOLOR_FORCE: colours even piped: {forced:?}");
    let refused = stdout(&sluice_with(&args, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]));
    assert!(!refused.contains('\x1b'), "NO_COLOR wins: {refused:?}");
    Ok(())
}

#[test]
fn the_readme_uses_the_installed_sluice_which_make_cli_installs() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    assert!(!readme.contains("-p sluice-cli --"), "the README says `sluice ...`, not cargo run");
    assert!(readme.contains("\nsluice status ") && readme.contains("`make cli`"));
    let makefile = std::fs::read_to_string(root.join("Makefile")).expect("Makefile");
    assert!(makefile.contains("\ncli:\n\tcargo install --locked --path infra/cli\n"), "make cli installs it");
}

#[test]
fn region_and_profile_are_read_as_the_aws_cli_reads_them() {
    let elsewhere = sluice(&["--region", "eu-west-1", "--stack", "no-such-stack", "history", "web"]);
    assert_eq!(elsewhere.status.code(), Some(1));
    assert!(stderr(&elsewhere).contains("there is no stack `no-such-stack` in eu-west-1"), "{}", stderr(&elsewhere));
    // A profile named on the command line wins over the keys in the environment: one that is not in ~/.aws fails,
    // though the environment's keys would have done
    let home = workspace_root().join("target");
    let profiled = sluice_with(
        &["--profile", "nobody-has-this", "--stack", "no-such-stack", "history", "web"],
        &[("HOME", &home.to_string_lossy())],
    );
    assert_eq!(profiled.status.code(), Some(1));
    assert!(!stderr(&profiled).contains("there is no stack"), "{}", stderr(&profiled));
    assert!(stderr(&profiled).contains("are AWS credentials and region set"), "{}", stderr(&profiled));
}

#[tokio::test]
async fn on_a_terminal_colours_are_on_unless_clicolor_is_0() -> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    web_run(&store, "web-1", false).await?;
    let args = ["history", "web", "--table", &stack.table];
    let (code, coloured) = OnATerminal::start(&args, &[])?.finish()?;
    assert_eq!(code, Some(0), "{coloured}");
    assert!(coloured.contains("\x1b[33m"), "{coloured:?}");
    let (code, plain) = OnATerminal::start(&args, &[("CLICOLOR", "0")])?.finish()?;
    assert_eq!(code, Some(0), "{plain}");
    assert!(!plain.contains('\x1b') && plain.contains("web-1"), "{plain:?}");
    Ok(())
}

#[tokio::test]
async fn approvers_sync_subscribes_each_approver_with_their_filter_policy_and_names_what_would_receive_all_links()
-> Result<()> {
    let stack = Stack::create().await?;
    let topic = stack.sns.create_topic().name(sluice_integration::unique("sign-off")).send().await?;
    let topic = topic.topic_arn().context("a topic")?.to_owned();
    // bob subscribed before, without a filter policy; ops reads everything.
    for endpoint in ["bob@example.com", "ops@example.com"] {
        stack.sns.subscribe().topic_arn(&topic).protocol("email").endpoint(endpoint).send().await?;
    }
    let definitions = format!(
        "[pipelines.web]\nsource = {{ repository = \"acme/web\" }}\nbuild = {{ project = \"web-build\" }}\n\n\
         [[pipelines.web.stages]]\nname = \"sign-off\"\napproval = {{ topic = \"{topic}\", approvers = \
         [\"alice@example.com\", \"bob@example.com\"], required = 2 }}\n\n\
         [[pipelines.web.stages]]\nname = \"production\"\ndeploy = {{ strategy = \"rolling\", cluster = \"prod\", \
         service = \"web\" }}\n"
    );
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&definitions, None, chrono::Utc::now()).await?;
    let name = sluice_integration::unique("sluice-cli");
    deployed(&stack, &name).await?;

    let dry = sluice(&["--stack", &name, "approvers", "sync", "--dry-run"]);
    assert!(stdout(&dry).contains("alice@example.com on"), "{}", stdout(&dry));
    assert!(stdout(&dry).contains("would be subscribed"), "{}", stdout(&dry));
    assert_eq!(filter_policies(&stack.sns, &topic).await?.len(), 2, "a dry run changes nothing");

    let synced = sluice(&["--stack", &name, "approvers", "sync"]);
    assert_eq!(synced.status.code(), Some(1), "ops would receive everyone's links: {}", stdout(&synced));
    let said = stdout(&synced);
    assert!(said.contains("alice@example.com on") && said.contains("subscribed with their filter policy"), "{said}");
    assert!(said.contains("bob@example.com on") && said.contains("given their filter policy"), "{said}");
    assert!(said.contains("email subscription ops@example.com") && said.contains("has no filter policy"), "{said}");
    let alice = r#"{"sluice_approver":["alice@example.com"]}"#;
    let bob = r#"{"sluice_approver":["bob@example.com"]}"#;
    let found = filter_policies(&stack.sns, &topic).await?;
    assert_eq!(
        found,
        [
            ("alice@example.com".to_owned(), Some(alice.to_owned())),
            ("bob@example.com".to_owned(), Some(bob.to_owned())),
            ("ops@example.com".to_owned(), None),
        ]
    );
    // ops unsubscribed: nothing left to mend, and a second sync changes nothing
    let listed = stack.sns.list_subscriptions_by_topic().topic_arn(&topic).send().await?;
    let ops = listed.subscriptions().iter().find(|s| s.endpoint() == Some("ops@example.com"));
    let ops = ops.and_then(|s| s.subscription_arn()).context("ops's subscription")?;
    stack.sns.unsubscribe().subscription_arn(ops).send().await?;
    let again = sluice(&["--stack", &name, "approvers", "sync"]);
    assert!(again.status.success(), "{}", stdout(&again));
    assert_eq!(stdout(&again).matches("subscribed with their filter policy").count(), 2, "{}", stdout(&again));
    Ok(())
}

/// Each subscription of `topic`: its endpoint and filter policy, in order.
async fn filter_policies(sns: &aws_sdk_sns::Client, topic: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut found = Vec::new();
    let listed = sns.list_subscriptions_by_topic().topic_arn(topic).send().await?;
    for subscription in listed.subscriptions() {
        let arn = subscription.subscription_arn().context("an ARN")?;
        let attributes = sns.get_subscription_attributes().subscription_arn(arn).send().await?;
        let policy = attributes.attributes().and_then(|a| a.get("FilterPolicy")).cloned();
        found.push((subscription.endpoint().unwrap_or_default().to_owned(), policy));
    }
    found.sort();
    Ok(found)
}

#[test]
fn checking_a_stage_of_named_approvers_says_how_many_of_whom_and_refuses_an_approver_who_is_no_address() -> Result<()> {
    let signed = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "sign-off"
approval = { topic = "arn:aws:sns:eu-west-1:123456789012:web-approvals", approvers = ["alice@example.com", "bob@example.com", "carol@example.com"], required = 2, forbid_pusher = true, operators = ["arn:aws:iam::123456789012:role/release-*"] }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "web" }
"#;
    let path = workspace_root().join("target").join("cli-check-approvers.toml");
    std::fs::write(&path, signed)?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "ok: 1 pipeline\n  web: acme/web pushes to the default branch; build web-build; stages sign-off (approval by \
         arn:aws:sns:eu-west-1:123456789012:web-approvals, 2 of alice@example.com, bob@example.com, carol@example.com \
         (not the pusher; operators arn:aws:iam::123456789012:role/release-*)) → production (rolling update of \
         prod/web)"
    );
    let json = sluice(&["--json", "check", &path.to_string_lossy()]);
    let said: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    assert_eq!(said["pipelines"][0]["stages"][0]["approvers"]["required"], 2, "{said}");
    std::fs::write(&path, signed.replace("\"bob@example.com\"", "\"bob\""))?;
    let output = sluice(&["check", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains(":8:108: pipeline `web`, field `stages[0].approval.approvers[1]`: must be an email address"),
        "{}",
        stderr(&output)
    );
    Ok(())
}
