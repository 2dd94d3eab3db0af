//! The AWS adapters: one file per service, the only place an `aws_sdk_*` type appears.

mod dynamodb;
mod eventbridge;

pub use dynamodb::DynamoDbStore;
pub use eventbridge::EventBridgePublisher;
