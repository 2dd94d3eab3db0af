//! A CodeBuild build state change (<https://docs.aws.amazon.com/codebuild/latest/userguide/sample-build-notifications.html>):
//! record it on its execution and, when the build succeeded, read its outputs and move the run on.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::{info, instrument};

use crate::contract::ports::{
    ArtifactError, ArtifactLocation, ArtifactStore, ImageRegistry, PipelineStore, ReceiptKey, RegistryError,
    ReportError, TestReports,
};
use crate::definitions::DeployTarget;
use crate::deploy::image::ImageRef;
use crate::pipeline::{BuildFailure, BuildOutputs, Event, ExecutionId, Stage};
use crate::usecases::{EffectRunner, HandleError, Handled, Input, handle};

/// A build event that could not be recorded now.
#[derive(Debug, thiserror::Error)]
pub enum BuildEventError {
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// The build's outputs could not be read now: the run stays in its build stage and the event is tried again.
    #[error("the build's {file} could not be read now; the event is tried again")]
    Artifacts {
        file: &'static str,
        #[source]
        source: ArtifactError,
    },
    /// The digest of the build's image could not be looked up now: the run stays in its build stage and the event
    /// is tried again.
    #[error("the digest of the build's image {image} could not be looked up now; the event is tried again")]
    Registry {
        image: String,
        #[source]
        source: RegistryError,
    },
    /// A test build's reports could not be read now: the run stays in its test stage and the event is tried again.
    #[error("the test reports of build {build_id} could not be read now; the event is tried again")]
    Reports {
        build_id: String,
        #[source]
        source: ReportError,
    },
}

impl BuildEventError {
    /// Whether delivering the event again can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            BuildEventError::Handle(error) => error.is_retryable(),
            BuildEventError::Artifacts { .. } | BuildEventError::Registry { .. } | BuildEventError::Reports { .. } => {
                true
            }
        }
    }
}

/// Why a build's outputs cannot be used: the run fails with `Fail`'s reason; `Retry` tries the event again.
enum OutputsError {
    Fail(String),
    Retry(BuildEventError),
}

impl From<String> for OutputsError {
    fn from(reason: String) -> Self {
        OutputsError::Fail(reason)
    }
}

impl From<&str> for OutputsError {
    fn from(reason: &str) -> Self {
        OutputsError::Fail(reason.to_owned())
    }
}

/// The files a build leaves in its artifacts for sluice.
pub const IMAGE_DETAIL: &str = "imageDetail.json";
pub const TASK_DEFINITION: &str = crate::deploy::TASK_DEFINITION_FILE;
pub const APPSPEC: &str = crate::deploy::APPSPEC_FILE;

/// The facts of one "CodeBuild Build State Change" event that sluice uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildStateChange {
    /// The EventBridge event id (deduplicates redeliveries).
    pub event_id: String,
    /// `build-id`: the build's ARN.
    pub build_id: String,
    /// `build-status`: IN_PROGRESS, SUCCEEDED, FAILED, FAULT, STOPPED or TIMED_OUT.
    pub status: String,
    pub current_phase: Option<String>,
    /// The first phase whose status is not SUCCEEDED, for a build that ended without success.
    pub failed_phase: Option<String>,
    /// The `SLUICE_EXECUTION_ID` and `SLUICE_PIPELINE` environment variables sluice starts its builds with.
    pub execution_id: Option<String>,
    pub pipeline: Option<String>,
    /// `SLUICE_STAGE`: the test stage whose build it is (a run's own build has none).
    pub stage: Option<String>,
    /// `additional-information.artifact.location`: `arn:aws:s3:::bucket/key`.
    pub artifact_location: Option<String>,
}

impl BuildStateChange {
    /// The facts sluice uses of a "CodeBuild Build State Change" event, read leniently: CodeBuild documents its events
    /// by sample only (<https://docs.aws.amazon.com/codebuild/latest/userguide/sample-build-notifications.html>), and
    /// the rule takes every build of the account, so nothing but the build's id and status is required, and a field of
    /// an unexpected type counts as absent. `None` when the event has no build id or status.
    pub fn read(event: &Value) -> Option<Self> {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let detail = event.get("detail")?;
        let information = detail.get("additional-information");
        let build_id = text(detail.get("build-id"))?;
        let status = text(detail.get("build-status"))?;
        let listed = |name: &str| -> Vec<&Value> {
            information
                .and_then(|i| i.pointer(name))
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default()
        };
        let variable = |name: &str| {
            listed("/environment/environment-variables")
                .into_iter()
                .find(|variable| variable.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|variable| text(variable.get("value")))
        };
        let failed_phase = listed("/phases")
            .into_iter()
            .find(|phase| phase.get("phase-status").and_then(Value::as_str).is_some_and(|status| status != "SUCCEEDED"))
            .and_then(|phase| text(phase.get("phase-type")));
        Some(Self {
            event_id: text(event.get("id")).unwrap_or_default(),
            build_id,
            status,
            current_phase: text(detail.get("current-phase")),
            failed_phase,
            execution_id: variable("SLUICE_EXECUTION_ID"),
            pipeline: variable("SLUICE_PIPELINE"),
            stage: variable("SLUICE_STAGE"),
            artifact_location: text(information.and_then(|i| i.pointer("/artifact/location"))),
        })
    }
}

/// What became of the event.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEventOutcome {
    /// The build was not started by sluice (no execution id in its environment), or its status is not one sluice
    /// acts on.
    NotOurs(&'static str),
    Handled(Handled),
}

/// Where the artifacts are, from CodeBuild's `arn:aws:s3:::bucket/key` (or `s3://bucket/key`).
pub fn artifact_location(location: &str) -> Option<ArtifactLocation> {
    let path = location.split_once(":s3:::").map(|(_, path)| path).or_else(|| location.strip_prefix("s3://"))?;
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    (!bucket.is_empty()).then(|| ArtifactLocation { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
}

/// The build's own id, the part of its ARN CodeBuild puts in artifact paths (`project:<uuid>` -> `<uuid>`).
fn build_uuid(build_id: &str) -> &str {
    build_id.rsplit(':').next().unwrap_or(build_id)
}

/// Reads and checks the build's outputs. A `Fail` is the reason the run fails, naming the file.
async fn outputs<A: ArtifactStore + ImageRegistry>(
    artifacts: &A,
    build_id: &str,
    location: Option<&str>,
    targets: &[(Stage, &DeployTarget)],
) -> Result<BuildOutputs, OutputsError> {
    let location = location
        .filter(|l| !l.is_empty())
        .ok_or("the build has no artifacts: list imageDetail.json and taskdef.json in the buildspec's artifacts")?;
    let location = artifact_location(location).ok_or_else(|| format!("unreadable artifact location {location}"))?;
    if location.prefix.ends_with(".zip") {
        return Err("the build's artifacts are zipped: set the CodeBuild project's artifacts packaging to NONE".into());
    }
    // A run deploys exactly what its own build wrote: with the build id in the path, a later build of the same
    // project cannot overwrite it while the run waits for its approval or its turn.
    let uuid = build_uuid(build_id);
    if uuid.is_empty() || !location.prefix.split('/').any(|segment| segment == uuid) {
        return Err(format!(
            "the build's artifacts ({}) are not in a folder named after the build ({uuid}): set the CodeBuild \
             project's artifacts namespaceType to BUILD_ID, so that a later build cannot overwrite what this run deploys",
            location.uri()
        )
        .into());
    }
    let location = &location;
    let read = |name: &'static str| async move {
        match artifacts.read(location, name).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => {
                Err(OutputsError::Fail(format!("{name} is missing from the build's artifacts ({})", location.uri())))
            }
            Err(ArtifactError::Denied { .. }) => Err(OutputsError::Fail(format!(
                "{name} could not be read from {}: access denied (S3 answers 403 for a missing file when the reader \
                 may not list the bucket): check that the build wrote it, and that sluice may s3:GetObject (and \
                 s3:ListBucket) there",
                location.uri()
            ))),
            Err(source) => Err(OutputsError::Retry(BuildEventError::Artifacts { file: name, source })),
        }
    };
    let image: Value = serde_json::from_slice(&read(IMAGE_DETAIL).await?)
        .map_err(|error| format!("{IMAGE_DETAIL} is not JSON: {error}"))?;
    let image_uri = image["ImageURI"]
        .as_str()
        .filter(|uri| !uri.trim().is_empty())
        .ok_or(format!("{IMAGE_DETAIL} has no ImageURI"))?
        .to_owned();
    if image_uri.len() > 1024 {
        return Err(format!("{IMAGE_DETAIL}'s ImageURI is longer than 1024 characters").into());
    }
    let image_uri = pinned(artifacts, image_uri).await?;
    // Rendered now as the deployer will render them, so that a file it could not deploy fails the run before anyone
    // is asked to approve it.
    // Each deploy stage renders it with its own container and host rules; a failure names the stage where the
    // pipeline has more than one.
    let task_definition = read(TASK_DEFINITION).await?;
    let checks: Vec<(Option<Stage>, Option<&str>, bool)> = match targets {
        [] => vec![(None, None, false)],
        [(_, target)] => vec![(None, target.container(), target.allows_host())],
        several => {
            several.iter().map(|(stage, target)| (Some(*stage), target.container(), target.allows_host())).collect()
        }
    };
    for (stage, container, allow_host) in checks {
        crate::deploy::task_definition(&task_definition, &image_uri, container, allow_host).map_err(|error| {
            OutputsError::Fail(match stage {
                Some(stage) => format!("for stage {stage}: {error}"),
                None => error.to_string(),
            })
        })?;
    }
    if targets.iter().any(|(_, target)| matches!(target, DeployTarget::BlueGreen(_))) {
        let appspec = read(APPSPEC).await?;
        crate::deploy::appspec(&appspec, "arn:aws:ecs:::task-definition/check:1", "check", &[])
            .map_err(|error| OutputsError::Fail(error.to_string()))?;
    }
    Ok(BuildOutputs { image_uri, artifacts: Some(location.uri()) })
}

/// The build's image pinned by its digest, looked up once now if `imageDetail.json` names an ECR tag, so that
/// every deployment of the run deploys the bytes the build made, whatever the tag names later. An image elsewhere
/// named by its tag is deployed as named.
async fn pinned<I: ImageRegistry>(images: &I, uri: String) -> Result<String, OutputsError> {
    let image = match ImageRef::parse(&uri) {
        ImageRef::Pinned | ImageRef::ElsewhereByTag => return Ok(uri),
        ImageRef::Malformed(why) => {
            return Err(format!("{IMAGE_DETAIL}'s ImageURI {uri} cannot be deployed: {why}").into());
        }
        ImageRef::EcrTag(image) => image,
    };
    match images.digest(&image).await {
        Ok(Some(digest)) => Ok(image.pinned(&digest)),
        Ok(None) => Err(format!(
            "{IMAGE_DETAIL} names {uri}, which ECR does not have (repository {} in registry {}, {}): push the image \
             before the build ends",
            image.repository, image.registry, image.region
        )
        .into()),
        Err(RegistryError::Refused { source }) => Err(format!(
            "the digest of {uri} could not be looked up: ECR refused the request ({}); check the repository and tag \
             in {IMAGE_DETAIL}, or write the digest there (name@sha256:...)",
            crate::runtime::telemetry::Chain(&*source)
        )
        .into()),
        Err(RegistryError::Denied { .. }) => Err(format!(
            "the digest of {uri} could not be looked up: ECR denied access; sluice needs ecr:DescribeImages on \
             repository {} (or write the digest into {IMAGE_DETAIL}: name@sha256:...)",
            image.repository
        )
        .into()),
        Err(source) => Err(OutputsError::Retry(BuildEventError::Registry { image: uri, source })),
    }
}

/// A build of a run in its build stage succeeded: its outputs read and its image pinned, or why the run fails.
async fn succeeded<A: ArtifactStore + ImageRegistry>(
    artifacts: &A,
    (execution_id, build_id): (&ExecutionId, &str),
    change: &BuildStateChange,
    execution: Option<&crate::pipeline::Execution>,
    failed: &impl Fn(BuildFailure, String) -> Event,
) -> Result<Event, BuildEventError> {
    let plan = execution.map(|execution| &execution.plan);
    let targets: Vec<(Stage, &DeployTarget)> = plan
        .into_iter()
        .flat_map(|plan| &plan.stages)
        .filter_map(|stage| stage.deploy().map(|deploy| (stage.name, &deploy.target)))
        .collect();
    match outputs(artifacts, build_id, change.artifact_location.as_deref(), &targets).await {
        Ok(outputs) => {
            Ok(Event::BuildSucceeded { execution_id: execution_id.clone(), build_id: build_id.to_owned(), outputs })
        }
        Err(OutputsError::Fail(reason)) => Ok(failed(BuildFailure::Failed, reason)),
        Err(OutputsError::Retry(error)) => Err(error),
    }
}

/// Records one build state change.
#[instrument(skip_all, fields(build = %change.build_id, status = %change.status, execution = change.execution_id.as_deref().unwrap_or("-")))]
pub async fn record_build_event<S, R, A>(
    store: &S,
    runner: &R,
    artifacts: &A,
    change: &BuildStateChange,
    now: DateTime<Utc>,
) -> Result<BuildEventOutcome, BuildEventError>
where
    S: PipelineStore,
    R: EffectRunner,
    A: ArtifactStore + ImageRegistry + TestReports,
{
    let (Some(execution_id), Some(pipeline)) = (&change.execution_id, &change.pipeline) else {
        return Ok(BuildEventOutcome::NotOurs("the build was not started by sluice"));
    };
    let execution_id = ExecutionId(execution_id.clone());
    match change.stage.as_deref().filter(|stage| *stage != "build").map(Stage::new) {
        None => {}
        Some(None) => {
            return Ok(BuildEventOutcome::NotOurs("the build names no stage sluice could have started it for"));
        }
        Some(Some(stage)) => {
            let event = test_build::event(store, artifacts, (&execution_id, stage), change).await?;
            let Some(event) = event else {
                return Ok(BuildEventOutcome::NotOurs("a build status sluice does not act on"));
            };
            return record(store, runner, (pipeline, &execution_id, &event), change, now).await;
        }
    }
    let build_id = change.build_id.clone();
    let phase = change.failed_phase.clone().or_else(|| change.current_phase.clone());
    let failed = |status, reason: String| Event::BuildFailed {
        execution_id: execution_id.clone(),
        build_id: build_id.clone(),
        status,
        phase: phase.clone(),
        reason,
    };
    let in_phase = phase.as_deref().map(|p| format!(" in phase {p}")).unwrap_or_default();
    let event = match change.status.as_str() {
        "IN_PROGRESS" => Event::BuildProgressed {
            execution_id: execution_id.clone(),
            build_id: build_id.clone(),
            phase: change.current_phase.clone(),
        },
        "SUCCEEDED" => {
            let execution = store.execution(&execution_id).await.map_err(HandleError::from)?;
            if let Some(past) = execution.as_ref().filter(|run| !run.in_build()) {
                // A redelivered or late success of a run past its build: nothing is read or looked up again. The
                // machine answers it (a duplicate, or a refusal) without its outputs; the recorded ones stand in.
                let recorded = past.build.as_ref();
                let outputs = BuildOutputs {
                    image_uri: recorded.and_then(|build| build.image_uri.clone()).unwrap_or_default(),
                    artifacts: recorded.and_then(|build| build.artifacts.clone()),
                };
                Event::BuildSucceeded { execution_id: execution_id.clone(), build_id: build_id.clone(), outputs }
            } else {
                succeeded(artifacts, (&execution_id, &build_id), change, execution.as_ref(), &failed).await?
            }
        }
        "FAILED" | "FAULT" => failed(BuildFailure::Failed, format!("the build failed{in_phase}")),
        "STOPPED" => failed(BuildFailure::Stopped, format!("the build was stopped{in_phase}")),
        "TIMED_OUT" => failed(BuildFailure::TimedOut, format!("the build timed out{in_phase}")),
        _ => return Ok(BuildEventOutcome::NotOurs("a build status sluice does not act on")),
    };
    record(store, runner, (pipeline, &execution_id, &event), change, now).await
}

/// Records what the build event says on the run, once per event.
async fn record<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    (pipeline, execution_id, event): (&str, &ExecutionId, &Event),
    change: &BuildStateChange,
    now: DateTime<Utc>,
) -> Result<BuildEventOutcome, BuildEventError> {
    let answer = json!({ "execution_id": execution_id, "status": change.status });
    let input = Input {
        pipeline,
        mode: Default::default(),
        event,
        receipt: Some((ReceiptKey::event(&change.event_id), answer)),
        now,
    };
    let handled = handle(store, runner, input).await?;
    info!(?handled, "build event recorded");
    Ok(BuildEventOutcome::Handled(handled))
}

mod test_build;

#[cfg(test)]
mod tests;
