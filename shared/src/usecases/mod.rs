//! Orchestration: the engine every function shares (`engine.rs`: load the pipeline, let the machine decide, save the
//! decision together with its effects, the pipeline's outbox, then carry the effects out and save what came of them),
//! and one file per verb (receive a webhook, record a build event, decide an approval, answer a hook, ...).
//!
//! State changes exactly once per input (the receipt and the version guard it). Effects are carried out at least
//! once, by the function that owns their kind ([`EffectRunner::kinds`]): the save that records them also leases
//! them to this invocation, so no other runs them meanwhile; they run together; one more save removes those done,
//! applies what followed from them and reschedules (or parks) those that failed. A push that starts a build thus
//! costs four round trips: read, write, StartBuild alongside PutEvents, write — however many runs the pipeline
//! holds. An effect that fails stays in the outbox, with a backoff, for the next invocation that touches the
//! pipeline (or the reconciler); the input that caused it was recorded all the same and is not failed for it.

mod engine;

pub use engine::{
    DoorbellError, EffectError, EffectRunner, HandleError, Handled, Input, answer_doorbell, flush, handle, handle_push,
    retry_parked,
};

mod approval;
mod build_events;
mod decide_as;
mod definitions;
mod deploy;
mod deploy_events;
mod effects;
mod freeze;
mod github_access;
mod hooks;
mod notify;
mod order_run;
mod recent;
mod reconcile;
mod redeliver;
mod rollback;
mod secrets;
mod show_on_github;
mod soak;
mod status;
mod webhook;

pub use approval::personal::{filter_policy, unfit_subscriptions, unreached};
pub use approval::{ApprovalEffects, COMPARISON_BUDGET, MAX_FORM, Requester, decide, review_page};
pub use build_events::{BuildEventError, BuildEventOutcome, BuildStateChange, artifact_location, record_build_event};
pub use decide_as::{DecideError, Decided, decide_as};
pub use definitions::{CachedDefinitions, DefinitionsError};
pub use deploy::{DeployEffects, DeploymentStops};
pub use deploy_events::{
    AWAITING_ACTION, DeploymentChange, DeploymentEventError, DeploymentEventOutcome, DeploymentStateChange,
    record_deployment_event, record_paused_deployments,
};
pub use effects::{Announcer, StageEffects};
pub use freeze::{FreezeDone, FreezeError, FreezeOrder, OverrideDone, order_override, set_freeze};
pub use github_access::{GitHubAccess, SignInError};
pub use hooks::{HookCall, HookEffects, HookError, HookOutcome, StageAnswer, StageCall, answer_hook, answer_stage};
pub use notify::{NotifierEffects, NotifyEffects};
pub use order_run::{LOOK_BACK, Order, OrderError, Ordered, order_run};
pub use recent::{FRESH_FOR, REMEMBERED, RecentStates};
pub use reconcile::{Lookups, QUIET_FOR, Reconciled, reconcile};
pub use redeliver::{Redelivered, redeliver_failed_pushes};
pub use rollback::{RollbackError, RollbackOrdered, Stop, order_rollback};
pub use secrets::{KeptSecret, REREAD_AFTER, WebhookKeys};
pub use show_on_github::{GitHubEffects, RunPages};
pub use soak::{AlarmChange, SoakError, alarm_time, end_soak, record_alarm};
pub use status::status_page;
pub use webhook::{
    COMPARE_BUDGET, Delivery, MAX_BODY, MAX_MESSAGE, NOT_RECORDED, RECORD_BUDGET, Reply, Webhook, receive_webhook,
};

#[cfg(test)]
mod tests;
