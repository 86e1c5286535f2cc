//! Appointments: a booked visit with a window, the technician's arrival and completion,
//! and the two failures that earn an apology and compensation without the customer asking:
//! a no-show, and a provider cancellation at short notice.
//!
//! Everything here is a pure function of what the caller recorded and the instant it
//! passes in. The app owns the store and the clock; it calls [`book`] (which checks and
//! refuses, changing nothing, a window in the past, too long, or on top of the same
//! technician's other booking or of a slot held for someone's rebooking), records each
//! transition the functions here return, and runs [`failure`] over appointments whose
//! window has ended.
//!
//! An appointment is never deleted: a cancellation is a status with the time and the
//! notice given, so an appointment can never silently vanish from the records.
//!
//! **Never twice.** [`failure`] depends only on what was recorded (never on when it runs):
//! a no-show's [`Failure::at`] is the end of the window plus the grace, a late
//! cancellation's is the time of the cancellation. The app keys the apology, the
//! compensation and the rebooking offer on [`Failure::key`] (reference and kind), so
//! detection run again, or after a crash, finds the same failure under the same key and
//! repeats nothing. Cancellation is refused once the window has ended and a no-show is only
//! detected after it has (the grace is never negative), so one appointment never has both.
//!
//! **Priority.** A failed appointment's customer is offered the earliest free slots
//! ([`offer`]), each held for them ([`Hold`]) until it lapses. [`book`] refuses a booking
//! that overlaps a live hold of the same technician unless it is the rebooking the hold is
//! for (`rebooked_from` names the failed appointment), and [`earliest_slots`] never offers
//! a held slot to anyone else.
//!
//! Instants are kept to the second: windows must be whole seconds and transitions record
//! `now` cut to the second, as the policy engine counts (`notice_minutes` in the facts).

use crate::book::{FieldError, parse_id};
use crate::id::CustomerId;
use crate::interval::Interval;
use crate::policy::facts::{Event, EventKind, Outcome, Party};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest appointment window. A customer cannot be asked to wait in for a whole day; a
/// longer window is a typo (a date for an hour) more often than a promise.
pub const WINDOW_HOURS_MAX: i64 = 12;
/// How far ahead a visit may be booked: a year's typo would otherwise hold a technician.
pub const BOOK_AHEAD_DAYS_MAX: i64 = 366;
/// How early before the window a technician's arrival is accepted. Earlier than that is
/// almost certainly an arrival recorded against the wrong appointment.
pub const ARRIVAL_EARLY_MAX: SignedDuration = SignedDuration::from_hours(1);
/// A provider cancellation with less notice than this before the window starts counts
/// as a missed appointment (Ofcom's automatic compensation scheme: 24 hours).
pub const LATE_CANCEL_NOTICE: SignedDuration = SignedDuration::from_hours(24);
/// Longest grace after the window before a visit without an arrival is a no-show.
pub const GRACE_HOURS_MAX: i64 = 24;
/// Most slots offered to a customer at once: enough to choose, few enough that held
/// slots do not starve everyone else.
pub const OFFER_SLOTS_MAX: usize = 5;
/// Longest a slot is held for a customer's rebooking.
pub const HOLD_HOURS_MAX: i64 = 7 * 24;
/// Every reference starts with this.
pub const REFERENCE_PREFIX: &str = "APT-";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppointmentError {
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("{field}: {value:?} is not an appointment reference (like APT-2858-5588)")]
    BadReference { field: &'static str, value: String },
    #[error("window: the end {end} is not after the start {start}")]
    WindowEmpty { start: Timestamp, end: Timestamp },
    #[error("window: {start} to {end} is longer than {WINDOW_HOURS_MAX} hours")]
    WindowTooLong { start: Timestamp, end: Timestamp },
    #[error("window.{field}: {value} is not a whole second")]
    NotWholeSecond { field: &'static str, value: Timestamp },
    #[error("window.start: {start} is not after now ({now})")]
    StartsInPast { start: Timestamp, now: Timestamp },
    #[error("window.start: {start} is more than {BOOK_AHEAD_DAYS_MAX} days after now ({now})")]
    TooFarAhead { start: Timestamp, now: Timestamp },
    #[error("rebooked_from: {reference} cannot be the rebooking of itself")]
    RebookedFromItself { reference: String },
    #[error("window: overlaps the same technician's appointment {reference} ({window})")]
    Overlaps { reference: String, window: Window },
    #[error("window: overlaps {window}, held until {until} for the rebooking of {for_reference}")]
    Held { for_reference: String, window: Window, until: Timestamp },
    #[error("appointment {reference}: cannot {action}: it is {status}")]
    IllegalTransition { reference: String, action: Action, status: AppointmentStatus },
    #[error(
        "appointment {reference}: an arrival at {now} is more than an hour before the window starts \
         (the earliest is {earliest})"
    )]
    ArrivalTooEarly { reference: String, now: Timestamp, earliest: Timestamp },
    #[error("appointment {reference}: completion at {now} is before the arrival at {arrived_at}")]
    CompletedBeforeArrival { reference: String, now: Timestamp, arrived_at: Timestamp },
    #[error("appointment {reference}: cannot {action}: the window ended at {end} (now {now})")]
    WindowOver { reference: String, action: Action, end: Timestamp, now: Timestamp },
    #[error("appointment {reference}: not a no-show before {due} (now {now})")]
    NotYetDue { reference: String, due: Timestamp, now: Timestamp },
    #[error("grace: {value} is outside 0 to {GRACE_HOURS_MAX} hours")]
    Grace { value: SignedDuration },
}

/// A visit's window, `[start, end)` in UTC: never empty, at most [`WINDOW_HOURS_MAX`]
/// long, to the second. Checked once by [`Window::new`] (and when read from JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "WindowWire", into = "WindowWire")]
pub struct Window {
    start: Timestamp,
    end: Timestamp,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowWire {
    start: Timestamp,
    end: Timestamp,
}

impl TryFrom<WindowWire> for Window {
    type Error = AppointmentError;
    fn try_from(w: WindowWire) -> Result<Window, AppointmentError> {
        Window::new(w.start, w.end)
    }
}

impl From<Window> for WindowWire {
    fn from(w: Window) -> WindowWire {
        WindowWire { start: w.start, end: w.end }
    }
}

impl Window {
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Window, AppointmentError> {
        for (field, value) in [("start", start), ("end", end)] {
            if value.subsec_nanosecond() != 0 {
                return Err(AppointmentError::NotWholeSecond { field, value });
            }
        }
        if end <= start {
            return Err(AppointmentError::WindowEmpty { start, end });
        }
        if end.duration_since(start) > SignedDuration::from_hours(WINDOW_HOURS_MAX) {
            return Err(AppointmentError::WindowTooLong { start, end });
        }
        Ok(Window { start, end })
    }

    pub fn start(&self) -> Timestamp {
        self.start
    }

    pub fn end(&self) -> Timestamp {
        self.end
    }

    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }

    /// Half-open: a window ending at 12:00 and one starting at 12:00 do not overlap, so a
    /// technician can be booked back to back.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The window as the policy engine's interval.
    pub fn interval(&self) -> Interval {
        Interval::new(self.start, self.end).expect("a window is never empty")
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.start, self.end)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Arrived,
    Completed,
    CancelledByCustomer,
    CancelledByProvider,
    /// No arrival by the end of the window plus the grace: a no-show, recorded.
    Missed,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 6] = [
        AppointmentStatus::Booked,
        AppointmentStatus::Arrived,
        AppointmentStatus::Completed,
        AppointmentStatus::CancelledByCustomer,
        AppointmentStatus::CancelledByProvider,
        AppointmentStatus::Missed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Arrived => "arrived",
            AppointmentStatus::Completed => "completed",
            AppointmentStatus::CancelledByCustomer => "cancelled_by_customer",
            AppointmentStatus::CancelledByProvider => "cancelled_by_provider",
            AppointmentStatus::Missed => "missed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Booked or under way: the technician's time is taken.
    pub fn is_live(self) -> bool {
        matches!(self, AppointmentStatus::Booked | AppointmentStatus::Arrived)
    }
}

impl fmt::Display for AppointmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a refused transition tried to do, for its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Arrive,
    Complete,
    CancelByCustomer,
    CancelByProvider,
    RecordNoShow,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Arrive => "record an arrival",
            Action::Complete => "record a completion",
            Action::CancelByCustomer => "cancel for the customer",
            Action::CancelByProvider => "cancel for the provider",
            Action::RecordNoShow => "record a no-show",
        })
    }
}

/// A request to book: checked by [`check_booking`], turned into an [`Appointment`] by
/// [`book`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Booking {
    /// From [`reference`]: the caller allocates the sequence number (see there).
    pub reference: String,
    pub customer_id: CustomerId,
    /// `None`: booked into a pool without a named technician; such a booking is not
    /// checked for overlaps or holds (the pool's capacity is the caller's).
    #[serde(default)]
    pub technician_id: Option<String>,
    pub window: Window,
    /// The failed appointment this one replaces; it may take the slots held for it.
    #[serde(default)]
    pub rebooked_from: Option<String>,
}

/// A booked visit and everything that happened to it. Built by [`book`] and changed only
/// through the transitions below, each of which returns the new state or an error naming
/// the reference and the current status (and leaves `self` as it was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub reference: String,
    pub customer_id: CustomerId,
    pub technician_id: Option<String>,
    pub window: Window,
    pub status: AppointmentStatus,
    pub booked_at: Timestamp,
    pub arrived_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    /// For a cancellation: the window's start minus the time of the cancellation
    /// (negative when cancelled after the window started).
    pub cancel_notice: Option<SignedDuration>,
    /// For a no-show: the end of the window plus the grace, never the time it was noticed.
    pub missed_at: Option<Timestamp>,
    pub rebooked_from: Option<String>,
}

fn to_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `t + d`, saturating at the ends of time rather than panicking on a stored oddity.
fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() { Timestamp::MIN } else { Timestamp::MAX })
}

/// Checks a booking against `now`, the same technician's other appointments (`others`:
/// any of them, in any status; only live ones with the same technician count) and the
/// held slots (`holds`: lapsed ones and other technicians' are ignored). Every refusal is
/// an error; nothing is changed either way.
pub fn check_booking(
    booking: &Booking,
    now: Timestamp,
    others: &[Appointment],
    holds: &[Hold],
) -> Result<(), AppointmentError> {
    parse_reference("reference", &booking.reference)?;
    parse_id("customer_id", &booking.customer_id)?;
    if let Some(t) = &booking.technician_id {
        parse_id("technician_id", t)?;
    }
    if let Some(from) = &booking.rebooked_from {
        parse_reference("rebooked_from", from)?;
        if *from == booking.reference {
            return Err(AppointmentError::RebookedFromItself { reference: from.clone() });
        }
    }
    let window = booking.window;
    if window.start <= now {
        return Err(AppointmentError::StartsInPast { start: window.start, now });
    }
    if window.start.duration_since(now) > SignedDuration::from_hours(24 * BOOK_AHEAD_DAYS_MAX) {
        return Err(AppointmentError::TooFarAhead { start: window.start, now });
    }
    let Some(technician) = booking.technician_id.as_deref() else { return Ok(()) };
    let clash = others
        .iter()
        .filter(|a| {
            a.status.is_live()
                && a.technician_id.as_deref() == Some(technician)
                && a.reference != booking.reference
                && a.window.overlaps(&window)
        })
        .min_by(|a, b| (a.window, &a.reference).cmp(&(b.window, &b.reference)));
    if let Some(a) = clash {
        return Err(AppointmentError::Overlaps { reference: a.reference.clone(), window: a.window });
    }
    let held = holds
        .iter()
        .filter(|h| {
            h.is_live(now)
                && h.slot.technician_id == technician
                && h.slot.window.overlaps(&window)
                && booking.rebooked_from.as_deref() != Some(h.for_reference.as_str())
        })
        .min_by(|a, b| (a.slot.window, &a.for_reference).cmp(&(b.slot.window, &b.for_reference)));
    if let Some(h) = held {
        return Err(AppointmentError::Held {
            for_reference: h.for_reference.clone(),
            window: h.slot.window,
            until: h.until,
        });
    }
    Ok(())
}

/// Books: [`check_booking`], then the new appointment, booked at `now` (to the second).
pub fn book(
    booking: Booking,
    now: Timestamp,
    others: &[Appointment],
    holds: &[Hold],
) -> Result<Appointment, AppointmentError> {
    check_booking(&booking, now, others, holds)?;
    Ok(Appointment {
        reference: booking.reference,
        customer_id: booking.customer_id,
        technician_id: booking.technician_id,
        window: booking.window,
        status: AppointmentStatus::Booked,
        booked_at: to_second(now),
        arrived_at: None,
        completed_at: None,
        cancelled_at: None,
        cancel_notice: None,
        missed_at: None,
        rebooked_from: booking.rebooked_from,
    })
}

impl Appointment {
    fn illegal(&self, action: Action) -> AppointmentError {
        AppointmentError::IllegalTransition { reference: self.reference.clone(), action, status: self.status }
    }

    fn require(&self, action: Action, from: AppointmentStatus) -> Result<(), AppointmentError> {
        if self.status == from { Ok(()) } else { Err(self.illegal(action)) }
    }

    /// The technician arrived at `now`. Only from `booked`, and not more than
    /// [`ARRIVAL_EARLY_MAX`] before the window. An arrival after the window (and its
    /// grace) is recorded, but [`failure`] still counts the visit as a no-show; once the
    /// no-show is recorded (`missed`) it is final, since the apology and the compensation
    /// have gone out.
    pub fn arrive(&self, now: Timestamp) -> Result<Appointment, AppointmentError> {
        self.require(Action::Arrive, AppointmentStatus::Booked)?;
        let now = to_second(now);
        let earliest = plus(self.window.start, -ARRIVAL_EARLY_MAX);
        if now < earliest {
            return Err(AppointmentError::ArrivalTooEarly {
                reference: self.reference.clone(),
                now,
                earliest,
            });
        }
        Ok(Appointment { status: AppointmentStatus::Arrived, arrived_at: Some(now), ..self.clone() })
    }

    /// The work was done at `now`. Only after an arrival.
    pub fn complete(&self, now: Timestamp) -> Result<Appointment, AppointmentError> {
        self.require(Action::Complete, AppointmentStatus::Arrived)?;
        let now = to_second(now);
        let arrived_at = self.arrived_at.ok_or_else(|| self.illegal(Action::Complete))?;
        if now < arrived_at {
            return Err(AppointmentError::CompletedBeforeArrival {
                reference: self.reference.clone(),
                now,
                arrived_at,
            });
        }
        Ok(Appointment { status: AppointmentStatus::Completed, completed_at: Some(now), ..self.clone() })
    }

    fn cancel(
        &self,
        now: Timestamp,
        action: Action,
        status: AppointmentStatus,
    ) -> Result<Appointment, AppointmentError> {
        self.require(action, AppointmentStatus::Booked)?;
        let now = to_second(now);
        if now >= self.window.end {
            return Err(AppointmentError::WindowOver {
                reference: self.reference.clone(),
                action,
                end: self.window.end,
                now,
            });
        }
        Ok(Appointment {
            status,
            cancelled_at: Some(now),
            cancel_notice: Some(self.window.start.duration_since(now)),
            ..self.clone()
        })
    }

    /// The customer cancelled at `now`: only while booked and before the window ends.
    pub fn cancel_by_customer(&self, now: Timestamp) -> Result<Appointment, AppointmentError> {
        self.cancel(now, Action::CancelByCustomer, AppointmentStatus::CancelledByCustomer)
    }

    /// The provider cancelled at `now`: only while booked and before the window ends (after
    /// that the visit was missed, not cancelled). Records the notice given; less than
    /// [`LATE_CANCEL_NOTICE`] is a failure (see [`Appointment::is_late_cancellation`]).
    pub fn cancel_by_provider(&self, now: Timestamp) -> Result<Appointment, AppointmentError> {
        self.cancel(now, Action::CancelByProvider, AppointmentStatus::CancelledByProvider)
    }

    /// Records the no-show [`failure`] found: only from `booked`, and only once the
    /// window and the grace are over. `missed_at` is the end of the window plus the grace,
    /// whenever this runs.
    pub fn record_no_show(&self, now: Timestamp, grace: Grace) -> Result<Appointment, AppointmentError> {
        self.require(Action::RecordNoShow, AppointmentStatus::Booked)?;
        let due = grace.due(&self.window);
        if now < due {
            return Err(AppointmentError::NotYetDue { reference: self.reference.clone(), due, now });
        }
        Ok(Appointment { status: AppointmentStatus::Missed, missed_at: Some(due), ..self.clone() })
    }

    /// Cancelled by the provider with less than [`LATE_CANCEL_NOTICE`] before the window.
    pub fn is_late_cancellation(&self) -> bool {
        self.status == AppointmentStatus::CancelledByProvider
            && self.cancel_notice.is_some_and(|n| n < LATE_CANCEL_NOTICE)
    }
}

/// How long after its window a visit without an arrival becomes a no-show: 0 to
/// [`GRACE_HOURS_MAX`] hours. Never negative, so no-shows are only detected once the
/// window is over, when a cancellation is no longer accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grace(SignedDuration);

impl Grace {
    /// Thirty minutes: a technician running a little late is not a no-show yet.
    pub const DEFAULT: Grace = Grace(SignedDuration::from_mins(30));

    pub fn new(value: SignedDuration) -> Result<Grace, AppointmentError> {
        if value.is_negative() || value > SignedDuration::from_hours(GRACE_HOURS_MAX) {
            return Err(AppointmentError::Grace { value });
        }
        Ok(Grace(value))
    }

    pub fn get(self) -> SignedDuration {
        self.0
    }

    /// The instant a visit in `window` without an arrival becomes a no-show.
    pub fn due(self, window: &Window) -> Timestamp {
        plus(window.end, self.0)
    }
}

impl Default for Grace {
    fn default() -> Grace {
        Grace::DEFAULT
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    NoShow,
    LateCancellation,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NoShow => "no_show",
            FailureKind::LateCancellation => "late_cancellation",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed appointment: what went wrong and when, both fixed by the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// A no-show: the end of the window plus the grace. A late cancellation: the time of
    /// the cancellation. Never the time it was detected.
    pub at: Timestamp,
}

impl Failure {
    /// The key of everything the failure causes (apology, compensation, offer):
    /// `<reference>/<kind>`. The same appointment always gives the same key.
    pub fn key(&self, reference: &str) -> String {
        format!("{reference}/{}", self.kind)
    }
}

/// The failure of `appointment` as of `now`, if any:
///
/// - a no-show once `now` reaches the end of the window plus `grace` with no arrival
///   before then (a recorded no-show, `missed`, always; an arrival at or after that
///   instant is too late and is still a no-show);
/// - a late cancellation: cancelled by the provider with less than
///   [`LATE_CANCEL_NOTICE`], from the moment it is recorded.
///
/// The result depends only on the record, `now` (only whether the no-show is due yet) and
/// `grace`: running it again finds the same failure with the same `at`.
pub fn failure(appointment: &Appointment, now: Timestamp, grace: Grace) -> Option<Failure> {
    let a = appointment;
    match a.status {
        AppointmentStatus::CancelledByCustomer => None,
        AppointmentStatus::CancelledByProvider => a
            .is_late_cancellation()
            .then_some(())
            .and(a.cancelled_at)
            .map(|at| Failure { kind: FailureKind::LateCancellation, at }),
        AppointmentStatus::Missed => Some(Failure {
            kind: FailureKind::NoShow,
            at: a.missed_at.unwrap_or_else(|| grace.due(&a.window)),
        }),
        AppointmentStatus::Booked | AppointmentStatus::Arrived | AppointmentStatus::Completed => {
            let due = grace.due(&a.window);
            (now >= due && a.arrived_at.is_none_or(|arrived| arrived >= due))
                .then_some(Failure { kind: FailureKind::NoShow, at: due })
        }
    }
}

/// The failure as an event of the policy facts (`kind = "appointment"`), for the
/// compensation policy: a no-show is outcome `no_show`; a late cancellation is outcome
/// `cancelled` by the `provider` at the cancellation's time, from which the policy
/// computes `notice_minutes` (the Ofcom policy pays when it is under 24 * 60). The event's
/// id is the appointment's reference.
pub fn policy_event(appointment: &Appointment, failure: &Failure) -> Event {
    let (outcome, cancelled) = match failure.kind {
        FailureKind::NoShow => (Outcome::NoShow, None),
        FailureKind::LateCancellation => (Outcome::Cancelled, Some((failure.at, Party::Provider))),
    };
    Event {
        id: appointment.reference.as_str().into(),
        what: EventKind::Appointment { window: appointment.window.interval(), outcome, cancelled },
        attributes: Arc::default(),
    }
}

/// One technician's free time that could be booked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub window: Window,
    pub technician_id: String,
}

/// A slot kept for the rebooking of a failed appointment until `until`: only the booking
/// whose `rebooked_from` is `for_reference` may take it meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub slot: Slot,
    pub for_reference: String,
    pub until: Timestamp,
}

impl Hold {
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.until
    }
}

/// The earliest `n` (at most [`OFFER_SLOTS_MAX`]) free slots that start after `now` and
/// overlap no live hold of their technician, sorted by start. Slots with the same window
/// (two technicians free at the same time) are offered once: the customer chooses a time,
/// not a technician.
pub fn earliest_slots(free: &[Slot], holds: &[Hold], now: Timestamp, n: usize) -> Vec<Slot> {
    let mut future: Vec<&Slot> = free
        .iter()
        .filter(|s| s.window.start > now)
        .filter(|s| {
            !holds.iter().any(|h| {
                h.is_live(now) && h.slot.technician_id == s.technician_id && h.slot.window.overlaps(&s.window)
            })
        })
        .collect();
    future.sort_unstable();
    future.dedup_by_key(|s| s.window);
    future.into_iter().take(n.min(OFFER_SLOTS_MAX)).cloned().collect()
}

/// The rebooking offer for a failed appointment: the [`earliest_slots`], each held for it
/// from `now` for `hold_for` (at most [`HOLD_HOURS_MAX`]) and never past the slot's start.
/// The app computes it once, when it records the failure, and keeps the holds and the
/// offer notice under the failure's key; re-running finds them recorded.
pub fn offer(
    failed: &Appointment,
    free: &[Slot],
    holds: &[Hold],
    now: Timestamp,
    n: usize,
    hold_for: SignedDuration,
) -> Vec<Hold> {
    let hold_for = hold_for.clamp(SignedDuration::ZERO, SignedDuration::from_hours(HOLD_HOURS_MAX));
    let until = plus(to_second(now), hold_for);
    earliest_slots(free, holds, now, n)
        .into_iter()
        .map(|slot| Hold {
            until: until.min(slot.window.start),
            slot,
            for_reference: failed.reference.clone(),
        })
        .collect()
}

/// Most days ahead [`free_slots`] looks for a free slot.
pub const OFFER_DAYS_MAX: u32 = 62;
/// Most windows in a working day.
pub const PATTERN_WINDOWS_MAX: usize = 24;

/// When technicians can be booked: the same windows of local time on the same weekdays,
/// in the provider's zone. Checked by [`WorkingPattern::new`]: each window is a valid
/// [`Window`] on any day (so at most [`WINDOW_HOURS_MAX`] long and not empty), and there
/// is at least one window and one weekday.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkingPattern {
    zone: jiff::tz::TimeZone,
    weekdays: Vec<jiff::civil::Weekday>,
    windows: Vec<(jiff::civil::Time, jiff::civil::Time)>,
}

impl WorkingPattern {
    pub fn new(
        zone: jiff::tz::TimeZone,
        mut weekdays: Vec<jiff::civil::Weekday>,
        mut windows: Vec<(jiff::civil::Time, jiff::civil::Time)>,
    ) -> Result<WorkingPattern, String> {
        if weekdays.is_empty() {
            return Err("weekdays: at least one day is needed".into());
        }
        if windows.is_empty() || windows.len() > PATTERN_WINDOWS_MAX {
            return Err(format!("windows: give 1 to {PATTERN_WINDOWS_MAX} windows"));
        }
        for (start, end) in &windows {
            if end <= start || start.subsec_nanosecond() != 0 || end.subsec_nanosecond() != 0 {
                return Err(format!(
                    "windows: {start}-{end} is not a window of whole seconds within one day"
                ));
            }
            if start.duration_until(*end) > SignedDuration::from_hours(WINDOW_HOURS_MAX) {
                return Err(format!("windows: {start}-{end} is longer than {WINDOW_HOURS_MAX} hours"));
            }
        }
        weekdays.sort_by_key(|d| d.to_monday_zero_offset());
        weekdays.dedup();
        windows.sort();
        windows.dedup();
        Ok(WorkingPattern { zone, weekdays, windows })
    }

    /// The pattern's windows on `date`, in order; none on a day off. A window whose local
    /// times do not exist or repeat (a clock change) is resolved as jiff's `compatible`
    /// does: later for a gap, earlier for a fold.
    fn windows_on(&self, date: jiff::civil::Date) -> Vec<Window> {
        if !self.weekdays.contains(&date.weekday()) {
            return Vec::new();
        }
        self.windows
            .iter()
            .filter_map(|(start, end)| {
                let at = |t: jiff::civil::Time| date.to_datetime(t).to_zoned(self.zone.clone()).ok();
                Window::new(at(*start)?.timestamp(), at(*end)?.timestamp()).ok()
            })
            .collect()
    }
}

/// The free slots of `technicians` after `now`, earliest first, from the working pattern
/// over the next `days` days (at most [`OFFER_DAYS_MAX`]), leaving out any window that
/// overlaps a live appointment of the same technician (`booked`: any status; only booked
/// and arrived ones count) or a live hold. Stops after `n` distinct windows (at most
/// [`OFFER_SLOTS_MAX`]): what [`offer`] needs, without building every slot of a large
/// team for two months.
pub fn free_slots(
    pattern: &WorkingPattern,
    technicians: &[String],
    booked: &[Appointment],
    holds: &[Hold],
    now: Timestamp,
    days: u32,
    n: usize,
) -> Vec<Slot> {
    let n = n.min(OFFER_SLOTS_MAX);
    let today = now.to_zoned(pattern.zone.clone()).date();
    let busy = |technician: &str, window: &Window| {
        booked.iter().any(|a| {
            a.status.is_live() && a.technician_id.as_deref() == Some(technician) && a.window.overlaps(window)
        }) || holds
            .iter()
            .any(|h| h.is_live(now) && h.slot.technician_id == technician && h.slot.window.overlaps(window))
    };
    let mut slots: Vec<Slot> = Vec::new();
    let mut windows_found = 0;
    for day in 0..days.min(OFFER_DAYS_MAX) {
        let Ok(date) = today.checked_add(jiff::Span::new().days(i64::from(day))) else { break };
        for window in pattern.windows_on(date).into_iter().filter(|w| w.start > now) {
            let free: Vec<Slot> = technicians
                .iter()
                .filter(|t| !busy(t, &window))
                .map(|t| Slot { window, technician_id: t.clone() })
                .collect();
            if !free.is_empty() {
                slots.extend(free);
                windows_found += 1;
                if windows_found >= n {
                    return slots;
                }
            }
        }
    }
    slots
}

/// The reference of the booking numbered `sequence`: `APT-` then the number, scrambled,
/// with a check digit, in groups of four (`APT-2858-5588` for 1; see [`crate::reference`]).
///
/// The caller allocates the number, from the store's sequence in the transaction that
/// writes the booking: the core has no store and no randomness, a reference derived from
/// the customer alone could not tell two of their bookings apart, and a number from the
/// store is unique by construction. The check digit lets [`parse_reference`] refuse a
/// mistyped reference rather than find someone else's appointment.
pub fn reference(sequence: u64) -> String {
    crate::reference::format(REFERENCE_PREFIX, sequence)
}

/// The sequence number of a reference made by [`reference`] (or of the earlier form,
/// `APT-00000013`); refuses anything else, including a reference with a wrong check digit.
pub fn parse_reference(field: &'static str, s: &str) -> Result<u64, AppointmentError> {
    crate::reference::parse(REFERENCE_PREFIX, s)
        .ok_or_else(|| AppointmentError::BadReference { field, value: s.chars().take(40).collect() })
}

/// The words of a calendar event, in the customer's language (the app's templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarText<'a> {
    /// In `PRODID`.
    pub provider_name: &'a str,
    /// The right-hand side of the event's `UID` (`<reference>@<uid_domain>`): a domain
    /// the provider owns, so the UID is globally unique.
    pub uid_domain: &'a str,
    pub summary: &'a str,
    pub description: Option<&'a str>,
    pub location: Option<&'a str>,
}

/// The words of a visit's calendar event in one shipped language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarWords {
    /// What the event is, before its reference: "technician visit".
    pub visit: &'static str,
    pub description: &'static str,
}

/// The calendar words for `locale`'s language (a BCP 47 tag), English for a language
/// without shipped templates, as its notices are.
pub fn calendar_words(locale: &str) -> CalendarWords {
    match locale.split(['-', '_']).next().unwrap_or_default() {
        "es" => CalendarWords {
            visit: "visita del técnico",
            description: "Su referencia está en el título: indíquela si necesita cambiar la visita.",
        },
        "fr" => CalendarWords {
            visit: "passage du technicien",
            description: "Votre référence est dans le titre : rappelez-la pour modifier le rendez-vous.",
        },
        "de" => CalendarWords {
            visit: "Technikertermin",
            description: "Ihre Referenz steht im Titel: Nennen Sie sie, wenn Sie den Termin ändern möchten.",
        },
        "pt" => CalendarWords {
            visit: "visita do técnico",
            description: "Sua referência está no título: informe-a se precisar mudar a visita.",
        },
        _ => CalendarWords {
            visit: "technician visit",
            description: "Your reference is in the title: give it if you need to change the visit.",
        },
    }
}

/// The longest line of an iCalendar file, in octets, before folding (RFC 5545 3.1).
const ICS_LINE_OCTETS_MAX: usize = 75;

/// The appointment as an RFC 5545 iCalendar file with one event, for the confirmation
/// email's `.ics` attachment (`text/calendar; charset=utf-8`).
///
/// The `UID` is the reference at `uid_domain`, so a later copy (a cancellation) updates
/// the same event in the customer's calendar. It is deterministic: the same appointment
/// always gives the same bytes. `DTSTAMP` is when the appointment was booked, or for a
/// cancellation when it was cancelled; `SEQUENCE` is 0, or 1 with `STATUS:CANCELLED` for a
/// cancellation (a rescheduled visit is a new appointment with its own reference, so an
/// event is never revised more than once). Instants are in UTC (`YYYYMMDDTHHMMSSZ`). Text
/// is escaped (`\\`, `\;`, `\,`, `\n`; other control characters dropped), lines end in
/// CRLF and are folded at 75 octets, never inside a UTF-8 character.
///
/// The file has no `METHOD`: it is a calendar to import, not an iTIP invitation that would
/// need an organizer and attendees.
pub fn ics(appointment: &Appointment, text: &CalendarText<'_>) -> String {
    let a = appointment;
    let cancelled =
        matches!(a.status, AppointmentStatus::CancelledByCustomer | AppointmentStatus::CancelledByProvider);
    let stamp = if cancelled { a.cancelled_at.unwrap_or(a.booked_at) } else { a.booked_at };
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        fold_into(&mut out, &format!("{name}:{value}"));
    };
    line("BEGIN", "VCALENDAR");
    line("VERSION", "2.0");
    line("PRODID", &format!("-//{}//amends//EN", escape_text(text.provider_name)));
    line("CALSCALE", "GREGORIAN");
    line("BEGIN", "VEVENT");
    line("UID", &escape_text(&format!("{}@{}", a.reference, text.uid_domain)));
    line("DTSTAMP", &ics_instant(stamp));
    line("DTSTART", &ics_instant(a.window.start));
    line("DTEND", &ics_instant(a.window.end));
    line("SEQUENCE", if cancelled { "1" } else { "0" });
    line("STATUS", if cancelled { "CANCELLED" } else { "CONFIRMED" });
    line("SUMMARY", &escape_text(text.summary));
    if let Some(d) = text.description {
        line("DESCRIPTION", &escape_text(d));
    }
    if let Some(l) = text.location {
        line("LOCATION", &escape_text(l));
    }
    line("TRANSP", "OPAQUE");
    line("END", "VEVENT");
    line("END", "VCALENDAR");
    out
}

/// An instant as an RFC 5545 UTC date-time: `20250710T080000Z`.
fn ics_instant(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// RFC 5545 TEXT escaping: backslash, semicolon and comma get a backslash; a line break
/// (CRLF, LF or CR) becomes `\n`; other control characters, which TEXT may not hold, are
/// dropped.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` and CRLF, folded: no physical line is longer than 75 octets, each
/// continuation starts with one space (which counts), and a character is never split.
fn fold_into(out: &mut String, line: &str) {
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > ICS_LINE_OCTETS_MAX {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CustomerFacts, Facts, Policy, PricePoint, evaluate};
    use jiff::civil::Date;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    const OFCOM: &str = include_str!("../../../policies/uk-ofcom-automatic-compensation.toml");

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(start: &str, end: &str) -> Window {
        Window::new(ts(start), ts(end)).unwrap()
    }

    const NOW: &str = "2025-06-09T09:00:00Z";

    fn booking(seq: u64, tech: Option<&str>, start: &str, end: &str) -> Booking {
        Booking {
            reference: reference(seq),
            customer_id: "C1".into(),
            technician_id: tech.map(str::to_string),
            window: window(start, end),
            rebooked_from: None,
        }
    }

    /// Booked at NOW for 2025-06-10 08:00-12:00 with technician T1.
    fn booked() -> Appointment {
        book(booking(1, Some("T1"), "2025-06-10T08:00:00Z", "2025-06-10T12:00:00Z"), ts(NOW), &[], &[])
            .unwrap()
    }

    fn grace(mins: i64) -> Grace {
        Grace::new(SignedDuration::from_mins(mins)).unwrap()
    }

    fn london_pattern() -> WorkingPattern {
        use jiff::civil::{Weekday, time};
        WorkingPattern::new(
            TimeZone::get("Europe/London").unwrap(),
            vec![Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday],
            vec![(time(8, 0, 0, 0), time(12, 0, 0, 0)), (time(12, 0, 0, 0), time(16, 0, 0, 0))],
        )
        .unwrap()
    }

    #[test]
    fn free_slots_follow_the_pattern_in_local_time_and_skip_what_is_taken() {
        let techs = vec!["T1".to_string(), "T2".to_string()];
        // Monday 9 June 2025, 09:00 UTC (10:00 BST): the 08:00 window has started.
        let taken = booked(); // T1, Tuesday 08:00-12:00 UTC
        let hold = Hold {
            slot: Slot {
                window: window("2025-06-10T11:00:00Z", "2025-06-10T15:00:00Z"),
                technician_id: "T2".into(),
            },
            for_reference: reference(9),
            until: ts("2025-06-11T00:00:00Z"),
        };
        let slots = free_slots(&london_pattern(), &techs, &[taken], &[hold], ts(NOW), 14, 3);
        let shown: Vec<(String, &str)> =
            slots.iter().map(|s| (s.window.to_string(), s.technician_id.as_str())).collect();
        // BST: 12:00-16:00 local is 11:00-15:00 UTC.
        assert_eq!(
            shown,
            [
                ("2025-06-09T11:00:00Z to 2025-06-09T15:00:00Z".to_string(), "T1"),
                ("2025-06-09T11:00:00Z to 2025-06-09T15:00:00Z".to_string(), "T2"),
                // Tuesday 07:00-11:00 UTC: T1 is booked 08:00-12:00; T2 free.
                ("2025-06-10T07:00:00Z to 2025-06-10T11:00:00Z".to_string(), "T2"),
                // Tuesday 11:00-15:00 UTC: T1 busy until 12:00, T2 held for someone else.
                ("2025-06-11T07:00:00Z to 2025-06-11T11:00:00Z".to_string(), "T1"),
                ("2025-06-11T07:00:00Z to 2025-06-11T11:00:00Z".to_string(), "T2"),
            ]
        );
        // Weekends are off: from Friday evening the next slot is Monday's.
        let friday_evening = ts("2025-06-13T18:00:00Z");
        let next = free_slots(&london_pattern(), &techs, &[], &[], friday_evening, 14, 1);
        assert_eq!(next[0].window.start(), ts("2025-06-16T07:00:00Z"));
        // Nothing within the days looked at, nothing at all.
        assert!(free_slots(&london_pattern(), &techs, &[], &[], friday_evening, 2, 5).is_empty());
        assert!(free_slots(&london_pattern(), &[], &[], &[], ts(NOW), 14, 5).is_empty());
    }

    #[test]
    fn a_working_pattern_refuses_what_cannot_be_a_window() {
        use jiff::civil::{Weekday, time};
        let zone = TimeZone::UTC;
        let days = vec![Weekday::Monday];
        let bad = |w: Vec<(jiff::civil::Time, jiff::civil::Time)>, d: Vec<Weekday>| {
            WorkingPattern::new(zone.clone(), d, w).unwrap_err()
        };
        assert!(bad(vec![], days.clone()).starts_with("windows:"));
        assert!(bad(vec![(time(8, 0, 0, 0), time(8, 0, 0, 0))], days.clone()).contains("whole seconds"));
        assert!(bad(vec![(time(6, 0, 0, 0), time(18, 0, 1, 0))], days.clone()).contains("longer than 12"));
        assert!(bad(vec![(time(8, 0, 0, 0), time(9, 0, 0, 0))], vec![]).starts_with("weekdays:"));
        assert!(WorkingPattern::new(zone, days, vec![(time(6, 0, 0, 0), time(18, 0, 0, 0))]).is_ok());
    }

    #[test]
    fn windows_are_non_empty_bounded_and_whole_seconds() {
        let e = |s: &str, e: &str| Window::new(ts(s), ts(e)).unwrap_err();
        assert!(matches!(
            e("2025-06-10T08:00:00Z", "2025-06-10T08:00:00Z"),
            AppointmentError::WindowEmpty { .. }
        ));
        assert!(matches!(
            e("2025-06-10T08:00:00Z", "2025-06-10T07:00:00Z"),
            AppointmentError::WindowEmpty { .. }
        ));
        assert!(matches!(
            e("2025-06-10T08:00:00Z", "2025-06-10T20:00:01Z"),
            AppointmentError::WindowTooLong { .. }
        ));
        assert!(Window::new(ts("2025-06-10T08:00:00Z"), ts("2025-06-10T20:00:00Z")).is_ok());
        assert_eq!(
            e("2025-06-10T08:00:00.5Z", "2025-06-10T09:00:00Z").to_string(),
            "window.start: 2025-06-10T08:00:00.5Z is not a whole second"
        );
        assert_eq!(
            e("2025-06-10T08:00:00Z", "2025-06-10T07:00:00Z").to_string(),
            "window: the end 2025-06-10T07:00:00Z is not after the start 2025-06-10T08:00:00Z"
        );
        // JSON goes through the same check.
        let bad: Result<Window, _> =
            serde_json::from_str(r#"{"start": "2025-06-10T08:00:00Z", "end": "2025-06-10T08:00:00Z"}"#);
        assert!(bad.unwrap_err().to_string().contains("is not after the start"));
        let w = window("2025-06-10T08:00:00Z", "2025-06-10T12:00:00Z");
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, r#"{"start":"2025-06-10T08:00:00Z","end":"2025-06-10T12:00:00Z"}"#);
        assert_eq!(serde_json::from_str::<Window>(&json).unwrap(), w);
    }

    #[test]
    fn touching_windows_do_not_overlap() {
        let check = |a: (&str, &str), b: (&str, &str), expected: bool| {
            let (a, b) = (window(a.0, a.1), window(b.0, b.1));
            assert_eq!(a.overlaps(&b), expected, "{a} / {b}");
            assert_eq!(b.overlaps(&a), expected, "{b} / {a}");
        };
        let am = ("2025-06-10T08:00:00Z", "2025-06-10T12:00:00Z");
        check(am, ("2025-06-10T12:00:00Z", "2025-06-10T16:00:00Z"), false);
        check(am, ("2025-06-10T04:00:00Z", "2025-06-10T08:00:00Z"), false);
        check(am, ("2025-06-10T11:59:59Z", "2025-06-10T16:00:00Z"), true);
        check(am, ("2025-06-10T09:00:00Z", "2025-06-10T10:00:00Z"), true);
        check(am, am, true);
    }

    #[test]
    fn booking_refuses_the_past_and_the_far_future() {
        let now = ts(NOW);
        let at = |start: &str, end: &str| check_booking(&booking(1, None, start, end), now, &[], &[]);
        assert_eq!(
            at("2025-06-09T09:00:00Z", "2025-06-09T10:00:00Z"),
            Err(AppointmentError::StartsInPast { start: now, now })
        );
        assert!(matches!(
            at("2025-06-09T08:00:00Z", "2025-06-09T10:00:00Z"),
            Err(AppointmentError::StartsInPast { .. })
        ));
        assert_eq!(at("2025-06-09T09:00:01Z", "2025-06-09T10:00:00Z"), Ok(()));
        assert_eq!(at("2026-06-10T09:00:00Z", "2026-06-10T10:00:00Z"), Ok(()));
        assert!(matches!(
            at("2026-06-10T09:00:01Z", "2026-06-10T10:00:00Z"),
            Err(AppointmentError::TooFarAhead { .. })
        ));
        assert_eq!(
            at("2025-06-09T08:00:00Z", "2025-06-09T10:00:00Z").unwrap_err().to_string(),
            "window.start: 2025-06-09T08:00:00Z is not after now (2025-06-09T09:00:00Z)"
        );
    }

    #[test]
    fn booking_checks_its_identifiers() {
        let now = ts(NOW);
        let mut b = booking(1, Some("T1"), "2025-06-10T08:00:00Z", "2025-06-10T12:00:00Z");
        b.reference = "APT-00000011".into();
        assert_eq!(
            check_booking(&b, now, &[], &[]).unwrap_err().to_string(),
            "reference: \"APT-00000011\" is not an appointment reference (like APT-2858-5588)"
        );
        let mut b = booking(1, Some("T1"), "2025-06-10T08:00:00Z", "2025-06-10T12:00:00Z");
        b.customer_id = Default::default();
        assert!(check_booking(&b, now, &[], &[]).unwrap_err().to_string().starts_with("customer_id"));
        let mut b = booking(1, Some(" T1"), "2025-06-10T08:00:00Z", "2025-06-10T12:00:00Z");
        assert!(check_booking(&b, now, &[], &[]).unwrap_err().to_string().starts_with("technician_id"));
        b.technician_id = Some("T1".into());
        b.rebooked_from = Some(b.reference.clone());
        assert!(matches!(check_booking(&b, now, &[], &[]), Err(AppointmentError::RebookedFromItself { .. })));
        b.rebooked_from = Some("nope".into());
        assert!(matches!(
            check_booking(&b, now, &[], &[]),
            Err(AppointmentError::BadReference { field: "rebooked_from", .. })
        ));
    }

    #[test]
    fn booking_refuses_an_overlap_with_the_same_technician_s_live_appointment() {
        let now = ts(NOW);
        let first = booked();
        let second = |tech: Option<&str>, start: &str, end: &str| {
            check_booking(&booking(2, tech, start, end), now, std::slice::from_ref(&first), &[])
        };
        assert_eq!(
            second(Some("T1"), "2025-06-10T11:00:00Z", "2025-06-10T13:00:00Z"),
            Err(AppointmentError::Overlaps { reference: first.reference.clone(), window: first.window })
        );
        assert_eq!(
            second(Some("T1"), "2025-06-10T11:00:00Z", "2025-06-10T13:00:00Z").unwrap_err().to_string(),
            "window: overlaps the same technician's appointment APT-2858-5588 \
             (2025-06-10T08:00:00Z to 2025-06-10T12:00:00Z)"
        );
        // Back to back, another technician, or no technician: fine.
        assert_eq!(second(Some("T1"), "2025-06-10T12:00:00Z", "2025-06-10T13:00:00Z"), Ok(()));
        assert_eq!(second(Some("T1"), "2025-06-10T07:00:00Z", "2025-06-10T08:00:00Z"), Ok(()));
        assert_eq!(second(Some("T2"), "2025-06-10T11:00:00Z", "2025-06-10T13:00:00Z"), Ok(()));
        assert_eq!(second(None, "2025-06-10T11:00:00Z", "2025-06-10T13:00:00Z"), Ok(()));
        // A cancelled appointment frees its window.
        let cancelled = first.cancel_by_customer(now).unwrap();
        let b = booking(2, Some("T1"), "2025-06-10T11:00:00Z", "2025-06-10T13:00:00Z");
        assert_eq!(check_booking(&b, now, &[cancelled], &[]), Ok(()));
        // An arrived one does not.
        let arrived = first.arrive(ts("2025-06-10T08:10:00Z")).unwrap();
        assert!(check_booking(&b, now, &[arrived], &[]).is_err());
    }

    #[test]
    fn a_hold_keeps_its_slot_for_the_rebooking_alone() {
        let now = ts(NOW);
        let failed = reference(9);
        let hold = Hold {
            slot: Slot {
                window: window("2025-06-11T08:00:00Z", "2025-06-11T12:00:00Z"),
                technician_id: "T1".into(),
            },
            for_reference: failed.clone(),
            until: ts("2025-06-10T09:00:00Z"),
        };
        let mut b = booking(2, Some("T1"), "2025-06-11T10:00:00Z", "2025-06-11T11:00:00Z");
        let holds = std::slice::from_ref(&hold);
        assert_eq!(
            check_booking(&b, now, &[], holds),
            Err(AppointmentError::Held {
                for_reference: failed.clone(),
                window: hold.slot.window,
                until: hold.until
            })
        );
        // The rebooking takes it.
        b.rebooked_from = Some(failed.clone());
        assert_eq!(check_booking(&b, now, &[], holds), Ok(()));
        // Another failed appointment's rebooking does not.
        b.rebooked_from = Some(reference(10));
        assert!(check_booking(&b, now, &[], holds).is_err());
        // A lapsed hold holds nothing, nor does one of another technician.
        b.rebooked_from = None;
        assert_eq!(check_booking(&b, ts("2025-06-10T09:00:00Z"), &[], holds), Ok(()));
        assert!(check_booking(&b, ts("2025-06-10T08:59:59Z"), &[], holds).is_err());
        b.technician_id = Some("T2".into());
        assert_eq!(check_booking(&b, now, &[], holds), Ok(()));
    }

    #[test]
    fn book_records_a_booked_appointment_at_the_second() {
        let b = booking(1, Some("T1"), "2025-06-10T08:00:00Z", "2025-06-10T12:00:00Z");
        let a = book(b.clone(), ts("2025-06-09T09:00:00.75Z"), &[], &[]).unwrap();
        assert_eq!(a.status, AppointmentStatus::Booked);
        assert_eq!(a.booked_at, ts("2025-06-09T09:00:00Z"));
        assert_eq!((a.reference.as_str(), a.window), (b.reference.as_str(), b.window));
        assert!(a.arrived_at.is_none() && a.cancelled_at.is_none() && a.missed_at.is_none());
    }

    #[test]
    fn arrival_and_completion() {
        let a = booked();
        assert_eq!(
            a.arrive(ts("2025-06-10T06:59:59Z")),
            Err(AppointmentError::ArrivalTooEarly {
                reference: a.reference.clone(),
                now: ts("2025-06-10T06:59:59Z"),
                earliest: ts("2025-06-10T07:00:00Z"),
            })
        );
        let arrived = a.arrive(ts("2025-06-10T07:00:00Z")).unwrap();
        assert_eq!(
            (arrived.status, arrived.arrived_at),
            (AppointmentStatus::Arrived, Some(ts("2025-06-10T07:00:00Z")))
        );
        assert_eq!(
            arrived.arrive(ts("2025-06-10T08:00:00Z")).unwrap_err().to_string(),
            "appointment APT-2858-5588: cannot record an arrival: it is arrived"
        );
        assert_eq!(
            a.complete(ts("2025-06-10T09:00:00Z")).unwrap_err().to_string(),
            "appointment APT-2858-5588: cannot record a completion: it is booked"
        );
        assert!(matches!(
            arrived.complete(ts("2025-06-10T06:59:00Z")),
            Err(AppointmentError::CompletedBeforeArrival { .. })
        ));
        let done = arrived.complete(ts("2025-06-10T09:30:00Z")).unwrap();
        assert_eq!(
            (done.status, done.completed_at),
            (AppointmentStatus::Completed, Some(ts("2025-06-10T09:30:00Z")))
        );
        for bad in [done.arrive(ts("2025-06-10T09:31:00Z")), done.complete(ts("2025-06-10T09:31:00Z"))] {
            assert!(matches!(
                bad,
                Err(AppointmentError::IllegalTransition { status: AppointmentStatus::Completed, .. })
            ));
        }
        assert!(done.cancel_by_provider(ts("2025-06-10T09:31:00Z")).is_err());
        assert!(arrived.cancel_by_customer(ts("2025-06-10T07:30:00Z")).is_err());
    }

    #[test]
    fn cancellations_record_the_notice_and_only_from_booked() {
        let a = booked();
        let c = a.cancel_by_customer(ts("2025-06-10T07:00:00Z")).unwrap();
        assert_eq!(c.status, AppointmentStatus::CancelledByCustomer);
        assert_eq!(c.cancel_notice, Some(SignedDuration::from_hours(1)));
        assert!(!c.is_late_cancellation());
        let p = a.cancel_by_provider(ts("2025-06-10T09:00:00Z")).unwrap();
        assert_eq!(p.cancel_notice, Some(SignedDuration::from_hours(-1)));
        assert!(p.is_late_cancellation());
        for (again, action) in [
            (p.cancel_by_customer(ts("2025-06-10T09:00:00Z")), Action::CancelByCustomer),
            (p.cancel_by_provider(ts("2025-06-10T09:00:00Z")), Action::CancelByProvider),
            (c.arrive(ts("2025-06-10T09:00:00Z")), Action::Arrive),
            (c.record_no_show(ts("2025-06-11T09:00:00Z"), Grace::DEFAULT), Action::RecordNoShow),
        ] {
            assert!(
                matches!(again, Err(AppointmentError::IllegalTransition { action: a, .. }) if a == action),
                "{action}"
            );
        }
        // Not once the window has ended: that visit was missed, not cancelled.
        assert_eq!(
            a.cancel_by_provider(ts("2025-06-10T12:00:00Z")),
            Err(AppointmentError::WindowOver {
                reference: a.reference.clone(),
                action: Action::CancelByProvider,
                end: ts("2025-06-10T12:00:00Z"),
                now: ts("2025-06-10T12:00:00Z"),
            })
        );
        assert!(a.cancel_by_customer(ts("2025-06-10T12:00:00Z")).is_err());
        assert!(a.cancel_by_provider(ts("2025-06-10T11:59:59Z")).is_ok());
    }

    #[test]
    fn late_cancellation_is_less_than_24_hours_notice() {
        let a = booked(); // window starts 2025-06-10T08:00:00Z
        let check = |at: &str, late: bool| {
            let p = a.cancel_by_provider(ts(at)).unwrap();
            assert_eq!(p.is_late_cancellation(), late, "{at}");
            let f = failure(&p, ts("2025-06-12T00:00:00Z"), Grace::DEFAULT);
            assert_eq!(
                f,
                late.then_some(Failure { kind: FailureKind::LateCancellation, at: ts(at) }),
                "{at}"
            );
            // By the customer, never.
            let c = a.cancel_by_customer(ts(at)).unwrap();
            assert_eq!(failure(&c, ts("2025-06-12T00:00:00Z"), Grace::DEFAULT), None);
        };
        check("2025-06-09T08:01:00Z", true); // 23 h 59 min
        check("2025-06-09T08:00:01Z", true); // 23 h 59 min 59 s
        check("2025-06-09T08:00:00Z", false); // 24 h 00 min
        check("2025-06-09T07:59:00Z", false);
        // Detected at once, whatever now is.
        let p = a.cancel_by_provider(ts("2025-06-10T06:00:00Z")).unwrap();
        assert!(failure(&p, ts("2025-06-10T06:00:00Z"), Grace::DEFAULT).is_some());
    }

    #[test]
    fn a_no_show_is_due_exactly_at_the_end_of_the_window_plus_the_grace() {
        let a = booked(); // window ends 2025-06-10T12:00:00Z
        let g = grace(30);
        let due = ts("2025-06-10T12:30:00Z");
        assert_eq!(failure(&a, ts("2025-06-10T12:29:59Z"), g), None);
        let f = failure(&a, due, g).unwrap();
        assert_eq!(f, Failure { kind: FailureKind::NoShow, at: due });
        // Later runs find the very same failure: same key, same instant.
        for later in ["2025-06-10T12:30:01Z", "2025-06-11T00:00:00Z", "2026-01-01T00:00:00Z"] {
            assert_eq!(failure(&a, ts(later), g), Some(f));
        }
        assert_eq!(f.key(&a.reference), "APT-2858-5588/no_show");
        // Recording it does not change it either.
        assert_eq!(
            a.record_no_show(ts("2025-06-10T12:29:59Z"), g),
            Err(AppointmentError::NotYetDue {
                reference: a.reference.clone(),
                due,
                now: ts("2025-06-10T12:29:59Z")
            })
        );
        let missed = a.record_no_show(ts("2025-06-10T18:00:00Z"), g).unwrap();
        assert_eq!((missed.status, missed.missed_at), (AppointmentStatus::Missed, Some(due)));
        assert_eq!(failure(&missed, ts("2025-06-10T18:00:00Z"), g), Some(f));
        assert_eq!(failure(&missed, ts("2030-01-01T00:00:00Z"), grace(0)), Some(f));
        assert!(matches!(
            missed.record_no_show(ts("2025-06-10T19:00:00Z"), g),
            Err(AppointmentError::IllegalTransition { status: AppointmentStatus::Missed, .. })
        ));
        // A recorded no-show is final.
        assert!(missed.arrive(ts("2025-06-10T19:00:00Z")).is_err());
        assert!(missed.cancel_by_provider(ts("2025-06-10T19:00:00Z")).is_err());
        // No grace: due at the end of the window itself.
        assert_eq!(failure(&a, ts("2025-06-10T11:59:59Z"), grace(0)), None);
        assert!(failure(&a, ts("2025-06-10T12:00:00Z"), grace(0)).is_some());
    }

    #[test]
    fn an_arrival_in_time_is_no_failure_and_a_late_one_still_is() {
        let a = booked();
        let g = grace(30);
        let on_time = a.arrive(ts("2025-06-10T12:29:59Z")).unwrap();
        assert_eq!(failure(&on_time, ts("2025-06-11T00:00:00Z"), g), None);
        let done = on_time.complete(ts("2025-06-10T13:00:00Z")).unwrap();
        assert_eq!(failure(&done, ts("2025-06-11T00:00:00Z"), g), None);
        // Arriving at the due instant or later (before the no-show was recorded) is still
        // a no-show, so the result does not depend on when detection ran.
        let late = a.arrive(ts("2025-06-10T12:30:00Z")).unwrap();
        let f = Some(Failure { kind: FailureKind::NoShow, at: ts("2025-06-10T12:30:00Z") });
        assert_eq!(failure(&late, ts("2025-06-10T12:30:00Z"), g), f);
        assert_eq!(
            failure(&late.complete(ts("2025-06-10T14:00:00Z")).unwrap(), ts("2025-06-11T00:00:00Z"), g),
            f
        );
    }

    #[test]
    fn grace_is_bounded() {
        assert!(Grace::new(SignedDuration::from_secs(-1)).is_err());
        assert_eq!(
            Grace::new(SignedDuration::from_hours(25)).unwrap_err().to_string(),
            "grace: PT25H is outside 0 to 24 hours"
        );
        assert_eq!(Grace::new(SignedDuration::ZERO).unwrap().get(), SignedDuration::ZERO);
        assert_eq!(Grace::default().get(), SignedDuration::from_mins(30));
    }

    fn slot(tech: &str, start: &str, end: &str) -> Slot {
        Slot { window: window(start, end), technician_id: tech.into() }
    }

    #[test]
    fn earliest_slots_are_future_sorted_distinct_bounded_and_not_held() {
        let now = ts("2025-06-10T10:00:00Z");
        let free = vec![
            slot("T2", "2025-06-12T08:00:00Z", "2025-06-12T12:00:00Z"),
            slot("T1", "2025-06-10T10:00:00Z", "2025-06-10T12:00:00Z"), // starts now: not offered
            slot("T1", "2025-06-11T08:00:00Z", "2025-06-11T12:00:00Z"),
            slot("T2", "2025-06-11T08:00:00Z", "2025-06-11T12:00:00Z"), // same time as T1's
            slot("T1", "2025-06-09T08:00:00Z", "2025-06-09T12:00:00Z"), // past
            slot("T3", "2025-06-11T12:00:00Z", "2025-06-11T16:00:00Z"),
        ];
        let got = earliest_slots(&free, &[], now, 10);
        let starts: Vec<(String, &str)> =
            got.iter().map(|s| (s.window.start().to_string(), s.technician_id.as_str())).collect();
        assert_eq!(
            starts,
            [
                ("2025-06-11T08:00:00Z".to_string(), "T1"),
                ("2025-06-11T12:00:00Z".to_string(), "T3"),
                ("2025-06-12T08:00:00Z".to_string(), "T2"),
            ]
        );
        assert_eq!(earliest_slots(&free, &[], now, 1).len(), 1);
        assert_eq!(earliest_slots(&free, &[], now, 0).len(), 0);
        let many: Vec<Slot> = (0..20)
            .map(|h| Slot {
                window: Window::new(
                    ts("2025-06-11T00:00:00Z") + SignedDuration::from_hours(h),
                    ts("2025-06-11T01:00:00Z") + SignedDuration::from_hours(h),
                )
                .unwrap(),
                technician_id: "T1".into(),
            })
            .collect();
        assert_eq!(earliest_slots(&many, &[], now, usize::MAX).len(), OFFER_SLOTS_MAX);
        // A held slot is not offered to anyone else while the hold lives.
        let hold =
            Hold { slot: free[2].clone(), for_reference: reference(9), until: ts("2025-06-10T18:00:00Z") };
        let got = earliest_slots(&free, std::slice::from_ref(&hold), now, 10);
        assert_eq!(got[0], free[3]);
        let got = earliest_slots(&free, std::slice::from_ref(&hold), ts("2025-06-10T18:00:00Z"), 10);
        assert_eq!(got[0], free[2]);
    }

    #[test]
    fn an_offer_holds_the_earliest_slots_for_the_rebooking() {
        let now = ts("2025-06-10T12:30:00Z");
        let failed = booked().record_no_show(now, grace(30)).unwrap();
        let free = vec![
            slot("T1", "2025-06-10T14:00:00Z", "2025-06-10T16:00:00Z"),
            slot("T2", "2025-06-11T08:00:00Z", "2025-06-11T12:00:00Z"),
            slot("T1", "2025-06-13T08:00:00Z", "2025-06-13T12:00:00Z"),
            slot("T1", "2025-06-20T08:00:00Z", "2025-06-20T12:00:00Z"),
        ];
        let holds = offer(&failed, &free, &[], now, 3, SignedDuration::from_hours(24));
        assert_eq!(holds.len(), 3);
        // Held for 24 hours from now, but never past the slot's own start.
        assert_eq!(holds[0].until, ts("2025-06-10T14:00:00Z"));
        assert_eq!(holds[1].until, ts("2025-06-11T08:00:00Z"));
        assert_eq!(holds[2].until, ts("2025-06-11T12:30:00Z"));
        assert!(holds.iter().all(|h| h.for_reference == failed.reference));
        // A new booking cannot take the held slot; the rebooking can.
        let mut b = booking(5, Some("T2"), "2025-06-11T09:00:00Z", "2025-06-11T10:00:00Z");
        assert!(matches!(check_booking(&b, now, &[], &holds), Err(AppointmentError::Held { .. })));
        b.rebooked_from = Some(failed.reference.clone());
        let rebooked = book(b, now, &[], &holds).unwrap();
        assert_eq!(rebooked.rebooked_from.as_deref(), Some(failed.reference.as_str()));
        // The hold time is bounded.
        let long = offer(&failed, &free[3..], &[], now, 3, SignedDuration::from_hours(24 * 365));
        assert_eq!(long[0].until, ts("2025-06-10T12:30:00Z") + SignedDuration::from_hours(HOLD_HOURS_MAX));
        assert!(long[0].until < long[0].slot.window.start());
    }

    /// A Spanish customer's calendar reads Spanish (issue 17, item 3).
    #[test]
    fn calendar_words_follow_the_customer_s_language() {
        assert_eq!(calendar_words("es-MX").visit, "visita del técnico");
        assert_eq!(calendar_words("fr").visit, "passage du technicien");
        assert_eq!(calendar_words("en-GB").visit, "technician visit");
        assert_eq!(calendar_words("de-DE").visit, "Technikertermin");
        assert_eq!(calendar_words("nl"), calendar_words("en"), "no Dutch templates: English, as its notices");
    }

    #[test]
    fn references_carry_a_check_digit_and_do_not_read_as_counts() {
        assert_eq!(reference(1), "APT-2858-5588");
        assert_eq!(parse_reference("r", "APT-2858-5588"), Ok(1));
        // The example in the error message is a real reference.
        assert!(
            AppointmentError::BadReference { field: "r", value: String::new() }
                .to_string()
                .contains("APT-2858-5588")
        );
        // A visit booked before references were scrambled is still found.
        assert_eq!(parse_reference("r", "APT-00000013"), Ok(1));
        for bad in ["", "APT-", "APT-2858-5589", "APT-2858-5858", "APT-28585588", "CXL-2858-5588"] {
            assert!(parse_reference("r", bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_failure_never_depends_on_when_it_is_looked_for(
            end_offset_s in 0i64..86_400,
            grace_s in 0i64..86_400,
            arrival in prop::option::of(-3_600i64..200_000),
            probes in prop::collection::vec(0i64..400_000, 1..8),
        ) {
            let start = ts("2025-06-10T08:00:00Z");
            let a = Appointment {
                window: Window::new(start, start + SignedDuration::from_secs(1 + end_offset_s % 43_199)).unwrap(),
                ..booked()
            };
            let a = match arrival {
                Some(s) => a.arrive(start + SignedDuration::from_secs(s)).unwrap(),
                None => a,
            };
            let g = Grace::new(SignedDuration::from_secs(grace_s)).unwrap();
            let found: Vec<Failure> =
                probes.iter().filter_map(|p| failure(&a, start + SignedDuration::from_secs(*p), g)).collect();
            // Whenever found, always the same one, due at the end of the window plus the grace.
            for f in &found {
                prop_assert_eq!(*f, Failure { kind: FailureKind::NoShow, at: g.due(&a.window) });
            }
            // Once found, found at every later look.
            let mut sorted = probes.clone();
            sorted.sort_unstable();
            let seen: Vec<bool> =
                sorted.iter().map(|p| failure(&a, start + SignedDuration::from_secs(*p), g).is_some()).collect();
            prop_assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    fn appointment_with(status: AppointmentStatus) -> Appointment {
        Appointment { status, ..booked() }
    }

    #[test]
    fn ics_is_a_deterministic_rfc_5545_event() {
        let a = booked();
        let text = CalendarText {
            provider_name: "Example Fibre",
            uid_domain: "example.net",
            summary: "Technician visit, APT-2858-5588",
            description: None,
            location: Some("1 High St; Flat 2\nLondon"),
        };
        let expected = "BEGIN:VCALENDAR\r\n\
            VERSION:2.0\r\n\
            PRODID:-//Example Fibre//amends//EN\r\n\
            CALSCALE:GREGORIAN\r\n\
            BEGIN:VEVENT\r\n\
            UID:APT-2858-5588@example.net\r\n\
            DTSTAMP:20250609T090000Z\r\n\
            DTSTART:20250610T080000Z\r\n\
            DTEND:20250610T120000Z\r\n\
            SEQUENCE:0\r\n\
            STATUS:CONFIRMED\r\n\
            SUMMARY:Technician visit\\, APT-2858-5588\r\n\
            LOCATION:1 High St\\; Flat 2\\nLondon\r\n\
            TRANSP:OPAQUE\r\n\
            END:VEVENT\r\n\
            END:VCALENDAR\r\n";
        assert_eq!(ics(&a, &text), expected);
        assert_eq!(ics(&a, &text), ics(&a.clone(), &text));
        // A cancellation updates the same event: same UID, next sequence, cancelled.
        let c = a.cancel_by_provider(ts("2025-06-09T20:15:00Z")).unwrap();
        let cancelled = ics(&c, &text);
        assert!(cancelled.contains("\r\nUID:APT-2858-5588@example.net\r\n"));
        assert!(cancelled.contains("\r\nDTSTAMP:20250609T201500Z\r\nDTSTART:20250610T080000Z\r\n"));
        assert!(cancelled.contains("\r\nSEQUENCE:1\r\nSTATUS:CANCELLED\r\n"));
        for status in [AppointmentStatus::Arrived, AppointmentStatus::Completed, AppointmentStatus::Missed] {
            assert!(ics(&appointment_with(status), &text).contains("\r\nSEQUENCE:0\r\nSTATUS:CONFIRMED\r\n"));
        }
    }

    #[test]
    fn ics_text_is_escaped() {
        let check = |input: &str, expected: &str| assert_eq!(escape_text(input), expected, "{input:?}");
        check("plain", "plain");
        check(r"back\slash", r"back\\slash");
        check("a;b,c", r"a\;b\,c");
        check("one\ntwo\r\nthree\rfour", r"one\ntwo\nthree\nfour");
        check("tab\tbell\u{7}", "tab\tbell");
        check(r"\n is not a newline", r"\\n is not a newline");
    }

    #[test]
    fn ics_lines_fold_at_75_octets() {
        let check = |line: &str, expected: &str| {
            let mut out = String::new();
            fold_into(&mut out, line);
            assert_eq!(out, expected);
            for physical in out.split("\r\n") {
                assert!(physical.len() <= 75, "{physical:?}");
            }
            // Unfolding (remove CRLF + one space) gives the line back.
            assert_eq!(out.trim_end_matches("\r\n").replace("\r\n ", ""), line);
        };
        let a75 = "A".repeat(75);
        check(&a75, &format!("{a75}\r\n"));
        check(&format!("{a75}B"), &format!("{a75}\r\n B\r\n"));
        // 75 + 74 + 74 + 1 octets: continuations hold 74 after their space.
        let long = format!("{a75}{}{}C", "b".repeat(74), "c".repeat(74));
        check(&long, &format!("{a75}\r\n {}\r\n {}\r\n C\r\n", "b".repeat(74), "c".repeat(74)));
        // A two-octet character that would straddle octet 75 moves to the next line whole.
        let e = format!("{}é", "A".repeat(74));
        check(&e, &format!("{}\r\n é\r\n", "A".repeat(74)));
        let fits = format!("{}é", "A".repeat(73));
        check(&fits, &format!("{fits}\r\n"));
        // Four-octet characters.
        let emoji = "😀".repeat(20); // 80 octets: 18 fit (72), then 2.
        check(&emoji, &format!("{}\r\n {}\r\n", "😀".repeat(18), "😀".repeat(2)));
    }

    #[test]
    fn ics_folds_long_properties() {
        let a = booked();
        let summary = "Visite du technicien pour réparer votre connexion fibre, référence APT-2858-5588";
        let text = CalendarText {
            provider_name: "Example",
            uid_domain: "example.net",
            summary,
            description: None,
            location: None,
        };
        let out = ics(&a, &text);
        let expected = "SUMMARY:Visite du technicien pour réparer votre connexion fibre\\, référe\r\n nce APT-2858-5588\r\n";
        assert!(out.contains(expected), "{out}");
        assert!(out.split("\r\n").all(|l| l.len() <= 75));
        assert!(out.ends_with("END:VCALENDAR\r\n"));
        assert!(!out.replace("\r\n", "").contains('\n'));
    }

    fn ofcom_facts(event: Event) -> Facts {
        Facts {
            customer: CustomerFacts {
                id: "C1".into(),
                segment: "residential".into(),
                jurisdiction: "GB-EAW".into(),
                zone_name: "Europe/London".into(),
                zone: TimeZone::get("Europe/London").unwrap(),
                currency: crate::money::Currency::parse("GBP").unwrap(),
                billing_day: 1,
                active_from: ts("2020-01-01T00:00:00Z"),
                prices: vec![PricePoint { from: Date::constant(2020, 1, 1), monthly_price_minor: 3000 }],
                attributes: Default::default(),
            },
            events: vec![event],
        }
    }

    #[test]
    fn failures_become_policy_events_the_ofcom_policy_pays() {
        let policy = Policy::from_toml("uk-ofcom-automatic-compensation.toml", OFCOM).unwrap();
        let a = booked(); // window 2025-06-10 08:00-12:00 UTC: the 2025 rate, 31.19
        let missed = a.record_no_show(ts("2025-06-10T12:30:00Z"), grace(30)).unwrap();
        let f = failure(&missed, ts("2025-06-10T12:30:00Z"), grace(30)).unwrap();
        let event = policy_event(&missed, &f);
        assert_eq!(&*event.id, "APT-2858-5588");
        assert_eq!(
            event.what,
            EventKind::Appointment { window: a.window.interval(), outcome: Outcome::NoShow, cancelled: None }
        );
        assert_eq!(evaluate(&policy, &ofcom_facts(event)).unwrap().total_minor, 3119);
        // 23 h 59 min 59 s of notice: the policy pays, as `failure` says.
        let late = a.cancel_by_provider(ts("2025-06-09T08:00:01Z")).unwrap();
        let f = failure(&late, ts("2025-06-09T08:00:01Z"), Grace::DEFAULT).unwrap();
        let event = policy_event(&late, &f);
        assert_eq!(
            event.what,
            EventKind::Appointment {
                window: a.window.interval(),
                outcome: Outcome::Cancelled,
                cancelled: Some((ts("2025-06-09T08:00:01Z"), Party::Provider)),
            }
        );
        assert_eq!(evaluate(&policy, &ofcom_facts(event)).unwrap().total_minor, 3119);
    }

    #[test]
    fn statuses_read_back() {
        for s in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(AppointmentStatus::parse("gone"), None);
        let a = booked();
        let back: Appointment = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
