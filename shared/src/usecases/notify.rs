//! The notifier's effect runner: it tells a pipeline's notification topic how each run ended (`NotifyOutcome`), as
//! `crate::present::outcome` writes it from the run's record.

use tracing::info;

use crate::contract::ports::{CommitReporter, NotifyError, PipelineStore, SecretSource, TopicNotifier};
use crate::pipeline::OutcomeReport;
use crate::pipeline::{Effect, EffectKind, Event, PendingEffect};
use crate::present::outcome::outcome_message;
use crate::usecases::{EffectError, EffectRunner, GitHubEffects};

/// Sends outcome notifications.
#[derive(Debug, Clone)]
pub struct NotifyEffects<S, N> {
    /// Where the runs' records are read from.
    pub store: S,
    pub notifier: N,
    /// The AWS region, named in the notification's JSON form.
    pub region: String,
}

impl<S: PipelineStore, N: TopicNotifier> EffectRunner for NotifyEffects<S, N> {
    const KINDS: &'static [EffectKind] = &[EffectKind::NotifyOutcome];

    async fn run(&self, _id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        const NAME: &str = "notify_outcome";
        let Effect::NotifyOutcome { execution_id, topic_arn, .. } = effect else {
            return Err(EffectError::permanent(effect.kind().name(), "not an effect the notifier carries out"));
        };
        let execution = match self.store.whole(execution_id).await {
            Ok(Some(execution)) => execution,
            Ok(None) => {
                return Err(EffectError::permanent(NAME, format!("run {execution_id} has no record to report on")));
            }
            Err(error) => return Err(EffectError::transient(NAME, error)),
        };
        let message = outcome_message(execution_id, &OutcomeReport::of(&execution), &self.region);
        match self.notifier.notify(topic_arn, &message).await {
            Ok(()) => {
                info!(execution = %execution_id, topic = %topic_arn, outcome = execution.status.name(), "outcome notified");
                Ok(None)
            }
            Err(error @ NotifyError::Refused { .. }) => Err(EffectError::permanent(NAME, error)),
            Err(error @ NotifyError::Unavailable { .. }) => Err(EffectError::transient(NAME, error)),
        }
    }
}

/// The notifier's effects: the outcome notifications, and the runs shown on GitHub.
pub struct NotifierEffects<S, N, G, K> {
    pub notify: NotifyEffects<S, N>,
    pub github: GitHubEffects<S, G, K>,
}

impl<S, N, G, K> EffectRunner for NotifierEffects<S, N, G, K>
where
    S: PipelineStore,
    N: TopicNotifier,
    G: CommitReporter,
    K: SecretSource,
{
    const KINDS: &'static [EffectKind] = &[EffectKind::NotifyOutcome, EffectKind::ReportToGitHub];

    async fn run(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect.kind() {
            EffectKind::ReportToGitHub => self.github.report(effect).await,
            _ => self.notify.run(id, effect).await,
        }
    }

    /// One after the other: two reports of a run at once could each create a Deployment.
    async fn run_all(&self, effects: &[PendingEffect]) -> Vec<Result<Option<Event>, EffectError>> {
        let mut results = Vec::with_capacity(effects.len());
        for pending in effects {
            results.push(self.run(&pending.id, &pending.effect).await);
        }
        results
    }
}
