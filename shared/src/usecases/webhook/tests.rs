//! The webhook use case from GitHub's payloads, with the in-memory store, a recording bus and a recording CodeBuild.

use chrono::TimeZone;

use super::*;
use crate::contract::ports::{DefinitionsStore, Receipt};
use crate::contract::testing::{
    BuildAnswer, FixedSecret, FixedSecrets, InMemoryStore, RecordingBuilds, RecordingPublisher, ScriptedComparisons,
};
use crate::github::webhook::WebhookSecrets;
use crate::github::webhook::sign;
use crate::pipeline::CommitOrder;
use crate::pipeline::{Effect, Stage, Status};
use crate::usecases::{GitHubAccess, KeptSecret, StageEffects, handle};

const SECRET: &str = "It's a Secret to Everybody";
const PUSH: &[u8] = include_bytes!("../../../tests/fixtures/github-push.json");
const DELETED: &[u8] = include_bytes!("../../../tests/fixtures/github-push-tag-deleted.json");
const PING: &[u8] = include_bytes!("../../../tests/fixtures/github-ping.json");
const HEAD: &str = "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b";

const EXAMPLE: &str = include_str!("../../../../infra/pipelines.example.toml");

struct World {
    store: InMemoryStore,
    effects: StageEffects<RecordingPublisher, RecordingBuilds>,
    definitions: CachedDefinitions<InMemoryStore>,
    keys: WebhookKeys<FixedSecrets>,
    github: Option<GitHubAccess<ScriptedComparisons, FixedSecret>>,
}

impl World {
    async fn new() -> Self {
        Self::with_definitions(Some(EXAMPLE)).await
    }

    async fn with_definitions(text: Option<&str>) -> Self {
        let definitions = InMemoryStore::new();
        if let Some(text) = text {
            definitions.publish(text, None, Utc::now()).await.expect("published");
        }
        let secrets = FixedSecrets(WebhookSecrets::new([secrecy::SecretString::from(SECRET)]));
        Self {
            store: InMemoryStore::new(),
            effects: StageEffects { publisher: RecordingPublisher::new(), builds: RecordingBuilds::new() },
            definitions: CachedDefinitions::new(definitions),
            keys: WebhookKeys::load(secrets).await.expect("read"),
            github: None,
        }
    }

    /// A world whose stack has GitHub credentials: GitHub's compare answers as the test scripts it.
    async fn with_github() -> Self {
        let github = ScriptedComparisons::new();
        let credentials = KeptSecret::new(FixedSecret("github_pat_test".into()));
        Self { github: Some(GitHubAccess { github, credentials }), ..Self::new().await }
    }

    fn comparisons(&self) -> &ScriptedComparisons {
        &self.github.as_ref().expect("a world with GitHub").github
    }

    async fn deliver(&self, event: &str, delivery_id: &str, body: &[u8]) -> Reply {
        let signature = sign(SECRET, body);
        self.send(delivery(event, delivery_id, Some(&signature), body)).await
    }

    async fn send(&self, delivery: Delivery<'_>) -> Reply {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date");
        let webhook = Webhook {
            store: &self.store,
            effects: &self.effects,
            definitions: &self.definitions,
            keys: &self.keys,
            github: self.github.as_ref(),
        };
        receive_webhook(webhook, delivery, now).await
    }

    /// Has CodeBuild report the build of the run building `web` failed, so that the run waiting enters the stage.
    async fn end_the_running_build(&self) {
        let state = self.store.load("web").await.ok().flatten().expect("recorded").value;
        let Some(run) = state.executions.iter().find(|run| run.status == Status::Running(Stage::BUILD)) else { return };
        let build_id = run.build.as_ref().and_then(|build| build.build_id.clone()).expect("a started build");
        let event = Event::BuildFailed {
            execution_id: run.id.clone(),
            build_id,
            status: crate::pipeline::BuildFailure::Failed,
            phase: None,
            reason: "failed".into(),
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date");
        let input = Input { pipeline: "web", mode: Default::default(), event: &event, receipt: None, now };
        assert_eq!(handle(&self.store, &self.effects, input).await.expect("recorded"), Handled::Applied);
    }

    async fn nothing_recorded(&self) -> bool {
        self.store.load("web").await.ok().flatten().is_none() && self.effects.builds.started().is_empty()
    }
}

/// A JSON delivery by POST, as GitHub sends it.
fn delivery<'a>(event: &'a str, delivery_id: &'a str, signature: Option<&'a str>, body: &'a [u8]) -> Delivery<'a> {
    Delivery {
        method: "POST",
        content_type: Some("application/json"),
        event: Some(event),
        delivery_id: Some(delivery_id),
        hook_id: Some("12345678"),
        hook_target: Some("repository"),
        signature,
        body,
    }
}

fn push_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(PUSH).expect("fixture is JSON");
    edit(&mut value);
    serde_json::to_vec(&value).expect("serializes")
}

#[tokio::test]
async fn a_signed_push_to_a_watched_branch_records_an_execution_and_starts_its_build_on_the_commit() {
    let world = World::new().await;

    let reply = world.deliver("push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", PUSH).await;

    assert_eq!(reply.status, 202, "{}", reply.body);
    let execution_id = "web-72d3162e-cc78-11e3-81ab-4c9367dc0958";
    assert_eq!(reply.body["executions"], json!([{ "pipeline": "web", "execution_id": execution_id }]));
    let builds = world.effects.builds.started();
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0].project, "web-build");
    assert_eq!(builds[0].source_version, HEAD);
    assert_eq!(builds[0].environment.get("SLUICE_EXECUTION_ID").map(String::as_str), Some(execution_id));
    assert_eq!(builds[0].environment.get("APP_ENV").map(String::as_str), Some("production"));
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    let execution = state.execution(&ExecutionId(execution_id.into())).expect("recorded");
    assert_eq!(execution.status, Status::Running(Stage::BUILD));
    assert_eq!(execution.source.pusher, "octocat");
    assert_eq!(execution.source.delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(execution.source.message, "Document search\n\nAnd drop the old guide.");
    assert!(execution.source.compare_url.ends_with("compare/e0b4d5c6a7f8...9b2c5f0e3d1a"));
    assert!(
        execution
            .build
            .as_ref()
            .and_then(|b| b.build_id.as_deref())
            .is_some_and(|id| id.starts_with("arn:aws:codebuild:"))
    );
    let published: Vec<&str> = world.effects.publisher.published().iter().map(|e| e.detail_type()).collect();
    assert_eq!(published, ["Execution Started"]);
}

#[tokio::test]
async fn a_redelivery_answers_as_the_first_did_and_starts_nothing_new() {
    let world = World::new().await;
    let first = world.deliver("push", "d-1", PUSH).await;
    let again = world.deliver("push", "d-1", PUSH).await;
    assert_eq!(again, first);
    assert_eq!(world.effects.builds.started().len(), 1);
    assert_eq!(world.effects.publisher.published().len(), 1);
}

#[tokio::test]
async fn a_push_is_recorded_without_a_transaction_and_its_run_gets_its_own_item_when_it_moves_on() {
    let world = World::new().await;
    world.deliver("push", "d-1", &chained_push(1)).await;
    let transactions = world.store.transactions();

    // WHEN a second push arrives while the first run builds
    let reply = world.deliver("push", "d-2", &chained_push(2)).await;

    // THEN its receipt and the pipeline's item are written alone, each by itself: no transaction
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(world.store.transactions(), transactions);
    let id = ExecutionId("web-d-2".into());
    assert_eq!(world.store.run_item(&id), None);
    // and the run is found and listed all the same, from the pipeline's item
    let run = world.store.execution(&id).await.ok().flatten().expect("found");
    assert_eq!(run.status, Status::Waiting(Stage::BUILD));
    let listed: Vec<ExecutionId> =
        world.store.history("web", 10).await.expect("history").into_iter().map(|run| run.id).collect();
    assert_eq!(listed, [id.clone(), ExecutionId("web-d-1".into())]);

    // WHEN the first run's build ends and the second enters its build
    world.end_the_running_build().await;

    // THEN the second run has its own item
    assert_eq!(world.store.run_item(&id).map(|run| run.status), Some(Status::Running(Stage::BUILD)));
}

#[tokio::test]
async fn a_push_whose_receipt_an_interrupted_attempt_left_without_its_run_is_recorded_when_delivered_again() {
    let world = World::new().await;
    // GIVEN an attempt recorded the push's receipt, then ended before the pipeline's item was saved
    let receipt = Receipt {
        key: ReceiptKey::push(&payload_digest(PUSH), "web"),
        answer: json!({ "pipeline": "web", "execution_id": "web-d-1" }),
        recorded_at: Utc::now(),
    };
    world.store.record_receipt(&receipt).await.expect("recorded");

    // WHEN GitHub delivers it again
    let reply = world.deliver("push", "d-1", PUSH).await;

    // THEN it is recorded and its build starts
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(world.effects.builds.started().len(), 1);
    let run = world.store.execution(&ExecutionId("web-d-1".into())).await.ok().flatten().expect("recorded");
    assert_eq!(run.status, Status::Running(Stage::BUILD));
}

#[tokio::test]
async fn a_redelivery_of_a_push_whose_run_ended_and_left_the_pipelines_item_changes_nothing() {
    let world = World::new().await;
    let first = world.deliver("push", "d-1", PUSH).await;
    world.end_the_running_build().await;
    let id = ExecutionId("web-d-1".into());
    assert_eq!(world.store.run_item(&id).map(|run| run.status), Some(Status::Failed));
    // GIVEN the pipeline's item no longer remembers the run (nor the ref's pushes)
    world.store.meddle("web", |state| {
        state.executions.clear();
        state.refs.clear();
    });

    let again = world.deliver("push", "d-1", PUSH).await;

    assert_eq!(again, first);
    assert_eq!(world.effects.builds.started().len(), 1);
    assert_eq!(world.store.run_item(&id).map(|run| run.status), Some(Status::Failed));
}

#[tokio::test]
async fn a_delivery_without_or_with_a_wrong_signature_is_refused_and_records_nothing() {
    let world = World::new().await;
    let unsigned = delivery("push", "d-1", None, PUSH);
    assert_eq!(world.send(unsigned).await.status, 401);
    let forged = sign("guessed", PUSH);
    let wrong = Delivery { signature: Some(&forged), ..unsigned };
    let reply = world.send(wrong).await;
    assert_eq!(reply, Reply::new(401, "the signature does not match"));
    let tampered = push_with(|v| v["ref"] = json!("refs/heads/release/9"));
    let signature = sign(SECRET, PUSH);
    let swapped = Delivery { signature: Some(&signature), body: &tampered, ..unsigned };
    assert_eq!(world.send(swapped).await.status, 401, "a signature of another body does not do");
    assert!(world.nothing_recorded().await);
}

#[tokio::test]
async fn a_ping_is_answered_and_other_events_are_ignored() {
    let world = World::new().await;
    assert_eq!(world.deliver("ping", "d-1", PING).await, Reply::new(200, "pong"));
    let reply = world.deliver("pull_request", "d-2", b"{}").await;
    assert_eq!(reply, Reply::new(202, "pull_request events are ignored; sluice acts on push"));
    assert!(world.nothing_recorded().await);
}

#[tokio::test]
async fn missing_headers_get_a_400_that_names_them() {
    let world = World::new().await;
    let signature = sign(SECRET, PUSH);
    let no_event = Delivery { event: None, ..delivery("push", "d-1", Some(&signature), PUSH) };
    assert_eq!(world.send(no_event).await, Reply::new(400, "the X-GitHub-Event header is missing"));
    let no_id = Delivery { event: Some("push"), delivery_id: None, ..no_event };
    assert_eq!(world.send(no_id).await.status, 400);
    assert!(world.nothing_recorded().await);
}

#[tokio::test]
async fn a_malformed_payload_gets_a_400_naming_the_field() {
    let world = World::new().await;
    let reply = world.deliver("push", "d-1", b"{not json").await;
    assert_eq!(reply.status, 400);
    let missing = push_with(|v| {
        v["repository"].as_object_mut().map(|r| r.remove("full_name"));
    });
    let reply = world.deliver("push", "d-2", &missing).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["field"], "repository");
    assert_eq!(reply.body["message"], "invalid push payload at `repository`: missing field `full_name`");
    assert!(world.nothing_recorded().await);
}

#[tokio::test]
async fn an_oversized_payload_gets_a_413() {
    let world = World::new().await;
    let huge = vec![b' '; MAX_BODY + 1];
    assert_eq!(world.deliver("push", "d-1", &huge).await.status, 413);
}

#[tokio::test]
async fn pushes_that_start_nothing_say_why() {
    let world = World::new().await;
    let deleted = world.deliver("push", "d-1", DELETED).await;
    assert_eq!(deleted, Reply::new(202, "refs/tags/v1.4.0-rc1 was deleted; a deletion starts nothing"));

    let elsewhere = push_with(|v| v["repository"]["full_name"] = json!("acme/unknown"));
    assert_eq!(world.deliver("push", "d-2", &elsewhere).await, Reply::new(202, "no pipeline watches acme/unknown"));

    let feature = push_with(|v| v["ref"] = json!("refs/heads/feature/x"));
    let reply = world.deliver("push", "d-3", &feature).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body["skipped"][0]["reason"], "refs/heads/feature/x is not in its branch or tag filters");

    let docs_only = push_with(|v| {
        for commit in v["commits"].as_array_mut().into_iter().flatten() {
            commit["added"] = json!([]);
            commit["modified"] = json!(["docs/guide.md"]);
            commit["removed"] = json!([]);
        }
    });
    let reply = world.deliver("push", "d-4", &docs_only).await;
    assert_eq!(reply.body["skipped"][0]["reason"], "no changed file is in its path filters");
    assert_eq!(reply.body["message"], "no pipeline started");
    assert!(world.nothing_recorded().await);
}

#[tokio::test]
async fn a_tag_push_starts_pipelines_whose_tag_filter_accepts_it() {
    let world = World::new().await;
    let tag = push_with(|v| {
        v["ref"] = json!("refs/tags/v1.4.0");
        v["commits"] = json!([]);
    });
    let reply = world.deliver("push", "d-1", &tag).await;
    assert_eq!(reply.body["executions"][0]["pipeline"], "web", "{}", reply.body);
}

#[tokio::test]
async fn a_build_codebuild_refuses_fails_the_run_with_the_reason() {
    let world = World::new().await;
    world.effects.builds.answer(BuildAnswer::Refuse);

    let reply = world.deliver("push", "d-1", PUSH).await;

    assert_eq!(reply.status, 202, "the execution was recorded; its failure is in its state");
    let execution = world.store.execution(&ExecutionId("web-d-1".into())).await.ok().flatten().expect("recorded");
    assert_eq!(execution.status, Status::Failed);
    assert_eq!(
        execution.reason.as_deref(),
        Some("the build could not start: ResourceNotFoundException: project web-build does not exist")
    );
    let published: Vec<&str> = world.effects.publisher.published().iter().map(|e| e.detail_type()).collect();
    assert_eq!(published, ["Execution Started", "Execution Finished"]);
}

#[tokio::test]
async fn when_codebuild_cannot_be_reached_the_push_is_still_recorded_and_its_build_waits_in_the_outbox() {
    let world = World::new().await;
    world.effects.builds.answer(BuildAnswer::Unavailable);

    let reply = world.deliver("push", "d-1", PUSH).await;

    assert_eq!(reply.status, 202, "recorded: a 5xx would make GitHub show a failure that is not one");
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    assert_eq!(state.pending.len(), 1, "the build waits in the outbox");
    assert_eq!(state.pending[0].attempts, 1);
    assert!(state.pending[0].not_before.is_some(), "with a backoff");
    assert!(world.effects.builds.started().is_empty());

    // A redelivery answers as the first delivery did and starts nothing twice.
    world.effects.builds.answer(BuildAnswer::Start);
    let again = world.deliver("push", "d-1", PUSH).await;
    assert_eq!(again, reply);
}

#[tokio::test]
async fn a_force_push_starts_a_run_of_the_commit_it_leaves() {
    let world = World::new().await;
    let forced = push_with(|v| v["forced"] = json!(true));
    let reply = world.deliver("push", "d-forced", &forced).await;
    assert_eq!(reply.status, 202);
    assert_eq!(world.effects.builds.started()[0].source_version, HEAD);
}

#[tokio::test]
async fn a_new_branch_with_a_zero_before_is_filtered_by_its_name_and_its_commits() {
    let world = World::new().await;
    let new_branch = |name: &str, files: Value| {
        push_with(|v| {
            v["ref"] = json!(format!("refs/heads/{name}"));
            v["before"] = json!("0000000000000000000000000000000000000000");
            v["created"] = json!(true);
            v["compare"] = json!(format!("https://github.com/acme/web/compare/{name}"));
            if files.is_null() {
                v["commits"] = json!([]);
            } else {
                v["commits"][0]["added"] = json!([]);
                v["commits"][0]["modified"] = files.clone();
                v["commits"][1]["modified"] = json!([]);
                v["commits"][1]["removed"] = json!([]);
            }
        })
    };
    // A release branch whose new commits touch the source: built.
    let reply = world.deliver("push", "d-1", &new_branch("release/2.0", json!(["src/lib.rs"]))).await;
    assert_eq!(reply.body["executions"][0]["pipeline"], "web", "{}", reply.body);
    // A release branch created at an existing commit lists no commits: nothing to filter on, so it is built.
    let reply = world.deliver("push", "d-2", &new_branch("release/2.1", Value::Null)).await;
    assert_eq!(reply.body["executions"][0]["pipeline"], "web", "{}", reply.body);
    // A release branch whose commits touch only documentation: not built.
    let reply = world.deliver("push", "d-3", &new_branch("release/2.2", json!(["docs/notes.md"]))).await;
    assert_eq!(reply.body["skipped"][0]["reason"], "no changed file is in its path filters");
    // A feature branch: not in the branch filter, whatever it touches.
    let reply = world.deliver("push", "d-4", &new_branch("feature/x", json!(["src/lib.rs"]))).await;
    assert_eq!(reply.body["message"], "no pipeline started");
}

#[tokio::test]
async fn a_form_encoded_delivery_is_verified_over_its_raw_body_and_starts_the_same_run() {
    let world = World::new().await;
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(PUSH).expect("utf-8"))
        .finish();
    let signature = sign(SECRET, form.as_bytes());
    let form_delivery = Delivery {
        content_type: Some("application/x-www-form-urlencoded"),
        ..delivery("push", "d-form", Some(&signature), form.as_bytes())
    };

    let reply = world.send(form_delivery).await;

    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(world.effects.builds.started()[0].source_version, HEAD);
}

#[tokio::test]
async fn a_request_other_than_post_gets_405_with_allow_post_before_anything_else() {
    let world = World::new().await;
    for method in ["GET", "HEAD", "PUT", "DELETE"] {
        let reply = world.send(Delivery { method, ..delivery("push", "d-get", None, b"") }).await;
        assert_eq!((reply.status, reply.allow), (405, Some("POST")), "{method}: {}", reply.body);
    }
    assert!(world.nothing_recorded().await);
}

#[tokio::test]
async fn the_signature_is_checked_before_the_definitions_are_read() {
    // With no definitions published, a forged delivery still gets 401, not a 5xx that would tell it more.
    let world = World::with_definitions(None).await;
    let forged = sign("guessed", PUSH);
    let reply = world.send(delivery("push", "d-1", Some(&forged), PUSH)).await;
    assert_eq!(reply.status, 401);
    let reply = world.deliver("push", "d-2", PUSH).await;
    assert_eq!(reply.status, 503, "signed, but nothing to run it with: {}", reply.body);
}

#[tokio::test]
async fn a_replay_of_a_signed_push_under_a_new_delivery_id_starts_nothing() {
    let world = World::new().await;
    let first = world.deliver("push", "d-original", PUSH).await;
    // The same body and signature, sent again with a delivery id of the sender's choosing.
    let replayed = world.deliver("push", "d-replayed-by-someone", PUSH).await;

    assert_eq!(replayed, first, "answered as the first delivery was");
    assert_eq!(world.effects.builds.started().len(), 1);
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    assert_eq!(state.executions.len(), 1);
}

#[tokio::test]
async fn an_older_commit_pushed_after_a_newer_one_is_recorded_as_skipped_and_never_deploys() {
    let world = World::new().await;
    // GIVEN main went A -> B -> C, and GitHub delivers the push to C first
    let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
    let pushed = |before: &str, after: &str| {
        push_with(|v| {
            v["before"] = json!(before);
            v["after"] = json!(after);
            v["head_commit"]["id"] = json!(after);
        })
    };
    let newer = world.deliver("push", "d-newer", &pushed(&b, &c)).await;
    assert_eq!(newer.status, 202);
    // WHEN the push to B arrives late
    let older = world.deliver("push", "d-older", &pushed(&a, &b)).await;
    // THEN it starts nothing, and says why
    assert_eq!(older.status, 202, "{}", older.body);
    assert_eq!(older.body["executions"], json!([]));
    let reason = older.body["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("older than ccccccc") && reason.contains("never deploys backwards"), "{reason}");
    let builds: Vec<String> = world.effects.builds.started().into_iter().map(|b| b.source_version).collect();
    assert_eq!(builds, std::slice::from_ref(&c));
    let skipped = world.store.execution(&ExecutionId("web-d-older".into())).await.ok().flatten().expect("recorded");
    assert_eq!(skipped.status, Status::Skipped);
    // AND a push that follows C runs as usual
    let next = world.deliver("push", "d-next", &pushed(&c, &"d".repeat(40))).await;
    assert_eq!(next.body["executions"][0]["execution_id"], "web-d-next", "{}", next.body);
}

/// Definitions with `count` pipelines that all watch acme/web's main.
fn many_pipelines(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "[pipelines.p{i}]\n[pipelines.p{i}.source]\nrepository = \"acme/web\"\n[pipelines.p{i}.build]\n\
                 project = \"p{i}-build\"\n[pipelines.p{i}.deploy]\nstrategy = \"rolling\"\ncluster = \"prod\"\n\
                 service = \"p{i}\"\n"
            )
        })
        .collect()
}

#[tokio::test]
async fn a_push_for_twenty_pipelines_starts_all_of_them() {
    let world = World::with_definitions(Some(&many_pipelines(20))).await;
    let reply = world.deliver("push", "d-many", PUSH).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["executions"].as_array().map(Vec::len), Some(20));
    assert_eq!(world.effects.builds.started().len(), 20);
}

#[tokio::test]
async fn when_one_pipeline_cannot_record_the_push_the_answer_is_503_and_the_others_still_run() {
    let world = World::with_definitions(Some(&many_pipelines(3))).await;
    world.store.unreachable_for("p1");
    let reply = world.deliver("push", "d-partial", PUSH).await;
    assert_eq!(reply.status, 503, "GitHub shows a failed delivery, to be redelivered: {}", reply.body);
    assert_eq!(reply.body["executions"].as_array().map(Vec::len), Some(2));
    assert_eq!(world.effects.builds.started().len(), 2);
}

#[tokio::test]
async fn a_replayed_branch_creation_push_starts_nothing_even_once_its_receipt_has_expired() {
    let world = World::new().await;
    // GIVEN a push that created release/3.0 ran
    let created = push_with(|v| {
        v["ref"] = json!("refs/heads/release/3.0");
        v["before"] = json!("0000000000000000000000000000000000000000");
        v["created"] = json!(true);
    });
    let first = world.deliver("push", "d-created", &created).await;
    assert_eq!(first.body["executions"][0]["execution_id"], "web-d-created", "{}", first.body);
    // WHEN the same signed body is replayed under a new delivery id after the table's TTL removed its receipt
    world.store.forget_receipts();
    let replayed = world.deliver("push", "d-replayed", &created).await;
    // THEN it starts nothing, and says why
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    assert_eq!(replayed.body["executions"], json!([]));
    let reason = replayed.body["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("already ran 9b2c5f0"), "{reason}");
    assert_eq!(world.effects.builds.started().len(), 1);
}

#[tokio::test]
async fn a_push_whose_head_commit_is_not_the_pushed_commit_gets_a_400_and_records_nothing() {
    let world = World::new().await;
    for head in [json!("pr/42"), json!("1d3f1f0c6a7b4e2a9c8d7e6f5a4b3c2d1e0f9a8b")] {
        let forged = push_with(|v| v["head_commit"]["id"] = head.clone());
        let reply = world.deliver("push", "d-forged", &forged).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.body["field"], "head_commit.id");
    }
    assert!(world.nothing_recorded().await);
}

#[tokio::test]
async fn a_push_made_before_the_receipt_window_gets_a_422_saying_why_and_records_nothing() {
    let world = World::new().await;
    // World::send delivers at 2026-11-23 09:00; 31 days before is outside the 30 days receipts are kept.
    let old = push_with(|v| v["repository"]["pushed_at"] = json!(1_795_438_800 - 35 * 86_400));
    let reply = world.deliver("push", "d-old", &old).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["field"], "repository.pushed_at");
    assert!(reply.body["message"].as_str().unwrap_or_default().contains("more than 30 days ago"), "{}", reply.body);
    assert!(world.nothing_recorded().await);
    // AND one pushed 29 days before runs
    let recent = push_with(|v| v["repository"]["pushed_at"] = json!("2026-10-25T09:00:00Z"));
    assert_eq!(world.deliver("push", "d-recent", &recent).await.status, 202);
}

#[tokio::test]
async fn sixty_pushes_of_a_branch_delivered_shuffled_run_forwards_only_and_never_supersede_the_newest_commit() {
    let mut builds = Vec::new();
    for seed in 1..=6 {
        builds.push(deliver_shuffled(seed).await);
    }
    // Some orders had several builds start one after the other (the newest pushed first starts just one).
    assert!(builds.iter().any(|&count| count >= 3), "{builds:?}");
}

/// Delivers 60 chained pushes of main to a new world in an order `seed` shuffles, ending the running build after
/// every tenth; checks what must hold whatever the order, and returns how many builds started.
async fn deliver_shuffled(seed: u64) -> usize {
    let world = World::new().await;
    // GIVEN 60 pushes of main, each `before` the previous `after`, each pushed a second after the one before
    let commit = |n: usize| format!("{n:040x}");
    let pushes: Vec<(usize, Vec<u8>)> = (1..=60)
        .map(|n| {
            (
                n,
                push_with(|v| {
                    v["before"] = json!(commit(n - 1));
                    v["after"] = json!(commit(n));
                    v["head_commit"]["id"] = json!(commit(n));
                    v["repository"]["pushed_at"] = json!(1_795_438_800 + n);
                }),
            )
        })
        .collect();
    // WHEN GitHub delivers them in any order
    let mut order: Vec<usize> = (0..pushes.len()).collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut order);
    for (delivered, &i) in order.iter().enumerate() {
        let (n, body) = &pushes[i];
        let reply = world.deliver("push", &format!("d-{n:02}"), body).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        if delivered % 10 == 9 {
            world.end_the_running_build().await;
        }
    }
    // THEN the builds started went forwards only
    let built: Vec<String> = world.effects.builds.started().into_iter().map(|b| b.source_version).collect();
    assert!(built.windows(2).all(|pair| pair[0] < pair[1]), "seed {seed}: {built:?}");
    // AND the newest commit was never skipped or superseded by an older one, and no other commit is left waiting
    let items = world.store.history("web", 100).await.expect("history");
    assert_eq!(items.len(), 60);
    let newest = items.iter().find(|run| run.source.commit == commit(60)).expect("the newest commit's run");
    assert!(!matches!(newest.status, Status::Skipped | Status::Superseded), "{}", newest.status);
    let waiting: Vec<&str> = items
        .iter()
        .filter(|run| matches!(run.status, Status::Waiting(_)) && run.source.commit != commit(60))
        .map(|run| run.id.0.as_str())
        .collect();
    assert_eq!(waiting, Vec::<&str>::new());
    // AND every run's own item says what the state says, or how it ended once the state let it go
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    for item in &items {
        match state.execution(&item.id) {
            Some(run) => assert_eq!(item.status, run.status, "{}", item.id),
            None => assert!(item.status.is_finished(), "{} is {} in its item", item.id, item.status),
        }
    }
    built.len()
}

/// The push of `n`: main moving from commit `n - 1` to commit `n`, pushed `n` seconds after the fixture's push.
fn chained_push(n: usize) -> Vec<u8> {
    let commit = |n: usize| format!("{n:040x}");
    push_with(|v| {
        v["before"] = json!(commit(n - 1));
        v["after"] = json!(commit(n));
        v["head_commit"]["id"] = json!(commit(n));
        v["repository"]["pushed_at"] = json!(1_795_438_800 + n);
    })
}

/// The push of main from `before` to `after`, both commits named by a letter, pushed at the fixture's second.
fn same_second_push(before: char, after: char) -> Vec<u8> {
    push_with(|v| {
        v["before"] = json!(before.to_string().repeat(40));
        v["after"] = json!(after.to_string().repeat(40));
        v["head_commit"]["id"] = json!(after.to_string().repeat(40));
        v["repository"]["pushed_at"] = json!(1_795_438_800);
    })
}

#[tokio::test]
async fn pushes_made_in_the_same_second_that_the_chain_cannot_order_are_ordered_by_githubs_compare() {
    let world = World::with_github().await;
    // GIVEN main went a -> b -> c -> d within one second, and the push to d arrived first and runs
    let d = "d".repeat(40);
    assert_eq!(
        world.deliver("push", "d-d", &same_second_push('c', 'd')).await.body["executions"][0]["pipeline"],
        "web"
    );
    // AND GitHub's compare says b and c are behind d, and e (pushed after a force-push) ahead of it
    world.comparisons().answer(&d, &"b".repeat(40), CommitOrder::Behind);
    world.comparisons().answer(&d, &"c".repeat(40), CommitOrder::Behind);
    world.comparisons().answer(&d, &"e".repeat(40), CommitOrder::Ahead);
    // WHEN the push to b arrives (its `before` a, which no push sluice saw leads to d)
    let late = world.deliver("push", "d-b", &same_second_push('a', 'b')).await;
    // THEN it starts nothing, and says that GitHub ordered it
    assert_eq!(late.status, 202, "{}", late.body);
    assert_eq!(late.body["executions"], json!([]));
    let reason = late.body["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("GitHub's compare shows commit bbbbbbb is behind ddddddd"), "{reason}");
    let run = world.store.execution(&ExecutionId("web-d-b".into())).await.ok().flatten().expect("recorded");
    assert_eq!(run.status, Status::Skipped);
    assert_eq!(run.source.compared, Some(Compared { head: d.clone(), order: CommitOrder::Behind }));
    // AND the push to c neither (the chain links it to d now: GitHub is not asked again)
    let chained = world.deliver("push", "d-c", &same_second_push('b', 'c')).await;
    assert_eq!(chained.body["executions"], json!([]), "{}", chained.body);
    // AND a push GitHub finds ahead of d runs
    let ahead = world.deliver("push", "d-e", &same_second_push('x', 'e')).await;
    assert_eq!(ahead.body["executions"][0]["execution_id"], "web-d-e", "{}", ahead.body);
    assert_eq!(world.comparisons().asked(), [(d.clone(), "b".repeat(40)), (d.clone(), "e".repeat(40))]);
    // AND only d built so far; e waits for the build stage
    let builds: Vec<String> = world.effects.builds.started().into_iter().map(|b| b.source_version).collect();
    assert_eq!(builds, [d]);
    let run = world.store.execution(&ExecutionId("web-d-e".into())).await.ok().flatten().expect("recorded");
    assert_eq!(run.status, Status::Waiting(Stage::BUILD));
}

#[tokio::test]
async fn without_an_answer_from_github_a_push_made_in_the_same_second_runs_as_the_newest_and_says_so() {
    for world in [World::new().await, World::with_github().await] {
        // GIVEN d ran; GitHub cannot be asked (no credentials), or does not answer
        world.deliver("push", "d-d", &same_second_push('c', 'd')).await;
        // WHEN the push to b arrives in the same second, unordered by the chain
        let reply = world.deliver("push", "d-b", &same_second_push('a', 'b')).await;
        // THEN it is recorded as the newest, as it arrived last, and the run says GitHub did not order it
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.body["executions"][0]["execution_id"], "web-d-b", "{}", reply.body);
        let run = world.store.execution(&ExecutionId("web-d-b".into())).await.ok().flatten().expect("recorded");
        let compared = run.source.compared.expect("the comparison recorded");
        assert_eq!((compared.head.as_str(), compared.order), ("d".repeat(40).as_str(), CommitOrder::Unknown));
    }
}

#[tokio::test]
async fn announcements_the_bus_throttles_are_sent_again_later_and_only_they() {
    let world = World::new().await;
    // GIVEN a run building and one waiting
    for n in 1..=2 {
        assert_eq!(world.deliver("push", &format!("d-{n}"), &chained_push(n)).await.status, 202);
    }
    let before = world.effects.publisher.published().len();
    // WHEN a third push supersedes the waiting run, and the bus throttles the first of the two announcements
    world.effects.publisher.refuse_entries(&[(0, "ThrottlingException")]);
    assert_eq!(world.deliver("push", "d-3", &chained_push(3)).await.status, 202);
    // THEN the other announcement went out, the throttled one waits in the outbox, not parked
    let published = world.effects.publisher.published();
    assert_eq!(published.len(), before + 1, "{:?}", published.iter().map(|e| e.detail_type()).collect::<Vec<_>>());
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    assert!(state.parked.is_empty(), "{:?}", state.parked);
    let waiting: Vec<_> = state.pending.iter().filter(|p| matches!(p.effect, Effect::Publish(_))).collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].attempts, 1);
    // AND once its backoff has passed, it alone is sent again
    let later = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).single().expect("valid date");
    crate::usecases::flush(&world.store, &world.effects, "web", later).await.expect("flushed");
    let published = world.effects.publisher.published();
    assert_eq!(published.len(), before + 2);
    let kinds: Vec<String> =
        published[before..].iter().map(|e| format!("{} {}", e.detail_type(), e.execution_id())).collect();
    assert_eq!(kinds.iter().collect::<std::collections::BTreeSet<_>>().len(), 2, "each sent once: {kinds:?}");
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    assert!(!state.pending.iter().any(|p| matches!(p.effect, Effect::Publish(_))));
}

#[tokio::test]
async fn an_announcement_the_bus_refuses_for_good_is_parked_for_an_operator() {
    let world = World::new().await;
    world.effects.publisher.refuse_entries(&[(0, "MalformedDetail")]);
    assert_eq!(world.deliver("push", "d-1", &chained_push(1)).await.status, 202);
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    assert_eq!(state.parked.len(), 1, "{:?}", state.pending);
    assert!(state.parked[0].error.contains("MalformedDetail"), "{}", state.parked[0].error);
}

#[tokio::test]
async fn a_push_whose_save_is_throttled_for_a_while_is_still_recorded_before_the_answer() {
    let world = World::new().await;
    // GIVEN DynamoDB throttles the next eight saves (more than one attempt of the shared engine tries)
    world.store.busy_for(8);
    // WHEN GitHub delivers a push
    let reply = world.deliver("push", "d-throttled", PUSH).await;
    // THEN it is recorded within the function's time, and its build starts: no 5xx, nothing lost
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["executions"][0]["execution_id"], "web-d-throttled");
    assert_eq!(world.effects.builds.started().len(), 1);
}

#[tokio::test]
async fn a_push_that_cannot_be_recorded_in_time_gets_a_503_that_says_to_redeliver_it() {
    let world = World::new().await;
    world.store.unreachable_for("web");
    let started = std::time::Instant::now();
    let reply = world.deliver("push", "d-lost", PUSH).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.body["message"].as_str().unwrap_or_default().contains("redeliver"), "{}", reply.body);
    // Tried again only while the function has time (its timeout is 10 s)
    assert!(started.elapsed() < std::time::Duration::from_secs(9), "{:?}", started.elapsed());
}

#[tokio::test]
async fn pushes_that_never_reached_sluice_are_redelivered_through_the_webhook_that_delivered_the_pipelines_pushes() {
    use crate::contract::ports::HookDelivery;
    use crate::contract::testing::RecordingDeliveries;
    use crate::definitions::Definitions;
    use crate::usecases::redeliver_failed_pushes;
    let world = World::new().await;
    // GIVEN a push delivered by webhook 12345678 of acme/web ran: the run recorded the webhook
    assert_eq!(world.deliver("push", "d-ok", &chained_push(1)).await.status, 202);
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    assert_eq!(state.executions[0].source.hook_id, Some(12_345_678));
    // AND GitHub lists a later push that got a 503, one that never reached sluice, and one sluice refused (401)
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid date");
    let attempt = |id: u64, guid: &str, status_code: u16| HookDelivery {
        id,
        guid: guid.into(),
        event: "push".into(),
        status_code,
        delivered_at: now - TimeDelta::minutes(30),
        redelivery: false,
    };
    let github = RecordingDeliveries::new();
    github.list(
        "acme/web",
        12_345_678,
        vec![attempt(1, "d-ok", 202), attempt(2, "d-503", 503), attempt(3, "d-down", 0), attempt(4, "d-forged", 401)],
    );
    let intake = GitHubAccess { github, credentials: KeptSecret::new(FixedSecret("github_pat_test".into())) };
    let definitions = Definitions::parse("pipelines.toml", EXAMPLE).expect("the example loads");
    // WHEN the reconciler looks
    let done = redeliver_failed_pushes(&world.store, &intake, &definitions, now).await;
    // THEN GitHub is asked to send the two failed pushes again, and nothing else
    assert_eq!((done.hooks_checked, done.redelivered, done.errors), (1, 2, 0));
    let mut asked: Vec<u64> = intake.github.redelivered().into_iter().map(|(_, _, id)| id).collect();
    asked.sort_unstable();
    assert_eq!(asked, [2, 3]);
}

#[tokio::test]
async fn an_annotated_tag_builds_the_commit_it_tags_not_the_tag_object() {
    let world = World::new().await;
    // An annotated tag's `after` is the tag object; its `head_commit` the commit tagged
    let tagged = push_with(|v| {
        v["ref"] = json!("refs/tags/v2.0");
        v["before"] = json!("0000000000000000000000000000000000000000");
        v["after"] = json!("a".repeat(40));
        v["created"] = json!(true);
    });
    let reply = world.deliver("push", "d-tag", &tagged).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(world.effects.builds.started()[0].source_version, HEAD);
}

#[tokio::test]
async fn the_webhook_is_recorded_for_redelivery_only_when_it_is_the_repositorys_own() {
    let world = World::new().await;
    let signature = sign(SECRET, &chained_push(1));
    let body = chained_push(1);
    let org = Delivery { hook_target: Some("organization"), ..delivery("push", "d-org", Some(&signature), &body) };
    assert_eq!(world.send(org).await.status, 202);
    let state = world.store.load("web").await.ok().flatten().expect("recorded").value;
    assert_eq!(state.executions[0].source.hook_id, None, "an organisation's webhook lists its deliveries elsewhere");
}
