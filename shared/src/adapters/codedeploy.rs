//! `BlueGreenDeployments` on CodeDeploy: CreateDeployment with the AppSpec as content, auto-rollback on failure and
//! alarm (<https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_CreateDeployment.html>). CodeDeploy takes no
//! client token, so a retried effect looks for its deployment first: the group's deployments of the last day
//! (ListDeployments), whose descriptions (BatchGetDeployments) carry the effect's marker.

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codedeploy::primitives::DateTime;
use aws_sdk_codedeploy::types as cd;
use tracing::instrument;

use crate::contract::ports::{BlueGreenDeployments, DeployError, DeploymentProgress, DeploymentReport, LifecycleHooks};
use crate::definitions::BLUE_GREEN_HOOKS;
use crate::deploy::BlueGreenRequest;
use crate::pipeline::HookStatus;

/// Errors that will not pass on retry.
const REFUSALS: &[&str] = &[
    "ApplicationDoesNotExistException",
    "ApplicationNameRequiredException",
    "DeploymentGroupDoesNotExistException",
    "DeploymentGroupNameRequiredException",
    "DeploymentConfigDoesNotExistException",
    "InvalidApplicationNameException",
    "InvalidDeploymentGroupNameException",
    "InvalidDeploymentConfigNameException",
    "InvalidRevisionException",
    "InvalidRoleException",
    "InvalidAutoRollbackConfigException",
    "InvalidAlarmConfigException",
    "InvalidTargetInstancesException",
    "DescriptionTooLongException",
    "AccessDeniedException",
    "InvalidInputException",
    "DeploymentDoesNotExistException",
    "DeploymentIdRequiredException",
    "InvalidDeploymentIdException",
    "InvalidLifecycleEventHookExecutionIdException",
    "InvalidLifecycleEventHookExecutionStatusException",
    "UnsupportedActionForDeploymentTypeException",
];

/// Blue/green deployments on CodeDeploy.
#[derive(Debug, Clone)]
pub struct CodeDeployDeployments {
    client: Client,
}

impl CodeDeployDeployments {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn classify<E, R>(error: SdkError<E, R>, group: &str) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = &error
        && service.err().code() == Some("DeploymentLimitExceededException")
    {
        return DeployError::Busy { group: group.to_owned(), source: Box::new(error) };
    }
    match super::refusal(&error, REFUSALS) {
        Some(message) => DeployError::Refused { service: "CodeDeploy", message, source: Box::new(error) },
        None => DeployError::Unavailable { service: "CodeDeploy", source: Box::new(error) },
    }
}

impl BlueGreenDeployments for CodeDeployDeployments {
    #[instrument(skip(self))]
    async fn find(&self, application: &str, group: &str, marker: &str) -> Result<Option<String>, DeployError> {
        let since = DateTime::from_secs(chrono::Utc::now().timestamp() - 86_400);
        let listed = self
            .client
            .list_deployments()
            .application_name(application)
            .deployment_group_name(group)
            .create_time_range(cd::TimeRange::builder().start(since).build())
            .send()
            .await
            .map_err(|e| classify(e, group))?;
        let ids: Vec<String> = listed.deployments().iter().take(25).cloned().collect();
        if ids.is_empty() {
            return Ok(None);
        }
        let described = self
            .client
            .batch_get_deployments()
            .set_deployment_ids(Some(ids))
            .send()
            .await
            .map_err(|e| classify(e, group))?;
        Ok(described
            .deployments_info()
            .iter()
            .find(|info| info.description().is_some_and(|d| d.contains(marker)))
            .and_then(|info| info.deployment_id())
            .map(str::to_owned))
    }

    #[instrument(skip_all, fields(application = %request.application, group = %request.deployment_group))]
    async fn create(&self, request: &BlueGreenRequest) -> Result<String, DeployError> {
        let revision = cd::RevisionLocation::builder()
            .revision_type(cd::RevisionLocationType::AppSpecContent)
            .app_spec_content(cd::AppSpecContent::builder().content(&request.appspec).build())
            .build();
        let rollback = cd::AutoRollbackConfiguration::builder()
            .enabled(true)
            .events(cd::AutoRollbackEvent::DeploymentFailure)
            .events(cd::AutoRollbackEvent::DeploymentStopOnAlarm)
            .build();
        let output = self
            .client
            .create_deployment()
            .application_name(&request.application)
            .deployment_group_name(&request.deployment_group)
            .deployment_config_name(&request.deployment_config)
            .description(&request.description)
            .revision(revision)
            .auto_rollback_configuration(rollback)
            .send()
            .await
            .map_err(|e| classify(e, &request.deployment_group))?;
        output.deployment_id().map(str::to_owned).ok_or_else(|| DeployError::Unavailable {
            service: "CodeDeploy",
            source: "CreateDeployment answered without a deployment id".into(),
        })
    }

    /// GetDeployment: its `status`, `errorInformation`, `rollbackInfo` and description.
    #[instrument(skip(self))]
    async fn report(&self, deployment_id: &str) -> Result<Option<DeploymentReport>, DeployError> {
        let output = match self.client.get_deployment().deployment_id(deployment_id).send().await {
            Ok(output) => output,
            Err(SdkError::ServiceError(service)) if service.err().code() == Some("DeploymentDoesNotExistException") => {
                return Ok(None);
            }
            Err(error) => return Err(classify(error, "-")),
        };
        let Some(info) = output.deployment_info() else { return Ok(None) };
        let message = info.error_information().and_then(|e| e.message()).map(str::to_owned);
        let rolled_back = info.rollback_info().is_some_and(|r| r.rollback_deployment_id().is_some());
        let progress = match info.status() {
            Some(cd::DeploymentStatus::Succeeded) => DeploymentProgress::Succeeded,
            Some(cd::DeploymentStatus::Failed) => DeploymentProgress::Failed,
            Some(cd::DeploymentStatus::Stopped) => DeploymentProgress::Stopped,
            _ => DeploymentProgress::Going,
        };
        let description = info.description().map(str::to_owned);
        Ok(Some(DeploymentReport { progress, message, rolled_back, description }))
    }

    /// ListDeployments of the group, only those that have not ended.
    #[instrument(skip(self))]
    async fn active(&self, application: &str, group: &str) -> Result<Vec<String>, DeployError> {
        let mut list = self.client.list_deployments().application_name(application).deployment_group_name(group);
        for status in [
            cd::DeploymentStatus::Created,
            cd::DeploymentStatus::Queued,
            cd::DeploymentStatus::InProgress,
            cd::DeploymentStatus::Ready,
            cd::DeploymentStatus::Baking,
        ] {
            list = list.include_only_statuses(status);
        }
        let listed = list.send().await.map_err(|e| classify(e, group))?;
        Ok(listed.deployments().to_vec())
    }

    /// StopDeployment with `autoRollbackEnabled`, so that traffic goes back to the original task set.
    #[instrument(skip(self))]
    async fn stop(&self, deployment_id: &str) -> Result<(), DeployError> {
        match self.client.stop_deployment().deployment_id(deployment_id).auto_rollback_enabled(true).send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if service.err().code() == Some("DeploymentAlreadyCompletedException") =>
            {
                Ok(())
            }
            Err(error) => Err(classify(error, "-")),
        }
    }
}

impl LifecycleHooks for CodeDeployDeployments {
    /// ListDeploymentTargets, then GetDeploymentTarget: the ECS target's lifecycle event that is `InProgress`.
    #[instrument(skip(self))]
    async fn waiting_event(&self, deployment_id: &str) -> Result<Option<String>, DeployError> {
        let targets = self
            .client
            .list_deployment_targets()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(|e| classify(e, "-"))?;
        let Some(target) = targets.target_ids().first() else { return Ok(None) };
        let described = self
            .client
            .get_deployment_target()
            .deployment_id(deployment_id)
            .target_id(target)
            .send()
            .await
            .map_err(|e| classify(e, "-"))?;
        let events = described.deployment_target().and_then(|t| t.ecs_target()).map(|t| t.lifecycle_events());
        Ok(events.unwrap_or_default().iter().find_map(|event| {
            let name = event.lifecycle_event_name()?;
            let waiting = event.status() == Some(&cd::LifecycleEventStatus::InProgress);
            (waiting && BLUE_GREEN_HOOKS.contains(&name)).then(|| name.to_owned())
        }))
    }

    #[instrument(skip(self))]
    async fn answer(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        status: HookStatus,
    ) -> Result<(), DeployError> {
        let status = match status {
            HookStatus::Succeeded => cd::LifecycleEventStatus::Succeeded,
            HookStatus::Failed => cd::LifecycleEventStatus::Failed,
        };
        let sent = self
            .client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment_id)
            .lifecycle_event_hook_execution_id(hook_execution_id)
            .status(status)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if service.err().code() == Some("LifecycleEventAlreadyCompletedException") =>
            {
                Ok(())
            }
            Err(error) => Err(classify(error, "-")),
        }
    }
}
