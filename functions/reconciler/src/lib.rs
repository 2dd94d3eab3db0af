//! The reconciler's handler, as a library so that the tests can invoke it in-process.

pub mod handler;
