//! Orchestration, runtime: what every function needs at start-up and at its edge: its typed configuration, read once
//! from the environment ([`config`]), and tracing with the cause chain of an error, logged once ([`telemetry`]).

pub mod config;
pub mod telemetry;
