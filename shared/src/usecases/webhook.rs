//! A GitHub webhook delivery: verify it, find the pipelines its push is for, start an execution of each.
//!
//! Answers (status, JSON body) follow GitHub's expectations
//! (<https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks>): 2xx quickly for
//! anything accepted, including what sluice deliberately ignores; 4xx for what is wrong with the delivery.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use crate::definitions::Definitions;
use crate::github::{PushEvent, SignatureError, WebhookSecrets, verify_signature};
use crate::pipeline::{Event, ExecutionId, IgnoreReason, Plan, SourceFacts};
use crate::ports::{PipelineStore, ReceiptKey};
use crate::usecases::{EffectRunner, Handled, Input, handle};

/// Deliveries larger than this are refused (413). Function URLs take at most 6 MB; push payloads are far smaller.
pub const MAX_BODY: usize = 5 * 1024 * 1024;

/// One delivery, as it came: the headers sluice reads and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-GitHub-Event`.
    pub event: Option<&'a str>,
    /// `X-GitHub-Delivery`.
    pub delivery_id: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, body: json!({ "message": message.into() }) }
    }
}

/// Handles one delivery. Never fails: every outcome is a reply, and the cause of a 5xx is logged.
#[instrument(skip_all, fields(delivery = delivery.delivery_id.unwrap_or("-"), event = delivery.event.unwrap_or("-")))]
pub async fn receive_webhook<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    definitions: &Definitions,
    secrets: &WebhookSecrets,
    delivery: Delivery<'_>,
    now: DateTime<Utc>,
) -> Reply {
    if delivery.body.len() > MAX_BODY {
        return Reply::new(413, format!("the payload is larger than {MAX_BODY} bytes"));
    }
    if let Err(error) = verify_signature(secrets, delivery.body, delivery.signature) {
        warn!(%error, "delivery refused");
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
    let push = match PushEvent::parse(delivery.body) {
        Ok(push) => push,
        Err(error) => {
            let body = json!({ "message": error.to_string(), "field": error.field });
            return Reply { status: 400, body };
        }
    };
    if push.deleted {
        return Reply::new(202, format!("{} was deleted; a deletion starts nothing", push.git_ref));
    }
    let commit = push.head_commit.as_ref().map_or_else(|| push.after.clone(), |c| c.id.clone());

    let watching: Vec<_> = definitions.for_repository(&push.repository.full_name).collect();
    if watching.is_empty() {
        return Reply::new(202, format!("no pipeline watches {}", push.repository.full_name));
    }
    let mut started = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = 0;
    for pipeline in watching {
        if !pipeline.source.accepts_ref(&push.git_ref, &push.repository.default_branch) {
            skipped.push(json!({ "pipeline": pipeline.name, "reason": format!("{} is not in its branch or tag filters", push.git_ref) }));
            continue;
        }
        if push.git_ref.starts_with("refs/heads/") && !pipeline.source.accepts_files(push.changed_files()) {
            skipped.push(json!({ "pipeline": pipeline.name, "reason": "no changed file is in its path filters" }));
            continue;
        }
        let execution_id = ExecutionId(format!("{}-{delivery_id}", pipeline.name));
        let triggered = Event::Triggered {
            execution_id: execution_id.clone(),
            source: SourceFacts {
                repository: push.repository.full_name.clone(),
                commit: commit.clone(),
                git_ref: push.git_ref.clone(),
                pusher: push.pusher.name.clone(),
                delivery_id: delivery_id.to_owned(),
                message: push.head_commit.as_ref().map(|c| c.message.clone()).unwrap_or_default(),
                compare_url: push.compare.clone(),
            },
            plan: Box::new(Plan::from(pipeline)),
            mode: pipeline.mode,
        };
        let answer = json!({ "pipeline": pipeline.name, "execution_id": execution_id });
        let input = Input {
            pipeline: &pipeline.name,
            mode: pipeline.mode,
            event: &triggered,
            receipt: Some((ReceiptKey::delivery(delivery_id, &pipeline.name), answer.clone())),
            now,
        };
        match handle(store, runner, input).await {
            Ok(Handled::Applied | Handled::Ignored(IgnoreReason::DuplicateEvent)) => started.push(answer),
            Ok(Handled::Duplicate { answer }) => started.push(answer),
            Ok(Handled::Ignored(reason)) => {
                skipped.push(json!({ "pipeline": pipeline.name, "reason": format!("{reason:?}") }))
            }
            Ok(Handled::Refused(error)) => {
                skipped.push(json!({ "pipeline": pipeline.name, "reason": error.to_string() }))
            }
            Err(error) => {
                warn!(error = %error, pipeline = %pipeline.name, retryable = error.is_retryable(), "execution not started");
                failed += 1;
                skipped.push(json!({ "pipeline": pipeline.name, "reason": "sluice could not record or start the execution; redeliver" }));
            }
        }
    }
    info!(started = started.len(), skipped = skipped.len(), "push handled");
    let status = if failed > 0 && started.is_empty() { 503 } else { 202 };
    let message = match started.len() {
        0 => "no pipeline started".to_owned(),
        1 => "1 execution started".to_owned(),
        n => format!("{n} executions started"),
    };
    Reply { status, body: json!({ "message": message, "executions": started, "skipped": skipped }) }
}

#[cfg(test)]
mod tests;
