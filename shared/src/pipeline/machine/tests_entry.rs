//! Entry alarms: a deploy stage's start waits while any of them is in ALARM, up to the stage's entry timeout, unless
//! an operator lets the run through.

use super::*;
use crate::definitions::EntryAlarms;
use crate::pipeline::{EffectKind, EntryGate};

/// As [`to_production`], production kept by alarm `prod-5xx` (half an hour).
fn gated(execution: &str) -> Vec<Event> {
    let mut events = to_production(execution);
    if let Event::Triggered { plan, .. } = &mut events[0] {
        let production = plan.stages.iter_mut().find(|s| s.name == stage("production")).expect("production");
        if let StageKind::Deploy(deploy) = &mut production.kind {
            deploy.entry_alarms = Some(EntryAlarms { names: vec!["prod-5xx".into()], timeout_secs: 1800 });
        }
    }
    events
}

/// The entry gate of each deployment start in `effects`, by its stage.
fn gates(effects: &[Effect]) -> Vec<(Stage, Option<EntryGate>)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::StartDeployment { stage, entry, .. } => Some((*stage, entry.clone())),
            _ => None,
        })
        .collect()
}

fn overridden() -> Event {
    Event::Overridden {
        execution_id: id("e1"),
        stage: stage("production"),
        by: "arn:aws:iam::123456789012:user/dave".into(),
        reason: "the fix for the 5xx".into(),
    }
}

#[test]
fn a_run_entering_a_stage_with_entry_alarms_asks_its_start_to_wait_for_them_until_the_entry_timeout() {
    // The approval (the fifth event, at minute 4) lets e1 into production: its start waits for prod-5xx until 04:34
    let (_, effects) = run(&gated("e1"));
    let gate = EntryGate { alarms: vec!["prod-5xx".into()], until: at(4) + TimeDelta::minutes(30), calendar: None };
    assert_eq!(gates(&effects), [(stage("staging"), None), (stage("production"), Some(gate))]);
}

#[test]
fn an_override_lets_a_run_waiting_for_its_entry_alarms_start_at_once() {
    // GIVEN e1's start into production waiting for prod-5xx (the deployer found it in ALARM)
    let (mut state, effects) = run(&gated("e1"));
    state.enqueue(effects.into_iter().filter(|e| e.kind() == EffectKind::StartDeployment).skip(1).collect(), 9);
    let waiting = state.pending[0].clone();
    state.wait(&waiting, "alarm prod-5xx in ALARM", at(10));
    assert!(state.pending[0].not_before.is_some());
    // WHEN an operator lets it through
    let Ok(Decision::Apply { state, .. }) = transition(&state, &overridden(), at(11)) else { panic!("applied") };
    // THEN its start goes now, without the gate
    let pending = &state.pending[0];
    assert!(matches!(&pending.effect, Effect::StartDeployment { entry: None, .. }), "{pending:?}");
    assert_eq!((pending.not_before, pending.attempts, pending.last_error.as_deref()), (None, 0, None));
    // AND an attempt made with the gate, answered "not yet" after the override, does not hold it back
    let mut state = state;
    state.wait(&waiting, "alarm prod-5xx in ALARM", at(12));
    assert_eq!((state.pending[0].not_before, state.pending[0].last_error.as_deref()), (None, None));
}

#[test]
fn a_start_that_waits_forgets_its_earlier_failed_attempts() {
    let (mut state, effects) = run(&gated("e1"));
    state.enqueue(effects.into_iter().filter(|e| e.kind() == EffectKind::StartDeployment).skip(1).collect(), 9);
    let tried = state.pending[0].clone();
    for minute in 10..17 {
        state.fail(&tried.id, "CloudWatch throttled", false, at(minute));
    }
    assert_eq!(state.pending[0].attempts, 7, "one more would park it");
    state.wait(&tried, "alarm prod-5xx in ALARM", at(20));
    assert_eq!((state.pending[0].attempts, state.pending[0].not_before), (0, Some(at(20))));
}

#[test]
fn an_override_given_before_the_run_reaches_a_stage_with_entry_alarms_starts_it_there_without_waiting() {
    let mut events = gated("e1");
    events.insert(3, overridden());
    let (_, effects) = run(&events);
    assert_eq!(gates(&effects), [(stage("staging"), None), (stage("production"), None)]);
}

#[test]
fn a_run_whose_start_waits_for_its_entry_alarms_says_so_wherever_it_is_shown() {
    let (mut state, effects) = run(&gated("e1"));
    let run_of = |state: &PipelineState| state.execution(&id("e1")).cloned().expect("the run");
    let waits = |state: &PipelineState| crate::present::timeline::waits_for_in(&run_of(state), state, at(10));
    // Not tried yet: as any start
    state.enqueue(effects.into_iter().filter(|e| e.kind() == EffectKind::StartDeployment).skip(1).collect(), 9);
    assert_eq!(waits(&state), "the deployer to start its deployment");
    // Tried again later: what the last try said
    let why = "service prod/web is busy with service deployment ecs-svc/9; the deployment starts once it has ended";
    let waiting = state.pending[0].clone();
    state.wait(&waiting, why, at(10));
    assert_eq!(waits(&state), format!("the deployer to start its deployment: {why}"));
}

#[test]
fn a_stage_with_windows_alone_gates_its_start_with_them_and_an_override_opens_it() {
    let office = crate::definitions::Calendar {
        windows: vec![crate::definitions::Window { days: 0x1f, from: 540, to: 960, timezone: "Europe/Berlin".into() }],
        deny: Vec::new(),
    };
    let mut events = to_production("e1");
    if let Event::Triggered { plan, .. } = &mut events[0] {
        let production = plan.stages.iter_mut().find(|s| s.name == stage("production")).expect("production");
        if let StageKind::Deploy(deploy) = &mut production.kind {
            deploy.calendar = Some(office.clone());
        }
    }
    let (_, effects) = run(&events);
    let gate = EntryGate { alarms: Vec::new(), until: at(4), calendar: Some(office) };
    assert_eq!(gates(&effects), [(stage("staging"), None), (stage("production"), Some(gate))]);
    events.insert(3, overridden());
    assert_eq!(gates(&run(&events).1), [(stage("staging"), None), (stage("production"), None)]);
}

#[test]
fn a_start_waiting_at_its_gate_is_not_timed_out_and_its_deployments_deadline_counts_from_when_it_started() {
    // GIVEN e1's start into production waiting at its gate (entered at minute 4), long past a blue/green
    // deadline from then
    let (mut state, effects) = run(&gated("e1"));
    state.enqueue(effects.into_iter().filter(|e| e.kind() == EffectKind::StartDeployment).skip(1).collect(), 9);
    let timed_out = Event::DeploymentTimedOut { execution_id: id("e1") };
    assert_eq!(transition(&state, &timed_out, at(600)), Ok(Decision::Ignore(IgnoreReason::StartWaits)));
    // WHEN the gate lets it in at minute 600 and the deployment starts
    let start = state.pending[0].id.clone();
    state.complete(&start);
    let Ok(Decision::Apply { state, .. }) = transition(&state, &started("e1", "ecs-prod"), at(600)) else {
        panic!("started")
    };
    let deploy = state.execution(&id("e1")).and_then(|run| run.deploy().cloned()).expect("deploy facts");
    assert_eq!((deploy.started_at, deploy.let_in_at), (at(4), Some(at(600))));
    // AND the timeline tells the wait
    let told = crate::present::timeline::timeline(state.execution(&id("e1")).expect("the run"));
    let said: Vec<&str> = told.iter().map(|line| line.what.as_str()).collect();
    assert!(said.contains(&"reached the stage (it has windows or entry alarms)"), "{said:?}");
    assert!(
        said.contains(&"blue_green deployment ecs-prod started, 9h 56m after the run reached the stage"),
        "{said:?}"
    );
    // THEN its deadline counts from then: not reached ten minutes later
    assert!(
        matches!(transition(&state, &timed_out, at(610)), Err(TransitionError::DeadlineNotReached { .. })),
        "the deadline counts from the start"
    );
}

#[test]
fn a_start_held_at_its_gate_is_recorded_shown_on_github_and_forgotten_once_it_starts() {
    // GIVEN e1, shown on GitHub, at production, whose gate the deployer found closed
    let mut events = gated("e1");
    if let Event::Triggered { plan, .. } = &mut events[0] {
        plan.github = Some(crate::definitions::GitHubReport { environment: "production".into() });
    }
    let (state, _) = run(&events);
    let why = "alarm prod-5xx to leave ALARM (entry_alarms), until 2026-12-06 09:34 UTC, when the run fails";
    let held = Event::StartHeld { execution_id: id("e1"), why: Some(why.into()) };
    let Ok(Decision::Apply { state, effects }) = transition(&state, &held, at(10)) else { panic!("applied") };
    // THEN the run says what it waits for, and GitHub is told (the notifier rung)
    let run_of = |state: &PipelineState| state.execution(&id("e1")).cloned().expect("the run");
    assert_eq!(crate::present::timeline::waits_for_in(&run_of(&state), &state, at(10)), why);
    assert!(effects.contains(&Effect::ReportToGitHub { execution_id: id("e1") }), "{effects:?}");
    let shown = crate::present::github_report::shown(&run_of(&state));
    assert_eq!(
        shown.description,
        "run #1: waiting to deploy to production for alarm prod-5xx to leave ALARM (entry_alarms), until 2026-12-06 \
         09:34 UTC, when the run fails"
    );
    // AND told again the same, nothing changes
    assert_eq!(transition(&state, &held, at(15)), Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)));
    // AND a later try that fails otherwise (the gate open, the service busy) makes it say nothing of the gate
    let open = Event::StartHeld { execution_id: id("e1"), why: None };
    let Ok(Decision::Apply { state: opened, effects }) = transition(&state, &open, at(16)) else { panic!("applied") };
    assert_eq!(run_of(&opened).deploy().and_then(|deploy| deploy.held.clone()), None);
    assert!(effects.contains(&Effect::ReportToGitHub { execution_id: id("e1") }), "{effects:?}");
    // AND once the deployment starts, it is forgotten, and GitHub told it deploys
    let Ok(Decision::Apply { state, effects }) = transition(&state, &started("e1", "ecs-prod"), at(20)) else {
        panic!("started")
    };
    assert_eq!(run_of(&state).deploy().and_then(|deploy| deploy.held.clone()), None);
    assert!(effects.contains(&Effect::ReportToGitHub { execution_id: id("e1") }), "{effects:?}");
    assert_eq!(transition(&state, &held, at(21)), Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
}
