//! `sluice doctor`: one look at a deployed stack and its pipelines. Each line is ok, a warning or a problem, with
//! what to do; a problem exits 1.

use std::process::ExitCode;

use anstyle::AnsiColor;
use anyhow::{Result, bail};
use serde_json::json;
use sluice::contract::ports::{DefinitionsStore, PipelineStore};
// `matches`: a name against one of the stack's name patterns, as IAM reads them.
use sluice::definitions::{Definitions, DeployTarget, Pipeline, glob_matches as matches};

use crate::stack::{Stack, Target, plain, region};
use crate::term::mark;

/// Look over a deployed stack and its pipelines: ok, warning or problem, with what to do
///
/// The stack and its outputs; the webhook secret; the published definitions, and the CodeBuild projects, SNS
/// topics, ECS services and CodeDeploy groups they name (there, and within what the stack's parameters let it use);
/// subscriptions still pending; dead-letter queues that hold events; the stack's alarms and the pipelines' deploy
/// alarms in ALARM; parked effects. Exits 1 when it finds a problem.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice doctor\n  sluice --stack sluice-staging --region eu-west-1 doctor")]
pub struct Doctor {}

/// How a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warning,
    Problem,
}

/// One line of the report: what was looked at, what was found and, unless it is fine, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    level: Level,
    said: String,
    todo: Option<String>,
}

fn ok(said: impl Into<String>) -> Finding {
    Finding { level: Level::Ok, said: said.into(), todo: None }
}

fn warning(said: impl Into<String>, todo: impl Into<String>) -> Finding {
    Finding { level: Level::Warning, said: said.into(), todo: Some(todo.into()) }
}

fn problem(said: impl Into<String>, todo: impl Into<String>) -> Finding {
    Finding { level: Level::Problem, said: said.into(), todo: Some(todo.into()) }
}

/// The outputs sluice's template gives, without which a part of it cannot be reached.
const OUTPUTS: [&str; 8] = [
    "PipelineTableName",
    "EventBusName",
    "WebhookUrl",
    "WebhookSecretArn",
    "ApprovalUrl",
    "StatusKeySecretArn",
    "ApprovalTopicArn",
    "NotificationTopicArn",
];

impl Doctor {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        if target.table.is_some() {
            bail!("doctor looks at a deployed stack: name it with --stack (or SLUICE_STACK), not its table");
        }
        let stack = Stack::find(target).await?;
        let name = stack.name.as_deref().unwrap_or_default();
        let mut findings = vec![stack_status(name, &stack.status, &stack.region())];
        findings.extend(missing_outputs(&stack));
        findings.push(webhook_secret(&stack).await);
        findings.extend(dead_letters(&stack).await);
        findings.extend(stack_alarms(&stack).await);
        findings.extend(pipelines(&stack).await);
        let found_problem = findings.iter().any(|f| f.level == Level::Problem);
        if target.json {
            let lines: Vec<_> = findings
                .iter()
                .map(|f| json!({ "level": level_name(f.level), "said": f.said, "todo": f.todo }))
                .collect();
            println!("{}", serde_json::to_string_pretty(&json!({ "ok": !found_problem, "findings": lines }))?);
        } else {
            findings.iter().for_each(print);
            let count = |level| findings.iter().filter(|f| f.level == level).count();
            anstream::println!("{} problem(s), {} warning(s)", count(Level::Problem), count(Level::Warning));
        }
        Ok(if found_problem { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Ok => "ok",
        Level::Warning => "warning",
        Level::Problem => "problem",
    }
}

fn print(finding: &Finding) {
    let word = match finding.level {
        Level::Ok => mark("ok     ", AnsiColor::Green),
        Level::Warning => mark("warning", AnsiColor::Yellow),
        Level::Problem => mark("problem", AnsiColor::Red),
    };
    anstream::println!("{word}  {}", finding.said);
    if let Some(todo) = &finding.todo {
        anstream::println!("         -> {todo}");
    }
}

/// A stack whose last change completed is fine; one changing is a warning; a failed or rolled-back one a problem.
fn stack_status(name: &str, status: &str, region: &str) -> Finding {
    let said = format!("stack {name} in {region}: {status}");
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => ok(said),
        "UPDATE_ROLLBACK_COMPLETE" => {
            warning(said, "its last update was rolled back: see its events, mend, and `sam deploy` again")
        }
        s if s.ends_with("_IN_PROGRESS") => warning(said, "it is changing: look again once it is done"),
        _ => problem(said, "see the stack's events (`aws cloudformation describe-stack-events`), mend, `sam deploy`"),
    }
}

fn missing_outputs(stack: &Stack) -> Vec<Finding> {
    let missing: Vec<&str> = OUTPUTS.into_iter().filter(|key| stack.output(key).is_none()).collect();
    if missing.is_empty() {
        return vec![ok(format!("the stack's outputs name sluice's parts ({})", OUTPUTS.len()))];
    }
    vec![problem(
        format!("the stack has no {} output", missing.join(", ")),
        "is it sluice's stack? Deploy this version's template.yaml with `sam deploy`",
    )]
}

/// The webhook's secret is there and not empty (its value is never shown).
async fn webhook_secret(stack: &Stack) -> Finding {
    let Some(arn) = stack.output("WebhookSecretArn") else {
        return problem("the webhook secret cannot be found: no WebhookSecretArn output", "`sam deploy` again");
    };
    let client = aws_sdk_secretsmanager::Client::new(&stack.config);
    match client.get_secret_value().secret_id(arn).send().await {
        Ok(secret) if secret.secret_string().is_some_and(|s| !s.trim().is_empty()) => ok("the webhook secret is there"),
        Ok(_) => problem(
            format!("the webhook secret {arn} is empty"),
            "put a random value in it and give GitHub the same value",
        ),
        Err(error) => problem(
            format!("the webhook secret {arn} cannot be read: {}", plain(&error)),
            "`sam deploy` again, or restore the secret",
        ),
    }
}

/// The dead-letter queues (the outputs ending in DeadLetterQueue): each message is an event sluice could not take.
async fn dead_letters(stack: &Stack) -> Vec<Finding> {
    let client = aws_sdk_sqs::Client::new(&stack.config);
    let mut findings = Vec::new();
    let mut empty = 0;
    for (key, url) in stack.outputs.iter().filter(|(key, _)| key.ends_with("DeadLetterQueue")) {
        let asked = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await;
        let count = match asked {
            Ok(answer) => answer
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_default(),
            Err(error) => {
                findings.push(problem(format!("{key} {url} cannot be read: {}", plain(&error)), "`sam deploy` again"));
                continue;
            }
        };
        if count == 0 {
            empty += 1;
        } else {
            findings.push(problem(
                format!("{key} holds {count} event(s) sluice could not take"),
                format!(
                    "read them (`aws sqs receive-message --queue-url {url}`), mend the cause, then put them back on \
                     the bus or delete them"
                ),
            ));
        }
    }
    if empty > 0 {
        findings.insert(0, ok(format!("{empty} dead-letter queue(s) empty")));
    }
    findings
}

/// The published definitions, and what each pipeline names.
async fn pipelines(stack: &Stack) -> Vec<Finding> {
    let store = stack.store();
    let published = match store.current().await {
        Ok(Some(published)) => published,
        Ok(None) => {
            return vec![warning("no pipeline definitions are published", "`sluice init`, then `sluice publish FILE`")];
        }
        Err(error) => {
            let error = stack.store_error(error);
            return vec![problem(format!("the pipeline table cannot be read: {error:#}"), "`sam deploy` again")];
        }
    };
    let definitions = match Definitions::parse("the published definitions", &published.text) {
        Ok(definitions) => definitions,
        Err(errors) => {
            return vec![problem(
                format!("the published definitions (revision {}) do not load: {errors}", published.revision),
                "`sluice show > pipelines.toml`, mend it with `sluice check`, then `sluice publish`",
            )];
        }
    };
    let mut findings = vec![ok(format!(
        "{} pipeline(s) published (revision {}): {}",
        definitions.len(),
        published.revision,
        definitions.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    ))];
    for found in definitions.warnings() {
        findings.push(warning(found.to_string(), "see `sluice check` on the file"));
    }
    for pipeline in definitions.iter() {
        findings.extend(pipeline_findings(stack, pipeline).await);
    }
    findings
}

async fn pipeline_findings(stack: &Stack, pipeline: &Pipeline) -> Vec<Finding> {
    let name = &pipeline.name;
    let mut findings = vec![build_project(stack, name, "build", &pipeline.build.project).await];
    // Each test stage's CodeBuild project, as the build's: the stack starts it, and its events reach sluice.
    for stage in &pipeline.stages {
        if let Some(project) = stage.test().and_then(|test| test.codebuild()) {
            findings.push(build_project(stack, name, &format!("{} stage's test", stage.name), project).await);
        }
    }
    for (topic, role) in topics(pipeline) {
        findings.extend(topic_findings(stack, name, topic, role).await);
    }
    let mut looked = Vec::new();
    for (_, approval) in pipeline.approval_stages() {
        if let Some(approvers) = approval.approvers.as_ref().filter(|_| !looked.contains(&&approval.topic_arn)) {
            looked.push(&approval.topic_arn);
            findings.extend(approver_findings(stack, name, &approval.topic_arn, approvers).await);
        }
    }
    findings.extend(deploy_target(stack, pipeline).await);
    findings.push(match stack.store().load(name).await {
        Ok(Some(state)) if !state.value.parked.is_empty() => problem(
            format!("{name} has {} parked effect(s)", state.value.parked.len()),
            format!("`sluice effects {name}` says why; once mended, `sluice retry-effect {name} ID`"),
        ),
        Ok(_) => ok(format!("{name} has no parked effect")),
        Err(error) => problem(format!("{name}'s state cannot be read: {:#}", stack.store_error(error)), "check access"),
    });
    findings
}

/// Where each topic a pipeline names serves: the approval stage, a pause, the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicRole {
    Approval,
    Notify,
}

fn topics(pipeline: &Pipeline) -> Vec<(&str, TopicRole)> {
    let mut topics = Vec::new();
    for (_, approval) in pipeline.approval_stages() {
        topics.push((approval.topic_arn.as_str(), TopicRole::Approval));
    }
    for (_, deploy) in pipeline.deploy_stages() {
        if let DeployTarget::EcsNative(native) = &deploy.target
            && let Some(pause) = &native.approval
        {
            topics.push((pause.topic_arn.as_str(), TopicRole::Approval));
        }
    }
    if let Some(notify) = &pipeline.notify {
        topics.push((notify.topic_arn.as_str(), TopicRole::Notify));
    }
    topics.dedup();
    topics
}

/// A topic of named approvers: no subscription there may take links not its own (the approval function would send
/// none), and each approver's confirmed subscription should take theirs.
async fn approver_findings(
    stack: &Stack,
    name: &str,
    topic: &str,
    approvers: &sluice::definitions::Approvers,
) -> Vec<Finding> {
    let notifier = sluice::adapters::SnsNotifier::new(aws_sdk_sns::Client::new(&stack.config));
    let subscriptions = match sluice::contract::ports::TopicNotifier::subscriptions(&notifier, topic).await {
        Ok(subscriptions) => subscriptions,
        Err(error) => {
            let error = anyhow::Error::from(error);
            return vec![problem(format!("{name}'s approvers' topic {topic}: {error:#}"), "check access")];
        }
    };
    let mut findings: Vec<Finding> = sluice::usecases::unfit_subscriptions(&subscriptions)
        .into_iter()
        .map(|said| {
            let said = format!("{name}'s approvers' topic {topic}: its {said}; no personal link is sent there");
            problem(said, "`sluice approvers sync` names it and mends the approvers' own; unsubscribe the others")
        })
        .collect();
    let unreached = sluice::usecases::unreached(&approvers.emails, &subscriptions);
    let fine = findings.is_empty();
    findings.extend(reach(name, topic, approvers, &unreached, fine));
    findings
}

/// What `unreached` (the approvers no confirmed subscription of `topic` takes the links of) means: nothing when all
/// are reached (ok, when the topic is `fine` otherwise); a problem when too few are left to make `required`, operators
/// aside (the runs time out); else a warning.
fn reach(
    name: &str,
    topic: &str,
    approvers: &sluice::definitions::Approvers,
    unreached: &[&str],
    fine: bool,
) -> Option<Finding> {
    let said = |unreached: &[&str]| {
        format!(
            "{name}'s approvers {} get no request on {topic} (not subscribed, or not confirmed)",
            unreached.join(", ")
        )
    };
    let todo = "`sluice approvers sync`, then each confirms from AWS's mail";
    match unreached {
        [] if fine => Some(ok(format!("{name}'s approvers each take their own links on {topic}"))),
        [] => None,
        some if approvers.emails.len() - some.len() < approvers.required && approvers.operators.is_empty() => {
            Some(problem(format!("{}: fewer than the {} required", said(some), approvers.required), todo))
        }
        some => Some(warning(said(some), todo)),
    }
}

/// A CodeBuild project pipeline `name` starts (`what`: its `build`, or a test stage's `test`).
async fn build_project(stack: &Stack, name: &str, what: &str, project: &str) -> Finding {
    let pattern = stack.parameter("BuildProjects").unwrap_or_default();
    if !matches(pattern, project) {
        return problem(
            format!("{name}'s {what} project {project} is not one the stack may start (BuildProjects is {pattern:?})"),
            "deploy the stack with a BuildProjects pattern that matches it (`sam deploy --parameter-overrides`)",
        );
    }
    let client = aws_sdk_codebuild::Client::new(&stack.config);
    match client.batch_get_projects().names(project).send().await {
        Ok(answer) if answer.projects().iter().any(|p| p.name() == Some(project)) => {
            ok(format!("{name}'s {what} project {project} is there"))
        }
        Ok(_) => problem(
            format!("{name}'s {what} project {project} does not exist in {}", region(&stack.config)),
            "create it (a build project: artifacts type S3, packaging NONE), or name another in the pipeline",
        ),
        Err(error) => problem(format!("{name}'s {what} project {project}: {}", plain(&error)), "check access"),
    }
}

async fn topic_findings(stack: &Stack, name: &str, arn: &str, role: TopicRole) -> Vec<Finding> {
    let topic_name = arn.rsplit(':').next().unwrap_or(arn);
    let (output, parameter) = match role {
        TopicRole::Approval => ("ApprovalTopicArn", "ApprovalTopics"),
        TopicRole::Notify => ("NotificationTopicArn", "NotifyTopics"),
    };
    let pattern = stack.parameter(parameter).unwrap_or_default();
    if stack.output(output) != Some(arn) && (pattern.is_empty() || !matches(pattern, topic_name)) {
        return vec![problem(
            format!("{name} names topic {arn}, which the stack may not publish to ({parameter} is {pattern:?})"),
            format!("name the stack's {output}, or deploy with {parameter} matching {topic_name}"),
        )];
    }
    // SNS lists a subscription not yet confirmed with the SubscriptionArn "PendingConfirmation".
    let client = aws_sdk_sns::Client::new(&stack.config);
    let mut pages = client.list_subscriptions_by_topic().topic_arn(arn).into_paginator().send();
    let (mut confirmed, mut pending) = (0, 0);
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                return vec![problem(
                    format!("{name}'s topic {arn} cannot be found: {}", plain(&error)),
                    "create it, or name another",
                )];
            }
        };
        for subscription in page.subscriptions() {
            match subscription.subscription_arn() {
                Some("PendingConfirmation") => pending += 1,
                Some("Deleted") | None => {}
                Some(_) => confirmed += 1,
            }
        }
    }
    vec![subscriptions(name, arn, role, confirmed, pending)]
}

/// What a topic's subscriptions mean: pending ones wait for a click in a mail AWS sent; an approval topic with no
/// confirmed subscriber asks nobody.
fn subscriptions(name: &str, arn: &str, role: TopicRole, confirmed: u64, pending: u64) -> Finding {
    let said = format!("{name}'s topic {arn}: {confirmed} confirmed, {pending} pending subscription(s)");
    match (role, confirmed, pending) {
        (_, _, 1..) => warning(
            said,
            "each pending address must open the confirmation mail AWS sent it (`aws sns list-subscriptions-by-topic`)",
        ),
        (TopicRole::Approval, 0, 0) => warning(
            said,
            "nobody receives approval requests: `aws sns subscribe --protocol email --notification-endpoint ADDRESS`",
        ),
        _ => ok(said),
    }
}

/// What each deploy stage of `pipeline` needs: its cluster allowed and its service active, its CodeDeploy group or
/// its alarms there.
async fn deploy_target(stack: &Stack, pipeline: &Pipeline) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (stage, deploy) in pipeline.deploy_stages() {
        findings.extend(stage_target(stack, &pipeline.name, &deploy.target).await);
        if !deploy.alarms().is_empty() {
            findings.extend(soak_alarms(stack, &format!("{}'s {stage} stage", pipeline.name), deploy.alarms()).await);
        }
    }
    findings
}

/// The alarms that watch a stage's soak (`what`): each within the stack's SoakAlarms (else the deployer may not read
/// it and the stage cannot deploy), and there (else it watches nothing, and the deployment does not start); one in
/// ALARM now is reported as already so when the next deployment starts.
async fn soak_alarms(stack: &Stack, what: &str, names: &[String]) -> Vec<Finding> {
    let pattern = stack.parameter("SoakAlarms").unwrap_or_default();
    let outside: Vec<&str> = names.iter().filter(|name| !matches(pattern, name)).map(String::as_str).collect();
    if !outside.is_empty() {
        return vec![problem(
            format!(
                "{what} soaks watched by {}, which the stack may not read (SoakAlarms is {pattern:?})",
                outside.join(", ")
            ),
            "deploy the stack with a SoakAlarms pattern that matches them (`sam deploy --parameter-overrides`)",
        )];
    }
    let client = aws_sdk_cloudwatch::Client::new(&stack.config);
    let alarms = match describe_alarms(client.describe_alarms().set_alarm_names(Some(names.to_vec()))).await {
        Ok(alarms) => alarms,
        Err(error) => {
            return vec![problem(
                format!("{what}'s soak alarms cannot be read: {error}"),
                "check access to CloudWatch",
            )];
        }
    };
    let mut findings = Vec::new();
    for wanted in names {
        match alarms.iter().find(|a| &a.name == wanted) {
            None => findings.push(problem(
                format!("{what} soaks watched by alarm {wanted}, which does not exist in {}", stack.region()),
                "create it, or name another in soak_alarms: the stage does not deploy until then",
            )),
            Some(alarm) if alarm.state == "ALARM" => findings.push(warning(
                format!("{what}'s soak alarm {wanted} is in ALARM: {}", alarm.reason),
                "the next deployment reports it as already in ALARM (with strict_alarms, the soak fails)",
            )),
            Some(_) => findings.push(ok(format!("{what}'s soak alarm {wanted} is there, not in ALARM"))),
        }
    }
    findings
}

async fn stage_target(stack: &Stack, name: &str, target: &DeployTarget) -> Vec<Finding> {
    let (cluster, service) = match target {
        DeployTarget::BlueGreen(t) => (&t.cluster, &t.service),
        DeployTarget::Rolling(t) => (&t.cluster, &t.service),
        DeployTarget::EcsNative(t) => (&t.cluster, &t.service),
    };
    let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
    let pattern = stack.parameter("DeployClusters").unwrap_or_default();
    let mut findings = Vec::new();
    if !matches(pattern, cluster_name) {
        findings.push(problem(
            format!(
                "{name} deploys to cluster {cluster_name}, which the stack may not (DeployClusters is {pattern:?})"
            ),
            "deploy the stack with a DeployClusters pattern that matches it",
        ));
    }
    let client = aws_sdk_ecs::Client::new(&stack.config);
    let answer = client.describe_services().cluster(cluster).services(service).send().await;
    findings.push(match answer {
        Ok(answer) => match answer.services().first().and_then(|s| s.status()) {
            Some("ACTIVE") => ok(format!("{name}'s service {cluster_name}/{service} is active")),
            status => problem(
                format!(
                    "{name}'s service {service} is not active in cluster {cluster_name} ({})",
                    status.unwrap_or("missing")
                ),
                "create the service, or name another in deploy.service",
            ),
        },
        Err(error) => {
            problem(format!("{name}'s cluster {cluster_name}: {}", plain(&error)), "create it, or name another")
        }
    });
    match target {
        DeployTarget::BlueGreen(target) => {
            findings.push(code_deploy(stack, name, &target.application, &target.deployment_group).await);
        }
        DeployTarget::EcsNative(target) if !target.alarms.is_empty() => {
            findings.extend(deploy_alarms(stack, name, &target.alarms).await);
        }
        _ => {}
    }
    findings
}

async fn code_deploy(stack: &Stack, name: &str, application: &str, group: &str) -> Finding {
    let pattern = stack.parameter("DeployApplications").unwrap_or_default();
    if pattern.is_empty() || !matches(pattern, application) {
        return problem(
            format!(
                "{name} deploys with CodeDeploy application {application}, which the stack may not use (DeployApplications is {pattern:?})"
            ),
            "deploy the stack with a DeployApplications pattern that matches it",
        );
    }
    let client = aws_sdk_codedeploy::Client::new(&stack.config);
    match client.get_deployment_group().application_name(application).deployment_group_name(group).send().await {
        Ok(_) => ok(format!("{name}'s CodeDeploy group {application}/{group} is there")),
        Err(error) => problem(
            format!("{name}'s CodeDeploy group {application}/{group}: {}", plain(&error)),
            "create it (ECS, blue/green), or name another in deploy.deployment_group",
        ),
    }
}

/// One CloudWatch alarm as doctor reads it.
struct Alarm {
    name: String,
    state: String,
    reason: String,
    description: String,
}

/// The metric and composite alarms DescribeAlarms answers, every page.
async fn describe_alarms(
    ask: aws_sdk_cloudwatch::operation::describe_alarms::builders::DescribeAlarmsFluentBuilder,
) -> Result<Vec<Alarm>, String> {
    use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
    fn alarm(name: Option<&str>, state: Option<&StateValue>, reason: Option<&str>, about: Option<&str>) -> Alarm {
        let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
        Alarm {
            name: text(name),
            state: text(state.map(StateValue::as_str)),
            reason: text(reason),
            description: text(about),
        }
    }
    // DescribeAlarms answers metric alarms only unless asked for both kinds.
    let ask = ask.alarm_types(AlarmType::MetricAlarm).alarm_types(AlarmType::CompositeAlarm);
    let mut pages = ask.into_paginator().send();
    let mut alarms = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| plain(&error))?;
        alarms.extend(
            page.metric_alarms()
                .iter()
                .map(|a| alarm(a.alarm_name(), a.state_value(), a.state_reason(), a.alarm_description())),
        );
        alarms.extend(
            page.composite_alarms()
                .iter()
                .map(|a| alarm(a.alarm_name(), a.state_value(), a.state_reason(), a.alarm_description())),
        );
    }
    Ok(alarms)
}

/// The stack's own alarms (those that tell its alarm topic): one in ALARM is a problem, its description says what
/// to do.
async fn stack_alarms(stack: &Stack) -> Vec<Finding> {
    let Some(topic) = stack.output("AlarmTopicArn") else {
        return vec![warning(
            "the stack names no alarm topic (output AlarmTopicArn), so its alarms were not looked at",
            "`sam deploy` the current template",
        )];
    };
    let client = aws_sdk_cloudwatch::Client::new(&stack.config);
    // CloudWatch matches ActionPrefix against each alarm's actions; the state is read here, whatever the filter did
    let alarms = match describe_alarms(client.describe_alarms().action_prefix(topic)).await {
        Ok(alarms) => alarms,
        Err(error) => {
            return vec![problem(format!("the stack's alarms cannot be read: {error}"), "check access to CloudWatch")];
        }
    };
    let firing: Vec<Finding> = alarms
        .iter()
        .filter(|a| a.state == "ALARM")
        .map(|a| {
            let todo = if a.description.is_empty() { "see the alarm in CloudWatch" } else { &a.description };
            problem(format!("alarm {} is in ALARM: {}", a.name, a.reason), todo)
        })
        .collect();
    if firing.is_empty() { vec![ok(format!("{} alarm(s) of the stack, none in ALARM", alarms.len()))] } else { firing }
}

/// The alarms a pipeline's ECS deployments watch: one that does not exist guards nothing (a problem); one in ALARM
/// rolls back the next deployment as it starts (a warning).
async fn deploy_alarms(stack: &Stack, name: &str, names: &[String]) -> Vec<Finding> {
    let client = aws_sdk_cloudwatch::Client::new(&stack.config);
    let ask = client.describe_alarms().set_alarm_names(Some(names.to_vec()));
    let alarms = match describe_alarms(ask).await {
        Ok(alarms) => alarms,
        Err(error) => {
            return vec![problem(format!("{name}'s alarms cannot be read: {error}"), "check access to CloudWatch")];
        }
    };
    let mut findings = Vec::new();
    let mut quiet = 0;
    for wanted in names {
        match alarms.iter().find(|a| &a.name == wanted) {
            None => findings.push(problem(
                format!("{name} watches alarm {wanted}, which does not exist in {}", stack.region()),
                "create it, or name another in deploy.alarms",
            )),
            Some(alarm) if alarm.state == "ALARM" => findings.push(warning(
                format!("{name}'s alarm {wanted} is in ALARM: {}", alarm.reason),
                "a deployment started now would be rolled back: mend what it measures first",
            )),
            Some(_) => quiet += 1,
        }
    }
    if quiet > 0 {
        findings.insert(0, ok(format!("{name}'s deploy alarms: {quiet} not in ALARM")));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_no_subscription_reaches_are_a_problem_once_too_few_are_left_to_make_required() {
        let approvers = sluice::definitions::Approvers {
            emails: vec!["alice@example.com".into(), "bob@example.com".into(), "carol@example.com".into()],
            required: 2,
            forbid_pusher: false,
            operators: Vec::new(),
        };
        let level = |unreached: &[&str], fine| reach("web", "t", &approvers, unreached, fine).map(|f| f.level);
        assert_eq!(level(&[], true), Some(Level::Ok));
        assert_eq!(level(&[], false), None, "the topic's own problems are told");
        assert_eq!(level(&["bob@example.com"], true), Some(Level::Warning), "two of three reached: enough");
        let two = ["bob@example.com", "carol@example.com"];
        assert_eq!(level(&two, true), Some(Level::Problem), "one reached, two required");
        let said = reach("web", "t", &approvers, &two, true).map(|f| f.said).unwrap_or_default();
        assert!(said.ends_with("fewer than the 2 required"), "{said}");
        // Operators may make up the rest
        let with_operators =
            sluice::definitions::Approvers { operators: vec!["arn:aws:iam::1:role/ops".into()], ..approvers };
        assert_eq!(reach("web", "t", &with_operators, &two, true).map(|f| f.level), Some(Level::Warning));
    }

    #[test]
    fn a_name_matches_the_stacks_patterns_as_iam_reads_them() {
        assert!(matches("web-*", "web-build"));
        assert!(matches("web-build", "web-build"));
        assert!(matches("web-?uild", "web-build"));
        assert!(matches("*-approvals", "web-approvals"));
        assert!(!matches("web-*", "api-build"));
        assert!(!matches("web", "web-build"));
        assert!(!matches("", "web"));
    }

    #[test]
    fn a_pending_subscription_is_a_warning_and_an_approval_topic_nobody_confirmed_too() {
        let arn = "arn:aws:sns:us-east-1:123456789012:web-approvals";
        let pending = subscriptions("web", arn, TopicRole::Approval, 1, 2);
        assert_eq!(pending.level, Level::Warning);
        assert!(pending.said.ends_with("1 confirmed, 2 pending subscription(s)"), "{}", pending.said);
        assert!(pending.todo.is_some_and(|todo| todo.contains("confirmation mail")));
        assert_eq!(subscriptions("web", arn, TopicRole::Approval, 0, 0).level, Level::Warning);
        assert_eq!(subscriptions("web", arn, TopicRole::Notify, 0, 0).level, Level::Ok);
        assert_eq!(subscriptions("web", arn, TopicRole::Approval, 3, 0).level, Level::Ok);
    }

    #[test]
    fn a_stack_rolled_back_or_failed_is_a_problem_and_one_changing_a_warning() {
        assert_eq!(stack_status("sluice", "UPDATE_COMPLETE", "us-east-1").level, Level::Ok);
        assert_eq!(stack_status("sluice", "UPDATE_IN_PROGRESS", "us-east-1").level, Level::Warning);
        assert_eq!(stack_status("sluice", "UPDATE_ROLLBACK_COMPLETE", "us-east-1").level, Level::Warning);
        assert_eq!(stack_status("sluice", "ROLLBACK_COMPLETE", "us-east-1").level, Level::Problem);
        assert_eq!(stack_status("sluice", "CREATE_FAILED", "us-east-1").level, Level::Problem);
    }
}
