//! What a signed push costs: the real github-webhook function, wired by its own `from_aws` and served on a loopback
//! function URL, with every AWS call going through a [`Meter`] to moto_server. Two cases, side by side: a push to a
//! pipeline that holds no execution (a pipeline of its own for each push), and a push to one that holds 20 (one
//! awaiting approval, 19 queued behind it, made by the real use case, and put back as it was after each push), each
//! push starting a build. `make bench` prints the figures; the integration tests hold the counts to their bounds.
//!
//! moto copies a table for each item of a transaction it runs (a push runs none, but filling and restoring the held
//! pipeline does), so its answers slow down as the account's data grows: the bench keeps the data small (one held
//! pipeline, restored after each push) and alternates the two cases, so that both see the same moto.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use github_webhook::handler::{AwsApp, Config, respond};
use serde_json::Value;
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{DefinitionsStore, PipelineStore, Write};
use sluice::contract::testing::RecordingRunner;
use sluice::definitions::{Definitions, ExecutionMode};
use sluice::github::webhook::sign;
use sluice::pipeline::{BuildOutputs, Event, ExecutionId, Plan, SourceFacts, Stage, Status};
use sluice::usecases::{Handled, Input, REMEMBERED, handle};
use sluice_sandbox::function_url::{FunctionUrl, serve};

use crate::meter::{Meter, Reading};
use crate::{Stack, post, unique};

const PUSH: &[u8] = include_bytes!("../../shared/tests/fixtures/github-push.json");
/// Executions a pipeline of the second case holds when its push arrives.
pub const HELD: usize = 20;

/// The two cases measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// The pipeline holds no execution.
    Empty,
    /// The pipeline holds [`HELD`] executions: one awaiting approval, the others queued for it.
    Held,
}

impl Case {
    pub fn label(self) -> String {
        match self {
            Case::Empty => "0 held executions".to_owned(),
            Case::Held => format!("{HELD} held executions"),
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Case::Empty => "empty",
            Case::Held => "held",
        }
    }
}

/// One push, measured.
#[derive(Debug, Clone)]
pub struct Sample {
    /// From sending the delivery to reading the whole answer, as GitHub waits for it.
    pub latency: Duration,
    /// The function's AWS calls while it handled the push.
    pub reading: Reading,
}

/// The function deployed in moto behind a meter, with `pushes` empty pipelines and one held one.
pub struct Bench {
    store: DynamoDbStore,
    secret: String,
    url: FunctionUrl,
    meter: Meter,
    pushes: usize,
    commits: AtomicU64,
    /// The held pipeline as filled, put back after each push, and its last commit.
    held: sluice::contract::ports::Stored<sluice::pipeline::PipelineState>,
    head: String,
    /// The last commit pushed to each pipeline.
    last: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The function, whose memory of the held pipeline is cleared when the bench puts that pipeline back.
    function: Arc<AwsApp>,
    /// The calls the function made as it started.
    start: Reading,
    warm: Reading,
}

impl Bench {
    /// Makes the stack, publishes `pushes` empty pipelines, the held one and one to warm the function with, fills
    /// the held one, and serves the function. The pipelines are more than the function reads the states of as it
    /// starts ([`REMEMBERED`]; a few idle ones make up the number): each push measured reads the state it is decided
    /// from, as a push to an instance that did not just start does.
    pub async fn set_up(pushes: usize) -> Result<Self> {
        Self::set_up_with(pushes, REMEMBERED.saturating_sub(pushes)).await
    }

    /// As [`Bench::set_up`], with `idle` pipelines besides (that nothing pushes to).
    pub async fn set_up_with(pushes: usize, idle: usize) -> Result<Self> {
        let stack = Stack::create().await?;
        let project = unique("bench-build");
        stack.create_build_project(&project).await?;
        let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
        let definitions = definitions(pushes, idle, &project, &stack.approval_topic);
        store.publish(&definitions, None, Utc::now()).await.context("publishing the bench's pipelines")?;

        let secret_name = unique("sluice/webhook");
        let secret = "0f3c2b1a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b".to_owned();
        aws_sdk_secretsmanager::Client::new(&stack.config)
            .create_secret()
            .name(&secret_name)
            .secret_string(&secret)
            .send()
            .await?;

        // Every call the function makes goes through the meter; the bench's own calls go straight to moto.
        let meter = Meter::start(&crate::moto().endpoint).await?;
        let aws = crate::aws_config(&meter.endpoint).await;
        let config = Config::from_lookup(|name| match name {
            "SLUICE_TABLE" => Some(stack.table.clone()),
            "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
            "SLUICE_WEBHOOK_SECRET" => Some(secret_name.clone()),
            _ => None,
        })?;
        let app = Arc::new(AwsApp::from_aws(&aws, &config).await?);
        let start = meter.take();
        let function = Arc::clone(&app);
        let url = serve("github-webhook", move |request| {
            let app = Arc::clone(&app);
            async move { respond(&app, request, Utc::now()).await }
        })
        .await?;

        let parsed = Definitions::parse("bench.toml", &definitions).context("the bench's pipelines")?;
        let name = Case::Held.prefix();
        let pipeline = parsed.get(name).with_context(|| format!("pipeline {name}"))?;
        let head = fill(&store, name, &Plan::from(pipeline)).await?;
        let held = store.load(name).await?.context("the held pipeline")?;
        let last = std::sync::Mutex::default();
        let (commits, warm) = (AtomicU64::new(1), Reading::default());
        let bench = Self { store, secret, url, meter, pushes, commits, held, head, last, function, start, warm };
        // The first delivery opens the connections (the secret and the definitions were read as the function started).
        bench.deliver("warm", None).await?;
        let warm = bench.meter.take();
        Ok(Self { warm, ..bench })
    }

    /// The AWS calls the function made as it started, before any push.
    pub fn start(&self) -> &Reading {
        &self.start
    }

    /// The AWS calls of the first push the function answered (to the pipeline `warm`, which holds no run).
    pub fn warm(&self) -> &Reading {
        &self.warm
    }

    /// Pushes per case.
    pub fn pushes(&self) -> usize {
        self.pushes
    }

    /// The `index`th push of `case`, measured: a new commit on its pipeline's main branch.
    pub async fn push(&self, case: Case, index: usize) -> Result<Sample> {
        let (name, before) = match case {
            Case::Empty => (format!("{}-{index}", case.prefix()), None),
            Case::Held => (case.prefix().to_owned(), Some(self.head.clone())),
        };
        self.meter.take();
        let started = Instant::now();
        let answer = self.deliver(&name, before).await?;
        let latency = started.elapsed();
        let reading = self.meter.take();
        if answer["message"] != "1 execution started" {
            bail!("the push to {name} did not start one execution: {answer}");
        }
        if case == Case::Held {
            self.restore().await?;
        }
        Ok(Sample { latency, reading })
    }

    /// A second push to the empty pipeline of the `index`th push, right after it (a new commit on top of the one
    /// pushed then): the run it starts waits for the first one's. Measured as [`Bench::push`].
    pub async fn push_again(&self, index: usize) -> Result<Sample> {
        let name = format!("{}-{index}", Case::Empty.prefix());
        let before = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&name).cloned();
        let before = before.with_context(|| format!("nothing was pushed to {name} yet"))?;
        self.meter.take();
        let started = Instant::now();
        let answer = self.deliver(&name, Some(before)).await?;
        let latency = started.elapsed();
        let reading = self.meter.take();
        if answer["message"] != "1 execution started" {
            bail!("the second push to {name} did not start one execution: {answer}");
        }
        Ok(Sample { latency, reading })
    }

    /// How many executions the held pipeline holds now.
    pub async fn held(&self) -> Result<usize> {
        Ok(self.store.load(Case::Held.prefix()).await?.map_or(0, |stored| stored.value.executions.len()))
    }

    /// Puts the held pipeline's state back as it was filled (the pushed run stays in its history).
    async fn restore(&self) -> Result<()> {
        let current = self.store.load(Case::Held.prefix()).await?.context("the held pipeline")?;
        let write = Write::between(Some(&current.value), &self.held.value, Some(current.version));
        self.store.save(&write).await.context("restoring the held pipeline")?;
        // Each held push is measured as one to a pipeline the instance did not write last (it reads the state); a
        // burst's pushes are measured by `push_again`.
        self.function.store.forget(Case::Held.prefix());
        Ok(())
    }

    fn commit(&self) -> String {
        commit(&self.commits)
    }

    /// Signs and delivers a push to the repository watched by `pipeline`, as GitHub does.
    async fn deliver(&self, pipeline: &str, before: Option<String>) -> Result<Value> {
        let after = self.commit();
        self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(pipeline.to_owned(), after.clone());
        let mut payload: Value = serde_json::from_slice(PUSH)?;
        payload["repository"]["full_name"] = Value::from(format!("bench/{pipeline}"));
        payload["repository"]["name"] = Value::from(pipeline);
        payload["before"] = Value::from(before.unwrap_or_else(|| "0".repeat(40)));
        payload["after"] = Value::from(after.clone());
        payload["head_commit"]["id"] = Value::from(after);
        payload["repository"]["pushed_at"] = Value::from(Utc::now().timestamp());
        let body = serde_json::to_vec(&payload)?;
        let signature = sign(&self.secret, &body);
        let delivery = unique("delivery");
        let headers = [
            ("content-type", "application/json"),
            ("user-agent", "GitHub-Hookshot/5b1e2f0"),
            ("x-github-event", "push"),
            ("x-github-delivery", delivery.as_str()),
            ("x-hub-signature-256", signature.as_str()),
        ];
        let (status, answer) = post(&self.url.url, &headers, body).await?;
        if status != 202 {
            bail!("the push to {pipeline} was answered {status}: {answer}");
        }
        Ok(answer)
    }
}

/// Gives `pipeline` [`HELD`] executions through the real use case (built, then awaiting approval or queued for
/// it), with nothing left in its outbox; returns the last commit.
async fn fill(store: &DynamoDbStore, pipeline: &str, plan: &Plan) -> Result<String> {
    let runner = RecordingRunner::new();
    let counter = AtomicU64::new(1 << 40);
    let mut before = "0".repeat(40);
    for _ in 0..HELD {
        let commit = commit(&counter);
        let execution_id = ExecutionId(format!("{pipeline}-{commit}"));
        let triggered = Event::Triggered {
            execution_id: execution_id.clone(),
            source: SourceFacts {
                repository: format!("bench/{pipeline}"),
                commit: commit.clone(),
                before: std::mem::replace(&mut before, commit.clone()),
                git_ref: "refs/heads/main".into(),
                pusher: "octocat".into(),
                pusher_email: None,
                delivery_id: unique("delivery"),
                message: "Fix the checkout button".into(),
                compare_url: format!("https://github.com/bench/{pipeline}/compare/{commit}"),
                pushed_at: None,
                hook_id: None,
                compared: None,
            },
            plan: Box::new(plan.clone()),
            mode: ExecutionMode::Queued,
            ordered: None,
        };
        // The runner answers StartBuild with `build-<execution>`, as CodeBuild would with its build id.
        let built = Event::BuildSucceeded {
            execution_id: execution_id.clone(),
            build_id: format!("build-{execution_id}"),
            outputs: BuildOutputs {
                image_uri: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/bench@sha256:{commit}{commit}"),
                artifacts: Some(format!("s3://bench-artifacts/{pipeline}/{commit}")),
            },
        };
        for event in [&triggered, &built] {
            let input = Input { pipeline, mode: ExecutionMode::Queued, event, receipt: None, now: Utc::now() };
            let handled = handle(store, &runner, input).await?;
            if handled != Handled::Applied {
                bail!("filling {pipeline}: {} was {handled:?}", event.name());
            }
        }
    }
    let state = store.load(pipeline).await?.context("the filled pipeline")?.value;
    let awaiting = state.executions.iter().filter(|e| e.status == Status::Running(Stage::APPROVAL));
    if state.executions.len() != HELD || awaiting.count() != 1 || !state.pending.is_empty() {
        bail!("{pipeline} was not filled as meant: {} executions, outbox {:?}", state.executions.len(), state.pending);
    }
    Ok(before)
}

fn commit(counter: &AtomicU64) -> String {
    format!("{:08x}{:032x}", std::process::id(), counter.fetch_add(1, Ordering::Relaxed))
}

/// `pushes` empty pipelines and the held one, each watching a repository of its own, queued, with an approval; and
/// one to warm up.
fn definitions(pushes: usize, idle: usize, project: &str, topic: &str) -> String {
    let mut names = vec!["warm".to_owned(), Case::Held.prefix().to_owned()];
    names.extend((0..pushes).map(|index| format!("{}-{index}", Case::Empty.prefix())));
    names.extend((0..idle).map(|index| format!("idle-{index}")));
    let mut text = String::new();
    for name in names {
        text.push_str(&format!(
            "[pipelines.{name}]\nmode = \"queued\"\n\
             [pipelines.{name}.source]\nrepository = \"bench/{name}\"\n\
             [pipelines.{name}.build]\nproject = \"{project}\"\n\
             [pipelines.{name}.approval]\ntopic = \"{topic}\"\n\
             [pipelines.{name}.deploy]\nstrategy = \"rolling\"\ncluster = \"bench\"\nservice = \"{name}\"\n\n"
        ));
    }
    text
}

/// The value below which `fraction` of `sorted` lies (nearest rank).
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
