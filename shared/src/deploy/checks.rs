//! Deployment checks, the pure part: whether an answer passes a check, and the one line a hook's checks leave on the
//! run. Making the requests, retrying and timing them is the hooks use case's.

use crate::definitions::Check;
use crate::ports::{ProbeAnswer, ProbeError};

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
}
