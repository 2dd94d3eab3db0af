//! sluice's local sandbox: a stand-in, on one machine, for the parts of AWS that moto does not play. It is not AWS;
//! it follows AWS's documented contracts so that the real handlers and SDK adapters run unchanged against it.
//!
//! - [`function_url`]: a Lambda function's HTTP handler served on a loopback port, each request turned into the
//!   event a function URL delivers (payload format 2.0) and read by `lambda_http` as the Lambda runtime reads it.
//! - [`pump`]: what an EventBridge rule's SQS target (in moto) receives, delivered to a function's handler.
//! - [`codebuild`]: CodeBuild's StartBuild and BatchGetBuilds, and builds that finish: artifacts to S3, state
//!   changes to EventBridge, as scripted per project.
//! - [`codedeploy`]: CodeDeploy ECS blue/green deployments that move through their lifecycle, invoke the AppSpec's
//!   hooks and wait for their status, shift traffic per configuration, and fail and roll back.
//! - [`sample_app`]: the sample app's blue and green task sets and the production and test listeners, on loopback,
//!   so that smoke checks hit a real socket; the CodeDeploy sandbox reroutes the listeners as it deploys.
//! - [`github`]: GitHub's REST API for commit statuses and Deployments, recording what it was sent.
//! - [`cloudwatch`]: the "CloudWatch Alarm State Change" events moto does not send, for alarms moto holds.
//! - [`ecs`]: ECS rolling updates that finish, or fail and roll back under the deployment circuit breaker, with
//!   ECS's deployment state-change events.

mod aws_json;
pub mod cloudwatch;
pub mod codebuild;
pub mod codedeploy;
pub mod ecs;
pub mod function_url;
pub mod github;
pub mod pump;
pub mod sample_app;
