//! Contracts: between the pipeline and the world: the ports, traits in the pipeline's words that the adapters implement
//! on AWS ([`ports`]); the events sluice puts on its bus ([`events`]); and, behind the `testing` feature, in-memory
//! twins of the ports that keep the adapters' promises (`testing`).

pub mod events;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
