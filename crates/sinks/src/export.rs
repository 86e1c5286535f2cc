//! Credits out, for the billing system: CSV or JSON, one record per ledger entry.

use amends_core::text::safe_cell;
use amends_store::{CreditFilter, CreditRow, LedgerStore, StoreError};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

pub const CSV_COLUMNS: [&str; 11] = [
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

/// Credits read from the store per page of an export: an export of millions of credits
/// holds one page in memory, not the ledger.
pub const EXPORT_PAGE_ROWS: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams every credit matching `filter` to `out` in key order, page by page. JSON is
/// an array of objects with the CSV's fields, with `lines` as structured JSON rather than
/// a string. Returns the number of credits written.
pub async fn export_credits(
    store: &dyn LedgerStore,
    filter: CreditFilter,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    export_credits_paged(store, filter, format, out, EXPORT_PAGE_ROWS).await
}

/// [`export_credits`] with a chosen page size (tests use tiny pages).
pub async fn export_credits_paged(
    store: &dyn LedgerStore,
    filter: CreditFilter,
    format: Format,
    out: &mut dyn Write,
    page_rows: u32,
) -> Result<u64, ExportError> {
    let mut sink = Sink::start(format, out)?;
    let mut after = None;
    loop {
        let page = CreditFilter { after_key: after, limit: Some(page_rows.max(1)), ..filter.clone() };
        let credits = store.credits(&page).await?;
        for c in &credits {
            sink.write(c)?;
        }
        match credits.last() {
            Some(last) if credits.len() == page_rows.max(1) as usize => after = Some(last.key.clone()),
            _ => break,
        }
    }
    Ok(sink.finish()?)
}

enum Sink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn Write>>, u64),
    Json(&'a mut dyn Write, u64),
}

impl<'a> Sink<'a> {
    fn start(format: Format, out: &'a mut dyn Write) -> std::io::Result<Self> {
        Ok(match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(CSV_COLUMNS)?;
                Sink::Csv(Box::new(w), 0)
            }
            Format::Json => {
                out.write_all(b"[")?;
                Sink::Json(out, 0)
            }
        })
    }

    fn write(&mut self, c: &CreditRow) -> std::io::Result<()> {
        match self {
            Sink::Csv(w, n) => {
                *n += 1;
                let cells = [
                    c.key.as_str(),
                    &c.customer_id,
                    &c.source_event,
                    &c.policy_id,
                    &c.policy_version.to_string(),
                    &c.amount_minor.to_string(),
                    &c.currency,
                    &c.statement,
                    &c.explanation,
                    &c.lines_json,
                    &c.created_at.to_string(),
                ]
                .map(|cell| safe_cell(cell).into_owned());
                w.write_record(&cells)?;
                Ok(())
            }
            Sink::Json(out, n) => {
                out.write_all(if *n == 0 { b"\n  " } else { b",\n  " })?;
                *n += 1;
                serde_json::to_writer(&mut **out, &credit_json(c))?;
                Ok(())
            }
        }
    }

    fn finish(self) -> std::io::Result<u64> {
        match self {
            Sink::Csv(mut w, n) => {
                w.flush()?;
                Ok(n)
            }
            Sink::Json(out, n) => {
                out.write_all(if n == 0 { b"]\n" } else { b"\n]\n" })?;
                out.flush()?;
                Ok(n)
            }
        }
    }
}

/// A credit as the API and the JSON export show it.
pub fn credit_json(c: &CreditRow) -> serde_json::Value {
    serde_json::json!({
        "key": c.key,
        "customer_id": c.customer_id,
        "source_event": c.source_event,
        "policy_id": c.policy_id,
        "policy_version": c.policy_version,
        "amount_minor": c.amount_minor,
        "currency": c.currency,
        "statement": c.statement,
        "explanation": c.explanation,
        "lines": serde_json::from_str::<serde_json::Value>(&c.lines_json).unwrap_or(serde_json::Value::Null),
        "created_at": c.created_at.to_string(),
    })
}
