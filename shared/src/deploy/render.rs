//! What a deployment is made of, rendered from the build's files: the task definition with the built image, the
//! AppSpec with the task definition registered for it and the hooks sluice answers, and the requests that start a
//! CodeDeploy blue/green deployment or an ECS rolling update. Pure: the deployer reads the files and carries the
//! requests out.

use serde_json::{Value, json};

use super::taskdef::TaskDefinition;
use crate::contract::ports::ServiceDeploymentReport;
use crate::definitions::{BLUE_GREEN_HOOKS, BlueGreen, CircuitBreaker, DeployTarget, EcsNative, Rolling, TrafficShift};

/// The build's files the deployer reads.
pub const TASK_DEFINITION_FILE: &str = "taskdef.json";
pub const APPSPEC_FILE: &str = "appspec.yaml";
/// The image placeholder of `taskdef.json`, as CodePipeline's ECS blue/green action has it.
pub const IMAGE_PLACEHOLDER: &str = "<IMAGE1_NAME>";
/// The task definition placeholder of `appspec.yaml`, as CodePipeline's ECS blue/green action has it.
pub const TASK_DEFINITION_PLACEHOLDER: &str = "<TASK_DEFINITION>";

/// A build's file cannot be deployed; the message names the file and the field, and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RenderError {
    pub file: &'static str,
    pub message: String,
}

fn invalid(file: &'static str, message: impl Into<String>) -> RenderError {
    RenderError { file, message: message.into() }
}

/// `taskdef.json` with the built image in the container the pipeline names (`deploy.container`), or else in every
/// container whose image is `<IMAGE1_NAME>`.
pub fn task_definition(
    text: &[u8],
    image_uri: &str,
    container: Option<&str>,
    allow_host: bool,
) -> Result<TaskDefinition, RenderError> {
    let file = TASK_DEFINITION_FILE;
    let reader = &mut serde_json::Deserializer::from_slice(text);
    let mut definition: TaskDefinition = serde_path_to_error::deserialize(reader).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." || path.is_empty() {
            invalid(file, format!("not an ECS task definition: {inner}"))
        } else {
            invalid(file, format!("field `{path}`: {inner}"))
        }
    })?;
    if definition.family.trim().is_empty() {
        return Err(invalid(file, "field `family` is empty: name the task definition family"));
    }
    if definition.container_definitions.is_empty() {
        return Err(invalid(file, "field `containerDefinitions` is empty: a task definition needs a container"));
    }
    if !allow_host && let Some(field) = host_access(&definition) {
        return Err(invalid(
            file,
            format!(
                "field `{field}` reaches into the host, and taskdef.json comes from whoever can commit: set \
                 deploy.allow_host = true in the pipeline to allow it"
            ),
        ));
    }
    if let Some(name) = container {
        let names: Vec<String> = definition.container_definitions.iter().map(|c| c.name.clone()).collect();
        let Some(named) = definition.container_definitions.iter_mut().find(|c| c.name == name) else {
            return Err(invalid(
                file,
                format!(
                    "no container in `containerDefinitions` is named `{name}` (the pipeline's deploy.container); it \
                     has {}",
                    names.join(", ")
                ),
            ));
        };
        named.image = image_uri.to_owned();
        return Ok(definition);
    }
    let mut placed = 0;
    for container in &mut definition.container_definitions {
        if container.image.trim() == IMAGE_PLACEHOLDER {
            container.image = image_uri.to_owned();
            placed += 1;
        }
    }
    if placed == 0 {
        let names: Vec<&str> = definition.container_definitions.iter().map(|c| c.name.as_str()).collect();
        return Err(invalid(
            file,
            format!(
                "no `containerDefinitions[].image` is {IMAGE_PLACEHOLDER}: set the image of the container to deploy \
                 (one of {}) to \"{IMAGE_PLACEHOLDER}\", and sluice puts the built image there",
                names.join(", ")
            ),
        ));
    }
    Ok(definition)
}

/// `appspec.yaml` (YAML or JSON) with `task_definition_arn` in place of `<TASK_DEFINITION>` and a hook on
/// `hooks_function` for each lifecycle event in `hook_events`, as JSON (which CodeDeploy takes as AppSpec content).
pub fn appspec(
    text: &[u8],
    task_definition_arn: &str,
    hooks_function: &str,
    hook_events: &[&str],
) -> Result<String, RenderError> {
    let file = APPSPEC_FILE;
    let mut document: Value =
        serde_norway::from_slice(text).map_err(|error| invalid(file, format!("not YAML or JSON: {error}")))?;
    let Some(resources) = document.get_mut("Resources").and_then(Value::as_array_mut) else {
        return Err(invalid(file, "field `Resources` is missing: an ECS AppSpec lists its TargetService there"));
    };
    let mut targets = resources.iter_mut().filter_map(|resource| resource.get_mut("TargetService"));
    let (Some(target), None) = (targets.next(), targets.next()) else {
        return Err(invalid(file, "field `Resources` must hold exactly one TargetService"));
    };
    let Some(slot) = target.pointer_mut("/Properties/TaskDefinition") else {
        return Err(invalid(
            file,
            format!(
                "field `Resources[0].TargetService.Properties.TaskDefinition` is missing: set it to \"{TASK_DEFINITION_PLACEHOLDER}\""
            ),
        ));
    };
    if slot.as_str().map(str::trim) != Some(TASK_DEFINITION_PLACEHOLDER) {
        return Err(invalid(
            file,
            format!(
                "field `Resources[0].TargetService.Properties.TaskDefinition` is {slot}: set it to \
                 \"{TASK_DEFINITION_PLACEHOLDER}\", and sluice puts the task definition it registers there"
            ),
        ));
    }
    *slot = Value::from(task_definition_arn);
    if hook_events.is_empty() {
        return Ok(document.to_string());
    }
    let hooks = document.as_object_mut().map(|doc| doc.entry("Hooks").or_insert_with(|| json!([])));
    let Some(hooks) = hooks.and_then(Value::as_array_mut) else {
        return Err(invalid(file, "field `Hooks` must be a list of `- <LifecycleEvent>: <function>`"));
    };
    for event in hook_events {
        if !BLUE_GREEN_HOOKS.contains(event) {
            return Err(invalid(file, format!("{event} is not a lifecycle event of an ECS deployment")));
        }
        if let Some(existing) = hooks.iter().find_map(|hook| hook.get(*event)) {
            return Err(invalid(
                file,
                format!(
                    "field `Hooks` already runs {existing} at {event}, where the pipeline's checks run: remove it \
                     from the AppSpec, or move the checks to another lifecycle event"
                ),
            ));
        }
        hooks.push(json!({ *event: hooks_function }));
    }
    Ok(document.to_string())
}

/// Starts a CodeDeploy ECS blue/green deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlueGreenRequest {
    pub application: String,
    pub deployment_group: String,
    pub deployment_config: String,
    /// The rendered AppSpec (JSON).
    pub appspec: String,
    /// Names the run and the effect: how a retried effect finds the deployment it already created.
    pub description: String,
}

/// Updates an ECS service to a new task definition, rolling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollingRequest {
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: String,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: CircuitBreaker,
}

/// Updates an ECS service to a new task definition with an ECS-native strategy
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeRequest {
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: String,
    /// `BLUE_GREEN`, `LINEAR` or `CANARY`.
    pub strategy: &'static str,
    pub shift: TrafficShift,
    pub bake_time_minutes: u32,
    pub alarms: Vec<String>,
    pub circuit_breaker: CircuitBreaker,
    /// The Lambda hook at the stages where the pipeline runs checks, if it runs any.
    pub hook: Option<NativeHook>,
    /// The PAUSE hook at the stage where the pipeline asks for an approval, if it asks.
    pub pause: Option<NativePause>,
}

/// A PAUSE lifecycle hook (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativePause {
    pub stage: String,
    pub timeout_minutes: u32,
    /// `CONTINUE` or `ROLLBACK`.
    pub timeout_action: &'static str,
}

/// sluice's hooks function as an ECS lifecycle hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeHook {
    pub function_arn: String,
    /// The role ECS assumes to invoke the function.
    pub role_arn: String,
    pub stages: Vec<&'static str>,
}

/// The ECS-native update of `target` to `task_definition_arn`, with `hook` at the stages with checks.
pub fn native(target: &EcsNative, task_definition_arn: &str, hook: Option<(&str, &str)>) -> NativeRequest {
    let stages = target.checked_stages();
    NativeRequest {
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        task_definition_arn: task_definition_arn.to_owned(),
        strategy: match target.shift {
            TrafficShift::BlueGreen => "BLUE_GREEN",
            TrafficShift::Linear { .. } => "LINEAR",
            TrafficShift::Canary { .. } => "CANARY",
        },
        shift: target.shift,
        bake_time_minutes: target.bake_time_minutes,
        alarms: target.alarms.clone(),
        circuit_breaker: target.circuit_breaker,
        hook: hook.filter(|_| !stages.is_empty()).map(|(function_arn, role_arn)| NativeHook {
            function_arn: function_arn.to_owned(),
            role_arn: role_arn.to_owned(),
            stages,
        }),
        pause: target.approval.as_ref().map(|approval| NativePause {
            stage: approval.stage.clone(),
            timeout_minutes: approval.timeout_minutes,
            timeout_action: approval.on_timeout.ecs_name(),
        }),
    }
}

/// The tag key of the task definitions sluice registers: its value is the id of the effect that registered it.
pub const EFFECT_TAG: &str = "sluice:effect";

/// Tags `definition` as registered by effect `effect_id` (replacing a tag of that key the file may carry), so
/// that a retry of the effect finds it instead of registering another revision.
pub fn mark(definition: &mut TaskDefinition, effect_id: &str) {
    definition.tags.retain(|tag| tag.key != EFFECT_TAG);
    definition.tags.push(super::taskdef::Tag { key: EFFECT_TAG.to_owned(), value: effect_id.to_owned() });
}

/// The marker a deployment's description carries for the effect that created it.
pub fn effect_marker(effect_id: &str) -> String {
    format!("[sluice effect {effect_id}]")
}

/// The description of a deployment started for `execution` by effect `effect_id` (well under CodeDeploy's 1,000
/// characters: execution and effect ids are bounded).
pub fn description(execution: &str, effect_id: &str) -> String {
    format!("sluice run {execution} {}", effect_marker(effect_id))
}

/// The execution a deployment's description names, if sluice wrote it ([`description`]).
pub fn execution_of(description: &str) -> Option<&str> {
    let rest = description.strip_prefix("sluice run ")?;
    let (execution, marker) = rest.split_once(' ')?;
    (marker.starts_with("[sluice effect ") && !execution.is_empty()).then_some(execution)
}

/// The blue/green request for `target`, with its rendered AppSpec.
pub fn blue_green(target: &BlueGreen, appspec: String, description: String) -> BlueGreenRequest {
    BlueGreenRequest {
        application: target.application.clone(),
        deployment_group: target.deployment_group.clone(),
        deployment_config: target.deployment_config.clone(),
        appspec,
        description,
    }
}

/// The rolling update of `target` to `task_definition_arn`.
pub fn rolling(target: &Rolling, task_definition_arn: &str) -> RollingRequest {
    RollingRequest {
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        task_definition_arn: task_definition_arn.to_owned(),
        minimum_healthy_percent: target.minimum_healthy_percent,
        maximum_percent: target.maximum_percent,
        circuit_breaker: target.circuit_breaker,
    }
}

/// The lifecycle events of a blue/green target at which the pipeline runs checks, in lifecycle order.
pub fn hook_events(target: &DeployTarget) -> Vec<&'static str> {
    BLUE_GREEN_HOOKS.into_iter().filter(|event| target.checks().iter().any(|check| check.hook == *event)).collect()
}

/// Whether ECS rolled back an ECS-native deployment that failed, and why, in words for the run's reason: what ECS's
/// record of it (DescribeServiceDeployments) says, the alarm, the circuit breaker or a hook's timeout first; the
/// event's own reason when there is no record.
pub fn native_failure(report: Option<&ServiceDeploymentReport>, said: Option<&str>) -> (bool, Option<String>) {
    let Some(report) = report else { return (false, said.map(str::to_owned)) };
    let why = if !report.triggered_alarms.is_empty() {
        format!("alarm {} went into ALARM", report.triggered_alarms.join(", "))
    } else if report.circuit_breaker_tripped {
        "the deployment circuit breaker tripped: the new tasks did not reach a steady state".to_owned()
    } else if !report.timed_out_hooks.is_empty() {
        format!("lifecycle hook {} timed out", report.timed_out_hooks.join(", "))
    } else if let Some(reason) = report.rollback_reason.as_deref().or(report.status_reason.as_deref()).or(said) {
        reason.to_owned()
    } else {
        format!("service deployment {}", report.status)
    };
    (report.rolled_back, Some(why))
}

/// The first field of `definition` that reaches into the host: the host's network, PID or IPC namespace, a privileged
/// container, or a host path mounted as a volume
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html>).
fn host_access(definition: &TaskDefinition) -> Option<String> {
    if definition.network_mode.as_deref() == Some("host") {
        return Some("networkMode".into());
    }
    if definition.pid_mode.as_deref() == Some("host") {
        return Some("pidMode".into());
    }
    if definition.ipc_mode.as_deref() == Some("host") {
        return Some("ipcMode".into());
    }
    if let Some(i) = definition.container_definitions.iter().position(|c| c.privileged == Some(true)) {
        return Some(format!("containerDefinitions[{i}].privileged"));
    }
    let hosted = |v: &crate::deploy::taskdef::Volume| v.host.as_ref().is_some_and(|host| host.source_path.is_some());
    definition.volumes.iter().position(hosted).map(|i| format!("volumes[{i}].host.sourcePath"))
}
