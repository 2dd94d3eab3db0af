//! `sluice rollback PIPELINE [--to RUN]`: stop the deployment in progress and roll it back, as the caller's AWS
//! identity and with its credentials; with none in progress (or with `--to`), deploy an earlier build as a new run.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sluice::adapters::{CodeDeployDeployments, EcsDeployer};
use sluice::pipeline::Stage;
use sluice::usecases::{DeploymentStops, Order, RollbackError, RollbackOrdered, Stop, order_rollback};

use crate::order::order;
use crate::stack::{Stack, Target};

/// Stop the deployment in progress and roll it back; or deploy an earlier build
///
/// With no deployment in progress (or with --to), deploys the build of the succeeded run before the last one (or
/// RUN's), as a new run. With --stage, only that deploy stage of a pipeline in stages: its deployment in progress, or
/// the build of the run before the last that got past it, deployed there alone.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice rollback web\n  \
                        sluice rollback web --to web-0b989ba4-242f-11e5-81e1-c7b6966d2516\n  \
                        sluice rollback web --stage production")]
pub struct Rollback {
    /// The pipeline
    pipeline: String,
    /// Deploy this earlier run's build instead
    #[arg(long, value_name = "RUN")]
    to: Option<String>,
    /// Only this deploy stage (a pipeline in stages)
    #[arg(long, value_name = "STAGE", value_parser = stage)]
    stage: Option<Stage>,
}

/// A stage's name, as `--stage` takes it.
fn stage(name: &str) -> Result<Stage, String> {
    Stage::new(name).ok_or_else(|| format!("{name:?} is not a stage name (lower-case letters, digits, '-' and '_')"))
}

impl Rollback {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let (pipeline, stage) = (self.pipeline.as_str(), self.stage);
        if let Some(to) = self.to.as_deref() {
            return order(target, Order::RollbackTo { pipeline, to: Some(to), stage }).await;
        }
        let stack = Stack::find(target).await?;
        let by = stack.caller().await?;
        let stops = DeploymentStops {
            blue_green: CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(&stack.config)),
            ecs: EcsDeployer::new(aws_sdk_ecs::Client::new(&stack.config)),
        };
        let ordered = match order_rollback(&stack.store(), &stops, (pipeline, stage), &by, chrono::Utc::now()).await {
            // Nothing in progress (there): roll back to the succeeded run before the last one (that got past it).
            Err(RollbackError::NothingDeploying(_)) => {
                return order(target, Order::RollbackTo { pipeline, to: None, stage }).await;
            }
            other => other.map_err(|e| stack.store_error(e)).with_context(|| format!("rolling back {pipeline}"))?,
        };
        let RollbackOrdered { execution_id, commit, deployment, stop } = ordered;
        let run = format!("{execution_id} (commit {})", commit.chars().take(12).collect::<String>());
        match stop {
            Stop::Made => anstream::println!(
                "{run}: deployment {deployment} stopped and rolling back; the run ends rolled_back, naming {by}, once \
                 it has"
            ),
            Stop::AlreadyOrdered => {
                anstream::println!("{run}: its rollback was already ordered; the run ends once it has rolled back")
            }
            Stop::Pending(error) => anstream::println!(
                "{run}: rollback ordered, but deployment {deployment} could not be stopped yet ({error}); the deployer \
                 tries again: `sluice effects {pipeline}` shows it"
            ),
            Stop::Parked { id, error } => bail!(
                "{run}: deployment {deployment} could not be stopped: {error}\nonce that is mended: sluice \
                 retry-effect {pipeline} {id}"
            ),
        }
        Ok(ExitCode::SUCCESS)
    }
}
