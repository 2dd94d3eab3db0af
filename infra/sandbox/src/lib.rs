//! sluice's local sandbox: a stand-in, on one machine, for the parts of AWS that moto does not play.
//!
//! So far it hosts function URLs: a Lambda function's HTTP handler served on a loopback port, each request turned
//! into the event a Lambda function URL delivers (payload format 2.0) and read by `lambda_http` exactly as the
//! Lambda runtime reads it. It is not AWS; it follows AWS's documented contracts so that the real handlers run
//! unchanged against it.

pub mod function_url;
