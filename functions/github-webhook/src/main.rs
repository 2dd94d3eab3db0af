//! The GitHub webhook function: wiring only. Reads its configuration and the webhook secret once, builds the
//! adapters once, then serves the function URL.

use std::sync::Arc;

use github_webhook::handler::{AwsApp, Config, respond};
use lambda_http::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let app = Arc::new(AwsApp::from_aws(&sluice::runtime::config::aws().await, &config).await?);
    run(service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(respond(&app, request, chrono::Utc::now()).await) }
    }))
    .await
}
