//! A run's report, pure: what it shipped or why not, each stage's time, its hooks' checks and pauses, read from the
//! run once it has ended. The notification, the timeline and the status page all tell it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApprovalDecision, Execution, HookResult, PauseFacts, Stage, Status, TestFacts};

/// What the notification of a run's end says: what shipped or why not, each stage's time, the hooks' checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReport {
    pub pipeline: String,
    pub outcome: Status,
    /// Why it ended so (every outcome but success).
    pub reason: Option<String>,
    pub repository: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub commit: String,
    /// The first line of the head commit's message.
    pub message: String,
    pub pusher: String,
    pub compare_url: String,
    pub build_id: Option<String>,
    pub image_uri: Option<String>,
    /// `blue_green`, `rolling`, `ecs_blue_green`, `ecs_linear` or `ecs_canary`, once the run reached its deploy
    /// stage.
    pub strategy: Option<String>,
    pub deployment_id: Option<String>,
    pub task_definition: Option<String>,
    /// The stage whose approval `decision` is (the last approval stage the run entered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_stage: Option<Stage>,
    /// The approval's decision, by whom, with what comment.
    pub decision: Option<ApprovalDecision>,
    pub approver: Option<String>,
    pub comment: Option<String>,
    /// The stages the run entered, in order, each with its start and (if it got there) end.
    pub stages: Vec<StageTime>,
    /// The lifecycle hooks of its deployment, in the order they ran.
    pub hooks: Vec<HookResult>,
    /// Where its ECS-native deployment paused for an approval, and what became of each pause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<PauseFacts>,
    /// Its test stages' builds and their results, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<StageTest>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// When a run entered a stage and when it left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTime {
    pub stage: Stage,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a test stage recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTest {
    pub stage: Stage,
    #[serde(flatten)]
    pub facts: TestFacts,
}

impl OutcomeReport {
    /// The report of `execution`, which has just ended.
    pub fn of(execution: &Execution) -> Self {
        let build = execution.build.as_ref();
        let approval = execution.approval();
        let deploy = execution.deploy();
        let finished_at = execution.finished_at.unwrap_or(execution.updated_at);
        let mut stages = Vec::new();
        if let Some(build) = build {
            stages.push(StageTime {
                stage: Stage::BUILD,
                started_at: build.started_at,
                finished_at: build.finished_at,
            });
        }
        for record in &execution.stages {
            // A test stage that asked to overlook its failure: one stage, from its tests to the decision.
            if let Some(test) = &record.test {
                let decided = record.approval.as_ref().map(|approval| {
                    approval.decided_at.or((execution.status == Status::Failed).then_some(finished_at))
                });
                let finished_at = decided.unwrap_or(test.finished_at);
                stages.push(StageTime { stage: record.name, started_at: test.started_at, finished_at });
                continue;
            }
            if let Some(approval) = &record.approval {
                let decided = approval.decided_at.or((execution.status == Status::TimedOut).then_some(finished_at));
                stages.push(StageTime { stage: record.name, started_at: approval.requested_at, finished_at: decided });
            }
            if let Some(deploy) = &record.deploy {
                stages.push(StageTime {
                    stage: record.name,
                    started_at: deploy.started_at,
                    finished_at: deploy.finished_at,
                });
            }
        }
        let tests = execution
            .stages
            .iter()
            .filter_map(|record| record.test.clone().map(|facts| StageTest { stage: record.name, facts }));
        Self {
            pipeline: execution.pipeline.clone(),
            outcome: execution.status,
            reason: execution.reason.clone(),
            repository: execution.source.repository.clone(),
            git_ref: execution.source.git_ref.clone(),
            commit: execution.source.commit.clone(),
            message: execution.source.message.lines().next().unwrap_or("").trim().to_owned(),
            pusher: execution.source.pusher.clone(),
            compare_url: execution.source.compare_url.clone(),
            build_id: build.and_then(|build| build.build_id.clone()),
            image_uri: build.and_then(|build| build.image_uri.clone()),
            strategy: deploy.map(|deploy| deploy.strategy.clone()),
            deployment_id: deploy.and_then(|deploy| deploy.deployment_id.clone()),
            task_definition: deploy.and_then(|deploy| deploy.task_definition.clone()),
            approval_stage: execution.stages.iter().rev().find(|record| record.approval.is_some()).map(|r| r.name),
            decision: approval.and_then(|approval| approval.decision),
            approver: approval.and_then(|approval| approval.approver.clone()),
            comment: approval.and_then(|approval| approval.comment.clone()),
            stages,
            hooks: deploy.map(|deploy| deploy.hooks.clone()).unwrap_or_default(),
            pauses: deploy.map(|deploy| deploy.pauses.clone()).unwrap_or_default(),
            tests: tests.collect(),
            started_at: execution.created_at,
            finished_at,
        }
    }
}
