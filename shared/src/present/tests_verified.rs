//! What people read of a deploy stage's verifications: the digest check of its tasks, and a soak watched by alarms
//! that one of them ended.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::contract::testing::{E2E_IMAGE, to_e2e};
use crate::definitions::{ExecutionMode, SoakAlarms, StageKind};
use crate::deploy::{RunningContainer, RunningTask};
use crate::pipeline::{Decision, Event, Execution, ExecutionId, PipelineState, Stage, transition};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

const WEB_7: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7";
const WEB_8: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:8";

/// e1 deployed to staging (web:7 -> web:8, three tasks running the release), soaking 30 minutes watched by two
/// alarms, one in ALARM before; then `more`, a minute apart.
fn run(more: &[Event]) -> Execution {
    let mut events = to_e2e("e1");
    for event in &mut events {
        match event {
            Event::Triggered { plan, .. } => {
                if let Some(StageKind::Deploy(staging)) = plan.stages.first_mut().map(|stage| &mut stage.kind) {
                    staging.soak_secs = Some(30 * 60);
                    let names = vec!["web-staging-5xx".to_owned(), "web-staging-latency".to_owned()];
                    staging.soak_alarms = Some(SoakAlarms { names, strict: false });
                }
            }
            Event::DeploymentStarted { task_definition, previous_task_definition, in_alarm, .. } => {
                *task_definition = Some(WEB_8.into());
                *previous_task_definition = Some(WEB_7.into());
                *in_alarm = Some(vec!["web-staging-latency".into()]);
            }
            Event::DeploymentSucceeded { tasks, .. } => {
                let task = |n: u32| RunningTask {
                    task_arn: format!("arn:aws:ecs:eu-west-1:123456789012:task/staging/{n:032}"),
                    task_definition: WEB_8.into(),
                    containers: vec![RunningContainer {
                        name: "web".into(),
                        image: E2E_IMAGE.into(),
                        digest: Some("sha256:ab12".into()),
                    }],
                };
                *tasks = Some(vec![task(1), task(2), task(3)]);
            }
            _ => {}
        }
    }
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    for (minute, event) in (0..).zip(events.iter().chain(more)) {
        match transition(&state, event, at(minute)) {
            Ok(Decision::Apply { state: next, .. }) => state = next,
            other => panic!("{} applies: {other:?}", event.name()),
        }
    }
    state.execution(&ExecutionId::from("e1")).cloned().expect("the run")
}

fn rolled_back() -> [Event; 2] {
    [
        Event::AlarmRaised {
            execution_id: "e1".into(),
            stage: Stage::new("staging").expect("a stage"),
            alarm: "web-staging-5xx".into(),
            reason: "Threshold Crossed: 12 5xx in a minute".into(),
        },
        Event::DeploymentFailed {
            execution_id: "e1".into(),
            deployment_id: Some("ecs-staging".into()),
            reason: format!("sluice rolled service web back to {WEB_7} (ECS deployment ecs-svc/2)"),
            rolled_back: true,
        },
    ]
}

#[test]
fn the_timeline_tells_the_digest_check_the_alarms_watching_the_soak_and_the_one_that_fired() {
    let said = super::timeline::lines(&run(&rolled_back())).join("\n");
    for line in [
        "web-staging-latency was already in ALARM before this deployment",
        "digest check passed: 3 tasks run sha256:ab12",
        "deployed; soaks until 2026-12-07 09:33:00 UTC",
        "the soak is watched by web-staging-5xx, web-staging-latency",
        "alarm web-staging-5xx went into ALARM during the soak: Threshold Crossed: 12 5xx in a minute",
        "rolled_back after 5m 00s: in staging: alarm web-staging-5xx went into ALARM during the soak (Threshold \
         Crossed: 12 5xx in a minute); sluice rolled service web back to",
    ] {
        assert!(said.contains(line), "{line:?} in\n{said}");
    }
}

#[test]
fn the_status_page_shows_each_deploy_stages_verifications() {
    let soaking = run(&[]);
    let story = super::status::Story { waits_for: String::new(), timeline: Vec::new() };
    let page = super::status::run_page(&soaking, &story, at(10));
    let watched = "staging 2m 00s · 3 tasks run sha256:ab12 · soak watched by web-staging-5xx, web-staging-latency";
    assert!(page.html.contains(watched), "{}", page.html);
    let ended = run(&rolled_back());
    let page = super::status::run_page(&ended, &story, at(10));
    assert!(
        page.html.contains(
            "<li class=\"bad\">staging 2m 00s · 3 tasks run sha256:ab12 · alarm web-staging-5xx went into ALARM \
             during the soak</li>"
        ),
        "{}",
        page.html
    );
}
