//! A run's timeline: what happened to it, when, stage by stage, read from its record alone. What `make demo` prints
//! for its run and the operator's view of a run are this. Pure.

use chrono::{DateTime, Utc};

use crate::definitions::percent;
use crate::outcome::span;
use crate::pipeline::{ApprovalFacts, Execution, Status};

/// One thing that happened to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    pub at: DateTime<Utc>,
    /// `source`, `build`, `approval`, `deploy` or `end`.
    pub stage: &'static str,
    pub what: String,
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

fn decided(facts: &ApprovalFacts) -> Option<(DateTime<Utc>, String)> {
    let (decision, at) = (facts.decision?, facts.decided_at?);
    let by = facts.approver.as_deref().unwrap_or("someone");
    let comment = facts.comment.as_deref().filter(|c| !c.is_empty()).map(|c| format!(": \"{c}\"")).unwrap_or_default();
    Some((at, format!("{} by {by}{comment}", decision.name())))
}

/// Everything `run` records, oldest first (moments at the same time keep the order of the stages).
pub fn timeline(run: &Execution) -> Vec<Moment> {
    let mut moments = Vec::new();
    let mut add = |at: DateTime<Utc>, stage: &'static str, what: String| moments.push(Moment { at, stage, what });
    let source = &run.source;
    add(
        run.created_at,
        "source",
        format!(
            "push of {} to {} by {} recorded as run #{}",
            short(&source.commit),
            source.git_ref,
            source.pusher,
            run.seq
        ),
    );
    if let Some(build) = &run.build {
        let id = build.build_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
        add(build.started_at, "build", format!("CodeBuild project {} started{id}", build.project));
        if let Some(end) = build.finished_at {
            let took = span(end - build.started_at);
            match &build.image_uri {
                Some(image) => add(end, "build", format!("built {image} in {took}")),
                None => add(end, "build", format!("build ended after {took}")),
            }
        }
    }
    if let Some(approval) = &run.approval {
        add(
            approval.requested_at,
            "approval",
            format!("approval requested (expires {})", approval.expires_at.format("%Y-%m-%d %H:%M UTC")),
        );
        if let Some(sent) = approval.sent_at {
            add(sent, "approval", format!("approval request mailed to {}", approval.topic_arn));
        }
        if let Some((at, what)) = decided(approval) {
            add(at, "approval", what);
        }
    }
    if let Some(deploy) = &run.deploy {
        let id = deploy.service_deployment.as_deref().or(deploy.deployment_id.as_deref());
        let id = id.map(|id| format!(" {id}")).unwrap_or_default();
        add(deploy.started_at, "deploy", format!("{} deployment{id} started", deploy.strategy));
        for hook in &deploy.hooks {
            let verdict = if hook.passed { "passed" } else { "failed" };
            let detail = hook.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            add(hook.at, "deploy", format!("{} checks {verdict}{detail}", hook.lifecycle_event));
        }
        for pause in &deploy.pauses {
            let moved = percent(pause.shifted_tenths);
            match &pause.approval {
                Some(approval) => {
                    add(
                        approval.requested_at,
                        "deploy",
                        format!("paused at {} ({moved} of production moved); approval requested", pause.stage),
                    );
                    if let Some((at, what)) = decided(approval) {
                        add(at, "deploy", format!("pause at {} {what}", pause.stage));
                    }
                }
                None => add(
                    deploy.started_at,
                    "deploy",
                    format!("paused at {} before any traffic moved; continued", pause.stage),
                ),
            }
        }
        if let Some(at) = deploy.rolled_out_at {
            add(at, "deploy", "rollout completed".to_owned());
        }
        if let Some(ordered) = &deploy.rollback_ordered {
            add(ordered.at, "deploy", format!("rollback ordered by {}", ordered.by));
        }
    }
    if let Some(end) = run.finished_at.filter(|_| run.status.is_finished()) {
        let took = span(end - run.created_at);
        let reason = run.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        let outcome = if run.status == Status::Succeeded { "succeeded".to_owned() } else { run.status.to_string() };
        add(end, "end", format!("{outcome} after {took}{reason}"));
    }
    moments.sort_by_key(|moment| moment.at);
    moments
}

/// The timeline as a person reads it, a line each: the time of day (UTC), the time since the push, the stage (on
/// its first line), what happened.
pub fn lines(run: &Execution) -> Vec<String> {
    let mut last = "";
    timeline(run)
        .into_iter()
        .map(|moment| {
            let stage = if moment.stage == last { "" } else { moment.stage };
            last = moment.stage;
            let since = format!("+{}", span(moment.at - run.created_at));
            format!("{} {since:<9} {stage:<9} {}", moment.at.format("%H:%M:%S"), moment.what)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::ExecutionMode;
    use crate::pipeline::{ApprovalDecision, BuildFacts, Decision, DeployFacts, HookResult, PipelineState, transition};
    use crate::testing::push;
    use chrono::TimeDelta;

    fn at(seconds: i64) -> DateTime<Utc> {
        "2026-11-24T10:00:00Z".parse::<DateTime<Utc>>().expect("time") + TimeDelta::seconds(seconds)
    }

    /// Run #`seq` of pipeline web, just pushed (at 0).
    fn execution(seq: u64) -> Execution {
        let mut state = PipelineState::new("web", ExecutionMode::Superseded);
        state.next_seq = seq;
        match transition(&state, &push("web-1", ExecutionMode::Superseded, true), at(0)) {
            Ok(Decision::Apply { state, .. }) => state.executions[0].clone(),
            other => panic!("a push is applied: {other:?}"),
        }
    }

    #[test]
    fn a_shipped_run_reads_from_the_push_to_its_end_in_order_of_time() {
        let mut run = execution(3);
        run.build = Some(BuildFacts {
            project: "web-build".into(),
            build_id: Some("web-build:1".into()),
            phase: Some("COMPLETED".into()),
            image_uri: Some("web:9b2c5f0".into()),
            artifacts: None,
            started_at: at(1),
            finished_at: Some(at(91)),
        });
        run.approval = Some(ApprovalFacts {
            topic_arn: "arn:aws:sns:eu-west-1:1:approvals".into(),
            requested_at: at(92),
            expires_at: at(92 + 86_400),
            sent_at: Some(at(93)),
            decision: Some(ApprovalDecision::Approved),
            approver: Some("alice@example.com".into()),
            comment: Some("ship it".into()),
            decided_at: Some(at(300)),
            ..Default::default()
        });
        run.deploy = Some(DeployFacts {
            strategy: "blue_green".into(),
            deployment_id: Some("d-1".into()),
            service_deployment: None,
            task_definition: None,
            previous_task_definition: None,
            rolled_out_at: None,
            hooks: vec![HookResult {
                lifecycle_event: "AfterAllowTestTraffic".into(),
                hook_execution_id: "h".into(),
                passed: true,
                detail: Some("1/1 passed".into()),
                millis: Some(12),
                at: at(320),
            }],
            pauses: Vec::new(),
            rollback_ordered: None,
            started_at: at(301),
            finished_at: Some(at(400)),
        });
        run.status = Status::Succeeded;
        run.finished_at = Some(at(400));

        let moments = timeline(&run);
        let lines: Vec<String> = moments.iter().map(|m| format!("{} {}", m.stage, m.what)).collect();
        assert_eq!(
            lines,
            [
                format!(
                    "source push of {} to {} by {} recorded as run #3",
                    &run.source.commit[..7],
                    run.source.git_ref,
                    run.source.pusher
                ),
                "build CodeBuild project web-build started (web-build:1)".to_owned(),
                "build built web:9b2c5f0 in 1m 30s".to_owned(),
                "approval approval requested (expires 2026-11-25 10:01 UTC)".to_owned(),
                "approval approval request mailed to arn:aws:sns:eu-west-1:1:approvals".to_owned(),
                "approval approved by alice@example.com: \"ship it\"".to_owned(),
                "deploy blue_green deployment d-1 started".to_owned(),
                "deploy AfterAllowTestTraffic checks passed: 1/1 passed".to_owned(),
                "end succeeded after 6m 40s".to_owned(),
            ]
        );
        assert!(moments.windows(2).all(|pair| pair[0].at <= pair[1].at));

        let printed = super::lines(&run);
        assert_eq!(printed[1], "10:00:01 +1.0s     build     CodeBuild project web-build started (web-build:1)");
        assert_eq!(printed[2], "10:01:31 +1m 31s             built web:9b2c5f0 in 1m 30s");
        assert_eq!(printed.len(), moments.len());
    }

    #[test]
    fn a_run_still_going_has_no_end_and_a_failed_one_says_why() {
        let mut run = execution(1);
        assert!(timeline(&run).iter().all(|m| m.stage != "end"));

        run.status = Status::Failed;
        run.reason = Some("the build failed in phase BUILD".into());
        run.finished_at = Some(at(45));
        let last = timeline(&run).pop();
        assert_eq!(last.map(|m| m.what), Some("failed after 45s: the build failed in phase BUILD".to_owned()));
    }
}
