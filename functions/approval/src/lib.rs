//! The approval function's handler, as a library so that the local sandbox, the tests and the demo invoke it
//! in-process, wired as on AWS.

pub mod handler;
