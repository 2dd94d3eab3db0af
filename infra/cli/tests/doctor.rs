//! `sluice doctor` against a stack in moto: a healthy one says ok throughout and exits 0; one with each problem
//! names each, with what to do, and exits 1.

mod common;

use anyhow::{Context, Result};
use common::{sluice, stderr, stdout};
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::DefinitionsStore;
use sluice_integration::{Stack, unique};

/// What the stack in moto is made of, the parts doctor looks at.
struct Parts {
    webhook_secret: String,
    dead_letters: String,
    definitions: String,
    build_projects: &'static str,
    deploy_clusters: &'static str,
    alarm_topic: String,
}

/// moto's parts, then a CloudFormation stack whose outputs and parameters name them as sluice's template does.
async fn deployed(stack: &Stack, parts: &Parts) -> Result<String> {
    let name = unique("doctor");
    let outputs = serde_json::json!({
        "PipelineTableName": { "Value": stack.table },
        "EventBusName": { "Value": stack.bus },
        "WebhookUrl": { "Value": "https://abc.lambda-url.us-east-1.on.aws/" },
        "WebhookSecretArn": { "Value": parts.webhook_secret },
        "ApprovalUrl": { "Value": "https://def.lambda-url.us-east-1.on.aws/" },
        "StatusKeySecretArn": { "Value": "arn:aws:secretsmanager:us-east-1:123456789012:secret:status" },
        "ApprovalTopicArn": { "Value": stack.approval_topic },
        "NotificationTopicArn": { "Value": stack.approval_topic },
        "DeployerDeadLetterQueue": { "Value": parts.dead_letters },
        "AlarmTopicArn": { "Value": parts.alarm_topic },
    });
    let parameter = |default: &str| serde_json::json!({ "Type": "String", "Default": default });
    let template = serde_json::json!({
        "Parameters": {
            "BuildProjects": parameter(parts.build_projects),
            "DeployClusters": parameter(parts.deploy_clusters),
            "DeployApplications": parameter(""),
            "ApprovalTopics": parameter(""),
            "NotifyTopics": parameter(""),
            "SoakAlarms": parameter("web-*"),
        },
        "Resources": { "Marker": { "Type": "AWS::SQS::Queue", "Properties": { "QueueName": format!("{name}-marker") } } },
        "Outputs": outputs,
    });
    let cloudformation = aws_sdk_cloudformation::Client::new(&stack.config);
    cloudformation
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(e)))
        .context("creating the stack")?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    store.publish(&parts.definitions, None, chrono::Utc::now()).await?;
    Ok(name)
}

async fn secret(stack: &Stack, value: &str) -> Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(&stack.config);
    let created = client.create_secret().name(unique("webhook")).secret_string(value).send().await?;
    created.arn().map(str::to_owned).context("the secret's ARN")
}

/// An ECS cluster with an active service, as a rolling pipeline names them.
async fn ecs_service(stack: &Stack, cluster: &str, service: &str) -> Result<()> {
    use aws_sdk_ecs::types::ContainerDefinition;
    let ecs = aws_sdk_ecs::Client::new(&stack.config);
    ecs.create_cluster().cluster_name(cluster).send().await.context("creating the cluster")?;
    let container = ContainerDefinition::builder().name(service).image("web:1").memory(128).build();
    ecs.register_task_definition()
        .family(service)
        .container_definitions(container)
        .send()
        .await
        .context("registering")?;
    ecs.create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(service)
        .desired_count(0)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_ecs::error::DisplayErrorContext(e)))
        .context("creating the service")?;
    Ok(())
}

async fn topic(stack: &Stack, name: &str) -> Result<String> {
    let created = stack.sns.create_topic().name(unique(name)).send().await?;
    created.topic_arn().map(str::to_owned).context("the topic's ARN")
}

/// A CloudWatch alarm, as the template makes them (telling `topic`, if any), in `state`.
async fn alarm(stack: &Stack, name: &str, topic: Option<&str>, state: &str) -> Result<()> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.config);
    cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .alarm_description(format!("what to do when {name} fires"))
        .namespace("sluice")
        .metric_name("PushesNotRecorded")
        .statistic(Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .set_alarm_actions(topic.map(|t| vec![t.to_owned()]))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_cloudwatch::error::DisplayErrorContext(e)))
        .context("creating the alarm")?;
    let state = StateValue::from(state);
    cloudwatch.set_alarm_state().alarm_name(name).state_value(state).state_reason("Threshold Crossed").send().await?;
    Ok(())
}

fn rolling(name: &str, project: &str, cluster: &str, approval: &str) -> String {
    format!(
        "[pipelines.{name}]\nsource = {{ repository = \"acme/{name}\" }}\nbuild = {{ project = \"{project}\" }}\n\
         approval = {{ topic = \"{approval}\" }}\n\
         deploy = {{ strategy = \"rolling\", cluster = \"{cluster}\", service = \"{name}\" }}\n"
    )
}

#[tokio::test]
async fn doctor_finds_a_healthy_stack_ok_throughout_and_exits_0() -> Result<()> {
    let stack = Stack::create().await?;
    let cluster = unique("prod");
    stack.create_build_project("web-build").await?;
    ecs_service(&stack, &cluster, "web").await?;
    let (dead_letters, _) = sluice_integration::create_queue(&stack.sqs, &unique("deployer-dlq")).await?;
    let alarm_topic = topic(&stack, "alarms").await?;
    alarm(&stack, &unique("dead-letters"), Some(&alarm_topic), "OK").await?;
    let parts = Parts {
        webhook_secret: secret(&stack, "s3cret").await?,
        dead_letters,
        definitions: rolling("web", "web-build", &cluster, &stack.approval_topic),
        build_projects: "web-*",
        deploy_clusters: "prod*",
        alarm_topic,
    };
    let name = deployed(&stack, &parts).await?;

    let output = sluice(&["--stack", &name, "doctor"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains(&format!("ok       stack {name} in us-east-1: CREATE_COMPLETE")), "{text}");
    for line in [
        "ok       the webhook secret is there",
        "ok       1 dead-letter queue(s) empty",
        "ok       1 pipeline(s) published (revision 1): web",
        "ok       web's build project web-build is there",
        &format!("ok       web's service {cluster}/web is active"),
        "ok       web has no parked effect",
        "ok       1 alarm(s) of the stack, none in ALARM",
        "0 problem(s), 0 warning(s)",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // The approval topic's subscriber (the harness's queue) confirmed
    assert!(text.contains("1 confirmed, 0 pending subscription(s)"), "{text}");
    assert!(!text.contains("s3cret"), "the secret's value is never shown");
    let json = sluice(&["--stack", &name, "--json", "doctor"]);
    let answer: serde_json::Value = serde_json::from_str(&stdout(&json))?;
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(answer["findings"].as_array().is_some_and(|f| f.iter().all(|f| f["level"] == "ok")), "{answer}");
    Ok(())
}

#[tokio::test]
async fn doctor_names_each_problem_of_a_stack_with_what_to_do_and_exits_1() -> Result<()> {
    let stack = Stack::create().await?;
    // an event in the deployer's dead-letter queue
    let (dead_letters, _) = sluice_integration::create_queue(&stack.sqs, &unique("deployer-dlq")).await?;
    stack.sqs.send_message().queue_url(&dead_letters).message_body("{}").send().await?;
    let elsewhere = topic(&stack, "other-approvals").await?;
    // a topic of named approvers: alice subscribed with her filter policy, ops without one, bob not at all
    let signed = topic(&stack, "signed-approvals").await?;
    let alice = stack.sns.subscribe().topic_arn(&signed).protocol("email").endpoint("alice@example.com");
    alice.attributes("FilterPolicy", sluice::usecases::filter_policy("alice@example.com")).send().await?;
    stack.sns.subscribe().topic_arn(&signed).protocol("email").endpoint("ops@example.com").send().await?;
    // one of the stack's alarms firing, one quiet; an alarm elsewhere firing, not the stack's
    let alarm_topic = topic(&stack, "alarms").await?;
    let (firing, quiet, unrelated) = (unique("dead-letters"), unique("pushes"), unique("other"));
    alarm(&stack, &firing, Some(&alarm_topic), "ALARM").await?;
    alarm(&stack, &quiet, Some(&alarm_topic), "OK").await?;
    alarm(&stack, &unrelated, None, "ALARM").await?;
    // the canary's deployments watch one alarm in ALARM and one that does not exist
    let (canary_5xx, canary_gone) = (unique("canary-5xx"), unique("canary-gone"));
    alarm(&stack, &canary_5xx, None, "ALARM").await?;
    // staging's soak is watched by an alarm in ALARM and one that does not exist; preprod's by one outside SoakAlarms
    let (soak_5xx, soak_gone) = (unique("web-soak-5xx"), unique("web-soak-gone"));
    alarm(&stack, &soak_5xx, None, "ALARM").await?;
    let definitions = format!(
        "{}{}\n[pipelines.soaked]\nsource = {{ repository = \"acme/soaked\" }}\nbuild = {{ project = \"web-soaked\" }}\n\
         [[pipelines.soaked.stages]]\nname = \"staging\"\nsoak = \"5m\"\nsoak_alarms = [\"{soak_5xx}\", \"{soak_gone}\"]\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"soaked\" }}\n\
         [[pipelines.soaked.stages]]\nname = \"preprod\"\nsoak = \"5m\"\nsoak_alarms = [\"billing-5xx\"]\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"soaked\" }}\n\
         [[pipelines.soaked.stages]]\nname = \"production\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"soaked\" }}\n\
         [pipelines.canary]\nsource = {{ repository = \"acme/canary\" }}\nbuild = {{ project = \"web-canary\" }}\n\
         deploy = {{ strategy = \"ecs_canary\", cluster = \"prod\", service = \"canary\", \
         alarms = [\"{canary_5xx}\", \"{canary_gone}\"] }}\n\
         [pipelines.shop]\nsource = {{ repository = \"acme/shop\" }}\nbuild = {{ project = \"web-shop\" }}\n\
         deploy = {{ strategy = \"blue_green\", cluster = \"prod\", service = \"shop\", application = \"shop\", \
         deployment_group = \"shop-prod\" }}\n\
         [pipelines.tested]\nsource = {{ repository = \"acme/tested\" }}\nbuild = {{ project = \"web-tested\" }}\n\
         [[pipelines.tested.stages]]\nname = \"e2e\"\ntest = {{ codebuild = \"e2e-tested\" }}\n\
         [[pipelines.tested.stages]]\nname = \"smoke\"\ntest = {{ codebuild = \"web-smoke-missing\" }}\n\
         [[pipelines.tested.stages]]\nname = \"production\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"tested\" }}\n\
         [pipelines.signed]\nsource = {{ repository = \"acme/signed\" }}\nbuild = {{ project = \"web-signed\" }}\n\
         [[pipelines.signed.stages]]\nname = \"sign-off\"\napproval = {{ topic = \"{signed}\", approvers = \
         [\"alice@example.com\", \"bob@example.com\"] }}\n\
         [[pipelines.signed.stages]]\nname = \"production\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"signed\" }}\n",
        // a project that is not there, and a topic the stack may not publish to
        rolling("web", "web-missing", "prod", &elsewhere),
        // a project and a cluster outside the stack's patterns
        rolling("api", "api-build", "staging", &stack.approval_topic),
    );
    let parts = Parts {
        webhook_secret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf".into(),
        dead_letters,
        definitions,
        build_projects: "web-*",
        deploy_clusters: "prod",
        alarm_topic,
    };
    let name = deployed(&stack, &parts).await?;
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    park_an_effect(&store, "web").await?;

    let output = sluice(&["--stack", &name, "doctor"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    for (line, todo) in [
        (
            "problem  the webhook secret arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf cannot be read: ResourceNotFoundException",
            "restore the secret",
        ),
        (
            "problem  DeployerDeadLetterQueue holds 1 event(s) sluice could not take",
            "aws sqs receive-message --queue-url",
        ),
        ("problem  web's build project web-missing does not exist in us-east-1", "create it"),
        (
            &format!(
                "problem  web names topic {elsewhere}, which the stack may not publish to (ApprovalTopics is \"\")"
            ),
            "ApprovalTopicArn",
        ),
        ("problem  web's cluster prod: ClusterNotFoundException", "create it"),
        ("problem  web has 1 parked effect(s)", "sluice effects web"),
        (
            "problem  api's build project api-build is not one the stack may start (BuildProjects is \"web-*\")",
            "BuildProjects",
        ),
        (
            "problem  api deploys to cluster staging, which the stack may not (DeployClusters is \"prod\")",
            "DeployClusters",
        ),
        (
            &format!("problem  alarm {firing} is in ALARM: Threshold Crossed"),
            &format!("what to do when {firing} fires"),
        ),
        (&format!("problem  canary watches alarm {canary_gone}, which does not exist in us-east-1"), "deploy.alarms"),
        (&format!("warning  canary's alarm {canary_5xx} is in ALARM: Threshold Crossed"), "rolled back"),
        (
            "problem  shop deploys with CodeDeploy application shop, which the stack may not use (DeployApplications is \"\")",
            "DeployApplications",
        ),
        // Each test stage's CodeBuild project, as the build's
        (
            "problem  tested's e2e stage's test project e2e-tested is not one the stack may start (BuildProjects is \"web-*\")",
            "BuildProjects",
        ),
        ("problem  tested's smoke stage's test project web-smoke-missing does not exist in us-east-1", "create it"),
        // The alarms that watch a soak
        (
            &format!("warning  soaked's staging stage's soak alarm {soak_5xx} is in ALARM: Threshold Crossed"),
            "already in ALARM",
        ),
        (
            &format!(
                "problem  soaked's staging stage soaks watched by alarm {soak_gone}, which does not exist in us-east-1"
            ),
            "soak_alarms",
        ),
        (
            "problem  soaked's preprod stage soaks watched by billing-5xx, which the stack may not read (SoakAlarms is \"web-*\")",
            "SoakAlarms",
        ),
        // A topic of named approvers
        (
            &format!("problem  signed's approvers' topic {signed}: its email subscription ops@example.com"),
            "sluice approvers sync",
        ),
        (&format!("warning  signed's approvers bob@example.com get no request on {signed}"), "sluice approvers sync"),
    ] {
        let at = text.find(line).with_context(|| format!("{line:?} in {text}"))?;
        let next = text[at..].lines().nth(1).unwrap_or_default();
        assert!(next.starts_with("         -> ") && next.contains(todo), "{line:?} then {next:?}");
    }
    assert!(!text.contains(&quiet) && !text.contains(&unrelated), "only the stack's alarms in ALARM: {text}");
    let json = sluice(&["--stack", &name, "--json", "doctor"]);
    assert_eq!(json.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&json))?;
    assert_eq!(answer["ok"], false);
    // A stack that is not there is the first problem: doctor says so plainly
    let missing = sluice(&["--stack", "no-such-stack", "doctor"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("there is no stack `no-such-stack` in us-east-1"), "{}", stderr(&missing));
    Ok(())
}

/// A StartBuild CodeBuild refused for good: parked at once, as the CLI's effects test does it.
async fn park_an_effect(store: &DynamoDbStore, pipeline: &str) -> Result<()> {
    use sluice::contract::testing::{RecordingRunner, push};
    use sluice::definitions::ExecutionMode;
    use sluice::usecases::{Input, handle};
    let runner = RecordingRunner::owning(&[sluice::pipeline::EffectKind::StartBuild]);
    runner.refuse_next(1);
    let event = push(&format!("{pipeline}-1"), ExecutionMode::Superseded, false);
    let input =
        Input { pipeline, mode: ExecutionMode::Superseded, event: &event, receipt: None, now: chrono::Utc::now() };
    handle(store, &runner, input).await?;
    Ok(())
}
