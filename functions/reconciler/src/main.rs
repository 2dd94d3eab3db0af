//! The reconciler: wiring only. Runs on a schedule (template.yaml), looks at every pipeline once per run.
// The use case's nested async calls over generic ports make a deep future type.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_runtime::{Error, run, service_fn, tracing};
use reconciler::handler;
use sluice::adapters::{DynamoDbStore, S3Artifacts, stage_effects};
use sluice::usecases::CachedDefinitions;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = handler::Config::from_env()?;
    let aws = sluice::config::aws().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let effects = stage_effects(&aws, &config.event_bus);
    let app = Arc::new(handler::App {
        store: store.clone(),
        definitions: CachedDefinitions::new(store),
        builds: effects.builds.clone(),
        effects,
        artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(&aws)),
    });
    run(service_fn(move |_: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move { handler::on_schedule(&app, chrono::Utc::now()).await.map_err(Error::from) }
    }))
    .await
}
