//! `sluice rollback` of a run in progress: the operator's order is recorded on the run deploying
//! (`RollbackOrdered`), and its `StopDeployment` is carried out at once by the runner given (the command's own, with
//! the operator's credentials); a stop that cannot be made now stays in the outbox for the deployer. The
//! deployment's own events then end the run `rolled_back`, naming the operator.

use chrono::{DateTime, Utc};

use super::{EffectRunner, HandleError, Handled, Input, handle};
use crate::contract::ports::PipelineStore;
use crate::pipeline::{EffectKind, Event, ExecutionId, Stage, TransitionError};

/// What became of an order to roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOrdered {
    pub execution_id: ExecutionId,
    pub commit: String,
    /// The deployment sluice stops (the CodeDeploy deployment id, or the ECS service deployment ARN).
    pub deployment: String,
    pub stop: Stop,
}

/// Where the stop is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// CodeDeploy or ECS took it: the deployment is rolling back.
    Made,
    /// The run's rollback was already ordered; nothing more was done.
    AlreadyOrdered,
    /// It could not be made now (why): it stays in the outbox, and the deployer tries again.
    Pending(String),
    /// CodeDeploy or ECS refused it (why): it is parked, for `sluice retry-effect`.
    Parked { id: String, error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("pipeline {0} has never run")]
    UnknownPipeline(String),
    #[error("pipeline {0} has no run deploying: there is nothing in progress to roll back")]
    NothingDeploying(String),
    #[error(transparent)]
    Refused(TransitionError),
    #[error(transparent)]
    Handle(#[from] HandleError),
}

/// Orders the deployment of `pipeline`'s run now deploying (at `stage`, if given) stopped and rolled back, as `by`
/// (the operator's identity); `runner` carries out the stop at once.
pub async fn order_rollback<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    (pipeline, stage): (&str, Option<Stage>),
    by: &str,
    now: DateTime<Utc>,
) -> Result<RollbackOrdered, RollbackError> {
    let state = store.load(pipeline).await.map_err(HandleError::from)?;
    let state = state.ok_or_else(|| RollbackError::UnknownPipeline(pipeline.to_owned()))?.value;
    // With runs deploying at several stages, the one furthest along the line (production before staging). A run
    // that soaks there has nothing in progress to stop (its deployment is done): the caller deploys the release
    // before instead.
    let run = state
        .active()
        .filter_map(|run| run.deploying().map(|(at, _)| (at, run)))
        .filter(|(at, _)| stage.is_none_or(|stage| stage == *at))
        .map(|(at, run)| (run.plan.position(at), run))
        .max_by_key(|(position, _)| *position)
        .map(|(_, run)| run)
        .filter(|run| run.soaking().is_none())
        .ok_or_else(|| RollbackError::NothingDeploying(pipeline.to_owned()))?;
    let (execution_id, commit) = (run.id.clone(), run.source.commit.clone());
    // The deployment in progress when the order is given: by the time the order is recorded, ECS or CodeDeploy may
    // already have ended it and the run let it go.
    let deployment = run
        .target()
        .zip(run.deploy())
        .and_then(|(target, deploy)| match target {
            crate::definitions::DeployTarget::EcsNative(_) => deploy.service_deployment.clone(),
            _ => deploy.deployment_id.clone(),
        })
        .unwrap_or_default();
    let event = Event::RollbackOrdered { execution_id: execution_id.clone(), by: by.to_owned() };
    let input = Input { pipeline, mode: state.mode, event: &event, receipt: None, now };
    let handled = handle(store, runner, input).await?;
    let after = store.load(pipeline).await.map_err(HandleError::from)?.map(|stored| stored.value);
    let after = after.as_ref();
    let stop = match handled {
        Handled::Refused(error) => return Err(RollbackError::Refused(error)),
        Handled::Ignored(_) | Handled::Duplicate { .. } => Stop::AlreadyOrdered,
        Handled::Applied | Handled::Skipped { .. } => {
            let ours = |kind: EffectKind, id: Option<&ExecutionId>| {
                kind == EffectKind::StopDeployment && id == Some(&execution_id)
            };
            let pending =
                after.and_then(|state| state.pending.iter().find(|p| ours(p.effect.kind(), p.effect.execution_id())));
            let parked =
                after.and_then(|state| state.parked.iter().find(|p| ours(p.effect.kind(), p.effect.execution_id())));
            match (pending, parked) {
                (Some(pending), _) => {
                    Stop::Pending(pending.last_error.clone().unwrap_or_else(|| "not tried yet".to_owned()))
                }
                (None, Some(parked)) => Stop::Parked { id: parked.id.clone(), error: parked.error.clone() },
                (None, None) => Stop::Made,
            }
        }
    };
    Ok(RollbackOrdered { execution_id, commit, deployment, stop })
}
