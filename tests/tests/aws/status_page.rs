//! The status page against moto, read in headless Chromium: the approval function serves it on its function URL at
//! `/status/<key>`, with the key from Secrets Manager; a run's link opens that run's page, and only it.

use std::sync::Arc;

use anyhow::{Context, Result};
use approval::handler::{AwsApp, Config, respond};
use sluice::adapters::DynamoDbStore;
use sluice::contract::ports::DefinitionsStore;
use sluice::contract::testing::{RecordingRunner, shipped};
use sluice::definitions::ExecutionMode;
use sluice::pipeline::EffectKind;
use sluice::usecases::{Input, handle};
use sluice_integration::browser::{Browser, PHONE};
use sluice_integration::{Stack, request, unique, workspace_root};
use sluice_sandbox::function_url::{FunctionUrl, serve};

const KEY: &str = "k7Vb2QnX9rTz4LmW8cYp3HdF6sJa";

struct Served {
    url: FunctionUrl,
}

/// The approval function on a function URL, with `SLUICE_STATUS_KEY` naming a secret in moto when `key` is given.
async fn served(stack: &Stack, key: Option<&str>) -> Result<Served> {
    let secret = match key {
        Some(key) => {
            let name = unique("sluice/status-key");
            let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
            secrets.create_secret().name(&name).secret_string(key).send().await?;
            Some(name)
        }
        None => None,
    };
    let config = Config::from_lookup(|name| match name {
        "SLUICE_TABLE" => Some(stack.table.clone()),
        "SLUICE_EVENT_BUS" => Some(stack.bus.clone()),
        "SLUICE_STATUS_KEY" => secret.clone(),
        _ => None,
    })?;
    let app = Arc::new(AwsApp::from_aws(&stack.config, &config));
    let url = serve("approval", move |request| {
        let app = Arc::clone(&app);
        async move { respond(&app, request, chrono::Utc::now()).await }
    })
    .await?;
    Ok(Served { url })
}

/// The example definitions published; web's run 1 shipped, run 2 built and waiting for its approval.
async fn two_runs(stack: &Stack) -> Result<()> {
    let store = DynamoDbStore::new(stack.dynamodb.clone(), stack.table.clone());
    let example = std::fs::read_to_string(workspace_root().join("infra/pipelines.example.toml"))?;
    store.publish(&example, None, chrono::Utc::now()).await?;
    let runner = RecordingRunner::owning(&[EffectKind::StartBuild]);
    let second = shipped("web-2");
    for event in shipped("web-1").iter().chain(&second[..2]) {
        let input =
            Input { pipeline: "web", mode: ExecutionMode::Superseded, event, receipt: None, now: chrono::Utc::now() };
        handle(&store, &runner, input).await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_status_page_shows_runs_in_progress_and_the_last_runs_and_opens_a_runs_page_on_a_phone() -> Result<()> {
    let stack = Stack::create().await?;
    two_runs(&stack).await?;
    let served = served(&stack, Some(KEY)).await?;
    let browser = Browser::start(PHONE).await?;

    browser.open(&format!("{}status/{KEY}", served.url.url)).await?;
    assert_eq!(browser.status().await?, 200);
    let shown = browser.text().await?;
    for expected in ["sluice status", "web", "api", "#2", "Waits for a decision, until", "Last runs", "succeeded"] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    assert!(shown.contains("No run in progress."), "api has none: {shown}");
    let overflow = browser.script("return document.documentElement.scrollWidth - window.innerWidth").await?;
    assert!(overflow.as_i64().is_some_and(|px| px <= 0), "the page scrolls sideways on a phone by {overflow} px");

    // The shipped run's link opens its page, whose address does not hold the key.
    browser.click_through("a[href^='run/web-1/']").await?;
    assert_eq!(browser.status().await?, 200);
    let address = browser.script("return location.href").await?;
    let address = address.as_str().context("an address")?.to_owned();
    assert!(address.starts_with(&format!("{}status/run/web-1/", served.url.url)), "{address}");
    assert!(!address.contains(KEY), "{address}");
    let shown = browser.text().await?;
    for expected in ["web run #1", "succeeded", "approved by Jane", "web:web-1", "Timeline"] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }

    // The seal of web-1 does not open web-2.
    browser.open(&address.replace("/run/web-1/", "/run/web-2/")).await?;
    assert_eq!(browser.status().await?, 404);
    assert!(browser.text().await?.contains("There is no status page here"));
    browser.quit().await
}

#[tokio::test]
async fn a_wrong_key_gets_the_same_404_as_a_wrong_seal_and_the_page_is_read_only() -> Result<()> {
    let stack = Stack::create().await?;
    two_runs(&stack).await?;
    let served = served(&stack, Some(KEY)).await?;
    let base = &served.url.url;

    let (code, headers, page) = request("GET", &format!("{base}status/{KEY}"), &[], vec![]).await?;
    assert_eq!(code, 200, "{page}");
    for (name, value) in
        [("cache-control", "no-store"), ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")]
    {
        assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
    }
    let policy = headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(!page.contains("<script"), "no script");

    let wrong_key = format!("{base}status/{}", KEY.replace('k', "K"));
    let wrong_seal = format!("{base}status/run/web-1/{}", "0".repeat(64));
    let unknown_run = format!("{base}status/run/web-9/{}", "0".repeat(64));
    let mut refused = Vec::new();
    for url in [&wrong_key, &wrong_seal, &unknown_run] {
        let (code, _, page) = request("GET", url, &[], vec![]).await?;
        assert_eq!(code, 404, "{url}");
        assert!(!page.contains("web-1") && !page.contains(KEY), "a refusal tells nothing: {page}");
        refused.push(page);
    }
    assert!(refused.windows(2).all(|pair| pair[0] == pair[1]), "the same page for each");

    let (code, headers, _) = request("POST", &format!("{base}status/{KEY}"), &[], vec![]).await?;
    assert_eq!(code, 405);
    assert_eq!(headers.get("allow").and_then(|v| v.to_str().ok()), Some("GET"));
    Ok(())
}

#[tokio::test]
async fn without_a_key_configured_the_status_page_is_off() -> Result<()> {
    let stack = Stack::create().await?;
    let served = served(&stack, None).await?;
    let (code, _, page) = request("GET", &format!("{}status/{KEY}", served.url.url), &[], vec![]).await?;
    assert_eq!(code, 404);
    assert!(page.contains("The status page is off"), "{page}");
    Ok(())
}

#[tokio::test]
async fn a_weak_key_in_the_secret_turns_the_page_away_with_a_503() -> Result<()> {
    let stack = Stack::create().await?;
    let served = served(&stack, Some("hunter2")).await?;
    let (code, _, page) = request("GET", &format!("{}status/hunter2", served.url.url), &[], vec![]).await?;
    assert_eq!(code, 503, "{page}");
    Ok(())
}
