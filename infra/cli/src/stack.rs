//! Where the command's stack is: AWS as the AWS CLI finds it (`--profile`, `--region`), the stack's outputs, or the
//! table and bus named directly; and AWS's errors in plain words.

use anyhow::{Context, Result, anyhow};
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use sluice::adapters::DynamoDbStore;

use crate::Global;

/// What the command line says about where to look, and how to answer.
pub struct Target {
    pub stack: Option<String>,
    pub table: Option<String>,
    pub bus: Option<String>,
    pub json: bool,
    profile: Option<String>,
    region: Option<String>,
}

impl From<Global> for Target {
    fn from(global: Global) -> Self {
        let Global { stack, table, bus, json, profile, region } = global;
        Self { stack, table, bus, json, profile, region }
    }
}

impl Target {
    /// AWS's configuration: `--profile` and `--region` over the environment and `~/.aws`, as the AWS CLI reads them.
    pub async fn aws(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::from_env();
        if let Some(profile) = &self.profile {
            // As the AWS CLI: a profile named on the command line wins over keys in the environment.
            let credentials =
                aws_config::profile::ProfileFileCredentialsProvider::builder().profile_name(profile).build();
            loader = loader.profile_name(profile).credentials_provider(credentials);
        }
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        loader.load().await
    }

    /// The stack's name: `--stack`, else `SLUICE_STACK`, else `sluice`.
    pub fn stack_name(&self) -> String {
        self.stack.clone().or_else(|| std::env::var("SLUICE_STACK").ok()).unwrap_or_else(|| "sluice".into())
    }
}

/// Where the stack keeps its state, and the bus its functions listen on.
pub struct Stack {
    pub config: aws_config::SdkConfig,
    pub table: String,
    pub bus: Option<String>,
    /// The stack's name (none when the table is named with --table).
    pub name: Option<String>,
    /// The stack's outputs (none when the table is named with --table).
    pub outputs: Vec<(String, String)>,
    /// The stack's status and the parameters it was deployed with (none when the table is named with --table).
    pub status: String,
    pub parameters: Vec<(String, String)>,
}

impl Stack {
    /// The table and bus the command line names, or the stack's outputs.
    pub async fn find(target: &Target) -> Result<Self> {
        let config = target.aws().await;
        if let Some(table) = &target.table {
            let (table, bus) = (table.clone(), target.bus.clone());
            let (outputs, status, parameters) = (Vec::new(), String::new(), Vec::new());
            return Ok(Self { config, table, bus, name: None, outputs, status, parameters });
        }
        let name = target.stack_name();
        let Described { outputs, status, parameters } = describe(&config, &name).await?;
        let bus = target.bus.clone();
        let mut found =
            Self { config, table: String::new(), bus, name: Some(name.clone()), outputs, status, parameters };
        found.table = found
            .output("PipelineTableName")
            .map(str::to_owned)
            .with_context(|| format!("stack {name} has no PipelineTableName output: is it sluice's?"))?;
        if found.bus.is_none() {
            found.bus = found.output("EventBusName").map(str::to_owned);
        }
        Ok(found)
    }

    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs.iter().find(|(k, _)| k == key).map(|(_, value)| value.as_str())
    }

    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters.iter().find(|(k, _)| k == key).map(|(_, value)| value.as_str())
    }

    /// The bus to announce on, or why there is none: `why` says what needs it.
    pub fn bus(&self, why: &str) -> Result<String> {
        self.bus.clone().with_context(|| format!("{why}: name it with --bus, or the stack with --stack"))
    }

    pub fn region(&self) -> String {
        region(&self.config)
    }

    pub fn store(&self) -> DynamoDbStore {
        DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&self.config), &self.table)
    }

    /// An error of the store, or of a use case that met one, in plain words: a table that is not there (DynamoDB's
    /// ResourceNotFoundException, wherever it is in the chain) is named with its region; any other error is left as
    /// it is.
    pub fn store_error(&self, error: impl Into<anyhow::Error>) -> anyhow::Error {
        use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
        let error = error.into();
        let missing = error.chain().any(|cause| cause.is::<ResourceNotFoundException>());
        if missing {
            return anyhow!(
                "there is no table {} in {}: name the stack with --stack (its PipelineTableName output), or the table \
                 with --table",
                self.table,
                self.region()
            );
        }
        error
    }

    /// Who the caller is: their AWS identity's ARN.
    pub async fn caller(&self) -> Result<String> {
        let identity = aws_sdk_sts::Client::new(&self.config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|error| anyhow!(plain(&error)))
            .context("finding who you are (STS GetCallerIdentity): are AWS credentials set?")?;
        identity.arn().map(str::to_owned).context("STS named no ARN for your identity")
    }
}

/// The caller's AWS account.
pub async fn account(config: &aws_config::SdkConfig) -> Result<String> {
    let identity =
        aws_sdk_sts::Client::new(config).get_caller_identity().send().await.map_err(|e| anyhow!(plain(&e)))?;
    identity.account().map(str::to_owned).context("STS named no account")
}

/// The region the configuration names, or a word saying none is set.
pub fn region(config: &aws_config::SdkConfig) -> String {
    config.region().map_or_else(|| "no region (set --region or AWS_REGION)".to_owned(), ToString::to_string)
}

/// What DescribeStacks says of a stack: its outputs, status and parameters.
struct Described {
    outputs: Vec<(String, String)>,
    status: String,
    parameters: Vec<(String, String)>,
}

/// The stack as CloudFormation describes it, or what is wrong: no such stack (named with its region), or AWS not
/// reached.
async fn describe(config: &aws_config::SdkConfig, name: &str) -> Result<Described> {
    let described = match aws_sdk_cloudformation::Client::new(config).describe_stacks().stack_name(name).send().await {
        Ok(described) => described,
        Err(error) if does_not_exist(&error) => {
            return Err(anyhow!("there is no stack `{name}` in {}: deploy it or pass --stack", region(config)));
        }
        Err(error) => {
            return Err(anyhow!(plain(&error)).context(format!(
                "finding stack {name} in {} (CloudFormation DescribeStacks): are AWS credentials and region set? \
                 Name another stack with --stack, or the table with --table",
                region(config)
            )));
        }
    };
    let stack = described.stacks().first().with_context(|| format!("there is no stack `{name}`"))?;
    let outputs =
        stack.outputs().iter().filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())));
    let parameters = stack
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?.to_owned(), p.parameter_value()?.to_owned())));
    let status = stack.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
    Ok(Described { outputs: outputs.collect(), status, parameters: parameters.collect() })
}

/// CloudFormation's answer for a stack that is not there: `ValidationError`, "Stack with id NAME does not exist".
fn does_not_exist<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().is_some_and(|e| {
        e.code() == Some("ValidationError") && e.message().is_some_and(|m| m.contains("does not exist"))
    })
}

/// An AWS SDK error as one line: the service's code and message, or the innermost cause of a failure to ask (no
/// credentials, no connection).
pub fn plain<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(service) = error.as_service_error() {
        return match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => service.to_string(),
        };
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
