//! `sluice effects PIPELINE` and `sluice retry-effect PIPELINE ID`: the pipeline's outbox as an operator reads it,
//! and a parked effect put back in it.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sluice::contract::ports::PipelineStore;
use sluice::pipeline::PipelineState;

use crate::stack::{Stack, Target};

/// How often the reconciler runs (its schedule in `template.yaml`).
const RECONCILER_MINUTES: u32 = 5;

/// A pipeline's pending and parked effects: what waits, what failed and why
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice effects web")]
pub struct Effects {
    /// The pipeline
    pipeline: String,
}

/// Put a parked effect back in its pipeline's outbox, once what made it fail is mended
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice retry-effect web web-1-1")]
pub struct RetryEffect {
    /// The pipeline
    pipeline: String,
    /// The parked effect's id (`sluice effects PIPELINE` lists them)
    id: String,
}

impl Effects {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let pipeline = &self.pipeline;
        let stack = Stack::find(target).await?;
        let state = stack.store().load(pipeline).await.map_err(|e| stack.store_error(e));
        let state = state.with_context(|| format!("reading pipeline {pipeline}"))?;
        let state = state.with_context(|| format!("pipeline {pipeline} has never run: it has no effects"))?;
        anstream::print!("{}", effects(&state.value, &stack.table));
        Ok(ExitCode::SUCCESS)
    }
}

impl RetryEffect {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let (pipeline, id) = (&self.pipeline, &self.id);
        let stack = Stack::find(target).await?;
        let retried = sluice::usecases::retry_parked(&stack.store(), pipeline, id)
            .await
            .map_err(|e| stack.store_error(e))
            .with_context(|| format!("putting {id} back in {pipeline}'s outbox"))?;
        if !retried {
            bail!("{pipeline} has no parked effect {id}: `sluice effects {pipeline}` lists them");
        }
        anstream::println!(
            "{id} is back in {pipeline}'s outbox: it is carried out at the pipeline's next event, or by the reconciler \
             within {RECONCILER_MINUTES} minutes"
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The pipeline's outbox as an operator reads it: what waits, what failed and why, and how to retry what is parked.
fn effects(state: &PipelineState, table: &str) -> String {
    let mut text = String::new();
    if state.pending.is_empty() && state.parked.is_empty() {
        return format!("{}: no pending or parked effects\n", state.pipeline);
    }
    text.push_str(&format!("{}: {} pending, {} parked\n", state.pipeline, state.pending.len(), state.parked.len()));
    for pending in &state.pending {
        text.push_str(&format!("pending  {}  {}\n", pending.id, pending.effect.describe()));
        if pending.attempts > 0 {
            let next = pending.not_before.map(|at| at.to_rfc3339()).unwrap_or_else(|| "now".to_owned());
            text.push_str(&format!("         {} failed attempt(s), next try {next}\n", pending.attempts));
        }
        if let Some(error) = &pending.last_error {
            text.push_str(&format!("         last error: {error}\n"));
        }
    }
    for parked in &state.parked {
        text.push_str(&format!("parked   {}  {}\n", parked.id, parked.effect.describe()));
        text.push_str(&format!(
            "         parked {} after {} attempt(s): {}\n",
            parked.parked_at.to_rfc3339(),
            parked.attempts,
            parked.error
        ));
        text.push_str(&format!(
            "         retry: sluice retry-effect {} {} --table {table}\n",
            state.pipeline, parked.id
        ));
    }
    text
}
