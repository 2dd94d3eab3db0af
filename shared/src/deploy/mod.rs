//! Domain, pure: the deploy stage's part, a build's task definition and AppSpec rendered for the deployment, and the
//! requests that start it. The deployer function carries them out.

pub mod calendar;
pub mod checks;
pub mod compare;
pub mod deadline;
pub mod digests;
pub mod image;
pub mod render;
pub mod taskdef;

pub use checks::{CheckRun, StageProgress, StageVerdict, for_release, judge, stage_verdict, summary};
pub use digests::{DigestCheck, RunningContainer, RunningTask};
pub use render::{
    APPSPEC_FILE, BlueGreenRequest, EFFECT_TAG, IMAGE_PLACEHOLDER, NativeHook, NativePause, NativeRequest, RenderError,
    RollingRequest, TASK_DEFINITION_FILE, TASK_DEFINITION_PLACEHOLDER, appspec, blue_green, description, effect_marker,
    execution_of, hook_events, mark, native, native_failure, rolling, task_definition,
};
pub use taskdef::TaskDefinition;

#[cfg(test)]
mod tests;
