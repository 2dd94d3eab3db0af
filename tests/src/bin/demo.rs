//! `make demo`: a push to deployment, locally, through sluice's real functions (see `sluice_integration::demo`).
//! `SCENARIO=success|rollback|rolling|circuit-breaker|canary|canary-reject|promote|promote-fail|verify|verify-fail`;
//! `APPROVE=manual` waits for you to decide in a browser.

#![recursion_limit = "256"]

use anyhow::Result;
use sluice_integration::demo::{DemoScenario, run};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let scenario = DemoScenario::from_env()?;
    let manual = std::env::var("APPROVE").is_ok_and(|how| how == "manual");
    let outcome = run(scenario, manual).await?;
    let expected = scenario.expected();
    if outcome.run.status != expected {
        anyhow::bail!(
            "the {} scenario should end {expected}, but the run ended {}",
            scenario.name(),
            outcome.run.status
        );
    }
    Ok(())
}
