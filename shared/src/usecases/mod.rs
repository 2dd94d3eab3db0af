//! The use case every function shares: load the pipeline, let the machine decide, save the decision together with
//! its effects (the pipeline's outbox), then carry the effects out and remove them.
//!
//! State changes exactly once per input (the receipt and the version guard it). Effects are carried out at least
//! once: an effect that fails stays in the outbox and is carried out by the next invocation that touches the
//! pipeline (a redelivery of the same input does). Effects carry a stable id for the services that deduplicate.

use std::error::Error as StdError;
use std::future::Future;

use chrono::{DateTime, Utc};
use tracing::{debug, instrument, warn};

use crate::definitions::ExecutionMode;
use crate::pipeline::{
    Decision, Effect, Event, IgnoreReason, PendingEffect, PipelineState, TransitionError, transition,
};
use crate::ports::{PipelineStore, Receipt, ReceiptKey, StoreError, Stored, Version};

/// How often a write is retried when another writer changed the pipeline in between.
const ATTEMPTS: usize = 5;
/// At most this many effects are carried out in one invocation; the rest wait for the next.
const MAX_EFFECTS: usize = 50;

/// Carries out effects for the pipeline: calls to AWS and events on the bus.
pub trait EffectRunner: Send + Sync {
    /// Whether this runner carries out `effect`. Effects it does not are left pending for a function that does
    /// (a hook report for the hook function, say); the others are carried out past them.
    fn runs(&self, effect: &Effect) -> bool {
        let _ = effect;
        true
    }

    /// Carries out `effect`. `id` is stable across retries: pass it on as an idempotency token where the service
    /// takes one. May return the event that follows from it (`BuildStarted` with CodeBuild's build id, or
    /// `BuildStartFailed` when CodeBuild refuses for good). An `Err` means "not done, try again later".
    fn run(&self, id: &str, effect: &Effect) -> impl Future<Output = Result<Option<Event>, EffectError>> + Send;
}

/// An effect that could not be carried out now. It stays pending.
#[derive(Debug, thiserror::Error)]
#[error("could not carry out {effect} now; it stays pending and is tried again")]
pub struct EffectError {
    pub effect: &'static str,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

/// One input for a pipeline.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub pipeline: &'a str,
    /// The pipeline's execution mode, used if the pipeline has never run.
    pub mode: ExecutionMode,
    pub event: &'a Event,
    /// Makes a redelivery of the input recognisable, with the answer it gets then.
    pub receipt: Option<(ReceiptKey, serde_json::Value)>,
    pub now: DateTime<Utc>,
}

/// What became of an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// The state changed and its effects were carried out.
    Applied,
    /// The machine had nothing to do: the event was already taken into account.
    Ignored(IgnoreReason),
    /// The event cannot apply; nothing changed.
    Refused(TransitionError),
    /// The input was handled before; this is the answer given then.
    Duplicate { answer: serde_json::Value },
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Effect(#[from] EffectError),
    #[error("pipeline {pipeline} kept changing while this input was applied ({ATTEMPTS} attempts); try again")]
    Contended { pipeline: String },
}

impl HandleError {
    /// Whether delivering the input again can succeed (what event sources should be told).
    pub fn is_retryable(&self) -> bool {
        match self {
            HandleError::Store(error) => error.is_retryable(),
            HandleError::Effect(_) | HandleError::Contended { .. } => true,
        }
    }
}

/// Appends `effects` to the outbox, with ids unique to the version about to be written.
fn enqueue(state: &mut PipelineState, effects: Vec<Effect>, version: u64) {
    let pipeline = state.pipeline.clone();
    let start = state.pending.len();
    state.pending.extend(
        effects
            .into_iter()
            .enumerate()
            .map(|(i, effect)| PendingEffect { id: format!("{pipeline}-{version}-{}", start + i), effect }),
    );
}

/// Applies one input to its pipeline and carries out what it causes.
#[instrument(skip_all, fields(pipeline = %input.pipeline, event = input.event.name(), execution = %input.event.execution_id()))]
pub async fn handle<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    input: Input<'_>,
) -> Result<Handled, HandleError> {
    let receipt = input.receipt.as_ref().map(|(key, answer)| Receipt {
        key: key.clone(),
        answer: answer.clone(),
        recorded_at: input.now,
    });
    let mut handled = None;
    for _ in 0..ATTEMPTS {
        let (state, version) = match store.load(input.pipeline).await? {
            Some(Stored { value, version }) => (value, Some(version)),
            None => (PipelineState::new(input.pipeline, input.mode), None),
        };
        match transition(&state, input.event, input.now) {
            Err(error) => {
                debug!(%error, "event refused");
                handled = Some(Handled::Refused(error));
            }
            Ok(Decision::Ignore(reason)) => handled = Some(Handled::Ignored(reason)),
            Ok(Decision::Apply { mut state, effects }) => {
                enqueue(&mut state, effects, version.map_or(1, |Version(v)| v + 1));
                match store.save(&state, version, receipt.as_ref()).await {
                    Ok(_) => handled = Some(Handled::Applied),
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::Duplicate { key }) => {
                        let answer = store.receipt(&key).await?.map(|r| r.answer).unwrap_or_default();
                        handled = Some(Handled::Duplicate { answer });
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        break;
    }
    let handled = handled.ok_or_else(|| HandleError::Contended { pipeline: input.pipeline.to_owned() })?;
    flush(store, runner, input.pipeline, input.now).await?;
    Ok(handled)
}

/// Carries out the pipeline's pending effects, oldest first, removing each once done and applying what follows
/// from it. Stops at the first that fails, which stays pending.
#[instrument(skip(store, runner, now))]
pub async fn flush<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    pipeline: &str,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    let mut conflicts = 0;
    for _ in 0..MAX_EFFECTS {
        let Some(Stored { value: mut state, version }) = store.load(pipeline).await? else { return Ok(()) };
        let Some(index) = state.pending.iter().position(|pending| runner.runs(&pending.effect)) else { return Ok(()) };
        let pending = state.pending.remove(index);
        let follow_up = runner.run(&pending.id, &pending.effect).await?;
        if let Some(event) = follow_up {
            match transition(&state, &event, now) {
                Ok(Decision::Apply { state: mut next, effects }) => {
                    enqueue(&mut next, effects, version.0 + 1);
                    state = next;
                }
                Ok(Decision::Ignore(reason)) => debug!(?reason, event = event.name(), "follow-up already applied"),
                Err(error) => warn!(%error, event = event.name(), "follow-up event refused"),
            }
        }
        match store.save(&state, Some(version), None).await {
            Ok(_) => {}
            // Someone else wrote meanwhile: reload. The effect is still pending there and may be carried out again,
            // which its id makes harmless where the service deduplicates.
            Err(StoreError::Conflict { .. }) if conflicts + 1 < ATTEMPTS => conflicts += 1,
            Err(StoreError::Conflict { .. }) => return Err(HandleError::Contended { pipeline: pipeline.to_owned() }),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

mod build_events;
mod definitions;
mod effects;
mod reconcile;
mod webhook;

pub use build_events::{BuildEventOutcome, BuildStateChange, artifact_location, record_build_event};
pub use definitions::{CachedDefinitions, DefinitionsError};
pub use effects::StageEffects;
pub use reconcile::{QUIET_FOR, Reconciled, reconcile};
pub use webhook::{Delivery, MAX_BODY, Reply, receive_webhook};

#[cfg(test)]
mod tests;
