//! `transition(state, event, now)`: what an event does to a pipeline, and what must happen because of it.
//!
//! Stages are held one execution at a time, as in CodePipeline
//! (<https://docs.aws.amazon.com/codepipeline/latest/userguide/concepts-how-it-works.html>): an execution that
//! reaches a held stage waits for it. In `superseded` mode a newer execution that starts waiting for a stage
//! supersedes the older one waiting there, so the newest commit wins and an older one never overtakes it; in
//! `queued` mode every execution waits its turn, oldest first.
//!
//! `Run::apply` routes each event; what it does is kept by stage: `build.rs`, `approval.rs`, `deploy.rs`, `test.rs`,
//! and `pause.rs` for approvals at an ECS deployment's pause.

use chrono::{DateTime, TimeDelta, Utc};

use super::event::{ApprovalNotice, Effect, Event, ReleaseLookup};
use super::state::{
    ApprovalDecision, ApprovalFacts, BuildFacts, CommitOrder, DeployFacts, Execution, ExecutionId, GitHubDeployment,
    OrderedRollback, PipelineState, Plan, PushLink, RefHistory, SourceFacts, Stage, StageRecord, Status, bounded,
    short_commit,
};
use crate::contract::events::{
    ApprovalDecided as ApprovalDecidedEvent, ApprovalRequested, ExecutionFinished, ExecutionStarted, RollbackRequested,
    SluiceEvent,
};
use crate::definitions::{AFTER_ROLLOUT, Approvers, DeployTarget, ExecutionMode, OnFailure, StageKind};

/// At most this many executions of one pipeline wait for a stage; a push beyond it is refused (`queued` mode).
pub const MAX_WAITING: usize = 20;
/// Finished executions kept in the pipeline's state, so that late duplicates of their events are recognised.
pub const RETAINED_FINISHED: usize = 5;
/// Refs whose pushes the state remembers (the most recently pushed), and pushes remembered per ref.
pub const REMEMBERED_REFS: usize = 10;
pub const REMEMBERED_PUSHES: usize = 10;
/// Hook results kept per deployment; a deployment has five lifecycle hooks, retried ones add a few.
pub const MAX_HOOK_RESULTS: usize = 10;
/// How long a stored reason may be, and a hook result's detail.
pub const MAX_REASON: usize = 1024;
pub const MAX_HOOK_DETAIL: usize = 256;
/// How long a recorded ARN may be (ECS task definition ARNs are far shorter).
pub const MAX_ARN: usize = 512;
/// How long an approver's name and an approval comment may be.
pub const MAX_APPROVER: usize = 100;
pub const MAX_COMMENT: usize = 1000;
/// How much of a decider's address (an IPv6 address in text is at most 45) and browser (User-Agent) is kept.
pub const MAX_SOURCE_IP: usize = 45;
pub const MAX_USER_AGENT: usize = 256;
/// The commit id of a ref that did not exist (GitHub's `before` of a new branch or tag).
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

/// What the machine decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Store `state` and carry out `effects`, in order.
    Apply { state: PipelineState, effects: Vec<Effect> },
    /// Nothing changes and nothing is to be done: the event was already taken into account.
    Ignore(IgnoreReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The same event was already applied.
    DuplicateEvent,
    /// The event is about a stage the execution has already left.
    AlreadyPastStage,
    /// The execution has ended.
    AlreadyFinished,
    /// The pipeline is not frozen (any more): there is no freeze to lift.
    NotFrozen,
    /// The run's deployment has not started: its start waits at the stage's gate (windows, entry alarms), which
    /// no deployment deadline cuts short.
    StartWaits,
}

/// An event that cannot apply to the pipeline as it is. The state is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransitionError {
    #[error("execution {execution} is not one of pipeline {pipeline}'s recent executions")]
    UnknownExecution { pipeline: String, execution: ExecutionId },
    #[error("execution {execution} is {status}: a {event} event does not apply to it")]
    NotInStage { execution: ExecutionId, status: Status, event: &'static str },
    #[error("execution {execution} already ended ({status}): a {event} event does not apply to it")]
    Finished { execution: ExecutionId, status: Status, event: &'static str },
    #[error("build {got} is not the build sluice started for execution {execution} ({expected})")]
    ForeignBuild { execution: ExecutionId, expected: String, got: String },
    #[error("deployment {got} is not the deployment sluice started for execution {execution} ({expected})")]
    ForeignDeployment { execution: ExecutionId, expected: String, got: String },
    #[error("execution {execution} was already {decision:?}; the decision stands")]
    AlreadyDecided { execution: ExecutionId, decision: ApprovalDecision },
    #[error("the approval of execution {execution} expired at {expired_at}")]
    ApprovalExpired { execution: ExecutionId, expired_at: DateTime<Utc> },
    #[error("the approval of execution {execution} is open until {expires_at}")]
    ApprovalStillOpen { execution: ExecutionId, expires_at: DateTime<Utc> },
    #[error("the approval link of execution {execution} was replaced by a newer request; use the newest email")]
    StaleApprovalLink { execution: ExecutionId },
    #[error("{by} already approved execution {execution} at {at}; each approver decides once")]
    AlreadySignedOff { execution: ExecutionId, by: String, at: DateTime<Utc> },
    #[error("{by} pushed the commit execution {execution} deploys: the pipeline lets nobody decide on their own push")]
    PusherMayNotApprove { execution: ExecutionId, by: String },
    #[error("{by} is not one of the operators whose decision counts at execution {execution}'s approval stage")]
    NotAnApprover { execution: ExecutionId, by: String },
    #[error("the approval request of execution {execution} sent {sent} personal links for {named} named approvers")]
    PersonalLinks { execution: ExecutionId, sent: usize, named: usize },

    #[error("execution {execution}'s deployment cannot be rolled back now: {why}")]
    CannotRollBack { execution: ExecutionId, why: String },
    #[error("execution {execution}'s deployment paused at {stage}, where its pipeline asks for no approval")]
    UnplannedPause { execution: ExecutionId, stage: String },
    #[error("execution {execution} would deploy a build that did not finish with an image")]
    NothingBuilt { execution: ExecutionId },
    #[error("execution {execution} soaks until {until} before it takes its next stage")]
    SoakNotOver { execution: ExecutionId, until: DateTime<Utc> },
    #[error("execution {execution}'s deployment has until {deadline} to finish")]
    DeadlineNotReached { execution: ExecutionId, deadline: DateTime<Utc> },
    #[error("{stage} is not a deploy stage of execution {execution}'s plan: only a deploy stage is held")]
    NotADeployStage { execution: ExecutionId, stage: Stage },
    #[error("a freeze must end in the future, not at {until}")]
    FreezeEndsInThePast { until: DateTime<Utc> },
    #[error("pipeline {pipeline} already has {limit} executions waiting; let them finish or use mode = \"superseded\"")]
    QueueFull { pipeline: String, limit: usize },
    /// Only GitHub can say which is newer: ask its compare API, and send the push again with the answer
    /// (`SourceFacts::compared`).
    #[error(
        "commit {commit} was pushed to {git_ref} in the same second as {head}, which already ran, and the pushes sluice \
         saw do not say which is newer"
    )]
    PushOrderUnknown { git_ref: String, head: String, commit: String },
}

impl TransitionError {
    /// Whether the refusal means sluice could not do what the pipeline asked (an operator should look), rather than
    /// an event that came late, twice or out of turn: a pause the pipeline did not plan, a build or a deployment
    /// that is not the one sluice started for the run.
    pub fn wants_attention(&self) -> bool {
        matches!(
            self,
            TransitionError::UnplannedPause { .. }
                | TransitionError::ForeignBuild { .. }
                | TransitionError::ForeignDeployment { .. }
        )
    }
}

/// Decides what `event` does to `state` at `now`. Pure: same inputs, same decision.
pub fn transition(state: &PipelineState, event: &Event, now: DateTime<Utc>) -> Result<Decision, TransitionError> {
    let mut run = Run { state: state.clone(), effects: Vec::new(), now };
    if let Some(reason) = run.apply(event)? {
        return Ok(Decision::Ignore(reason));
    }
    run.prune(state);
    Ok(Decision::Apply { state: run.state, effects: run.effects })
}

/// A transition in progress: the state being changed and the effects gathered so far.
struct Run {
    state: PipelineState,
    effects: Vec<Effect>,
    now: DateTime<Utc>,
}

type Applied = Result<Option<IgnoreReason>, TransitionError>;

impl Run {
    fn apply(&mut self, event: &Event) -> Applied {
        if let Some(applied) = self.apply_to_pipeline(event) {
            return applied;
        }
        let Some(execution_id) = event.execution_id() else { return Ok(None) };
        let i = self.index(execution_id)?;
        if self.state.executions[i].abridged {
            // A run that ended a while ago: its record is complete, and nothing more comes of it.
            return Ok(Some(IgnoreReason::AlreadyFinished));
        }
        let name = event.name();
        if let Some(deployment) = event.deployment()
            && self.earlier_stage_deployed(i, deployment)
        {
            // A late or repeated word about the deployment of a stage the run has left.
            let finished = self.state.executions[i].status.is_finished();
            return Ok(Some(if finished { IgnoreReason::AlreadyFinished } else { IgnoreReason::AlreadyPastStage }));
        }
        match event {
            Event::Triggered { .. } | Event::Redeployed { .. } | Event::Frozen { .. } | Event::Unfrozen { .. } => {
                Ok(None)
            }
            Event::BuildStarted { build_id, .. } => self.build_started(i, name, build_id),
            Event::BuildStartFailed { reason, .. } => self.build_start_failed(i, name, reason),
            Event::BuildProgressed { build_id, phase, .. } => self.build_progressed(i, name, build_id, phase),
            Event::BuildSucceeded { build_id, outputs, .. } => self.build_succeeded(i, name, build_id, outputs),
            Event::BuildFailed { build_id, status: failure, phase, reason, .. } => {
                self.build_failed(i, name, build_id, *failure, (phase, reason))
            }
            Event::TestStarted { .. } | Event::TestStartFailed { .. } | Event::TestEnded { .. } => {
                self.test_event(i, name, event)
            }
            Event::ApprovalSent { token_hash, hook_id: Some(hook_id), .. } => self.pause_sent(i, hook_id, token_hash),
            Event::ApprovalSent { token_hash, hook_id: None, compared, personal, .. } => {
                self.approval_sent(i, name, (token_hash, personal), compared.as_deref())
            }
            Event::ApprovalDecided { decision, approver, comment, token_hash, source_ip, user_agent, .. } => {
                let said = Said { decision: *decision, approver, comment, source_ip, user_agent };
                self.approval_decided(i, name, &said, token_hash.as_deref())
            }
            Event::ApprovalExpired { .. } => self.approval_expired(i, name),
            Event::DeploymentStarted { .. } => self.started(i, name, event),
            Event::DeploymentPaused { service_deployment, hook_id, stage, expires_at, timeout_action, .. } => {
                let pause =
                    Paused { service_deployment, hook_id, stage, expires_at: *expires_at, action: *timeout_action };
                self.paused(i, &pause)
            }
            Event::HookCompleted {
                deployment_id, lifecycle_event, hook_execution_id, passed, detail, millis, ..
            } => {
                let hook = HookDone { deployment_id, lifecycle_event, hook_execution_id, passed, detail, millis };
                self.hook_completed(i, name, hook)
            }
            Event::DeploymentSucceeded { deployment_id, tasks, .. } => {
                self.deployment_succeeded(i, name, deployment_id, tasks.as_deref())
            }
            Event::DeploymentFailed { deployment_id, reason, rolled_back, .. } => {
                self.deployment_failed(i, name, deployment_id, reason, *rolled_back)
            }
            Event::RollbackOrdered { by, .. } => self.order_rollback(i, by),
            Event::DeploymentTimedOut { .. } => self.deploy_timed_out(i),
            Event::SoakEnded { .. } => self.soak_ended(i),
            Event::AlarmRaised { stage, alarm, reason, .. } => self.alarm_raised(i, *stage, alarm, reason),
            Event::GitHubDeploymentCreated { deployment, stage, .. } => self.github_deployment(i, *deployment, *stage),
            Event::Overridden { stage, by, reason, .. } => self.overridden(i, *stage, by, reason),
            Event::StartHeld { why, .. } => self.start_held(i, why.as_deref()),
            Event::DeploymentSuperseded { deployment_id, by, by_pipeline, reason, .. } => {
                self.deployment_superseded(i, name, deployment_id, (by, by_pipeline), reason)
            }
        }
    }

    /// An event that starts a run, or is the pipeline's own (a freeze and its lift); `None` for one about a run.
    fn apply_to_pipeline(&mut self, event: &Event) -> Option<Applied> {
        Some(match event {
            Event::Triggered { execution_id, source, plan, mode, ordered } => {
                self.triggered(execution_id, source, plan, *mode, ordered.as_deref())
            }
            Event::Redeployed { execution_id, source, plan, mode, build, ordered, stage, only } => {
                self.redeploy(execution_id, source, plan, *mode, build, (ordered, *stage, *only))
            }
            Event::Frozen { by, reason, until } => self.frozen(by, reason, *until),
            Event::Unfrozen { by } => self.unfrozen(by.as_deref()),
            _ => return None,
        })
    }

    /// A push (or an operator's order) starts a run: refused when the queue is full, skipped when its commit is behind
    /// the ref's head, else started at the build.
    fn triggered(
        &mut self,
        execution_id: &ExecutionId,
        source: &SourceFacts,
        plan: &Plan,
        mode: ExecutionMode,
        ordered: Option<&str>,
    ) -> Applied {
        if self.state.execution(execution_id).is_some() {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if mode == ExecutionMode::Queued && self.state.waiting() >= MAX_WAITING {
            return Err(TransitionError::QueueFull { pipeline: self.state.pipeline.clone(), limit: MAX_WAITING });
        }
        self.state.mode = mode;
        // A push of a commit the ref has moved past is late; an operator's order is not a push, and may build
        // the ref's head again, but never a commit behind it (a rollback deploys an earlier build instead).
        let older = match ordered {
            None => self.older_than_head(source)?,
            Some(_) => self.behind_head(source),
        };
        let execution =
            Execution { ordered: ordered.map(str::to_owned), ..self.new_run(execution_id, source, plan, Stage::BUILD) };
        if let Some(reason) = older {
            // It never waited for a stage: it ends before it starts.
            self.state.executions.push(Execution { status: Status::Skipped, ..execution });
            let i = self.state.executions.len() - 1;
            self.finish(i, Status::Skipped, Some(reason));
            return Ok(None);
        }
        if ordered.is_none() {
            self.remember_push(source);
        }
        self.start(execution, Stage::BUILD);
        Ok(None)
    }

    fn index(&self, id: &ExecutionId) -> Result<usize, TransitionError> {
        self.state.executions.iter().position(|execution| &execution.id == id).ok_or_else(|| {
            TransitionError::UnknownExecution { pipeline: self.state.pipeline.clone(), execution: id.clone() }
        })
    }

    /// Whether `deployment` is the deployment of a deploy stage run `i` entered before its last one: events about
    /// the last are its deploy stage's to answer.
    fn earlier_stage_deployed(&self, i: usize, deployment: &str) -> bool {
        let execution = &self.state.executions[i];
        let last = execution.stages.iter().rposition(|record| record.deploy.is_some());
        execution.stages[..last.unwrap_or(0)].iter().any(|record| {
            record.deploy.as_ref().is_some_and(|deploy| {
                deploy.deployment_id.as_deref() == Some(deployment)
                    || deploy.service_deployment.as_deref() == Some(deployment)
            })
        })
    }

    /// An event about `stage` for an execution that is not running it: a no-op if the execution has moved past the
    /// stage (and `same` says the event is about what it did there), an error otherwise.
    fn past(&self, i: usize, stage: Stage, same: bool, event: &'static str) -> Applied {
        let execution = &self.state.executions[i];
        let status = execution.status;
        let passed = match status {
            Status::Waiting(at) | Status::Running(at) => execution.plan.position(at) > execution.plan.position(stage),
            _ => true,
        };
        let execution = execution.id.clone();
        match (passed && same, status.is_finished()) {
            (true, true) => Ok(Some(IgnoreReason::AlreadyFinished)),
            (true, false) => Ok(Some(IgnoreReason::AlreadyPastStage)),
            (false, true) => Err(TransitionError::Finished { execution, status, event }),
            (false, false) => Err(TransitionError::NotInStage { execution, status, event }),
        }
    }

    /// A run an operator ordered, with an earlier run's build: it enters `stage` (its first deploy stage unless
    /// given) or waits for it, at once; with `only`, it ends once that stage is done.
    fn redeploy(
        &mut self,
        id: &ExecutionId,
        source: &SourceFacts,
        plan: &Plan,
        mode: ExecutionMode,
        build: &BuildFacts,
        (ordered, stage, only): (&str, Option<Stage>, bool),
    ) -> Applied {
        if self.state.execution(id).is_some() {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if build.image_uri.is_none() || build.finished_at.is_none() {
            return Err(TransitionError::NothingBuilt { execution: id.clone() });
        }
        if mode == ExecutionMode::Queued && self.state.waiting() >= MAX_WAITING {
            return Err(TransitionError::QueueFull { pipeline: self.state.pipeline.clone(), limit: MAX_WAITING });
        }
        let Some(stage) = stage.or_else(|| plan.first_deploy().map(|(first, _)| first)) else {
            return Err(TransitionError::NothingBuilt { execution: id.clone() });
        };
        self.state.mode = mode;
        let execution = Execution {
            build: Some(build.clone()),
            ordered: Some(ordered.to_owned()),
            only: only.then_some(stage),
            ..self.new_run(id, source, plan, stage)
        };
        self.start(execution, stage);
        Ok(None)
    }

    /// A new run of the pipeline, numbered next, about to wait for `stage`.
    fn new_run(&mut self, id: &ExecutionId, source: &SourceFacts, plan: &Plan, stage: Stage) -> Execution {
        let seq = self.state.next_seq;
        self.state.next_seq += 1;
        Execution {
            id: id.clone(),
            pipeline: self.state.pipeline.clone(),
            seq,
            status: Status::Waiting(stage),
            source: source.clone(),
            plan: plan.clone(),
            build: None,
            stages: Vec::new(),
            reason: None,
            created_at: self.now,
            updated_at: self.now,
            waiting_since: None,
            finished_at: None,
            ordered: None,
            github_deployments: Vec::new(),
            only: None,
            abridged: false,
            let_in: None,
        }
    }

    /// Announces the new run `execution` and lets it into `stage` (or has it wait there).
    fn start(&mut self, execution: Execution, stage: Stage) {
        self.effects.push(Effect::Publish(SluiceEvent::ExecutionStarted(ExecutionStarted {
            pipeline: execution.pipeline.clone(),
            execution_id: execution.id.clone(),
            repository: execution.source.repository.clone(),
            commit: execution.source.commit.clone(),
            git_ref: execution.source.git_ref.clone(),
            pusher: execution.source.pusher.clone(),
            started_at: self.now,
            stage: Some(stage),
        })));
        self.state.executions.push(execution);
        let i = self.state.executions.len() - 1;
        self.show_on_github(i);
        self.enter_or_wait(i, stage);
    }

    /// GitHub made the Deployment that shows a deploy stage of run `i` (its first unless `stage` says): recorded
    /// whatever the run's standing, as the Deployment outlives the run; the first one found or created stands. If the
    /// stage GitHub shows the run at has none yet, GitHub is brought up to date again (a report makes one Deployment
    /// at most).
    fn github_deployment(&mut self, i: usize, deployment: u64, stage: Option<Stage>) -> Applied {
        let execution = &mut self.state.executions[i];
        let Some(stage) = stage.or_else(|| execution.plan.first_deploy().map(|(first, _)| first)) else {
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        };
        if execution.github_deployments.iter().any(|shown| shown.stage == stage) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        execution.github_deployments.push(GitHubDeployment { stage, deployment });
        let made = |stage: Stage| execution.github_deployments.iter().any(|shown| shown.stage == stage);
        if execution.shown_stages().into_iter().any(|(shown, _)| !made(shown)) {
            self.show_on_github(i);
        }
        Ok(None)
    }

    /// Has GitHub brought up to date with run `i`, if its plan shows it there (once per transition).
    fn show_on_github(&mut self, i: usize) {
        let execution = &self.state.executions[i];
        let effect = Effect::ReportToGitHub { execution_id: execution.id.clone() };
        if execution.plan.github.is_some() && !self.effects.contains(&effect) {
            self.effects.push(effect);
        }
    }

    fn same_build(&self, i: usize, build_id: &str) -> bool {
        self.build(i).is_some_and(|build| build.build_id.as_deref().is_none_or(|id| id == build_id))
    }

    fn same_deployment(&self, i: usize, deployment_id: &str) -> bool {
        let deploy = self.state.executions[i].deploy();
        deploy.is_some_and(|deploy| deploy.deployment_id.as_deref().is_none_or(|id| id == deployment_id))
    }

    /// Records the build id if none is yet; true if it was new. Refuses a build sluice did not start.
    fn claim_build(&mut self, i: usize, build_id: &str) -> Result<bool, TransitionError> {
        let id = self.state.executions[i].id.clone();
        let build = self.build_mut(i);
        match &build.build_id {
            None => {
                build.build_id = Some(build_id.to_owned());
                self.touch(i);
                Ok(true)
            }
            Some(known) if known == build_id => Ok(false),
            Some(known) => {
                Err(TransitionError::ForeignBuild { execution: id, expected: known.clone(), got: build_id.to_owned() })
            }
        }
    }

    /// Records the deployment id if none is yet; true if it was new. Refuses a deployment sluice did not start.
    fn claim_deployment(&mut self, i: usize, deployment_id: &str) -> Result<bool, TransitionError> {
        let (id, now) = (self.state.executions[i].id.clone(), self.now);
        let gated = self.state.executions[i].deploying().is_some_and(|(_, planned)| planned.gated());
        let deploy = self.deploy_mut(i);
        match &deploy.deployment_id {
            None => {
                deploy.deployment_id = Some(deployment_id.to_owned());
                // The start may have waited at the stage's gate: the deployment's deadline counts from here.
                deploy.let_in_at = gated.then_some(now);
                let was_held = deploy.held.take().is_some();
                self.touch(i);
                if was_held {
                    // GitHub showed the run waiting at the stage's gate: it deploys now.
                    self.show_held(i);
                }
                Ok(true)
            }
            Some(known) if known == deployment_id => Ok(false),
            Some(known) => Err(TransitionError::ForeignDeployment {
                execution: id,
                expected: known.clone(),
                got: deployment_id.to_owned(),
            }),
        }
    }

    /// Records what a `DeploymentStarted` tells of run `i`'s deployment (its service deployment, its task definition
    /// and the one the service ran before) where the run does not know it yet; true if anything was new.
    fn merge_started(
        &mut self,
        i: usize,
        [service_deployment, task_definition, previous]: [&Option<String>; 3],
    ) -> bool {
        let deploy = self.deploy_mut(i);
        let mut merged = false;
        for (known, told) in [
            (&mut deploy.service_deployment, service_deployment),
            (&mut deploy.task_definition, task_definition),
            (&mut deploy.previous_task_definition, previous),
        ] {
            if known.is_none()
                && let Some(arn) = told
            {
                *known = Some(bounded(arn, MAX_ARN));
                merged = true;
            }
        }
        merged
    }

    /// An operator ordered the run's deployment stopped and rolled back: the deployer (or `sluice rollback` itself)
    /// stops it, and the deployment's own events end the run. Refused where there is nothing sluice can stop.
    fn order_rollback(&mut self, i: usize, by: &str) -> Applied {
        let (now, execution) = (self.now, &self.state.executions[i]);
        let refuse =
            |why: &str| Err(TransitionError::CannotRollBack { execution: execution.id.clone(), why: why.into() });
        let Some((stage, planned)) = execution.deploying() else {
            return self.past(i, self.deploy_stage(i), false, "rollback_ordered");
        };
        let Some(deploy) = execution.record(stage).and_then(|record| record.deploy.as_ref()) else {
            return refuse("its deployment has not started yet");
        };
        if deploy.rollback_ordered.is_some() {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if let Some(until) = deploy.soak_until {
            return refuse(&format!(
                "its deployment finished and the release soaks at {stage} until {}; roll back with a run (sluice \
                 rollback --to)",
                until.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        if deploy.rolling_back(now) {
            return refuse("it is already rolling back");
        }
        let deployment = match &planned.target {
            DeployTarget::BlueGreen(_) => deploy.deployment_id.clone(),
            DeployTarget::EcsNative(_) => deploy.service_deployment.clone(),
            DeployTarget::Rolling(_) => {
                return refuse(
                    "a rolling update is not stopped by sluice (its circuit breaker rolls back tasks that fail to \
                     start)",
                );
            }
        };
        let Some(deployment) = deployment else { return refuse("its deployment has not started yet") };
        self.effects.push(Effect::StopDeployment {
            execution_id: execution.id.clone(),
            stage,
            target: planned.target.clone(),
            deployment,
        });
        self.deploy_mut(i).rollback_ordered = Some(OrderedRollback { by: bounded(by, MAX_APPROVER), at: now });
        Ok(None)
    }

    /// The run's deployment is past its deadline: the run fails, saying so, and sluice stops the deployment (and has
    /// it rolled back), or puts a rolling update's service back on the task definition it ran before, where it can.
    fn deploy_timed_out(&mut self, i: usize) -> Applied {
        let (now, execution) = (self.now, &self.state.executions[i]);
        let Some((stage, plan)) = execution.deploying() else {
            return self.past(i, self.deploy_stage(i), true, "deployment_timed_out");
        };
        let Some(deploy) = execution.record(stage).and_then(|record| record.deploy.as_ref()) else {
            return self.past(i, stage, false, "deployment_timed_out");
        };
        if deploy.soak_until.is_some() {
            // The deployment finished: the release soaks, which no deadline cuts short.
            return Ok(Some(IgnoreReason::AlreadyPastStage));
        }
        if deploy.deployment_id.is_none() && self.state.start_gated(&execution.id) {
            return Ok(Some(IgnoreReason::StartWaits));
        }
        let deadline = crate::deploy::deadline::deadline(&plan.target, plan.timeout_minutes, deploy.deadline_from());
        if now < deadline {
            return Err(TransitionError::DeadlineNotReached { execution: execution.id.clone(), deadline });
        }
        let id = execution.id.clone();
        let stop = match &plan.target {
            DeployTarget::BlueGreen(_) => deploy.deployment_id.clone(),
            DeployTarget::EcsNative(_) => deploy.service_deployment.clone(),
            DeployTarget::Rolling(_) => None,
        };
        let previous = deploy.previous_task_definition.clone().filter(|p| Some(p) != deploy.task_definition.as_ref());
        let done = match (stop, previous, &plan.target) {
            (Some(deployment), _, target) => {
                self.effects.push(Effect::StopDeployment {
                    execution_id: id.clone(),
                    stage,
                    target: target.clone(),
                    deployment,
                });
                "sluice stopped it and had it rolled back".to_owned()
            }
            (None, Some(previous), target @ DeployTarget::Rolling(_)) => {
                let deployment_id = deploy.deployment_id.clone().unwrap_or_default();
                let task_definition = previous.clone();
                self.effects.push(Effect::RollBack {
                    execution_id: id,
                    deployment_id,
                    stage,
                    target: target.clone(),
                    task_definition,
                    artifacts: None,
                });
                format!("sluice put the service back on {previous}")
            }
            _ => "sluice knew nothing of it to stop".to_owned(),
        };
        let waits = crate::deploy::deadline::strategy_waits(&plan.target);
        let beyond = plan.timeout_minutes.unwrap_or(crate::deploy::deadline::DEFAULT_DEPLOY_TIMEOUT_MINUTES);
        let reason = format!(
            "the deployment did not finish within {} ({} its strategy may wait, and deploy.timeout {}); {done}",
            span(deadline - deploy.started_at),
            span(waits),
            span(TimeDelta::minutes(i64::from(beyond)))
        );
        let deploy = self.deploy_mut(i);
        deploy.timed_out_at = Some(now);
        deploy.finished_at = Some(now);
        let reason = self.in_stage(i, reason);
        self.finish(i, Status::Failed, Some(reason));
        Ok(None)
    }

    /// A rolling update's AfterRollout checks ran: the run succeeds, or the service goes back to the task definition
    /// it ran before (the run ends when the deployer has asked ECS for that), or, with none known, the run fails.
    fn after_rollout_checked(&mut self, i: usize, passed: bool) {
        let now = self.now;
        let deploy = self.deploy_mut(i);
        if passed {
            deploy.finished_at = Some(now);
            self.stage_done(i);
            return;
        }
        let detail = deploy.hooks.last().and_then(|hook| hook.detail.clone()).unwrap_or_else(|| "no detail".into());
        self.roll_back_deployed(i, format!("the {AFTER_ROLLOUT} checks failed ({detail})"));
    }

    /// The run's deployment completed, but what it left running failed a verification (`why`): the service goes
    /// back to the task definition it ran before (the run ends when the deployer has asked for that), or, with none
    /// known, the run fails.
    pub(super) fn roll_back_deployed(&mut self, i: usize, why: String) {
        let now = self.now;
        let deploy = self.deploy_mut(i);
        let (deployment_id, ours) = (deploy.deployment_id.clone().unwrap_or_default(), deploy.task_definition.clone());
        match deploy.previous_task_definition.clone().filter(|previous| Some(previous) != ours.as_ref()) {
            Some(previous) => {
                let execution = &self.state.executions[i];
                let Some((stage, planned)) = execution.deploying() else { return };
                self.effects.push(Effect::RollBack {
                    execution_id: execution.id.clone(),
                    deployment_id: deployment_id.clone(),
                    stage,
                    target: planned.target.clone(),
                    task_definition: previous.clone(),
                    artifacts: execution.build.as_ref().and_then(|build| build.artifacts.clone()),
                });
                self.effects.push(Effect::Publish(SluiceEvent::RollbackRequested(RollbackRequested {
                    pipeline: execution.pipeline.clone(),
                    execution_id: execution.id.clone(),
                    deployment_id,
                    task_definition: previous,
                    reason: bounded(&why, MAX_REASON),
                    stage: Some(stage),
                })));
            }
            None => {
                deploy.finished_at.get_or_insert(now);
                let runs = ours.as_deref().unwrap_or("the new task definition");
                let reason =
                    format!("{why}; sluice knows no task definition the service ran before, so it still runs {runs}");
                let reason = self.in_stage(i, reason);
                self.finish(i, Status::Failed, Some(reason));
            }
        }
    }

    /// A `DeploymentStarted`: its facts recorded, and which of the soak's alarms were in ALARM as it started.
    fn started(&mut self, i: usize, name: &'static str, event: &Event) -> Applied {
        let Event::DeploymentStarted {
            deployment_id,
            service_deployment,
            task_definition,
            previous_task_definition,
            in_alarm,
            ..
        } = event
        else {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        };
        let facts = [service_deployment, task_definition, previous_task_definition];
        let applied = self.deployment_started(i, name, deployment_id, facts);
        if matches!(applied, Ok(None)) && self.state.executions[i].deploying().is_some() {
            self.alarms_before(i, in_alarm.as_deref());
        }
        applied
    }

    fn build(&self, i: usize) -> Option<&BuildFacts> {
        self.state.executions[i].build.as_ref()
    }

    fn touch(&mut self, i: usize) {
        self.state.executions[i].updated_at = self.now;
    }

    // The three accessors below are called only for an execution running the matching stage, which `enter` gave
    // its facts; should that ever not hold, fresh facts are recorded rather than panicking.
    fn build_mut(&mut self, i: usize) -> &mut BuildFacts {
        let (now, execution) = (self.now, &mut self.state.executions[i]);
        execution.updated_at = now;
        let project = execution.plan.build.project.clone();
        execution.build.get_or_insert(BuildFacts {
            project,
            build_id: None,
            phase: None,
            image_uri: None,
            artifacts: None,
            started_at: now,
            finished_at: None,
        })
    }

    /// The record facts of a kind go in (`has`: whether a record has them): the last record that has them (the
    /// stage the run holds gets its facts when it enters; a late event may be about a stage it has left), or else a
    /// fresh one for the stage it holds (`otherwise` if it holds none).
    fn record_mut(&mut self, i: usize, has: fn(&StageRecord) -> bool, otherwise: Stage) -> &mut StageRecord {
        let (now, execution) = (self.now, &mut self.state.executions[i]);
        execution.updated_at = now;
        let at = execution.stages.iter().rposition(has).unwrap_or_else(|| {
            let name = match execution.status {
                Status::Running(stage) => stage,
                _ => otherwise,
            };
            execution.stages.push(StageRecord::new(name));
            execution.stages.len() - 1
        });
        &mut execution.stages[at]
    }

    fn approval_mut(&mut self, i: usize) -> &mut ApprovalFacts {
        let now = self.now;
        let execution = &self.state.executions[i];
        let topic_arn = execution
            .at()
            .and_then(|stage| execution.plan.stage(stage))
            .and_then(|planned| planned.approval())
            .map(|approval| approval.topic_arn.clone())
            .unwrap_or_default();
        let has = |record: &StageRecord| record.approval.is_some();
        self.record_mut(i, has, Stage::APPROVAL).approval.get_or_insert(ApprovalFacts {
            topic_arn,
            requested_at: now,
            expires_at: now,
            ..Default::default()
        })
    }

    fn deploy_mut(&mut self, i: usize) -> &mut DeployFacts {
        let now = self.now;
        let execution = &self.state.executions[i];
        let strategy = execution.deploying().map_or("", |(_, planned)| planned.target.strategy());
        let strategy = strategy.to_owned();
        let has = |record: &StageRecord| record.deploy.is_some();
        self.record_mut(i, has, Stage::DEPLOY).deploy.get_or_insert_with(|| DeployFacts::new(strategy, now))
    }

    /// The deploy stage run `i` holds, or else the one it last entered (or will enter first): what an event about a
    /// deployment is about.
    fn deploy_stage(&self, i: usize) -> Stage {
        self.state.executions[i].deploy_stage().map_or(Stage::DEPLOY, |(stage, _)| stage)
    }

    /// Run `i` is done with the stage it holds: on to the next stage, or, after the last, it succeeded. A deploy
    /// stage that soaks is held until the release has run there that long ([`Run::soak_ended`]).
    fn stage_done(&mut self, i: usize) {
        let execution = &self.state.executions[i];
        let soak = execution.deploying().and_then(|(_, deploy)| deploy.soak_secs);
        let soak = soak.and_then(|secs| TimeDelta::try_seconds(i64::try_from(secs).ok()?));
        let goes_on = |at: Stage| execution.plan.after(at).is_some() && execution.only != Some(at);
        if let Some(soak) = soak.filter(|_| execution.at().is_some_and(goes_on)) {
            let until = self.now.checked_add_signed(soak).unwrap_or(DateTime::<Utc>::MAX_UTC);
            self.deploy_mut(i).soak_until = Some(until);
            return;
        }
        match execution.at() {
            Some(stage) => self.advance(i, stage),
            None => self.finish(i, Status::Succeeded, None),
        }
    }

    /// The execution has finished `from`: on to the next stage (or, after the last, it succeeded), and let the next
    /// one in.
    fn advance(&mut self, i: usize, from: Stage) {
        let execution = &self.state.executions[i];
        let next = execution.plan.after(from).filter(|_| execution.only != Some(from));
        match next {
            Some(next) => {
                self.enter_or_wait(i, next);
                self.release(from);
            }
            None => self.finish(i, Status::Succeeded, None),
        }
    }

    /// Enters `stage` if it is free; otherwise waits for it, superseding older waiters in `superseded` mode.
    fn enter_or_wait(&mut self, i: usize, stage: Stage) {
        let id = self.state.executions[i].id.clone();
        let planned = self.state.executions[i].plan.stage(stage);
        let asks = planned.is_some_and(|planned| planned.approval().is_some());
        // A test stage asks only once its tests failed, if it asks at all.
        let may_ask = planned.and_then(|planned| planned.test()).is_some_and(|test| test.on_failure != OnFailure::Fail);
        if self.state.mode == ExecutionMode::Superseded && (asks || may_ask) {
            // The newest build is the one worth approving: an older run still awaiting its decision is withdrawn (its
            // link says by which run), after any run waiting behind it.
            self.supersede_waiting(i, stage);
            let seq = self.state.executions[i].seq;
            let pending = (0..self.state.executions.len()).find(|&j| {
                let other = &self.state.executions[j];
                let undecided = match asks {
                    true => other.approval().is_none_or(|approval| approval.decision.is_none()),
                    false => other.approving(),
                };
                other.status == Status::Running(stage) && other.seq < seq && undecided
            });
            if let Some(j) = pending {
                let commit = self.state.executions[i].source.commit.clone();
                let reason = format!("superseded by execution {id} (commit {commit}) while awaiting approval");
                self.finish(j, Status::Superseded, Some(reason));
            }
        }
        // A freeze holds every run out of a deploy stage, free or not: they wait in order, and GitHub says why.
        let held = self.held_out(i, stage);
        if self.state.holder_of(stage).is_none_or(|holder| holder.id == id) && !held {
            self.enter(i, stage);
            return;
        }
        let execution = &mut self.state.executions[i];
        execution.status = Status::Waiting(stage);
        execution.waiting_since = Some(self.now);
        execution.updated_at = self.now;
        if held {
            self.show_held(i);
        }
        if self.state.mode == ExecutionMode::Superseded {
            self.supersede_waiting(i, stage);
        }
    }

    /// Ends, as superseded by `i`, the older executions waiting for `stage`.
    fn supersede_waiting(&mut self, i: usize, stage: Stage) {
        let (id, seq) = (self.state.executions[i].id.clone(), self.state.executions[i].seq);
        let commit = self.state.executions[i].source.commit.clone();
        let older: Vec<usize> = (0..self.state.executions.len())
            .filter(|&j| j != i && self.state.executions[j].status == Status::Waiting(stage))
            .filter(|&j| self.state.executions[j].seq < seq)
            .collect();
        for j in older {
            let reason = format!("superseded by execution {id} (commit {commit})");
            self.finish(j, Status::Superseded, Some(reason));
        }
    }

    /// Run `i` takes `stage`: its stage kind's module starts what the stage does.
    fn enter(&mut self, i: usize, stage: Stage) {
        let now = self.now;
        let execution = &mut self.state.executions[i];
        execution.status = Status::Running(stage);
        execution.waiting_since = None;
        execution.updated_at = now;
        if stage == Stage::BUILD {
            self.start_build(i);
            return;
        }
        let Some(planned) = execution.plan.stage(stage).cloned() else {
            // Statuses name only the build and the plan's stages; a stored run that names another ends here.
            self.finish(i, Status::Failed, Some(format!("its plan has no stage {stage}")));
            return;
        };
        match &planned.kind {
            StageKind::Approval(approval) => self.request_approval(i, approval),
            StageKind::Deploy(deploy) => self.start_deployment(i, stage, deploy),
            StageKind::Test(test) => self.start_test(i, stage, test),
        }
    }

    /// Asks the approvers (`topic_arn`) to decide by `expires_at`: at the approval stage, or at the pause `hook_id`.
    fn ask(
        &mut self,
        i: usize,
        (topic_arn, approvers): (&str, Option<&Approvers>),
        expires_at: DateTime<Utc>,
        notice: ApprovalNotice,
        hook_id: Option<&str>,
        release: Option<ReleaseLookup>,
    ) {
        let execution = &self.state.executions[i];
        let pause_stage = notice.pause.as_ref().map(|pause| pause.stage.clone());
        let frozen = self.state.frozen().filter(|_| !execution.let_through_next()).map(crate::present::text::freeze);
        self.effects.push(Effect::RequestApproval {
            execution_id: execution.id.clone(),
            topic_arn: topic_arn.to_owned(),
            expires_at,
            notice: Box::new(ApprovalNotice { frozen, ..notice }),
            hook_id: hook_id.map(str::to_owned),
            release,
            approvers: approvers.map(|approvers| approvers.emails.clone()).unwrap_or_default(),
        });
        self.effects.push(Effect::Publish(SluiceEvent::ApprovalRequested(ApprovalRequested {
            pipeline: execution.pipeline.clone(),
            execution_id: execution.id.clone(),
            repository: execution.source.repository.clone(),
            commit: execution.source.commit.clone(),
            git_ref: execution.source.git_ref.clone(),
            message: execution.source.message.clone(),
            image_uri: execution.build.as_ref().and_then(|build| build.image_uri.clone()),
            topic_arn: topic_arn.to_owned(),
            expires_at,
            stage: execution.at(),
            pause_stage,
        })));
    }

    /// Announces a decision just recorded (`pause_stage`: where the deployment it decides is paused).
    fn announce_decision(&mut self, i: usize, said: &Said<'_>, pause_stage: Option<&str>) {
        let execution = &self.state.executions[i];
        self.effects.push(Effect::Publish(SluiceEvent::ApprovalDecided(ApprovalDecidedEvent {
            pipeline: execution.pipeline.clone(),
            execution_id: execution.id.clone(),
            commit: execution.source.commit.clone(),
            decision: said.decision.name().to_owned(),
            approver: bounded(said.approver, MAX_APPROVER),
            comment: said.comment.as_deref().map(|comment| bounded(comment, MAX_COMMENT)),
            decided_at: self.now,
            pause_stage: pause_stage.map(str::to_owned),
            stage: execution.at(),
        })));
    }

    /// Ends an execution; the stage it held goes to the next in line.
    fn finish(&mut self, i: usize, outcome: Status, reason: Option<String>) {
        let now = self.now;
        let execution = &mut self.state.executions[i];
        let was = execution.status;
        execution.status = outcome;
        execution.reason = reason.map(|reason| bounded(&reason, MAX_REASON));
        execution.finished_at = Some(now);
        execution.updated_at = now;
        execution.waiting_since = None;
        let stage = match was {
            Status::Waiting(stage) | Status::Running(stage) => Some(stage),
            _ => None,
        };
        self.effects.push(Effect::Publish(SluiceEvent::ExecutionFinished(ExecutionFinished {
            pipeline: execution.pipeline.clone(),
            execution_id: execution.id.clone(),
            commit: execution.source.commit.clone(),
            outcome: outcome.name().to_owned(),
            stage,
            reason: execution.reason.clone(),
            started_at: execution.created_at,
            finished_at: now,
        })));
        if let Some(notify) = &execution.plan.notify {
            self.effects.push(Effect::NotifyOutcome {
                execution_id: execution.id.clone(),
                topic_arn: notify.topic_arn.clone(),
                outcome,
            });
        }
        self.show_on_github(i);
        if let Status::Running(stage) = was {
            self.release(stage);
        }
    }

    /// Lets the oldest execution waiting for `stage` in, if the stage is free.
    fn release(&mut self, stage: Stage) {
        if self.state.holder_of(stage).is_some() {
            return;
        }
        // The oldest that no freeze holds out (while frozen, only a run an operator let through).
        let next = (0..self.state.executions.len())
            .filter(|&j| self.state.executions[j].status == Status::Waiting(stage) && !self.held_out(j, stage))
            .min_by_key(|&j| self.state.executions[j].seq);
        if let Some(j) = next {
            self.enter(j, stage);
        }
    }

    /// Why a push must not run, if its commit is older than what the pipeline already ran for its ref. GitHub does
    /// not promise to deliver pushes in order, and people redeliver (or replay) old ones: the ref's head commit again,
    /// a push made before the head's (GitHub's `pushed_at`, to the second), or a commit on the `before -> after` chain
    /// of the pushes it ran would deploy backwards. Pushed in the same second as the head and not linked to it by
    /// the chain, the push is refused until it comes with GitHub's comparison of the two (`PushOrderUnknown`).
    fn older_than_head(&self, source: &super::state::SourceFacts) -> Result<Option<String>, TransitionError> {
        let Some(head) = self.state.refs.iter().find(|h| h.git_ref == source.git_ref).and_then(|h| h.pushes.last())
        else {
            return Ok(None);
        };
        if source.commit == head.after {
            let short = short_commit(&head.after);
            return Ok(Some(format!("{} already ran {short} for {}", self.state.pipeline, source.git_ref)));
        }
        let same_second = match (source.pushed_at, head.pushed_at) {
            (Some(pushed), Some(head_pushed)) if pushed < head_pushed => {
                return Ok(Some(self.pushed_before(source, head, pushed, head_pushed)));
            }
            (Some(pushed), Some(head_pushed)) => pushed == head_pushed,
            _ => false,
        };
        // The next push after the head, or a ref created anew (deleted, then pushed again where someone chose).
        if source.before.is_empty() || source.before == NO_COMMIT || source.before == head.after {
            return Ok(None);
        }
        if let Some(reason) = self.behind_head(source) {
            return Ok(Some(reason));
        }
        if !same_second {
            return Ok(None);
        }
        match &source.compared {
            Some(compared) if compared.head == head.after => Ok(match compared.order {
                CommitOrder::Behind => Some(format!(
                    "GitHub's compare shows commit {} is behind {}, which {} already ran for {}; sluice never deploys \
                     backwards",
                    short_commit(&source.commit),
                    short_commit(&head.after),
                    self.state.pipeline,
                    source.git_ref
                )),
                CommitOrder::Identical => Some(format!(
                    "commit {} is {}, which {} already ran for {}",
                    short_commit(&source.commit),
                    short_commit(&head.after),
                    self.state.pipeline,
                    source.git_ref
                )),
                CommitOrder::Ahead | CommitOrder::Diverged | CommitOrder::Unknown => None,
            }),
            _ => Err(TransitionError::PushOrderUnknown {
                git_ref: source.git_ref.clone(),
                head: head.after.clone(),
                commit: source.commit.clone(),
            }),
        }
    }

    /// Why a push made before the ref's head must not run.
    fn pushed_before(
        &self,
        source: &super::state::SourceFacts,
        head: &PushLink,
        pushed: DateTime<Utc>,
        head_pushed: DateTime<Utc>,
    ) -> String {
        format!(
            "commit {} was pushed at {}, before {} (pushed at {}), which {} already ran for {}; sluice never deploys \
             backwards",
            short_commit(&source.commit),
            pushed.format("%Y-%m-%d %H:%M:%S UTC"),
            short_commit(&head.after),
            head_pushed.format("%Y-%m-%d %H:%M:%S UTC"),
            self.state.pipeline,
            source.git_ref
        )
    }

    /// Why `source`'s commit is one its ref has moved past (an ancestor of the ref's last pushed commit, as far as
    /// the remembered pushes go); `None` for the head itself or a commit not among them.
    fn behind_head(&self, source: &super::state::SourceFacts) -> Option<String> {
        let history = self.state.refs.iter().find(|history| history.git_ref == source.git_ref)?;
        let head = &history.pushes.last()?.after;
        let mut at = head;
        for _ in 0..history.pushes.len() {
            let Some(link) = history.pushes.iter().rev().find(|link| &link.after == at) else { break };
            if link.before == source.commit {
                return Some(format!(
                    "commit {} is older than {}, which {} already ran for {}; sluice never deploys backwards",
                    short_commit(&source.commit),
                    short_commit(head),
                    self.state.pipeline,
                    source.git_ref
                ));
            }
            at = &link.before;
        }
        None
    }

    /// Records a push the pipeline runs as its ref's new head.
    fn remember_push(&mut self, source: &super::state::SourceFacts) {
        let refs = &mut self.state.refs;
        let mut history = match refs.iter().position(|history| history.git_ref == source.git_ref) {
            Some(index) => refs.remove(index),
            None => RefHistory { git_ref: source.git_ref.clone(), pushes: Vec::new() },
        };
        history.pushes.push(PushLink {
            before: source.before.clone(),
            after: source.commit.clone(),
            pushed_at: source.pushed_at,
        });
        if history.pushes.len() > REMEMBERED_PUSHES {
            history.pushes.remove(0);
        }
        refs.push(history);
        if refs.len() > REMEMBERED_REFS {
            refs.remove(0);
        }
    }

    /// Keeps only the most recently finished executions. A run that ended in this transition stays until a later
    /// one, whatever its time says (a writer that retried after a conflict decides with the time it started at): the
    /// save that records its end must also write it to the run's own item, which is what history and the status page
    /// read.
    fn prune(&mut self, before: &PipelineState) {
        let ended_before =
            |execution: &Execution| before.execution(&execution.id).is_some_and(|was| was.status.is_finished());
        let mut finished: Vec<(DateTime<Utc>, u64, bool)> = self
            .state
            .executions
            .iter()
            .filter(|execution| execution.status.is_finished())
            .map(|execution| {
                (execution.finished_at.unwrap_or(execution.updated_at), execution.seq, ended_before(execution))
            })
            .collect();
        if finished.len() <= RETAINED_FINISHED {
            return;
        }
        finished.sort();
        let drop: Vec<u64> = finished[..finished.len() - RETAINED_FINISHED]
            .iter()
            .filter(|&&(_, _, droppable)| droppable)
            .map(|&(_, seq, _)| seq)
            .collect();
        self.state.executions.retain(|execution| !drop.contains(&execution.seq));
    }
}

/// A length of time as people say it: `1h 25m`, `40m`, `30s`.
fn span(time: TimeDelta) -> String {
    let (hours, minutes, seconds) = (time.num_hours(), time.num_minutes() % 60, time.num_seconds() % 60);
    match (hours, minutes, seconds) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

mod approval;
mod build;
mod deploy;
mod freeze;
pub use freeze::MAX_OVERRIDE;
mod pause;
mod soak;
mod test;
use deploy::HookDone;
pub use pause::{MAX_PAUSES, MAX_RUN_PAUSES};
use pause::{Paused, Said};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_approvers;
#[cfg(test)]
mod tests_digest;
#[cfg(test)]
mod tests_stages;
#[cfg(test)]
mod tests_test_stage;
