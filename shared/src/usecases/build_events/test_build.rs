//! A test stage's build state change: the build started, or it ended and its test reports say how the release did.

use crate::contract::ports::{PipelineStore, ReportError, TestReports};
use crate::pipeline::{Event, ExecutionId, Stage};
use crate::runtime::telemetry::Chain;
use crate::usecases::HandleError;

use super::{BuildEventError, BuildStateChange};

/// The event a test build's state change makes, if its status is one sluice acts on. A build that ended is judged
/// by its status and its test reports (read once: a late or repeated end of a test already judged is answered with
/// what the run recorded).
pub(super) async fn event<S: PipelineStore, T: TestReports>(
    store: &S,
    reports: &T,
    (execution_id, stage): (&ExecutionId, Stage),
    change: &BuildStateChange,
) -> Result<Option<Event>, BuildEventError> {
    let (execution_id, build_id) = (execution_id.clone(), change.build_id.clone());
    let phase = change.failed_phase.as_deref().or(change.current_phase.as_deref());
    let in_phase = phase.map(|phase| format!(" in phase {phase}")).unwrap_or_default();
    let ended = match change.status.as_str() {
        "IN_PROGRESS" => return Ok(Some(Event::TestStarted { execution_id, stage, build_id })),
        "SUCCEEDED" => None,
        "FAILED" | "FAULT" => Some(format!("the test build failed{in_phase}")),
        "STOPPED" => Some(format!("the test build was stopped{in_phase}")),
        "TIMED_OUT" => Some(format!("the test build timed out{in_phase}")),
        _ => return Ok(None),
    };
    let run = store.execution(&execution_id).await.map_err(HandleError::from)?;
    let recorded = run.as_ref().and_then(|run| run.record(stage)).and_then(|record| record.test.as_ref());
    if let Some(judged) = recorded.filter(|facts| facts.finished_at.is_some()) {
        return Ok(Some(Event::TestEnded {
            execution_id,
            stage,
            build_id: Some(build_id),
            passed: judged.passed.unwrap_or(false),
            reason: judged.reason.clone(),
            results: judged.results.clone(),
            detail: None,
        }));
    }
    let (results, unread) = match reports.test_results(&change.build_id).await {
        Ok(results) => (results, None),
        Err(ReportError::Refused { message, .. }) => (
            None,
            Some(format!(
                "its test reports could not be read ({message}): sluice needs codebuild:BatchGetReports and \
                 codebuild:DescribeTestCases on the project's report groups"
            )),
        ),
        Err(unmade @ ReportError::Unmade { .. }) => (None, Some(unmade.to_string())),
        Err(source) => {
            tracing::warn!(error = %Chain(&source), build = %change.build_id, "test reports not read");
            return Err(BuildEventError::Reports { build_id: change.build_id.clone(), source });
        }
    };
    let reason = match (ended, unread) {
        (Some(ended), Some(unread)) => Some(format!("{ended}; {unread}")),
        (None, Some(unread)) => Some(format!("the test build succeeded, but {unread}")),
        (ended, None) => ended,
    };
    let passed = reason.is_none() && !results.as_ref().is_some_and(|results| results.any_failed());
    Ok(Some(Event::TestEnded { execution_id, stage, build_id: Some(build_id), passed, reason, results, detail: None }))
}
