//! The file as written: serde structs that keep the span of every value that validation may complain about.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::error::{DefinitionError, DefinitionErrors, line_column, place_of};

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
    pub deploy: RawDeploy,
    pub notify: Option<RawNotify>,
    pub github: Option<RawGitHub>,
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

/// Parses the TOML; a syntax or shape error becomes one `DefinitionError` placed at its line.
pub(super) fn parse(origin: &str, text: &str) -> Result<RawFile, DefinitionErrors> {
    toml::from_str(text).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        let (mut line, mut column) = line_column(text, offset);
        let (mut pipeline, mut field) = place_of(text, offset);
        let mut message = in_toml_words(error.message().trim());
        if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
            // Blamed on the table that lacks it: a header's key names it (`web` in `[pipelines.web.source]`).
            if let Some((table, at)) = table_at(text, offset) {
                (pipeline, field) = split_path(&table);
                (line, column) = line_column(text, at);
                let whole = [table.as_slice(), &[missing.to_owned()]].concat().join(".");
                message = match missing {
                    "source" | "build" | "deploy" => {
                        format!("`{missing}` is missing: add [{whole}] or {missing} = {{ ... }}")
                    }
                    _ => format!("`{missing}` is missing: add {missing} = ... to [{}]", table.join(".")),
                };
            }
        } else if message == "duplicate key"
            && let Some(first) = first_definition(text, offset)
        {
            message = format!("defined twice: first at line {first}");
        }
        DefinitionErrors(vec![DefinitionError { origin: origin.to_owned(), line, column, pipeline, field, message }])
    })
}

/// The table a header's key at `offset` names (`[pipelines.web.source]` at `web`: `pipelines.web`), and where its
/// header starts; `None` when `offset` is not in a header.
fn table_at(text: &str, offset: usize) -> Option<(Vec<String>, usize)> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let header = text[start..].lines().next()?.trim_end();
    if !header.starts_with('[') {
        return None;
    }
    let inner = header.trim_start_matches('[');
    let keys = inner.split(']').next()?;
    // At the bracket: the header's own table.
    let Some(upto) = offset.checked_sub(start + (header.len() - inner.len())) else {
        let path = keys.split('.').map(|key| key.trim().trim_matches(|c| c == '"' || c == '\'').to_owned());
        return Some((path.collect(), start));
    };
    let mut path = Vec::new();
    let mut at = 0;
    for key in keys.split('.') {
        path.push(key.trim().trim_matches(|c| c == '"' || c == '\'').to_owned());
        at += key.len() + 1;
        if at > upto {
            break;
        }
    }
    Some((path, start))
}

/// (pipeline, field) of a table's path: `pipelines.web.deploy` is pipeline `web`, field `deploy`.
fn split_path(path: &[String]) -> (Option<String>, String) {
    match path {
        [first, name, rest @ ..] if first == "pipelines" => (Some(name.clone()), rest.join(".")),
        _ => (None, path.join(".")),
    }
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
    let Some(rest) = message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: ")) else {
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
        other if other.starts_with("struct ") || other == "a map" => "a table such as { name = \"value\" }",
        other => other,
    };
    let found = found.trim().trim_end_matches(" as i128");
    let found = match found {
        "map" => "a table".to_owned(),
        "sequence" => "a list".to_owned(),
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
