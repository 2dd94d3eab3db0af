//! In-memory twins of the ports, for use-case and handler tests. They keep the same promises as the AWS adapters
//! (versions, receipts, newest-first history), which the integration tests check against DynamoDB itself.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::contract::events::SluiceEvent;
use crate::definitions::{Approval, BlueGreen, Build, DeployTarget, ExecutionMode};
use crate::pipeline::{Effect, EffectKind, Event, Plan, SourceFacts};
use crate::pipeline::{Execution, ExecutionId, PausesApart, PipelineState, Stage};
use crate::usecases::{EffectError, EffectRunner};
use chrono::{DateTime, Utc};

use crate::contract::ports::{
    ArtifactError, ArtifactLocation, ArtifactStore, AwsLink, BuildReport, BuildRequest, BuildStartError, BuildStarter,
    DefinitionsStore, EventPublisher, PipelineStore, PublishError, PublishedDefinitions, Receipt, ReceiptKey,
    StoreError, Stored, Version, Write,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Tables {
    states: HashMap<String, Stored<PipelineState>>,
    executions: HashMap<ExecutionId, Execution>,
    /// The pauses runs keep apart, by run, stage and first pause.
    apart: HashMap<(ExecutionId, Stage, usize), PausesApart>,
    apart_writes: usize,
    receipts: HashMap<ReceiptKey, Receipt>,
    links: HashMap<String, AwsLink>,
    definitions: Option<PublishedDefinitions>,
    writes: usize,
    /// Saves the DynamoDB store makes a transaction of: more than the pipeline's item alone.
    transactions: usize,
    loads: usize,
    unreachable: Vec<String>,
    /// Saves still to be refused as throttled.
    busy: usize,
    /// Saves to let through (or refuse otherwise) before the throttling starts.
    busy_after: usize,
}

impl Tables {
    /// Run `item` as the DynamoDB store reads it: while it is in progress, the pipeline's copy.
    fn current(&self, item: &Execution) -> Execution {
        let state = self.states.get(&item.pipeline).map(|stored| &stored.value);
        state.and_then(|state| state.in_progress_copy(item)).unwrap_or(item).clone()
    }
}

/// `PipelineStore` in memory.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    tables: Mutex<Tables>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, reads and writes of `pipeline` fail as an unreachable DynamoDB would.
    pub fn unreachable_for(&self, pipeline: &str) {
        lock(&self.tables).unreachable.push(pipeline.to_owned());
    }

    /// The next `saves` saves are refused as throttled (DynamoDB's ProvisionedThroughputExceeded, TransactionConflict).
    pub fn busy_for(&self, saves: usize) {
        lock(&self.tables).busy = saves;
    }

    /// As [`InMemoryStore::busy_for`], once `first` more saves were tried.
    pub fn busy_after(&self, first: usize, saves: usize) {
        let mut tables = lock(&self.tables);
        (tables.busy_after, tables.busy) = (first, saves);
    }

    /// Forgets every receipt, as the table's TTL does once they are old enough.
    pub fn forget_receipts(&self) {
        lock(&self.tables).receipts.clear();
    }

    /// How many saves landed so far.
    pub fn writes(&self) -> usize {
        lock(&self.tables).writes
    }

    /// How many of the saves that landed the DynamoDB store makes a transaction of (more than the pipeline's item).
    pub fn transactions(&self) -> usize {
        lock(&self.tables).transactions
    }

    /// How many times a pipeline's state was read so far.
    pub fn loads(&self) -> usize {
        lock(&self.tables).loads
    }

    /// Run `id`'s own item, as written (not the pipeline's copy that [`PipelineStore::execution`] reads while the
    /// run is in progress).
    pub fn run_item(&self, id: &ExecutionId) -> Option<Execution> {
        lock(&self.tables).executions.get(id).cloned()
    }

    /// How many batches of pauses run `id` keeps apart, and how many times such a batch was written.
    pub fn batches_apart(&self, id: &ExecutionId) -> (usize, usize) {
        let tables = lock(&self.tables);
        (tables.apart.keys().filter(|(run, ..)| run == id).count(), tables.apart_writes)
    }

    /// Replaces a pipeline's stored state, bumping its version, as another writer would: the next save based on the
    /// version read before fails with a conflict.
    pub fn meddle(&self, pipeline: &str, change: impl FnOnce(&mut PipelineState)) {
        let mut tables = lock(&self.tables);
        if let Some(stored) = tables.states.get_mut(pipeline) {
            change(&mut stored.value);
            stored.version = Version(stored.version.0 + 1);
        }
    }
}

impl crate::contract::ports::Supersessions for InMemoryStore {
    async fn record_stop(&self, stopped: &str, pipeline: &str, by: &ExecutionId) -> Result<(), StoreError> {
        let aws_id = crate::contract::ports::stopped_link(stopped);
        let link =
            AwsLink { aws_id: aws_id.clone(), pipeline: pipeline.to_owned(), execution: by.clone(), expires_at: None };
        lock(&self.tables).links.insert(aws_id, link);
        Ok(())
    }
}

impl PipelineStore for InMemoryStore {
    async fn load(&self, pipeline: &str) -> Result<Option<Stored<PipelineState>>, StoreError> {
        let mut tables = lock(&self.tables);
        tables.loads += 1;
        if tables.unreachable.iter().any(|p| p == pipeline) {
            return Err(StoreError::Unavailable { source: "the table could not be reached".into() });
        }
        Ok(tables.states.get(pipeline).cloned())
    }

    async fn save(&self, write: &Write<'_>) -> Result<Version, StoreError> {
        let mut tables = lock(&self.tables);
        // In the order the DynamoDB store reports a refused transaction's reasons: a receipt already recorded, then
        // throttling, then a version another writer moved past.
        let state = write.state;
        if let Some(receipt) = write.receipt
            && tables.receipts.contains_key(&receipt.key)
        {
            return Err(StoreError::Duplicate { key: receipt.key.clone() });
        }
        if tables.busy_after > 0 {
            tables.busy_after -= 1;
        } else if tables.busy > 0 {
            tables.busy -= 1;
            let pipeline = write.state.pipeline.clone();
            return Err(StoreError::Busy { pipeline, reason: "ProvisionedThroughputExceeded (the test)".into() });
        }
        let current = tables.states.get(&state.pipeline).map(|stored| stored.version);
        if current != write.expected {
            return Err(StoreError::Conflict { pipeline: state.pipeline.clone() });
        }
        // DynamoDB takes at most 100 items in a transaction, each once.
        let items = 1 + write.executions.len() + usize::from(write.receipt.is_some()) + write.links.len();
        let mut keys: Vec<String> = write.links.iter().map(|link| link.aws_id.clone()).collect();
        keys.extend(write.apart.iter().map(|apart| format!("{}#{}#{}", apart.execution, apart.stage, apart.from)));
        keys.sort();
        keys.dedup();
        if items + write.apart.len() > 100 || keys.len() != write.links.len() + write.apart.len() {
            let message = format!("{} items, or one item twice, in a transaction", items + write.apart.len());
            return Err(StoreError::Invalid { pipeline: state.pipeline.clone(), message });
        }
        let version = Version(write.expected.map_or(1, |Version(v)| v + 1));
        // As the pipeline's item stores it (finished runs abridged).
        tables.states.insert(state.pipeline.clone(), Stored { value: state.stored(), version });
        for execution in &write.executions {
            let mut stored = (*execution).clone();
            stored.set_apart();
            tables.executions.insert(execution.id.clone(), stored);
        }
        for apart in &write.apart {
            tables.apart.insert((apart.execution.clone(), apart.stage, apart.from), apart.clone());
            tables.apart_writes += 1;
        }
        if let Some(receipt) = write.receipt {
            tables.receipts.insert(receipt.key.clone(), receipt.clone());
        }
        for link in &write.links {
            tables.links.insert(link.aws_id.clone(), link.clone());
        }
        tables.writes += 1;
        if !write.is_state_alone() {
            tables.transactions += 1;
        }
        Ok(version)
    }

    async fn execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        let tables = lock(&self.tables);
        if let Some(execution) = tables.executions.get(id) {
            return Ok(Some(tables.current(execution)));
        }
        // Recorded without its own item yet: the pipeline's item has it.
        let named = tables.states.iter().filter(|(pipeline, _)| id.0.starts_with(&format!("{pipeline}-")));
        let mut found = named.filter_map(|(_, stored)| stored.value.execution(id));
        Ok(found.find(|run| !run.abridged).cloned())
    }

    async fn pauses_apart(&self, id: &ExecutionId) -> Result<Vec<PausesApart>, StoreError> {
        let tables = lock(&self.tables);
        Ok(tables.apart.iter().filter(|((run, ..), _)| run == id).map(|(_, apart)| apart.clone()).collect())
    }

    async fn find(&self, aws_id: &str) -> Result<Option<AwsLink>, StoreError> {
        Ok(lock(&self.tables).links.get(aws_id).cloned())
    }

    async fn history(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        let tables = lock(&self.tables);
        let mut executions: Vec<Execution> = tables
            .executions
            .values()
            .filter(|execution| execution.pipeline == pipeline)
            .map(|execution| tables.current(execution))
            .collect();
        // Those recorded without their own item yet, from the pipeline's item.
        if let Some(stored) = tables.states.get(pipeline) {
            let unwritten = stored.value.executions.iter().filter(|run| !tables.executions.contains_key(&run.id));
            executions.extend(unwritten.filter(|run| !run.abridged).cloned());
        }
        executions.sort_by_key(|execution| std::cmp::Reverse(execution.seq));
        executions.truncate(limit);
        Ok(executions)
    }

    async fn record_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        let mut tables = lock(&self.tables);
        if tables.receipts.contains_key(&receipt.key) {
            return Err(StoreError::Duplicate { key: receipt.key.clone() });
        }
        tables.receipts.insert(receipt.key.clone(), receipt.clone());
        Ok(())
    }

    async fn receipt(&self, key: &ReceiptKey) -> Result<Option<Receipt>, StoreError> {
        Ok(lock(&self.tables).receipts.get(key).cloned())
    }
}

impl DefinitionsStore for InMemoryStore {
    async fn current(&self) -> Result<Option<PublishedDefinitions>, StoreError> {
        Ok(lock(&self.tables).definitions.clone())
    }

    async fn publish(&self, text: &str, replacing: Option<u64>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tables = lock(&self.tables);
        if tables.definitions.as_ref().map(|d| d.revision) != replacing {
            return Err(StoreError::Conflict { pipeline: "definitions".into() });
        }
        let revision = replacing.map_or(1, |r| r + 1);
        tables.definitions = Some(PublishedDefinitions { text: text.to_owned(), revision, published_at: now });
        Ok(revision)
    }
}

/// `EventPublisher` that keeps what it was given; `refuse_entries` makes the bus refuse entries of the next
/// publish, by their place, with a code, as PutEvents does.
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    published: Mutex<Vec<SluiceEvent>>,
    refusals: Mutex<Vec<(usize, String)>>,
}

impl RecordingPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next publish has the entries at these places refused with these codes (the others are accepted).
    pub fn refuse_entries(&self, refusals: &[(usize, &str)]) {
        *lock(&self.refusals) = refusals.iter().map(|(index, code)| (*index, (*code).to_owned())).collect();
    }

    /// Everything published so far, in order.
    pub fn published(&self) -> Vec<SluiceEvent> {
        lock(&self.published).clone()
    }
}

impl EventPublisher for RecordingPublisher {
    async fn publish(&self, events: &[SluiceEvent]) -> Result<(), PublishError> {
        let refusals = std::mem::take(&mut *lock(&self.refusals));
        let refused: Vec<crate::contract::ports::RefusedEntry> = refusals
            .into_iter()
            .filter(|(index, _)| *index < events.len())
            .map(|(index, code)| crate::contract::ports::RefusedEntry {
                index,
                code,
                message: "refused by the test".into(),
            })
            .collect();
        let accepted = events.iter().enumerate().filter(|(i, _)| !refused.iter().any(|r| r.index == *i));
        lock(&self.published).extend(accepted.map(|(_, event)| event.clone()));
        if refused.is_empty() { Ok(()) } else { Err(PublishError::Rejected { total: events.len(), entries: refused }) }
    }
}

/// `TopicNotifier` that keeps each (topic, email) it was given; `refuse_next` makes the next one fail for good,
/// as SNS does for a topic that does not exist.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<(String, crate::contract::ports::TopicMessage)>>,
    refuse: Mutex<usize>,
    /// What `subscriptions` answers.
    pub subscriptions: Mutex<Vec<crate::contract::ports::Subscription>>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<(String, crate::contract::ports::TopicMessage)> {
        lock(&self.sent).clone()
    }

    pub fn refuse_next(&self, count: usize) {
        *lock(&self.refuse) = count;
    }
}

impl crate::contract::ports::TopicNotifier for RecordingNotifier {
    async fn notify(
        &self,
        topic_arn: &str,
        email: &crate::contract::ports::TopicMessage,
    ) -> Result<(), crate::contract::ports::NotifyError> {
        let mut refuse = lock(&self.refuse);
        if *refuse > 0 {
            *refuse -= 1;
            return Err(crate::contract::ports::NotifyError::Refused {
                topic: topic_arn.to_owned(),
                message: "NotFound: Topic does not exist".to_owned(),
                source: "refused by the test".into(),
            });
        }
        lock(&self.sent).push((topic_arn.to_owned(), email.clone()));
        Ok(())
    }

    async fn subscriptions(
        &self,
        _topic_arn: &str,
    ) -> Result<Vec<crate::contract::ports::Subscription>, crate::contract::ports::NotifyError> {
        Ok(lock(&self.subscriptions).clone())
    }
}

/// `EffectRunner` that records what it carried out and answers as AWS would: a StartBuild gets a build id
/// (`build-<execution>`), so the run moves on. It owns every kind unless told otherwise ([`RecordingRunner::owning`]);
/// `fail_next(n)` makes the next `n` effects fail for now, `refuse_next(n)` for good.
#[derive(Debug)]
pub struct RecordingRunner {
    kinds: Vec<EffectKind>,
    ran: Mutex<Vec<(String, Effect)>>,
    failures: Mutex<(usize, bool)>,
}

impl Default for RecordingRunner {
    fn default() -> Self {
        Self::owning(&[
            EffectKind::StartBuild,
            EffectKind::RequestApproval,
            EffectKind::StartDeployment,
            EffectKind::ReportHookStatus,
            EffectKind::Publish,
        ])
    }
}

impl RecordingRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// A runner that carries out only `kinds`, as one function does.
    pub fn owning(kinds: &[EffectKind]) -> Self {
        Self { kinds: kinds.to_vec(), ran: Mutex::default(), failures: Mutex::default() }
    }

    pub fn fail_next(&self, count: usize) {
        *lock(&self.failures) = (count, false);
    }

    pub fn refuse_next(&self, count: usize) {
        *lock(&self.failures) = (count, true);
    }

    /// The (id, effect) pairs carried out so far, in order.
    pub fn ran(&self) -> Vec<(String, Effect)> {
        lock(&self.ran).clone()
    }
}

impl EffectRunner for RecordingRunner {
    /// None of its own: it carries out the kinds it is made with.
    const KINDS: &'static [EffectKind] = &[];

    fn kinds(&self) -> &[EffectKind] {
        &self.kinds
    }

    async fn run(&self, id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        {
            let mut failures = lock(&self.failures);
            if failures.0 > 0 {
                failures.0 -= 1;
                let error = if failures.1 {
                    EffectError::permanent("an effect", "AccessDeniedException: the runner was told to refuse")
                } else {
                    EffectError::transient("an effect", "the runner was told to fail")
                };
                return Err(error);
            }
        }
        lock(&self.ran).push((id.to_owned(), effect.clone()));
        Ok(match effect {
            Effect::StartBuild { execution_id, .. } => Some(Event::BuildStarted {
                execution_id: execution_id.clone(),
                build_id: format!("build-{execution_id}"),
            }),
            _ => None,
        })
    }
}

/// The plan most tests need: CodeBuild project `web-build` (with `STAGE=prod`), CodeDeploy blue/green to `prod/web`,
/// and, if `approval`, an approval by topic `approvals` open for an hour.
pub fn plan(approval: bool) -> Plan {
    Plan {
        github: None,
        build: Build {
            project: "web-build".into(),
            environment: std::collections::BTreeMap::from([("STAGE".into(), "prod".into())]),
        },
        stages: crate::definitions::table_stages(
            approval.then(|| Approval {
                topic_arn: "arn:aws:sns:eu-west-1:123456789012:approvals".into(),
                timeout_secs: 3600,
                approvers: None,
            }),
            DeployTarget::BlueGreen(blue_green(Vec::new())),
            None,
        ),
        notify: None,
    }
}

/// A CodeDeploy blue/green deployment of service `web` in cluster `prod` (application `web`, group `web-prod`, all
/// at once) running `checks`.
pub fn blue_green(checks: Vec<crate::definitions::Check>) -> BlueGreen {
    BlueGreen {
        cluster: "prod".into(),
        service: "web".into(),
        application: "web".into(),
        deployment_group: "web-prod".into(),
        deployment_config: "CodeDeployDefault.ECSAllAtOnce".into(),
        container: None,
        checks,
        allow_host: false,
    }
}

/// A rolling update of service `web` in cluster `prod` (100 % to 200 %, circuit breaker on with rollback) running
/// `checks`.
pub fn rolling(checks: Vec<crate::definitions::Check>) -> crate::definitions::Rolling {
    crate::definitions::Rolling {
        cluster: "prod".into(),
        service: "web".into(),
        minimum_healthy_percent: 100,
        maximum_percent: 200,
        circuit_breaker: crate::definitions::CircuitBreaker { enable: true, rollback: true },
        container: None,
        checks,
        allow_host: false,
    }
}

/// An ECS-native deployment of service `web` in cluster `prod` shifting traffic as `shift` (no bake time, alarms,
/// checks or pause; circuit breaker on with rollback).
pub fn ecs_native(shift: crate::definitions::TrafficShift) -> crate::definitions::EcsNative {
    crate::definitions::EcsNative {
        cluster: "prod".into(),
        service: "web".into(),
        shift,
        bake_time_minutes: 0,
        alarms: Vec::new(),
        circuit_breaker: crate::definitions::CircuitBreaker { enable: true, rollback: true },
        container: None,
        checks: Vec::new(),
        approval: None,
        allow_host: false,
    }
}

/// An ECS-native deployment as [`ecs_native`] makes it, that asks the approvers (topic `approvers`) at its
/// PRE_PRODUCTION_TRAFFIC_SHIFT pauses, rolling back if nobody decides within `timeout_minutes`.
pub fn ecs_native_asking(
    shift: crate::definitions::TrafficShift,
    timeout_minutes: u32,
) -> crate::definitions::EcsNative {
    crate::definitions::EcsNative {
        approval: Some(crate::definitions::PauseApproval {
            stage: crate::definitions::PRE_PRODUCTION_TRAFFIC_SHIFT.into(),
            topic_arn: "arn:aws:sns:eu-west-1:123456789012:approvers".into(),
            timeout_minutes,
            on_timeout: crate::definitions::PauseAction::Rollback,
        }),
        ..ecs_native(shift)
    }
}

/// A queued run of a pipeline shown on GitHub, in stages staging (a rolling update, GitHub environment `Staging
/// EU`), e2e (CodeBuild project web-e2e, 30 minutes), production (blue/green): its push.
pub fn tested(execution: &str) -> Event {
    use crate::definitions::{DeployStage, OnFailure, Stage, StageDefinition, StageKind, TestRun, TestStage};
    let stage = |name: &str| Stage::new(name).unwrap_or(Stage::DEPLOY);
    let mut event = push(execution, ExecutionMode::Queued, false);
    if let Event::Triggered { plan, .. } = &mut event {
        plan.github = Some(crate::definitions::GitHubReport { environment: "web".into() });
        let mut staging = rolling(Vec::new());
        staging.cluster = "staging".into();
        let deploy = |target, environment: Option<&str>| {
            StageKind::Deploy(Box::new(DeployStage {
                environment: environment.map(str::to_owned),
                ..DeployStage::of(target)
            }))
        };
        let e2e = TestStage {
            run: TestRun::CodeBuild("web-e2e".into()),
            timeout_minutes: Some(30),
            on_failure: OnFailure::Fail,
        };
        plan.stages = vec![
            StageDefinition {
                name: stage("staging"),
                kind: deploy(DeployTarget::Rolling(staging), Some("Staging EU")),
            },
            StageDefinition { name: stage("e2e"), kind: StageKind::Test(e2e) },
            StageDefinition {
                name: stage("production"),
                kind: deploy(DeployTarget::BlueGreen(blue_green(Vec::new())), None),
            },
        ];
    }
    event
}

/// A queued run `execution` of a pipeline in stages `smoke` (a test stage of one check: GET `url`, its body holding
/// the release's commit) then `next` (a rolling update): its push.
pub fn smoke_then(execution: &str, url: &str, next: crate::definitions::Stage) -> Event {
    use crate::definitions::{Check, DeployStage, Stage, StageDefinition, StageKind, TestRun, TestStage};
    let mut event = push(execution, ExecutionMode::Queued, false);
    if let Event::Triggered { plan, .. } = &mut event {
        let check = Check { expect_body: Some("{commit}".into()), ..Check::new(crate::definitions::TEST_CHECKS, url) };
        let smoke =
            TestStage { run: TestRun::Checks(vec![check]), timeout_minutes: None, on_failure: Default::default() };
        let deploy = DeployStage::of(DeployTarget::Rolling(rolling(Vec::new())));
        plan.stages = vec![
            StageDefinition { name: Stage::new("smoke").unwrap_or(Stage::DEPLOY), kind: StageKind::Test(smoke) },
            StageDefinition { name: next, kind: StageKind::Deploy(Box::new(deploy)) },
        ];
    }
    event
}

/// The image the runs of [`tested`] build.
pub const E2E_IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:ab12";

/// The run `execution` of [`tested`], from its push through staging, up to e2e.
pub fn to_e2e(execution: &str) -> Vec<Event> {
    let id = ExecutionId::from;
    vec![
        tested(execution),
        Event::BuildSucceeded {
            execution_id: id(execution),
            build_id: "build-1".into(),
            outputs: crate::pipeline::BuildOutputs {
                image_uri: E2E_IMAGE.into(),
                artifacts: Some("s3://artifacts/web/build-1".into()),
            },
        },
        Event::DeploymentStarted {
            execution_id: id(execution),
            deployment_id: "ecs-staging".into(),
            service_deployment: None,
            task_definition: None,
            previous_task_definition: None,
            in_alarm: None,
        },
        Event::DeploymentSucceeded { execution_id: id(execution), deployment_id: "ecs-staging".into(), tasks: None },
    ]
}

/// A queued run of a pipeline in three stages (staging: an ECS linear shift of `staging/web` that asks at its
/// pauses; sign-off: an approval; production: blue/green), from its push through staging up to sign-off: the first
/// pause (before any traffic moved) continued by sluice, then one pause per token hash in `token_hashes`, each
/// approved by its link.
pub fn through_a_paused_staging(execution: &str, token_hashes: &[String]) -> Vec<Event> {
    use crate::definitions::{Approval, DeployStage, Stage, StageDefinition, StageKind};
    let stage = |name: &str| Stage::new(name).unwrap_or(Stage::DEPLOY);
    let deploy = |target| StageKind::Deploy(Box::new(DeployStage::of(target)));
    let linear = crate::definitions::TrafficShift::Linear { step_tenths: 30, step_bake_time_minutes: 1 };
    let staging = crate::definitions::EcsNative { cluster: "staging".into(), ..ecs_native_asking(linear, 30) };
    let sign_off = Approval {
        topic_arn: "arn:aws:sns:eu-west-1:123456789012:signoff".into(),
        timeout_secs: 3600,
        approvers: None,
    };
    let mut triggered = push(execution, ExecutionMode::Queued, false);
    if let Event::Triggered { plan, .. } = &mut triggered {
        plan.stages = vec![
            StageDefinition { name: stage("staging"), kind: deploy(DeployTarget::EcsNative(staging)) },
            StageDefinition { name: stage("sign-off"), kind: StageKind::Approval(sign_off) },
            StageDefinition { name: stage("production"), kind: deploy(DeployTarget::BlueGreen(blue_green(vec![]))) },
        ];
    }
    let execution_id = ExecutionId::from(execution);
    let service_deployment = format!("arn:aws:ecs:eu-west-1:123456789012:service-deployment/staging/web/{execution}");
    let deployment_id = format!("ecs-staging-{execution}");
    let mut events = vec![
        triggered,
        Event::BuildSucceeded {
            execution_id: execution_id.clone(),
            build_id: format!("build-{execution}"),
            outputs: crate::pipeline::BuildOutputs {
                image_uri: format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:{:0>64}", 1),
                artifacts: None,
            },
        },
        Event::DeploymentStarted {
            execution_id: execution_id.clone(),
            deployment_id: deployment_id.clone(),
            service_deployment: Some(service_deployment.clone()),
            task_definition: None,
            previous_task_definition: None,
            in_alarm: None,
        },
    ];
    let paused = |hook: String| Event::DeploymentPaused {
        execution_id: execution_id.clone(),
        service_deployment: service_deployment.clone(),
        hook_id: hook,
        stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
        expires_at: None,
        timeout_action: None,
    };
    events.push(paused("pause-0".into()));
    for (k, token_hash) in token_hashes.iter().enumerate() {
        let hook_id = format!("pause-{}", k + 1);
        events.extend([
            paused(hook_id.clone()),
            Event::ApprovalSent {
                compared: None,
                personal: Vec::new(),
                execution_id: execution_id.clone(),
                token_hash: token_hash.clone(),
                hook_id: Some(hook_id),
            },
            Event::ApprovalDecided {
                execution_id: execution_id.clone(),
                decision: crate::pipeline::ApprovalDecision::Approved,
                approver: "ada@example.com".into(),
                comment: Some(format!("step {} looks right", k + 1)),
                token_hash: Some(token_hash.clone()),
                source_ip: None,
                user_agent: None,
            },
        ]);
    }
    events.push(Event::DeploymentSucceeded { execution_id, deployment_id, tasks: None });
    events
}

/// Run `execution`'s build (`build-<execution>`) failed in its BUILD phase.
pub fn build_failed(execution: &str) -> Event {
    Event::BuildFailed {
        execution_id: ExecutionId::from(execution),
        build_id: format!("build-{execution}"),
        status: crate::pipeline::BuildFailure::Failed,
        phase: Some("BUILD".into()),
        reason: "build failed in phase BUILD".into(),
    }
}

/// The events of run `execution` from its push to its end, shipped: pushed (superseded mode, with an approval
/// stage), built (image `web:<execution>`, artifacts `s3://artifacts/<execution>`), approved by Jane, deployed
/// (`d-<execution>`) and succeeded.
pub fn shipped(execution: &str) -> Vec<Event> {
    let execution_id = ExecutionId::from(execution);
    vec![
        push(execution, ExecutionMode::Superseded, true),
        Event::BuildSucceeded {
            execution_id: execution_id.clone(),
            build_id: format!("build-{execution}"),
            outputs: crate::pipeline::BuildOutputs {
                image_uri: format!("web:{execution}"),
                artifacts: Some(format!("s3://artifacts/{execution}")),
            },
        },
        Event::ApprovalDecided {
            execution_id: execution_id.clone(),
            decision: crate::pipeline::ApprovalDecision::Approved,
            approver: "Jane".into(),
            comment: None,
            token_hash: None,
            source_ip: None,
            user_agent: None,
        },
        Event::DeploymentStarted {
            execution_id: execution_id.clone(),
            deployment_id: format!("d-{execution}"),
            service_deployment: None,
            task_definition: None,
            previous_task_definition: None,
            in_alarm: None,
        },
        Event::DeploymentSucceeded { execution_id, deployment_id: format!("d-{execution}"), tasks: None },
    ]
}

/// A push to `acme/web`'s main of commit `sha-<execution>` (delivery `delivery-<execution>`), run with [`plan`].
pub fn push(execution: &str, mode: ExecutionMode, approval: bool) -> Event {
    Event::Triggered {
        execution_id: ExecutionId::from(execution),
        source: SourceFacts {
            repository: "acme/web".into(),
            commit: format!("sha-{execution}"),
            git_ref: "refs/heads/main".into(),
            pusher: "octocat".into(),
            pusher_email: Some("octocat@github.com".into()),
            before: String::new(),
            delivery_id: format!("delivery-{execution}"),
            message: "fix".into(),
            compare_url: String::new(),
            pushed_at: None,
            hook_id: None,
            compared: None,
        },
        plan: Box::new(plan(approval)),
        mode,
        ordered: None,
    }
}

/// A push payload as GitHub would send it at `at`: its `repository.pushed_at` (epoch seconds) set to that time, so that
/// a fixture recorded once is not refused as older than the receipt window by tests that run on the real clock.
pub fn pushed_at(payload: &[u8], at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(payload) else { return payload.to_vec() };
    value["repository"]["pushed_at"] = at.timestamp().into();
    serde_json::to_vec(&value).unwrap_or_else(|_| payload.to_vec())
}

/// What a [`RecordingBuilds`] does with the next StartBuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildAnswer {
    /// Starts it: the id is `arn:aws:codebuild:us-east-1:123456789012:build/<project>:<execution id>`.
    #[default]
    Start,
    /// Refuses it for good, as CodeBuild does for a project that does not exist.
    Refuse,
    /// Cannot be reached.
    Unavailable,
}

/// One StartBuild a [`RecordingBuilds`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedBuild {
    pub project: String,
    pub source_version: String,
    pub environment: std::collections::BTreeMap<String, String>,
    pub idempotency_token: String,
    pub timeout_minutes: Option<u32>,
}

/// `BuildStarter` that records each request and answers as told.
#[derive(Debug, Default)]
pub struct RecordingBuilds {
    started: Mutex<Vec<StartedBuild>>,
    answer: Mutex<BuildAnswer>,
    reports: Mutex<HashMap<String, BuildReport>>,
}

impl RecordingBuilds {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn answer(&self, answer: BuildAnswer) {
        *lock(&self.answer) = answer;
    }

    /// What `build_report` says of `build_id` from now on (unknown builds are reported as `None`).
    pub fn report(&self, build_id: &str, report: BuildReport) {
        lock(&self.reports).insert(build_id.to_owned(), report);
    }

    /// The builds started (not those refused or failed), in order.
    pub fn started(&self) -> Vec<StartedBuild> {
        lock(&self.started).clone()
    }
}

impl BuildStarter for RecordingBuilds {
    async fn start_build(&self, request: &BuildRequest<'_>) -> Result<String, BuildStartError> {
        match *lock(&self.answer) {
            BuildAnswer::Start => {}
            BuildAnswer::Refuse => {
                return Err(BuildStartError::Refused {
                    message: format!("ResourceNotFoundException: project {} does not exist", request.project),
                    source: "refused".into(),
                });
            }
            BuildAnswer::Unavailable => return Err(BuildStartError::Unavailable { source: "unreachable".into() }),
        }
        lock(&self.started).push(StartedBuild {
            project: request.project.to_owned(),
            source_version: request.source_version.to_owned(),
            environment: request.environment.clone(),
            idempotency_token: request.idempotency_token.to_owned(),
            timeout_minutes: request.timeout_minutes,
        });
        // CodeBuild's ids are `project:uuid`; here the uuid is the execution's id, so tests can name the artifacts'
        // folder (`.../<uuid>/`, as the BUILD_ID namespace makes it) without looking the build up.
        let uuid = request.environment.get("SLUICE_EXECUTION_ID").map_or(request.idempotency_token, String::as_str);
        Ok(format!("arn:aws:codebuild:us-east-1:123456789012:build/{}:{uuid}", request.project))
    }

    async fn build_report(&self, build_id: &str) -> Result<Option<BuildReport>, BuildStartError> {
        if *lock(&self.answer) == BuildAnswer::Unavailable {
            return Err(BuildStartError::Unavailable { source: "unreachable".into() });
        }
        Ok(lock(&self.reports).get(build_id).cloned())
    }
}

/// What builds leave, in memory: artifact files by bucket and key (`ArtifactStore`), and images pushed to ECR by
/// repository and tag (`ImageRegistry`).
#[derive(Debug, Default)]
pub struct InMemoryArtifacts {
    files: Mutex<HashMap<(String, String), Vec<u8>>>,
    images: Mutex<HashMap<(String, String), String>>,
    registry_down: Mutex<usize>,
    registry_refuses: Mutex<Option<RegistryRefusal>>,
    /// Each build's test results, as a test declares them (a build not declared made no test report).
    reports: Mutex<HashMap<String, crate::pipeline::TestResults>>,
    reports_down: Mutex<usize>,
    reports_denied: Mutex<bool>,
    report_reads: Mutex<usize>,
    unmade: Mutex<Vec<String>>,
}

/// How the in-memory registry turns every lookup down: access denied, or the request refused as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryRefusal {
    Denied,
    Refused,
}

impl InMemoryArtifacts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) {
        lock(&self.files).insert((bucket.to_owned(), key.to_owned()), bytes.into());
    }

    /// An image pushed to ECR repository `repository` as `tag`, with `digest`.
    pub fn push_image(&self, repository: &str, tag: &str, digest: &str) {
        lock(&self.images).insert((repository.to_owned(), tag.to_owned()), digest.to_owned());
    }

    /// Every digest lookup from now on is turned down so.
    pub fn registry_refuses(&self, refusal: RegistryRefusal) {
        *lock(&self.registry_refuses) = Some(refusal);
    }

    /// The next `count` digest lookups find the registry unreachable.
    pub fn registry_down_for(&self, count: usize) {
        *lock(&self.registry_down) = count;
    }

    /// Build `build_id`'s test reports say `results`.
    pub fn reports(&self, build_id: &str, results: crate::pipeline::TestResults) {
        lock(&self.reports).insert(build_id.to_owned(), results);
    }

    /// The next `count` reads of test reports find the build service unreachable.
    pub fn reports_down_for(&self, count: usize) {
        *lock(&self.reports_down) = count;
    }

    /// Every read of test reports is denied from now on.
    pub fn reports_denied(&self) {
        *lock(&self.reports_denied) = true;
    }

    /// Build `build_id`'s test report is one CodeBuild could not make (status FAILED).
    pub fn report_unmade(&self, build_id: &str) {
        lock(&self.unmade).push(build_id.to_owned());
    }

    /// How many times test reports were read.
    pub fn report_reads(&self) -> usize {
        *lock(&self.report_reads)
    }
}

impl crate::contract::ports::TestReports for InMemoryArtifacts {
    async fn test_results(
        &self,
        build_id: &str,
    ) -> Result<Option<crate::pipeline::TestResults>, crate::contract::ports::ReportError> {
        use crate::contract::ports::ReportError;
        *lock(&self.report_reads) += 1;
        if *lock(&self.reports_denied) {
            let message = "AccessDeniedException: not authorized to perform codebuild:BatchGetReports".to_owned();
            return Err(ReportError::Refused { message, source: "AccessDeniedException".into() });
        }
        let mut down = lock(&self.reports_down);
        if *down > 0 {
            *down -= 1;
            return Err(ReportError::Unavailable { source: "unreachable".into() });
        }
        if lock(&self.unmade).iter().any(|unmade| unmade == build_id) {
            let report = format!("arn:aws:codebuild:us-east-1:123456789012:report/web-e2e-reports:{build_id}");
            return Err(ReportError::Unmade { report, status: "FAILED".into() });
        }
        Ok(lock(&self.reports).get(build_id).cloned())
    }
}

impl crate::contract::ports::ImageRegistry for InMemoryArtifacts {
    async fn digest(
        &self,
        image: &crate::deploy::image::EcrImage,
    ) -> Result<Option<String>, crate::contract::ports::RegistryError> {
        use crate::contract::ports::RegistryError;
        match *lock(&self.registry_refuses) {
            Some(RegistryRefusal::Denied) => {
                return Err(RegistryError::Denied { source: "AccessDeniedException".into() });
            }
            Some(RegistryRefusal::Refused) => {
                return Err(RegistryError::Refused { source: "InvalidParameterException: bad tag".into() });
            }
            None => {}
        }
        let mut down = lock(&self.registry_down);
        if *down > 0 {
            *down -= 1;
            return Err(crate::contract::ports::RegistryError::Unavailable { source: "unreachable".into() });
        }
        Ok(lock(&self.images).get(&(image.repository.clone(), image.tag.clone())).cloned())
    }
}

impl ArtifactStore for InMemoryArtifacts {
    async fn read(&self, location: &ArtifactLocation, name: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        let key = format!("{}/{name}", location.prefix.trim_end_matches('/'));
        Ok(lock(&self.files).get(&(location.bucket.clone(), key.trim_start_matches('/').to_owned())).cloned())
    }
}

/// What ECS services run, as a test declares it (`RunningServices`); a service not declared is not there.
#[derive(Debug, Default)]
pub struct ScriptedServices {
    running: Mutex<HashMap<(String, String), crate::contract::ports::RunningTasks>>,
    unreachable: Mutex<bool>,
    hangs: Mutex<bool>,
}

impl ScriptedServices {
    pub fn new() -> Self {
        Self::default()
    }

    /// `cluster`'s `service` runs `task_definition` (an ARN), shaped so.
    pub fn runs(&self, cluster: &str, service: &str, task_definition: &str, shape: crate::deploy::compare::TaskShape) {
        let running = crate::contract::ports::RunningTasks { task_definition: task_definition.to_owned(), shape };
        lock(&self.running).insert((cluster.to_owned(), service.to_owned()), running);
    }

    /// ECS does not answer from now on.
    pub fn unreachable(&self) {
        *lock(&self.unreachable) = true;
    }

    /// ECS takes the call and never answers.
    pub fn hangs(&self) {
        *lock(&self.hangs) = true;
    }
}

impl crate::contract::ports::RunningServices for ScriptedServices {
    async fn running(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<crate::contract::ports::RunningTasks>, crate::contract::ports::DeployError> {
        if *lock(&self.hangs) {
            std::future::pending::<()>().await;
        }
        if *lock(&self.unreachable) {
            return Err(crate::contract::ports::DeployError::Unavailable {
                service: "ECS",
                source: "connection refused".into(),
            });
        }
        Ok(lock(&self.running).get(&(cluster.to_owned(), service.to_owned())).cloned())
    }

    async fn task_definition(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<String>, crate::contract::ports::DeployError> {
        Ok(self.running(cluster, service).await?.map(|running| running.task_definition))
    }
}

/// `WebhookSecretSource` that always reads the same secrets.
#[derive(Debug, Clone)]
pub struct FixedSecrets(pub crate::github::webhook::WebhookSecrets);

impl crate::contract::ports::WebhookSecretSource for FixedSecrets {
    async fn read(&self) -> Result<crate::github::webhook::WebhookSecrets, crate::contract::ports::SecretError> {
        Ok(self.0.clone())
    }
}

/// `CommitReporter` that records what GitHub is told: commit statuses (repository, commit, state, context),
/// Deployments created (numbered from 1, found again by the run their payload names) and their statuses.
#[derive(Debug, Default)]
pub struct RecordingGitHub {
    statuses: Mutex<Vec<(String, String, String, String)>>,
    deployments: Mutex<Vec<(String, String, String)>>,
    deployment_states: Mutex<Vec<(u64, String)>>,
}

impl RecordingGitHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// The commit statuses set so far: (repository, commit, state, context).
    pub fn statuses(&self) -> Vec<(String, String, String, String)> {
        lock(&self.statuses).clone()
    }

    /// The Deployments created so far: (repository, environment, run), the first numbered 1.
    pub fn deployments(&self) -> Vec<(String, String, String)> {
        lock(&self.deployments).clone()
    }

    /// The Deployment statuses set so far: (deployment, state).
    pub fn deployment_states(&self) -> Vec<(u64, String)> {
        lock(&self.deployment_states).clone()
    }
}

impl crate::contract::ports::CommitReporter for RecordingGitHub {
    async fn set_commit_status(
        &self,
        _: &crate::github::sign_in::GitHubCredentials,
        status: &crate::contract::ports::CommitStatus<'_>,
    ) -> Result<(), crate::contract::ports::GitHubError> {
        let recorded = (status.repository, status.commit, status.state, status.context);
        lock(&self.statuses).push((recorded.0.into(), recorded.1.into(), recorded.2.into(), recorded.3.into()));
        Ok(())
    }

    async fn find_deployment(
        &self,
        _: &crate::github::sign_in::GitHubCredentials,
        deployment: &crate::contract::ports::DeploymentRequest<'_>,
    ) -> Result<Option<u64>, crate::contract::ports::GitHubError> {
        let deployments = lock(&self.deployments);
        let found = deployments
            .iter()
            .position(|(_, environment, run)| run == deployment.execution_id && environment == deployment.environment);
        Ok(found.map(|i| i as u64 + 1))
    }

    async fn create_deployment(
        &self,
        _: &crate::github::sign_in::GitHubCredentials,
        deployment: &crate::contract::ports::DeploymentRequest<'_>,
    ) -> Result<u64, crate::contract::ports::GitHubError> {
        let mut deployments = lock(&self.deployments);
        let made = (deployment.repository.into(), deployment.environment.into(), deployment.execution_id.into());
        deployments.push(made);
        Ok(deployments.len() as u64)
    }

    async fn set_deployment_status(
        &self,
        _: &crate::github::sign_in::GitHubCredentials,
        status: &crate::contract::ports::DeploymentStatus<'_>,
    ) -> Result<(), crate::contract::ports::GitHubError> {
        lock(&self.deployment_states).push((status.deployment, status.state.to_owned()));
        Ok(())
    }
}

/// `TaskDefinitionRegistry` in memory: each registration is kept, as revision `<family>:<n>`, with its tags.
#[derive(Debug, Default)]
pub struct RecordingTaskDefinitions {
    registered: Mutex<Vec<(String, crate::deploy::TaskDefinition)>>,
}

impl RecordingTaskDefinitions {
    pub fn new() -> Self {
        Self::default()
    }

    /// The task definitions registered so far, with their ARNs, in order.
    pub fn registered(&self) -> Vec<(String, crate::deploy::TaskDefinition)> {
        lock(&self.registered).clone()
    }
}

impl crate::contract::ports::TaskDefinitionRegistry for RecordingTaskDefinitions {
    async fn register(
        &self,
        definition: &crate::deploy::TaskDefinition,
    ) -> Result<String, crate::contract::ports::DeployError> {
        let mut registered = lock(&self.registered);
        let revision = registered.iter().filter(|(_, known)| known.family == definition.family).count() + 1;
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{}:{revision}", definition.family);
        registered.push((arn.clone(), definition.clone()));
        Ok(arn)
    }

    async fn find_tagged(
        &self,
        family: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<String>, crate::contract::ports::DeployError> {
        let registered = lock(&self.registered);
        let tagged = |definition: &crate::deploy::TaskDefinition| {
            definition.tags.iter().any(|tag| tag.key == key && tag.value == value)
        };
        Ok(registered.iter().rev().find(|(_, d)| d.family == family && tagged(d)).map(|(arn, _)| arn.clone()))
    }
}

/// `BlueGreenDeployments`, `RollingUpdates`, `NativeDeployments` and `LifecycleHooks` that answer what a test says
/// CodeDeploy's and ECS's records hold (`report`, `rollout`, `service_deployment`, `waiting`), and count how often
/// they were asked. It records rolling updates and hook answers; it starts no blue/green or ECS-native deployment:
/// playing those is the sandbox's part (tests/), where CodeDeploy and ECS are played through their APIs.
#[derive(Debug, Default)]
pub struct RecordingDeployments {
    reports: Mutex<HashMap<String, crate::contract::ports::DeploymentReport>>,
    rollouts: Mutex<HashMap<String, crate::contract::ports::RolloutReport>>,
    service_deployments: Mutex<HashMap<String, crate::contract::ports::ServiceDeploymentReport>>,
    asked: Mutex<usize>,
    unreachable: Mutex<bool>,
    denied: Mutex<bool>,
    /// The lifecycle event each deployment waits at, as CodeDeploy shows it.
    waiting: Mutex<HashMap<String, String>>,
    /// The hook answers reported, in order: (deployment, hook execution, status).
    answers: Mutex<Vec<(String, String, crate::pipeline::HookStatus)>>,
    /// The rolling updates asked for (UpdateService), in order: each answered as ECS deployment `ecs-svc/<n>`.
    updates: Mutex<Vec<crate::deploy::RollingRequest>>,
    /// What ListTasks and DescribeTasks answer, by (cluster, service) (unknown: no tasks).
    tasks: Mutex<HashMap<(String, String), Vec<crate::deploy::RunningTask>>>,
    /// How often the tasks were read.
    task_reads: Mutex<usize>,
    /// The task definition each service runs (DescribeServices), by (cluster, service).
    running: Mutex<HashMap<(String, String), String>>,
}

impl RecordingDeployments {
    pub fn new() -> Self {
        Self::default()
    }

    /// What GetDeployment says of `deployment_id` from now on (unknown deployments: no record).
    pub fn report(&self, deployment_id: &str, report: crate::contract::ports::DeploymentReport) {
        lock(&self.reports).insert(deployment_id.to_owned(), report);
    }

    /// What DescribeServices says of `deployment_id`'s service from now on (unknown: no such service).
    pub fn rollout(&self, deployment_id: &str, report: crate::contract::ports::RolloutReport) {
        lock(&self.rollouts).insert(deployment_id.to_owned(), report);
    }

    /// What DescribeServiceDeployments says of service deployment `arn` from now on (unknown: no record).
    pub fn service_deployment(&self, arn: &str, report: crate::contract::ports::ServiceDeploymentReport) {
        lock(&self.service_deployments).insert(arn.to_owned(), report);
    }

    /// From now on, GetDeployment is refused (AccessDenied), as for another application's deployment.
    pub fn deny_reports(&self) {
        *lock(&self.denied) = true;
    }

    /// From now on, DescribeServiceDeployments cannot be reached.
    pub fn unreachable(&self) {
        *lock(&self.unreachable) = true;
    }

    /// The lifecycle event `deployment_id` waits at from now on, as CodeDeploy's ListDeploymentInstances and
    /// GetDeploymentTarget show it (none: no event waits).
    pub fn waiting(&self, deployment_id: &str, lifecycle_event: &str) {
        lock(&self.waiting).insert(deployment_id.to_owned(), lifecycle_event.to_owned());
    }

    /// The hook answers reported so far (PutLifecycleEventHookExecutionStatus), in order.
    pub fn answers(&self) -> Vec<(String, String, crate::pipeline::HookStatus)> {
        lock(&self.answers).clone()
    }

    /// The rolling updates asked for so far (UpdateService), in order.
    pub fn updates(&self) -> Vec<crate::deploy::RollingRequest> {
        lock(&self.updates).clone()
    }

    /// How many lookups were made.
    pub fn asked(&self) -> usize {
        *lock(&self.asked)
    }

    /// The tasks `cluster`'s `service` runs from now on, as ListTasks and DescribeTasks say.
    pub fn tasks(&self, cluster: &str, service: &str, tasks: Vec<crate::deploy::RunningTask>) {
        lock(&self.tasks).insert((cluster.to_owned(), service.to_owned()), tasks);
    }

    /// How often the running tasks were read.
    pub fn task_reads(&self) -> usize {
        *lock(&self.task_reads)
    }

    /// The task definition `cluster`'s `service` runs from now on, as DescribeServices says.
    pub fn runs(&self, cluster: &str, service: &str, task_definition: &str) {
        lock(&self.running).insert((cluster.to_owned(), service.to_owned()), task_definition.to_owned());
    }

    fn refused(what: &str) -> crate::contract::ports::DeployError {
        crate::contract::ports::DeployError::Refused {
            service: "test",
            message: format!("{what} is played by the sandbox, not by RecordingDeployments"),
            source: "not recorded".into(),
        }
    }
}

impl crate::contract::ports::ServiceTasks for RecordingDeployments {
    async fn tasks(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<crate::deploy::RunningTask>, crate::contract::ports::DeployError> {
        *lock(&self.task_reads) += 1;
        if *lock(&self.unreachable) {
            return Err(crate::contract::ports::DeployError::Unavailable {
                service: "ECS",
                source: "connection refused".into(),
            });
        }
        Ok(lock(&self.tasks).get(&(cluster.to_owned(), service.to_owned())).cloned().unwrap_or_default())
    }
}

impl crate::contract::ports::RunningServices for RecordingDeployments {
    async fn running(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<crate::contract::ports::RunningTasks>, crate::contract::ports::DeployError> {
        let running = lock(&self.running).get(&(cluster.to_owned(), service.to_owned())).cloned();
        Ok(running.map(|task_definition| crate::contract::ports::RunningTasks {
            task_definition,
            shape: crate::deploy::compare::TaskShape { cpu: None, memory: None, containers: Vec::new() },
        }))
    }

    async fn task_definition(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<String>, crate::contract::ports::DeployError> {
        Ok(lock(&self.running).get(&(cluster.to_owned(), service.to_owned())).cloned())
    }
}

impl crate::contract::ports::LifecycleHooks for RecordingDeployments {
    async fn waiting_event(&self, deployment_id: &str) -> Result<Option<String>, crate::contract::ports::DeployError> {
        Ok(lock(&self.waiting).get(deployment_id).cloned())
    }

    async fn answer(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        status: crate::pipeline::HookStatus,
    ) -> Result<(), crate::contract::ports::DeployError> {
        lock(&self.answers).push((deployment_id.to_owned(), hook_execution_id.to_owned(), status));
        Ok(())
    }
}

impl crate::contract::ports::BlueGreenDeployments for RecordingDeployments {
    async fn find(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, crate::contract::ports::DeployError> {
        Ok(None)
    }

    async fn create(&self, _: &crate::deploy::BlueGreenRequest) -> Result<String, crate::contract::ports::DeployError> {
        Err(Self::refused("CreateDeployment"))
    }

    async fn active(&self, _: &str, _: &str) -> Result<Vec<String>, crate::contract::ports::DeployError> {
        Err(Self::refused("ListDeployments"))
    }

    async fn stop(&self, _: &str) -> Result<(), crate::contract::ports::DeployError> {
        Err(Self::refused("StopDeployment"))
    }

    async fn report(
        &self,
        deployment_id: &str,
    ) -> Result<Option<crate::contract::ports::DeploymentReport>, crate::contract::ports::DeployError> {
        *lock(&self.asked) += 1;
        if *lock(&self.denied) {
            return Err(crate::contract::ports::DeployError::Refused {
                service: "CodeDeploy",
                message: "AccessDeniedException: not authorized to perform codedeploy:GetDeployment".into(),
                source: "denied".into(),
            });
        }
        Ok(lock(&self.reports).get(deployment_id).cloned())
    }
}

impl crate::contract::ports::RollingUpdates for RecordingDeployments {
    async fn update(
        &self,
        request: &crate::deploy::RollingRequest,
    ) -> Result<crate::contract::ports::RolloutStarted, crate::contract::ports::DeployError> {
        let mut updates = lock(&self.updates);
        updates.push(request.clone());
        Ok(crate::contract::ports::RolloutStarted {
            deployment_id: format!("ecs-svc/{}", updates.len()),
            previous_task_definition: None,
        })
    }

    async fn rollout(
        &self,
        _: &str,
        _: &str,
        deployment_id: &str,
    ) -> Result<Option<crate::contract::ports::RolloutReport>, crate::contract::ports::DeployError> {
        *lock(&self.asked) += 1;
        Ok(lock(&self.rollouts).get(deployment_id).cloned())
    }
}

impl crate::contract::ports::NativeDeployments for RecordingDeployments {
    async fn start(
        &self,
        _: &crate::deploy::NativeRequest,
    ) -> Result<crate::contract::ports::NativeStarted, crate::contract::ports::DeployError> {
        Err(Self::refused("UpdateService"))
    }

    async fn describe(
        &self,
        arn: &str,
    ) -> Result<Option<crate::contract::ports::ServiceDeploymentReport>, crate::contract::ports::DeployError> {
        *lock(&self.asked) += 1;
        if *lock(&self.unreachable) {
            return Err(crate::contract::ports::DeployError::Unavailable {
                service: "ECS",
                source: "unreachable".into(),
            });
        }
        Ok(lock(&self.service_deployments).get(arn).cloned())
    }

    async fn in_the_way(&self, _: &str, _: &str, _: &str) -> Result<Vec<String>, crate::contract::ports::DeployError> {
        Err(Self::refused("ListServiceDeployments"))
    }

    async fn stop(&self, _: &str) -> Result<(), crate::contract::ports::DeployError> {
        Err(Self::refused("StopServiceDeployment"))
    }

    async fn resume(
        &self,
        _: &str,
        _: &str,
        _: crate::definitions::PauseAction,
    ) -> Result<(), crate::contract::ports::DeployError> {
        Err(Self::refused("ContinueServiceDeployment"))
    }
}

/// `WebhookDeliveries` that lists what a test says GitHub holds, and records the redeliveries asked of it.
#[derive(Debug, Default)]
pub struct RecordingDeliveries {
    listed: Mutex<HashMap<(String, u64), Vec<crate::contract::ports::HookDelivery>>>,
    redelivered: Mutex<Vec<(String, u64, u64)>>,
}

impl RecordingDeliveries {
    pub fn new() -> Self {
        Self::default()
    }

    /// What GitHub lists of `repository`'s webhook `hook` from now on.
    pub fn list(&self, repository: &str, hook: u64, deliveries: Vec<crate::contract::ports::HookDelivery>) {
        lock(&self.listed).insert((repository.to_owned(), hook), deliveries);
    }

    /// The redeliveries asked for: (repository, hook, delivery), in order.
    pub fn redelivered(&self) -> Vec<(String, u64, u64)> {
        lock(&self.redelivered).clone()
    }
}

impl crate::contract::ports::WebhookDeliveries for RecordingDeliveries {
    async fn deliveries(
        &self,
        _: &crate::github::sign_in::GitHubCredentials,
        repository: &str,
        hook_id: u64,
    ) -> Result<Vec<crate::contract::ports::HookDelivery>, crate::contract::ports::GitHubError> {
        lock(&self.listed).get(&(repository.to_owned(), hook_id)).cloned().ok_or_else(|| {
            crate::contract::ports::GitHubError::Refused {
                what: format!("webhook {hook_id}"),
                status: 404,
                message: "Not Found".into(),
            }
        })
    }

    async fn redeliver(
        &self,
        _: &crate::github::sign_in::GitHubCredentials,
        repository: &str,
        hook_id: u64,
        delivery: u64,
    ) -> Result<(), crate::contract::ports::GitHubError> {
        lock(&self.redelivered).push((repository.to_owned(), hook_id, delivery));
        Ok(())
    }
}

/// `CommitHistory` that answers what a test says GitHub's compare answers, and records what it was asked; a pair it
/// was given no answer for is a GitHub that does not answer.
#[derive(Debug, Default)]
pub struct ScriptedComparisons {
    answers: Mutex<HashMap<(String, String), crate::pipeline::CommitOrder>>,
    asked: Mutex<Vec<(String, String)>>,
}

impl ScriptedComparisons {
    pub fn new() -> Self {
        Self::default()
    }

    /// GitHub's answer from now on to how `commit` stands against `base`.
    pub fn answer(&self, base: &str, commit: &str, order: crate::pipeline::CommitOrder) {
        lock(&self.answers).insert((base.to_owned(), commit.to_owned()), order);
    }

    /// The comparisons asked for: (base, commit), in order.
    pub fn asked(&self) -> Vec<(String, String)> {
        lock(&self.asked).clone()
    }
}

impl crate::contract::ports::CommitHistory for ScriptedComparisons {
    async fn compare(
        &self,
        _: &crate::github::sign_in::GitHubCredentials,
        repository: &str,
        base: &str,
        commit: &str,
    ) -> Result<crate::pipeline::CommitOrder, crate::contract::ports::GitHubError> {
        lock(&self.asked).push((base.to_owned(), commit.to_owned()));
        lock(&self.answers).get(&(base.to_owned(), commit.to_owned())).copied().ok_or_else(|| {
            crate::contract::ports::GitHubError::Unavailable {
                what: format!("comparing {commit} with {base} in {repository}"),
                message: "502: Server Error".into(),
            }
        })
    }
}

/// `SecretSource` that always reads the same value.
#[derive(Debug, Clone)]
pub struct FixedSecret(pub String);

impl crate::contract::ports::SecretSource for FixedSecret {
    async fn read(&self) -> Result<secrecy::SecretString, crate::contract::ports::SecretError> {
        Ok(secrecy::SecretString::from(self.0.clone()))
    }
}

/// The events the machine publishes for `events`, applied a minute apart from `start` to a new superseded-mode
/// pipeline `web`. Panics on an event the machine does not apply (a test's mistake).
pub fn published_by(
    events: &[Event],
    start: chrono::DateTime<chrono::Utc>,
) -> Vec<crate::contract::events::SluiceEvent> {
    use crate::pipeline::{Decision, Effect, PipelineState, transition};
    let mut state = PipelineState::new("web", ExecutionMode::Superseded);
    let mut published = Vec::new();
    for (minute, event) in events.iter().enumerate() {
        let now = start + chrono::TimeDelta::minutes(minute as i64);
        let Ok(Decision::Apply { state: next, effects }) = transition(&state, event, now) else {
            panic!("{} was not applied", event.name())
        };
        state = next;
        published.extend(effects.into_iter().filter_map(|effect| match effect {
            Effect::Publish(event) => Some(event),
            _ => None,
        }));
    }
    published
}

/// `AlarmStates` that answer what a test says CloudWatch holds: each alarm's state and reason, by name (an alarm
/// not named does not exist); it can refuse (access denied) or be unreachable, and counts its reads.
#[derive(Debug, Default)]
pub struct ScriptedAlarms {
    alarms: Mutex<HashMap<String, (bool, String)>>,
    refused: Mutex<bool>,
    unreachable: Mutex<bool>,
    reads: Mutex<usize>,
}

impl ScriptedAlarms {
    pub fn new() -> Self {
        Self::default()
    }

    /// Alarm `name` exists from now on, in ALARM (`in_alarm`) or OK, for `reason`.
    pub fn alarm(&self, name: &str, in_alarm: bool, reason: &str) {
        lock(&self.alarms).insert(name.to_owned(), (in_alarm, reason.to_owned()));
    }

    /// From now on, CloudWatch refuses (AccessDenied).
    pub fn refuse(&self) {
        *lock(&self.refused) = true;
    }

    /// From now on, CloudWatch cannot be reached.
    pub fn unreachable(&self) {
        *lock(&self.unreachable) = true;
    }

    /// How many times the alarms were read.
    pub fn reads(&self) -> usize {
        *lock(&self.reads)
    }
}

impl crate::contract::ports::AlarmStates for ScriptedAlarms {
    async fn states(
        &self,
        names: &[String],
    ) -> Result<Vec<crate::contract::ports::AlarmReading>, crate::contract::ports::AlarmError> {
        *lock(&self.reads) += 1;
        if *lock(&self.refused) {
            let source = "not authorized to perform: cloudwatch:DescribeAlarms".into();
            return Err(crate::contract::ports::AlarmError::Refused { message: "AccessDenied".into(), source });
        }
        if *lock(&self.unreachable) {
            return Err(crate::contract::ports::AlarmError::Unavailable { source: "connection refused".into() });
        }
        let alarms = lock(&self.alarms);
        Ok(names
            .iter()
            .filter_map(|name| {
                let (in_alarm, reason) = alarms.get(name)?;
                Some(crate::contract::ports::AlarmReading {
                    name: name.clone(),
                    in_alarm: *in_alarm,
                    reason: Some(reason.clone()),
                })
            })
            .collect())
    }
}
