//! The approval pages: small, script-free HTML, readable on a phone. Pure: facts in, status and HTML out. The
//! headers every page is sent with are in [`super::html::HEADERS`] (with its `content_security_policy`).

use chrono::{DateTime, Utc};

use super::html::{Page, document, escape};
use super::text::{comparison_lines, first_line, percent, ref_label, time_left};
use crate::definitions::PauseAction;
use crate::pipeline::{ApprovalDecision, ApprovalNotice, ExecutionId, MAX_APPROVER, MAX_COMMENT, Signoff};

/// What a review page shows of the run.
#[derive(Debug, Clone)]
pub struct RunFacts<'a> {
    pub execution: &'a ExecutionId,
    pub notice: &'a ApprovalNotice,
    pub expires_at: DateTime<Utc>,
    /// A named approver's own link: who they are, and who approved so far.
    pub named: Option<Named<'a>>,
}

/// A named approver's link: theirs, and the approvals so far toward the number required.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub you: &'a str,
    pub signoffs: &'a [Signoff],
    pub required: usize,
}

/// The review page: the run, the time left, and the form that decides (a POST to this same link).
pub fn review(facts: &RunFacts<'_>, form_token: &str, now: DateTime<Utc>) -> Page {
    let (question, note) = match &facts.notice.pause {
        Some(pause) => (
            format!("Continue {}'s {} deployment?", escape(&facts.notice.pipeline), escape(&pause.strategy)),
            "Approving lets ECS continue the deployment; rejecting rolls it back to the revision before. The choice \
             is final.",
        ),
        None if facts.named.is_some_and(|named| named.required > 1) => (
            format!("Approve {}?", escape(&facts.notice.pipeline)),
            "Your approval counts toward the approvals needed; once enough approved, the build deploys. Rejecting \
             ends the run. You decide once.",
        ),
        None => (
            format!("Approve {}?", escape(&facts.notice.pipeline)),
            "Approving deploys this build; rejecting ends the run. The choice is final.",
        ),
    };
    let who = match facts.named {
        Some(named) => {
            format!("<p>You decide as <strong>{}</strong>: this link is yours alone.</p>", escape(named.you))
        }
        None => format!(
            "<label for=\"approver\">Your name</label>\
             <input id=\"approver\" name=\"approver\" required maxlength=\"{MAX_APPROVER}\" autocomplete=\"name\">"
        ),
    };
    let body = format!(
        "<h1>{question}</h1>{facts}\
         <form method=\"post\">\
         <input type=\"hidden\" name=\"form_token\" value=\"{form_token}\">\
         {who}\
         <label for=\"comment\">Comment (optional)</label>\
         <textarea id=\"comment\" name=\"comment\" rows=\"3\" maxlength=\"{MAX_COMMENT}\"></textarea>\
         <button class=\"approve\" name=\"decision\" value=\"approve\">Approve</button>\
         <button class=\"reject\" name=\"decision\" value=\"reject\">Reject</button>\
         </form><p class=\"note\">{note}</p>",
        facts = frozen(facts.notice) + &fact_list(facts, now),
        form_token = escape(form_token),
    );
    page(200, &format!("Approve {}", facts.notice.pipeline), &body)
}

/// The freeze that stops the pipeline's deployments, if any, as a paragraph above the facts.
fn frozen(notice: &ApprovalNotice) -> String {
    let Some(frozen) = &notice.frozen else { return String::new() };
    format!(
        "<p class=\"bad\">Deployments of {} are stopped: {}. Your decision is recorded now; an approved release goes on \
         once the freeze lifts.</p>",
        escape(&notice.pipeline),
        escape(frozen)
    )
}

/// The decision was recorded now.
pub fn decided(facts: &RunFacts<'_>, decision: ApprovalDecision, approver: &str) -> Page {
    let next = match (decision, facts.notice.pause.is_some()) {
        (ApprovalDecision::Approved, false) if facts.notice.frozen.is_some() => {
            "Deployments are stopped: the run waits before its deploy stage until the freeze lifts. You can close this \
             page."
        }
        (ApprovalDecision::Approved, true) if facts.notice.frozen.is_some() => {
            "Deployments are stopped: ECS continues the deployment once the freeze lifts, if it still waits at this \
             pause then. You can close this page."
        }
        (ApprovalDecision::Approved, false) => "The run moves on to its deploy stage now. You can close this page.",
        (ApprovalDecision::Rejected, false) => "The run ends, rejected; nothing is deployed. You can close this page.",
        (ApprovalDecision::Approved, true) => "ECS continues the deployment now. You can close this page.",
        (ApprovalDecision::Rejected, true) => {
            "ECS rolls the deployment back now; the run ends rolled back. You can close this page."
        }
    };
    let body = format!(
        "<h1>{} {} by {}</h1><p>{next}</p><p class=\"note\">Run {} of pipeline {}.</p>",
        capitalized(decision),
        short(&facts.notice.commit),
        escape(approver),
        escape(&facts.execution.0),
        escape(&facts.notice.pipeline),
    );
    page(200, capitalized(decision), &body)
}

/// A named approver's approval was recorded, and the stage needs more.
pub fn signed_off(facts: &RunFacts<'_>, by: &str, approved: usize, required: usize) -> Page {
    let body = format!(
        "<h1>Approved by {}</h1><p>Your approval is recorded: {approved} of the {required} needed. The run moves on \
         once {} more approve{}. You can close this page.</p><p class=\"note\">Run {} of pipeline {}.</p>",
        escape(by),
        required.saturating_sub(approved),
        if required.saturating_sub(approved) == 1 { "s" } else { "" },
        escape(&facts.execution.0),
        escape(&facts.notice.pipeline),
    );
    page(200, "Approved", &body)
}

/// A named approver's approval was recorded, and how the approval stands now could not be read.
pub fn approval_recorded(facts: &RunFacts<'_>, by: &str) -> Page {
    let body = format!(
        "<h1>Approved by {}</h1><p>Your approval is recorded. The run moves on once enough approvers approved. You can \
         close this page.</p><p class=\"note\">Run {} of pipeline {}.</p>",
        escape(by),
        escape(&facts.execution.0),
        escape(&facts.notice.pipeline),
    );
    page(200, "Approved", &body)
}

/// A named approver who already approved comes back: each decides once.
pub fn already_signed(by: &str, at: DateTime<Utc>) -> Page {
    let body = format!(
        "<h1>You already approved</h1><p>{} approved at {}. Each approver decides once; the run waits for the \
         others.</p>",
        escape(by),
        at.format("%Y-%m-%d %H:%M UTC")
    );
    page(409, "Already approved", &body)
}

/// The pusher's own link, where the pipeline forbids approving one's own push.
pub fn pusher_refused(by: &str) -> Page {
    let body = format!(
        "<h1>You pushed this commit</h1><p>{} pushed the commit this run deploys, and this pipeline lets nobody approve \
         their own push: another approver decides.</p>",
        escape(by)
    );
    page(403, "Not yours to approve", &body)
}

/// The same page for every link that decides nothing here: unknown, forged, or replaced by a newer request.
pub fn not_found() -> Page {
    page(
        404,
        "Link not found",
        "<h1>This approval link is not valid</h1><p>It may have been mistyped, or replaced by a \
        newer request: use the newest email about the run.</p>",
    )
}

pub fn expired(expires_at: DateTime<Utc>) -> Page {
    let body = format!(
        "<h1>This approval has expired</h1><p>Nobody decided by {}; the run ended, timed out, and nothing was \
         deployed. Push again (or retry the run) to ask anew.</p>",
        expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    page(410, "Approval expired", &body)
}

/// A pause nobody decided in time: ECS took its timeout action.
pub fn pause_expired(expires_at: DateTime<Utc>, action: PauseAction) -> Page {
    let what = match action {
        PauseAction::Continue => "continued the deployment",
        PauseAction::Rollback => "rolled the deployment back",
    };
    let body = format!(
        "<h1>This approval has expired</h1><p>Nobody decided by {}; ECS took the pause's timeout action and {what}.</p>",
        expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    page(410, "Approval expired", &body)
}

pub fn already_decided(decision: ApprovalDecision, approver: &str, at: Option<DateTime<Utc>>) -> Page {
    let when = at.map(|at| format!(" at {}", at.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default();
    let body =
        format!("<h1>Already {}</h1><p>{} decided{when}. The decision stands.</p>", decision.name(), escape(approver));
    page(409, "Already decided", &body)
}

/// The run no longer waits for this approval (superseded by a newer run, say): `reason` says why.
pub fn withdrawn(reason: &str) -> Page {
    let body = format!("<h1>This approval was withdrawn</h1><p>{}.</p>", escape(reason));
    page(410, "Approval withdrawn", &body)
}

pub fn bad_request(message: &str) -> Page {
    page(400, "Bad request", &format!("<h1>That did not work</h1><p>{}</p>", escape(message)))
}

pub fn method_not_allowed() -> Page {
    page(405, "Method not allowed", "<h1>Method not allowed</h1><p>Open the link from the email.</p>")
}

pub fn unavailable() -> Page {
    page(
        503,
        "Try again",
        "<h1>sluice could not answer just now</h1><p>Nothing was decided. Try again in a moment.</p>",
    )
}

fn fact_list(facts: &RunFacts<'_>, now: DateTime<Utc>) -> String {
    let notice = facts.notice;
    let (ref_kind, ref_name) = ref_label(&notice.git_ref);
    let mut rows = vec![
        ("Repository", escape(&notice.repository)),
        (ref_kind.trim_end_matches(':'), escape(ref_name)),
        ("Commit", format!("<code>{}</code> {}", short(&notice.commit), escape(first_line(&notice.message)))),
        ("Pushed by", escape(&notice.pusher)),
    ];
    if notice.compare_url.starts_with("https://") {
        rows.push(("Changes", format!("<a href=\"{0}\">{0}</a>", escape(&notice.compare_url))));
    }
    if let Some(build) = &notice.build_id {
        rows.push(("Build", escape(build)));
    }
    if let Some(image) = &notice.image_uri {
        rows.push(("Image", escape(image)));
    }
    rows.push(("Run", escape(&facts.execution.0)));
    if let Some(failed) = &notice.failed {
        let said = format!("<code>{}</code> {}", escape(failed.stage.as_str()), escape(&failed.said));
        rows.push((
            "Failed",
            format!("{said}<br>Approve to let the release go on all the same; reject to end the run."),
        ));
    }
    if !notice.earlier.is_empty() {
        let lines: Vec<String> = notice
            .earlier
            .iter()
            .map(|stage| format!("<code>{}</code> {}", escape(stage.stage.as_str()), escape(&stage.said)))
            .collect();
        rows.push(("Stages so far", lines.join("<br>")));
    }
    if let Some(next) = &notice.releases_to {
        rows.push(("Releases to", format!("<code>{}</code> {}", escape(next.stage.as_str()), escape(&next.said))));
    }
    if let Some(compared) = &notice.compared {
        for (label, values) in comparison_lines(compared) {
            let values: Vec<String> = values.iter().map(|value| escape(value)).collect();
            rows.push((label.trim_end_matches(':'), values.join("<br>")));
        }
    }
    if let Some(pause) = &notice.pause {
        rows.push(("Paused at", format!("<code>{}</code>", escape(&pause.stage))));
        rows.push((
            "Production",
            format!("{} of production traffic on the new revision", percent(pause.shifted_tenths)),
        ));
        let checks = match pause.checks.as_slice() {
            [] => "none ran".to_owned(),
            lines => lines.iter().map(|line| escape(line)).collect::<Vec<_>>().join("<br>"),
        };
        rows.push(("Checks", checks));
        let then = match pause.timeout_action {
            PauseAction::Continue => "ECS continues the deployment",
            PauseAction::Rollback => "ECS rolls the deployment back",
        };
        rows.push(("If nobody decides", then.to_owned()));
    }
    if let Some(named) = facts.named {
        let so_far: Vec<String> = named
            .signoffs
            .iter()
            .map(|signoff| format!("{} at {}", escape(&signoff.by), signoff.at.format("%Y-%m-%d %H:%M UTC")))
            .collect();
        let needed = named.required.saturating_sub(named.signoffs.len());
        let so_far = if so_far.is_empty() { "none yet".to_owned() } else { so_far.join("<br>") };
        rows.push(("Approved by", format!("{so_far}<br>{needed} more of {} needed", named.required)));
    }
    rows.push((
        "Expires",
        format!("{} ({})", facts.expires_at.format("%Y-%m-%d %H:%M UTC"), time_left(facts.expires_at - now)),
    ));
    let items: String = rows.iter().map(|(label, value)| format!("<dt>{label}</dt><dd>{value}</dd>")).collect();
    format!("<dl>{items}</dl>")
}

fn page(status: u16, title: &str, body: &str) -> Page {
    document(status, title, "", body)
}

fn capitalized(decision: ApprovalDecision) -> &'static str {
    match decision {
        ApprovalDecision::Approved => "Approved",
        ApprovalDecision::Rejected => "Rejected",
    }
}

fn short(commit: &str) -> String {
    escape(&commit.chars().take(7).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::present::html::content_security_policy;

    fn notice() -> ApprovalNotice {
        ApprovalNotice {
            pipeline: "web".into(),
            repository: "acme/web".into(),
            git_ref: "refs/heads/main".into(),
            commit: "9b2c5f0e3d1a4b7c".into(),
            message: "Fix <script>alert(1)</script> \"quotes\"".into(),
            pusher: "octocat".into(),
            compare_url: "javascript:alert(1)".into(),
            build_id: None,
            image_uri: Some("repo/web:1".into()),
            requested_at: Utc::now(),
            pause: None,
            earlier: Vec::new(),
            releases_to: None,
            compared: None,
            failed: None,
            frozen: None,
        }
    }

    #[test]
    fn while_the_pipeline_is_frozen_the_page_says_so_and_an_approval_says_it_waits_for_the_lift() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        let line = "frozen by arn:aws:iam::1:user/carol since 2026-11-24 11:50 UTC, until unfrozen: <incident>";
        let frozen = ApprovalNotice { frozen: Some(line.into()), ..notice() };
        let execution = ExecutionId::from("web-1");
        let facts = RunFacts {
            execution: &execution,
            notice: &frozen,
            expires_at: now + chrono::TimeDelta::hours(1),
            named: None,
        };
        let page = review(&facts, "FORM", now);
        assert!(
            page.html.contains(
                "<p class=\"bad\">Deployments of web are stopped: frozen by arn:aws:iam::1:user/carol since 2026-11-24 \
                 11:50 UTC, until unfrozen: &lt;incident&gt;. Your decision is recorded now"
            ),
            "{}",
            page.html
        );
        let approved = decided(&facts, ApprovalDecision::Approved, "Ada");
        assert!(approved.html.contains("the run waits before its deploy stage until the freeze lifts"));
        let paused = ApprovalNotice {
            pause: Some(crate::pipeline::PauseNotice {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                strategy: "ecs_canary".into(),
                shifted_tenths: 50,
                timeout_action: PauseAction::Rollback,
                checks: Vec::new(),
            }),
            ..frozen.clone()
        };
        let facts = RunFacts { notice: &paused, ..facts };
        let approved = decided(&facts, ApprovalDecision::Approved, "Ada");
        assert!(approved.html.contains("ECS continues the deployment once the freeze lifts, if it still waits"));
        let rejected = decided(&facts, ApprovalDecision::Rejected, "Ada");
        assert!(rejected.html.contains("ECS rolls the deployment back now"), "a rejection is never held");
        assert!(!review(&RunFacts { notice: &notice(), ..facts }, "FORM", now).html.contains("stopped"));
    }

    #[test]
    fn a_pauses_page_asks_to_continue_and_shows_the_stage_the_traffic_moved_the_checks_and_the_timeout_action() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        let notice = ApprovalNotice {
            pause: Some(crate::pipeline::PauseNotice {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                strategy: "ecs_canary".into(),
                shifted_tenths: 50,
                timeout_action: PauseAction::Rollback,
                checks: vec!["POST_TEST_TRAFFIC_SHIFT: passed (<ok>)".into()],
            }),
            ..notice()
        };
        let execution = ExecutionId::from("web-1");
        let facts = RunFacts {
            execution: &execution,
            notice: &notice,
            expires_at: now + chrono::TimeDelta::hours(1),
            named: None,
        };
        let page = review(&facts, "FORM", now);
        for expected in [
            "Continue web's ecs_canary deployment?",
            "<code>PRE_PRODUCTION_TRAFFIC_SHIFT</code>",
            "5% of production traffic on the new revision",
            "POST_TEST_TRAFFIC_SHIFT: passed (&lt;ok&gt;)",
            "<dt>If nobody decides</dt><dd>ECS rolls the deployment back</dd>",
            "rejecting rolls it back",
        ] {
            assert!(page.html.contains(expected), "{expected:?} in {}", page.html);
        }
        let rejected = decided(&facts, ApprovalDecision::Rejected, "Ada");
        assert!(rejected.html.contains("ECS rolls the deployment back now"), "{}", rejected.html);
        let late = pause_expired(now, PauseAction::Continue);
        assert_eq!(late.status, 410);
        assert!(
            late.html.contains("ECS took the pause's timeout action and continued the deployment"),
            "{}",
            late.html
        );
    }

    #[test]
    fn the_review_page_escapes_what_the_push_said_and_posts_back_with_its_form_token() {
        let now: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        let notice = notice();
        let execution = ExecutionId::from("web-1");
        let facts = RunFacts {
            execution: &execution,
            notice: &notice,
            expires_at: now + chrono::TimeDelta::hours(5),
            named: None,
        };
        let page = review(&facts, "FORM", now);
        assert_eq!(page.status, 200);
        assert!(page.html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &quot;quotes&quot;"), "{}", page.html);
        assert!(!page.html.contains("<script"), "no script on the page");
        assert!(!page.html.contains("javascript:"), "only https compare links are linked");
        assert!(page.html.contains("<form method=\"post\">"));
        assert!(page.html.contains("name=\"form_token\" value=\"FORM\""));
        assert!(page.html.contains("2026-11-24 17:00 UTC (in 5 hours)"));
        assert!(page.html.contains("name=\"viewport\""));
    }

    #[test]
    fn each_outcome_has_its_own_status() {
        let at: DateTime<Utc> = "2026-11-24T12:00:00Z".parse().expect("time");
        assert_eq!(not_found().status, 404);
        assert_eq!(expired(at).status, 410);
        assert!(expired(at).html.contains("2026-11-24 12:00 UTC"));
        let decided = already_decided(ApprovalDecision::Approved, "Ada <a>", Some(at));
        assert_eq!(decided.status, 409);
        assert!(decided.html.contains("Already approved") && decided.html.contains("Ada &lt;a&gt;"));
        assert_eq!(withdrawn("superseded by execution web-2").status, 410);
        assert_eq!(bad_request("x").status, 400);
        assert_eq!(method_not_allowed().status, 405);
    }

    #[test]
    fn the_policy_allows_the_page_style_and_nothing_else() {
        let policy = content_security_policy();
        assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"), "{policy}");
        assert!(policy.contains("form-action 'self'") && policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe"));
    }
}
