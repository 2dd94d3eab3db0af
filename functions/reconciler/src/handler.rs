//! A scheduled run: the published definitions, then one look at each pipeline.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice::adapters::{
    CodeBuildStarter, CodeDeployDeployments, DynamoDbStore, EcsDeployer, EventBridgePublisher, S3Artifacts,
    stage_effects,
};
use sluice::ports::{
    ArtifactStore, BlueGreenDeployments, BuildStarter, DefinitionsStore, NativeDeployments, PipelineStore,
    RollingUpdates,
};
use sluice::usecases::{
    CachedDefinitions, DefinitionsError, EffectRunner, Lookups, QUIET_FOR, StageEffects, reconcile,
};
use tracing::{info, warn};

/// The function's configuration: the table and the bus, from its environment.
pub type Config = sluice::config::Common;

/// What the handler needs, built once per instance.
pub struct App<S, D, R, L> {
    pub store: S,
    pub definitions: CachedDefinitions<D>,
    pub effects: R,
    /// What the look asks AWS about: builds' artifacts, builds, blue/green deployments, services.
    pub lookups: L,
}

/// The function as it runs on AWS.
pub type AwsApp = App<
    DynamoDbStore,
    DynamoDbStore,
    StageEffects<EventBridgePublisher, CodeBuildStarter>,
    Lookups<S3Artifacts, CodeBuildStarter, CodeDeployDeployments, EcsDeployer>,
>;

impl AwsApp {
    /// The one wiring of the function, for its main, the tests and the demo: every adapter on `aws`.
    pub fn from_aws(aws: &aws_config::SdkConfig, config: &Config) -> Self {
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(aws), &config.table);
        let effects = stage_effects(aws, &config.event_bus);
        App {
            store: store.clone(),
            definitions: CachedDefinitions::new(store),
            lookups: Lookups {
                artifacts: S3Artifacts::new(aws_sdk_s3::Client::new(aws)),
                builds: effects.builds.clone(),
                blue_green: CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(aws)),
                services: EcsDeployer::new(aws_sdk_ecs::Client::new(aws)),
            },
            effects,
        }
    }
}

/// One look. Returns what it did; fails only when there are no usable definitions to look with.
pub async fn on_schedule<S, D, R, A, B, C, E>(
    app: &App<S, D, R, Lookups<A, B, C, E>>,
    now: DateTime<Utc>,
) -> Result<Value, DefinitionsError>
where
    S: PipelineStore,
    D: DefinitionsStore,
    R: EffectRunner,
    A: ArtifactStore,
    B: BuildStarter,
    C: BlueGreenDeployments,
    E: RollingUpdates + NativeDeployments,
{
    let definitions = app.definitions.get().await?;
    let done = reconcile(&app.store, &app.effects, &app.lookups, &definitions, now, QUIET_FOR).await;
    if done.errors > 0 {
        warn!(errors = done.errors, "some pipelines could not be looked at; the next run tries again");
    }
    info!(
        builds_checked = done.builds_checked,
        deployments_checked = done.deployments_checked,
        moved = done.moved,
        doorbells = done.doorbells,
        "reconciled"
    );
    Ok(json!({
        "builds_checked": done.builds_checked,
        "deployments_checked": done.deployments_checked,
        "moved": done.moved,
        "doorbells": done.doorbells,
        "errors": done.errors,
    }))
}

#[cfg(test)]
mod tests {
    use sluice::testing::{InMemoryArtifacts, InMemoryStore, RecordedDeployments, RecordingBuilds, RecordingPublisher};
    use sluice::usecases::StageEffects;

    use super::*;

    type TestApp = App<
        InMemoryStore,
        InMemoryStore,
        StageEffects<RecordingPublisher, RecordingBuilds>,
        Lookups<InMemoryArtifacts, RecordingBuilds, RecordedDeployments, RecordedDeployments>,
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
                blue_green: RecordedDeployments::new(),
                services: RecordedDeployments::new(),
            },
        }
    }

    #[tokio::test]
    async fn a_look_at_pipelines_that_never_ran_does_nothing_and_says_so() {
        let app = app(true).await;
        let summary = on_schedule(&app, Utc::now()).await.expect("looked");
        assert_eq!(
            summary,
            json!({ "builds_checked": 0, "deployments_checked": 0, "moved": 0, "doorbells": 0, "errors": 0 })
        );
    }

    #[tokio::test]
    async fn without_published_definitions_a_look_fails_with_what_to_do() {
        let app = app(false).await;
        let error = on_schedule(&app, Utc::now()).await.expect_err("nothing to look with");
        assert!(error.to_string().contains("sluice publish"), "{error}");
    }
}
