//! A stand-in for CodeDeploy's ECS blue/green deployments, for what moto does not do: deployments that move. It
//! answers the CodeDeploy API calls a blue/green deploy makes (awsJson 1.1 CreateDeployment with AppSpecContent,
//! GetDeployment, BatchGetDeployments, ListDeployments, ListDeploymentTargets, GetDeploymentTarget,
//! PutLifecycleEventHookExecutionStatus, StopDeployment) and drives the documented lifecycle
//! (<https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-hooks.html#appspec-hooks-ecs>):
//! BeforeInstall, Install, AfterInstall, AllowTestTraffic, AfterAllowTestTraffic, BeforeAllowTraffic, AllowTraffic,
//! AfterAllowTraffic. Each hook the AppSpec names is invoked with `{DeploymentId, LifecycleEventHookExecutionId}`
//! and waited for; a Failed status, or no status in time, fails the deployment and rolls traffic back. Traffic
//! moves as the deployment configuration says (all at once, canary, linear) on a compressed clock. It publishes the
//! "CodeDeploy Deployment State-change Notification" events (START, SUCCESS, FAILURE, STOP).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::aws_json::{self, Endpoint, Response, error, reply};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const TARGET: &str = "CodeDeploy_20141006.";

/// The lifecycle of an ECS blue/green deployment, in order, and whether a hook may run at each event.
pub const LIFECYCLE: [(&str, bool); 8] = [
    ("BeforeInstall", true),
    ("Install", false),
    ("AfterInstall", true),
    ("AllowTestTraffic", false),
    ("AfterAllowTestTraffic", true),
    ("BeforeAllowTraffic", true),
    ("AllowTraffic", false),
    ("AfterAllowTraffic", true),
];

/// A Lambda function the sandbox can invoke for a hook: it gets the invocation payload.
pub type HookFunction = Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Where deployments publish their events, how long a deployment minute lasts, and how long a hook may take.
#[derive(Clone)]
pub struct Settings {
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub bus: String,
    pub minute: Duration,
    pub hook_timeout: Duration,
    /// The sample app whose listeners the deployments reroute, if the scenario serves one.
    pub app: Option<Arc<crate::sample_app::SampleApp>>,
}

#[derive(Default)]
struct Deployment {
    application: String,
    group: String,
    config: String,
    description: String,
    status: String,
    lifecycle: Vec<(String, String)>,
    traffic: Vec<u8>,
    error: Option<(String, String)>,
    waiting: HashMap<String, oneshot::Sender<String>>,
    reported: HashSet<String>,
    stopped: bool,
    /// Whether StopDeployment asked for the stop to roll back (`autoRollbackEnabled`).
    stop_rolls_back: bool,
    /// The deployment's `autoRollbackConfiguration` events, when enabled.
    auto_rollback: Vec<String>,
    /// The deployment CodeDeploy created to roll this one back, and its message.
    rollback: Option<(String, String)>,
    creator: String,
    create_time: f64,
    complete_time: Option<f64>,
    /// The task definition its AppSpec's TargetService names: what the service runs once it succeeded.
    task_definition: String,
}

/// Told the task definition a group's service runs once a deployment of it succeeded (the ECS sandbox, say).
pub type OnReplaced = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct State {
    groups: HashSet<(String, String)>,
    functions: HashMap<String, HookFunction>,
    deployments: HashMap<String, Deployment>,
    counter: u64,
    /// Who is told what each group's service runs after a deployment succeeded, by group.
    replaced: HashMap<String, OnReplaced>,
}

impl Deployment {
    /// Its `DeploymentInfo`, as GetDeployment and BatchGetDeployments answer.
    fn info(&self, id: &str) -> Value {
        let mut info = json!({
            "deploymentId": id, "applicationName": self.application,
            "deploymentGroupName": self.group, "deploymentConfigName": self.config, "status": self.status,
            "createTime": self.create_time, "computePlatform": "ECS", "creator": self.creator,
        });
        if let Some((rollback, message)) = &self.rollback {
            info["rollbackInfo"] = json!({ "rollbackDeploymentId": rollback, "rollbackMessage": message });
        }
        if !self.description.is_empty() {
            info["description"] = json!(self.description);
        }
        if let Some(time) = self.complete_time {
            info["completeTime"] = json!(time);
        }
        if let Some((code, message)) = &self.error {
            info["errorInformation"] = json!({ "code": code, "message": message });
        }
        info
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn epoch() -> f64 {
    Utc::now().timestamp_millis() as f64 / 1000.0
}

/// The CodeDeploy stand-in, serving on a loopback port until dropped.
pub struct CodeDeploySandbox {
    /// The endpoint to give CodeDeploy clients.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    _server: Endpoint,
}

impl CodeDeploySandbox {
    pub async fn start(settings: Settings) -> Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = aws_json::serve(TARGET, "InvalidInputException", move |operation, input| {
            let response = answer(&shared, &settings, &operation, &input);
            async move { response }
        })
        .await?;
        Ok(Self { endpoint: server.url.clone(), state, _server: server })
    }

    /// Declares an application's deployment group.
    pub fn deployment_group(&self, application: &str, group: &str) {
        lock(&self.state).groups.insert((application.to_owned(), group.to_owned()));
    }

    /// Tells `on_replaced` the task definition `group`'s service runs once a deployment of it succeeded (the
    /// replacement task set's).
    pub fn on_replaced(&self, group: &str, on_replaced: impl Fn(&str) + Send + Sync + 'static) {
        lock(&self.state).replaced.insert(group.to_owned(), Arc::new(on_replaced));
    }

    /// Registers the function a hook names in an AppSpec.
    pub fn function<F, Fut>(&self, name: &str, function: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let function: HookFunction = Arc::new(move |payload| Box::pin(function(payload)));
        lock(&self.state).functions.insert(name.to_owned(), function);
    }

    /// Each lifecycle event the deployment went through, with its status, in order.
    pub fn lifecycle(&self, deployment_id: &str) -> Vec<(String, String)> {
        lock(&self.state).deployments.get(deployment_id).map(|d| d.lifecycle.clone()).unwrap_or_default()
    }

    /// The share of production traffic on the replacement task set after each shift, in order.
    pub fn traffic(&self, deployment_id: &str) -> Vec<u8> {
        lock(&self.state).deployments.get(deployment_id).map(|d| d.traffic.clone()).unwrap_or_default()
    }
}

/// The traffic shifts of a deployment configuration: (percent on green, minutes to wait before the next shift).
fn shifts(config: &str) -> Option<Vec<(u8, u64)>> {
    let name = config.strip_prefix("CodeDeployDefault.ECS")?;
    if name == "AllAtOnce" {
        return Some(vec![(100, 0)]);
    }
    if let Some(rest) = name.strip_prefix("Canary") {
        let (percent, minutes) = rest.strip_suffix("Minutes")?.split_once("Percent")?;
        return Some(vec![(percent.parse().ok()?, minutes.parse().ok()?), (100, 0)]);
    }
    let rest = name.strip_prefix("Linear")?.strip_suffix("Minutes")?;
    let (percent, minutes) = rest.split_once("PercentEvery")?;
    let (step, wait): (u8, u64) = (percent.parse().ok()?, minutes.parse().ok()?);
    let steps = (1..=100 / step.max(1)).map(|i| (i * step, wait)).collect();
    Some(steps)
}

/// The task definition an AppSpec's TargetService names (`Properties.TaskDefinition`).
fn task_definition(appspec: &str) -> String {
    let document: Value = serde_norway::from_str(appspec).unwrap_or_default();
    let services = document["Resources"].as_array().into_iter().flatten().filter_map(|r| r.get("TargetService"));
    services.filter_map(|t| t["Properties"]["TaskDefinition"].as_str()).next().unwrap_or_default().to_owned()
}

/// The hooks an AppSpec (YAML or JSON) names: lifecycle event -> function.
fn hooks(appspec: &str) -> Result<HashMap<String, String>, String> {
    let document: Value =
        serde_norway::from_str(appspec).map_err(|e| format!("the AppSpec is not YAML or JSON: {e}"))?;
    if !document["Resources"].as_array().is_some_and(|r| r.iter().any(|r| r.get("TargetService").is_some())) {
        return Err("the AppSpec has no Resources with a TargetService".into());
    }
    let mut hooks = HashMap::new();
    for hook in document["Hooks"].as_array().into_iter().flatten() {
        for (event, function) in hook.as_object().into_iter().flatten() {
            if !LIFECYCLE.iter().any(|(name, hookable)| name == event && *hookable) {
                return Err(format!("{event} is not a lifecycle event of an ECS deployment that takes a hook"));
            }
            hooks.insert(event.clone(), function.as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(hooks)
}

fn answer(state: &Arc<Mutex<State>>, settings: &Settings, operation: &str, input: &Value) -> Response {
    let deployment_id = input["deploymentId"].as_str().unwrap_or_default().to_owned();
    match operation {
        "CreateDeployment" => create_deployment(state, settings, input),
        "GetDeployment" => match lock(state).deployments.get(&deployment_id) {
            Some(d) => reply(200, &json!({ "deploymentInfo": d.info(&deployment_id) })),
            None => {
                error("DeploymentDoesNotExistException", &format!("The deployment {deployment_id} could not be found"))
            }
        },
        "BatchGetDeployments" => batch_get_deployments(state, input),
        "ListDeployments" => list_deployments(state, input),
        "ListDeploymentTargets" => match lock(state).deployments.get(&deployment_id) {
            Some(d) => reply(200, &json!({ "targetIds": [format!("{}:{}", d.application, d.group)] })),
            None => error("DeploymentDoesNotExistException", "The deployment could not be found"),
        },
        "GetDeploymentTarget" => get_deployment_target(state, &deployment_id, input),
        "PutLifecycleEventHookExecutionStatus" => put_hook_status(state, &deployment_id, input),
        "StopDeployment" => match lock(state).deployments.get_mut(&deployment_id) {
            Some(d) if matches!(d.status.as_str(), "Created" | "InProgress") => {
                d.stopped = true;
                d.stop_rolls_back = input["autoRollbackEnabled"].as_bool().unwrap_or(false);
                reply(200, &json!({ "status": "Pending", "statusMessage": "Stopping the deployment" }))
            }
            Some(_) => error("DeploymentAlreadyCompletedException", "The deployment is already completed"),
            None => error("DeploymentDoesNotExistException", "The deployment could not be found"),
        },
        "ContinueDeployment" => match lock(state).deployments.get(&deployment_id) {
            // The sandbox's deployments never wait in the Ready state (no wait time before rerouting).
            Some(_) => error("DeploymentIsNotInReadyStateException", "The deployment is not in a ready state"),
            None => error("DeploymentDoesNotExistException", "The deployment could not be found"),
        },
        other => error("InvalidInputException", &format!("the CodeDeploy sandbox does not play {other}")),
    }
}

/// Unknown ids are left out of the answer, as CodeDeploy does.
fn batch_get_deployments(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let state = lock(state);
    let ids = input["deploymentIds"].as_array().cloned().unwrap_or_default();
    if ids.len() > 25 {
        return error("BatchLimitExceededException", "The maximum number of names or IDs allowed is 25");
    }
    let infos: Vec<Value> =
        ids.iter().filter_map(Value::as_str).filter_map(|id| state.deployments.get(id).map(|d| d.info(id))).collect();
    reply(200, &json!({ "deploymentsInfo": infos }))
}

/// Newest first; the group's deployments created at or after `createTimeRange.start`, and of the
/// `includeOnlyStatuses`, if given.
fn list_deployments(state: &Arc<Mutex<State>>, input: &Value) -> Response {
    let application = input["applicationName"].as_str().unwrap_or_default();
    let group = input["deploymentGroupName"].as_str().unwrap_or_default();
    let since = input["createTimeRange"]["start"].as_f64().unwrap_or(0.0);
    let statuses: Vec<&str> =
        input["includeOnlyStatuses"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let state = lock(state);
    if !group.is_empty() && !state.groups.contains(&(application.to_owned(), group.to_owned())) {
        return error("DeploymentGroupDoesNotExistException", "The deployment group does not exist");
    }
    let mut found: Vec<(&String, &Deployment)> = state
        .deployments
        .iter()
        .filter(|(_, d)| d.application == application && (group.is_empty() || d.group == group))
        .filter(|(_, d)| d.create_time >= since)
        .filter(|(_, d)| statuses.is_empty() || statuses.contains(&d.status.as_str()))
        .collect();
    found.sort_by(|a, b| b.0.cmp(a.0));
    reply(200, &json!({ "deployments": found.iter().map(|(id, _)| id).collect::<Vec<_>>() }))
}

/// A hook's answer, handed to the deployment waiting for it; once per hook execution.
fn put_hook_status(state: &Arc<Mutex<State>>, deployment_id: &str, input: &Value) -> Response {
    let execution = input["lifecycleEventHookExecutionId"].as_str().unwrap_or_default().to_owned();
    let status = input["status"].as_str().unwrap_or_default().to_owned();
    if !matches!(status.as_str(), "Succeeded" | "Failed") {
        return error("InvalidLifecycleEventHookExecutionStatusException", "status must be Succeeded or Failed");
    }
    let mut state = lock(state);
    let Some(deployment) = state.deployments.get_mut(deployment_id) else {
        return error("DeploymentDoesNotExistException", "The deployment could not be found");
    };
    if deployment.reported.contains(&execution) {
        return error("LifecycleEventAlreadyCompletedException", "The lifecycle event is already completed");
    }
    match deployment.waiting.remove(&execution) {
        Some(waiter) => {
            deployment.reported.insert(execution.clone());
            let _ = waiter.send(status);
            reply(200, &json!({ "lifecycleEventHookExecutionId": execution }))
        }
        None => error("InvalidLifecycleEventHookExecutionIdException", "No such lifecycle event hook execution"),
    }
}

/// The deployment's one ECS target, with its lifecycle events.
fn get_deployment_target(state: &Arc<Mutex<State>>, deployment_id: &str, input: &Value) -> Response {
    match lock(state).deployments.get(deployment_id) {
        Some(d) => {
            let events: Vec<Value> = d
                .lifecycle
                .iter()
                .map(|(name, status)| json!({ "lifecycleEventName": name, "status": status }))
                .collect();
            reply(
                200,
                &json!({ "deploymentTarget": { "deploymentTargetType": "ECSTarget", "ecsTarget": {
                    "deploymentId": deployment_id, "targetId": input["targetId"], "lifecycleEvents": events, "status": d.status,
                }}}),
            )
        }
        None => error("DeploymentDoesNotExistException", "The deployment could not be found"),
    }
}

fn create_deployment(state: &Arc<Mutex<State>>, settings: &Settings, input: &Value) -> Response {
    let application = input["applicationName"].as_str().unwrap_or_default().to_owned();
    let group = input["deploymentGroupName"].as_str().unwrap_or_default().to_owned();
    let config = input["deploymentConfigName"].as_str().unwrap_or("CodeDeployDefault.ECSAllAtOnce").to_owned();
    let mut guard = lock(state);
    if !guard.groups.iter().any(|(app, _)| *app == application) {
        return error("ApplicationDoesNotExistException", &format!("No application found for name: {application}"));
    }
    if !guard.groups.contains(&(application.clone(), group.clone())) {
        return error("DeploymentGroupDoesNotExistException", &format!("No Deployment Group found for name: {group}"));
    }
    let Some(shifts) = shifts(&config) else {
        return error(
            "DeploymentConfigDoesNotExistException",
            &format!("No deployment configuration found for name: {config}"),
        );
    };
    let active = guard.deployments.values().any(|d| {
        d.application == application && d.group == group && matches!(d.status.as_str(), "Created" | "InProgress")
    });
    if active {
        return error(
            "DeploymentLimitExceededException",
            &format!("The deployment group {group} already has an active deployment"),
        );
    }
    let content = input["revision"]["appSpecContent"]["content"].as_str().unwrap_or_default();
    let hooks = match hooks(content) {
        Ok(hooks) => hooks,
        Err(message) => return error("InvalidRevisionException", &message),
    };
    let rollback = &input["autoRollbackConfiguration"];
    let auto_rollback = if rollback["enabled"].as_bool().unwrap_or(false) {
        rollback["events"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    guard.counter += 1;
    let id = format!("d-{:09}", guard.counter);
    guard.deployments.insert(
        id.clone(),
        Deployment {
            application,
            group,
            config,
            description: input["description"].as_str().unwrap_or_default().to_owned(),
            status: "Created".into(),
            task_definition: task_definition(content),
            auto_rollback,
            creator: "user".into(),
            create_time: epoch(),
            ..Deployment::default()
        },
    );
    drop(guard);
    let played = Played { state: Arc::clone(state), settings: settings.clone(), id: id.clone(), hooks, shifts };
    aws_json::play("a CodeDeploy deployment", played.play());
    reply(200, &json!({ "deploymentId": id }))
}

/// What a hook function is invoked with
/// (<https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-hooks.html#reference-appspec-file-structure-hooks-section-structure-ecs-sample-function>).
fn hook_payload(deployment_id: &str, execution: &str) -> Value {
    json!({ "DeploymentId": deployment_id, "LifecycleEventHookExecutionId": execution })
}

/// One deployment being played.
struct Played {
    state: Arc<Mutex<State>>,
    settings: Settings,
    id: String,
    hooks: HashMap<String, String>,
    shifts: Vec<(u8, u64)>,
}

impl Played {
    fn with<T>(&self, f: impl FnOnce(&mut Deployment) -> T) -> Option<T> {
        lock(&self.state).deployments.get_mut(&self.id).map(f)
    }

    fn record(&self, event: &str, status: &str) {
        self.with(|d| d.lifecycle.push((event.to_owned(), status.to_owned())));
    }

    async fn play(self) -> Result<()> {
        self.with(|d| d.status = "InProgress".into());
        self.publish(&self.id, "START").await?;
        for (event, hookable) in LIFECYCLE {
            if self.with(|d| d.stopped).unwrap_or(true) {
                return self.finish("Stopped", Some(("MANUAL_STOP", "The deployment was stopped")), "STOP").await;
            }
            if event == "AllowTestTraffic"
                && let Some(app) = &self.settings.app
            {
                app.test.route(&app.green);
            }
            if event == "AllowTraffic" {
                for (percent, wait) in &self.shifts {
                    self.with(|d| d.traffic.push(*percent));
                    if *percent < 100 {
                        tokio::time::sleep(self.settings.minute * u32::try_from(*wait).unwrap_or(1)).await;
                    }
                }
                if let Some(app) = &self.settings.app {
                    app.production.route(&app.green);
                }
                self.record(event, "Succeeded");
                continue;
            }
            let Some(function) = self.hooks.get(event).filter(|_| hookable) else {
                self.record(event, if hookable { "Skipped" } else { "Succeeded" });
                continue;
            };
            let invoke = lock(&self.state).functions.get(function).cloned();
            let Some(invoke) = invoke else {
                self.record(event, "Failed");
                let message = format!("The hook function {function} for {event} could not be invoked");
                return self.finish("Failed", Some(("HOOK_EXECUTION_FAILURE", &message)), "FAILURE").await;
            };
            let (sender, receiver) = oneshot::channel();
            let execution = {
                let mut state = lock(&self.state);
                state.counter += 1;
                let execution = format!("hook-{}-{}-{}", self.id, event, state.counter);
                if let Some(deployment) = state.deployments.get_mut(&self.id) {
                    deployment.waiting.insert(execution.clone(), sender);
                    deployment.lifecycle.push((event.to_owned(), "InProgress".to_owned()));
                }
                execution
            };
            tokio::spawn(invoke(hook_payload(&self.id, &execution)));
            let deadline = tokio::time::Instant::now() + self.settings.hook_timeout;
            let mut receiver = receiver;
            let outcome = loop {
                match tokio::time::timeout(Duration::from_millis(20), &mut receiver).await {
                    Ok(Ok(status)) if status == "Succeeded" => break "Succeeded",
                    Ok(_) => break "Failed",
                    Err(_) if self.with(|d| d.stopped).unwrap_or(true) => break "Stopped",
                    Err(_) if tokio::time::Instant::now() >= deadline => break "TimedOut",
                    Err(_) => {}
                }
            };
            self.with(|d| {
                if let Some(last) = d.lifecycle.last_mut() {
                    last.1 = if outcome == "Succeeded" { "Succeeded".into() } else { "Failed".into() };
                }
            });
            match outcome {
                "Succeeded" => {}
                "Stopped" => {
                    return self.finish("Stopped", Some(("MANUAL_STOP", "The deployment was stopped")), "STOP").await;
                }
                "Failed" => {
                    let message = format!("The {event} hook reported Failed");
                    return self.finish("Failed", Some(("HOOK_EXECUTION_FAILURE", &message)), "FAILURE").await;
                }
                _ => {
                    let message = format!("The {event} hook did not report a status in time");
                    return self.finish("Failed", Some(("TIMEOUT", &message)), "FAILURE").await;
                }
            }
        }
        self.finish("Succeeded", None, "SUCCESS").await
    }

    /// Ends the deployment; a failed or stopped one gets its traffic back on the original task set. When its
    /// automatic rollback covers what happened (DEPLOYMENT_FAILURE, or a stop asked to roll back), CodeDeploy
    /// creates a rollback deployment (`creator: codeDeployRollback`) and names it in the failed one's `rollbackInfo`.
    async fn finish(&self, status: &str, error: Option<(&str, &str)>, state: &str) -> Result<()> {
        let rollback = {
            let mut guard = lock(&self.state);
            let rolls_back = guard.deployments.get(&self.id).is_some_and(|d| match status {
                "Failed" => d.auto_rollback.iter().any(|e| e == "DEPLOYMENT_FAILURE"),
                "Stopped" => d.stop_rolls_back,
                _ => false,
            });
            let rollback = rolls_back.then(|| {
                guard.counter += 1;
                format!("d-{:09}", guard.counter)
            });
            let Some(d) = guard.deployments.get_mut(&self.id) else { return Ok(()) };
            d.status = status.to_owned();
            d.error = error.map(|(code, message)| (code.to_owned(), message.to_owned()));
            d.complete_time = Some(epoch());
            d.waiting.clear();
            if status != "Succeeded" && d.traffic.last().is_some_and(|p| *p > 0) {
                d.traffic.push(0);
            }
            let (application, group, config) = (d.application.clone(), d.group.clone(), d.config.clone());
            if let Some(rollback) = &rollback {
                d.rollback = Some((rollback.clone(), format!("Rollback deployment {rollback} succeeded")));
                let done = Deployment {
                    application,
                    group,
                    config,
                    status: "Succeeded".into(),
                    creator: "codeDeployRollback".into(),
                    create_time: epoch(),
                    complete_time: Some(epoch()),
                    ..Deployment::default()
                };
                guard.deployments.insert(rollback.clone(), done);
            }
            rollback
        };
        if status != "Succeeded"
            && let Some(app) = &self.settings.app
        {
            app.production.route(&app.blue);
            app.test.route(&app.blue);
        }
        if status == "Succeeded" {
            let replaced = self.with(|d| (d.group.clone(), d.task_definition.clone()));
            let guard = lock(&self.state);
            if let Some((group, task_definition)) = replaced
                && let Some(on_replaced) = guard.replaced.get(&group)
            {
                on_replaced(&task_definition);
            }
        }
        self.publish(&self.id, state).await?;
        if let Some(rollback) = rollback {
            self.publish(&rollback, "START").await?;
            self.publish(&rollback, "SUCCESS").await?;
        }
        Ok(())
    }

    async fn publish(&self, id: &str, state: &str) -> Result<()> {
        let (application, group) = self.with(|d| (d.application.clone(), d.group.clone())).unwrap_or_default();
        let detail = json!({
            "instanceGroupId": format!("{id}-group"),
            "region": REGION,
            "application": application,
            "deploymentId": id,
            "state": state,
            "deploymentGroup": group,
        });
        let resources = [
            format!("arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:{application}"),
            format!("arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:{application}/{group}"),
        ];
        let (eventbridge, bus) = (&self.settings.eventbridge, &self.settings.bus);
        let detail_type = "CodeDeploy Deployment State-change Notification";
        aws_json::put_event(eventbridge, bus, "aws.codedeploy", detail_type, &resources, &detail).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_configurations_shift_traffic_as_their_names_say() {
        assert_eq!(shifts("CodeDeployDefault.ECSAllAtOnce"), Some(vec![(100, 0)]));
        assert_eq!(shifts("CodeDeployDefault.ECSCanary10Percent5Minutes"), Some(vec![(10, 5), (100, 0)]));
        let linear = shifts("CodeDeployDefault.ECSLinear10PercentEvery1Minutes").expect("known");
        assert_eq!(linear.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(shifts("CodeDeployDefault.OneAtATime"), None);
    }

    #[test]
    fn a_hook_is_invoked_with_the_fields_of_awss_sample_invocation() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../shared/tests/fixtures/example-codedeploy-lifecycle-event.json"
        ))
        .expect("the sample is JSON");
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys(&hook_payload("d-000000001", "hook-1")), keys(&sample));
    }

    #[test]
    fn an_appspec_names_its_hooks_and_must_target_a_service() {
        let appspec = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\nHooks:\n  - BeforeAllowTraffic: checks\n";
        assert_eq!(hooks(appspec), Ok(HashMap::from([("BeforeAllowTraffic".to_owned(), "checks".to_owned())])));
        assert!(hooks("version: 0.0\n").is_err());
        let bad = "Resources:\n  - TargetService: {}\nHooks:\n  - AllowTraffic: f\n";
        assert_eq!(
            hooks(bad),
            Err("AllowTraffic is not a lifecycle event of an ECS deployment that takes a hook".into())
        );
    }
}
