//! Reading a function's configuration from its environment, once, at start-up.
//!
//! Each function has its own typed `Config::from_env()` built from these helpers. AWS endpoints are not
//! configuration of sluice's: aws-config honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`.

/// The DynamoDB table that holds pipeline states, executions and receipts.
pub const TABLE: &str = "SLUICE_TABLE";
/// The EventBridge bus sluice publishes on.
pub const EVENT_BUS: &str = "SLUICE_EVENT_BUS";
/// A custom base URL for the approval and status pages (a domain in front of the approval function's URL); the
/// function URL's own otherwise.
pub const APPROVAL_URL: &str = "SLUICE_APPROVAL_URL";
/// The name or ARN of the Secrets Manager secret that holds the status page's key; no status page (and no links to
/// it) without it.
pub const STATUS_KEY: &str = "SLUICE_STATUS_KEY";
/// The name or ARN of the Secrets Manager secret with which sluice signs in to GitHub (a token, or a GitHub App's id
/// and key); nothing is shown on GitHub, and no failed delivery redelivered, without it.
pub const GITHUB_TOKEN: &str = "SLUICE_GITHUB_TOKEN";
/// GitHub's REST API, for GitHub Enterprise Server (`https://HOST/api/v3`); `https://api.github.com` by default.
pub const GITHUB_API_URL: &str = "SLUICE_GITHUB_API";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set; set it in template.yaml (or the shell, locally)")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The value of a variable that must be set and not empty, read through `lookup` (`std::env::var` in a function's
/// `Config::from_env`, a closure in tests, which need not touch the process environment).
pub fn required_from(name: &'static str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    match lookup(name) {
        Some(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// The value of a variable that may be left out, trimmed, read through `lookup`: `None` when unset or empty.
pub fn optional_from(name: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    lookup(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty())
}

/// What every function reads: the pipeline table and the event bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub table: String,
    pub event_bus: String,
}

impl Common {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup` (tests pass a closure rather than touch the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { table: required_from(TABLE, &lookup)?, event_bus: required_from(EVENT_BUS, &lookup)? })
    }
}

/// The secret sluice signs in to GitHub with (`None`: none given) and GitHub's API, read through `lookup`.
pub fn github_from(lookup: impl Fn(&str) -> Option<String>) -> (Option<String>, String) {
    let api = optional_from(GITHUB_API_URL, &lookup).unwrap_or_else(|| crate::adapters::GITHUB_API.to_owned());
    (optional_from(GITHUB_TOKEN, &lookup), api)
}

/// Where a function runs: `AWS_REGION` (Lambda sets it), read through `lookup`; `us-east-1` when unset (locally).
pub fn region_from(lookup: impl Fn(&str) -> Option<String>) -> String {
    lookup("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned())
}

/// The shared AWS configuration: region, credentials and endpoints from the environment, as in every AWS SDK.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_blank_variable_is_named_in_the_error() {
        assert_eq!(required_from(TABLE, |_| None), Err(ConfigError::Missing("SLUICE_TABLE")));
        assert_eq!(required_from(TABLE, |_| Some("  ".into())), Err(ConfigError::Missing("SLUICE_TABLE")));
        assert_eq!(required_from(TABLE, |_| Some(" sluice ".into())), Ok("sluice".into()));
        let message = ConfigError::Missing(TABLE).to_string();
        assert!(message.contains("SLUICE_TABLE"), "{message}");
    }

    #[test]
    fn an_optional_variable_unset_or_blank_is_none_and_a_set_one_is_trimmed() {
        assert_eq!(optional_from(STATUS_KEY, |_| None), None);
        assert_eq!(optional_from(STATUS_KEY, |_| Some(" \t".into())), None);
        assert_eq!(optional_from(STATUS_KEY, |name| Some(format!(" {name} "))), Some(STATUS_KEY.to_owned()));
    }

    #[test]
    fn every_function_reads_the_table_and_the_bus_and_names_what_is_missing() {
        assert_eq!(Common::from_lookup(|_| None), Err(ConfigError::Missing("SLUICE_TABLE")));
        let only_table = |name: &str| (name == TABLE).then(|| "sluice-table".to_owned());
        assert_eq!(Common::from_lookup(only_table), Err(ConfigError::Missing("SLUICE_EVENT_BUS")));
        let both = Common::from_lookup(|name| Some(name.to_lowercase())).expect("complete");
        assert_eq!((both.table.as_str(), both.event_bus.as_str()), ("sluice_table", "sluice_event_bus"));
    }
}
