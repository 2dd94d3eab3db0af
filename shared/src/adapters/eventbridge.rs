//! `EventPublisher` on an EventBridge bus: PutEvents with source `sluice` and one detail-type per event
//! (<https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>).

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tracing::instrument;

use crate::events::{SOURCE, SluiceEvent};
use crate::ports::{EventPublisher, PublishError};

/// PutEvents takes at most ten entries per call.
const BATCH: usize = 10;

/// The event publisher on EventBridge.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    /// `bus` is the event bus name or ARN.
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }
}

impl EventPublisher for EventBridgePublisher {
    #[instrument(skip_all, fields(bus = %self.bus, count = events.len()))]
    async fn publish(&self, events: &[SluiceEvent]) -> Result<(), PublishError> {
        for batch in events.chunks(BATCH) {
            let entries = batch
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(event.detail_type())
                        .detail(event.detail().to_string())
                        .resources(format!("sluice:pipeline/{}", event.pipeline()))
                        .build()
                })
                .collect();
            let output = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|error| PublishError::Unavailable { source: Box::new(error) })?;
            let failed = usize::try_from(output.failed_entry_count()).unwrap_or(usize::MAX);
            if failed > 0 {
                let first = output.entries().iter().find(|entry| entry.error_code().is_some());
                return Err(PublishError::Rejected {
                    failed,
                    total: batch.len(),
                    code: first.and_then(|e| e.error_code()).unwrap_or("unknown").to_owned(),
                    message: first.and_then(|e| e.error_message()).unwrap_or("").to_owned(),
                });
            }
        }
        Ok(())
    }
}
