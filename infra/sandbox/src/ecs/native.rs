//! ECS-native blue/green, linear and canary deployments
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html>): UpdateService
//! with a `BLUE_GREEN`, `LINEAR` or `CANARY` strategy starts a service deployment that goes through the documented
//! lifecycle stages in order, invoking each Lambda hook configured for a stage with the documented payload
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html>) and acting on its
//! `hookStatus` (`IN_PROGRESS`: invoked again after `callBackDelay`, with the `hookDetails` it returned). Test
//! traffic moves to the new revision at TEST_TRAFFIC_SHIFT, production traffic in the strategy's steps at
//! PRODUCTION_TRAFFIC_SHIFT (PRE_PRODUCTION_TRAFFIC_SHIFT before each), then the bake time, watching the
//! deployment's alarms. A FAILED hook, an alarm in ALARM or the circuit breaker rolls it back: traffic returns, the
//! traffic-shift hooks run again for the rollback, and ECS publishes SERVICE_DEPLOYMENT_FAILED. A PAUSE hook
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html>) waits in
//! `AWAITING_ACTION`, announced by an "ECS Hook State Change" HOOK_AWAITING_ACTION event, until
//! ContinueServiceDeployment answers CONTINUE or ROLLBACK or its timeout takes its action. One sandbox minute lasts
//! `Events::duration`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use serde_json::{Value, json};

use super::{ACCOUNT, Events, REGION, Rollout, State, lock, publish};
use crate::aws_json::{self, Response, reply};

/// The stages of a service deployment, in order, and whether a hook may run at each.
const STAGES: [(&str, bool); 10] = [
    ("RECONCILE_SERVICE", true),
    ("PRE_SCALE_UP", true),
    ("SCALE_UP", false),
    ("POST_SCALE_UP", true),
    ("TEST_TRAFFIC_SHIFT", true),
    ("POST_TEST_TRAFFIC_SHIFT", true),
    ("PRODUCTION_TRAFFIC_SHIFT", true),
    ("POST_PRODUCTION_TRAFFIC_SHIFT", true),
    ("BAKE_TIME", false),
    ("CLEAN_UP", false),
];

/// ECS's default wait after IN_PROGRESS, in seconds.
const DEFAULT_CALLBACK_SECS: u64 = 30;

pub(super) fn start(
    guard: &mut MutexGuard<'_, State>,
    state: &Arc<Mutex<State>>,
    events: &Events,
    key: (String, String),
    id: String,
    task_definition: String,
) -> Response {
    let counter = guard.deployments;
    let app = guard.app.clone();
    let Some(service) = guard.services.get_mut(&key) else {
        return crate::aws_json::error("ServiceNotFoundException", "Service not found.");
    };
    let (cluster, name) = (&key.0, &key.1);
    let arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{cluster}/{name}/sd{counter:019}");
    let revision = |n: u32| format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{cluster}/{name}/{n:019}");
    let (source, target) = (revision(counter * 2), revision(counter * 2 + 1));
    let configuration = service.deployment_configuration.clone();
    let previous = service.task_definition.clone();
    for deployment in &mut service.deployments {
        deployment["status"] = json!("ACTIVE");
    }
    service.deployments.insert(
        0,
        json!({ "id": id, "status": "PRIMARY", "taskDefinition": task_definition, "rolloutState": "IN_PROGRESS",
                "desiredCount": 2, "runningCount": 0, "failedTasks": 0 }),
    );
    service.task_definition = task_definition;
    service.current_service_deployment = Some(arn.clone());
    let alarms = &configuration["alarms"];
    let record = json!({
        "serviceDeploymentArn": arn, "serviceArn": service.arn(),
        "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"),
        "createdAt": Utc::now().timestamp(), "startedAt": Utc::now().timestamp(),
        "sourceServiceRevisions": [{ "arn": source, "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0 }],
        "targetServiceRevision": { "arn": target, "requestedTaskCount": 2, "runningTaskCount": 0, "pendingTaskCount": 0 },
        "status": "IN_PROGRESS", "lifecycleStage": "RECONCILE_SERVICE", "lifecycleHookDetails": [],
        "deploymentConfiguration": configuration,
        "deploymentCircuitBreaker": { "status": if configuration["deploymentCircuitBreaker"]["enable"] == json!(true) { "MONITORING" } else { "DISABLED" }, "failureCount": 0, "threshold": 3 },
        "alarms": { "status": if alarms["enable"] == json!(true) { "MONITORING" } else { "DISABLED" }, "alarmNames": alarms["alarmNames"].clone(), "triggeredAlarmNames": [] },
    });
    let (described, service_arn, rollout) = (service.describe(), service.arn(), service.rollout);
    guard.service_deployments.insert(arn.clone(), record);
    let played = Played {
        state: Arc::clone(state),
        events: events.clone(),
        key,
        service_arn,
        arn,
        id,
        source,
        target,
        previous,
        configuration,
        rollout,
        app,
    };
    aws_json::play("an ECS-native deployment", played.play());
    reply(200, &json!({ "service": described }))
}

/// One ECS-native deployment being played.
struct Played {
    state: Arc<Mutex<State>>,
    events: Events,
    key: (String, String),
    service_arn: String,
    arn: String,
    id: String,
    source: String,
    target: String,
    previous: String,
    configuration: Value,
    rollout: Rollout,
    app: Option<Arc<crate::sample_app::SampleApp>>,
}

/// Why a deployment rolls back: its status reason, and the record's field to mark.
enum Failure {
    Hook(String),
    Alarm(Vec<String>),
    CircuitBreaker,
    /// StopServiceDeployment, with its stop type.
    Stopped(String),
}

impl Played {
    fn update(&self, f: impl FnOnce(&mut Value)) {
        if let Some(record) = lock(&self.state).service_deployments.get_mut(&self.arn) {
            f(record);
        }
    }

    /// A new hook execution: its id (`<prefix>-<n>`), and its `detail` in the record's `lifecycleHookDetails`.
    fn hook_started(&self, prefix: &str, detail: impl FnOnce(&str) -> Value) -> String {
        let hook_id = {
            let mut state = lock(&self.state);
            state.deployments += 1;
            format!("{prefix}-{:019}", state.deployments)
        };
        let detail = detail(&hook_id);
        self.update(|r| {
            if let Some(details) = r["lifecycleHookDetails"].as_array_mut() {
                details.push(detail);
            }
        });
        hook_id
    }

    /// Sets hook execution `hook_id`'s status in the record.
    fn mark_hook(&self, hook_id: &str, status: &str) {
        self.update(|r| {
            for d in r["lifecycleHookDetails"].as_array_mut().into_iter().flatten() {
                if d["hookId"] == json!(hook_id) {
                    d["status"] = json!(status);
                }
            }
        });
    }

    /// Whether StopServiceDeployment asked to stop the deployment: `Err` once it did.
    fn checkpoint(&self) -> Result<(), Failure> {
        match lock(&self.state).stops.remove(&self.arn) {
            Some(stop_type) => Err(Failure::Stopped(stop_type)),
            None => Ok(()),
        }
    }

    fn minutes(&self, minutes: u64) -> Duration {
        self.events.duration * u32::try_from(minutes).unwrap_or(u32::MAX)
    }

    /// The production weights of each step: all at once, linear steps, or the canary then the rest.
    fn steps(&self) -> Vec<(f64, u64)> {
        let c = &self.configuration;
        match c["strategy"].as_str() {
            Some("LINEAR") => {
                let step = c["linearConfiguration"]["stepPercent"].as_f64().unwrap_or(10.0).max(0.1);
                let wait = c["linearConfiguration"]["stepBakeTimeInMinutes"].as_u64().unwrap_or(6);
                let mut steps = Vec::new();
                let mut at = 0.0;
                while at < 100.0 {
                    at = (at + step).min(100.0);
                    steps.push((at, if at < 100.0 { wait } else { 0 }));
                }
                steps
            }
            Some("CANARY") => {
                let percent = c["canaryConfiguration"]["canaryPercent"].as_f64().unwrap_or(5.0);
                let wait = c["canaryConfiguration"]["canaryBakeTimeInMinutes"].as_u64().unwrap_or(10);
                vec![(percent, wait), (100.0, 0)]
            }
            _ => vec![(100.0, 0)],
        }
    }

    fn weights(&self, target: f64) -> Value {
        json!({ self.target.clone(): target, self.source.clone(): 100.0 - target })
    }

    /// Runs the Lambda hooks configured for `stage`: `Err` with why when one fails, times out or cannot be invoked.
    async fn hooks(&self, stage: &str, test: f64, production: f64) -> Result<(), String> {
        let hooks: Vec<Value> = self.configuration["lifecycleHooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|hook| hook["lifecycleStages"].as_array().is_some_and(|s| s.iter().any(|s| s == stage)))
            .cloned()
            .collect();
        let (lambdas, pauses): (Vec<Value>, Vec<Value>) =
            hooks.into_iter().partition(|hook| hook["targetType"].as_str().is_none_or(|t| t != "PAUSE"));
        // Both kinds must complete before the stage does: the Lambda hooks first, then the pause.
        for hook in lambdas {
            if hook["targetType"].as_str().is_some_and(|t| t != "AWS_LAMBDA") {
                continue;
            }
            let target = hook["hookTargetArn"].as_str().unwrap_or_default().to_owned();
            let function = lock(&self.state).functions.get(&super::function_name(&target)).cloned();
            let timeout = self.minutes(hook["timeoutConfiguration"]["timeoutInMinutes"].as_u64().unwrap_or(1440));
            let hook_id = self.hook_started(
                "ecs-hook",
                |id| json!({ "hookId": id, "targetType": "AWS_LAMBDA", "targetArn": target, "status": "IN_PROGRESS" }),
            );
            let mark = |status: &str| self.mark_hook(&hook_id, status);
            let Some(function) = function else {
                mark("FAILED");
                return Err(format!("the lifecycle hook {target} at {stage} could not be invoked"));
            };
            let deadline = tokio::time::Instant::now() + timeout;
            let mut details = hook.get("hookDetails").cloned();
            loop {
                // As AWS's examples show them: the test weights at TEST_TRAFFIC_SHIFT, the production weights at
                // (PRE_)PRODUCTION_TRAFFIC_SHIFT, and `{}` for the rest.
                let test_weights = if stage == "TEST_TRAFFIC_SHIFT" { self.weights(test) } else { json!({}) };
                let production_weights = match stage {
                    "PRE_PRODUCTION_TRAFFIC_SHIFT" | "PRODUCTION_TRAFFIC_SHIFT" => self.weights(production),
                    _ => json!({}),
                };
                let mut payload = json!({
                    "executionId": hook_id, "lifecycleStage": stage, "resourceArn": self.arn,
                    "executionDetails": {
                        "serviceArn": self.service_arn, "targetServiceRevisionArn": self.target,
                        "testTrafficWeights": test_weights, "productionTrafficWeights": production_weights,
                    },
                });
                if let Some(details) = &details {
                    payload["hookDetails"] = details.clone();
                }
                let result = function(payload.clone()).await;
                lock(&self.state).invocations.entry(self.arn.clone()).or_default().push((
                    stage.to_owned(),
                    payload,
                    result.clone(),
                ));
                match result["hookStatus"].as_str() {
                    Some("SUCCEEDED") => {
                        mark("SUCCEEDED");
                        break;
                    }
                    Some("IN_PROGRESS") => {
                        let delay = result["callBackDelay"].as_u64().unwrap_or(DEFAULT_CALLBACK_SECS);
                        details = result.get("hookDetails").cloned().or(details);
                        let wait = self.events.duration.mul_f64(delay as f64 / 60.0);
                        if tokio::time::Instant::now() + wait > deadline {
                            mark("TIMED_OUT");
                            return Err(format!("the lifecycle hook {target} at {stage} timed out"));
                        }
                        tokio::time::sleep(wait).await;
                    }
                    _ => {
                        mark("FAILED");
                        return Err(format!("the lifecycle hook {target} at {stage} returned FAILED"));
                    }
                }
            }
        }
        for hook in pauses {
            self.pause(stage, &hook).await?;
        }
        Ok(())
    }

    /// A PAUSE hook at `stage`: waits for ContinueServiceDeployment, or for its timeout to take its action.
    async fn pause(&self, stage: &str, hook: &Value) -> Result<(), String> {
        let timeout = &hook["timeoutConfiguration"];
        let deadline = tokio::time::Instant::now() + self.minutes(timeout["timeoutInMinutes"].as_u64().unwrap_or(1440));
        let on_timeout = timeout["action"].as_str().unwrap_or("ROLLBACK").to_owned();
        let expires = Utc::now() + (deadline - tokio::time::Instant::now());
        let hook_id = self.hook_started("ecs-pause", |id| {
            json!({
                "hookId": id, "targetType": "PAUSE", "status": "AWAITING_ACTION",
                "expiresAt": expires.timestamp_millis() as f64 / 1000.0, "timeoutAction": on_timeout,
            })
        });
        let mark = |status: &str| self.mark_hook(&hook_id, status);
        // The detail of AWS's documented example ("Amazon ECS service deployment hook state change events"): no
        // deploymentId; the service deployment's ARN here and in the event's resources.
        let reported = lock(&self.state).service_deployments.get(&self.arn).map(|r| r["lifecycleStage"].clone());
        let detail = json!({
            "eventType": "INFO", "eventName": "HOOK_AWAITING_ACTION", "hookId": hook_id, "hookType": "PAUSE",
            "expiresAt": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "lifecycleStage": reported.unwrap_or(Value::Null),
            "clusterArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{}", self.key.0),
            "serviceArn": self.service_arn, "serviceDeploymentArn": self.arn,
            "updatedAt": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        let (events, resources) = (&self.events, [self.arn.clone()]);
        let put = aws_json::put_event(
            &events.eventbridge,
            &events.bus,
            "aws.ecs",
            "ECS Hook State Change",
            &resources,
            &detail,
        );
        if let Err(error) = put.await {
            eprintln!("the ECS sandbox could not publish a hook state change: {error:#}");
        }
        loop {
            let answer = lock(&self.state).answers.remove(&hook_id);
            match answer.as_deref() {
                Some("CONTINUE") => {
                    mark("SUCCEEDED");
                    return Ok(());
                }
                Some(_) => {
                    mark("SUCCEEDED");
                    return Err(format!(
                        "ContinueServiceDeployment rolled the deployment back at the pause at {stage}"
                    ));
                }
                // Stopped while paused: the deployment's next checkpoint acts on it.
                None if lock(&self.state).stops.contains_key(&self.arn) => return Ok(()),
                None if tokio::time::Instant::now() >= deadline => {
                    mark("TIMED_OUT");
                    if on_timeout == "CONTINUE" {
                        return Ok(());
                    }
                    return Err(format!("the pause hook {hook_id} at {stage} timed out"));
                }
                None => tokio::time::sleep(Duration::from_millis(20).min(self.minutes(1))).await,
            }
        }
    }

    /// The deployment's alarms now in ALARM.
    fn alarming(&self) -> Vec<String> {
        let alarms = &self.configuration["alarms"];
        if alarms["enable"] != json!(true) {
            return Vec::new();
        }
        let state = lock(&self.state);
        let names = alarms["alarmNames"].as_array().into_iter().flatten().filter_map(Value::as_str);
        names.filter(|name| state.alarms.contains(*name)).map(str::to_owned).collect()
    }

    /// Waits `minutes`, watching the alarms.
    async fn bake(&self, minutes: u64) -> Result<(), Failure> {
        let until = tokio::time::Instant::now() + self.minutes(minutes);
        loop {
            self.checkpoint()?;
            let alarming = self.alarming();
            if !alarming.is_empty() {
                return Err(Failure::Alarm(alarming));
            }
            if tokio::time::Instant::now() >= until {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20).min(self.minutes(1))).await;
        }
    }

    async fn lifecycle(&self) -> Result<(), Failure> {
        for (stage, hookable) in STAGES {
            self.checkpoint()?;
            self.update(|r| r["lifecycleStage"] = json!(stage));
            match stage {
                "SCALE_UP" => {
                    if self.rollout == Rollout::TasksFail
                        && self.configuration["deploymentCircuitBreaker"]["enable"] == json!(true)
                    {
                        return Err(Failure::CircuitBreaker);
                    }
                    tokio::time::sleep(self.events.duration).await;
                }
                "TEST_TRAFFIC_SHIFT" => {
                    if let Some(app) = &self.app {
                        app.test.route(&app.green);
                    }
                    self.hooks(stage, 100.0, 0.0).await.map_err(Failure::Hook)?;
                }
                "PRODUCTION_TRAFFIC_SHIFT" => {
                    let mut before = 0.0;
                    for (weight, wait) in self.steps() {
                        self.checkpoint()?;
                        // No stage of AWS's enum is PRE_PRODUCTION_TRAFFIC_SHIFT: the deployment reports the one it
                        // was in, or the one it enters, as the test chose.
                        let reported = match lock(&self.state).while_pre_production {
                            super::WhilePreProduction::StageBefore if before == 0.0 => "POST_TEST_TRAFFIC_SHIFT",
                            _ => stage,
                        };
                        self.update(|r| r["lifecycleStage"] = json!(reported));
                        self.hooks("PRE_PRODUCTION_TRAFFIC_SHIFT", 100.0, before).await.map_err(Failure::Hook)?;
                        before = weight;
                        self.checkpoint()?;
                        self.update(|r| r["lifecycleStage"] = json!(stage));
                        if let Some(app) = &self.app {
                            if weight >= 100.0 {
                                app.production.route(&app.green);
                            } else {
                                app.production.share(&app.green, weight.round() as u8);
                            }
                        }
                        self.update(|r| r["targetServiceRevision"]["requestedProductionTrafficWeight"] = json!(weight));
                        self.hooks(stage, 100.0, weight).await.map_err(Failure::Hook)?;
                        if wait > 0 {
                            self.bake(wait).await?;
                        }
                    }
                }
                "BAKE_TIME" => {
                    self.bake(self.configuration["bakeTimeInMinutes"].as_u64().unwrap_or(0)).await?;
                }
                _ if hookable => {
                    let production = if stage == "POST_PRODUCTION_TRAFFIC_SHIFT" { 100.0 } else { 0.0 };
                    let test = if stage == "POST_TEST_TRAFFIC_SHIFT" || production > 0.0 { 100.0 } else { 0.0 };
                    self.hooks(stage, test, production).await.map_err(Failure::Hook)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn play(self) -> Result<()> {
        publish(
            &self.events,
            &self.service_arn,
            "INFO",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            &self.id,
            "ECS deployment in progress.",
        )
        .await?;
        let failure = match self.lifecycle().await {
            Ok(()) => {
                self.update(|r| {
                    r["status"] = json!("SUCCESSFUL");
                    r["finishedAt"] = json!(Utc::now().timestamp());
                });
                self.settle("COMPLETED");
                let reason = format!("ECS deployment {} completed.", self.id);
                return publish(
                    &self.events,
                    &self.service_arn,
                    "INFO",
                    "SERVICE_DEPLOYMENT_COMPLETED",
                    &self.id,
                    &reason,
                )
                .await;
            }
            Err(failure) => failure,
        };
        let reason = match &failure {
            Failure::Hook(why) => why.clone(),
            Failure::Alarm(names) => format!("alarm {} went into ALARM", names.join(", ")),
            Failure::CircuitBreaker => "ECS deployment circuit breaker: tasks failed to start.".to_owned(),
            Failure::Stopped(stop_type) => {
                format!("Service deployment stopped by StopServiceDeployment ({stop_type}).")
            }
        };
        let rolls_back = match &failure {
            Failure::CircuitBreaker => self.configuration["deploymentCircuitBreaker"]["rollback"] == json!(true),
            Failure::Alarm(_) => self.configuration["alarms"]["rollback"] == json!(true),
            Failure::Hook(_) => true,
            Failure::Stopped(stop_type) => stop_type == "ROLLBACK",
        };
        self.update(|r| {
            r["status"] = json!(if rolls_back { "ROLLBACK_IN_PROGRESS" } else { "STOPPED" });
            r["statusReason"] = json!(reason);
            match &failure {
                Failure::Alarm(names) => {
                    r["alarms"]["status"] = json!("TRIGGERED");
                    r["alarms"]["triggeredAlarmNames"] = json!(names);
                }
                Failure::CircuitBreaker => r["deploymentCircuitBreaker"]["status"] = json!("TRIGGERED"),
                Failure::Hook(_) | Failure::Stopped(_) => {}
            }
            if rolls_back {
                r["rollback"] =
                    json!({ "reason": reason, "startedAt": Utc::now().timestamp(), "serviceRevisionArn": self.source });
            }
        });
        if rolls_back {
            // Traffic goes back, and the traffic-shift hooks run for the rollback (their answers cannot stop it).
            if let Some(app) = &self.app {
                app.production.route(&app.blue);
                app.test.route(&app.blue);
            }
            let _ = self.hooks("TEST_TRAFFIC_SHIFT", 0.0, 0.0).await;
            let _ = self.hooks("PRODUCTION_TRAFFIC_SHIFT", 0.0, 0.0).await;
            {
                let mut state = lock(&self.state);
                if let Some(service) = state.services.get_mut(&self.key) {
                    service.task_definition = self.previous.clone();
                }
            }
            self.update(|r| r["status"] = json!("ROLLBACK_SUCCESSFUL"));
        }
        self.settle("FAILED");
        publish(&self.events, &self.service_arn, "ERROR", "SERVICE_DEPLOYMENT_FAILED", &self.id, &reason).await
    }

    fn settle(&self, rollout: &str) {
        let mut state = lock(&self.state);
        if let Some(service) = state.services.get_mut(&self.key)
            && let Some(deployment) = service.deployments.iter_mut().find(|d| d["id"] == json!(self.id))
        {
            deployment["rolloutState"] = json!(rollout);
        }
    }
}
