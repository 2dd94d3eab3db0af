//! What became of a deployment, as CodeDeploy's "CodeDeploy Deployment State-change Notification"
//! (<https://docs.aws.amazon.com/codedeploy/latest/userguide/monitoring-cloudwatch-events.html>) and ECS's
//! "ECS Deployment State Change" (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html>)
//! events tell it: the run that started the deployment ends `succeeded`, `rolled_back` or `failed`, with the
//! reason.

use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::{info, instrument, warn};

use crate::runtime::telemetry::Chain;

use crate::contract::ports::{
    BlueGreenDeployments, DefinitionsStore, DeployError, NativeDeployments, PipelineStore, ReceiptKey, ServiceTasks,
    stopped_link,
};
use crate::definitions::DeployTarget;
use crate::pipeline::{Event, Execution, ExecutionId};
use crate::usecases::{EffectRunner, HandleError, Handled, Input, handle};

/// What one deployment event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentChange {
    /// CodeDeploy's `state`: START, SUCCESS, FAILURE, STOP or READY.
    CodeDeploy { state: String },
    /// ECS's `eventName` (SERVICE_DEPLOYMENT_IN_PROGRESS, _COMPLETED, _FAILED) and `reason`.
    Ecs { event_name: String, reason: Option<String> },
    /// ECS's "ECS Hook State Change" `eventName` (HOOK_AWAITING_ACTION: a PAUSE hook waits for
    /// ContinueServiceDeployment). Only a doorbell: DescribeServiceDeployments says which hook, where, until when.
    /// `also`: the event's other ids, tried after `deployment_id` (AWS documents the event's name, not its detail).
    EcsHook { event_name: String, also: Vec<String> },
}

impl DeploymentChange {
    /// The state it reports: CodeDeploy's `state` or ECS's `eventName`.
    pub fn state(&self) -> &str {
        match self {
            DeploymentChange::CodeDeploy { state } => state,
            DeploymentChange::Ecs { event_name, .. } | DeploymentChange::EcsHook { event_name, .. } => event_name,
        }
    }
}

/// The facts of one deployment event that sluice uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStateChange {
    /// The EventBridge event id (deduplicates redeliveries).
    pub event_id: String,
    /// CodeDeploy's deployment id, or ECS's service deployment id (`ecs-svc/...`) or service deployment ARN.
    pub deployment_id: String,
    pub change: DeploymentChange,
}

/// What became of the event.
#[derive(Debug, Clone, PartialEq)]
pub enum DeploymentEventOutcome {
    /// Not a deployment sluice started, or a state sluice does not act on (a deployment starting).
    NotOurs(&'static str),
    /// A pause awaits action, but no id the event carries names a run's deployment: the runs deploying are to be
    /// asked about ([`record_paused_deployments`]).
    UnknownPause,
    Handled(Handled),
}

/// A deployment event that could not be recorded now; delivering it again can succeed.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentEventError {
    #[error(transparent)]
    Handle(#[from] HandleError),
    #[error("deployment {deployment_id} could not be looked up")]
    Lookup {
        deployment_id: String,
        #[source]
        source: DeployError,
    },
}

impl DeploymentEventError {
    pub fn is_retryable(&self) -> bool {
        match self {
            DeploymentEventError::Handle(error) => error.is_retryable(),
            DeploymentEventError::Lookup { source, .. } => !matches!(source, DeployError::Refused { .. }),
        }
    }
}

/// The run a deployment belongs to: by the link written when the run recorded it, or, for a CodeDeploy deployment
/// whose start the run has not recorded yet, by the description sluice gave it.
pub(crate) async fn owner<S: PipelineStore, B: BlueGreenDeployments>(
    store: &S,
    blue_green: &B,
    deployment_id: &str,
    is_blue_green: bool,
) -> Result<Option<(String, ExecutionId)>, DeploymentEventError> {
    if let Some(link) = store.find(deployment_id).await.map_err(HandleError::from)? {
        return Ok(Some((link.pipeline, link.execution)));
    }
    if !is_blue_green {
        return Ok(None);
    }
    let report = match blue_green.report(deployment_id).await {
        Ok(report) => report,
        // CodeDeploy refuses to describe a deployment of an application sluice may not read (the rule takes only the
        // stack's applications, but a pattern may be wider than the policy): not sluice's.
        Err(error @ DeployError::Refused { .. }) => {
            warn!(error = %Chain(&error), deployment = deployment_id, "the deployment could not be looked up; not sluice's");
            return Ok(None);
        }
        Err(source) => return Err(DeploymentEventError::Lookup { deployment_id: deployment_id.to_owned(), source }),
    };
    let Some(execution) =
        report.and_then(|r| r.description).and_then(|d| crate::deploy::execution_of(&d).map(ExecutionId::from))
    else {
        return Ok(None);
    };
    let found = store.execution(&execution).await.map_err(HandleError::from)?;
    Ok(found.map(|run| (run.pipeline, execution)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeploymentState {
    Succeeded,
    Failed,
    Stopped,
}

/// How a deployment ended, as the service said it, and whether the service rolled it back.
struct Ended<'a> {
    state: DeploymentState,
    message: Option<&'a str>,
    rolled_back: bool,
    service: &'static str,
}

/// The event of the run whose deployment ended as `ended` says.
fn outcome(execution_id: &ExecutionId, deployment_id: &str, ended: &Ended<'_>) -> Event {
    let (execution_id, deployment_id) = (execution_id.clone(), deployment_id.to_owned());
    if ended.state == DeploymentState::Succeeded {
        return Event::DeploymentSucceeded { execution_id, deployment_id, tasks: None };
    }
    let what = match (ended.state, ended.rolled_back) {
        (DeploymentState::Stopped, true) => "stopped the deployment and rolled it back",
        (DeploymentState::Stopped, false) => "stopped the deployment",
        (_, true) => "failed the deployment and rolled it back",
        (_, false) => "failed the deployment",
    };
    let service = ended.service;
    let reason = match ended.message.filter(|m| !m.is_empty()) {
        Some(message) => format!("{service} {what}: {message}"),
        None => format!("{service} {what}"),
    };
    Event::DeploymentFailed { execution_id, deployment_id: Some(deployment_id), reason, rolled_back: ended.rolled_back }
}

/// The event a PAUSE hook's `HOOK_AWAITING_ACTION` is, for run `execution_id`: which hook of its service deployment
/// waits, where, until when, as DescribeServiceDeployments tells it; `None` if none waits (already continued).
async fn paused<S: PipelineStore, N: NativeDeployments>(
    store: &S,
    native: &N,
    execution_id: &ExecutionId,
) -> Result<Option<Event>, DeploymentEventError> {
    let run = store.execution(execution_id).await.map_err(HandleError::from)?;
    let Some(arn) = run.as_ref().and_then(|run| run.deploy()?.service_deployment.clone()) else {
        return Ok(None);
    };
    let lookup = |source| DeploymentEventError::Lookup { deployment_id: arn.clone(), source };
    let Some(pause) = native.describe(&arn).await.map_err(lookup)?.and_then(|report| report.awaiting) else {
        return Ok(None);
    };
    Ok(Some(Event::DeploymentPaused {
        execution_id: execution_id.clone(),
        service_deployment: arn,
        hook_id: pause.hook_id,
        stage: pause.stage,
        expires_at: pause.expires_at,
        timeout_action: pause.timeout_action,
    }))
}

/// `said`, of a deployment that sluice stopped for a newer run (superseded mode, noted under
/// [`stopped_link`]`(stopped)`), is no failure of this run's code: the run is superseded.
async fn superseded<S: PipelineStore>(store: &S, stopped: &str, said: Event) -> Result<Event, DeploymentEventError> {
    let Event::DeploymentFailed { execution_id, deployment_id, reason, rolled_back } = said else { return Ok(said) };
    match store.find(&stopped_link(stopped)).await.map_err(HandleError::from)? {
        Some(by) => Ok(Event::DeploymentSuperseded {
            execution_id,
            deployment_id: deployment_id.unwrap_or_default(),
            by: by.execution,
            by_pipeline: by.pipeline,
            reason,
        }),
        None => Ok(Event::DeploymentFailed { execution_id, deployment_id, reason, rolled_back }),
    }
}

/// What "ECS Hook State Change" says when a PAUSE hook waits for ContinueServiceDeployment
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html>).
pub const AWAITING_ACTION: &str = "HOOK_AWAITING_ACTION";

/// Records one deployment event on the run that started the deployment.
#[instrument(skip_all, fields(deployment = %change.deployment_id))]
pub async fn record_deployment_event<S, R, B, N>(
    store: &S,
    runner: &R,
    blue_green: &B,
    native: &N,
    change: &DeploymentStateChange,
    now: DateTime<Utc>,
) -> Result<DeploymentEventOutcome, DeploymentEventError>
where
    S: PipelineStore,
    R: EffectRunner,
    B: BlueGreenDeployments,
    N: NativeDeployments + ServiceTasks,
{
    let deployment_id = change.deployment_id.as_str();
    let (is_blue_green, state) = (matches!(change.change, DeploymentChange::CodeDeploy { .. }), change.change.state());
    let acted_on =
        ["SUCCESS", "FAILURE", "STOP", "SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_DEPLOYMENT_FAILED", AWAITING_ACTION];
    if !acted_on.contains(&state) {
        return Ok(DeploymentEventOutcome::NotOurs("a deployment state sluice does not act on"));
    }
    let owned = match &change.change {
        DeploymentChange::EcsHook { also, .. } => match paused_run(store, deployment_id, also).await? {
            Some(found) => Some(found),
            None => return Ok(DeploymentEventOutcome::UnknownPause),
        },
        _ => owner(store, blue_green, deployment_id, is_blue_green).await?,
    };
    let Some((pipeline, execution_id)) = owned else {
        return Ok(DeploymentEventOutcome::NotOurs("not a deployment sluice started"));
    };
    let event = match &change.change {
        DeploymentChange::EcsHook { .. } => match paused(store, native, &execution_id).await? {
            Some(event) => event,
            None => return Ok(DeploymentEventOutcome::NotOurs("no pause of the run's deployment awaits action")),
        },
        DeploymentChange::CodeDeploy { state } => {
            codedeploy_ended(store, blue_green, (&execution_id, deployment_id), state).await?
        }
        DeploymentChange::Ecs { event_name, reason } => {
            let ecs = (event_name.as_str(), reason.as_deref());
            ecs_ended(store, native, (&execution_id, deployment_id), ecs).await?
        }
    };
    let event = with_tasks(store, native, event).await?;
    let answer = json!({ "execution_id": execution_id, "deployment_id": deployment_id });
    let input = Input {
        pipeline: &pipeline,
        mode: Default::default(),
        event: &event,
        receipt: Some((ReceiptKey::event(&change.event_id), answer)),
        now,
    };
    let handled = handle(store, runner, input).await?;
    info!(?handled, event = event.name(), "deployment event recorded");
    Ok(DeploymentEventOutcome::Handled(handled))
}

/// A deployment that succeeded, with the tasks its service runs, for the digest check: read while the run still
/// deploys there and its release names its image by digest (once the check is recorded, a repeated event reads
/// nothing). An unreachable ECS retries the event; ECS refusing the read (a policy narrower than the template's) is
/// logged and the run goes on unchecked, as a deployment that completed is no failure of the release's.
async fn with_tasks<S: PipelineStore, T: ServiceTasks>(
    store: &S,
    ecs: &T,
    event: Event,
) -> Result<Event, DeploymentEventError> {
    let Event::DeploymentSucceeded { execution_id, deployment_id, tasks: None } = event else { return Ok(event) };
    let run = store.execution(&execution_id).await.map_err(HandleError::from)?;
    let due = run.as_ref().filter(|run| {
        let digest = run.build.as_ref().and_then(|build| build.image_uri.as_deref()).is_some_and(|i| i.contains('@'));
        let pending = run.deploy().is_some_and(|deploy| deploy.finished_at.is_none() && deploy.digest_check.is_none());
        digest && pending && run.deploying().is_some()
    });
    let Some((cluster, service)) = due.and_then(Execution::target).map(DeployTarget::ecs_service) else {
        return Ok(Event::DeploymentSucceeded { execution_id, deployment_id, tasks: None });
    };
    let tasks = match ecs.tasks(cluster, service).await {
        Ok(tasks) => Some(tasks),
        Err(error @ DeployError::Refused { .. }) => {
            warn!(error = %Chain(&error), cluster, service, "the running tasks could not be read; digest not checked");
            None
        }
        Err(source) => return Err(DeploymentEventError::Lookup { deployment_id, source }),
    };
    Ok(Event::DeploymentSucceeded { execution_id, deployment_id, tasks })
}

/// The run whose deployment an "ECS Hook State Change" names, by any of the ids it carries.
async fn paused_run<S: PipelineStore>(
    store: &S,
    deployment_id: &str,
    also: &[String],
) -> Result<Option<(String, ExecutionId)>, DeploymentEventError> {
    for id in std::iter::once(deployment_id).chain(also.iter().map(String::as_str)).filter(|id| !id.is_empty()) {
        if let Some(link) = store.find(id).await.map_err(HandleError::from)? {
            return Ok(Some((link.pipeline, link.execution)));
        }
    }
    Ok(None)
}

/// The event of a CodeDeploy deployment that ended in `state`: the event says only that it failed or stopped, so
/// CodeDeploy's own record says why, and whether traffic went back; a stopped one may have made way for another run.
async fn codedeploy_ended<S: PipelineStore, B: BlueGreenDeployments>(
    store: &S,
    blue_green: &B,
    (execution_id, deployment_id): (&ExecutionId, &str),
    state: &str,
) -> Result<Event, DeploymentEventError> {
    if state == "SUCCESS" {
        let ended =
            Ended { state: DeploymentState::Succeeded, message: None, rolled_back: false, service: "CodeDeploy" };
        return Ok(outcome(execution_id, deployment_id, &ended));
    }
    let state = if state == "STOP" { DeploymentState::Stopped } else { DeploymentState::Failed };
    let lookup = |source| DeploymentEventError::Lookup { deployment_id: deployment_id.to_owned(), source };
    let found = blue_green.report(deployment_id).await.map_err(lookup)?;
    let message = found.as_ref().and_then(|found| found.message.as_deref());
    let rolled_back = found.as_ref().is_some_and(|found| found.rolled_back);
    let said = outcome(execution_id, deployment_id, &Ended { state, message, rolled_back, service: "CodeDeploy" });
    match state {
        DeploymentState::Stopped => superseded(store, deployment_id, said).await,
        _ => Ok(said),
    }
}

/// The event of an ECS deployment that ended as `event_name` says: whether it rolled back is the rolling update's
/// circuit breaker's, or (ECS-native) what ECS's record of the service deployment says; a failed one may have made
/// way for another run.
async fn ecs_ended<S: PipelineStore, N: NativeDeployments>(
    store: &S,
    native: &N,
    (execution_id, deployment_id): (&ExecutionId, &str),
    (event_name, reason): (&str, Option<&str>),
) -> Result<Event, DeploymentEventError> {
    let succeeded = event_name == "SERVICE_DEPLOYMENT_COMPLETED";
    let state = if succeeded { DeploymentState::Succeeded } else { DeploymentState::Failed };
    let run = store.execution(execution_id).await.map_err(HandleError::from)?;
    let service_deployment = run.as_ref().and_then(|run| run.deploy()?.service_deployment.clone());
    let (rolled_back, message) = match run.as_ref().and_then(Execution::target) {
        _ if succeeded => (false, reason.map(str::to_owned)),
        Some(DeployTarget::Rolling(rolling)) => {
            (rolling.circuit_breaker.enable && rolling.circuit_breaker.rollback, reason.map(str::to_owned))
        }
        Some(DeployTarget::EcsNative(_)) => {
            // The event says only that it failed: ECS's record of the service deployment says why.
            let report = match &service_deployment {
                Some(arn) => native
                    .describe(arn)
                    .await
                    .map_err(|source| DeploymentEventError::Lookup { deployment_id: arn.clone(), source })?,
                None => None,
            };
            crate::deploy::native_failure(report.as_ref(), reason)
        }
        _ => (false, reason.map(str::to_owned)),
    };
    let ended = Ended { state, message: message.as_deref(), rolled_back, service: "ECS" };
    let said = outcome(execution_id, deployment_id, &ended);
    match service_deployment {
        Some(arn) if !succeeded => superseded(store, &arn, said).await,
        _ => Ok(said),
    }
}

/// Asks ECS about the service deployment of every run deploying ECS-natively, and records the pauses that await
/// action and that the runs have not heard of: what an "ECS Hook State Change" whose ids name no run's deployment
/// (AWS documents its name, not its detail) leads to. Returns how many pauses were recorded.
#[instrument(skip_all)]
pub async fn record_paused_deployments<S, R, N>(
    store: &S,
    runner: &R,
    native: &N,
    now: DateTime<Utc>,
) -> Result<usize, DeploymentEventError>
where
    S: PipelineStore + DefinitionsStore,
    R: EffectRunner,
    N: NativeDeployments,
{
    let Some(published) = store.current().await.map_err(HandleError::from)? else { return Ok(0) };
    let Ok(definitions) = crate::definitions::Definitions::parse("published definitions", &published.text) else {
        return Ok(0);
    };
    let mut recorded = 0;
    for pipeline in definitions.iter() {
        let Some(stored) = store.load(&pipeline.name).await.map_err(HandleError::from)? else { continue };
        for run in stored.value.active() {
            let Some(deploy) = run.deploy().filter(|_| run.deploying().is_some()) else {
                continue;
            };
            let (Some(DeployTarget::EcsNative(_)), Some(arn)) = (run.target(), deploy.service_deployment.as_deref())
            else {
                continue;
            };
            let lookup = |source| DeploymentEventError::Lookup { deployment_id: arn.to_owned(), source };
            let Some(pause) = native.describe(arn).await.map_err(lookup)?.and_then(|report| report.awaiting) else {
                continue;
            };
            if deploy.pauses.iter().any(|known| known.hook_id == pause.hook_id) {
                continue;
            }
            let event = Event::DeploymentPaused {
                execution_id: run.id.clone(),
                service_deployment: arn.to_owned(),
                hook_id: pause.hook_id,
                stage: pause.stage,
                expires_at: pause.expires_at,
                timeout_action: pause.timeout_action,
            };
            let input = Input { pipeline: &pipeline.name, mode: pipeline.mode, event: &event, receipt: None, now };
            if handle(store, runner, input).await? == Handled::Applied {
                recorded += 1;
            }
        }
    }
    info!(recorded, "runs deploying asked about a pause no event named");
    Ok(recorded)
}
