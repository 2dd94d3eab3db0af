//! The status page: a read-only view of every pipeline (its runs in progress, stage by stage, and its last runs),
//! served by the approval function at `/status/<key>`, and one run's page at `/status/run/<run>/<seal>`. Pure: the
//! key and the facts in, status and HTML out.
//!
//! The key is a per-stack secret (in Secrets Manager): whoever has it sees every pipeline. A run's page needs only
//! its seal, an HMAC of the run's id under the key, so that a link to one run (in a GitHub commit status, say)
//! shows that run and nothing else, and cannot be turned into another run's link or the key.

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::html::{Page, document, escape};
use super::text::{first_line, hex, span};
use crate::github::webhook::decode_hex;
use crate::pipeline::OutcomeReport;
use crate::pipeline::{Execution, ExecutionId, Stage, Status, short_commit};

type HmacSha256 = hmac::Hmac<Sha256>;

/// How often the overview reloads itself (a `refresh` meta tag: no script).
pub const REFRESH_SECONDS: u32 = 30;
/// How many ended runs the overview lists per pipeline.
pub const LAST_RUNS: usize = 5;
/// The shortest key accepted: a shorter one would be guessable.
pub const MIN_KEY_CHARS: usize = 20;

/// The status page's key. Its `Debug` does not show it.
#[derive(Clone)]
pub struct StatusKey(SecretString);

impl std::fmt::Debug for StatusKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusKey(..)")
    }
}

/// A key that would protect nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the status page key must be at least {MIN_KEY_CHARS} letters and digits (the stack generates one); \
     it is {0} characters, or has other characters"
)]
pub struct WeakKey(usize);

impl StatusKey {
    /// The key as kept in the secret: letters and digits only (it is a path segment), at least [`MIN_KEY_CHARS`].
    pub fn new(secret: SecretString) -> Result<Self, WeakKey> {
        let text = secret.expose_secret().trim();
        if text.len() < MIN_KEY_CHARS || !text.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(WeakKey(text.chars().count()));
        }
        Ok(Self(SecretString::from(text.to_owned())))
    }

    /// Whether `given` is the key, compared in constant time (as digests, so that not even its length shows).
    pub fn accepts(&self, given: &str) -> bool {
        let expected = Sha256::digest(self.0.expose_secret().as_bytes());
        Sha256::digest(given.as_bytes()).ct_eq(&expected).into()
    }

    /// The seal of `run`'s page.
    pub fn seal(&self, run: &ExecutionId) -> String {
        hex(&self.mac(run).finalize().into_bytes())
    }

    /// Whether `given` is `run`'s seal, compared in constant time.
    pub fn accepts_seal(&self, run: &ExecutionId, given: &str) -> bool {
        decode_hex(given).is_some_and(|bytes| self.mac(run).verify_slice(&bytes).is_ok())
    }

    /// The path of the overview, from the site's root: `status/<key>`. It holds the key: for its owner's eyes.
    pub fn overview_path(&self) -> String {
        format!("status/{}", self.0.expose_secret())
    }

    /// The path of `run`'s page, from the site's root: `status/run/<run>/<seal>`.
    pub fn run_path(&self, run: &ExecutionId) -> String {
        format!("status/run/{}/{}", run.0, self.seal(run))
    }

    fn mac(&self, run: &ExecutionId) -> HmacSha256 {
        // An HMAC takes a key of any length.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.0.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!());
        mac.update(b"sluice status run v1\0");
        mac.update(run.0.as_bytes());
        mac
    }
}

/// What the overview shows of one pipeline.
#[derive(Debug, Clone)]
pub struct PipelineView {
    pub name: String,
    /// `blue_green`, `rolling`, `ecs_canary`, ...
    pub strategy: String,
    pub repository: String,
    /// Its runs that have not ended, oldest first, each with its story.
    pub in_progress: Vec<(Execution, Story)>,
    /// Its last runs that ended, newest first.
    pub ended: Vec<Execution>,
    /// The freeze that holds, if it is frozen.
    pub freeze: Option<crate::pipeline::Freeze>,
}

/// What the page tells of a run besides its record: what it waits for, and its timeline, a line each. The timeline
/// tells them (`present::timeline`); the use case that makes the page hands them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Story {
    pub waits_for: String,
    pub timeline: Vec<String>,
}

/// A request to the status page, read from its path (after `/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusRequest<'a> {
    /// `/status/<key>`: every pipeline.
    Overview { key: &'a str },
    /// `/status/run/<run>/<seal>`: one run.
    Run { run: &'a str, seal: &'a str },
}

impl<'a> StatusRequest<'a> {
    /// The request a path names, or `None` if it is not a status page's path.
    pub fn parse(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix("/status/")?;
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["run", run, seal] if !run.is_empty() && !seal.is_empty() => Some(Self::Run { run, seal }),
            [key] if !key.is_empty() => Some(Self::Overview { key }),
            _ => None,
        }
    }
}

/// Every pipeline: its runs in progress (their stages, what each waits for, their timeline) and its last runs.
pub fn overview(pipelines: &[PipelineView], key: &StatusKey, now: DateTime<Utc>) -> Page {
    let mut body = format!(
        "<main class=\"wide\"><h1>sluice status</h1><p class=\"note\">As of {} UTC; this page reloads every \
         {REFRESH_SECONDS} s.</p>",
        now.format("%Y-%m-%d %H:%M:%S")
    );
    if pipelines.is_empty() {
        body.push_str("<p>No pipeline is published: <code>sluice publish FILE</code> publishes them.</p>");
    }
    for pipeline in pipelines {
        body.push_str(&format!(
            "<section><h2 id=\"{0}\">{0}</h2><p class=\"note\">{1} · {2}</p>",
            escape(&pipeline.name),
            escape(&pipeline.strategy),
            escape(&pipeline.repository)
        ));
        if let Some(freeze) = &pipeline.freeze {
            let line = crate::present::text::freeze(freeze);
            body.push_str(&format!("<p class=\"bad\"><strong>Deployments stopped</strong>: {}.</p>", escape(&line)));
        }
        if pipeline.in_progress.is_empty() {
            body.push_str("<p>No run in progress.</p>");
        }
        for (run, story) in &pipeline.in_progress {
            body.push_str(&format!(
                "<article><h3><a href=\"{}\">#{}</a> {}</h3>{}<p>Waits for {}.</p><pre>{}</pre></article>",
                escape(&relative(key, &run.id)),
                run.seq,
                headline(run),
                stages(run),
                escape(&story.waits_for),
                escape(&story.timeline.join("\n"))
            ));
        }
        if !pipeline.ended.is_empty() {
            body.push_str(&ended_table(&pipeline.ended, key));
        }
        body.push_str("</section>");
    }
    body.push_str("</main>");
    let refresh = format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">");
    document(200, "Status", &refresh, &body)
}

/// One run: who pushed what, how it stands or ended and why, its stages, and everything that happened to it.
pub fn run_page(run: &Execution, story: &Story, now: DateTime<Utc>) -> Page {
    let source = &run.source;
    let mut facts = vec![
        ("Pipeline", escape(&run.pipeline)),
        ("Repository", escape(&source.repository)),
        ("Ref", escape(&source.git_ref)),
        ("Commit", format!("<code>{}</code> {}", escape(&source.commit), escape(first_line(&source.message)))),
        ("Pushed by", escape(&source.pusher)),
        ("Standing", outcome(run)),
    ];
    if let Some(ordered) = &run.ordered {
        facts.push(("Ordered", escape(ordered)));
    }
    if let Some(reason) = &run.reason {
        facts.push(("Why", escape(reason)));
    }
    if !run.status.is_finished() {
        facts.push(("Waits for", escape(&story.waits_for)));
    }
    if let Some(image) = run.build.as_ref().and_then(|build| build.image_uri.as_deref()) {
        facts.push(("Image", escape(image)));
    }
    let facts: String = facts.iter().map(|(label, value)| format!("<dt>{label}</dt><dd>{value}</dd>")).collect();
    let body = format!(
        "<main class=\"wide\"><h1>{} run #{}</h1><dl>{facts}</dl>{}<h2>Timeline</h2><pre>{}</pre>\
         <p class=\"note\">{} · as of {} UTC</p></main>",
        escape(&run.pipeline),
        run.seq,
        stages(run),
        escape(&story.timeline.join("\n")),
        escape(&run.id.0),
        now.format("%Y-%m-%d %H:%M:%S")
    );
    let head = if run.status.is_finished() {
        String::new()
    } else {
        format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">")
    };
    document(200, &format!("{} #{}", run.pipeline, run.seq), &head, &body)
}

/// The same page for a wrong key, a wrong seal and an unknown run: nothing tells them apart.
pub fn not_found() -> Page {
    document(
        404,
        "Not found",
        "",
        "<h1>There is no status page here</h1><p>Check the link: the status page's address is in the stack's \
         outputs (<code>sluice page</code> prints it).</p>",
    )
}

/// The status page is not configured on this function.
pub fn disabled() -> Page {
    document(
        404,
        "Not found",
        "",
        "<h1>The status page is off</h1><p>This function has no status page key (<code>SLUICE_STATUS_KEY</code>).</p>",
    )
}

fn relative(key: &StatusKey, run: &ExecutionId) -> String {
    // The overview is at /status/<key>: a relative link leaves the key out of the run's address.
    key.run_path(run).trim_start_matches("status/").to_owned()
}

fn headline(run: &Execution) -> String {
    format!(
        "<code>{}</code> {} by {} · {}",
        escape(short_commit(&run.source.commit)),
        escape(first_line(&run.source.message)),
        escape(&run.source.pusher),
        outcome(run)
    )
}

fn outcome(run: &Execution) -> String {
    let class = match run.status {
        Status::Succeeded => "done",
        Status::Running(_) | Status::Waiting(_) => "now",
        Status::Skipped | Status::Superseded => "note",
        _ => "bad",
    };
    format!("<span class=\"{class}\">{}</span>", escape(&run.status.to_string()))
}

/// The run's stages in order (the build, then its plan's stages), each done with its time, under way, or not
/// reached.
fn stages(run: &Execution) -> String {
    let report = OutcomeReport::of(run);
    let planned = std::iter::once(Stage::BUILD).chain(run.plan.stages.iter().map(|stage| stage.name));
    let items: String = planned
        .map(|stage| {
            let time = report.stages.iter().find(|time| time.stage == stage);
            let (class, what) = match (time, time.and_then(|time| time.finished_at)) {
                (Some(time), Some(end)) => {
                    let failed = run.status.is_finished()
                        && run.status != Status::Succeeded
                        && report.stages.last().is_some_and(|last| last.stage == stage);
                    let tested = run.record(stage).and_then(|record| record.test.as_ref()?.results.as_ref());
                    let tested = tested.map(|results| format!(" · {}", results.summary())).unwrap_or_default();
                    let took = span(end - time.started_at);
                    let verified = verified(run, stage);
                    (if failed { "bad" } else { "done" }, format!("{stage} {took}{tested}{verified}"))
                }
                (Some(_), None) if run.status.is_finished() => ("bad", format!("{stage} (stopped)")),
                (Some(_), None) => ("now", format!("{stage} …")),
                (None, _) if run.status == Status::Waiting(stage) => ("now", format!("{stage} (waiting its turn)")),
                (None, _) => ("", stage.to_string()),
            };
            format!("<li class=\"{class}\">{}</li>", escape(&what))
        })
        .collect();
    format!("<ol class=\"stages\">{items}</ol>")
}

/// What a deploy stage verified: its digest check, and the alarm that fired during its soak or the alarms that
/// watched it.
fn verified(run: &Execution, stage: Stage) -> String {
    let Some(deploy) = run.record(stage).and_then(|record| record.deploy.as_ref()) else { return String::new() };
    let mut said = String::new();
    if let Some(check) = &deploy.digest_check {
        said.push_str(&format!(" · {}", check.summary()));
    }
    let alarms = run.plan.deploy_stage(stage).map(|planned| planned.alarms()).unwrap_or_default();
    match &deploy.alarm {
        Some(alarm) => said.push_str(&format!(" · alarm {} went into ALARM during the soak", alarm.name)),
        None if deploy.soak_until.is_some() && !alarms.is_empty() => {
            said.push_str(&format!(" · soak watched by {}", alarms.join(", ")));
        }
        None => {}
    }
    said
}

fn ended_table(runs: &[Execution], key: &StatusKey) -> String {
    let rows: String = runs
        .iter()
        .map(|run| {
            let took = run.finished_at.map(|end| span(end - run.created_at)).unwrap_or_default();
            let why = run.reason.as_deref().map(escape).unwrap_or_default();
            format!(
                "<tr><td><a href=\"{}\">#{}</a></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{why}</td></tr>",
                escape(&relative(key, &run.id)),
                run.seq,
                run.created_at.format("%Y-%m-%d %H:%M"),
                escape(short_commit(&run.source.commit)),
                escape(&run.source.pusher),
                outcome(run),
                escape(&took)
            )
        })
        .collect();
    format!(
        "<div class=\"scroll\"><table><caption class=\"note\">Last runs</caption><tr><th>Run</th><th>Pushed</th><th>Commit</th>\
         <th>By</th><th>Outcome</th><th>Took</th><th>Why</th></tr>{rows}</table></div>"
    )
}

#[cfg(test)]
mod tests;
