//! The ports: what the pipeline needs from the world, in the pipeline's words. Adapters in `adapters/` implement
//! them on AWS; the in-memory twins in `testing` implement them for use-case tests. No SDK type crosses a port.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::events::SluiceEvent;
use crate::pipeline::{Execution, ExecutionId, PausesApart, PipelineState, TestResults};

/// The version of a stored pipeline state: 1 after the first save, one more after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(pub u64);

/// A pipeline state as read, with the version a save must expect.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub value: T,
    pub version: Version,
}

/// How long the store keeps a receipt, in days, before the table's TTL may remove it: GitHub redelivers for days,
/// not months. A push older than this is refused (its replay would no longer be recognised).
pub const RECEIPT_DAYS: i64 = 30;

/// What makes an input recognisable when it is delivered again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReceiptKey(String);

impl ReceiptKey {
    /// A GitHub webhook delivery (`X-GitHub-Delivery`), as applied to one pipeline.
    pub fn delivery(delivery_id: &str, pipeline: &str) -> Self {
        Self(format!("delivery#{delivery_id}#{pipeline}"))
    }

    /// A push, by the hash of its signed payload, as applied to one pipeline: the same push delivered again, under
    /// its own delivery id or another, is recognised.
    pub fn push(payload_sha256: &str, pipeline: &str) -> Self {
        Self(format!("push#{payload_sha256}#{pipeline}"))
    }

    /// An EventBridge event (its `id`).
    pub fn event(event_id: &str) -> Self {
        Self(format!("event#{event_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReceiptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The record that an input was handled, with the answer given, so a redelivery gets the same answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub key: ReceiptKey,
    pub answer: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

/// A store failure. `Conflict` and `Duplicate` are answers, not faults: reload and decide again, or answer as the
/// first delivery did.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("pipeline {pipeline} was changed by someone else since it was read; load it again and retry")]
    Conflict { pipeline: String },
    #[error("{key} was already handled")]
    Duplicate { key: ReceiptKey },
    /// The store was busy with the same items or over its capacity (DynamoDB's `TransactionConflict`, throttling):
    /// try again after a pause.
    #[error("the pipeline store was busy with pipeline {pipeline} ({reason}); try again shortly")]
    Busy { pipeline: String, reason: String },
    /// The store refused the write as it is (an item over DynamoDB's 400 KB, say): retrying will not help.
    #[error("the pipeline store refused pipeline {pipeline}'s write: {message}")]
    Invalid { pipeline: String, message: String },
    #[error("a stored {what} could not be read; it was written by an incompatible version of sluice")]
    Corrupt {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the pipeline store could not be reached")]
    Unavailable {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("the pipeline store refused the request")]
    Refused {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl StoreError {
    /// Whether trying again (after reloading, for a conflict) can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict { .. } | StoreError::Busy { .. } | StoreError::Unavailable { .. })
    }

    /// Whether another writer got in the way: reload, decide again and write again, after a pause.
    pub fn is_contention(&self) -> bool {
        matches!(self, StoreError::Conflict { .. } | StoreError::Busy { .. })
    }
}

/// An AWS id (a CodeDeploy deployment id, an ECS service deployment ARN, an approval link's token hash) and the
/// execution it belongs to (earlier versions linked builds too), so that an AWS event or a hook call that carries only the AWS id finds its run in one read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsLink {
    pub aws_id: String,
    pub pipeline: String,
    pub execution: ExecutionId,
    /// When the store may forget the link: [`RECEIPT_DAYS`] after its run ended (`None` while it runs), so that late
    /// events of a finished run are still recognised as sluice's for as long as its inputs' receipts are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A pipeline's state as a store remembers it ([`PipelineStore::recall`]): `None` for a pipeline that had none.
pub type Recalled = Option<Stored<PipelineState>>;

/// One change to a pipeline, written all or nothing: its state (if still at `expected`), the executions that
/// changed, the receipt of the input that caused it, and the AWS ids it recorded first. (A push's receipt is
/// written before, on its own, unless its run starts its build now: [`crate::usecases::handle_push`].)
#[derive(Debug, Clone)]
pub struct Write<'a> {
    pub state: &'a PipelineState,
    /// The version read (`None`: nothing stored yet).
    pub expected: Option<Version>,
    /// Only these executions are written: the cost of a save does not grow with the runs a pipeline holds.
    pub executions: Vec<&'a Execution>,
    pub receipt: Option<&'a Receipt>,
    pub links: Vec<AwsLink>,
    /// Pauses that nothing decides any more, kept in items of their own, each written once
    /// ([`Execution::set_apart`]); the executions are written without them.
    pub apart: Vec<PausesApart>,
}

impl<'a> Write<'a> {
    /// Whether the write is the pipeline's item alone (nothing besides it to land with it): the DynamoDB store
    /// writes it with one conditional PutItem, not a transaction.
    pub fn is_state_alone(&self) -> bool {
        self.executions.is_empty() && self.receipt.is_none() && self.links.is_empty() && self.apart.is_empty()
    }

    /// The write that takes the pipeline from `before` (as read at `expected`; `None` if never stored) to `after`.
    pub fn between(before: Option<&PipelineState>, after: &'a PipelineState, expected: Option<Version>) -> Self {
        let old = |id: &ExecutionId| before.and_then(|state| state.execution(id));
        // An abridged run's own item is its whole record: it is never written from the state's copy.
        let changed: Vec<&Execution> = after
            .executions
            .iter()
            .filter(|execution| !execution.abridged && old(&execution.id) != Some(*execution))
            .collect();
        let executions: Vec<&Execution> =
            after.executions.iter().filter(|execution| execution.own_item_due(old(&execution.id))).collect();
        let apart = executions.iter().flat_map(|execution| execution.batches_to_set_apart()).collect();
        let mut links = Vec::new();
        for execution in &changed {
            let was = old(&execution.id);
            // A run that ends has its links written again with an expiry; a link new to an ended run gets one too.
            let ended_now = execution.status.is_finished() && !was.is_some_and(|was| was.status.is_finished());
            let expires_at = execution
                .status
                .is_finished()
                .then(|| execution.finished_at.unwrap_or(execution.updated_at) + chrono::TimeDelta::days(RECEIPT_DAYS));
            let known: Vec<String> = was.map(aws_ids).unwrap_or_default().into_iter().map(|(id, _)| id).collect();
            for (aws_id, kept_until) in aws_ids(execution) {
                if ended_now || !known.contains(&aws_id) {
                    let (pipeline, execution) = (after.pipeline.clone(), execution.id.clone());
                    links.push(AwsLink { aws_id, pipeline, execution, expires_at: expires_at.or(kept_until) });
                }
            }
        }
        Self { state: after, expected, executions, receipt: None, links, apart }
    }

    /// The same write, without the own items of runs that are new and go on: the pipeline's item is their record
    /// until they first move on ([`Execution::own_item_due`] writes it then), and the store finds them there. A run
    /// that ends at once is written, as every run that ends.
    pub fn new_runs_in_the_state(mut self, before: Option<&PipelineState>) -> Self {
        let known = |id: &ExecutionId| before.is_some_and(|state| state.execution(id).is_some());
        self.executions.retain(|execution| execution.status.is_finished() || known(&execution.id));
        self
    }

    /// The same write, with the receipt of the input that caused it.
    pub fn with_receipt(mut self, receipt: Option<&'a Receipt>) -> Self {
        self.receipt = receipt;
        self
    }
}

/// The AWS ids (each deploy stage's deployment and service deployment) and approval links (the approval stage's, each
/// pause's) by which run `execution` is found, each with how long it is kept while the run goes on (`None`: as long
/// as the run). A pause's link is kept [`RECEIPT_DAYS`] past the pause's deadline: the pause may be kept apart from
/// the run ([`Execution::set_apart`]) long before the run ends, and its link is not written again then. A build needs
/// none: its events name the run in the environment variables sluice starts it with (`SLUICE_EXECUTION_ID`,
/// `SLUICE_PIPELINE`), and the run knows its build's id; so recording a build is a write of the pipeline's item alone.
fn aws_ids(execution: &Execution) -> Vec<(String, Option<DateTime<Utc>>)> {
    // Every deploy stage's deployment and service deployment.
    let deployments = execution
        .stages
        .iter()
        .filter_map(|record| record.deploy.as_ref())
        .flat_map(|deploy| [deploy.deployment_id.clone(), deploy.service_deployment.clone()]);
    // Each approval's link, or each named approver's own.
    let sent = execution.gates().flat_map(|gate| {
        let facts = gate.facts();
        let kept = gate.pause().and_then(|_| facts.expires_at.checked_add_signed(TimeDelta::days(RECEIPT_DAYS)));
        let links = if facts.personal.is_empty() {
            facts.token_hash.iter().collect()
        } else {
            facts.personal.iter().collect::<Vec<_>>()
        };
        links.into_iter().map(move |hash| (approval_link(hash), kept))
    });
    deployments.flatten().map(|id| (id, None)).chain(sent).collect()
}

/// The id under which an approval link's token hash finds its execution ([`PipelineStore::find`]).
pub fn approval_link(token_hash: &str) -> String {
    format!("approval:{token_hash}")
}

/// Where pipeline states, executions and receipts are kept.
pub trait PipelineStore: Send + Sync {
    /// The pipeline's state and its version, or `None` if it never ran.
    fn load(&self, pipeline: &str) -> impl Future<Output = Result<Option<Stored<PipelineState>>, StoreError>> + Send;

    /// The pipeline's state as this store last wrote or read it, without reading it, if it remembers one it takes to
    /// be current ([`crate::usecases::RecentStates`]): `Some(None)` for a pipeline that had no state then. A save from
    /// it is refused if it was not current. `None` (nothing remembered) by default.
    fn recall(&self, _pipeline: &str) -> Option<Recalled> {
        None
    }

    /// Writes `write` if the stored version is still `write.expected`: all or nothing. Fails with `Conflict` if the
    /// version moved, `Duplicate` if the receipt exists, `Busy` if the store asks to try again later.
    fn save(&self, write: &Write<'_>) -> impl Future<Output = Result<Version, StoreError>> + Send;

    /// One execution, finished or not, without the pauses it keeps apart ([`Execution::set_apart`]): its own item
    /// once it ended, and while it runs the pipeline's copy, which holds what it learnt at the stage it is at
    /// ([`PipelineState::in_progress_copy`]); a run recorded without its own item yet
    /// ([`Write::new_runs_in_the_state`]) is found in its pipeline's item, the pipeline named by the start of its id
    /// (`{pipeline}-...`).
    fn execution(&self, id: &ExecutionId) -> impl Future<Output = Result<Option<Execution>, StoreError>> + Send;

    /// The pauses run `id` keeps apart, in the batches they were kept apart in.
    fn pauses_apart(&self, id: &ExecutionId) -> impl Future<Output = Result<Vec<PausesApart>, StoreError>> + Send;

    /// One execution with everything it did, the pauses it keeps apart back in their stages: the run as a reader
    /// (`show-run`, the status page) shows it. Reads them only for a run that counts some.
    fn whole(&self, id: &ExecutionId) -> impl Future<Output = Result<Option<Execution>, StoreError>> + Send {
        async move {
            let Some(mut execution) = self.execution(id).await? else { return Ok(None) };
            if execution.has_pauses_apart() {
                execution.rejoin(self.pauses_apart(id).await?);
            }
            Ok(Some(execution))
        }
    }

    /// The execution an AWS id (deployment id, service deployment ARN, approval link) belongs to, from the link
    /// written with it.
    fn find(&self, aws_id: &str) -> impl Future<Output = Result<Option<AwsLink>, StoreError>> + Send;

    /// The pipeline's executions, newest first, at most `limit`; those in progress as [`PipelineStore::execution`]
    /// reads them, those without their own item yet among them.
    fn history(&self, pipeline: &str, limit: usize) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send;

    /// Records a receipt on its own (for an input that changes no state); `Duplicate` if it exists.
    fn record_receipt(&self, receipt: &Receipt) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The receipt of an input already handled.
    fn receipt(&self, key: &ReceiptKey) -> impl Future<Output = Result<Option<Receipt>, StoreError>> + Send;
}

/// A definitions file as published, with its revision (1, 2, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDefinitions {
    /// The TOML text, exactly as published.
    pub text: String,
    pub revision: u64,
    pub published_at: DateTime<Utc>,
}

/// Where the deployed pipeline definitions live. Functions read the current revision; `sluice publish` writes a new
/// one. Writers name the revision they replace, so two publishers cannot overwrite each other unseen.
pub trait DefinitionsStore: Send + Sync {
    /// The current definitions, or `None` if none were ever published.
    fn current(&self) -> impl Future<Output = Result<Option<PublishedDefinitions>, StoreError>> + Send;

    /// Publishes `text` as the revision after `replacing` (`None`: the first). Fails with `Conflict` if the current
    /// revision is another. The text must already be valid: this stores, it does not judge.
    fn publish(
        &self,
        text: &str,
        replacing: Option<u64>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A publish failure.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "the event bus refused {} of {total} events (first: {})",
        entries.len(),
        entries.first().map_or_else(String::new, |e| format!("{}: {}", e.code, e.message))
    )]
    Rejected { total: usize, entries: Vec<RefusedEntry> },
    #[error("the event bus could not be reached")]
    Unavailable {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// One event the bus did not accept, by its place in the events published
/// (<https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEntry {
    pub index: usize,
    pub code: String,
    pub message: String,
}

impl RefusedEntry {
    /// Whether sending the entry again may succeed: the bus was busy or failed inside (`ThrottlingException`,
    /// `InternalFailure`), rather than refusing the entry itself.
    pub fn is_retryable(&self) -> bool {
        matches!(self.code.as_str(), "ThrottlingException" | "InternalFailure")
    }
}

/// Where sluice announces what happened, so that the next function (and any subscriber) acts on it.
pub trait EventPublisher: Send + Sync {
    /// Publishes the events, in order. Either all are accepted, or the error says which were not (`Rejected`, the
    /// others were accepted) or that the bus could not be reached (`Unavailable`: none may count as sent).
    fn publish(&self, events: &[SluiceEvent]) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// A build to start: the pipeline's project on the pushed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest<'a> {
    pub project: &'a str,
    pub source_version: &'a str,
    pub environment: &'a BTreeMap<String, String>,
    /// The same token for the same request: a retried start starts one build.
    pub idempotency_token: &'a str,
    /// The build's timeout in minutes, overriding the project's.
    pub timeout_minutes: Option<u32>,
}

/// Why a build did not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildStartError {
    /// The build service said no for good (no such project, access denied, invalid input): the run fails.
    #[error("the build service refused to start the build: {message}")]
    Refused {
        message: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The build service could not be reached or was busy: try again.
    #[error("the build service could not be reached")]
    Unavailable {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Starts builds, and says how they are going.
pub trait BuildStarter: Send + Sync {
    /// Starts the build and returns its id (the build's ARN, as CodeBuild's events name it).
    fn start_build(&self, request: &BuildRequest<'_>) -> impl Future<Output = Result<String, BuildStartError>> + Send;

    /// What the build service says of build `build_id` now, or `None` if it has no such build.
    fn build_report(&self, build_id: &str)
    -> impl Future<Output = Result<Option<BuildReport>, BuildStartError>> + Send;
}

/// A build as the build service reports it when asked (CodeBuild's BatchGetBuilds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildReport {
    /// IN_PROGRESS, SUCCEEDED, FAILED, FAULT, STOPPED or TIMED_OUT.
    pub status: String,
    pub current_phase: Option<String>,
    /// The first phase whose status is not SUCCEEDED.
    pub failed_phase: Option<String>,
    /// The artifacts' location, `arn:aws:s3:::bucket/key`.
    pub artifact_location: Option<String>,
}

/// Where a build's artifacts are: an S3 bucket and the key prefix of the artifacts' folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLocation {
    pub bucket: String,
    pub prefix: String,
}

impl ArtifactLocation {
    /// `s3://bucket/prefix`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// A build's artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The store said no (S3's 403, which it also answers for a missing key when the reader may not list the
    /// bucket): it will not change by itself.
    #[error("access denied")]
    Denied {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The store could not be reached or was busy: try again.
    #[error("the artifact store could not be reached")]
    Unavailable {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Reads the files a build left in its artifacts.
pub trait ArtifactStore: Send + Sync {
    /// The file `name` of the artifacts at `location`, or `None` if there is no such file.
    fn read(
        &self,
        location: &ArtifactLocation,
        name: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ArtifactError>> + Send;
}

/// An image registry did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry said no (access denied): it will not change by itself.
    #[error("access denied")]
    Denied {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The registry refused the request as asked (a repository or tag it cannot hold, a registry the caller cannot
    /// reach): asking again will not help.
    #[error("the image registry refused the request")]
    Refused {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The registry could not be reached or was busy: try again.
    #[error("the image registry could not be reached")]
    Unavailable {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Finds the digest an image's tag names now, so that a run deploys the bytes its build made whatever the tag does
/// later.
pub trait ImageRegistry: Send + Sync {
    /// The digest (`sha256:...`) of `image`, or `None` if the registry has no such image.
    fn digest(
        &self,
        image: &crate::deploy::image::EcrImage,
    ) -> impl Future<Output = Result<Option<String>, RegistryError>> + Send;
}

/// What a build left, read through two ports: its artifacts (`A`) and the registry its image is in (`I`).
#[derive(Debug, Clone)]
pub struct Built<A, I, R> {
    pub artifacts: A,
    pub images: I,
    pub reports: R,
}

impl<A: ArtifactStore, I: Send + Sync, R: Send + Sync> ArtifactStore for Built<A, I, R> {
    async fn read(&self, location: &ArtifactLocation, name: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        self.artifacts.read(location, name).await
    }
}

impl<A: Send + Sync, I: ImageRegistry, R: Send + Sync> ImageRegistry for Built<A, I, R> {
    async fn digest(&self, image: &crate::deploy::image::EcrImage) -> Result<Option<String>, RegistryError> {
        self.images.digest(image).await
    }
}

impl<A: Send + Sync, I: Send + Sync, R: TestReports> TestReports for Built<A, I, R> {
    async fn test_results(&self, build_id: &str) -> Result<Option<TestResults>, ReportError> {
        self.reports.test_results(build_id).await
    }
}

/// Why a build's test reports could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The build service refused for good (access denied, invalid input): asking again will not help.
    #[error("the build service refused to show the build's test reports: {message}")]
    Refused {
        message: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The build service could not make a test report (its status is `FAILED` or `INCOMPLETE`): it says nothing of
    /// the tests.
    #[error("CodeBuild could not make test report {report} (its status is {status})")]
    Unmade { report: String, status: String },
    /// A report is still being made, or the build service could not be reached or was busy: try again.
    #[error("the build's test reports could not be read now")]
    Unavailable {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// What a build's test reports say (CodeBuild's report groups: BatchGetBuilds' `reportArns`, BatchGetReports'
/// `testSummary`, DescribeTestCases).
pub trait TestReports: Send + Sync {
    /// The test cases of build `build_id`'s test reports, counted by status, with the first failed ones; `None` when
    /// the build made no test report.
    fn test_results(&self, build_id: &str) -> impl Future<Output = Result<Option<TestResults>, ReportError>> + Send;
}

/// The webhook secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret {secret_id} could not be read; check its name and the function's secretsmanager:GetSecretValue permission"
    )]
    Unreadable {
        secret_id: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("secret {secret_id} has no string value: store it as a plain string")]
    Empty { secret_id: String },
}

/// Where the GitHub webhook's secret is kept.
pub trait WebhookSecretSource: Send + Sync {
    /// The secrets that verify deliveries now: the current one and, during a rotation's grace period, the previous.
    fn read(&self) -> impl Future<Output = Result<crate::github::webhook::WebhookSecrets, SecretError>> + Send;
}

/// Where one of sluice's own secrets is kept (the status page's key, the GitHub token).
pub trait SecretSource: Send + Sync {
    /// Its current value.
    fn read(&self) -> impl Future<Output = Result<secrecy::SecretString, SecretError>> + Send;
}

/// A request GitHub did not carry out.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// For good: a bad token, a repository the token cannot reach, a request GitHub finds invalid.
    #[error("GitHub answered {status} to {what}: {message}")]
    Refused { what: String, status: u16, message: String },
    /// For now: GitHub unreachable, failing (5xx), or rate-limiting the token.
    #[error("GitHub did not carry out {what}: {message}")]
    Unavailable { what: String, message: String },
}

/// One attempt at a delivery of a repository webhook, as GitHub lists them
/// (<https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDelivery {
    /// The attempt's id: what a redelivery names.
    pub id: u64,
    /// The delivery's `X-GitHub-Delivery`, the same for its redeliveries.
    pub guid: String,
    /// `push`, `ping`, ...
    pub event: String,
    /// The HTTP status sluice answered; 0 when GitHub got no answer (could not connect, timed out).
    pub status_code: u16,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
}

/// A repository webhook's recent deliveries, and their redelivery: how sluice has GitHub send again a push it could
/// not record (GitHub does not redeliver by itself).
pub trait WebhookDeliveries: Send + Sync {
    /// The hook's most recent delivery attempts (one page of them, newest first).
    fn deliveries(
        &self,
        credentials: &crate::github::sign_in::GitHubCredentials,
        repository: &str,
        hook_id: u64,
    ) -> impl Future<Output = Result<Vec<HookDelivery>, GitHubError>> + Send;

    /// Has GitHub deliver attempt `delivery` again (202).
    fn redeliver(
        &self,
        credentials: &crate::github::sign_in::GitHubCredentials,
        repository: &str,
        hook_id: u64,
        delivery: u64,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
}

/// How a repository's commits relate: what orders two pushes of a ref made in the same second.
pub trait CommitHistory: Send + Sync {
    /// How `commit` stands against `base` (GitHub's compare of `base...commit`): `Ahead` when it descends from it.
    fn compare(
        &self,
        credentials: &crate::github::sign_in::GitHubCredentials,
        repository: &str,
        base: &str,
        commit: &str,
    ) -> impl Future<Output = Result<crate::pipeline::CommitOrder, GitHubError>> + Send;
}

/// A commit status to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus<'a> {
    /// `owner/name`.
    pub repository: &'a str,
    pub commit: &'a str,
    /// `pending`, `success`, `failure` or `error`.
    pub state: &'a str,
    /// `sluice/<pipeline>`.
    pub context: &'a str,
    pub description: &'a str,
    /// The run's page.
    pub target_url: Option<&'a str>,
}

/// A Deployment to create, or to find (by the run it is for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRequest<'a> {
    pub repository: &'a str,
    pub commit: &'a str,
    pub environment: &'a str,
    pub description: &'a str,
    pub pipeline: &'a str,
    pub execution_id: &'a str,
}

/// A Deployment's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStatus<'a> {
    pub repository: &'a str,
    pub deployment: u64,
    /// `queued`, `in_progress`, `success`, `failure` or `inactive`.
    pub state: &'a str,
    pub description: &'a str,
    /// The run's page.
    pub log_url: Option<&'a str>,
}

/// Where the people who push see what became of their commit: GitHub's commit statuses and Deployments. Each call
/// carries the credentials it is made with: a token is sent as it is; for a GitHub App, the adapter gets (and keeps
/// until it nearly expires) an installation access token for the repository.
pub trait CommitReporter: Send + Sync {
    fn set_commit_status(
        &self,
        credentials: &crate::github::sign_in::GitHubCredentials,
        status: &CommitStatus<'_>,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;

    /// The Deployment already made for the run, if there is one (its payload names the run).
    fn find_deployment(
        &self,
        credentials: &crate::github::sign_in::GitHubCredentials,
        deployment: &DeploymentRequest<'_>,
    ) -> impl Future<Output = Result<Option<u64>, GitHubError>> + Send;

    /// Creates the run's Deployment; its id.
    fn create_deployment(
        &self,
        credentials: &crate::github::sign_in::GitHubCredentials,
        deployment: &DeploymentRequest<'_>,
    ) -> impl Future<Output = Result<u64, GitHubError>> + Send;

    fn set_deployment_status(
        &self,
        credentials: &crate::github::sign_in::GitHubCredentials,
        status: &DeploymentStatus<'_>,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
}

/// SNS refuses subjects longer than this.
pub const MAX_SUBJECT: usize = 100;

/// One message for an SNS topic's subscribers, ready for `Publish`
/// (<https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    pub subject: String,
    /// The email's body.
    pub text: String,
    /// The `Message` for `MessageStructure: json`: `{"default": <facts as JSON>, "email": <text>}`, so that email
    /// subscribers get the text and every other protocol the JSON.
    pub message: String,
    /// A personal approval request: the approver it is for, sent as the [`crate::definitions::APPROVER_ATTRIBUTE`]
    /// message attribute, which only their subscription's filter policy accepts.
    pub approver: Option<String>,
}

/// One subscription of a topic, as SNS has it: what a personal approval request's sending checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub arn: String,
    pub protocol: String,
    pub endpoint: String,
    /// Waiting for its owner's confirmation: it receives nothing.
    pub pending: bool,
    /// Its `FilterPolicy` (JSON) and `FilterPolicyScope`, if it has them.
    pub filter_policy: Option<String>,
    pub filter_scope: Option<String>,
}

/// A message for a topic could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The topic refused it for good: it does not exist, sluice may not publish to it, or the message is invalid.
    #[error("topic {topic} refused the message: {message}")]
    Refused {
        topic: String,
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("topic {topic} could not be reached")]
    Unavailable {
        topic: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Tells people something through an SNS topic (the approvers that a run waits for them, or anyone subscribed how
/// a run ended).
pub trait TopicNotifier: Send + Sync {
    fn notify(&self, topic_arn: &str, message: &TopicMessage) -> impl Future<Output = Result<(), NotifyError>> + Send;

    /// The topic's subscriptions, with their filter policies.
    fn subscriptions(&self, topic_arn: &str) -> impl Future<Output = Result<Vec<Subscription>, NotifyError>> + Send;
}

/// Where the approval pages are served could not be found out.
#[derive(Debug, thiserror::Error)]
#[error("the approval function's URL is unknown: {message}")]
pub struct SiteError {
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Where approval links point: the approval function's own URL.
pub trait ReviewSite: Send + Sync {
    /// The base URL, ending in `/`.
    fn base_url(&self) -> impl Future<Output = Result<String, SiteError>> + Send;
}

/// A review site at a URL known in advance (a custom domain, or the sandbox's loopback URL).
#[derive(Debug, Clone)]
pub struct FixedSite(pub String);

impl ReviewSite for FixedSite {
    async fn base_url(&self) -> Result<String, SiteError> {
        Ok(crate::present::text::with_slash(&self.0))
    }
}

impl<T: EventPublisher> EventPublisher for std::sync::Arc<T> {
    fn publish(&self, events: &[SluiceEvent]) -> impl Future<Output = Result<(), PublishError>> + Send {
        self.as_ref().publish(events)
    }
}

impl<T: TopicNotifier> TopicNotifier for std::sync::Arc<T> {
    fn notify(&self, topic_arn: &str, message: &TopicMessage) -> impl Future<Output = Result<(), NotifyError>> + Send {
        self.as_ref().notify(topic_arn, message)
    }

    fn subscriptions(&self, topic_arn: &str) -> impl Future<Output = Result<Vec<Subscription>, NotifyError>> + Send {
        self.as_ref().subscriptions(topic_arn)
    }
}

/// A deployment could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The service said no for good (no such service or group, access denied, an invalid task definition).
    #[error("{service} refused: {message}")]
    Refused {
        service: &'static str,
        message: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The deployment group already runs a deployment; this one starts when it ends.
    #[error("deployment group {group} already has an active deployment")]
    Busy {
        group: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("{service} could not be reached")]
    Unavailable {
        service: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Where a deployment is, by the service's record of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeploymentProgress {
    /// Created, queued, in progress, baking or ready: not over.
    #[default]
    Going,
    Succeeded,
    Failed,
    Stopped,
}

/// What CodeDeploy's record of a deployment (GetDeployment) says beyond its events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentReport {
    /// Its `status`.
    pub progress: DeploymentProgress,
    /// Why it failed or stopped, in CodeDeploy's words.
    pub message: Option<String>,
    /// True when CodeDeploy rolled the deployment back (its `rollbackInfo` names the rollback deployment).
    pub rolled_back: bool,
    /// The deployment's description (CodeDeploy): sluice's names the run that created it.
    pub description: Option<String>,
}

/// Registers the task definitions runs deploy (ECS).
pub trait TaskDefinitionRegistry: Send + Sync {
    /// Registers `definition`; returns its ARN.
    fn register(
        &self,
        definition: &crate::deploy::TaskDefinition,
    ) -> impl Future<Output = Result<String, DeployError>> + Send;

    /// The ARN of one of `family`'s newest revisions tagged `key = value`, if any (how a retried effect finds the
    /// task definition it registered before).
    fn find_tagged(
        &self,
        family: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<Option<String>, DeployError>> + Send;
}

/// Starts blue/green deployments (CodeDeploy), and finds one a retried effect already started.
pub trait BlueGreenDeployments: Send + Sync {
    /// The id of the deployment of `application`'s `group` created in the last day whose description carries
    /// `marker`, if any.
    fn find(
        &self,
        application: &str,
        group: &str,
        marker: &str,
    ) -> impl Future<Output = Result<Option<String>, DeployError>> + Send;

    /// Creates the deployment; returns its id.
    fn create(
        &self,
        request: &crate::deploy::BlueGreenRequest,
    ) -> impl Future<Output = Result<String, DeployError>> + Send;

    /// CodeDeploy's record of the deployment; `None` if it has none.
    fn report(&self, deployment_id: &str)
    -> impl Future<Output = Result<Option<DeploymentReport>, DeployError>> + Send;

    /// The deployments of `application`'s `group` that have not ended (created, queued, in progress, ready,
    /// baking): those in the way of a new one.
    fn active(&self, application: &str, group: &str) -> impl Future<Output = Result<Vec<String>, DeployError>> + Send;

    /// Stops the deployment and rolls it back (StopDeployment with `autoRollbackEnabled`). One that has already
    /// ended is not an error.
    fn stop(&self, deployment_id: &str) -> impl Future<Output = Result<(), DeployError>> + Send;
}

/// Notes that a run stopped another deployment to make way for its own (superseded mode), so that the run that
/// deployment belongs to, told of the stop, ends `superseded` and names the run that superseded it.
pub trait Supersessions: Send + Sync {
    /// Records that `stopped` was stopped for `by`, of `pipeline`; [`PipelineStore::find`] of
    /// [`stopped_link`]`(stopped)` reads it back.
    fn record_stop(
        &self,
        stopped: &str,
        pipeline: &str,
        by: &ExecutionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The id under which a stopped deployment finds the run it was stopped for ([`Supersessions::record_stop`]).
pub fn stopped_link(deployment_id: &str) -> String {
    format!("stopped:{deployment_id}")
}

/// What ECS's record of a service (DescribeServices) says of one of its deployments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutReport {
    /// The deployment's `rolloutState` and `rolloutStateReason`, while the service lists it (ECS drops a deployment
    /// from the list once another has replaced it).
    pub deployment: Option<(DeploymentProgress, Option<String>)>,
    /// The task definition the service runs now (its primary deployment's).
    pub task_definition: Option<String>,
}

/// What UpdateService answered: the deployment it started, and the task definition the service ran before.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutStarted {
    /// The service's primary deployment: the one rolling out the requested task definition.
    pub deployment_id: String,
    /// The task definition of the newest other deployment the service still lists (`None` when it lists none, as
    /// once an earlier rollout has completed and a retry updates to the same task definition).
    pub previous_task_definition: Option<String>,
}

/// Rolls an ECS service to a new task definition.
pub trait RollingUpdates: Send + Sync {
    /// Updates the service (to the task definition it already runs, nothing starts, and the answer names the
    /// deployment that rolled it out).
    fn update(
        &self,
        request: &crate::deploy::RollingRequest,
    ) -> impl Future<Output = Result<RolloutStarted, DeployError>> + Send;

    /// Where deployment `deployment_id` of `cluster`'s `service` is; `None` if ECS knows no such service.
    fn rollout(
        &self,
        cluster: &str,
        service: &str,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<RolloutReport>, DeployError>> + Send;
}

/// What an ECS service runs now: the task definition an approver compares a release against.
pub trait RunningServices: Send + Sync {
    /// The task definition `cluster`'s `service` runs now (its primary deployment's, or its primary task set's under
    /// CodeDeploy), and its shape; `None` if ECS has no such active service.
    fn running(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<Option<RunningTasks>, DeployError>> + Send;

    /// The ARN of the task definition `cluster`'s `service` runs now, as [`RunningServices::running`] names it,
    /// without describing it; `None` if ECS has no such active service.
    fn task_definition(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<Option<String>, DeployError>> + Send;
}

/// What CloudWatch says of one alarm now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmReading {
    pub name: String,
    /// Whether its state is ALARM (not OK, not INSUFFICIENT_DATA).
    pub in_alarm: bool,
    /// Its `stateReason`.
    pub reason: Option<String>,
}

/// Alarm states could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// CloudWatch said no for good (access denied: an alarm outside the stack's `SoakAlarms`).
    #[error("CloudWatch refused: {message}")]
    Refused {
        message: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("CloudWatch could not be reached")]
    Unavailable {
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// The states of the CloudWatch alarms that watch a soak.
pub trait AlarmStates: Send + Sync {
    /// The state of each metric alarm of `names` CloudWatch has; one it has none of is absent.
    fn states(&self, names: &[String]) -> impl Future<Output = Result<Vec<AlarmReading>, AlarmError>> + Send;
}

/// The tasks an ECS service runs: what the digest check ([`crate::deploy::digests`]) judges once a deployment
/// completed.
pub trait ServiceTasks: Send + Sync {
    /// The tasks `cluster`'s `service` runs or is starting (ListTasks with desired status RUNNING, then
    /// DescribeTasks), at most [`MAX_TASKS_CHECKED`] (ECS refuses a service it does not know).
    fn tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<Vec<crate::deploy::RunningTask>, DeployError>> + Send;
}

/// How many of a service's tasks the digest check reads: one page of ListTasks, one call of DescribeTasks.
pub const MAX_TASKS_CHECKED: i32 = 100;

/// The task definition a service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTasks {
    /// Its ARN.
    pub task_definition: String,
    pub shape: crate::deploy::compare::TaskShape,
}

/// What UpdateService answered for an ECS-native deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NativeStarted {
    /// The service's primary deployment (`ecs-svc/...`): what "ECS Deployment State Change" events name.
    pub deployment_id: String,
    /// The service deployment ARN (`service.currentServiceDeployment`): what lifecycle hooks and
    /// DescribeServiceDeployments name.
    pub service_deployment: Option<String>,
}

/// What ECS's record of a service deployment (DescribeServiceDeployments) says of how it went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceDeploymentReport {
    pub progress: DeploymentProgress,
    /// Its `status` as ECS words it (`SUCCESSFUL`, `ROLLBACK_SUCCESSFUL`, `STOPPED`, ...).
    pub status: String,
    pub status_reason: Option<String>,
    /// True when ECS rolled it back (a `ROLLBACK_*` status, or a `rollback` record).
    pub rolled_back: bool,
    /// Why it was rolled back, in ECS's words.
    pub rollback_reason: Option<String>,
    /// The deployment's alarms that went into ALARM.
    pub triggered_alarms: Vec<String>,
    /// Whether the circuit breaker tripped.
    pub circuit_breaker_tripped: bool,
    /// The lifecycle hooks that timed out (their ids).
    pub timed_out_hooks: Vec<String>,
    /// The PAUSE hook the deployment waits at for ContinueServiceDeployment, if it waits.
    pub awaiting: Option<AwaitingPause>,
}

/// A PAUSE hook in `AWAITING_ACTION`, as DescribeServiceDeployments' `lifecycleHookDetails` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingPause {
    pub hook_id: String,
    /// The service deployment's `lifecycleStage` while paused, for the record: ECS's enum of those has no hook
    /// stage such as PRE_PRODUCTION_TRAFFIC_SHIFT, so the pause is known by its hook, not by this.
    pub stage: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub timeout_action: Option<crate::definitions::PauseAction>,
}

/// ECS-native deployments (blue/green, linear, canary): ECS moves the traffic and calls the hooks.
pub trait NativeDeployments: Send + Sync {
    /// Updates the service with the task definition and the strategy's deployment configuration.
    fn start(
        &self,
        request: &crate::deploy::NativeRequest,
    ) -> impl Future<Output = Result<NativeStarted, DeployError>> + Send;

    /// ECS's record of the service deployment; `None` if it has none.
    fn describe(
        &self,
        service_deployment: &str,
    ) -> impl Future<Output = Result<Option<ServiceDeploymentReport>, DeployError>> + Send;

    /// The service deployments in the way of one that rolls out `task_definition`: the service's PENDING and
    /// IN_PROGRESS ones (ListServiceDeployments), or none once the service runs `task_definition` already (an
    /// earlier attempt of the same start updated it).
    fn in_the_way(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> impl Future<Output = Result<Vec<String>, DeployError>> + Send;

    /// Stops the service deployment and rolls it back (StopServiceDeployment with ROLLBACK). One that has already
    /// ended is not an error.
    fn stop(&self, service_deployment: &str) -> impl Future<Output = Result<(), DeployError>> + Send;

    /// Continues the deployment paused at `hook_id`, or rolls it back (ContinueServiceDeployment).
    fn resume(
        &self,
        service_deployment: &str,
        hook_id: &str,
        action: crate::definitions::PauseAction,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;
}

/// Answers CodeDeploy's lifecycle hooks (the hooks function's side of a blue/green deployment).
pub trait LifecycleHooks: Send + Sync {
    /// The lifecycle event of the deployment that waits for a hook now (`BeforeInstall` ... `AfterAllowTraffic`);
    /// `None` if none does.
    fn waiting_event(&self, deployment_id: &str) -> impl Future<Output = Result<Option<String>, DeployError>> + Send;

    /// Reports the hook's status (PutLifecycleEventHookExecutionStatus). A hook CodeDeploy already counts as
    /// answered is answered: reporting it again is not an error.
    fn answer(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        status: crate::pipeline::HookStatus,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;
}

/// One HTTP request of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub timeout: std::time::Duration,
}

/// What a probed URL answered: its status and the first [`PROBE_BODY`] bytes of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// How much of a body a check reads.
pub const PROBE_BODY: usize = 64 * 1024;

/// A probe got no answer: why, in a few words ("timed out after 5 s", "connection refused").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// Makes the HTTP requests of deployment checks.
pub trait HttpProbe: Send + Sync {
    fn probe(&self, probe: &Probe<'_>) -> impl Future<Output = Result<ProbeAnswer, ProbeError>> + Send;
}

/// One store shared by the use case and an effect runner that reads runs (the notifier).
impl<T: PipelineStore> PipelineStore for std::sync::Arc<T> {
    fn load(&self, pipeline: &str) -> impl Future<Output = Result<Option<Stored<PipelineState>>, StoreError>> + Send {
        self.as_ref().load(pipeline)
    }

    fn save(&self, write: &Write<'_>) -> impl Future<Output = Result<Version, StoreError>> + Send {
        self.as_ref().save(write)
    }

    fn execution(&self, id: &ExecutionId) -> impl Future<Output = Result<Option<Execution>, StoreError>> + Send {
        self.as_ref().execution(id)
    }

    fn pauses_apart(&self, id: &ExecutionId) -> impl Future<Output = Result<Vec<PausesApart>, StoreError>> + Send {
        self.as_ref().pauses_apart(id)
    }

    fn find(&self, aws_id: &str) -> impl Future<Output = Result<Option<AwsLink>, StoreError>> + Send {
        self.as_ref().find(aws_id)
    }

    fn history(&self, pipeline: &str, limit: usize) -> impl Future<Output = Result<Vec<Execution>, StoreError>> + Send {
        self.as_ref().history(pipeline, limit)
    }

    fn record_receipt(&self, receipt: &Receipt) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.as_ref().record_receipt(receipt)
    }

    fn receipt(&self, key: &ReceiptKey) -> impl Future<Output = Result<Option<Receipt>, StoreError>> + Send {
        self.as_ref().receipt(key)
    }
}
