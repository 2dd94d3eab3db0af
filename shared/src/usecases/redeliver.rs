//! Self-healing intake. GitHub does not redeliver a webhook delivery that failed
//! (<https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries>): a push sluice answered
//! 5xx, or that never reached it, would be lost. Where the stack has GitHub credentials, the reconciler's look lists
//! the recent deliveries of each webhook that delivered the pipelines' pushes (its id came with every delivery as
//! `X-GitHub-Hook-ID`) and has GitHub redeliver the pushes that never got a 2xx or 4xx, within GitHub's three days.
//! A redelivery carries the same signed body and delivery id, so a push recorded meanwhile is answered as before.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn};

use crate::contract::ports::{PipelineStore, SecretSource, WebhookDeliveries};
use crate::definitions::Definitions;
use crate::github::webhook::to_redeliver;
use crate::runtime::telemetry::Chain;
use crate::usecases::GitHubAccess;

/// What the look at the webhooks' deliveries found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redelivered {
    /// Webhooks whose deliveries were listed.
    pub hooks_checked: usize,
    /// Deliveries GitHub was asked to send again.
    pub redelivered: usize,
    /// Webhooks or deliveries that could not be looked at or redelivered; the next look tries again.
    pub errors: usize,
}

/// The webhooks (repository, hook id) that delivered the newest pushes of `definitions`' pipelines, as their runs
/// recorded them.
async fn hooks<S: PipelineStore>(
    store: &S,
    definitions: &Definitions,
    done: &mut Redelivered,
) -> BTreeSet<(String, u64)> {
    let mut hooks = BTreeSet::new();
    for pipeline in definitions.iter() {
        let state = match store.load(&pipeline.name).await {
            Ok(Some(stored)) => stored.value,
            Ok(None) => continue,
            Err(error) => {
                warn!(error = %Chain(&error), pipeline = %pipeline.name, "its webhook's deliveries not looked at");
                done.errors += 1;
                continue;
            }
        };
        let newest = state.executions.iter().filter(|run| run.source.hook_id.is_some()).max_by_key(|run| run.seq);
        if let Some(run) = newest {
            hooks.extend(run.source.hook_id.map(|hook| (run.source.repository.clone(), hook)));
        }
    }
    hooks
}

/// Has GitHub redeliver the pushes that failed to reach sluice, for every webhook that delivered the pipelines'
/// pushes. Never fails: what could not be done is logged and counted, and the next look tries again.
#[instrument(skip_all)]
pub async fn redeliver_failed_pushes<S, G, K>(
    store: &S,
    intake: &GitHubAccess<G, K>,
    definitions: &Definitions,
    now: DateTime<Utc>,
) -> Redelivered
where
    S: PipelineStore,
    G: WebhookDeliveries,
    K: SecretSource,
{
    let mut done = Redelivered::default();
    let hooks = hooks(store, definitions, &mut done).await;
    if hooks.is_empty() {
        return done;
    }
    let credentials = match intake.sign_in().await {
        Ok(credentials) => credentials,
        Err(error) => {
            warn!(error = %Chain(&error), "failed deliveries wait for a look that can sign in to GitHub");
            done.errors += 1;
            return done;
        }
    };
    for (repository, hook) in hooks {
        let deliveries = match intake.github.deliveries(&credentials, &repository, hook).await {
            Ok(deliveries) => deliveries,
            Err(error) => {
                warn!(error = %Chain(&error), %repository, hook, "the webhook's deliveries could not be listed");
                done.errors += 1;
                continue;
            }
        };
        done.hooks_checked += 1;
        for delivery in to_redeliver(&deliveries, now) {
            let guid = deliveries.iter().find(|d| d.id == delivery).map_or("-", |d| d.guid.as_str());
            match intake.github.redeliver(&credentials, &repository, hook, delivery).await {
                Ok(()) => {
                    info!(%repository, hook, delivery, guid, "a push that never reached sluice redelivered");
                    done.redelivered += 1;
                }
                Err(error) => {
                    warn!(error = %Chain(&error), %repository, hook, delivery, guid, "a failed push not redelivered");
                    done.errors += 1;
                }
            }
        }
    }
    done
}
