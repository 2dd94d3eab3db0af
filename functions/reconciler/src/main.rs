//! The reconciler: wiring only. Runs on a schedule (template.yaml), looks at every pipeline once per run.
// The use case's nested async calls over generic ports make a deep future type.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_runtime::{Error, run, service_fn, tracing};
use reconciler::handler;
use sluice::adapters::{CodeBuildStarter, DynamoDbStore, EventBridgePublisher, S3Artifacts};
use sluice::usecases::{CachedDefinitions, StageEffects};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = handler::Config::from_env()?;
    let aws = sluice::config::aws().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table);
    let builds = CodeBuildStarter::new(aws_sdk_codebuild::Client::new(&aws));
    let app = Arc::new(handler::App {
        store: store.clone(),
        definitions: CachedDefinitions::new(store),
        effects: StageEffects {
            publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&aws), &config.event_bus),
            builds: builds.clone(),
        },
        artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(&aws)),
        builds,
    });
    run(service_fn(move |_: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move { handler::on_schedule(&app, chrono::Utc::now()).await.map_err(Error::from) }
    }))
    .await
}
