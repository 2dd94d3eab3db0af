//! A scheduled run: the published definitions, then one look at each pipeline, and, where the stack has GitHub
//! credentials, at the webhooks' recent deliveries (those that failed are redelivered).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice::adapters::{
    CodeBuildStarter, CodeDeployDeployments, DynamoDbStore, EcrImages, EcsDeployer, EventBridgePublisher, GITHUB_API,
    GitHubApi, S3Artifacts, SecretsManagerSecret, github_access, stage_effects,
};
use sluice::contract::ports::{
    ArtifactStore, BlueGreenDeployments, BuildStarter, Built, DefinitionsStore, ImageRegistry, NativeDeployments,
    PipelineStore, RollingUpdates, SecretSource, ServiceTasks, TestReports, WebhookDeliveries,
};
use sluice::runtime::config::{Common, ConfigError};
use sluice::usecases::{
    CachedDefinitions, DefinitionsError, EffectRunner, GitHubAccess, Lookups, QUIET_FOR, StageEffects, reconcile,
    redeliver_failed_pushes,
};
use tracing::{info, warn};

/// The function's configuration, from its environment: the table and the bus, and GitHub's credentials if given.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: Common,
    pub github_token: Option<String>,
    pub github_api: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (github_token, github_api) = sluice::runtime::config::github_from(&lookup);
        Ok(Self { common: Common::from_lookup(&lookup)?, github_token, github_api })
    }
}

/// Without GitHub: failed deliveries are not looked for.
impl From<Common> for Config {
    fn from(common: Common) -> Self {
        Self { common, github_token: None, github_api: GITHUB_API.to_owned() }
    }
}

/// What the handler needs, built once per instance.
pub struct App<S, D, R, L, G = GitHubApi, K = SecretsManagerSecret> {
    pub store: S,
    pub definitions: CachedDefinitions<D>,
    pub effects: R,
    /// What the look asks AWS about: builds' artifacts and images, builds, blue/green deployments, services.
    pub lookups: L,
    /// Where the webhooks' failed deliveries are found and redelivered; `None` without GitHub credentials.
    pub intake: Option<GitHubAccess<G, K>>,
}

/// The app whose look asks AWS through `Lookups`.
pub type LookingApp<S, D, R, A, B, C, E, G, K> = App<S, D, R, Lookups<A, B, C, E>, G, K>;

/// The effects this function carries out, as it runs on AWS (what the README's map says it owns).
pub type Effects = StageEffects<EventBridgePublisher, CodeBuildStarter>;

/// The function as it runs on AWS.
pub type AwsApp = App<
    DynamoDbStore,
    DynamoDbStore,
    Effects,
    Lookups<Built<S3Artifacts, EcrImages, CodeBuildStarter>, CodeBuildStarter, CodeDeployDeployments, EcsDeployer>,
>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`. GitHub's
    /// secret is read when first needed.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.common.table);
        let effects = stage_effects(aws, &config.common.event_bus);
        let intake = github_access(aws, config.github_token.as_deref(), &config.github_api);
        App {
            store: store.clone(),
            definitions: CachedDefinitions::new(store),
            lookups: Lookups {
                artifacts: sluice::adapters::build_outputs(aws),
                builds: effects.builds.clone(),
                blue_green: CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(aws)),
                services: EcsDeployer::new(aws_sdk_ecs::Client::new(aws)),
            },
            effects,
            intake,
        }
    }
}

/// One look. Returns what it did; fails only when there are no usable definitions to look with.
pub async fn on_schedule<S, D, R, A, B, C, E, G, K>(
    app: &LookingApp<S, D, R, A, B, C, E, G, K>,
    now: DateTime<Utc>,
) -> Result<Value, DefinitionsError>
where
    S: PipelineStore,
    D: DefinitionsStore,
    R: EffectRunner,
    A: ArtifactStore + ImageRegistry + TestReports,
    B: BuildStarter,
    C: BlueGreenDeployments,
    E: RollingUpdates + NativeDeployments + ServiceTasks,
    G: WebhookDeliveries,
    K: SecretSource,
{
    let definitions = app.definitions.get().await?;
    let done = reconcile(&app.store, &app.effects, &app.lookups, &definitions, now, QUIET_FOR).await;
    let healed = match &app.intake {
        Some(intake) => redeliver_failed_pushes(&app.store, intake, &definitions, now).await,
        None => Default::default(),
    };
    let errors = done.errors + healed.errors;
    if errors > 0 {
        warn!(errors = done.errors, "some pipelines could not be looked at; the next run tries again");
    }
    info!(
        builds_checked = done.builds_checked,
        deployments_checked = done.deployments_checked,
        moved = done.moved,
        doorbells = done.doorbells,
        redelivered = healed.redelivered,
        "reconciled"
    );
    Ok(json!({
        "builds_checked": done.builds_checked,
        "deployments_checked": done.deployments_checked,
        "moved": done.moved,
        "doorbells": done.doorbells,
        "redelivered": healed.redelivered,
        "errors": errors,
    }))
}

#[cfg(test)]
mod tests {
    use sluice::contract::testing::{
        InMemoryArtifacts, InMemoryStore, RecordingBuilds, RecordingDeployments, RecordingPublisher,
    };
    use sluice::usecases::StageEffects;

    use super::*;

    type TestApp = App<
        InMemoryStore,
        InMemoryStore,
        StageEffects<RecordingPublisher, RecordingBuilds>,
        Lookups<InMemoryArtifacts, RecordingBuilds, RecordingDeployments, RecordingDeployments>,
        sluice::contract::testing::RecordingDeliveries,
        sluice::contract::testing::FixedSecret,
    >;

    async fn app(published: bool) -> TestApp {
        let definitions = InMemoryStore::new();
        if published {
            let example = include_str!("../../../infra/pipelines.example.toml");
            definitions.publish(example, None, Utc::now()).await.expect("published");
        }
        App {
            store: InMemoryStore::new(),
            definitions: CachedDefinitions::new(definitions),
            effects: StageEffects { publisher: RecordingPublisher::new(), builds: RecordingBuilds::new() },
            lookups: Lookups {
                artifacts: InMemoryArtifacts::new(),
                builds: RecordingBuilds::new(),
                blue_green: RecordingDeployments::new(),
                services: RecordingDeployments::new(),
            },
            intake: None,
        }
    }

    #[tokio::test]
    async fn a_look_at_pipelines_that_never_ran_does_nothing_and_says_so() {
        let app = app(true).await;
        let summary = on_schedule(&app, Utc::now()).await.expect("looked");
        assert_eq!(
            summary,
            json!({
                "builds_checked": 0, "deployments_checked": 0, "moved": 0, "doorbells": 0, "redelivered": 0, "errors": 0
            })
        );
    }

    #[tokio::test]
    async fn without_published_definitions_a_look_fails_with_what_to_do() {
        let app = app(false).await;
        let error = on_schedule(&app, Utc::now()).await.expect_err("nothing to look with");
        assert!(error.to_string().contains("sluice publish"), "{error}");
    }
}
