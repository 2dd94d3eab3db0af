//! Orchestration, adapters: the AWS side of the ports, one file per service, the only place an `aws_sdk_*` type
//! appears.

mod cloudwatch;
mod codebuild;
mod codedeploy;
mod dynamodb;
mod ecr;
mod ecs;
mod eventbridge;
mod github;
mod http;
mod packing;
mod s3;
mod secretsmanager;
mod sns;

pub use cloudwatch::CloudWatchAlarms;
pub use codebuild::CodeBuildStarter;
pub use codedeploy::CodeDeployDeployments;
pub use dynamodb::{DynamoDbStore, decode_state, encode_state};
pub use ecr::EcrImages;
pub use ecs::EcsDeployer;
pub use eventbridge::EventBridgePublisher;
pub use github::{GITHUB_API, GitHubApi};
pub use http::HttpProber;
pub use s3::S3Artifacts;
pub use secretsmanager::{SecretsManagerSecret, SecretsManagerWebhookSecret};
pub use sns::SnsNotifier;

/// `code: message` when `error` is the service answering with one of `codes` (a refusal that will not change on
/// retry), or when the request could not even be built; `None` for everything that may pass.
fn refusal<E, R>(error: &aws_sdk_sns::error::SdkError<E, R>, codes: &[&str]) -> Option<String>
where
    E: aws_sdk_sns::error::ProvideErrorMetadata,
{
    use aws_sdk_sns::error::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            codes.contains(&code).then(|| format!("{code}: {}", service.err().message().unwrap_or_default()))
        }
        SdkError::ConstructionFailure(_) => Some("the request could not be built".to_owned()),
        _ => None,
    }
}

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

/// Where a function signs in to GitHub: GitHub's API at `api`, with the credentials in the Secrets Manager secret
/// `secret` (its name or ARN), read when first needed; `None` for a stack given no GitHub credentials.
pub fn github_access(
    aws: &aws_config::SdkConfig,
    secret: Option<&str>,
    api: &str,
) -> Option<crate::usecases::GitHubAccess<GitHubApi, SecretsManagerSecret>> {
    let secret = secret?;
    Some(crate::usecases::GitHubAccess {
        github: GitHubApi::new(api),
        credentials: crate::usecases::KeptSecret::new(SecretsManagerSecret::new(
            aws_sdk_secretsmanager::Client::new(aws),
            secret,
        )),
    })
}

/// What a build left, as sluice reads it on AWS: its artifacts in S3 and its image in ECR.
pub fn build_outputs(
    aws: &aws_config::SdkConfig,
) -> crate::contract::ports::Built<S3Artifacts, EcrImages, CodeBuildStarter> {
    crate::contract::ports::Built {
        artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(aws)),
        images: EcrImages::new(aws_sdk_ecr::Client::new(aws)),
        reports: CodeBuildStarter::new(aws_sdk_codebuild::Client::new(aws)),
    }
}
