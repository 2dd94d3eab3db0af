//! Messages to SNS topics (approval requests, run outcomes): one `Publish` with `MessageStructure: json`, so that
//! email subscribers get the plain-text email and every other protocol the JSON facts.

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use crate::contract::ports::TopicMessage;
use crate::contract::ports::{NotifyError, TopicNotifier};

#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }
}

impl TopicNotifier for SnsNotifier {
    async fn notify(&self, topic_arn: &str, message: &TopicMessage) -> Result<(), NotifyError> {
        let sent = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(&message.subject)
            .message_structure("json")
            .message(&message.message)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(error) => Err(classify(topic_arn, error)),
        }
    }
}

/// <https://docs.aws.amazon.com/sns/latest/api/API_Publish.html#API_Publish_Errors>: a missing topic, a denied
/// publish or an invalid message stay so; throttling, internal errors and transport failures pass.
fn classify<E, R>(topic: &str, error: SdkError<E, R>) -> NotifyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let refused = super::refusal(
        &error,
        &[
            "NotFound",
            "NotFoundException",
            "AuthorizationError",
            "InvalidParameter",
            "InvalidParameterValue",
            "InvalidSecurity",
            "KMSAccessDenied",
            "KMSDisabled",
            "KMSNotFound",
        ],
    );
    match refused {
        Some(message) => NotifyError::Refused { topic: topic.to_owned(), message, source: Box::new(error) },
        None => NotifyError::Unavailable { topic: topic.to_owned(), source: Box::new(error) },
    }
}
