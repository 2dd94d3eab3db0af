//! A meter on the wire to AWS: a loopback HTTP forwarder put between sluice's SDK clients and moto_server that counts
//! every request it forwards, names its operation, and counts the sequential round trips (the spans of time with at
//! least one request in flight: calls made side by side count once). What a function costs in AWS calls is read
//! here, at the HTTP layer, not by hand.
//!
//! Each connection from a client gets its own connection to the upstream, so keep-alive and pooling behave as
//! they would without the meter.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What went over the wire since the meter was last read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Each request's operation, in the order they were sent: `DynamoDB_20120810.GetItem` (the `X-Amz-Target` of
    /// JSON-protocol services), or the method and path for the others.
    pub calls: Vec<String>,
    /// Spans of time with at least one request in flight: calls made side by side share one.
    pub round_trips: usize,
    /// What the calls are billed for.
    pub usage: Usage,
}

/// What AWS bills the calls for, as far as the wire shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// DynamoDB write request units: 1 per KB of each item put (rounded up), twice that in a transaction. Sized as
    /// DynamoDB sizes items (names and values; a binary by its bytes), numbers by their text: a close upper bound.
    pub write_units: u64,
    /// DynamoDB read request units of strongly consistent reads: 1 per 4 KB of each item read (rounded up).
    pub read_units: u64,
    /// EventBridge events put (entries of PutEvents).
    pub events: u64,
    /// SNS messages published.
    pub publishes: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.write_units += other.write_units;
        self.read_units += other.read_units;
        self.events += other.events;
        self.publishes += other.publishes;
    }
}

/// Whole `unit`s of `bytes`, rounded up (at least one).
fn units(bytes: usize, unit: usize) -> u64 {
    bytes.div_ceil(unit).max(1) as u64
}

/// An item's size as DynamoDB bills it, near enough: each attribute's name and value, a string by its bytes, a
/// binary by its bytes (its base64 on the wire decoded), anything else by its JSON.
fn item_size(item: &serde_json::Value) -> usize {
    let value_size = |value: &serde_json::Value| match (&value["S"], &value["B"], &value["N"]) {
        (serde_json::Value::String(text), _, _) | (_, _, serde_json::Value::String(text)) => text.len(),
        (_, serde_json::Value::String(base64), _) => {
            base64.len() / 4 * 3 - base64.bytes().rev().take_while(|b| *b == b'=').count()
        }
        _ => value.to_string().len(),
    };
    match item.as_object() {
        Some(attributes) => attributes.iter().map(|(name, value)| name.len() + value_size(value)).sum(),
        None => item.to_string().len(),
    }
}

/// What one call costs: `operation` as the meter names it, with the request's and the answer's bodies.
pub fn usage(operation: &str, request: &[u8], answer: &[u8]) -> Usage {
    let json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_default();
    match operation.rsplit('.').next().unwrap_or_default() {
        "PutItem" => Usage { write_units: units(item_size(&json(request)["Item"]), 1024), ..Usage::default() },
        "TransactWriteItems" => {
            let request = json(request);
            let items = request["TransactItems"].as_array().cloned().unwrap_or_default();
            let write_units = items.iter().map(|item| 2 * units(item_size(&item["Put"]["Item"]), 1024)).sum();
            Usage { write_units, ..Usage::default() }
        }
        "GetItem" => {
            let item = &json(answer)["Item"];
            let read_units = if item.is_null() { 1 } else { units(item_size(item), 4096) };
            Usage { read_units, ..Usage::default() }
        }
        "PutEvents" => {
            let events = json(request)["Entries"].as_array().map_or(0, Vec::len) as u64;
            Usage { events, ..Usage::default() }
        }
        // SNS speaks the query protocol: a form whose Action names the operation.
        _ if operation.starts_with("POST ")
            && form_urlencoded::parse(request).any(|(key, value)| key == "Action" && value == "Publish") =>
        {
            Usage { publishes: 1, ..Usage::default() }
        }
        _ => Usage::default(),
    }
}

impl Reading {
    /// The operations without their service's version prefix: `GetItem, TransactWriteItems, ...`.
    pub fn operations(&self) -> String {
        self.calls.iter().map(|call| call.rsplit('.').next().unwrap_or(call)).collect::<Vec<_>>().join(", ")
    }
}

#[derive(Default)]
struct Tally {
    reading: Reading,
    in_flight: usize,
    published: Published,
}

/// The detail-types of the events sluice put on a bus (source `sluice`), by who put them: the app name their SDK
/// client gives in its User-Agent (`app/NAME`), or `-` for a client that gives none.
pub type Published = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// The app name in an SDK's User-Agent header (`... app/NAME ...`).
fn app_name(user_agent: &str) -> Option<&str> {
    user_agent.split(' ').find_map(|part| part.strip_prefix("app/"))
}

/// The detail-types of a PutEvents request's entries whose source is sluice.
fn sluice_events(request: &[u8]) -> Vec<String> {
    let request: serde_json::Value = serde_json::from_slice(request).unwrap_or_default();
    let entries = request["Entries"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .filter(|entry| entry["Source"] == "sluice")
        .filter_map(|entry| entry["DetailType"].as_str().map(str::to_owned))
        .collect()
}

/// A running meter. Stops forwarding when dropped.
pub struct Meter {
    /// `http://127.0.0.1:<port>`: give it to the SDK as the endpoint in place of the upstream's.
    pub endpoint: String,
    tally: Arc<Mutex<Tally>>,
    server: JoinHandle<()>,
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Meter {
    /// Forwards to `upstream` (`http://host:port`) from a free loopback port.
    pub async fn start(upstream: &str) -> Result<Self> {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a loopback port")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = Arc::clone(&tally);
        let server = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                let tally = Arc::clone(&shared);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    // A connection ends when the client closes it; there is nothing to report.
                    let _ = relay(inbound, &upstream, tally).await;
                });
            }
        });
        Ok(Self { endpoint, tally, server })
    }

    /// What was forwarded since the last reading; the count starts again from nothing.
    pub fn take(&self) -> Reading {
        std::mem::take(&mut lock(&self.tally).reading)
    }

    /// The events sluice put on a bus since the meter started, by the app name of the client that put them.
    pub fn published(&self) -> Published {
        lock(&self.tally).published.clone()
    }
}

async fn relay(inbound: TcpStream, upstream: &str, tally: Arc<Mutex<Tally>>) -> Result<()> {
    let outbound = TcpStream::connect(upstream).await.with_context(|| format!("connecting to {upstream}"))?;
    outbound.set_nodelay(true)?;
    inbound.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(outbound)).await?;
    tokio::spawn(connection);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let sender = Arc::clone(&sender);
        let tally = Arc::clone(&tally);
        async move { Ok::<_, Infallible>(forward(request, &sender, &tally).await) }
    });
    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(inbound), service).await?;
    Ok(())
}

async fn forward(
    request: hyper::Request<Incoming>,
    sender: &tokio::sync::Mutex<SendRequest<Full<Bytes>>>,
    tally: &Mutex<Tally>,
) -> hyper::Response<Full<Bytes>> {
    let operation = match request.headers().get("x-amz-target").and_then(|value| value.to_str().ok()) {
        Some(target) => target.to_owned(),
        None => format!("{} {}", request.method(), request.uri().path()),
    };
    let user_agent = request.headers().get("user-agent").and_then(|value| value.to_str().ok());
    let app = user_agent.and_then(app_name).unwrap_or("-").to_owned();
    {
        let mut tally = lock(tally);
        if tally.in_flight == 0 {
            tally.reading.round_trips += 1;
        }
        tally.in_flight += 1;
        tally.reading.calls.push(operation.clone());
    }
    let answer = pass_on(&operation, request, sender).await;
    {
        let mut tally = lock(tally);
        tally.in_flight -= 1;
        if let Ok((_, used, published)) = &answer {
            tally.reading.usage += *used;
            if !published.is_empty() {
                tally.published.entry(app).or_default().extend(published.iter().cloned());
            }
        }
    }
    answer.map(|(response, _, _)| response).unwrap_or_else(|error| {
        let mut response =
            hyper::Response::new(Full::new(Bytes::from(format!("the meter could not forward: {error}"))));
        *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        response
    })
}

async fn pass_on(
    operation: &str,
    request: hyper::Request<Incoming>,
    sender: &tokio::sync::Mutex<SendRequest<Full<Bytes>>>,
) -> Result<(hyper::Response<Full<Bytes>>, Usage, Vec<String>)> {
    let (parts, body) = request.into_parts();
    let sent = body.collect().await?.to_bytes();
    let request = hyper::Request::from_parts(parts, Full::new(sent.clone()));
    let response = sender.lock().await.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let (used, published) = if parts.status.is_success() {
        let published = if operation == "AWSEvents.PutEvents" { sluice_events(&sent) } else { Vec::new() };
        (usage(operation, &sent, &body), published)
    } else {
        (Usage::default(), Vec::new())
    };
    Ok((hyper::Response::from_parts(parts, Full::new(body)), used, published))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: &serde_json::Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    /// An attribute map about `bytes` long.
    fn item(bytes: usize) -> serde_json::Value {
        json!({ "pk": { "S": "x".repeat(bytes.saturating_sub(20)) } })
    }

    #[test]
    fn a_put_costs_a_write_unit_per_started_kilobyte_and_twice_that_in_a_transaction() {
        let put = |bytes| usage("DynamoDB_20120810.PutItem", &body(&json!({ "Item": item(bytes) })), b"{}");
        assert_eq!(put(100).write_units, 1);
        assert_eq!(put(1024).write_units, 1);
        assert_eq!(put(1500).write_units, 2);
        let transaction = json!({ "TransactItems": [
            { "Put": { "Item": item(1500) } },
            { "Put": { "Item": item(100) } },
        ] });
        let used = usage("DynamoDB_20120810.TransactWriteItems", &body(&transaction), b"{}");
        // Twice the 1500-byte item's two units, and twice the 100-byte item's one.
        assert_eq!(used, Usage { write_units: 4 + 2, ..Usage::default() });
    }

    #[test]
    fn a_binary_attribute_costs_its_bytes_not_its_base64() {
        // 3000 bytes are 4000 characters of base64 on the wire: 3 units, not 4
        let base64 = "A".repeat(4000);
        let put = usage("DynamoDB_20120810.PutItem", &body(&json!({ "Item": { "b": { "B": base64 } } })), b"{}");
        assert_eq!(put.write_units, 3);
        let padded = json!({ "b": { "B": "QUJD" } });
        assert_eq!(item_size(&padded), 1 + 3);
        assert_eq!(item_size(&json!({ "b": { "B": "QUI=" } })), 1 + 2);
    }

    #[test]
    fn a_read_costs_a_unit_per_started_four_kilobytes_and_one_for_an_item_not_there() {
        let get = |answer: serde_json::Value| usage("DynamoDB_20120810.GetItem", b"{}", &body(&answer)).read_units;
        assert_eq!(get(json!({})), 1);
        assert_eq!(get(json!({ "Item": item(4000) })), 1);
        assert_eq!(get(json!({ "Item": item(5000) })), 2);
    }

    #[test]
    fn the_events_sluice_puts_are_told_by_the_app_name_of_the_client_that_put_them() {
        let agent = "aws-sdk-rust/1.3.9 ua/2.1 api/eventbridge#1.127.0 os/linux lang/rust#1.95.0 app/DeployerFunction";
        assert_eq!(app_name(agent), Some("DeployerFunction"));
        assert_eq!(app_name("aws-sdk-rust/1.3.9 ua/2.1 api/eventbridge#1.127.0"), None);
        let entries = json!({ "Entries": [
            { "Source": "sluice", "DetailType": "Deployment Requested" },
            { "Source": "aws.codebuild", "DetailType": "CodeBuild Build State Change" },
        ] });
        assert_eq!(sluice_events(&body(&entries)), ["Deployment Requested"]);
    }

    #[test]
    fn events_put_and_sns_publishes_are_counted_and_other_calls_cost_nothing_here() {
        let entries = json!({ "Entries": [{}, {}, {}] });
        assert_eq!(usage("AWSEvents.PutEvents", &body(&entries), b"{}").events, 3);
        let publish = b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Message=hi";
        assert_eq!(usage("POST /", publish, b"<PublishResponse/>").publishes, 1);
        assert_eq!(usage("POST /", b"Action=ListTopics", b"").publishes, 0);
        assert_eq!(usage("DynamoDB_20120810.Query", b"{}", b"{}"), Usage::default());
        assert_eq!(usage("PUT /bucket/key", b"bytes", b""), Usage::default());
        let mut total = usage("AWSEvents.PutEvents", &body(&entries), b"{}");
        total += usage("POST /", publish, b"");
        assert_eq!(total, Usage { events: 3, publishes: 1, ..Usage::default() });
    }

    #[test]
    fn a_reading_names_its_operations_without_their_service_prefix() {
        let reading = Reading {
            calls: vec!["DynamoDB_20120810.GetItem".into(), "AWSEvents.PutEvents".into(), "POST /".into()],
            ..Reading::default()
        };
        assert_eq!(reading.operations(), "GetItem, PutEvents, POST /");
    }
}
