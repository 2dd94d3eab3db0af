//! `AlarmStates` on CloudWatch: DescribeAlarms by name
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html>), of metric alarms:
//! reading composite alarms takes `cloudwatch:DescribeAlarms` on every alarm (`*`), while metric alarms are read with
//! the permission on their own ARNs (the stack's `SoakAlarms`).

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::SdkError;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use tracing::instrument;

use crate::contract::ports::{AlarmError, AlarmReading, AlarmStates};

/// Errors that will not pass on retry.
const REFUSALS: &[&str] = &["AccessDenied", "AccessDeniedException", "InvalidParameterValue", "InvalidNextToken"];

/// Alarm states on CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarms {
    client: Client,
}

impl CloudWatchAlarms {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn classify<E, R>(error: SdkError<E, R>) -> AlarmError
where
    E: aws_sdk_cloudwatch::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match super::refusal(&error, REFUSALS) {
        Some(message) => AlarmError::Refused { message, source: Box::new(error) },
        None => AlarmError::Unavailable { source: Box::new(error) },
    }
}

impl AlarmStates for CloudWatchAlarms {
    #[instrument(skip(self))]
    async fn states(&self, names: &[String]) -> Result<Vec<AlarmReading>, AlarmError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let ask =
            self.client.describe_alarms().set_alarm_names(Some(names.to_vec())).alarm_types(AlarmType::MetricAlarm);
        let mut pages = ask.into_paginator().send();
        let mut readings = Vec::new();
        let reading = |name: Option<&str>, state: Option<&StateValue>, reason: Option<&str>| AlarmReading {
            name: name.unwrap_or_default().to_owned(),
            in_alarm: state == Some(&StateValue::Alarm),
            reason: reason.map(str::to_owned),
        };
        while let Some(page) = pages.next().await {
            let page = page.map_err(classify)?;
            readings.extend(
                page.metric_alarms().iter().map(|a| reading(a.alarm_name(), a.state_value(), a.state_reason())),
            );
        }
        Ok(readings)
    }
}
