//! Domain, pure: pipeline definitions, the `pipelines.toml` a user writes, parsed and validated into typed pipelines.
//!
//! Loading checks everything at once and every error names the pipeline, the field, the line and the column.
//! The format is documented in `infra/pipelines.example.toml` and in the README.

pub mod calendar;
mod error;
mod raw;
mod stages;
mod validate;

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

pub use calendar::{Calendar, Deny, Window};
pub use error::{DefinitionError, DefinitionErrors};
pub use stages::{
    DeployStage, EntryAlarms, MAX_STAGE_NAME, OnFailure, SoakAlarms, Stage, StageDefinition, StageKind, TEST_CHECKS,
    TestRun, TestStage, table_shaped, table_stages,
};
pub use validate::{
    MAX_CHECK_BODY, MAX_CHECK_RETRIES, MAX_CHECKS, MAX_ENV_NAME, MAX_ENV_VALUE, MAX_ENV_VARIABLES, MAX_SOAK_ALARM_TEXT,
    MAX_SOAK_ALARMS, MAX_STAGES, MAX_URL, is_pipeline_name,
};

/// Where a pipeline's concurrent executions go (CodePipeline's execution modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// A newer execution replaces an older one waiting for the same stage; the newest commit wins.
    #[default]
    Superseded,
    /// Executions wait their turn and all run, one stage-holder at a time, in order of arrival.
    Queued,
}

/// The largest definitions file sluice stores, in bytes: the published text is one DynamoDB item (400 KB at most,
/// with its revision and time), written twice (the current one and the revision's).
pub const MAX_TEXT: usize = 350 * 1024;

/// All pipelines of one definitions file, by name.
#[derive(Debug, Clone)]
pub struct Definitions {
    pipelines: BTreeMap<String, Pipeline>,
    /// What `check` found that runs, but perhaps not as meant (none when read as published).
    warnings: Vec<DefinitionError>,
}

impl Definitions {
    /// Reads published definitions. `origin` names the text in errors (a path, or `pipelines.toml`). What an
    /// earlier version of sluice published stays readable: the rules `check` added since refuse only new files; a
    /// filter whose patterns cannot be used together accepts nothing.
    pub fn parse(origin: &str, text: &str) -> Result<Self, DefinitionErrors> {
        let raw = raw::parse(origin, text)?;
        let (pipelines, _) = validate::validate(origin, text, raw, (false, |_| true))?;
        Ok(Self { pipelines, warnings: Vec::new() })
    }

    /// Checks a definitions file as `sluice check` and `sluice publish` do: what it accepts runs as written, and
    /// what sluice could not store or AWS and GitHub would refuse later is refused now, every mistake at its place.
    pub fn check(origin: &str, text: &str) -> Result<Self, DefinitionErrors> {
        if text.len() > MAX_TEXT {
            return Err(DefinitionErrors(vec![error::DefinitionError {
                origin: origin.to_owned(),
                line: 1,
                column: 1,
                pipeline: None,
                field: String::new(),
                message: format!(
                    "the file is {} bytes; sluice stores at most {MAX_TEXT} (its table's items hold 400 KB)",
                    text.len()
                ),
            }]));
        }
        let raw = raw::parse(origin, text)?;
        let known_zone = |name: &str| name.parse::<chrono_tz::Tz>().is_ok();
        let (pipelines, warnings) = validate::validate(origin, text, raw, (true, known_zone))?;
        Ok(Self { pipelines, warnings })
    }

    /// What runs as written but perhaps not as meant, in the order of the file: a check that may outlast the time
    /// its hook has, two pipelines deploying one service. Told by `check` once the file has no errors.
    pub fn warnings(&self) -> &[DefinitionError] {
        &self.warnings
    }

    pub fn get(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pipeline> {
        self.pipelines.values()
    }

    pub fn len(&self) -> usize {
        self.pipelines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }

    /// The pipelines whose source is `repository` (`owner/name`, compared without regard to case, as GitHub does).
    pub fn for_repository<'a>(&'a self, repository: &'a str) -> impl Iterator<Item = &'a Pipeline> {
        self.pipelines.values().filter(move |pipeline| pipeline.source.repository.eq_ignore_ascii_case(repository))
    }
}

/// One validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub mode: ExecutionMode,
    pub source: Source,
    pub build: Build,
    /// What runs after the build, in order: at least one stage, every deploy stage deploying the same build.
    pub stages: Vec<StageDefinition>,
    pub notify: Option<Notify>,
    /// Whether (and as which environment) runs are shown on GitHub.
    pub github: Option<GitHubReport>,
}

impl Pipeline {
    /// The pipeline's deploy stages, in order, with their names.
    pub fn deploy_stages(&self) -> impl Iterator<Item = (Stage, &DeployStage)> {
        self.stages.iter().filter_map(|stage| stage.deploy().map(|deploy| (stage.name, deploy)))
    }

    /// The pipeline's approval stages, in order.
    pub fn approval_stages(&self) -> impl Iterator<Item = (Stage, &Approval)> {
        self.stages.iter().filter_map(|stage| stage.approval().map(|approval| (stage.name, approval)))
    }
}

/// What tests of pipelines written with `[approval]` and `[deploy]` tables read.
#[cfg(any(test, feature = "testing"))]
impl Pipeline {
    /// The first deploy stage's target.
    pub fn deploy(&self) -> &DeployTarget {
        &self.deploy_stages().next().expect("a pipeline has a deploy stage").1.target
    }

    /// The first deploy stage's `deploy.timeout`.
    pub fn deploy_timeout_minutes(&self) -> Option<u32> {
        self.deploy_stages().next().and_then(|(_, deploy)| deploy.timeout_minutes)
    }

    /// The first approval stage's approval.
    pub fn approval(&self) -> Option<&Approval> {
        self.approval_stages().next().map(|(_, approval)| approval)
    }
}

/// Which pushes start the pipeline.
#[derive(Debug, Clone)]
pub struct Source {
    /// `owner/name`.
    pub repository: String,
    /// Branches that trigger; when neither branches nor tags are given, only the repository's default branch does.
    pub branches: Option<GlobFilter>,
    /// Tags that trigger; none unless given.
    pub tags: Option<GlobFilter>,
    /// Changed files that trigger a branch push; any file unless given.
    pub paths: Option<GlobFilter>,
}

impl Source {
    /// Whether a push to `git_ref` (`refs/heads/..` or `refs/tags/..`) is one this pipeline builds.
    pub fn accepts_ref(&self, git_ref: &str, default_branch: &str) -> bool {
        if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
            match (&self.branches, &self.tags) {
                (Some(filter), _) => filter.accepts(branch),
                (None, Some(_)) => false,
                (None, None) => branch == default_branch,
            }
        } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
            self.tags.as_ref().is_some_and(|filter| filter.accepts(tag))
        } else {
            false
        }
    }

    /// Whether a push that changed `files` is one this pipeline builds. A push that lists no files (a tag, or an
    /// empty commit) is accepted: there is nothing to filter on.
    pub fn accepts_files<'a>(&self, files: impl IntoIterator<Item = &'a str>) -> bool {
        let Some(filter) = &self.paths else { return true };
        let mut any = false;
        for file in files {
            if filter.accepts(file) {
                return true;
            }
            any = true;
        }
        !any
    }
}

/// Include and exclude globs (`*` stays within one path segment, `**` crosses them). A name is accepted when it
/// matches an include (or there are none) and no exclude.
#[derive(Debug, Clone)]
pub struct GlobFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    include_set: GlobSet,
    exclude_set: GlobSet,
    usable: bool,
}

impl GlobFilter {
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Result<Self, globset::Error> {
        fn set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
            let mut builder = GlobSetBuilder::new();
            for pattern in patterns {
                builder.add(GlobBuilder::new(pattern).literal_separator(true).build()?);
            }
            builder.build()
        }
        Ok(Self { include_set: set(&include)?, exclude_set: set(&exclude)?, include, exclude, usable: true })
    }

    /// A filter whose patterns could not be made into one (published before `check` refused them): it accepts
    /// nothing, rather than everything.
    pub(crate) fn unusable(include: Vec<String>, exclude: Vec<String>) -> Self {
        Self { include, exclude, include_set: GlobSet::empty(), exclude_set: GlobSet::empty(), usable: false }
    }

    pub fn accepts(&self, name: &str) -> bool {
        self.usable && (self.include.is_empty() || self.include_set.is_match(name)) && !self.exclude_set.is_match(name)
    }
}

/// The CodeBuild project that builds the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub project: String,
    /// Environment variable overrides passed to StartBuild.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// A manual approval by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The SNS topic whose subscribers receive the approve/reject links.
    pub topic_arn: String,
    /// How long a request stays open (5 minutes to 60 days; 7 days unless given).
    pub timeout_secs: u64,
    /// Who may decide, each through a link of their own; none: whoever holds the link, one decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Approvers>,
}

/// An approval stage's named approvers (`approvers`, `required`, `forbid_pusher`, `operators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvers {
    /// Their email addresses, lowercase: each gets a link of their own (SNS messages filtered on the
    /// [`APPROVER_ATTRIBUTE`] message attribute).
    pub emails: Vec<String>,
    /// How many distinct approvers (and operators) must approve; one rejection rejects.
    pub required: usize,
    /// Whether the person who pushed the commit is refused as an approver of its run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forbid_pusher: bool,
    /// IAM principal ARN patterns (`*` for any characters, `?` for any one) whose `sluice approve` and `sluice reject` count as
    /// themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<String>,
}

/// The SNS message attribute that carries the approver a personal approval request is for: each approver's
/// subscription accepts only messages whose attribute names them (`{"sluice_approver": ["alice@example.com"]}`).
pub const APPROVER_ATTRIBUTE: &str = "sluice_approver";
/// The most approvers an approval stage names (as GitHub's required reviewers), and the longest address of one
/// (each run at the stage keeps who approved).
pub const MAX_APPROVERS: usize = 6;
pub const MAX_APPROVER_EMAIL: usize = 100;
/// The most operator ARN patterns an approval stage names, and the longest.
pub const MAX_OPERATORS: usize = 5;
pub const MAX_OPERATOR_PATTERN: usize = 200;

impl Approvers {
    /// Whether `arn` (the caller of `sluice approve`) is one of the operators: it, or the role an assumed-role
    /// session is of (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` as `arn:aws:iam::ACCOUNT:role/NAME`, any path),
    /// matches a pattern.
    pub fn operator(&self, arn: &str) -> bool {
        let identity = operator_identity(arn);
        self.operators.iter().any(|pattern| glob_matches(pattern, arn) || glob_matches(pattern, &identity))
    }
}

/// The account and role name of an assumed-role session's ARN.
fn assumed_role(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(":sts::")?;
    let (account, rest) = rest.split_once(":assumed-role/")?;
    let (name, _session) = rest.split_once('/')?;
    Some((account, name))
}

/// Who an operator is, as an approval counts them: an assumed role's session as its role
/// (`arn:aws:iam::ACCOUNT:role/NAME`), so that one role counts once whatever its sessions are named; any other
/// principal as its ARN.
pub fn operator_identity(arn: &str) -> String {
    let partition = arn.strip_prefix("arn:").and_then(|rest| rest.split(':').next()).unwrap_or("aws");
    match assumed_role(arn) {
        Some((account, name)) => format!("arn:{partition}:iam::{account}:role/{name}"),
        None => arn.to_owned(),
    }
}

/// Whether `text` matches `pattern` as IAM reads its wildcards: `*` any characters (none too), `?` any one, every
/// other character itself. One pass with one backtrack point: linear in practice, never exponential.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    // The last `*` seen, and where in the text it began to match.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` take one more character, and try again after it.
                Some((at, from)) => {
                    star = Some((at, from + 1));
                    p = at + 1;
                    t = from + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Where a run's outcome is announced once it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// The SNS topic whose subscribers get each run's outcome: a plain-text email, JSON for other protocols.
    pub topic_arn: String,
}

/// Runs shown on GitHub: a commit status `sluice/<pipeline>` on the pushed commit, and a Deployment to
/// `environment` with its states. Needs the stack's GitHub token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubReport {
    /// The GitHub environment the Deployments are for (the pipeline's name unless the definitions say).
    pub environment: String,
}

/// Where and how the pipeline deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum DeployTarget {
    /// CodeDeploy ECS blue/green: <https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-steps-ecs.html>.
    BlueGreen(BlueGreen),
    /// ECS rolling update: <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html>.
    Rolling(Rolling),
    /// ECS's own blue/green, linear or canary deployment, with Lambda lifecycle hooks:
    /// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html>.
    EcsNative(EcsNative),
}

impl DeployTarget {
    pub fn strategy(&self) -> &'static str {
        match self {
            DeployTarget::BlueGreen(_) => "blue_green",
            DeployTarget::Rolling(_) => "rolling",
            DeployTarget::EcsNative(native) => native.shift.strategy(),
        }
    }

    /// The container the pipeline names for the built image, if it names one.
    pub fn container(&self) -> Option<&str> {
        match self {
            DeployTarget::BlueGreen(target) => target.container.as_deref(),
            DeployTarget::Rolling(target) => target.container.as_deref(),
            DeployTarget::EcsNative(target) => target.container.as_deref(),
        }
    }

    /// Whether the build's task definition may reach into the host (`deploy.allow_host`).
    pub fn allows_host(&self) -> bool {
        match self {
            DeployTarget::BlueGreen(target) => target.allow_host,
            DeployTarget::Rolling(target) => target.allow_host,
            DeployTarget::EcsNative(target) => target.allow_host,
        }
    }

    /// The ECS cluster and service deployed to, as written (names or ARNs).
    pub fn ecs_service(&self) -> (&str, &str) {
        match self {
            DeployTarget::BlueGreen(target) => (&target.cluster, &target.service),
            DeployTarget::Rolling(target) => (&target.cluster, &target.service),
            DeployTarget::EcsNative(target) => (&target.cluster, &target.service),
        }
    }

    pub fn checks(&self) -> &[Check] {
        match self {
            DeployTarget::BlueGreen(target) => &target.checks,
            DeployTarget::Rolling(target) => &target.checks,
            DeployTarget::EcsNative(target) => &target.checks,
        }
    }

    /// The checks run once a rolling update has completed (none for blue/green, whose checks run at its hooks).
    pub fn after_rollout_checks(&self) -> Vec<Check> {
        match self {
            DeployTarget::BlueGreen(_) | DeployTarget::EcsNative(_) => Vec::new(),
            DeployTarget::Rolling(target) => {
                target.checks.iter().filter(|check| check.hook == AFTER_ROLLOUT).cloned().collect()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreen {
    pub cluster: String,
    pub service: String,
    pub application: String,
    pub deployment_group: String,
    /// `CodeDeployDefault.ECSAllAtOnce` unless given; canary and linear configs work the same way.
    pub deployment_config: String,
    /// The container the built image goes in, instead of those whose image is `<IMAGE1_NAME>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub checks: Vec<Check>,
    /// `deploy.allow_host`: the build's task definition may reach into the host (host PID or IPC namespace,
    /// privileged containers, host paths as volumes). Off unless given: `taskdef.json` comes from any committer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_host: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rolling {
    pub cluster: String,
    pub service: String,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: CircuitBreaker,
    /// The container the built image goes in, instead of those whose image is `<IMAGE1_NAME>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub checks: Vec<Check>,
    /// `deploy.allow_host`: the build's task definition may reach into the host (host PID or IPC namespace,
    /// privileged containers, host paths as volumes). Off unless given: `taskdef.json` comes from any committer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_host: bool,
}

/// An ECS-native deployment (`ecs_blue_green`, `ecs_linear`, `ecs_canary`): sluice updates the service with the
/// strategy, its Lambda lifecycle hooks (the hooks function at each stage with checks), bake time, alarms and
/// circuit breaker, and ECS moves the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsNative {
    pub cluster: String,
    pub service: String,
    pub shift: TrafficShift,
    /// How long both revisions run once all production traffic is on the new one (0 to 1440).
    pub bake_time_minutes: u32,
    /// CloudWatch alarms that roll the deployment back when in ALARM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    pub circuit_breaker: CircuitBreaker,
    /// The container the built image goes in, instead of those whose image is `<IMAGE1_NAME>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub checks: Vec<Check>,
    /// A person's approval inside the shift: ECS pauses the deployment at a stage until sluice continues it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<PauseApproval>,
    /// `deploy.allow_host`: the build's task definition may reach into the host (host PID or IPC namespace,
    /// privileged containers, host paths as volumes). Off unless given: `taskdef.json` comes from any committer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_host: bool,
}

/// An approval inside an ECS-native deployment: a `PAUSE` lifecycle hook at `stage`
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html>). At each pause sluice
/// mails the approvers a link to the approval page; a decision calls ContinueServiceDeployment with CONTINUE or
/// ROLLBACK. At `PRE_PRODUCTION_TRAFFIC_SHIFT` (before every step of a linear or canary shift) the pause before the
/// first step, when no production traffic has moved yet, is continued without asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseApproval {
    /// One of [`PAUSE_STAGES`].
    pub stage: String,
    /// The SNS topic of the approvers: the pause's own, or the pipeline's `[approval]` topic.
    pub topic_arn: String,
    /// How long ECS waits for a decision (1 minute to 14 days; 24 hours unless given).
    pub timeout_minutes: u32,
    /// What ECS does when nobody decides in time (ROLLBACK unless given).
    pub on_timeout: PauseAction,
}

/// What a paused ECS deployment does next: ContinueServiceDeployment's `action`, and a pause's timeout action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseAction {
    Continue,
    Rollback,
}

impl PauseAction {
    /// `CONTINUE` or `ROLLBACK`, as ECS spells it.
    pub fn ecs_name(self) -> &'static str {
        match self {
            PauseAction::Continue => "CONTINUE",
            PauseAction::Rollback => "ROLLBACK",
        }
    }

    /// `continue` or `rollback`, as a pipeline definition spells it.
    pub fn name(self) -> &'static str {
        match self {
            PauseAction::Continue => "continue",
            PauseAction::Rollback => "rollback",
        }
    }
}

/// The lifecycle stages at which ECS can pause a deployment: all but the two where traffic moves.
pub const PAUSE_STAGES: [&str; 6] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];

/// The stage before each step of production traffic.
pub const PRE_PRODUCTION_TRAFFIC_SHIFT: &str = "PRE_PRODUCTION_TRAFFIC_SHIFT";

impl EcsNative {
    /// The lifecycle stages at which the pipeline runs checks, in lifecycle order.
    pub fn checked_stages(&self) -> Vec<&'static str> {
        ECS_STAGES.into_iter().filter(|stage| self.checks.iter().any(|check| check.hook == *stage)).collect()
    }
}

/// How an ECS-native deployment moves production traffic. Percentages are in tenths (ECS takes multiples of 0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrafficShift {
    /// All at once (`BLUE_GREEN`).
    BlueGreen,
    /// `step_tenths` every `step_bake_time_minutes` (`LINEAR`).
    Linear { step_tenths: u32, step_bake_time_minutes: u32 },
    /// `tenths` first, the rest after `bake_time_minutes` (`CANARY`).
    Canary { tenths: u32, bake_time_minutes: u32 },
}

impl TrafficShift {
    /// The share of production traffic (tenths of a percent) on the new revision when ECS pauses at `stage` for the
    /// `earlier`+1-th time: `PRE_PRODUCTION_TRAFFIC_SHIFT` comes before each step of a linear or canary shift.
    pub fn production_at_pause(&self, stage: &str, earlier: usize) -> u32 {
        let steps_done = u32::try_from(earlier).unwrap_or(u32::MAX);
        match stage {
            "POST_PRODUCTION_TRAFFIC_SHIFT" => 1000,
            PRE_PRODUCTION_TRAFFIC_SHIFT => match self {
                TrafficShift::BlueGreen => 0,
                TrafficShift::Linear { step_tenths, .. } => step_tenths.saturating_mul(steps_done).min(1000),
                TrafficShift::Canary { .. } if steps_done == 0 => 0,
                TrafficShift::Canary { tenths, .. } => *tenths,
            },
            _ => 0,
        }
    }

    pub fn strategy(&self) -> &'static str {
        match self {
            TrafficShift::BlueGreen => "ecs_blue_green",
            TrafficShift::Linear { .. } => "ecs_linear",
            TrafficShift::Canary { .. } => "ecs_canary",
        }
    }
}

/// The lifecycle stages of an ECS-native deployment at which a Lambda hook may run, in order
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html>).
pub const ECS_STAGES: [&str; 8] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];

/// ECS's deployment circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

/// An HTTP check run at a lifecycle hook: the deployment goes on only if `url` answers `expect_status` in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// A CodeDeploy ECS lifecycle event (blue/green), `AfterRollout` (rolling) or an ECS lifecycle stage
    /// ([`ECS_STAGES`], ECS-native strategies).
    pub hook: String,
    /// `GET` unless given (one of [`CHECK_METHODS`]); no request body is sent.
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    pub expect_status: u16,
    /// Text the response body must contain (in its first 64 KiB), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    /// How long one attempt may take.
    pub timeout_secs: u64,
    /// Attempts after the first that fails (0 unless given), each `interval_secs` after the last.
    #[serde(default)]
    pub retries: u32,
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

impl Check {
    /// A check at `hook` that `GET url` answers 200 within the default timeout, tried once.
    pub fn new(hook: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            hook: hook.into(),
            method: default_method(),
            url: url.into(),
            expect_status: 200,
            expect_body: None,
            timeout_secs: validate::DEFAULT_CHECK_TIMEOUT_SECS,
            retries: 0,
            interval_secs: default_interval(),
        }
    }
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_interval() -> u64 {
    validate::DEFAULT_CHECK_INTERVAL_SECS
}

/// The HTTP methods a check may use.
pub const CHECK_METHODS: [&str; 4] = ["GET", "HEAD", "POST", "OPTIONS"];

/// The lifecycle events of an ECS blue/green deployment that can run a hook
/// (<https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-hooks.html#appspec-hooks-ecs>).
pub const BLUE_GREEN_HOOKS: [&str; 5] =
    ["BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"];

/// The one point of a rolling update where sluice runs checks: after ECS reports the rollout COMPLETED. When they
/// fail, sluice updates the service back to the task definition it ran before.
pub const AFTER_ROLLOUT: &str = "AfterRollout";
pub const ROLLING_HOOKS: [&str; 1] = [AFTER_ROLLOUT];

/// How long the hooks function may run (its `Timeout` in `template.yaml`), and what it keeps of that time to record
/// a hook's result and answer: the checks of one call have the rest.
pub const HOOKS_FUNCTION_SECS: u64 = 300;
pub const HOOK_ANSWER_MARGIN_SECS: u64 = 5;
/// How long a rolling update's AfterRollout checks may take together: well within the hooks function's time and
/// the effect's lease ([`crate::pipeline::outbox::CHECKS_LEASE`]).
pub const AFTER_ROLLOUT_SECS: u64 = 240;

#[cfg(test)]
mod tests;
