//! GitHub's REST API stand-in: the part sluice speaks, commit statuses and Deployments with their statuses, as
//! GitHub documents them, on loopback. It records every request it was sent (the token itself excepted), so that
//! tests assert on what sluice told GitHub.
//!
//! - `POST /repos/{owner}/{repo}/statuses/{sha}`: `state` one of error, failure, pending, success; `context`
//!   defaults to `default`; 201 with the status
//!   (<https://docs.github.com/en/rest/commits/statuses#create-a-commit-status>).
//! - `GET /repos/{owner}/{repo}/deployments?sha=&environment=`: the matching deployments, newest first
//!   (<https://docs.github.com/en/rest/deployments/deployments#list-deployments>).
//! - `POST /repos/{owner}/{repo}/deployments`: `ref` required, `environment` defaults to `production`; 201 with the
//!   deployment (<https://docs.github.com/en/rest/deployments/deployments#create-a-deployment>).
//! - `POST /repos/{owner}/{repo}/deployments/{id}/statuses`: `state` one of error, failure, inactive, in_progress,
//!   queued, pending, success; 404 for an unknown deployment; 201 with the status
//!   (<https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status>).
//!
//! A request without `Authorization: Bearer <the token>` gets 401 `Bad credentials`; a missing required field or an
//! unknown state gets 422 `Validation Failed`; a repository not served gets 404 `Not Found`. `fail_next` makes the
//! next requests answer 503, as GitHub does when it is down.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const COMMIT_STATES: [&str; 4] = ["error", "failure", "pending", "success"];
const DEPLOYMENT_STATES: [&str; 7] = ["error", "failure", "inactive", "in_progress", "queued", "pending", "success"];

/// One request the stand-in was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub query: String,
    /// `X-GitHub-Api-Version`, as sent.
    pub api_version: Option<String>,
    /// `Accept`, as sent.
    pub accept: Option<String>,
    /// Whether it carried the right bearer token.
    pub authorized: bool,
    /// The JSON body (`null` for none).
    pub body: Value,
    /// What the stand-in answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    token: String,
    repositories: Vec<String>,
    requests: Vec<Recorded>,
    /// Every deployment, oldest first, each with its `statuses`.
    deployments: Vec<Value>,
    commit_statuses: Vec<Value>,
    fail_next: usize,
}

/// GitHub on a loopback port. Stops serving when dropped.
pub struct GitHub {
    /// `http://127.0.0.1:<port>`: what to give sluice as its GitHub API URL.
    pub url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for GitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl GitHub {
    /// Serves `repositories` (`owner/name`) to whoever has `token`.
    pub async fn start(token: &str, repositories: &[&str]) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a loopback port")?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            repositories: repositories.iter().map(|r| r.to_ascii_lowercase()).collect(),
            ..State::default()
        }));
        let served = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(%error, "connection ended");
                    }
                });
            }
        });
        Ok(Self { url: format!("http://{address}"), state, server })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every request, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// The next `count` requests answer 503.
    pub fn fail_next(&self, count: usize) {
        self.state().fail_next = count;
    }

    /// The commit statuses set on `sha`, oldest first.
    pub fn commit_statuses(&self, sha: &str) -> Vec<Value> {
        self.state().commit_statuses.iter().filter(|status| status["sha"] == sha).cloned().collect()
    }

    /// Every deployment, oldest first, each with its `statuses` (oldest first).
    pub fn deployments(&self) -> Vec<Value> {
        self.state().deployments.clone()
    }
}

fn reply(status: u16, body: &Value) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn message(text: &str) -> Value {
    json!({ "message": text, "documentation_url": "https://docs.github.com/rest" })
}

async fn answer(state: &Mutex<State>, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let json: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let authorized = header("authorization").is_some_and(|given| given == format!("Bearer {}", state.token));
    let mut recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        api_version: header("x-github-api-version"),
        accept: header("accept"),
        authorized,
        body: json.clone(),
        status: 0,
    };
    let (status, answer) = if state.fail_next > 0 {
        state.fail_next -= 1;
        (503, message("Service Unavailable"))
    } else if !authorized {
        (401, message("Bad credentials"))
    } else if !body.is_empty() && json.is_null() {
        (400, message("Problems parsing JSON"))
    } else {
        route(&mut state, &recorded.method, &recorded.path, &recorded.query, &json)
    };
    recorded.status = status;
    state.requests.push(recorded);
    reply(status, &answer)
}

fn route(state: &mut State, method: &str, path: &str, query: &str, body: &Value) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["repos", owner, name, rest @ ..] = parts.as_slice() else { return (404, message("Not Found")) };
    let repository = format!("{owner}/{name}");
    if !state.repositories.contains(&repository.to_ascii_lowercase()) {
        return (404, message("Not Found"));
    }
    let invalid = |field: &str| {
        (422, json!({ "message": "Validation Failed", "errors": [{ "field": field, "code": "invalid" }] }))
    };
    match (method, rest) {
        ("POST", ["statuses", sha]) => {
            let Some(commit_state) = body["state"].as_str().filter(|s| COMMIT_STATES.contains(s)) else {
                return invalid("state");
            };
            if body["description"].as_str().is_some_and(|d| d.chars().count() > 140) {
                return invalid("description");
            }
            let status = json!({
                "id": state.commit_statuses.len() + 1,
                "sha": sha,
                "state": commit_state,
                "context": body["context"].as_str().unwrap_or("default"),
                "description": body["description"],
                "target_url": body["target_url"],
            });
            state.commit_statuses.push(status.clone());
            (201, status)
        }
        ("GET", ["deployments"]) => {
            let wanted: Vec<(String, String)> = form_pairs(query);
            let matches = |deployment: &Value| {
                wanted.iter().all(|(key, value)| match key.as_str() {
                    "sha" => deployment["sha"] == value.as_str(),
                    "environment" => deployment["environment"] == value.as_str(),
                    _ => true,
                })
            };
            let found: Vec<Value> = state
                .deployments
                .iter()
                .rev()
                .filter(|d| d["repository"] == repository.as_str() && matches(d))
                .map(|d| {
                    let mut shown = d.clone();
                    if let Some(object) = shown.as_object_mut() {
                        object.remove("statuses");
                    }
                    shown
                })
                .collect();
            (200, Value::Array(found))
        }
        ("POST", ["deployments"]) => {
            let Some(git_ref) = body["ref"].as_str() else { return invalid("ref") };
            let id = state.deployments.len() as u64 + 1;
            let deployment = json!({
                "id": id,
                "repository": repository,
                "sha": git_ref,
                "ref": git_ref,
                "environment": body["environment"].as_str().unwrap_or("production"),
                "description": body["description"],
                "payload": body.get("payload").cloned().unwrap_or(json!({})),
                "auto_merge": body.get("auto_merge").cloned().unwrap_or(json!(true)),
                "required_contexts": body.get("required_contexts").cloned().unwrap_or(Value::Null),
                "statuses": [],
            });
            state.deployments.push(deployment.clone());
            (201, deployment)
        }
        ("POST", ["deployments", id, "statuses"]) => {
            let id: Option<u64> = id.parse().ok();
            let Some(deployment) = state
                .deployments
                .iter_mut()
                .find(|d| d["repository"] == repository.as_str() && d["id"].as_u64() == id && id.is_some())
            else {
                return (404, message("Not Found"));
            };
            let Some(deployment_state) = body["state"].as_str().filter(|s| DEPLOYMENT_STATES.contains(s)) else {
                return invalid("state");
            };
            let status = json!({
                "state": deployment_state,
                "description": body["description"],
                "log_url": body["log_url"],
                "environment": deployment["environment"],
            });
            if let Some(statuses) = deployment["statuses"].as_array_mut() {
                statuses.push(status.clone());
            }
            (201, status)
        }
        _ => (404, message("Not Found")),
    }
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
