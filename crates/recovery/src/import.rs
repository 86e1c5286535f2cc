//! Import of a provider's book from CSV: `plans.csv`, `topology.csv`, `customers.csv`.
//!
//! The whole input is parsed and checked before anything is written: every bad line is
//! reported (`customers.csv:17: email "x@" is not an address`), and then either every row
//! is upserted in one transaction or nothing is. Any subset of the three files may be
//! given; references are checked against the files plus what the store already holds.

use crate::book::{customer_to_row, element_to_row, plan_to_row};
use amends_core::book::{
    Customer, CustomerStatus, Email, FieldError, Jurisdiction, Locale, PhoneE164, Plan, Segment, Zone,
    parse_billing_day, parse_currency, parse_id, parse_instant, parse_price,
};
use amends_core::money::Money;
use amends_core::policy::facts::{ATTRIBUTES_MAX, attribute_from_text};
use amends_core::policy::{Attribute, Attributes};
use amends_core::topology::{Element, Topology, TopologyError};
use amends_store::{BookCounts, BookRows, BookStore, StoreError};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// At most this many bad lines are listed; the rest are counted.
pub const IMPORT_ERRORS_MAX: usize = 1_000;

pub const PLAN_COLUMNS: [&str; 4] = ["plan_id", "name", "monthly_price_minor", "currency"];
pub const TOPOLOGY_COLUMNS: [&str; 4] = ["element_id", "parent_id", "kind", "name"];
pub const CUSTOMER_COLUMNS: [&str; 14] = [
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
];
/// Customer columns a file may leave out: each reads as empty on every line (`segment`
/// then defaults to `residential`, `jurisdiction` to unknown); and any number of
/// [`ATTRIBUTE_COLUMNS`].
pub const CUSTOMER_OPTIONAL_COLUMNS: [&str; 3] = ["segment", "jurisdiction", ATTRIBUTE_COLUMNS];

/// Columns named `attr.NAME` give the customer an attribute policies read as
/// `customer.attributes.NAME`: `true` and `false` are booleans, a whole number without
/// leading zeros an integer, anything else text (so `02139` stays text); empty is absent.
pub const ATTRIBUTE_COLUMNS: &str = "attr.*";
const ATTRIBUTE_PREFIX: &str = "attr.";

/// One problem, at one line of one file (line 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("import refused, nothing was written:\n{}", list(.errors, *.more))]
    Invalid { errors: Vec<LineError>, more: usize },
    #[error("no plans.csv, topology.csv or customers.csv in {0}")]
    NoFiles(String),
    #[error("reading {file}: {error}")]
    Io { file: String, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored book is inconsistent: {0}")]
    Book(#[from] crate::book::BookError),
    #[error("the import was interrupted: {0}")]
    Interrupted(String),
}

fn list(errors: &[LineError], more: usize) -> String {
    let mut lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if more > 0 {
        lines.push(format!("... and {more} more"));
    }
    lines.join("\n")
}

/// A CSV source. `Send`, so parsing can run on a blocking thread off the async runtime.
pub type CsvSource = Box<dyn Read + Send>;

/// The CSV texts to import; any may be absent.
#[derive(Default)]
pub struct ImportInput {
    pub plans: Option<CsvSource>,
    pub topology: Option<CsvSource>,
    pub customers: Option<CsvSource>,
}

impl ImportInput {
    pub fn from_dir(dir: &Path) -> Result<ImportInput, ImportError> {
        let open = |name: &str| -> Result<Option<CsvSource>, ImportError> {
            let path = dir.join(name);
            match std::fs::File::open(&path) {
                Ok(f) => Ok(Some(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(ImportError::Io { file: path.display().to_string(), error }),
            }
        };
        let input = ImportInput {
            plans: open("plans.csv")?,
            topology: open("topology.csv")?,
            customers: open("customers.csv")?,
        };
        if input.plans.is_none() && input.topology.is_none() && input.customers.is_none() {
            return Err(ImportError::NoFiles(dir.display().to_string()));
        }
        Ok(input)
    }

    pub fn from_texts(plans: Option<String>, topology: Option<String>, customers: Option<String>) -> Self {
        let boxed =
            |s: Option<String>| s.map(|s| Box::new(std::io::Cursor::new(s.into_bytes())) as CsvSource);
        ImportInput { plans: boxed(plans), topology: boxed(topology), customers: boxed(customers) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    /// Rows in the files, now upserted.
    pub imported: BookCounts,
    /// Rows in the store after the import.
    pub total: BookCounts,
}

/// Parses and checks everything, then writes it in one transaction.
pub async fn import(
    store: &dyn BookStore,
    input: ImportInput,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportSummary, ImportError> {
    let existing = store.load_book().await?;
    // Parsing up to millions of lines is CPU work: off the async runtime's threads.
    let rows = tokio::task::spawn_blocking(move || parse_and_check(input, &existing))
        .await
        .map_err(|e| ImportError::Interrupted(e.to_string()))??;
    let imported = BookCounts {
        plans: rows.plans.len() as u64,
        elements: rows.elements.len() as u64,
        customers: rows.customers.len() as u64,
    };
    store.import_book(&rows, progress).await?;
    let total = store.book_counts().await?;
    Ok(ImportSummary { imported, total })
}

/// Errors collected across all files, capped at [`IMPORT_ERRORS_MAX`].
#[derive(Default)]
struct Errors {
    list: Vec<LineError>,
    more: usize,
}

impl Errors {
    fn push(&mut self, file: &str, line: u64, message: impl Into<String>) {
        if self.list.len() < IMPORT_ERRORS_MAX {
            self.list.push(LineError { file: file.to_string(), line, message: message.into() });
        } else {
            self.more += 1;
        }
    }

    fn into_result<T>(self, ok: T) -> Result<T, ImportError> {
        if self.list.is_empty() {
            Ok(ok)
        } else {
            Err(ImportError::Invalid { errors: self.list, more: self.more })
        }
    }
}

/// Parses every file and checks it against itself and `existing`; returns the rows to
/// upsert or every problem found.
pub fn parse_and_check(input: ImportInput, existing: &BookRows) -> Result<BookRows, ImportError> {
    let mut errors = Errors::default();
    let plans = match input.plans {
        Some(r) => read_rows("plans.csv", r, &PLAN_COLUMNS, &[], parse_plan, |_, _, _| {}, &mut errors),
        None => Vec::new(),
    };
    let elements = match input.topology {
        Some(r) => {
            read_rows("topology.csv", r, &TOPOLOGY_COLUMNS, &[], parse_element, |_, _, _| {}, &mut errors)
        }
        None => Vec::new(),
    };
    // A line that does not parse still has its plan and element checked: every problem
    // of a file is named in one go, not one kind of problem per attempt.
    let mut references: Vec<(u64, String, String)> = Vec::new();
    let column = |name: &str| CUSTOMER_COLUMNS.iter().position(|c| *c == name).expect("a customer column");
    let (plan_column, element_column) = (column("plan_id"), column("element_id"));
    let customers = match input.customers {
        Some(r) => read_rows(
            "customers.csv",
            r,
            &CUSTOMER_COLUMNS,
            &CUSTOMER_OPTIONAL_COLUMNS,
            customer_parser(),
            |line, c, record| {
                references.push((
                    line,
                    c.get(record, plan_column).into(),
                    c.get(record, element_column).into(),
                ))
            },
            &mut errors,
        ),
        None => Vec::new(),
    };
    references.extend(customers.iter().map(|(line, c)| (*line, c.plan_id.clone(), c.element_id.clone())));
    references.sort_by_key(|(line, _, _)| *line);
    check_topology(&elements, existing, &mut errors);
    check_references(&references, &plans, &elements, existing, &mut errors);
    errors.into_result(BookRows {
        plans: plans.iter().map(|(_, p)| plan_to_row(p)).collect(),
        elements: elements.iter().map(|(_, e)| element_to_row(e)).collect(),
        customers: customers.iter().map(|(_, c)| customer_to_row(c)).collect(),
    })
}

/// One customer from its fields in [`CUSTOMER_COLUMNS`] order, checked exactly as a line
/// of `customers.csv` is (a sign-up through the API or the CLI); every bad field named.
pub fn customer_from_fields(fields: [&str; 14]) -> Result<Customer, Vec<FieldError>> {
    let controls: Vec<FieldError> = fields
        .iter()
        .zip(CUSTOMER_COLUMNS)
        .filter_map(|(value, field)| {
            let found = amends_core::text::forbidden_in_line(value)?;
            Some(FieldError::new(field, value, format!("{found}; control characters are not allowed")))
        })
        .collect();
    if !controls.is_empty() {
        return Err(controls);
    }
    let columns = Columns((0..CUSTOMER_COLUMNS.len()).map(Some).collect(), Vec::new());
    let record = csv::StringRecord::from(fields.to_vec());
    parse_customer(&columns, &record, Zone::parse(fields[5]))
}

/// Columns of one file by name, so files may order them freely; `None` for an optional
/// column the file leaves out. Then the attribute columns, by name.
struct Columns(Vec<Option<usize>>, Vec<(String, usize)>);

impl Columns {
    fn get<'r>(&self, record: &'r csv::StringRecord, i: usize) -> &'r str {
        self.0[i].and_then(|col| record.get(col)).unwrap_or("")
    }

    /// The line's attributes: each non-empty `attr.NAME` cell, typed.
    fn attributes(&self, record: &csv::StringRecord) -> Result<Option<Arc<Attributes>>, FieldError> {
        let mut out = Attributes::new();
        for (name, col) in &self.1 {
            let text = record.get(*col).unwrap_or("").trim();
            if !text.is_empty() {
                out.insert(name.clone(), attribute_value(name, text)?);
            }
        }
        Ok((!out.is_empty()).then(|| Arc::new(out)))
    }
}

fn attribute_value(name: &str, text: &str) -> Result<Attribute, FieldError> {
    attribute_from_text(text)
        .map_err(|problem| FieldError::new("attribute", text, format!("(attr.{name}) {problem}")))
}

/// `attr.NAME` where NAME reads in CEL as `customer.attributes.NAME`: a lowercase letter,
/// then lowercase letters, digits and `_`, at most 32 bytes.
fn attribute_name(column: &str) -> Option<&str> {
    let name = column.strip_prefix(ATTRIBUTE_PREFIX)?;
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(name)
}

/// Where each of `wanted` is in `header`; every column not in `optional` must be there.
fn header_columns(
    file: &str,
    header: &csv::StringRecord,
    wanted: &[&str],
    optional: &[&str],
    errors: &mut Errors,
) -> Option<Columns> {
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    let mut ok = true;
    let mut attributes = Vec::new();
    let attributes_allowed = optional.contains(&ATTRIBUTE_COLUMNS);
    for (i, name) in names.iter().enumerate() {
        if attributes_allowed && name.starts_with(ATTRIBUTE_PREFIX) {
            match attribute_name(name) {
                Some(a) if attributes.len() < ATTRIBUTES_MAX => attributes.push((a.to_string(), i)),
                Some(_) => {
                    errors.push(file, 1, format!("more than {ATTRIBUTES_MAX} attribute columns"));
                    ok = false;
                }
                None => {
                    errors.push(file, 1, format!("attribute column {name:?}: after attr., a lowercase letter, then a-z, 0-9 and _, at most 32 bytes"));
                    ok = false;
                }
            }
        } else if !wanted.contains(name) {
            let extra = if attributes_allowed { " and attr.NAME for attributes" } else { "" };
            errors.push(
                file,
                1,
                format!("unknown column {name:?}; the columns are {}{extra}", wanted.join(",")),
            );
            ok = false;
        }
    }
    let mut cols = Vec::with_capacity(wanted.len());
    for w in wanted {
        match names.iter().position(|n| n == w) {
            Some(i) => cols.push(Some(i)),
            None if optional.contains(w) => cols.push(None),
            None => {
                errors.push(file, 1, format!("missing column {w:?}"));
                ok = false;
            }
        }
    }
    ok.then_some(Columns(cols, attributes))
}

/// Where a file's line breaks are, found as it is read, so a record is named by its true
/// line: the csv crate's own count is one short for every CRLF (BurntSushi/rust-csv#395),
/// which is what spreadsheets write. A break is a LF, a CR, or a CR LF pair (once); a
/// quoted line break inside a field counts too, as a person reading the file counts it.
#[derive(Clone, Default)]
pub(crate) struct LineBreaks(std::sync::Arc<std::sync::Mutex<BreakState>>);

#[derive(Default)]
struct BreakState {
    /// Byte offsets of the breaks, in order.
    at: Vec<u64>,
    read: u64,
    last: u8,
}

impl LineBreaks {
    /// `reader`, noting its line breaks here as it is read.
    pub(crate) fn watch<R: Read>(&self, inner: R) -> WatchedLines<R> {
        WatchedLines { inner, breaks: self.clone() }
    }

    /// The 1-based line holding the byte at `offset` (a record's or error's position).
    pub(crate) fn line_of(&self, offset: u64) -> u64 {
        let state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        1 + state.at.partition_point(|&b| b < offset) as u64
    }
}

/// A reader that tells [`LineBreaks`] where its breaks are.
pub(crate) struct WatchedLines<R> {
    inner: R,
    breaks: LineBreaks,
}

impl<R: Read> Read for WatchedLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.breaks.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = state.read;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\r' || (b == b'\n' && state.last != b'\r') {
                state.at.push(start + i as u64);
            }
            state.last = b;
        }
        state.read += n as u64;
        Ok(n)
    }
}

/// Reads one CSV file, parsing each record with `parse`; bad records go to `errors`.
fn read_rows<T>(
    file: &str,
    reader: CsvSource,
    wanted: &[&str],
    optional: &[&str],
    mut parse: impl FnMut(&Columns, &csv::StringRecord) -> Result<T, Vec<FieldError>>,
    mut unparsed: impl FnMut(u64, &Columns, &csv::StringRecord),
    errors: &mut Errors,
) -> Vec<(u64, T)> {
    let breaks = LineBreaks::default();
    let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(breaks.watch(reader));
    let header = match csv.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(file, 1, format!("unreadable header: {e}"));
            return Vec::new();
        }
    };
    let Some(columns) = header_columns(file, &header, wanted, optional, errors) else { return Vec::new() };
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    // Ids are checked for repeats on every line, even one that fails to parse otherwise.
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| breaks.line_of(p.byte()));
                let id = columns.get(&record, 0);
                match first_line_of.get(id) {
                    Some(first) => {
                        errors.push(file, line, format!("{} {id:?} repeats line {first}", wanted[0]))
                    }
                    None if !id.is_empty() => {
                        first_line_of.insert(id.to_string(), line);
                    }
                    None => {}
                }
                if let Some(problem) = forbidden_cell(&header, &record) {
                    errors.push(file, line, problem);
                    unparsed(line, &columns, &record);
                    continue;
                }
                match parse(&columns, &record) {
                    Ok(row) => out.push((line, row)),
                    Err(problems) => {
                        problems.into_iter().for_each(|p| errors.push(file, line, p.to_string()));
                        unparsed(line, &columns, &record);
                    }
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| breaks.line_of(p.byte()));
                errors.push(file, line, csv_problem(&e));
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
    out
}

/// The first cell of `record` holding a character no field may (a control character, a
/// line break, a bidirectional override, a zero-width character), named by its column.
fn forbidden_cell(header: &csv::StringRecord, record: &csv::StringRecord) -> Option<String> {
    record.iter().enumerate().find_map(|(i, cell)| {
        let found = amends_core::text::forbidden_in_line(cell)?;
        let column = header.get(i).map_or("a column", str::trim);
        Some(format!("{column} {found}; control characters are not allowed"))
    })
}

fn csv_problem(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("has {len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
        _ => format!("malformed CSV: {e}"),
    }
}

/// Runs every field parser and keeps all their errors.
macro_rules! fields {
    ($errors:ident; $($name:ident = $expr:expr;)*) => {
        $(let $name = match $expr { Ok(v) => Some(v), Err(e) => { $errors.push(e); None } };)*
    };
}

fn optional<T>(s: &str, parse: impl Fn(&str) -> Result<T, FieldError>) -> Result<Option<T>, FieldError> {
    if s.is_empty() { Ok(None) } else { parse(s).map(Some) }
}

/// A customer's segment; an empty one (or an absent column) is `residential`.
fn segment_or_residential(s: &str) -> Result<Segment, FieldError> {
    if s.is_empty() { Ok(Segment::RESIDENTIAL) } else { Segment::parse(s) }
}

fn required_text(field: &'static str, s: &str) -> Result<String, FieldError> {
    if s.trim().is_empty() {
        Err(FieldError::new(field, s, "is empty"))
    } else if s.len() > 256 {
        Err(FieldError::new(field, s, "is longer than 256 bytes"))
    } else {
        Ok(s.to_string())
    }
}

fn parse_plan(c: &Columns, r: &csv::StringRecord) -> Result<Plan, Vec<FieldError>> {
    let mut e = Vec::new();
    fields! { e;
        id = parse_id("plan_id", c.get(r, 0));
        name = required_text("name", c.get(r, 1));
        price = parse_price("monthly_price_minor", c.get(r, 2));
        currency = parse_currency(c.get(r, 3));
    }
    match (id, name, price, currency) {
        (Some(id), Some(name), Some(price), Some(currency)) if e.is_empty() => {
            Ok(Plan { id, name, monthly_price: Money::new(price, currency) })
        }
        _ => Err(e),
    }
}

fn parse_element(c: &Columns, r: &csv::StringRecord) -> Result<Element, Vec<FieldError>> {
    let mut e = Vec::new();
    fields! { e;
        id = parse_id("element_id", c.get(r, 0));
        parent = optional(c.get(r, 1), |s| parse_id("parent_id", s));
        kind = required_text("kind", c.get(r, 2));
        name = required_text("name", c.get(r, 3));
    }
    match (id, parent, kind, name) {
        (Some(id), Some(parent_id), Some(kind), Some(name)) if e.is_empty() => {
            Ok(Element { id, parent_id, kind, name })
        }
        _ => Err(e),
    }
}

/// A customer parser that looks each time zone up once.
fn customer_parser() -> impl FnMut(&Columns, &csv::StringRecord) -> Result<Customer, Vec<FieldError>> {
    let mut zones: HashMap<String, Result<Zone, FieldError>> = HashMap::new();
    move |c, r| {
        let tz = c.get(r, 5);
        let zone = zones.entry(tz.to_string()).or_insert_with(|| Zone::parse(tz)).clone();
        parse_customer(c, r, zone)
    }
}

fn parse_customer(
    c: &Columns,
    r: &csv::StringRecord,
    zone: Result<Zone, FieldError>,
) -> Result<Customer, Vec<FieldError>> {
    let mut e = Vec::new();
    fields! { e;
        id = parse_id("customer_id", c.get(r, 0));
        name = required_text("name", c.get(r, 1));
        email = optional(c.get(r, 2), Email::parse);
        phone = optional(c.get(r, 3), PhoneE164::parse);
        locale = Locale::parse(c.get(r, 4));
        zone = zone;
        plan_id = parse_id("plan_id", c.get(r, 6));
        element_id = parse_id("element_id", c.get(r, 7));
        device_id = optional(c.get(r, 8), |s| parse_id("device_id", s));
        billing_day = parse_billing_day(c.get(r, 9));
        active_since = parse_instant("active_since", c.get(r, 10));
        status = CustomerStatus::parse(c.get(r, 11));
        segment = segment_or_residential(c.get(r, 12));
        jurisdiction = optional(c.get(r, 13), Jurisdiction::parse);
        attributes = c.attributes(r);
    }
    // Every field parsed (no errors) means every value is Some.
    let customer = || {
        Some(Customer {
            id: id?.into(),
            name: name?,
            email: email?,
            phone: phone?,
            locale: locale?,
            zone: zone?,
            plan_id: plan_id?,
            element_id: element_id?,
            device_id: device_id?,
            billing_day: billing_day?,
            active_since: active_since?,
            status: status?,
            segment: segment?,
            jurisdiction: jurisdiction?,
            attributes: attributes?,
        })
    };
    match customer() {
        Some(c) if e.is_empty() => Ok(c),
        _ => Err(e),
    }
}

/// The elements in the file, merged over the stored ones, must still form a tree.
fn check_topology(elements: &[(u64, Element)], existing: &BookRows, errors: &mut Errors) {
    if elements.is_empty() {
        return;
    }
    let line_of: HashMap<&str, u64> = elements.iter().map(|(l, e)| (e.id.as_str(), *l)).collect();
    let mut merged: HashMap<String, Element> = existing
        .elements
        .iter()
        .map(|r| (r.element_id.clone(), crate::book::element_from_row(r.clone())))
        .collect();
    for (_, e) in elements {
        merged.insert(e.id.clone(), e.clone());
    }
    let mut all: Vec<Element> = merged.into_values().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let Err(problems) = Topology::build(all) else { return };
    for p in problems {
        match &p {
            TopologyError::UnknownParent { element, parent } => errors.push(
                "topology.csv",
                line_of.get(element.as_str()).copied().unwrap_or(0),
                format!("parent_id {parent:?} is not an element"),
            ),
            TopologyError::Cycle(ids) => {
                let line = ids.iter().filter_map(|id| line_of.get(id.as_str())).min().copied().unwrap_or(0);
                errors.push("topology.csv", line, p.to_string());
            }
            TopologyError::DuplicateId(_) => {} // reported as each repeat is read
        }
    }
}

fn check_references(
    customers: &[(u64, String, String)],
    plans: &[(u64, Plan)],
    elements: &[(u64, Element)],
    existing: &BookRows,
    errors: &mut Errors,
) {
    let plan_ids: HashSet<&str> = plans
        .iter()
        .map(|(_, p)| p.id.as_str())
        .chain(existing.plans.iter().map(|p| p.plan_id.as_str()))
        .collect();
    let element_ids: HashSet<&str> = elements
        .iter()
        .map(|(_, e)| e.id.as_str())
        .chain(existing.elements.iter().map(|e| e.element_id.as_str()))
        .collect();
    for (line, plan_id, element_id) in customers {
        if !plan_ids.contains(plan_id.as_str()) {
            errors.push("customers.csv", *line, format!("plan_id {plan_id:?} is not a plan"));
        }
        if !element_ids.contains(element_id.as_str()) {
            errors.push("customers.csv", *line, format!("element_id {element_id:?} is not an element"));
        }
    }
}

#[cfg(test)]
mod tests;
