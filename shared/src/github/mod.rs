//! Domain, pure: GitHub's side, the webhook's signature and push payload ([`webhook`]), and how sluice signs in to
//! GitHub's REST API ([`sign_in`]). What sluice shows on GitHub is presentation (`present::github_report`); the REST
//! calls are an adapter (`adapters::github`).

pub mod sign_in;
pub mod webhook;
