//! The build stage's events: CodeBuild started, progressed, succeeded or failed the run's build.

use std::collections::BTreeMap;

use super::{Applied, IgnoreReason, Run};
use crate::pipeline::event::{BuildFailure, BuildOutputs, Effect};
use crate::pipeline::state::{Stage, Status};

impl Run {
    /// Run `i` enters its build: CodeBuild is asked to build the pushed commit.
    pub(super) fn start_build(&mut self, i: usize) {
        let execution = &self.state.executions[i];
        let build = &execution.plan.build;
        let mut environment: BTreeMap<String, String> = build.environment.clone();
        environment.insert("SLUICE_EXECUTION_ID".to_owned(), execution.id.0.clone());
        environment.insert("SLUICE_PIPELINE".to_owned(), execution.pipeline.clone());
        self.effects.push(Effect::StartBuild {
            execution_id: execution.id.clone(),
            project: build.project.clone(),
            source_version: execution.source.commit.clone(),
            environment,
            stage: None,
            timeout_minutes: None,
        });
        self.state.executions[i].build = None;
        self.build_mut(i);
    }

    /// CodeBuild started the run's build: its id is claimed.
    pub(super) fn build_started(&mut self, i: usize, name: &'static str, build_id: &str) -> Applied {
        if !self.state.executions[i].in_build() {
            return self.past(i, Stage::BUILD, self.same_build(i, build_id), name);
        }
        if self.claim_build(i, build_id)? { Ok(None) } else { Ok(Some(IgnoreReason::DuplicateEvent)) }
    }

    /// CodeBuild would not start the run's build: the run fails, saying why.
    pub(super) fn build_start_failed(&mut self, i: usize, name: &'static str, reason: &str) -> Applied {
        let started = self.build(i).and_then(|build| build.build_id.as_ref()).is_some();
        if !self.state.executions[i].in_build() || started {
            return self.past(i, Stage::BUILD, true, name);
        }
        self.finish(i, Status::Failed, Some(format!("the build could not start: {reason}")));
        Ok(None)
    }

    /// CodeBuild reports a phase of the run's build.
    pub(super) fn build_progressed(
        &mut self,
        i: usize,
        name: &'static str,
        build_id: &str,
        phase: &Option<String>,
    ) -> Applied {
        if !self.state.executions[i].in_build() {
            return self.past(i, Stage::BUILD, self.same_build(i, build_id), name);
        }
        let claimed = self.claim_build(i, build_id)?;
        let build = self.build_mut(i);
        if !claimed && (phase.is_none() || build.phase == *phase) {
            return Ok(Some(IgnoreReason::DuplicateEvent));
        }
        if phase.is_some() {
            build.phase.clone_from(phase);
        }
        Ok(None)
    }

    /// The run's build succeeded: its image and artifacts are recorded and the run moves on.
    pub(super) fn build_succeeded(
        &mut self,
        i: usize,
        name: &'static str,
        build_id: &str,
        outputs: &BuildOutputs,
    ) -> Applied {
        if let Some(answer) = self.build_ends(i, name, build_id) {
            return answer;
        }
        let build = self.build_mut(i);
        build.image_uri = Some(outputs.image_uri.clone());
        build.artifacts.clone_from(&outputs.artifacts);
        self.advance(i, Stage::BUILD);
        Ok(None)
    }

    /// Build `build_id` of the run ended: `None` once it is recorded as the run's build, finished now; otherwise the
    /// answer to give (the run is past its build, or another build is the run's).
    fn build_ends(&mut self, i: usize, name: &'static str, build_id: &str) -> Option<Applied> {
        if !self.state.executions[i].in_build() {
            return Some(self.past(i, Stage::BUILD, self.same_build(i, build_id), name));
        }
        if let Err(refused) = self.claim_build(i, build_id) {
            return Some(Err(refused));
        }
        let now = self.now;
        self.build_mut(i).finished_at = Some(now);
        None
    }

    /// The run's build failed or timed out: the run ends so.
    pub(super) fn build_failed(
        &mut self,
        i: usize,
        name: &'static str,
        build_id: &str,
        failure: BuildFailure,
        (phase, reason): (&Option<String>, &str),
    ) -> Applied {
        if let Some(answer) = self.build_ends(i, name, build_id) {
            return answer;
        }
        if phase.is_some() {
            self.build_mut(i).phase.clone_from(phase);
        }
        let outcome = if failure == BuildFailure::TimedOut { Status::TimedOut } else { Status::Failed };
        self.finish(i, outcome, Some(reason.to_owned()));
        Ok(None)
    }
}
