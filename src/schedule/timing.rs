//! Schedule math, free of I/O and of the clock: parsing cron expressions, intervals, time
//! zones and active-hours windows, and working out a job's next slot from a given `now`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};

use super::ScheduleError;

/// How many times the next-slot search may jump to the next active-hours window before it
/// gives up (a schedule that never falls inside its window).
const WINDOW_JUMPS: usize = 1000;

const WEEKDAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// When a job fires: a cron expression, or a fixed interval.
#[derive(Debug, Clone)]
pub enum Cadence {
    Cron(CronExpression),
    Every(Duration),
}

/// A parsed cron expression, keeping the text as the user wrote it.
#[derive(Debug, Clone)]
pub struct CronExpression {
    pub source: String,
    schedule: Box<::cron::Schedule>,
}

impl CronExpression {
    /// Standard cron: five fields (minute hour day-of-month month day-of-week), or six with a
    /// leading seconds field (seven with a trailing year), or `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@yearly`. Day-of-week numbers are 0-7 with 0 and 7 both Sunday; names work
    /// too. When both day fields are restricted, both must match.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let source = text.trim().to_string();
        if source.is_empty() {
            return Err(ScheduleError::new("the cron expression is empty"));
        }
        let translated = if source.starts_with('@') {
            source.clone()
        } else {
            let mut fields: Vec<String> = source.split_whitespace().map(str::to_string).collect();
            match fields.len() {
                5 => fields.insert(0, "0".to_string()),
                6 | 7 => {}
                count => {
                    return Err(ScheduleError::new(format!(
                        "`{source}` has {count} fields; expected 5 (minute hour day month \
                         weekday), or 6 with a leading seconds field"
                    )));
                }
            }
            fields[5] = standard_weekdays(&fields[5]).map_err(|message| {
                ScheduleError::new(format!("`{source}`: day of week: {message}"))
            })?;
            fields.join(" ")
        };
        let schedule = ::cron::Schedule::from_str(&translated).map_err(|error| {
            ScheduleError::new(format!(
                "`{source}` is not a valid cron expression: {error}"
            ))
        })?;
        Ok(Self {
            source,
            schedule: Box::new(schedule),
        })
    }

    /// The first slot strictly after `after`, in `zone`.
    fn after<Z: TimeZone>(&self, zone: &Z, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(zone))
            .next()
            .map(|slot| slot.with_timezone(&Utc))
    }
}

/// Rewrites a standard day-of-week field (0-7, 0 and 7 Sunday) as day names, which the cron
/// crate reads unambiguously (its own numbers start at 1 for Sunday).
fn standard_weekdays(field: &str) -> Result<String, ScheduleError> {
    if field == "*" || field == "?" || !field.chars().any(|character| character.is_ascii_digit()) {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for token in field.split(',') {
        let (range, step) = match token.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| ScheduleError::new(format!("`{step}` is not a step")))?;
                if step == 0 {
                    return Err(ScheduleError::new("a step must be at least 1"));
                }
                (range, step)
            }
            None => (token, 1),
        };
        let number = |text: &str| -> Result<u32, ScheduleError> {
            match text.parse::<u32>() {
                Ok(value) if value <= 7 => Ok(value),
                _ => Err(ScheduleError::new(format!(
                    "`{text}` is not a day of the week (0-7, or a name such as Mon)"
                ))),
            }
        };
        let (first, last) = match range.split_once('-') {
            _ if range == "*" => (0, 6),
            Some((first, last)) => (number(first)?, number(last)?),
            None if token.contains('/') => (number(range)?, 6),
            None => {
                let day = number(range)?;
                (day, day)
            }
        };
        if first > last {
            return Err(ScheduleError::new(format!(
                "the range `{range}` runs backwards"
            )));
        }
        for day in (first..=last).step_by(step as usize) {
            days[(day % 7) as usize] = true;
        }
    }
    Ok(WEEKDAY_NAMES
        .iter()
        .zip(days)
        .filter(|(_, chosen)| *chosen)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(","))
}

impl Cadence {
    pub fn describe(&self) -> String {
        match self {
            Cadence::Cron(expression) => format!("cron `{}`", expression.source),
            Cadence::Every(interval) => format!("every {}", format_duration(*interval)),
        }
    }
}

/// Reads `30s`, `15m`, `2h`, `1d` or a sum such as `1h30m`. Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let trimmed = text.trim();
    let invalid = || {
        ScheduleError::new(format!(
            "`{trimmed}` is not a duration; write a number and a unit (s, m, h, d), e.g. 30s, 15m, 2h or 1h30m"
        ))
    };
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for character in trimmed.chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let unit = match character {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let value: u64 = digits.parse().map_err(|_| invalid())?;
        digits.clear();
        total = value
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(invalid)?;
    }
    if !digits.is_empty() {
        return Err(invalid());
    }
    if total == 0 {
        return Err(ScheduleError::new(format!(
            "`{trimmed}` is zero; a duration must be at least 1s"
        )));
    }
    Ok(Duration::from_secs(total))
}

/// `90` seconds as `1m30s`.
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".to_string();
    }
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    text
}

/// The time zone a job's schedule and active hours are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Named(chrono_tz::Tz),
    /// The machine's local zone (when neither the job, the agent nor the defaults name one).
    Local,
}

impl Zone {
    /// An IANA zone name such as `Europe/Berlin` or `UTC`.
    pub fn parse(name: &str) -> Result<Self, ScheduleError> {
        name.trim()
            .parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| {
                ScheduleError::new(format!(
                    "`{name}` is not a time zone; use an IANA name such as Europe/Berlin or UTC"
                ))
            })
    }

    pub fn name(&self) -> String {
        match self {
            Zone::Named(zone) => zone.name().to_string(),
            Zone::Local => "local".to_string(),
        }
    }

    /// The wall-clock time of `instant` in this zone.
    pub fn local_time(&self, instant: DateTime<Utc>) -> NaiveTime {
        match self {
            Zone::Named(zone) => instant.with_timezone(zone).time(),
            Zone::Local => instant.with_timezone(&chrono::Local).time(),
        }
    }

    fn cron_after(
        &self,
        expression: &CronExpression,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Zone::Named(zone) => expression.after(zone, after),
            Zone::Local => expression.after(&chrono::Local, after),
        }
    }

    /// The first instant after `after` at which the wall clock reads `time`.
    fn next_wall_time(&self, time: NaiveTime, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Zone::Named(zone) => next_wall_time(zone, time, after),
            Zone::Local => next_wall_time(&chrono::Local, time, after),
        }
    }
}

fn next_wall_time<Z: TimeZone>(
    zone: &Z,
    time: NaiveTime,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut date = after.with_timezone(zone).date_naive();
    for _ in 0..3 {
        let wall = date.and_time(time);
        // In a daylight-saving gap the wall time does not exist; the window opens when the
        // clocks have gone forward.
        let instant = zone
            .from_local_datetime(&wall)
            .earliest()
            .or_else(|| {
                zone.from_local_datetime(&(wall + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|instant| instant.with_timezone(&Utc));
        if let Some(instant) = instant.filter(|instant| *instant > after) {
            return Some(instant);
        }
        date = date.succ_opt()?;
    }
    None
}

/// A daily window of wall-clock time, `HH:MM-HH:MM`; it wraps past midnight when it ends
/// before it starts (`22:00-06:00`). The start is inside, the end is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl ActiveHours {
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let invalid = || {
            ScheduleError::new(format!(
                "`{text}` is not a window; write HH:MM-HH:MM, e.g. 09:00-17:30 or 22:00-06:00"
            ))
        };
        let (start, end) = text.trim().split_once('-').ok_or_else(invalid)?;
        let time =
            |part: &str| NaiveTime::parse_from_str(part.trim(), "%H:%M").map_err(|_| invalid());
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(ScheduleError::new(format!(
                "`{text}` starts and ends at the same time; leave active_hours out to run at any hour"
            )));
        }
        Ok(Self { start, end })
    }

    pub fn contains(&self, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }
}

impl std::fmt::Display for ActiveHours {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// Everything that decides when a job fires.
#[derive(Debug, Clone)]
pub struct Timing {
    pub cadence: Cadence,
    pub zone: Zone,
    pub active_hours: Option<ActiveHours>,
}

impl Timing {
    /// The first slot strictly after `now`, inside the active hours. An interval keeps the
    /// grid of `previous` (the last slot) when there is one. `None` when the schedule never
    /// falls inside its window.
    pub fn next_slot(
        &self,
        previous: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut candidate = match &self.cadence {
            Cadence::Every(interval) => {
                let step = chrono::Duration::from_std(*interval).ok()?;
                match previous.filter(|previous| *previous <= now) {
                    Some(previous) => {
                        let elapsed = (now - previous).num_milliseconds();
                        let steps = elapsed / step.num_milliseconds().max(1) + 1;
                        previous + step * i32::try_from(steps).ok()?
                    }
                    None => now + step,
                }
            }
            Cadence::Cron(expression) => self.zone.cron_after(expression, now)?,
        };
        let Some(active) = self.active_hours else {
            return Some(candidate);
        };
        for _ in 0..WINDOW_JUMPS {
            if active.contains(self.zone.local_time(candidate)) {
                return Some(candidate);
            }
            let opening = self.zone.next_wall_time(active.start, candidate)?;
            candidate = match &self.cadence {
                Cadence::Every(_) => opening,
                Cadence::Cron(expression) => self
                    .zone
                    .cron_after(expression, opening - chrono::Duration::milliseconds(1))?,
            };
        }
        None
    }
}

/// What to do about a job's persisted next slot at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The slot is still ahead.
    Wait,
    /// The slot has come (or was missed by less than the grace window): run it.
    Run,
    /// The slot was missed by more than the grace window (the daemon was down): skip it.
    Missed,
}

pub fn due(slot: DateTime<Utc>, now: DateTime<Utc>, grace: Duration) -> Due {
    if slot > now {
        return Due::Wait;
    }
    let late = (now - slot).to_std().unwrap_or_default();
    if late <= grace { Due::Run } else { Due::Missed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("timestamp")
            .with_timezone(&Utc)
    }

    fn timing(cadence: Cadence, zone: &str, active: Option<&str>) -> Timing {
        Timing {
            cadence,
            zone: Zone::parse(zone).expect("zone"),
            active_hours: active.map(|text| ActiveHours::parse(text).expect("window")),
        }
    }

    fn cron(text: &str) -> Cadence {
        Cadence::Cron(CronExpression::parse(text).expect("expression"))
    }

    fn every(text: &str) -> Cadence {
        Cadence::Every(parse_duration(text).expect("duration"))
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 1d "), Ok(Duration::from_secs(86_400)));
        for bad in ["", "30", "m", "5x", "0s", "-5m", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn weekdays_follow_standard_cron_numbering() {
        assert_eq!(standard_weekdays("1-5"), Ok("Mon,Tue,Wed,Thu,Fri".into()));
        assert_eq!(standard_weekdays("0"), Ok("Sun".into()));
        assert_eq!(standard_weekdays("7"), Ok("Sun".into()));
        assert_eq!(standard_weekdays("5-7"), Ok("Sun,Fri,Sat".into()));
        assert_eq!(standard_weekdays("*/2"), Ok("Sun,Tue,Thu,Sat".into()));
        assert_eq!(standard_weekdays("MON-FRI"), Ok("MON-FRI".into()));
        assert!(standard_weekdays("8").is_err());
        assert!(standard_weekdays("5-1").is_err());
    }

    #[test]
    fn cron_expressions_accept_five_or_six_fields() {
        assert!(CronExpression::parse("*/5 * * * *").is_ok());
        assert!(CronExpression::parse("0 */5 * * * *").is_ok());
        assert!(CronExpression::parse("@daily").is_ok());
        let error = CronExpression::parse("* * *")
            .expect_err("three fields")
            .to_string();
        assert!(error.contains("3 fields"), "{error}");
        let error = CronExpression::parse("61 * * * *")
            .expect_err("bad minute")
            .to_string();
        assert!(error.contains("61 * * * *"), "{error}");
    }

    #[test]
    fn a_weekday_cron_fires_on_the_next_weekday_in_its_zone() {
        // Friday 2026-03-06 18:00 UTC is 19:00 in Berlin; "0 9 * * 1-5" next fires on Monday
        // at 09:00 Berlin, 08:00 UTC.
        let timing = timing(cron("0 9 * * 1-5"), "Europe/Berlin", None);
        let next = timing.next_slot(None, utc("2026-03-06T18:00:00Z"));
        assert_eq!(next, Some(utc("2026-03-09T08:00:00Z")));
        // The same expression in New York is five hours behind UTC in March (before DST).
        let timing = super::Timing {
            zone: Zone::parse("America/New_York").expect("zone"),
            ..timing
        };
        let next = timing.next_slot(None, utc("2026-03-06T18:00:00Z"));
        assert_eq!(next, Some(utc("2026-03-09T13:00:00Z")));
    }

    #[test]
    fn a_daily_cron_keeps_its_wall_clock_time_across_daylight_saving() {
        let timing = timing(cron("30 8 * * *"), "Europe/Berlin", None);
        // Before the change on 2026-03-29, 08:30 Berlin is 07:30 UTC; after it, 06:30 UTC.
        assert_eq!(
            timing.next_slot(None, utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T06:30:00Z"))
        );
        assert_eq!(
            timing.next_slot(None, utc("2026-03-27T12:00:00Z")),
            Some(utc("2026-03-28T07:30:00Z"))
        );
    }

    #[test]
    fn intervals_keep_their_grid_and_skip_missed_slots() {
        let timing = timing(every("15m"), "UTC", None);
        let now = utc("2026-01-01T10:07:00Z");
        assert_eq!(
            timing.next_slot(None, now),
            Some(utc("2026-01-01T10:22:00Z"))
        );
        let previous = Some(utc("2026-01-01T10:00:00Z"));
        assert_eq!(
            timing.next_slot(previous, now),
            Some(utc("2026-01-01T10:15:00Z"))
        );
        // Down for an hour: the next slot is the first on the grid after now.
        let late = utc("2026-01-01T11:05:00Z");
        assert_eq!(
            timing.next_slot(previous, late),
            Some(utc("2026-01-01T11:15:00Z"))
        );
        // Exactly on a slot: the next one, never the same one again.
        let on_slot = utc("2026-01-01T10:15:00Z");
        assert_eq!(
            timing.next_slot(previous, on_slot),
            Some(utc("2026-01-01T10:30:00Z"))
        );
    }

    #[test]
    fn active_hours_wrap_past_midnight() {
        let night = ActiveHours::parse("22:00-06:00").expect("window");
        let at = |text: &str| NaiveTime::parse_from_str(text, "%H:%M").expect("time");
        assert!(night.contains(at("22:00")));
        assert!(night.contains(at("23:59")));
        assert!(night.contains(at("00:00")));
        assert!(night.contains(at("05:59")));
        assert!(!night.contains(at("06:00")));
        assert!(!night.contains(at("12:00")));
        let day = ActiveHours::parse("09:00-17:30").expect("window");
        assert!(day.contains(at("09:00")) && day.contains(at("17:29")));
        assert!(!day.contains(at("17:30")) && !day.contains(at("08:59")));
        assert!(ActiveHours::parse("9-17").is_err());
        assert!(ActiveHours::parse("10:00-10:00").is_err());
        assert_eq!(night.to_string(), "22:00-06:00");
    }

    #[test]
    fn intervals_outside_active_hours_wait_for_the_window_in_the_jobs_zone() {
        // Every 30 minutes between 22:00 and 06:00 Tokyo time (UTC+9).
        let timing = timing(every("30m"), "Asia/Tokyo", Some("22:00-06:00"));
        // 05:50 Tokyo (20:50 UTC): 06:20 is outside, so the next is 22:00 Tokyo = 13:00 UTC.
        let previous = utc("2026-01-01T20:50:00Z");
        assert_eq!(
            timing.next_slot(Some(previous), previous),
            Some(utc("2026-01-02T13:00:00Z"))
        );
        // Inside the window, across midnight: 23:50 Tokyo -> 00:20 Tokyo.
        let previous = utc("2026-01-01T14:50:00Z");
        assert_eq!(
            timing.next_slot(Some(previous), previous),
            Some(utc("2026-01-01T15:20:00Z"))
        );
    }

    #[test]
    fn cron_slots_outside_active_hours_are_skipped() {
        // Hourly on the hour, only 09:00-12:00 in UTC.
        let hourly = timing(cron("0 * * * *"), "UTC", Some("09:00-12:00"));
        assert_eq!(
            hourly.next_slot(None, utc("2026-01-01T11:30:00Z")),
            Some(utc("2026-01-02T09:00:00Z"))
        );
        assert_eq!(
            hourly.next_slot(None, utc("2026-01-01T09:10:00Z")),
            Some(utc("2026-01-01T10:00:00Z"))
        );
        // A schedule that never meets its window has no next slot.
        let never = timing(cron("0 3 * * *"), "UTC", Some("09:00-17:00"));
        assert_eq!(never.next_slot(None, utc("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn missed_slots_run_within_the_grace_window_and_are_skipped_after_it() {
        let slot = utc("2026-01-01T10:00:00Z");
        let grace = Duration::from_secs(300);
        assert_eq!(due(slot, utc("2026-01-01T09:59:59Z"), grace), Due::Wait);
        assert_eq!(due(slot, slot, grace), Due::Run);
        assert_eq!(due(slot, utc("2026-01-01T10:05:00Z"), grace), Due::Run);
        assert_eq!(due(slot, utc("2026-01-01T10:05:01Z"), grace), Due::Missed);
    }
}
