//! `sluice approve` and `sluice reject`: a decision made as the signed-in AWS identity instead of through an
//! emailed link. It is the same `ApprovalDecided` event the review page records (without a link's token), so it
//! decides the approval stage or the pause the run waits at, and the machine's rules hold: only while it waits,
//! before its deadline, and once.

use chrono::{DateTime, Utc};

use super::{EffectRunner, HandleError, Handled, Input, handle};
use crate::contract::ports::PipelineStore;
use crate::definitions::ExecutionMode;
use crate::pipeline::{ApprovalDecision, Event, ExecutionId, IgnoreReason, Status, TransitionError};

/// Which decision was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The run's approval stage.
    Stage,
    /// An approval toward the number its named approvers require: `approved` of `required` so far.
    Counted { approved: usize, required: usize },
    /// The pause of its ECS-native deployment at this lifecycle stage.
    Pause(String),
    /// The same decision was already recorded; nothing changed.
    Already,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("there is no run {0}: `sluice history PIPELINE` lists them")]
    UnknownRun(ExecutionId),
    #[error("run {execution} is {status}: it waits for no decision")]
    NotWaiting { execution: ExecutionId, status: Status },
    #[error(transparent)]
    Refused(TransitionError),
    #[error(transparent)]
    Handle(#[from] HandleError),
}

/// Records `decision` on run `id` as `approver` (an AWS identity's ARN), with `comment`; `runner` announces it.
pub async fn decide_as<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    id: &ExecutionId,
    decision: ApprovalDecision,
    approver: &str,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> Result<Decided, DecideError> {
    let run = store.execution(id).await.map_err(HandleError::from)?;
    let run = run.ok_or_else(|| DecideError::UnknownRun(id.clone()))?;
    let gate = match run.open_pause() {
        Some(pause) => Decided::Pause(pause.stage.clone()),
        None if run.approving() => Decided::Stage,
        // Decided already, or never asked: the machine says which.
        None if run.approval().is_some_and(|approval| approval.decision.is_some()) => Decided::Stage,
        None => return Err(DecideError::NotWaiting { execution: id.clone(), status: run.status }),
    };
    let event = Event::ApprovalDecided {
        execution_id: id.clone(),
        decision,
        approver: approver.to_owned(),
        comment: comment.filter(|comment| !comment.trim().is_empty()),
        token_hash: None,
        source_ip: None,
        user_agent: Some("sluice command".to_owned()),
    };
    let input = Input { pipeline: &run.pipeline, mode: ExecutionMode::default(), event: &event, receipt: None, now };
    let named = run.named_approvers().is_some() && gate == Decided::Stage && decision == ApprovalDecision::Approved;
    // Which approval it is: its stage, and when it was asked.
    let asked = |run: &crate::pipeline::Execution| {
        let record = run.stages.iter().rev().find(|record| record.approval.is_some())?;
        Some((record.name, record.approval.as_ref()?.requested_at))
    };
    let asked_before = asked(&run);
    match handle(store, runner, input).await? {
        // As stored now (another approver may have decided meanwhile), if it is the same approval, still waiting.
        Handled::Applied if named => {
            let now = store.execution(id).await.ok().flatten();
            let same = now.as_ref().filter(|run| run.approving() && asked(run) == asked_before);
            match same.and_then(|run| Some((run.approval()?.signoffs.len(), run.named_approvers()?.required))) {
                Some((approved, required)) => Ok(Decided::Counted { approved, required }),
                None => Ok(gate),
            }
        }
        Handled::Applied => Ok(gate),
        Handled::Ignored(IgnoreReason::DuplicateEvent) => Ok(Decided::Already),
        Handled::Refused(error) => Err(DecideError::Refused(error)),
        Handled::Ignored(_) | Handled::Skipped { .. } | Handled::Duplicate { .. } => {
            Err(DecideError::NotWaiting { execution: id.clone(), status: run.status })
        }
    }
}
