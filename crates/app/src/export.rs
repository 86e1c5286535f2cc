//! Credits out, for the billing system: CSV or JSON, one record per ledger entry.

use amends_store::CreditRow;
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

/// Writes `credits` in `format`. JSON is an array of objects with the CSV's fields, with
/// `lines` as structured JSON rather than a string.
pub fn write_credits(credits: &[CreditRow], format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Csv => write_csv(credits, out),
        Format::Json => write_json(credits, out),
    }
}

fn write_csv(credits: &[CreditRow], out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for c in credits {
        w.write_record([
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
        ])?;
    }
    w.flush()
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

fn write_json(credits: &[CreditRow], out: &mut dyn Write) -> std::io::Result<()> {
    let values: Vec<serde_json::Value> = credits.iter().map(credit_json).collect();
    serde_json::to_writer_pretty(&mut *out, &values)?;
    writeln!(out)
}
