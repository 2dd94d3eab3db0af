//! What GitHub shows of a run: the commit status `sluice/<pipeline>` on its commit and the state of its Deployment,
//! both read from the run's record. Pure.
//!
//! Commit statuses: <https://docs.github.com/en/rest/commits/statuses#create-a-commit-status> (`error`, `failure`,
//! `pending`, `success`). Deployments and their statuses:
//! <https://docs.github.com/en/rest/deployments/deployments#create-a-deployment> and
//! <https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status> (`queued`, `in_progress`,
//! `success`, `failure`, `inactive`, ...).

use super::text::span;
use crate::pipeline::{Execution, Freeze, Stage, Status};

/// The REST API version sluice speaks, sent as `X-GitHub-Api-Version` on every request.
pub const API_VERSION: &str = "2022-11-28";
/// GitHub refuses longer status and deployment descriptions.
pub const MAX_DESCRIPTION: usize = 140;

/// A commit status's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    /// The run did not get to succeed or fail: superseded by a newer push, or skipped as older than one that ran.
    Error,
}

impl CommitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
        }
    }
}

/// A Deployment status's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    Queued,
    InProgress,
    Success,
    Failure,
    /// Superseded: it will never deploy.
    Inactive,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Queued => "queued",
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Success => "success",
            DeploymentState::Failure => "failure",
            DeploymentState::Inactive => "inactive",
        }
    }
}

/// What GitHub shows of a run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// `sluice/<pipeline>`.
    pub context: String,
    pub commit: CommitState,
    /// The state of the run's Deployment; `None`: the run has none (it was skipped before it started).
    pub deployment: Option<DeploymentState>,
    /// One line, at most [`MAX_DESCRIPTION`] characters, for both.
    pub description: String,
}

/// What GitHub should show of `run`, as it stands, its pipeline frozen (`frozen`) or not: a run held out of a deploy
/// stage says it waits for the freeze, and why.
pub fn shown_in(run: &Execution, frozen: Option<&Freeze>) -> Shown {
    let shown = shown(run);
    let held = run.waiting_for().filter(|stage| run.plan.deploy_stage(*stage).is_some());
    match (held, frozen) {
        (Some(stage), Some(freeze)) => {
            let to = if stage == Stage::DEPLOY { String::new() } else { format!(" to {stage}") };
            let description = format!("run #{}: waiting to deploy{to}: deployments frozen: {}", run.seq, freeze.reason);
            Shown { description: bounded(&description), ..shown }
        }
        _ => shown,
    }
}

/// What GitHub should show of `run`, as it stands.
pub fn shown(run: &Execution) -> Shown {
    let n = run.seq;
    let asks = |stage: Stage| run.plan.stage(stage).is_some_and(|planned| planned.approval().is_some());
    let tests = |stage: Stage| run.plan.stage(stage).is_some_and(|planned| planned.test().is_some());
    let at = |stage: Stage| if stage == Stage::APPROVAL { String::new() } else { format!(" at {stage}") };
    let to = |stage: Stage| if stage == Stage::DEPLOY { String::new() } else { format!(" to {stage}") };
    let why = run.reason.as_deref().map(|reason| format!(": {reason}")).unwrap_or_default();
    let (commit, deployment, description) = match run.status {
        Status::Running(Stage::BUILD) | Status::Waiting(Stage::BUILD) => {
            (CommitState::Pending, Some(DeploymentState::Queued), format!("run #{n}: building"))
        }
        Status::Running(stage) | Status::Waiting(stage) if asks(stage) => {
            let description = format!("run #{n}: built, waiting for approval{}", at(stage));
            (CommitState::Pending, Some(DeploymentState::Queued), description)
        }
        Status::Running(stage) if tests(stage) && run.approving() => {
            let description = format!("run #{n}: failed its tests at {stage}, waiting for a decision");
            (CommitState::Pending, Some(DeploymentState::InProgress), description)
        }
        Status::Running(stage) if tests(stage) => {
            let description = format!("run #{n}: testing at {stage}");
            (CommitState::Pending, Some(DeploymentState::InProgress), description)
        }
        Status::Waiting(stage) if tests(stage) => {
            let description = format!("run #{n}: waiting its turn to test at {stage}");
            (CommitState::Pending, Some(DeploymentState::Queued), description)
        }
        Status::Waiting(stage) => {
            let description = format!("run #{n}: waiting its turn to deploy{}", to(stage));
            (CommitState::Pending, Some(DeploymentState::Queued), description)
        }
        Status::Running(stage) if run.soaking().is_some() => {
            let until = run.soaking().map(|until| until.format(" until %H:%M UTC").to_string()).unwrap_or_default();
            let description = format!("run #{n}: deployed{}, soaking{until}", to(stage));
            (CommitState::Pending, Some(DeploymentState::InProgress), description)
        }
        Status::Running(stage) if let Some(held) = run.deploy().and_then(|deploy| deploy.held.as_deref()) => {
            let description = format!("run #{n}: waiting to deploy{} for {held}", to(stage));
            (CommitState::Pending, Some(DeploymentState::Queued), description)
        }
        Status::Running(stage) => {
            let strategy = run.plan.deploy_stage(stage).map_or("", |deploy| deploy.target.strategy());
            let description = format!("run #{n}: deploying{} ({strategy})", to(stage));
            (CommitState::Pending, Some(DeploymentState::InProgress), description)
        }
        Status::Succeeded => {
            let took = run.finished_at.map(|end| format!(" in {}", span(end - run.created_at))).unwrap_or_default();
            (CommitState::Success, Some(DeploymentState::Success), format!("run #{n} deployed{took}"))
        }
        Status::Superseded => {
            let description = match run.reason.as_deref() {
                // The machine's reason says by what: "superseded by execution ... while awaiting approval".
                Some(reason) if reason.starts_with("superseded") => format!("run #{n} {reason}"),
                _ => format!("run #{n} superseded{why}"),
            };
            (CommitState::Error, Some(DeploymentState::Inactive), description)
        }
        Status::Skipped => (CommitState::Error, None, format!("run #{n} skipped{why}")),
        Status::Failed | Status::RolledBack | Status::TimedOut | Status::Rejected => {
            let ended = run.status.to_string().replace('_', " ");
            (CommitState::Failure, Some(DeploymentState::Failure), format!("run #{n} {ended}{why}"))
        }
    };
    Shown { context: format!("sluice/{}", run.pipeline), commit, deployment, description: bounded(&description) }
}

/// The state each deploy stage's Deployment shows ([`Execution::shown_stages`]), given the run's own (`run_state`,
/// [`shown`]'s): a stage the run went past shows `success`; the stage it is at or ended at shows the run's state.
pub fn stage_deployments(run: &Execution, run_state: Option<DeploymentState>) -> Vec<(Stage, DeploymentState)> {
    let shown = run.shown_stages().into_iter();
    shown.filter_map(|(stage, past)| Some((stage, if past { DeploymentState::Success } else { run_state? }))).collect()
}

fn bounded(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= MAX_DESCRIPTION {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(MAX_DESCRIPTION - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::*;
    use crate::contract::testing::{push, shipped};
    use crate::definitions::ExecutionMode;
    use crate::pipeline::{Decision, Event, PipelineState, transition};

    fn state_after(events: &[Event]) -> PipelineState {
        let start: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().expect("time");
        let mut state = PipelineState::new("web", ExecutionMode::Superseded);
        for (minute, event) in (0..).zip(events) {
            match transition(&state, event, start + TimeDelta::minutes(minute)) {
                Ok(Decision::Apply { state: next, .. }) => state = next,
                other => panic!("{other:?}"),
            }
        }
        state
    }

    fn run_after(events: &[Event]) -> Execution {
        state_after(events).executions.last().cloned().expect("a run")
    }

    fn built(execution: &str) -> Event {
        Event::BuildSucceeded {
            execution_id: execution.into(),
            build_id: format!("build-{execution}"),
            outputs: crate::pipeline::BuildOutputs { image_uri: format!("web@sha256:{execution}"), artifacts: None },
        }
    }

    fn deployed(execution: &str, stage: &str) -> Event {
        Event::DeploymentSucceeded {
            execution_id: execution.into(),
            deployment_id: format!("{stage}-{execution}"),
            tasks: None,
        }
    }

    /// The environment and state of each Deployment that shows `run`.
    fn environments(run: &Execution) -> Vec<(String, &'static str)> {
        stage_deployments(run, shown(run).deployment)
            .into_iter()
            .map(|(stage, state)| (run.plan.environment(stage).unwrap_or_default(), state.as_str()))
            .collect()
    }

    #[test]
    fn a_run_held_out_of_production_by_a_freeze_says_so_on_its_commit_and_its_deployment_stays_queued() {
        let freeze =
            Event::Frozen { by: "arn:aws:iam::1:user/carol".into(), reason: "incident 4312".into(), until: None };
        let state = state_after(&[staged("e1"), built("e1"), freeze, deployed("e1", "staging")]);
        let e1 = state.executions.last().cloned().expect("a run");
        let held = shown_in(&e1, state.freeze.as_deref());
        assert_eq!(held.description, "run #1: waiting to deploy to production: deployments frozen: incident 4312");
        assert_eq!((held.commit, held.deployment), (CommitState::Pending, Some(DeploymentState::Queued)));
        // Without the freeze (lifted since), it waits its turn as any run does
        assert_eq!(shown_in(&e1, None).description, "run #1: waiting its turn to deploy to production");
    }

    #[test]
    fn a_rollback_of_production_alone_is_shown_in_production_only() {
        let shipped = [staged("e1"), built("e1"), deployed("e1", "staging"), deployed("e1", "production")];
        let e1 = run_after(&shipped);
        let production = Stage::new("production").expect("a stage name");
        let rollback = Event::Redeployed {
            execution_id: "r2".into(),
            source: e1.source.clone(),
            plan: Box::new(e1.plan.clone()),
            mode: ExecutionMode::Superseded,
            build: e1.build.clone().expect("its build"),
            ordered: "rollback of production to run #1 (e1) by carol".into(),
            stage: Some(production),
            only: true,
        };
        let r2 = run_after(&[&shipped[..], &[rollback]].concat());
        assert_eq!(environments(&r2), [("prod-eu".to_owned(), "in_progress")]);
    }

    #[test]
    fn a_run_overtaken_while_waiting_for_production_leaves_its_production_deployment_inactive() {
        let shown_in_production = Event::GitHubDeploymentCreated {
            execution_id: "e2".into(),
            deployment: 12,
            stage: Stage::new("production"),
        };
        let events = [
            staged("e1"),
            built("e1"),
            deployed("e1", "staging"),
            staged("e2"),
            built("e2"),
            deployed("e2", "staging"),
            shown_in_production,
            staged("e3"),
            built("e3"),
            deployed("e3", "staging"),
        ];
        let state = state_after(&events);
        let e2 = state.execution(&"e2".into()).expect("e2");
        assert_eq!(e2.status, crate::pipeline::Status::Superseded);
        assert_eq!(environments(e2), [("staging".to_owned(), "success"), ("prod-eu".to_owned(), "inactive")]);
    }

    /// A run of staging (rolling), then production (blue/green), shown on GitHub.
    fn staged(execution: &str) -> Event {
        let mut event = push(execution, ExecutionMode::Superseded, false);
        if let Event::Triggered { plan, .. } = &mut event {
            let deploy = |name: &str, target| crate::definitions::StageDefinition {
                name: Stage::new(name).expect("a stage name"),
                kind: crate::definitions::StageKind::Deploy(Box::new(crate::definitions::DeployStage {
                    environment: (name == "production").then(|| "prod-eu".to_owned()),
                    ..crate::definitions::DeployStage::of(target)
                })),
            };
            let rolling = crate::definitions::DeployTarget::Rolling(crate::contract::testing::rolling(Vec::new()));
            let blue_green =
                crate::definitions::DeployTarget::BlueGreen(crate::contract::testing::blue_green(Vec::new()));
            plan.stages = vec![deploy("staging", rolling), deploy("production", blue_green)];
            plan.github = Some(crate::definitions::GitHubReport { environment: "web".into() });
        }
        event
    }

    #[test]
    fn each_deploy_stage_is_its_own_deployment_shown_once_the_run_reaches_it_and_successful_once_past_it() {
        let id = |name: &str| crate::pipeline::ExecutionId::from(name);
        let built = Event::BuildSucceeded {
            execution_id: id("e1"),
            build_id: "build-e1".into(),
            outputs: crate::pipeline::BuildOutputs { image_uri: "web@sha256:1".into(), artifacts: None },
        };
        let done = |deployment: &str| Event::DeploymentSucceeded {
            execution_id: id("e1"),
            deployment_id: deployment.into(),
            tasks: None,
        };
        let failed = Event::DeploymentFailed {
            execution_id: id("e1"),
            deployment_id: Some("d-prod".into()),
            reason: "alarm".into(),
            rolled_back: true,
        };
        let states = |events: &[Event]| {
            let run = run_after(events);
            let shown: Vec<(String, &str)> = stage_deployments(&run, shown(&run).deployment)
                .into_iter()
                .map(|(stage, state)| (run.plan.environment(stage).unwrap_or_default(), state.as_str()))
                .collect();
            shown
        };
        let staging = |state: &'static str| ("staging".to_owned(), state);
        let production = |state: &'static str| ("prod-eu".to_owned(), state);
        assert_eq!(states(&[staged("e1")]), [staging("queued")]);
        assert_eq!(states(&[staged("e1"), built.clone()]), [staging("in_progress")]);
        let in_production = [staged("e1"), built.clone(), done("ecs-1")];
        assert_eq!(states(&in_production), [staging("success"), production("in_progress")]);
        let shipped = [staged("e1"), built.clone(), done("ecs-1"), done("d-prod")];
        assert_eq!(states(&shipped), [staging("success"), production("success")]);
        let rolled_back = [staged("e1"), built, done("ecs-1"), failed];
        assert_eq!(states(&rolled_back), [staging("success"), production("failure")]);
    }

    #[test]
    fn a_run_soaking_at_staging_says_until_when() {
        let mut soaks = staged("e1");
        if let Event::Triggered { plan, .. } = &mut soaks
            && let Some(crate::definitions::StageKind::Deploy(staging)) = plan.stages.first_mut().map(|s| &mut s.kind)
        {
            staging.soak_secs = Some(30 * 60);
        }
        let run = run_after(&[soaks, built("e1"), deployed("e1", "staging")]);
        let soaking = shown(&run);
        assert_eq!(soaking.description, "run #1: deployed to staging, soaking until 10:32 UTC");
        assert_eq!((soaking.commit, soaking.deployment), (CommitState::Pending, Some(DeploymentState::InProgress)));
    }

    #[test]
    fn a_run_is_pending_and_queued_until_it_deploys_then_in_progress_then_success() {
        let events = shipped("web-1");
        let building = shown(&run_after(&events[..1]));
        assert_eq!(building.context, "sluice/web");
        assert_eq!((building.commit, building.deployment), (CommitState::Pending, Some(DeploymentState::Queued)));
        assert_eq!(building.description, "run #1: building");
        let waiting = shown(&run_after(&events[..2]));
        assert_eq!(waiting.description, "run #1: built, waiting for approval");
        let deploying = shown(&run_after(&events[..4]));
        assert_eq!(deploying.deployment, Some(DeploymentState::InProgress));
        assert_eq!(deploying.description, "run #1: deploying (blue_green)");
        let done = shown(&run_after(&events));
        assert_eq!((done.commit, done.deployment), (CommitState::Success, Some(DeploymentState::Success)));
        assert_eq!(done.description, "run #1 deployed in 4m 00s");
    }

    #[test]
    fn a_failed_run_says_why_within_githubs_limit_and_a_superseded_one_is_inactive() {
        let mut failed = run_after(&[push("web-1", ExecutionMode::Superseded, true)]);
        failed.status = Status::RolledBack;
        failed.reason = Some(format!("the BeforeAllowTraffic checks failed: {}\nsecond line", "x".repeat(300)));
        let report = shown(&failed);
        assert_eq!((report.commit, report.deployment), (CommitState::Failure, Some(DeploymentState::Failure)));
        assert!(report.description.starts_with("run #1 rolled back: the BeforeAllowTraffic checks failed"));
        assert_eq!(report.description.chars().count(), MAX_DESCRIPTION);
        assert!(report.description.ends_with('…'));

        failed.status = Status::Superseded;
        failed.reason = Some("superseded by run #2".into());
        let report = shown(&failed);
        assert_eq!((report.commit, report.deployment), (CommitState::Error, Some(DeploymentState::Inactive)));
        assert_eq!(report.description, "run #1 superseded by run #2", "the reason is not repeated");
        failed.status = Status::Skipped;
        assert_eq!(shown(&failed).deployment, None, "a skipped run gets no Deployment");
    }
}
