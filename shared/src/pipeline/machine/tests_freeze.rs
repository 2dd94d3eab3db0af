//! The freeze: runs held at the boundary of a deploy stage, in order, and pauses of deployments in flight held until
//! it lifts.

use super::*;
use crate::contract::testing::ecs_native_asking;
use crate::definitions::{PauseAction, TrafficShift};
use crate::pipeline::EffectKind;

const CAROL: &str = "arn:aws:iam::123456789012:user/carol";

fn frozen(until: Option<DateTime<Utc>>) -> Event {
    Event::Frozen { by: CAROL.into(), reason: "incident 4312".into(), until }
}

fn unfrozen() -> Event {
    Event::Unfrozen { by: Some(CAROL.into()) }
}

/// Applies `event` to `state` at `now`: it must be applied.
fn apply(state: &PipelineState, event: &Event, now: DateTime<Utc>) -> (PipelineState, Vec<Effect>) {
    match transition(state, event, now) {
        Ok(Decision::Apply { state, effects }) => (state, effects),
        other => panic!("{} was not applied: {other:?}", event.name()),
    }
}

fn status(state: &PipelineState, execution: &str) -> Status {
    state.execution(&id(execution)).expect("the run").status
}

#[test]
fn a_run_frozen_in_staging_waits_before_production_and_deploys_there_once_unfrozen() {
    // GIVEN a run shown on GitHub, deploying to staging when an operator freezes the pipeline
    let mut push = staged("e1", ExecutionMode::Queued);
    if let Event::Triggered { plan, .. } = &mut push {
        plan.github = Some(crate::definitions::GitHubReport { environment: "production".into() });
    }
    let (state, _) = run(&[push, built("e1"), started("e1", "ecs-staging")]);
    let (state, _) = apply(&state, &frozen(None), at(10));
    // WHEN staging's deployment completes (it was under way) and the sign-off approves
    let (state, effects) = apply(&state, &succeeded("e1", "ecs-staging"), at(11));
    let asked = effects.iter().find_map(|e| match e {
        Effect::RequestApproval { notice, .. } => Some(notice.frozen.clone()),
        _ => None,
    });
    let frozen_line = "frozen by arn:aws:iam::123456789012:user/carol since 2026-12-06 09:10 UTC, until unfrozen: \
                       incident 4312";
    assert_eq!(
        asked,
        Some(Some(frozen_line.to_owned())),
        "a sign-off is no deploy stage; its request tells the freeze"
    );
    let (state, effects) = apply(&state, &approved("e1"), at(12));
    // THEN the run waits before production, nothing deploys there, and GitHub is told
    assert_eq!(status(&state, "e1"), Status::Waiting(stage("production")));
    assert_eq!(deployments(&effects), Vec::new());
    assert!(effects.contains(&Effect::ReportToGitHub { execution_id: id("e1") }), "{effects:?}");
    let doorbell = effects.iter().find_map(|e| match e {
        Effect::Publish(SluiceEvent::EffectsDue(due)) => Some(due.kinds.clone()),
        _ => None,
    });
    assert_eq!(doorbell, Some(vec![EffectKind::ReportToGitHub]), "the notifier is woken to report it");
    let freeze = state.frozen().expect("the freeze");
    assert_eq!((freeze.by.as_str(), freeze.reason.as_str(), freeze.since), (CAROL, "incident 4312", at(10)));
    // WHEN the operator unfreezes it: it deploys to production, the same image
    let (state, effects) = apply(&state, &unfrozen(), at(30));
    assert_eq!(status(&state, "e1"), Status::Running(stage("production")));
    let image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:e1".to_owned();
    assert_eq!(deployments(&effects), vec![("prod".to_owned(), Some(image))]);
    assert_eq!(state.freeze, None);
}

/// Run `execution` deploying to staging (minutes 0 to 2) when the pipeline is frozen (minute 3, `until`), then
/// done with staging and signed off: it waits before production.
fn frozen_in_staging(until: Option<DateTime<Utc>>) -> Vec<Event> {
    let mut events = to_production("e1");
    events.insert(3, frozen(until));
    events
}

#[test]
fn runs_held_by_a_freeze_go_on_in_the_order_they_came() {
    // GIVEN e1 held before production, and two pushes since: e2 held before staging, e3 behind it
    let mut events = frozen_in_staging(None);
    events.extend([staged("e2", ExecutionMode::Queued), built("e2"), staged("e3", ExecutionMode::Queued), built("e3")]);
    let (state, _) = run(&events);
    assert_eq!(status(&state, "e1"), Status::Waiting(stage("production")));
    assert_eq!(status(&state, "e2"), Status::Waiting(stage("staging")));
    assert_eq!(status(&state, "e3"), Status::Waiting(stage("staging")));
    // WHEN unfrozen: e1 deploys to production and e2 to staging; e3 waits for e2
    let (state, effects) = apply(&state, &unfrozen(), at(30));
    assert_eq!(deployments(&effects).len(), 2);
    assert_eq!(status(&state, "e1"), Status::Running(stage("production")));
    assert_eq!(status(&state, "e2"), Status::Running(stage("staging")));
    assert_eq!(status(&state, "e3"), Status::Waiting(stage("staging")));
    // AND once e2 is done with staging, e3 deploys there
    let (state, _) = apply(&state, &started("e2", "d-staging-2"), at(31));
    let (state, effects) = apply(&state, &succeeded("e2", "d-staging-2"), at(32));
    assert_eq!(status(&state, "e3"), Status::Running(stage("staging")));
    assert_eq!(deployments(&effects).len(), 1);
}

#[test]
fn a_freeze_never_holds_a_build_an_approval_stage_or_an_operators_rollback() {
    // GIVEN a frozen pipeline: a push still builds and its sign-off still asks (they deploy nothing)
    let (state, _) = run(&[frozen(None), staged("e1", ExecutionMode::Queued)]);
    assert_eq!(status(&state, "e1"), Status::Running(Stage::BUILD));
    // AND a deployment under way when the freeze came can be stopped and rolled back
    let (state, _) = apply(&canary_deploying(), &frozen(None), at(10));
    let order = Event::RollbackOrdered { execution_id: id("e1"), by: CAROL.into() };
    let (_, effects) = apply(&state, &order, at(11));
    assert!(effects.iter().any(|e| matches!(e, Effect::StopDeployment { .. })), "{effects:?}");
}

#[test]
fn a_freeze_with_an_end_holds_until_then_and_the_reconcilers_word_lifts_it_only_once_it_has_passed() {
    // GIVEN a freeze until minute 20, and a run held before production
    let (state, _) = run(&frozen_in_staging(Some(at(20))));
    assert_eq!(status(&state, "e1"), Status::Waiting(stage("production")));
    // WHEN the reconciler says it is over before its end, nothing changes
    let thawed = Event::Unfrozen { by: None };
    assert_eq!(transition(&state, &thawed, at(19)), Ok(Decision::Ignore(IgnoreReason::NotFrozen)));
    // WHEN it has passed, the run deploys
    let (state, effects) = apply(&state, &thawed, at(21));
    assert_eq!(status(&state, "e1"), Status::Running(stage("production")));
    assert_eq!(deployments(&effects).len(), 1);
    // AND there is nothing more to lift
    assert_eq!(transition(&state, &unfrozen(), at(22)), Ok(Decision::Ignore(IgnoreReason::NotFrozen)));
}

#[test]
fn a_freeze_must_end_in_the_future() {
    let state = PipelineState::new("web", ExecutionMode::Queued);
    assert_eq!(
        transition(&state, &frozen(Some(at(5))), at(5)),
        Err(TransitionError::FreezeEndsInThePast { until: at(5) })
    );
}

/// A queued ECS canary run (5 %) that asks at the pause after its canary step, deploying since minute 3.
fn canary_deploying() -> PipelineState {
    let mut push = staged("e1", ExecutionMode::Queued);
    if let Event::Triggered { plan, .. } = &mut push {
        let canary = TrafficShift::Canary { tenths: 50, bake_time_minutes: 10 };
        let target = DeployTarget::EcsNative(ecs_native_asking(canary, 30));
        plan.stages =
            vec![StageDefinition { name: Stage::DEPLOY, kind: StageKind::Deploy(Box::new(DeployStage::of(target))) }];
    }
    let started = Event::DeploymentStarted {
        execution_id: id("e1"),
        deployment_id: "d-e1".into(),
        service_deployment: Some("arn:sd-e1".into()),
        task_definition: None,
        previous_task_definition: None,
        in_alarm: None,
    };
    run(&[push, built("e1"), started]).0
}

fn paused(hook_id: &str) -> Event {
    Event::DeploymentPaused {
        execution_id: id("e1"),
        service_deployment: "arn:sd-e1".into(),
        hook_id: hook_id.into(),
        stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
        expires_at: Some(at(60)),
        timeout_action: None,
    }
}

fn decided(decision: ApprovalDecision) -> Event {
    match approved("e1") {
        Event::ApprovalDecided { execution_id, approver, comment, token_hash, source_ip, user_agent, .. } => {
            Event::ApprovalDecided { execution_id, decision, approver, comment, token_hash, source_ip, user_agent }
        }
        other => other,
    }
}

/// The pauses the effects continue or roll back, with how.
fn continued(effects: &[Effect]) -> Vec<(String, PauseAction)> {
    let continued = effects.iter().filter_map(|effect| match effect {
        Effect::ContinueDeployment { hook_id, action, .. } => Some((hook_id.clone(), *action)),
        _ => None,
    });
    continued.collect()
}

#[test]
fn an_approval_at_a_pause_while_frozen_is_recorded_and_carried_out_once_the_freeze_lifts() {
    // GIVEN a canary under way when the pipeline is frozen
    let state = apply(&canary_deploying(), &frozen(None), at(5)).0;
    // WHEN ECS pauses before any production traffic: sluice would continue it itself, but holds it
    let (state, effects) = apply(&state, &paused("pause-1"), at(6));
    assert_eq!(continued(&effects), Vec::new());
    // WHEN unfrozen: it continues; ECS pauses again after the canary step, and the approver approves
    let (state, effects) = apply(&state, &unfrozen(), at(7));
    assert_eq!(continued(&effects), vec![("pause-1".to_owned(), PauseAction::Continue)]);
    let (state, _) = apply(&state, &frozen(None), at(8));
    let (state, _) = apply(&state, &paused("pause-2"), at(20));
    let (state, effects) = apply(&state, &decided(ApprovalDecision::Approved), at(25));
    // THEN the decision is recorded and announced, and the deployment waits at its pause
    assert_eq!(continued(&effects), Vec::new());
    assert!(effects.iter().any(|e| matches!(e, Effect::Publish(SluiceEvent::ApprovalDecided(_)))));
    let pause =
        state.execution(&id("e1")).and_then(|run| run.deploy()?.pauses.last().cloned()).expect("the last pause");
    assert!(pause.held);
    assert_eq!(pause.approval.and_then(|a| a.decision), Some(ApprovalDecision::Approved));
    // WHEN the freeze lifts: the deployer continues it, once
    let (state, effects) = apply(&state, &unfrozen(), at(30));
    assert_eq!(continued(&effects), vec![("pause-2".to_owned(), PauseAction::Continue)]);
    let (state, _) = apply(&state, &frozen(None), at(31));
    let (_, effects) = apply(&state, &unfrozen(), at(32));
    assert_eq!(continued(&effects), Vec::new());
}

#[test]
fn a_rejection_at_a_pause_is_never_held_and_an_approval_held_past_the_pauses_timeout_is_not_carried_out() {
    let state = apply(&canary_deploying(), &paused("pause-1"), at(6)).0;
    let state = apply(&state, &paused("pause-2"), at(20)).0;
    let state = apply(&state, &frozen(None), at(21)).0;
    // A rejection rolls back at once, frozen or not
    let (_, effects) = apply(&state, &decided(ApprovalDecision::Rejected), at(25));
    assert_eq!(continued(&effects), vec![("pause-2".to_owned(), PauseAction::Rollback)]);
    // An approval held until after the pause's timeout (minute 60) is left to ECS's timeout action
    let (state, _) = apply(&state, &decided(ApprovalDecision::Approved), at(25));
    let (state, effects) = apply(&state, &unfrozen(), at(61));
    assert_eq!(continued(&effects), Vec::new());
    let pause =
        state.execution(&id("e1")).and_then(|run| run.deploy()?.pauses.last().cloned()).expect("the last pause");
    assert!(!pause.held);
}

#[test]
fn a_pause_sluice_would_continue_itself_held_past_its_timeout_is_left_to_ecs_at_the_lift() {
    // GIVEN a canary's first pause (no production traffic moved), held by a freeze; ECS waits there until minute 60
    let state = apply(&canary_deploying(), &frozen(None), at(5)).0;
    let (state, _) = apply(&state, &paused("pause-1"), at(6));
    let pause = state.execution(&id("e1")).and_then(|run| run.deploy()?.pauses.last().cloned()).expect("the pause");
    assert_eq!((pause.held, pause.held_until), (true, Some(at(60))));
    // WHEN the freeze lifts after that: ECS took its timeout action; sluice asks nothing of it
    let (_, effects) = apply(&state, &unfrozen(), at(61));
    assert_eq!(continued(&effects), Vec::new());
    // AND lifted before, it is continued
    let (_, effects) = apply(&state, &unfrozen(), at(59));
    assert_eq!(continued(&effects), vec![("pause-1".to_owned(), PauseAction::Continue)]);
}

#[test]
fn a_frozen_pipeline_survives_a_json_round_trip() {
    let (state, _) = run(&[frozen(Some(at(90))), staged("e1", ExecutionMode::Queued)]);
    let json = serde_json::to_string(&state).expect("serializes");
    assert!(json.contains("\"freeze\""), "{json}");
    let back: PipelineState = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, state);
}

fn overridden(stage_name: &str) -> Event {
    Event::Overridden {
        execution_id: id("e1"),
        stage: stage(stage_name),
        by: "arn:aws:iam::123456789012:user/dave".into(),
        reason: "the fix for incident 4312".into(),
    }
}

#[test]
fn an_override_lets_one_held_run_into_production_through_the_freeze_and_says_who_and_why() {
    // GIVEN e1 held before production by the freeze, and e2 held before staging
    let mut events = frozen_in_staging(None);
    events.extend([staged("e2", ExecutionMode::Queued), built("e2")]);
    let (state, _) = run(&events);
    // WHEN an operator overrides the freeze for e1 at production
    let (state, effects) = apply(&state, &overridden("production"), at(20));
    // THEN e1 deploys there, and e2 still waits: the pipeline stays frozen
    assert_eq!(status(&state, "e1"), Status::Running(stage("production")));
    assert_eq!(deployments(&effects).len(), 1);
    assert_eq!(status(&state, "e2"), Status::Waiting(stage("staging")));
    assert!(state.frozen().is_some());
    let given = state.execution(&id("e1")).and_then(|run| run.overridden(stage("production")).cloned());
    let given = given.expect("recorded");
    assert_eq!(
        (given.by.as_str(), given.reason.as_str(), given.at),
        ("arn:aws:iam::123456789012:user/dave", "the fix for incident 4312", at(20))
    );
    // AND the same override again changes nothing
    assert_eq!(
        transition(&state, &overridden("production"), at(21)),
        Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))
    );
}

#[test]
fn an_override_given_before_the_run_reaches_its_stage_lets_it_in_when_it_does() {
    let mut events = to_production("e1");
    events.insert(2, frozen(None));
    events.insert(3, overridden("production"));
    let (state, effects) = run(&events);
    assert_eq!(status(&state, "e1"), Status::Running(stage("production")));
    assert_eq!(deployments(&effects).len(), 2, "staging, then production");
}

#[test]
fn an_override_at_a_stage_being_deployed_continues_the_pause_the_freeze_held_and_holds_none_after() {
    let state = apply(&canary_deploying(), &frozen(None), at(5)).0;
    let (state, effects) = apply(&state, &paused("pause-1"), at(6));
    assert_eq!(continued(&effects), Vec::new());
    let override_deploy = Event::Overridden {
        execution_id: id("e1"),
        stage: Stage::DEPLOY,
        by: "arn:aws:iam::123456789012:user/dave".into(),
        reason: "hotfix".into(),
    };
    let (state, effects) = apply(&state, &override_deploy, at(7));
    assert_eq!(continued(&effects), vec![("pause-1".to_owned(), PauseAction::Continue)]);
    let (state, _) = apply(&state, &paused("pause-2"), at(20));
    let (_, effects) = apply(&state, &decided(ApprovalDecision::Approved), at(25));
    assert_eq!(continued(&effects), vec![("pause-2".to_owned(), PauseAction::Continue)]);
}

#[test]
fn only_a_deploy_stage_of_a_run_in_progress_is_overridden() {
    let (state, _) = run(&frozen_in_staging(None));
    assert_eq!(
        transition(&state, &overridden("sign-off"), at(20)),
        Err(TransitionError::NotADeployStage { execution: id("e1"), stage: stage("sign-off") })
    );
    let (state, _) = run(&[
        staged("e1", ExecutionMode::Queued),
        Event::BuildFailed {
            execution_id: id("e1"),
            build_id: "build-e1".into(),
            status: crate::pipeline::BuildFailure::Failed,
            phase: None,
            reason: "tests failed".into(),
        },
    ]);
    assert!(matches!(
        transition(&state, &overridden("production"), at(20)),
        Err(TransitionError::Finished { event: "overridden", .. })
    ));
}

#[test]
fn an_overridden_run_behind_another_held_run_enters_once_the_stage_is_free_and_the_older_still_waits() {
    // GIVEN e1 deploying to staging, then frozen; e2 and e3 built since, held behind it before staging
    let mut events = vec![staged("e1", ExecutionMode::Queued), built("e1"), started("e1", "ecs-staging"), frozen(None)];
    events.extend([staged("e2", ExecutionMode::Queued), built("e2"), staged("e3", ExecutionMode::Queued), built("e3")]);
    let (state, _) = run(&events);
    // WHEN e3 is let into staging while e1 still holds it, then e1 is done with staging
    let let_in = Event::Overridden {
        execution_id: id("e3"),
        stage: stage("staging"),
        by: "arn:aws:iam::123456789012:user/dave".into(),
        reason: "the fix".into(),
    };
    let (state, _) = apply(&state, &let_in, at(20));
    assert_eq!(status(&state, "e3"), Status::Waiting(stage("staging")), "e1 holds staging");
    let (state, _) = apply(&state, &succeeded("e1", "ecs-staging"), at(21));
    // THEN e3 takes staging, and e2, older but held, still waits
    assert_eq!(status(&state, "e3"), Status::Running(stage("staging")));
    assert_eq!(status(&state, "e2"), Status::Waiting(stage("staging")));
}

#[test]
fn a_freeze_past_its_end_holds_until_lifted_so_that_no_run_goes_before_those_it_held() {
    // GIVEN e1 held before production by a freeze until minute 20, and e2 pushed after minute 20
    let (state, _) = run(&frozen_in_staging(Some(at(20))));
    let (state, _) = apply(&state, &staged("e2", ExecutionMode::Queued), at(30));
    let (state, effects) = apply(&state, &built("e2"), at(31));
    // THEN e2 waits too: nothing enters a deploy stage before the lift lets the held runs go, oldest first
    assert_eq!(status(&state, "e2"), Status::Waiting(stage("staging")));
    assert_eq!(deployments(&effects), Vec::new());
    let (state, effects) = apply(&state, &Event::Unfrozen { by: None }, at(40));
    assert_eq!(status(&state, "e1"), Status::Running(stage("production")));
    assert_eq!(status(&state, "e2"), Status::Running(stage("staging")));
    assert_eq!(deployments(&effects).len(), 2);
}

#[test]
fn freezing_a_frozen_pipeline_again_keeps_when_it_started_and_takes_the_new_words_and_end() {
    let (state, _) = run(&[frozen(None)]);
    let again =
        Event::Frozen { by: "arn:aws:iam::123456789012:user/erin".into(), reason: "still".into(), until: Some(at(90)) };
    let (state, _) = apply(&state, &again, at(30));
    let freeze = state.frozen().expect("the freeze");
    assert_eq!(freeze.since, at(0));
    assert_eq!(
        (freeze.by.as_str(), freeze.reason.as_str(), freeze.until),
        ("arn:aws:iam::123456789012:user/erin", "still", Some(at(90)))
    );
}

#[test]
fn an_approval_request_for_a_run_let_through_the_freeze_does_not_say_it_waits_for_the_lift() {
    // GIVEN e1 deploying to staging, the pipeline frozen, and e1 let into production by an operator
    let (state, _) = run(&[staged("e1", ExecutionMode::Queued), built("e1"), started("e1", "ecs-staging")]);
    let (state, _) = apply(&state, &frozen(None), at(10));
    let (state, _) = apply(&state, &overridden("production"), at(11));
    // WHEN staging's deployment completes and the sign-off is asked for
    let (state, effects) = apply(&state, &succeeded("e1", "ecs-staging"), at(12));
    let asked = effects.iter().find_map(|e| match e {
        Effect::RequestApproval { notice, .. } => Some(notice.frozen.clone()),
        _ => None,
    });
    // THEN the request does not tell the freeze: approving releases the run into production at once
    assert_eq!(asked, Some(None));
    assert!(state.execution(&id("e1")).is_some_and(crate::pipeline::Execution::let_through_next));
}
