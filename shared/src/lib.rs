//! sluice's pipeline crate. Every Lambda function of sluice is a thin wrapper around a use case of this crate. Its
//! modules, by kind:
//!
//! - domain, pure: [`pipeline`] (the state machine), [`definitions`] (`pipelines.toml`), [`deploy`] (task
//!   definitions, AppSpecs, strategies), [`github`] (webhook signature and payload, sign-in);
//! - presentation, pure: [`present`] (what a person sees of a run: timeline, notification, pages, email, GitHub);
//! - contracts: [`contract`] (ports, the events on the bus, the ports' in-memory twins);
//! - orchestration: [`usecases`] (the engine and one file per verb), [`adapters`] (AWS and GitHub behind the ports),
//!   [`runtime`] (configuration and telemetry).

pub mod adapters;
pub mod contract;
pub mod definitions;
pub mod deploy;
pub mod github;
pub mod pipeline;
pub mod present;
pub mod runtime;
pub mod usecases;
