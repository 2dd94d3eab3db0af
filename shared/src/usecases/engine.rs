//! The engine: one input's way through the pipeline (load, transition, save with its outbox, carry out the effects
//! and save what came of them), the doorbells that carry out what is due, and parked effects tried again.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, error, info, instrument, warn};

use crate::contract::ports::{PipelineStore, Receipt, ReceiptKey, StoreError, Stored, Version, Write};
use crate::definitions::ExecutionMode;
use crate::pipeline::outbox::WAIT;
use crate::pipeline::{
    Decision, Effect, EffectKind, Event, IgnoreReason, PendingEffect, PipelineState, Retry, Status, TransitionError,
    transition,
};
use crate::runtime::telemetry::Chain;

/// How often a write is tried when another writer changed the pipeline in between or the store was busy.
const ATTEMPTS: u32 = 5;
/// Rounds of "carry out, save, carry out what followed" in one invocation; the rest waits for the next.
const MAX_ROUNDS: usize = 4;

/// Carries out effects for the pipeline: calls to AWS and events on the bus.
pub trait EffectRunner: Send + Sync {
    /// The kinds of effect this runner carries out: an allow-list. Effects of other kinds are left in the outbox for
    /// the function that owns them. The README's map of the functions lists them, and a test holds it to these.
    const KINDS: &'static [EffectKind];

    /// [`EffectRunner::KINDS`], unless a runner is told its kinds when it is made (the tests' twins).
    fn kinds(&self) -> &[EffectKind] {
        Self::KINDS
    }

    /// Carries out `effect`. `id` is stable across retries: pass it on as an idempotency token where the service
    /// takes one. May return the event that follows from it (`BuildStarted` with CodeBuild's build id, or
    /// `BuildStartFailed` when CodeBuild refuses for good). An `Err` means "not done": tried again later, or parked if
    /// it is permanent.
    fn run(&self, id: &str, effect: &Effect) -> impl Future<Output = Result<Option<Event>, EffectError>> + Send;

    /// Carries out `effects`, returning one result each, in order. By default they run concurrently.
    fn run_all(
        &self,
        effects: &[PendingEffect],
    ) -> impl Future<Output = Vec<Result<Option<Event>, EffectError>>> + Send {
        futures_util::future::join_all(effects.iter().map(|pending| self.run(&pending.id, &pending.effect)))
    }
}

/// An effect that could not be carried out now.
#[derive(Debug, thiserror::Error)]
#[error("could not carry out {effect}")]
pub struct EffectError {
    pub effect: &'static str,
    /// True when trying again cannot help (access denied, invalid input): the effect is parked at once.
    pub permanent: bool,
    /// True when the effect is not to be carried out yet (a deploy stage's entry alarm is in ALARM): it is tried
    /// again later ([`crate::pipeline::outbox::WAIT`]), and the wait is no failed attempt.
    pub waits: bool,
    /// When a waiting effect is to be tried again, if it knows (a deployment window's opening): not before
    /// [`crate::pipeline::outbox::WAIT`] from now in any case.
    pub not_before: Option<DateTime<Utc>>,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl EffectError {
    /// A failure that may pass: the effect is tried again after a backoff.
    pub fn transient(effect: &'static str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self { effect, permanent: false, waits: false, not_before: None, source: source.into() }
    }

    /// Not yet: the effect waits for something that is no failure (`why`), and is tried again later.
    pub fn waiting(effect: &'static str, why: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self { effect, permanent: false, waits: true, not_before: None, source: why.into() }
    }

    /// As [`EffectError::waiting`], until `at` (when what it waits for is due).
    pub fn waiting_until(
        effect: &'static str,
        why: impl Into<Box<dyn StdError + Send + Sync>>,
        at: DateTime<Utc>,
    ) -> Self {
        Self { not_before: Some(at), ..Self::waiting(effect, why) }
    }

    /// A failure that will not pass by itself: the effect is parked for an operator.
    pub fn permanent(effect: &'static str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self { effect, permanent: true, waits: false, not_before: None, source: source.into() }
    }
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
    /// The state changed; its effects were carried out or wait in the outbox.
    Applied,
    /// The input was recorded, but its run was skipped at once (a push of a commit older than one already taken):
    /// the run is in the history with this reason, and nothing was started.
    Skipped { reason: String },
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
    #[error("pipeline {pipeline} kept changing while this input was applied ({ATTEMPTS} attempts); try again")]
    Contended { pipeline: String },
}

impl HandleError {
    /// Whether delivering the input again can succeed (what event sources should be told).
    pub fn is_retryable(&self) -> bool {
        match self {
            HandleError::Store(error) => error.is_retryable(),
            HandleError::Contended { .. } => true,
        }
    }
}

/// A name for this invocation, as the holder of the effects it leases.
fn invocation() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// A pause before attempt `attempt` (1, 2, ...): exponential, with full jitter, so that writers that collided do not
/// collide again.
async fn pause(attempt: u32) {
    let ceiling = 20u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=ceiling))).await;
}

/// A pipeline as this invocation last read or wrote it, with the effects it holds the lease of.
struct Held {
    state: PipelineState,
    version: Version,
    claimed: Vec<PendingEffect>,
}

/// How a save records its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recording {
    /// The receipt, the state and the items of the runs that are new: one transaction.
    Together,
    /// The receipt first, on its own (beside the read of the state), then the state alone: a new run's own item is
    /// written when it first moves on, and until then the pipeline's item is its record (the store finds it there).
    /// No transaction, whose cost in DynamoDB is twice its items' and which moto runs by copying the table; except
    /// for a push decided from the state the store remembers whose run starts its build now: its receipt goes with
    /// the state, so that it costs no more calls than one that waits ([`receipt_first`]).
    ReceiptFirst,
}

/// Applies one input to its pipeline and carries out what it causes. Fails only when the input could not be
/// recorded; effects that fail afterwards stay in the outbox.
#[instrument(skip_all, fields(pipeline = %input.pipeline, event = input.event.name(), execution = input.event.execution_id().map(tracing::field::display)))]
pub async fn handle<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    input: Input<'_>,
) -> Result<Handled, HandleError> {
    handle_as(store, runner, input, Recording::Together).await
}

/// As [`handle`], for a push and its receipt: the receipt is recorded on its own, beside the read of the state (or,
/// decided from the state the store remembers, before the save, or with it when the run starts its build now), and
/// the state is saved alone (a new run gets its own item when it moves on). A receipt already there with another
/// answer is a replay, answered as then; with this very answer it is this delivery's, recorded by an attempt that may
/// have ended before the state was saved: the push is recorded unless its run is found.
#[instrument(skip_all, fields(pipeline = %input.pipeline, event = input.event.name(), execution = input.event.execution_id().map(tracing::field::display)))]
pub async fn handle_push<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    input: Input<'_>,
) -> Result<Handled, HandleError> {
    handle_as(store, runner, input, Recording::ReceiptFirst).await
}

/// Records `receipt` on its own. `Some(answer)` if the input was handled before, with the answer it got then.
async fn record_first<S: PipelineStore>(
    store: &S,
    receipt: &Receipt,
    execution: &crate::pipeline::ExecutionId,
) -> Result<Option<serde_json::Value>, StoreError> {
    match store.record_receipt(receipt).await {
        Ok(()) => Ok(None),
        Err(StoreError::Duplicate { key }) => {
            let answer = store.receipt(&key).await?.map(|earlier| earlier.answer).unwrap_or_default();
            if answer != receipt.answer || store.execution(execution).await?.is_some() {
                return Ok(Some(answer));
            }
            debug!(%key, "the receipt is this input's, from an attempt that did not record it: recording it");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

async fn handle_as<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    input: Input<'_>,
    recording: Recording,
) -> Result<Handled, HandleError> {
    let owner = invocation();
    let receipt = input.receipt.as_ref().map(|(key, answer)| Receipt {
        key: key.clone(),
        answer: answer.clone(),
        recorded_at: input.now,
    });
    let mut attempt = 0;
    // The state this instance's store remembers writing, if any, is tried first; a decision to change nothing is
    // never taken from it, and a save from it that another writer overtook is not contention.
    let mut recall = true;
    // A push's receipt until it is recorded: beside the read of the state, or once decided from what the store
    // remembers (with the state, in one transaction, when the run starts its build now).
    let mut unrecorded = receipt.as_ref().filter(|_| recording == Recording::ReceiptFirst);
    let execution_id = &named_run(input.event);
    let (handled, held, read) = loop {
        let (stored, remembered) = match basis(store, input.pipeline, recall, &mut unrecorded, execution_id).await? {
            Basis::Decide { stored, remembered } => (stored, remembered),
            Basis::Duplicate { answer, read } => break (Handled::Duplicate { answer }, None, read),
        };
        recall = false;
        let version = stored.as_ref().map(|stored| stored.version);
        let mut next = match decide(stored.as_ref(), &input) {
            Ok(next) => next,
            Err(_) if remembered => continue,
            Err(handled) => {
                log_refusal(&handled);
                break (handled, None, stored);
            }
        };
        let claimed = next.claim(&owner, runner.kinds(), input.now);
        let before = stored.as_ref().map(|s| &s.value);
        let write = Write::between(before, &next, version);
        let write = match recording {
            Recording::Together => write.with_receipt(receipt.as_ref()),
            Recording::ReceiptFirst => {
                match receipt_first(store, write, before, &mut unrecorded, execution_id).await? {
                    Ok(write) => write,
                    Err(answer) => break (Handled::Duplicate { answer }, None, None),
                }
            }
        };
        match store.save(&write).await {
            Ok(version) => {
                next.set_apart();
                break (recorded(&next, execution_id), Some(Held { state: next, version, claimed }), None);
            }
            Err(error @ StoreError::Conflict { .. }) if remembered => {
                debug!(error = %Chain(&error), "pipeline changed since this instance wrote it; reading it");
            }
            Err(error) if error.is_contention() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                debug!(error = %Chain(&error), attempt, "pipeline changed meanwhile; deciding again");
                pause(attempt).await;
            }
            Err(error) if error.is_contention() => {
                return Err(HandleError::Contended { pipeline: input.pipeline.to_owned() });
            }
            // The receipt that went with the state is there: a replay, or this push's own from an earlier attempt.
            Err(StoreError::Duplicate { .. }) if let Some(receipt) = unrecorded => {
                if let Some(answer) = record_first(store, receipt, execution_id).await? {
                    break (Handled::Duplicate { answer }, None, None);
                }
                unrecorded = None;
            }
            Err(StoreError::Duplicate { key }) => {
                let answer = store.receipt(&key).await?.map(|r| r.answer).unwrap_or_default();
                break (Handled::Duplicate { answer }, None, None);
            }
            Err(error) => return Err(error.into()),
        }
    };
    carry_on(store, runner, (input.pipeline, &owner, input.now), held, read).await;
    Ok(handled)
}

/// The run `event` is about; a pipeline's own event (a freeze) names none, and the empty id finds none.
fn named_run(event: &crate::pipeline::Event) -> crate::pipeline::ExecutionId {
    event.execution_id().cloned().unwrap_or_else(|| crate::pipeline::ExecutionId::from(""))
}

/// What became of an input whose change was saved: its run skipped at once, or applied.
fn recorded(next: &PipelineState, execution_id: &crate::pipeline::ExecutionId) -> Handled {
    match next.execution(execution_id) {
        Some(run) if run.status == Status::Skipped => {
            Handled::Skipped { reason: run.reason.clone().unwrap_or_default() }
        }
        _ => Handled::Applied,
    }
}

/// Carries out what the input left to do (`held`), or what an earlier invocation left (from the state `read`, or
/// read now): a redelivery carries it out. What fails stays in the outbox, logged.
async fn carry_on<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    (pipeline, owner, now): (&str, &str, DateTime<Utc>),
    held: Option<Held>,
    read: Option<Stored<PipelineState>>,
) {
    let carried = match (held, read) {
        (Some(held), _) => carry_out(store, runner, pipeline, held, owner, now).await,
        (None, Some(stored)) => flush_from(store, runner, pipeline, Some(stored), owner, now).await,
        (None, None) => flush(store, runner, pipeline, now).await,
    };
    if let Err(error) = carried {
        warn!(error = %Chain(&error), "effects stay in the outbox; the next invocation or the reconciler carries them out");
    }
}

/// What an input is decided from, or the answer it already got.
enum Basis {
    /// The pipeline's state (`None`: never stored), and whether it is the one the store remembers rather than one
    /// read now.
    Decide { stored: Option<Stored<PipelineState>>, remembered: bool },
    /// The input was handled before ([`record_first`]); `read` is the state if it was read meanwhile.
    Duplicate { answer: serde_json::Value, read: Option<Stored<PipelineState>> },
}

/// The state to decide from: the one the store remembers (tried once, when `recall`), else one read now, beside
/// which a receipt still `unrecorded` is recorded.
async fn basis<S: PipelineStore>(
    store: &S,
    pipeline: &str,
    recall: bool,
    unrecorded: &mut Option<&Receipt>,
    execution_id: &crate::pipeline::ExecutionId,
) -> Result<Basis, StoreError> {
    if let Some(stored) = recall.then(|| store.recall(pipeline)).flatten() {
        return Ok(Basis::Decide { stored, remembered: true });
    }
    let Some(receipt) = unrecorded.take() else {
        return Ok(Basis::Decide { stored: store.load(pipeline).await?, remembered: false });
    };
    let (state, earlier) =
        futures_util::future::join(store.load(pipeline), record_first(store, receipt, execution_id)).await;
    match earlier? {
        Some(answer) => Ok(Basis::Duplicate { answer, read: state.ok().flatten() }),
        None => Ok(Basis::Decide { stored: state?, remembered: false }),
    }
}

/// Logs why an input was refused: a warning when an operator should know.
fn log_refusal(handled: &Handled) {
    if let Handled::Refused(error) = handled {
        if error.wants_attention() {
            warn!(%error, "event refused: sluice could not do what the pipeline asked");
        } else {
            debug!(%error, "event refused");
        }
    }
}

/// A push's `write` ([`Recording::ReceiptFirst`]): new runs stay in the pipeline's item, and a receipt still
/// `unrecorded` is recorded first, or goes with the state when the run starts its build now (what CodeBuild answers
/// is saved next, the pipeline's item alone: so the push costs no more writes than one that waits). `Err(answer)`:
/// the push was handled before.
async fn receipt_first<'w, 'r: 'w, S: PipelineStore>(
    store: &S,
    write: Write<'w>,
    before: Option<&PipelineState>,
    unrecorded: &mut Option<&'r Receipt>,
    execution_id: &crate::pipeline::ExecutionId,
) -> Result<Result<Write<'w>, serde_json::Value>, StoreError> {
    let write = write.new_runs_in_the_state(before);
    match *unrecorded {
        Some(receipt) if builds_now(write.state, execution_id) => Ok(Ok(write.with_receipt(Some(receipt)))),
        Some(receipt) => match record_first(store, receipt, execution_id).await? {
            Some(answer) => Ok(Err(answer)),
            None => {
                *unrecorded = None;
                Ok(Ok(write))
            }
        },
        None => Ok(Ok(write)),
    }
}

/// Whether run `id` starts its build with this decision: its StartBuild is carried out now, and what CodeBuild
/// answers is saved next (the pipeline's item alone).
fn builds_now(state: &PipelineState, id: &crate::pipeline::ExecutionId) -> bool {
    state.execution(id).is_some_and(|run| run.status == Status::Running(crate::pipeline::Stage::BUILD))
}

/// The state `input` takes the pipeline to from `stored` (or from a new pipeline), its effects in the outbox; or,
/// when it changes nothing, what became of it (refused or ignored).
fn decide(stored: Option<&Stored<PipelineState>>, input: &Input<'_>) -> Result<PipelineState, Handled> {
    let fresh;
    let state = match stored {
        Some(stored) => &stored.value,
        None => {
            fresh = PipelineState::new(input.pipeline, input.mode);
            &fresh
        }
    };
    match transition(state, input.event, input.now) {
        Err(error) => Err(Handled::Refused(error)),
        Ok(Decision::Ignore(reason)) => Err(Handled::Ignored(reason)),
        Ok(Decision::Apply { state: mut next, effects }) => {
            next.enqueue(effects, stored.map_or(1, |stored| stored.version.0 + 1));
            next.drop_moot();
            Ok(next)
        }
    }
}

/// Carries out the pipeline's pending effects of the runner's kinds that are due (the reconciler's way, and a
/// redelivery's). Costs one read when there are none.
#[instrument(skip(store, runner, now))]
pub async fn flush<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    pipeline: &str,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    let stored = store.load(pipeline).await?;
    flush_from(store, runner, pipeline, stored, &invocation(), now).await
}

/// A doorbell could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum DoorbellError {
    #[error("not an event of the sluice bus: it names no pipeline (detail.pipeline)")]
    Unrecognised,
    #[error("the due effects of pipeline {pipeline} were not carried out yet")]
    Flush {
        pipeline: String,
        #[source]
        source: HandleError,
    },
}

/// Answers a doorbell: an event of the sluice bus that names a pipeline (`Deployment Requested`, `Execution
/// Finished`, `Effects Due`, ...) wakes the function that owns the effects it announces, which carries out those of
/// the pipeline that are due. Returns the pipeline.
pub async fn answer_doorbell<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    event: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<String, DoorbellError> {
    let Some(pipeline) = event.pointer("/detail/pipeline").and_then(serde_json::Value::as_str) else {
        warn!(event = %crate::runtime::telemetry::excerpt(event), "not an event of the sluice bus; ignored");
        return Err(DoorbellError::Unrecognised);
    };
    let kinds: Vec<&str> = runner.kinds().iter().map(|kind| kind.name()).collect();
    match flush(store, runner, pipeline, now).await {
        Ok(()) => {
            info!(pipeline, ?kinds, "due effects carried out");
            Ok(pipeline.to_owned())
        }
        Err(source) => {
            let error = DoorbellError::Flush { pipeline: pipeline.to_owned(), source };
            warn!(error = %Chain(&error), ?kinds, "due effects not carried out yet");
            Err(error)
        }
    }
}

/// As [`flush`], from a state already read.
async fn flush_from<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    pipeline: &str,
    mut stored: Option<Stored<PipelineState>>,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    for attempt in 1..=ATTEMPTS {
        let Some(Stored { value: state, version }) = stored else { return Ok(()) };
        if state.due(runner.kinds(), now).next().is_none() {
            return Ok(());
        }
        let mut next = state.clone();
        let claimed = next.claim(owner, runner.kinds(), now);
        match store.save(&Write::between(Some(&state), &next, Some(version))).await {
            Ok(version) => {
                next.set_apart();
                return carry_out(store, runner, pipeline, Held { state: next, version, claimed }, owner, now).await;
            }
            Err(error) if error.is_contention() && attempt < ATTEMPTS => {
                pause(attempt).await;
                stored = store.load(pipeline).await?;
            }
            Err(error) if error.is_contention() => break,
            Err(error) => return Err(error.into()),
        }
    }
    Err(HandleError::Contended { pipeline: pipeline.to_owned() })
}

/// What came of one effect this invocation carried out.
pub(super) struct Outcome {
    pub(super) pending: PendingEffect,
    pub(super) result: Result<Option<Event>, EffectError>,
}

/// Applies the event that followed from an effect to `state`, with the effects it decides.
fn follow(state: &mut PipelineState, event: &Event, version: u64, now: DateTime<Utc>) {
    match transition(state, event, now) {
        Ok(Decision::Apply { state: next, effects }) => {
            *state = next;
            state.enqueue(effects, version);
            state.drop_moot();
        }
        Ok(Decision::Ignore(reason)) => debug!(?reason, event = event.name(), "follow-up already applied"),
        Err(error) => warn!(%error, event = event.name(), "follow-up event refused"),
    }
}

/// Applies what came of the effects to `state`: done ones leave the outbox and their follow-up events go through the
/// machine; failed ones are rescheduled or parked. Returns the effects parked, for the log.
pub(super) fn apply_outcomes(
    state: &mut PipelineState,
    outcomes: &[Outcome],
    version: u64,
    now: DateTime<Utc>,
) -> Vec<(String, EffectKind, u32, String)> {
    let mut parked = Vec::new();
    for Outcome { pending, result } in outcomes {
        // A start held at its stage's gate records what it waits for (and GitHub is told), or that it no longer
        // does once a try fails otherwise.
        let held = |why| match &pending.effect {
            Effect::StartDeployment { execution_id, .. } => {
                Some(Event::StartHeld { execution_id: execution_id.clone(), why })
            }
            _ => None,
        };
        match result {
            Ok(follow_up) => {
                // A start that could not pass its stage's gate, which an operator lifted meanwhile: tried again now.
                let gate_failed = matches!(follow_up, Some(Event::DeploymentFailed { deployment_id: None, .. }));
                if gate_failed && state.changed_since(pending) {
                    continue;
                }
                state.complete(&pending.id);
                if let Some(event) = follow_up {
                    follow(state, event, version, now);
                }
            }
            Err(error) if error.waits => {
                let (again, why) =
                    (error.not_before.map_or(now + WAIT, |at| at.max(now + WAIT)), error.source.to_string());
                if state.wait(pending, &why, again)
                    && let Some(event) = held(Some(why))
                {
                    follow(state, &event, version, now);
                }
            }
            Err(error) => {
                let message = Chain(error).to_string();
                if let Retry::Parked { attempts } = state.fail(&pending.id, &message, error.permanent, now) {
                    parked.push((pending.id.clone(), pending.effect.kind(), attempts, message));
                }
                if let Some(event) = held(None) {
                    follow(state, &event, version, now);
                }
            }
        }
    }
    parked
}

/// Carries out the effects `held` has claimed, saves what came of them (merging into a fresh read if someone wrote
/// meanwhile), and goes on with the effects that followed, for a few rounds.
async fn carry_out<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    pipeline: &str,
    mut held: Held,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    for _ in 0..MAX_ROUNDS {
        if held.claimed.is_empty() {
            return Ok(());
        }
        let results = runner.run_all(&held.claimed).await;
        let outcomes: Vec<Outcome> = std::mem::take(&mut held.claimed)
            .into_iter()
            .zip(results)
            .map(|(pending, result)| Outcome { pending, result })
            .collect();
        let (mut base, mut version) = (held.state, held.version);
        let mut attempt = 0;
        held = loop {
            let mut next = base.clone();
            let parked = apply_outcomes(&mut next, &outcomes, version.0 + 1, now);
            let claimed = next.claim(owner, runner.kinds(), now);
            match store.save(&Write::between(Some(&base), &next, Some(version))).await {
                Ok(saved) => {
                    next.set_apart();
                    for (id, kind, attempts, message) in parked {
                        // One line an alarm can match: `{ $.fields.message = "sluice.effect_parked" }` (template.yaml has it).
                        error!(pipeline, effect = %id, kind = kind.name(), attempts, error = %message, "sluice.effect_parked");
                    }
                    break Held { state: next, version: saved, claimed };
                }
                Err(error) if error.is_contention() && attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    pause(attempt).await;
                    let Some(stored) = store.load(pipeline).await? else { return Ok(()) };
                    (base, version) = (stored.value, stored.version);
                }
                Err(error) if error.is_contention() => {
                    return Err(HandleError::Contended { pipeline: pipeline.to_owned() });
                }
                Err(error) => return Err(error.into()),
            }
        };
    }
    Ok(())
}

/// Puts a parked effect back in the pipeline's outbox, to be carried out by its owner's next invocation (or the
/// reconciler's). False if the pipeline has no parked effect of that id.
#[instrument(skip(store))]
pub async fn retry_parked<S: PipelineStore>(store: &S, pipeline: &str, effect_id: &str) -> Result<bool, HandleError> {
    for attempt in 1..=ATTEMPTS {
        let Some(Stored { value: state, version }) = store.load(pipeline).await? else { return Ok(false) };
        let mut next = state.clone();
        if !next.unpark(effect_id) {
            return Ok(false);
        }
        match store.save(&Write::between(Some(&state), &next, Some(version))).await {
            Ok(_) => return Ok(true),
            Err(error) if error.is_contention() && attempt < ATTEMPTS => pause(attempt).await,
            Err(error) if error.is_contention() => break,
            Err(error) => return Err(error.into()),
        }
    }
    Err(HandleError::Contended { pipeline: pipeline.to_owned() })
}
