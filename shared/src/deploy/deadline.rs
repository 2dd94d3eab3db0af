//! When a deploy stage must have ended. ECS reports a rolling update that never settles as failed only when its
//! circuit breaker is on (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html>),
//! and nothing reports a deployment whose events were all lost: every deployment gets a deadline, the time its
//! strategy may wait by itself (bake times, pauses for approval, CodeDeploy's traffic shift, the checks' tries) plus
//! the pipeline's `deploy.timeout`, after which the reconciler ends the run.

use chrono::{DateTime, TimeDelta, Utc};

use crate::definitions::{Check, DeployTarget, TrafficShift};

/// `deploy.timeout` when the pipeline gives none: the time allowed beyond what the strategy itself may wait.
pub const DEFAULT_DEPLOY_TIMEOUT_MINUTES: u32 = 60;

/// How long one invocation of the hooks function may take (its `Timeout` in `template.yaml`).
const HOOK_INVOCATION: TimeDelta = TimeDelta::minutes(5);

/// How long `target`'s strategy may wait by itself before a deployment that goes well ends: its bake times and
/// traffic shifts, its pauses for approval at their timeout, and its checks with every try and interval.
pub fn strategy_waits(target: &DeployTarget) -> TimeDelta {
    let minutes = |m: u32| TimeDelta::minutes(i64::from(m));
    // A linear or canary shift runs the production-shift stages' checks at every step.
    let steps = match target {
        DeployTarget::EcsNative(native) => match native.shift {
            TrafficShift::BlueGreen => 1,
            TrafficShift::Canary { .. } => 2,
            TrafficShift::Linear { step_tenths, .. } => 1000_u32.div_ceil(step_tenths.max(1)),
        },
        _ => 1,
    };
    let every_step =
        |check: &Check| matches!(check.hook.as_str(), "PRE_PRODUCTION_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT");
    let checks = target.checks().iter().fold(TimeDelta::zero(), |sum, check| {
        let times = if every_step(check) { i32::try_from(steps).unwrap_or(i32::MAX) } else { 1 };
        sum + check_time(check) * times
    });
    match target {
        DeployTarget::BlueGreen(blue_green) => {
            // CodeDeploy waits for each lifecycle hook's answer, and shifts traffic as its configuration says.
            let hooks = HOOK_INVOCATION * 5;
            checks + hooks + codedeploy_shift(&blue_green.deployment_config)
        }
        DeployTarget::Rolling(_) => checks + HOOK_INVOCATION,
        DeployTarget::EcsNative(native) => {
            let (steps, shifting) = match native.shift {
                TrafficShift::BlueGreen => (1, 0),
                TrafficShift::Canary { bake_time_minutes, .. } => (2, bake_time_minutes),
                TrafficShift::Linear { step_tenths, step_bake_time_minutes } => {
                    let steps = 1000_u32.div_ceil(step_tenths.max(1));
                    (steps, step_bake_time_minutes.saturating_mul(steps.saturating_sub(1)))
                }
            };
            // A pause before each step, each waiting at most its timeout.
            let pauses = native.approval.as_ref().map_or(0, |approval| approval.timeout_minutes.saturating_mul(steps));
            checks + minutes(native.bake_time_minutes) + minutes(shifting) + minutes(pauses)
        }
    }
}

/// When a deployment that started at `started_at` must have ended: its strategy's own waits, and `timeout_minutes`
/// beyond them ([`DEFAULT_DEPLOY_TIMEOUT_MINUTES`] unless the pipeline says).
pub fn deadline(target: &DeployTarget, timeout_minutes: Option<u32>, started_at: DateTime<Utc>) -> DateTime<Utc> {
    let beyond = TimeDelta::minutes(i64::from(timeout_minutes.unwrap_or(DEFAULT_DEPLOY_TIMEOUT_MINUTES)));
    started_at.checked_add_signed(strategy_waits(target) + beyond).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A check's longest run: every try at its timeout, with its interval between tries.
fn check_time(check: &Check) -> TimeDelta {
    let tries = i64::from(check.retries) + 1;
    let seconds = |s: u64| TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1_000_000));
    seconds(check.timeout_secs) * i32::try_from(tries).unwrap_or(i32::MAX)
        + seconds(check.interval_secs) * i32::try_from(tries - 1).unwrap_or(i32::MAX)
}

/// How long a CodeDeploy ECS deployment configuration shifts traffic, from its name: `...Canary<P>Percent<M>Minutes`
/// waits M minutes, `...Linear<P>PercentEvery<M>Minute(s)` waits M minutes between its steps. Any other
/// configuration (all at once, or a custom one sluice cannot read) counts as none: `deploy.timeout` covers it.
fn codedeploy_shift(config: &str) -> TimeDelta {
    let number = |text: &str| -> Option<u32> {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let name = config.rsplit('.').next().unwrap_or(config);
    let waited = if let Some(rest) = name.split_once("Canary").map(|(_, rest)| rest) {
        rest.split_once("Percent").and_then(|(_, minutes)| number(minutes))
    } else if let Some(rest) = name.split_once("Linear").map(|(_, rest)| rest) {
        rest.split_once("Percent").and_then(|(percent, every)| {
            let steps = 100_u32.div_ceil(number(percent)?.max(1));
            Some(number(every.trim_start_matches("Every"))?.saturating_mul(steps.saturating_sub(1)))
        })
    } else {
        None
    };
    TimeDelta::minutes(i64::from(waited.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::definitions::{EcsNative, PauseAction, PauseApproval};

    fn minutes(m: i64) -> TimeDelta {
        TimeDelta::minutes(m)
    }

    #[test]
    fn codedeploys_canary_and_linear_configurations_wait_as_their_names_say_and_others_count_as_none() {
        assert_eq!(codedeploy_shift("CodeDeployDefault.ECSCanary10Percent5Minutes"), minutes(5));
        assert_eq!(codedeploy_shift("CodeDeployDefault.ECSCanary10Percent15Minutes"), minutes(15));
        assert_eq!(codedeploy_shift("CodeDeployDefault.ECSLinear10PercentEvery1Minutes"), minutes(9));
        assert_eq!(codedeploy_shift("CodeDeployDefault.ECSLinear10PercentEvery3Minutes"), minutes(27));
        assert_eq!(codedeploy_shift("CodeDeployDefault.ECSAllAtOnce"), minutes(0));
        assert_eq!(codedeploy_shift("my-own-config"), minutes(0));
    }

    #[test]
    fn an_ecs_canary_with_an_approval_may_wait_for_its_bake_times_its_pauses_and_its_checks() {
        let mut check = Check::new("POST_TEST_TRAFFIC_SHIFT", "http://web/health");
        (check.timeout_secs, check.retries, check.interval_secs) = (10, 2, 5);
        let target = DeployTarget::EcsNative(EcsNative {
            bake_time_minutes: 15,
            checks: vec![check],
            approval: Some(PauseApproval {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                topic_arn: "arn:aws:sns:eu-west-1:123456789012:approvers".into(),
                timeout_minutes: 60,
                on_timeout: PauseAction::Rollback,
            }),
            ..crate::contract::testing::ecs_native(TrafficShift::Canary { tenths: 100, bake_time_minutes: 10 })
        });
        // 30 s of tries and 10 s between them; 15 minutes' bake; the canary's 10; two pauses of an hour
        assert_eq!(strategy_waits(&target), TimeDelta::seconds(40) + minutes(15 + 10 + 120));
        let start = Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).single().expect("a date");
        assert_eq!(deadline(&target, None, start), start + strategy_waits(&target) + minutes(60));
        assert_eq!(deadline(&target, Some(5), start), start + strategy_waits(&target) + minutes(5));
    }

    #[test]
    fn a_linear_shift_waits_between_its_steps_and_a_rolling_update_only_for_its_checks() {
        let linear = DeployTarget::EcsNative(crate::contract::testing::ecs_native(TrafficShift::Linear {
            step_tenths: 250,
            step_bake_time_minutes: 5,
        }));
        assert_eq!(strategy_waits(&linear), minutes(15), "four steps, three waits between them");
        let rolling = DeployTarget::Rolling(crate::contract::testing::rolling(Vec::new()));
        assert_eq!(strategy_waits(&rolling), minutes(5), "the hooks function's AfterRollout checks");
        // A check at PRODUCTION_TRAFFIC_SHIFT runs at each of the four steps
        let mut check = Check::new("PRODUCTION_TRAFFIC_SHIFT", "http://web/health");
        (check.timeout_secs, check.retries, check.interval_secs) = (10, 0, 5);
        let checked = DeployTarget::EcsNative(EcsNative {
            checks: vec![check],
            ..crate::contract::testing::ecs_native(TrafficShift::Linear { step_tenths: 250, step_bake_time_minutes: 5 })
        });
        assert_eq!(strategy_waits(&checked), minutes(15) + TimeDelta::seconds(40));
    }
}
