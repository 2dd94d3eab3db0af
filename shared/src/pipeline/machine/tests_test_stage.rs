//! Runs of a pipeline with a test stage: build, staging, e2e (a CodeBuild test project), production.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::contract::testing::{E2E_IMAGE as IMAGE, to_e2e};
use crate::definitions::ExecutionMode;
use crate::pipeline::{ApprovalDecision, FailedTest, TestResults};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

fn stage(name: &str) -> Stage {
    Stage::new(name).expect("a stage name")
}

fn id(name: &str) -> ExecutionId {
    ExecutionId::from(name)
}

fn test_started(execution: &str, build_id: &str) -> Event {
    Event::TestStarted { execution_id: id(execution), stage: stage("e2e"), build_id: build_id.into() }
}

fn test_ended(execution: &str, passed: bool, results: Option<TestResults>) -> Event {
    Event::TestEnded {
        execution_id: id(execution),
        stage: stage("e2e"),
        build_id: Some("e2e-build-1".into()),
        passed,
        reason: None,
        results,
        detail: None,
    }
}

fn results(passed: u64, failed: u64) -> TestResults {
    let failures = (0..failed).map(|k| FailedTest::new(&format!("LoginTest.case_{k}"), Some("expected 401, got 200")));
    TestResults { passed, failed, skipped: 3, failures: failures.collect(), ..Default::default() }
}

/// Applies each event, one minute apart; each must be applied. The state and every effect decided.
fn apply(events: &[Event]) -> (PipelineState, Vec<Effect>) {
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    let mut effects = Vec::new();
    for (minute, event) in events.iter().enumerate() {
        match transition(&state, event, at(minute as i64)) {
            Ok(Decision::Apply { state: next, effects: decided }) => {
                state = next;
                effects.extend(decided);
            }
            other => panic!("{} was not applied: {other:?}", event.name()),
        }
    }
    (state, effects)
}

#[test]
fn a_run_deployed_to_staging_starts_its_test_project_on_its_commit_told_what_it_tests() {
    // GIVEN a run deployed to staging
    // WHEN staging is done
    let (state, effects) = apply(&to_e2e("e1"));
    // THEN the run holds e2e, and CodeBuild project web-e2e is started on its commit with the release and staging
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::Running(stage("e2e")));
    let starts: Vec<&Effect> = effects.iter().filter(|effect| matches!(effect, Effect::StartBuild { .. })).collect();
    let [_, Effect::StartBuild { project, source_version, environment, stage: Some(at), timeout_minutes, .. }] =
        starts.as_slice()
    else {
        panic!("the build, then the test build: {starts:?}")
    };
    assert_eq!((project.as_str(), *at, *timeout_minutes), ("web-e2e", stage("e2e"), Some(30)));
    assert_eq!(source_version, &run.source.commit);
    let variable = |name: &str| environment.get(name).map(String::as_str);
    assert_eq!(variable("SLUICE_EXECUTION_ID"), Some("e1"));
    assert_eq!(variable("SLUICE_PIPELINE"), Some("web"));
    assert_eq!(variable("SLUICE_STAGE"), Some("e2e"));
    assert_eq!(variable("SLUICE_IMAGE"), Some(IMAGE));
    assert_eq!(variable("SLUICE_IMAGE_DIGEST"), Some("sha256:ab12"));
    assert_eq!(variable("SLUICE_DEPLOYED_STAGE"), Some("staging"));
    assert_eq!(variable("SLUICE_ENVIRONMENT"), Some("Staging EU"));
    let record = run.record(stage("e2e")).and_then(|record| record.test.as_ref()).expect("the test's record");
    assert_eq!((record.project.as_str(), record.build_id.as_deref(), record.passed), ("web-e2e", None, None));
    // AND Test Requested announces it (build-events' doorbell), naming the stage, the project and the release
    let requested = effects.iter().find_map(|effect| match effect {
        Effect::Publish(crate::contract::events::SluiceEvent::TestRequested(requested)) => Some(requested),
        _ => None,
    });
    let requested = requested.expect("Test Requested");
    assert_eq!((requested.stage, requested.project.as_deref().unwrap_or_default()), (stage("e2e"), "web-e2e"));
    assert_eq!(requested.image_uri.as_deref(), Some(IMAGE));
}

#[test]
fn tests_that_pass_move_the_run_on_to_production_with_their_results_recorded() {
    let mut events = to_e2e("e1");
    events.extend([test_started("e1", "e2e-build-1"), test_ended("e1", true, Some(results(118, 0)))]);
    let (state, effects) = apply(&events);
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::Running(stage("production")));
    let record = run.record(stage("e2e")).and_then(|record| record.test.as_ref()).expect("the test's record");
    assert_eq!(record.passed, Some(true));
    assert_eq!(record.build_id.as_deref(), Some("e2e-build-1"));
    assert_eq!(record.results.as_ref().map(TestResults::summary).as_deref(), Some("118 passed, 0 failed, 3 skipped"));
    let production = effects.iter().any(|effect| {
        matches!(effect, Effect::StartDeployment { stage: at, image_uri: Some(image), .. } if *at == stage("production") && image == IMAGE)
    });
    assert!(production, "production deploys the same digest: {effects:?}");
}

#[test]
fn a_build_that_succeeds_with_failed_cases_fails_the_run_at_its_test_stage_naming_them() {
    // GIVEN the test build succeeded, but its reports have 2 failed cases
    let mut events = to_e2e("e1");
    events.push(test_ended("e1", true, Some(results(118, 2))));
    let (state, effects) = apply(&events);
    // THEN the run fails at e2e, naming the cases; production is never asked for
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::Failed);
    let reason = run.reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("in e2e: 2 test cases failed (118 passed, 2 failed, 3 skipped: "), "{reason}");
    assert!(reason.contains("LoginTest.case_0, LoginTest.case_1"), "{reason}");
    let record = run.record(stage("e2e")).and_then(|record| record.test.as_ref()).expect("the test's record");
    assert_eq!(record.passed, Some(false));
    assert_eq!(record.results.as_ref().map(|results| results.failures.len()), Some(2));
    let production = effects
        .iter()
        .any(|effect| matches!(effect, Effect::StartDeployment { stage: at, .. } if *at == stage("production")));
    assert!(!production, "production is untouched");
}

#[test]
fn a_test_build_that_fails_or_cannot_start_fails_the_run_saying_so() {
    let mut events = to_e2e("e1");
    events.push(Event::TestEnded {
        execution_id: id("e1"),
        stage: stage("e2e"),
        build_id: Some("e2e-build-1".into()),
        passed: false,
        reason: Some("the test build failed in phase BUILD".into()),
        results: None,
        detail: None,
    });
    let (state, _) = apply(&events);
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(
        (run.status, run.reason.as_deref()),
        (Status::Failed, Some("in e2e: the test build failed in phase BUILD"))
    );

    let mut events = to_e2e("e2");
    let reason = "ResourceNotFoundException: no project web-e2e".to_owned();
    events.push(Event::TestStartFailed { execution_id: id("e2"), stage: stage("e2e"), reason });
    let (state, _) = apply(&events);
    let run = state.execution(&id("e2")).expect("the run");
    let said = run.reason.as_deref().unwrap_or_default();
    assert_eq!(run.status, Status::Failed);
    assert_eq!(said, "in e2e: the tests could not start: ResourceNotFoundException: no project web-e2e");
}

#[test]
fn repeated_late_or_foreign_test_events_change_nothing() {
    let mut events = to_e2e("e1");
    events.extend([test_started("e1", "e2e-build-1"), test_ended("e1", true, Some(results(5, 0)))]);
    let (state, _) = apply(&events);
    // The same start and end again: duplicates, or past the stage.
    for again in [test_started("e1", "e2e-build-1"), test_ended("e1", true, Some(results(5, 0)))] {
        let decided = transition(&state, &again, at(30));
        assert!(matches!(decided, Ok(Decision::Ignore(_))), "{}: {decided:?}", again.name());
    }
    // Another build's end while the run tests: refused as foreign, state unchanged.
    let mut events = to_e2e("e2");
    events.push(test_started("e2", "e2e-build-1"));
    let (state, _) = apply(&events);
    let foreign = Event::TestEnded {
        execution_id: id("e2"),
        stage: stage("e2e"),
        build_id: Some("someone-elses".into()),
        passed: true,
        reason: None,
        results: None,
        detail: None,
    };
    assert!(matches!(transition(&state, &foreign, at(30)), Err(TransitionError::ForeignBuild { .. })));
    // A test event for a run still at staging: refused, it is not in that stage.
    let early = apply(&to_e2e("e3")[..3]).0;
    let decided = transition(&early, &test_started("e3", "x"), at(30));
    assert!(matches!(decided, Err(TransitionError::NotInStage { .. })), "{decided:?}");
}

#[test]
fn a_retry_of_a_run_that_failed_its_tests_tests_the_same_build_again() {
    let mut events = to_e2e("e1");
    events.push(test_ended("e1", true, Some(results(1, 1))));
    let (state, _) = apply(&events);
    let failed = state.execution(&id("e1")).expect("the run");
    assert_eq!(failed.retry_stage(), Some(stage("e2e")));
}

/// The pipeline of [`to_e2e`], its e2e stage asking the approvers (topic `asks`, an hour) when its tests fail.
fn asking(execution: &str) -> Vec<Event> {
    let mut events = to_e2e(execution);
    if let Some(Event::Triggered { plan, .. }) = events.first_mut()
        && let Some(crate::definitions::StageKind::Test(e2e)) = plan.stages.get_mut(1).map(|stage| &mut stage.kind)
    {
        let approval = crate::definitions::Approval {
            topic_arn: "arn:aws:sns:eu-west-1:1:asks".into(),
            timeout_secs: 3600,
            approvers: None,
        };
        e2e.on_failure = crate::definitions::OnFailure::Ask(approval);
    }
    events
}

fn decided(execution: &str, decision: ApprovalDecision) -> Event {
    Event::ApprovalDecided {
        execution_id: id(execution),
        decision,
        approver: "ada@example.com".into(),
        comment: Some("known flake".into()),
        token_hash: None,
        source_ip: None,
        user_agent: None,
    }
}

#[test]
fn a_failed_test_stage_that_asks_holds_the_run_and_mails_the_approvers_what_failed() {
    // GIVEN e2e asks on failure, WHEN its tests fail
    let mut events = asking("e1");
    events.push(test_ended("e1", true, Some(results(118, 2))));
    let (state, effects) = apply(&events);
    // THEN the run still holds e2e, waiting for a decision; nothing deployed to production
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::Running(stage("e2e")));
    assert!(run.approving(), "the run waits for a decision");
    let Some(Effect::RequestApproval { topic_arn, notice, release, .. }) =
        effects.iter().rev().find(|effect| matches!(effect, Effect::RequestApproval { .. }))
    else {
        panic!("no approval asked: {effects:?}")
    };
    assert_eq!(topic_arn, "arn:aws:sns:eu-west-1:1:asks");
    let failed = notice.failed.as_ref().expect("the request says what failed");
    assert_eq!(failed.stage, stage("e2e"));
    assert!(failed.said.starts_with("tests failed: 118 passed, 2 failed"), "{}", failed.said);
    assert_eq!(release.as_ref().map(|release| release.cluster.as_str()), Some("prod"), "it goes to production");
}

#[test]
fn approved_the_release_goes_on_and_rejected_or_undecided_the_run_fails_saying_why() {
    let mut events = asking("e1");
    events.push(test_ended("e1", true, Some(results(118, 2))));
    // Approved: on to production
    let mut approved = events.clone();
    approved.push(decided("e1", ApprovalDecision::Approved));
    let (state, _) = apply(&approved);
    assert_eq!(state.execution(&id("e1")).expect("the run").status, Status::Running(stage("production")));
    // Rejected: failed at e2e, naming the tests and who said no
    let mut rejected = events.clone();
    rejected.push(decided("e1", ApprovalDecision::Rejected));
    let (state, _) = apply(&rejected);
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::Failed);
    let reason = run.reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("in e2e: 2 test cases failed (118 passed, 2 failed"), "{reason}");
    assert!(reason.ends_with("; rejected by ada@example.com: known flake"), "{reason}");
    // Nobody decided in time: failed too
    let (state, _) = apply(&events);
    let expired = Event::ApprovalExpired { execution_id: id("e1") };
    let Ok(Decision::Apply { state, .. }) = transition(&state, &expired, at(120)) else { panic!("expired") };
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::Failed);
    assert!(run.reason.as_deref().is_some_and(|r| r.contains("; no approval decision by")), "{:?}", run.reason);
}

#[test]
fn while_a_failed_test_stage_asks_repeated_test_events_are_duplicates_and_change_nothing() {
    let mut events = asking("e1");
    events.extend([test_started("e1", "e2e-build-1"), test_ended("e1", true, Some(results(118, 2)))]);
    let (state, _) = apply(&events);
    for again in [
        test_started("e1", "e2e-build-1"),
        test_ended("e1", true, Some(results(118, 2))),
        Event::TestStartFailed { execution_id: id("e1"), stage: stage("e2e"), reason: "late".into() },
    ] {
        let decided = transition(&state, &again, at(30));
        assert_eq!(decided, Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)), "{}", again.name());
    }
}

#[test]
fn in_superseded_mode_a_newer_run_withdraws_an_older_one_asking_at_the_test_stage() {
    // GIVEN e1 failed its tests at e2e and asks, in superseded mode
    let superseded = |execution: &str| {
        let mut events = asking(execution);
        if let Some(Event::Triggered { mode, .. }) = events.first_mut() {
            *mode = ExecutionMode::Superseded;
        }
        events
    };
    let mut events = superseded("e1");
    events.push(test_ended("e1", true, Some(results(1, 1))));
    // WHEN e2 reaches e2e (its staging deployments under ids of its own)
    let mut later = superseded("e2");
    for event in &mut later {
        match event {
            Event::DeploymentStarted { deployment_id, .. } | Event::DeploymentSucceeded { deployment_id, .. } => {
                *deployment_id = "ecs-staging-2".into();
            }
            Event::BuildSucceeded { build_id, .. } => *build_id = "build-2".into(),
            _ => {}
        }
    }
    events.extend(later);
    let (state, _) = apply(&events);
    // THEN e1 is withdrawn, and e2 tests
    let e1 = state.execution(&id("e1")).expect("e1");
    assert_eq!(e1.status, Status::Superseded, "{:?}", e1.reason);
    assert_eq!(state.execution(&id("e2")).expect("e2").status, Status::Running(stage("e2e")));
}

#[test]
fn an_ask_nobody_decided_reads_as_expired_and_the_stage_keeps_one_time_from_tests_to_decision() {
    let mut events = asking("e1");
    events.push(test_ended("e1", true, Some(results(118, 2))));
    let (state, _) = apply(&events);
    let expired = Event::ApprovalExpired { execution_id: id("e1") };
    let Ok(Decision::Apply { state, .. }) = transition(&state, &expired, at(120)) else { panic!("expired") };
    let run = state.execution(&id("e1")).expect("the run");
    let gate = run.gates().next().expect("the ask");
    assert!(matches!(run.standing(gate, at(121)), crate::pipeline::ApprovalStanding::Expired { .. }));
    let report = crate::pipeline::OutcomeReport::of(run);
    let e2e: Vec<_> = report.stages.iter().filter(|time| time.stage == stage("e2e")).collect();
    assert_eq!(e2e.len(), 1, "{:?}", report.stages);
    assert_eq!(e2e[0].finished_at, Some(at(120)));
}
