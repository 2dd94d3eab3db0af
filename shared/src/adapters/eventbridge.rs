//! `EventPublisher` on an EventBridge bus: PutEvents with source `sluice` and one detail-type per event
//! (<https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html>).

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tracing::instrument;

use crate::contract::events::{SOURCE, SluiceEvent};
use crate::contract::ports::{EventPublisher, PublishError, RefusedEntry};

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
    /// Sends every batch; entries the bus refused are reported by their place, with its code, so that only they are
    /// sent again.
    #[instrument(skip_all, fields(bus = %self.bus, count = events.len()))]
    async fn publish(&self, events: &[SluiceEvent]) -> Result<(), PublishError> {
        let mut refused = Vec::new();
        for (batch_number, batch) in events.chunks(BATCH).enumerate() {
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
            if output.failed_entry_count() == 0 {
                continue;
            }
            // The result entries are in the order of the request's.
            for (i, entry) in output.entries().iter().enumerate().take(batch.len()) {
                if let Some(code) = entry.error_code() {
                    refused.push(RefusedEntry {
                        index: batch_number * BATCH + i,
                        code: code.to_owned(),
                        message: entry.error_message().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        if refused.is_empty() { Ok(()) } else { Err(PublishError::Rejected { total: events.len(), entries: refused }) }
    }
}
