//! What a test stage recorded: its CodeBuild build, and the summary of the test reports the build made
//! (CodeBuild's `TestReportSummary` and its failed `TestCase`s,
//! <https://docs.aws.amazon.com/codebuild/latest/APIReference/API_TestReportSummary.html>), bounded.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::state::bounded;

/// The failed test cases a run keeps, and how long each one's name and message may be.
pub const MAX_FAILED_TESTS: usize = 10;
pub const MAX_TEST_NAME: usize = 200;
pub const MAX_TEST_MESSAGE: usize = 300;

/// A test stage's build, as the run records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestFacts {
    /// The CodeBuild project that tests; empty when HTTP checks do.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// How many HTTP checks test (none when a CodeBuild project does).
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub checks: usize,
    /// The build's ARN, once CodeBuild started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether the release passed (once the build ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Why it did not pass, in a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The build's test reports, summed up, if it made any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<TestResults>,
    /// Each check's result and timing, in a line (HTTP checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn is_zero_count(count: &usize) -> bool {
    *count == 0
}

/// The test cases of a build's test reports, counted by status, with the first failed ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResults {
    #[serde(default)]
    pub passed: u64,
    #[serde(default)]
    pub failed: u64,
    /// Cases that could not run to a verdict (CodeBuild's `ERROR`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// Cases of a status CodeBuild did not say (`UNKNOWN`, or one it may add).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other: u64,
    /// The first failed (or errored) cases, at most [`MAX_FAILED_TESTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailedTest>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// One failed test case: its name (with its prefix, as CodeBuild shows it) and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl FailedTest {
    /// A failed case, bounded.
    pub fn new(name: &str, message: Option<&str>) -> Self {
        let message = message.map(str::trim).filter(|message| !message.is_empty());
        FailedTest {
            name: bounded(name.trim(), MAX_TEST_NAME),
            message: message.map(|message| bounded(message, MAX_TEST_MESSAGE)),
        }
    }
}

impl TestResults {
    /// Counts one status as CodeBuild names it (`SUCCEEDED`, `FAILED`, `ERROR`, `SKIPPED`, `UNKNOWN`).
    pub fn count(&mut self, status: &str, count: u64) {
        let counter = match status {
            "SUCCEEDED" => &mut self.passed,
            "FAILED" => &mut self.failed,
            "ERROR" => &mut self.errors,
            "SKIPPED" => &mut self.skipped,
            _ => &mut self.other,
        };
        *counter = counter.saturating_add(count);
    }

    /// Whether any case failed or errored.
    pub fn any_failed(&self) -> bool {
        self.failed > 0 || self.errors > 0
    }

    /// `118 passed, 2 failed, 3 skipped`: passed and failed always, the others when there are any.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} passed", self.passed), format!("{} failed", self.failed)];
        for (count, what) in [(self.errors, "errors"), (self.skipped, "skipped"), (self.other, "of unknown status")] {
            if count > 0 {
                parts.push(format!("{count} {}", if count == 1 && what == "errors" { "error" } else { what }));
            }
        }
        parts.join(", ")
    }

    /// `118 passed, 2 failed: LoginTest.rejects_bad_password, ...`: the summary and the names of the failed cases,
    /// in a line.
    pub fn failures_line(&self) -> String {
        let names: Vec<&str> = self.failures.iter().map(|failed| failed.name.as_str()).collect();
        match names.as_slice() {
            [] => self.summary(),
            names => format!("{}: {}", self.summary(), names.join(", ")),
        }
    }

    /// The same, bounded: at most [`MAX_FAILED_TESTS`] failures, each bounded.
    pub fn bounded(mut self) -> Self {
        self.failures.truncate(MAX_FAILED_TESTS);
        self.failures =
            self.failures.iter().map(|failed| FailedTest::new(&failed.name, failed.message.as_deref())).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_says_passed_and_failed_and_only_the_other_counts_there_are() {
        let mut results = TestResults::default();
        for (status, count) in [("SUCCEEDED", 118), ("FAILED", 2), ("SKIPPED", 3)] {
            results.count(status, count);
        }
        assert_eq!(results.summary(), "118 passed, 2 failed, 3 skipped");
        assert!(results.any_failed());
        let mut clean = TestResults::default();
        clean.count("SUCCEEDED", 7);
        clean.count("SOMETHING_NEW", 1);
        assert_eq!(clean.summary(), "7 passed, 0 failed, 1 of unknown status");
        assert!(!clean.any_failed());
        let mut errored = TestResults::default();
        errored.count("ERROR", 1);
        assert_eq!(errored.summary(), "0 passed, 0 failed, 1 error");
        assert!(errored.any_failed());
    }

    #[test]
    fn failures_are_kept_bounded() {
        let failures =
            (0..50).map(|k| FailedTest { name: format!("{k}{}", "n".repeat(1000)), message: Some("m".repeat(5000)) });
        let results = TestResults { failed: 50, failures: failures.collect(), ..Default::default() }.bounded();
        assert_eq!(results.failures.len(), MAX_FAILED_TESTS);
        assert!(results.failures.iter().all(|failed| failed.name.len() <= MAX_TEST_NAME));
        assert!(
            results.failures.iter().all(|failed| failed.message.as_ref().is_some_and(|m| m.len() <= MAX_TEST_MESSAGE))
        );
        assert_eq!(FailedTest::new("  a  ", Some("  ")), FailedTest { name: "a".into(), message: None });
    }
}
