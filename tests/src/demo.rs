//! `make demo`: a push to deployment, locally, through sluice's real functions.
//!
//! moto_server plays DynamoDB, EventBridge (the rules of template.yaml, each targeting an SQS queue), S3, Secrets
//! Manager and SQS. The sandbox plays the rest of AWS: the webhook function is served on a loopback function URL,
//! CodeBuild's builds run and report as CodeBuild does, and each rule's target feeds its function. The approval
//! function mails the request through SNS (moto) and serves its page on a loopback function URL; the demo opens the
//! link as a mail scanner would (GET: nothing changes), then decides through the page's form as a person would
//! (`make demo APPROVE=manual` prints the link and waits for you to decide in a browser). The deployer registers
//! the task definition (ECS sandbox) and starts the CodeDeploy blue/green deployment (CodeDeploy sandbox), which
//! invokes sluice's hooks function at each checked lifecycle hook; its checks hit the sandbox's sample app through
//! the load balancer's test listener. deploy-events ends the run on CodeDeploy's word. `make demo SCENARIO=rollback`
//! deploys a replacement whose health check fails: the hook answers Failed and CodeDeploy rolls back;
//! `SCENARIO=rolling` deploys `web` by an ECS rolling update instead, and `SCENARIO=circuit-breaker` one whose tasks
//! fail to start, so that ECS's circuit breaker rolls it back. The notifier
//! tells the pipeline's topic how the run ended. The demo plays only GitHub (signed pushes over HTTP).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::meter::{Meter, Usage};
use crate::wiring::{Handler, handler};
use crate::{Stack, Template, approval_link, form_token, moto, post, request, sns_messages, workspace_root};
use anyhow::{Context, Result};
use serde_json::Value;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{DefinitionsStore, PipelineStore};
use sluice::definitions::Definitions;
use sluice::github::webhook::sign;
use sluice::pipeline::{ExecutionId, Status};
use sluice::present::text::span;
use sluice_sandbox::codebuild::{CodeBuildSandbox, Outputs, Scenario, TestCase};
use sluice_sandbox::codedeploy::{CodeDeploySandbox, Settings};
use sluice_sandbox::ecs::{EcsSandbox, Events, Rollout};
use sluice_sandbox::function_url::{FunctionUrl, serve};
use sluice_sandbox::github::GitHub;
use sluice_sandbox::pump::Pump;
use sluice_sandbox::sample_app::SampleApp;

const PUSH: &[u8] = include_bytes!("../../shared/tests/fixtures/github-push.json");
const SECRET: &str = "demo-webhook-secret-0123456789abcdef";
/// The status page's key (the stack generates one; `sluice page` prints the page's address).
const STATUS_KEY: &str = "demoStatusKey0123456789abcdef";
/// The GitHub token the stand-in accepts (on AWS: the secret named by the stack's GitHubTokenSecret).
const GITHUB_TOKEN: &str = "github_pat_demo_0123456789";
/// The commit the pushed payload leaves `main` at.
const HEAD: &str = "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b";
/// The hooks function's name, as the deployer names it in AppSpecs (on AWS: `CodeDeployHook_<stack>`).
const HOOKS: &str = "CodeDeployHook_sluice-demo";
/// The role ECS assumes to invoke the hooks function (ECS-native strategies).
const HOOK_ROLE: &str = "arn:aws:iam::123456789012:role/sluice-demo-ecs-hooks";

fn show(what: &str, status: u16, body: &Value) {
    println!("  {what}\n    ← {status} {body}");
}

/// What a demo run ended with, for the caller to judge.
pub struct DemoOutcome {
    pub run: sluice::pipeline::Execution,
    /// The notification's subject and email text.
    pub notification: (String, String),
    /// Where the sample app's production listener routes once the run ended (`blue` or `green`).
    pub production: String,
    /// The task definition the ECS service runs once the run ended.
    pub service_task_definition: Option<String>,
    /// What each decision made on a page answered, then the same POST made again: (first, again).
    pub clicks: Vec<(u16, u16)>,
    /// What the run cost in AWS, as measured.
    pub cost: Cost,
    /// The commit statuses GitHub was sent for the pushed commit, (state, description), oldest first.
    pub commit_statuses: Vec<(String, String)>,
    /// The states the run's GitHub Deployment went through, oldest first.
    /// Each of the run's GitHub Deployments (one per deploy stage): its environment and the states it went through.
    pub deployment_states: Vec<(String, Vec<String>)>,
    /// The events each function put on the bus, by its logical id.
    pub published: crate::meter::Published,
    /// A run in stages: each deploy stage and the image its task definition ran, as ECS describes it.
    pub stage_images: Vec<(String, Option<String>)>,
    /// The task definition the staging service runs once the run ended (a run in stages).
    pub staging_task_definition: Option<String>,
}

/// What a demo run used of what AWS bills, measured: each function's invocations and billed time (counted where
/// the demo invokes the function, as Lambda would), and the calls sluice's functions made (counted on the wire by
/// a meter between them and moto).
#[derive(Debug, Clone, Default)]
pub struct Cost {
    /// Per function: invocations and billed milliseconds (each invocation rounded up to the millisecond).
    pub invocations: BTreeMap<&'static str, (u64, u64)>,
    pub usage: Usage,
}

/// Public prices (US East, N. Virginia, 2026-11), in dollars.
pub mod price {
    /// Lambda on arm64: per request, and per GB-second.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    /// sluice's functions have 128 MB.
    pub const LAMBDA_GB: f64 = 0.125;
    /// DynamoDB on demand: per write request unit, per read request unit.
    pub const DYNAMODB_WRITE: f64 = 0.625 / 1e6;
    pub const DYNAMODB_READ: f64 = 0.125 / 1e6;
    /// EventBridge: per custom event put on a bus (AWS services' own events are free).
    pub const EVENTBRIDGE_EVENT: f64 = 1.00 / 1e6;
    /// SNS: per publish, and per email delivered.
    pub const SNS_PUBLISH: f64 = 0.50 / 1e6;
    pub const SNS_EMAIL: f64 = 2.00 / 1e5;
    /// CodePipeline V2: per action execution minute (manual approvals are free).
    pub const CODEPIPELINE_ACTION_MINUTE: f64 = 0.002;
}

impl Cost {
    pub fn invocations(&self) -> u64 {
        self.invocations.values().map(|(count, _)| count).sum()
    }

    pub fn gb_seconds(&self) -> f64 {
        self.invocations.values().map(|(_, millis)| *millis as f64 / 1000.0).sum::<f64>() * price::LAMBDA_GB
    }

    /// (what, used, dollars) per service; `emails` is the number of email deliveries.
    pub fn lines(&self, emails: u64) -> Vec<(&'static str, String, f64)> {
        let usage = &self.usage;
        vec![
            (
                "Lambda",
                format!("{} invocations, {:.3} GB-s", self.invocations(), self.gb_seconds()),
                self.invocations() as f64 * price::LAMBDA_REQUEST + self.gb_seconds() * price::LAMBDA_GB_SECOND,
            ),
            (
                "DynamoDB",
                format!("{} write units, {} read units", usage.write_units, usage.read_units),
                usage.write_units as f64 * price::DYNAMODB_WRITE + usage.read_units as f64 * price::DYNAMODB_READ,
            ),
            ("EventBridge", format!("{} events put", usage.events), usage.events as f64 * price::EVENTBRIDGE_EVENT),
            (
                "SNS",
                format!("{} publishes, {emails} emails", usage.publishes),
                usage.publishes as f64 * price::SNS_PUBLISH + emails as f64 * price::SNS_EMAIL,
            ),
        ]
    }
}

/// Counts each function's invocations and the time each took, as Lambda bills them.
#[derive(Clone, Default)]
struct Invocations(Arc<Mutex<BTreeMap<&'static str, (u64, u64)>>>);

impl Invocations {
    async fn time<T>(&self, function: &'static str, work: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let result = work.await;
        let millis = start.elapsed().as_micros().div_ceil(1000) as u64;
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = counts.entry(function).or_default();
        entry.0 += 1;
        entry.1 += millis;
        result
    }

    fn read(&self) -> BTreeMap<&'static str, (u64, u64)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Runs the demo of `scenario`, printing as it goes; `manual` waits for a person to decide in a browser.
pub async fn run(scenario: DemoScenario, manual: bool) -> Result<DemoOutcome> {
    let demo = Demo::start(scenario, manual).await?;
    let execution_id = demo.push().await?;
    if scenario.verify() {
        demo.soak(&execution_id).await?;
        let run = demo.verify(&execution_id).await?;
        return demo.report(run, Vec::new()).await;
    }
    if scenario == DemoScenario::SoakAlarm {
        let run = demo.soak_alarm(&execution_id).await?;
        return demo.report(run, Vec::new()).await;
    }
    if scenario == DemoScenario::Freeze {
        // Boxed: the scenario's future is large for a test thread's stack.
        let run = Box::pin(demo.freeze(&execution_id)).await?;
        return demo.report(run, Vec::new()).await;
    }
    if scenario == DemoScenario::EntryAlarm {
        let run = Box::pin(demo.entry_alarm(&execution_id)).await?;
        return demo.report(run, Vec::new()).await;
    }
    if scenario.promote() {
        demo.soak(&execution_id).await?;
    }
    if scenario == DemoScenario::TwoApprovers {
        let clicks = Box::pin(demo.approve_named(&execution_id)).await?;
        let run = demo.deploy_blue_green(&execution_id).await?;
        return demo.report(run, clicks).await;
    }
    let mut clicks = demo.approve(&execution_id).await?;
    let run = match scenario {
        DemoScenario::Promote => demo.deploy_canary(&execution_id, &mut clicks).await?,
        DemoScenario::PromoteFail => demo.deploy_failing_canary(&execution_id).await?,
        _ if scenario.canary() => demo.deploy_canary(&execution_id, &mut clicks).await?,
        _ if scenario.rolling() => demo.deploy_rolling(&execution_id).await?,
        _ => demo.deploy_blue_green(&execution_id).await?,
    };
    demo.report(run, clicks).await
}

/// The stack's CloudWatch alarms (in moto), whose state changes the sandbox publishes on the default bus.
fn alarms(stack: &Stack) -> sluice_sandbox::cloudwatch::Alarms {
    sluice_sandbox::cloudwatch::Alarms {
        cloudwatch: aws_sdk_cloudwatch::Client::new(&stack.config),
        eventbridge: stack.eventbridge.clone(),
        bus: stack.default_bus.clone(),
    }
}

/// What the demo started, which its steps share: everything stops when it is dropped.
struct Demo {
    scenario: DemoScenario,
    manual: bool,
    sample: Arc<SampleApp>,
    stack: Stack,
    store: DynamoDbStore,
    /// The pipeline's notify topic.
    outcomes: String,
    aws: aws_config::SdkConfig,
    meter: Meter,
    invocations: Invocations,
    sandboxes: Sandboxes,
    functions: Functions,
}

/// The sandbox's part of AWS: CodeBuild, CodeDeploy and ECS.
struct Sandboxes {
    codebuild: CodeBuildSandbox,
    codedeploy: CodeDeploySandbox,
    ecs: EcsSandbox,
    rollout: Rollout,
}

/// sluice's functions as the demo runs them: the two function URLs, GitHub's stand-in the notifier reports to, and
/// what feeds the others.
struct Functions {
    webhook: FunctionUrl,
    approval: FunctionUrl,
    github: GitHub,
    /// What every function is configured with (the reconciler's schedule runs with it).
    common: sluice::runtime::config::Common,
    _pumps: Vec<Pump>,
}

impl Demo {
    /// The stack in moto, the published pipelines, the sandbox, the meter and sluice's functions.
    async fn start(scenario: DemoScenario, manual: bool) -> Result<Self> {
        let name = scenario.name();
        println!("sluice demo ({name}): a push to deployment, locally, through sluice's real functions\n");
        // The sample app behind its load balancer: blue serves production; green, the replacement, is healthy unless
        // the scenario says otherwise.
        let sample = SampleApp::serve(scenario.healthy()).await?;
        let stack = Stack::create().await.context("creating the stack in moto")?;
        let rules: Vec<String> = Template::load()?.rules()?.into_iter().map(|r| r.logical_id).collect();
        println!("  local AWS      moto_server at {}", moto().endpoint);
        println!("  table, bus     {} · {} (rules from template.yaml: {})", stack.table, stack.bus, rules.join(", "));
        let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
        let outcomes = publish_definitions(&stack, &store, &sample, scenario).await?;
        let sandboxes = Sandboxes::start(&stack, &sample, scenario).await?;
        if scenario.verify() || scenario == DemoScenario::SoakAlarm {
            let alarms = alarms(&stack);
            alarms.create(STAGING_5XX).await?;
            alarms.create(STAGING_LATENCY).await?;
            if scenario == DemoScenario::SoakAlarm {
                // Already firing before the deployment: reported, and a fix may ship during the incident.
                alarms.set(STAGING_LATENCY, "ALARM", "Threshold Crossed: p99 latency 2.4 s > 1 s").await?;
            }
            println!(
                "  CloudWatch     alarms {STAGING_5XX} and {STAGING_LATENCY} in moto; the sandbox publishes their state changes"
            );
        }
        if scenario == DemoScenario::EntryAlarm {
            let alarms = alarms(&stack);
            alarms.create(PROD_5XX).await?;
            alarms
                .set(PROD_5XX, "ALARM", "Threshold Crossed: 12 datapoints were greater than the threshold (5.0)")
                .await?;
            println!("  CloudWatch     alarm {PROD_5XX} in moto, in ALARM: production answers 5xx");
        }
        // Every sluice client speaks to moto, but CodeBuild's, CodeDeploy's and ECS's, which speak to the sandbox:
        // as AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_CODEBUILD (and so on) would set them on a laptop. sluice's
        // functions speak to moto through a meter that counts what their calls are billed for.
        let meter = Meter::start(&moto().endpoint).await?;
        let invocations = Invocations::default();
        let endpoints = [
            ("codebuild", sandboxes.codebuild.endpoint.as_str()),
            ("codedeploy", sandboxes.codedeploy.endpoint.as_str()),
            ("ecs", sandboxes.ecs.endpoint.as_str()),
        ];
        let aws = crate::aws_config_with(&meter.endpoint, &endpoints).await;
        sandboxes.show(&sample, scenario);
        let functions = Functions::start(&stack, &aws, &sample, &sandboxes, &invocations, &outcomes).await?;
        Ok(Self { scenario, manual, sample, stack, store, outcomes, aws, meter, invocations, sandboxes, functions })
    }

    /// GitHub (played by the demo) delivers a signed push, the same delivery again, and a forged one: the run of
    /// the push.
    async fn push(&self) -> Result<ExecutionId> {
        let url = &self.functions.webhook;
        println!("GitHub (played by the demo) delivers a signed push of acme/web main:");
        // GitHub's fixture, pushed now.
        let push = sluice::contract::testing::pushed_at(PUSH, chrono::Utc::now());
        let signature = sign(SECRET, &push);
        let headers = |delivery: &'static str, signature: &str| {
            vec![
                ("content-type", "application/json".to_owned()),
                ("x-github-event", "push".to_owned()),
                ("x-github-delivery", delivery.to_owned()),
                ("x-hub-signature-256", signature.to_owned()),
            ]
        };
        let send = |headers: Vec<(&'static str, String)>| {
            let (url, push) = (url.url.clone(), push.clone());
            async move {
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                post(&url, &headers, push).await
            }
        };
        let (status, body) = send(headers("72d3162e-cc78-11e3-81ab-4c9367dc0958", &signature)).await?;
        show("POST push (delivery 72d3162e…)", status, &body);
        let (status, body) = send(headers("72d3162e-cc78-11e3-81ab-4c9367dc0958", &signature)).await?;
        show("POST the same delivery again", status, &body);
        let (status, body) = send(headers("0b989ba4-242f-11e5-81e1-c7b6966d2516", &sign("guessed", &push))).await?;
        show("POST a push signed with the wrong secret", status, &body);
        Ok(ExecutionId("web-72d3162e-cc78-11e3-81ab-4c9367dc0958".into()))
    }

    /// The build, then the approval: the request mailed, a mail scanner's GET, and a person's decision on the page.
    async fn approve(&self, execution_id: &ExecutionId) -> Result<Vec<(u16, u16)>> {
        let (stack, store, manual, execution_id) = (&self.stack, &self.store, self.manual, execution_id.clone());
        if !self.scenario.promote() {
            println!("\nCodeBuild (sandbox) builds {}; its events reach build-events through the rule:", &HEAD[..7]);
        }
        let email = wait_for_email(&stack.approval_topic).await?;
        wait_until_sent(store, &execution_id, 1).await?;
        println!("\napproval-requests mailed the approvers (SNS topic {}), as moto recorded it:", stack.approval_topic);
        println!("  Subject: {}", email.0);
        for line in email.1.lines() {
            println!("  | {line}");
        }
        // The sign-off shows the release against what runs where approving releases it.
        anyhow::ensure!(
            email.1.contains("Runs now:") && email.1.contains("environment -LEGACY_MODE"),
            "the approval email does not show what runs where approving releases the build, and how the release differs"
        );
        let link = approval_link(&email.1).context("no review link in the email")?;
        let mut clicks = Vec::new();

        let status_of = |store: DynamoDbStore, id: ExecutionId| async move {
            store.execution(&id).await.map(|execution| execution.map(|execution| execution.status))
        };
        let (status, _, _) = request("GET", &link, &[("user-agent", "Mimecast-LinkScanner/1.0")], vec![]).await?;
        let now = describe(status_of(store.clone(), execution_id.clone()).await?);
        println!("\nA mail scanner fetches the link (GET): {status}; the run is still {now}");

        if manual {
            println!("\nOpen this link in a browser and decide (the demo waits up to 10 minutes):\n  {link}");
            let deadline = std::time::Instant::now() + Duration::from_secs(600);
            while store.execution(&execution_id).await?.is_some_and(|run| run.approving()) {
                if std::time::Instant::now() > deadline {
                    anyhow::bail!("nobody decided within 10 minutes");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        } else {
            println!("A person opens it, types a name and a comment, and presses Approve (POST from the page):");
            clicks.push(decide_on_page(&link, "approve", "ship it").await?);
        }
        println!("  the run is now {}", describe(status_of(store.clone(), execution_id.clone()).await?));
        Ok(clicks)
    }

    /// The sign-off by named approvers: each got a message only their subscription's filter policy accepts, with a
    /// link of their own; the pusher's link refuses; alice and bob approve from their pages (each clicking twice).
    async fn approve_named(&self, execution_id: &ExecutionId) -> Result<Vec<(u16, u16)>> {
        println!("\nCodeBuild (sandbox) builds {}; its events reach build-events through the rule:", &HEAD[..7]);
        wait_until_sent(&self.store, execution_id, 1).await?;
        let run = self.store.execution(execution_id).await?.context("the run is not recorded")?;
        let topic = run.approval().map(|approval| approval.topic_arn.clone()).context("no approval asked")?;
        let mut links = BTreeMap::new();
        println!("\napproval-requests mailed each named approver a message of their own (SNS topic {topic}):");
        for (subject, message, approver) in crate::sns_published(&topic).await? {
            let message: Value = serde_json::from_str(&message).context("the SNS message is not JSON")?;
            let text = message["email"].as_str().context("no email form")?;
            let approver = approver.context("a message for no one in particular")?;
            let link = approval_link(text).context("no review link in the email")?;
            let shown = link.rsplit_once('/').map(|(base, token)| format!("{base}/{}…", &token[..8.min(token.len())]));
            println!("  to {approver:<20} {} · {}", subject.unwrap_or_default(), shown.unwrap_or_default());
            anyhow::ensure!(text.contains(&format!("It is yours alone, {approver}")), "not a personal email: {text}");
            if links.is_empty() {
                for line in text.lines().filter(|line| line.contains("yours alone") || line.starts_with("Review")) {
                    println!("  | {line}");
                }
            }
            links.insert(approver, link);
        }
        anyhow::ensure!(links.len() == 3, "three approvers, three messages: {links:?}");
        println!(
            "  (each subscription's filter policy, {{\"sluice_approver\": [ADDRESS]}}, lets through its own alone)"
        );
        let (code, _, page) = request("GET", &links["octocat@github.com"], &[], vec![]).await?;
        println!("\nThe pusher, octocat@github.com, opens their link: {code} {}", heading(&page));
        anyhow::ensure!(code == 403, "the pusher's own link must refuse: {code}");
        let mut clicks = Vec::new();
        for (approver, comment) in [("alice@example.com", "lgtm"), ("bob@example.com", "ship it")] {
            println!("{approver} opens their link and presses Approve (the page names them; no name to type):");
            clicks.push(decide_on_page(&links[approver], "approve", comment).await?);
            let now = self.store.execution(execution_id).await?.context("the run")?;
            println!("  the run is now {}", describe(Some(now.status)));
        }
        Ok(clicks)
    }

    /// Staging's rolling update, checked once rolled out, then its soak: the release runs there before the sign-off is
    /// asked for. No function runs while it soaks; the reconciler's scheduled look (every 5 minutes on AWS; here,
    /// once the demo's 2 s soak is over) takes the run on.
    async fn soak(&self, execution_id: &ExecutionId) -> Result<()> {
        println!(
            "\nCodeBuild (sandbox) builds {}; the deployer rolls staging out, ECS reports the rollout",
            &HEAD[..7]
        );
        if self.scenario.verify() {
            println!("completed, deploy-events checks what its tasks run (ListTasks, DescribeTasks), and the release");
            println!("soaks at staging, watched by alarm {STAGING_5XX}:");
        } else {
            println!("completed, the hooks function's AfterRollout check passes, and the release soaks at staging:");
        }
        let until = self.soaking_until(execution_id).await?;
        let run = self.store.execution(execution_id).await?.context("the run is not recorded")?;
        if let Some(check) = run.deploy().and_then(|deploy| deploy.digest_check.as_ref()) {
            println!("  digest check   {}", check.summary());
        }
        println!("  soaks until {} (no function runs meanwhile)", until.format("%H:%M:%S%.3f"));
        tokio::time::sleep((until - chrono::Utc::now()).to_std().unwrap_or_default()).await;
        let summary = self.reconciler_look().await?;
        println!("  the reconciler's scheduled look moved {} run on: {summary}", summary["moved"]);
        if self.scenario.verify() {
            println!(
                "  (a soak watched by alarms is rung to deploy-events as Soak Ended; it reads the alarm, still OK)"
            );
        }
        Ok(())
    }

    /// Staging's rolling update soaks watched by two alarms, one of them already in ALARM; the other goes into ALARM
    /// during the soak (the sandbox publishes CloudWatch's state change): deploy-events fails staging, the deployer
    /// puts the service back on the task definition it ran before, and the run ends rolled back.
    async fn soak_alarm(&self, execution_id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
        println!("\nCodeBuild (sandbox) builds {}; the deployer reads the soak's alarms (DescribeAlarms:", &HEAD[..7]);
        println!("{STAGING_LATENCY} is already in ALARM), rolls staging out, and the release soaks at staging:");
        let deadline = Instant::now() + Duration::from_secs(60);
        let run = loop {
            let run = self.store.execution(execution_id).await?.context("the run is not recorded")?;
            if run.soaking().is_some() {
                break run;
            }
            if run.status.is_finished() || Instant::now() > deadline {
                anyhow::bail!("the run never soaked at staging: it is {}", run.status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let deploy = run.deploy().context("staging's deployment is not recorded")?;
        let before = deploy.in_alarm_before.clone().unwrap_or_default();
        println!("  already in ALARM before this deployment: {}", before.join(", "));
        if let Some(check) = &deploy.digest_check {
            println!("  digest check   {}", check.summary());
        }
        let reason = "Threshold Crossed: 1 out of the last 1 datapoints [37.0] was greater than the threshold (5.0)";
        println!("\n{STAGING_5XX} goes into ALARM during the soak (moto; the sandbox publishes CloudWatch's event):");
        alarms(&self.stack).set(STAGING_5XX, "ALARM", reason).await?;
        let run = wait_until_finished(&self.store, execution_id).await?;
        let production = sluice::pipeline::Stage::new("production").context("a stage name")?;
        if run.record(production).is_some() {
            anyhow::bail!("the run entered production though staging's soak failed");
        }
        let said = run.reason.clone().unwrap_or_default();
        if !said.contains(&format!("alarm {STAGING_5XX} went into ALARM during the soak")) {
            anyhow::bail!("the run's reason does not name the alarm: {said}");
        }
        println!("  staging rolled back; production untouched");
        Ok(run)
    }

    /// When the run's soak at staging ends, once it soaks (within 60 s).
    async fn soaking_until(&self, execution_id: &ExecutionId) -> Result<chrono::DateTime<chrono::Utc>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = self.store.execution(execution_id).await?.context("the run is not recorded")?;
            if let Some(until) = run.soaking() {
                return Ok(until);
            }
            if run.status.is_finished() || Instant::now() > deadline {
                anyhow::bail!("the run never soaked at staging: it is {}", run.status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The reconciler's scheduled look, now, as its schedule runs it: what it says it did.
    async fn reconciler_look(&self) -> Result<Value> {
        let aws = as_function(&self.aws, "ReconcilerFunction")?;
        let reconciler = reconciler::handler::AwsApp::from_aws(&aws, &self.functions.common.clone().into());
        // Boxed, as the scenarios that await it: the look's future is large for a test thread's stack.
        let look = Box::pin(reconciler::handler::on_schedule(&reconciler, chrono::Utc::now()));
        Ok(self.invocations.time("reconciler", look).await?)
    }

    /// Staging's rolling update soaks; meanwhile an operator stops the line (`sluice freeze web`, as the command does
    /// it): the soak ends and the run waits before production, no function running while it waits; `sluice status`
    /// and GitHub say why. `sluice unfreeze web`, and production deploys the same image.
    async fn freeze(&self, execution_id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
        use sluice::usecases::{FreezeOrder, set_freeze};
        println!(
            "\nCodeBuild (sandbox) builds {}; the deployer rolls staging out and the release soaks at staging:",
            &HEAD[..7]
        );
        let until = self.soaking_until(execution_id).await?;
        println!("  soaks until {}", until.format("%H:%M:%S%.3f"));
        // The operator's command, with their credentials (not the functions'): straight to moto, not metered.
        let operator = sluice::adapters::stage_effects(&self.stack.config, &self.stack.bus);
        let web = ["web".to_owned()];
        let order = FreezeOrder::Freeze { reason: FREEZE_REASON, until: None };
        println!("\nAn incident: `sluice freeze web --reason \"{FREEZE_REASON}\"`, as {OPERATOR}:");
        Box::pin(set_freeze(&self.store, &operator, (&web, false), order, (OPERATOR, chrono::Utc::now()))).await?;
        tokio::time::sleep((until - chrono::Utc::now()).to_std().unwrap_or_default()).await;
        let summary = self.reconciler_look().await?;
        println!("  the soak is over; the reconciler's look moved {} run on: {summary}", summary["moved"]);
        let production = sluice::pipeline::Stage::new("production").context("a stage name")?;
        let state = self.store.load("web").await?.context("web has no state")?.value;
        let run = state.execution(execution_id).context("the run is not in web's state")?;
        if run.status != Status::Waiting(production) {
            anyhow::bail!("the frozen run should wait before production; it is {}", run.status);
        }
        let waits = sluice::present::timeline::waits_for_in(run, &state, chrono::Utc::now());
        println!("  `sluice status web`: {} waits for {waits}", run.id);
        let held = self.frozen_on_github(&run.source.commit).await?;
        println!("  GitHub, commit status sluice/web: {held}");
        let ecs = aws_sdk_ecs::Client::new(&self.aws);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let described = ecs.describe_services().cluster("prod").services("web").send().await?;
        let running = described.services().first().and_then(|service| service.task_definition());
        if running != Some(RUNNING_TASK_DEFINITION) {
            anyhow::bail!("production was deployed while frozen: it runs {running:?}");
        }
        println!("  two seconds later production is untouched");
        println!("\nThe incident is over: `sluice unfreeze web`; the run takes production, the same image:");
        let unfreeze =
            set_freeze(&self.store, &operator, (&web, false), FreezeOrder::Unfreeze, (OPERATOR, chrono::Utc::now()));
        Box::pin(unfreeze).await?;
        wait_until_finished(&self.store, execution_id).await
    }

    /// Staging's rolling update soaks; production's entry alarm is in ALARM: once the soak is over the deployer's
    /// start of production waits, saying why (`sluice status`), production untouched and no function running. The
    /// alarm goes back to OK; the reconciler's next look rings the deployer, and production deploys.
    async fn entry_alarm(&self, execution_id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
        println!(
            "\nCodeBuild (sandbox) builds {}; the deployer rolls staging out and the release soaks at staging:",
            &HEAD[..7]
        );
        let until = self.soaking_until(execution_id).await?;
        println!("  soaks until {}", until.format("%H:%M:%S%.3f"));
        tokio::time::sleep((until - chrono::Utc::now()).to_std().unwrap_or_default()).await;
        let summary = self.reconciler_look().await?;
        println!("  the soak is over; the reconciler's look moved {} run on: {summary}", summary["moved"]);
        println!(
            "\nThe deployer reads production's entry alarm (DescribeAlarms): {PROD_5XX} is in ALARM, the start waits:"
        );
        let (waits, retry_at) = self.start_waiting(execution_id).await?;
        println!("  `sluice status web`: {execution_id} waits for {waits}");
        let ecs = aws_sdk_ecs::Client::new(&self.aws);
        let described = ecs.describe_services().cluster("prod").services("web").send().await?;
        let running = described.services().first().and_then(|service| service.task_definition());
        if running != Some(RUNNING_TASK_DEFINITION) {
            anyhow::bail!("production was deployed while its entry alarm was in ALARM: it runs {running:?}");
        }
        println!("  production is untouched");
        println!("\nThe fix lands elsewhere; {PROD_5XX} goes back to OK (moto), and at the reconciler's next look the");
        println!("deployer (rung by Effects Due) reads it again and deploys production:");
        alarms(&self.stack)
            .set(PROD_5XX, "OK", "Threshold Crossed: no datapoint was greater than the threshold")
            .await?;
        tokio::time::sleep((retry_at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
        let summary = self.reconciler_look().await?;
        println!("  the reconciler's look: {summary}");
        wait_until_finished(&self.store, execution_id).await
    }

    /// What the run's start at production waits for, as `sluice status` tells it, and when it is tried again, once
    /// the deployer found an entry alarm in ALARM (within 30 s).
    async fn start_waiting(&self, execution_id: &ExecutionId) -> Result<(String, chrono::DateTime<chrono::Utc>)> {
        for _ in 0..300 {
            let state = self.store.load("web").await?.context("web has no state")?.value;
            let waiting = state.pending_start(execution_id).filter(|p| p.last_error.is_some());
            if let (Some(waiting), Some(run)) = (waiting, state.execution(execution_id)) {
                let said = waiting.last_error.as_deref().unwrap_or_default();
                if !said.contains(&format!("alarm {PROD_5XX} to leave ALARM")) || waiting.attempts > 0 {
                    anyhow::bail!("the start did not wait for the entry alarm: {said} ({} attempts)", waiting.attempts);
                }
                let waits = sluice::present::timeline::waits_for_in(run, &state, chrono::Utc::now());
                return Ok((waits, waiting.not_before.unwrap_or_else(chrono::Utc::now)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the deployer never tried to start production")
    }

    /// The commit status GitHub shows of a run held by the freeze, once the notifier reported it (within 30 s).
    async fn frozen_on_github(&self, commit: &str) -> Result<String> {
        for _ in 0..300 {
            let statuses = self.functions.github.commit_statuses(commit);
            let said = statuses.last().and_then(|s| s["description"].as_str().map(str::to_owned));
            if let Some(said) = said.filter(|said| said.contains("deployments frozen")) {
                return Ok(said);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let told = self.functions.github.commit_statuses(commit);
        anyhow::bail!("GitHub was not told the run waits for the freeze: {told:?}")
    }

    /// Staging's rolling update, the smoke stage's check (the hooks function), then the e2e test stage: CodeBuild
    /// (sandbox) runs the test project on the commit, whose report build-events reads; then production's rolling
    /// update, or the run's end at e2e.
    async fn verify(&self, execution_id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
        println!(
            "\nSoaked, the release goes on: the hooks function runs the smoke stage's check; the e2e stage starts"
        );
        println!("CodeBuild project {E2E_PROJECT} on the commit, told the release and");
        println!("staging, and build-events reads the build's test report (BatchGetBuilds, BatchGetReports,");
        println!("DescribeTestCases):");
        let run = wait_until_finished(&self.store, execution_id).await?;
        let smoke = sluice::pipeline::Stage::new("smoke").context("a stage name")?;
        let checked = run.record(smoke).and_then(|record| record.test.as_ref()).context("the run skipped smoke")?;
        println!("  smoke          {}", sluice::present::text::test_verdict(checked));
        let e2e = sluice::pipeline::Stage::new("e2e").context("a stage name")?;
        let test = run.record(e2e).and_then(|record| record.test.as_ref()).context("the run did not test at e2e")?;
        println!("  e2e            {}", sluice::present::text::test_verdict(test));
        for failed in test.results.iter().flat_map(|results| &results.failures) {
            println!("    FAILED {}: {}", failed.name, failed.message.as_deref().unwrap_or("-"));
        }
        let started = self.sandboxes.codebuild.builds();
        let tested = started.iter().find(|build| build["projectName"] == E2E_PROJECT).context("no e2e build")?;
        let told: Vec<String> = tested["environment"]["environmentVariables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|variable| Some(format!("{}={}", variable["name"].as_str()?, variable["value"].as_str()?)))
            .filter(|variable| variable.starts_with("SLUICE_"))
            .collect();
        println!("  the test build was told: {}", told.join(" "));
        Ok(run)
    }

    /// Production's ECS canary whose check of the test listener fails: ECS rolls it back before any pause, and the
    /// run ends rolled back in production.
    async fn deploy_failing_canary(&self, execution_id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
        println!(
            "\nThe deployer updates production's ECS service with a CANARY deployment; ECS calls the hooks function"
        );
        println!("after the test traffic shift, whose check of the replacement fails, and ECS rolls back:");
        let run = wait_until_finished(&self.store, execution_id).await?;
        let deploy = run.deploy().context("the run has no deploy facts")?;
        for hook in &deploy.hooks {
            let verdict = if hook.passed { "passed" } else { "FAILED" };
            println!("  {:<24} checks {verdict}: {}", hook.lifecycle_event, hook.detail.as_deref().unwrap_or("-"));
        }
        println!("  production listener now routes to {}", self.sample.production.routed());
        Ok(run)
    }

    /// Each stage of a run in stages: what it deployed, and the image its task definition runs, as ECS has it.
    async fn stages(&self, run: &sluice::pipeline::Execution) -> Result<Vec<(String, Option<String>)>> {
        let ecs = aws_sdk_ecs::Client::new(&self.aws);
        println!("\nThe run's stages, and the image each deployed (its task definition, as ECS describes it):");
        let mut images = Vec::new();
        for record in &run.stages {
            if let Some(test) = &record.test {
                println!("  {:<11} test: {}", record.name, sluice::present::text::test_verdict(test));
                continue;
            }
            let Some(deploy) = &record.deploy else {
                let decided = record.approval.as_ref().and_then(|a| a.decision.map(|d| d.name())).unwrap_or("-");
                println!("  {:<11} approval: {decided}", record.name);
                continue;
            };
            let task_definition = deploy.task_definition.clone().unwrap_or_default();
            let described = ecs.describe_task_definition().task_definition(&task_definition).send().await?;
            let image = described
                .task_definition()
                .and_then(|td| td.container_definitions().first())
                .and_then(|container| container.image())
                .map(str::to_owned);
            println!("  {:<11} {} deployed {}", record.name, deploy.strategy, image.as_deref().unwrap_or("-"));
            if let Some(check) = &deploy.digest_check {
                println!("  {:<11} digest check: {}", "", check.summary());
            }
            images.push((record.name.to_string(), image));
        }
        Ok(images)
    }

    /// An ECS canary: the pause after its canary step mailed, decided on the page, and the run ended on ECS's word.
    async fn deploy_canary(
        &self,
        execution_id: &ExecutionId,
        clicks: &mut Vec<(u16, u16)>,
    ) -> Result<sluice::pipeline::Execution> {
        let (stack, store, manual, scenario) = (&self.stack, &self.store, self.manual, self.scenario);
        let (sample, execution_id) = (&self.sample, execution_id.clone());
        println!(
            "\nThe deployer updates the ECS service with a CANARY deployment; ECS calls the hooks function after the"
        );
        println!("test traffic shift, moves 20 % of production, and pauses before the rest (a PAUSE hook):");
        let (subject, text) = wait_for_nth_email(&stack.approval_topic, 1).await?;
        wait_until_sent(store, &execution_id, 2).await?;
        println!("  ECS Hook State Change → deploy-events → approval-requests mailed the approvers again:");
        println!("  Subject: {subject}");
        for line in text.lines() {
            println!("  | {line}");
        }
        println!("  production listener meanwhile: {}", sample.production.split());
        let link = approval_link(&text).context("no review link in the pause's email")?;
        let (decision, comment) = match scenario {
            DemoScenario::CanaryReject => ("reject", "p99 latency doubled on the canary"),
            _ => ("approve", "canary looks healthy"),
        };
        if manual {
            // The sandbox's clock is compressed: ECS's 24 hours pass in about 7 minutes.
            println!("\nOpen this link in a browser and decide within 7 minutes (ECS then rolls back):\n  {link}");
            let deadline = std::time::Instant::now() + Duration::from_secs(480);
            loop {
                let run = store.execution(&execution_id).await?.context("the run is not recorded")?;
                let decided = run
                    .deploy()
                    .into_iter()
                    .flat_map(|d| d.pauses.last())
                    .any(|p| p.approval.as_ref().is_some_and(|a| a.decision.is_some()));
                if decided || run.status.is_finished() || std::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        } else {
            println!(
                "A person opens it and presses {} (POST from the page):",
                if decision == "reject" { "Reject" } else { "Approve" }
            );
            clicks.push(decide_on_page(&link, decision, comment).await?);
        }
        println!("\nThe deployer calls ContinueServiceDeployment; deploy-events ends the run on ECS's word:");
        let run = wait_until_finished(store, &execution_id).await?;
        let deploy = run.deploy().context("the run has no deploy facts")?;
        println!("  service deployment {} ({})", deploy.service_deployment.as_deref().unwrap_or("-"), deploy.strategy);
        for hook in &deploy.hooks {
            let verdict = if hook.passed { "passed" } else { "FAILED" };
            println!("  {:<24} checks {verdict}: {}", hook.lifecycle_event, hook.detail.as_deref().unwrap_or("-"));
        }
        for pause in &deploy.pauses {
            let who = match pause.approval.as_ref() {
                Some(approval) => match (approval.decision, approval.approver.as_deref()) {
                    (Some(decision), Some(approver)) => format!("{} by {approver}", decision.name()),
                    _ => "no decision".to_owned(),
                },
                None => "continued by sluice (no production traffic had moved)".to_owned(),
            };
            let moved = sluice::present::text::percent(pause.shifted_tenths);
            println!("  paused at {} with {moved} of production moved: {who}", pause.stage);
        }
        println!("  production listener now routes to {}", sample.production.routed());
        Ok(run)
    }

    /// An ECS rolling update: registered, rolled out, its AfterRollout checks run, and the run ended.
    async fn deploy_rolling(&self, execution_id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
        let (store, aws, execution_id) = (&self.store, &self.aws, execution_id.clone());
        println!(
            "\nThe deployer registers the task definition and updates the ECS service; once ECS reports the rollout"
        );
        println!(
            "completed, deploy-events checks what its tasks run (ListTasks, DescribeTasks), the hooks function runs"
        );
        println!("the AfterRollout checks, and the run ends:");
        let run = wait_until_finished(store, &execution_id).await?;
        let deploy = run.deploy().context("the run has no deploy facts")?;
        println!("  deployment     {} ({})", deploy.deployment_id.as_deref().unwrap_or("-"), deploy.strategy);
        println!("  rolled out     {}", deploy.task_definition.as_deref().unwrap_or("-"));
        if let Some(check) = &deploy.digest_check {
            println!("  digest check   {}", check.summary());
        }
        for hook in &deploy.hooks {
            println!(
                "  {:<14} checks {} in {} ms: {}",
                hook.lifecycle_event,
                if hook.passed { "passed" } else { "FAILED" },
                hook.millis.unwrap_or_default(),
                hook.detail.as_deref().unwrap_or("-")
            );
        }
        let ecs_client = aws_sdk_ecs::Client::new(aws);
        let described = ecs_client.describe_services().cluster("prod").services("web").send().await?;
        let service = described.services().first().context("ECS lists no service web")?;
        println!("  the service now runs {}", service.task_definition().unwrap_or("-"));
        Ok(run)
    }

    /// A CodeDeploy blue/green deployment: its hooks answered by the hooks function, and the run ended on
    /// CodeDeploy's word.
    async fn deploy_blue_green(&self, execution_id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
        let (store, codedeploy, sample) = (&self.store, &self.sandboxes.codedeploy, &self.sample);
        let execution_id = execution_id.clone();
        println!(
            "\nThe deployer registers the task definition and starts the blue/green deployment; CodeDeploy calls the"
        );
        println!("hooks function at each checked hook; deploy-events ends the run on CodeDeploy's word:");
        let run = wait_until_finished(store, &execution_id).await?;
        let deploy = run.deploy().context("the run has no deploy facts")?;
        let deployment_id = deploy.deployment_id.clone().unwrap_or_default();
        println!("  deployment     {deployment_id} ({})", deploy.strategy);
        for (event, status) in codedeploy.lifecycle(&deployment_id) {
            let hook = deploy.hooks.iter().find(|hook| hook.lifecycle_event == event);
            match hook {
                Some(hook) => println!(
                    "  {event:<22} {status:<10} checks {} in {} ms: {}",
                    if hook.passed { "passed" } else { "FAILED" },
                    hook.millis.unwrap_or_default(),
                    hook.detail.as_deref().unwrap_or("-")
                ),
                None => println!("  {event:<22} {status}"),
            }
        }
        let traffic: Vec<String> = codedeploy.traffic(&deployment_id).iter().map(|p| format!("{p}%")).collect();
        println!(
            "  traffic on green after each shift: {}",
            if traffic.is_empty() { "-".into() } else { traffic.join(" → ") }
        );
        println!("  production listener now routes to {}", sample.production.routed());
        Ok(run)
    }

    /// How the run ended, as the notifier, the history, the status page and GitHub tell it, and what it cost.
    async fn report(self, run: sluice::pipeline::Execution, clicks: Vec<(u16, u16)>) -> Result<DemoOutcome> {
        let (store, aws, outcomes, sample, scenario) =
            (&self.store, &self.aws, &self.outcomes, &self.sample, self.scenario);
        let (invocations, meter) = (&self.invocations, &self.meter);
        let (approval_url, github) = (&self.functions.approval, &self.functions.github);
        let name = scenario.name();
        let took = run.finished_at.map(|end| (end - run.created_at).num_milliseconds()).unwrap_or_default();
        println!(
            "  the run ended {} after {took} ms{}",
            run.status,
            run.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        );
        let (subject, text) = wait_for_email(outcomes).await?;
        println!("\nThe notifier told the pipeline's topic how the run ended (SNS, as moto recorded it):");
        println!("  Subject: {subject}");
        for line in text.lines() {
            println!("  | {line}");
        }
        let expected = scenario.expected();

        let staged = scenario.promote() || scenario.verify() || scenario.soaks_in_staging();
        let stage_images = if staged { self.stages(&run).await? } else { Vec::new() };

        println!("\nWhat `sluice history web` prints (DynamoDB, index `history`):");
        for execution in store.history("web", 10).await? {
            for line in sluice::present::timeline::history_lines(&execution) {
                println!("  {line}");
            }
        }
        println!("\nWhat `sluice show-run {}` prints (the run's record in DynamoDB):", run.id);
        for line in sluice::present::timeline::lines(&run) {
            println!("  {line}");
        }

        let ecs_client = aws_sdk_ecs::Client::new(aws);
        let described = ecs_client.describe_services().cluster("prod").services("web").send().await?;
        let service_task_definition = described.services().first().and_then(|s| s.task_definition()).map(str::to_owned);
        let staging = ecs_client.describe_services().cluster("staging").services("web").send().await?;
        let staging_task_definition = staging.services().first().and_then(|s| s.task_definition()).map(str::to_owned);
        let cost = Cost { invocations: invocations.read(), usage: meter.take().usage };
        let published = meter.published();
        let status_page = format!("{}status/{STATUS_KEY}", approval_url.url);
        let (code, _, page) = crate::request("GET", &status_page, &[], vec![]).await?;
        if code != 200 || !page.contains(&format!("run/{}/", run.id)) {
            anyhow::bail!("the status page answered {code} without the run: {page}");
        }
        println!("\nThe status page (the approval function; `sluice page` prints its address) answered {code}:");
        println!("  {status_page}");
        let (commit_statuses, deployment_states) = shown_on_github(github, &run).await?;
        println!("\nWhat the notifier told GitHub (the sandbox's stand-in for its REST API, API version 2022-11-28):");
        for (state, description) in &commit_statuses {
            println!("  commit status sluice/web  {state:<8} {description}");
        }
        for (environment, states) in &deployment_states {
            println!("  deployment to {environment:<11} {}", states.join(" → "));
        }
        summary(scenario, &run, &cost);
        println!("\nThe events each function put on the bus (seen by the meter; the README's map lists them):");
        for (function, kinds) in &published {
            println!("  {function:<26} {}", kinds.iter().cloned().collect::<Vec<_>>().join(", "));
        }
        crate::map::holds_to_published(&published)?;
        if run.status == expected {
            println!(
                "\nDone ({name}: {expected}, as the scenario says). Everything ran on loopback; moto_server and the"
            );
            println!("sandbox stop with this program.");
        }
        Ok(DemoOutcome {
            run,
            notification: (subject, text),
            production: sample.production.routed().to_owned(),
            service_task_definition,
            clicks,
            cost,
            commit_statuses,
            published,
            deployment_states,
            stage_images,
            staging_task_definition,
        })
    }
}

/// The pipelines, as `sluice publish infra/pipelines.example.toml` publishes them, changed for the scenario and the
/// demo's own names; the pipeline's notify topic.
async fn publish_definitions(
    stack: &Stack,
    store: &DynamoDbStore,
    sample: &SampleApp,
    scenario: DemoScenario,
) -> Result<String> {
    // Pipelines, as `sluice publish infra/pipelines.example.toml` publishes them.
    // Names of this run's own (tests run demos side by side on one moto_server).
    let outcomes = stack.sns.create_topic().name(crate::unique("web-deploys")).send().await?;
    let outcomes = outcomes.topic_arn().context("moto returned no topic ARN")?.to_owned();
    let text = std::fs::read_to_string(workspace_root().join("infra/pipelines.example.toml"))?
        .replace("arn:aws:sns:eu-west-1:123456789012:web-approvals", &stack.approval_topic)
        .replace("arn:aws:sns:eu-west-1:123456789012:web-deploys", &outcomes)
        .replace("http://web-test.internal:8080", &sample.test.url)
        // The demo's clock is compressed: a check retried 5 s later is retried 1 s later.
        .replace("interval = \"5s\"", "interval = \"1s\"");
    let text = match scenario {
        _ if scenario.rolling() => rolling_web(&text, &sample.production.url)?,
        _ if scenario.canary() => canary_web(&text, &sample.test.url)?,
        _ if scenario.promote() => promote_web(&text, &sample.production.url, &sample.test.url)?,
        _ if scenario.verify() => verify_web(&text, &sample.production.url)?,
        DemoScenario::SoakAlarm => soak_alarm_web(&text)?,
        DemoScenario::Freeze => freeze_web(&text, &sample.production.url)?,
        DemoScenario::EntryAlarm => entry_alarm_web(&text, &sample.production.url)?,
        DemoScenario::TwoApprovers => two_approvers_web(stack, &text).await?,
        _ => text,
    };
    // web's runs are shown on GitHub (the sandbox's stand-in for its REST API).
    let text = text.replacen(
        "[pipelines.web.notify]",
        "[pipelines.web.github]\nenvironment = \"production\"\n\n[pipelines.web.notify]",
        1,
    );
    Definitions::check("infra/pipelines.example.toml", &text)?;
    let revision = store.publish(&text, None, chrono::Utc::now()).await?;
    let how = match scenario {
        _ if scenario.rolling() => ", web deployed by an ECS rolling update",
        _ if scenario.canary() => {
            ", web deployed by an ECS canary (20 %) that pauses for approval after its canary step"
        }
        _ if scenario.promote() => {
            ", web in stages: staging (rolling update), sign-off (approval), production (ECS canary, 20 %, that \
             pauses for approval)"
        }
        _ if scenario.verify() => {
            ", web in stages: staging (rolling update, a 2 s soak watched by alarm web-staging-5xx), smoke (a \
             check), e2e (CodeBuild test project web-e2e-build), production (rolling update)"
        }
        DemoScenario::SoakAlarm => {
            ", web in stages: staging (rolling update, a 10 min soak watched by alarms web-staging-5xx and \
             web-staging-latency), production (rolling update)"
        }
        DemoScenario::Freeze => ", web in stages: staging (rolling update, a 2 s soak), production (rolling update)",
        DemoScenario::TwoApprovers => {
            ", web's approval by 2 of alice@example.com, bob@example.com and octocat@github.com (not the pusher), each \
             subscribed to its own topic with their filter policy"
        }
        DemoScenario::EntryAlarm => {
            ", web in stages: staging (rolling update, a 2 s soak), production (rolling update, kept out while alarm \
             web-prod-5xx is in ALARM)"
        }
        _ => "",
    };
    println!("  definitions    infra/pipelines.example.toml{how}, revision {revision}");
    Ok(outcomes)
}

impl Sandboxes {
    /// CodeBuild writing artifacts to S3 and events to the default bus; CodeDeploy and ECS playing the deployment
    /// group and the service, rerouting the sample app's listeners as the deployment goes.
    async fn start(stack: &Stack, sample: &Arc<SampleApp>, scenario: DemoScenario) -> Result<Self> {
        // The CodeBuild sandbox, writing artifacts to S3 and events to the default bus.
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&stack.config).force_path_style(true).build(),
        );
        let bucket = crate::unique("sluice-demo-artifacts").to_lowercase();
        s3.create_bucket().bucket(&bucket).send().await?;
        let sandbox = CodeBuildSandbox::start(Outputs {
            s3: s3.clone(),
            ecr: aws_sdk_ecr::Client::new(&stack.config),
            bucket: bucket.clone(),
            eventbridge: stack.eventbridge.clone(),
            bus: stack.default_bus.clone(),
            duration: Duration::from_millis(800),
        })
        .await?;
        sandbox.project("web-build", Scenario::Succeed);
        sandbox.project("api-build", Scenario::Succeed);
        let failing = scenario == DemoScenario::VerifyFail;
        sandbox.project(E2E_PROJECT, Scenario::Tests { cases: e2e_cases(failing), fails: false });
        // CodeDeploy and ECS: the sandbox plays the deployment group and the service, and reroutes the sample app's
        // listeners as the deployment goes.
        let codedeploy = CodeDeploySandbox::start(Settings {
            eventbridge: stack.eventbridge.clone(),
            bus: stack.default_bus.clone(),
            minute: Duration::from_millis(50),
            hook_timeout: Duration::from_secs(60),
            app: Some(Arc::clone(sample)),
        })
        .await?;
        codedeploy.deployment_group("web", "web-prod");
        let ecs = EcsSandbox::start(Events {
            eventbridge: stack.eventbridge.clone(),
            bus: stack.default_bus.clone(),
            duration: Duration::from_millis(300),
        })
        .await?;
        let rollout = if scenario == DemoScenario::CircuitBreaker { Rollout::TasksFail } else { Rollout::Healthy };
        ecs.registered(RUNNING_TASK_DEFINITION, running_release()?);
        ecs.service("prod", "web", RUNNING_TASK_DEFINITION, rollout);
        ecs.service("staging", "web", RUNNING_TASK_DEFINITION, rollout);
        if scenario == DemoScenario::DigestMismatch {
            // The tag the task definition names moved: prod/web's tasks run another image than the one built.
            ecs.runs_digest("prod", "web", MOVED_DIGEST);
        }
        // Once CodeDeploy moved prod/web to the replacement task set, its tasks run that task definition.
        codedeploy.on_replaced("web-prod", ecs.replacer("prod", "web"));
        Ok(Self { codebuild: sandbox, codedeploy, ecs, rollout })
    }

    fn show(&self, sample: &SampleApp, scenario: DemoScenario) {
        let (sandbox, codedeploy, ecs, rollout) = (&self.codebuild, &self.codedeploy, &self.ecs, self.rollout);
        println!("  CodeBuild      sandbox at {}", sandbox.endpoint);
        println!("  CodeDeploy     sandbox at {} (application web, group web-prod)", codedeploy.endpoint);
        println!(
            "  ECS            sandbox at {} (cluster prod, service web; new tasks {})",
            ecs.endpoint,
            if rollout == Rollout::TasksFail { "fail to start" } else { "start healthy" }
        );
        println!(
            "  sample app     production listener {} · test listener {} (green {})",
            sample.production.url,
            sample.test.url,
            if scenario.healthy() { "healthy" } else { "unhealthy" }
        );
    }
}

impl Functions {
    /// sluice's functions, each wired by its own `from_aws` as its main.rs wires it: the function URLs on loopback,
    /// the rest fed by the rules template.yaml routes to them, the hooks function invoked by CodeDeploy and ECS.
    async fn start(
        stack: &Stack,
        aws: &aws_config::SdkConfig,
        sample: &Arc<SampleApp>,
        sandboxes: &Sandboxes,
        invocations: &Invocations,
        outcomes: &str,
    ) -> Result<Self> {
        let (url, common) = serve_webhook(stack, aws, invocations).await?;
        let on_build = build_events(aws, &common, invocations)?;
        let (approval_url, on_approval_requested, status_secret) = serve_approval(stack, aws, invocations).await?;
        let [on_deploy, on_checks, on_deployment_event] = deploy_stage(aws, &common, sample, sandboxes, invocations)?;
        let (github, on_progress) = notifier(stack, aws, invocations, &status_secret, &approval_url.url).await?;
        println!("  webhook        {} (function URL on loopback)", url.url);
        // Every rule of template.yaml feeds the function its target names, as the stack wires them.
        let _pumps = stack.wire(vec![
            ("BuildEventsFunction", on_build),
            ("ApprovalRequestsFunction", on_approval_requested),
            ("DeployerFunction", on_deploy),
            ("HooksFunction", on_checks),
            ("DeployEventsFunction", on_deployment_event),
            ("NotifierFunction", on_progress),
        ])?;
        let fed = |function: &str| stack.rules_to(function).join(", ");
        println!("  build-events   fed by {}", fed("BuildEventsFunction"));
        println!("  approval       {} (function URL on loopback)", approval_url.url);
        println!(
            "                 its requests mailed by approval-requests, fed by {}",
            fed("ApprovalRequestsFunction")
        );
        println!("  deployer       fed by {}", fed("DeployerFunction"));
        println!(
            "  hooks          {HOOKS}, invoked by CodeDeploy and ECS at each checked lifecycle hook or stage, and"
        );
        println!("                 fed by {}", fed("HooksFunction"));
        println!("  deploy-events  fed by {}", fed("DeployEventsFunction"));
        println!("  notifier       fed by {}, tells {outcomes}\n", fed("NotifierFunction"));
        Ok(Self { webhook: url, approval: approval_url, github, common, _pumps })
    }
}

/// How long the demo's approval requests wait for ECS and S3 (on AWS, `COMPARISON_BUDGET`).
const BUSY_MACHINE_BUDGET: Duration = Duration::from_secs(60);

/// The task definition web runs before the demo deploys: the release before, as ECS describes it.
const RUNNING_TASK_DEFINITION: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0";

/// What web ran before: the sample app's task definition with the image of an earlier build, and a variable the new
/// release no longer sets (so the approval email has a difference to show).
fn running_release() -> Result<serde_json::Value> {
    let mut definition: serde_json::Value = serde_json::from_str(include_str!("../../infra/sample-app/taskdef.json"))?;
    let container = &mut definition["containerDefinitions"][0];
    container["image"] =
        serde_json::json!(format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/sample-app@sha256:{}", "0".repeat(64)));
    container["environment"] = serde_json::json!([{ "name": "LEGACY_MODE", "value": "on" }]);
    Ok(definition)
}

/// The SDK configuration a function of the stack is started with: `aws`, its clients naming the function (its
/// logical id) as their app in the User-Agent, so that the meter tells which function put which event on the bus.
fn as_function(aws: &aws_config::SdkConfig, function: &'static str) -> Result<aws_config::SdkConfig> {
    let name = aws_config::AppName::new(function).with_context(|| format!("{function} as an SDK app name"))?;
    Ok(aws.to_builder().app_name(name).build())
}

/// The webhook function on a function URL; the configuration every function shares.
async fn serve_webhook(
    stack: &Stack,
    aws: &aws_config::SdkConfig,
    invocations: &Invocations,
) -> Result<(FunctionUrl, sluice::runtime::config::Common)> {
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&stack.config);
    let secret_name = crate::unique("sluice/github-webhook");
    secrets_manager.create_secret().name(&secret_name).secret_string(SECRET).send().await?;
    let config = github_webhook::handler::Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_WEBHOOK_SECRET" => Some(secret_name.clone()),
        _ => None,
    })?;
    let webhook = Arc::new(
        github_webhook::handler::AwsApp::from_aws(&as_function(aws, "GitHubWebhookFunction")?, &config).await?,
    );
    let timer = invocations.clone();
    let url = serve("github-webhook", move |request| {
        let (app, timer) = (Arc::clone(&webhook), timer.clone());
        async move {
            timer.time("github-webhook", github_webhook::handler::respond(&app, request, chrono::Utc::now())).await
        }
    })
    .await?;
    Ok((url, config.common))
}

/// The build-events function, on CodeBuild's state changes.
fn build_events(
    aws: &aws_config::SdkConfig,
    common: &sluice::runtime::config::Common,
    invocations: &Invocations,
) -> Result<Handler> {
    let build_events =
        Arc::new(build_events::handler::AwsApp::from_aws(&as_function(aws, "BuildEventsFunction")?, common));
    let timer = invocations.clone();

    Ok((handler(move |event: serde_json::Value| {
        let (app, timer) = (Arc::clone(&build_events), timer.clone());
        async move {
            let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
            timer.time("build-events", build_events::handler::on_event(&app, event, chrono::Utc::now())).await
        }
    })) as _)
}

/// The approval function: its page on a function URL, and approval-requests, which sends the requests on `Approval
/// Requested`; the name of the status page's key's secret.
async fn serve_approval(
    stack: &Stack,
    aws: &aws_config::SdkConfig,
    invocations: &Invocations,
) -> Result<(FunctionUrl, Handler, String)> {
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&stack.config);
    let status_secret = crate::unique("sluice/status-key");
    secrets_manager.create_secret().name(&status_secret).secret_string(STATUS_KEY).send().await?;
    let approval_config = approval::handler::Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_STATUS_KEY" => Some(status_secret.clone()),
        _ => None,
    })?;
    let approval_app =
        Arc::new(approval::handler::AwsApp::from_aws(&as_function(aws, "ApprovalFunction")?, &approval_config));
    let (app, timer) = (Arc::clone(&approval_app), invocations.clone());
    let approval_url = serve("approval", move |request| {
        let (app, timer) = (Arc::clone(&app), timer.clone());
        async move { timer.time("approval", approval::handler::respond(&app, request, chrono::Utc::now())).await }
    })
    .await?;
    // On AWS a decision's next request links to the https URL it came through; here, to the loopback URL.
    let _ = approval_app.approval_url.set(approval_url.url.clone());
    // ApprovalRequestsFunction: the same binary, told the approval function's URL as the stack tells it.
    let requests_config =
        approval::handler::Config { approval_url: Some(approval_url.url.clone()), ..approval_config.clone() };
    let mut requests_app =
        approval::handler::AwsApp::from_aws(&as_function(aws, "ApprovalRequestsFunction")?, &requests_config);
    // Every test shares this machine's two cores, and every function's calls one connection to moto (the meter):
    // the request may wait longer for ECS and S3 than on AWS.
    requests_app.compare_budget = BUSY_MACHINE_BUDGET;
    let requests_app = Arc::new(requests_app);
    let (app, timer) = (Arc::clone(&requests_app), invocations.clone());
    let on_approval_requested = handler(move |event: Value| {
        let (app, timer) = (Arc::clone(&app), timer.clone());
        async move { timer.time("approval-requests", approval::handler::on_event(&app, &event, chrono::Utc::now())).await }
    });
    Ok((approval_url, on_approval_requested, status_secret))
}

/// The deploy stage: the deployer, the hooks function (invoked by CodeDeploy and ECS, and on `Checks Requested`) and
/// deploy-events; their handlers, in that order.
fn deploy_stage(
    aws: &aws_config::SdkConfig,
    common: &sluice::runtime::config::Common,
    sample: &Arc<SampleApp>,
    sandboxes: &Sandboxes,
    invocations: &Invocations,
) -> Result<[Handler; 3]> {
    let (codedeploy, ecs) = (&sandboxes.codedeploy, &sandboxes.ecs);
    // The deploy stage: the deployer on Deployment Requested, the hooks function invoked by CodeDeploy, and
    // deploy-events on CodeDeploy's state changes.
    let deployer_config = deployer::handler::Config {
        common: common.clone(),
        hooks_function: Some(HOOKS.into()),
        hook_role: Some(HOOK_ROLE.into()),
    };
    let deployer_app =
        Arc::new(deployer::handler::AwsApp::from_aws(&as_function(aws, "DeployerFunction")?, &deployer_config));
    let timer = invocations.clone();
    let on_deploy = handler(move |event: Value| {
        let (app, timer) = (Arc::clone(&deployer_app), timer.clone());
        async move { timer.time("deployer", deployer::handler::on_event(&app, &event, chrono::Utc::now())).await }
    });
    let hooks_app = Arc::new(hooks::handler::AwsApp::from_aws(&as_function(aws, "HooksFunction")?, common)?);
    // ECS invokes the hooks function at an ECS-native deployment's checked stages: its result is the answer.
    ecs.app(Arc::clone(sample));
    let (stages_app, timer) = (Arc::clone(&hooks_app), invocations.clone());
    ecs.function(HOOKS, move |payload| {
        let (app, timer) = (Arc::clone(&stages_app), timer.clone());
        async move {
            let remaining = Some(Duration::from_secs(300));
            let answer = hooks::handler::on_invocation(&app, &payload, remaining, chrono::Utc::now());
            timer.time("hooks", answer).await.unwrap_or(Value::Null)
        }
    });
    let (checks_app, timer) = (Arc::clone(&hooks_app), invocations.clone());
    let on_checks = handler(move |event: Value| {
        let (app, timer) = (Arc::clone(&checks_app), timer.clone());
        async move {
            let checks = hooks::handler::on_event(&app, &event, Some(Duration::from_secs(300)), chrono::Utc::now());
            timer.time("hooks", checks).await
        }
    });
    let timer = invocations.clone();
    codedeploy.function(HOOKS, move |payload| {
        let (app, timer) = (Arc::clone(&hooks_app), timer.clone());
        async move {
            let remaining = Some(Duration::from_secs(300));
            let answer = hooks::handler::on_event(&app, &payload, remaining, chrono::Utc::now());
            if let Err(error) = timer.time("hooks", answer).await {
                eprintln!("  hooks function failed: {error}");
            }
        }
    });
    let events_app =
        Arc::new(deploy_events::handler::AwsApp::from_aws(&as_function(aws, "DeployEventsFunction")?, common));
    let timer = invocations.clone();
    let on_deployment_event = handler(move |event: Value| {
        let (app, timer) = (Arc::clone(&events_app), timer.clone());
        async move { timer.time("deploy-events", deploy_events::handler::on_event(&app, &event, chrono::Utc::now())).await }
    });
    Ok([on_deploy, on_checks, on_deployment_event])
}

/// The notifier: the run's outcome to the pipeline's notify topic, and its progress to GitHub's stand-in.
async fn notifier(
    stack: &Stack,
    aws: &aws_config::SdkConfig,
    invocations: &Invocations,
    status_secret: &str,
    approval_url: &str,
) -> Result<(GitHub, Handler)> {
    let secrets_manager = aws_sdk_secretsmanager::Client::new(&stack.config);
    let github = sluice_sandbox::github::GitHub::start(GITHUB_TOKEN, &["acme/web"]).await?;
    let token_secret = crate::unique("sluice/github-token");
    secrets_manager.create_secret().name(&token_secret).secret_string(GITHUB_TOKEN).send().await?;
    let notifier_config = notifier::handler::Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_GITHUB_TOKEN" => Some(token_secret.clone()),
        "SLUICE_GITHUB_API" => Some(github.url.clone()),
        "SLUICE_STATUS_KEY" => Some(status_secret.to_owned()),
        "SLUICE_APPROVAL_URL" => Some(approval_url.to_owned()),
        _ => None,
    })?;
    let notifier_app =
        Arc::new(notifier::handler::AwsApp::from_aws(&as_function(aws, "NotifierFunction")?, &notifier_config));
    let timer = invocations.clone();
    let on_progress = handler(move |event: Value| {
        let (app, timer) = (Arc::clone(&notifier_app), timer.clone());
        async move { timer.time("notifier", notifier::handler::on_event(&app, &event, chrono::Utc::now())).await }
    });
    Ok((github, on_progress))
}

/// What GitHub was sent for `run`, once the report of its end arrived (the notifier sends it after the
/// notification): its commit statuses and its Deployment's states.
async fn shown_on_github(
    github: &sluice_sandbox::github::GitHub,
    run: &sluice::pipeline::Execution,
) -> Result<(Vec<(String, String)>, Vec<(String, Vec<String>)>)> {
    let last = if run.status == sluice::pipeline::Status::Succeeded { "success" } else { "failure" };
    for _ in 0..100 {
        let statuses: Vec<(String, String)> = github
            .commit_statuses(&run.source.commit)
            .iter()
            .map(|s| {
                (
                    s["state"].as_str().unwrap_or_default().to_owned(),
                    s["description"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if statuses.last().is_some_and(|(state, _)| state == last) {
            let states = github
                .deployments()
                .iter()
                .map(|d| {
                    let statuses = d["statuses"].as_array().cloned().unwrap_or_default();
                    let states = statuses.iter().filter_map(|s| s["state"].as_str().map(str::to_owned)).collect();
                    (d["environment"].as_str().unwrap_or_default().to_owned(), states)
                })
                .collect();
            return Ok((statuses, states));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("GitHub was not told that {} ended ({last}): {:?}", run.id, github.requests())
}

/// The summary table: each stage's start and time, the outcome, and what the run cost in AWS.
fn summary(scenario: DemoScenario, run: &sluice::pipeline::Execution, cost: &Cost) {
    let expected = scenario.expected();
    let verdict = if run.status == expected {
        "as the scenario says".to_owned()
    } else {
        format!("NOT as the scenario says ({expected})")
    };
    println!("\nSummary of the {} scenario: {}, {verdict}", scenario.name(), run.status);
    println!("  {:<10} {:>9} {:>9}", "stage", "started", "took");
    let report = sluice::pipeline::OutcomeReport::of(run);
    for stage in &report.stages {
        let took = stage.finished_at.map_or_else(|| "-".to_owned(), |end| span(end - stage.started_at));
        println!(
            "  {:<10} {:>9} {took:>9}",
            stage.stage.to_string(),
            format!("+{}", span(stage.started_at - run.created_at))
        );
    }
    let total = run.finished_at.map_or_else(|| "-".to_owned(), |end| span(end - run.created_at));
    println!("  {:<10} {:>9} {total:>9}  {}", "run", "", run.status);
    // Every publish is an email in the demo's model: one approver, one subscriber to the outcome.
    let emails = cost.usage.publishes;
    println!("\n  {:<12} {:<42} {:>12}", "AWS", "what this run used (measured)", "public price");
    let lines = cost.lines(emails);
    for (service, used, dollars) in &lines {
        println!("  {service:<12} {used:<42} {:>12}", format!("${dollars:.7}"));
    }
    let total: f64 = lines.iter().map(|(_, _, dollars)| dollars).sum();
    println!("  {:<12} {:<42} {:>12}", "total", "", format!("${total:.7}"));
    let functions: Vec<String> = cost.invocations.iter().map(|(name, (count, _))| format!("{name} {count}")).collect();
    println!("  invocations: {}", functions.join(", "));
}

/// What `make demo SCENARIO=...` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoScenario {
    /// Blue/green, every check passes: shipped.
    Success,
    /// Blue/green, the replacement's health check answers 503: CodeDeploy rolls back.
    Rollback,
    /// An ECS rolling update whose tasks start healthy: shipped.
    Rolling,
    /// An ECS rolling update whose tasks fail to start: the circuit breaker trips and ECS rolls back.
    CircuitBreaker,
    /// An ECS-native canary that pauses for approval after its canary step; approved from the page: shipped.
    Canary,
    /// The same canary, rejected from the page at the pause: ECS rolls it back.
    CanaryReject,
    /// A pipeline of stages: staging by a rolling update (with an AfterRollout check), a sign-off by email, then
    /// production by an ECS canary (approved at its pause), the same image in both: shipped.
    Promote,
    /// The same, but production's check of the test listener fails: ECS rolls production back, staging keeps the
    /// release, and the run ends rolled back naming production.
    PromoteFail,
    /// A pipeline verified between stages: staging by a rolling update, an e2e test stage (a CodeBuild project whose
    /// test report has passed and skipped cases), then production by a rolling update: shipped.
    Verify,
    /// The same, but the e2e report has 2 failed cases (the build itself succeeds): the run fails at e2e, production
    /// is untouched, and the notification names the two tests.
    VerifyFail,
    /// Staging (a rolling update) soaks watched by two alarms, one already in ALARM before the deployment (reported,
    /// not blocking); the other goes into ALARM during the soak: staging rolls back to its previous release and the
    /// run ends rolled back naming the alarm, production untouched.
    SoakAlarm,
    /// An ECS rolling update whose tasks run another image than the one built (the tag moved): deploy-events' digest
    /// check fails it, the deployer puts the service back on the task definition it ran before.
    DigestMismatch,
    /// Staging (a rolling update) soaks; an operator freezes the pipeline meanwhile: the run waits before production
    /// until unfrozen, then deploys there: shipped.
    Freeze,
    /// Staging (a rolling update) soaks; production's entry alarm is in ALARM: the run's start there waits (no
    /// function runs meanwhile) until the alarm is OK again and the reconciler's next look, then deploys: shipped.
    EntryAlarm,
    /// Blue/green after a sign-off by two of three named approvers, each mailed a link of their own: the pusher's
    /// own link refuses, alice and bob approve from their pages: shipped.
    TwoApprovers,
}

impl DemoScenario {
    pub fn from_env() -> Result<Self> {
        match std::env::var("SCENARIO").as_deref().unwrap_or("success") {
            "success" => Ok(Self::Success),
            "rollback" => Ok(Self::Rollback),
            "rolling" => Ok(Self::Rolling),
            "circuit-breaker" => Ok(Self::CircuitBreaker),
            "canary" => Ok(Self::Canary),
            "canary-reject" => Ok(Self::CanaryReject),
            "promote" => Ok(Self::Promote),
            "promote-fail" => Ok(Self::PromoteFail),
            "verify" => Ok(Self::Verify),
            "verify-fail" => Ok(Self::VerifyFail),
            "soak-alarm" => Ok(Self::SoakAlarm),
            "digest-mismatch" => Ok(Self::DigestMismatch),
            "freeze" => Ok(Self::Freeze),
            "entry-alarm" => Ok(Self::EntryAlarm),
            "two-approvers" => Ok(Self::TwoApprovers),
            other => anyhow::bail!(
                "unknown SCENARIO {other:?}: use success (the default), rollback, rolling, circuit-breaker, canary, \
                 canary-reject, promote, promote-fail, verify, verify-fail, soak-alarm, digest-mismatch, freeze, \
                 entry-alarm or two-approvers"
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Rollback => "rollback",
            Self::Rolling => "rolling",
            Self::CircuitBreaker => "circuit-breaker",
            Self::Canary => "canary",
            Self::CanaryReject => "canary-reject",
            Self::Promote => "promote",
            Self::PromoteFail => "promote-fail",
            Self::Verify => "verify",
            Self::VerifyFail => "verify-fail",
            Self::SoakAlarm => "soak-alarm",
            Self::DigestMismatch => "digest-mismatch",
            Self::Freeze => "freeze",
            Self::EntryAlarm => "entry-alarm",
            Self::TwoApprovers => "two-approvers",
        }
    }

    pub fn rolling(self) -> bool {
        matches!(self, Self::Rolling | Self::CircuitBreaker | Self::DigestMismatch)
    }

    /// An ECS-native canary, with an approval at a pause.
    pub fn canary(self) -> bool {
        matches!(self, Self::Canary | Self::CanaryReject)
    }

    /// A pipeline of stages: staging, sign-off, production.
    pub fn promote(self) -> bool {
        matches!(self, Self::Promote | Self::PromoteFail)
    }

    /// A pipeline verified between stages: staging, e2e, production.
    pub fn verify(self) -> bool {
        matches!(self, Self::Verify | Self::VerifyFail)
    }

    /// A pipeline of staging, soaking, then production.
    pub fn soaks_in_staging(self) -> bool {
        matches!(self, Self::SoakAlarm | Self::Freeze | Self::EntryAlarm)
    }

    /// Whether the replacement the deployment brings up is healthy.
    fn healthy(self) -> bool {
        !matches!(self, Self::Rollback | Self::PromoteFail)
    }

    /// How the run must end.
    pub fn expected(self) -> Status {
        match self {
            Self::Success
            | Self::Rolling
            | Self::Canary
            | Self::Promote
            | Self::Verify
            | Self::Freeze
            | Self::EntryAlarm
            | Self::TwoApprovers => Status::Succeeded,
            Self::Rollback
            | Self::CircuitBreaker
            | Self::CanaryReject
            | Self::PromoteFail
            | Self::SoakAlarm
            | Self::DigestMismatch => Status::RolledBack,
            Self::VerifyFail => Status::Failed,
        }
    }
}

/// The example definitions with web's approval by named approvers (two of alice, bob and octocat, who pushes the
/// demo's commit and may not approve it) on a topic of its own, each approver subscribed with their filter policy as
/// `sluice approvers sync` subscribes them.
async fn two_approvers_web(stack: &Stack, text: &str) -> Result<String> {
    let topic = stack.sns.create_topic().name(crate::unique("web-sign-off")).send().await?;
    let topic = topic.topic_arn().context("moto returned no topic ARN")?.to_owned();
    for email in ["alice@example.com", "bob@example.com", "octocat@github.com"] {
        let subscribe = stack.sns.subscribe().topic_arn(&topic).protocol("email").endpoint(email);
        let policy = sluice::usecases::filter_policy(email);
        subscribe.attributes("FilterPolicy", policy).return_subscription_arn(true).send().await?;
    }
    let approval = text.find("[pipelines.web.approval]").context("the example has no [pipelines.web.approval]")?;
    let end = text[approval..].find("\n\n").map(|i| approval + i).context("nothing follows it")?;
    let named = format!(
        "[pipelines.web.approval]\ntopic = \"{topic}\"\ntimeout = \"4h\"\n\
         approvers = [\"alice@example.com\", \"bob@example.com\", \"octocat@github.com\"]\nrequired = 2\n\
         forbid_pusher = true"
    );
    Ok(format!("{}{named}{}", &text[..approval], &text[end..]))
}

/// The example definitions with pipeline `web` deployed by an ECS rolling update of the same service (its
/// `[pipelines.web.deploy]` table and checks replaced, with a check of the service at `production` once rolled
/// out): the push the demo delivers is `acme/web`'s.
fn rolling_web(text: &str, production: &str) -> Result<String> {
    let start = text.find("[pipelines.web.deploy]").context("the example has no [pipelines.web.deploy]")?;
    let end = text[start..].find("\n# ").map(|i| start + i).context("nothing follows web's deploy table")?;
    let rolling = format!(
        "[pipelines.web.deploy]\nstrategy = \"rolling\"\ncluster = \"prod\"\nservice = \"web\"\n\
         minimum_healthy_percent = 100\nmaximum_percent = 200\n\
         circuit_breaker = {{ enable = true, rollback = true }}\n\n\
         [[pipelines.web.deploy.checks]]\nhook = \"AfterRollout\"\nurl = \"{production}/health\"\n\
         expect_body = \"ok\"\n"
    );
    Ok(format!("{}{rolling}{}", &text[..start], &text[end..]))
}

/// The example definitions with pipeline `web` deployed by an ECS-native canary of the same service: 20 % first,
/// a check of the test listener (`test`) after the test traffic shift, and an approval at the pause before the rest
/// of production traffic moves.
fn canary_web(text: &str, test: &str) -> Result<String> {
    let start = text.find("[pipelines.web.deploy]").context("the example has no [pipelines.web.deploy]")?;
    let end = text[start..].find("\n# ").map(|i| start + i).context("nothing follows web's deploy table")?;
    let canary = format!(
        "[pipelines.web.deploy]\nstrategy = \"ecs_canary\"\ncluster = \"prod\"\nservice = \"web\"\n\
         canary = {{ percent = 20, bake_time = \"1m\" }}\n\
         approval = {{ stage = \"PRE_PRODUCTION_TRAFFIC_SHIFT\", timeout = \"24h\" }}\n\n\
         [[pipelines.web.deploy.checks]]\nhook = \"POST_TEST_TRAFFIC_SHIFT\"\nurl = \"{test}/health\"\n\
         expect_body = \"ok\"\n"
    );
    Ok(format!("{}{canary}{}", &text[..start], &text[end..]))
}

/// The example definitions with pipeline `web` in stages (its `[pipelines.web.approval]` and `[pipelines.web.deploy]`
/// tables replaced): `staging`, a rolling update checked at `production` once rolled out (the sample app's one
/// production listener stands for staging's); `sign-off`, the approval by web's topic; `production`, an ECS canary
/// checked on the test listener (`test`) that pauses for approval before the rest of production traffic moves.
fn promote_web(text: &str, production: &str, test: &str) -> Result<String> {
    let approval = text.find("[pipelines.web.approval]").context("the example has no [pipelines.web.approval]")?;
    let topic = text[approval..].lines().find_map(|line| line.strip_prefix("topic = ")).context("no approval topic")?;
    let topic = topic.split('#').next().unwrap_or_default().trim().to_owned();
    let approval_end = text[approval..].find("\n\n").map(|i| approval + i + 2).context("nothing follows it")?;
    let text = format!("{}{}", &text[..approval], &text[approval_end..]);
    let start = text.find("[pipelines.web.deploy]").context("the example has no [pipelines.web.deploy]")?;
    let end = text[start..].find("\n# ").map(|i| start + i).context("nothing follows web's deploy table")?;
    let stages = format!(
        "[[pipelines.web.stages]]\nname = \"staging\"\n\
         soak = \"2s\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"staging\", service = \"web\", checks = [\
         {{ hook = \"AfterRollout\", url = \"{production}/health\", expect_body = \"ok\" }}] }}\n\n\
         [[pipelines.web.stages]]\nname = \"sign-off\"\napproval = {{ topic = {topic}, timeout = \"2d\" }}\n\n\
         [[pipelines.web.stages]]\nname = \"production\"\n\
         deploy = {{ strategy = \"ecs_canary\", cluster = \"prod\", service = \"web\", \
         canary = {{ percent = 20, bake_time = \"1m\" }}, \
         approval = {{ stage = \"PRE_PRODUCTION_TRAFFIC_SHIFT\", timeout = \"24h\" }}, checks = [\
         {{ hook = \"POST_TEST_TRAFFIC_SHIFT\", url = \"{test}/health\", expect_body = \"ok\" }}] }}\n"
    );
    Ok(format!("{}{stages}{}", &text[..start], &text[end..]))
}

/// The test project of the verify scenarios (its name matches the stack's BuildProjects pattern, `*-build*`).
const E2E_PROJECT: &str = "web-e2e-build";

/// The e2e report's cases: 12 passed and one skipped, and with `failing`, two that failed.
fn e2e_cases(failing: bool) -> Vec<TestCase> {
    let mut cases: Vec<TestCase> =
        (1..=12).map(|k| TestCase::new("CheckoutTest", &format!("case_{k:02}"), "SUCCEEDED", None)).collect();
    cases.push(TestCase::new("SearchTest", "finds_by_sku", "SKIPPED", Some("index not seeded")));
    if failing {
        cases.push(TestCase::new("CheckoutTest", "pays_with_card", "FAILED", Some("expected 200, got 502")));
        cases.push(TestCase::new("LoginTest", "rejects_bad_password", "FAILED", Some("expected 401, got 200")));
    }
    cases
}

/// The example definitions with pipeline `web` in stages verified between them (its `[pipelines.web.approval]` and
/// `[pipelines.web.deploy]` tables replaced): `staging`, a rolling update; `smoke`, a test stage of one check of
/// `production` (the sample app's one production listener stands for staging's); `e2e`, the test project;
/// `production`, a rolling update of prod/web checked once rolled out.
fn verify_web(text: &str, production: &str) -> Result<String> {
    let check = format!("{{ hook = \"AfterRollout\", url = \"{production}/health\", expect_body = \"ok\" }}");
    let stages = format!(
        "[[pipelines.web.stages]]\nname = \"staging\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"staging\", service = \"web\" }}\n\
         soak = \"2s\"\nsoak_alarms = [\"{STAGING_5XX}\"]\n\n\
         [[pipelines.web.stages]]\nname = \"smoke\"\n\
         test = {{ checks = [{{ url = \"{production}/health\", expect_body = \"ok\", retries = 2, interval = \"1s\" }}] }}\n\n\
         [[pipelines.web.stages]]\nname = \"e2e\"\n\
         test = {{ codebuild = \"{E2E_PROJECT}\", timeout = \"30m\", on_failure = \"fail\" }}\n\n\
         [[pipelines.web.stages]]\nname = \"production\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"web\", checks = [{check}] }}\n"
    );
    web_in_stages(text, &stages)
}

/// What prod/web's tasks run in the digest-mismatch scenario.
const MOVED_DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// The example definitions with pipeline `web`'s `[pipelines.web.approval]` and `[pipelines.web.deploy]` tables
/// replaced by `stages`.
fn web_in_stages(text: &str, stages: &str) -> Result<String> {
    let approval = text.find("[pipelines.web.approval]").context("the example has no [pipelines.web.approval]")?;
    let approval_end = text[approval..].find("\n\n").map(|i| approval + i + 2).context("nothing follows it")?;
    let text = format!("{}{}", &text[..approval], &text[approval_end..]);
    let start = text.find("[pipelines.web.deploy]").context("the example has no [pipelines.web.deploy]")?;
    let end = text[start..].find("\n# ").map(|i| start + i).context("nothing follows web's deploy table")?;
    Ok(format!("{}{stages}{}", &text[..start], &text[end..]))
}

/// The alarms that watch staging's soak in the verify and soak-alarm scenarios (they match the stack's SoakAlarms
/// pattern, `web-*`).
const STAGING_5XX: &str = "web-staging-5xx";
const STAGING_LATENCY: &str = "web-staging-latency";

/// Who freezes web in the freeze scenario (`sluice freeze` names the caller's AWS identity), and why.
const OPERATOR: &str = "arn:aws:iam::123456789012:user/carol";
const FREEZE_REASON: &str = "incident 4312: checkout errors";

/// The example definitions with pipeline `web` in two stages (its `[pipelines.web.approval]` and
/// `[pipelines.web.deploy]` tables replaced): `staging`, a rolling update that soaks 10 minutes watched by two
/// alarms; `production`, a rolling update.
fn soak_alarm_web(text: &str) -> Result<String> {
    let stages = format!(
        "[[pipelines.web.stages]]\nname = \"staging\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"staging\", service = \"web\" }}\n\
         soak = \"10m\"\nsoak_alarms = [\"{STAGING_5XX}\", \"{STAGING_LATENCY}\"]\n\n\
         [[pipelines.web.stages]]\nname = \"production\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"web\" }}\n"
    );
    web_in_stages(text, &stages)
}

/// The example definitions with pipeline `web` in two stages: `staging`, a rolling update that soaks 2 s;
/// `production`, a rolling update of prod/web checked at `production` once rolled out.
fn freeze_web(text: &str, production: &str) -> Result<String> {
    let check = format!("{{ hook = \"AfterRollout\", url = \"{production}/health\", expect_body = \"ok\" }}");
    let stages = format!(
        "[[pipelines.web.stages]]\nname = \"staging\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"staging\", service = \"web\" }}\nsoak = \"2s\"\n\n\
         [[pipelines.web.stages]]\nname = \"production\"\n\
         deploy = {{ strategy = \"rolling\", cluster = \"prod\", service = \"web\", checks = [{check}] }}\n"
    );
    web_in_stages(text, &stages)
}

/// Production's entry alarm in the entry-alarm scenario (it matches the stack's EntryAlarms pattern, `web-*`).
const PROD_5XX: &str = "web-prod-5xx";

/// As [`freeze_web`], production kept out while alarm [`PROD_5XX`] is in ALARM (for at most half an hour).
fn entry_alarm_web(text: &str, production: &str) -> Result<String> {
    let gated = format!("name = \"production\"\nentry_alarms = [\"{PROD_5XX}\"]\nentry_timeout = \"30m\"\n");
    Ok(freeze_web(text, production)?.replacen("name = \"production\"\n", &gated, 1))
}

/// Decides through the review page at `link`, as a person does: opens it, names themselves, comments, presses the
/// button (`approve` or `reject`), then presses it again. Prints, and returns, what each POST answered.
async fn decide_on_page(link: &str, decision: &str, comment: &str) -> Result<(u16, u16)> {
    let (_, _, page) = request("GET", link, &[("user-agent", "Mozilla/5.0 (demo)")], vec![]).await?;
    println!("  the page asks: {}", heading(&page));
    let token = form_token(&page).context("no form on the review page")?;
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("form_token", &token)
        .append_pair("approver", "alice@example.com")
        .append_pair("comment", comment)
        .append_pair("decision", decision)
        .finish();
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("user-agent", "Mozilla/5.0 (demo)")];
    let (first, _, page) = request("POST", link, &headers, form.clone().into_bytes()).await?;
    println!("  POST {decision}: {first} {}", heading(&page));
    let (again, _, page) = request("POST", link, &headers, form.into_bytes()).await?;
    println!("  POST again:   {again} {}", heading(&page));
    Ok((first, again))
}

/// The first email SNS recorded on `topic`: subject and text.
async fn wait_for_email(topic: &str) -> Result<(String, String)> {
    wait_for_nth_email(topic, 0).await
}

/// The `n`th email (from 0) SNS recorded on `topic`: subject and text.
async fn wait_for_nth_email(topic: &str, n: usize) -> Result<(String, String)> {
    // A canary's pause comes after its test traffic shift, its checks and its canary step: under a full test run on
    // two cores, with the other demos running beside it, that has taken longer than a minute and a half.
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        if let Some((subject, message)) = sns_messages(topic).await?.into_iter().nth(n) {
            let message: Value = serde_json::from_str(&message).context("the SNS message is not JSON")?;
            let text = message["email"].as_str().context("no email form in the SNS message")?.to_owned();
            return Ok((subject.unwrap_or_default(), text));
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("nothing was published to {topic} within 240 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Once the run has recorded `links` approval links as sent (within 30 s): SNS has the email a moment before the
/// approval-requests function has saved that it went out, and the link is valid from then on.
async fn wait_until_sent(store: &DynamoDbStore, id: &ExecutionId, links: usize) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let run = store.execution(id).await?.context("the run is not recorded")?;
        if run.gates().filter(|gate| gate.facts().token_hash.is_some()).count() >= links {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the run did not record its approval link as sent within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The run once it has ended (within 180 s: the demos run side by side in the test suite).
async fn wait_until_finished(store: &DynamoDbStore, id: &ExecutionId) -> Result<sluice::pipeline::Execution> {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let run = store.execution(id).await?.context("the run is not recorded")?;
        if run.status.is_finished() {
            return Ok(run);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the run did not finish within 180 s; it is {}", run.status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn describe(status: Option<Status>) -> String {
    status.map_or_else(|| "unknown".to_owned(), |status| status.to_string())
}

/// The page's first heading.
fn heading(html: &str) -> &str {
    let start = html.find("<h1>").map_or(0, |i| i + 4);
    let end = html[start..].find("</h1>").map_or(html.len(), |i| i + start);
    &html[start..end]
}
