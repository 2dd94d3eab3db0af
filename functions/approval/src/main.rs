//! The approval function: wiring only. One binary, two kinds of input: its function URL (the review page and the
//! decision) and the `Approval Requested` and `Effects Due` events of the sluice bus (send the request). The stack
//! deploys it twice: ApprovalFunction serves the URL, ApprovalRequestsFunction takes the events and is told the URL
//! (a function cannot be told its own URL: that is a cycle in CloudFormation).

// The use case's nested async calls over generic ports make a deep future type.
#![recursion_limit = "256"]

use std::sync::Arc;

use approval::handler::{AwsApp, Config, invoke};
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let app = Arc::new(AwsApp::from_aws(&sluice::runtime::config::aws().await, &config));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let app = Arc::clone(&app);
        async move { invoke(&app, event.payload, chrono::Utc::now()).await }
    }))
    .await
}
