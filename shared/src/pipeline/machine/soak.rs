//! A soak watched by alarms (`soak_alarms`): which of them were in ALARM as the deployment started, and an alarm
//! that went into ALARM during the soak, which fails the stage and rolls the service back to the release it ran
//! before.

use super::{Applied, IgnoreReason, MAX_HOOK_DETAIL, Run};
use crate::pipeline::state::{RaisedAlarm, Stage, bounded};

/// How many alarm names a run keeps as in ALARM before its deployment (as many as may watch a soak).
const MAX_KEPT: usize = crate::definitions::MAX_SOAK_ALARMS;

impl Run {
    /// The deployer read the soak's alarms as the deployment started: those in ALARM then are kept, to be
    /// reported.
    pub(super) fn alarms_before(&mut self, i: usize, in_alarm: Option<&[String]>) {
        let Some(in_alarm) = in_alarm else { return };
        let deploy = self.deploy_mut(i);
        if deploy.in_alarm_before.is_none() {
            let kept = in_alarm.iter().take(MAX_KEPT).map(|name| bounded(name, 255)).collect();
            deploy.in_alarm_before = Some(kept);
        }
    }

    /// Alarm `alarm`, watching the soak of `stage`, is in ALARM: when the run soaks there and the alarm watches it,
    /// the stage fails and the service goes back to what it ran before.
    pub(super) fn alarm_raised(&mut self, i: usize, stage: Stage, alarm: &str, reason: &str) -> Applied {
        let execution = &self.state.executions[i];
        let watched =
            execution.deploying().is_some_and(|(at, deploy)| at == stage && deploy.alarms().iter().any(|a| a == alarm));
        if execution.soaking().is_none() || !watched {
            // Not soaking there (any more, or yet): the alarm is no verdict on this run's release.
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        }
        let now = self.now;
        let deploy = self.deploy_mut(i);
        if deploy.alarm.is_some() {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        let reason = bounded(reason, MAX_HOOK_DETAIL);
        deploy.alarm = Some(RaisedAlarm { name: alarm.to_owned(), reason: reason.clone(), at: now });
        self.roll_back_deployed(i, format!("alarm {alarm} went into ALARM during the soak ({reason})"));
        Ok(None)
    }
}
