//! The state of one pipeline: its recent executions, each with its status and the facts each stage produced.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{Effect, EffectKind};
use crate::definitions::{
    Approval, Build, DeployStage, DeployTarget, ExecutionMode, GitHubReport, Notify, PauseAction, Pipeline,
    StageDefinition, StageKind, table_stages,
};

/// The id of one execution (one run of a pipeline for one commit). Callers mint it; the machine never does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(pub String);

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ExecutionId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

pub use crate::definitions::Stage;

/// Where an execution is. `Waiting` means the stage is held by another execution of the same pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "status", content = "stage", rename_all = "snake_case")]
pub enum Status {
    Waiting(Stage),
    Running(Stage),
    Succeeded,
    Failed,
    Rejected,
    Superseded,
    RolledBack,
    TimedOut,
    /// Never ran: its commit is older than one the pipeline already ran for the same ref.
    Skipped,
}

impl Status {
    /// True once the execution can no longer move.
    pub fn is_finished(self) -> bool {
        !matches!(self, Status::Waiting(_) | Status::Running(_))
    }

    /// A short lowercase name, the one used in published events and in DynamoDB.
    pub fn name(self) -> &'static str {
        match self {
            Status::Waiting(_) => "waiting",
            Status::Running(_) => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Rejected => "rejected",
            Status::Superseded => "superseded",
            Status::RolledBack => "rolled_back",
            Status::TimedOut => "timed_out",
            Status::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Waiting(stage) => write!(f, "waiting for {stage}"),
            Status::Running(stage) => write!(f, "running {stage}"),
            other => f.write_str(other.name()),
        }
    }
}

/// What the pipeline definition said when the execution started. A run keeps the definition it started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredPlan")]
pub struct Plan {
    pub build: Build,
    /// What runs after the build, in order.
    pub stages: Vec<StageDefinition>,
    /// Where the run's outcome is announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// Whether (and as which environment) the run is shown on GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubReport>,
}

/// A plan as stored: with its `stages`, or, as versions before stages stored it, with `approval`, `deploy` and
/// `deploy_timeout_minutes` (read as the stages `approval` and `deploy`).
#[derive(Deserialize)]
struct StoredPlan {
    build: Build,
    #[serde(default)]
    stages: Option<Vec<StageDefinition>>,
    #[serde(default)]
    approval: Option<Approval>,
    #[serde(default)]
    deploy: Option<DeployTarget>,
    #[serde(default)]
    deploy_timeout_minutes: Option<u32>,
    #[serde(default)]
    notify: Option<Notify>,
    #[serde(default)]
    github: Option<GitHubReport>,
}

impl TryFrom<StoredPlan> for Plan {
    type Error = String;

    fn try_from(stored: StoredPlan) -> Result<Self, String> {
        let stages = match (stored.stages, stored.deploy) {
            (Some(stages), _) => stages,
            (None, Some(deploy)) => table_stages(stored.approval, deploy, stored.deploy_timeout_minutes),
            (None, None) => return Err("a plan has stages (or, stored before stages, a deploy target)".to_owned()),
        };
        Ok(Self { build: stored.build, stages, notify: stored.notify, github: stored.github })
    }
}

impl From<&Pipeline> for Plan {
    fn from(pipeline: &Pipeline) -> Self {
        Self {
            build: pipeline.build.clone(),
            stages: pipeline.stages.clone(),
            notify: pipeline.notify.clone(),
            github: pipeline.github.clone(),
        }
    }
}

impl Plan {
    /// The stage called `name`.
    pub fn stage(&self, name: Stage) -> Option<&StageDefinition> {
        self.stages.iter().find(|stage| stage.name == name)
    }

    /// Where `stage` comes in the run: 0 for the build, then 1, 2, ... for the plan's stages in order (past the
    /// end for a stage the plan does not have).
    pub fn position(&self, stage: Stage) -> usize {
        if stage == Stage::BUILD {
            return 0;
        }
        self.stages.iter().position(|planned| planned.name == stage).map_or(usize::MAX, |at| at + 1)
    }

    /// The stage after `stage` (the first stage after the build), if any.
    pub fn after(&self, stage: Stage) -> Option<Stage> {
        self.stages.get(self.position(stage)).map(|next| next.name)
    }

    /// The deploy stage called `name`.
    pub fn deploy_stage(&self, name: Stage) -> Option<&DeployStage> {
        self.stage(name).and_then(StageDefinition::deploy)
    }

    /// The first deploy stage.
    pub fn first_deploy(&self) -> Option<(Stage, &DeployStage)> {
        self.stages.iter().find_map(|stage| stage.deploy().map(|deploy| (stage.name, deploy)))
    }

    /// The GitHub environment deploy stage `stage`'s Deployments are for, when the plan shows runs on GitHub: its
    /// `environment`, else (the `deploy` stage of a pipeline written with tables) `github.environment`, else its name.
    pub fn environment(&self, stage: Stage) -> Option<String> {
        let github = self.github.as_ref()?;
        let deploy = self.deploy_stage(stage)?;
        let table = (stage == Stage::DEPLOY && self.table_shaped()).then(|| github.environment.clone());
        Some(deploy.environment.clone().or(table).unwrap_or_else(|| stage.to_string()))
    }

    /// Whether the plan is what `[approval]` and `[deploy]` tables make (stages named `approval` and `deploy` only):
    /// its deploy stage is shown as the `[github]` table's environment, and its approval email says it as it always
    /// has.
    pub fn table_shaped(&self) -> bool {
        crate::definitions::table_shaped(&self.stages)
    }
}

/// What the push said: the facts of the source stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFacts {
    pub repository: String,
    pub commit: String,
    /// The commit the ref pointed at before the push (all zeros for a new ref).
    #[serde(default)]
    pub before: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub pusher: String,
    /// The pusher's email address, as GitHub sent it (a noreply address for one who keeps theirs private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher_email: Option<String>,
    pub delivery_id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub compare_url: String,
    /// When GitHub says the push was made (`repository.pushed_at`): pushes of a ref are ordered by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<DateTime<Utc>>,
    /// The webhook that delivered the push (`X-GitHub-Hook-ID`): where sluice looks for deliveries it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_id: Option<u64>,
    /// What GitHub's compare API said of the commit against the ref's head, asked when the two were pushed in the
    /// same second and the pushes sluice saw do not link them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared: Option<Compared>,
}

/// How a pushed commit stands against the commit its ref's last run was pushed with: GitHub's compare
/// (`GET /repos/{repo}/compare/{head}...{commit}`), whose `status` is one of `ahead`, `behind`, `identical` and
/// `diverged` (<https://docs.github.com/en/rest/commits/commits#compare-two-commits>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    /// The ref's head it was compared with.
    pub head: String,
    pub order: CommitOrder,
}

/// A pushed commit against its ref's head, as GitHub compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOrder {
    /// It descends from the head: newer.
    Ahead,
    /// The head descends from it: older.
    Behind,
    /// The same commit.
    Identical,
    /// Neither descends from the other (a force-push): the push that arrived last counts as newest.
    Diverged,
    /// GitHub could not be asked (no credentials, or it did not answer): as `Diverged`.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildFacts {
    pub project: String,
    pub build_id: Option<String>,
    /// The last build phase CodeBuild reported (e.g. `BUILD`, `POST_BUILD`).
    pub phase: Option<String>,
    pub image_uri: Option<String>,
    /// Where the build's artifacts are (an `s3://bucket/key` URI).
    pub artifacts: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approved,
    Rejected,
}

impl ApprovalDecision {
    /// `approved` or `rejected`.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalDecision::Approved => "approved",
            ApprovalDecision::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalFacts {
    pub topic_arn: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decision: Option<ApprovalDecision>,
    pub approver: Option<String>,
    pub comment: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The SHA-256 (hex) of the current approval link's token; the token itself is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// When the request went out to the approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Where the decision came from: the deciding browser's address and user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// What the request showed of the release against what ran where approving releases it, as read when it was
    /// sent (an approval stage before a deploy stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared: Option<Box<ReleaseComparison>>,
    /// Named approvers: the SHA-256 (hex) of each one's current link, in the order the approval lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal: Vec<String>,
    /// Named approvers: who approved so far, oldest first (the decision is recorded once enough did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signoffs: Vec<Signoff>,
}

/// Why a named approver may not decide ([`Execution::approver_refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApproverRefused {
    /// They approved already, at `at`: each decides once.
    AlreadyApproved { at: DateTime<Utc> },
    /// They pushed the commit, and the approval forbids the pusher.
    Pusher,
}

/// One named approver's (or operator's) approval, toward the number an approval stage requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signoff {
    /// The approver's address, or the operator's IAM ARN.
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A release against what runs at the deploy stage it goes to, as read when an approval was asked
/// (`crate::deploy::compare`): bounded, shown to approvers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseComparison {
    /// The task definition the stage's service ran (`family:revision`), when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    /// The image the deployed container ran there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_image: Option<String>,
    /// The image the release runs there, pinned by its digest.
    pub image: String,
    /// How the release's task definition differs from the running one, a line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Why what ran there could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

impl ReleaseComparison {
    /// At most [`MAX_COMPARED_CHANGES`] changes, each text at most [`MAX_COMPARED_TEXT`] bytes: what the run keeps,
    /// whatever it was given.
    pub fn bounded(&self) -> Self {
        let text = |value: &str| bounded(value, MAX_COMPARED_TEXT);
        Self {
            running: self.running.as_deref().map(text),
            running_image: self.running_image.as_deref().map(text),
            image: text(&self.image),
            changes: self.changes.iter().take(MAX_COMPARED_CHANGES).map(|change| text(change)).collect(),
            unread: self.unread.as_deref().map(text),
        }
    }
}

/// The most changes a kept comparison lists.
pub const MAX_COMPARED_CHANGES: usize = 10;
/// The longest text of a kept comparison, in bytes.
pub const MAX_COMPARED_TEXT: usize = 320;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookResult {
    pub lifecycle_event: String,
    pub hook_execution_id: String,
    pub passed: bool,
    pub detail: Option<String>,
    /// How long the hook's checks took together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis: Option<u64>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployFacts {
    /// `blue_green`, `rolling`, `ecs_blue_green`, `ecs_linear` or `ecs_canary`.
    pub strategy: String,
    pub deployment_id: Option<String>,
    /// The ECS service deployment ARN (ECS-native strategies): what ECS's lifecycle hooks name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment: Option<String>,
    /// The task definition the deployment rolls out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// The task definition the service ran before (rolling): what a failed AfterRollout check rolls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_task_definition: Option<String>,
    /// When the rolling update completed, if its AfterRollout checks were then due (the run ends once they ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_out_at: Option<DateTime<Utc>>,
    pub hooks: Vec<HookResult>,
    /// The pauses of an ECS-native deployment at the pipeline's approval stage, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<PauseFacts>,
    /// How many of this stage's pauses are kept apart, in items of their own beside the run's
    /// ([`Execution::set_apart`]): the oldest, which are then not in `pauses`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pauses_apart: usize,
    /// An operator ordered the deployment stopped and rolled back (`sluice rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_ordered: Option<OrderedRollback>,
    /// What the service's tasks of the new task definition ran once the deployment completed, against the
    /// release's digest ([`crate::deploy::digests`]): a mismatch rolls the service back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_check: Option<crate::deploy::DigestCheck>,
    /// The alarms watching the stage's soak that were in ALARM as the deployment started (`soak_alarms`): reported,
    /// and, unless `strict_alarms`, not blocking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_alarm_before: Option<Vec<String>>,
    /// The alarm that went into ALARM during the soak: the stage failed and the service is rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<RaisedAlarm>,
    /// Until when the release must run here before the run takes its next stage (`soak`): set when the deployment
    /// succeeded; the run holds the stage meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_until: Option<DateTime<Utc>>,
    /// A newer run's deployment stopped this one (superseded mode): the run ended there, not past it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub superseded: bool,
    /// When the deployment was past its deadline ([`crate::deploy::deadline`]) and the run failed for it: what
    /// sluice stops or rolls back then is carried out though the run has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_at: Option<DateTime<Utc>>,
    /// When the stage's gate (`windows`, `deny`, `entry_alarms`) let the deployment start, where the stage has one:
    /// the deployment's deadline counts from then, not from when the run reached the stage (`started_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub let_in_at: Option<DateTime<Utc>>,
    /// What the start waits for while the stage's gate holds it (`the window opening ...`); gone once it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// An alarm that went into ALARM during a soak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaisedAlarm {
    pub name: String,
    /// CloudWatch's `stateReason`, bounded.
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl DeployFacts {
    /// When the deployment's deadline counts from: when the stage's gate let it start, else when the run reached
    /// the stage.
    pub fn deadline_from(&self) -> DateTime<Utc> {
        self.let_in_at.unwrap_or(self.started_at)
    }

    /// A deployment by `strategy` that started at `started_at`, with nothing known of it yet.
    pub fn new(strategy: impl Into<String>, started_at: DateTime<Utc>) -> Self {
        Self {
            strategy: strategy.into(),
            deployment_id: None,
            service_deployment: None,
            task_definition: None,
            previous_task_definition: None,
            rolled_out_at: None,
            hooks: Vec::new(),
            pauses: Vec::new(),
            pauses_apart: 0,
            rollback_ordered: None,
            digest_check: None,
            in_alarm_before: None,
            alarm: None,
            soak_until: None,
            superseded: false,
            timed_out_at: None,
            let_in_at: None,
            held: None,
            started_at,
            finished_at: None,
        }
    }

    /// Whether the deployment is being rolled back for a reason sluice knows: a stage's checks failed, a person
    /// rejected it at a pause, a pause whose timeout action is ROLLBACK timed out, or an operator ordered it.
    pub fn rolling_back(&self, now: DateTime<Utc>) -> bool {
        self.rollback_ordered.is_some()
            || self.rolled_back_at_pause(now).is_some()
            || self.hooks.iter().any(|hook| !hook.passed)
    }

    /// The pause that rolls the deployment back at `now`, with its approval: the last pause, if a person rejected
    /// it, or nobody decided before it expired and its timeout action is ROLLBACK.
    pub fn rolled_back_at_pause(&self, now: DateTime<Utc>) -> Option<(&PauseFacts, &ApprovalFacts)> {
        let pause = self.pauses.last()?;
        let approval = pause.approval.as_ref()?;
        let rolled_back = match approval.decision {
            Some(decision) => decision == ApprovalDecision::Rejected,
            None => pause.timeout_action == PauseAction::Rollback && now >= approval.expires_at,
        };
        rolled_back.then_some((pause, approval))
    }
}

/// Who ordered a deployment rolled back (`sluice rollback`), and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderedRollback {
    /// The operator's AWS identity (its ARN).
    pub by: String,
    pub at: DateTime<Utc>,
}

/// ECS paused the run's deployment at a stage (a PAUSE lifecycle hook) until sluice continues it or it times out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseFacts {
    /// ECS's id of the paused hook: what ContinueServiceDeployment names.
    pub hook_id: String,
    pub stage: String,
    /// The share of production traffic on the new revision while paused, in tenths of a percent.
    pub shifted_tenths: u32,
    /// What ECS does if nobody decides by the approval's `expires_at`.
    pub timeout_action: PauseAction,
    /// The decision sluice asked for; `None` when sluice continued the pause itself (no production traffic had
    /// moved yet at the stage before each step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalFacts>,
    /// The pause was to be continued (approved, or continued by sluice itself) while the pipeline was frozen: it is
    /// continued once the freeze lifts, if ECS still waits at it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// A pause sluice would have continued itself, held by the freeze: when ECS stops waiting there (its timeout),
    /// past which the lift leaves it to ECS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
}

/// One decision a person is asked for: the approval stage's, or one at a pause of an ECS-native deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate<'a> {
    Stage(&'a ApprovalFacts),
    Pause(&'a PauseFacts, &'a ApprovalFacts),
}

impl<'a> Gate<'a> {
    pub fn facts(self) -> &'a ApprovalFacts {
        match self {
            Gate::Stage(facts) | Gate::Pause(_, facts) => facts,
        }
    }

    /// The pause it is at, if it is one.
    pub fn pause(self) -> Option<&'a PauseFacts> {
        match self {
            Gate::Stage(_) => None,
            Gate::Pause(pause, _) => Some(pause),
        }
    }
}

/// Where an execution's approval stands, as its link tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStanding<'a> {
    /// Waiting for a decision, before its deadline.
    Open,
    Decided {
        decision: ApprovalDecision,
        approver: Option<&'a str>,
        at: Option<DateTime<Utc>>,
    },
    /// Past its deadline without a decision (timed out, or about to be by the reconciler; at a pause, ECS took
    /// the pause's timeout action).
    Expired {
        at: DateTime<Utc>,
    },
    /// The run no longer waits for it (superseded, say); `reason` says why.
    Withdrawn {
        reason: Option<&'a str>,
    },
}

/// One run of a pipeline for one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredExecution")]
pub struct Execution {
    pub id: ExecutionId,
    pub pipeline: String,
    /// Order of arrival within the pipeline: 1, 2, 3, ...
    pub seq: u64,
    #[serde(flatten)]
    pub status: Status,
    pub source: SourceFacts,
    pub plan: Plan,
    pub build: Option<BuildFacts>,
    /// What the run did at each stage it entered after its build, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageRecord>,
    /// Why the execution ended the way it did (for every outcome but success).
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the execution started waiting for the stage it waits for.
    pub waiting_since: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Who ordered the run and why, when an operator did rather than a push (`sluice rollback --to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered: Option<String>,
    /// The GitHub Deployments that show the run, one per deploy stage, once created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_deployments: Vec<GitHubDeployment>,
    /// The one stage an operator's rollback deploys (`sluice rollback --stage`): the run ends once it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Stage>,
    /// The pipeline state's copy of a finished run, without what it did at its stages: its whole record is the
    /// run's own item ([`PipelineState::stored`]). Nothing changes an abridged run.
    #[serde(default, skip_serializing_if = "is_false")]
    pub abridged: bool,
    /// The deploy stage an operator let this run into whatever holds runs out of it (`sluice override`): the last
    /// one given.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub let_in: Option<Override>,
}

/// An operator let a run through what holds runs out of a deploy stage (a freeze): who, why and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub stage: Stage,
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// How many of the newest pauses of the stage a run is at stay in the run's item (and the pipeline's): the open
/// pause and those just before it. Older ones are kept apart ([`Execution::to_set_apart`]), a batch at a time.
pub const KEPT_PAUSES: usize = 5;

/// How many of a stage's `pauses` in the run are kept apart: all of a stage the run went past; at the stage it is
/// at (the `last`), all but the newest [`KEPT_PAUSES`], once there are more than twice as many.
fn apart_count(last: bool, pauses: usize) -> usize {
    match last {
        false => pauses,
        true if pauses > 2 * KEPT_PAUSES => pauses - KEPT_PAUSES,
        true => 0,
    }
}

/// Pauses of one stage of a run that nothing decides any more, kept apart from the run: the `from`th of the stage's
/// pauses and those after it, oldest first. Written once, never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausesApart {
    pub execution: ExecutionId,
    pub stage: Stage,
    pub from: usize,
    pub pauses: Vec<PauseFacts>,
}

/// The GitHub Deployment that shows a run's deploy stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubDeployment {
    pub stage: Stage,
    pub deployment: u64,
}

/// What a run did at one of its stages: an approval stage's request and decision, a deploy stage's deployment, or a
/// test stage's build and its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<super::tested::TestFacts>,
}

impl StageRecord {
    /// An empty record of `stage`, for its kind's facts to go in.
    pub fn new(name: Stage) -> Self {
        StageRecord { name, approval: None, deploy: None, test: None }
    }
}

/// A run as stored: with its `stages`, or, as versions before stages stored it, with the facts of its `approval` and
/// `deploy` stages beside its build.
#[derive(Deserialize)]
struct StoredExecution {
    id: ExecutionId,
    pipeline: String,
    seq: u64,
    #[serde(flatten)]
    status: Status,
    source: SourceFacts,
    plan: Plan,
    build: Option<BuildFacts>,
    #[serde(default)]
    stages: Vec<StageRecord>,
    #[serde(default)]
    approval: Option<ApprovalFacts>,
    #[serde(default)]
    deploy: Option<DeployFacts>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    waiting_since: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ordered: Option<String>,
    #[serde(default)]
    github_deployments: Vec<GitHubDeployment>,
    /// Before stages: the one Deployment of the run, its deploy stage's.
    #[serde(default)]
    github_deployment: Option<u64>,
    #[serde(default)]
    only: Option<Stage>,
    #[serde(default)]
    abridged: bool,
    #[serde(default, rename = "override")]
    let_in: Option<Override>,
}

impl From<StoredExecution> for Execution {
    fn from(stored: StoredExecution) -> Self {
        let first_deploy = stored.plan.first_deploy().map_or(Stage::DEPLOY, |(stage, _)| stage);
        let legacy_deployment =
            stored.github_deployment.map(|deployment| GitHubDeployment { stage: first_deploy, deployment });
        let mut stages = stored.stages;
        if let Some(approval) = stored.approval {
            stages.push(StageRecord { approval: Some(approval), ..StageRecord::new(Stage::APPROVAL) });
        }
        if let Some(deploy) = stored.deploy {
            stages.push(StageRecord { deploy: Some(deploy), ..StageRecord::new(Stage::DEPLOY) });
        }
        Self {
            id: stored.id,
            pipeline: stored.pipeline,
            seq: stored.seq,
            status: stored.status,
            source: stored.source,
            plan: stored.plan,
            build: stored.build,
            stages,
            reason: stored.reason,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            waiting_since: stored.waiting_since,
            finished_at: stored.finished_at,
            ordered: stored.ordered,
            github_deployments: stored.github_deployments.into_iter().chain(legacy_deployment).collect(),
            abridged: stored.abridged,
            only: stored.only,
            let_in: stored.let_in,
        }
    }
}

/// Everything the machine needs to decide about one pipeline: its unfinished executions and the few that finished
/// last (so that late duplicates of their events are recognised). Stored as one versioned item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineState {
    pub pipeline: String,
    pub mode: ExecutionMode,
    /// The `seq` the next execution gets.
    pub next_seq: u64,
    /// Oldest first.
    pub executions: Vec<Execution>,
    /// Effects decided but not yet carried out, oldest first: the pipeline's outbox. The machine never reads or
    /// writes it; the use cases append what the machine decides, in the same write as the state, and remove each
    /// effect once carried out, so that a crash between the two loses nothing (see `outbox`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingEffect>,
    /// How many effects were ever enqueued: the last part of each effect's id, so that no id is used twice.
    #[serde(default)]
    pub effect_seq: u64,
    /// Effects that failed for good or too often: they no longer block anything and wait for an operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<ParkedEffect>,
    /// The pushes the pipeline ran, per ref, most recently used ref last: how sluice tells an old commit that
    /// arrives late from a new one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<RefHistory>,
    /// The freeze an operator set (`sluice freeze`), while it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Box<Freeze>>,
}

/// A freeze of the pipeline: who set it, why, since and until when (`None`: until someone unfreezes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub by: String,
    pub reason: String,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl Freeze {
    /// Whether the freeze still holds at `now`.
    pub fn holds(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// An effect waiting in a pipeline's outbox. `id` is unique and stable: effects that support it use it as their
/// idempotency token (StartBuild's `idempotencyToken`), so carrying one out twice does it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEffect {
    pub id: String,
    pub effect: Effect,
    /// Attempts that failed so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Not to be tried again before this time (backoff after a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Who is carrying it out, until when. Nobody else may while the lease holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A claim on an effect: one invocation carries it out; another may only once `until` has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// An effect taken out of the outbox after failing for good or too often. `sluice effects` lists them and
/// `sluice retry-effect` puts one back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParkedEffect {
    pub id: String,
    pub effect: Effect,
    pub attempts: u32,
    pub error: String,
    pub parked_at: DateTime<Utc>,
}

/// The pushes of one ref that the pipeline ran, oldest first: each `before -> after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefHistory {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub pushes: Vec<PushLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushLink {
    pub before: String,
    pub after: String,
    /// When it was pushed, where GitHub said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<DateTime<Utc>>,
}

/// A commit as people quote it: its first seven characters.
pub fn short_commit(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

impl Execution {
    /// `check` as it runs for this run's release: `{commit}` and `{digest}` in its expected body stand for the run's
    /// commit and its image's digest ([`crate::deploy::for_release`]).
    pub fn for_release(&self, check: &crate::definitions::Check) -> crate::definitions::Check {
        let image = self.build.as_ref().and_then(|build| build.image_uri.as_deref());
        crate::deploy::for_release(check, &self.source.commit, image)
    }

    /// Whether the run holds its build stage: only then does the end of its build move it on.
    pub fn in_build(&self) -> bool {
        self.status == Status::Running(Stage::BUILD)
    }

    /// Whether the run got past deploy stage `stage`: its deployment there finished and the run went on to a later
    /// stage, or succeeded (a run that soaked there went on). What `sluice rollback --stage` rolls back to.
    pub fn passed(&self, stage: Stage) -> bool {
        // Its deployment there finished, and not by a newer run's stopping it.
        let deployed = self
            .record(stage)
            .and_then(|record| record.deploy.as_ref())
            .is_some_and(|d| d.finished_at.is_some() && !d.superseded);
        let here = self.plan.position(stage);
        // Past it: it entered a later stage, waits for one, or was overtaken while waiting at the next boundary.
        let overtaken = self.status == Status::Superseded && self.stages.last().is_some_and(|last| last.name == stage);
        let later = self.stages.iter().any(|later| self.plan.position(later.name) > here)
            || self.at().is_some_and(|at| self.plan.position(at) > here)
            || overtaken;
        deployed && (self.status == Status::Succeeded || later)
    }

    /// The deploy stages GitHub shows the run at, each with whether the run went past it: the first deploy stage
    /// from the run's start (unless the run starts further on: a retry, or a rollback of a later stage), a later one
    /// once the run reaches it, and any that has its Deployment already (a run overtaken while waiting for it).
    pub fn shown_stages(&self) -> Vec<(Stage, bool)> {
        let furthest = self.at().or_else(|| self.stages.last().map(|record| record.name)).unwrap_or(Stage::BUILD);
        let furthest = self.plan.position(furthest);
        let deploys = self.plan.stages.iter().filter(|stage| stage.deploy().is_some()).map(|stage| stage.name);
        deploys
            .enumerate()
            .filter_map(|(k, stage)| {
                let here = self.plan.position(stage);
                let reached = self.record(stage).is_some()
                    || self.at() == Some(stage)
                    || self.github_deployments.iter().any(|shown| shown.stage == stage);
                let first = k == 0 && furthest <= here;
                (reached || first).then_some((stage, reached && self.passed(stage)))
            })
            .collect()
    }

    /// The stage the run holds or waits for, if it has not ended.
    pub fn at(&self) -> Option<Stage> {
        match self.status {
            Status::Waiting(stage) | Status::Running(stage) => Some(stage),
            _ => None,
        }
    }

    /// The deploy stage the run holds, with its definition.
    pub fn deploying(&self) -> Option<(Stage, &DeployStage)> {
        let Status::Running(stage) = self.status else { return None };
        self.plan.deploy_stage(stage).map(|deploy| (stage, deploy))
    }

    /// The deploy stage the run holds and the alarms that watch its soak, while none of them has fired (`None`
    /// where none watches it).
    pub fn watched_soak(&self) -> Option<(Stage, &[String])> {
        let (stage, deploy) = self.deploying()?;
        let fired = self.record(stage).and_then(|record| record.deploy.as_ref()).is_some_and(|d| d.alarm.is_some());
        (!deploy.alarms().is_empty() && !fired).then(|| (stage, deploy.alarms()))
    }

    /// Whether alarm `name`, in ALARM as the run's soak ends, fails the stage: one already in ALARM as the
    /// deployment started does not, unless the stage's alarms are strict (`strict_alarms`).
    pub fn blocks_soak(&self, name: &str) -> bool {
        let strict = self.deploying().is_some_and(|(_, deploy)| deploy.strict_alarms());
        let before = self.deploy().and_then(|deploy| deploy.in_alarm_before.as_deref()).unwrap_or_default();
        strict || !before.iter().any(|known| known == name)
    }

    /// Until when the run soaks at the deploy stage it holds, its deployment done: it takes the next stage then.
    pub fn soaking(&self) -> Option<DateTime<Utc>> {
        let (stage, _) = self.deploying()?;
        self.record(stage)?.deploy.as_ref()?.soak_until
    }

    /// Whether the run holds an approval stage, or a test stage whose failure it asks to overlook (`on_failure =
    /// "ask"`).
    pub fn approving(&self) -> bool {
        let Status::Running(stage) = self.status else { return false };
        match self.plan.stage(stage).map(|planned| &planned.kind) {
            Some(StageKind::Approval(_)) => true,
            Some(StageKind::Test(_)) => self.record(stage).is_some_and(|record| record.approval.is_some()),
            _ => false,
        }
    }

    /// The test stage the run holds, failed, and why (the reason with the failed cases): what an approval asked
    /// there is about.
    pub fn failed_test(&self) -> Option<(Stage, String)> {
        let stage = self.at()?;
        let test = self.record(stage)?.test.as_ref().filter(|test| test.passed == Some(false))?;
        let reason = test.reason.clone().unwrap_or_else(|| "the tests failed".to_owned());
        Some((
            stage,
            test.results.as_ref().map_or(reason.clone(), |results| format!("{reason} ({})", results.failures_line())),
        ))
    }

    /// What the run did at `stage`, if it entered it.
    pub fn record(&self, stage: Stage) -> Option<&StageRecord> {
        self.stages.iter().rev().find(|record| record.name == stage)
    }

    /// Whether an operator let the run through the freeze where a decision now releases it: the deploy stage it
    /// is at (a pause there) or the first after it (an approval stage before it).
    pub fn let_through_next(&self) -> bool {
        let Some(at) = self.at() else { return false };
        let mut ahead = self.plan.stages.iter().map(|stage| stage.name).skip_while(|stage| *stage != at);
        ahead.find(|stage| self.plan.deploy_stage(*stage).is_some()).is_some_and(|next| self.overridden(next).is_some())
    }

    /// Whether an operator let the run into `stage` whatever holds runs out of it.
    pub fn overridden(&self, stage: Stage) -> Option<&Override> {
        self.let_in.as_ref().filter(|given| given.stage == stage)
    }

    /// The stage the run waits for, if it waits.
    pub fn waiting_for(&self) -> Option<Stage> {
        match self.status {
            Status::Waiting(stage) => Some(stage),
            _ => None,
        }
    }

    /// The deployment of the deploy stage the run holds, or else of the last one it entered.
    pub fn deploy(&self) -> Option<&DeployFacts> {
        self.stages.iter().rev().find_map(|record| record.deploy.as_ref())
    }

    /// The approval stage's facts: of the approval stage the run holds, or else of the last one it entered.
    pub fn approval(&self) -> Option<&ApprovalFacts> {
        self.stages.iter().rev().find_map(|record| record.approval.as_ref())
    }

    /// The named approvers of the approval [`Execution::approval`] is of (its approval stage's, or its test stage's
    /// that asks them), if it names them.
    pub fn named_approvers(&self) -> Option<&crate::definitions::Approvers> {
        let stage = self.stages.iter().rev().find(|record| record.approval.is_some())?.name;
        let approval = match &self.plan.stage(stage)?.kind {
            StageKind::Approval(approval) => approval,
            StageKind::Test(crate::definitions::TestStage {
                on_failure: crate::definitions::OnFailure::Ask(approval),
                ..
            }) => approval,
            StageKind::Deploy(_) | StageKind::Test(_) => return None,
        };
        approval.approvers.as_ref()
    }

    /// The named approver whose own link hashes to `token_hash`, at the approval the run asked last.
    pub fn approver_of(&self, token_hash: &str) -> Option<&str> {
        self.approver_where(|mine| mine == token_hash)
    }

    /// The named approver whose own link's hash `is_it` recognizes, at the approval the run asked last.
    pub fn approver_where(&self, is_it: impl Fn(&str) -> bool) -> Option<&str> {
        let k = self.approval()?.personal.iter().position(|mine| is_it(mine))?;
        self.named_approvers()?.emails.get(k).map(String::as_str)
    }

    /// Why `by` (a named approver, or an operator as [`crate::definitions::operator_identity`] has them) may not
    /// decide at the approval the run asks now, if so: they approved already, or they pushed the commit and the
    /// approval forbids the pusher.
    pub fn approver_refused(&self, by: &str) -> Option<ApproverRefused> {
        let approvers = self.named_approvers()?;
        if let Some(signoff) = self.approval()?.signoffs.iter().find(|signoff| signoff.by == by) {
            return Some(ApproverRefused::AlreadyApproved { at: signoff.at });
        }
        let pusher = self.source.pusher_email.as_deref().map(str::trim);
        (approvers.forbid_pusher && pusher.is_some_and(|pusher| pusher.eq_ignore_ascii_case(by)))
            .then_some(ApproverRefused::Pusher)
    }

    /// The deploy stage whose deployment the run is doing or did last, or else the first it will do: what the
    /// run's target is, as people are shown it.
    pub fn deploy_stage(&self) -> Option<(Stage, &DeployStage)> {
        let entered = self.stages.iter().rev().find(|record| record.deploy.is_some());
        let planned =
            entered.and_then(|record| self.plan.deploy_stage(record.name).map(|deploy| (record.name, deploy)));
        planned.or_else(|| self.plan.first_deploy())
    }

    /// The target and the facts of the stage whose deployment is `deployment` (a CodeDeploy or ECS deployment id, or
    /// an ECS service deployment ARN).
    pub fn deployed_as(&self, deployment: &str) -> Option<(&DeployTarget, &DeployFacts)> {
        self.stages.iter().rev().find_map(|record| {
            let deploy = record.deploy.as_ref()?;
            let ours = deploy.deployment_id.as_deref() == Some(deployment)
                || deploy.service_deployment.as_deref() == Some(deployment);
            let planned = self.plan.deploy_stage(record.name).filter(|_| ours)?;
            Some((&planned.target, deploy))
        })
    }

    /// The target the run deploys (or deployed) to: its [`Execution::deploy_stage`]'s.
    pub fn target(&self) -> Option<&DeployTarget> {
        self.deploy_stage().map(|(_, deploy)| &deploy.target)
    }

    /// True when the run ended without succeeding (failed, rolled back, rejected, timed out, superseded): what `sluice
    /// retry` runs again. A skipped run never started; a succeeded one is rolled back to, not retried.
    pub fn retryable(&self) -> bool {
        self.status.is_finished() && !matches!(self.status, Status::Succeeded | Status::Skipped)
    }

    /// The stage a retry of the run enters with the run's own build, if it may skip the build: the run's build
    /// finished with an image and every approval stage before that stage approved it. That stage is the first deploy
    /// or test stage the run did not get past (where it failed, or that it never reached). A run stopped at an approval it
    /// did not get is built, and asked, again: a retry never skips an approval.
    pub fn retry_stage(&self) -> Option<Stage> {
        let built = self.build.as_ref().is_some_and(|build| build.image_uri.is_some() && build.finished_at.is_some());
        if !built {
            return None;
        }
        // An operator's rollback of one stage is retried at that stage alone.
        if let Some(only) = self.only {
            return Some(only);
        }
        for planned in &self.plan.stages {
            let record = self.record(planned.name);
            match planned.kind {
                StageKind::Approval(_) => {
                    let approved = record.and_then(|record| record.approval.as_ref()).and_then(|a| a.decision);
                    if approved != Some(ApprovalDecision::Approved) {
                        return None;
                    }
                }
                StageKind::Deploy(_) | StageKind::Test(_) => {
                    let here = self.plan.position(planned.name);
                    if !self.stages.iter().any(|later| self.plan.position(later.name) > here) {
                        return Some(planned.name);
                    }
                }
            }
        }
        None
    }

    /// Every decision the execution asked for: its approval stages' and its deployments' pauses', oldest first.
    pub fn gates(&self) -> impl Iterator<Item = Gate<'_>> {
        self.stages.iter().flat_map(|record| {
            let pauses = record.deploy.iter().flat_map(|deploy| &deploy.pauses);
            record
                .approval
                .iter()
                .map(Gate::Stage)
                .chain(pauses.filter_map(|pause| pause.approval.as_ref().map(|approval| Gate::Pause(pause, approval))))
        })
    }

    /// Every pause of the run's deployments, stage by stage, oldest first (of those kept apart, none).
    pub fn pauses(&self) -> impl Iterator<Item = &PauseFacts> {
        self.stages.iter().filter_map(|record| record.deploy.as_ref()).flat_map(|deploy| &deploy.pauses)
    }

    /// The pauses still in the run that are to be kept apart, by stage, with how many of the stage's were kept apart
    /// before them: those of every stage but the last the run entered (nothing decides them any more), and at the
    /// stage it is at, once more than twice [`KEPT_PAUSES`] are there, all but the newest [`KEPT_PAUSES`]. The
    /// stores keep each batch in an item of its own and the run without them, so that neither the run's item nor
    /// the pipeline's grows with the pauses of the stages a run goes through.
    fn to_set_apart(&self) -> impl Iterator<Item = (Stage, usize, &[PauseFacts])> {
        let last = self.stages.len().saturating_sub(1);
        self.stages.iter().enumerate().filter_map(move |(k, record)| {
            let deploy = record.deploy.as_ref()?;
            let count = apart_count(k == last, deploy.pauses.len());
            (count > 0).then(|| (record.name, deploy.pauses_apart, &deploy.pauses[..count]))
        })
    }

    /// The batches of pauses a save keeps apart ([`Execution::to_set_apart`]), each to be written once.
    pub fn batches_to_set_apart(&self) -> Vec<PausesApart> {
        let batch = |(stage, from, pauses): (Stage, usize, &[PauseFacts])| PausesApart {
            execution: self.id.clone(),
            stage,
            from,
            pauses: pauses.to_vec(),
        };
        self.to_set_apart().map(batch).collect()
    }

    /// The run as stored: without the pauses [`Execution::to_set_apart`] names, each stage counting those it keeps
    /// apart.
    pub fn set_apart(&mut self) {
        let last = self.stages.len().saturating_sub(1);
        for (k, record) in self.stages.iter_mut().enumerate() {
            if let Some(deploy) = record.deploy.as_mut() {
                let count = apart_count(k == last, deploy.pauses.len());
                deploy.pauses.drain(..count);
                deploy.pauses_apart += count;
            }
        }
    }

    /// Whether a save writes the run's own item, the run having been `was` before it (`None`: it is new): when it
    /// is new, moves to another stage or ends, and when it changes after it ended (what it then learns, such as a
    /// stopped deployment or its GitHub Deployment, is its record's only copy once the pipeline's item abridges it).
    /// While it stays at a stage, the pipeline's item holds what it learns there
    /// ([`PipelineState::in_progress_copy`]). A run with pauses to set apart is written too: its item then counts
    /// them instead of holding them.
    pub fn own_item_due(&self, was: Option<&Execution>) -> bool {
        let moved = match was {
            None => true,
            Some(was) => was != self && (was.status != self.status || was.status.is_finished()),
        };
        !self.abridged && (moved || self.to_set_apart().next().is_some())
    }

    /// Whether some of the run's pauses are kept apart ([`Execution::set_apart`]).
    pub fn has_pauses_apart(&self) -> bool {
        self.stages.iter().filter_map(|record| record.deploy.as_ref()).any(|deploy| deploy.pauses_apart > 0)
    }

    /// Puts the pauses kept apart back into their stages, in order: the run's whole record, as a reader wants it.
    /// A stage takes them back only if its batches are exactly the pauses it counts apart, from the first on (a
    /// batch set apart after the run was read is left out); a stage that counts none apart (a run an earlier
    /// version wrote whole) is left as it is.
    pub fn rejoin(&mut self, mut apart: Vec<PausesApart>) {
        apart.sort_by_key(|batch| batch.from);
        for record in &mut self.stages {
            let Some(deploy) = record.deploy.as_mut().filter(|deploy| deploy.pauses_apart > 0) else { continue };
            let mut taken = Vec::new();
            for batch in apart.iter().filter(|batch| batch.stage == record.name) {
                if batch.from == taken.len() && taken.len() + batch.pauses.len() <= deploy.pauses_apart {
                    taken.extend(batch.pauses.iter().cloned());
                }
            }
            if taken.len() == deploy.pauses_apart {
                deploy.pauses_apart = 0;
                deploy.pauses.splice(0..0, taken);
            }
        }
    }

    /// The pause the deployment waits at now for a person's decision, if any.
    pub fn open_pause(&self) -> Option<&PauseFacts> {
        let (stage, _) = self.deploying()?;
        let pause = self.record(stage)?.deploy.as_ref()?.pauses.last()?;
        pause.approval.as_ref().is_some_and(|approval| approval.decision.is_none()).then_some(pause)
    }

    /// Where `gate` stands at `now`.
    pub fn standing<'a>(&'a self, gate: Gate<'a>, now: DateTime<Utc>) -> ApprovalStanding<'a> {
        let approval = gate.facts();
        if let Some(decision) = approval.decision {
            let approver = approval.approver.as_deref();
            return ApprovalStanding::Decided { decision, approver, at: approval.decided_at };
        }
        let waiting = match gate {
            Gate::Stage(facts) => {
                self.approving() && self.approval().is_some_and(|current| std::ptr::eq(current, facts))
            }
            Gate::Pause(pause, _) => self.open_pause().is_some_and(|open| open.hook_id == pause.hook_id),
        };
        match (waiting, self.status) {
            (true, _) if now <= approval.expires_at => ApprovalStanding::Open,
            (true, _) | (false, Status::TimedOut) => ApprovalStanding::Expired { at: approval.expires_at },
            // A test stage that asked to overlook its failure: nobody deciding in time failed the run.
            (false, Status::Failed) if self.finished_at.is_some_and(|end| end >= approval.expires_at) => {
                ApprovalStanding::Expired { at: approval.expires_at }
            }
            (false, _) if gate.pause().is_some() && now > approval.expires_at => {
                ApprovalStanding::Expired { at: approval.expires_at }
            }
            _ => ApprovalStanding::Withdrawn { reason: self.reason.as_deref() },
        }
    }
}

/// What tests change of plans and runs.
#[cfg(any(test, feature = "testing"))]
impl Plan {
    /// The first deploy stage's target.
    pub fn target_mut(&mut self) -> &mut DeployTarget {
        &mut self.first_deploy_mut().target
    }

    /// The first deploy stage (a test's plan has one).
    fn first_deploy_mut(&mut self) -> &mut DeployStage {
        let deploy = self.stages.iter_mut().find_map(|stage| match &mut stage.kind {
            StageKind::Deploy(deploy) => Some(deploy),
            StageKind::Approval(_) | StageKind::Test(_) => None,
        });
        deploy.expect("a plan has a deploy stage")
    }

    /// The first approval stage's approval.
    pub fn approval_mut(&mut self) -> Option<&mut Approval> {
        self.stages.iter_mut().find_map(|stage| match &mut stage.kind {
            StageKind::Approval(approval) => Some(approval),
            StageKind::Deploy(_) | StageKind::Test(_) => None,
        })
    }

    /// The first deploy stage's `deploy.timeout`.
    pub fn timeout_mut(&mut self) -> &mut Option<u32> {
        &mut self.first_deploy_mut().timeout_minutes
    }
}

#[cfg(any(test, feature = "testing"))]
impl Execution {
    /// The facts of the last deploy stage the run entered.
    pub fn deploy_mut(&mut self) -> Option<&mut DeployFacts> {
        self.stages.iter_mut().rev().find_map(|record| record.deploy.as_mut())
    }

    /// Records `facts` as the deployment of the stage `deploy` (replacing what it recorded).
    pub fn set_deploy(&mut self, facts: DeployFacts) {
        self.stages.retain(|record| record.name != Stage::DEPLOY);
        self.stages.push(StageRecord { deploy: Some(facts), ..StageRecord::new(Stage::DEPLOY) });
    }

    /// Records `facts` as the approval of the stage `approval` (replacing what it recorded), before any deployment.
    pub fn set_approval(&mut self, facts: ApprovalFacts) {
        self.stages.retain(|record| record.name != Stage::APPROVAL);
        self.stages.insert(0, StageRecord { approval: Some(facts), ..StageRecord::new(Stage::APPROVAL) });
    }
}

impl PipelineState {
    /// The state of a pipeline that has never run.
    pub fn new(pipeline: impl Into<String>, mode: ExecutionMode) -> Self {
        Self {
            pipeline: pipeline.into(),
            mode,
            next_seq: 1,
            executions: Vec::new(),
            pending: Vec::new(),
            effect_seq: 0,
            parked: Vec::new(),
            refs: Vec::new(),
            freeze: None,
        }
    }

    /// The freeze that holds, if any: one whose end has passed holds until the reconciler's look lifts it (within 5
    /// minutes), so that the runs it held go first.
    pub fn frozen(&self) -> Option<&Freeze> {
        self.freeze.as_deref()
    }

    pub fn execution(&self, id: &ExecutionId) -> Option<&Execution> {
        self.executions.iter().find(|execution| &execution.id == id)
    }

    /// The execution that holds `stage`, if any.
    pub fn holder_of(&self, stage: Stage) -> Option<&Execution> {
        self.executions.iter().find(|execution| execution.status == Status::Running(stage))
    }

    /// Executions not yet finished, oldest first.
    pub fn active(&self) -> impl Iterator<Item = &Execution> {
        self.executions.iter().filter(|execution| !execution.status.is_finished())
    }

    /// How many executions wait for a stage.
    pub fn waiting(&self) -> usize {
        self.executions.iter().filter(|execution| matches!(execution.status, Status::Waiting(_))).count()
    }

    /// The pipeline's copy of run `item` (the run's own item, as stored) while the run is in progress: it holds what
    /// the run learnt at the stage it is at, which its item does not ([`Execution::own_item_due`]). `None` once the
    /// run ended, or if the copy is abridged or gone (the item was written since).
    pub fn in_progress_copy(&self, item: &Execution) -> Option<&Execution> {
        let copy = self.execution(&item.id).filter(|copy| !copy.abridged);
        copy.filter(|_| !item.status.is_finished())
    }

    /// Sets apart what the last save kept apart ([`Execution::set_apart`]), as the state is read back: what the
    /// next save is decided from, so that each batch of pauses is written once.
    pub fn set_apart(&mut self) {
        for execution in &mut self.executions {
            execution.set_apart();
        }
    }

    /// The state as the pipeline's item stores it: each finished run abridged ([`Execution::abridged`]) once no
    /// effect waiting in the outbox or parked there needs what it did at its stages (the stop of a deployment past its
    /// deadline, a hook's answer). Its whole record is its own item, written in the save that ended it; the pipeline's
    /// item keeps what tells a repeated or an older push (its source), so that the item does not grow with the
    /// stages, pauses and checks of the runs it remembers. The pauses of the stages a run went past are kept apart
    /// ([`Execution::set_apart`]).
    pub fn stored(&self) -> PipelineState {
        let kept = |effect: &Effect| {
            !matches!(effect.kind(), EffectKind::Publish | EffectKind::NotifyOutcome | EffectKind::ReportToGitHub)
        };
        let effects = self.pending.iter().map(|p| &p.effect).chain(self.parked.iter().map(|p| &p.effect));
        let needed: Vec<&ExecutionId> =
            effects.filter(|effect| kept(effect)).filter_map(Effect::execution_id).collect();
        let mut stored = self.clone();
        for execution in &mut stored.executions {
            if execution.status.is_finished() && !needed.contains(&&execution.id) {
                execution.stages.clear();
                execution.abridged = true;
            }
        }
        stored.set_apart();
        stored
    }
}

/// `text`, cut to at most `max` bytes (at a character boundary, ending in `…` when cut): every string that comes from
/// outside is bounded before it is stored, so that a pipeline's state stays far below DynamoDB's 400 KB item limit.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
