//! The AWS adapters: one file per service, the only place an `aws_sdk_*` type appears.

mod codebuild;
mod dynamodb;
mod eventbridge;
mod s3;
mod secretsmanager;

pub use codebuild::CodeBuildStarter;
pub use dynamodb::DynamoDbStore;
pub use eventbridge::EventBridgePublisher;
pub use s3::S3Artifacts;
pub use secretsmanager::{SecretError, webhook_secrets};
