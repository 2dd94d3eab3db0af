//! `sluice init`: a starting pipeline and the build files that leave what sluice reads, written only when each
//! checks, never over a file without --force; asked for at a terminal.

mod common;

use anyhow::Result;
use common::{OnATerminal, sluice, stderr, stdout};
use sluice_integration::workspace_root;

/// An empty directory under target/ for one test.
fn empty_dir(name: &str) -> Result<std::path::PathBuf> {
    let dir = workspace_root().join("target").join("cli-init").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `sluice init` with everything on the command line: `repository`'s pipeline building with web-build and
/// deploying service web of cluster prod by `strategy`, into `dir`, then `more`.
fn init(repository: &str, strategy: &str, dir: &str, more: &[&str]) -> std::process::Output {
    let args = ["init", "--repository", repository, "--project", "web-build", "--strategy", strategy];
    let target = ["--cluster", "prod", "--service", "web", "--dir", dir];
    sluice(&[&args[..], &target, more].concat())
}

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

#[test]
fn init_writes_a_pipeline_that_checks_and_build_files_that_leave_what_sluice_reads() -> Result<()> {
    let dir = empty_dir("rolling")?;
    let dir_arg = dir.to_string_lossy().into_owned();
    // GIVEN everything on the command line, and no terminal to ask at
    let written = init("acme/web", "rolling", &dir_arg, &[]);
    assert!(written.status.success(), "{}", stderr(&written));
    assert!(stdout(&written).starts_with("wrote "), "{}", stdout(&written));
    // THEN the pipeline checks, and says what it does
    let toml = dir.join("pipelines.toml").to_string_lossy().into_owned();
    let checked = sluice(&["check", &toml]);
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert_eq!(stderr(&checked), "", "no warnings");
    assert!(
        stdout(&checked)
            .contains("web: acme/web pushes to the default branch; build web-build; rolling update of prod/web"),
        "{}",
        stdout(&checked)
    );
    // AND the build leaves imageDetail.json (with the image it pushed) and the task definition with the placeholder
    let buildspec = read(&dir, "buildspec.yml");
    let spec: serde_json::Value = serde_norway::from_str(&buildspec)?;
    assert_eq!(spec["artifacts"]["files"], serde_json::json!(["imageDetail.json", "taskdef.json"]), "{buildspec}");
    assert!(buildspec.contains("> imageDetail.json"), "{buildspec}");
    let taskdef: serde_json::Value = serde_json::from_str(&read(&dir, "taskdef.json"))?;
    assert_eq!(taskdef["containerDefinitions"][0]["image"], "<IMAGE1_NAME>");
    // the execution role in the caller's account (moto's), as STS says
    assert_eq!(taskdef["executionRoleArn"], "arn:aws:iam::123456789012:role/ecsTaskExecutionRole");
    // AND no AppSpec: a rolling update has none
    assert!(!dir.join("appspec.yaml").exists());
    Ok(())
}

#[test]
fn init_for_codedeploy_writes_an_appspec_and_never_overwrites_without_force() -> Result<()> {
    let dir = empty_dir("blue-green")?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let role = ["--execution-role", "arn:aws:iam::111122223333:role/web-exec"];
    let first = init("acme/web", "blue_green", &dir_arg, &role);
    assert!(first.status.success(), "{}", stderr(&first));
    let appspec = read(&dir, "appspec.yaml");
    assert!(appspec.contains("TaskDefinition: <TASK_DEFINITION>"), "{appspec}");
    assert!(read(&dir, "buildspec.yml").contains("    - appspec.yaml\n"));
    let toml = read(&dir, "pipelines.toml");
    assert!(toml.contains("application = \"web\"\ndeployment_group = \"web-prod\""), "{toml}");

    // A second init finds the files there: it writes none of them, and says which were there
    std::fs::write(dir.join("taskdef.json"), "mine")?;
    let again = init("acme/web", "blue_green", &dir_arg, &role);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already there: nothing was written (--force overwrites)"), "{}", stderr(&again));
    assert_eq!(read(&dir, "taskdef.json"), "mine");
    // --force overwrites them
    let forced = init("acme/web", "blue_green", &dir_arg, &[&role[..], &["--force"]].concat());
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(read(&dir, "taskdef.json").contains("arn:aws:iam::111122223333:role/web-exec"));
    Ok(())
}

#[test]
fn init_without_a_terminal_names_what_it_needs_and_refuses_what_would_not_check() -> Result<()> {
    let dir = empty_dir("refused")?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let missing = sluice(&["init", "--project", "web-build", "--dir", &dir_arg]);
    assert_eq!(missing.status.code(), Some(2), "a usage mistake");
    assert!(stderr(&missing).contains("sluice init needs --repository"), "{}", stderr(&missing));
    let unknown = sluice(&["init", "--strategy", "recreate", "--dir", &dir_arg]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("invalid value 'recreate'"), "{}", stderr(&unknown));
    // A repository that is not owner/name: the pipeline would not check, so nothing is written
    let wrong = init("acme", "rolling", &dir_arg, &[]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("must look like owner/name"), "{}", stderr(&wrong));
    assert_eq!(std::fs::read_dir(&dir)?.count(), 0, "nothing written");
    Ok(())
}

#[test]
fn init_at_a_terminal_asks_for_what_is_missing_offering_defaults() -> Result<()> {
    let dir = empty_dir("asked")?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let mut person = OnATerminal::typing(&["init", "--dir", &dir_arg], &[])?;
    // repository, then Enter for the project's default, a strategy, a cluster, Enter for the service's default and
    // Enter for the execution role's
    for answer in ["acme/shop", "", "ecs_canary", "prod", "", ""] {
        person.types(answer)?;
    }
    let (code, screen) = person.finish()?;
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("the GitHub repository (owner/name): "), "{screen}");
    assert!(screen.contains("the CodeBuild project [shop-build]: "), "{screen}");
    let toml = read(&dir, "pipelines.toml");
    assert!(toml.contains("[pipelines.shop.build]\nproject = \"shop-build\""), "{toml}");
    assert!(toml.contains("strategy = \"ecs_canary\"\ncluster = \"prod\"\nservice = \"shop\""), "{toml}");
    Ok(())
}

#[test]
fn init_names_the_pipeline_in_lower_case_as_its_ecr_repository_must_be() -> Result<()> {
    let dir = empty_dir("mixed-case")?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let written = init("Acme/Web.App", "rolling", &dir_arg, &[]);
    assert!(written.status.success(), "{}", stderr(&written));
    let toml = read(&dir, "pipelines.toml");
    assert!(toml.contains("[pipelines.web-app]"), "{toml}");
    assert!(read(&dir, "buildspec.yml").contains("web-app"), "the image's repository is named so too");
    Ok(())
}
