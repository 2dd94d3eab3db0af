//! The real adapters against moto_server over HTTP. One moto per test binary; one stack per test.

mod approval;
mod approvers;
mod build_events;
mod builds;
mod cancellations;
mod chain;
mod codedeploy_sandbox;
mod cost;
mod deploy_stage;
mod deployer;
mod ecs_sandbox;
mod events;
mod github;
mod status_page;
mod store;
mod stored;
mod template;
mod through_the_sandbox;
mod webhook;
mod whole_pipeline;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sluice::definitions::{Definitions, ExecutionMode};
use sluice::pipeline::{Decision, Effect, Event, ExecutionId, PipelineState, Plan, SourceFacts, transition};

/// A point in time, `minute` minutes after a fixed start.
pub fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("valid date") + TimeDelta::minutes(minute)
}

/// The plan of the example definitions' `web` pipeline (blue/green, with approval).
pub fn web_plan() -> Plan {
    let text = std::fs::read_to_string(sluice_integration::workspace_root().join("infra/pipelines.example.toml"))
        .expect("the example definitions exist");
    let definitions = Definitions::parse("pipelines.example.toml", &text).expect("the example is valid");
    Plan::from(definitions.get("web").expect("the example has a web pipeline"))
}

pub fn push(execution: &str) -> Event {
    Event::Triggered {
        execution_id: ExecutionId::from(execution),
        source: SourceFacts {
            repository: "acme/web".into(),
            commit: format!("{execution}0000000000000000000000000000000000"),
            git_ref: "refs/heads/main".into(),
            pusher: "octocat".into(),
            pusher_email: None,
            before: String::new(),
            delivery_id: format!("delivery-{execution}"),
            message: format!("commit {execution}"),
            compare_url: "https://github.com/acme/web/compare/a...b".into(),
            pushed_at: None,
            hook_id: None,
            compared: None,
        },
        plan: Box::new(web_plan()),
        mode: ExecutionMode::Superseded,
        ordered: None,
    }
}

/// Applies `event`, which must apply.
pub fn apply(state: &PipelineState, event: &Event, now: DateTime<Utc>) -> (PipelineState, Vec<Effect>) {
    match transition(state, event, now) {
        Ok(Decision::Apply { state, effects }) => (state, effects),
        other => panic!("{} did not apply: {other:?}", event.name()),
    }
}
