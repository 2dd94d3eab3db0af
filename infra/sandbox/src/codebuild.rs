//! A stand-in for CodeBuild, for what moto does not do: builds that finish. It answers the CodeBuild API calls
//! sluice makes (awsJson 1.1 StartBuild and BatchGetBuilds, reached through `AWS_ENDPOINT_URL_CODEBUILD` or a
//! client's endpoint), then plays the build: it writes the build's artifacts to S3 and publishes the documented
//! "CodeBuild Build State Change" events (IN_PROGRESS, then SUCCEEDED or FAILED) to EventBridge
//! (<https://docs.aws.amazon.com/codebuild/latest/userguide/sample-build-notifications.html>). What each project's
//! builds do is scripted. A test project's builds make a test report, as a buildspec's `reports` section does: the
//! build lists it in `reportArns`, and BatchGetReports and DescribeTestCases answer for it as CodeBuild documents
//! (<https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BatchGetReports.html>,
//! <https://docs.aws.amazon.com/codebuild/latest/APIReference/API_DescribeTestCases.html>).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use serde_json::{Value, json};

use crate::aws_json::{self, Endpoint, Response, error, reply};

/// AWS's sample state-change event, whose shape every event the sandbox publishes keeps.
const SAMPLE_EVENT: &str = include_str!("../../../shared/tests/fixtures/example-codebuild-state-change.json");
const SAMPLE_APP: [(&str, &str); 2] = [
    ("taskdef.json", include_str!("../../sample-app/taskdef.json")),
    ("appspec.yaml", include_str!("../../sample-app/appspec.yaml")),
];
const TARGET: &str = "CodeBuild_20161006.";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// What a project's builds do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// Writes imageDetail.json and the sample app's taskdef.json and appspec.yaml, then SUCCEEDED.
    Succeed,
    /// FAILED, with `phase` the phase that failed.
    FailIn(String),
    /// STOPPED (someone stopped it) during `phase`.
    StopIn(String),
    /// TIMED_OUT during `phase`.
    TimeOutIn(String),
    /// Succeeds as `Succeed` does (BatchGetBuilds says so), but its state-change events are lost.
    Lost,
    /// A test build: its report (report group `<project>-reports`) has these cases; the build SUCCEEDED, or FAILED
    /// in phase BUILD when `fails` (a buildspec whose test command exits non-zero).
    Tests { cases: Vec<TestCase>, fails: bool },
    /// A test build that SUCCEEDED, but whose report CodeBuild could not make (status FAILED, no test summary: the
    /// buildspec named files that are not test results).
    UnmadeReport,
}

/// One test case of a test report: its prefix (a JUnit class), name, status (SUCCEEDED, FAILED, ERROR, SKIPPED or
/// UNKNOWN) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    pub prefix: String,
    pub name: String,
    pub status: String,
    pub message: Option<String>,
}

impl TestCase {
    pub fn new(prefix: &str, name: &str, status: &str, message: Option<&str>) -> Self {
        TestCase { prefix: prefix.into(), name: name.into(), status: status.into(), message: message.map(Into::into) }
    }
}

/// Where the played builds put things: artifacts in `bucket` (under `<project>/<build uuid>/`), events on `bus`.
#[derive(Clone)]
pub struct Outputs {
    pub s3: aws_sdk_s3::Client,
    /// Where a build pushes its image (moto's ECR): a repository named after the project, tagged with the commit.
    pub ecr: aws_sdk_ecr::Client,
    pub bucket: String,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub bus: String,
    /// How long a build takes, on the compressed clock of a test.
    pub duration: Duration,
}

#[derive(Default)]
struct Builds {
    projects: HashMap<String, Scenario>,
    builds: Vec<Value>,
    /// Each test report made (as BatchGetReports describes it), with its cases.
    reports: Vec<(Value, Vec<TestCase>)>,
}

/// The CodeBuild stand-in, serving on a loopback port until dropped.
pub struct CodeBuildSandbox {
    /// The endpoint to give CodeBuild clients.
    pub endpoint: String,
    state: Arc<Mutex<Builds>>,
    _server: Endpoint,
}

fn lock(state: &Mutex<Builds>) -> std::sync::MutexGuard<'_, Builds> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CodeBuildSandbox {
    pub async fn start(outputs: Outputs) -> Result<Self> {
        let state = Arc::new(Mutex::new(Builds::default()));
        let shared = Arc::clone(&state);
        let server = aws_json::serve(TARGET, "InvalidInputException", move |operation, input| {
            let response = answer(&shared, &outputs, &operation, &input);
            async move { response }
        })
        .await?;
        Ok(Self { endpoint: server.url.clone(), state, _server: server })
    }

    /// Declares a project and what its builds do.
    pub fn project(&self, name: &str, scenario: Scenario) {
        lock(&self.state).projects.insert(name.to_owned(), scenario);
    }

    /// The builds started so far, as BatchGetBuilds describes them.
    pub fn builds(&self) -> Vec<Value> {
        lock(&self.state).builds.clone()
    }
}

fn answer(state: &Arc<Mutex<Builds>>, outputs: &Outputs, operation: &str, input: &Value) -> Response {
    match operation {
        "StartBuild" => start_build(state, outputs, input),
        "BatchGetBuilds" => {
            let builds = lock(state).builds.clone();
            let ids: Vec<&str> = input["ids"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let found: Vec<&Value> =
                builds.iter().filter(|b| ids.iter().any(|id| b["id"] == *id || b["arn"] == *id)).collect();
            let missing: Vec<&&str> =
                ids.iter().filter(|id| !found.iter().any(|b| b["id"] == **id || b["arn"] == **id)).collect();
            reply(200, &json!({ "builds": found, "buildsNotFound": missing }))
        }
        "BatchGetReports" => {
            let reports = lock(state).reports.clone();
            let arns: Vec<&str> =
                input["reportArns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            if arns.is_empty() || arns.len() > 100 {
                return error("InvalidInputException", "reportArns must have 1 to 100 items");
            }
            let found: Vec<&Value> =
                reports.iter().map(|(report, _)| report).filter(|r| arns.iter().any(|a| r["arn"] == *a)).collect();
            let missing: Vec<&&str> = arns.iter().filter(|a| !found.iter().any(|r| r["arn"] == **a)).collect();
            reply(200, &json!({ "reports": found, "reportsNotFound": missing }))
        }
        "DescribeTestCases" => describe_test_cases(state, input),
        other => error("InvalidInputException", &format!("the CodeBuild sandbox does not play {other}")),
    }
}

/// DescribeTestCases: a report's cases, filtered by one status, `maxResults` (1 to 1000, 50 unless given) a page.
fn describe_test_cases(state: &Arc<Mutex<Builds>>, input: &Value) -> Response {
    let arn = input["reportArn"].as_str().unwrap_or_default();
    let Some((report, cases)) = lock(state).reports.iter().find(|(report, _)| report["arn"] == arn).cloned() else {
        return error("ResourceNotFoundException", &format!("Report not found: {arn}"));
    };
    let max = input["maxResults"].as_u64().unwrap_or(50);
    if !(1..=1000).contains(&max) {
        return error("InvalidInputException", "maxResults must be from 1 to 1000");
    }
    let status = input["filter"]["status"].as_str();
    let from: usize = input["nextToken"].as_str().and_then(|token| token.parse().ok()).unwrap_or(0);
    let matching: Vec<&TestCase> = cases.iter().filter(|case| status.is_none_or(|s| case.status == s)).collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(from)
        .take(max as usize)
        .map(|case| {
            json!({
                "reportArn": report["arn"], "testRawDataPath": "reports/junit.xml",
                "prefix": case.prefix, "name": case.name, "status": case.status,
                "durationInNanoSeconds": 12_000_000, "message": case.message,
                "expired": report["expired"], "testSuiteName": case.prefix,
            })
        })
        .collect();
    let next = (from + page.len() < matching.len()).then(|| (from + page.len()).to_string());
    reply(200, &json!({ "testCases": page, "nextToken": next }))
}

/// The auto-retry limit of the sandbox's projects (CodeBuild's `autoRetryLimit`, 0 to 10): a project a team set to
/// retry failed builds, so that a StartBuild without an override shows.
pub const PROJECT_AUTO_RETRY_LIMIT: i64 = 2;

fn start_build(state: &Arc<Mutex<Builds>>, outputs: &Outputs, input: &Value) -> Response {
    let project = input["projectName"].as_str().unwrap_or_default().to_owned();
    let Some(scenario) = lock(state).projects.get(&project).cloned() else {
        return error(
            "ResourceNotFoundException",
            &format!("Project cannot be found: arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{project}"),
        );
    };
    let number = lock(state).builds.len() + 1;
    let uuid = format!("00000000-0000-4000-8000-{number:012}");
    let id = format!("{project}:{uuid}");
    let arn = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{id}");
    let source_version = input["sourceVersion"].as_str().unwrap_or_default().to_owned();
    let variables = input["environmentVariablesOverride"].clone();
    // The build's auto-retry limit: StartBuild's override, else the project's (the sandbox's projects retry twice).
    let retry_limit = input["autoRetryLimitOverride"].as_i64().unwrap_or(PROJECT_AUTO_RETRY_LIMIT);
    let now = Utc::now();
    let build = json!({
        "id": id, "arn": arn, "buildNumber": number, "projectName": project,
        "sourceVersion": source_version, "buildStatus": "IN_PROGRESS", "currentPhase": "SUBMITTED",
        "startTime": now.timestamp_millis() as f64 / 1000.0, "buildComplete": false,
        "environment": { "type": "ARM_CONTAINER", "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
                         "computeType": "BUILD_GENERAL1_SMALL", "environmentVariables": variables },
        "autoRetryConfig": { "autoRetryLimit": retry_limit, "autoRetryNumber": 0 },
    });
    lock(state).builds.push(build.clone());
    let played =
        Played { state: Arc::clone(state), outputs: outputs.clone(), project, uuid, arn, source_version, variables };
    aws_json::play("a CodeBuild build", played.play(scenario));
    reply(200, &json!({ "build": build }))
}

/// One build being played.
struct Played {
    state: Arc<Mutex<Builds>>,
    outputs: Outputs,
    project: String,
    uuid: String,
    arn: String,
    source_version: String,
    variables: Value,
}

impl Played {
    /// What a buildspec's `docker push` does: the image (a manifest of its own, made distinct by the build's id)
    /// in the project's repository, tagged with the commit; the repository is made on the first push.
    async fn push_image(&self) -> Result<()> {
        let ecr = &self.outputs.ecr;
        let created = ecr.create_repository().repository_name(&self.project).send().await;
        if let Err(error) = created
            && !error.as_service_error().is_some_and(|e| e.is_repository_already_exists_exception())
        {
            return Err(anyhow::Error::new(error).context("creating the image's repository"));
        }
        let layer = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.uuid.as_bytes());
        let layer: String = layer.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": format!("sha256:{layer}") },
            "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2811, "digest": format!("sha256:{layer}") }],
        });
        let pushed = ecr
            .put_image()
            .repository_name(&self.project)
            .image_tag(&self.source_version)
            .image_manifest(manifest.to_string())
            .send()
            .await;
        match pushed {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_image_already_exists_exception()) => Ok(()),
            Err(error) => Err(anyhow::Error::new(error).context("pushing the image")),
        }
    }

    async fn play(self, scenario: Scenario) -> Result<()> {
        let events = scenario != Scenario::Lost;
        tokio::time::sleep(self.outputs.duration / 2).await;
        if events {
            self.publish("IN_PROGRESS", "BUILD", None, None).await?;
        }
        tokio::time::sleep(self.outputs.duration / 2).await;
        let prefix = format!("{}/{}", self.project, self.uuid);
        let (status, failed) = match &scenario {
            Scenario::Tests { cases, fails } => {
                self.report(cases, true);
                if *fails { ("FAILED", Some("BUILD")) } else { ("SUCCEEDED", None) }
            }
            Scenario::UnmadeReport => {
                self.report(&[], false);
                ("SUCCEEDED", None)
            }
            Scenario::FailIn(phase) => ("FAILED", Some(phase.as_str())),
            Scenario::StopIn(phase) => ("STOPPED", Some(phase.as_str())),
            Scenario::TimeOutIn(phase) => ("TIMED_OUT", Some(phase.as_str())),
            Scenario::Succeed | Scenario::Lost => {
                self.push_image().await?;
                let image =
                    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{}:{}", self.project, self.source_version);
                let image_detail = json!({ "ImageURI": image }).to_string();
                let files = [("imageDetail.json", image_detail.as_str()), SAMPLE_APP[0], SAMPLE_APP[1]];
                for (name, content) in files {
                    self.outputs
                        .s3
                        .put_object()
                        .bucket(&self.outputs.bucket)
                        .key(format!("{prefix}/{name}"))
                        .body(content.as_bytes().to_vec().into())
                        .send()
                        .await
                        .with_context(|| format!("writing {name}"))?;
                }
                ("SUCCEEDED", None)
            }
        };
        let location = format!("arn:aws:s3:::{}/{prefix}", self.outputs.bucket);
        {
            let phases: Vec<Value> = [
                "SUBMITTED",
                "QUEUED",
                "PROVISIONING",
                "DOWNLOAD_SOURCE",
                "INSTALL",
                "PRE_BUILD",
                "BUILD",
                "POST_BUILD",
            ]
            .iter()
            .map(|phase| {
                let phase_status = if failed == Some(*phase) { status } else { "SUCCEEDED" };
                json!({ "phaseType": phase, "phaseStatus": phase_status })
            })
            .collect();
            let mut builds = lock(&self.state);
            if let Some(build) = builds.builds.iter_mut().find(|b| b["arn"] == self.arn.as_str()) {
                build["buildStatus"] = json!(status);
                build["currentPhase"] = json!("COMPLETED");
                build["buildComplete"] = json!(true);
                build["phases"] = json!(phases);
                build["artifacts"] = json!({ "location": location });
            }
        }
        if !events {
            return Ok(());
        }
        self.publish(status, "COMPLETED", failed, Some(location)).await
    }

    /// What a buildspec's `reports` section makes: a test report of report group `<project>-reports` (the name
    /// CodeBuild gives a group the buildspec defines), listed in the build's `reportArns`.
    fn report(&self, cases: &[TestCase], made: bool) {
        let group = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/{}-reports", self.project);
        let arn = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:report/{}-reports:{}", self.project, self.uuid);
        let mut counts: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for case in cases {
            *counts.entry(case.status.as_str()).or_default() += 1;
        }
        let now = Utc::now().timestamp_millis() as f64 / 1000.0;
        let report = json!({
            "arn": arn, "type": "TEST", "name": format!("{}-reports", self.project), "reportGroupArn": group,
            "executionId": self.arn, "status": "SUCCEEDED", "created": now, "expired": now + 30.0 * 86_400.0,
            "exportConfig": { "exportConfigType": "NO_EXPORT" }, "truncated": false,
            "testSummary": { "total": cases.len(), "statusCounts": counts, "durationInNanoSeconds": 12_000_000 * cases.len() },
        });
        let mut report = report;
        if !made {
            report["status"] = json!("FAILED");
            report.as_object_mut().map(|fields| fields.remove("testSummary"));
        }
        let mut builds = lock(&self.state);
        if let Some(build) = builds.builds.iter_mut().find(|b| b["arn"] == self.arn.as_str()) {
            build["reportArns"] = json!([arn]);
        }
        builds.reports.push((report, cases.to_vec()));
    }

    /// Publishes a state change shaped as AWS's sample, with this build's facts.
    async fn publish(&self, status: &str, phase: &str, failed: Option<&str>, location: Option<String>) -> Result<()> {
        let sample: Value = serde_json::from_str(SAMPLE_EVENT)?;
        let mut detail = sample["detail"].clone();
        detail["build-status"] = json!(status);
        detail["project-name"] = json!(self.project);
        detail["build-id"] = json!(self.arn);
        detail["current-phase"] = json!(phase);
        let information = &mut detail["additional-information"];
        information["build-complete"] = json!(status != "IN_PROGRESS");
        information["source-version"] = json!(self.source_version);
        information["artifact"]["location"] = json!(location.unwrap_or_default());
        let variables: Vec<Value> = self
            .variables
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| json!({ "name": v["name"], "type": "PLAINTEXT", "value": v["value"] }))
            .collect();
        information["environment"]["environment-variables"] = json!(variables);
        if let Some(phases) = information["phases"].as_array_mut() {
            for entry in phases.iter_mut() {
                if failed.is_some_and(|f| entry["phase-type"] == f) {
                    entry["phase-status"] = json!(status);
                }
            }
        }
        let resources = [self.arn.clone()];
        let (eventbridge, bus) = (&self.outputs.eventbridge, &self.outputs.bus);
        aws_json::put_event(eventbridge, bus, "aws.codebuild", "CodeBuild Build State Change", &resources, &detail)
            .await
    }
}
