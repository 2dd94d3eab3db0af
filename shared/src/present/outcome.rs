//! The notification of a run's end as SNS delivers it: a plain-text email (what shipped, or why not and what was
//! rolled back; each stage's time; the hooks' checks) and a JSON document of the same facts for other subscribers
//! (`MessageStructure: json`). Pure.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::text::{percent, ref_label, span, subject_line, test_verdict};
use crate::contract::ports::TopicMessage;
use crate::pipeline::{ApprovalDecision, ApprovalFacts, ExecutionId, OutcomeReport, PauseFacts, Status};

/// The notification that `execution` ended as `report` says: an email's text, and the same facts as JSON.
pub fn outcome_message(execution: &ExecutionId, report: &OutcomeReport, region: &str) -> TopicMessage {
    let short: String = report.commit.chars().take(7).collect();
    let words = outcome_words(report.outcome);
    let subject = subject_line(&format!("sluice: {} {short} {words}", report.pipeline));
    let mut text = outcome_facts(execution, report);
    text.push_str(&outcome_times(report));
    let facts = outcome_json(execution, report, region);
    let message = json!({ "default": facts.to_string(), "email": text }).to_string();
    TopicMessage { subject, text, message, approver: None }
}

/// The email's head: what happened, the commit, the build and the deployment, and why it ended so.
fn outcome_facts(execution: &ExecutionId, report: &OutcomeReport) -> String {
    let mut text = format!("{}\n\n", headline(report));
    let mut line = |label: &str, value: &str| {
        if !value.is_empty() {
            text.push_str(&format!("{label:<16} {value}\n"));
        }
    };
    line("Repository:", &report.repository);
    line(ref_label(&report.git_ref).0, ref_label(&report.git_ref).1);
    line("Commit:", &format!("{} {}", report.commit.chars().take(12).collect::<String>(), report.message));
    line("Pushed by:", &report.pusher);
    line("Changes:", &report.compare_url);
    line("Build:", report.build_id.as_deref().unwrap_or(""));
    line("Image:", report.image_uri.as_deref().unwrap_or(""));
    line("Task definition:", report.task_definition.as_deref().unwrap_or(""));
    let deployment = match (&report.deployment_id, &report.strategy) {
        (Some(id), Some(strategy)) if strategy == "blue_green" => format!("{id} (blue/green)"),
        (Some(id), Some(strategy)) => format!("{id} ({strategy})"),
        (Some(id), None) => id.clone(),
        (None, _) => String::new(),
    };
    line("Deployment:", &deployment);
    line("Run:", &execution.0);
    if let Some(reason) = &report.reason {
        text.push_str(&format!("\nWhy: {reason}\n"));
    }
    if let Some(rolled_back) = rolled_back(report) {
        text.push_str(&format!("Rolled back: {rolled_back}\n"));
    }
    text
}

/// The email's tail: each stage's time, the hooks' checks, the pauses and who decided them.
fn outcome_times(report: &OutcomeReport) -> String {
    let mut text = String::new();
    text.push_str("\nStages:\n");
    for stage in &report.stages {
        let took = stage.finished_at.map_or_else(|| "did not finish".to_owned(), |end| span(end - stage.started_at));
        let note = match stage.stage {
            stage if Some(stage) == report.approval_stage => decision_note(report),
            _ => String::new(),
        };
        text.push_str(&format!("  {:<10} {took}{note}\n", stage.stage.to_string()));
    }
    text.push_str(&format!("  {:<10} {}\n", "total", span(report.finished_at - report.started_at)));
    if !report.hooks.is_empty() {
        text.push_str("\nLifecycle hooks:\n");
        for hook in &report.hooks {
            let verdict = if hook.passed { "passed" } else { "FAILED" };
            let took =
                hook.millis.map(|ms| format!(" in {}", span(TimeDelta::milliseconds(clamp(ms))))).unwrap_or_default();
            text.push_str(&format!("  {:<22} {verdict}{took}\n", hook.lifecycle_event));
            if let Some(detail) = &hook.detail {
                text.push_str(&format!("    {detail}\n"));
            }
        }
    }
    if !report.tests.is_empty() {
        text.push_str("\nTests:\n");
        for test in &report.tests {
            let by = if test.facts.project.is_empty() { String::new() } else { format!("{}: ", test.facts.project) };
            text.push_str(&format!("  {:<10} {by}{}\n", test.stage.to_string(), test_verdict(&test.facts)));
            for failed in test.facts.results.iter().flat_map(|results| &results.failures) {
                let message = failed.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                text.push_str(&format!("    FAILED {}{message}\n", failed.name));
            }
        }
    }
    let asked: Vec<(&PauseFacts, &ApprovalFacts)> =
        report.pauses.iter().filter_map(|pause| pause.approval.as_ref().map(|approval| (pause, approval))).collect();
    if !asked.is_empty() {
        text.push_str("\nPauses:\n");
        for (pause, approval) in asked {
            text.push_str(&format!(
                "  {} at {}: {}\n",
                pause.stage,
                percent(pause.shifted_tenths),
                pause_note(pause, approval, report.finished_at)
            ));
        }
    }
    text
}

/// The facts of the email as JSON, for subscribers other than email.
fn outcome_json(execution: &ExecutionId, report: &OutcomeReport, region: &str) -> serde_json::Value {
    json!({
        "region": region,
        "outcome": {
            "pipelineName": report.pipeline,
            "executionId": execution.0,
            "outcome": report.outcome.name(),
            "reason": report.reason,
            "rolledBack": report.outcome == Status::RolledBack,
            "repository": report.repository,
            "ref": report.git_ref,
            "commit": report.commit,
            "message": report.message,
            "pusher": report.pusher,
            "compareUrl": report.compare_url,
            "buildId": report.build_id,
            "imageUri": report.image_uri,
            "taskDefinition": report.task_definition,
            "deploymentId": report.deployment_id,
            "strategy": report.strategy,
            "approval": report.decision.map(|decision| json!({
                "decision": decision.name(),
                "approver": report.approver,
                "comment": report.comment,
            })),
            "stages": report.stages.iter().map(|stage| json!({
                "stage": stage.stage,
                "started": stage.started_at.to_rfc3339(),
                "finished": stage.finished_at.map(|at| at.to_rfc3339()),
                "seconds": stage.finished_at.map(|end| (end - stage.started_at).num_milliseconds() as f64 / 1000.0),
            })).collect::<Vec<_>>(),
            "hooks": report.hooks.iter().map(|hook| json!({
                "lifecycleEvent": hook.lifecycle_event,
                "passed": hook.passed,
                "detail": hook.detail,
                "millis": hook.millis,
            })).collect::<Vec<_>>(),
            "tests": report.tests.iter().map(|test| json!({
                "stage": test.stage,
                "project": Some(&test.facts.project).filter(|project| !project.is_empty()),
                "checks": test.facts.detail,
                "buildId": test.facts.build_id,
                "passed": test.facts.passed,
                "reason": test.facts.reason,
                "results": test.facts.results,
            })).collect::<Vec<_>>(),
            "pauses": report.pauses.iter().map(|pause| json!({
                "stage": pause.stage,
                "shiftedPercent": f64::from(pause.shifted_tenths) / 10.0,
                "decision": pause.approval.as_ref().and_then(|a| a.decision).map(ApprovalDecision::name),
                "approver": pause.approval.as_ref().and_then(|a| a.approver.clone()),
                "comment": pause.approval.as_ref().and_then(|a| a.comment.clone()),
                "asked": pause.approval.is_some(),
            })).collect::<Vec<_>>(),
            "started": report.started_at.to_rfc3339(),
            "finished": report.finished_at.to_rfc3339(),
        }
    })
}

/// `succeeded`, `rolled back`, ...: the outcome as a subject says it.
fn outcome_words(outcome: Status) -> String {
    outcome.name().replace('_', " ")
}

/// The first line: what happened, in a sentence.
fn headline(report: &OutcomeReport) -> String {
    let pipeline = &report.pipeline;
    match report.outcome {
        Status::Succeeded => match &report.image_uri {
            Some(image) => format!("Pipeline {pipeline} shipped {image}."),
            None => format!("A run of pipeline {pipeline} succeeded."),
        },
        Status::RolledBack => format!("A run of pipeline {pipeline} was rolled back: the new version is not serving."),
        Status::Failed => format!("A run of pipeline {pipeline} failed."),
        Status::Rejected => format!("A run of pipeline {pipeline} was rejected."),
        Status::Superseded => format!("A run of pipeline {pipeline} was superseded by a newer one."),
        Status::TimedOut => format!("A run of pipeline {pipeline} timed out."),
        Status::Skipped => format!("A push to pipeline {pipeline} was skipped."),
        Status::Waiting(_) | Status::Running(_) => format!("A run of pipeline {pipeline} is {}.", report.outcome),
    }
}

/// What a rolled-back or failed deployment left serving, when it got as far as deploying.
fn rolled_back(report: &OutcomeReport) -> Option<String> {
    let deployed = report.deployment_id.is_some();
    // A run that failed its tests deployed nothing at its test stage: what it deployed before stays.
    let last = report.stages.last().map(|time| time.stage);
    let tested_last = report.tests.last().filter(|test| Some(test.stage) == last);
    match report.outcome {
        Status::Failed if let Some(test) = tested_last => Some(if deployed {
            format!("nothing: what the run deployed before {} keeps running there.", test.stage)
        } else {
            "nothing: the run deployed nothing.".to_owned()
        }),
        Status::RolledBack => Some(match report.strategy.as_deref() {
            Some("rolling") => "ECS put the service back on its previous task definition.".to_owned(),
            Some(native) if native.starts_with("ecs_") => {
                "ECS sent production traffic back to the service's previous revision.".to_owned()
            }
            _ => "CodeDeploy sent production traffic back to the original task set.".to_owned(),
        }),
        Status::Failed if deployed => Some("nothing: the deployment did not roll back on its own.".to_owned()),
        _ => None,
    }
}

/// `approved by jane: "looks good"`, or what ECS did when nobody decided.
fn pause_note(pause: &PauseFacts, approval: &ApprovalFacts, ended: DateTime<Utc>) -> String {
    match (approval.decision, approval.approver.as_deref()) {
        (Some(decision), approver) => {
            let comment = approval.comment.as_deref().map(|comment| format!(": \"{comment}\"")).unwrap_or_default();
            format!("{} by {}{comment}", decision.name(), approver.unwrap_or("someone"))
        }
        (None, _) if ended < approval.expires_at => "no decision: the deployment ended first".to_owned(),
        (None, _) => format!(
            "nobody decided by {}; ECS's timeout action: {}",
            approval.expires_at.format("%Y-%m-%d %H:%M UTC"),
            pause.timeout_action.name()
        ),
    }
}

/// ` (approved by jane: "ship it")` after the approval stage's time.
fn decision_note(report: &OutcomeReport) -> String {
    let Some(decision) = report.decision else { return String::new() };
    let by = report.approver.as_deref().map(|approver| format!(" by {approver}")).unwrap_or_default();
    let comment = report.comment.as_deref().map(|comment| format!(": \"{comment}\"")).unwrap_or_default();
    format!("  {}{by}{comment}", decision.name())
}

fn clamp(millis: u64) -> i64 {
    i64::try_from(millis).unwrap_or(i64::MAX).min(TimeDelta::days(365).num_milliseconds())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ports::MAX_SUBJECT;
    use crate::pipeline::{HookResult, StageTime};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    fn report(outcome: Status) -> OutcomeReport {
        OutcomeReport {
            pipeline: "web".into(),
            outcome,
            reason: None,
            repository: "acme/web".into(),
            git_ref: "refs/heads/main".into(),
            commit: "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b".into(),
            message: "Fix the checkout button".into(),
            pusher: "octocat".into(),
            compare_url: "https://github.com/acme/web/compare/e0b4d5c6a7f8...9b2c5f0e3d1a".into(),
            build_id: Some("arn:aws:codebuild:us-east-1:123456789012:build/web-build:0f1e".into()),
            image_uri: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:9b2c5f0".into()),
            strategy: Some("blue_green".into()),
            deployment_id: Some("d-ABCDEF123".into()),
            task_definition: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7".into()),
            approval_stage: Some(crate::pipeline::Stage::APPROVAL),
            decision: Some(ApprovalDecision::Approved),
            approver: Some("Jane".into()),
            comment: Some("ship it".into()),
            stages: vec![
                StageTime {
                    stage: crate::pipeline::Stage::BUILD,
                    started_at: at("2026-11-24T12:00:00Z"),
                    finished_at: Some(at("2026-11-24T12:02:10Z")),
                },
                StageTime {
                    stage: crate::pipeline::Stage::APPROVAL,
                    started_at: at("2026-11-24T12:02:10Z"),
                    finished_at: Some(at("2026-11-24T12:16:13Z")),
                },
                StageTime {
                    stage: crate::pipeline::Stage::DEPLOY,
                    started_at: at("2026-11-24T12:16:13Z"),
                    finished_at: Some(at("2026-11-24T12:22:53Z")),
                },
            ],
            hooks: vec![
                HookResult {
                    lifecycle_event: "AfterAllowTestTraffic".into(),
                    hook_execution_id: "h-1".into(),
                    passed: true,
                    detail: Some("1/1 passed: #1 200 in 42 ms".into()),
                    millis: Some(42),
                    at: at("2026-11-24T12:18:00Z"),
                },
                HookResult {
                    lifecycle_event: "BeforeAllowTraffic".into(),
                    hook_execution_id: "h-2".into(),
                    passed: true,
                    detail: None,
                    millis: Some(1_500),
                    at: at("2026-11-24T12:20:00Z"),
                },
            ],
            pauses: Vec::new(),
            tests: Vec::new(),
            started_at: at("2026-11-24T11:59:58Z"),
            finished_at: at("2026-11-24T12:22:53Z"),
        }
    }

    #[test]
    fn a_shipped_run_says_what_shipped_how_long_each_stage_took_and_how_its_hooks_went() {
        let message = outcome_message(&ExecutionId::from("web-42"), &report(Status::Succeeded), "us-east-1");

        assert_eq!(message.subject, "sluice: web 9b2c5f0 succeeded");
        let text = &message.text;
        assert!(text.starts_with("Pipeline web shipped 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:9b2c5f0.\n"));
        assert!(text.contains("Task definition: arn:aws:ecs:us-east-1:123456789012:task-definition/web:7\n"), "{text}");
        assert!(text.contains("Deployment:      d-ABCDEF123 (blue/green)\n"), "{text}");
        assert!(text.contains("Commit:          9b2c5f0e3d1a Fix the checkout button\n"), "{text}");
        assert!(text.contains("  build      2m 10s\n"), "{text}");
        assert!(text.contains("  approval   14m 03s  approved by Jane: \"ship it\"\n"), "{text}");
        assert!(text.contains("  deploy     6m 40s\n"), "{text}");
        assert!(text.contains("  total      22m 55s\n"), "{text}");
        assert!(text.contains("  AfterAllowTestTraffic  passed in 42 ms\n    1/1 passed: #1 200 in 42 ms\n"), "{text}");
        assert!(text.contains("  BeforeAllowTraffic     passed in 1.5s\n"), "{text}");
        assert!(!text.contains("Why:") && !text.contains("Rolled back:"), "{text}");
    }

    #[test]
    fn a_rolled_back_run_says_why_and_that_the_old_version_still_serves() {
        let mut report = report(Status::RolledBack);
        report.reason = Some("the BeforeAllowTraffic checks failed (GET https://x/: 503, expected 200)".into());
        report.hooks[1].passed = false;

        let message = outcome_message(&ExecutionId::from("web-42"), &report, "us-east-1");

        assert_eq!(message.subject, "sluice: web 9b2c5f0 rolled back");
        assert!(message.text.starts_with("A run of pipeline web was rolled back: the new version is not serving.\n"));
        assert!(
            message.text.contains("\nWhy: the BeforeAllowTraffic checks failed (GET https://x/: 503, expected 200)\n")
        );
        assert!(
            message.text.contains("Rolled back: CodeDeploy sent production traffic back to the original task set.")
        );
        assert!(message.text.contains("  BeforeAllowTraffic     FAILED in 1.5s\n"), "{}", message.text);
    }

    #[test]
    fn a_canary_rolled_back_at_a_pause_names_the_pause_the_decision_and_what_ecs_put_back() {
        let mut report = report(Status::RolledBack);
        report.strategy = Some("ecs_canary".into());
        report.reason = Some("rolled back by Ada at the PRE_PRODUCTION_TRAFFIC_SHIFT pause: slow".into());
        let asked = |decision, approver: Option<&str>| crate::pipeline::ApprovalFacts {
            decision,
            approver: approver.map(str::to_owned),
            comment: approver.map(|_| "slow".to_owned()),
            expires_at: at("2026-11-24T13:00:00Z"),
            ..Default::default()
        };
        let pause = |tenths, approval| PauseFacts {
            hook_id: format!("ecs-pause-{tenths}"),
            stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
            shifted_tenths: tenths,
            timeout_action: crate::definitions::PauseAction::Rollback,
            approval,
            held: false,
            held_until: None,
        };
        report.pauses = vec![
            pause(0, None),
            pause(50, Some(asked(None, None))),
            pause(125, Some(asked(Some(ApprovalDecision::Rejected), Some("Ada")))),
        ];

        let message = outcome_message(&ExecutionId::from("web-42"), &report, "us-east-1");

        let text = &message.text;
        assert!(text.contains("Deployment:      d-ABCDEF123 (ecs_canary)"), "{text}");
        assert!(text.contains("Rolled back: ECS sent production traffic back to the service's previous revision."));
        assert!(
            text.contains("\nPauses:\n  PRE_PRODUCTION_TRAFFIC_SHIFT at 5%: no decision: the deployment ended first\n")
        );
        assert!(text.contains("  PRE_PRODUCTION_TRAFFIC_SHIFT at 12.5%: rejected by Ada: \"slow\"\n"), "{text}");
        assert!(!text.contains("at 0%"), "a pause sluice continued itself asked nobody: {text}");
        let facts: serde_json::Value = serde_json::from_str(&message.message).expect("JSON");
        let facts: serde_json::Value = serde_json::from_str(facts["default"].as_str().expect("text")).expect("JSON");
        assert_eq!(facts["outcome"]["pauses"][2]["decision"], "rejected");
        assert_eq!(facts["outcome"]["pauses"][0]["asked"], false);
    }

    #[test]
    fn a_failed_rolling_update_that_did_not_roll_back_says_nothing_was_put_back() {
        let mut report = report(Status::Failed);
        report.strategy = Some("rolling".into());
        report.reason = Some("ECS failed the deployment".into());

        let text = outcome_message(&ExecutionId::from("web-42"), &report, "us-east-1").text;

        assert!(text.contains("Rolled back: nothing: the deployment did not roll back on its own."), "{text}");
        assert!(text.contains("Deployment:      d-ABCDEF123 (rolling)"), "{text}");
    }

    #[test]
    fn a_run_that_never_deployed_shows_only_the_stages_it_reached() {
        let mut report = report(Status::Rejected);
        report.stages.truncate(2);
        report.decision = Some(ApprovalDecision::Rejected);
        report.comment = None;
        report.reason = Some("rejected by Jane".into());
        (report.deployment_id, report.strategy, report.task_definition, report.hooks) = (None, None, None, vec![]);

        let text = outcome_message(&ExecutionId::from("web-42"), &report, "us-east-1").text;

        assert!(text.contains("  approval   14m 03s  rejected by Jane\n"), "{text}");
        assert!(!text.contains("deploy ") && !text.contains("Lifecycle hooks") && !text.contains("Rolled back"));
    }

    #[test]
    fn machines_get_the_same_facts_as_json_and_email_subscribers_the_text() {
        let message = outcome_message(&ExecutionId::from("web-42"), &report(Status::Succeeded), "eu-west-1");

        let sns: serde_json::Value = serde_json::from_str(&message.message).expect("JSON");
        assert_eq!(sns["email"], message.text.as_str());
        let facts: serde_json::Value =
            serde_json::from_str(sns["default"].as_str().expect("default is a string")).expect("JSON facts");
        assert_eq!(facts["region"], "eu-west-1");
        let outcome = &facts["outcome"];
        assert_eq!(outcome["outcome"], "succeeded");
        assert_eq!(outcome["rolledBack"], false);
        assert_eq!(outcome["taskDefinition"], "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7");
        assert_eq!(outcome["approval"]["approver"], "Jane");
        assert_eq!(outcome["stages"][0]["stage"], "build");
        assert_eq!(outcome["stages"][0]["seconds"], 130.0);
        assert_eq!(outcome["hooks"][0]["millis"], 42);
    }

    #[test]
    fn the_subject_stays_within_what_sns_accepts() {
        let mut report = report(Status::Succeeded);
        report.pipeline = "p".repeat(300);

        let message = outcome_message(&ExecutionId::from("web-42"), &report, "us-east-1");

        assert_eq!(message.subject.chars().count(), MAX_SUBJECT);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(span(TimeDelta::milliseconds(850)), "850 ms");
        assert_eq!(span(TimeDelta::milliseconds(1_870)), "1.8s");
        assert_eq!(span(TimeDelta::seconds(12)), "12s");
        assert_eq!(span(TimeDelta::seconds(185)), "3m 05s");
        assert_eq!(span(TimeDelta::minutes(130)), "2h 10m");
        assert_eq!(span(TimeDelta::hours(76)), "3d 4h");
        assert_eq!(span(TimeDelta::seconds(-5)), "0 ms");
    }
}
