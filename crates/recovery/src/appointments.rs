//! Appointments (issue 6): booked visits that cannot vanish, and the failures that earn an
//! apology, compensation and a rebooking offer without anyone asking.
//!
//! Booking checks the core's rules (`amends_core::appointment::book`) inside the store's
//! booking transaction, against the technician's live visits and the slots held for
//! rebookings, so two bookings at once cannot both take one technician's time. The
//! confirmation goes to the customer at once (with the visit as an `.ics` file by email).
//!
//! Every tick checks the visits whose window and grace are over, and provider
//! cancellations: a failure (a no-show, or a cancellation at less than 24 hours' notice)
//! is recorded and then handled in steps that each write under a key derived from the
//! failure (`<reference>/<kind>`): the status `missed`, the compensation the policies pay
//! (`<customer>/<reference>/<kind>/<policy>/<version>` in the ledger), the slots held for
//! the customer's rebooking (read back if already held, so a re-run offers the same ones),
//! a case for the visit's owner (source key `appointment:<reference>:<kind>`), the apology
//! (`<customer>/<reference>/appointment_missed/0/<channel>`). Only when all are written is
//! the visit marked checked: a crash in between re-runs the steps, each finding its effect
//! already there.

use super::{Engine, EngineError};
use amends_core::appointment::{
    self, Appointment, AppointmentError, AppointmentStatus, Booking, Failure, FailureKind, Grace, Hold, Slot,
    Window, WorkingPattern,
};
use amends_core::book::Locale;
use amends_core::case::{Actor, CaseSource, Fault, OpenCase, Role};
use amends_core::credit_words::{CreditedLine, customer_explanation};
use amends_core::notice::{NoticeContext, NoticeKind, format_local};
use amends_store::{
    AppointmentFilter, AppointmentRow, CaseOpening, CreditRow, HoldRow, NoticeRow, StoreError,
};
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The most appointments one page of `GET /v1/appointments` holds.
pub const APPOINTMENTS_PAGE_MAX: u32 = 1_000;
/// Visits checked per tick; the rest wait for the next one.
const CHECK_PAGE: u32 = 500;
/// How far ahead the offer looks for live visits to keep clear of (the offer's days plus
/// the longest window).
const LOOKAHEAD_SLACK: SignedDuration = SignedDuration::from_hours(appointment::WINDOW_HOURS_MAX);

/// `[appointments]` in the settings file.
///
/// ```toml
/// [appointments]
/// zone = "Europe/London"                      # the technicians' working day
/// weekdays = ["mon", "tue", "wed", "thu", "fri"]
/// windows = ["08:00-12:00", "12:00-16:00"]    # bookable windows of local time
/// technicians = ["T1", "T2"]                  # who can be booked and offered
/// grace_minutes = 30                          # after the window, before a no-show
/// offer_slots = 3                             # slots held for a failed visit's customer
/// offer_days = 14                             # how far ahead the offer looks
/// hold_hours = 48                             # how long they are held
/// calendar_domain = "example.com"             # the right-hand side of .ics UIDs
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppointmentSettings {
    pub zone: String,
    pub weekdays: Vec<String>,
    pub windows: Vec<String>,
    pub technicians: Vec<String>,
    pub grace_minutes: u32,
    pub offer_slots: u32,
    pub offer_days: u32,
    pub hold_hours: u32,
    pub calendar_domain: String,
}

impl Default for AppointmentSettings {
    fn default() -> Self {
        AppointmentSettings {
            zone: "UTC".into(),
            weekdays: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
            windows: ["08:00-12:00", "12:00-16:00", "16:00-20:00"].map(String::from).to_vec(),
            technicians: Vec::new(),
            grace_minutes: 30,
            offer_slots: 3,
            offer_days: 14,
            hold_hours: 48,
            calendar_domain: "amends.invalid".into(),
        }
    }
}

/// The appointment rules the engine runs with, checked.
#[derive(Debug, Clone)]
pub struct AppointmentConfig {
    pub pattern: WorkingPattern,
    /// Who can be booked; empty: any technician id, and offers have nobody to offer.
    pub technicians: Vec<String>,
    pub grace: Grace,
    pub offer_slots: usize,
    pub offer_days: u32,
    pub hold_for: SignedDuration,
    pub calendar_domain: String,
}

impl Default for AppointmentConfig {
    fn default() -> Self {
        AppointmentSettings::default().check().expect("the default appointment settings are valid")
    }
}

impl AppointmentSettings {
    /// The settings as rules, or the first thing wrong, named by its key.
    pub fn check(&self) -> Result<AppointmentConfig, String> {
        let zone = TimeZone::get(&self.zone).map_err(|e| format!("zone: {:?}: {e}", self.zone))?;
        let weekdays = self.weekdays.iter().map(|d| weekday(d)).collect::<Result<Vec<_>, _>>()?;
        let windows = self.windows.iter().map(|w| daily_window(w)).collect::<Result<Vec<_>, _>>()?;
        let pattern = WorkingPattern::new(zone, weekdays, windows)?;
        for t in &self.technicians {
            amends_core::book::parse_id("technicians", t).map_err(|e| e.to_string())?;
        }
        let grace = Grace::new(SignedDuration::from_mins(i64::from(self.grace_minutes)))
            .map_err(|e| format!("grace_minutes: {e}"))?;
        if self.offer_slots as usize > appointment::OFFER_SLOTS_MAX {
            return Err(format!("offer_slots: at most {}", appointment::OFFER_SLOTS_MAX));
        }
        if self.offer_days == 0 || self.offer_days > appointment::OFFER_DAYS_MAX {
            return Err(format!("offer_days: 1 to {}", appointment::OFFER_DAYS_MAX));
        }
        if self.hold_hours == 0 || i64::from(self.hold_hours) > appointment::HOLD_HOURS_MAX {
            return Err(format!("hold_hours: 1 to {}", appointment::HOLD_HOURS_MAX));
        }
        if self.calendar_domain.is_empty() || self.calendar_domain.contains(char::is_whitespace) {
            return Err(format!("calendar_domain: {:?} is not a domain", self.calendar_domain));
        }
        Ok(AppointmentConfig {
            pattern,
            technicians: self.technicians.clone(),
            grace,
            offer_slots: self.offer_slots as usize,
            offer_days: self.offer_days,
            hold_for: SignedDuration::from_hours(i64::from(self.hold_hours)),
            calendar_domain: self.calendar_domain.clone(),
        })
    }
}

fn weekday(s: &str) -> Result<Weekday, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return Err(format!("weekdays: {s:?} is not a day (mon, tue, ...)")),
    })
}

fn daily_window(s: &str) -> Result<(Time, Time), String> {
    let bad = || format!("windows: {s:?} is not HH:MM-HH:MM");
    let (start, end) = s.split_once('-').ok_or_else(bad)?;
    let time = |t: &str| t.trim().parse::<Time>().map_err(|_| bad());
    Ok((time(start)?, time(end)?))
}

/// What can go wrong with an appointment, by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum AppointmentsError {
    /// The input or the visit's state refuses it: fix it, or read the visit again.
    #[error("{0}")]
    Invalid(String),
    #[error("appointment {0} not found")]
    NotFound(String),
    /// Someone else changed the visit between reading and writing it.
    #[error("{0}")]
    Conflict(String),
    /// The person may not act on this visit: only its owner, a lead or an admin may.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for AppointmentsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AppointmentNotFound(reference) => AppointmentsError::NotFound(reference),
            e @ StoreError::AppointmentConflict { .. } => AppointmentsError::Conflict(e.to_string()),
            StoreError::Refused(message) => AppointmentsError::Invalid(message),
            other => AppointmentsError::Engine(other.into()),
        }
    }
}

impl From<AppointmentError> for AppointmentsError {
    fn from(e: AppointmentError) -> Self {
        AppointmentsError::Invalid(e.to_string())
    }
}

/// `POST /v1/appointments`: a visit to book.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    pub customer_id: String,
    /// One of `[appointments] technicians` when that list is set.
    #[serde(default)]
    pub technician_id: Option<String>,
    /// The window, in UTC, to the second.
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    /// Who owns the visit (a failure opens a case for them); the booker when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// The failed visit this one replaces: it may take the slots held for it.
    #[serde(default)]
    pub rebooked_from: Option<String>,
}

/// One action on a visit: `{"action": "arrive"}`, or `amends appointment act APT-... arrive`.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema, clap::Subcommand)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum AppointmentAction {
    /// The technician arrived (at most an hour before the window).
    Arrive,
    /// The work is done (after an arrival).
    Complete,
    /// The customer cancelled: no failure, whenever it is.
    CancelByCustomer,
    /// The provider cancelled: under 24 hours before the window it is a failure, handled at once.
    CancelByProvider,
}

impl AppointmentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentAction::Arrive => "arrive",
            AppointmentAction::Complete => "complete",
            AppointmentAction::CancelByCustomer => "cancel_by_customer",
            AppointmentAction::CancelByProvider => "cancel_by_provider",
        }
    }
}

/// A visit as the API shows it, with what its failure caused.
#[derive(Debug, Clone, Serialize)]
pub struct AppointmentView {
    /// The record; `checked_at` is when amends finished checking it after its window (or
    /// its cancellation).
    #[serde(flatten)]
    pub visit: AppointmentRow,
    /// The failure, once its window and grace are over without an arrival (or a late
    /// cancellation), whether or not it is handled yet.
    pub failure: Option<Failure>,
    /// The slots held for this visit's rebooking.
    pub holds: Vec<HoldView>,
    /// The notices about this visit, oldest first.
    pub notices: Vec<NoticeRow>,
    /// The credits its failure paid.
    pub credits: Vec<CreditRow>,
    /// Who arrived, completed or cancelled it, and when, oldest first.
    pub actions: Vec<amends_store::AppointmentActionRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldView {
    pub technician_id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub until: Timestamp,
}

/// What one tick's appointment step did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppointmentReport {
    pub checked: u64,
    pub no_shows: u64,
    pub late_cancellations: u64,
    pub credits_written: u64,
    pub slots_held: u64,
    pub cases_opened: u64,
    pub notices_queued: u64,
    /// Confirmations queued by the tick for visits booked while the first try failed.
    pub confirmations_queued: u64,
}

/// The core's appointment of a stored row.
pub fn appointment_of(row: &AppointmentRow) -> Result<Appointment, AppointmentsError> {
    let corrupt = |reason: String| {
        AppointmentsError::Engine(EngineError::Store(StoreError::Corrupt { table: "appointments", reason }))
    };
    let status = row.status;
    let window = Window::new(row.window_start, row.window_end)
        .map_err(|e| corrupt(format!("{}: {e}", row.reference)))?;
    Ok(Appointment {
        reference: row.reference.clone(),
        customer_id: row.customer_id.clone(),
        technician_id: row.technician_id.clone(),
        window,
        status,
        booked_at: row.booked_at,
        arrived_at: row.arrived_at,
        completed_at: row.completed_at,
        cancelled_at: row.cancelled_at,
        cancel_notice: row.cancel_notice_secs.map(SignedDuration::from_secs),
        missed_at: row.missed_at,
        rebooked_from: row.rebooked_from.clone(),
    })
}

/// `row` with the state of `a` (the owner, check and version kept).
fn with_state(row: &AppointmentRow, a: &Appointment) -> AppointmentRow {
    AppointmentRow {
        status: a.status,
        arrived_at: a.arrived_at,
        completed_at: a.completed_at,
        cancelled_at: a.cancelled_at,
        cancel_notice_secs: a.cancel_notice.map(|d| d.as_secs()),
        missed_at: a.missed_at,
        ..row.clone()
    }
}

fn new_row(a: &Appointment, owner: &str) -> AppointmentRow {
    let blank = AppointmentRow {
        reference: a.reference.clone(),
        customer_id: a.customer_id.clone(),
        technician_id: a.technician_id.clone(),
        owner: owner.to_string(),
        window_start: a.window.start(),
        window_end: a.window.end(),
        status: a.status,
        booked_at: a.booked_at,
        arrived_at: None,
        completed_at: None,
        cancelled_at: None,
        cancel_notice_secs: None,
        missed_at: None,
        rebooked_from: a.rebooked_from.clone(),
        checked_at: None,
        version: 0,
    };
    with_state(&blank, a)
}

fn hold_of(row: &HoldRow) -> Option<Hold> {
    Some(Hold {
        slot: Slot {
            window: Window::new(row.window_start, row.window_end).ok()?,
            technician_id: row.technician_id.clone(),
        },
        for_reference: row.for_reference.clone(),
        until: row.until,
    })
}

fn hold_row(h: &Hold) -> HoldRow {
    HoldRow {
        for_reference: h.for_reference.clone(),
        technician_id: h.slot.technician_id.clone(),
        window_start: h.slot.window.start(),
        window_end: h.slot.window.end(),
        until: h.until,
    }
}

impl Engine {
    /// Books a visit for `by` (the owner unless `request.owner` names another active
    /// agent) and queues its confirmation. Refused, with nothing written, when the
    /// customer is unknown or has cancelled, the technician is not bookable, or the core
    /// refuses the window (past, too long, too far ahead, on top of the technician's other
    /// visit or of a slot held for someone's rebooking).
    pub async fn book_appointment(
        &self,
        by: &Actor,
        request: BookRequest,
    ) -> Result<AppointmentView, AppointmentsError> {
        let now = self.clock.now();
        let book = self.book().await?;
        let Some(index) = book.customer_index(&request.customer_id) else {
            return Err(AppointmentsError::Invalid(format!(
                "customer_id: {} is not known",
                request.customer_id
            )));
        };
        if book.customers[index as usize].status != amends_core::book::CustomerStatus::Active {
            return Err(AppointmentsError::Invalid(format!(
                "customer_id: {} has cancelled their service",
                request.customer_id
            )));
        }
        let technicians = &self.config.appointments.technicians;
        if let Some(t) = &request.technician_id
            && !technicians.is_empty()
            && !technicians.contains(t)
        {
            return Err(AppointmentsError::Invalid(format!(
                "technician_id: {t} is not one of the technicians ({})",
                technicians.join(", ")
            )));
        }
        let owner = match &request.owner {
            Some(id) => self.actor(id).await?.ok_or_else(|| {
                AppointmentsError::Invalid(format!("owner: {id} is not a known, active agent"))
            })?,
            None => by.clone(),
        };
        if let Some(from) = &request.rebooked_from {
            let failed = self.store.appointment(from).await.map_err(EngineError::from)?;
            if failed.is_none_or(|f| f.customer_id != request.customer_id) {
                return Err(AppointmentsError::Invalid(format!(
                    "rebooked_from: {from} is not a visit of customer {}",
                    request.customer_id
                )));
            }
        }
        let window = Window::new(request.start, request.end)?;
        let build = |number: u64, others: &[AppointmentRow], holds: &[HoldRow]| {
            let others = others
                .iter()
                .map(appointment_of)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let holds: Vec<Hold> = holds.iter().filter_map(hold_of).collect();
            let booking = Booking {
                reference: appointment::reference(number),
                customer_id: request.customer_id.clone().into(),
                technician_id: request.technician_id.clone(),
                window,
                rebooked_from: request.rebooked_from.clone(),
            };
            let booked = appointment::book(booking, now, &others, &holds).map_err(|e| e.to_string())?;
            Ok(new_row(&booked, &owner.id))
        };
        let row = self.store.book_appointment(request.technician_id.as_deref(), &build).await?;
        if let Err(error) = self.confirm_booking(&row).await {
            tracing::error!(appointment = %row.reference, %error, "confirmation not queued; the next tick queues it");
        }
        self.appointment_view(&row.reference).await
    }

    /// Records `action` on the visit. A provider cancellation at short notice is handled
    /// at once: the customer hears the apology in the same request's wake, not a tick later.
    /// `actor` acts on the visit: its owner, a lead or an admin, as for cases (an action
    /// can set off compensation or hide a no-show); who did it is recorded with it.
    pub async fn act_on_appointment(
        &self,
        reference: &str,
        actor: &Actor,
        action: AppointmentAction,
    ) -> Result<AppointmentView, AppointmentsError> {
        let now = self.clock.now();
        let row = self.load_appointment(reference).await?;
        if actor.id != row.owner && !matches!(actor.role, Role::Lead | Role::Admin) {
            return Err(AppointmentsError::Forbidden(format!(
                "{} may not act on {reference}: it is {}'s visit (their lead or an admin may)",
                actor.id, row.owner
            )));
        }
        let a = appointment_of(&row)?;
        let changed = match action {
            AppointmentAction::Arrive => a.arrive(now)?,
            AppointmentAction::Complete => a.complete(now)?,
            AppointmentAction::CancelByCustomer => a.cancel_by_customer(now)?,
            AppointmentAction::CancelByProvider => a.cancel_by_provider(now)?,
        };
        let done_by = amends_store::AppointmentActionRow {
            reference: reference.to_string(),
            version: 0,
            action: action.as_str().to_string(),
            actor: actor.id.clone(),
            at: now,
        };
        let stored = self.store.act_on_appointment(&with_state(&row, &changed), &done_by).await?;
        let done = if changed.is_late_cancellation() {
            self.check_appointment(&stored, now, &mut AppointmentReport::default()).await
        } else if cancelled_by(&changed).is_some() {
            self.tell_cancelled(&changed).await.map(|_| ())
        } else {
            Ok(())
        };
        if let Err(error) = done {
            tracing::error!(appointment = reference, %error, "the customer is not told yet; the next check tells them");
        }
        self.appointment_view(reference).await
    }

    pub async fn appointments(
        &self,
        filter: &AppointmentFilter,
    ) -> Result<Vec<AppointmentRow>, AppointmentsError> {
        Ok(self.store.appointments(filter).await?)
    }

    async fn load_appointment(&self, reference: &str) -> Result<AppointmentRow, AppointmentsError> {
        // A mistyped reference (its check digit does not match) is said to be one, not
        // looked up as if it were someone's visit that does not exist.
        appointment::parse_reference("reference", reference)?;
        self.store
            .appointment(reference)
            .await?
            .ok_or_else(|| AppointmentsError::NotFound(reference.to_string()))
    }

    /// A visit, its failure as of now, the slots held for it, and what it caused.
    pub async fn appointment_view(&self, reference: &str) -> Result<AppointmentView, AppointmentsError> {
        let row = self.load_appointment(reference).await?;
        let a = appointment_of(&row)?;
        let failure = appointment::failure(&a, self.clock.now(), self.config.appointments.grace);
        let holds = self.store.holds_for(reference).await?;
        let mut notices = self.store.notices_for_incident(reference, 100).await.map_err(EngineError::from)?;
        notices.sort_by(|x, y| (x.created_at, &x.key).cmp(&(y.created_at, &y.key)));
        let filter = amends_store::CreditFilter {
            customer_id: Some(row.customer_id.clone()),
            ..amends_store::CreditFilter::default()
        };
        let credits = self
            .store
            .credits(&filter)
            .await
            .map_err(EngineError::from)?
            .into_iter()
            .filter(|c| c.source_event.starts_with(&format!("{reference}/")))
            .collect();
        Ok(AppointmentView {
            visit: row,
            failure,
            holds: holds
                .iter()
                .map(|h| HoldView {
                    technician_id: h.technician_id.clone(),
                    start: h.window_start,
                    end: h.window_end,
                    until: h.until,
                })
                .collect(),
            notices,
            credits,
            actions: self.store.appointment_actions(reference).await?,
        })
    }

    /// The appointment step of every tick: each visit whose window and grace are over, and
    /// each provider cancellation, checked once for a failure and its effects.
    pub async fn check_appointments(&self) -> Result<AppointmentReport, EngineError> {
        let now = self.clock.now();
        let due_by = now - self.config.appointments.grace.get();
        let mut report = AppointmentReport::default();
        for row in self.store.appointments_to_check(due_by, CHECK_PAGE).await? {
            match self.check_appointment(&row, now, &mut report).await {
                Ok(()) => report.checked += 1,
                Err(AppointmentsError::Conflict(_)) => {} // changed meanwhile: the next pass sees it
                Err(e) => {
                    tracing::error!(appointment = %row.reference, error = %e, "appointment check failed; retrying next pass")
                }
            }
        }
        report.confirmations_queued = self.confirm_unconfirmed().await?;
        Ok(report)
    }

    /// Checks one visit: its failure, if any, recorded and handled step by step (each
    /// step a no-op when its effect is already written), then marked checked.
    async fn check_appointment(
        &self,
        row: &AppointmentRow,
        now: Timestamp,
        report: &mut AppointmentReport,
    ) -> Result<(), AppointmentsError> {
        let grace = self.config.appointments.grace;
        let a = appointment_of(row)?;
        let Some(failure) = appointment::failure(&a, now, grace) else {
            // A customer's cancellation, a provider's with notice (told again here, a no-op
            // unless a crash kept it from going when it was recorded), a visit that happened.
            report.notices_queued += self.tell_cancelled(&a).await?;
            self.store.mark_appointment_checked(&row.reference, now).await?;
            return Ok(());
        };
        // A crash test can kill the process after any of the seven steps (see
        // `failpoint::APPOINTMENT_STEP`); each is passed whether or not it wrote anything.
        let step = || crate::failpoint::pass(crate::failpoint::APPOINTMENT_STEP, 1);
        let (row, a) = if a.status == AppointmentStatus::Booked {
            let missed = a.record_no_show(now, grace)?;
            (self.store.update_appointment(&with_state(row, &missed)).await?, missed)
        } else {
            (row.clone(), a)
        };
        step();
        let compensation = self.compensate(&a, &failure, report).await?;
        step();
        let slots = self.hold_slots(&a, now, report).await?;
        step();
        let (case_id, owner_name) = self.open_visit_case(&row, &a, &failure, now, report).await?;
        step();
        self.record_compensation_by_amends(&case_id, &compensation.credits).await.map_err(|e| match e {
            super::cases::CasesError::Engine(e) => AppointmentsError::Engine(e),
            other => AppointmentsError::Invalid(other.to_string()),
        })?;
        step();
        report.notices_queued +=
            self.apologise(&a, &failure, &compensation, &slots, &case_id, &owner_name).await?;
        step();
        match failure.kind {
            FailureKind::NoShow => report.no_shows += 1,
            FailureKind::LateCancellation => report.late_cancellations += 1,
        }
        self.store.mark_appointment_checked(&row.reference, now).await?;
        step();
        Ok(())
    }

    /// The compensation every assigned policy pays for the failure, written to the ledger
    /// under keys derived from the failure; its total and the customer's version of its
    /// explanation for the apology (empty when the lines have nothing to add).
    async fn compensate(
        &self,
        a: &Appointment,
        failure: &Failure,
        report: &mut AppointmentReport,
    ) -> Result<Compensation, AppointmentsError> {
        let book = self.book().await?;
        let Some(index) = book.customer_index(&a.customer_id) else {
            return Ok(Compensation::default());
        };
        let event = appointment::policy_event(a, failure);
        let paid = self.credits_for_event(&book, index, &event, &failure.key(&a.reference), failure.at)?;
        let (mut rows, mut offers) = (paid.credits, paid.offers);
        // Offers after the credits, as the incident's credit step writes them: each is
        // claimed on the customer's page, once.
        if !rows.is_empty() {
            let written = self.store.append_credits(&mut rows).await.map_err(EngineError::from)?;
            report.credits_written += written.inserted;
        }
        if !offers.is_empty() {
            self.store.append_on_request_offers(&mut offers).await.map_err(EngineError::from)?;
        }
        let on_request = total_of(&offers);
        if rows.is_empty() {
            return Ok(Compensation { on_request, ..Compensation::default() });
        }
        let credited = total_of(&rows);
        let (total, currency) = credited.clone().unwrap_or_default();
        let lines: Vec<CreditedLine> =
            rows.iter().flat_map(|r| CreditedLine::parse_all(&r.lines_json)).collect();
        let customer = &book.customers[index as usize];
        let explanation = amends_core::money::Currency::parse(&currency)
            .ok()
            .and_then(|c| customer_explanation(&lines, total, c, &customer.locale))
            .unwrap_or_default();
        Ok(Compensation { credits: rows, credited, explanation, on_request })
    }

    /// The slots held for the customer's rebooking: the ones already held for this visit
    /// (a re-run offers the same), or the earliest free ones, held now.
    async fn hold_slots(
        &self,
        a: &Appointment,
        now: Timestamp,
        report: &mut AppointmentReport,
    ) -> Result<Vec<Hold>, AppointmentsError> {
        let held = self.store.holds_for(&a.reference).await?;
        if !held.is_empty() {
            return Ok(held.iter().filter_map(hold_of).collect());
        }
        // Another check of this visit racing this one may hold first: `put_holds` keeps
        // the first offer and gives it back.
        let config = &self.config.appointments;
        if config.offer_slots == 0 || config.technicians.is_empty() {
            return Ok(Vec::new());
        }
        let until = now + SignedDuration::from_hours(24 * i64::from(config.offer_days)) + LOOKAHEAD_SLACK;
        let booked = self.store.live_appointments_between(now, until).await?;
        let booked = booked.iter().map(appointment_of).collect::<Result<Vec<_>, _>>()?;
        let live: Vec<Hold> = self.store.live_holds(now).await?.iter().filter_map(hold_of).collect();
        let free = appointment::free_slots(
            &config.pattern,
            &config.technicians,
            &booked,
            &live,
            now,
            config.offer_days,
            config.offer_slots,
        );
        let holds = appointment::offer(a, &free, &live, now, config.offer_slots, config.hold_for);
        let rows: Vec<HoldRow> = holds.iter().map(hold_row).collect();
        let (held, written) = self.store.put_holds(&a.reference, &rows).await?;
        if written {
            report.slots_held += held.len() as u64;
        }
        Ok(held.iter().filter_map(hold_of).collect())
    }

    /// The case for the visit's owner (or, if they are no longer active, amends keeps it
    /// with the first active agent): opened once, under the failure's source key.
    async fn open_visit_case(
        &self,
        row: &AppointmentRow,
        a: &Appointment,
        failure: &Failure,
        now: Timestamp,
        report: &mut AppointmentReport,
    ) -> Result<(String, String), AppointmentsError> {
        // Only an agent owns a case (a lead or an admin who booked is not one).
        let owner = match self.actor(&row.owner).await? {
            Some(actor) if actor.role == Role::Agent => actor,
            _ => self.fallback_owner(&a.customer_id).await?,
        };
        let owner_name = self
            .store
            .agent(&owner.id)
            .await
            .map_err(EngineError::from)?
            .map_or(owner.id.clone(), |a| a.name);
        let book = self.book().await?;
        let currency = match book.customer_index(&a.customer_id) {
            Some(c) => book.plan_of(c).monthly_price.currency,
            None => {
                return Err(AppointmentsError::Invalid(format!("customer {} is not known", a.customer_id)));
            }
        };
        let what = match failure.kind {
            FailureKind::NoShow => "missed",
            FailureKind::LateCancellation => "cancelled at short notice",
        };
        let open = OpenCase {
            customer_id: a.customer_id.clone(),
            owner,
            source: CaseSource::Appointment { appointment_id: a.reference.clone() },
            fault: Fault::Company,
            summary: format!("Visit {} ({}) was {what}", a.reference, a.window),
            // The customer's time starts with the window they kept free, within the
            // look-back a case allows.
            first_contact_at: a.window.start().min(now).max(
                now - SignedDuration::from_hours(24 * amends_core::case::FIRST_CONTACT_LOOKBACK_DAYS_MAX),
            ),
            currency,
        };
        let key = format!("appointment:{}:{}", a.reference, failure.kind);
        let case_id = match self.open_system_case(&open, key, now).await? {
            CaseOpening::Opened(id) => {
                report.cases_opened += 1;
                id
            }
            CaseOpening::Existing(id) => id,
        };
        Ok((case_id, owner_name))
    }

    /// An active agent to own a case whose visit owner is gone, the same one on a re-run.
    async fn fallback_owner(&self, customer_id: &str) -> Result<Actor, AppointmentsError> {
        let agents: Vec<_> = self
            .store
            .agents()
            .await
            .map_err(EngineError::from)?
            .into_iter()
            .filter(|a| a.active && a.role == Role::Agent.as_str())
            .collect();
        if agents.is_empty() {
            return Err(AppointmentsError::Invalid(
                "no active agent to own the case of a failed visit".into(),
            ));
        }
        let agent = &agents[super::cases::spread(customer_id, agents.len())];
        Ok(Actor::new(agent.agent_id.clone(), Role::Agent))
    }

    /// The apology: what failed, what was credited, the slots held, who owns it now.
    #[allow(clippy::too_many_arguments)]
    async fn apologise(
        &self,
        a: &Appointment,
        failure: &Failure,
        compensation: &Compensation,
        slots: &[Hold],
        case_id: &str,
        owner_name: &str,
    ) -> Result<u64, AppointmentsError> {
        let book = self.book().await?;
        let Some(index) = book.customer_index(&a.customer_id) else { return Ok(0) };
        let customer = &book.customers[index as usize];
        let (tz, locale) = (&customer.zone.tz, &customer.locale);
        let money = |amount: &Option<(i64, String)>| {
            amount
                .as_ref()
                .map(|(minor, currency)| amends_core::money::format_stored(*minor, currency, locale))
        };
        let base = NoticeContext {
            provider_name: self.config.provider_name.clone(),
            appointment_ref: a.reference.clone(),
            failure_kind: failure.kind.as_str().to_string(),
            compensation: money(&compensation.credited),
            on_request_compensation: money(&compensation.on_request),
            credit_explanation: Some(compensation.explanation.clone()).filter(|e| !e.is_empty()),
            slots: slots.iter().map(|h| window_text(&h.slot.window, tz, locale)).collect(),
            slots_short: slots.iter().map(|h| window_short_text(&h.slot.window, tz, locale)).collect(),
            case_id: case_id.into(),
            owner_name: owner_name.to_string(),
            ..self.window_context(&a.window, tz, locale)
        };
        Ok(self.queue_one(&book, NoticeKind::AppointmentMissed, &a.reference, base, index).await?)
    }

    /// The confirmation of a booking: its reference and window as the customer reads
    /// them; the email's `.ics` is attached when it is sent (see `amends_sinks::deliver`).
    async fn confirm_booking(&self, row: &AppointmentRow) -> Result<u64, AppointmentsError> {
        let book = self.book().await?;
        let Some(index) = book.customer_index(&row.customer_id) else { return Ok(0) };
        let customer = &book.customers[index as usize];
        let a = appointment_of(row)?;
        let base = NoticeContext {
            provider_name: self.config.provider_name.clone(),
            appointment_ref: row.reference.clone(),
            ..self.window_context(&a.window, &customer.zone.tz, &customer.locale)
        };
        let queued =
            self.queue_one(&book, NoticeKind::AppointmentBooked, &row.reference, base, index).await?;
        self.store.mark_appointment_confirmed(&row.reference).await?;
        Ok(queued)
    }

    /// Tells the customer a visit is cancelled (not a failure: those get the apology),
    /// with the cancelled event for their calendar; nothing for a visit not cancelled.
    async fn tell_cancelled(&self, a: &Appointment) -> Result<u64, AppointmentsError> {
        let Some(by) = cancelled_by(a) else { return Ok(0) };
        let book = self.book().await?;
        let Some(index) = book.customer_index(&a.customer_id) else { return Ok(0) };
        let customer = &book.customers[index as usize];
        let base = NoticeContext {
            provider_name: self.config.provider_name.clone(),
            appointment_ref: a.reference.clone(),
            cancelled_by: by.to_string(),
            ..self.window_context(&a.window, &customer.zone.tz, &customer.locale)
        };
        Ok(self.queue_one(&book, NoticeKind::AppointmentCancelled, &a.reference, base, index).await?)
    }

    /// Confirmations a crash kept from going out at booking, queued now.
    async fn confirm_unconfirmed(&self) -> Result<u64, EngineError> {
        let mut queued = 0;
        for row in self.store.appointments_unconfirmed(CHECK_PAGE).await? {
            match self.confirm_booking(&row).await {
                Ok(n) => queued += n,
                Err(e) => {
                    tracing::error!(appointment = %row.reference, error = %e, "confirmation failed; retrying next pass")
                }
            }
        }
        Ok(queued)
    }

    fn window_context(&self, window: &Window, tz: &TimeZone, locale: &Locale) -> NoticeContext {
        NoticeContext {
            window: Some(window_text(window, tz, locale)),
            window_short: Some(window_short_text(window, tz, locale)),
            window_start: Some(format_local(window.start(), tz, locale)),
            window_end: Some(format_local(window.end(), tz, locale)),
            ..NoticeContext::default()
        }
    }
}

/// Who cancelled a visit that is cancelled and not a failure.
fn cancelled_by(a: &Appointment) -> Option<&'static str> {
    match a.status {
        AppointmentStatus::CancelledByCustomer => Some("customer"),
        AppointmentStatus::CancelledByProvider if !a.is_late_cancellation() => Some("provider"),
        _ => None,
    }
}

fn window_text(window: &Window, tz: &TimeZone, locale: &Locale) -> String {
    amends_core::cldr::window(window.start(), window.end(), tz, locale)
}

fn window_short_text(window: &Window, tz: &TimeZone, locale: &Locale) -> String {
    amends_core::cldr::window_short(window.start(), window.end(), tz, locale)
}

/// The visit as a calendar file for the confirmation email, as of its current record.
/// Its words are in the customer's language (`locale`, as the notice carrying it was
/// written): a Spanish customer's calendar says "visita del técnico".
pub fn calendar_file(
    row: &AppointmentRow,
    provider_name: &str,
    domain: &str,
    locale: &str,
) -> Option<(String, String)> {
    let a = appointment_of(row).ok()?;
    let words = appointment::calendar_words(locale);
    let summary = format!("{provider_name}: {} {}", words.visit, a.reference);
    let text = appointment::CalendarText {
        provider_name,
        uid_domain: domain,
        summary: &summary,
        description: Some(words.description),
        location: None,
    };
    Some((format!("{}.ics", a.reference), appointment::ics(&a, &text)))
}

/// What a failed visit is compensated with: the credits written (and their total and the
/// customer's explanation of it, for the apology), and the total offered on request.
#[derive(Debug, Default)]
struct Compensation {
    credits: Vec<CreditRow>,
    credited: Option<(i64, String)>,
    explanation: String,
    on_request: Option<(i64, String)>,
}

/// The total of `rows` and their currency (an event's rows share the policy's), if any.
fn total_of(rows: &[CreditRow]) -> Option<(i64, String)> {
    let first = rows.first()?;
    Some((rows.iter().map(|r| r.amount_minor).sum(), first.currency.clone()))
}
