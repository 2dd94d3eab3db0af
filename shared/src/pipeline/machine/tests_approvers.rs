//! Named approvers at an approval stage: each decides through a link of their own, `required` of them must approve,
//! one rejection rejects, the pusher may be refused, and operators decide as themselves.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::contract::testing::{blue_green, push};
use crate::definitions::{Approval, Approvers, DeployStage, ExecutionMode, StageDefinition, StageKind};
use crate::pipeline::BuildOutputs;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "octocat@github.com";

fn approvers(required: usize) -> Approvers {
    Approvers {
        emails: vec![ALICE.into(), BOB.into(), CAROL.into()],
        required,
        forbid_pusher: true,
        operators: vec!["arn:aws:iam::123456789012:role/release-*".into()],
    }
}

/// A run of `web-1` at its sign-off stage (three named approvers, `required` of them), the request sent with each
/// approver's link hashing to `hash-<their name>`.
fn asking(required: usize) -> PipelineState {
    let mut event = push("web-1", ExecutionMode::Queued, false);
    if let Event::Triggered { plan, .. } = &mut event {
        let approval = Approval {
            topic_arn: "arn:aws:sns:eu-west-1:1:signoff".into(),
            timeout_secs: 3600,
            approvers: Some(approvers(required)),
        };
        plan.stages = vec![
            StageDefinition { name: Stage::APPROVAL, kind: StageKind::Approval(approval) },
            StageDefinition {
                name: Stage::DEPLOY,
                kind: StageKind::Deploy(Box::new(DeployStage::of(DeployTarget::BlueGreen(blue_green(Vec::new()))))),
            },
        ];
    }
    let built = Event::BuildSucceeded {
        execution_id: "web-1".into(),
        build_id: "build-1".into(),
        outputs: BuildOutputs { image_uri: "web@sha256:1".into(), artifacts: None },
    };
    let sent = sent("request", ["hash-alice", "hash-bob", "hash-carol"].map(String::from).to_vec());
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    for (minute, event) in [event, built, sent].iter().enumerate() {
        state = applied(&state, event, minute as i64).0;
    }
    state
}

/// The request of `web-1` went out: the request's hash, and each approver's link's.
fn sent(request: &str, personal: Vec<String>) -> Event {
    Event::ApprovalSent {
        execution_id: "web-1".into(),
        token_hash: request.into(),
        personal,
        hook_id: None,
        compared: None,
    }
}

fn applied(state: &PipelineState, event: &Event, minute: i64) -> (PipelineState, Vec<Effect>) {
    match transition(state, event, at(minute)) {
        Ok(Decision::Apply { state, effects }) => (state, effects),
        other => panic!("{} was not applied: {other:?}", event.name()),
    }
}

fn said(decision: ApprovalDecision, link: Option<&str>, approver: &str) -> Event {
    Event::ApprovalDecided {
        execution_id: "web-1".into(),
        decision,
        approver: approver.into(),
        comment: Some("looks right".into()),
        token_hash: link.map(str::to_owned),
        source_ip: None,
        user_agent: None,
    }
}

fn approved_through(link: &str) -> Event {
    // What the form said the name was does not count: the link says who decides.
    said(ApprovalDecision::Approved, Some(link), "typed anything")
}

#[test]
fn the_request_goes_to_each_named_approver_and_each_link_of_theirs_is_kept() {
    let mut event = push("web-1", ExecutionMode::Queued, true);
    if let Event::Triggered { plan, .. } = &mut event
        && let Some(StageKind::Approval(approval)) = plan.stages.first_mut().map(|stage| &mut stage.kind)
    {
        approval.approvers = Some(approvers(2));
    }
    let (state, _) = applied(&PipelineState::new("web", ExecutionMode::Queued), &event, 0);
    let built = Event::BuildSucceeded {
        execution_id: "web-1".into(),
        build_id: "build-1".into(),
        outputs: BuildOutputs { image_uri: "web@sha256:1".into(), artifacts: None },
    };
    let (_, effects) = applied(&state, &built, 1);
    let asked = effects.iter().find_map(|effect| match effect {
        Effect::RequestApproval { approvers, .. } => Some(approvers.clone()),
        _ => None,
    });
    assert_eq!(asked, Some(vec![ALICE.to_owned(), BOB.to_owned(), CAROL.to_owned()]));
    let state = asking(2);
    let run = state.execution(&"web-1".into()).expect("the run");
    assert_eq!(run.approver_of("hash-bob"), Some(BOB));
    assert_eq!(run.approver_of("request"), None, "the request's own hash is no one's link");
}

#[test]
fn the_stage_passes_once_the_required_number_of_distinct_approvers_approved_each_recorded_by_their_link() {
    let state = asking(2);
    let (state, effects) = applied(&state, &approved_through("hash-alice"), 3);
    let run = state.execution(&"web-1".into()).expect("the run");
    assert_eq!(run.status, Status::Running(Stage::APPROVAL), "one of two: the run waits");
    assert!(effects.is_empty(), "{effects:?}");
    let signoffs: Vec<&str> =
        run.approval().map(|a| a.signoffs.iter().map(|s| s.by.as_str()).collect()).unwrap_or_default();
    assert_eq!(signoffs, [ALICE]);
    // The same approver again is refused: each decides once
    let again = transition(&state, &approved_through("hash-alice"), at(4));
    assert!(matches!(again, Err(TransitionError::AlreadySignedOff { ref by, .. }) if by == ALICE), "{again:?}");
    let (state, effects) = applied(&state, &approved_through("hash-bob"), 5);
    let run = state.execution(&"web-1".into()).expect("the run");
    assert_eq!(run.status, Status::Running(Stage::DEPLOY));
    let approval = run.approval().expect("the approval");
    assert_eq!((approval.decision, approval.approver.as_deref()), (Some(ApprovalDecision::Approved), Some(BOB)));
    assert_eq!(approval.signoffs.iter().map(|s| s.by.as_str()).collect::<Vec<_>>(), [ALICE, BOB]);
    assert!(effects.iter().any(|effect| matches!(effect, Effect::StartDeployment { .. })), "{effects:?}");
}

#[test]
fn one_rejection_rejects_saying_who_and_why_even_after_others_approved() {
    let state = asking(2);
    let (state, _) = applied(&state, &approved_through("hash-alice"), 3);
    let (state, _) = applied(&state, &said(ApprovalDecision::Rejected, Some("hash-bob"), "typed"), 4);
    let run = state.execution(&"web-1".into()).expect("the run");
    assert_eq!(run.status, Status::Rejected);
    assert_eq!(run.reason.as_deref(), Some("rejected by bob@example.com: looks right"));
}

#[test]
fn the_pusher_cannot_decide_on_their_own_run_but_the_others_can() {
    // The push's pusher email is octocat@github.com: carol's address here.
    let state = asking(1);
    let refused = transition(&state, &approved_through("hash-carol"), at(3));
    assert!(matches!(refused, Err(TransitionError::PusherMayNotApprove { ref by, .. }) if by == CAROL), "{refused:?}");
    let rejected = transition(&state, &said(ApprovalDecision::Rejected, Some("hash-carol"), "typed"), at(3));
    assert!(matches!(rejected, Err(TransitionError::PusherMayNotApprove { .. })), "{rejected:?}");
    // GitHub's address in another case is the same address
    let mut shouting = state.clone();
    if let Some(run) = shouting.executions.first_mut() {
        run.source.pusher_email = Some(" OctoCat@GitHub.com".into());
    }
    let refused = transition(&shouting, &approved_through("hash-carol"), at(3));
    assert!(matches!(refused, Err(TransitionError::PusherMayNotApprove { .. })), "{refused:?}");
    let (state, _) = applied(&state, &approved_through("hash-alice"), 4);
    assert_eq!(state.execution(&"web-1".into()).map(|run| run.status), Some(Status::Running(Stage::DEPLOY)));
}

#[test]
fn a_link_that_is_no_approvers_own_decides_nothing() {
    let state = asking(1);
    for link in ["request", "hash-mallory"] {
        let refused = transition(&state, &approved_through(link), at(3));
        assert!(matches!(refused, Err(TransitionError::StaleApprovalLink { .. })), "{link}: {refused:?}");
    }
}

#[test]
fn an_operator_decides_as_their_iam_identity_and_anyone_else_is_refused() {
    let state = asking(2);
    let session = "arn:aws:sts::123456789012:assumed-role/release-managers/dana";
    let (state, _) = applied(&state, &said(ApprovalDecision::Approved, None, session), 3);
    let run = state.execution(&"web-1".into()).expect("the run");
    let by: Vec<&str> = run.approval().map(|a| a.signoffs.iter().map(|s| s.by.as_str()).collect()).unwrap_or_default();
    assert_eq!(by, ["arn:aws:iam::123456789012:role/release-managers"], "a session counts as its role");
    // Another session of the same role is the same operator: it counted already
    let again = "arn:aws:sts::123456789012:assumed-role/release-managers/dana-again";
    let refused = transition(&state, &said(ApprovalDecision::Approved, None, again), at(4));
    assert!(matches!(refused, Err(TransitionError::AlreadySignedOff { .. })), "{refused:?}");
    let developer = "arn:aws:sts::123456789012:assumed-role/developers/erin";
    let refused = transition(&state, &said(ApprovalDecision::Approved, None, developer), at(4));
    assert!(matches!(refused, Err(TransitionError::NotAnApprover { ref by, .. }) if by == developer), "{refused:?}");
    let (state, _) = applied(&state, &approved_through("hash-alice"), 5);
    assert_eq!(state.execution(&"web-1".into()).map(|run| run.status), Some(Status::Running(Stage::DEPLOY)));
}

#[test]
fn after_the_decision_a_second_decision_is_refused_and_a_late_one_says_the_approval_expired() {
    let state = asking(1);
    let (decided, _) = applied(&state, &approved_through("hash-alice"), 3);
    let again = transition(&decided, &said(ApprovalDecision::Rejected, Some("hash-bob"), "typed"), at(4));
    assert!(matches!(again, Err(TransitionError::AlreadyDecided { .. })), "{again:?}");
    let late = transition(&state, &approved_through("hash-bob"), at(3 + 61));
    assert!(matches!(late, Err(TransitionError::ApprovalExpired { .. })), "{late:?}");
}

#[test]
fn the_run_says_how_many_more_approvals_it_waits_for_and_its_timeline_who_approved() {
    use crate::present::timeline::{lines, waits_for};
    let state = asking(2);
    let (state, _) = applied(&state, &approved_through("hash-alice"), 3);
    let run = state.execution(&"web-1".into()).expect("the run");
    let waits = waits_for(run, at(4));
    assert!(
        waits.starts_with("1 more approval(s) of alice@example.com, bob@example.com, octocat@github.com, until")
            && waits.ends_with("(1 of 2 so far: alice@example.com)"),
        "{waits}"
    );
    let (state, _) = applied(&state, &approved_through("hash-bob"), 5);
    let said = lines(state.execution(&"web-1".into()).expect("the run")).join("\n");
    assert!(said.contains("approval request mailed to 3 approvers, each their own link"), "{said}");
    assert!(said.contains("approved by alice@example.com (approval 1): looks right"), "{said}");
    assert_eq!(said.matches("bob@example.com").count(), 1, "the deciding approval is told once: {said}");
}

#[test]
fn a_request_sent_again_keeps_the_approvals_so_far_and_only_the_newest_links_decide() {
    let state = asking(2);
    let (state, _) = applied(&state, &approved_through("hash-alice"), 3);
    let again = sent("request-2", ["new-alice", "new-bob", "new-carol"].map(String::from).to_vec());
    let (state, _) = applied(&state, &again, 4);
    let run = state.execution(&"web-1".into()).expect("the run");
    assert_eq!(run.approval().map(|a| a.signoffs.len()), Some(1), "alice's approval stands");
    let stale = transition(&state, &approved_through("hash-bob"), at(5));
    assert!(matches!(stale, Err(TransitionError::StaleApprovalLink { .. })), "{stale:?}");
    let refused = transition(&state, &approved_through("new-alice"), at(5));
    assert!(matches!(refused, Err(TransitionError::AlreadySignedOff { .. })), "{refused:?}");
    let (state, _) = applied(&state, &approved_through("new-bob"), 6);
    assert_eq!(state.execution(&"web-1".into()).map(|run| run.status), Some(Status::Running(Stage::DEPLOY)));
}

#[test]
fn a_request_whose_links_are_not_one_for_each_approver_is_refused() {
    let state = asking(2);
    let short = sent("request-2", vec!["only-one".into()]);
    let refused = transition(&state, &short, at(4));
    assert!(matches!(refused, Err(TransitionError::PersonalLinks { sent: 1, named: 3, .. })), "{refused:?}");
}

#[test]
fn the_same_operator_deciding_again_after_the_decision_is_nothing_new_and_another_decision_is_refused() {
    let state = asking(1);
    let session = "arn:aws:sts::123456789012:assumed-role/release-managers/dana";
    let (state, _) = applied(&state, &said(ApprovalDecision::Approved, None, session), 3);
    let again = transition(&state, &said(ApprovalDecision::Approved, None, session), at(4));
    assert!(matches!(again, Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))), "{again:?}");
    let other = transition(&state, &said(ApprovalDecision::Rejected, None, session), at(4));
    assert!(matches!(other, Err(TransitionError::AlreadyDecided { .. })), "{other:?}");
}

#[test]
fn a_failed_test_stage_asks_the_named_approvers_of_the_first_approval_stage() {
    use crate::definitions::{OnFailure, TestRun, TestStage};
    let mut event = push("web-1", ExecutionMode::Queued, false);
    if let Event::Triggered { plan, .. } = &mut event {
        let asks = Approval {
            topic_arn: "arn:aws:sns:eu-west-1:1:signoff".into(),
            timeout_secs: 3600,
            approvers: Some(approvers(1)),
        };
        let test = TestStage {
            run: TestRun::CodeBuild("web-e2e".into()),
            timeout_minutes: None,
            on_failure: OnFailure::Ask(asks),
        };
        let deploy = DeployStage::of(DeployTarget::BlueGreen(blue_green(Vec::new())));
        plan.stages = vec![
            StageDefinition { name: Stage::new("e2e").expect("a name"), kind: StageKind::Test(test) },
            StageDefinition { name: Stage::DEPLOY, kind: StageKind::Deploy(Box::new(deploy)) },
        ];
    }
    let e2e = Stage::new("e2e").expect("a name");
    let built = Event::BuildSucceeded {
        execution_id: "web-1".into(),
        build_id: "build-1".into(),
        outputs: BuildOutputs { image_uri: "web@sha256:1".into(), artifacts: None },
    };
    let started = Event::TestStarted { execution_id: "web-1".into(), stage: e2e, build_id: "test-1".into() };
    let ended = Event::TestEnded {
        execution_id: "web-1".into(),
        stage: e2e,
        build_id: Some("test-1".into()),
        passed: false,
        reason: Some("2 tests failed".into()),
        results: None,
        detail: None,
    };
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    let mut effects = Vec::new();
    for (minute, event) in [event, built, started, ended].iter().enumerate() {
        let (next, decided) = applied(&state, event, minute as i64);
        state = next;
        effects.extend(decided);
    }
    let asked = effects.iter().find_map(|effect| match effect {
        Effect::RequestApproval { approvers, .. } => Some(approvers.len()),
        _ => None,
    });
    assert_eq!(asked, Some(3), "{effects:?}");
    let sent = sent("request", ["hash-alice", "hash-bob", "hash-carol"].map(String::from).to_vec());
    let (state, _) = applied(&state, &sent, 5);
    let (state, _) = applied(&state, &approved_through("hash-bob"), 6);
    let run = state.execution(&"web-1".into()).expect("the run");
    assert_eq!(run.status, Status::Running(Stage::DEPLOY), "overlooked by bob: {:?}", run.reason);
}
