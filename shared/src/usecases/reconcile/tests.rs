//! The scheduled look, with the in-memory store, artifacts, bus and CodeBuild.

use chrono::TimeZone;

use super::*;
use crate::contract::ports::BuildReport;
use crate::contract::ports::{DeploymentProgress, DeploymentReport, RolloutReport};
use crate::contract::testing::{
    BuildAnswer, InMemoryArtifacts, InMemoryStore, RecordingBuilds, RecordingDeployments, RecordingPublisher, push,
};
use crate::definitions::{DeployTarget, ExecutionMode};
use crate::pipeline::{BuildOutputs, ExecutionId};
use crate::usecases::StageEffects;

const EXAMPLE: &str = include_str!("../../../../infra/pipelines.example.toml");

struct World {
    store: InMemoryStore,
    effects: StageEffects<RecordingPublisher, RecordingBuilds>,
    lookups: Lookups<InMemoryArtifacts, RecordingBuilds, RecordingDeployments, RecordingDeployments>,
    definitions: Definitions,
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date") + TimeDelta::minutes(minutes)
}

impl World {
    fn new() -> Self {
        Self {
            store: InMemoryStore::new(),
            effects: StageEffects { publisher: RecordingPublisher::new(), builds: RecordingBuilds::new() },
            lookups: Lookups {
                artifacts: InMemoryArtifacts::new(),
                builds: RecordingBuilds::new(),
                blue_green: RecordingDeployments::new(),
                services: RecordingDeployments::new(),
            },
            definitions: Definitions::parse("example", EXAMPLE).expect("valid"),
        }
    }

    async fn with_push(execution: &str) -> Self {
        let world = Self::new();
        world.apply(push(execution, ExecutionMode::Superseded, true), 0).await.expect("applied");
        world
    }

    /// Run `execution` pushed at minute 0 and built at minute 1: its approval (open an hour) waits.
    async fn awaiting_approval(execution: &str) -> Self {
        let world = Self::with_push(execution).await;
        let build_id = world.build_id(execution).await;
        let outputs = BuildOutputs { image_uri: format!("repo/web:{execution}"), artifacts: None };
        let built = Event::BuildSucceeded { execution_id: ExecutionId(execution.into()), build_id, outputs };
        world.apply(built, 1).await.expect("applied");
        world
    }

    async fn apply(&self, event: Event, minute: i64) -> Result<Handled, crate::usecases::HandleError> {
        let input =
            Input { pipeline: "web", mode: ExecutionMode::Superseded, event: &event, receipt: None, now: at(minute) };
        handle(&self.store, &self.effects, input).await
    }

    async fn look(&self, minute: i64) -> Reconciled {
        reconcile(&self.store, &self.effects, &self.lookups, &self.definitions, at(minute), QUIET_FOR).await
    }

    async fn execution(&self, id: &str) -> crate::pipeline::Execution {
        self.store.execution(&ExecutionId(id.into())).await.ok().flatten().expect("stored")
    }

    async fn build_id(&self, id: &str) -> String {
        self.execution(id).await.build.and_then(|b| b.build_id).expect("started")
    }

    fn finished(&self, build_id: &str, status: &str) {
        self.lookups.builds.report(
            build_id,
            BuildReport {
                status: status.into(),
                current_phase: Some("COMPLETED".into()),
                failed_phase: (status != "SUCCEEDED").then(|| "BUILD".into()),
                artifact_location: Some("arn:aws:s3:::artifacts/web/e1".into()),
            },
        );
        for (name, content) in [
            ("imageDetail.json", r#"{"ImageURI":"repo/web:e1"}"#),
            ("taskdef.json", include_str!("../../../../infra/sample-app/taskdef.json")),
            ("appspec.yaml", include_str!("../../../../infra/sample-app/appspec.yaml")),
        ] {
            self.lookups.artifacts.put("artifacts", &format!("web/e1/{name}"), content.as_bytes());
        }
    }
}

#[tokio::test]
async fn a_finished_build_whose_event_was_lost_moves_its_run_on() {
    let world = World::with_push("e1").await;
    world.finished(&world.build_id("e1").await, "SUCCEEDED");

    let done = world.look(11).await;

    assert_eq!(done, Reconciled { builds_checked: 1, moved: 1, ..Reconciled::default() });
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Running(Stage::APPROVAL));
    assert_eq!(execution.build.and_then(|b| b.image_uri).as_deref(), Some("repo/web:e1"));
    // A second look moves nothing more; the approval request waits for the approval function, whose doorbell rings.
    assert_eq!(world.look(12).await, Reconciled { doorbells: 1, ..Reconciled::default() });
}

#[tokio::test]
async fn a_failed_build_whose_event_was_lost_fails_its_run() {
    let world = World::with_push("e1").await;
    world.finished(&world.build_id("e1").await, "FAILED");
    world.look(11).await;
    let execution = world.execution("e1").await;
    assert_eq!(
        (execution.status, execution.reason.as_deref()),
        (Status::Failed, Some("the build failed in phase BUILD"))
    );
}

#[tokio::test]
async fn a_build_still_running_or_recently_started_is_left_alone() {
    let world = World::with_push("e1").await;
    let build_id = world.build_id("e1").await;
    assert_eq!(world.look(5).await.builds_checked, 0, "started 5 minutes ago: not asked about yet");
    world.lookups.builds.report(&build_id, BuildReport { status: "IN_PROGRESS".into(), ..BuildReport::default() });
    assert_eq!(world.look(11).await, Reconciled { builds_checked: 1, ..Reconciled::default() });
    assert_eq!(world.execution("e1").await.status, Status::Running(Stage::BUILD));
}

#[tokio::test]
async fn a_build_codebuild_has_no_record_of_fails_its_run() {
    let world = World::with_push("e1").await;
    let build_id = world.build_id("e1").await;
    world.look(11).await;
    let execution = world.execution("e1").await;
    assert_eq!(execution.status, Status::Failed);
    assert_eq!(execution.reason, Some(format!("CodeBuild has no record of build {build_id}")));
}

#[tokio::test]
async fn an_approval_past_its_deadline_times_out() {
    let world = World::awaiting_approval("e1").await;

    assert_eq!(world.look(30).await.moved, 0, "the approval is open for an hour");
    assert_eq!(world.look(62).await.moved, 1);
    assert_eq!(world.execution("e1").await.status, Status::TimedOut);
}

#[tokio::test]
async fn a_build_codebuild_could_not_start_is_started_by_the_next_look() {
    // GIVEN a push recorded while CodeBuild was unreachable: its build waits in the outbox
    let world = World::new();
    world.effects.builds.answer(BuildAnswer::Unavailable);
    assert!(matches!(world.apply(push("e1", ExecutionMode::Superseded, true), 0).await, Ok(Handled::Applied)));
    assert!(world.effects.builds.started().is_empty());
    // WHEN CodeBuild is back and the scheduled look runs, once the effect's backoff has passed
    world.effects.builds.answer(BuildAnswer::Start);
    world.look(1).await;
    // THEN the build starts, once, and the run records it
    let started: Vec<String> = world.effects.builds.started().into_iter().map(|b| b.source_version).collect();
    assert_eq!(started, ["sha-e1"]);
    assert!(world.execution("e1").await.build.and_then(|b| b.build_id).is_some());
    world.look(2).await;
    assert_eq!(world.effects.builds.started().len(), 1);
}

#[tokio::test]
async fn an_approval_request_still_pending_rings_its_owners_doorbell_at_each_look() {
    // GIVEN a built run whose approval request the approval function has not carried out (SNS refused it a while)
    let world = World::awaiting_approval("e1").await;
    let before = world.effects.publisher.published().len();

    // WHEN the reconciler looks
    let done = world.look(5).await;

    // THEN it leaves the request to its owner, and wakes it with an `Effects Due` for the run
    assert_eq!(done, Reconciled { doorbells: 1, ..Reconciled::default() });
    let rung: Vec<SluiceEvent> = world.effects.publisher.published().split_off(before);
    let expected = EffectsDue {
        pipeline: "web".into(),
        execution_id: ExecutionId("e1".into()),
        kinds: vec![crate::pipeline::EffectKind::RequestApproval],
    };
    assert_eq!(rung, [SluiceEvent::EffectsDue(expected)]);
    let state = world.store.load("web").await.expect("loaded").expect("stored").value;
    assert_eq!(state.pending.len(), 1, "the request stays in the outbox for the approval function");
    assert!(state.pending[0].lease.is_none());
}

impl World {
    /// Run `execution` pushed (to `target`), built and approved, its deployment `d-<execution>` started at minute 2
    /// rolling out task definition `web:2`.
    async fn deploying(execution: &str, target: Option<DeployTarget>) -> Self {
        let world = Self::new();
        let mut pushed = push(execution, ExecutionMode::Superseded, true);
        if let (Event::Triggered { plan, .. }, Some(target)) = (&mut pushed, target) {
            *plan.target_mut() = target;
        }
        world.apply(pushed, 0).await.expect("pushed");
        let id = ExecutionId(execution.into());
        let build_id = world.build_id(execution).await;
        let outputs = BuildOutputs { image_uri: format!("repo/web:{execution}"), artifacts: None };
        world.apply(Event::BuildSucceeded { execution_id: id.clone(), build_id, outputs }, 1).await.expect("built");
        let approved = Event::ApprovalDecided {
            execution_id: id.clone(),
            decision: crate::pipeline::ApprovalDecision::Approved,
            approver: "jane".into(),
            comment: None,
            token_hash: None,
            source_ip: None,
            user_agent: None,
        };
        world.apply(approved, 2).await.expect("approved");
        let started = Event::DeploymentStarted {
            execution_id: id,
            deployment_id: format!("d-{execution}"),
            service_deployment: None,
            task_definition: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:2".into()),
            previous_task_definition: None,
            in_alarm: None,
        };
        world.apply(started, 2).await.expect("started");
        world
    }
}

fn rolling() -> DeployTarget {
    DeployTarget::Rolling(crate::contract::testing::rolling(Vec::new()))
}

#[tokio::test]
async fn a_blue_green_deployment_whose_end_was_lost_ends_its_run_as_codedeploys_record_says() {
    // GIVEN a run deploying since minute 2, whose deployment CodeDeploy failed and rolled back, the event lost
    let world = World::deploying("e1", None).await;
    world.lookups.blue_green.report(
        "d-e1",
        DeploymentReport {
            progress: DeploymentProgress::Failed,
            message: Some("The BeforeAllowTraffic hook reported Failed".into()),
            rolled_back: true,
            description: None,
        },
    );
    // WHEN the reconciler looks before and after it has been quiet for QUIET_FOR
    let early = world.look(5).await;
    let late = world.look(13).await;
    // THEN CodeDeploy is asked only once quiet, and the run ends rolled back, with CodeDeploy's words
    assert_eq!(early.deployments_checked, 0);
    assert_eq!((late.deployments_checked, late.moved, late.errors), (1, 1, 0));
    let run = world.execution("e1").await;
    assert_eq!(run.status, Status::RolledBack);
    assert_eq!(
        run.reason.as_deref(),
        Some("CodeDeploy failed the deployment and rolled it back: The BeforeAllowTraffic hook reported Failed")
    );
    // AND a later look asks nothing more
    let asked = world.lookups.blue_green.asked();
    assert_eq!(world.look(30).await.deployments_checked, 0);
    assert_eq!(world.lookups.blue_green.asked(), asked);
}

#[tokio::test]
async fn a_deployment_still_going_is_left_alone_and_one_codedeploy_never_heard_of_fails_its_run() {
    let world = World::deploying("e1", None).await;
    world.lookups.blue_green.report("d-e1", DeploymentReport::default());
    let done = world.look(13).await;
    assert_eq!((done.deployments_checked, done.moved, done.errors), (1, 0, 0));
    assert_eq!(world.execution("e1").await.status, Status::Running(Stage::DEPLOY));

    let world = World::deploying("e2", None).await;
    world.look(13).await;
    let run = world.execution("e2").await;
    assert_eq!(
        (run.status, run.reason.as_deref()),
        (Status::Failed, Some("CodeDeploy has no record of deployment d-e2"))
    );
}

#[tokio::test]
async fn a_rolling_update_whose_end_was_lost_ends_as_ecs_lists_it_or_by_what_the_service_runs() {
    // A rollout ECS lists as completed: succeeded.
    let world = World::deploying("e1", Some(rolling())).await;
    let completed = (DeploymentProgress::Succeeded, Some("ECS deployment completed.".into()));
    world.lookups.services.rollout("d-e1", RolloutReport { deployment: Some(completed), task_definition: None });
    world.look(13).await;
    assert_eq!(world.execution("e1").await.status, Status::Succeeded);

    // One ECS no longer lists, its service back on the previous task definition: the circuit breaker rolled it back.
    let world = World::deploying("e2", Some(rolling())).await;
    let previous = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1";
    world.lookups.services.rollout("d-e2", RolloutReport { deployment: None, task_definition: Some(previous.into()) });
    world.look(13).await;
    let run = world.execution("e2").await;
    assert_eq!(run.status, Status::RolledBack);
    let reason = run.reason.unwrap_or_default();
    assert!(reason.contains("ECS no longer lists deployment d-e2, and the service runs"), "{reason}");
    assert!(reason.contains("task-definition/web:1, not "), "{reason}");

    // One ECS no longer lists, its service on the run's task definition: it completed.
    let world = World::deploying("e3", Some(rolling())).await;
    let ours = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2";
    world.lookups.services.rollout("d-e3", RolloutReport { deployment: None, task_definition: Some(ours.into()) });
    world.look(13).await;
    assert_eq!(world.execution("e3").await.status, Status::Succeeded);
}

#[tokio::test]
async fn a_release_that_has_soaked_at_staging_for_its_time_is_taken_to_the_next_stage_by_the_look() {
    // GIVEN a run in stages whose staging soaks 10 minutes, its staging deployment done at minute 3
    let world = World::new();
    let mut pushed = push("e1", ExecutionMode::Superseded, false);
    if let Event::Triggered { plan, .. } = &mut pushed {
        let deploy = |name: &str, soak_secs| crate::definitions::StageDefinition {
            name: Stage::new(name).expect("a stage name"),
            kind: crate::definitions::StageKind::Deploy(Box::new(crate::definitions::DeployStage {
                target: rolling(),
                timeout_minutes: None,
                soak_secs,
                soak_alarms: None,
                environment: None,
                entry_alarms: None,
                calendar: None,
            })),
        };
        plan.stages = vec![deploy("staging", Some(600)), deploy("production", None)];
    }
    world.apply(pushed, 0).await.expect("pushed");
    let id = ExecutionId("e1".into());
    let build_id = world.build_id("e1").await;
    let outputs = BuildOutputs { image_uri: "repo/web@sha256:1".into(), artifacts: None };
    world.apply(Event::BuildSucceeded { execution_id: id.clone(), build_id, outputs }, 1).await.expect("built");
    let deployment_id = "ecs-svc/1".to_owned();
    let started = Event::DeploymentStarted {
        execution_id: id.clone(),
        deployment_id: deployment_id.clone(),
        service_deployment: None,
        task_definition: None,
        previous_task_definition: None,
        in_alarm: None,
    };
    world.apply(started, 2).await.expect("started");
    world
        .apply(Event::DeploymentSucceeded { execution_id: id, deployment_id, tasks: None }, 3)
        .await
        .expect("deployed");
    let staging = Stage::new("staging").expect("a stage name");
    assert_eq!(world.execution("e1").await.soaking(), Some(at(13)));
    // WHEN the look comes before the soak is over, THEN it sends nothing (nothing moved, nothing refused) and the run
    // still holds staging
    let early = world.look(10).await;
    assert_eq!((early.moved, early.errors), (0, 0), "{early:?}");
    assert_eq!(world.execution("e1").await.status, Status::Running(staging));
    // WHEN it comes after (and after the deployment's deadline: a soak is not cut short by it), THEN the run deploys
    // to production
    let late = world.look(120).await;
    assert_eq!(late.moved, 1, "{late:?}");
    let run = world.execution("e1").await;
    assert_eq!(run.status, Status::Running(Stage::new("production").expect("a stage name")), "{:?}", run.reason);
}

#[tokio::test]
async fn a_freeze_whose_end_has_passed_is_lifted_at_the_look_and_the_run_it_held_deploys() {
    // GIVEN web frozen until minute 30, and web-1 approved since: it waits before its deploy stage
    let world = World::awaiting_approval("web-1").await;
    let freeze =
        Event::Frozen { by: "arn:aws:iam::1:user/carol".into(), reason: "incident".into(), until: Some(at(30)) };
    world.apply(freeze, 2).await.expect("frozen");
    let approved = crate::usecases::tests::approved_by_ada(&ExecutionId::from("web-1"));
    world.apply(approved, 3).await.expect("approved");
    assert_eq!(world.execution("web-1").await.status, Status::Waiting(Stage::DEPLOY));
    // WHEN the reconciler looks before the freeze's end, nothing moves
    world.look(29).await;
    assert_eq!(world.execution("web-1").await.status, Status::Waiting(Stage::DEPLOY));
    // WHEN it looks once the end has passed, the freeze is lifted and web-1 takes its deploy stage
    let done = world.look(31).await;
    assert_eq!(done.moved, 1, "{done:?}");
    assert_eq!(world.execution("web-1").await.status, Status::Running(Stage::DEPLOY));
    let state = world.store.load("web").await.ok().flatten().expect("stored").value;
    assert_eq!(state.freeze, None);
    let published: Vec<&str> = world.effects.publisher.published().iter().map(|e| e.detail_type()).collect();
    assert!(published.contains(&"Deployment Requested"), "{published:?}");
}
