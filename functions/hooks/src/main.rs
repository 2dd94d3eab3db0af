//! The hooks function: wiring only. CodeDeploy invokes it for the lifecycle hooks of sluice's blue/green
//! deployments, ECS at the checked lifecycle stages of ECS-native ones; `Checks Requested` wakes it for a rolling update's AfterRollout checks, and the reconciler's
//! `Effects Due` for hook answers and checks that are still due.
// The use case's nested async calls over generic ports make a deep future type.
#![recursion_limit = "256"]

use std::sync::Arc;

use hooks::handler::{AwsApp, Config, on_invocation, remaining};
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let app = Arc::new(AwsApp::from_aws(&sluice::runtime::config::aws().await, &config)?);
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move {
            let now = chrono::Utc::now();
            on_invocation(&app, &event.payload, remaining(event.context.deadline, now), now).await
        }
    }))
    .await
}
