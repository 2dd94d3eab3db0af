//! What template.yaml promises a user who deploys it: least-privilege roles, every failure kept and alarmed, the
//! public functions capped. Read from the template itself (cfn-lint and `sam validate --lint` check the rest).

use anyhow::{Context, Result};
use serde_norway::Value;
use sluice_integration::Template;
use sluice_integration::template::named;

/// The actions AWS lets a policy name only with `Resource: "*"` (the Service Authorization Reference lists no
/// resource type for them).
const NO_RESOURCE_LEVEL: [&str; 4] = [
    "ecs:RegisterTaskDefinition",
    "ecs:ListTaskDefinitions",
    "ecs:DescribeTaskDefinition",
    "sns:GetSubscriptionAttributes",
];

#[test]
fn no_function_may_act_on_every_resource_but_where_aws_allows_nothing_narrower() -> Result<()> {
    let statements = Template::load()?.function_statements();
    assert!(statements.len() > 40, "{statements:#?}");
    for statement in statements {
        let what = format!("{} statement {}", statement.function, statement.sid);
        assert!(!statement.actions.is_empty(), "{what} grants nothing");
        assert!(statement.actions.iter().all(|action| !action.contains('*')), "{what}: {:?}", statement.actions);
        assert!(!statement.resources.is_empty(), "{what} names no resource");
        if statement.resources.iter().any(|resource| resource.as_str() == Some("*")) {
            for action in &statement.actions {
                assert!(NO_RESOURCE_LEVEL.contains(&action.as_str()), "{what}: {action} on every resource");
            }
        }
    }
    Ok(())
}

#[test]
fn the_functions_write_only_the_pipeline_items_never_the_published_definitions() -> Result<()> {
    let writes: Vec<_> = Template::load()?
        .function_statements()
        .into_iter()
        .filter(|statement| {
            let read = |action: &str| matches!(action, "dynamodb:GetItem" | "dynamodb:Query");
            statement.actions.iter().any(|action| action.starts_with("dynamodb:") && !read(action))
        })
        .collect();
    assert_eq!(writes.len(), 9, "one write statement per function: {writes:#?}");
    for statement in writes {
        assert_eq!(statement.actions, ["dynamodb:PutItem"], "{}", statement.function);
        let keys = &statement.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        let keys: Vec<&str> =
            keys.as_sequence().context("no dynamodb:LeadingKeys")?.iter().filter_map(Value::as_str).collect();
        assert_eq!(keys, ["PIPELINE#*", "EXECUTION#*", "AWSID#*", "RECEIPT#*"], "{}", statement.function);
    }
    Ok(())
}

#[test]
fn only_the_functions_that_read_a_builds_outputs_look_its_image_up_in_ecr_and_only_there() -> Result<()> {
    let statements = Template::load()?.function_statements();
    let lookups: Vec<_> = statements.iter().filter(|s| s.actions.iter().any(|a| a.starts_with("ecr:"))).collect();
    let mut functions: Vec<&str> = lookups.iter().map(|s| s.function.as_str()).collect();
    functions.sort();
    assert_eq!(functions, ["BuildEventsFunction", "ReconcilerFunction"]);
    for statement in lookups {
        assert_eq!(statement.actions, ["ecr:DescribeImages"], "{}", statement.function);
        let resource = format!("{:?}", statement.resources);
        assert!(resource.contains(":ecr:*:${AWS::AccountId}:repository/*"), "{}: {resource}", statement.function);
    }
    Ok(())
}

#[test]
fn only_the_approval_functions_read_subscriptions_and_list_only_the_approval_topics() -> Result<()> {
    let statements = Template::load()?.function_statements();
    let reading = |action: &str| {
        let with: Vec<_> = statements.iter().filter(|s| s.actions.iter().any(|a| a == action)).collect();
        let mut functions: Vec<&str> = with.iter().map(|s| s.function.as_str()).collect();
        functions.sort();
        assert_eq!(functions, ["ApprovalFunction", "ApprovalRequestsFunction"], "{action}");
        with
    };
    for statement in reading("sns:GetSubscriptionAttributes") {
        assert_eq!(
            statement.actions,
            ["sns:GetSubscriptionAttributes"],
            "{}: alone on every resource",
            statement.function
        );
    }
    for statement in reading("sns:ListSubscriptionsByTopic") {
        let resources = format!("{:?}", statement.resources);
        assert!(resources.contains("ApprovalTopic") && resources.contains("${ApprovalTopics}"), "{resources}");
        assert!(!statement.resources.iter().any(|r| r.as_str() == Some("*")), "{resources}");
    }
    assert!(
        statements
            .iter()
            .all(|s| !s.actions.iter().any(|a| a == "sns:Subscribe" || a == "sns:SetSubscriptionAttributes"))
    );
    Ok(())
}

#[test]
fn the_approval_functions_read_the_builds_task_definition_and_describe_only_the_deploy_clusters_services() -> Result<()>
{
    let statements = Template::load()?.function_statements();
    for function in ["ApprovalFunction", "ApprovalRequestsFunction"] {
        let grants = |action: &str| -> Vec<String> {
            statements
                .iter()
                .filter(|s| s.function == function && s.actions.iter().any(|a| a == action))
                .map(|s| format!("{:?}", s.resources))
                .collect()
        };
        let reads = grants("s3:GetObject");
        let taskdef_only = |only: &String| only.contains(":s3:::${ArtifactBucket}/*taskdef.json\"");
        assert!(
            matches!(reads.as_slice(), [only] if taskdef_only(only)),
            "{function} reads only taskdef.json: {reads:?}"
        );
        let services = grants("ecs:DescribeServices");
        assert!(
            matches!(services.as_slice(), [only] if only.contains(":service/${DeployClusters}/*")),
            "{function}: {services:?}"
        );
        assert_eq!(grants("ecs:DescribeTaskDefinition").len(), 1, "{function}");
        let changes = ["ecs:UpdateService", "ecs:RegisterTaskDefinition", "s3:PutObject"];
        assert!(changes.iter().all(|action| grants(action).is_empty()), "{function} changes nothing in ECS or S3");
    }
    Ok(())
}

#[test]
fn only_the_functions_that_end_builds_read_test_reports_and_only_of_the_build_projects_report_groups() -> Result<()> {
    let statements = Template::load()?.function_statements();
    for action in ["codebuild:BatchGetReports", "codebuild:DescribeTestCases"] {
        let granted: Vec<&str> = statements
            .iter()
            .filter(|statement| statement.actions.iter().any(|a| a == action))
            .map(|statement| {
                let resource = format!("{:?}", statement.resources);
                assert!(resource.contains(":report-group/${BuildProjects}-*\""), "{}: {resource}", statement.function);
                statement.function.as_str()
            })
            .collect();
        assert_eq!(granted, ["BuildEventsFunction", "ReconcilerFunction"], "{action}");
    }
    let looks_up = statements.iter().filter(|s| s.actions.iter().any(|a| a == "codebuild:BatchGetBuilds"));
    let functions: Vec<&str> = looks_up.map(|statement| statement.function.as_str()).collect();
    assert_eq!(functions, ["BuildEventsFunction", "ReconcilerFunction"]);
    Ok(())
}

#[test]
fn each_secret_is_read_only_by_the_functions_that_need_it_and_only_the_status_page_queries_the_history() -> Result<()> {
    let template = Template::load()?;
    let statements = template.function_statements();
    let granting = |action: &str| -> Vec<(String, Vec<Value>)> {
        statements
            .iter()
            .filter(|statement| statement.actions.iter().any(|a| a == action))
            .map(|statement| (statement.function.clone(), statement.resources.clone()))
            .collect()
    };
    let secrets: Vec<(String, Vec<Option<String>>)> = granting("secretsmanager:GetSecretValue")
        .into_iter()
        .map(|(function, resources)| (function, resources.iter().map(named).collect()))
        .collect();
    let read = |function: &str, secret: &str| (function.to_owned(), vec![Some(secret.to_owned())]);
    assert_eq!(
        secrets,
        [
            read("GitHubWebhookFunction", "WebhookSecret"),
            read("GitHubWebhookFunction", "GitHubReadSecret"),
            read("ApprovalFunction", "StatusKeySecret"),
            read("NotifierFunction", "StatusKeySecret"),
            read("NotifierFunction", "GitHubTokenSecret"),
            read("ReconcilerFunction", "GitHubTokenSecret"),
        ]
    );
    // The GitHub token only when the stack is given one (the notifier shows runs, the reconciler redelivers pushes);
    // the public webhook never reads it, only a secret of its own that reads contents (to order pushes).
    let tokens: Vec<_> = statements.iter().filter(|statement| statement.sid == "GitHubToken").collect();
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|token| token.only_if.as_deref() == Some("ShowsOnGitHub")), "{tokens:?}");
    let read: Vec<_> = statements.iter().filter(|statement| statement.sid == "GitHubReadToken").collect();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].only_if.as_deref(), Some("OrdersPushesOnGitHub"));
    for parameter in ["GitHubTokenSecret", "GitHubReadSecret"] {
        let declared = template.parameter(parameter);
        assert_eq!(declared["Default"].as_str(), Some(""));
        let pattern = regex_lite::Regex::new(declared["AllowedPattern"].as_str().context("no AllowedPattern")?)?;
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gh-AbCdEf";
        assert!(pattern.is_match("") && pattern.is_match(arn), "{parameter}");
        assert!(!pattern.is_match("*") && !pattern.is_match("my-token"), "{parameter}");
    }
    let queries = granting("dynamodb:Query");
    let history: Vec<_> = queries.iter().filter(|(_, resource)| format!("{resource:?}").contains("/index/")).collect();
    assert_eq!(history.len(), 1, "{queries:?}");
    assert_eq!(history[0].0, "ApprovalFunction");
    let index = serde_norway::to_string(&history[0].1)?;
    assert!(index.contains("${PipelineTable.Arn}/index/history"), "{index}");
    // A run's pauses kept apart are queried in its own partition only, by the functions that show whole runs
    let pauses: Vec<_> = statements.iter().filter(|statement| statement.sid == "ReadRunPauses").collect();
    let functions: Vec<&str> = pauses.iter().map(|statement| statement.function.as_str()).collect();
    assert_eq!(functions, ["ApprovalFunction", "NotifierFunction"]);
    for statement in pauses {
        assert_eq!(statement.actions, ["dynamodb:Query"]);
        let keys = &statement.condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        assert_eq!(keys.as_sequence().map(Vec::len), Some(1), "{}", statement.function);
        assert_eq!(keys[0].as_str(), Some("EXECUTION#*"), "{}", statement.function);
    }
    assert_eq!(queries.len(), 3, "{queries:?}");
    let variables = &template.properties("ApprovalFunction")["Environment"]["Variables"];
    assert_eq!(named(&variables["SLUICE_STATUS_KEY"]).as_deref(), Some("StatusKeySecret"));
    let generated = &template.properties("StatusKeySecret")["GenerateSecretString"];
    assert!(generated["PasswordLength"].as_u64().is_some_and(|n| n >= 20) && generated["ExcludePunctuation"] == true);
    Ok(())
}

#[test]
fn codedeploy_is_granted_only_when_the_stack_is_given_its_applications_and_never_all_of_them() -> Result<()> {
    let template = Template::load()?;
    let declared = template.parameter("DeployApplications");
    assert_eq!(declared["Default"].as_str(), Some(""));
    let pattern = regex_lite::Regex::new(&format!(
        "^(?:{})$",
        declared["AllowedPattern"].as_str().context("no AllowedPattern")?
    ))?;
    assert!(pattern.is_match("") && pattern.is_match("web") && !pattern.is_match("*"));
    let codedeploy: Vec<_> = template
        .function_statements()
        .into_iter()
        .filter(|statement| statement.actions.iter().any(|action| action.starts_with("codedeploy:")))
        .collect();
    assert_eq!(codedeploy.len(), 6, "{codedeploy:#?}");
    for statement in codedeploy {
        assert_eq!(statement.only_if.as_deref(), Some("UsesCodeDeploy"), "{} {}", statement.function, statement.sid);
    }
    Ok(())
}

#[test]
fn the_build_projects_the_clusters_and_the_task_roles_must_be_named_at_deploy_time() -> Result<()> {
    let template = Template::load()?;
    for parameter in ["BuildProjects", "DeployClusters", "TaskRoles"] {
        let declared = template.parameter(parameter);
        assert!(declared.is_mapping(), "no parameter {parameter}");
        assert!(declared["Default"].is_null(), "{parameter} has a default: {:?}", declared["Default"]);
        // CloudFormation refuses a value its AllowedPattern does not match, whole.
        let pattern = declared["AllowedPattern"].as_str().context("no AllowedPattern")?;
        let pattern = regex_lite::Regex::new(&format!("^(?:{pattern})$"))?;
        for refused in ["*", "**", "?", ""] {
            assert!(!pattern.is_match(refused), "{parameter} accepts {refused:?}");
        }
        for accepted in ["web-*", "web-build", "prod"] {
            assert!(pattern.is_match(accepted), "{parameter} refuses {accepted:?}");
        }
    }
    Ok(())
}

#[test]
fn every_dead_letter_queue_and_the_parked_effects_tell_the_alarm_topic() -> Result<()> {
    let template = Template::load()?;
    let alarms: Vec<(String, &Value)> = template.of_type("AWS::CloudWatch::Alarm").collect();
    let tells_the_topic = |alarm: &Value| {
        alarm["AlarmActions"]
            .as_sequence()
            .is_some_and(|actions| actions.iter().any(|a| named(a).as_deref() == Some("AlarmTopic")))
    };
    let queues: Vec<String> = template.of_type("AWS::SQS::Queue").map(|(id, _)| id).collect();
    assert_eq!(queues.len(), 6, "{queues:?}");
    for queue in queues {
        let alarm = alarms.iter().find(|(_, alarm)| {
            alarm["Dimensions"]
                .as_sequence()
                .is_some_and(|d| d.iter().any(|d| named(&d["Value"]).as_deref() == Some(&format!("{queue}.QueueName"))))
        });
        let (id, alarm) = alarm.with_context(|| format!("no alarm watches {queue}"))?;
        assert_eq!(alarm["MetricName"].as_str(), Some("ApproximateNumberOfMessagesVisible"), "{id}");
        assert!(tells_the_topic(alarm), "{id} tells nobody");
    }
    let parked = template.properties("ParkedEffectsAlarm");
    assert_eq!(parked["MetricName"].as_str(), Some("EffectsParked"));
    assert!(tells_the_topic(parked), "ParkedEffectsAlarm tells nobody");
    let lost = template.properties("PushesNotRecordedAlarm");
    assert_eq!(lost["MetricName"].as_str(), Some("PushesNotRecorded"));
    assert!(tells_the_topic(lost), "PushesNotRecordedAlarm tells nobody");
    Ok(())
}

#[test]
fn every_metric_filter_counts_a_line_sluice_logs_and_feeds_an_alarm() -> Result<()> {
    let template = Template::load()?;
    let logged = [
        (sluice::usecases::NOT_RECORDED, "PushesNotRecorded"),
        // The engine's parked effects (shared/src/usecases/engine.rs).
        ("sluice.effect_parked", "EffectsParked"),
    ];
    let filters: Vec<(String, &Value)> = template.of_type("AWS::Logs::MetricFilter").collect();
    assert!(filters.len() >= 2, "{filters:?}");
    let alarmed: Vec<&str> =
        template.of_type("AWS::CloudWatch::Alarm").filter_map(|(_, alarm)| alarm["MetricName"].as_str()).collect();
    for (id, filter) in filters {
        let pattern = filter["FilterPattern"].as_str().unwrap_or_default();
        let metric = filter["MetricTransformations"][0]["MetricName"].as_str().unwrap_or_default();
        let line = logged.iter().find(|(_, name)| *name == metric).map(|(line, _)| *line);
        let line = line.with_context(|| format!("{id} counts {metric}, which no line sluice logs is known to feed"))?;
        assert_eq!(pattern, format!("{{ $.fields.message = \"{line}\" }}"), "{id}");
        assert!(alarmed.contains(&metric), "no alarm watches {metric} ({id})");
    }
    let source = std::fs::read_to_string(sluice_integration::workspace_root().join("shared/src/usecases/engine.rs"))?;
    assert!(source.contains("\"sluice.effect_parked\""), "the engine no longer logs sluice.effect_parked");
    Ok(())
}

#[test]
fn every_function_a_rule_invokes_sends_what_fails_after_its_retries_to_a_dead_letter_queue() -> Result<()> {
    let template = Template::load()?;
    let mut invoked: Vec<String> = template
        .rule_targets()
        .into_iter()
        .filter_map(|target| {
            let rule = template.properties(&target.rule);
            let targets = rule["Targets"].as_sequence()?;
            targets.iter().find(|t| t["Id"].as_str() == Some(&target.id)).and_then(|t| named(&t["Arn"]))
        })
        .collect();
    invoked.sort();
    invoked.dedup();
    assert_eq!(invoked.len(), 6, "{invoked:?}");
    for function in invoked {
        let config = &template.properties(&function)["EventInvokeConfig"];
        let queue = named(&config["DestinationConfig"]["OnFailure"]["Destination"]);
        let queue = queue.with_context(|| format!("{function} has no on-failure destination"))?;
        assert_eq!(config["DestinationConfig"]["OnFailure"]["Type"].as_str(), Some("SQS"), "{function}");
        assert!(template.properties(&queue).is_mapping(), "{function}: {queue} is not in the template");
        assert_eq!(config["MaximumRetryAttempts"].as_u64(), Some(2), "{function}");
    }
    Ok(())
}

#[test]
fn the_public_function_urls_have_reserved_concurrency_and_every_function_is_traced() -> Result<()> {
    let template = Template::load()?;
    let functions: Vec<(String, &Value)> = template.of_type("AWS::Serverless::Function").collect();
    assert_eq!(functions.len(), 9);
    for (id, properties) in &functions {
        let public = properties["FunctionUrlConfig"]["AuthType"].as_str() == Some("NONE");
        let reserved = &properties["ReservedConcurrentExecutions"];
        assert_eq!(public, !reserved.is_null(), "{id}: public {public}, reserved concurrency {reserved:?}");
    }
    let globals = serde_norway::from_str::<Value>(&std::fs::read_to_string(
        sluice_integration::workspace_root().join("template.yaml"),
    )?)?;
    let function = &globals["Globals"]["Function"];
    assert_eq!(function["Tracing"].as_str(), Some("Active"));
    assert_eq!(function["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    Ok(())
}

#[test]
fn approval_requests_link_to_the_url_the_stack_configures_and_no_event_can_name_another() -> Result<()> {
    let template = Template::load()?;
    let url =
        named(&template.properties("ApprovalRequestsFunction")["Environment"]["Variables"]["SLUICE_APPROVAL_URL"]);
    assert_eq!(url.as_deref(), Some("ApprovalFunctionUrl.FunctionUrl"));
    let asking: Vec<(String, Value)> = ["ApprovalRequestedRule", "ApprovalDueRule"]
        .iter()
        .flat_map(|rule| {
            let targets = template.properties(rule)["Targets"].as_sequence().cloned().unwrap_or_default();
            targets.into_iter().map(move |target| (rule.to_string(), target))
        })
        .collect();
    assert_eq!(asking.len(), 2, "{asking:?}");
    for (rule, target) in &asking {
        assert_eq!(named(&target["Arn"]).as_deref(), Some("ApprovalRequestsFunction"), "{rule}");
        // The event as the bus has it: nothing added by the rule for the function to trust.
        assert!(target["InputTransformer"].is_null() && target["Input"].is_null(), "{rule} reshapes its event");
    }
    // The public function is invoked by its URL alone, and mails only a decision's next request (linking to the URL
    // the decision came through), so it is told no URL.
    let public = template.properties("ApprovalFunction");
    assert!(public["Environment"]["Variables"]["SLUICE_APPROVAL_URL"].is_null());
    let invoked: Vec<String> = template
        .of_type("AWS::Lambda::Permission")
        .filter(|(_, permission)| permission["Principal"].as_str() == Some("events.amazonaws.com"))
        .filter_map(|(_, permission)| named(&permission["FunctionName"]))
        .collect();
    assert!(!invoked.iter().any(|function| function == "ApprovalFunction"), "{invoked:?}");
    assert!(invoked.iter().any(|function| function == "ApprovalRequestsFunction"), "{invoked:?}");
    Ok(())
}

#[test]
fn the_hooks_function_runs_as_long_as_check_counts_on_when_it_warns_of_a_slow_check() -> Result<()> {
    let template = Template::load()?;
    let timeout = template.properties("HooksFunction")["Timeout"].as_u64();
    assert_eq!(timeout, Some(sluice::definitions::HOOKS_FUNCTION_SECS));
    Ok(())
}

/// The effect kinds each binary's runner owns, as the code says.
fn owned_effects() -> Vec<(&'static str, Vec<String>)> {
    use sluice::usecases::EffectRunner;
    let names = |kinds: &[sluice::pipeline::EffectKind]| kinds.iter().map(|kind| format!("{kind:?}")).collect();
    vec![
        ("github-webhook", names(<github_webhook::handler::Effects as EffectRunner>::KINDS)),
        ("build-events", names(<build_events::handler::Effects as EffectRunner>::KINDS)),
        ("approval", names(<approval::handler::Effects as EffectRunner>::KINDS)),
        ("deployer", names(<deployer::handler::Effects as EffectRunner>::KINDS)),
        ("deploy-events", names(<deploy_events::handler::Effects as EffectRunner>::KINDS)),
        ("hooks", names(<hooks::handler::Effects as EffectRunner>::KINDS)),
        ("notifier", names(<notifier::handler::Effects as EffectRunner>::KINDS)),
        ("reconciler", names(<reconciler::handler::Effects as EffectRunner>::KINDS)),
    ]
}

#[test]
fn the_readmes_map_lists_every_function_what_wakes_it_the_effects_its_code_owns_and_what_it_publishes() -> Result<()> {
    let template = Template::load()?;
    let map = sluice_integration::map::readme_map()?;
    // Every function of the template is a row, and every row a function of the template
    let mut functions: Vec<String> = template.of_type("AWS::Serverless::Function").map(|(id, _)| id).collect();
    let mut rows: Vec<String> = map.iter().map(|row| row.function.clone()).collect();
    functions.sort();
    rows.sort();
    assert_eq!(rows, functions, "the README's map and template.yaml list other functions");
    let row = |function: &str| map.iter().find(|row| row.function == function);
    // Every rule's target is in the map, woken by each detail-type the rule routes to it
    for rule in template.rules()? {
        for function in template.targets(&rule.logical_id) {
            let Some(row) = row(&function) else {
                panic!("rule {} wakes {function}, which the map lacks", rule.logical_id)
            };
            for kind in rule.detail_types() {
                let woken = row.woken_by.contains(&format!("`{kind}`"));
                assert!(woken, "{function} is woken by {kind:?} ({})", rule.logical_id);
            }
        }
    }
    // And each detail-type a row names is one a rule routes to that function
    let rules = template.rules()?;
    let every_type: Vec<String> = rules.iter().flat_map(|rule| rule.detail_types()).collect();
    for row in &map {
        for kind in every_type.iter().filter(|kind| row.woken_by.contains(&format!("`{kind}`"))) {
            let routed = rules.iter().any(|rule| {
                template.targets(&rule.logical_id).contains(&row.function) && rule.detail_types().contains(kind)
            });
            assert!(routed, "the map says {kind:?} wakes {}, but no rule routes it there", row.function);
        }
    }
    // What else wakes a function: its URL, its schedule
    for (id, properties) in template.of_type("AWS::Serverless::Function") {
        let row = row(&id).context("checked above")?;
        let url = !properties["FunctionUrlConfig"].is_null();
        assert_eq!(url, row.woken_by.contains("function URL"), "{id}: a function URL is {url}");
        let scheduled = properties["Events"].as_mapping().is_some_and(|events| {
            events.values().any(|event| event["Type"].as_str().is_some_and(|kind| kind.starts_with("Schedule")))
        });
        assert_eq!(scheduled, row.woken_by.contains("schedule"), "{id}: scheduled is {scheduled}");
    }
    // Each row's binary is what the Makefile packages for it, and owns the effects its runner owns in the code
    let makefile = std::fs::read_to_string(sluice_integration::workspace_root().join("Makefile"))?;
    let owned = owned_effects();
    for row in &map {
        assert!(
            makefile.contains(&format!("{}={}", row.function, row.binary)),
            "{row:?}: not what the Makefile packages"
        );
        let (_, kinds) = owned.iter().find(|(binary, _)| *binary == row.binary).context("a binary the map names")?;
        assert_eq!(&row.effects, kinds, "{}: the effects it owns", row.function);
        // and publishes only if it owns Publish
        let owns_publish = kinds.iter().any(|kind| kind == "Publish");
        assert!(row.publishes.is_empty() || owns_publish, "{} publishes without owning Publish", row.function);
    }
    // The events the map says the functions publish are those the rules on sluice's bus route, every one
    let mut published: Vec<&String> = map.iter().flat_map(|row| &row.publishes).collect();
    let mut routed: Vec<String> =
        rules.iter().filter(|rule| rule.on_sluice_bus).flat_map(|rule| rule.detail_types()).collect();
    published.sort();
    published.dedup();
    routed.sort();
    routed.dedup();
    assert_eq!(published, routed.iter().collect::<Vec<_>>(), "what the functions publish and what the rules route");
    Ok(())
}
