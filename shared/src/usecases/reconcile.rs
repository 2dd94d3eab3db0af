//! What no event will say: a scheduled look at every pipeline. Builds whose state change never arrived are asked
//! about (CodeBuild's BatchGetBuilds) and moved on as their event would have; approvals past their deadline time
//! out; effects left pending (a build CodeBuild could not start then) are carried out, and the owners of those it
//! does not carry out itself (an approval request SNS refused for a while) are woken by an `Effects Due` doorbell.

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{instrument, warn};

use crate::definitions::Definitions;
use crate::events::{EffectsDue, SluiceEvent};
use crate::pipeline::{BuildFailure, Effect, Event, PendingEffect, Stage, Status};
use crate::ports::{ArtifactStore, BuildStarter, PipelineStore};
use crate::telemetry::Chain;
use crate::usecases::{
    BuildEventOutcome, BuildStateChange, EffectRunner, Handled, Input, flush, handle, record_build_event,
};

/// A build that has said nothing for this long is asked about.
pub const QUIET_FOR: TimeDelta = TimeDelta::minutes(10);

/// What a look found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Builds asked about.
    pub builds_checked: usize,
    /// Runs moved on: builds that had finished, approvals that had expired.
    pub moved: usize,
    /// Executions whose effects are due with another function, whose owner was woken (`Effects Due`).
    pub doorbells: usize,
    /// Pipelines or builds that could not be looked at; the next look tries again.
    pub errors: usize,
}

/// Looks at every pipeline of `definitions` once.
#[instrument(skip_all)]
pub async fn reconcile<S, R, A, B>(
    store: &S,
    runner: &R,
    artifacts: &A,
    builds: &B,
    definitions: &Definitions,
    now: DateTime<Utc>,
    quiet_for: TimeDelta,
) -> Reconciled
where
    S: PipelineStore,
    R: EffectRunner,
    A: ArtifactStore,
    B: BuildStarter,
{
    let mut done = Reconciled::default();
    for pipeline in definitions.iter() {
        if let Err(error) = flush(store, runner, &pipeline.name, now).await {
            warn!(error = %Chain(&error), pipeline = %pipeline.name, "pending effects still pending");
            done.errors += 1;
        }
        let state = match store.load(&pipeline.name).await {
            Ok(Some(stored)) => stored.value,
            Ok(None) => continue,
            Err(error) => {
                warn!(error = %Chain(&error), pipeline = %pipeline.name, "pipeline not looked at");
                done.errors += 1;
                continue;
            }
        };
        let doorbells: Vec<PendingEffect> = state
            .due_elsewhere(runner.kinds(), now)
            .into_iter()
            .map(|(execution_id, kinds)| {
                let id = format!("doorbell-{execution_id}");
                let due = EffectsDue { pipeline: pipeline.name.clone(), execution_id, kinds };
                PendingEffect::new(id, Effect::Publish(SluiceEvent::EffectsDue(due)))
            })
            .collect();
        if !doorbells.is_empty() {
            for (rung, result) in doorbells.iter().zip(runner.run_all(&doorbells).await) {
                match result {
                    Ok(_) => done.doorbells += 1,
                    Err(error) => {
                        warn!(error = %Chain(&error), effect = %rung.effect.describe(), "owner not woken");
                        done.errors += 1;
                    }
                }
            }
        }
        for execution in state.active() {
            let event = match execution.status {
                Status::Running(Stage::Approval)
                    if execution.approval.as_ref().is_some_and(|approval| approval.expires_at <= now) =>
                {
                    Event::ApprovalExpired { execution_id: execution.id.clone() }
                }
                Status::Running(Stage::Build) => {
                    let Some(build) = &execution.build else { continue };
                    let Some(build_id) = &build.build_id else { continue };
                    if now - build.started_at < quiet_for {
                        continue;
                    }
                    done.builds_checked += 1;
                    let report = match builds.build_report(build_id).await {
                        Ok(report) => report,
                        Err(error) => {
                            warn!(error = %Chain(&error), build = %build_id, "build not looked up");
                            done.errors += 1;
                            continue;
                        }
                    };
                    match report {
                        Some(report) if report.status == "IN_PROGRESS" => continue,
                        Some(report) => {
                            let change = BuildStateChange {
                                event_id: format!("reconciled:{build_id}:{}", report.status),
                                build_id: build_id.clone(),
                                status: report.status,
                                current_phase: report.current_phase,
                                failed_phase: report.failed_phase,
                                execution_id: Some(execution.id.0.clone()),
                                pipeline: Some(pipeline.name.clone()),
                                artifact_location: report.artifact_location,
                            };
                            match record_build_event(store, runner, artifacts, &change, now).await {
                                Ok(BuildEventOutcome::Handled(Handled::Applied)) => done.moved += 1,
                                Ok(_) => {}
                                Err(error) => {
                                    warn!(error = %Chain(&error), build = %build_id, "finished build not recorded");
                                    done.errors += 1;
                                }
                            }
                            continue;
                        }
                        None => Event::BuildFailed {
                            execution_id: execution.id.clone(),
                            build_id: build_id.clone(),
                            status: BuildFailure::Failed,
                            phase: None,
                            reason: format!("CodeBuild has no record of build {build_id}"),
                        },
                    }
                }
                _ => continue,
            };
            let input = Input { pipeline: &pipeline.name, mode: pipeline.mode, event: &event, receipt: None, now };
            match handle(store, runner, input).await {
                Ok(Handled::Applied) => done.moved += 1,
                Ok(_) => {}
                Err(error) => {
                    warn!(error = %Chain(&error), execution = %execution.id, "run not moved on");
                    done.errors += 1;
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests;
