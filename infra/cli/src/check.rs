//! `sluice check FILE...`: every mistake in each definitions file, at its line, or what each pipeline does.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use serde_json::json;
use sluice::definitions::{
    DefinitionError, Definitions, DeployTarget, GlobFilter, MAX_TEXT, OnFailure, Pipeline, Source, StageKind, TestRun,
};

use crate::stack::Target;

/// Check pipeline definitions files: every mistake at its line, or what each pipeline does
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice check pipelines.toml\n  sluice check staging.toml production.toml\n  \
                        cat pipelines.toml | sluice --json check -")]
pub struct Check {
    /// The files to check; - reads standard input
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

/// The most errors `check` prints a file; the count of the others follows.
const SHOWN_ERRORS: usize = 50;

impl Check {
    pub fn run(self, target: &Target) -> Result<ExitCode> {
        if self.files.iter().filter(|file| *file == "-").count() > 1 {
            let once = "standard input (-) can be read once: name it once";
            crate::usage_error(clap::error::ErrorKind::ArgumentConflict, once);
        }
        if target.json {
            return Ok(check_json(&self.files));
        }
        let mut failed = false;
        let several = self.files.len() > 1;
        for file in &self.files {
            match load(file) {
                Ok((_, definitions)) => {
                    warn(&definitions);
                    let named = if several { format!("{file}: ") } else { String::new() };
                    anstream::println!("{named}ok: {}", summary(&definitions));
                }
                Err(error) => {
                    failed = true;
                    anstream::eprintln!("{error:#}");
                }
            }
        }
        Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }
}

/// How mistakes name `file`: `<stdin>` for `-`.
fn origin(file: &str) -> &str {
    if file == "-" { "<stdin>" } else { file }
}

/// The file (`-`: standard input), if it is no larger than what sluice stores: never more of it is read (`check
/// /dev/zero` ends at once).
fn read_definitions(file: &str) -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin().lock().take(MAX_TEXT as u64 + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|opened| opened.take(MAX_TEXT as u64 + 1).read_to_end(&mut bytes))
    };
    read.map_err(|error| anyhow!("cannot read {file}: {error}"))?;
    if bytes.len() > MAX_TEXT {
        bail!("{file}: more than {MAX_TEXT} bytes; sluice stores at most that (its table's items hold 400 KB)");
    }
    String::from_utf8(bytes).map_err(|error| {
        let at = error.utf8_error().valid_up_to();
        anyhow!("{file}: not UTF-8 text (byte {at} is not), as TOML files must be")
    })
}

/// The file's text and its definitions, or every mistake in it (the first fifty, then how many more).
pub fn load(file: &str) -> Result<(String, Definitions)> {
    let text = read_definitions(file)?;
    let origin = origin(file);
    let definitions = Definitions::check(origin, &text).map_err(|errors| {
        let count = errors.0.len();
        let shown: Vec<String> = errors.0.iter().take(SHOWN_ERRORS).map(ToString::to_string).collect();
        let more = match count.checked_sub(SHOWN_ERRORS) {
            Some(more @ 1..) => format!("\n... and {more} more"),
            _ => String::new(),
        };
        anyhow!("{}{more}\n{count} error{} in {origin}", shown.join("\n"), if count == 1 { "" } else { "s" })
    })?;
    Ok((text, definitions))
}

/// What `check` found that runs, but perhaps not as meant: told on stderr, one `warning:` line each.
pub fn warn(definitions: &Definitions) {
    for warning in definitions.warnings() {
        anstream::eprintln!("warning: {warning}");
    }
}

/// `sluice --json check FILE...`: every mistake as data (for editors and CI), and the pipelines of the files without
/// any, each naming its file; exits 1 with mistakes.
fn check_json(files: &[String]) -> ExitCode {
    let (mut pipelines, mut warnings, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for file in files {
        let text = match read_definitions(file) {
            Ok(text) => text,
            Err(error) => {
                // Not read at all (missing, too large, not UTF-8): one mistake, at no line.
                errors.push(json!({
                    "file": origin(file), "line": null, "column": null, "pipeline": null, "field": "",
                    "message": format!("{error:#}"),
                }));
                continue;
            }
        };
        let origin = origin(file);
        match Definitions::check(origin, &text) {
            Ok(definitions) => {
                pipelines.extend(definitions.iter().map(|p| {
                    json!({
                        "file": origin, "name": p.name, "repository": p.source.repository, "triggers": triggers(&p.source),
                        "gates": gates(p), "deploys": targets(p).join("; "), "stages": stages_json(p),
                    })
                }));
                warnings.extend(definitions.warnings().iter().map(mistake_json));
            }
            Err(found) => errors.extend(found.0.iter().map(mistake_json)),
        }
    }
    let ok = errors.is_empty();
    println!("{}", json!({ "ok": ok, "errors": errors, "pipelines": pipelines, "warnings": warnings }));
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// An error or a warning as data: where it is and what it says.
fn mistake_json(e: &DefinitionError) -> serde_json::Value {
    json!({
        "file": e.origin, "line": e.line, "column": e.column, "pipeline": e.pipeline, "field": e.field,
        "message": e.message,
    })
}

/// How many pipelines, then a line each: what triggers it, then its stages: what gates it and where it deploys.
pub fn summary(definitions: &Definitions) -> String {
    let count = definitions.len();
    let mut out = format!("{count} pipeline{}", if count == 1 { "" } else { "s" });
    for p in definitions.iter() {
        out += &format!(
            "\n  {}: {} {}; build {}{}",
            p.name,
            p.source.repository,
            triggers(&p.source),
            p.build.project,
            stages(p)
        );
    }
    out
}

/// A pipeline's stages after its build. Written with `[approval]` and `[deploy]` tables: `, approval by <topic>;
/// rolling update of prod/web`; with `[[stages]]`: `; stages staging (rolling update of staging/web) → sign-off
/// (approval by <topic>) → production (ecs_canary of prod/web)`.
fn stages(p: &Pipeline) -> String {
    if sluice::definitions::table_shaped(&p.stages) {
        let gates = gates(p);
        let gates = if gates.is_empty() { String::new() } else { format!(", {}", gates.join(", ")) };
        return format!("{gates}; {}", targets(p).join("; "));
    }
    let each: Vec<String> = p
        .stages
        .iter()
        .map(|stage| match &stage.kind {
            StageKind::Approval(approval) => format!("{} ({})", stage.name, approval_by(approval)),
            StageKind::Deploy(deploy) => {
                let (target, gates) = deploys(&deploy.target);
                let gates: String = gates.iter().map(|gate| format!(", {gate}")).collect();
                let mut soak = deploy.soak_secs.map(|secs| format!(", soaks {}", written(secs))).unwrap_or_default();
                if !deploy.alarms().is_empty() {
                    let strict = if deploy.strict_alarms() { ", strictly" } else { "" };
                    soak.push_str(&format!(" watched by {}{strict}", deploy.alarms().join(", ")));
                }
                format!("{} ({target}{gates}{}{soak})", stage.name, entry(deploy))
            }
            StageKind::Test(test) => {
                let asks = if matches!(test.on_failure, OnFailure::Ask(_)) { ", asks on failure" } else { "" };
                match &test.run {
                    TestRun::CodeBuild(project) => {
                        format!("{} (tests by CodeBuild project {project}{asks})", stage.name)
                    }
                    TestRun::Checks(checks) => format!("{} ({} checks{asks})", stage.name, checks.len()),
                }
            }
        })
        .collect();
    format!("; stages {}", each.join(" → "))
}

/// What pushes start a pipeline: `pushes to main, release/* (not release/old) when src/** changes`.
fn triggers(source: &Source) -> String {
    let globs = |filter: &GlobFilter| {
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

/// Who must agree before the pipeline deploys: each approval stage's topic, each pause's stage and topic; and when
/// its deploy stages may start (their windows, deny periods and entry alarms).
fn gates(p: &Pipeline) -> Vec<String> {
    let approvals = p.approval_stages().map(|(_, approval)| approval_by(approval));
    let pauses = p.deploy_stages().flat_map(|(_, deploy)| deploys(&deploy.target).1);
    let entries = p.deploy_stages().map(|(_, deploy)| entry(deploy)).filter(|entry| !entry.is_empty());
    approvals.chain(pauses).chain(entries.map(|entry| entry.trim_start_matches(", ").to_owned())).collect()
}

/// Who decides at an approval stage: `approval by <topic>`, and its named approvers: `, 2 of alice@example.com,
/// bob@example.com (not the pusher; operators arn:aws:iam::123456789012:role/release-*)`.
fn approval_by(approval: &sluice::definitions::Approval) -> String {
    let mut said = format!("approval by {}", approval.topic_arn);
    if let Some(approvers) = &approval.approvers {
        said.push_str(&format!(", {} of {}", approvers.required, approvers.emails.join(", ")));
        let mut notes = Vec::new();
        if approvers.forbid_pusher {
            notes.push("not the pusher".to_owned());
        }
        if !approvers.operators.is_empty() {
            notes.push(format!("operators {}", approvers.operators.join(", ")));
        }
        if !notes.is_empty() {
            said.push_str(&format!(" ({})", notes.join("; ")));
        }
    }
    said
}

/// When a deploy stage may start its deployment: `, windows mon-fri 09:00-16:00 Europe/Berlin, denied 2026-12-20
/// to 2027-01-04 Europe/Berlin, entered while prod-5xx is not in ALARM (waiting at most 1h)`; empty if always.
fn entry(deploy: &sluice::definitions::DeployStage) -> String {
    let mut said = String::new();
    if let Some(calendar) = &deploy.calendar {
        let windows: Vec<String> = calendar.windows.iter().map(ToString::to_string).collect();
        if !windows.is_empty() {
            said.push_str(&format!(", windows {}", windows.join("; ")));
        }
        for deny in &calendar.deny {
            said.push_str(&format!(", denied {}", deny.period()));
        }
    }
    if let Some(alarms) = &deploy.entry_alarms {
        let wait = written(alarms.timeout_secs);
        let not_in_alarm = match alarms.names.as_slice() {
            [one] => format!("{one} is not"),
            names => format!("none of {} is", names.join(", ")),
        };
        said.push_str(&format!(", entered while {not_in_alarm} in ALARM (waiting at most {wait})"));
    }
    said
}

/// Where each deploy stage deploys, in order.
fn targets(p: &Pipeline) -> Vec<String> {
    p.deploy_stages().map(|(_, deploy)| deploys(&deploy.target).0).collect()
}

/// Each stage as data: its name, kind, and what it asks or where it deploys.
fn stages_json(p: &Pipeline) -> Vec<serde_json::Value> {
    p.stages
        .iter()
        .map(|stage| match &stage.kind {
            StageKind::Approval(approval) => {
                json!({
                    "name": stage.name, "kind": stage.kind_name(), "topic": approval.topic_arn,
                    "approvers": approval.approvers.as_ref().map(|approvers| json!({
                        "emails": approvers.emails, "required": approvers.required,
                        "forbid_pusher": approvers.forbid_pusher, "operators": approvers.operators,
                    })),
                })
            }
            StageKind::Deploy(deploy) => {
                let (place, gates) = deploys(&deploy.target);
                json!({
                    "name": stage.name, "kind": stage.kind_name(), "strategy": deploy.target.strategy(), "deploys": place,
                    "gates": gates, "entry": entry(deploy).trim_start_matches(", "),
                })
            }
            StageKind::Test(test) => json!({
                "name": stage.name, "kind": stage.kind_name(), "codebuild": test.codebuild(), "checks": test.checks().len(),
                "timeout_minutes": test.timeout_minutes,
                "on_failure": if matches!(test.on_failure, OnFailure::Ask(_)) { "ask" } else { "fail" },
            }),
        })
        .collect()
}

/// Where a stage deploys (`rolling update of prod/web`), and who must agree within the deployment (a pause's stage
/// and topic).
fn deploys(target: &DeployTarget) -> (String, Vec<String>) {
    let place = match target {
        DeployTarget::BlueGreen(bg) => format!(
            "CodeDeploy blue/green of {}/{} ({}/{}, {})",
            bg.cluster, bg.service, bg.application, bg.deployment_group, bg.deployment_config
        ),
        DeployTarget::Rolling(rolling) => format!("rolling update of {}/{}", rolling.cluster, rolling.service),
        DeployTarget::EcsNative(native) => format!("{} of {}/{}", target.strategy(), native.cluster, native.service),
    };
    let gates = match target {
        DeployTarget::EcsNative(native) => {
            native.approval.iter().map(|pause| format!("approval at {} by {}", pause.stage, pause.topic_arn)).collect()
        }
        _ => Vec::new(),
    };
    (place, gates)
}

/// A duration as pipelines.toml writes it, in its largest whole unit: `30m`, `2h`, `45s`.
fn written(secs: u64) -> String {
    match secs {
        0 => "0s".to_owned(),
        _ if secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
        _ if secs.is_multiple_of(3_600) => format!("{}h", secs / 3_600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}
