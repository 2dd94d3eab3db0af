//! `sluice page [RUN]`: the status page's address, or a run's page's (the link to share).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use sluice::adapters::SecretsManagerSecret;
use sluice::contract::ports::SecretSource;
use sluice::pipeline::ExecutionId;
use sluice::present::status::StatusKey;
use sluice::present::text::with_slash;

use crate::show_run::read_run;
use crate::stack::{Stack, Target};

/// The status page's address (every pipeline), or a run's page's
///
/// Made of the stack's ApprovalUrl output and the key in its StatusKeySecretArn; a run's page shows that run only.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice page\n  sluice page web-72d3162e-cc78-11e3-81ab-4c9367dc0958")]
pub struct Page {
    /// A run whose page to give instead
    run: Option<String>,
}

impl Page {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let stack = Stack::find(target).await?;
        let (Some(url), Some(secret)) = (stack.output("ApprovalUrl"), stack.output("StatusKeySecretArn")) else {
            bail!(
                "the status page's address is made from the stack's ApprovalUrl and StatusKeySecretArn outputs: name \
                 the stack (--stack, or SLUICE_STACK), not its table; a stack deployed before the status page needs \
                 `sam deploy` again"
            );
        };
        let client = aws_sdk_secretsmanager::Client::new(&stack.config);
        let value = SecretsManagerSecret::new(client, secret).read().await.context("reading the status page key")?;
        let key = StatusKey::new(value).context("the status page key")?;
        let path = match self.run {
            Some(run) => key.run_path(&read_run(&stack, &ExecutionId(run)).await?.id),
            None => key.overview_path(),
        };
        let address = format!("{}{path}", with_slash(url));
        if target.json {
            println!("{}", serde_json::to_string_pretty(&json!({ "url": address }))?);
        } else {
            anstream::println!("{address}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
