//! Personal approval links: which subscriptions of a topic may stand beside them (each must accept only named
//! approvers' messages), and the filter policy that gives an approver their own. Pure.

use crate::contract::ports::Subscription;
use crate::definitions::APPROVER_ATTRIBUTE;

/// The filter policy of `email`'s subscription: it accepts the messages whose [`APPROVER_ATTRIBUTE`] names them.
pub fn filter_policy(email: &str) -> String {
    serde_json::json!({ APPROVER_ATTRIBUTE: [email] }).to_string()
}

/// Why `subscription` would receive links that are not its own, if it would: it has no filter policy, filters on
/// the message body, does not limit [`APPROVER_ATTRIBUTE`] to named addresses, or (an email subscription) accepts
/// another address's links. One waiting for confirmation receives nothing.
pub fn unfit(subscription: &Subscription) -> Option<String> {
    if subscription.pending {
        return None;
    }
    let Some(policy) = subscription.filter_policy.as_deref() else {
        return Some("has no filter policy, so it would receive every approver's link".to_owned());
    };
    if subscription.filter_scope.as_deref() == Some("MessageBody") {
        return Some(format!("filters on the message body, not the {APPROVER_ATTRIBUTE} message attribute"));
    }
    let policy: serde_json::Value = serde_json::from_str(policy).unwrap_or_default();
    let named: Option<Vec<&str>> = policy
        .get(APPROVER_ATTRIBUTE)
        .and_then(serde_json::Value::as_array)
        .filter(|_| policy.get("$or").is_none())
        .and_then(|values| values.iter().map(serde_json::Value::as_str).collect());
    let Some(named) = named.filter(|named| !named.is_empty()) else {
        return Some(format!("has a filter policy that does not limit {APPROVER_ATTRIBUTE} to a list of addresses"));
    };
    let email = matches!(subscription.protocol.as_str(), "email" | "email-json");
    let others: Vec<&str> =
        named.into_iter().filter(|name| email && !name.eq_ignore_ascii_case(&subscription.endpoint)).collect();
    (!others.is_empty()).then(|| format!("accepts the links of {}, not its own address's", others.join(", ")))
}

/// Each of `subscriptions` that would receive links not its own, said with why: `protocol endpoint (arn) why`.
pub fn unfit_subscriptions(subscriptions: &[Subscription]) -> Vec<String> {
    subscriptions
        .iter()
        .filter_map(|s| unfit(s).map(|why| format!("{} subscription {} ({}) {why}", s.protocol, s.endpoint, s.arn)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(protocol: &str, endpoint: &str, policy: Option<&str>) -> Subscription {
        Subscription {
            arn: format!("arn:aws:sns:eu-west-1:123456789012:approvals:{endpoint}"),
            protocol: protocol.into(),
            endpoint: endpoint.into(),
            filter_policy: policy.map(str::to_owned),
            ..Subscription::default()
        }
    }

    #[test]
    fn an_approvers_own_filter_policy_is_fit_and_every_other_shape_is_refused_saying_why() {
        let alice = filter_policy("alice@example.com");
        assert_eq!(alice, r#"{"sluice_approver":["alice@example.com"]}"#);
        assert_eq!(unfit(&subscription("email", "Alice@example.com", Some(&alice))), None);
        // A queue or a web hook may take the links of the approvers it names
        let two = r#"{"sluice_approver":["alice@example.com","bob@example.com"]}"#;
        assert_eq!(unfit(&subscription("sqs", "arn:aws:sqs:eu-west-1:1:inbox", Some(two))), None);
        let pending = Subscription { pending: true, ..subscription("email", "carol@example.com", None) };
        assert_eq!(unfit(&pending), None);
        for (subscription, why) in [
            (subscription("email", "ops@example.com", None), "has no filter policy"),
            (subscription("email", "bob@example.com", Some(&alice)), "accepts the links of alice@example.com"),
            (
                subscription("email", "ops@example.com", Some(r#"{"sluice_approver":[{"exists":true}]}"#)),
                "does not limit sluice_approver to a list of addresses",
            ),
            (
                subscription("https", "https://hooks.example.com", Some(r#"{"team":["web"]}"#)),
                "does not limit sluice_approver",
            ),
            (
                subscription("email", "a@x.io", Some(r#"{"sluice_approver":["a@x.io"],"$or":[{"x":["y"]}]}"#)),
                "does not limit sluice_approver",
            ),
            (
                Subscription {
                    filter_scope: Some("MessageBody".into()),
                    ..subscription("email", "a@x.io", Some(&alice))
                },
                "filters on the message body",
            ),
        ] {
            let said = unfit(&subscription);
            assert!(said.as_deref().is_some_and(|said| said.contains(why)), "{subscription:?}: {said:?}");
        }
        let listed = unfit_subscriptions(&[subscription("email", "ops@example.com", None)]);
        assert_eq!(
            listed,
            [
                "email subscription ops@example.com (arn:aws:sns:eu-west-1:123456789012:approvals:ops@example.com) has no \
              filter policy, so it would receive every approver's link"
            ]
        );
    }
}
