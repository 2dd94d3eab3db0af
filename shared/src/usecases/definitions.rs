//! The published pipeline definitions, as a function reads them: parsed once, then again only after a minute, so
//! that `sluice publish` takes effect within a minute without a read on every invocation.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::contract::ports::{DefinitionsStore, StoreError};
use crate::definitions::{DefinitionErrors, Definitions};

/// How long a function keeps the definitions it read.
pub const REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    #[error("no pipeline definitions are published; publish them with `sluice publish FILE`")]
    NonePublished,
    #[error("the published definitions (revision {revision}) are invalid; fix and publish them again:\n{errors}")]
    Invalid { revision: u64, errors: DefinitionErrors },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The current definitions, read through `store` and kept for [`REFRESH`].
pub struct CachedDefinitions<S> {
    store: S,
    cached: Mutex<Option<(Instant, Arc<Definitions>)>>,
}

impl<S: DefinitionsStore> CachedDefinitions<S> {
    pub fn new(store: S) -> Self {
        Self { store, cached: Mutex::new(None) }
    }

    pub async fn get(&self) -> Result<Arc<Definitions>, DefinitionsError> {
        if let Some((read_at, definitions)) = &*self.cached.lock().unwrap_or_else(PoisonError::into_inner)
            && read_at.elapsed() < REFRESH
        {
            return Ok(Arc::clone(definitions));
        }
        let published = self.store.current().await?.ok_or(DefinitionsError::NonePublished)?;
        let origin = format!("definitions revision {}", published.revision);
        let definitions = Definitions::parse(&origin, &published.text)
            .map_err(|errors| DefinitionsError::Invalid { revision: published.revision, errors })?;
        let definitions = Arc::new(definitions);
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), Arc::clone(&definitions)));
        Ok(definitions)
    }
}
