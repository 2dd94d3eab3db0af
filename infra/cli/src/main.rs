//! `sluice`: see and steer a deployed sluice stack, and check and publish its pipeline definitions.
//!
//! This file only reads the command line (clap) and hands each verb to its own module. AWS credentials, region and
//! endpoint come from the environment or `~/.aws`, as for the AWS CLI (`--profile` and `--region` as there). The
//! stack is found by name (`--stack`, else `SLUICE_STACK`, else `sluice`): its outputs name the table and the bus;
//! `--table` (and `--bus`) name them directly instead. Exit codes: 0 done, 1 failed (or, with `--wait`, the run did
//! not succeed; or `doctor` found a problem), 2 usage.

mod approve;
mod approvers;
mod check;
mod doctor;
mod effects;
mod freeze;
mod history;
mod init;
mod order;
mod page;
mod publish;
mod rollback;
mod show;
mod show_run;
mod stack;
mod status;
mod term;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::stack::Target;

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "See and steer a deployed sluice stack; check, publish and start its pipeline definitions",
    after_help = "The stack: --stack NAME, else $SLUICE_STACK, else sluice (its PipelineTableName and EventBusName \
                  outputs), or --table (and --bus) instead.\nAWS credentials and region as for the AWS CLI: \
                  --profile and --region, else AWS_PROFILE, AWS_REGION and ~/.aws.\nExit codes: 0 done, 1 failed, 2 \
                  usage.",
    arg_required_else_help = true,
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    verb: Verb,
}

/// What every verb takes: where the stack is, how to reach AWS, and whether to answer as JSON.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// The deployed stack, found by name (else $SLUICE_STACK, else sluice)
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// The pipeline table, instead of the stack's PipelineTableName output
    #[arg(long, global = true, value_name = "TABLE")]
    pub table: Option<String>,
    /// The event bus, instead of the stack's EventBusName output
    #[arg(long, global = true, value_name = "BUS")]
    pub bus: Option<String>,
    /// Answer as JSON (errors too), for scripts
    #[arg(long, global = true)]
    pub json: bool,
    /// The AWS profile to use (else $AWS_PROFILE), as the AWS CLI reads it
    #[arg(long, global = true, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// The AWS region to use (else $AWS_REGION, else the profile's), as the AWS CLI reads it
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Verb {
    Status(status::Status),
    History(history::History),
    ShowRun(show_run::ShowRun),
    Page(page::Page),
    Approve(approve::Approve),
    Reject(approve::Reject),
    Approvers(approvers::Approvers),
    Rollback(rollback::Rollback),
    Freeze(freeze::Freeze),
    Unfreeze(freeze::Unfreeze),
    Override(freeze::Override),
    Retry(order::Retry),
    Rerun(order::Rerun),
    Effects(effects::Effects),
    RetryEffect(effects::RetryEffect),
    Check(check::Check),
    Publish(publish::Publish),
    Show(show::Show),
    Init(init::Init),
    Doctor(doctor::Doctor),
    /// Print a completion script for your shell
    #[command(
        after_help = "Example:\n  sluice completions bash > ~/.local/share/bash-completion/completions/sluice\n  \
                            sluice completions zsh > \"${fpath[1]}/_sluice\""
    )]
    Completions {
        /// bash, zsh, fish, powershell or elvish
        shell: clap_complete::Shell,
    },
}

/// A usage mistake clap could not see, told as clap tells its own (with the usage line), exiting 2.
fn usage_error(kind: clap::error::ErrorKind, message: impl std::fmt::Display) -> ! {
    Cli::command().error(kind, message).exit()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.global.stack.is_some() && cli.global.table.is_some() {
        usage_error(
            clap::error::ErrorKind::ArgumentConflict,
            "--stack and --table both say where the runs are: give one (the stack's outputs name its table)",
        );
    }
    let json = cli.global.json;
    match dispatch(cli).await {
        Ok(code) => code,
        Err(error) => {
            term::error(&error, json);
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let target = Target::from(cli.global);
    match cli.verb {
        Verb::Status(verb) => verb.run(&target).await,
        Verb::History(verb) => verb.run(&target).await,
        Verb::ShowRun(verb) => verb.run(&target).await,
        Verb::Page(verb) => verb.run(&target).await,
        Verb::Approve(verb) => verb.run(&target).await,
        Verb::Reject(verb) => verb.run(&target).await,
        Verb::Approvers(verb) => verb.run(&target).await,
        Verb::Rollback(verb) => verb.run(&target).await,
        Verb::Freeze(verb) => verb.run(&target).await,
        Verb::Unfreeze(verb) => verb.run(&target).await,
        Verb::Override(verb) => verb.run(&target).await,
        Verb::Retry(verb) => verb.run(&target).await,
        Verb::Rerun(verb) => verb.run(&target).await,
        Verb::Effects(verb) => verb.run(&target).await,
        Verb::RetryEffect(verb) => verb.run(&target).await,
        Verb::Check(verb) => verb.run(&target),
        Verb::Publish(verb) => verb.run(&target).await,
        Verb::Show(verb) => verb.run(&target).await,
        Verb::Init(verb) => verb.run(&target).await,
        Verb::Doctor(verb) => verb.run(&target).await,
        Verb::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
