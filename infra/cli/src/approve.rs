//! `sluice approve RUN` and `sluice reject RUN`: a decision as the caller's AWS identity, announced on the stack's
//! bus at once (the deployer starts, or continues a paused deployment, on that announcement).

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use sluice::adapters::EventBridgePublisher;
use sluice::pipeline::{ApprovalDecision, ExecutionId};
use sluice::usecases::{Announcer, Decided, decide_as};

use crate::show_run::{follow, read_run};
use crate::stack::{Stack, Target};

/// Approve a run as your AWS identity: its approval stage, or its deployment's pause
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice approve web-72d3162e-cc78-11e3-81ab-4c9367dc0958 --comment \"ship it\" --wait"
)]
pub struct Approve {
    #[command(flatten)]
    decision: Decision,
    /// Follow the run until it ends, then exit 0 if it succeeded, 1 if not
    #[arg(long)]
    wait: bool,
}

/// Reject a run as your AWS identity: its approval stage, or its deployment's pause
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice reject web-72d3162e-cc78-11e3-81ab-4c9367dc0958 --comment \"not on a Friday\""
)]
pub struct Reject {
    #[command(flatten)]
    decision: Decision,
    /// Follow the run until it ends (exit 1: a rejected run did not succeed)
    #[arg(long)]
    wait: bool,
}

#[derive(Debug, clap::Args)]
struct Decision {
    /// The run waiting for a decision
    run: String,
    /// Why, recorded with the decision and shown in the run's timeline
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
}

impl Approve {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        decide(target, self.decision, ApprovalDecision::Approved, self.wait).await
    }
}

impl Reject {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        decide(target, self.decision, ApprovalDecision::Rejected, self.wait).await
    }
}

async fn decide(target: &Target, asked: Decision, decision: ApprovalDecision, wait: bool) -> Result<ExitCode> {
    let stack = Stack::find(target).await?;
    let bus = stack.bus("the decision must be announced on the stack's bus")?;
    let by = stack.caller().await?;
    let store = stack.store();
    let runner =
        Announcer { publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&stack.config), bus) };
    let id = ExecutionId(asked.run);
    let decided = decide_as(&store, &runner, &id, decision, &by, asked.comment, chrono::Utc::now())
        .await
        .map_err(|e| stack.store_error(e))
        .with_context(|| {
            format!("{} {id}", if decision == ApprovalDecision::Approved { "approving" } else { "rejecting" })
        })?;
    let what = match &decided {
        Decided::Stage => "its approval stage".to_owned(),
        Decided::Counted { approved, required } => {
            format!("its approval stage: {approved} of the {required} approvals needed, so it waits for more")
        }
        Decided::Pause(stage) => format!("its deployment's {stage} pause"),
        Decided::Already => "nothing new: the same decision was already recorded".to_owned(),
    };
    if target.json && !wait {
        let decided = match decided {
            Decided::Stage => "stage",
            Decided::Counted { .. } => "counted",
            Decided::Pause(_) => "pause",
            Decided::Already => "already",
        };
        println!("{}", json!({ "run": id, "decision": decision.name(), "by": by, "decided": decided }));
        return Ok(ExitCode::SUCCESS);
    }
    if !target.json {
        anstream::println!("{id}: {} by {by} ({what})", decision.name());
    }
    if wait { follow(target.json, wait, &stack, read_run(&stack, &id).await?).await } else { Ok(ExitCode::SUCCESS) }
}
