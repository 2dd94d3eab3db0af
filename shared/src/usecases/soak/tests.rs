//! A soak watched by alarms, through its use cases: an alarm's state change, and the soak's end read again.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::contract::testing::{InMemoryStore, RecordingRunner, ScriptedAlarms};
use crate::definitions::ExecutionMode;
use crate::pipeline::{BuildOutputs, Effect, ExecutionId, Plan, Status};

const DEFINITIONS: &str = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "staging"
deploy = { strategy = "rolling", cluster = "staging", service = "web" }
soak = "30m"
soak_alarms = ["web-staging-5xx", "web-staging-latency"]

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "web" }
"#;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

fn id() -> ExecutionId {
    ExecutionId::from("web-1")
}

/// `web-1` soaking at staging since minute 3 (until minute 33), `in_alarm` in ALARM as its deployment started;
/// `strict` puts `strict_alarms = true` on the stage.
async fn soaking(strict: bool, in_alarm: &[&str]) -> (InMemoryStore, RecordingRunner) {
    let (store, runner) = (InMemoryStore::new(), RecordingRunner::new());
    let text = if strict {
        DEFINITIONS.replace("\"web-staging-latency\"]", "\"web-staging-latency\"]\nstrict_alarms = true")
    } else {
        DEFINITIONS.to_owned()
    };
    store.publish(&text, None, at(0)).await.expect("published");
    let definitions = crate::definitions::Definitions::parse("pipelines.toml", &text).expect("valid definitions");
    let plan = Plan::from(definitions.get("web").expect("web"));
    let mut pushed = crate::contract::testing::push("web-1", ExecutionMode::Superseded, false);
    if let Event::Triggered { plan: planned, .. } = &mut pushed {
        **planned = plan;
    }
    let events = [
        pushed,
        Event::BuildSucceeded {
            execution_id: id(),
            build_id: "build-web-1".into(),
            outputs: BuildOutputs {
                image_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:ab".into(),
                artifacts: None,
            },
        },
        Event::DeploymentStarted {
            execution_id: id(),
            deployment_id: "ecs-svc/1".into(),
            service_deployment: None,
            task_definition: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:8".into()),
            previous_task_definition: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7".into()),
            in_alarm: Some(in_alarm.iter().map(|name| (*name).to_owned()).collect()),
        },
        Event::DeploymentSucceeded { execution_id: id(), deployment_id: "ecs-svc/1".into(), tasks: None },
    ];
    for (minute, event) in events.iter().enumerate() {
        let input =
            Input { pipeline: "web", mode: ExecutionMode::Superseded, event, receipt: None, now: at(minute as i64) };
        let handled = handle(&store, &runner, input).await.expect("handled");
        assert_eq!(handled, Handled::Applied, "{}", event.name());
    }
    (store, runner)
}

async fn run(store: &InMemoryStore) -> Execution {
    store.execution(&id()).await.ok().flatten().expect("the run")
}

fn rolled_back(runner: &RecordingRunner) -> bool {
    runner.ran().iter().any(|(_, effect)| {
        matches!(effect, Effect::Publish(crate::contract::events::SluiceEvent::RollbackRequested(_)))
    })
}

fn into_alarm(alarm: &str) -> AlarmChange {
    AlarmChange {
        at: Some(at(10)),
        alarm: alarm.into(),
        state: "ALARM".into(),
        reason: Some("Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0).".into()),
    }
}

fn ended() -> SoakEnded {
    SoakEnded {
        pipeline: "web".into(),
        execution_id: id(),
        stage: Stage::new("staging").expect("a stage"),
        alarms: vec![],
    }
}

#[tokio::test]
async fn an_alarm_moving_into_alarm_rolls_back_the_soak_it_watches_and_others_change_nothing() {
    let (store, runner) = soaking(false, &[]).await;
    // Another alarm, a watched one moving to OK, and a change from before the soak began (its event late) are
    // nothing to the soak
    let late = AlarmChange { at: Some(at(2)), ..into_alarm("web-staging-5xx") };
    assert_eq!(record_alarm(&store, &runner, &late, at(10)).await.expect("recorded"), 0);
    assert_eq!(record_alarm(&store, &runner, &into_alarm("api-prod-5xx"), at(10)).await.expect("recorded"), 0);
    let ok = AlarmChange { state: "OK".into(), ..into_alarm("web-staging-5xx") };
    assert_eq!(record_alarm(&store, &runner, &ok, at(10)).await.expect("recorded"), 0);
    assert!(!rolled_back(&runner));
    // A watched alarm into ALARM fails staging: the service goes back to web:7
    assert_eq!(record_alarm(&store, &runner, &into_alarm("web-staging-5xx"), at(11)).await.expect("recorded"), 1);
    assert!(rolled_back(&runner));
    let alarm = run(&store).await.deploy().and_then(|deploy| deploy.alarm.clone()).expect("the alarm is recorded");
    assert_eq!((alarm.name.as_str(), alarm.at), ("web-staging-5xx", at(11)));
    // Told again (EventBridge delivers at least once), nothing more happens
    assert_eq!(record_alarm(&store, &runner, &into_alarm("web-staging-5xx"), at(12)).await.expect("recorded"), 0);
}

#[tokio::test]
async fn a_soak_ending_with_its_alarms_quiet_moves_the_release_on() {
    let (store, runner) = soaking(false, &[]).await;
    let alarms = ScriptedAlarms::new();
    alarms.alarm("web-staging-5xx", false, "Threshold Crossed: no datapoints were received");
    alarms.alarm("web-staging-latency", false, "ok");
    // Too early: nothing is read and nothing moves
    let early = end_soak(&store, &runner, &alarms, &ended(), at(20)).await.expect("answered");
    assert!(matches!(early, Handled::Ignored(_)), "{early:?}");
    assert_eq!(alarms.reads(), 0);
    end_soak(&store, &runner, &alarms, &ended(), at(33)).await.expect("ended");
    assert_eq!(run(&store).await.status, Status::Running(Stage::new("production").expect("a stage")));
}

#[tokio::test]
async fn an_alarm_already_in_alarm_before_the_deployment_does_not_block_unless_strict() {
    let (store, runner) = soaking(false, &["web-staging-latency"]).await;
    let alarms = ScriptedAlarms::new();
    alarms.alarm("web-staging-5xx", false, "ok");
    alarms.alarm("web-staging-latency", true, "Threshold Crossed: p99 1.2 s");
    end_soak(&store, &runner, &alarms, &ended(), at(33)).await.expect("ended");
    assert_eq!(run(&store).await.status, Status::Running(Stage::new("production").expect("a stage")));
    // strict_alarms: the same alarm blocks
    let (store, runner) = soaking(true, &["web-staging-latency"]).await;
    end_soak(&store, &runner, &alarms, &ended(), at(33)).await.expect("ended");
    assert!(rolled_back(&runner));
    let alarm = run(&store).await.deploy().and_then(|deploy| deploy.alarm.clone()).expect("the alarm is recorded");
    assert_eq!(alarm.name, "web-staging-latency");
    assert!(alarm.reason.starts_with("in ALARM at the soak's end: Threshold Crossed"), "{}", alarm.reason);
}

#[tokio::test]
async fn an_alarm_in_alarm_at_the_soaks_end_whose_event_was_lost_still_rolls_back() {
    let (store, runner) = soaking(false, &[]).await;
    let alarms = ScriptedAlarms::new();
    alarms.alarm("web-staging-5xx", true, "Threshold Crossed: 12 5xx");
    alarms.alarm("web-staging-latency", false, "ok");
    end_soak(&store, &runner, &alarms, &ended(), at(40)).await.expect("ended");
    assert!(rolled_back(&runner));
    assert_eq!(run(&store).await.status, Status::Running(Stage::new("staging").expect("a stage")));
}

#[tokio::test]
async fn cloudwatch_unreachable_at_the_soaks_end_retries_the_event_and_changes_nothing() {
    let (store, runner) = soaking(false, &[]).await;
    let alarms = ScriptedAlarms::new();
    alarms.unreachable();
    let before = run(&store).await;
    let error = end_soak(&store, &runner, &alarms, &ended(), at(33)).await.expect_err("CloudWatch is unreachable");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(run(&store).await, before);
    // Refused (the stack's SoakAlarms no longer matches them): kept for the dead-letter queue too, nothing changed
    let refusing = ScriptedAlarms::new();
    refusing.refuse();
    let error = end_soak(&store, &runner, &refusing, &ended(), at(33)).await.expect_err("CloudWatch refuses");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(run(&store).await, before);
}
