//! `windows` and `deny`, of a deploy stage or of the pipeline: days, hours, dates and IANA time zones, each mistake at
//! its place.

use chrono::NaiveDate;
use toml::Spanned;

use super::super::calendar::{self, Calendar, Deny, Window};
use super::super::raw::{RawDeny, RawStage, RawWindow};
use super::{Checker, SHOWN, bounded};

/// How many windows and deny periods a stage (or pipeline) may give: each run carries them in its plan.
pub const MAX_WINDOWS: usize = 7;
pub const MAX_DENY: usize = 6;
/// The longest deny period, in days, and the longest reason for one, in characters.
const MAX_DENY_DAYS: i64 = 366;
const MAX_DENY_REASON: usize = 80;

type Written<T> = Spanned<Vec<Spanned<T>>>;

/// A stage's own `windows` and `deny`: a deploy stage's alone.
pub(super) fn stage_calendar(checker: &mut Checker<'_>, stage: &RawStage) -> Option<Calendar> {
    if stage.deploy.is_none() {
        for (field, span) in
            [("windows", stage.windows.as_ref().map(Spanned::span)), ("deny", stage.deny.as_ref().map(Spanned::span))]
        {
            if let Some(span) = span {
                let message =
                    format!("{field} say when a deploy stage may start deployments: only a deploy stage has them");
                checker.error(span, field, message);
            }
        }
        return None;
    }
    calendar(checker, stage.windows.as_ref(), stage.deny.as_ref())
}

/// `windows` and `deny` as written; `None` without either.
pub(super) fn calendar(
    checker: &mut Checker<'_>,
    windows: Option<&Written<RawWindow>>,
    deny: Option<&Written<RawDeny>>,
) -> Option<Calendar> {
    if windows.is_none() && deny.is_none() {
        return None;
    }
    let mut calendar = Calendar { windows: Vec::new(), deny: Vec::new() };
    if let Some(written) = windows {
        if written.get_ref().is_empty() || written.get_ref().len() > MAX_WINDOWS {
            checker.error(written.span(), "windows", format!("1 to {MAX_WINDOWS} windows"));
        }
        for (at, window) in written.get_ref().iter().enumerate() {
            calendar.windows.extend(read_window(checker, window.get_ref(), &format!("windows[{at}]")));
        }
    }
    if let Some(written) = deny {
        if written.get_ref().is_empty() || written.get_ref().len() > MAX_DENY {
            checker.error(written.span(), "deny", format!("1 to {MAX_DENY} deny periods"));
        }
        for (at, period) in written.get_ref().iter().enumerate() {
            calendar.deny.extend(read_deny(checker, period.get_ref(), &format!("deny[{at}]")));
        }
    }
    Some(calendar)
}

fn read_window(checker: &mut Checker<'_>, window: &RawWindow, field: &str) -> Option<Window> {
    let days = calendar::days(window.days.get_ref());
    if days.is_none() {
        let message = format!(
            "days are mon to sun, ranges and lists of them (\"mon-fri\", \"sat,sun\") or \"daily\" (got {:?})",
            bounded(window.days.get_ref(), SHOWN)
        );
        checker.error(window.days.span(), &format!("{field}.days"), message);
    }
    let hours = calendar::hours(window.hours.get_ref());
    if hours.is_none() {
        let message = format!(
            "hours are HH:MM-HH:MM, from before to, at most 24:00 (\"09:00-16:00\"; a window past midnight is two) \
             (got {:?})",
            bounded(window.hours.get_ref(), SHOWN)
        );
        checker.error(window.hours.span(), &format!("{field}.hours"), message);
    }
    let timezone = time_zone(checker, &window.timezone, &format!("{field}.timezone"));
    let ((from, to), days, timezone) = (hours?, days?, timezone?);
    Some(Window { days, from, to, timezone })
}

fn read_deny(checker: &mut Checker<'_>, period: &RawDeny, field: &str) -> Option<Deny> {
    let mut date = |value: &Spanned<String>, name: &str| {
        let date = NaiveDate::parse_from_str(value.get_ref().trim(), "%Y-%m-%d").ok();
        if date.is_none() {
            let message = format!("a date, YYYY-MM-DD (got {:?})", bounded(value.get_ref(), SHOWN));
            checker.error(value.span(), &format!("{field}.{name}"), message);
        }
        date
    };
    let (from, to) = (date(&period.from, "from"), date(&period.to, "to"));
    if let (Some(from), Some(to)) = (from, to)
        && (to < from || (to - from).num_days() >= MAX_DENY_DAYS)
    {
        let message = format!("a deny period runs from `from` through `to`, at most {MAX_DENY_DAYS} days");
        checker.error(period.to.span(), &format!("{field}.to"), message);
    }
    let reason = period.reason.as_ref().map(|reason| {
        let text = reason.get_ref().trim();
        if text.is_empty() || text.chars().count() > MAX_DENY_REASON || text.chars().any(char::is_control) {
            let message = format!("a reason is 1 to {MAX_DENY_REASON} characters on one line");
            checker.error(reason.span(), &format!("{field}.reason"), message);
        }
        text.to_owned()
    });
    let timezone = time_zone(checker, &period.timezone, &format!("{field}.timezone"));
    Some(Deny { from: from?, to: to?, timezone: timezone?, reason })
}

/// An IANA time zone's name (`Europe/Berlin`, `UTC`), as the time zones' database knows it.
fn time_zone(checker: &mut Checker<'_>, value: &Spanned<String>, field: &str) -> Option<String> {
    let name = value.get_ref().trim();
    if name.is_empty() || !(checker.known_zone)(name) {
        let message = format!(
            "an IANA time zone such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\" (got {:?})",
            bounded(value.get_ref(), SHOWN)
        );
        checker.error(value.span(), field, message);
        return None;
    }
    Some(name.to_owned())
}
