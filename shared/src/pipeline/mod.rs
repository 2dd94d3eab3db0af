//! The pipeline state machine: pure data and one function, `transition(state, event, now) -> decision`.
//!
//! Nothing in here does I/O, reads a clock or the environment: callers pass `now` and every id in.

mod event;
mod machine;
mod state;

pub use event::{BuildFailure, BuildOutputs, Effect, Event, HookStatus};
pub use machine::{Decision, IgnoreReason, MAX_WAITING, RETAINED_FINISHED, TransitionError, transition};
pub use state::{
    ApprovalDecision, ApprovalFacts, BuildFacts, DeployFacts, Execution, ExecutionId, HookResult, PendingEffect,
    PipelineState, Plan, SourceFacts, Stage, Status,
};
