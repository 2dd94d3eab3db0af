//! The use case with the in-memory twins: exactly-once state, effects carried out once done, kept until then.

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::json;

use chrono::DateTime;

use super::*;
use crate::contract::events::SluiceEvent;
use crate::contract::ports::{PipelineStore, Receipt, ReceiptKey, StoreError, Stored, Version, Write};
use crate::contract::testing::{InMemoryStore, RecordingRunner};
use crate::definitions::ExecutionMode;
use crate::pipeline::{
    Decision, Effect, EffectKind, Event, ExecutionId, IgnoreReason, PipelineState, Stage, Status, TransitionError,
    transition,
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("valid date")
}

fn push(execution: &str) -> Event {
    crate::contract::testing::push(execution, ExecutionMode::Superseded, false)
}

fn input<'a>(event: &'a Event, delivery: Option<&str>) -> Input<'a> {
    Input {
        pipeline: "web",
        mode: ExecutionMode::Superseded,
        event,
        receipt: delivery.map(|d| {
            (ReceiptKey::delivery(d, "web"), json!({ "executions": [event.execution_id().map(ToString::to_string)] }))
        }),
        now: now(),
    }
}

fn kinds(runner: &RecordingRunner) -> Vec<String> {
    runner
        .ran()
        .iter()
        .map(|(_, effect)| match effect {
            Effect::StartBuild { execution_id, .. } => format!("start_build {execution_id}"),
            Effect::RequestApproval { execution_id, .. } => format!("request_approval {execution_id}"),
            Effect::StartDeployment { execution_id, .. } => format!("start_deployment {execution_id}"),
            Effect::ReportHookStatus { hook_execution_id, .. } => format!("report_hook {hook_execution_id}"),
            Effect::NotifyOutcome { execution_id, .. } => format!("notify_outcome {execution_id}"),
            Effect::ReportToGitHub { execution_id } => format!("report_to_github {execution_id}"),
            Effect::RunChecks { execution_id, .. } => format!("run_checks {execution_id}"),
            Effect::RunTestChecks { execution_id, .. } => format!("run_test_checks {execution_id}"),
            Effect::RollBack { execution_id, .. } => format!("roll_back {execution_id}"),
            Effect::ContinueDeployment { execution_id, .. } => format!("continue_deployment {execution_id}"),
            Effect::StopDeployment { deployment, .. } => format!("stop_deployment {deployment}"),
            Effect::Publish(event) => format!("publish {}", event.detail_type()),
        })
        .collect()
}

async fn stored(store: &InMemoryStore) -> PipelineState {
    store.load("web").await.ok().flatten().map(|s| s.value).expect("the pipeline is stored")
}

#[tokio::test]
async fn a_push_is_saved_then_its_effects_are_carried_out_and_leave_the_outbox() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let event = push("e1");

    let handled = handle(&store, &runner, input(&event, Some("delivery-1"))).await;

    assert!(matches!(handled, Ok(Handled::Applied)), "{handled:?}");
    assert_eq!(kinds(&runner), ["publish Execution Started", "start_build e1"]);
    let state = stored(&store).await;
    assert!(state.pending.is_empty(), "the outbox is empty: {:?}", state.pending);
    let execution = state.execution(&ExecutionId::from("e1")).expect("recorded");
    assert_eq!(execution.status, Status::Running(Stage::BUILD));
    // The build id CodeBuild gave came back as a follow-up event and was recorded.
    assert_eq!(execution.build.as_ref().and_then(|b| b.build_id.as_deref()), Some("build-e1"));
}

#[tokio::test]
async fn effect_ids_are_unique_and_stable() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let (e1, e2) = (push("e1"), push("e2"));
    handle(&store, &runner, input(&e1, None)).await.expect("handled");
    handle(&store, &runner, input(&e2, None)).await.expect("handled");
    let ids: Vec<String> = runner.ran().into_iter().map(|(id, _)| id).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert_eq!(ids[0], "web-1-0");
}

#[tokio::test]
async fn a_redelivered_input_answers_as_the_first_did_and_does_nothing_again() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let first = push("e1");
    handle(&store, &runner, input(&first, Some("delivery-1"))).await.expect("handled");
    let ran = runner.ran().len();

    // The same delivery again: a webhook handler mints a new execution id for it, which the receipt catches.
    let again = push("e2");
    let handled = handle(&store, &runner, input(&again, Some("delivery-1"))).await;

    assert_eq!(handled.ok(), Some(Handled::Duplicate { answer: json!({ "executions": ["e1"] }) }));
    assert_eq!(runner.ran().len(), ran, "nothing was carried out again");
    assert!(stored(&store).await.execution(&ExecutionId::from("e2")).is_none());
}

#[tokio::test]
async fn an_effect_that_fails_stays_pending_without_failing_the_input_and_the_redelivery_carries_it_out() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let event = push("e1");
    runner.fail_next(1);

    // The first attempt records the execution but cannot carry out its first effect: the input is recorded all the
    // same (no false "not recorded", no false dead letter), and the effect waits in the outbox with a backoff.
    let first = handle(&store, &runner, input(&event, None)).await;
    assert!(matches!(first, Ok(Handled::Applied)), "{first:?}");
    let state = stored(&store).await;
    assert_eq!(state.pending.len(), 1, "the failed effect waits: {:?}", state.pending);
    let waiting = &state.pending[0];
    assert_eq!(waiting.attempts, 1);
    assert!(waiting.lease.is_none(), "its lease was let go");
    let retry_at = waiting.not_before.expect("a backoff");
    assert_eq!(kinds(&runner).len(), 1, "the other effect was carried out");

    // A redelivery before the backoff has passed leaves it be; one after carries it out, once.
    let early = Input { now: retry_at - TimeDelta::seconds(1), ..input(&event, None) };
    assert!(matches!(handle(&store, &runner, early).await, Ok(Handled::Ignored(IgnoreReason::DuplicateEvent))));
    assert_eq!(kinds(&runner).len(), 1);
    let later = Input { now: retry_at, ..input(&event, None) };
    assert!(matches!(handle(&store, &runner, later).await, Ok(Handled::Ignored(IgnoreReason::DuplicateEvent))));
    let mut done = kinds(&runner);
    done.sort();
    assert_eq!(done, ["publish Execution Started", "start_build e1"]);
    assert!(stored(&store).await.pending.is_empty());
}

#[tokio::test]
async fn a_push_costs_one_read_and_two_writes_however_many_effects_it_causes() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    handle(&store, &runner, input(&push("e1"), Some("delivery-1"))).await.expect("handled");
    assert_eq!(store.writes(), 2, "the decision with its lease, then what came of both effects");
    assert_eq!(kinds(&runner).len(), 2);
}

#[tokio::test]
async fn an_effect_refused_for_good_is_parked_and_no_longer_blocks_the_others() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    runner.refuse_next(1);
    handle(&store, &runner, input(&push("e1"), None)).await.expect("recorded");
    let state = stored(&store).await;
    assert!(state.pending.is_empty(), "{:?}", state.pending);
    assert_eq!(state.parked.len(), 1);
    assert!(state.parked[0].error.contains("AccessDeniedException"), "{}", state.parked[0].error);

    // An operator puts it back; the next invocation that touches the pipeline carries it out.
    let id = state.parked[0].id.clone();
    assert!(retry_parked(&store, "web", &id).await.expect("stored"));
    flush(&store, &runner, "web", now()).await.expect("flushed");
    let state = stored(&store).await;
    assert!(state.pending.is_empty() && state.parked.is_empty(), "{state:?}");
    assert_eq!(kinds(&runner).len(), 2);
}

#[tokio::test]
async fn a_function_carries_out_only_the_effects_it_owns_and_leaves_the_rest_for_their_owner() {
    // GIVEN a run that reaches its approval stage through the stage functions (builds and announcements) ...
    let store = InMemoryStore::new();
    let stage = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
    let with_approval = crate::contract::testing::push("e1", ExecutionMode::Superseded, true);
    handle(&store, &stage, input(&with_approval, None)).await.expect("handled");
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e1"),
        build_id: "build-e1".into(),
        outputs: crate::pipeline::BuildOutputs { image_uri: "img".into(), artifacts: None },
    };
    handle(&store, &stage, input(&built, None)).await.expect("handled");
    // ... THEN the approval request waits for the approval function, and the announcement went out.
    let state = stored(&store).await;
    let waiting: Vec<EffectKind> = state.pending.iter().map(|p| p.effect.kind()).collect();
    assert_eq!(waiting, [EffectKind::RequestApproval]);
    assert!(kinds(&stage).contains(&"publish Approval Requested".to_owned()), "{:?}", kinds(&stage));

    // WHEN the approval function (here a runner owning that kind) is invoked for the pipeline
    let approval = RecordingRunner::owning(&[EffectKind::RequestApproval]);
    flush(&store, &approval, "web", now()).await.expect("flushed");
    // THEN it carries the request out, and only that
    assert_eq!(kinds(&approval), ["request_approval e1"]);
    assert!(stored(&store).await.pending.is_empty());
}

#[tokio::test]
async fn an_effect_leased_by_a_running_invocation_is_not_carried_out_twice() {
    let store = InMemoryStore::new();
    let approval = RecordingRunner::owning(&[EffectKind::RequestApproval]);
    let stage = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
    handle(&store, &stage, input(&crate::contract::testing::push("e1", ExecutionMode::Superseded, true), None))
        .await
        .ok();
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e1"),
        build_id: "build-e1".into(),
        outputs: crate::pipeline::BuildOutputs { image_uri: "img".into(), artifacts: None },
    };
    handle(&store, &stage, input(&built, None)).await.expect("handled");
    // Another invocation holds the request's lease (it is carrying it out right now).
    store.meddle("web", |state| {
        state.claim("another-invocation", &[EffectKind::RequestApproval], now());
    });
    flush(&store, &approval, "web", now()).await.expect("flushed");
    assert!(approval.ran().is_empty(), "not while the lease holds");
    flush(&store, &approval, "web", now() + crate::pipeline::outbox::LEASE).await.expect("flushed");
    assert_eq!(kinds(&approval), ["request_approval e1"], "taken over once the lease ran out");
}

#[tokio::test]
async fn a_refused_event_changes_nothing_and_runs_nothing() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let event = push("e1");
    handle(&store, &runner, input(&event, None)).await.expect("handled");
    let before = store.load("web").await.ok().flatten();
    let ran = runner.ran().len();

    let stray = Event::ApprovalExpired { execution_id: ExecutionId::from("e1") };
    let handled = handle(&store, &runner, input(&stray, None)).await;

    assert!(matches!(handled, Ok(Handled::Refused(TransitionError::NotInStage { .. }))), "{handled:?}");
    assert_eq!(store.load("web").await.ok().flatten(), before);
    assert_eq!(runner.ran().len(), ran);
}

#[tokio::test]
async fn a_duplicate_event_is_ignored_without_a_second_effect() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let event = push("e1");
    handle(&store, &runner, input(&event, None)).await.expect("handled");
    let ran = runner.ran().len();
    let handled = handle(&store, &runner, input(&event, None)).await;
    assert!(matches!(handled, Ok(Handled::Ignored(IgnoreReason::DuplicateEvent))), "{handled:?}");
    assert_eq!(runner.ran().len(), ran);
}

/// A store through which another writer changes the pipeline just before our first save.
struct Meddled {
    inner: InMemoryStore,
    meddled: std::sync::Mutex<bool>,
}

impl PipelineStore for Meddled {
    async fn load(&self, pipeline: &str) -> Result<Option<Stored<PipelineState>>, StoreError> {
        self.inner.load(pipeline).await
    }
    async fn save(&self, write: &Write<'_>) -> Result<Version, StoreError> {
        let meddle = std::mem::replace(&mut *self.meddled.lock().unwrap_or_else(|e| e.into_inner()), true);
        if !meddle {
            let other = PipelineState::new("web", ExecutionMode::Superseded);
            let Ok(Decision::Apply { state: other, .. }) = transition(&other, &push("other"), now()) else {
                panic!("the other writer's push applies")
            };
            self.inner.save(&Write::between(None, &other, None)).await?;
        }
        self.inner.save(write).await
    }
    async fn execution(&self, id: &ExecutionId) -> Result<Option<crate::pipeline::Execution>, StoreError> {
        self.inner.execution(id).await
    }
    async fn pauses_apart(&self, id: &ExecutionId) -> Result<Vec<crate::pipeline::PausesApart>, StoreError> {
        self.inner.pauses_apart(id).await
    }
    async fn find(&self, aws_id: &str) -> Result<Option<crate::contract::ports::AwsLink>, StoreError> {
        self.inner.find(aws_id).await
    }
    async fn history(&self, pipeline: &str, limit: usize) -> Result<Vec<crate::pipeline::Execution>, StoreError> {
        self.inner.history(pipeline, limit).await
    }
    async fn record_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        self.inner.record_receipt(receipt).await
    }
    async fn receipt(&self, key: &ReceiptKey) -> Result<Option<Receipt>, StoreError> {
        self.inner.receipt(key).await
    }
}

#[tokio::test]
async fn a_write_that_loses_a_race_is_decided_again_on_the_new_state() {
    let store = Meddled { inner: InMemoryStore::new(), meddled: std::sync::Mutex::new(false) };
    let runner = RecordingRunner::new();
    let event = push("e1");

    let handled = handle(&store, &runner, input(&event, None)).await;

    assert!(matches!(handled, Ok(Handled::Applied)), "{handled:?}");
    let state = stored(&store.inner).await;
    // The other writer's execution came first and holds the build; ours was decided again behind it.
    assert_eq!(state.execution(&ExecutionId::from("other")).map(|e| e.seq), Some(1));
    assert_eq!(state.execution(&ExecutionId::from("e1")).map(|e| e.status), Some(Status::Waiting(Stage::BUILD)));
    // Only what the second decision asked for was carried out: e1 waits, so no build of its own.
    assert_eq!(kinds(&runner), ["publish Execution Started"]);
    assert!(
        matches!(&runner.ran()[0].1, Effect::Publish(SluiceEvent::ExecutionStarted(s)) if s.execution_id.0 == "e1")
    );
}

/// A rejected run of a pipeline whose outcomes go to topic `outcomes`, in `store`.
async fn rejected_run_with_a_notification(store: &InMemoryStore) {
    let runner = RecordingRunner::new();
    let mut pushed = crate::contract::testing::push("e1", ExecutionMode::Superseded, true);
    if let Event::Triggered { plan, .. } = &mut pushed {
        plan.notify =
            Some(crate::definitions::Notify { topic_arn: "arn:aws:sns:eu-west-1:123456789012:outcomes".into() });
    }
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e1"),
        build_id: "build-e1".into(),
        outputs: crate::pipeline::BuildOutputs { image_uri: "web:e1".into(), artifacts: None },
    };
    let rejected = Event::ApprovalDecided {
        execution_id: ExecutionId::from("e1"),
        decision: crate::pipeline::ApprovalDecision::Rejected,
        approver: "Jane".into(),
        comment: Some("not on a Friday".into()),
        token_hash: None,
        source_ip: None,
        user_agent: None,
    };
    for event in [&pushed, &built, &rejected] {
        handle(store, &runner, input(event, None)).await.expect("handled");
    }
}

#[tokio::test]
async fn the_notifier_tells_the_pipelines_topic_how_a_run_ended_once_and_leaves_nothing_pending() {
    // GIVEN a run rejected by a person, whose pipeline notifies a topic
    let store = std::sync::Arc::new(InMemoryStore::new());
    rejected_run_with_a_notification(&store).await;
    let pending = stored(&store).await.pending;
    assert_eq!(pending.iter().filter(|p| p.effect.kind() == EffectKind::NotifyOutcome).count(), 1);
    // WHEN the notifier flushes the pipeline, twice (a redelivered Execution Finished)
    let notifier = crate::contract::testing::RecordingNotifier::new();
    let effects = NotifyEffects { store: store.clone(), notifier, region: "eu-west-1".into() };
    flush(&store, &effects, "web", now()).await.expect("flushed");
    flush(&store, &effects, "web", now()).await.expect("flushed");
    // THEN one message went to the topic, saying who rejected it and why
    let sent = effects.notifier.sent();
    assert_eq!(sent.len(), 1);
    let (topic, message) = &sent[0];
    assert_eq!(topic, "arn:aws:sns:eu-west-1:123456789012:outcomes");
    assert_eq!(message.subject, "sluice: web sha-e1 rejected");
    assert!(message.text.contains("rejected by Jane: \"not on a Friday\""), "{}", message.text);
    // AND the outbox holds no notification any more
    assert!(stored(&store).await.pending.iter().all(|p| p.effect.kind() != EffectKind::NotifyOutcome));
}

#[tokio::test]
async fn a_topic_that_refuses_the_notification_parks_it_with_the_reason() {
    // GIVEN a run that ended, and a topic that does not exist
    let store = std::sync::Arc::new(InMemoryStore::new());
    rejected_run_with_a_notification(&store).await;
    let notifier = crate::contract::testing::RecordingNotifier::new();
    notifier.refuse_next(1);
    let effects = NotifyEffects { store: store.clone(), notifier, region: "eu-west-1".into() };
    // WHEN the notifier tries
    flush(&store, &effects, "web", now()).await.expect("flushed");
    // THEN the notification is parked for an operator, with SNS's words
    let state = stored(&store).await;
    assert_eq!(state.parked.len(), 1);
    assert_eq!(state.parked[0].effect.kind(), EffectKind::NotifyOutcome);
    assert!(state.parked[0].error.contains("Topic does not exist"), "{}", state.parked[0].error);
}

/// Run e1 of `web`, deploying CodeDeploy deployment d-1.
async fn deploying_d1(store: &InMemoryStore, runner: &RecordingRunner) {
    for event in [
        push("e1"),
        Event::BuildSucceeded {
            execution_id: ExecutionId::from("e1"),
            build_id: "build-e1".into(),
            outputs: crate::pipeline::BuildOutputs { image_uri: "web:e1".into(), artifacts: None },
        },
        Event::DeploymentStarted {
            execution_id: ExecutionId::from("e1"),
            deployment_id: "d-1".into(),
            service_deployment: None,
            task_definition: None,
            previous_task_definition: None,
            in_alarm: None,
        },
    ] {
        handle(store, runner, input(&event, None)).await.expect("handled");
    }
}

#[tokio::test]
async fn the_events_of_codedeploys_own_rollback_deployment_are_not_sluices_and_change_nothing() {
    // GIVEN a run deploying d-1, and CodeDeploy's rollback of it, d-2, whose record names no sluice run (CodeDeploy
    // creates it with no description, as `codeDeployRollback`)
    let store = InMemoryStore::new();
    let runner = RecordingRunner::new();
    deploying_d1(&store, &runner).await;
    let deployments = crate::contract::testing::RecordingDeployments::new();
    deployments.report(
        "d-2",
        crate::contract::ports::DeploymentReport {
            progress: crate::contract::ports::DeploymentProgress::Succeeded,
            ..Default::default()
        },
    );
    let before = stored(&store).await;
    // WHEN the rollback deployment's SUCCESS arrives
    let change = DeploymentStateChange {
        event_id: "ev-rollback".into(),
        deployment_id: "d-2".into(),
        change: DeploymentChange::CodeDeploy { state: "SUCCESS".into() },
    };
    let outcome =
        record_deployment_event(&store, &runner, &deployments, &deployments, &change, now()).await.expect("recorded");
    // THEN it is not sluice's, and the run still deploys: a rollback is never read as the run's success
    assert_eq!(outcome, DeploymentEventOutcome::NotOurs("not a deployment sluice started"));
    assert_eq!(stored(&store).await, before);
    assert_eq!(stored(&store).await.executions[0].status, Status::Running(Stage::DEPLOY));
}

/// d-1's STOP, as CodeDeploy's state-change event brings it, with CodeDeploy's record of why.
async fn stopped_d1(store: &InMemoryStore, runner: &RecordingRunner, message: &str) -> crate::pipeline::Execution {
    let deployments = crate::contract::testing::RecordingDeployments::new();
    let report = crate::contract::ports::DeploymentReport {
        progress: crate::contract::ports::DeploymentProgress::Stopped,
        message: Some(message.into()),
        rolled_back: true,
        description: None,
    };
    deployments.report("d-1", report);
    let change = DeploymentStateChange {
        event_id: "ev-stop".into(),
        deployment_id: "d-1".into(),
        change: DeploymentChange::CodeDeploy { state: "STOP".into() },
    };
    record_deployment_event(store, runner, &deployments, &deployments, &change, now()).await.expect("recorded");
    store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run")
}

#[tokio::test]
async fn a_deployment_stopped_by_an_alarm_ends_the_run_rolled_back_naming_the_alarm() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    deploying_d1(&store, &runner).await;
    let alarm = "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and \
                 the affected deployments have been stopped. Activated alarms: <web-5xx-rate>";
    let run = stopped_d1(&store, &runner, alarm).await;
    assert_eq!(run.status, Status::RolledBack);
    assert_eq!(
        run.reason.as_deref(),
        Some(format!("CodeDeploy stopped the deployment and rolled it back: {alarm}").as_str())
    );
}

#[tokio::test]
async fn a_deployment_stopped_to_make_way_for_another_run_ends_its_run_superseded_not_failed() {
    use crate::contract::ports::Supersessions;
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    deploying_d1(&store, &runner).await;
    // GIVEN the deployer of pipeline hotfix noted that it stopped d-1 for hotfix-1
    store.record_stop("d-1", "hotfix", &ExecutionId::from("hotfix-1")).await.expect("noted");
    // WHEN d-1's STOP arrives
    let run = stopped_d1(&store, &runner, "The deployment was stopped").await;
    // THEN e1 was superseded by hotfix-1, and says what CodeDeploy did
    assert_eq!(run.status, Status::Superseded);
    assert_eq!(
        run.reason.as_deref(),
        Some(
            "superseded by execution hotfix-1 of pipeline hotfix, which needed the deployment group: CodeDeploy \
             stopped the deployment and rolled it back: The deployment was stopped"
        )
    );
}

#[tokio::test]
async fn sluice_rollback_stops_the_deployment_of_the_run_deploying_once_and_says_where_the_stop_is() {
    use crate::usecases::{RollbackError, Stop, order_rollback};
    let store = InMemoryStore::new();
    let stops = RecordingRunner::owning(&[EffectKind::StopDeployment]);
    let by = "arn:aws:iam::123456789012:user/carol";
    // A pipeline that never ran, and one with nothing deploying, have nothing to roll back
    let never = order_rollback(&store, &stops, ("web", None), by, now()).await;
    assert!(matches!(never, Err(RollbackError::UnknownPipeline(_))), "{never:?}");
    handle(&store, &RecordingRunner::new(), input(&push("e1"), None)).await.expect("pushed");
    let idle = order_rollback(&store, &stops, ("web", None), by, now()).await;
    assert!(matches!(idle, Err(RollbackError::NothingDeploying(_))), "{idle:?}");

    // GIVEN e1 deploying d-1, WHEN the operator orders it rolled back, THEN d-1 is stopped at once
    let store = InMemoryStore::new();
    deploying_d1(&store, &RecordingRunner::new()).await;
    let ordered = order_rollback(&store, &stops, ("web", None), by, now()).await.expect("ordered");
    assert_eq!((ordered.execution_id.0.as_str(), ordered.deployment.as_str()), ("e1", "d-1"));
    assert_eq!(ordered.stop, Stop::Made);
    assert_eq!(kinds(&stops), ["stop_deployment d-1"]);
    // AND ordering again stops nothing more
    let again = order_rollback(&store, &stops, ("web", None), by, now()).await.expect("ordered");
    assert_eq!(again.stop, Stop::AlreadyOrdered);
    assert_eq!(kinds(&stops).len(), 1);

    // A stop that cannot be made now stays in the outbox; one refused is parked, with its error
    for (refuse, store) in [(false, InMemoryStore::new()), (true, InMemoryStore::new())] {
        deploying_d1(&store, &RecordingRunner::new()).await;
        let failing = RecordingRunner::owning(&[EffectKind::StopDeployment]);
        if refuse {
            failing.refuse_next(1)
        } else {
            failing.fail_next(1)
        }
        let ordered = order_rollback(&store, &failing, ("web", None), by, now()).await.expect("ordered");
        match (refuse, ordered.stop) {
            (false, Stop::Pending(error)) => assert!(error.contains("the runner was told to fail"), "{error}"),
            (true, Stop::Parked { error, .. }) => assert!(error.contains("AccessDeniedException"), "{error}"),
            (_, other) => panic!("refuse={refuse}: {other:?}"),
        }
    }
}

/// A stop that ECS or CodeDeploy acts on at once: its deployment's end is recorded (by deploy-events) before the
/// stop's own outcome is.
struct StopsEndingAtOnce<'a>(&'a InMemoryStore);

impl EffectRunner for StopsEndingAtOnce<'_> {
    const KINDS: &'static [EffectKind] = &[EffectKind::StopDeployment];

    async fn run(&self, _: &str, effect: &Effect) -> Result<Option<Event>, crate::usecases::EffectError> {
        let execution_id = effect.execution_id().cloned().expect("a run's stop");
        let stopped = Event::DeploymentFailed {
            execution_id,
            deployment_id: Some("d-1".into()),
            reason: "The deployment was stopped".into(),
            rolled_back: true,
        };
        handle(self.0, &RecordingRunner::new(), input(&stopped, None)).await.expect("the stop recorded");
        Ok(None)
    }
}

#[tokio::test]
async fn sluice_rollback_names_the_deployment_it_stopped_even_when_its_end_is_recorded_first() {
    use crate::usecases::{Stop, order_rollback};
    // GIVEN e1 deploying d-1, whose stop CodeDeploy acts on before the order's outcome is saved
    let store = InMemoryStore::new();
    deploying_d1(&store, &RecordingRunner::new()).await;
    let by = "arn:aws:iam::123456789012:user/carol";
    let ordered = order_rollback(&store, &StopsEndingAtOnce(&store), ("web", None), by, now()).await.expect("ordered");
    // THEN the answer names the deployment stopped, and the run ended rolled back by the operator
    assert_eq!((ordered.execution_id.0.as_str(), ordered.deployment.as_str()), ("e1", "d-1"));
    assert_eq!(ordered.stop, Stop::Made);
    let run = store.execution(&ExecutionId::from("e1")).await.expect("read").expect("the run");
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    assert!(run.reason.as_deref().is_some_and(|r| r.starts_with("rolled back by arn:aws:iam")), "{run:#?}");
}

/// A prober that must not be used: it counts the probes asked of it and answers none.
#[derive(Default)]
struct NoProbes(std::sync::atomic::AtomicUsize);

impl crate::contract::ports::HttpProbe for NoProbes {
    async fn probe(
        &self,
        _: &crate::contract::ports::Probe<'_>,
    ) -> Result<crate::contract::ports::ProbeAnswer, crate::contract::ports::ProbeError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(crate::contract::ports::ProbeError("no probe expected".into()))
    }
}

#[tokio::test]
async fn an_ecs_stage_sluice_does_not_know_or_without_checks_is_answered_succeeded_and_an_unrecorded_deployment_is_waited_for()
 {
    use crate::definitions::{Check, TrafficShift};
    use crate::deploy::StageProgress;
    use crate::usecases::{StageAnswer, StageCall, answer_stage};
    let (store, runner, probes) = (InMemoryStore::new(), RecordingRunner::new(), NoProbes::default());
    let budget = std::time::Duration::from_secs(60);
    let call = |stage: &str, unlinked: u32| StageCall {
        execution_id: format!("hook-{stage}"),
        stage: stage.into(),
        service_deployment: "arn:sd-1".into(),
        progress: StageProgress { unlinked, ..Default::default() },
    };
    let ecs = crate::contract::testing::RecordingDeployments::new();
    // A service deployment no run has recorded yet: ECS is asked to call again, 12 times, then told FAILED
    let first =
        answer_stage(&store, &runner, &probes, &ecs, &call("POST_SCALE_UP", 0), budget, now()).await.expect("answered");
    let progress = StageProgress { unlinked: 1, ..Default::default() };
    assert_eq!(first, StageAnswer::InProgress { delay_secs: 5, progress });
    let last = answer_stage(&store, &runner, &probes, &ecs, &call("POST_SCALE_UP", 12), budget, now())
        .await
        .expect("answered");
    assert_eq!(last, StageAnswer::Failed);

    // GIVEN e1 deploying arn:sd-1 ECS-natively, with a check at POST_TEST_TRAFFIC_SHIFT
    let checks = vec![Check::new("POST_TEST_TRAFFIC_SHIFT", "http://web-test/health")];
    let native =
        crate::definitions::EcsNative { checks, ..crate::contract::testing::ecs_native(TrafficShift::BlueGreen) };
    deploying_natively(&store, &runner, native).await;
    // WHEN ECS calls at a stage it has added since, and at one without checks, THEN both pass untouched
    for stage in ["POST_SOMETHING_NEW", "POST_SCALE_UP"] {
        let answer =
            answer_stage(&store, &runner, &probes, &ecs, &call(stage, 0), budget, now()).await.expect("answered");
        assert_eq!(answer, StageAnswer::Succeeded, "{stage}");
    }
    assert_eq!(probes.0.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing was probed");
    let run = store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run");
    assert!(run.deploy().is_some_and(|d| d.hooks.is_empty()), "nothing recorded on the run");
}

/// A prober whose answers a test sets: every probe gets `status` (and the body, if given), and is counted.
struct SetProbes(std::sync::atomic::AtomicU16, std::sync::atomic::AtomicUsize, String);

impl SetProbes {
    fn answering(status: u16) -> Self {
        Self(std::sync::atomic::AtomicU16::new(status), std::sync::atomic::AtomicUsize::new(0), String::new())
    }

    /// Every probe gets 200 with `body`.
    fn with_body(body: String) -> Self {
        Self(std::sync::atomic::AtomicU16::new(200), std::sync::atomic::AtomicUsize::new(0), body)
    }

    fn probed(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl crate::contract::ports::HttpProbe for SetProbes {
    async fn probe(
        &self,
        _: &crate::contract::ports::Probe<'_>,
    ) -> Result<crate::contract::ports::ProbeAnswer, crate::contract::ports::ProbeError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let status = self.0.load(std::sync::atomic::Ordering::SeqCst);
        Ok(crate::contract::ports::ProbeAnswer { status, body: self.2.clone().into_bytes() })
    }
}

#[tokio::test]
async fn a_check_that_expects_the_commit_passes_only_where_the_service_reports_the_release_being_deployed() {
    use crate::definitions::{Check, TrafficShift};
    use crate::usecases::{StageAnswer, StageCall, answer_stage};
    let budget = std::time::Duration::from_secs(60);
    let call = StageCall {
        execution_id: "hook-1".into(),
        stage: "POST_TEST_TRAFFIC_SHIFT".into(),
        service_deployment: "arn:sd-1".into(),
        progress: crate::deploy::StageProgress::default(),
    };
    for reports_the_release in [true, false] {
        // GIVEN e1 deploying ECS-natively, its check expecting the service to report e1's commit
        let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
        let check = Check {
            expect_body: Some(r#""revision":"{commit}""#.into()),
            retries: 0,
            ..Check::new("POST_TEST_TRAFFIC_SHIFT", "http://web-test/version")
        };
        let native = crate::definitions::EcsNative {
            checks: vec![check],
            ..crate::contract::testing::ecs_native(TrafficShift::BlueGreen)
        };
        deploying_natively(&store, &runner, native).await;
        let run = store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run");
        let reported = if reports_the_release { run.source.commit.clone() } else { "0".repeat(40) };
        let probes = SetProbes::with_body(format!(r#"{{"revision":"{reported}"}}"#));
        // WHEN ECS calls at the stage
        let ecs = crate::contract::testing::RecordingDeployments::new();
        let answer = answer_stage(&store, &runner, &probes, &ecs, &call, budget, now()).await.expect("answered");
        // THEN it passes only where the service answers with that commit
        let expected = if reports_the_release { StageAnswer::Succeeded } else { StageAnswer::Failed };
        assert_eq!(answer, expected, "reports the release: {reports_the_release}");
    }
}

/// Run e1 deploying arn:sd-1 by an ECS linear shift, with one check at PRODUCTION_TRAFFIC_SHIFT (one retry).
async fn linear_deploying(store: &InMemoryStore, runner: &RecordingRunner) {
    use crate::definitions::{Check, TrafficShift};
    let checks = vec![Check { retries: 1, ..Check::new("PRODUCTION_TRAFFIC_SHIFT", "http://web/health") }];
    let shift = TrafficShift::Linear { step_tenths: 250, step_bake_time_minutes: 5 };
    deploying_natively(
        store,
        runner,
        crate::definitions::EcsNative { checks, ..crate::contract::testing::ecs_native(shift) },
    )
    .await;
}

/// Run e1, triggered as `triggered` says, built (image `web:e1`) and deploying as `deployment_id` (and, ECS-native,
/// as service deployment `service_deployment`).
async fn built_and_deploying<S: PipelineStore>(
    store: &S,
    runner: &RecordingRunner,
    triggered: Event,
    (deployment_id, service_deployment): (&str, Option<&str>),
) {
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e1"),
        build_id: "build-e1".into(),
        outputs: crate::pipeline::BuildOutputs { image_uri: "web:e1".into(), artifacts: None },
    };
    let started = Event::DeploymentStarted {
        execution_id: ExecutionId::from("e1"),
        deployment_id: deployment_id.into(),
        service_deployment: service_deployment.map(str::to_owned),
        task_definition: None,
        previous_task_definition: None,
        in_alarm: None,
    };
    for event in [triggered, built, started] {
        let handled = handle(store, runner, input(&event, None)).await.expect("handled");
        assert_eq!(handled, Handled::Applied, "{}", event.name());
    }
}

/// Run e1 of web, built, deploying by `native` as ECS service deployment arn:sd-1 (`ecs-svc/1`).
async fn deploying_natively(store: &InMemoryStore, runner: &RecordingRunner, native: crate::definitions::EcsNative) {
    let mut triggered = push("e1");
    if let Event::Triggered { plan, .. } = &mut triggered {
        *plan.target_mut() = crate::definitions::DeployTarget::EcsNative(native);
    }
    built_and_deploying(store, runner, triggered, ("ecs-svc/1", Some("arn:sd-1"))).await;
}

fn stage_call(execution_id: &str, progress: crate::deploy::StageProgress) -> crate::usecases::StageCall {
    crate::usecases::StageCall {
        execution_id: execution_id.into(),
        stage: "PRODUCTION_TRAFFIC_SHIFT".into(),
        service_deployment: "arn:sd-1".into(),
        progress,
    }
}

#[tokio::test]
async fn a_later_step_of_a_linear_shift_runs_its_checks_again_whatever_ids_and_details_ecs_hands_back() {
    use crate::usecases::{StageAnswer, answer_stage};
    let (store, runner, ecs) =
        (InMemoryStore::new(), RecordingRunner::new(), crate::contract::testing::RecordingDeployments::new());
    let budget = std::time::Duration::from_secs(60);
    linear_deploying(&store, &runner).await;
    // GIVEN step 1's check failed once (IN_PROGRESS, with sluice's progress), then passed
    let probes = SetProbes::answering(503);
    let call = stage_call("hook-1", Default::default());
    let first = answer_stage(&store, &runner, &probes, &ecs, &call, budget, now()).await.expect("answered");
    let StageAnswer::InProgress { progress, .. } = first else { panic!("{first:?}") };
    probes.0.store(200, std::sync::atomic::Ordering::SeqCst);
    let again = stage_call("hook-1", progress.clone());
    let step1 = answer_stage(&store, &runner, &probes, &ecs, &again, budget, now()).await.expect("answered");
    assert_eq!(step1, StageAnswer::Succeeded);
    // WHEN step 3 calls with the same execution id and the details step 1 left, and the service now answers 500
    probes.0.store(500, std::sync::atomic::Ordering::SeqCst);
    let before = probes.probed();
    let step3 = answer_stage(&store, &runner, &probes, &ecs, &stage_call("hook-1", progress), budget, now()).await;
    // THEN the check ran again (step 1's answer is not reused), and with its retry left ECS is asked to call again
    assert_eq!(probes.probed(), before + 1);
    let Ok(StageAnswer::InProgress { progress: step3_progress, .. }) = step3 else { panic!("{step3:?}") };
    // AND its retry spent, it fails, and the run records both steps' results
    let last = stage_call("hook-1", step3_progress);
    let failed = answer_stage(&store, &runner, &probes, &ecs, &last, budget, now()).await.expect("answered");
    assert_eq!(failed, StageAnswer::Failed);
    let run = store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run");
    let passed: Vec<bool> = run.deploy().map(|d| d.hooks.iter().map(|h| h.passed).collect()).unwrap_or_default();
    assert_eq!(passed, [true, false]);
}

#[tokio::test]
async fn a_stage_hook_of_a_deployment_ecs_rolls_back_passes_untouched_and_one_ecs_cannot_tell_of_is_checked() {
    use crate::contract::ports::{DeploymentProgress, ServiceDeploymentReport};
    use crate::usecases::{StageAnswer, answer_stage};
    let (store, runner, ecs) =
        (InMemoryStore::new(), RecordingRunner::new(), crate::contract::testing::RecordingDeployments::new());
    let budget = std::time::Duration::from_secs(60);
    linear_deploying(&store, &runner).await;
    let probes = SetProbes::answering(500);
    // GIVEN ECS says the deployment is rolling back (the run has not heard yet)
    for (status, rollback) in [("ROLLBACK_IN_PROGRESS", false), ("IN_PROGRESS", true)] {
        let report = ServiceDeploymentReport {
            progress: DeploymentProgress::Going,
            status: status.into(),
            status_reason: None,
            rolled_back: rollback,
            rollback_reason: None,
            triggered_alarms: Vec::new(),
            circuit_breaker_tripped: false,
            timed_out_hooks: Vec::new(),
            awaiting: None,
        };
        ecs.service_deployment("arn:sd-1", report);
        // WHEN ECS calls the traffic-shift hook on the way back, THEN it passes, nothing probed
        let call = stage_call("back", Default::default());
        let answer = answer_stage(&store, &runner, &probes, &ecs, &call, budget, now());
        assert_eq!(answer.await.expect("answered"), StageAnswer::Succeeded, "{status}");
    }
    assert_eq!(probes.probed(), 0);
    // WHEN ECS cannot be asked, THEN the checks run all the same: a skipped check never answers SUCCEEDED
    ecs.unreachable();
    let call = stage_call("doubt", Default::default());
    let answer = answer_stage(&store, &runner, &probes, &ecs, &call, budget, now());
    assert!(matches!(answer.await.expect("answered"), StageAnswer::InProgress { .. }));
    assert_eq!(probes.probed(), 1);
}

/// Run e1 of web, built and waiting for its approval.
async fn awaiting_approval(store: &InMemoryStore, runner: &RecordingRunner) {
    let pushed = crate::contract::testing::push("e1", ExecutionMode::Superseded, true);
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e1"),
        build_id: "build-e1".into(),
        outputs: crate::pipeline::BuildOutputs { image_uri: "web:e1".into(), artifacts: None },
    };
    for event in [&pushed, &built] {
        handle(store, runner, input(event, None)).await.expect("handled");
    }
}

#[tokio::test]
async fn an_operator_approves_as_their_aws_identity_once_and_the_run_moves_on_to_deploy() {
    use crate::pipeline::ApprovalDecision::{Approved, Rejected};
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    awaiting_approval(&store, &runner).await;
    let carol = "arn:aws:iam::123456789012:user/carol";
    let id = ExecutionId::from("e1");

    let decided = decide_as(&store, &runner, &id, Approved, carol, Some("ship it".into()), now()).await;
    assert_eq!(decided.expect("decided"), Decided::Stage);
    let run = store.execution(&id).await.ok().flatten().expect("the run");
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    let approval = run.approval().cloned().expect("its approval");
    assert_eq!((approval.approver.as_deref(), approval.comment.as_deref()), (Some(carol), Some("ship it")));
    assert!(kinds(&runner).contains(&"publish Approval Decided".to_owned()), "{:?}", kinds(&runner));

    let again = decide_as(&store, &runner, &id, Approved, carol, None, now()).await;
    assert_eq!(again.expect("the same decision"), Decided::Already);
    let otherwise = decide_as(&store, &runner, &id, Rejected, carol, None, now()).await;
    assert!(matches!(otherwise, Err(DecideError::Refused(TransitionError::AlreadyDecided { .. }))), "{otherwise:?}");
}

#[tokio::test]
async fn an_operator_rejection_ends_the_run_naming_them_and_a_run_not_waiting_or_unknown_is_refused() {
    use crate::pipeline::ApprovalDecision::Rejected;
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let carol = "arn:aws:iam::123456789012:user/carol";
    handle(&store, &runner, input(&crate::contract::testing::push("e1", ExecutionMode::Superseded, true), None))
        .await
        .expect("pushed");
    let building = decide_as(&store, &runner, &ExecutionId::from("e1"), Rejected, carol, None, now()).await;
    let message = building.expect_err("a run still building waits for no decision").to_string();
    assert_eq!(message, "run e1 is running build: it waits for no decision");
    let unknown = decide_as(&store, &runner, &ExecutionId::from("e9"), Rejected, carol, None, now()).await;
    assert!(matches!(unknown, Err(DecideError::UnknownRun(_))), "{unknown:?}");

    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    awaiting_approval(&store, &runner).await;
    let id = ExecutionId::from("e1");
    let decided = decide_as(&store, &runner, &id, Rejected, carol, Some("not on a Friday".into()), now()).await;
    assert_eq!(decided.expect("decided"), Decided::Stage);
    let run = store.execution(&id).await.ok().flatten().expect("the run");
    assert_eq!(run.status, Status::Rejected);
    assert_eq!(run.reason.as_deref(), Some("rejected by arn:aws:iam::123456789012:user/carol: not on a Friday"));
}

/// Run `id` of web, pushed at `minute` with commit sha-`id`, built, approved, deployed and shipped.
async fn shipped(store: &InMemoryStore, runner: &RecordingRunner, id: &str, minute: i64) {
    let events = crate::contract::testing::shipped(id);
    for event in &events {
        let at = now() + TimeDelta::minutes(minute);
        handle(store, runner, Input { now: at, ..input(event, None) }).await.expect("handled");
    }
}

async fn published(store: &InMemoryStore) {
    let example = include_str!("../../../infra/pipelines.example.toml");
    crate::contract::ports::DefinitionsStore::publish(store, example, None, now()).await.expect("published");
}

#[tokio::test]
async fn a_rollback_with_nothing_deploying_redeploys_the_build_of_the_succeeded_run_before_the_last() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    published(&store).await;
    shipped(&store, &runner, "e1", 0).await;
    shipped(&store, &runner, "e2", 10).await;

    let order = Order::RollbackTo { pipeline: "web", to: None, stage: None };
    let ordered = order_run(&store, &runner, order, "carol", now() + TimeDelta::minutes(20)).await.expect("ordered");

    assert_eq!((ordered.of.0.as_str(), ordered.redeploys), ("e1", true));
    assert_eq!(ordered.status, Status::Running(Stage::DEPLOY));
    let run = store.execution(&ordered.execution_id).await.ok().flatten().expect("the new run");
    assert_eq!(run.build.as_ref().and_then(|b| b.image_uri.as_deref()), Some("web:e1"));
    assert_eq!(run.ordered.as_deref(), Some("rollback to run #1 (e1) by carol"));
    assert_eq!(run.source.commit, "sha-e1");
    assert!(kinds(&runner).contains(&format!("start_deployment {}", ordered.execution_id)), "{:?}", kinds(&runner));

    // A run named with --to must have succeeded, and be the pipeline's.
    let order = Order::RollbackTo { pipeline: "api", to: Some("e1"), stage: None };
    let other = order_run(&store, &runner, order, "carol", now()).await;
    assert!(matches!(other, Err(OrderError::OtherPipeline(..))), "{other:?}");
    let lone = InMemoryStore::new();
    published(&lone).await;
    shipped(&lone, &runner, "e1", 0).await;
    let nothing =
        order_run(&lone, &runner, Order::RollbackTo { pipeline: "web", to: None, stage: None }, "carol", now()).await;
    assert!(matches!(nothing, Err(OrderError::NothingEarlier(_))), "{nothing:?}");
}

#[tokio::test]
async fn a_retry_deploys_a_failed_deployments_build_again_builds_a_failed_build_again_and_refuses_a_success() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    published(&store).await;
    shipped(&store, &runner, "e1", 0).await;
    let refused = order_run(&store, &runner, Order::Retry { run: "e1" }, "carol", now()).await;
    assert_eq!(
        refused.expect_err("e1 succeeded").to_string(),
        "run e1 is succeeded: only a run that did not succeed can be retried"
    );

    // e2's build fails: a retry builds its commit again.
    let pushed = crate::contract::testing::push("e2", ExecutionMode::Superseded, true);
    handle(&store, &runner, input(&pushed, None)).await.expect("pushed");
    let failed = crate::contract::testing::build_failed("e2");
    handle(&store, &runner, input(&failed, None)).await.expect("failed");
    let ordered = order_run(&store, &runner, Order::Retry { run: "e2" }, "carol", now()).await.expect("retried");
    assert!(!ordered.redeploys);
    assert_eq!(ordered.status, Status::Running(Stage::BUILD));
    let run = store.execution(&ordered.execution_id).await.ok().flatten().expect("the new run");
    assert_eq!((run.source.commit.as_str(), run.source.pusher.as_str()), ("sha-e2", "carol"));

    // e3 is rejected: a retry does not skip the approval it did not get, it runs again from the build.
    let store = InMemoryStore::new();
    published(&store).await;
    let pushed = crate::contract::testing::push("e3", ExecutionMode::Superseded, true);
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e3"),
        build_id: "build-e3".into(),
        outputs: crate::pipeline::BuildOutputs { image_uri: "web:e3".into(), artifacts: None },
    };
    let rejected = Event::ApprovalDecided {
        execution_id: ExecutionId::from("e3"),
        decision: crate::pipeline::ApprovalDecision::Rejected,
        approver: "Jane".into(),
        comment: None,
        token_hash: None,
        source_ip: None,
        user_agent: None,
    };
    for event in [&pushed, &built, &rejected] {
        handle(&store, &runner, input(event, None)).await.expect("handled");
    }
    let again = order_run(&store, &runner, Order::Retry { run: "e3" }, "carol", now()).await.expect("retried");
    assert!(!again.redeploys, "a rejected run is not deployed by a retry");
    assert_eq!(again.status, Status::Running(Stage::BUILD));

    // A rerun of a commit by its prefix builds it again too; an unknown commit is refused.
    let rerun = order_run(&store, &runner, Order::Rerun { pipeline: "web", commit: "sha-e3" }, "carol", now()).await;
    assert!(!rerun.expect("rerun").redeploys);
    let unknown =
        order_run(&store, &runner, Order::Rerun { pipeline: "web", commit: "0badc0de" }, "carol", now()).await;
    assert!(matches!(unknown, Err(OrderError::UnknownCommit { .. })), "{unknown:?}");
}

#[tokio::test]
async fn a_retry_or_rerun_builds_its_refs_head_again_but_never_a_commit_the_ref_has_moved_past() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    published(&store).await;
    // GIVEN main went 0 -> A (run e1, shipped) -> B (run e2, whose build failed), as GitHub pushes say
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    let chained = |id: &str, before: &str, after: &str| {
        let mut event = crate::contract::testing::push(id, ExecutionMode::Superseded, true);
        if let Event::Triggered { source, .. } = &mut event {
            source.before = before.to_owned();
            source.commit = after.to_owned();
        }
        event
    };
    let mut e1 = crate::contract::testing::shipped("e1");
    e1[0] = chained("e1", &"0".repeat(40), &a);
    for event in &e1 {
        handle(&store, &runner, input(event, None)).await.expect("shipped");
    }
    let failed = crate::contract::testing::build_failed("e2");
    let mut e2 = chained("e2", &a, &b);
    if let Event::Triggered { source, .. } = &mut e2 {
        // (GitHub was asked how B stands against A: its push was made in the same second)
        source.compared =
            Some(crate::pipeline::Compared { head: a.clone(), order: crate::pipeline::CommitOrder::Ahead });
    }
    for event in [e2, failed] {
        handle(&store, &runner, input(&event, None)).await.expect("handled");
    }

    // WHEN e2 is retried, THEN its commit, main's head, is built again: an order is not a late push
    let retried = order_run(&store, &runner, Order::Retry { run: "e2" }, "carol", now()).await.expect("retried");
    assert_eq!(retried.status, Status::Running(Stage::BUILD), "{:?}", retried.reason);
    let run = store.execution(&retried.execution_id).await.ok().flatten().expect("the new run");
    assert_eq!(run.ordered.as_deref(), Some("retry of run #2 (e2) by carol"));
    assert_eq!(run.source.compared, None, "how the push was ordered is the push's run's, not the order's");

    // WHEN A is run again, THEN the run is skipped: main moved past it, and a rollback deploys an earlier build
    let rerun = Order::Rerun { pipeline: "web", commit: "aaaaaaa" };
    let older = order_run(&store, &runner, rerun, "carol", now()).await.expect("ordered");
    assert_eq!(older.status, Status::Skipped);
    let reason = older.reason.unwrap_or_default();
    assert!(reason.contains("commit aaaaaaa is older than bbbbbbb") && reason.contains("never deploys backwards"));

    // AND the ref's pushes are as GitHub made them: a late copy of the push to B is still skipped
    let late = chained("e9", &a, &b);
    handle(&store, &runner, input(&late, None)).await.expect("handled");
    let late = store.execution(&ExecutionId::from("e9")).await.ok().flatten().expect("recorded");
    assert_eq!(late.status, Status::Skipped, "{:?}", late.reason);
}

/// Run e1 of web deploying arn:sd-1 by an ECS canary that asks for an approval before production steps; the
/// definitions that name web are published.
async fn canary_deploying(store: &InMemoryStore, runner: &RecordingRunner) {
    use crate::contract::ports::DefinitionsStore;
    use crate::definitions::TrafficShift;
    store.publish(include_str!("../../../infra/pipelines.example.toml"), None, now()).await.expect("published");
    let shift = TrafficShift::Canary { tenths: 100, bake_time_minutes: 5 };
    let native = crate::contract::testing::ecs_native_asking(shift, 60);
    deploying_natively(store, runner, native).await;
}

#[tokio::test]
async fn a_hook_state_change_whose_ids_name_no_run_has_the_runs_deploying_asked_about_their_pauses() {
    use crate::contract::ports::{AwaitingPause, DeploymentProgress, ServiceDeploymentReport};
    use crate::usecases::{DeploymentChange, DeploymentEventOutcome, DeploymentStateChange};
    let (store, runner, ecs) =
        (InMemoryStore::new(), RecordingRunner::new(), crate::contract::testing::RecordingDeployments::new());
    canary_deploying(&store, &runner).await;
    ecs.service_deployment(
        "arn:sd-1",
        ServiceDeploymentReport {
            progress: DeploymentProgress::Going,
            status: "IN_PROGRESS".into(),
            status_reason: None,
            rolled_back: false,
            rollback_reason: None,
            triggered_alarms: Vec::new(),
            circuit_breaker_tripped: false,
            timed_out_hooks: Vec::new(),
            awaiting: Some(AwaitingPause {
                hook_id: "pause-1".into(),
                stage: "POST_TEST_TRAFFIC_SHIFT".into(),
                expires_at: None,
                timeout_action: None,
            }),
        },
    );
    // GIVEN an "ECS Hook State Change" whose detail has no deploymentId, and whose other ids name no run
    let change = DeploymentStateChange {
        event_id: "e-hook".into(),
        deployment_id: String::new(),
        change: DeploymentChange::EcsHook {
            event_name: "HOOK_AWAITING_ACTION".into(),
            also: vec!["arn:aws:ecs:us-east-1:123456789012:service/prod/web".into()],
        },
    };
    // WHEN it is recorded
    let outcome = record_deployment_event(&store, &runner, &ecs, &ecs, &change, now()).await.expect("answered");
    // THEN it is not dropped as not sluice's: the runs deploying are asked about, and e1's pause is recorded
    assert_eq!(outcome, DeploymentEventOutcome::UnknownPause);
    let recorded = record_paused_deployments(&store, &runner, &ecs, now()).await.expect("asked");
    assert_eq!(recorded, 1);
    let run = store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run");
    let pauses = run.deploy().map(|d| d.pauses.clone()).unwrap_or_default();
    assert_eq!(
        pauses.iter().map(|p| (p.hook_id.as_str(), p.stage.as_str())).collect::<Vec<_>>(),
        [("pause-1", "PRE_PRODUCTION_TRAFFIC_SHIFT")]
    );
    // AND asked again, the pause already known is not recorded twice
    assert_eq!(record_paused_deployments(&store, &runner, &ecs, now()).await.expect("asked"), 0);
}

#[tokio::test]
async fn a_deployment_codedeploy_will_not_describe_to_sluice_is_answered_as_not_sluices_not_failed() {
    use crate::usecases::{DeploymentChange, DeploymentEventOutcome, DeploymentStateChange};
    let (store, runner, codedeploy) =
        (InMemoryStore::new(), RecordingRunner::new(), crate::contract::testing::RecordingDeployments::new());
    codedeploy.deny_reports();
    // GIVEN a failure of another application's deployment, which sluice may not look up
    let change = DeploymentStateChange {
        event_id: "e-theirs".into(),
        deployment_id: "d-THEIRS".into(),
        change: DeploymentChange::CodeDeploy { state: "FAILURE".into() },
    };
    // WHEN it is recorded, THEN it is answered (no error for Lambda to retry and dead-letter), and nothing changes
    let outcome = record_deployment_event(&store, &runner, &codedeploy, &codedeploy, &change, now()).await;
    assert_eq!(outcome.expect("answered"), DeploymentEventOutcome::NotOurs("not a deployment sluice started"));
    assert_eq!(codedeploy.asked(), 1);
    assert!(runner.ran().is_empty());
}

/// Run e1 of `web`, deploying CodeDeploy deployment d-1 blue/green, with one check at AfterAllowTestTraffic.
async fn deploying_d1_with_a_check(store: &InMemoryStore, runner: &RecordingRunner) {
    let check = crate::definitions::Check::new("AfterAllowTestTraffic", "http://web-test/health");
    let mut triggered = push("e1");
    if let Event::Triggered { plan, .. } = &mut triggered {
        *plan.target_mut() =
            crate::definitions::DeployTarget::BlueGreen(crate::contract::testing::blue_green(vec![check]));
    }
    built_and_deploying(store, runner, triggered, ("d-1", None)).await;
}

fn hook_call(deployment_id: &str, hook_execution_id: &str) -> crate::usecases::HookCall {
    crate::usecases::HookCall { deployment_id: deployment_id.into(), hook_execution_id: hook_execution_id.into() }
}

#[tokio::test]
async fn a_codedeploy_hook_runs_the_checks_of_the_event_waiting_and_its_answer_is_recorded_once_and_repeated() {
    use crate::pipeline::HookStatus;
    use crate::usecases::{HookOutcome, answer_hook};
    let (store, runner, codedeploy) =
        (InMemoryStore::new(), RecordingRunner::new(), crate::contract::testing::RecordingDeployments::new());
    let budget = std::time::Duration::from_secs(60);
    // GIVEN run e1 deploying d-1, where CodeDeploy waits at AfterAllowTestTraffic, and the test URL answers 200
    deploying_d1_with_a_check(&store, &runner).await;
    codedeploy.waiting("d-1", "AfterAllowTestTraffic");
    let probes = SetProbes::answering(200);
    // WHEN the hook is called
    let call = hook_call("d-1", "hook-1");
    let outcome = answer_hook(&store, &runner, &codedeploy, &probes, &call, budget, now()).await.expect("answered");
    // THEN the check ran once and passed, the run records it, and the answer goes out as the run's effect
    let HookOutcome::Checked { lifecycle_event, passed, handled } = outcome else { panic!("{outcome:?}") };
    assert_eq!((lifecycle_event.as_str(), passed, handled), ("AfterAllowTestTraffic", true, Handled::Applied));
    assert_eq!(probes.probed(), 1);
    let run = store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run");
    let hooks: Vec<(String, bool)> = run
        .deploy()
        .map(|d| d.hooks.iter().map(|h| (h.hook_execution_id.clone(), h.passed)).collect())
        .unwrap_or_default();
    assert_eq!(hooks, [("hook-1".to_owned(), true)]);
    let reported = runner.ran().into_iter().any(|(_, effect)| {
        matches!(effect, Effect::ReportHookStatus { ref hook_execution_id, status: HookStatus::Succeeded, .. }
            if hook_execution_id == "hook-1")
    });
    assert!(reported, "{:?}", runner.ran());
    assert!(codedeploy.answers().is_empty(), "{:?}", codedeploy.answers());
    // AND a second call of the same hook (CodeDeploy retrying its invocation) answers the same, checking nothing
    let again = answer_hook(&store, &runner, &codedeploy, &probes, &call, budget, now()).await.expect("answered");
    assert_eq!(again, HookOutcome::Repeated(HookStatus::Succeeded));
    assert_eq!(probes.probed(), 1);
    assert_eq!(codedeploy.answers(), [("d-1".to_owned(), "hook-1".to_owned(), HookStatus::Succeeded)]);
}

#[tokio::test]
async fn a_codedeploy_hook_of_a_deployment_no_run_started_is_answered_failed_and_checks_nothing() {
    use crate::pipeline::HookStatus;
    use crate::usecases::{HookOutcome, answer_hook};
    let (store, runner, codedeploy) =
        (InMemoryStore::new(), RecordingRunner::new(), crate::contract::testing::RecordingDeployments::new());
    // GIVEN run e1 deploying d-1, and a hook call for d-9, which CodeDeploy knows of no sluice run's
    deploying_d1_with_a_check(&store, &runner).await;
    codedeploy.waiting("d-9", "AfterAllowTestTraffic");
    let probes = SetProbes::answering(200);
    let before = runner.ran().len();
    // WHEN it is called, THEN it is answered Failed, no check runs, and run e1 is as it was
    let call = hook_call("d-9", "hook-9");
    let budget = std::time::Duration::from_secs(60);
    let outcome = answer_hook(&store, &runner, &codedeploy, &probes, &call, budget, now()).await.expect("answered");
    assert_eq!(outcome, HookOutcome::NotOurs);
    assert_eq!(codedeploy.answers(), [("d-9".to_owned(), "hook-9".to_owned(), HookStatus::Failed)]);
    assert_eq!(probes.probed(), 0);
    assert_eq!(runner.ran().len(), before);
    let run = store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run");
    assert!(run.deploy().is_some_and(|d| d.hooks.is_empty()));
}

/// Run e1's start of a rolling update of prod/web with its built image, its soak watched by `alarms`.
fn rolling_start(alarms: &[&str]) -> Effect {
    Effect::StartDeployment {
        execution_id: ExecutionId::from("e1"),
        pipeline: "web".into(),
        supersede: false,
        stage: crate::pipeline::Stage::DEPLOY,
        target: crate::definitions::DeployTarget::Rolling(crate::contract::testing::rolling(Vec::new())),
        image_uri: Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:e1".into()),
        artifacts: Some("s3://builds/e1".into()),
        soak_alarms: alarms.iter().map(|name| (*name).to_owned()).collect(),
        entry: None,
    }
}

/// As [`rolling_start`], its stage's gate `gate`.
fn gated_start(alarms: &[&str], gate: crate::pipeline::EntryGate) -> Effect {
    let mut start = rolling_start(alarms);
    if let Effect::StartDeployment { entry, .. } = &mut start {
        *entry = Some(gate);
    }
    start
}

/// The deployer's effects on recording twins, reading the build's files from `artifacts`.
fn recording_deploy_effects(
    artifacts: crate::contract::testing::InMemoryArtifacts,
) -> crate::usecases::DeployEffects<
    crate::contract::testing::RecordingPublisher,
    crate::contract::testing::InMemoryArtifacts,
    crate::contract::testing::RecordingTaskDefinitions,
    crate::contract::testing::RecordingDeployments,
    crate::contract::testing::RecordingDeployments,
    InMemoryStore,
    crate::contract::testing::ScriptedAlarms,
> {
    use crate::contract::testing::{
        RecordingDeployments, RecordingPublisher, RecordingTaskDefinitions, ScriptedAlarms,
    };
    crate::usecases::DeployEffects {
        publisher: RecordingPublisher::new(),
        artifacts,
        task_definitions: RecordingTaskDefinitions::new(),
        blue_green: RecordingDeployments::new(),
        ecs: RecordingDeployments::new(),
        hooks_function: None,
        hook_role: None,
        supersessions: InMemoryStore::new(),
        alarms: ScriptedAlarms::new(),
        clock: now,
    }
}

#[tokio::test]
async fn a_rolling_start_registers_the_built_image_once_and_updates_the_service_to_it_even_when_retried() {
    use crate::contract::testing::InMemoryArtifacts;
    // GIVEN a build that left the sample app's taskdef.json, and a rolling update of prod/web
    let artifacts = InMemoryArtifacts::new();
    artifacts.put("builds", "e1/taskdef.json", include_str!("../../../infra/sample-app/taskdef.json"));
    let effects = recording_deploy_effects(artifacts);
    let effect = rolling_start(&[]);
    // WHEN the deployer carries it out
    let started = effects.run("effect-1", &effect).await.expect("started");
    // THEN the task definition is registered with the built image, and the service updated to it
    let registered = effects.task_definitions.registered();
    assert_eq!(registered.len(), 1);
    let (arn, definition) = &registered[0];
    assert_eq!(definition.container_definitions[0].image, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:e1");
    let updates = effects.ecs.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!((updates[0].service.as_str(), &updates[0].task_definition_arn), ("web", arn));
    let Some(Event::DeploymentStarted { deployment_id, task_definition, .. }) = started else { panic!("{started:?}") };
    assert_eq!((deployment_id.as_str(), task_definition.as_ref()), ("ecs-svc/1", Some(arn)));
    // AND a retry of the same effect finds the revision it registered: nothing new is registered
    effects.run("effect-1", &effect).await.expect("started again");
    assert_eq!(effects.task_definitions.registered().len(), 1);
    assert_eq!(effects.ecs.updates().last().map(|update| &update.task_definition_arn), Some(arn));
}

#[tokio::test]
async fn a_start_reads_the_soaks_alarms_first_and_one_that_does_not_exist_or_cannot_be_read_stops_it() {
    use crate::contract::testing::{InMemoryArtifacts, ScriptedAlarms};
    use crate::usecases::DeployEffects;
    let artifacts = InMemoryArtifacts::new();
    artifacts.put("builds", "e1/taskdef.json", include_str!("../../../infra/sample-app/taskdef.json"));
    let effects = recording_deploy_effects(artifacts);
    effects.alarms.alarm("web-5xx", true, "Threshold Crossed");
    effects.alarms.alarm("web-latency", false, "ok");
    let start = rolling_start;
    // Both exist: the one in ALARM is told with the start
    let started = effects.run("effect-1", &start(&["web-5xx", "web-latency"])).await.expect("started");
    let Some(Event::DeploymentStarted { in_alarm, .. }) = started else { panic!("{started:?}") };
    assert_eq!(in_alarm, Some(vec!["web-5xx".to_owned()]));
    // One CloudWatch has not: nothing is deployed, and the run fails saying which
    let updates = effects.ecs.updates().len();
    let missing = effects.run("effect-2", &start(&["web-5xx", "web-errors"])).await.expect("answered");
    let Some(Event::DeploymentFailed { reason, .. }) = missing else { panic!("{missing:?}") };
    assert_eq!(
        reason,
        "the deployment could not start: CloudWatch has no metric alarm web-errors: an alarm that does not exist \
         watches nothing (soak_alarms)"
    );
    assert_eq!(effects.ecs.updates().len(), updates);
    // CloudWatch refuses: the run fails naming the stack parameter; unreachable: the effect is tried again
    effects.alarms.refuse();
    let refused = effects.run("effect-3", &start(&["web-5xx"])).await.expect("answered");
    let Some(Event::DeploymentFailed { reason, .. }) = refused else { panic!("{refused:?}") };
    assert!(reason.contains("the stack's SoakAlarms pattern must match web-5xx"), "{reason}");
    let unreachable = ScriptedAlarms::new();
    unreachable.unreachable();
    let effects = DeployEffects { alarms: unreachable, ..effects };
    assert!(effects.run("effect-4", &start(&["web-5xx"])).await.is_err());
}

#[tokio::test]
async fn a_start_waits_while_an_entry_alarm_is_in_alarm_reading_them_with_the_soaks_and_fails_naming_it_at_the_timeout()
{
    use crate::contract::testing::InMemoryArtifacts;
    use crate::pipeline::EntryGate;
    let artifacts = InMemoryArtifacts::new();
    artifacts.put("builds", "e1/taskdef.json", include_str!("../../../infra/sample-app/taskdef.json"));
    let effects = recording_deploy_effects(artifacts);
    effects.alarms.alarm("web-5xx", true, "Threshold Crossed");
    effects.alarms.alarm("web-latency", false, "ok");
    let gated = |alarms: &[&str], until: DateTime<Utc>| {
        let alarms = alarms.iter().map(|name| (*name).to_owned()).collect();
        gated_start(&["web-latency"], EntryGate { alarms, until, calendar: None })
    };
    // GIVEN web-5xx in ALARM: the start waits (no failed attempt), saying for what and until when; nothing deploys
    let waiting = effects.run("effect-1", &gated(&["web-5xx", "web-latency"], now() + TimeDelta::minutes(30))).await;
    let error = waiting.expect_err("waits");
    assert!(error.waits && !error.permanent, "{error:?}");
    assert_eq!(
        error.source.to_string(),
        "alarm web-5xx to leave ALARM (entry_alarms), until 2026-11-23 12:30 UTC, when the run fails"
    );
    assert_eq!((effects.ecs.updates().len(), effects.alarms.reads()), (0, 1), "one read for the soak's and entry's");
    // An entry alarm CloudWatch does not have fails the run at once, naming the field
    let missing = effects.run("effect-2", &gated(&["web-errors"], now() + TimeDelta::minutes(30))).await;
    let Some(Event::DeploymentFailed { reason, .. }) = missing.expect("answered") else { panic!("a failure") };
    assert!(
        reason.ends_with(
            "CloudWatch has no metric alarm web-errors: an alarm that does not exist watches nothing (entry_alarms)"
        ),
        "{reason}"
    );
    // Past the gate's time, still in ALARM: the run fails naming it, and nothing deployed
    let late = effects.run("effect-1", &gated(&["web-5xx"], now())).await.expect("answered");
    let Some(Event::DeploymentFailed { reason, deployment_id: None, rolled_back: false, .. }) = late else {
        panic!("{late:?}")
    };
    assert_eq!(
        reason,
        "the deployment could not start: alarm web-5xx still in ALARM at 2026-11-23 12:00 UTC, past the stage's \
         entry_timeout (it ran out at 2026-11-23 12:00 UTC; entry_alarms)"
    );
    assert_eq!(effects.ecs.updates().len(), 0);
    // Once it is OK, the deployment starts, its soak's alarm read in the same call
    effects.alarms.alarm("web-5xx", false, "ok");
    let started = effects.run("effect-1", &gated(&["web-5xx"], now() + TimeDelta::minutes(30))).await.expect("started");
    let Some(Event::DeploymentStarted { in_alarm, .. }) = started else { panic!("{started:?}") };
    assert_eq!(in_alarm, Some(Vec::new()));
    assert_eq!((effects.ecs.updates().len(), effects.alarms.reads()), (1, 4));
}

#[tokio::test]
async fn a_start_outside_its_stages_windows_waits_until_the_next_opens_and_one_that_never_opens_fails() {
    use crate::contract::testing::InMemoryArtifacts;
    use crate::definitions::calendar::{days, hours};
    use crate::definitions::{Calendar, Window};
    use crate::pipeline::EntryGate;
    let artifacts = InMemoryArtifacts::new();
    artifacts.put("builds", "e1/taskdef.json", include_str!("../../../infra/sample-app/taskdef.json"));
    let effects = recording_deploy_effects(artifacts);
    effects.alarms.alarm("web-5xx", false, "ok");
    let gated = |timezone: &str| {
        let (from, to) = hours("09:00-16:00").expect("hours");
        let window = Window { days: days("sat,sun").expect("days"), from, to, timezone: timezone.into() };
        let calendar = Some(Calendar { windows: vec![window], deny: Vec::new() });
        gated_start(&[], EntryGate { alarms: vec!["web-5xx".into()], until: now(), calendar })
    };
    // GIVEN a stage open on weekends from 09:00 in Berlin, on a Monday: the start waits for Saturday 09:00, telling
    // why; neither CloudWatch nor ECS is asked anything
    let waiting = effects.run("effect-1", &gated("Europe/Berlin")).await.expect_err("waits");
    assert!(waiting.waits, "{waiting:?}");
    let saturday = Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).single().expect("a time");
    assert_eq!(waiting.not_before, Some(saturday));
    assert_eq!(
        waiting.source.to_string(),
        "the window opening Sat 2026-11-28 09:00 Europe/Berlin (outside sat,sun 09:00-16:00 Europe/Berlin)"
    );
    assert_eq!((effects.alarms.reads(), effects.ecs.updates().len()), (0, 0));
    // The outbox tries it again then, not before
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    state.enqueue(vec![gated("Europe/Berlin")], 1);
    let outcome = super::engine::Outcome { pending: state.pending[0].clone(), result: Err(waiting) };
    super::engine::apply_outcomes(&mut state, &[outcome], 2, now());
    assert_eq!((state.pending[0].not_before, state.pending[0].attempts), (Some(saturday), 0));
    // A zone the database does not know never opens: the run fails saying so, nothing deployed
    let never = effects.run("effect-2", &gated("Europe/Atlantis")).await.expect("answered");
    let Some(Event::DeploymentFailed { reason, .. }) = never else { panic!("{never:?}") };
    assert!(reason.starts_with("the deployment could not start: the stage is closed: the time zones' database has no time zone \"Europe/Atlantis\""), "{reason}");
    assert_eq!(effects.ecs.updates().len(), 0);
}

#[test]
fn a_start_failed_at_its_gate_while_an_operator_let_the_run_through_is_tried_again_without_the_gate() {
    use crate::pipeline::EntryGate;
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    let gate = EntryGate { alarms: vec!["web-5xx".into()], until: now(), calendar: None };
    state.enqueue(vec![gated_start(&[], gate)], 1);
    let tried = state.pending[0].clone();
    // The override lifts the gate while the deployer tries the start, which finds the entry timeout passed
    if let Effect::StartDeployment { entry, .. } = &mut state.pending[0].effect {
        *entry = None;
    }
    let failed = Event::DeploymentFailed {
        execution_id: ExecutionId::from("e1"),
        deployment_id: None,
        reason: "the deployment could not start: alarm web-5xx still in ALARM".into(),
        rolled_back: false,
    };
    let outcome = super::engine::Outcome { pending: tried, result: Ok(Some(failed)) };
    super::engine::apply_outcomes(&mut state, &[outcome], 2, now());
    // The start stays, released, without its gate: the failure does not count
    assert_eq!(state.pending.len(), 1);
    assert!(matches!(&state.pending[0].effect, Effect::StartDeployment { entry: None, .. }));
    assert_eq!((state.pending[0].lease.clone(), state.pending[0].not_before), (None, None));
}

#[test]
fn an_effect_that_waits_is_tried_again_later_without_counting_a_failed_attempt() {
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    state.enqueue(vec![rolling_start(&[])], 1);
    let id = state.pending[0].id.clone();
    let outcome = super::engine::Outcome {
        pending: state.pending[0].clone(),
        result: Err(crate::usecases::EffectError::waiting("start_deployment", "alarm web-5xx in ALARM")),
    };
    assert!(super::engine::apply_outcomes(&mut state, &[outcome], 2, now()).is_empty());
    let pending = &state.pending[0];
    assert_eq!(pending.id, id);
    assert_eq!(pending.attempts, 0);
    assert_eq!(pending.last_error.as_deref(), Some("alarm web-5xx in ALARM"));
    assert_eq!(pending.not_before, Some(now() + crate::pipeline::outbox::WAIT));
}

/// The notifier's GitHub reports of runs in `store`, to a recording GitHub, with a token.
fn github_effects(
    store: &std::sync::Arc<InMemoryStore>,
) -> crate::usecases::GitHubEffects<
    std::sync::Arc<InMemoryStore>,
    crate::contract::testing::RecordingGitHub,
    crate::contract::testing::FixedSecret,
> {
    crate::usecases::GitHubEffects {
        store: store.clone(),
        github: crate::contract::testing::RecordingGitHub::new(),
        credentials: Some(crate::usecases::KeptSecret::new(crate::contract::testing::FixedSecret(
            "github_pat_0123456789".into(),
        ))),
        pages: None,
    }
}

#[tokio::test]
async fn a_run_shown_on_github_gets_its_commit_status_and_one_deployment_however_often_the_report_is_tried() {
    let (store, runner) = (std::sync::Arc::new(InMemoryStore::new()), RecordingRunner::new());
    // GIVEN run e1 of a pipeline shown on GitHub as environment production, deploying d-1
    let mut triggered = push("e1");
    if let Event::Triggered { plan, .. } = &mut triggered {
        plan.github = Some(crate::definitions::GitHubReport { environment: "production".into() });
    }
    built_and_deploying(&store, &runner, triggered, ("d-1", None)).await;
    let effects = github_effects(&store);
    // WHEN its report is carried out, THEN its commit has a pending status and it has one Deployment, in progress
    let report = Effect::ReportToGitHub { execution_id: ExecutionId::from("e1") };
    let event = effects.report(&report).await.expect("reported");
    assert_eq!(
        event,
        Some(Event::GitHubDeploymentCreated {
            execution_id: ExecutionId::from("e1"),
            deployment: 1,
            stage: Some(crate::pipeline::Stage::DEPLOY)
        })
    );
    let statuses = effects.github.statuses();
    assert_eq!(statuses.len(), 1);
    assert_eq!((statuses[0].0.as_str(), statuses[0].1.as_str()), ("acme/web", "sha-e1"));
    assert_eq!((statuses[0].2.as_str(), statuses[0].3.as_str()), ("pending", "sluice/web"));
    assert_eq!(effects.github.deployments(), [("acme/web".to_owned(), "production".to_owned(), "e1".to_owned())]);
    assert_eq!(effects.github.deployment_states(), [(1, "in_progress".to_owned())]);
    // AND the report tried again before the run recorded its Deployment finds it: no second one is made
    effects.report(&report).await.expect("reported again");
    assert_eq!(effects.github.deployments().len(), 1);
    assert_eq!(effects.github.deployment_states().last(), Some(&(1, "in_progress".to_owned())));
}

/// Run `id` of the example's `shop`, pushed at `minute`: built, staging deployed, checked and soaked (30 minutes),
/// tested (e2e), signed off, production deployed: shipped.
async fn shipped_in_stages(store: &InMemoryStore, runner: &RecordingRunner, id: &str, minute: i64) {
    shipped_in_stages_with(store, runner, (id, minute), |_| {}).await;
}

/// As [`shipped_in_stages`], its plan changed by `adjust` first.
async fn shipped_in_stages_with(
    store: &InMemoryStore,
    runner: &RecordingRunner,
    (id, minute): (&str, i64),
    adjust: impl Fn(&mut crate::pipeline::Plan),
) {
    in_stages_up_to(store, runner, (id, minute), adjust, usize::MAX).await;
}

/// The example shop's e2e tests of run `id` passed.
fn e2e_passed(id: &ExecutionId) -> Event {
    Event::TestEnded {
        execution_id: id.clone(),
        stage: crate::pipeline::Stage::new("e2e").expect("a stage name"),
        build_id: Some(format!("e2e-{id}")),
        passed: true,
        reason: None,
        results: None,
        detail: None,
    }
}

/// Ada's approval of run `id`, from its page.
pub(super) fn approved_by_ada(id: &ExecutionId) -> Event {
    Event::ApprovalDecided {
        execution_id: id.clone(),
        decision: crate::pipeline::ApprovalDecision::Approved,
        approver: "ada".into(),
        comment: None,
        token_hash: None,
        source_ip: None,
        user_agent: None,
    }
}

/// Applies `event` to pipeline `pipeline` at `at`: it must change the state.
async fn handled(store: &InMemoryStore, runner: &RecordingRunner, pipeline: &str, event: &Event, at: DateTime<Utc>) {
    let input = Input { pipeline, mode: ExecutionMode::Queued, event, receipt: None, now: at };
    assert_eq!(handle(store, runner, input).await.expect("handled"), Handled::Applied, "{}", event.name());
}

/// As [`shipped_in_stages_with`], only the first `steps` of its events: 3 leaves the run deploying to staging, 7
/// with production's deployment requested.
async fn in_stages_up_to(
    store: &InMemoryStore,
    runner: &RecordingRunner,
    (id, minute): (&str, i64),
    adjust: impl Fn(&mut crate::pipeline::Plan),
    steps: usize,
) {
    let definitions =
        crate::definitions::Definitions::parse("example", include_str!("../../../infra/pipelines.example.toml"))
            .expect("the example");
    let shop = definitions.get("shop").expect("the example's shop");
    let execution_id = ExecutionId::from(id);
    let Event::Triggered { source, .. } = crate::contract::testing::push(id, ExecutionMode::Queued, false) else {
        panic!("a push")
    };
    let mut plan = crate::pipeline::Plan::from(shop);
    adjust(&mut plan);
    let triggered = Event::Triggered {
        execution_id: execution_id.clone(),
        source,
        plan: Box::new(plan),
        mode: ExecutionMode::Queued,
        ordered: None,
    };
    let outputs = crate::pipeline::BuildOutputs { image_uri: format!("shop@sha256:{id}"), artifacts: None };
    let build_id = format!("build-{id}");
    let deployed = |deployment: String| Event::DeploymentSucceeded {
        execution_id: execution_id.clone(),
        deployment_id: deployment,
        tasks: None,
    };
    let events = [
        (0, triggered),
        (1, Event::BuildSucceeded { execution_id: execution_id.clone(), build_id, outputs }),
        (2, deployed(format!("staging-{id}"))),
        (
            2,
            Event::HookCompleted {
                execution_id: execution_id.clone(),
                deployment_id: format!("staging-{id}"),
                lifecycle_event: "AfterRollout".into(),
                hook_execution_id: format!("after-rollout-{id}"),
                passed: true,
                detail: None,
                millis: None,
            },
        ),
        (32, Event::SoakEnded { execution_id: execution_id.clone() }),
        (32, e2e_passed(&execution_id)),
        (33, approved_by_ada(&execution_id)),
        (34, deployed(format!("production-{id}"))),
    ];
    for (at, event) in events.iter().take(steps) {
        handled(store, runner, "shop", event, now() + TimeDelta::minutes(minute + at)).await;
    }
}

#[tokio::test]
async fn a_rollback_of_one_stage_deploys_the_earlier_release_there_alone() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    published(&store).await;
    shipped_in_stages(&store, &runner, "s1", 0).await;
    shipped_in_stages(&store, &runner, "s2", 60).await;
    let staging = Stage::new("staging").expect("a stage name");
    assert_eq!(
        store.execution(&ExecutionId::from("s2")).await.ok().flatten().map(|run| run.status),
        Some(Status::Succeeded)
    );

    let order = Order::RollbackTo { pipeline: "shop", to: None, stage: Some(staging) };
    let ordered = order_run(&store, &runner, order, "carol", now() + TimeDelta::minutes(200)).await.expect("ordered");
    assert_eq!((ordered.of.0.as_str(), ordered.redeploys), ("s1", true));
    assert_eq!(ordered.status, Status::Running(staging));
    let id = ordered.execution_id.clone();
    let run = store.execution(&id).await.ok().flatten().expect("the new run");
    assert_eq!(run.ordered.as_deref(), Some("rollback of staging to run #1 (s1) by carol"));
    assert_eq!(run.build.as_ref().map(|b| b.image_uri.as_deref()), Some(Some("shop@sha256:s1")));

    // Once staging's deployment succeeds, the run ends there: no soak, no sign-off, production untouched
    let done =
        Event::DeploymentSucceeded { execution_id: id.clone(), deployment_id: "staging-rollback".into(), tasks: None };
    let checked = Event::HookCompleted {
        execution_id: id.clone(),
        deployment_id: "staging-rollback".into(),
        lifecycle_event: "AfterRollout".into(),
        hook_execution_id: "after-rollout".into(),
        passed: true,
        detail: None,
        millis: None,
    };
    for event in [&done, &checked] {
        let at = now() + TimeDelta::minutes(201);
        let input = Input { pipeline: "shop", mode: ExecutionMode::Queued, event, receipt: None, now: at };
        assert_eq!(handle(&store, &runner, input).await.expect("handled"), Handled::Applied, "{}", event.name());
    }
    let run = store.execution(&id).await.ok().flatten().expect("the new run");
    assert_eq!(run.status, Status::Succeeded);
    let stages: Vec<&str> = run.stages.iter().map(|record| record.name.as_str()).collect();
    assert_eq!(stages, ["staging"]);

    // A stage the pipeline does not deploy, or a run that never got past it, is refused
    let order = Order::RollbackTo { pipeline: "shop", to: None, stage: Stage::new("sign-off") };
    let refused = order_run(&store, &runner, order, "carol", now()).await;
    assert!(matches!(refused, Err(OrderError::UnknownStage { .. })), "{refused:?}");
}

/// Run `id` of the example's `shop`: its deployment failed, at `minute`, without a rollback.
async fn deployment_failed(store: &InMemoryStore, runner: &RecordingRunner, id: &ExecutionId, minute: i64) {
    let failed = Event::DeploymentFailed {
        execution_id: id.clone(),
        deployment_id: None,
        reason: "the service did not stabilize".into(),
        rolled_back: false,
    };
    let at = now() + TimeDelta::minutes(minute);
    let input = Input { pipeline: "shop", mode: ExecutionMode::Queued, event: &failed, receipt: None, now: at };
    assert_eq!(handle(store, runner, input).await.expect("handled"), Handled::Applied);
}

#[tokio::test]
async fn a_retry_of_a_failed_rollback_of_one_stage_deploys_there_alone_again() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    published(&store).await;
    shipped_in_stages(&store, &runner, "s1", 0).await;
    shipped_in_stages(&store, &runner, "s2", 60).await;
    let staging = Stage::new("staging").expect("a stage name");
    let order = Order::RollbackTo { pipeline: "shop", to: None, stage: Some(staging) };
    let ordered = order_run(&store, &runner, order, "carol", now() + TimeDelta::minutes(200)).await.expect("ordered");
    deployment_failed(&store, &runner, &ordered.execution_id, 201).await;

    let order = Order::Retry { run: &ordered.execution_id.0 };
    let retried = order_run(&store, &runner, order, "carol", now() + TimeDelta::minutes(202)).await.expect("retried");
    assert!(retried.redeploys, "the retry deploys the same build");
    assert_eq!(retried.status, Status::Running(staging));
    let run = store.execution(&retried.execution_id).await.ok().flatten().expect("the retry");
    assert_eq!(run.only, Some(staging));
    assert_eq!(run.build.as_ref().map(|b| b.image_uri.as_deref()), Some(Some("shop@sha256:s1")));

    // Once the pipeline no longer deploys to that stage, a retry of such a run is refused, naming the stage
    deployment_failed(&store, &runner, &retried.execution_id, 203).await;
    let renamed =
        include_str!("../../../infra/pipelines.example.toml").replace("name = \"staging\"", "name = \"preprod\"");
    crate::contract::ports::DefinitionsStore::publish(&store, &renamed, Some(1), now()).await.expect("published");
    let order = Order::Retry { run: &retried.execution_id.0 };
    let refused = order_run(&store, &runner, order, "carol", now() + TimeDelta::minutes(204)).await;
    assert!(matches!(refused, Err(OrderError::UnknownStage { stage, .. }) if stage == staging), "{refused:?}");
}

#[tokio::test]
async fn a_codedeploy_hook_of_a_run_that_has_ended_is_answered_failed_and_checks_nothing() {
    use crate::pipeline::HookStatus;
    use crate::usecases::{HookOutcome, answer_hook};
    let (store, runner, codedeploy) =
        (InMemoryStore::new(), RecordingRunner::new(), crate::contract::testing::RecordingDeployments::new());
    // GIVEN run e1 deploying d-1, which ends failed (its deployment timed out, say) while CodeDeploy still calls a hook
    deploying_d1_with_a_check(&store, &runner).await;
    let failed = Event::DeploymentFailed {
        execution_id: ExecutionId::from("e1"),
        deployment_id: Some("d-1".into()),
        reason: "the deployment did not finish in time".into(),
        rolled_back: false,
    };
    let input = Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &failed, receipt: None, now: now() };
    assert_eq!(handle(&store, &runner, input).await.expect("handled"), Handled::Applied);
    codedeploy.waiting("d-1", "AfterAllowTestTraffic");
    let probes = SetProbes::answering(200);
    // WHEN the hook is called THEN it is answered Failed at once, nothing is checked and the record stays final
    let call = hook_call("d-1", "hook-late");
    let budget = std::time::Duration::from_secs(60);
    let outcome = answer_hook(&store, &runner, &codedeploy, &probes, &call, budget, now()).await.expect("answered");
    assert_eq!(outcome, HookOutcome::Ended(Status::Failed));
    assert_eq!(codedeploy.answers(), [("d-1".to_owned(), "hook-late".to_owned(), HookStatus::Failed)]);
    assert_eq!(probes.probed(), 0);
}

#[tokio::test]
async fn a_rollback_while_the_furthest_run_soaks_stops_nothing_so_the_release_before_is_deployed_instead() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    published(&store).await;
    shipped_in_stages(&store, &runner, "s1", 0).await;
    // GIVEN s2 deployed to staging, its AfterRollout check passed: it soaks there for 30 minutes
    let definitions =
        crate::definitions::Definitions::parse("example", include_str!("../../../infra/pipelines.example.toml"))
            .expect("the example");
    let shop = definitions.get("shop").expect("the example's shop");
    let Event::Triggered { source, .. } = crate::contract::testing::push("s2", ExecutionMode::Queued, false) else {
        panic!("a push")
    };
    let id = ExecutionId::from("s2");
    let events = [
        Event::Triggered {
            execution_id: id.clone(),
            source,
            plan: Box::new(crate::pipeline::Plan::from(shop)),
            mode: ExecutionMode::Queued,
            ordered: None,
        },
        Event::BuildSucceeded {
            execution_id: id.clone(),
            build_id: "build-s2".into(),
            outputs: crate::pipeline::BuildOutputs { image_uri: "shop@sha256:s2".into(), artifacts: None },
        },
        Event::DeploymentSucceeded { execution_id: id.clone(), deployment_id: "staging-s2".into(), tasks: None },
        Event::HookCompleted {
            execution_id: id.clone(),
            deployment_id: "staging-s2".into(),
            lifecycle_event: "AfterRollout".into(),
            hook_execution_id: "after-rollout-s2".into(),
            passed: true,
            detail: None,
            millis: None,
        },
    ];
    for event in &events {
        let at = now() + TimeDelta::minutes(100);
        let input = Input { pipeline: "shop", mode: ExecutionMode::Queued, event, receipt: None, now: at };
        assert_eq!(handle(&store, &runner, input).await.expect("handled"), Handled::Applied, "{}", event.name());
    }
    let s2 = store.execution(&id).await.ok().flatten().expect("s2");
    assert!(s2.soaking().is_some(), "{:?}", s2.status);
    // WHEN an operator orders a rollback, of the pipeline or of staging THEN there is nothing to stop
    for stage in [None, Stage::new("staging")] {
        let ordered =
            crate::usecases::order_rollback(&store, &runner, ("shop", stage), "carol", now() + TimeDelta::minutes(101))
                .await;
        assert!(matches!(ordered, Err(crate::usecases::RollbackError::NothingDeploying(_))), "{ordered:?}");
    }
}

#[tokio::test]
async fn a_rollback_stops_the_deployment_furthest_along_the_line_unless_told_which_stage() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::owning(&[]));
    // GIVEN staging deployed as production is (an ECS canary, no soak): s2 deploying to production, s3 (newer) to
    // staging
    let canary = |plan: &mut crate::pipeline::Plan| {
        let production = Stage::new("production").and_then(|stage| plan.deploy_stage(stage)).expect("production");
        let production = production.clone();
        if let Some(staging) = plan.stages.iter_mut().find(|stage| stage.name.as_str() == "staging") {
            staging.kind = crate::definitions::StageKind::Deploy(Box::new(production));
        }
    };
    let started = |id: &str, stage: &str| Event::DeploymentStarted {
        execution_id: ExecutionId::from(id),
        deployment_id: format!("{stage}-{id}"),
        service_deployment: Some(format!("arn:aws:ecs:eu-west-1:123456789012:service-deployment/{stage}/{id}")),
        task_definition: None,
        previous_task_definition: None,
        in_alarm: None,
    };
    in_stages_up_to(&store, &runner, ("s2", 0), canary, 2).await;
    handled(&store, &runner, "shop", &started("s2", "staging"), now() + TimeDelta::minutes(2)).await;
    for (at, event) in [
        (
            3,
            Event::DeploymentSucceeded {
                execution_id: ExecutionId::from("s2"),
                deployment_id: "staging-s2".into(),
                tasks: None,
            },
        ),
        (33, e2e_passed(&ExecutionId::from("s2"))),
        (34, approved_by_ada(&ExecutionId::from("s2"))),
        (35, started("s2", "production")),
    ] {
        handled(&store, &runner, "shop", &event, now() + TimeDelta::minutes(at)).await;
    }
    in_stages_up_to(&store, &runner, ("s3", 36), canary, 2).await;
    handled(&store, &runner, "shop", &started("s3", "staging"), now() + TimeDelta::minutes(38)).await;
    let stops = RecordingRunner::owning(&[EffectKind::StopDeployment]);
    // WHEN an operator orders a rollback of the pipeline THEN production's deployment is stopped, not staging's
    let order_rollback = crate::usecases::order_rollback;
    let ordered = order_rollback(&store, &stops, ("shop", None), "carol", now() + TimeDelta::minutes(39)).await;
    let ordered = ordered.expect("ordered");
    assert_eq!(ordered.execution_id, ExecutionId::from("s2"));
    assert!(ordered.deployment.ends_with("service-deployment/production/s2"), "{}", ordered.deployment);
    // AND one of staging stops staging's, that of the newer run
    let ordered =
        order_rollback(&store, &stops, ("shop", Stage::new("staging")), "carol", now() + TimeDelta::minutes(40)).await;
    let ordered = ordered.expect("ordered");
    assert_eq!(ordered.execution_id, ExecutionId::from("s3"));
    assert!(ordered.deployment.ends_with("service-deployment/staging/s3"), "{}", ordered.deployment);
    assert_eq!(stops.ran().len(), 2, "both stops were made: {:?}", stops.ran());
}

#[tokio::test]
async fn a_run_that_ended_before_github_was_told_gets_a_deployment_for_every_stage_in_one_report() {
    let (store, runner) = (std::sync::Arc::new(InMemoryStore::new()), RecordingRunner::new());
    // GIVEN s1 shipped through staging and production while GitHub was not told (it was down, say)
    let shown = |plan: &mut crate::pipeline::Plan| {
        plan.github = Some(crate::definitions::GitHubReport { environment: "shop".into() });
    };
    shipped_in_stages_with(&store, &runner, ("s1", 0), shown).await;
    let effects = github_effects(&store);
    // WHEN its report is carried out THEN each deploy stage gets its Deployment, shown successful, at once: nothing
    // asks for another report of a run that has ended
    let report = Effect::ReportToGitHub { execution_id: ExecutionId::from("s1") };
    effects.report(&report).await.expect("reported");
    let environments: Vec<String> =
        effects.github.deployments().into_iter().map(|(_, environment, _)| environment).collect();
    assert_eq!(environments, ["staging", "production"]);
    assert_eq!(effects.github.deployment_states(), [(1, "success".to_owned()), (2, "success".to_owned())]);
    // AND a report tried again finds them: no second ones
    effects.report(&report).await.expect("reported again");
    assert_eq!(effects.github.deployments().len(), 2);
}

#[tokio::test]
async fn a_run_that_pauses_often_keeps_its_newest_pauses_and_writes_each_older_batch_apart_once() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let hashes: Vec<String> = (1..=24).map(|k| format!("{k:f>64}")).collect();
    let events = crate::contract::testing::through_a_paused_staging("e1", &hashes);
    for (minute, event) in events.iter().enumerate() {
        let at = now() + TimeDelta::minutes(minute as i64);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event, receipt: None, now: at };
        let handled = handle(&store, &runner, input).await;
        assert!(matches!(handled, Ok(Handled::Applied)), "{}: {handled:?}", event.name());
        // Neither the pipeline's item nor the run's ever holds more than twice the pauses kept
        let item = store.execution(&ExecutionId::from("e1")).await.expect("read").expect("e1");
        let state = stored(&store).await;
        let copy = state.execution(&ExecutionId::from("e1")).expect("e1");
        assert!(item.pauses().count() <= 2 * crate::pipeline::KEPT_PAUSES, "{}", event.name());
        assert!(copy.pauses().count() <= 2 * crate::pipeline::KEPT_PAUSES, "{}", event.name());
    }
    // Each batch was written once, and the run reads back whole, in order
    let (batches, writes) = store.batches_apart(&ExecutionId::from("e1"));
    assert!(batches > 2, "{batches} batches");
    assert_eq!(writes, batches);
    let whole = store.whole(&ExecutionId::from("e1")).await.expect("read").expect("e1");
    let hooks: Vec<String> = whole.pauses().map(|pause| pause.hook_id.clone()).collect();
    let expected: Vec<String> = (0..=hashes.len()).map(|n| format!("pause-{n}")).collect();
    assert_eq!(hooks, expected);
    assert!(!whole.has_pauses_apart());
}

#[tokio::test]
async fn a_runs_own_item_is_written_when_it_moves_to_another_stage_and_read_from_the_pipeline_in_between() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let id = ExecutionId::from("e1");
    let pushed = push("e1");
    handle(&store, &runner, input(&pushed, None)).await.expect("pushed");
    // GIVEN the build started: a fact of the stage the run is at
    let started = Event::BuildStarted { execution_id: id.clone(), build_id: "build-e1".into() };
    handle(&store, &runner, input(&started, None)).await.expect("started");
    // THEN the run's own item is as it was, and the run as read and as listed has the build
    let build_id = |run: &crate::pipeline::Execution| run.build.as_ref().and_then(|build| build.build_id.clone());
    assert_eq!(store.run_item(&id).as_ref().and_then(build_id), None);
    let run = store.execution(&id).await.expect("read").expect("e1");
    assert_eq!(build_id(&run).as_deref(), Some("build-e1"));
    let listed = store.history("web", 1).await.expect("history");
    assert_eq!(listed, [run]);
    // WHEN it ends THEN its own item is its whole record
    let failed = crate::contract::testing::build_failed("e1");
    handle(&store, &runner, input(&failed, None)).await.expect("failed");
    let item = store.run_item(&id).expect("e1's item");
    assert_eq!((item.status, build_id(&item).as_deref()), (Status::Failed, Some("build-e1")));
    assert_eq!(store.execution(&id).await.expect("read"), Some(item.clone()));
    assert_eq!(store.history("web", 1).await.expect("history"), [item]);
}

/// Run e1 of pipeline web in stages `smoke` (a test stage of one check expecting the release's commit) and
/// `production`, built: it holds smoke, its checks due with the hooks function.
async fn smoke_tested(store: &InMemoryStore, runner: &RecordingRunner) {
    let production = crate::pipeline::Stage::new("production").expect("a stage");
    let event = crate::contract::testing::smoke_then("e1", "http://staging/version", production);
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from("e1"),
        build_id: "build-e1".into(),
        outputs: crate::pipeline::BuildOutputs { image_uri: "web@sha256:e1".into(), artifacts: None },
    };
    for event in [event, built] {
        handled(store, runner, "web", &event, now()).await;
    }
}

#[tokio::test]
async fn a_test_stages_checks_run_by_the_hooks_function_for_the_release_and_move_the_run_on_or_end_it() {
    use crate::usecases::{HookEffects, flush};
    for (body, passes) in [("deployed sha-e1", true), ("deployed sha-e0", false)] {
        // GIVEN e1 at its smoke stage, whose check expects the service to report e1's commit
        let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
        smoke_tested(&store, &runner).await;
        let state = stored(&store).await;
        let due: Vec<&Effect> = state.pending.iter().map(|pending| &pending.effect).collect();
        let checks = due.iter().find_map(|effect| match effect {
            Effect::RunTestChecks { checks, .. } => Some(checks.clone()),
            _ => None,
        });
        let checks = checks.expect("the smoke checks wait for the hooks function");
        assert_eq!(checks[0].expect_body.as_deref(), Some("sha-e1"), "{{commit}} is the run's commit");
        // WHEN the hooks function carries them out, the service answering `body`
        let probes = SetProbes::with_body(body.to_owned());
        let hooks = HookEffects {
            publisher: crate::contract::testing::RecordingPublisher::new(),
            hooks: crate::contract::testing::RecordingDeployments::new(),
            probe: probes,
        };
        flush(&store, &hooks, "web", now()).await.expect("flushed");
        // THEN the run goes on to production, or fails at smoke saying what the check saw
        let run = store.execution(&ExecutionId::from("e1")).await.ok().flatten().expect("the run");
        let smoke = run.record(crate::pipeline::Stage::new("smoke").expect("a stage")).and_then(|r| r.test.clone());
        let smoke = smoke.expect("smoke's record");
        assert_eq!((smoke.passed, smoke.checks, smoke.project.as_str()), (Some(passes), 1, ""));
        assert!(
            smoke.detail.as_deref().is_some_and(|detail| detail.starts_with(if passes {
                "1/1 passed"
            } else {
                "0/1 passed"
            })),
            "{smoke:?}"
        );
        if passes {
            assert_eq!(run.status, Status::Running(crate::pipeline::Stage::new("production").expect("a stage")));
        } else {
            assert_eq!(run.status, Status::Failed);
            let reason = run.reason.unwrap_or_default();
            assert!(reason.starts_with("in smoke: the checks failed (0/1 passed"), "{reason}");
        }
        assert_eq!(hooks.probe.probed(), 1);
    }
}

const WEB_7: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7";
const WEB_8: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
const BUILT_DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A run deploying d-1 (blue/green to prod/web) from web:7 to web:8, whose build made an image named by digest
/// (`image`: the build's `ImageURI`).
async fn deploying_web_8(store: &InMemoryStore, runner: &RecordingRunner, image: &str) {
    for event in [
        push("e1"),
        Event::BuildSucceeded {
            execution_id: ExecutionId::from("e1"),
            build_id: "build-e1".into(),
            outputs: crate::pipeline::BuildOutputs { image_uri: image.into(), artifacts: Some("s3://b/e1".into()) },
        },
        Event::DeploymentStarted {
            execution_id: ExecutionId::from("e1"),
            deployment_id: "d-1".into(),
            service_deployment: None,
            task_definition: Some(WEB_8.into()),
            previous_task_definition: Some(WEB_7.into()),
            in_alarm: None,
        },
    ] {
        handle(store, runner, input(&event, None)).await.expect("handled");
    }
}

/// prod/web's two tasks of web:8, the second running `second`.
fn web_8_tasks(second: &str) -> Vec<crate::deploy::RunningTask> {
    [BUILT_DIGEST, second]
        .iter()
        .enumerate()
        .map(|(n, digest)| crate::deploy::RunningTask {
            task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/task{n}"),
            task_definition: WEB_8.into(),
            containers: vec![crate::deploy::RunningContainer {
                name: "web".into(),
                image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:main".into(),
                digest: Some((*digest).into()),
            }],
        })
        .collect()
}

fn codedeploy_success() -> DeploymentStateChange {
    DeploymentStateChange {
        event_id: "ev-success".into(),
        deployment_id: "d-1".into(),
        change: DeploymentChange::CodeDeploy { state: "SUCCESS".into() },
    }
}

#[tokio::test]
async fn a_completed_deployment_whose_task_runs_another_digest_is_rolled_back_to_what_ran_before() {
    // GIVEN a run deploying web:8 with image web@BUILT, and one of prod/web's tasks of web:8 running another digest
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    deploying_web_8(&store, &runner, &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{BUILT_DIGEST}")).await;
    let deployments = crate::contract::testing::RecordingDeployments::new();
    let moved = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    deployments.tasks("prod", "web", web_8_tasks(moved));
    // WHEN CodeDeploy reports the deployment a success
    let change = codedeploy_success();
    record_deployment_event(&store, &runner, &deployments, &deployments, &change, now()).await.expect("recorded");
    // THEN the tasks were read once, the check is recorded as failed, and the deployer is asked to put web:7 back
    assert_eq!(deployments.task_reads(), 1);
    let run = stored(&store).await.executions[0].clone();
    let check = run.deploy().and_then(|deploy| deploy.digest_check.clone()).expect("a digest check");
    assert_eq!((check.tasks, check.others), (1, 1));
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    let rolled_back = runner.ran().into_iter().any(|(_, effect)| {
        matches!(effect, Effect::Publish(SluiceEvent::RollbackRequested(asked))
            if asked.task_definition == WEB_7 && asked.reason.starts_with("what runs is not what was built"))
    });
    assert!(rolled_back, "{:?}", runner.ran());
}

#[tokio::test]
async fn a_completed_deployment_whose_tasks_run_the_release_goes_on_and_a_repeated_event_reads_nothing_again() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    deploying_web_8(&store, &runner, &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{BUILT_DIGEST}")).await;
    let deployments = crate::contract::testing::RecordingDeployments::new();
    deployments.tasks("prod", "web", web_8_tasks(BUILT_DIGEST));
    let change = codedeploy_success();
    record_deployment_event(&store, &runner, &deployments, &deployments, &change, now()).await.expect("recorded");
    assert_eq!(stored(&store).await.executions[0].status, Status::Succeeded);
    let again = record_deployment_event(&store, &runner, &deployments, &deployments, &change, now()).await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(deployments.task_reads(), 1, "the run's deployment is over: nothing to check again");
}

#[tokio::test]
async fn a_release_named_by_tag_reads_no_tasks_and_an_unreachable_ecs_retries_the_event_changing_nothing() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    deploying_web_8(&store, &runner, "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:main").await;
    let deployments = crate::contract::testing::RecordingDeployments::new();
    deployments.unreachable();
    let change = codedeploy_success();
    record_deployment_event(&store, &runner, &deployments, &deployments, &change, now()).await.expect("recorded");
    assert_eq!((deployments.task_reads(), stored(&store).await.executions[0].status), (0, Status::Succeeded));
    // A release named by digest, with ECS unreachable: the event is to be delivered again, and nothing changed
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    deploying_web_8(&store, &runner, &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{BUILT_DIGEST}")).await;
    let before = stored(&store).await;
    let error = record_deployment_event(&store, &runner, &deployments, &deployments, &change, now())
        .await
        .expect_err("ECS could not be reached");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(stored(&store).await, before);
}
