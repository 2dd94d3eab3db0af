//! GitHub webhooks: the signature every delivery carries, and the push event's payload.
//!
//! Signatures: <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>. Push payload:
//! <https://docs.github.com/en/webhooks/webhook-events-and-payloads#push>.

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The webhook's secrets: the current one and, for a grace period after a rotation, the one before it.
#[derive(Clone)]
pub struct WebhookSecrets(Vec<(SecretString, Option<DateTime<Utc>>)>);

impl WebhookSecrets {
    /// Secrets accepted at any time. Empty secrets are dropped: a delivery can never be accepted against an empty key.
    pub fn new(secrets: impl IntoIterator<Item = SecretString>) -> Self {
        Self(secrets.into_iter().filter(|secret| !secret.expose_secret().is_empty()).map(|s| (s, None)).collect())
    }

    /// The current secret, and the previous one until `grace` after the current one was created: a secret rotated
    /// because it leaked stops working once the grace period is over. A previous secret whose successor's creation
    /// time is unknown is not accepted.
    pub fn rotating(
        current: SecretString,
        created: Option<DateTime<Utc>>,
        previous: Option<SecretString>,
        grace: TimeDelta,
    ) -> Self {
        let mut secrets = Self::new([current]);
        if let (Some(previous), Some(created)) = (previous, created)
            && !previous.expose_secret().is_empty()
        {
            secrets.0.push((previous, created.checked_add_signed(grace)));
        }
        secrets
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets({} redacted)", self.0.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not sha256=<64 hex digits>")]
    Malformed,
    #[error("the signature does not match the body under any configured secret")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256` (`sha256=` and the hex HMAC-SHA256 of the raw body) against every secret valid at
/// `now`, in constant time.
pub fn verify_signature(
    secrets: &WebhookSecrets,
    body: &[u8],
    header: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let expected = decode_hex(hex).ok_or(SignatureError::Malformed)?;
    let mut matched = false;
    for (secret, until) in &secrets.0 {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()) else { continue };
        mac.update(body);
        // verify_slice compares in constant time; every secret is tried, so timing says nothing of which matched.
        matched |= mac.verify_slice(&expected).is_ok() && until.is_none_or(|until| now < until);
    }
    if matched { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// The hex SHA-256 of a payload: what makes a push recognisable when it is delivered again.
pub fn payload_digest(payload: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(payload).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The push payload of a delivery: the body itself (`application/json`), or its `payload` field
/// (`application/x-www-form-urlencoded`, the other content type GitHub offers).
pub fn payload_of<'a>(content_type: Option<&str>, body: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, PayloadError> {
    let form = content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| std::borrow::Cow::Owned(value.into_owned().into_bytes()))
        .ok_or_else(|| PayloadError {
            field: "payload".into(),
            message: "a form-encoded delivery must carry the push in its payload field".into(),
        })
}

/// The signature header GitHub would send for `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// 64 hex digits as the 32 bytes they spell; `None` for anything else.
pub(crate) fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

/// The fields of a push event sluice uses.
/// How long GitHub lets a delivery be redelivered (<https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks>),
/// less an hour's margin for the time a look takes.
pub const REDELIVERY_WINDOW: TimeDelta = TimeDelta::hours(71);
/// Attempts of one delivery after which sluice stops asking for more: a push that fails that often needs a person.
pub const MAX_ATTEMPTS: usize = 4;

/// Which attempts to redeliver, of a hook's recent `deliveries` at `now`: for each push delivery that GitHub never
/// had a 2xx or 4xx answer to (sluice answered 5xx, or could not be reached), its latest attempt, while it is young
/// enough to redeliver and has been tried fewer than [`MAX_ATTEMPTS`] times. A 4xx was sluice's deliberate answer
/// (a bad signature, an old push): sending it again cannot change it.
pub fn to_redeliver(deliveries: &[crate::contract::ports::HookDelivery], now: DateTime<Utc>) -> Vec<u64> {
    let mut by_guid: std::collections::BTreeMap<&str, Vec<&crate::contract::ports::HookDelivery>> = Default::default();
    for delivery in deliveries.iter().filter(|delivery| delivery.event == "push") {
        by_guid.entry(delivery.guid.as_str()).or_default().push(delivery);
    }
    by_guid
        .into_values()
        .filter(|attempts| attempts.iter().all(|attempt| attempt.status_code == 0 || attempt.status_code >= 500))
        .filter(|attempts| attempts.len() < MAX_ATTEMPTS)
        .filter_map(|attempts| attempts.into_iter().max_by_key(|attempt| (attempt.delivered_at, attempt.id)))
        .filter(|latest| now.signed_duration_since(latest.delivered_at) < REDELIVERY_WINDOW)
        .map(|latest| latest.id)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub compare: String,
    #[serde(default)]
    pub commits: Vec<Commit>,
    pub head_commit: Option<Commit>,
    pub repository: Repository,
    pub pusher: Pusher,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Commit {
    pub id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub modified: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Repository {
    pub full_name: String,
    #[serde(default)]
    pub default_branch: String,
    /// When the repository was last pushed to: in a push event, this push. GitHub sends epoch seconds in push
    /// payloads and an ISO 8601 time elsewhere; either is read, anything else counts as absent.
    #[serde(default, deserialize_with = "lenient_time")]
    pub pushed_at: Option<DateTime<Utc>>,
}

/// A time as epoch seconds or RFC 3339 text; `None` for anything else.
fn lenient_time<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Number(seconds) => seconds.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
        serde_json::Value::String(text) => {
            DateTime::parse_from_rfc3339(&text).ok().map(|time| time.with_timezone(&Utc))
        }
        _ => None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pusher {
    pub name: String,
    /// <https://docs.github.com/en/webhooks/webhook-events-and-payloads#push>: a string, or null.
    #[serde(default)]
    pub email: Option<String>,
}

/// A payload that is not JSON, or lacks a field sluice needs. `field` is its path (`repository.full_name`).
#[derive(Debug, thiserror::Error)]
#[error("invalid push payload at `{field}`: {message}")]
pub struct PayloadError {
    pub field: String,
    pub message: String,
}

impl PushEvent {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let field = error.path().to_string();
            let inner = error.into_inner();
            // serde_json's message names a missing field and ends with its position: keep the words.
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            PayloadError { field: if field == "." { String::new() } else { field }, message }
        })
    }

    /// Every file the pushed commits added, changed or removed.
    pub fn changed_files(&self) -> impl Iterator<Item = &str> {
        self.commits
            .iter()
            .flat_map(|commit| commit.added.iter().chain(&commit.modified).chain(&commit.removed).map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).single().expect("valid date")
    }

    fn secrets(values: &[&str]) -> WebhookSecrets {
        WebhookSecrets::new(values.iter().map(|v| SecretString::from(v.to_string())))
    }

    const DOCUMENTED: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_test_vector_verifies() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
        let secrets = secrets(&["It's a Secret to Everybody"]);
        assert_eq!(verify_signature(&secrets, b"Hello, World!", Some(DOCUMENTED), now()), Ok(()));
        assert_eq!(sign("It's a Secret to Everybody", b"Hello, World!"), DOCUMENTED);
    }

    #[test]
    fn a_signature_under_another_secret_or_of_another_body_is_refused() {
        let secrets = secrets(&["another secret"]);
        assert_eq!(
            verify_signature(&secrets, b"Hello, World!", Some(DOCUMENTED), now()),
            Err(SignatureError::Mismatch)
        );
        let right = secrets_with_documented();
        assert_eq!(verify_signature(&right, b"Hello, World?", Some(DOCUMENTED), now()), Err(SignatureError::Mismatch));
    }

    fn secrets_with_documented() -> WebhookSecrets {
        secrets(&["It's a Secret to Everybody"])
    }

    #[test]
    fn during_a_rotation_either_secret_is_accepted() {
        let rotating = secrets(&["the new secret", "It's a Secret to Everybody"]);
        assert_eq!(verify_signature(&rotating, b"Hello, World!", Some(DOCUMENTED), now()), Ok(()));
        let body = b"{}";
        assert_eq!(verify_signature(&rotating, body, Some(&sign("the new secret", body)), now()), Ok(()));
    }

    #[test]
    fn after_a_rotation_the_previous_secret_works_only_for_the_grace_period() {
        let grace = TimeDelta::hours(24);
        let rotated_at = now();
        let secrets = WebhookSecrets::rotating(
            SecretString::from("the new secret"),
            Some(rotated_at),
            Some(SecretString::from("It's a Secret to Everybody")),
            grace,
        );
        let body = b"Hello, World!";
        let within = rotated_at + grace - TimeDelta::minutes(1);
        assert_eq!(verify_signature(&secrets, body, Some(DOCUMENTED), within), Ok(()));
        let after = rotated_at + grace;
        assert_eq!(verify_signature(&secrets, body, Some(DOCUMENTED), after), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(&secrets, body, Some(&sign("the new secret", body)), after), Ok(()));
        let undated = WebhookSecrets::rotating(
            SecretString::from("the new secret"),
            None,
            Some(SecretString::from("It's a Secret to Everybody")),
            grace,
        );
        assert_eq!(
            verify_signature(&undated, body, Some(DOCUMENTED), within),
            Err(SignatureError::Mismatch),
            "without the rotation's date the old secret is not trusted"
        );
    }

    #[test]
    fn a_form_encoded_delivery_carries_the_push_in_its_payload_field() {
        let form = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
        let payload = payload_of(Some("application/x-www-form-urlencoded"), form).expect("has a payload");
        assert_eq!(&*payload, br#"{"ref":"refs/heads/main"}"#);
        assert_eq!(&*payload_of(Some("application/json"), b"{}").expect("json"), b"{}");
        assert_eq!(&*payload_of(None, b"{}").expect("json"), b"{}");
        let error = payload_of(Some("application/x-www-form-urlencoded; charset=utf-8"), b"other=1").expect_err("none");
        assert_eq!(error.field, "payload");
    }

    #[test]
    fn missing_or_malformed_headers_are_refused_with_their_reason() {
        let secrets = secrets_with_documented();
        let body = b"Hello, World!";
        assert_eq!(verify_signature(&secrets, body, None, now()), Err(SignatureError::Missing));
        for header in [
            "",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=zz",
            "sha256=757107ea",
            &DOCUMENTED.replace('7', "g"),
        ] {
            assert_eq!(
                verify_signature(&secrets, body, Some(header), now()),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        assert_eq!(
            verify_signature(&secrets, body, Some(&DOCUMENTED.to_uppercase().replace("SHA256=", "sha256=")), now()),
            Ok(())
        );
    }

    #[test]
    fn no_secret_accepts_nothing_and_is_not_printed() {
        let none = secrets(&[""]);
        assert!(none.is_empty());
        assert_eq!(verify_signature(&none, b"", Some(&sign("", b"")), now()), Err(SignatureError::Mismatch));
        assert_eq!(format!("{:?}", secrets(&["hunter2"])), "WebhookSecrets(1 redacted)");
    }

    #[test]
    fn a_push_payload_reads_the_fields_sluice_uses() {
        let push = PushEvent::parse(include_bytes!("../../tests/fixtures/github-push.json")).expect("parses");
        assert_eq!(push.git_ref, "refs/heads/main");
        assert_eq!(push.repository.full_name, "acme/web");
        assert_eq!(push.repository.default_branch, "main");
        assert_eq!(push.pusher.name, "octocat");
        assert_eq!(push.head_commit.as_ref().map(|c| c.id.as_str()), Some(push.after.as_str()));
        assert_eq!(push.repository.pushed_at, DateTime::from_timestamp(1_795_438_800, 0));
        let files: Vec<&str> = push.changed_files().collect();
        assert_eq!(files, ["src/search.rs", "src/main.rs", "README.md", "docs/old.md"]);
    }

    #[test]
    fn pushed_at_reads_as_epoch_seconds_or_iso_8601_and_anything_else_counts_as_absent() {
        let read = |pushed_at: &str| {
            let body = format!(
                r#"{{"ref":"refs/heads/main","before":"a","after":"b","head_commit":null,"pusher":{{"name":"x"}},
                "repository":{{"full_name":"acme/web","pushed_at":{pushed_at}}}}}"#
            );
            PushEvent::parse(body.as_bytes()).expect("parses").repository.pushed_at
        };
        let at = DateTime::from_timestamp(1_795_438_800, 0);
        assert_eq!(read("1795438800"), at);
        assert_eq!(read(r#""2026-11-23T13:00:00Z""#), at);
        assert_eq!(read(r#""2026-11-23T14:00:00+01:00""#), at);
        assert_eq!(read("null"), None);
        assert_eq!(read(r#""yesterday""#), None);
        assert_eq!(read("[1]"), None);
    }

    #[test]
    fn only_pushes_never_answered_2xx_or_4xx_are_redelivered_while_young_and_tried_fewer_than_four_times() {
        use crate::contract::ports::HookDelivery;
        let at = |hours: i64| now() - TimeDelta::hours(hours);
        let attempt = |id: u64, guid: &str, event: &str, status_code: u16, hours: i64| HookDelivery {
            id,
            guid: guid.into(),
            event: event.into(),
            status_code,
            delivered_at: at(hours),
            redelivery: false,
        };
        let deliveries = [
            attempt(1, "failed-then-ok", "push", 503, 5),
            attempt(2, "failed-then-ok", "push", 202, 4),
            attempt(3, "unreachable", "push", 0, 2),
            attempt(4, "failed-twice", "push", 503, 3),
            attempt(5, "failed-twice", "push", 500, 1),
            attempt(6, "refused", "push", 401, 1),
            attempt(7, "old", "push", 503, 80),
            attempt(8, "a-ping", "ping", 503, 1),
            attempt(9, "given-up", "push", 503, 4),
            attempt(10, "given-up", "push", 503, 3),
            attempt(11, "given-up", "push", 503, 2),
            attempt(12, "given-up", "push", 503, 1),
        ];
        let mut chosen = to_redeliver(&deliveries, now());
        chosen.sort_unstable();
        // The unreachable one, and the latest attempt of the one that failed twice
        assert_eq!(chosen, [3, 5]);
    }

    #[test]
    fn a_deleted_tag_has_no_head_commit() {
        let push =
            PushEvent::parse(include_bytes!("../../tests/fixtures/github-push-tag-deleted.json")).expect("parses");
        assert!(push.deleted);
        assert!(push.head_commit.is_none());
        assert_eq!(push.after, "0000000000000000000000000000000000000000");
    }

    #[test]
    fn a_payload_missing_a_field_names_its_path() {
        let error = PushEvent::parse(br#"{"ref":"refs/heads/main","before":"a","after":"b","head_commit":null,"repository":{},"pusher":{"name":"x"}}"#)
            .expect_err("repository has no full_name");
        assert_eq!(error.field, "repository");
        assert_eq!(error.message, "missing field `full_name`");
        let error = PushEvent::parse(br#"{"ref": 5}"#).expect_err("ref is not a string");
        assert_eq!(error.field, "ref");
        let error = PushEvent::parse(b"not json").expect_err("not JSON");
        assert!(error.message.starts_with("expected"), "{error}");
    }
}
