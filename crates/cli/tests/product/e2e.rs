//! End to end through the real binary: import, declare, update, let the ETR lapse on a
//! controlled clock (`--now`), resolve, credit, deliver, export. Amounts are worked out by
//! hand below, from the price, the outage and the length of each customer's cycle.

use crate::binary;

use binary::Env;
use std::path::Path;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nbasic,Basic,4999,USD\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,North\nhub1,root,hub,Hub 1\nn1,hub1,node,Node 1\nhub2,root,hub,Hub 2\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana Lima,ana@example.com,,en-US,UTC,fast,n1,M1,1,2020-01-01T00:00:00Z,active
C2,Bo Chen,bo@example.com,+14155550123,en-US,America/New_York,basic,hub1,M2,15,2020-01-01T00:00:00Z,active
C3,Cy Old,cy@example.com,,en-US,UTC,fast,n1,M3,1,2020-01-01T00:00:00Z,cancelled
C4,Di Far,di@example.com,,en-US,UTC,fast,hub2,M4,1,2020-01-01T00:00:00Z,active
C5,Eve New,eve@example.com,,fr-FR,Europe/Paris,fast,n1,M5,1,2026-11-23T13:00:00Z,active
C6,Fu Sms,,+14155550199,en-US,UTC,basic,n1,M6,28,2020-01-01T00:00:00Z,active
";

fn write_book(dir: &Path, customers: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("plans.csv"), PLANS).unwrap();
    std::fs::write(dir.join("topology.csv"), TOPOLOGY).unwrap();
    std::fs::write(dir.join("customers.csv"), customers).unwrap();
}

const T0: &str = "2026-11-23T12:00:00Z";

fn credit_amounts(env: &Env, incident: &str) -> Vec<(String, i64)> {
    let credits =
        env.json("2026-11-23T20:00:00Z", &["credits", "export", "--format", "json", "--incident", incident]);
    credits
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["customer_id"].as_str().unwrap().to_string(), c["amount_minor"].as_i64().unwrap()))
        .collect()
}

#[test]
fn outage_to_notified_and_credited_customers() {
    let env = Env::new();
    write_book(&env.path("book"), CUSTOMERS);
    let out = env.ok(T0, &["import", "--dir", env.path("book").to_str().unwrap()]);
    assert!(out.contains("imported 2 plans, 4 elements, 6 customers"), "{out}");

    // A bad file is refused whole, naming the line, and nothing is written.
    let bad = CUSTOMERS.replace("eve@example.com", "x@").replace("C6,Fu Sms", "C7,Fu Sms");
    write_book(&env.path("bad"), &bad);
    let err = env.fails(T0, &["import", "--dir", env.path("bad").to_str().unwrap()]);
    assert!(err.contains(r#"customers.csv:6: email "x@" is not an address"#), "{err}");
    let out = env.ok(T0, &["import", "--dir", env.path("book").to_str().unwrap()]);
    assert!(out.contains("store now holds 2 plans, 4 elements, 6 customers"), "{out}");

    // An ETR in the past is refused, naming the field.
    let err = env.fails(
        T0,
        &[
            "incident",
            "declare",
            "--element",
            "hub1",
            "--cause",
            "Cut",
            "--etr",
            "2026-11-23T11:00:00Z",
            "--next-update-by",
            "2026-11-23T13:00:00Z",
        ],
    );
    assert!(err.contains("etr: 2026-11-23T11:00:00Z is not after now"), "{err}");

    // Declared at 12:00; service was lost at 11:50.
    let declared = env.json(
        T0,
        &[
            "incident",
            "declare",
            "--element",
            "hub1",
            "--cause",
            "A fibre cable was cut",
            "--message",
            "Crews are on their way",
            "--etr",
            "2026-11-23T14:00:00Z",
            "--next-update-by",
            "2026-11-23T13:00:00Z",
            "--started-at",
            "2026-11-23T11:50:00Z",
        ],
    );
    assert_eq!(declared["incident"]["incident_id"], "INC-000001");
    // C1, C2, C5, C6 are at or below hub1 and active (C3 is cancelled, C4 is on hub2); C2
    // has email and SMS, and hears on both.
    assert_eq!(declared["processed"]["fanout"]["notices_queued"], 5);
    // The worker delivers as it goes (a notice still queued when a later one supersedes
    // it would be coalesced away).
    let mut sent = env.json(T0, &["deliver"])["sent"].as_u64().unwrap();

    // 12:30: a later ETR.
    let updated = env.json(
        "2026-11-23T12:30:00Z",
        &[
            "incident",
            "update",
            "INC-000001",
            "--etr",
            "2026-11-23T15:00:00Z",
            "--message",
            "The cut is bigger than we thought",
        ],
    );
    assert_eq!(updated["incident"]["etr"], "2026-11-23T15:00:00Z");
    // A new estimate goes by SMS too.
    assert_eq!(updated["processed"]["fanout"]["notices_queued"], 5);
    sent += env.json("2026-11-23T12:30:00Z", &["deliver"])["sent"].as_u64().unwrap();

    // 15:05: the ETR has passed with the incident open: one automatic update, only once.
    let tick = env.json("2026-11-23T15:05:00Z", &["tick"]);
    assert_eq!(tick["automatic_updates"], 1);
    // A lapsed estimate is news about the estimate: it goes by SMS too.
    assert_eq!(tick["fanout"]["notices_queued"], 5);
    sent += env.json("2026-11-23T15:05:00Z", &["deliver"])["sent"].as_u64().unwrap();
    let tick = env.json("2026-11-23T15:05:00Z", &["tick"]);
    assert_eq!(tick["automatic_updates"], 0);
    assert_eq!(tick["fanout"]["notices_queued"], 0);

    // 15:30: resolved. Restoration notices, then credits and credit notices.
    let resolved =
        env.json("2026-11-23T15:30:00Z", &["incident", "resolve", "INC-000001", "--message", "Spliced"]);
    assert_eq!(resolved["incident"]["state"], "resolved");
    assert_eq!(resolved["processed"]["credits"]["credits_written"], 4);
    assert_eq!(resolved["processed"]["credits"]["notices_queued"], 3);
    let err = env.fails("2026-11-23T15:31:00Z", &["incident", "resolve", "INC-000001"]);
    assert!(err.contains("incident INC-000001 is already resolved"), "{err}");

    // Outage 11:50-15:30 = 220 min.
    // C1: 7999 x 220 / 43,200 (November, UTC) = 40.73 -> 41
    // C2: 4999 x 220 / 43,200 (Nov 15 - Dec 15, New York, no clock change) = 25.46 -> 25
    // C5: joined at 13:00, so 150 min; Paris November = 43,200 min: 7999 x 150 / 43,200 = 27.77 -> 28
    // C6: 4999 x 220 / 44,640 (Oct 28 - Nov 28, 31 days) = 24.64 -> 25
    let expected =
        vec![("C1".to_string(), 41), ("C2".to_string(), 25), ("C5".to_string(), 28), ("C6".to_string(), 25)];
    assert_eq!(credit_amounts(&env, "INC-000001"), expected);

    // A second, overlapping incident on n1 from 15:00 to 16:00: only 15:30-16:00 is new.
    let second = env.json(
        "2026-11-23T15:40:00Z",
        &[
            "incident",
            "declare",
            "--element",
            "n1",
            "--cause",
            "Power failure at the node",
            "--etr",
            "2026-11-23T17:00:00Z",
            "--next-update-by",
            "2026-11-23T16:30:00Z",
            "--started-at",
            "2026-11-23T15:00:00Z",
        ],
    );
    assert_eq!(second["incident"]["incident_id"], "INC-000002");
    sent += env.json("2026-11-23T15:40:00Z", &["deliver"])["sent"].as_u64().unwrap();
    env.ok("2026-11-23T16:00:00Z", &["incident", "resolve", "INC-000002"]);
    // The second credit is what the two outages earn together, less what the first paid, so
    // the customer's credits add up to one rounding of the whole: 11:50-16:00 = 250 min.
    // C1: 7999 x 250 / 43,200 = 46.29 -> 46, less 41 = 5.
    // C5: 13:00-16:00 = 180 min: 7999 x 180 / 43,200 = 33.33 -> 33, less 28 = 5.
    // C6: 4999 x 250 / 44,640 = 27.996 -> 28, less 25 = 3.
    assert_eq!(
        credit_amounts(&env, "INC-000002"),
        vec![("C1".to_string(), 5), ("C5".to_string(), 5), ("C6".to_string(), 3)]
    );
    // Re-running the credit step writes nothing new.
    let tick = env.json("2026-11-23T16:10:00Z", &["tick"]);
    assert_eq!(tick["credits"]["credits_written"], 0);

    // Delivery: everything once, then nothing.
    sent += env.json("2026-11-23T16:10:00Z", &["deliver"])["sent"].as_u64().unwrap();
    // INC-000001: ack, update and lapse to 5 contact points (C2 by email and SMS) = 15,
    // restored 5, credits 3 (C6 has only SMS, which carries no credit notice by default);
    // INC-000002: ack 3, restored 3, credits 2.
    assert_eq!(sent, 31);
    let again = env.json("2026-11-23T16:11:00Z", &["deliver"]);
    assert_eq!(again["sent"], 0);
    let outbox = std::fs::read_to_string(env.path("outbox.txt")).unwrap();
    let keys: Vec<&str> = outbox.lines().filter(|l| l.starts_with("=== ")).collect();
    assert_eq!(keys.len(), 31);
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 31, "a notice was delivered twice");

    // What C1 was told, by time queued then key, and that it was all sent.
    let notices = env.json("2026-11-23T16:12:00Z", &["notices", "list", "--customer", "C1"]);
    let seen: Vec<String> = notices
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}/{}/{}:{}",
                n["incident_id"].as_str().unwrap(),
                n["kind"].as_str().unwrap(),
                n["seq"],
                n["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            "INC-000001/acknowledgement/0:sent",
            "INC-000001/update/1:sent",
            "INC-000001/update/2:sent",
            "INC-000001/credit/0:sent",
            "INC-000001/restored/3:sent",
            "INC-000002/acknowledgement/0:sent",
            "INC-000002/credit/0:sent",
            "INC-000002/restored/1:sent",
        ]
    );
    let bodies: Vec<&str> = notices.as_array().unwrap().iter().map(|n| n["body"].as_str().unwrap()).collect();
    assert!(
        bodies[0].contains("We expect it back by Monday, November 23 at 2:00\u{202f}PM UTC."),
        "{}",
        bodies[0]
    );
    assert!(bodies[1].contains("We now expect your service back by Monday, November 23 at 3:00\u{202f}PM UTC (we had said Monday, November 23 at 2:00\u{202f}PM UTC)"), "{}", bodies[1]);
    assert!(bodies[2].contains("We said your service would be back by Monday, November 23 at 3:00\u{202f}PM UTC, and it is not back yet."), "{}", bodies[2]);
    assert!(bodies[4].contains("Still offline? Unplug your router"), "{}", bodies[4]);
    assert!(bodies[3].contains("We have credited $0.41"), "{}", bodies[3]);
    assert!(bodies[3].contains("It will be on your statement of December 1, 2026."), "{}", bodies[3]);
    let sms = env.json("2026-11-23T16:12:00Z", &["notices", "list", "--customer", "C6"]);
    assert_eq!(sms[0]["channel"], "sms");
    assert_eq!(sms[0]["recipient"], "+14155550199");
    assert_eq!(
        env.json("2026-11-23T16:12:00Z", &["notices", "list", "--customer", "C3"]),
        serde_json::json!([])
    );

    // The CSV export carries the explanation.
    let csv = env.ok("2026-11-23T16:12:00Z", &["credits", "export", "--format", "csv", "--customer", "C1"]);
    assert!(csv.starts_with("key,customer_id,source_event,policy_id,policy_version,amount_minor,currency,statement,explanation"), "{csv}");
    assert!(csv.contains("C1/INC-000001/prorated/2,C1,INC-000001,prorated,2,41,USD,2026-12-01,"), "{csv}");
    assert!(csv.contains("220 min of the 43,200-min billing cycle starting 2026-11-01; 79.99 USD x 220 / 43,200 = 0.407356..., rounded half-up to 0.41 USD"), "{csv}");
}

/// A command that only reads never creates a database: pointed at a file that is not
/// there (the default one, after a demo that wrote elsewhere), it says so and where the
/// data may be, instead of creating an empty database and reporting an empty book.
#[test]
fn a_read_command_creates_no_database() {
    let env = Env::new();
    for read in [
        &["notices", "list", "--customer", "C1"][..],
        &["notices", "preview", "--customer", "C1", "--incident", "INC-000001"],
        &["incident", "list"],
        &["credits", "export"],
    ] {
        let error = env.fails(T0, read);
        assert!(error.contains("there is no database at"), "{read:?}: {error}");
        assert!(error.contains("--database amends-data/demo/amends.db"), "{error}");
        assert!(!env.path("amends.db").exists(), "{read:?} created the database");
    }
    env.import_book(T0, PLANS, TOPOLOGY, CUSTOMERS);
    assert_eq!(env.json(T0, &["incident", "list"]), serde_json::json!([]));
}

/// The README's first command, as written but for `--no-serve` and a directory of its
/// own: the summary counts messages and customers apart, says why some customers were
/// not told on a channel, and shows the restoration among the notices a customer read.
#[test]
fn the_demo_tells_messages_from_customers_and_says_who_was_not_told() {
    let env = Env::new();
    let dir = env.path("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amends"))
        .args(["demo", "--no-serve", "--dir", dir.to_str().unwrap()])
        .env_remove("AMENDS_DATABASE_URL")
        .env_remove("AMENDS_CONFIG")
        .current_dir(&env.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = |start: &str| {
        stdout.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no {start:?} in\n{stdout}"))
    };
    for kind in ["acknowledgement:", "update:", "restored:", "credit:"] {
        let counted = line(kind);
        assert!(counted.contains(" messages to ") && counted.contains(" customers: "), "{counted}");
    }
    assert!(line("no contact point:").contains("neither email nor phone"));
    assert!(line("suppressed (consent):").contains("by default SMS carries"));
    assert!(line("look around:").contains(&format!("--database {}", dir.join("amends.db").display())));
    assert!(stdout.contains("=== Four notices as "), "{stdout}");
    for kind in ["acknowledgement", "update", "restored", "credit"] {
        assert!(stdout.contains(&format!("\n--- {kind} #")), "no {kind} sample in\n{stdout}");
    }
    assert!(!env.path("amends-data").exists(), "the demo wrote only under its --dir");
}

/// `--etr 4pm` names no day and no zone: refused with the form expected, not a parser's
/// complaint about a four-digit year.
#[test]
fn a_time_of_day_alone_is_refused_with_the_form_expected() {
    let env = Env::new();
    env.import_book(T0, PLANS, TOPOLOGY, CUSTOMERS);
    let declare = ["incident", "declare", "--element", "hub1", "--cause", "Cut", "--next-update-by"];
    let error = env.fails(T0, &[&declare[..], &["2026-11-23T13:00:00Z", "--etr", "4pm"]].concat());
    assert!(
        error.contains(
            "\"4pm\" is not an instant: give a date, a time and an offset, like 2026-11-23T16:00:00Z"
        ),
        "{error}"
    );
    let error = env.fails(T0, &["incident", "update", "INC-000001", "--next-update-by", "tomorrow"]);
    assert!(error.contains("\"tomorrow\" is not an instant"), "{error}");
}

/// A subcommand's `--help` shows its own options first; the settings every command takes
/// come after, under their own heading.
#[test]
fn a_commands_help_puts_its_own_options_first() {
    let env = Env::new();
    let help = env.ok(T0, &["incident", "declare", "--help"]);
    let at = |text: &str| help.find(text).unwrap_or_else(|| panic!("no {text:?} in\n{help}"));
    assert!(at("--etr") < at("Settings (every command):"), "{help}");
    assert!(at("Settings (every command):") < at("--database"), "{help}");
    assert!(help.contains("acknowledged, identified or monitoring"), "{help}");
}

/// An operator can say there is no estimate yet (issue 17, item 12), and give instants
/// from now: the acknowledgement says an estimate will follow and when they will hear
/// next, and the incident shows when service was lost as `started_at`.
#[test]
fn an_incident_declared_without_an_estimate_says_one_will_follow() {
    let env = Env::new();
    env.import_book(T0, PLANS, TOPOLOGY, CUSTOMERS);
    let declare = ["incident", "declare", "--element", "hub1", "--cause", "Cut"];
    let declared =
        env.json(T0, &[&declare[..], &["--next-update-by", "+1h", "--started-at", "-30m"]].concat());
    let incident = &declared["incident"];
    assert_eq!(incident["etr"], serde_json::Value::Null, "{declared}");
    assert_eq!(incident["started_at"], "2026-11-23T11:30:00Z", "{declared}");
    assert_eq!(incident["next_update_by"], "2026-11-23T13:00:00Z", "{declared}");
    env.ok(T0, &["deliver"]);
    let outbox = env.outbox();
    assert!(outbox.contains("We do not know yet when it will be back"), "{outbox}");
    assert!(outbox.contains("We will write again by Monday, November 23 at 1:00\u{202f}PM UTC."), "{outbox}");
}

/// A policy paid on request makes the notices say so (issue 17, item 6): the
/// acknowledgement and the restoration tell the customer to claim it on their page, and
/// promise no credit "automatically" and no word of an amount.
#[test]
fn customers_whose_policy_pays_on_request_are_told_to_claim_it_on_their_page() {
    let scratch = tempfile::tempdir().unwrap();
    let policy = scratch.path().join("on-request.toml");
    std::fs::write(
        &policy,
        "id = \"on-request\"\nversion = 1\n\n[[rules]]\nid = \"prorated\"\nevent = \"outage\"\n\
         automatic = false\npay = { basis = \"prorated\" }\n",
    )
    .unwrap();
    let env = Env::configured(&format!("policy = {:?}\n", policy.display().to_string()));
    env.import_book(T0, PLANS, TOPOLOGY, CUSTOMERS);
    let declare = ["incident", "declare", "--element", "hub1", "--cause", "Cut", "--next-update-by", "+1h"];
    let declared = env.json(T0, &declare);
    let id = declared["incident"]["incident_id"].as_str().unwrap().to_string();
    env.ok(T0, &["deliver"]);
    env.ok("2026-11-23T13:00:00Z", &["incident", "resolve", &id]);
    env.ok("2026-11-23T13:00:00Z", &["deliver"]);
    let outbox = env.outbox();
    // The acknowledgement and the restoration, to each customer reached by email, point
    // to the page every email links, where the amount is claimed.
    let told =
        ["once the outage is over, to claim in one click", "claim it on your page below, in one click"];
    for words in told {
        assert!(outbox.contains(words), "{words} in {outbox}");
    }
    assert!(!outbox.contains("ask us and we will apply it"), "{outbox}");
    assert!(!outbox.contains("automatically") && !outbox.contains("with the amount"), "{outbox}");
}

/// The operator hears who will read their words untranslated (issue 17, item 3): Eve
/// reads French, and an English-only declaration is flagged; with a French cause and
/// message it is not.
#[test]
fn an_operator_is_told_who_reads_their_words_untranslated() {
    let env = Env::new();
    let at = "2026-11-23T14:00:00Z";
    env.import_book(at, PLANS, TOPOLOGY, CUSTOMERS);
    let declare = ["incident", "declare", "--element", "n1", "--cause", "Cut", "--message", "On site"];
    let out = env.run(at, &[&declare[..], &["--next-update-by", "+1h"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 1 affected customers will read your words untranslated (fr: 1)"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["untranslated"], serde_json::json!({"fr": 1}));

    let translated = ["--cause-in", "fr=Coupure", "--message-in", "fr=Sur place", "--next-update-by", "+1h"];
    let out = env.run(at, &[&declare[..], &translated[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["untranslated"], serde_json::json!({}));
}
