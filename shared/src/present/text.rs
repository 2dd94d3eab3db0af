//! Presentation helpers for text: durations, percentages, refs, subjects, test verdicts, as a person reads them.

use chrono::TimeDelta;

use crate::contract::ports::MAX_SUBJECT;
use crate::pipeline::{Freeze, TestFacts, TestResults};

/// `850 ms`, `1.9s`, `12s`, `3m 05s`, `2h 10m`, `3d 4h`: a duration as people read it (rounded down).
pub fn span(delta: TimeDelta) -> String {
    let ms = delta.num_milliseconds().max(0);
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms} ms"),
        0..10 => format!("{s}.{}s", ms % 1000 / 100),
        10..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `Branch: main`, `Tag: v1.2`, or the ref as it is.
pub fn ref_label(git_ref: &str) -> (&'static str, &str) {
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        ("Branch:", branch)
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        ("Tag:", tag)
    } else {
        ("Ref:", git_ref)
    }
}

/// `in 2 days`, `in 5 hours`, `in 12 minutes`, `now`: how long until a deadline, rounded down.
pub fn time_left(left: TimeDelta) -> String {
    let plural = |n: i64, unit: &str| format!("in {n} {unit}{}", if n == 1 { "" } else { "s" });
    match left {
        left if left.num_days() >= 2 => plural(left.num_days(), "day"),
        left if left.num_hours() >= 1 => plural(left.num_hours(), "hour"),
        left if left.num_minutes() >= 1 => plural(left.num_minutes(), "minute"),
        _ => "now".to_owned(),
    }
}

/// The first line of a commit message.
pub(crate) fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

/// `12.5%`, `0%`, `100%`: tenths of a percent as a person reads them.
pub fn percent(tenths: u32) -> String {
    match tenths % 10 {
        0 => format!("{}%", tenths / 10),
        rest => format!("{}.{rest}%", tenths / 10),
    }
}

/// A subject SNS accepts: printable ASCII, no line breaks, at most [`MAX_SUBJECT`] characters.
pub fn subject_line(text: &str) -> String {
    let printable: String = text.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    printable.chars().take(MAX_SUBJECT).collect()
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `url`, ending in exactly one `/`.
pub fn with_slash(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

/// A release against what runs where approving releases it, as labelled lines: what runs there now, what will,
/// and what changes (one value per line; the label on the first of each).
pub fn comparison_lines(compared: &crate::pipeline::ReleaseComparison) -> Vec<(&'static str, Vec<String>)> {
    let now = match (&compared.unread, &compared.running, &compared.running_image) {
        (Some(why), _, _) => format!("unknown ({why})"),
        (None, Some(running), Some(image)) => format!("{image} ({running})"),
        (None, Some(running), None) => running.clone(),
        (None, None, _) => "unknown".to_owned(),
    };
    let next = match &compared.running_image {
        Some(image) if *image == compared.image => format!("{} (the same image)", compared.image),
        _ => compared.image.clone(),
    };
    let mut lines = vec![("Runs now:", vec![now]), ("Will run:", vec![next])];
    if compared.unread.is_none() {
        let changes = match compared.changes.as_slice() {
            [] => vec!["nothing else in the task definition".to_owned()],
            changes => changes.to_vec(),
        };
        lines.push(("Changes:", changes));
    }
    lines
}

/// `tests passed: 118 passed, 0 failed`, or `tests failed: ...` with the failed cases, in a line; for a test stage's
/// checks, `checks passed: 2/2 passed: ...`.
pub fn test_verdict(test: &TestFacts) -> String {
    let what = if test.project.is_empty() { "checks" } else { "tests" };
    let verdict = if test.passed == Some(true) { "passed" } else { "failed" };
    let summary = test.results.as_ref().map(TestResults::summary).or_else(|| test.detail.clone());
    let failed: Vec<&str> = test.results.iter().flat_map(|r| &r.failures).map(|f| f.name.as_str()).collect();
    let mut said = match (summary, &test.reason) {
        (Some(summary), _) => format!("{what} {verdict}: {summary}"),
        (None, Some(reason)) => format!("{what} {verdict}: {reason}"),
        (None, None) => format!("{what} {verdict} (no test report)"),
    };
    if !failed.is_empty() {
        said.push_str(&format!(" ({})", failed.join(", ")));
    }
    said
}

/// What tests at a test stage: `CodeBuild test project web-e2e`, or `2 checks`.
pub fn tested_by(test: &TestFacts) -> String {
    match test.project.as_str() {
        "" if test.checks == 1 => "1 check".to_owned(),
        "" => format!("{} checks", test.checks),
        project => format!("CodeBuild test project {project}"),
    }
}

/// A freeze, in a line: `frozen by ARN since 2026-12-07 10:02 UTC, until unfrozen: incident 4312`.
pub fn freeze(freeze: &Freeze) -> String {
    let until = match freeze.until {
        Some(until) => format!("until {}", until.format("%Y-%m-%d %H:%M UTC")),
        None => "until unfrozen".to_owned(),
    };
    format!("frozen by {} since {}, {until}: {}", freeze.by, freeze.since.format("%Y-%m-%d %H:%M UTC"), freeze.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_said_in_the_largest_whole_unit() {
        assert_eq!(time_left(TimeDelta::days(7)), "in 7 days");
        assert_eq!(time_left(TimeDelta::hours(47)), "in 47 hours");
        assert_eq!(time_left(TimeDelta::hours(1)), "in 1 hour");
        assert_eq!(time_left(TimeDelta::minutes(5)), "in 5 minutes");
        assert_eq!(time_left(TimeDelta::seconds(59)), "now");
        assert_eq!(time_left(TimeDelta::seconds(-5)), "now");
    }

    #[test]
    fn refs_are_named_as_branch_or_tag() {
        assert_eq!(ref_label("refs/heads/release/1.2"), ("Branch:", "release/1.2"));
        assert_eq!(ref_label("refs/tags/v1.2"), ("Tag:", "v1.2"));
        assert_eq!(ref_label("odd"), ("Ref:", "odd"));
    }
}
