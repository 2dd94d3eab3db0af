//! `sluice retry RUN` and `sluice rerun PIPELINE COMMIT` (and `rollback` to an earlier build): a new run, ordered
//! as the caller's AWS identity; its announcement (and its build, if it has one) goes out at once with the caller's
//! credentials.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use sluice::usecases::{Order, order_run};

use crate::stack::{Stack, Target};

/// A run that did not succeed, again
///
/// Its deployment with the same build; or, if its build failed or it was not approved, from a new build of its
/// commit. Exits 1 when the new run ended at once (a commit behind its ref's head is skipped), saying why.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice retry web-72d3162e-cc78-11e3-81ab-4c9367dc0958")]
pub struct Retry {
    /// The run to retry
    run: String,
}

/// A new run of a commit the pipeline ran, from its build on
///
/// Exits 1 when the new run ended at once (a commit behind its ref's head is skipped), saying why.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice rerun web 9b2c5f0")]
pub struct Rerun {
    /// The pipeline
    pipeline: String,
    /// A commit the pipeline ran (a prefix will do)
    commit: String,
}

impl Retry {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        order(target, Order::Retry { run: &self.run }).await
    }
}

impl Rerun {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        order(target, Order::Rerun { pipeline: &self.pipeline, commit: &self.commit }).await
    }
}

/// The new run ordered, said; exits 1 when it ended at once.
pub async fn order(target: &Target, order: Order<'_>) -> Result<ExitCode> {
    let stack = Stack::find(target).await?;
    let bus = stack.bus("a new run is announced on the stack's bus")?;
    let by = stack.caller().await?;
    let runner = sluice::adapters::stage_effects(&stack.config, &bus);
    let what = match &order {
        Order::RollbackTo { pipeline, .. } => format!("rolling {pipeline} back"),
        Order::Retry { run } => format!("retrying {run}"),
        Order::Rerun { pipeline, commit } => format!("running {pipeline} again at {commit}"),
    };
    let ordered = order_run(&stack.store(), &runner, order, &by, chrono::Utc::now())
        .await
        .map_err(|e| stack.store_error(e))
        .context(what)?;
    let commit: String = ordered.commit.chars().take(12).collect();
    let how = if ordered.redeploys {
        format!("deploys the build of {}", ordered.of)
    } else {
        format!("builds commit {commit} again")
    };
    let ended = ordered.status.is_finished();
    if target.json {
        println!(
            "{}",
            json!({ "run": ordered.execution_id, "pipeline": ordered.pipeline, "of": ordered.of, "commit": ordered.commit,
                    "redeploys": ordered.redeploys, "status": ordered.status.to_string(), "reason": ordered.reason,
                    "by": by })
        );
    } else {
        // A run that ended at once says why; one under way, how to follow it.
        let why = ordered.reason.as_deref().filter(|_| ended).map(|reason| format!(": {reason}")).unwrap_or_default();
        anstream::println!(
            "{}: a run of {} that {how}, ordered by {by}; it is {}{why}",
            ordered.execution_id,
            ordered.pipeline,
            ordered.status
        );
        if !ended {
            anstream::println!("follow it with: sluice show-run {} --wait", ordered.execution_id);
        }
    }
    Ok(if ended { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
