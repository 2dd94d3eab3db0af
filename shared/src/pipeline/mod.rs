//! Domain, pure: the pipeline state machine, pure data and one function, `transition(state, event, now) -> decision`.
//!
//! Nothing in here does I/O, reads a clock or the environment: callers pass `now` and every id in.

mod event;
mod machine;
pub mod outbox;
mod report;
mod state;
mod tested;

pub use event::{
    ApprovalNotice, BuildFailure, BuildOutputs, Effect, EffectKind, EntryGate, Event, HookStatus, PauseNotice,
    ReleaseLookup, StageNotice,
};
pub use machine::{
    Decision, IgnoreReason, MAX_APPROVER, MAX_ARN, MAX_COMMENT, MAX_HOOK_RESULTS, MAX_OVERRIDE, MAX_PAUSES, MAX_REASON,
    MAX_RUN_PAUSES, MAX_SOURCE_IP, MAX_USER_AGENT, MAX_WAITING, REMEMBERED_PUSHES, REMEMBERED_REFS, RETAINED_FINISHED,
    TransitionError, transition,
};
pub use outbox::Retry;
pub use report::{OutcomeReport, StageTest, StageTime};
pub use state::{
    ApprovalDecision, ApprovalFacts, ApprovalStanding, ApproverRefused, BuildFacts, CommitOrder, Compared, DeployFacts,
    Execution, ExecutionId, Freeze, Gate, GitHubDeployment, HookResult, KEPT_PAUSES, Lease, MAX_COMPARED_CHANGES,
    MAX_COMPARED_TEXT, OrderedRollback, Override, ParkedEffect, PauseFacts, PausesApart, PendingEffect, PipelineState,
    Plan, PushLink, RaisedAlarm, RefHistory, ReleaseComparison, Signoff, SourceFacts, Stage, StageRecord, Status,
    bounded, short_commit,
};
pub use tested::{FailedTest, MAX_FAILED_TESTS, TestFacts, TestResults};
