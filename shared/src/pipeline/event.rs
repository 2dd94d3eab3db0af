//! What the machine is told (events) and what it asks for in return (effects).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use super::state::{
    ApprovalDecision, BuildFacts, Execution, ExecutionId, PauseFacts, Plan, ReleaseComparison, SourceFacts, Stage,
    StageRecord, Status,
};
use super::tested::TestResults;
use crate::contract::events::SluiceEvent;
use crate::definitions::{Check, DeployTarget, ExecutionMode, PauseAction};
use crate::present::text::span;

/// What a successful build produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildOutputs {
    /// The `ImageURI` of the build's `imageDetail.json`.
    pub image_uri: String,
    /// Where the build's artifacts (`taskdef.json`, `appspec.yaml`) are, as `s3://bucket/key`.
    pub artifacts: Option<String>,
}

/// What the approvers are shown: the facts of the run they decide on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalNotice {
    pub pipeline: String,
    pub repository: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub commit: String,
    /// The head commit's message (bounded when the push was recorded).
    pub message: String,
    pub pusher: String,
    pub compare_url: String,
    pub build_id: Option<String>,
    pub image_uri: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// What the deployment has done so far, when the approval is asked at a pause of an ECS-native deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseNotice>,
    /// What each stage before this approval did, one line each (a pipeline in stages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<StageNotice>,
    /// Where approving releases the build: the next deploy stage, its strategy, cluster and service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases_to: Option<StageNotice>,
    /// The release against what runs where approving releases it, as read when the request was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared: Option<Box<ReleaseComparison>>,
    /// The test stage whose failure the approvers are asked to overlook (`on_failure = "ask"`), and what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<StageNotice>,
    /// The freeze of the pipeline when the request went out (who, why, until when), in a line: approving records the
    /// decision, and the release goes on once the freeze lifts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<String>,
}

/// Where an approval releases the build, for its request to read what runs there now and compare the release with
/// it: the deploy stage's service, and the build's task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseLookup {
    pub cluster: String,
    pub service: String,
    /// The container the release's image goes into, when the stage names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Whether the stage lets the task definition reach into the host (`allow_host`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_host: bool,
    /// Where the build's artifacts are (`s3://bucket/key`): their `taskdef.json` is the release's task definition.
    pub artifacts: String,
}

/// A stage, and what it did or will do, in a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageNotice {
    pub stage: Stage,
    pub said: String,
}

/// What approvers are shown of a paused ECS-native deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseNotice {
    pub stage: String,
    /// `ecs_blue_green`, `ecs_linear` or `ecs_canary`.
    pub strategy: String,
    /// The share of production traffic on the new revision, in tenths of a percent.
    pub shifted_tenths: u32,
    /// What ECS does if nobody decides in time.
    pub timeout_action: PauseAction,
    /// The deployment's checks so far, one line each: the stage, passed or failed, and the checks' detail.
    pub checks: Vec<String>,
}

impl PauseNotice {
    /// What the approvers are shown of `execution`'s deployment, paused at `pause`.
    pub fn of(execution: &Execution, pause: &PauseFacts) -> Self {
        let hooks = execution.deploy().into_iter().flat_map(|deploy| &deploy.hooks);
        let checks = hooks
            .map(|hook| {
                let verdict = if hook.passed { "passed" } else { "failed" };
                format!("{}: {verdict} ({})", hook.lifecycle_event, hook.detail.as_deref().unwrap_or("no detail"))
            })
            .collect();
        Self {
            stage: pause.stage.clone(),
            strategy: execution.target().map_or("", DeployTarget::strategy).to_owned(),
            shifted_tenths: pause.shifted_tenths,
            timeout_action: pause.timeout_action,
            checks,
        }
    }
}

impl ApprovalNotice {
    /// What the approvers are shown of `execution`, asked at `requested_at`.
    pub fn of(execution: &Execution, requested_at: DateTime<Utc>) -> Self {
        let build = execution.build.as_ref();
        Self {
            pipeline: execution.pipeline.clone(),
            repository: execution.source.repository.clone(),
            git_ref: execution.source.git_ref.clone(),
            commit: execution.source.commit.clone(),
            message: execution.source.message.clone(),
            pusher: execution.source.pusher.clone(),
            compare_url: execution.source.compare_url.clone(),
            build_id: build.and_then(|build| build.build_id.clone()),
            image_uri: build.and_then(|build| build.image_uri.clone()),
            requested_at,
            pause: None,
            earlier: Vec::new(),
            releases_to: None,
            compared: None,
            failed: None,
            frozen: None,
        }
        .with_stages(execution)
    }

    /// The stages around the approval asked at `requested_at` (the approval stage whose request that is, or else the
    /// stage the run is at): what each before it did, and the deploy stage approving releases the build to. Nothing
    /// for a pipeline written with `[approval]` and `[deploy]` tables, whose email says it as it always has.
    fn with_stages(mut self, execution: &Execution) -> Self {
        let asked = execution.stages.iter().position(|record| {
            record.approval.as_ref().is_some_and(|approval| approval.requested_at == self.requested_at)
        });
        // What the request showed of the release against what ran where it goes (kept with the approval's record).
        self.compared = asked.and_then(|at| execution.stages[at].approval.as_ref()?.compared.clone());
        // Asked at a test stage: whether the release goes on although its tests failed.
        self.failed = asked
            .map(|at| &execution.stages[at])
            .filter(|record| record.test.as_ref().is_some_and(|test| test.passed == Some(false)))
            .map(|record| StageNotice::of(record, &[], self.requested_at));
        if execution.plan.table_shaped() {
            return self;
        }
        let (before, stage) = match asked {
            Some(at) => (&execution.stages[..at], Some(execution.stages[at].name)),
            // At a pause, or before the approval stage's record is made: the stages before the one the run is at.
            None => {
                let at = execution.at();
                let records = &execution.stages[..];
                match records.split_last() {
                    Some((last, before)) if Some(last.name) == at => (before, at),
                    _ => (records, at),
                }
            }
        };
        let requested_at = self.requested_at;
        let alarms =
            |record: &StageRecord| execution.plan.deploy_stage(record.name).map(|d| d.alarms()).unwrap_or_default();
        self.earlier = before.iter().map(|record| StageNotice::of(record, alarms(record), requested_at)).collect();
        // After the approval stage; at a deploy stage's pause, that stage itself.
        let after = match stage {
            Some(stage) if execution.plan.deploy_stage(stage).is_some() => execution.plan.position(stage) - 1,
            Some(stage) => execution.plan.position(stage),
            None => 0,
        };
        let next = execution.plan.stages.iter().skip(after).find_map(|s| s.deploy().map(|deploy| (s.name, deploy)));
        self.releases_to = next.map(|(stage, deploy)| {
            let (cluster, service) = deploy.target.ecs_service();
            StageNotice { stage, said: format!("{} of {cluster}/{service}", deploy.target.strategy()) }
        });
        self
    }
}

impl StageNotice {
    /// What `record`'s stage did, as of `now`: its deployment, checks, digest check, soak (watched by `alarms`) and
    /// how long the release has run there, its decision, or how its tests went.
    fn of(record: &StageRecord, alarms: &[String], now: DateTime<Utc>) -> Self {
        let said = match (&record.deploy, &record.approval) {
            // A test stage: how its tests went (and, if they failed, an approval may ask to overlook it).
            _ if let Some(test) = &record.test => match test.finished_at {
                Some(_) => crate::present::text::test_verdict(test),
                None => format!("testing ({})", crate::present::text::tested_by(test)),
            },
            (Some(deploy), _) => {
                let id = deploy.service_deployment.as_deref().or(deploy.deployment_id.as_deref()).unwrap_or("-");
                let passed = deploy.hooks.iter().filter(|hook| hook.passed).count();
                let checks = match deploy.hooks.len() {
                    0 => String::new(),
                    all => format!(", checks {passed}/{all} passed"),
                };
                let running = match deploy.finished_at {
                    Some(done) if done <= now => format!(", running there {}", span(now - done)),
                    _ => String::new(),
                };
                let digest = deploy.digest_check.as_ref().map(|c| format!(", {}", c.summary())).unwrap_or_default();
                let soaked = match (deploy.soak_until, alarms) {
                    (Some(until), _) if until > now => String::new(),
                    (Some(_), []) => ", soaked".to_owned(),
                    (Some(_), alarms) => format!(", soaked watched by {} (none went into ALARM)", alarms.join(", ")),
                    (None, _) => String::new(),
                };
                let before = match deploy.in_alarm_before.as_deref() {
                    Some(names) if !names.is_empty() => {
                        format!(", {} already in ALARM before its deployment", names.join(", "))
                    }
                    _ => String::new(),
                };
                format!("{} deployment {id}{checks}{digest}{soaked}{before}{running}", deploy.strategy)
            }
            (None, Some(approval)) => match (approval.decision, approval.approver.as_deref()) {
                (Some(decision), Some(by)) => format!("{} by {by}", decision.name()),
                (Some(decision), None) => decision.name().to_owned(),
                (None, _) => "not decided".to_owned(),
            },
            (None, None) => "entered".to_owned(),
        };
        Self { stage: record.name, said }
    }
}

/// How a CodeBuild build that did not succeed ended (the `build-status` of its state-change event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildFailure {
    Failed,
    Stopped,
    TimedOut,
}

/// Something that happened to an execution. Events are facts: the machine decides what they mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A push was accepted for the pipeline (or an operator ordered a commit built again): record a new execution
    /// and start it.
    Triggered {
        execution_id: ExecutionId,
        source: SourceFacts,
        plan: Box<Plan>,
        mode: ExecutionMode,
        /// Who ordered it, and why, when an operator did (`sluice retry` of a run whose build failed, `sluice
        /// rerun`): `rerun of commit 3f2a9c1 by arn:aws:iam::…:user/carol`. `None` for a push.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ordered: Option<String>,
    },
    /// An operator ordered a run that deploys what an earlier run built (`sluice rollback --to`, `sluice retry` of a
    /// run whose deployment failed): it has no build or approval stage of its own, and enters its deploy stage with
    /// that build's image and artifacts.
    Redeployed {
        execution_id: ExecutionId,
        /// The earlier run's source: its repository, ref and commit.
        source: SourceFacts,
        plan: Box<Plan>,
        mode: ExecutionMode,
        /// The earlier run's finished build.
        build: BuildFacts,
        /// Who ordered it, and why: `rollback to run #12 (web-…) by arn:aws:iam::…:user/carol`.
        ordered: String,
        /// The stage it enters (a retry: the stage the earlier run failed at); the plan's first deploy stage unless
        /// given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<Stage>,
        /// Only that stage: the run ends once it is done (`sluice rollback --stage`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        only: bool,
    },
    /// CodeBuild accepted StartBuild.
    BuildStarted {
        execution_id: ExecutionId,
        build_id: String,
    },
    /// CodeBuild refused StartBuild (after retries, where the error was retryable).
    BuildStartFailed {
        execution_id: ExecutionId,
        reason: String,
    },
    /// CodeBuild reported the build in progress, in a phase.
    BuildProgressed {
        execution_id: ExecutionId,
        build_id: String,
        phase: Option<String>,
    },
    BuildSucceeded {
        execution_id: ExecutionId,
        build_id: String,
        outputs: BuildOutputs,
    },
    /// The build ended without success, or its outputs were missing or malformed.
    BuildFailed {
        execution_id: ExecutionId,
        build_id: String,
        status: BuildFailure,
        phase: Option<String>,
        reason: String,
    },
    /// CodeBuild accepted the StartBuild of a test stage's build.
    TestStarted {
        execution_id: ExecutionId,
        stage: Stage,
        build_id: String,
    },
    /// CodeBuild refused the StartBuild of a test stage's build (after retries, where the error was retryable).
    TestStartFailed {
        execution_id: ExecutionId,
        stage: Stage,
        reason: String,
    },
    /// A test stage's build ended, or its checks ran: the release passed or not, with the results of the build's test
    /// reports, or the checks' detail.
    TestEnded {
        execution_id: ExecutionId,
        stage: Stage,
        /// The test build; `None` for a test stage's checks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        build_id: Option<String>,
        passed: bool,
        /// Why it did not pass, in a line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        results: Option<TestResults>,
        /// Each check's result and timing, in a line (a test stage's checks).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The approval request went out; only the link whose token hashes to `token_hash` decides from now on.
    ApprovalSent {
        execution_id: ExecutionId,
        /// The request's link, or for named approvers the request itself (a hash of theirs).
        token_hash: String,
        /// Named approvers: each one's link's token hash, in the order the approval lists them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        personal: Vec<String>,
        /// The pause the request was for (its hook id); absent for the approval stage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hook_id: Option<String>,
        /// What the request showed of the release against what runs where approving releases it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compared: Option<Box<ReleaseComparison>>,
    },
    /// A person decided, through a verified approval link.
    ApprovalDecided {
        execution_id: ExecutionId,
        decision: ApprovalDecision,
        approver: String,
        comment: Option<String>,
        /// The hash of the link's token: the decision applies only while it is the approval's current link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_hash: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_ip: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_agent: Option<String>,
    },
    /// The approval's deadline was reached without a decision.
    ApprovalExpired {
        execution_id: ExecutionId,
    },
    /// CodeDeploy accepted CreateDeployment, or ECS accepted UpdateService.
    DeploymentStarted {
        execution_id: ExecutionId,
        deployment_id: String,
        /// The ECS service deployment ARN (ECS-native strategies): what ECS's lifecycle hooks name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_deployment: Option<String>,
        /// The task definition registered for it (found by its tag when a retried start found its deployment made).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_definition: Option<String>,
        /// The task definition the service ran before (rolling; from UpdateService's answer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_task_definition: Option<String>,
        /// The alarms watching the stage's soak that were in ALARM as the deployment started (`None`: it has none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_alarm: Option<Vec<String>>,
    },
    /// A lifecycle hook's checks ran (CodeDeploy's hooks, a rolling update's AfterRollout checks, or an ECS-native
    /// deployment's lifecycle stage).
    /// ECS paused the deployment at a lifecycle stage (a PAUSE hook awaiting action), as DescribeServiceDeployments
    /// tells it.
    DeploymentPaused {
        execution_id: ExecutionId,
        service_deployment: String,
        hook_id: String,
        /// The lifecycle stage ECS reported for the deployment while paused: for the record only. The pause is the
        /// PAUSE hook sluice configured at the plan's approval stage, which the machine takes as the pause's stage.
        stage: String,
        /// When ECS takes the timeout action, and which (`None`: as the plan says, from now).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_action: Option<PauseAction>,
    },
    HookCompleted {
        execution_id: ExecutionId,
        deployment_id: String,
        lifecycle_event: String,
        hook_execution_id: String,
        passed: bool,
        /// Each check's result and timing, in a line.
        detail: Option<String>,
        /// How long the checks took together.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        millis: Option<u64>,
    },
    DeploymentSucceeded {
        execution_id: ExecutionId,
        deployment_id: String,
        /// The service's running tasks once it completed (ListTasks, DescribeTasks), for the digest check
        /// ([`crate::deploy::digests`]); `None` where they were not read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tasks: Option<Vec<crate::deploy::RunningTask>>,
    },
    /// The deployment could not start (`deployment_id` is `None`), failed, or was stopped by an alarm.
    DeploymentFailed {
        execution_id: ExecutionId,
        deployment_id: Option<String>,
        reason: String,
        rolled_back: bool,
    },
    /// An operator ordered the run's deployment stopped and rolled back (`sluice rollback`); `by` names them (their
    /// AWS identity's ARN).
    RollbackOrdered {
        execution_id: ExecutionId,
        by: String,
    },
    /// sluice stopped the deployment because another run (`by`, of pipeline `by_pipeline`), in `superseded` mode,
    /// needed its CodeDeploy deployment group or ECS service: the newer run supersedes this one.
    DeploymentSuperseded {
        execution_id: ExecutionId,
        deployment_id: String,
        by: ExecutionId,
        by_pipeline: String,
        /// What CodeDeploy or ECS said of the stop (and whether traffic went back).
        reason: String,
    },
    /// The run's deployment is past its deadline ([`crate::deploy::deadline`]): the reconciler's look says so.
    DeploymentTimedOut {
        execution_id: ExecutionId,
    },
    /// An alarm watching the soak of deploy stage `stage` went into ALARM (CloudWatch's state-change event), or was
    /// in ALARM when the soak ended (its state change not seen): the stage fails and the service is rolled back.
    AlarmRaised {
        execution_id: ExecutionId,
        stage: Stage,
        alarm: String,
        /// CloudWatch's `stateReason`.
        reason: String,
    },
    /// The release has run at the deploy stage the run holds for its `soak`: the reconciler's look says so.
    SoakEnded {
        execution_id: ExecutionId,
    },
    /// An operator froze the pipeline (`sluice freeze`): no run enters a deploy stage, and no ECS-native deployment
    /// waiting at a pause is continued, until it is unfrozen or `until` passes. `by` names them (their AWS identity's
    /// ARN). A pipeline's own event: it names no run.
    Frozen {
        by: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
    },
    /// The freeze lifted: an operator unfroze the pipeline (`by`), or its `until` passed (`by` is `None`: the
    /// reconciler's look says so). Runs waiting for a deploy stage go on, in order, and approved pauses continue.
    Unfrozen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// An operator let the run into deploy stage `stage` whatever holds runs out of it (a freeze): `sluice override`.
    /// `by` names them (their AWS identity's ARN).
    Overridden {
        execution_id: ExecutionId,
        stage: Stage,
        by: String,
        reason: String,
    },
    /// The deployer found the run's stage closed to it (its windows, deny periods or entry alarms): the start waits,
    /// for what `why` says (`the window opening Mon 2026-12-07 09:00 Europe/Berlin (...)`), and is tried again then.
    /// `None`: a later try failed otherwise (a service busy, throttling): the gate no longer says why it waits.
    StartHeld {
        execution_id: ExecutionId,
        why: Option<String>,
    },
    /// GitHub created the Deployment that shows the run (its id, for the states that follow).
    GitHubDeploymentCreated {
        execution_id: ExecutionId,
        deployment: u64,
        /// The deploy stage it shows (the plan's first deploy stage unless given: as sent before stages).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<Stage>,
    },
}

impl Event {
    /// The deployment the event is about, if it names one (its CodeDeploy or ECS deployment id, or the ECS service
    /// deployment a pause is in).
    pub fn deployment(&self) -> Option<&str> {
        match self {
            Event::DeploymentStarted { deployment_id, .. }
            | Event::HookCompleted { deployment_id, .. }
            | Event::DeploymentSucceeded { deployment_id, .. }
            | Event::DeploymentSuperseded { deployment_id, .. }
            | Event::DeploymentFailed { deployment_id: Some(deployment_id), .. } => Some(deployment_id),
            Event::DeploymentPaused { service_deployment, .. } => Some(service_deployment),
            _ => None,
        }
    }

    /// The execution the event is about; `None` for a pipeline's own events (a freeze and its end).
    pub fn execution_id(&self) -> Option<&ExecutionId> {
        Some(match self {
            Event::Triggered { execution_id, .. }
            | Event::Redeployed { execution_id, .. }
            | Event::BuildStarted { execution_id, .. }
            | Event::BuildStartFailed { execution_id, .. }
            | Event::BuildProgressed { execution_id, .. }
            | Event::BuildSucceeded { execution_id, .. }
            | Event::BuildFailed { execution_id, .. }
            | Event::TestStarted { execution_id, .. }
            | Event::TestStartFailed { execution_id, .. }
            | Event::TestEnded { execution_id, .. }
            | Event::ApprovalSent { execution_id, .. }
            | Event::ApprovalDecided { execution_id, .. }
            | Event::ApprovalExpired { execution_id }
            | Event::DeploymentStarted { execution_id, .. }
            | Event::DeploymentPaused { execution_id, .. }
            | Event::HookCompleted { execution_id, .. }
            | Event::DeploymentSucceeded { execution_id, .. }
            | Event::DeploymentFailed { execution_id, .. }
            | Event::RollbackOrdered { execution_id, .. }
            | Event::DeploymentSuperseded { execution_id, .. }
            | Event::DeploymentTimedOut { execution_id }
            | Event::SoakEnded { execution_id }
            | Event::AlarmRaised { execution_id, .. }
            | Event::Overridden { execution_id, .. }
            | Event::StartHeld { execution_id, .. }
            | Event::GitHubDeploymentCreated { execution_id, .. } => execution_id,
            Event::Frozen { .. } | Event::Unfrozen { .. } => return None,
        })
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Triggered { .. } => "triggered",
            Event::Redeployed { .. } => "redeployed",
            Event::BuildStarted { .. } => "build_started",
            Event::BuildStartFailed { .. } => "build_start_failed",
            Event::BuildProgressed { .. } => "build_progressed",
            Event::BuildSucceeded { .. } => "build_succeeded",
            Event::BuildFailed { .. } => "build_failed",
            Event::TestStarted { .. } => "test_started",
            Event::TestStartFailed { .. } => "test_start_failed",
            Event::TestEnded { .. } => "test_ended",
            Event::ApprovalSent { .. } => "approval_sent",
            Event::ApprovalDecided { .. } => "approval_decided",
            Event::ApprovalExpired { .. } => "approval_expired",
            Event::DeploymentStarted { .. } => "deployment_started",
            Event::DeploymentPaused { .. } => "deployment_paused",
            Event::HookCompleted { .. } => "hook_completed",
            Event::DeploymentSucceeded { .. } => "deployment_succeeded",
            Event::DeploymentFailed { .. } => "deployment_failed",
            Event::RollbackOrdered { .. } => "rollback_ordered",
            Event::DeploymentSuperseded { .. } => "deployment_superseded",
            Event::DeploymentTimedOut { .. } => "deployment_timed_out",
            Event::SoakEnded { .. } => "soak_ended",
            Event::AlarmRaised { .. } => "alarm_raised",
            Event::GitHubDeploymentCreated { .. } => "github_deployment_created",
            Event::Overridden { .. } => "overridden",
            Event::StartHeld { .. } => "start_held",
            Event::Frozen { .. } => "frozen",
            Event::Unfrozen { .. } => "unfrozen",
        }
    }
}

/// The answer sluice gives CodeDeploy for a lifecycle hook
/// (<https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_PutLifecycleEventHookExecutionStatus.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

/// What keeps a run out of its deploy stage: while any of its CloudWatch `alarms` (`entry_alarms`) is in ALARM, or
/// its `calendar` (`windows`, `deny`) is closed, its deployment does not start. Once `until` has passed with an alarm
/// still in ALARM, the run fails naming it; a closed calendar is waited for, however long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryGate {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    pub until: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<crate::definitions::Calendar>,
}

/// What the machine asks the world to do. Effects are data; use cases carry them out through ports.
///
/// Every effect has one owner (see [`EffectKind`]): the function that carries it out. A function carries out the
/// kinds it owns and leaves the others in the outbox for theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Start the pipeline's CodeBuild project on the pushed commit, or a test stage's project.
    StartBuild {
        execution_id: ExecutionId,
        project: String,
        source_version: String,
        /// Environment overrides: the pipeline's own plus `SLUICE_EXECUTION_ID` and `SLUICE_PIPELINE` (a test
        /// stage's: `SLUICE_STAGE`, the release and where it was deployed).
        environment: BTreeMap<String, String>,
        /// The test stage whose build it is; `None`: the run's build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<Stage>,
        /// CodeBuild's build timeout for this build, in minutes (the project's unless given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_minutes: Option<u32>,
    },
    /// Ask the approvers (the pipeline's SNS topic) to decide on the execution by `expires_at`.
    RequestApproval {
        execution_id: ExecutionId,
        topic_arn: String,
        expires_at: DateTime<Utc>,
        /// What the request shows the approvers.
        #[serde(default)]
        notice: Box<ApprovalNotice>,
        /// The pause the approval is asked at (its hook id); absent for the approval stage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hook_id: Option<String>,
        /// Where approving releases the build (an approval stage before a deploy stage): the request reads what runs
        /// there and shows the release against it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release: Option<ReleaseLookup>,
        /// Named approvers: each gets a link of their own, in a message only their subscription accepts. None: one
        /// link, to every subscriber.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<String>,
    },
    /// Deploy the execution's build to its target.
    StartDeployment {
        execution_id: ExecutionId,
        /// The execution's pipeline.
        #[serde(default)]
        pipeline: String,
        /// `superseded` mode: a CodeDeploy deployment group or ECS service busy with another deployment has it
        /// stopped (and rolled back) to make way; otherwise (`queued`) the deployment waits for it.
        #[serde(default)]
        supersede: bool,
        /// The deploy stage it deploys to. The state item stores the effect without `target`, which is that stage's
        /// in the run's plan (`crate::adapters::encode_state`).
        #[serde(default = "table_deploy_stage")]
        stage: Stage,
        target: DeployTarget,
        image_uri: Option<String>,
        /// Where the build's artifacts are (`s3://bucket/key`).
        artifacts: Option<String>,
        /// The alarms that will watch the stage's soak: the deployer reads which are in ALARM as it starts.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        soak_alarms: Vec<String>,
        /// The stage's `entry_alarms`, unless an operator let the run through them: the deployment starts once none
        /// is in ALARM.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry: Option<EntryGate>,
    },
    /// Answer a CodeDeploy lifecycle hook.
    ReportHookStatus {
        /// The run whose deployment called the hook (so that the reconciler can wake the hooks function for it).
        execution_id: ExecutionId,
        deployment_id: String,
        hook_execution_id: String,
        status: HookStatus,
    },
    /// Run a rolling update's AfterRollout checks, now that ECS reports the rollout completed. Carried out by the
    /// hooks function, whose answer is a `HookCompleted` for `lifecycle_event`.
    RunChecks {
        execution_id: ExecutionId,
        deployment_id: String,
        lifecycle_event: String,
        /// The deploy stage whose checks these are: the state item stores the effect without `checks`, which are
        /// that stage's AfterRollout checks in the run's plan (`crate::adapters::encode_state`).
        #[serde(default = "table_deploy_stage")]
        stage: Stage,
        #[serde(default)]
        checks: Vec<Check>,
    },
    /// Run a test stage's HTTP checks (`test = { checks = [...] }`). Carried out by the hooks function, whose answer
    /// is a `TestEnded` for `stage`.
    RunTestChecks {
        execution_id: ExecutionId,
        /// The test stage: the state item stores the effect without `checks`, which are that stage's in the run's
        /// plan (`crate::adapters::encode_state`).
        stage: Stage,
        #[serde(default)]
        checks: Vec<Check>,
    },
    /// Put the service back on `task_definition`, the one it ran before the run's deployment, which completed but
    /// failed a verification (a rolling update's AfterRollout checks, the digest check) or ran out of time (rolling).
    /// Carried out by the deployer as the target deploys (UpdateService; an ECS-native deployment; a CodeDeploy
    /// deployment), whose answer is a `DeploymentFailed`.
    RollBack {
        execution_id: ExecutionId,
        /// The run's deployment, which is rolled back.
        deployment_id: String,
        /// The deploy stage whose service it rolls back (stored without `target`, as `StartDeployment`).
        #[serde(default = "table_deploy_stage")]
        stage: Stage,
        target: DeployTarget,
        task_definition: String,
        /// Where the run's build left its artifacts: a CodeDeploy rollback renders the build's AppSpec again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifacts: Option<String>,
    },
    /// Continue a paused ECS-native deployment, or roll it back (ContinueServiceDeployment). Carried out by the
    /// deployer.
    ContinueDeployment { execution_id: ExecutionId, service_deployment: String, hook_id: String, action: PauseAction },
    /// Stop the run's deployment and roll it back, as an operator ordered: CodeDeploy's StopDeployment with
    /// auto-rollback (`blue_green`), or StopServiceDeployment with ROLLBACK (`ecs_*`; `deployment` is then the
    /// service deployment ARN). Carried out by the deployer (and at once by `sluice rollback`); the deployment's own
    /// events end the run.
    StopDeployment {
        execution_id: ExecutionId,
        /// The deploy stage whose deployment it stops (stored without `target`, as `StartDeployment`).
        #[serde(default = "table_deploy_stage")]
        stage: Stage,
        target: DeployTarget,
        deployment: String,
    },
    /// Tell the pipeline's notification topic how a run ended. The notification is made from the run's own record
    /// when it is sent, so that the outbox holds no copy of it.
    NotifyOutcome { execution_id: ExecutionId, topic_arn: String, outcome: Status },
    /// Bring GitHub up to date with the run: its commit status and its Deployment's state, made from the run's
    /// record when carried out (so that a late retry never shows an older state than the run's).
    ReportToGitHub { execution_id: ExecutionId },
    /// Put an announcement on the sluice bus, for any subscriber (and as the doorbell of the function that owns the
    /// stage's effect).
    Publish(SluiceEvent),
}

/// The deploy stage of an effect stored before effects named their stage: a pipeline's only one then.
fn table_deploy_stage() -> Stage {
    Stage::DEPLOY
}

/// The kinds of effect, each owned by one function. A function's effect runner names the kinds it carries out (an
/// allow-list); the rest stay in the outbox for their owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// The webhook, build-events and the reconciler.
    StartBuild,
    /// The approval function.
    RequestApproval,
    /// The deployer.
    StartDeployment,
    /// The hook function.
    ReportHookStatus,
    /// The hook function (a rolling update's AfterRollout checks, a test stage's checks).
    RunChecks,
    /// The deployer.
    RollBack,
    /// The deployer.
    ContinueDeployment,
    /// The deployer, or `sluice rollback`.
    StopDeployment,
    /// The notifier.
    NotifyOutcome,
    /// The notifier. (Named `report_to_github` as everywhere else: serde's snake case would say `report_to_git_hub`,
    /// which the notifier's doorbell rule does not match; doorbells rung so before are read still.)
    #[serde(rename = "report_to_github", alias = "report_to_git_hub")]
    ReportToGitHub,
    /// Any function that moves runs on.
    Publish,
}

impl EffectKind {
    pub fn name(self) -> &'static str {
        match self {
            EffectKind::StartBuild => "start_build",
            EffectKind::RequestApproval => "request_approval",
            EffectKind::StartDeployment => "start_deployment",
            EffectKind::ReportHookStatus => "report_hook_status",
            EffectKind::RunChecks => "run_checks",
            EffectKind::RollBack => "roll_back",
            EffectKind::ContinueDeployment => "continue_deployment",
            EffectKind::StopDeployment => "stop_deployment",
            EffectKind::NotifyOutcome => "notify_outcome",
            EffectKind::ReportToGitHub => "report_to_github",
            EffectKind::Publish => "publish",
        }
    }
}

impl Effect {
    pub fn kind(&self) -> EffectKind {
        match self {
            Effect::StartBuild { .. } => EffectKind::StartBuild,
            Effect::RequestApproval { .. } => EffectKind::RequestApproval,
            Effect::StartDeployment { .. } => EffectKind::StartDeployment,
            Effect::ReportHookStatus { .. } => EffectKind::ReportHookStatus,
            Effect::RunChecks { .. } | Effect::RunTestChecks { .. } => EffectKind::RunChecks,
            Effect::RollBack { .. } => EffectKind::RollBack,
            Effect::ContinueDeployment { .. } => EffectKind::ContinueDeployment,
            Effect::StopDeployment { .. } => EffectKind::StopDeployment,
            Effect::NotifyOutcome { .. } => EffectKind::NotifyOutcome,
            Effect::ReportToGitHub { .. } => EffectKind::ReportToGitHub,
            Effect::Publish(_) => EffectKind::Publish,
        }
    }

    /// The execution the effect is for, where it names one.
    pub fn execution_id(&self) -> Option<&ExecutionId> {
        match self {
            Effect::StartBuild { execution_id, .. }
            | Effect::RequestApproval { execution_id, .. }
            | Effect::StartDeployment { execution_id, .. }
            | Effect::ReportHookStatus { execution_id, .. }
            | Effect::RunChecks { execution_id, .. }
            | Effect::RunTestChecks { execution_id, .. }
            | Effect::RollBack { execution_id, .. }
            | Effect::ContinueDeployment { execution_id, .. }
            | Effect::StopDeployment { execution_id, .. }
            | Effect::NotifyOutcome { execution_id, .. }
            | Effect::ReportToGitHub { execution_id } => Some(execution_id),
            Effect::Publish(event) => Some(event.execution_id()),
        }
    }

    /// One line for an operator: what the effect does, and for which execution.
    pub fn describe(&self) -> String {
        match self {
            Effect::StartBuild { execution_id, project, source_version, .. } => {
                let commit: String = source_version.chars().take(12).collect();
                format!("start CodeBuild project {project} on {commit} for {execution_id}")
            }
            Effect::RequestApproval { execution_id, topic_arn, .. } => {
                format!("request approval of {execution_id} from {topic_arn}")
            }
            Effect::StartDeployment { execution_id, target, .. } => {
                format!("start the {} deployment of {execution_id}", target.strategy())
            }
            Effect::ReportHookStatus { deployment_id, hook_execution_id, status, .. } => {
                format!("report {status:?} for hook {hook_execution_id} of deployment {deployment_id}")
            }
            Effect::RunChecks { execution_id, lifecycle_event, checks, .. } => {
                format!("run the {} {lifecycle_event} checks of {execution_id}", checks.len())
            }
            Effect::RunTestChecks { execution_id, stage, checks } => {
                format!("run the {} checks of {execution_id}'s test stage {stage}", checks.len())
            }
            Effect::RollBack { execution_id, task_definition, .. } => {
                format!("roll {execution_id}'s service back to {task_definition}")
            }
            Effect::ContinueDeployment { execution_id, hook_id, action, .. } => {
                format!("{} {execution_id}'s deployment, paused at hook {hook_id}", action.name())
            }
            Effect::StopDeployment { execution_id, deployment, .. } => {
                format!("stop {execution_id}'s deployment {deployment} and roll it back")
            }
            Effect::NotifyOutcome { execution_id, topic_arn, outcome } => {
                format!("notify {topic_arn} that {execution_id} {}", outcome.name())
            }
            Effect::ReportToGitHub { execution_id } => format!("show {execution_id} on GitHub"),
            Effect::Publish(event) => format!("publish {} for {}", event.detail_type(), event.execution_id()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EffectKind;

    #[test]
    fn every_effect_kind_is_written_as_its_name_which_the_doorbell_rules_match() {
        let kinds = [
            EffectKind::StartBuild,
            EffectKind::RequestApproval,
            EffectKind::StartDeployment,
            EffectKind::ReportHookStatus,
            EffectKind::RunChecks,
            EffectKind::RollBack,
            EffectKind::ContinueDeployment,
            EffectKind::StopDeployment,
            EffectKind::NotifyOutcome,
            EffectKind::ReportToGitHub,
            EffectKind::Publish,
        ];
        for kind in kinds {
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::json!(kind.name())), "{kind:?}");
            assert_eq!(serde_json::from_value::<EffectKind>(serde_json::json!(kind.name())).ok(), Some(kind));
        }
        let before = serde_json::from_value::<EffectKind>(serde_json::json!("report_to_git_hub"));
        assert_eq!(before.ok(), Some(EffectKind::ReportToGitHub), "as an earlier version wrote it");
    }
}
