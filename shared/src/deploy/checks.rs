//! Deployment checks, the pure part: whether an answer passes a check, and the one line a hook's checks leave on the
//! run. Making the requests, retrying and timing them is the hooks use case's.

use crate::contract::ports::{ProbeAnswer, ProbeError};
use crate::definitions::Check;

/// How one check went, over all its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    /// The check's place among the pipeline's checks (1-based, as the definitions file lists them).
    pub number: usize,
    pub passed: bool,
    /// The last answer's status, if any came.
    pub status: Option<u16>,
    pub attempts: u32,
    pub millis: u64,
    /// Why the last attempt failed.
    pub failure: Option<String>,
}

/// Whether `answer` passes `check`: `Ok(status)`, or why not.
pub fn judge(check: &Check, answer: &Result<ProbeAnswer, ProbeError>) -> Result<u16, String> {
    let answer = answer.as_ref().map_err(ToString::to_string)?;
    if answer.status != check.expect_status {
        return Err(format!("answered {}, expected {}", answer.status, check.expect_status));
    }
    if let Some(text) = &check.expect_body
        && !String::from_utf8_lossy(&answer.body).contains(text.as_str())
    {
        return Err(format!("answered {} without {text:?} in its body", answer.status));
    }
    Ok(answer.status)
}

/// `check` as it runs for a release of `commit` built as `image` (`repository@sha256:...`): `{commit}` and `{digest}`
/// in its expected body stand for the commit and the image's digest (`sha256:...`), so that a check can assert that
/// the service reports the revision just deployed. Without a digest, `{digest}` is left as written (and will not be
/// found).
pub fn for_release(check: &Check, commit: &str, image: Option<&str>) -> Check {
    let digest = image.and_then(|image| image.split_once('@')).map(|(_, digest)| digest);
    let expect_body = check.expect_body.as_ref().map(|body| {
        let body = body.replace("{commit}", commit);
        match digest {
            Some(digest) => body.replace("{digest}", digest),
            None => body,
        }
    });
    Check { expect_body, ..check.clone() }
}

/// The line a hook's checks leave on the run: the failures first (with the request and why), then each check's
/// status, tries and time, numbered as in the definitions file.
pub fn summary(checks: &[&Check], runs: &[CheckRun]) -> String {
    if runs.is_empty() {
        return "no checks at this hook".to_owned();
    }
    let mut parts: Vec<String> = Vec::with_capacity(runs.len());
    for (check, run) in checks.iter().zip(runs).filter(|(_, run)| !run.passed) {
        let why = run.failure.as_deref().unwrap_or("failed");
        let tries = match run.attempts {
            0 => String::new(),
            1 => "1 try, ".to_owned(),
            n => format!("{n} tries, "),
        };
        parts.push(format!("#{} {} {} {why} ({tries}{} ms)", run.number, check.method, check.url, run.millis));
    }
    for run in runs.iter().filter(|run| run.passed) {
        let status = run.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let tries = if run.attempts == 1 { String::new() } else { format!(", {} tries", run.attempts) };
        parts.push(format!("#{} {status} in {} ms{tries}", run.number, run.millis));
    }
    let passed = runs.iter().filter(|run| run.passed).count();
    format!("{passed}/{} passed: {}", runs.len(), parts.join("; "))
}

/// What an ECS lifecycle hook's earlier invocations of the same hook execution left, carried from one invocation to
/// the next in the `hookDetails` ECS hands back after `IN_PROGRESS`: the tries each check has had, and the checks
/// that have passed (with their status and time).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageProgress {
    #[serde(default)]
    pub tries: std::collections::BTreeMap<usize, u32>,
    #[serde(default)]
    pub passed: std::collections::BTreeMap<usize, (u16, u64)>,
    /// Invocations answered before the run had recorded the deployment.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unlinked: u32,
    /// The evaluation this progress belongs to: an id sluice chose when it first ran the stage's checks for this
    /// hook execution, and under which it records their result. Once that result is recorded, progress handed back
    /// with it is stale (ECS may hand a hook's details back at a later step of the same deployment): the next call
    /// starts a new evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What an ECS lifecycle hook answers after one round of its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageVerdict {
    /// Every check passed; the summary of all of them.
    Passed(String),
    /// A check failed with its retries spent; the summary.
    Failed(String),
    /// A check failed with retries left: ECS invokes the hook again after `delay_secs`, with `progress`.
    Retry { delay_secs: u64, progress: StageProgress },
}

/// Judges one round of an ECS lifecycle hook's checks: `round` holds one attempt of each check that had not passed
/// yet (numbered as in `checks`), `progress` what earlier rounds left.
pub fn stage_verdict(checks: &[(usize, &Check)], mut progress: StageProgress, round: &[CheckRun]) -> StageVerdict {
    let mut retry_in = None;
    let mut spent = false;
    for run in round {
        let tries = progress.tries.entry(run.number).or_insert(0);
        *tries += run.attempts.max(1);
        let check = checks.iter().find(|(number, _)| *number == run.number).map(|(_, check)| *check);
        if run.passed {
            progress.passed.insert(run.number, (run.status.unwrap_or_default(), run.millis));
        } else if let Some(check) = check.filter(|check| *tries <= check.retries) {
            retry_in = Some(retry_in.unwrap_or(0).max(check.interval_secs));
        } else {
            spent = true;
        }
    }
    if !spent && let Some(delay_secs) = retry_in {
        return StageVerdict::Retry { delay_secs, progress };
    }
    let runs: Vec<CheckRun> = checks
        .iter()
        .map(|(number, _)| {
            let tries = progress.tries.get(number).copied().unwrap_or(0);
            match (progress.passed.get(number), round.iter().find(|run| run.number == *number)) {
                (Some((status, millis)), _) => CheckRun {
                    number: *number,
                    passed: true,
                    status: Some(*status),
                    attempts: tries,
                    millis: *millis,
                    failure: None,
                },
                (None, Some(run)) => CheckRun { attempts: tries, ..run.clone() },
                (None, None) => CheckRun {
                    number: *number,
                    passed: false,
                    status: None,
                    attempts: tries,
                    millis: 0,
                    failure: Some("not run: another check failed first".into()),
                },
            }
        })
        .collect();
    let only: Vec<&Check> = checks.iter().map(|(_, check)| *check).collect();
    let line = summary(&only, &runs);
    if runs.iter().all(|run| run.passed) { StageVerdict::Passed(line) } else { StageVerdict::Failed(line) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Result<ProbeAnswer, ProbeError> {
        Ok(ProbeAnswer { status, body: body.as_bytes().to_vec() })
    }

    #[test]
    fn a_check_passes_on_the_expected_status_with_the_expected_text_in_the_body() {
        let check = Check { expect_body: Some("\"status\":\"ok\"".into()), ..Check::new("AfterInstall", "http://x/") };
        assert_eq!(judge(&check, &answer(200, r#"{"status":"ok"}"#)), Ok(200));
        assert_eq!(judge(&check, &answer(500, r#"{"status":"ok"}"#)), Err("answered 500, expected 200".into()));
        assert_eq!(
            judge(&check, &answer(200, r#"{"status":"degraded"}"#)),
            Err("answered 200 without \"\\\"status\\\":\\\"ok\\\"\" in its body".into())
        );
        let refused = Err(ProbeError("Connection refused (os error 111)".into()));
        assert_eq!(judge(&check, &refused), Err("Connection refused (os error 111)".into()));
    }

    #[test]
    fn commit_and_digest_in_an_expected_body_stand_for_the_release_being_deployed() {
        let check = Check {
            expect_body: Some(r#"{"revision":"{commit}","image":"{digest}"}"#.into()),
            ..Check::new("AfterRollout", "http://web/version")
        };
        let image = Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:ab12");
        let released = for_release(&check, "9b2c5f0", image);
        assert_eq!(released.expect_body.as_deref(), Some(r#"{"revision":"9b2c5f0","image":"sha256:ab12"}"#));
        assert_eq!(judge(&released, &answer(200, r#"{"revision":"9b2c5f0","image":"sha256:ab12"}"#)), Ok(200));
        assert!(judge(&released, &answer(200, r#"{"revision":"e0b4d5c","image":"sha256:ab12"}"#)).is_err());
        // An image not pinned by a digest leaves `{digest}` as written: the check cannot pass by accident.
        let unpinned = for_release(&check, "9b2c5f0", Some("web:latest"));
        assert_eq!(unpinned.expect_body.as_deref(), Some(r#"{"revision":"9b2c5f0","image":"{digest}"}"#));
        assert_eq!(for_release(&Check::new("AfterRollout", "http://web/"), "9b2c5f0", image).expect_body, None);
    }

    #[test]
    fn a_summary_puts_the_failed_check_first_with_its_request_and_reason() {
        let first = Check::new("BeforeAllowTraffic", "http://web:8080/health");
        let second = Check { method: "HEAD".into(), ..Check::new("BeforeAllowTraffic", "http://web:8080/ready") };
        let runs = [
            CheckRun { number: 1, passed: true, status: Some(200), attempts: 1, millis: 12, failure: None },
            CheckRun {
                number: 3,
                passed: false,
                status: Some(503),
                attempts: 3,
                millis: 2040,
                failure: Some("answered 503, expected 200".into()),
            },
        ];
        assert_eq!(
            summary(&[&first, &second], &runs),
            "1/2 passed: #3 HEAD http://web:8080/ready answered 503, expected 200 (3 tries, 2040 ms); #1 200 in 12 ms"
        );
        assert_eq!(summary(&[], &[]), "no checks at this hook");
    }

    fn run(number: usize, passed: bool) -> CheckRun {
        let (status, failure) = if passed { (200, None) } else { (503, Some("answered 503, expected 200".into())) };
        CheckRun { number, passed, status: Some(status), attempts: 1, millis: 5, failure }
    }

    #[test]
    fn a_stage_check_with_retries_left_asks_ecs_to_call_again_and_one_that_spent_them_fails_the_stage() {
        let steady = Check::new("POST_TEST_TRAFFIC_SHIFT", "http://web/ready");
        let patient =
            Check { retries: 1, interval_secs: 7, ..Check::new("POST_TEST_TRAFFIC_SHIFT", "http://web/health") };
        let checks = [(1, &steady), (2, &patient)];
        // GIVEN the first round: #1 passes, #2 fails with a retry left
        let StageVerdict::Retry { delay_secs, progress } =
            stage_verdict(&checks, StageProgress::default(), &[run(1, true), run(2, false)])
        else {
            panic!("a retry is due")
        };
        assert_eq!(delay_secs, 7);
        assert_eq!(progress.tries.get(&2), Some(&1));
        assert!(progress.passed.contains_key(&1));
        // WHEN the next round runs only #2, and it passes: the stage passes with both
        let verdict = stage_verdict(&checks, progress.clone(), &[run(2, true)]);
        assert_eq!(verdict, StageVerdict::Passed("2/2 passed: #1 200 in 5 ms; #2 200 in 5 ms, 2 tries".into()));
        // WHEN instead it fails again: its retries are spent and the stage fails, naming it
        let StageVerdict::Failed(line) = stage_verdict(&checks, progress, &[run(2, false)]) else {
            panic!("the stage fails")
        };
        assert!(line.starts_with("1/2 passed: #2 GET http://web/health answered 503, expected 200 (2 tries"), "{line}");
    }
}
