//! The file as written: serde structs that keep the span of every value that validation may complain about.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::error::{DefinitionError, DefinitionErrors, LineIndex, line_column, place_of};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub pipelines: BTreeMap<Spanned<String>, RawPipeline>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    pub mode: Option<Spanned<String>>,
    pub source: RawSource,
    pub build: RawBuild,
    pub approval: Option<RawApproval>,
    pub deploy: Option<RawDeploy>,
    /// `[[pipelines.<name>.stages]]`: the stages after the build, in order (instead of `approval` and `deploy`).
    pub stages: Option<Vec<RawStage>>,
    /// When every deploy stage that gives none of its own may start deployments.
    pub windows: Option<Spanned<Vec<Spanned<RawWindow>>>>,
    pub deny: Option<Spanned<Vec<Spanned<RawDeny>>>>,
    pub notify: Option<RawNotify>,
    pub github: Option<RawGitHub>,
}

/// One of `[[pipelines.<name>.stages]]`: a name and one of `approval`, `deploy` and `test`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    pub name: Spanned<String>,
    pub approval: Option<RawApproval>,
    pub deploy: Option<RawDeploy>,
    pub test: Option<Spanned<RawTest>>,
    /// A deploy stage: how long the release must have run there before the next stage takes it.
    pub soak: Option<Spanned<String>>,
    /// A deploy stage that soaks: the CloudWatch alarms that watch the soak.
    pub soak_alarms: Option<Spanned<Vec<Spanned<String>>>>,
    /// Whether an alarm already in ALARM when the deployment started blocks the stage too.
    pub strict_alarms: Option<Spanned<bool>>,
    /// A deploy stage: the CloudWatch alarms that keep runs out of it while any is in ALARM.
    pub entry_alarms: Option<Spanned<Vec<Spanned<String>>>>,
    /// How long a run waits for its stage's entry alarms to leave ALARM before it fails.
    pub entry_timeout: Option<Spanned<String>>,
    /// A deploy stage: when it may start deployments.
    pub windows: Option<Spanned<Vec<Spanned<RawWindow>>>>,
    pub deny: Option<Spanned<Vec<Spanned<RawDeny>>>>,
    /// A deploy stage: the GitHub environment its Deployments are for.
    pub environment: Option<Spanned<String>>,
}

/// One of `windows`: days and hours in a time zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindow {
    pub days: Spanned<String>,
    pub hours: Spanned<String>,
    pub timezone: Spanned<String>,
}

/// One of `deny`: dates on which no deployment starts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeny {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub timezone: Spanned<String>,
    pub reason: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub repository: Spanned<String>,
    pub branches: Option<Spanned<RawFilter>>,
    pub tags: Option<Spanned<RawFilter>>,
    pub paths: Option<Spanned<RawFilter>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilter {
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    pub project: Spanned<String>,
    #[serde(default)]
    pub environment: BTreeMap<Spanned<String>, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApproval {
    pub topic: Spanned<String>,
    pub timeout: Option<Spanned<String>>,
    pub approvers: Option<Spanned<Vec<Spanned<String>>>>,
    pub required: Option<Spanned<i64>>,
    pub forbid_pusher: Option<Spanned<bool>>,
    pub operators: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A test stage: the CodeBuild project that tests the release, how long it may take, and what a failure does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTest {
    pub codebuild: Option<Spanned<String>>,
    pub checks: Option<Vec<Spanned<RawTestCheck>>>,
    pub timeout: Option<Spanned<String>>,
    pub on_failure: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub topic: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGitHub {
    pub environment: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeploy {
    pub strategy: Spanned<String>,
    pub cluster: Spanned<String>,
    pub service: Spanned<String>,
    pub application: Option<Spanned<String>>,
    pub deployment_group: Option<Spanned<String>>,
    pub deployment_config: Option<Spanned<String>>,
    pub minimum_healthy_percent: Option<Spanned<i64>>,
    pub maximum_percent: Option<Spanned<i64>>,
    pub circuit_breaker: Option<Spanned<RawCircuitBreaker>>,
    pub container: Option<Spanned<String>>,
    #[serde(default)]
    pub checks: Vec<Spanned<RawCheck>>,
    /// ECS-native strategies: how long both revisions run once production traffic has moved.
    pub bake_time: Option<Spanned<String>>,
    pub linear: Option<Spanned<RawLinear>>,
    pub canary: Option<Spanned<RawCanary>>,
    pub alarms: Option<Spanned<Vec<Spanned<String>>>>,
    /// ECS-native strategies: a person's approval at a lifecycle stage (a PAUSE hook).
    pub approval: Option<Spanned<RawPauseApproval>>,
    /// How long a deployment may take beyond what its strategy itself may wait, before the run fails.
    pub timeout: Option<Spanned<String>>,
    /// Whether the build's task definition may reach into the host (host PID or IPC namespace, privileged
    /// containers, host paths as volumes).
    pub allow_host: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPauseApproval {
    pub stage: Spanned<String>,
    pub topic: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub on_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLinear {
    pub step_percent: Option<Spanned<f64>>,
    pub step_bake_time: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    pub percent: Option<Spanned<f64>>,
    pub bake_time: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCircuitBreaker {
    pub enable: Option<bool>,
    pub rollback: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub hook: Spanned<String>,
    pub method: Option<Spanned<String>>,
    pub url: Spanned<String>,
    pub expect_status: Option<Spanned<i64>>,
    pub expect_body: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<Spanned<i64>>,
    pub interval: Option<Spanned<String>>,
}

/// One of a test stage's checks: a deploy stage's check without its `hook`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTestCheck {
    pub method: Option<Spanned<String>>,
    pub url: Spanned<String>,
    pub expect_status: Option<Spanned<i64>>,
    pub expect_body: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<Spanned<i64>>,
    pub interval: Option<Spanned<String>>,
}

impl RawTestCheck {
    /// The check as a deploy stage's would be written, at hook `hook`.
    pub fn at(self, hook: &str) -> RawCheck {
        let hook = Spanned::new(self.url.span(), hook.to_owned());
        let RawTestCheck { method, url, expect_status, expect_body, timeout, retries, interval } = self;
        RawCheck { hook, method, url, expect_status, expect_body, timeout, retries, interval }
    }
}

/// The top of the file: only `pipelines`, a table of pipelines (each read on its own below).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    #[serde(default, rename = "pipelines")]
    _pipelines: BTreeMap<String, IgnoredAny>,
}

/// How many mistakes in one pipeline's shape are set aside before the rest of it is left unread.
const MAX_SHAPE_MISTAKES: usize = 100;

/// Where a pipeline has a table, and the struct it is read as (besides each of `deploy.checks`).
const TABLES: [(&[&str], &str); 14] = [
    (&[], "RawPipeline"),
    (&["source"], "RawSource"),
    (&["source", "branches"], "RawFilter"),
    (&["source", "tags"], "RawFilter"),
    (&["source", "paths"], "RawFilter"),
    (&["build"], "RawBuild"),
    (&["approval"], "RawApproval"),
    (&["deploy"], "RawDeploy"),
    (&["deploy", "linear"], "RawLinear"),
    (&["deploy", "canary"], "RawCanary"),
    (&["deploy", "approval"], "RawPauseApproval"),
    (&["deploy", "circuit_breaker"], "RawCircuitBreaker"),
    (&["notify"], "RawNotify"),
    (&["github"], "RawGitHub"),
];

/// The keys whose values are durations (`"30m"`).
const DURATIONS: [&str; 4] = ["timeout", "interval", "bake_time", "step_bake_time"];

/// The tables a pipeline cannot be read without, and the values each needs.
const REQUIRED_TABLES: [(&str, &[&str]); 3] =
    [("source", &["repository"]), ("build", &["project"]), ("deploy", &["strategy", "cluster", "service"])];

/// The file as read: the pipelines whose shape could be read, every mistake in the shape (a key no table has, a
/// value of the wrong type, a value missing), and where a value stands in for a missing or mistyped one, so that
/// the rest is read and checked in the same run and nothing is said twice.
pub(super) struct Read {
    pub file: RawFile,
    pub errors: Vec<DefinitionError>,
    /// Where each stand-in starts: the value's own mistake was told; what validation would say there is not.
    pub stand_ins: BTreeSet<usize>,
    pub lines: LineIndex,
}

/// Reads the TOML. A syntax error is told alone, the first one (what a reader recovers after one is guesswork);
/// otherwise each pipeline is read on its own and each mistake in its shape is told and set aside, so that every
/// mistake is found in one run.
pub(super) fn parse(origin: &str, text: &str) -> Result<Read, DefinitionErrors> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if let Some(first) = syntax.iter().min_by_key(|error| error.span().map_or(0, |span| span.start)) {
        let mut error = placed(origin, text, first);
        error.message.push_str(" (the rest of the file is checked once it reads as TOML)");
        return Err(DefinitionErrors(vec![error]));
    }
    let lines = LineIndex::new(text);
    let mut reader = Reader { origin, text, lines, pipeline: None, errors: Vec::new(), stand_ins: BTreeSet::new() };
    let span = root.span();
    let mut root = Spanned::new(span, DeValue::Table(root.into_inner()));
    reader.shape::<RawTop>(&mut root, Vec::new());
    let mut file = RawFile { pipelines: BTreeMap::new() };
    let pipelines = match root.into_inner() {
        DeValue::Table(mut table) => table.remove("pipelines").map(Spanned::into_inner),
        _ => None,
    };
    if let Some(DeValue::Table(pipelines)) = pipelines {
        for (name, mut pipeline) in pipelines {
            reader.pipeline = Some(name.get_ref().to_string());
            let mut stand_ins = reader.lists_for_tables(&mut pipeline);
            stand_ins.extend(reader.deploy_or_stages(&mut pipeline));
            if let Some(read) = reader.shape::<RawPipeline>(&mut pipeline, stand_ins) {
                file.pipelines.insert(Spanned::new(name.span(), name.into_inner().into_owned()), read);
            }
        }
    }
    let Reader { errors, stand_ins, lines, .. } = reader;
    Ok(Read { file, errors, stand_ins, lines })
}

struct Reader<'a> {
    origin: &'a str,
    text: &'a str,
    lines: LineIndex,
    /// The pipeline being read, if any.
    pipeline: Option<String>,
    errors: Vec<DefinitionError>,
    /// Where each stand-in starts.
    stand_ins: BTreeSet<usize>,
}

impl<'t> Reader<'t> {
    /// Reads `value` as a `T`, telling each mistake in its shape and setting it aside until the rest reads: a key
    /// no table has or a value of the wrong type is removed, a missing or mistyped string or table is stood in for.
    /// `None` after [`MAX_SHAPE_MISTAKES`].
    fn shape<T: DeserializeOwned>(
        &mut self,
        value: &mut Spanned<DeValue<'t>>,
        mut stand_ins: Vec<Range<usize>>,
    ) -> Option<T> {
        // `stand_ins`: those in this value. A mistake within one is a consequence of the one already told.
        let mut told = 0;
        // Each pass sets one mistake aside; one told within a stand-in counts as a pass, not as a mistake.
        for _ in 0..MAX_SHAPE_MISTAKES * 4 {
            let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(read) => return Some(read),
                Err(error) => error,
            };
            let span = error.span().unwrap_or_else(|| value.span());
            let missing = error.message().strip_prefix("missing field `").and_then(|m| m.split('`').next());
            let (path, message) = find_mistake(value, &span, missing, error.message());
            if !stand_ins.iter().any(|stand_in| stand_in.start <= span.start && span.end <= stand_in.end) {
                if told == MAX_SHAPE_MISTAKES {
                    break;
                }
                told += 1;
                let told = self.told(&span, path.as_deref().unwrap_or_default(), missing, &message);
                self.errors.push(told);
            }
            // Not found in the tree (no reader error is): told at the value, which is left unread.
            if let Some(stand_in) = set_aside(value, &path?, missing, &message)? {
                self.stand_ins.insert(stand_in.start);
                stand_ins.push(stand_in);
            }
        }
        let (line, column) = self.lines.line_column(self.text, value.span().start);
        self.errors.push(DefinitionError {
            origin: self.origin.to_owned(),
            line,
            column,
            pipeline: self.pipeline.clone(),
            field: String::new(),
            message: if self.pipeline.is_some() {
                format!("over {MAX_SHAPE_MISTAKES} mistakes in this pipeline: the rest of it is not read")
            } else {
                format!("over {MAX_SHAPE_MISTAKES} mistakes at the file's top level: the rest of them are not told")
            },
        });
        None
    }

    /// A list where a pipeline has a table (`[[pipelines.web.source]]`, `circuit_breaker = [false, true]`): serde
    /// would read the table from the list by position, so each is told and stood in for by an empty table before
    /// the pipeline is read. The stand-ins' spans.
    fn lists_for_tables(&mut self, pipeline: &mut Spanned<DeValue<'t>>) -> Vec<Range<usize>> {
        let checks = vec![Step::Key("deploy".into()), Step::Key("checks".into())];
        let count = at(pipeline, &checks).map_or(0, |value| match value.get_ref() {
            DeValue::Array(items) => items.len(),
            _ => 0,
        });
        let paths: Vec<(Vec<Step>, &str)> = TABLES
            .iter()
            .map(|(keys, name)| (keys.iter().map(|key| Step::Key((*key).to_owned())).collect(), *name))
            .chain((0..count).map(|i| ([checks.clone(), vec![Step::Index(i)]].concat(), "RawCheck")))
            .collect();
        let mut stand_ins = Vec::new();
        for (path, name) in paths {
            let Some(value) = at(pipeline, &path) else { continue };
            if !matches!(value.get_ref(), DeValue::Array(_)) {
                continue;
            }
            let span = value.span();
            *value = Spanned::new(span.clone(), DeValue::Table(DeTable::new()));
            let message = format!("invalid type: sequence, expected struct {name}");
            let told = self.told(&span, &path, None, &message);
            self.errors.push(told);
            self.stand_ins.insert(span.start);
            stand_ins.push(span);
        }
        stand_ins
    }

    /// A pipeline with neither a `deploy` table nor `stages`: `deploy` is told missing (as serde would of a required
    /// table) and stood in for. The stand-in's span.
    fn deploy_or_stages(&mut self, pipeline: &mut Spanned<DeValue<'t>>) -> Option<Range<usize>> {
        let DeValue::Table(table) = pipeline.get_ref() else { return None };
        // A pipeline already told of (a list where its table goes) is not told again.
        if table.contains_key("deploy")
            || table.contains_key("stages")
            || self.stand_ins.contains(&pipeline.span().start)
        {
            return None;
        }
        let message = "missing field `deploy`";
        let told = self.told(&pipeline.span(), &[], Some("deploy"), message);
        self.errors.push(told);
        let stand_in = set_aside(pipeline, &[], Some("deploy"), message)??;
        self.stand_ins.insert(stand_in.start);
        Some(stand_in)
    }

    /// A mistake in the shape at `span`, `path` within the pipeline, in the file's words: a missing value names
    /// the table it goes in.
    fn told(&self, span: &Range<usize>, path: &[Step], missing: Option<&str>, message: &str) -> DefinitionError {
        // A table that lacks a value is shown at its header (a pipeline's name in `[pipelines.web.source]`: that
        // header's start).
        let line_start = self.text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let header = missing.is_some() && self.text[line_start..].starts_with('[');
        let (line, column) = self.lines.line_column(self.text, if header { line_start } else { span.start });
        let field = field_name(path);
        let message = match missing {
            // The checks are a list of tables, each under its own header.
            None if field == "deploy.checks" => in_toml_words(message.trim()).replace(
                "a list such as [\"a\", \"b\"]",
                &format!("a list of tables, each under [[pipelines.{}.deploy.checks]]", pipeline_key(&self.pipeline)),
            ),
            // A duration is a string too: say so, with one.
            None if DURATIONS.contains(&field.rsplit('.').next().unwrap_or_default()) => in_toml_words(message.trim())
                .replace("a string in quotes, such as \"main\"", "a duration in quotes, such as \"30m\""),
            None => in_toml_words(message.trim()),
            Some(missing) => {
                let table =
                    match (Some(pipeline_key(&self.pipeline)).filter(|_| self.pipeline.is_some()), field.as_str()) {
                        (_, field) if field.contains('[') => field.to_owned(),
                        (Some(pipeline), "") => format!("[pipelines.{pipeline}]"),
                        (Some(pipeline), field) => format!("[pipelines.{pipeline}.{field}]"),
                        (None, field) => format!("[{field}]"),
                    };
                if REQUIRED_TABLES.iter().any(|(name, _)| *name == missing) {
                    let whole = format!("{}.{missing}]", table.trim_end_matches(']'));
                    format!("`{missing}` is missing: add {whole} or {missing} = {{ ... }}")
                } else {
                    format!("`{missing}` is missing: add {missing} = ... to {table}")
                }
            }
        };
        let origin = self.origin.to_owned();
        DefinitionError { origin, line, column, pipeline: self.pipeline.clone(), field, message }
    }
}

/// Sets aside the mistake a reader found at `path` in `root`: a missing value is stood in for, a mistyped string,
/// list or table is replaced by an empty one, anything else is removed. Returns the stand-in's span, when there is one;
/// `None` when nothing at `path` can be set aside.
fn set_aside(
    root: &mut Spanned<DeValue<'_>>,
    path: &[Step],
    missing: Option<&str>,
    message: &str,
) -> Option<Option<Range<usize>>> {
    let value = at(root, path)?;
    let span = value.span();
    if let Some(missing) = missing {
        let DeValue::Table(table) = value.get_mut() else { return None };
        // A stand-in for a missing value stands where its table's span ends, so that another value the table
        // lacks is still told. A missing table comes with what it needs; every other value a table needs is a
        // string.
        let at = span.end..span.end;
        let stand_in = match REQUIRED_TABLES.iter().find(|(name, _)| *name == missing) {
            Some((_, needs)) => DeValue::Table(
                needs
                    .iter()
                    .map(|key| {
                        (Spanned::new(at.clone(), Cow::Borrowed(*key)), Spanned::new(at.clone(), empty_string()))
                    })
                    .collect(),
            ),
            None => empty_string(),
        };
        let span = at;
        let key = Spanned::new(span.clone(), Cow::Owned(missing.to_owned()));
        table.insert(key, Spanned::new(span.clone(), stand_in));
        return Some(Some(span));
    }
    let stand_in = if message.ends_with("expected a string") {
        Some(empty_string())
    } else if message.ends_with("expected a sequence") {
        Some(DeValue::Array(std::iter::empty().collect()))
    } else if message.contains(", expected struct ") {
        Some(DeValue::Table(DeTable::new()))
    } else {
        None
    };
    if let Some(stand_in) = stand_in {
        *value = Spanned::new(span.clone(), stand_in);
        return Some(Some(span));
    }
    let (last, parent) = path.split_last()?;
    match (at(root, parent)?.get_mut(), last) {
        (DeValue::Table(table), Step::Key(key)) => drop(table.remove(key.as_str())),
        (DeValue::Array(array), Step::Index(i)) if *i < array.len() => {
            let items = std::mem::replace(array, std::iter::empty().collect());
            *array = items.into_iter().enumerate().filter(|(j, _)| j != i).map(|(_, item)| item).collect();
        }
        _ => return None,
    }
    Some(None)
}

/// Where in `value` the reader's mistake at `span` is, and the reader's message: a date or time, which the reader
/// shows as a table, is told as what it is.
fn find_mistake(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    missing: Option<&str>,
    message: &str,
) -> (Option<Vec<Step>>, String) {
    let kind = kind_found(missing, message);
    match path_to(value, span, kind) {
        None if missing.is_none() && kind == Some("table") => match path_to(value, span, Some("datetime")) {
            Some(path) => (Some(path), message.replacen("invalid type: map", "invalid type: date-time", 1)),
            None => (None, message.to_owned()),
        },
        path => (path, message.to_owned()),
    }
}

/// The kind of value a reader's error is about, in [`DeValue::type_str`]'s words: the table a missing value goes
/// in, or what a value of the wrong type is (`invalid type: sequence, ...`).
fn kind_found(missing: Option<&str>, message: &str) -> Option<&'static str> {
    if missing.is_some() {
        return Some("table");
    }
    if message.starts_with("invalid length ") {
        return Some("array");
    }
    let found = message.strip_prefix("invalid type: ")?.split([',', ' ']).next()?;
    Some(match found {
        "map" => "table",
        "sequence" => "array",
        "string" => "string",
        "integer" => "integer",
        "floating" => "float",
        "boolean" => "boolean",
        _ => return None,
    })
}

fn empty_string<'t>() -> DeValue<'t> {
    DeValue::String(Cow::Borrowed(""))
}

/// One step down a TOML tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path to the deepest value at `span` of the `kind` given (`table`, `array`, `string`... as
/// [`DeValue::type_str`] says: a table and the array of tables its header makes share a span), or to the entry
/// whose key holds `span` (a key no table has is told at the key). A header's table is not within its parent's
/// span: every branch is searched.
fn path_to(value: &Spanned<DeValue<'_>>, span: &Range<usize>, kind: Option<&str>) -> Option<Vec<Step>> {
    let table = kind == Some("table");
    let within = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    let found = match value.get_ref() {
        DeValue::Table(entries) => entries.iter().find_map(|(key, child)| {
            let step = || Step::Key(key.get_ref().to_string());
            match path_to(child, span, kind) {
                Some(rest) => Some([vec![step()], rest].concat()),
                None => (!table && within(key.span())).then(|| vec![step()]),
            }
        }),
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| path_to(child, span, kind).map(|rest| [vec![Step::Index(i)], rest].concat())),
        _ => None,
    };
    let here = value.span() == *span && kind.is_none_or(|kind| kind == value.get_ref().type_str());
    found.or_else(|| here.then(Vec::new))
}

fn at<'v, 't>(mut value: &'v mut Spanned<DeValue<'t>>, path: &[Step]) -> Option<&'v mut Spanned<DeValue<'t>>> {
    for step in path {
        value = match (value.get_mut(), step) {
            (DeValue::Table(table), Step::Key(key)) => table.get_mut(key.as_str())?,
            (DeValue::Array(array), Step::Index(i)) => array.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// A syntax error, placed at its line and told in the file's words.
fn placed(origin: &str, text: &str, error: &toml::de::Error) -> DefinitionError {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = line_column(text, offset);
    let (pipeline, field) = place_of(text, offset);
    let mut message = in_toml_words(error.message().trim());
    if message == "duplicate key"
        && let Some(first) = first_definition(text, offset)
    {
        message = format!("defined twice: first at line {first}");
    }
    DefinitionError { origin: origin.to_owned(), line, column, pipeline, field, message }
}

fn pipeline_key(pipeline: &Option<String>) -> String {
    toml_key(pipeline.as_deref().unwrap_or("NAME"))
}

/// A key as a TOML header writes it: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        return key.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in key.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A path within a pipeline as fields are named: `deploy.checks[0].url`.
fn field_name(path: &[Step]) -> String {
    let mut name = String::new();
    for step in path {
        match step {
            Step::Key(key) if name.is_empty() => name.push_str(key),
            Step::Key(key) => {
                name.push('.');
                name.push_str(key);
            }
            Step::Index(i) => name.push_str(&format!("[{i}]")),
        }
    }
    name
}

/// For a key or header defined twice, the line (1-based) where the first is: the same header earlier, or the same
/// key earlier in the same table.
fn first_definition(text: &str, offset: usize) -> Option<usize> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    let before: Vec<&str> = text[..start].lines().collect();
    if line.starts_with('[') {
        return before.iter().position(|earlier| earlier.trim() == line).map(|i| i + 1);
    }
    let key = line.split('=').next()?.trim();
    let table_start = before.iter().rposition(|earlier| earlier.trim_start().starts_with('[')).map_or(0, |i| i + 1);
    before[table_start..]
        .iter()
        .position(|earlier| earlier.split('=').next().is_some_and(|k| k.trim() == key) && earlier.contains('='))
        .map(|i| table_start + i + 1)
}

/// A message of the TOML reader in the words of a TOML file, not of the Rust types it fills: `expected i64`
/// becomes "a whole number such as 3", with an example of what to write.
pub(super) fn in_toml_words(message: &str) -> String {
    // `[]` where a table goes: serde reads a table from a list too, and says its length is wrong.
    let length = message.strip_prefix("invalid length ").and_then(|rest| {
        let expected = rest.split_once(", expected ")?.1;
        Some(format!("sequence, expected {}", expected.split(" with ").next()?))
    });
    let Some(rest) = length
        .as_deref()
        .or_else(|| message.strip_prefix("invalid type: "))
        .or_else(|| message.strip_prefix("invalid value: "))
    else {
        return message.to_owned();
    };
    let Some((found, expected)) = rest.rsplit_once(", expected ") else { return message.to_owned() };
    let expected = match expected.trim() {
        "i64" | "i32" | "u64" | "u32" | "u16" | "an integer" => "a whole number such as 3",
        "f64" | "f32" => "a number such as 2.5",
        "a string" => "a string in quotes, such as \"main\"",
        "a boolean" => "true or false",
        "a sequence" => "a list such as [\"a\", \"b\"]",
        "struct RawFilter" => "a table such as { include = [\"main\"] }",
        "struct RawCircuitBreaker" => "a table such as { enable = true, rollback = true }",
        "struct RawLinear" => "a table such as { step_percent = 10, step_bake_time = \"6m\" }",
        "struct RawCanary" => "a table such as { percent = 5, bake_time = \"10m\" }",
        "struct RawPauseApproval" => "a table such as { stage = \"POST_TEST_TRAFFIC_SHIFT\" }",
        "struct RawCheck" => "a table such as { hook = \"AfterRollout\", url = \"http://web:8080/health\" }",
        "struct RawSource" => "a table such as { repository = \"acme/web\" }",
        "struct RawBuild" => "a table such as { project = \"web-build\" }",
        "struct RawDeploy" => "a table such as { strategy = \"rolling\", cluster = \"prod\", service = \"web\" }",
        "struct RawApproval" | "struct RawNotify" => {
            "a table such as { topic = \"arn:aws:sns:eu-west-1:123456789012:approvers\" }"
        }
        "struct RawPipeline" => "a table such as [pipelines.web] with source, build and deploy",
        other if other.starts_with("struct ") || other == "a map" => "a table such as { name = \"value\" }",
        other => other,
    };
    let found = found.trim().trim_end_matches(" as i128");
    let found = match found {
        "map" => "a table".to_owned(),
        "sequence" => "a list".to_owned(),
        "date-time" => "a date or time".to_owned(),
        found => match found.split_once(' ') {
            Some(("integer", value)) => format!("the whole number {value}"),
            Some(("floating", value)) => format!("the number {}", value.trim_start_matches("point ")),
            Some(("string", value)) => format!("the string {value}"),
            Some(("boolean", value)) => value.to_owned(),
            _ => found.to_owned(),
        },
    };
    format!("must be {expected} (got {found})")
}
