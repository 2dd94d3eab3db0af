//! A stand-in for ECS rolling updates, for what moto does not do: rollouts that finish. It answers the ECS API calls
//! a rolling deploy makes (awsJson 1.1 RegisterTaskDefinition, UpdateService, DescribeServices) and plays each
//! rollout as the service's scenario says, publishing the documented "ECS Deployment State Change" events
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_service_deployment_events.html>): in progress,
//! then completed; or, when the new tasks fail and the deployment circuit breaker is on, failed, and with rollback
//! on, a rollback to the previous task definition
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html>). Each service runs
//! two tasks of the task definition it runs (ListTasks, DescribeTasks), whose containers report the digest their
//! image names, or, for an image named by tag, the digest the tag resolved to; a service can be told to run another
//! digest, as when a tag moved between the build and the rollout.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use serde_json::{Value, json};

use crate::aws_json::{self, Endpoint, Response, error, reply};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const TARGET: &str = "AmazonEC2ContainerServiceV20141113.";

/// What the new tasks of a service's rollouts do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// They start and pass their health checks: the deployment completes.
    Healthy,
    /// They keep failing to start: the circuit breaker, if on, fails the deployment (and rolls back if told to).
    TasksFail,
}

#[derive(Debug, Clone)]
struct Service {
    cluster: String,
    name: String,
    task_definition: String,
    rollout: Rollout,
    deployment_configuration: Value,
    deployments: Vec<Value>,
    /// The ECS-native service deployment under way or last made.
    current_service_deployment: Option<String>,
    /// The digest its tasks' containers run whatever their image names ([`EcsSandbox::runs_digest`]).
    runs_digest: Option<String>,
}

impl Service {
    fn arn(&self) -> String {
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{}/{}", self.cluster, self.name)
    }

    fn describe(&self) -> Value {
        json!({
            "serviceArn": self.arn(),
            "serviceName": self.name,
            "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}", self.cluster),
            "status": "ACTIVE",
            "desiredCount": 2,
            "taskDefinition": self.task_definition,
            "deploymentConfiguration": self.deployment_configuration,
            "deployments": self.deployments,
            "currentServiceDeployment": self.current_service_deployment,
            "launchType": "FARGATE",
        })
    }
}

/// A Lambda function ECS invokes at a lifecycle stage: it gets the payload and gives the invocation's result.
pub type StageFunction = Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Value> + Send>> + Send + Sync>;

#[derive(Default)]
struct State {
    /// ECS-native service deployments (DescribeServiceDeployments' records), by ARN.
    service_deployments: HashMap<String, Value>,
    /// Each hook invocation of a service deployment: (stage, payload, result), in order.
    invocations: HashMap<String, Vec<(String, Value, Value)>>,
    functions: HashMap<String, StageFunction>,
    /// CloudWatch alarms in ALARM.
    alarms: std::collections::HashSet<String>,
    app: Option<Arc<crate::sample_app::SampleApp>>,
    services: HashMap<(String, String), Service>,
    families: HashMap<String, u32>,
    /// Every registered task definition (as DescribeTaskDefinition answers it) and its tags, by ARN, in order.
    definitions: Vec<(String, Value, Value)>,
    deployments: u32,
    /// ContinueServiceDeployment's answers not yet acted on: the action, by paused hook id.
    answers: HashMap<String, String>,
    /// StopServiceDeployment's requests not yet acted on: the stop type, by service deployment ARN.
    stops: HashMap<String, String>,
    /// What a service deployment reports as its `lifecycleStage` while a hook at PRE_PRODUCTION_TRAFFIC_SHIFT runs.
    while_pre_production: WhilePreProduction,
}

/// What `lifecycleStage` a service deployment reports while the hooks at PRE_PRODUCTION_TRAFFIC_SHIFT (a PAUSE among
/// them) run. AWS's `ServiceDeploymentLifecycleStage` has no PRE_PRODUCTION_TRAFFIC_SHIFT, and its documentation does
/// not say which of its stages is reported there: the sandbox plays either plausible answer, and sluice must work
/// with both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhilePreProduction {
    /// The stage the deployment was in before (POST_TEST_TRAFFIC_SHIFT, or PRODUCTION_TRAFFIC_SHIFT between steps).
    #[default]
    StageBefore,
    /// The stage it is about to enter, PRODUCTION_TRAFFIC_SHIFT.
    StageEntered,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where rollouts publish their events, and how long a rollout takes on the test's compressed clock.
#[derive(Clone)]
pub struct Events {
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub bus: String,
    pub duration: Duration,
}

/// The ECS stand-in, serving on a loopback port until dropped.
pub struct EcsSandbox {
    /// The endpoint to give ECS clients.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    _server: Endpoint,
}

impl EcsSandbox {
    pub async fn start(events: Events) -> Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = aws_json::serve(TARGET, "InvalidParameterException", move |operation, input| {
            let response = answer(&shared, &events, &operation, &input);
            async move { response }
        })
        .await?;
        Ok(Self { endpoint: server.url.clone(), state, _server: server })
    }

    /// Declares `definition` (RegisterTaskDefinition's input) as registered before the sandbox started, as `arn`
    /// (`...:task-definition/family:revision`): what a service already runs. DescribeTaskDefinition answers it as ECS
    /// does, with its ARN, revision and status.
    pub fn registered(&self, arn: &str, mut definition: Value) {
        let revision = arn.rsplit_once(':').and_then(|(_, revision)| revision.parse::<u32>().ok()).unwrap_or(0);
        definition["taskDefinitionArn"] = json!(arn);
        definition["revision"] = json!(revision);
        definition["status"] = json!("ACTIVE");
        lock(&self.state).definitions.push((arn.to_owned(), definition, json!([])));
    }

    /// Declares a running service, on `task_definition`, whose rollouts do what `rollout` says.
    pub fn service(&self, cluster: &str, name: &str, task_definition: &str, rollout: Rollout) {
        let mut state = lock(&self.state);
        state.deployments += 1;
        let deployment = json!({
            "id": format!("ecs-svc/{:019}", state.deployments),
            "status": "PRIMARY",
            "taskDefinition": task_definition,
            "rolloutState": "COMPLETED",
            "desiredCount": 2, "runningCount": 2, "failedTasks": 0,
        });
        let service = Service {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            task_definition: task_definition.to_owned(),
            rollout,
            deployment_configuration: json!({ "minimumHealthyPercent": 100, "maximumPercent": 200 }),
            deployments: vec![deployment],
            current_service_deployment: None,
            runs_digest: None,
        };
        state.services.insert((cluster.to_owned(), name.to_owned()), service);
    }
}

impl EcsSandbox {
    /// Registers the Lambda function a lifecycle hook names (by function name or ARN).
    pub fn function<F, Fut>(&self, name: &str, function: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Value> + Send + 'static,
    {
        let function: StageFunction = Arc::new(move |payload| Box::pin(function(payload)));
        lock(&self.state).functions.insert(function_name(name), function);
    }

    /// What service deployments report as their `lifecycleStage` while paused before production traffic moves.
    pub fn while_pre_production(&self, reported: WhilePreProduction) {
        lock(&self.state).while_pre_production = reported;
    }

    /// The sample app whose listeners ECS-native deployments reroute.
    pub fn app(&self, app: Arc<crate::sample_app::SampleApp>) {
        lock(&self.state).app = Some(app);
    }

    /// Puts CloudWatch alarm `name` in ALARM (or takes it out).
    pub fn alarm(&self, name: &str, in_alarm: bool) {
        let mut state = lock(&self.state);
        if in_alarm {
            state.alarms.insert(name.to_owned());
        } else {
            state.alarms.remove(name);
        }
    }

    /// From now on, the containers of `cluster`'s `service` run `digest`, whatever image their task definition
    /// names (as when the tag a task definition names was moved to another image).
    pub fn runs_digest(&self, cluster: &str, service: &str, digest: &str) {
        if let Some(service) = lock(&self.state).services.get_mut(&(cluster.to_owned(), service.to_owned())) {
            service.runs_digest = Some(digest.to_owned());
        }
    }

    /// What tells the sandbox the task definition `cluster`'s `service` runs now: a CodeDeploy deployment moved it
    /// there ([`crate::codedeploy::CodeDeploySandbox::on_replaced`]).
    pub fn replacer(&self, cluster: &str, service: &str) -> impl Fn(&str) + Send + Sync + 'static {
        let (state, key) = (Arc::clone(&self.state), (cluster.to_owned(), service.to_owned()));
        move |task_definition: &str| {
            if let Some(service) = lock(&state).services.get_mut(&key) {
                service.task_definition = task_definition.to_owned();
            }
        }
    }

    /// Each hook invocation of a service deployment: (stage, payload, result), in order.
    pub fn invocations(&self, service_deployment: &str) -> Vec<(String, Value, Value)> {
        lock(&self.state).invocations.get(service_deployment).cloned().unwrap_or_default()
    }

    /// A service deployment as DescribeServiceDeployments gives it.
    pub fn service_deployment(&self, arn: &str) -> Option<Value> {
        lock(&self.state).service_deployments.get(arn).cloned()
    }
}

/// A function's name from its name or ARN (`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`).
fn function_name(name: &str) -> String {
    match name.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_owned(),
        None => name.to_owned(),
    }
}

/// `cluster` may be a name or an ARN; ECS's default cluster is `default`.
fn cluster_name(input: &Value) -> String {
    let cluster = input["cluster"].as_str().unwrap_or("default");
    cluster.rsplit('/').next().unwrap_or(cluster).to_owned()
}

fn service_name(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_owned()
}

fn answer(state: &Arc<Mutex<State>>, events: &Events, operation: &str, input: &Value) -> Response {
    match operation {
        "RegisterTaskDefinition" => register_task_definition(state, input),
        "ListTaskDefinitions" => list_task_definitions(state, input),
        "DescribeTaskDefinition" => describe_task_definition(state, input),
        "DescribeServices" => describe_services(state, input),
        "UpdateService" => update_service(state, events, input),
        "DescribeServiceDeployments" => describe_service_deployments(state, input),
        "ListServiceDeployments" => list_service_deployments(state, input),
        "ContinueServiceDeployment" => continue_service_deployment(state, input),
        "StopServiceDeployment" => stop_service_deployment(state, input),
        "ListTasks" => list_tasks(state, input),
        "DescribeTasks" => describe_tasks(state, input),
        other => error("InvalidParameterException", &format!("the ECS sandbox does not play {other}")),
    }
}

/// ECS's RegisterTaskDefinition.
fn register_task_definition(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let Some(family) = input["family"].as_str().filter(|f| !f.is_empty()) else {
        return error("ClientException", "family is required");
    };
    if input["containerDefinitions"].as_array().is_none_or(|c| c.is_empty()) {
        return error("ClientException", "Container list cannot be empty.");
    }
    let mut state = lock(state);
    let revision = state.families.entry(family.to_owned()).or_insert(0);
    *revision += 1;
    let revision = *revision;
    let arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}");
    let mut definition = input.clone();
    let tags = definition.as_object_mut().and_then(|d| d.remove("tags")).unwrap_or_else(|| json!([]));
    definition["taskDefinitionArn"] = json!(arn);
    definition["revision"] = json!(revision);
    definition["status"] = json!("ACTIVE");
    state.definitions.push((arn, definition.clone(), tags.clone()));
    reply(200, &json!({ "taskDefinition": definition, "tags": tags }))
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTaskDefinitions.html: ARNs, by
/// family prefix, oldest first unless `sort` is DESC.
fn list_task_definitions(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let prefix = input["familyPrefix"].as_str().unwrap_or_default();
    let state = lock(state);
    let mut arns: Vec<&str> = state
        .definitions
        .iter()
        .filter(|(_, definition, _)| definition["family"].as_str().is_some_and(|f| f.starts_with(prefix)))
        .map(|(arn, _, _)| arn.as_str())
        .collect();
    if input["sort"] == "DESC" {
        arns.reverse();
    }
    let limit = input["maxResults"].as_u64().map_or(100, |n| n as usize);
    arns.truncate(limit);
    reply(200, &json!({ "taskDefinitionArns": arns }))
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTaskDefinition.html: `tags` only
/// with `include: ["TAGS"]`.
fn describe_task_definition(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let wanted = input["taskDefinition"].as_str().unwrap_or_default();
    let state = lock(state);
    let found = state.definitions.iter().find(|(arn, definition, _)| {
        arn == wanted
            || format!("{}:{}", definition["family"].as_str().unwrap_or_default(), definition["revision"]) == wanted
    });
    match found {
        Some((_, definition, tags)) => {
            let mut answer = json!({ "taskDefinition": definition });
            if input["include"].as_array().is_some_and(|i| i.iter().any(|v| v == "TAGS")) {
                answer["tags"] = tags.clone();
            }
            reply(200, &answer)
        }
        None => error("ClientException", "Unable to describe task definition."),
    }
}

/// ECS's DescribeServices.
fn describe_services(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let cluster = cluster_name(input);
    let state = lock(state);
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for name in input["services"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        match state.services.get(&(cluster.clone(), service_name(name))) {
            Some(service) => services.push(service.describe()),
            None => failures.push(json!({
                "arn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{}", service_name(name)),
                "reason": "MISSING",
            })),
        }
    }
    reply(200, &json!({ "services": services, "failures": failures }))
}

/// How many tasks each service runs.
const TASKS: u32 = 2;

/// The tasks `service` runs, as DescribeTasks describes them: [`TASKS`] of its task definition.
fn tasks_of(state: &State, service: &Service) -> Vec<Value> {
    let definition = state.definitions.iter().find(|(arn, _, _)| *arn == service.task_definition);
    let containers = definition.and_then(|(_, d, _)| d["containerDefinitions"].as_array().cloned()).unwrap_or_default();
    let cluster_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}", service.cluster);
    (0..TASKS)
        .map(|n| {
            let id = hex(&format!("{}/{}/{}/{n}", service.cluster, service.name, service.task_definition))[..32].to_owned();
            let task_arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{}/{id}", service.cluster);
            let containers: Vec<Value> = containers
                .iter()
                .map(|container| {
                    let image = container["image"].as_str().unwrap_or_default();
                    let digest = service.runs_digest.clone().unwrap_or_else(|| match image.split_once('@') {
                        Some((_, digest)) => digest.to_owned(),
                        None => format!("sha256:{}", hex(image)),
                    });
                    json!({
                        "containerArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:container/{}/{id}/{}", service.cluster, hex(&format!("{id}{image}"))),
                        "taskArn": task_arn, "name": container["name"], "image": image, "imageDigest": digest,
                        "lastStatus": "RUNNING", "healthStatus": "HEALTHY",
                    })
                })
                .collect();
            json!({
                "taskArn": task_arn, "clusterArn": cluster_arn, "taskDefinitionArn": service.task_definition,
                "group": format!("service:{}", service.name), "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
                "launchType": "FARGATE", "containers": containers,
            })
        })
        .collect()
}

/// The SHA-256 of `text`, in hex: task ids, and the digest a tag resolves to.
fn hex(text: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html: a service's tasks (desired status
/// RUNNING; STOPPED lists none, as the sandbox keeps no stopped task).
fn list_tasks(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let cluster = cluster_name(input);
    let state = lock(state);
    let running = input["desiredStatus"].as_str().is_none_or(|status| status == "RUNNING");
    let tasks: Vec<Value> = match input["serviceName"].as_str() {
        Some(name) => match state.services.get(&(cluster.clone(), service_name(name))) {
            Some(service) => tasks_of(&state, service),
            None => return error("ServiceNotFoundException", "Service not found."),
        },
        None => state.services.values().filter(|s| s.cluster == cluster).flat_map(|s| tasks_of(&state, s)).collect(),
    };
    let arns: Vec<&Value> = if running { tasks.iter().map(|task| &task["taskArn"]).collect() } else { Vec::new() };
    reply(200, &json!({ "taskArns": arns }))
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html: by ARN or id; an unknown one is
/// a failure (`MISSING`), as ECS answers.
fn describe_tasks(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let cluster = cluster_name(input);
    let state = lock(state);
    let all: Vec<Value> =
        state.services.values().filter(|s| s.cluster == cluster).flat_map(|s| tasks_of(&state, s)).collect();
    let (mut tasks, mut failures) = (Vec::new(), Vec::new());
    for wanted in input["tasks"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let id = wanted.rsplit('/').next().unwrap_or(wanted);
        match all.iter().find(|task| task["taskArn"].as_str().is_some_and(|arn| arn.ends_with(&format!("/{id}")))) {
            Some(task) => tasks.push(task.clone()),
            None => failures.push(json!({ "arn": wanted, "reason": "MISSING" })),
        }
    }
    reply(200, &json!({ "tasks": tasks, "failures": failures }))
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html
fn describe_service_deployments(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let state = lock(state);
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in input["serviceDeploymentArns"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        match state.service_deployments.get(arn) {
            Some(record) => found.push(record.clone()),
            None => failures.push(json!({ "arn": arn, "reason": "MISSING" })),
        }
    }
    reply(200, &json!({ "serviceDeployments": found, "failures": failures }))
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServiceDeployments.html: the service's
/// deployments (briefs), newest first, of the given statuses if any are given.
fn list_service_deployments(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let (cluster, name) = (cluster_name(input), service_name(input["service"].as_str().unwrap_or_default()));
    let state = lock(state);
    let Some(service) = state.services.get(&(cluster, name)) else {
        return error("ServiceNotFoundException", "Service not found.");
    };
    let statuses: Vec<&Value> = input["status"].as_array().into_iter().flatten().collect();
    let mut briefs: Vec<Value> = state
        .service_deployments
        .values()
        .filter(|record| record["serviceArn"] == json!(service.arn()))
        .filter(|record| statuses.is_empty() || statuses.contains(&&record["status"]))
        .map(|record| {
            let mut brief = json!({ "targetServiceRevisionArn": record["targetServiceRevision"]["arn"] });
            for field in [
                "serviceDeploymentArn",
                "serviceArn",
                "clusterArn",
                "createdAt",
                "startedAt",
                "finishedAt",
                "status",
                "statusReason",
            ] {
                if let Some(value) = record.get(field).filter(|v| !v.is_null()) {
                    brief[field] = value.clone();
                }
            }
            brief
        })
        .collect();
    briefs.sort_by(|a, b| b["serviceDeploymentArn"].as_str().cmp(&a["serviceDeploymentArn"].as_str()));
    reply(200, &json!({ "serviceDeployments": briefs }))
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html
fn continue_service_deployment(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let arn = input["serviceDeploymentArn"].as_str().unwrap_or_default();
    let (hook_id, action) = (input["hookId"].as_str().unwrap_or_default(), input["action"].as_str());
    let mut state = lock(state);
    let Some(record) = state.service_deployments.get(arn) else {
        return error("ServiceDeploymentNotFoundException", "The service deployment does not exist.");
    };
    let details = record["lifecycleHookDetails"].as_array().into_iter().flatten();
    let awaiting = details.into_iter().any(|d| d["hookId"] == json!(hook_id) && d["status"] == "AWAITING_ACTION");
    if record["status"] != "IN_PROGRESS" || !awaiting {
        return error(
            "InvalidParameterException",
            "The hook is not in AWAITING_ACTION status or the service deployment is not IN_PROGRESS.",
        );
    }
    let Some(action @ ("CONTINUE" | "ROLLBACK")) = action else {
        return error("InvalidParameterException", "action must be CONTINUE or ROLLBACK.");
    };
    state.answers.insert(hook_id.to_owned(), action.to_owned());
    reply(200, &json!({ "serviceDeploymentArn": arn }))
}

/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopServiceDeployment.html
fn stop_service_deployment(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let arn = input["serviceDeploymentArn"].as_str().unwrap_or_default();
    let stop_type = input["stopType"].as_str().unwrap_or("ROLLBACK").to_owned();
    let mut state = lock(state);
    let Some(record) = state.service_deployments.get_mut(arn) else {
        return error("ServiceDeploymentNotFoundException", "The service deployment does not exist.");
    };
    if !matches!(record["status"].as_str(), Some("PENDING" | "IN_PROGRESS")) {
        return error("InvalidParameterException", "The service deployment cannot be stopped in its state.");
    }
    record["status"] = json!(if stop_type == "ROLLBACK" { "ROLLBACK_REQUESTED" } else { "STOP_REQUESTED" });
    state.stops.insert(arn.to_owned(), stop_type);
    reply(200, &json!({ "serviceDeploymentArn": arn }))
}

fn update_service(state: &Arc<Mutex<State>>, events: &Events, input: &Value) -> Response {
    let cluster = cluster_name(input);
    let name = service_name(input["service"].as_str().unwrap_or_default());
    let mut guard = lock(state);
    guard.deployments += 1;
    let id = format!("ecs-svc/{:019}", guard.deployments);
    let Some(service) = guard.services.get_mut(&(cluster.clone(), name.clone())) else {
        return error("ServiceNotFoundException", "Service not found.");
    };
    let previous = service.task_definition.clone();
    let task_definition = input["taskDefinition"].as_str().map_or(previous.clone(), str::to_owned);
    if let Some(configuration) = input.get("deploymentConfiguration").filter(|c| c.is_object()) {
        // ECS refuses a PAUSE hook where traffic moves
        // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHook.html).
        let hooks = configuration["lifecycleHooks"].as_array().into_iter().flatten();
        let pauses = hooks.filter(|hook| hook["targetType"] == "PAUSE");
        let stages = pauses.flat_map(|hook| hook["lifecycleStages"].as_array().into_iter().flatten());
        if stages.into_iter().any(|stage| stage == "TEST_TRAFFIC_SHIFT" || stage == "PRODUCTION_TRAFFIC_SHIFT") {
            return error(
                "InvalidParameterException",
                "PAUSE hooks cannot be configured at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT stages.",
            );
        }
        service.deployment_configuration = configuration.clone();
    }
    // The same task definition, and no new deployment forced: nothing needs new tasks, and ECS starts no
    // deployment (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html,
    // forceNewDeployment).
    if task_definition == previous && input["forceNewDeployment"] != json!(true) {
        return reply(200, &json!({ "service": service.describe() }));
    }
    let strategy = service.deployment_configuration["strategy"].as_str().unwrap_or("ROLLING").to_owned();
    if matches!(strategy.as_str(), "BLUE_GREEN" | "LINEAR" | "CANARY") {
        return native::start(&mut guard, state, events, (cluster, name), id, task_definition);
    }
    for deployment in &mut service.deployments {
        deployment["status"] = json!("ACTIVE");
    }
    service.deployments.insert(
        0,
        json!({
            "id": id, "status": "PRIMARY", "taskDefinition": task_definition,
            "rolloutState": "IN_PROGRESS", "rolloutStateReason": "ECS deployment in progress.",
            "desiredCount": 2, "runningCount": 0, "failedTasks": 0,
        }),
    );
    service.task_definition = task_definition;
    let described = service.describe();
    let played = Played {
        state: Arc::clone(state),
        events: events.clone(),
        key: (cluster, name),
        arn: service.arn(),
        rollout: service.rollout,
        breaker: service.deployment_configuration["deploymentCircuitBreaker"].clone(),
        previous,
    };
    drop(guard);
    aws_json::play("an ECS rollout", played.play(id));
    reply(200, &json!({ "service": described }))
}

/// One rollout being played.
struct Played {
    state: Arc<Mutex<State>>,
    events: Events,
    key: (String, String),
    arn: String,
    rollout: Rollout,
    breaker: Value,
    previous: String,
}

impl Played {
    async fn play(self, id: String) -> Result<()> {
        self.publish("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS", &id, &format!("ECS deployment {id} in progress."))
            .await?;
        tokio::time::sleep(self.events.duration).await;
        if self.rollout == Rollout::Healthy {
            self.settle(&id, "COMPLETED", "ECS deployment completed.", 2, 0);
            return self
                .publish("INFO", "SERVICE_DEPLOYMENT_COMPLETED", &id, &format!("ECS deployment {id} completed."))
                .await;
        }
        if self.breaker["enable"] != json!(true) {
            // Without the circuit breaker, ECS keeps trying to start the failing tasks: the rollout never ends.
            self.settle(&id, "IN_PROGRESS", "ECS deployment in progress.", 0, 10);
            return Ok(());
        }
        let reason = "ECS deployment circuit breaker: tasks failed to start.";
        self.settle(&id, "FAILED", reason, 0, 3);
        self.publish("ERROR", "SERVICE_DEPLOYMENT_FAILED", &id, reason).await?;
        if self.breaker["rollback"] != json!(true) {
            return Ok(());
        }
        let rollback = {
            let mut state = lock(&self.state);
            state.deployments += 1;
            let rollback = format!("ecs-svc/{:019}", state.deployments);
            if let Some(service) = state.services.get_mut(&self.key) {
                service.task_definition = self.previous.clone();
                for deployment in &mut service.deployments {
                    deployment["status"] = json!("ACTIVE");
                }
                service.deployments.insert(
                    0,
                    json!({ "id": rollback, "status": "PRIMARY", "taskDefinition": self.previous,
                            "rolloutState": "IN_PROGRESS", "desiredCount": 2, "runningCount": 0, "failedTasks": 0 }),
                );
            }
            rollback
        };
        let reason = format!("ECS deployment circuit breaker: rolling back to deploymentId {rollback}.");
        self.publish("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS", &rollback, &reason).await?;
        tokio::time::sleep(self.events.duration).await;
        self.settle(&rollback, "COMPLETED", "ECS deployment completed.", 2, 0);
        self.publish(
            "INFO",
            "SERVICE_DEPLOYMENT_COMPLETED",
            &rollback,
            &format!("ECS deployment {rollback} completed."),
        )
        .await
    }

    fn settle(&self, id: &str, rollout: &str, reason: &str, running: u32, failed: u32) {
        let mut state = lock(&self.state);
        if let Some(service) = state.services.get_mut(&self.key) {
            if let Some(deployment) = service.deployments.iter_mut().find(|d| d["id"] == id) {
                deployment["rolloutState"] = json!(rollout);
                deployment["rolloutStateReason"] = json!(reason);
                deployment["runningCount"] = json!(running);
                deployment["failedTasks"] = json!(failed);
            }
            if rollout == "COMPLETED" {
                service.deployments.retain(|d| d["id"] == id);
            }
        }
    }

    async fn publish(&self, kind: &str, name: &str, id: &str, reason: &str) -> Result<()> {
        publish(&self.events, &self.arn, kind, name, id, reason).await
    }
}

/// Publishes an "ECS Deployment State Change" event for deployment `id` of service `arn`.
async fn publish(events: &Events, arn: &str, kind: &str, name: &str, id: &str, reason: &str) -> Result<()> {
    let detail = json!({
        "eventType": kind,
        "eventName": name,
        "deploymentId": id,
        "updatedAt": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "reason": reason,
    });
    let resources = [arn.to_owned()];
    let bus = &events.bus;
    aws_json::put_event(&events.eventbridge, bus, "aws.ecs", "ECS Deployment State Change", &resources, &detail).await
}

mod native;
