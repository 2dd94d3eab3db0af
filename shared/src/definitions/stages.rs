//! A pipeline's stages: the build, then a list of named stages, each an approval, a deployment or a test.
//!
//! A pipeline written with the `[approval]` and `[deploy]` tables has the stages `approval` (when it has one) and
//! `deploy`: the names its runs have always been stored with.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Approval, DeployTarget};

/// The longest stage name.
pub const MAX_STAGE_NAME: usize = 32;

/// The name of a stage: `build`, or one of the pipeline's stages. At most [`MAX_STAGE_NAME`] characters of `a-z`,
/// `0-9`, `-` and `_`, starting with a letter; small enough to be copied like a number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stage {
    len: u8,
    bytes: [u8; MAX_STAGE_NAME],
}

impl Stage {
    /// Every run's first stage.
    pub const BUILD: Stage = Stage::named("build");
    /// The approval stage of a pipeline written with an `[approval]` table.
    pub const APPROVAL: Stage = Stage::named("approval");
    /// The deploy stage of a pipeline written with a `[deploy]` table.
    pub const DEPLOY: Stage = Stage::named("deploy");

    const fn named(name: &str) -> Stage {
        let source = name.as_bytes();
        let mut bytes = [0; MAX_STAGE_NAME];
        let mut at = 0;
        while at < source.len() && at < MAX_STAGE_NAME {
            bytes[at] = source[at];
            at += 1;
        }
        Stage { len: at as u8, bytes }
    }

    /// The stage called `name`, if that is a stage name.
    pub fn new(name: &str) -> Option<Stage> {
        is_stage_name(name).then(|| Stage::named(name))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// Whether `name` may name a stage.
fn is_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_STAGE_NAME
        && chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stage({})", self.as_str())
    }
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Stage::new(&name).ok_or_else(|| serde::de::Error::custom(format!("{name:?} is not a stage name")))
    }
}

/// One stage of a pipeline, after its build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageDefinition {
    pub name: Stage,
    #[serde(flatten)]
    pub kind: StageKind,
}

/// What a stage does: ask a person, deploy the build, or test the release where an earlier stage deployed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Approval(Approval),
    Deploy(Box<DeployStage>),
    Test(TestStage),
}

/// A stage that tests the release: a CodeBuild project run on the run's commit, whose build and test reports say
/// whether the release goes on, or HTTP checks sluice runs itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestStage {
    /// What tests: `test.codebuild` or `test.checks`.
    #[serde(flatten)]
    pub run: TestRun,
    /// `test.timeout`, in minutes: CodeBuild's own build timeout for the test build (the project's unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<u32>,
    /// What a failure does (`test.on_failure`).
    #[serde(default, skip_serializing_if = "OnFailure::is_fail")]
    pub on_failure: OnFailure,
}

/// What tests a test stage's release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestRun {
    /// A CodeBuild project, run on the run's commit (`codebuild = "web-e2e"`).
    #[serde(rename = "codebuild")]
    CodeBuild(String),
    /// HTTP checks, run by the hooks function as a deploy stage's are (`checks = [...]`); each check's `hook` is
    /// [`TEST_CHECKS`].
    #[serde(rename = "checks")]
    Checks(Vec<super::Check>),
}

/// The `hook` of a test stage's checks.
pub const TEST_CHECKS: &str = "Test";

impl TestStage {
    /// The CodeBuild project that tests, if a project does.
    pub fn codebuild(&self) -> Option<&str> {
        match &self.run {
            TestRun::CodeBuild(project) => Some(project),
            TestRun::Checks(_) => None,
        }
    }

    /// The HTTP checks that test, if checks do.
    pub fn checks(&self) -> &[super::Check] {
        match &self.run {
            TestRun::Checks(checks) => checks,
            TestRun::CodeBuild(_) => &[],
        }
    }
}

/// What a test stage's failure does: end the run (`fail`), or ask the pipeline's approvers whether the release goes
/// on all the same (`ask`): approved, it goes on; rejected, or not decided in time, the run fails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    #[default]
    Fail,
    /// Asked as the pipeline's first approval stage asks: its topic, its timeout.
    Ask(Approval),
}

impl OnFailure {
    fn is_fail(&self) -> bool {
        matches!(self, OnFailure::Fail)
    }
}

/// A stage that deploys the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployStage {
    pub target: DeployTarget,
    /// `deploy.timeout`, in minutes: how long beyond what its strategy may wait the deployment may take
    /// ([`crate::deploy::deadline`]); 60 minutes unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<u32>,
    /// `soak`, in seconds: how long the release must have run here, once deployed, before the next stage takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_secs: Option<u64>,
    /// `soak_alarms` and `strict_alarms`: the CloudWatch alarms that watch the soak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_alarms: Option<SoakAlarms>,
    /// The GitHub environment the stage's Deployments are for, as written (`environment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `entry_alarms` and `entry_timeout`: the CloudWatch alarms that keep runs out of the stage while any is in
    /// ALARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_alarms: Option<EntryAlarms>,
    /// `windows` and `deny` (the stage's, else the pipeline's): when the stage may start deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<super::Calendar>,
}

/// The CloudWatch alarms that keep runs out of a deploy stage: while any is in ALARM, a run that reaches the stage
/// waits before its deployment starts, for at most `timeout_secs`, then fails naming them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryAlarms {
    pub names: Vec<String>,
    pub timeout_secs: u64,
}

/// The CloudWatch alarms that watch a deploy stage's soak: one that moves into ALARM during the soak fails the stage
/// and rolls the service back. One already in ALARM when the deployment started is reported and does not block,
/// unless `strict`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoakAlarms {
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl DeployStage {
    /// A stage deploying to `target`, with nothing else said: the defaults of its deadline, no soak, no gate.
    pub fn of(target: DeployTarget) -> Self {
        Self {
            target,
            timeout_minutes: None,
            soak_secs: None,
            soak_alarms: None,
            environment: None,
            entry_alarms: None,
            calendar: None,
        }
    }

    /// The alarms that watch the stage's soak (none without them).
    pub fn alarms(&self) -> &[String] {
        self.soak_alarms.as_ref().map_or(&[], |alarms| alarms.names.as_slice())
    }

    /// Whether the stage keeps runs out at times: its `windows`, `deny` periods or `entry_alarms`.
    pub fn gated(&self) -> bool {
        self.entry_alarms.is_some() || self.calendar.is_some()
    }

    /// Whether an alarm already in ALARM when the deployment started blocks the stage too (`strict_alarms`).
    pub fn strict_alarms(&self) -> bool {
        self.soak_alarms.as_ref().is_some_and(|alarms| alarms.strict)
    }
}

impl StageDefinition {
    pub fn deploy(&self) -> Option<&DeployStage> {
        match &self.kind {
            StageKind::Deploy(deploy) => Some(deploy),
            StageKind::Approval(_) | StageKind::Test(_) => None,
        }
    }

    pub fn approval(&self) -> Option<&Approval> {
        match &self.kind {
            StageKind::Approval(approval) => Some(approval),
            StageKind::Deploy(_) | StageKind::Test(_) => None,
        }
    }

    pub fn test(&self) -> Option<&TestStage> {
        match &self.kind {
            StageKind::Test(test) => Some(test),
            StageKind::Approval(_) | StageKind::Deploy(_) => None,
        }
    }

    /// `approval`, `deploy` or `test`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            StageKind::Approval(_) => "approval",
            StageKind::Deploy(_) => "deploy",
            StageKind::Test(_) => "test",
        }
    }
}

/// The stages of a pipeline written with the `[approval]` and `[deploy]` tables: `approval` (if it has one), then
/// `deploy`.
pub fn table_stages(
    approval: Option<Approval>,
    deploy: DeployTarget,
    timeout_minutes: Option<u32>,
) -> Vec<StageDefinition> {
    let approval =
        approval.map(|approval| StageDefinition { name: Stage::APPROVAL, kind: StageKind::Approval(approval) });
    let deploy = StageDefinition {
        name: Stage::DEPLOY,
        kind: StageKind::Deploy(Box::new(DeployStage { timeout_minutes, ..DeployStage::of(deploy) })),
    };
    approval.into_iter().chain([deploy]).collect()
}

/// Whether `stages` are what `[approval]` and `[deploy]` tables make: stages named `approval` and `deploy` only.
pub fn table_shaped(stages: &[StageDefinition]) -> bool {
    stages.iter().all(|stage| stage.name == Stage::APPROVAL || stage.name == Stage::DEPLOY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_name_is_short_lower_case_and_starts_with_a_letter() {
        for good in ["build", "staging", "prod-eu_1", "a"] {
            assert_eq!(Stage::new(good).map(|stage| stage.to_string()), Some(good.to_owned()));
        }
        for bad in ["", "Staging", "1st", "-x", "stage name", "ü", &"x".repeat(MAX_STAGE_NAME + 1)] {
            assert_eq!(Stage::new(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_stage_is_stored_as_its_name() {
        let staging = Stage::new("staging").unwrap();
        assert_eq!(serde_json::to_string(&staging).unwrap(), "\"staging\"");
        assert_eq!(serde_json::from_str::<Stage>("\"deploy\"").unwrap(), Stage::DEPLOY);
        assert!(serde_json::from_str::<Stage>("\"Not A Stage\"").is_err());
    }
}
