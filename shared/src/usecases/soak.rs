//! A soak watched by alarms: CloudWatch's "CloudWatch Alarm State Change" events
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html>) into ALARM end
//! the soaks the alarm watches, rolling their services back; and a soak's end (the reconciler's `Soak Ended`) reads
//! the alarms once more (DescribeAlarms), so that a state change whose event was lost still counts.

use chrono::{DateTime, Utc};
use tracing::{info, instrument, warn};

use crate::contract::events::SoakEnded;
use crate::contract::ports::{AlarmError, AlarmStates, DefinitionsStore, PipelineStore};
use crate::definitions::Definitions;
use crate::pipeline::{Event, Execution, IgnoreReason, Stage};
use crate::runtime::telemetry::Chain;
use crate::usecases::{EffectRunner, HandleError, Handled, Input, handle};

/// What one "CloudWatch Alarm State Change" event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmChange {
    /// `detail.alarmName`.
    pub alarm: String,
    /// `detail.state.value`: OK, ALARM or INSUFFICIENT_DATA.
    pub state: String,
    /// `detail.state.reason`.
    pub reason: Option<String>,
    /// `detail.state.timestamp`: when the alarm changed state (a change from before a soak began is no verdict on
    /// it, however late its event arrives).
    pub at: Option<DateTime<Utc>>,
}

/// CloudWatch's timestamps in its events: `2019-10-02T17:04:40.989+0000` (RFC 3339 read too).
pub fn alarm_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// A soak's alarms could not be acted on now; delivering the event again can succeed.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error(transparent)]
    Handle(#[from] HandleError),
    #[error("the soak's alarms could not be read")]
    Alarms(#[source] AlarmError),
}

impl SoakError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SoakError::Handle(error) => error.is_retryable(),
            // Refused (a policy narrowed since the deployment started, when they were read): the event is tried
            // again and then kept in the dead-letter queue, whose alarm tells the operators; the run holds the stage
            // meanwhile, unverified releases going no further.
            SoakError::Alarms(_) => true,
        }
    }
}

/// The deploy stage a run soaks at, when alarms watch it and none has fired: the stage and its alarms.
fn watched(run: &Execution) -> Option<(Stage, &[String])> {
    run.soaking()?;
    run.watched_soak()
}

/// An alarm changed state: into ALARM, it ends each soak it watches (the stage fails and rolls back). Returns how
/// many runs it moved.
#[instrument(skip_all, fields(alarm = %change.alarm, state = %change.state))]
pub async fn record_alarm<S, R>(
    store: &S,
    runner: &R,
    change: &AlarmChange,
    now: DateTime<Utc>,
) -> Result<usize, SoakError>
where
    S: PipelineStore + DefinitionsStore,
    R: EffectRunner,
{
    if change.state != "ALARM" {
        info!("not a move into ALARM: nothing to do");
        return Ok(0);
    }
    let Some(published) = store.current().await.map_err(HandleError::from)? else { return Ok(0) };
    let Ok(definitions) = Definitions::parse("published definitions", &published.text) else { return Ok(0) };
    let reason = change.reason.clone().unwrap_or_else(|| "no reason given".to_owned());
    let mut moved = 0;
    let watching = definitions.iter().filter(|p| p.deploy_stages().any(|(_, d)| d.alarms().contains(&change.alarm)));
    for pipeline in watching {
        let Some(stored) = store.load(&pipeline.name).await.map_err(HandleError::from)? else { continue };
        for run in stored.value.active() {
            let Some((stage, _)) = watched(run).filter(|(_, alarms)| alarms.contains(&change.alarm)) else { continue };
            let soaked_from = run.deploy().and_then(|deploy| deploy.finished_at);
            if let (Some(changed), Some(from)) = (change.at, soaked_from)
                && changed < from
            {
                info!(execution = %run.id, %changed, "the alarm changed state before the soak began: no verdict on it");
                continue;
            }
            let event = Event::AlarmRaised {
                execution_id: run.id.clone(),
                stage,
                alarm: change.alarm.clone(),
                reason: reason.clone(),
            };
            let input = Input { pipeline: &pipeline.name, mode: pipeline.mode, event: &event, receipt: None, now };
            if handle(store, runner, input).await? == Handled::Applied {
                moved += 1;
            }
        }
    }
    info!(moved, "alarm in ALARM recorded on the soaks it watches");
    Ok(moved)
}

/// A soak watched by alarms is over: the alarms are read once more. One in ALARM now that was not as the deployment
/// started (or any, with `strict_alarms`) fails the stage as its state change would have; else the run takes its
/// next stage.
#[instrument(skip_all, fields(execution = %ended.execution_id))]
pub async fn end_soak<S, R, C>(
    store: &S,
    runner: &R,
    alarms: &C,
    ended: &SoakEnded,
    now: DateTime<Utc>,
) -> Result<Handled, SoakError>
where
    S: PipelineStore + DefinitionsStore,
    R: EffectRunner,
    C: AlarmStates,
{
    let Some(stored) = store.load(&ended.pipeline).await.map_err(HandleError::from)? else {
        return Ok(Handled::Ignored(IgnoreReason::AlreadyPastStage));
    };
    let mode = stored.value.mode;
    let Some(run) = stored.value.execution(&ended.execution_id) else {
        return Ok(Handled::Ignored(IgnoreReason::AlreadyPastStage));
    };
    let Some((stage, names)) = watched(run).filter(|_| run.soaking().is_some_and(|until| until <= now)) else {
        info!("the run does not soak under alarms past its soak's end (any more): nothing to read");
        return Ok(Handled::Ignored(IgnoreReason::AlreadyPastStage));
    };
    let readings = alarms.states(names).await.map_err(SoakError::Alarms)?;
    let firing = readings.iter().find(|r| r.in_alarm && run.blocks_soak(&r.name));
    let event = match firing {
        Some(reading) => {
            let said = reading.reason.as_deref().unwrap_or("no reason given");
            warn!(alarm = %reading.name, "an alarm is in ALARM at the soak's end");
            Event::AlarmRaised {
                execution_id: run.id.clone(),
                stage,
                alarm: reading.name.clone(),
                reason: format!("in ALARM at the soak's end: {said}"),
            }
        }
        None => Event::SoakEnded { execution_id: run.id.clone() },
    };
    let input = Input { pipeline: &run.pipeline, mode, event: &event, receipt: None, now };
    match handle(store, runner, input).await {
        Ok(handled) => Ok(handled),
        Err(error) => {
            warn!(error = %Chain(&error), "the soak's end not recorded");
            Err(error.into())
        }
    }
}

#[cfg(test)]
mod tests;
