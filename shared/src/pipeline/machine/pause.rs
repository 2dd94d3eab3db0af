//! Approvals inside an ECS-native deployment: ECS pauses it at the pipeline's approval stage (a PAUSE lifecycle
//! hook), sluice asks the approvers, and their decision continues it or rolls it back.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Applied, IgnoreReason, MAX_APPROVER, MAX_COMMENT, MAX_SOURCE_IP, MAX_USER_AGENT, Run, TransitionError};
use crate::contract::events::{DeploymentPaused, SluiceEvent};
use crate::definitions::{DeployTarget, PRE_PRODUCTION_TRAFFIC_SHIFT, PauseAction};
use crate::pipeline::event::{ApprovalNotice, Effect, PauseNotice};
use crate::pipeline::state::{ApprovalDecision, ApprovalFacts, DeployFacts, PauseFacts, bounded};
use crate::present::text::percent;

/// Pauses kept per deployment, those kept apart from the run counted: a linear shift pauses before each of its
/// steps (at most 34, at 3 % a step). Past it a deployment keeps its first pauses and its newest: the oldest of those
/// still in the run goes.
pub const MAX_PAUSES: usize = 40;
/// Pauses a run holds at once, whatever its number of deploy stages, before the stores keep decided ones apart
/// ([`crate::pipeline::Execution::set_apart`], which leaves far fewer): past it the run's oldest pause goes, so that
/// a run's record stays far below DynamoDB's item limit however it is stored.
pub const MAX_RUN_PAUSES: usize = 60;

/// What a `DeploymentPaused` event says.
pub(super) struct Paused<'a> {
    pub service_deployment: &'a str,
    pub hook_id: &'a str,
    pub stage: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    pub action: Option<PauseAction>,
}

/// A person's decision, as an `ApprovalDecided` event says it.
pub(super) struct Said<'a> {
    pub decision: ApprovalDecision,
    pub approver: &'a str,
    pub comment: &'a Option<String>,
    pub source_ip: &'a Option<String>,
    pub user_agent: &'a Option<String>,
}

impl Said<'_> {
    /// Records the decision on the approval it decides, at `now`.
    pub fn record(&self, approval: &mut ApprovalFacts, now: DateTime<Utc>) {
        approval.decision = Some(self.decision);
        approval.approver = Some(bounded(self.approver, MAX_APPROVER));
        approval.comment = self.comment.as_deref().map(|comment| bounded(comment, MAX_COMMENT));
        approval.decided_at = Some(now);
        approval.source_ip = self.source_ip.as_deref().map(|ip| bounded(ip, MAX_SOURCE_IP));
        approval.user_agent = self.user_agent.as_deref().map(|agent| bounded(agent, MAX_USER_AGENT));
    }
}

/// Why the run's deployment was rolled back, when a pause did it: a person rejected it, or nobody decided in time
/// and the pause's timeout action was ROLLBACK.
pub(super) fn rolled_back_at(deploy: &DeployFacts, now: DateTime<Utc>) -> Option<String> {
    let (pause, approval) = deploy.rolled_back_at_pause(now)?;
    let at =
        format!("at the {} pause ({} of production on the new revision)", pause.stage, percent(pause.shifted_tenths));
    let approver = approval.approver.as_deref().unwrap_or("someone");
    Some(match approval.comment.as_deref() {
        _ if approval.decision.is_none() => format!(
            "rolled back by the pause timeout: nobody decided {at} by {}",
            approval.expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
        Some(comment) => format!("rolled back by {approver} {at}: {comment}"),
        None => format!("rolled back by {approver} {at}"),
    })
}

impl Run {
    /// ECS paused the run's deployment: the approvers are asked, or, before the first step of production traffic
    /// (nothing to judge yet), sluice continues it itself.
    pub(super) fn paused(&mut self, i: usize, event: &Paused<'_>) -> Applied {
        let execution = &self.state.executions[i];
        let deploy = execution.deploy();
        let known = deploy.and_then(|deploy| deploy.service_deployment.as_deref());
        if execution.deploying().is_none() {
            let same = known.is_none_or(|known| known == event.service_deployment);
            return self.past(i, self.deploy_stage(i), same, "deployment_paused");
        }
        if let Some(known) = known.filter(|known| *known != event.service_deployment) {
            return Err(TransitionError::ForeignDeployment {
                execution: execution.id.clone(),
                expected: known.to_owned(),
                got: event.service_deployment.to_owned(),
            });
        }
        if deploy.is_some_and(|deploy| deploy.pauses.iter().any(|pause| pause.hook_id == event.hook_id)) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        let Some(DeployTarget::EcsNative(native)) = execution.target() else {
            return Err(TransitionError::UnplannedPause { execution: execution.id.clone(), stage: event.stage.into() });
        };
        // sluice configures one PAUSE hook, at the plan's approval stage: a pause awaiting action is that hook,
        // whatever stage the deployment reports meanwhile (ECS's lifecycleStage lists the stages a deployment is in,
        // not the hook stages it pauses at).
        let Some(plan) = native.approval.as_ref() else {
            return Err(TransitionError::UnplannedPause { execution: execution.id.clone(), stage: event.stage.into() });
        };
        let stage = plan.stage.as_str();
        // Those kept apart paused at the same hook: sluice configures one.
        let earlier =
            deploy.map_or(0, |deploy| deploy.pauses_apart + deploy.pauses.iter().filter(|p| p.stage == stage).count());
        let shifted_tenths = native.shift.production_at_pause(stage, earlier);
        let timeout_action = event.action.unwrap_or(plan.on_timeout);
        let expires_at = event.expires_at.unwrap_or_else(|| {
            let timeout = TimeDelta::minutes(i64::from(plan.timeout_minutes));
            self.now.checked_add_signed(timeout).unwrap_or(DateTime::<Utc>::MAX_UTC)
        });
        let asks = !(stage == PRE_PRODUCTION_TRAFFIC_SHIFT && shifted_tenths == 0);
        let mut pause = PauseFacts {
            hook_id: bounded(event.hook_id, super::MAX_ARN),
            stage: stage.to_owned(),
            shifted_tenths,
            timeout_action,
            approval: None,
            held: false,
            held_until: None,
        };
        let announced = SluiceEvent::DeploymentPaused(DeploymentPaused {
            pipeline: execution.pipeline.clone(),
            execution_id: execution.id.clone(),
            service_deployment: event.service_deployment.to_owned(),
            stage: stage.to_owned(),
            shifted_percent: f64::from(shifted_tenths) / 10.0,
            asks_approval: asks,
        });
        let topic_arn = asks.then(|| plan.topic_arn.clone());
        self.answer_pause(i, event, &mut pause, (topic_arn, expires_at));
        self.effects.push(Effect::Publish(announced));
        self.record_pause(i, event.service_deployment, pause);
        Ok(None)
    }

    /// What sluice does at run `i`'s new `pause`: asks for a decision by `topic_arn` (until `expires_at`), or, with
    /// no decision to ask, continues it at once, unless the freeze holds it (until ECS stops waiting there).
    fn answer_pause(
        &mut self,
        i: usize,
        event: &Paused<'_>,
        pause: &mut PauseFacts,
        (topic_arn, expires_at): (Option<String>, DateTime<Utc>),
    ) {
        let execution = &self.state.executions[i];
        if let Some(topic_arn) = topic_arn {
            let notice = ApprovalNotice {
                pause: Some(PauseNotice::of(execution, pause)),
                ..ApprovalNotice::of(execution, self.now)
            };
            let approval = ApprovalFacts {
                topic_arn: topic_arn.clone(),
                requested_at: self.now,
                expires_at,
                ..Default::default()
            };
            pause.approval = Some(approval);
            self.ask(i, (&topic_arn, None), expires_at, notice, Some(event.hook_id), None);
        } else if self.hold(i, pause) {
            pause.held_until = Some(expires_at);
        } else {
            self.effects.push(Effect::ContinueDeployment {
                execution_id: execution.id.clone(),
                service_deployment: event.service_deployment.to_owned(),
                hook_id: event.hook_id.to_owned(),
                action: PauseAction::Continue,
            });
        }
    }

    /// Keeps `pause` on the run's deployment (the newest [`MAX_PAUSES`] of the deployment, those kept apart counted,
    /// and [`MAX_RUN_PAUSES`] of the run), with the service deployment it paused.
    fn record_pause(&mut self, i: usize, service_deployment: &str, pause: PauseFacts) {
        let deploy = self.deploy_mut(i);
        deploy.service_deployment.get_or_insert_with(|| bounded(service_deployment, super::MAX_ARN));
        if deploy.pauses.len() + deploy.pauses_apart >= MAX_PAUSES && !deploy.pauses.is_empty() {
            deploy.pauses.remove(0);
        }
        if self.state.executions[i].pauses().count() >= MAX_RUN_PAUSES {
            let records = self.state.executions[i].stages.iter_mut();
            let oldest = records.filter_map(|record| record.deploy.as_mut()).find(|deploy| !deploy.pauses.is_empty());
            if let Some(deploy) = oldest {
                deploy.pauses.remove(0);
            }
        }
        self.deploy_mut(i).pauses.push(pause);
    }

    /// The approval request for pause `hook_id` went out: from now on only its link decides.
    pub(super) fn pause_sent(&mut self, i: usize, hook_id: &str, token_hash: &str) -> Applied {
        let now = self.now;
        let execution = &mut self.state.executions[i];
        let mut pauses =
            execution.stages.iter_mut().filter_map(|record| record.deploy.as_mut()).flat_map(|d| d.pauses.iter_mut());
        let Some(approval) = pauses.find(|pause| pause.hook_id == hook_id).and_then(|pause| pause.approval.as_mut())
        else {
            let (execution, status) = (execution.id.clone(), execution.status);
            return Err(TransitionError::NotInStage { execution, status, event: "approval_sent" });
        };
        if approval.token_hash.as_deref() == Some(token_hash) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if approval.decision.is_some() {
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        }
        approval.token_hash = Some(token_hash.to_owned());
        approval.sent_at = Some(now);
        execution.updated_at = now;
        Ok(None)
    }

    /// The pause a decision is about (its hook id): the one whose link it came through, or, for a decision that
    /// names no link, the pause the deployment waits at. `None`: the decision is about the approval stage.
    pub(super) fn decided_pause(&self, i: usize, token_hash: Option<&str>) -> Option<String> {
        let execution = &self.state.executions[i];
        match token_hash {
            Some(hash) => execution
                .pauses()
                .find(|pause| pause.approval.as_ref().and_then(|a| a.token_hash.as_deref()) == Some(hash))
                .map(|pause| pause.hook_id.clone()),
            None => execution.open_pause().map(|pause| pause.hook_id.clone()),
        }
    }

    /// A person decided at pause `hook_id`: the deployer continues the deployment or rolls it back. The run goes on
    /// until ECS reports how the deployment ended.
    pub(super) fn pause_decided(&mut self, i: usize, hook_id: &str, said: &Said<'_>) -> Applied {
        let execution = &self.state.executions[i];
        let id = execution.id.clone();
        let pause = execution.pauses().find(|pause| pause.hook_id == hook_id);
        let recorded = pause.and_then(|pause| pause.approval.as_ref()).and_then(|approval| approval.decision);
        match recorded {
            Some(recorded) if recorded == said.decision => return Ok(Some(IgnoreReason::DuplicateEvent)),
            Some(recorded) => return Err(TransitionError::AlreadyDecided { execution: id, decision: recorded }),
            None => {}
        }
        if execution.open_pause().is_none_or(|open| open.hook_id != hook_id) {
            return self.past(i, self.deploy_stage(i), false, "approval_decided");
        }
        let (now, service_deployment) = (self.now, execution.deploy().and_then(|d| d.service_deployment.clone()));
        let deploy = self.deploy_mut(i);
        let Some(pause) = deploy.pauses.iter_mut().find(|pause| pause.hook_id == hook_id) else {
            return self.past(i, self.deploy_stage(i), false, "approval_decided");
        };
        let stage = pause.stage.clone();
        let Some(approval) = pause.approval.as_mut() else {
            return self.past(i, self.deploy_stage(i), false, "approval_decided");
        };
        if now > approval.expires_at {
            return Err(TransitionError::ApprovalExpired { execution: id, expired_at: approval.expires_at });
        }
        said.record(approval, now);
        let frozen = self.holds_pauses(i);
        let action = match said.decision {
            ApprovalDecision::Approved => PauseAction::Continue,
            ApprovalDecision::Rejected => PauseAction::Rollback,
        };
        // Approved while the pipeline is frozen: carried out once the freeze lifts ([`Run::unfrozen`]).
        if frozen && action == PauseAction::Continue {
            if let Some(pause) = self.deploy_mut(i).pauses.iter_mut().find(|pause| pause.hook_id == hook_id) {
                pause.held = true;
            }
            self.announce_decision(i, said, Some(&stage));
            return Ok(None);
        }
        self.announce_decision(i, said, Some(&stage));
        self.effects.push(Effect::ContinueDeployment {
            execution_id: id,
            service_deployment: service_deployment.unwrap_or_default(),
            hook_id: hook_id.to_owned(),
            action,
        });
        Ok(None)
    }
}
