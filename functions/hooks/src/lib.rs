//! The hooks function's handler, as a library so that the tests, the sandbox and the demo invoke it in-process,
//! wired as on AWS.

pub mod handler;
