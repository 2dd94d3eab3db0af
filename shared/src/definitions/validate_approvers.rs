//! An approval stage's named approvers: `approvers`, `required`, `forbid_pusher` and `operators`.

use toml::Spanned;

use super::super::raw::RawApproval;
use std::collections::BTreeMap;
use std::ops::Range;

use super::super::{
    Approvers, DeployTarget, MAX_APPROVER_EMAIL, MAX_APPROVERS, MAX_OPERATOR_PATTERN, MAX_OPERATORS, Pipeline,
    StageDefinition, StageKind,
};
use super::{Checker, SHOWN};
use crate::pipeline::bounded;

/// An approval's `approvers` (1 to [`MAX_APPROVERS`] distinct email addresses), `required` (1 to their number; 1
/// unless given), `forbid_pusher` and `operators` (IAM ARN patterns), which name approvers first.
pub(super) fn validate_approvers(checker: &mut Checker<'_>, raw: &RawApproval) -> Option<Approvers> {
    let Some(written) = &raw.approvers else {
        let named = [raw.required.as_ref().map(|r| ("approval.required", r.span()))]
            .into_iter()
            .chain([raw.forbid_pusher.as_ref().map(|f| ("approval.forbid_pusher", f.span()))])
            .chain([raw.operators.as_ref().map(|o| ("approval.operators", o.span()))]);
        for (field, span) in named.flatten() {
            let message = "needs `approvers`: without them, whoever holds the link decides, once";
            checker.error(span, field, message);
        }
        return None;
    };
    let list = written.get_ref();
    if list.is_empty() || list.len() > MAX_APPROVERS {
        checker.error(written.span(), "approval.approvers", format!("1 to {MAX_APPROVERS} email addresses"));
    }
    let mut emails: Vec<String> = Vec::new();
    for (k, email) in list.iter().enumerate() {
        let field = format!("approval.approvers[{k}]");
        let text = email.get_ref().trim().to_ascii_lowercase();
        if !is_email(&text) || text.len() > MAX_APPROVER_EMAIL {
            let shown = bounded(email.get_ref(), SHOWN);
            checker.error(
                email.span(),
                &field,
                format!("must be an email address of at most {MAX_APPROVER_EMAIL} characters, such as alice@example.com (got {shown:?})"),
            );
        } else if emails.contains(&text) {
            checker.error(email.span(), &field, format!("{text} is named twice"));
        }
        emails.push(text);
    }
    let required = match &raw.required {
        None => 1,
        Some(required) => match usize::try_from(*required.get_ref()) {
            Ok(n) if (1..=list.len().max(1)).contains(&n) => n,
            _ => {
                let message = format!(
                    "must be between 1 and the number of approvers, {} (got {})",
                    list.len(),
                    required.get_ref()
                );
                checker.error(required.span(), "approval.required", message);
                1
            }
        },
    };
    let forbid_pusher = raw.forbid_pusher.as_ref().is_some_and(|forbid| *forbid.get_ref());
    let operators = raw.operators.as_ref().map(|written| operator_patterns(checker, written)).unwrap_or_default();
    let all = forbid_pusher && required >= list.len() && list.len() > 1 && operators.is_empty();
    if let Some(forbid) = raw.forbid_pusher.as_ref().filter(|_| all) {
        let message = format!(
            "with required = {required} of {} approvers, a push by one of them can never be approved: the pusher may \
             not approve their own",
            list.len()
        );
        checker.warn(forbid.span(), "approval.forbid_pusher", message);
    }
    Some(Approvers { emails, required, forbid_pusher, operators })
}

/// `operators`: 1 to [`MAX_OPERATORS`] IAM principal ARN patterns, each at most [`MAX_OPERATOR_PATTERN`] bytes.
fn operator_patterns(checker: &mut Checker<'_>, written: &Spanned<Vec<Spanned<String>>>) -> Vec<String> {
    let list = written.get_ref();
    if list.is_empty() || list.len() > MAX_OPERATORS {
        checker.error(written.span(), "approval.operators", format!("1 to {MAX_OPERATORS} IAM ARN patterns"));
    }
    let mut patterns = Vec::new();
    for (k, pattern) in list.iter().enumerate() {
        let text = pattern.get_ref().trim();
        let principal = ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::", "arn:aws:sts::"]
            .iter()
            .any(|prefix| text.starts_with(prefix));
        if !principal || text.len() > MAX_OPERATOR_PATTERN || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            let message = format!(
                "must be an IAM principal ARN pattern of at most {MAX_OPERATOR_PATTERN} bytes, such as \
                 arn:aws:iam::123456789012:role/release-* (got {:?})",
                bounded(pattern.get_ref(), SHOWN)
            );
            checker.error(pattern.span(), &format!("approval.operators[{k}]"), message);
        } else if text.split_once(":role/").is_some_and(|(_, role)| role.contains('/')) {
            let message = "names a role by its path, which a session's ARN does not say: name the role alone \
                 (arn:aws:iam::123456789012:role/release-*)";
            checker.error(pattern.span(), &format!("approval.operators[{k}]"), message);
        }
        patterns.push(text.to_owned());
    }
    patterns
}

/// An email address as SNS's email protocol takes it: one `@`, a local part of printable characters, a domain with a
/// dot; at most 254 bytes, no spaces.
pub(crate) fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    let printable = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_graphic() && c != '@');
    text.len() <= 254
        && printable(local)
        && printable(domain)
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// A topic that carries named approvers' own links carries nothing else: each subscription there accepts only the
/// messages naming its approver, so a request for everyone sent there (an approval stage without approvers, a pause's
/// approval) would reach nobody. Each stage is told at its place (`places`, in the order of `stages`).
pub(super) fn named_topics_alone(
    checker: &mut Checker<'_>,
    stages: &[StageDefinition],
    places: &[(String, Range<usize>)],
) {
    let named: Vec<&str> = stages
        .iter()
        .filter_map(StageDefinition::approval)
        .filter(|approval| approval.approvers.is_some())
        .map(|approval| approval.topic_arn.as_str())
        .collect();
    for (stage, (place, span)) in stages.iter().zip(places) {
        if let Some((field, topic)) = for_everyone(stage).filter(|(_, topic)| named.contains(topic)) {
            let message = format!(
                "{topic} carries named approvers' own links (each subscription there takes only its approver's), so \
                 a request for everyone would reach nobody: give this one a topic of its own"
            );
            let kept = std::mem::replace(&mut checker.place, place.clone());
            checker.error(span.clone(), field, message);
            checker.place = kept;
        }
    }
}

/// The topic of a request for everyone `stage` makes, if it makes one: an approval stage's without approvers, or a
/// pause's; with the field that names it.
fn for_everyone(stage: &StageDefinition) -> Option<(&'static str, &str)> {
    match &stage.kind {
        StageKind::Approval(approval) if approval.approvers.is_none() => {
            Some(("approval.topic", approval.topic_arn.as_str()))
        }
        StageKind::Deploy(deploy) => match &deploy.target {
            DeployTarget::EcsNative(native) => {
                native.approval.as_ref().map(|pause| ("deploy.approval.topic", pause.topic_arn.as_str()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// As [`named_topics_alone`], across pipelines: a pipeline that sends a request for everyone to a topic another
/// pipeline's named approvers take their own links on is told at its name (`names`: each pipeline's name's span).
pub(super) fn named_topics_across(
    checker: &mut Checker<'_>,
    pipelines: &BTreeMap<String, Pipeline>,
    names: &BTreeMap<String, Range<usize>>,
) {
    let named: Vec<(&str, &str)> = pipelines
        .values()
        .flat_map(|pipeline| pipeline.approval_stages().map(move |(_, approval)| (pipeline.name.as_str(), approval)))
        .filter(|(_, approval)| approval.approvers.is_some())
        .map(|(name, approval)| (name, approval.topic_arn.as_str()))
        .collect();
    for pipeline in pipelines.values() {
        let asked = pipeline.stages.iter().filter_map(for_everyone);
        for (field, topic) in asked {
            let Some((other, _)) = named.iter().find(|(other, named)| *named == topic && *other != pipeline.name)
            else {
                continue;
            };
            let message = format!(
                "{field} {topic} carries pipeline `{other}`'s named approvers' own links (each subscription there takes \
                 only its approver's), so a request for everyone would reach nobody: give it a topic of its own"
            );
            checker.pipeline = Some(pipeline.name.clone());
            checker.error(names.get(&pipeline.name).cloned().unwrap_or_default(), "", message);
        }
    }
}
