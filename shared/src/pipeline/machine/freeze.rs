//! The freeze, the line's stop button (`sluice freeze`): while a pipeline is frozen no run enters a deploy stage (they
//! wait at its boundary, in order) and no ECS-native deployment waiting at a pause is continued. A decision to
//! continue is recorded and carried out once the freeze lifts, if ECS still waits at the pause; a rejection, a
//! rollback and the stop of a deployment are never held.

use chrono::{DateTime, Utc};

use super::{Applied, IgnoreReason, MAX_ARN, MAX_REASON, Run, TransitionError};

/// The longest reason (and name of who gave it) an override keeps: it is kept with the run, in the pipeline's item
/// too while the run goes on.
pub const MAX_OVERRIDE: usize = 160;
use crate::contract::events::{EffectsDue, SluiceEvent};
use crate::definitions::PauseAction;
use crate::pipeline::event::{Effect, EffectKind};
use crate::pipeline::state::{ApprovalDecision, Freeze, Override, PauseFacts, Stage, Status, bounded};

impl Run {
    /// An operator froze the pipeline: recorded (a freeze set again keeps its start and takes the new words).
    pub(super) fn frozen(&mut self, by: &str, reason: &str, until: Option<DateTime<Utc>>) -> Applied {
        if let Some(until) = until.filter(|until| *until <= self.now) {
            return Err(TransitionError::FreezeEndsInThePast { until });
        }
        let since = self.state.frozen().map_or(self.now, |freeze| freeze.since);
        let freeze = Freeze { by: bounded(by, MAX_ARN), reason: bounded(reason, MAX_REASON), since, until };
        self.state.freeze = Some(Box::new(freeze));
        // GitHub shows the runs held from now on as waiting for the freeze.
        for i in self.waiting_at_deploy_stages() {
            self.show_on_github(i);
        }
        Ok(None)
    }

    /// The freeze lifted (`by` an operator, or its end passed): the approved pauses it held continue and the runs
    /// waiting at deploy stages go on, the oldest first.
    pub(super) fn unfrozen(&mut self, by: Option<&str>) -> Applied {
        let Some(freeze) = self.state.freeze.as_ref() else {
            return Ok(Some(IgnoreReason::NotFrozen));
        };
        if by.is_none() && freeze.holds(self.now) {
            // The reconciler's word that the freeze is over, read before someone froze the pipeline again.
            return Ok(Some(IgnoreReason::NotFrozen));
        }
        self.state.freeze = None;
        for i in 0..self.state.executions.len() {
            self.continue_held(i);
        }
        let waiting = self.waiting_at_deploy_stages();
        let mut stages = Vec::new();
        for stage in waiting.iter().filter_map(|&i| self.state.executions[i].waiting_for()) {
            if !stages.contains(&stage) {
                stages.push(stage);
            }
        }
        for stage in stages {
            self.release(stage);
        }
        for i in waiting {
            self.show_on_github(i);
        }
        Ok(None)
    }

    /// Shows run `i`, just held out of a deploy stage by the freeze, on GitHub, and rings the notifier's doorbell:
    /// nothing else it is woken by is published when a run is held.
    pub(super) fn show_held(&mut self, i: usize) {
        self.show_on_github(i);
        let execution = &self.state.executions[i];
        if execution.plan.github.is_some() {
            let due = EffectsDue {
                pipeline: execution.pipeline.clone(),
                execution_id: execution.id.clone(),
                kinds: vec![EffectKind::ReportToGitHub],
            };
            self.effects.push(Effect::Publish(SluiceEvent::EffectsDue(due)));
        }
    }

    /// Whether run `i` is held out of `stage` by a freeze: the stage deploys, the pipeline is frozen (a freeze whose
    /// end has passed holds until the reconciler lifts it, so that the runs it held go first), and no operator let
    /// the run through.
    pub(super) fn held_out(&self, i: usize, stage: Stage) -> bool {
        let execution = &self.state.executions[i];
        let deploys = execution.plan.stage(stage).is_some_and(|planned| planned.deploy().is_some());
        deploys && self.state.freeze.is_some() && execution.overridden(stage).is_none()
    }

    /// Whether run `i`'s deployment must not be continued past a pause now: the pipeline is frozen, and no operator
    /// let the run through at the stage it deploys.
    pub(super) fn holds_pauses(&self, i: usize) -> bool {
        let execution = &self.state.executions[i];
        let overridden = execution.deploying().is_some_and(|(stage, _)| execution.overridden(stage).is_some());
        self.state.freeze.is_some() && !overridden
    }

    /// As [`Run::holds_pauses`], marking `pause` held if so.
    pub(super) fn hold(&self, i: usize, pause: &mut PauseFacts) -> bool {
        pause.held = self.holds_pauses(i);
        pause.held
    }

    /// An operator lets run `i` into deploy stage `stage` whatever holds runs out of it (`sluice override`): recorded
    /// (one a run: the last given stands); waiting there, it enters now if no other run holds the stage;
    /// deploying there, a pause the freeze held is continued.
    pub(super) fn overridden(&mut self, i: usize, stage: Stage, by: &str, reason: &str) -> Applied {
        let execution = &self.state.executions[i];
        if execution.status.is_finished() {
            let (execution, status) = (execution.id.clone(), execution.status);
            return Err(TransitionError::Finished { execution, status, event: "overridden" });
        }
        if execution.plan.deploy_stage(stage).is_none() {
            return Err(TransitionError::NotADeployStage { execution: execution.id.clone(), stage });
        }
        let given =
            Override { stage, by: bounded(by, MAX_OVERRIDE), reason: bounded(reason, MAX_OVERRIDE), at: self.now };
        if execution.overridden(stage).is_some_and(|o| o.by == given.by && o.reason == given.reason) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        let execution = &mut self.state.executions[i];
        execution.let_in = Some(given);
        execution.updated_at = self.now;
        let status = execution.status;
        match status {
            Status::Waiting(at) if at == stage && self.state.holder_of(stage).is_none() => self.enter(i, stage),
            Status::Running(at) if at == stage => {
                self.open_entry(i, stage);
                self.continue_held(i);
            }
            _ => {}
        }
        self.show_on_github(i);
        Ok(None)
    }

    /// Continues the pauses of run `i` the freeze held, where ECS still waits: approved (or continued by sluice
    /// itself) and not yet past their timeout.
    fn continue_held(&mut self, i: usize) {
        let now = self.now;
        let execution = &self.state.executions[i];
        if execution.status.is_finished() || execution.deploying().is_none() {
            return;
        }
        let (id, service_deployment) =
            (execution.id.clone(), execution.deploy().and_then(|d| d.service_deployment.clone()));
        let Some(pause) = self.deploy_mut(i).pauses.iter_mut().find(|pause| pause.held) else { return };
        pause.held = false;
        let due = match &pause.approval {
            Some(approval) => approval.decision == Some(ApprovalDecision::Approved) && now < approval.expires_at,
            None => pause.held_until.is_none_or(|until| now < until),
        };
        if due {
            let hook_id = pause.hook_id.clone();
            self.effects.push(Effect::ContinueDeployment {
                execution_id: id,
                service_deployment: service_deployment.unwrap_or_default(),
                hook_id,
                action: PauseAction::Continue,
            });
        }
    }

    /// The runs waiting for a deploy stage, oldest first.
    fn waiting_at_deploy_stages(&self) -> Vec<usize> {
        let mut waiting: Vec<usize> = (0..self.state.executions.len())
            .filter(|&i| {
                let execution = &self.state.executions[i];
                let stage = execution.waiting_for();
                stage.and_then(|stage| execution.plan.stage(stage)).is_some_and(|planned| planned.deploy().is_some())
            })
            .collect();
        waiting.sort_by_key(|&i| self.state.executions[i].seq);
        waiting
    }
}
