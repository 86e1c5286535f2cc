//! The embedded backend: one SQLite file in WAL mode.
//!
//! Every write transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up
//! front, so two writers queue on `busy_timeout` instead of one failing with
//! SQLITE_BUSY when it tries to upgrade a read transaction. Bulk paths write sorted rows
//! through one multi-row INSERT statement, prepared once per connection and reused for
//! every full batch.

use crate::AccessStore;
use crate::AccountStore;
use crate::BenchFloor;
use crate::BookStore;
use crate::CaseStore;
use crate::CustomerReads;
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
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use amends_core::incident::ByLocale;
use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Transaction};

use crate::common::{
    self, AGENT_COLS, CREDIT_COLS, CUSTOMER_COLS, Cols, ELEMENT_COLS, NOTICE_COLS, PLAN_COLS, micros,
    opt_micros,
};
use crate::packed::{self, References};
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

/// SQLite's default cap on bind parameters in one statement (SQLITE_MAX_VARIABLE_NUMBER).
const SQLITE_PARAMS_MAX: usize = 32_766;

/// How long a writer waits for another writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Page cache per connection in KiB (`PRAGMA cache_size` reads a negative number as KiB):
/// room for the hot pages of every index a bulk write touches.
const CACHE_KIB: i64 = 65_536;

const POOL_CONNECTIONS_MAX: u32 = 4;
/// Connections of the read pool (see [`SqliteStore::reads`]).
const READ_CONNECTIONS_MAX: u32 = 4;

type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments>;

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Query-only connections for what a person is waiting to read (an incident, the open
    /// list). In WAL mode a reader never waits for the writer, but a connection of `pool`
    /// can: in a storm every one of them may be queued behind the write lock.
    reads: SqlitePool,
    /// The database file: locks are files beside it.
    path: std::path::PathBuf,
    /// The reference texts notices are packed against (see `packed.rs`).
    references: Arc<References>,
    /// Read-only connections for a customer's page, used on the caller's thread.
    inline: Arc<crate::inline::InlineReads>,
}

impl SqliteStore {
    /// Opens (creating the file and its parent directory on first run) the database at
    /// `path` and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| StoreError::Database(e.into()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", format!("-{CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let reads = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS_MAX)
            .connect_with(options.create_if_missing(false).pragma("query_only", "ON"))
            .await?;
        let inline = Arc::new(crate::inline::InlineReads::new(path.to_path_buf()));
        Ok(Self { pool, reads, path: path.to_path_buf(), references: Arc::default(), inline })
    }

    /// The underlying pool, for callers that need a query the trait does not offer.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Nothing to do: the write transaction (BEGIN IMMEDIATE) already takes turns with
    /// any other.
    async fn take_turns_on_visit(_tx: &mut Transaction<'static, Sqlite>, _reference: &str) -> Result<()> {
        Ok(())
    }

    /// The directory of agents written, in multi-row upserts.
    async fn write_agents(tx: &mut Transaction<'static, Sqlite>, agents: &[&AgentRow]) -> Result<()> {
        let insert = upsert("agents", AGENT_COLS);
        for batch in insert.batches(agents) {
            insert.execute(tx, batch).await?;
        }
        Ok(())
    }

    /// Marks the incidents `merged` (and their sources) as merged into `into`.
    async fn mark_all_merged(
        tx: &mut Transaction<'static, Sqlite>,
        merged: &[String],
        into: &str,
    ) -> Result<()> {
        for mark in sql::MARK_ALL_MERGED_SQLITE {
            sqlx::query(mark).bind(common::ids_json(merged)).bind(into).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The book's rows written, in multi-row upserts, `progress` told after each.
    async fn write_book(
        tx: &mut Transaction<'static, Sqlite>,
        elements: &[&ElementRow],
        plans: &[&PlanRow],
        customers: &[&CustomerRow],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let mut written = 0;
        upsert("elements", ELEMENT_COLS).execute_all(tx, elements, &mut written, progress).await?;
        upsert("plans", PLAN_COLS).execute_all(tx, plans, &mut written, progress).await?;
        upsert("customers", CUSTOMER_COLS).execute_all(tx, customers, &mut written, progress).await?;
        Ok(())
    }

    /// Device events written in multi-row inserts; those already logged are skipped.
    async fn write_device_events(
        tx: &mut Transaction<'static, Sqlite>,
        events: &[&DeviceEventRow],
    ) -> Result<u64> {
        let insert = MultiInsert::new("device_events", common::DEVICE_EVENT_COLS, "ON CONFLICT DO NOTHING");
        let mut inserted = 0;
        for batch in insert.batches(events) {
            inserted += insert.execute(tx, batch).await?;
        }
        Ok(inserted)
    }

    /// A read transaction: one snapshot of the database (WAL mode).
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
    }

    /// The pool of what a person waits to read: query-only, never queued behind a write.
    fn reads(&self) -> &SqlitePool {
        &self.reads
    }

    /// The reference of every group among `notices` that has content: the stored one, or
    /// else the first notice of the group, written now in `tx`. Returns them all, and the
    /// ones written, to remember once `tx` has committed.
    async fn references_for(
        &self,
        tx: &mut SqliteConnection,
        notices: &[&NoticeRow],
    ) -> Result<(HashMap<String, Arc<[u8]>>, Vec<(String, Arc<[u8]>)>)> {
        let mut found: HashMap<String, Arc<[u8]>> = HashMap::new();
        let mut written = Vec::new();
        for n in notices.iter().filter(|n| packed::worth_packing(n)) {
            let group = packed::group(n);
            if found.contains_key(&group) {
                continue;
            }
            let text = match self.references.get(&group) {
                Some(text) => text,
                None => match stored_reference(&mut *tx, &group).await? {
                    Some(text) => {
                        self.references.remember(group.clone(), text.clone());
                        text
                    }
                    None => {
                        let text: Arc<[u8]> = packed::content_bytes(&n.subject, &n.body).into();
                        sqlx::query(INSERT_REFERENCE).bind(&group).bind(&*text).execute(&mut *tx).await?;
                        written.push((group.clone(), text.clone()));
                        text
                    }
                },
            };
            found.insert(group, text);
        }
        Ok((found, written))
    }

    /// Decodes outbox rows, unpacking packed content with its group's reference.
    async fn decode_notices(&self, rows: &[SqliteRow]) -> Result<Vec<NoticeRow>> {
        let mut notices = Vec::with_capacity(rows.len());
        for row in rows {
            notices.push(self.decode_notice(row).await?);
        }
        Ok(notices)
    }

    async fn decode_notice(&self, row: &SqliteRow) -> Result<NoticeRow> {
        use sqlx::Row;
        let mut notice = common::notice_from_row(row)?;
        let corrupt = |reason: String| StoreError::Corrupt { table: "outbox", reason };
        let packed: Option<Vec<u8>> =
            row.try_get("packed").map_err(|e| corrupt(format!("column packed: {e}")))?;
        if let Some(packed) = packed {
            let group = packed::group(&notice);
            let reference = match self.references.get(&group) {
                Some(text) => text,
                None => {
                    let text = stored_reference(&self.pool, &group).await?.ok_or_else(|| {
                        corrupt(format!("notice {}: no reference text for {group}", notice.key))
                    })?;
                    self.references.remember(group, text.clone());
                    text
                }
            };
            (notice.subject, notice.body) = packed::unpack(&packed, &reference)
                .map_err(|e| corrupt(format!("notice {}: {e}", notice.key)))?;
        }
        Ok(notice)
    }
}

/// `sql::FORGET_CONTENT`, and the packed content with the rest.
const FORGET_CONTENT: &str = "UPDATE outbox SET subject = '', body = '', packed = NULL, content_sha256 = $2 \
     WHERE key = $1 AND content_sha256 IS NULL AND status IN ('sent', 'delivered', 'failed', 'suppressed')";

const INSERT_REFERENCE: &str = "INSERT INTO notice_references (grp, text) VALUES ($1, $2)";

/// A group's stored reference text, if it has one.
async fn stored_reference<'e>(
    db: impl sqlx::Executor<'e, Database = Sqlite>,
    group: &str,
) -> Result<Option<Arc<[u8]>>> {
    let text: Option<Vec<u8>> =
        sqlx::query_scalar(sql::SELECT_REFERENCE).bind(group).fetch_optional(db).await?;
    Ok(text.map(Arc::from))
}

/// A notice as the outbox stores it: with its content packed, or as it is.
struct StoredNotice<'a> {
    notice: &'a NoticeRow,
    packed: Option<Vec<u8>>,
}

/// The outbox columns written on enqueue: the shared ones, then `packed`.
fn outbox_cols() -> Vec<&'static str> {
    NOTICE_COLS.iter().copied().chain(["packed"]).collect()
}

// ---- bulk writing ----

/// A row that binds its columns, in the order of its column list, to a statement.
trait BindRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q>;
}

impl<T: BindRow> BindRow for &T {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        (*self).bind_to(q)
    }
}

/// One multi-row `INSERT` with a fixed tail (`ON CONFLICT ...`), cut into batches that
/// stay under SQLite's bind parameter cap. The SQL of a full batch is built once and,
/// being the same string every time, sqlx prepares it once per connection and keeps it.
struct MultiInsert {
    head: String,
    tuple: String,
    tail: String,
    rows_per_batch: usize,
    full_batch_sql: Arc<str>,
}

impl MultiInsert {
    fn new(table: &str, cols: &[&str], tail: &str) -> Self {
        let head = format!("INSERT INTO {table} ({}) VALUES ", common::col_list(cols));
        let tuple = format!("({})", vec!["?"; cols.len()].join(", "));
        let rows_per_batch = (SQLITE_PARAMS_MAX / cols.len()).min(BULK_BATCH_ROWS_MAX);
        let full_batch_sql = Arc::from(values_sql(&head, &tuple, rows_per_batch, tail));
        Self { head, tuple, tail: tail.to_owned(), rows_per_batch, full_batch_sql }
    }

    fn batches<'a, T>(&self, rows: &'a [T]) -> std::slice::Chunks<'a, T> {
        rows.chunks(self.rows_per_batch)
    }

    /// Writes one batch (at most `rows_per_batch` rows); returns the rows changed.
    async fn execute<T: BindRow>(&self, conn: &mut SqliteConnection, batch: &[T]) -> Result<u64> {
        debug_assert!(batch.len() <= self.rows_per_batch);
        let mut q = if batch.len() == self.rows_per_batch {
            sqlx::query(AssertSqlSafe(Arc::clone(&self.full_batch_sql)))
        } else {
            // The last, shorter batch: its statement will not be seen again, so it is
            // not worth a place in the statement cache (each one is megabytes).
            let sql = values_sql(&self.head, &self.tuple, batch.len(), &self.tail);
            sqlx::query(AssertSqlSafe(sql)).persistent(false)
        };
        for row in batch {
            q = row.bind_to(q);
        }
        Ok(q.execute(&mut *conn).await?.rows_affected())
    }

    /// Like `execute`, for a statement with a RETURNING clause: returns its rows.
    async fn fetch<T: BindRow>(&self, conn: &mut SqliteConnection, batch: &[T]) -> Result<Vec<SqliteRow>> {
        debug_assert!(batch.len() <= self.rows_per_batch);
        let sql = values_sql(&self.head, &self.tuple, batch.len(), &self.tail);
        let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
        for row in batch {
            q = row.bind_to(q);
        }
        Ok(q.fetch_all(&mut *conn).await?)
    }

    /// Writes every row, calling `progress` after each batch with `written` so far.
    async fn execute_all<T: BindRow>(
        &self,
        conn: &mut SqliteConnection,
        rows: &[T],
        written: &mut u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        for batch in self.batches(rows) {
            self.execute(conn, batch).await?;
            *written += batch.len() as u64;
            progress(*written);
        }
        Ok(())
    }
}

/// `<head> (?, ...), (?, ...), ... <tail>` with `rows` tuples.
fn values_sql(head: &str, tuple: &str, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (tuple.len() + 2) + tail.len() + 1);
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(tuple);
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// `INSERT ... ON CONFLICT (id) DO UPDATE SET <every other column>`.
fn upsert(table: &str, cols: &[&str]) -> MultiInsert {
    let tail = format!("ON CONFLICT ({}) DO UPDATE SET {}", cols[0], common::set_excluded(cols));
    MultiInsert::new(table, cols, &tail)
}

impl BindRow for PlanRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.plan_id.as_str())
            .bind(self.name.as_str())
            .bind(self.monthly_price_minor)
            .bind(self.currency.as_str())
    }
}

impl BindRow for ElementRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.element_id.as_str())
            .bind(self.parent_id.as_deref())
            .bind(self.kind.as_str())
            .bind(self.name.as_str())
    }
}

impl BindRow for CustomerRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.customer_id.as_str())
            .bind(self.name.as_str())
            .bind(self.email.as_deref())
            .bind(self.phone.as_deref())
            .bind(self.locale.as_str())
            .bind(self.timezone.as_str())
            .bind(self.plan_id.as_str())
            .bind(self.element_id.as_str())
            .bind(self.device_id.as_deref())
            .bind(self.billing_day)
            .bind(micros(self.active_since))
            .bind(self.status.as_str())
            .bind(self.segment.as_str())
            .bind(self.jurisdiction.as_deref())
            .bind(self.attributes.as_deref())
    }
}

impl BindRow for AgentRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.agent_id.as_str())
            .bind(self.name.as_str())
            .bind(self.role.as_str())
            .bind(self.lead_id.as_deref())
            .bind(self.active)
            .bind(micros(self.updated_at))
    }
}

impl BindRow for StoredNotice<'_> {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        let n = self.notice;
        let (subject, body) = match self.packed {
            Some(_) => ("", ""),
            None => (n.subject.as_str(), n.body.as_str()),
        };
        q.bind(n.key.as_str())
            .bind(n.customer_id.as_str())
            .bind(n.about.as_str())
            .bind(n.kind.as_str())
            .bind(n.seq)
            .bind(n.channel.as_str())
            .bind(n.recipient.as_str())
            .bind(n.locale.as_str())
            .bind(subject)
            .bind(body)
            .bind(n.status.as_str())
            .bind(n.attempts)
            .bind(micros(n.next_attempt_at))
            .bind(n.last_error.as_deref())
            .bind(micros(n.created_at))
            .bind(opt_micros(n.sent_at))
            .bind(n.reason.as_deref())
            .bind(self.packed.clone())
    }
}

impl BindRow for NoticeEventRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.key.as_str())
            .bind(micros(self.at))
            .bind(self.status.as_str())
            .bind(self.detail.as_deref())
    }
}

impl BindRow for ImpactRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.incident_id.as_str())
            .bind(self.customer_id.as_str())
            .bind(self.presumed)
            .bind(micros(self.affected_at))
            .bind(opt_micros(self.back_at))
            .bind(self.follow_up)
            .bind(common::downtime_json(&self.downtime))
            .bind(self.notified)
    }
}

impl BindRow for DeviceEventRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.device_id.as_str())
            .bind(micros(self.at))
            .bind(self.state.as_str())
            .bind(self.reason.as_deref())
    }
}

impl BindRow for CreditRow {
    fn bind_to<'q>(&self, q: SqliteQuery<'q>) -> SqliteQuery<'q> {
        q.bind(self.key.as_str())
            .bind(self.customer_id.as_str())
            .bind(self.source_event.as_str())
            .bind(self.policy_id.as_str())
            .bind(self.policy_version)
            .bind(self.amount_minor)
            .bind(self.currency.as_str())
            .bind(self.statement.as_str())
            .bind(self.explanation.as_str())
            .bind(self.lines_json.as_str())
            .bind(micros(self.created_at))
    }
}

/// Fails with CreditConflict if any key of `batch` is stored with another amount or
/// currency. One query for the whole batch; the batch's own freshly inserted rows match
/// themselves, so only rows that existed before can differ.
async fn check_stored_amounts(
    conn: &mut SqliteConnection,
    ledger: Ledger,
    batch: &[&CreditRow],
) -> Result<()> {
    let placeholders = vec!["?"; batch.len()].join(", ");
    let table = ledger.table();
    let sql =
        format!("SELECT key, amount_minor, currency FROM {table} WHERE key IN ({placeholders}) ORDER BY key");
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for credit in batch {
        q = q.bind(credit.key.as_str());
    }
    let mut stored = Vec::with_capacity(batch.len());
    for row in q.fetch_all(&mut *conn).await? {
        let c = Cols::new(&row, "credits");
        stored.push((c.text("key")?, c.i64("amount_minor")?, c.text("currency")?));
    }
    common::unstored_credits(batch, &stored)?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.inline.close();
        self.reads.close().await;
        self.pool.close().await;
    }

    async fn customer_reads(&self, customer_id: &str, rows_max: u32) -> Result<CustomerReads> {
        self.inline.customer_reads(&self.references, customer_id, rows_max)
    }

    async fn try_hold(&self, name: &str) -> Result<Option<Hold>> {
        let path = lock_path(&self.path, name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Database(e.into()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Hold::file(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Database(e.into())),
        }
    }
}

crate::shared::book_store!(SqliteStore);

crate::shared::incident_store!(SqliteStore);

#[async_trait]
impl ImpactStore for SqliteStore {
    async fn insert_sourced_incidents(&self, incidents: &[SourcedIncident]) -> Result<Vec<(String, bool)>> {
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
        sqlx::query(sql::END_ALERT).bind(source_key).bind(micros(at)).execute(&mut *tx).await?;
        let firing: i64 =
            sqlx::query_scalar(sql::ALERTS_STILL_FIRING).bind(source_key).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        common::count("incident_alerts", firing)
    }

    async fn record_ignored_alert(&self, alert: &IgnoredAlert, keep: u32) -> Result<()> {
        let mut tx = self.begin_write().await?;
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
        let insert = MultiInsert::new(
            "impacts",
            common::IMPACT_COLS,
            "ON CONFLICT (incident_id, customer_id) DO UPDATE SET presumed = excluded.presumed, \
             affected_at = MIN(impacts.affected_at, excluded.affected_at), back_at = excluded.back_at, \
             follow_up = excluded.follow_up, downtime = excluded.downtime, \
             notified = MAX(impacts.notified, excluded.notified) RETURNING *",
        );
        let mut tx = self.begin_write().await?;
        let mut stored = Vec::with_capacity(distinct.len());
        for batch in insert.batches(&distinct) {
            for row in insert.fetch(&mut tx, batch).await? {
                stored.push(common::impact_from_row(&row)?);
            }
        }
        tx.commit().await?;
        stored.sort_by(|a, b| (&a.incident_id, &a.customer_id).cmp(&(&b.incident_id, &b.customer_id)));
        Ok(stored)
    }

    async fn raise_notified(&self, raises: &[StageRaise<'_>]) -> Result<()> {
        let raises = common::distinct_raises(raises);
        let mut tx = self.begin_write().await?;
        for batch in raises.chunks(SQLITE_PARAMS_MAX / 3) {
            let sql = format!(
                "UPDATE impacts SET notified = MAX(impacts.notified, v.column3) FROM (VALUES {}) AS v \
                 WHERE impacts.incident_id = v.column1 AND impacts.customer_id = v.column2",
                vec!["(?, ?, ?)"; batch.len()].join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
            for raise in batch {
                q = q.bind(raise.incident_id).bind(raise.customer_id).bind(raise.stage);
            }
            q.execute(&mut *tx).await?;
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

crate::shared::device_log_store!(SqliteStore);

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_notices(&self, notices: &[NoticeRow]) -> Result<u64> {
        let notices = common::in_key_order(notices);
        let insert = MultiInsert::new("outbox", &outbox_cols(), "ON CONFLICT (key) DO NOTHING");
        let mut tx = self.begin_write().await?;
        let (references, written) = self.references_for(&mut tx, &notices).await?;
        let rows: Vec<StoredNotice> = notices
            .iter()
            .copied()
            .zip(packed::pack_all(&notices, &references))
            .map(|(notice, packed)| StoredNotice { notice, packed })
            .collect();
        let mut inserted = 0;
        for batch in insert.batches(&rows) {
            inserted += insert.execute(&mut tx, batch).await?;
        }
        tx.commit().await?;
        for (group, text) in written {
            self.references.remember(group, text);
        }
        Ok(inserted)
    }

    async fn claim_due_notices(
        &self,
        channel: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<NoticeRow>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sql::CLAIM_DUE_SQLITE)
            .bind(micros(lease_until))
            .bind(micros(now))
            .bind(i64::from(limit))
            .bind(channel)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut notices = self.decode_notices(&rows).await?;
        notices.sort_by(common::by_key);
        Ok(notices)
    }

    async fn record_deliveries(&self, outcomes: &[(&str, i32, &DeliveryOutcome)]) -> Result<Vec<bool>> {
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
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
                let notice = self.decode_notice(&row).await?;
                let event = common::report_event(&notice.key, status, detail, at);
                append_events(&mut tx, &[event]).await?;
                Some(notice)
            }
            None => match current.fetch_optional(&mut *tx).await? {
                Some(row) => Some(self.decode_notice(&row).await?),
                None => None,
            },
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
        let mut tx = self.begin_write().await?;
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
        self.decode_notices(&rows).await
    }

    async fn notices_for_incident(&self, incident_id: &str, limit: u32) -> Result<Vec<NoticeRow>> {
        let rows = sqlx::query(sql::NOTICES_FOR_INCIDENT)
            .bind(incident_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        self.decode_notices(&rows).await
    }

    async fn notice_counts(&self, incident_id: Option<&str>) -> Result<Vec<NoticeCount>> {
        let q = match incident_id {
            None => sqlx::query(sql::NOTICE_COUNTS),
            Some(id) => sqlx::query(sql::NOTICE_COUNTS_FOR_INCIDENT).bind(id),
        };
        let rows = q.fetch_all(&self.reads).await?;
        common::decode_all(&rows, common::notice_count_from_row)
    }

    async fn notices(&self, filter: &NoticeFilter) -> Result<Vec<NoticeRow>> {
        let (sql, binds) = sql::notices_query(filter);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for value in binds {
            q = q.bind(value);
        }
        let rows = q.fetch_all(&self.pool).await?;
        self.decode_notices(&rows).await
    }

    async fn notice(&self, key: &str) -> Result<Option<NoticeRow>> {
        match sqlx::query(sql::SELECT_NOTICE).bind(key).fetch_optional(&self.pool).await? {
            Some(row) => Ok(Some(self.decode_notice(&row).await?)),
            None => Ok(None),
        }
    }

    async fn notice_events(&self, key: &str) -> Result<Vec<NoticeEventRow>> {
        let rows = sqlx::query(sql::SELECT_NOTICE_EVENTS).bind(key).fetch_all(&self.pool).await?;
        common::decode_all(&rows, common::notice_event_from_row)
    }

    async fn contact_points(&self, channel: &str, recipients: &[&str]) -> Result<Vec<ContactPointRow>> {
        let mut found = Vec::new();
        for chunk in recipients.chunks(SQLITE_PARAMS_MAX - 1) {
            let list = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT * FROM contact_points WHERE channel = ? AND recipient IN ({list}) ORDER BY recipient"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false).bind(channel);
            for recipient in chunk {
                q = q.bind(*recipient);
            }
            let rows = q.fetch_all(&self.pool).await?;
            found.extend(common::decode_all(&rows, common::contact_point_from_row)?);
        }
        Ok(found)
    }

    async fn record_hard_failure(
        &self,
        channel: &str,
        recipient: &str,
        error: &str,
        threshold: u32,
        at: Timestamp,
    ) -> Result<ContactPointRow> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sql::RECORD_HARD_FAILURE)
            .bind(channel)
            .bind(recipient)
            .bind(error)
            .bind(i64::from(threshold))
            .bind(micros(at))
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        common::contact_point_from_row(&row)
    }

    async fn content_to_forget(&self, before: Timestamp, limit: u32) -> Result<Vec<NoticeRow>> {
        let rows = sqlx::query(sql::SELECT_CONTENT_TO_FORGET)
            .bind(micros(before))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        self.decode_notices(&rows).await
    }

    async fn forget_content(&self, hashes: &[(String, String)]) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for (key, sha256) in hashes {
            let done = sqlx::query(FORGET_CONTENT).bind(key).bind(sha256).execute(&mut *tx).await?;
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

crate::shared::preference_store!(SqliteStore);

crate::shared::access_store!(SqliteStore);

#[async_trait]
impl LedgerStore for SqliteStore {
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

crate::shared::ledger_reads!(SqliteStore);

crate::shared::case_store!(SqliteStore);

crate::shared::visit_store!(SqliteStore);

crate::shared::account_store!(SqliteStore);

crate::shared::survey_store!(SqliteStore);

crate::shared::report_store!(SqliteStore);

#[async_trait]
impl BenchFloor for SqliteStore {
    async fn bench_raw_insert(&self, rows: &mut [CreditRow]) -> Result<()> {
        common::sort_credits(rows);
        let insert = MultiInsert::new("bench_raw_credits", CREDIT_COLS, "");
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM bench_raw_credits").execute(&mut *tx).await?;
        for batch in insert.batches(rows) {
            insert.execute(&mut tx, batch).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl SqliteStore {
    /// Appends keyed amounts to `ledger` (see [`LedgerStore::append_credits`]).
    async fn append_amounts(&self, ledger: Ledger, rows: &mut [CreditRow]) -> Result<CreditWrite> {
        let total = rows.len() as u64;
        let distinct = common::distinct_credits(rows)?;
        let insert = MultiInsert::new(ledger.table(), CREDIT_COLS, "ON CONFLICT (key) DO NOTHING");
        let mut tx = self.begin_write().await?;
        let mut inserted = 0;
        for batch in insert.batches(&distinct) {
            let n = insert.execute(&mut tx, batch).await?;
            if n < batch.len() as u64 {
                // Some keys existed already: they must hold the same amounts. On a
                // conflict, dropping `tx` rolls back every batch of this call.
                check_stored_amounts(&mut tx, ledger, batch).await?;
            }
            inserted += n;
        }
        tx.commit().await?;
        Ok(CreditWrite { inserted, unchanged: total - inserted })
    }

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
    conn: &mut SqliteConnection,
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
async fn mark_survey_decided(conn: &mut SqliteConnection, row: &SurveyDecisionRow) -> Result<()> {
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
    tx: &mut Transaction<'static, Sqlite>,
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
    tx: &mut Transaction<'static, Sqlite>,
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
async fn open_case_in(
    conn: &mut SqliteConnection,
    case: &CaseRow,
    opened: &CaseEventRow,
) -> Result<CaseOpening> {
    let key = case.source_key.as_deref();
    if let Some(id) = case_under_key(conn, key).await? {
        return Ok(CaseOpening::Existing(id));
    }
    let n: i64 = sqlx::query_scalar(sql::NEXT_CASE_NUMBER).fetch_one(&mut *conn).await?;
    let id = common::case_id(n);
    if !insert_case(conn, &id, case).await? {
        // Not with BEGIN IMMEDIATE, which excludes other writers; kept for symmetry with
        // PostgreSQL, where another opener can commit the key since the lookup.
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
async fn case_under_key(conn: &mut SqliteConnection, source_key: Option<&str>) -> Result<Option<String>> {
    let Some(key) = source_key else { return Ok(None) };
    Ok(sqlx::query_scalar(sql::CASE_UNDER_KEY).bind(key).fetch_optional(&mut *conn).await?)
}

/// Inserts the case as `id` at version 1; `false` if its source key has a case already.
async fn insert_case(conn: &mut SqliteConnection, id: &str, case: &CaseRow) -> Result<bool> {
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
async fn insert_case_event(conn: &mut SqliteConnection, case_id: &str, event: &CaseEventRow) -> Result<()> {
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

/// Appends history entries inside the caller's transaction.
async fn append_events(conn: &mut SqliteConnection, events: &[NoticeEventRow]) -> Result<()> {
    let insert = MultiInsert::new("notice_events", &["key", "at", "status", "detail"], "");
    for batch in insert.batches(events) {
        insert.execute(conn, batch).await?;
    }
    Ok(())
}

/// The fenced update that records one delivery outcome (see `Store::record_delivery`).
fn outcome_query<'q>(
    key: &'q str,
    attempt: i32,
    outcome: &'q DeliveryOutcome,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
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

/// The file whose lock is the lock `name` of the database at `db`: `amends.db.name.lock`.
fn lock_path(db: &Path, name: &str) -> std::path::PathBuf {
    let mut file = db.as_os_str().to_owned();
    file.push(format!(".{name}.lock"));
    file.into()
}

/// An incident's state as an append reads it: the write transaction already excludes
/// other writers.
const INCIDENT_STATE_TO_APPEND: &str = "SELECT state FROM incidents WHERE incident_id = $1";

/// A case's version as an append reads it: the write transaction already excludes other
/// writers.
const CASE_VERSION_TO_APPEND: &str = sql::SELECT_CASE_VERSION;

/// The customer's status as a cancellation reads it: the write transaction already
/// excludes other writers.
const CUSTOMER_STATUS_TO_CANCEL: &str = sql::CUSTOMER_STATUS;

#[cfg(test)]
mod plans {
    //! The queries a tick, a booking or a page runs read through their indexes: checked on
    //! SQLite's own plans, which, without ANALYZE statistics (amends gathers none), do not
    //! depend on the rows in the tables.

    use super::*;

    /// SQLite's plan for `sql`, one step a line (`SEARCH ... USING INDEX ...`).
    async fn plan(store: &SqliteStore, sql: &str, binds: usize) -> String {
        let mut q = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for _ in 0..binds {
            q = q.bind(1_i64);
        }
        let rows = q.fetch_all(store.pool()).await.unwrap();
        rows.iter().map(|r| sqlx::Row::get::<String, _>(r, "detail")).collect::<Vec<_>>().join("\n")
    }

    /// Each query a tick, a booking or a page runs, the index it must read through, and whether
    /// it may sort what it read (only ever a bounded result).
    const HOT: &[(&str, &str, usize, &str, bool)] = &[
        ("resolved_with_unsurveyed", sql::RESOLVED_WITH_UNSURVEYED, 2, "incidents_resolved", false),
        ("resolved_with_unsurveyed", sql::RESOLVED_WITH_UNSURVEYED, 2, "impacts_unsurveyed", false),
        ("unsurveyed_customers_of", sql::UNSURVEYED_CUSTOMERS_OF, 2, "impacts_unsurveyed", false),
        ("cases_fixed_unsurveyed", sql::CASES_FIXED_UNSURVEYED, 2, "cases_unsurveyed", false),
        ("surveys_due", sql::SURVEYS_DUE, 2, "survey_decisions_due", false),
        ("last_survey_send", sql::LAST_SURVEY_SEND, 2, "survey_decisions_customer_send", false),
        // Two bounded branches, merged: what is sorted is at most twice the limit.
        ("appointments_to_check", sql::APPOINTMENTS_TO_CHECK, 2, "appointments_to_check", true),
        ("appointments_to_check", sql::APPOINTMENTS_TO_CHECK, 2, "appointments_unchecked_status", true),
        ("live_appointments_of", sql::LIVE_APPOINTMENTS_OF, 1, "appointments_technician_live", true),
        ("live_appointments_between", sql::LIVE_APPOINTMENTS_BETWEEN, 3, "appointments_live", true),
        ("appointment_counts", sql::APPOINTMENT_COUNTS, 2, "appointments_window_end", false),
        ("case_timings", sql::CASE_TIMINGS, 3, "cases_opened", false),
        ("live_holds", sql::LIVE_HOLDS, 2, "appointment_holds_until", true),
        // A customer's page: their newest notices in the index's own order, not sorted in
        // a temporary table (that was a quarter of a page's reads).
        ("notices_told_by_time", sql::NOTICES_TOLD_BY_TIME, 1, "outbox_customer", false),
    ];

    #[tokio::test]
    async fn hot_queries_read_through_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("amends.db")).await.unwrap();
        for &(name, sql, binds, index, may_sort) in HOT {
            let plan = plan(&store, sql, binds).await;
            assert!(plan.contains(&format!("INDEX {index} ")), "{name} does not use {index}:\n{plan}");
            // `SCAN due` reads a branch's bounded result; `SCAN <table>` reads all of it.
            let tables =
                ["appointments", "appointment_holds", "impacts", "incidents", "cases", "survey_decisions"];
            let scans_a_table =
                plan.lines().any(|l| tables.iter().any(|t| l.starts_with(&format!("SCAN {t}"))));
            assert!(!scans_a_table, "{name} scans a table:\n{plan}");
            assert!(may_sort || !plan.contains("TEMP B-TREE"), "{name} sorts what it read:\n{plan}");
        }
    }
}

#[cfg(test)]
mod page_reads {
    //! `customer_reads` through `inline.rs`, against the file another process wrote.

    use super::SqliteStore;
    use crate::{NoticeRow, NoticeStatus, OutboxStore, PreferenceStore, Store};
    use amends_core::preferences::Channel;
    use jiff::Timestamp;

    fn notice(customer: &str) -> NoticeRow {
        let body =
            format!("Hello {customer},\n\nThere is an outage in your area. We expect it back by ten.\n");
        NoticeRow {
            key: format!("{customer}/INC-000001/acknowledgement/0/email"),
            customer_id: customer.into(),
            about: "INC-000001".into(),
            kind: "acknowledgement".into(),
            seq: 0,
            channel: Channel::Email,
            recipient: format!("{customer}@example.com"),
            locale: "en".into(),
            subject: "We know your service is down".into(),
            body: body.repeat(4),
            status: NoticeStatus::Queued,
            attempts: 0,
            next_attempt_at: Timestamp::UNIX_EPOCH,
            last_error: None,
            created_at: Timestamp::UNIX_EPOCH,
            sent_at: None,
            reason: None,
            provider_id: None,
            content_sha256: None,
        }
    }

    #[tokio::test]
    async fn a_page_read_unpacks_against_the_stored_reference_and_fails_once_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("amends.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let written: Vec<NoticeRow> = (0..40).map(|n| notice(&format!("c{n:02}"))).collect();
        store.enqueue_notices(&written).await.unwrap();
        let packed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE packed IS NOT NULL")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(packed > 0, "the notices are packed against a reference");
        // A process that never wrote them knows no reference text: it reads it.
        let other = SqliteStore::open(&path).await.unwrap();
        let read = other.customer_reads("c07", 10).await.unwrap();
        let stored = store.notices_for_customer("c07").await.unwrap();
        assert_eq!(read.notices, stored.into_iter().map(crate::ToldNotice::from).collect::<Vec<_>>());
        assert!(read.notices[0].body.starts_with("Hello c07,"), "{:?}", read.notices);
        other.close().await;
        assert!(other.customer_reads("c07", 10).await.is_err(), "a closed store reads nothing");
    }

    /// The column names a page's reads keep are checked against the statement's own: a
    /// column another process moved (same names, another order) is still found.
    #[tokio::test]
    async fn a_page_read_finds_a_column_another_process_moved() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("amends.db")).await.unwrap();
        let prefs = crate::PreferencesRow {
            customer_id: "c01".into(),
            doc: r#"{"language":"es"}"#.into(),
            updated_at: Timestamp::UNIX_EPOCH,
        };
        store.put_preferences(&prefs).await.unwrap();
        assert_eq!(store.customer_reads("c01", 10).await.unwrap().preferences.as_ref(), Some(&prefs));
        let mut other = store.pool().acquire().await.unwrap();
        for moved in [
            "ALTER TABLE preferences DROP COLUMN doc",
            "ALTER TABLE preferences ADD COLUMN doc TEXT NOT NULL DEFAULT '{}'",
            r#"UPDATE preferences SET doc = '{"language":"es"}'"#,
        ] {
            sqlx::query(moved).execute(&mut *other).await.unwrap_or_else(|e| panic!("{moved}: {e}"));
        }
        drop(other);
        assert_eq!(store.customer_reads("c01", 10).await.unwrap().preferences, Some(prefs));
    }
}
