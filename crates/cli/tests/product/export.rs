//! The credit export streams the ledger page by page: the result is the same whatever the
//! page size, in key order, as CSV or as one JSON array. Both formats are in insta
//! snapshots (`snapshots/`): a column added, renamed or moved shows in review, since a
//! billing system reads them.

use amends_sinks::export::{Format, export_credits_paged};
use amends_store::{CreditFilter, CreditRow};
use serde_json::Value;

fn credit(customer: &str, incident: &str, amount_minor: i64) -> CreditRow {
    CreditRow {
        key: format!("{customer}/{incident}/prorated/1"),
        customer_id: customer.into(),
        source_event: incident.into(),
        policy_id: "prorated".into(),
        policy_version: 1,
        amount_minor,
        currency: "USD".into(),
        statement: "2026-12-01".into(),
        explanation: "Outage, 220 min; \"quoted\", with a comma".into(),
        lines_json: "[{\"rule\":\"prorated\"}]".into(),
        created_at: "2026-11-23T15:30:00Z".parse().unwrap(),
    }
}

#[tokio::test]
async fn pages_make_no_difference() {
    let dir = tempfile::tempdir().unwrap();
    let store = amends_store::open(&dir.path().join("a.db").display().to_string()).await.unwrap();
    let mut rows: Vec<CreditRow> = ["C5", "C1", "C4", "C2", "C3"]
        .iter()
        .enumerate()
        .map(|(i, c)| credit(c, "INC-000001", i as i64 + 1))
        .collect();
    rows.push(credit("C1", "INC-000002", 9));
    store.append_credits(&mut rows).await.unwrap();

    let export = |format, page, filter: CreditFilter| {
        let store = store.clone();
        async move {
            let mut out = Vec::new();
            let n = export_credits_paged(store.as_ref(), filter, format, &mut out, page).await.unwrap();
            (n, String::from_utf8(out).unwrap())
        }
    };
    let one = CreditFilter { source_event: Some("INC-000001".into()), ..CreditFilter::default() };
    let (n, csv) = export(Format::Csv, 2, one.clone()).await;
    assert_eq!(n, 5);
    assert_eq!(export(Format::Csv, 10_000, one.clone()).await, (5, csv.clone()));
    let customers: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(customers, ["C1", "C2", "C3", "C4", "C5"]);
    assert!(csv.contains(r#""Outage, 220 min; ""quoted"", with a comma""#), "{csv}");
    insta::assert_snapshot!("credits_csv", csv);

    let (n, json) = export(Format::Json, 2, CreditFilter::default()).await;
    assert_eq!(n, 6);
    let parsed: Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = parsed.as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert_eq!(keys[..2], ["C1/INC-000001/prorated/1", "C1/INC-000002/prorated/1"]);
    assert_eq!(parsed[1]["lines"][0]["rule"], "prorated");
    insta::assert_snapshot!("credits_json", json);
    assert_eq!(
        export(Format::Json, 3, CreditFilter { customer_id: Some("C9".into()), ..CreditFilter::default() })
            .await,
        (0, "[]\n".into())
    );
}

/// A cell a spreadsheet would run as a formula is neutralised with a leading quote (OWASP's
/// CSV injection advice), numbers are left as numbers, and JSON is left alone (issue 18,
/// item 14).
#[tokio::test]
async fn no_cell_of_the_csv_is_a_formula() {
    let dir = tempfile::tempdir().unwrap();
    let store = amends_store::open(&dir.path().join("a.db").display().to_string()).await.unwrap();
    let mut hostile = credit("=1+1", "INC-000001", -142);
    hostile.explanation = "@SUM(A1:A9) +cmd".into();
    let mut tabbed = credit("\tC2", "INC-000001", 5);
    tabbed.explanation = "-2+3".into();
    store.append_credits(&mut [hostile, tabbed]).await.unwrap();
    let mut out = Vec::new();
    export_credits_paged(store.as_ref(), CreditFilter::default(), Format::Csv, &mut out, 100).await.unwrap();
    let csv = String::from_utf8(out).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell = |row: usize, column: usize| rows[row][column].to_string();
    // Keys order the rows: "'\tC2/..." sorts before "'=1+1/...".
    assert_eq!((cell(0, 1), cell(0, 8)), ("'\tC2".to_string(), "'-2+3".to_string()), "{csv}");
    assert_eq!(
        (cell(1, 1), cell(1, 5), cell(1, 8)),
        ("'=1+1".to_string(), "-142".to_string(), "'@SUM(A1:A9) +cmd".to_string()),
        "{csv}"
    );
    for row in &rows {
        for field in row {
            assert!(!field.starts_with(['=', '+', '@', '\t', '\r']), "{field:?} in {csv}");
        }
    }
}
