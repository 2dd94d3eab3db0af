//! The effect runner of the functions that move runs through their stages (the webhook, build-events and the
//! reconciler): announcements go on the bus, builds to CodeBuild. Every other kind is left to its owner.

use crate::contract::ports::{BuildRequest, BuildStartError, BuildStarter, EventPublisher, PublishError, RefusedEntry};
use crate::pipeline::{Effect, EffectKind, Event, PendingEffect};
use crate::usecases::{EffectError, EffectRunner};

/// Publishes `Publish` effects and starts builds.
#[derive(Debug, Clone)]
pub struct StageEffects<P, B> {
    pub publisher: P,
    pub builds: B,
}

impl<P: EventPublisher, B: BuildStarter> StageEffects<P, B> {
    async fn start_build(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        let Effect::StartBuild { execution_id, project, source_version, environment, stage, timeout_minutes } = effect
        else {
            return Err(EffectError::permanent(effect.kind().name(), "not an effect the stage functions carry out"));
        };
        let request = BuildRequest {
            project,
            source_version,
            environment,
            idempotency_token: id,
            timeout_minutes: *timeout_minutes,
        };
        let execution_id = execution_id.clone();
        match (self.builds.start_build(&request).await, *stage) {
            (Ok(build_id), None) => Ok(Some(Event::BuildStarted { execution_id, build_id })),
            (Ok(build_id), Some(stage)) => Ok(Some(Event::TestStarted { execution_id, stage, build_id })),
            (Err(BuildStartError::Refused { message, .. }), None) => {
                Ok(Some(Event::BuildStartFailed { execution_id, reason: message }))
            }
            (Err(BuildStartError::Refused { message, .. }), Some(stage)) => {
                Ok(Some(Event::TestStartFailed { execution_id, stage, reason: message }))
            }
            (Err(error @ BuildStartError::Unavailable { .. }), _) => Err(EffectError::transient("start_build", error)),
        }
    }
}

/// Carries out one `Publish` effect: the bus refusing the entry is permanent, anything else may pass.
pub(crate) async fn publish_one<P: EventPublisher>(
    publisher: &P,
    event: &crate::contract::events::SluiceEvent,
) -> Result<Option<Event>, EffectError> {
    publisher.publish(std::slice::from_ref(event)).await.map_err(publish_error)?;
    Ok(None)
}

fn publish_error(error: PublishError) -> EffectError {
    match &error {
        // The bus said no to the entries themselves (too large, malformed): sending them again will not help. Throttled
        // or failed inside, they are sent again after the outbox's backoff.
        PublishError::Rejected { entries, .. } if entries.iter().all(RefusedEntry::is_retryable) => {
            EffectError::transient("publish", error)
        }
        PublishError::Rejected { .. } => EffectError::permanent("publish", error),
        PublishError::Unavailable { .. } => EffectError::transient("publish", error),
    }
}

/// What became of the `index`th event of a `publish` that failed with `error`: accepted (`None`), or why not.
fn entry_error(error: &PublishError, index: usize) -> Option<EffectError> {
    let refused = match error {
        PublishError::Unavailable { .. } => {
            return Some(EffectError::transient("publish", crate::runtime::telemetry::Chain(error).to_string()));
        }
        PublishError::Rejected { entries, .. } => entries.iter().find(|entry| entry.index == index)?,
    };
    let source = format!("the event bus refused the event: {}: {}", refused.code, refused.message);
    Some(if refused.is_retryable() {
        EffectError::transient("publish", source)
    } else {
        EffectError::permanent("publish", source)
    })
}

impl<P: EventPublisher, B: BuildStarter> EffectRunner for StageEffects<P, B> {
    const KINDS: &'static [EffectKind] = &[EffectKind::StartBuild, EffectKind::Publish];

    async fn run(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::Publish(event) => publish_one(&self.publisher, event).await,
            other => self.start_build(id, other).await,
        }
    }

    /// The announcements go out in one PutEvents, in order, while the builds start.
    async fn run_all(&self, effects: &[PendingEffect]) -> Vec<Result<Option<Event>, EffectError>> {
        let events: Vec<_> = effects
            .iter()
            .filter_map(|pending| match &pending.effect {
                Effect::Publish(event) => Some(event.clone()),
                _ => None,
            })
            .collect();
        let published = async { if events.is_empty() { Ok(()) } else { self.publisher.publish(&events).await } };
        let others = futures_util::future::join_all(
            effects
                .iter()
                .filter(|pending| !matches!(pending.effect, Effect::Publish(_)))
                .map(|pending| self.start_build(&pending.id, &pending.effect)),
        );
        let (published, mut others) = futures_util::future::join(published, others).await;
        let mut others = others.drain(..);
        let mut index = 0;
        effects
            .iter()
            .map(|pending| match &pending.effect {
                Effect::Publish(_) => {
                    // Only the entries the bus did not take are tried again.
                    let error = published.as_ref().err().and_then(|error| entry_error(error, index));
                    index += 1;
                    error.map_or(Ok(None), Err)
                }
                _ => others.next().unwrap_or_else(|| Err(EffectError::transient("start_build", "not run"))),
            })
            .collect()
    }
}

/// The effect runner of functions that only record what happened (deploy-events): it publishes the announcements
/// of the runs it moves on, and leaves every other kind to its owner (a run let into the deploy stage is started by
/// the deployer, which the `Deployment Requested` announcement wakes).
#[derive(Debug, Clone)]
pub struct Announcer<P> {
    pub publisher: P,
}

impl<P: EventPublisher> EffectRunner for Announcer<P> {
    const KINDS: &'static [EffectKind] = &[EffectKind::Publish];

    async fn run(&self, _id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::Publish(event) => publish_one(&self.publisher, event).await,
            other => Err(EffectError::permanent(other.kind().name(), "not an effect this function carries out")),
        }
    }
}
