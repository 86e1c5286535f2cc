//! A customer's page, read on the request's own thread (SQLite only).
//!
//! sqlx runs each SQLite connection on a thread of its own: every query is handed to it and
//! its rows handed back. A customer's page takes seven reads, each an indexed lookup of a
//! few microseconds, and under a storm the hand-offs cost more than the reads: profiled
//! during `amends bench --web-only`, waking and switching threads was about half the CPU.
//! So the page's reads run here, on the caller's thread, through rusqlite on connections of
//! their own, opened read-only on the same file: in WAL mode a reader never waits for the
//! writer. All seven run in one read transaction, so the page shows one moment.
//!
//! They use the SQL and the row decoders every other read uses (`sql.rs`, `common.rs`,
//! through [`RowGet`]), so a page reads what the API would.
//!
//! Bounds: at most [`IDLE_CONNECTIONS_MAX`] connections are kept between requests (one is
//! opened when none is idle); a read waits at most [`BUSY_TIMEOUT`] for a lock (only
//! recovery of the write-ahead log takes one a reader must wait for).

use crate::common::{self, RowGet};
use crate::packed::{self, References};
use crate::{CreditFilter, CustomerReads, Ledger, Result, StoreError, sql};
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections kept open between requests, at most.
pub const IDLE_CONNECTIONS_MAX: usize = 8;
/// The longest a read waits for a lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(250);
/// How much of the database file each connection reads through a memory map rather than
/// copies into its page cache (address space, not memory: the pages are the kernel's page
/// cache, shared by all). While a fan-out writes, every read transaction starts with its
/// page cache emptied (SQLite drops it when the database has changed), so without the map
/// each page of a customer's page would be read again by a system call.
pub const MMAP_BYTES: i64 = 1 << 30;
/// Prepared statements each connection keeps.
const STATEMENTS_CACHED: usize = 16;

/// Read-only connections to one SQLite file, taken by a read and given back.
#[derive(Debug)]
pub(crate) struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`InlineReads::close`]: later reads fail, as the store's other reads do.
    closed: AtomicBool,
    /// The open incidents and their sources as last decoded, with the count of changes to
    /// incidents they were read at (`counters` 'incidents', moved by triggers on every
    /// write to either table). Every page shows the open incidents that concern its
    /// customer; decoding them all for each page was a quarter of its reads.
    open: Mutex<Option<Arc<OpenIncidents>>>,
}

/// The open incidents and their sources at one count of changes.
#[derive(Debug)]
struct OpenIncidents {
    changes: i64,
    incidents: Vec<crate::IncidentRow>,
    sources: Vec<crate::IncidentSource>,
}

impl InlineReads {
    pub(crate) fn new(path: PathBuf) -> Self {
        InlineReads {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            open: Mutex::default(),
        }
    }

    /// Closes the idle connections; one in use is closed when its read ends.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Everything a customer's page shows (see [`CustomerReads`]), in one read transaction.
    pub(crate) fn customer_reads(
        &self,
        references: &References,
        customer_id: &str,
        rows_max: u32,
    ) -> Result<CustomerReads> {
        let mut connection = self.take()?;
        let reads = read_customer(&mut connection, references, &self.open, customer_id, rows_max);
        // A connection that failed may be in any state: it is closed, not kept.
        if reads.is_ok() {
            self.give_back(connection);
        }
        reads
    }

    fn take(&self) -> Result<Connection> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        if let Some(connection) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(connection);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags).map_err(database)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(database)?;
        connection.pragma_update(None, "mmap_size", MMAP_BYTES).map_err(database)?;
        connection.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
        Ok(connection)
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_CONNECTIONS_MAX && !self.closed.load(Ordering::SeqCst) {
            idle.push(connection);
        }
    }
}

fn read_customer(
    connection: &mut Connection,
    references: &References,
    open: &Mutex<Option<Arc<OpenIncidents>>>,
    customer_id: &str,
    rows_max: u32,
) -> Result<CustomerReads> {
    // A read transaction begun and ended by statements kept prepared: rusqlite's
    // `transaction()` parses its BEGIN and COMMIT afresh each time, a twentieth of a
    // page's reads. A read that fails leaves the connection to be closed, which ends it.
    connection.prepare_cached("BEGIN").and_then(|mut s| s.execute([])).map_err(database)?;
    let snapshot = &*connection;
    let one = [customer_id];
    let page_sql = PageSql::for_rows(rows_max);
    let open = open_incidents(snapshot, open)?;
    let (notices, notices_told) =
        newest_told_notices(snapshot, references, &page_sql, customer_id, rows_max)?;
    let reads = CustomerReads {
        book_version: rows(snapshot, sql::SELECT_BOOK_VERSION, &[], |row| Ok(row.get_i64("value")?))?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt { table: "counters", reason: "no book version".into() })?,
        preferences: rows(snapshot, sql::SELECT_PREFERENCES, &one, |row| common::preferences_from_row(row))?
            .into_iter()
            .next(),
        open_incidents: open.incidents.clone(),
        open_sources: open.sources.clone(),
        impacts: rows(snapshot, sql::SELECT_CUSTOMER_IMPACTS, &one, |row| common::impact_from_row(row))?,
        notices,
        notices_told,
        credits: rows(snapshot, &page_sql.credits, &one, |row| common::credit_from_row(row))?,
        offers: rows(snapshot, &page_sql.offers, &one, |row| common::credit_from_row(row))?,
        appointments: rows(snapshot, &page_sql.visits, &one, |row| common::appointment_from_row(row))?,
    };
    connection.prepare_cached("COMMIT").and_then(|mut s| s.execute([])).map_err(database)?;
    Ok(reads)
}

/// The SQL of a page's reads that depends on how many rows a page lists, made once per
/// thread for that number: building it for every page (the same text each time) was a
/// twentieth of a page's reads. Each query's one parameter is the customer.
struct PageSql {
    rows_max: u32,
    credits: String,
    offers: String,
    visits: String,
    /// One more notice than a page lists, by time (see [`newest_told_notices`]).
    notices_by_time: String,
    /// A page's notices with SQLite's sort, for ties that cross the page's end.
    notices_newest: String,
}

impl PageSql {
    fn for_rows(rows_max: u32) -> std::rc::Rc<PageSql> {
        use std::cell::RefCell;
        thread_local! {
            static KEPT: RefCell<Option<std::rc::Rc<PageSql>>> = const { RefCell::new(None) };
        }
        KEPT.with_borrow_mut(|kept| {
            if let Some(page_sql) = kept.as_ref().filter(|p| p.rows_max == rows_max) {
                return page_sql.clone();
            }
            let page_sql = std::rc::Rc::new(PageSql::new(rows_max));
            *kept = Some(page_sql.clone());
            page_sql
        })
    }

    fn new(rows_max: u32) -> PageSql {
        // Built by the queries the API's reads use, for a customer: their one bind.
        let mine = CreditFilter { customer_id: Some("customer".into()), ..CreditFilter::default() };
        let visits = crate::AppointmentFilter {
            customer_id: Some("customer".into()),
            limit: rows_max,
            ..crate::AppointmentFilter::default()
        };
        let one_bind = |(sql, binds): (String, Vec<&str>)| {
            debug_assert_eq!(binds.len(), 1, "a page's query binds the customer only: {sql}");
            sql
        };
        PageSql {
            rows_max,
            credits: one_bind(sql::ledger_query(Ledger::Credits, &mine)),
            offers: one_bind(sql::ledger_query(Ledger::OnRequestOffers, &mine)),
            visits: one_bind(sql::appointments_query(&visits)),
            notices_by_time: format!("{} LIMIT {}", sql::NOTICES_TOLD_BY_TIME, u64::from(rows_max) + 1),
            notices_newest: format!("{} LIMIT {rows_max}", sql::NOTICES_TOLD_NEWEST),
        }
    }
}

/// The newest `rows_max` notices `customer_id` was or will be sent, newest first and ties
/// in key order (as [`crate::newest_told`] lists them), and how many there are in all.
/// Only the newest are read and unpacked: a customer told thousands of times is not read
/// whole for a page that lists a few.
///
/// The index `outbox_customer` (customer, time) gives them newest first with no sort, but
/// notices of one instant in no set order: those ties are put in key order here. (Asked to
/// break them itself, SQLite sorted every page's notices in a temporary table, a quarter
/// of a page's reads; putting the key in the index instead cost the fan-out's writes a
/// tenth.) One more than asked for is read: fewer than that are all there are, and need no
/// count (most customers); otherwise the last one tells whether an instant's ties cross
/// the page's end, and only then is the page read again with SQLite's sort.
fn newest_told_notices(
    snapshot: &Connection,
    references: &References,
    page_sql: &PageSql,
    customer_id: &str,
    rows_max: u32,
) -> Result<(Vec<crate::ToldNotice>, u64)> {
    let one = [customer_id];
    let mut keyed = rows(snapshot, &page_sql.notices_by_time, &one, |row| {
        Ok((row.get_text("key")?, told_notice(snapshot, references, row)?))
    })?;
    let page = rows_max as usize;
    let all_read = keyed.len() <= page;
    let ties_cross = !all_read && page > 0 && keyed[page - 1].1.created_at == keyed[page].1.created_at;
    let notices = if ties_cross {
        rows(snapshot, &page_sql.notices_newest, &one, |row| told_notice(snapshot, references, row))?
    } else {
        keyed.truncate(page);
        keyed.sort_by(|(key_a, a), (key_b, b)| (b.created_at, key_b).cmp(&(a.created_at, key_a)));
        keyed.into_iter().map(|(_, notice)| notice).collect()
    };
    if all_read {
        let told = notices.len() as u64;
        return Ok((notices, told));
    }
    let told =
        rows(snapshot, sql::NOTICES_TOLD_COUNT, &one, |row| common::Cols::new(row, "outbox").count("told"))?;
    Ok((notices, told.into_iter().next().unwrap_or(0)))
}

/// The open incidents and their sources in the read transaction `snapshot`: those kept in
/// `open` while the count of changes to incidents has not moved since they were read, else
/// read (and kept).
fn open_incidents(
    snapshot: &Connection,
    open: &Mutex<Option<Arc<OpenIncidents>>>,
) -> Result<Arc<OpenIncidents>> {
    let changes = rows(snapshot, sql::SELECT_INCIDENT_CHANGES, &[], |row| Ok(row.get_i64("value")?))?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt {
            table: "counters",
            reason: "no count of incident changes".into(),
        })?;
    let kept = open.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(kept) = kept.filter(|k| k.changes == changes) {
        return Ok(kept);
    }
    let read = Arc::new(OpenIncidents {
        changes,
        incidents: rows(snapshot, sql::SELECT_OPEN_INCIDENTS, &[], |row| common::incident_from_row(row))?,
        sources: rows(snapshot, sql::OPEN_SOURCES, &[], |row| common::source_from_row(row))?,
    });
    let mut kept = open.lock().unwrap_or_else(|e| e.into_inner());
    // A read of an older count does not replace a newer one kept meanwhile.
    if kept.as_ref().is_none_or(|k| k.changes < changes) {
        *kept = Some(read.clone());
    }
    Ok(read)
}

/// The names of the parameters a page's queries bind, in order.
const PARAMETERS: [&str; 4] = ["$1", "$2", "$3", "$4"];

/// The rows of `sql` (its parameters `$1`, `$2`, ... bound to `binds` in order), decoded.
fn rows<T>(
    connection: &Connection,
    sql: &str,
    binds: &[&str],
    decode: impl Fn(&Named<'_, '_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(database)?;
    for (n, value) in binds.iter().enumerate() {
        let name = *PARAMETERS.get(n).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Protocol(format!(
                "more than {} parameters in {sql}",
                PARAMETERS.len()
            )))
        })?;
        let index = statement.parameter_index(name).map_err(database)?.ok_or_else(|| {
            StoreError::Database(sqlx::Error::Protocol(format!("no parameter {name} in {sql}")))
        })?;
        statement.raw_bind_parameter(index, value).map_err(database)?;
    }
    let mut rows = statement.raw_query();
    let mut decoded = Vec::new();
    let mut columns = None;
    while let Some(row) = rows.next().map_err(database)? {
        // Named after the first step: a statement whose schema another process changed
        // is prepared again by that step, and only then names its new columns.
        let columns = columns.get_or_insert_with(|| column_names(row.as_ref(), sql));
        decoded.push(decode(&Named { row, columns })?);
    }
    Ok(decoded)
}

/// Lists of column names kept per thread at most (see [`column_names`]); when full, all are
/// dropped. The page's queries are a dozen.
const COLUMN_LISTS_KEPT_MAX: usize = 64;

/// A statement's column names, in order.
type ColumnNames = std::rc::Rc<[Box<str>]>;

/// The names of `statement`'s columns (its SQL text `sql`), kept per thread by where that
/// text is: listing them afresh for each query was a dozen allocations, a twentieth of a
/// page's reads, and hashing each text (a few hundred bytes) to find them cost more than
/// knowing where it is. A kept list is checked against the statement's own names (no
/// allocation), so neither another text at the same place later nor a schema changed
/// meanwhile by another process can misplace a column.
fn column_names(statement: &rusqlite::Statement<'_>, sql: &str) -> ColumnNames {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        /// By the address and length of the SQL text.
        static KEPT: RefCell<HashMap<(usize, usize), ColumnNames>> = RefCell::default();
    }
    let place = (sql.as_ptr() as usize, sql.len());
    KEPT.with_borrow_mut(|kept| {
        let same = |names: &[Box<str>]| {
            names.len() == statement.column_count()
                && names
                    .iter()
                    .enumerate()
                    .all(|(i, name)| statement.column_name(i).is_ok_and(|n| n == &**name))
        };
        if let Some(names) = kept.get(&place).filter(|names| same(names)) {
            return names.clone();
        }
        let names: ColumnNames = statement.column_names().into_iter().map(Box::from).collect();
        if kept.len() >= COLUMN_LISTS_KEPT_MAX {
            kept.clear();
        }
        kept.insert(place, names.clone());
        names
    })
}

/// A row whose columns are found by name in the statement's names, read once per query.
/// rusqlite's own lookup by name asks SQLite for every column's name and compares it
/// without regard to case, for each value read: for a page's notices (nineteen values a
/// row, of two dozen columns) that was more than the reads themselves.
struct Named<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    columns: &'r [Box<str>],
}

impl Named<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> rusqlite::Result<T> {
        self.row.get(self.index(col)?)
    }

    /// The value of `col` as SQLite holds it, borrowed from the row (no copy).
    fn value(&self, col: &str) -> rusqlite::Result<rusqlite::types::ValueRef<'_>> {
        self.row.get_ref(self.index(col)?)
    }

    fn index(&self, col: &str) -> rusqlite::Result<usize> {
        self.columns
            .iter()
            .position(|c| **c == *col)
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(col.to_string()))
    }
}

/// A notice as a page lists it, its content unpacked against its group's reference text
/// (read from the database the first time, as `SqliteStore::decode_notice` does).
fn told_notice(
    connection: &Connection,
    references: &References,
    row: &Named<'_, '_>,
) -> Result<crate::ToldNotice> {
    let c = common::Cols::new(row, "outbox");
    let corrupt = |reason: String| StoreError::Corrupt { table: "outbox", reason };
    // Borrowed from the row where only read here: a page unpacks every notice it lists.
    let borrowed = |col: &str| row.value(col).map_err(|e| corrupt(format!("column {col}: {e}")));
    let text = |col: &str| borrowed(col)?.as_str().map_err(|e| corrupt(format!("column {col}: {e}")));
    let channel = text("channel")?;
    let channel = amends_core::preferences::Channel::parse(channel)
        .ok_or_else(|| corrupt(format!("column channel: {channel:?} is not a value it may hold")))?;
    let packed = borrowed("packed")?.as_blob_or_null().map_err(|e| corrupt(format!("column packed: {e}")))?;
    let kind = c.text("kind")?;
    let (subject, body) = match packed {
        // A notice stored as it is (one with no content to pack).
        None => (c.text("subject")?, c.text("body")?),
        Some(packed) => {
            // The key names the notice in an error only.
            let key = || text("key").unwrap_or_default();
            let group =
                packed::group_of(text("about")?, &kind, c.i64("seq")?, channel.as_str(), text("locale")?);
            let reference = match references.get(&group) {
                Some(text) => text,
                None => {
                    let text: Vec<u8> = connection
                        .prepare_cached(sql::SELECT_REFERENCE)
                        .and_then(|mut s| s.query_row([&group], |r| r.get(0)))
                        .map_err(|e| {
                            corrupt(format!("notice {}: no reference text for {group}: {e}", key()))
                        })?;
                    let text: std::sync::Arc<[u8]> = text.into();
                    references.remember(group.clone(), text.clone());
                    text
                }
            };
            packed::unpack(packed, &reference).map_err(|e| corrupt(format!("notice {}: {e}", key())))?
        }
    };
    let notice = crate::ToldNotice {
        kind,
        channel,
        subject,
        body,
        created_at: c.ts("created_at")?,
        sent_at: c.opt_ts("sent_at")?,
    };
    Ok(notice)
}

fn database(e: rusqlite::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(e)))
}

fn column(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

impl RowGet for Named<'_, '_> {
    fn get_text(&self, col: &str) -> sqlx::Result<String> {
        self.get(col).map_err(column)
    }
    fn get_opt_text(&self, col: &str) -> sqlx::Result<Option<String>> {
        self.get(col).map_err(column)
    }
    fn get_i64(&self, col: &str) -> sqlx::Result<i64> {
        self.get(col).map_err(column)
    }
    fn get_opt_i64(&self, col: &str) -> sqlx::Result<Option<i64>> {
        self.get(col).map_err(column)
    }
    fn get_i32(&self, col: &str) -> sqlx::Result<i32> {
        self.get(col).map_err(column)
    }
    fn get_i16(&self, col: &str) -> sqlx::Result<i16> {
        self.get(col).map_err(column)
    }
    fn get_opt_i16(&self, col: &str) -> sqlx::Result<Option<i16>> {
        self.get(col).map_err(column)
    }
    fn get_opt_i32(&self, col: &str) -> sqlx::Result<Option<i32>> {
        self.get(col).map_err(column)
    }
    fn get_bool(&self, col: &str) -> sqlx::Result<bool> {
        self.get(col).map_err(column)
    }
}
