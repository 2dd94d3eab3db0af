//! `make bench`: what a signed push costs the github-webhook function, against moto_server over HTTP on loopback,
//! with 0 and with 20 executions held by the pipeline: latency (median, p99) and AWS calls per push, counted on the
//! wire. Pushes of the two cases alternate, so that whatever slows the machine slows both alike.
//!
//! `cargo run --release -p sluice-integration --bin bench -- [pushes per case]` (100 unless given).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use sluice_integration::bench::{Bench, Case, HELD, Sample, percentile};

/// The most the medians of the two cases may differ by: the cost of a push does not grow with what the pipeline
/// holds.
const TOLERANCE: f64 = 0.15;
/// What one push that starts a build may cost at most, in sequential round trips to AWS.
const MAX_ROUND_TRIPS: usize = 5;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool> {
    let pushes = match std::env::args().nth(1) {
        Some(text) => text.parse().with_context(|| format!("pushes per case must be a number, not {text:?}"))?,
        None => 100,
    };
    eprintln!(
        "setting up: moto_server, the stack, {pushes} pipelines per case ({HELD} executions in each held one)..."
    );
    let bench = Bench::set_up(pushes).await?;
    let mut empty = Vec::with_capacity(pushes);
    let mut held = Vec::with_capacity(pushes);
    for index in 0..bench.pushes() {
        empty.push(bench.push(Case::Empty, index).await?);
        held.push(bench.push(Case::Held, index).await?);
    }
    println!(
        "github-webhook, {} build, moto_server on loopback, {pushes} signed pushes per case, each starting a build\n",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!("{:<22} {:>9} {:>9} {:>11} {:>12}  calls", "pipeline holds", "median", "p99", "AWS calls", "round trips");
    let medians = [report(Case::Empty, &empty), report(Case::Held, &held)];
    let spread = (medians[1].as_secs_f64() - medians[0].as_secs_f64()).abs() / medians[0].as_secs_f64();
    let round_trips = empty.iter().chain(&held).map(|sample| sample.reading.round_trips).max().unwrap_or(0);
    // Calls made side by side may leave in either order.
    let sorted = |sample: &Sample| {
        let mut calls = sample.reading.calls.clone();
        calls.sort();
        calls
    };
    let calls_alike = empty.iter().chain(&held).all(|sample| sorted(sample) == sorted(&empty[0]));
    println!();
    println!(
        "medians differ by {:.1}% (at most {:.0}%); at most {round_trips} sequential round trips per push (at most \
         {MAX_ROUND_TRIPS}); the same calls for every push: {}",
        spread * 100.0,
        TOLERANCE * 100.0,
        if calls_alike { "yes" } else { "no" }
    );
    Ok(spread <= TOLERANCE && round_trips <= MAX_ROUND_TRIPS && calls_alike)
}

/// Prints one case's line; returns its median.
fn report(case: Case, samples: &[Sample]) -> Duration {
    let mut latencies: Vec<Duration> = samples.iter().map(|sample| sample.latency).collect();
    latencies.sort();
    let median = percentile(&latencies, 0.5);
    let calls = samples.iter().map(|sample| sample.reading.calls.len()).max().unwrap_or(0);
    let round_trips = samples.iter().map(|sample| sample.reading.round_trips).max().unwrap_or(0);
    println!(
        "{:<22} {:>6.1} ms {:>6.1} ms {:>11} {:>12}  {}",
        case.label(),
        median.as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        calls,
        round_trips,
        samples.first().map(|sample| sample.reading.operations()).unwrap_or_default()
    );
    median
}
