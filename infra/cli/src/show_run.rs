//! `sluice show-run RUN [--wait]`: one run's timeline; with `--wait`, followed until it ends.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use sluice::contract::ports::PipelineStore;
use sluice::pipeline::{Execution, ExecutionId, Status};
use sluice::present::timeline::{lines, run_json, timeline, waits_for};

use crate::stack::{Stack, Target};
use crate::term::{Progress, paint};

/// How often `--wait` looks at the run.
const POLL: Duration = Duration::from_secs(2);

/// One run's timeline; --wait follows it until it ends
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes with --wait: 0 the run succeeded, 1 it ended otherwise.\n\nExamples:\n  \
                        sluice show-run web-72d3162e-cc78-11e3-81ab-4c9367dc0958\n  \
                        sluice show-run web-72d3162e-cc78-11e3-81ab-4c9367dc0958 --wait")]
pub struct ShowRun {
    /// The run's id (`sluice history PIPELINE` lists them)
    run: String,
    /// Follow the run until it ends, then exit 0 if it succeeded, 1 if not
    #[arg(long)]
    wait: bool,
}

impl ShowRun {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let stack = Stack::find(target).await?;
        let run = read_run(&stack, &ExecutionId(self.run)).await?;
        if target.json && !self.wait {
            println!("{}", serde_json::to_string_pretty(&run_with_timeline(&run))?);
            return Ok(ExitCode::SUCCESS);
        }
        if !target.json {
            let source = &run.source;
            anstream::println!(
                "{} (pipeline {}, run #{}): {} at {} pushed by {}, {}",
                run.id,
                run.pipeline,
                run.seq,
                source.repository,
                source.commit,
                source.pusher,
                paint(run.status, &run.status.to_string())
            );
        }
        follow(target.json, self.wait, &stack, run).await
    }
}

/// Prints the run's timeline, then (with `wait`) each new step until the run ends, a spinner on stderr saying what
/// it waits for. Succeeded: exit 0; ended otherwise: 1. Without `wait`, 0.
pub async fn follow(json: bool, wait: bool, stack: &Stack, mut run: Execution) -> Result<ExitCode> {
    // Drawn once the run's timeline so far is printed, for as long as it waits.
    let mut progress: Option<Progress> = None;
    let mut shown = 0;
    loop {
        let printed = lines(&run);
        if !json {
            for line in printed.iter().skip(shown) {
                match &progress {
                    Some(progress) => progress.println(&format!("  {line}")),
                    None => anstream::println!("  {line}"),
                }
            }
        }
        shown = printed.len();
        if !wait {
            return Ok(ExitCode::SUCCESS);
        }
        if run.status.is_finished() {
            // Cleared first: the timeline above and the ending below stay as they were.
            if let Some(progress) = progress.take() {
                progress.clear();
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&run_with_timeline(&run))?);
            } else {
                let reason = run.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                anstream::println!("{} {}{reason}", run.id, paint(run.status, &run.status.to_string()));
            }
            return Ok(if run.status == Status::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        let waiting = format!("{} {}, waiting for {}", run.id, run.status, waits_for(&run, chrono::Utc::now()));
        match &progress {
            Some(progress) => progress.say(waiting),
            None => progress = Some(Progress::start(waiting)),
        }
        tokio::time::sleep(POLL).await;
        run = read_run(stack, &run.id).await?;
    }
}

pub fn run_with_timeline(run: &Execution) -> serde_json::Value {
    let mut value = run_json(run);
    value["timeline"] = timeline(run)
        .iter()
        .map(|moment| json!({ "at": moment.at.to_rfc3339(), "stage": moment.stage, "what": moment.what }))
        .collect();
    value
}

pub async fn read_run(stack: &Stack, id: &ExecutionId) -> Result<Execution> {
    let run = stack.store().whole(id).await.map_err(|e| stack.store_error(e));
    let run = run.with_context(|| format!("reading run {id}"))?;
    run.with_context(|| format!("there is no run {id}: `sluice history PIPELINE` lists them"))
}
