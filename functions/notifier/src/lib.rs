//! The notifier's handler, as a library so that the tests and the demo invoke it in-process, wired as on AWS.

pub mod handler;
