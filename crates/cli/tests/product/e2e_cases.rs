//! End to end through the real binary: a customer's own mistake handled through all five
//! steps of the playbook, with a goodwill gesture and the follow-up amends sends by itself,
//! on a controlled clock (`--now`).

use crate::binary;

use binary::Env;
use serde_json::Value;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,North\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana Lima,ana@example.com,,en-US,UTC,fast,root,M1,1,2020-01-01T00:00:00Z,active
";
const AGENTS: &str = "id,name,role,lead,active\nlee,Lee Lead,lead,,\nann,Ann Agent,agent,lee,true\n";

fn kinds(view: &Value) -> Vec<&str> {
    view["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn a_customers_own_mistake_through_all_five_steps_with_goodwill_and_a_follow_up() {
    let env = Env::new();
    let t0 = "2026-11-23T12:00:00Z";
    env.import_book(t0, PLANS, TOPOLOGY, CUSTOMERS);
    env.import_agents(t0, AGENTS);

    // Empathize and own it: Ann opens the case and answers at once.
    let open = ["case", "open", "--as", "ann", "--customer", "C1", "--fault", "customer"];
    let view = env.json(
        t0,
        &[&open[..], &["--summary", "Ordered the wrong lenses and sent back the right ones"]].concat(),
    );
    let case = view["case_id"].as_str().unwrap().to_string();
    let act = |now: &str, args: &[&str]| {
        env.json(now, &[&["case", "act", case.as_str(), "--as", "ann"], args].concat())
    };
    act(
        "2026-11-23T12:05:00Z",
        &["respond", "--message", "I am sorry about the mix-up. I will sort it out today."],
    );

    // Lessen the inconvenience: a goodwill gesture within an agent's limit; over it, refused.
    let refused = env.fails(
        "2026-11-23T12:10:00Z",
        &[
            "case",
            "act",
            &case,
            "--as",
            "ann",
            "add-goodwill",
            "--amount-minor",
            "2500",
            "--note",
            "Too much for an agent",
        ],
    );
    assert!(refused.contains("20.00 USD"), "{refused}");
    act("2026-11-23T12:10:00Z", &["add-goodwill", "--amount-minor", "1500", "--note", "For the trouble"]);

    // Fix it right then, manage the memory, close.
    act("2026-11-23T13:00:00Z", &["fix", "--note", "The right lenses were sent by courier"]);
    act(
        "2026-11-23T13:05:00Z",
        &["send-memory-note", "--kind", "thank_you", "--text", "Thank you for your patience, Ana."],
    );
    let closed = act("2026-11-23T13:06:00Z", &["close"]);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["playbook"]["customer_time"], "PT1H", "from the first contact to the fix");

    // Extend the relationship: the follow-up goes out by itself three days after the fix,
    // once, whoever runs the tick again.
    env.ok("2026-11-26T12:59:00Z", &["tick"]);
    assert!(!kinds(&env.json("2026-11-26T12:59:00Z", &["case", "show", &case])).contains(&"follow_up"));
    env.ok("2026-11-26T13:00:00Z", &["tick"]);
    env.ok("2026-11-26T14:00:00Z", &["tick"]);
    let view = env.json("2026-11-26T14:00:00Z", &["case", "show", &case]);
    assert_eq!(
        kinds(&view),
        ["opened", "first_response", "goodwill", "fixed", "memory_note", "closed", "follow_up"]
    );
    for step in view["playbook"]["steps"].as_array().unwrap() {
        assert!(step["done"].is_object(), "every step is done: {step}");
    }

    // The customer heard each of the owner's steps meant for them, once, and the goodwill
    // is in the ledger for billing, explained.
    env.ok("2026-11-26T14:00:00Z", &["deliver"]);
    env.ok("2026-11-26T14:00:00Z", &["deliver"]);
    let outbox = env.outbox();
    for words in
        ["I will sort it out today.", "Thank you for your patience, Ana.", "Is everything still working?"]
    {
        assert_eq!(outbox.matches(words).count(), 1, "{words:?} once in:\n{outbox}");
    }
    let credits = env.json("2026-11-26T14:00:00Z", &["credits", "export", "--format", "json"]);
    let credits = credits.as_array().unwrap();
    assert_eq!(credits.len(), 1, "{credits:?}");
    assert_eq!(
        (&credits[0]["amount_minor"], &credits[0]["source_event"]),
        (&Value::from(1500), &Value::from(case.clone()))
    );
    assert!(credits[0]["explanation"].as_str().unwrap().contains("goodwill gesture of 15.00 USD by ann"));
}

#[test]
fn a_bad_agents_file_is_refused_whole_with_its_lines() {
    let env = Env::new();
    std::fs::write(
        env.root.join("agents.csv"),
        "id,name,role,lead,active\nann,Ann,agent,,maybe\nbo,Bo,boss,,\ncy,Cy,agent,zed,\n\"broken,\n",
    )
    .unwrap();
    let err = env.fails(
        "2026-11-23T12:00:00Z",
        &["agents", "import", "--file", env.root.join("agents.csv").to_str().unwrap()],
    );
    // Every bad line in one go, each by its line in the file: what could not be read and
    // what does not hold together alike.
    assert!(err.contains("agents.csv:2: active \"maybe\""), "{err}");
    assert!(err.contains("agents.csv:3: role \"boss\""), "{err}");
    assert!(err.contains("agents.csv:4: lead zed is not known"), "{err}");
    assert!(err.contains("agents.csv:5: has 1 fields where the header has 5"), "{err}");
    assert!(!err.contains("agents["), "places are the file's lines: {err}");
    let err2 = env.fails("2026-11-23T12:00:00Z", &["case", "show", "CASE-000001"]);
    assert!(err2.contains("CASE-000001"), "{err2}");
    assert_eq!(
        env.json("2026-11-23T12:00:00Z", &["agents", "list"]),
        Value::Array(vec![]),
        "nothing written"
    );
}
