//! The build-events function: wiring only. Builds the adapters once, then handles CodeBuild's state changes.
// The use case's nested async calls over generic ports make a deep future type.
#![recursion_limit = "256"]

use std::sync::Arc;

use build_events::handler;
use lambda_runtime::{Error, run, service_fn, tracing};
use sluice::adapters::{DynamoDbStore, S3Artifacts, stage_effects};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = handler::Config::from_env()?;
    let aws = sluice::config::aws().await;
    let app = Arc::new(handler::App {
        store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table),
        effects: stage_effects(&aws, &config.event_bus),
        artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(&aws)),
    });
    run(service_fn(move |event| {
        let app = Arc::clone(&app);
        async move { handler::on_event(&app, event, chrono::Utc::now()).await }
    }))
    .await
}
