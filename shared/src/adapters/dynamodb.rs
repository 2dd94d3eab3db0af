//! `PipelineStore` on one DynamoDB table.
//!
//! Items (partition key `PK`, sort key `SK`, both strings):
//! - `PIPELINE#<name>` / `STATE`: the pipeline's state as packed JSON in `state`, its `version` (number)
//!   guarding every write with a condition (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html>);
//!   the runs that finished are in it abridged, without what they did at their stages ([`PipelineState::stored`]);
//! - `EXECUTION#<id>` / `EXECUTION`: each execution as packed JSON in `body`, with `pipeline` and `seq` for the
//!   `history` index (newest first) and `status`: the run's whole record, but for the pauses of the stages it went
//!   past ([`Execution::set_apart`]);
//! - `EXECUTION#<id>` / `PAUSES#<stage>#<nnnn>`: those pauses, and at the stage the run is at all but its newest
//!   few, in batches, each written once (`nnnn`: the place of its first pause among the stage's);
//!   [`PipelineStore::whole`] reads them back into the run (a Query of its partition, made only for a run that
//!   counts pauses kept apart). They are out of the `history` index: a run listed there counts them only;
//! - `RECEIPT#<key>` / `RECEIPT`: an input already handled, written with `attribute_not_exists(PK)`, its `answer`,
//!   and `expires_at` (epoch seconds) for the table's TTL;
//! - `AWSID#<id>` / `LINK`: an AWS id (deployment id, service deployment ARN, approval link) and its `pipeline` and
//!   `execution`, written in the same transaction as the state that first records the id. (Earlier versions linked
//!   builds too; nothing reads those any more, and those of runs that were in progress at the update keep no
//!   expiry.)
//!
//! - `DEFINITIONS` / `CURRENT`: the published pipeline definitions (`text`, `revision`, `published_at`), and a copy
//!   of each revision as `DEFINITIONS` / `REVISION#<n>`, kept for the record.
//!
//! `state` and `body` are binary attributes, the JSON packed: deflated against a dictionary of sluice's own JSON
//! (`packing`), a fifth of its size or less, so that most items cost one capacity unit; items an earlier version
//! wrote deflated without a dictionary, or as text, are read as they were.
//!
//! A save with more than the state is one TransactWriteItems (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>):
//! the state, the executions that changed, the receipt and the new links land together or not at all. (A push
//! writes its receipt first, on its own, and its new run is in the state until it moves on: see
//! [`crate::usecases::handle_push`].) A cancelled
//! transaction is read by its `CancellationReasons`, one per item in order: `ConditionalCheckFailed` on the state is a
//! conflict and on the receipt a duplicate; `TransactionConflict`, throttling and capacity reasons are `Busy` (try
//! again); `ValidationError` (an item over 400 KB, say) is `Invalid`. A save of the state alone (an outbox emptied
//! after its effects were carried out) is one conditional PutItem, which costs half the write units of a
//! transaction; its error codes are read the same way ([`put_refusal`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::packing;
use crate::contract::ports::{
    AwsLink, DefinitionsStore, PipelineStore, PublishedDefinitions, Receipt, ReceiptKey, StoreError, Stored,
    Supersessions, Version, Write, stopped_link,
};
use crate::definitions::DeployTarget;
use crate::pipeline::{Effect, Execution, ExecutionId, PausesApart, PipelineState, Stage};

/// The name of the index that lists a pipeline's executions by `seq`.
pub const HISTORY_INDEX: &str = "history";

type Item = HashMap<String, AttributeValue>;

/// The pipeline store on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Run `id` as its pipeline's item has it, when it was recorded without its own item yet
    /// ([`Write::new_runs_in_the_state`]): its id starts with its pipeline's name and a dash. A push's id is its
    /// pipeline's name, a dash and GitHub's delivery GUID: that one name is read. Otherwise (a name may hold dashes
    /// too) each name of at most 64 characters the id can start with is read, side by side: a GetItem each, one
    /// round trip.
    async fn unwritten(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        let names: Vec<&str> = match pushed_to(&id.0) {
            Some(name) => vec![name],
            None => {
                id.0.match_indices('-')
                    .map(|(at, _)| &id.0[..at])
                    .filter(|name| crate::definitions::is_pipeline_name(name))
                    .collect()
            }
        };
        let states = futures_util::future::join_all(names.iter().map(|name| self.load(name))).await;
        for state in states {
            let found = state?.and_then(|stored| stored.value.execution(id).filter(|run| !run.abridged).cloned());
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Run `id`'s own item, as written.
    async fn own_item(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        let Some(item) = self.get(execution_key(id), "EXECUTION").await? else { return Ok(None) };
        json(&item, "body", "execution").map(Some)
    }

    /// The state item alone, if `condition` holds: a conditional PutItem
    /// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html>), its failures read as a
    /// transaction's: the condition failing is a conflict, throttling is busy, an item DynamoDB refuses is invalid.
    async fn put_state(
        &self,
        pipeline: &str,
        item: Item,
        (expression, values): (&str, Vec<(&str, AttributeValue)>),
    ) -> Result<(), StoreError> {
        let mut put =
            self.client.put_item().table_name(&self.table).set_item(Some(item)).condition_expression(expression);
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        let error = match put.send().await {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let service = error.as_service_error();
        let (code, message) =
            (service.and_then(ProvideErrorMetadata::code), service.and_then(ProvideErrorMetadata::message));
        match put_refusal(pipeline, code, message) {
            Some(refusal) => Err(refusal),
            None => Err(backend(error)),
        }
    }

    fn put(
        &self,
        item: Item,
        condition: Option<(&str, Vec<(&str, AttributeValue)>)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expression, values)) = condition {
            put = put.condition_expression(expression);
            for (name, value) in values {
                put = put.expression_attribute_values(name, value);
            }
        }
        let put = put.build().map_err(|error| StoreError::Refused { source: Box::new(error) })?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(output.item)
    }
}

/// The pipeline a push's run id names: the id is the name, a dash and GitHub's delivery id, a GUID
/// (`72d3162e-cc78-11e3-81ab-4c9367dc0958`, <https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers>).
fn pushed_to(id: &str) -> Option<&str> {
    let (name, guid) = id.split_at_checked(id.len().checked_sub(37)?)?;
    let guid = guid.strip_prefix('-')?.as_bytes();
    let shaped = guid.iter().enumerate().all(|(i, byte)| match i {
        8 | 13 | 18 | 23 => *byte == b'-',
        _ => byte.is_ascii_hexdigit(),
    });
    (shaped && !name.is_empty()).then_some(name)
}

fn pipeline_key(pipeline: &str) -> String {
    format!("PIPELINE#{pipeline}")
}

fn execution_key(id: &ExecutionId) -> String {
    format!("EXECUTION#{id}")
}

fn receipt_key(key: &ReceiptKey) -> String {
    format!("RECEIPT#{key}")
}

fn link_key(aws_id: &str) -> String {
    format!("AWSID#{aws_id}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn text<'a>(item: &'a Item, name: &'static str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(corrupt(name, format!("attribute {name} is missing or not a string"))),
    }
}

fn number(item: &Item, name: &'static str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => {
            value.parse().map_err(|_| corrupt(name, format!("attribute {name} is not a whole number")))
        }
        _ => Err(corrupt(name, format!("attribute {name} is missing or not a number"))),
    }
}

fn json<T: serde::de::DeserializeOwned>(item: &Item, name: &'static str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(&unpacked(item, name)?).map_err(|source| StoreError::Corrupt { what, source })
}

/// The most a packed attribute may inflate to: far over DynamoDB's 400 KB item, far under a function's memory.
const MAX_UNPACKED: u64 = 16 * 1024 * 1024;

/// `json` packed ([`packing::pack`]: deflated against a dictionary of sluice's JSON), as a binary attribute: DynamoDB
/// bills a binary by its length, and sluice's JSON packs to a fifth or less of its size, so that most items cost one
/// write unit.
fn packed(json: &str) -> Result<AttributeValue, StoreError> {
    let bytes =
        packing::pack(json).map_err(|error| corrupt("packed attribute", format!("could not be packed: {error}")))?;
    Ok(AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes)))
}

/// A JSON attribute as stored: packed binary ([`packed`]), deflated without a dictionary or text as earlier versions
/// of sluice wrote it.
fn unpacked<'a>(item: &'a Item, name: &'static str) -> Result<std::borrow::Cow<'a, str>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(std::borrow::Cow::Borrowed(text)),
        Some(AttributeValue::B(blob)) => packing::unpack(blob.as_ref(), MAX_UNPACKED)
            .map(std::borrow::Cow::Owned)
            .map_err(|error| corrupt(name, format!("attribute {name} does not inflate to text: {error}"))),
        _ => Err(corrupt(name, format!("attribute {name} is missing or neither text nor binary"))),
    }
}

fn to_json(value: &impl serde::Serialize, what: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Corrupt { what, source })
}

fn corrupt(what: &'static str, message: String) -> StoreError {
    use serde::de::Error as _;
    StoreError::Corrupt { what, source: serde_json::Error::custom(message) }
}

/// Throttling and server-side faults can pass; anything else is a refusal that retrying will not change.
fn backend<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionInProgressException"
            )
        ),
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    let source = Box::new(error);
    if transient { StoreError::Unavailable { source } } else { StoreError::Refused { source } }
}

fn execution_item(execution: &Execution) -> Result<Item, StoreError> {
    // Without the pauses of the stages it went past: each of those stages' is an item of its own.
    let mut execution = execution.clone();
    execution.set_apart();
    let execution = &execution;
    Ok(HashMap::from([
        ("PK".to_owned(), s(execution_key(&execution.id))),
        ("SK".to_owned(), s("EXECUTION")),
        ("pipeline".to_owned(), s(&execution.pipeline)),
        ("seq".to_owned(), n(execution.seq)),
        ("status".to_owned(), s(execution.status.name())),
        ("updated_at".to_owned(), s(execution.updated_at.to_rfc3339())),
        ("body".to_owned(), packed(&to_json(execution, "execution")?)?),
    ]))
}

/// The sort key of the item that keeps a batch of a stage's pauses apart from its run: the stage, and the place of
/// the batch's first pause among the stage's.
fn pauses_key(stage: Stage, from: usize) -> String {
    format!("PAUSES#{stage}#{from:04}")
}

/// A batch of a run's pauses kept apart, under the run's partition key: out of the history index (no `pipeline` or
/// `seq`), read with the run ([`PipelineStore::whole`]).
fn apart_item(apart: &PausesApart) -> Result<Item, StoreError> {
    Ok(HashMap::from([
        ("PK".to_owned(), s(execution_key(&apart.execution))),
        ("SK".to_owned(), s(pauses_key(apart.stage, apart.from))),
        ("body".to_owned(), packed(&to_json(&apart.pauses, "pauses")?)?),
    ]))
}

fn receipt_item(receipt: &Receipt) -> Result<Item, StoreError> {
    let expires_at = receipt.recorded_at + chrono::TimeDelta::days(crate::contract::ports::RECEIPT_DAYS);
    Ok(HashMap::from([
        ("PK".to_owned(), s(receipt_key(&receipt.key))),
        ("SK".to_owned(), s("RECEIPT")),
        ("answer".to_owned(), s(to_json(&receipt.answer, "receipt")?)),
        ("recorded_at".to_owned(), s(receipt.recorded_at.to_rfc3339())),
        ("expires_at".to_owned(), n(expires_at.timestamp())),
    ]))
}

/// The state item's JSON: the pipeline state with each distinct plan written once, in `plans`, and each execution's
/// `plan` the index of its own. The executions of a pipeline nearly always share one plan (one definitions
/// revision), so the state's size grows with what differs between runs, not with their definitions. Finished runs
/// are written abridged ([`PipelineState::stored`]): their whole record is their own item.
pub fn encode_state(state: &PipelineState) -> Result<String, StoreError> {
    let corrupt_json = |source| StoreError::Corrupt { what: "pipeline state", source };
    let stored = state.stored();
    let mut value = serde_json::to_value(&stored).map_err(corrupt_json)?;
    // An effect that names its deploy stage is stored without that stage's target: the run's plan has it.
    for (list, effects) in [
        ("pending", stored.pending.iter().map(|pending| &pending.effect).collect::<Vec<_>>()),
        ("parked", stored.parked.iter().map(|parked| &parked.effect).collect()),
    ] {
        for (k, effect) in effects.into_iter().enumerate() {
            let planned = |id: &ExecutionId, stage: Stage| {
                stored.execution(id).and_then(|run| run.plan.deploy_stage(stage)).map(|planned| &planned.target)
            };
            let copy = match effect {
                Effect::RunChecks { execution_id, stage, checks, .. } => {
                    let theirs = planned(execution_id, *stage).map(DeployTarget::after_rollout_checks);
                    (!checks.is_empty() && theirs.as_ref() == Some(checks)).then_some("checks")
                }
                Effect::RunTestChecks { execution_id, stage, checks } => {
                    let theirs = stored.execution(execution_id).and_then(|run| planned_test_checks(run, *stage));
                    (!checks.is_empty() && theirs.as_ref() == Some(checks)).then_some("checks")
                }
                other => staged_target(other)
                    .filter(|(execution_id, stage, target)| planned(execution_id, *stage) == Some(*target))
                    .map(|_| "target"),
            };
            if let Some(copy) = copy
                && let Some(effect) = value.pointer_mut(&format!("/{list}/{k}/effect")).and_then(|e| e.as_object_mut())
            {
                effect.remove(copy);
            }
        }
    }
    let mut plans: Vec<serde_json::Value> = Vec::new();
    if let Some(executions) = value.get_mut("executions").and_then(serde_json::Value::as_array_mut) {
        for execution in executions {
            let Some(plan) = execution.get_mut("plan") else { continue };
            let index = match plans.iter().position(|known| known == plan) {
                Some(index) => index,
                None => {
                    plans.push(plan.take());
                    plans.len() - 1
                }
            };
            *plan = serde_json::Value::from(index);
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.insert("plans".to_owned(), serde_json::Value::Array(plans));
    }
    serde_json::to_string(&value).map_err(corrupt_json)
}

/// Reads what [`encode_state`] wrote (and states written before plans were shared, with each plan in place).
pub fn decode_state(text: &str) -> Result<PipelineState, StoreError> {
    let corrupt_json = |source| StoreError::Corrupt { what: "pipeline state", source };
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(corrupt_json)?;
    let plans = value.as_object_mut().and_then(|object| object.remove("plans")).unwrap_or_default();
    if let Some(executions) = value.get_mut("executions").and_then(serde_json::Value::as_array_mut) {
        for execution in executions {
            let Some(plan) = execution.get_mut("plan") else { continue };
            if let Some(index) = plan.as_u64() {
                let shared = usize::try_from(index).ok().and_then(|i| plans.get(i)).cloned();
                *plan = shared.ok_or_else(|| corrupt("pipeline state", format!("no plan {index} in the state")))?;
            }
        }
    }
    for list in ["pending", "parked"] {
        let count = value.get(list).and_then(serde_json::Value::as_array).map_or(0, Vec::len);
        for k in 0..count {
            let effect = value.pointer(&format!("/{list}/{k}/effect"));
            let named = effect.filter(|effect| effect.get("target").is_none()).and_then(|effect| {
                let kind = effect.get("type")?.as_str()?;
                let staged = matches!(kind, "start_deployment" | "roll_back" | "stop_deployment");
                let stage = effect.get("stage").and_then(serde_json::Value::as_str).unwrap_or("deploy");
                staged.then(|| (effect.get("execution_id").cloned(), stage.to_owned()))
            });
            let Some((execution_id, stage)) = named else { continue };
            let target = value
                .get("executions")
                .and_then(serde_json::Value::as_array)
                .and_then(|runs| runs.iter().find(|run| run.get("id") == execution_id.as_ref()))
                .and_then(|run| run.pointer("/plan/stages")?.as_array())
                .and_then(|stages| {
                    stages.iter().find(|planned| planned.get("name").and_then(|n| n.as_str()) == Some(&stage))
                })
                .and_then(|planned| planned.pointer("/deploy/target"))
                .cloned()
                .ok_or_else(|| {
                    corrupt("pipeline state", format!("no deploy stage {stage} for a stored {list} effect"))
                })?;
            if let Some(effect) = value.pointer_mut(&format!("/{list}/{k}/effect")).and_then(|e| e.as_object_mut()) {
                effect.insert("target".to_owned(), target);
            }
        }
    }
    let mut state: PipelineState = serde_json::from_value(value).map_err(corrupt_json)?;
    // AfterRollout checks stored by their stage: the plan's (a RunChecks is only ever made with some).
    let PipelineState { executions, pending, parked, .. } = &mut state;
    let effects = pending.iter_mut().map(|p| &mut p.effect).chain(parked.iter_mut().map(|p| &mut p.effect));
    for effect in effects {
        if let Effect::RunChecks { execution_id, stage, checks, .. } = effect
            && checks.is_empty()
        {
            let run = executions.iter().find(|run| &run.id == execution_id);
            *checks = run
                .and_then(|run| run.plan.deploy_stage(*stage))
                .map(|planned| planned.target.after_rollout_checks())
                .filter(|planned| !planned.is_empty())
                .ok_or_else(|| corrupt("pipeline state", format!("no AfterRollout checks for stage {stage}")))?;
        }
        // A test stage's checks likewise: the plan's, as they run for the run's release.
        if let Effect::RunTestChecks { execution_id, stage, checks } = effect
            && checks.is_empty()
        {
            let run = executions.iter().find(|run| &run.id == execution_id);
            *checks = run
                .and_then(|run| planned_test_checks(run, *stage))
                .ok_or_else(|| corrupt("pipeline state", format!("no checks for test stage {stage}")))?;
        }
    }
    Ok(state)
}

/// Test stage `stage`'s checks in `run`'s plan, as they run for its release; `None` if it has none.
fn planned_test_checks(run: &crate::pipeline::Execution, stage: Stage) -> Option<Vec<crate::definitions::Check>> {
    let test = run.plan.stage(stage)?.test()?;
    let checks: Vec<_> = test.checks().iter().map(|check| run.for_release(check)).collect();
    (!checks.is_empty()).then_some(checks)
}

/// The run, deploy stage and target an effect is about, if it is one that names its stage.
fn staged_target(effect: &Effect) -> Option<(&ExecutionId, Stage, &DeployTarget)> {
    match effect {
        Effect::StartDeployment { execution_id, stage, target, .. }
        | Effect::RollBack { execution_id, stage, target, .. }
        | Effect::StopDeployment { execution_id, stage, target, .. } => Some((execution_id, *stage, target)),
        _ => None,
    }
}

fn link_item(link: &AwsLink) -> Item {
    let mut item = HashMap::from([
        ("PK".to_owned(), s(link_key(&link.aws_id))),
        ("SK".to_owned(), s("LINK")),
        ("pipeline".to_owned(), s(&link.pipeline)),
        ("execution".to_owned(), s(&link.execution.0)),
    ]);
    if let Some(expires_at) = link.expires_at {
        // The table's TTL attribute (epoch seconds), as for receipts.
        item.insert("expires_at".to_owned(), n(expires_at.timestamp()));
    }
    item
}

const NEW_ITEM: &str = "attribute_not_exists(PK)";

/// What DynamoDB's answer to a write says, whether it is a call's error code (`ThrottlingException`) or a cancelled
/// transaction's reason (`ThrottlingError`, `TransactionConflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteRefused {
    /// The condition failed: someone else wrote first (or the receipt is there already).
    ConditionFailed,
    /// Busy with the same items or over capacity: try again after a pause.
    Busy,
    /// The item as written is refused (over 400 KB, say): trying again will not help.
    Invalid,
    Other,
}

fn write_refused(code: &str) -> WriteRefused {
    match code.trim_end_matches("Exception").trim_end_matches("Error") {
        "ConditionalCheckFailed" => WriteRefused::ConditionFailed,
        "TransactionConflict"
        | "ReplicatedWriteConflict"
        | "ProvisionedThroughputExceeded"
        | "Throttling"
        | "RequestLimitExceeded" => WriteRefused::Busy,
        "Validation" | "ItemCollectionSizeLimitExceeded" => WriteRefused::Invalid,
        _ => WriteRefused::Other,
    }
}

/// What a refused PutItem of a pipeline's state means, by DynamoDB's error code, as [`cancellation`] reads a
/// transaction's reasons; `None` for the others (read as any call's failure).
fn put_refusal(pipeline: &str, code: Option<&str>, message: Option<&str>) -> Option<StoreError> {
    let (pipeline, code) = (pipeline.to_owned(), code?);
    match write_refused(code) {
        WriteRefused::ConditionFailed => Some(StoreError::Conflict { pipeline }),
        WriteRefused::Busy => Some(StoreError::Busy { pipeline, reason: code.to_owned() }),
        WriteRefused::Invalid => {
            Some(StoreError::Invalid { pipeline, message: message.unwrap_or("the item is invalid").to_owned() })
        }
        WriteRefused::Other => None,
    }
}

/// What a cancelled transaction's reasons say, item by item (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#API_TransactWriteItems_Errors>).
/// `receipt` is the receipt item's index, if the transaction wrote one.
pub(crate) fn cancellation(
    pipeline: &str,
    codes: &[(Option<String>, Option<String>)],
    receipt: Option<usize>,
) -> Option<StoreError> {
    let refused = |i: usize| codes.get(i).and_then(|(code, _)| code.as_deref()).map(write_refused);
    if let Some(i) = receipt
        && refused(i) == Some(WriteRefused::ConditionFailed)
    {
        return None; // a duplicate: the caller names the receipt
    }
    let first = |kind| (0..codes.len()).find(|i| refused(*i) == Some(kind)).map(|i| &codes[i]);
    if let Some((reason, _)) = first(WriteRefused::Busy) {
        return Some(StoreError::Busy { pipeline: pipeline.to_owned(), reason: reason.clone().unwrap_or_default() });
    }
    if let Some((_, message)) = first(WriteRefused::Invalid) {
        let message = message.clone().unwrap_or_else(|| "the item is invalid".to_owned());
        return Some(StoreError::Invalid { pipeline: pipeline.to_owned(), message });
    }
    if refused(0) == Some(WriteRefused::ConditionFailed) || codes.is_empty() {
        return Some(StoreError::Conflict { pipeline: pipeline.to_owned() });
    }
    let listed: Vec<&str> = codes.iter().filter_map(|(code, _)| code.as_deref()).collect();
    Some(StoreError::Invalid { pipeline: pipeline.to_owned(), message: format!("cancelled: {}", listed.join(", ")) })
}

impl Supersessions for DynamoDbStore {
    /// One PutItem: the link from the stopped deployment's [`stopped_link`] to the run it made way for.
    #[instrument(skip(self), fields(table = %self.table))]
    async fn record_stop(&self, stopped: &str, pipeline: &str, by: &ExecutionId) -> Result<(), StoreError> {
        // Read while the stopped deployment's events come in (minutes), then forgotten.
        let expires_at = Some(Utc::now() + chrono::TimeDelta::days(crate::contract::ports::RECEIPT_DAYS));
        let link =
            AwsLink { aws_id: stopped_link(stopped), pipeline: pipeline.to_owned(), execution: by.clone(), expires_at };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(link_item(&link)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

impl PipelineStore for DynamoDbStore {
    #[instrument(skip(self), fields(table = %self.table))]
    async fn load(&self, pipeline: &str) -> Result<Option<Stored<PipelineState>>, StoreError> {
        let Some(item) = self.get(pipeline_key(pipeline), "STATE").await? else { return Ok(None) };
        let state = decode_state(&unpacked(&item, "state")?)?;
        Ok(Some(Stored { value: state, version: Version(number(&item, "version")?) }))
    }

    #[instrument(skip_all, fields(table = %self.table, pipeline = %write.state.pipeline, expected = ?write.expected, executions = write.executions.len()))]
    async fn save(&self, write: &Write<'_>) -> Result<Version, StoreError> {
        let state = write.state;
        let next = Version(write.expected.map_or(1, |Version(v)| v + 1));
        let now: DateTime<Utc> = state.executions.iter().map(|e| e.updated_at).max().unwrap_or_default();
        let state_item = HashMap::from([
            ("PK".to_owned(), s(pipeline_key(&state.pipeline))),
            ("SK".to_owned(), s("STATE")),
            ("version".to_owned(), n(next.0)),
            ("updated_at".to_owned(), s(now.to_rfc3339())),
            ("state".to_owned(), packed(&encode_state(state)?)?),
        ]);
        let condition = match write.expected {
            None => (NEW_ITEM, vec![]),
            Some(Version(v)) => ("version = :expected", vec![(":expected", n(v))]),
        };
        if write.is_state_alone() {
            // The state alone (an outbox emptied, say): one conditional PutItem, half a transaction's write units.
            return self.put_state(&state.pipeline, state_item, condition).await.map(|()| next);
        }
        let mut items = vec![self.put(state_item, Some(condition))?];
        for execution in &write.executions {
            items.push(self.put(execution_item(execution)?, None)?);
        }
        for apart in &write.apart {
            items.push(self.put(apart_item(apart)?, None)?);
        }
        let receipt_index = write.receipt.map(|_| items.len());
        if let Some(receipt) = write.receipt {
            items.push(self.put(receipt_item(receipt)?, Some((NEW_ITEM, vec![])))?);
        }
        for link in &write.links {
            items.push(self.put(link_item(link), None)?);
        }
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let service = match result {
            Ok(_) => return Ok(next),
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
            {
                service
            }
            Err(error) => return Err(backend(error)),
        };
        let codes: Vec<(Option<String>, Option<String>)> = match service.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| (r.code().map(str::to_owned), r.message().map(str::to_owned)))
                .collect(),
            _ => Vec::new(),
        };
        match (cancellation(&state.pipeline, &codes, receipt_index), write.receipt) {
            (None, Some(receipt)) => Err(StoreError::Duplicate { key: receipt.key.clone() }),
            // DynamoDB names the failed condition; without reasons, look the receipt up.
            (Some(StoreError::Conflict { .. }), Some(receipt))
                if codes.is_empty() && self.receipt(&receipt.key).await?.is_some() =>
            {
                Err(StoreError::Duplicate { key: receipt.key.clone() })
            }
            (Some(error), _) => Err(error),
            (None, None) => Err(backend(SdkError::ServiceError(service))),
        }
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn find(&self, aws_id: &str) -> Result<Option<AwsLink>, StoreError> {
        let Some(item) = self.get(link_key(aws_id), "LINK").await? else { return Ok(None) };
        Ok(Some(AwsLink {
            aws_id: aws_id.to_owned(),
            pipeline: text(&item, "pipeline")?.to_owned(),
            execution: ExecutionId(text(&item, "execution")?.to_owned()),
            expires_at: item
                .get("expires_at")
                .and_then(|value| value.as_n().ok())
                .and_then(|seconds| seconds.parse().ok())
                .and_then(|seconds| DateTime::from_timestamp(seconds, 0)),
        }))
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        let Some(execution) = self.own_item(id).await? else { return self.unwritten(id).await };
        if execution.status.is_finished() {
            return Ok(Some(execution));
        }
        // While it runs, the pipeline's copy holds what it learnt at its stage; a run that ended meanwhile has its
        // whole record in its item again.
        let state = self.load(&execution.pipeline).await?;
        match state.as_ref().and_then(|stored| stored.value.in_progress_copy(&execution)) {
            Some(copy) => Ok(Some(copy.clone())),
            None => self.own_item(id).await,
        }
    }

    /// One Query of the run's partition (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html>),
    /// page by page.
    #[instrument(skip(self), fields(table = %self.table))]
    async fn pauses_apart(&self, id: &ExecutionId) -> Result<Vec<PausesApart>, StoreError> {
        let mut apart = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :run AND begins_with(SK, :pauses)")
                .expression_attribute_values(":run", s(execution_key(id)))
                .expression_attribute_values(":pauses", s("PAUSES#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            for item in output.items() {
                let key = text(item, "SK")?;
                let named = key.strip_prefix("PAUSES#").and_then(|rest| rest.rsplit_once('#'));
                let place = named.and_then(|(stage, from)| Some((Stage::new(stage)?, from.parse().ok()?)));
                let (stage, from) = place.ok_or_else(|| corrupt("pauses", format!("{key} names no stage's pauses")))?;
                let pauses = json(item, "body", "pauses")?;
                apart.push(PausesApart { execution: id.clone(), stage, from, pauses });
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(apart),
            }
        }
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn history(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(HISTORY_INDEX)
            .key_condition_expression("#pipeline = :pipeline")
            .expression_attribute_names("#pipeline", "pipeline")
            .expression_attribute_values(":pipeline", s(pipeline))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1))
            .send()
            .await
            .map_err(backend)?;
        let mut runs: Vec<Execution> =
            output.items().iter().take(limit).map(|item| json(item, "body", "execution")).collect::<Result<_, _>>()?;
        // Runs in progress as the pipeline's item has them: what they learnt at the stage they are at; and those
        // recorded without their own item yet.
        let Some(state) = self.load(pipeline).await?.map(|stored| stored.value) else { return Ok(runs) };
        for run in &mut runs {
            if let Some(copy) = state.in_progress_copy(run) {
                *run = copy.clone();
            }
        }
        let unwritten: Vec<Execution> = state
            .executions
            .into_iter()
            .filter(|run| !run.abridged && !run.status.is_finished() && !runs.iter().any(|listed| listed.id == run.id))
            .collect();
        if !unwritten.is_empty() {
            runs.extend(unwritten);
            runs.sort_by_key(|run| std::cmp::Reverse(run.seq));
            runs.truncate(limit);
        }
        Ok(runs)
    }

    #[instrument(skip_all, fields(table = %self.table, key = %receipt.key))]
    async fn record_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(receipt_item(receipt)?))
            .condition_expression(NEW_ITEM)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::Duplicate { key: receipt.key.clone() })
            }
            Err(error) => Err(backend(error)),
        }
    }

    #[instrument(skip(self), fields(table = %self.table))]
    async fn receipt(&self, key: &ReceiptKey) -> Result<Option<Receipt>, StoreError> {
        let Some(item) = self.get(receipt_key(key), "RECEIPT").await? else { return Ok(None) };
        let recorded_at = DateTime::parse_from_rfc3339(text(&item, "recorded_at")?)
            .map_err(|error| corrupt("receipt", error.to_string()))?
            .with_timezone(&Utc);
        Ok(Some(Receipt { key: key.clone(), answer: json(&item, "answer", "receipt")?, recorded_at }))
    }
}

const DEFINITIONS: &str = "DEFINITIONS";

impl DefinitionsStore for DynamoDbStore {
    #[instrument(skip(self), fields(table = %self.table))]
    async fn current(&self) -> Result<Option<PublishedDefinitions>, StoreError> {
        let Some(item) = self.get(DEFINITIONS.to_owned(), "CURRENT").await? else { return Ok(None) };
        let published_at = DateTime::parse_from_rfc3339(text(&item, "published_at")?)
            .map_err(|error| corrupt("definitions", error.to_string()))?
            .with_timezone(&Utc);
        Ok(Some(PublishedDefinitions {
            text: text(&item, "text")?.to_owned(),
            revision: number(&item, "revision")?,
            published_at,
        }))
    }

    #[instrument(skip(self, text), fields(table = %self.table, bytes = text.len()))]
    async fn publish(&self, text: &str, replacing: Option<u64>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let revision = replacing.map_or(1, |r| r + 1);
        let item = |sk: String| {
            HashMap::from([
                ("PK".to_owned(), s(DEFINITIONS)),
                ("SK".to_owned(), s(sk)),
                ("text".to_owned(), s(text)),
                ("revision".to_owned(), n(revision)),
                ("published_at".to_owned(), s(now.to_rfc3339())),
            ])
        };
        let condition = match replacing {
            None => (NEW_ITEM, vec![]),
            Some(r) => ("revision = :replacing", vec![(":replacing", n(r))]),
        };
        let items = vec![
            self.put(item("CURRENT".to_owned()), Some(condition))?,
            self.put(item(format!("REVISION#{revision:06}")), Some((NEW_ITEM, vec![])))?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(revision),
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
            {
                Err(StoreError::Conflict { pipeline: DEFINITIONS.to_lowercase() })
            }
            Err(error) => Err(backend(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_stored_deflated_and_read_back_as_is_text_an_earlier_version_stored() {
        let json = r#"{"pipeline":"web","executions":[]}"#.repeat(50);
        let packed = packed(&json).expect("deflates");
        let bytes = packed.as_b().map(|blob| blob.as_ref().len()).unwrap_or_default();
        assert!(bytes > 0 && bytes * 3 < json.len(), "{bytes} bytes for {}", json.len());
        let item = Item::from([("state".to_owned(), packed), ("old".to_owned(), s(json.clone()))]);
        assert_eq!(unpacked(&item, "state").expect("inflates"), json);
        assert_eq!(unpacked(&item, "old").expect("text"), json);
        let garbage = Item::from([("state".to_owned(), AttributeValue::B(vec![0xff, 0x00, 0x13].into()))]);
        assert!(matches!(unpacked(&garbage, "state"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(unpacked(&garbage, "missing"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_push_run_id_names_its_pipeline_before_githubs_delivery_guid() {
        assert_eq!(pushed_to("web-72d3162e-cc78-11e3-81ab-4c9367dc0958"), Some("web"));
        assert_eq!(pushed_to("web-api-72d3162e-cc78-11e3-81ab-4c9367dc0958"), Some("web-api"));
        // Not a GUID after the name: every name it could start with is read instead.
        assert_eq!(pushed_to("web-rerun-3"), None);
        assert_eq!(pushed_to("web-72d3162e-cc78-11e3-81ab-4c9367dc095g"), None);
        assert_eq!(pushed_to("-72d3162e-cc78-11e3-81ab-4c9367dc0958"), None);
        assert_eq!(pushed_to("72d3162e-cc78-11e3-81ab-4c9367dc0958"), None);
        assert_eq!(pushed_to("wé"), None);
    }

    /// The pipeline's item as a push to a pipeline that ran `history` runs before writes it, in bytes.
    fn pushed_after(history: usize) -> usize {
        use crate::contract::testing::{push, shipped};
        use crate::pipeline::{Decision, transition};
        let start: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().expect("time");
        let mut state = PipelineState::new("web", crate::definitions::ExecutionMode::Superseded);
        let runs = (0..history).map(|n| shipped(&format!("e{n:04}")));
        let last = vec![push("e9999", crate::definitions::ExecutionMode::Superseded, true)];
        for (n, events) in runs.chain([last]).enumerate() {
            for event in &events {
                let at = start + chrono::TimeDelta::minutes(n as i64);
                let Ok(Decision::Apply { state: next, .. }) = transition(&state, event, at) else {
                    panic!("{} not applied", event.name())
                };
                state = next;
            }
        }
        let json = encode_state(&state).expect("encodes");
        packed(&json).expect("packs").as_b().map(|blob| blob.as_ref().len()).expect("a binary")
    }

    #[test]
    fn a_push_writes_the_pipelines_item_as_large_whether_it_ran_ten_times_or_three_hundred() {
        let (ten, three_hundred) = (pushed_after(10), pushed_after(300));
        // Write units are billed per started kilobyte: the same units, and within a few bytes (a longer `seq`).
        assert_eq!(ten.div_ceil(1024), three_hundred.div_ceil(1024), "{ten} B vs {three_hundred} B");
        assert!(ten.abs_diff(three_hundred) < 32, "{ten} B vs {three_hundred} B");
    }

    /// A run of a pipeline with one deploy stage, approved: its StartDeployment waits in the outbox.
    fn deploying() -> PipelineState {
        use crate::contract::testing::shipped;
        use crate::pipeline::{Decision, transition};
        let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().expect("time");
        let mut state = PipelineState::new("web", crate::definitions::ExecutionMode::Superseded);
        for event in &shipped("e1")[..3] {
            let Ok(Decision::Apply { state: next, effects }) = transition(&state, event, now) else {
                panic!("{} not applied", event.name())
            };
            state = next;
            state.enqueue(effects, 1);
        }
        state
    }

    #[test]
    fn an_effect_naming_its_deploy_stage_is_stored_without_the_stages_target_and_read_back_whole() {
        let state = deploying();
        let start = state.pending.iter().position(|p| p.effect.kind() == crate::pipeline::EffectKind::StartDeployment);
        let start = start.expect("a deployment waits to start");
        let json = encode_state(&state).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        let stored = value.pointer(&format!("/pending/{start}/effect")).expect("the effect");
        assert_eq!(stored.get("stage").and_then(serde_json::Value::as_str), Some("deploy"));
        assert!(stored.get("target").is_none(), "{stored}");
        assert_eq!(decode_state(&json).expect("decodes"), state.stored());

        // As versions before stages stored it: the target in place, no stage
        let mut earlier = value.clone();
        let target =
            serde_json::to_value(state.executions[0].plan.first_deploy().map(|(_, d)| &d.target)).expect("JSON");
        let effect = earlier.pointer_mut(&format!("/pending/{start}/effect")).and_then(|e| e.as_object_mut());
        let effect = effect.expect("the effect");
        effect.remove("stage");
        effect.insert("target".into(), target);
        let read = decode_state(&earlier.to_string()).expect("decodes");
        assert_eq!(read.pending[start], state.pending[start]);

        // An effect whose stage the run's plan does not have is refused, not made up
        let mut gone = value;
        if let Some(effect) = gone.pointer_mut(&format!("/pending/{start}/effect")).and_then(|e| e.as_object_mut()) {
            effect.insert("stage".into(), "production".into());
        }
        assert!(matches!(decode_state(&gone.to_string()), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_test_stages_checks_are_stored_by_their_stage_and_read_back_from_the_plan_for_the_release() {
        use crate::pipeline::{Decision, transition};
        let now: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().expect("time");
        let pushed =
            crate::contract::testing::smoke_then("e1", "http://web/version", crate::definitions::Stage::DEPLOY);
        let built = crate::pipeline::Event::BuildSucceeded {
            execution_id: "e1".into(),
            build_id: "b-1".into(),
            outputs: crate::pipeline::BuildOutputs { image_uri: "web@sha256:1".into(), artifacts: None },
        };
        let mut state = PipelineState::new("web", crate::definitions::ExecutionMode::Queued);
        for event in [&pushed, &built] {
            let Ok(Decision::Apply { state: next, effects }) = transition(&state, event, now) else {
                panic!("{} not applied", event.name())
            };
            state = next;
            state.enqueue(effects, 1);
        }
        let (read, at) = checks_stored_by_stage(&state, "deploy");
        let Effect::RunTestChecks { checks, .. } = &read.pending[at].effect else { panic!("not the checks") };
        assert_eq!(checks[0].expect_body.as_deref(), Some("sha-e1"), "as they run for the release");
    }

    /// `state`'s pending checks, stored without them and read back as they were (`.0`, and where they wait, `.1`);
    /// moved to `elsewhere`, a stage whose plan has none, they are refused, never run as none.
    fn checks_stored_by_stage(state: &PipelineState, elsewhere: &str) -> (PipelineState, usize) {
        use crate::pipeline::EffectKind;
        let at = state.pending.iter().position(|p| p.effect.kind() == EffectKind::RunChecks).expect("checks wait");
        let json = encode_state(state).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        let stored = value.pointer(&format!("/pending/{at}/effect")).expect("the effect");
        assert!(stored.get("checks").is_none(), "{stored}");
        let read = decode_state(&json).expect("decodes");
        assert_eq!(read, state.stored());
        let mut gone = value;
        if let Some(effect) = gone.pointer_mut(&format!("/pending/{at}/effect")).and_then(|e| e.as_object_mut()) {
            effect.insert("stage".into(), elsewhere.into());
        }
        assert!(matches!(decode_state(&gone.to_string()), Err(StoreError::Corrupt { .. })));
        (read, at)
    }

    #[test]
    fn after_rollout_checks_are_stored_by_their_stage_and_read_back_from_the_plan() {
        use crate::contract::testing::{push, rolling, shipped};
        use crate::pipeline::{Decision, transition};
        let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().expect("time");
        let check = crate::definitions::Check::new("AfterRollout", "http://web/health");
        let mut pushed = push("e1", crate::definitions::ExecutionMode::Superseded, true);
        if let crate::pipeline::Event::Triggered { plan, .. } = &mut pushed {
            *plan.target_mut() = DeployTarget::Rolling(rolling(vec![check.clone()]));
        }
        let mut events = shipped("e1");
        events[0] = pushed;
        let mut state = PipelineState::new("web", crate::definitions::ExecutionMode::Superseded);
        for event in [&events[0], &events[1], &events[2], &events[4]] {
            let Ok(Decision::Apply { state: next, effects }) = transition(&state, event, now) else {
                panic!("{} not applied", event.name())
            };
            state = next;
            state.enqueue(effects, 1);
        }
        let (read, at) = checks_stored_by_stage(&state, "production");
        let Effect::RunChecks { checks, .. } = &read.pending[at].effect else { panic!("not the checks") };
        assert_eq!(checks, &[check]);
    }

    #[test]
    fn a_refused_put_of_the_state_reads_as_a_transactions_reasons_do() {
        let refused =
            |code: &str| put_refusal("web", Some(code), Some("Item size has exceeded the maximum allowed size"));
        assert!(matches!(refused("ConditionalCheckFailedException"), Some(StoreError::Conflict { .. })));
        for busy in ["TransactionConflictException", "ReplicatedWriteConflictException", "ThrottlingException"] {
            let error = refused(busy);
            assert!(error.as_ref().is_some_and(StoreError::is_contention), "{busy}: {error:?}");
        }
        let invalid = refused("ValidationException");
        assert!(
            matches!(invalid, Some(StoreError::Invalid { ref message, .. }) if message.contains("maximum allowed size"))
        );
        assert!(invalid.is_some_and(|error| !error.is_retryable()));
        assert!(refused("InternalServerError").is_none(), "left to be read as any call's failure");
        assert!(put_refusal("web", None, None).is_none());
    }
}
