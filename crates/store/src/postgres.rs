//! The PostgreSQL backend, selected by a `postgres://` URL.
//!
//! Bulk writes of credits and notices `COPY ... FROM STDIN` (text format) straight into
//! their table. To keep "an existing key is never written twice" without a staging table
//! and a per-row `ON CONFLICT` check (measured at about 3x the raw COPY floor for the
//! ledger, against 1.6x for this path), writers of new keys take turns under a lock, look
//! up which of their keys exist in batches (`key = ANY($1)`), check or skip those, and copy
//! the rest. The book is upserted in batches of arrays (`UNNEST`), one statement per batch
//! whatever its size. Row locks (`FOR UPDATE`, `SKIP LOCKED`) serialise the few other
//! places where concurrent callers race.

use crate::AccessStore;
use crate::AccountStore;
use crate::BenchFloor;
use crate::BookStore;
use crate::CaseStore;
use crate::DeviceLogStore;
use crate::ImpactStore;
use crate::IncidentStore;
use crate::Ledger;
use crate::LedgerStore;
use crate::OutboxStore;
use crate::PreferenceStore;
use crate::ReportStore;
use crate::SurveyStore;
use crate::VisitStore;
use std::io::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use amends_core::incident::ByLocale;
use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use sqlx::{AssertSqlSafe, Transaction};

use crate::common::{
    self, AGENT_COLS, CREDIT_COLS, CUSTOMER_COLS, Cols, ELEMENT_COLS, NOTICE_COLS, PLAN_COLS, StoredAmount,
    micros, opt_micros,
};
use crate::sql;
use crate::{
    AgentRow, AppendOutcome, AppointmentCounts, AppointmentFilter, AppointmentRow, BULK_BATCH_ROWS_MAX,
    BookCounts, BookRows, BuildAppointment, BuildCancellation, CancellationRow, CaseEventRow, CaseFilter,
    CaseOpening, CaseRow, CaseTiming, ChannelReport, ContactPointRow, CreditFilter, CreditRow, CreditWrite,
    CustomerRow, DeliveryOutcome, DeviceEventRow, ElementRow, HoldRow, IgnoredAlert, ImpactRow,
    IncidentAlert, IncidentRow, IncidentSource, JourneySteps, LIVE_ROWS_MAX, NewUpdate, NoticeCount,
    NoticeEventRow, NoticeFilter, NoticeRow, PlanRow, PreferencesRow, RecoveredRow, ReportTarget, Result,
    SignupRow, Store, StoreError, SurveyDecisionRow, SurveyFilter, TokenRow, UpdateRow, VolumeReport,
};
use crate::{Hold, IncidentPage, SourcedIncident, StageRaise, Widening};

/// COPY data is sent in messages of about this size: large enough to amortise the
/// round trip through the socket, small enough not to hold the whole load in memory.
const COPY_CHUNK_BYTES: usize = 1 << 20;

const POOL_CONNECTIONS_MAX: u32 = 8;

/// The transaction-scoped advisory lock that serialises `enqueue_notices` callers
/// (an arbitrary constant, unique within amends: "amends:outbox" in ASCII, truncated).
const OUTBOX_ENQUEUE_LOCK: i64 = 0x616d_656e_6473_6f62;
/// Appenders of the device event log take turns with this transaction lock, so the log's
/// places (`seq`) are given in commit order and a tail never passes a place that commits
/// later.
const DEVICE_EVENTS_APPEND_LOCK: i64 = 0x616d_656e_6473_6465;
/// The first key of the advisory locks `try_hold` takes (the second is the name's hash).
const HOLD_LOCK_SPACE: i32 = 0x616d_6e64;
/// Serialises inserts of machine-opened incidents, so that a source key is looked up and
/// inserted by one writer at a time ("amendssi").
const SOURCED_INCIDENT_LOCK: i64 = 0x616d_656e_6473_7369;

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// A write transaction (READ COMMITTED; where writers must take turns, a row lock).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Locks the visit's row, so offers of slots for one visit take turns.
    async fn take_turns_on_visit(tx: &mut Transaction<'static, Postgres>, reference: &str) -> Result<()> {
        sqlx::query(sql::LOCK_APPOINTMENT).bind(reference).fetch_optional(&mut **tx).await?;
        Ok(())
    }

    /// The directory of agents written, in `unnest` upserts of a bounded batch.
    async fn write_agents(tx: &mut Transaction<'static, Postgres>, agents: &[&AgentRow]) -> Result<()> {
        for batch in agents.chunks(BULK_BATCH_ROWS_MAX) {
            upsert_agents(tx, batch).await?;
        }
        Ok(())
    }

    /// Marks the incidents `merged` (and their sources) as merged into `into`.
    async fn mark_all_merged(
        tx: &mut Transaction<'static, Postgres>,
        merged: &[String],
        into: &str,
    ) -> Result<()> {
        for mark in sql::MARK_ALL_MERGED_POSTGRES {
            sqlx::query(mark).bind(merged).bind(into).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The book's rows written, in `unnest` upserts of a bounded batch, `progress` told
    /// after each.
    async fn write_book(
        tx: &mut Transaction<'static, Postgres>,
        elements: &[&ElementRow],
        plans: &[&PlanRow],
        customers: &[&CustomerRow],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let mut written = 0u64;
        for batch in elements.chunks(BULK_BATCH_ROWS_MAX) {
            upsert_elements(tx, batch).await?;
            written += batch.len() as u64;
            progress(written);
        }
        for batch in plans.chunks(BULK_BATCH_ROWS_MAX) {
            upsert_plans(tx, batch).await?;
            written += batch.len() as u64;
            progress(written);
        }
        for batch in customers.chunks(BULK_BATCH_ROWS_MAX) {
            upsert_customers(tx, batch).await?;
            written += batch.len() as u64;
            progress(written);
        }
        Ok(())
    }

    /// Device events written in `unnest` inserts under a transaction-scoped advisory lock
    /// (so concurrent appends take turns and places follow commit order); those already
    /// logged are skipped.
    async fn write_device_events(
        tx: &mut Transaction<'static, Postgres>,
        events: &[&DeviceEventRow],
    ) -> Result<u64> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DEVICE_EVENTS_APPEND_LOCK)
            .execute(&mut **tx)
            .await?;
        let mut inserted = 0;
        for batch in events.chunks(BULK_BATCH_ROWS_MAX) {
            let done = sqlx::query(
                "INSERT INTO device_events (device_id, at, state, reason) \
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(batch.iter().map(|r| r.device_id.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|r| micros(r.at)).collect::<Vec<_>>())
            .bind(batch.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|r| r.reason.as_deref()).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
            inserted += done.rows_affected();
        }
        Ok(inserted)
    }

    /// A read-only transaction over one snapshot.
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?)
    }

    /// The pool reads go through: the one pool.
    fn reads(&self) -> &PgPool {
        &self.pool
    }

    /// Connects to `url` (`postgres://user@host:port/db`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
            url: crate::redact::redact_password(url),
            reason: e.to_string(),
        })?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (a test database, a socket, ...) and migrates.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new().max_connections(POOL_CONNECTIONS_MAX).connect_with(options).await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The underlying pool, for callers that need a query the trait does not offer.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection of the pool (a test drops its database afterwards).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ---- COPY ----

/// One line of COPY text format: tab-separated fields, `\N` for NULL, and backslash
/// escapes for the four bytes that would otherwise end a field or a line.
struct CopyLine<'a> {
    out: &'a mut Vec<u8>,
    fields: usize,
}

impl<'a> CopyLine<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, fields: 0 }
    }

    fn sep(&mut self) {
        if self.fields > 0 {
            self.out.push(b'\t');
        }
        self.fields += 1;
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        escape_copy_text(s, self.out);
        self
    }

    fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn int(&mut self, n: i64) -> &mut Self {
        self.sep();
        // Writing to a Vec cannot fail.
        let _ = write!(self.out, "{n}");
        self
    }

    fn opt_int(&mut self, n: Option<i64>) -> &mut Self {
        match n {
            Some(n) => self.int(n),
            None => self.null(),
        }
    }

    fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(b"\\N");
        self
    }

    fn end(&mut self) {
        self.out.push(b'\n');
    }
}

/// Appends `s` escaped for COPY text format. Everything else, including quotes, commas
/// and any UTF-8, is taken literally in this format.
fn escape_copy_text(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// A row written as one line of COPY text, columns in the order of its column list.
trait CopyRow {
    fn write_copy(&self, out: &mut Vec<u8>);
}

impl CopyRow for CreditRow {
    fn write_copy(&self, out: &mut Vec<u8>) {
        CopyLine::new(out)
            .text(&self.key)
            .text(&self.customer_id)
            .text(&self.source_event)
            .text(&self.policy_id)
            .int(self.policy_version)
            .int(self.amount_minor)
            .text(&self.currency)
            .text(&self.statement)
            .text(&self.explanation)
            .text(&self.lines_json)
            .int(micros(self.created_at))
            .end();
    }
}

impl CopyRow for NoticeRow {
    fn write_copy(&self, out: &mut Vec<u8>) {
        CopyLine::new(out)
            .text(&self.key)
            .text(&self.customer_id)
            .text(&self.about)
            .text(&self.kind)
            .int(self.seq)
            .text(self.channel.as_str())
            .text(&self.recipient)
            .text(&self.locale)
            .text(&self.subject)
            .text(&self.body)
            .text(self.status.as_str())
            .int(i64::from(self.attempts))
            .int(micros(self.next_attempt_at))
            .opt_text(self.last_error.as_deref())
            .int(micros(self.created_at))
            .opt_int(opt_micros(self.sent_at))
            .opt_text(self.reason.as_deref())
            .end();
    }
}

impl<T: CopyRow> CopyRow for &T {
    fn write_copy(&self, out: &mut Vec<u8>) {
        (*self).write_copy(out)
    }
}

/// Streams `rows` into `table` with COPY; returns the rows copied.
async fn copy_rows<T: CopyRow>(
    conn: &mut PgConnection,
    table: &str,
    cols: &[&str],
    rows: &[T],
) -> Result<u64> {
    let statement = format!("COPY {table} ({}) FROM STDIN", common::col_list(cols));
    let mut copy = conn.copy_in_raw(&statement).await?;
    let mut buf = Vec::with_capacity(COPY_CHUNK_BYTES + 64 * 1024);
    for row in rows {
        row.write_copy(&mut buf);
        if buf.len() >= COPY_CHUNK_BYTES {
            copy.send(std::mem::replace(&mut buf, Vec::with_capacity(COPY_CHUNK_BYTES + 64 * 1024))).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf).await?;
    }
    Ok(copy.finish().await?)
}

/// Keys looked up per query: bounds the size of one bind message.
const LOOKUP_KEYS_MAX: usize = 50_000;

// The key lookups below are NOT prepared statements (`persistent(false)`). A prepared
// `key = ANY($1)` switches to PostgreSQL's generic plan after five executions, and that
// plan can scan the whole table comparing each row with all 50,000 keys: a ledger re-run
// of a million credits sat in one such lookup for over ten minutes. Unprepared, each
// lookup is planned for its actual array and uses the primary key index.

/// Keys among `keys` (sorted) that `table` holds, sorted: one indexed lookup per batch.
async fn stored_keys(conn: &mut PgConnection, table: &'static str, keys: &[&str]) -> Result<Vec<String>> {
    let sql: Arc<str> = Arc::from(format!("SELECT key FROM {table} WHERE key = ANY($1) ORDER BY key"));
    let mut stored = Vec::new();
    for batch in keys.chunks(LOOKUP_KEYS_MAX) {
        let rows = sqlx::query(AssertSqlSafe(Arc::clone(&sql)))
            .bind(batch)
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            stored.push(Cols::new(row, table).text("key")?);
        }
    }
    Ok(stored)
}

/// The ledger entries among `credits` (sorted by key), as (key, amount, currency) sorted
/// by key: one indexed lookup per batch of keys, not one query per credit.
async fn stored_amounts(
    conn: &mut PgConnection,
    ledger: Ledger,
    credits: &[&CreditRow],
) -> Result<Vec<StoredAmount>> {
    let mut stored = Vec::new();
    let sql = format!(
        "SELECT key, amount_minor, currency FROM {} WHERE key = ANY($1) ORDER BY key",
        ledger.table()
    );
    for batch in credits.chunks(LOOKUP_KEYS_MAX) {
        let keys: Vec<&str> = batch.iter().map(|c| c.key.as_str()).collect();
        let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(keys)
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            let c = Cols::new(row, "credits");
            stored.push((c.text("key")?, c.i64("amount_minor")?, c.text("currency")?));
        }
    }
    Ok(stored)
}

// ---- book upserts ----

/// `INSERT INTO t (cols) SELECT * FROM UNNEST($1::ty[], ...) ON CONFLICT (id) DO UPDATE`:
/// one statement and one array per column for a whole batch.
fn unnest_upsert_sql(table: &str, cols: &[&str], types: &[&str]) -> String {
    let arrays: Vec<String> = types.iter().enumerate().map(|(i, ty)| format!("${}::{ty}[]", i + 1)).collect();
    format!(
        "INSERT INTO {table} ({}) SELECT * FROM UNNEST({}) ON CONFLICT ({}) DO UPDATE SET {}",
        common::col_list(cols),
        arrays.join(", "),
        cols[0],
        common::set_excluded(cols)
    )
}

fn strs<'a, T>(rows: &[&'a T], f: impl Fn(&'a T) -> &'a str) -> Vec<&'a str> {
    rows.iter().map(|r| f(r)).collect()
}

fn opt_strs<'a, T>(rows: &[&'a T], f: impl Fn(&'a T) -> Option<&'a str>) -> Vec<Option<&'a str>> {
    rows.iter().map(|r| f(r)).collect()
}

async fn upsert_elements(conn: &mut PgConnection, batch: &[&ElementRow]) -> Result<()> {
    let sql = unnest_upsert_sql("elements", ELEMENT_COLS, &["text", "text", "text", "text"]);
    sqlx::query(AssertSqlSafe(sql))
        .bind(strs(batch, |r| &r.element_id))
        .bind(opt_strs(batch, |r| r.parent_id.as_deref()))
        .bind(strs(batch, |r| &r.kind))
        .bind(strs(batch, |r| &r.name))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn upsert_plans(conn: &mut PgConnection, batch: &[&PlanRow]) -> Result<()> {
    let sql = unnest_upsert_sql("plans", PLAN_COLS, &["text", "text", "int8", "text"]);
    sqlx::query(AssertSqlSafe(sql))
        .bind(strs(batch, |r| &r.plan_id))
        .bind(strs(batch, |r| &r.name))
        .bind(batch.iter().map(|r| r.monthly_price_minor).collect::<Vec<_>>())
        .bind(strs(batch, |r| &r.currency))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn upsert_customers(conn: &mut PgConnection, batch: &[&CustomerRow]) -> Result<()> {
    let types = [
        "text", "text", "text", "text", "text", "text", "text", "text", "text", "int2", "int8", "text",
        "text", "text", "text",
    ];
    let sql = unnest_upsert_sql("customers", CUSTOMER_COLS, &types);
    sqlx::query(AssertSqlSafe(sql))
        .bind(strs(batch, |r| &r.customer_id))
        .bind(strs(batch, |r| &r.name))
        .bind(opt_strs(batch, |r| r.email.as_deref()))
        .bind(opt_strs(batch, |r| r.phone.as_deref()))
        .bind(strs(batch, |r| &r.locale))
        .bind(strs(batch, |r| &r.timezone))
        .bind(strs(batch, |r| &r.plan_id))
        .bind(strs(batch, |r| &r.element_id))
        .bind(opt_strs(batch, |r| r.device_id.as_deref()))
        .bind(batch.iter().map(|r| r.billing_day).collect::<Vec<_>>())
        .bind(batch.iter().map(|r| micros(r.active_since)).collect::<Vec<_>>())
        .bind(strs(batch, |r| r.status.as_str()))
        .bind(strs(batch, |r| &r.segment))
        .bind(opt_strs(batch, |r| r.jurisdiction.as_deref()))
        .bind(opt_strs(batch, |r| r.attributes.as_deref()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn upsert_agents(conn: &mut PgConnection, batch: &[&AgentRow]) -> Result<()> {
    let sql = unnest_upsert_sql("agents", AGENT_COLS, &["text", "text", "text", "text", "bool", "int8"]);
    sqlx::query(AssertSqlSafe(sql))
        .bind(strs(batch, |r| &r.agent_id))
        .bind(strs(batch, |r| &r.name))
        .bind(strs(batch, |r| &r.role))
        .bind(opt_strs(batch, |r| r.lead_id.as_deref()))
        .bind(batch.iter().map(|r| r.active).collect::<Vec<_>>())
        .bind(batch.iter().map(|r| micros(r.updated_at)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An incident's state as an append reads it, locking the incident's row until the
/// transaction ends, so appends to one incident take turns.
const INCIDENT_STATE_TO_APPEND: &str = "SELECT state FROM incidents WHERE incident_id = $1 FOR UPDATE";

/// A case's version as an append reads it (`sql::SELECT_CASE_VERSION`), locking the case
/// row until the transaction ends, so appends to one case take turns.
const CASE_VERSION_TO_APPEND: &str = "SELECT version FROM cases WHERE case_id = $1 FOR UPDATE";

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn try_hold(&self, name: &str) -> Result<Option<Hold>> {
        // Its own session, outside the pool: the lock lives exactly as long as it.
        let mut connection = self.pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(HOLD_LOCK_SPACE)
            .bind(name)
            .fetch_one(&mut connection)
            .await?;
        Ok(taken.then(|| Hold::postgres(connection)))
    }
}

crate::shared::book_store!(PgStore);

crate::shared::incident_store!(PgStore);

#[async_trait]
impl ImpactStore for PgStore {
    async fn insert_sourced_incidents(&self, incidents: &[SourcedIncident]) -> Result<Vec<(String, bool)>> {
        let mut tx = self.pool.begin().await?;
        // Two callers with the same new key queue here; the second then finds the first's row.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SOURCED_INCIDENT_LOCK).execute(&mut *tx).await?;
        let mut out = Vec::with_capacity(incidents.len());
        for s in incidents {
            let existing: Option<String> =
                sqlx::query_scalar(sql::SOURCE_INCIDENT).bind(&s.source_key).fetch_optional(&mut *tx).await?;
            if let Some(id) = existing {
                out.push((id, false));
                continue;
            }
            let id = insert_incident_in(&mut tx, &s.incident, &s.declared).await?;
            sqlx::query(sql::INSERT_SOURCE).bind(&s.source_key).bind(id.as_str()).execute(&mut *tx).await?;
            out.push((id, true));
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn incident_sources(&self) -> Result<Vec<IncidentSource>> {
        let rows = sqlx::query(sql::SELECT_SOURCES).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::source_from_row)
    }

    async fn mark_merged(&self, incident_id: &str, into: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for mark in [sql::MARK_MERGED, sql::MARK_INCIDENT_MERGED] {
            sqlx::query(mark).bind(incident_id).bind(into).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rekey_source(&self, old: &str, new: &str) -> Result<bool> {
        let done = sqlx::query(sql::REKEY_SOURCE).bind(old).bind(new).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn sources_of(&self, incident_id: &str) -> Result<Vec<IncidentSource>> {
        let rows = sqlx::query(sql::SOURCES_OF).bind(incident_id).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::source_from_row)
    }

    async fn open_sources(&self) -> Result<Vec<IncidentSource>> {
        let rows = sqlx::query(sql::OPEN_SOURCES).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::source_from_row)
    }

    async fn join_alert(&self, source_key: &str, incident_id: &str) -> Result<bool> {
        let done =
            sqlx::query(sql::JOIN_ALERT).bind(source_key).bind(incident_id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn incident_alerts(&self) -> Result<Vec<IncidentAlert>> {
        let rows = sqlx::query(sql::SELECT_INCIDENT_ALERTS).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::incident_alert_from_row)
    }

    async fn end_alert(&self, source_key: &str, at: Timestamp) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::END_ALERT).bind(source_key).bind(micros(at)).execute(&mut *tx).await?;
        let firing: i64 =
            sqlx::query_scalar(sql::ALERTS_STILL_FIRING).bind(source_key).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        common::count("incident_alerts", firing)
    }

    async fn record_ignored_alert(&self, alert: &IgnoredAlert, keep: u32) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::RECORD_IGNORED_ALERT)
            .bind(&alert.fingerprint)
            .bind(&alert.labels)
            .bind(&alert.reason)
            .bind(micros(alert.first_at))
            .bind(micros(alert.last_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::TRIM_IGNORED_ALERTS).bind(i64::from(keep.max(1))).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ignored_alerts(&self, limit: u32) -> Result<Vec<IgnoredAlert>> {
        let rows =
            sqlx::query(sql::SELECT_IGNORED_ALERTS).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::ignored_alert_from_row)
    }

    async fn upsert_impacts(&self, impacts: &mut [ImpactRow]) -> Result<Vec<ImpactRow>> {
        let distinct = common::distinct_impacts(impacts);
        let mut tx = self.pool.begin().await?;
        let mut stored = Vec::with_capacity(distinct.len());
        for batch in distinct.chunks(BULK_BATCH_ROWS_MAX) {
            let col = |f: &dyn Fn(&ImpactRow) -> String| batch.iter().map(|r| f(r)).collect::<Vec<_>>();
            let rows = sqlx::query(
                "INSERT INTO impacts (incident_id, customer_id, presumed, affected_at, back_at, follow_up, downtime, notified) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::int8[], $5::int8[], $6::bool[], $7::text[], $8::int2[]) \
                 ON CONFLICT (incident_id, customer_id) DO UPDATE SET presumed = excluded.presumed, \
                 affected_at = LEAST(impacts.affected_at, excluded.affected_at), back_at = excluded.back_at, \
                 follow_up = excluded.follow_up, downtime = excluded.downtime, \
                 notified = GREATEST(impacts.notified, excluded.notified) RETURNING *",
            )
            .bind(col(&|r| r.incident_id.to_string()))
            .bind(col(&|r| r.customer_id.to_string()))
            .bind(batch.iter().map(|r| r.presumed).collect::<Vec<_>>())
            .bind(batch.iter().map(|r| micros(r.affected_at)).collect::<Vec<_>>())
            .bind(batch.iter().map(|r| opt_micros(r.back_at)).collect::<Vec<_>>())
            .bind(batch.iter().map(|r| r.follow_up).collect::<Vec<_>>())
            .bind(col(&|r| common::downtime_json(&r.downtime)))
            .bind(batch.iter().map(|r| r.notified).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                stored.push(common::impact_from_row(row)?);
            }
        }
        tx.commit().await?;
        stored.sort_by(|a, b| (&a.incident_id, &a.customer_id).cmp(&(&b.incident_id, &b.customer_id)));
        Ok(stored)
    }

    async fn raise_notified(&self, raises: &[StageRaise<'_>]) -> Result<()> {
        let raises = common::distinct_raises(raises);
        let mut tx = self.pool.begin().await?;
        for batch in raises.chunks(LOOKUP_KEYS_MAX) {
            let incidents: Vec<&str> = batch.iter().map(|r| r.incident_id).collect();
            let customers: Vec<&str> = batch.iter().map(|r| r.customer_id).collect();
            let stages: Vec<i16> = batch.iter().map(|r| r.stage).collect();
            sqlx::query(
                "UPDATE impacts SET notified = GREATEST(impacts.notified, v.stage) \
                 FROM UNNEST($1::text[], $2::text[], $3::int2[]) AS v(incident_id, customer_id, stage) \
                 WHERE impacts.incident_id = v.incident_id AND impacts.customer_id = v.customer_id",
            )
            .bind(&incidents)
            .bind(&customers)
            .bind(&stages)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn impacts(&self, incident_id: &str) -> Result<Vec<ImpactRow>> {
        let rows = sqlx::query(sql::SELECT_IMPACTS).bind(incident_id).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::impact_from_row)
    }

    async fn customer_impacts(&self, customer_id: &str) -> Result<Vec<ImpactRow>> {
        let rows = sqlx::query(sql::SELECT_CUSTOMER_IMPACTS).bind(customer_id).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::impact_from_row)
    }
}

crate::shared::device_log_store!(PgStore);

#[async_trait]
impl OutboxStore for PgStore {
    async fn enqueue_notices(&self, notices: &[NoticeRow]) -> Result<u64> {
        let distinct = common::distinct_notices(notices);
        let keys: Vec<&str> = distinct.iter().map(|n| n.key.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        // Enqueuers take turns (the only writers of new outbox keys), so no key can
        // appear between the lookup and the COPY; claims and deliveries, which only
        // update rows, go on meanwhile.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(OUTBOX_ENQUEUE_LOCK).execute(&mut *tx).await?;
        let stored = stored_keys(&mut tx, "outbox", &keys).await?;
        let new = common::unstored_notices(&distinct, &stored);
        let inserted = copy_rows(&mut tx, "outbox", NOTICE_COLS, &new).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn claim_due_notices(
        &self,
        channel: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<NoticeRow>> {
        let rows = sqlx::query(sql::CLAIM_DUE_POSTGRES)
            .bind(micros(lease_until))
            .bind(micros(now))
            .bind(i64::from(limit))
            .bind(channel)
            .fetch_all(&self.pool)
            .await?;
        let mut notices = common::decode_all(&rows, common::notice_from_row)?;
        notices.sort_by(common::by_key);
        Ok(notices)
    }

    async fn record_deliveries(&self, outcomes: &[(&str, i32, &DeliveryOutcome)]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut recorded = Vec::with_capacity(outcomes.len());
        let mut events = Vec::with_capacity(outcomes.len());
        for &(key, attempt, outcome) in outcomes {
            let done = outcome_query(key, attempt, outcome).execute(&mut *tx).await?;
            let applied = done.rows_affected() > 0;
            if applied {
                let (status, detail) = common::outcome_event(outcome);
                events.push(common::report_event(key, status, detail, common::outcome_at(outcome)));
            } else {
                common::warn_unrecorded(key, attempt);
            }
            recorded.push(applied);
        }
        append_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn record_report(
        &self,
        target: &ReportTarget<'_>,
        report: &ChannelReport,
        at: Timestamp,
    ) -> Result<Option<NoticeRow>> {
        let (status, detail) = common::report_status(report);
        let mut tx = self.pool.begin().await?;
        let (moved, current) = match target {
            ReportTarget::Key(key) => (
                sqlx::query(sql::REPORT_BY_KEY).bind(*key).bind(status).bind(detail),
                sqlx::query(sql::SELECT_NOTICE).bind(*key),
            ),
            ReportTarget::Provider { channel, provider_id } => (
                sqlx::query(sql::REPORT_BY_PROVIDER)
                    .bind(*channel)
                    .bind(*provider_id)
                    .bind(status)
                    .bind(detail),
                sqlx::query(sql::SELECT_BY_PROVIDER).bind(*channel).bind(*provider_id),
            ),
        };
        let row = match moved.fetch_optional(&mut *tx).await? {
            Some(row) => {
                let notice = common::notice_from_row(&row)?;
                append_events(&mut tx, &[common::report_event(&notice.key, status, detail, at)]).await?;
                Some(notice)
            }
            None => current
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| common::notice_from_row(&row))
                .transpose()?,
        };
        tx.commit().await?;
        Ok(row)
    }

    async fn control_volume(
        &self,
        incident_id: &str,
        updates_cap: u32,
        at: Timestamp,
    ) -> Result<VolumeReport> {
        let mut tx = self.pool.begin().await?;
        let coalesced: Vec<String> =
            sqlx::query_scalar(sql::COALESCE_QUEUED).bind(incident_id).fetch_all(&mut *tx).await?;
        let capped: Vec<String> = sqlx::query_scalar(sql::CAP_QUEUED)
            .bind(incident_id)
            .bind(i64::from(updates_cap))
            .fetch_all(&mut *tx)
            .await?;
        let mut events = common::suppression_events(&coalesced, "coalesced", at);
        events.extend(common::suppression_events(&capped, "capped", at));
        append_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(VolumeReport { coalesced: coalesced.len() as u64, capped: capped.len() as u64 })
    }

    async fn notices_for_customer(&self, customer_id: &str) -> Result<Vec<NoticeRow>> {
        let rows = sqlx::query(sql::NOTICES_FOR_CUSTOMER).bind(customer_id).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::notice_from_row)
    }

    async fn notices_for_incident(&self, incident_id: &str, limit: u32) -> Result<Vec<NoticeRow>> {
        let rows = sqlx::query(sql::NOTICES_FOR_INCIDENT)
            .bind(incident_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        common::decode_all(&rows, common::notice_from_row)
    }

    async fn notice_counts(&self, incident_id: Option<&str>) -> Result<Vec<NoticeCount>> {
        let q = match incident_id {
            None => sqlx::query(sql::NOTICE_COUNTS),
            Some(id) => sqlx::query(sql::NOTICE_COUNTS_FOR_INCIDENT).bind(id),
        };
        let rows = q.fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::notice_count_from_row)
    }

    async fn notices(&self, filter: &NoticeFilter) -> Result<Vec<NoticeRow>> {
        let (sql, binds) = sql::notices_query(filter);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for value in binds {
            q = q.bind(value);
        }
        let rows = q.fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::notice_from_row)
    }

    async fn notice(&self, key: &str) -> Result<Option<NoticeRow>> {
        let row = sqlx::query(sql::SELECT_NOTICE).bind(key).fetch_optional(&self.pool).await?;
        row.map(|row| common::notice_from_row(&row)).transpose()
    }

    async fn notice_events(&self, key: &str) -> Result<Vec<NoticeEventRow>> {
        let rows = sqlx::query(sql::SELECT_NOTICE_EVENTS).bind(key).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::notice_event_from_row)
    }

    async fn contact_points(&self, channel: &str, recipients: &[&str]) -> Result<Vec<ContactPointRow>> {
        let rows = sqlx::query(
            "SELECT * FROM contact_points WHERE channel = $1 AND recipient = ANY($2) ORDER BY recipient",
        )
        .bind(channel)
        .bind(recipients)
        .fetch_all(&self.pool)
        .await?;
        common::decode_all(&rows, common::contact_point_from_row)
    }

    async fn record_hard_failure(
        &self,
        channel: &str,
        recipient: &str,
        error: &str,
        threshold: u32,
        at: Timestamp,
    ) -> Result<ContactPointRow> {
        let row = sqlx::query(sql::RECORD_HARD_FAILURE)
            .bind(channel)
            .bind(recipient)
            .bind(error)
            .bind(i64::from(threshold))
            .bind(micros(at))
            .fetch_one(&self.pool)
            .await?;
        common::contact_point_from_row(&row)
    }

    async fn content_to_forget(&self, before: Timestamp, limit: u32) -> Result<Vec<NoticeRow>> {
        let rows = sqlx::query(sql::SELECT_CONTENT_TO_FORGET)
            .bind(micros(before))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        common::decode_all(&rows, common::notice_from_row)
    }

    async fn forget_content(&self, hashes: &[(String, String)]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for (key, sha256) in hashes {
            let done = sqlx::query(sql::FORGET_CONTENT).bind(key).bind(sha256).execute(&mut *tx).await?;
            changed += done.rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn clear_contact_point(&self, channel: &str, recipient: &str) -> Result<bool> {
        let done =
            sqlx::query(sql::CLEAR_CONTACT_POINT).bind(channel).bind(recipient).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn quarantined(&self) -> Result<Vec<ContactPointRow>> {
        let rows = sqlx::query(sql::SELECT_QUARANTINED).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::contact_point_from_row)
    }
}

crate::shared::preference_store!(PgStore);

crate::shared::access_store!(PgStore);

#[async_trait]
impl LedgerStore for PgStore {
    async fn append_credits(&self, credits: &mut [CreditRow]) -> Result<CreditWrite> {
        self.append_amounts(Ledger::Credits, credits).await
    }

    async fn credits(&self, filter: &CreditFilter) -> Result<Vec<CreditRow>> {
        self.amounts(Ledger::Credits, filter).await
    }

    async fn append_on_request_offers(&self, offers: &mut [CreditRow]) -> Result<CreditWrite> {
        self.append_amounts(Ledger::OnRequestOffers, offers).await
    }

    async fn on_request_offers(&self, customer_id: &str) -> Result<Vec<CreditRow>> {
        let filter = CreditFilter { customer_id: Some(customer_id.into()), ..CreditFilter::default() };
        self.amounts(Ledger::OnRequestOffers, &filter).await
    }

    async fn credit_policies(&self, source_event: &str) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(sql::CREDIT_POLICIES).bind(source_event).fetch_all(&self.pool).await?)
    }
}

crate::shared::ledger_reads!(PgStore);

crate::shared::case_store!(PgStore);

crate::shared::visit_store!(PgStore);

crate::shared::account_store!(PgStore);

crate::shared::survey_store!(PgStore);

crate::shared::report_store!(PgStore);

impl PgStore {
    /// Appends keyed amounts to `ledger` (see [`LedgerStore::append_credits`]).
    async fn append_amounts(&self, ledger: Ledger, rows: &mut [CreditRow]) -> Result<CreditWrite> {
        let total = rows.len() as u64;
        let distinct = common::distinct_credits(rows)?;
        let mut tx = self.pool.begin().await?;
        // Writers of one table take turns (readers are not blocked), so no key can appear
        // between the lookup and the COPY: the new rows go straight in, without a staging
        // table or a per-row ON CONFLICT check.
        let lock = format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", ledger.table());
        sqlx::query(AssertSqlSafe(lock)).execute(&mut *tx).await?;
        let stored = stored_amounts(&mut tx, ledger, &distinct).await?;
        // On a conflict `tx` is dropped, which rolls back: nothing of this call is written.
        let new = common::unstored_credits(&distinct, &stored)?;
        let inserted = copy_rows(&mut tx, ledger.table(), CREDIT_COLS, &new).await?;
        tx.commit().await?;
        Ok(CreditWrite { inserted, unchanged: total - inserted })
    }
}

#[async_trait]
impl BenchFloor for PgStore {
    async fn bench_raw_insert(&self, rows: &mut [CreditRow]) -> Result<()> {
        common::sort_credits(rows);
        let mut tx = self.pool.begin().await?;
        sqlx::query("TRUNCATE bench_raw_credits").execute(&mut *tx).await?;
        copy_rows(&mut tx, "bench_raw_credits", CREDIT_COLS, rows).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The customer's status as a cancellation reads it (`sql::CUSTOMER_STATUS`), locking
/// the customer's row until the transaction ends, so cancellations of one customer take
/// turns.
const CUSTOMER_STATUS_TO_CANCEL: &str = "SELECT status FROM customers WHERE customer_id = $1 FOR UPDATE";

impl PgStore {
    /// The decision another writer recorded for `subject_key` between this call's lookup
    /// and its insert.
    async fn decision_recorded_meanwhile(&self, subject_key: &str) -> Result<SurveyDecisionRow> {
        let row = sqlx::query(sql::SELECT_DECISION).bind(subject_key).fetch_optional(&self.pool).await?;
        common::decided_meanwhile(subject_key, row.as_ref().map(common::survey_from_row).transpose()?)
    }

    /// `SurveyNotFound` unless a survey has that id.
    async fn check_survey_exists(&self, survey_id: &str) -> Result<()> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_SURVEY).bind(survey_id).fetch_one(&self.pool).await?;
        if n == 0 {
            return Err(StoreError::SurveyNotFound(survey_id.to_owned()));
        }
        Ok(())
    }
}

/// What a booking of `technician_id` is checked against: their live appointments and all
/// their holds, each by window start; none for a booking without a technician.
async fn booking_state(
    conn: &mut PgConnection,
    technician_id: Option<&str>,
) -> Result<(Vec<AppointmentRow>, Vec<HoldRow>)> {
    let Some(technician_id) = technician_id else { return Ok((Vec::new(), Vec::new())) };
    let live = sqlx::query(sql::LIVE_APPOINTMENTS_OF).bind(technician_id).fetch_all(&mut *conn).await?;
    let holds = sqlx::query(sql::HOLDS_OF_TECHNICIAN).bind(technician_id).fetch_all(&mut *conn).await?;
    Ok((
        common::decode_all(&live, common::appointment_from_row)?,
        common::decode_all(&holds, common::hold_from_row)?,
    ))
}

/// Takes what a new decision names (its case, or else its incident's impact on the
/// customer) out of the tick's search for undecided ones.
async fn mark_survey_decided(conn: &mut PgConnection, row: &SurveyDecisionRow) -> Result<()> {
    match (&row.case_id, &row.incident_id) {
        (Some(case_id), _) => {
            sqlx::query(sql::MARK_CASE_SURVEY_DECIDED).bind(case_id.as_str()).execute(&mut *conn).await?;
        }
        (None, Some(incident_id)) => {
            sqlx::query(sql::MARK_IMPACT_SURVEY_DECIDED)
                .bind(incident_id.as_str())
                .bind(row.customer_id.as_str())
                .execute(&mut *conn)
                .await?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Inserts the incident and its declaration under the next incident number.
async fn insert_incident_in(
    tx: &mut Transaction<'static, Postgres>,
    incident: &IncidentRow,
    declared: &NewUpdate,
) -> Result<String> {
    let n: i64 = sqlx::query_scalar(sql::NEXT_INCIDENT_NUMBER).fetch_one(&mut **tx).await?;
    let id = common::incident_id(n);
    sqlx::query(sql::INSERT_INCIDENT)
        .bind(id.as_str())
        .bind(common::ids_json(&incident.element_ids))
        .bind(incident.cause.as_str())
        .bind(incident.state.as_str())
        .bind(opt_micros(incident.etr))
        .bind(opt_micros(incident.next_update_by))
        .bind(micros(incident.started_at))
        .bind(opt_micros(incident.resolved_at))
        .bind(opt_micros(incident.credited_at))
        .bind(common::by_locale_json(&incident.causes))
        .bind(incident.attributes.as_deref())
        .execute(&mut **tx)
        .await?;
    insert_update(tx, &id, 0, declared).await?;
    Ok(id)
}

async fn insert_update(
    tx: &mut Transaction<'static, Postgres>,
    incident_id: &str,
    seq: i64,
    update: &NewUpdate,
) -> Result<()> {
    sqlx::query(sql::INSERT_UPDATE)
        .bind(incident_id)
        .bind(seq)
        .bind(micros(update.at))
        .bind(update.kind.as_str())
        .bind(update.state.as_str())
        .bind(opt_micros(update.etr))
        .bind(opt_micros(update.next_update_by))
        .bind(update.message.as_str())
        .bind(update.trigger_key.as_deref())
        .bind(common::by_locale_json(&update.messages))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Opens the case in `tx` under the next case number, unless a case was opened under its
/// source key: then that case's id, and `tx` must be rolled back.
async fn open_case_in(conn: &mut PgConnection, case: &CaseRow, opened: &CaseEventRow) -> Result<CaseOpening> {
    let key = case.source_key.as_deref();
    if let Some(id) = case_under_key(conn, key).await? {
        return Ok(CaseOpening::Existing(id));
    }
    let n: i64 = sqlx::query_scalar(sql::NEXT_CASE_NUMBER).fetch_one(&mut *conn).await?;
    let id = common::case_id(n);
    if !insert_case(conn, &id, case).await? {
        // Another opener committed the key since the lookup (it held the counter row, so
        // this call waited for it): the number this call took goes back with `tx`.
        let id = case_under_key(conn, key).await?.ok_or_else(|| StoreError::Corrupt {
            table: "cases",
            reason: format!("source key {key:?} conflicted, yet no case holds it"),
        })?;
        return Ok(CaseOpening::Existing(id));
    }
    insert_case_event(conn, &id, opened).await?;
    Ok(CaseOpening::Opened(id))
}

/// The case opened under `source_key`, if any (a case without one is never found).
async fn case_under_key(conn: &mut PgConnection, source_key: Option<&str>) -> Result<Option<String>> {
    let Some(key) = source_key else { return Ok(None) };
    Ok(sqlx::query_scalar(sql::CASE_UNDER_KEY).bind(key).fetch_optional(&mut *conn).await?)
}

/// Inserts the case as `id` at version 1; `false` if its source key has a case already.
async fn insert_case(conn: &mut PgConnection, id: &str, case: &CaseRow) -> Result<bool> {
    let done = sqlx::query(sql::INSERT_CASE)
        .bind(id)
        .bind(case.customer_id.as_str())
        .bind(case.owner.as_str())
        .bind(case.status.as_str())
        .bind(case.source.as_str())
        .bind(case.source_id.as_deref())
        .bind(case.source_key.as_deref())
        .bind(micros(case.first_contact_at))
        .bind(micros(case.opened_at))
        .bind(micros(case.updated_at))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts one event of `case_id`'s log, at its own seq (already checked by the caller).
async fn insert_case_event(conn: &mut PgConnection, case_id: &str, event: &CaseEventRow) -> Result<()> {
    sqlx::query(sql::INSERT_CASE_EVENT)
        .bind(case_id)
        .bind(event.seq)
        .bind(micros(event.at))
        .bind(event.by.as_str())
        .bind(event.kind.as_str())
        .bind(event.doc.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Appends history entries inside the caller's transaction, one statement for all.
async fn append_events(conn: &mut PgConnection, events: &[NoticeEventRow]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let ats: Vec<i64> = events.iter().map(|e| micros(e.at)).collect();
    let statuses: Vec<&str> = events.iter().map(|e| e.status.as_str()).collect();
    let details: Vec<Option<&str>> = events.iter().map(|e| e.detail.as_deref()).collect();
    sqlx::query(
        "INSERT INTO notice_events (key, at, status, detail) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[])",
    )
    .bind(&keys)
    .bind(&ats)
    .bind(&statuses)
    .bind(&details)
    .execute(conn)
    .await?;
    Ok(())
}

/// The fenced update that records one delivery outcome (see `Store::record_delivery`).
fn outcome_query<'q>(
    key: &'q str,
    attempt: i32,
    outcome: &'q DeliveryOutcome,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    match outcome {
        DeliveryOutcome::Sent { at, provider_id } => sqlx::query(sql::RECORD_SENT)
            .bind(key)
            .bind(attempt)
            .bind(micros(*at))
            .bind(provider_id.as_deref()),
        DeliveryOutcome::Retry { error, next_attempt_at, .. } => sqlx::query(sql::RECORD_RETRY)
            .bind(key)
            .bind(attempt)
            .bind(error.as_str())
            .bind(micros(*next_attempt_at)),
        DeliveryOutcome::Failed { error, .. } => {
            sqlx::query(sql::RECORD_FAILED).bind(key).bind(attempt).bind(error.as_str())
        }
        DeliveryOutcome::Suppressed { reason, .. } => {
            sqlx::query(sql::RECORD_SUPPRESSED).bind(key).bind(attempt).bind(reason.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_copy_text;

    #[test]
    fn copy_text_escapes_only_what_ends_a_field_or_line() {
        let mut out = Vec::new();
        escape_copy_text("a\tb\nc\\d\re \"q\", é 日本 \\N", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a\\tb\\nc\\\\d\\re \"q\", é 日本 \\\\N");
    }
}
