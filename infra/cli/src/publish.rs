//! `sluice publish FILE`: check a definitions file, then make it the definitions the stack uses.

use std::process::ExitCode;

use anyhow::{Context, Result};
use sluice::contract::ports::{DefinitionsStore, StoreError};

use crate::check::{load, summary, warn};
use crate::stack::{Stack, Target};

/// Check a definitions file, then make it the definitions the stack uses (a new revision)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice publish pipelines.toml\n  sluice --stack sluice-staging publish pipelines.toml"
)]
pub struct Publish {
    /// The definitions file; - reads standard input
    #[arg(value_name = "FILE")]
    file: String,
}

impl Publish {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let file = &self.file;
        let (text, definitions) = load(file)?;
        warn(&definitions);
        let stack = Stack::find(target).await?;
        let store = stack.store();
        let current =
            store.current().await.map_err(|e| stack.store_error(e)).context("reading the published definitions")?;
        if current.as_ref().is_some_and(|current| current.text == text) {
            let revision = current.map_or(0, |c| c.revision);
            anstream::println!("unchanged: {file} is already revision {revision}");
            return Ok(ExitCode::SUCCESS);
        }
        let replacing = current.as_ref().map(|current| current.revision);
        let revision = match store.publish(&text, replacing, chrono::Utc::now()).await {
            Ok(revision) => revision,
            Err(error @ StoreError::Conflict { .. }) => {
                return Err(anyhow::Error::new(error).context(
                    "publishing: someone published meanwhile; run `sluice show` to see it, then publish again",
                ));
            }
            Err(error) => return Err(stack.store_error(error).context("publishing")),
        };
        anstream::println!("published {file} as revision {revision}: {}", summary(&definitions));
        Ok(ExitCode::SUCCESS)
    }
}
