//! `HttpProbe` on hyper: the HTTP(S) requests of deployment checks, over the rustls and aws-lc the AWS SDK's own
//! client compiles, trusting the system's root certificates. Each request has its timeout; at most
//! [`PROBE_BODY`] bytes of a body are read.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::{instrument, warn};

use crate::contract::ports::{HttpProbe, PROBE_BODY, Probe, ProbeAnswer, ProbeError};

/// Checks' HTTP client.
#[derive(Debug, Clone)]
pub struct HttpProber {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpProber {
    /// The client, trusting the system's root certificates. Where there are none, plain-HTTP checks still work and
    /// HTTPS ones fail saying that the certificate is not trusted.
    pub fn new() -> Result<Self, ProbeError> {
        let connector = https_connector().map_err(ProbeError)?;
        Ok(Self { client: Client::builder(TokioExecutor::new()).build(connector) })
    }

    async fn fetch(&self, probe: &Probe<'_>) -> Result<ProbeAnswer, ProbeError> {
        let method = hyper::Method::from_bytes(probe.method.as_bytes())
            .map_err(|_| ProbeError(format!("{} is not an HTTP method", probe.method)))?;
        let request = hyper::Request::builder()
            .method(method)
            .uri(probe.url)
            .header("user-agent", "sluice-check/1")
            .body(Empty::new())
            .map_err(|error| ProbeError(format!("not a URL sluice can request: {error}")))?;
        let response = self.client.request(request).await.map_err(|error| ProbeError(cause(&error)))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut read = Vec::new();
        while read.len() < PROBE_BODY {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        read.extend_from_slice(data);
                    }
                }
                Some(Err(error)) => return Err(ProbeError(format!("the body could not be read: {error}"))),
                None => break,
            }
        }
        read.truncate(PROBE_BODY);
        Ok(ProbeAnswer { status, body: read })
    }
}

/// An HTTP(S) connector trusting the system's root certificates (none found: HTTPS fails, saying that the
/// certificate is not trusted; plain HTTP works).
pub(crate) fn https_connector() -> Result<HttpsConnector<HttpConnector>, String> {
    let provider = || Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider()) {
        Ok(builder) => builder,
        Err(error) => {
            warn!(%error, "no root certificates found; HTTPS requests will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|error| format!("TLS could not be set up: {error}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    Ok(builder.https_or_http().enable_http1().build())
}

/// The innermost cause of a client error, which says what happened ("Connection refused", "invalid peer
/// certificate") where the outer ones say only "client error (Connect)".
pub(crate) fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

fn seconds(timeout: Duration) -> String {
    if timeout.subsec_millis() == 0 { format!("{} s", timeout.as_secs()) } else { format!("{timeout:?}") }
}

impl HttpProbe for HttpProber {
    #[instrument(skip(self), fields(method = probe.method, url = probe.url))]
    async fn probe(&self, probe: &Probe<'_>) -> Result<ProbeAnswer, ProbeError> {
        match tokio::time::timeout(probe.timeout, self.fetch(probe)).await {
            Ok(answer) => answer,
            Err(_) => Err(ProbeError(format!("no answer within {}", seconds(probe.timeout)))),
        }
    }
}
