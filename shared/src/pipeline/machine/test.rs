//! The test stage's events: CodeBuild started the stage's test build (or would not), and the build ended, with its
//! test reports' results. A build that succeeds with failed test cases fails the stage.

use std::collections::BTreeMap;

use super::{Applied, IgnoreReason, MAX_HOOK_DETAIL, Run, TransitionError};
use crate::contract::events::{SluiceEvent, TestRequested};
use crate::definitions::{Approval, OnFailure, TestRun, TestStage};
use crate::pipeline::event::Effect;
use crate::pipeline::event::{ApprovalNotice, Event};
use crate::pipeline::state::ApprovalFacts;
use crate::pipeline::state::{Execution, Stage, StageRecord, Status, bounded};
use crate::pipeline::tested::{TestFacts, TestResults};

/// What a `TestEnded` event says.
struct TestDone<'a> {
    pub build_id: Option<&'a str>,
    pub passed: bool,
    pub reason: Option<&'a str>,
    pub results: Option<&'a TestResults>,
    pub detail: Option<&'a str>,
}

impl Run {
    /// Run `i` enters test stage `stage`: CodeBuild is asked to run the stage's project on the run's commit, told
    /// what it tests (the run, the release and where it was deployed last), or the hooks function to run the stage's
    /// checks. `Test Requested` announces it, and is the doorbell of the function that does it.
    pub(super) fn start_test(&mut self, i: usize, stage: Stage, test: &TestStage) {
        let execution = &self.state.executions[i];
        let (tests, project) = match &test.run {
            TestRun::CodeBuild(project) => ("codebuild", Some(project.clone())),
            TestRun::Checks(_) => ("checks", None),
        };
        self.effects.push(Effect::Publish(SluiceEvent::TestRequested(TestRequested {
            pipeline: execution.pipeline.clone(),
            execution_id: execution.id.clone(),
            stage,
            tests: tests.to_owned(),
            project: project.clone(),
            checks: test.checks().len(),
            commit: execution.source.commit.clone(),
            image_uri: execution.build.as_ref().and_then(|build| build.image_uri.clone()),
        })));
        self.effects.push(match &test.run {
            TestRun::CodeBuild(project) => Effect::StartBuild {
                execution_id: execution.id.clone(),
                project: project.clone(),
                source_version: execution.source.commit.clone(),
                environment: test_environment(execution, stage),
                stage: Some(stage),
                timeout_minutes: test.timeout_minutes,
            },
            TestRun::Checks(checks) => Effect::RunTestChecks {
                execution_id: execution.id.clone(),
                stage,
                checks: checks.iter().map(|check| execution.for_release(check)).collect(),
            },
        });
        let facts = TestFacts {
            project: project.unwrap_or_default(),
            checks: test.checks().len(),
            build_id: None,
            started_at: self.now,
            finished_at: None,
            passed: None,
            reason: None,
            results: None,
            detail: None,
        };
        self.state.executions[i].stages.push(StageRecord { test: Some(facts), ..StageRecord::new(stage) });
        self.show_on_github(i);
    }

    /// An event about a test stage's build or checks.
    pub(super) fn test_event(&mut self, i: usize, name: &'static str, event: &Event) -> Applied {
        match event {
            Event::TestStarted { stage, build_id, .. } => self.test_started(i, name, *stage, build_id),
            Event::TestStartFailed { stage, reason, .. } => self.test_start_failed(i, name, *stage, reason),
            Event::TestEnded { stage, build_id, passed, reason, results, detail, .. } => {
                let done = TestDone {
                    build_id: build_id.as_deref(),
                    passed: *passed,
                    reason: reason.as_deref(),
                    results: results.as_ref(),
                    detail: detail.as_deref(),
                };
                self.test_ended(i, name, *stage, &done)
            }
            _ => Ok(Some(IgnoreReason::AlreadyPastStage)),
        }
    }

    /// CodeBuild started the test build of `stage`: its id is claimed.
    fn test_started(&mut self, i: usize, name: &'static str, stage: Stage, build_id: &str) -> Applied {
        let same =
            self.test_facts(i, stage).is_some_and(|facts| facts.build_id.as_deref().is_none_or(|id| id == build_id));
        if let Some(answer) = self.judged(i, stage, same, name) {
            return answer;
        }
        if self.claim_test_build(i, stage, build_id)? { Ok(None) } else { Ok(Some(IgnoreReason::DuplicateEvent)) }
    }

    /// CodeBuild would not start the test build: the run fails at the stage, saying why (no approver is asked to
    /// overlook tests that never ran).
    fn test_start_failed(&mut self, i: usize, name: &'static str, stage: Stage, reason: &str) -> Applied {
        if let Some(answer) = self.judged(i, stage, true, name) {
            return answer;
        }
        if self.test_facts(i, stage).is_some_and(|facts| facts.build_id.is_some()) {
            // A retried start whose first attempt CodeBuild took: the build is under way.
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        let reason = format!("the tests could not start: {reason}");
        let done = TestDone { build_id: None, passed: false, reason: Some(&reason), results: None, detail: None };
        self.record_test(i, stage, &done);
        let why = self.state.executions[i].failed_test().map(|(_, why)| why).unwrap_or(reason);
        self.finish(i, Status::Failed, Some(format!("in {stage}: {why}")));
        Ok(None)
    }

    /// The answer to an event about test stage `stage` that run `i` does not test now: it has left the stage, or its
    /// tests there were judged already (the run may still hold the stage, asking whether to overlook a failure); a
    /// duplicate where `same` says the event is about what it recorded.
    fn judged(&self, i: usize, stage: Stage, same: bool, name: &'static str) -> Option<Applied> {
        let judged = self.test_facts(i, stage).is_some_and(|facts| facts.finished_at.is_some());
        if self.testing(i, stage) && !judged {
            return None;
        }
        if judged && same && self.state.executions[i].at() == Some(stage) {
            return Some(Ok(Some(IgnoreReason::DuplicateEvent)));
        }
        Some(self.past(i, stage, same, name))
    }

    /// The test build of `stage` ended, or its checks ran: the run moves on if the release passed, and fails at the
    /// stage otherwise.
    fn test_ended(&mut self, i: usize, name: &'static str, stage: Stage, done: &TestDone<'_>) -> Applied {
        let recorded = self.test_facts(i, stage).map(|facts| facts.build_id.as_deref());
        let same = recorded.is_some_and(|id| match (id, done.build_id) {
            (Some(id), Some(build_id)) => id == build_id,
            _ => true,
        });
        if let Some(answer) = self.judged(i, stage, same, name) {
            return answer;
        }
        if let Some(build_id) = done.build_id {
            self.claim_test_build(i, stage, build_id)?;
        }
        self.end_test(i, stage, done);
        Ok(None)
    }

    /// Records how the test build ended (or the checks ran), and moves the run on, asks whether to overlook a
    /// failure, or ends the run.
    fn end_test(&mut self, i: usize, stage: Stage, done: &TestDone<'_>) {
        if self.record_test(i, stage, done) {
            self.stage_done(i);
            return;
        }
        let planned = self.state.executions[i].plan.stage(stage).and_then(|planned| planned.test());
        if let Some(OnFailure::Ask(approval)) = planned.map(|test| test.on_failure.clone()) {
            self.ask_to_go_on(i, stage, &approval);
            return;
        }
        let why = self.state.executions[i].failed_test().map(|(_, why)| why).unwrap_or_default();
        self.finish(i, Status::Failed, Some(format!("in {stage}: {why}")));
    }

    /// Records how the test build ended (or the checks ran) on the stage's record: whether the release passed.
    fn record_test(&mut self, i: usize, stage: Stage, done: &TestDone<'_>) -> bool {
        let now = self.now;
        let results = done.results.cloned().map(TestResults::bounded);
        let passed = done.passed && !results.as_ref().is_some_and(TestResults::any_failed);
        let detail = done.detail.map(|detail| bounded(detail, MAX_HOOK_DETAIL));
        let reason = match (passed, done.reason, &results, &detail) {
            (true, ..) => None,
            (false, Some(reason), ..) => Some(bounded(reason, crate::pipeline::MAX_REASON)),
            (false, None, Some(results), _) => Some(format!("{} test cases failed", results.failed + results.errors)),
            (false, None, None, Some(detail)) => Some(format!("the checks failed ({detail})")),
            (false, None, None, None) => Some("the tests failed".to_owned()),
        };
        if let Some(facts) = self.test_facts_mut(i, stage) {
            facts.finished_at = Some(now);
            facts.passed = Some(passed);
            facts.reason.clone_from(&reason);
            facts.results.clone_from(&results);
            facts.detail = detail;
            if facts.build_id.is_none() {
                facts.build_id = done.build_id.map(str::to_owned);
            }
        }
        self.touch(i);
        passed
    }

    /// The release failed test stage `stage`, which asks the pipeline's approvers whether it goes on all the same:
    /// the request shows what failed, and the run holds the stage until they decide.
    fn ask_to_go_on(&mut self, i: usize, stage: Stage, approval: &Approval) {
        let now = self.now;
        let expires_at = super::approval::expiry(now, approval);
        let facts = ApprovalFacts {
            topic_arn: approval.topic_arn.clone(),
            requested_at: now,
            expires_at,
            ..Default::default()
        };
        if let Some(record) = self.state.executions[i].stages.iter_mut().rev().find(|record| record.name == stage) {
            record.approval = Some(facts);
        }
        let execution = &self.state.executions[i];
        let notice = ApprovalNotice::of(execution, now);
        let release = super::approval::release_lookup(execution);
        self.ask(i, (&approval.topic_arn, approval.approvers.as_ref()), expires_at, notice, None, release);
    }

    /// Whether run `i` holds test stage `stage`.
    fn testing(&self, i: usize, stage: Stage) -> bool {
        let execution = &self.state.executions[i];
        execution.status == Status::Running(stage) && execution.plan.stage(stage).is_some_and(|s| s.test().is_some())
    }

    fn test_facts(&self, i: usize, stage: Stage) -> Option<&TestFacts> {
        self.state.executions[i].record(stage)?.test.as_ref()
    }

    fn test_facts_mut(&mut self, i: usize, stage: Stage) -> Option<&mut TestFacts> {
        let record = self.state.executions[i].stages.iter_mut().rev().find(|record| record.name == stage)?;
        record.test.as_mut()
    }

    /// Records the test build's id if none is yet; true if it was new. Refuses a build sluice did not start.
    fn claim_test_build(&mut self, i: usize, stage: Stage, build_id: &str) -> Result<bool, TransitionError> {
        let execution = self.state.executions[i].id.clone();
        let Some(facts) = self.test_facts_mut(i, stage) else { return Ok(false) };
        match &facts.build_id {
            None => {
                facts.build_id = Some(build_id.to_owned());
                self.touch(i);
                Ok(true)
            }
            Some(known) if known == build_id => Ok(false),
            Some(known) => {
                Err(TransitionError::ForeignBuild { execution, expected: known.clone(), got: build_id.to_owned() })
            }
        }
    }
}

/// The variables a test build is started with: the pipeline's run and stage, the release it tests, and the deploy
/// stage that deployed it last (with its GitHub environment, or its name).
fn test_environment(execution: &Execution, stage: Stage) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    let mut set = |name: &str, value: &str| environment.insert(name.to_owned(), value.to_owned());
    set("SLUICE_EXECUTION_ID", &execution.id.0);
    set("SLUICE_PIPELINE", &execution.pipeline);
    set("SLUICE_STAGE", stage.as_str());
    set("SLUICE_COMMIT", &execution.source.commit);
    if let Some(image) = execution.build.as_ref().and_then(|build| build.image_uri.as_deref()) {
        set("SLUICE_IMAGE", image);
        if let Some((_, digest)) = image.split_once('@') {
            set("SLUICE_IMAGE_DIGEST", digest);
        }
    }
    let before = execution.plan.position(stage).saturating_sub(1);
    let deployed = execution.plan.stages.iter().take(before).rev().find(|planned| planned.deploy().is_some());
    if let Some(deployed) = deployed {
        set("SLUICE_DEPLOYED_STAGE", deployed.name.as_str());
        let environment = execution.plan.environment(deployed.name).unwrap_or_else(|| deployed.name.to_string());
        set("SLUICE_ENVIRONMENT", &environment);
    }
    environment
}
