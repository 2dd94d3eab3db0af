//! Delivers what an EventBridge rule's SQS target receives to a function's handler, as Lambda's event source does
//! for a rule that targets the function: each message body is the event, a handler error leaves the message to be
//! delivered again.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// A running delivery loop; it stops when dropped.
pub struct Pump {
    task: JoinHandle<()>,
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Feeds every message of `queue_url` to `handler`, deleting it once handled.
pub fn pump<T, H, F, E>(sqs: aws_sdk_sqs::Client, queue_url: String, handler: H) -> Pump
where
    T: DeserializeOwned + Send + 'static,
    H: Fn(T) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let task = tokio::spawn(async move {
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await;
            let Ok(output) = received else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            for message in output.messages() {
                let Some(event) = message.body().and_then(|body| serde_json::from_str::<T>(body).ok()) else {
                    tracing::warn!("an undeliverable message: not the event the function takes");
                    continue;
                };
                let handled = handler(event).await.map_err(|error| error.to_string());
                match handled {
                    Ok(()) => {
                        if let Some(handle) = message.receipt_handle() {
                            let _ = sqs.delete_message().queue_url(&queue_url).receipt_handle(handle).send().await;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "the function failed; the event will be delivered again"),
                }
            }
        }
    });
    Pump { task }
}
