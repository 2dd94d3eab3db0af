//! The approval function against moto: the request it publishes to SNS (read back from moto's record of it), the
//! link opened with a plain GET as a mail scanner does (nothing changes), then decided through the page's form.

use std::sync::Arc;

use anyhow::{Context, Result};
use approval::handler::{AwsApp, Config, on_event, respond};
use serde_json::json;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{DefinitionsStore, PipelineStore};
use sluice::contract::testing::{RecordingRunner, push};
use sluice::definitions::ExecutionMode;
use sluice::pipeline::{ApprovalDecision, BuildOutputs, EffectKind, Event, ExecutionId, Stage, Status};
use sluice::usecases::{Input, handle};
use sluice_integration::browser::{Browser, PHONE};
use sluice_integration::{
    Stack, approval_link, aws_config_with, form_token, moto, request, sns_messages, unique, workspace_root,
};
use sluice_sandbox::function_url::{FunctionUrl, serve};

struct Waiting {
    stack: Stack,
    store: DynamoDbStore,
    url: FunctionUrl,
    link: String,
    email: String,
}

/// A run of `web` pushed and built; its approval request waits in the outbox for the approval function.
async fn built(stack: &Stack) -> Result<DynamoDbStore> {
    built_for(stack, None).await
}

/// Where a run's approval releases it, and what its build left.
struct Release<'a> {
    /// The deploy stage's cluster (service `web`).
    cluster: &'a str,
    /// Where the build's artifacts are (`s3://...`).
    artifacts: &'a str,
}

/// As [`built`], the run deploying to `release`'s cluster with the build's artifacts where it says.
async fn built_for(stack: &Stack, release: Option<Release<'_>>) -> Result<DynamoDbStore> {
    let cluster = release.as_ref().map(|release| release.cluster.to_owned());
    let artifacts = release.map(|release| release.artifacts.to_owned());
    built_planned(stack, artifacts, |plan| {
        if let (Some(cluster), sluice::definitions::DeployTarget::BlueGreen(target)) = (cluster, plan.target_mut()) {
            target.cluster = cluster;
        }
    })
    .await
}

/// A run of `web` pushed and built, its build's artifacts at `artifacts`, its approval on the stack's topic and its
/// plan as `edit` leaves it; its approval request waits in the outbox.
pub(crate) async fn built_planned(
    stack: &Stack,
    artifacts: Option<String>,
    edit: impl FnOnce(&mut sluice::pipeline::Plan),
) -> Result<DynamoDbStore> {
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let mut triggered = push("web-1", ExecutionMode::Superseded, true);
    if let Event::Triggered { plan, .. } = &mut triggered {
        plan.approval_mut().context("an approval")?.topic_arn = stack.approval_topic.clone();
        edit(plan);
    }
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("web-1"),
        build_id: "build-web-1".into(),
        outputs: BuildOutputs { image_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1".into(), artifacts },
    };
    // The stage functions' part: the build starts; the announcements wait in the outbox.
    let runner = RecordingRunner::owning(&[EffectKind::StartBuild]);
    for event in [&triggered, &built] {
        let input =
            Input { pipeline: "web", mode: ExecutionMode::Superseded, event, receipt: None, now: chrono::Utc::now() };
        handle(&store, &runner, input).await?;
    }
    Ok(store)
}

pub(crate) fn config(stack: &Stack) -> Result<Config> {
    Ok(Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        _ => None,
    })?)
}

/// The approval function serving its pages on loopback, told `web-1`'s `Approval Requested` as the bus delivers it:
/// its requests sent. Its URL (it serves until dropped).
pub(crate) async fn requested(stack: &Stack) -> Result<FunctionUrl> {
    let app = Arc::new(AwsApp::from_aws(&stack.config, &config(stack)?));
    let served = Arc::clone(&app);
    let url = serve("approval", move |request| {
        let app = Arc::clone(&served);
        async move { respond(&app, request, chrono::Utc::now()).await }
    })
    .await?;
    let _ = app.approval_url.set(url.url.clone());
    let event = json!({ "source": "sluice", "detail-type": "Approval Requested", "detail": { "pipeline": "web", "execution_id": "web-1" } });
    on_event(&app, &event, chrono::Utc::now()).await?;
    Ok(url)
}

/// The configuration the stack gives ApprovalRequestsFunction: the approval function's URL.
fn requests_config(stack: &Stack) -> Result<Config> {
    Ok(Config { approval_url: Some("https://approve.example".into()), ..config(stack)? })
}

/// A run of `web` built and awaiting approval, whose request the approval function sent through moto's SNS.
async fn waiting_for_approval() -> Result<Waiting> {
    let stack = Stack::create().await?;
    let store = built(&stack).await?;
    let url = requested(&stack).await?;

    let sent = sns_messages(&stack.approval_topic).await?;
    assert_eq!(sent.len(), 1, "one request: {sent:?}");
    let (subject, message) = &sent[0];
    assert_eq!(subject.as_deref(), Some("sluice: approval needed for web at sha-web"));
    let message: serde_json::Value = serde_json::from_str(message)?;
    let email = message["email"].as_str().context("an email form")?.to_owned();
    let link = approval_link(&email).context("a link in the email")?;
    Ok(Waiting { stack, store, url, link, email })
}

async fn status(store: &DynamoDbStore) -> Result<Status> {
    Ok(store.execution(&ExecutionId::from("web-1")).await?.context("the run")?.status)
}

fn form(token: &str, decision: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("form_token", token)
        .append_pair("approver", "Ada Lovelace")
        .append_pair("comment", "ship it")
        .append_pair("decision", decision)
        .finish()
        .into_bytes()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test]
async fn a_scanners_get_changes_nothing_and_the_pages_form_approves_once() -> Result<()> {
    let waiting = waiting_for_approval().await?;
    assert!(waiting.link.starts_with(&format!("{}r/", waiting.url.url)), "{}", waiting.link);
    assert!(waiting.email.contains("Image:       123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1"));
    let before = waiting.store.load("web").await?.context("the state")?.version;

    // A mail scanner fetches the link: the page, and nothing else.
    let (code, headers, page) = request("GET", &waiting.link, &[("user-agent", "Mimecast")], vec![]).await?;
    assert_eq!(code, 200, "{page}");
    assert_eq!(waiting.store.load("web").await?.context("the state")?.version, before, "a GET changes nothing");
    assert_eq!(status(&waiting.store).await?, Status::Running(Stage::APPROVAL));
    for (name, value) in
        [("cache-control", "no-store"), ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")]
    {
        assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
    }
    let policy = headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");

    // Only the hash of the link's token is stored.
    let token = waiting.link.rsplit('/').next().unwrap_or_default().to_owned();
    let state = waiting.store.load("web").await?.context("the state")?.value;
    let approval =
        state.execution(&ExecutionId::from("web-1")).and_then(|e| e.approval().cloned()).context("approval")?;
    let hash = approval.token_hash.context("a token hash")?;
    assert_eq!(hash.len(), 64);
    assert!(!serde_json::to_string(&state)?.contains(&token), "the token itself is never stored");

    // A form not issued for this link is refused; the page's own form decides.
    let form_token = form_token(&page).context("a form token")?;
    let (code, _, _) = request("POST", &waiting.link, &[FORM], form("forged", "approve")).await?;
    assert_eq!(code, 400);
    let (code, _, page) =
        request("POST", &waiting.link, &[FORM, ("user-agent", "Firefox")], form(&form_token, "approve")).await?;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Approved"), "{page}");
    assert_eq!(status(&waiting.store).await?, Status::Running(Stage::DEPLOY));
    let run = waiting.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    let approval = run.approval().cloned().context("approval")?;
    assert_eq!(approval.decision, Some(ApprovalDecision::Approved));
    assert_eq!(approval.approver.as_deref(), Some("Ada Lovelace"));
    assert_eq!(approval.comment.as_deref(), Some("ship it"));
    assert_eq!(approval.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(approval.user_agent.as_deref(), Some("Firefox"));

    // A second click is told what stands; so is the link.
    let (code, _, page) = request("POST", &waiting.link, &[FORM], form(&form_token, "reject")).await?;
    assert_eq!(code, 409, "{page}");
    assert!(page.contains("Already approved") && page.contains("Ada Lovelace"), "{page}");
    let (code, _, _) = request("GET", &waiting.link, &[], vec![]).await?;
    assert_eq!(code, 409);
    drop(waiting.stack);
    Ok(())
}

#[tokio::test]
async fn a_rejection_ends_the_run_and_a_forged_link_finds_nothing() -> Result<()> {
    let waiting = waiting_for_approval().await?;
    let (_, _, page) = request("GET", &waiting.link, &[], vec![]).await?;
    let token = form_token(&page).context("a form token")?;
    let (code, _, page) = request("POST", &waiting.link, &[FORM], form(&token, "reject")).await?;
    assert_eq!(code, 200, "{page}");
    assert_eq!(status(&waiting.store).await?, Status::Rejected);
    let run = waiting.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    assert_eq!(run.reason.as_deref(), Some("rejected by Ada Lovelace: ship it"));

    let forged = format!("{}r/{}", waiting.url.url, "A".repeat(43));
    for url in [forged, format!("{}r/short", waiting.url.url), waiting.url.url.clone()] {
        let (code, _, page) = request("GET", &url, &[], vec![]).await?;
        assert_eq!(code, 404, "{url}: {page}");
        assert!(page.contains("This approval link is not valid"));
    }
    let (code, headers, _) = request("DELETE", &waiting.link, &[], vec![]).await?;
    assert_eq!(code, 405);
    assert_eq!(headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET, POST"));
    Ok(())
}

#[tokio::test]
async fn a_person_approves_from_headless_chromium_on_a_phone_and_a_second_click_gets_409() -> Result<()> {
    let waiting = waiting_for_approval().await?;
    let browser = Browser::start(PHONE).await?;

    // Two tabs on the same link, as when two people open the email.
    let first = browser.window().await?;
    browser.open(&waiting.link).await?;
    assert_eq!(browser.status().await?, 200);
    let shown = browser.text().await?;
    assert!(shown.contains("web") && shown.contains("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1"), "{shown}");
    let width = browser.script("return window.innerWidth").await?;
    assert_eq!(width.as_u64(), Some(u64::from(PHONE.0)), "a phone-sized window");
    let overflow = browser.script("return document.documentElement.scrollWidth - window.innerWidth").await?;
    assert!(overflow.as_i64().is_some_and(|px| px <= 0), "the page scrolls sideways on a phone by {overflow} px");
    let second = browser.new_tab().await?;
    browser.open(&waiting.link).await?;

    // The person types a comment and a name and clicks Approve.
    browser.switch_to(&first).await?;
    browser.type_into("#comment", "looks good on staging").await?;
    browser.type_into("#approver", "Grace Hopper").await?;
    browser.click_through("button.approve").await?;
    assert_eq!(browser.status().await?, 200);
    let shown = browser.text().await?;
    assert!(shown.contains("Approved"), "{shown}");
    assert_eq!(status(&waiting.store).await?, Status::Running(Stage::DEPLOY), "the run moves on to deploy");
    let run = waiting.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    let approval = run.approval().cloned().context("approval")?;
    assert_eq!(approval.approver.as_deref(), Some("Grace Hopper"));
    assert_eq!(approval.comment.as_deref(), Some("looks good on staging"));
    assert!(approval.user_agent.as_deref().is_some_and(|ua| ua.contains("Chrome")), "{:?}", approval.user_agent);

    // The other tab's click comes second: 409, saying who decided; nothing changes.
    browser.switch_to(&second).await?;
    browser.type_into("#approver", "Linus").await?;
    browser.click_through("button.reject").await?;
    let shown = browser.text().await?;
    assert_eq!(browser.status().await?, 409, "{shown}");
    assert!(shown.contains("Already approved") && shown.contains("Grace Hopper"), "{shown}");
    let run = waiting.store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    assert_eq!(run.approval().cloned().and_then(|a| a.approver).as_deref(), Some("Grace Hopper"));
    browser.quit().await
}

#[tokio::test]
async fn a_function_not_told_the_approval_url_sends_nothing_and_fails_the_event_with_the_reason() -> Result<()> {
    let stack = Stack::create().await?;
    let store = built(&stack).await?;
    let before = store.load("web").await?.context("the state")?;
    let app = AwsApp::from_aws(&stack.config, &config(&stack)?);
    let requested = json!({ "detail-type": "Approval Requested", "detail": { "pipeline": "web", "execution_id": "web-1" }, "approval_url": "https://approve.example/" });
    let error = on_event(&app, &requested, chrono::Utc::now()).await.expect_err("no URL to link to");
    assert!(error.to_string().contains("SLUICE_APPROVAL_URL is not set"), "{error}");
    assert!(sns_messages(&stack.approval_topic).await?.is_empty());
    let after = store.load("web").await?.context("the state")?;
    assert_eq!(after.version, before.version, "the request still waits in the outbox");
    assert!(after.value.pending.iter().any(|p| p.effect.kind() == EffectKind::RequestApproval));
    Ok(())
}

#[tokio::test]
async fn a_request_sns_could_not_take_goes_out_when_the_reconcilers_doorbell_rings() -> Result<()> {
    let stack = Stack::create().await?;
    let store = built(&stack).await?;
    let example = std::fs::read_to_string(workspace_root().join("infra/pipelines.example.toml"))?;
    store.publish(&example, None, chrono::Utc::now()).await?;
    let now = chrono::Utc::now();

    // SNS cannot be reached: the request stays in the outbox, to be tried again after a backoff.
    let cut_off = aws_config_with(&moto().endpoint, &[("sns", "http://127.0.0.1:9")]).await;
    let app = AwsApp::from_aws(&cut_off, &requests_config(&stack)?);
    let requested =
        json!({ "detail-type": "Approval Requested", "detail": { "pipeline": "web", "execution_id": "web-1" } });
    on_event(&app, &requested, now).await?;
    assert!(sns_messages(&stack.approval_topic).await?.is_empty());
    let state = store.load("web").await?.context("the state")?.value;
    let pending = state.pending.iter().find(|p| p.effect.kind() == EffectKind::RequestApproval).context("pending")?;
    assert_eq!(pending.attempts, 1, "{:?}", pending.last_error);
    let retry_at = pending.not_before.context("a backoff")?;

    // The reconciler's next look rings the approval function's doorbell through the template's rule.
    let reconciler = reconciler::handler::AwsApp::from_aws(&stack.config, &config(&stack)?.common.into());
    let summary = reconciler::handler::on_schedule(&reconciler, retry_at).await?;
    assert_eq!(summary["doorbells"], 1, "{summary}");
    let rung = stack
        .receive(stack.queue_to("ApprovalRequestsFunction", "Effects Due")?, 1, std::time::Duration::from_secs(10))
        .await?;
    assert_eq!(rung.len(), 1);
    assert_eq!(rung[0]["detail-type"], "Effects Due");
    assert_eq!(rung[0]["detail"]["kinds"], json!(["request_approval"]));

    // SNS is back: the doorbell, as the rule delivers it, sends the request once. A site the event names (as a
    // previous version's rule added, or anyone who may invoke the function could) is not where the links point.
    let app = AwsApp::from_aws(&stack.config, &requests_config(&stack)?);
    let mut delivered = rung[0].clone();
    delivered["approval_url"] = json!("https://phish.example/");
    on_event(&app, &delivered, retry_at).await?;
    on_event(&app, &delivered, retry_at).await?;
    let sent = sns_messages(&stack.approval_topic).await?;
    assert_eq!(sent.len(), 1, "sent once: {sent:?}");
    let message: serde_json::Value = serde_json::from_str(&sent[0].1)?;
    let link = approval_link(message["email"].as_str().context("an email form")?).context("a link")?;
    assert!(link.starts_with("https://approve.example/r/"), "{link}");
    assert!(!sent[0].1.contains("phish.example"), "{}", sent[0].1);
    let state = store.load("web").await?.context("the state")?.value;
    assert!(state.pending.iter().all(|p| p.effect.kind() != EffectKind::RequestApproval));
    assert!(
        state
            .execution(&ExecutionId::from("web-1"))
            .and_then(|e| e.approval().cloned())
            .and_then(|a| a.token_hash)
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn a_pause_link_opened_after_the_pause_expired_says_what_ecs_did_and_decides_nothing() -> Result<()> {
    use sluice::definitions::{DeployTarget, EcsNative, PauseAction, PauseApproval, TrafficShift};
    use std::sync::atomic::{AtomicI64, Ordering};
    let stack = Stack::create().await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    // GIVEN web-1's ECS canary paused after its canary step, for 30 minutes, then ROLLBACK
    let mut triggered = push("web-1", ExecutionMode::Superseded, false);
    if let Event::Triggered { plan, .. } = &mut triggered {
        *plan.target_mut() = DeployTarget::EcsNative(EcsNative {
            approval: Some(PauseApproval {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                topic_arn: stack.approval_topic.clone(),
                timeout_minutes: 30,
                on_timeout: PauseAction::Rollback,
            }),
            ..sluice::contract::testing::ecs_native(TrafficShift::Canary { tenths: 100, bake_time_minutes: 5 })
        });
    }
    let (now, arn) = (chrono::Utc::now(), "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/sd1");
    let paused = |hook_id: &str| Event::DeploymentPaused {
        execution_id: ExecutionId::from("web-1"),
        service_deployment: arn.into(),
        hook_id: hook_id.into(),
        stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
        expires_at: Some(now + chrono::TimeDelta::minutes(30)),
        timeout_action: Some(PauseAction::Rollback),
    };
    let events = [
        triggered,
        Event::BuildSucceeded {
            execution_id: ExecutionId::from("web-1"),
            build_id: "build-web-1".into(),
            outputs: BuildOutputs { image_uri: "web:1".into(), artifacts: None },
        },
        Event::DeploymentStarted {
            execution_id: ExecutionId::from("web-1"),
            deployment_id: "ecs-svc/1".into(),
            service_deployment: Some(arn.into()),
            task_definition: None,
            previous_task_definition: None,
            in_alarm: None,
        },
        paused("pause-1"),
        paused("pause-2"),
    ];
    let runner = RecordingRunner::owning(&[EffectKind::StartBuild]);
    for event in &events {
        handle(&store, &runner, Input { pipeline: "web", mode: ExecutionMode::Superseded, event, receipt: None, now })
            .await?;
    }
    // The approval function mails the pause's link; its page is served on a clock the test moves.
    let app = Arc::new(AwsApp::from_aws(&stack.config, &config(&stack)?));
    let later = Arc::new(AtomicI64::new(0));
    let (served, clock) = (Arc::clone(&app), Arc::clone(&later));
    let url = serve("approval", move |request| {
        let (app, minutes) = (Arc::clone(&served), clock.load(Ordering::SeqCst));
        async move { respond(&app, request, chrono::Utc::now() + chrono::TimeDelta::minutes(minutes)).await }
    })
    .await?;
    let _ = app.approval_url.set(url.url.clone());
    let event = json!({ "source": "sluice", "detail-type": "Approval Requested", "detail": { "pipeline": "web", "execution_id": "web-1" } });
    on_event(&app, &event, now).await?;
    let sent = sns_messages(&stack.approval_topic).await?;
    let message: serde_json::Value = serde_json::from_str(&sent.first().context("the pause's request")?.1)?;
    let link = approval_link(message["email"].as_str().context("an email form")?).context("a link")?;
    let (code, _, page) = request("GET", &link, &[], vec![]).await?;
    assert_eq!(code, 200, "{page}");
    let token = form_token(&page).context("a form token")?;
    let before = store.load("web").await?.context("the state")?.version;

    // WHEN the link is opened, and its form sent, after the pause expired
    later.store(31, Ordering::SeqCst);
    let (code, _, page) = request("GET", &link, &[], vec![]).await?;
    let (posted, _, _) = request("POST", &link, &[FORM], form(&token, "approve")).await?;

    // THEN the page says ECS took the timeout action, and nothing was decided
    assert_eq!((code, posted), (410, 410), "{page}");
    assert!(page.contains("ECS took the pause's timeout action and rolled the deployment back"), "{page}");
    assert_eq!(store.load("web").await?.context("the state")?.version, before, "nothing changed");
    Ok(())
}

#[tokio::test]
async fn the_request_shows_what_the_service_runs_as_moto_describes_it_against_the_builds_task_definition() -> Result<()>
{
    let stack = Stack::create().await?;
    // The service runs revision 1 of its family (as moto's ECS registered it), with a variable the release drops.
    let (cluster, family) = (unique("prod"), unique("web"));
    let ecs = aws_sdk_ecs::Client::new(&stack.config);
    ecs.create_cluster().cluster_name(&cluster).send().await?;
    let running = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:aaaa";
    let environment = aws_sdk_ecs::types::KeyValuePair::builder().name("LEGACY_MODE").value("on").build();
    let port = aws_sdk_ecs::types::PortMapping::builder().container_port(8080).build();
    let container = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("web")
        .image(running)
        .environment(environment)
        .port_mappings(port)
        .build();
    let registered = ecs
        .register_task_definition()
        .family(&family)
        .cpu("256")
        .memory("512")
        .container_definitions(container)
        .send()
        .await?;
    let arn = registered.task_definition().and_then(|t| t.task_definition_arn()).context("an ARN")?.to_owned();
    ecs.create_service().cluster(&cluster).service_name("web").task_definition(&arn).desired_count(1).send().await?;
    // The build's task definition: more memory, a new variable, the old one gone.
    let taskdef = json!({ "family": family, "cpu": "256", "memory": "1024", "containerDefinitions": [{
        "name": "web", "image": "<IMAGE1_NAME>", "portMappings": [{ "containerPort": 8080, "protocol": "tcp" }],
        "environment": [{ "name": "FEATURE_X", "value": "on" }] }] });
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.config).force_path_style(true).build());
    let bucket = unique("artifacts");
    s3.create_bucket().bucket(&bucket).send().await?;
    let body = taskdef.to_string().into_bytes().into();
    s3.put_object().bucket(&bucket).key("web-build/b-1/taskdef.json").body(body).send().await?;
    let artifacts = format!("s3://{bucket}/web-build/b-1");
    let store = built_for(&stack, Some(Release { cluster: &cluster, artifacts: &artifacts })).await?;

    let mut app = AwsApp::from_aws(&stack.config, &requests_config(&stack)?);
    // Every test shares this machine and its moto: ECS and S3 may answer slower than on AWS.
    app.compare_budget = std::time::Duration::from_secs(60);
    let event = json!({ "source": "sluice", "detail-type": "Approval Requested", "detail": { "pipeline": "web", "execution_id": "web-1" } });
    on_event(&app, &event, chrono::Utc::now()).await?;

    let sent = sns_messages(&stack.approval_topic).await?;
    let message: serde_json::Value = serde_json::from_str(&sent.first().context("a request")?.1)?;
    let email = message["email"].as_str().context("an email form")?;
    assert!(email.contains(&format!("Runs now:    {running} ({family}:1)")), "{email}");
    assert!(email.contains("Will run:    123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1\n"), "{email}");
    assert!(
        email.contains(
            "Changes:     task memory 512 -> 1024\n               web: environment +FEATURE_X -LEGACY_MODE\n"
        ),
        "{email}"
    );
    let default: serde_json::Value = serde_json::from_str(message["default"].as_str().context("a default form")?)?;
    assert_eq!(default["approval"]["releasedOver"]["runningTaskDefinition"], json!(format!("{family}:1")));
    // The run keeps what the request showed, for the review page.
    let state = store.load("web").await?.context("the state")?.value;
    let approval =
        state.execution(&ExecutionId::from("web-1")).and_then(|e| e.approval().cloned()).context("approval")?;
    let compared = approval.compared.context("the comparison is kept")?;
    assert_eq!(compared.changes, ["task memory 512 -> 1024", "web: environment +FEATURE_X -LEGACY_MODE"]);
    Ok(())
}
