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
     (incident_id, element_ids, cause, state, etr, next_update_by, declared_at, resolved_at, credited_at, causes) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(crate) const INSERT_UPDATE: &str = "INSERT INTO incident_updates \
     (incident_id, seq, at, kind, state, etr, next_update_by, message, trigger_key, messages, fanned_out) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, FALSE)";
pub(crate) const SELECT_INCIDENT: &str = "SELECT * FROM incidents WHERE incident_id = $1";
pub(crate) const SELECT_INCIDENTS: &str = "SELECT * FROM incidents ORDER BY declared_at, incident_id";
pub(crate) const SELECT_OPEN_INCIDENTS: &str =
    "SELECT * FROM incidents WHERE state <> 'resolved' ORDER BY declared_at, incident_id";
pub(crate) const COUNT_TRIGGER: &str =
    "SELECT COUNT(*) FROM incident_updates WHERE incident_id = $1 AND trigger_key = $2";
pub(crate) const NEXT_SEQ: &str =
    "SELECT COALESCE(MAX(seq), -1) + 1 FROM incident_updates WHERE incident_id = $1";
pub(crate) const APPLY_UPDATE: &str = "UPDATE incidents SET state = $2, etr = $3, next_update_by = $4, \
     resolved_at = CASE WHEN $2 = 'resolved' THEN $5 ELSE resolved_at END \
     WHERE incident_id = $1";
pub(crate) const SET_ELEMENTS: &str = "UPDATE incidents SET element_ids = $2 WHERE incident_id = $1";
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
pub(crate) const MARK_MERGED: &str = "UPDATE incident_sources SET merged_into = $2 WHERE incident_id = $1";
pub(crate) const SELECT_IMPACTS: &str = "SELECT * FROM impacts WHERE incident_id = $1 ORDER BY customer_id";
pub(crate) const SELECT_DEVICE_EVENTS: &str =
    "SELECT * FROM device_events WHERE at >= $1 ORDER BY at, device_id, state LIMIT $2";
pub(crate) const SELECT_DEVICE_EVENTS_AFTER: &str = "SELECT * FROM device_events \
     WHERE at >= $1 AND (at, device_id, state) > ($3, $4, $5) ORDER BY at, device_id, state LIMIT $2";
pub(crate) const PRUNE_DEVICE_EVENTS: &str = "DELETE FROM device_events WHERE at < $1";
pub(crate) const UNCREDITED_RESOLVED: &str = "SELECT * FROM incidents \
     WHERE state = 'resolved' AND credited_at IS NULL ORDER BY resolved_at, incident_id";
pub(crate) const MARK_CREDITED: &str = "UPDATE incidents SET credited_at = $2 WHERE incident_id = $1";

/// Claims a channel's due notices (queued, or sending with a lapsed lease), oldest due
/// first; the order matches the partial index `outbox_due (channel, next_attempt_at, key)`.
pub(crate) const CLAIM_DUE_SQLITE: &str = "UPDATE outbox \
     SET status = 'sending', attempts = attempts + 1, next_attempt_at = $1 \
     WHERE key IN (SELECT key FROM outbox \
         WHERE channel = $4 AND status IN ('queued', 'sending') AND next_attempt_at <= $2 \
         ORDER BY next_attempt_at, key LIMIT $3) \
     RETURNING *";

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
     WHERE incident_id = $1 AND status = 'queued' AND kind IN ('acknowledgement', 'update') \
       AND EXISTS (SELECT 1 FROM outbox later \
           WHERE later.incident_id = outbox.incident_id AND later.customer_id = outbox.customer_id \
             AND later.channel = outbox.channel AND later.status = 'queued' \
             AND (later.kind IN ('restored', 'still_down') \
                  OR (outbox.kind = 'update' AND later.kind = 'update' AND later.seq > outbox.seq))) \
     RETURNING key";
/// Volume control, step 2: queued updates beyond the cap ($2) per customer and channel,
/// counting those sent or on their way and earlier queued ones.
pub(crate) const CAP_QUEUED: &str = "UPDATE outbox SET status = 'suppressed', reason = 'capped' \
     WHERE incident_id = $1 AND status = 'queued' AND kind = 'update' \
       AND (SELECT COUNT(*) FROM outbox o \
           WHERE o.incident_id = outbox.incident_id AND o.customer_id = outbox.customer_id \
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

pub(crate) const NOTICES_FOR_CUSTOMER: &str =
    "SELECT * FROM outbox WHERE customer_id = $1 ORDER BY created_at, key";
pub(crate) const NOTICES_FOR_INCIDENT: &str =
    "SELECT * FROM outbox WHERE incident_id = $1 ORDER BY created_at, key LIMIT $2";
pub(crate) const NOTICE_COUNTS: &str =
    "SELECT kind, status, COUNT(*) AS n FROM outbox GROUP BY kind, status ORDER BY kind, status";
pub(crate) const NOTICE_COUNTS_FOR_INCIDENT: &str = "SELECT kind, status, COUNT(*) AS n FROM outbox \
     WHERE incident_id = $1 GROUP BY kind, status ORDER BY kind, status";

pub(crate) const BUMP_BOOK_VERSION: &str = "UPDATE counters SET value = value + 1 WHERE name = 'book'";
pub(crate) const SELECT_BOOK_VERSION: &str = "SELECT value FROM counters WHERE name = 'book'";

pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO tokens (token_hash, scope, label, created_at, agent_id) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SELECT_TOKEN: &str = "SELECT * FROM tokens WHERE token_hash = $1";

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
     WHERE incident_id = $1 AND sent_at IS NOT NULL GROUP BY customer_id) AS told";
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

/// The credits query for `filter` and the values to bind, in placeholder order. Only
/// placeholders and an integer limit go into the text; every value is bound.
pub(crate) fn credits_query(filter: &CreditFilter) -> (String, Vec<&str>) {
    let columns = [
        ("customer_id = ", filter.customer_id.as_deref()),
        ("source_event = ", filter.source_event.as_deref()),
        ("key > ", filter.after_key.as_deref()),
    ];
    filtered_by_key("credits", "key", &columns, filter.limit)
}

/// The delivery-record query for `filter`, like [`credits_query`].
pub(crate) fn notices_query(filter: &crate::NoticeFilter) -> (String, Vec<&str>) {
    let columns = [
        ("customer_id = ", filter.customer_id.as_deref()),
        ("incident_id = ", filter.incident_id.as_deref()),
        ("status = ", filter.status.as_deref()),
        ("key > ", filter.after_key.as_deref()),
    ];
    filtered_by_key("outbox", "key", &columns, Some(filter.limit))
}

/// The cases query for `filter`, like [`credits_query`]. `open_only` binds the status it
/// excludes, so it is a condition like the others.
pub(crate) fn cases_query(filter: &CaseFilter) -> (String, Vec<&str>) {
    let columns = [
        ("customer_id = ", filter.customer_id.as_deref()),
        ("owner = ", filter.owner.as_deref()),
        ("status = ", filter.status.as_deref()),
        ("status <> ", filter.open_only.then_some("closed")),
        ("case_id > ", filter.after_id.as_deref()),
    ];
    filtered_by_key("cases", "case_id", &columns, Some(filter.limit))
}

/// `SELECT * FROM table WHERE <each given condition> ORDER BY key [LIMIT n]`.
fn filtered_by_key<'a>(
    table: &str,
    key: &str,
    columns: &[(&str, Option<&'a str>)],
    limit: Option<u32>,
) -> (String, Vec<&'a str>) {
    let mut conditions = Vec::new();
    let mut binds = Vec::new();
    for &(condition, value) in columns {
        if let Some(value) = value {
            binds.push(value);
            conditions.push(format!("{condition}${}", binds.len()));
        }
    }
    let mut sql = format!("SELECT * FROM {table}");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {key}"));
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    (sql, binds)
}
