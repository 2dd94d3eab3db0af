//! `sluice history PIPELINE`: its runs, newest first.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use sluice::contract::ports::{DefinitionsStore, PipelineStore};
use sluice::definitions::Definitions;
use sluice::present::timeline::{history_lines, run_json};

use crate::stack::{Stack, Target};
use crate::term::paint;

/// A pipeline's runs, newest first
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice history web\n  sluice history web --limit 3\n  sluice --json history web")]
pub struct History {
    /// The pipeline, as the definitions name it
    pipeline: String,
    /// How many runs, newest first (1 to 100)
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = limit)]
    limit: usize,
}

/// `--limit`: a number of runs from 1 to 100.
fn limit(given: &str) -> Result<usize, String> {
    given
        .parse()
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| "--limit takes a number of runs from 1 to 100".into())
}

impl History {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let pipeline = &self.pipeline;
        let stack = Stack::find(target).await?;
        let store = stack.store();
        let runs = store.history(pipeline, self.limit).await.map_err(|e| stack.store_error(e));
        let runs = runs.with_context(|| format!("reading {pipeline}'s history"))?;
        if runs.is_empty() {
            // Published but never started is an answer; a name the definitions do not have is a mistake.
            let published = store.current().await.map_err(|e| stack.store_error(e));
            let published = published.context("reading the published definitions")?;
            let known = published.as_ref().and_then(|p| Definitions::parse("the published definitions", &p.text).ok());
            if !known.is_some_and(|definitions| definitions.iter().any(|p| &p.name == pipeline)) {
                bail!("pipeline {pipeline} has no runs: is it published (`sluice show`), and pushed to?");
            }
            if target.json {
                println!("{}", serde_json::to_string_pretty(&json!({ "pipeline": pipeline, "runs": [] }))?);
            } else {
                anstream::println!("{pipeline} has no runs yet: it starts at the next push that its source takes");
            }
            return Ok(ExitCode::SUCCESS);
        }
        if target.json {
            let runs: Vec<_> = runs.iter().map(run_json).collect();
            println!("{}", serde_json::to_string_pretty(&json!({ "pipeline": pipeline, "runs": runs }))?);
            return Ok(ExitCode::SUCCESS);
        }
        for run in &runs {
            let mut lines = history_lines(run).into_iter();
            if let Some(first) = lines.next() {
                let status = run.status.to_string();
                anstream::println!("{}", first.replacen(&status, &paint(run.status, &status), 1));
            }
            lines.for_each(|line| anstream::println!("{line}"));
        }
        Ok(ExitCode::SUCCESS)
    }
}
