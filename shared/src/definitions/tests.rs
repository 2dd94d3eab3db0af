//! Definitions: the example file loads, defaults apply, and every kind of mistake points at its line.

use super::*;

const EXAMPLE: &str = include_str!("../../../infra/pipelines.example.toml");

fn errors(text: &str) -> Vec<String> {
    match Definitions::check("pipelines.toml", text) {
        Ok(_) => panic!("expected errors, the file loaded"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

const MINIMAL: &str = r#"
[pipelines.api]
source = { repository = "acme/api" }
build = { project = "api-build" }
deploy = { strategy = "rolling", cluster = "internal", service = "api" }
"#;

const README: &str = include_str!("../../../README.md");

/// The README's TOML examples: each a whole file, or a pipeline's deploy table for the README's `web` pipeline.
fn readme_examples() -> Vec<String> {
    README.split("```toml\n").skip(1).filter_map(|block| block.split("```").next()).map(str::to_owned).collect()
}

#[test]
fn every_pipeline_the_readme_shows_is_valid_and_deploys_by_the_strategy_it_names() {
    let examples = readme_examples();
    assert!(examples.len() >= 5, "{examples:#?}");
    let web = "[pipelines.web.source]\nrepository = \"acme/web\"\n[pipelines.web.build]\nproject = \"web-build\"\n\
               [pipelines.web.approval]\ntopic = \"arn:aws:sns:eu-west-1:123456789012:web-approvals\"\n";
    let mut strategies = Vec::new();
    for example in examples {
        let whole = example.contains(".source]") || example.contains("\nsource = {");
        let text = if whole { example.clone() } else { format!("{web}{example}") };
        let definitions = match Definitions::check("README.md", &text) {
            Ok(definitions) => definitions,
            Err(errors) => panic!("{errors}\nin:\n{example}"),
        };
        assert!(definitions.warnings().is_empty(), "{:?}\nin:\n{example}", definitions.warnings());
        let strategy = definitions.get("web").map(|web| web.deploy().strategy().to_owned());
        let named = example.lines().find_map(|line| line.strip_prefix("strategy = ")).map(|s| s.trim_matches('"'));
        assert_eq!(strategy.as_deref(), named, "{example}");
        strategies.extend(strategy);
        if example.contains("[pipelines.web.github]") {
            let shown = definitions.get("web").and_then(|web| web.github.clone()).map(|github| github.environment);
            assert_eq!(shown.as_deref(), Some("production"), "{example}");
        }
    }
    strategies.sort();
    assert_eq!(strategies, ["blue_green", "ecs_blue_green", "ecs_canary", "ecs_linear", "rolling", "rolling"]);
}

#[test]
fn the_example_file_loads_with_both_deploy_strategies_and_a_pipeline_of_stages() {
    let definitions = Definitions::check("pipelines.example.toml", EXAMPLE).expect("the example is valid");
    assert!(definitions.warnings().is_empty(), "{:?}", definitions.warnings());
    assert_eq!(definitions.len(), 3);
    let shop = definitions.get("shop").expect("shop");
    let stages: Vec<&str> = shop.stages.iter().map(|stage| stage.name.as_str()).collect();
    assert_eq!(stages, ["staging", "e2e", "sign-off", "production"]);
    assert_eq!(shop.stages[1].test().and_then(|test| test.codebuild()), Some("shop-e2e-build"));
    let web = definitions.get("web").expect("web");
    assert_eq!(web.mode, ExecutionMode::Superseded);
    assert_eq!(web.approval().map(|a| a.timeout_secs), Some(2 * 24 * 3600));
    let DeployTarget::BlueGreen(target) = web.deploy() else { panic!("web is blue/green") };
    assert_eq!(target.deployment_config, "CodeDeployDefault.ECSCanary10Percent5Minutes");
    assert_eq!(target.checks[0].hook, "AfterAllowTestTraffic");
    assert_eq!(target.checks[0].timeout_secs, 10);
    assert_eq!(target.checks[0].method, "GET");
    assert_eq!((target.checks[0].retries, target.checks[0].interval_secs), (2, 5));
    assert_eq!(target.checks[0].expect_body.as_deref(), Some("ok"));
    let api = definitions.get("api").expect("api");
    assert_eq!(api.mode, ExecutionMode::Queued);
    assert!(matches!(api.deploy(), DeployTarget::Rolling(r) if r.circuit_breaker.rollback && r.maximum_percent == 200));
}

#[test]
fn defaults_fill_what_a_pipeline_leaves_out() {
    let definitions = Definitions::parse("p.toml", MINIMAL).expect("valid");
    let api = definitions.get("api").expect("api");
    assert_eq!(api.mode, ExecutionMode::Superseded);
    assert!(api.approval().is_none());
    let DeployTarget::Rolling(rolling) = api.deploy() else { panic!("rolling") };
    assert_eq!((rolling.minimum_healthy_percent, rolling.maximum_percent), (100, 200));
    assert_eq!(rolling.circuit_breaker, CircuitBreaker { enable: true, rollback: true });
    let with_approval = format!("{MINIMAL}approval = {{ topic = \"arn:aws:sns:us-east-1:123456789012:t\" }}\n");
    let definitions = Definitions::parse("p.toml", &with_approval).expect("valid");
    let approval = definitions.get("api").and_then(|p| p.approval().cloned()).expect("approval");
    assert_eq!(approval.timeout_secs, 7 * 24 * 3600);
}

#[test]
fn a_syntax_error_names_the_line_and_column() {
    let text = "[pipelines.web]\nsource = { repository = \"acme/web\" \n";
    let errors = errors(text);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("pipelines.toml:2:"), "{errors:?}");
}

#[test]
fn an_unknown_field_names_the_pipeline_the_field_and_the_line() {
    let text = MINIMAL.replace("build = {", "biuld = { project = \"x\" }\nbuild = {");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("pipelines.toml:4:1: pipeline `api`, field `biuld`: unknown field `biuld`"),
        "{errors:?}"
    );
}

#[test]
fn a_missing_field_names_the_pipeline() {
    let text = "[pipelines.api]\nsource = { repository = \"acme/api\" }\ndeploy = { strategy = \"rolling\", cluster = \"c\", service = \"s\" }\n";
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("pipeline `api`"), "{errors:?}");
    assert!(errors[0].contains("`build` is missing: add [pipelines.api.build]"), "{errors:?}");
}

#[test]
fn every_invalid_value_is_reported_at_once_each_at_its_line() {
    let text = r#"[pipelines.web]
mode = "parallel"

[pipelines.web.source]
repository = "not-a-repo"
branches = { include = ["release/[unclosed"] }

[pipelines.web.build]
project = "-bad"
environment = { CODEBUILD_X = "1" }

[pipelines.web.approval]
topic = "arn:aws:sqs:eu-west-1:123456789012:q"
timeout = "90d"

[pipelines.web.deploy]
strategy = "blue_green"
cluster = "prod"
service = "web"
maximum_percent = 150

[[pipelines.web.deploy.checks]]
hook = "AfterRollout"
url = "ftp://x"
expect_status = 700
timeout = "soon"
method = "TRACE"
expect_body = ""
retries = 99
interval = "1h"
"#;
    let errors = errors(text);
    let expected = [
        "pipelines.toml:2:8: pipeline `web`, field `mode`: must be \"superseded\" or \"queued\"",
        "pipelines.toml:5:14: pipeline `web`, field `source.repository`: must look like owner/name",
        "pipelines.toml:6:25: pipeline `web`, field `source.branches.include[0]`: invalid glob",
        "pipelines.toml:9:11: pipeline `web`, field `build.project`: must be a CodeBuild project name",
        "pipelines.toml:10:17: pipeline `web`, field `build.environment.CODEBUILD_X`: names starting with CODEBUILD_",
        "pipelines.toml:13:9: pipeline `web`, field `approval.topic`: must be an SNS topic ARN",
        "pipelines.toml:14:11: pipeline `web`, field `approval.timeout`: must be between 5m and 60d",
        "pipelines.toml:17:12: pipeline `web`, field `deploy.application`: is required",
        "pipelines.toml:17:12: pipeline `web`, field `deploy.deployment_group`: is required",
        "pipelines.toml:20:19: pipeline `web`, field `deploy.maximum_percent`: only applies to strategy = \"rolling\"",
        "pipelines.toml:23:8: pipeline `web`, field `deploy.checks[0].hook`: must be one of BeforeInstall",
        "pipelines.toml:24:7: pipeline `web`, field `deploy.checks[0].url`: must be an http:// or https:// URL",
        "pipelines.toml:25:17: pipeline `web`, field `deploy.checks[0].expect_status`: must be an HTTP status",
        "pipelines.toml:26:11: pipeline `web`, field `deploy.checks[0].timeout`: must be a duration",
        "pipelines.toml:27:10: pipeline `web`, field `deploy.checks[0].method`: must be one of GET, HEAD, POST, OPTIONS",
        "pipelines.toml:28:15: pipeline `web`, field `deploy.checks[0].expect_body`: must be 1 to 128 bytes",
        "pipelines.toml:29:11: pipeline `web`, field `deploy.checks[0].retries`: must be 0 to 20 (got 99)",
        "pipelines.toml:30:12: pipeline `web`, field `deploy.checks[0].interval`: must be between 1s and 5m",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(error.starts_with(expected), "{error}\n  should start with\n{expected}");
    }
}

#[test]
fn an_empty_file_says_to_define_a_pipeline() {
    assert_eq!(
        errors(""),
        ["pipelines.toml:1:1: field `pipelines`: no pipeline is defined: add a [pipelines.<name>] table"]
    );
}

#[test]
fn a_rolling_update_that_cannot_replace_a_task_is_refused() {
    let text = MINIMAL.replace("service = \"api\" }", "service = \"api\", maximum_percent = 100 }");
    let errors = errors(&text);
    assert!(errors[0].contains("field `deploy.maximum_percent`: with minimum_healthy_percent = 100"), "{errors:?}");
}

#[test]
fn branch_filters_follow_git_style_globs() {
    let filter = GlobFilter::new(vec!["main".into(), "release/*".into()], vec!["release/old".into()]).expect("valid");
    assert!(filter.accepts("main"));
    assert!(filter.accepts("release/1.2"));
    assert!(!filter.accepts("release/1.2/hotfix"), "* stays within one segment");
    assert!(!filter.accepts("release/old"), "exclude wins");
    assert!(!filter.accepts("feature/x"));
}

#[test]
fn without_branch_or_tag_filters_only_the_default_branch_triggers() {
    let definitions = Definitions::parse("p.toml", MINIMAL).expect("valid");
    let source = &definitions.get("api").expect("api").source;
    assert!(source.accepts_ref("refs/heads/trunk", "trunk"));
    assert!(!source.accepts_ref("refs/heads/feature", "trunk"));
    assert!(!source.accepts_ref("refs/tags/v1.0", "trunk"));
}

#[test]
fn tags_trigger_only_when_a_tag_filter_accepts_them() {
    let definitions = Definitions::parse("example", EXAMPLE).expect("valid");
    let source = &definitions.get("web").expect("web").source;
    assert!(source.accepts_ref("refs/tags/v1.2.0", "main"));
    assert!(!source.accepts_ref("refs/tags/v1.2.0-rc1", "main"));
    assert!(!source.accepts_ref("refs/heads/develop", "main"));
    assert!(!source.accepts_ref("refs/pull/1/head", "main"));
}

#[test]
fn path_filters_need_one_changed_file_they_accept() {
    let definitions = Definitions::parse("example", EXAMPLE).expect("valid");
    let source = &definitions.get("web").expect("web").source;
    assert!(source.accepts_files(["README.md", "src/app/main.rs"]));
    assert!(!source.accepts_files(["docs/guide.md", "src/notes.md"]));
    assert!(source.accepts_files([]), "a push that lists no files is not filtered out");
}

#[test]
fn pipelines_are_found_by_repository_regardless_of_case() {
    let definitions = Definitions::parse("example", EXAMPLE).expect("valid");
    let names: Vec<&str> = definitions.for_repository("ACME/Web").map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web"]);
}

#[test]
fn durations_read_one_number_and_one_unit() {
    use super::validate::parse_duration;
    assert_eq!(parse_duration("90s"), Some(90));
    assert_eq!(parse_duration("15m"), Some(900));
    assert_eq!(parse_duration("7d"), Some(604_800));
    assert_eq!(parse_duration("1.5h"), None);
    assert_eq!(parse_duration("h"), None);
    assert_eq!(parse_duration("99999999999999999999d"), None);
}

#[test]
fn a_rolling_pipeline_runs_its_checks_after_the_rollout_and_refuses_blue_green_hook_names() {
    let text = r#"
[pipelines.api]
source = { repository = "acme/api" }
build = { project = "api-build" }

[pipelines.api.deploy]
strategy = "rolling"
cluster = "internal"
service = "api"

[[pipelines.api.deploy.checks]]
hook = "AfterRollout"
url = "http://api/health"
"#;
    let definitions = Definitions::parse("pipelines.toml", text).expect("valid");
    let deploy = &definitions.get("api").expect("api").deploy();
    assert_eq!(deploy.after_rollout_checks().len(), 1);
    assert_eq!(deploy.after_rollout_checks()[0].url, "http://api/health");

    let errors = errors(&text.replace(r#"hook = "AfterRollout""#, r#"hook = "BeforeAllowTraffic""#));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("deploy.checks[0].hook"), "{errors:#?}");
    assert!(errors[0].contains("AfterRollout"), "{errors:#?}");
}

#[test]
fn a_pipeline_may_name_the_container_the_image_goes_in_and_a_name_ecs_would_refuse_is_an_error() {
    let named = MINIMAL.replace(r#"service = "api" }"#, r#"service = "api", container = "api-app" }"#);
    let definitions = Definitions::parse("pipelines.toml", &named).expect("valid");
    assert_eq!(definitions.get("api").and_then(|p| p.deploy().container()), Some("api-app"));

    let wrong = MINIMAL.replace(r#"service = "api" }"#, r#"service = "api", container = "api app" }"#);
    let errors = errors(&wrong);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("pipelines.toml:5:"), "{errors:?}");
    assert!(errors[0].contains("field `deploy.container`: must be a container name"), "{errors:?}");
}

#[test]
fn an_ecs_native_pipeline_reads_its_shift_bake_time_alarms_and_stage_checks_with_ecss_defaults() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }
[pipelines.web.deploy]
strategy = "ecs_canary"
cluster = "prod"
service = "web"
bake_time = "15m"
canary = { percent = 12.5 }
alarms = ["web-5xx"]

[[pipelines.web.deploy.checks]]
hook = "POST_TEST_TRAFFIC_SHIFT"
url = "http://web-test.internal/health"
"#;
    let definitions = Definitions::parse("p.toml", text).expect("valid");
    let web = definitions.get("web").expect("web");
    assert_eq!(web.deploy().strategy(), "ecs_canary");
    let DeployTarget::EcsNative(target) = web.deploy() else { panic!("ECS-native") };
    assert_eq!(target.shift, TrafficShift::Canary { tenths: 125, bake_time_minutes: 10 });
    assert_eq!(target.bake_time_minutes, 15);
    assert_eq!(target.alarms, ["web-5xx"]);
    assert_eq!(target.circuit_breaker, CircuitBreaker { enable: true, rollback: true });
    assert_eq!(target.checked_stages(), ["POST_TEST_TRAFFIC_SHIFT"]);
    let linear = text.replace("ecs_canary", "ecs_linear").replace("canary = { percent = 12.5 }\n", "");
    let definitions = Definitions::parse("p.toml", &linear).expect("valid");
    let Some(DeployTarget::EcsNative(target)) = definitions.get("web").map(|p| p.deploy()) else { panic!("native") };
    assert_eq!(target.shift, TrafficShift::Linear { step_tenths: 100, step_bake_time_minutes: 6 });
}

#[test]
fn ecs_native_fields_out_of_range_or_on_the_wrong_strategy_are_errors_at_their_line() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }
[pipelines.web.deploy]
strategy = "ecs_linear"
cluster = "prod"
service = "web"
bake_time = "90s"
linear = { step_percent = 2.5 }
canary = { percent = 5 }
deployment_group = "g"

[[pipelines.web.deploy.checks]]
hook = "AfterAllowTestTraffic"
url = "http://web-test.internal/health"

[pipelines.api]
source = { repository = "acme/api" }
build = { project = "api-build" }
deploy = { strategy = "rolling", cluster = "c", service = "api", bake_time = "5m" }
"#;
    let errors = errors(text);
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(has("field `deploy.bake_time`: ECS takes whole minutes (got \"90s\")"), "{errors:?}");
    assert!(has("field `deploy.linear.step_percent`: must be a multiple of 0.1 from 3 to 100 (got 2.5)"), "{errors:?}");
    assert!(has("field `deploy.canary`: only applies to strategy = \"ecs_canary\""), "{errors:?}");
    assert!(has("field `deploy.deployment_group`: only applies to strategy = \"blue_green\""), "{errors:?}");
    assert!(has("field `deploy.checks[0].hook`: must be one of RECONCILE_SERVICE, PRE_SCALE_UP"), "{errors:?}");
    assert!(
        has("pipeline `api`, field `deploy.bake_time`: only applies to strategy = \"ecs_blue_green\""),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| e.starts_with("pipelines.toml:")), "{errors:?}");
}

#[test]
fn an_approval_inside_an_ecs_deployment_takes_the_pipelines_topic_and_ecss_timeout_unless_it_names_its_own() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }
approval = { topic = "arn:aws:sns:us-east-1:123456789012:approvers" }
[pipelines.web.deploy]
strategy = "ecs_canary"
cluster = "prod"
service = "web"
approval = { stage = "PRE_PRODUCTION_TRAFFIC_SHIFT" }
"#;
    let definitions = Definitions::parse("p.toml", text).expect("valid");
    let Some(DeployTarget::EcsNative(target)) = definitions.get("web").map(|p| p.deploy()) else { panic!("native") };
    let pause = target.approval.as_ref().expect("an approval");
    assert_eq!(pause.stage, "PRE_PRODUCTION_TRAFFIC_SHIFT");
    assert_eq!(pause.topic_arn, "arn:aws:sns:us-east-1:123456789012:approvers");
    assert_eq!((pause.timeout_minutes, pause.on_timeout), (1440, PauseAction::Rollback));

    let own = text.replace(
        "approval = { stage = \"PRE_PRODUCTION_TRAFFIC_SHIFT\" }",
        "approval = { stage = \"POST_TEST_TRAFFIC_SHIFT\", topic = \"arn:aws:sns:us-east-1:123456789012:ops\", \
         timeout = \"2h\", on_timeout = \"continue\" }",
    );
    let definitions = Definitions::parse("p.toml", &own).expect("valid");
    let Some(DeployTarget::EcsNative(target)) = definitions.get("web").map(|p| p.deploy()) else { panic!("native") };
    let pause = target.approval.as_ref().expect("an approval");
    assert_eq!(pause.topic_arn, "arn:aws:sns:us-east-1:123456789012:ops");
    assert_eq!((pause.timeout_minutes, pause.on_timeout), (120, PauseAction::Continue));
}

#[test]
fn in_a_pipeline_of_stages_a_pause_approval_without_a_topic_asks_the_first_approval_stages_topic() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "canary"
deploy = { strategy = "ecs_canary", cluster = "prod", service = "web", approval = { stage = "PRE_PRODUCTION_TRAFFIC_SHIFT" } }

[[pipelines.web.stages]]
name = "sign-off"
approval = { topic = "arn:aws:sns:us-east-1:123456789012:first" }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "api" }

[[pipelines.web.stages]]
name = "late-sign-off"
approval = { topic = "arn:aws:sns:us-east-1:123456789012:second" }

[[pipelines.web.stages]]
name = "eu"
deploy = { strategy = "ecs_canary", cluster = "eu", service = "web", approval = { stage = "PRE_PRODUCTION_TRAFFIC_SHIFT", topic = "arn:aws:sns:us-east-1:123456789012:own" } }
"#;
    let definitions = Definitions::parse("p.toml", text).expect("valid");
    let pipeline = definitions.get("web").expect("web");
    let topics: Vec<(String, String)> = pipeline
        .deploy_stages()
        .filter_map(|(stage, deploy)| match &deploy.target {
            DeployTarget::EcsNative(native) => {
                native.approval.as_ref().map(|pause| (stage.to_string(), pause.topic_arn.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        topics,
        [
            ("canary".to_owned(), "arn:aws:sns:us-east-1:123456789012:first".to_owned()),
            ("eu".to_owned(), "arn:aws:sns:us-east-1:123456789012:own".to_owned()),
        ],
        "even before the approval stage, a pause asks the first approval stage's topic; one naming its own asks that"
    );
}

#[test]
fn a_pause_where_traffic_moves_or_before_a_single_step_or_without_a_topic_is_an_error_at_its_line() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }
[pipelines.web.deploy]
strategy = "ecs_canary"
cluster = "prod"
service = "web"
approval = { stage = "PRODUCTION_TRAFFIC_SHIFT", timeout = "15d", on_timeout = "wait" }

[pipelines.api]
source = { repository = "acme/api" }
build = { project = "api-build" }
approval = { topic = "arn:aws:sns:us-east-1:123456789012:approvers" }
[pipelines.api.deploy]
strategy = "ecs_blue_green"
cluster = "prod"
service = "api"
approval = { stage = "PRE_PRODUCTION_TRAFFIC_SHIFT" }

[pipelines.jobs]
source = { repository = "acme/jobs" }
build = { project = "jobs-build" }
deploy = { strategy = "rolling", cluster = "c", service = "jobs", approval = { stage = "POST_SCALE_UP" } }
"#;
    let errors = errors(text);
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(has("pipelines.toml:9:"), "{errors:?}");
    assert!(has("field `deploy.approval.stage`: must be one of RECONCILE_SERVICE"), "{errors:?}");
    assert!(has("ECS cannot pause while traffic moves"), "{errors:?}");
    assert!(has("field `deploy.approval.timeout`: must be between"), "{errors:?}");
    assert!(
        has("field `deploy.approval.on_timeout`: must be \"rollback\" or \"continue\" (got \"wait\")"),
        "{errors:?}"
    );
    assert!(has("field `deploy.approval.topic`: is required when the pipeline has no [approval] topic"), "{errors:?}");
    assert!(has("pipeline `api`, field `deploy.approval.stage`: ecs_blue_green moves production traffic in one step"));
    assert!(
        has("pipeline `jobs`, field `deploy.approval`: only applies to strategy = \"ecs_blue_green\""),
        "{errors:?}"
    );
}

#[test]
fn a_github_table_shows_runs_on_github_as_the_pipelines_environment_unless_it_names_one() {
    let definitions = Definitions::parse("p.toml", MINIMAL).expect("valid");
    assert_eq!(definitions.get("api").and_then(|p| p.github.clone()), None, "off unless asked for");
    let shown = format!("{MINIMAL}github = {{}}\n");
    let definitions = Definitions::parse("p.toml", &shown).expect("valid");
    assert_eq!(definitions.get("api").and_then(|p| p.github.clone()).map(|g| g.environment).as_deref(), Some("api"));
    let named = format!("{MINIMAL}github = {{ environment = \"production\" }}\n");
    let definitions = Definitions::parse("p.toml", &named).expect("valid");
    assert_eq!(
        definitions.get("api").and_then(|p| p.github.clone()).map(|g| g.environment).as_deref(),
        Some("production")
    );
    let empty = errors(&format!("{MINIMAL}github = {{ environment = \"\" }}\n"));
    assert!(empty.iter().any(|e| e.contains("github.environment") && e.contains("1 to 255 characters")), "{empty:?}");
    let unknown = errors(&format!("{MINIMAL}github = {{ token = \"x\" }}\n"));
    assert!(unknown.iter().any(|e| e.contains("token")), "{unknown:?}");
}

#[test]
fn a_deploy_timeout_and_host_access_are_read_and_default_to_an_hour_and_off() {
    let definitions = Definitions::parse("pipelines.toml", MINIMAL).expect("loads");
    let api = definitions.get("api").expect("api");
    assert_eq!((api.deploy_timeout_minutes(), api.deploy().allows_host()), (None, false));
    let text = MINIMAL.replace("service = \"api\" }", "service = \"api\", timeout = \"2h\", allow_host = true }");
    let definitions = Definitions::parse("pipelines.toml", &text).expect("loads");
    let api = definitions.get("api").expect("api");
    assert_eq!((api.deploy_timeout_minutes(), api.deploy().allows_host()), (Some(120), true));
    // A timeout of seconds, or beyond a week, is an error at its place
    for (timeout, says) in [("90s", "whole minutes"), ("8d", "deploy.timeout")] {
        let text = MINIMAL.replace("service = \"api\" }", &format!("service = \"api\", timeout = \"{timeout}\" }}"));
        let errors = errors(&text);
        assert!(errors.iter().any(|e| e.contains("deploy.timeout") && e.contains(says)), "{timeout}: {errors:?}");
    }
}

/// MINIMAL's pipeline with `line` added to its source table.
fn with_source(line: &str) -> String {
    MINIMAL
        .replace("source = { repository = \"acme/api\" }", &format!("source = {{ repository = \"acme/api\", {line} }}"))
}

#[test]
fn a_filter_too_big_to_match_with_is_refused_at_its_place_and_one_published_before_accepts_nothing() {
    // A glob, but beyond what one matcher takes (its size limit)
    let text =
        with_source(&format!("branches = {{ include = [\"release/*\"], exclude = [\"{}\"] }}", "?".repeat(200_000)));
    let found = errors(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("field `source.branches`: these patterns cannot be used together"), "{}", found[0]);
    assert!(found[1].contains("field `source.branches.exclude[0]`: a pattern is at most 256 bytes (got 200000)"));
    // Read as published by an earlier version, the pipeline builds nothing rather than every branch
    let read = Definitions::parse("published", &text).expect("readable");
    let source = &read.get("api").expect("api").source;
    assert!(!source.accepts_ref("refs/heads/release/1", "main") && !source.accepts_ref("refs/heads/main", "main"));
}

#[test]
fn a_pattern_over_256_bytes_or_a_list_over_100_patterns_is_refused_with_its_size() {
    let long = format!("branches = {{ include = [\"{}\"] }}", "a".repeat(257));
    assert!(
        errors(&with_source(&long))[0]
            .contains("field `source.branches.include[0]`: a pattern is at most 256 bytes (got 257)")
    );
    let many: Vec<String> = (0..101).map(|i| format!("\"b{i}\"")).collect();
    let many = format!("paths = {{ include = [{}] }}", many.join(", "));
    let found = errors(&with_source(&many));
    assert!(found[0].contains("field `source.paths.include`: at most 100 patterns (got 101)"), "{found:?}");
}

#[test]
fn a_branch_or_tag_filter_without_include_is_refused_saying_how_to_mean_every_branch() {
    for (filter, every) in [
        ("branches = { exclude = [\"main\"] }", "every branch but those excluded"),
        ("branches = { include = [], exclude = [\"main\"] }", "every branch but those excluded"),
        ("tags = {}", "every tag"),
    ] {
        let found = errors(&with_source(filter));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(every) && found[0].contains("include = [\"**\"]"), "{}", found[0]);
    }
    // Meant on purpose, it is taken; a path filter may exclude alone (every change but the docs)
    let meant =
        with_source("branches = { include = [\"**\"], exclude = [\"main\"] }, paths = { exclude = [\"docs/**\"] }");
    let source = Definitions::check("pipelines.toml", &meant).expect("valid").get("api").expect("api").source.clone();
    assert!(source.accepts_ref("refs/heads/feature/x", "main") && !source.accepts_ref("refs/heads/main", "main"));
    assert!(!source.accepts_files(["docs/a.md"]) && source.accepts_files(["src/a.rs"]));
}

#[test]
fn what_aws_or_github_would_refuse_later_is_refused_by_check_naming_the_limit() {
    let cases = [
        (MINIMAL.replace("acme/api", &format!("{}/api", "o".repeat(40))), "a GitHub owner is at most 39 characters (got 40)"),
        (MINIMAL.replace("acme/api", &format!("acme/{}", "n".repeat(101))), "a GitHub repository name is at most 100 characters (got 101)"),
        (MINIMAL.replace("cluster = \"internal\"", "cluster = \"arn:nonsense\""), "is not an ECS cluster ARN (such as arn:aws:ecs:"),
        (format!("{MINIMAL}[pipelines.api.notify]\ntopic = \"arn:aws:sns:eu-west-1:123456789012:runs.fifo\"\n"), "is a FIFO topic (.fifo)"),
        (
            MINIMAL.replace(
                "deploy = { strategy = \"rolling\", cluster = \"internal\", service = \"api\" }",
                "deploy = { strategy = \"blue_green\", cluster = \"internal\", service = \"api\", application = \"api\", deployment_group = \"api\", deployment_config = \"CodeDeployDefault.LambdaAllAtOnce\" }",
            ),
            "is not one of CodeDeploy's configurations for ECS",
        ),
    ];
    for (text, expected) in cases {
        let found = errors(&text);
        assert!(found.iter().any(|e| e.contains(expected)), "{expected}: {found:?}");
        // Published before these were rules, the same text is still read
        Definitions::parse("published", &text).expect("readable as published");
    }
}

#[test]
fn a_check_url_needs_a_host_and_a_port_from_1_to_65535_and_a_long_one_is_told_its_length() {
    let with_url = |url: &str| {
        format!(
            "[pipelines.api.source]\nrepository = \"acme/api\"\n[pipelines.api.build]\nproject = \"api-build\"\n\
             [pipelines.api.deploy]\nstrategy = \"rolling\"\ncluster = \"internal\"\nservice = \"api\"\n\
             [[pipelines.api.deploy.checks]]\nhook = \"AfterRollout\"\nurl = \"{url}\"\n"
        )
    };
    for url in ["http://web-test:8080/health", "https://api.example.com./x?y", "http://[::1]:8080/", "http://10.0.0.1/"]
    {
        if let Err(errors) = Definitions::check("pipelines.toml", &with_url(url)) {
            panic!("{url}: {errors}");
        }
    }
    for url in ["http://:::", "http://@", "http://web:99999/health", "http://web:0/", "https://-bad-/"] {
        let found = errors(&with_url(url));
        assert_eq!(found.len(), 1, "{url}: {found:?}");
        assert!(found[0].contains("field `deploy.checks[0].url`"), "{}", found[0]);
    }
    let long = format!("http://web/{}", "p".repeat(502));
    let found = errors(&with_url(&long));
    assert!(found[0].ends_with("a URL is at most 512 bytes (got 513)"), "{}", found[0]);
}

#[test]
fn a_file_larger_than_sluice_stores_is_refused_before_it_is_read() {
    let text = format!("{MINIMAL}#{}\n", "x".repeat(MAX_TEXT));
    let found = errors(&text);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("pipelines.toml:1:1: the file is") && found[0].contains("at most 358400"),
        "{}",
        found[0]
    );
}

#[test]
fn twenty_thousand_mistakes_are_placed_in_well_under_a_second() {
    // One pipeline whose path filter lists 20,000 empty patterns, one a line
    let empties = "\"\",\n".repeat(20_000);
    let text = with_source("paths = { include = [\"src/**\"] }").replace("[\"src/**\"]", &format!("[\n{empties}]"));
    let started = std::time::Instant::now();
    let found = Definitions::check("many.toml", &text).expect_err("every pattern is empty");
    let took = started.elapsed();
    assert_eq!(found.0.len(), 20_001, "{}", found.0[0]);
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    let lines: Vec<usize> = found.0.iter().filter(|e| e.message.contains("cannot be empty")).map(|e| e.line).collect();
    assert_eq!((lines[0], lines[19_999]), (4, 20_003));
}

#[test]
fn a_value_of_the_wrong_type_is_told_in_tomls_words_with_an_example() {
    let found = errors(&with_source("branches = \"main\""));
    assert!(
        found[0].ends_with("must be a table such as { include = [\"main\"] } (got the string \"main\")"),
        "{}",
        found[0]
    );
    let retries = format!(
        "{}[[pipelines.api.deploy.checks]]\nhook = \"AfterRollout\"\nurl = \"http://web/\"\nretries = \"3\"\n",
        MINIMAL.replace(
            "deploy = { strategy = \"rolling\", cluster = \"internal\", service = \"api\" }",
            "[pipelines.api.deploy]\nstrategy = \"rolling\"\ncluster = \"internal\"\nservice = \"api\""
        )
    );
    let found = errors(&retries);
    assert!(found[0].ends_with("must be a whole number such as 3 (got the string \"3\")"), "{}", found[0]);
    assert!(!found[0].contains("i64") && !found[0].contains("Raw"), "{}", found[0]);
}

#[test]
fn the_readmes_error_example_is_what_check_prints_for_the_readmes_own_file_with_those_mistakes() {
    let example = readme_examples().into_iter().next().expect("the README's first TOML block");
    let broken = example.replace("repository = \"acme/web\"", "repository = \"acme\"").replace("\"2d\"", "\"90d\"");
    let printed: Vec<String> = errors(&broken);
    let shown: Vec<&str> = README.lines().filter(|line| line.starts_with("pipelines.toml:")).collect();
    assert_eq!(printed, shown);
    let summary = README.lines().find(|line| line.ends_with("errors in pipelines.toml")).expect("the count line");
    assert_eq!(summary, format!("{} errors in pipelines.toml", printed.len()));
}

#[test]
fn a_bake_time_out_of_range_is_told_its_range_as_the_readme_writes_it() {
    let text = MINIMAL.replace(
        "deploy = { strategy = \"rolling\", cluster = \"internal\", service = \"api\" }",
        "deploy = { strategy = \"ecs_canary\", cluster = \"internal\", service = \"api\", bake_time = \"25h\" }",
    );
    let found = errors(&text);
    assert!(found.iter().any(|e| e.contains("must be between 0m and 24h (got \"25h\")")), "{found:?}");
    assert!(README.contains("whole minutes, `0m` to `24h`"));
}

#[test]
fn a_missing_table_is_blamed_on_its_pipeline_and_a_table_defined_twice_says_where_it_first_was() {
    let dotted = "[pipelines.web.source]\nrepository = \"acme/web\"\n[pipelines.web.build]\nproject = \"web-build\"\n";
    let found = errors(dotted);
    assert_eq!(
        found,
        ["pipelines.toml:1:1: pipeline `web`: `deploy` is missing: add [pipelines.web.deploy] or deploy = { ... }"]
    );
    let twice = format!("{dotted}[pipelines.web.build]\nproject = \"c\"\n");
    let found = errors(&twice);
    assert!(
        found[0].starts_with("pipelines.toml:5:") && found[0].contains("defined twice: first at line 3"),
        "{found:?}"
    );
    let key_twice = MINIMAL.replace(
        "build = { project = \"api-build\" }",
        "build = { project = \"api-build\" }\nmode = \"queued\"\nmode = \"queued\"",
    );
    let found = errors(&key_twice);
    assert!(found[0].contains("defined twice: first at line 5"), "{found:?}");
}

#[test]
fn a_missing_value_says_which_table_it_goes_in() {
    let found = errors(
        "[pipelines.web.source]\nbranches = { include = [\"main\"] }\n[pipelines.web.build]\nproject = \"web-build\"\n[pipelines.web.deploy]\nstrategy = \"rolling\"\ncluster = \"c\"\nservice = \"s\"\n",
    );
    assert_eq!(
        found,
        [
            "pipelines.toml:1:1: pipeline `web`, field `source`: `repository` is missing: add repository = ... to [pipelines.web.source]"
        ]
    );
}

#[test]
fn mistakes_in_values_keys_and_types_are_all_reported_in_one_run_in_the_order_of_the_file() {
    let text = r#"[pipelines.web.source]
repository = "acme"
brnaches = { include = ["main"] }

[pipelines.web.build]
project = "web-build"

[pipelines.web.deploy]
strategy = "rolling"
cluster = "prod"
service = "web"

[[pipelines.web.deploy.checks]]
hook = "AfterRollout"
url = "http://web.internal/health"
retries = "3"
"#;
    let found = errors(text);
    assert_eq!(
        found,
        [
            "pipelines.toml:2:14: pipeline `web`, field `source.repository`: must look like owner/name (got \"acme\")",
            "pipelines.toml:3:1: pipeline `web`, field `source.brnaches`: unknown field `brnaches`, expected one of `repository`, `branches`, `tags`, `paths`",
            "pipelines.toml:16:11: pipeline `web`, field `deploy.checks[0].retries`: must be a whole number such as 3 (got the string \"3\")",
        ]
    );
}

#[test]
fn a_value_of_the_wrong_type_is_told_once_and_the_rest_of_its_pipeline_and_the_others_are_still_checked() {
    let text = r#"[pipelines.web]
source = { repository = 3 }
build = { project = "web-build" }
deploy = { strategy = "rolling", cluster = "prod", service = "web", checks = ["http://web/"], allow_host = "yes" }

[pipelines.api]
source = { repository = "acme/api", branches = "main" }
build = { project = "x" }
deploy = { strategy = "rolling", cluster = "prod", service = "api", maximum_percent = 99 }
"#;
    let found = errors(text);
    let told = |line: usize, what: &str| {
        found.iter().filter(|e| e.starts_with(&format!("pipelines.toml:{line}:")) && e.contains(what)).count()
    };
    assert_eq!(told(2, "field `source.repository`: must be a string in quotes"), 1, "{found:#?}");
    assert_eq!(told(4, "must be a table such as { hook"), 1, "{found:#?}");
    assert_eq!(told(4, "field `deploy.allow_host`: must be true or false"), 1, "{found:#?}");
    assert_eq!(told(7, "field `source.branches`: must be a table such as { include"), 1, "{found:#?}");
    assert_eq!(told(8, "field `build.project`: must be a CodeBuild project name"), 1, "{found:#?}");
    assert_eq!(told(9, "maximum_percent"), 1, "{found:#?}");
    // Nothing more: no second word on a value whose type was wrong, no "missing" for a value set aside.
    assert_eq!(found.len(), 6, "{found:#?}");
    let lines: Vec<usize> = found.iter().map(|e| e.split(':').nth(1).unwrap().parse().unwrap()).collect();
    assert!(lines.is_sorted(), "{lines:?}");
}

#[test]
fn a_syntax_error_is_told_first_saying_that_the_rest_is_checked_once_the_file_reads_as_toml() {
    let text = "[pipelines.web.source]\nrepository = acme/web\n[pipelines.web.build]\nproject = 'x\n";
    let found = errors(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("pipelines.toml:2:14: "), "{found:?}");
    assert!(found[0].ends_with("(the rest of the file is checked once it reads as TOML)"), "{found:?}");
}

#[test]
fn a_pipeline_with_many_unknown_keys_is_read_up_to_a_bound_and_says_the_rest_is_not_read() {
    let keys: String = (0..150).map(|i| format!("unknown_{i} = 1\n")).collect();
    let text = format!("[pipelines.api]\n{keys}{}", MINIMAL.replace("[pipelines.api]\n", ""));
    let found = errors(&text);
    assert_eq!(found.len(), 101, "{}", found.len());
    assert!(found.iter().any(|e| e.ends_with("over 100 mistakes in this pipeline: the rest of it is not read")));
    // Exactly 100 are all told, and the rest of the pipeline is read and validated: its empty cluster too
    let keys: String = (0..100).map(|i| format!("unknown_{i} = 1\n")).collect();
    let pipeline = MINIMAL.replace("[pipelines.api]\n", "").replace("cluster = \"internal\"", "cluster = \"\"");
    let found = errors(&format!("[pipelines.api]\n{keys}{pipeline}"));
    assert_eq!(found.len(), 101, "{found:#?}");
    assert!(found.last().is_some_and(|e| e.contains("field `deploy.cluster`: must be an ECS cluster")), "{found:#?}");
}

#[test]
fn a_date_or_a_list_where_a_duration_or_a_table_goes_is_told_as_written_and_the_rest_is_still_read() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web", branches = { include = ["main"] } }
build = { project = "web-build" }
[pipelines.web.deploy]
strategy = "rolling"
cluster = "prod"
service = "web"
timeout = 00:30:00
circuit_breaker = [false, false]
[[pipelines.web.deploy.checks]]
hook = "AfterRollout"
url = "https://web.example.com/"
interval = 1979-05-27
retries = "3"
[[pipelines.api]]
source = { repository = "acme/api" }
[[pipelines.db.source]]
repository = "acme/db"
[pipelines.db]
build = { project = "db-build" }
deploy = { strategy = "rolling", cluster = "prod", service = "db" }
"#;
    let found = errors(text);
    let expected = [
        "pipelines.toml:9:11: pipeline `web`, field `deploy.timeout`: must be a duration in quotes, such as \"30m\" \
         (got a date or time)",
        "pipelines.toml:10:19: pipeline `web`, field `deploy.circuit_breaker`: must be a table such as { enable = \
         true, rollback = true } (got a list)",
        "pipelines.toml:14:12: pipeline `web`, field `deploy.checks[0].interval`: must be a duration in quotes, such \
         as \"30m\" (got a date or time)",
        "pipelines.toml:15:11: pipeline `web`, field `deploy.checks[0].retries`: must be a whole number such as 3 (got \
         the string \"3\")",
        "pipelines.toml:16:1: pipeline `api`: must be a table such as [pipelines.web] with source, build and deploy \
         (got a list)",
        "pipelines.toml:18:1: pipeline `db`, field `source`: must be a table such as { repository = \"acme/web\" } \
         (got a list)",
    ];
    assert_eq!(found, expected);
}

#[test]
fn a_strategy_missing_or_unknown_or_an_include_of_the_wrong_type_is_told_once_without_what_would_follow_from_it() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web", branches = { include = "main" } }
build = { project = "web-build" }
[pipelines.web.deploy]
cluster = "prod"
service = "web"
bake_time = "5m"
application = "web"
[[pipelines.web.deploy.checks]]
hook = "AfterRollout"
url = "https://web.example.com/"
[pipelines.api]
source = { repository = "acme/api" }
build = { project = "api-build" }
deploy = { strategy = "blue-green", cluster = "prod", service = "api", canary = { percent = 5 }, maximum_percent = 200 }
"#;
    let found = errors(text);
    let expected = [
        "pipelines.toml:3:60: pipeline `web`, field `source.branches.include`: must be a list such as [\"a\", \"b\"] \
         (got the string \"main\")",
        "pipelines.toml:5:1: pipeline `web`, field `deploy`: `strategy` is missing: add strategy = ... to \
         [pipelines.web.deploy]",
        "pipelines.toml:16:23: pipeline `api`, field `deploy.strategy`: must be \"blue_green\", \"rolling\", \
         \"ecs_blue_green\", \"ecs_linear\" or \"ecs_canary\" (got \"blue-green\")",
    ];
    assert_eq!(found, expected);
}

#[test]
fn twenty_thousand_mistakes_in_the_files_shape_are_told_without_work_that_grows_with_their_square() {
    // 5,000 pipelines, each with a key no pipeline has and none of the three tables a pipeline needs. Telling them
    // takes about a second in a debug build on a busy two-core machine; work that grew with the square of the
    // mistakes would take minutes, which the bound below (loose, so that a loaded CI machine does not trip it) tells.
    let text: String = (0..5_000).map(|i| format!("[pipelines.p{i}]\nsoruce = 1\n")).collect();
    let started = std::time::Instant::now();
    let found = Definitions::check("many.toml", &text).expect_err("no pipeline is whole");
    let took = started.elapsed();
    assert_eq!(found.0.len(), 20_000, "{}", found.0[0]);
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    let last = found.0.last().expect("20,000 mistakes");
    assert_eq!((last.line, last.pipeline.as_deref(), last.field.as_str()), (10_000, Some("p4999"), "soruce"));
}

#[test]
fn a_pause_before_a_step_of_100_percent_is_refused_since_nobody_would_ever_be_asked() {
    for (shift, said) in [
        ("linear = { step_percent = 100 }", "a linear step of 100% moves production traffic in one step"),
        ("canary = { percent = 100 }", "a canary of 100% moves production traffic in one step"),
    ] {
        let strategy = if shift.starts_with("linear") { "ecs_linear" } else { "ecs_canary" };
        let text = MINIMAL.replace(
            "deploy = { strategy = \"rolling\", cluster = \"internal\", service = \"api\" }",
            &format!(
                "approval = {{ topic = \"arn:aws:sns:us-east-1:123456789012:approvers\" }}\ndeploy = {{ strategy = \"{strategy}\", cluster = \"internal\", service = \"api\", {shift}, approval = {{ stage = \"PRE_PRODUCTION_TRAFFIC_SHIFT\" }} }}"
            ),
        );
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(&format!("field `deploy.approval.stage`: {said}, before which nothing has moved, so nobody would be asked: pause at POST_TEST_TRAFFIC_SHIFT instead")), "{found:?}");
        let fine = text.replace("100 }", "50 }");
        assert!(Definitions::check("pipelines.toml", &fine).is_ok(), "{fine}");
        // Published before this was refused, it is read as it was: the pipeline keeps running
        let published = Definitions::parse("pipelines.toml", &text).expect("published definitions are read");
        assert_eq!(published.get("api").map(|api| api.deploy().strategy()), Some(strategy));
    }
}

#[test]
fn a_table_nested_deeper_than_toml_reads_is_told_at_its_line() {
    let nested = format!("x = {}1{}", "[".repeat(200), "]".repeat(200));
    let found = errors(&format!("{MINIMAL}\n\n{nested}\n"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("pipelines.toml:8:"), "{found:?}");
}

fn warnings(text: &str) -> Vec<String> {
    match Definitions::check("pipelines.toml", text) {
        Ok(definitions) => definitions.warnings().iter().map(ToString::to_string).collect(),
        Err(errors) => panic!("expected no errors:\n{errors}"),
    }
}

fn with_check(strategy: &str, check: &str) -> String {
    let deploy = match strategy {
        "blue_green" => {
            "strategy = \"blue_green\"\napplication = \"web\"\ndeployment_group = \"web-prod\"\n".to_owned()
        }
        other => format!("strategy = \"{other}\"\n"),
    };
    format!(
        "[pipelines.web]\nsource = {{ repository = \"acme/web\" }}\nbuild = {{ project = \"web-build\" }}\n\
         [pipelines.web.deploy]\ncluster = \"prod\"\nservice = \"web\"\n{deploy}\
         [[pipelines.web.deploy.checks]]\n{check}\n"
    )
}

#[test]
fn a_check_whose_tries_may_outlast_the_time_its_hook_has_is_a_warning_at_its_place() {
    // 4 tries of 60 s and 3 intervals of 30 s: 330 s, beyond what one call of the hooks function has for its checks
    // (290 s of 300: the rest reads the run and answers).
    let slow = "hook = \"AfterAllowTestTraffic\"\nurl = \"https://test.example.com/\"\ntimeout = \"1m\"\n\
                retries = 3\ninterval = \"30s\"";
    let told = warnings(&with_check("blue_green", slow));
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(
        told[0].starts_with("pipelines.toml:10:1: pipeline `web`, field `deploy.checks[0]`: may take 330 s"),
        "{told:?}"
    );
    assert!(told[0].contains("(4 tries of 1m and 3 intervals of 30s), beyond the 290 s the checks"), "{told:?}");
    // Up to 290 s fits; a second more is told
    let edge = "hook = \"AfterAllowTestTraffic\"\nurl = \"https://test.example.com/\"\ntimeout = \"290s\"";
    assert!(warnings(&with_check("blue_green", edge)).is_empty());
    assert_eq!(warnings(&with_check("blue_green", &edge.replace("290s", "291s"))).len(), 1);
    // After a rolling update the checks have AfterRollout's 240 s: 270 s is beyond it, though it fits a hook's 290 s.
    let rolling = "hook = \"AfterRollout\"\nurl = \"https://web.example.com/\"\ntimeout = \"2m\"\nretries = 1\n\
                   interval = \"30s\"";
    let told = warnings(&with_check("rolling", rolling));
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(
        told[0].contains("may take 270 s (2 tries of 2m and 1 interval of 30s), beyond the 240 s a rolling"),
        "{told:?}"
    );
    assert!(warnings(&with_check("blue_green", &rolling.replace("AfterRollout", "AfterAllowTraffic"))).is_empty());
    // ECS calls the hooks function once a try: only a try longer than a call has is told, however many retries.
    let native = "hook = \"POST_TEST_TRAFFIC_SHIFT\"\nurl = \"https://test.example.com/\"\ntimeout = \"4m\"\nretries = 20\n\
                  interval = \"5m\"";
    assert!(warnings(&with_check("ecs_blue_green", native)).is_empty());
    let told = warnings(&with_check("ecs_blue_green", &native.replace("4m", "5m")));
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(told[0].contains("a try may take 5m (300 s), beyond the 290 s one call"), "{told:?}");
    // A warning lets the file run, and definitions read as published carry none.
    let published = Definitions::parse("pipelines.toml", &with_check("blue_green", slow)).expect("published");
    assert!(published.warnings().is_empty());
}

#[test]
fn two_pipelines_deploying_one_service_are_warned_of_at_the_later_naming_the_earlier() {
    let pipeline = |name: &str, cluster: &str, service: &str| {
        format!(
            "[pipelines.{name}]\nsource = {{ repository = \"acme/{name}\" }}\nbuild = {{ project = \"{name}\" }}\n\
             deploy = {{ strategy = \"rolling\", cluster = \"{cluster}\", service = \"{service}\" }}\n"
        )
    };
    // Written in the file as zeta then alpha: the warning is at alpha (line 8), naming zeta's line (4).
    let text = pipeline("zeta", "prod", "web")
        + &pipeline(
            "alpha",
            "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
            "arn:aws:ecs:eu-west-1:123456789012:service/prod/web",
        );
    let told = warnings(&text);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert!(
        told[0].starts_with("pipelines.toml:8:")
            && told[0].contains(
                "pipeline `alpha`, field `deploy.service`: pipeline `zeta` deploys this service too (line 4)"
            ),
        "{told:?}"
    );
    // Another service, another cluster, or the same names in another account are other services.
    for (cluster, service) in [
        ("prod", "api"),
        ("staging", "web"),
        ("arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "arn:aws:ecs:eu-west-1:999999999999:service/prod/web"),
    ] {
        let text = pipeline(
            "zeta",
            "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
            "arn:aws:ecs:eu-west-1:123456789012:service/prod/web",
        ) + &pipeline("alpha", cluster, service);
        assert!(warnings(&text).is_empty(), "{cluster} {service}");
    }
}

#[test]
fn an_alarm_name_cloudwatch_would_refuse_is_told_with_its_index_as_every_list_is() {
    let text = MINIMAL.replace(
        "deploy = { strategy = \"rolling\", cluster = \"internal\", service = \"api\" }",
        "deploy = { strategy = \"ecs_blue_green\", cluster = \"internal\", service = \"api\", alarms = [\"api-5xx\", \"\"] }",
    );
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("field `deploy.alarms[1]`: must be a CloudWatch alarm name (got \"\")"), "{found:?}");
}

#[test]
fn a_pipeline_name_toml_must_quote_is_quoted_and_escaped_as_toml_writes_it_in_what_to_add() {
    let text = "[pipelines.'we\"b\\x']\nsource = { repository = \"acme/web\" }\nbuild = { project = \"web-build\" }\n";
    let found = errors(text);
    let told = found.iter().find(|e| e.contains("`deploy` is missing")).expect("deploy is missing");
    assert!(told.ends_with(r#"add [pipelines."we\"b\\x".deploy] or deploy = { ... }"#), "{found:?}");
}

const STAGED: &str = r#"
[pipelines.web]
mode = "queued"
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "staging"
deploy = { strategy = "rolling", cluster = "staging", service = "web", timeout = "30m" }

[[pipelines.web.stages]]
name = "sign-off"
approval = { topic = "arn:aws:sns:eu-west-1:123456789012:web-approvals", timeout = "2d" }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "ecs_canary", cluster = "prod", service = "web", canary = { percent = 10, bake_time = "15m" } }
"#;

#[test]
fn a_pipeline_of_stages_reads_each_stage_in_order_with_its_own_target_and_timeout() {
    let definitions = Definitions::check("pipelines.toml", STAGED).expect("the staged pipeline checks");
    let web = definitions.get("web").expect("web");
    let stages: Vec<(&str, &str)> = web.stages.iter().map(|stage| (stage.name.as_str(), stage.kind_name())).collect();
    assert_eq!(stages, [("staging", "deploy"), ("sign-off", "approval"), ("production", "deploy")]);
    let deploys: Vec<(&str, Option<u32>)> =
        web.deploy_stages().map(|(_, deploy)| (deploy.target.strategy(), deploy.timeout_minutes)).collect();
    assert_eq!(deploys, [("rolling", Some(30)), ("ecs_canary", None)]);
    assert_eq!(web.approval().map(|approval| approval.timeout_secs), Some(2 * 24 * 3600));
}

#[test]
fn a_pipeline_written_with_tables_has_the_stages_approval_and_deploy() {
    let text = format!("{MINIMAL}approval = {{ topic = \"arn:aws:sns:eu-west-1:123456789012:ok\" }}\n");
    let definitions = Definitions::check("pipelines.toml", &text).expect("it checks");
    let names: Vec<Stage> = definitions.get("api").expect("api").stages.iter().map(|stage| stage.name).collect();
    assert_eq!(names, [Stage::APPROVAL, Stage::DEPLOY]);
}

#[test]
fn tables_beside_stages_are_an_error_at_their_line() {
    let text = format!(
        "{STAGED}\n[pipelines.web.deploy]\nstrategy = \"rolling\"\ncluster = \"prod\"\nservice = \"web\"\n\n\
         [pipelines.web.approval]\ntopic = \"arn:aws:sns:eu-west-1:123456789012:ok\"\n"
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("pipelines.toml:20:12: pipeline `web`, field `deploy`: a pipeline with [[stages]]"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("pipelines.toml:25:9: pipeline `web`, field `approval`: a pipeline with [[stages]]"),
        "{errors:#?}"
    );
}

#[test]
fn a_stage_needs_a_unique_name_of_its_own_and_exactly_one_of_approval_deploy_and_test() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "build"
deploy = { strategy = "rolling", cluster = "a", service = "web" }

[[pipelines.web.stages]]
name = "Staging Area"
deploy = { strategy = "rolling", cluster = "b", service = "web" }

[[pipelines.web.stages]]
name = "prod"
deploy = { strategy = "rolling", cluster = "c", service = "web" }

[[pipelines.web.stages]]
name = "prod"

[[pipelines.web.stages]]
name = "both"
deploy = { strategy = "rolling", cluster = "d", service = "web" }
approval = { topic = "arn:aws:sns:eu-west-1:123456789012:ok" }
"#;
    let errors = errors(text);
    let expected = [
        "pipelines.toml:7:8: pipeline `web`, field `stages[0].name`: `build` is the build's own stage",
        "pipelines.toml:11:8: pipeline `web`, field `stages[1].name`: a stage name is 1 to 32 lower-case letters",
        "pipelines.toml:19:8: pipeline `web`, field `stages[3].name`: another stage is named `prod`",
        "pipelines.toml:19:8: pipeline `web`, field `stages[3]`: a stage has one of `approval`, `deploy` and `test` (this one has none of them)",
        "pipelines.toml:22:8: pipeline `web`, field `stages[4]`: a stage has one of `approval`, `deploy` and `test` (this one has `approval` and `deploy`)",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
    }
}

#[test]
fn a_deploy_stages_mistake_names_the_stage_it_is_in() {
    let text = STAGED.replace("cluster = \"prod\"", "cluster = \"\"");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("field `stages[2].deploy.cluster`"), "{errors:#?}");
}

#[test]
fn a_soak_is_read_on_a_deploy_stage_before_another_and_refused_anywhere_else() {
    let soaked = STAGED.replace("name = \"staging\"\n", "name = \"staging\"\nsoak = \"30m\"\n");
    let definitions = Definitions::check("pipelines.toml", &soaked).expect("a soak at staging checks");
    let soaks: Vec<Option<u64>> =
        definitions.get("web").expect("web").deploy_stages().map(|(_, deploy)| deploy.soak_secs).collect();
    assert_eq!(soaks, [Some(1800), None]);
    let at_sign_off = STAGED.replace("name = \"sign-off\"\n", "name = \"sign-off\"\nsoak = \"30m\"\n");
    let at_the_end = STAGED.replace("name = \"production\"\n", "name = \"production\"\nsoak = \"30m\"\n");
    let too_long = STAGED.replace("name = \"staging\"\n", "name = \"staging\"\nsoak = \"8d\"\n");
    for (text, expected) in [
        (at_sign_off, "field `stages[1].soak`: only a deploy stage soaks"),
        (at_the_end, "field `stages[2].soak`: soak holds the next stage back"),
        (too_long, "field `stages[0].soak`: must be between 1s and 7d"),
    ] {
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains(expected), "{errors:#?}");
    }
}

#[test]
fn soak_alarms_watch_a_soak_and_are_refused_without_one_or_when_written_wrong() {
    let watched = STAGED.replace(
        "name = \"staging\"\n",
        "name = \"staging\"\nsoak = \"30m\"\nsoak_alarms = [\"web-staging-5xx\", \"web-staging-latency\"]\nstrict_alarms = true\n",
    );
    let definitions = Definitions::check("pipelines.toml", &watched).expect("alarms watching staging's soak check");
    let web = definitions.get("web").expect("web");
    let staging = web.deploy_stages().next().map(|(_, deploy)| deploy.clone()).expect("staging");
    assert_eq!(
        (staging.alarms(), staging.strict_alarms()),
        (&["web-staging-5xx".to_owned(), "web-staging-latency".to_owned()][..], true)
    );
    let unsoaked = STAGED.replace("name = \"staging\"\n", "name = \"staging\"\nsoak_alarms = [\"web-5xx\"]\n");
    let twice = watched.replace("\"web-staging-latency\"", "\"web-staging-5xx\"");
    let empty = watched.replace("\"web-staging-latency\"", "\"\"");
    let strict_alone =
        STAGED.replace("name = \"staging\"\n", "name = \"staging\"\nsoak = \"5m\"\nstrict_alarms = true\n");
    for (text, expected) in [
        (unsoaked, "field `stages[0].soak_alarms`: soak_alarms watch a deploy stage's soak"),
        (twice, "field `stages[0].soak_alarms`: alarm \"web-staging-5xx\" is named twice"),
        (empty, "field `stages[0].soak_alarms`: a CloudWatch alarm name is 1 to 255 characters"),
        (strict_alone, "field `stages[0].strict_alarms`: strict_alarms says how soak_alarms block"),
    ] {
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains(expected), "{errors:#?}");
    }
}

#[test]
fn entry_alarms_keep_runs_out_of_a_deploy_stage_for_an_hour_unless_told_and_are_refused_where_written_wrong() {
    let production = "name = \"production\"\n";
    let gated = |lines: &str| STAGED.replace(production, &format!("{production}{lines}"));
    let definitions = Definitions::check("pipelines.toml", &gated("entry_alarms = [\"web-5xx\", \"web-latency\"]\n"))
        .expect("checks");
    let entry = |definitions: &Definitions| {
        let web = definitions.get("web").expect("web");
        web.deploy_stages().map(|(_, deploy)| deploy.entry_alarms.clone()).collect::<Vec<_>>()
    };
    let names = vec!["web-5xx".to_owned(), "web-latency".to_owned()];
    assert_eq!(entry(&definitions), [None, Some(EntryAlarms { names: names.clone(), timeout_secs: 3600 })]);
    let told = gated("entry_alarms = [\"web-5xx\", \"web-latency\"]\nentry_timeout = \"3h\"\n");
    let definitions = Definitions::check("pipelines.toml", &told).expect("checks");
    assert_eq!(entry(&definitions)[1], Some(EntryAlarms { names, timeout_secs: 3 * 3600 }));

    let on_approval = STAGED.replace("name = \"sign-off\"\n", "name = \"sign-off\"\nentry_alarms = [\"web-5xx\"]\n");
    for (text, expected) in [
        (gated("entry_timeout = \"2h\"\n"), "field `stages[2].entry_timeout`: entry_timeout says how long a run waits"),
        (on_approval, "field `stages[1].entry_alarms`: entry_alarms keep runs out of a deploy stage"),
        (
            gated("entry_alarms = [\"web-5xx\"]\nentry_timeout = \"30s\"\n"),
            "field `stages[2].entry_timeout`: must be between",
        ),
        (
            gated("entry_alarms = [\"web-5xx\"]\nentry_timeout = \"soon\"\n"),
            "field `stages[2].entry_timeout`: must be a duration",
        ),
        (
            gated("entry_alarms = [\"web-5xx\", \"web-5xx\"]\n"),
            "field `stages[2].entry_alarms`: alarm \"web-5xx\" is named twice",
        ),
        (gated("entry_alarms = []\n"), "field `stages[2].entry_alarms`: 1 to 5 CloudWatch alarm names"),
    ] {
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains(expected), "{errors:#?}");
    }
    // An error names its line and column
    let errors = errors(&gated("entry_alarms = [\"\"]\n"));
    assert!(errors[0].starts_with("pipelines.toml:17:17:"), "{errors:#?}");
}

#[test]
fn windows_and_deny_periods_hold_a_deploy_stage_and_the_pipelines_hold_each_stage_without_its_own() {
    let production = "name = \"production\"\n";
    let text = STAGED
        .replace(
            "mode = \"queued\"\n",
            "mode = \"queued\"\nwindows = [{ days = \"daily\", hours = \"06:00-22:00\", timezone = \"UTC\" }]\n",
        )
        .replace(
            production,
            &format!(
                "{production}windows = [{{ days = \"mon-fri\", hours = \"09:00-16:00\", timezone = \"Europe/Berlin\" }}]\n\
                 deny = [{{ from = \"2026-12-20\", to = \"2027-01-04\", timezone = \"Europe/Berlin\", reason = \"holidays\" }}]\n"
            ),
        );
    let definitions = Definitions::check("pipelines.toml", &text).expect("checks");
    let web = definitions.get("web").expect("web");
    let calendars: Vec<Calendar> = web.deploy_stages().filter_map(|(_, deploy)| deploy.calendar.clone()).collect();
    let daily = Window { days: 0x7f, from: 360, to: 1320, timezone: "UTC".into() };
    let office = Window { days: 0x1f, from: 540, to: 960, timezone: "Europe/Berlin".into() };
    let holidays = Deny {
        from: chrono::NaiveDate::from_ymd_opt(2026, 12, 20).expect("a date"),
        to: chrono::NaiveDate::from_ymd_opt(2027, 1, 4).expect("a date"),
        timezone: "Europe/Berlin".into(),
        reason: Some("holidays".into()),
    };
    assert_eq!(
        calendars,
        [Calendar { windows: vec![daily], deny: Vec::new() }, Calendar { windows: vec![office], deny: vec![holidays] },],
        "staging has the pipeline's, production its own"
    );
}

#[test]
fn windows_and_deny_periods_written_wrong_are_refused_at_their_place_and_an_unknown_zone_by_check_alone() {
    let production = "name = \"production\"\n";
    let gated = |lines: &str| STAGED.replace(production, &format!("{production}{lines}"));
    let window = |days: &str, hours: &str, zone: &str| {
        gated(&format!("windows = [{{ days = \"{days}\", hours = \"{hours}\", timezone = \"{zone}\" }}]\n"))
    };
    let deny =
        |from: &str, to: &str| gated(&format!("deny = [{{ from = \"{from}\", to = \"{to}\", timezone = \"UTC\" }}]\n"));
    let on_approval = STAGED.replace(
        "name = \"sign-off\"\n",
        "name = \"sign-off\"\ndeny = [{ from = \"2026-12-20\", to = \"2026-12-21\", timezone = \"UTC\" }]\n",
    );
    for (text, expected) in [
        (window("weekdays", "09:00-16:00", "UTC"), "field `stages[2].windows[0].days`: days are mon to sun"),
        (window("mon-fri", "25:00-26:00", "UTC"), "field `stages[2].windows[0].hours`: hours are HH:MM-HH:MM"),
        (window("mon-fri", "22:00-02:00", "UTC"), "(\"09:00-16:00\"; a window past midnight is two)"),
        (
            window("mon-fri", "09:00-16:00", "Europe/Atlantis"),
            "field `stages[2].windows[0].timezone`: an IANA time zone",
        ),
        (deny("2026-12-20", "2026-12-01"), "field `stages[2].deny[0].to`: a deny period runs from `from` through `to`"),
        (deny("20.12.2026", "2026-12-21"), "field `stages[2].deny[0].from`: a date, YYYY-MM-DD"),
        (gated("windows = []\n"), "field `stages[2].windows`: 1 to 7 windows"),
        (on_approval, "field `stages[1].deny`: deny say when a deploy stage may start deployments"),
    ] {
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains(expected), "{errors:#?}");
    }
    let errors = errors(&window("mon-fri", "09:00-16:00", "Europe/Atlantis"));
    assert!(errors[0].starts_with("pipelines.toml:17:66:"), "{errors:#?}");
    // Published definitions were checked: reading them again does not need the time zones' database
    assert!(Definitions::parse("published", &window("mon-fri", "09:00-16:00", "Europe/Atlantis")).is_ok());
}

#[test]
fn a_pipelines_soak_alarms_are_bounded_in_number_and_in_bytes() {
    let names = |prefix: char, n: usize| {
        let name = |k: usize| format!("\"{}{k}\"", prefix.to_string().repeat(250));
        (0..n).map(name).collect::<Vec<_>>().join(", ")
    };
    let stage = |name: &str, alarms: String| {
        format!(
            "[[pipelines.web.stages]]\nname = \"{name}\"\nsoak = \"5m\"\nsoak_alarms = [{alarms}]\n\
             deploy = {{ strategy = \"rolling\", cluster = \"{name}\", service = \"web\" }}\n"
        )
    };
    let text = |first: String, second: String| {
        format!(
            "[pipelines.web]\nsource = {{ repository = \"acme/web\" }}\nbuild = {{ project = \"web-build\" }}\n{}{}\
             [[pipelines.web.stages]]\nname = \"prod\"\ndeploy = {{ strategy = \"rolling\", cluster = \"prod\", \
             service = \"web\" }}\n",
            stage("staging", first),
            stage("preprod", second)
        )
    };
    assert!(Definitions::check("pipelines.toml", &text(names('a', 5), names('b', 2))).is_ok());
    for (written, expected) in [
        (text(names('a', 6), names('b', 1)), "field `stages[0].soak_alarms`: 1 to 5 CloudWatch alarm names"),
        (
            text(names('a', 5), names('b', 4)),
            "field `stages[1].soak_alarms`: a pipeline's soak and entry alarms are named in at most 2048 bytes in \
             all (these make 2259)",
        ),
    ] {
        let errors = errors(&written);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains(expected), "{errors:#?}");
    }
}

#[test]
fn a_deploy_stage_may_name_its_github_environment_and_an_approval_stage_may_not() {
    let named = STAGED.replace("name = \"production\"\n", "name = \"production\"\nenvironment = \"prod-eu\"\n");
    let definitions = Definitions::check("pipelines.toml", &named).expect("it checks");
    let environments: Vec<Option<&str>> =
        definitions.get("web").expect("web").deploy_stages().map(|(_, d)| d.environment.as_deref()).collect();
    assert_eq!(environments, [None, Some("prod-eu")]);
    let misplaced = STAGED.replace("name = \"sign-off\"\n", "name = \"sign-off\"\nenvironment = \"x\"\n");
    let errors = errors(&misplaced);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("field `stages[1].environment`: only a deploy stage is shown"), "{errors:#?}");
}

#[test]
fn two_deploy_stages_shown_as_one_github_environment_are_refused_at_the_later_ones_environment() {
    let clash = STAGED.replace("name = \"production\"\n", "name = \"production\"\nenvironment = \"Staging\"\n");
    let errors = errors(&clash);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("field `stages[2].environment`: GitHub environment `Staging` is stage `staging`'s too"),
        "{errors:#?}"
    );
}

#[test]
fn a_stage_named_deploy_in_a_pipeline_of_stages_is_shown_as_its_own_name_not_the_github_tables() {
    let staged = STAGED.replace("name = \"staging\"", "name = \"deploy\"").replace(
        "build = { project = \"web-build\" }\n",
        "build = { project = \"web-build\" }\ngithub = { environment = \"production\" }\n",
    );
    let definitions = Definitions::check("pipelines.toml", &staged).expect("it checks");
    let plan = crate::pipeline::Plan::from(definitions.get("web").expect("web"));
    let shown = |name: &str| plan.environment(Stage::new(name).expect("a stage name"));
    assert_eq!((shown("deploy").as_deref(), shown("production").as_deref()), (Some("deploy"), Some("production")));
    // ... and so the environments of its two deploy stages, as check sees them, are the ones GitHub is told
    let clash = staged.replace("name = \"production\"\n", "name = \"production\"\nenvironment = \"deploy\"\n");
    assert!(errors(&clash).iter().any(|e| e.contains("GitHub environment `deploy` is stage `deploy`'s too")));
}

#[test]
fn a_pipeline_of_stages_has_at_most_ten_stages_and_at_least_one_that_deploys() {
    let topic = "approval = { topic = \"arn:aws:sns:eu-west-1:123456789012:web-approvals\" }";
    let many: String = (0..8).map(|k| format!("\n[[pipelines.web.stages]]\nname = \"ok-{k}\"\n{topic}\n")).collect();
    let too_many = errors(&format!("{STAGED}{many}"));
    assert!(too_many.iter().any(|e| e.contains("field `stages`: at most 10 stages")), "{too_many:#?}");
    let deploys: Vec<&str> = STAGED.lines().filter(|line| line.starts_with("deploy = ")).collect();
    let none = deploys.iter().fold(STAGED.to_owned(), |text, deploy| text.replace(deploy, topic));
    let no_deploy = errors(&none);
    assert!(no_deploy.iter().any(|e| e.contains("field `stages`: no stage deploys")), "{no_deploy:#?}");
}

#[test]
fn a_test_stage_names_its_codebuild_project_and_may_give_it_a_timeout() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "staging"
deploy = { strategy = "rolling", cluster = "staging", service = "web" }

[[pipelines.web.stages]]
name = "e2e"
test = { codebuild = "web-e2e", timeout = "30m", on_failure = "fail" }

[[pipelines.web.stages]]
name = "smoke"
test = { codebuild = "web-smoke" }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "web" }
"#;
    let definitions = Definitions::parse("pipelines.toml", text).expect("valid");
    let pipeline = definitions.get("web").expect("the pipeline");
    let tests: Vec<(&str, &TestStage)> =
        pipeline.stages.iter().filter_map(|stage| Some((stage.name.as_str(), stage.test()?))).collect();
    assert_eq!(
        tests,
        [
            (
                "e2e",
                &TestStage {
                    run: TestRun::CodeBuild("web-e2e".into()),
                    timeout_minutes: Some(30),
                    on_failure: OnFailure::Fail
                }
            ),
            (
                "smoke",
                &TestStage {
                    run: TestRun::CodeBuild("web-smoke".into()),
                    timeout_minutes: None,
                    on_failure: OnFailure::Fail
                }
            ),
        ]
    );
    assert_eq!(pipeline.stages[1].kind_name(), "test");
}

#[test]
fn a_test_stage_without_a_project_or_with_a_bad_timeout_or_failure_mode_is_refused_where_it_is_written() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "e2e"
test = { timeout = "30m" }

[[pipelines.web.stages]]
name = "smoke"
test = { codebuild = "web smoke", timeout = "2m", on_failure = "shrug" }

[[pipelines.web.stages]]
name = "load"
test = { codebuild = "web-load", timeout = "90s", checks = [] }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "web" }
"#;
    let errors = errors(text);
    let expected = [
        "pipelines.toml:8:8: pipeline `web`, field `stages[0].test`: a test stage names what tests: test = { codebuild",
        "pipelines.toml:12:22: pipeline `web`, field `stages[1].test.codebuild`: must be a CodeBuild project name",
        "pipelines.toml:12:45: pipeline `web`, field `stages[1].test.timeout`: must be between 5m and 36h (got \"2m\")",
        "pipelines.toml:12:64: pipeline `web`, field `stages[1].test.on_failure`: must be \"fail\" or \"ask\" (got \"shrug\")",
        "pipelines.toml:16:8: pipeline `web`, field `stages[2].test`: a test stage has either codebuild or checks, not both",
        "pipelines.toml:16:44: pipeline `web`, field `stages[2].test.timeout`: must be between 5m and 36h (got \"90s\")",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
    }
}

#[test]
fn a_test_stage_of_checks_takes_a_deploy_checks_fields_but_no_hook() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "staging"
deploy = { strategy = "rolling", cluster = "staging", service = "web" }

[[pipelines.web.stages]]
name = "smoke"
test = { checks = [ { url = "https://staging.example.com/version", expect_body = "{commit}", retries = 3, interval = "10s" }, { url = "https://staging.example.com/health" } ] }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "web" }
"#;
    let definitions = Definitions::parse("pipelines.toml", text).expect("valid");
    let smoke = definitions.get("web").and_then(|web| web.stages[1].test().cloned()).expect("smoke tests");
    let checks = smoke.checks();
    assert_eq!(checks.len(), 2);
    assert_eq!(smoke.codebuild(), None);
    assert_eq!((checks[0].hook.as_str(), checks[0].expect_body.as_deref()), (TEST_CHECKS, Some("{commit}")));
    assert_eq!((checks[0].retries, checks[0].interval_secs, checks[1].method.as_str()), (3, 10, "GET"));

    let wrong = text.replace(
        "{ url = \"https://staging.example.com/health\" }",
        "{ hook = \"AfterRollout\", url = \"ftp://staging\" }",
    );
    let said = errors(&wrong.replace("interval = \"10s\"", "interval = \"10s\", timeout = \"1h\"")).join("\n");
    assert!(said.contains("field `stages[1].test.checks[1].hook`: unknown field `hook`"), "{said}");
    assert!(said.contains("field `stages[1].test.checks[0].timeout`: must be between"), "{said}");
    let empty = text.replace(
        &text[text.find("test = { checks").expect("checks")
            ..text.find("\n\n[[pipelines.web.stages]]\nname = \"production\"").expect("production")],
        "test = { checks = [], timeout = \"30m\" }",
    );
    let said = errors(&empty).join("\n");
    assert!(said.contains("field `stages[1].test.checks`: a test stage's checks are at least one"), "{said}");
    assert!(
        said.contains("field `stages[1].test.timeout`: a test stage's checks take each check's own timeout"),
        "{said}"
    );
}

#[test]
fn a_test_stage_that_asks_on_failure_asks_as_the_pipelines_first_approval_stage_and_needs_one() {
    let text = r#"
[pipelines.web]
source = { repository = "acme/web" }
build = { project = "web-build" }

[[pipelines.web.stages]]
name = "staging"
deploy = { strategy = "rolling", cluster = "staging", service = "web" }

[[pipelines.web.stages]]
name = "e2e"
test = { codebuild = "web-e2e", on_failure = "ask" }

[[pipelines.web.stages]]
name = "sign-off"
approval = { topic = "arn:aws:sns:eu-west-1:123456789012:web-approvals", timeout = "4h" }

[[pipelines.web.stages]]
name = "production"
deploy = { strategy = "rolling", cluster = "prod", service = "web" }
"#;
    let definitions = Definitions::parse("pipelines.toml", text).expect("valid");
    let e2e = definitions.get("web").and_then(|web| web.stages[1].test().cloned()).expect("e2e tests");
    let asks = Approval {
        topic_arn: "arn:aws:sns:eu-west-1:123456789012:web-approvals".into(),
        timeout_secs: 4 * 3600,
        approvers: None,
    };
    assert_eq!(e2e.on_failure, OnFailure::Ask(asks));

    let without = text.replace(
        "[[pipelines.web.stages]]\nname = \"sign-off\"\napproval = { topic = \"arn:aws:sns:eu-west-1:123456789012:web-approvals\", timeout = \"4h\" }\n\n",
        "",
    );
    let said = errors(&without).join("\n");
    assert!(
        said.contains(
            "field `stages[1].test.on_failure`: \"ask\" mails the pipeline's approvers: add an approval stage"
        ),
        "{said}"
    );
}

/// [`STAGED`] with its sign-off stage's approval written as `approval`.
fn signed_off_by(approval: &str) -> String {
    let written = "approval = { topic = \"arn:aws:sns:eu-west-1:123456789012:web-approvals\", timeout = \"2d\" }";
    STAGED.replace(written, approval)
}

const TOPIC: &str = "topic = \"arn:aws:sns:eu-west-1:123456789012:web-approvals\"";

#[test]
fn named_approvers_are_read_lowercase_with_how_many_must_approve_and_who_else_counts() {
    let text = signed_off_by(&format!(
        "approval = {{ {TOPIC}, approvers = [\"Alice@Example.com\", \"bob@example.com\", \"carol@example.com\"], \
         required = 2, forbid_pusher = true, operators = [\"arn:aws:iam::123456789012:role/release-*\"] }}"
    ));
    let definitions = Definitions::check("pipelines.toml", &text).expect("checks");
    let approvers = definitions.get("web").and_then(Pipeline::approval).and_then(|a| a.approvers.clone());
    let approvers = approvers.expect("named approvers");
    assert_eq!(approvers.emails, ["alice@example.com", "bob@example.com", "carol@example.com"]);
    assert_eq!((approvers.required, approvers.forbid_pusher), (2, true));
    // One approver unless told; the pusher allowed; no operators
    let text = signed_off_by(&format!("approval = {{ {TOPIC}, approvers = [\"alice@example.com\"] }}"));
    let definitions = Definitions::check("pipelines.toml", &text).expect("checks");
    let approvers = definitions.get("web").and_then(Pipeline::approval).and_then(|a| a.approvers.clone());
    assert_eq!(
        approvers,
        Some(Approvers {
            emails: vec!["alice@example.com".into()],
            required: 1,
            forbid_pusher: false,
            operators: vec![]
        })
    );
    // Without approvers, whoever holds the link decides, as before
    let definitions = Definitions::check("pipelines.toml", STAGED).expect("checks");
    assert_eq!(definitions.get("web").and_then(Pipeline::approval).map(|a| a.approvers.clone()), Some(None));
}

#[test]
fn approvers_that_are_not_addresses_or_too_few_for_required_are_refused_at_their_line() {
    let approval = |fields: &str| signed_off_by(&format!("approval = {{ {TOPIC}, {fields} }}"));
    for (text, expected) in [
        (
            approval("approvers = [\"alice\"]"),
            "field `stages[1].approval.approvers[0]`: must be an email address of at most 100 characters, such as alice@example.com (got \"alice\")",
        ),
        (
            approval("approvers = [\"alice@example.com\", \"ALICE@example.com\"]"),
            "field `stages[1].approval.approvers[1]`: alice@example.com is named twice",
        ),
        (approval("approvers = []"), "field `stages[1].approval.approvers`: 1 to 6 email addresses"),
        (
            approval("approvers = [\"alice@example.com\", \"bob@example.com\"], required = 3"),
            "field `stages[1].approval.required`: must be between 1 and the number of approvers, 2 (got 3)",
        ),
        (
            approval("approvers = [\"alice@example.com\"], required = 0"),
            "field `stages[1].approval.required`: must be between 1 and the number of approvers, 1 (got 0)",
        ),
        (approval("required = 2"), "field `stages[1].approval.required`: needs `approvers`"),
        (approval("forbid_pusher = true"), "field `stages[1].approval.forbid_pusher`: needs `approvers`"),
        (
            approval("approvers = [\"alice@example.com\"], operators = [\"release-*\"]"),
            "field `stages[1].approval.operators[0]`: must be an IAM principal ARN pattern",
        ),
        (
            approval("approvers = [\"alice@example.com\"], operators = [\"arn:aws:iam::123456789012:role/release/*\"]"),
            "field `stages[1].approval.operators[0]`: names a role by its path, which a session's ARN does not say",
        ),
        (
            approval(
                "approvers = [\"a@x.io\", \"b@x.io\", \"c@x.io\", \"d@x.io\", \"e@x.io\", \"f@x.io\", \"g@x.io\"]",
            ),
            "field `stages[1].approval.approvers`: 1 to 6 email addresses",
        ),
    ] {
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains(expected), "{errors:#?}");
    }
    // An error names its line and column
    let errors = errors(&approval("approvers = [\"alice@example.com\", \"bob at example.com\"]"));
    assert!(errors[0].starts_with("pipelines.toml:13:108:"), "{errors:#?}");
}

#[test]
fn a_failed_test_stage_asks_the_first_approval_stages_named_approvers() {
    let text = STAGED.replace(
        "[[pipelines.web.stages]]\nname = \"sign-off\"",
        "[[pipelines.web.stages]]\nname = \"e2e\"\ntest = { codebuild = \"web-e2e\", on_failure = \"ask\" }\n\n\
         [[pipelines.web.stages]]\nname = \"sign-off\"",
    );
    let text = text.replace(
        "timeout = \"2d\" }",
        "timeout = \"2d\", approvers = [\"alice@example.com\", \"bob@example.com\"], required = 2 }",
    );
    let definitions = Definitions::check("pipelines.toml", &text).expect("checks");
    let web = definitions.get("web").expect("web");
    let asks = web.stages.iter().find_map(|stage| match &stage.kind {
        StageKind::Test(TestStage { on_failure: OnFailure::Ask(approval), .. }) => Some(approval.clone()),
        _ => None,
    });
    assert_eq!(asks.and_then(|approval| approval.approvers).map(|a| a.required), Some(2));
}

#[test]
fn operators_match_their_arns_and_the_roles_their_sessions_assume() {
    let approvers = Approvers {
        emails: vec!["alice@example.com".into()],
        required: 1,
        forbid_pusher: false,
        operators: vec!["arn:aws:iam::123456789012:role/release-*".into(), "arn:aws:iam::*:user/ops".into()],
    };
    assert!(approvers.operator("arn:aws:sts::123456789012:assumed-role/release-managers/alice"));
    assert!(approvers.operator("arn:aws:iam::123456789012:role/release-managers"));
    assert!(approvers.operator("arn:aws:iam::999999999999:user/ops"));
    assert!(!approvers.operator("arn:aws:sts::123456789012:assumed-role/developers/alice"));
    assert!(!approvers.operator("arn:aws:sts::210987654321:assumed-role/release-managers/alice"));
    assert!(!approvers.operator("arn:aws:iam::999999999999:user/ops2"));
    // A pattern of a whole account takes its roles' sessions too, in its partition
    let account = Approvers { operators: vec!["arn:aws:iam::123456789012:*".into()], ..approvers.clone() };
    assert!(account.operator("arn:aws:sts::123456789012:assumed-role/anyone/x"));
    assert!(!account.operator("arn:aws-cn:sts::123456789012:assumed-role/anyone/x"));
    assert_eq!(
        operator_identity("arn:aws-cn:sts::123456789012:assumed-role/ops/x"),
        "arn:aws-cn:iam::123456789012:role/ops"
    );
    assert!(glob_matches("a*b*c", "a-b-b-c") && !glob_matches("a*b*c", "a-c-b") && glob_matches("*", ""));
    // `?` is any one character, as IAM reads it; many stars do not take exponential time
    assert!(glob_matches("arn:aws:iam::12345678901?:user/ops", "arn:aws:iam::123456789012:user/ops"));
    assert!(!glob_matches(&"*a".repeat(40), &"a".repeat(39)));
}

#[test]
fn a_topic_of_named_approvers_carries_no_request_for_everyone_and_a_pusher_among_all_required_is_warned_of() {
    let named = format!("approval = {{ {TOPIC}, approvers = [\"alice@example.com\", \"bob@example.com\"] }}");
    // The canary's pause asks the first approval stage's topic unless it names its own
    let paused = signed_off_by(&named).replace(
        "canary = { percent = 10, bake_time = \"15m\" } }",
        "canary = { percent = 10, bake_time = \"15m\" }, approval = { stage = \"PRE_PRODUCTION_TRAFFIC_SHIFT\" } }",
    );
    let errors = errors(&paused);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains(
            "field `stages[2].deploy.approval.topic`: arn:aws:sns:eu-west-1:123456789012:web-approvals \
             carries named approvers' own links"
        ),
        "{errors:#?}"
    );
    let own = paused.replace(
        "approval = { stage = \"PRE_PRODUCTION_TRAFFIC_SHIFT\" }",
        "approval = { stage = \"PRE_PRODUCTION_TRAFFIC_SHIFT\", topic = \"arn:aws:sns:eu-west-1:123456789012:web-pauses\" }",
    );
    Definitions::check("pipelines.toml", &own).expect("a pause with a topic of its own checks");
    // Two approvers, both required, the pusher forbidden: a push by either can never pass
    let all = signed_off_by(&format!(
        "approval = {{ {TOPIC}, approvers = [\"alice@example.com\", \"bob@example.com\"], required = 2, forbid_pusher = true }}"
    ));
    let definitions = Definitions::check("pipelines.toml", &all).expect("checks, with a warning");
    let warnings: Vec<String> = definitions.warnings().iter().map(ToString::to_string).collect();
    assert!(warnings.iter().any(|w| w.contains("a push by one of them can never be approved")), "{warnings:#?}");
}

#[test]
fn a_pipeline_asking_everyone_on_another_pipelines_topic_of_named_approvers_is_refused_at_its_name() {
    let named = signed_off_by(&format!("approval = {{ {TOPIC}, approvers = [\"alice@example.com\"] }}"));
    let text = format!(
        "{named}\n[pipelines.api]\nsource = {{ repository = \"acme/api\" }}\nbuild = {{ project = \"api-build\" }}\n\
         approval = {{ {TOPIC} }}\ndeploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"api\" }}\n"
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("pipeline `api`"), "{errors:#?}");
    assert!(errors[0].contains("carries pipeline `web`'s named approvers' own links"), "{errors:#?}");
}
