//! When a deploy stage may start a deployment: its `windows` (days and hours in an IANA time zone) and its `deny`
//! periods (dates in a time zone). Data and its reading only: whether a stage is open at an instant is judged by
//! [`crate::deploy::calendar`], the one place that knows the time zones' rules.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A deploy stage's windows and deny periods: a deployment starts while any window is open (always, without
/// windows) and no deny period covers the moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<Deny>,
}

/// Days of the week and hours of those days, in `timezone`'s local time: `from` (minutes after midnight) until
/// `to` (at most 24:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The days, a bit each from Monday (bit 0) to Sunday (bit 6).
    pub days: u8,
    pub from: u16,
    pub to: u16,
    pub timezone: String,
}

/// Dates on which no deployment starts, `from` through `to` (whole days, both included), in `timezone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deny {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl std::fmt::Display for Window {
    /// As `sluice check` and a held run tell it: `mon-fri 09:00-16:00 Europe/Berlin`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}-{} {}", days_text(self.days), clock(self.from), clock(self.to), self.timezone)
    }
}

impl Deny {
    /// The period, as `sluice check` and a held run tell it: `2026-12-20 to 2027-01-04 Europe/Berlin`.
    pub fn period(&self) -> String {
        format!("{} to {} {}", self.from, self.to, self.timezone)
    }
}

/// The days' names, Monday first, as written in `days`.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The days `text` names (`mon-fri`, `sat,sun`, `mon-wed,fri`, `fri-mon`, `daily`) as [`Window::days`] bits; `None`
/// if it names none or something else.
pub fn days(text: &str) -> Option<u8> {
    let day = |name: &str| DAYS.iter().position(|day| *day == name.trim().to_ascii_lowercase());
    if text.trim().eq_ignore_ascii_case("daily") {
        return Some(0x7f);
    }
    let mut bits = 0u8;
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day(first)?, day(last)?);
                let mut at = first;
                loop {
                    bits |= 1 << at;
                    if at == last {
                        break;
                    }
                    at = (at + 1) % 7;
                }
            }
            None => bits |= 1 << day(part)?,
        }
    }
    Some(bits)
}

/// The hours `text` gives (`09:00-16:00`) in minutes after midnight: from before to, to at most `24:00`.
pub fn hours(text: &str) -> Option<(u16, u16)> {
    let minute = |clock: &str| {
        let (hour, minute) = clock.trim().split_once(':')?;
        if hour.len() != 2 || minute.len() != 2 {
            return None;
        }
        let (hour, minute): (u16, u16) = (hour.parse().ok()?, minute.parse().ok()?);
        (minute < 60 && (hour < 24 || (hour == 24 && minute == 0))).then_some(hour * 60 + minute)
    };
    let (from, to) = text.split_once('-')?;
    let (from, to) = (minute(from)?, minute(to)?);
    (from < to).then_some((from, to))
}

/// `minutes` after midnight as a clock (`09:00`).
pub fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// [`Window::days`] as written, shortest: `mon-fri`, `sat,sun`, `daily`.
pub fn days_text(bits: u8) -> String {
    if bits & 0x7f == 0x7f {
        return "daily".to_owned();
    }
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for at in (0..7).filter(|at| bits & (1 << at) != 0) {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == at => *last = at,
            _ => runs.push((at, at)),
        }
    }
    let run = |(first, last): (usize, usize)| match last - first {
        0 => DAYS[first].to_owned(),
        1 => format!("{},{}", DAYS[first], DAYS[last]),
        _ => format!("{}-{}", DAYS[first], DAYS[last]),
    };
    runs.into_iter().map(run).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_as_names_ranges_and_lists_and_written_back_shortest() {
        assert_eq!(days("mon-fri"), Some(0b001_1111));
        assert_eq!(days("sat,sun"), Some(0b110_0000));
        assert_eq!(days("Mon-Wed, Fri"), Some(0b001_0111));
        assert_eq!(days("fri-mon"), Some(0b111_0001));
        assert_eq!(days("daily"), Some(0x7f));
        for wrong in ["", "monday", "mon-", "mon;tue", "8"] {
            assert_eq!(days(wrong), None, "{wrong}");
        }
        assert_eq!(days_text(0b001_1111), "mon-fri");
        assert_eq!(days_text(0b110_0000), "sat,sun");
        assert_eq!(days_text(0b001_0111), "mon-wed,fri");
        assert_eq!(days_text(0x7f), "daily");
    }

    #[test]
    fn hours_run_from_before_to_within_one_day() {
        assert_eq!(hours("09:00-16:00"), Some((540, 960)));
        assert_eq!(hours("00:00-24:00"), Some((0, 1440)));
        for wrong in ["25:00-26:00", "16:00-09:00", "09:00-09:00", "9:00-16:00", "09:60-10:00", "24:30-24:45", "09:00"]
        {
            assert_eq!(hours(wrong), None, "{wrong}");
        }
        assert_eq!(clock(540), "09:00");
    }
}
