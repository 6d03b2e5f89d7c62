//! EventBridge schedule expressions (`rate(5 minutes)`, `cron(0 3 ? * MON *)`) and the schedules
//! of a process that fires them itself (`slipway serve`), evaluated in UTC as EventBridge does.
//! Pure: the time is passed in.

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime, Time, Weekday};

use super::ScheduleError;

/// An EventBridge schedule expression, evaluated in UTC as EventBridge does:
/// `rate(5 minutes)`, `rate(1 day)`, `cron(0 3 ? * MON *)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpr {
    Rate(Duration),
    Cron(Box<Cron>),
}

impl fmt::Display for ScheduleExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleExpr::Rate(d) => write!(f, "rate({}s)", d.whole_seconds()),
            ScheduleExpr::Cron(c) => write!(f, "cron({})", c.source),
        }
    }
}

impl ScheduleExpr {
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let bad = |reason: &str| ScheduleError::Expression {
            expression: expression.to_string(),
            reason: reason.to_string(),
        };
        let e = expression.trim();
        if let Some(inner) = e.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
            parse_rate(inner).map(ScheduleExpr::Rate).map_err(bad)
        } else if let Some(inner) = e.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
            Cron::parse(inner)
                .map(|c| ScheduleExpr::Cron(Box::new(c)))
                .map_err(|r| bad(&r))
        } else {
            Err(bad("must be `rate(...)` or `cron(...)`"))
        }
    }

    /// The first firing strictly after `after`. A rate fires every interval after the previous
    /// firing; a cron expression at the next matching minute. `None`: never again (a cron
    /// expression whose years are all past).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        match self {
            ScheduleExpr::Rate(d) => Some(after + *d),
            ScheduleExpr::Cron(c) => c.next_after(after),
        }
    }

    /// Whether a schedule that last fired at `last` is due at `now` (`slipway serve` passes the
    /// time it started as `last` for a schedule that never fired, as EventBridge counts a rate
    /// from the rule's creation).
    pub fn due(&self, last: OffsetDateTime, now: OffsetDateTime) -> bool {
        self.next_after(last).is_some_and(|next| next <= now)
    }
}

fn parse_rate(inner: &str) -> Result<Duration, &'static str> {
    let mut parts = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("rate must be `rate(<value> <unit>)`");
    };
    let value: i64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0 && *v <= 1_000_000)
        .ok_or("rate value must be a positive whole number")?;
    // EventBridge wants the singular for 1 and the plural otherwise; so does slipway, so that an
    // expression accepted by `slipway serve` also deploys.
    let (singular, plural, seconds) = match unit {
        "minute" | "minutes" => ("minute", "minutes", 60),
        "hour" | "hours" => ("hour", "hours", 3600),
        "day" | "days" => ("day", "days", 86_400),
        _ => return Err("rate unit must be minute(s), hour(s) or day(s)"),
    };
    if (value == 1 && unit != singular) || (value != 1 && unit != plural) {
        return Err("rate unit must be singular for 1 and plural otherwise");
    }
    Ok(Duration::seconds(value * seconds))
}

/// A parsed `cron(minutes hours day-of-month month day-of-week year)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u64,
    months: u64,
    dom: DayOfMonth,
    dow: DayOfWeek,
    /// Bit `y - 1970` for each allowed year (EventBridge allows 1970 to 2199).
    years: [u64; 4],
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfMonth {
    /// `?`: the day of week decides.
    Unspecified,
    Days(u64),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday of the month.
    LastWeekday,
    /// `nW`: the weekday nearest to day n, within the month.
    NearestWeekday(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfWeek {
    Unspecified,
    /// Bit 1 (Sunday) to 7 (Saturday).
    Days(u64),
    /// `nL`: the last such weekday of the month.
    Last(u8),
    /// `n#k`: the k-th such weekday of the month.
    Nth(u8, u8),
}

const YEAR_MIN: i32 = 1970;
const YEAR_MAX: i32 = 2199;
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Values of one plain field (`*`, `a`, `a-b`, `*/n`, `a/n`, `a-b/n`, comma lists) as a list.
fn field_values(
    spec: &str,
    min: u32,
    max: u32,
    names: &[&str],
    what: &str,
) -> Result<Vec<u32>, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(min + i as u32);
        }
        s.parse::<u32>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| format!("{what} values must be {min} to {max}"))
    };
    let mut out = Vec::new();
    for item in spec.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step = s
                    .parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what} step must be a positive number"))?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            // `a/n` runs from a to the end of the field.
            (v, if item.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("{what} range must run from low to high"));
        }
        out.extend((lo..=hi).step_by(step as usize));
    }
    Ok(out)
}

fn bits(values: &[u32]) -> u64 {
    values.iter().fold(0, |acc, v| acc | (1u64 << v))
}

impl Cron {
    fn parse(inner: &str) -> Result<Self, String> {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [min, hour, dom, month, dow, year] = fields[..] else {
            return Err(
                "cron needs six fields: minutes hours day-of-month month day-of-week year".into(),
            );
        };
        let minutes = bits(&field_values(min, 0, 59, &[], "minute")?);
        let hours = bits(&field_values(hour, 0, 23, &[], "hour")?);
        let months = bits(&field_values(month, 1, 12, &MONTH_NAMES, "month")?);
        let mut years = [0u64; 4];
        for y in field_values(year, YEAR_MIN as u32, YEAR_MAX as u32, &[], "year")? {
            let i = (y - YEAR_MIN as u32) as usize;
            years[i / 64] |= 1 << (i % 64);
        }
        if (dom == "?") == (dow == "?") {
            return Err("exactly one of day-of-month and day-of-week must be `?`".into());
        }
        let dom = match dom {
            "?" => DayOfMonth::Unspecified,
            "L" => DayOfMonth::Last,
            "LW" => DayOfMonth::LastWeekday,
            d if d.ends_with('W') => {
                let n = d[..d.len() - 1]
                    .parse::<u8>()
                    .ok()
                    .filter(|n| (1..=31).contains(n))
                    .ok_or("`nW` needs a day of month 1 to 31")?;
                DayOfMonth::NearestWeekday(n)
            }
            d => DayOfMonth::Days(bits(&field_values(d, 1, 31, &[], "day-of-month")?)),
        };
        let weekday = |s: &str| -> Result<u8, String> {
            field_values(s, 1, 7, &DAY_NAMES, "day-of-week").and_then(|v| match v[..] {
                [d] => Ok(d as u8),
                _ => Err("`L` and `#` take a single day of week".into()),
            })
        };
        let dow = match dow {
            "?" => DayOfWeek::Unspecified,
            "L" => DayOfWeek::Days(1 << 7),
            d if d.ends_with('L') => DayOfWeek::Last(weekday(&d[..d.len() - 1])?),
            d if d.contains('#') => {
                let (day, nth) = d.split_once('#').expect("checked");
                let nth = nth
                    .parse::<u8>()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or("`#` needs an instance 1 to 5")?;
                DayOfWeek::Nth(weekday(day)?, nth)
            }
            d => DayOfWeek::Days(bits(&field_values(d, 1, 7, &DAY_NAMES, "day-of-week")?)),
        };
        Ok(Cron {
            source: inner.split_whitespace().collect::<Vec<_>>().join(" "),
            minutes,
            hours,
            months,
            dom,
            dow,
            years,
        })
    }

    fn year_allowed(&self, year: i32) -> bool {
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
            return false;
        }
        let i = (year - YEAR_MIN) as usize;
        self.years[i / 64] & (1 << (i % 64)) != 0
    }

    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << u8::from(date.month())) == 0 {
            return false;
        }
        let last = date.month().length(date.year());
        let day = date.day();
        // 1 = Sunday, as EventBridge counts.
        let dow = date.weekday().number_days_from_sunday() + 1;
        let weekend = |d: Weekday| matches!(d, Weekday::Saturday | Weekday::Sunday);
        let dom_ok = match &self.dom {
            DayOfMonth::Unspecified => true,
            DayOfMonth::Days(b) => b & (1 << day) != 0,
            DayOfMonth::Last => day == last,
            DayOfMonth::LastWeekday => {
                !weekend(date.weekday())
                    && (day + 1..=last).all(|d| {
                        Date::from_calendar_date(date.year(), date.month(), d)
                            .is_ok_and(|x| weekend(x.weekday()))
                    })
            }
            DayOfMonth::NearestWeekday(n) => {
                nearest_weekday(date.year(), date.month(), (*n).min(last)) == Some(day)
            }
        };
        let dow_ok = match &self.dow {
            DayOfWeek::Unspecified => true,
            DayOfWeek::Days(b) => b & (1 << dow) != 0,
            DayOfWeek::Last(d) => dow == *d && day + 7 > last,
            DayOfWeek::Nth(d, n) => dow == *d && (day - 1) / 7 + 1 == *n,
        };
        dom_ok && dow_ok
    }

    fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        // Whole minutes: the first candidate is the minute after `after`.
        let start =
            after.replace_second(0).ok()?.replace_nanosecond(0).ok()? + Duration::minutes(1);
        let mut date = start.date();
        let mut from = (start.hour(), start.minute());
        while date.year() <= YEAR_MAX {
            if !self.year_allowed(date.year()) {
                date = Date::from_calendar_date(date.year() + 1, Month::January, 1).ok()?;
                from = (0, 0);
                continue;
            }
            if self.day_matches(date) {
                for h in from.0..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    let m0 = if h == from.0 { from.1 } else { 0 };
                    if let Some(m) = (m0..60).find(|m| self.minutes & (1 << m) != 0) {
                        let t = Time::from_hms(h, m, 0).ok()?;
                        return Some(date.with_time(t).assume_utc());
                    }
                }
            }
            date = date.next_day()?;
            from = (0, 0);
        }
        None
    }
}

/// The schedules of a process that fires them itself (`slipway serve`): which are due at `now`,
/// and when to wake up next. A schedule that missed several firings (the process was down)
/// fires once, as EventBridge does not backfill either.
#[derive(Debug, Clone)]
pub struct Schedules {
    started: OffsetDateTime,
    entries: std::collections::BTreeMap<String, (ScheduleExpr, OffsetDateTime)>,
}

impl Schedules {
    /// `started`: counts as the last firing of schedules that never fired.
    pub fn new(started: OffsetDateTime) -> Self {
        Self {
            started,
            entries: Default::default(),
        }
    }

    /// Adds (or replaces) a schedule; `last` is its last firing if one was recorded.
    pub fn add(&mut self, name: &str, expr: ScheduleExpr, last: Option<OffsetDateTime>) {
        self.entries
            .insert(name.to_string(), (expr, last.unwrap_or(self.started)));
    }

    /// The schedules due at `now`, by name; each is marked as fired at `now`.
    pub fn due(&mut self, now: OffsetDateTime) -> Vec<String> {
        let mut fired = Vec::new();
        for (name, (expr, last)) in self.entries.iter_mut() {
            if expr.due(*last, now) {
                *last = now;
                fired.push(name.clone());
            }
        }
        fired
    }

    /// The earliest next firing of any schedule.
    pub fn next_wakeup(&self) -> Option<OffsetDateTime> {
        self.entries
            .values()
            .filter_map(|(expr, last)| expr.next_after(*last))
            .min()
    }
}

/// The weekday nearest to `day` without leaving the month (Quartz's and EventBridge's `W`).
fn nearest_weekday(year: i32, month: Month, day: u8) -> Option<u8> {
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let last = month.length(year);
    Some(match date.weekday() {
        Weekday::Saturday if day == 1 => 3,
        Weekday::Saturday => day - 1,
        Weekday::Sunday if day == last => day - 2,
        Weekday::Sunday => day + 1,
        _ => day,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(expr: &str, after: OffsetDateTime) -> OffsetDateTime {
        ScheduleExpr::parse(expr)
            .unwrap()
            .next_after(after)
            .unwrap()
    }

    #[test]
    fn rates() {
        let t = datetime!(2026-11-25 13:36:10 UTC);
        assert_eq!(
            next("rate(5 minutes)", t),
            datetime!(2026-11-25 13:41:10 UTC)
        );
        assert_eq!(next("rate(1 day)", t), datetime!(2026-11-26 13:36:10 UTC));
        assert_eq!(next("rate(2 hours)", t), datetime!(2026-11-25 15:36:10 UTC));
        for bad in [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 days)",
            "rate(x days)",
            "rate(5 weeks)",
            "rate(5)",
        ] {
            let err = ScheduleExpr::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_schedule_expression", "{bad}");
        }
        let e = ScheduleExpr::parse("rate(10 minutes)").unwrap();
        assert!(!e.due(t, t + Duration::minutes(9)));
        assert!(e.due(t, t + Duration::minutes(10)));
    }

    #[test]
    fn crons() {
        // Wednesday 2026-11-25 13:36.
        let t = datetime!(2026-11-25 13:36:10 UTC);
        // Every Monday 03:00.
        assert_eq!(
            next("cron(0 3 ? * MON *)", t),
            datetime!(2026-11-30 03:00 UTC)
        );
        assert_eq!(
            next("cron(0 3 ? * 2 *)", t),
            datetime!(2026-11-30 03:00 UTC)
        );
        // Every 15 minutes.
        assert_eq!(
            next("cron(0/15 * * * ? *)", t),
            datetime!(2026-11-25 13:45 UTC)
        );
        assert_eq!(
            next("cron(*/15 * * * ? *)", t),
            datetime!(2026-11-25 13:45 UTC)
        );
        // Exactly on a matching minute: strictly after.
        assert_eq!(
            next("cron(45 13 * * ? *)", datetime!(2026-11-25 13:45 UTC)),
            datetime!(2026-11-26 13:45 UTC)
        );
        // Weekdays at 18:00, from Friday evening to Monday.
        assert_eq!(
            next("cron(0 18 ? * MON-FRI *)", datetime!(2026-11-27 18:00 UTC)),
            datetime!(2026-11-30 18:00 UTC)
        );
        // Last day of the month; February of a leap year.
        assert_eq!(
            next("cron(0 0 L * ? *)", t),
            datetime!(2026-11-30 00:00 UTC)
        );
        assert_eq!(
            next("cron(0 0 L * ? *)", datetime!(2028-02-01 00:00 UTC)),
            datetime!(2028-02-29 00:00 UTC)
        );
        // First day of the month, specific months by name.
        assert_eq!(
            next("cron(30 6 1 JAN,JUL ? *)", t),
            datetime!(2027-01-01 06:30 UTC)
        );
        // Second Tuesday, last Friday.
        assert_eq!(
            next("cron(0 9 ? * 3#2 *)", t),
            datetime!(2026-12-08 09:00 UTC)
        );
        assert_eq!(
            next("cron(0 9 ? * 6L *)", t),
            datetime!(2026-11-27 09:00 UTC)
        );
        // Nearest weekday to the 1st: 2026-08-01 is a Saturday, so Monday the 3rd.
        assert_eq!(
            next("cron(0 9 1W * ? *)", datetime!(2026-07-15 00:00 UTC)),
            datetime!(2026-08-03 09:00 UTC)
        );
        // Last weekday of January 2027 (the 31st is a Sunday).
        assert_eq!(
            next("cron(0 9 LW * ? *)", datetime!(2027-01-01 00:00 UTC)),
            datetime!(2027-01-29 09:00 UTC)
        );
        // Years.
        assert_eq!(
            next("cron(0 0 1 1 ? 2030)", t),
            datetime!(2030-01-01 00:00 UTC)
        );
        assert_eq!(
            ScheduleExpr::parse("cron(0 0 1 1 ? 2020)")
                .unwrap()
                .next_after(t),
            None
        );
        let weekly = ScheduleExpr::parse("cron(0 3 ? * MON *)").unwrap();
        assert!(!weekly.due(t, datetime!(2026-11-30 02:59 UTC)));
        assert!(weekly.due(t, datetime!(2026-11-30 03:00 UTC)));
    }

    #[test]
    fn schedules_fire_once_per_due_time() {
        let start = datetime!(2026-11-25 13:36:10 UTC);
        let mut s = Schedules::new(start);
        s.add(
            "quarter",
            ScheduleExpr::parse("cron(0/15 * * * ? *)").unwrap(),
            None,
        );
        s.add("daily", ScheduleExpr::parse("rate(1 day)").unwrap(), None);
        assert_eq!(s.next_wakeup(), Some(datetime!(2026-11-25 13:45 UTC)));
        assert!(s.due(datetime!(2026-11-25 13:44 UTC)).is_empty());
        assert_eq!(s.due(datetime!(2026-11-25 13:45 UTC)), vec!["quarter"]);
        assert!(s.due(datetime!(2026-11-25 13:46 UTC)).is_empty());
        // Down for two days: each fires once, not once per missed period.
        assert_eq!(
            s.due(datetime!(2026-11-27 20:00 UTC)),
            vec!["daily", "quarter"]
        );
        assert_eq!(s.next_wakeup(), Some(datetime!(2026-11-27 20:15 UTC)));
    }

    #[test]
    fn bad_crons() {
        for bad in [
            "cron(0 3 * * MON *)",
            "cron(0 3 ? * ? *)",
            "cron(0 3 * *)",
            "cron(60 3 ? * MON *)",
            "cron(0 24 ? * MON *)",
            "cron(0 3 32 * ? *)",
            "cron(0 3 ? 13 * *)",
            "cron(0 3 ? * 8 *)",
            "cron(0 3 ? * 2#6 *)",
            "cron(0 3 ? * MON 1969)",
            "cron(5-1 3 ? * MON *)",
            "cron(0/0 3 ? * MON *)",
            "cron(0 3 ? * MON-FRIL *)",
            "0 3 * * ?",
            "cron(0 3 ; * ? *)",
        ] {
            assert!(ScheduleExpr::parse(bad).is_err(), "{bad}");
        }
    }
}
