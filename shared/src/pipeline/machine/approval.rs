//! The approval stage's events: the request went out, a person decided, or nobody did in time.

use chrono::{DateTime, TimeDelta, Utc};

use super::pause::Said;
use super::{Applied, IgnoreReason, MAX_APPROVER, Run, TransitionError};
use crate::definitions::{Approval, Approvers, operator_identity};
use crate::pipeline::event::{ApprovalNotice, ReleaseLookup};
use crate::pipeline::state::{
    ApprovalDecision, ApprovalFacts, ApproverRefused, Execution, ReleaseComparison, Signoff, Stage, StageRecord,
    Status, bounded,
};

/// The longest comment kept with an approval that counts toward the number required (the deciding one keeps
/// [`super::MAX_COMMENT`]).
pub const MAX_SIGNOFF_COMMENT: usize = 100;
/// The longest operator ARN kept with an approval: an assumed role's session ARN is at most about 170 characters.
const MAX_OPERATOR_ARN: usize = 256;
/// A link's token hash: SHA-256 in hex.
const MAX_HASH: usize = 64;

impl Run {
    /// Run `i` enters an approval stage: its approvers are asked to decide within the stage's timeout.
    pub(super) fn request_approval(&mut self, i: usize, approval: &Approval) {
        let now = self.now;
        let expires_at = expiry(now, approval);
        let notice = ApprovalNotice::of(&self.state.executions[i], now);
        let release = release_lookup(&self.state.executions[i]);
        self.ask(i, (&approval.topic_arn, approval.approvers.as_ref()), expires_at, notice, None, release);
        let facts = ApprovalFacts {
            topic_arn: approval.topic_arn.clone(),
            requested_at: now,
            expires_at,
            ..Default::default()
        };
        let execution = &mut self.state.executions[i];
        let stage = execution.at().unwrap_or(Stage::APPROVAL);
        execution.stages.push(StageRecord { approval: Some(facts), ..StageRecord::new(stage) });
    }

    /// The approval request went out with a link whose token hashes to `token_hash`: from now on only that link decides.
    pub(super) fn approval_sent(
        &mut self,
        i: usize,
        name: &'static str,
        (token_hash, personal): (&str, &[String]),
        compared: Option<&ReleaseComparison>,
    ) -> Applied {
        let Some(approval) = self.state.executions[i].approval() else {
            return self.past(i, self.approval_stage(i), false, name);
        };
        if approval.token_hash.as_deref() == Some(token_hash) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if approval.decision.is_some() {
            // The decision stands, and its link keeps saying so.
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        }
        // A link for each named approver, in their order, or none: anything else could credit one with another's.
        let named = self.state.executions[i].named_approvers().map_or(0, |approvers| approvers.emails.len());
        if personal.len() != named {
            let execution = self.state.executions[i].id.clone();
            return Err(TransitionError::PersonalLinks { execution, sent: personal.len(), named });
        }
        // Recorded even if the run left the stage meanwhile: its link then says why it no longer decides.
        let now = self.now;
        let approval = self.approval_mut(i);
        approval.token_hash = Some(token_hash.to_owned());
        approval.personal = personal.iter().map(|hash| bounded(hash, MAX_HASH)).collect();
        approval.sent_at = Some(now);
        approval.compared = compared.map(|compared| Box::new(compared.bounded()));
        Ok(None)
    }

    /// A person decided, through the link whose token hashes to `token_hash` (none: an operator): a pause's decision goes to the pause; the run's own approval moves it on or ends it.
    pub(super) fn approval_decided(
        &mut self,
        i: usize,
        name: &'static str,
        said: &Said<'_>,
        token_hash: Option<&str>,
    ) -> Applied {
        let execution = &self.state.executions[i];
        if let Some(hook_id) = self.decided_pause(i, token_hash) {
            return self.pause_decided(i, &hook_id, said);
        }
        if let Some(approvers) = self.state.executions[i].named_approvers().cloned() {
            return self.approver_decided(i, name, said, token_hash, &approvers);
        }
        let current = execution.approval().and_then(|approval| approval.token_hash.as_ref());
        if token_hash.is_some() && token_hash != current.map(String::as_str) {
            return Err(TransitionError::StaleApprovalLink { execution: execution.id.clone() });
        }
        if !self.state.executions[i].approving() {
            let recorded = execution.approval().and_then(|approval| approval.decision);
            return match recorded {
                Some(recorded) if recorded == said.decision => Ok(Some(IgnoreReason::DuplicateEvent)),
                Some(recorded) => {
                    Err(TransitionError::AlreadyDecided { execution: execution.id.clone(), decision: recorded })
                }
                None => self.past(i, self.approval_stage(i), false, name),
            };
        }
        let expires_at = self.approval_mut(i).expires_at;
        if self.now > expires_at {
            let execution = self.state.executions[i].id.clone();
            return Err(TransitionError::ApprovalExpired { execution, expired_at: expires_at });
        }
        self.decide_stage(i, said);
        Ok(None)
    }

    /// The decision on the approval run `i` holds, recorded and announced: the run moves on, or ends.
    fn decide_stage(&mut self, i: usize, said: &Said<'_>) {
        let now = self.now;
        said.record(self.approval_mut(i), now);
        self.announce_decision(i, said, None);
        match said.decision {
            ApprovalDecision::Approved => self.stage_done(i),
            ApprovalDecision::Rejected => {
                let reason = match said.comment {
                    Some(comment) if !comment.is_empty() => format!("rejected by {}: {comment}", said.approver),
                    _ => format!("rejected by {}", said.approver),
                };
                // Asked whether a release that failed its tests goes on: no, so the run fails there.
                match self.state.executions[i].failed_test() {
                    Some((stage, why)) => self.finish(i, Status::Failed, Some(format!("in {stage}: {why}; {reason}"))),
                    None => self.finish(i, Status::Rejected, Some(reason)),
                }
            }
        }
    }

    /// A named approver decided, through their own link (`token_hash`), or an operator with `sluice approve`: an
    /// approval counts toward the number required, a rejection rejects. Each decides once.
    fn approver_decided(
        &mut self,
        i: usize,
        name: &'static str,
        said: &Said<'_>,
        token_hash: Option<&str>,
        approvers: &Approvers,
    ) -> Applied {
        let execution = &self.state.executions[i];
        let id = execution.id.clone();
        let Some(facts) = execution.approval() else { return self.past(i, self.approval_stage(i), false, name) };
        let by = match token_hash {
            Some(hash) => execution
                .approver_of(hash)
                .map(str::to_owned)
                .ok_or(TransitionError::StaleApprovalLink { execution: id.clone() })?,
            None if approvers.operator(said.approver) => bounded(&operator_identity(said.approver), MAX_OPERATOR_ARN),
            None => {
                return Err(TransitionError::NotAnApprover { execution: id, by: bounded(said.approver, MAX_APPROVER) });
            }
        };
        if !execution.approving() {
            let theirs = facts.approver.as_deref() == Some(by.as_str()) || facts.signoffs.iter().any(|s| s.by == by);
            return match facts.decision {
                // The same person's same decision again (a repeated `sluice approve`): nothing new.
                Some(decision) if decision == said.decision && theirs => Ok(Some(IgnoreReason::DuplicateEvent)),
                Some(decision) => Err(TransitionError::AlreadyDecided { execution: id, decision }),
                None => self.past(i, self.approval_stage(i), false, name),
            };
        }
        match execution.approver_refused(&by) {
            Some(ApproverRefused::AlreadyApproved { at }) => {
                return Err(TransitionError::AlreadySignedOff { execution: id, by, at });
            }
            Some(ApproverRefused::Pusher) => return Err(TransitionError::PusherMayNotApprove { execution: id, by }),
            None => {}
        }
        if self.now > facts.expires_at {
            return Err(TransitionError::ApprovalExpired { execution: id, expired_at: facts.expires_at });
        }
        let said = Said { approver: &by, ..*said };
        if said.decision == ApprovalDecision::Approved {
            let (now, comment) =
                (self.now, said.comment.as_deref().map(|comment| bounded(comment, MAX_SIGNOFF_COMMENT)));
            let approval = self.approval_mut(i);
            approval.signoffs.push(Signoff { by: by.clone(), at: now, comment });
            if approval.signoffs.len() < approvers.required {
                return Ok(None);
            }
        }
        self.decide_stage(i, &said);
        Ok(None)
    }

    /// The approval stage run `i` holds, or else the one it last entered (or will enter first): what an event about
    /// an approval is about.
    fn approval_stage(&self, i: usize) -> Stage {
        let execution = &self.state.executions[i];
        let entered = execution.stages.iter().rev().find(|record| record.approval.is_some()).map(|record| record.name);
        let planned = || execution.plan.stages.iter().find(|stage| stage.approval().is_some()).map(|stage| stage.name);
        entered.or_else(planned).unwrap_or(Stage::APPROVAL)
    }

    /// Nobody decided before the approval expired: the run times out.
    pub(super) fn approval_expired(&mut self, i: usize, name: &'static str) -> Applied {
        if !self.state.executions[i].approving() {
            return self.past(i, self.approval_stage(i), true, name);
        }
        let now = self.now;
        let approval = self.approval_mut(i);
        if now < approval.expires_at {
            let expires_at = approval.expires_at;
            return Err(TransitionError::ApprovalStillOpen {
                execution: self.state.executions[i].id.clone(),
                expires_at,
            });
        }
        let reason = format!("no approval decision by {}", approval.expires_at.to_rfc3339());
        match self.state.executions[i].failed_test() {
            Some((stage, why)) => self.finish(i, Status::Failed, Some(format!("in {stage}: {why}; {reason}"))),
            None => self.finish(i, Status::TimedOut, Some(reason)),
        }
        Ok(None)
    }
}

/// When an approval asked at `now` expires: its timeout later (the end of time for one too long to add).
pub(super) fn expiry(now: DateTime<Utc>, approval: &Approval) -> DateTime<Utc> {
    i64::try_from(approval.timeout_secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|timeout| now.checked_add_signed(timeout))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Where approving `execution` at its approval stage releases the build: the next deploy stage's service, and the
/// build's task definition to compare with what runs there. `None` when no deploy stage follows or the build left
/// no artifacts.
pub(super) fn release_lookup(execution: &Execution) -> Option<ReleaseLookup> {
    let after = execution.plan.position(execution.at()?);
    let deploy = execution.plan.stages.iter().skip(after).find_map(|stage| stage.deploy())?;
    let (cluster, service) = deploy.target.ecs_service();
    Some(ReleaseLookup {
        cluster: cluster.to_owned(),
        service: service.to_owned(),
        container: deploy.target.container().map(str::to_owned),
        allow_host: deploy.target.allows_host(),
        artifacts: execution.build.as_ref()?.artifacts.clone()?,
    })
}
