//! The digest check once a deployment completed: what the service's tasks of the new task definition run, against
//! the release's image digest.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::contract::testing::push;
use crate::definitions::{DeployTarget, ExecutionMode};
use crate::deploy::{RunningContainer, RunningTask};
use crate::pipeline::{ApprovalDecision, BuildOutputs};

const REPO: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web";
const BUILT: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const MOVED: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const PREVIOUS: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7";
const OURS: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:8";

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

fn id() -> ExecutionId {
    ExecutionId::from("e1")
}

/// A run of a rolling pipeline whose build made `REPO@BUILT`, approved, its update started from [`PREVIOUS`] (if
/// `previous`) to [`OURS`].
fn deploying(previous: bool, after_rollout: bool) -> PipelineState {
    let mut pushed = push("e1", ExecutionMode::Superseded, true);
    if let Event::Triggered { plan, .. } = &mut pushed {
        let checks = after_rollout.then(|| crate::definitions::Check::new(AFTER_ROLLOUT, "http://web/health"));
        *plan.target_mut() = DeployTarget::Rolling(crate::contract::testing::rolling(checks.into_iter().collect()));
    }
    let events = [
        pushed,
        Event::BuildSucceeded {
            execution_id: id(),
            build_id: "build-e1".into(),
            outputs: BuildOutputs {
                image_uri: format!("{REPO}@{BUILT}"),
                artifacts: Some("s3://artifacts/e1.zip".into()),
            },
        },
        Event::ApprovalDecided {
            execution_id: id(),
            decision: ApprovalDecision::Approved,
            approver: "alice@example.com".into(),
            comment: None,
            token_hash: None,
            source_ip: None,
            user_agent: None,
        },
        Event::DeploymentStarted {
            execution_id: id(),
            deployment_id: "ecs-svc/1".into(),
            service_deployment: None,
            task_definition: Some(OURS.into()),
            previous_task_definition: previous.then(|| PREVIOUS.to_owned()),
            in_alarm: None,
        },
    ];
    let mut state = PipelineState::new("web", ExecutionMode::Superseded);
    for (minute, event) in events.iter().enumerate() {
        state = applied(&state, event, at(minute as i64)).0;
    }
    state
}

fn applied(state: &PipelineState, event: &Event, now: DateTime<Utc>) -> (PipelineState, Vec<Effect>) {
    match transition(state, event, now) {
        Ok(Decision::Apply { state, effects }) => (state, effects),
        other => panic!("{} was not applied: {other:?}", event.name()),
    }
}

/// Two tasks of [`OURS`], running `digests`, and one of [`PREVIOUS`] still draining.
fn tasks(digests: [&str; 2]) -> Vec<RunningTask> {
    let task = |n: usize, task_definition: &str, digest: &str| RunningTask {
        task_arn: format!("arn:aws:ecs:eu-west-1:123456789012:task/prod/{n:032}"),
        task_definition: task_definition.into(),
        containers: vec![RunningContainer {
            name: "web".into(),
            image: format!("{REPO}:latest"),
            digest: Some(digest.into()),
        }],
    };
    let mut tasks: Vec<RunningTask> = digests.iter().enumerate().map(|(n, d)| task(n + 1, OURS, d)).collect();
    tasks.push(task(9, PREVIOUS, MOVED));
    tasks
}

fn succeeded(tasks: Option<Vec<RunningTask>>) -> Event {
    Event::DeploymentSucceeded { execution_id: id(), deployment_id: "ecs-svc/1".into(), tasks }
}

fn run(state: &PipelineState) -> &Execution {
    state.execution(&id()).expect("the run is in the state")
}

fn kinds(effects: &[Effect]) -> Vec<&'static str> {
    effects.iter().map(|effect| effect.kind().name()).collect()
}

#[test]
fn tasks_running_the_release_digest_let_the_run_ship_and_the_check_is_recorded() {
    let (state, effects) = applied(&deploying(true, false), &succeeded(Some(tasks([BUILT, BUILT]))), at(5));
    assert_eq!(run(&state).status, Status::Succeeded);
    assert!(!kinds(&effects).contains(&"roll_back"), "{effects:?}");
    let check = run(&state).deploy().and_then(|deploy| deploy.digest_check.clone()).expect("a digest check");
    assert_eq!(check.summary(), "2 tasks run sha256:9f86d081884c…");
}

#[test]
fn a_task_running_another_digest_rolls_the_service_back_and_the_run_ends_rolled_back_naming_it() {
    // GIVEN a rolling update from web:7 that ECS reports complete, one of whose tasks runs another image
    let (state, effects) = applied(&deploying(true, false), &succeeded(Some(tasks([BUILT, MOVED]))), at(5));
    // THEN the deployer is asked to put web:7 back; the run is not over until it has
    assert_eq!(kinds(&effects), ["roll_back", "publish"]);
    assert!(
        matches!(&effects[0], Effect::RollBack { task_definition, artifacts: Some(_), .. } if task_definition == PREVIOUS)
    );
    assert_eq!(run(&state).status, Status::Running(Stage::DEPLOY));
    // WHEN the deployer has
    let back = Event::DeploymentFailed {
        execution_id: id(),
        deployment_id: Some("ecs-svc/1".into()),
        reason: format!("sluice rolled service web back to {PREVIOUS} (ECS deployment ecs-svc/2)"),
        rolled_back: true,
    };
    let (state, _) = applied(&state, &back, at(6));
    // THEN the run ended rolled back, saying which task ran what
    assert_eq!(run(&state).status, Status::RolledBack);
    assert_eq!(
        run(&state).reason.as_deref(),
        Some(
            "what runs is not what was built: 1 of 2 tasks runs another image than the release's \
             sha256:9f86d081884c…: task 00000000000000000000000000000002 (web) runs sha256:2c26b46b68ff…; sluice \
             rolled service web back to arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7 (ECS deployment \
             ecs-svc/2)"
        )
    );
}

#[test]
fn a_digest_mismatch_with_no_earlier_task_definition_known_fails_the_run_saying_what_still_runs() {
    let (state, effects) = applied(&deploying(false, false), &succeeded(Some(tasks([MOVED, MOVED]))), at(5));
    assert_eq!(kinds(&effects), ["publish"]);
    assert_eq!(run(&state).status, Status::Failed);
    let reason = run(&state).reason.clone().unwrap_or_default();
    assert!(reason.starts_with("what runs is not what was built: 2 of 2 tasks run another image"), "{reason}");
    assert!(reason.ends_with(&format!("so it still runs {OURS}")), "{reason}");
}

#[test]
fn a_digest_mismatch_rolls_back_before_any_after_rollout_check_runs() {
    let (_, effects) = applied(&deploying(true, true), &succeeded(Some(tasks([MOVED, BUILT]))), at(5));
    assert_eq!(kinds(&effects), ["roll_back", "publish"]);
}

#[test]
fn tasks_not_read_leave_the_deployment_unchecked_and_the_run_goes_on() {
    let (state, _) = applied(&deploying(true, false), &succeeded(None), at(5));
    assert_eq!(run(&state).status, Status::Succeeded);
    assert_eq!(run(&state).deploy().and_then(|deploy| deploy.digest_check.clone()), None);
}

#[test]
fn a_repeated_completion_after_the_check_is_a_duplicate_and_rolls_back_nothing_twice() {
    let (state, _) = applied(&deploying(true, true), &succeeded(Some(tasks([BUILT, BUILT]))), at(5));
    match transition(&state, &succeeded(Some(tasks([MOVED, MOVED]))), at(6)) {
        Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)) => {}
        other => panic!("expected a duplicate: {other:?}"),
    }
}

#[test]
fn a_completion_told_again_while_the_service_rolls_back_from_a_mismatch_is_a_duplicate_and_ships_nothing() {
    // GIVEN a mismatch found, the rollback asked for
    let (state, _) = applied(&deploying(true, true), &succeeded(Some(tasks([MOVED, BUILT]))), at(5));
    // WHEN the completion is told again without tasks (the reconciler found the deployment completed)
    let again = transition(&state, &succeeded(None), at(20));
    // THEN nothing moves: no AfterRollout check, no next stage
    assert_eq!(again, Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)));
}
