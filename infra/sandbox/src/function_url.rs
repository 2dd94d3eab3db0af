//! Lambda function URLs on loopback: HTTP in, the documented function URL event to the handler, its response out
//! (<https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads>).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Function URLs accept request payloads up to 6 MB.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// A function served on a loopback port. Stops serving when dropped.
pub struct FunctionUrl {
    /// `http://127.0.0.1:<port>/`: what a person, a test or a local GitHub stand-in POSTs to.
    pub url: String,
    server: JoinHandle<()>,
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves `handler` (a function URL handler: a `lambda_http` request in, a response out) on a free loopback port.
pub async fn serve<H, F>(name: &str, handler: H) -> Result<FunctionUrl>
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a loopback port")?;
    let address = listener.local_addr()?;
    let handler = Arc::new(handler);
    let name = name.to_owned();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else { continue };
            let handler = Arc::clone(&handler);
            let name = name.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let handler = Arc::clone(&handler);
                    let name = name.clone();
                    async move { Ok::<_, Infallible>(invoke(&name, address, peer, request, handler.as_ref()).await) }
                });
                if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(%error, "connection ended");
                }
            });
        }
    });
    Ok(FunctionUrl { url: format!("http://{address}/"), server })
}

fn plain(status: u16, message: &str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(json!({ "Message": message }).to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    response
}

async fn invoke<H, F>(
    name: &str,
    address: SocketAddr,
    peer: SocketAddr,
    request: hyper::Request<Incoming>,
    handler: &H,
) -> hyper::Response<Full<Bytes>>
where
    H: Fn(Request) -> F,
    F: Future<Output = Response<Body>>,
{
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|collected| collected.to_bytes()) else {
        return plain(400, "could not read the request body");
    };
    if body.len() > MAX_PAYLOAD {
        return plain(413, "Request must be smaller than 6291456 bytes for the InvokeFunction operation");
    }
    let event = event(name, address, peer, &parts, &body);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(_) => return plain(502, "the sandbox built an event lambda_http could not read"),
    };
    let response = handler(request).await;
    let (parts, body) = response.into_parts();
    let mut out = hyper::Response::new(Full::new(Bytes::copy_from_slice(body.as_ref())));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

/// The event a function URL delivers for this request (payload format version 2.0).
fn event(name: &str, address: SocketAddr, peer: SocketAddr, parts: &hyper::http::request::Parts, body: &[u8]) -> Value {
    let mut headers = Map::new();
    for (header, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let joined = match headers.get(header.as_str()).and_then(Value::as_str) {
            Some(previous) => format!("{previous},{value}"),
            None => value,
        };
        headers.insert(header.as_str().to_owned(), Value::String(joined));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let content_type = header("content-type");
    let textual =
        ["json", "text/", "xml", "x-www-form-urlencoded", "javascript"].iter().any(|t| content_type.contains(t));
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) if textual => (text.to_owned(), false),
        _ => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let now = Utc::now();
    let host = format!("{name}.lambda-url.local");
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": name,
            "domainName": host,
            "domainPrefix": name,
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": header("user-agent"),
            },
            "requestId": format!("{}-{}", address.port(), now.timestamp_nanos_opt().unwrap_or_default()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}
