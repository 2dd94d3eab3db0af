//! A store that remembers the pipeline states this instance wrote (or read ahead, as it started) in the last few
//! seconds with nothing left in their outbox, so that a burst of inputs to one pipeline (a merge train's pushes, a
//! monorepo's) decides each from the state the last one left instead of reading it again, and the first push of an
//! instance that just started does not wait for a read. (A state with effects to carry out is about to be written
//! by their owners: it is not remembered.) Safe because every save is conditional on the version the decision was
//! made from (or on there being no state yet): if another writer changed the pipeline meanwhile, the save is
//! refused and the engine reads the state and decides again ([`crate::usecases::handle`]); a decision to change
//! nothing is never taken from memory alone.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::contract::ports::{
    AwsLink, PipelineStore, Recalled, Receipt, ReceiptKey, StoreError, Stored, Version, Write,
};
use crate::pipeline::{Execution, ExecutionId, PausesApart, PipelineState};

/// How long a state this instance wrote is taken as the pipeline's: long enough for a burst of pushes, short
/// enough that inputs minutes apart, between which other functions write, read the state.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// How many pipelines' states are remembered (the most recently written): the memory stays bounded.
pub const REMEMBERED: usize = 4;

/// `S`, remembering the states it wrote (or read ahead, "no state yet" too) for [`FRESH_FOR`].
#[derive(Debug)]
pub struct RecentStates<S> {
    inner: S,
    /// The newest first: (pipeline, state as stored or `None` if there was none, when it was written or read).
    recent: Mutex<VecDeque<(String, Recalled, Instant)>>,
    fresh_for: Duration,
}

impl<S> RecentStates<S> {
    pub fn new(inner: S) -> Self {
        Self::fresh_for(inner, FRESH_FOR)
    }

    /// As [`RecentStates::new`], a state taken as the pipeline's for `fresh_for`.
    pub fn fresh_for(inner: S, fresh_for: Duration) -> Self {
        Self { inner, recent: Mutex::new(VecDeque::new()), fresh_for }
    }

    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn remember(&self, pipeline: &str, stored: Recalled) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|(name, _, _)| name != pipeline);
        recent.push_front((pipeline.to_owned(), stored, Instant::now()));
        recent.truncate(REMEMBERED);
    }

    /// Reads the states of `pipelines` side by side, and remembers those with nothing left in their outbox (and
    /// those of pipelines that have none yet): what a function reads as it starts, so that its first input does not
    /// wait for the read. Only when they are no more than it remembers ([`REMEMBERED`]): of more, which one the
    /// next input is for cannot be told. A state it cannot read is read by the input that needs it.
    pub async fn read_ahead(&self, pipelines: &[&str])
    where
        S: PipelineStore,
    {
        if pipelines.len() > REMEMBERED {
            return;
        }
        let read = futures_util::future::join_all(pipelines.iter().map(|pipeline| self.inner.load(pipeline))).await;
        for (pipeline, state) in pipelines.iter().zip(read) {
            match state {
                Ok(state) if state.as_ref().is_none_or(|stored| stored.value.pending.is_empty()) => {
                    self.remember(pipeline, state);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(pipeline, error = %crate::runtime::telemetry::Chain(&error), "not read ahead")
                }
            }
        }
    }

    /// Forgets what it wrote to `pipeline`: its next input reads the state.
    pub fn forget(&self, pipeline: &str) {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner).retain(|(name, _, _)| name != pipeline);
    }
}

impl<S: PipelineStore> PipelineStore for RecentStates<S> {
    async fn load(&self, pipeline: &str) -> Result<Option<Stored<PipelineState>>, StoreError> {
        self.inner.load(pipeline).await
    }

    fn recall(&self, pipeline: &str) -> Option<Recalled> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .iter()
            .find(|(name, _, written)| name == pipeline && written.elapsed() < self.fresh_for)
            .map(|(_, stored, _)| stored.clone())
    }

    async fn save(&self, write: &Write<'_>) -> Result<Version, StoreError> {
        let pipeline = write.state.pipeline.clone();
        match self.inner.save(write).await {
            // A state with effects still to carry out is about to be written again, by this function or another.
            Ok(version) if write.state.pending.is_empty() => {
                self.remember(&pipeline, Some(Stored { value: write.state.stored(), version }));
                Ok(version)
            }
            Ok(version) => {
                self.forget(&pipeline);
                Ok(version)
            }
            Err(error) => {
                self.forget(&pipeline);
                Err(error)
            }
        }
    }

    async fn execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.inner.execution(id).await
    }

    async fn pauses_apart(&self, id: &ExecutionId) -> Result<Vec<PausesApart>, StoreError> {
        self.inner.pauses_apart(id).await
    }

    async fn find(&self, aws_id: &str) -> Result<Option<AwsLink>, StoreError> {
        self.inner.find(aws_id).await
    }

    async fn history(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        self.inner.history(pipeline, limit).await
    }

    async fn record_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        self.inner.record_receipt(receipt).await
    }

    async fn receipt(&self, key: &ReceiptKey) -> Result<Option<Receipt>, StoreError> {
        self.inner.receipt(key).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::contract::testing::{InMemoryStore, RecordingRunner, push};
    use crate::definitions::ExecutionMode;
    use crate::pipeline::{EffectKind, Event, Status};
    use crate::usecases::{Handled, Input, handle};

    fn now() -> DateTime<Utc> {
        "2026-12-06T12:00:00Z".parse().expect("time")
    }

    async fn pushed(store: &RecentStates<InMemoryStore>, event: &Event) -> Handled {
        let runner = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event, receipt: None, now: now() };
        handle(store, &runner, input).await.expect("recorded")
    }

    #[tokio::test]
    async fn a_burst_of_pushes_is_decided_from_the_state_the_last_push_wrote_without_reading_it_again() {
        let store = RecentStates::new(InMemoryStore::new());
        pushed(&store, &push("e1", ExecutionMode::Queued, false)).await;
        let loads = store.inner().loads();

        for id in ["e2", "e3"] {
            assert_eq!(pushed(&store, &push(id, ExecutionMode::Queued, false)).await, Handled::Applied);
        }

        assert_eq!(store.inner().loads(), loads, "no read after the first push");
        let stored = store.inner().load("web").await.expect("read").expect("state");
        let statuses: Vec<&Status> = stored.value.executions.iter().map(|run| &run.status).collect();
        assert_eq!(statuses.len(), 3, "{statuses:?}");
        assert_eq!(store.recall("web"), Some(Some(stored)), "what it remembers is what a read gives");
    }

    #[tokio::test]
    async fn a_state_another_writer_changed_since_is_read_again_and_the_push_decided_from_what_it_says() {
        let store = RecentStates::new(InMemoryStore::new());
        pushed(&store, &push("e1", ExecutionMode::Queued, false)).await;
        store.inner().meddle("web", |state| state.next_seq += 100);
        let loads = store.inner().loads();

        assert_eq!(pushed(&store, &push("e2", ExecutionMode::Queued, false)).await, Handled::Applied);

        assert_eq!(store.inner().loads(), loads + 1);
        let stored = store.inner().load("web").await.expect("read").expect("state");
        assert_eq!(stored.value.executions.len(), 2);
        assert!(stored.value.next_seq > 100, "the other writer's change stands: {}", stored.value.next_seq);
    }

    #[tokio::test]
    async fn a_state_overtaken_since_costs_no_attempt_of_those_a_busy_table_is_given() {
        let store = RecentStates::new(InMemoryStore::new());
        pushed(&store, &push("e1", ExecutionMode::Queued, false)).await;
        store.inner().meddle("web", |state| state.next_seq += 100);
        // Four throttled saves after the refused one from memory: the fifth and last attempt lands.
        store.inner().busy_after(1, 4);

        assert_eq!(pushed(&store, &push("e2", ExecutionMode::Queued, false)).await, Handled::Applied);
    }

    #[tokio::test]
    async fn a_throttled_save_from_memory_counts_as_an_attempt_as_any_other() {
        let store = RecentStates::new(InMemoryStore::new());
        pushed(&store, &push("e1", ExecutionMode::Queued, false)).await;
        store.inner().busy_for(5);
        let runner = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
        let event = push("e2", ExecutionMode::Queued, false);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event: &event, receipt: None, now: now() };

        let handled = handle(&store, &runner, input).await;

        assert!(matches!(handled, Err(crate::usecases::HandleError::Contended { .. })), "{handled:?}");
    }

    #[tokio::test]
    async fn a_state_with_effects_left_for_another_function_is_not_remembered() {
        let store = RecentStates::new(InMemoryStore::new());
        let runner = RecordingRunner::owning(&[EffectKind::Publish]);
        let event = push("e1", ExecutionMode::Queued, false);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event: &event, receipt: None, now: now() };

        handle(&store, &runner, input).await.expect("recorded");

        assert_eq!(store.recall("web"), None, "its StartBuild waits for the function that owns it");
    }

    #[tokio::test]
    async fn a_decision_to_change_nothing_is_taken_from_a_read_never_from_memory() {
        let store = RecentStates::new(InMemoryStore::new());
        let event = push("e1", ExecutionMode::Queued, false);
        pushed(&store, &event).await;
        let loads = store.inner().loads();

        let again = pushed(&store, &event).await;

        assert!(matches!(again, Handled::Ignored(_)), "{again:?}");
        assert_eq!(store.inner().loads(), loads + 1, "the memory's answer was checked against a read");
    }

    #[tokio::test]
    async fn a_state_written_longer_ago_than_its_freshness_is_read() {
        let store = RecentStates::fresh_for(InMemoryStore::new(), Duration::ZERO);
        pushed(&store, &push("e1", ExecutionMode::Queued, false)).await;
        let loads = store.inner().loads();

        pushed(&store, &push("e2", ExecutionMode::Queued, false)).await;

        assert_eq!(store.inner().loads(), loads + 1);
        assert_eq!(store.recall("web"), None);
    }

    #[tokio::test]
    async fn a_state_read_ahead_decides_the_first_push_without_a_read() {
        let store = RecentStates::new(InMemoryStore::new());
        let runner = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
        let event = push("e1", ExecutionMode::Queued, false);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event: &event, receipt: None, now: now() };
        handle(store.inner(), &runner, input).await.expect("recorded by another instance");

        store.read_ahead(&["web", "api"]).await;
        let loads = store.inner().loads();
        assert_eq!(pushed(&store, &push("e2", ExecutionMode::Queued, false)).await, Handled::Applied);

        assert_eq!(store.inner().loads(), loads, "decided from the state read ahead");
        let stored = store.inner().load("web").await.expect("read").expect("state");
        assert_eq!(stored.value.executions.len(), 2);
    }

    #[tokio::test]
    async fn a_pipeline_read_ahead_without_a_state_records_its_first_push_as_new_unless_another_did_first() {
        let store = RecentStates::new(InMemoryStore::new());
        store.read_ahead(&["web"]).await;
        assert_eq!(store.recall("web"), Some(None));
        let loads = store.inner().loads();

        assert_eq!(pushed(&store, &push("e1", ExecutionMode::Queued, false)).await, Handled::Applied);
        assert_eq!(store.inner().loads(), loads);

        // Another instance records a push meanwhile: the save as new is refused, read, and decided again.
        let other = RecentStates::new(InMemoryStore::new());
        other.read_ahead(&["web"]).await;
        let runner = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
        let event = push("e2", ExecutionMode::Queued, false);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event: &event, receipt: None, now: now() };
        handle(other.inner(), &runner, input).await.expect("recorded");
        assert_eq!(pushed(&other, &push("e3", ExecutionMode::Queued, false)).await, Handled::Applied);
        let stored = other.inner().load("web").await.expect("read").expect("state");
        assert_eq!(stored.value.executions.len(), 2, "the other writer's run stands beside the new one");
    }

    #[tokio::test]
    async fn the_states_of_more_pipelines_than_it_remembers_are_not_read_ahead() {
        let store = RecentStates::new(InMemoryStore::new());
        let names: Vec<String> = (0..=REMEMBERED).map(|n| format!("p{n}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();

        store.read_ahead(&names).await;

        assert_eq!(store.inner().loads(), 0);
        assert_eq!(store.recall("p0"), None);
    }

    #[tokio::test]
    async fn a_state_with_effects_left_in_its_outbox_is_not_read_ahead() {
        let store = RecentStates::new(InMemoryStore::new());
        let runner = RecordingRunner::owning(&[EffectKind::Publish]);
        let event = push("e1", ExecutionMode::Queued, false);
        let input = Input { pipeline: "web", mode: ExecutionMode::Queued, event: &event, receipt: None, now: now() };
        handle(store.inner(), &runner, input).await.expect("recorded");

        store.read_ahead(&["web"]).await;

        assert_eq!(store.recall("web"), None, "its StartBuild waits for the function that owns it");
    }

    fn receipt(execution: &str) -> (ReceiptKey, serde_json::Value) {
        (ReceiptKey::push("a1b2", "web"), serde_json::json!({ "pipeline": "web", "execution_id": execution }))
    }

    async fn pushed_with_receipt(store: &RecentStates<InMemoryStore>, id: &str) -> Handled {
        let runner = RecordingRunner::owning(&[EffectKind::StartBuild, EffectKind::Publish]);
        let event = push(id, ExecutionMode::Queued, false);
        let input = Input {
            pipeline: "web",
            mode: ExecutionMode::Queued,
            event: &event,
            receipt: Some(receipt(id)),
            now: now(),
        };
        crate::usecases::handle_push(store, &runner, input).await.expect("handled")
    }

    #[tokio::test]
    async fn a_push_decided_from_memory_that_builds_now_writes_its_receipt_with_the_state() {
        let store = RecentStates::new(InMemoryStore::new());
        store.read_ahead(&["web"]).await;

        assert_eq!(pushed_with_receipt(&store, "e1").await, Handled::Applied);

        // The receipt with the state, then what CodeBuild answered (the pipeline's item alone): two writes in all.
        assert_eq!((store.inner().writes(), store.inner().transactions()), (2, 1));
        assert!(store.inner().receipt(&receipt("e1").0).await.expect("read").is_some());
        assert_eq!(store.inner().run_item(&ExecutionId::from("e1")), None, "written when it moves on");
    }

    #[tokio::test]
    async fn a_replay_decided_from_memory_gets_the_answer_of_the_push_it_replays_and_records_nothing() {
        let store = RecentStates::new(InMemoryStore::new());
        store.read_ahead(&["web"]).await;
        let (key, answer) = receipt("e1");
        let earlier = Receipt { key, answer: answer.clone(), recorded_at: now() };
        store.inner().record_receipt(&earlier).await.expect("recorded");

        assert_eq!(pushed_with_receipt(&store, "e2").await, Handled::Duplicate { answer });
        assert_eq!(store.inner().load("web").await.expect("read"), None);
    }

    #[tokio::test]
    async fn a_receipt_an_interrupted_attempt_left_does_not_stop_the_push_decided_from_memory() {
        let store = RecentStates::new(InMemoryStore::new());
        store.read_ahead(&["web"]).await;
        let (key, answer) = receipt("e1");
        store.inner().record_receipt(&Receipt { key, answer, recorded_at: now() }).await.expect("recorded");

        assert_eq!(pushed_with_receipt(&store, "e1").await, Handled::Applied);

        let stored = store.inner().load("web").await.expect("read").expect("state");
        assert_eq!(stored.value.executions.len(), 1);
    }

    #[tokio::test]
    async fn only_the_last_few_pipelines_written_are_remembered() {
        let store = RecentStates::new(InMemoryStore::new());
        for n in 0..=REMEMBERED {
            let state = PipelineState::new(format!("p{n}"), ExecutionMode::Queued);
            store.save(&Write::between(None, &state, None)).await.expect("saved");
        }
        assert_eq!(store.recall("p0"), None, "the oldest is forgotten");
        assert!((1..=REMEMBERED).all(|n| store.recall(&format!("p{n}")).is_some()));
    }
}
