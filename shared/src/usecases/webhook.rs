//! A GitHub webhook delivery: verify it, find the pipelines its push is for, start an execution of each.
//!
//! Answers (status, JSON body) follow GitHub's expectations
//! (<https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks>): 2xx quickly for
//! anything accepted, including what sluice deliberately ignores; 4xx for what is wrong with the delivery.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use tracing::{debug, error, info, instrument, warn};

use crate::contract::ports::{
    CommitHistory, DefinitionsStore, PipelineStore, RECEIPT_DAYS, ReceiptKey, SecretSource, WebhookSecretSource,
};
use crate::definitions::Pipeline;
use crate::github::webhook::{PushEvent, SignatureError, payload_digest, payload_of};
use crate::pipeline::{
    CommitOrder, Compared, Event, ExecutionId, IgnoreReason, Plan, SourceFacts, TransitionError, bounded,
};
use crate::runtime::telemetry::Chain;
use crate::usecases::{
    CachedDefinitions, EffectRunner, GitHubAccess, HandleError, Handled, Input, WebhookKeys, handle_push,
};

/// Deliveries larger than this are refused (413). Function URLs take at most 6 MB; push payloads are far smaller.
pub const MAX_BODY: usize = 5 * 1024 * 1024;

/// The longest push-derived strings sluice stores (a commit message is cut, the rest are far below in practice).
pub const MAX_MESSAGE: usize = 1024;
pub const MAX_NAME: usize = 256;
pub const MAX_URL: usize = 512;

/// One delivery, as it came: the method, the headers sluice reads and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub method: &'a str,
    /// `Content-Type`: `application/json` or `application/x-www-form-urlencoded`.
    pub content_type: Option<&'a str>,
    /// `X-GitHub-Event`.
    pub event: Option<&'a str>,
    /// `X-GitHub-Delivery`.
    pub delivery_id: Option<&'a str>,
    /// `X-GitHub-Hook-ID`: the webhook that sent it (to find the delivery in GitHub's list of them).
    pub hook_id: Option<&'a str>,
    /// `X-GitHub-Hook-Installation-Target-Type`: `repository` for a repository's webhook (an organisation's or an
    /// app's webhook lists its deliveries elsewhere).
    pub hook_target: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer: an HTTP status, a JSON body, and for a 405 the methods allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The `Allow` header.
    pub allow: Option<&'static str>,
}

impl Reply {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "message": message.into() }), allow: None }
    }
}

/// What the webhook needs besides the delivery.
pub struct Webhook<'a, S, D, R, K, G, C> {
    pub store: &'a S,
    pub effects: &'a R,
    pub definitions: &'a CachedDefinitions<D>,
    pub keys: &'a WebhookKeys<K>,
    /// Where two pushes of a ref made in the same second are ordered (GitHub's compare, with the Contents
    /// permission); `None`: the one that arrives last counts as newest.
    pub github: Option<&'a GitHubAccess<G, C>>,
}

/// How long the webhook keeps trying to record a push whose save was contended or throttled, within the function's
/// 10 seconds (`Timeout` in `template.yaml`), before it answers 503. GitHub does not redeliver a failed delivery by
/// itself.
pub const RECORD_BUDGET: Duration = Duration::from_secs(6);

/// What a 5xx answer logs, once, at error level: the line the stack's `PushesNotRecorded` metric filter counts.
pub const NOT_RECORDED: &str = "sluice.push_not_recorded";

/// How long the webhook waits for GitHub to compare two commits pushed in the same second; without an answer, the
/// push that arrived last counts as newest.
pub const COMPARE_BUDGET: Duration = Duration::from_secs(2);
/// With less of [`RECORD_BUDGET`] left than this, GitHub is not asked.
const MIN_COMPARE: Duration = Duration::from_millis(300);

/// Handles one delivery. Never fails: every outcome is a reply. A 5xx (GitHub shows the delivery failed, and does not
/// redeliver it by itself) is logged as one [`NOT_RECORDED`] line with the delivery's and the webhook's ids.
#[instrument(skip_all, fields(delivery = delivery.delivery_id.unwrap_or("-"), event = delivery.event.unwrap_or("-")))]
pub async fn receive_webhook<S, D, R, K, G, C>(
    webhook: Webhook<'_, S, D, R, K, G, C>,
    delivery: Delivery<'_>,
    now: DateTime<Utc>,
) -> Reply
where
    S: PipelineStore,
    D: DefinitionsStore,
    R: EffectRunner,
    K: WebhookSecretSource,
    G: CommitHistory,
    C: SecretSource,
{
    let reply = receive(webhook, delivery, now).await;
    if reply.status >= 500 {
        let message = reply.body["message"].as_str().unwrap_or_default();
        let (delivery_id, hook_id) = (delivery.delivery_id.unwrap_or("-"), delivery.hook_id.unwrap_or("-"));
        error!(delivery = delivery_id, hook = hook_id, status = reply.status, reason = message, "{NOT_RECORDED}");
    }
    reply
}

async fn receive<S, D, R, K, G, C>(
    webhook: Webhook<'_, S, D, R, K, G, C>,
    delivery: Delivery<'_>,
    now: DateTime<Utc>,
) -> Reply
where
    S: PipelineStore,
    D: DefinitionsStore,
    R: EffectRunner,
    K: WebhookSecretSource,
    G: CommitHistory,
    C: SecretSource,
{
    if !delivery.method.eq_ignore_ascii_case("POST") {
        let mut reply =
            Reply::new(405, format!("{} is not allowed: GitHub delivers webhooks with POST", delivery.method));
        reply.allow = Some("POST");
        return reply;
    }
    if delivery.body.len() > MAX_BODY {
        return Reply::new(413, format!("the payload is larger than {MAX_BODY} bytes"));
    }
    if let Err(error) = webhook.keys.verify(delivery.body, delivery.signature, now).await {
        warn!(error = %Chain(&error), "delivery refused");
        let message = match error {
            SignatureError::Missing => "X-Hub-Signature-256 is missing: set a secret on the webhook",
            SignatureError::Malformed | SignatureError::Mismatch => "the signature does not match",
        };
        return Reply::new(401, message);
    }
    let Some(event) = delivery.event.filter(|e| !e.is_empty()) else {
        return Reply::new(400, "the X-GitHub-Event header is missing");
    };
    let Some(delivery_id) = delivery.delivery_id.filter(|d| !d.is_empty() && d.len() <= 128) else {
        return Reply::new(400, "the X-GitHub-Delivery header is missing or too long");
    };
    match event {
        "ping" => return Reply::new(200, "pong"),
        "push" => {}
        other => return Reply::new(202, format!("{other} events are ignored; sluice acts on push")),
    }
    let (push, digest) = match read_push(delivery, now) {
        Ok(read) => read,
        Err(reply) => return reply,
    };
    let definitions = match webhook.definitions.get().await {
        Ok(definitions) => definitions,
        Err(cause) => {
            error!(error = %Chain(&cause), "no usable pipeline definitions");
            // Until definitions are published (or fixed), GitHub should show the delivery failed, to redeliver.
            return Reply::new(503, "sluice has no usable pipeline definitions");
        }
    };
    let watching: Vec<&Pipeline> = definitions.for_repository(&push.repository.full_name).collect();
    if watching.is_empty() {
        return Reply::new(202, format!("no pipeline watches {}", bounded(&push.repository.full_name, MAX_NAME)));
    }
    let source = source_of(&push, delivery, delivery_id);
    let mut skipped = Vec::new();
    let mut starting = Vec::new();
    for pipeline in watching {
        if !pipeline.source.accepts_ref(&push.git_ref, &push.repository.default_branch) {
            skipped.push(json!({ "pipeline": pipeline.name, "reason": format!("{} is not in its branch or tag filters", source.git_ref) }));
        } else if push.git_ref.starts_with("refs/heads/") && !pipeline.source.accepts_files(push.changed_files()) {
            skipped.push(json!({ "pipeline": pipeline.name, "reason": "no changed file is in its path filters" }));
        } else {
            starting.push(pipeline);
        }
    }
    // Each pipeline is its own item and its own receipt: they are recorded side by side.
    let outcomes = futures_util::future::join_all(
        starting.iter().map(|pipeline| start(&webhook, pipeline, &source, &digest, now)),
    )
    .await;
    answer(outcomes, skipped)
}

/// The answer to a push once each pipeline watching it has recorded it, or not: the runs started, those skipped
/// and why, 503 if a pipeline could not record it.
fn answer(outcomes: Vec<Started>, mut skipped: Vec<Value>) -> Reply {
    let mut started = Vec::new();
    let mut failed = 0usize;
    for outcome in outcomes {
        match outcome {
            Started::Yes(answer) => started.push(answer),
            Started::No(reason) => skipped.push(reason),
            Started::Failed(reason) => {
                failed += 1;
                skipped.push(reason);
            }
        }
    }
    info!(started = started.len(), skipped = skipped.len(), failed, "push handled");
    // A pipeline that could not record the push must hear it again: GitHub redelivers on a 5xx, and pipelines
    // that did record it answer the redelivery as the first time.
    let status = if failed > 0 { 503 } else { 202 };
    let message = match (failed, started.len()) {
        (1.., _) => format!("{failed} pipeline(s) could not record the push; redeliver it"),
        (0, 0) => "no pipeline started".to_owned(),
        (0, 1) => "1 execution started".to_owned(),
        (0, n) => format!("{n} executions started"),
    };
    Reply { status, body: json!({ "message": message, "executions": started, "skipped": skipped }), allow: None }
}

/// The push a delivery carries, and the digest of its signed payload; or the answer to a payload sluice does not run:
/// unreadable, not a commit, a deletion, a head commit that is not the pushed one, or older than the receipts.
fn read_push(delivery: Delivery<'_>, now: DateTime<Utc>) -> Result<(PushEvent, String), Reply> {
    let parsed = payload_of(delivery.content_type, delivery.body)
        .and_then(|payload| PushEvent::parse(&payload).map(|push| (push, payload_digest(&payload))));
    let (push, digest) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let body = json!({ "message": error.to_string(), "field": error.field });
            return Err(Reply { status: 400, body, allow: None });
        }
    };
    if !is_commit(&push.after) {
        let body = json!({ "message": "invalid push payload at `after`: not a commit id", "field": "after" });
        return Err(Reply { status: 400, body, allow: None });
    }
    if push.deleted {
        return Err(Reply::new(202, format!("{} was deleted; a deletion starts nothing", push.git_ref)));
    }
    // The commit built is the commit pushed: GitHub sends `head_commit.id` equal to `after` for a branch (and
    // `head_commit` null only for a deletion). Anything else would have CodeBuild build another source version than
    // the push's. An annotated tag's `after` is the tag object, and its `head_commit` the commit it tags.
    let tag = push.git_ref.starts_with("refs/tags/");
    if let Some(head) = push.head_commit.as_ref().filter(|head| head.id != push.after && !tag) {
        let message = format!(
            "invalid push payload at `head_commit.id`: {} is not the pushed commit `after` ({})",
            bounded(&head.id, 80),
            push.after
        );
        return Err(Reply { status: 400, body: json!({ "message": message, "field": "head_commit.id" }), allow: None });
    }
    // A push older than the receipts sluice keeps could be a replay it no longer recognises.
    let window = TimeDelta::days(RECEIPT_DAYS);
    if let Some(pushed_at) = push.repository.pushed_at.filter(|&at| now.signed_duration_since(at) > window) {
        let message = format!(
            "the push was made at {}, more than {RECEIPT_DAYS} days ago; sluice runs no push older than that (a replay \
             would not be recognised): push the commit again, or order it with `sluice rerun`",
            pushed_at.format("%Y-%m-%d %H:%M UTC")
        );
        warn!(%pushed_at, "a push older than the receipt window refused");
        return Err(Reply {
            status: 422,
            body: json!({ "message": message, "field": "repository.pushed_at" }),
            allow: None,
        });
    }
    Ok((push, digest))
}

/// What a run records of the push `delivery` carries.
fn source_of(push: &PushEvent, delivery: Delivery<'_>, delivery_id: &str) -> SourceFacts {
    // An annotated tag's `after` is the tag object; its `head_commit` the commit it tags.
    let tag = push.git_ref.starts_with("refs/tags/");
    SourceFacts {
        repository: bounded(&push.repository.full_name, MAX_NAME),
        commit: match push.head_commit.as_ref().filter(|head| tag && is_commit(&head.id)) {
            Some(head) => head.id.clone(),
            None => push.after.clone(),
        },
        before: push.before.clone(),
        git_ref: bounded(&push.git_ref, MAX_NAME),
        pusher: bounded(&push.pusher.name, MAX_NAME),
        pusher_email: push
            .pusher
            .email
            .as_deref()
            .filter(|email| !email.is_empty())
            .map(|email| bounded(email, MAX_NAME)),
        delivery_id: delivery_id.to_owned(),
        message: bounded(push.head_commit.as_ref().map_or("", |c| c.message.as_str()), MAX_MESSAGE),
        compare_url: bounded(&push.compare, MAX_URL),
        pushed_at: push.repository.pushed_at,
        hook_id: delivery
            .hook_id
            .filter(|_| delivery.hook_target.is_none_or(|target| target.eq_ignore_ascii_case("repository")))
            .and_then(|id| id.trim().parse().ok()),
        compared: None,
    }
}

fn is_commit(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_hexdigit())
}

enum Started {
    Yes(Value),
    No(Value),
    Failed(Value),
}

/// Records the push on one pipeline and starts its run. A push made in the same second as the ref's last run, that
/// the pushes seen do not order, is recorded once GitHub has compared the two commits (or could not).
async fn start<S, D, R, K, G, C>(
    webhook: &Webhook<'_, S, D, R, K, G, C>,
    pipeline: &Pipeline,
    source: &SourceFacts,
    digest: &str,
    now: DateTime<Utc>,
) -> Started
where
    S: PipelineStore,
    R: EffectRunner,
    G: CommitHistory,
    C: SecretSource,
{
    let execution_id = ExecutionId(format!("{}-{}", pipeline.name, source.delivery_id));
    let answer = json!({ "pipeline": pipeline.name, "execution_id": execution_id });
    let skipped = |reason: String| Started::No(json!({ "pipeline": pipeline.name, "reason": reason }));
    let started = tokio::time::Instant::now();
    let mut source = source.clone();
    let mut comparisons = 0;
    let handled = loop {
        let triggered = Event::Triggered {
            execution_id: execution_id.clone(),
            source: source.clone(),
            plan: Box::new(Plan::from(pipeline)),
            mode: pipeline.mode,
            ordered: None,
        };
        let input = Input {
            pipeline: &pipeline.name,
            mode: pipeline.mode,
            event: &triggered,
            // Keyed by the signed payload: a redelivery, or a replay under another delivery id, is recognised.
            receipt: Some((ReceiptKey::push(digest, &pipeline.name), answer.clone())),
            now,
        };
        match record(webhook.store, webhook.effects, input, started).await {
            // The ref's head may have moved on meanwhile: compared again with the new head, twice more at most;
            // after that, or without the time to ask, the push is recorded as arrived (never dropped unrecorded).
            Ok(Handled::Refused(TransitionError::PushOrderUnknown { head, .. })) if comparisons < 6 => {
                comparisons += 1;
                let left = RECORD_BUDGET.saturating_sub(started.elapsed()).min(COMPARE_BUDGET);
                let order = match webhook.github {
                    Some(github) if comparisons <= 3 && left >= MIN_COMPARE => {
                        compare(github, &source, &head, left).await
                    }
                    github => {
                        let why = match github {
                            None => "without GitHub credentials",
                            Some(_) => "without the time to ask GitHub again",
                        };
                        info!(commit = %source.commit, head, "pushed in the same second as the ref's head; {why}, the push that arrived last counts as newest");
                        CommitOrder::Unknown
                    }
                };
                source.compared = Some(Compared { head, order });
            }
            other => break other,
        }
    };
    match handled {
        Ok(Handled::Applied) => Started::Yes(answer),
        // A push of an older commit is recorded, as skipped, with the reason.
        Ok(Handled::Skipped { reason }) => skipped(reason),
        Ok(Handled::Ignored(IgnoreReason::DuplicateEvent)) => Started::Yes(answer),
        Ok(Handled::Duplicate { answer }) => Started::Yes(answer),
        Ok(Handled::Ignored(reason)) => skipped(format!("{reason:?}")),
        // The ref's head kept moving while the push was being ordered: GitHub should send it again.
        Ok(Handled::Refused(error @ TransitionError::PushOrderUnknown { .. })) => {
            warn!(%error, pipeline = %pipeline.name, "the push could not be ordered");
            Started::Failed(json!({ "pipeline": pipeline.name, "reason": format!("{error}; redeliver it") }))
        }
        Ok(Handled::Refused(error)) => skipped(error.to_string()),
        Err(error) => {
            warn!(error = %Chain(&error), pipeline = %pipeline.name, retryable = error.is_retryable(), "execution not started");
            Started::Failed(
                json!({ "pipeline": pipeline.name, "reason": "sluice could not record the push; redeliver it" }),
            )
        }
    }
}

/// Records `input`: a save contended or throttled is tried again while the function has time (counted from
/// `started`); the receipt keeps it once.
async fn record<S: PipelineStore, R: EffectRunner>(
    store: &S,
    effects: &R,
    input: Input<'_>,
    started: tokio::time::Instant,
) -> Result<Handled, HandleError> {
    let mut tries = 0u32;
    loop {
        tries += 1;
        // An attempt may not run past the function's time: the answer (and its log line) must go out.
        let left = (RECORD_BUDGET + Duration::from_secs(2)).saturating_sub(started.elapsed());
        let attempt = match tokio::time::timeout(left, handle_push(store, effects, input.clone())).await {
            Ok(handled) => handled,
            Err(_) => Err(HandleError::Contended { pipeline: input.pipeline.to_owned() }),
        };
        let pause = Duration::from_millis({
            let ceiling = 100u64 << tries.min(4);
            fastrand::u64(ceiling / 2..=ceiling)
        });
        match attempt {
            Err(error) if error.is_retryable() && started.elapsed() + pause < RECORD_BUDGET => {
                debug!(error = %Chain(&error), tries, "the push could not be recorded yet; trying again");
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

/// How `source`'s commit stands against the ref's `head`, as GitHub compares them; `Unknown` when GitHub does not
/// answer within `left`.
async fn compare<G: CommitHistory, C: SecretSource>(
    github: &GitHubAccess<G, C>,
    source: &SourceFacts,
    head: &str,
    left: Duration,
) -> CommitOrder {
    let asked = async {
        let credentials = github.sign_in().await.map_err(|error| Chain(&error).to_string())?;
        github
            .github
            .compare(&credentials, &source.repository, head, &source.commit)
            .await
            .map_err(|error| Chain(&error).to_string())
    };
    match tokio::time::timeout(left, asked).await {
        Ok(Ok(order)) => {
            info!(commit = %source.commit, head, ?order, "pushed in the same second as the ref's head; GitHub compared them");
            order
        }
        Ok(Err(error)) => {
            warn!(error, commit = %source.commit, head, "GitHub could not compare two commits pushed in the same second; the push that arrived last counts as newest");
            CommitOrder::Unknown
        }
        Err(_) => {
            warn!(commit = %source.commit, head, "GitHub did not compare two commits pushed in the same second in time; the push that arrived last counts as newest");
            CommitOrder::Unknown
        }
    }
}

#[cfg(test)]
mod tests;
