//! `sluice show`: the published definitions and their revision.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sluice::contract::ports::DefinitionsStore;

use crate::stack::{Stack, Target};

/// Print the published definitions and their revision
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice show\n  sluice show > pipelines.toml")]
pub struct Show {}

impl Show {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let stack = Stack::find(target).await?;
        let current = stack.store().current().await.map_err(|e| stack.store_error(e));
        let Some(current) = current.context("reading the published definitions")? else {
            bail!("no definitions are published yet: run `sluice publish FILE`");
        };
        anstream::println!("# revision {}, published {}", current.revision, current.published_at.to_rfc3339());
        anstream::print!("{}", current.text);
        Ok(ExitCode::SUCCESS)
    }
}
