//! What people read of a run with a test stage: the timeline, the outcome's notification, GitHub and the status
//! page say how the tests went, with the failed cases' names.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::contract::testing::to_e2e;
use crate::definitions::ExecutionMode;
use crate::pipeline::{
    Decision, Event, Execution, ExecutionId, FailedTest, OutcomeReport, PipelineState, Stage, TestResults, transition,
};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

/// Run e1 through staging to e2e, then `more`, a minute apart.
fn run(more: &[Event]) -> Execution {
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    for (minute, event) in (0..).zip(to_e2e("e1").iter().chain(more)) {
        match transition(&state, event, at(minute)) {
            Ok(Decision::Apply { state: next, .. }) => state = next,
            other => panic!("{} applies: {other:?}", event.name()),
        }
    }
    state.execution(&ExecutionId::from("e1")).cloned().expect("the run")
}

fn e2e() -> Stage {
    Stage::new("e2e").expect("a stage name")
}

fn started() -> Event {
    Event::TestStarted { execution_id: "e1".into(), stage: e2e(), build_id: "arn:aws:codebuild:build/web-e2e:7".into() }
}

fn ended(failed: u64) -> Event {
    let failures = ["checkout.pays_with_card", "login.rejects_bad_password"]
        .into_iter()
        .take(failed as usize)
        .map(|name| FailedTest::new(name, Some("expected 200, got 500")));
    let results = TestResults { passed: 118, failed, skipped: 3, failures: failures.collect(), ..Default::default() };
    Event::TestEnded {
        execution_id: "e1".into(),
        stage: e2e(),
        build_id: Some("arn:aws:codebuild:build/web-e2e:7".into()),
        passed: true,
        reason: None,
        results: Some(results),
        detail: None,
    }
}

#[test]
fn the_timeline_tells_the_test_build_and_its_results_and_what_the_run_waits_for() {
    let testing = run(&[started()]);
    assert_eq!(super::timeline::waits_for(&testing, at(10)), "CodeBuild test build arn:aws:codebuild:build/web-e2e:7");
    let lines = super::timeline::lines(&run(&[started(), ended(0)]));
    let said = lines.join("\n");
    assert!(
        said.contains("e2e       CodeBuild test project web-e2e started (arn:aws:codebuild:build/web-e2e:7)"),
        "{said}"
    );
    assert!(said.contains("tests passed: 118 passed, 0 failed, 3 skipped"), "{said}");
}

#[test]
fn the_outcome_names_the_failed_tests_with_their_messages_in_text_and_json() {
    let failed = run(&[started(), ended(2)]);
    let report = OutcomeReport::of(&failed);
    let message = super::outcome::outcome_message(&failed.id, &report, "eu-west-1");
    let text = &message.text;
    assert!(text.contains("Why: in e2e: 2 test cases failed (118 passed, 2 failed, 3 skipped: checkout.pays_with_card, login.rejects_bad_password)"), "{text}");
    assert!(text.contains("Tests:\n  e2e        web-e2e: tests failed: 118 passed, 2 failed, 3 skipped"), "{text}");
    assert!(text.contains("    FAILED checkout.pays_with_card: expected 200, got 500\n"), "{text}");
    assert!(text.contains("  e2e        "), "the stage's time: {text}");
    assert!(text.contains("Rolled back: nothing: what the run deployed before e2e keeps running there.\n"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&message.message).expect("json");
    let facts: serde_json::Value = serde_json::from_str(json["default"].as_str().expect("default")).expect("facts");
    let test = &facts["outcome"]["tests"][0];
    assert_eq!((test["stage"].as_str(), test["passed"].as_bool()), (Some("e2e"), Some(false)));
    assert_eq!(test["results"]["failed"], 2);
    assert_eq!(test["results"]["failures"][1]["name"], "login.rejects_bad_password");
}

#[test]
fn github_shows_the_run_testing_and_then_why_its_tests_failed() {
    let shown = super::github_report::shown(&run(&[started()]));
    assert_eq!(shown.description, "run #1: testing at e2e");
    assert_eq!(shown.commit, super::github_report::CommitState::Pending);
    let failed = super::github_report::shown(&run(&[started(), ended(2)]));
    assert_eq!(failed.commit, super::github_report::CommitState::Failure);
    assert!(
        failed.description.starts_with("run #1 failed: in e2e: 2 test cases failed (118 passed, 2 failed"),
        "{}",
        failed.description
    );
    // Staging's Deployment shows it went past staging; production was never reached.
    let run = run(&[started(), ended(2)]);
    let deployments = super::github_report::stage_deployments(&run, failed.deployment);
    assert_eq!(
        deployments,
        [(Stage::new("staging").expect("a stage"), super::github_report::DeploymentState::Success)]
    );
}

#[test]
fn the_status_page_shows_each_test_stage_with_its_summary() {
    let failed = run(&[started(), ended(2)]);
    let story = super::status::Story {
        waits_for: super::timeline::waits_for(&failed, at(20)),
        timeline: super::timeline::lines(&failed),
    };
    let page = super::status::run_page(&failed, &story, at(20));
    assert!(page.html.contains("<li class=\"bad\">e2e 2m 00s · 118 passed, 2 failed, 3 skipped</li>"), "{}", page.html);
}

#[test]
fn an_approval_after_a_test_stage_shows_what_the_release_passed_there() {
    // GIVEN a pipeline whose e2e stage is followed by a sign-off
    let mut events = to_e2e("e1");
    if let Some(Event::Triggered { plan, .. }) = events.first_mut() {
        let sign_off = crate::definitions::Approval {
            topic_arn: "arn:aws:sns:eu-west-1:1:signoff".into(),
            timeout_secs: 3600,
            approvers: None,
        };
        let stage = crate::definitions::StageDefinition {
            name: Stage::new("sign-off").expect("a stage"),
            kind: crate::definitions::StageKind::Approval(sign_off),
        };
        plan.stages.insert(2, stage);
    }
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    let all: Vec<Event> = events.into_iter().chain([started(), ended(0)]).collect();
    for (minute, event) in (0..).zip(&all) {
        match transition(&state, event, at(minute)) {
            Ok(Decision::Apply { state: next, .. }) => state = next,
            other => panic!("{} applies: {other:?}", event.name()),
        }
    }
    let run = state.execution(&ExecutionId::from("e1")).expect("the run");
    assert_eq!(run.status, crate::pipeline::Status::Running(Stage::new("sign-off").expect("a stage")));
    // WHEN its approval is asked, THEN the request shows e2e's results among the earlier stages
    let notice = crate::pipeline::ApprovalNotice::of(run, at(10));
    let e2e = notice.earlier.iter().find(|earlier| earlier.stage == e2e()).expect("e2e is shown");
    assert_eq!(e2e.said, "tests passed: 118 passed, 0 failed, 3 skipped");
    let links = super::approval_email::Links {
        review: "https://approve.example/t",
        base: "https://approve.example/",
        region: "eu-west-1",
        approver: None,
    };
    let email = super::approval_email::approval_email(&run.id, &notice, at(70), links, at(10));
    assert!(email.text.contains("tests passed: 118 passed, 0 failed, 3 skipped"), "{}", email.text);
}
