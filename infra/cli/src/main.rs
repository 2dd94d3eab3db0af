//! `sluice`: check a pipeline definitions file, and publish it to a deployed sluice stack.
//!
//! ```text
//! sluice check FILE                     validate; every error names its pipeline, field, line and column
//! sluice publish FILE --table TABLE     validate, then make FILE the definitions the functions use
//! sluice show --table TABLE             print the definitions in use and their revision
//! sluice effects PIPELINE --table TABLE  list the pipeline's pending and parked effects
//! sluice retry-effect PIPELINE ID --table TABLE  put a parked effect back in the pipeline's outbox
//! sluice rollback PIPELINE --table TABLE  stop the deployment of the run deploying, and roll it back
//! sluice history PIPELINE --table TABLE [--limit N]  the pipeline's runs, newest first
//! sluice show-run RUN --table TABLE     one run's timeline
//! ```
//! AWS credentials, region and endpoint come from the environment, as for the AWS CLI.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sluice::adapters::{CodeDeployDeployments, DynamoDbStore, EcsDeployer};
use sluice::definitions::{Definitions, Pipeline};
use sluice::outcome::span;
use sluice::pipeline::{Execution, ExecutionId, PipelineState};
use sluice::ports::{DefinitionsStore, PipelineStore};
use sluice::usecases::{DeploymentStops, RollbackOrdered, Stop, order_rollback};

const USAGE: &str = "usage:
  sluice check FILE                  check a definitions file
  sluice publish FILE --table TABLE  check FILE, then publish it to the stack's table (its PipelineTableName output)
  sluice show --table TABLE          print the published definitions and their revision
  sluice effects PIPELINE --table TABLE       list the pipeline's pending and parked effects
  sluice retry-effect PIPELINE ID --table TABLE  put a parked effect back in the pipeline's outbox
  sluice rollback PIPELINE --table TABLE      stop the deployment of the pipeline's run deploying, and roll it back
  sluice history PIPELINE --table TABLE [--limit N]  the pipeline's runs, newest first (10 by default)
  sluice show-run RUN --table TABLE           one run's timeline: every step with its time";

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
    let Args { command, words, table, limit } = parse_args(args)?;
    let file = words.first().copied();
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
        "effects" => {
            let pipeline = file.context(USAGE)?;
            let store = store(table.context(USAGE)?).await;
            let state = store.load(pipeline).await.with_context(|| format!("reading pipeline {pipeline}"))?;
            match state {
                Some(stored) => {
                    print!("{}", effects(&stored.value, table.unwrap_or_default()));
                    Ok(())
                }
                None => bail!("pipeline {pipeline} has never run: it has no effects"),
            }
        }
        "retry-effect" => {
            let (Some(pipeline), Some(id)) = (file, words.get(1).copied()) else { bail!("{USAGE}") };
            let store = store(table.context(USAGE)?).await;
            let retried = sluice::usecases::retry_parked(&store, pipeline, id)
                .await
                .with_context(|| format!("putting {id} back in {pipeline}'s outbox"))?;
            if !retried {
                bail!("{pipeline} has no parked effect {id}: `sluice effects {pipeline} --table TABLE` lists them");
            }
            println!(
                "{id} is back in {pipeline}'s outbox: it is carried out at the pipeline's next event, or by the \
                 reconciler within {} minutes",
                RECONCILER_MINUTES
            );
            Ok(())
        }
        "rollback" => {
            let pipeline = file.context(USAGE)?;
            let table = table.context(USAGE)?;
            rollback(pipeline, table).await
        }
        "history" => {
            let pipeline = file.context(USAGE)?;
            let store = store(table.context(USAGE)?).await;
            let runs = store
                .history(pipeline, limit.unwrap_or(10))
                .await
                .with_context(|| format!("reading {pipeline}'s history"))?;
            if runs.is_empty() {
                bail!("pipeline {pipeline} has no runs: is it published (`sluice show --table TABLE`), and pushed to?");
            }
            print!("{}", history(&runs));
            Ok(())
        }
        "show-run" => {
            let id = file.context(USAGE)?;
            let store = store(table.context(USAGE)?).await;
            let run =
                store.execution(&ExecutionId(id.to_owned())).await.with_context(|| format!("reading run {id}"))?;
            let run = run
                .with_context(|| format!("there is no run {id}: `sluice history PIPELINE --table TABLE` lists them"))?;
            print!("{}", timeline(&run));
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// `sluice rollback`: the order is recorded as the caller's AWS identity, and the stop made at once with its
/// credentials.
async fn rollback(pipeline: &str, table: &str) -> Result<()> {
    let config = sluice::config::aws().await;
    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .context("finding who you are (STS GetCallerIdentity): are AWS credentials set?")?;
    let by = identity.arn().context("STS named no ARN for your identity")?;
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let stops = DeploymentStops {
        blue_green: CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(&config)),
        ecs: EcsDeployer::new(aws_sdk_ecs::Client::new(&config)),
    };
    let ordered = order_rollback(&store, &stops, pipeline, by, chrono::Utc::now())
        .await
        .with_context(|| format!("rolling back {pipeline}"))?;
    let RollbackOrdered { execution_id, commit, deployment, stop } = ordered;
    let run = format!("{execution_id} (commit {})", commit.chars().take(12).collect::<String>());
    match stop {
        Stop::Made => println!(
            "{run}: deployment {deployment} stopped and rolling back; the run ends rolled_back, naming {by}, once it \
             has"
        ),
        Stop::AlreadyOrdered => {
            println!("{run}: its rollback was already ordered; the run ends once it has rolled back")
        }
        Stop::Pending(error) => println!(
            "{run}: rollback ordered, but deployment {deployment} could not be stopped yet ({error}); the deployer \
             tries again: `sluice effects {pipeline} --table {table}` shows it"
        ),
        Stop::Parked { id, error } => bail!(
            "{run}: deployment {deployment} could not be stopped: {error}\nonce that is mended: sluice retry-effect \
             {pipeline} {id} --table {table}"
        ),
    }
    Ok(())
}

/// Runs newest first, one line each (number, id, commit, pusher, outcome, each stage's time), then why it ended so.
fn history(runs: &[Execution]) -> String {
    let mut text = String::new();
    for run in runs {
        let report = sluice::outcome::OutcomeReport::of(run);
        let stages: Vec<String> = report
            .stages
            .iter()
            .map(|stage| {
                let took = stage.finished_at.map_or_else(|| "…".to_owned(), |end| span(end - stage.started_at));
                format!("{} {took}", stage.stage)
            })
            .collect();
        let commit: String = run.source.commit.chars().take(7).collect();
        text.push_str(&format!(
            "#{:<4} {}  {commit}  {:<12} {:<20} {}  {}\n",
            run.seq,
            run.created_at.format("%Y-%m-%d %H:%M"),
            run.source.pusher,
            run.status.to_string(),
            stages.join(", "),
            run.id
        ));
        if let Some(reason) = &run.reason {
            text.push_str(&format!("       {reason}\n"));
        }
    }
    text
}

/// A run's timeline: a heading, then every step with its time from the push.
fn timeline(run: &Execution) -> String {
    let source = &run.source;
    let mut text = format!(
        "{} (pipeline {}, run #{}): {} at {} pushed by {}, {}\n",
        run.id, run.pipeline, run.seq, source.repository, source.commit, source.pusher, run.status
    );
    for line in sluice::timeline::lines(run) {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

/// How often the reconciler runs (its schedule in `template.yaml`).
const RECONCILER_MINUTES: u32 = 5;

/// The pipeline's outbox as an operator reads it: what waits, what failed and why, and how to retry what is parked.
fn effects(state: &PipelineState, table: &str) -> String {
    let mut text = String::new();
    if state.pending.is_empty() && state.parked.is_empty() {
        return format!("{}: no pending or parked effects\n", state.pipeline);
    }
    text.push_str(&format!("{}: {} pending, {} parked\n", state.pipeline, state.pending.len(), state.parked.len()));
    for pending in &state.pending {
        text.push_str(&format!("pending  {}  {}\n", pending.id, pending.effect.describe()));
        if pending.attempts > 0 {
            let next = pending.not_before.map(|at| at.to_rfc3339()).unwrap_or_else(|| "now".to_owned());
            text.push_str(&format!("         {} failed attempt(s), next try {next}\n", pending.attempts));
        }
        if let Some(error) = &pending.last_error {
            text.push_str(&format!("         last error: {error}\n"));
        }
    }
    for parked in &state.parked {
        text.push_str(&format!("parked   {}  {}\n", parked.id, parked.effect.describe()));
        text.push_str(&format!(
            "         parked {} after {} attempt(s): {}\n",
            parked.parked_at.to_rfc3339(),
            parked.attempts,
            parked.error
        ));
        text.push_str(&format!(
            "         retry: sluice retry-effect {} {} --table {table}\n",
            state.pipeline, parked.id
        ));
    }
    text
}

/// The command line: the command, its words, and the options.
struct Args<'a> {
    command: &'a str,
    words: Vec<&'a str>,
    table: Option<&'a str>,
    limit: Option<usize>,
}

fn parse_args(args: &[String]) -> Result<Args<'_>> {
    let mut command = None;
    let mut words = Vec::new();
    let mut table = None;
    let mut limit = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--table" => table = Some(rest.next().context("--table needs a table name")?.as_str()),
            "--limit" => {
                let value = rest.next().context("--limit needs a number of runs")?;
                let value = value.parse().ok().filter(|n| (1..=100).contains(n));
                limit = Some(value.context("--limit takes a number of runs from 1 to 100")?);
            }
            "-h" | "--help" => bail!("{USAGE}"),
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{USAGE}"),
            word if command.is_none() => command = Some(word),
            word if words.len() < 2 => words.push(word),
            word => bail!("unexpected argument {word:?}\n{USAGE}"),
        }
    }
    Ok(Args { command: command.context(USAGE)?, words, table, limit })
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
