//! The awsJson 1.1 protocol the AWS SDKs speak to CodeBuild, CodeDeploy and ECS: `POST /` with the operation in
//! `X-Amz-Target` and a JSON body; errors as `{"__type": ..., "message": ...}` with a 400
//! (<https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html>). One loopback server per played service, and
//! the events the played services publish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub(crate) type Response = hyper::Response<Full<Bytes>>;

/// A served endpoint; it stops serving when dropped.
pub(crate) struct Endpoint {
    pub url: String,
    server: JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) fn reply(status: u16, body: &Value) -> Response {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"));
    response
}

pub(crate) fn error(kind: &str, message: &str) -> Response {
    reply(400, &json!({ "__type": kind, "message": message }))
}

/// Serves `answer(operation, input)` on a loopback port, for targets `<prefix><operation>`. A body that is not JSON
/// gets the service's `invalid` error.
pub(crate) async fn serve<H, F>(prefix: &'static str, invalid: &'static str, answer: H) -> Result<Endpoint>
where
    H: Fn(String, Value) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a loopback port")?;
    let url = format!("http://{}", listener.local_addr()?);
    let answer = Arc::new(answer);
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let answer = Arc::clone(&answer);
                    async move {
                        let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok());
                        let operation = target.and_then(|t| t.strip_prefix(prefix)).unwrap_or_default().to_owned();
                        let body = request.into_body().collect().await.map(|b| b.to_bytes());
                        let response = match body.ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                            Some(input) => answer(operation, input).await,
                            None => error(invalid, "the body is not JSON"),
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(Endpoint { url, server })
}

/// Puts one of AWS's own events (`aws.*` source) on `bus`, as the played service would.
pub(crate) async fn put_event(
    eventbridge: &aws_sdk_eventbridge::Client,
    bus: &str,
    source: &str,
    detail_type: &str,
    resources: &[String],
    detail: &Value,
) -> Result<()> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(source)
        .detail_type(detail_type)
        .set_resources(Some(resources.to_vec()))
        .detail(detail.to_string())
        .build();
    let output = eventbridge.put_events().entries(entry).send().await?;
    anyhow::ensure!(output.failed_entry_count() == 0, "EventBridge refused the event");
    Ok(())
}

/// Plays what a call started (a build, a rollout, a deployment) in the background; a failure to play it is logged.
pub(crate) fn play<F>(what: &'static str, playing: F)
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = playing.await {
            tracing::warn!(error = %error, what, "the sandbox could not play it to the end");
        }
    });
}
