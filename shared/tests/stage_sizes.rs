//! Bounded sizes of pipelines in stages, per strategy and per number of stages: a run that went through every deploy
//! stage with every check reported and, for ECS's own strategies, a person deciding at every pause with the most a
//! form may carry (text that does not deflate: control characters, quotes, characters of several bytes), stored as
//! DynamoDB items are: deflated JSON. One run's item stays at most 256 KB, and the pipeline's state item at most
//! 128 KB, with the most runs a pipeline holds at once.

use std::collections::BTreeMap;
use std::io::Write as _;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sluice::adapters::encode_state;
use sluice::definitions::{
    Approval, Approvers, BlueGreen, Build, Check, CircuitBreaker, DeployStage, DeployTarget, EcsNative, EntryAlarms,
    ExecutionMode, MAX_APPROVERS, MAX_CHECK_BODY, MAX_CHECK_RETRIES, MAX_CHECKS, MAX_ENV_NAME, MAX_ENV_VALUE,
    MAX_ENV_VARIABLES, MAX_OPERATORS, MAX_SOAK_ALARM_TEXT, MAX_SOAK_ALARMS, MAX_STAGE_NAME, MAX_STAGES, MAX_URL,
    Notify, OnFailure, PauseAction, PauseApproval, Rolling, SoakAlarms, Stage, StageDefinition, StageKind, TestRun,
    TestStage, TrafficShift,
};
use sluice::pipeline::{
    ApprovalDecision, BuildOutputs, Decision, Event, ExecutionId, MAX_ARN, MAX_HOOK_RESULTS, MAX_OVERRIDE, MAX_PAUSES,
    MAX_REASON, MAX_RUN_PAUSES, MAX_WAITING, PipelineState, Plan, RETAINED_FINISHED, ReleaseComparison, SourceFacts,
    TestResults, transition,
};

const RUN_ITEM_BUDGET: usize = 256 * 1024;
const STATE_ITEM_BUDGET: usize = 128 * 1024;

fn at(second: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).single().expect("valid date") + TimeDelta::seconds(second)
}

/// `bytes` bytes of text that deflate badly: pseudo-random printable characters, with control characters, quotes,
/// backslashes and characters of two to four bytes among them.
fn noise(seed: u64, bytes: usize) -> String {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let mut text = String::new();
    loop {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let pick = (state >> 33) as u32;
        let c = match pick % 20 {
            0 => char::from_u32(pick / 20 % 32).unwrap_or('?'),
            1 => ['"', '\\'][(pick / 20 % 2) as usize],
            2 => char::from_u32(0x100 + pick / 20 % 0xD000).unwrap_or('?'),
            3 => char::from_u32(0x1_0000 + pick / 20 % 0x1_0000).unwrap_or('?'),
            _ => char::from(b'!' + (pick / 20 % 94) as u8),
        };
        if text.len() + c.len_utf8() > bytes {
            return text;
        }
        text.push(c);
    }
}

fn long(c: char, len: usize) -> String {
    std::iter::repeat_n(c, len).collect()
}

#[derive(Debug, Clone, Copy)]
enum Strategy {
    BlueGreen,
    Rolling,
    EcsLinear,
    EcsCanary,
}

fn checks(lifecycle_event: &str, seed: u64) -> Vec<Check> {
    (0..MAX_CHECKS as u64)
        .map(|k| Check {
            method: "OPTIONS".into(),
            expect_body: Some(noise(seed + k, MAX_CHECK_BODY)),
            retries: MAX_CHECK_RETRIES,
            ..Check::new(lifecycle_event, format!("https://{}", noise(seed * 31 + k, MAX_URL - 8)))
        })
        .collect()
}

fn target(strategy: Strategy, seed: u64) -> DeployTarget {
    let circuit_breaker = CircuitBreaker { enable: true, rollback: true };
    match strategy {
        Strategy::BlueGreen => DeployTarget::BlueGreen(BlueGreen {
            cluster: long('c', 255),
            service: long('s', 255),
            application: long('a', 100),
            deployment_group: long('g', 100),
            deployment_config: long('d', 100),
            container: Some(long('n', 255)),
            checks: checks("AfterAllowTestTraffic", seed),
            allow_host: true,
        }),
        Strategy::Rolling => DeployTarget::Rolling(Rolling {
            cluster: long('c', 255),
            service: long('s', 255),
            minimum_healthy_percent: 100,
            maximum_percent: 200,
            circuit_breaker,
            container: Some(long('n', 255)),
            checks: checks("AfterRollout", seed),
            allow_host: true,
        }),
        Strategy::EcsLinear | Strategy::EcsCanary => DeployTarget::EcsNative(EcsNative {
            cluster: long('c', 255),
            service: long('s', 255),
            shift: match strategy {
                Strategy::EcsLinear => TrafficShift::Linear { step_tenths: 30, step_bake_time_minutes: 1 },
                _ => TrafficShift::Canary { tenths: 1, bake_time_minutes: 1440 },
            },
            bake_time_minutes: 1440,
            alarms: (0..10).map(|k| format!("{k}{}", long('a', 254))).collect(),
            circuit_breaker,
            container: Some(long('n', 255)),
            checks: checks("POST_TEST_TRAFFIC_SHIFT", seed),
            approval: Some(PauseApproval {
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                topic_arn: long('t', 256),
                timeout_minutes: 60,
                on_timeout: PauseAction::Rollback,
            }),
            allow_host: true,
        }),
    }
}

fn stage_name(k: usize) -> Stage {
    let name = format!("s{k:0>width$}", width = MAX_STAGE_NAME - 1);
    Stage::new(&name).expect("a stage name")
}

/// The most windows and deny periods a deploy stage may give, with the longest time zone names and reasons.
fn calendar() -> sluice::definitions::Calendar {
    use sluice::definitions::{Deny, Window};
    let zone = "America/Argentina/ComodRivadavia".to_owned();
    let window = |k: u16| Window { days: 0x1f, from: k, to: 1440, timezone: zone.clone() };
    let day = |k: u32| chrono::NaiveDate::from_yo_opt(2026, k + 1).expect("a date");
    let deny = |k: u32| Deny {
        from: day(k * 30),
        to: day(k * 30 + 20),
        timezone: zone.clone(),
        reason: Some(noise(u64::from(k) + 900, 80).replace(|c: char| c.is_control(), "x")),
    };
    sluice::definitions::Calendar { windows: (0..7).map(window).collect(), deny: (0..6).map(deny).collect() }
}

/// The most alarms a soak may be watched by, with the longest names a pipeline of `soaks` soaking stages may give
/// them (no control characters).
fn alarms(k: u64, soaks: usize) -> Vec<String> {
    let bytes = (MAX_SOAK_ALARM_TEXT / (MAX_SOAK_ALARMS * soaks.max(1))).min(255);
    let name = |i: u64| {
        let mut name = noise(k * 100 + i, bytes).replace(|c: char| c.is_control(), "x");
        while name.len() > bytes {
            name.pop();
        }
        name
    };
    (0..MAX_SOAK_ALARMS as u64).map(name).collect()
}

/// The most approvers an approval stage names, each with the longest address, all required, and the most operator
/// patterns, each the longest.
fn approvers() -> Approvers {
    let email = |k: u64| {
        let local: String = noise(k + 700, 200).chars().filter(char::is_ascii_alphanumeric).take(64).collect();
        let domain: String = noise(k + 800, 600).chars().filter(char::is_ascii_alphanumeric).take(27).collect();
        format!("{local}@{domain}.example")
    };
    let operator = |k: u64| {
        let name: String = noise(k + 900, 1000).chars().filter(char::is_ascii_alphanumeric).take(169).collect();
        format!("arn:aws:iam::123456789012:role/{name}")
    };
    Approvers {
        emails: (0..MAX_APPROVERS as u64).map(email).collect(),
        required: MAX_APPROVERS,
        forbid_pusher: true,
        operators: (0..MAX_OPERATORS as u64).map(operator).collect(),
    }
}

/// `deploys` deploy stages of `strategy`, each (but the last) followed by an approval or a test stage, up to the most
/// stages a pipeline has.
fn plan(strategy: Strategy, deploys: usize) -> Plan {
    let environment: BTreeMap<String, String> = (0..MAX_ENV_VARIABLES as u64)
        .map(|i| (format!("{i:0>width$}", width = MAX_ENV_NAME), noise(i, MAX_ENV_VALUE)))
        .collect();
    let approvals = (deploys - 1).min(MAX_STAGES - deploys);
    let mut stages = Vec::new();
    for k in 0..deploys {
        let deploy = DeployStage {
            target: target(strategy, k as u64),
            timeout_minutes: Some(7 * 24 * 60),
            soak_secs: (k + 1 < deploys).then_some(7 * 24 * 3600),
            // The alarm names' budget shared by the soaks and the entry alarms of the last stage.
            soak_alarms: (k + 1 < deploys).then(|| SoakAlarms { names: alarms(k as u64, deploys), strict: true }),
            environment: Some(noise(k as u64, 255).replace(|c: char| c.is_control(), "x")),
            entry_alarms: (k + 1 == deploys)
                .then(|| EntryAlarms { names: alarms(k as u64 + 50, deploys), timeout_secs: 7 * 24 * 3600 }),
            calendar: Some(calendar()),
        };
        stages.push(StageDefinition { name: stage_name(stages.len()), kind: StageKind::Deploy(Box::new(deploy)) });
        // Between deploy stages, an approval, then a test, in turn.
        if k < approvals && k % 2 == 0 {
            let approval = Approval { topic_arn: long('t', 256), timeout_secs: 3600, approvers: Some(approvers()) };
            stages.push(StageDefinition { name: stage_name(stages.len()), kind: StageKind::Approval(approval) });
        } else if k < approvals {
            let test = TestStage {
                run: TestRun::CodeBuild(long('c', 255)),
                timeout_minutes: Some(36 * 60),
                on_failure: OnFailure::Fail,
            };
            stages.push(StageDefinition { name: stage_name(stages.len()), kind: StageKind::Test(test) });
        }
    }
    Plan {
        github: Some(sluice::definitions::GitHubReport { environment: long('e', 255) }),
        build: Build { project: long('p', 255), environment },
        stages,
        notify: Some(Notify { topic_arn: long('n', 256) }),
    }
}

fn id(n: usize) -> ExecutionId {
    ExecutionId(format!("{}-{n}", long('e', 100)))
}

fn push(n: usize, plan: &Plan) -> Event {
    Event::Triggered {
        execution_id: id(n),
        source: SourceFacts {
            repository: noise(n as u64, 256),
            commit: format!("{n:0>40}"),
            before: format!("{:0>40}", n + 1_000),
            git_ref: format!("refs/heads/{}", noise(n as u64 + 1, 240)),
            pusher: noise(n as u64 + 2, 256),
            pusher_email: Some(noise(n as u64 + 5, 256)),
            delivery_id: long('d', 128),
            message: noise(n as u64 + 3, sluice::usecases::MAX_MESSAGE),
            compare_url: noise(n as u64 + 4, 512),
            pushed_at: DateTime::from_timestamp(4_102_444_799 - 100_000 + n as i64, 0),
            hook_id: Some(u64::MAX),
            compared: None,
        },
        plan: Box::new(plan.clone()),
        mode: ExecutionMode::Queued,
        ordered: None,
    }
}

/// Applies `event` at `clock` (which it moves on); an event the machine ignores changes nothing.
fn apply(state: &mut PipelineState, event: Event, clock: &mut i64) {
    *clock += 1;
    match transition(state, &event, at(*clock)) {
        Ok(Decision::Apply { state: next, .. }) => *state = next,
        Ok(Decision::Ignore(_)) => {}
        Err(error) => panic!("{} was refused: {error}", event.name()),
    }
}

/// A seed no other decision has had: each link's token hash is its own.
static DECISIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn decided(execution_id: ExecutionId, hook_id: Option<String>) -> [Event; 2] {
    let seed = DECISIONS.fetch_add(4, std::sync::atomic::Ordering::Relaxed) * 7_919;
    let token_hash = format!("{seed:0>64x}");
    [
        Event::ApprovalSent {
            execution_id: execution_id.clone(),
            token_hash: token_hash.clone(),
            personal: Vec::new(),
            // An approval stage's request shows the release against what runs where it goes: given far more than
            // the run keeps.
            compared: hook_id.is_none().then(|| Box::new(oversized_comparison(seed))),
            hook_id,
        },
        Event::ApprovalDecided {
            execution_id,
            decision: ApprovalDecision::Approved,
            approver: noise(seed, 10_000),
            comment: Some(noise(seed + 1, 10_000)),
            token_hash: Some(token_hash),
            source_ip: Some(noise(seed + 2, 10_000)),
            user_agent: Some(noise(seed + 3, 10_000)),
        },
    ]
}

/// An approval stage's request to each of its named approvers, and each one's approval, saying the most a form
/// may carry.
fn signed_off(execution_id: ExecutionId) -> Vec<Event> {
    let seed = DECISIONS.fetch_add(4 * MAX_APPROVERS as u64, std::sync::atomic::Ordering::Relaxed) * 7_919;
    let personal: Vec<String> = (0..MAX_APPROVERS as u64).map(|k| format!("{:0>64x}", seed + k)).collect();
    let sent = Event::ApprovalSent {
        execution_id: execution_id.clone(),
        token_hash: format!("{:0>64x}", seed + 99),
        personal: personal.clone(),
        compared: Some(Box::new(oversized_comparison(seed))),
        hook_id: None,
    };
    let approvals = personal.into_iter().enumerate().map(|(k, token_hash)| Event::ApprovalDecided {
        execution_id: execution_id.clone(),
        decision: ApprovalDecision::Approved,
        approver: noise(seed + k as u64, 10_000),
        comment: Some(noise(seed + 10 + k as u64, 10_000)),
        token_hash: Some(token_hash),
        source_ip: Some(noise(seed + 20 + k as u64, 10_000)),
        user_agent: Some(noise(seed + 30 + k as u64, 10_000)),
    });
    std::iter::once(sent).chain(approvals).collect()
}

/// A comparison far over every bound the run keeps it to.
fn oversized_comparison(seed: u64) -> ReleaseComparison {
    ReleaseComparison {
        running: Some(noise(seed + 4, 10_000)),
        running_image: Some(noise(seed + 5, 10_000)),
        image: noise(seed + 6, 10_000),
        changes: (0..100).map(|k| noise(seed + 7 + k, 10_000)).collect(),
        unread: Some(noise(seed + 200, 10_000)),
    }
}

/// The alarms that watch the soak of run `execution_id`'s `k`th deploy stage: all of them in ALARM as it starts.
fn watching(state: &PipelineState, execution_id: &ExecutionId, k: usize) -> Vec<String> {
    let planned =
        state.execution(execution_id).and_then(|run| run.plan.stages.iter().filter_map(|s| s.deploy()).nth(k).cloned());
    planned.map(|deploy| deploy.alarms().to_vec()).unwrap_or_default()
}

/// Takes run `n` through the deploy stage it holds: started, every pause decided, every check reported.
fn deploy_stage(state: &mut PipelineState, n: usize, strategy: Strategy, k: usize, clock: &mut i64) -> String {
    let execution_id = id(n);
    let deployment_id = format!("d-{n}-{k}");
    let service_deployment =
        format!("arn:aws:ecs:eu-west-1:123456789012:service-deployment/{}/{n}/{k}", long('x', 300));
    let native = matches!(strategy, Strategy::EcsLinear | Strategy::EcsCanary);
    let started = Event::DeploymentStarted {
        execution_id: execution_id.clone(),
        deployment_id: deployment_id.clone(),
        service_deployment: native.then(|| service_deployment.clone()),
        task_definition: Some(noise(1, 10_000)),
        previous_task_definition: Some(noise(2, 10_000)),
        in_alarm: Some(watching(state, &execution_id, k)),
    };
    apply(state, started, clock);
    if native {
        for pause in 0..MAX_PAUSES + 5 {
            let hook_id = format!("{n}-{k}-{pause}-{}", long('h', 600));
            let paused = Event::DeploymentPaused {
                execution_id: execution_id.clone(),
                service_deployment: service_deployment.clone(),
                hook_id: hook_id.clone(),
                stage: "PRE_PRODUCTION_TRAFFIC_SHIFT".into(),
                expires_at: Some(at(*clock + 3600)),
                timeout_action: None,
            };
            apply(state, paused, clock);
            if pause == 0 {
                // Before any production traffic moved: sluice continues it without asking.
                continue;
            }
            let bounded_hook = sluice::pipeline::bounded(&hook_id, sluice::pipeline::MAX_ARN);
            for event in decided(execution_id.clone(), Some(bounded_hook)) {
                apply(state, event, clock);
            }
        }
    }
    deployment_id
}

/// Every check of run `n`'s deployment `deployment_id`, reported.
fn checked(state: &mut PipelineState, n: usize, strategy: Strategy, deployment_id: &str, clock: &mut i64) {
    let execution_id = id(n);
    let lifecycle_event = match strategy {
        Strategy::BlueGreen => "AfterAllowTestTraffic",
        Strategy::Rolling => "AfterRollout",
        _ => "POST_TEST_TRAFFIC_SHIFT",
    };
    for hook in 0..MAX_HOOK_RESULTS + 3 {
        let completed = Event::HookCompleted {
            execution_id: execution_id.clone(),
            deployment_id: deployment_id.to_owned(),
            lifecycle_event: lifecycle_event.into(),
            hook_execution_id: format!("{hook}-{}", long('h', 100)),
            passed: true,
            detail: Some(noise(hook as u64, 10_000)),
            millis: Some(u64::MAX),
        };
        apply(state, completed, clock);
    }
}

/// Takes run `n` from its push through every stage; the last deployment fails when `fail`, else it is left deploying
/// there.
fn run_through(state: &mut PipelineState, n: usize, plan: &Plan, strategy: Strategy, fail: bool, clock: &mut i64) {
    apply(state, push(n, plan), clock);
    let execution_id = id(n);
    let build_id = format!("arn:aws:codebuild:eu-west-1:123456789012:build/{}:{n}", long('p', 255));
    let outputs = BuildOutputs {
        image_uri: format!("{}@sha256:{}", long('i', 900), long('f', 64)),
        artifacts: Some(format!("s3://{}", long('k', 1080))),
    };
    apply(state, Event::BuildSucceeded { execution_id: execution_id.clone(), build_id, outputs }, clock);
    for (k, planned) in plan.stages.iter().enumerate() {
        match &planned.kind {
            StageKind::Approval(_) => {
                for event in signed_off(execution_id.clone()) {
                    apply(state, event, clock);
                }
            }
            StageKind::Test(_) => {
                let build_id = format!("arn:aws:codebuild:eu-west-1:123456789012:build/{}:{n}-{k}", long('c', 255));
                let stage = planned.name;
                let started =
                    Event::TestStarted { execution_id: execution_id.clone(), stage, build_id: build_id.clone() };
                apply(state, started, clock);
                let mut results = TestResults::default();
                for status in ["SUCCEEDED", "SKIPPED", "UNKNOWN"] {
                    results.count(status, u64::MAX);
                }
                let ended = Event::TestEnded {
                    execution_id: execution_id.clone(),
                    stage,
                    build_id: Some(build_id),
                    passed: true,
                    reason: None,
                    results: Some(results),
                    detail: None,
                };
                apply(state, ended, clock);
            }
            StageKind::Deploy(_) => {
                let deployment_id = deploy_stage(state, n, strategy, k, clock);
                if !matches!(strategy, Strategy::Rolling) {
                    checked(state, n, strategy, &deployment_id, clock);
                }
                let last = plan.stages[k + 1..].iter().all(|later| later.deploy().is_none());
                let ended = if last && fail {
                    Event::DeploymentFailed {
                        execution_id: execution_id.clone(),
                        deployment_id: Some(deployment_id.clone()),
                        reason: noise(n as u64, 100_000),
                        rolled_back: true,
                    }
                } else if last {
                    return;
                } else {
                    Event::DeploymentSucceeded {
                        execution_id: execution_id.clone(),
                        deployment_id: deployment_id.clone(),
                        tasks: None,
                    }
                };
                apply(state, ended, clock);
                if matches!(strategy, Strategy::Rolling) && !(last && fail) {
                    // A rolling update's checks run once ECS completed it.
                    checked(state, n, strategy, &deployment_id, clock);
                }
                if planned.deploy().and_then(|deploy| deploy.soak_secs).is_some() {
                    *clock += 7 * 24 * 3600;
                    apply(state, Event::SoakEnded { execution_id: execution_id.clone() }, clock);
                }
            }
        }
    }
}

fn deflated(json: &str) -> usize {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json.as_bytes()).expect("deflates");
    encoder.finish().expect("deflates").len()
}

fn measure(strategy: Strategy, deploys: usize) -> (usize, usize, usize) {
    let plan = plan(strategy, deploys);
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    let mut clock = 0;
    for n in 0..RETAINED_FINISHED + 1 {
        run_through(&mut state, n, &plan, strategy, true, &mut clock);
    }
    run_through(&mut state, 100, &plan, strategy, false, &mut clock);
    let mut n = 200;
    while state.waiting() < MAX_WAITING {
        apply(&mut state, push(n, &plan), &mut clock);
        n += 1;
    }
    // A freeze saying the most it keeps, and every run in progress let into the last deploy stage through it, each
    // override saying the most it keeps.
    let by = noise(7, MAX_ARN);
    apply(&mut state, Event::Frozen { by, reason: noise(8, MAX_REASON), until: Some(at(1 << 30)) }, &mut clock);
    let last = plan.stages.iter().rev().find(|stage| stage.deploy().is_some()).map(|stage| stage.name);
    let active: Vec<ExecutionId> = state.active().map(|run| run.id.clone()).collect();
    for (k, execution_id) in (0u64..).zip(active) {
        let (by, reason) = (noise(300 + k, MAX_OVERRIDE), noise(400 + k, MAX_OVERRIDE));
        let stage = last.expect("a deploy stage");
        apply(&mut state, Event::Overridden { execution_id, stage, by, reason }, &mut clock);
    }
    assert!(state.freeze.is_some() && state.active().all(|run| run.let_in.is_some()));
    // The most effects parked: deployments of the run deploying that could not start (each names its stage; the
    // stage's target is the plan's, not stored again).
    let deploying =
        state.execution(&id(100)).and_then(|run| run.deploying().map(|(stage, d)| (stage, d.target.clone())));
    let (stage, target) = deploying.expect("run 100 deploys");
    for k in 0..=sluice::pipeline::outbox::MAX_PARKED {
        let start = sluice::pipeline::Effect::StartDeployment {
            execution_id: id(100),
            pipeline: "web".into(),
            supersede: false,
            stage,
            target: target.clone(),
            image_uri: Some(format!("{}@sha256:{}", long('i', 900), long('f', 64))),
            artifacts: Some(format!("s3://{}", long('k', 1080))),
            soak_alarms: Vec::new(),
            // The most a start's gate names, with the longest names: its stage's, the same for every start there.
            entry: Some(sluice::pipeline::EntryGate {
                alarms: alarms(200, 1),
                until: at(clock),
                calendar: Some(calendar()),
            }),
        };
        state.enqueue(vec![start], 7);
        let parked = state.pending.last().map(|p| p.id.clone()).unwrap_or_default();
        state.fail(&parked, &noise(k as u64, 10_000), true, at(clock));
    }
    assert_eq!(state.parked.len(), sluice::pipeline::outbox::MAX_PARKED);
    let fullest = state
        .executions
        .iter()
        .map(|run| {
            // As the run's item stores it: without the pauses it keeps apart, in items of their own.
            let mut stored = run.clone();
            stored.set_apart();
            serde_json::to_string(&stored).expect("serializes")
        })
        .max_by_key(|json| deflated(json))
        .expect("a run");
    let item = encode_state(&state).expect("encodes");
    (deflated(&fullest), fullest.len(), deflated(&item))
}

const STRATEGIES: [Strategy; 4] = [Strategy::BlueGreen, Strategy::Rolling, Strategy::EcsLinear, Strategy::EcsCanary];

#[test]
fn one_runs_item_stays_within_its_budget_for_every_strategy_and_number_of_stages() {
    for strategy in STRATEGIES {
        for deploys in [1, 2, 5, MAX_STAGES - 1, MAX_STAGES] {
            let (run, json, _) = measure(strategy, deploys);
            println!("{strategy:?}, {deploys} deploy stages: the fullest run's item is {run} B ({json} B of JSON)");
            assert!(run <= RUN_ITEM_BUDGET, "{strategy:?} x{deploys}: one run's item is {run} B");
        }
    }
}

#[test]
fn the_pipelines_item_stays_within_its_budget_for_every_strategy_and_number_of_stages() {
    for strategy in STRATEGIES {
        for deploys in [1, 2, 5, MAX_STAGES - 1, MAX_STAGES] {
            let (_, _, state) = measure(strategy, deploys);
            println!("{strategy:?}, {deploys} deploy stages: the pipeline's item is {state} B");
            assert!(state <= STATE_ITEM_BUDGET, "{strategy:?} x{deploys}: the pipeline's item is {state} B");
        }
    }
}

#[test]
fn a_run_keeps_its_newest_pauses_within_the_runs_bound() {
    let plan = plan(Strategy::EcsLinear, 3);
    let mut state = PipelineState::new("web", ExecutionMode::Queued);
    let mut clock = 0;
    run_through(&mut state, 1, &plan, Strategy::EcsLinear, true, &mut clock);
    let run = state.execution(&id(1)).expect("the run");
    let kept: Vec<usize> = run.stages.iter().filter_map(|r| r.deploy.as_ref()).map(|d| d.pauses.len()).collect();
    assert_eq!(kept.iter().sum::<usize>(), MAX_RUN_PAUSES, "{kept:?}");
    // The newest: the last stage keeps every pause a deployment keeps; the first stage gave its pauses up first
    assert_eq!(kept.last(), Some(&MAX_PAUSES), "{kept:?}");
    assert_eq!(kept.first(), Some(&0), "{kept:?}");
    // The pipeline's copy of the run, once it finished, keeps none of them: the run's item has them all
    let stored = state.stored();
    let abridged = stored.execution(&id(1)).expect("the run");
    assert!(abridged.abridged && abridged.stages.is_empty());
    assert_eq!(abridged.source, run.source);
}
