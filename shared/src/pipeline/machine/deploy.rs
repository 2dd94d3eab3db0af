//! The deploy stage's events: the deployment started, a hook's checks completed, the deployment succeeded, failed
//! or made way for another run's.

use super::{Applied, IgnoreReason, MAX_HOOK_DETAIL, MAX_HOOK_RESULTS, Run, TransitionError, pause};
use crate::contract::events::DeploymentRequested;
use crate::contract::events::{ChecksRequested, SluiceEvent};
use crate::definitions::{AFTER_ROLLOUT, DeployStage, DeployTarget, ExecutionMode};
use crate::deploy::{DigestCheck, RunningTask, digests};
use crate::pipeline::event::{Effect, EntryGate, HookStatus};
use crate::pipeline::state::{DeployFacts, ExecutionId, HookResult, Stage, StageRecord, Status, bounded};
use chrono::{DateTime, TimeDelta, Utc};

/// The longest account of what a held start waits for.
const MAX_HELD: usize = 300;

/// What a `HookCompleted` event says.
#[derive(Clone, Copy)]
pub(super) struct HookDone<'a> {
    pub deployment_id: &'a String,
    pub lifecycle_event: &'a String,
    pub hook_execution_id: &'a String,
    pub passed: &'a bool,
    pub detail: &'a Option<String>,
    pub millis: &'a Option<u64>,
}

impl Run {
    /// Run `i` enters the deploy stage `stage`: the deployer is asked to deploy the run's build there.
    pub(super) fn start_deployment(&mut self, i: usize, stage: Stage, deploy: &DeployStage) {
        let execution = &self.state.executions[i];
        let build = execution.build.as_ref();
        let (image_uri, artifacts) =
            (build.and_then(|build| build.image_uri.clone()), build.and_then(|build| build.artifacts.clone()));
        self.effects.push(Effect::StartDeployment {
            execution_id: execution.id.clone(),
            pipeline: execution.pipeline.clone(),
            supersede: self.state.mode == ExecutionMode::Superseded,
            stage,
            target: deploy.target.clone(),
            image_uri: image_uri.clone(),
            artifacts: artifacts.clone(),
            soak_alarms: deploy.alarms().to_vec(),
            entry: self.entry_gate(i, stage, deploy),
        });
        self.effects.push(Effect::Publish(SluiceEvent::DeploymentRequested(DeploymentRequested {
            pipeline: execution.pipeline.clone(),
            execution_id: execution.id.clone(),
            commit: execution.source.commit.clone(),
            image_uri,
            artifacts,
            target: deploy.target.clone(),
            stage: Some(stage),
            environment: execution.plan.environment(stage),
        })));
        let started = DeployFacts::new(deploy.target.strategy(), self.now);
        self.state.executions[i].stages.push(StageRecord { deploy: Some(started), ..StageRecord::new(stage) });
        self.show_on_github(i);
    }

    /// What keeps run `i` out of deploy stage `stage`: its entry alarms (from now until its `entry_timeout` has
    /// passed) and its windows and deny periods; none if the stage has none or an operator let the run through
    /// (`sluice override`).
    fn entry_gate(&self, i: usize, stage: Stage, deploy: &DeployStage) -> Option<EntryGate> {
        if deploy.entry_alarms.is_none() && deploy.calendar.is_none()
            || self.state.executions[i].overridden(stage).is_some()
        {
            return None;
        }
        let (alarms, timeout_secs) =
            deploy.entry_alarms.as_ref().map_or((Vec::new(), 0), |entry| (entry.names.clone(), entry.timeout_secs));
        let timeout = i64::try_from(timeout_secs).ok().and_then(TimeDelta::try_seconds).unwrap_or(TimeDelta::MAX);
        let until = self.now.checked_add_signed(timeout).unwrap_or(DateTime::<Utc>::MAX_UTC);
        Some(EntryGate { alarms, until, calendar: deploy.calendar.clone() })
    }

    /// The deployer found run `i`'s stage closed to it: what the start waits for is recorded (`None`: nothing any
    /// more, a later try failed otherwise), and shown on GitHub; told again the same, nothing changes.
    pub(super) fn start_held(&mut self, i: usize, why: Option<&str>) -> Applied {
        let execution = &self.state.executions[i];
        let waiting = execution.deploying().is_some()
            && execution.deploy().is_some_and(|d| d.deployment_id.is_none() && d.service_deployment.is_none());
        if !waiting {
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        }
        let why = why.map(|why| bounded(why, MAX_HELD));
        let deploy = self.deploy_mut(i);
        if deploy.held == why {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        deploy.held = why;
        self.touch(i);
        self.show_held(i);
        Ok(None)
    }

    /// An operator let run `i` into `stage` (`sluice override`): its start waiting for the stage's entry alarms, if
    /// any, waits no more.
    pub(super) fn open_entry(&mut self, i: usize, stage: Stage) {
        let execution = &mut self.state.executions[i];
        let record = execution.stages.iter_mut().rev().find(|record| record.name == stage);
        if let Some(deploy) = record.and_then(|record| record.deploy.as_mut()) {
            deploy.held = None;
        }
        let id = &self.state.executions[i].id;
        for pending in &mut self.state.pending {
            if let Effect::StartDeployment { execution_id, stage: at, entry, .. } = &mut pending.effect
                && execution_id == id
                && *at == stage
                && entry.take().is_some()
            {
                pending.not_before = None;
                pending.last_error = None;
            }
        }
    }

    /// The run's deployment started (or a retry of its start reports it again): its facts are recorded.
    pub(super) fn deployment_started(
        &mut self,
        i: usize,
        name: &'static str,
        deployment_id: &str,
        facts: [&Option<String>; 3],
    ) -> Applied {
        if self.state.executions[i].deploying().is_none() {
            // A hook or the deployment's end may have been saved first: the run keeps the facts all the same.
            let same = self.same_deployment(i, deployment_id);
            if same && self.state.executions[i].deploy().is_some() && self.merge_started(i, facts) {
                return Ok(None);
            }
            return self.past(i, self.deploy_stage(i), same, name);
        }
        let claimed = self.claim_deployment(i, deployment_id)?;
        // A hook that arrived first claimed the id: its facts are merged, not dropped as a duplicate.
        if !self.merge_started(i, facts) && !claimed {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        Ok(None)
    }

    /// A lifecycle hook's checks completed: recorded, then answered to CodeDeploy, or (a rolling update's AfterRollout checks) the run moves on.
    pub(super) fn hook_completed(&mut self, i: usize, name: &'static str, hook: HookDone<'_>) -> Applied {
        let status = self.state.executions[i].status;
        let HookDone { deployment_id, lifecycle_event, hook_execution_id, passed, detail, millis } = hook;
        let Some(deploy) = self.state.executions[i].deploy() else {
            return self.past(i, self.deploy_stage(i), false, name);
        };
        if deploy.hooks.iter().any(|hook| &hook.hook_execution_id == hook_execution_id) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        self.claim_deployment(i, deployment_id)?;
        // A hook of a run that has already ended must not let its deployment go on.
        let passed = *passed && self.state.executions[i].deploying().is_some();
        let detail =
            if status.is_finished() { Some(format!("execution already ended ({status})")) } else { detail.clone() };
        let now = self.now;
        let deploy = self.deploy_mut(i);
        let after_rollout = deploy.rolled_out_at.is_some() && lifecycle_event == AFTER_ROLLOUT;
        let hooks = &mut deploy.hooks;
        if hooks.len() >= MAX_HOOK_RESULTS {
            hooks.remove(0);
        }
        hooks.push(HookResult {
            lifecycle_event: lifecycle_event.clone(),
            hook_execution_id: hook_execution_id.clone(),
            passed,
            detail: detail.map(|detail| bounded(&detail, MAX_HOOK_DETAIL)),
            millis: *millis,
            at: now,
        });
        if matches!(self.state.executions[i].target(), Some(DeployTarget::EcsNative(_))) {
            // ECS takes the hook's answer from the invocation itself: there is nothing to report.
            self.touch(i);
            return Ok(None);
        }
        if after_rollout {
            // sluice's own checks, after ECS completed the rollout: nobody waits for an answer.
            if self.state.executions[i].deploying().is_some() {
                self.after_rollout_checked(i, passed);
            }
            return Ok(None);
        }
        self.effects.push(Effect::ReportHookStatus {
            execution_id: self.state.executions[i].id.clone(),
            deployment_id: deployment_id.clone(),
            hook_execution_id: hook_execution_id.clone(),
            status: if passed { HookStatus::Succeeded } else { HookStatus::Failed },
        });
        self.touch(i);
        Ok(None)
    }

    /// The run's deployment succeeded: what its tasks run is checked against the release's digest (a mismatch rolls
    /// the service back), then the run ships, or first runs its AfterRollout checks.
    pub(super) fn deployment_succeeded(
        &mut self,
        i: usize,
        name: &'static str,
        deployment_id: &str,
        tasks: Option<&[RunningTask]>,
    ) -> Applied {
        if self.state.executions[i].deploying().is_none() {
            return self.past(i, self.deploy_stage(i), self.same_deployment(i, deployment_id), name);
        }
        self.claim_deployment(i, deployment_id)?;
        let now = self.now;
        let deploy = self.deploy_mut(i);
        let mismatched = deploy.digest_check.as_ref().is_some_and(|check| !check.passed());
        if deploy.rolled_out_at.is_some() || deploy.soak_until.is_some() || mismatched {
            // Already told: its AfterRollout checks are running, the release soaks, or its tasks ran another image
            // and the service is being rolled back.
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if let Some(check) = self.check_digests(i, tasks).filter(|check| !check.passed()) {
            self.roll_back_deployed(i, format!("what runs is not what was built: {}", check.summary()));
            return Ok(None);
        }
        let checks = self.state.executions[i].target().map(DeployTarget::after_rollout_checks).unwrap_or_default();
        if !checks.is_empty() {
            self.deploy_mut(i).rolled_out_at = Some(now);
            let execution = &self.state.executions[i];
            let stage = execution.deploying().map_or(Stage::DEPLOY, |(stage, _)| stage);
            self.effects.push(Effect::RunChecks {
                execution_id: execution.id.clone(),
                deployment_id: deployment_id.to_owned(),
                lifecycle_event: AFTER_ROLLOUT.to_owned(),
                stage,
                checks: checks.iter().map(|check| execution.for_release(check)).collect(),
            });
            self.effects.push(Effect::Publish(SluiceEvent::ChecksRequested(ChecksRequested {
                pipeline: execution.pipeline.clone(),
                execution_id: execution.id.clone(),
                deployment_id: deployment_id.to_owned(),
                lifecycle_event: AFTER_ROLLOUT.to_owned(),
                checks: checks.len(),
                stage: execution.at(),
            })));
            return Ok(None);
        }
        self.deploy_mut(i).finished_at = Some(now);
        self.stage_done(i);
        Ok(None)
    }

    /// Judges the `tasks` the service runs (when they were read) against the release's digest, and records what
    /// the check found on the deployment.
    fn check_digests(&mut self, i: usize, tasks: Option<&[RunningTask]>) -> Option<DigestCheck> {
        let execution = &self.state.executions[i];
        let image = execution.build.as_ref()?.image_uri.as_deref()?;
        let ours = execution.deploy()?.task_definition.as_deref()?;
        let check = digests::judge(image, ours, tasks?)?;
        self.deploy_mut(i).digest_check = Some(check.clone());
        Some(check)
    }

    /// The run's deployment failed (rolled back or not): the run ends saying why, with the check that failed or who rolled it back.
    pub(super) fn deployment_failed(
        &mut self,
        i: usize,
        name: &'static str,
        deployment_id: &Option<String>,
        reason: &str,
        rolled_back: bool,
    ) -> Applied {
        let same = deployment_id.as_ref().is_none_or(|id| self.same_deployment(i, id));
        if self.state.executions[i].deploying().is_none() {
            return self.past(i, self.deploy_stage(i), same, name);
        }
        if let Some(deployment_id) = deployment_id {
            self.claim_deployment(i, deployment_id)?;
        }
        let now = self.now;
        let deploy = self.deploy_mut(i);
        // A deployment that completed (and soaked, until an alarm fired) keeps when it did.
        deploy.finished_at.get_or_insert(now);
        // The service says that a hook failed; the run knows which check, and why, or who rolled it back at a
        // pause.
        let failed_hook = deploy.hooks.iter().rev().find(|hook| !hook.passed);
        let reason = match (pause::rolled_back_at(deploy, now), failed_hook) {
            (Some(pause), _) => format!("{pause}; {reason}"),
            (None, _) if let Some(ordered) = &deploy.rollback_ordered => {
                format!("rolled back by {} (sluice rollback): {reason}", ordered.by)
            }
            (None, _) if let Some(check) = deploy.digest_check.as_ref().filter(|check| !check.passed()) => {
                format!("what runs is not what was built: {}; {reason}", check.summary())
            }
            (None, _) if let Some(alarm) = &deploy.alarm => {
                format!("alarm {} went into ALARM during the soak ({}); {reason}", alarm.name, alarm.reason)
            }
            (None, Some(hook)) => format!(
                "the {} checks failed ({}); {reason}",
                hook.lifecycle_event,
                hook.detail.as_deref().unwrap_or("no detail")
            ),
            (None, None) => reason.to_owned(),
        };
        let outcome = if rolled_back { Status::RolledBack } else { Status::Failed };
        let reason = self.in_stage(i, reason);
        self.finish(i, outcome, Some(reason));
        Ok(None)
    }

    /// The release has run at the stage the run holds for its soak: the run takes its next stage.
    pub(super) fn soak_ended(&mut self, i: usize) -> Applied {
        let execution = &self.state.executions[i];
        let Some(until) = execution.soaking() else {
            return self.past(i, self.deploy_stage(i), true, "soak_ended");
        };
        if execution.deploy().is_some_and(|deploy| deploy.alarm.is_some()) {
            // An alarm fired during the soak: the service is being rolled back, and the run ends with that.
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        }
        if self.now < until {
            return Err(TransitionError::SoakNotOver { execution: execution.id.clone(), until });
        }
        if let Some(stage) = execution.at() {
            self.advance(i, stage);
        }
        Ok(None)
    }

    /// `reason`, saying which stage it happened in where the stage is not the one deploy stage of a pipeline written
    /// with a `[deploy]` table: `in production: the AfterInstall checks failed ...`.
    pub(super) fn in_stage(&self, i: usize, reason: String) -> String {
        match self.state.executions[i].at() {
            Some(stage) if stage != Stage::DEPLOY => format!("in {stage}: {reason}"),
            _ => reason,
        }
    }

    /// The run's deployment was stopped to make way for another run's: the run is superseded.
    pub(super) fn deployment_superseded(
        &mut self,
        i: usize,
        name: &'static str,
        deployment_id: &str,
        (by, by_pipeline): (&ExecutionId, &str),
        reason: &str,
    ) -> Applied {
        if self.state.executions[i].deploying().is_none() {
            return self.past(i, self.deploy_stage(i), self.same_deployment(i, deployment_id), name);
        }
        self.claim_deployment(i, deployment_id)?;
        let now = self.now;
        let deploy = self.deploy_mut(i);
        deploy.finished_at = Some(now);
        deploy.superseded = true;
        let needed = match self.state.executions[i].target() {
            Some(DeployTarget::EcsNative(_)) => "service",
            _ => "deployment group",
        };
        let reason =
            format!("superseded by execution {by} of pipeline {by_pipeline}, which needed the {needed}: {reason}");
        self.finish(i, Status::Superseded, Some(reason));
        Ok(None)
    }
}
