//! `sluice`: check a pipeline definitions file, and publish it to a deployed sluice stack.
//!
//! ```text
//! sluice check FILE                     validate; every error names its pipeline, field, line and column
//! sluice publish FILE --table TABLE     validate, then make FILE the definitions the functions use
//! sluice show --table TABLE             print the definitions in use and their revision
//! ```
//! AWS credentials, region and endpoint come from the environment, as for the AWS CLI.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sluice::adapters::DynamoDbStore;
use sluice::definitions::{Definitions, Pipeline};
use sluice::ports::DefinitionsStore;

const USAGE: &str = "usage:
  sluice check FILE                  check a definitions file
  sluice publish FILE --table TABLE  check FILE, then publish it to the stack's table (its PipelineTableName output)
  sluice show --table TABLE          print the published definitions and their revision";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<()> {
    let (command, file, table) = parse_args(args)?;
    match command {
        "check" => {
            let (_, definitions) = load(file.context(USAGE)?)?;
            println!("ok: {}", summary(&definitions));
            Ok(())
        }
        "publish" => {
            let file = file.context(USAGE)?;
            let (text, definitions) = load(file)?;
            let store = store(table.context(USAGE)?).await;
            let current = store.current().await.context("reading the published definitions")?;
            if current.as_ref().is_some_and(|current| current.text == text) {
                let revision = current.map_or(0, |c| c.revision);
                println!("unchanged: {file} is already revision {revision}");
                return Ok(());
            }
            let replacing = current.as_ref().map(|current| current.revision);
            let revision = store
                .publish(&text, replacing, chrono::Utc::now())
                .await
                .context("publishing (if someone published meanwhile, run the command again)")?;
            println!("published {file} as revision {revision}: {}", summary(&definitions));
            Ok(())
        }
        "show" => {
            let store = store(table.context(USAGE)?).await;
            match store.current().await.context("reading the published definitions")? {
                Some(current) => {
                    println!("# revision {}, published {}", current.revision, current.published_at.to_rfc3339());
                    print!("{}", current.text);
                    Ok(())
                }
                None => bail!("no definitions are published yet: run `sluice publish FILE --table TABLE`"),
            }
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn parse_args(args: &[String]) -> Result<(&str, Option<&str>, Option<&str>)> {
    let mut command = None;
    let mut file = None;
    let mut table = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--table" => table = Some(rest.next().context("--table needs a table name")?.as_str()),
            "-h" | "--help" => bail!("{USAGE}"),
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{USAGE}"),
            word if command.is_none() => command = Some(word),
            word if file.is_none() => file = Some(word),
            word => bail!("unexpected argument {word:?}\n{USAGE}"),
        }
    }
    Ok((command.context(USAGE)?, file, table))
}

fn load(file: &str) -> Result<(String, Definitions)> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    let definitions = Definitions::parse(file, &text).map_err(|errors| {
        let count = errors.0.len();
        anyhow::anyhow!("{errors}\n{count} error{} in {file}", if count == 1 { "" } else { "s" })
    })?;
    Ok((text, definitions))
}

fn summary(definitions: &Definitions) -> String {
    let describe = |p: &Pipeline| format!("{} ({}, {})", p.name, p.source.repository, p.deploy.strategy());
    let names: Vec<String> = definitions.iter().map(describe).collect();
    format!("{} pipeline{}: {}", names.len(), if names.len() == 1 { "" } else { "s" }, names.join(", "))
}

async fn store(table: &str) -> DynamoDbStore {
    let config = sluice::config::aws().await;
    DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), table)
}
