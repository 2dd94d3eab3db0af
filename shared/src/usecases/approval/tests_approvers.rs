//! Named approvers through the approval function: a link of their own each, in a message only their subscription
//! accepts; the page says who they are and who approved so far; each decides once; the pusher may be refused.

use super::tests::{World, t0};
use super::*;
use crate::contract::ports::Subscription;
use crate::contract::testing::{RecordingRunner, push};
use crate::definitions::{Approval, Approvers, ExecutionMode, StageKind};
use crate::pipeline::{BuildOutputs, ExecutionId, Stage, Status};
use crate::usecases::flush;

const NAMED: [&str; 3] = ["alice@example.com", "bob@example.com", "octocat@github.com"];

/// Each approver's own email subscription, with their filter policy.
fn filtered() -> Vec<Subscription> {
    NAMED
        .iter()
        .map(|email| Subscription {
            arn: format!("arn:aws:sns:eu-west-1:123456789012:approvals:{email}"),
            protocol: "email".into(),
            endpoint: (*email).into(),
            filter_policy: Some(personal::filter_policy(email)),
            ..Subscription::default()
        })
        .collect()
}

impl World {
    /// The approval function's world, its topic having `subscriptions`.
    fn subscribed(subscriptions: Vec<Subscription>) -> Self {
        let world = Self::new();
        *world.notifier.subscriptions.lock().expect("lock") = subscriptions;
        world
    }

    /// Run `e1` pushed by octocat (octocat@github.com) and built; its approval names [`NAMED`], two required, the
    /// pusher forbidden; the requests sent. Each approver's token, by address.
    async fn asked(&self) -> Vec<(String, String)> {
        self.asked_of(2, false).await
    }

    /// As [`World::asked`], `required` of the approvers; `then_asked`: another approval stage (of no named
    /// approvers) follows.
    async fn asked_of(&self, required: usize, then_asked: bool) -> Vec<(String, String)> {
        let mut pushed = push("e1", ExecutionMode::Superseded, true);
        if let Event::Triggered { plan, .. } = &mut pushed
            && let Some(StageKind::Approval(approval)) = plan.stages.first_mut().map(|stage| &mut stage.kind)
        {
            let emails = NAMED.map(str::to_owned).to_vec();
            let operators = vec!["arn:aws:iam::123456789012:role/release-*".to_owned()];
            approval.approvers = Some(Approvers { emails, required, forbid_pusher: true, operators });
            let next = Approval { approvers: None, ..approval.clone() };
            let second = crate::definitions::StageDefinition {
                name: Stage::new("second-look").expect("a name"),
                kind: StageKind::Approval(next),
            };
            if then_asked {
                plan.stages.insert(1, second);
            }
        }
        let built = Event::BuildSucceeded {
            execution_id: ExecutionId::from("e1"),
            build_id: "build-e1".into(),
            outputs: BuildOutputs { image_uri: "web@sha256:bbbb".into(), artifacts: None },
        };
        let stage = RecordingRunner::owning(&[EffectKind::StartBuild]);
        for event in [pushed, built] {
            let input =
                Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &event, receipt: None, now: t0() };
            handle(&self.store, &stage, input).await.expect("handled");
        }
        let _ = flush(&self.store, &self.effects, "web", t0()).await;
        self.notifier
            .sent()
            .into_iter()
            .filter_map(|(_, email)| {
                let link = email.text.lines().skip_while(|line| !line.starts_with("Review and decide:")).nth(1)?;
                Some((email.approver?, link.trim_start_matches("https://approve.example/r/").to_owned()))
            })
            .collect()
    }

    async fn approve(&self, token: &str) -> Page {
        let form = LinkToken::parse(token).expect("a token").form_token();
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("form_token", &form)
            .append_pair("decision", "approve")
            .append_pair("approver", "someone else entirely")
            .finish();
        let runner = RecordingRunner::owning(&[]);
        decide(&self.store, &runner, token, body.as_bytes(), Requester::default(), t0()).await
    }

    async fn status(&self) -> Option<Status> {
        let state = self.store.load("web").await.ok()??.value;
        state.execution(&ExecutionId::from("e1")).map(|run| run.status)
    }
}

fn token_of<'a>(tokens: &'a [(String, String)], email: &str) -> &'a str {
    tokens.iter().find(|(approver, _)| approver == email).map(|(_, token)| token.as_str()).expect("their link")
}

#[tokio::test]
async fn each_named_approver_gets_a_message_only_their_subscription_accepts_with_a_link_of_their_own() {
    let world = World::subscribed(filtered());
    let tokens = world.asked().await;
    let approvers: Vec<&str> = tokens.iter().map(|(approver, _)| approver.as_str()).collect();
    assert_eq!(approvers, NAMED);
    let mut links: Vec<&str> = tokens.iter().map(|(_, token)| token.as_str()).collect();
    links.dedup();
    assert_eq!(links.len(), 3, "three links, each its own");
    for (_, email) in world.notifier.sent() {
        let approver = email.approver.clone().expect("personal");
        assert!(email.text.contains(&format!("It is yours alone, {approver}")), "{}", email.text);
    }
    let alice = review_page(&world.store, token_of(&tokens, "alice@example.com"), t0()).await;
    assert_eq!(alice.status, 200);
    assert!(alice.html.contains("You decide as <strong>alice@example.com</strong>"), "{}", alice.html);
    assert!(alice.html.contains("none yet<br>2 more of 2 needed"), "{}", alice.html);
    assert!(!alice.html.contains("name=\"approver\""), "no name to type: the link says who decides");
}

#[tokio::test]
async fn two_distinct_approvals_pass_the_stage_and_an_approver_deciding_twice_gets_409() {
    let world = World::subscribed(filtered());
    let tokens = world.asked().await;
    let alice = token_of(&tokens, "alice@example.com");
    let first = world.approve(alice).await;
    assert_eq!(first.status, 200);
    assert!(first.html.contains("Approved by alice@example.com"), "the link's approver, not the typed name");
    assert!(first.html.contains("1 of the 2 needed"), "{}", first.html);
    assert_eq!(world.status().await, Some(Status::Running(Stage::APPROVAL)));
    assert_eq!(world.approve(alice).await.status, 409);
    let again = review_page(&world.store, alice, t0()).await;
    assert_eq!(again.status, 409);
    assert!(again.html.contains("You already approved"), "{}", again.html);
    let bob = world.approve(token_of(&tokens, "bob@example.com")).await;
    assert_eq!(bob.status, 200);
    assert!(bob.html.contains("Approved") && bob.html.contains("by bob@example.com"), "{}", bob.html);
    assert_eq!(world.status().await, Some(Status::Running(Stage::DEPLOY)));
    let state = world.store.load("web").await.expect("load").expect("state").value;
    let approval = state.execution(&ExecutionId::from("e1")).and_then(|run| run.approval().cloned()).expect("it");
    let by: Vec<&str> = approval.signoffs.iter().map(|signoff| signoff.by.as_str()).collect();
    assert_eq!(by, ["alice@example.com", "bob@example.com"]);
}

#[tokio::test]
async fn the_pushers_own_link_says_they_cannot_approve_their_own_push_and_decides_nothing() {
    let world = World::subscribed(filtered());
    let tokens = world.asked().await;
    let pusher = token_of(&tokens, "octocat@github.com");
    let page = review_page(&world.store, pusher, t0()).await;
    assert_eq!(page.status, 403);
    assert!(page.html.contains("You pushed this commit"), "{}", page.html);
    assert_eq!(world.approve(pusher).await.status, 403);
    let state = world.store.load("web").await.expect("load").expect("state").value;
    let approval = state.execution(&ExecutionId::from("e1")).and_then(|run| run.approval().cloned()).expect("it");
    assert!(approval.signoffs.is_empty());
}

#[tokio::test]
async fn a_topic_with_a_subscription_that_would_receive_everyones_links_gets_none_and_the_request_says_which() {
    let mut subscriptions = filtered();
    subscriptions.push(Subscription {
        arn: "arn:aws:sns:eu-west-1:123456789012:approvals:ops".into(),
        protocol: "email".into(),
        endpoint: "ops@example.com".into(),
        ..Subscription::default()
    });
    let world = World::subscribed(subscriptions);
    let tokens = world.asked().await;
    assert!(tokens.is_empty() && world.notifier.sent().is_empty(), "nothing sent");
    let state = world.store.load("web").await.expect("load").expect("state").value;
    let parked = state.parked.iter().find(|parked| parked.effect.kind() == EffectKind::RequestApproval);
    let reason = parked.map(|parked| parked.error.clone()).unwrap_or_default();
    assert!(
        reason.contains(
            "email subscription ops@example.com (arn:aws:sns:eu-west-1:123456789012:approvals:ops) has no \
             filter policy"
        ),
        "{reason}"
    );
    assert!(reason.contains("sluice approvers sync"), "{reason}");
}

#[tokio::test]
async fn an_operators_sluice_approve_counts_as_theirs_and_someone_elses_is_refused() {
    use crate::usecases::{DecideError, Decided, decide_as};
    let world = World::subscribed(filtered());
    let tokens = world.asked().await;
    let runner = RecordingRunner::owning(&[]);
    let id = ExecutionId::from("e1");
    let operator = "arn:aws:sts::123456789012:assumed-role/release-managers/dana";
    let decided = decide_as(&world.store, &runner, &id, ApprovalDecision::Approved, operator, None, t0()).await;
    assert_eq!(decided.ok(), Some(Decided::Counted { approved: 1, required: 2 }));
    let developer = "arn:aws:sts::123456789012:assumed-role/developers/erin";
    let refused = decide_as(&world.store, &runner, &id, ApprovalDecision::Approved, developer, None, t0()).await;
    assert!(matches!(refused, Err(DecideError::Refused(TransitionError::NotAnApprover { .. }))), "{refused:?}");
    assert_eq!(world.approve(token_of(&tokens, "bob@example.com")).await.status, 200);
    assert_eq!(world.status().await, Some(Status::Running(Stage::DEPLOY)));
}

#[tokio::test]
async fn the_approval_that_passes_the_stage_says_so_though_the_next_stage_asks_again() {
    use crate::usecases::{Decided, decide_as};
    let second = Stage::new("second-look").expect("a name");
    let world = World::subscribed(filtered());
    let tokens = world.asked_of(1, true).await;
    let page = world.approve(token_of(&tokens, "alice@example.com")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Approved") && !page.html.contains("needed"), "{}", page.html);
    assert_eq!(world.status().await, Some(Status::Running(second)));
    // An operator's approval passing the stage: not "0 of the 0 needed" of the next
    let world = World::subscribed(filtered());
    world.asked_of(1, true).await;
    let runner = RecordingRunner::owning(&[]);
    let operator = "arn:aws:sts::123456789012:assumed-role/release-managers/dana";
    let id = ExecutionId::from("e1");
    let decided = decide_as(&world.store, &runner, &id, ApprovalDecision::Approved, operator, None, t0()).await;
    assert_eq!(decided.ok(), Some(Decided::Stage));
    assert_eq!(world.status().await, Some(Status::Running(second)));
}
