//! The integration harness: one moto_server per test binary on a free loopback port, and, per test, the sluice
//! stack made anew in it from `template.yaml` (the table, the bus, each rule with an SQS queue as its target,
//! and an approval topic), so that tests drive the real adapters over real HTTP and cannot drift from the template.

pub mod bench;
pub mod browser;
pub mod demo;
pub mod map;
pub mod meter;
pub mod template;
pub mod wiring;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;

pub use template::Template;

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A moto_server process, shared by the tests of one binary.
pub struct Moto {
    pub endpoint: String,
    _process: Child,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The moto_server of this test binary, started on first use. It stops when the test binary exits.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| match start_moto() {
        Ok(moto) => moto,
        Err(error) => panic!("cannot start moto_server: {error:#}"),
    })
}

fn moto_server_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    bail!("moto_server is not installed: run `make test` (it installs moto in .venv), or set MOTO_SERVER to its path")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn start_moto() -> Result<Moto> {
    let server = moto_server_path()?;
    let port = free_port()?;
    let log_dir = workspace_root().join("target");
    std::fs::create_dir_all(&log_dir)?;
    let log = std::fs::File::create(log_dir.join(format!("moto-{port}.log")))?;
    // A watchdog shell: moto_server stops when this test process is gone, however it ends.
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} & m=$!; trap 'kill $m 2>/dev/null; exit 0' INT TERM EXIT; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.3; done",
        parent = std::process::id()
    );
    let process = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&server)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("spawning {}", server.display()))?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!("moto_server did not listen on {address} within 30 s; see target/moto-{port}.log");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Moto { endpoint: format!("http://{address}"), _process: process })
}

/// An SDK configuration that speaks to moto, as `AWS_ENDPOINT_URL` would make it, with one attempt per call so
/// that a failure shows at once.
pub async fn aws_config(endpoint: &str) -> SdkConfig {
    aws_config_with(endpoint, &[]).await
}

/// As [`aws_config`], with some services (by their config key: `codebuild`, `codedeploy`, `ecs`) at other
/// endpoints (the sandbox's), as `AWS_ENDPOINT_URL_<SERVICE>` would set them: through the shared config file's
/// `services` section, so that the functions' own wiring (`App::from_aws`) runs unchanged in tests and the demo.
// aws-config's `profile_files` takes `ProfileFiles`, whose new name is in aws-runtime (not a dependency here).
#[allow(deprecated)]
pub async fn aws_config_with(endpoint: &str, services: &[(&str, &str)]) -> SdkConfig {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    let mut profile = format!("[default]\nendpoint_url = {endpoint}\nservices = local\n\n[services local]\n");
    for (service, url) in services {
        profile.push_str(&format!("{service} =\n  endpoint_url = {url}\n"));
    }
    let files = ProfileFiles::builder()
        .include_default_config_file(false)
        .include_default_credentials_file(false)
        .with_contents(ProfileFileKind::Config, profile)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "moto"))
        .profile_files(files)
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

/// A name no other test in this run has.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The sluice stack, made in moto for one test.
pub struct Stack {
    pub config: SdkConfig,
    pub table: String,
    pub bus: String,
    /// Stands in for the account's default bus, where AWS's own events (CodeBuild, CodeDeploy, ECS) arrive: one per
    /// test, so that one test's AWS events never reach another's rules.
    pub default_bus: String,
    /// The SQS queue that receives what each rule of `template.yaml` matches, by the rule's logical id.
    pub queues: HashMap<String, String>,
    /// Each rule of `template.yaml` with the function its target names ([`Stack::wire`] starts them so).
    pub routes: Vec<wiring::Route>,
    /// An SNS topic for approval requests, with an SQS queue subscribed (raw delivery off, as email would get).
    pub approval_topic: String,
    pub approval_queue: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
}

impl Stack {
    /// Makes the stack in this binary's moto: every resource named anew, so tests run in parallel.
    pub async fn create() -> Result<Self> {
        let config = aws_config(&moto().endpoint).await;
        let template = Template::load()?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let eventbridge = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);

        let table = unique("sluice-table");
        create_table(&dynamodb, &template, &table).await?;
        let bus = unique("sluice-events");
        eventbridge.create_event_bus().name(&bus).send().await.context("creating the event bus")?;

        let default_bus = unique("default");
        eventbridge.create_event_bus().name(&default_bus).send().await.context("creating the default bus")?;

        let mut queues = HashMap::new();
        let mut routes = Vec::new();
        for rule in template.rules()? {
            for function in template.targets(&rule.logical_id) {
                let detail_types = rule.detail_types();
                routes.push(wiring::Route { rule: rule.logical_id.clone(), function, detail_types });
            }
            let (queue_url, queue_arn) = create_queue(&sqs, &unique(&rule.logical_id)).await?;
            let rule_name = unique(&rule.logical_id);
            let rule_bus = if rule.on_sluice_bus { &bus } else { &default_bus };
            eventbridge
                .put_rule()
                .name(&rule_name)
                .event_bus_name(rule_bus)
                .event_pattern(rule.event_pattern.to_string())
                .send()
                .await
                .with_context(|| format!("creating rule {}", rule.logical_id))?;
            let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build()?;
            eventbridge
                .put_targets()
                .rule(&rule_name)
                .event_bus_name(rule_bus)
                .targets(target)
                .send()
                .await
                .with_context(|| format!("targeting rule {}", rule.logical_id))?;
            queues.insert(rule.logical_id, queue_url);
        }

        let topic = sns.create_topic().name(unique("sluice-approvals")).send().await?;
        let approval_topic = topic.topic_arn().context("moto returned no topic ARN")?.to_owned();
        let (approval_queue, approval_queue_arn) = create_queue(&sqs, &unique("approvals")).await?;
        sns.subscribe()
            .topic_arn(&approval_topic)
            .protocol("sqs")
            .endpoint(approval_queue_arn)
            .send()
            .await
            .context("subscribing the approval queue")?;

        Ok(Self {
            config,
            table,
            bus,
            default_bus,
            queues,
            routes,
            approval_topic,
            approval_queue,
            dynamodb,
            eventbridge,
            sqs,
            sns,
        })
    }

    /// A queue that receives what `pattern` matches on the stand-in default bus, for AWS events no rule of
    /// `template.yaml` routes yet.
    pub async fn listen(&self, pattern: &serde_json::Value) -> Result<String> {
        let (queue_url, queue_arn) = create_queue(&self.sqs, &unique("listen")).await?;
        let rule = unique("listen");
        self.eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(&self.default_bus)
            .event_pattern(pattern.to_string())
            .send()
            .await?;
        let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build()?;
        self.eventbridge.put_targets().rule(&rule).event_bus_name(&self.default_bus).targets(target).send().await?;
        Ok(queue_url)
    }

    /// The queue behind the rule `logical_id` of `template.yaml`.
    pub fn queue(&self, logical_id: &str) -> Result<&str> {
        self.queues.get(logical_id).map(String::as_str).ok_or_else(|| anyhow!("template.yaml has no rule {logical_id}"))
    }

    /// Every message body that arrives on `queue_url` within `wait`, stopping early once `expected` have come.
    pub async fn receive(&self, queue_url: &str, expected: usize, wait: Duration) -> Result<Vec<serde_json::Value>> {
        let deadline = Instant::now() + wait;
        let mut bodies = Vec::new();
        while bodies.len() < expected && Instant::now() < deadline {
            let output = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            for message in output.messages() {
                let body = message.body().context("a message without a body")?;
                bodies.push(serde_json::from_str(body).with_context(|| format!("message is not JSON: {body}"))?);
                if let Some(handle) = message.receipt_handle() {
                    self.sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await?;
                }
            }
        }
        Ok(bodies)
    }
}

/// A queue in moto: its URL and ARN.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<(String, String)> {
    let queue = sqs.create_queue().queue_name(name).send().await.with_context(|| format!("creating queue {name}"))?;
    let url = queue.queue_url().context("moto returned no queue URL")?.to_owned();
    let attributes =
        sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .context("moto returned no queue ARN")?
        .clone();
    Ok((url, arn))
}

/// Creates `name` with the keys, attributes and indexes of the template's `PipelineTable`.
async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, template: &Template, name: &str) -> Result<()> {
    let table = template.table("PipelineTable")?;
    let key = |(attribute, kind): &(String, String)| -> Result<KeySchemaElement> {
        Ok(KeySchemaElement::builder().attribute_name(attribute).key_type(KeyType::from(kind.as_str())).build()?)
    };
    let mut create = dynamodb.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind) in &table.attributes {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()?,
        );
    }
    for element in &table.key_schema {
        create = create.key_schema(key(element)?);
    }
    for (index, schema) in &table.indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(index)
            .projection(Projection::builder().projection_type(ProjectionType::All).build());
        for element in schema {
            gsi = gsi.key_schema(key(element)?);
        }
        create = create.global_secondary_indexes(gsi.build()?);
    }
    create.send().await.with_context(|| format!("creating table {name}"))?;
    Ok(())
}

/// The effect runner of the integration tests and the demo: `Publish` goes to the real bus (EventBridge in moto)
/// through the real adapter; the calls to CodeBuild and CodeDeploy, which the local sandbox will play, are recorded
/// and StartBuild is answered as CodeBuild answers it, with a build id.
pub struct BusRunner {
    pub publisher: sluice::adapters::EventBridgePublisher,
    pub calls: sluice::contract::testing::RecordingRunner,
}

impl BusRunner {
    pub fn new(stack: &Stack) -> Self {
        Self {
            publisher: sluice::adapters::EventBridgePublisher::new(stack.eventbridge.clone(), stack.bus.clone()),
            calls: sluice::contract::testing::RecordingRunner::new(),
        }
    }
}

impl sluice::usecases::EffectRunner for BusRunner {
    /// None of its own: it carries out the kinds its recorder is made with.
    const KINDS: &'static [sluice::pipeline::EffectKind] = &[];

    fn kinds(&self) -> &[sluice::pipeline::EffectKind] {
        self.calls.kinds()
    }

    async fn run(
        &self,
        id: &str,
        effect: &sluice::pipeline::Effect,
    ) -> Result<Option<sluice::pipeline::Event>, sluice::usecases::EffectError> {
        use sluice::contract::ports::EventPublisher;
        match effect {
            sluice::pipeline::Effect::Publish(event) => {
                self.publisher
                    .publish(std::slice::from_ref(event))
                    .await
                    .map_err(|error| sluice::usecases::EffectError::transient("publish", error))?;
                Ok(None)
            }
            other => self.calls.run(id, other).await,
        }
    }
}

impl Stack {
    /// A CodeBuild project in moto, as the pipelines' `build.project` names it.
    pub async fn create_build_project(&self, name: &str) -> Result<()> {
        use aws_sdk_codebuild::types::{
            ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment, ProjectSource,
            SourceType,
        };
        let codebuild = aws_sdk_codebuild::Client::new(&self.config);
        codebuild
            .create_project()
            .name(name)
            .source(
                ProjectSource::builder().r#type(SourceType::Github).location("https://github.com/acme/web").build()?,
            )
            .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build()?)
            .environment(
                ProjectEnvironment::builder()
                    .r#type(EnvironmentType::ArmContainer)
                    .image("aws/codebuild/amazonlinux-aarch64-standard:3.0")
                    .compute_type(ComputeType::BuildGeneral1Small)
                    .build()?,
            )
            .service_role("arn:aws:iam::123456789012:role/codebuild-web")
            .send()
            .await
            .with_context(|| format!("creating CodeBuild project {name}"))?;
        Ok(())
    }
}

/// POSTs `body` to `url` over HTTP/1.1 as a webhook sender would; returns the status and the body as JSON.
pub async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<(u16, serde_json::Value)> {
    let (status, _, text) = request("POST", url, headers, body).await?;
    let json = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
    Ok((status, json))
}

/// GETs `url` over HTTP/1.1, as a smoke check does; returns the status.
pub async fn get(url: &str) -> Result<u16> {
    Ok(request("GET", url, &[], vec![]).await?.0)
}

/// One HTTP/1.1 request, as a browser or a mail scanner sends it; returns the status, the headers and the body.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, hyper::HeaderMap, String)> {
    use http_body_util::{BodyExt, Full};
    let uri: hyper::Uri = url.parse().context("a URL")?;
    let authority = uri.authority().context("a URL with a host")?.clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = hyper::Request::builder().method(method).uri(path).header("host", authority.as_str());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender.send_request(builder.body(Full::new(hyper::body::Bytes::from(body)))?).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, headers, String::from_utf8_lossy(&bytes).into_owned()))
}

/// What moto's SNS recorded as published to `topic_arn` (its `/moto-api/data.json`): each message's subject and
/// `Message`, oldest first.
pub async fn sns_messages(topic_arn: &str) -> Result<Vec<(Option<String>, String)>> {
    Ok(sns_published(topic_arn).await?.into_iter().map(|(subject, message, _)| (subject, message)).collect())
}

/// As [`sns_messages`], with the approver each message was for (its `sluice_approver` message attribute), if any.
pub async fn sns_published(topic_arn: &str) -> Result<Vec<(Option<String>, String, Option<String>)>> {
    // moto builds data.json by walking every backend, and answers 500 when another test changes one meanwhile
    // (a dictionary changed size during iteration): that is moto's, not the test's, so ask again.
    let mut attempt = 0;
    let body = loop {
        let (status, _, body) = request("GET", &format!("{}/moto-api/data.json", moto().endpoint), &[], vec![]).await?;
        match status {
            200 => break body,
            500 if attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            status => bail!("moto's data.json answered {status}"),
        }
    };
    let data: serde_json::Value = serde_json::from_str(&body).context("moto's data.json")?;
    let topics = data["sns"]["Topic"].as_array().cloned().unwrap_or_default();
    let topic = topics.iter().find(|topic| topic["arn"] == topic_arn);
    let sent = topic.and_then(|topic| topic["sent_notifications"].as_array().cloned()).unwrap_or_default();
    // moto keeps (message id, message, subject, message attributes, group id) per publish.
    Ok(sent
        .iter()
        .map(|entry| {
            let approver = entry[3][sluice::definitions::APPROVER_ATTRIBUTE]["Value"].as_str().map(str::to_owned);
            (entry[2].as_str().map(str::to_owned), entry[1].as_str().unwrap_or_default().to_owned(), approver)
        })
        .collect())
}

/// The approval link in an approval email (the line after "Review and decide:").
pub fn approval_link(email_text: &str) -> Option<String> {
    let mut lines = email_text.lines();
    lines.find(|line| line.starts_with("Review and decide:"))?;
    lines.next().map(|line| line.trim().to_owned())
}

/// The form token on a review page.
pub fn form_token(html: &str) -> Option<String> {
    let start = html.find("name=\"form_token\" value=\"")? + "name=\"form_token\" value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Records run `web-1` of pipeline `web` pushed and built for `target`, with `image`: the build's `files` (name,
/// content) in a new S3 bucket, where CodeBuild would leave them, and the run let into its deploy stage; its outcome
/// goes to topic `notify`, if given. `runner` carries out what the push and the build cause: each test picks the
/// kinds it takes.
pub async fn built_run<R: sluice::usecases::EffectRunner>(
    stack: &Stack,
    store: &sluice::adapters::DynamoDbStore,
    runner: &R,
    target: sluice::definitions::DeployTarget,
    notify: Option<&str>,
    files: &[(&str, &str)],
    image: &str,
) -> Result<()> {
    let run = BuiltRun {
        pipeline: "web",
        execution: "web-1",
        mode: sluice::definitions::ExecutionMode::Superseded,
        target,
        notify,
        files,
        image,
    };
    built(stack, store, runner, run).await
}

/// A run pushed and built, as [`built`] records it.
pub struct BuiltRun<'a> {
    pub pipeline: &'a str,
    pub execution: &'a str,
    pub mode: sluice::definitions::ExecutionMode,
    pub target: sluice::definitions::DeployTarget,
    pub notify: Option<&'a str>,
    /// The files the build left (name, content).
    pub files: &'a [(&'a str, &'a str)],
    pub image: &'a str,
}

/// Records `run` of its pipeline pushed and built (its files in a bucket of its own in S3), as [`built_run`] does.
pub async fn built<R: sluice::usecases::EffectRunner>(
    stack: &Stack,
    store: &sluice::adapters::DynamoDbStore,
    runner: &R,
    run: BuiltRun<'_>,
) -> Result<()> {
    use sluice::pipeline::{BuildOutputs, Event, ExecutionId};

    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.config).force_path_style(true).build());
    let bucket = unique("artifacts");
    s3.create_bucket().bucket(&bucket).send().await?;
    for (name, content) in run.files {
        let body = content.as_bytes().to_vec().into();
        s3.put_object().bucket(&bucket).key(format!("{}/b-1/{name}", run.pipeline)).body(body).send().await?;
    }
    let mut triggered = sluice::contract::testing::push(run.execution, run.mode, false);
    if let Event::Triggered { plan, .. } = &mut triggered {
        *plan.target_mut() = run.target;
        plan.notify = run.notify.map(|topic| sluice::definitions::Notify { topic_arn: topic.to_owned() });
    }
    let built = Event::BuildSucceeded {
        execution_id: ExecutionId::from(run.execution),
        build_id: format!("build-{}", run.execution),
        outputs: BuildOutputs {
            image_uri: run.image.into(),
            artifacts: Some(format!("s3://{bucket}/{}/b-1", run.pipeline)),
        },
    };
    for event in [&triggered, &built] {
        let now = chrono::Utc::now();
        let input = sluice::usecases::Input { pipeline: run.pipeline, mode: run.mode, event, receipt: None, now };
        sluice::usecases::handle(store, runner, input).await?;
    }
    Ok(())
}
