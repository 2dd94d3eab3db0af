//! Turns the file as written into validated pipelines, collecting every error with its place.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use toml::Spanned;

use super::error::{DefinitionError, DefinitionErrors, LineIndex};
use super::raw::{
    RawApproval, RawBuild, RawCheck, RawDeploy, RawFilter, RawPauseApproval, RawPipeline, RawSource, RawStage, RawTest,
    RawTestCheck, Read,
};
use super::{
    AFTER_ROLLOUT_SECS, Approval, BLUE_GREEN_HOOKS, BlueGreen, Build, CHECK_METHODS, Check, CircuitBreaker,
    DeployTarget, ECS_STAGES, EcsNative, ExecutionMode, GitHubReport, GlobFilter, HOOK_ANSWER_MARGIN_SECS,
    HOOKS_FUNCTION_SECS, Notify, PAUSE_STAGES, PRE_PRODUCTION_TRAFFIC_SHIFT, PauseAction, PauseApproval, Pipeline,
    ROLLING_HOOKS, Rolling, Source, TrafficShift,
};
use super::{
    DeployStage, EntryAlarms, MAX_STAGE_NAME, OnFailure, SoakAlarms, Stage, StageDefinition, StageKind, TEST_CHECKS,
    TestRun, TestStage, table_stages,
};
use crate::pipeline::bounded;

#[path = "validate_approvers.rs"]
mod approvers;
#[path = "validate_calendar.rs"]
mod calendar;

const MINUTE: u64 = 60;
const DAY: u64 = 24 * 60 * MINUTE;
/// An approval stays open this long unless the pipeline says otherwise.
pub const DEFAULT_APPROVAL_TIMEOUT_SECS: u64 = 7 * DAY;
const APPROVAL_TIMEOUT_RANGE: (u64, u64) = (5 * MINUTE, 60 * DAY);
pub(super) const DEFAULT_CHECK_TIMEOUT_SECS: u64 = 10;
const CHECK_TIMEOUT_RANGE: (u64, u64) = (1, 5 * MINUTE);
pub(super) const DEFAULT_CHECK_INTERVAL_SECS: u64 = 5;
const CHECK_INTERVAL_RANGE: (u64, u64) = (1, 5 * MINUTE);
const DEFAULT_DEPLOYMENT_CONFIG: &str = "CodeDeployDefault.ECSAllAtOnce";
/// How long ECS waits at a pause for a decision: its own default and range
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookTimeoutConfiguration.html>).
pub const DEFAULT_PAUSE_TIMEOUT_MINUTES: u32 = 1440;
const PAUSE_TIMEOUT_RANGE: (u64, u64) = (MINUTE, 14 * DAY);
/// `deploy.timeout`: how long beyond what its strategy may wait a deployment may take.
const DEPLOY_TIMEOUT_RANGE: (u64, u64) = (MINUTE, 7 * DAY);

struct Checker<'a> {
    origin: &'a str,
    text: &'a str,
    /// Where each line starts, found once.
    lines: LineIndex,
    pipeline: Option<String>,
    errors: Vec<DefinitionError>,
    /// `sluice check`'s rules too, not only those published definitions were read by before them.
    strict: bool,
    /// Where a value stands in for one whose shape was wrong (and told so): nothing more is said there.
    stand_ins: BTreeSet<usize>,
    /// What runs as written but perhaps not as meant (`check` only).
    warnings: Vec<DefinitionError>,
    /// Whether the deploy table being read names a strategy sluice knows: what applies to which strategy is not
    /// told of one it does not (its own mistake is).
    strategy_known: bool,
    /// Where in the pipeline the values being read are, before their own field (`stages[1].`), if not at its top.
    place: String,
    /// Whether a name is an IANA time zone (`check`: the time zones' database; reading published definitions, which
    /// `check` passed: any), so that only what checks or judges windows links the database.
    known_zone: fn(&str) -> bool,
}

impl Checker<'_> {
    /// A mistake `sluice check` refuses, which published definitions written before it was a rule are still read
    /// with.
    fn refuse(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        if self.strict {
            self.error(span, field, message);
        }
    }

    fn error(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        if let Some(error) = self.placed(span, field, message.into()) {
            self.errors.push(error);
        }
    }

    /// What `sluice check` tells but lets run: someone may mean it.
    fn warn(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        if !self.strict {
            return;
        }
        if let Some(warning) = self.placed(span, field, message.into()) {
            self.warnings.push(warning);
        }
    }

    /// A message at its place in the current pipeline; none where a stand-in is.
    fn placed(&self, span: Range<usize>, field: &str, message: String) -> Option<DefinitionError> {
        if self.stand_ins.contains(&span.start) {
            return None;
        }
        let (line, column) = self.lines.line_column(self.text, span.start);
        Some(DefinitionError {
            origin: self.origin.to_owned(),
            line,
            column,
            pipeline: self.pipeline.clone(),
            field: format!("{}{field}", self.place).trim_end_matches('.').to_owned(),
            message,
        })
    }

    /// A required, non-empty string that matches `valid`.
    fn text(&mut self, value: &Spanned<String>, field: &str, valid: fn(&str) -> bool, what: &str) -> String {
        let text = value.get_ref().trim();
        if !valid(text) {
            self.error(value.span(), field, format!("{what} (got {:?})", bounded(value.get_ref(), SHOWN)));
        }
        text.to_owned()
    }

    /// As [`Checker::text`], then what AWS or GitHub would refuse later of a string of the right shape (`problem`),
    /// refused now.
    fn checked(
        &mut self,
        value: &Spanned<String>,
        field: &str,
        (valid, what): (fn(&str) -> bool, &str),
        problem: fn(&str) -> Option<String>,
    ) -> String {
        let text = self.text(value, field, valid, what);
        if valid(&text)
            && let Some(problem) = problem(&text)
        {
            self.refuse(value.span(), field, problem);
        }
        text
    }

    fn filter(&mut self, raw: Option<Spanned<RawFilter>>, field: &str) -> Option<GlobFilter> {
        let raw = raw?;
        let span = raw.span();
        let raw = raw.into_inner();
        // Whether every pattern is a glob (a pattern that is not was reported as such).
        let mut usable = true;
        let mut patterns = |list: Vec<Spanned<String>>, which: &str| -> Vec<String> {
            let name = format!("{field}.{which}");
            if let Some(beyond) = list.get(MAX_PATTERNS) {
                let message = format!("at most {MAX_PATTERNS} patterns (got {})", list.len());
                self.refuse(beyond.span(), &name, message);
            }
            let mut out = Vec::new();
            for (i, pattern) in list.into_iter().enumerate() {
                usable &= !pattern.get_ref().is_empty() && globset::Glob::new(pattern.get_ref()).is_ok();
                let name = format!("{name}[{i}]");
                let shown = bounded(pattern.get_ref(), SHOWN);
                if pattern.get_ref().is_empty() {
                    self.error(pattern.span(), &name, "a pattern cannot be empty");
                } else if pattern.get_ref().len() > MAX_PATTERN {
                    let message = format!("a pattern is at most {MAX_PATTERN} bytes (got {})", pattern.get_ref().len());
                    self.refuse(pattern.span(), &name, message);
                } else if let Err(error) = globset::Glob::new(pattern.get_ref()) {
                    self.error(pattern.span(), &name, format!("invalid glob {shown:?}: {}", error.kind()));
                }
                out.push(pattern.into_inner());
            }
            out
        };
        let include = patterns(raw.include, "include");
        let exclude = patterns(raw.exclude, "exclude");
        // `exclude` alone means every other branch or tag: almost never what someone means by a deploy trigger.
        // (An `include` of the wrong type was told, and stands in as an empty list.)
        if include.is_empty() && field != "source.paths" && self.stand_ins.range(span.clone()).next().is_none() {
            let every = if field == "source.tags" { "every tag" } else { "every branch" };
            let message = format!(
                "needs `include`: without it, the filter takes {every}{} (to mean that, write include = [\"**\"])",
                if exclude.is_empty() { "" } else { " but those excluded" }
            );
            self.refuse(span.clone(), field, message);
        }
        match GlobFilter::new(include.clone(), exclude.clone()) {
            Ok(filter) => Some(filter),
            Err(_) if !usable => Some(GlobFilter::unusable(include, exclude)),
            Err(error) => {
                // Each pattern is a glob; together they are too much for one matcher (its size limit).
                let message =
                    format!("these patterns cannot be used together ({}): use fewer or simpler ones", error.kind());
                self.refuse(span, field, message);
                Some(GlobFilter::unusable(include, exclude))
            }
        }
    }

    fn duration(&mut self, value: &Spanned<String>, field: &str, range: (u64, u64)) -> Option<u64> {
        match parse_duration(value.get_ref()) {
            Some(secs) if (range.0..=range.1).contains(&secs) => Some(secs),
            Some(_) => {
                let message = format!(
                    "must be between {} and {} (got {:?})",
                    format_duration(range.0),
                    format_duration(range.1),
                    value.get_ref()
                );
                self.error(value.span(), field, message);
                None
            }
            None => {
                let message = format!(
                    "must be a duration such as \"30s\", \"15m\", \"12h\" or \"7d\" (got {:?})",
                    value.get_ref()
                );
                self.error(value.span(), field, message);
                None
            }
        }
    }
}

/// The pipelines, and what `check` warns of (none unless `strict`), or every error.
pub(super) fn validate(
    origin: &str,
    text: &str,
    read: Read,
    (strict, known_zone): (bool, fn(&str) -> bool),
) -> Result<(BTreeMap<String, Pipeline>, Vec<DefinitionError>), DefinitionErrors> {
    let Read { file: raw, errors, stand_ins, lines } = read;
    let mut checker = Checker {
        origin,
        text,
        lines,
        pipeline: None,
        errors,
        strict,
        stand_ins,
        warnings: Vec::new(),
        strategy_known: true,
        place: String::new(),
        known_zone,
    };
    if raw.pipelines.is_empty() && checker.errors.is_empty() {
        checker.error(0..0, "pipelines", "no pipeline is defined: add a [pipelines.<name>] table");
    }
    let mut pipelines = BTreeMap::new();
    let mut services = Vec::new();
    let mut names = BTreeMap::new();
    for (name, pipeline) in raw.pipelines {
        checker.pipeline = Some(name.get_ref().clone());
        names.insert(name.get_ref().clone(), name.span());
        if !is_pipeline_name(name.get_ref()) {
            checker.error(name.span(), "", "a pipeline name is 1 to 64 letters, digits, '-' or '_'");
        }
        let deploys =
            pipeline.deploy.iter().chain(pipeline.stages.iter().flatten().filter_map(|stage| stage.deploy.as_ref()));
        let spans: Vec<Range<usize>> = deploys.map(|deploy| deploy.service.span()).collect();
        if let Some(pipeline) = validate_pipeline(&mut checker, &name, pipeline) {
            let stages = pipeline.deploy_stages().map(|(stage, _)| stage);
            services.extend(spans.into_iter().zip(stages).map(|(span, stage)| (span, pipeline.name.clone(), stage)));
            pipelines.insert(pipeline.name.clone(), pipeline);
        }
    }
    warn_shared_services(&mut checker, &pipelines, services);
    approvers::named_topics_across(&mut checker, &pipelines, &names);
    if checker.errors.is_empty() {
        checker.warnings.sort_by_key(|warning| (warning.line, warning.column));
        Ok((pipelines, checker.warnings))
    } else {
        checker.errors.sort_by_key(|error| (error.line, error.column));
        Err(DefinitionErrors(checker.errors))
    }
}

/// Two pipelines deploying one ECS service: each one's deployment replaces or collides with the other's, and the
/// service runs whichever went last. Told (`check` only) at the later one in the file, naming the earlier.
fn warn_shared_services(
    checker: &mut Checker<'_>,
    pipelines: &BTreeMap<String, Pipeline>,
    mut services: Vec<(Range<usize>, String, Stage)>,
) {
    if !checker.strict {
        return;
    }
    services.sort_by_key(|(span, _, _)| span.start);
    // By the names of cluster and service: only stages sharing both are compared, where ARNs name a place too.
    let target = |name: &str, stage: Stage| {
        let deploy = pipelines.get(name).and_then(|pipeline| pipeline.deploy_stages().find(|(s, _)| *s == stage));
        deploy.map(|(_, deploy)| deploy.target.ecs_service())
    };
    // By cluster and service names: where each deploy stage deploying them starts, its pipeline and its stage.
    type Deploying<'a> = Vec<(usize, &'a str, Stage)>;
    let mut seen: HashMap<(&str, &str), Deploying<'_>> = HashMap::new();
    for (span, name, stage) in &services {
        let Some((cluster, service)) = target(name, *stage) else { continue };
        let same_names = seen.entry((last_part(cluster), last_part(service))).or_default();
        let earlier = same_names.iter().find(|(_, other, other_stage)| {
            target(other, *other_stage).is_some_and(|(other_cluster, other_service)| {
                same_ecs_resource(cluster, other_cluster) && same_ecs_resource(service, other_service)
            })
        });
        if let Some((other_start, other, other_stage)) = earlier {
            let (line, _) = checker.lines.line_column(checker.text, *other_start);
            let other = if other == name { format!("stage `{other_stage}`") } else { format!("pipeline `{other}`") };
            let message = format!(
                "{other} deploys this service too (line {line}): each one's deployment replaces or collides with \
                 the other's, and the service runs whichever went last; deploy a service from one place"
            );
            checker.pipeline = Some(name.clone());
            checker.warn(span.clone(), "deploy.service", message);
        }
        same_names.push((span.start, name, *stage));
    }
}

/// A cluster's or service's name, from a name or an ARN (`.../cluster/prod`, `.../service/prod/web`).
fn last_part(text: &str) -> &str {
    text.rsplit('/').next().unwrap_or(text)
}

/// Whether two clusters or services, each a name or an ARN, are the same: the same name, and the same region and
/// account where both are ARNs (a name is in the stack's).
fn same_ecs_resource(a: &str, b: &str) -> bool {
    // arn:PARTITION:ecs:REGION:ACCOUNT:cluster/NAME or service/[CLUSTER/]NAME
    fn parts(text: &str) -> (Option<&str>, &str) {
        let place = text.starts_with("arn:").then(|| text.rsplit_once(':').map_or(text, |(place, _)| place));
        (place, last_part(text))
    }
    let ((a_where, a_name), (b_where, b_name)) = (parts(a), parts(b));
    a_name == b_name && (a_where.is_none() || b_where.is_none() || a_where == b_where)
}

/// The longest glob pattern, and the most patterns in one list, a filter takes.
pub const MAX_PATTERN: usize = 256;
pub const MAX_PATTERNS: usize = 100;
/// How much of a value an error message quotes.
const SHOWN: usize = 80;

/// Bounds that keep a pipeline's stored state far below DynamoDB's 400 KB item limit.
pub const MAX_ENV_VARIABLES: usize = 20;
pub const MAX_ENV_NAME: usize = 64;
pub const MAX_ENV_VALUE: usize = 512;
pub const MAX_CHECKS: usize = 10;
pub const MAX_URL: usize = 512;
/// The longest text a check may expect in a body, and the most retries of one check.
pub const MAX_CHECK_BODY: usize = 128;
pub const MAX_CHECK_RETRIES: u32 = 20;

fn validate_pipeline(checker: &mut Checker<'_>, name: &Spanned<String>, raw: RawPipeline) -> Option<Pipeline> {
    let mode = match raw.mode.as_ref().map(|mode| (mode.get_ref().as_str(), mode.span())) {
        None | Some(("superseded", _)) => ExecutionMode::Superseded,
        Some(("queued", _)) => ExecutionMode::Queued,
        Some((other, span)) => {
            checker.error(span, "mode", format!("must be \"superseded\" or \"queued\" (got {other:?})"));
            ExecutionMode::Superseded
        }
    };
    let source = validate_source(checker, raw.source);
    let build = validate_build(checker, raw.build);
    let calendar = calendar::calendar(checker, raw.windows.as_ref(), raw.deny.as_ref());
    let mut stages = if let Some(stages) = raw.stages {
        for (table, span) in [
            ("approval", raw.approval.as_ref().map(|approval| approval.topic.span())),
            ("deploy", raw.deploy.as_ref().map(|deploy| deploy.strategy.span())),
        ] {
            if let Some(span) = span {
                let message = format!(
                    "a pipeline with [[stages]] has no [{table}] table: make it a stage ([[pipelines.{}.stages]] \
                     with name = \"...\" and {table} = {{ ... }})",
                    name.get_ref()
                );
                checker.error(span, table, message);
            }
        }
        validate_stages(checker, stages)
    } else {
        table_stages_of(checker, raw.approval, raw.deploy)
    };
    // The pipeline's windows and deny periods hold each deploy stage that gives none of its own (windows and deny
    // periods each).
    for stage in &mut stages {
        if let (StageKind::Deploy(deploy), Some(pipeline)) = (&mut stage.kind, &calendar) {
            let own = deploy.calendar.get_or_insert_with(|| pipeline.clone());
            if own.windows.is_empty() {
                own.windows.clone_from(&pipeline.windows);
            }
            if own.deny.is_empty() {
                own.deny.clone_from(&pipeline.deny);
            }
        }
    }
    let notify = raw
        .notify
        .map(|notify| Notify { topic_arn: checker.checked(&notify.topic, "notify.topic", TOPIC, fifo_topic) });
    let github = raw.github.map(|github| GitHubReport {
        environment: match &github.environment {
            Some(environment) => checker.text(
                environment,
                "github.environment",
                is_environment_name,
                "a GitHub environment name is 1 to 255 characters, without control characters",
            ),
            None => name.get_ref().to_owned(),
        },
    });
    Some(Pipeline { name: name.get_ref().to_owned(), mode, source, build, stages, notify, github })
}

/// The stages of a pipeline written with `[approval]` and `[deploy]` tables: `approval` (if any), then `deploy`.
fn table_stages_of(
    checker: &mut Checker<'_>,
    approval: Option<RawApproval>,
    deploy: Option<RawDeploy>,
) -> Vec<StageDefinition> {
    let approval = approval.map(|approval| validate_approval(checker, approval));
    // Without one, the reader told `deploy` missing.
    let Some(deploy) = deploy else { return Vec::new() };
    let timeout =
        deploy.timeout.as_ref().and_then(|timeout| checker.minutes(timeout, "deploy.timeout", DEPLOY_TIMEOUT_RANGE));
    let approval_topic = approval.as_ref().map(|approval| approval.topic_arn.clone());
    let place = deploy.strategy.span();
    let target = validate_deploy(checker, deploy, approval_topic.as_deref());
    let stages = table_stages(approval, target, timeout);
    approvers::named_topics_alone(checker, &stages, &[(String::new(), place.clone()), (String::new(), place)]);
    stages
}

/// `[[stages]]`: each with a unique name and exactly one of `approval` and `deploy`; at least one deploys. A pause
/// approval inside a deployment uses the first approval stage's topic unless it names its own.
fn validate_stages(checker: &mut Checker<'_>, raw: Vec<RawStage>) -> Vec<StageDefinition> {
    let approval_topic =
        raw.iter().find_map(|stage| stage.approval.as_ref()).map(|a| a.topic.get_ref().trim().to_owned());
    // The first approval stage, as a test stage's `on_failure = "ask"` asks: read apart (its errors are told where
    // the stage is checked).
    let asks = raw.iter().find_map(|stage| stage.approval.as_ref()).map(|approval| {
        let timeout_secs = approval.timeout.as_ref().and_then(|t| parse_duration(t.get_ref()));
        Approval {
            topic_arn: approval.topic.get_ref().trim().to_owned(),
            timeout_secs: timeout_secs.unwrap_or(DEFAULT_APPROVAL_TIMEOUT_SECS),
            approvers: None,
        }
    });
    let first = raw.first().map(|stage| stage.name.span()).unwrap_or_default();
    if raw.len() > MAX_STAGES {
        checker.error(first.clone(), "stages", format!("at most {MAX_STAGES} stages"));
    }
    let last = raw.len().saturating_sub(1);
    let mut stages: Vec<StageDefinition> = Vec::new();
    // The GitHub environment each deploy stage so far is shown as, and the stage's name.
    let mut shown_as: Vec<(String, String)> = Vec::new();
    // The bytes of soak alarm names so far (each run carries them in its plan); where each stage kept is written.
    let (mut alarm_text, mut places) = (0, Vec::new());
    for (at, stage) in raw.into_iter().enumerate() {
        checker.place = format!("stages[{at}].");
        let (name, span) = (stage.name.get_ref().trim(), stage.name.span());
        let named = stage_name(checker, (name, &span), &stages);
        let soak = stage_soak(checker, &stage, at == last);
        let alarms = soak_alarms(checker, &stage, soak.is_some(), &mut alarm_text);
        let entry_alarms = entry_alarms(checker, &stage, &mut alarm_text);
        let stage_calendar = calendar::stage_calendar(checker, &stage);
        let environment = stage_environment(checker, &stage, &mut shown_as);
        let kind = match (stage.approval, stage.deploy, stage.test) {
            (Some(approval), None, None) => StageKind::Approval(validate_approval(checker, approval)),
            (None, None, Some(test)) => StageKind::Test(validate_test(checker, test, asks.as_ref())),
            (None, Some(deploy), None) => {
                let timeout =
                    deploy.timeout.as_ref().and_then(|t| checker.minutes(t, "deploy.timeout", DEPLOY_TIMEOUT_RANGE));
                let target = validate_deploy(checker, deploy, approval_topic.as_deref());
                StageKind::Deploy(Box::new(DeployStage {
                    target,
                    timeout_minutes: timeout,
                    soak_secs: soak,
                    soak_alarms: alarms,
                    environment,
                    entry_alarms,
                    calendar: stage_calendar,
                }))
            }
            (approval, deploy, test) => {
                let has: Vec<&str> =
                    [("`approval`", approval.is_some()), ("`deploy`", deploy.is_some()), ("`test`", test.is_some())]
                        .into_iter()
                        .filter_map(|(kind, has)| has.then_some(kind))
                        .collect();
                let what = if has.is_empty() { "none of them".to_owned() } else { has.join(" and ") };
                checker.error(
                    span,
                    "",
                    format!("a stage has one of `approval`, `deploy` and `test` (this one has {what})"),
                );
                continue;
            }
        };
        stages.push(StageDefinition { name: named.unwrap_or(Stage::DEPLOY), kind });
        places.push((format!("stages[{at}]."), span));
    }
    checker.place.clear();
    ask_as_first_approval(&mut stages);
    approvers::named_topics_alone(checker, &stages, &places);
    if !stages.iter().any(|stage| stage.deploy().is_some()) {
        checker.error(
            first,
            "stages",
            "no stage deploys: add one with deploy = { strategy = ..., cluster = ..., service = ... }",
        );
    }
    stages
}

/// Each test stage's `on_failure = "ask"` asks the first approval stage's approvers, as validated (the test stage
/// may come first).
fn ask_as_first_approval(stages: &mut [StageDefinition]) {
    let Some(first) = stages.iter().find_map(|stage| stage.approval().cloned()) else { return };
    for stage in stages {
        if let StageKind::Test(TestStage { on_failure: OnFailure::Ask(approval), .. }) = &mut stage.kind {
            *approval = first.clone();
        }
    }
}

/// A stage's `name`: valid, not `build`, not another stage's (`earlier`).
fn stage_name(
    checker: &mut Checker<'_>,
    (name, span): (&str, &Range<usize>),
    earlier: &[StageDefinition],
) -> Option<Stage> {
    let named = Stage::new(name).filter(|stage| *stage != Stage::BUILD);
    match named {
        None if name == "build" => {
            checker.error(span.clone(), "name", "`build` is the build's own stage: name it otherwise")
        }
        None => checker.error(
            span.clone(),
            "name",
            format!(
                "a stage name is 1 to {MAX_STAGE_NAME} lower-case letters, digits, '-' or '_', starting with a \
                 letter (got {:?})",
                bounded(name, SHOWN)
            ),
        ),
        Some(named) if earlier.iter().any(|stage| stage.name == named) => {
            checker.error(span.clone(), "name", format!("another stage is named `{named}`: stage names are unique"))
        }
        Some(_) => {}
    }
    named
}

/// A stage's `soak`: a deploy stage's, not the `last` stage's.
fn stage_soak(checker: &mut Checker<'_>, stage: &RawStage, last: bool) -> Option<u64> {
    let soak = stage.soak.as_ref()?;
    match (&stage.deploy, last) {
        (None, _) => {
            checker.error(soak.span(), "soak", "only a deploy stage soaks: the release runs there meanwhile");
            None
        }
        (Some(_), true) => {
            let message = "soak holds the next stage back until the release has run here that long: the last \
                           stage has none";
            checker.error(soak.span(), "soak", message);
            None
        }
        (Some(_), false) => checker.duration(soak, "soak", SOAK_RANGE),
    }
}

/// A soaking deploy stage's `soak_alarms` (CloudWatch alarm names, 1 to 255 characters, at most
/// [`MAX_SOAK_ALARMS`], no two alike, and with the earlier stages' (`text`, in bytes) at most
/// [`MAX_SOAK_ALARM_TEXT`]) and `strict_alarms`.
fn soak_alarms(checker: &mut Checker<'_>, stage: &RawStage, soaks: bool, text: &mut usize) -> Option<SoakAlarms> {
    if let (None, Some(strict)) = (&stage.soak_alarms, &stage.strict_alarms) {
        checker.error(strict.span(), "strict_alarms", "strict_alarms says how soak_alarms block: name them first");
    }
    let written = stage.soak_alarms.as_ref()?;
    if !soaks {
        let message = "soak_alarms watch a deploy stage's soak: give the stage a soak (soak = \"30m\") to watch";
        checker.error(written.span(), "soak_alarms", message);
        return None;
    }
    let kept = alarm_names(checker, written, "soak_alarms", text);
    let strict = stage.strict_alarms.as_ref().is_some_and(|strict| *strict.get_ref());
    Some(SoakAlarms { names: kept, strict })
}

/// A deploy stage's `entry_alarms` (named as [`soak_alarms`] are, in the same budget of bytes) and
/// `entry_timeout` (an hour unless given).
fn entry_alarms(checker: &mut Checker<'_>, stage: &RawStage, text: &mut usize) -> Option<EntryAlarms> {
    if let (None, Some(timeout)) = (&stage.entry_alarms, &stage.entry_timeout) {
        let message = "entry_timeout says how long a run waits for entry_alarms: name them first";
        checker.error(timeout.span(), "entry_timeout", message);
    }
    let written = stage.entry_alarms.as_ref()?;
    if stage.deploy.is_none() {
        let message = "entry_alarms keep runs out of a deploy stage: only a deploy stage has them";
        checker.error(written.span(), "entry_alarms", message);
        return None;
    }
    let names = alarm_names(checker, written, "entry_alarms", text);
    let timeout = stage.entry_timeout.as_ref().and_then(|t| checker.duration(t, "entry_timeout", ENTRY_TIMEOUT_RANGE));
    Some(EntryAlarms { names, timeout_secs: timeout.unwrap_or(DEFAULT_ENTRY_TIMEOUT_SECS) })
}

/// How long a run waits for a stage's entry alarms unless told (`entry_timeout`), and how long it may be told to.
const DEFAULT_ENTRY_TIMEOUT_SECS: u64 = 60 * MINUTE;
const ENTRY_TIMEOUT_RANGE: (u64, u64) = (MINUTE, 7 * DAY);

/// The CloudWatch alarm names of `field` (1 to 255 characters each, 1 to [`MAX_SOAK_ALARMS`] of them, no two
/// alike), adding their bytes to those of the pipeline's alarms so far (`text`, at most [`MAX_SOAK_ALARM_TEXT`]).
fn alarm_names(
    checker: &mut Checker<'_>,
    written: &Spanned<Vec<Spanned<String>>>,
    field: &str,
    text: &mut usize,
) -> Vec<String> {
    let names = written.get_ref();
    if names.is_empty() || names.len() > MAX_SOAK_ALARMS {
        checker.error(written.span(), field, format!("1 to {MAX_SOAK_ALARMS} CloudWatch alarm names"));
    }
    let mut kept: Vec<String> = Vec::new();
    for name in names {
        let name_text = name.get_ref();
        if name_text.trim().is_empty() || name_text.chars().count() > 255 || name_text.chars().any(char::is_control) {
            let message =
                format!("a CloudWatch alarm name is 1 to 255 characters (got {:?})", bounded(name_text, SHOWN));
            checker.error(name.span(), field, message);
        } else if kept.contains(name_text) {
            checker.error(name.span(), field, format!("alarm {name_text:?} is named twice"));
        } else {
            kept.push(name_text.clone());
        }
    }
    *text += kept.iter().map(String::len).sum::<usize>();
    if *text > MAX_SOAK_ALARM_TEXT {
        let message = format!(
            "a pipeline's soak and entry alarms are named in at most {MAX_SOAK_ALARM_TEXT} bytes in all (these make \
             {text})"
        );
        checker.error(written.span(), field, message);
    }
    kept
}

/// How many bytes of alarm names a pipeline's soaks and entries may be watched by in all (every run carries them).
pub const MAX_SOAK_ALARM_TEXT: usize = 2048;

/// How many alarms may watch a soak (each run's plan and its deployment's start carry their names).
pub const MAX_SOAK_ALARMS: usize = 5;

/// A deploy stage's GitHub `environment`, as written, not one an earlier deploy stage is shown as (`shown_as`: each
/// one's environment and name, to which this stage's are added).
fn stage_environment(
    checker: &mut Checker<'_>,
    stage: &RawStage,
    shown_as: &mut Vec<(String, String)>,
) -> Option<String> {
    let environment = stage.environment.as_ref().and_then(|environment| {
        if stage.deploy.is_none() {
            checker.error(environment.span(), "environment", "only a deploy stage is shown as a GitHub Deployment");
            return None;
        }
        let what = "a GitHub environment name is 1 to 255 characters, without control characters";
        Some(checker.text(environment, "environment", is_environment_name, what))
    });
    if stage.deploy.is_some() {
        // Two stages in one environment would share its Deployments; names are unique, so only a written
        // `environment` can clash.
        let name = stage.name.get_ref().trim();
        let shown = environment.clone().unwrap_or_else(|| name.to_owned());
        // GitHub's environment names ignore case.
        let same = |earlier: &String| earlier.to_lowercase() == shown.to_lowercase();
        let clash = shown_as.iter().find(|(earlier, _)| same(earlier)).map(|(_, by)| by.clone());
        if let Some(by) = clash.filter(|by| by != name) {
            let place = stage.environment.as_ref().map_or(stage.name.span(), Spanned::span);
            let message = format!(
                "GitHub environment `{shown}` is stage `{by}`'s too (GitHub ignores case): give each deploy stage \
                 its own `environment`"
            );
            checker.error(place, "environment", message);
        }
        shown_as.push((shown, name.to_owned()));
    }
    environment
}

/// A test stage's `test = { codebuild = "...", timeout = "30m", on_failure = "fail" }`, or `test = { checks = [...] }`;
/// `asks`: the pipeline's first approval stage, which `on_failure = "ask"` asks as.
fn validate_test(checker: &mut Checker<'_>, raw: Spanned<RawTest>, asks: Option<&Approval>) -> TestStage {
    let span = raw.span();
    let raw = raw.into_inner();
    let run = match (&raw.codebuild, raw.checks) {
        (Some(project), None) => TestRun::CodeBuild(checker.text(
            project,
            "test.codebuild",
            is_codebuild_project,
            "must be a CodeBuild project name",
        )),
        (None, Some(checks)) => TestRun::Checks(test_checks(checker, span, checks)),
        (codebuild, checks) => {
            let message = if codebuild.is_some() && checks.is_some() {
                "a test stage has either codebuild or checks, not both"
            } else {
                "a test stage names what tests: test = { codebuild = \"web-e2e\" } or test = { checks = [...] }"
            };
            checker.error(span, "test", message);
            // Its other values are checked as a project's.
            TestRun::CodeBuild(String::new())
        }
    };
    let timeout_minutes = raw.timeout.as_ref().and_then(|timeout| match &run {
        TestRun::CodeBuild(_) => checker.minutes(timeout, "test.timeout", TEST_TIMEOUT_RANGE),
        TestRun::Checks(_) => {
            let message = "a test stage's checks take each check's own timeout, retries and interval";
            checker.error(timeout.span(), "test.timeout", message);
            None
        }
    });
    let on_failure = match raw.on_failure.as_ref().map(|on_failure| (on_failure.get_ref().as_str(), on_failure.span()))
    {
        None | Some(("fail", _)) => OnFailure::Fail,
        Some(("ask", span)) => match asks {
            Some(approval) => OnFailure::Ask(approval.clone()),
            None => {
                let message =
                    "\"ask\" mails the pipeline's approvers: add an approval stage (its topic and timeout are used)";
                checker.error(span, "test.on_failure", message);
                OnFailure::Fail
            }
        },
        Some((other, span)) => {
            let message = format!("must be \"fail\" or \"ask\" (got {:?})", bounded(other, SHOWN));
            checker.error(span, "test.on_failure", message);
            OnFailure::Fail
        }
    };
    TestStage { run, timeout_minutes, on_failure }
}

/// A test stage's checks: 1 to [`MAX_CHECKS`], run in one go by the hooks function within [`AFTER_ROLLOUT_SECS`].
fn test_checks(checker: &mut Checker<'_>, span: Range<usize>, raw: Vec<Spanned<RawTestCheck>>) -> Vec<Check> {
    if raw.is_empty() {
        checker.error(span, "test.checks", "a test stage's checks are at least one");
    }
    if let Some(extra) = raw.get(MAX_CHECKS) {
        checker.error(extra.span(), "test.checks", format!("at most {MAX_CHECKS} checks"));
    }
    let time = CheckTime::AllTries { secs: AFTER_ROLLOUT_SECS, whose: "a test stage's checks" };
    raw.into_iter()
        .enumerate()
        .map(|(i, check)| {
            let check = Spanned::new(check.span(), check.into_inner().at(TEST_CHECKS));
            validate_check(checker, ("test.checks", i), check, (&[TEST_CHECKS], time))
        })
        .collect()
}

/// `test.timeout`: CodeBuild's build timeout, 5 minutes to 36 hours
/// (<https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html#CodeBuild-StartBuild-request-timeoutInMinutesOverride>).
const TEST_TIMEOUT_RANGE: (u64, u64) = (5 * 60, 36 * 60 * 60);

/// The most stages a pipeline has: each deploy stage's run record and its effects stay far below DynamoDB's item
/// limit.
pub const MAX_STAGES: usize = 10;
/// `soak`: from a second (the demo's) to a week.
const SOAK_RANGE: (u64, u64) = (1, 7 * DAY);

/// `[build]`: the CodeBuild project and the build's environment overrides.
fn validate_build(checker: &mut Checker<'_>, raw: RawBuild) -> Build {
    let raw_environment_span = raw.environment.keys().nth(MAX_ENV_VARIABLES).map(Spanned::span);
    let build = Build {
        project: checker.text(&raw.project, "build.project", is_codebuild_project, "must be a CodeBuild project name"),
        environment: raw
            .environment
            .into_iter()
            .map(|(key, value)| {
                let field = format!("build.environment.{}", key.get_ref());
                if !is_env_name(key.get_ref()) {
                    checker.error(
                        key.span(),
                        &field,
                        "an environment variable name is letters, digits and '_', not starting with a digit",
                    );
                } else if key.get_ref().starts_with("CODEBUILD_") || key.get_ref().starts_with("SLUICE_") {
                    checker.error(key.span(), &field, "names starting with CODEBUILD_ or SLUICE_ are reserved");
                } else if key.get_ref().len() > MAX_ENV_NAME || value.len() > MAX_ENV_VALUE {
                    checker.error(
                        key.span(),
                        &field,
                        format!("names are at most {MAX_ENV_NAME} characters and values at most {MAX_ENV_VALUE} bytes"),
                    );
                }
                (key.into_inner(), value)
            })
            .collect(),
    };
    if build.environment.len() > MAX_ENV_VARIABLES {
        let span = raw_environment_span.unwrap_or(raw.project.span());
        checker.error(span, "build.environment", format!("at most {MAX_ENV_VARIABLES} variables"));
    }
    build
}

fn validate_source(checker: &mut Checker<'_>, raw: RawSource) -> Source {
    Source {
        repository: checker.checked(
            &raw.repository,
            "source.repository",
            (is_repository, "must look like owner/name"),
            repository_too_long,
        ),
        branches: checker.filter(raw.branches, "source.branches"),
        tags: checker.filter(raw.tags, "source.tags"),
        paths: checker.filter(raw.paths, "source.paths"),
    }
}

fn validate_approval(checker: &mut Checker<'_>, raw: RawApproval) -> Approval {
    let topic_arn = checker.checked(&raw.topic, "approval.topic", TOPIC, fifo_topic);
    let timeout_secs = raw
        .timeout
        .as_ref()
        .and_then(|timeout| checker.duration(timeout, "approval.timeout", APPROVAL_TIMEOUT_RANGE))
        .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_SECS);
    let approvers = approvers::validate_approvers(checker, &raw);
    Approval { topic_arn, timeout_secs, approvers }
}

/// `approval_topic`: the pipeline's approval topic, which an approval inside the deployment uses unless it names its
/// own.
fn validate_deploy(checker: &mut Checker<'_>, mut raw: RawDeploy, approval_topic: Option<&str>) -> DeployTarget {
    let cluster =
        checker.checked(&raw.cluster, "deploy.cluster", (is_ecs_name, "must be an ECS cluster name or ARN"), |text| {
            arn_problem(text, "cluster/", "arn:aws:ecs:eu-west-1:123456789012:cluster/prod")
        });
    let service =
        checker.checked(&raw.service, "deploy.service", (is_ecs_name, "must be an ECS service name or ARN"), |text| {
            arn_problem(text, "service/", "arn:aws:ecs:eu-west-1:123456789012:service/prod/web")
        });
    let strategy = raw.strategy.get_ref().as_str();
    let native = NATIVE_STRATEGIES.contains(&strategy);
    checker.strategy_known = native || strategy == "blue_green" || strategy == "rolling";
    let every: Vec<&str> = BLUE_GREEN_HOOKS.into_iter().chain(ROLLING_HOOKS).chain(ECS_STAGES).collect();
    let hooks: &[&str] = match strategy {
        "rolling" => &ROLLING_HOOKS,
        _ if native => &ECS_STAGES,
        "blue_green" => &BLUE_GREEN_HOOKS,
        _ => &every,
    };
    let call = HOOKS_FUNCTION_SECS - HOOK_ANSWER_MARGIN_SECS - HOOK_LOOKUP_SECS;
    let time = match strategy {
        "rolling" => CheckTime::AllTries { secs: AFTER_ROLLOUT_SECS, whose: "a rolling update's AfterRollout checks" },
        _ if native => CheckTime::EachTry { secs: call },
        _ => CheckTime::AllTries { secs: call, whose: "the checks of one call of the hooks function" },
    };
    if let Some(extra) = raw.checks.get(MAX_CHECKS) {
        checker.error(extra.span(), "deploy.checks", format!("at most {MAX_CHECKS} checks"));
    }
    let checks = std::mem::take(&mut raw.checks)
        .into_iter()
        .enumerate()
        .map(|(i, check)| validate_check(checker, ("deploy.checks", i), check, (hooks, time)))
        .collect();
    let container = raw.container.as_ref().map(|name| {
        checker.text(name, "deploy.container", is_container_name, "must be a container name of the task definition")
    });
    if !native && checker.strategy_known {
        for (span, field) in [
            (raw.bake_time.as_ref().map(Spanned::span), "deploy.bake_time"),
            (raw.linear.as_ref().map(Spanned::span), "deploy.linear"),
            (raw.canary.as_ref().map(Spanned::span), "deploy.canary"),
            (raw.alarms.as_ref().map(Spanned::span), "deploy.alarms"),
            (raw.approval.as_ref().map(Spanned::span), "deploy.approval"),
        ] {
            if let Some(span) = span {
                checker.error(
                    span,
                    field,
                    "only applies to strategy = \"ecs_blue_green\", \"ecs_linear\" or \"ecs_canary\"",
                );
            }
        }
    }
    let parts = TargetParts { cluster, service, container, checks, approval_topic };
    match strategy {
        _ if native => {
            for (value, field) in [
                (&raw.application, "deploy.application"),
                (&raw.deployment_group, "deploy.deployment_group"),
                (&raw.deployment_config, "deploy.deployment_config"),
            ] {
                checker.only_for(value.as_ref().map(Spanned::span), field, "blue_green");
            }
            for (value, field) in [
                (&raw.minimum_healthy_percent, "deploy.minimum_healthy_percent"),
                (&raw.maximum_percent, "deploy.maximum_percent"),
            ] {
                checker.only_for(value.as_ref().map(Spanned::span), field, "rolling");
            }
            validate_native(checker, strategy, &raw, parts)
        }
        "blue_green" => validate_blue_green(checker, &raw, parts),
        _ => validate_rolling(checker, strategy, &raw, parts),
    }
}

/// Whether the build's task definition may reach into the host.
fn allows_host(raw: &RawDeploy) -> bool {
    raw.allow_host.as_ref().is_some_and(|allow| *allow.get_ref())
}

/// `strategy = "blue_green"`: CodeDeploy's application, group and configuration.
fn validate_blue_green(checker: &mut Checker<'_>, raw: &RawDeploy, parts: TargetParts<'_>) -> DeployTarget {
    for (value, field) in [
        (&raw.minimum_healthy_percent, "deploy.minimum_healthy_percent"),
        (&raw.maximum_percent, "deploy.maximum_percent"),
    ] {
        checker.only_for(value.as_ref().map(Spanned::span), field, "rolling");
    }
    if let Some(breaker) = &raw.circuit_breaker {
        checker.error(
            breaker.span(),
            "deploy.circuit_breaker",
            "does not apply to strategy = \"blue_green\" (CodeDeploy rolls a failed deployment back itself)",
        );
    }
    let mut required = |value: &Option<Spanned<String>>, field: &str, valid: fn(&str) -> bool, what: &str| match value {
        Some(value) => checker.text(value, field, valid, what),
        None => {
            checker.error(raw.strategy.span(), field, "is required for strategy = \"blue_green\"");
            String::new()
        }
    };
    let application =
        required(&raw.application, "deploy.application", is_codedeploy_name, "must be a CodeDeploy application name");
    let deployment_group = required(
        &raw.deployment_group,
        "deploy.deployment_group",
        is_codedeploy_name,
        "must be a CodeDeploy deployment group name",
    );
    let deployment_config = match &raw.deployment_config {
        Some(value) => checker.checked(
            value,
            "deploy.deployment_config",
            (is_codedeploy_name, "must be a CodeDeploy deployment configuration name"),
            non_ecs_deployment_config,
        ),
        None => DEFAULT_DEPLOYMENT_CONFIG.to_owned(),
    };
    DeployTarget::BlueGreen(BlueGreen {
        cluster: parts.cluster,
        service: parts.service,
        application,
        deployment_group,
        deployment_config,
        container: parts.container,
        checks: parts.checks,
        allow_host: allows_host(raw),
    })
}

/// `strategy = "rolling"` (or a strategy sluice does not know, reported): ECS's bounds and circuit breaker.
fn validate_rolling(
    checker: &mut Checker<'_>,
    strategy: &str,
    raw: &RawDeploy,
    parts: TargetParts<'_>,
) -> DeployTarget {
    if strategy != "rolling" {
        checker.error(
            raw.strategy.span(),
            "deploy.strategy",
            format!(
                "must be \"blue_green\", \"rolling\", \"ecs_blue_green\", \"ecs_linear\" or \"ecs_canary\" \
                 (got {strategy:?})"
            ),
        );
    }
    for (value, field) in [
        (&raw.application, "deploy.application"),
        (&raw.deployment_group, "deploy.deployment_group"),
        (&raw.deployment_config, "deploy.deployment_config"),
    ] {
        checker.only_for(value.as_ref().map(Spanned::span), field, "blue_green");
    }
    let percent =
        |checker: &mut Checker<'_>, value: &Option<Spanned<i64>>, field: &str, default: u32, range: (i64, i64)| {
            match value {
                Some(value) if (range.0..=range.1).contains(value.get_ref()) => {
                    u32::try_from(*value.get_ref()).unwrap_or(default)
                }
                Some(value) => {
                    checker.error(
                        value.span(),
                        field,
                        format!("must be between {} and {} (got {})", range.0, range.1, value.get_ref()),
                    );
                    default
                }
                None => default,
            }
        };
    let minimum_healthy_percent =
        percent(checker, &raw.minimum_healthy_percent, "deploy.minimum_healthy_percent", 100, (0, 100));
    let maximum_percent = percent(checker, &raw.maximum_percent, "deploy.maximum_percent", 200, (100, 400));
    if minimum_healthy_percent == 100 && maximum_percent == 100 {
        let span = raw.maximum_percent.as_ref().map_or(raw.strategy.span(), Spanned::span);
        checker.error(
            span,
            "deploy.maximum_percent",
            "with minimum_healthy_percent = 100, maximum_percent must be above 100 or ECS cannot replace a task",
        );
    }
    let circuit_breaker = circuit_breaker(raw);
    DeployTarget::Rolling(Rolling {
        cluster: parts.cluster,
        service: parts.service,
        minimum_healthy_percent,
        maximum_percent,
        circuit_breaker,
        container: parts.container,
        checks: parts.checks,
        allow_host: allows_host(raw),
    })
}

/// The strategies ECS carries out itself.
const NATIVE_STRATEGIES: [&str; 3] = ["ecs_blue_green", "ecs_linear", "ecs_canary"];
/// ECS's bounds on bake times (0 to 24 h) and on traffic percentages, in tenths
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinearConfiguration.html>,
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CanaryConfiguration.html>).
const BAKE_TIME_RANGE: (u64, u64) = (0, 24 * 60 * MINUTE);
const LINEAR_STEP_TENTHS: (u32, u32) = (30, 1000);
const CANARY_TENTHS: (u32, u32) = (1, 1000);
/// ECS's defaults when a linear or canary configuration leaves a value out.
const DEFAULT_LINEAR: (u32, u32) = (100, 6);
const DEFAULT_CANARY: (u32, u32) = (50, 10);
/// ECS takes at most 10 alarms for a deployment.
pub const MAX_ALARMS: usize = 10;

/// ECS's circuit breaker as the pipeline sets it: on, with rollback, unless it says otherwise.
fn circuit_breaker(raw: &RawDeploy) -> CircuitBreaker {
    let breaker = raw.circuit_breaker.as_ref().map(Spanned::get_ref);
    CircuitBreaker {
        enable: breaker.and_then(|breaker| breaker.enable).unwrap_or(true),
        rollback: breaker.and_then(|breaker| breaker.rollback).unwrap_or(true),
    }
}

/// What every strategy's target has, validated before the strategy's own fields.
struct TargetParts<'a> {
    cluster: String,
    service: String,
    container: Option<String>,
    checks: Vec<Check>,
    approval_topic: Option<&'a str>,
}

impl Checker<'_> {
    /// An error for a field given where the strategy takes none.
    fn only_for(&mut self, span: Option<Range<usize>>, field: &str, only: &str) {
        if let Some(span) = span.filter(|_| self.strategy_known) {
            self.error(span, field, format!("only applies to strategy = \"{only}\""));
        }
    }

    /// A duration in whole minutes within `range` (seconds).
    fn minutes(&mut self, value: &Spanned<String>, field: &str, range: (u64, u64)) -> Option<u32> {
        let secs = self.duration(value, field, range)?;
        if secs % MINUTE != 0 {
            let service = if field == "test.timeout" { "CodeBuild" } else { "ECS" };
            self.error(value.span(), field, format!("{service} takes whole minutes (got {:?})", value.get_ref()));
            return None;
        }
        u32::try_from(secs / MINUTE).ok()
    }

    /// A percentage in tenths within `range` (tenths): ECS takes multiples of 0.1.
    /// A linear or canary step: its share of traffic (tenths of a percent, within `range`) and the wait after it
    /// (whole minutes), each checked, and ECS's `default` for what is left out.
    fn step(
        &mut self,
        (share, share_field, range): (Option<&Spanned<f64>>, &str, (u32, u32)),
        (wait, wait_field): (Option<&Spanned<String>>, &str),
        default: (u32, u32),
    ) -> (u32, u32) {
        let share = share.and_then(|share| self.tenths(share, share_field, range)).unwrap_or(default.0);
        let wait = wait.and_then(|wait| self.minutes(wait, wait_field, BAKE_TIME_RANGE)).unwrap_or(default.1);
        (share, wait)
    }

    fn tenths(&mut self, value: &Spanned<f64>, field: &str, range: (u32, u32)) -> Option<u32> {
        let percent = *value.get_ref();
        let tenths = (percent * 10.0).round();
        let whole = (percent * 10.0 - tenths).abs() < 1e-6;
        if !whole || tenths < f64::from(range.0) || tenths > f64::from(range.1) {
            let (low, high) = (f64::from(range.0) / 10.0, f64::from(range.1) / 10.0);
            self.error(value.span(), field, format!("must be a multiple of 0.1 from {low} to {high} (got {percent})"));
            return None;
        }
        // In range, so it fits.
        Some(tenths as u32)
    }
}

fn validate_native(checker: &mut Checker<'_>, strategy: &str, raw: &RawDeploy, parts: TargetParts<'_>) -> DeployTarget {
    let TargetParts { cluster, service, container, checks, approval_topic } = parts;
    let only = |checker: &mut Checker<'_>, span: Option<Range<usize>>, field: &str, strategy: &str| {
        if let Some(span) = span {
            checker.error(span, field, format!("only applies to strategy = \"{strategy}\""));
        }
    };
    if strategy != "ecs_linear" {
        only(checker, raw.linear.as_ref().map(Spanned::span), "deploy.linear", "ecs_linear");
    }
    if strategy != "ecs_canary" {
        only(checker, raw.canary.as_ref().map(Spanned::span), "deploy.canary", "ecs_canary");
    }
    let shift = match strategy {
        "ecs_linear" => {
            let linear = raw.linear.as_ref().map(Spanned::get_ref);
            let (step_tenths, step_bake_time_minutes) = checker.step(
                (linear.and_then(|l| l.step_percent.as_ref()), "deploy.linear.step_percent", LINEAR_STEP_TENTHS),
                (linear.and_then(|l| l.step_bake_time.as_ref()), "deploy.linear.step_bake_time"),
                DEFAULT_LINEAR,
            );
            TrafficShift::Linear { step_tenths, step_bake_time_minutes }
        }
        "ecs_canary" => {
            let canary = raw.canary.as_ref().map(Spanned::get_ref);
            let (tenths, bake_time_minutes) = checker.step(
                (canary.and_then(|c| c.percent.as_ref()), "deploy.canary.percent", CANARY_TENTHS),
                (canary.and_then(|c| c.bake_time.as_ref()), "deploy.canary.bake_time"),
                DEFAULT_CANARY,
            );
            TrafficShift::Canary { tenths, bake_time_minutes }
        }
        _ => TrafficShift::BlueGreen,
    };
    let bake_time_minutes =
        raw.bake_time.as_ref().and_then(|bake| checker.minutes(bake, "deploy.bake_time", BAKE_TIME_RANGE)).unwrap_or(0);
    let mut alarms = Vec::new();
    if let Some(list) = &raw.alarms {
        if list.get_ref().len() > MAX_ALARMS {
            checker.error(list.span(), "deploy.alarms", format!("at most {MAX_ALARMS} alarms"));
        }
        for (i, alarm) in list.get_ref().iter().enumerate() {
            let field = format!("deploy.alarms[{i}]");
            alarms.push(checker.text(alarm, &field, is_alarm_name, "must be a CloudWatch alarm name"));
        }
    }
    let approval = raw.approval.as_ref().map(|approval| validate_pause(checker, approval, &shift, approval_topic));
    DeployTarget::EcsNative(EcsNative {
        cluster,
        service,
        shift,
        bake_time_minutes,
        alarms,
        circuit_breaker: circuit_breaker(raw),
        container,
        checks,
        approval,
        allow_host: allows_host(raw),
    })
}

/// `deploy.approval`: a PAUSE hook at a stage where ECS can pause, mailing the pause's topic or the pipeline's.
fn validate_pause(
    checker: &mut Checker<'_>,
    raw: &Spanned<RawPauseApproval>,
    shift: &TrafficShift,
    approval_topic: Option<&str>,
) -> PauseApproval {
    let (span, raw) = (raw.span(), raw.get_ref());
    let stage = raw.stage.get_ref().trim();
    if !PAUSE_STAGES.contains(&stage) {
        let why = if ECS_STAGES.contains(&stage) {
            "ECS cannot pause while traffic moves".to_owned()
        } else {
            format!("not an ECS lifecycle stage (got {:?})", raw.stage.get_ref())
        };
        checker.error(
            raw.stage.span(),
            "deploy.approval.stage",
            format!("must be one of {}: {why}", PAUSE_STAGES.join(", ")),
        );
    } else if stage == PRE_PRODUCTION_TRAFFIC_SHIFT {
        // ECS pauses there before each step after the first: a shift made in one step is never paused there.
        // Published definitions with a 100% step, written before that was refused, are read as they were.
        let (one_step, new_rule) = match shift {
            TrafficShift::BlueGreen => ("ecs_blue_green moves production traffic in one step", false),
            TrafficShift::Linear { step_tenths: 1000, .. } => {
                ("a linear step of 100% moves production traffic in one step", true)
            }
            TrafficShift::Canary { tenths: 1000, .. } => {
                ("a canary of 100% moves production traffic in one step", true)
            }
            _ => ("", false),
        };
        let message = format!(
            "{one_step}, before which nothing has moved, so nobody would be asked: pause at POST_TEST_TRAFFIC_SHIFT \
             instead"
        );
        match (one_step.is_empty(), new_rule) {
            (true, _) => {}
            (false, false) => checker.error(raw.stage.span(), "deploy.approval.stage", message),
            (false, true) => checker.refuse(raw.stage.span(), "deploy.approval.stage", message),
        }
    }
    let topic_arn = match (&raw.topic, approval_topic) {
        (Some(topic), _) => checker.checked(topic, "deploy.approval.topic", TOPIC, fifo_topic),
        (None, Some(topic)) => topic.to_owned(),
        (None, None) => {
            checker.error(span, "deploy.approval.topic", "is required when the pipeline has no [approval] topic");
            String::new()
        }
    };
    let timeout_minutes = raw
        .timeout
        .as_ref()
        .and_then(|timeout| checker.minutes(timeout, "deploy.approval.timeout", PAUSE_TIMEOUT_RANGE))
        .unwrap_or(DEFAULT_PAUSE_TIMEOUT_MINUTES);
    let on_timeout = match raw.on_timeout.as_ref().map(|action| (action, action.get_ref().as_str())) {
        None | Some((_, "rollback")) => PauseAction::Rollback,
        Some((_, "continue")) => PauseAction::Continue,
        Some((action, other)) => {
            checker.error(
                action.span(),
                "deploy.approval.on_timeout",
                format!("must be \"rollback\" or \"continue\" (got {other:?})"),
            );
            PauseAction::Rollback
        }
    };
    PauseApproval { stage: stage.to_owned(), topic_arn, timeout_minutes, on_timeout }
}

/// CloudWatch alarm names: 1 to 255 printable characters.
fn is_alarm_name(text: &str) -> bool {
    (1..=255).contains(&text.len()) && !text.chars().any(char::is_control)
}

/// What a call of the hooks function may spend before its checks start (the run, the deployment, CodeDeploy's
/// waiting lifecycle event, asked up to 5 times 400 ms apart): counted against the checks' time, to warn in time.
const HOOK_LOOKUP_SECS: u64 = 5;

/// The time a check's tries have, by what runs them.
#[derive(Clone, Copy)]
enum CheckTime {
    /// Every try in one go, `secs` in all (CodeDeploy's hooks in one call of the hooks function, AfterRollout).
    AllTries { secs: u64, whose: &'static str },
    /// One try a call of the hooks function (ECS calls again for the next), `secs` each.
    EachTry { secs: u64 },
}

/// Tells (as a warning) a check whose tries may outlast the time it has: a check still trying then fails.
fn warn_check_time(checker: &mut Checker<'_>, span: Range<usize>, field: &str, check: &Check, time: CheckTime) {
    let (timeout, interval, retries) = (check.timeout_secs, check.interval_secs, u64::from(check.retries));
    match time {
        CheckTime::AllTries { secs, whose } => {
            let worst = (retries + 1) * timeout + retries * interval;
            if worst > secs {
                let message = format!(
                    "may take {worst} s ({} tr{} of {} and {retries} interval{} of {}), beyond the {secs} s {whose} \
                     have: a check still trying then fails (use fewer retries, or a shorter timeout or interval)",
                    retries + 1,
                    if retries == 0 { "y" } else { "ies" },
                    format_duration(timeout),
                    if retries == 1 { "" } else { "s" },
                    format_duration(interval),
                );
                checker.warn(span, field, message);
            }
        }
        CheckTime::EachTry { secs } if timeout > secs => {
            let message = format!(
                "a try may take {} ({timeout} s), beyond the {secs} s one call of the hooks function has for it: a \
                 try still waiting then fails (use a shorter timeout)",
                format_duration(timeout)
            );
            checker.warn(span, field, message);
        }
        CheckTime::EachTry { .. } => {}
    }
}

fn validate_check(
    checker: &mut Checker<'_>,
    (list, index): (&str, usize),
    raw: Spanned<RawCheck>,
    (hooks, time): (&[&str], CheckTime),
) -> Check {
    let span = raw.span();
    let raw = raw.into_inner();
    let field = |name: &str| format!("{list}[{index}].{name}");
    if !hooks.contains(&raw.hook.get_ref().as_str()) {
        checker.error(
            raw.hook.span(),
            &field("hook"),
            format!("must be one of {} (got {:?})", hooks.join(", "), raw.hook.get_ref()),
        );
    }
    let url = if raw.url.get_ref().len() > MAX_URL {
        let message = format!("a URL is at most {MAX_URL} bytes (got {})", raw.url.get_ref().len());
        checker.error(raw.url.span(), &field("url"), message);
        String::new()
    } else {
        checker.checked(&raw.url, &field("url"), (is_http_url, "must be an http:// or https:// URL"), url_problem)
    };
    let expect_status = raw.expect_status.as_ref().map_or(200, |status| {
        u16::try_from(*status.get_ref()).ok().filter(|code| (100..=599).contains(code)).unwrap_or_else(|| {
            let message = format!("must be an HTTP status from 100 to 599 (got {})", status.get_ref());
            checker.error(status.span(), &field("expect_status"), message);
            200
        })
    });
    let timeout_secs = raw
        .timeout
        .as_ref()
        .and_then(|timeout| checker.duration(timeout, &field("timeout"), CHECK_TIMEOUT_RANGE))
        .unwrap_or(DEFAULT_CHECK_TIMEOUT_SECS);
    let method = raw.method.as_ref().map_or_else(
        || "GET".to_owned(),
        |method| {
            let upper = method.get_ref().trim().to_ascii_uppercase();
            if !CHECK_METHODS.contains(&upper.as_str()) {
                let message = format!("must be one of {} (got {:?})", CHECK_METHODS.join(", "), method.get_ref());
                checker.error(method.span(), &field("method"), message);
            }
            upper
        },
    );
    let expect_body = raw.expect_body.as_ref().map(|body| {
        let text = body.get_ref();
        if text.is_empty() || text.len() > MAX_CHECK_BODY {
            checker.error(body.span(), &field("expect_body"), format!("must be 1 to {MAX_CHECK_BODY} bytes of text"));
        }
        text.clone()
    });
    let retries = raw.retries.as_ref().map_or(0, |retries| {
        u32::try_from(*retries.get_ref()).ok().filter(|n| *n <= MAX_CHECK_RETRIES).unwrap_or_else(|| {
            let message = format!("must be 0 to {MAX_CHECK_RETRIES} (got {})", retries.get_ref());
            checker.error(retries.span(), &field("retries"), message);
            0
        })
    });
    let interval_secs = raw
        .interval
        .as_ref()
        .and_then(|interval| checker.duration(interval, &field("interval"), CHECK_INTERVAL_RANGE))
        .unwrap_or(DEFAULT_CHECK_INTERVAL_SECS);
    let check = Check {
        hook: raw.hook.into_inner(),
        method,
        url,
        expect_status,
        expect_body,
        timeout_secs,
        retries,
        interval_secs,
    };
    warn_check_time(checker, span, &format!("{list}[{index}]"), &check, time);
    check
}

/// `"90s"`, `"15m"`, `"12h"`, `"7d"` (one number, one unit) in seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => MINUTE,
        "h" => 60 * MINUTE,
        "d" => DAY,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// A duration as the README writes its bounds: `0m`, `30s`, `5m`, `24h`, `7d` (a day is `24h`).
fn format_duration(secs: u64) -> String {
    match secs {
        0 => "0m".to_owned(),
        s if s % DAY == 0 && s > DAY => format!("{}d", s / DAY),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % MINUTE == 0 => format!("{}m", s / MINUTE),
        s => format!("{s}s"),
    }
}

const TOPIC: (fn(&str) -> bool, &str) = (is_sns_topic_arn, "must be an SNS topic ARN");

/// GitHub's limits: an account (the owner) is at most 39 characters, a repository's name at most 100.
fn repository_too_long(text: &str) -> Option<String> {
    let (owner, name) = text.split_once('/')?;
    if owner.len() > 39 {
        return Some(format!("a GitHub owner is at most 39 characters (got {})", owner.len()));
    }
    (name.len() > 100).then(|| format!("a GitHub repository name is at most 100 characters (got {})", name.len()))
}

/// A FIFO topic takes no email subscriptions, and sluice publishes without a message group.
fn fifo_topic(text: &str) -> Option<String> {
    text.ends_with(".fifo").then(|| {
        "is a FIFO topic (.fifo): FIFO topics take no email subscriptions, and sluice publishes to standard topics"
            .to_owned()
    })
}

/// An ARN given for an ECS cluster or service must be one: `arn:<partition>:ecs:<region>:<account>:<kind>...`.
fn arn_problem(text: &str, kind: &str, example: &str) -> Option<String> {
    if !text.starts_with("arn:") {
        return None;
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[1].starts_with("aws")
        && parts[2] == "ecs"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix(kind).is_some_and(|name| !name.is_empty() && !name.ends_with('/'));
    (!valid).then(|| format!("is not an ECS {} ARN (such as {example})", kind.trim_end_matches('/')))
}

/// CodeDeploy's predefined configurations for ECS
/// (<https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html>); a configuration of
/// your own is any other name not starting with `CodeDeployDefault.`.
const ECS_DEPLOYMENT_CONFIGS: [&str; 5] = [
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
];

fn non_ecs_deployment_config(text: &str) -> Option<String> {
    (text.starts_with("CodeDeployDefault.") && !ECS_DEPLOYMENT_CONFIGS.contains(&text))
        .then(|| format!("is not one of CodeDeploy's configurations for ECS: {}", ECS_DEPLOYMENT_CONFIGS.join(", ")))
}

/// A URL's authority must name a host (a name, an IPv4 address or a bracketed IPv6 one) and, if any, a port from 1
/// to 65535; credentials (`user@`) are not taken.
fn url_problem(text: &str) -> Option<String> {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Some("a URL with credentials (user@host) is not taken: checks send none".to_owned());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((address, after)) if address.parse::<std::net::Ipv6Addr>().is_ok() => match after {
                "" => (address, None),
                after => match after.strip_prefix(':') {
                    Some(port) => (address, Some(port)),
                    None => return Some("the URL has something between its host and its path".to_owned()),
                },
            },
            _ => return Some("the URL's host is not a valid IPv6 address in brackets".to_owned()),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let label = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if !authority.starts_with('[') && (name.is_empty() || name.len() > 253 || !name.split('.').all(label)) {
        return Some(format!("the URL names no valid host (got {:?})", bounded(host, SHOWN)));
    }
    match port.map(|port| port.parse::<u16>()) {
        Some(Ok(1..)) | None => None,
        Some(_) => {
            Some(format!("the URL's port must be from 1 to 65535 (got {:?})", bounded(port.unwrap_or(""), SHOWN)))
        }
    }
}

/// Whether `name` is a pipeline's name: 1 to 64 letters, digits, `-` or `_`.
pub fn is_pipeline_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_repository(text: &str) -> bool {
    let valid = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    matches!(text.split_once('/'), Some((owner, name)) if valid(owner) && valid(name) && !name.contains('/'))
}

/// <https://docs.aws.amazon.com/codebuild/latest/APIReference/API_CreateProject.html#CodeBuild-CreateProject-request-name>
fn is_codebuild_project(text: &str) -> bool {
    (2..=255).contains(&text.len())
        && text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_env_name(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `arn:<partition>:sns:<region>:<account>:<topic>`.
fn is_sns_topic_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && (1..=256).contains(&parts[5].len())
        && parts[5].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn is_ecs_name(text: &str) -> bool {
    text.starts_with("arn:")
        || ((1..=255).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// ECS container names: up to 255 letters, digits, hyphens and underscores.
fn is_container_name(text: &str) -> bool {
    (1..=255).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_codedeploy_name(text: &str) -> bool {
    (1..=100).contains(&text.len()) && !text.chars().any(char::is_whitespace)
}

fn is_http_url(text: &str) -> bool {
    if text.len() > MAX_URL {
        return false;
    }
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/') && !rest.chars().any(char::is_whitespace))
}

fn is_environment_name(name: &str) -> bool {
    (1..=255).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}
