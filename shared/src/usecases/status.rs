//! The status page, as the approval function serves it: the key (or a run's seal) checked, then every published
//! pipeline's runs read (its state and one history query each) and shown. Read-only: nothing here writes.

use chrono::{DateTime, Utc};
use tracing::{error, warn};

use crate::contract::ports::{DefinitionsStore, PipelineStore, SecretSource};
use crate::pipeline::{Execution, ExecutionId};
use crate::present::approval_page as page;
use crate::present::html::Page;
use crate::present::status::{self, LAST_RUNS, PipelineView, StatusKey, StatusRequest};
use crate::present::timeline::{lines, waits_for, waits_for_in};
use crate::runtime::telemetry::Chain;
use crate::usecases::{CachedDefinitions, DefinitionsError, KeptSecret};

/// The page for a GET of `path` (`/status/...`). `key` is `None` when the function has no status page key.
pub async fn status_page<S, D, K>(
    store: &S,
    definitions: &CachedDefinitions<D>,
    key: Option<&KeptSecret<K>>,
    path: &str,
    now: DateTime<Utc>,
) -> Page
where
    S: PipelineStore,
    D: DefinitionsStore,
    K: SecretSource,
{
    let Some(request) = StatusRequest::parse(path) else { return status::not_found() };
    let Some(key) = key else { return status::disabled() };
    let key = match key.get().await.map(StatusKey::new) {
        Ok(Ok(key)) => key,
        Ok(Err(weak)) => {
            error!(error = %weak, "status page refused: its key is too weak");
            return page::unavailable();
        }
        Err(unread) => {
            error!(error = %Chain(&unread), "status page key not read");
            return page::unavailable();
        }
    };
    let shown = match request {
        StatusRequest::Overview { key: given } if key.accepts(given) => overview(store, definitions, &key, now).await,
        StatusRequest::Run { run, seal } if key.accepts_seal(&ExecutionId::from(run), seal) => {
            match store.whole(&ExecutionId::from(run)).await {
                Ok(Some(run)) => Ok(status::run_page(&run, &story(&run, now), now)),
                Ok(None) => Ok(status::not_found()),
                Err(error) => Err(error.into()),
            }
        }
        _ => return status::not_found(),
    };
    shown.unwrap_or_else(|error| {
        warn!(error = %Chain(&error), "status page not read");
        page::unavailable()
    })
}

async fn overview<S: PipelineStore, D: DefinitionsStore>(
    store: &S,
    definitions: &CachedDefinitions<D>,
    key: &StatusKey,
    now: DateTime<Utc>,
) -> Result<Page, DefinitionsError> {
    let definitions = match definitions.get().await {
        Err(DefinitionsError::NonePublished) => return Ok(status::overview(&[], key, now)),
        other => other?,
    };
    let mut pipelines = Vec::new();
    for pipeline in definitions.iter() {
        let state = store.load(&pipeline.name).await?.map(|stored| stored.value);
        let freeze = state.as_ref().and_then(|state| state.frozen().cloned());
        let in_progress: Vec<_> = state
            .iter()
            .flat_map(|state| state.executions.iter().map(move |run| (run, state)))
            .filter(|(run, _)| !run.status.is_finished())
            .map(|(run, state)| {
                let story = status::Story { waits_for: waits_for_in(run, state, now), ..story(run, now) };
                (run.clone(), story)
            })
            .collect();
        // The newest runs, those in progress among them: one query, whatever the history's length.
        let ended = store
            .history(&pipeline.name, LAST_RUNS + in_progress.len())
            .await?
            .into_iter()
            .filter(|run| run.status.is_finished())
            .take(LAST_RUNS)
            .collect();
        pipelines.push(PipelineView {
            name: pipeline.name.clone(),
            strategy: pipeline
                .deploy_stages()
                .map(|(_, deploy)| deploy.target.strategy())
                .collect::<Vec<_>>()
                .join(" → "),
            repository: pipeline.source.repository.clone(),
            in_progress,
            ended,
            freeze,
        });
    }
    Ok(status::overview(&pipelines, key, now))
}

/// What the status page tells of `run` besides its record, as the timeline tells it.
fn story(run: &Execution, now: DateTime<Utc>) -> status::Story {
    status::Story { waits_for: waits_for(run, now), timeline: lines(run) }
}
