//! The deployer's effect runner: it carries out `StartDeployment`, `ContinueDeployment` (a paused ECS-native
//! deployment is continued or rolled back), `StopDeployment` (an operator's `sluice rollback` of a deployment in
//! progress), `RollBack` (a deployment that completed but failed a verification, a rolling update's AfterRollout
//! checks or the digest check, goes back to the task definition the service ran before), and the announcements of
//! the runs it moves on.
//! It reads the build's `taskdef.json` (and `appspec.yaml` for blue/green), renders them (pure, `crate::deploy`),
//! registers the task definition and starts the CodeDeploy blue/green deployment, the ECS rolling update, or the
//! ECS-native blue/green, linear or canary deployment (with the hooks function at its checked stages), stopping
//! (superseded mode) or waiting for (queued mode) another deployment in its way. What the
//! build left that cannot be deployed, or a deployment the services refuse, fails the run with the reason; what may
//! pass (throttling, an unreachable service, a deployment group busy with another deployment) is tried again.

use crate::contract::ports::{
    AlarmError, AlarmStates, ArtifactError, ArtifactStore, BlueGreenDeployments, DeployError, EventPublisher,
    NativeDeployments, RollingUpdates, RunningServices, Supersessions, TaskDefinitionRegistry,
};
use crate::definitions::{BlueGreen, DeployTarget, EcsNative, Rolling};
use crate::deploy::{self, NativeRequest, RenderError};
use crate::pipeline::{Effect, EffectKind, EntryGate, Event, ExecutionId};
use crate::usecases::{EffectError, EffectRunner, artifact_location};
use chrono::{DateTime, Utc};
use tracing::info;

/// Starts deployments, and publishes the announcements of the runs it moves on.
#[derive(Debug, Clone)]
pub struct DeployEffects<P, A, T, B, R, W, C> {
    pub publisher: P,
    pub artifacts: A,
    pub task_definitions: T,
    pub blue_green: B,
    /// ECS: rolling updates and ECS-native (blue/green, linear, canary) deployments.
    pub ecs: R,
    /// The function CodeDeploy invokes for the lifecycle hooks where a pipeline runs checks (the hooks function's
    /// ARN); `None` where the stack has none, and then a pipeline with blue/green checks cannot deploy.
    pub hooks_function: Option<String>,
    /// The role ECS assumes to invoke the hooks function at an ECS-native deployment's lifecycle stages; `None`
    /// where the stack has none, and then a pipeline with ECS-native checks cannot deploy.
    pub hook_role: Option<String>,
    /// Where a deployment stopped to make way (superseded mode) is noted for the run it belongs to.
    pub supersessions: W,
    /// CloudWatch: whether a stage's entry alarms let a run in, and which of a soak's alarms are in ALARM as the
    /// deployment starts.
    pub alarms: C,
    /// The clock a stage's entry alarms are waited for by (until their gate's time).
    pub clock: fn() -> DateTime<Utc>,
}

/// A deployment under way, the task definition it rolls out (unknown if a retry cannot find it by its tag), and
/// the one the service ran before (rolling).
struct Started {
    deployment_id: String,
    /// The ECS service deployment ARN (ECS-native strategies).
    service_deployment: Option<String>,
    task_definition: Option<String>,
    previous_task_definition: Option<String>,
}

/// What a `StartDeployment` effect asks.
#[derive(Clone, Copy)]
struct Start<'a> {
    id: &'a str,
    execution_id: &'a ExecutionId,
    /// The pipeline, when it runs in `superseded` mode.
    supersede: Option<&'a str>,
    target: &'a DeployTarget,
    image_uri: Option<&'a str>,
    artifacts: Option<&'a str>,
}

/// Where deployments may be in each other's way: a CodeDeploy deployment group, or an ECS service (`cluster/name`).
#[derive(Clone, Copy)]
enum Way<'a> {
    Group(&'a str),
    Service(&'a str),
}

impl std::fmt::Display for Way<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Way::Group(group) => write!(f, "deployment group {group}"),
            Way::Service(service) => write!(f, "service {service}"),
        }
    }
}

/// Why a deployment did not start: the run fails with the reason, or the effect is tried again.
enum NotStarted {
    Fail(String),
    Retry(EffectError),
}

/// `Ok` if the stage's windows and deny periods let its deployment start `now`; else the start waits until the next
/// window opens, or fails if none will.
fn open_calendar(calendar: &crate::definitions::Calendar, now: DateTime<Utc>) -> Result<(), NotStarted> {
    match deploy::calendar::judge(calendar, now) {
        Ok(()) => Ok(()),
        Err(deploy::calendar::Closed::Until { opens, why }) => {
            Err(NotStarted::Retry(EffectError::waiting_until("start_deployment", why, opens)))
        }
        Err(deploy::calendar::Closed::Never(why)) => Err(NotStarted::Fail(format!("the stage is closed: {why}"))),
    }
}

/// A start the stage's entry alarms keep out (`raised` in ALARM): it waits until the gate's time, then fails.
fn closed_entry(gate: &EntryGate, raised: &[String], now: DateTime<Utc>) -> NotStarted {
    let (alarms, until) = (raised.join(", "), gate.until.format("%Y-%m-%d %H:%M UTC"));
    let alarm = if raised.len() == 1 { "alarm" } else { "alarms" };
    if now >= gate.until {
        let read = now.format("%Y-%m-%d %H:%M UTC");
        return NotStarted::Fail(format!(
            "{alarm} {alarms} still in ALARM at {read}, past the stage's entry_timeout (it ran out at {until}; \
             entry_alarms)"
        ));
    }
    let why = format!("{alarm} {alarms} to leave ALARM (entry_alarms), until {until}, when the run fails");
    NotStarted::Retry(EffectError::waiting("start_deployment", why))
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

impl<P, A, T, B, R, W, C> DeployEffects<P, A, T, B, R, W, C>
where
    P: EventPublisher,
    A: ArtifactStore,
    T: TaskDefinitionRegistry,
    B: BlueGreenDeployments,
    R: RollingUpdates + NativeDeployments + RunningServices,
    W: Supersessions,
    C: AlarmStates,
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

    /// The task definition effect `id` registers (`text` rendered with the image, tagged with the effect), and the
    /// revision an earlier attempt of it registered, if one did.
    async fn registered(
        &self,
        id: &str,
        text: &[u8],
        image_uri: &str,
        target: &DeployTarget,
    ) -> Result<(deploy::TaskDefinition, Option<String>), NotStarted> {
        let mut definition = deploy::task_definition(text, image_uri, target.container(), target.allows_host())?;
        deploy::mark(&mut definition, id);
        let found = self.task_definitions.find_tagged(&definition.family, deploy::EFFECT_TAG, id).await?;
        Ok((definition, found))
    }

    /// Registers the task definition `id` renders, once: a retry finds the revision its first attempt registered.
    async fn register(
        &self,
        id: &str,
        text: &[u8],
        image_uri: &str,
        target: &DeployTarget,
    ) -> Result<String, NotStarted> {
        match self.registered(id, text, image_uri, target).await? {
            (_, Some(arn)) => Ok(arn),
            (definition, None) => Ok(self.task_definitions.register(&definition).await?),
        }
    }

    /// In `superseded` mode, a deployment group busy with another deployment has it stopped, and rolled back, to make
    /// way: the stop is noted for the run it belongs to (if sluice's), and the start is tried again once it has
    /// stopped. In `queued` mode, the start waits for it.
    async fn make_way(&self, start: &Start<'_>, busy: DeployError) -> NotStarted {
        let (DeployTarget::BlueGreen(blue_green), Some(pipeline)) = (start.target, start.supersede) else {
            return busy.into();
        };
        let (application, group) = (&blue_green.application, &blue_green.deployment_group);
        match self.blue_green.active(application, group).await {
            Ok(active) => self.stop_all(start, pipeline, Way::Group(group), &active).await,
            Err(error) => error.into(),
        }
    }

    /// An ECS-native deployment does not overlap another of its service's: in `superseded` mode those in the way are
    /// stopped, and rolled back, as a busy deployment group's are; in `queued` mode the start waits for them.
    async fn clear_way(&self, start: &Start<'_>, native: &EcsNative, task_definition: &str) -> Result<(), NotStarted> {
        let in_the_way = self.ecs.in_the_way(&native.cluster, &native.service, task_definition).await?;
        if in_the_way.is_empty() {
            return Ok(());
        }
        let service = format!("{}/{}", native.cluster, native.service);
        let Some(pipeline) = start.supersede else {
            let why = format!(
                "service {service} is busy with service deployment {}; the deployment starts once it has ended \
                 (queued mode)",
                in_the_way.join(", ")
            );
            return Err(NotStarted::Retry(EffectError::transient("start_deployment", why)));
        };
        Err(self.stop_all(start, pipeline, Way::Service(&service), &in_the_way).await)
    }

    /// Stops (and rolls back) each of `active`, in the way of `start`, noting each stop for the run the deployment
    /// belongs to; the start is tried again once they have stopped.
    async fn stop_all(&self, start: &Start<'_>, pipeline: &str, way: Way<'_>, active: &[String]) -> NotStarted {
        for deployment in active {
            if let Err(error) = self.supersessions.record_stop(deployment, pipeline, start.execution_id).await {
                return NotStarted::Retry(EffectError::transient("start_deployment", error));
            }
            let stopped = match way {
                Way::Group(_) => self.blue_green.stop(deployment).await,
                Way::Service(_) => self.ecs.stop(deployment).await,
            };
            if let Err(error) = stopped {
                return error.into();
            }
            info!(%deployment, %way, "stopped a deployment in the way (superseded mode)");
        }
        let why = format!(
            "{way} was busy with {}; stopped to make way for {} (superseded mode), it is created once they have \
             stopped",
            active.join(", "),
            start.execution_id
        );
        NotStarted::Retry(EffectError::transient("start_deployment", why))
    }

    /// Carries out a `StartDeployment`: the stage's windows judged (while they are closed the start waits until the
    /// next opens), its entry alarms and the soak's read in one call (while an entry alarm is in ALARM the start
    /// waits; the soak's in ALARM now were so before this deployment), then the deployment started; what cannot
    /// start fails the run saying why.
    async fn deploy(
        &self,
        start: &Start<'_>,
        soak_alarms: &[String],
        entry: Option<&EntryGate>,
    ) -> Result<Option<Event>, EffectError> {
        let execution_id = start.execution_id.clone();
        let calendar = entry.and_then(|gate| gate.calendar.as_ref());
        let open = calendar.map_or(Ok(()), |calendar| open_calendar(calendar, (self.clock)()));
        let started = match open {
            Ok(()) => self.alarms_before(soak_alarms, entry).await,
            Err(closed) => Err(closed),
        };
        let started = match started {
            Ok(in_alarm) => self.start(start).await.map(|started| (started, in_alarm)),
            Err(not) => Err(not),
        };
        match started {
            Ok((
                Started { deployment_id, service_deployment, task_definition, previous_task_definition },
                in_alarm,
            )) => Ok(Some(Event::DeploymentStarted {
                execution_id,
                deployment_id,
                service_deployment,
                task_definition,
                previous_task_definition,
                in_alarm,
            })),
            Err(NotStarted::Fail(reason)) => Ok(Some(Event::DeploymentFailed {
                execution_id,
                deployment_id: None,
                reason: format!("the deployment could not start: {reason}"),
                rolled_back: false,
            })),
            Err(NotStarted::Retry(error)) => Err(error),
        }
    }

    /// Which of the alarms that will watch the soak are in ALARM before the deployment starts (`None` without
    /// any), once the stage's `entry` alarms let the run in: while one is in ALARM the start waits, and past the
    /// gate's time the run fails naming it. One CloudWatch does not have watches nothing, and one sluice may not read
    /// cannot be watched: either stops the deployment before it starts.
    async fn alarms_before(
        &self,
        soak: &[String],
        entry: Option<&EntryGate>,
    ) -> Result<Option<Vec<String>>, NotStarted> {
        let gate = entry.map_or(&[][..], |gate| gate.alarms.as_slice());
        let mut names: Vec<String> = soak.to_vec();
        names.extend(gate.iter().filter(|name| !soak.contains(name)).cloned());
        if names.is_empty() {
            return Ok(None);
        }
        let readings = match self.alarms.states(&names).await {
            Ok(readings) => readings,
            Err(AlarmError::Refused { message, .. }) => {
                let pattern = if gate.is_empty() { "SoakAlarms" } else { "SoakAlarms or EntryAlarms" };
                return Err(NotStarted::Fail(format!(
                    "the stage's alarms could not be read ({message}): the stack's {pattern} pattern must match {}",
                    names.join(", ")
                )));
            }
            Err(error) => return Err(NotStarted::Retry(EffectError::transient("start_deployment", error))),
        };
        let field = |name: &String| if soak.contains(name) { "soak_alarms" } else { "entry_alarms" };
        if let Some(missing) = names.iter().find(|name| !readings.iter().any(|r| &r.name == *name)) {
            return Err(NotStarted::Fail(format!(
                "CloudWatch has no metric alarm {missing}: an alarm that does not exist watches nothing ({})",
                field(missing)
            )));
        }
        let raised = |among: &[String]| -> Vec<String> {
            readings.iter().filter(|r| r.in_alarm && among.contains(&r.name)).map(|r| r.name.clone()).collect()
        };
        if let Some(gate) = entry.filter(|_| !raised(gate).is_empty()) {
            return Err(closed_entry(gate, &raised(&gate.alarms), (self.clock)()));
        }
        Ok((!soak.is_empty()).then(|| raised(soak)))
    }

    /// Puts the service back on `task_definition` as its target deploys (effect `id`; a retry finds what an earlier
    /// attempt started): a rolling update's UpdateService, an ECS-native deployment of the same strategy without
    /// hooks or pause, or a CodeDeploy deployment of the build's AppSpec naming it. Says what it started.
    async fn roll_back(
        &self,
        id: &str,
        target: &DeployTarget,
        task_definition: &str,
        artifacts: Option<&str>,
    ) -> Result<String, NotStarted> {
        let (_, service) = target.ecs_service();
        let refused = |error| refused_rollback(task_definition, error);
        let started = match target {
            // Updating to the task definition the service already runs starts nothing: a retry is harmless.
            DeployTarget::Rolling(rolling) => {
                let started = self.ecs.update(&deploy::rolling(rolling, task_definition)).await.map_err(refused)?;
                format!("ECS deployment {}", started.deployment_id)
            }
            DeployTarget::EcsNative(native) => {
                let request =
                    NativeRequest { hook: None, pause: None, ..deploy::native(native, task_definition, None) };
                let started = self.ecs.start(&request).await.map_err(refused)?;
                format!("ECS deployment {}", started.deployment_id)
            }
            DeployTarget::BlueGreen(blue_green) => {
                let deployment_id = self.roll_back_blue_green(id, blue_green, task_definition, artifacts).await?;
                format!("CodeDeploy deployment {deployment_id}")
            }
        };
        Ok(format!("sluice rolled service {service} back to {task_definition} ({started})"))
    }

    /// A CodeDeploy deployment of the build's AppSpec naming `task_definition` (no hooks: it only goes back), or the
    /// one an earlier attempt of effect `id` created. Returns its id.
    async fn roll_back_blue_green(
        &self,
        id: &str,
        blue_green: &BlueGreen,
        task_definition: &str,
        artifacts: Option<&str>,
    ) -> Result<String, NotStarted> {
        let failed = |why: String| NotStarted::Fail(format!("the rollback to {task_definition} failed: {why}"));
        let refused = |error| refused_rollback(task_definition, error);
        let (application, group) = (&blue_green.application, &blue_green.deployment_group);
        let marker = deploy::effect_marker(id);
        if let Some(found) = self.blue_green.find(application, group, &marker).await.map_err(refused)? {
            return Ok(found);
        }
        let appspec = match self.read(artifacts, deploy::APPSPEC_FILE).await {
            Ok(appspec) => appspec,
            Err(NotStarted::Fail(why)) => return Err(failed(why)),
            Err(retry) => return Err(retry),
        };
        let appspec = deploy::appspec(&appspec, task_definition, "", &[]).map_err(|error| failed(error.to_string()))?;
        let description = format!("sluice rollback to {task_definition} {marker}");
        let request = deploy::blue_green(blue_green, appspec, description);
        self.blue_green.create(&request).await.map_err(refused)
    }

    /// The task definition `target`'s service runs before a deployment replaces it: what a verification that fails
    /// once the deployment completed rolls back to. Unknown (and not needed to deploy) where ECS does not say.
    async fn running_before(&self, target: &DeployTarget) -> Result<Option<String>, NotStarted> {
        let (cluster, service) = target.ecs_service();
        match self.ecs.task_definition(cluster, service).await {
            Ok(running) => Ok(running),
            Err(DeployError::Refused { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    async fn start(&self, start: &Start<'_>) -> Result<Started, NotStarted> {
        let image_uri = start.image_uri.ok_or_else(|| NotStarted::Fail("the build left no image to deploy".into()))?;
        match start.target {
            DeployTarget::BlueGreen(blue_green) => self.start_blue_green(start, blue_green, image_uri).await,
            DeployTarget::Rolling(rolling) => self.start_rolling(start, rolling, image_uri).await,
            DeployTarget::EcsNative(native) => self.start_native(start, native, image_uri).await,
        }
    }

    /// A CodeDeploy blue/green deployment: the AppSpec checked, the task definition registered, the deployment
    /// created (or found, when an earlier attempt of the effect created it).
    async fn start_blue_green(
        &self,
        start: &Start<'_>,
        blue_green: &BlueGreen,
        image_uri: &str,
    ) -> Result<Started, NotStarted> {
        let Start { id, execution_id, target, artifacts, .. } = *start;
        let marker = deploy::effect_marker(id);
        let found = self.blue_green.find(&blue_green.application, &blue_green.deployment_group, &marker).await?;
        if let Some(deployment_id) = found {
            // Its first attempt registered the task definition, tagged with the effect: the run records it.
            let text = self.read(artifacts, deploy::TASK_DEFINITION_FILE).await?;
            let (_, task_definition) = self.registered(id, &text, image_uri, target).await?;
            return Ok(Started {
                deployment_id,
                service_deployment: None,
                task_definition,
                previous_task_definition: None,
            });
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
        deploy::task_definition(&text, image_uri, target.container(), target.allows_host())?;
        let appspec = self.read(artifacts, deploy::APPSPEC_FILE).await?;
        // Checked before registering, so that an AppSpec that cannot be used registers nothing.
        deploy::appspec(&appspec, "arn:aws:ecs:::task-definition/check:1", hooks_function, &hook_events)?;
        let previous_task_definition = self.running_before(target).await?;
        let arn = self.register(id, &text, image_uri, target).await?;
        let appspec = deploy::appspec(&appspec, &arn, hooks_function, &hook_events)?;
        let description = deploy::description(&execution_id.0, id);
        let request = deploy::blue_green(blue_green, appspec, description);
        let deployment_id = match self.blue_green.create(&request).await {
            Ok(deployment_id) => deployment_id,
            Err(busy @ DeployError::Busy { .. }) => return Err(self.make_way(start, busy).await),
            Err(error) => return Err(error.into()),
        };
        Ok(Started { deployment_id, service_deployment: None, task_definition: Some(arn), previous_task_definition })
    }

    /// An ECS rolling update: the task definition registered, the service updated to it.
    async fn start_rolling(
        &self,
        start: &Start<'_>,
        rolling: &Rolling,
        image_uri: &str,
    ) -> Result<Started, NotStarted> {
        let Start { id, target, artifacts, .. } = *start;
        let text = self.read(artifacts, deploy::TASK_DEFINITION_FILE).await?;
        // ECS takes no client token for either call: a retry finds the revision its first attempt
        // registered, and UpdateService to the task definition the service already runs starts nothing.
        let arn = self.register(id, &text, image_uri, target).await?;
        let started = self.ecs.update(&deploy::rolling(rolling, &arn)).await?;
        Ok(Started {
            deployment_id: started.deployment_id,
            service_deployment: None,
            task_definition: Some(arn),
            previous_task_definition: started.previous_task_definition,
        })
    }

    /// An ECS-native deployment: the task definition registered, the way cleared, the deployment started with its
    /// lifecycle hooks.
    async fn start_native(
        &self,
        start: &Start<'_>,
        native: &EcsNative,
        image_uri: &str,
    ) -> Result<Started, NotStarted> {
        let Start { id, target, artifacts, .. } = *start;
        let stages = native.checked_stages();
        let hook = match (&self.hooks_function, &self.hook_role) {
            (Some(function), Some(role)) => Some((function.as_str(), role.as_str())),
            _ if stages.is_empty() => None,
            _ => {
                return Err(NotStarted::Fail(format!(
                    "the pipeline runs checks at {} but the deployer knows no hooks function \
                     (SLUICE_HOOKS_FUNCTION) and role (SLUICE_ECS_HOOK_ROLE) for ECS to invoke it with",
                    stages.join(", ")
                )));
            }
        };
        let text = self.read(artifacts, deploy::TASK_DEFINITION_FILE).await?;
        // As for a rolling update: a retry finds the revision its first attempt registered, and
        // UpdateService to the task definition the service already runs starts nothing.
        let previous_task_definition = self.running_before(target).await?;
        let arn = self.register(id, &text, image_uri, target).await?;
        self.clear_way(start, native, &arn).await?;
        let started = self.ecs.start(&deploy::native(native, &arn, hook)).await?;
        Ok(Started {
            deployment_id: started.deployment_id,
            service_deployment: started.service_deployment,
            task_definition: Some(arn),
            previous_task_definition,
        })
    }
}

impl<P, A, T, B, R, W, C> EffectRunner for DeployEffects<P, A, T, B, R, W, C>
where
    P: EventPublisher,
    A: ArtifactStore,
    T: TaskDefinitionRegistry,
    B: BlueGreenDeployments,
    R: RollingUpdates + NativeDeployments + RunningServices,
    W: Supersessions,
    C: AlarmStates,
{
    const KINDS: &'static [EffectKind] = &[
        EffectKind::StartDeployment,
        EffectKind::ContinueDeployment,
        EffectKind::StopDeployment,
        EffectKind::RollBack,
        EffectKind::Publish,
    ];

    async fn run(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::Publish(event) => super::effects::publish_one(&self.publisher, event).await,
            Effect::StartDeployment {
                execution_id,
                pipeline,
                supersede,
                target,
                image_uri,
                artifacts,
                soak_alarms,
                entry,
                ..
            } => {
                let start = Start {
                    id,
                    execution_id,
                    supersede: supersede.then_some(pipeline.as_str()),
                    target,
                    image_uri: image_uri.as_deref(),
                    artifacts: artifacts.as_deref(),
                };
                self.deploy(&start, soak_alarms, entry.as_ref()).await
            }
            Effect::RollBack { execution_id, deployment_id, target, task_definition, artifacts, .. } => {
                let (rolled_back, reason) =
                    match self.roll_back(id, target, task_definition, artifacts.as_deref()).await {
                        Ok(done) => (true, done),
                        Err(NotStarted::Fail(why)) => {
                            (false, format!("{why}; the service still runs the new task definition"))
                        }
                        Err(NotStarted::Retry(error)) => return Err(error),
                    };
                Ok(Some(Event::DeploymentFailed {
                    execution_id: execution_id.clone(),
                    deployment_id: Some(deployment_id.clone()),
                    reason,
                    rolled_back,
                }))
            }
            Effect::ContinueDeployment { execution_id, service_deployment, hook_id, action } => {
                // ECS answers a pause it no longer waits at (timed out, or continued by an earlier attempt) with a
                // refusal: the deployment's own events tell how it went on, so that is logged and left to them.
                match self.ecs.resume(service_deployment, hook_id, *action).await {
                    Ok(()) => info!(execution = %execution_id, hook_id, action = action.ecs_name(), "pause answered"),
                    Err(error @ DeployError::Refused { .. }) => {
                        tracing::warn!(execution = %execution_id, hook_id, error = %crate::runtime::telemetry::Chain(&error), "ECS refused the answer to the pause");
                    }
                    Err(error) => return Err(EffectError::transient("continue_deployment", error)),
                }
                Ok(None)
            }
            Effect::StopDeployment { execution_id, target, deployment, .. } => {
                stop_deployment(&self.blue_green, &self.ecs, execution_id, target, deployment).await
            }
            other => Err(EffectError::permanent(other.kind().name(), "not an effect the deployer carries out")),
        }
    }
}

/// What the service's answer to a rollback to `task_definition` means: a refusal fails it, saying so; anything else
/// is tried again.
fn refused_rollback(task_definition: &str, error: DeployError) -> NotStarted {
    match error {
        DeployError::Refused { service, message, .. } => {
            NotStarted::Fail(format!("{service} refused the rollback to {task_definition} ({message})"))
        }
        error => NotStarted::Retry(EffectError::transient("roll_back", error)),
    }
}

/// Stops a run's deployment and rolls it back, as an operator ordered (`StopDeployment`): CodeDeploy's
/// StopDeployment with auto-rollback, or ECS's StopServiceDeployment with ROLLBACK. One that has ended meanwhile is
/// not an error; its own events end the run either way.
async fn stop_deployment<B: BlueGreenDeployments, R: NativeDeployments>(
    blue_green: &B,
    ecs: &R,
    execution_id: &ExecutionId,
    target: &DeployTarget,
    deployment: &str,
) -> Result<Option<Event>, EffectError> {
    let stopped = match target {
        DeployTarget::BlueGreen(_) => blue_green.stop(deployment).await,
        DeployTarget::EcsNative(_) => ecs.stop(deployment).await,
        DeployTarget::Rolling(_) => {
            return Err(EffectError::permanent("stop_deployment", "sluice does not stop a rolling update"));
        }
    };
    match stopped {
        Ok(()) => {
            info!(execution = %execution_id, deployment, "deployment stopped, to be rolled back, as ordered");
            Ok(None)
        }
        Err(error @ DeployError::Refused { .. }) => Err(EffectError::permanent("stop_deployment", error)),
        Err(error) => Err(EffectError::transient("stop_deployment", error)),
    }
}

/// Carries out `StopDeployment` alone: what `sluice rollback` runs at once, with the operator's own credentials
/// (the deployer carries out a stop left in the outbox).
#[derive(Debug, Clone)]
pub struct DeploymentStops<B, R> {
    pub blue_green: B,
    pub ecs: R,
}

impl<B: BlueGreenDeployments, R: NativeDeployments> EffectRunner for DeploymentStops<B, R> {
    const KINDS: &'static [EffectKind] = &[EffectKind::StopDeployment];

    async fn run(&self, _: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::StopDeployment { execution_id, target, deployment, .. } => {
                stop_deployment(&self.blue_green, &self.ecs, execution_id, target, deployment).await
            }
            other => Err(EffectError::permanent(other.kind().name(), "not an effect `sluice rollback` carries out")),
        }
    }
}
