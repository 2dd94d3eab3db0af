//! Function URL request -> `review_page` (GET `/r/...`), `decide` (POST `/r/...`) or `status_page` (GET `/status/...`);
//! `Approval Requested` or `Effects Due` event -> `answer_doorbell` (which sends the request by SNS). Every outcome is a
//! page with its own status; nothing here panics on input.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use sluice::adapters::{
    DynamoDbStore, EcsDeployer, EventBridgePublisher, S3Artifacts, SecretsManagerSecret, SnsNotifier,
};
use sluice::contract::ports::{
    DefinitionsStore, EventPublisher, FixedSite, PipelineStore, SecretSource, TopicNotifier,
};
use sluice::present::approval_page as page;
use sluice::present::html::{HEADERS, Page, content_security_policy};
use sluice::present::text::with_slash;
use sluice::runtime::config::{APPROVAL_URL, Common, ConfigError, STATUS_KEY, optional_from};
use sluice::runtime::telemetry::Chain;
use sluice::usecases::{
    ApprovalEffects, COMPARISON_BUDGET, CachedDefinitions, DoorbellError, KeptSecret, Requester, answer_doorbell,
    decide, review_page, status_page,
};

/// The function's configuration, from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub approval_url: Option<String>,
    pub status_key: Option<String>,
    pub region: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            common: Common::from_lookup(&lookup)?,
            approval_url: optional_from(APPROVAL_URL, &lookup),
            status_key: optional_from(STATUS_KEY, &lookup),
            region: sluice::runtime::config::region_from(&lookup),
        })
    }
}

/// What the handler needs, built once per instance.
pub struct App<S, P, N, K> {
    pub store: S,
    /// The published pipelines, for the status page.
    pub definitions: CachedDefinitions<S>,
    /// The status page's key, read when the page is first asked for; `None`: no status page.
    pub status_key: Option<KeptSecret<K>>,
    pub publisher: P,
    pub notifier: N,
    /// The builds' artifacts and the services they deploy to: a request shows the release against what runs where
    /// approving releases it.
    pub artifacts: S3Artifacts,
    pub services: EcsDeployer,
    /// How long a request waits for them ([`COMPARISON_BUDGET`]; longer where a test's machine is busy).
    pub compare_budget: std::time::Duration,
    pub region: String,
    /// Where links point: the configured URL (`SLUICE_APPROVAL_URL`, which the stack gives the function that sends
    /// requests from events), or (locally) the URL the sandbox serves the function on, set once it is known. Unset,
    /// a decision's requests link to the function URL the decision came through, and events are refused.
    pub approval_url: OnceLock<String>,
}

/// The function as it runs on AWS.
pub type AwsApp = App<DynamoDbStore, EventBridgePublisher, SnsNotifier, SecretsManagerSecret>;

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns): made for each
/// invocation ([`App::effects`]) with the link the stack configures.
pub type Effects = ApprovalEffects<EventBridgePublisher, SnsNotifier, FixedSite, S3Artifacts, EcsDeployer>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let approval_url = OnceLock::new();
        if let Some(url) = &config.approval_url {
            let _ = approval_url.set(with_slash(url));
        }
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.common.table);
        let secrets = aws_sdk_secretsmanager::Client::new(aws);
        App {
            definitions: CachedDefinitions::new(store.clone()),
            status_key: config.status_key.as_ref().map(|id| KeptSecret::new(SecretsManagerSecret::new(secrets, id))),
            store,
            publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(aws), &config.common.event_bus),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(aws)),
            artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(aws)),
            services: EcsDeployer::new(aws_sdk_ecs::Client::new(aws)),
            compare_budget: COMPARISON_BUDGET,
            region: aws.region().map_or_else(|| config.region.clone(), ToString::to_string),
            approval_url,
        }
    }
}

impl<S: PipelineStore, P: EventPublisher + Clone, N: TopicNotifier + Clone, K> App<S, P, N, K> {
    /// The effect runner, with links pointing at `base` (unless a URL was configured).
    fn effects(&self, base: Option<String>) -> ApprovalEffects<P, N, FixedSite, S3Artifacts, EcsDeployer> {
        let base = self.approval_url.get().cloned().or(base).unwrap_or_default();
        ApprovalEffects {
            publisher: self.publisher.clone(),
            notifier: self.notifier.clone(),
            site: FixedSite(base),
            artifacts: self.artifacts.clone(),
            services: self.services.clone(),
            compare_budget: self.compare_budget,
            region: self.region.clone(),
            clock: Utc::now,
        }
    }
}

/// Why an invocation failed (Lambda retries the event).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the function URL request could not be read")]
    Request(#[source] serde_json::Error),
    #[error("the approval requests could not be carried out")]
    Flush(#[from] DoorbellError),
    #[error(
        "{APPROVAL_URL} is not set, so approval links would point nowhere: the stack's ApprovalRequestsFunction sends \
         the requests, with the approval function's URL"
    )]
    NoApprovalUrl,
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        Self { error_type: "sluice.ApprovalNotSent".to_owned(), error_message: Chain(&error).to_string() }
    }
}

/// Any invocation: a function URL request (it has a `requestContext`) or an event of the sluice bus.
pub async fn invoke<S, P, N, K>(
    app: &App<S, P, N, K>,
    payload: Value,
    now: DateTime<Utc>,
) -> Result<Value, HandlerError>
where
    S: PipelineStore + DefinitionsStore,
    K: SecretSource,
    P: EventPublisher + Clone,
    N: TopicNotifier + Clone,
{
    if payload.get("requestContext").is_some() {
        let request = lambda_http::request::from_str(&payload.to_string()).map_err(HandlerError::Request)?;
        let response = respond(app, request, now).await;
        return Ok(function_url_response(response));
    }
    on_event(app, &payload, now).await?;
    Ok(Value::Null)
}

/// The function URL response for `response` (<https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-response-payload>).
fn function_url_response(response: Response<Body>) -> Value {
    let headers: serde_json::Map<String, Value> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), Value::from(value.to_str().ok()?))))
        .collect();
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    json!({ "statusCode": response.status().as_u16(), "headers": headers, "body": body, "isBase64Encoded": false })
}

/// An `Approval Requested` or `Effects Due` event (as the bus delivers it): carries out the pipeline's pending
/// approval requests and announcements. Their links point at the configured URL (`SLUICE_APPROVAL_URL`), never at
/// one the event names (anything that may invoke the function could name a site of its own); with no URL
/// configured, nothing is sent and the event fails (it is the stack's mistake, for the dead-letter queue's alarm).
pub async fn on_event<S, P, N, K>(app: &App<S, P, N, K>, event: &Value, now: DateTime<Utc>) -> Result<(), HandlerError>
where
    S: PipelineStore,
    P: EventPublisher + Clone,
    N: TopicNotifier + Clone,
{
    if app.approval_url.get().is_none() {
        return Err(HandlerError::NoApprovalUrl);
    }
    answer_doorbell(&app.store, &app.effects(None), event, now).await?;
    Ok(())
}

/// Answers one request. `GET /r/<token>` shows, `POST /r/<token>` decides, `GET /status/...` shows the status page;
/// everything else has its page.
pub async fn respond<S, P, N, K>(app: &App<S, P, N, K>, request: Request, now: DateTime<Utc>) -> Response<Body>
where
    S: PipelineStore + DefinitionsStore,
    K: SecretSource,
    P: EventPublisher + Clone,
    N: TopicNotifier + Clone,
{
    let path = request.uri().path().to_owned();
    if path.starts_with("/status/") {
        return match *request.method() {
            Method::GET | Method::HEAD => {
                html(status_page(&app.store, &app.definitions, app.status_key.as_ref(), &path, now).await, None)
            }
            _ => html(page::method_not_allowed(), Some("GET")),
        };
    }
    let Some(token) = path.strip_prefix("/r/").filter(|token| !token.contains('/')) else {
        return html(page::not_found(), None);
    };
    match *request.method() {
        Method::GET | Method::HEAD => html(review_page(&app.store, token, now).await, None),
        Method::POST => {
            let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            if !content_type.is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) {
                return html(page::bad_request("decide from the page the link opens"), None);
            }
            let (source_ip, domain) = match request.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(context)) => {
                    (context.http.source_ip.clone(), context.domain_name.clone())
                }
                _ => (None, None),
            };
            let user_agent = request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok());
            let requester = Requester { source_ip: source_ip.as_deref(), user_agent };
            // A decision may let the next run in, whose request is sent now, with links to this same site.
            let effects = app.effects(domain.map(|domain| format!("https://{domain}/")));
            html(decide(&app.store, &effects, token, request.body().as_ref(), requester, now).await, None)
        }
        _ => html(page::method_not_allowed(), Some("GET, POST")),
    }
}

fn html(page: Page, allow: Option<&'static str>) -> Response<Body> {
    let mut response = Response::new(Body::Text(page.html));
    *response.status_mut() = StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if let Some(allow) = allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}
