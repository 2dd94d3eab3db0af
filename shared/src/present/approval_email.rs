//! The approval request as SNS delivers it: a plain-text email (what email subscribers get) and a JSON document of
//! the same facts for other subscribers (`MessageStructure: json`, with an `email` and a `default` key). Pure.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::text::{comparison_lines, percent, ref_label, subject_line, time_left};
use crate::contract::ports::TopicMessage;
use crate::definitions::PauseAction;
use crate::pipeline::{ApprovalNotice, ExecutionId};

/// Where the request points.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    /// The review link, with its token: only in the email.
    pub review: &'a str,
    /// The approval function's URL, without any token: for the JSON form.
    pub base: &'a str,
    pub region: &'a str,
    /// The named approver the link is for, if it is theirs alone.
    pub approver: Option<&'a str>,
}

/// The request for `execution`, expiring at `expires_at`, as of `now`.
pub fn approval_email(
    execution: &ExecutionId,
    notice: &ApprovalNotice,
    expires_at: DateTime<Utc>,
    links: Links<'_>,
    now: DateTime<Utc>,
) -> TopicMessage {
    let short: String = notice.commit.chars().take(7).collect();
    let first_line = notice.message.lines().next().unwrap_or("").trim();
    let (subject, mut text) = heading(notice, &short);
    let subject = subject_line(&subject);
    let mut line = |label: &str, value: &str| {
        if !value.is_empty() {
            text.push_str(&format!("{label:<12} {value}\n"));
        }
    };
    line("Repository:", &notice.repository);
    line(ref_label(&notice.git_ref).0, ref_label(&notice.git_ref).1);
    line("Commit:", &format!("{} {first_line}", notice.commit.chars().take(12).collect::<String>()));
    line("Pushed by:", &notice.pusher);
    line("Changes:", &notice.compare_url);
    line("Build:", notice.build_id.as_deref().unwrap_or(""));
    line("Image:", notice.image_uri.as_deref().unwrap_or(""));
    line("Run:", &execution.0);
    line("Expires:", &format!("{} ({})", expires_at.format("%Y-%m-%d %H:%M UTC"), time_left(expires_at - now)));
    if let Some(pause) = &notice.pause {
        let then = match pause.timeout_action {
            PauseAction::Continue => "ECS continues the deployment",
            PauseAction::Rollback => "ECS rolls the deployment back",
        };
        line("If nobody:", then);
        for check in &pause.checks {
            line("Check:", check);
        }
    }
    if !notice.earlier.is_empty() {
        text.push_str("\nStages so far:\n");
        for stage in &notice.earlier {
            text.push_str(&format!("  {:<12} {}\n", stage.stage.as_str(), stage.said));
        }
    }
    if let Some(frozen) = &notice.frozen {
        text.push_str(&format!(
            "\nDeployments of {} are stopped: {frozen}.\nYour decision is recorded now; an approved release goes on \
             once the freeze lifts.\n",
            notice.pipeline
        ));
    }
    if let Some(next) = &notice.releases_to {
        text.push_str(&format!("\nApproving releases it to:\n  {:<12} {}\n", next.stage.as_str(), next.said));
    }
    if let Some(compared) = &notice.compared {
        if notice.releases_to.is_none() {
            text.push_str("\nWhere approving deploys it:\n");
        }
        for (label, values) in comparison_lines(compared) {
            for (n, value) in values.iter().enumerate() {
                text.push_str(&format!("  {:<12} {value}\n", if n == 0 { label } else { "" }));
            }
        }
    }
    let whose = match links.approver {
        Some(approver) => format!("It is yours alone, {approver}: the decision is recorded as yours."),
        None => "Anyone with the link can decide: do not forward this email.".to_owned(),
    };
    text.push_str(&format!(
        "\nReview and decide:\n{}\n\nThe link opens a page; nothing is decided until you press Approve or Reject there. \
         It decides once, and expires with the request. {whose}\n",
        links.review
    ));
    let facts = approval_json(execution, notice, expires_at, links);
    let message = json!({ "default": facts.to_string(), "email": text }).to_string();
    TopicMessage { subject, text, message, approver: None }
}

/// The request's subject and first paragraph: a pause of a deployment, a test stage's failure to overlook, or an
/// approval stage.
fn heading(notice: &ApprovalNotice, short: &str) -> (String, String) {
    match &notice.pause {
        Some(pause) => (
            format!("sluice: {} paused at {} for approval, {short}", notice.pipeline, pause.stage),
            format!(
                "An {} deployment of pipeline {} is paused at {} with {} of production traffic on the new revision, \
                 waiting for your approval to continue.\n\n",
                pause.strategy,
                notice.pipeline,
                pause.stage,
                percent(pause.shifted_tenths)
            ),
        ),
        None => match &notice.failed {
            Some(failed) => (
                format!("sluice: {} {short} failed {}: go on anyway?", notice.pipeline, failed.stage),
                format!(
                    "A run of pipeline {} failed its {} stage: {}.\nApprove to let the release go on all the same; \
                     reject to end the run.\n\n",
                    notice.pipeline, failed.stage, failed.said
                ),
            ),
            None => (
                format!("sluice: approval needed for {} at {short}", notice.pipeline),
                format!("A run of pipeline {} is waiting for your approval.\n\n", notice.pipeline),
            ),
        },
    }
}

/// The request's facts as JSON, for subscribers other than email (no token: the review URL is the function's).
fn approval_json(
    execution: &ExecutionId,
    notice: &ApprovalNotice,
    expires_at: DateTime<Utc>,
    links: Links<'_>,
) -> serde_json::Value {
    let first_line = notice.message.lines().next().unwrap_or("").trim();
    let mut facts = json!({
        "region": links.region,
        "approval": {
            "pipelineName": notice.pipeline,
            "executionId": execution.0,
            "repository": notice.repository,
            "ref": notice.git_ref,
            "commit": notice.commit,
            "message": first_line,
            "pusher": notice.pusher,
            "compareUrl": notice.compare_url,
            "buildId": notice.build_id,
            "imageUri": notice.image_uri,
            "requested": notice.requested_at.to_rfc3339(),
            "expires": expires_at.to_rfc3339(),
            "reviewUrl": links.base,
        }
    });
    if let Some(frozen) = &notice.frozen {
        facts["approval"]["frozen"] = json!(frozen);
    }
    if let Some(failed) = &notice.failed {
        facts["approval"]["failedStage"] = json!({ "stage": failed.stage, "said": failed.said });
    }
    if let Some(compared) = &notice.compared {
        facts["approval"]["releasedOver"] = json!({
            "runningTaskDefinition": compared.running,
            "runningImage": compared.running_image,
            "image": compared.image,
            "changes": compared.changes,
            "unread": compared.unread,
        });
    }
    if let Some(pause) = &notice.pause {
        facts["approval"]["pause"] = json!({
            "stage": pause.stage,
            "strategy": pause.strategy,
            "shiftedPercent": f64::from(pause.shifted_tenths) / 10.0,
            "timeoutAction": pause.timeout_action.ecs_name(),
            "checks": pause.checks,
        });
    }
    facts
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::contract::ports::MAX_SUBJECT;

    fn notice() -> ApprovalNotice {
        ApprovalNotice {
            pipeline: "web".into(),
            repository: "acme/web".into(),
            git_ref: "refs/heads/main".into(),
            commit: "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b".into(),
            message: "Fix the checkout button\n\nIt was off by one.".into(),
            pusher: "octocat".into(),
            compare_url: "https://github.com/acme/web/compare/e0b4d5c6a7f8...9b2c5f0e3d1a".into(),
            build_id: Some("arn:aws:codebuild:us-east-1:123456789012:build/web-build:0f1e".into()),
            image_uri: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:9b2c5f0".into()),
            requested_at: "2026-11-24T12:00:00Z".parse().expect("time"),
            pause: None,
            earlier: Vec::new(),
            releases_to: None,
            compared: None,
            failed: None,
            frozen: None,
        }
    }

    #[test]
    fn a_request_sent_while_the_pipeline_is_frozen_says_who_stopped_it_and_that_an_approval_waits_for_the_lift() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        let line = "frozen by arn:aws:iam::1:user/carol since 2026-11-24 11:50 UTC, until unfrozen: incident 4312";
        let frozen = ApprovalNotice { frozen: Some(line.into()), ..notice() };
        let links = Links {
            review: "https://approve.example/r/T",
            base: "https://approve.example/",
            region: "r",
            approver: None,
        };
        let email = approval_email(&ExecutionId::from("web-42"), &frozen, now + TimeDelta::hours(2), links, now);
        let expected = format!(
            "\nDeployments of web are stopped: {line}.\nYour decision is recorded now; an approved release goes on once \
             the freeze lifts.\n"
        );
        assert!(email.text.contains(&expected), "{}", email.text);
        let message: serde_json::Value = serde_json::from_str(&email.message).expect("JSON");
        let facts: serde_json::Value = serde_json::from_str(message["default"].as_str().expect("text")).expect("JSON");
        assert_eq!(facts["approval"]["frozen"], line);
        assert!(!approval_email(&ExecutionId::from("web-42"), &notice(), now, links, now).text.contains("stopped"));
    }

    #[test]
    fn a_pause_email_says_where_the_deployment_is_paused_what_has_moved_the_checks_and_the_timeout_action() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        let paused = ApprovalNotice {
            pause: Some(crate::pipeline::PauseNotice {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                strategy: "ecs_canary".into(),
                shifted_tenths: 125,
                timeout_action: PauseAction::Rollback,
                checks: vec!["POST_TEST_TRAFFIC_SHIFT: passed (GET /health 200 in 12 ms)".into()],
            }),
            ..notice()
        };
        let links = Links {
            review: "https://approve.example/r/T",
            base: "https://approve.example/",
            region: "r",
            approver: None,
        };
        let email = approval_email(&ExecutionId::from("web-42"), &paused, now + TimeDelta::hours(2), links, now);
        assert_eq!(email.subject, "sluice: web paused at PRE_PRODUCTION_TRAFFIC_SHIFT for approval, 9b2c5f0");
        for expected in [
            "An ecs_canary deployment of pipeline web is paused at PRE_PRODUCTION_TRAFFIC_SHIFT with 12.5% of production",
            "If nobody:   ECS rolls the deployment back",
            "Check:       POST_TEST_TRAFFIC_SHIFT: passed (GET /health 200 in 12 ms)",
            "Expires:     2026-11-24 14:00 UTC (in 2 hours)",
        ] {
            assert!(email.text.contains(expected), "{expected:?} in\n{}", email.text);
        }
        let message: serde_json::Value = serde_json::from_str(&email.message).expect("JSON");
        let facts: serde_json::Value = serde_json::from_str(message["default"].as_str().expect("text")).expect("JSON");
        assert_eq!(facts["approval"]["pause"]["shiftedPercent"], 12.5);
        assert_eq!(facts["approval"]["pause"]["timeoutAction"], "ROLLBACK");
    }

    #[test]
    fn a_sign_off_email_lists_the_stages_so_far_and_where_approving_releases_the_build() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        let links = Links {
            review: "https://approve.example/r/TOKEN",
            base: "https://approve.example/",
            region: "eu-west-1",
            approver: None,
        };
        let stage = |name: &str, said: &str| crate::pipeline::StageNotice {
            stage: crate::pipeline::Stage::new(name).expect("a stage name"),
            said: said.into(),
        };
        let staged = ApprovalNotice {
            earlier: vec![stage("staging", "rolling deployment ecs-svc/3, checks 1/1 passed, running there 30m 00s")],
            releases_to: Some(stage("production", "ecs_canary of prod/web")),
            ..notice()
        };
        let email = approval_email(&ExecutionId::from("web-42"), &staged, now + TimeDelta::days(2), links, now);
        let expected = "Stages so far:\n  staging      rolling deployment ecs-svc/3, checks 1/1 passed, running there 30m \
                        00s\n\nApproving releases it to:\n  production   ecs_canary of prod/web\n";
        assert!(email.text.contains(expected), "{}", email.text);
        assert!(!approval_email(&ExecutionId::from("web-42"), &notice(), now, links, now).text.contains("Stages"));
    }

    #[test]
    fn the_email_names_the_run_its_commit_build_and_deadline_and_links_to_the_review_page() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        let expires = now + TimeDelta::days(2) + TimeDelta::hours(3);
        let links = Links {
            review: "https://approve.example/r/TOKEN",
            base: "https://approve.example/",
            region: "eu-west-1",
            approver: None,
        };
        let email = approval_email(&ExecutionId::from("web-42"), &notice(), expires, links, now);

        assert_eq!(email.subject, "sluice: approval needed for web at 9b2c5f0");
        for expected in [
            "A run of pipeline web is waiting for your approval.",
            "Repository:  acme/web",
            "Branch:      main",
            "Commit:      9b2c5f0e3d1a Fix the checkout button\n",
            "Pushed by:   octocat",
            "Changes:     https://github.com/acme/web/compare/",
            "Build:       arn:aws:codebuild:us-east-1:123456789012:build/web-build:0f1e",
            "Image:       123456789012.dkr.ecr.us-east-1.amazonaws.com/web:9b2c5f0",
            "Expires:     2026-11-26 15:00 UTC (in 2 days)",
            "https://approve.example/r/TOKEN",
        ] {
            assert!(email.text.contains(expected), "{expected:?} in\n{}", email.text);
        }
        assert!(!email.text.contains("It was off by one"), "only the message's first line");

        let message: serde_json::Value = serde_json::from_str(&email.message).expect("JSON");
        assert_eq!(message["email"], email.text);
        let facts: serde_json::Value =
            serde_json::from_str(message["default"].as_str().expect("a string")).expect("JSON");
        assert_eq!(facts["region"], "eu-west-1");
        assert_eq!(facts["approval"]["pipelineName"], "web");
        assert_eq!(facts["approval"]["executionId"], "web-42");
        assert_eq!(facts["approval"]["expires"], "2026-11-26T15:00:00+00:00");
        assert_eq!(facts["approval"]["reviewUrl"], "https://approve.example/");
        assert!(!message["default"].as_str().unwrap_or_default().contains("TOKEN"), "the token goes to email only");
    }

    #[test]
    fn the_subject_stays_within_what_sns_accepts() {
        let mut long = notice();
        long.pipeline = format!("p{}\u{e9}\n", "x".repeat(200));
        let now = Utc::now();
        let links = Links { review: "r", base: "b", region: "us-east-1", approver: None };
        let email = approval_email(&ExecutionId::from("e"), &long, now, links, now);
        assert_eq!(email.subject.chars().count(), MAX_SUBJECT);
        assert!(email.subject.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{}", email.subject);
    }
}
