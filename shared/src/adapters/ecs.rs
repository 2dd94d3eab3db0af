//! `TaskDefinitionRegistry` and `RollingUpdates` on ECS: RegisterTaskDefinition from the rendered `taskdef.json`
//! (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html>) and UpdateService
//! with the bounds and the circuit breaker
//! (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html>); `NativeDeployments`:
//! UpdateService with an ECS-native strategy and its lifecycle hooks, DescribeServiceDeployments
//! (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html>),
//! ListServiceDeployments, StopServiceDeployment and ContinueServiceDeployment; `RunningServices`: DescribeServices and
//! DescribeTaskDefinition (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTaskDefinition.html>);
//! `ServiceTasks`: ListTasks (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html>) and
//! DescribeTasks (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html>).

use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::types as ecs;
use tracing::instrument;

use crate::contract::ports::{
    AwaitingPause, DeployError, DeploymentProgress, NativeDeployments, NativeStarted, RollingUpdates, RolloutReport,
    RolloutStarted, RunningServices, RunningTasks, ServiceDeploymentReport, ServiceTasks, TaskDefinitionRegistry,
};
use crate::definitions::{PauseAction, TrafficShift};
use crate::deploy::compare::{ContainerShape, TaskShape, port_name};
use crate::deploy::{NativeRequest, RollingRequest, RunningContainer, RunningTask, TaskDefinition, taskdef};

/// Errors that will not pass on retry.
const REFUSALS: &[&str] = &[
    "ClientException",
    "InvalidParameterException",
    "AccessDeniedException",
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "PlatformUnknownException",
    "PlatformTaskDefinitionIncompatibilityException",
    "UnsupportedFeatureException",
    "ServiceDeploymentNotFoundException",
];

/// Task definitions and rolling updates on ECS.
#[derive(Debug, Clone)]
pub struct EcsDeployer {
    client: Client,
}

impl EcsDeployer {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// DescribeServices: the service, unless ECS knows none (or only a deleted one, INACTIVE).
    async fn described(&self, cluster: &str, service: &str) -> Result<Option<ecs::Service>, DeployError> {
        let output =
            self.client.describe_services().cluster(cluster).services(service).send().await.map_err(classify)?;
        Ok(output.services().iter().find(|s| s.status() != Some("INACTIVE")).cloned())
    }
}

/// The service deployments that are not over: pending, or ongoing as ECS's documentation lists them
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html>). A deployment being
/// stopped or rolled back is in the way as much as one going forward.
pub const ONGOING: [ecs::ServiceDeploymentStatus; 5] = [
    ecs::ServiceDeploymentStatus::Pending,
    ecs::ServiceDeploymentStatus::InProgress,
    ecs::ServiceDeploymentStatus::StopRequested,
    ecs::ServiceDeploymentStatus::RollbackRequested,
    ecs::ServiceDeploymentStatus::RollbackInProgress,
];

fn classify<E, R>(error: SdkError<E, R>) -> DeployError
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match super::refusal(&error, REFUSALS) {
        Some(message) => DeployError::Refused { service: "ECS", message, source: Box::new(error) },
        None => DeployError::Unavailable { service: "ECS", source: Box::new(error) },
    }
}

fn invalid(what: &str, error: aws_sdk_ecs::error::BuildError) -> DeployError {
    DeployError::Refused {
        service: "ECS",
        message: format!("taskdef.json: {what} is incomplete"),
        source: Box::new(error),
    }
}

fn secret(secret: &taskdef::Secret) -> Result<ecs::Secret, DeployError> {
    ecs::Secret::builder().name(&secret.name).value_from(&secret.value_from).build().map_err(|e| invalid("a secret", e))
}

fn port_mapping(port: &taskdef::PortMapping) -> ecs::PortMapping {
    ecs::PortMapping::builder()
        .container_port(port.container_port)
        .set_host_port(port.host_port)
        .set_protocol(port.protocol.as_deref().map(ecs::TransportProtocol::from))
        .set_name(port.name.clone())
        .set_app_protocol(port.app_protocol.as_deref().map(ecs::ApplicationProtocol::from))
        .build()
}

fn log_configuration(log: &taskdef::LogConfiguration) -> Result<ecs::LogConfiguration, DeployError> {
    let mut config = ecs::LogConfiguration::builder().log_driver(ecs::LogDriver::from(log.log_driver.as_str()));
    for (name, value) in &log.options {
        config = config.options(name, value);
    }
    for s in &log.secret_options {
        config = config.secret_options(secret(s)?);
    }
    config.build().map_err(|e| invalid("logConfiguration", e))
}

fn health_check(check: &taskdef::HealthCheck) -> Result<ecs::HealthCheck, DeployError> {
    ecs::HealthCheck::builder()
        .set_command(Some(check.command.clone()))
        .set_interval(check.interval)
        .set_timeout(check.timeout)
        .set_retries(check.retries)
        .set_start_period(check.start_period)
        .build()
        .map_err(|e| invalid("healthCheck", e))
}

fn container(c: &taskdef::ContainerDefinition) -> Result<ecs::ContainerDefinition, DeployError> {
    let mut builder = ecs::ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .set_essential(c.essential)
        .set_cpu(c.cpu)
        .set_memory(c.memory)
        .set_memory_reservation(c.memory_reservation)
        .set_working_directory(c.working_directory.clone())
        .set_user(c.user.clone())
        .set_readonly_root_filesystem(c.readonly_root_filesystem)
        .set_privileged(c.privileged)
        .set_stop_timeout(c.stop_timeout)
        .set_start_timeout(c.start_timeout);
    for port in &c.port_mappings {
        builder = builder.port_mappings(port_mapping(port));
    }
    for variable in &c.environment {
        builder = builder.environment(ecs::KeyValuePair::builder().name(&variable.name).value(&variable.value).build());
    }
    for s in &c.secrets {
        builder = builder.secrets(secret(s)?);
    }
    builder = builder
        .set_command((!c.command.is_empty()).then(|| c.command.clone()))
        .set_entry_point((!c.entry_point.is_empty()).then(|| c.entry_point.clone()));
    if let Some(log) = &c.log_configuration {
        builder = builder.log_configuration(log_configuration(log)?);
    }
    if let Some(check) = &c.health_check {
        builder = builder.health_check(health_check(check)?);
    }
    for dependency in &c.depends_on {
        let dependency = ecs::ContainerDependency::builder()
            .container_name(&dependency.container_name)
            .condition(ecs::ContainerCondition::from(dependency.condition.as_str()))
            .build()
            .map_err(|e| invalid("dependsOn", e))?;
        builder = builder.depends_on(dependency);
    }
    for mount in &c.mount_points {
        builder = builder.mount_points(
            ecs::MountPoint::builder()
                .source_volume(&mount.source_volume)
                .container_path(&mount.container_path)
                .set_read_only(mount.read_only)
                .build(),
        );
    }
    for limit in &c.ulimits {
        let limit = ecs::Ulimit::builder()
            .name(ecs::UlimitName::from(limit.name.as_str()))
            .soft_limit(limit.soft_limit)
            .hard_limit(limit.hard_limit)
            .build()
            .map_err(|e| invalid("ulimits", e))?;
        builder = builder.ulimits(limit);
    }
    for (name, value) in &c.docker_labels {
        builder = builder.docker_labels(name, value);
    }
    Ok(builder.build())
}

impl TaskDefinitionRegistry for EcsDeployer {
    async fn find_tagged(&self, family: &str, key: &str, value: &str) -> Result<Option<String>, DeployError> {
        self.find_tagged_revision(family, key, value).await
    }

    #[instrument(skip_all, fields(family = %definition.family))]
    async fn register(&self, definition: &TaskDefinition) -> Result<String, DeployError> {
        let containers =
            definition.container_definitions.iter().map(container).collect::<Result<Vec<_>, DeployError>>()?;
        let mut request = self
            .client
            .register_task_definition()
            .family(&definition.family)
            .set_container_definitions(Some(containers))
            .set_task_role_arn(definition.task_role_arn.clone())
            .set_execution_role_arn(definition.execution_role_arn.clone())
            .set_network_mode(definition.network_mode.as_deref().map(ecs::NetworkMode::from))
            .set_cpu(definition.cpu.clone())
            .set_memory(definition.memory.clone())
            .set_pid_mode(definition.pid_mode.as_deref().map(ecs::PidMode::from))
            .set_ipc_mode(definition.ipc_mode.as_deref().map(ecs::IpcMode::from));
        for compatibility in &definition.requires_compatibilities {
            request = request.requires_compatibilities(ecs::Compatibility::from(compatibility.as_str()));
        }
        if let Some(platform) = &definition.runtime_platform {
            request = request.runtime_platform(
                ecs::RuntimePlatform::builder()
                    .set_cpu_architecture(platform.cpu_architecture.as_deref().map(ecs::CpuArchitecture::from))
                    .set_operating_system_family(platform.operating_system_family.as_deref().map(ecs::OsFamily::from))
                    .build(),
            );
        }
        if let Some(storage) = &definition.ephemeral_storage {
            request =
                request.ephemeral_storage(ecs::EphemeralStorage::builder().size_in_gib(storage.size_in_gi_b).build());
        }
        for volume in &definition.volumes {
            let mut built = ecs::Volume::builder().name(&volume.name);
            if let Some(host) = &volume.host {
                built =
                    built.host(ecs::HostVolumeProperties::builder().set_source_path(host.source_path.clone()).build());
            }
            if let Some(efs) = &volume.efs_volume_configuration {
                let efs = ecs::EfsVolumeConfiguration::builder()
                    .file_system_id(&efs.file_system_id)
                    .set_root_directory(efs.root_directory.clone())
                    .set_transit_encryption(efs.transit_encryption.as_deref().map(ecs::EfsTransitEncryption::from))
                    .build()
                    .map_err(|e| invalid("efsVolumeConfiguration", e))?;
                built = built.efs_volume_configuration(efs);
            }
            request = request.volumes(built.build());
        }
        for tag in &definition.tags {
            request = request.tags(ecs::Tag::builder().key(&tag.key).value(&tag.value).build());
        }
        let output = request.send().await.map_err(classify)?;
        output.task_definition().and_then(|d| d.task_definition_arn()).map(str::to_owned).ok_or_else(|| {
            DeployError::Unavailable { service: "ECS", source: "RegisterTaskDefinition answered without an ARN".into() }
        })
    }
}

/// Revisions of a family looked at for a tag, newest first: a retry comes soon after the attempt it repeats.
const NEWEST: i32 = 3;

impl EcsDeployer {
    /// ListTaskDefinitions (newest first), then DescribeTaskDefinition with its tags, for the newest few.
    #[instrument(skip(self))]
    async fn find_tagged_revision(&self, family: &str, key: &str, value: &str) -> Result<Option<String>, DeployError> {
        let listed = self
            .client
            .list_task_definitions()
            .family_prefix(family)
            .sort(ecs::SortOrder::Desc)
            .max_results(NEWEST)
            .send()
            .await
            .map_err(classify)?;
        for arn in listed.task_definition_arns() {
            let described = self
                .client
                .describe_task_definition()
                .task_definition(arn)
                .include(ecs::TaskDefinitionField::Tags)
                .send()
                .await
                .map_err(classify)?;
            let same_family = described.task_definition().and_then(|t| t.family()) == Some(family);
            if same_family && described.tags().iter().any(|t| t.key() == Some(key) && t.value() == Some(value)) {
                return Ok(Some(arn.clone()));
            }
        }
        Ok(None)
    }
}

impl RunningServices for EcsDeployer {
    #[instrument(skip(self))]
    async fn running(&self, cluster: &str, service: &str) -> Result<Option<RunningTasks>, DeployError> {
        let Some(described) = self.described(cluster, service).await? else { return Ok(None) };
        let unanswered = |what: &str| DeployError::Refused {
            service: "ECS",
            message: format!("{what} for service {service} in cluster {cluster}"),
            source: what.to_owned().into(),
        };
        let arn = running_task_definition(&described)
            .ok_or_else(|| unanswered("DescribeServices named no task definition"))?;
        let output = self.client.describe_task_definition().task_definition(arn).send().await.map_err(classify)?;
        let definition =
            output.task_definition().ok_or_else(|| unanswered("DescribeTaskDefinition answered no task definition"))?;
        Ok(Some(RunningTasks { task_definition: arn.to_owned(), shape: shape(definition) }))
    }

    #[instrument(skip(self))]
    async fn task_definition(&self, cluster: &str, service: &str) -> Result<Option<String>, DeployError> {
        let described = self.described(cluster, service).await?;
        Ok(described.as_ref().and_then(running_task_definition).map(str::to_owned))
    }
}

impl ServiceTasks for EcsDeployer {
    #[instrument(skip(self))]
    async fn tasks(&self, cluster: &str, service: &str) -> Result<Vec<RunningTask>, DeployError> {
        let listed = self
            .client
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(ecs::DesiredStatus::Running)
            .max_results(crate::contract::ports::MAX_TASKS_CHECKED)
            .send()
            .await
            .map_err(classify)?;
        if listed.task_arns().is_empty() {
            return Ok(Vec::new());
        }
        let described = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(listed.task_arns().to_vec()))
            .send()
            .await
            .map_err(classify)?;
        Ok(described.tasks().iter().map(running_task).collect())
    }
}

/// A task as DescribeTasks describes it: its task definition, and each container's image and digest.
fn running_task(task: &ecs::Task) -> RunningTask {
    RunningTask {
        task_arn: task.task_arn().unwrap_or_default().to_owned(),
        task_definition: task.task_definition_arn().unwrap_or_default().to_owned(),
        containers: task
            .containers()
            .iter()
            .map(|container| RunningContainer {
                name: container.name().unwrap_or_default().to_owned(),
                image: container.image().unwrap_or_default().to_owned(),
                digest: container.image_digest().map(str::to_owned),
            })
            .collect(),
    }
}

/// The task definition a service runs: under CodeDeploy (or an external controller), its PRIMARY task set's; else
/// its PRIMARY (most recent) deployment's once that has completed, or while another deployment still serves (ACTIVE,
/// being replaced: a rollout under way, or one that failed without rolling back) that one's; the service's own
/// without deployments (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html>,
/// <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskSet.html>).
fn running_task_definition(service: &ecs::Service) -> Option<&str> {
    let status = |wanted: &'static str| move |status: Option<&str>| status == Some(wanted);
    if let Some(set) = service.task_sets().iter().find(|set| status("PRIMARY")(set.status())) {
        return set.task_definition();
    }
    let deployments = service.deployments();
    let primary = deployments.iter().find(|d| status("PRIMARY")(d.status()));
    let replaced = deployments.iter().find(|d| status("ACTIVE")(d.status()));
    let settled = primary.filter(|d| d.rollout_state() == Some(&ecs::DeploymentRolloutState::Completed));
    settled.or(replaced).or(primary).and_then(ecs::Deployment::task_definition).or(service.task_definition())
}

/// What an approver compares of a registered task definition.
fn shape(definition: &ecs::TaskDefinition) -> TaskShape {
    let containers = definition
        .container_definitions()
        .iter()
        .map(|container| ContainerShape {
            name: container.name().unwrap_or_default().to_owned(),
            image: container.image().unwrap_or_default().to_owned(),
            cpu: Some(container.cpu()).filter(|cpu| *cpu != 0),
            memory: container.memory(),
            environment: container
                .environment()
                .iter()
                .filter_map(ecs::KeyValuePair::name)
                .chain(container.secrets().iter().map(ecs::Secret::name))
                .map(str::to_owned)
                .collect(),
            ports: container
                .port_mappings()
                .iter()
                .map(|port| {
                    let protocol = port.protocol().map(ecs::TransportProtocol::as_str);
                    match (port.container_port(), port.container_port_range()) {
                        (Some(port), _) => port_name(port, protocol),
                        (None, range) => format!("{}/{}", range.unwrap_or("?"), protocol.unwrap_or("tcp")),
                    }
                })
                .collect(),
        })
        .collect();
    TaskShape { cpu: definition.cpu().map(str::to_owned), memory: definition.memory().map(str::to_owned), containers }
}

impl RollingUpdates for EcsDeployer {
    #[instrument(skip_all, fields(cluster = %request.cluster, service = %request.service))]
    async fn update(&self, request: &RollingRequest) -> Result<RolloutStarted, DeployError> {
        let configuration = ecs::DeploymentConfiguration::builder()
            .minimum_healthy_percent(i32::try_from(request.minimum_healthy_percent).unwrap_or(i32::MAX))
            .maximum_percent(i32::try_from(request.maximum_percent).unwrap_or(i32::MAX))
            .deployment_circuit_breaker(breaker(&request.circuit_breaker))
            .build();
        let output = self
            .client
            .update_service()
            .cluster(&request.cluster)
            .service(&request.service)
            .task_definition(&request.task_definition_arn)
            .deployment_configuration(configuration)
            .send()
            .await
            .map_err(classify)?;
        let deployments = output.service().map(|s| s.deployments()).unwrap_or_default();
        let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"));
        let deployment_id =
            primary.and_then(|d| d.id()).map(str::to_owned).ok_or_else(|| DeployError::Unavailable {
                service: "ECS",
                source: "UpdateService answered without a primary deployment".into(),
            })?;
        // The service's former primary is now ACTIVE, draining: the newest such, if several rollouts overlap.
        let previous = deployments
            .iter()
            .filter(|d| d.status() == Some("ACTIVE"))
            .filter(|d| d.task_definition() != Some(request.task_definition_arn.as_str()))
            .min_by_key(|d| std::cmp::Reverse(d.created_at().map(|at| (at.secs(), at.subsec_nanos()))));
        let previous_task_definition = previous.and_then(|d| d.task_definition()).map(str::to_owned);
        Ok(RolloutStarted { deployment_id, previous_task_definition })
    }

    /// DescribeServices: the deployment's `rolloutState` while the service lists it, and the primary deployment's
    /// task definition.
    #[instrument(skip(self))]
    async fn rollout(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> Result<Option<RolloutReport>, DeployError> {
        let Some(described) = self.described(cluster, service).await? else { return Ok(None) };
        let deployments = described.deployments();
        let deployment = deployments.iter().find(|d| d.id() == Some(deployment_id)).map(|d| {
            let progress = match d.rollout_state() {
                Some(ecs::DeploymentRolloutState::Completed) => DeploymentProgress::Succeeded,
                Some(ecs::DeploymentRolloutState::Failed) => DeploymentProgress::Failed,
                _ => DeploymentProgress::Going,
            };
            (progress, d.rollout_state_reason().map(str::to_owned))
        });
        let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"));
        let task_definition = primary.and_then(|d| d.task_definition()).or(described.task_definition());
        Ok(Some(RolloutReport { deployment, task_definition: task_definition.map(str::to_owned) }))
    }
}

fn breaker(request: &crate::definitions::CircuitBreaker) -> ecs::DeploymentCircuitBreaker {
    ecs::DeploymentCircuitBreaker::builder().enable(request.enable).rollback(request.rollback).build()
}

/// The `deploymentConfiguration` of an ECS-native deployment.
fn native_configuration(request: &NativeRequest) -> Result<ecs::DeploymentConfiguration, DeployError> {
    let minutes = |m: u32| i32::try_from(m).unwrap_or(i32::MAX);
    let percent = |tenths: u32| f64::from(tenths) / 10.0;
    let mut configuration = ecs::DeploymentConfiguration::builder()
        .strategy(ecs::DeploymentStrategy::from(request.strategy))
        .bake_time_in_minutes(minutes(request.bake_time_minutes))
        .deployment_circuit_breaker(breaker(&request.circuit_breaker));
    match request.shift {
        TrafficShift::BlueGreen => {}
        TrafficShift::Linear { step_tenths, step_bake_time_minutes } => {
            configuration = configuration.linear_configuration(
                ecs::LinearConfiguration::builder()
                    .step_percent(percent(step_tenths))
                    .step_bake_time_in_minutes(minutes(step_bake_time_minutes))
                    .build(),
            );
        }
        TrafficShift::Canary { tenths, bake_time_minutes } => {
            configuration = configuration.canary_configuration(
                ecs::CanaryConfiguration::builder()
                    .canary_percent(percent(tenths))
                    .canary_bake_time_in_minutes(minutes(bake_time_minutes))
                    .build(),
            );
        }
    }
    if !request.alarms.is_empty() {
        let alarms = ecs::DeploymentAlarms::builder()
            .set_alarm_names(Some(request.alarms.clone()))
            .enable(true)
            .rollback(true)
            .build()
            .map_err(|e| DeployError::Refused { service: "ECS", message: "alarms".into(), source: Box::new(e) })?;
        configuration = configuration.alarms(alarms);
    }
    if let Some(hook) = &request.hook {
        let stages = hook.stages.iter().map(|stage| ecs::DeploymentLifecycleHookStage::from(*stage)).collect();
        configuration = configuration.lifecycle_hooks(
            ecs::DeploymentLifecycleHook::builder()
                .target_type(ecs::DeploymentLifecycleHookTargetType::AwsLambda)
                .hook_target_arn(&hook.function_arn)
                .role_arn(&hook.role_arn)
                .set_lifecycle_stages(Some(stages))
                .build(),
        );
    }
    if let Some(pause) = &request.pause {
        configuration = configuration.lifecycle_hooks(
            ecs::DeploymentLifecycleHook::builder()
                .target_type(ecs::DeploymentLifecycleHookTargetType::Pause)
                .lifecycle_stages(ecs::DeploymentLifecycleHookStage::from(pause.stage.as_str()))
                .timeout_configuration(
                    ecs::DeploymentLifecycleHookTimeoutConfiguration::builder()
                        .timeout_in_minutes(minutes(pause.timeout_minutes))
                        .action(ecs::DeploymentLifecycleHookAction::from(pause.timeout_action))
                        .build(),
                )
                .build(),
        );
    }
    Ok(configuration.build())
}

impl NativeDeployments for EcsDeployer {
    #[instrument(skip_all, fields(cluster = %request.cluster, service = %request.service, strategy = request.strategy))]
    async fn start(&self, request: &NativeRequest) -> Result<NativeStarted, DeployError> {
        let output = self
            .client
            .update_service()
            .cluster(&request.cluster)
            .service(&request.service)
            .task_definition(&request.task_definition_arn)
            .deployment_configuration(native_configuration(request)?)
            .send()
            .await
            .map_err(classify)?;
        let service = output.service();
        let primary =
            service.map(|s| s.deployments()).unwrap_or_default().iter().find(|d| d.status() == Some("PRIMARY"));
        let deployment_id =
            primary.and_then(|d| d.id()).map(str::to_owned).ok_or_else(|| DeployError::Unavailable {
                service: "ECS",
                source: "UpdateService answered without a primary deployment".into(),
            })?;
        let service_deployment = service.and_then(|s| s.current_service_deployment()).map(str::to_owned);
        Ok(NativeStarted { deployment_id, service_deployment })
    }

    #[instrument(skip(self))]
    async fn describe(&self, service_deployment: &str) -> Result<Option<ServiceDeploymentReport>, DeployError> {
        let output = self
            .client
            .describe_service_deployments()
            .service_deployment_arns(service_deployment)
            .send()
            .await
            .map_err(classify)?;
        let Some(found) = output.service_deployments().first() else { return Ok(None) };
        use ecs::ServiceDeploymentStatus as S;
        let status = found.status();
        let progress = match status {
            Some(S::Successful) => DeploymentProgress::Succeeded,
            Some(S::RollbackSuccessful | S::RollbackFailed) => DeploymentProgress::Failed,
            Some(S::Stopped) => DeploymentProgress::Stopped,
            _ => DeploymentProgress::Going,
        };
        let rolled_back = matches!(status, Some(S::RollbackSuccessful | S::RollbackInProgress | S::RollbackRequested))
            || found.rollback().is_some();
        let tripped = |s: Option<&ecs::ServiceDeploymentRollbackMonitorsStatus>| {
            s == Some(&ecs::ServiceDeploymentRollbackMonitorsStatus::Triggered)
        };
        Ok(Some(ServiceDeploymentReport {
            progress,
            status: status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            status_reason: found.status_reason().map(str::to_owned),
            rolled_back,
            rollback_reason: found.rollback().and_then(|r| r.reason()).map(str::to_owned),
            triggered_alarms: found.alarms().map(|a| a.triggered_alarm_names().to_vec()).unwrap_or_default(),
            circuit_breaker_tripped: tripped(found.deployment_circuit_breaker().and_then(|b| b.status())),
            timed_out_hooks: found
                .lifecycle_hook_details()
                .iter()
                .filter(|h| h.status() == Some(&ecs::DeploymentLifecycleHookStatus::TimedOut))
                .filter_map(|h| h.hook_id().map(str::to_owned))
                .collect(),
            awaiting: found
                .lifecycle_hook_details()
                .iter()
                .filter(|h| h.target_type() == Some(&ecs::DeploymentLifecycleHookTargetType::Pause))
                .filter(|h| h.status() == Some(&ecs::DeploymentLifecycleHookStatus::AwaitingAction))
                .find_map(|h| {
                    Some(AwaitingPause {
                        hook_id: h.hook_id()?.to_owned(),
                        stage: found.lifecycle_stage().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                        expires_at: h
                            .expires_at()
                            .and_then(|at| chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())),
                        timeout_action: h.timeout_action().and_then(|action| match action {
                            ecs::DeploymentLifecycleHookAction::Continue => Some(PauseAction::Continue),
                            ecs::DeploymentLifecycleHookAction::Rollback => Some(PauseAction::Rollback),
                            _ => None,
                        }),
                    })
                }),
        }))
    }

    /// DescribeServices, then ListServiceDeployments of the pending and ongoing ones ([`ONGOING`]).
    #[instrument(skip(self))]
    async fn in_the_way(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<Vec<String>, DeployError> {
        let described = self.described(cluster, service).await?;
        if described.as_ref().and_then(|s| s.task_definition()) == Some(task_definition) {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .set_status(Some(ONGOING.to_vec()))
            .send()
            .await
            .map_err(classify)?;
        Ok(output.service_deployments().iter().filter_map(|d| d.service_deployment_arn()).map(str::to_owned).collect())
    }

    /// A refusal of a deployment that has ended meanwhile (ECS stops only PENDING and IN_PROGRESS ones) is no error.
    #[instrument(skip(self))]
    async fn stop(&self, service_deployment: &str) -> Result<(), DeployError> {
        let stopped = self
            .client
            .stop_service_deployment()
            .service_deployment_arn(service_deployment)
            .stop_type(ecs::StopServiceDeploymentStopType::Rollback)
            .send()
            .await
            .map_err(classify);
        match stopped {
            Ok(_) => Ok(()),
            Err(error @ DeployError::Refused { .. }) => match self.describe(service_deployment).await? {
                // Already being stopped or rolled back (by sluice a moment ago, say): nothing more to stop.
                Some(report)
                    if report.progress != DeploymentProgress::Going
                        || report.rolled_back
                        || report.status == "STOP_REQUESTED"
                        || report.status.starts_with("ROLLBACK_") =>
                {
                    Ok(())
                }
                _ => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    #[instrument(skip(self))]
    async fn resume(&self, service_deployment: &str, hook_id: &str, action: PauseAction) -> Result<(), DeployError> {
        self.client
            .continue_service_deployment()
            .service_deployment_arn(service_deployment)
            .hook_id(hook_id)
            .action(ecs::DeploymentLifecycleHookAction::from(action.ecs_name()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(
        status: &str,
        task_definition: &str,
        rollout: Option<ecs::DeploymentRolloutState>,
    ) -> ecs::Deployment {
        ecs::Deployment::builder().status(status).task_definition(task_definition).set_rollout_state(rollout).build()
    }

    #[test]
    fn a_service_runs_its_completed_primary_deployment_or_while_one_rolls_out_the_one_it_replaces() {
        use ecs::DeploymentRolloutState::{Completed, InProgress};
        let service = |deployments: Vec<ecs::Deployment>| {
            ecs::Service::builder().task_definition("web:9").set_deployments(Some(deployments)).build()
        };
        let settled = service(vec![deployment("PRIMARY", "web:8", Some(Completed))]);
        let rolling =
            service(vec![deployment("PRIMARY", "web:9", Some(InProgress)), deployment("ACTIVE", "web:8", None)]);
        // A deployment controller that reports no rollout state (behind a Classic Load Balancer, say).
        let unreported = service(vec![deployment("PRIMARY", "web:9", None)]);
        let bare = ecs::Service::builder().task_definition("web:7").build();
        let under_codedeploy = ecs::Service::builder()
            .task_definition("web:1")
            .task_sets(ecs::TaskSet::builder().status("ACTIVE").task_definition("web:6").build())
            .task_sets(ecs::TaskSet::builder().status("PRIMARY").task_definition("web:5").build())
            .build();

        let running: Vec<Option<&str>> =
            [&settled, &rolling, &unreported, &bare, &under_codedeploy].map(running_task_definition).to_vec();

        assert_eq!(running, [Some("web:8"), Some("web:8"), Some("web:9"), Some("web:7"), Some("web:5")]);
    }

    #[test]
    fn a_registered_task_definition_is_compared_by_its_names_ports_and_sizes_never_its_values() {
        let secret = ecs::Secret::builder().name("DB_PASSWORD").value_from("arn:aws:ssm:x").build().expect("a secret");
        let range = ecs::PortMapping::builder().container_port_range("9000-9010").protocol(ecs::TransportProtocol::Udp);
        let container = ecs::ContainerDefinition::builder()
            .name("web")
            .image("web@sha256:aa")
            .cpu(0)
            .memory(512)
            .environment(ecs::KeyValuePair::builder().name("LOG_LEVEL").value("debug").build())
            .secrets(secret)
            .port_mappings(ecs::PortMapping::builder().container_port(8080).build())
            .port_mappings(range.build())
            .build();
        let definition =
            ecs::TaskDefinition::builder().cpu("256").memory("1024").container_definitions(container).build();

        let shape = shape(&definition);

        assert_eq!((shape.cpu.as_deref(), shape.memory.as_deref()), (Some("256"), Some("1024")));
        let web = &shape.containers[0];
        assert_eq!(
            (web.name.as_str(), web.image.as_str(), web.cpu, web.memory),
            ("web", "web@sha256:aa", None, Some(512))
        );
        assert_eq!(web.environment.iter().collect::<Vec<_>>(), ["DB_PASSWORD", "LOG_LEVEL"]);
        assert_eq!(web.ports.iter().collect::<Vec<_>>(), ["8080/tcp", "9000-9010/udp"]);
        let shown = format!("{shape:?}");
        assert!(!shown.contains("debug") && !shown.contains("arn:aws:ssm"), "{shown}");
    }
}
