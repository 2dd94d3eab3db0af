//! The effect runner of the functions that move runs through their stages: events go on the bus, builds to
//! CodeBuild. Hook reports are left to the hook function.

use crate::pipeline::{Effect, Event};
use crate::ports::{BuildRequest, BuildStartError, BuildStarter, EventPublisher};
use crate::usecases::{EffectError, EffectRunner};

/// Publishes `Publish` effects and starts builds.
#[derive(Debug, Clone)]
pub struct StageEffects<P, B> {
    pub publisher: P,
    pub builds: B,
}

impl<P: EventPublisher, B: BuildStarter> EffectRunner for StageEffects<P, B> {
    fn runs(&self, effect: &Effect) -> bool {
        !matches!(effect, Effect::ReportHookStatus { .. })
    }

    async fn run(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::Publish(event) => {
                self.publisher
                    .publish(std::slice::from_ref(event))
                    .await
                    .map_err(|error| EffectError { effect: "publish", source: Box::new(error) })?;
                Ok(None)
            }
            Effect::StartBuild { execution_id, project, source_version, environment } => {
                let request = BuildRequest { project, source_version, environment, idempotency_token: id };
                match self.builds.start_build(&request).await {
                    Ok(build_id) => Ok(Some(Event::BuildStarted { execution_id: execution_id.clone(), build_id })),
                    Err(BuildStartError::Refused { message, .. }) => {
                        Ok(Some(Event::BuildStartFailed { execution_id: execution_id.clone(), reason: message }))
                    }
                    Err(error @ BuildStartError::Unavailable { .. }) => {
                        Err(EffectError { effect: "start_build", source: Box::new(error) })
                    }
                }
            }
            Effect::ReportHookStatus { .. } => {
                Err(EffectError { effect: "report_hook_status", source: "left to the hook function".into() })
            }
        }
    }
}
