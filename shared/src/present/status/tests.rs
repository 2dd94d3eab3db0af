use chrono::TimeDelta;

use super::*;
use crate::contract::testing::{push, shipped};
use crate::definitions::ExecutionMode;
use crate::pipeline::{Decision, Event, PipelineState, transition};

const KEY: &str = "Zq3v8KfX2mT9wLr4Yb7nHc1d";

fn key() -> StatusKey {
    StatusKey::new(SecretString::from(KEY)).expect("a strong key")
}

fn at(seconds: i64) -> DateTime<Utc> {
    "2026-11-25T10:00:00Z".parse::<DateTime<Utc>>().expect("time") + TimeDelta::seconds(seconds)
}

/// Run `id` of web after `events`, one a minute from 10:00.
fn run(id: &str, events: &[Event]) -> Execution {
    let mut state = PipelineState::new("web", ExecutionMode::Superseded);
    for (minute, event) in (0..).zip(events) {
        match transition(&state, event, at(60 * minute)) {
            Ok(Decision::Apply { state: next, .. }) => state = next,
            other => panic!("{event:?} applies: {other:?}"),
        }
    }
    state.execution(&ExecutionId::from(id)).cloned().expect("the run")
}

/// The story of `run` at `now`, as the status page's use case has the timeline tell it.
fn story(run: &Execution, now: DateTime<Utc>) -> Story {
    Story { waits_for: crate::present::timeline::waits_for(run, now), timeline: crate::present::timeline::lines(run) }
}

/// Pipeline web, its runs in progress told as of `now`.
fn view(in_progress: Vec<Execution>, ended: Vec<Execution>, now: DateTime<Utc>) -> PipelineView {
    PipelineView {
        name: "web".into(),
        strategy: "blue_green".into(),
        repository: "acme/web".into(),
        in_progress: in_progress
            .into_iter()
            .map(|run| {
                let told = story(&run, now);
                (run, told)
            })
            .collect(),
        ended,
        freeze: None,
    }
}

#[test]
fn the_key_is_accepted_exactly_and_nothing_else_is() {
    let key = key();
    assert!(key.accepts(KEY));
    for wrong in ["", "Zq3v8KfX2mT9wLr4Yb7nHc1", "Zq3v8KfX2mT9wLr4Yb7nHc1dX", "zq3v8KfX2mT9wLr4Yb7nHc1d"] {
        assert!(!key.accepts(wrong), "{wrong:?}");
    }
    assert_eq!(format!("{key:?}"), "StatusKey(..)", "its Debug does not show it");
}

#[test]
fn a_short_or_path_breaking_key_is_refused() {
    for weak in ["short", "Zq3v8KfX2mT9wLr4Yb7n/Hc1d", "Zq3v8KfX2mT9wLr4Yb7n Hc1d", ""] {
        assert!(StatusKey::new(SecretString::from(weak)).is_err(), "{weak:?}");
    }
    // Whitespace around it (a newline pasted with it) is not part of it.
    assert!(StatusKey::new(SecretString::from(format!("{KEY}\n"))).expect("trimmed").accepts(KEY));
}

#[test]
fn a_runs_seal_opens_that_run_only() {
    let key = key();
    let (one, two) = (ExecutionId::from("web-1"), ExecutionId::from("web-2"));
    let seal = key.seal(&one);
    assert_eq!(seal.len(), 64);
    assert!(key.accepts_seal(&one, &seal));
    assert!(!key.accepts_seal(&two, &seal), "another run's seal");
    let flipped = if seal.ends_with('0') { "1" } else { "0" };
    let changed = format!("{}{flipped}", &seal[..seal.len() - 1]);
    assert!(!key.accepts_seal(&one, &changed), "a changed seal");
    assert!(!key.accepts_seal(&one, "not hex"));
    let other = StatusKey::new(SecretString::from("A".repeat(24))).expect("key");
    assert!(!other.accepts_seal(&one, &seal), "a seal under another key");
    assert_eq!(key.run_path(&one), format!("status/run/web-1/{seal}"));
    assert!(!key.run_path(&one).contains(KEY));
}

#[test]
fn the_paths_name_the_overview_or_one_run_and_nothing_else() {
    assert_eq!(StatusRequest::parse("/status/abc"), Some(StatusRequest::Overview { key: "abc" }));
    assert_eq!(StatusRequest::parse("/status/run/web-1/ff"), Some(StatusRequest::Run { run: "web-1", seal: "ff" }));
    for other in ["/status", "/status/", "/status/a/b", "/status/run/web-1", "/status/run//ff", "/r/abc", "/"] {
        assert_eq!(StatusRequest::parse(other), None, "{other}");
    }
}

#[test]
fn the_overview_shows_a_run_in_progress_by_stage_and_links_it_without_the_key() {
    let events = shipped("web-2");
    let waiting = run("web-2", &events[..2]);
    let page = overview(&[view(vec![waiting], vec![], at(600))], &key(), at(600));
    assert_eq!(page.status, 200);
    assert!(page.html.contains("<h2 id=\"web\">web</h2>"), "{}", page.html);
    assert!(page.html.contains("blue_green · acme/web"));
    assert!(
        page.html.contains(
            "<li class=\"done\">build 1m 00s</li><li class=\"now\">approval …</li><li class=\"\">deploy</li>"
        ),
        "{}",
        page.html
    );
    assert!(page.html.contains("Waits for a decision, until"), "{}", page.html);
    assert!(page.html.contains("approval requested"), "the timeline: {}", page.html);
    let link = format!("href=\"run/web-2/{}\"", key().seal(&ExecutionId::from("web-2")));
    assert!(page.html.contains(&link), "{}", page.html);
    assert!(!page.html.contains(KEY), "the page never shows the key");
    assert!(page.html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
}

#[test]
fn the_overview_lists_ended_runs_with_their_outcome_and_why() {
    let shipped_run = run("web-1", &shipped("web-1"));
    let mut failed = run("web-3", &[push("web-3", ExecutionMode::Superseded, true)]);
    failed.seq = 3;
    failed.status = Status::Failed;
    failed.reason = Some("build <failed> in BUILD".into());
    failed.finished_at = Some(at(120));
    let page = overview(&[view(vec![], vec![failed, shipped_run], at(600))], &key(), at(600));
    assert!(page.html.contains("No run in progress."));
    assert!(page.html.contains("<span class=\"done\">succeeded</span>"), "{}", page.html);
    assert!(page.html.contains("<span class=\"bad\">failed</span>"), "{}", page.html);
    assert!(page.html.contains("build &lt;failed&gt; in BUILD"), "escaped: {}", page.html);
    let (first, second) = (page.html.find(">#3<"), page.html.find(">#1<"));
    assert!(first.is_some() && first < second, "newest first: {}", page.html);
}

#[test]
fn with_nothing_published_the_overview_says_how_to_publish() {
    let page = overview(&[], &key(), at(0));
    assert_eq!(page.status, 200);
    assert!(page.html.contains("sluice publish FILE"));
}

#[test]
fn a_runs_page_shows_its_facts_stages_and_timeline_and_reloads_only_while_it_runs() {
    let shipped_run = run("web-1", &shipped("web-1"));
    let page = run_page(&shipped_run, &story(&shipped_run, at(600)), at(600));
    assert_eq!(page.status, 200);
    for shown in [
        "<h1>web run #1</h1>",
        "sha-web-1",
        "octocat",
        "<span class=\"done\">succeeded</span>",
        "web:web-1",
        "<li class=\"done\">deploy 2m 00s</li>",
        "approved by Jane",
    ] {
        assert!(page.html.contains(shown), "{shown}: {}", page.html);
    }
    assert!(!page.html.contains("http-equiv=\"refresh\""), "an ended run does not change");
    let running = run("web-2", &shipped("web-2")[..1]);
    assert!(run_page(&running, &story(&running, at(60)), at(60)).html.contains("http-equiv=\"refresh\""));
}

#[test]
fn a_failed_run_marks_the_stage_it_failed_in() {
    let mut failed = run("web-1", &shipped("web-1")[..4]);
    failed.status = Status::RolledBack;
    failed.reason = Some("AfterAllowTestTraffic checks failed".into());
    failed.finished_at = Some(at(300));
    let page = run_page(&failed, &story(&failed, at(600)), at(600));
    assert!(page.html.contains("<li class=\"bad\">deploy (stopped)</li>"), "{}", page.html);
    assert!(page.html.contains("<li class=\"done\">approval"), "{}", page.html);
    assert!(page.html.contains("AfterAllowTestTraffic checks failed"));
}

#[test]
fn a_frozen_pipeline_says_who_stopped_its_deployments_why_and_until_when_and_its_held_run_waits_for_the_freeze() {
    // GIVEN web frozen, and a run built and approved since, held before its deploy stage
    let frozen = Event::Frozen {
        by: "arn:aws:iam::123456789012:user/carol".into(),
        reason: "incident <4312>".into(),
        until: Some(at(7200)),
    };
    let mut events = vec![frozen];
    events.extend(shipped("web-1").into_iter().take(3));
    let mut state = PipelineState::new("web", ExecutionMode::Superseded);
    for (minute, event) in (0..).zip(&events) {
        if let Ok(Decision::Apply { state: next, .. }) = transition(&state, event, at(60 * minute)) {
            state = next;
        }
    }
    let held = state.execution(&ExecutionId::from("web-1")).cloned().expect("the run");
    assert_eq!(held.status, crate::pipeline::Status::Waiting(crate::pipeline::Stage::DEPLOY));
    let freeze = state.frozen().cloned();
    let waits = crate::present::timeline::waits_for_in(&held, &state, at(300));
    let told = Story { waits_for: waits, ..story(&held, at(300)) };
    let frozen = PipelineView { in_progress: vec![(held, told)], freeze, ..view(Vec::new(), Vec::new(), at(300)) };
    // THEN the page says so, above the run, and the run waits for the freeze to lift
    let page = overview(&[frozen], &key(), at(300));
    assert!(
        page.html.contains(
            "<p class=\"bad\"><strong>Deployments stopped</strong>: frozen by arn:aws:iam::123456789012:user/carol since \
             2026-11-25 10:00 UTC, until 2026-11-25 12:00 UTC: incident &lt;4312&gt;.</p>"
        ),
        "{}",
        page.html
    );
    assert!(page.html.contains("<p>Waits for the freeze to lift: frozen by arn:aws:iam"), "{}", page.html);
    // AND once it has lifted, nothing says frozen
    let thawed = PipelineView { freeze: None, ..view(Vec::new(), Vec::new(), at(7300)) };
    assert!(!overview(&[thawed], &key(), at(7300)).html.contains("frozen"));
}
