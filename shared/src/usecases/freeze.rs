//! `sluice freeze` and `sluice unfreeze`: an operator stops the line of some pipelines, or all, and lets it go again.
//! The freeze is recorded on each pipeline (`Event::Frozen`, `Event::Unfrozen`) as the caller's AWS identity. What the
//! lift sets going (a deployment's start, a held pause's continuation) is announced at once by the runner given (the
//! command's own, with the caller's credentials), and the functions that own the rest are woken (`Effects Due`).

use chrono::{DateTime, Utc};
use tracing::warn;

use super::reconcile::effects_due;
use super::{EffectRunner, HandleError, Handled, Input, handle};
use crate::contract::ports::{DefinitionsStore, PipelineStore, StoreError};
use crate::definitions::{Definitions, Pipeline};
use crate::pipeline::{Event, ExecutionId, PipelineState, Stage, Status, TransitionError};
use crate::runtime::telemetry::Chain;

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeOrder<'a> {
    /// Stop the line, saying why, until a time or until someone unfreezes it.
    Freeze {
        reason: &'a str,
        until: Option<DateTime<Utc>>,
    },
    Unfreeze,
}

/// What became of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeDone {
    pub pipeline: String,
    /// False when there was nothing to do: unfreezing a pipeline that was not frozen.
    pub changed: bool,
    /// The runs deploying now (their deployments go on; their pauses are held while frozen), with their stage.
    pub deploying: Vec<(ExecutionId, Stage)>,
    /// The runs waiting for a stage now.
    pub waiting: Vec<(ExecutionId, Stage)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error("no definitions are published: run `sluice publish FILE`")]
    NoDefinitions,
    #[error("the published definitions do not parse: publish them again")]
    Unparsable,
    #[error("pipeline {0} is not in the published definitions: `sluice show` prints them")]
    UnknownPipeline(String),
    #[error("name the pipelines to freeze, or say --all")]
    NoPipelines,
    #[error("there is no run {0}: `sluice history PIPELINE` lists them")]
    UnknownRun(String),
    #[error("{pipeline}: {source}")]
    Refused {
        pipeline: String,
        #[source]
        source: TransitionError,
    },
    #[error(transparent)]
    Handle(#[from] HandleError),
}

impl From<StoreError> for FreezeError {
    fn from(error: StoreError) -> Self {
        FreezeError::Handle(error.into())
    }
}

/// Freezes or unfreezes `pipelines` (all the published ones if empty and `all`), as `by`, at `now`; names are checked
/// against the published definitions before any pipeline changes.
pub async fn set_freeze<S, R>(
    store: &S,
    runner: &R,
    (pipelines, all): (&[String], bool),
    order: FreezeOrder<'_>,
    (by, now): (&str, DateTime<Utc>),
) -> Result<Vec<FreezeDone>, FreezeError>
where
    S: PipelineStore + DefinitionsStore,
    R: EffectRunner,
{
    let published = store.current().await?.ok_or(FreezeError::NoDefinitions)?;
    let definitions =
        Definitions::parse("the published definitions", &published.text).map_err(|_| FreezeError::Unparsable)?;
    let chosen: Vec<&Pipeline> = match (pipelines, all) {
        ([], true) => definitions.iter().collect(),
        ([], false) => return Err(FreezeError::NoPipelines),
        (names, _) => names
            .iter()
            .map(|name| definitions.get(name).ok_or_else(|| FreezeError::UnknownPipeline(name.clone())))
            .collect::<Result<_, _>>()?,
    };
    let event = match order {
        FreezeOrder::Freeze { reason, until } => Event::Frozen { by: by.to_owned(), reason: reason.to_owned(), until },
        FreezeOrder::Unfreeze => Event::Unfrozen { by: Some(by.to_owned()) },
    };
    let mut done = Vec::new();
    for pipeline in chosen {
        let input = Input { pipeline: &pipeline.name, mode: pipeline.mode, event: &event, receipt: None, now };
        let changed = match handle(store, runner, input).await? {
            Handled::Refused(source) => return Err(FreezeError::Refused { pipeline: pipeline.name.clone(), source }),
            Handled::Ignored(_) | Handled::Duplicate { .. } => false,
            Handled::Applied | Handled::Skipped { .. } => true,
        };
        let state = store.load(&pipeline.name).await?.map(|stored| stored.value);
        let state = state.unwrap_or_else(|| PipelineState::new(pipeline.name.clone(), pipeline.mode));
        if changed {
            wake_owners(runner, &state, now).await;
        }
        done.push(standing(&state, changed));
    }
    Ok(done)
}

/// An operator's override, as recorded: the run, where it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideDone {
    pub execution_id: ExecutionId,
    pub pipeline: String,
    pub status: Status,
    /// False when the same override was already given.
    pub changed: bool,
}

/// Lets run `run` into deploy stage `stage` whatever holds runs out of it (a freeze), as `by`, saying why; what it
/// sets going is announced at once by `runner` and the owners of the rest are woken.
pub async fn order_override<S, R>(
    store: &S,
    runner: &R,
    (run, stage): (&str, Stage),
    reason: &str,
    (by, now): (&str, DateTime<Utc>),
) -> Result<OverrideDone, FreezeError>
where
    S: PipelineStore,
    R: EffectRunner,
{
    let execution_id = ExecutionId::from(run);
    let found = store.execution(&execution_id).await?.ok_or_else(|| FreezeError::UnknownRun(run.to_owned()))?;
    let event =
        Event::Overridden { execution_id: execution_id.clone(), stage, by: by.to_owned(), reason: reason.to_owned() };
    let input = Input { pipeline: &found.pipeline, mode: Default::default(), event: &event, receipt: None, now };
    let changed = match handle(store, runner, input).await? {
        Handled::Refused(source) => return Err(FreezeError::Refused { pipeline: found.pipeline, source }),
        Handled::Ignored(_) | Handled::Duplicate { .. } => false,
        Handled::Applied | Handled::Skipped { .. } => true,
    };
    let state = store.load(&found.pipeline).await?.map(|stored| stored.value);
    if let Some(state) = state.as_ref().filter(|_| changed) {
        wake_owners(runner, state, now).await;
    }
    let status = state.as_ref().and_then(|state| state.execution(&execution_id)).map_or(found.status, |r| r.status);
    Ok(OverrideDone { execution_id, pipeline: found.pipeline, status, changed })
}

/// Rings the doorbell of each function with effects due that `runner` does not carry out (the deployer's start of
/// a deployment or continuation of a pause): the reconciler would, at its next look.
async fn wake_owners<R: EffectRunner>(runner: &R, state: &PipelineState, now: DateTime<Utc>) {
    let doorbells = effects_due(state, runner.kinds(), now);
    for (rung, result) in doorbells.iter().zip(runner.run_all(&doorbells).await) {
        if let Err(error) = result {
            warn!(error = %Chain(&error), effect = %rung.effect.describe(), "owner not woken; the reconciler will");
        }
    }
}

/// Where `state`'s runs stand, for the operator.
fn standing(state: &PipelineState, changed: bool) -> FreezeDone {
    let mut done = FreezeDone { pipeline: state.pipeline.clone(), changed, deploying: Vec::new(), waiting: Vec::new() };
    for run in state.active() {
        match (run.status, run.deploying()) {
            (Status::Waiting(stage), _) => done.waiting.push((run.id.clone(), stage)),
            (Status::Running(stage), Some(_)) => done.deploying.push((run.id.clone(), stage)),
            _ => {}
        }
    }
    done
}
