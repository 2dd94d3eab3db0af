//! The build-events function's handler, as a library so that the local sandbox and the tests can invoke it
//! in-process with the event EventBridge delivers.

pub mod handler;
