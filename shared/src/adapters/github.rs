//! `CommitReporter`, `WebhookDeliveries` and `CommitHistory` on GitHub's REST API (<https://docs.github.com/en/rest>), over the same
//! hyper and rustls client as the checks. Every request names the API version it was written for (`X-GitHub-Api-Version`) and carries a
//! bearer token; nothing here logs it.
//!
//! With a token, that is the token. With a GitHub App, it is an installation access token for the one repository
//! reported on, with only the permissions the request needs (commit statuses and deployments, the repository's
//! webhooks, or its contents read), got with the app's JWT
//! (<https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app>) and kept until five
//! minutes before it expires: two more requests an hour per repository. One refused as bad credentials while kept
//! (the app's key rotated, the installation suspended) is forgotten and the request made once more with a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tracing::instrument;

use super::http::{cause, https_connector};
use crate::contract::ports::{
    CommitHistory, CommitReporter, CommitStatus, DeploymentRequest, DeploymentStatus, GitHubError, HookDelivery,
    WebhookDeliveries,
};
use crate::github::sign_in::{GitHubApp, GitHubCredentials};
use crate::pipeline::CommitOrder;
use crate::present::github_report::API_VERSION;

/// Where GitHub's REST API is, unless configured otherwise (GitHub Enterprise Server: `https://HOST/api/v3`).
pub const GITHUB_API: &str = "https://api.github.com";
/// How long a request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read.
const MAX_ANSWER: usize = 1 << 20;
/// The most of a comparison read: its first page lists up to 300 changed files with their patches.
const MAX_COMPARISON: usize = 4 << 20;
/// An installation access token is replaced this long before it expires.
const RENEW_BEFORE: TimeDelta = TimeDelta::minutes(5);

/// Installation access tokens, by app, repository and what they may do, with when they expire.
type Installations = HashMap<(String, String, Scope), (SecretString, DateTime<Utc>)>;

/// What an installation access token is asked for: only the permissions the request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    /// Commit statuses and Deployments, written.
    Report,
    /// The repository's webhooks (their deliveries), read and redelivered.
    Hooks,
    /// The repository's contents (its commits), read.
    Contents,
}

impl Scope {
    /// The most of an answer read for a request of this scope.
    fn max_answer(self) -> usize {
        match self {
            Scope::Contents => MAX_COMPARISON,
            Scope::Report | Scope::Hooks => MAX_ANSWER,
        }
    }

    fn permissions(self) -> Value {
        match self {
            Scope::Report => json!({ "statuses": "write", "deployments": "write" }),
            Scope::Hooks => json!({ "repository_hooks": "write" }),
            Scope::Contents => json!({ "contents": "read" }),
        }
    }
}

/// GitHub's REST API at `base`.
#[derive(Debug, Clone)]
pub struct GitHubApi {
    /// Made at the first request: reading the system's root certificates is no part of a function's start.
    client: Arc<OnceLock<Result<HttpsClient, String>>>,
    base: String,
    installations: Arc<Mutex<Installations>>,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

impl GitHubApi {
    pub fn new(base: &str) -> Self {
        Self { client: Arc::default(), base: base.trim_end_matches('/').to_owned(), installations: Arc::default() }
    }

    fn client(&self, what: &str) -> Result<&HttpsClient, GitHubError> {
        let made = self
            .client
            .get_or_init(|| https_connector().map(|connector| Client::builder(TokioExecutor::new()).build(connector)));
        made.as_ref().map_err(|message| GitHubError::Unavailable {
            what: format!("{what} (setting up TLS)"),
            message: message.clone(),
        })
    }

    fn installations(&self) -> std::sync::MutexGuard<'_, Installations> {
        self.installations.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bearer token for a request on `repository`, and whether it was kept from before.
    async fn bearer(
        &self,
        credentials: &GitHubCredentials,
        repository: &str,
        scope: Scope,
    ) -> Result<(SecretString, bool), GitHubError> {
        let app = match credentials {
            GitHubCredentials::Token(token) => return Ok((token.clone(), false)),
            GitHubCredentials::App(app) => app,
        };
        let key = (app.issuer.clone(), repository.to_ascii_lowercase(), scope);
        let kept = self.installations().get(&key).cloned();
        if let Some((token, expires)) = kept
            && Utc::now() < expires - RENEW_BEFORE
        {
            return Ok((token, true));
        }
        let (token, expires) = self.installation_token(app, repository, scope).await?;
        self.installations().insert(key, (token.clone(), expires));
        Ok((token, false))
    }

    /// A new installation access token for `repository`: the app's installation on it, then a token for it alone.
    async fn installation_token(
        &self,
        app: &GitHubApp,
        repository: &str,
        scope: Scope,
    ) -> Result<(SecretString, DateTime<Utc>), GitHubError> {
        let refused = |what: &str, message: String| GitHubError::Refused { what: what.to_owned(), status: 0, message };
        let signing = format!("signing in as GitHub App {}", app.issuer);
        let jwt = app.jwt(Utc::now()).map_err(|error| refused(&signing, error.to_string()))?;
        let path = format!("{}/installation", repo_path(repository)?);
        let what = format!("finding GitHub App {}'s installation on {repository}", app.issuer);
        let installation = self.call(&jwt, hyper::Method::GET, &path, None, (&what, MAX_ANSWER)).await?;
        let Some(id) = installation.get("id").and_then(Value::as_u64) else {
            return Err(refused(&what, "the answer has no installation id".into()));
        };
        let name = repository.split_once('/').map_or(repository, |(_, name)| name);
        let body = json!({ "repositories": [name], "permissions": scope.permissions() });
        let path = format!("/app/installations/{id}/access_tokens");
        let what = format!("an installation access token of GitHub App {} for {repository}", app.issuer);
        let answer = self.call(&jwt, hyper::Method::POST, &path, Some(&body), (&what, MAX_ANSWER)).await?;
        let token = answer.get("token").and_then(Value::as_str).filter(|token| !token.is_empty());
        let expires = answer
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc));
        match (token, expires) {
            (Some(token), Some(expires)) => Ok((SecretString::from(token.to_owned()), expires)),
            _ => Err(refused(&what, "the answer has no token or no expires_at".into())),
        }
    }

    /// `method path` on `repository` with `credentials`. A kept installation token refused as bad credentials is
    /// forgotten, and the request made once more with a new one.
    async fn on_repository(
        &self,
        credentials: &GitHubCredentials,
        (repository, scope): (&str, Scope),
        method: hyper::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, GitHubError> {
        let (token, kept) = self.bearer(credentials, repository, scope).await?;
        match self.call(&token, method.clone(), path, body, (what, scope.max_answer())).await {
            Err(GitHubError::Refused { status: 401, .. }) if kept => {
                if let GitHubCredentials::App(app) = credentials {
                    self.installations().remove(&(app.issuer.clone(), repository.to_ascii_lowercase(), scope));
                }
                let (token, _) = self.bearer(credentials, repository, scope).await?;
                self.call(&token, method, path, body, (what, scope.max_answer())).await
            }
            answer => answer,
        }
    }

    /// `method path` with `body`, reading at most `max` bytes of the answer; its JSON on a 2xx, the error otherwise.
    async fn call(
        &self,
        token: &SecretString,
        method: hyper::Method,
        path: &str,
        body: Option<&Value>,
        (what, max): (&str, usize),
    ) -> Result<Value, GitHubError> {
        let unavailable = |message: String| GitHubError::Unavailable { what: what.to_owned(), message };
        let bytes = body.map(|body| Bytes::from(body.to_string())).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header("authorization", format!("Bearer {}", token.expose_secret()))
            .header("user-agent", "sluice")
            .header("content-type", "application/json")
            .body(Full::new(bytes))
            .map_err(|error| GitHubError::Refused {
                what: what.to_owned(),
                status: 0,
                message: format!("the request could not be made: {error}"),
            })?;
        let response = match tokio::time::timeout(TIMEOUT, self.client(what)?.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(unavailable(cause(&error))),
            Err(_) => return Err(unavailable(format!("no answer within {} s", TIMEOUT.as_secs()))),
        };
        let status = response.status().as_u16();
        let rate_limited = response.headers().get("x-ratelimit-remaining").is_some_and(|left| left == "0")
            || response.headers().contains_key("retry-after");
        let answer = match Limited::new(response.into_body(), max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => return Err(unavailable(format!("the answer could not be read: {error}"))),
        };
        let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let message = answer.get("message").and_then(Value::as_str).unwrap_or("no message").to_owned();
        if status >= 500 || status == 429 || (status == 403 && rate_limited) {
            return Err(unavailable(format!("{status}: {message}")));
        }
        Err(GitHubError::Refused { what: what.to_owned(), status, message })
    }
}

/// `/repos/owner/name`, for a repository named as GitHub names them.
fn repo_path(repository: &str) -> Result<String, GitHubError> {
    let valid = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repository.split_once('/') {
        Some((owner, name)) if valid(owner) && valid(name) => Ok(format!("/repos/{owner}/{name}")),
        _ => Err(GitHubError::Refused {
            what: format!("repository {repository:?}"),
            status: 0,
            message: "not an owner/name GitHub repository".into(),
        }),
    }
}

fn hex(commit: &str) -> Result<&str, GitHubError> {
    if !commit.is_empty() && commit.len() <= 64 && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(commit);
    }
    Err(GitHubError::Refused { what: format!("commit {commit:?}"), status: 0, message: "not a commit SHA".into() })
}

impl CommitReporter for GitHubApi {
    #[instrument(skip_all, fields(repository = status.repository, commit = status.commit, state = status.state))]
    async fn set_commit_status(
        &self,
        credentials: &GitHubCredentials,
        status: &CommitStatus<'_>,
    ) -> Result<(), GitHubError> {
        let path = format!("{}/statuses/{}", repo_path(status.repository)?, hex(status.commit)?);
        let mut body = json!({ "state": status.state, "context": status.context, "description": status.description });
        if let Some(url) = status.target_url {
            body["target_url"] = json!(url);
        }
        let what = format!("the commit status of {}@{}", status.repository, status.commit);
        self.on_repository(
            credentials,
            (status.repository, Scope::Report),
            hyper::Method::POST,
            &path,
            Some(&body),
            &what,
        )
        .await
        .map(drop)
    }

    #[instrument(skip_all, fields(repository = deployment.repository, execution = deployment.execution_id))]
    async fn find_deployment(
        &self,
        credentials: &GitHubCredentials,
        deployment: &DeploymentRequest<'_>,
    ) -> Result<Option<u64>, GitHubError> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("sha", hex(deployment.commit)?)
            .append_pair("environment", deployment.environment)
            .append_pair("per_page", "100")
            .finish();
        let path = format!("{}/deployments?{query}", repo_path(deployment.repository)?);
        let what = format!("listing the deployments of {}@{}", deployment.repository, deployment.commit);
        let listed = self
            .on_repository(credentials, (deployment.repository, Scope::Report), hyper::Method::GET, &path, None, &what)
            .await?;
        Ok(listed.as_array().into_iter().flatten().find_map(|found| {
            let ours = found.pointer("/payload/execution_id").and_then(Value::as_str) == Some(deployment.execution_id);
            ours.then(|| found.get("id").and_then(Value::as_u64)).flatten()
        }))
    }

    #[instrument(skip_all, fields(repository = deployment.repository, execution = deployment.execution_id))]
    async fn create_deployment(
        &self,
        credentials: &GitHubCredentials,
        deployment: &DeploymentRequest<'_>,
    ) -> Result<u64, GitHubError> {
        let path = format!("{}/deployments", repo_path(deployment.repository)?);
        let body = json!({
            "ref": hex(deployment.commit)?,
            "environment": deployment.environment,
            "description": deployment.description,
            // sluice deploys the commit it built: GitHub must not merge the default branch into it first, nor wait
            // for other checks (sluice's own commit status among them).
            "auto_merge": false,
            "required_contexts": [],
            "payload": { "pipeline": deployment.pipeline, "execution_id": deployment.execution_id },
        });
        let what = format!("creating a deployment of {}@{}", deployment.repository, deployment.commit);
        let created = self
            .on_repository(
                credentials,
                (deployment.repository, Scope::Report),
                hyper::Method::POST,
                &path,
                Some(&body),
                &what,
            )
            .await?;
        created.get("id").and_then(Value::as_u64).ok_or_else(|| GitHubError::Refused {
            what,
            status: 202,
            message: created.get("message").and_then(Value::as_str).unwrap_or("no deployment id").to_owned(),
        })
    }

    #[instrument(skip_all, fields(repository = status.repository, deployment = status.deployment, state = status.state))]
    async fn set_deployment_status(
        &self,
        credentials: &GitHubCredentials,
        status: &DeploymentStatus<'_>,
    ) -> Result<(), GitHubError> {
        let path = format!("{}/deployments/{}/statuses", repo_path(status.repository)?, status.deployment);
        let mut body = json!({ "state": status.state, "description": status.description });
        if let Some(url) = status.log_url {
            body["log_url"] = json!(url);
        }
        let what = format!("the status of deployment {} of {}", status.deployment, status.repository);
        self.on_repository(
            credentials,
            (status.repository, Scope::Report),
            hyper::Method::POST,
            &path,
            Some(&body),
            &what,
        )
        .await
        .map(drop)
    }
}

impl WebhookDeliveries for GitHubApi {
    /// <https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook>: the newest 100.
    #[instrument(skip(self, credentials))]
    async fn deliveries(
        &self,
        credentials: &GitHubCredentials,
        repository: &str,
        hook_id: u64,
    ) -> Result<Vec<HookDelivery>, GitHubError> {
        let path = format!("{}/hooks/{hook_id}/deliveries?per_page=100", repo_path(repository)?);
        let what = format!("listing the deliveries of webhook {hook_id} of {repository}");
        let listed =
            self.on_repository(credentials, (repository, Scope::Hooks), hyper::Method::GET, &path, None, &what).await?;
        // Each field read leniently: an entry sluice cannot read is left out, not an error.
        Ok(listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                Some(HookDelivery {
                    id: entry.get("id")?.as_u64()?,
                    guid: entry.get("guid")?.as_str()?.to_owned(),
                    event: entry.get("event")?.as_str()?.to_owned(),
                    status_code: entry
                        .get("status_code")
                        .and_then(Value::as_u64)
                        .map_or(0, |code| u16::try_from(code).unwrap_or(u16::MAX)),
                    delivered_at: DateTime::parse_from_rfc3339(entry.get("delivered_at")?.as_str()?)
                        .ok()?
                        .with_timezone(&Utc),
                    redelivery: entry.get("redelivery").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect())
    }

    /// <https://docs.github.com/en/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook> (202).
    #[instrument(skip(self, credentials))]
    async fn redeliver(
        &self,
        credentials: &GitHubCredentials,
        repository: &str,
        hook_id: u64,
        delivery: u64,
    ) -> Result<(), GitHubError> {
        let path = format!("{}/hooks/{hook_id}/deliveries/{delivery}/attempts", repo_path(repository)?);
        let what = format!("redelivering delivery {delivery} of webhook {hook_id} of {repository}");
        self.on_repository(credentials, (repository, Scope::Hooks), hyper::Method::POST, &path, None, &what)
            .await
            .map(drop)
    }
}

impl CommitHistory for GitHubApi {
    /// <https://docs.github.com/en/rest/commits/commits#compare-two-commits>: `status` is `ahead`, `behind`,
    /// `identical` or `diverged`, of `commit` against `base`; anything else is `Unknown`. One commit a page: only the
    /// status is read.
    #[instrument(skip(self, credentials))]
    async fn compare(
        &self,
        credentials: &GitHubCredentials,
        repository: &str,
        base: &str,
        commit: &str,
    ) -> Result<CommitOrder, GitHubError> {
        let path = format!("{}/compare/{}...{}?per_page=1", repo_path(repository)?, hex(base)?, hex(commit)?);
        let what = format!("comparing {commit} with {base} in {repository}");
        let answer = self
            .on_repository(credentials, (repository, Scope::Contents), hyper::Method::GET, &path, None, &what)
            .await?;
        Ok(match answer.get("status").and_then(Value::as_str) {
            Some("ahead") => CommitOrder::Ahead,
            Some("behind") => CommitOrder::Behind,
            Some("identical") => CommitOrder::Identical,
            Some("diverged") => CommitOrder::Diverged,
            _ => CommitOrder::Unknown,
        })
    }
}
