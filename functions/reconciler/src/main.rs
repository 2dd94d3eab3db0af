//! The reconciler: wiring only. Runs on a schedule (template.yaml), looks at every pipeline once per run.
// The use case's nested async calls over generic ports make a deep future type.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_runtime::{Error, run, service_fn, tracing};
use reconciler::handler::{AwsApp, Config, on_schedule};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let app = Arc::new(AwsApp::from_aws(&sluice::runtime::config::aws().await, &config));
    run(service_fn(move |_: lambda_runtime::LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move { on_schedule(&app, chrono::Utc::now()).await.map_err(Error::from) }
    }))
    .await
}
