//! Messages to SNS topics (approval requests, run outcomes): one `Publish` with `MessageStructure: json`, so that
//! email subscribers get the plain-text email and every other protocol the JSON facts.

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use aws_sdk_sns::types::MessageAttributeValue;

use crate::contract::ports::{NotifyError, Subscription, TopicMessage, TopicNotifier};
use crate::definitions::APPROVER_ATTRIBUTE;

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
        let mut publish = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(&message.subject)
            .message_structure("json")
            .message(&message.message);
        if let Some(approver) = &message.approver {
            let value = MessageAttributeValue::builder().data_type("String").string_value(approver).build();
            let value = value.map_err(|error| NotifyError::Refused {
                topic: topic_arn.to_owned(),
                message: format!("the {APPROVER_ATTRIBUTE} message attribute could not be built"),
                source: Box::new(error),
            })?;
            publish = publish.message_attributes(APPROVER_ATTRIBUTE, value);
        }
        match publish.send().await {
            Ok(_) => Ok(()),
            Err(error) => Err(classify(topic_arn, error)),
        }
    }

    /// `ListSubscriptionsByTopic` (every page, up to [`MAX_SUBSCRIPTION_PAGES`]), then `GetSubscriptionAttributes`
    /// of each confirmed one for its filter policy.
    async fn subscriptions(&self, topic_arn: &str) -> Result<Vec<Subscription>, NotifyError> {
        let mut listed = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_SUBSCRIPTION_PAGES {
            let page = self.client.list_subscriptions_by_topic().topic_arn(topic_arn).set_next_token(next).send().await;
            let page = page.map_err(|error| classify(topic_arn, error))?;
            listed.extend(page.subscriptions().iter().map(|s| Subscription {
                arn: s.subscription_arn().unwrap_or_default().to_owned(),
                protocol: s.protocol().unwrap_or_default().to_owned(),
                endpoint: s.endpoint().unwrap_or_default().to_owned(),
                ..Subscription::default()
            }));
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        if next.is_some() {
            return Err(NotifyError::Refused {
                topic: topic_arn.to_owned(),
                message: format!("the topic has more than {} subscriptions to check", MAX_SUBSCRIPTION_PAGES * 100),
                source: "too many subscriptions".into(),
            });
        }
        // A few at a time: the functions have seconds, and a topic of approvers a handful of subscriptions.
        let mut read = Vec::with_capacity(listed.len());
        for batch in listed.chunks(ATTRIBUTE_READS_AT_ONCE) {
            let reads = batch.iter().map(|subscription| self.attributes(topic_arn, subscription));
            for subscription in futures_util::future::join_all(reads).await {
                read.push(subscription?);
            }
        }
        Ok(read)
    }
}

impl SnsNotifier {
    /// `subscription` with its attributes read: pending, filter policy and scope. One waiting for confirmation has no
    /// ARN yet (SNS lists it as `PendingConfirmation`), and receives nothing.
    async fn attributes(&self, topic_arn: &str, subscription: &Subscription) -> Result<Subscription, NotifyError> {
        if !subscription.arn.starts_with("arn:") {
            return Ok(Subscription { pending: true, ..subscription.clone() });
        }
        let read = self.client.get_subscription_attributes().subscription_arn(&subscription.arn).send().await;
        let attributes = read.map_err(|error| classify(topic_arn, error))?;
        let attributes = attributes.attributes();
        let attribute = |name: &str| attributes.and_then(|a| a.get(name)).cloned();
        Ok(Subscription {
            pending: attribute("PendingConfirmation").as_deref() == Some("true"),
            filter_policy: attribute("FilterPolicy").filter(|policy| !policy.trim().is_empty()),
            filter_scope: attribute("FilterPolicyScope"),
            ..subscription.clone()
        })
    }
}

/// A topic's subscriptions read at most this many pages of 100: a topic of named approvers has a handful.
const MAX_SUBSCRIPTION_PAGES: usize = 2;
/// How many subscriptions' attributes are read at once.
const ATTRIBUTE_READS_AT_ONCE: usize = 10;

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
