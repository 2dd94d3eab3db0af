//! The notifier: wiring only. It acts on the sluice bus's `Execution Finished` and `Effects Due` events.
// The use case's nested async calls over generic ports make a deep future type.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use notifier::handler::{AwsApp, Config, on_event};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let app = Arc::new(AwsApp::from_aws(&sluice::runtime::config::aws().await, &config));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move { on_event(&app, &event.payload, chrono::Utc::now()).await }
    }))
    .await
}
