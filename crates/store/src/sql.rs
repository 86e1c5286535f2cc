//! SQL text that is identical in both backends. SQLite accepts PostgreSQL's `$n`
//! placeholders, so one string serves both; what differs (locking, bulk paths) lives in
//! the backend modules.

use crate::{CaseFilter, CreditFilter};

pub(crate) const SELECT_PLANS: &str = "SELECT * FROM plans ORDER BY plan_id";
pub(crate) const SELECT_ELEMENTS: &str = "SELECT * FROM elements ORDER BY element_id";
pub(crate) const SELECT_CUSTOMERS: &str = "SELECT * FROM customers ORDER BY customer_id";
pub(crate) const SELECT_CUSTOMER: &str = "SELECT * FROM customers WHERE customer_id = $1";
pub(crate) const BOOK_COUNTS: &str = "SELECT (SELECT COUNT(*) FROM plans) AS plans, \
     (SELECT COUNT(*) FROM elements) AS elements, \
     (SELECT COUNT(*) FROM customers) AS customers";

/// Hands out the next incident number. The row write makes concurrent callers queue
/// behind each other until commit, so numbers are unique and, as a rolled back insert
/// also rolls back its increment, without gaps.
pub(crate) const NEXT_INCIDENT_NUMBER: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'incident' RETURNING value";
pub(crate) const INSERT_INCIDENT: &str = "INSERT INTO incidents \
     (incident_id, element_ids, cause, state, etr, next_update_by, declared_at, resolved_at, credited_at, causes, \
      attributes) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub(crate) const INSERT_UPDATE: &str = "INSERT INTO incident_updates \
     (incident_id, seq, at, kind, state, etr, next_update_by, message, trigger_key, messages, fanned_out) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, FALSE)";
pub(crate) const SELECT_INCIDENT: &str = "SELECT * FROM incidents WHERE incident_id = $1";
pub(crate) const SELECT_INCIDENTS: &str = "SELECT * FROM incidents ORDER BY declared_at, incident_id";
/// What makes an incident open: not resolved, and not merged into a wider one (it is part
/// of that one). Written as the partial index `incidents_open` is, so it is used.
macro_rules! open_only {
    () => {
        "state <> 'resolved' AND merged_into IS NULL"
    };
}
/// Open incidents (see [`open_only`]), oldest first.
pub(crate) const SELECT_OPEN_INCIDENTS: &str =
    concat!("SELECT * FROM incidents WHERE ", open_only!(), " ORDER BY declared_at, incident_id");
/// A page of incidents, newest first, after the cursor `$1` (an incident id, or NULL for
/// the first page); `$2` is the page size. `$filter` narrows it further.
macro_rules! incidents_page {
    ($filter:expr) => {
        concat!(
            "SELECT * FROM incidents \
             WHERE ($1 IS NULL OR (declared_at, incident_id) < \
                   (SELECT declared_at, incident_id FROM incidents WHERE incident_id = $1)) ",
            $filter,
            " ORDER BY declared_at DESC, incident_id DESC LIMIT $2"
        )
    };
}
pub(crate) const INCIDENTS_PAGE: &str = incidents_page!("");
pub(crate) const OPEN_INCIDENTS_PAGE: &str = incidents_page!(concat!("AND ", open_only!()));
pub(crate) const COUNT_TRIGGER: &str =
    "SELECT COUNT(*) FROM incident_updates WHERE incident_id = $1 AND trigger_key = $2";
pub(crate) const NEXT_SEQ: &str =
    "SELECT COALESCE(MAX(seq), -1) + 1 FROM incident_updates WHERE incident_id = $1";
pub(crate) const APPLY_UPDATE: &str = "UPDATE incidents SET state = $2, etr = $3, next_update_by = $4, \
     resolved_at = CASE WHEN $2 = 'resolved' THEN $5 ELSE resolved_at END \
     WHERE incident_id = $1";
pub(crate) const SET_ELEMENTS: &str = "UPDATE incidents SET element_ids = $2 WHERE incident_id = $1";
pub(crate) const WIDEN_INCIDENT: &str = "UPDATE incidents SET element_ids = $2, \
     causes = CASE WHEN cause = $4 THEN $5 ELSE causes END, cause = CASE WHEN cause = $4 THEN $3 ELSE cause END \
     WHERE incident_id = $1 AND resolved_at IS NULL";
pub(crate) const SET_CAUSE: &str = "UPDATE incidents SET cause = $2, causes = $3 WHERE incident_id = $1";
pub(crate) const SELECT_UPDATES: &str = "SELECT * FROM incident_updates WHERE incident_id = $1 ORDER BY seq";
pub(crate) const PENDING_FANOUT: &str =
    "SELECT * FROM incident_updates WHERE NOT fanned_out ORDER BY at, incident_id, seq";
pub(crate) const MARK_FANNED_OUT: &str =
    "UPDATE incident_updates SET fanned_out = TRUE WHERE incident_id = $1 AND seq = $2";
pub(crate) const INSERT_SOURCE: &str =
    "INSERT INTO incident_sources (source_key, incident_id, merged_into) VALUES ($1, $2, NULL)";
pub(crate) const SOURCE_INCIDENT: &str = "SELECT incident_id FROM incident_sources WHERE source_key = $1";
pub(crate) const SELECT_SOURCES: &str = "SELECT * FROM incident_sources ORDER BY incident_id";
pub(crate) const REKEY_SOURCE: &str = "UPDATE incident_sources SET source_key = $2 WHERE source_key = $1";
pub(crate) const MARK_MERGED: &str = "UPDATE incident_sources SET merged_into = $2 WHERE incident_id = $1";
/// [`MARK_MERGED`]'s twin on the incident's own row; the two go together in one transaction.
pub(crate) const MARK_INCIDENT_MERGED: &str = "UPDATE incidents SET merged_into = $2 WHERE incident_id = $1";
/// [`MARK_MERGED`] and [`MARK_INCIDENT_MERGED`] for many incidents at once (`$1`, a JSON
/// array of ids): a storm's widest incident absorbs tens of thousands in one pass.
pub(crate) const MARK_ALL_MERGED_SQLITE: [&str; 2] = [
    "UPDATE incident_sources SET merged_into = $2 WHERE incident_id IN (SELECT value FROM json_each($1))",
    "UPDATE incidents SET merged_into = $2 WHERE incident_id IN (SELECT value FROM json_each($1))",
];
/// [`MARK_ALL_MERGED_SQLITE`] for PostgreSQL (`$1`, an array of ids).
pub(crate) const MARK_ALL_MERGED_POSTGRES: [&str; 2] = [
    "UPDATE incident_sources SET merged_into = $2 WHERE incident_id = ANY($1)",
    "UPDATE incidents SET merged_into = $2 WHERE incident_id = ANY($1)",
];
/// The sources of every open incident (see [`open_only`]).
pub(crate) const OPEN_SOURCES: &str = concat!(
    "SELECT * FROM incident_sources WHERE incident_id IN (SELECT incident_id FROM incidents WHERE ",
    open_only!(),
    ") ORDER BY incident_id, source_key"
);
pub(crate) const SOURCES_OF: &str =
    "SELECT * FROM incident_sources WHERE incident_id = $1 ORDER BY source_key";
pub(crate) const JOIN_ALERT: &str = "INSERT INTO incident_alerts (source_key, incident_id, resolved_at) \
     VALUES ($1, $2, NULL) ON CONFLICT (source_key) DO NOTHING";
pub(crate) const SELECT_INCIDENT_ALERTS: &str = "SELECT * FROM incident_alerts ORDER BY source_key";
pub(crate) const END_ALERT: &str =
    "UPDATE incident_alerts SET resolved_at = $2 WHERE source_key = $1 AND resolved_at IS NULL";
pub(crate) const ALERTS_STILL_FIRING: &str = "SELECT COUNT(*) FROM incident_alerts WHERE resolved_at IS NULL \
     AND incident_id = (SELECT incident_id FROM incident_alerts WHERE source_key = $1)";
pub(crate) const RECORD_IGNORED_ALERT: &str = "INSERT INTO ignored_alerts \
     (fingerprint, labels, reason, first_at, last_at, times) VALUES ($1, $2, $3, $4, $5, 1) \
     ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, reason = excluded.reason, \
     last_at = excluded.last_at, times = ignored_alerts.times + 1";
/// Keeps the `$1` most recently seen (and any seen at the same instant as the last of them).
pub(crate) const TRIM_IGNORED_ALERTS: &str = "DELETE FROM ignored_alerts WHERE last_at < \
     (SELECT MIN(last_at) FROM (SELECT last_at FROM ignored_alerts ORDER BY last_at DESC LIMIT $1) AS kept)";
pub(crate) const SELECT_IGNORED_ALERTS: &str =
    "SELECT * FROM ignored_alerts ORDER BY last_at DESC, fingerprint LIMIT $1";
pub(crate) const SELECT_IMPACTS: &str = "SELECT * FROM impacts WHERE incident_id = $1 ORDER BY customer_id";
/// One customer's impacts, from `impacts_customer`.
pub(crate) const SELECT_CUSTOMER_IMPACTS: &str =
    "SELECT * FROM impacts WHERE customer_id = $1 ORDER BY incident_id";
pub(crate) const SELECT_DEVICE_EVENTS: &str =
    "SELECT * FROM device_events WHERE at >= $1 ORDER BY at, device_id, state LIMIT $2";
pub(crate) const SELECT_DEVICE_EVENTS_AFTER: &str = "SELECT * FROM device_events \
     WHERE at >= $1 AND (at, device_id, state) > ($3, $4, $5) ORDER BY at, device_id, state LIMIT $2";
pub(crate) const DEVICE_EVENTS_END: &str = "SELECT COALESCE(MAX(seq), 0) FROM device_events";
pub(crate) const DEVICE_EVENTS_PLACED_AFTER: &str =
    "SELECT * FROM device_events WHERE seq > $1 ORDER BY seq LIMIT $2";
pub(crate) const PRUNE_DEVICE_EVENTS: &str = "DELETE FROM device_events WHERE at < $1";
pub(crate) const UNCREDITED_RESOLVED: &str = "SELECT * FROM incidents \
     WHERE state = 'resolved' AND credited_at IS NULL ORDER BY resolved_at, incident_id";
pub(crate) const MARK_CREDITED: &str = "UPDATE incidents SET credited_at = $2 WHERE incident_id = $1";

/// The order in which notices were decided: when each was queued, then by kind as
/// [`amends_core::notice::NoticeKind`] lists them (the restoration before the credit
/// decided in the same instant), then by timeline entry.
macro_rules! decided {
    ($o:literal) => {
        concat!(
            "(",
            $o,
            ".created_at, CASE ",
            $o,
            ".kind WHEN 'acknowledgement' THEN 0 WHEN 'update' THEN 1 \
             WHEN 'restored' THEN 2 WHEN 'credit' THEN 3 WHEN 'still_down' THEN 4 \
             WHEN 'case_response' THEN 5 WHEN 'case_owner' THEN 6 WHEN 'case_note' THEN 7 \
             WHEN 'case_follow_up' THEN 8 WHEN 'appointment_booked' THEN 9 \
             WHEN 'appointment_cancelled' THEN 10 WHEN 'appointment_missed' THEN 11 \
             WHEN 'account_cancelled' THEN 12 ELSE 13 END, ",
            $o,
            ".seq)"
        )
    };
}
/// A due notice `o` waits while a notice decided before it, to the same customer about
/// the same subject, is on its way: on the same channel, queued or sending at all (so a
/// retry or a quiet-hours hold keeps the order too); on another channel, being sent or due
/// now (so a customer reading both hears in order, and a channel that is held or backing
/// off does not hold the other back). `$2` is now.
macro_rules! no_earlier_on_its_way {
    () => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM outbox p \
                 WHERE p.about = o.about AND p.customer_id = o.customer_id \
                   AND p.status IN ('queued', 'sending') \
                   AND (p.channel = o.channel OR p.status = 'sending' OR p.next_attempt_at <= $2) \
                   AND ",
            decided!("p"),
            " < ",
            decided!("o"),
            ")"
        )
    };
}
/// Claims a channel's due notices (queued, or sending with a lapsed lease), oldest due
/// first; the order matches the partial index `outbox_due (channel, next_attempt_at, key)`.
/// A notice waits for the ones decided before it (see [`no_earlier_on_its_way`]).
pub(crate) const CLAIM_DUE_SQLITE: &str = concat!(
    "UPDATE outbox \
     SET status = 'sending', attempts = attempts + 1, next_attempt_at = $1 \
     WHERE key IN (SELECT key FROM outbox o \
         WHERE channel = $4 AND status IN ('queued', 'sending') AND next_attempt_at <= $2 AND ",
    no_earlier_on_its_way!(),
    " ORDER BY next_attempt_at, key LIMIT $3) \
     RETURNING *"
);
/// [`CLAIM_DUE_SQLITE`] for PostgreSQL: SKIP LOCKED leaves a notice another worker is
/// claiming right now to it.
pub(crate) const CLAIM_DUE_POSTGRES: &str = concat!(
    "WITH due AS ( \
         SELECT key FROM outbox o \
         WHERE channel = $4 AND status IN ('queued', 'sending') AND next_attempt_at <= $2 AND ",
    no_earlier_on_its_way!(),
    " ORDER BY next_attempt_at, key LIMIT $3 \
         FOR UPDATE SKIP LOCKED) \
     UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1, next_attempt_at = $1 \
     FROM due WHERE o.key = due.key \
     RETURNING o.*"
);

// Delivery outcomes are fenced by the claim: still `sending`, and claimed at attempt $2.
pub(crate) const RECORD_SENT: &str = "UPDATE outbox SET status = 'sent', sent_at = $3, provider_id = $4 \
     WHERE key = $1 AND attempts = $2 AND status = 'sending'";
pub(crate) const RECORD_RETRY: &str = "UPDATE outbox SET status = 'queued', last_error = $3, next_attempt_at = $4 \
     WHERE key = $1 AND attempts = $2 AND status = 'sending'";
pub(crate) const RECORD_FAILED: &str = "UPDATE outbox SET status = 'failed', last_error = $3 \
     WHERE key = $1 AND attempts = $2 AND status = 'sending'";
pub(crate) const RECORD_SUPPRESSED: &str = "UPDATE outbox SET status = 'suppressed', reason = $3 \
     WHERE key = $1 AND attempts = $2 AND status = 'sending'";
pub(crate) const SELECT_NOTICE_EVENTS: &str =
    "SELECT key, at, status, detail FROM notice_events WHERE key = $1 ORDER BY n";
pub(crate) const SELECT_NOTICE: &str = "SELECT * FROM outbox WHERE key = $1";
pub(crate) const SELECT_CONTENT_TO_FORGET: &str = "SELECT * FROM outbox \
     WHERE status IN ('sent', 'delivered', 'failed', 'suppressed') AND content_sha256 IS NULL \
       AND created_at < $1 \
     ORDER BY created_at, key LIMIT $2";
pub(crate) const FORGET_CONTENT: &str = "UPDATE outbox SET subject = '', body = '', content_sha256 = $2 \
     WHERE key = $1 AND content_sha256 IS NULL AND status IN ('sent', 'delivered', 'failed', 'suppressed')";
/// A report moves a sent notice on: `delivered` only from `sent`; `failed` from either.
pub(crate) const REPORT_BY_KEY: &str = "UPDATE outbox SET status = $2, last_error = COALESCE($3, last_error) \
     WHERE key = $1 AND (status = 'sent' OR (status = 'delivered' AND $2 = 'failed')) RETURNING *";
pub(crate) const REPORT_BY_PROVIDER: &str = "UPDATE outbox SET status = $3, last_error = COALESCE($4, last_error) \
     WHERE channel = $1 AND provider_id = $2 \
       AND (status = 'sent' OR (status = 'delivered' AND $3 = 'failed')) RETURNING *";
pub(crate) const SELECT_BY_PROVIDER: &str = "SELECT * FROM outbox WHERE channel = $1 AND provider_id = $2";

/// Volume control, step 1: per customer and channel, a queued closing notice supersedes
/// queued acknowledgements and updates, and a later queued update an earlier one.
pub(crate) const COALESCE_QUEUED: &str = "UPDATE outbox SET status = 'suppressed', reason = 'coalesced' \
     WHERE about = $1 AND status = 'queued' AND kind IN ('acknowledgement', 'update') \
       AND EXISTS (SELECT 1 FROM outbox later \
           WHERE later.about = outbox.about AND later.customer_id = outbox.customer_id \
             AND later.channel = outbox.channel AND later.status = 'queued' \
             AND (later.kind IN ('restored', 'still_down') \
                  OR (outbox.kind = 'update' AND later.kind = 'update' AND later.seq > outbox.seq))) \
     RETURNING key";
/// Volume control, step 2: queued updates beyond the cap ($2) per customer and channel,
/// counting those sent or on their way and earlier queued ones.
pub(crate) const CAP_QUEUED: &str = "UPDATE outbox SET status = 'suppressed', reason = 'capped' \
     WHERE about = $1 AND status = 'queued' AND kind = 'update' \
       AND (SELECT COUNT(*) FROM outbox o \
           WHERE o.about = outbox.about AND o.customer_id = outbox.customer_id \
             AND o.channel = outbox.channel AND o.kind = 'update' \
             AND (o.status IN ('sending', 'sent', 'delivered') \
                  OR (o.status = 'queued' AND o.seq < outbox.seq))) >= $2 \
     RETURNING key";

pub(crate) const RECORD_HARD_FAILURE: &str = "INSERT INTO contact_points \
         (channel, recipient, hard_failures, quarantined_at, last_error, updated_at) \
     VALUES ($1, $2, 1, CASE WHEN CAST($4 AS BIGINT) <= 1 THEN CAST($5 AS BIGINT) END, $3, $5) \
     ON CONFLICT (channel, recipient) DO UPDATE SET \
         hard_failures = contact_points.hard_failures + 1, \
         quarantined_at = COALESCE(contact_points.quarantined_at, \
             CASE WHEN contact_points.hard_failures + 1 >= CAST($4 AS BIGINT) THEN CAST($5 AS BIGINT) END), \
         last_error = $3, updated_at = $5 \
     RETURNING *";
pub(crate) const CLEAR_CONTACT_POINT: &str =
    "DELETE FROM contact_points WHERE channel = $1 AND recipient = $2";
pub(crate) const SELECT_QUARANTINED: &str =
    "SELECT * FROM contact_points WHERE quarantined_at IS NOT NULL ORDER BY channel, recipient";

pub(crate) const SELECT_PREFERENCES: &str = "SELECT * FROM preferences WHERE customer_id = $1";
pub(crate) const SELECT_ALL_PREFERENCES: &str = "SELECT * FROM preferences ORDER BY customer_id";
pub(crate) const UPSERT_PREFERENCES: &str = "INSERT INTO preferences (customer_id, doc, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (customer_id) DO UPDATE SET doc = $2, updated_at = $3";
pub(crate) const BUMP_PREFERENCES_VERSION: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'preferences'";
pub(crate) const SELECT_PREFERENCES_VERSION: &str = "SELECT value FROM counters WHERE name = 'preferences'";
pub(crate) const INSERT_SECRET: &str =
    "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
pub(crate) const SELECT_SECRET: &str = "SELECT value FROM secrets WHERE name = $1";
pub(crate) const USE_LINK: &str =
    "INSERT INTO used_links (link_id, used_at) VALUES ($1, $2) ON CONFLICT (link_id) DO NOTHING";

/// A group's reference text, which its notices are packed against (SQLite's outbox).
pub(crate) const SELECT_REFERENCE: &str = "SELECT text FROM notice_references WHERE grp = $1";
/// A customer's notices that were or will be sent (not suppressed, not failed), newest
/// first, as a page lists them ([`crate::ToldNotice`], with what unpacks their content);
/// the caller appends its `LIMIT`.
macro_rules! notices_told {
    ($order:literal) => {
        concat!(
            "SELECT key, about, kind, seq, channel, locale, subject, body, packed, created_at, sent_at \
             FROM outbox WHERE customer_id = $1 AND status NOT IN ('suppressed', 'failed') ORDER BY ",
            $order
        )
    };
}
/// Ties (notices of the same instant) in key order: SQLite sorts them in a temporary table.
pub(crate) const NOTICES_TOLD_NEWEST: &str = notices_told!("created_at DESC, key DESC");
/// Ties in no set order: the index `outbox_customer` (customer, time) gives these as they
/// are, with no sort (see `inline::newest_told_notices`).
pub(crate) const NOTICES_TOLD_BY_TIME: &str = notices_told!("created_at DESC");
/// How many of a customer's notices were or will be sent. (Counted in the query above,
/// with `COUNT(*) OVER ()`, the two took a third longer: SQLite then buffers every row.)
pub(crate) const NOTICES_TOLD_COUNT: &str =
    "SELECT COUNT(*) AS told FROM outbox WHERE customer_id = $1 AND status NOT IN ('suppressed', 'failed')";
pub(crate) const NOTICES_FOR_CUSTOMER: &str =
    "SELECT * FROM outbox WHERE customer_id = $1 ORDER BY created_at, key";
pub(crate) const NOTICES_FOR_INCIDENT: &str =
    "SELECT * FROM outbox WHERE about = $1 ORDER BY created_at, key LIMIT $2";
pub(crate) const NOTICE_COUNTS: &str =
    "SELECT kind, status, COUNT(*) AS n FROM outbox GROUP BY kind, status ORDER BY kind, status";
pub(crate) const NOTICE_COUNTS_FOR_INCIDENT: &str = "SELECT kind, status, COUNT(*) AS n FROM outbox \
     WHERE about = $1 GROUP BY kind, status ORDER BY kind, status";

pub(crate) const BUMP_BOOK_VERSION: &str = "UPDATE counters SET value = value + 1 WHERE name = 'book'";
pub(crate) const SELECT_BOOK_VERSION: &str = "SELECT value FROM counters WHERE name = 'book'";
/// How many times incidents and their sources have changed (SQLite: moved by triggers).
pub(crate) const SELECT_INCIDENT_CHANGES: &str = "SELECT value FROM counters WHERE name = 'incidents'";

/// A taken hash or id inserts nothing (the caller makes another token).
pub(crate) const INSERT_TOKEN: &str = "INSERT INTO tokens \
     (token_hash, token_id, scope, label, created_at, agent_id, expires_at, revoked_at, last_used_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";
pub(crate) const SELECT_TOKEN: &str = "SELECT * FROM tokens WHERE token_hash = $1";
pub(crate) const SELECT_TOKENS: &str = "SELECT * FROM tokens ORDER BY created_at, token_id";
/// The first revocation stands: a revoked token is left as it is.
pub(crate) const REVOKE_TOKEN: &str =
    "UPDATE tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL RETURNING *";
pub(crate) const SELECT_TOKEN_BY_ID: &str = "SELECT * FROM tokens WHERE token_id = $1";
/// Conditional, so a use within the last minute (by any server) writes nothing.
pub(crate) const RECORD_TOKEN_USE: &str = "UPDATE tokens SET last_used_at = $2 \
     WHERE token_hash = $1 AND (last_used_at IS NULL OR last_used_at < $3)";

pub(crate) const SELECT_AGENT: &str = "SELECT * FROM agents WHERE agent_id = $1";
pub(crate) const SELECT_AGENTS: &str = "SELECT * FROM agents ORDER BY agent_id";

/// Hands out the next case number, as [`NEXT_INCIDENT_NUMBER`] does incident numbers.
pub(crate) const NEXT_CASE_NUMBER: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'case' RETURNING value";
/// A case opened under an existing source key inserts nothing (and is not an error).
/// The version is 1: the log holds its `opened` event.
pub(crate) const INSERT_CASE: &str = "INSERT INTO cases \
     (case_id, customer_id, owner, status, source, source_id, source_key, first_contact_at, opened_at, \
      updated_at, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1) ON CONFLICT (source_key) DO NOTHING";
pub(crate) const CASE_UNDER_KEY: &str = "SELECT case_id FROM cases WHERE source_key = $1";
pub(crate) const INSERT_CASE_EVENT: &str =
    "INSERT INTO case_events (case_id, seq, at, \"by\", kind, doc) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const SELECT_CASE_VERSION: &str = "SELECT version FROM cases WHERE case_id = $1";
/// What an append changes in the case row (the rest is fixed when the case is opened).
/// The caller has checked the version under the write lock or row lock it still holds.
pub(crate) const APPLY_CASE_EVENTS: &str = "UPDATE cases SET owner = $2, status = $3, updated_at = $4, version = $5, \
     fixed_at = $6, followed_up = $7 WHERE case_id = $1";
pub(crate) const INSERT_CONTACT: &str = "INSERT INTO contacts \
     (customer_id, at, channel, summary, \"by\", incident_id, told_before) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     RETURNING contact_id";
/// Per customer the first notice sent about the incident (the `outbox_incident` index
/// groups them), then over customers.
pub(crate) const NOTICE_REACH: &str = "SELECT COUNT(*) AS customers, MIN(first_sent) AS first_sent, \
     MAX(first_sent) AS all_told_by FROM (SELECT MIN(sent_at) AS first_sent FROM outbox \
     WHERE about = $1 AND sent_at IS NOT NULL GROUP BY customer_id) AS told";
pub(crate) const INCIDENT_CONTACTS: &str =
    "SELECT * FROM contacts WHERE incident_id = $1 ORDER BY contact_id";
pub(crate) const CASES_TO_NOTIFY: &str =
    "SELECT * FROM cases WHERE notified_version < version ORDER BY case_id LIMIT $1";
pub(crate) const MARK_CASE_NOTIFIED: &str =
    "UPDATE cases SET notified_version = $2 WHERE case_id = $1 AND notified_version < $2";
pub(crate) const CASES_DUE_FOLLOW_UP: &str = "SELECT * FROM cases \
     WHERE fixed_at IS NOT NULL AND fixed_at <= $1 AND followed_up = $2 ORDER BY fixed_at, case_id LIMIT $3";
pub(crate) const SELECT_CASE: &str = "SELECT * FROM cases WHERE case_id = $1";
pub(crate) const SELECT_CASE_EVENTS: &str = "SELECT * FROM case_events WHERE case_id = $1 ORDER BY seq";

// ---- appointments ----

/// Hands out the next appointment number, as [`NEXT_INCIDENT_NUMBER`] does incident
/// numbers. On PostgreSQL the row lock it takes is what makes bookings take turns: every
/// booking's reads come after it, so each sees the bookings committed before it.
pub(crate) const NEXT_APPOINTMENT_NUMBER: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'appointment' RETURNING value";
/// A booking under a reference on record inserts nothing (reported as AppointmentExists).
/// The version is 1.
pub(crate) const INSERT_APPOINTMENT: &str = "INSERT INTO appointments \
     (reference, number, customer_id, technician_id, owner, window_start, window_end, status, booked_at, \
      arrived_at, completed_at, cancelled_at, cancel_notice_secs, missed_at, rebooked_from, checked_at, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1) \
     ON CONFLICT (reference) DO NOTHING RETURNING *";
/// The technician's live visits (the partial index `appointments_technician_live`).
pub(crate) const LIVE_APPOINTMENTS_OF: &str = "SELECT * FROM appointments \
     WHERE technician_id = $1 AND status IN ('booked', 'arrived') ORDER BY window_start, number";
pub(crate) const HOLDS_OF_TECHNICIAN: &str =
    "SELECT * FROM appointment_holds WHERE technician_id = $1 ORDER BY window_start, for_reference";
/// Writes what may change after booking, if the version is the one read and the row
/// still has what the booking fixed (so a caller's change to those is refused, not
/// dropped). `checked_at` is only ever set: a row read before the check cannot clear it.
pub(crate) const UPDATE_APPOINTMENT: &str = "UPDATE appointments SET owner = $3, status = $4, \
     arrived_at = $5, completed_at = $6, cancelled_at = $7, cancel_notice_secs = $8, missed_at = $9, \
     checked_at = COALESCE(checked_at, $10), version = version + 1 \
     WHERE reference = $1 AND version = $2 AND customer_id = $11 AND technician_id IS NOT DISTINCT FROM $12 \
       AND window_start = $13 AND window_end = $14 AND booked_at = $15 \
       AND rebooked_from IS NOT DISTINCT FROM $16 \
     RETURNING *";
pub(crate) const SELECT_APPOINTMENT: &str = "SELECT * FROM appointments WHERE reference = $1";
pub(crate) const COUNT_APPOINTMENT: &str = "SELECT COUNT(*) FROM appointments WHERE reference = $1";
/// Two bounded index range scans, one per partial index, merged: the due windows (every
/// unchecked visit whose window ended) and the provider cancellations not yet due.
/// Scanning one index for both would read every unchecked future visit to find the few
/// cancelled ones.
pub(crate) const APPOINTMENTS_TO_CHECK: &str = "SELECT * FROM \
       (SELECT * FROM appointments WHERE checked_at IS NULL AND window_end <= $1 \
        ORDER BY window_end, number LIMIT $2) AS due \
     UNION ALL SELECT * FROM \
       (SELECT * FROM appointments WHERE checked_at IS NULL AND status = 'cancelled_by_provider' \
          AND window_end > $1 ORDER BY window_end, number LIMIT $2) AS cancelled \
     ORDER BY window_end, number LIMIT $2";
/// An incident's credits, and those asked for: claimed on the customer's page (an
/// on-request amount's claim, keyed `.../claimed`), or preceded by a contact of their
/// customer about it.
pub(crate) const CREDITS_ASKED_FOR: &str = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN c.key LIKE '%/claimed' OR EXISTS \
       (SELECT 1 FROM contacts k WHERE k.customer_id = c.customer_id AND k.incident_id = c.source_event \
          AND k.at <= c.created_at) THEN 1 ELSE 0 END), 0) \
     FROM credits c WHERE c.source_event = $1";
pub(crate) const MARK_APPOINTMENT_CONFIRMED: &str =
    "UPDATE appointments SET confirmed = TRUE WHERE reference = $1";
/// Booked visits whose confirmation is not queued yet, through `appointments_unconfirmed`.
pub(crate) const APPOINTMENTS_UNCONFIRMED: &str =
    "SELECT * FROM appointments WHERE NOT confirmed ORDER BY number LIMIT $1";
pub(crate) const MARK_APPOINTMENT_CHECKED: &str =
    "UPDATE appointments SET checked_at = $2 WHERE reference = $1 AND checked_at IS NULL";
/// Live visits overlapping [$1, $2), through `appointments_live`.
pub(crate) const LIVE_APPOINTMENTS_BETWEEN: &str = "SELECT * FROM appointments \
     WHERE status IN ('booked', 'arrived') AND window_start < $2 AND window_end > $1 \
     ORDER BY window_start, number LIMIT $3";
/// Locks a visit's row, so that its holds are written by one transaction at a time.
pub(crate) const LOCK_APPOINTMENT: &str =
    "SELECT reference FROM appointments WHERE reference = $1 FOR UPDATE";
pub(crate) const INSERT_HOLD: &str = "INSERT INTO appointment_holds \
     (for_reference, technician_id, window_start, window_end, until) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (for_reference, technician_id, window_start) DO NOTHING";
pub(crate) const HOLDS_FOR: &str =
    "SELECT * FROM appointment_holds WHERE for_reference = $1 ORDER BY window_start, technician_id";
pub(crate) const LIVE_HOLDS: &str = "SELECT * FROM appointment_holds WHERE until > $1 \
     ORDER BY technician_id, window_start, for_reference LIMIT $2";
pub(crate) const APPOINTMENT_COUNTS: &str = "SELECT \
       COALESCE(SUM(CASE WHEN status <> 'cancelled_by_customer' THEN 1 ELSE 0 END), 0) AS ended, \
       COALESCE(SUM(CASE WHEN status = 'missed' THEN 1 ELSE 0 END), 0) AS missed, \
       COALESCE(SUM(CASE WHEN status = 'cancelled_by_provider' AND cancel_notice_secs < 86400 \
         THEN 1 ELSE 0 END), 0) AS late_cancelled \
     FROM appointments WHERE window_end >= $1 AND window_end < $2";

// ---- sign-up and cancellation ----

pub(crate) const CUSTOMER_STATUS: &str = "SELECT status FROM customers WHERE customer_id = $1";
pub(crate) const COUNT_PLAN: &str = "SELECT COUNT(*) FROM plans WHERE plan_id = $1";
pub(crate) const COUNT_ELEMENT: &str = "SELECT COUNT(*) FROM elements WHERE element_id = $1";
/// A customer as `import_book` writes one, except that an id on record is not replaced.
/// `Store::credit_policies`: served by the index on (source_event, policy_id, policy_version).
/// The policies an event's credits and on-request offers were written under (a policy that
/// pays only on request writes offers alone).
pub(crate) const CREDIT_POLICIES: &str = "SELECT policy_id, policy_version FROM credits WHERE source_event = $1 \
     UNION SELECT policy_id, policy_version FROM on_request_offers WHERE source_event = $1 \
     ORDER BY policy_id, policy_version";
pub(crate) const INSERT_APPOINTMENT_ACTION: &str =
    "INSERT INTO appointment_actions (reference, version, action, actor, at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SELECT_APPOINTMENT_ACTIONS: &str =
    "SELECT * FROM appointment_actions WHERE reference = $1 ORDER BY version";
pub(crate) const INSERT_CUSTOMER: &str = "INSERT INTO customers \
     (customer_id, name, email, phone, locale, timezone, plan_id, element_id, device_id, billing_day, \
      active_since, status, segment, jurisdiction, attributes) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (customer_id) DO NOTHING";
pub(crate) const INSERT_SIGNUP: &str =
    "INSERT INTO signups (customer_id, at, channel, steps, clicks) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SET_CUSTOMER_CANCELLED: &str =
    "UPDATE customers SET status = 'cancelled' WHERE customer_id = $1 AND status = 'active'";
/// Whether a cancellation still waits to take effect (deferred and not yet applied).
pub(crate) const IS_PENDING_CANCELLATION: &str = "SELECT COUNT(*) FROM cancellations c \
     WHERE c.reference = $1 AND c.effective_at > c.requested_at \
       AND NOT EXISTS (SELECT 1 FROM cancellations_applied a WHERE a.reference = c.reference)";
/// Deferred cancellations whose time has come and that are not applied yet.
pub(crate) const DUE_CANCELLATIONS: &str = "SELECT c.reference, c.customer_id FROM cancellations c \
     WHERE c.effective_at > c.requested_at AND c.effective_at <= $1 \
       AND NOT EXISTS (SELECT 1 FROM cancellations_applied a WHERE a.reference = c.reference) \
     ORDER BY c.effective_at, c.reference LIMIT $2";
pub(crate) const INSERT_CANCELLATION_APPLIED: &str = "INSERT INTO cancellations_applied (reference, applied_at) VALUES ($1, $2) ON CONFLICT (reference) DO NOTHING";
/// Hands out the next cancellation number, as [`NEXT_INCIDENT_NUMBER`] does.
pub(crate) const NEXT_CANCELLATION_NUMBER: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'cancellation' RETURNING value";
pub(crate) const INSERT_CANCELLATION: &str = "INSERT INTO cancellations \
     (reference, customer_id, requested_at, effective_at, channel, reason, retention_offer, final_bill_minor, \
      currency, final_bill, steps, audit, clicks) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *";
pub(crate) const SELECT_CANCELLATION: &str = "SELECT * FROM cancellations WHERE reference = $1";
pub(crate) const LATEST_CANCELLATION_OF: &str = "SELECT * FROM cancellations WHERE customer_id = $1 \
     ORDER BY requested_at DESC, reference DESC LIMIT 1";
/// Cancellations since $1 with no notice in the outbox yet (its notices carry the
/// reference where an incident's carry the incident id).
pub(crate) const CANCELLATIONS_UNCONFIRMED: &str = "SELECT * FROM cancellations c \
     WHERE c.requested_at >= $1 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.about = c.reference) \
     ORDER BY c.requested_at, c.reference LIMIT $2";
pub(crate) const JOURNEY_STEPS: &str = "SELECT \
       (SELECT COUNT(*) FROM signups) AS signups, \
       (SELECT COALESCE(MAX(steps), 0) FROM signups) AS signup_steps_max, \
       (SELECT COALESCE(SUM(steps), 0) FROM signups) AS signup_steps_total, \
       (SELECT COUNT(*) FROM cancellations) AS cancellations, \
       (SELECT COALESCE(MAX(steps), 0) FROM cancellations) AS cancel_steps_max, \
       (SELECT COALESCE(SUM(steps), 0) FROM cancellations) AS cancel_steps_total, \
       (SELECT COUNT(clicks) FROM signups) AS signups_clicked, \
       (SELECT MAX(clicks) FROM signups) AS signup_clicks_max, \
       (SELECT COUNT(clicks) FROM cancellations) AS cancellations_clicked, \
       (SELECT MAX(clicks) FROM cancellations) AS cancel_clicks_max";

// ---- surveys ----

pub(crate) const SELECT_DECISION: &str = "SELECT * FROM survey_decisions WHERE subject_key = $1";
/// Hands out the next survey number, as [`NEXT_INCIDENT_NUMBER`] does.
pub(crate) const NEXT_SURVEY_NUMBER: &str =
    "UPDATE counters SET value = value + 1 WHERE name = 'survey' RETURNING value";
/// A decision for a subject that has one inserts nothing: decisions are never replaced.
pub(crate) const INSERT_DECISION: &str = "INSERT INTO survey_decisions \
     (subject_key, customer_id, subject, case_id, incident_id, decision, reason, decided_at, survey_id, \
      send_at, expires_at, scale, sent_at, answered_at, score) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (subject_key) DO NOTHING RETURNING *";
/// The flags that take a case, or a recovered customer, out of the partial indexes the
/// tick reads (`cases_unsurveyed`, `impacts_unsurveyed`).
pub(crate) const MARK_CASE_SURVEY_DECIDED: &str =
    "UPDATE cases SET survey_decided = TRUE WHERE case_id = $1 AND NOT survey_decided";
pub(crate) const MARK_IMPACT_SURVEY_DECIDED: &str = "UPDATE impacts SET survey_decided = TRUE \
     WHERE incident_id = $1 AND customer_id = $2 AND NOT survey_decided";
/// Through the partial index `survey_decisions_customer_send`.
pub(crate) const LAST_SURVEY_SEND: &str = "SELECT MAX(send_at) FROM survey_decisions \
     WHERE customer_id = $1 AND decision = 'send' AND subject_key <> $2";
/// Through the partial index `survey_decisions_due`.
pub(crate) const SURVEYS_DUE: &str = "SELECT * FROM survey_decisions \
     WHERE decision = 'send' AND sent_at IS NULL AND send_at <= $1 ORDER BY send_at, subject_key LIMIT $2";
pub(crate) const MARK_SURVEY_SENT: &str =
    "UPDATE survey_decisions SET sent_at = $2 WHERE survey_id = $1 AND sent_at IS NULL";
pub(crate) const SELECT_SURVEY: &str = "SELECT * FROM survey_decisions WHERE survey_id = $1";
pub(crate) const COUNT_SURVEY: &str = "SELECT COUNT(*) FROM survey_decisions WHERE survey_id = $1";
/// One conditional write: of two answers racing, exactly one finds it unanswered.
pub(crate) const ANSWER_SURVEY: &str = "UPDATE survey_decisions SET score = $2, answered_at = $3 \
     WHERE survey_id = $1 AND answered_at IS NULL";
pub(crate) const SURVEY_DECISION_COUNTS: &str =
    "SELECT decision, reason, COUNT(*) AS n FROM survey_decisions GROUP BY decision, reason";
/// Through the partial index `cases_unsurveyed`: only the undecided fixed cases.
pub(crate) const CASES_FIXED_UNSURVEYED: &str = "SELECT * FROM cases \
     WHERE fixed_at IS NOT NULL AND NOT survey_decided AND fixed_at <= $1 ORDER BY fixed_at, case_id LIMIT $2";
/// Resolved incidents with a customer still undecided, in order: the resolved ones
/// through `incidents_resolved` (a few thousand at most), each probed in
/// `impacts_unsurveyed`, which holds only the undecided. A merged incident's customers
/// moved to the one it merged into and are surveyed there.
///
/// `recovered_unsurveyed` then reads each one's customers with the next query, rather
/// than joining: no backend can stop a join sorted by (resolved_at, incident, customer)
/// at its LIMIT without first reading, and sorting, every undecided customer of the
/// first incident (SQLite cannot tell the incidents' order is distinct while
/// `resolved_at` may be NULL), and an incident may have a million.
pub(crate) const RESOLVED_WITH_UNSURVEYED: &str = "SELECT i.incident_id, i.resolved_at FROM incidents i \
     WHERE i.resolved_at IS NOT NULL AND i.resolved_at <= $1 \
       AND EXISTS (SELECT 1 FROM impacts m WHERE m.incident_id = i.incident_id AND NOT m.survey_decided) \
       AND NOT EXISTS (SELECT 1 FROM incident_sources s \
           WHERE s.incident_id = i.incident_id AND s.merged_into IS NOT NULL) \
     ORDER BY i.resolved_at, i.incident_id LIMIT $2";
/// An incident's undecided customers in order, straight from `impacts_unsurveyed`.
pub(crate) const UNSURVEYED_CUSTOMERS_OF: &str = "SELECT customer_id FROM impacts \
     WHERE incident_id = $1 AND NOT survey_decided ORDER BY customer_id LIMIT $2";

// ---- recovery metrics ----

/// Cases opened in [$1, $2) (`cases_opened`), each with its first `first_response`
/// event's time (its log, by the primary key).
pub(crate) const CASE_TIMINGS: &str = "SELECT c.case_id, c.source, c.first_contact_at, c.opened_at, c.fixed_at, \
       (SELECT e.at FROM case_events e WHERE e.case_id = c.case_id AND e.kind = 'first_response' \
        ORDER BY e.seq LIMIT 1) AS first_response_at \
     FROM cases c WHERE c.opened_at >= $1 AND c.opened_at < $2 ORDER BY c.opened_at, c.case_id LIMIT $3";
/// Through `contacts_customer`: a customer has few contacts.
pub(crate) const CUSTOMER_CONTACTS_BETWEEN: &str =
    "SELECT COUNT(*) FROM contacts WHERE customer_id = $1 AND at >= $2 AND at < $3";

/// The query of credits (or of on-request offers) for `filter` and the values to bind, in
/// placeholder order. Only placeholders and an integer limit go into the text; every
/// value is bound.
pub(crate) fn ledger_query(ledger: crate::Ledger, filter: &CreditFilter) -> (String, Vec<&str>) {
    let columns = [
        ("customer_id = ?", filter.customer_id.as_deref()),
        ("source_event = ?", filter.source_event.as_deref()),
        ("key > ?", filter.after_key.as_deref()),
    ];
    filtered(ledger.table(), "key", &columns, &[], filter.limit)
}

/// The delivery-record query for `filter`, like [`ledger_query`].
pub(crate) fn notices_query(filter: &crate::NoticeFilter) -> (String, Vec<&str>) {
    let columns = [
        ("customer_id = ?", filter.customer_id.as_deref()),
        ("about = ?", filter.about.as_deref()),
        ("status = ?", filter.status.as_deref()),
        ("key > ?", filter.after_key.as_deref()),
    ];
    filtered("outbox", "key", &columns, &[], Some(filter.limit))
}

/// The cases query for `filter`, like [`ledger_query`]. `open_only` binds the status it
/// excludes, so it is a condition like the others.
pub(crate) fn cases_query(filter: &CaseFilter) -> (String, Vec<&str>) {
    let columns = [
        ("customer_id = ?", filter.customer_id.as_deref()),
        ("owner = ?", filter.owner.as_deref()),
        ("status = ?", filter.status.as_deref()),
        ("status <> ?", filter.open_only.then_some("closed")),
        ("case_id > ?", filter.after_id.as_deref()),
    ];
    filtered("cases", "case_id", &columns, &[], Some(filter.limit))
}

/// The appointments query for `filter`, like [`ledger_query`], in number order. A page
/// starts after the number of `after_reference` (references do not sort by number).
pub(crate) fn appointments_query(filter: &crate::AppointmentFilter) -> (String, Vec<&str>) {
    let columns = [
        ("customer_id = ?", filter.customer_id.as_deref()),
        ("technician_id = ?", filter.technician_id.as_deref()),
        ("status = ?", filter.status.as_deref()),
        (
            "number > (SELECT a.number FROM appointments a WHERE a.reference = ?)",
            filter.after_reference.as_deref(),
        ),
    ];
    filtered("appointments", "number", &columns, &[], Some(filter.limit))
}

/// The survey decisions query for `filter`, like [`ledger_query`].
pub(crate) fn survey_decisions_query(filter: &crate::SurveyFilter) -> (String, Vec<&str>) {
    let columns =
        [("decision = ?", filter.decision.as_deref()), ("subject_key > ?", filter.after_key.as_deref())];
    // The literal condition matches the partial index `survey_decisions_answered`.
    let answered: &[&str] = if filter.answered_only { &["answered_at IS NOT NULL"] } else { &[] };
    filtered("survey_decisions", "subject_key", &columns, answered, Some(filter.limit))
}

/// `SELECT * FROM table WHERE <conditions> ORDER BY order [LIMIT n]`. Each condition of
/// `columns` is SQL with one `?` where its value goes, and is used only when it has a
/// value; those of `fixed` always, as they are.
fn filtered<'a>(
    table: &str,
    order: &str,
    columns: &[(&str, Option<&'a str>)],
    fixed: &[&str],
    limit: Option<u32>,
) -> (String, Vec<&'a str>) {
    let mut conditions: Vec<String> = fixed.iter().map(|c| (*c).to_owned()).collect();
    let mut binds = Vec::new();
    for &(condition, value) in columns {
        if let Some(value) = value {
            binds.push(value);
            conditions.push(condition.replacen('?', &format!("${}", binds.len()), 1));
        }
    }
    let mut sql = format!("SELECT * FROM {table}");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {order}"));
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    (sql, binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_up_writes_every_column_an_import_writes() {
        let cols = crate::common::col_list(crate::common::CUSTOMER_COLS);
        assert!(INSERT_CUSTOMER.contains(&format!("({cols})")), "{INSERT_CUSTOMER}\nlacks ({cols})");
    }

    #[test]
    fn filters_bind_every_value_and_only_given_ones() {
        let filter = crate::AppointmentFilter {
            technician_id: Some("t1".into()),
            after_reference: Some("APT-00000013".into()),
            limit: 5,
            ..Default::default()
        };
        let (sql, binds) = appointments_query(&filter);
        assert_eq!(
            sql,
            "SELECT * FROM appointments WHERE technician_id = $1 AND number > \
             (SELECT a.number FROM appointments a WHERE a.reference = $2) ORDER BY number LIMIT 5"
        );
        assert_eq!(binds, ["t1", "APT-00000013"]);
        let filter = crate::SurveyFilter {
            answered_only: true,
            after_key: Some("k".into()),
            limit: 2,
            ..Default::default()
        };
        let (sql, binds) = survey_decisions_query(&filter);
        assert_eq!(
            sql,
            "SELECT * FROM survey_decisions WHERE answered_at IS NOT NULL AND subject_key > $1 \
             ORDER BY subject_key LIMIT 2"
        );
        assert_eq!(binds, ["k"]);
    }
}
