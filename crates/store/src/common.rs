//! Helpers shared by both backends: instant and id encoding, input preparation for the
//! bulk paths (sorting, de-duplication, the in-input credit conflict check) and row
//! decoding that turns a bad stored value into [`StoreError::Corrupt`].

use std::cmp::Ordering;

use jiff::Timestamp;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::{
    AgentRow, AppointmentCounts, AppointmentRow, CancellationRow, CaseEventRow, CaseRow, CaseTiming,
    CreditRow, CustomerRow, DeviceEventRow, ElementRow, HoldRow, IgnoredAlert, ImpactRow, IncidentAlert,
    IncidentRow, IncidentSource, JourneySteps, NoticeRow, NoticeStatus, PlanRow, Result, SignupRow,
    StageRaise, StoreError, SurveyDecisionRow, TokenRow, UpdateRow,
};
use amends_core::appointment::AppointmentStatus;
use amends_core::book::CustomerStatus;
use amends_core::case::Status as CaseStatus;
use amends_core::incident::{ByLocale, IncidentState};
use amends_core::preferences::Channel;

/// Column lists, shared by both backends so their SQL cannot drift apart.
pub(crate) const PLAN_COLS: &[&str] = &["plan_id", "name", "monthly_price_minor", "currency"];
pub(crate) const ELEMENT_COLS: &[&str] = &["element_id", "parent_id", "kind", "name"];
pub(crate) const CUSTOMER_COLS: &[&str] = &[
    "customer_id",
    "name",
    "email",
    "phone",
    "locale",
    "timezone",
    "plan_id",
    "element_id",
    "device_id",
    "billing_day",
    "active_since",
    "status",
    "segment",
    "jurisdiction",
    "attributes",
];
pub(crate) const NOTICE_COLS: &[&str] = &[
    "key",
    "customer_id",
    "about",
    "kind",
    "seq",
    "channel",
    "recipient",
    "locale",
    "subject",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
    "reason",
];
pub(crate) const IMPACT_COLS: &[&str] = &[
    "incident_id",
    "customer_id",
    "presumed",
    "affected_at",
    "back_at",
    "follow_up",
    "downtime",
    "notified",
];
pub(crate) const AGENT_COLS: &[&str] = &["agent_id", "name", "role", "lead_id", "active", "updated_at"];
pub(crate) const DEVICE_EVENT_COLS: &[&str] = &["device_id", "at", "state", "reason"];
pub(crate) const CREDIT_COLS: &[&str] = &[
    "key",
    "customer_id",
    "source_event",
    "policy_id",
    "policy_version",
    "amount_minor",
    "currency",
    "statement",
    "explanation",
    "lines_json",
    "created_at",
];

/// `a, b, c`: a column list for SQL.
pub(crate) fn col_list(cols: &[&str]) -> String {
    cols.join(", ")
}

/// `a = excluded.a, ...` for every column but the first (the key): an upsert that
/// replaces the whole row.
pub(crate) fn set_excluded(cols: &[&str]) -> String {
    cols[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ")
}

// ---- instants and ids ----

pub(crate) fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

pub(crate) fn opt_micros(ts: Option<Timestamp>) -> Option<i64> {
    ts.map(micros)
}

/// A stored instant read outside a row decoder (an aggregate).
pub(crate) fn instant(table: &'static str, col: &str, us: i64) -> Result<Timestamp> {
    timestamp(table, col, us)
}

/// A stored count read outside a row decoder.
pub(crate) fn count(table: &'static str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt { table, reason: format!("negative count {n}") })
}

fn timestamp(table: &'static str, col: &str, us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("{col} = {us} is not a valid instant: {e}"),
    })
}

/// The public id of the n-th incident: `INC-000001`.
pub(crate) fn incident_id(n: i64) -> String {
    format!("INC-{n:06}")
}

/// The public id of the n-th case: `CASE-000001`.
pub(crate) fn case_id(n: i64) -> String {
    format!("CASE-{n:06}")
}

/// The public id of the n-th survey sent: `SUR-000001`.
pub(crate) fn survey_id(n: i64) -> String {
    format!("SUR-{n:06}")
}

/// A number a counter handed out, as `book_appointment`'s `build` takes it.
pub(crate) fn counter_number(counter: &'static str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        table: "counters",
        reason: format!("counter {counter} handed out {n}"),
    })
}

/// Refuses, before anything is written, a built appointment for another technician than
/// the one whose appointments and holds it was built from: its checks would have been
/// against the wrong ones.
pub(crate) fn check_built_appointment(technician_id: Option<&str>, built: &AppointmentRow) -> Result<()> {
    if built.technician_id.as_deref() == technician_id {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        table: "appointments",
        reason: format!(
            "refused before writing: appointment {} built for technician {:?} from the bookings of {:?}",
            built.reference, built.technician_id, technician_id
        ),
    })
}

/// Why an update of `given` wrote nothing, from the row stored under its reference (read
/// after the update): not there, another version, or a field the booking fixed.
pub(crate) fn appointment_update_refusal(
    given: &AppointmentRow,
    stored: Option<AppointmentRow>,
) -> StoreError {
    let reference = given.reference.clone();
    let Some(stored) = stored else { return StoreError::AppointmentNotFound(reference) };
    if stored.version != given.version {
        return StoreError::AppointmentConflict { reference, expected: given.version, found: stored.version };
    }
    let fixed = [
        ("customer_id", stored.customer_id != given.customer_id),
        ("technician_id", stored.technician_id != given.technician_id),
        ("window_start", stored.window_start != given.window_start),
        ("window_end", stored.window_end != given.window_end),
        ("booked_at", stored.booked_at != given.booked_at),
        ("rebooked_from", stored.rebooked_from != given.rebooked_from),
    ];
    match fixed.into_iter().find(|(_, changed)| *changed) {
        Some((field, _)) => StoreError::AppointmentFixed { reference, field },
        // Versions only grow and the fixed fields never change, so the update cannot
        // have missed this row; report the version it found rather than guess.
        None => StoreError::AppointmentConflict { reference, expected: given.version, found: stored.version },
    }
}

/// Refuses, before anything is written, a sign-up for another customer than the one
/// signing up.
pub(crate) fn check_signup(customer: &CustomerRow, signup: &SignupRow) -> Result<()> {
    if customer.customer_id == signup.customer_id {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        table: "signups",
        reason: format!(
            "refused before writing: the sign-up of {} given with customer {}",
            signup.customer_id, customer.customer_id
        ),
    })
}

/// `Refused` naming the plan or element of a new customer that the book does not hold
/// (`plans` and `elements`: how many rows have its ids).
pub(crate) fn check_in_book(customer: &CustomerRow, plans: i64, elements: i64) -> Result<()> {
    let id = &customer.customer_id;
    if plans == 0 {
        return Err(StoreError::Refused(format!("customer {id}: plan {} not found", customer.plan_id)));
    }
    if elements == 0 {
        return Err(StoreError::Refused(format!("customer {id}: element {} not found", customer.element_id)));
    }
    Ok(())
}

/// AlreadyCancelled for `customer_id`, naming their latest cancellation if there is one.
pub(crate) fn already_cancelled(customer_id: &str, earlier: Option<CancellationRow>) -> StoreError {
    StoreError::AlreadyCancelled {
        customer_id: customer_id.to_owned(),
        reference: earlier.as_ref().map(|c| c.reference.clone()),
        at: earlier.map(|c| c.requested_at),
    }
}

/// The decision that made an insert under `subject_key` conflict: another writer's,
/// committed meanwhile.
pub(crate) fn decided_meanwhile(
    subject_key: &str,
    stored: Option<SurveyDecisionRow>,
) -> Result<SurveyDecisionRow> {
    stored.ok_or_else(|| StoreError::Corrupt {
        table: "survey_decisions",
        reason: format!("subject key {subject_key:?} conflicted, yet no decision holds it"),
    })
}

/// A list read whole hit its bound: what it returned is not all there is.
pub(crate) fn warn_if_full(what: &'static str, rows: usize) {
    if rows >= crate::LIVE_ROWS_MAX as usize {
        tracing::warn!(what, rows, "bound reached: rows beyond it were not read");
    }
}

/// Counts by (decision, reason), ordered with no reason first: the backends order NULL
/// differently, so the order is made here.
pub(crate) fn sort_decision_counts(counts: &mut [(String, Option<String>, u64)]) {
    counts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
}

/// Refuses, before anything is written, events that do not continue the log of `case_id`
/// from `first_seq` without a gap: a caller's mistake that would otherwise surface only
/// as a primary key violation, or not at all.
pub(crate) fn check_case_events(case_id: &str, first_seq: i64, events: &[CaseEventRow]) -> Result<()> {
    for (seq, e) in (first_seq..).zip(events) {
        if e.seq != seq || e.case_id != case_id {
            return Err(StoreError::Corrupt {
                table: "case_events",
                reason: format!(
                    "refused before writing: event ({}, seq {}) where ({case_id}, seq {seq}) comes next",
                    e.case_id, e.seq
                ),
            });
        }
    }
    Ok(())
}

/// What an append found in the case row: `CaseNotFound` or `CaseConflict` unless the
/// case exists at `expected` events.
pub(crate) fn check_case_version(case_id: &str, expected: i64, found: Option<i64>) -> Result<()> {
    match found {
        None => Err(StoreError::CaseNotFound(case_id.to_owned())),
        Some(found) if found != expected => {
            Err(StoreError::CaseConflict { case_id: case_id.to_owned(), expected, found })
        }
        Some(_) => Ok(()),
    }
}

/// An incident's element ids as the JSON text array stored in `incidents.element_ids`.
pub(crate) fn ids_json(ids: &[String]) -> String {
    // Through `Value`, whose Display cannot fail, rather than a fallible serializer.
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// Texts by locale as the JSON object stored in `incidents.causes` and
/// `incident_updates.messages`.
pub(crate) fn by_locale_json(texts: &ByLocale) -> String {
    // Through `Value`, whose Display cannot fail, rather than a fallible serializer.
    serde_json::Value::from_iter(texts.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))))
        .to_string()
}

// ---- bulk input preparation ----

/// Rows of `rows` in id order with duplicate ids removed, the last occurrence winning
/// (as if each row had been upserted in turn). Borrowed, because `import_book` takes the
/// book by reference; already sorted input (the usual case) costs one pass.
pub(crate) fn sorted_last_wins<T>(rows: &[T], id: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut refs: Vec<&T> = rows.iter().collect();
    if !refs.is_sorted_by(|a, b| id(a) <= id(b)) {
        // Stable, so equal ids keep their input order and the last one is the newest.
        refs.sort_by(|a, b| id(a).cmp(id(b)));
    }
    let mut out: Vec<&T> = Vec::with_capacity(refs.len());
    for row in refs {
        match out.last_mut() {
            Some(last) if id(last) == id(row) => *last = row,
            _ => out.push(row),
        }
    }
    out
}

/// Sorts credits by key and returns the distinct ones. A key repeated with the same
/// amount and currency is a re-run and is dropped; repeated with a different amount or
/// currency it is a conflict, reported before anything is written.
pub(crate) fn distinct_credits(credits: &mut [CreditRow]) -> Result<Vec<&CreditRow>> {
    credits.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: Vec<&CreditRow> = Vec::with_capacity(credits.len());
    for credit in credits.iter() {
        match out.last() {
            Some(prev) if prev.key == credit.key => {
                check_same_amount(&credit.key, prev.amount_minor, &prev.currency, credit)?;
            }
            _ => out.push(credit),
        }
    }
    Ok(out)
}

/// A credit as the ledger holds it, for the conflict check: key, amount, currency.
pub(crate) type StoredAmount = (String, i64, String);

/// The credits of `distinct` (sorted by key) that are not in `stored` (sorted by key,
/// a subset of their keys). A stored one must hold the same amount and currency: the
/// first that does not is a CreditConflict.
pub(crate) fn unstored_credits<'a>(
    distinct: &[&'a CreditRow],
    stored: &[StoredAmount],
) -> Result<Vec<&'a CreditRow>> {
    let mut stored = stored.iter().peekable();
    let mut out = Vec::with_capacity(distinct.len() - stored.len().min(distinct.len()));
    for credit in distinct {
        match stored.next_if(|(key, _, _)| *key == credit.key) {
            Some((key, minor, currency)) => check_same_amount(key, *minor, currency, credit)?,
            None => out.push(*credit),
        }
    }
    if let Some((key, _, _)) = stored.next() {
        return Err(StoreError::Corrupt {
            table: "credits",
            reason: format!("lookup returned key {key:?} that was not asked for"),
        });
    }
    Ok(out)
}

/// CreditConflict unless `new` has the amount and currency already recorded for `key`.
pub(crate) fn check_same_amount(
    key: &str,
    existing_minor: i64,
    existing_currency: &str,
    new: &CreditRow,
) -> Result<()> {
    if existing_minor == new.amount_minor && existing_currency == new.currency {
        return Ok(());
    }
    Err(StoreError::CreditConflict {
        key: key.to_owned(),
        existing_minor,
        existing_currency: existing_currency.to_owned(),
        new_minor: new.amount_minor,
        new_currency: new.currency.clone(),
    })
}

/// The notices in the order of their keys (duplicates are left for `ON CONFLICT DO
/// NOTHING`), sorted by reference: a fan-out's batch is tens of thousands of notices of
/// some 400 bytes each, and sorting them in place moved them all, through a buffer of
/// half their size on fresh memory.
pub(crate) fn in_key_order(notices: &[NoticeRow]) -> Vec<&NoticeRow> {
    // Stable: among equal keys the first given stays first.
    let mut sorted: Vec<&NoticeRow> = notices.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    sorted
}

/// The notices in the order of their keys, one per key, the first given (as `ON CONFLICT
/// DO NOTHING` would keep it).
pub(crate) fn distinct_notices(notices: &[NoticeRow]) -> Vec<&NoticeRow> {
    let mut distinct = in_key_order(notices);
    distinct.dedup_by(|later, earlier| later.key == earlier.key);
    distinct
}

/// The notices of `distinct` (sorted by key) whose key is not in `stored` (sorted).
pub(crate) fn unstored_notices<'a>(distinct: &[&'a NoticeRow], stored: &[String]) -> Vec<&'a NoticeRow> {
    let mut stored = stored.iter().peekable();
    distinct.iter().filter(|n| stored.next_if(|key| **key == n.key).is_none()).copied().collect()
}

/// Sorts credits by key for the benchmark floor.
pub(crate) fn sort_credits(credits: &mut [CreditRow]) {
    credits.sort_by(|a, b| a.key.cmp(&b.key));
}

/// Order of `claim_due_notices` results (RETURNING gives no order): by key.
pub(crate) fn by_key(a: &NoticeRow, b: &NoticeRow) -> Ordering {
    a.key.cmp(&b.key)
}

// ---- row decoding ----

/// Typed column access over either backend's row, so each row type is decoded by one
/// function shared by both backends.
pub(crate) trait RowGet {
    fn get_text(&self, col: &str) -> sqlx::Result<String>;
    fn get_opt_text(&self, col: &str) -> sqlx::Result<Option<String>>;
    fn get_i64(&self, col: &str) -> sqlx::Result<i64>;
    fn get_opt_i64(&self, col: &str) -> sqlx::Result<Option<i64>>;
    fn get_i32(&self, col: &str) -> sqlx::Result<i32>;
    fn get_i16(&self, col: &str) -> sqlx::Result<i16>;
    fn get_opt_i16(&self, col: &str) -> sqlx::Result<Option<i16>>;
    fn get_opt_i32(&self, col: &str) -> sqlx::Result<Option<i32>>;
    fn get_bool(&self, col: &str) -> sqlx::Result<bool>;
}

macro_rules! impl_row_get {
    ($row:ty) => {
        impl RowGet for $row {
            fn get_text(&self, col: &str) -> sqlx::Result<String> {
                self.try_get(col)
            }
            fn get_opt_text(&self, col: &str) -> sqlx::Result<Option<String>> {
                self.try_get(col)
            }
            fn get_i64(&self, col: &str) -> sqlx::Result<i64> {
                self.try_get(col)
            }
            fn get_opt_i64(&self, col: &str) -> sqlx::Result<Option<i64>> {
                self.try_get(col)
            }
            fn get_i32(&self, col: &str) -> sqlx::Result<i32> {
                self.try_get(col)
            }
            fn get_i16(&self, col: &str) -> sqlx::Result<i16> {
                self.try_get(col)
            }
            fn get_opt_i16(&self, col: &str) -> sqlx::Result<Option<i16>> {
                self.try_get(col)
            }
            fn get_opt_i32(&self, col: &str) -> sqlx::Result<Option<i32>> {
                self.try_get(col)
            }
            fn get_bool(&self, col: &str) -> sqlx::Result<bool> {
                self.try_get(col)
            }
        }
    };
}

impl_row_get!(SqliteRow);
impl_row_get!(PgRow);

/// A row of a named table; every failure names the table and column as Corrupt.
pub(crate) struct Cols<'r, R> {
    row: &'r R,
    table: &'static str,
}

impl<'r, R: RowGet> Cols<'r, R> {
    pub(crate) fn new(row: &'r R, table: &'static str) -> Self {
        Self { row, table }
    }

    fn corrupt(&self, col: &str, e: sqlx::Error) -> StoreError {
        StoreError::Corrupt { table: self.table, reason: format!("column {col}: {e}") }
    }

    pub(crate) fn text(&self, col: &str) -> Result<String> {
        self.row.get_text(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.row.get_opt_text(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn i64(&self, col: &str) -> Result<i64> {
        self.row.get_i64(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn i32(&self, col: &str) -> Result<i32> {
        self.row.get_i32(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn i16(&self, col: &str) -> Result<i16> {
        self.row.get_i16(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        self.row.get_opt_i64(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn opt_i16(&self, col: &str) -> Result<Option<i16>> {
        self.row.get_opt_i16(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn opt_i32(&self, col: &str) -> Result<Option<i32>> {
        self.row.get_opt_i32(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn bool(&self, col: &str) -> Result<bool> {
        self.row.get_bool(col).map_err(|e| self.corrupt(col, e))
    }

    pub(crate) fn count(&self, col: &str) -> Result<u64> {
        let n = self.i64(col)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt {
            table: self.table,
            reason: format!("column {col}: negative count {n}"),
        })
    }

    pub(crate) fn ts(&self, col: &str) -> Result<Timestamp> {
        timestamp(self.table, col, self.i64(col)?)
    }

    pub(crate) fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>> {
        let us = self.row.get_opt_i64(col).map_err(|e| self.corrupt(col, e))?;
        us.map(|us| timestamp(self.table, col, us)).transpose()
    }

    /// A word of a closed set (a status, a channel): `Corrupt`, naming the column and the
    /// value, when the row holds one the code does not know.
    pub(crate) fn word<T>(&self, col: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
        let text = self.text(col)?;
        parse(&text).ok_or_else(|| StoreError::Corrupt {
            table: self.table,
            reason: format!("column {col}: {text:?} is not a value it may hold"),
        })
    }

    pub(crate) fn string_list(&self, col: &str) -> Result<Vec<String>> {
        self.json(col, "a JSON array of strings")
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, col: &str, what: &str) -> Result<T> {
        let json = self.text(col)?;
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
            table: self.table,
            reason: format!("column {col} is not {what}: {e}"),
        })
    }
}

pub(crate) fn plan_from_row<R: RowGet>(row: &R) -> Result<PlanRow> {
    let c = Cols::new(row, "plans");
    Ok(PlanRow {
        plan_id: c.text("plan_id")?,
        name: c.text("name")?,
        monthly_price_minor: c.i64("monthly_price_minor")?,
        currency: c.text("currency")?,
    })
}

pub(crate) fn element_from_row<R: RowGet>(row: &R) -> Result<ElementRow> {
    let c = Cols::new(row, "elements");
    Ok(ElementRow {
        element_id: c.text("element_id")?,
        parent_id: c.opt_text("parent_id")?,
        kind: c.text("kind")?,
        name: c.text("name")?,
    })
}

pub(crate) fn customer_from_row<R: RowGet>(row: &R) -> Result<CustomerRow> {
    let c = Cols::new(row, "customers");
    Ok(CustomerRow {
        customer_id: c.text("customer_id")?.into(),
        name: c.text("name")?,
        email: c.opt_text("email")?,
        phone: c.opt_text("phone")?,
        locale: c.text("locale")?,
        timezone: c.text("timezone")?,
        plan_id: c.text("plan_id")?,
        element_id: c.text("element_id")?,
        device_id: c.opt_text("device_id")?,
        billing_day: c.i16("billing_day")?,
        active_since: c.ts("active_since")?,
        status: c.word("status", |s| CustomerStatus::parse(s).ok())?,
        segment: c.text("segment")?,
        jurisdiction: c.opt_text("jurisdiction")?,
        attributes: c.opt_text("attributes")?,
    })
}

pub(crate) fn incident_from_row<R: RowGet>(row: &R) -> Result<IncidentRow> {
    let c = Cols::new(row, "incidents");
    Ok(IncidentRow {
        incident_id: c.text("incident_id")?.into(),
        element_ids: c.string_list("element_ids")?,
        cause: c.text("cause")?,
        causes: c.json("causes", "a JSON object of texts by locale")?,
        state: c.word("state", IncidentState::parse)?,
        etr: c.opt_ts("etr")?,
        next_update_by: c.opt_ts("next_update_by")?,
        started_at: c.ts("declared_at")?,
        resolved_at: c.opt_ts("resolved_at")?,
        credited_at: c.opt_ts("credited_at")?,
        attributes: c.opt_text("attributes")?,
    })
}

pub(crate) fn update_from_row<R: RowGet>(row: &R) -> Result<UpdateRow> {
    let c = Cols::new(row, "incident_updates");
    Ok(UpdateRow {
        incident_id: c.text("incident_id")?.into(),
        seq: c.i64("seq")?,
        at: c.ts("at")?,
        kind: c.text("kind")?,
        state: c.word("state", IncidentState::parse)?,
        etr: c.opt_ts("etr")?,
        next_update_by: c.opt_ts("next_update_by")?,
        message: c.text("message")?,
        messages: c.json("messages", "a JSON object of texts by locale")?,
        trigger_key: c.opt_text("trigger_key")?,
        fanned_out: c.bool("fanned_out")?,
    })
}

pub(crate) fn notice_from_row<R: RowGet>(row: &R) -> Result<NoticeRow> {
    let c = Cols::new(row, "outbox");
    Ok(NoticeRow {
        key: c.text("key")?,
        customer_id: c.text("customer_id")?.into(),
        about: c.text("about")?,
        kind: c.text("kind")?,
        seq: c.i64("seq")?,
        channel: c.word("channel", Channel::parse)?,
        recipient: c.text("recipient")?,
        locale: c.text("locale")?,
        subject: c.text("subject")?,
        body: c.text("body")?,
        status: c.word("status", NoticeStatus::parse)?,
        attempts: c.i32("attempts")?,
        next_attempt_at: c.ts("next_attempt_at")?,
        last_error: c.opt_text("last_error")?,
        created_at: c.ts("created_at")?,
        sent_at: c.opt_ts("sent_at")?,
        reason: c.opt_text("reason")?,
        provider_id: c.opt_text("provider_id")?,
        content_sha256: c.opt_text("content_sha256")?,
    })
}

pub(crate) fn notice_event_from_row<R: RowGet>(row: &R) -> Result<crate::NoticeEventRow> {
    let c = Cols::new(row, "notice_events");
    Ok(crate::NoticeEventRow {
        key: c.text("key")?,
        at: c.ts("at")?,
        status: c.text("status")?,
        detail: c.opt_text("detail")?,
    })
}

pub(crate) fn contact_point_from_row<R: RowGet>(row: &R) -> Result<crate::ContactPointRow> {
    let c = Cols::new(row, "contact_points");
    Ok(crate::ContactPointRow {
        channel: c.text("channel")?,
        recipient: c.text("recipient")?,
        hard_failures: c.i32("hard_failures")?,
        quarantined_at: c.opt_ts("quarantined_at")?,
        last_error: c.opt_text("last_error")?,
        updated_at: c.ts("updated_at")?,
    })
}

pub(crate) fn preferences_from_row<R: RowGet>(row: &R) -> Result<crate::PreferencesRow> {
    let c = Cols::new(row, "preferences");
    Ok(crate::PreferencesRow {
        customer_id: c.text("customer_id")?.into(),
        doc: c.text("doc")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// The history entry a delivery outcome appends: (status, detail).
pub(crate) fn outcome_event(outcome: &crate::DeliveryOutcome) -> (&'static str, Option<&str>) {
    use crate::DeliveryOutcome::*;
    match outcome {
        Sent { provider_id, .. } => ("sent", provider_id.as_deref()),
        Retry { error, .. } => ("retry", Some(error.as_str())),
        Failed { error, .. } => ("failed", Some(error.as_str())),
        Suppressed { reason, .. } => ("suppressed", Some(reason.as_str())),
    }
}

/// The status a channel report moves a sent notice to, and the history detail.
pub(crate) fn report_status(report: &crate::ChannelReport) -> (&'static str, Option<&str>) {
    match report {
        crate::ChannelReport::Delivered => ("delivered", None),
        crate::ChannelReport::Failed { detail } => ("failed", Some(detail.as_str())),
    }
}

pub(crate) fn credit_from_row<R: RowGet>(row: &R) -> Result<CreditRow> {
    let c = Cols::new(row, "credits");
    Ok(CreditRow {
        key: c.text("key")?,
        customer_id: c.text("customer_id")?.into(),
        source_event: c.text("source_event")?,
        policy_id: c.text("policy_id")?,
        policy_version: c.i64("policy_version")?,
        amount_minor: c.i64("amount_minor")?,
        currency: c.text("currency")?,
        statement: c.text("statement")?,
        explanation: c.text("explanation")?,
        lines_json: c.text("lines_json")?,
        created_at: c.ts("created_at")?,
    })
}

pub(crate) fn token_from_row<R: RowGet>(row: &R) -> Result<TokenRow> {
    let c = Cols::new(row, "tokens");
    Ok(TokenRow {
        token_hash: c.text("token_hash")?,
        token_id: c.text("token_id")?,
        scope: c.text("scope")?,
        label: c.text("label")?,
        created_at: c.ts("created_at")?,
        agent_id: c.opt_text("agent_id")?,
        expires_at: c.opt_ts("expires_at")?,
        revoked_at: c.opt_ts("revoked_at")?,
        last_used_at: c.opt_ts("last_used_at")?,
    })
}

pub(crate) fn agent_from_row<R: RowGet>(row: &R) -> Result<AgentRow> {
    let c = Cols::new(row, "agents");
    Ok(AgentRow {
        agent_id: c.text("agent_id")?,
        name: c.text("name")?,
        role: c.text("role")?,
        lead_id: c.opt_text("lead_id")?,
        active: c.bool("active")?,
        updated_at: c.ts("updated_at")?,
    })
}

pub(crate) fn case_from_row<R: RowGet>(row: &R) -> Result<CaseRow> {
    let c = Cols::new(row, "cases");
    Ok(CaseRow {
        case_id: c.text("case_id")?.into(),
        customer_id: c.text("customer_id")?.into(),
        owner: c.text("owner")?,
        status: c.word("status", CaseStatus::parse)?,
        source: c.text("source")?,
        source_id: c.opt_text("source_id")?,
        source_key: c.opt_text("source_key")?,
        first_contact_at: c.ts("first_contact_at")?,
        opened_at: c.ts("opened_at")?,
        updated_at: c.ts("updated_at")?,
        version: c.i64("version")?,
        notified_version: c.i64("notified_version")?,
        fixed_at: c.opt_ts("fixed_at")?,
        followed_up: c.bool("followed_up")?,
    })
}

pub(crate) fn notice_reach_from_row<R: RowGet>(row: &R) -> Result<crate::NoticeReach> {
    let c = Cols::new(row, "outbox");
    Ok(crate::NoticeReach {
        customers_told: c.count("customers")?,
        first_sent_at: c.opt_ts("first_sent")?,
        all_told_by: c.opt_ts("all_told_by")?,
    })
}

pub(crate) fn contact_from_row<R: RowGet>(row: &R) -> Result<crate::ContactRow> {
    let c = Cols::new(row, "contacts");
    Ok(crate::ContactRow {
        contact_id: c.i64("contact_id")?,
        customer_id: c.text("customer_id")?.into(),
        at: c.ts("at")?,
        channel: c.text("channel")?,
        summary: c.text("summary")?,
        by: c.text("by")?,
        incident_id: c.opt_text("incident_id")?.map(Into::into),
        told_before: c.bool("told_before")?,
    })
}

pub(crate) fn case_event_from_row<R: RowGet>(row: &R) -> Result<CaseEventRow> {
    let c = Cols::new(row, "case_events");
    Ok(CaseEventRow {
        case_id: c.text("case_id")?.into(),
        seq: c.i64("seq")?,
        at: c.ts("at")?,
        by: c.text("by")?,
        kind: c.text("kind")?,
        doc: c.text("doc")?,
    })
}

pub(crate) fn notice_count_from_row<R: RowGet>(row: &R) -> Result<crate::NoticeCount> {
    let c = Cols::new(row, "outbox");
    Ok(crate::NoticeCount { kind: c.text("kind")?, status: c.text("status")?, count: c.count("n")? })
}

pub(crate) fn appointment_from_row<R: RowGet>(row: &R) -> Result<AppointmentRow> {
    let c = Cols::new(row, "appointments");
    Ok(AppointmentRow {
        reference: c.text("reference")?,
        customer_id: c.text("customer_id")?.into(),
        technician_id: c.opt_text("technician_id")?,
        owner: c.text("owner")?,
        window_start: c.ts("window_start")?,
        window_end: c.ts("window_end")?,
        status: c.word("status", AppointmentStatus::parse)?,
        booked_at: c.ts("booked_at")?,
        arrived_at: c.opt_ts("arrived_at")?,
        completed_at: c.opt_ts("completed_at")?,
        cancelled_at: c.opt_ts("cancelled_at")?,
        cancel_notice_secs: c.opt_i64("cancel_notice_secs")?,
        missed_at: c.opt_ts("missed_at")?,
        rebooked_from: c.opt_text("rebooked_from")?,
        checked_at: c.opt_ts("checked_at")?,
        version: c.i64("version")?,
    })
}

pub(crate) fn appointment_action_from_row<R: RowGet>(row: &R) -> Result<crate::AppointmentActionRow> {
    let c = Cols::new(row, "appointment_actions");
    Ok(crate::AppointmentActionRow {
        reference: c.text("reference")?,
        version: c.i64("version")?,
        action: c.text("action")?,
        actor: c.text("actor")?,
        at: c.ts("at")?,
    })
}

pub(crate) fn hold_from_row<R: RowGet>(row: &R) -> Result<HoldRow> {
    let c = Cols::new(row, "appointment_holds");
    Ok(HoldRow {
        for_reference: c.text("for_reference")?,
        technician_id: c.text("technician_id")?,
        window_start: c.ts("window_start")?,
        window_end: c.ts("window_end")?,
        until: c.ts("until")?,
    })
}

pub(crate) fn appointment_counts_from_row<R: RowGet>(row: &R) -> Result<AppointmentCounts> {
    let c = Cols::new(row, "appointments");
    Ok(AppointmentCounts {
        ended: c.count("ended")?,
        missed: c.count("missed")?,
        late_cancelled: c.count("late_cancelled")?,
    })
}

pub(crate) fn cancellation_from_row<R: RowGet>(row: &R) -> Result<CancellationRow> {
    let c = Cols::new(row, "cancellations");
    Ok(CancellationRow {
        reference: c.text("reference")?,
        customer_id: c.text("customer_id")?.into(),
        requested_at: c.ts("requested_at")?,
        effective_at: c.ts("effective_at")?,
        channel: c.text("channel")?,
        reason: c.opt_text("reason")?,
        retention_offer: c.opt_text("retention_offer")?,
        final_bill_minor: c.i64("final_bill_minor")?,
        currency: c.text("currency")?,
        final_bill: c.text("final_bill")?,
        steps: c.i32("steps")?,
        audit: c.text("audit")?,
        clicks: c.opt_i32("clicks")?,
    })
}

pub(crate) fn journey_steps_from_row<R: RowGet>(row: &R) -> Result<JourneySteps> {
    let c = Cols::new(row, "signups");
    Ok(JourneySteps {
        signups: c.count("signups")?,
        signup_steps_max: c.i32("signup_steps_max")?,
        signup_steps_total: c.count("signup_steps_total")?,
        cancellations: c.count("cancellations")?,
        cancel_steps_max: c.i32("cancel_steps_max")?,
        cancel_steps_total: c.count("cancel_steps_total")?,
        signups_clicked: c.count("signups_clicked")?,
        signup_clicks_max: c.opt_i32("signup_clicks_max")?,
        cancellations_clicked: c.count("cancellations_clicked")?,
        cancel_clicks_max: c.opt_i32("cancel_clicks_max")?,
    })
}

pub(crate) fn survey_from_row<R: RowGet>(row: &R) -> Result<SurveyDecisionRow> {
    let c = Cols::new(row, "survey_decisions");
    Ok(SurveyDecisionRow {
        subject_key: c.text("subject_key")?,
        customer_id: c.text("customer_id")?.into(),
        subject: c.text("subject")?,
        case_id: c.opt_text("case_id")?.map(Into::into),
        incident_id: c.opt_text("incident_id")?.map(Into::into),
        decision: c.text("decision")?,
        reason: c.opt_text("reason")?,
        decided_at: c.ts("decided_at")?,
        survey_id: c.opt_text("survey_id")?,
        send_at: c.opt_ts("send_at")?,
        expires_at: c.opt_ts("expires_at")?,
        scale: c.opt_text("scale")?,
        sent_at: c.opt_ts("sent_at")?,
        answered_at: c.opt_ts("answered_at")?,
        score: c.opt_i16("score")?,
    })
}

pub(crate) fn decision_count_from_row<R: RowGet>(row: &R) -> Result<(String, Option<String>, u64)> {
    let c = Cols::new(row, "survey_decisions");
    Ok((c.text("decision")?, c.opt_text("reason")?, c.count("n")?))
}

/// A resolved incident: (id, resolved_at).
pub(crate) fn resolved_from_row<R: RowGet>(row: &R) -> Result<(String, Timestamp)> {
    let c = Cols::new(row, "incidents");
    Ok((c.text("incident_id")?, c.ts("resolved_at")?))
}

pub(crate) fn case_timing_from_row<R: RowGet>(row: &R) -> Result<CaseTiming> {
    let c = Cols::new(row, "cases");
    Ok(CaseTiming {
        case_id: c.text("case_id")?.into(),
        source: c.text("source")?,
        first_contact_at: c.ts("first_contact_at")?,
        opened_at: c.ts("opened_at")?,
        first_response_at: c.opt_ts("first_response_at")?,
        fixed_at: c.opt_ts("fixed_at")?,
    })
}

// ---- binding wide rows ----
//
// Macros rather than functions: the two backends' query types differ, but the bind
// chains are the same text, so they are written once, beside each other, and cannot
// drift apart between the backends.

/// Binds a new appointment, numbered `number`, in the order of `sql::INSERT_APPOINTMENT`.
macro_rules! bind_new_appointment {
    ($q:expr, $row:expr, $number:expr) => {{
        use $crate::common::{micros, opt_micros};
        let r: &$crate::AppointmentRow = $row;
        $q.bind(r.reference.as_str())
            .bind($number)
            .bind(r.customer_id.as_str())
            .bind(r.technician_id.as_deref())
            .bind(r.owner.as_str())
            .bind(micros(r.window_start))
            .bind(micros(r.window_end))
            .bind(r.status.as_str())
            .bind(micros(r.booked_at))
            .bind(opt_micros(r.arrived_at))
            .bind(opt_micros(r.completed_at))
            .bind(opt_micros(r.cancelled_at))
            .bind(r.cancel_notice_secs)
            .bind(opt_micros(r.missed_at))
            .bind(r.rebooked_from.as_deref())
            .bind(opt_micros(r.checked_at))
    }};
}
pub(crate) use bind_new_appointment;

/// Binds an appointment update in the order of `sql::UPDATE_APPOINTMENT`.
macro_rules! bind_appointment_update {
    ($q:expr, $row:expr) => {{
        use $crate::common::{micros, opt_micros};
        let r: &$crate::AppointmentRow = $row;
        $q.bind(r.reference.as_str())
            .bind(r.version)
            .bind(r.owner.as_str())
            .bind(r.status.as_str())
            .bind(opt_micros(r.arrived_at))
            .bind(opt_micros(r.completed_at))
            .bind(opt_micros(r.cancelled_at))
            .bind(r.cancel_notice_secs)
            .bind(opt_micros(r.missed_at))
            .bind(opt_micros(r.checked_at))
            .bind(r.customer_id.as_str())
            .bind(r.technician_id.as_deref())
            .bind(micros(r.window_start))
            .bind(micros(r.window_end))
            .bind(micros(r.booked_at))
            .bind(r.rebooked_from.as_deref())
    }};
}
pub(crate) use bind_appointment_update;

/// Binds a hold in the order of `sql::INSERT_HOLD`.
macro_rules! bind_hold {
    ($q:expr, $hold:expr) => {{
        use $crate::common::micros;
        let h: &$crate::HoldRow = $hold;
        $q.bind(h.for_reference.as_str())
            .bind(h.technician_id.as_str())
            .bind(micros(h.window_start))
            .bind(micros(h.window_end))
            .bind(micros(h.until))
    }};
}
pub(crate) use bind_hold;

/// Binds a customer in [`CUSTOMER_COLS`] order (`sql::INSERT_CUSTOMER`).
macro_rules! bind_customer {
    ($q:expr, $row:expr) => {{
        use $crate::common::micros;
        let r: &$crate::CustomerRow = $row;
        $q.bind(r.customer_id.as_str())
            .bind(r.name.as_str())
            .bind(r.email.as_deref())
            .bind(r.phone.as_deref())
            .bind(r.locale.as_str())
            .bind(r.timezone.as_str())
            .bind(r.plan_id.as_str())
            .bind(r.element_id.as_str())
            .bind(r.device_id.as_deref())
            .bind(r.billing_day)
            .bind(micros(r.active_since))
            .bind(r.status.as_str())
            .bind(r.segment.as_str())
            .bind(r.jurisdiction.as_deref())
            .bind(r.attributes.as_deref())
    }};
}
pub(crate) use bind_customer;

/// Binds a cancellation under `reference` in the order of `sql::INSERT_CANCELLATION`.
macro_rules! bind_cancellation {
    ($q:expr, $row:expr, $reference:expr) => {{
        use $crate::common::micros;
        let r: &$crate::CancellationRow = $row;
        $q.bind($reference)
            .bind(r.customer_id.as_str())
            .bind(micros(r.requested_at))
            .bind(micros(r.effective_at))
            .bind(r.channel.as_str())
            .bind(r.reason.as_deref())
            .bind(r.retention_offer.as_deref())
            .bind(r.final_bill_minor)
            .bind(r.currency.as_str())
            .bind(r.final_bill.as_str())
            .bind(r.steps)
            .bind(r.audit.as_str())
            .bind(r.clicks)
    }};
}
pub(crate) use bind_cancellation;

/// Binds a survey decision with `survey_id` in the order of `sql::INSERT_DECISION`.
macro_rules! bind_survey_decision {
    ($q:expr, $row:expr, $survey_id:expr) => {{
        use $crate::common::{micros, opt_micros};
        let r: &$crate::SurveyDecisionRow = $row;
        $q.bind(r.subject_key.as_str())
            .bind(r.customer_id.as_str())
            .bind(r.subject.as_str())
            .bind(r.case_id.as_deref())
            .bind(r.incident_id.as_deref())
            .bind(r.decision.as_str())
            .bind(r.reason.as_deref())
            .bind(micros(r.decided_at))
            .bind($survey_id)
            .bind(opt_micros(r.send_at))
            .bind(opt_micros(r.expires_at))
            .bind(r.scale.as_deref())
            .bind(opt_micros(r.sent_at))
            .bind(opt_micros(r.answered_at))
            .bind(r.score)
    }};
}
pub(crate) use bind_survey_decision;

/// Decodes every row with `f`, stopping at the first corrupt one.
pub(crate) fn decode_all<R, T>(rows: &[R], f: fn(&R) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

pub(crate) fn incident_alert_from_row<R: RowGet>(row: &R) -> Result<IncidentAlert> {
    let c = Cols::new(row, "incident_alerts");
    Ok(IncidentAlert {
        source_key: c.text("source_key")?,
        incident_id: c.text("incident_id")?.into(),
        resolved_at: c.opt_ts("resolved_at")?,
    })
}

pub(crate) fn ignored_alert_from_row<R: RowGet>(row: &R) -> Result<IgnoredAlert> {
    let c = Cols::new(row, "ignored_alerts");
    Ok(IgnoredAlert {
        fingerprint: c.text("fingerprint")?,
        labels: c.text("labels")?,
        reason: c.text("reason")?,
        first_at: c.ts("first_at")?,
        last_at: c.ts("last_at")?,
        times: c.count("times")?,
    })
}

pub(crate) fn source_from_row<R: RowGet>(row: &R) -> Result<IncidentSource> {
    let c = Cols::new(row, "incident_sources");
    Ok(IncidentSource {
        source_key: c.text("source_key")?,
        incident_id: c.text("incident_id")?.into(),
        merged_into: c.opt_text("merged_into")?,
    })
}

pub(crate) fn impact_from_row<R: RowGet>(row: &R) -> Result<ImpactRow> {
    let c = Cols::new(row, "impacts");
    Ok(ImpactRow {
        incident_id: c.text("incident_id")?.into(),
        customer_id: c.text("customer_id")?.into(),
        presumed: c.bool("presumed")?,
        affected_at: c.ts("affected_at")?,
        back_at: c.opt_ts("back_at")?,
        follow_up: c.bool("follow_up")?,
        downtime: downtime_from_json(&c.text("downtime")?)?,
        notified: c.i16("notified")?,
    })
}

pub(crate) fn device_event_from_row<R: RowGet>(row: &R) -> Result<DeviceEventRow> {
    let c = Cols::new(row, "device_events");
    Ok(DeviceEventRow {
        device_id: c.text("device_id")?,
        at: c.ts("at")?,
        state: c.text("state")?,
        reason: c.opt_text("reason")?,
    })
}

/// A logged event with its place in the log.
pub(crate) fn placed_device_event_from_row<R: RowGet>(row: &R) -> Result<(i64, DeviceEventRow)> {
    Ok((Cols::new(row, "device_events").i64("seq")?, device_event_from_row(row)?))
}

/// Intervals as the JSON stored in `impacts.downtime`: `[[start_us, end_us], ...]`.
pub(crate) fn downtime_json(intervals: &[(Timestamp, Timestamp)]) -> String {
    let pairs: Vec<[i64; 2]> = intervals.iter().map(|(s, e)| [micros(*s), micros(*e)]).collect();
    serde_json::Value::from(pairs.iter().map(|p| serde_json::Value::from(p.to_vec())).collect::<Vec<_>>())
        .to_string()
}

fn downtime_from_json(json: &str) -> Result<Vec<(Timestamp, Timestamp)>> {
    let corrupt = |reason: String| StoreError::Corrupt { table: "impacts", reason };
    let pairs: Vec<[i64; 2]> = serde_json::from_str(json)
        .map_err(|e| corrupt(format!("column downtime is not a JSON array of [start, end] pairs: {e}")))?;
    pairs
        .into_iter()
        .map(|[s, e]| Ok((timestamp("impacts", "downtime", s)?, timestamp("impacts", "downtime", e)?)))
        .collect()
}

/// Impacts sorted by (incident, customer), the last of a repeated key winning.
pub(crate) fn distinct_impacts(impacts: &mut [ImpactRow]) -> Vec<&ImpactRow> {
    impacts.sort_by(|a, b| (&a.incident_id, &a.customer_id).cmp(&(&b.incident_id, &b.customer_id)));
    let mut out: Vec<&ImpactRow> = Vec::with_capacity(impacts.len());
    for row in impacts.iter() {
        match out.last_mut() {
            Some(last) if (&last.incident_id, &last.customer_id) == (&row.incident_id, &row.customer_id) => {
                *last = row
            }
            _ => out.push(row),
        }
    }
    out
}

/// Raises sorted by (incident, customer), one per impact, at the highest stage asked.
pub(crate) fn distinct_raises<'a>(raises: &[StageRaise<'a>]) -> Vec<StageRaise<'a>> {
    let mut sorted = raises.to_vec();
    sorted.sort_by(|a, b| (a.incident_id, a.customer_id).cmp(&(b.incident_id, b.customer_id)));
    let mut out: Vec<StageRaise<'a>> = Vec::with_capacity(sorted.len());
    for raise in sorted {
        match out.last_mut() {
            Some(last) if (last.incident_id, last.customer_id) == (raise.incident_id, raise.customer_id) => {
                last.stage = last.stage.max(raise.stage)
            }
            _ => out.push(raise),
        }
    }
    out
}

/// Device events sorted by their log key, duplicates dropped.
pub(crate) fn distinct_device_events(events: &mut [DeviceEventRow]) -> Vec<&DeviceEventRow> {
    events.sort_by(|a, b| (a.at, &a.device_id, &a.state).cmp(&(b.at, &b.device_id, &b.state)));
    let mut out: Vec<&DeviceEventRow> = Vec::with_capacity(events.len());
    for row in events.iter() {
        if out.last().is_none_or(|last| {
            (last.at, &last.device_id, &last.state) != (row.at, &row.device_id, &row.state)
        }) {
            out.push(row);
        }
    }
    out
}

/// When a delivery outcome happened.
pub(crate) fn outcome_at(outcome: &crate::DeliveryOutcome) -> Timestamp {
    use crate::DeliveryOutcome::*;
    match outcome {
        Sent { at, .. } | Retry { at, .. } | Failed { at, .. } | Suppressed { at, .. } => *at,
    }
}

/// A delivery outcome that found its claim gone is not an error, but worth a warning.
pub(crate) fn warn_unrecorded(key: &str, attempt: i32) {
    tracing::warn!(key, attempt, "delivery not recorded: the notice was claimed again or is not sending");
}

pub(crate) fn report_event(
    key: &str,
    status: &str,
    detail: Option<&str>,
    at: Timestamp,
) -> crate::NoticeEventRow {
    crate::NoticeEventRow {
        key: key.to_owned(),
        at,
        status: status.to_owned(),
        detail: detail.map(str::to_owned),
    }
}

/// One `suppressed` history entry per key, with the reason as its detail.
pub(crate) fn suppression_events(keys: &[String], reason: &str, at: Timestamp) -> Vec<crate::NoticeEventRow> {
    keys.iter().map(|key| report_event(key, "suppressed", Some(reason), at)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credit(key: &str, minor: i64, currency: &str) -> CreditRow {
        CreditRow {
            key: key.into(),
            customer_id: "c".into(),
            source_event: "e".into(),
            policy_id: "p".into(),
            policy_version: 1,
            amount_minor: minor,
            currency: currency.into(),
            statement: "2024-01-01".into(),
            explanation: String::new(),
            lines_json: "[]".into(),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn distinct_credits_sorts_and_drops_identical_repeats() {
        let mut rows = vec![credit("b", 1, "EUR"), credit("a", 2, "EUR"), credit("b", 1, "EUR")];
        let keys: Vec<&str> = distinct_credits(&mut rows).unwrap().iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn distinct_credits_refuses_a_repeat_with_another_amount() {
        let mut rows = vec![credit("b", 1, "EUR"), credit("b", 1, "USD")];
        match distinct_credits(&mut rows) {
            Err(StoreError::CreditConflict { key, existing_currency, new_currency, .. }) => {
                assert_eq!(
                    (key.as_str(), existing_currency.as_str(), new_currency.as_str()),
                    ("b", "EUR", "USD")
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn unstored_credits_skips_stored_and_checks_their_amounts() {
        let rows = [credit("a", 1, "EUR"), credit("b", 2, "EUR"), credit("c", 3, "EUR")];
        let distinct: Vec<&CreditRow> = rows.iter().collect();
        let stored = [("b".to_owned(), 2, "EUR".to_owned())];
        let keys: Vec<&str> =
            unstored_credits(&distinct, &stored).unwrap().iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
        let stored = [("c".to_owned(), 4, "EUR".to_owned())];
        match unstored_credits(&distinct, &stored) {
            Err(StoreError::CreditConflict { key, existing_minor: 4, new_minor: 3, .. }) => {
                assert_eq!(key, "c")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn sorted_last_wins_keeps_the_last_duplicate() {
        let rows = [("b", 1), ("a", 2), ("b", 3)];
        let out = sorted_last_wins(&rows, |r| r.0);
        assert_eq!(out, [&("a", 2), &("b", 3)]);
    }

    #[test]
    fn incident_ids_are_zero_padded() {
        assert_eq!(incident_id(1), "INC-000001");
        assert_eq!(incident_id(1_234_567), "INC-1234567");
        assert_eq!(case_id(42), "CASE-000042");
    }
}
