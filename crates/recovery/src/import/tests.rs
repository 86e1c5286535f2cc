use super::*;

const PLANS: &str =
    "plan_id,name,monthly_price_minor,currency\nbasic,Basic 100,4999,USD\nfast,Fast 1000,7999,USD\n";
const TOPOLOGY: &str =
    "element_id,parent_id,kind,name\nroot,,region,North\nhub1,root,hub,Hub 1\nn1,hub1,node,Node 1\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
C1,Ana,ana@example.com,+14155550123,en-US,America/New_York,fast,n1,M1,15,2024-01-01T00:00:00Z,active\n\
C2,Bo,,,fr-FR,Europe/Paris,basic,hub1,,1,2024-01-01T00:00:00Z,cancelled\n";

/// Parses the texts against an optional existing book; returns the rows or the errors as text.
fn check(
    plans: Option<&str>,
    topology: Option<&str>,
    customers: Option<&str>,
    existing: &BookRows,
) -> Result<BookRows, Vec<String>> {
    let owned = |s: Option<&str>| s.map(str::to_string);
    match parse_and_check(ImportInput::from_texts(owned(plans), owned(topology), owned(customers)), existing)
    {
        Ok(rows) => Ok(rows),
        Err(ImportError::Invalid { errors, more }) => {
            let mut v: Vec<String> = errors.iter().map(ToString::to_string).collect();
            if more > 0 {
                v.push(format!("+{more}"));
            }
            Err(v)
        }
        Err(e) => Err(vec![e.to_string()]),
    }
}

#[test]
fn a_good_book_parses() {
    let rows = check(Some(PLANS), Some(TOPOLOGY), Some(CUSTOMERS), &BookRows::default()).unwrap();
    assert_eq!((rows.plans.len(), rows.elements.len(), rows.customers.len()), (2, 3, 2));
    assert_eq!(rows.customers[0].email.as_deref(), Some("ana@example.com"));
    assert_eq!(rows.customers[1].email, None);
    assert_eq!(rows.elements[0].parent_id, None);
    assert_eq!(rows.plans[1].monthly_price_minor, 7999);
    // Files from before the segment and jurisdiction columns: residential, not known where.
    assert!(rows.customers.iter().all(|c| c.segment == "residential" && c.jurisdiction.is_none()));
}

#[test]
fn segment_and_jurisdiction_are_read_when_given() {
    // Reordered columns; empty values take the defaults.
    let customers = "jurisdiction,segment,customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
GB-SCT,business,C1,Ana,,,en-GB,Europe/London,fast,n1,,15,2024-01-01T00:00:00Z,active\n\
,,C2,Bo,,,fr-FR,Europe/Paris,basic,hub1,,1,2024-01-01T00:00:00Z,active\n\
US-NY,,C3,Cy,,,en-US,America/New_York,basic,hub1,,1,2024-01-01T00:00:00Z,active\n\
,wholesale,C4,Di,,,de-DE,Europe/Berlin,basic,hub1,,1,2024-01-01T00:00:00Z,active\n";
    let rows = check(Some(PLANS), Some(TOPOLOGY), Some(customers), &BookRows::default()).unwrap();
    let got: Vec<(&str, Option<&str>)> =
        rows.customers.iter().map(|c| (c.segment.as_str(), c.jurisdiction.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("business", Some("GB-SCT")),
            ("residential", None),
            ("residential", Some("US-NY")),
            ("wholesale", None)
        ]
    );
    // Either optional column may come alone.
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,jurisdiction\n\
C1,Ana,,,de-DE,Europe/Berlin,fast,n1,,15,2024-01-01T00:00:00Z,active,DE\n";
    let rows = check(Some(PLANS), Some(TOPOLOGY), Some(customers), &BookRows::default()).unwrap();
    assert_eq!(
        (rows.customers[0].segment.as_str(), rows.customers[0].jurisdiction.as_deref()),
        ("residential", Some("DE"))
    );
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,segment\n\
C1,Ana,,,de-DE,Europe/Berlin,fast,n1,,15,2024-01-01T00:00:00Z,active,business\n";
    let rows = check(Some(PLANS), Some(TOPOLOGY), Some(customers), &BookRows::default()).unwrap();
    assert_eq!(
        (rows.customers[0].segment.as_str(), rows.customers[0].jurisdiction.as_deref()),
        ("business", None)
    );
}

#[test]
fn bad_segments_and_jurisdictions_are_reported_with_file_and_line() {
    let long = "a".repeat(33);
    let customers = format!(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,segment,jurisdiction\n\
C1,Ana,,,en-GB,Europe/London,fast,n1,,15,2024-01-01T00:00:00Z,active,business,GB-SCT\n\
C2,Bo,,,en-GB,Europe/London,fast,n1,,15,2024-01-01T00:00:00Z,active,Business,UK\n\
C3,Cy,x@,,en-GB,Europe/London,fast,n1,,15,2024-01-01T00:00:00Z,active,{long},gb-sct\n\
C4,Di,,,en-GB,Europe/London,fast,n1,,15,2024-01-01T00:00:00Z,active,small business,US-NYC1\n\
C5,Ed,,,en-US,America/New_York,fast,n1,,15,2024-01-01T00:00:00Z,active,,US-NY\n"
    );
    let errs = check(Some(PLANS), Some(TOPOLOGY), Some(&customers), &BookRows::default()).unwrap_err();
    assert_eq!(
        errs,
        vec![
            r#"customers.csv:3: segment "Business" is not a segment: only lowercase a-z, 0-9, _ and - (like residential or business)"#.to_string(),
            r#"customers.csv:3: jurisdiction "UK" does not start with an ISO 3166-1 country code (like GB, US or DE)"#.into(),
            r#"customers.csv:4: email "x@" is not an address"#.into(),
            format!(r#"customers.csv:4: segment "{long}" is longer than 32 characters"#),
            r#"customers.csv:4: jurisdiction "gb-sct" is not a jurisdiction like DE, US-NY or GB-SCT (uppercase letters and digits)"#.into(),
            r#"customers.csv:5: segment "small business" is not a segment: only lowercase a-z, 0-9, _ and - (like residential or business)"#.into(),
            r#"customers.csv:5: jurisdiction "US-NYC1" is not a jurisdiction like DE, US-NY or GB-SCT"#.into(),
        ]
    );
}

#[test]
fn every_bad_line_is_reported_with_file_and_line() {
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
C1,Ana,x@,+14155550123,en-US,America/New_York,fast,n1,M1,15,2024-01-01T00:00:00Z,active\n\
C2,Bo,bo@example.com,12,en,Mars/Base,gold,n9,,31,yesterday,gone\n\
C1,Cy,cy@example.com,,en,UTC,fast,n1,,1,2024-01-01T00:00:00Z,active\n\
C4,too,few\n";
    let errs = check(Some(PLANS), Some(TOPOLOGY), Some(customers), &BookRows::default()).unwrap_err();
    assert_eq!(
        errs,
        vec![
            r#"customers.csv:2: email "x@" is not an address"#,
            r#"customers.csv:3: phone "12" is not an E.164 number (like +14155550123)"#,
            r#"customers.csv:3: timezone "Mars/Base" is not an IANA time zone"#,
            r#"customers.csv:3: billing_day "31" is not a day from 1 to 28"#,
            r#"customers.csv:3: active_since "yesterday" is not an RFC 3339 instant (like 2024-05-01T00:00:00Z)"#,
            r#"customers.csv:3: status "gone" is not active or cancelled"#,
            r#"customers.csv:4: customer_id "C1" repeats line 2"#,
            "customers.csv:5: has 3 fields where the header has 12",
            // Line 3 does not parse, and its plan and element are checked all the same.
            r#"customers.csv:3: plan_id "gold" is not a plan"#,
            r#"customers.csv:3: element_id "n9" is not an element"#,
        ]
    );
}

#[test]
fn references_and_topology_are_checked() {
    let topology = "element_id,parent_id,kind,name\nroot,,region,North\nhub1,nowhere,hub,Hub 1\nx,y,node,X\ny,x,node,Y\n";
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
C1,Ana,ana@example.com,,en-US,UTC,gold,n1,,15,2024-01-01T00:00:00Z,active\n";
    let plans = "plan_id,name,monthly_price_minor,currency\np,P,-5,USD\nq,Q,100,XYZ\n";
    let errs = check(Some(plans), Some(topology), Some(customers), &BookRows::default()).unwrap_err();
    assert_eq!(
        errs,
        vec![
            r#"plans.csv:2: monthly_price_minor "-5" is negative"#,
            r#"plans.csv:3: currency "XYZ" is not an ISO 4217 currency code"#,
            r#"topology.csv:3: parent_id "nowhere" is not an element"#,
            // Listed with the unknown parent, not after it is fixed.
            r#"topology.csv:4: elements ["x", "y"] form a cycle: an element cannot be its own ancestor"#,
            r#"customers.csv:2: plan_id "gold" is not a plan"#,
            r#"customers.csv:2: element_id "n1" is not an element"#,
        ]
    );
    // With the unknown parent fixed, the cycle shows.
    let topology = "element_id,parent_id,kind,name\nroot,,region,North\nx,y,node,X\ny,x,node,Y\n";
    let errs = check(None, Some(topology), None, &BookRows::default()).unwrap_err();
    assert_eq!(
        errs,
        vec![r#"topology.csv:3: elements ["x", "y"] form a cycle: an element cannot be its own ancestor"#]
    );
}

#[test]
fn references_may_point_into_the_store() {
    let existing = check(Some(PLANS), Some(TOPOLOGY), None, &BookRows::default()).unwrap();
    let rows = check(None, None, Some(CUSTOMERS), &existing).unwrap();
    assert_eq!(rows.customers.len(), 2);
}

#[test]
fn headers_are_checked_and_columns_may_be_reordered() {
    let errs = check(Some("plan_id,name,price,currency\n"), None, None, &BookRows::default()).unwrap_err();
    assert_eq!(
        errs,
        vec![
            r#"plans.csv:1: unknown column "price"; the columns are plan_id,name,monthly_price_minor,currency"#,
            r#"plans.csv:1: missing column "monthly_price_minor""#,
        ]
    );
    let errs = check(None, None, Some("customer_id,name,region\n"), &BookRows::default()).unwrap_err();
    assert_eq!(
        errs[0],
        "customers.csv:1: unknown column \"region\"; the columns are customer_id,name,email,phone,locale,\
         timezone,plan_id,element_id,device_id,billing_day,active_since,status,segment,jurisdiction and attr.NAME for attributes"
    );
    // The optional columns are not reported missing.
    assert!(errs.iter().all(|e| !e.contains("segment\"") && !e.contains("jurisdiction\"")), "{errs:?}");
    assert_eq!(errs.len(), 1 + 10, "{errs:?}");
    let reordered = "currency,monthly_price_minor,name,plan_id\nEUR,1000,Basic,b\n";
    let rows = check(Some(reordered), None, None, &BookRows::default()).unwrap();
    assert_eq!(rows.plans[0].plan_id, "b");
    assert_eq!(rows.plans[0].currency, "EUR");
}

#[test]
fn errors_are_capped() {
    let mut plans = String::from("plan_id,name,monthly_price_minor,currency\n");
    for i in 0..(IMPORT_ERRORS_MAX + 5) {
        plans.push_str(&format!("p{i},P,-1,USD\n"));
    }
    let errs = check(Some(&plans), None, None, &BookRows::default()).unwrap_err();
    assert_eq!(errs.len(), IMPORT_ERRORS_MAX + 1);
    assert_eq!(errs.last().unwrap(), "+5");
}

/// A file saved with Windows line endings (what spreadsheets write), with old Mac ones,
/// or mixed, with a quoted line break inside a field, names each bad line by its true line
/// number (issue 18, item 1; the csv crate counts CRLF lines one short).
#[test]
fn bad_lines_are_named_truly_whatever_the_line_endings() {
    let lines = [
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status",
        "C1,Ana,ana@example.com,,en,UTC,fast,n1,,1,2024-01-01T00:00:00Z,active",
        "C2,\"Bo\nthe second\",bo@example.com,,en,UTC,fast,n1,,1,2024-01-01T00:00:00Z,active",
        "C3,Cy,cy@example.com,,en,UTC,fast,n1,,1,2024-01-01T00:00:00Z,active",
        "C4,Di,x@,,en,UTC,fast,n1,,1,2024-01-01T00:00:00Z,active",
        "C5,too,few",
    ];
    // Line 3's field holds a line break (refused in a cell, and named on line 3), so C3 is
    // on line 5, C4 on 6, C5 on 7.
    let without_break = |mut errs: Vec<String>| {
        let first = errs.remove(0);
        assert!(first.starts_with("customers.csv:3: name holds U+000"), "{first}");
        errs
    };
    let want = vec![
        r#"customers.csv:6: email "x@" is not an address"#,
        "customers.csv:7: has 3 fields where the header has 12",
    ];
    for (ending, name) in [("\n", "LF"), ("\r\n", "CRLF"), ("\r", "CR")] {
        let text = lines.map(|l| l.replace('\n', ending)).join(ending) + ending;
        let errs = check(Some(PLANS), Some(TOPOLOGY), Some(&text), &BookRows::default()).unwrap_err();
        assert_eq!(without_break(errs), want, "{name}");
    }
    let mixed = format!(
        "{}\r\n{}\n{}\r\n{}\n{}\r\n{}\n",
        lines[0],
        lines[1],
        lines[2].replace('\n', "\r\n"),
        lines[3],
        lines[4],
        lines[5]
    );
    let errs = check(Some(PLANS), Some(TOPOLOGY), Some(&mixed), &BookRows::default()).unwrap_err();
    assert_eq!(without_break(errs), want, "mixed");
}

/// Customer attributes (issue 17, item 17): `attr.NAME` columns, typed, empty absent, so a
/// policy reads `customer.attributes.medical_priority` instead of a smuggled segment.
#[test]
fn attribute_columns_give_typed_attributes() {
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,attr.medical_priority,attr.floors,attr.zip\n\
C1,Ana,,,en-US,America/New_York,fast,n1,,15,2024-01-01T00:00:00Z,active,true,-3,02139\n\
C2,Bo,,,fr-FR,Europe/Paris,basic,hub1,,1,2024-01-01T00:00:00Z,active,,,\n";
    let rows = check(Some(PLANS), Some(TOPOLOGY), Some(customers), &BookRows::default()).unwrap();
    assert_eq!(
        rows.customers[0].attributes.as_deref(),
        Some(r#"{"floors":-3,"medical_priority":true,"zip":"02139"}"#)
    );
    assert_eq!(rows.customers[1].attributes, None);

    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,attr.Medical\n\
C1,Ana,,,en-US,America/New_York,fast,n1,,15,2024-01-01T00:00:00Z,active,true\n";
    let errors = check(Some(PLANS), Some(TOPOLOGY), Some(customers), &BookRows::default()).unwrap_err();
    assert!(
        errors[0].starts_with("customers.csv:1: attribute column \"attr.Medical\": after attr."),
        "{errors:?}"
    );

    let long = "x".repeat(257);
    let customers = format!(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,attr.note\n\
C1,Ana,,,en-US,America/New_York,fast,n1,,15,2024-01-01T00:00:00Z,active,{long}\n"
    );
    let errors = check(Some(PLANS), Some(TOPOLOGY), Some(&customers), &BookRows::default()).unwrap_err();
    assert!(
        errors[0].starts_with("customers.csv:2: attribute ")
            && errors[0].ends_with("(attr.note) is longer than 256 bytes"),
        "{errors:?}"
    );
    // Plans and topology take no attributes.
    let plans = "plan_id,name,monthly_price_minor,currency,attr.x\nbasic,Basic,4999,USD,1\n";
    let errors = check(Some(plans), None, None, &BookRows::default()).unwrap_err();
    assert!(errors[0].contains("unknown column \"attr.x\""), "{errors:?}");
}

/// Control characters, line breaks inside a cell, bidirectional overrides and zero-width
/// characters are refused in every cell, named by line and column (issue 18, item 13).
#[test]
fn control_characters_are_refused_in_every_cell() {
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
C1,Ana \u{1b}[2J,,,en-US,America/New_York,fast,n1,,15,2024-01-01T00:00:00Z,active\n\
\"C2\",\"Bo\r\nBo\",,,fr-FR,Europe/Paris,basic,hub1,,1,2024-01-01T00:00:00Z,active\n\
C\u{200b}3,Cy,,,fr-FR,Europe/Paris,basic,hub1,,1,2024-01-01T00:00:00Z,active\n\
C4,Di\u{202e}ffo,,,fr-FR,Europe/Paris,basic,hub1,,1,2024-01-01T00:00:00Z,active\n";
    let errors = check(Some(PLANS), Some(TOPOLOGY), Some(customers), &BookRows::default()).unwrap_err();
    assert_eq!(
        errors,
        [
            "customers.csv:2: name holds U+001B (escape) at character 5; control characters are not allowed",
            "customers.csv:3: name holds U+000D (carriage return) at character 3; control characters are not allowed",
            "customers.csv:5: customer_id holds U+200B (a zero-width character) at character 2; control characters are not allowed",
            "customers.csv:6: name holds U+202E (a bidirectional override) at character 3; control characters are not allowed",
        ]
    );
    // A sign-up is checked the same way.
    let mut fields = [
        "C9",
        "Ana\u{7}",
        "",
        "",
        "en-GB",
        "Europe/London",
        "fast",
        "n1",
        "",
        "1",
        "2024-01-01T00:00:00Z",
        "active",
        "",
        "",
    ];
    let refused = customer_from_fields(fields).unwrap_err();
    assert_eq!(
        refused[0].to_string(),
        "name \"Ana\\u{7}\" holds U+0007 (a control character) at character 4; control characters are not allowed"
    );
    fields[1] = "Ana";
    assert!(customer_from_fields(fields).is_ok());
}
