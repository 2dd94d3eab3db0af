use super::*;
use crate::definitions::{BlueGreen, Check, DeployTarget};

const SAMPLE_TASKDEF: &str = include_str!("../../../infra/sample-app/taskdef.json");
const SAMPLE_APPSPEC: &str = include_str!("../../../infra/sample-app/appspec.yaml");
const IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sample-app:9b2c5f0";
const ARN: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/sample-app:7";
const HOOKS: &str = "arn:aws:lambda:eu-west-1:123456789012:function:sluice-hooks";

fn error(result: Result<impl std::fmt::Debug, RenderError>) -> String {
    result.expect_err("refused").to_string()
}

#[test]
fn the_built_image_takes_the_place_of_the_placeholder_and_nothing_else_changes() {
    let rendered = task_definition(SAMPLE_TASKDEF.as_bytes(), IMAGE, None, false).expect("renders");
    assert_eq!(rendered.container_definitions[0].image, IMAGE);
    let mut sent = serde_json::to_value(&rendered).expect("serializes");
    let mut written: serde_json::Value = serde_json::from_str(SAMPLE_TASKDEF).expect("json");
    sent["containerDefinitions"][0]["image"] = "X".into();
    written["containerDefinitions"][0]["image"] = "X".into();
    assert_eq!(sent, written, "every field of taskdef.json is registered as written");
}

#[test]
fn a_described_task_definition_can_be_committed_as_it_is() {
    let described = r#"{"taskDefinitionArn":"arn:aws:ecs:eu-west-1:1:task-definition/web:3","revision":3,
        "status":"ACTIVE","compatibilities":["EC2","FARGATE"],"requiresAttributes":[{"name":"x"}],
        "registeredAt":"2026-11-01T00:00:00Z","registeredBy":"arn:aws:iam::1:user/a","family":"web","cpu":256,
        "containerDefinitions":[{"name":"web","image":"<IMAGE1_NAME>"},{"name":"sidecar","image":"envoy:1"}]}"#;
    let rendered = task_definition(described.as_bytes(), IMAGE, None, false).expect("renders");
    assert_eq!(rendered.cpu.as_deref(), Some("256"));
    assert_eq!(rendered.container_definitions[1].image, "envoy:1");
    let sent = serde_json::to_value(&rendered).expect("serializes");
    assert!(sent.get("revision").is_none() && sent.get("taskDefinitionArn").is_none(), "{sent}");
}

#[test]
fn a_task_definition_without_the_placeholder_says_where_to_put_it() {
    let text = r#"{"family":"web","containerDefinitions":[{"name":"web","image":"nginx:1"}]}"#;
    let message = error(task_definition(text.as_bytes(), IMAGE, None, false));
    assert!(message.starts_with("taskdef.json: no `containerDefinitions[].image` is <IMAGE1_NAME>"), "{message}");
    assert!(message.contains("(one of web)"), "{message}");
}

#[test]
fn a_malformed_or_unknown_field_is_named_with_its_path() {
    let unknown = r#"{"family":"web","containerDefinitions":[{"name":"web","image":"<IMAGE1_NAME>","gpu":1}]}"#;
    let message = error(task_definition(unknown.as_bytes(), IMAGE, None, false));
    assert!(message.starts_with("taskdef.json: field `containerDefinitions[0].gpu`: unknown field"), "{message}");
    let wrong = r#"{"family":"web","containerDefinitions":[{"name":"web","image":"<IMAGE1_NAME>","memory":"lots"}]}"#;
    let message = error(task_definition(wrong.as_bytes(), IMAGE, None, false));
    assert!(message.starts_with("taskdef.json: field `containerDefinitions[0].memory`"), "{message}");
    assert!(
        error(task_definition(b"not json", IMAGE, None, false)).starts_with("taskdef.json: not an ECS task definition")
    );
    let empty = r#"{"family":"web","containerDefinitions":[]}"#;
    assert!(error(task_definition(empty.as_bytes(), IMAGE, None, false)).contains("`containerDefinitions` is empty"));
}

#[test]
fn the_appspec_gets_the_registered_task_definition_and_a_hook_for_each_checked_event() {
    let rendered = appspec(SAMPLE_APPSPEC.as_bytes(), ARN, HOOKS, &["AfterAllowTestTraffic", "BeforeAllowTraffic"])
        .expect("renders");
    let document: serde_json::Value = serde_json::from_str(&rendered).expect("JSON");
    assert_eq!(document["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"], ARN);
    assert_eq!(document["Resources"][0]["TargetService"]["Properties"]["LoadBalancerInfo"]["ContainerPort"], 8080);
    assert_eq!(
        document["Hooks"],
        serde_json::json!([{ "AfterAllowTestTraffic": HOOKS }, { "BeforeAllowTraffic": HOOKS }])
    );
    let plain = appspec(SAMPLE_APPSPEC.as_bytes(), ARN, HOOKS, &[]).expect("renders");
    assert!(serde_json::from_str::<serde_json::Value>(&plain).expect("JSON").get("Hooks").is_none());
}

#[test]
fn an_appspec_that_cannot_take_the_task_definition_or_the_hooks_says_which_field() {
    let literal = SAMPLE_APPSPEC.replace("<TASK_DEFINITION>", "arn:aws:ecs:eu-west-1:1:task-definition/old:1");
    let message = error(appspec(literal.as_bytes(), ARN, HOOKS, &[]));
    assert!(message.starts_with("appspec.yaml: field `Resources[0].TargetService.Properties.TaskDefinition` is"));
    assert!(error(appspec(b"version: 0.0\n", ARN, HOOKS, &[])).contains("field `Resources` is missing"));
    assert!(error(appspec(b"Resources: [{TargetService: {}}]", ARN, HOOKS, &[])).contains("is missing: set it"));
    assert!(error(appspec(b"{{{", ARN, HOOKS, &[])).starts_with("appspec.yaml: not YAML or JSON"));
    let with_hook = format!("{SAMPLE_APPSPEC}Hooks:\n  - BeforeAllowTraffic: my-own-check\n");
    let message = error(appspec(with_hook.as_bytes(), ARN, HOOKS, &["BeforeAllowTraffic"]));
    assert!(message.contains("already runs \"my-own-check\" at BeforeAllowTraffic"), "{message}");
    // The user's own hooks at other events stay.
    let kept = appspec(with_hook.as_bytes(), ARN, HOOKS, &["AfterInstall"]).expect("renders");
    assert!(kept.contains("my-own-check") && kept.contains("AfterInstall"), "{kept}");
}

#[test]
fn the_hook_events_are_those_the_pipeline_checks_at_in_lifecycle_order() {
    let check = |hook: &str| Check::new(hook, "http://x");
    let target = DeployTarget::BlueGreen(BlueGreen {
        cluster: "c".into(),
        service: "s".into(),
        application: "a".into(),
        deployment_group: "g".into(),
        deployment_config: "CodeDeployDefault.ECSAllAtOnce".into(),
        container: None,
        checks: vec![check("BeforeAllowTraffic"), check("AfterInstall"), check("BeforeAllowTraffic")],
        allow_host: false,
    });
    assert_eq!(hook_events(&target), ["AfterInstall", "BeforeAllowTraffic"]);
    assert!(description("web-1", "web-3-4").ends_with("[sluice effect web-3-4]"));
}

#[test]
fn a_deployment_description_names_the_run_that_created_it_and_no_other_text_does() {
    assert_eq!(execution_of(&description("web-72d3162e", "web-3-4")), Some("web-72d3162e"));
    assert_eq!(execution_of("sluice run web-1"), None);
    assert_eq!(execution_of("deployed by hand"), None);
    assert_eq!(execution_of("sluice run  [sluice effect x]"), None);
}

#[test]
fn a_task_definition_is_tagged_with_the_effect_that_registers_it_once_whatever_the_file_said() {
    let text = SAMPLE_TASKDEF.replacen(
        "\"family\"",
        "\"tags\": [{\"key\": \"sluice:effect\", \"value\": \"forged\"}, {\"key\": \"team\", \"value\": \"web\"}], \"family\"",
        1,
    );
    let mut definition = task_definition(text.as_bytes(), IMAGE, None, false).expect("renders");
    mark(&mut definition, "web-3-7");
    mark(&mut definition, "web-3-7");
    let tags: Vec<(&str, &str)> = definition.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
    assert_eq!(tags, [("team", "web"), (EFFECT_TAG, "web-3-7")]);
}

#[test]
fn a_container_the_pipeline_names_gets_the_image_whatever_its_image_was_and_an_unknown_one_is_named() {
    let text = SAMPLE_TASKDEF.replace("<IMAGE1_NAME>", "nginx:latest");
    let name = task_definition(text.as_bytes(), IMAGE, None, false).map(|_| ()).err().map(|e| e.to_string());
    assert!(name.is_some_and(|e| e.contains("<IMAGE1_NAME>")), "without a name the placeholder is needed");

    let container = serde_json::from_str::<serde_json::Value>(SAMPLE_TASKDEF).expect("json")["containerDefinitions"][0]
        ["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let rendered = task_definition(text.as_bytes(), IMAGE, Some(&container), false).expect("renders");
    assert_eq!(rendered.container_definitions[0].image, IMAGE);

    let message = error(task_definition(text.as_bytes(), IMAGE, Some("worker"), false));
    assert!(
        message.starts_with("taskdef.json: no container in `containerDefinitions` is named `worker` (the pipeline's deploy.container); it has "),
        "{message}"
    );
    assert!(message.contains(&container), "{message}");
}

#[test]
fn an_ecs_native_failure_is_worded_by_what_ecs_recorded_alarms_first_then_the_breaker_then_a_hooks_timeout() {
    use crate::contract::ports::{DeploymentProgress, ServiceDeploymentReport};
    let failed = ServiceDeploymentReport {
        progress: DeploymentProgress::Failed,
        status: "ROLLBACK_SUCCESSFUL".into(),
        status_reason: Some("ECS deployment failed".into()),
        rolled_back: true,
        rollback_reason: Some("rolled back: tasks failed".into()),
        ..Default::default()
    };
    let said = Some("SERVICE_DEPLOYMENT_FAILED");
    // What ECS said of the rollback, when its record names no alarm, breaker or hook
    assert_eq!(native_failure(Some(&failed), said), (true, Some("rolled back: tasks failed".into())));
    // A hook that timed out
    let timed_out = ServiceDeploymentReport { timed_out_hooks: vec!["ecs-hook-7".into()], ..failed.clone() };
    assert_eq!(native_failure(Some(&timed_out), said).1.as_deref(), Some("lifecycle hook ecs-hook-7 timed out"));
    // The circuit breaker, before a timed-out hook
    let tripped = ServiceDeploymentReport { circuit_breaker_tripped: true, ..timed_out.clone() };
    assert_eq!(
        native_failure(Some(&tripped), said).1.as_deref(),
        Some("the deployment circuit breaker tripped: the new tasks did not reach a steady state")
    );
    // Alarms, before all
    let alarmed = ServiceDeploymentReport { triggered_alarms: vec!["web-5xx".into(), "web-p99".into()], ..tripped };
    assert_eq!(native_failure(Some(&alarmed), said).1.as_deref(), Some("alarm web-5xx, web-p99 went into ALARM"));
    // A record that says nothing but its status; and none at all: what the event said, not rolled back
    let bare = ServiceDeploymentReport { status: "STOPPED".into(), rolled_back: false, ..Default::default() };
    assert_eq!(native_failure(Some(&bare), None), (false, Some("service deployment STOPPED".into())));
    assert_eq!(native_failure(None, said), (false, Some("SERVICE_DEPLOYMENT_FAILED".into())));
}

#[test]
fn a_task_definition_that_reaches_into_the_host_is_refused_naming_the_field_unless_the_pipeline_allows_it() {
    let sample: serde_json::Value = serde_json::from_str(SAMPLE_TASKDEF).expect("JSON");
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut value = sample.clone();
        edit(&mut value);
        value.to_string()
    };
    for (text, field) in [
        (with(&|v| v["networkMode"] = "host".into()), "networkMode"),
        (with(&|v| v["pidMode"] = "host".into()), "pidMode"),
        (with(&|v| v["ipcMode"] = "host".into()), "ipcMode"),
        (with(&|v| v["containerDefinitions"][0]["privileged"] = true.into()), "containerDefinitions[0].privileged"),
        (
            with(&|v| v["volumes"] = serde_json::json!([{ "name": "docker", "host": { "sourcePath": "/var/run" } }])),
            "volumes[0].host.sourcePath",
        ),
    ] {
        let message = error(task_definition(text.as_bytes(), IMAGE, None, false));
        assert!(message.contains(&format!("field `{field}` reaches into the host")), "{message}");
        assert!(message.contains("deploy.allow_host = true"), "{message}");
        let allowed = task_definition(text.as_bytes(), IMAGE, None, true).expect("allowed by the pipeline");
        assert_eq!(allowed.family, sample["family"].as_str().unwrap_or_default());
    }
    // A task's own namespaces, an unprivileged container and a volume without a host path are no host access
    let harmless = with(&|v| {
        v["pidMode"] = "task".into();
        v["containerDefinitions"][0]["privileged"] = false.into();
        v["volumes"] = serde_json::json!([{ "name": "scratch", "host": {} }]);
    });
    assert!(task_definition(harmless.as_bytes(), IMAGE, None, false).is_ok());
}
