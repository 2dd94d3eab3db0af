//! What a signed push costs in AWS calls, counted on the wire by the meter between the webhook function and moto:
//! the same few calls whatever the number of executions the pipeline holds. (`make bench` measures the latency.)

use anyhow::Result;
use sluice_integration::bench::{Bench, Case, HELD};

fn sorted(calls: &[String]) -> Vec<String> {
    let mut calls = calls.to_vec();
    calls.sort();
    calls
}

#[tokio::test]
async fn a_push_that_starts_a_build_costs_the_same_few_calls_whether_the_pipeline_holds_none_or_twenty_runs()
-> Result<()> {
    let bench = Bench::set_up(2).await?;
    for index in 0..bench.pushes() {
        let empty = bench.push(Case::Empty, index).await?;
        let held = bench.push(Case::Held, index).await?;
        assert_eq!(bench.held().await?, HELD, "the held pipeline is put back as it was after each push");

        let expected = sorted(&[
            "AWSEvents.PutEvents".to_owned(),
            "CodeBuild_20161006.StartBuild".to_owned(),
            "DynamoDB_20120810.GetItem".to_owned(),
            "DynamoDB_20120810.PutItem".to_owned(),
            "DynamoDB_20120810.PutItem".to_owned(),
            "DynamoDB_20120810.PutItem".to_owned(),
        ]);
        assert_eq!(sorted(&empty.reading.calls), expected, "{:?}", empty.reading);
        assert_eq!(sorted(&held.reading.calls), expected, "{:?}", held.reading);
        // Read beside the receipt, record with the outbox, StartBuild beside PutEvents, record what came of them:
        // each write the pipeline's item alone (or the receipt), no transaction.
        assert_eq!(empty.reading.round_trips, 4, "{:?}", empty.reading);
        assert_eq!(held.reading.round_trips, 4, "{:?}", held.reading);
    }
    Ok(())
}

#[tokio::test]
async fn a_push_right_after_another_to_the_same_pipeline_is_recorded_without_reading_the_state_again() -> Result<()> {
    let bench = Bench::set_up(1).await?;
    let first = bench.push(Case::Empty, 0).await?;
    assert_eq!(
        first.reading.calls.first().map(String::as_str),
        Some("DynamoDB_20120810.GetItem"),
        "{:?}",
        first.reading
    );

    let second = bench.push_again(0).await?;

    // The instance wrote the state a moment ago: the push is decided from it (the save is conditional on its
    // version), and waits for the first run's build: its receipt, the pipeline's item with the run and the outbox,
    // the announcement, the pipeline's item again. No transaction: each write is one item, one write unit.
    let expected =
        ["DynamoDB_20120810.PutItem", "DynamoDB_20120810.PutItem", "AWSEvents.PutEvents", "DynamoDB_20120810.PutItem"];
    assert_eq!(second.reading.calls, expected, "{:?}", second.reading);
    assert_eq!(second.reading.round_trips, 4, "{:?}", second.reading);
    assert_eq!(second.reading.usage.write_units, 3, "{:?}", second.reading);
    Ok(())
}

#[tokio::test]
async fn a_function_watching_few_pipelines_reads_their_states_as_it_starts_and_its_first_push_does_not_wait_for_one()
-> Result<()> {
    // Three pipelines (warm, held, empty-0): no more than the function remembers.
    let bench = Bench::set_up_with(1, 0).await?;
    let mut expected = vec!["DynamoDB_20120810.GetItem".to_owned(); 4];
    expected.extend(["secretsmanager.GetSecretValue".to_owned(), "secretsmanager.GetSecretValue".to_owned()]);
    assert_eq!(sorted(&bench.start().calls), expected, "{:?}", bench.start());

    // The push to `warm`, which holds no run: its build starts now, so its receipt goes with the state (one
    // transaction), StartBuild beside PutEvents, then the build's id with the pipeline's item alone. Four calls.
    let expected = sorted(&[
        "AWSEvents.PutEvents".to_owned(),
        "CodeBuild_20161006.StartBuild".to_owned(),
        "DynamoDB_20120810.PutItem".to_owned(),
        "DynamoDB_20120810.TransactWriteItems".to_owned(),
    ]);
    assert_eq!(sorted(&bench.warm().calls), expected, "{:?}", bench.warm());
    assert_eq!(bench.warm().round_trips, 3, "{:?}", bench.warm());
    Ok(())
}

#[tokio::test]
async fn the_function_reads_its_secret_and_the_published_definitions_as_it_starts_so_no_push_waits_for_them()
-> Result<()> {
    let bench = Bench::set_up(1).await?;

    // The secret's current and previous versions, and beside them the definitions.
    let expected = sorted(&[
        "DynamoDB_20120810.GetItem".to_owned(),
        "secretsmanager.GetSecretValue".to_owned(),
        "secretsmanager.GetSecretValue".to_owned(),
    ]);
    assert_eq!(sorted(&bench.start().calls), expected, "{:?}", bench.start());
    assert!(bench.start().round_trips <= 2, "{:?}", bench.start());
    Ok(())
}
