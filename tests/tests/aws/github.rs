//! Runs shown on GitHub, through the notifier as it runs on AWS (its `from_aws`), against the sandbox's GitHub
//! stand-in: what GitHub is sent (commit statuses, one Deployment and its states, the API version), and that
//! GitHub down or refusing never touches the run.

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use notifier::handler::{AwsApp, Config, on_event};
use secrecy::SecretString;
use serde_json::{Value, json};
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::PipelineStore;
use sluice::contract::testing::{RecordingRunner, push};
use sluice::definitions::{ExecutionMode, GitHubReport};
use sluice::github::sign_in::GitHubCredentials;
use sluice::pipeline::{ApprovalDecision, BuildOutputs, EffectKind, Event, ExecutionId, Status};
use sluice::present::status::StatusKey;
use sluice::usecases::{Input, handle};
use sluice_integration::{Stack, unique};
use sluice_sandbox::github::{GitHub, Recorded};

const TOKEN: &str = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz";
const KEY: &str = "Wx7Lq2Nv9Rb4Tz8Mk3Hc6Pd5";
const COMMIT: &str = "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b";

/// A stack, its store, and the notifier wired to the GitHub stand-in with `token` (`None`: the stack has none).
async fn notifier(stack: &Stack, github: &GitHub, token: Option<&str>) -> Result<AwsApp> {
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    let mut named = Vec::new();
    for value in token.into_iter().chain([KEY]) {
        let name = unique("sluice/secret");
        secrets.create_secret().name(&name).secret_string(value).send().await?;
        named.push(name);
    }
    let (token_secret, key_secret) = match named.as_slice() {
        [token, key] => (Some(token.clone()), key.clone()),
        [key] => (None, key.clone()),
        _ => anyhow::bail!("secrets"),
    };
    let config = Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_GITHUB_TOKEN" => token_secret.clone(),
        "SLUICE_GITHUB_API" => Some(github.url.clone()),
        "SLUICE_STATUS_KEY" => Some(key_secret.clone()),
        "SLUICE_APPROVAL_URL" => Some("https://approve.example".into()),
        _ => None,
    })?;
    Ok(AwsApp::from_aws(&stack.config, &config))
}

/// Applies `events` to web's run web-1 (commit [`COMMIT`], shown on GitHub as `production`), as the stage functions
/// would, leaving the GitHub reports in the outbox for the notifier.
async fn apply(store: &DynamoDbStore, events: &[Event], now: DateTime<Utc>) -> Result<()> {
    let runner = RecordingRunner::owning(&[EffectKind::StartBuild]);
    for event in events {
        handle(store, &runner, Input { pipeline: "web", mode: ExecutionMode::Superseded, event, receipt: None, now })
            .await?;
    }
    Ok(())
}

fn pushed() -> Event {
    pushed_as("web-1", COMMIT)
}

/// A push of `commit` that starts run `execution` of web, shown on GitHub as `production`.
fn pushed_as(execution: &str, commit: &str) -> Event {
    let mut event = push(execution, ExecutionMode::Superseded, true);
    if let Event::Triggered { source, plan, .. } = &mut event {
        source.commit = commit.into();
        plan.github = Some(GitHubReport { environment: "production".into() });
    }
    event
}

/// A stack in moto, the GitHub stand-in serving acme/web, and the stack's store.
async fn world() -> Result<(Stack, GitHub, DynamoDbStore)> {
    let stack = Stack::create().await?;
    let github = GitHub::start(TOKEN, &["acme/web"]).await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    Ok((stack, github, store))
}

fn web_1() -> ExecutionId {
    ExecutionId::from("web-1")
}

/// The notifier's doorbell for web, as the bus delivers it.
fn rung() -> serde_json::Value {
    json!({ "source": "sluice", "detail-type": "Execution Started", "detail": { "pipeline": "web", "execution_id": "web-1" } })
}

/// web-1 pushed, built, approved and deployed, the notifier woken after each step as its rules would.
async fn shipped_as_the_notifier_sees_it(store: &DynamoDbStore, app: &AwsApp) -> Result<()> {
    let now = Utc::now();
    apply(store, &[pushed()], now).await?;
    on_event(app, &rung(), now).await?;
    apply(
        store,
        &[
            Event::BuildSucceeded {
                execution_id: web_1(),
                build_id: "build-web-1".into(),
                outputs: BuildOutputs { image_uri: "web:1".into(), artifacts: None },
            },
            Event::ApprovalDecided {
                execution_id: web_1(),
                decision: ApprovalDecision::Approved,
                approver: "Jane".into(),
                comment: None,
                token_hash: None,
                source_ip: None,
                user_agent: None,
            },
        ],
        now,
    )
    .await?;
    on_event(app, &rung(), now).await?;
    apply(
        store,
        &[
            Event::DeploymentStarted {
                execution_id: web_1(),
                deployment_id: "d-1".into(),
                service_deployment: None,
                task_definition: None,
                previous_task_definition: None,
                in_alarm: None,
            },
            Event::DeploymentSucceeded { execution_id: web_1(), deployment_id: "d-1".into(), tasks: None },
        ],
        now,
    )
    .await?;
    on_event(app, &rung(), now).await?;

    Ok(())
}

#[tokio::test]
async fn a_run_sets_its_commit_status_and_one_deployment_from_queued_to_success_linking_its_page() -> Result<()> {
    let (stack, github, store) = world().await?;
    let app = notifier(&stack, &github, Some(TOKEN)).await?;
    shipped_as_the_notifier_sees_it(&store, &app).await?;

    // The commit status: pending, then pending while it deploys, then success; each linking to the run's page.
    let page = format!(
        "https://approve.example/{}",
        StatusKey::new(SecretString::from(KEY)).map_err(anyhow::Error::msg)?.run_path(&web_1())
    );
    let statuses = github.commit_statuses(COMMIT);
    let seen: Vec<(&str, &str)> = statuses
        .iter()
        .map(|s| (s["state"].as_str().unwrap_or_default(), s["description"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        seen,
        [
            ("pending", "run #1: building"),
            ("pending", "run #1: deploying (blue_green)"),
            ("success", "run #1 deployed in 0 ms")
        ]
    );
    assert!(statuses.iter().all(|s| s["context"] == "sluice/web" && s["target_url"] == page.as_str()), "{statuses:?}");

    // One Deployment, for the commit, with the states it went through.
    let deployments = github.deployments();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    let deployment = &deployments[0];
    assert_eq!(deployment["sha"], COMMIT);
    assert_eq!(deployment["environment"], "production");
    assert_eq!(deployment["auto_merge"], false);
    assert_eq!(deployment["required_contexts"], json!([]));
    assert_eq!(deployment["payload"], json!({ "pipeline": "web", "execution_id": "web-1" }));
    let states: Vec<&str> =
        deployment["statuses"].as_array().context("statuses")?.iter().filter_map(|s| s["state"].as_str()).collect();
    assert_eq!(states, ["queued", "in_progress", "success"]);
    assert!(deployment["statuses"].as_array().context("statuses")?.iter().all(|s| s["log_url"] == page.as_str()));

    // Every request named the API version and GitHub's media type, with the token; the run recorded its Deployment.
    let requests = github.requests();
    assert!(requests.iter().all(|r| r.api_version.as_deref() == Some("2022-11-28") && r.authorized), "{requests:?}");
    assert!(requests.iter().all(|r| r.accept.as_deref() == Some("application/vnd.github+json")));
    assert_eq!(requests.iter().filter(|r| r.method == "POST" && r.path == "/repos/acme/web/deployments").count(), 1);
    let run = store.execution(&web_1()).await?.context("the run")?;
    assert_eq!(
        (run.status, run.github_deployments.first().map(|shown| shown.deployment)),
        (Status::Succeeded, Some(1))
    );
    let state = store.load("web").await?.context("the state")?.value;
    let reports = state.pending.iter().filter(|p| p.effect.kind() == EffectKind::ReportToGitHub).count();
    assert!(reports == 0 && state.parked.is_empty(), "{:?} {:?}", state.pending, state.parked);
    Ok(())
}

#[tokio::test]
async fn github_down_is_tried_again_later_and_never_fails_the_run() -> Result<()> {
    let (stack, github, store) = world().await?;
    let app = notifier(&stack, &github, Some(TOKEN)).await?;
    let now = Utc::now();
    apply(&store, &[pushed()], now).await?;

    github.fail_next(1);
    on_event(&app, &rung(), now).await?;
    let state = store.load("web").await?.context("the state")?.value;
    let pending = state.pending.iter().find(|p| p.effect.kind() == EffectKind::ReportToGitHub).context("pending")?;
    assert_eq!(pending.attempts, 1);
    let error = pending.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("503: Service Unavailable"), "{error}");
    assert_eq!(state.execution(&web_1()).map(|run| run.status), Some(Status::Running(sluice::pipeline::Stage::BUILD)));
    assert!(github.commit_statuses(COMMIT).is_empty());

    // After the backoff, the reconciler's doorbell has it carried out.
    let later = pending.not_before.context("a backoff")? + TimeDelta::seconds(1);
    on_event(&app, &rung(), later).await?;
    assert_eq!(github.commit_statuses(COMMIT).len(), 1);
    assert_eq!(github.deployments().len(), 1);
    let state = store.load("web").await?.context("the state")?.value;
    assert!(state.pending.iter().all(|p| p.effect.kind() != EffectKind::ReportToGitHub), "{:?}", state.pending);
    Ok(())
}

#[tokio::test]
async fn a_refused_token_or_none_at_all_parks_the_report_at_once_saying_why() -> Result<()> {
    let (stack, github, store) = world().await?;
    let now = Utc::now();
    apply(&store, &[pushed()], now).await?;

    let wrong = notifier(&stack, &github, Some("github_pat_revoked")).await?;
    on_event(&wrong, &rung(), now).await?;
    let state = store.load("web").await?.context("the state")?.value;
    let parked = state.parked.first().context("parked")?;
    assert!(
        parked.error.contains("GitHub answered 401") && parked.error.contains("Bad credentials"),
        "{}",
        parked.error
    );
    assert!(!parked.error.contains("github_pat"), "the token is never written: {}", parked.error);
    assert_eq!(state.execution(&web_1()).map(|run| run.status), Some(Status::Running(sluice::pipeline::Stage::BUILD)));
    assert!(github.requests().iter().all(|r| !r.authorized));

    apply(&store, &[build_failed()], now).await?;
    let none = notifier(&stack, &github, None).await?;
    on_event(&none, &rung(), now).await?;
    let state = store.load("web").await?.context("the state")?.value;
    let parked = state.parked.last().context("parked")?;
    assert!(parked.error.contains("GitHubTokenSecret"), "{}", parked.error);
    assert_eq!(state.execution(&web_1()).map(|run| run.status), Some(Status::Failed), "the run ended as it did");
    Ok(())
}

#[tokio::test]
async fn a_deployment_github_made_before_sluice_recorded_it_is_found_not_made_again() -> Result<()> {
    let (stack, github, store) = world().await?;
    let app = notifier(&stack, &github, Some(TOKEN)).await?;
    let now = Utc::now();
    apply(&store, &[pushed()], now).await?;
    // GIVEN GitHub made web-1's Deployment on an earlier try, whose answer never reached sluice
    let made = json!({ "ref": COMMIT, "environment": "production", "payload": { "pipeline": "web", "execution_id": "web-1" } });
    let authorization = format!("Bearer {TOKEN}");
    let (code, _, _) = sluice_integration::request(
        "POST",
        &format!("{}/repos/acme/web/deployments", github.url),
        &[("authorization", authorization.as_str()), ("content-type", "application/json")],
        made.to_string().into_bytes(),
    )
    .await?;
    assert_eq!(code, 201);
    // WHEN the report is carried out
    on_event(&app, &rung(), now).await?;
    // THEN that Deployment is found by its payload and moved on; no second one is made, and the run records it
    let deployments = github.deployments();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0]["statuses"][0]["state"], "queued");
    let run = store.execution(&web_1()).await?.context("the run")?;
    assert_eq!(run.github_deployments.first().map(|shown| shown.deployment), Some(1));
    Ok(())
}

/// GitHub's form of a GitHub App's private key, made for the tests.
const APP_KEY: &str = include_str!("../../../shared/tests/fixtures/github-app-test-key.pem");

/// The secret of GitHub App 42, and its public key.
fn app_42() -> Result<(String, Vec<u8>)> {
    let secret = json!({ "app_id": 42, "private_key": APP_KEY }).to_string();
    match GitHubCredentials::parse(&SecretString::from(secret.clone()))? {
        GitHubCredentials::App(app) => Ok((secret, app.public_key())),
        GitHubCredentials::Token(_) => anyhow::bail!("not an app"),
    }
}

/// Each request as `METHOD path credential answer`.
fn calls(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} {} {}", r.method, r.path, r.credential.unwrap_or("none"), r.status))
        .collect()
}

fn build_failed() -> Event {
    sluice::contract::testing::build_failed("web-1")
}

#[tokio::test]
async fn a_github_app_reports_with_an_installation_token_for_that_repository_alone_kept_and_renewed_when_refused()
-> Result<()> {
    let (stack, github, store) = world().await?;
    let (secret, public_key) = app_42()?;
    let installation = github.install_app("42", &public_key);
    let app = notifier(&stack, &github, Some(&secret)).await?;
    let now = Utc::now();

    apply(&store, &[pushed()], now).await?;
    on_event(&app, &rung(), now).await?;
    // The JWT finds the installation and gets a token for acme/web alone, with the two permissions sluice uses; the
    // token, not the JWT, sets the status and makes the Deployment.
    let requests = github.requests();
    let find = "GET /repos/acme/web/installation app 200".to_owned();
    let get_token = format!("POST /app/installations/{installation}/access_tokens app 201");
    let set_status = format!("POST /repos/acme/web/statuses/{COMMIT} installation 201");
    let deployment_status = "POST /repos/acme/web/deployments/1/statuses installation 201".to_owned();
    assert_eq!(
        calls(&requests),
        [
            find.clone(),
            get_token.clone(),
            set_status.clone(),
            "GET /repos/acme/web/deployments installation 200".into(),
            "POST /repos/acme/web/deployments installation 201".into(),
            deployment_status.clone(),
        ]
    );
    assert_eq!(
        requests[1].body,
        json!({ "repositories": ["web"], "permissions": { "statuses": "write", "deployments": "write" } })
    );

    // GIVEN the installation's tokens are revoked (the app suspended and resumed)
    github.revoke_installation_tokens();
    // WHEN the run ends and is reported
    apply(&store, &[build_failed()], now).await?;
    on_event(&app, &rung(), now).await?;
    // THEN the kept token is refused once, a new one is got, and the report goes through: nothing parked
    assert_eq!(
        calls(&github.requests()[6..]),
        [format!("POST /repos/acme/web/statuses/{COMMIT} none 401"), find, get_token, set_status, deployment_status]
    );
    let states: Vec<Value> = github.commit_statuses(COMMIT).iter().map(|s| s["state"].clone()).collect();
    assert_eq!(states, [json!("pending"), json!("failure")]);
    let state = store.load("web").await?.context("the state")?.value;
    let reports = state.pending.iter().filter(|p| p.effect.kind() == EffectKind::ReportToGitHub).count();
    assert!(state.parked.is_empty() && reports == 0, "{:?} {:?}", state.parked, state.pending);
    assert!(github.requests().iter().all(|r| r.api_version.as_deref() == Some("2022-11-28")));
    Ok(())
}

#[tokio::test]
async fn a_github_app_not_installed_on_the_repository_or_a_secret_without_its_key_parks_the_report_saying_why()
-> Result<()> {
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    // GitHub serves acme/other only: the app is not installed on acme/web.
    let github = GitHub::start(TOKEN, &["acme/other"]).await?;
    let (secret, public_key) = app_42()?;
    github.install_app("42", &public_key);
    let now = Utc::now();
    apply(&store, &[pushed()], now).await?;

    on_event(&notifier(&stack, &github, Some(&secret)).await?, &rung(), now).await?;
    let state = store.load("web").await?.context("the state")?.value;
    let error = &state.parked.first().context("parked")?.error;
    assert!(error.contains("GitHub answered 404 to finding GitHub App 42's installation on acme/web"), "{error}");
    assert!(!error.contains("PRIVATE KEY"), "{error}");

    // An app whose key in the secret is not the one GitHub knows: its JWT is refused.
    github.install_app("43", b"the public key of another private key");
    let other = json!({ "app_id": 43, "private_key": APP_KEY }).to_string();
    apply(&store, &[pushed_as("web-2", COMMIT)], now).await?;
    on_event(&notifier(&stack, &github, Some(&other)).await?, &rung(), now).await?;
    let state = store.load("web").await?.context("the state")?.value;
    let error = &state.parked.last().context("parked")?.error;
    assert!(
        error.contains("GitHub answered 401") && error.contains("A JSON web token could not be decoded"),
        "{error}"
    );

    apply(&store, &[build_failed()], now).await?;
    let keyless = json!({ "app_id": 42 }).to_string();
    on_event(&notifier(&stack, &github, Some(&keyless)).await?, &rung(), now).await?;
    let state = store.load("web").await?.context("the state")?.value;
    let error = &state.parked.last().context("parked")?.error;
    assert!(error.contains("without a `private_key`"), "{error}");
    assert_eq!(github.requests().len(), 2, "a secret sluice cannot use sends nothing");
    assert_eq!(state.execution(&web_1()).map(|run| run.status), Some(Status::Failed), "the run ended as it did");
    Ok(())
}

#[tokio::test]
async fn a_run_superseded_by_a_newer_push_shows_an_error_on_its_commit_and_its_deployment_inactive() -> Result<()> {
    let (stack, github, store) = world().await?;
    let app = notifier(&stack, &github, Some(TOKEN)).await?;
    let now = Utc::now();
    let built = |execution: &str| Event::BuildSucceeded {
        execution_id: ExecutionId::from(execution),
        build_id: format!("build-{execution}"),
        outputs: BuildOutputs { image_uri: format!("web:{execution}"), artifacts: None },
    };
    const NEWER: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

    // GIVEN web-1 built and waiting for its approval, shown on GitHub
    apply(&store, &[pushed(), built("web-1")], now).await?;
    on_event(&app, &rung(), now).await?;
    // WHEN a newer push's run, web-2, is built: it supersedes web-1 at the approval stage
    apply(&store, &[pushed_as("web-2", NEWER), built("web-2")], now).await?;
    on_event(&app, &rung(), now).await?;

    let run = store.execution(&web_1()).await?.context("web-1")?;
    assert_eq!(run.status, Status::Superseded);
    // THEN web-1's commit shows an error naming the run that superseded it, and its Deployment is inactive
    let last = github.commit_statuses(COMMIT).last().cloned().context("a status")?;
    assert_eq!(last["state"], "error");
    assert_eq!(
        last["description"],
        format!("run #1 superseded by execution web-2 (commit {NEWER}) while awaiting approval")
    );
    let deployments = github.deployments();
    let of = |sha: &str| deployments.iter().find(|d| d["sha"] == sha).cloned().unwrap_or_default();
    let states = |deployment: &Value| -> Vec<Value> {
        deployment["statuses"].as_array().into_iter().flatten().map(|s| s["state"].clone()).collect()
    };
    assert_eq!(states(&of(COMMIT)), [json!("queued"), json!("inactive")]);
    assert_eq!(run.github_deployments.first().map(|shown| shown.deployment), of(COMMIT)["id"].as_u64());
    // AND web-2, now waiting for its approval, has its own Deployment, queued, and its commit pending
    assert_eq!(states(&of(NEWER)), [json!("queued")]);
    let newer = github.commit_statuses(NEWER).last().cloned().context("web-2's status")?;
    assert_eq!(newer["state"], "pending");
    Ok(())
}

#[tokio::test]
async fn a_github_apps_installation_token_within_five_minutes_of_expiring_is_replaced_before_it_is_used() -> Result<()>
{
    let (stack, github, store) = world().await?;
    let (secret, public_key) = app_42()?;
    github.install_app("42", &public_key);
    // GIVEN GitHub hands out tokens that expire in four minutes
    github.issue_tokens_for(TimeDelta::minutes(4));
    let app = notifier(&stack, &github, Some(&secret)).await?;
    let now = Utc::now();
    // WHEN the run's start and end are reported
    apply(&store, &[pushed()], now).await?;
    on_event(&app, &rung(), now).await?;
    apply(&store, &[build_failed()], now).await?;
    on_event(&app, &rung(), now).await?;
    // THEN no token that close to expiring is used: each request on the repository gets a new one just before it,
    // and none is refused (with GitHub's hour, one token serves them all: see the test above)
    let requests = github.requests();
    let tokens = requests.iter().filter(|r| r.path.ends_with("/access_tokens")).count();
    let on_repository = requests.iter().filter(|r| r.credential == Some("installation")).count();
    assert_eq!((tokens, on_repository), (6, 6), "{:?}", calls(&requests));
    assert!(requests.iter().all(|r| r.status != 401), "{:?}", calls(&requests));
    Ok(())
}

/// A delivery as GitHub lists it (<https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>).
fn delivery(id: u64, guid: &str, status_code: u16, minutes_ago: i64, redelivery: bool) -> Value {
    json!({
        "id": id, "guid": guid, "delivered_at": (Utc::now() - TimeDelta::minutes(minutes_ago)).to_rfc3339(),
        "redelivery": redelivery, "duration": 0.27, "status": if status_code == 0 { "failed to connect".to_owned() } else { status_code.to_string() },
        "status_code": status_code, "event": "push", "action": null, "installation_id": null, "repository_id": 9919,
        "throttled_at": null
    })
}

#[tokio::test]
async fn the_reconciler_has_github_redeliver_the_pushes_the_webhook_could_not_record_signing_in_as_an_app() -> Result<()>
{
    let (stack, github, store) = world().await?;
    let (secret, public_key) = app_42()?;
    github.install_app("42", &public_key);
    // GIVEN web's last push was delivered by webhook 77 of acme/web
    let mut pushed = pushed();
    if let Event::Triggered { source, .. } = &mut pushed {
        source.hook_id = Some(77);
    }
    apply(&store, &[pushed], Utc::now()).await?;
    sluice::contract::ports::DefinitionsStore::publish(
        &store,
        "[pipelines.web]\nsource = { repository = \"acme/web\" }\nbuild = { project = \"web-build\" }\n\
         deploy = { strategy = \"rolling\", cluster = \"prod\", service = \"web\" }\n",
        None,
        Utc::now(),
    )
    .await?;
    // AND GitHub lists a push answered 503 then redelivered and answered 503 again, one that never reached sluice,
    // one recorded, and one sluice refused
    github.hook_deliveries(
        "acme/web",
        77,
        vec![
            delivery(15, "guid-503", 503, 5, true),
            delivery(14, "guid-down", 0, 20, false),
            delivery(13, "guid-ok", 202, 30, false),
            delivery(12, "guid-forged", 401, 40, false),
            delivery(11, "guid-503", 503, 50, false),
        ],
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    let name = unique("sluice/github");
    secrets.create_secret().name(&name).secret_string(secret).send().await?;
    let config = reconciler::handler::Config::from_lookup(|variable| match variable {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_GITHUB_TOKEN" => Some(name.clone()),
        "SLUICE_GITHUB_API" => Some(github.url.clone()),
        _ => None,
    })?;
    let reconciler = reconciler::handler::AwsApp::from_aws(&stack.config, &config);
    // WHEN the reconciler looks
    let done = reconciler::handler::on_schedule(&reconciler, Utc::now()).await?;
    // THEN GitHub redelivers the latest attempt of each push that never got a 2xx or 4xx, and nothing else
    assert_eq!(done["redelivered"], 2, "{done}");
    let mut asked = github.redeliveries();
    asked.sort();
    assert_eq!(asked, [("acme/web".to_owned(), 77, 14), ("acme/web".to_owned(), 77, 15)]);
    // AND it signed in with an installation token asking for the webhooks permission alone
    let token = github.requests().into_iter().find(|r| r.path.ends_with("/access_tokens")).context("a token")?;
    assert_eq!(token.body["permissions"], json!({ "repository_hooks": "write" }));
    assert!(calls(&github.requests()).contains(&"GET /repos/acme/web/hooks/77/deliveries installation 200".to_owned()));
    Ok(())
}

#[tokio::test]
async fn the_webhook_asks_github_which_of_two_pushes_made_in_the_same_second_is_newer_signing_in_as_an_app()
-> Result<()> {
    use crate::webhook::deployed_configured;
    use sluice::github::webhook::sign;
    let github = GitHub::start(TOKEN, &["acme/web"]).await?;
    let (secret, public_key) = app_42()?;
    github.install_app("42", &public_key);
    // GIVEN acme/web's main went a -> b -> c -> d, and the webhook function signs in to GitHub as app 42
    let commit = |letter: char| letter.to_string().repeat(40);
    let (a, b, c, d) = (commit('a'), commit('b'), commit('c'), commit('d'));
    let e = commit('e');
    github.commits("acme/web", &[(&a, &[]), (&b, &[&a]), (&c, &[&b]), (&d, &[&c]), (&e, &[&d])]);
    let stack = Stack::create().await?;
    let project = unique("web-build");
    stack.create_build_project(&project).await?;
    let name = unique("sluice/github");
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    secrets.create_secret().name(&name).secret_string(secret).send().await?;
    let aws = stack.config.clone();
    let more = [("SLUICE_GITHUB_TOKEN", name), ("SLUICE_GITHUB_API", github.url.clone())];
    let deployed = deployed_configured(stack, project, &aws, &more).await?;
    // WHEN GitHub delivers the push to d, then the push to b, both made in the same second
    let now = Utc::now().timestamp();
    let deliver = |delivery: &'static str, before: &str, after: &str| {
        let mut body: Value = serde_json::from_slice(include_bytes!("../../../shared/tests/fixtures/github-push.json"))
            .expect("the fixture is JSON");
        body["before"] = json!(before);
        body["after"] = json!(after);
        body["head_commit"]["id"] = json!(after);
        body["repository"]["pushed_at"] = json!(now);
        let body = serde_json::to_vec(&body).expect("JSON");
        let signature = sign(&deployed.secret, &body);
        let url = deployed.url.url.clone();
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-github-event", "push"),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", signature.as_str()),
            ];
            sluice_integration::post(&url, &headers, body).await
        }
    };
    let (status, first) = deliver("d-d", &c, &d).await?;
    assert_eq!((status, &first["executions"][0]["execution_id"]), (202, &json!("web-d-d")), "{first}");
    let (status, late) = deliver("d-b", &a, &b).await?;
    // THEN GitHub's compare says b is behind d: the push to b is recorded as skipped, and only d builds
    assert_eq!(status, 202, "{late}");
    assert_eq!(late["executions"], json!([]), "{late}");
    let reason = late["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("GitHub's compare shows commit bbbbbbb is behind ddddddd"), "{reason}");
    let codebuild = aws_sdk_codebuild::Client::new(&deployed.stack.config);
    let builds = codebuild.list_builds_for_project().project_name(&deployed.project).send().await?;
    assert_eq!(builds.ids().len(), 1);
    // AND the function signed in with an installation token asking to read the repository's contents alone
    let requests = github.requests();
    let token = requests.iter().find(|r| r.path.ends_with("/access_tokens")).context("a token")?;
    assert_eq!(token.body["permissions"], json!({ "contents": "read" }));
    let compare = format!("GET /repos/acme/web/compare/{d}...{b} installation 200");
    assert!(calls(&requests).contains(&compare), "{:?}", calls(&requests));
    // AND a push of e, made in that second after d (its `before` a commit sluice never saw), is recorded to run next
    let (status, next) = deliver("d-e", &commit('f'), &e).await?;
    assert_eq!((status, &next["executions"][0]["execution_id"]), (202, &json!("web-d-e")), "{next}");
    let run = deployed.store.execution(&ExecutionId::from("web-d-e")).await?.context("recorded")?;
    assert_eq!(run.status, Status::Waiting(sluice::pipeline::Stage::BUILD));
    Ok(())
}
