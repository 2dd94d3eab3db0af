//! Runs an operator orders from the `sluice` command, through the pipeline's current definition:
//! - `sluice rollback PIPELINE --to RUN` (or, with nothing deploying, the succeeded run before the last one): a run
//!   that deploys what that run built, through the pipeline's deploy strategy and hooks (`Event::Redeployed`);
//! - `sluice retry RUN`: a run whose deployment failed is deployed again with the same build; any other run that
//!   did not succeed (its build failed, it was rejected or timed out) is built again from the same commit, and asks
//!   for its approval again;
//! - `sluice rerun PIPELINE COMMIT`: a new run of a commit the pipeline already ran, from its build on.
//!
//! The runner carries the new run's first effects out at once (the command's own: its announcement, and a build).

use chrono::{DateTime, Utc};

use super::{EffectRunner, HandleError, Handled, Input, handle};
use crate::contract::ports::{DefinitionsStore, PipelineStore, StoreError};
use crate::definitions::{Definitions, Pipeline};
use crate::pipeline::{Event, Execution, ExecutionId, Plan, SourceFacts, Stage, Status, TransitionError, short_commit};

/// How many runs back `rollback` and `rerun` look.
pub const LOOK_BACK: usize = 100;

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order<'a> {
    /// Deploy what `to` built (`None`: the succeeded run before the last succeeded one); with `stage`, to that deploy
    /// stage alone (`None`: the run before the last that got past it).
    RollbackTo { pipeline: &'a str, to: Option<&'a str>, stage: Option<Stage> },
    /// Run a failed run's failed stage again.
    Retry { run: &'a str },
    /// Run `commit` (or a commit it starts) again, from its build on.
    Rerun { pipeline: &'a str, commit: &'a str },
}

/// The run ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    pub execution_id: ExecutionId,
    pub pipeline: String,
    /// The earlier run it repeats.
    pub of: ExecutionId,
    pub commit: String,
    /// True when it deploys the earlier run's build; false when it builds the commit again.
    pub redeploys: bool,
    /// Where the new run stands now (running deploy, waiting for deploy, running build, ...).
    pub status: Status,
    /// Why it ended as soon as it was ordered (skipped: its commit is behind its ref's head).
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("there is no run {0}: `sluice history PIPELINE` lists them")]
    UnknownRun(String),
    #[error("pipeline {0} is not in the published definitions: `sluice show` prints them")]
    UnknownPipeline(String),
    #[error("no definitions are published: run `sluice publish FILE`")]
    NoDefinitions,
    #[error("run {run} is {status}: only a run that did not succeed can be retried")]
    NotRetryable { run: ExecutionId, status: Status },
    #[error("run {run} is {status}: only a succeeded run's build is rolled back to")]
    NotSucceeded { run: ExecutionId, status: Status },
    #[error("pipeline {0} has no succeeded run before its last one to roll back to: name one with --to RUN")]
    NothingEarlier(String),
    #[error("run {run} never got past stage {stage}: roll {stage} back to a run that did")]
    NotPassed { run: ExecutionId, stage: Stage },
    #[error("pipeline {pipeline} has no deploy stage {stage}: `sluice show` prints its stages")]
    UnknownStage { pipeline: String, stage: Stage },
    #[error("pipeline {pipeline} ran no commit starting {commit} in its last {LOOK_BACK} runs")]
    UnknownCommit { pipeline: String, commit: String },
    #[error("run {0} belongs to pipeline {1}, not {2}")]
    OtherPipeline(ExecutionId, String, String),
    #[error(transparent)]
    Refused(TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Handle(#[from] HandleError),
}

/// Orders the run `order` describes, as `by` (the operator's identity), and carries out its first effects with
/// `runner`.
pub async fn order_run<S, R>(
    store: &S,
    runner: &R,
    order: Order<'_>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Ordered, OrderError>
where
    S: PipelineStore + DefinitionsStore,
    R: EffectRunner,
{
    let published = store.current().await?.ok_or(OrderError::NoDefinitions)?;
    let definitions = Definitions::parse("the published definitions", &published.text);
    let only = match order {
        Order::RollbackTo { pipeline, stage: Some(stage), .. } => {
            let deploys = definitions
                .as_ref()
                .ok()
                .and_then(|definitions| definitions.get(pipeline))
                .is_some_and(|pipeline| pipeline.deploy_stages().any(|(deploy, _)| deploy == stage));
            if !deploys {
                return Err(OrderError::UnknownStage { pipeline: pipeline.to_owned(), stage });
            }
            Some(stage)
        }
        _ => None,
    };
    let retry = matches!(order, Order::Retry { .. });
    let (earlier, redeploy, why) = earlier_run(store, order, by).await?;
    // A retry of an operator's rollback of one stage deploys to that stage alone again, where the pipeline still
    // deploys there.
    let only = only.or(if retry && redeploy { earlier.only } else { None });
    let definitions = definitions.map_err(|_| OrderError::UnknownPipeline(earlier.pipeline.clone()))?;
    let pipeline =
        definitions.get(&earlier.pipeline).ok_or_else(|| OrderError::UnknownPipeline(earlier.pipeline.clone()))?;
    if let Some(stage) = only.filter(|stage| !pipeline.deploy_stages().any(|(deploy, _)| deploy == *stage)) {
        return Err(OrderError::UnknownStage { pipeline: pipeline.name.clone(), stage });
    }
    let state = store.load(&pipeline.name).await?;
    let next = state.as_ref().map_or(1, |stored| stored.value.next_seq);
    let kind = if redeploy { "redeploy" } else { "rerun" };
    let execution_id = ExecutionId(format!("{}-{kind}-{next}", pipeline.name));
    let event = ordered_event(pipeline, &earlier, &execution_id, (redeploy, why, only), by)?;
    let input = Input { pipeline: &pipeline.name, mode: pipeline.mode, event: &event, receipt: None, now };
    match handle(store, runner, input).await? {
        Handled::Refused(error) => return Err(OrderError::Refused(error)),
        Handled::Applied | Handled::Skipped { .. } | Handled::Ignored(_) | Handled::Duplicate { .. } => {}
    }
    let ordered =
        store.execution(&execution_id).await?.ok_or_else(|| OrderError::UnknownRun(execution_id.0.clone()))?;
    Ok(Ordered {
        execution_id,
        pipeline: pipeline.name.clone(),
        of: earlier.id,
        commit: earlier.source.commit,
        redeploys: redeploy,
        status: ordered.status,
        reason: ordered.reason,
    })
}

/// The earlier run an order is of, whether it is deployed again (its build) or built again, and why, as the run will
/// say.
async fn earlier_run<S: PipelineStore>(
    store: &S,
    order: Order<'_>,
    by: &str,
) -> Result<(Execution, bool, String), OrderError> {
    Ok(match order {
        Order::RollbackTo { pipeline, to, stage } => {
            // With a stage: a run that got past it; without: a run that succeeded.
            let fit = |run: &Execution| match stage {
                Some(stage) => run.passed(stage),
                None => run.status == Status::Succeeded,
            };
            let earlier = match to {
                Some(to) => {
                    let run = run(store, to).await?;
                    if run.pipeline != pipeline {
                        return Err(OrderError::OtherPipeline(run.id, run.pipeline, pipeline.to_owned()));
                    }
                    run
                }
                None => {
                    let history = store.history(pipeline, LOOK_BACK).await?;
                    let mut fitting = history.into_iter().filter(|run| fit(run) && run.build.is_some());
                    fitting.nth(1).ok_or_else(|| OrderError::NothingEarlier(pipeline.to_owned()))?
                }
            };
            match stage {
                Some(stage) if !fit(&earlier) => return Err(OrderError::NotPassed { run: earlier.id, stage }),
                None if !fit(&earlier) => {
                    return Err(OrderError::NotSucceeded { run: earlier.id, status: earlier.status });
                }
                _ => {}
            }
            let of = stage.map(|stage| format!(" of {stage}")).unwrap_or_default();
            let why = format!("rollback{of} to run #{} ({}) by {by}", earlier.seq, earlier.id);
            (earlier, true, why)
        }
        Order::Retry { run: id } => {
            let earlier = run(store, id).await?;
            if !earlier.retryable() {
                return Err(OrderError::NotRetryable { run: earlier.id, status: earlier.status });
            }
            let why = format!("retry of run #{} ({}) by {by}", earlier.seq, earlier.id);
            let redeploy = earlier.retry_stage().is_some();
            (earlier, redeploy, why)
        }
        Order::Rerun { pipeline, commit } => {
            let history = store.history(pipeline, LOOK_BACK).await?;
            let earlier = history.into_iter().find(|run| !commit.is_empty() && run.source.commit.starts_with(commit));
            let earlier = earlier.ok_or_else(|| OrderError::UnknownCommit {
                pipeline: pipeline.to_owned(),
                commit: commit.to_owned(),
            })?;
            let why = format!("rerun of commit {} by {by}", short_commit(&earlier.source.commit));
            (earlier, false, why)
        }
    })
}

/// The event that starts the ordered run, pure: the earlier run's build deployed again, or its commit built again
/// by the operator.
fn ordered_event(
    pipeline: &Pipeline,
    earlier: &Execution,
    execution_id: &ExecutionId,
    (redeploy, why, only): (bool, String, Option<Stage>),
    by: &str,
) -> Result<Event, OrderError> {
    // An operator's order is not a push: how the push was ordered against its ref's head is the earlier run's.
    let mut source = SourceFacts { compared: None, ..earlier.source.clone() };
    if redeploy {
        let build = earlier
            .build
            .clone()
            .ok_or_else(|| OrderError::NotSucceeded { run: earlier.id.clone(), status: earlier.status })?;
        let (plan, retry) = (Plan::from(pipeline), earlier.retryable());
        Ok(Event::Redeployed {
            execution_id: execution_id.clone(),
            source,
            mode: pipeline.mode,
            build,
            ordered: why,
            // A retry enters the stage the run did not get past, where the pipeline still deploys or tests there; a
            // rollback deploys to its stage alone, or from the first deploy stage.
            stage: match only {
                Some(only) => Some(only).filter(|stage| plan.deploy_stage(*stage).is_some()),
                None => retry.then(|| earlier.retry_stage()).flatten().filter(|stage| {
                    plan.stage(*stage).is_some_and(|planned| planned.deploy().is_some() || planned.test().is_some())
                }),
            },
            only: only.is_some(),
            plan: Box::new(plan),
        })
    } else {
        // A new build of the same commit, by the operator. A commit its ref has moved past is skipped: sluice never
        // deploys backwards by rebuilding (a rollback deploys an earlier build).
        source.pusher = by.to_owned();
        source.delivery_id = execution_id.0.clone();
        Ok(Event::Triggered {
            execution_id: execution_id.clone(),
            source,
            plan: Box::new(Plan::from(pipeline)),
            mode: pipeline.mode,
            ordered: Some(why),
        })
    }
}

async fn run<S: PipelineStore>(store: &S, id: &str) -> Result<Execution, OrderError> {
    let run = store.execution(&ExecutionId(id.to_owned())).await?;
    run.ok_or_else(|| OrderError::UnknownRun(id.to_owned()))
}
