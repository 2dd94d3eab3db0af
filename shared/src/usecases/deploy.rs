//! The deployer's effect runner: it carries out `StartDeployment`, `RollBack` (a rolling update whose AfterRollout
//! checks failed goes back to the task definition the service ran before), and the announcements of the runs it
//! moves on.
//! It reads the build's `taskdef.json` (and `appspec.yaml` for blue/green), renders them (pure, `crate::deploy`),
//! registers the task definition and starts the CodeDeploy blue/green deployment or the ECS rolling update. What the
//! build left that cannot be deployed, or a deployment the services refuse, fails the run with the reason; what may
//! pass (throttling, an unreachable service, a deployment group busy with another deployment) is tried again.

use crate::definitions::DeployTarget;
use crate::deploy::{self, RenderError};
use crate::pipeline::{Effect, EffectKind, Event, ExecutionId};
use crate::ports::{
    ArtifactError, ArtifactStore, BlueGreenDeployments, DeployError, EventPublisher, RollingUpdates,
    TaskDefinitionRegistry,
};
use crate::usecases::{EffectError, EffectRunner, artifact_location};

/// Starts deployments, and publishes the announcements of the runs it moves on.
#[derive(Debug, Clone)]
pub struct DeployEffects<P, A, T, B, R> {
    pub publisher: P,
    pub artifacts: A,
    pub task_definitions: T,
    pub blue_green: B,
    pub rolling: R,
    /// The function CodeDeploy invokes for the lifecycle hooks where a pipeline runs checks (the hooks function's
    /// ARN); `None` where the stack has none, and then a pipeline with blue/green checks cannot deploy.
    pub hooks_function: Option<String>,
}

/// A deployment under way, the task definition it rolls out (unknown when a retry found it already created), and
/// the one the service ran before (rolling).
struct Started {
    deployment_id: String,
    task_definition: Option<String>,
    previous_task_definition: Option<String>,
}

/// Why a deployment did not start: the run fails with the reason, or the effect is tried again.
enum NotStarted {
    Fail(String),
    Retry(EffectError),
}

impl From<RenderError> for NotStarted {
    fn from(error: RenderError) -> Self {
        NotStarted::Fail(error.to_string())
    }
}

impl From<DeployError> for NotStarted {
    fn from(error: DeployError) -> Self {
        match error {
            DeployError::Refused { service, message, .. } => {
                NotStarted::Fail(format!("{service} refused the deployment: {message}"))
            }
            error @ (DeployError::Busy { .. } | DeployError::Unavailable { .. }) => {
                NotStarted::Retry(EffectError::transient("start_deployment", error))
            }
        }
    }
}

impl<P, A, T, B, R> DeployEffects<P, A, T, B, R>
where
    P: EventPublisher,
    A: ArtifactStore,
    T: TaskDefinitionRegistry,
    B: BlueGreenDeployments,
    R: RollingUpdates,
{
    async fn read(&self, artifacts: Option<&str>, name: &'static str) -> Result<Vec<u8>, NotStarted> {
        let uri =
            artifacts.ok_or_else(|| NotStarted::Fail(format!("the build left no artifacts to read {name} from")))?;
        let location =
            artifact_location(uri).ok_or_else(|| NotStarted::Fail(format!("unreadable artifact location {uri}")))?;
        match self.artifacts.read(&location, name).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(NotStarted::Fail(format!("{name} is missing from the build's artifacts ({uri})"))),
            Err(error @ ArtifactError::Denied { .. }) => {
                Err(NotStarted::Fail(format!("{name} could not be read from {uri}: {error}")))
            }
            Err(error) => Err(NotStarted::Retry(EffectError::transient("start_deployment", error))),
        }
    }

    async fn start(
        &self,
        id: &str,
        execution_id: &ExecutionId,
        target: &DeployTarget,
        image_uri: Option<&str>,
        artifacts: Option<&str>,
    ) -> Result<Started, NotStarted> {
        let image_uri = image_uri.ok_or_else(|| NotStarted::Fail("the build left no image to deploy".into()))?;
        match target {
            DeployTarget::BlueGreen(blue_green) => {
                let marker = deploy::effect_marker(id);
                let found =
                    self.blue_green.find(&blue_green.application, &blue_green.deployment_group, &marker).await?;
                if let Some(deployment_id) = found {
                    return Ok(Started { deployment_id, task_definition: None, previous_task_definition: None });
                }
                let hook_events = deploy::hook_events(target);
                let hooks_function = match (&self.hooks_function, hook_events.is_empty()) {
                    (Some(function), _) => function.as_str(),
                    (None, true) => "",
                    (None, false) => {
                        return Err(NotStarted::Fail(format!(
                            "the pipeline runs checks at {} but the deployer knows no hooks function \
                             (SLUICE_HOOKS_FUNCTION) for CodeDeploy to invoke",
                            hook_events.join(", ")
                        )));
                    }
                };
                let text = self.read(artifacts, deploy::TASK_DEFINITION_FILE).await?;
                let definition = deploy::task_definition(&text, image_uri, target.container())?;
                let appspec = self.read(artifacts, deploy::APPSPEC_FILE).await?;
                // Checked before registering, so that an AppSpec that cannot be used registers nothing.
                deploy::appspec(&appspec, "arn:aws:ecs:::task-definition/check:1", hooks_function, &hook_events)?;
                let arn = self.task_definitions.register(&definition).await?;
                let appspec = deploy::appspec(&appspec, &arn, hooks_function, &hook_events)?;
                let description = deploy::description(&execution_id.0, id);
                let deployment_id =
                    self.blue_green.create(&deploy::blue_green(blue_green, appspec, description)).await?;
                Ok(Started { deployment_id, task_definition: Some(arn), previous_task_definition: None })
            }
            DeployTarget::Rolling(rolling) => {
                let text = self.read(artifacts, deploy::TASK_DEFINITION_FILE).await?;
                let mut definition = deploy::task_definition(&text, image_uri, target.container())?;
                deploy::mark(&mut definition, id);
                // ECS takes no client token for either call: a retry finds the revision its first attempt
                // registered, and UpdateService to the task definition the service already runs starts nothing.
                let found = self.task_definitions.find_tagged(&definition.family, deploy::EFFECT_TAG, id).await?;
                let arn = match found {
                    Some(arn) => arn,
                    None => self.task_definitions.register(&definition).await?,
                };
                let started = self.rolling.update(&deploy::rolling(rolling, &arn)).await?;
                Ok(Started {
                    deployment_id: started.deployment_id,
                    task_definition: Some(arn),
                    previous_task_definition: started.previous_task_definition,
                })
            }
        }
    }
}

impl<P, A, T, B, R> EffectRunner for DeployEffects<P, A, T, B, R>
where
    P: EventPublisher,
    A: ArtifactStore,
    T: TaskDefinitionRegistry,
    B: BlueGreenDeployments,
    R: RollingUpdates,
{
    fn kinds(&self) -> &[EffectKind] {
        &[EffectKind::StartDeployment, EffectKind::RollBack, EffectKind::Publish]
    }

    async fn run(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::Publish(event) => super::effects::publish_one(&self.publisher, event).await,
            Effect::StartDeployment { execution_id, target, image_uri, artifacts } => {
                let started = self.start(id, execution_id, target, image_uri.as_deref(), artifacts.as_deref()).await;
                match started {
                    Ok(Started { deployment_id, task_definition, previous_task_definition }) => {
                        Ok(Some(Event::DeploymentStarted {
                            execution_id: execution_id.clone(),
                            deployment_id,
                            task_definition,
                            previous_task_definition,
                        }))
                    }
                    Err(NotStarted::Fail(reason)) => Ok(Some(Event::DeploymentFailed {
                        execution_id: execution_id.clone(),
                        deployment_id: None,
                        reason: format!("the deployment could not start: {reason}"),
                        rolled_back: false,
                    })),
                    Err(NotStarted::Retry(error)) => Err(error),
                }
            }
            Effect::RollBack { execution_id, deployment_id, target, task_definition } => {
                let DeployTarget::Rolling(rolling) = target else {
                    return Err(EffectError::permanent("roll_back", "only a rolling update is rolled back by sluice"));
                };
                // Updating to the task definition the service already runs starts nothing: a retry is harmless.
                let (rolled_back, reason) = match self.rolling.update(&deploy::rolling(rolling, task_definition)).await
                {
                    Ok(started) => (
                        true,
                        format!(
                            "sluice rolled service {} back to {task_definition} (ECS deployment {})",
                            rolling.service, started.deployment_id
                        ),
                    ),
                    Err(DeployError::Refused { message, .. }) => (
                        false,
                        format!(
                            "ECS refused the rollback to {task_definition} ({message}); the service still runs the \
                             new task definition"
                        ),
                    ),
                    Err(error) => return Err(EffectError::transient("roll_back", error)),
                };
                Ok(Some(Event::DeploymentFailed {
                    execution_id: execution_id.clone(),
                    deployment_id: Some(deployment_id.clone()),
                    reason,
                    rolled_back,
                }))
            }
            other => Err(EffectError::permanent(other.kind().name(), "not an effect the deployer carries out")),
        }
    }
}
