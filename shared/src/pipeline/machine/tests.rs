//! The machine's tests: each names a situation, then GIVEN the events so far, WHEN one more arrives, THEN the
//! decision. The tables at the end cover every stage against duplicated and out-of-order events.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::contract::testing::push as triggered;
use crate::definitions::{DeployTarget, ExecutionMode, PauseAction};
use crate::pipeline::{BuildFailure, BuildOutputs};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

fn id(name: &str) -> ExecutionId {
    ExecutionId::from(name)
}

fn push(execution: &str) -> Event {
    triggered(execution, ExecutionMode::Superseded, true)
}

fn build_started(execution: &str) -> Event {
    Event::BuildStarted { execution_id: id(execution), build_id: format!("build-{execution}") }
}

fn build_succeeded(execution: &str) -> Event {
    Event::BuildSucceeded {
        execution_id: id(execution),
        build_id: format!("build-{execution}"),
        outputs: BuildOutputs {
            image_uri: format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:{execution}"),
            artifacts: Some(format!("s3://artifacts/{execution}.zip")),
        },
    }
}

fn build_failed(execution: &str, status: BuildFailure) -> Event {
    Event::BuildFailed {
        execution_id: id(execution),
        build_id: format!("build-{execution}"),
        status,
        phase: Some("BUILD".into()),
        reason: "build failed in phase BUILD".into(),
    }
}

fn decided(execution: &str, decision: ApprovalDecision) -> Event {
    Event::ApprovalDecided {
        execution_id: id(execution),
        decision,
        approver: "alice@example.com".into(),
        comment: Some("looks good".into()),
        token_hash: None,
        source_ip: None,
        user_agent: None,
    }
}

fn approved(execution: &str) -> Event {
    decided(execution, ApprovalDecision::Approved)
}

fn deployment_started(execution: &str) -> Event {
    Event::DeploymentStarted {
        execution_id: id(execution),
        deployment_id: format!("d-{execution}"),
        service_deployment: None,
        task_definition: Some(format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:{execution}")),
        previous_task_definition: None,
        in_alarm: None,
    }
}

fn hook(execution: &str, hook_id: &str, passed: bool) -> Event {
    Event::HookCompleted {
        execution_id: id(execution),
        deployment_id: format!("d-{execution}"),
        lifecycle_event: "BeforeAllowTraffic".into(),
        hook_execution_id: hook_id.into(),
        passed,
        detail: None,
        millis: Some(40),
    }
}

fn ordered(execution: &str) -> Event {
    Event::RollbackOrdered { execution_id: id(execution), by: "arn:aws:iam::123456789012:user/carol".into() }
}

fn deployed(execution: &str) -> Event {
    Event::DeploymentSucceeded { execution_id: id(execution), deployment_id: format!("d-{execution}"), tasks: None }
}

fn deploy_failed(execution: &str, rolled_back: bool) -> Event {
    Event::DeploymentFailed {
        execution_id: id(execution),
        deployment_id: Some(format!("d-{execution}")),
        reason: "BeforeAllowTraffic check failed".into(),
        rolled_back,
    }
}

/// Applies `events` one minute apart from minute 0; each must be applied.
fn given(events: &[Event]) -> PipelineState {
    let mut state = PipelineState::new("web", ExecutionMode::Superseded);
    for (minute, event) in events.iter().enumerate() {
        state = apply(&state, event, at(minute as i64)).0;
    }
    state
}

fn apply(state: &PipelineState, event: &Event, now: DateTime<Utc>) -> (PipelineState, Vec<Effect>) {
    match transition(state, event, now) {
        Ok(Decision::Apply { state, effects }) => (state, effects),
        other => panic!("{} was not applied: {other:?}", event.name()),
    }
}

fn status(state: &PipelineState, execution: &str) -> Status {
    state.execution(&id(execution)).map(|execution| execution.status).expect("execution is in the state")
}

/// The effects, as short names: `start_build(e1)`, `publish(Execution Finished e1 superseded)`, ...
fn names(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|effect| match effect {
            Effect::StartBuild { execution_id, .. } => format!("start_build({execution_id})"),
            Effect::RequestApproval { execution_id, .. } => format!("request_approval({execution_id})"),
            Effect::StartDeployment { execution_id, .. } => format!("start_deployment({execution_id})"),
            Effect::ReportHookStatus { hook_execution_id, status, .. } => {
                format!("report_hook({hook_execution_id} {status:?})")
            }
            Effect::Publish(SluiceEvent::ExecutionFinished(finished)) => {
                format!("publish(Execution Finished {} {})", finished.execution_id, finished.outcome)
            }
            Effect::NotifyOutcome { execution_id, outcome, .. } => format!("notify({execution_id} {})", outcome.name()),
            Effect::ReportToGitHub { execution_id } => format!("github({execution_id})"),
            Effect::ContinueDeployment { hook_id, action, .. } => format!("continue({hook_id} {})", action.name()),
            Effect::RunChecks { lifecycle_event, checks, .. } => {
                format!("run_checks({lifecycle_event} {})", checks.len())
            }
            Effect::RunTestChecks { stage, checks, .. } => format!("run_test_checks({stage} {})", checks.len()),
            Effect::RollBack { task_definition, .. } => format!("roll_back({task_definition})"),
            Effect::StopDeployment { deployment, .. } => format!("stop({deployment})"),
            Effect::Publish(event) => format!("publish({} {})", event.detail_type(), event.execution_id()),
        })
        .collect()
}

#[test]
fn a_push_records_an_execution_and_starts_its_build_with_the_commit_and_the_execution_id() {
    // GIVEN a pipeline that never ran
    let state = PipelineState::new("web", ExecutionMode::Superseded);
    // WHEN a push arrives
    let (state, effects) = apply(&state, &push("e1"), at(0));
    // THEN the execution builds, and the build carries the commit and the execution id
    assert_eq!(status(&state, "e1"), Status::Running(Stage::BUILD));
    assert_eq!(state.execution(&id("e1")).map(|e| e.seq), Some(1));
    assert_eq!(names(&effects), ["publish(Execution Started e1)", "start_build(e1)"]);
    let Effect::StartBuild { project, source_version, environment, .. } = &effects[1] else { panic!("not a build") };
    assert_eq!(project, "web-build");
    assert_eq!(source_version, "sha-e1");
    assert_eq!(environment.get("SLUICE_EXECUTION_ID").map(String::as_str), Some("e1"));
    assert_eq!(environment.get("SLUICE_PIPELINE").map(String::as_str), Some("web"));
    assert_eq!(environment.get("STAGE").map(String::as_str), Some("prod"));
}

#[test]
fn a_successful_build_asks_for_approval_with_the_image_and_a_deadline() {
    // GIVEN a build in progress
    let state = given(&[push("e1"), build_started("e1")]);
    // WHEN it succeeds
    let (state, effects) = apply(&state, &build_succeeded("e1"), at(10));
    // THEN the run waits for a person, with the image recorded and the approval's deadline an hour later
    assert_eq!(status(&state, "e1"), Status::Running(Stage::APPROVAL));
    assert_eq!(names(&effects), ["request_approval(e1)", "publish(Approval Requested e1)"]);
    let execution = state.execution(&id("e1")).expect("execution");
    let build = execution.build.as_ref().expect("build facts");
    assert_eq!(build.image_uri.as_deref(), Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:e1"));
    assert_eq!(build.finished_at, Some(at(10)));
    assert_eq!(execution.approval().map(|a| a.expires_at), Some(at(70)));
    let Effect::Publish(SluiceEvent::ApprovalRequested(request)) = &effects[1] else { panic!("not a request") };
    assert_eq!(request.image_uri, build.image_uri);
    assert_eq!(request.expires_at, at(70));
}

#[test]
fn a_pipeline_without_approval_deploys_straight_after_the_build() {
    // GIVEN a pipeline with no approval stage, building
    let state = given(&[triggered("e1", ExecutionMode::Superseded, false)]);
    // WHEN the build succeeds
    let (state, effects) = apply(&state, &build_succeeded("e1"), at(5));
    // THEN it deploys at once
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
    assert_eq!(names(&effects), ["start_deployment(e1)", "publish(Deployment Requested e1)"]);
}

#[test]
fn a_run_goes_from_push_to_success_and_keeps_the_facts_of_every_stage() {
    // GIVEN / WHEN a run that passes every stage
    let state = given(&[
        push("e1"),
        build_started("e1"),
        build_succeeded("e1"),
        approved("e1"),
        deployment_started("e1"),
        hook("e1", "h1", true),
        deployed("e1"),
    ]);
    // THEN it succeeded, with every stage's facts and timestamps
    let execution = state.execution(&id("e1")).expect("execution");
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.source.delivery_id, "delivery-e1");
    assert_eq!(execution.build.as_ref().and_then(|b| b.build_id.as_deref()), Some("build-e1"));
    let approval = execution.approval().expect("approval facts");
    assert_eq!(approval.decision, Some(ApprovalDecision::Approved));
    assert_eq!(approval.approver.as_deref(), Some("alice@example.com"));
    assert_eq!(approval.decided_at, Some(at(3)));
    let deploy = execution.deploy().expect("deploy facts");
    assert_eq!(deploy.deployment_id.as_deref(), Some("d-e1"));
    assert_eq!(deploy.strategy, "blue_green");
    assert_eq!(deploy.hooks.len(), 1);
    assert_eq!((deploy.started_at, deploy.finished_at), (at(3), Some(at(6))));
    assert_eq!((execution.created_at, execution.finished_at), (at(0), Some(at(6))));
}

#[test]
fn a_passing_hook_is_reported_to_codedeploy_once() {
    // GIVEN a deployment in progress
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1")]);
    // WHEN its hook passes, and CodeDeploy's invocation is retried
    let (state, effects) = apply(&state, &hook("e1", "h1", true), at(5));
    // THEN the hook is answered Succeeded, and the retry is answered by nothing new
    assert_eq!(names(&effects), ["report_hook(h1 Succeeded)"]);
    assert_eq!(transition(&state, &hook("e1", "h1", true), at(6)), Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)));
}

#[test]
fn a_failing_hook_is_reported_failed_and_the_rollback_ends_the_run_rolled_back() {
    // GIVEN a deployment in progress
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1")]);
    // WHEN its check fails and CodeDeploy rolls back
    let (state, effects) = apply(&state, &hook("e1", "h1", false), at(5));
    assert_eq!(names(&effects), ["report_hook(h1 Failed)"]);
    let (state, effects) = apply(&state, &deploy_failed("e1", true), at(6));
    // THEN the run ended rolled back, with the reason
    assert_eq!(status(&state, "e1"), Status::RolledBack);
    assert_eq!(names(&effects), ["publish(Execution Finished e1 rolled_back)"]);
    // AND the reason names the hook whose checks failed before what CodeDeploy said
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone());
    assert_eq!(
        reason.as_deref(),
        Some("the BeforeAllowTraffic checks failed (no detail); BeforeAllowTraffic check failed")
    );
}

const PREVIOUS: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7";

/// `push`, for a pipeline that rolls its service and runs `checks` AfterRollout checks once ECS has completed it.
fn rolling_push(execution: &str, checks: usize) -> Event {
    let mut event = push(execution);
    if let Event::Triggered { plan, .. } = &mut event {
        let checks = (0..checks).map(|_| crate::definitions::Check::new(AFTER_ROLLOUT, "http://web/health"));
        *plan.target_mut() = DeployTarget::Rolling(crate::contract::testing::rolling(checks.collect()));
    }
    event
}

/// ECS took the run's rolling update (`d-<execution>`), from task definition [`PREVIOUS`] if `previous`.
fn rolling_started(execution: &str, previous: bool) -> Event {
    Event::DeploymentStarted {
        execution_id: id(execution),
        deployment_id: format!("d-{execution}"),
        service_deployment: None,
        task_definition: Some(format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:{execution}")),
        previous_task_definition: previous.then(|| PREVIOUS.to_owned()),
        in_alarm: None,
    }
}

/// A rolling run of `checks` AfterRollout checks, its update started from task definition [`PREVIOUS`] (if known).
fn rolled_out(execution: &str, checks: usize, previous: bool) -> PipelineState {
    let started = rolling_started(execution, previous);
    given(&[rolling_push(execution, checks), build_succeeded(execution), approved(execution), started])
}

fn after_rollout(execution: &str, passed: bool) -> Event {
    Event::HookCompleted {
        execution_id: id(execution),
        deployment_id: format!("d-{execution}"),
        lifecycle_event: AFTER_ROLLOUT.into(),
        hook_execution_id: format!("AfterRollout:d-{execution}"),
        passed,
        detail: Some("check 1 GET http://web/health: 500, expected 200".into()),
        millis: Some(30),
    }
}

#[test]
fn after_rollout_checks_expect_the_commit_and_digest_of_the_release_they_check() {
    // GIVEN a rolling update whose check expects the service to report the release's commit and digest
    let mut push = rolling_push("e1", 0);
    if let Event::Triggered { plan, .. } = &mut push {
        let check = crate::definitions::Check {
            expect_body: Some(r#""commit":"{commit}","image":"{digest}""#.into()),
            ..crate::definitions::Check::new(AFTER_ROLLOUT, "http://web/version")
        };
        *plan.target_mut() = DeployTarget::Rolling(crate::contract::testing::rolling(vec![check]));
    }
    let built = Event::BuildSucceeded {
        execution_id: id("e1"),
        build_id: "build-e1".into(),
        outputs: BuildOutputs {
            image_uri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:ab12".into(),
            artifacts: Some("s3://artifacts/e1.zip".into()),
        },
    };
    let state = given(&[push, built, approved("e1"), rolling_started("e1", true)]);
    let commit = state.execution(&id("e1")).map(|run| run.source.commit.clone()).expect("the run");
    // WHEN ECS reports it completed
    let (_, effects) = apply(&state, &deployed("e1"), at(5));
    // THEN the check the hooks function runs expects them, written out
    let Some(Effect::RunChecks { checks, .. }) = effects.first() else { panic!("no checks: {effects:?}") };
    let expected = format!(r#""commit":"{commit}","image":"sha256:ab12""#);
    assert_eq!(checks[0].expect_body.as_deref(), Some(expected.as_str()));
}

#[test]
fn a_completed_rolling_update_with_checks_runs_them_before_the_run_succeeds() {
    // GIVEN a rolling update with two AfterRollout checks
    let state = rolled_out("e1", 2, true);
    // WHEN ECS reports it completed
    let (state, effects) = apply(&state, &deployed("e1"), at(5));
    // THEN the checks are due, and announced to the hooks function; the run still deploys
    assert_eq!(names(&effects), ["run_checks(AfterRollout 2)", "publish(Checks Requested e1)"]);
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
    // AND ECS's completion told again (a redelivery, the reconciler) changes nothing
    assert_eq!(transition(&state, &deployed("e1"), at(6)), Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)));
    // WHEN the checks pass
    let (state, effects) = apply(&state, &after_rollout("e1", true), at(7));
    // THEN the run succeeded, with the checks recorded and no hook answer owed to anyone
    assert_eq!(names(&effects), ["publish(Execution Finished e1 succeeded)"]);
    let deploy = state.execution(&id("e1")).and_then(|e| e.deploy().cloned()).expect("deploy facts");
    assert_eq!(
        deploy.hooks.iter().map(|h| (h.lifecycle_event.as_str(), h.passed)).collect::<Vec<_>>(),
        [(AFTER_ROLLOUT, true)]
    );
    assert_eq!((deploy.rolled_out_at, deploy.finished_at), (Some(at(5)), Some(at(7))));
    // AND the same result again is a duplicate
    assert_eq!(
        transition(&state, &after_rollout("e1", true), at(8)),
        Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))
    );
}

#[test]
fn a_completed_rolling_update_without_checks_succeeds_at_once() {
    let state = rolled_out("e1", 0, true);
    let (state, effects) = apply(&state, &deployed("e1"), at(5));
    assert_eq!(names(&effects), ["publish(Execution Finished e1 succeeded)"]);
    assert_eq!(status(&state, "e1"), Status::Succeeded);
}

#[test]
fn failing_after_rollout_checks_roll_the_service_back_to_the_task_definition_it_ran_before() {
    // GIVEN a completed rolling update from task definition web:7, whose checks are running
    let (state, _) = apply(&rolled_out("e1", 1, true), &deployed("e1"), at(5));
    // WHEN they fail
    let (state, effects) = apply(&state, &after_rollout("e1", false), at(6));
    // THEN the deployer is asked to put web:7 back; the run is not over until it has
    assert_eq!(names(&effects), [format!("roll_back({PREVIOUS})"), "publish(Rollback Requested e1)".to_owned()]);
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
    // WHEN the deployer has updated the service back
    let back = Event::DeploymentFailed {
        execution_id: id("e1"),
        deployment_id: Some("d-e1".into()),
        reason: format!("sluice rolled service web back to {PREVIOUS} (ECS deployment d-back)"),
        rolled_back: true,
    };
    let (state, _) = apply(&state, &back, at(7));
    // THEN the run ended rolled back, naming the failed check and what the service runs now
    assert_eq!(status(&state, "e1"), Status::RolledBack);
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone()).unwrap_or_default();
    assert_eq!(
        reason,
        format!(
            "the AfterRollout checks failed (check 1 GET http://web/health: 500, expected 200); sluice rolled service \
             web back to {PREVIOUS} (ECS deployment d-back)"
        )
    );
}

#[test]
fn failing_after_rollout_checks_with_no_earlier_task_definition_known_fail_the_run_saying_what_still_runs() {
    let (state, _) = apply(&rolled_out("e1", 1, false), &deployed("e1"), at(5));
    let (state, effects) = apply(&state, &after_rollout("e1", false), at(6));
    assert_eq!(names(&effects), ["publish(Execution Finished e1 failed)"]);
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone()).unwrap_or_default();
    assert!(reason.starts_with("the AfterRollout checks failed (check 1 GET"), "{reason}");
    assert!(reason.ends_with("so it still runs arn:aws:ecs:eu-west-1:123456789012:task-definition/web:e1"), "{reason}");
}

#[test]
fn a_newer_run_waits_for_the_deploy_stage_until_the_after_rollout_checks_have_run() {
    // GIVEN e1's rolling update completed and its checks running, and e2 built and approved meanwhile
    let (state, _) = apply(&rolled_out("e1", 1, true), &deployed("e1"), at(5));
    let mut state = state;
    for (minute, event) in [rolling_push("e2", 1), build_succeeded("e2"), approved("e2")].iter().enumerate() {
        state = apply(&state, event, at(6 + minute as i64)).0;
    }
    assert_eq!(status(&state, "e2"), Status::Waiting(Stage::DEPLOY));
    // WHEN e1's checks pass
    let (state, effects) = apply(&state, &after_rollout("e1", true), at(10));
    // THEN e2 deploys
    assert!(names(&effects).contains(&"start_deployment(e2)".to_owned()), "{effects:?}");
    assert_eq!(status(&state, "e2"), Status::Running(Stage::DEPLOY));
}

#[test]
fn a_deployment_stopped_for_another_pipelines_run_ends_the_run_superseded_not_failed() {
    // GIVEN a deployment in progress
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1")]);
    // WHEN CodeDeploy stops it because hotfix-1, of pipeline hotfix, needed the group
    let stopped = Event::DeploymentSuperseded {
        execution_id: id("e1"),
        deployment_id: "d-e1".into(),
        by: id("hotfix-1"),
        by_pipeline: "hotfix".into(),
        reason: "CodeDeploy stopped the deployment and rolled it back".into(),
    };
    let (state, effects) = apply(&state, &stopped, at(5));
    // THEN the run is superseded, saying by which run, and its stage is free
    assert_eq!(names(&effects), ["publish(Execution Finished e1 superseded)"]);
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone()).unwrap_or_default();
    assert_eq!(
        reason,
        "superseded by execution hotfix-1 of pipeline hotfix, which needed the deployment group: CodeDeploy stopped \
         the deployment and rolled it back"
    );
    assert!(state.holder_of(Stage::DEPLOY).is_none());
    // AND told again, it changes nothing
    assert_eq!(transition(&state, &stopped, at(6)), Ok(Decision::Ignore(IgnoreReason::AlreadyFinished)));
}

#[test]
fn the_deploy_effect_says_whether_a_busy_deployment_group_is_stopped_or_waited_for() {
    for (mode, supersede) in [(ExecutionMode::Superseded, true), (ExecutionMode::Queued, false)] {
        let state = PipelineState::new("web", mode);
        let (state, _) = apply(&state, &triggered("e1", mode, false), at(0));
        let (_, effects) = apply(&state, &build_succeeded("e1"), at(1));
        let start = effects.iter().find_map(|effect| match effect {
            Effect::StartDeployment { pipeline, supersede, .. } => Some((pipeline.clone(), *supersede)),
            _ => None,
        });
        assert_eq!(start, Some(("web".to_owned(), supersede)), "{mode:?}");
    }
}

/// `push`, for a pipeline whose outcomes go to topic `outcomes`.
fn notified_push(execution: &str) -> Event {
    let mut event = push(execution);
    if let Event::Triggered { plan, .. } = &mut event {
        plan.notify =
            Some(crate::definitions::Notify { topic_arn: "arn:aws:sns:eu-west-1:123456789012:outcomes".into() });
    }
    event
}

#[test]
fn a_run_of_a_pipeline_with_a_notification_topic_reports_its_outcome_there_with_what_shipped_and_each_stage() {
    // GIVEN a pipeline that notifies, and a run of it deploying, one hook passed
    let state = given(&[
        notified_push("e1"),
        build_succeeded("e1"),
        approved("e1"),
        deployment_started("e1"),
        hook("e1", "h1", true),
    ]);
    // WHEN the deployment succeeds
    let (state, effects) = apply(&state, &deployed("e1"), at(5));
    // THEN the run's end is announced and its notification goes to the topic
    assert_eq!(names(&effects), ["publish(Execution Finished e1 succeeded)", "notify(e1 succeeded)"]);
    let Some(Effect::NotifyOutcome { topic_arn, .. }) = effects.last() else { panic!("no notification") };
    assert_eq!(topic_arn, "arn:aws:sns:eu-west-1:123456789012:outcomes");
    // AND the run it reports on knows what shipped, each stage's start and end, and the hooks
    let execution = state.execution(&id("e1")).expect("the run is kept");
    let report = crate::pipeline::OutcomeReport::of(execution);
    assert_eq!(report.image_uri.as_deref(), Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:e1"));
    assert_eq!(report.task_definition.as_deref(), Some("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:e1"));
    assert_eq!(report.deployment_id.as_deref(), Some("d-e1"));
    let stages: Vec<_> = report.stages.iter().map(|s| (s.stage, s.started_at, s.finished_at)).collect();
    assert_eq!(
        stages,
        [
            (Stage::BUILD, at(0), Some(at(1))),
            (Stage::APPROVAL, at(1), Some(at(2))),
            (Stage::DEPLOY, at(2), Some(at(5))),
        ]
    );
    assert_eq!(report.hooks.len(), 1);
    assert_eq!(report.decision, Some(ApprovalDecision::Approved));
    assert_eq!((report.started_at, report.finished_at), (at(0), at(5)));
}

#[test]
fn every_way_a_run_ends_is_notified_and_a_pipeline_without_a_topic_notifies_nobody() {
    // GIVEN runs of a notifying pipeline: one rejected, one superseded while it waited for its approval
    let state = given(&[notified_push("e1"), build_succeeded("e1")]);
    let (_, effects) = apply(&state, &decided("e1", ApprovalDecision::Rejected), at(5));
    let announced = names(&effects);
    assert_eq!(announced[1..], ["publish(Execution Finished e1 rejected)", "notify(e1 rejected)"]);
    let state = given(&[notified_push("e1"), notified_push("e2"), build_succeeded("e1")]);
    let (_, effects) = apply(&state, &build_succeeded("e2"), at(5));
    assert!(names(&effects).contains(&"notify(e1 superseded)".to_owned()), "{:?}", names(&effects));
    // AND a pipeline without one sends no notification when a run ends
    let state = given(&[push("e1"), build_succeeded("e1")]);
    let (_, effects) = apply(&state, &decided("e1", ApprovalDecision::Rejected), at(5));
    assert!(!names(&effects).iter().any(|name| name.starts_with("notify")), "{:?}", names(&effects));
}

#[test]
fn a_hook_that_arrives_before_the_deployment_id_is_recorded_records_it() {
    // GIVEN a run that entered deploy, but whose DeploymentStarted has not been saved yet
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1")]);
    // WHEN CodeDeploy already calls a hook
    let (state, effects) = apply(&state, &hook("e1", "h1", true), at(5));
    // THEN the hook is answered and the deployment id recorded
    assert_eq!(names(&effects), ["report_hook(h1 Succeeded)"]);
    // AND the late DeploymentStarted still gives the run its task definition, which the outcome email shows
    let (state, effects) = apply(&state, &deployment_started("e1"), at(6));
    assert!(effects.is_empty(), "{:?}", names(&effects));
    let deploy = state.execution(&id("e1")).and_then(|run| run.deploy().cloned()).expect("deploy facts");
    assert_eq!(deploy.task_definition.as_deref(), Some("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:e1"));
    assert_eq!(deploy.hooks.len(), 1, "the hook's result stays");
    // AND told once more, it is a duplicate
    assert_eq!(
        transition(&state, &deployment_started("e1"), at(7)),
        Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))
    );
}

#[test]
fn a_deployment_started_event_saved_after_the_deployment_ended_still_records_its_task_definition() {
    // GIVEN a blue/green run whose deployment succeeded before its DeploymentStarted was saved
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1"), hook("e1", "h1", true), deployed("e1")]);
    assert_eq!(status(&state, "e1"), Status::Succeeded);
    // WHEN the DeploymentStarted arrives
    let (state, effects) = apply(&state, &deployment_started("e1"), at(9));
    // THEN the finished run keeps its task definition, and nothing else happens
    assert!(effects.is_empty(), "{:?}", names(&effects));
    let deploy = state.execution(&id("e1")).and_then(|run| run.deploy().cloned()).expect("deploy facts");
    assert!(deploy.task_definition.is_some());
    assert_eq!(status(&state, "e1"), Status::Succeeded);
    // AND a DeploymentStarted of another deployment is still refused as foreign
    let mut other = deployment_started("e1");
    if let Event::DeploymentStarted { deployment_id, .. } = &mut other {
        *deployment_id = "d-other".into();
    }
    assert!(matches!(transition(&state, &other, at(10)), Err(TransitionError::Finished { .. })));
    assert_eq!(
        transition(&state, &deployment_started("e1"), at(10)),
        Ok(Decision::Ignore(IgnoreReason::AlreadyFinished))
    );
}

#[test]
fn a_rolling_update_reported_complete_before_its_start_was_saved_still_rolls_back_to_the_task_definition_before() {
    // GIVEN a rolling run with one AfterRollout check that ECS reports completed before DeploymentStarted is saved
    let state = given(&[rolling_push("e1", 1), build_succeeded("e1"), approved("e1"), deployed("e1")]);
    // WHEN DeploymentStarted arrives with the task definition the service ran before
    let started = rolling_started("e1", true);
    let (state, _) = apply(&state, &started, at(6));
    // AND the AfterRollout check fails
    let (state, effects) = apply(&state, &after_rollout("e1", false), at(7));
    // THEN the service goes back to the task definition it ran before
    assert!(
        effects.iter().any(|e| matches!(e, Effect::RollBack { task_definition, .. } if task_definition == PREVIOUS)),
        "{:?}",
        names(&effects)
    );
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
}

#[test]
fn an_ecs_native_deployment_keeps_its_service_deployment_when_a_hook_result_was_saved_first() {
    // GIVEN a canary run whose stage check was recorded before DeploymentStarted
    let mut state = canary_deploying("e1");
    if let Some(deploy) = state.executions.iter_mut().find_map(|run| run.deploy_mut()) {
        deploy.service_deployment = None;
        deploy.task_definition = None;
    }
    // WHEN DeploymentStarted arrives
    let started = Event::DeploymentStarted {
        execution_id: id("e1"),
        deployment_id: "d-e1".into(),
        service_deployment: Some("arn:sd-e1".into()),
        task_definition: Some("arn:td".into()),
        previous_task_definition: None,
        in_alarm: None,
    };
    let (state, _) = apply(&state, &started, at(6));
    // THEN the run knows its service deployment, which its pauses are matched against
    let deploy = state.execution(&id("e1")).and_then(|run| run.deploy().cloned()).expect("deploy facts");
    assert_eq!(
        (deploy.service_deployment.as_deref(), deploy.task_definition.as_deref()),
        (Some("arn:sd-e1"), Some("arn:td"))
    );
}

#[test]
fn a_rejection_ends_the_run_rejected_with_who_and_why() {
    let state = given(&[push("e1"), build_succeeded("e1")]);
    let (state, effects) = apply(&state, &decided("e1", ApprovalDecision::Rejected), at(5));
    assert_eq!(status(&state, "e1"), Status::Rejected);
    assert_eq!(names(&effects), ["publish(Approval Decided e1)", "publish(Execution Finished e1 rejected)"]);
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone());
    assert_eq!(reason.as_deref(), Some("rejected by alice@example.com: looks good"));
}

#[test]
fn a_decision_after_the_deadline_is_refused_and_the_expiry_times_the_run_out() {
    // GIVEN an approval requested at minute 2, open for an hour
    let state = given(&[push("e1"), build_started("e1"), build_succeeded("e1")]);
    // WHEN someone approves at minute 63
    let late = transition(&state, &approved("e1"), at(63));
    // THEN the decision is refused and nothing changes
    assert!(matches!(late, Err(TransitionError::ApprovalExpired { .. })), "{late:?}");
    // AND an expiry before the deadline is refused, one after it times the run out
    let early = transition(&state, &Event::ApprovalExpired { execution_id: id("e1") }, at(30));
    assert!(matches!(early, Err(TransitionError::ApprovalStillOpen { .. })), "{early:?}");
    let (state, effects) = apply(&state, &Event::ApprovalExpired { execution_id: id("e1") }, at(62));
    assert_eq!(status(&state, "e1"), Status::TimedOut);
    assert_eq!(names(&effects), ["publish(Execution Finished e1 timed_out)"]);
}

#[test]
fn a_failed_or_timed_out_build_ends_the_run_with_the_phase_recorded() {
    for (failure, outcome) in [
        (BuildFailure::Failed, Status::Failed),
        (BuildFailure::Stopped, Status::Failed),
        (BuildFailure::TimedOut, Status::TimedOut),
    ] {
        // GIVEN a build in progress
        let state = given(&[push("e1"), build_started("e1")]);
        // WHEN CodeBuild says it ended without success
        let (state, effects) = apply(&state, &build_failed("e1", failure), at(5));
        // THEN the run ended, and says in which phase
        assert_eq!(status(&state, "e1"), outcome, "{failure:?}");
        assert_eq!(names(&effects), [format!("publish(Execution Finished e1 {})", outcome.name())]);
        let execution = state.execution(&id("e1")).expect("execution");
        assert_eq!(execution.build.as_ref().and_then(|b| b.phase.as_deref()), Some("BUILD"));
    }
}

#[test]
fn a_build_that_cannot_start_fails_the_run_with_the_reason() {
    let state = given(&[push("e1")]);
    let failed = Event::BuildStartFailed { execution_id: id("e1"), reason: "AccessDeniedException".into() };
    let (state, effects) = apply(&state, &failed, at(1));
    assert_eq!(status(&state, "e1"), Status::Failed);
    assert_eq!(names(&effects), ["publish(Execution Finished e1 failed)"]);
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone());
    assert_eq!(reason.as_deref(), Some("the build could not start: AccessDeniedException"));
}

#[test]
fn a_build_sluice_did_not_start_is_refused() {
    let state = given(&[push("e1"), build_started("e1")]);
    let foreign = Event::BuildProgressed { execution_id: id("e1"), build_id: "someone-else".into(), phase: None };
    assert!(matches!(transition(&state, &foreign, at(3)), Err(TransitionError::ForeignBuild { .. })));
}

#[test]
fn an_event_for_an_unknown_execution_is_refused() {
    let state = given(&[push("e1")]);
    let result = transition(&state, &build_started("nope"), at(3));
    assert!(matches!(result, Err(TransitionError::UnknownExecution { .. })), "{result:?}");
}

#[test]
fn a_success_that_arrives_before_the_build_started_event_is_applied_and_the_late_start_is_ignored() {
    // GIVEN a build whose start was not yet recorded
    let state = given(&[push("e1")]);
    // WHEN CodeBuild's SUCCEEDED arrives first
    let (state, _) = apply(&state, &build_succeeded("e1"), at(3));
    // THEN the run moved on with the build id recorded, and the late events change nothing
    assert_eq!(status(&state, "e1"), Status::Running(Stage::APPROVAL));
    assert_eq!(transition(&state, &build_started("e1"), at(4)), Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
    let progressed =
        Event::BuildProgressed { execution_id: id("e1"), build_id: "build-e1".into(), phase: Some("BUILD".into()) };
    assert_eq!(transition(&state, &progressed, at(4)), Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
}

// --- Execution modes ---------------------------------------------------------------------------------------------

#[test]
fn in_superseded_mode_a_newer_push_replaces_the_older_one_waiting_for_the_build() {
    // GIVEN e1 building and e2 waiting for the build
    let state = given(&[push("e1"), push("e2")]);
    assert_eq!(status(&state, "e2"), Status::Waiting(Stage::BUILD));
    // WHEN e3 arrives
    let (state, effects) = apply(&state, &push("e3"), at(5));
    // THEN e3 waits in e2's place and e2 is superseded; e1 builds on
    assert_eq!(status(&state, "e1"), Status::Running(Stage::BUILD));
    assert_eq!(status(&state, "e2"), Status::Superseded);
    assert_eq!(status(&state, "e3"), Status::Waiting(Stage::BUILD));
    assert_eq!(names(&effects), ["publish(Execution Started e3)", "publish(Execution Finished e2 superseded)"]);
    let reason = state.execution(&id("e2")).and_then(|e| e.reason.clone());
    assert_eq!(reason.as_deref(), Some("superseded by execution e3 (commit sha-e3)"));
}

#[test]
fn in_superseded_mode_the_waiting_run_enters_the_stage_when_it_frees_up() {
    // GIVEN e1 building, e2 waiting
    let state = given(&[push("e1"), push("e2")]);
    // WHEN e1's build succeeds
    let (state, effects) = apply(&state, &build_succeeded("e1"), at(5));
    // THEN e1 waits for approval and e2 starts building
    assert_eq!(status(&state, "e1"), Status::Running(Stage::APPROVAL));
    assert_eq!(status(&state, "e2"), Status::Running(Stage::BUILD));
    assert_eq!(names(&effects), ["request_approval(e1)", "publish(Approval Requested e1)", "start_build(e2)"]);
}

#[test]
fn in_superseded_mode_a_newer_build_withdraws_the_older_one_awaiting_approval() {
    // GIVEN e1 awaiting approval and e2 building
    let state = given(&[push("e1"), build_succeeded("e1"), push("e2")]);
    assert_eq!(status(&state, "e1"), Status::Running(Stage::APPROVAL));
    // WHEN e2's build succeeds
    let (state, effects) = apply(&state, &build_succeeded("e2"), at(10));
    // THEN e1's approval is withdrawn (e1 superseded, saying by which run) and e2 is the one the approvers decide on
    assert_eq!(status(&state, "e1"), Status::Superseded);
    assert_eq!(status(&state, "e2"), Status::Running(Stage::APPROVAL));
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone());
    assert_eq!(reason.as_deref(), Some("superseded by execution e2 (commit sha-e2) while awaiting approval"));
    assert_eq!(
        names(&effects),
        ["publish(Execution Finished e1 superseded)", "request_approval(e2)", "publish(Approval Requested e2)"]
    );
    // AND a decision through e1's old link no longer applies
    assert!(matches!(transition(&state, &approved("e1"), at(11)), Err(TransitionError::Finished { .. })));
}

#[test]
fn in_superseded_mode_a_decided_approval_is_not_withdrawn() {
    // GIVEN e1 approved and deploying, e2 building
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1"), push("e2")]);
    // WHEN e2's build succeeds THEN e2 enters approval; e1 deploys on
    let (state, _) = apply(&state, &build_succeeded("e2"), at(10));
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
    assert_eq!(status(&state, "e2"), Status::Running(Stage::APPROVAL));
}

#[test]
fn an_approval_link_decides_only_while_it_is_the_current_one() {
    // GIVEN e1 awaiting approval, whose request went out with link hash h2 (after an earlier h1)
    let sent = |hash: &str| Event::ApprovalSent {
        execution_id: id("e1"),
        personal: Vec::new(),
        token_hash: hash.into(),
        hook_id: None,
        compared: None,
    };
    let state = given(&[push("e1"), build_succeeded("e1"), sent("h1"), sent("h2")]);
    let approval = state.execution(&id("e1")).and_then(|e| e.approval().cloned()).expect("approval");
    assert_eq!(approval.token_hash.as_deref(), Some("h2"));
    // WHEN a decision comes through the older link THEN it is refused and nothing changes
    let through = |hash: &str| Event::ApprovalDecided {
        execution_id: id("e1"),
        decision: ApprovalDecision::Approved,
        approver: "alice".into(),
        comment: None,
        token_hash: Some(hash.into()),
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("Mozilla/5.0".into()),
    };
    assert!(matches!(transition(&state, &through("h1"), at(6)), Err(TransitionError::StaleApprovalLink { .. })));
    // WHEN it comes through the current link THEN it is recorded with where it came from, and announced
    let (state, effects) = apply(&state, &through("h2"), at(6));
    let approval = state.execution(&id("e1")).and_then(|e| e.approval().cloned()).expect("approval");
    assert_eq!(approval.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(approval.user_agent.as_deref(), Some("Mozilla/5.0"));
    assert!(names(&effects).contains(&"publish(Approval Decided e1)".to_owned()), "{:?}", names(&effects));
    // AND a request sent again after the decision does not replace the decided link
    assert_eq!(transition(&state, &sent("h3"), at(7)), Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
}

#[test]
fn in_queued_mode_every_run_waits_its_turn_and_all_deploy_in_order() {
    let queued = |e: &str| triggered(e, ExecutionMode::Queued, false);
    // GIVEN three pushes in queued mode
    let state = given(&[queued("e1"), queued("e2"), queued("e3")]);
    assert_eq!(status(&state, "e2"), Status::Waiting(Stage::BUILD));
    assert_eq!(status(&state, "e3"), Status::Waiting(Stage::BUILD));
    // WHEN e1 builds: e2 starts building (not e3), e3 still waits
    let (state, effects) = apply(&state, &build_succeeded("e1"), at(5));
    assert_eq!(names(&effects), ["start_deployment(e1)", "publish(Deployment Requested e1)", "start_build(e2)"]);
    assert_eq!(status(&state, "e3"), Status::Waiting(Stage::BUILD));
    // WHEN e2 builds while e1 still deploys: e2 waits for deploy, e3 builds
    let (state, effects) = apply(&state, &build_succeeded("e2"), at(6));
    assert_eq!(status(&state, "e2"), Status::Waiting(Stage::DEPLOY));
    assert_eq!(names(&effects), ["start_build(e3)"]);
    // WHEN e3 builds too: nothing is superseded, e3 queues behind e2
    let (state, effects) = apply(&state, &build_succeeded("e3"), at(7));
    assert_eq!(names(&effects), Vec::<String>::new());
    assert_eq!(status(&state, "e3"), Status::Waiting(Stage::DEPLOY));
    // WHEN e1 deploys: e2 deploys next, then e3
    let (state, effects) = apply(&state, &deployed("e1"), at(8));
    assert_eq!(
        names(&effects),
        ["publish(Execution Finished e1 succeeded)", "start_deployment(e2)", "publish(Deployment Requested e2)"]
    );
    let (state, effects) = apply(&state, &deployed("e2"), at(9));
    assert_eq!(
        names(&effects),
        ["publish(Execution Finished e2 succeeded)", "start_deployment(e3)", "publish(Deployment Requested e3)"]
    );
    assert_eq!(status(&state, "e3"), Status::Running(Stage::DEPLOY));
}

#[test]
fn in_queued_mode_a_push_beyond_the_limit_is_refused() {
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    for n in 0..=MAX_WAITING {
        state = apply(&state, &triggered(&format!("e{n}"), ExecutionMode::Queued, false), at(0)).0;
    }
    assert_eq!(state.waiting(), MAX_WAITING);
    let refused = transition(&state, &triggered("one-too-many", ExecutionMode::Queued, false), at(1));
    assert!(matches!(refused, Err(TransitionError::QueueFull { limit: MAX_WAITING, .. })), "{refused:?}");
}

#[test]
fn a_failed_run_frees_its_stage_for_the_next() {
    let state = given(&[push("e1"), push("e2")]);
    let (state, effects) = apply(&state, &build_failed("e1", BuildFailure::Failed), at(5));
    assert_eq!(names(&effects), ["publish(Execution Finished e1 failed)", "start_build(e2)"]);
    assert_eq!(status(&state, "e2"), Status::Running(Stage::BUILD));
}

#[test]
fn only_the_most_recently_finished_runs_are_kept_in_the_state() {
    let mut events = Vec::new();
    for n in 0..(RETAINED_FINISHED + 3) {
        let e = format!("e{n}");
        events.extend([push(&e), build_failed(&e, BuildFailure::Failed)]);
    }
    let state = given(&events);
    assert_eq!(state.executions.len(), RETAINED_FINISHED);
    assert_eq!(state.executions.first().map(|e| e.id.0.as_str()), Some("e3"));
    assert_eq!(state.next_seq, (RETAINED_FINISHED + 3) as u64 + 1);
}

#[test]
fn a_run_that_ends_is_kept_for_the_save_that_records_its_end_even_when_the_writers_clock_is_behind() {
    // GIVEN a full history of finished runs, the newest finished at minute 20, and e9 waiting for its build
    let mut events = Vec::new();
    for n in 0..RETAINED_FINISHED {
        let e = format!("e{n}");
        events.extend([push(&e), build_failed(&e, BuildFailure::Failed)]);
    }
    events.extend([push("e8"), push("e9")]);
    let state = given(&events);
    assert_eq!(status(&state, "e9"), Status::Waiting(Stage::BUILD));
    // WHEN a writer that read the clock at minute 1 (it retried after a conflict) supersedes e9
    let (state, _) = apply(&state, &push("e10"), at(1));
    // THEN e9 is still in the state, superseded, so that the save writes its end to its item
    assert_eq!(status(&state, "e9"), Status::Superseded);
    // AND the next transition prunes it as usual
    let (state, _) = apply(&state, &build_failed("e8", BuildFailure::Failed), at(30));
    assert!(state.execution(&id("e9")).is_none());
    assert_eq!(state.executions.iter().filter(|e| e.status.is_finished()).count(), RETAINED_FINISHED);
}

// --- Duplicates and out-of-order events, stage by stage -----------------------------------------------------------

/// Where an execution `e1` can be, by the events that took it there.
fn stages() -> Vec<(&'static str, Vec<Event>)> {
    vec![
        ("waiting for build", vec![push("e0"), push("e1")]),
        ("building", vec![push("e1"), build_started("e1")]),
        ("awaiting approval", vec![push("e1"), build_started("e1"), build_succeeded("e1")]),
        ("deploying", vec![push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1")]),
        (
            "succeeded",
            vec![push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1"), deployed("e1")],
        ),
        ("rejected", vec![push("e1"), build_succeeded("e1"), decided("e1", ApprovalDecision::Rejected)]),
    ]
}

#[derive(Debug, PartialEq)]
enum Expect {
    Applied,
    Ignored(IgnoreReason),
    Refused,
}

#[test]
fn every_stage_answers_every_event_as_the_table_says() {
    use Expect::{Applied, Ignored, Refused};
    use IgnoreReason::{AlreadyFinished, AlreadyPastStage, DuplicateEvent};
    // Rows: the event. Columns: the stages of `stages()`, in order.
    let table: Vec<(Event, [Expect; 6])> = vec![
        (
            push("e1"),
            [
                Ignored(DuplicateEvent),
                Ignored(DuplicateEvent),
                Ignored(DuplicateEvent),
                Ignored(DuplicateEvent),
                Ignored(DuplicateEvent),
                Ignored(DuplicateEvent),
            ],
        ),
        (
            build_started("e1"),
            [
                Refused,
                Ignored(DuplicateEvent),
                Ignored(AlreadyPastStage),
                Ignored(AlreadyPastStage),
                Ignored(AlreadyFinished),
                Ignored(AlreadyFinished),
            ],
        ),
        (
            build_succeeded("e1"),
            [
                Refused,
                Applied,
                Ignored(AlreadyPastStage),
                Ignored(AlreadyPastStage),
                Ignored(AlreadyFinished),
                Ignored(AlreadyFinished),
            ],
        ),
        (
            build_failed("e1", BuildFailure::Failed),
            [
                Refused,
                Applied,
                Ignored(AlreadyPastStage),
                Ignored(AlreadyPastStage),
                Ignored(AlreadyFinished),
                Ignored(AlreadyFinished),
            ],
        ),
        (approved("e1"), [Refused, Refused, Applied, Ignored(DuplicateEvent), Ignored(DuplicateEvent), Refused]),
        (
            decided("e1", ApprovalDecision::Rejected),
            [Refused, Refused, Applied, Refused, Refused, Ignored(DuplicateEvent)],
        ),
        (
            deployment_started("e1"),
            [Refused, Refused, Refused, Ignored(DuplicateEvent), Ignored(AlreadyFinished), Refused],
        ),
        (deployed("e1"), [Refused, Refused, Refused, Applied, Ignored(AlreadyFinished), Refused]),
        (deploy_failed("e1", true), [Refused, Refused, Refused, Applied, Ignored(AlreadyFinished), Refused]),
        (hook("e1", "h9", true), [Refused, Refused, Refused, Applied, Applied, Refused]),
        (ordered("e1"), [Refused, Refused, Refused, Applied, Refused, Refused]),
    ];
    for (event, row) in &table {
        for ((stage, events), expected) in stages().iter().zip(row) {
            // GIVEN e1 at `stage`, WHEN `event` arrives, THEN the decision is as the table says
            let state = given(events);
            let result = transition(&state, event, at(30));
            let got = match &result {
                Ok(Decision::Apply { .. }) => Applied,
                Ok(Decision::Ignore(reason)) => Ignored(*reason),
                Err(_) => Refused,
            };
            assert_eq!(&got, expected, "{} at {stage}: {result:?}", event.name());
        }
    }
}

#[test]
fn an_event_applied_twice_has_its_effects_once() {
    // Each (history, event) pair: applying the event gives effects, applying it again gives none and no change.
    let cases: Vec<(Vec<Event>, Event)> = vec![
        (vec![], push("e1")),
        (vec![push("e1")], build_succeeded("e1")),
        (vec![push("e1"), build_succeeded("e1")], approved("e1")),
        (vec![push("e1"), build_succeeded("e1")], decided("e1", ApprovalDecision::Rejected)),
        (vec![push("e1"), build_succeeded("e1"), approved("e1")], hook("e1", "h1", true)),
        (vec![push("e1"), build_succeeded("e1"), approved("e1")], deployed("e1")),
        (vec![push("e1"), build_succeeded("e1"), approved("e1")], deploy_failed("e1", false)),
        (vec![push("e1")], build_failed("e1", BuildFailure::TimedOut)),
        (vec![push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1")], ordered("e1")),
    ];
    for (history, event) in cases {
        let state = given(&history);
        let (state, effects) = apply(&state, &event, at(20));
        assert!(!effects.is_empty(), "{} had no effect", event.name());
        let again = transition(&state, &event, at(21));
        assert!(matches!(again, Ok(Decision::Ignore(_))), "{} applied twice: {again:?}", event.name());
    }
}

#[test]
fn the_state_survives_a_json_round_trip() {
    let state = given(&[push("e1"), build_succeeded("e1"), push("e2"), approved("e1"), hook("e1", "h1", true)]);
    let json = serde_json::to_string(&state).expect("serializes");
    let back: PipelineState = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, state);
}

/// A run of an `ecs_canary` pipeline (5 %) that asks for an approval before each production step, deploying.
fn canary_deploying(execution: &str) -> PipelineState {
    let mut event = push(execution);
    if let Event::Triggered { plan, .. } = &mut event {
        let canary = crate::definitions::TrafficShift::Canary { tenths: 50, bake_time_minutes: 10 };
        *plan.target_mut() = DeployTarget::EcsNative(crate::contract::testing::ecs_native_asking(canary, 30));
    }
    let started = Event::DeploymentStarted {
        execution_id: id(execution),
        deployment_id: format!("d-{execution}"),
        service_deployment: Some(format!("arn:sd-{execution}")),
        task_definition: None,
        previous_task_definition: None,
        in_alarm: None,
    };
    given(&[event, build_succeeded(execution), approved(execution), started])
}

fn paused(execution: &str, hook_id: &str) -> Event {
    Event::DeploymentPaused {
        execution_id: id(execution),
        service_deployment: format!("arn:sd-{execution}"),
        hook_id: hook_id.into(),
        stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
        expires_at: Some(at(60)),
        timeout_action: None,
    }
}

fn decided_at_link(execution: &str, decision: ApprovalDecision, hash: &str) -> Event {
    match decided(execution, decision) {
        Event::ApprovalDecided { execution_id, decision, approver, comment, source_ip, user_agent, .. } => {
            let token_hash = Some(hash.to_owned());
            Event::ApprovalDecided { execution_id, decision, approver, comment, token_hash, source_ip, user_agent }
        }
        other => other,
    }
}

/// The canary run paused after its canary step, its approval request sent with link `hash-2`.
fn canary_awaiting(execution: &str) -> PipelineState {
    let state = canary_deploying(execution);
    let (state, _) = apply(&state, &paused(execution, "pause-1"), at(10));
    let (state, _) = apply(&state, &paused(execution, "pause-2"), at(20));
    let sent = Event::ApprovalSent {
        compared: None,
        personal: Vec::new(),
        execution_id: id(execution),
        token_hash: "hash-2".into(),
        hook_id: Some("pause-2".into()),
    };
    apply(&state, &sent, at(21)).0
}

#[test]
fn a_canary_pause_before_any_production_traffic_is_continued_and_the_one_after_the_canary_step_asks_the_approvers() {
    // GIVEN a canary run deploying
    let state = canary_deploying("e1");
    // WHEN ECS pauses before the first step: nothing has moved yet, so sluice continues it without asking
    let (state, effects) = apply(&state, &paused("e1", "pause-1"), at(10));
    assert_eq!(names(&effects)[0], "continue(pause-1 continue)");
    assert!(!names(&effects).iter().any(|name| name.starts_with("request_approval")), "{:?}", names(&effects));
    // WHEN it pauses again, after the canary step: the approvers are asked, shown the 5 % that moved
    let (state, effects) = apply(&state, &paused("e1", "pause-2"), at(20));
    let Some(Effect::RequestApproval { topic_arn, expires_at, notice, hook_id, .. }) = effects.first() else {
        panic!("{:?}", names(&effects))
    };
    assert_eq!(topic_arn, "arn:aws:sns:eu-west-1:123456789012:approvers");
    assert_eq!((*expires_at, hook_id.as_deref()), (at(60), Some("pause-2")));
    let pause = notice.pause.as_ref().expect("the pause's facts");
    assert_eq!(
        (pause.stage.as_str(), pause.shifted_tenths, pause.timeout_action),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 50, PauseAction::Rollback)
    );
    assert!(effects.iter().any(|e| matches!(e, Effect::Publish(SluiceEvent::ApprovalRequested(r)) if r.pause_stage.as_deref() == Some("PRE_PRODUCTION_TRAFFIC_SHIFT"))));
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
    // AND the same pause told again changes nothing
    assert_eq!(
        transition(&state, &paused("e1", "pause-2"), at(21)),
        Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))
    );
}

#[test]
fn an_approval_at_a_pause_continues_the_deployment_and_the_run_succeeds_when_ecs_completes_it() {
    // GIVEN the canary run paused after its canary step, its link sent
    let state = canary_awaiting("e1");
    // WHEN the approver approves through that link
    let (state, effects) = apply(&state, &decided_at_link("e1", ApprovalDecision::Approved, "hash-2"), at(25));
    // THEN the deployer continues the deployment, and the run still deploys
    let continued = effects.iter().find_map(|e| match e {
        Effect::ContinueDeployment { service_deployment, hook_id, action, .. } => {
            Some((service_deployment.as_str(), hook_id.as_str(), *action))
        }
        _ => None,
    });
    assert_eq!(continued, Some(("arn:sd-e1", "pause-2", PauseAction::Continue)));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Publish(SluiceEvent::ApprovalDecided(d)) if d.pause_stage.is_some()))
    );
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
    let execution = state.execution(&id("e1")).expect("e1");
    let decided = execution.deploy().and_then(|d| d.pauses.last()).and_then(|p| p.approval.as_ref());
    assert_eq!(decided.and_then(|a| a.approver.as_deref()), Some("alice@example.com"));
    // AND the stage approval's own decision stands apart
    assert_eq!(execution.approval().and_then(|a| a.decision), Some(ApprovalDecision::Approved));
    let (state, _) = apply(&state, &deployed("e1"), at(40));
    assert_eq!(status(&state, "e1"), Status::Succeeded);
}

#[test]
fn a_rejection_at_a_pause_rolls_the_deployment_back_and_the_run_names_who_rolled_it_back_where() {
    let state = canary_awaiting("e1");
    let (state, effects) = apply(&state, &decided_at_link("e1", ApprovalDecision::Rejected, "hash-2"), at(25));
    assert!(names(&effects).contains(&"continue(pause-2 rollback)".to_owned()), "{:?}", names(&effects));
    // A second click is refused: the decision stands
    let again = transition(&state, &decided_at_link("e1", ApprovalDecision::Approved, "hash-2"), at(26));
    assert!(matches!(again, Err(TransitionError::AlreadyDecided { .. })), "{again:?}");
    let (state, _) = apply(&state, &deploy_failed("e1", true), at(30));
    let execution = state.execution(&id("e1")).expect("e1");
    assert_eq!(execution.status, Status::RolledBack);
    let reason = execution.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(
            "rolled back by alice@example.com at the PRE_PRODUCTION_TRAFFIC_SHIFT pause (5% of production on the new \
             revision): looks good; "
        ),
        "{reason}"
    );
}

#[test]
fn nobody_deciding_at_a_pause_lets_ecs_time_it_out_and_the_run_says_the_timeout_rolled_it_back() {
    let state = canary_awaiting("e1");
    // A decision after the pause's deadline is refused: ECS has taken the timeout action
    let late = transition(&state, &decided_at_link("e1", ApprovalDecision::Approved, "hash-2"), at(61));
    assert!(matches!(late, Err(TransitionError::ApprovalExpired { .. })), "{late:?}");
    let (state, _) = apply(&state, &deploy_failed("e1", true), at(62));
    let reason = state.execution(&id("e1")).and_then(|e| e.reason.clone()).unwrap_or_default();
    assert!(
        reason
            .starts_with("rolled back by the pause timeout: nobody decided at the PRE_PRODUCTION_TRAFFIC_SHIFT pause"),
        "{reason}"
    );
}

#[test]
fn a_pause_where_the_pipeline_asks_nothing_or_of_another_deployment_is_refused_and_changes_nothing() {
    let state = canary_deploying("e1");
    let mut foreign = paused("e1", "pause-1");
    if let Event::DeploymentPaused { service_deployment, .. } = &mut foreign {
        *service_deployment = "arn:sd-other".into();
    }
    assert!(matches!(transition(&state, &foreign, at(10)), Err(TransitionError::ForeignDeployment { .. })));
    // A blue/green run never pauses: its pause is refused too
    let bg = given(&[push("e2"), build_succeeded("e2"), approved("e2"), deployment_started("e2")]);
    assert!(matches!(transition(&bg, &paused("e2", "p"), at(10)), Err(TransitionError::UnplannedPause { .. })));
}

#[test]
fn refusals_of_what_sluice_could_not_do_want_attention_and_late_or_repeated_events_do_not() {
    // A blue/green run never pauses; a build or deployment not the run's own is not sluice's
    let bg = given(&[push("e2"), build_succeeded("e2"), approved("e2"), deployment_started("e2")]);
    let unplanned = transition(&bg, &paused("e2", "p"), at(10)).expect_err("refused");
    let foreign_build = transition(
        &given(&[push("e1"), build_started("e1")]),
        &Event::BuildStarted { execution_id: id("e1"), build_id: "someone-elses".into() },
        at(2),
    )
    .expect_err("refused");
    for error in [&unplanned, &foreign_build] {
        assert!(error.wants_attention(), "{error}");
    }
    // An approval after its deadline or a decision on an ended run is the ordinary course of things
    let state = given(&[push("e1"), build_succeeded("e1")]);
    let late = transition(&state, &approved("e1"), at(24 * 60 * 30)).expect_err("refused");
    let ended = transition(&given(&[push("e3"), build_failed("e3", BuildFailure::Failed)]), &approved("e3"), at(5))
        .expect_err("refused");
    for error in [&late, &ended] {
        assert!(!error.wants_attention(), "{error}");
    }
}

#[test]
fn a_pause_is_the_pipelines_own_whatever_lifecycle_stage_ecs_reports_for_the_deployment_meanwhile() {
    // ECS's ServiceDeploymentLifecycleStage has no PRE_PRODUCTION_TRAFFIC_SHIFT: a deployment paused there reports
    // another stage, say the one before or the one it is about to enter.
    for reported in ["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", ""] {
        let with_stage = |hook: &str| match paused("e1", hook) {
            Event::DeploymentPaused {
                execution_id, service_deployment, hook_id, expires_at, timeout_action, ..
            } => {
                let stage = reported.to_owned();
                Event::DeploymentPaused { execution_id, service_deployment, hook_id, stage, expires_at, timeout_action }
            }
            other => other,
        };
        // GIVEN a canary run deploying
        let state = canary_deploying("e1");
        // WHEN ECS pauses before the first step, then after the canary step, reporting `reported` each time
        let (state, effects) = apply(&state, &with_stage("pause-1"), at(10));
        assert_eq!(names(&effects)[0], "continue(pause-1 continue)", "{reported}");
        let (state, effects) = apply(&state, &with_stage("pause-2"), at(20));
        // THEN the approvers are asked at the pipeline's pause, shown the 5 % that moved
        let Some(Effect::RequestApproval { notice, hook_id, .. }) = effects.first() else {
            panic!("{reported}: {:?}", names(&effects))
        };
        let pause = notice.pause.as_ref().expect("the pause's facts");
        assert_eq!((pause.stage.as_str(), pause.shifted_tenths), ("PRE_PRODUCTION_TRAFFIC_SHIFT", 50), "{reported}");
        assert_eq!(hook_id.as_deref(), Some("pause-2"));
        let recorded = state.execution(&id("e1")).and_then(|run| run.deploy().cloned()).expect("deploy facts");
        assert!(recorded.pauses.iter().all(|p| p.stage == "PRE_PRODUCTION_TRAFFIC_SHIFT"));
    }
}

#[test]
fn a_linear_shift_has_moved_one_step_more_at_each_pause_before_a_step() {
    use crate::definitions::TrafficShift;
    let linear = TrafficShift::Linear { step_tenths: 250, step_bake_time_minutes: 5 };
    let moved: Vec<u32> = (0..6).map(|n| linear.production_at_pause("PRE_PRODUCTION_TRAFFIC_SHIFT", n)).collect();
    assert_eq!(moved, [0, 250, 500, 750, 1000, 1000]);
    assert_eq!(linear.production_at_pause("POST_TEST_TRAFFIC_SHIFT", 0), 0);
    assert_eq!(TrafficShift::BlueGreen.production_at_pause("POST_PRODUCTION_TRAFFIC_SHIFT", 0), 1000);
}

#[test]
fn an_ordered_rollback_stops_the_deployment_and_the_run_ends_rolled_back_naming_the_operator() {
    // GIVEN a canary run deploying
    let state = canary_deploying("e1");
    // WHEN an operator orders it rolled back
    let (state, effects) = apply(&state, &ordered("e1"), at(10));
    // THEN its service deployment is stopped, and the order is on the run
    assert_eq!(names(&effects), ["stop(arn:sd-e1)"]);
    let deploy = state.execution(&id("e1")).and_then(|e| e.deploy().cloned()).expect("deploy facts");
    let order = deploy.rollback_ordered.clone().expect("the order");
    assert_eq!((order.by.as_str(), order.at), ("arn:aws:iam::123456789012:user/carol", at(10)));
    // AND the hooks ECS runs for the rollback are the rollback's
    assert!(deploy.rolling_back(at(11)));
    // AND once ECS reports it rolled back, the run ends rolled_back, naming the operator before what ECS said
    let (state, _) = apply(&state, &deploy_failed("e1", true), at(12));
    let execution = state.execution(&id("e1")).expect("e1");
    assert_eq!(execution.status, Status::RolledBack);
    assert_eq!(
        execution.reason.as_deref(),
        Some(
            "rolled back by arn:aws:iam::123456789012:user/carol (sluice rollback): BeforeAllowTraffic check \
             failed"
        )
    );
}

#[test]
fn a_rollback_is_refused_where_sluice_has_nothing_to_stop() {
    let refused = |state: &PipelineState, execution: &str| match transition(state, &ordered(execution), at(30)) {
        Err(TransitionError::CannotRollBack { why, .. }) => why,
        other => panic!("not refused: {other:?}"),
    };
    // A deployment not started yet
    let starting = given(&[push("e1"), build_succeeded("e1"), approved("e1")]);
    assert_eq!(refused(&starting, "e1"), "its deployment has not started yet");
    // A rolling update
    let rolling = rolled_out("e2", 1, true);
    assert!(refused(&rolling, "e2").starts_with("a rolling update is not stopped by sluice"));
    // A deployment already rolling back: its checks failed
    let failing =
        given(&[push("e3"), build_succeeded("e3"), approved("e3"), deployment_started("e3"), hook("e3", "h1", false)]);
    assert_eq!(refused(&failing, "e3"), "it is already rolling back");
    // A blue/green deployment is stopped by its CodeDeploy id
    let blue_green = given(&[push("e4"), build_succeeded("e4"), approved("e4"), deployment_started("e4")]);
    assert_eq!(names(&apply(&blue_green, &ordered("e4"), at(30)).1), ["stop(d-e4)"]);
}

/// Run `execution`, ordered by an operator to deploy what run `of` built (in `state`).
fn redeployed(state: &PipelineState, execution: &str, of: &str) -> Event {
    let earlier = state.execution(&id(of)).expect("the earlier run");
    Event::Redeployed {
        execution_id: id(execution),
        source: earlier.source.clone(),
        plan: Box::new(earlier.plan.clone()),
        mode: ExecutionMode::Superseded,
        build: earlier.build.clone().expect("its build"),
        ordered: format!("rollback to run #{} ({of}) by carol", earlier.seq),
        stage: None,
        only: false,
    }
}

#[test]
fn a_run_an_operator_orders_with_an_earlier_build_skips_build_and_approval_and_deploys_that_build() {
    // GIVEN e1 built, approved and shipped
    let state = given(&[push("e1"), build_started("e1"), build_succeeded("e1"), approved("e1")]);
    let state = apply(&state, &deployment_started("e1"), at(4)).0;
    let state = apply(&state, &deployed("e1"), at(5)).0;
    assert_eq!(status(&state, "e1"), Status::Succeeded);

    // WHEN an operator orders r2 with e1's build
    let (state, effects) = apply(&state, &redeployed(&state, "r2", "e1"), at(6));

    // THEN r2 deploys e1's image and artifacts at once, with no build or approval of its own
    assert_eq!(status(&state, "r2"), Status::Running(Stage::DEPLOY));
    let deployment = effects.iter().find_map(|effect| match effect {
        Effect::StartDeployment { image_uri, artifacts, .. } => Some((image_uri.clone(), artifacts.clone())),
        _ => None,
    });
    let e1 = state.execution(&id("e1")).and_then(|run| run.build.clone()).expect("e1's build");
    assert_eq!(deployment, Some((e1.image_uri.clone(), e1.artifacts.clone())));
    let r2 = state.execution(&id("r2")).expect("r2");
    assert!(r2.approval().is_none());
    assert_eq!(r2.ordered.as_deref(), Some("rollback to run #1 (e1) by carol"));
    assert_eq!(r2.seq, 2);

    // AND ordering it again changes nothing
    assert!(matches!(
        transition(&state, &redeployed(&state, "r2", "e1"), at(7)),
        Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))
    ));
}

#[test]
fn a_redeploy_waits_for_the_run_deploying_and_one_without_a_finished_build_is_refused() {
    // GIVEN e1 shipped and e2 deploying
    let state = given(&[push("e1"), build_started("e1"), build_succeeded("e1"), approved("e1")]);
    let state = apply(&state, &deployment_started("e1"), at(4)).0;
    let state = apply(&state, &deployed("e1"), at(5)).0;
    let state = apply(&state, &push("e2"), at(6)).0;
    let state = apply(&state, &build_started("e2"), at(7)).0;
    let state = apply(&state, &build_succeeded("e2"), at(8)).0;
    let state = apply(&state, &approved("e2"), at(9)).0;
    assert_eq!(status(&state, "e2"), Status::Running(Stage::DEPLOY));

    // WHEN a redeploy of e1 is ordered, THEN it waits for e2 to leave the deploy stage
    let (state, effects) = apply(&state, &redeployed(&state, "r3", "e1"), at(10));
    assert_eq!(status(&state, "r3"), Status::Waiting(Stage::DEPLOY));
    assert!(!names(&effects).iter().any(|name| name.starts_with("start_deployment")), "{:?}", names(&effects));

    // AND a build that never finished cannot be redeployed
    let mut unfinished = redeployed(&state, "r4", "e1");
    if let Event::Redeployed { build, .. } = &mut unfinished {
        build.finished_at = None;
    }
    assert!(matches!(transition(&state, &unfinished, at(11)), Err(TransitionError::NothingBuilt { .. })));
}

/// A push of `execution` to a pipeline whose runs are shown on GitHub.
fn shown_push(execution: &str) -> Event {
    let mut event = push(execution);
    if let Event::Triggered { plan, .. } = &mut event {
        plan.github = Some(crate::definitions::GitHubReport { environment: "production".into() });
    }
    event
}

#[test]
fn a_run_shown_on_github_is_reported_when_it_starts_when_it_deploys_and_when_it_ends() {
    let state = PipelineState::new("web", ExecutionMode::Superseded);
    let (state, effects) = apply(&state, &shown_push("e1"), at(0));
    assert_eq!(names(&effects), ["publish(Execution Started e1)", "github(e1)", "start_build(e1)"]);
    let (state, effects) = apply(&state, &build_succeeded("e1"), at(1));
    assert!(!names(&effects).contains(&"github(e1)".to_owned()), "waiting for approval is still pending: {effects:?}");
    let (state, effects) = apply(&state, &approved("e1"), at(2));
    assert!(names(&effects).contains(&"github(e1)".to_owned()), "deploying: {effects:?}");
    let state = apply(&state, &deployment_started("e1"), at(3)).0;
    let (_, effects) = apply(&state, &deployed("e1"), at(4));
    assert_eq!(names(&effects).iter().filter(|name| *name == "github(e1)").count(), 1, "ended: {effects:?}");
}

#[test]
fn a_run_not_shown_on_github_is_never_reported_there() {
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1")]);
    let (_, effects) = apply(&state, &deployed("e1"), at(9));
    let all: Vec<String> = names(&effects);
    assert!(all.iter().all(|name| !name.starts_with("github")), "{all:?}");
}

#[test]
fn a_superseded_run_is_reported_once_with_the_run_that_superseded_it() {
    // GIVEN e1 waiting for its approval
    let state = given(&[shown_push("e1"), build_succeeded("e1")]);
    let state = apply(&state, &shown_push("e2"), at(3)).0;
    // WHEN e2's build succeeds, superseding e1 at the approval stage
    let (state, effects) = apply(&state, &build_succeeded("e2"), at(4));
    assert_eq!(status(&state, "e1"), Status::Superseded);
    assert_eq!(names(&effects).iter().filter(|name| *name == "github(e1)").count(), 1, "{effects:?}");
}

#[test]
fn the_github_deployment_is_recorded_once_even_after_the_run_ended() {
    let state = given(&[shown_push("e1"), build_failed("e1", BuildFailure::Failed)]);
    assert_eq!(status(&state, "e1"), Status::Failed);
    let created = Event::GitHubDeploymentCreated { execution_id: id("e1"), deployment: 42, stage: None };
    let (state, effects) = apply(&state, &created, at(5));
    assert!(effects.is_empty(), "{effects:?}");
    let shown = state.execution(&id("e1")).map(|run| run.github_deployments.clone()).unwrap_or_default();
    assert_eq!(shown, [crate::pipeline::GitHubDeployment { stage: Stage::DEPLOY, deployment: 42 }]);
    let again = Event::GitHubDeploymentCreated { execution_id: id("e1"), deployment: 43, stage: None };
    assert!(matches!(transition(&state, &again, at(6)), Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))));
}

/// A pipeline's state as sluice wrote it before runs recorded when they were pushed (stop 24): a canary run paused
/// for approval, a finished blue/green run with its hook and push history, and an effect in the outbox.
const STORED_BEFORE_PUSH_TIMES: &str = include_str!("../../../tests/fixtures/stored-pipeline-state.json");

#[test]
fn a_state_stored_by_the_previous_version_still_reads_and_moves_on() {
    // GIVEN the state as the previous version stored it
    let state: PipelineState = serde_json::from_str(STORED_BEFORE_PUSH_TIMES).expect("the stored state reads");
    assert_eq!(status(&state, "e1"), Status::Running(Stage::DEPLOY));
    assert_eq!(status(&state, "e2"), Status::Succeeded);
    assert_eq!(state.refs.len(), 1);
    assert!(!state.pending.is_empty(), "the effects waiting in the outbox");
    // WHEN the approver decides at the pause it asked about
    let (state, effects) = apply(&state, &decided_at_link("e1", ApprovalDecision::Approved, "hash-2"), at(30));
    // THEN the deployment continues, as it would have then
    assert!(names(&effects).iter().any(|name| name.starts_with("continue(pause-2")), "{:?}", names(&effects));
    // AND what this version writes reads again
    let again: PipelineState =
        serde_json::from_str(&serde_json::to_string(&state).expect("serialises")).expect("reads");
    assert_eq!(again, state);
}

fn timed_out(execution: &str) -> Event {
    Event::DeploymentTimedOut { execution_id: id(execution) }
}

#[test]
fn a_deployment_past_its_deadline_fails_the_run_saying_so_and_is_stopped_though_the_run_has_ended() {
    // GIVEN a blue/green run deploying since minute 2 (CodeDeploy may wait 25 minutes for its five hooks)
    let state = given(&[push("e1"), build_succeeded("e1"), approved("e1"), deployment_started("e1")]);
    // WHEN the reconciler says it timed out before its deadline (2 + 25 + 60 minutes), THEN that is refused
    assert!(matches!(transition(&state, &timed_out("e1"), at(80)), Err(TransitionError::DeadlineNotReached { .. })));
    // WHEN it says so after it
    let (mut state, effects) = apply(&state, &timed_out("e1"), at(90));
    // THEN the run fails, saying why, and its deployment is stopped and rolled back
    assert_eq!(status(&state, "e1"), Status::Failed);
    let reason = state.execution(&id("e1")).and_then(|run| run.reason.clone()).unwrap_or_default();
    assert_eq!(
        reason,
        "the deployment did not finish within 1h 25m (25m its strategy may wait, and deploy.timeout 1h); sluice \
         stopped it and had it rolled back"
    );
    assert!(matches!(effects.first(), Some(Effect::StopDeployment { deployment, .. }) if deployment == "d-e1"));
    // AND the stop stays in the outbox, though its run no longer holds the deploy stage
    state.enqueue(effects, 9);
    state.drop_moot();
    assert!(state.pending.iter().any(|p| matches!(p.effect, Effect::StopDeployment { .. })), "{:?}", state.pending);
    // AND CodeDeploy's word on the stopped deployment, or the timeout told again, changes nothing
    assert_eq!(
        transition(&state, &deploy_failed("e1", true), at(91)),
        Ok(Decision::Ignore(IgnoreReason::AlreadyFinished))
    );
    assert_eq!(transition(&state, &timed_out("e1"), at(92)), Ok(Decision::Ignore(IgnoreReason::AlreadyFinished)));
}

#[test]
fn a_rolling_update_that_never_settles_fails_at_its_deadline_and_the_service_goes_back_to_its_task_definition() {
    // GIVEN a rolling update without checks (ECS's circuit breaker off: no event will end it), with a shorter timeout
    let mut push = rolling_push("e1", 0);
    if let Event::Triggered { plan, .. } = &mut push {
        *plan.timeout_mut() = Some(10);
    }
    let started = rolling_started("e1", true);
    let state = given(&[push, build_succeeded("e1"), approved("e1"), started]);
    // WHEN its deadline (2 + 5 + 10 minutes) has passed
    let (state, effects) = apply(&state, &timed_out("e1"), at(17));
    // THEN the run fails, and the service goes back to the task definition it ran before
    assert_eq!(status(&state, "e1"), Status::Failed);
    assert!(
        effects.iter().any(|e| matches!(e, Effect::RollBack { task_definition, .. } if task_definition == PREVIOUS)),
        "{:?}",
        names(&effects)
    );
    let reason = state.execution(&id("e1")).and_then(|run| run.reason.clone()).unwrap_or_default();
    assert!(reason.starts_with("the deployment did not finish within 15m (5m its strategy may wait"), "{reason}");
    assert!(reason.ends_with(&format!("sluice put the service back on {PREVIOUS}")), "{reason}");
}

/// A push to main from `before` to `after` at 12:00:00 (GitHub's `pushed_at`), with what GitHub's compare said.
fn pushed_at_noon(execution: &str, before: &str, after: &str, compared: Option<(&str, CommitOrder)>) -> Event {
    let mut event = push(execution);
    if let Event::Triggered { source, .. } = &mut event {
        source.before = before.into();
        source.commit = after.into();
        source.pushed_at = Some(at(0));
        source.compared = compared.map(|(head, order)| super::super::Compared { head: head.into(), order });
    }
    event
}

#[test]
fn a_push_made_in_the_same_second_as_the_head_and_not_chained_to_it_waits_for_githubs_comparison_of_the_two() {
    // GIVEN d ran for main, pushed at 12:00:00
    let state = given(&[pushed_at_noon("e1", "c", "d", None)]);
    // WHEN b arrives, pushed in the same second, with no comparison or one made against another head
    for compared in [None, Some(("x", CommitOrder::Behind))] {
        let refused = transition(&state, &pushed_at_noon("e2", "a", "b", compared), at(1));
        // THEN it is refused, naming the head to compare with, and the state is unchanged
        assert_eq!(
            refused,
            Err(TransitionError::PushOrderUnknown {
                git_ref: "refs/heads/main".into(),
                head: "d".into(),
                commit: "b".into()
            })
        );
    }
    // WHEN it comes with GitHub's comparison against d: behind or the same commit skip it; ahead, diverged or
    // unknown run it
    for (order, runs) in [
        (CommitOrder::Behind, false),
        (CommitOrder::Identical, false),
        (CommitOrder::Ahead, true),
        (CommitOrder::Diverged, true),
        (CommitOrder::Unknown, true),
    ] {
        let (next, _) = apply(&state, &pushed_at_noon("e2", "a", "b", Some(("d", order))), at(1));
        assert_eq!(status(&next, "e2") != Status::Skipped, runs, "{order:?}");
    }
    // AND a push chained to d, or pushed a second later, is never compared
    let (next, _) = apply(&state, &pushed_at_noon("e3", "d", "e", None), at(1));
    assert_ne!(status(&next, "e3"), Status::Skipped);
    let mut later = pushed_at_noon("e4", "a", "f", None);
    if let Event::Triggered { source, .. } = &mut later {
        source.pushed_at = Some(at(0) + TimeDelta::seconds(1));
    }
    assert_ne!(status(&apply(&state, &later, at(1)).0, "e4"), Status::Skipped);
}

/// The event's detail-type and the pipeline stage it names; `None` for an event that names none.
fn stage_of(event: &SluiceEvent) -> Option<(&'static str, Option<Stage>)> {
    let stage = match event {
        SluiceEvent::ExecutionStarted(e) => e.stage,
        SluiceEvent::ApprovalRequested(e) => e.stage,
        SluiceEvent::ApprovalDecided(e) => e.stage,
        SluiceEvent::DeploymentRequested(e) => e.stage,
        SluiceEvent::ChecksRequested(e) => e.stage,
        SluiceEvent::RollbackRequested(e) => e.stage,
        SluiceEvent::TestRequested(e) => Some(e.stage),
        SluiceEvent::SoakEnded(e) => Some(e.stage),
        SluiceEvent::ExecutionFinished(e) => e.stage,
        SluiceEvent::DeploymentPaused(_) | SluiceEvent::EffectsDue(_) => return None,
    };
    Some((event.detail_type(), stage))
}

/// The stage each event `effects` publish names, by detail-type.
fn stages_named(effects: &[Effect]) -> Vec<(&'static str, Option<Stage>)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Publish(event) => stage_of(event),
            _ => None,
        })
        .collect()
}

#[test]
fn every_event_a_run_publishes_names_its_stage_and_a_deployment_its_github_environment() {
    let mut events = crate::contract::testing::shipped("e1");
    if let Some(Event::Triggered { plan, .. }) = events.first_mut() {
        plan.github = Some(crate::definitions::GitHubReport { environment: "production".into() });
    }
    let published = crate::contract::testing::published_by(&events, at(0));
    let stages: Vec<(&str, Option<Stage>)> = published
        .iter()
        .map(|event| stage_of(event).unwrap_or_else(|| panic!("a shipped run published {}", event.detail_type())))
        .collect();
    assert_eq!(
        stages,
        [
            ("Execution Started", Some(Stage::BUILD)),
            ("Approval Requested", Some(Stage::APPROVAL)),
            ("Approval Decided", Some(Stage::APPROVAL)),
            ("Deployment Requested", Some(Stage::DEPLOY)),
            ("Execution Finished", Some(Stage::DEPLOY)),
        ]
    );
    let environment = published.iter().find_map(|event| match event {
        SluiceEvent::DeploymentRequested(requested) => Some(requested.environment.clone()),
        _ => None,
    });
    assert_eq!(environment, Some(Some("production".to_owned())), "the plan's GitHub environment");
}

#[test]
fn checks_a_rollback_and_an_approval_at_a_pause_are_the_deploy_stages() {
    let deploy = Some(Stage::DEPLOY);
    // A rolling update's checks, then their failure
    let (state, effects) = apply(&rolled_out("e1", 1, true), &deployed("e1"), at(5));
    assert_eq!(stages_named(&effects), [("Checks Requested", deploy)]);
    let (_, effects) = apply(&state, &after_rollout("e1", false), at(6));
    assert_eq!(stages_named(&effects), [("Rollback Requested", deploy)]);
    // An approval asked at a pause of a canary, then decided
    let (state, _) = apply(&canary_deploying("e2"), &paused("e2", "pause-1"), at(10));
    let (state, effects) = apply(&state, &paused("e2", "pause-2"), at(20));
    assert_eq!(stages_named(&effects), [("Approval Requested", deploy)]);
    let sent = Event::ApprovalSent {
        compared: None,
        personal: Vec::new(),
        execution_id: id("e2"),
        token_hash: "hash-pause-2".into(),
        hook_id: Some("pause-2".into()),
    };
    let (state, _) = apply(&state, &sent, at(21));
    let (_, effects) = apply(&state, &approved("e2"), at(22));
    assert_eq!(stages_named(&effects), [("Approval Decided", deploy)]);
}
