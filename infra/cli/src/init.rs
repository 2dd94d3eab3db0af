//! `sluice init`: a starting pipeline for a repository, with the build files that leave what sluice reads. Each
//! file is checked as sluice reads it before any is written, and none is overwritten without `--force`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use serde_json::json;
use sluice::definitions::Definitions;
use sluice::deploy::render::{APPSPEC_FILE, IMAGE_PLACEHOLDER, TASK_DEFINITION_FILE, TASK_DEFINITION_PLACEHOLDER};

use crate::stack::Target;

/// Write a starting pipelines.toml, buildspec.yml, taskdef.json (and appspec.yaml for blue_green)
///
/// Asks for what is not given when run at a terminal; elsewhere, --repository, --project, --cluster and --service
/// are needed. Every file is checked as sluice reads it before any is written; an existing file is never
/// overwritten without --force.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice init\n  sluice init --repository acme/web --project web-build --strategy \
                        rolling --cluster prod --service web")]
pub struct Init {
    /// The GitHub repository, owner/name
    #[arg(long, value_name = "OWNER/NAME")]
    repository: Option<String>,
    /// The CodeBuild project that builds it (its artifacts: S3, packaging NONE)
    #[arg(long, value_name = "PROJECT")]
    project: Option<String>,
    /// How it deploys
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    /// The ECS cluster
    #[arg(long, value_name = "CLUSTER")]
    cluster: Option<String>,
    /// The ECS service
    #[arg(long, value_name = "SERVICE")]
    service: Option<String>,
    /// The pipeline's name (the repository's name unless given)
    #[arg(long, value_name = "NAME")]
    pipeline: Option<String>,
    /// An SNS topic whose subscribers approve each deployment (none: no approval stage)
    #[arg(long, value_name = "ARN")]
    approval_topic: Option<String>,
    /// The CodeDeploy application (blue_green; the service's name unless given)
    #[arg(long, value_name = "NAME")]
    application: Option<String>,
    /// The CodeDeploy deployment group (blue_green; SERVICE-CLUSTER unless given)
    #[arg(long, value_name = "NAME")]
    deployment_group: Option<String>,
    /// The task execution role's ARN, with which ECS pulls the image (ecsTaskExecutionRole in your account unless
    /// given)
    #[arg(long, value_name = "ARN")]
    execution_role: Option<String>,
    /// Where to write the files
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Overwrite files that are there
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Strategy {
    /// CodeDeploy blue/green (needs an application and a deployment group)
    BlueGreen,
    /// ECS rolling update
    Rolling,
    /// ECS's own blue/green
    EcsBlueGreen,
    /// ECS's own linear
    EcsLinear,
    /// ECS's own canary
    EcsCanary,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Self::BlueGreen => "blue_green",
            Self::Rolling => "rolling",
            Self::EcsBlueGreen => "ecs_blue_green",
            Self::EcsLinear => "ecs_linear",
            Self::EcsCanary => "ecs_canary",
        }
    }
}

/// What the files are made of, every answer given.
struct Answers {
    pipeline: String,
    repository: String,
    project: String,
    strategy: Strategy,
    cluster: String,
    service: String,
    approval_topic: Option<String>,
    application: String,
    deployment_group: String,
    execution_role: String,
}

impl Init {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let answers = self.answers(target).await?;
        let files = files(&answers)?;
        let paths: Vec<(PathBuf, &String)> = files.iter().map(|(name, text)| (self.dir.join(name), text)).collect();
        let there: Vec<String> =
            paths.iter().filter(|(path, _)| path.exists()).map(|(path, _)| path.display().to_string()).collect();
        if !there.is_empty() && !self.force {
            bail!("{} already there: nothing was written (--force overwrites)", there.join(", "));
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        for (path, text) in &paths {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        let written: Vec<String> = paths.iter().map(|(path, _)| path.display().to_string()).collect();
        if target.json {
            println!("{}", json!({ "pipeline": answers.pipeline, "written": written }));
        } else {
            anstream::println!("wrote {}", written.join(", "));
            let toml = self.dir.join("pipelines.toml");
            anstream::println!(
                "next: commit the build files to {}, then `sluice publish {}`",
                answers.repository,
                toml.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The options, and what a person at a terminal answers for those not given.
    async fn answers(&self, target: &Target) -> Result<Answers> {
        let ask = Ask { terminal: std::io::stdin().is_terminal() };
        let repository =
            ask.value(&self.repository, "repository", "--repository", "the GitHub repository (owner/name)", None)?;
        let repo_name = repository.rsplit('/').next().unwrap_or(&repository).to_owned();
        let pipeline = self.pipeline.clone().unwrap_or_else(|| pipeline_name(&repo_name));
        let project = ask.value(
            &self.project,
            "project",
            "--project",
            "the CodeBuild project",
            Some(format!("{pipeline}-build")),
        )?;
        let strategy = match self.strategy {
            Some(strategy) => strategy,
            None if ask.terminal => {
                let names: Vec<&str> = Strategy::value_variants().iter().map(|s| s.name()).collect();
                let said = ask.line(&format!("strategy ({})", names.join(", ")), Some("rolling".into()))?;
                Strategy::from_str(&said, true)
                    .map_err(|_| anyhow!("{said:?} is not a strategy: {}", names.join(", ")))?
            }
            None => Strategy::Rolling,
        };
        let cluster = ask.value(&self.cluster, "cluster", "--cluster", "the ECS cluster", None)?;
        let service = ask.value(&self.service, "service", "--service", "the ECS service", Some(pipeline.clone()))?;
        let application = self.application.clone().unwrap_or_else(|| service.clone());
        let deployment_group = self.deployment_group.clone().unwrap_or_else(|| format!("{service}-{cluster}"));
        let execution_role = match &self.execution_role {
            Some(role) => role.clone(),
            None => {
                // ecsTaskExecutionRole in the caller's account, when AWS says which that is.
                let account = crate::stack::account(&target.aws().await).await.ok();
                let role = account.map(|account| format!("arn:aws:iam::{account}:role/ecsTaskExecutionRole"));
                let given = None;
                match role {
                    Some(role) if !ask.terminal => role,
                    role => ask.value(
                        &given,
                        "task execution role",
                        "--execution-role",
                        "the task execution role's ARN",
                        role,
                    )?,
                }
            }
        };
        let approval_topic = self.approval_topic.clone();
        Ok(Answers {
            pipeline,
            repository,
            project,
            strategy,
            cluster,
            service,
            approval_topic,
            application,
            deployment_group,
            execution_role,
        })
    }
}

/// Asks at a terminal (on stderr, answered on stdin); elsewhere an option not given is a usage mistake.
struct Ask {
    terminal: bool,
}

impl Ask {
    fn value(
        &self,
        given: &Option<String>,
        what: &str,
        flag: &str,
        question: &str,
        default: Option<String>,
    ) -> Result<String> {
        if let Some(given) = given {
            return Ok(given.clone());
        }
        if !self.terminal {
            crate::usage_error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("sluice init needs {flag} (the {what}) when it cannot ask: its input is not a terminal"),
            );
        }
        self.line(question, default)
    }

    /// One answer; the default when the answer is empty.
    fn line(&self, question: &str, default: Option<String>) -> Result<String> {
        if !self.terminal {
            return default.ok_or_else(|| anyhow!("{question} is needed"));
        }
        loop {
            match &default {
                Some(default) => eprint!("{question} [{default}]: "),
                None => eprint!("{question}: "),
            }
            std::io::stderr().flush()?;
            let mut answer = String::new();
            if std::io::stdin().lock().read_line(&mut answer)? == 0 {
                bail!("no answer for {question}: the input ended");
            }
            match (answer.trim(), &default) {
                ("", Some(default)) => return Ok(default.clone()),
                ("", None) => continue,
                (answer, _) => return Ok(answer.to_owned()),
            }
        }
    }
}

/// A pipeline name from a repository's: letters, digits, '-' and '_', at most 64.
fn pipeline_name(repo: &str) -> String {
    // Lower case: the name is also the ECR repository's and the image's, which must be.
    let name: String = repo
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
        .take(64)
        .collect();
    if name.is_empty() { "app".into() } else { name }
}

/// The files to write, by name, each checked as sluice reads it.
fn files(answers: &Answers) -> Result<Vec<(&'static str, String)>> {
    let toml = pipelines_toml(answers);
    let definitions = Definitions::check("pipelines.toml", &toml)
        .map_err(|errors| anyhow!("the pipeline does not check: {errors}"))?;
    if let Some(warning) = definitions.warnings().first() {
        bail!("the pipeline checks with a warning: {warning}");
    }
    let pipeline = definitions.iter().next().context("the pipeline is there")?;
    let (_, deploy) = pipeline.deploy_stages().next().context("the pipeline deploys")?;
    let taskdef = taskdef_json(answers);
    sluice::deploy::render::task_definition(taskdef.as_bytes(), "registry/image:tag", deploy.target.container(), false)
        .map_err(|error| anyhow!("the task definition does not render: {error}"))?;
    let buildspec = buildspec_yml(answers);
    check_buildspec(&buildspec)?;
    let mut files = vec![("pipelines.toml", toml), ("buildspec.yml", buildspec), (TASK_DEFINITION_FILE, taskdef)];
    if answers.strategy == Strategy::BlueGreen {
        let appspec = appspec_yaml(answers);
        let hooks = sluice::deploy::render::hook_events(&deploy.target);
        sluice::deploy::render::appspec(appspec.as_bytes(), "arn:aws:ecs:task-definition/x:1", "hooks", &hooks)
            .map_err(|error| anyhow!("the AppSpec does not render: {error}"))?;
        files.push((APPSPEC_FILE, appspec));
    }
    Ok(files)
}

fn pipelines_toml(a: &Answers) -> String {
    let name = &a.pipeline;
    let mut toml = format!(
        "# sluice pipeline definitions, written by `sluice init`. Check with `sluice check pipelines.toml`, publish\n\
         # with `sluice publish pipelines.toml`; every field is in the README's \"Configuring pipelines\".\n\
         [pipelines.{name}]\n\
         mode = \"superseded\"                      # a newer push supersedes a waiting run; or \"queued\"\n\n\
         [pipelines.{name}.source]\n\
         repository = {repository}\n\
         # no branches or tags given: pushes to the default branch only\n\n\
         [pipelines.{name}.build]\n\
         project = {project}\n",
        repository = quoted(&a.repository),
        project = quoted(&a.project),
    );
    if let Some(topic) = &a.approval_topic {
        toml += &format!("\n[pipelines.{name}.approval]\ntopic = {}\ntimeout = \"2d\"\n", quoted(topic));
    }
    toml += &format!(
        "\n[pipelines.{name}.deploy]\nstrategy = \"{}\"\ncluster = {}\nservice = {}\n",
        a.strategy.name(),
        quoted(&a.cluster),
        quoted(&a.service)
    );
    match a.strategy {
        Strategy::BlueGreen => {
            toml += &format!(
                "application = {}\ndeployment_group = {}\ndeployment_config = \"CodeDeployDefault.ECSAllAtOnce\"\n",
                quoted(&a.application),
                quoted(&a.deployment_group)
            );
        }
        Strategy::Rolling => toml += "circuit_breaker = { enable = true, rollback = true }\n",
        Strategy::EcsBlueGreen => toml += "bake_time = \"5m\"\n",
        Strategy::EcsLinear => toml += "linear = { step_percent = 10, step_bake_time = \"6m\" }\n",
        Strategy::EcsCanary => toml += "canary = { percent = 5, bake_time = \"10m\" }\n",
    }
    toml
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn taskdef_json(a: &Answers) -> String {
    let taskdef = json!({
        "family": a.pipeline,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": a.execution_role,
        "containerDefinitions": [{
            "name": a.pipeline,
            "image": IMAGE_PLACEHOLDER,
            "essential": true,
            "portMappings": [{ "containerPort": 8080, "protocol": "tcp" }],
        }],
    });
    serde_json::to_string_pretty(&taskdef).unwrap_or_default() + "\n"
}

/// The build: push the image to the ECR repository named as the pipeline, in the build's own account and region,
/// then leave what sluice reads in the artifacts.
fn buildspec_yml(a: &Answers) -> String {
    format!(
        "# Written by `sluice init`: build and push the image to the ECR repository {name} in the build's account and\n\
         # region, then leave what sluice reads in the artifacts (artifacts type S3, packaging NONE).\n\
         version: 0.2\n\
         phases:\n  \
           pre_build:\n    \
             commands:\n      \
               - ACCOUNT_ID=$(echo \"$CODEBUILD_BUILD_ARN\" | cut -d: -f5)\n      \
               - REPOSITORY_URI=\"$ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com/{name}\"\n      \
               - aws ecr get-login-password | docker login --username AWS --password-stdin \"${{REPOSITORY_URI%%/*}}\"\n  \
           build:\n    \
             commands:\n      \
               - docker build -t \"$REPOSITORY_URI:$CODEBUILD_RESOLVED_SOURCE_VERSION\" .\n  \
           post_build:\n    \
             commands:\n      \
               - docker push \"$REPOSITORY_URI:$CODEBUILD_RESOLVED_SOURCE_VERSION\"\n      \
               - printf '{{\"ImageURI\":\"%s\"}}' \"$REPOSITORY_URI:$CODEBUILD_RESOLVED_SOURCE_VERSION\" > imageDetail.json\n\
         artifacts:\n  \
           files:\n{files}",
        name = a.pipeline,
        files = build_outputs(a).iter().map(|file| format!("    - {file}\n")).collect::<String>(),
    )
}

/// The files sluice reads from the build's artifacts.
fn build_outputs(a: &Answers) -> Vec<&'static str> {
    let mut files = vec!["imageDetail.json", TASK_DEFINITION_FILE];
    if a.strategy == Strategy::BlueGreen {
        files.push(APPSPEC_FILE);
    }
    files
}

/// The buildspec is YAML whose artifacts hold `imageDetail.json` and the task definition, and whose commands write
/// `imageDetail.json` with an `ImageURI`.
fn check_buildspec(text: &str) -> Result<()> {
    let spec: serde_json::Value =
        serde_norway::from_str(text).map_err(|error| anyhow!("the buildspec is not YAML: {error}"))?;
    let files: Vec<&str> = spec
        .pointer("/artifacts/files")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .collect();
    for needed in ["imageDetail.json", TASK_DEFINITION_FILE] {
        if !files.contains(&needed) {
            bail!("the buildspec's artifacts leave out {needed}");
        }
    }
    let commands = spec.pointer("/phases/post_build/commands").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    if !commands.iter().filter_map(|c| c.as_str()).any(|c| c.contains("ImageURI") && c.contains("imageDetail.json")) {
        bail!("the buildspec does not write imageDetail.json's ImageURI");
    }
    Ok(())
}

fn appspec_yaml(a: &Answers) -> String {
    format!(
        "# Written by `sluice init`: the service CodeDeploy deploys; sluice puts the task definition it registers in\n\
         # place of {TASK_DEFINITION_PLACEHOLDER} and adds the lifecycle hooks it answers.\n\
         version: 0.0\n\
         Resources:\n  \
           - TargetService:\n      \
               Type: AWS::ECS::Service\n      \
               Properties:\n        \
                 TaskDefinition: {TASK_DEFINITION_PLACEHOLDER}\n        \
                 LoadBalancerInfo:\n          \
                   ContainerName: \"{name}\"\n          \
                   ContainerPort: 8080\n",
        name = a.pipeline
    )
}
