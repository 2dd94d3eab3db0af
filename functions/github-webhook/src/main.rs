//! The GitHub webhook function: wiring only. Reads its configuration and the webhook secret once, builds the
//! adapters once, then serves the function URL.

use github_webhook::handler;

use std::sync::Arc;

use lambda_http::{Error, run, service_fn, tracing};
use sluice::adapters::{DynamoDbStore, stage_effects, webhook_secrets};
use sluice::usecases::CachedDefinitions;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = handler::Config::from_env()?;
    let aws = sluice::config::aws().await;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.common.table);
    let secrets = webhook_secrets(&aws_sdk_secretsmanager::Client::new(&aws), &config.secret_id).await?;
    let app = Arc::new(handler::App {
        store: store.clone(),
        definitions: CachedDefinitions::new(store),
        effects: stage_effects(&aws, &config.common.event_bus),
        secrets,
    });
    run(service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(handler::respond(&app, request, chrono::Utc::now()).await) }
    }))
    .await
}
