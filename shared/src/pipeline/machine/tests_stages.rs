//! Runs of a pipeline with several stages: the build once, then staging, a sign-off and production, each deploy
//! stage deploying the same image.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::contract::testing::{blue_green, push, rolling};
use crate::definitions::{Approval, DeployStage, ExecutionMode, StageDefinition, StageKind};
use crate::pipeline::{BuildOutputs, KEPT_PAUSES};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

fn stage(name: &str) -> Stage {
    Stage::new(name).expect("a stage name")
}

/// staging (a rolling update of staging/web), sign-off (an approval), production (blue/green of prod/web).
fn staged(execution: &str, mode: ExecutionMode) -> Event {
    let mut event = push(execution, mode, false);
    if let Event::Triggered { plan, .. } = &mut event {
        let mut staging = rolling(Vec::new());
        staging.cluster = "staging".into();
        let deploy = |target| StageKind::Deploy(Box::new(DeployStage::of(target)));
        plan.stages = vec![
            StageDefinition { name: stage("staging"), kind: deploy(DeployTarget::Rolling(staging)) },
            StageDefinition {
                name: stage("sign-off"),
                kind: StageKind::Approval(Approval {
                    topic_arn: "arn:aws:sns:eu-west-1:1:signoff".into(),
                    timeout_secs: 3600,
                    approvers: None,
                }),
            },
            StageDefinition {
                name: stage("production"),
                kind: deploy(DeployTarget::BlueGreen(blue_green(Vec::new()))),
            },
        ];
    }
    event
}

fn id(name: &str) -> ExecutionId {
    ExecutionId::from(name)
}

fn built(execution: &str) -> Event {
    Event::BuildSucceeded {
        execution_id: id(execution),
        build_id: format!("build-{execution}"),
        outputs: BuildOutputs {
            image_uri: format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:{execution}"),
            artifacts: Some(format!("s3://artifacts/web-build/build-{execution}")),
        },
    }
}

fn started(execution: &str, deployment: &str) -> Event {
    Event::DeploymentStarted {
        execution_id: id(execution),
        deployment_id: deployment.into(),
        service_deployment: None,
        task_definition: Some(format!("arn:aws:ecs:eu-west-1:1:task-definition/web:{deployment}")),
        previous_task_definition: None,
        in_alarm: None,
    }
}

fn succeeded(execution: &str, deployment: &str) -> Event {
    Event::DeploymentSucceeded { execution_id: id(execution), deployment_id: deployment.into(), tasks: None }
}

fn approved(execution: &str) -> Event {
    Event::ApprovalDecided {
        execution_id: id(execution),
        decision: ApprovalDecision::Approved,
        approver: "ada@example.com".into(),
        comment: None,
        token_hash: None,
        source_ip: None,
        user_agent: None,
    }
}

/// Applies each event, one minute apart, each of which must be applied; the state and every effect decided.
fn run(events: &[Event]) -> (PipelineState, Vec<Effect>) {
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

/// A queued run of `execution` through staging and sign-off, up to production (its deployments `ecs-staging`).
fn to_production(execution: &str) -> Vec<Event> {
    vec![
        staged(execution, ExecutionMode::Queued),
        built(execution),
        started(execution, "ecs-staging"),
        succeeded(execution, "ecs-staging"),
        approved(execution),
    ]
}

/// The deployments the machine asked for: each stage's target cluster and the image it deploys.
fn deployments(effects: &[Effect]) -> Vec<(String, Option<String>)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::StartDeployment { target, image_uri, .. } => {
                Some((target.ecs_service().0.to_owned(), image_uri.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_staged_run_builds_once_and_deploys_the_same_image_to_staging_then_after_sign_off_to_production() {
    let mut events = to_production("e1");
    events.extend([started("e1", "d-prod"), succeeded("e1", "d-prod")]);
    let (state, effects) = run(&events);
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::Succeeded);
    let builds = effects.iter().filter(|effect| matches!(effect, Effect::StartBuild { .. })).count();
    assert_eq!(builds, 1, "built once");
    let image = Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:e1".to_owned());
    assert_eq!(deployments(&effects), [("staging".to_owned(), image.clone()), ("prod".to_owned(), image)]);
    let names: Vec<&str> = run.stages.iter().map(|record| record.name.as_str()).collect();
    assert_eq!(names, ["staging", "sign-off", "production"]);
    let deployed: Vec<Option<&str>> =
        run.stages.iter().map(|r| r.deploy.as_ref().and_then(|d| d.deployment_id.as_deref())).collect();
    assert_eq!(deployed, [Some("ecs-staging"), None, Some("d-prod")]);
    let requested: Vec<Option<Stage>> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Publish(SluiceEvent::DeploymentRequested(requested)) => Some(requested.stage),
            _ => None,
        })
        .collect();
    assert_eq!(requested, [Some(stage("staging")), Some(stage("production"))]);
}

#[test]
fn a_failure_in_production_ends_the_run_there_naming_the_stage_and_keeps_what_staging_did() {
    let mut events = to_production("e1");
    events.push(started("e1", "d-prod"));
    events.push(Event::DeploymentFailed {
        execution_id: id("e1"),
        deployment_id: Some("d-prod".into()),
        reason: "alarm 5xx went off".into(),
        rolled_back: true,
    });
    let (state, _) = run(&events);
    let run = state.execution(&id("e1")).expect("the run");
    assert_eq!(run.status, Status::RolledBack);
    assert_eq!(run.reason.as_deref(), Some("in production: alarm 5xx went off"));
    let staging = run.record(stage("staging")).and_then(|record| record.deploy.as_ref()).expect("staging's record");
    assert!(staging.finished_at.is_some());
    assert_eq!(run.retry_stage(), Some(stage("production")), "a retry enters production with the same build");
}

#[test]
fn a_run_holding_staging_does_not_block_another_from_production() {
    let (state, effects) = run(&[
        staged("e1", ExecutionMode::Queued),
        built("e1"),
        started("e1", "ecs-staging-1"),
        succeeded("e1", "ecs-staging-1"),
        approved("e1"),
        staged("e2", ExecutionMode::Queued),
        built("e2"),
    ]);
    let status = |name: &str| state.execution(&id(name)).map(|run| run.status);
    assert_eq!(status("e1"), Some(Status::Running(stage("production"))));
    assert_eq!(status("e2"), Some(Status::Running(stage("staging"))));
    assert_eq!(deployments(&effects).len(), 3, "staging for e1, production for e1, staging for e2");
}

#[test]
fn a_queued_run_waits_for_a_stage_another_holds_and_enters_it_when_it_is_free() {
    let (state, _) =
        run(&[staged("e1", ExecutionMode::Queued), built("e1"), staged("e2", ExecutionMode::Queued), built("e2")]);
    assert_eq!(state.execution(&id("e2")).map(|run| run.status), Some(Status::Waiting(stage("staging"))));
    let (state, _) = {
        let mut events = vec![staged("e1", ExecutionMode::Queued), built("e1"), staged("e2", ExecutionMode::Queued)];
        events.extend([built("e2"), started("e1", "ecs-staging-1"), succeeded("e1", "ecs-staging-1")]);
        run(&events)
    };
    assert_eq!(state.execution(&id("e1")).map(|run| run.status), Some(Status::Running(stage("sign-off"))));
    assert_eq!(state.execution(&id("e2")).map(|run| run.status), Some(Status::Running(stage("staging"))));
}

#[test]
fn a_late_word_about_stagings_deployment_is_ignored_in_production_and_claims_nothing() {
    let (state, _) = run(&to_production("e1"));
    for late in [succeeded("e1", "ecs-staging"), started("e1", "ecs-staging")] {
        let decision = transition(&state, &late, at(30));
        assert_eq!(decision, Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)), "{}", late.name());
    }
    let production = state.execution(&id("e1")).and_then(|run| run.record(stage("production")));
    assert_eq!(production.and_then(|record| record.deploy.as_ref()).and_then(|d| d.deployment_id.clone()), None);
}

#[test]
fn a_superseded_run_waiting_for_a_stage_ends_naming_the_newer_run_at_that_stage() {
    let (state, _) = run(&[
        staged("e1", ExecutionMode::Superseded),
        built("e1"),
        staged("e2", ExecutionMode::Superseded),
        built("e2"),
        staged("e3", ExecutionMode::Superseded),
        built("e3"),
    ]);
    let e2 = state.execution(&id("e2")).expect("e2");
    assert_eq!(e2.status, Status::Superseded);
    assert!(e2.reason.as_deref().is_some_and(|reason| reason.contains("e3")), "{:?}", e2.reason);
    assert_eq!(state.execution(&id("e3")).map(|run| run.status), Some(Status::Waiting(stage("staging"))));
}

#[test]
fn a_late_start_of_stagings_deployment_is_recorded_in_stagings_record_while_the_run_waits_for_sign_off() {
    let (state, _) = run(&[staged("e1", ExecutionMode::Queued), built("e1"), succeeded("e1", "ecs-staging")]);
    assert_eq!(state.execution(&id("e1")).map(|run| run.status), Some(Status::Running(stage("sign-off"))));
    let late = Event::DeploymentStarted {
        execution_id: id("e1"),
        deployment_id: "ecs-staging".into(),
        service_deployment: None,
        task_definition: Some("arn:aws:ecs:eu-west-1:1:task-definition/web:9".into()),
        previous_task_definition: Some("arn:aws:ecs:eu-west-1:1:task-definition/web:8".into()),
        in_alarm: None,
    };
    let Ok(Decision::Apply { state, .. }) = transition(&state, &late, at(10)) else { panic!("not applied") };
    let run = state.execution(&id("e1")).expect("the run");
    let names: Vec<&str> = run.stages.iter().map(|record| record.name.as_str()).collect();
    assert_eq!(names, ["staging", "sign-off"]);
    let staging = run.record(stage("staging")).and_then(|record| record.deploy.as_ref()).expect("staging's deployment");
    assert_eq!(staging.previous_task_definition.as_deref(), Some("arn:aws:ecs:eu-west-1:1:task-definition/web:8"));
    assert!(run.record(stage("sign-off")).is_some_and(|record| record.deploy.is_none()));
}

/// staging soaks `minutes` once deployed, then production.
fn soaking(execution: &str, minutes: u64) -> Event {
    let mut event = staged(execution, ExecutionMode::Queued);
    if let Event::Triggered { plan, .. } = &mut event {
        plan.stages.retain(|planned| planned.name != stage("sign-off"));
        if let StageKind::Deploy(deploy) = &mut plan.stages[0].kind {
            deploy.soak_secs = Some(minutes * 60);
        }
    }
    event
}

#[test]
fn a_release_soaks_at_staging_holding_it_before_production_takes_it() {
    let (state, _) = run(&[
        soaking("e1", 30),
        built("e1"),
        started("e1", "ecs-staging"),
        succeeded("e1", "ecs-staging"),
        soaking("e2", 30),
        built("e2"),
    ]);
    // The release soaks until 30 minutes after staging's deployment succeeded (minute 3); the next run waits for
    // staging meanwhile, and a repeated word of staging's success changes nothing
    let e1 = state.execution(&id("e1")).expect("e1");
    assert_eq!((e1.status, e1.soaking()), (Status::Running(stage("staging")), Some(at(33))));
    assert_eq!(state.execution(&id("e2")).map(|run| run.status), Some(Status::Waiting(stage("staging"))));
    let again = transition(&state, &succeeded("e1", "ecs-staging"), at(10));
    assert_eq!(again, Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)));
    // A deadline does not cut a soak short, and the soak's end cannot come early
    let late = transition(&state, &Event::DeploymentTimedOut { execution_id: id("e1") }, at(400));
    assert_eq!(late, Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
    let early = transition(&state, &Event::SoakEnded { execution_id: id("e1") }, at(20));
    assert_eq!(early, Err(TransitionError::SoakNotOver { execution: id("e1"), until: at(33) }));
    // Once soaked, production takes the release and staging goes to the next run
    let Ok(Decision::Apply { state, effects }) =
        transition(&state, &Event::SoakEnded { execution_id: id("e1") }, at(33))
    else {
        panic!("the soak's end was not applied")
    };
    assert_eq!(state.execution(&id("e1")).map(|run| run.status), Some(Status::Running(stage("production"))));
    assert_eq!(state.execution(&id("e2")).map(|run| run.status), Some(Status::Running(stage("staging"))));
    assert_eq!(deployments(&effects).len(), 2, "production for e1, staging for e2");
}

#[test]
fn each_deployment_requested_names_its_stage_and_the_github_environment_it_is_shown_in() {
    let mut pushed = staged("e1", ExecutionMode::Queued);
    if let Event::Triggered { plan, .. } = &mut pushed {
        plan.github = Some(crate::definitions::GitHubReport { environment: "web".into() });
        if let Some(StageKind::Deploy(production)) = plan.stages.last_mut().map(|last| &mut last.kind) {
            production.environment = Some("prod-eu".into());
        }
    }
    let mut events = to_production("e1");
    events[0] = pushed;

    let (_, effects) = run(&events);

    let requested: Vec<(Option<String>, Option<String>)> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Publish(SluiceEvent::DeploymentRequested(requested)) => {
                Some((requested.stage.map(|stage| stage.to_string()), requested.environment.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        requested,
        [
            (Some("staging".to_owned()), Some("staging".to_owned())),
            (Some("production".to_owned()), Some("prod-eu".to_owned())),
        ],
        "a stage is shown as its name unless it names its environment"
    );
}

#[test]
fn a_deployment_shown_for_staging_while_the_run_is_in_production_asks_for_productions_too() {
    let mut pushed = staged("e1", ExecutionMode::Queued);
    if let Event::Triggered { plan, .. } = &mut pushed {
        plan.github = Some(crate::definitions::GitHubReport { environment: "web".into() });
    }
    let mut events = to_production("e1");
    events[0] = pushed;
    let (state, _) = run(&events);
    let created = |deployment, name: &str| Event::GitHubDeploymentCreated {
        execution_id: id("e1"),
        deployment,
        stage: Some(stage(name)),
    };
    let Ok(Decision::Apply { state, effects }) = transition(&state, &created(7, "staging"), at(20)) else {
        panic!("not applied")
    };
    assert!(effects.contains(&Effect::ReportToGitHub { execution_id: id("e1") }), "{effects:?}");
    let Ok(Decision::Apply { state, effects }) = transition(&state, &created(8, "production"), at(21)) else {
        panic!("not applied")
    };
    assert!(effects.is_empty(), "{effects:?}");
    let shown: Vec<(String, u64)> = state
        .execution(&id("e1"))
        .expect("e1")
        .github_deployments
        .iter()
        .map(|shown| (shown.stage.to_string(), shown.deployment))
        .collect();
    assert_eq!(shown, [("staging".to_owned(), 7), ("production".to_owned(), 8)]);
    assert_eq!(transition(&state, &created(9, "staging"), at(22)), Ok(Decision::Ignore(IgnoreReason::DuplicateEvent)));
}

#[test]
fn the_sign_off_request_says_what_staging_did_and_where_approving_releases_the_build() {
    let (_, effects) = run(&[staged("e1", ExecutionMode::Queued), built("e1"), started("e1", "ecs-staging")]);
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::RequestApproval { .. })));
    let (_, effects) = run(&[
        staged("e1", ExecutionMode::Queued),
        built("e1"),
        started("e1", "ecs-staging"),
        succeeded("e1", "ecs-staging"),
    ]);
    let (notice, release) = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::RequestApproval { notice, release, .. } => Some((notice.clone(), release.clone())),
            _ => None,
        })
        .expect("the sign-off is asked for");
    // The request reads what production runs and compares the build's task definition with it.
    let release = release.expect("where approving releases the build");
    assert_eq!((release.cluster.as_str(), release.service.as_str()), ("prod", "web"));
    assert_eq!(release.artifacts, "s3://artifacts/web-build/build-e1");
    let earlier: Vec<(&str, &str)> = notice.earlier.iter().map(|s| (s.stage.as_str(), s.said.as_str())).collect();
    assert_eq!(earlier, [("staging", "rolling deployment ecs-staging, running there 0 ms")]);
    let next = notice.releases_to.as_ref().map(|s| (s.stage.as_str(), s.said.as_str()));
    assert_eq!(next, Some(("production", "blue_green of prod/web")));
}

#[test]
fn a_pause_in_production_asks_to_release_it_to_production_itself_naming_what_staging_did() {
    let mut events = to_production("e1");
    if let Event::Triggered { plan, .. } = &mut events[0] {
        let canary = crate::definitions::TrafficShift::Canary { tenths: 50, bake_time_minutes: 10 };
        let native = crate::contract::testing::ecs_native_asking(canary, 30);
        let production = plan.stages.last_mut().map(|last| &mut last.kind);
        let Some(StageKind::Deploy(production)) = production else { panic!("production deploys") };
        production.target = DeployTarget::EcsNative(native);
    }
    events.push(Event::DeploymentStarted {
        execution_id: id("e1"),
        deployment_id: "ecs-production".into(),
        service_deployment: Some("arn:sd-production".into()),
        task_definition: None,
        previous_task_definition: None,
        in_alarm: None,
    });
    // The first pause (no production traffic moved yet) is continued by sluice; the second, after the canary step,
    // asks.
    for hook in ["pause-1", "pause-2"] {
        events.push(Event::DeploymentPaused {
            execution_id: id("e1"),
            service_deployment: "arn:sd-production".into(),
            hook_id: hook.into(),
            stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
            expires_at: Some(at(60)),
            timeout_action: None,
        });
    }
    let (_, effects) = run(&events);
    let (notice, release) = effects
        .iter()
        .rev()
        .find_map(|effect| match effect {
            Effect::RequestApproval { notice, release, .. } => Some((notice.clone(), release.clone())),
            _ => None,
        })
        .expect("the pause asks");
    assert_eq!(release, None, "a pause releases nothing new: the deployment is under way");
    let earlier: Vec<&str> = notice.earlier.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(earlier, ["staging", "sign-off"]);
    let next = notice.releases_to.as_ref().map(|s| (s.stage.as_str(), s.said.as_str()));
    assert_eq!(next, Some(("production", "ecs_canary of prod/web")));
}

#[test]
fn a_run_waiting_for_production_got_past_staging_but_not_production() {
    let mut events = to_production("e1");
    events.extend([
        staged("e2", ExecutionMode::Queued),
        built("e2"),
        started("e2", "ecs-staging-2"),
        succeeded("e2", "ecs-staging-2"),
        approved("e2"),
    ]);
    let (state, _) = run(&events);
    let e2 = state.execution(&id("e2")).expect("e2");
    assert_eq!(e2.status, Status::Waiting(stage("production")));
    assert!(e2.passed(stage("staging")));
    assert!(!e2.passed(stage("production")));
}

#[test]
fn a_run_that_ended_is_stored_abridged_once_nothing_waits_on_it_and_nothing_changes_it_then() {
    let mut events = to_production("e1");
    events.push(Event::DeploymentFailed {
        execution_id: id("e1"),
        deployment_id: None,
        reason: "the canary alarmed".into(),
        rolled_back: true,
    });
    let (state, _) = run(&events);
    let whole = state.execution(&id("e1")).expect("e1").clone();
    assert_eq!(whole.status, Status::RolledBack);
    // An effect that needs what the run did (a stop of its deployment) keeps it whole; an announcement does not
    let mut waiting = state.clone();
    let stop = Effect::StopDeployment {
        execution_id: id("e1"),
        stage: stage("production"),
        target: DeployTarget::BlueGreen(blue_green(Vec::new())),
        deployment: "d-1".into(),
    };
    waiting.enqueue(vec![stop], 1);
    assert_eq!(waiting.stored().execution(&id("e1")), Some(&whole));
    let stored = state.stored();
    let abridged = stored.execution(&id("e1")).expect("e1");
    assert!(abridged.abridged && abridged.stages.is_empty());
    assert_eq!((abridged.status, &abridged.source, &abridged.reason), (whole.status, &whole.source, &whole.reason));
    // Nothing changes an abridged run, and a save never writes it over the run's own item
    let late = succeeded("e1", "ecs-production");
    assert_eq!(transition(&stored, &late, at(30)), Ok(Decision::Ignore(IgnoreReason::AlreadyFinished)));
    let write = crate::contract::ports::Write::between(None, &stored, None);
    assert!(write.executions.is_empty(), "{:?}", write.executions.len());
}

#[test]
fn a_run_whose_deployment_a_newer_run_stopped_did_not_get_past_that_stage() {
    let mut events = vec![staged("e1", ExecutionMode::Superseded), built("e1"), started("e1", "ecs-staging")];
    events.push(Event::DeploymentSuperseded {
        execution_id: id("e1"),
        deployment_id: "ecs-staging".into(),
        by: id("e2"),
        by_pipeline: "web".into(),
        reason: "ECS stopped it for a newer deployment".into(),
    });
    let (state, _) = run(&events);
    let e1 = state.execution(&id("e1")).expect("e1");
    assert_eq!(e1.status, Status::Superseded);
    assert!(!e1.passed(stage("staging")));
}

/// The token hashes of `n` pauses' links.
fn hashes(n: usize) -> Vec<String> {
    (1..=n).map(|k| format!("{k:x>64}")).collect()
}

#[test]
fn the_pauses_of_a_stage_a_run_went_past_are_kept_apart_from_the_pipelines_item_and_the_runs() {
    let events = crate::contract::testing::through_a_paused_staging("e1", &hashes(1));
    let (before, _) = run(&events[..events.len() - 1]);
    let (after, _) = run(&events);
    let e1 = after.execution(&id("e1")).expect("e1");
    assert_eq!(e1.status, Status::Running(stage("sign-off")));

    // While the run deploys to staging, its pauses are its own
    let deploying = before.stored();
    let staging = deploying.execution(&id("e1")).and_then(|run| run.record(stage("staging"))?.deploy.clone());
    assert_eq!(staging.map(|deploy| (deploy.pauses.len(), deploy.pauses_apart)), Some((2, 0)));

    // Once it went past staging, the pipeline's item counts them and the save writes them once, apart
    let stored = after.stored();
    let staging = stored.execution(&id("e1")).and_then(|run| run.record(stage("staging"))?.deploy.clone());
    assert_eq!(staging.map(|deploy| (deploy.pauses.len(), deploy.pauses_apart)), Some((0, 2)));
    let write = crate::contract::ports::Write::between(Some(&before), &after, None);
    let apart: Vec<(Stage, usize)> = write.apart.iter().map(|apart| (apart.stage, apart.pauses.len())).collect();
    assert_eq!(apart, [(stage("staging"), 2)]);
    assert!(write.links.is_empty(), "{:?}", write.links);

    // The decision's link was written as the request went out, kept past the pause's deadline as long as receipts
    let sent = events.iter().position(|event| matches!(event, Event::ApprovalSent { .. })).expect("a request");
    let (unsent, _) = run(&events[..sent]);
    let (asked, _) = run(&events[..=sent]);
    let write = crate::contract::ports::Write::between(Some(&unsent), &asked, None);
    let link = crate::contract::ports::approval_link(&hashes(1)[0]);
    let kept = write.links.iter().find(|written| written.aws_id == link).and_then(|written| written.expires_at);
    let deadline = asked.execution(&id("e1")).and_then(|run| run.open_pause()?.approval.as_ref().map(|a| a.expires_at));
    assert_eq!(kept, deadline.map(|at| at + TimeDelta::days(crate::contract::ports::RECEIPT_DAYS)));

    // Read back from the item, nothing is set apart again, and the record rejoins whole
    let again = crate::contract::ports::Write::between(Some(&stored), &stored, None);
    assert!(again.apart.is_empty() && again.executions.is_empty());
    let mut whole = stored.execution(&id("e1")).expect("e1").clone();
    whole.rejoin(crate::contract::ports::Write::between(Some(&before), &after, None).apart);
    assert_eq!(&whole, e1);
}

#[test]
fn the_stage_a_run_is_at_keeps_its_newest_pauses_and_sets_older_ones_apart_once_it_holds_more_than_twice_that() {
    let events = crate::contract::testing::through_a_paused_staging("e1", &hashes(2 * KEPT_PAUSES + 2));
    let pause = |n: usize| {
        let hook = format!("pause-{n}");
        events.iter().position(|event| matches!(event, Event::DeploymentPaused { hook_id, .. } if *hook_id == hook))
    };
    // Up to twice the pauses kept (pause-0 to pause-9), nothing is set apart
    let (few, _) = run(&events[..=pause(2 * KEPT_PAUSES - 1).expect("the tenth pause")]);
    let counted = few.stored().execution(&id("e1")).map(|run| (run.pauses().count(), run.has_pauses_apart()));
    assert_eq!(counted, Some((2 * KEPT_PAUSES, false)));
    // Past it, all but the newest go apart in one batch, from the stage's first pause
    let (many, _) = run(&events[..events.len() - 1]);
    let write = crate::contract::ports::Write::between(Some(&few), &many, None);
    let batches: Vec<(usize, usize)> = write.apart.iter().map(|batch| (batch.from, batch.pauses.len())).collect();
    assert_eq!(batches, [(0, 2 * KEPT_PAUSES + 3 - KEPT_PAUSES)]);
    let mut stored = many.stored().execution(&id("e1")).expect("e1").clone();
    assert_eq!(stored.pauses().count(), KEPT_PAUSES);
    // Read back whole in order; a batch set apart after the run was read is left out, and a stage missing one of
    // its batches keeps counting them rather than showing a gap
    let mut later = write.apart[0].clone();
    later.from = write.apart[0].pauses.len();
    let mut missing = stored.clone();
    stored.rejoin(vec![later.clone(), write.apart[0].clone()]);
    let whole = many.execution(&id("e1")).expect("e1");
    assert_eq!(stored.pauses().collect::<Vec<_>>(), whole.pauses().collect::<Vec<_>>());
    missing.rejoin(vec![later]);
    assert_eq!(missing.pauses().count(), KEPT_PAUSES);
    assert!(missing.has_pauses_apart());
}

/// staging soaks 30 minutes watched by `web-staging-5xx` (and `strict_alarms` if `strict`), its rolling update
/// started from web:7 with `in_alarm` in ALARM then; the deployment succeeded at minute 3.
fn soaking_watched(strict: bool, in_alarm: &[&str]) -> PipelineState {
    let mut pushed = soaking("e1", 30);
    if let Event::Triggered { plan, .. } = &mut pushed
        && let StageKind::Deploy(deploy) = &mut plan.stages[0].kind
    {
        let names = vec!["web-staging-5xx".to_owned(), "web-staging-latency".to_owned()];
        deploy.soak_alarms = Some(crate::definitions::SoakAlarms { names, strict });
    }
    let started = Event::DeploymentStarted {
        execution_id: id("e1"),
        deployment_id: "ecs-staging".into(),
        service_deployment: None,
        task_definition: Some("arn:aws:ecs:eu-west-1:1:task-definition/web:8".into()),
        previous_task_definition: Some("arn:aws:ecs:eu-west-1:1:task-definition/web:7".into()),
        in_alarm: Some(in_alarm.iter().map(|name| (*name).to_owned()).collect()),
    };
    run(&[pushed, built("e1"), started, succeeded("e1", "ecs-staging")]).0
}

fn raised(alarm: &str) -> Event {
    Event::AlarmRaised {
        execution_id: id("e1"),
        stage: stage("staging"),
        alarm: alarm.into(),
        reason: "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0).".into(),
    }
}

#[test]
fn a_soak_watched_by_alarms_asks_the_deployer_for_them_and_keeps_those_already_in_alarm() {
    let (_, effects) = run(&[soaking("e1", 30), built("e1")]);
    assert!(effects.iter().any(|e| matches!(e, Effect::StartDeployment { soak_alarms, .. } if soak_alarms.is_empty())));
    let state = soaking_watched(false, &["web-staging-latency"]);
    let run = state.execution(&id("e1")).expect("e1");
    assert_eq!(run.soaking(), Some(at(33)));
    let before = run.deploy().and_then(|deploy| deploy.in_alarm_before.clone());
    assert_eq!(before, Some(vec!["web-staging-latency".to_owned()]));
}

#[test]
fn an_alarm_going_into_alarm_during_the_soak_rolls_staging_back_and_the_run_ends_rolled_back_naming_it() {
    let state = soaking_watched(false, &[]);
    let Ok(Decision::Apply { state, effects }) = transition(&state, &raised("web-staging-5xx"), at(10)) else {
        panic!("the alarm was not applied")
    };
    // The deployer is asked to put web:7 back; the run is not over until it has
    let rollback = effects.iter().find_map(|effect| match effect {
        Effect::RollBack { task_definition, .. } => Some(task_definition.clone()),
        _ => None,
    });
    assert_eq!(rollback.as_deref(), Some("arn:aws:ecs:eu-west-1:1:task-definition/web:7"));
    // A second word of the same alarm, or the soak's end meanwhile, changes nothing
    assert_eq!(
        transition(&state, &raised("web-staging-5xx"), at(11)),
        Ok(Decision::Ignore(IgnoreReason::DuplicateEvent))
    );
    let ended = transition(&state, &Event::SoakEnded { execution_id: id("e1") }, at(40));
    assert_eq!(ended, Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
    let back = Event::DeploymentFailed {
        execution_id: id("e1"),
        deployment_id: Some("ecs-staging".into()),
        reason: "sluice rolled service web back to arn:aws:ecs:eu-west-1:1:task-definition/web:7 (ECS deployment \
                 ecs-svc/2)"
            .into(),
        rolled_back: true,
    };
    let Ok(Decision::Apply { state, .. }) = transition(&state, &back, at(12)) else { panic!("not applied") };
    let run = state.execution(&id("e1")).expect("e1");
    assert_eq!(run.status, Status::RolledBack);
    let reason = run.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("in staging: alarm web-staging-5xx went into ALARM during the soak (Threshold Crossed"),
        "{reason}"
    );
    assert!(reason.ends_with("back to arn:aws:ecs:eu-west-1:1:task-definition/web:7 (ECS deployment ecs-svc/2)"));
}

#[test]
fn an_alarm_that_does_not_watch_the_soak_or_comes_once_it_is_over_is_no_verdict_on_the_release() {
    let state = soaking_watched(false, &[]);
    let other = transition(&state, &raised("api-prod-5xx"), at(10));
    assert_eq!(other, Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
    let Ok(Decision::Apply { state, .. }) = transition(&state, &Event::SoakEnded { execution_id: id("e1") }, at(33))
    else {
        panic!("the soak's end was not applied")
    };
    let late = transition(&state, &raised("web-staging-5xx"), at(34));
    assert_eq!(late, Ok(Decision::Ignore(IgnoreReason::AlreadyPastStage)));
}

#[test]
fn the_sign_off_after_a_watched_soak_says_what_ran_the_digest_and_the_alarms_that_stayed_quiet() {
    let mut pushed = staged("e1", ExecutionMode::Queued);
    if let Event::Triggered { plan, .. } = &mut pushed
        && let StageKind::Deploy(deploy) = &mut plan.stages[0].kind
    {
        deploy.soak_secs = Some(30 * 60);
        let names = vec!["web-staging-5xx".to_owned(), "web-staging-latency".to_owned()];
        deploy.soak_alarms = Some(crate::definitions::SoakAlarms { names, strict: false });
    }
    let ours = "arn:aws:ecs:eu-west-1:1:task-definition/web:ecs-staging";
    let image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:e1";
    let task = |n: u32| crate::deploy::RunningTask {
        task_arn: format!("arn:aws:ecs:eu-west-1:1:task/staging/task{n}"),
        task_definition: ours.into(),
        containers: vec![crate::deploy::RunningContainer {
            name: "web".into(),
            image: image.into(),
            digest: Some("sha256:e1".into()),
        }],
    };
    let mut started = started("e1", "ecs-staging");
    if let Event::DeploymentStarted { in_alarm, .. } = &mut started {
        *in_alarm = Some(vec!["web-staging-latency".into()]);
    }
    let succeeded = Event::DeploymentSucceeded {
        execution_id: id("e1"),
        deployment_id: "ecs-staging".into(),
        tasks: Some(vec![task(1), task(2)]),
    };
    let (state, _) = run(&[pushed, built("e1"), started, succeeded]);
    let Ok(Decision::Apply { effects, .. }) = transition(&state, &Event::SoakEnded { execution_id: id("e1") }, at(40))
    else {
        panic!("the soak's end was not applied")
    };
    let notice = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::RequestApproval { notice, .. } => Some(notice.clone()),
            _ => None,
        })
        .expect("the sign-off is asked for");
    let earlier: Vec<(&str, &str)> = notice.earlier.iter().map(|s| (s.stage.as_str(), s.said.as_str())).collect();
    assert_eq!(
        earlier,
        [(
            "staging",
            "rolling deployment ecs-staging, 2 tasks run sha256:e1, soaked watched by web-staging-5xx, \
             web-staging-latency (none went into ALARM), web-staging-latency already in ALARM before its deployment, \
             running there 37m 00s"
        )]
    );
}

#[path = "tests_freeze.rs"]
mod freeze;

#[path = "tests_entry.rs"]
mod entry;
