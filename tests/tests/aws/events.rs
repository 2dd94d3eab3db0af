//! `EventBridgePublisher` against EventBridge in moto: events published by sluice reach the SQS target of the rule
//! `template.yaml` has for their detail-type, with the detail `infra/events.md` documents.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sluice::adapters::EventBridgePublisher;
use sluice::contract::events::{EffectsDue, SluiceEvent, TestRequested};
use sluice::contract::ports::{EventPublisher, PublishError};
use sluice::definitions::{
    Check, CircuitBreaker, DeployTarget, EcsNative, PauseAction, PauseApproval, Rolling, TrafficShift,
};
use sluice::pipeline::{ApprovalDecision, BuildOutputs, EffectKind, Event, ExecutionId};
use sluice_integration::{Stack, workspace_root};

use sluice::contract::testing::published_by;

use crate::{at, push};

const WAIT: Duration = Duration::from_secs(10);
/// How long to listen for what must not come.
const QUIET: Duration = Duration::from_secs(2);

/// The detail-type -> example detail pairs of `infra/events.md` (each `## <detail-type>` heading, then a JSON block).
fn documented_details() -> Result<BTreeMap<String, Value>> {
    let text = std::fs::read_to_string(workspace_root().join("infra/events.md"))?;
    let mut details = BTreeMap::new();
    let mut heading = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix("## ") {
            heading = Some(title.trim().to_owned());
        } else if line.trim() == "```json" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            let name = heading.take().context("a JSON block without a heading in infra/events.md")?;
            let value = serde_json::from_str(&block.join("\n")).with_context(|| format!("infra/events.md: {name}"))?;
            details.insert(name, value);
        }
    }
    Ok(details)
}

/// The same fields, recursively, as the documented example (values may differ; `null` stands for any value).
fn same_shape(documented: &Value, actual: &Value, path: &str) -> Result<()> {
    match (documented, actual) {
        (Value::Object(doc), Value::Object(act)) => {
            let doc_keys: Vec<&String> = doc.keys().collect();
            let act_keys: Vec<&String> = act.keys().collect();
            if doc_keys != act_keys {
                bail!("{path}: documented fields {doc_keys:?}, published {act_keys:?}");
            }
            for (key, value) in doc {
                same_shape(value, &act[key], &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Value::Null, _) | (_, Value::Null) => Ok(()),
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        (Value::Array(doc), Value::Array(act)) => match (doc.first(), act.first()) {
            (Some(doc), Some(act)) => same_shape(doc, act, &format!("{path}[0]")),
            _ => Ok(()),
        },
        _ => bail!("{path}: documented {documented}, published {actual}"),
    }
}

/// Run e1 built and approved: `pushed`, its build's success, its approval.
fn built_and_approved(pushed: Event) -> [Event; 3] {
    let e1 = ExecutionId::from("e1");
    [
        pushed,
        Event::BuildSucceeded {
            execution_id: e1.clone(),
            build_id: "arn:aws:codebuild:eu-west-1:123456789012:build/web-build:1".into(),
            outputs: BuildOutputs {
                image_uri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:abc".into(),
                artifacts: Some("s3://sluice-artifacts/web/e1.zip".into()),
            },
        },
        Event::ApprovalDecided {
            execution_id: e1,
            decision: ApprovalDecision::Approved,
            approver: "alice@example.com".into(),
            comment: None,
            token_hash: None,
            source_ip: None,
            user_agent: None,
        },
    ]
}

/// The events a run publishes from push to success: started, approval requested, deployment requested, finished.
fn a_runs_events() -> Vec<SluiceEvent> {
    let succeeded =
        Event::DeploymentSucceeded { execution_id: ExecutionId::from("e1"), deployment_id: "d-1".into(), tasks: None };
    let events: Vec<Event> = built_and_approved(push("e1")).into_iter().chain([succeeded]).collect();
    published_by(&events, at(0))
}

/// What a rolling run whose AfterRollout checks fail publishes once ECS has completed its rollout: the checks'
/// doorbell, then the rollback's.
fn a_rolling_runs_check_events() -> Vec<SluiceEvent> {
    let e1 = ExecutionId::from("e1");
    let mut pushed = push("e1");
    if let Event::Triggered { plan, .. } = &mut pushed {
        let checks = vec![Check::new("AfterRollout", "http://api.internal/health")];
        *plan.target_mut() =
            DeployTarget::Rolling(Rolling { service: "api".into(), ..sluice::contract::testing::rolling(checks) });
    }
    let deployment_id = "ecs-svc/1234567890123456789".to_owned();
    let rolled_out = [
        Event::DeploymentStarted {
            execution_id: e1.clone(),
            deployment_id: deployment_id.clone(),
            service_deployment: None,
            task_definition: Some("arn:aws:ecs:eu-west-1:123456789012:task-definition/api:42".into()),
            previous_task_definition: Some("arn:aws:ecs:eu-west-1:123456789012:task-definition/api:41".into()),
            in_alarm: None,
        },
        Event::DeploymentSucceeded { execution_id: e1.clone(), deployment_id: deployment_id.clone(), tasks: None },
        Event::HookCompleted {
            execution_id: e1,
            deployment_id: deployment_id.clone(),
            lifecycle_event: "AfterRollout".into(),
            hook_execution_id: format!("AfterRollout:{deployment_id}"),
            passed: false,
            detail: Some("check 1 GET http://api.internal/health: answered 500, expected 200".into()),
            millis: Some(12),
        },
    ];
    let events: Vec<Event> = built_and_approved(pushed).into_iter().chain(rolled_out).collect();
    published_by(&events, at(0))
        .into_iter()
        .filter(|event| matches!(event, SluiceEvent::ChecksRequested(_) | SluiceEvent::RollbackRequested(_)))
        .collect()
}

/// What a canary run paused after its canary step publishes: the pause, its approval request, the decision at it.
fn a_paused_runs_events() -> Vec<SluiceEvent> {
    let e1 = ExecutionId::from("e1");
    let mut pushed = push("e1");
    let arn = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/r9i43YFjvgF_xlg7m2eJ1r".to_owned();
    if let Event::Triggered { plan, .. } = &mut pushed {
        *plan.target_mut() = DeployTarget::EcsNative(EcsNative {
            cluster: "prod".into(),
            service: "web".into(),
            shift: TrafficShift::Canary { tenths: 200, bake_time_minutes: 10 },
            bake_time_minutes: 0,
            alarms: Vec::new(),
            circuit_breaker: CircuitBreaker { enable: true, rollback: true },
            container: None,
            checks: Vec::new(),
            approval: Some(PauseApproval {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                topic_arn: "arn:aws:sns:eu-west-1:123456789012:web-approvals".into(),
                timeout_minutes: 60,
                on_timeout: PauseAction::Rollback,
            }),
            allow_host: false,
        });
    }
    let paused = |hook_id: &str| Event::DeploymentPaused {
        execution_id: e1.clone(),
        service_deployment: arn.clone(),
        hook_id: hook_id.into(),
        stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
        expires_at: None,
        timeout_action: None,
    };
    let deploying = [
        Event::DeploymentStarted {
            execution_id: e1.clone(),
            deployment_id: "ecs-svc/1234567890123456789".into(),
            service_deployment: Some(arn.clone()),
            task_definition: None,
            previous_task_definition: None,
            in_alarm: None,
        },
        paused("ecs-pause-1"),
        paused("ecs-pause-2"),
        Event::ApprovalDecided {
            execution_id: e1.clone(),
            decision: ApprovalDecision::Approved,
            approver: "alice@example.com".into(),
            comment: Some("canary looks healthy".into()),
            token_hash: None,
            source_ip: None,
            user_agent: None,
        },
    ];
    let events: Vec<Event> = built_and_approved(pushed).into_iter().chain(deploying).collect();
    // The second pause's: the first, before any production traffic moved, asked nobody.
    let published = published_by(&events, at(0));
    let pause = published.iter().rev().find(|e| matches!(e, SluiceEvent::DeploymentPaused(_))).cloned();
    let asked = published.iter().rev().find(|e| matches!(e, SluiceEvent::ApprovalRequested(_))).cloned();
    let decided = published.iter().rev().find(|e| matches!(e, SluiceEvent::ApprovalDecided(_))).cloned();
    [pause, asked, decided].into_iter().flatten().collect()
}

#[tokio::test]
async fn a_pause_reaches_the_deployer_and_the_approval_function_and_only_a_decision_at_a_pause_the_deployer()
-> Result<()> {
    let stack = Stack::create().await?;
    let publisher = EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone());
    let events = a_paused_runs_events();
    let types: Vec<&str> = events.iter().map(SluiceEvent::detail_type).collect();
    assert_eq!(types, ["Deployment Paused", "Approval Requested", "Approval Decided"]);
    // The stage approval's decision too: it must not reach the deployer's pause rule.
    let stage_decision = a_runs_events().into_iter().find(|e| matches!(e, SluiceEvent::ApprovalDecided(_)));
    publisher.publish(&events).await?;
    publisher.publish(&stage_decision.into_iter().collect::<Vec<_>>()).await?;
    for (rule, sent) in [
        ("DeploymentRequestedRule", &events[0]),
        ("ApprovalRequestedRule", &events[1]),
        ("PauseDecidedRule", &events[2]),
    ] {
        let received = stack.receive(stack.queue(rule)?, 1, WAIT).await?;
        assert_eq!(received.len(), 1, "{rule} received {received:#?}");
        let parsed = SluiceEvent::from_parts(sent.detail_type(), received[0]["detail"].clone())?;
        assert_eq!(&parsed, sent, "{rule} received the event published");
    }
    for rule in ["DeploymentRequestedRule", "ApprovalRequestedRule", "PauseDecidedRule"] {
        let extra = stack.receive(stack.queue(rule)?, 1, QUIET).await?;
        assert!(extra.is_empty(), "{rule} also received {extra:#?}");
    }
    Ok(())
}

/// The reconciler's doorbells: an approval request due, a deployment due (for another function), a GitHub report due.
fn doorbells() -> Vec<SluiceEvent> {
    [EffectKind::RequestApproval, EffectKind::StartDeployment, EffectKind::ReportToGitHub]
        .into_iter()
        .map(|kind| {
            SluiceEvent::EffectsDue(EffectsDue {
                pipeline: "web".into(),
                execution_id: ExecutionId::from("e1"),
                kinds: vec![kind],
            })
        })
        .collect()
}

#[tokio::test]
async fn each_event_of_a_run_reaches_the_rule_for_its_detail_type_with_the_documented_detail() -> Result<()> {
    let stack = Stack::create().await?;
    let publisher = EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone());
    let mut events = a_runs_events();
    let types: Vec<&str> = events.iter().map(SluiceEvent::detail_type).collect();
    assert_eq!(
        types,
        ["Execution Started", "Approval Requested", "Approval Decided", "Deployment Requested", "Execution Finished"]
    );
    events.extend(doorbells());

    publisher.publish(&events).await?;

    let documented = documented_details()?;
    for (rule, detail_type) in [
        ("ApprovalRequestedRule", "Approval Requested"),
        // The approval request's doorbell only: the deployment's is for the deployer.
        ("ApprovalDueRule", "Effects Due"),
        ("DeploymentRequestedRule", "Deployment Requested"),
        ("ExecutionFinishedRule", "Execution Finished"),
    ] {
        let received = stack.receive(stack.queue(rule)?, 1, WAIT).await?;
        assert_eq!(received.len(), 1, "{rule} received {received:#?}");
        let envelope = &received[0];
        assert_eq!(envelope["source"], "sluice");
        assert_eq!(envelope["detail-type"], detail_type, "{rule} matched another detail-type");
        assert_eq!(envelope["resources"][0], "sluice:pipeline/web");
        let sent = events.iter().find(|e| e.detail_type() == detail_type).context("published")?;
        let parsed = SluiceEvent::from_parts(detail_type, envelope["detail"].clone())?;
        assert_eq!(&parsed, sent, "the detail reads back as the event published");
        let example = documented.get(detail_type).with_context(|| format!("infra/events.md lacks {detail_type}"))?;
        same_shape(example, &envelope["detail"], detail_type)?;
    }
    // The GitHub report's doorbell reaches the notifier, and only it.
    let due = stack.receive(stack.queue("OutcomeNotificationDueRule")?, 1, WAIT).await?;
    assert_eq!(due.len(), 1, "{due:#?}");
    assert_eq!(due[0]["detail"]["kinds"], serde_json::json!(["report_to_github"]), "{}", due[0]);
    // Nothing else arrived: each rule took only its own detail-type.
    for rule in [
        "ApprovalRequestedRule",
        "ApprovalDueRule",
        "OutcomeNotificationDueRule",
        "DeploymentRequestedRule",
        "ExecutionFinishedRule",
        "CodeBuildStateChangeRule",
    ] {
        let extra = stack.receive(stack.queue(rule)?, 1, QUIET).await?;
        assert!(extra.is_empty(), "{rule} also received {extra:#?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_rolling_runs_checks_reach_the_hooks_function_and_its_rollback_the_deployer() -> Result<()> {
    let stack = Stack::create().await?;
    let publisher = EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone());
    let events = a_rolling_runs_check_events();
    let types: Vec<&str> = events.iter().map(SluiceEvent::detail_type).collect();
    assert_eq!(types, ["Checks Requested", "Rollback Requested"]);
    publisher.publish(&events).await?;
    for (rule, sent) in [("ChecksRequestedRule", &events[0]), ("DeploymentRequestedRule", &events[1])] {
        let received = stack.receive(stack.queue(rule)?, 1, WAIT).await?;
        assert_eq!(received.len(), 1, "{rule} received {received:#?}");
        let parsed = SluiceEvent::from_parts(sent.detail_type(), received[0]["detail"].clone())?;
        assert_eq!(&parsed, sent, "{rule} received the event published");
    }
    for rule in ["ChecksRequestedRule", "DeploymentRequestedRule", "ExecutionFinishedRule"] {
        let extra = stack.receive(stack.queue(rule)?, 1, QUIET).await?;
        assert!(extra.is_empty(), "{rule} also received {extra:#?}");
    }
    Ok(())
}

/// What a run entering its test stage publishes: `Test Requested`.
fn a_tested_runs_events() -> Vec<SluiceEvent> {
    let events = sluice::contract::testing::to_e2e("e1");
    published_by(&events, at(0)).into_iter().filter(|e| matches!(e, SluiceEvent::TestRequested(_))).collect()
}

#[tokio::test]
async fn a_test_stages_request_reaches_build_events_or_the_hooks_function_as_it_says_with_the_documented_detail()
-> Result<()> {
    let stack = Stack::create().await?;
    let publisher = EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone());
    let mut events = a_tested_runs_events();
    let types: Vec<&str> = events.iter().map(SluiceEvent::detail_type).collect();
    assert_eq!(types, ["Test Requested"]);
    // And the same run at a test stage of checks
    if let Some(SluiceEvent::TestRequested(codebuild)) = events.first() {
        let checks = TestRequested { tests: "checks".into(), project: None, checks: 2, ..codebuild.clone() };
        events.push(SluiceEvent::TestRequested(checks));
    }
    publisher.publish(&events).await?;
    let documented = documented_details()?;
    for (rule, sent) in [("TestRequestedRule", &events[0]), ("TestChecksRequestedRule", &events[1])] {
        let received = stack.receive(stack.queue(rule)?, 1, WAIT).await?;
        assert_eq!(received.len(), 1, "{rule}: {received:#?}");
        let parsed = SluiceEvent::from_parts("Test Requested", received[0]["detail"].clone())?;
        assert_eq!(&parsed, sent, "{rule} received its own");
        same_shape(documented.get("Test Requested").context("documented")?, &received[0]["detail"], "Test Requested")?;
    }
    for rule in [
        "TestRequestedRule",
        "TestChecksRequestedRule",
        "DeploymentRequestedRule",
        "ChecksRequestedRule",
        "ExecutionFinishedRule",
        "CodeBuildStateChangeRule",
    ] {
        let extra = stack.receive(stack.queue(rule)?, 1, QUIET).await?;
        assert!(extra.is_empty(), "{rule} also received {extra:#?}");
    }
    Ok(())
}

#[tokio::test]
async fn every_published_detail_type_is_documented_with_its_fields() -> Result<()> {
    let documented = documented_details()?;
    let mut events = a_runs_events();
    events.extend(a_tested_runs_events());
    events.extend(a_rolling_runs_check_events());
    events.extend(doorbells().into_iter().take(1));
    events.extend(a_paused_runs_events().into_iter().take(1));
    events.push(soak_ended());
    for event in &events {
        let example =
            documented.get(event.detail_type()).with_context(|| format!("{} undocumented", event.detail_type()))?;
        same_shape(example, &event.detail(), event.detail_type())?;
        // The documented example itself reads as the event it documents.
        SluiceEvent::from_parts(event.detail_type(), example.clone())?;
    }
    assert_eq!(documented.len(), events.len(), "infra/events.md documents an event sluice does not publish");
    Ok(())
}

#[tokio::test]
async fn more_events_than_one_put_events_call_takes_all_arrive() -> Result<()> {
    let stack = Stack::create().await?;
    let publisher = EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone());
    let finished = a_runs_events().pop().context("a finished event")?;
    let many: Vec<SluiceEvent> = (0..13)
        .map(|n| {
            let mut event = finished.clone();
            if let SluiceEvent::ExecutionFinished(f) = &mut event {
                f.execution_id = ExecutionId(format!("e{n}"));
            }
            event
        })
        .collect();

    publisher.publish(&many).await?;

    let received = stack.receive(stack.queue_to("NotifierFunction", "Execution Finished")?, many.len(), WAIT).await?;
    let mut ids: Vec<String> =
        received.iter().filter_map(|e| e["detail"]["execution_id"].as_str().map(str::to_owned)).collect();
    ids.sort_by_key(|id| id[1..].parse::<u32>().unwrap_or(0));
    assert_eq!(ids, (0..13).map(|n| format!("e{n}")).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn publishing_to_a_bus_that_does_not_exist_is_an_error_not_a_silent_loss() -> Result<()> {
    let stack = Stack::create().await?;
    let publisher = EventBridgePublisher::new(stack.eventbridge.clone(), "no-such-bus");
    let result = publisher.publish(&a_runs_events()).await;
    assert!(matches!(result, Err(PublishError::Rejected { .. } | PublishError::Unavailable { .. })), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn a_codebuild_state_change_of_a_project_sluice_may_start_reaches_the_codebuild_rule_and_others_do_not()
-> Result<()> {
    let stack = Stack::create().await?;
    // AWS's documented sample event, as the aws_lambda_events crate ships it: its project, my-sample-project, is not
    // one the stack may start (the harness deploys it with BuildProjects = *-build*).
    let fixture: Value =
        serde_json::from_str(include_str!("../../../shared/tests/fixtures/example-codebuild-state-change.json"))?;
    let put = |detail: Value| {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&stack.default_bus)
            .source("aws.codebuild")
            .detail_type("CodeBuild Build State Change")
            .detail(detail.to_string())
            .build();
        stack.eventbridge.put_events().entries(entry).send()
    };
    assert_eq!(put(fixture["detail"].clone()).await?.failed_entry_count(), 0);
    assert!(
        stack
            .receive(stack.queue_to("BuildEventsFunction", "CodeBuild Build State Change")?, 1, QUIET)
            .await?
            .is_empty()
    );
    // The same event of a project the stack may start arrives, and reads as AWS's type reads it.
    let mut ours = fixture["detail"].clone();
    ours["project-name"] = json!("web-build");
    assert_eq!(put(ours).await?.failed_entry_count(), 0);
    let received =
        stack.receive(stack.queue_to("BuildEventsFunction", "CodeBuild Build State Change")?, 1, WAIT).await?;
    assert_eq!(received.len(), 1);
    let event: aws_lambda_events::event::codebuild::CodeBuildEvent = serde_json::from_value(received[0].clone())?;
    assert_eq!(event.detail.build_status.as_deref(), Some("SUCCEEDED"));
    assert_eq!(event.detail.project_name.as_deref(), Some("web-build"));
    // sluice's own events do not reach it.
    let finished = a_runs_events().pop().context("a finished event")?;
    EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone()).publish(&[finished]).await?;
    assert!(
        stack
            .receive(stack.queue_to("BuildEventsFunction", "CodeBuild Build State Change")?, 1, QUIET)
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn codedeploy_state_changes_reach_the_deployment_rule_only_for_the_stacks_applications_and_ecs_ones_always()
-> Result<()> {
    let stack = Stack::create().await?;
    let fixture: Value =
        serde_json::from_str(include_str!("../../../shared/tests/fixtures/example-codedeploy-deployment-event.json"))?;
    let put = |source: &str, detail_type: &str, detail: Value| {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&stack.default_bus)
            .source(source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        stack.eventbridge.put_events().entries(entry).send()
    };
    let codedeploy = "CodeDeploy Deployment State-change Notification";
    // Another application's deployment (the harness deploys with DeployApplications = web*): not delivered
    let mut theirs = fixture["detail"].clone();
    theirs["application"] = json!("billing");
    put("aws.codedeploy", codedeploy, theirs).await?;
    assert!(
        stack
            .receive(stack.queue_to("DeployEventsFunction", "ECS Deployment State Change")?, 1, QUIET)
            .await?
            .is_empty()
    );
    // One of the stack's applications, and an ECS hook state change: both delivered
    let mut ours = fixture["detail"].clone();
    ours["application"] = json!("web");
    put("aws.codedeploy", codedeploy, ours).await?;
    put("aws.ecs", "ECS Hook State Change", json!({ "eventName": "HOOK_AWAITING_ACTION" })).await?;
    let received =
        stack.receive(stack.queue_to("DeployEventsFunction", "ECS Deployment State Change")?, 2, WAIT).await?;
    let sources: std::collections::BTreeSet<&str> = received.iter().filter_map(|e| e["source"].as_str()).collect();
    assert_eq!(sources, std::collections::BTreeSet::from(["aws.codedeploy", "aws.ecs"]));
    Ok(())
}

#[test]
fn every_rule_target_is_retried_and_keeps_what_it_could_not_deliver_in_a_queue_that_accepts_it() -> Result<()> {
    let template = sluice_integration::Template::load()?;
    let targets = template.rule_targets();
    assert!(targets.len() >= 10, "{targets:#?}");
    for target in targets {
        let what = format!("rule {} target {}", target.rule, target.id);
        assert!(target.retry_policy, "{what} has no RetryPolicy");
        let queue = target.dead_letters.with_context(|| format!("{what} has no DeadLetterConfig"))?;
        let senders = template.queue_senders(&queue);
        assert!(senders.contains(&target.rule), "{queue}'s policy does not let {what} send to it: {senders:?}");
    }
    Ok(())
}

/// The reconciler's doorbell for a soak watched by alarms that is over.
fn soak_ended() -> SluiceEvent {
    SluiceEvent::SoakEnded(sluice::contract::events::SoakEnded {
        pipeline: "web".into(),
        execution_id: ExecutionId::from("e1"),
        stage: sluice::pipeline::Stage::new("staging").expect("a stage name"),
        alarms: vec!["web-staging-5xx".into()],
    })
}

/// CloudWatch's "CloudWatch Alarm State Change", as AWS's documentation shows it, for `alarm` moving into `state`.
fn alarm_state_change(alarm: &str, state: &str) -> serde_json::Value {
    serde_json::json!({
        "alarmName": alarm,
        "configuration": { "description": "5xx at the staging load balancer", "metrics": [] },
        "previousState": { "reason": "Threshold Crossed", "timestamp": "2026-12-07T09:00:00.000+0000", "value": "OK" },
        "state": { "reason": "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0).",
                   "timestamp": "2026-12-07T09:10:00.000+0000", "value": state }
    })
}

#[tokio::test]
async fn a_soaks_end_and_its_alarms_moving_into_alarm_reach_deploy_events_and_nothing_else_does() -> Result<()> {
    let stack = Stack::create().await?;
    let publisher = EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone());
    publisher.publish(&[soak_ended()]).await?;
    // On the default bus, as CloudWatch puts them: a watched alarm into ALARM, the same into OK, another alarm
    for (alarm, state) in [("web-staging-5xx", "ALARM"), ("web-staging-5xx", "OK"), ("billing-total", "ALARM")] {
        let arn = format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}");
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.cloudwatch")
            .detail_type("CloudWatch Alarm State Change")
            .resources(arn)
            .detail(alarm_state_change(alarm, state).to_string())
            .event_bus_name(&stack.default_bus)
            .build();
        stack.eventbridge.put_events().entries(entry).send().await?;
    }
    let ended = stack.receive(stack.queue("SoakEndedRule")?, 1, WAIT).await?;
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert_eq!(SluiceEvent::from_parts("Soak Ended", ended[0]["detail"].clone())?, soak_ended());
    let alarms = stack.receive(stack.queue("AlarmStateChangeRule")?, 2, WAIT).await?;
    assert_eq!(alarms.len(), 1, "only web-* alarms moving into ALARM: {alarms:#?}");
    assert_eq!(
        (alarms[0]["detail"]["alarmName"].as_str(), alarms[0]["detail"]["state"]["value"].as_str()),
        (Some("web-staging-5xx"), Some("ALARM"))
    );
    for rule in ["SoakEndedRule", "AlarmStateChangeRule", "DeploymentStateChangeRule", "ExecutionFinishedRule"] {
        let extra = stack.receive(stack.queue(rule)?, 1, QUIET).await?;
        assert!(extra.is_empty(), "{rule} also received {extra:#?}");
    }
    Ok(())
}
