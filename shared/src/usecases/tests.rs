//! The use case with the in-memory twins: exactly-once state, effects carried out once done, kept until then.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::events::SluiceEvent;
use crate::pipeline::{ExecutionId, Stage, Status};
use crate::testing::{InMemoryStore, RecordingRunner};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("valid date")
}

fn push(execution: &str) -> Event {
    crate::testing::push(execution, ExecutionMode::Superseded, false)
}

fn input<'a>(event: &'a Event, delivery: Option<&str>) -> Input<'a> {
    Input {
        pipeline: "web",
        mode: ExecutionMode::Superseded,
        event,
        receipt: delivery
            .map(|d| (ReceiptKey::delivery(d, "web"), json!({ "executions": [event.execution_id().to_string()] }))),
        now: now(),
    }
}

fn kinds(runner: &RecordingRunner) -> Vec<String> {
    runner
        .ran()
        .iter()
        .map(|(_, effect)| match effect {
            Effect::StartBuild { execution_id, .. } => format!("start_build {execution_id}"),
            Effect::ReportHookStatus { hook_execution_id, .. } => format!("report_hook {hook_execution_id}"),
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
    assert_eq!(execution.status, Status::Running(Stage::Build));
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
async fn an_effect_that_fails_stays_pending_and_is_carried_out_by_the_redelivery() {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let event = push("e1");
    runner.fail_next(1);

    // The first attempt saves the execution but cannot carry out its first effect ...
    let failed = handle(&store, &runner, input(&event, Some("delivery-1"))).await;
    assert!(failed.as_ref().is_err_and(HandleError::is_retryable), "{failed:?}");
    assert_eq!(stored(&store).await.pending.len(), 2, "both effects wait in the outbox");
    assert!(runner.ran().is_empty());

    // ... and the redelivery, which changes nothing, carries both out, each once.
    let handled = handle(&store, &runner, input(&event, Some("delivery-1"))).await;
    assert!(matches!(handled, Ok(Handled::Ignored(IgnoreReason::DuplicateEvent))), "{handled:?}");
    assert_eq!(kinds(&runner), ["publish Execution Started", "start_build e1"]);
    assert!(stored(&store).await.pending.is_empty());
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
    async fn save(
        &self,
        state: &PipelineState,
        expected: Option<Version>,
        receipt: Option<&Receipt>,
    ) -> Result<Version, StoreError> {
        let meddle = std::mem::replace(&mut *self.meddled.lock().unwrap_or_else(|e| e.into_inner()), true);
        if !meddle {
            let other = PipelineState::new("web", ExecutionMode::Superseded);
            let Ok(Decision::Apply { state: other, .. }) = transition(&other, &push("other"), now()) else {
                panic!("the other writer's push applies")
            };
            self.inner.save(&other, None, None).await?;
        }
        self.inner.save(state, expected, receipt).await
    }
    async fn execution(&self, id: &ExecutionId) -> Result<Option<crate::pipeline::Execution>, StoreError> {
        self.inner.execution(id).await
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
    assert_eq!(state.execution(&ExecutionId::from("e1")).map(|e| e.status), Some(Status::Waiting(Stage::Build)));
    // Only what the second decision asked for was carried out: e1 waits, so no build of its own.
    assert_eq!(kinds(&runner), ["publish Execution Started"]);
    assert!(
        matches!(&runner.ran()[0].1, Effect::Publish(SluiceEvent::ExecutionStarted(s)) if s.execution_id.0 == "e1")
    );
}
