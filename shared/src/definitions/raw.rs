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
        let (line, column) = line_column(text, offset);
        let (pipeline, field) = place_of(text, offset);
        DefinitionErrors(vec![DefinitionError {
            origin: origin.to_owned(),
            line,
            column,
            pipeline,
            field,
            message: error.message().trim().to_owned(),
        }])
    })
}
