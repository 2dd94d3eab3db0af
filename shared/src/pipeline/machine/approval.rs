//! The approval stage's events: the request went out, a person decided, or nobody did in time.

use super::pause::Said;
use super::{Applied, IgnoreReason, Run, TransitionError};
use crate::pipeline::state::{ApprovalDecision, Stage, Status};

impl Run {
    /// The approval request went out with a link whose token hashes to `token_hash`: from now on only that link decides.
    pub(super) fn approval_sent(&mut self, i: usize, name: &'static str, token_hash: &str) -> Applied {
        let Some(approval) = self.state.executions[i].approval.as_ref() else {
            return self.past(i, Stage::Approval, false, name);
        };
        if approval.token_hash.as_deref() == Some(token_hash) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if approval.decision.is_some() {
            // The decision stands, and its link keeps saying so.
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        }
        // Recorded even if the run left the stage meanwhile: its link then says why it no longer decides.
        let now = self.now;
        let approval = self.approval_mut(i);
        approval.token_hash = Some(token_hash.to_owned());
        approval.sent_at = Some(now);
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
        let status = self.state.executions[i].status;
        let execution = &self.state.executions[i];
        if let Some(hook_id) = self.decided_pause(i, token_hash) {
            return self.pause_decided(i, &hook_id, said);
        }
        let current = execution.approval.as_ref().and_then(|approval| approval.token_hash.as_ref());
        if token_hash.is_some() && token_hash != current.map(String::as_str) {
            return Err(TransitionError::StaleApprovalLink { execution: execution.id.clone() });
        }
        if status != Status::Running(Stage::Approval) {
            let recorded = execution.approval.as_ref().and_then(|approval| approval.decision);
            return match recorded {
                Some(recorded) if recorded == said.decision => Ok(Some(IgnoreReason::DuplicateEvent)),
                Some(recorded) => {
                    Err(TransitionError::AlreadyDecided { execution: execution.id.clone(), decision: recorded })
                }
                None => self.past(i, Stage::Approval, false, name),
            };
        }
        let now = self.now;
        let approval = self.approval_mut(i);
        if now > approval.expires_at {
            let expired_at = approval.expires_at;
            return Err(TransitionError::ApprovalExpired {
                execution: self.state.executions[i].id.clone(),
                expired_at,
            });
        }
        said.record(approval, now);
        self.announce_decision(i, said, None);
        match said.decision {
            ApprovalDecision::Approved => self.advance(i, Stage::Approval),
            ApprovalDecision::Rejected => {
                let reason = match said.comment {
                    Some(comment) if !comment.is_empty() => format!("rejected by {}: {comment}", said.approver),
                    _ => format!("rejected by {}", said.approver),
                };
                self.finish(i, Status::Rejected, Some(reason));
            }
        }
        Ok(None)
    }

    /// Nobody decided before the approval expired: the run times out.
    pub(super) fn approval_expired(&mut self, i: usize, name: &'static str) -> Applied {
        let status = self.state.executions[i].status;
        if status != Status::Running(Stage::Approval) {
            return self.past(i, Stage::Approval, true, name);
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
        self.finish(i, Status::TimedOut, Some(reason));
        Ok(None)
    }
}
