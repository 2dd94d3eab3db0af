use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::contract::ports::FixedSite;
use crate::contract::testing::{
    InMemoryArtifacts, InMemoryStore, RecordingNotifier, RecordingPublisher, RecordingRunner, ScriptedServices, push,
};
use crate::definitions::ExecutionMode;
use crate::pipeline::{BuildOutputs, ExecutionId, Stage, Status};
use crate::usecases::flush;

pub(super) fn t0() -> DateTime<Utc> {
    "2026-11-24T12:00:00Z".parse().expect("time")
}

pub(super) struct World {
    pub(super) store: InMemoryStore,
    pub(super) notifier: Arc<RecordingNotifier>,
    pub(super) effects: ApprovalEffects<
        Arc<RecordingPublisher>,
        Arc<RecordingNotifier>,
        FixedSite,
        InMemoryArtifacts,
        ScriptedServices,
    >,
}

impl World {
    pub(super) fn new() -> Self {
        let notifier = Arc::new(RecordingNotifier::new());
        let effects = ApprovalEffects {
            publisher: Arc::new(RecordingPublisher::new()),
            notifier: Arc::clone(&notifier),
            site: FixedSite("https://approve.example".into()),
            artifacts: InMemoryArtifacts::new(),
            services: ScriptedServices::new(),
            compare_budget: COMPARISON_BUDGET,
            region: "eu-west-1".into(),
            clock: t0,
        };
        Self { store: InMemoryStore::new(), notifier, effects }
    }

    /// Run `id` pushed and built (the plan's approval is open for an hour), its request sent; returns its token.
    async fn built(&self, id: &str, at: DateTime<Utc>) -> Option<String> {
        self.built_with(id, at, None).await
    }

    /// As [`World::built`], the build's artifacts at `artifacts`.
    async fn built_with(&self, id: &str, at: DateTime<Utc>, artifacts: Option<&str>) -> Option<String> {
        let stage = RecordingRunner::owning(&[EffectKind::StartBuild]);
        let built = Event::BuildSucceeded {
            execution_id: ExecutionId::from(id),
            build_id: format!("build-{id}"),
            outputs: BuildOutputs { image_uri: IMAGE.into(), artifacts: artifacts.map(str::to_owned) },
        };
        for event in [push(id, ExecutionMode::Superseded, true), built] {
            let input =
                Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &event, receipt: None, now: at };
            handle(&self.store, &stage, input).await.ok()?;
        }
        flush(&self.store, &self.effects, "web", at).await.ok()?;
        let (_, email) = self.notifier.sent().last()?.clone();
        let link = email.text.lines().skip_while(|line| !line.starts_with("Review and decide:")).nth(1)?.to_owned();
        Some(link.trim_start_matches("https://approve.example/r/").to_owned())
    }
}

const IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:bbbb";

/// What the build of the comparison tests left: a task definition asking for more memory and a new variable.
const TASK_DEFINITION: &str = r#"{"family": "web", "cpu": "256", "memory": "1024",
    "containerDefinitions": [{"name": "web", "image": "<IMAGE1_NAME>",
        "environment": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "FEATURE_X", "value": "on"}],
        "portMappings": [{"containerPort": 8080}]}]}"#;

/// What service web in cluster prod runs in the comparison tests.
fn running_web() -> crate::deploy::compare::TaskShape {
    use crate::deploy::compare::{ContainerShape, TaskShape};
    let web = ContainerShape {
        name: "web".into(),
        image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:aaaa".into(),
        environment: ["LOG_LEVEL".to_owned()].into(),
        ports: ["8080/tcp".to_owned()].into(),
        ..ContainerShape::default()
    };
    TaskShape { cpu: Some("256".into()), memory: Some("512".into()), containers: vec![web] }
}

fn body(form_token: &str, decision: &str, approver: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("form_token", form_token)
        .append_pair("decision", decision)
        .append_pair("approver", approver)
        .finish()
        .into_bytes()
}

#[tokio::test]
async fn the_request_goes_to_the_pipelines_topic_with_a_link_whose_hash_alone_is_kept() {
    let world = World::new();
    let token = world.built("e1", t0()).await.expect("a request was sent");
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "arn:aws:sns:eu-west-1:123456789012:approvals");
    let state = world.store.load("web").await.expect("load").expect("state").value;
    let approval = state.execution(&ExecutionId::from("e1")).and_then(|e| e.approval().cloned()).expect("approval");
    let parsed = LinkToken::parse(&token).expect("a token in the link");
    assert_eq!(approval.token_hash, Some(parsed.hash()));
    assert_eq!(review_page(&world.store, &token, t0()).await.status, 200);
}

#[tokio::test]
async fn past_its_deadline_the_link_says_it_expired_and_decides_nothing() {
    let world = World::new();
    let token = world.built("e1", t0()).await.expect("a request was sent");
    let late = t0() + TimeDelta::hours(2);
    let page = review_page(&world.store, &token, late).await;
    assert_eq!(page.status, 410);
    assert!(page.html.contains("2026-11-24 13:00 UTC"), "{}", page.html);
    let form_token = LinkToken::parse(&token).expect("token").form_token();
    let runner = RecordingRunner::new();
    let page =
        decide(&world.store, &runner, &token, &body(&form_token, "approve", "ada"), Requester::default(), late).await;
    assert_eq!(page.status, 410);
    let run = world.store.execution(&ExecutionId::from("e1")).await.expect("read").expect("run");
    assert_eq!(run.status, Status::Running(Stage::APPROVAL), "nothing changed");
}

#[tokio::test]
async fn a_run_superseded_while_waiting_has_its_link_say_by_which_run() {
    let world = World::new();
    let old = world.built("e1", t0()).await.expect("a request was sent");
    world.built("e2", t0() + TimeDelta::minutes(1)).await.expect("a second request");
    let page = review_page(&world.store, &old, t0() + TimeDelta::minutes(2)).await;
    assert_eq!(page.status, 410);
    assert!(page.html.contains("superseded by execution e2"), "{}", page.html);
}

#[tokio::test]
async fn a_malformed_form_is_refused_with_what_to_fix_and_changes_nothing() {
    let world = World::new();
    let token = world.built("e1", t0()).await.expect("a request was sent");
    let form_token = LinkToken::parse(&token).expect("token").form_token();
    let runner = RecordingRunner::new();
    let cases: [(Vec<u8>, &str); 4] = [
        (body(&form_token, "approve", ""), "enter your name"),
        (body(&form_token, "maybe", "ada"), "choose Approve or Reject"),
        (vec![b'a'; MAX_FORM + 1], "larger than"),
        (body(&form_token, "approve", &"a".repeat(MAX_APPROVER + 1)), "at most"),
    ];
    for (form, says) in cases {
        let page = decide(&world.store, &runner, &token, &form, Requester::default(), t0()).await;
        assert_eq!(page.status, 400, "{says}");
        assert!(page.html.contains(says), "{says}: {}", page.html);
    }
    let run = world.store.execution(&ExecutionId::from("e1")).await.expect("read").expect("run");
    assert_eq!(run.status, Status::Running(Stage::APPROVAL));
}

#[tokio::test]
async fn a_topic_that_refuses_the_request_parks_it_for_an_operator() {
    let world = World::new();
    world.notifier.refuse_next(1);
    assert_eq!(world.built("e1", t0()).await, None, "no email went out");
    let state = world.store.load("web").await.expect("load").expect("state").value;
    assert_eq!(state.parked.len(), 1);
    assert!(state.parked[0].error.contains("NotFound"), "{}", state.parked[0].error);
}

#[tokio::test]
async fn the_link_of_a_run_that_ended_a_while_ago_still_says_who_decided() {
    let world = World::new();
    let token = world.built("e1", t0()).await.expect("a request was sent");
    let form_token = LinkToken::parse(&token).expect("token").form_token();
    let runner = RecordingRunner::new();
    let rejected = body(&form_token, "reject", "ada@example.com");
    decide(&world.store, &runner, &token, &rejected, Requester::default(), t0()).await;
    // GIVEN the pipeline saved again since: its item keeps the ended run abridged, its whole record in its own item
    world.built("e2", t0() + TimeDelta::minutes(1)).await.expect("a second request");
    let state = world.store.load("web").await.expect("load").expect("state").value;
    let abridged = state.execution(&ExecutionId::from("e1")).expect("e1");
    assert!(abridged.abridged && abridged.stages.is_empty(), "{abridged:?}");
    // WHEN the link is opened THEN it says who decided, from the run's own item
    let page = review_page(&world.store, &token, t0() + TimeDelta::minutes(2)).await;
    assert_eq!(page.status, 409);
    assert!(page.html.contains("Already rejected") && page.html.contains("ada@example.com"), "{}", page.html);
}

#[tokio::test]
async fn the_link_of_a_pause_in_a_stage_the_run_went_past_still_says_who_decided() {
    let world = World::new();
    let token = LinkToken::generate().expect("a token");
    // GIVEN a run past staging, whose pause a person approved by the link
    let runner = RecordingRunner::new();
    let events = crate::contract::testing::through_a_paused_staging("e1", &[token.hash()]);
    for (minute, event) in events.iter().enumerate() {
        let at = t0() + TimeDelta::minutes(minute as i64);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event, receipt: None, now: at };
        assert!(handle(&world.store, &runner, input).await.is_ok(), "{}", event.name());
    }
    let state = world.store.load("web").await.expect("load").expect("state").value;
    let e1 = state.execution(&ExecutionId::from("e1")).expect("e1");
    assert_eq!(e1.status, Status::Running(Stage::new("sign-off").expect("a stage")));
    assert!(e1.gates().all(|gate| gate.pause().is_none()), "the pipeline's item keeps no pause of staging");
    // WHEN the link is opened THEN it says who decided, from the pauses kept apart
    let page = review_page(&world.store, &token.encode(), t0() + TimeDelta::hours(1)).await;
    assert_eq!(page.status, 409, "{}", page.html);
    assert!(page.html.contains("Already approved") && page.html.contains("ada@example.com"), "{}", page.html);
    let whole = world.store.whole(&ExecutionId::from("e1")).await.expect("read").expect("e1");
    assert_eq!(whole.pauses().count(), 2);
}

#[tokio::test]
async fn the_request_shows_what_runs_where_approving_releases_the_build_and_how_the_release_differs() {
    let world = World::new();
    world.effects.artifacts.put("artifacts", "web/e1/taskdef.json", TASK_DEFINITION);
    let running = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:41";
    world.effects.services.runs("prod", "web", running, running_web());

    let token = world.built_with("e1", t0(), Some("s3://artifacts/web/e1")).await.expect("a request was sent");

    let (_, email) = world.notifier.sent().last().cloned().expect("an email");
    assert!(
        email.text.contains("Runs now:    123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:aaaa (web:41)"),
        "{}",
        email.text
    );
    assert!(email.text.contains(&format!("Will run:    {IMAGE}\n")), "{}", email.text);
    assert!(
        email.text.contains("Changes:     task memory 512 -> 1024\n               web: environment +FEATURE_X\n"),
        "{}",
        email.text
    );
    let state = world.store.load("web").await.expect("load").expect("state").value;
    let approval = state.execution(&ExecutionId::from("e1")).and_then(|e| e.approval().cloned()).expect("approval");
    let compared = approval.compared.expect("the comparison is kept with the approval");
    assert_eq!(compared.running.as_deref(), Some("web:41"));
    let page = review_page(&world.store, &token, t0()).await;
    assert!(
        page.html.contains("<dt>Changes</dt><dd>task memory 512 -&gt; 1024<br>web: environment +FEATURE_X</dd>"),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn a_service_ecs_cannot_describe_does_not_hold_the_request_up_and_the_email_says_so() {
    let world = World::new();
    world.effects.artifacts.put("artifacts", "web/e1/taskdef.json", TASK_DEFINITION);
    world.effects.services.unreachable();

    world.built_with("e1", t0(), Some("s3://artifacts/web/e1")).await.expect("the request went out all the same");

    let (_, email) = world.notifier.sent().last().cloned().expect("an email");
    assert!(
        email.text.contains("Runs now:    unknown (service web in cluster prod: ECS did not answer)"),
        "{}",
        email.text
    );
    assert!(!email.text.contains("Changes:"), "{}", email.text);
}

#[tokio::test]
async fn a_release_to_a_service_ecs_does_not_have_says_so() {
    let world = World::new();
    world.effects.artifacts.put("artifacts", "web/e1/taskdef.json", TASK_DEFINITION);

    world.built_with("e1", t0(), Some("s3://artifacts/web/e1")).await.expect("a request was sent");

    let (_, email) = world.notifier.sent().last().cloned().expect("an email");
    assert!(email.text.contains("unknown (ECS has no active service web in cluster prod)"), "{}", email.text);
}

#[tokio::test]
async fn a_build_without_artifacts_asks_for_approval_without_a_comparison() {
    let world = World::new();
    world.built("e1", t0()).await.expect("a request was sent");
    let (_, email) = world.notifier.sent().last().cloned().expect("an email");
    assert!(!email.text.contains("Runs now:"), "{}", email.text);
}

#[tokio::test(start_paused = true)]
async fn a_service_ecs_never_answers_for_holds_the_request_up_only_for_a_few_seconds() {
    let world = World::new();
    world.effects.artifacts.put("artifacts", "web/e1/taskdef.json", TASK_DEFINITION);
    world.effects.services.hangs();
    let started = tokio::time::Instant::now();

    world.built_with("e1", t0(), Some("s3://artifacts/web/e1")).await.expect("the request went out all the same");

    assert!(started.elapsed() <= COMPARISON_BUDGET + std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    let (_, email) = world.notifier.sent().last().cloned().expect("an email");
    assert!(email.text.contains("Runs now:    unknown (ECS and S3 did not answer in time)"), "{}", email.text);
}

impl World {
    /// Run e1 of a pipeline whose e2e stage asks on failure, through staging, its e2e tests failed: the request that
    /// asks whether it goes on sent; returns its token and the email's text.
    async fn failed_its_tests(&self) -> Option<(String, String)> {
        let stage = RecordingRunner::owning(&[EffectKind::Publish]);
        let mut events = crate::contract::testing::to_e2e("e1");
        if let Some(Event::Triggered { plan, .. }) = events.first_mut()
            && let Some(crate::definitions::StageKind::Test(e2e)) = plan.stages.get_mut(1).map(|stage| &mut stage.kind)
        {
            let topic_arn = "arn:aws:sns:eu-west-1:123456789012:web-approvals".to_owned();
            e2e.on_failure = crate::definitions::OnFailure::Ask(crate::definitions::Approval {
                topic_arn,
                timeout_secs: 3600,
                approvers: None,
            });
        }
        let results = crate::pipeline::TestResults {
            passed: 40,
            failed: 1,
            failures: vec![crate::pipeline::FailedTest::new(
                "CheckoutTest.pays_with_card",
                Some("expected 200, got 502"),
            )],
            ..Default::default()
        };
        events.push(Event::TestEnded {
            execution_id: ExecutionId::from("e1"),
            stage: Stage::new("e2e")?,
            build_id: Some("e2e-1".into()),
            passed: true,
            reason: None,
            results: Some(results),
            detail: None,
        });
        for event in &events {
            let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event, receipt: None, now: t0() };
            handle(&self.store, &stage, input).await.ok()?;
        }
        flush(&self.store, &self.effects, "web", t0()).await.ok()?;
        let (_, email) = self.notifier.sent().last()?.clone();
        let link = email.text.lines().skip_while(|line| !line.starts_with("Review and decide:")).nth(1)?.to_owned();
        Some((link.trim_start_matches("https://approve.example/r/").to_owned(), email.text))
    }
}

#[tokio::test]
async fn a_failed_test_stage_that_asks_is_approved_or_rejected_from_the_page_that_shows_what_failed() {
    for (decision, then) in
        [("approve", Status::Running(Stage::new("production").expect("a stage"))), ("reject", Status::Failed)]
    {
        // GIVEN e1's e2e tests failed, and its stage asks the approvers
        let world = World::new();
        let (token, email) = world.failed_its_tests().await.expect("a request was sent");
        assert!(
            email.starts_with("A run of pipeline web failed its e2e stage: tests failed: 40 passed, 1 failed"),
            "{email}"
        );
        let page = review_page(&world.store, &token, t0()).await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("CheckoutTest.pays_with_card"), "the page shows what failed: {}", page.html);
        // WHEN a person decides on the page
        let form_token = LinkToken::parse(&token).expect("token").form_token();
        let runner = RecordingRunner::new();
        let page =
            decide(&world.store, &runner, &token, &body(&form_token, decision, "ada"), Requester::default(), t0())
                .await;
        assert_eq!(page.status, 200, "{}", page.html);
        // THEN the release goes on to production, or the run fails at e2e saying who said no
        let run = world.store.execution(&ExecutionId::from("e1")).await.expect("read").expect("run");
        assert_eq!(run.status, then, "{decision}");
        if then == Status::Failed {
            let reason = run.reason.unwrap_or_default();
            assert!(
                reason.starts_with("in e2e: 1 test cases failed (40 passed, 1 failed: CheckoutTest.pays_with_card)"),
                "{reason}"
            );
            assert!(reason.contains("; rejected by ada"), "{reason}");
        }
    }
}
