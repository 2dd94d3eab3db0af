//! `sluice status [PIPELINE]`: each pipeline's runs in progress, what each waits for, and its parked effects.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use sluice::contract::ports::{DefinitionsStore, PipelineStore};
use sluice::definitions::{Definitions, Pipeline};
use sluice::pipeline::{Execution, Status as RunStatus, short_commit};
use sluice::present::timeline::{run_json, waits_for_in};

use crate::stack::{Stack, Target};
use crate::term::{bold, paint};

/// Runs in progress and what each waits for; parked effects
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice status\n  sluice status web\n  sluice --json status | jq '.pipelines[].runs'"
)]
pub struct Status {
    /// Only this pipeline
    pipeline: Option<String>,
}

impl Status {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let only = self.pipeline.as_deref();
        let stack = Stack::find(target).await?;
        let store = stack.store();
        let published =
            store.current().await.map_err(|e| stack.store_error(e)).context("reading the published definitions")?;
        let published = published.context("no definitions are published yet: run `sluice publish FILE`")?;
        let definitions = Definitions::parse("the published definitions", &published.text)
            .map_err(|errors| anyhow!("the published definitions do not load: {errors}"))?;
        let pipelines: Vec<&Pipeline> = definitions.iter().filter(|p| only.is_none_or(|name| p.name == name)).collect();
        if let Some(name) = only.filter(|_| pipelines.is_empty()) {
            bail!("there is no pipeline {name} in the published definitions (revision {})", published.revision);
        }
        let now = chrono::Utc::now();
        let mut report = Vec::new();
        for pipeline in pipelines {
            let state = store.load(&pipeline.name).await.map_err(|e| stack.store_error(e));
            let state =
                state.with_context(|| format!("reading pipeline {}", pipeline.name))?.map(|stored| stored.value);
            let runs: Vec<&Execution> =
                state.iter().flat_map(|s| s.executions.iter()).filter(|run| !run.status.is_finished()).collect();
            let parked = state.as_ref().map(|s| s.parked.as_slice()).unwrap_or_default();
            let freeze = state.as_ref().and_then(|s| s.frozen());
            if target.json {
                report.push(json!({
                    "pipeline": pipeline.name,
                    "strategy": strategies(pipeline),
                    "runs": runs.iter().map(|run| {
                        let mut value = run_json(run);
                        value["waits_for"] = json!(state.as_ref().map(|state| waits_for_in(run, state, now)));
                        value
                    }).collect::<Vec<_>>(),
                    "freeze": freeze.map(|f| json!({
                        "by": f.by, "reason": f.reason, "since": f.since.to_rfc3339(),
                        "until": f.until.map(|until| until.to_rfc3339()),
                    })),
                    "parked": parked.iter().map(|p| json!({
                        "id": p.id, "effect": p.effect.describe(), "error": p.error, "parked": p.parked_at.to_rfc3339(),
                    })).collect::<Vec<_>>(),
                }));
                continue;
            }
            anstream::println!("{}  ({}, {})", bold(&pipeline.name), strategies(pipeline), pipeline.source.repository);
            if let Some(freeze) = freeze {
                let line = sluice::present::text::freeze(freeze);
                anstream::println!("  {} {line}", paint(RunStatus::Failed, "deployments stopped:"));
            }
            if runs.is_empty() {
                anstream::println!("  no run in progress");
            }
            for run in runs {
                let age = sluice::present::text::span(now - run.created_at);
                let commit = short_commit(&run.source.commit);
                let standing = paint(run.status, &format!("{:<20}", run.status.to_string()));
                anstream::println!(
                    "  #{:<4} {commit}  {:<12} {standing} {age:>8}  {}",
                    run.seq,
                    run.source.pusher,
                    run.id
                );
                if let Some(state) = &state {
                    anstream::println!("        waits for {}", waits_for_in(run, state, now));
                }
            }
            for parked in parked {
                anstream::println!(
                    "  {} {}  {}",
                    paint(RunStatus::Failed, "parked"),
                    parked.id,
                    parked.effect.describe()
                );
                anstream::println!("        {}", parked.error);
            }
        }
        if target.json {
            println!("{}", serde_json::to_string_pretty(&json!({ "pipelines": report }))?);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// How the pipeline deploys, stage by stage: `rolling`, or `rolling → ecs_canary`.
fn strategies(pipeline: &sluice::definitions::Pipeline) -> String {
    let strategies: Vec<&str> = pipeline.deploy_stages().map(|(_, deploy)| deploy.target.strategy()).collect();
    strategies.join(" → ")
}
