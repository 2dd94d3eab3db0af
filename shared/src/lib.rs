//! sluice's pipeline crate: definitions, the pure state machine, the events it publishes, its ports and the AWS
//! adapters behind them. Every Lambda function of sluice is a thin wrapper around a use case of this crate.

pub mod adapters;
pub mod contract;
pub mod definitions;
pub mod deploy;
pub mod github;
pub mod pipeline;
pub mod present;
pub mod runtime;
pub mod usecases;
