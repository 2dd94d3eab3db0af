//! `sluice freeze` and `sluice unfreeze`: stop the line of some pipelines (or all) during an incident, and let it go
//! again, as the caller's AWS identity.

use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sluice::usecases::{FreezeDone, FreezeOrder, order_override, set_freeze};

use crate::stack::{Stack, Target};

/// Stop every deployment of these pipelines: the stop-the-line button
///
/// While frozen, no run enters a deploy stage (runs wait at its boundary, in the order they came), and no ECS-native
/// deployment waiting at a pause is continued, even if approved (the decision is recorded and carried out once the
/// freeze lifts, if the pause has not timed out). Builds, approval and test stages go on; deployments under way
/// finish; rollbacks are never held. The status page, `sluice status`, approval emails and GitHub show the freeze.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice freeze web api --reason \"incident 4312\"\n  \
                        sluice freeze --all --reason \"holiday freeze\" --until 2027-01-04T08:00:00Z\n  \
                        sluice freeze web --reason \"load test\" --until 2h")]
pub struct Freeze {
    /// The pipelines to freeze
    #[arg(value_name = "PIPELINE", required_unless_present = "all")]
    pipelines: Vec<String>,
    /// Every pipeline in the published definitions
    #[arg(long, conflicts_with = "pipelines")]
    all: bool,
    /// Why: shown wherever the freeze is
    #[arg(long, value_parser = reason)]
    reason: String,
    /// When it lifts by itself: a time (RFC 3339, e.g. 2027-01-04T08:00:00Z) or a span from now (90m, 2h, 3d)
    #[arg(long, value_name = "TIME", value_parser = until)]
    until: Option<Until>,
}

/// Let frozen pipelines deploy again
///
/// Runs waiting at a deploy stage go on, the oldest first, and approved pauses are continued.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice unfreeze web api\n  sluice unfreeze --all")]
pub struct Unfreeze {
    /// The pipelines to unfreeze
    #[arg(value_name = "PIPELINE", required_unless_present = "all")]
    pipelines: Vec<String>,
    /// Every pipeline in the published definitions
    #[arg(long, conflicts_with = "pipelines")]
    all: bool,
}

/// Let one run into a deploy stage through the freeze or its entry alarms
///
/// The run enters the stage as soon as no other run holds it (a pause of its deployment there, held by the freeze,
/// is continued, and the stage's entry_alarms do not keep it out); the pipeline stays frozen for every other run. Who and why are recorded and shown in the
/// run's timeline (`sluice show-run`, the status page). Given before the run reaches the stage, it lets the run in
/// when it does.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice override web-72d3162e-cc78-11e3-81ab-4c9367dc0958 --stage production \
                        --reason \"the fix for incident 4312\"")]
pub struct Override {
    /// The run
    run: String,
    /// The deploy stage it may enter (`deploy` for a pipeline without stages)
    #[arg(long, value_name = "STAGE", value_parser = stage)]
    stage: sluice::pipeline::Stage,
    /// Why: shown wherever the run is (at most 160 bytes)
    #[arg(long, value_parser = override_reason)]
    reason: String,
}

/// A stage's name, as `--stage` takes it.
fn stage(name: &str) -> Result<sluice::pipeline::Stage, String> {
    sluice::pipeline::Stage::new(name)
        .ok_or_else(|| format!("{name:?} is not a stage name (lower-case letters, digits, '-' and '_')"))
}

fn override_reason(text: &str) -> Result<String, String> {
    let reason = reason(text)?;
    match reason.len() <= sluice::pipeline::MAX_OVERRIDE {
        true => Ok(reason),
        false => Err(format!("say it in at most {} bytes", sluice::pipeline::MAX_OVERRIDE)),
    }
}

impl Override {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let stack = Stack::find(target).await?;
        let bus = stack.bus("what the override sets going is announced on the stack's bus")?;
        let by = stack.caller().await?;
        let runner = sluice::adapters::stage_effects(&stack.config, &bus);
        let now = Utc::now();
        let done = order_override(&stack.store(), &runner, (&self.run, self.stage), &self.reason, (&by, now))
            .await
            .map_err(|e| stack.store_error(e))
            .with_context(|| format!("overriding for {}", self.run))?;
        if target.json {
            println!(
                "{}",
                json!({ "run": done.execution_id, "pipeline": done.pipeline, "stage": self.stage,
                        "status": done.status.to_string(), "changed": done.changed, "by": by })
            );
        } else {
            let already = if done.changed { "" } else { " (already given)" };
            anstream::println!(
                "{}: let into {} by {by}{already}: {}; it is {}",
                done.execution_id,
                self.stage,
                self.reason,
                done.status
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// When a freeze lifts: a time, or a span from the moment the command runs.
#[derive(Debug, Clone, Copy)]
enum Until {
    At(DateTime<Utc>),
    In(TimeDelta),
}

fn reason(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("say why the line stops: it is shown wherever the freeze is".to_owned()),
        reason => Ok(reason.to_owned()),
    }
}

/// `--until`: RFC 3339, or a number of minutes, hours or days (`90m`, `2h`, `3d`).
fn until(text: &str) -> Result<Until, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Until::At(at.with_timezone(&Utc)));
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let span = number.parse::<i64>().ok().filter(|n| *n > 0).and_then(|n| match unit {
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        _ => None,
    });
    span.map(Until::In).ok_or_else(|| {
        format!("{text:?} is neither a time (RFC 3339, e.g. 2027-01-04T08:00:00Z) nor a span from now (90m, 2h, 3d)")
    })
}

impl Freeze {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let now = Utc::now();
        let until = self.until.map(|until| match until {
            Until::At(at) => at,
            Until::In(span) => now.checked_add_signed(span).unwrap_or(DateTime::<Utc>::MAX_UTC),
        });
        let order = FreezeOrder::Freeze { reason: &self.reason, until };
        let done = carry_out(target, (&self.pipelines, self.all), order, now).await?;
        let lifts = until.map_or_else(|| "until unfrozen".to_owned(), |at| format!("until {}", at.format("%F %R UTC")));
        for pipeline in &done {
            let mut line = format!("{}: frozen {lifts}: {}", pipeline.pipeline, self.reason);
            if !pipeline.deploying.is_empty() {
                let runs = runs(&pipeline.deploying);
                line += &format!("\n  deploying, goes on (its pauses are held): {runs}");
            }
            if !pipeline.waiting.is_empty() {
                line += &format!("\n  waiting: {}", runs(&pipeline.waiting));
            }
            say(target, pipeline, &line);
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl Unfreeze {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let done = carry_out(target, (&self.pipelines, self.all), FreezeOrder::Unfreeze, Utc::now()).await?;
        for pipeline in &done {
            let line = match (pipeline.changed, pipeline.deploying.as_slice()) {
                (false, _) => format!("{}: was not frozen", pipeline.pipeline),
                (true, []) => format!("{}: unfrozen", pipeline.pipeline),
                (true, deploying) => format!("{}: unfrozen; deploying: {}", pipeline.pipeline, runs(deploying)),
            };
            say(target, pipeline, &line);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The order carried out on the stack, as the caller.
async fn carry_out(
    target: &Target,
    pipelines: (&[String], bool),
    order: FreezeOrder<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<FreezeDone>> {
    let stack = Stack::find(target).await?;
    let bus = stack.bus("what the freeze's end sets going is announced on the stack's bus")?;
    let by = stack.caller().await?;
    let runner = sluice::adapters::stage_effects(&stack.config, &bus);
    let what = if matches!(order, FreezeOrder::Unfreeze) { "unfreezing" } else { "freezing" };
    set_freeze(&stack.store(), &runner, pipelines, order, (&by, now))
        .await
        .map_err(|e| stack.store_error(e))
        .with_context(|| what.to_owned())
}

/// `run (stage)`, comma-separated.
fn runs(runs: &[(sluice::pipeline::ExecutionId, sluice::pipeline::Stage)]) -> String {
    let runs = runs.iter().map(|(run, stage)| format!("{run} ({stage})"));
    runs.collect::<Vec<_>>().join(", ")
}

fn say(target: &Target, pipeline: &FreezeDone, line: &str) {
    if target.json {
        let pairs = |runs: &[(sluice::pipeline::ExecutionId, sluice::pipeline::Stage)]| {
            runs.iter().map(|(run, stage)| json!({ "run": run, "stage": stage })).collect::<Vec<_>>()
        };
        println!(
            "{}",
            json!({ "pipeline": pipeline.pipeline, "changed": pipeline.changed,
                    "deploying": pairs(&pipeline.deploying), "waiting": pairs(&pipeline.waiting) })
        );
    } else {
        anstream::println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_a_time_or_a_span_from_now_and_refuses_anything_else() {
        assert!(
            matches!(until("2027-01-04T08:00:00Z"), Ok(Until::At(at)) if at.to_rfc3339() == "2027-01-04T08:00:00+00:00")
        );
        assert!(matches!(until("90m"), Ok(Until::In(span)) if span == TimeDelta::minutes(90)));
        assert!(matches!(until("2h"), Ok(Until::In(span)) if span == TimeDelta::hours(2)));
        assert!(matches!(until("3d"), Ok(Until::In(span)) if span == TimeDelta::days(3)));
        for wrong in ["", "2", "0h", "2w", "h", "-1h", "tomorrow", "2027-01-04"] {
            assert!(until(wrong).is_err(), "{wrong:?} was taken");
        }
        assert!(reason("  ").is_err());
    }
}
