//! The AWS adapters: one file per service, the only place an `aws_sdk_*` type appears.

mod codebuild;
mod dynamodb;
mod eventbridge;
mod s3;
mod secretsmanager;
mod sns;

pub use codebuild::CodeBuildStarter;
pub use dynamodb::{DynamoDbStore, decode_state, encode_state};
pub use eventbridge::EventBridgePublisher;
pub use s3::S3Artifacts;
pub use secretsmanager::SecretsManagerWebhookSecret;
pub use sns::SnsApprovalNotifier;

/// The effect runner of the functions that move runs through their stages, on AWS: events on the bus named `bus`,
/// builds on CodeBuild.
pub fn stage_effects(
    aws: &aws_config::SdkConfig,
    bus: &str,
) -> crate::usecases::StageEffects<EventBridgePublisher, CodeBuildStarter> {
    crate::usecases::StageEffects {
        publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(aws), bus),
        builds: CodeBuildStarter::new(aws_sdk_codebuild::Client::new(aws)),
    }
}
