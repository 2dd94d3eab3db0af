//! A run's timeline: what happened to it, when, stage by stage, read from its record alone. What `make demo` prints
//! for its run and the operator's view of a run are this. Pure.

use chrono::{DateTime, Utc};

use super::text::{self, percent, span, test_verdict, tested_by};
use crate::pipeline::OutcomeReport;
use crate::pipeline::{
    ApprovalFacts, CommitOrder, Compared, DeployFacts, Execution, PipelineState, Signoff, Stage, Status, TestFacts,
    short_commit,
};

/// One thing that happened to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    pub at: DateTime<Utc>,
    /// `source`, `build`, a stage of the run's plan (`approval`, `deploy`, `staging`, ...) or `end`.
    pub stage: String,
    pub what: String,
}

fn decided(facts: &ApprovalFacts) -> Option<(DateTime<Utc>, String)> {
    let (decision, at) = (facts.decision?, facts.decided_at?);
    let by = facts.approver.as_deref().unwrap_or("someone");
    let comment = facts.comment.as_deref().filter(|c| !c.is_empty()).map(|c| format!(": \"{c}\"")).unwrap_or_default();
    Some((at, format!("{} by {by}{comment}", decision.name())))
}

/// How a push made in the same second as its ref's head was ordered.
fn ordered_by(compared: &Compared) -> String {
    let head = short_commit(&compared.head);
    let said = match compared.order {
        CommitOrder::Ahead => "GitHub's compare says it is newer",
        CommitOrder::Behind => "GitHub's compare says it is older",
        CommitOrder::Identical => "GitHub's compare says it is the same commit",
        CommitOrder::Diverged => {
            "GitHub's compare says neither descends from the other; the later arrival counts as newer"
        }
        CommitOrder::Unknown => "GitHub could not be asked which is newer; the later arrival counts as newer",
    };
    format!("pushed in the same second as {head}, which had run: {said}")
}

/// The source and build stages' moments of `run`.
fn source_and_build(run: &Execution) -> Vec<Moment> {
    let mut moments = Vec::new();
    let mut add =
        |at: DateTime<Utc>, stage: &str, what: String| moments.push(Moment { at, stage: stage.to_owned(), what });
    let source = &run.source;
    let (commit, git_ref, seq) = (short_commit(&source.commit), &source.git_ref, run.seq);
    let started = match &run.ordered {
        Some(ordered) => format!("{ordered}: {commit} of {git_ref} recorded as run #{seq}"),
        None => format!("push of {commit} to {git_ref} by {} recorded as run #{seq}", source.pusher),
    };
    add(run.created_at, "source", started);
    if let Some(compared) = source.compared.as_ref().filter(|_| run.ordered.is_none()) {
        add(run.created_at, "source", ordered_by(compared));
    }
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
    moments
}

/// Everything `run` records, oldest first (moments at the same time keep the order of the stages).
pub fn timeline(run: &Execution) -> Vec<Moment> {
    let mut moments = source_and_build(run);
    // An override comes before what it let happen at its stage.
    moments.extend(run.let_in.iter().map(|given| Moment {
        at: given.at,
        stage: given.stage.to_string(),
        what: format!("let through the freeze by {}: {}", given.by, given.reason),
    }));
    for record in &run.stages {
        let stage = record.name.as_str();
        let mut add = |at: DateTime<Utc>, what: String| moments.push(Moment { at, stage: stage.to_owned(), what });
        if let Some(approval) = &record.approval {
            approval_moments(approval, &mut add);
        }
        if let Some(deploy) = &record.deploy {
            deploy_moments(deploy, &mut add);
            let alarms = run.plan.deploy_stage(record.name).map(|planned| planned.alarms()).unwrap_or_default();
            soak_moments(deploy, alarms, &mut add);
        }
        if let Some(test) = &record.test {
            test_moments(test, &mut add);
        }
    }
    let mut add =
        |at: DateTime<Utc>, stage: &str, what: String| moments.push(Moment { at, stage: stage.to_owned(), what });
    if let Some(end) = run.finished_at.filter(|_| run.status.is_finished()) {
        let took = span(end - run.created_at);
        let reason = run.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        let outcome = if run.status == Status::Succeeded { "succeeded".to_owned() } else { run.status.to_string() };
        add(end, "end", format!("{outcome} after {took}{reason}"));
    }
    moments.sort_by_key(|moment| moment.at);
    moments
}

/// An approval stage's moments.
fn approval_moments(approval: &ApprovalFacts, add: &mut impl FnMut(DateTime<Utc>, String)) {
    add(
        approval.requested_at,
        format!("approval requested (expires {})", approval.expires_at.format("%Y-%m-%d %H:%M UTC")),
    );
    if let Some(sent) = approval.sent_at {
        match approval.personal.len() {
            0 => add(sent, format!("approval request mailed to {}", approval.topic_arn)),
            named => add(
                sent,
                format!(
                    "approval request mailed to {named} approvers, each their own link, through {}",
                    approval.topic_arn
                ),
            ),
        }
    }
    // Each named approver's approval but the one that decided (told below).
    let deciding = |signoff: &&Signoff| {
        Some(signoff.by.as_str()) == approval.approver.as_deref() && approval.decided_at == Some(signoff.at)
    };
    for (k, signoff) in approval.signoffs.iter().enumerate().filter(|(_, signoff)| !deciding(signoff)) {
        let comment = signoff.comment.as_deref().map(|comment| format!(": {comment}")).unwrap_or_default();
        add(signoff.at, format!("approved by {} (approval {}){comment}", signoff.by, k + 1));
    }
    if let Some((at, what)) = decided(approval) {
        add(at, what);
    }
}

/// A test stage's moments: its build started, and how the release did.
fn test_moments(test: &TestFacts, add: &mut impl FnMut(DateTime<Utc>, String)) {
    let id = test.build_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
    add(test.started_at, format!("{} started{id}", tested_by(test)));
    if let Some(end) = test.finished_at {
        add(end, test_verdict(test));
    }
}

/// A deploy stage's moments.
fn deploy_moments(deploy: &DeployFacts, add: &mut impl FnMut(DateTime<Utc>, String)) {
    let id = deploy.service_deployment.as_deref().or(deploy.deployment_id.as_deref());
    let id = id.map(|id| format!(" {id}")).unwrap_or_default();
    match deploy.let_in_at {
        // A stage with a gate: when the run reached the stage, then when the deployment started.
        Some(let_in) if let_in - deploy.started_at >= chrono::TimeDelta::minutes(1) => {
            add(deploy.started_at, "reached the stage (it has windows or entry alarms)".to_owned());
            let waited = span(let_in - deploy.started_at);
            add(
                let_in,
                format!("{} deployment{id} started, {waited} after the run reached the stage", deploy.strategy),
            );
        }
        _ => add(deploy.started_at, format!("{} deployment{id} started", deploy.strategy)),
    }
    for hook in &deploy.hooks {
        let verdict = if hook.passed { "passed" } else { "failed" };
        let detail = hook.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        add(hook.at, format!("{} checks {verdict}{detail}", hook.lifecycle_event));
    }
    for pause in &deploy.pauses {
        let moved = percent(pause.shifted_tenths);
        match &pause.approval {
            Some(approval) => {
                add(
                    approval.requested_at,
                    format!("paused at {} ({moved} of production moved); approval requested", pause.stage),
                );
                if let Some((at, what)) = decided(approval) {
                    add(at, format!("pause at {} {what}", pause.stage));
                }
            }
            None => add(deploy.started_at, format!("paused at {} before any traffic moved; continued", pause.stage)),
        }
    }
    if deploy.pauses_apart > 0 {
        let at = deploy.finished_at.unwrap_or(deploy.started_at);
        add(at, format!("{} pauses, kept with the run's record (sluice show-run shows them)", deploy.pauses_apart));
    }
    if let Some(at) = deploy.rolled_out_at {
        add(at, "rollout completed".to_owned());
    }
    if let Some(check) = &deploy.digest_check {
        let at = deploy.rolled_out_at.or(deploy.finished_at).unwrap_or(deploy.started_at);
        add(at, format!("digest check {}: {}", if check.passed() { "passed" } else { "failed" }, check.summary()));
    }
    if let Some(ordered) = &deploy.rollback_ordered {
        add(ordered.at, format!("rollback ordered by {}", ordered.by));
    }
    if let (Some(done), Some(soaked)) = (deploy.finished_at, deploy.soak_until) {
        add(done, format!("deployed; soaks until {}", soaked.format("%Y-%m-%d %H:%M:%S UTC")));
    }
}

/// A soak's alarms: those in ALARM before the deployment, the watch, and one that went into ALARM during it.
fn soak_moments(deploy: &DeployFacts, alarms: &[String], add: &mut impl FnMut(DateTime<Utc>, String)) {
    let before = deploy.in_alarm_before.as_deref().unwrap_or_default();
    if !before.is_empty() {
        let (names, was) = (before.join(", "), if before.len() == 1 { "was" } else { "were" });
        add(deploy.started_at, format!("{names} {was} already in ALARM before this deployment"));
    }
    if let (Some(done), Some(_), false) = (deploy.finished_at, deploy.soak_until, alarms.is_empty()) {
        add(done, format!("the soak is watched by {}", alarms.join(", ")));
    }
    if let Some(alarm) = &deploy.alarm {
        add(alarm.at, format!("alarm {} went into ALARM during the soak: {}", alarm.name, alarm.reason));
    }
}

/// The timeline as a person reads it, a line each: the time of day (UTC), the time since the push, the stage (on
/// its first line), what happened.
pub fn lines(run: &Execution) -> Vec<String> {
    let mut last = String::new();
    timeline(run)
        .into_iter()
        .map(|moment| {
            let stage = if moment.stage == last { String::new() } else { moment.stage.clone() };
            last = moment.stage;
            let since = format!("+{}", span(moment.at - run.created_at));
            format!("{} {since:<9} {stage:<9} {}", moment.at.format("%H:%M:%S"), moment.what)
        })
        .collect()
}

/// A run in a line, as `sluice history` lists it: number, when it was pushed, commit, pusher, how it stands or
/// ended, each stage's time, its id; then, on a line of its own, why it ended so (if it did not ship).
pub fn history_lines(run: &Execution) -> Vec<String> {
    let stages: Vec<String> = OutcomeReport::of(run)
        .stages
        .iter()
        .map(|stage| {
            let took = stage.finished_at.map_or_else(|| "…".to_owned(), |end| span(end - stage.started_at));
            format!("{} {took}", stage.stage)
        })
        .collect();
    let mut lines = vec![format!(
        "#{:<4} {}  {}  {:<12} {:<20} {}  {}",
        run.seq,
        run.created_at.format("%Y-%m-%d %H:%M"),
        short_commit(&run.source.commit),
        run.source.pusher,
        run.status.to_string(),
        stages.join(", "),
        run.id
    )];
    lines.extend(run.reason.as_ref().map(|reason| format!("       {reason}")));
    lines
}

/// What a run in progress of `state` waits for, at `now`: a run held out of a deploy stage, or at a pause approved
/// while frozen, waits for the freeze to lift; one whose start its stage's gate holds, for what opens it (`the
/// window opening ...`); one whose start the deployer tries again (a service busy with another deployment), why;
/// else as [`waits_for`] says.
pub fn waits_for_in(run: &Execution, state: &PipelineState, now: DateTime<Utc>) -> String {
    let frozen = state.frozen();
    let frozen_out = match run.status {
        Status::Waiting(stage) => run.plan.stage(stage).is_some_and(|planned| planned.deploy().is_some()),
        Status::Running(_) => run.deploying().is_some() && run.pauses().last().is_some_and(|pause| pause.held),
        _ => false,
    };
    match frozen.filter(|_| frozen_out) {
        Some(freeze) if matches!(run.status, Status::Waiting(_)) => {
            format!("the freeze to lift: {}", text::freeze(freeze))
        }
        Some(freeze) => format!("the freeze to lift, approved at its pause: {}", text::freeze(freeze)),
        None => match (held(run), outbox_waits(run, state)) {
            (Some(held), _) => held.to_owned(),
            (None, Some(why)) => format!("the deployer to start its deployment: {why}"),
            (None, None) => waits_for(run, now),
        },
    }
}

/// What a run whose stage's gate holds its start waits for (`the window opening ...`), as the deployer said.
fn held(run: &Execution) -> Option<&str> {
    run.deploying().and(run.deploy()).and_then(|deploy| deploy.held.as_deref())
}

/// What the last try of `run`'s deployment start, not made yet, said in `state`'s outbox.
fn outbox_waits<'a>(run: &Execution, state: &'a PipelineState) -> Option<&'a str> {
    let deploy = run.deploying().and(run.deploy())?;
    if deploy.deployment_id.is_some() || deploy.service_deployment.is_some() {
        return None;
    }
    state.pending_start(&run.id).and_then(|pending| pending.last_error.as_deref())
}

/// What a run in progress waits for, at `now`: its build, a decision (until when), its deployment, a pause, or its
/// turn at a stage another run holds.
pub fn waits_for(run: &Execution, now: DateTime<Utc>) -> String {
    let until = |at: DateTime<Utc>| {
        let left = if at > now { format!("{} left", span(at - now)) } else { "past its deadline".to_owned() };
        format!("{} UTC, {left}", at.format("%Y-%m-%d %H:%M"))
    };
    match run.status {
        Status::Waiting(stage) => format!("its turn at {stage}: an earlier run holds it"),
        Status::Running(Stage::BUILD) => match run.build.as_ref().and_then(|build| build.build_id.as_deref()) {
            Some(id) => format!("CodeBuild build {id}"),
            None => "CodeBuild to start its build".to_owned(),
        },
        Status::Running(_) if run.approving() => match run.approval() {
            Some(approval) => match run.named_approvers() {
                Some(approvers) => {
                    let so_far: Vec<&str> = approval.signoffs.iter().map(|signoff| signoff.by.as_str()).collect();
                    let by = if so_far.is_empty() { String::new() } else { format!(": {}", so_far.join(", ")) };
                    format!(
                        "{} more approval(s) of {}, until {} ({} of {} so far{by})",
                        approvers.required.saturating_sub(so_far.len()),
                        approvers.emails.join(", "),
                        until(approval.expires_at),
                        so_far.len(),
                        approvers.required,
                    )
                }
                None => format!("a decision, until {}", until(approval.expires_at)),
            },
            None => "its approval request to be sent".to_owned(),
        },
        Status::Running(stage) if let Some(test) = run.record(stage).and_then(|record| record.test.as_ref()) => {
            match (&test.build_id, test.project.as_str()) {
                (Some(id), _) => format!("CodeBuild test build {id}"),
                (None, "") => format!("its {} to run", tested_by(test)),
                (None, project) => format!("CodeBuild to start test project {project}"),
            }
        }
        Status::Running(stage) if let Some(soaked) = run.soaking() => {
            format!("the release to soak at {stage}, until {}", until(soaked))
        }
        Status::Running(_) if run.deploying().is_some() => {
            let deploy = run.deploy();
            if let Some(pause) = run.open_pause() {
                let expires = pause.approval.as_ref().map(|approval| until(approval.expires_at)).unwrap_or_default();
                return format!(
                    "a decision at the {} pause ({} of production moved), until {expires}",
                    pause.stage,
                    percent(pause.shifted_tenths)
                );
            }
            let hook = deploy
                .and_then(|deploy| deploy.hooks.last())
                .map(|hook| format!("; last hook {}", hook.lifecycle_event));
            match deploy.and_then(|deploy| deploy.service_deployment.as_deref().or(deploy.deployment_id.as_deref())) {
                Some(id) if deploy.is_some_and(|deploy| deploy.rolled_out_at.is_some()) => {
                    format!("its AfterRollout checks ({id} rolled out)")
                }
                Some(id) => format!(
                    "{} deployment {id}{}",
                    deploy.map_or("", |d| d.strategy.as_str()),
                    hook.unwrap_or_default()
                ),
                None => match held(run) {
                    Some(held) => held.to_owned(),
                    None => "the deployer to start its deployment".to_owned(),
                },
            }
        }
        _ => "nothing: it has ended".to_owned(),
    }
}

/// A run as `--json` gives it: who, what, how it stands or ended, each stage's times.
pub fn run_json(run: &Execution) -> serde_json::Value {
    let stages: Vec<serde_json::Value> = OutcomeReport::of(run)
        .stages
        .iter()
        .map(|stage| {
            serde_json::json!({
                "stage": stage.stage,
                "started": stage.started_at.to_rfc3339(),
                "finished": stage.finished_at.map(|at| at.to_rfc3339()),
                "seconds": stage.finished_at.map(|end| (end - stage.started_at).num_milliseconds() as f64 / 1000.0),
            })
        })
        .collect();
    serde_json::json!({
        "id": run.id,
        "pipeline": run.pipeline,
        "seq": run.seq,
        "status": run.status.name(),
        "stage": match run.status { Status::Waiting(stage) | Status::Running(stage) => Some(stage), _ => None },
        "reason": run.reason,
        "repository": run.source.repository,
        "ref": run.source.git_ref,
        "commit": run.source.commit,
        "pusher": run.source.pusher,
        "created": run.created_at.to_rfc3339(),
        "finished": run.finished_at.map(|at| at.to_rfc3339()),
        "stages": stages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::testing::push;
    use crate::definitions::ExecutionMode;
    use crate::pipeline::{ApprovalDecision, BuildFacts, Decision, DeployFacts, HookResult, PipelineState, transition};
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
        run.set_approval(ApprovalFacts {
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
        run.set_deploy(DeployFacts {
            deployment_id: Some("d-1".into()),
            hooks: vec![HookResult {
                lifecycle_event: "AfterAllowTestTraffic".into(),
                hook_execution_id: "h".into(),
                passed: true,
                detail: Some("1/1 passed".into()),
                millis: Some(12),
                at: at(320),
            }],
            finished_at: Some(at(400)),
            ..DeployFacts::new("blue_green", at(301))
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
    fn a_push_ordered_by_githubs_compare_says_so_under_its_source_line() {
        let mut run = execution(4);
        run.source.compared = Some(Compared { head: "d".repeat(40), order: CommitOrder::Ahead });
        let lines: Vec<String> = timeline(&run).into_iter().map(|m| format!("{} {}", m.stage, m.what)).collect();
        assert_eq!(
            lines[1],
            "source pushed in the same second as ddddddd, which had run: GitHub's compare says it is newer"
        );
        run.source.compared = Some(Compared { head: "d".repeat(40), order: CommitOrder::Unknown });
        let lines: Vec<String> = timeline(&run).into_iter().map(|m| m.what).collect();
        assert!(lines[1].ends_with("GitHub could not be asked which is newer; the later arrival counts as newer"));
    }

    #[test]
    fn an_override_reads_in_the_timeline_at_its_stage_with_who_and_why() {
        let mut run = execution(3);
        run.let_in = Some(crate::pipeline::Override {
            stage: crate::pipeline::Stage::DEPLOY,
            by: "arn:aws:iam::123456789012:user/dave".into(),
            reason: "the fix for incident 4312".into(),
            at: at(90),
        });
        let told = timeline(&run);
        let said = told.iter().find(|moment| moment.at == at(90)).expect("the override's moment");
        assert_eq!(said.stage, "deploy");
        assert_eq!(
            said.what,
            "let through the freeze by arn:aws:iam::123456789012:user/dave: the fix for incident 4312"
        );
    }

    #[test]
    fn a_run_in_progress_says_what_it_waits_for() {
        let mut run = execution(2);
        assert_eq!(waits_for(&run, at(5)), "CodeBuild to start its build");
        run.build = Some(BuildFacts {
            project: "web-build".into(),
            build_id: Some("web-build:7".into()),
            phase: None,
            image_uri: None,
            artifacts: None,
            started_at: at(1),
            finished_at: None,
        });
        assert_eq!(waits_for(&run, at(5)), "CodeBuild build web-build:7");
        run.status = Status::Running(Stage::APPROVAL);
        run.set_approval(ApprovalFacts { requested_at: at(60), expires_at: at(7260), ..Default::default() });
        assert_eq!(waits_for(&run, at(60)), "a decision, until 2026-11-24 12:01 UTC, 2h 00m left");
        assert_eq!(waits_for(&run, at(7300)), "a decision, until 2026-11-24 12:01 UTC, past its deadline");
        run.status = Status::Waiting(Stage::DEPLOY);
        assert_eq!(waits_for(&run, at(60)), "its turn at deploy: an earlier run holds it");
    }

    #[test]
    fn a_run_reads_in_history_as_a_line_and_its_reason_under_it() {
        let mut run = execution(12);
        run.status = Status::Failed;
        run.reason = Some("the build failed in phase BUILD".into());
        run.finished_at = Some(at(45));
        let lines = history_lines(&run);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("#12   2026-11-24 10:00  sha-web  octocat      failed "), "{lines:?}");
        assert!(lines[0].ends_with("  web-1"), "{lines:?}");
        assert_eq!(lines[1], "       the build failed in phase BUILD");
        assert_eq!(run_json(&run)["status"], "failed");
        assert_eq!(run_json(&run)["seq"], 12);
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
