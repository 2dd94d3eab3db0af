//! `sluice approvers sync [PIPELINE ...]`: subscribes each named approver of the published definitions to their
//! approval stage's topic with the filter policy that gives them their own links, and says which other
//! subscriptions would receive everyone's links (the approval function refuses to send while any does).

use std::process::ExitCode;

use anstyle::AnsiColor;
use anyhow::{Context, Result, bail};
use serde_json::json;
use sluice::adapters::SnsNotifier;
use sluice::contract::ports::{DefinitionsStore, Subscription, TopicNotifier};
use sluice::definitions::{Definitions, Pipeline};
use sluice::usecases::{filter_policy, unfit_subscriptions};

use crate::stack::{Stack, Target, plain};
use crate::term::mark;

/// Named approvers' subscriptions: give each approver a link of their own
#[derive(Debug, clap::Args)]
pub struct Approvers {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    Sync(Sync),
}

/// Subscribe each named approver to their stage's topic with their filter policy, and name the subscriptions that
/// would receive everyone's links
///
/// Reads the published definitions. An approver not subscribed is subscribed (protocol email, with the filter
/// policy {"sluice_approver": ["ADDRESS"]}): AWS mails them a confirmation link. A confirmed subscription of theirs
/// without that policy gets it. Nothing is unsubscribed: a subscription that would receive every approver's link is
/// named, with the command that removes it, and the command exits 1 while one is there.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice approvers sync\n  sluice approvers sync web --dry-run")]
struct Sync {
    /// Only these pipelines (all with named approvers unless given)
    pipelines: Vec<String>,
    /// Say what would change, and change nothing
    #[arg(long)]
    dry_run: bool,
}

/// What syncing one approver does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Their confirmed subscription has their filter policy.
    Ready,
    /// They are subscribed and have not confirmed yet.
    Pending,
    /// Subscribe them with their policy.
    Subscribe,
    /// Give their confirmed subscription (this ARN) their policy.
    SetPolicy(String),
}

/// What `email`'s subscription to a topic with `subscriptions` needs.
fn step(email: &str, subscriptions: &[Subscription]) -> Step {
    let theirs = |s: &&Subscription| s.protocol == "email" && s.endpoint.eq_ignore_ascii_case(email);
    let Some(subscription) = subscriptions.iter().find(theirs) else { return Step::Subscribe };
    if subscription.pending {
        return Step::Pending;
    }
    let policy: Option<serde_json::Value> =
        subscription.filter_policy.as_deref().and_then(|p| serde_json::from_str(p).ok());
    let wanted: Option<serde_json::Value> = serde_json::from_str(&filter_policy(email)).ok();
    let scoped = subscription.filter_scope.as_deref().is_none_or(|scope| scope == "MessageAttributes");
    if policy.is_some() && policy == wanted && scoped { Step::Ready } else { Step::SetPolicy(subscription.arn.clone()) }
}

/// The topics of the `chosen` pipelines' approval stages that name approvers, each with its approvers (once each).
fn approver_topics<'a>(chosen: impl Iterator<Item = &'a Pipeline>) -> Vec<(String, Vec<String>)> {
    let mut topics: Vec<(String, Vec<String>)> = Vec::new();
    let stages = chosen.flat_map(Pipeline::approval_stages);
    for approval in stages.map(|(_, approval)| approval) {
        let Some(approvers) = &approval.approvers else { continue };
        let at = match topics.iter().position(|(topic, _)| *topic == approval.topic_arn) {
            Some(at) => at,
            None => {
                topics.push((approval.topic_arn.clone(), Vec::new()));
                topics.len() - 1
            }
        };
        let emails = &mut topics[at].1;
        for email in &approvers.emails {
            if !emails.contains(email) {
                emails.push(email.clone());
            }
        }
    }
    topics
}

/// How a line of the report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warning,
    Problem,
}

impl Approvers {
    pub async fn run(self, target: &Target) -> Result<ExitCode> {
        let Verb::Sync(sync) = self.verb;
        sync.run(target).await
    }
}

impl Sync {
    async fn run(self, target: &Target) -> Result<ExitCode> {
        let stack = Stack::find(target).await?;
        let published = stack.store().current().await.map_err(|e| stack.store_error(e));
        let Some(published) = published.context("reading the published definitions")? else {
            bail!("no definitions are published yet: run `sluice publish FILE`");
        };
        let definitions = Definitions::parse("the published definitions", &published.text)
            .map_err(|errors| anyhow::anyhow!("the published definitions do not load: {errors}"))?;
        for name in &self.pipelines {
            if definitions.get(name).is_none() {
                bail!("no pipeline {name} is published");
            }
        }
        let chosen = definitions.iter().filter(|p| self.pipelines.is_empty() || self.pipelines.contains(&p.name));
        let topics = approver_topics(chosen);
        if topics.is_empty() {
            anstream::println!("nothing to sync: no approval stage of these pipelines names approvers");
            return Ok(ExitCode::SUCCESS);
        }
        let sns = aws_sdk_sns::Client::new(&stack.config);
        let mut lines = Vec::new();
        for (topic, emails) in &topics {
            lines.extend(self.sync_topic(&sns, topic, emails).await?);
        }
        let problem = lines.iter().any(|(level, _)| *level == Level::Problem);
        if target.json {
            let name = |level| match level {
                Level::Ok => "ok",
                Level::Warning => "warning",
                Level::Problem => "problem",
            };
            let lines: Vec<_> =
                lines.iter().map(|(level, said)| json!({ "level": name(*level), "said": said })).collect();
            println!("{}", serde_json::to_string_pretty(&json!({ "ok": !problem, "lines": lines }))?);
        } else {
            for (level, said) in &lines {
                let word = match level {
                    Level::Ok => mark("ok     ", AnsiColor::Green),
                    Level::Warning => mark("warning", AnsiColor::Yellow),
                    Level::Problem => mark("problem", AnsiColor::Red),
                };
                anstream::println!("{word}  {said}");
            }
        }
        Ok(if problem { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }

    /// Syncs `emails` on `topic`: what was done (or would be), a line each, then each subscription that still would
    /// receive links not its own, as read again once mended.
    async fn sync_topic(
        &self,
        sns: &aws_sdk_sns::Client,
        topic: &str,
        emails: &[String],
    ) -> Result<Vec<(Level, String)>> {
        let notifier = SnsNotifier::new(sns.clone());
        let read = |notifier: &SnsNotifier| {
            let topic = topic.to_owned();
            let notifier = notifier.clone();
            async move {
                notifier.subscriptions(&topic).await.with_context(|| format!("reading the subscriptions of {topic}"))
            }
        };
        let subscriptions = read(&notifier).await?;
        let would = if self.dry_run { "would be " } else { "" };
        let mut lines = Vec::new();
        let (mut changed, mut mended) = (false, Vec::new());
        for email in emails {
            let step = step(email, &subscriptions);
            changed |= matches!(step, Step::Subscribe | Step::SetPolicy(_));
            if let Step::SetPolicy(arn) = &step {
                mended.push(arn.clone());
            }
            if !self.dry_run
                && let Err(error) = carry_out(sns, topic, email, &step).await
            {
                lines.push((Level::Problem, format!("{error:#}")));
                continue;
            }
            lines.push(match step {
                Step::Ready => (Level::Ok, format!("{email} on {topic}: subscribed with their filter policy")),
                Step::Pending => (
                    Level::Warning,
                    format!(
                        "{email} on {topic}: subscribed, waits for them to open AWS's confirmation mail (until then they \
                         get no request); run this again once they have, to check the confirmed subscription's policy"
                    ),
                ),
                Step::Subscribe => (
                    Level::Ok,
                    format!("{email} on {topic}: {would}subscribed with their filter policy; AWS mails them a confirmation link"),
                ),
                Step::SetPolicy(arn) => {
                    (Level::Ok, format!("{email} on {topic}: their subscription {arn} {would}given their filter policy"))
                }
            });
        }
        // What would still receive links not its own: read again once mended; in a dry run, all but those a sync
        // would mend.
        let now = if self.dry_run || !changed { subscriptions } else { read(&notifier).await? };
        let left: Vec<Subscription> = now.into_iter().filter(|s| !(self.dry_run && mended.contains(&s.arn))).collect();
        for said in unfit_subscriptions(&left) {
            lines.push((
                Level::Problem,
                format!(
                    "{topic}: its {said}; the approval function sends no personal link there until it is removed \
                         (`aws sns unsubscribe --subscription-arn ARN`) or given one approver's filter policy"
                ),
            ));
        }
        if changed && !self.dry_run {
            let said = format!(
                "{topic}: SNS takes up to 15 minutes to apply a new filter policy: wait as long before the next \
                 approval request goes out (a push, or `sluice retry-effect`)"
            );
            lines.push((Level::Warning, said));
        }
        Ok(lines)
    }
}

/// Carries out `step` for `email` on `topic`: subscribes them with their filter policy, or gives their confirmed
/// subscription the policy (on the message attributes).
async fn carry_out(sns: &aws_sdk_sns::Client, topic: &str, email: &str, step: &Step) -> Result<()> {
    let policy = filter_policy(email);
    match step {
        Step::Ready | Step::Pending => Ok(()),
        Step::Subscribe => {
            let subscribe = sns.subscribe().topic_arn(topic).protocol("email").endpoint(email);
            let subscribe =
                subscribe.attributes("FilterPolicy", policy).attributes("FilterPolicyScope", "MessageAttributes");
            let subscribed = subscribe.return_subscription_arn(true).send().await;
            subscribed.map(drop).map_err(|error| anyhow::anyhow!("subscribing {email} to {topic}: {}", plain(&error)))
        }
        Step::SetPolicy(arn) => {
            // The policy first: it is valid on either scope, and the scope then changes to the attributes.
            for (name, value) in [("FilterPolicy", policy.as_str()), ("FilterPolicyScope", "MessageAttributes")] {
                let set =
                    sns.set_subscription_attributes().subscription_arn(arn).attribute_name(name).attribute_value(value);
                set.send()
                    .await
                    .map_err(|error| anyhow::anyhow!("setting {email}'s {name} ({arn}): {}", plain(&error)))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(endpoint: &str, policy: Option<String>, pending: bool) -> Subscription {
        Subscription {
            arn: if pending { "PendingConfirmation".into() } else { format!("arn:aws:sns:eu-west-1:1:t:{endpoint}") },
            protocol: "email".into(),
            endpoint: endpoint.into(),
            pending,
            filter_policy: policy,
            filter_scope: None,
        }
    }

    #[test]
    fn each_approver_is_subscribed_given_their_policy_or_left_as_they_are() {
        let alice = filter_policy("alice@example.com");
        let subscriptions = [
            email("Alice@example.com", Some(alice.clone()), false),
            email("bob@example.com", None, false),
            email("carol@example.com", None, true),
            email("dave@example.com", Some(r#"{"sluice_approver":["erin@example.com"]}"#.into()), false),
        ];
        assert_eq!(step("alice@example.com", &subscriptions), Step::Ready);
        assert_eq!(
            step("bob@example.com", &subscriptions),
            Step::SetPolicy("arn:aws:sns:eu-west-1:1:t:bob@example.com".into())
        );
        assert_eq!(step("carol@example.com", &subscriptions), Step::Pending);
        assert_eq!(
            step("dave@example.com", &subscriptions),
            Step::SetPolicy("arn:aws:sns:eu-west-1:1:t:dave@example.com".into())
        );
        assert_eq!(step("frank@example.com", &subscriptions), Step::Subscribe);
        // A policy on the message body is set again, on the attributes
        let body = Subscription {
            filter_scope: Some("MessageBody".into()),
            ..email("alice@example.com", Some(alice.clone()), false)
        };
        assert_eq!(
            step("alice@example.com", &[body]),
            Step::SetPolicy("arn:aws:sns:eu-west-1:1:t:alice@example.com".into())
        );
        // The same policy written otherwise is the same policy
        let spaced =
            email("alice@example.com", Some("{ \"sluice_approver\" : [ \"alice@example.com\" ] }".into()), false);
        assert_eq!(step("alice@example.com", &[spaced]), Step::Ready);
    }
}
