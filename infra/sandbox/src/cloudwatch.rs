//! CloudWatch's part that moto does not play: moto holds metric alarms (PutMetricAlarm, SetAlarmState,
//! DescribeAlarms) but publishes nothing when one changes state. [`Alarms`] changes an alarm's state in moto and puts
//! the "CloudWatch Alarm State Change" event CloudWatch would on the default bus, in the shape AWS documents
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html>).

use anyhow::{Context, Result};
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use chrono::Utc;
use serde_json::json;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// Metric alarms in moto whose state changes reach EventBridge.
#[derive(Clone)]
pub struct Alarms {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// The bus AWS's own events arrive on.
    pub bus: String,
}

impl Alarms {
    /// Creates metric alarm `name` (5xx answers of a load balancer over a minute), in OK.
    pub async fn create(&self, name: &str) -> Result<()> {
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(format!("{name}: the service answers 5xx"))
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(5.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .map_err(|error| anyhow::anyhow!("{}", aws_sdk_cloudwatch::error::DisplayErrorContext(error)))
            .with_context(|| format!("creating alarm {name}"))?;
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(StateValue::Ok)
            .state_reason("Threshold Crossed: no datapoint was greater than the threshold (5.0)")
            .send()
            .await?;
        Ok(())
    }

    /// Moves alarm `name` into `state` (`OK`, `ALARM`) for `reason`, and publishes the state change as CloudWatch
    /// does (only when the state changes).
    pub async fn set(&self, name: &str, state: &str, reason: &str) -> Result<()> {
        let described = self.cloudwatch.describe_alarms().alarm_names(name).send().await?;
        let alarm = described.metric_alarms().first().with_context(|| format!("no alarm {name} in moto"))?;
        let previous = alarm.state_value().map(StateValue::as_str).unwrap_or("INSUFFICIENT_DATA").to_owned();
        let previous_reason = alarm.state_reason().unwrap_or_default().to_owned();
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(StateValue::from(state))
            .state_reason(reason)
            .send()
            .await?;
        if previous == state {
            return Ok(());
        }
        let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        let detail = json!({
            "alarmName": name,
            "configuration": {
                "description": alarm.alarm_description(),
                "metrics": [{
                    "id": "m1",
                    "metricStat": {
                        "metric": { "dimensions": {}, "name": alarm.metric_name(), "namespace": alarm.namespace() },
                        "period": alarm.period(), "stat": "Sum"
                    },
                    "returnData": true
                }]
            },
            "previousState": { "reason": previous_reason, "timestamp": now, "value": previous },
            "state": {
                "reason": reason,
                "reasonData": json!({ "version": "1.0", "statistic": "Sum", "period": 60, "threshold": 5.0 }).to_string(),
                "timestamp": now,
                "value": state
            }
        });
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.cloudwatch")
            .detail_type("CloudWatch Alarm State Change")
            .resources(format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"))
            .detail(detail.to_string())
            .event_bus_name(&self.bus)
            .build();
        let put = self.eventbridge.put_events().entries(entry).send().await?;
        anyhow::ensure!(put.failed_entry_count() == 0, "EventBridge refused the alarm's state change: {put:?}");
        Ok(())
    }
}
