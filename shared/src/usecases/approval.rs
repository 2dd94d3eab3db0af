//! The approval function's use cases: send the request (the "request approval" effect), show the review page for
//! a link (GET: never changes anything), and record a person's decision (POST from that page).

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::contract::ports::{
    ArtifactError, ArtifactStore, DeployError, EventPublisher, NotifyError, PipelineStore, ReviewSite, RunningServices,
    TopicMessage, TopicNotifier, approval_link,
};
use crate::definitions::Approvers;
use crate::deploy::compare::{self, TaskShape};
use crate::pipeline::{
    ApprovalDecision, ApprovalNotice, ApprovalStanding, ApproverRefused, Effect, EffectKind, Event, Execution,
    ExecutionId, Freeze, Gate, MAX_APPROVER, MAX_COMMENT, PauseNotice, ReleaseComparison, ReleaseLookup,
    TransitionError,
};
use crate::present::approval_email::{Links, approval_email};
use crate::present::approval_page::{self as page, Named, RunFacts};
use crate::present::html::Page;
use crate::runtime::telemetry::Chain;
use crate::usecases::{EffectError, EffectRunner, Handled, Input, handle};
use token::{LinkToken, same_hash};

/// The largest decision form accepted (a name, a comment and two tokens need far less).
pub const MAX_FORM: usize = 8 * 1024;

/// The approval function's effect runner: sends approval requests, and publishes announcements.
pub struct ApprovalEffects<P, N, W, A, R> {
    pub publisher: P,
    pub notifier: N,
    pub site: W,
    /// The builds' artifacts: the release's task definition, compared with what runs where approving releases it.
    pub artifacts: A,
    /// What the deploy stages' services run now.
    pub services: R,
    /// How long a request waits for what runs where it releases the build ([`COMPARISON_BUDGET`] on AWS).
    pub compare_budget: std::time::Duration,
    /// The AWS region, named in the request's JSON form.
    pub region: String,
    /// The clock the email's "expires in" is read from.
    pub clock: fn() -> DateTime<Utc>,
}

impl<P, N, W, A, R> ApprovalEffects<P, N, W, A, R>
where
    P: EventPublisher,
    N: TopicNotifier,
    W: ReviewSite,
    A: ArtifactStore,
    R: RunningServices,
{
    async fn request(&self, effect: &Effect) -> Result<Option<Event>, EffectError> {
        let Effect::RequestApproval { execution_id, topic_arn, expires_at, notice, hook_id, release, approvers } =
            effect
        else {
            return Err(EffectError::permanent(
                effect.kind().name(),
                "not an effect the approval function carries out",
            ));
        };
        if !approvers.is_empty() {
            self.only_personal_subscriptions(topic_arn, approvers).await?;
        }
        let base = self.site.base_url().await.map_err(|error| EffectError::transient("request_approval", error))?;
        let compared = match (release, hook_id, notice.image_uri.as_deref()) {
            (Some(release), None, Some(image)) => Some(Box::new(self.compare(release, image).await)),
            _ => None,
        };
        let notice = ApprovalNotice { compared: compared.clone(), ..(**notice).clone() };
        let token = LinkToken::generate().map_err(|error| EffectError::transient("request_approval", error))?;
        let mut personal = Vec::new();
        if approvers.is_empty() {
            self.send(topic_arn, execution_id, (&notice, *expires_at), (&base, &token), None).await?;
        }
        for approver in approvers {
            let mine = LinkToken::generate().map_err(|error| EffectError::transient("request_approval", error))?;
            self.send(topic_arn, execution_id, (&notice, *expires_at), (&base, &mine), Some(approver)).await?;
            personal.push(mine.hash());
        }
        info!(execution = %execution_id, topic = %topic_arn, approvers = approvers.len(), "approval requested");
        let (execution_id, token_hash, hook_id) = (execution_id.clone(), token.hash(), hook_id.clone());
        Ok(Some(Event::ApprovalSent { execution_id, token_hash, personal, hook_id, compared }))
    }

    /// One approval email, with the link of `token`: to every subscriber, or (`approver`) to that approver's
    /// subscription alone.
    async fn send(
        &self,
        topic_arn: &str,
        execution_id: &ExecutionId,
        (notice, expires_at): (&ApprovalNotice, DateTime<Utc>),
        (base, token): (&str, &LinkToken),
        approver: Option<&String>,
    ) -> Result<(), EffectError> {
        let review = format!("{base}r/{}", token.encode());
        let links = Links { review: &review, base, region: &self.region, approver: approver.map(String::as_str) };
        let email = approval_email(execution_id, notice, expires_at, links, (self.clock)());
        let email = TopicMessage { approver: approver.cloned(), ..email };
        match self.notifier.notify(topic_arn, &email).await {
            Ok(()) => Ok(()),
            Err(error @ NotifyError::Refused { .. }) => Err(EffectError::permanent("request_approval", error)),
            Err(error @ NotifyError::Unavailable { .. }) => Err(EffectError::transient("request_approval", error)),
        }
    }

    /// Personal links go only to a topic whose every subscription accepts named approvers' messages alone: one
    /// without a filter policy would receive everyone's links. Otherwise the request is refused, naming them.
    async fn only_personal_subscriptions(&self, topic_arn: &str, approvers: &[String]) -> Result<(), EffectError> {
        let subscriptions = match self.notifier.subscriptions(topic_arn).await {
            Ok(subscriptions) => subscriptions,
            Err(error @ NotifyError::Refused { .. }) => return Err(EffectError::permanent("request_approval", error)),
            Err(error @ NotifyError::Unavailable { .. }) => {
                return Err(EffectError::transient("request_approval", error));
            }
        };
        let unreached = personal::unreached(approvers, &subscriptions);
        if !unreached.is_empty() {
            warn!(topic = %topic_arn, approvers = %unreached.join(", "), "no confirmed subscription takes these approvers' links: `sluice approvers sync` subscribes them");
        }
        let unfit = personal::unfit_subscriptions(&subscriptions);
        if unfit.is_empty() {
            return Ok(());
        }
        let message = format!(
            "personal approval links are not sent to topic {topic_arn}: its {} (give each subscription its \
             approver's filter policy with `sluice approvers sync`, or unsubscribe it)",
            unfit.join("; its ")
        );
        Err(EffectError::permanent("request_approval", message))
    }

    /// The release (`image`, with the build's task definition) against what runs where approving releases it, read
    /// within the compare budget. What cannot be read is said in a few words (the cause goes to the log: AWS's
    /// messages may name principals), and never holds the request up: the approvers are asked either way.
    async fn compare(&self, release: &ReleaseLookup, image: &str) -> ReleaseComparison {
        let (cluster, service) = (&release.cluster, &release.service);
        let read = async {
            let (new, running) =
                futures_util::future::join(self.release_shape(release, image), self.services.running(cluster, service))
                    .await;
            let new = match new {
                Ok(shape) => shape,
                Err(why) => return compare::unread(image, &why),
            };
            match running {
                Ok(Some(running)) => {
                    compare::compare((compare::short_name(&running.task_definition), &running.shape), &new, image)
                }
                Ok(None) => {
                    compare::unread(image, &format!("ECS has no active service {service} in cluster {cluster}"))
                }
                Err(error) => {
                    warn!(error = %Chain(&error), %cluster, %service, "what the service runs could not be read");
                    let why = match error {
                        DeployError::Unavailable { .. } | DeployError::Busy { .. } => "ECS did not answer",
                        DeployError::Refused { .. } => {
                            "ECS could not describe it (the log of the function that sent this says why)"
                        }
                    };
                    compare::unread(image, &format!("service {service} in cluster {cluster}: {why}"))
                }
            }
        };
        match tokio::time::timeout(self.compare_budget, read).await {
            Ok(compared) => compared,
            Err(_) => {
                warn!(%cluster, %service, "what the service runs was not read in time; the request goes without it");
                compare::unread(image, "ECS and S3 did not answer in time")
            }
        }
    }

    /// The release's task definition, rendered as its deploy stage renders it; or why it could not be, in a few words.
    async fn release_shape(&self, release: &ReleaseLookup, image: &str) -> Result<TaskShape, String> {
        let file = crate::deploy::TASK_DEFINITION_FILE;
        let location = crate::usecases::artifact_location(&release.artifacts)
            .ok_or_else(|| format!("the build's artifacts are at an unreadable location ({})", release.artifacts))?;
        let text = match self.artifacts.read(&location, file).await {
            Ok(Some(text)) => text,
            Ok(None) => return Err(format!("{file} is missing from the build's artifacts")),
            Err(error) => {
                let artifacts = &release.artifacts;
                warn!(error = %Chain(&error), %artifacts, "the release's task definition could not be read");
                // S3 answers 403 for a missing key to a reader that may not list the bucket.
                let why = match error {
                    ArtifactError::Denied { .. } => "missing, or access denied",
                    ArtifactError::Unavailable { .. } => "S3 could not be read just now",
                };
                return Err(format!("the build's {file} could not be read: {why}"));
            }
        };
        let definition = crate::deploy::task_definition(&text, image, release.container.as_deref(), release.allow_host)
            .map_err(|error| error.to_string())?;
        Ok(TaskShape::of(&definition))
    }
}

/// How long an approval request waits on AWS for what runs where it releases the build before it goes out without
/// it (the function has 10 seconds).
pub const COMPARISON_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

impl<P, N, W, A, R> EffectRunner for ApprovalEffects<P, N, W, A, R>
where
    P: EventPublisher,
    N: TopicNotifier,
    W: ReviewSite,
    A: ArtifactStore,
    R: RunningServices,
{
    const KINDS: &'static [EffectKind] = &[EffectKind::RequestApproval, EffectKind::Publish];

    async fn run(&self, _id: &str, effect: &Effect) -> Result<Option<Event>, EffectError> {
        match effect {
            Effect::Publish(event) => super::effects::publish_one(&self.publisher, event).await,
            other => self.request(other).await,
        }
    }
}

/// A link's run, as the store has it.
struct Found {
    pipeline: String,
    execution: Execution,
    token: LinkToken,
    /// The pipeline's freeze, as read with the run.
    freeze: Option<Box<Freeze>>,
}

impl Found {
    /// The decision the link asks for: the approval stage's or a pause's (the link's token hash is one of theirs).
    fn gate(&self) -> Option<Gate<'_>> {
        let hash = self.token.hash();
        self.execution.gates().find(|gate| {
            let facts = gate.facts();
            // A named approval's request hash is no one's link.
            let current = gate.pause().is_none() && self.execution.approval().is_some_and(|a| std::ptr::eq(a, facts));
            let named = !facts.personal.is_empty() || (current && self.execution.named_approvers().is_some());
            let shared = !named && facts.token_hash.as_deref().is_some_and(|h| same_hash(h, &hash));
            shared || facts.personal.iter().any(|h| same_hash(h, &hash))
        })
    }

    /// The named approver whose own link this is, and the approval's named approvers.
    fn named(&self) -> Option<(&str, &Approvers)> {
        let hash = self.token.hash();
        let you = self.execution.approver_where(|mine| same_hash(mine, &hash))?;
        Some((you, self.execution.named_approvers()?))
    }

    /// What the pages show of a named approver's own link.
    fn named_facts(&self) -> Option<Named<'_>> {
        let (you, approvers) = self.named()?;
        let signoffs = self.execution.approval().map(|facts| facts.signoffs.as_slice()).unwrap_or_default();
        Some(Named { you, signoffs, required: approvers.required })
    }
}

/// The run the link in `token` decides on, if it is a link sluice sent and still the run's current one. Unknown,
/// malformed, forged and replaced links all come back `None`: the caller cannot tell them apart, nor can a guesser.
async fn find<S: PipelineStore>(store: &S, token: &str) -> Result<Option<Found>, crate::contract::ports::StoreError> {
    let Some(token) = LinkToken::parse(token) else { return Ok(None) };
    let hash = token.hash();
    let Some(link) = store.find(&approval_link(&hash)).await? else { return Ok(None) };
    let Some(stored) = store.load(&link.pipeline).await? else { return Ok(None) };
    let Some(execution) = stored.value.execution(&link.execution).cloned() else { return Ok(None) };
    let freeze = stored.value.freeze;
    let mut found = Found { pipeline: link.pipeline, execution, token, freeze };
    if found.gate().is_none() && (found.execution.abridged || found.execution.has_pauses_apart()) {
        // A run that ended a while ago, or a pause of a stage the run went past: the decision is in the run's own
        // items.
        let Some(whole) = store.whole(&link.execution).await? else { return Ok(None) };
        found.execution = whole;
    }
    Ok(found.gate().is_some().then_some(found))
}

/// The page for a link whose decision no longer waits, or `None` while it does.
fn closed(found: &Found, now: DateTime<Utc>) -> Option<Page> {
    let gate = found.gate()?;
    match found.execution.standing(gate, now) {
        ApprovalStanding::Open => refused_approver(found),
        ApprovalStanding::Decided { decision, approver, at } => {
            Some(page::already_decided(decision, approver.unwrap_or("someone"), at))
        }
        ApprovalStanding::Expired { at } => Some(match gate.pause() {
            Some(pause) => page::pause_expired(at, pause.timeout_action),
            None => page::expired(at),
        }),
        ApprovalStanding::Withdrawn { reason } => {
            Some(page::withdrawn(reason.unwrap_or("the run no longer waits for an approval")))
        }
    }
}

/// The page for a named approver whose decision the open approval does not take: one who already approved, or the
/// pusher where the pipeline forbids approving one's own push.
fn refused_approver(found: &Found) -> Option<Page> {
    let (you, _) = found.named()?;
    Some(match found.execution.approver_refused(you)? {
        ApproverRefused::AlreadyApproved { at } => page::already_signed(you, at),
        ApproverRefused::Pusher => page::pusher_refused(you),
    })
}

/// The page after a named approver's approval was recorded, as the approval stands now (another approver may have
/// decided meanwhile): how many approved of how many needed while it waits for more; the decision once it stands;
/// that it was recorded, if it cannot be read now.
async fn after_approval<S: PipelineStore>(
    store: &S,
    token: &str,
    facts: &RunFacts<'_>,
    by: &str,
    now: DateTime<Utc>,
) -> Page {
    let Ok(Some(found)) = find(store, token).await else { return page::approval_recorded(facts, by) };
    let Some(gate) = found.gate() else { return page::approval_recorded(facts, by) };
    let approval = gate.facts();
    match (approval.decision, found.execution.named_approvers()) {
        (None, Some(approvers)) => page::signed_off(facts, by, approval.signoffs.len(), approvers.required),
        (Some(ApprovalDecision::Approved), _) => page::decided(facts, ApprovalDecision::Approved, by),
        _ => closed(&found, now).unwrap_or_else(|| page::approval_recorded(facts, by)),
    }
}

/// The run behind the link in `token` while its approval waits; otherwise the page that says why it does not.
async fn open<S: PipelineStore>(store: &S, token: &str, now: DateTime<Utc>) -> Result<Found, Page> {
    let found = match find(store, token).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(page::not_found()),
        Err(error) => {
            warn!(error = %Chain(&error), "approval link not looked up");
            return Err(page::unavailable());
        }
    };
    match closed(&found, now) {
        Some(page) => Err(page),
        None => Ok(found),
    }
}

/// What the pages show of the run, and until when the link decides.
fn notice_of(found: &Found, now: DateTime<Utc>) -> (ApprovalNotice, DateTime<Utc>) {
    let frozen =
        found.freeze.as_deref().filter(|_| !found.execution.let_through_next()).map(crate::present::text::freeze);
    let Some(gate) = found.gate() else {
        return (ApprovalNotice { frozen, ..ApprovalNotice::of(&found.execution, now) }, now);
    };
    let facts = gate.facts();
    let notice = ApprovalNotice {
        pause: gate.pause().map(|pause| PauseNotice::of(&found.execution, pause)),
        frozen,
        ..ApprovalNotice::of(&found.execution, facts.requested_at)
    };
    (notice, facts.expires_at)
}

/// GET on a link: the review page, or why the link decides nothing. Changes nothing, whoever asks (mail scanners
/// fetch every link of an email).
pub async fn review_page<S: PipelineStore>(store: &S, token: &str, now: DateTime<Utc>) -> Page {
    let found = match open(store, token, now).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let (notice, expires_at) = notice_of(&found, now);
    let facts = RunFacts { execution: &found.execution.id, notice: &notice, expires_at, named: found.named_facts() };
    page::review(&facts, &found.token.form_token(), now)
}

/// Who decided, as the request showed them.
#[derive(Debug, Clone, Default)]
pub struct Requester<'a> {
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

struct DecisionForm {
    form_token: String,
    decision: ApprovalDecision,
    approver: String,
    comment: Option<String>,
}

/// The decision form; `named`: the named approver whose own link it was posted to (any name it gives is not theirs
/// to give).
fn read_form(body: &[u8], named: Option<&str>) -> Result<DecisionForm, String> {
    if body.len() > MAX_FORM {
        return Err(format!("the form is larger than {MAX_FORM} bytes"));
    }
    let (mut form_token, mut decision, mut approver, mut comment) = (None, None, None, None);
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "form_token" => &mut form_token,
            "decision" => &mut decision,
            "approver" => &mut approver,
            "comment" => &mut comment,
            _ => continue,
        };
        if slot.replace(value.trim().to_owned()).is_some() {
            return Err(format!("the form has `{name}` twice"));
        }
    }
    let decision = match decision.as_deref() {
        Some("approve") => ApprovalDecision::Approved,
        Some("reject") => ApprovalDecision::Rejected,
        _ => return Err("choose Approve or Reject".to_owned()),
    };
    let approver = match named {
        Some(named) => named.to_owned(),
        None => approver.filter(|name| !name.is_empty()).ok_or("enter your name: it is recorded with the decision")?,
    };
    if approver.chars().count() > MAX_APPROVER || approver.chars().any(char::is_control) {
        return Err(format!("a name is one line of at most {MAX_APPROVER} characters"));
    }
    let comment = comment.filter(|comment| !comment.is_empty());
    if comment.as_ref().is_some_and(|comment| comment.chars().count() > MAX_COMMENT) {
        return Err(format!("a comment is at most {MAX_COMMENT} characters"));
    }
    let form_token = form_token.ok_or("the form is missing its token: open the link again")?;
    Ok(DecisionForm { form_token, decision, approver, comment })
}

/// POST on a link: records the decision, atomically, only while the approval waits and the link is current; the
/// run moves on (approved) or ends (rejected). Every other case gets its page and changes nothing.
pub async fn decide<S: PipelineStore, R: EffectRunner>(
    store: &S,
    runner: &R,
    token: &str,
    body: &[u8],
    requester: Requester<'_>,
    now: DateTime<Utc>,
) -> Page {
    let found = match open(store, token, now).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let form = match read_form(body, found.named().map(|(you, _)| you)) {
        Ok(form) => form,
        Err(message) => return page::bad_request(&message),
    };
    if !found.token.accepts_form(&form.form_token) {
        return page::bad_request("this form was not issued for this link: open the link from the email again");
    }
    let event = Event::ApprovalDecided {
        execution_id: found.execution.id.clone(),
        decision: form.decision,
        approver: form.approver.clone(),
        comment: form.comment.clone(),
        token_hash: Some(found.token.hash()),
        source_ip: requester.source_ip.map(str::to_owned),
        user_agent: requester.user_agent.map(str::to_owned),
    };
    let mode = crate::definitions::ExecutionMode::default();
    let input = Input { pipeline: &found.pipeline, mode, event: &event, receipt: None, now };
    let (notice, expires_at) = notice_of(&found, now);
    let facts = RunFacts { execution: &found.execution.id, notice: &notice, expires_at, named: None };
    match handle(store, runner, input).await {
        Ok(Handled::Applied) => {
            info!(execution = %found.execution.id, decision = form.decision.name(), approver = %form.approver, "approval decided");
            if found.named().is_some() && form.decision == ApprovalDecision::Approved {
                after_approval(store, token, &facts, &form.approver, now).await
            } else {
                page::decided(&facts, form.decision, &form.approver)
            }
        }
        Ok(Handled::Refused(TransitionError::StaleApprovalLink { .. })) => page::not_found(),
        Ok(Handled::Refused(TransitionError::AlreadySignedOff { by, at, .. })) => page::already_signed(&by, at),
        Ok(Handled::Refused(TransitionError::PusherMayNotApprove { by, .. })) => page::pusher_refused(&by),
        Ok(Handled::Refused(TransitionError::ApprovalExpired { expired_at, .. })) => {
            match found.gate().and_then(Gate::pause) {
                Some(pause) => page::pause_expired(expired_at, pause.timeout_action),
                None => page::expired(expired_at),
            }
        }
        // Someone else decided (or the run moved) between the read and the write: say what stands now.
        Ok(_) => match find(store, token).await {
            Ok(Some(found)) => closed(&found, now).unwrap_or_else(page::unavailable),
            Ok(None) => page::not_found(),
            Err(_) => page::unavailable(),
        },
        Err(error) => {
            warn!(error = %Chain(&error), "approval decision not recorded");
            page::unavailable()
        }
    }
}

pub mod personal;
pub mod token;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_approvers;
