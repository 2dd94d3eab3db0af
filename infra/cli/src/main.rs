//! `sluice`: see and steer a deployed sluice stack, and check and publish its pipeline definitions.
//!
//! AWS credentials, region and endpoint come from the environment or `~/.aws`, as for the AWS CLI. The stack is
//! found by name (`--stack`, else `SLUICE_STACK`, else `sluice`): its outputs name the table and the bus;
//! `--table` (and `--bus`) name them directly instead. Exit codes: 0 done, 1 failed (or, with `--wait`, the run
//! did not succeed), 2 usage.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use sluice::adapters::{CodeDeployDeployments, DynamoDbStore, EcsDeployer, EventBridgePublisher, SecretsManagerSecret};
use sluice::contract::ports::{DefinitionsStore, PipelineStore, SecretSource};
use sluice::definitions::{Definitions, MAX_TEXT, Pipeline};
use sluice::pipeline::{ApprovalDecision, Execution, ExecutionId, PipelineState, Status, short_commit};
use sluice::present::status::StatusKey;
use sluice::present::text::with_slash;
use sluice::present::timeline::{history_lines, lines, run_json, timeline, waits_for};
use sluice::usecases::{
    Announcer, Decided, DeploymentStops, Order, RollbackError, RollbackOrdered, Stop, decide_as, order_rollback,
    order_run,
};

const USAGE: &str = "usage: sluice [--stack NAME | --table TABLE [--bus BUS]] [--json] COMMAND
  status [PIPELINE]             runs in progress and what each waits for; parked effects
  history PIPELINE [--limit N]  runs newest first (10 by default, up to 100)
  show-run RUN [--wait]         one run's timeline; --wait follows it until it ends
  page [RUN]                    the status page's address (every pipeline), or RUN's page's
  approve RUN [--comment TEXT] [--wait]   approve as your AWS identity (the approval stage, or a pause)
  reject RUN [--comment TEXT]   reject as your AWS identity
  rollback PIPELINE [--to RUN]  stop the deployment in progress and roll it back; with none in progress (or with
                                --to), deploy the build of the succeeded run before the last one (or RUN's), as a run
  retry RUN                     a run that did not succeed, again: its deployment with the same build, or (if its
                                build failed, or it was not approved) from a new build of its commit
  rerun PIPELINE COMMIT         a new run of a commit the pipeline ran (a prefix will do), from its build on
  effects PIPELINE              the pipeline's pending and parked effects
  retry-effect PIPELINE ID      put a parked effect back in the pipeline's outbox
  check FILE                    check a definitions file
  publish FILE                  check FILE, then make it the definitions the stack uses
  show                          print the published definitions and their revision
the stack: --stack NAME, else $SLUICE_STACK, else sluice (its PipelineTableName and EventBusName outputs)";

/// How often `--wait` looks at the run.
const POLL: Duration = Duration::from_secs(2);
/// The frames of `--wait`'s spinner on a terminal, and how long each shows.
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK: Duration = Duration::from_millis(100);

/// A mistake in the command line: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}\n{USAGE}")]
struct Usage(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow!(Usage(message.into()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error:#}");
            if error.downcast_ref::<Usage>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

async fn run(args: &[String]) -> Result<ExitCode> {
    let args = parse_args(args)?;
    let word = |i: usize, what: &str| {
        args.words.get(i).copied().ok_or_else(|| usage(format!("{} needs {what}", args.command)))
    };
    match args.command {
        "check" if args.json => return check_json(word(0, "a FILE")?),
        "check" => {
            let (_, definitions) = load(word(0, "a FILE")?)?;
            warn(&definitions);
            println!("ok: {}", summary(&definitions));
        }
        "publish" => publish(&args, word(0, "a FILE")?).await?,
        "show" => {
            let store = Stack::find(&args).await?.store();
            match store.current().await.context("reading the published definitions")? {
                Some(current) => {
                    println!("# revision {}, published {}", current.revision, current.published_at.to_rfc3339());
                    print!("{}", current.text);
                }
                None => bail!("no definitions are published yet: run `sluice publish FILE`"),
            }
        }
        "status" => status(&args, args.words.first().copied()).await?,
        "history" => history(&args, word(0, "a PIPELINE")?).await?,
        "show-run" => return show_run(&args, word(0, "a RUN")?).await,
        "page" => page(&args, args.words.first().copied()).await?,
        "approve" => return decide(&args, word(0, "a RUN")?, ApprovalDecision::Approved).await,
        "reject" => return decide(&args, word(0, "a RUN")?, ApprovalDecision::Rejected).await,
        "effects" => {
            let pipeline = word(0, "a PIPELINE")?;
            let stack = Stack::find(&args).await?;
            let state = stack.store().load(pipeline).await.with_context(|| format!("reading pipeline {pipeline}"))?;
            let state = state.with_context(|| format!("pipeline {pipeline} has never run: it has no effects"))?;
            print!("{}", effects(&state.value, &stack.table));
        }
        "retry-effect" => {
            let (pipeline, id) = (word(0, "a PIPELINE")?, word(1, "an effect ID")?);
            let stack = Stack::find(&args).await?;
            let retried = sluice::usecases::retry_parked(&stack.store(), pipeline, id)
                .await
                .with_context(|| format!("putting {id} back in {pipeline}'s outbox"))?;
            if !retried {
                bail!("{pipeline} has no parked effect {id}: `sluice effects {pipeline}` lists them");
            }
            println!(
                "{id} is back in {pipeline}'s outbox: it is carried out at the pipeline's next event, or by the \
                 reconciler within {RECONCILER_MINUTES} minutes"
            );
        }
        "rollback" => return rollback(&args, word(0, "a PIPELINE")?).await,
        "retry" => return order(&args, Order::Retry { run: word(0, "a RUN")? }).await,
        "rerun" => {
            return order(&args, Order::Rerun { pipeline: word(0, "a PIPELINE")?, commit: word(1, "a COMMIT")? }).await;
        }
        other => return Err(usage(format!("unknown command {other:?}"))),
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the stack keeps its state, and the bus its functions listen on.
struct Stack {
    config: aws_config::SdkConfig,
    table: String,
    bus: Option<String>,
    /// The stack's outputs (none when the table is named with --table).
    outputs: Vec<(String, String)>,
}

impl Stack {
    /// The table and bus the command line names, or the stack's outputs.
    async fn find(args: &Args<'_>) -> Result<Self> {
        let config = sluice::runtime::config::aws().await;
        if let Some(table) = args.table {
            return Ok(Self { config, table: table.to_owned(), bus: args.bus.map(str::to_owned), outputs: Vec::new() });
        }
        let name =
            args.stack.map(str::to_owned).or_else(|| std::env::var("SLUICE_STACK").ok()).unwrap_or("sluice".into());
        let described = aws_sdk_cloudformation::Client::new(&config)
            .describe_stacks()
            .stack_name(&name)
            .send()
            .await
            .with_context(|| {
            format!(
                "finding stack {name} (CloudFormation DescribeStacks): are AWS credentials and region set, and is \
                     the stack deployed there? Name another with --stack, or the table with --table"
            )
        })?;
        let stack = described.stacks().first().with_context(|| format!("there is no stack {name}"))?;
        let outputs: Vec<(String, String)> = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        let mut found = Self { config, table: String::new(), bus: args.bus.map(str::to_owned), outputs };
        found.table = found
            .output("PipelineTableName")
            .map(str::to_owned)
            .with_context(|| format!("stack {name} has no PipelineTableName output: is it sluice's?"))?;
        if found.bus.is_none() {
            found.bus = found.output("EventBusName").map(str::to_owned);
        }
        Ok(found)
    }

    fn output(&self, key: &str) -> Option<&str> {
        self.outputs.iter().find(|(k, _)| k == key).map(|(_, value)| value.as_str())
    }

    fn store(&self) -> DynamoDbStore {
        DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&self.config), &self.table)
    }

    /// Who the caller is: their AWS identity's ARN.
    async fn caller(&self) -> Result<String> {
        let identity = aws_sdk_sts::Client::new(&self.config)
            .get_caller_identity()
            .send()
            .await
            .context("finding who you are (STS GetCallerIdentity): are AWS credentials set?")?;
        identity.arn().map(str::to_owned).context("STS named no ARN for your identity")
    }
}

async fn publish(args: &Args<'_>, file: &str) -> Result<()> {
    let (text, definitions) = load(file)?;
    warn(&definitions);
    let store = Stack::find(args).await?.store();
    let current = store.current().await.context("reading the published definitions")?;
    if current.as_ref().is_some_and(|current| current.text == text) {
        let revision = current.map_or(0, |c| c.revision);
        println!("unchanged: {file} is already revision {revision}");
        return Ok(());
    }
    let replacing = current.as_ref().map(|current| current.revision);
    let revision = match store.publish(&text, replacing, chrono::Utc::now()).await {
        Ok(revision) => revision,
        Err(error @ sluice::contract::ports::StoreError::Conflict { .. }) => {
            return Err(anyhow::Error::new(error)
                .context("publishing: someone published meanwhile; run `sluice show` to see it, then publish again"));
        }
        Err(error) => return Err(anyhow::Error::new(error).context("publishing")),
    };
    println!("published {file} as revision {revision}: {}", summary(&definitions));
    Ok(())
}

/// `sluice status`: each pipeline (or the one named) with its runs in progress and what each waits for, and its
/// parked effects.
async fn status(args: &Args<'_>, only: Option<&str>) -> Result<()> {
    let store = Stack::find(args).await?.store();
    let published = store.current().await.context("reading the published definitions")?;
    let published = published.context("no definitions are published yet: run `sluice publish FILE`")?;
    let definitions = Definitions::parse("the published definitions", &published.text)
        .map_err(|errors| anyhow!("the published definitions do not load: {errors}"))?;
    let pipelines: Vec<&Pipeline> = definitions.iter().filter(|p| only.is_none_or(|name| p.name == name)).collect();
    if let Some(name) = only.filter(|_| pipelines.is_empty()) {
        bail!("there is no pipeline {name} in the published definitions (revision {})", published.revision);
    }
    let now = chrono::Utc::now();
    let mut report = Vec::new();
    for pipeline in pipelines {
        let state = store.load(&pipeline.name).await.with_context(|| format!("reading pipeline {}", pipeline.name))?;
        let state = state.map(|stored| stored.value);
        let runs: Vec<&Execution> =
            state.iter().flat_map(|s| s.executions.iter()).filter(|run| !run.status.is_finished()).collect();
        let parked = state.as_ref().map(|s| s.parked.as_slice()).unwrap_or_default();
        if args.json {
            report.push(json!({
                "pipeline": pipeline.name,
                "strategy": pipeline.deploy.strategy(),
                "runs": runs.iter().map(|run| {
                    let mut value = run_json(run);
                    value["waits_for"] = json!(waits_for(run, now));
                    value
                }).collect::<Vec<_>>(),
                "parked": parked.iter().map(|p| json!({
                    "id": p.id, "effect": p.effect.describe(), "error": p.error, "parked": p.parked_at.to_rfc3339(),
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        println!("{}  ({}, {})", bold(&pipeline.name), pipeline.deploy.strategy(), pipeline.source.repository);
        if runs.is_empty() {
            println!("  no run in progress");
        }
        for run in runs {
            let age = sluice::present::text::span(now - run.created_at);
            let commit = short_commit(&run.source.commit);
            let standing = paint(run.status, &format!("{:<20}", run.status.to_string()));
            println!("  #{:<4} {commit}  {:<12} {standing} {age:>8}  {}", run.seq, run.source.pusher, run.id);
            println!("        waits for {}", waits_for(run, now));
        }
        for parked in parked {
            println!("  {} {}  {}", paint(Status::Failed, "parked"), parked.id, parked.effect.describe());
            println!("        {}", parked.error);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "pipelines": report }))?);
    }
    Ok(())
}

/// `sluice page [RUN]`: the status page's address, made of the stack's `ApprovalUrl` and the key in its
/// `StatusKeySecretArn`; or RUN's page's, which shows that run only (the link to share).
async fn page(args: &Args<'_>, run: Option<&str>) -> Result<()> {
    let stack = Stack::find(args).await?;
    let (Some(url), Some(secret)) = (stack.output("ApprovalUrl"), stack.output("StatusKeySecretArn")) else {
        bail!(
            "the status page's address is made from the stack's ApprovalUrl and StatusKeySecretArn outputs: name \
             the stack (--stack, or SLUICE_STACK), not its table; a stack deployed before the status page needs \
             `sam deploy` again"
        );
    };
    let client = aws_sdk_secretsmanager::Client::new(&stack.config);
    let value = SecretsManagerSecret::new(client, secret).read().await.context("reading the status page key")?;
    let key = StatusKey::new(value).context("the status page key")?;
    let path = match run {
        Some(run) => {
            let run = read_run(&stack.store(), &ExecutionId(run.to_owned())).await?;
            key.run_path(&run.id)
        }
        None => key.overview_path(),
    };
    let address = format!("{}{path}", with_slash(url));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "url": address }))?);
    } else {
        println!("{address}");
    }
    Ok(())
}

async fn history(args: &Args<'_>, pipeline: &str) -> Result<()> {
    let store = Stack::find(args).await?.store();
    let runs = store
        .history(pipeline, args.limit.unwrap_or(10))
        .await
        .with_context(|| format!("reading {pipeline}'s history"))?;
    if runs.is_empty() {
        bail!("pipeline {pipeline} has no runs: is it published (`sluice show`), and pushed to?");
    }
    if args.json {
        let runs: Vec<_> = runs.iter().map(run_json).collect();
        println!("{}", serde_json::to_string_pretty(&json!({ "pipeline": pipeline, "runs": runs }))?);
        return Ok(());
    }
    for run in &runs {
        let mut lines = history_lines(run).into_iter();
        if let Some(first) = lines.next() {
            println!("{}", first.replacen(&run.status.to_string(), &paint(run.status, &run.status.to_string()), 1));
        }
        lines.for_each(|line| println!("{line}"));
    }
    Ok(())
}

async fn show_run(args: &Args<'_>, id: &str) -> Result<ExitCode> {
    let store = Stack::find(args).await?.store();
    let id = ExecutionId(id.to_owned());
    let run = read_run(&store, &id).await?;
    if args.json && !args.wait {
        println!("{}", serde_json::to_string_pretty(&run_with_timeline(&run))?);
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        let source = &run.source;
        println!(
            "{} (pipeline {}, run #{}): {} at {} pushed by {}, {}",
            run.id,
            run.pipeline,
            run.seq,
            source.repository,
            source.commit,
            source.pusher,
            paint(run.status, &run.status.to_string())
        );
    }
    follow(args, &store, run).await
}

/// Prints the run's timeline, then (with `--wait`) each new step until the run ends. Succeeded: exit 0; ended
/// otherwise: 1. Without `--wait`, 0.
async fn follow(args: &Args<'_>, store: &DynamoDbStore, mut run: Execution) -> Result<ExitCode> {
    let mut shown = 0;
    loop {
        let printed = lines(&run);
        if !args.json {
            printed.iter().skip(shown).for_each(|line| println!("  {line}"));
        }
        shown = printed.len();
        if !args.wait {
            return Ok(ExitCode::SUCCESS);
        }
        if run.status.is_finished() {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&run_with_timeline(&run))?);
            } else {
                let reason = run.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                println!("{} {}{reason}", run.id, paint(run.status, &run.status.to_string()));
            }
            return Ok(if run.status == Status::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        if std::io::stderr().is_terminal() {
            // A spinner on one line, redrawn in place, that ends cleared: the timeline above stays as it was.
            let line = format!("{} {}, waiting for {}", run.id, run.status, waits_for(&run, chrono::Utc::now()));
            let until = tokio::time::Instant::now() + POLL;
            for frame in SPINNER.iter().cycle() {
                eprint!("\r  {frame} {line}\x1b[K");
                if tokio::time::Instant::now() + TICK > until {
                    break;
                }
                tokio::time::sleep(TICK).await;
            }
            tokio::time::sleep_until(until).await;
            eprint!("\r\x1b[K");
        } else {
            tokio::time::sleep(POLL).await;
        }
        run = read_run(store, &run.id).await?;
    }
}

fn run_with_timeline(run: &Execution) -> serde_json::Value {
    let mut value = run_json(run);
    value["timeline"] = timeline(run)
        .iter()
        .map(|moment| json!({ "at": moment.at.to_rfc3339(), "stage": moment.stage, "what": moment.what }))
        .collect();
    value
}

async fn read_run(store: &DynamoDbStore, id: &ExecutionId) -> Result<Execution> {
    let run = store.execution(id).await.with_context(|| format!("reading run {id}"))?;
    run.with_context(|| format!("there is no run {id}: `sluice history PIPELINE` lists them"))
}

/// `sluice approve` / `sluice reject`: the decision is recorded as the caller's AWS identity, and announced on the
/// stack's bus at once (the deployer starts, or continues a paused deployment, on that announcement).
async fn decide(args: &Args<'_>, id: &str, decision: ApprovalDecision) -> Result<ExitCode> {
    let stack = Stack::find(args).await?;
    let bus = stack
        .bus
        .clone()
        .context("the decision must be announced on the stack's bus: name it with --bus, or the stack with --stack")?;
    let by = stack.caller().await?;
    let store = stack.store();
    let runner =
        Announcer { publisher: EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&stack.config), bus) };
    let id = ExecutionId(id.to_owned());
    let decided = decide_as(&store, &runner, &id, decision, &by, args.comment.map(str::to_owned), chrono::Utc::now())
        .await
        .with_context(|| {
            format!("{} {id}", if decision == ApprovalDecision::Approved { "approving" } else { "rejecting" })
        })?;
    let what = match &decided {
        Decided::Stage => "its approval stage".to_owned(),
        Decided::Pause(stage) => format!("its deployment's {stage} pause"),
        Decided::Already => "nothing new: the same decision was already recorded".to_owned(),
    };
    if args.json && !args.wait {
        let decided = match decided {
            Decided::Stage => "stage",
            Decided::Pause(_) => "pause",
            Decided::Already => "already",
        };
        println!("{}", json!({ "run": id, "decision": decision.name(), "by": by, "decided": decided }));
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        println!("{id}: {} by {by} ({what})", decision.name());
    }
    if args.wait { follow(args, &store, read_run(&store, &id).await?).await } else { Ok(ExitCode::SUCCESS) }
}

/// `sluice rollback`: the order is recorded as the caller's AWS identity, and the stop made at once with its
/// credentials.
async fn rollback(args: &Args<'_>, pipeline: &str) -> Result<ExitCode> {
    if args.to.is_some() {
        return order(args, Order::RollbackTo { pipeline, to: args.to }).await;
    }
    let stack = Stack::find(args).await?;
    let by = stack.caller().await?;
    let stops = DeploymentStops {
        blue_green: CodeDeployDeployments::new(aws_sdk_codedeploy::Client::new(&stack.config)),
        ecs: EcsDeployer::new(aws_sdk_ecs::Client::new(&stack.config)),
    };
    let ordered = match order_rollback(&stack.store(), &stops, pipeline, &by, chrono::Utc::now()).await {
        // Nothing in progress: roll back to the succeeded run before the last one.
        Err(RollbackError::NothingDeploying(_)) => return order(args, Order::RollbackTo { pipeline, to: None }).await,
        other => other.with_context(|| format!("rolling back {pipeline}"))?,
    };
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
             tries again: `sluice effects {pipeline}` shows it"
        ),
        Stop::Parked { id, error } => bail!(
            "{run}: deployment {deployment} could not be stopped: {error}\nonce that is mended: sluice retry-effect \
             {pipeline} {id}"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice rollback --to`, `sluice retry`, `sluice rerun`: a new run, ordered as the caller's AWS identity; its
/// announcement (and its build, if it has one) goes out at once with the caller's credentials.
/// `sluice retry`, `rerun`, and `rollback` with nothing deploying: exits 1 when the run ordered ended at once (a
/// commit behind its ref's head is skipped), saying why.
async fn order(args: &Args<'_>, order: Order<'_>) -> Result<ExitCode> {
    let stack = Stack::find(args).await?;
    let bus = stack
        .bus
        .clone()
        .context("a new run is announced on the stack's bus: name it with --bus, or the stack with --stack")?;
    let by = stack.caller().await?;
    let runner = sluice::adapters::stage_effects(&stack.config, &bus);
    let what = match &order {
        Order::RollbackTo { pipeline, .. } => format!("rolling {pipeline} back"),
        Order::Retry { run } => format!("retrying {run}"),
        Order::Rerun { pipeline, commit } => format!("running {pipeline} again at {commit}"),
    };
    let ordered = order_run(&stack.store(), &runner, order, &by, chrono::Utc::now()).await.context(what)?;
    let commit: String = ordered.commit.chars().take(12).collect();
    let how = if ordered.redeploys {
        format!("deploys the build of {}", ordered.of)
    } else {
        format!("builds commit {commit} again")
    };
    let ended = ordered.status.is_finished();
    if args.json {
        println!(
            "{}",
            json!({ "run": ordered.execution_id, "pipeline": ordered.pipeline, "of": ordered.of, "commit": ordered.commit,
                    "redeploys": ordered.redeploys, "status": ordered.status.to_string(), "reason": ordered.reason,
                    "by": by })
        );
    } else {
        // A run that ended at once says why; one under way, how to follow it.
        let why = ordered.reason.as_deref().filter(|_| ended).map(|reason| format!(": {reason}")).unwrap_or_default();
        println!(
            "{}: a run of {} that {how}, ordered by {by}; it is {}{why}",
            ordered.execution_id, ordered.pipeline, ordered.status
        );
        if !ended {
            println!("follow it with: sluice show-run {} --wait", ordered.execution_id);
        }
    }
    Ok(if ended { ExitCode::FAILURE } else { ExitCode::SUCCESS })
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
    stack: Option<&'a str>,
    table: Option<&'a str>,
    bus: Option<&'a str>,
    limit: Option<usize>,
    comment: Option<&'a str>,
    to: Option<&'a str>,
    json: bool,
    wait: bool,
}

fn parse_args(args: &[String]) -> Result<Args<'_>> {
    let mut parsed = Args {
        command: "",
        words: Vec::new(),
        stack: None,
        table: None,
        bus: None,
        limit: None,
        comment: None,
        to: None,
        json: false,
        wait: false,
    };
    let mut rest = args.iter();
    fn value<'a>(flag: &str, what: &str, rest: &mut std::slice::Iter<'a, String>) -> Result<&'a str> {
        rest.next().map(String::as_str).ok_or_else(|| usage(format!("{flag} needs {what}")))
    }
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--stack" => parsed.stack = Some(value("--stack", "a stack name", &mut rest)?),
            "--table" => parsed.table = Some(value("--table", "a table name", &mut rest)?),
            "--bus" => parsed.bus = Some(value("--bus", "an event bus name", &mut rest)?),
            "--comment" => parsed.comment = Some(value("--comment", "a text", &mut rest)?),
            "--to" => parsed.to = Some(value("--to", "a RUN", &mut rest)?),
            "--limit" => {
                let limit = value("--limit", "a number of runs", &mut rest)?;
                let limit = limit.parse().ok().filter(|n| (1..=100).contains(n));
                parsed.limit = Some(limit.ok_or_else(|| usage("--limit takes a number of runs from 1 to 100"))?);
            }
            "--json" => parsed.json = true,
            "--wait" => parsed.wait = true,
            "-h" | "--help" => return Err(usage("sluice sees and steers a deployed sluice stack")),
            flag if flag.starts_with('-') => return Err(usage(format!("unknown option {flag}"))),
            word if parsed.command.is_empty() => parsed.command = word,
            word if parsed.words.len() < 2 => parsed.words.push(word),
            word => return Err(usage(format!("unexpected argument {word:?}"))),
        }
    }
    if parsed.command.is_empty() {
        return Err(usage("no command given"));
    }
    Ok(parsed)
}

/// The most errors `check` prints; the count of the others follows.
const SHOWN_ERRORS: usize = 50;

/// The file, if it is no larger than what sluice stores: never more of it is read (`check /dev/zero` ends at once).
fn read_definitions(file: &str) -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|opened| opened.take(MAX_TEXT as u64 + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {file}"))?;
    if bytes.len() > MAX_TEXT {
        bail!("{file}: more than {MAX_TEXT} bytes; sluice stores at most that (its table's items hold 400 KB)");
    }
    String::from_utf8(bytes).map_err(|error| {
        let at = error.utf8_error().valid_up_to();
        anyhow!("{file}: not UTF-8 text (byte {at} is not), as TOML files must be")
    })
}

fn load(file: &str) -> Result<(String, Definitions)> {
    let text = read_definitions(file)?;
    let definitions = Definitions::check(file, &text).map_err(|errors| {
        let count = errors.0.len();
        let shown: Vec<String> = errors.0.iter().take(SHOWN_ERRORS).map(ToString::to_string).collect();
        let more = match count.checked_sub(SHOWN_ERRORS) {
            Some(more @ 1..) => format!("\n... and {more} more"),
            _ => String::new(),
        };
        anyhow!("{}{more}\n{count} error{} in {file}", shown.join("\n"), if count == 1 { "" } else { "s" })
    })?;
    Ok((text, definitions))
}

/// What `check` found that runs, but perhaps not as meant: told on stderr, one `warning:` line each.
fn warn(definitions: &Definitions) {
    for warning in definitions.warnings() {
        eprintln!("warning: {warning}");
    }
}

/// `sluice --json check FILE`: every mistake as data (for editors and CI), or the pipelines; exits 1 with mistakes.
fn check_json(file: &str) -> Result<ExitCode> {
    let text = match read_definitions(file) {
        Ok(text) => text,
        Err(error) => {
            // Not read at all (missing, too large, not UTF-8): one mistake, at no line.
            let error = serde_json::json!({
                "file": file, "line": null, "column": null, "pipeline": null, "field": "", "message": format!("{error:#}"),
            });
            println!("{}", serde_json::json!({ "ok": false, "errors": [error] }));
            return Ok(ExitCode::FAILURE);
        }
    };
    let (answer, code) = match Definitions::check(file, &text) {
        Ok(definitions) => {
            let pipelines: Vec<serde_json::Value> = definitions
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name, "repository": p.source.repository, "triggers": triggers(&p.source),
                        "gates": gates(p), "deploys": deploys(p),
                    })
                })
                .collect();
            let warnings: Vec<serde_json::Value> = definitions.warnings().iter().map(mistake_json).collect();
            (serde_json::json!({ "ok": true, "pipelines": pipelines, "warnings": warnings }), ExitCode::SUCCESS)
        }
        Err(errors) => {
            let errors: Vec<serde_json::Value> = errors.0.iter().map(mistake_json).collect();
            (serde_json::json!({ "ok": false, "errors": errors }), ExitCode::FAILURE)
        }
    };
    println!("{answer}");
    Ok(code)
}

/// An error or a warning as data: where it is and what it says.
fn mistake_json(e: &sluice::definitions::DefinitionError) -> serde_json::Value {
    serde_json::json!({
        "file": e.origin, "line": e.line, "column": e.column, "pipeline": e.pipeline, "field": e.field,
        "message": e.message,
    })
}

/// How many pipelines, then a line each: what triggers it, what gates it, where it deploys.
fn summary(definitions: &Definitions) -> String {
    let count = definitions.len();
    let mut out = format!("{count} pipeline{}", if count == 1 { "" } else { "s" });
    for p in definitions.iter() {
        let gates = gates(p);
        let gates = if gates.is_empty() { String::new() } else { format!(", {}", gates.join(", ")) };
        out += &format!(
            "\n  {}: {} {}; build {}{gates}; {}",
            p.name,
            p.source.repository,
            triggers(&p.source),
            p.build.project,
            deploys(p)
        );
    }
    out
}

/// What pushes start a pipeline: `pushes to main, release/* (not release/old) when src/** changes`.
fn triggers(source: &sluice::definitions::Source) -> String {
    let globs = |filter: &sluice::definitions::GlobFilter| {
        let mut said = if filter.include.is_empty() { "any".to_owned() } else { filter.include.join(", ") };
        if !filter.exclude.is_empty() {
            said += &format!(" (not {})", filter.exclude.join(", "));
        }
        said
    };
    let mut refs = Vec::new();
    match (&source.branches, &source.tags) {
        (Some(branches), _) => refs.push(format!("branches {}", globs(branches))),
        (None, None) => refs.push("the default branch".to_owned()),
        (None, Some(_)) => {}
    }
    if let Some(tags) = &source.tags {
        refs.push(format!("tags {}", globs(tags)));
    }
    let files = source.paths.as_ref().map(|paths| format!(" when files {} change", globs(paths))).unwrap_or_default();
    format!("pushes to {}{files}", refs.join(" and "))
}

/// Who must agree before it deploys: the approval stage's topic, a pause's stage and topic.
fn gates(p: &Pipeline) -> Vec<String> {
    let mut gates = Vec::new();
    if let Some(approval) = &p.approval {
        gates.push(format!("approval by {}", approval.topic_arn));
    }
    if let sluice::definitions::DeployTarget::EcsNative(native) = &p.deploy
        && let Some(pause) = &native.approval
    {
        gates.push(format!("approval at {} by {}", pause.stage, pause.topic_arn));
    }
    gates
}

/// Where it deploys: `rolling update of prod/web`.
fn deploys(p: &Pipeline) -> String {
    use sluice::definitions::DeployTarget;
    match &p.deploy {
        DeployTarget::BlueGreen(bg) => format!(
            "CodeDeploy blue/green of {}/{} ({}/{}, {})",
            bg.cluster, bg.service, bg.application, bg.deployment_group, bg.deployment_config
        ),
        DeployTarget::Rolling(rolling) => format!("rolling update of {}/{}", rolling.cluster, rolling.service),
        DeployTarget::EcsNative(native) => format!("{} of {}/{}", p.deploy.strategy(), native.cluster, native.service),
    }
}

/// Colours for a terminal (none when the output is not one, or `NO_COLOR` is set).
fn colours() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `text` in the colour of `status`: green shipped, red failed or rolled back, yellow in progress.
fn paint(status: Status, text: &str) -> String {
    if !colours() {
        return text.to_owned();
    }
    let colour = match status {
        Status::Succeeded => "32",
        Status::Failed | Status::RolledBack | Status::TimedOut | Status::Rejected => "31",
        Status::Waiting(_) | Status::Running(_) => "33",
        Status::Superseded | Status::Skipped => "2",
    };
    format!("\x1b[{colour}m{text}\x1b[0m")
}

fn bold(text: &str) -> String {
    if colours() { format!("\x1b[1m{text}\x1b[0m") } else { text.to_owned() }
}
