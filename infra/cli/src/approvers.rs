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

/// The topics of `pipeline`'s approval stages that name approvers, each with its approvers.
fn approver_topics(pipeline: &Pipeline) -> Vec<(String, Vec<String>)> {
    let mut topics: Vec<(String, Vec<String>)> = Vec::new();
    for (_, approval) in pipeline.approval_stages() {
        let Some(approvers) = &approval.approvers else { continue };
        match topics.iter_mut().find(|(topic, _)| *topic == approval.topic_arn) {
            Some((_, emails)) => {
                emails.extend(approvers.emails.iter().filter(|e| !emails.contains(e)).cloned().collect::<Vec<_>>())
            }
            None => topics.push((approval.topic_arn.clone(), approvers.emails.clone())),
        }
    }
    topics
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
        let mut topics: Vec<(String, Vec<String>)> = Vec::new();
        for (topic, emails) in chosen.flat_map(approver_topics) {
            match topics.iter_mut().find(|(known, _)| *known == topic) {
                Some((_, known)) => known.extend(emails.into_iter().filter(|e| !known.contains(e)).collect::<Vec<_>>()),
                None => topics.push((topic, emails)),
            }
        }
        if topics.is_empty() {
            bail!("no approval stage of the published definitions names approvers");
        }
        let sns = aws_sdk_sns::Client::new(&stack.config);
        let mut lines = Vec::new();
        let mut unfit_left = false;
        for (topic, emails) in &topics {
            let (said, unfit) = self.sync_topic(&sns, topic, emails).await?;
            unfit_left |= unfit;
            lines.extend(said);
        }
        if target.json {
            let lines: Vec<_> = lines.iter().map(|(ok, said)| json!({ "ok": ok, "said": said })).collect();
            println!("{}", serde_json::to_string_pretty(&json!({ "ok": !unfit_left, "lines": lines }))?);
        } else {
            for (ok, said) in &lines {
                let word = if *ok { mark("ok     ", AnsiColor::Green) } else { mark("problem", AnsiColor::Red) };
                anstream::println!("{word}  {said}");
            }
        }
        Ok(if unfit_left { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }

    /// Syncs `emails` on `topic`: what was done (or would be), a line each, and whether a subscription that would
    /// receive links not its own is left.
    async fn sync_topic(
        &self,
        sns: &aws_sdk_sns::Client,
        topic: &str,
        emails: &[String],
    ) -> Result<(Vec<(bool, String)>, bool)> {
        let subscriptions = SnsNotifier::new(sns.clone())
            .subscriptions(topic)
            .await
            .with_context(|| format!("reading the subscriptions of {topic}"))?;
        let would = if self.dry_run { "would be " } else { "" };
        let mut lines = Vec::new();
        for email in emails {
            let said = match step(email, &subscriptions) {
                Step::Ready => format!("{email} on {topic}: subscribed with their filter policy"),
                Step::Pending => {
                    format!("{email} on {topic}: subscribed, waits for them to open AWS's confirmation mail")
                }
                Step::Subscribe => {
                    if !self.dry_run {
                        let policy = filter_policy(email);
                        let subscribed = sns
                            .subscribe()
                            .topic_arn(topic)
                            .protocol("email")
                            .endpoint(email)
                            .attributes("FilterPolicy", policy)
                            .attributes("FilterPolicyScope", "MessageAttributes")
                            .return_subscription_arn(true)
                            .send()
                            .await;
                        subscribed
                            .map_err(|error| anyhow::anyhow!("subscribing {email} to {topic}: {}", plain(&error)))?;
                    }
                    format!(
                        "{email} on {topic}: {would}subscribed with their filter policy; AWS mails them a confirmation link"
                    )
                }
                Step::SetPolicy(arn) => {
                    if !self.dry_run {
                        let set = sns
                            .set_subscription_attributes()
                            .subscription_arn(&arn)
                            .attribute_name("FilterPolicy")
                            .attribute_value(filter_policy(email))
                            .send()
                            .await;
                        set.map_err(|error| {
                            anyhow::anyhow!("setting {email}'s filter policy ({arn}): {}", plain(&error))
                        })?;
                    }
                    format!("{email} on {topic}: their subscription {arn} {would}given their filter policy")
                }
            };
            lines.push((true, said));
        }
        // What is left that would receive links not its own: approvers' subscriptions were just mended.
        let others: Vec<Subscription> = subscriptions
            .into_iter()
            .filter(|s| !(s.protocol == "email" && emails.iter().any(|e| e.eq_ignore_ascii_case(&s.endpoint))))
            .collect();
        let unfit = unfit_subscriptions(&others);
        for said in &unfit {
            lines.push((
                false,
                format!(
                    "{topic}: its {said}; the approval function sends no personal link there until it is removed \
                         (`aws sns unsubscribe --subscription-arn ARN`) or given an approver's filter policy"
                ),
            ));
        }
        Ok((lines, !unfit.is_empty()))
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
        // The same policy written otherwise is the same policy
        let spaced =
            email("alice@example.com", Some("{ \"sluice_approver\" : [ \"alice@example.com\" ] }".into()), false);
        assert_eq!(step("alice@example.com", &[spaced]), Step::Ready);
    }
}
