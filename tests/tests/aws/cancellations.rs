//! How the DynamoDB adapter reads a cancelled transaction, item by item, against a stub that answers as DynamoDB
//! documents it (`TransactionCanceledException` with `CancellationReasons`,
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#API_TransactWriteItems_Errors>).
//! moto never produces these cancellations, so this is the one place a hand-made stand-in plays AWS.

use std::convert::Infallible;

use anyhow::Result;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::{PipelineStore, Receipt, ReceiptKey, StoreError, Version, Write};
use sluice::definitions::ExecutionMode;
use sluice::pipeline::PipelineState;

use crate::{apply, at, push};

/// Serves DynamoDB's cancellation answer with `reasons` to every request; returns its endpoint.
async fn stub(reasons: Value) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let service = hyper::service::service_fn(move |_request| {
                let body = body.clone();
                async move {
                    let response = hyper::Response::builder()
                        .status(400)
                        .header("content-type", "application/x-amz-json-1.0")
                        .header("x-amzn-requestid", "stub")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap_or_default();
                    Ok::<_, Infallible>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    Ok(endpoint)
}

/// A save of a new execution with a receipt, as the webhook makes it: the state, one execution, the receipt.
async fn save_against(reasons: Value) -> Result<StoreError> {
    let config = sluice_integration::aws_config(&stub(reasons).await?).await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), "sluice-table");
    let (state, _) = apply(&PipelineState::new("web", ExecutionMode::Superseded), &push("e1"), at(0));
    let receipt = Receipt { key: ReceiptKey::event("e-1"), answer: json!("ok"), recorded_at: at(0) };
    let write = Write::between(None, &state, Some(Version(3))).with_receipt(Some(&receipt));
    match store.save(&write).await {
        Ok(version) => anyhow::bail!("the stub cancels every transaction, yet the save returned {version:?}"),
        Err(error) => Ok(error),
    }
}

fn reasons(codes: &[&str]) -> Value {
    Value::Array(codes.iter().map(|code| json!({ "Code": code, "Message": format!("{code} here") })).collect())
}

#[tokio::test]
async fn a_failed_condition_on_the_state_is_a_conflict_and_on_the_receipt_a_duplicate() -> Result<()> {
    let error = save_against(reasons(&["ConditionalCheckFailed", "None", "None"])).await?;
    assert!(matches!(error, StoreError::Conflict { ref pipeline } if pipeline == "web"), "{error:?}");
    let error = save_against(reasons(&["None", "None", "ConditionalCheckFailed"])).await?;
    assert!(matches!(error, StoreError::Duplicate { ref key } if key.as_str() == "event#e-1"), "{error:?}");
    Ok(())
}

#[tokio::test]
async fn transaction_conflicts_throttling_and_capacity_are_busy_and_worth_retrying() -> Result<()> {
    for code in ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"] {
        let error = save_against(reasons(&["None", code, "None"])).await?;
        assert!(matches!(error, StoreError::Busy { ref reason, .. } if reason == code), "{code}: {error:?}");
        assert!(error.is_retryable() && error.is_contention(), "{code}");
    }
    Ok(())
}

#[tokio::test]
async fn a_validation_error_is_permanent_and_names_the_pipeline() -> Result<()> {
    let mut codes = reasons(&["ValidationError", "None", "None"]);
    codes[0]["Message"] = json!("Item size has exceeded the maximum allowed size");
    let error = save_against(codes).await?;
    assert!(matches!(error, StoreError::Invalid { .. }), "{error:?}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("pipeline web") && message.contains("maximum allowed size"), "{message}");
    Ok(())
}
