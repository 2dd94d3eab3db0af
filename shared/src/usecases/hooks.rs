//! A CodeDeploy lifecycle hook
//! (<https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-hooks.html#appspec-hooks-ecs>):
//! CodeDeploy invokes the hooks function with a deployment id and a hook execution id, and waits for
//! PutLifecycleEventHookExecutionStatus. sluice finds the run that started the deployment, asks CodeDeploy which
//! lifecycle event waits, runs the pipeline's checks for it (concurrently, each with its timeout and retries, all
//! within the function's own time), records the result on the run and reports Succeeded or Failed. A hook already
//! answered is answered again with the same status and nothing runs twice; a deployment sluice cannot tie to a run
//! is answered Failed, so that nothing sluice does not know ships.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn};

use crate::contract::ports::{
    BlueGreenDeployments, DeployError, EventPublisher, HttpProbe, LifecycleHooks, NativeDeployments, PipelineStore,
    Probe,
};
use crate::definitions::Check;
use crate::deploy::{CheckRun, StageProgress, StageVerdict, judge, stage_verdict, summary};
use crate::pipeline::{DeployFacts, Effect, EffectKind, Event, Execution, HookStatus};
use crate::runtime::telemetry::Chain;
use crate::usecases::deploy_events::owner;
use crate::usecases::{DeploymentEventError, EffectError, EffectRunner, HandleError, Handled, Input, handle};

/// What CodeDeploy invoked the hooks function with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCall {
    pub deployment_id: String,
    pub hook_execution_id: String,
}

/// What became of a hook call.
#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    /// The checks ran; the result is on the run and was reported (or waits in the outbox to be).
    Checked { lifecycle_event: String, passed: bool, handled: Handled },
    /// The hook was answered before: the same status was reported again.
    Repeated(HookStatus),
    /// No run of sluice's started the deployment: reported Failed.
    NotOurs,
    /// The run that started it has ended (as it says): reported Failed.
    Ended(crate::pipeline::Status),
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Handle(#[from] HandleError),
    #[error(transparent)]
    Lookup(#[from] DeploymentEventError),
    #[error("hook {hook_execution_id} of deployment {deployment_id} could not be answered")]
    Answer {
        deployment_id: String,
        hook_execution_id: String,
        #[source]
        source: DeployError,
    },
}

/// How long the hooks function waits for CodeDeploy to show the waiting lifecycle event, in steps.
const WAITING_EVENT_TRIES: u32 = 5;
const WAITING_EVENT_PAUSE: Duration = Duration::from_millis(400);

/// How long a rolling update's AfterRollout checks may take together ([`crate::definitions::AFTER_ROLLOUT_SECS`]).
pub const AFTER_ROLLOUT_BUDGET: Duration = Duration::from_secs(crate::definitions::AFTER_ROLLOUT_SECS);

/// Answers CodeDeploy's hooks, runs the AfterRollout checks of rolling updates and the checks of test stages, and
/// publishes the announcements of the runs it moves on.
#[derive(Debug, Clone)]
pub struct HookEffects<P, H, C> {
    pub publisher: P,
    pub hooks: H,
    pub probe: C,
}

impl<P: EventPublisher, H: LifecycleHooks, C: HttpProbe> EffectRunner for HookEffects<P, H, C> {
    const KINDS: &'static [EffectKind] = &[EffectKind::ReportHookStatus, EffectKind::RunChecks, EffectKind::Publish];

    async fn run(&self, _id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::Publish(event) => super::effects::publish_one(&self.publisher, event).await,
            Effect::RunChecks { execution_id, deployment_id, lifecycle_event, checks, .. } => {
                let started = tokio::time::Instant::now();
                let numbered: Vec<(usize, &Check)> = checks.iter().enumerate().map(|(i, c)| (i + 1, c)).collect();
                let runs = run_checks(&self.probe, &numbered, AFTER_ROLLOUT_BUDGET).await;
                let passed = runs.iter().all(|run| run.passed);
                let detail = summary(&checks.iter().collect::<Vec<_>>(), &runs);
                let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                info!(%execution_id, lifecycle_event, passed, %detail, millis, "checks done");
                Ok(Some(Event::HookCompleted {
                    execution_id: execution_id.clone(),
                    deployment_id: deployment_id.clone(),
                    lifecycle_event: lifecycle_event.clone(),
                    // One run of the checks per deployment: a retried effect is recognised as the same.
                    hook_execution_id: format!("{lifecycle_event}:{deployment_id}"),
                    passed,
                    detail: Some(detail),
                    millis: Some(millis),
                }))
            }
            Effect::RunTestChecks { execution_id, stage, checks } => {
                let numbered: Vec<(usize, &Check)> = checks.iter().enumerate().map(|(i, c)| (i + 1, c)).collect();
                let runs = run_checks(&self.probe, &numbered, AFTER_ROLLOUT_BUDGET).await;
                let passed = runs.iter().all(|run| run.passed);
                let detail = summary(&checks.iter().collect::<Vec<_>>(), &runs);
                info!(%execution_id, %stage, passed, %detail, "test checks done");
                Ok(Some(Event::TestEnded {
                    execution_id: execution_id.clone(),
                    stage: *stage,
                    build_id: None,
                    passed,
                    reason: None,
                    results: None,
                    detail: Some(detail),
                }))
            }
            Effect::ReportHookStatus { deployment_id, hook_execution_id, status, .. } => {
                match self.hooks.answer(deployment_id, hook_execution_id, *status).await {
                    Ok(()) => Ok(None),
                    Err(error @ DeployError::Refused { .. }) => {
                        Err(EffectError::permanent("report_hook_status", error))
                    }
                    Err(error) => Err(EffectError::transient("report_hook_status", error)),
                }
            }
            other => Err(EffectError::permanent(other.kind().name(), "not an effect the hooks function carries out")),
        }
    }
}

/// The pipeline's checks at `hook`, numbered as the definitions file lists them (1-based), as they run for `run`'s
/// release ([`Execution::for_release`]).
fn checks_at(run: &Execution, target: &crate::definitions::DeployTarget, hook: &str) -> Vec<(usize, Check)> {
    let at = target.checks().iter().enumerate().filter(|(_, check)| check.hook == hook);
    at.map(|(i, check)| (i + 1, run.for_release(check))).collect()
}

/// Runs one check: tries until it passes or its retries are spent, `interval` apart.
async fn run_check<C: HttpProbe>(probe: &C, number: usize, check: &Check) -> CheckRun {
    let started = tokio::time::Instant::now();
    let mut attempts = 0;
    let request = Probe { method: &check.method, url: &check.url, timeout: Duration::from_secs(check.timeout_secs) };
    loop {
        attempts += 1;
        let answer = probe.probe(&request).await;
        let status = answer.as_ref().ok().map(|answer| answer.status);
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match judge(check, &answer) {
            Ok(status) => {
                return CheckRun { number, passed: true, status: Some(status), attempts, millis, failure: None };
            }
            Err(why) if attempts > check.retries => {
                return CheckRun { number, passed: false, status, attempts, millis, failure: Some(why) };
            }
            Err(why) => info!(number, attempts, %why, "check failed; trying again"),
        }
        tokio::time::sleep(Duration::from_secs(check.interval_secs)).await;
    }
}

/// Runs `checks` (with their numbers) together, each given at most `budget`: one that hangs past it fails, saying so.
async fn run_checks<C: HttpProbe>(probe: &C, checks: &[(usize, &Check)], budget: Duration) -> Vec<CheckRun> {
    let runs = checks.iter().map(|&(number, check)| async move {
        match tokio::time::timeout(budget, run_check(probe, number, check)).await {
            Ok(run) => run,
            Err(_) => CheckRun {
                number,
                passed: false,
                status: None,
                attempts: 0,
                millis: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                failure: Some(format!("did not finish within the {} s the hooks function had left", budget.as_secs())),
            },
        }
    });
    futures_util::future::join_all(runs).await
}

/// The lifecycle event of `deployment_id` that waits for a hook, as CodeDeploy shows it: asked a few times, since
/// CodeDeploy may call the hook before it shows the event waiting.
async fn waiting_event<H: LifecycleHooks>(hooks: &H, deployment_id: &str) -> Result<Option<String>, DeployError> {
    let mut lifecycle_event = None;
    for attempt in 1..=WAITING_EVENT_TRIES {
        lifecycle_event = hooks.waiting_event(deployment_id).await?;
        if lifecycle_event.is_some() || attempt == WAITING_EVENT_TRIES {
            break;
        }
        tokio::time::sleep(WAITING_EVENT_PAUSE).await;
    }
    Ok(lifecycle_event)
}

/// Runs `run`'s checks at `lifecycle_event` (within `budget`): the event, whether they passed, and what they said.
/// Without a known event, or with the run not deploying, nothing runs and the hook fails, saying why.
async fn hook_checks<C: HttpProbe>(
    probe: &C,
    run: &Execution,
    lifecycle_event: Option<String>,
    budget: Duration,
) -> (String, bool, String) {
    match lifecycle_event {
        None => (
            "unknown".to_owned(),
            false,
            "CodeDeploy showed no lifecycle event waiting for a hook, so sluice could not tell which checks to run"
                .to_owned(),
        ),
        Some(event) => {
            let Some((_, deploying)) = run.deploying() else {
                return (event, false, format!("the run is {}, not deploying", run.status));
            };
            let released = checks_at(run, &deploying.target, &event);
            let checks: Vec<(usize, &Check)> = released.iter().map(|(number, check)| (*number, check)).collect();
            let runs = run_checks(probe, &checks, budget).await;
            let passed = runs.iter().all(|run| run.passed);
            let only: Vec<&Check> = checks.iter().map(|(_, check)| *check).collect();
            (event, passed, summary(&only, &runs))
        }
    }
}

/// Answers one hook call. `budget` is how long the checks may take: the function's time left, less a margin to
/// record and report.
#[instrument(skip_all, fields(deployment = %call.deployment_id, hook = %call.hook_execution_id))]
pub async fn answer_hook<S, R, H, C>(
    store: &S,
    runner: &R,
    hooks: &H,
    probe: &C,
    call: &HookCall,
    budget: Duration,
    now: DateTime<Utc>,
) -> Result<HookOutcome, HookError>
where
    S: PipelineStore,
    R: EffectRunner,
    H: LifecycleHooks + BlueGreenDeployments,
    C: HttpProbe,
{
    let (deployment_id, hook_execution_id) = (call.deployment_id.as_str(), call.hook_execution_id.as_str());
    let failed = |source| HookError::Answer {
        deployment_id: deployment_id.to_owned(),
        hook_execution_id: hook_execution_id.to_owned(),
        source,
    };
    let answer = |status| async move { hooks.answer(deployment_id, hook_execution_id, status).await.map_err(failed) };
    let Some((pipeline, execution_id)) = owner(store, hooks, deployment_id, true).await? else {
        warn!("no run of sluice's started this deployment; answering Failed");
        answer(HookStatus::Failed).await?;
        return Ok(HookOutcome::NotOurs);
    };
    let run = store.execution(&execution_id).await.map_err(HandleError::from)?;
    let Some(run) = run else {
        warn!(execution = %execution_id, "the run is no longer recorded; answering Failed");
        answer(HookStatus::Failed).await?;
        return Ok(HookOutcome::NotOurs);
    };
    let recorded = run.deploy().and_then(|d| d.hooks.iter().find(|h| h.hook_execution_id == hook_execution_id));
    if let Some(recorded) = recorded {
        let status = if recorded.passed { HookStatus::Succeeded } else { HookStatus::Failed };
        info!(?status, "hook already answered; answering the same again");
        answer(status).await?;
        return Ok(HookOutcome::Repeated(status));
    }
    if run.status.is_finished() {
        // A hook of a run that has ended must not let its deployment go on (the run's record is final: nothing
        // more is recorded on it).
        warn!(execution = %execution_id, status = %run.status, "the run has ended; answering Failed");
        answer(HookStatus::Failed).await?;
        return Ok(HookOutcome::Ended(run.status));
    }
    let lifecycle_event = waiting_event(hooks, deployment_id).await.map_err(failed)?;
    let started = tokio::time::Instant::now();
    let (lifecycle_event, passed, detail) = hook_checks(probe, &run, lifecycle_event, budget).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    info!(lifecycle_event, passed, %detail, millis, "hook checks done");
    let event = Event::HookCompleted {
        execution_id: execution_id.clone(),
        deployment_id: deployment_id.to_owned(),
        lifecycle_event: lifecycle_event.clone(),
        hook_execution_id: hook_execution_id.to_owned(),
        passed,
        detail: Some(detail),
        millis: Some(millis),
    };
    let input = Input { pipeline: &pipeline, mode: Default::default(), event: &event, receipt: None, now };
    let handled = handle(store, runner, input).await?;
    match &handled {
        Handled::Applied => {}
        // Recorded meanwhile by a duplicate invocation, which reported it.
        Handled::Ignored(_) | Handled::Duplicate { .. } => {}
        other => {
            warn!(?other, "the hook's result could not be recorded on the run; answering Failed");
            answer(HookStatus::Failed).await?;
            return Ok(HookOutcome::Checked { lifecycle_event, passed: false, handled });
        }
    }
    Ok(HookOutcome::Checked { lifecycle_event, passed, handled })
}

/// What ECS invokes the hooks function with at a lifecycle stage of an ECS-native deployment
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html>). The traffic weights
/// it carries are not read: AWS documents them empty (`{}`) outside the traffic-shift stages, and not at all for a
/// linear step; whether the deployment rolls back is asked of ECS.
#[derive(Debug, Clone, PartialEq)]
pub struct StageCall {
    /// ECS's `executionId` (for the log: AWS does not document whether it is unique across a linear shift's steps).
    pub execution_id: String,
    /// `lifecycleStage`.
    pub stage: String,
    /// `resourceArn`: the service deployment.
    pub service_deployment: String,
    /// What the last `IN_PROGRESS` answer left in `hookDetails` (sluice's key only).
    pub progress: StageProgress,
}

/// How sluice answers an ECS lifecycle hook: the invocation's return value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageAnswer {
    Succeeded,
    Failed,
    /// Call again after `delay_secs`, handing back `progress` in `hookDetails`.
    InProgress {
        delay_secs: u64,
        progress: StageProgress,
    },
}

/// How long, and how often, a hook is asked to call again while the deployer has not recorded the deployment yet
/// (UpdateService has answered, but the run's record of it is still being written).
const UNLINKED_DELAY_SECS: u64 = 5;
const UNLINKED_TRIES: u32 = 12;

/// Whether the stage is a rollback's: ECS runs the traffic-shift hooks again while it rolls back (traffic going back
/// to the old revision, for an alarm or the circuit breaker too), and so is a run that has failed a stage, been
/// rolled back at a pause or by an operator, or ended. Its checks would test the way back, and the rollback must not
/// be held up. When ECS cannot be asked, it is not.
async fn rolls_back<N: NativeDeployments>(native: &N, call: &StageCall, run: &Execution, now: DateTime<Utc>) -> bool {
    let ecs_rolls_back = match native.describe(&call.service_deployment).await {
        Ok(Some(report)) => report.rolled_back || report.status.starts_with("ROLLBACK_"),
        Ok(None) => false,
        Err(error) => {
            warn!(error = %Chain(&error), "ECS could not say whether the deployment rolls back; running the checks");
            false
        }
    };
    let rolls_back = ecs_rolls_back || run.deploy().is_some_and(|d| d.rolling_back(now)) || run.status.is_finished();
    if rolls_back {
        info!(status = %run.status, ecs_rolls_back, "a rollback's hook; answering SUCCEEDED");
    }
    rolls_back
}

/// The checks' progress so far in this evaluation of the stage; progress whose evaluation was recorded (or none) is
/// stale, and a new evaluation starts.
fn evaluation_progress(call: &StageCall, deploy: Option<&DeployFacts>) -> StageProgress {
    let recorded = |id: &str| deploy.is_some_and(|d| d.hooks.iter().any(|hook| hook.hook_execution_id == id));
    match &call.progress.evaluation {
        Some(evaluation) if !recorded(evaluation) => call.progress.clone(),
        _ => StageProgress {
            evaluation: Some(format!("{}:{:016x}", call.stage, fastrand::u64(..))),
            unlinked: call.progress.unlinked,
            ..StageProgress::default()
        },
    }
}

/// One attempt of each check still to pass in this evaluation, run together: ECS calls again for the next, after
/// the check's interval.
async fn attempt_round<C: HttpProbe>(
    probe: &C,
    checks: &[(usize, &Check)],
    progress: &StageProgress,
    budget: Duration,
) -> Vec<CheckRun> {
    let due: Vec<(usize, Check)> = checks
        .iter()
        .filter(|(number, _)| !progress.passed.contains_key(number))
        .map(|(number, check)| (*number, Check { retries: 0, ..(*check).clone() }))
        .collect();
    let numbered: Vec<(usize, &Check)> = due.iter().map(|(number, check)| (*number, check)).collect();
    run_checks(probe, &numbered, budget).await
}

/// The run that recorded the service deployment `call` is about, or, without one, ECS's answer: call again (the run
/// may not have recorded it yet), or FAILED.
async fn stage_run<S: PipelineStore>(
    store: &S,
    call: &StageCall,
) -> Result<Result<(crate::contract::ports::AwsLink, Execution), StageAnswer>, HookError> {
    let link = store.find(&call.service_deployment).await.map_err(HandleError::from)?;
    let Some(link) = link else {
        if call.progress.unlinked < UNLINKED_TRIES {
            info!("no run has recorded this service deployment yet; asking ECS to call again");
            let progress = StageProgress { unlinked: call.progress.unlinked + 1, ..call.progress.clone() };
            return Ok(Err(StageAnswer::InProgress { delay_secs: UNLINKED_DELAY_SECS, progress }));
        }
        warn!("no run of sluice's started this service deployment; answering FAILED");
        return Ok(Err(StageAnswer::Failed));
    };
    let run = store.execution(&link.execution).await.map_err(HandleError::from)?;
    let Some(run) = run else {
        warn!(execution = %link.execution, "the run is no longer recorded; answering FAILED");
        return Ok(Err(StageAnswer::Failed));
    };
    Ok(Ok((link, run)))
}

/// Answers one ECS lifecycle hook invocation: runs one attempt of each of the stage's checks that has not passed
/// yet in this evaluation, and answers SUCCEEDED or FAILED (recording the result on the run), or IN_PROGRESS when a
/// check has retries left, never waiting between tries itself. Nothing is answered from an earlier result: every
/// evaluation runs the checks (a linear shift calls the same stage at each step). A stage sluice does not know (ECS
/// adds them) or one without checks is answered SUCCEEDED and logged; so is a stage of a deployment that ECS says is
/// rolling back (DescribeServiceDeployments: a ROLLBACK_ status or a rollback), or whose run knows it is, which sluice
/// must not block. When ECS cannot be asked, the checks run: a skipped check never answers SUCCEEDED.
#[instrument(skip_all, fields(service_deployment = %call.service_deployment, stage = %call.stage, execution = %call.execution_id))]
pub async fn answer_stage<S, R, C, N>(
    store: &S,
    runner: &R,
    probe: &C,
    native: &N,
    call: &StageCall,
    budget: Duration,
    now: DateTime<Utc>,
) -> Result<StageAnswer, HookError>
where
    S: PipelineStore,
    R: EffectRunner,
    C: HttpProbe,
    N: NativeDeployments,
{
    let (link, run) = match stage_run(store, call).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let Some((target, deploy)) = run.deployed_as(&call.service_deployment) else {
        warn!(execution = %run.id, "the run recorded this service deployment at no stage it has; answering FAILED");
        return Ok(StageAnswer::Failed);
    };
    let deploy = Some(deploy);
    if rolls_back(native, call, &run, now).await {
        return Ok(StageAnswer::Succeeded);
    }
    if !crate::definitions::ECS_STAGES.contains(&call.stage.as_str()) {
        info!("a lifecycle stage sluice does not know; answering SUCCEEDED");
        return Ok(StageAnswer::Succeeded);
    }
    let released = checks_at(&run, target, &call.stage);
    let checks: Vec<(usize, &Check)> = released.iter().map(|(number, check)| (*number, check)).collect();
    if checks.is_empty() {
        info!("no checks at this stage; answering SUCCEEDED");
        return Ok(StageAnswer::Succeeded);
    }
    let progress = evaluation_progress(call, deploy);
    let evaluation = progress.evaluation.clone().unwrap_or_default();
    let started = tokio::time::Instant::now();
    let round = attempt_round(probe, &checks, &progress, budget).await;
    let (passed, detail) = match stage_verdict(&checks, progress, &round) {
        StageVerdict::Retry { delay_secs, progress } => {
            info!(delay_secs, "a check failed with retries left; asking ECS to call again");
            return Ok(StageAnswer::InProgress { delay_secs, progress });
        }
        StageVerdict::Passed(detail) => (true, detail),
        StageVerdict::Failed(detail) => (false, detail),
    };
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    info!(passed, %detail, "stage checks done");
    let deployment_id = deploy.and_then(|d| d.deployment_id.clone()).unwrap_or_else(|| call.service_deployment.clone());
    let event = Event::HookCompleted {
        execution_id: link.execution.clone(),
        deployment_id,
        lifecycle_event: call.stage.clone(),
        hook_execution_id: evaluation,
        passed,
        detail: Some(detail),
        millis: Some(millis),
    };
    let input = Input { pipeline: &link.pipeline, mode: Default::default(), event: &event, receipt: None, now };
    match handle(store, runner, input).await? {
        Handled::Applied | Handled::Ignored(_) | Handled::Duplicate { .. } => {}
        other => {
            warn!(?other, "the stage's result could not be recorded on the run; answering FAILED");
            return Ok(StageAnswer::Failed);
        }
    }
    Ok(if passed { StageAnswer::Succeeded } else { StageAnswer::Failed })
}
