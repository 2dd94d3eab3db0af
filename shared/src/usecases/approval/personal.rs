//! Personal approval links: which subscriptions of a topic may stand beside them (each must accept only named
//! approvers' messages), and the filter policy that gives an approver their own. Pure.

use crate::contract::ports::Subscription;
use crate::definitions::APPROVER_ATTRIBUTE;

/// The filter policy of `email`'s subscription: it accepts the messages whose [`APPROVER_ATTRIBUTE`] names them.
pub fn filter_policy(email: &str) -> String {
    serde_json::json!({ APPROVER_ATTRIBUTE: [email] }).to_string()
}

/// Why `subscription` would receive links that are not its own, if it would: it has no filter policy, filters on
/// the message body, does not limit [`APPROVER_ATTRIBUTE`] to one address, or (an email subscription) accepts
/// another address's links. One waiting for confirmation receives nothing. (A queue or a web hook whose policy names
/// one approver receives that approver's links: whoever subscribed it so meant it as theirs.)
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
    let named = match named.as_deref() {
        Some([one]) => *one,
        Some([_, _, ..]) => {
            let named = named.unwrap_or_default().join(", ");
            return Some(format!(
                "accepts the links of several approvers ({named}), where one subscription is one approver's"
            ));
        }
        _ => return Some(format!("has a filter policy that does not limit {APPROVER_ATTRIBUTE} to one address")),
    };
    let email = matches!(subscription.protocol.as_str(), "email" | "email-json");
    // SNS matches the address exactly, as sluice sends it (lowercase).
    (email && named != subscription.endpoint.to_ascii_lowercase())
        .then(|| format!("accepts the links of {named}, not its own address's"))
}

/// The approvers of `approvers` no confirmed subscription of `subscriptions` takes the links of: SNS delivers their
/// messages to nobody (not subscribed, not confirmed yet, or a policy naming them otherwise than sluice sends them).
pub fn unreached<'a>(approvers: &'a [String], subscriptions: &[Subscription]) -> Vec<&'a str> {
    let theirs = |email: &str| {
        let policy = filter_policy(email);
        let wanted: Option<serde_json::Value> = serde_json::from_str(&policy).ok();
        subscriptions.iter().any(|s| {
            !s.pending
                && s.filter_scope.as_deref().is_none_or(|scope| scope == "MessageAttributes")
                && s.filter_policy.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()) == wanted
        })
    };
    approvers.iter().map(String::as_str).filter(|email| !theirs(email)).collect()
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
        // A queue or a web hook may take the links of the one approver it names, not several's
        assert_eq!(unfit(&subscription("sqs", "arn:aws:sqs:eu-west-1:1:inbox", Some(&alice))), None);
        let two = r#"{"sluice_approver":["alice@example.com","bob@example.com"]}"#;
        let said = unfit(&subscription("sqs", "arn:aws:sqs:eu-west-1:1:inbox", Some(two)));
        assert!(said.is_some_and(|said| said.contains("several approvers")));
        let pending = Subscription { pending: true, ..subscription("email", "carol@example.com", None) };
        assert_eq!(unfit(&pending), None);
        for (subscription, why) in [
            (
                subscription("email", "alice@example.com", Some(r#"{"sluice_approver":["Alice@example.com"]}"#)),
                "accepts the links of Alice@example.com",
            ),
            (subscription("email", "ops@example.com", None), "has no filter policy"),
            (subscription("email", "bob@example.com", Some(&alice)), "accepts the links of alice@example.com"),
            (
                subscription("email", "ops@example.com", Some(r#"{"sluice_approver":[{"exists":true}]}"#)),
                "does not limit sluice_approver to one address",
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
        let approvers = ["alice@example.com".to_owned(), "bob@example.com".to_owned()];
        let fit = [subscription("email", "alice@example.com", Some(&alice)), pending];
        assert_eq!(unreached(&approvers, &fit), ["bob@example.com"], "bob is not subscribed");
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
