//! The pipeline's outbox, as pure operations on its state: effects are appended with the state change that decided
//! them, leased to the one invocation that carries them out, removed once done, retried later with backoff when they
//! fail, and parked (out of everyone's way, waiting for an operator) when they fail for good or too often.
//!
//! The clock and the lease owner's name are passed in, like everything else in `pipeline`.

use chrono::{DateTime, TimeDelta, Utc};

use super::event::{Effect, EffectKind};
use super::state::{ExecutionId, Lease, ParkedEffect, PendingEffect, PipelineState, Stage, Status, bounded};

/// How long an invocation may carry an effect out before another may take it over (longer than the function's
/// time for it, so a live invocation never loses its lease; short enough that a crashed one delays little).
pub const LEASE: TimeDelta = TimeDelta::minutes(2);
/// The lease of AfterRollout checks, which may take most of the hooks function's 300 s.
pub const CHECKS_LEASE: TimeDelta = TimeDelta::minutes(6);
/// How long an effect that is not to be carried out yet waits at least before it is tried again (not in the same
/// invocation's next round): any invocation of its owner for the pipeline after that, or the reconciler's next look
/// (every five minutes), tries it again.
pub const WAIT: TimeDelta = TimeDelta::seconds(10);
/// Failed attempts after which an effect is parked.
pub const MAX_ATTEMPTS: u32 = 8;
/// Parked effects kept per pipeline; past this the oldest is dropped (and was logged when parked).
pub const MAX_PARKED: usize = 5;
/// The longest wait between two attempts.
pub const MAX_BACKOFF: TimeDelta = TimeDelta::minutes(15);
/// Outcome notifications kept waiting per pipeline; past this the oldest is dropped.
pub const MAX_PENDING_NOTICES: usize = 5;
/// GitHub reports kept waiting per pipeline (one per run at most); past this the oldest is dropped.
pub const MAX_PENDING_REPORTS: usize = 10;
/// How long a stored error message may be.
pub const MAX_ERROR: usize = 1024;

impl PendingEffect {
    /// An effect not tried yet.
    pub fn new(id: String, effect: Effect) -> Self {
        Self { id, effect, attempts: 0, not_before: None, lease: None, last_error: None }
    }

    /// Whether it may be carried out at `now`: its backoff has passed and nobody holds it.
    fn free_at(&self, now: DateTime<Utc>) -> bool {
        self.not_before.is_none_or(|at| at <= now) && self.lease.as_ref().is_none_or(|lease| lease.until <= now)
    }
}

/// What became of a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// It will be tried again, not before this time.
    Later(DateTime<Utc>),
    /// It was parked after this many attempts.
    Parked { attempts: u32 },
    /// The effect was not in the outbox (someone else finished it).
    Gone,
}

impl PipelineState {
    /// Appends `effects` to the outbox. Each id names the pipeline, the version about to be written and the effect's
    /// rank among all the pipeline ever enqueued: unique, and stable across retries.
    pub fn enqueue(&mut self, effects: Vec<Effect>, version: u64) {
        for effect in effects {
            let id = format!("{}-{version}-{}", self.pipeline, self.effect_seq);
            self.effect_seq += 1;
            self.pending.push(PendingEffect::new(id, effect));
        }
    }

    /// The effects of `kinds` that may be carried out at `now`: their backoff has passed and nobody else holds them.
    pub fn due<'a>(&'a self, kinds: &'a [EffectKind], now: DateTime<Utc>) -> impl Iterator<Item = &'a PendingEffect> {
        self.pending.iter().filter(move |pending| kinds.contains(&pending.effect.kind()) && pending.free_at(now))
    }

    /// The effects due at `now` that a function other than the one owning `own` carries out, by execution, oldest
    /// first: what a doorbell (`Effects Due`) should wake their owners for.
    pub fn due_elsewhere(&self, own: &[EffectKind], now: DateTime<Utc>) -> Vec<(ExecutionId, Vec<EffectKind>)> {
        let mut due: Vec<(ExecutionId, Vec<EffectKind>)> = Vec::new();
        for pending in
            self.pending.iter().filter(|pending| !own.contains(&pending.effect.kind()) && pending.free_at(now))
        {
            let Some(execution) = pending.effect.execution_id() else { continue };
            let kind = pending.effect.kind();
            match due.iter_mut().find(|(id, _)| id == execution) {
                Some((_, kinds)) if !kinds.contains(&kind) => kinds.push(kind),
                Some(_) => {}
                None => due.push((execution.clone(), vec![kind])),
            }
        }
        due
    }

    /// Leases every due effect of `kinds` to `owner` and returns them, oldest first.
    pub fn claim(&mut self, owner: &str, kinds: &[EffectKind], now: DateTime<Utc>) -> Vec<PendingEffect> {
        let ids: Vec<String> = self.due(kinds, now).map(|pending| pending.id.clone()).collect();
        let mut claimed = Vec::with_capacity(ids.len());
        for pending in self.pending.iter_mut().filter(|pending| ids.contains(&pending.id)) {
            let lease = if pending.effect.kind() == EffectKind::RunChecks { CHECKS_LEASE } else { LEASE };
            pending.lease = Some(Lease { owner: owner.to_owned(), until: now + lease });
            claimed.push(pending.clone());
        }
        claimed
    }

    /// Removes a carried-out effect. False if it was no longer there.
    pub fn complete(&mut self, id: &str) -> bool {
        let before = self.pending.len();
        self.pending.retain(|pending| pending.id != id);
        self.pending.len() < before
    }

    /// Whether run `execution`'s deployment start waits in the outbox at its stage's gate (windows, entry alarms).
    pub fn start_gated(&self, execution: &ExecutionId) -> bool {
        self.pending_start(execution)
            .is_some_and(|pending| matches!(&pending.effect, Effect::StartDeployment { entry: Some(_), .. }))
    }

    /// Run `execution`'s deployment start waiting in the outbox, if any.
    pub fn pending_start(&self, execution: &ExecutionId) -> Option<&PendingEffect> {
        self.pending.iter().find(|pending| {
            matches!(&pending.effect, Effect::StartDeployment { execution_id, .. } if execution_id == execution)
        })
    }

    /// Whether effect `tried` changed in the outbox while it was tried (an operator let its run through its stage's
    /// gate): then it is released, to be tried again at once as it is now, and what came of the try does not count.
    pub fn changed_since(&mut self, tried: &PendingEffect) -> bool {
        match self.pending.iter_mut().find(|pending| pending.id == tried.id) {
            Some(pending) if pending.effect != tried.effect => {
                // Released only if this try still holds it: another invocation may have taken it over since.
                if pending.lease == tried.lease {
                    pending.lease = None;
                }
                true
            }
            _ => false,
        }
    }

    /// Records that effect `tried` is not to be carried out yet, saying why: it is tried again from `again` on.
    /// Waiting is no failure: the services answered, and the effect's earlier failed attempts are forgotten. If the
    /// effect changed while it was tried (an operator let its run through), it is tried again at once, as it is now.
    /// True if the wait was recorded.
    pub fn wait(&mut self, tried: &PendingEffect, why: &str, again: DateTime<Utc>) -> bool {
        if self.changed_since(tried) {
            return false;
        }
        let Some(pending) = self.pending.iter_mut().find(|pending| pending.id == tried.id) else { return false };
        pending.lease = None;
        pending.attempts = 0;
        pending.last_error = Some(bounded(why, MAX_ERROR));
        pending.not_before = Some(again);
        true
    }

    /// Records a failed attempt: the effect is tried again after a backoff that doubles with each attempt, or
    /// parked if the failure is `permanent` or the attempts are used up.
    pub fn fail(&mut self, id: &str, error: &str, permanent: bool, now: DateTime<Utc>) -> Retry {
        let Some(index) = self.pending.iter().position(|pending| pending.id == id) else { return Retry::Gone };
        let pending = &mut self.pending[index];
        pending.attempts += 1;
        pending.lease = None;
        pending.last_error = Some(bounded(error, MAX_ERROR));
        if permanent || pending.attempts >= MAX_ATTEMPTS {
            let pending = self.pending.remove(index);
            let attempts = pending.attempts;
            self.parked.push(ParkedEffect {
                id: pending.id,
                effect: pending.effect,
                attempts,
                error: pending.last_error.unwrap_or_default(),
                parked_at: now,
            });
            if self.parked.len() > MAX_PARKED {
                self.parked.remove(0);
            }
            return Retry::Parked { attempts };
        }
        let backoff = TimeDelta::seconds(5 << pending.attempts.min(12)).min(MAX_BACKOFF);
        let at = now + backoff;
        pending.not_before = Some(at);
        Retry::Later(at)
    }

    /// Drops the stage effects whose execution no longer holds their stage (a build, an approval request, a
    /// deployment, its checks, its rollback or its stop, of a run that was superseded, rejected or ended meanwhile),
    /// the hook answers of deployments
    /// that have ended, all but the newest GitHub report of a run (and of those, the newest [`MAX_PENDING_REPORTS`]),
    /// and all but the newest [`MAX_PENDING_NOTICES`] outcome notifications: they are moot, and an
    /// outbox whose owner is slow or not deployed must not grow with every run. Announcements are kept, and so are
    /// the hook answers of a deployment still going: they have to go out.
    pub fn drop_moot(&mut self) {
        let executions = &self.executions;
        let holds = |id: &ExecutionId, stage: Stage| {
            executions.iter().any(|execution| &execution.id == id && execution.status == Status::Running(stage))
        };
        let approving = |id: &ExecutionId| executions.iter().any(|e| &e.id == id && e.approving());
        let deploying = |id: &ExecutionId| executions.iter().any(|e| &e.id == id && e.deploying().is_some());
        // A build that CodeBuild's own events already tied to the run: starting it again past CodeBuild's
        // idempotency window (five minutes) would start a second build.
        let deploy_free = executions.iter().all(|e| e.deploying().is_none());
        let timed_out = |id: &ExecutionId| {
            executions.iter().any(|e| &e.id == id && e.deploy().is_some_and(|d| d.timed_out_at.is_some()))
        };
        let built = |id: &ExecutionId| {
            executions.iter().any(|e| &e.id == id && e.build.as_ref().is_some_and(|build| build.build_id.is_some()))
        };
        let test_built = |id: &ExecutionId, stage: Stage| {
            let test = executions.iter().find(|e| &e.id == id).and_then(|e| e.record(stage)?.test.as_ref());
            test.is_some_and(|test| test.build_id.is_some() || test.finished_at.is_some())
        };
        self.pending.retain(|pending| match &pending.effect {
            Effect::StartBuild { execution_id, stage: None, .. } => {
                holds(execution_id, Stage::BUILD) && !built(execution_id)
            }
            Effect::StartBuild { execution_id, stage: Some(stage), .. }
            | Effect::RunTestChecks { execution_id, stage, .. } => {
                holds(execution_id, *stage) && !test_built(execution_id, *stage)
            }
            Effect::RequestApproval { execution_id, hook_id: None, .. } => approving(execution_id),
            // The stop of a deployment past its deadline is what ended its run: it still goes out. So does its
            // rolling update's rollback, until another run deploys the service (the rollback would undo that).
            Effect::StopDeployment { execution_id, .. } if timed_out(execution_id) => true,
            Effect::RollBack { execution_id, .. } if timed_out(execution_id) => deploy_free,
            // A pause's request, and its answer, matter while the deployment runs.
            Effect::RequestApproval { execution_id, hook_id: Some(_), .. }
            | Effect::ContinueDeployment { execution_id, .. }
            | Effect::StopDeployment { execution_id, .. }
            | Effect::StartDeployment { execution_id, .. }
            | Effect::RunChecks { execution_id, .. }
            | Effect::RollBack { execution_id, .. } => deploying(execution_id),
            // CodeDeploy waits for no hook of a deployment that has ended.
            Effect::ReportHookStatus { execution_id, deployment_id, .. } => !executions.iter().any(|execution| {
                &execution.id == execution_id
                    && execution.stages.iter().filter_map(|record| record.deploy.as_ref()).any(|deploy| {
                        deploy.finished_at.is_some() && deploy.deployment_id.as_deref() == Some(deployment_id)
                    })
            }),
            _ => true,
        });
        // A GitHub report shows its run as the run stands when it is carried out: of a run's reports not under way,
        // the newest is enough.
        let mut reported: Vec<ExecutionId> = Vec::new();
        let mut keep: Vec<bool> = vec![true; self.pending.len()];
        for (i, pending) in self.pending.iter().enumerate().rev() {
            if let Effect::ReportToGitHub { execution_id } = &pending.effect
                && pending.lease.is_none()
            {
                if reported.contains(execution_id) {
                    keep[i] = false;
                } else {
                    reported.push(execution_id.clone());
                }
            }
        }
        let mut kept = keep.into_iter();
        self.pending.retain(|_| kept.next().unwrap_or(true));
        // The newest few notifications and reports wait for a notifier that is slow or missing (or a GitHub that
        // is down); older ones go.
        for (kind, most) in
            [(EffectKind::NotifyOutcome, MAX_PENDING_NOTICES), (EffectKind::ReportToGitHub, MAX_PENDING_REPORTS)]
        {
            let waiting = self.pending.iter().filter(|pending| pending.effect.kind() == kind).count();
            let mut excess = waiting.saturating_sub(most);
            self.pending.retain(|pending| {
                let drop = excess > 0 && pending.effect.kind() == kind;
                excess -= usize::from(drop);
                !drop
            });
        }
    }

    /// Puts a parked effect back in the outbox, with its attempts reset, to be carried out at once. False if no
    /// effect of that id is parked.
    pub fn unpark(&mut self, id: &str) -> bool {
        let Some(index) = self.parked.iter().position(|parked| parked.id == id) else { return false };
        let parked = self.parked.remove(index);
        self.pending
            .push(PendingEffect { last_error: Some(parked.error), ..PendingEffect::new(parked.id, parked.effect) });
        true
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::definitions::ExecutionMode;
    use crate::pipeline::{ExecutionId, HookStatus};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).single().expect("valid date")
    }

    fn build(execution: &str) -> Effect {
        Effect::StartBuild {
            execution_id: ExecutionId::from(execution),
            project: "web-build".into(),
            source_version: "abc".into(),
            environment: Default::default(),
            stage: None,
            timeout_minutes: None,
        }
    }

    fn hook() -> Effect {
        Effect::ReportHookStatus {
            execution_id: ExecutionId::from("e1"),
            deployment_id: "d-1".into(),
            hook_execution_id: "h-1".into(),
            status: HookStatus::Succeeded,
        }
    }

    fn outbox(effects: Vec<Effect>) -> PipelineState {
        let mut state = PipelineState::new("web", ExecutionMode::Superseded);
        state.enqueue(effects, 3);
        state
    }

    #[test]
    fn enqueued_effects_get_ids_never_used_before_even_after_others_are_done() {
        let mut state = outbox(vec![build("e1"), hook()]);
        assert!(state.complete("web-3-1"));
        state.enqueue(vec![build("e2")], 3);
        let ids: Vec<&str> = state.pending.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["web-3-0", "web-3-2"]);
    }

    #[test]
    fn a_function_claims_only_the_kinds_it_owns() {
        // GIVEN a build and a hook report pending
        let mut state = outbox(vec![build("e1"), hook()]);
        // WHEN a function that starts builds claims its effects
        let claimed = state.claim("webhook-1", &[EffectKind::StartBuild, EffectKind::Publish], now());
        // THEN it gets the build, leased to it, and the hook report is left for the hook function
        assert_eq!(claimed.iter().map(|p| p.effect.kind()).collect::<Vec<_>>(), [EffectKind::StartBuild]);
        assert_eq!(state.pending[0].lease.as_ref().map(|l| l.owner.as_str()), Some("webhook-1"));
        assert!(state.pending[1].lease.is_none());
        assert_eq!(state.due(&[EffectKind::ReportHookStatus], now()).count(), 1);
    }

    #[test]
    fn effects_due_elsewhere_are_grouped_by_execution_once_free_and_never_the_callers_own() {
        // GIVEN e1's build and e2's build, e2's leased to a live owner, and e1's retried after a failure
        let mut state = outbox(vec![build("e1"), build("e2"), build("e1"), hook()]);
        state.claim("a", &[EffectKind::StartBuild], now());
        state.pending[0].lease = None;
        state.pending[2].lease = None;
        state.pending[2].not_before = Some(now() + TimeDelta::minutes(1));
        // THEN the function owning builds is never told about its own
        assert!(state.due_elsewhere(&[EffectKind::StartBuild, EffectKind::ReportHookStatus], now()).is_empty());
        // AND another is told of e1 alone (e2's is held), each kind once: its build and its hook report
        let elsewhere = state.due_elsewhere(&[EffectKind::Publish], now() + TimeDelta::minutes(1));
        assert_eq!(elsewhere, [(ExecutionId::from("e1"), vec![EffectKind::StartBuild, EffectKind::ReportHookStatus])]);
        // AND once e2's lease runs out, e2's build is due too
        let later = state.due_elsewhere(&[EffectKind::Publish], now() + LEASE);
        let executions: Vec<&str> = later.iter().map(|(id, _)| id.0.as_str()).collect();
        assert_eq!(executions, ["e1", "e2"]);
    }

    #[test]
    fn a_leased_effect_is_not_due_for_anyone_else_until_the_lease_runs_out() {
        let mut state = outbox(vec![build("e1")]);
        state.claim("a", &[EffectKind::StartBuild], now());
        assert!(state.claim("b", &[EffectKind::StartBuild], now() + LEASE - TimeDelta::seconds(1)).is_empty());
        let taken_over = state.claim("b", &[EffectKind::StartBuild], now() + LEASE);
        assert_eq!(taken_over.len(), 1, "a crashed owner's effect is taken over once its lease expires");
        assert_eq!(state.pending[0].lease.as_ref().map(|l| l.owner.as_str()), Some("b"));
    }

    #[test]
    fn after_rollout_checks_keep_their_lease_for_as_long_as_the_hooks_function_may_run_them() {
        let checks = Effect::RunChecks {
            execution_id: ExecutionId::from("e1"),
            deployment_id: "ecs-svc/1".into(),
            lifecycle_event: "AfterRollout".into(),
            stage: crate::pipeline::Stage::DEPLOY,
            checks: Vec::new(),
        };
        let mut state = outbox(vec![checks, hook()]);
        let kinds = [EffectKind::RunChecks, EffectKind::ReportHookStatus];
        state.claim("hooks-1", &kinds, now());
        let until: Vec<_> = state.pending.iter().map(|p| p.lease.as_ref().map(|l| l.until)).collect();
        assert_eq!(until, [Some(now() + CHECKS_LEASE), Some(now() + LEASE)]);
        assert!(CHECKS_LEASE > TimeDelta::seconds(300), "longer than the hooks function's timeout");
        assert!(state.claim("hooks-2", &kinds, now() + LEASE).len() == 1, "only the hook answer is taken over");
    }

    #[test]
    fn a_failed_effect_waits_longer_after_each_attempt_then_is_parked() {
        let mut state = outbox(vec![build("e1")]);
        let mut waits = Vec::new();
        let mut at = now();
        for _ in 1..MAX_ATTEMPTS {
            state.claim("a", &[EffectKind::StartBuild], at);
            match state.fail("web-3-0", "CodeBuild is throttling", false, at) {
                Retry::Later(next) => {
                    assert!(state.claim("a", &[EffectKind::StartBuild], next - TimeDelta::seconds(1)).is_empty());
                    waits.push((next - at).num_seconds());
                    at = next;
                }
                other => panic!("expected a retry, got {other:?}"),
            }
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(waits.iter().all(|&w| w <= MAX_BACKOFF.num_seconds()), "{waits:?}");
        assert_eq!(state.fail("web-3-0", "still throttling", false, at), Retry::Parked { attempts: MAX_ATTEMPTS });
        assert!(state.pending.is_empty(), "a parked effect no longer blocks the outbox");
        assert_eq!(state.parked[0].error, "still throttling");
        assert_eq!(state.parked[0].attempts, MAX_ATTEMPTS);
    }

    #[test]
    fn a_permanent_failure_parks_at_once_and_an_operator_can_put_it_back() {
        let mut state = outbox(vec![build("e1"), build("e2")]);
        assert_eq!(
            state.fail("web-3-0", "AccessDeniedException: not allowed", true, now()),
            Retry::Parked { attempts: 1 }
        );
        assert_eq!(state.due(&[EffectKind::StartBuild], now()).count(), 1, "the next effect is due");
        assert!(state.unpark("web-3-0"));
        assert!(!state.unpark("web-3-0"), "once");
        let due: Vec<&str> = state.due(&[EffectKind::StartBuild], now()).map(|p| p.id.as_str()).collect();
        assert_eq!(due, ["web-3-1", "web-3-0"]);
        assert_eq!(state.pending[1].attempts, 0);
    }

    #[test]
    fn completing_or_failing_an_effect_someone_else_finished_changes_nothing() {
        let mut state = outbox(vec![build("e1")]);
        assert!(state.complete("web-3-0"));
        let before = state.clone();
        assert!(!state.complete("web-3-0"));
        assert_eq!(state.fail("web-3-0", "late", false, now()), Retry::Gone);
        assert_eq!(state, before);
    }

    #[test]
    fn a_start_build_whose_build_the_run_already_claimed_is_dropped() {
        // GIVEN e1 is building, and its StartBuild's answer was never saved (it waits in the outbox to be tried again)
        let state = PipelineState::new("web", ExecutionMode::Superseded);
        let push = crate::contract::testing::push("e1", ExecutionMode::Superseded, true);
        let Ok(crate::pipeline::Decision::Apply { state, effects }) = crate::pipeline::transition(&state, &push, now())
        else {
            panic!("the push applies")
        };
        let mut state = state;
        state.enqueue(effects, 1);
        state.drop_moot();
        assert!(state.pending.iter().any(|p| p.effect.kind() == EffectKind::StartBuild), "still to start");
        // WHEN CodeBuild's own event ties build b-1 to the run
        let progressed = crate::pipeline::Event::BuildProgressed {
            execution_id: ExecutionId::from("e1"),
            build_id: "b-1".into(),
            phase: Some("PROVISIONING".into()),
        };
        let Ok(crate::pipeline::Decision::Apply { state: mut next, .. }) =
            crate::pipeline::transition(&state, &progressed, now())
        else {
            panic!("the build event applies")
        };
        next.drop_moot();
        // THEN the StartBuild is dropped: retried after CodeBuild's idempotency window, it would start a second build
        assert!(!next.pending.iter().any(|p| p.effect.kind() == EffectKind::StartBuild), "{:?}", next.pending);
    }

    #[test]
    fn a_stage_effect_of_a_run_that_left_its_stage_is_dropped_and_announcements_are_kept() {
        // GIVEN e1 was asked for approval, then ended, and its request still waits for the approval function
        let mut state = PipelineState::new("web", ExecutionMode::Superseded);
        let (state_after, _) = match crate::pipeline::transition(
            &state,
            &crate::contract::testing::push("e1", ExecutionMode::Superseded, true),
            now(),
        ) {
            Ok(crate::pipeline::Decision::Apply { state, effects }) => (state, effects),
            other => panic!("{other:?}"),
        };
        state = state_after;
        let request = Effect::RequestApproval {
            execution_id: ExecutionId::from("e1"),
            topic_arn: "arn:aws:sns:eu-west-1:123456789012:approvals".into(),
            expires_at: now(),
            notice: Box::default(),
            hook_id: None,
            release: None,
            approvers: Vec::new(),
        };
        state.enqueue(vec![request, hook()], 2);
        // WHEN the outbox is tidied: e1 is building, not waiting for a person
        state.drop_moot();
        // THEN the request is gone and the hook answer stays
        let kinds: Vec<EffectKind> = state.pending.iter().map(|p| p.effect.kind()).collect();
        assert_eq!(kinds, [EffectKind::ReportHookStatus]);
        // AND once e1's deployment d-1 has ended, its hook answer is dropped too (CodeDeploy waits for it no more)
        let execution = &mut state.executions[0];
        execution.set_deploy(crate::pipeline::DeployFacts {
            deployment_id: Some("d-1".into()),
            ..crate::pipeline::DeployFacts::new("blue_green", now())
        });
        state.drop_moot();
        assert_eq!(state.pending.len(), 1, "a deployment still going keeps its hook answers");
        if let Some(deploy) = state.executions[0].deploy_mut() {
            deploy.finished_at = Some(now());
        }
        state.drop_moot();
        assert!(state.pending.is_empty());
    }

    #[test]
    fn the_parked_list_keeps_only_the_newest() {
        let effects = (0..MAX_PARKED + 2).map(|i| build(&format!("e{i}"))).collect();
        let mut state = outbox(effects);
        for i in 0..MAX_PARKED + 2 {
            state.fail(&format!("web-3-{i}"), "denied", true, now());
        }
        assert_eq!(state.parked.len(), MAX_PARKED);
        assert_eq!(state.parked[0].id, "web-3-2");
    }

    #[test]
    fn a_long_error_is_cut_at_a_character_boundary() {
        let mut state = outbox(vec![build("e1")]);
        state.fail("web-3-0", &"é".repeat(MAX_ERROR), false, now());
        let error = state.pending[0].last_error.as_deref().unwrap_or_default();
        assert!(error.len() <= MAX_ERROR && error.ends_with('…'), "{}", error.len());
    }

    #[test]
    fn of_a_runs_github_reports_only_the_newest_waits_unless_one_is_under_way_and_at_most_ten_runs_wait() {
        let report = |execution: &str| Effect::ReportToGitHub { execution_id: ExecutionId::from(execution) };
        let mut state = outbox(vec![report("e1"), report("e2"), report("e1")]);
        state.pending[0].lease = Some(Lease { owner: "notifier".into(), until: now() });
        state.drop_moot();
        let ids: Vec<&str> = state.pending.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["web-3-0", "web-3-1", "web-3-2"], "the one under way stays; e1's newest stays");
        state.pending[0].lease = None;
        state.drop_moot();
        let ids: Vec<&str> = state.pending.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["web-3-1", "web-3-2"], "e1's older report is moot");

        let mut state = outbox((0..MAX_PENDING_REPORTS + 3).map(|i| report(&format!("e{i}"))).collect());
        state.drop_moot();
        assert_eq!(state.pending.len(), MAX_PENDING_REPORTS);
        assert_eq!(state.pending[0].effect.execution_id(), Some(&ExecutionId::from("e3")), "the oldest go");
    }
}
