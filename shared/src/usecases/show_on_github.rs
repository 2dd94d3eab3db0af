//! The notifier's GitHub part: it brings GitHub up to date with a run (`ReportToGitHub`): the commit status
//! `sluice/<pipeline>` on its commit and its Deployment's state, as `github_report` reads them from the run's record
//! at the time, each linking to the run's status page. A GitHub that cannot be reached or rate-limits is tried again
//! with the outbox's backoff, then parked; a refusal (a bad token, a repository out of its reach) is parked at once.
//! Either way the run goes on: nothing here can fail it.

use tracing::{info, warn};

use crate::contract::ports::{
    CommitReporter, CommitStatus, DeploymentRequest, DeploymentStatus, GitHubError, PipelineStore, SecretSource,
};
use crate::github::sign_in::GitHubCredentials;
use crate::pipeline::{Effect, Event, Execution, Freeze, Stage};
use crate::present::github_report::{shown_in, stage_deployments};
use crate::present::status::StatusKey;
use crate::runtime::telemetry::Chain;
use crate::usecases::{EffectError, KeptSecret};

const NAME: &str = "report_to_github";

/// Where the runs' pages are: the status page's site and its key.
pub struct RunPages<K> {
    /// The approval function's URL (or the domain in front of it), ending in `/`.
    pub base: String,
    pub key: KeptSecret<K>,
}

/// Shows runs on GitHub.
pub struct GitHubEffects<S, G, K> {
    /// Where the runs' records are read from.
    pub store: S,
    pub github: G,
    /// The secret sluice signs in to GitHub with (a token, or a GitHub App's id and key); `None` when the stack was
    /// given none.
    pub credentials: Option<KeptSecret<K>>,
    /// Where commit statuses and Deployments link to; `None`: no link.
    pub pages: Option<RunPages<K>>,
}

impl<S: PipelineStore, G: CommitReporter, K: SecretSource> GitHubEffects<S, G, K> {
    async fn credentials(&self) -> Result<GitHubCredentials, EffectError> {
        let Some(secret) = &self.credentials else {
            return Err(EffectError::permanent(
                NAME,
                "the stack has no GitHub token: name its secret in the GitHubTokenSecret parameter, or remove the \
                 pipeline's [github] table",
            ));
        };
        let secret = secret.get().await.map_err(|error| EffectError::transient(NAME, error))?;
        GitHubCredentials::parse(&secret).map_err(|error| EffectError::permanent(NAME, error))
    }

    /// The run's page, if the status page is set up; a key that cannot be read costs the link, not the report.
    async fn page(&self, run: &Execution) -> Option<String> {
        let pages = self.pages.as_ref()?;
        match pages.key.get().await.map(StatusKey::new) {
            Ok(Ok(key)) => Some(format!("{}{}", pages.base, key.run_path(&run.id))),
            Ok(Err(weak)) => {
                warn!(error = %weak, "no link to the run's page");
                None
            }
            Err(error) => {
                warn!(error = %Chain(&error), "no link to the run's page");
                None
            }
        }
    }

    /// Shows `run` on GitHub as it stands: its commit status, and each deploy stage's Deployment. The Deployment found
    /// or created for a stage that had none recorded, if any: one a report at most for a run still going (the run,
    /// told of it, asks for another report while a stage it is shown at has none); every missing one for a run that
    /// ended (nothing asks again), found by its payload if an earlier report made it.
    async fn show(
        &self,
        credentials: &GitHubCredentials,
        (run, frozen): (&Execution, Option<&Freeze>),
    ) -> Result<Option<(Stage, u64)>, GitHubError> {
        let now = shown_in(run, frozen);
        let page = self.page(run).await;
        let source = &run.source;
        let status = CommitStatus {
            repository: &source.repository,
            commit: &source.commit,
            state: now.commit.as_str(),
            context: &now.context,
            description: &now.description,
            target_url: page.as_deref(),
        };
        self.github.set_commit_status(credentials, &status).await?;
        let mut created = None;
        for (stage, state) in stage_deployments(run, now.deployment) {
            let known = run.github_deployments.iter().find(|shown| shown.stage == stage).map(|shown| shown.deployment);
            let Some(environment) = run.plan.environment(stage) else { continue };
            let request = DeploymentRequest {
                repository: &source.repository,
                commit: &source.commit,
                environment: &environment,
                description: &now.description,
                pipeline: &run.pipeline,
                execution_id: &run.id.0,
            };
            let deployment = match known {
                Some(known) => known,
                // A run still going asks for another report once told of this one; one that ended does not.
                None if created.is_some() && !run.status.is_finished() => break,
                // Found first: a report tried again after GitHub created the Deployment makes no second one.
                None => {
                    let made = match self.github.find_deployment(credentials, &request).await? {
                        Some(found) => found,
                        None => self.github.create_deployment(credentials, &request).await?,
                    };
                    created = Some((stage, made));
                    made
                }
            };
            let status = DeploymentStatus {
                repository: &source.repository,
                deployment,
                state: state.as_str(),
                description: &now.description,
                log_url: page.as_deref(),
            };
            self.github.set_deployment_status(credentials, &status).await?;
            info!(execution = %run.id, stage = %stage, deployment = state.as_str(), "Deployment shown on GitHub");
        }
        info!(execution = %run.id, commit = now.commit.as_str(), "shown on GitHub");
        Ok(created)
    }
}

impl<S: PipelineStore, G: CommitReporter, K: SecretSource> GitHubEffects<S, G, K> {
    /// Carries out a `ReportToGitHub`, for the notifier's effect runner ([`crate::usecases::NotifierEffects`]),
    /// which runs its effects one after the other: two reports of a run at once could each create a Deployment.
    pub async fn report(&self, effect: &Effect) -> Result<Option<Event>, EffectError> {
        let Effect::ReportToGitHub { execution_id } = effect else {
            return Err(EffectError::permanent(effect.kind().name(), "not an effect the notifier carries out"));
        };
        let run = match self.store.execution(execution_id).await {
            Ok(Some(run)) => run,
            Ok(None) => return Err(EffectError::permanent(NAME, format!("run {execution_id} has no record"))),
            Err(error) => return Err(EffectError::transient(NAME, error)),
        };
        if run.plan.github.is_none() {
            return Ok(None);
        }
        // A run held out of a deploy stage may be held by a freeze, which its pipeline holds: one more read, then.
        let held = run.waiting_for().is_some_and(|stage| run.plan.deploy_stage(stage).is_some());
        let frozen = match held {
            true => self.store.load(&run.pipeline).await.map_err(|error| EffectError::transient(NAME, error))?,
            false => None,
        };
        let frozen = frozen.and_then(|stored| stored.value.freeze);
        let credentials = self.credentials().await?;
        match self.show(&credentials, (&run, frozen.as_deref())).await {
            Ok(created) => Ok(created.map(|(stage, deployment)| Event::GitHubDeploymentCreated {
                execution_id: execution_id.clone(),
                deployment,
                stage: Some(stage),
            })),
            Err(error @ GitHubError::Refused { .. }) => Err(EffectError::permanent(NAME, error)),
            Err(error @ GitHubError::Unavailable { .. }) => Err(EffectError::transient(NAME, error)),
        }
    }
}
