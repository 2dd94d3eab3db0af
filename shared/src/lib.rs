//! sluice's pipeline crate: definitions, the pure state machine, the events it publishes, its ports and the AWS
//! adapters behind them. Every Lambda function of sluice is a thin wrapper around a use case of this crate.

pub mod adapters;
pub mod approval;
pub mod definitions;
pub mod deploy;
pub mod events;
pub mod github;
pub mod pipeline;
pub mod ports;
pub mod present;
pub mod runtime;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod usecases;
