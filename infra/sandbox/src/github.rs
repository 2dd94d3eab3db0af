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
//! - `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries?per_page=`: the webhook's deliveries a test gave with
//!   `hook_deliveries`, newest first, at most `per_page` (30 unless given, 100 at most); 404 for another hook
//!   (<https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>).
//! - `POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts`: 202, recorded (see
//!   `redeliveries`); 404 for a delivery the hook does not list
//!   (<https://docs.github.com/en/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook>).
//! - `GET /repos/{owner}/{repo}/compare/{base}...{head}`: how head stands against base in the commits a test gave
//!   with `commits` (`status` ahead, behind, identical or diverged, `ahead_by`, `behind_by`, `total_commits`,
//!   `base_commit` and `merge_base_commit`, `commits` oldest first, at most `per_page`); 404 for a commit it does
//!   not know, or two without a common ancestor (<https://docs.github.com/en/rest/commits/commits#compare-two-commits>).
//!
//! A GitHub App installed with `install_app` (on every repository served) signs in with a JWT (RS256, `iss` its id,
//! `exp` at most ten minutes ahead, verified with its public key) for:
//!
//! - `GET /repos/{owner}/{repo}/installation`: the app's installation
//!   (<https://docs.github.com/en/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app>);
//! - `POST /app/installations/{id}/access_tokens`: an installation access token for an hour, limited to the
//!   `repositories` and `permissions` asked for, which must be served and granted (statuses, deployments and
//!   repository_hooks, write; contents, read) or 422; a request its permissions do not cover is answered 403 (<https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app>).
//!
//! Such a token then serves the repositories it names, as the token given to `start` serves all; a JWT serves only
//! the app's endpoints.
//!
//! A request without `Authorization: Bearer <a token it serves>` gets 401 `Bad credentials` (an app endpoint: `A
//! JSON web token could not be decoded`); a missing required field or an unknown state gets 422 `Validation Failed`;
//! a repository not served, or not named by the installation token, gets 404 `Not Found`. `fail_next` makes the next
//! requests answer 503, as GitHub does when it is down.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
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
    /// Whether it carried a bearer token that serves it.
    pub authorized: bool,
    /// What signed it in: `token` (the one given to `start`), `app` (a GitHub App's JWT), `installation` (an
    /// installation access token); `None` for anything else.
    pub credential: Option<&'static str>,
    /// The JSON body (`null` for none).
    pub body: Value,
    /// What the stand-in answered.
    pub status: u16,
}

/// A GitHub App installed on every repository served.
struct App {
    /// Its id (or client id), the JWT's `iss`.
    issuer: String,
    /// DER `RSAPublicKey`.
    public_key: Vec<u8>,
    installation: u64,
}

/// An installation access token handed out.
struct Issued {
    token: String,
    /// The repositories' names (without the owner), lower case.
    repositories: Vec<String>,
    /// What it may do: `{ "statuses": "write", ... }`.
    permissions: Value,
    expires_at: DateTime<Utc>,
}

/// What a request's bearer token is.
enum Bearer {
    Token,
    App { installation: u64 },
    Installation { repositories: Vec<String>, permissions: Value },
    Unknown,
}

#[derive(Default)]
struct State {
    token: String,
    apps: Vec<App>,
    issued: Vec<Issued>,
    /// How long installation access tokens last (GitHub: an hour).
    token_lifetime: Option<TimeDelta>,
    repositories: Vec<String>,
    requests: Vec<Recorded>,
    /// Every deployment, oldest first, each with its `statuses`.
    deployments: Vec<Value>,
    commit_statuses: Vec<Value>,
    /// Each repository webhook's deliveries, newest first, as a test says GitHub holds them.
    hook_deliveries: std::collections::HashMap<(String, u64), Vec<Value>>,
    /// The redeliveries asked for: (repository, hook id, delivery id), in order.
    redeliveries: Vec<(String, u64, u64)>,
    /// Each repository's commits, with their parents.
    commits: std::collections::HashMap<String, std::collections::HashMap<String, Vec<String>>>,
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

    /// Installs a GitHub App, whose JWTs `public_key` (DER `RSAPublicKey`) verifies, on every repository served;
    /// its installation id.
    pub fn install_app(&self, issuer: &str, public_key: &[u8]) -> u64 {
        let mut state = self.state();
        let installation = 1000 + state.apps.len() as u64;
        state.apps.push(App { issuer: issuer.to_owned(), public_key: public_key.to_vec(), installation });
        installation
    }

    /// Installation access tokens handed out from now on last `lifetime` rather than GitHub's hour.
    pub fn issue_tokens_for(&self, lifetime: TimeDelta) {
        self.state().token_lifetime = Some(lifetime);
    }

    /// Every installation access token handed out so far stops working (`Bad credentials`), as when an app's
    /// installation is suspended and resumed.
    pub fn revoke_installation_tokens(&self) {
        self.state().issued.clear();
    }

    /// The commit statuses set on `sha`, oldest first.
    pub fn commit_statuses(&self, sha: &str) -> Vec<Value> {
        self.state().commit_statuses.iter().filter(|status| status["sha"] == sha).cloned().collect()
    }

    /// Every deployment, oldest first, each with its `statuses` (oldest first).
    pub fn deployments(&self) -> Vec<Value> {
        self.state().deployments.clone()
    }

    /// What GitHub holds of `repository`'s webhook `hook_id`: its deliveries, newest first, each as the list
    /// endpoint shows it (`id`, `guid`, `delivered_at`, `redelivery`, `duration`, `status`, `status_code`, `event`,
    /// `action`, `installation_id`, `repository_id`).
    pub fn hook_deliveries(&self, repository: &str, hook_id: u64, deliveries: Vec<Value>) {
        self.state().hook_deliveries.insert((repository.to_ascii_lowercase(), hook_id), deliveries);
    }

    /// Commits of `repository`, each with its parents (none for a root commit): what compare answers from.
    pub fn commits(&self, repository: &str, commits: &[(&str, &[&str])]) {
        let mut state = self.state();
        let known = state.commits.entry(repository.to_ascii_lowercase()).or_default();
        for (commit, parents) in commits {
            known.insert((*commit).to_owned(), parents.iter().map(|parent| (*parent).to_owned()).collect());
        }
    }

    /// The redeliveries asked for so far: (repository, hook id, delivery id).
    pub fn redeliveries(&self) -> Vec<(String, u64, u64)> {
        self.state().redeliveries.clone()
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
    let path = parts.uri.path().to_owned();
    let bearer = header("authorization")
        .and_then(|given| given.strip_prefix("Bearer ").map(str::to_owned))
        .map_or(Bearer::Unknown, |given| state.bearer(&given, Utc::now()));
    let app_endpoint = path.starts_with("/app/") || (path.starts_with("/repos/") && path.ends_with("/installation"));
    let authorized = match &bearer {
        Bearer::Token | Bearer::Installation { .. } => !app_endpoint,
        Bearer::App { .. } => app_endpoint,
        Bearer::Unknown => false,
    };
    let mut recorded = Recorded {
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        api_version: header("x-github-api-version"),
        accept: header("accept"),
        authorized,
        credential: match bearer {
            Bearer::Token => Some("token"),
            Bearer::App { .. } => Some("app"),
            Bearer::Installation { .. } => Some("installation"),
            Bearer::Unknown => None,
        },
        body: json.clone(),
        status: 0,
    };
    let (status, answer) = if state.fail_next > 0 {
        state.fail_next -= 1;
        (503, message("Service Unavailable"))
    } else if !authorized && app_endpoint {
        (401, message("A JSON web token could not be decoded"))
    } else if !authorized {
        (401, message("Bad credentials"))
    } else if !body.is_empty() && json.is_null() {
        (400, message("Problems parsing JSON"))
    } else if let Bearer::App { installation } = bearer {
        state.app_route(installation, &recorded.method, &recorded.path, &json)
    } else if let Bearer::Installation { repositories, .. } = &bearer
        && !recorded.path.split('/').nth(3).is_some_and(|name| repositories.contains(&name.to_ascii_lowercase()))
    {
        (404, message("Not Found"))
    } else if let Bearer::Installation { permissions, .. } = &bearer
        && !permitted(permissions, &recorded.method, &recorded.path)
    {
        (403, message("Resource not accessible by integration"))
    } else {
        route(&mut state, &recorded.method, &recorded.path, &recorded.query, &json)
    };
    recorded.status = status;
    state.requests.push(recorded);
    reply(status, &answer)
}

impl State {
    /// What `given` is: the token, a live installation token, or a JWT of an installed app that verifies.
    fn bearer(&self, given: &str, now: DateTime<Utc>) -> Bearer {
        if given == self.token {
            return Bearer::Token;
        }
        if let Some(issued) = self.issued.iter().find(|issued| issued.token == given && now < issued.expires_at) {
            return Bearer::Installation {
                repositories: issued.repositories.clone(),
                permissions: issued.permissions.clone(),
            };
        }
        self.app_jwt(given, now).map_or(Bearer::Unknown, |installation| Bearer::App { installation })
    }

    /// The installation of the app whose JWT `given` is, if it verifies and is live.
    fn app_jwt(&self, given: &str, now: DateTime<Utc>) -> Option<u64> {
        let [header, claims, signature] = given.split('.').collect::<Vec<_>>()[..] else { return None };
        let decode = |part: &str| -> Option<Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok() };
        if decode(header)?["alg"] != "RS256" {
            return None;
        }
        let claims = decode(claims)?;
        let issuer = match &claims["iss"] {
            Value::Number(id) => id.to_string(),
            Value::String(id) => id.clone(),
            _ => return None,
        };
        let (issued_at, expires) = (claims["iat"].as_i64()?, claims["exp"].as_i64()?);
        let now = now.timestamp();
        // GitHub: issued not in the future (a minute's drift allowed), expiring in the future but within ten minutes.
        if issued_at > now + 60 || expires <= now || expires > now + 600 {
            return None;
        }
        let app = self.apps.iter().find(|app| app.issuer == issuer)?;
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &app.public_key);
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        key.verify(format!("{header}.{}", given.split('.').nth(1)?).as_bytes(), &signature).ok()?;
        Some(app.installation)
    }

    /// An app's own endpoints, for the app of `installation`.
    fn app_route(&mut self, installation: u64, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["repos", owner, name, "installation"]) => {
                if !self.repositories.contains(&format!("{owner}/{name}").to_ascii_lowercase()) {
                    return (404, message("Not Found"));
                }
                (200, json!({ "id": installation, "account": { "login": owner }, "repository_selection": "all" }))
            }
            ("POST", ["app", "installations", id, "access_tokens"]) => {
                if id.parse::<u64>().ok() != Some(installation) {
                    return (404, message("Not Found"));
                }
                let served: Vec<String> =
                    self.repositories.iter().filter_map(|r| r.split_once('/').map(|(_, n)| n.to_owned())).collect();
                let asked: Option<Vec<String>> = body.get("repositories").map(|names| {
                    names
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect()
                });
                let repositories = asked.unwrap_or_else(|| served.clone());
                if repositories.iter().any(|name| !served.contains(name)) {
                    let text = "There is at least one repository that does not exist or is not accessible to the parent installation.";
                    return (422, message(text));
                }
                let granted = |(permission, level): (&String, &Value)| {
                    matches!(
                        permission.as_str(),
                        "statuses" | "deployments" | "metadata" | "repository_hooks" | "contents"
                    ) && matches!(level.as_str(), Some("read" | "write"))
                };
                let permissions =
                    body.get("permissions").cloned().unwrap_or(json!({ "statuses": "write", "deployments": "write" }));
                if !permissions.as_object().is_some_and(|asked| asked.iter().all(granted)) {
                    return (422, message("The permissions requested are not granted to this installation."));
                }
                let expires_at = Utc::now() + self.token_lifetime.unwrap_or(TimeDelta::hours(1));
                let token = format!("ghs_sandbox{:04}{:016x}", self.issued.len(), random());
                self.issued.push(Issued {
                    token: token.clone(),
                    repositories: repositories.clone(),
                    permissions: permissions.clone(),
                    expires_at,
                });
                let answer = json!({
                    "token": token,
                    "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "permissions": permissions,
                    "repository_selection": "selected",
                    "repositories": repositories.iter().map(|name| json!({ "name": name })).collect::<Vec<_>>(),
                });
                (201, answer)
            }
            _ => (404, message("Not Found")),
        }
    }
}

/// Whether an installation token granted `permissions` may make the request `method path`: reading needs the
/// permission the endpoint belongs to, writing needs it at `write`.
fn permitted(permissions: &Value, method: &str, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let needed = match parts.get(3..).unwrap_or_default() {
        ["statuses", ..] => "statuses",
        ["deployments", ..] => "deployments",
        ["hooks", ..] => "repository_hooks",
        ["compare", ..] => "contents",
        _ => return true,
    };
    match permissions[needed].as_str() {
        Some("write") => true,
        Some("read") => method == "GET",
        _ => false,
    }
}

/// A number no one can guess ahead: the standard library's per-process random hash keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

fn route(state: &mut State, method: &str, path: &str, query: &str, body: &Value) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["repos", owner, name, rest @ ..] = parts.as_slice() else { return (404, message("Not Found")) };
    let repository = format!("{owner}/{name}");
    if !state.repositories.contains(&repository.to_ascii_lowercase()) {
        return (404, message("Not Found"));
    }
    match (method, rest) {
        ("POST", ["statuses", sha]) => create_status(state, sha, body),
        ("GET", ["deployments"]) => list_deployments(state, &repository, query),
        ("POST", ["deployments"]) => create_deployment(state, &repository, body),
        ("GET", ["hooks", hook, "deliveries"]) => list_deliveries(state, &repository, hook, query),
        ("POST", ["hooks", hook, "deliveries", delivery, "attempts"]) => redeliver(state, &repository, hook, delivery),
        ("GET", ["compare", basehead]) => {
            let per_page = form_pairs(query)
                .iter()
                .find(|(key, _)| key == "per_page")
                .and_then(|(_, value)| value.parse::<usize>().ok())
                .unwrap_or(250);
            let commits = state.commits.get(&repository.to_ascii_lowercase());
            match (basehead.split_once("..."), commits) {
                (Some((base, head)), Some(commits)) => compare(commits, base, head, per_page),
                _ => (404, message("Not Found")),
            }
        }
        ("POST", ["deployments", id, "statuses"]) => create_deployment_status(state, &repository, id, body),
        _ => (404, message("Not Found")),
    }
}

/// POST /repos/{owner}/{repo}/statuses/{sha}: a commit status, as GitHub validates it.
fn create_status(state: &mut State, sha: &str, body: &Value) -> (u16, Value) {
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

/// GET /repos/{owner}/{repo}/deployments: newest first, filtered by `sha` and `environment`.
fn list_deployments(state: &State, repository: &str, query: &str) -> (u16, Value) {
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
        .filter(|d| d["repository"] == repository && matches(d))
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

/// POST /repos/{owner}/{repo}/deployments.
fn create_deployment(state: &mut State, repository: &str, body: &Value) -> (u16, Value) {
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

/// GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries: newest first, `per_page` of them (at most 100).
fn list_deliveries(state: &State, repository: &str, hook: &str, query: &str) -> (u16, Value) {
    let Some(listed) =
        hook.parse::<u64>().ok().and_then(|hook| state.hook_deliveries.get(&(repository.to_ascii_lowercase(), hook)))
    else {
        return (404, message("Not Found"));
    };
    let per_page = form_pairs(query)
        .iter()
        .find(|(key, _)| key == "per_page")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(30)
        .min(100);
    (200, Value::Array(listed.iter().take(per_page).cloned().collect()))
}

/// POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts: a delivery sent again.
fn redeliver(state: &mut State, repository: &str, hook: &str, delivery: &str) -> (u16, Value) {
    let (Ok(hook), Ok(delivery)) = (hook.parse::<u64>(), delivery.parse::<u64>()) else {
        return (404, message("Not Found"));
    };
    let known = state
        .hook_deliveries
        .get(&(repository.to_ascii_lowercase(), hook))
        .is_some_and(|listed| listed.iter().any(|d| d["id"].as_u64() == Some(delivery)));
    if !known {
        return (404, message("Not Found"));
    }
    state.redeliveries.push((repository.to_owned(), hook, delivery));
    (202, json!({}))
}

/// POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses.
fn create_deployment_status(state: &mut State, repository: &str, id: &str, body: &Value) -> (u16, Value) {
    let id: Option<u64> = id.parse().ok();
    let Some(deployment) =
        state.deployments.iter_mut().find(|d| d["repository"] == repository && d["id"].as_u64() == id && id.is_some())
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

/// GitHub's 422 for a field it refuses.
fn invalid(field: &str) -> (u16, Value) {
    (422, json!({ "message": "Validation Failed", "errors": [{ "field": field, "code": "invalid" }] }))
}

/// GitHub's comparison of `head` against `base` in `commits` (each with its parents).
fn compare(
    commits: &std::collections::HashMap<String, Vec<String>>,
    base: &str,
    head: &str,
    per_page: usize,
) -> (u16, Value) {
    // Every commit reachable from `from`, itself included.
    let reachable = |from: &str| -> Option<std::collections::BTreeSet<String>> {
        let mut seen = std::collections::BTreeSet::new();
        let mut next = vec![from.to_owned()];
        while let Some(commit) = next.pop() {
            let parents = commits.get(&commit)?;
            if seen.insert(commit) {
                next.extend(parents.iter().filter(|parent| commits.contains_key(*parent)).cloned());
            }
        }
        Some(seen)
    };
    let (Some(from_base), Some(from_head)) = (reachable(base), reachable(head)) else {
        return (404, message("Not Found"));
    };
    // The newest common ancestor: the shared commit with the most ancestors of its own. None: GitHub answers 404.
    let depth = |commit: &String| reachable(commit).map_or(0, |ancestors| ancestors.len());
    let Some(merge_base) = from_base.intersection(&from_head).max_by_key(|commit| depth(commit)).cloned() else {
        return (404, message(&format!("No common ancestor between {base} and {head}.")));
    };
    // The commits head has and base has not, oldest first.
    let mut ahead: Vec<&String> = from_head.difference(&from_base).collect();
    ahead.sort_by_key(|commit| depth(commit));
    let behind = from_base.difference(&from_head).count();
    let status = match (ahead.len(), behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let answer = json!({
        "status": status,
        "ahead_by": ahead.len(),
        "behind_by": behind,
        "total_commits": ahead.len(),
        "base_commit": { "sha": base },
        "merge_base_commit": { "sha": merge_base },
        "commits": ahead.iter().take(per_page).map(|sha| json!({ "sha": sha })).collect::<Vec<_>>(),
        "files": [],
    });
    (200, answer)
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
