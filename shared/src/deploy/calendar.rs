//! Whether a deploy stage's calendar lets a deployment start at an instant, and if not, when it next does: its
//! windows and deny periods judged in their IANA time zones, daylight saving as the time zones' database has it.
//! Pure: the instant is given. The one place that links the database (the deployer, and `sluice check` for names).

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::definitions::{Calendar, Deny, Window};

/// Why a calendar keeps a deployment from starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Closed now; it opens at `opens`. `why` says so, with the opening in the time zone of what opens it.
    Until { opens: DateTime<Utc>, why: String },
    /// It does not open within the year to come (or names a time zone the database does not know): no deployment
    /// would start.
    Never(String),
}

/// How many boundaries (a deny period's end, a window's start) are tried for the next opening: enough for a year of
/// deny periods and a week of windows.
const BOUNDARIES: usize = 64;

/// `Ok` if `calendar` lets a deployment start at `now`; else why not, and when it next does.
pub fn judge(calendar: &Calendar, now: DateTime<Utc>) -> Result<(), Closed> {
    let zones = Zones::of(calendar).map_err(Closed::Never)?;
    if zones.open(calendar, now) {
        return Ok(());
    }
    let why = match zones.denied(calendar, now) {
        Some(deny) => {
            let reason = deny.reason.as_deref().map(|reason| format!(": {reason}")).unwrap_or_default();
            format!("denied {}{reason}", deny.period())
        }
        None => {
            let windows: Vec<String> = calendar.windows.iter().map(ToString::to_string).collect();
            format!("outside {}", windows.join("; "))
        }
    };
    let mut at = now;
    for _ in 0..BOUNDARIES {
        at = match zones.next_boundary(calendar, at) {
            Some(next) if next - now <= TimeDelta::days(366) => next,
            _ => break,
        };
        if zones.open(calendar, at) {
            let shown = zones.shown(calendar, at);
            return Err(Closed::Until { opens: at, why: format!("the window opening {shown} ({why})") });
        }
    }
    Err(Closed::Never(format!("no window opens within a year ({why})")))
}

/// The time zone of each window and deny period, in order.
struct Zones {
    windows: Vec<Tz>,
    deny: Vec<Tz>,
}

impl Zones {
    fn of(calendar: &Calendar) -> Result<Self, String> {
        let zone =
            |name: &str| name.parse::<Tz>().map_err(|_| format!("the time zones' database has no time zone {name:?}"));
        Ok(Self {
            windows: calendar.windows.iter().map(|w| zone(&w.timezone)).collect::<Result<_, _>>()?,
            deny: calendar.deny.iter().map(|d| zone(&d.timezone)).collect::<Result<_, _>>()?,
        })
    }

    fn open(&self, calendar: &Calendar, at: DateTime<Utc>) -> bool {
        let in_window = calendar.windows.is_empty()
            || calendar.windows.iter().zip(&self.windows).any(|(window, zone)| within(window, *zone, at));
        in_window && self.denied(calendar, at).is_none()
    }

    fn denied<'a>(&self, calendar: &'a Calendar, at: DateTime<Utc>) -> Option<&'a Deny> {
        calendar.deny.iter().zip(&self.deny).find_map(|(deny, zone)| {
            let day = at.with_timezone(zone).date_naive();
            (deny.from <= day && day <= deny.to).then_some(deny)
        })
    }

    /// The first instant after `at` where what is closed may open: the latest end of the deny periods covering
    /// `at` (nothing opens before it), else the next start of a window.
    fn next_boundary(&self, calendar: &Calendar, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let ends = calendar.deny.iter().zip(&self.deny).filter_map(|(deny, zone)| {
            let day = at.with_timezone(zone).date_naive();
            (deny.from <= day && day <= deny.to)
                .then(|| local(*zone, deny.to.succ_opt()?.and_hms_opt(0, 0, 0)?))
                .flatten()
        });
        if let Some(end) = ends.max() {
            return Some(end).filter(|end| *end > at);
        }
        let starts = calendar.windows.iter().zip(&self.windows).filter_map(|(window, zone)| {
            let today = at.with_timezone(zone).date_naive();
            (0..=8)
                .filter_map(|ahead| today.checked_add_days(chrono::Days::new(ahead)))
                .filter(|day| window.days & (1 << day.weekday().num_days_from_monday()) != 0)
                .filter_map(|day| local(*zone, starting(day, window.from)?))
                .find(|start| *start > at)
        });
        starts.filter(|next| *next > at).min()
    }

    /// `at` as the time zone of the first window open then shows it (`Mon 2026-12-07 09:00 Europe/Berlin`), else in
    /// UTC.
    fn shown(&self, calendar: &Calendar, at: DateTime<Utc>) -> String {
        let zone = calendar.windows.iter().zip(&self.windows).find(|(window, zone)| within(window, **zone, at));
        match zone {
            Some((window, zone)) => {
                format!("{} {}", at.with_timezone(zone).format("%a %Y-%m-%d %H:%M"), window.timezone)
            }
            None => format!("{} UTC", at.format("%a %Y-%m-%d %H:%M")),
        }
    }
}

/// Whether `window` is open at `at`, in its time zone.
fn within(window: &Window, zone: Tz, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&zone);
    let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(u16::MAX);
    window.days & (1 << local.weekday().num_days_from_monday()) != 0 && window.from <= minute && minute < window.to
}

/// `minutes` after midnight of `day`, on the local clock.
fn starting(day: NaiveDate, minutes: u16) -> Option<NaiveDateTime> {
    day.and_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)
}

/// The instant the local clock of `zone` reads `time`: the earlier of two when the clock goes back; when it skips
/// `time` (it goes forward), the first minute after the gap.
fn local(zone: Tz, time: NaiveDateTime) -> Option<DateTime<Utc>> {
    for skipped in 0..=180 {
        let tried = time + TimeDelta::minutes(skipped);
        match zone.from_local_datetime(&tried) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return Some(at.with_timezone(&Utc));
            }
            LocalResult::None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("an RFC 3339 time").with_timezone(&Utc)
    }

    fn window(days: &str, hours: &str, timezone: &str) -> Window {
        let (from, to) = crate::definitions::calendar::hours(hours).expect("hours");
        Window { days: crate::definitions::calendar::days(days).expect("days"), from, to, timezone: timezone.into() }
    }

    fn office(timezone: &str) -> Calendar {
        Calendar { windows: vec![window("mon-fri", "09:00-16:00", timezone)], deny: Vec::new() }
    }

    fn opens(calendar: &Calendar, now: &str) -> (DateTime<Utc>, String) {
        match judge(calendar, utc(now)) {
            Err(Closed::Until { opens, why }) => (opens, why),
            other => panic!("closed until a time: {other:?}"),
        }
    }

    #[test]
    fn a_window_is_open_on_its_days_and_hours_in_its_time_zone() {
        let berlin = office("Europe/Berlin");
        assert_eq!(judge(&berlin, utc("2026-12-07T08:00:00Z")), Ok(()), "Monday 09:00 in Berlin (CET)");
        assert_eq!(judge(&berlin, utc("2026-12-07T14:59:59Z")), Ok(()), "15:59:59");
        assert!(judge(&berlin, utc("2026-12-07T15:00:00Z")).is_err(), "16:00 closes it");
        assert_eq!(judge(&berlin, utc("2026-07-06T07:00:00Z")), Ok(()), "Monday 09:00 in Berlin (CEST)");
        assert!(judge(&berlin, utc("2026-07-06T06:59:00Z")).is_err(), "08:59 CEST");
    }

    #[test]
    fn closed_after_hours_on_a_friday_it_opens_on_monday_morning_local_time_as_it_is_then() {
        let (at, why) = opens(&office("Europe/Berlin"), "2026-12-04T15:30:00Z");
        assert_eq!(at, utc("2026-12-07T08:00:00Z"));
        assert_eq!(
            why,
            "the window opening Mon 2026-12-07 09:00 Europe/Berlin (outside mon-fri 09:00-16:00 Europe/Berlin)"
        );
        // The weekend Berlin's clocks go back (Sunday 25 October 2026, 03:00 CEST to 02:00 CET): Monday 09:00 is
        // an hour later in UTC than Friday's.
        assert_eq!(opens(&office("Europe/Berlin"), "2026-10-23T15:00:00Z").0, utc("2026-10-26T08:00:00Z"));
        // New York's clocks go forward on Sunday 8 March 2026: Friday 18:00 EST, Monday 09:00 EDT.
        assert_eq!(opens(&office("America/New_York"), "2026-03-06T23:00:00Z").0, utc("2026-03-09T13:00:00Z"));
    }

    #[test]
    fn a_window_starting_in_the_hour_the_clock_skips_opens_when_the_clock_resumes_and_one_it_repeats_the_first_time() {
        // Berlin skips 02:00-03:00 on 29 March 2026: a window from 02:30 opens at 03:00 CEST (01:00 UTC).
        let night = Calendar { windows: vec![window("daily", "02:30-03:30", "Europe/Berlin")], deny: Vec::new() };
        assert_eq!(opens(&night, "2026-03-29T00:00:00Z").0, utc("2026-03-29T01:00:00Z"));
        // It repeats 02:00-03:00 on 25 October 2026: the window opens at the first 02:30, CEST (00:30 UTC).
        assert_eq!(opens(&night, "2026-10-24T23:00:00Z").0, utc("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn a_deny_period_closes_its_whole_days_and_its_end_opens_the_next_window() {
        let holidays = Deny {
            from: NaiveDate::from_ymd_opt(2026, 12, 20).expect("a date"),
            to: NaiveDate::from_ymd_opt(2027, 1, 4).expect("a date"),
            timezone: "Europe/Berlin".into(),
            reason: Some("holidays".into()),
        };
        let calendar = Calendar { deny: vec![holidays.clone()], ..office("Europe/Berlin") };
        assert_eq!(judge(&calendar, utc("2026-12-18T09:00:00Z")), Ok(()), "the Friday before");
        // Monday 21 December, 10:00 in Berlin: denied; Monday 4 January is too; Tuesday 5 January 09:00 opens.
        let (at, why) = opens(&calendar, "2026-12-21T09:00:00Z");
        assert_eq!(at, utc("2027-01-05T08:00:00Z"));
        assert_eq!(
            why,
            "the window opening Tue 2027-01-05 09:00 Europe/Berlin (denied 2026-12-20 to 2027-01-04 Europe/Berlin: \
             holidays)"
        );
        // Without windows, the day after the period opens at its midnight (in UTC, as no window shows it).
        let denied = Calendar { windows: Vec::new(), deny: vec![holidays] };
        let (at, why) = opens(&denied, "2026-12-24T12:00:00Z");
        assert_eq!(at, utc("2027-01-04T23:00:00Z"));
        assert!(why.starts_with("the window opening Mon 2027-01-04 23:00 UTC (denied"), "{why}");
    }

    #[test]
    fn a_long_deny_period_over_daily_windows_opens_at_the_first_window_after_it() {
        let summer = Deny {
            from: NaiveDate::from_ymd_opt(2026, 6, 1).expect("a date"),
            to: NaiveDate::from_ymd_opt(2026, 8, 31).expect("a date"),
            timezone: "Europe/Berlin".into(),
            reason: Some("summer freeze".into()),
        };
        let windows = (0..7).map(|k| window(crate::definitions::calendar::DAYS[k], "09:00-16:00", "Europe/Berlin"));
        let calendar = Calendar { windows: windows.collect(), deny: vec![summer] };
        // Tuesday 2 June: the first window after the period is Tuesday 1 September, 09:00 CEST
        assert_eq!(opens(&calendar, "2026-06-02T08:00:00Z").0, utc("2026-09-01T07:00:00Z"));
    }

    #[test]
    fn a_calendar_that_never_opens_or_names_an_unknown_zone_is_closed_for_good() {
        let unknown = office("Mars/Olympus_Mons");
        assert!(
            matches!(judge(&unknown, utc("2026-12-07T08:00:00Z")), Err(Closed::Never(why)) if why.contains("Mars"))
        );
        let always_denied = Deny {
            from: NaiveDate::from_ymd_opt(2026, 12, 1).expect("a date"),
            to: NaiveDate::from_ymd_opt(2027, 11, 30).expect("a date"),
            timezone: "UTC".into(),
            reason: None,
        };
        let mut calendar = office("UTC");
        calendar.deny = vec![
            always_denied.clone(),
            Deny { from: always_denied.to, to: always_denied.to + TimeDelta::days(300), ..always_denied },
        ];
        assert!(matches!(judge(&calendar, utc("2026-12-07T10:00:00Z")), Err(Closed::Never(_))));
    }
}
