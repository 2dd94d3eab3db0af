//! `BuildStarter` on CodeBuild: StartBuild with the commit as `sourceVersion`, the pipeline's environment
//! overrides and an idempotency token (<https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html>);
//! and `TestReports`: a build's `reportArns` (BatchGetBuilds), each test report's `testSummary`
//! (<https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BatchGetReports.html>) and its failed cases
//! (<https://docs.aws.amazon.com/codebuild/latest/APIReference/API_DescribeTestCases.html>).

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType, ReportStatusType, TestCaseFilter};
use tracing::instrument;

use crate::contract::ports::{BuildReport, BuildRequest, BuildStartError, BuildStarter, ReportError, TestReports};
use crate::pipeline::{FailedTest, MAX_FAILED_TESTS, TestResults};

/// The build starter on CodeBuild.
#[derive(Debug, Clone)]
pub struct CodeBuildStarter {
    client: Client,
}

impl CodeBuildStarter {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl BuildStarter for CodeBuildStarter {
    #[instrument(skip_all, fields(project = request.project, source_version = request.source_version))]
    async fn start_build(&self, request: &BuildRequest<'_>) -> Result<String, BuildStartError> {
        let mut overrides = Vec::with_capacity(request.environment.len());
        for (name, value) in request.environment {
            let variable = EnvironmentVariable::builder()
                .name(name)
                .value(value)
                .r#type(EnvironmentVariableType::Plaintext)
                .build()
                .map_err(|error| BuildStartError::Refused {
                    message: format!("environment variable {name} is invalid"),
                    source: Box::new(error),
                })?;
            overrides.push(variable);
        }
        let output = self
            .client
            .start_build()
            .project_name(request.project)
            .source_version(request.source_version)
            .set_environment_variables_override(Some(overrides))
            .idempotency_token(request.idempotency_token)
            .set_timeout_in_minutes_override(request.timeout_minutes.and_then(|minutes| i32::try_from(minutes).ok()))
            // A failure ends the run: the project's own auto-retry must not build the commit again behind it.
            .auto_retry_limit_override(0)
            .send()
            .await
            .map_err(classify)?;
        let build = output.build_value();
        build.and_then(|b| b.arn().or(b.id())).map(str::to_owned).ok_or_else(|| BuildStartError::Unavailable {
            source: "CodeBuild answered StartBuild without a build".into(),
        })
    }

    /// BatchGetBuilds takes the build id (`project:uuid`): the part of the ARN after `build/`.
    #[instrument(skip(self))]
    async fn build_report(&self, build_id: &str) -> Result<Option<BuildReport>, BuildStartError> {
        let id = build_id.split_once(":build/").map_or(build_id, |(_, id)| id);
        let output = self.client.batch_get_builds().ids(id).send().await.map_err(classify)?;
        let Some(build) = output.builds().first() else { return Ok(None) };
        let failed_phase = build
            .phases()
            .iter()
            .find(|phase| phase.phase_status().is_some_and(|status| status.as_str() != "SUCCEEDED"))
            .and_then(|phase| phase.phase_type())
            .map(|phase| phase.as_str().to_owned());
        Ok(Some(BuildReport {
            status: build.build_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            current_phase: build.current_phase().map(str::to_owned),
            failed_phase,
            artifact_location: build.artifacts().and_then(|a| a.location()).map(str::to_owned),
        }))
    }
}

impl TestReports for CodeBuildStarter {
    #[instrument(skip(self))]
    async fn test_results(&self, build_id: &str) -> Result<Option<TestResults>, ReportError> {
        let id = build_id.split_once(":build/").map_or(build_id, |(_, id)| id);
        let builds = self.client.batch_get_builds().ids(id).send().await.map_err(report_error)?;
        let arns = builds.builds().first().map(|build| build.report_arns().to_vec()).unwrap_or_default();
        if arns.is_empty() {
            return Ok(None);
        }
        // BatchGetReports takes at most 100 ARNs; a build has one report per report group it names.
        let reports = self.client.batch_get_reports().set_report_arns(Some(arns.into_iter().take(100).collect()));
        let reports = reports.send().await.map_err(report_error)?;
        let mut results = TestResults::default();
        let mut failing = Vec::new();
        let mut tested = false;
        for report in reports.reports() {
            let arn = report.arn().unwrap_or_default();
            match report.status() {
                Some(ReportStatusType::Generating) => {
                    return Err(ReportError::Unavailable {
                        source: format!("report {arn} is still generating").into(),
                    });
                }
                // A report CodeBuild could not make (from files it could not read, say) says nothing of the tests:
                // never a pass.
                Some(status @ (ReportStatusType::Failed | ReportStatusType::Incomplete)) => {
                    return Err(ReportError::Unmade { report: arn.to_owned(), status: status.as_str().to_owned() });
                }
                _ => {}
            }
            // A code coverage report has no test summary.
            let Some(summary) = report.test_summary() else { continue };
            tested = true;
            for (status, count) in summary.status_counts() {
                results.count(status, u64::try_from(*count).unwrap_or(0));
            }
            let failed =
                ["FAILED", "ERROR"].iter().any(|status| summary.status_counts().get(*status).is_some_and(|n| *n > 0));
            if let Some(arn) = report.arn().filter(|_| failed) {
                failing.push(arn.to_owned());
            }
        }
        if !tested {
            return Ok(None);
        }
        for arn in failing {
            for status in ["FAILED", "ERROR"] {
                let room = MAX_FAILED_TESTS.saturating_sub(results.failures.len());
                if room == 0 {
                    break;
                }
                let filter = TestCaseFilter::builder().status(status).build();
                let max = i32::try_from(room).unwrap_or(1);
                let request = self.client.describe_test_cases().report_arn(&arn).filter(filter).max_results(max);
                let cases = request.send().await.map_err(report_error)?;
                results.failures.extend(cases.test_cases().iter().take(room).map(|case| {
                    let name = match (case.prefix().filter(|prefix| !prefix.is_empty()), case.name()) {
                        (Some(prefix), Some(name)) => format!("{prefix}.{name}"),
                        (None, Some(name)) => name.to_owned(),
                        (prefix, None) => prefix.unwrap_or("(unnamed test)").to_owned(),
                    };
                    FailedTest::new(&name, case.message())
                }));
            }
        }
        Ok(Some(results))
    }
}

/// Denied or invalid requests will not change on retry; anything else may.
fn report_error<E, R>(error: SdkError<E, R>) -> ReportError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match super::refusal(&error, &["InvalidInputException", "AccessDeniedException"]) {
        Some(message) => ReportError::Refused { message, source: Box::new(error) },
        None => ReportError::Unavailable { source: Box::new(error) },
    }
}

/// <https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html#API_StartBuild_Errors>: a missing
/// project or invalid input will not change on retry; limits, throttling and transport failures may.
fn classify<E, R>(error: SdkError<E, R>) -> BuildStartError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let refused =
        super::refusal(&error, &["ResourceNotFoundException", "InvalidInputException", "AccessDeniedException"]);
    match refused {
        Some(message) => BuildStartError::Refused { message, source: Box::new(error) },
        None => BuildStartError::Unavailable { source: Box::new(error) },
    }
}
