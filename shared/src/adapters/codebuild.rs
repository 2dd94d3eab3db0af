//! `BuildStarter` on CodeBuild: StartBuild with the commit as `sourceVersion`, the pipeline's environment
//! overrides and an idempotency token (<https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html>).

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType};
use tracing::instrument;

use crate::contract::ports::{BuildReport, BuildRequest, BuildStartError, BuildStarter};

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
