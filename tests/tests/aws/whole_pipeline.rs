//! A whole run through every sluice function, as `make demo` runs it: GitHub's signed push to the webhook function,
//! the sandbox's CodeBuild, build-events, the approval email (SNS) and its page, decided by a POST from the page's
//! form, the deployer, CodeDeploy's blue/green deployment calling the hooks function, deploy-events and the
//! notifier. The same code is the demo, so that what the README shows is what this test checks.

use anyhow::{Context, Result};
use sluice::pipeline::{ApprovalDecision, Status};
use sluice_integration::demo::{DemoScenario, run};

#[tokio::test]
async fn a_signed_push_is_built_approved_from_the_page_shipped_blue_green_and_notified() -> Result<()> {
    let outcome = run(DemoScenario::Success, false).await?;

    let run = &outcome.run;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    assert_eq!(run.source.commit, "9b2c5f0e3d1a4b7c8e6f5a4d3c2b1a0f9e8d7c6b");
    // Built by CodeBuild, approved by the person on the page, deployed with the built image.
    let image = run.build.as_ref().and_then(|b| b.image_uri.clone()).context("the built image")?;
    // the commit's tag, pinned by its digest when the build ended
    assert!(image.starts_with("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-build@sha256:"), "{image}");
    assert_eq!(sluice::deploy::image::ImageRef::parse(&image), sluice::deploy::image::ImageRef::Pinned, "{image}");
    // Each function published what the README's map says, as the meter saw it on the wire
    let published = |function: &str, kind: &str| outcome.published.get(function).is_some_and(|k| k.contains(kind));
    assert!(published("GitHubWebhookFunction", "Execution Started"), "{:?}", outcome.published);
    assert!(published("BuildEventsFunction", "Approval Requested"), "{:?}", outcome.published);
    assert!(published("ApprovalFunction", "Deployment Requested"), "{:?}", outcome.published);
    let approval = run.approval().context("the approval")?;
    assert_eq!(approval.decision, Some(ApprovalDecision::Approved));
    assert_eq!(approval.approver.as_deref(), Some("alice@example.com"));
    let deploy = run.deploy().context("the deployment")?;
    assert!(deploy.task_definition.as_deref().is_some_and(|t| t.contains(":task-definition/sample-app:")));
    assert!(deploy.hooks.iter().all(|hook| hook.passed) && deploy.hooks.len() == 2, "{:?}", deploy.hooks);
    // Traffic moved to the replacement, and the pipeline's topic was told what shipped.
    assert_eq!(outcome.production, "green");
    let (subject, text) = &outcome.notification;
    assert_eq!(subject, "sluice: web 9b2c5f0 succeeded");
    assert!(text.starts_with(&format!("Pipeline web shipped {image}.")), "{text}");
    assert!(text.contains("approved by alice@example.com: \"ship it\""), "{text}");
    assert_eq!(outcome.clicks, [(200, 409)], "the second click on the page is told it was decided");
    Ok(())
}

#[tokio::test]
async fn two_of_three_named_approvers_approve_from_their_own_links_the_pushers_refuses_and_production_ships()
-> Result<()> {
    let outcome = run(DemoScenario::TwoApprovers, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    let approval = run.approval().context("the approval")?;
    assert_eq!(approval.personal.len(), 3, "a link for each approver");
    let by: Vec<&str> = approval.signoffs.iter().map(|signoff| signoff.by.as_str()).collect();
    assert_eq!(by, ["alice@example.com", "bob@example.com"], "the pusher, octocat@github.com, among none of them");
    assert_eq!(approval.approver.as_deref(), Some("bob@example.com"));
    assert_eq!(outcome.production, "green");
    // Each approver's page decided once: the second click is told so
    assert_eq!(outcome.clicks, [(200, 409), (200, 409)]);
    Ok(())
}

/// The pauses of the run's ECS-native deployment: (stage, traffic moved in tenths, the decision asked for).
fn pauses(run: &sluice::pipeline::Execution) -> Vec<(String, u32, Option<ApprovalDecision>)> {
    let pauses = run.deploy().into_iter().flat_map(|deploy| &deploy.pauses);
    pauses.map(|p| (p.stage.clone(), p.shifted_tenths, p.approval.as_ref().and_then(|a| a.decision))).collect()
}

#[tokio::test]
async fn an_ecs_canary_pauses_after_its_canary_step_is_approved_from_the_page_and_ships() -> Result<()> {
    let outcome = run(DemoScenario::Canary, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    // Before the canary step nothing had moved (sluice continued that pause itself); after it, 20 % had, and the
    // person approved.
    let stage = "PRE_PRODUCTION_TRAFFIC_SHIFT".to_owned();
    assert_eq!(pauses(run), [(stage.clone(), 0, None), (stage, 200, Some(ApprovalDecision::Approved))]);
    let deploy = run.deploy().context("the deployment")?;
    assert!(deploy.hooks.iter().any(|h| h.lifecycle_event == "POST_TEST_TRAFFIC_SHIFT" && h.passed), "{deploy:?}");
    assert_eq!(outcome.production, "green");
    assert!(outcome.notification.1.contains("PRE_PRODUCTION_TRAFFIC_SHIFT at 20%: approved by alice@example.com"));
    // Each page decided once: the approval stage's and the pause's, each clicked twice (the second click: 409)
    assert_eq!(outcome.clicks, [(200, 409), (200, 409)]);
    Ok(())
}

#[tokio::test]
async fn an_ecs_canary_rejected_at_its_pause_is_rolled_back_by_ecs_and_the_run_names_who_and_where() -> Result<()> {
    let outcome = run(DemoScenario::CanaryReject, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(
            "rolled back by alice@example.com at the PRE_PRODUCTION_TRAFFIC_SHIFT pause (20% of production on the new \
             revision): p99 latency doubled on the canary"
        ),
        "{reason}"
    );
    assert_eq!(pauses(run).last().map(|p| p.2), Some(Some(ApprovalDecision::Rejected)));
    assert_eq!(outcome.clicks.last(), Some(&(200, 409)), "a second click at the pause is told it was decided");
    // Production is back on the revision that served before, and the service on its task definition.
    assert_eq!(outcome.production, "blue");
    assert_eq!(
        outcome.service_task_definition.as_deref(),
        Some("arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0")
    );
    Ok(())
}

/// The stages a run in stages entered, in order.
fn stage_names(run: &sluice::pipeline::Execution) -> Vec<String> {
    run.stages.iter().map(|record| record.name.to_string()).collect()
}

#[tokio::test]
async fn a_release_promoted_through_staging_and_a_sign_off_reaches_production_with_the_same_digest() -> Result<()> {
    let outcome = run(DemoScenario::Promote, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    assert_eq!(stage_names(run), ["staging", "sign-off", "production"]);
    // Built once; each deploy stage's task definition, as ECS describes it, runs the build's image by its digest
    let built = run.build.as_ref().and_then(|build| build.image_uri.clone()).context("the build's image")?;
    assert!(built.contains("@sha256:"), "{built}");
    let expected = [("staging".to_owned(), Some(built.clone())), ("production".to_owned(), Some(built))];
    assert_eq!(outcome.stage_images, expected);
    let staging = run.record(sluice::pipeline::Stage::new("staging").context("a stage")?).context("staging")?;
    assert!(staging.deploy.as_ref().is_some_and(|d| d.hooks.iter().all(|h| h.passed) && !d.hooks.is_empty()));
    // The sign-off's page and production's pause each decided once (the second click: 409)
    assert_eq!(outcome.clicks, [(200, 409), (200, 409)]);
    assert_eq!(outcome.production, "green");
    assert!(outcome.notification.1.contains("sign-off"), "{}", outcome.notification.1);
    // Each deploy stage is its own GitHub Deployment, in its environment (the stage's name unless it names one)
    let environments: Vec<(&str, Option<&str>)> = outcome
        .deployment_states
        .iter()
        .map(|(environment, states)| (environment.as_str(), states.last().map(String::as_str)))
        .collect();
    assert_eq!(environments, [("staging", Some("success")), ("production", Some("success"))]);
    Ok(())
}

#[tokio::test]
async fn a_release_that_fails_in_production_rolls_production_back_and_staging_keeps_it() -> Result<()> {
    let outcome = run(DemoScenario::PromoteFail, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("in production: the POST_TEST_TRAFFIC_SHIFT checks failed"), "{reason}");
    assert_eq!(stage_names(run), ["staging", "sign-off", "production"]);
    // Production went back to blue; staging still runs the task definition the run deployed there
    assert_eq!(outcome.production, "blue");
    let staging = run.record(sluice::pipeline::Stage::new("staging").context("a stage")?).context("staging")?;
    let deployed = staging.deploy.as_ref().and_then(|deploy| deploy.task_definition.clone());
    assert!(deployed.is_some());
    assert_eq!(outcome.staging_task_definition, deployed);
    let environments: Vec<(&str, Option<&str>)> = outcome
        .deployment_states
        .iter()
        .map(|(environment, states)| (environment.as_str(), states.last().map(String::as_str)))
        .collect();
    assert_eq!(environments, [("staging", Some("success")), ("production", Some("failure"))]);
    Ok(())
}

#[tokio::test]
async fn a_release_tested_between_staging_and_production_reaches_production_with_its_test_results() -> Result<()> {
    let outcome = run(DemoScenario::Verify, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    assert_eq!(stage_names(run), ["staging", "smoke", "e2e", "production"]);
    let smoke = run.record(sluice::pipeline::Stage::new("smoke").context("a stage")?).context("smoke")?;
    let checked = smoke.test.as_ref().context("smoke's record")?;
    assert_eq!((checked.passed, checked.checks), (Some(true), 1), "{checked:?}");
    let e2e = run.record(sluice::pipeline::Stage::new("e2e").context("a stage")?).context("e2e")?;
    let test = e2e.test.as_ref().context("the test's record")?;
    assert_eq!(test.passed, Some(true));
    let summary = test.results.as_ref().map(sluice::pipeline::TestResults::summary);
    assert_eq!(summary.as_deref(), Some("12 passed, 0 failed, 1 skipped"));
    assert!(test.build_id.as_deref().is_some_and(|id| id.contains(":build/web-e2e-build:")), "{test:?}");
    // Build-events was woken by Test Requested, which the function that ended staging put on the bus
    let published = |kind: &str| outcome.published.values().any(|kinds| kinds.contains(kind));
    assert!(published("Test Requested"), "{:?}", outcome.published);
    let built = run.build.as_ref().and_then(|build| build.image_uri.clone()).context("the build's image")?;
    let expected = [("staging".to_owned(), Some(built.clone())), ("production".to_owned(), Some(built))];
    assert_eq!(outcome.stage_images, expected);
    assert!(
        outcome.notification.1.contains("e2e        web-e2e-build: tests passed: 12 passed"),
        "{}",
        outcome.notification.1
    );
    // Staging's tasks ran the digest built, and its soak, watched by an alarm that stayed OK, was ended by
    // deploy-events once the reconciler rang Soak Ended
    let staging = run.record(sluice::pipeline::Stage::new("staging").context("a stage")?).context("staging")?;
    let deploy = staging.deploy.as_ref().context("staging's deployment")?;
    let check = deploy.digest_check.as_ref().context("staging's digest check")?;
    assert_eq!((check.passed(), check.tasks), (true, 2), "{check:?}");
    assert_eq!((deploy.soak_until.is_some(), deploy.alarm.as_ref()), (true, None));
    assert!(
        outcome.published.get("ReconcilerFunction").is_some_and(|k| k.contains("Soak Ended")),
        "{:?}",
        outcome.published
    );
    Ok(())
}

#[tokio::test]
async fn an_alarm_going_into_alarm_during_stagings_soak_rolls_staging_back_and_production_is_never_entered()
-> Result<()> {
    let outcome = run(DemoScenario::SoakAlarm, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    assert_eq!(stage_names(run), ["staging"]);
    let reason = run.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("in staging: alarm web-staging-5xx went into ALARM during the soak (Threshold Crossed"),
        "{reason}"
    );
    // The alarm already firing before the deployment was reported, and did not block
    let deploy = run.deploy().context("staging's deployment")?;
    assert_eq!(deploy.in_alarm_before.as_deref(), Some(&["web-staging-latency".to_owned()][..]));
    // Staging runs what it ran before again
    let before = "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0";
    assert_eq!(outcome.staging_task_definition.as_deref(), Some(before));
    assert!(
        outcome.published.get("DeployEventsFunction").is_some_and(|k| k.contains("Rollback Requested")),
        "{:?}",
        outcome.published
    );
    Ok(())
}

/// The demo of `scenario`, on a thread with the stack of a program's main thread, as `make demo` runs it: the
/// operator's commands and the functions run in this one test thread, whose 2 MB a debug build's frames can exceed.
fn on_a_main_stack(scenario: DemoScenario) -> Result<sluice_integration::demo::DemoOutcome> {
    let demo = std::thread::Builder::new().stack_size(8 << 20).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(run(scenario, false))
    })?;
    demo.join().map_err(|_| anyhow::anyhow!("the demo's thread panicked"))?
}

/// The run held before production shipped the build's image to staging and production; GitHub showed it waiting
/// (a status that `waiting` says) before it deployed production; the reconciler rang a doorbell (`Effects Due`).
fn held_before_production_then_shipped(
    outcome: &sluice_integration::demo::DemoOutcome,
    waiting: impl Fn(&str) -> bool,
) -> Result<()> {
    let run = &outcome.run;
    assert_eq!(run.status, Status::Succeeded, "{run:#?}");
    assert_eq!(stage_names(run), ["staging", "production"]);
    let built = run.build.as_ref().and_then(|build| build.image_uri.clone()).context("the build's image")?;
    let expected = [("staging".to_owned(), Some(built.clone())), ("production".to_owned(), Some(built))];
    assert_eq!(outcome.stage_images, expected);
    let said: Vec<&str> = outcome.commit_statuses.iter().map(|(_, description)| description.as_str()).collect();
    let held = said.iter().position(|d| waiting(d));
    let production = said.iter().rposition(|d| d.starts_with("run #1: deploying to production"));
    assert!(held.is_some() && held < production, "{said:?}");
    assert!(
        outcome.published.get("ReconcilerFunction").is_some_and(|k| k.contains("Effects Due")),
        "{:?}",
        outcome.published
    );
    Ok(())
}

#[test]
fn a_run_frozen_while_in_staging_waits_before_production_and_deploys_the_same_image_once_unfrozen() -> Result<()> {
    let outcome = on_a_main_stack(DemoScenario::Freeze)?;
    // GitHub showed the run waiting for the freeze; the freeze is lifted, and the notifier was woken by the held
    // run's doorbell
    held_before_production_then_shipped(&outcome, |said| {
        said.ends_with("waiting to deploy to production: deployments frozen: incident 4312: checkout errors")
    })
}

#[test]
fn a_run_waits_before_production_while_its_entry_alarm_is_in_alarm_and_deploys_there_once_it_is_ok() -> Result<()> {
    // The demo itself fails unless the start waited (no failed attempt) and production stayed untouched meanwhile.
    let outcome = on_a_main_stack(DemoScenario::EntryAlarm)?;
    // GitHub showed the run waiting for the alarm; the reconciler's look rang the deployer once the wait was over
    held_before_production_then_shipped(&outcome, |said| {
        said.starts_with("run #1: waiting to deploy to production for alarm web-prod-5xx to leave ALARM (entry_alarms)")
    })
}

#[tokio::test]
async fn tasks_running_another_image_than_the_one_built_fail_the_check_and_the_service_goes_back() -> Result<()> {
    let outcome = run(DemoScenario::DigestMismatch, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::RolledBack, "{run:#?}");
    let reason = run.reason.as_deref().unwrap_or_default();
    assert!(
        reason
            .starts_with("what runs is not what was built: 2 of 2 tasks run another image than the release's sha256:"),
        "{reason}"
    );
    assert!(reason.contains("runs sha256:2c26b46b68ff…"), "{reason}");
    let deploy = run.deploy().context("the deployment")?;
    assert!(deploy.hooks.is_empty(), "no AfterRollout check ran: {:?}", deploy.hooks);
    let before = "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0";
    assert_eq!(outcome.service_task_definition.as_deref(), Some(before));
    Ok(())
}

#[tokio::test]
async fn a_release_whose_tests_fail_stops_at_its_test_stage_and_the_notification_names_the_failed_tests() -> Result<()>
{
    let outcome = run(DemoScenario::VerifyFail, false).await?;
    let run = &outcome.run;
    assert_eq!(run.status, Status::Failed, "{run:#?}");
    assert_eq!(stage_names(run), ["staging", "smoke", "e2e"], "production is never entered");
    let reason = run.reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("in e2e: 2 test cases failed (12 passed, 2 failed, 1 skipped: "), "{reason}");
    let text = &outcome.notification.1;
    for named in ["FAILED CheckoutTest.pays_with_card: expected 200, got 502", "FAILED LoginTest.rejects_bad_password"]
    {
        assert!(text.contains(named), "{text}");
    }
    // Production still runs what it ran before; GitHub shows the run failed, staging's Deployment a success
    let before = "arn:aws:ecs:us-east-1:123456789012:task-definition/sample-app:0";
    assert_eq!(outcome.service_task_definition.as_deref(), Some(before));
    let (state, description) = outcome.commit_statuses.last().context("a commit status")?;
    assert_eq!(state, "failure");
    assert!(description.contains("in e2e: 2 test cases failed"), "{description}");
    let environments: Vec<&str> =
        outcome.deployment_states.iter().map(|(environment, _)| environment.as_str()).collect();
    assert_eq!(environments, ["staging"]);
    Ok(())
}
