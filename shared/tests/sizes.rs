//! Bounded sizes: a pipeline holding the most runs it may hold, each with every field at its largest, is stored in
//! one DynamoDB item well under the 400 KB limit, and every event it publishes is far under EventBridge's 256 KB.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sluice::adapters::{decode_state, encode_state};
use sluice::definitions::{
    Approval, BlueGreen, Build, Check, DeployTarget, ExecutionMode, MAX_CHECK_BODY, MAX_CHECK_RETRIES, MAX_CHECKS,
    MAX_ENV_NAME, MAX_ENV_VALUE, MAX_ENV_VARIABLES, MAX_URL, Notify,
};
use sluice::pipeline::outbox::{MAX_PARKED, MAX_PENDING_NOTICES};
use sluice::pipeline::{
    ApprovalDecision, BuildOutputs, CommitOrder, Compared, Decision, Effect, EffectKind, Event, ExecutionId,
    MAX_APPROVER, MAX_COMMENT, MAX_HOOK_RESULTS, MAX_REASON, MAX_SOURCE_IP, MAX_USER_AGENT, MAX_WAITING, PipelineState,
    Plan, REMEMBERED_PUSHES, REMEMBERED_REFS, RETAINED_FINISHED, SourceFacts, bounded, transition,
};
use sluice::usecases::MAX_MESSAGE;

/// DynamoDB's item limit, and the margin this test keeps below it: a fifth (each run may carry GitHub's comparison
/// of its commit with the ref's head, about 100 bytes, which took the fullest state just past three quarters).
const ITEM_LIMIT: usize = 400 * 1024;
const WELL_UNDER: usize = ITEM_LIMIT * 4 / 5;
const EVENT_LIMIT: usize = 256 * 1024;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

fn long(c: char, len: usize) -> String {
    std::iter::repeat_n(c, len).collect()
}

fn maximal_plan() -> Plan {
    let environment: BTreeMap<String, String> = (0..MAX_ENV_VARIABLES)
        .map(|i| (format!("{i:0>width$}", width = MAX_ENV_NAME), long('v', MAX_ENV_VALUE)))
        .collect();
    let checks = (0..MAX_CHECKS)
        .map(|_| Check {
            method: "OPTIONS".into(),
            expect_body: Some(long('b', MAX_CHECK_BODY)),
            retries: MAX_CHECK_RETRIES,
            ..Check::new("AfterAllowTestTraffic", format!("https://{}", long('h', MAX_URL - 8)))
        })
        .collect();
    Plan {
        github: Some(sluice::definitions::GitHubReport { environment: long('e', 255) }),
        build: Build { project: long('p', 255), environment },
        stages: sluice::definitions::table_stages(
            Some(Approval { topic_arn: long('t', 256), timeout_secs: 3600, approvers: None }),
            DeployTarget::BlueGreen(BlueGreen {
                cluster: long('c', 255),
                service: long('s', 255),
                application: long('a', 100),
                deployment_group: long('g', 100),
                deployment_config: long('d', 100),
                container: Some(long('n', 255)),
                checks,
                allow_host: true,
            }),
            Some(7 * 24 * 60),
        ),
        notify: Some(Notify { topic_arn: long('n', 256) }),
    }
}

fn maximal_push(n: usize) -> Event {
    // What the webhook stores of a push: each string bounded, and the message cut.
    let huge = long('m', 100_000);
    Event::Triggered {
        execution_id: ExecutionId(format!("{}-{n}", long('e', 100))),
        source: SourceFacts {
            repository: bounded(&huge, 256),
            commit: format!("{n:0>40}"),
            before: format!("{:0>40}", n + 1_000),
            git_ref: format!("refs/heads/{}", bounded(&huge, 240)),
            pusher: bounded(&huge, 256),
            pusher_email: Some(bounded(&huge, 256)),
            delivery_id: long('d', 128),
            message: bounded(&huge, MAX_MESSAGE),
            compare_url: bounded(&huge, 512),
            pushed_at: chrono::DateTime::from_timestamp(4_102_444_799 - 100_000 + n as i64, 0),
            hook_id: Some(u64::MAX),
            compared: Some(Compared { head: "f".repeat(64), order: CommitOrder::Diverged }),
        },
        plan: Box::new(maximal_plan()),
        mode: ExecutionMode::Queued,
        ordered: None,
    }
}

fn apply(state: &mut PipelineState, event: Event, minute: i64, effects: &mut Vec<Effect>) {
    match transition(state, &event, at(minute)) {
        Ok(Decision::Apply { state: next, effects: more }) => {
            *state = next;
            effects.extend(more);
        }
        other => panic!("{} did not apply: {other:?}", event.name()),
    }
}

/// Takes execution `n` from its push through a deployment with every hook reported, leaving it deploying.
fn deploy(state: &mut PipelineState, n: usize, effects: &mut Vec<Effect>) -> ExecutionId {
    apply(state, maximal_push(n), 0, effects);
    let id = ExecutionId(format!("{}-{n}", long('e', 100)));
    let build_id = format!("arn:aws:codebuild:us-east-1:123456789012:build/{}:{n}", long('p', 255));
    let outputs = BuildOutputs { image_uri: long('i', 1024), artifacts: Some(format!("s3://{}", long('k', 1080))) };
    apply(state, Event::BuildSucceeded { execution_id: id.clone(), build_id, outputs }, 1, effects);
    // The request went out (a SHA-256 in hex is what is kept of its link), then a person decided, saying as much as
    // a form may carry; the machine keeps each field to its bound.
    let token_hash = long('f', 64);
    apply(
        state,
        Event::ApprovalSent {
            execution_id: id.clone(),
            token_hash: token_hash.clone(),
            personal: Vec::new(),
            hook_id: None,
            // What the request showed of the release against the running service, far over its bounds.
            compared: Some(Box::new(sluice::pipeline::ReleaseComparison {
                running: Some(long('r', 10_000)),
                running_image: Some(long('o', 10_000)),
                image: long('i', 10_000),
                changes: vec![long('x', 10_000); 100],
                unread: None,
            })),
        },
        1,
        effects,
    );
    let decided = Event::ApprovalDecided {
        execution_id: id.clone(),
        decision: ApprovalDecision::Approved,
        approver: long('a', 10_000),
        comment: Some(long('c', 10_000)),
        token_hash: Some(token_hash),
        source_ip: Some(long('9', 10_000)),
        user_agent: Some(long('u', 10_000)),
    };
    apply(state, decided, 2, effects);
    let deployment_id = format!("d-{n:0>9}");
    apply(
        state,
        Event::DeploymentStarted {
            execution_id: id.clone(),
            deployment_id: deployment_id.clone(),
            service_deployment: Some(long('s', 10_000)),
            task_definition: Some(long('t', 10_000)),
            previous_task_definition: Some(long('p', 10_000)),
            in_alarm: None,
        },
        3,
        effects,
    );
    for hook in 0..MAX_HOOK_RESULTS + 3 {
        let completed = Event::HookCompleted {
            execution_id: id.clone(),
            deployment_id: deployment_id.clone(),
            lifecycle_event: "AfterAllowTestTraffic".into(),
            hook_execution_id: format!("{}-{hook}", long('h', 100)),
            passed: true,
            detail: Some(long('x', 10_000)),
            millis: Some(u64::MAX),
        };
        apply(state, completed, 4, effects);
    }
    id
}

#[test]
fn the_fullest_pipeline_state_is_stored_well_under_dynamodbs_item_limit_and_its_events_under_eventbridges() {
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    let mut effects = Vec::new();
    // GIVEN runs that finished (each deployed with every hook, then failed with the longest reason) ...
    for n in 0..RETAINED_FINISHED + 2 {
        let id = deploy(&mut state, n, &mut effects);
        let failed = Event::DeploymentFailed {
            execution_id: id,
            deployment_id: None,
            reason: long('r', 100_000),
            rolled_back: true,
        };
        apply(&mut state, failed, 5, &mut effects);
    }
    // ... one deploying, one waiting for approval behind it, one building, and the most that may wait ...
    deploy(&mut state, 100, &mut effects);
    let mut n = 200;
    while state.waiting() < MAX_WAITING {
        apply(&mut state, maximal_push(n), 6, &mut effects);
        n += 1;
    }
    // ... pushes remembered on as many refs as are kept, and the most effects parked and pending (each finished
    // run's outcome notification among them).
    for r in 0..REMEMBERED_REFS {
        state.refs.push(sluice::pipeline::RefHistory {
            git_ref: format!("refs/heads/{}", long('b', 240)),
            pushes: (0..REMEMBERED_PUSHES)
                .map(|p| sluice::pipeline::PushLink {
                    before: format!("{r}{p:0>39}"),
                    after: format!("{p}{r:0>39}"),
                    pushed_at: chrono::DateTime::from_timestamp(4_102_444_799 - 100_000 + n as i64, 0),
                })
                .collect(),
        });
    }
    let version = 7;
    state.enqueue(effects.clone(), version);
    state.drop_moot();
    let build = effects.iter().find(|e| e.kind() == EffectKind::StartBuild).cloned().expect("a build was started");
    for _ in 0..=MAX_PARKED {
        state.enqueue(vec![build.clone()], version);
        let id = state.pending.last().map(|p| p.id.clone()).unwrap_or_default();
        state.fail(&id, &long('!', 10_000), true, at(7));
    }
    state.pending.retain(|p| !matches!(p.effect, Effect::Publish(_)));

    assert_eq!(state.executions.len(), RETAINED_FINISHED + 3 + MAX_WAITING - 1, "{}", state.executions.len());
    assert_eq!(state.parked.len(), MAX_PARKED);
    let notices = state.pending.iter().filter(|p| p.effect.kind() == EffectKind::NotifyOutcome).count();
    assert_eq!(notices, MAX_PENDING_NOTICES, "only the newest outcome notifications wait");

    // WHEN it is written as DynamoDB's state item
    let item = encode_state(&state).expect("encodes");

    // THEN it is well under the item limit, and reads back as it was
    assert!(item.len() < WELL_UNDER, "the state item is {} bytes", item.len());
    assert_eq!(decode_state(&item).expect("decodes"), state.stored());
    // AND every event the runs published is far under EventBridge's entry limit
    for effect in &effects {
        if let Effect::Publish(event) = effect {
            let size = event.detail().to_string().len();
            assert!(size < EVENT_LIMIT / 16, "{} is {size} bytes", event.detail_type());
        }
    }
    // AND every reason and every approval's words were cut to their bounds
    assert!(state.executions.iter().filter_map(|e| e.reason.as_ref()).all(|r| r.len() <= MAX_REASON));
    let approvals: Vec<_> = state.executions.iter().filter_map(|e| e.approval()).collect();
    assert!(approvals.iter().filter(|a| a.decision.is_some()).count() > RETAINED_FINISHED);
    for approval in approvals.iter().filter(|a| a.decision.is_some()) {
        assert_eq!(approval.approver.as_ref().map(String::len), Some(MAX_APPROVER));
        assert_eq!(approval.comment.as_ref().map(String::len), Some(MAX_COMMENT));
        assert_eq!(approval.source_ip.as_ref().map(String::len), Some(MAX_SOURCE_IP));
        assert_eq!(approval.user_agent.as_ref().map(String::len), Some(MAX_USER_AGENT));
        assert_eq!(approval.token_hash.as_ref().map(String::len), Some(64));
    }
    println!("state item: {} bytes for {} executions", item.len(), state.executions.len());
}
