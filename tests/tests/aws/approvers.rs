//! Named approvers against moto's SNS: each approver's subscription carries their filter policy, so each receives
//! only the message with their own link; a topic with a subscription that would receive everyone's links gets none.

use anyhow::{Context, Result};
use approval::handler::{AwsApp, Config, on_event};
use serde_json::json;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::PipelineStore;
use sluice::definitions::Approvers;
use sluice::pipeline::{EffectKind, ExecutionId, Stage, Status};
use sluice::usecases::filter_policy;
use sluice_integration::{Stack, approval_link, create_queue, form_token, request, sns_published, unique};

/// alice, bob and the pusher (octocat@github.com, as the test push says); two must approve, the pusher may not.
const NAMED: [&str; 3] = ["alice@example.com", "bob@example.com", "octocat@github.com"];

/// Run `web-1` pushed and built, its approval naming [`NAMED`] on `topic`; the request waits in the outbox.
async fn built(stack: &Stack, topic: &str) -> Result<DynamoDbStore> {
    crate::approval::built_planned(stack, None, |plan| {
        if let Some(approval) = plan.approval_mut() {
            approval.topic_arn = topic.to_owned();
            let emails = NAMED.map(str::to_owned).to_vec();
            approval.approvers = Some(Approvers { emails, required: 2, forbid_pusher: true, operators: Vec::new() });
        }
    })
    .await
}

fn approve(form_token: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("form_token", form_token)
        .append_pair("decision", "approve")
        .finish()
        .into_bytes()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test]
async fn each_approver_receives_only_their_own_link_through_their_filter_policy_and_two_approvals_pass() -> Result<()> {
    let stack = Stack::create().await?;
    let topic = stack.sns.create_topic().name(unique("web-sign-off")).send().await?;
    let topic = topic.topic_arn().context("a topic")?.to_owned();
    // Each approver's inbox: a queue subscribed with their filter policy.
    let mut inboxes = Vec::new();
    for email in NAMED {
        let (url, arn) = create_queue(&stack.sqs, &unique("inbox")).await?;
        let subscribe = stack.sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(arn);
        subscribe.attributes("FilterPolicy", filter_policy(email)).send().await?;
        inboxes.push((email, url));
    }
    let store = built(&stack, &topic).await?;
    let url = crate::approval::requested(&stack).await?;

    // SNS delivered each message to its approver's subscription alone.
    for (email, inbox) in &inboxes {
        let received = stack.receive(inbox, 2, std::time::Duration::from_secs(3)).await?;
        assert_eq!(received.len(), 1, "{email}: {received:?}");
        assert_eq!(received[0]["MessageAttributes"]["sluice_approver"]["Value"], *email, "{received:?}");
    }
    let mut links = std::collections::BTreeMap::new();
    for (_, message, approver) in sns_published(&topic).await? {
        let message: serde_json::Value = serde_json::from_str(&message)?;
        let email = message["email"].as_str().context("an email form")?;
        let approver = approver.context("each message is for one approver")?;
        assert!(email.contains(&format!("It is yours alone, {approver}")), "{email}");
        links.insert(approver, approval_link(email).context("a link")?);
    }
    assert_eq!(links.len(), 3);

    // The pusher's own link refuses; alice approves, once; bob's approval passes the stage.
    let (code, _, page) = request("GET", &links["octocat@github.com"], &[], vec![]).await?;
    assert_eq!(code, 403, "{page}");
    let alice = &links["alice@example.com"];
    let (code, _, page) = request("GET", alice, &[], vec![]).await?;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("You decide as <strong>alice@example.com</strong>"), "{page}");
    let token = form_token(&page).context("a form token")?;
    let (code, _, page) = request("POST", alice, &[FORM], approve(&token)).await?;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("1 of the 2 needed"), "{page}");
    let (code, _, _) = request("POST", alice, &[FORM], approve(&token)).await?;
    assert_eq!(code, 409, "an approver deciding twice");
    let bob = &links["bob@example.com"];
    let (_, _, page) = request("GET", bob, &[], vec![]).await?;
    assert!(page.contains("alice@example.com at "), "who approved so far: {page}");
    let token = form_token(&page).context("a form token")?;
    let (code, _, page) = request("POST", bob, &[FORM], approve(&token)).await?;
    assert_eq!(code, 200, "{page}");
    let run = store.execution(&ExecutionId::from("web-1")).await?.context("the run")?;
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    let by: Vec<String> = run.approval().map(|a| a.signoffs.iter().map(|s| s.by.clone()).collect()).unwrap_or_default();
    assert_eq!(by, ["alice@example.com", "bob@example.com"]);
    drop(url);
    Ok(())
}

#[tokio::test]
async fn no_personal_link_goes_to_a_topic_a_subscription_without_a_filter_policy_would_receive_all_of() -> Result<()> {
    // The stack's approval topic has a queue subscribed without a filter policy.
    let stack = Stack::create().await?;
    let store = built(&stack, &stack.approval_topic).await?;
    let app = AwsApp::from_aws(
        &stack.config,
        &Config { approval_url: Some("https://approve.example".into()), ..crate::approval::config(&stack)? },
    );
    let requested =
        json!({ "detail-type": "Approval Requested", "detail": { "pipeline": "web", "execution_id": "web-1" } });
    on_event(&app, &requested, chrono::Utc::now()).await?;
    assert!(sns_published(&stack.approval_topic).await?.is_empty(), "nothing sent");
    let state = store.load("web").await?.context("the state")?.value;
    let parked = state.parked.iter().find(|p| p.effect.kind() == EffectKind::RequestApproval).context("parked")?;
    assert!(parked.error.contains("sqs subscription arn:aws:sqs:"), "{}", parked.error);
    assert!(parked.error.contains("has no filter policy"), "{}", parked.error);
    Ok(())
}
