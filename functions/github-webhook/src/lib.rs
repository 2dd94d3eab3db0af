//! The GitHub webhook function's handler, as a library so that the local sandbox can host it in-process behind the
//! same invocation path Lambda uses.

pub mod handler;
