//! The events sluice puts on its EventBridge bus: source `sluice`, one detail-type per event.
//!
//! They chain the functions (a rule per detail-type in `template.yaml`) and let users subscribe to a pipeline's
//! progress. The JSON of every detail is documented in `infra/events.md`; tests pin it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::definitions::DeployTarget;
use crate::pipeline::{EffectKind, ExecutionId, Stage};

/// The `source` of every event sluice publishes.
pub const SOURCE: &str = "sluice";

/// An execution was recorded for a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionStarted {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    pub repository: String,
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub pusher: String,
    pub started_at: DateTime<Utc>,
    /// The stage the execution starts at (`build`, `approval`, `deploy`). Absent only in events an earlier
    /// version of sluice left pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// An execution entered the approval stage: the approval function mails the approvers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    pub repository: String,
    pub commit: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub message: String,
    pub image_uri: Option<String>,
    pub topic_arn: String,
    pub expires_at: DateTime<Utc>,
    /// The lifecycle stage where an ECS-native deployment is paused for this approval (absent for the approval
    /// stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_stage: Option<String>,
    /// The pipeline stage that asks (`approval`; `deploy` for a pause). Absent only in events an earlier
    /// version of sluice left pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// A person approved or rejected an execution through its approval link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDecided {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    pub commit: String,
    /// `approved` or `rejected`.
    pub decision: String,
    pub approver: String,
    pub comment: Option<String>,
    pub decided_at: DateTime<Utc>,
    /// The lifecycle stage where the decided deployment is paused (absent for the approval stage): the deployer
    /// continues or rolls it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_stage: Option<String>,
    /// The pipeline stage decided (`approval`; `deploy` for a pause). Absent only in events an earlier
    /// version of sluice left pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// An execution entered the deploy stage: the deploy function starts the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRequested {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    pub commit: String,
    pub image_uri: Option<String>,
    /// Where the build's artifacts are (`s3://bucket/key`).
    pub artifacts: Option<String>,
    pub target: DeployTarget,
    /// The pipeline stage that deploys (`deploy`). Absent only in events an earlier
    /// version of sluice left pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The GitHub Deployments environment the deployment is shown in; `null` when the pipeline does not report to
    /// GitHub.
    #[serde(default)]
    pub environment: Option<String>,
}

/// A rolling update completed and its AfterRollout checks are due: the hooks function runs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksRequested {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    /// The ECS deployment that completed.
    pub deployment_id: String,
    /// `AfterRollout`.
    pub lifecycle_event: String,
    /// How many checks run.
    pub checks: usize,
    /// The pipeline stage whose deployment is checked (`deploy`). Absent only in events an earlier
    /// version of sluice left pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// An execution entered a test stage: build-events starts the stage's CodeBuild project on the run's commit, or the
/// hooks function runs the stage's checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRequested {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    /// The test stage.
    pub stage: Stage,
    /// What tests: `codebuild` or `checks` (each wakes its own function).
    pub tests: String,
    /// The CodeBuild project that tests (`null` for checks).
    #[serde(default)]
    pub project: Option<String>,
    /// How many checks run (0 for a CodeBuild project).
    #[serde(default)]
    pub checks: usize,
    pub commit: String,
    /// The release it tests (pinned by its digest), if the run built one.
    #[serde(default)]
    pub image_uri: Option<String>,
}

/// A soak watched by alarms is over (the reconciler's look): deploy-events reads the alarms' states
/// (DescribeAlarms) and the run takes its next stage, or, with an alarm in ALARM whose state change was not seen,
/// rolls the service back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakEnded {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    /// The deploy stage that soaked.
    pub stage: Stage,
    /// The alarms that watched it.
    pub alarms: Vec<String>,
}

/// A rolling update's AfterRollout checks failed: the deployer updates the service back to the task definition
/// it ran before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRequested {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    /// The ECS deployment rolled back.
    pub deployment_id: String,
    /// The task definition the service goes back to.
    pub task_definition: String,
    /// Why: the checks that failed.
    pub reason: String,
    /// The pipeline stage rolled back (`deploy`). Absent only in events an earlier
    /// version of sluice left pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// ECS paused an execution's deployment at the pipeline's approval stage (a PAUSE lifecycle hook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPaused {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    /// The ECS service deployment ARN.
    pub service_deployment: String,
    pub stage: String,
    /// The share of production traffic on the new revision while paused, in percent.
    pub shifted_percent: f64,
    /// True when a person is asked (an `Approval Requested` follows); false when sluice continues the pause
    /// itself, before the first step of production traffic.
    pub asks_approval: bool,
}

/// An execution ended, in any outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionFinished {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    pub commit: String,
    /// `succeeded`, `failed`, `rejected`, `superseded`, `rolled_back` or `timed_out`.
    pub outcome: String,
    /// The stage the execution was in or waiting for when it ended.
    pub stage: Option<Stage>,
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// The reconciler found effects of an execution waiting for a function it does not run (one whose earlier attempt
/// failed, say): a doorbell for their owner, which carries out what is due on the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectsDue {
    pub pipeline: String,
    pub execution_id: ExecutionId,
    /// The kinds of effect due, each named as in `sluice effects` (`request_approval`, `start_deployment`, ...).
    pub kinds: Vec<EffectKind>,
}

/// Every event sluice publishes. The variant is the detail-type; the payload is the detail. (Serialized, as when
/// kept among a pipeline's pending effects, it is `{"detail_type": ..., "detail": {...}}`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detail_type", content = "detail")]
pub enum SluiceEvent {
    #[serde(rename = "Execution Started")]
    ExecutionStarted(ExecutionStarted),
    #[serde(rename = "Approval Requested")]
    ApprovalRequested(ApprovalRequested),
    #[serde(rename = "Approval Decided")]
    ApprovalDecided(ApprovalDecided),
    #[serde(rename = "Deployment Requested")]
    DeploymentRequested(DeploymentRequested),
    #[serde(rename = "Checks Requested")]
    ChecksRequested(ChecksRequested),
    #[serde(rename = "Test Requested")]
    TestRequested(TestRequested),
    #[serde(rename = "Rollback Requested")]
    RollbackRequested(RollbackRequested),
    #[serde(rename = "Deployment Paused")]
    DeploymentPaused(DeploymentPaused),
    #[serde(rename = "Execution Finished")]
    ExecutionFinished(ExecutionFinished),
    #[serde(rename = "Effects Due")]
    EffectsDue(EffectsDue),
    #[serde(rename = "Soak Ended")]
    SoakEnded(SoakEnded),
}

/// An event's detail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "unknown detail-type {0:?}: sluice publishes Execution Started, Approval Requested, Approval Decided, Deployment Requested, Checks Requested, Test Requested, Rollback Requested, Deployment Paused, Execution Finished, Effects Due and Soak Ended"
    )]
    UnknownDetailType(String),
    #[error("malformed {detail_type} detail")]
    MalformedDetail {
        detail_type: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl SluiceEvent {
    pub const EXECUTION_STARTED: &'static str = "Execution Started";
    pub const APPROVAL_REQUESTED: &'static str = "Approval Requested";
    pub const APPROVAL_DECIDED: &'static str = "Approval Decided";
    pub const DEPLOYMENT_REQUESTED: &'static str = "Deployment Requested";
    pub const CHECKS_REQUESTED: &'static str = "Checks Requested";
    pub const TEST_REQUESTED: &'static str = "Test Requested";
    pub const ROLLBACK_REQUESTED: &'static str = "Rollback Requested";
    pub const DEPLOYMENT_PAUSED: &'static str = "Deployment Paused";
    pub const EXECUTION_FINISHED: &'static str = "Execution Finished";
    pub const EFFECTS_DUE: &'static str = "Effects Due";
    pub const SOAK_ENDED: &'static str = "Soak Ended";

    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            SluiceEvent::ExecutionStarted(_) => Self::EXECUTION_STARTED,
            SluiceEvent::ApprovalRequested(_) => Self::APPROVAL_REQUESTED,
            SluiceEvent::ApprovalDecided(_) => Self::APPROVAL_DECIDED,
            SluiceEvent::DeploymentRequested(_) => Self::DEPLOYMENT_REQUESTED,
            SluiceEvent::ChecksRequested(_) => Self::CHECKS_REQUESTED,
            SluiceEvent::TestRequested(_) => Self::TEST_REQUESTED,
            SluiceEvent::RollbackRequested(_) => Self::ROLLBACK_REQUESTED,
            SluiceEvent::DeploymentPaused(_) => Self::DEPLOYMENT_PAUSED,
            SluiceEvent::ExecutionFinished(_) => Self::EXECUTION_FINISHED,
            SluiceEvent::EffectsDue(_) => Self::EFFECTS_DUE,
            SluiceEvent::SoakEnded(_) => Self::SOAK_ENDED,
        }
    }

    pub fn pipeline(&self) -> &str {
        match self {
            SluiceEvent::ExecutionStarted(e) => &e.pipeline,
            SluiceEvent::ApprovalRequested(e) => &e.pipeline,
            SluiceEvent::ApprovalDecided(e) => &e.pipeline,
            SluiceEvent::DeploymentRequested(e) => &e.pipeline,
            SluiceEvent::ChecksRequested(e) => &e.pipeline,
            SluiceEvent::TestRequested(e) => &e.pipeline,
            SluiceEvent::RollbackRequested(e) => &e.pipeline,
            SluiceEvent::DeploymentPaused(e) => &e.pipeline,
            SluiceEvent::ExecutionFinished(e) => &e.pipeline,
            SluiceEvent::EffectsDue(e) => &e.pipeline,
            SluiceEvent::SoakEnded(e) => &e.pipeline,
        }
    }

    pub fn execution_id(&self) -> &ExecutionId {
        match self {
            SluiceEvent::ExecutionStarted(e) => &e.execution_id,
            SluiceEvent::ApprovalRequested(e) => &e.execution_id,
            SluiceEvent::ApprovalDecided(e) => &e.execution_id,
            SluiceEvent::DeploymentRequested(e) => &e.execution_id,
            SluiceEvent::ChecksRequested(e) => &e.execution_id,
            SluiceEvent::TestRequested(e) => &e.execution_id,
            SluiceEvent::RollbackRequested(e) => &e.execution_id,
            SluiceEvent::DeploymentPaused(e) => &e.execution_id,
            SluiceEvent::ExecutionFinished(e) => &e.execution_id,
            SluiceEvent::EffectsDue(e) => &e.execution_id,
            SluiceEvent::SoakEnded(e) => &e.execution_id,
        }
    }

    /// The EventBridge `detail`, as JSON.
    pub fn detail(&self) -> serde_json::Value {
        // Serializing plain structs of strings, numbers and timestamps cannot fail.
        let detail = match self {
            SluiceEvent::ExecutionStarted(e) => serde_json::to_value(e),
            SluiceEvent::ApprovalRequested(e) => serde_json::to_value(e),
            SluiceEvent::ApprovalDecided(e) => serde_json::to_value(e),
            SluiceEvent::DeploymentRequested(e) => serde_json::to_value(e),
            SluiceEvent::ChecksRequested(e) => serde_json::to_value(e),
            SluiceEvent::TestRequested(e) => serde_json::to_value(e),
            SluiceEvent::RollbackRequested(e) => serde_json::to_value(e),
            SluiceEvent::DeploymentPaused(e) => serde_json::to_value(e),
            SluiceEvent::ExecutionFinished(e) => serde_json::to_value(e),
            SluiceEvent::EffectsDue(e) => serde_json::to_value(e),
            SluiceEvent::SoakEnded(e) => serde_json::to_value(e),
        };
        detail.unwrap_or(serde_json::Value::Null)
    }

    /// Reads an event back from its detail-type and detail, as a subscriber receives them.
    pub fn from_parts(detail_type: &str, detail: serde_json::Value) -> Result<Self, EventError> {
        fn parse<T: serde::de::DeserializeOwned>(
            detail_type: &'static str,
            detail: serde_json::Value,
        ) -> Result<T, EventError> {
            serde_json::from_value(detail).map_err(|source| EventError::MalformedDetail { detail_type, source })
        }
        Ok(match detail_type {
            Self::EXECUTION_STARTED => Self::ExecutionStarted(parse(Self::EXECUTION_STARTED, detail)?),
            Self::APPROVAL_REQUESTED => Self::ApprovalRequested(parse(Self::APPROVAL_REQUESTED, detail)?),
            Self::APPROVAL_DECIDED => Self::ApprovalDecided(parse(Self::APPROVAL_DECIDED, detail)?),
            Self::DEPLOYMENT_REQUESTED => Self::DeploymentRequested(parse(Self::DEPLOYMENT_REQUESTED, detail)?),
            Self::CHECKS_REQUESTED => Self::ChecksRequested(parse(Self::CHECKS_REQUESTED, detail)?),
            Self::TEST_REQUESTED => Self::TestRequested(parse(Self::TEST_REQUESTED, detail)?),
            Self::ROLLBACK_REQUESTED => Self::RollbackRequested(parse(Self::ROLLBACK_REQUESTED, detail)?),
            Self::DEPLOYMENT_PAUSED => Self::DeploymentPaused(parse(Self::DEPLOYMENT_PAUSED, detail)?),
            Self::EXECUTION_FINISHED => Self::ExecutionFinished(parse(Self::EXECUTION_FINISHED, detail)?),
            Self::EFFECTS_DUE => Self::EffectsDue(parse(Self::EFFECTS_DUE, detail)?),
            Self::SOAK_ENDED => Self::SoakEnded(parse(Self::SOAK_ENDED, detail)?),
            other => return Err(EventError::UnknownDetailType(other.to_owned())),
        })
    }
}
