//! Headless Chromium driven over the W3C WebDriver protocol, as a person's browser: Debian's `chromium` and
//! `chromium-driver` (`make test` installs them), spoken to over HTTP by [`crate::request`].
//!
//! `CHROMEDRIVER` and `CHROMIUM` name other binaries; by default `chromedriver` on the PATH and `/usr/bin/chromium`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::request;

/// The key under which WebDriver names an element (W3C WebDriver, "elements").
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session; the driver (and with it Chromium) is killed when it is dropped.
pub struct Browser {
    session: String,
    _driver: tokio::process::Child,
    _profile: TempDir,
}

/// A phone-sized window (CSS pixels), as the approval page must be readable on one.
pub const PHONE: (u32, u32) = (390, 844);

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session whose screen is `width` x
    /// `height` CSS pixels, as a phone's (Chromium's device emulation; a desktop window is never below 500 wide). Chromium runs with no background networking: this machine reaches no outside host.
    pub async fn start((width, height): (u32, u32)) -> Result<Self> {
        let driver_bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = tokio::process::Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("starting {driver_bin}: install Debian's chromium and chromium-driver (make test does)")
            })?;
        let profile = TempDir::new("chromium")?;
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok((200, _, _)) = request("GET", &format!("{base}/status"), &[], vec![]).await {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !ready {
            bail!("{driver_bin} did not answer on port {port} within 5 s");
        }
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "mobileEmulation": { "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1, "touch": true } },
            },
        }}});
        let created = call(&base, "POST", "/session", Some(capabilities)).await.context("a Chromium session")?;
        let id = created["sessionId"].as_str().context("a session id")?;
        Ok(Self { session: format!("{base}/session/{id}"), _driver: driver, _profile: profile })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        call(&self.session, method, path, body).await
    }

    /// Opens `url` in the current window and waits for it to load.
    pub async fn open(&self, url: &str) -> Result<()> {
        self.call("POST", "/url", Some(json!({ "url": url }))).await.map(drop)
    }

    /// The WebDriver id of the first element matching a CSS selector on the current page.
    async fn find(&self, css: &str) -> Result<String> {
        let found = self.call("POST", "/element", Some(json!({ "using": "css selector", "value": css }))).await?;
        let id = found[ELEMENT].as_str().with_context(|| format!("no element id for {css}: {found}"))?;
        Ok(id.to_owned())
    }

    /// Types `text` into the element matching `css`, as keystrokes.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let id = self.find(css).await?;
        self.call("POST", &format!("/element/{id}/value"), Some(json!({ "text": text }))).await.map(drop)
    }

    /// Clicks the element matching `css` and waits for the page it leads to: a click returns before the navigation
    /// it starts, so this waits for a new document (another `performance.timeOrigin`) that has loaded.
    pub async fn click_through(&self, css: &str) -> Result<()> {
        const PAGE: &str = "return [performance.timeOrigin, document.readyState]";
        let before = self.script(PAGE).await?[0].clone();
        let id = self.find(css).await?;
        self.call("POST", &format!("/element/{id}/click"), Some(json!({}))).await?;
        for _ in 0..200 {
            // Mid-navigation the script may find no document to run in: try again.
            if let Ok(now) = self.script(PAGE).await
                && now[0] != before
                && now[1] == "complete"
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("clicking {css} led to no new page within 10 s")
    }

    /// The text the current page shows.
    pub async fn text(&self) -> Result<String> {
        let id = self.find("body").await?;
        let text = self.call("GET", &format!("/element/{id}/text"), None).await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` in the page (WebDriver's own channel, not subject to the page's CSP) and returns its value.
    pub async fn script(&self, script: &str) -> Result<Value> {
        self.call("POST", "/execute/sync", Some(json!({ "script": script, "args": [] }))).await
    }

    /// The HTTP status the current page was served with (Navigation Timing's `responseStatus`).
    pub async fn status(&self) -> Result<u16> {
        let status = self.script("return performance.getEntriesByType('navigation')[0].responseStatus").await?;
        status.as_u64().and_then(|s| u16::try_from(s).ok()).with_context(|| format!("no response status: {status}"))
    }

    /// The current window's handle.
    pub async fn window(&self) -> Result<String> {
        let handle = self.call("GET", "/window", None).await?;
        handle.as_str().map(str::to_owned).context("a window handle")
    }

    /// Opens a new tab and switches to it; returns its handle.
    pub async fn new_tab(&self) -> Result<String> {
        let opened = self.call("POST", "/window/new", Some(json!({ "type": "tab" }))).await?;
        let handle = opened["handle"].as_str().context("a new window's handle")?.to_owned();
        self.switch_to(&handle).await?;
        Ok(handle)
    }

    /// Switches to the window `handle`.
    pub async fn switch_to(&self, handle: &str) -> Result<()> {
        self.call("POST", "/window", Some(json!({ "handle": handle }))).await.map(drop)
    }

    /// A PNG of the current window.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        use base64::Engine as _;
        let png = self.call("GET", "/screenshot", None).await?;
        Ok(base64::engine::general_purpose::STANDARD.decode(png.as_str().context("a screenshot")?)?)
    }

    /// Ends the session (Chromium quits); the driver goes with `self`.
    pub async fn quit(self) -> Result<()> {
        self.call("DELETE", "", None).await.map(drop)
    }
}

/// One WebDriver command; its `value`, or the driver's error with its message.
async fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let headers = [("content-type", "application/json; charset=utf-8")];
    let (status, _, text) = request(method, &format!("{base}{path}"), &headers, body).await?;
    let answer: Value =
        serde_json::from_str(&text).with_context(|| format!("WebDriver {method} {path} answered {status}: {text}"))?;
    if status != 200 {
        let error = &answer["value"];
        bail!("WebDriver {method} {path}: {} ({status}): {}", error["error"], error["message"]);
    }
    Ok(answer["value"].clone())
}

/// A directory removed when dropped: Chromium's fresh profile.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(crate::unique(&format!("sluice-{prefix}")));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
