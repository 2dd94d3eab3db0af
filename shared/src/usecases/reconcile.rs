//! What no event will say: a scheduled look at every pipeline. Builds and deployments whose state change never
//! arrived are asked about (CodeBuild's BatchGetBuilds, CodeDeploy's GetDeployment, ECS's DescribeServices and
//! DescribeServiceDeployments) and moved on as their event would have (an ECS-native deployment paused at a hook
//! the run never heard of is recorded as paused); deployments past their deadline ([`crate::deploy::deadline`]) fail
//! their run, and are stopped; approvals past their deadline time out; effects left pending (a build
//! CodeBuild could not start then) are carried out, and the owners of those it does not carry out itself (an
//! approval request SNS refused for a while) are woken by an `Effects Due` doorbell.

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{instrument, warn};

use crate::contract::events::{EffectsDue, SluiceEvent, SoakEnded};
use crate::contract::ports::{
    ArtifactStore, BlueGreenDeployments, BuildStarter, DeployError, DeploymentProgress, ImageRegistry,
    NativeDeployments, PipelineStore, RollingUpdates, RolloutReport, ServiceTasks, TestReports,
};
use crate::definitions::{Definitions, DeployTarget, Pipeline};
use crate::deploy::deadline::deadline;
use crate::pipeline::{
    BuildFailure, DeployFacts, Effect, EffectKind, Event, Execution, PendingEffect, PipelineState, Stage, Status,
};
use crate::runtime::telemetry::Chain;
use crate::usecases::{
    AWAITING_ACTION, BuildEventOutcome, BuildStateChange, DeploymentChange, DeploymentEventOutcome,
    DeploymentStateChange, EffectRunner, Handled, Input, flush, handle, record_build_event, record_deployment_event,
};

/// A build or a deployment that has said nothing for this long is asked about.
pub const QUIET_FOR: TimeDelta = TimeDelta::minutes(10);

/// What the look asks AWS about, and reads builds' artifacts from.
#[derive(Debug, Clone)]
pub struct Lookups<A, B, D, E> {
    pub artifacts: A,
    pub builds: B,
    pub blue_green: D,
    pub services: E,
}

/// What a look found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Builds asked about.
    pub builds_checked: usize,
    /// Deployments asked about.
    pub deployments_checked: usize,
    /// Runs moved on: builds that had finished, approvals that had expired.
    pub moved: usize,
    /// Executions whose effects are due with another function, whose owner was woken (`Effects Due`).
    pub doorbells: usize,
    /// Pipelines or builds that could not be looked at; the next look tries again.
    pub errors: usize,
}

/// Looks at every pipeline of `definitions` once.
#[instrument(skip_all)]
pub async fn reconcile<S, R, A, B, D, E>(
    store: &S,
    runner: &R,
    lookups: &Lookups<A, B, D, E>,
    definitions: &Definitions,
    now: DateTime<Utc>,
    quiet_for: TimeDelta,
) -> Reconciled
where
    S: PipelineStore,
    R: EffectRunner,
    A: ArtifactStore + ImageRegistry + TestReports,
    B: BuildStarter,
    D: BlueGreenDeployments,
    E: RollingUpdates + NativeDeployments + ServiceTasks,
{
    let mut done = Reconciled::default();
    for pipeline in definitions.iter() {
        let look = Look { store, runner, lookups, pipeline, now, quiet_for };
        look.pipeline(&mut done).await;
    }
    done
}

/// An `Effects Due` doorbell to the owner of each run's effects due with a function other than the one whose runner
/// carries out `kinds`.
pub(crate) fn effects_due(state: &PipelineState, kinds: &[EffectKind], now: DateTime<Utc>) -> Vec<PendingEffect> {
    let doorbell = |(execution_id, kinds)| {
        let id = format!("doorbell-{execution_id}");
        let due = EffectsDue { pipeline: state.pipeline.clone(), execution_id, kinds };
        PendingEffect::new(id, Effect::Publish(SluiceEvent::EffectsDue(due)))
    };
    state.due_elsewhere(kinds, now).into_iter().map(doorbell).collect()
}

/// One pipeline's look: what it asks with, and when.
struct Look<'a, S, R, A, B, D, E> {
    store: &'a S,
    runner: &'a R,
    lookups: &'a Lookups<A, B, D, E>,
    pipeline: &'a Pipeline,
    now: DateTime<Utc>,
    quiet_for: TimeDelta,
}

impl<S, R, A, B, D, E> Look<'_, S, R, A, B, D, E>
where
    S: PipelineStore,
    R: EffectRunner,
    A: ArtifactStore + ImageRegistry + TestReports,
    B: BuildStarter,
    D: BlueGreenDeployments,
    E: RollingUpdates + NativeDeployments + ServiceTasks,
{
    /// Carries out the pipeline's pending effects, wakes the owners of those due elsewhere, and moves on each of
    /// its runs that an event should have moved.
    async fn pipeline(&self, done: &mut Reconciled) {
        let (store, pipeline) = (self.store, self.pipeline);
        if let Err(error) = flush(store, self.runner, &pipeline.name, self.now).await {
            warn!(error = %Chain(&error), pipeline = %pipeline.name, "pending effects still pending");
            done.errors += 1;
        }
        let state = match store.load(&pipeline.name).await {
            Ok(Some(stored)) => stored.value,
            Ok(None) => return,
            Err(error) => {
                warn!(error = %Chain(&error), pipeline = %pipeline.name, "pipeline not looked at");
                done.errors += 1;
                return;
            }
        };
        // A freeze whose end has passed is lifted first, so that the runs it held go on; the owners of what the lift
        // set going (the deployer's continuation of a held pause) are rung with the other doorbells.
        let state = match state.freeze.as_ref().is_some_and(|freeze| !freeze.holds(self.now)) {
            true => {
                self.apply(&Event::Unfrozen { by: None }, done).await;
                store.load(&pipeline.name).await.ok().flatten().map_or(state, |stored| stored.value)
            }
            false => state,
        };
        self.ring_doorbells(&state, done).await;
        for execution in state.active() {
            if let Some(event) = self.run(execution, done).await {
                self.apply(&event, done).await;
            }
        }
    }

    /// Applies `event`, as one of the events the reconciler's look finds.
    async fn apply(&self, event: &Event, done: &mut Reconciled) {
        let pipeline = self.pipeline;
        let input = Input { pipeline: &pipeline.name, mode: pipeline.mode, event, receipt: None, now: self.now };
        match handle(self.store, self.runner, input).await {
            Ok(Handled::Applied) => done.moved += 1,
            Ok(_) => {}
            Err(error) => {
                let execution = event.execution_id().map(tracing::field::display);
                warn!(error = %Chain(&error), pipeline = %pipeline.name, execution, "pipeline not moved on");
                done.errors += 1;
            }
        }
    }

    /// An `Effects Due` doorbell to the owner of each run's effects due with another function.
    async fn ring_doorbells(&self, state: &PipelineState, done: &mut Reconciled) {
        let mut doorbells = effects_due(state, self.runner.kinds(), self.now);
        // A soak watched by alarms, over: deploy-events reads the alarms and ends it.
        let soaked = state.active().filter(|run| run.soaking().is_some_and(|until| until <= self.now));
        doorbells.extend(soaked.filter_map(|run| {
            let (stage, alarms) = run.watched_soak()?;
            let ended = SoakEnded {
                pipeline: self.pipeline.name.clone(),
                execution_id: run.id.clone(),
                stage,
                alarms: alarms.to_vec(),
            };
            Some(PendingEffect::new(format!("soak-{}", run.id), Effect::Publish(SluiceEvent::SoakEnded(ended))))
        }));
        if doorbells.is_empty() {
            return;
        }
        for (rung, result) in doorbells.iter().zip(self.runner.run_all(&doorbells).await) {
            match result {
                Ok(_) => done.doorbells += 1,
                Err(error) => {
                    warn!(error = %Chain(&error), effect = %rung.effect.describe(), "owner not woken");
                    done.errors += 1;
                }
            }
        }
    }

    /// The event that moves `execution` on, if one should have: an approval past its deadline, a build or a
    /// deployment that ended or is gone (recorded here when its own event can be), a deployment past its deadline.
    async fn run(&self, execution: &Execution, done: &mut Reconciled) -> Option<Event> {
        match execution.status {
            Status::Running(_)
                if execution.approving()
                    && execution.approval().is_some_and(|approval| approval.expires_at <= self.now) =>
            {
                Some(Event::ApprovalExpired { execution_id: execution.id.clone() })
            }
            Status::Running(Stage::BUILD) => {
                let build = execution.build.as_ref()?;
                self.build(execution, (build.build_id.as_ref()?, build.started_at, None), done).await
            }
            // A test build not yet judged (one judged may wait for a decision to overlook its failure).
            Status::Running(stage)
                if let Some(test) =
                    execution.record(stage).and_then(|r| r.test.as_ref()).filter(|test| test.finished_at.is_none()) =>
            {
                self.build(execution, (test.build_id.as_ref()?, test.started_at, Some(stage)), done).await
            }
            // Soaking, the deployment is done: only the soak's end moves the run on (one watched by alarms is ended
            // by deploy-events, which reads them: `Soak Ended`, rung with the doorbells).
            Status::Running(_) if let Some(until) = execution.soaking() => {
                let watched = execution.deploying().is_some_and(|(_, deploy)| !deploy.alarms().is_empty());
                (until <= self.now && !watched).then(|| Event::SoakEnded { execution_id: execution.id.clone() })
            }
            Status::Running(_) if execution.deploying().is_some() => self.deployment(execution, done).await,
            _ => None,
        }
    }

    /// A build quiet for long (the run's, or the test build of its test `stage`): recorded as its event would have
    /// been once it ended, failed when CodeBuild has no record of it.
    async fn build(
        &self,
        execution: &Execution,
        (build_id, started_at, stage): (&String, DateTime<Utc>, Option<Stage>),
        done: &mut Reconciled,
    ) -> Option<Event> {
        if self.now - started_at < self.quiet_for {
            return None;
        }
        done.builds_checked += 1;
        let report = match self.lookups.builds.build_report(build_id).await {
            Ok(report) => report,
            Err(error) => {
                warn!(error = %Chain(&error), build = %build_id, "build not looked up");
                done.errors += 1;
                return None;
            }
        };
        let Some(report) = report else {
            let reason = format!("CodeBuild has no record of build {build_id}");
            if let Some(stage) = stage {
                let (execution_id, build_id) = (execution.id.clone(), build_id.clone());
                let reason = Some(reason);
                let build_id = Some(build_id);
                let (passed, results, detail) = (false, None, None);
                return Some(Event::TestEnded { execution_id, stage, build_id, passed, reason, results, detail });
            }
            return Some(Event::BuildFailed {
                execution_id: execution.id.clone(),
                build_id: build_id.clone(),
                status: BuildFailure::Failed,
                phase: None,
                reason: format!("CodeBuild has no record of build {build_id}"),
            });
        };
        if report.status == "IN_PROGRESS" {
            return None;
        }
        let change = BuildStateChange {
            event_id: format!("reconciled:{build_id}:{}", report.status),
            build_id: build_id.clone(),
            status: report.status,
            current_phase: report.current_phase,
            failed_phase: report.failed_phase,
            execution_id: Some(execution.id.0.clone()),
            pipeline: Some(self.pipeline.name.clone()),
            stage: stage.map(|stage| stage.to_string()),
            artifact_location: report.artifact_location,
        };
        match record_build_event(self.store, self.runner, &self.lookups.artifacts, &change, self.now).await {
            Ok(BuildEventOutcome::Handled(Handled::Applied)) => done.moved += 1,
            Ok(_) => {}
            Err(error) => {
                warn!(error = %Chain(&error), build = %build_id, "finished build not recorded");
                done.errors += 1;
            }
        }
        None
    }

    /// A deployment quiet for long or past its deadline: recorded as its event would have been once it ended,
    /// failed when its service has no record of it, timed out past its deadline (unless the service says it ended
    /// meanwhile, its event lost: a rolling update that never settles sends no event at all).
    async fn deployment(&self, execution: &Execution, done: &mut Reconciled) -> Option<Event> {
        let deploy = execution.deploy()?;
        let (_, plan) = execution.deploy_stage()?;
        let late = deadline(&plan.target, plan.timeout_minutes, deploy.deadline_from()) <= self.now;
        let timed_out = || Event::DeploymentTimedOut { execution_id: execution.id.clone() };
        let Some(deployment_id) = &deploy.deployment_id else {
            if late {
                let (pipeline, event) = (self.pipeline, timed_out());
                let input = Input {
                    pipeline: &pipeline.name,
                    mode: pipeline.mode,
                    event: &event,
                    receipt: None,
                    now: self.now,
                };
                if let Ok(Handled::Applied) = handle(self.store, self.runner, input).await {
                    done.moved += 1;
                }
            }
            return None;
        };
        // Rolled out, its AfterRollout checks (or the rollback they asked for) are effects in the outbox, which the
        // doorbells carry to their owners.
        if !late && (deploy.rolled_out_at.is_some() || self.now - execution.updated_at < self.quiet_for) {
            return None;
        }
        done.deployments_checked += 1;
        let lost = match lost_deployment(self.lookups, execution, deploy, deployment_id).await {
            Ok(Some(lost)) => lost,
            Ok(None) if late => Lost::TimedOut,
            Ok(None) => return None,
            Err(error) => {
                warn!(error = %Chain(&error), deployment = %deployment_id, "deployment not looked up");
                done.errors += 1;
                if !late {
                    return None;
                }
                Lost::TimedOut
            }
        };
        match lost {
            Lost::Change(change) => {
                let (blue_green, services) = (&self.lookups.blue_green, &self.lookups.services);
                match record_deployment_event(self.store, self.runner, blue_green, services, &change, self.now).await {
                    Ok(DeploymentEventOutcome::Handled(Handled::Applied)) => done.moved += 1,
                    Ok(_) => {}
                    Err(error) => {
                        warn!(error = %Chain(&error), deployment = %deployment_id, "ended deployment not recorded");
                        done.errors += 1;
                    }
                }
                None
            }
            Lost::TimedOut => Some(timed_out()),
            Lost::Gone(reason) => Some(Event::DeploymentFailed {
                execution_id: execution.id.clone(),
                deployment_id: Some(deployment_id.clone()),
                reason,
                rolled_back: false,
            }),
        }
    }
}

/// What became of a deployment whose end no event told.
enum Lost {
    /// It ended: recorded as its service's event would have been.
    Change(DeploymentStateChange),
    /// The service has no record of it (or of its service): the run fails with the reason.
    Gone(String),
    /// Still going (or not to be asked about) past its deadline: the run fails for it.
    TimedOut,
}

/// Asks the service about the run's deployment; `None` while it is still going, or when what the service says
/// cannot tell how it ended.
async fn lost_deployment<A, B, D, E>(
    lookups: &Lookups<A, B, D, E>,
    execution: &Execution,
    deploy: &DeployFacts,
    deployment_id: &str,
) -> Result<Option<Lost>, DeployError>
where
    D: BlueGreenDeployments,
    E: RollingUpdates + NativeDeployments + ServiceTasks,
{
    let change = |change: DeploymentChange| DeploymentStateChange {
        event_id: format!("reconciled:{deployment_id}:{}", change.state()),
        deployment_id: deployment_id.to_owned(),
        change,
    };
    let Some(target) = execution.target() else { return Ok(None) };
    match target {
        DeployTarget::BlueGreen(_) => {
            let Some(report) = lookups.blue_green.report(deployment_id).await? else {
                return Ok(Some(Lost::Gone(format!("CodeDeploy has no record of deployment {deployment_id}"))));
            };
            let state = match report.progress {
                DeploymentProgress::Going => return Ok(None),
                DeploymentProgress::Succeeded => "SUCCESS",
                DeploymentProgress::Failed => "FAILURE",
                DeploymentProgress::Stopped => "STOP",
            };
            Ok(Some(Lost::Change(change(DeploymentChange::CodeDeploy { state: state.to_owned() }))))
        }
        DeployTarget::EcsNative(native) => {
            let Some(arn) = deploy.service_deployment.as_deref() else {
                return Ok(Some(Lost::Gone(format!(
                    "the run recorded no ECS service deployment for deployment {deployment_id}"
                ))));
            };
            let Some(report) = lookups.services.describe(arn).await? else {
                let reason = format!("ECS has no record of service deployment {arn} of service {}", native.service);
                return Ok(Some(Lost::Gone(reason)));
            };
            let event_name = match report.progress {
                // Paused at a hook the run never heard of (its "ECS Hook State Change" was lost): told now.
                DeploymentProgress::Going => {
                    let Some(pause) = report.awaiting else { return Ok(None) };
                    if deploy.pauses.iter().any(|known| known.hook_id == pause.hook_id) {
                        return Ok(None);
                    }
                    return Ok(Some(Lost::Change(DeploymentStateChange {
                        event_id: format!("reconciled:{arn}:{}", pause.hook_id),
                        deployment_id: arn.to_owned(),
                        change: DeploymentChange::EcsHook { event_name: AWAITING_ACTION.to_owned(), also: Vec::new() },
                    })));
                }
                DeploymentProgress::Succeeded => "SERVICE_DEPLOYMENT_COMPLETED",
                DeploymentProgress::Failed | DeploymentProgress::Stopped => "SERVICE_DEPLOYMENT_FAILED",
            };
            let reason = report.status_reason.clone();
            Ok(Some(Lost::Change(change(DeploymentChange::Ecs { event_name: event_name.to_owned(), reason }))))
        }
        DeployTarget::Rolling(rolling) => {
            let Some(report) = lookups.services.rollout(&rolling.cluster, &rolling.service, deployment_id).await?
            else {
                let reason = format!("ECS has no service {} in cluster {}", rolling.service, rolling.cluster);
                return Ok(Some(Lost::Gone(reason)));
            };
            let ended = rollout_ended(&report, deploy.task_definition.as_deref(), deployment_id);
            Ok(ended.map(|(event_name, reason)| {
                Lost::Change(change(DeploymentChange::Ecs { event_name: event_name.to_owned(), reason }))
            }))
        }
    }
}

/// How an ECS rollout ended, as its service tells it: its `rolloutState` while the service lists it; once ECS has
/// dropped it (another deployment replaced it, a circuit breaker's rollback say), whether the service runs the
/// run's task definition. `None` while it goes on, or when the run's task definition is unknown.
fn rollout_ended(
    report: &RolloutReport,
    ours: Option<&str>,
    deployment_id: &str,
) -> Option<(&'static str, Option<String>)> {
    match &report.deployment {
        Some((DeploymentProgress::Going, _)) => None,
        Some((DeploymentProgress::Succeeded, reason)) => Some(("SERVICE_DEPLOYMENT_COMPLETED", reason.clone())),
        Some((DeploymentProgress::Failed | DeploymentProgress::Stopped, reason)) => {
            Some(("SERVICE_DEPLOYMENT_FAILED", reason.clone()))
        }
        None => {
            let ours = ours?;
            let runs = report.task_definition.as_deref().unwrap_or("no task definition");
            if runs == ours {
                return Some(("SERVICE_DEPLOYMENT_COMPLETED", None));
            }
            let reason =
                format!("ECS no longer lists deployment {deployment_id}, and the service runs {runs}, not {ours}");
            Some(("SERVICE_DEPLOYMENT_FAILED", Some(reason)))
        }
    }
}

#[cfg(test)]
mod tests;
