//! Individual recovery cases through the HTTP API of a real server on 127.0.0.1 over a
//! fresh SQLite file: the directory of people, agents' tokens, the five playbook steps,
//! hand-overs, goodwill in the ledger within a role's limit, and escalation to the lead
//! on a controlled clock.

use crate::support;

use amends_recovery::tokens;
use jiff::SignedDuration;
use reqwest::Method;
use serde_json::{Value, json};
use support::{CUSTOMERS, PLANS, TOPOLOGY, TestServer, ts};

/// The book, and three people: Ann and Bea are agents, Lee is their lead.
async fn setup(s: &TestServer) -> Tokens {
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let agents = json!({ "agents": [
        { "id": "lee", "name": "Lee Lead", "role": "lead" },
        { "id": "ann", "name": "Ann Agent", "role": "agent", "lead": "lee" },
        { "id": "bea", "name": "Bea Agent", "role": "agent", "lead": "lee" },
    ]});
    let put = s.send(s.request(Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await;
    assert_eq!((put.status, &put.body["written"]), (200, &json!(3)), "{:?}", put.body);
    let token = async |id: &str| {
        tokens::create_for_agent(s.engine.store().as_ref(), id, "test", ts(support::START))
            .await
            .unwrap()
            .expect("a known agent")
    };
    Tokens { ann: token("ann").await, bea: token("bea").await, lee: token("lee").await }
}

struct Tokens {
    ann: String,
    bea: String,
    lee: String,
}

async fn act(s: &TestServer, token: &str, case: &str, action: Value) -> support::Reply {
    s.post(&format!("/v1/cases/{case}/actions"), Some(token), &action).await
}

fn step<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["playbook"]["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap()
}

#[tokio::test]
async fn a_customers_own_mistake_goes_through_all_five_steps() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let open = json!({
        "customer": "C1",
        "summary": "Ordered the wrong modem and sent back the right one",
        "fault": "customer",
        "first_contact_at": "2026-11-23T11:30:00Z",
    });
    let opened = s.post("/v1/cases", Some(&t.ann), &open).await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let case = opened.body["case_id"].as_str().unwrap().to_string();
    assert_eq!((case.as_str(), &opened.body["owner"]), ("CASE-000001", &json!("ann")));
    assert_eq!(opened.body["playbook"]["next"], "acknowledge");

    let r = act(&s, &t.ann, &case, json!({"action": "respond", "message": "I am sorry; I will fix it now."}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(step(&r.body, "acknowledge")["within_target"], true);

    s.clock.advance(SignedDuration::from_mins(20));
    let r = act(
        &s,
        &t.ann,
        &case,
        json!({"action": "add_goodwill", "amount_minor": 1500, "note": "For the trouble"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let credit = &r.body["customer_credits"][0];
    assert_eq!((&credit["amount_minor"], &credit["source_event"]), (&json!(1500), &json!(case)));
    assert!(
        credit["explanation"].as_str().unwrap().contains("goodwill gesture of 15.00 USD by ann"),
        "{credit}"
    );

    let r = act(&s, &t.ann, &case, json!({"action": "fix", "note": "Right modem shipped, old one refunded"}))
        .await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("fixed")), "{:?}", r.body);
    let r = act(
        &s,
        &t.ann,
        &case,
        json!({"action": "send_memory_note", "kind": "thank_you",
        "text": "Thank you for your patience, Ana."}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for name in ["acknowledge", "own_and_fix", "lessen", "memory"] {
        assert_eq!(step(&r.body, name)["done"]["by"], "ann", "{name}: {}", step(&r.body, name));
    }
    assert_eq!(step(&r.body, "extend")["due"]["automatic"], true);
    assert_eq!(r.body["playbook"]["customer_time"], "PT50M", "from the first contact to the fix");

    let r = act(&s, &t.ann, &case, json!({"action": "close"})).await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("closed")));
    let kinds: Vec<&str> =
        r.body["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opened", "first_response", "goodwill", "fixed", "memory_note", "closed"]);

    // The gesture is announced: the amount the customer's way, the statement, the words.
    s.tick().await;
    let notices = s.engine.store().notices_for_customer("C1").await.unwrap();
    let goodwill: Vec<_> =
        notices.iter().filter(|n| n.kind == "case_note" && n.body.contains("$15.00")).collect();
    assert_eq!(goodwill.len(), 2, "by email and by SMS: {notices:?}");
    let email = goodwill.iter().find(|n| n.channel.as_str() == "email").unwrap();
    assert!(email.subject.starts_with("$15.00 for you"), "{}", email.subject);
    assert!(
        email.body.contains("has added $15.00") && email.body.contains("For the trouble"),
        "{}",
        email.body
    );
    assert!(email.body.contains("statement of December 1, 2026"), "{}", email.body);
}

#[tokio::test]
async fn one_owner_at_a_time_and_a_hand_over_needs_acceptance() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let opened = s
        .post("/v1/cases", Some(&t.ann), &json!({"customer": "C4", "summary": "Technician never came"}))
        .await;
    let case = opened.body["case_id"].as_str().unwrap().to_string();

    let r = act(&s, &t.bea, &case, json!({"action": "respond", "message": "Hello"})).await;
    assert_eq!(r.status, 403, "not the owner: {:?}", r.body);
    let r = act(&s, &t.ann, &case, json!({"action": "offer_handover", "to": "lee", "note": "Yours"})).await;
    assert_eq!(r.status, 422, "a lead does not own cases: {:?}", r.body);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("lee is lead, not an agent"),
        "{:?}",
        r.body
    );
    let r = act(&s, &t.ann, &case, json!({"action": "offer_handover", "to": "zed", "note": "Yours"})).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("zed"), "{:?}", r.body);
    let r = act(&s, &t.ann, &case, json!({"action": "offer_handover", "to": "bea", "note": ""})).await;
    assert_eq!(r.status, 422, "a hand-over needs a note: {:?}", r.body);

    let r = act(
        &s,
        &t.ann,
        &case,
        json!({"action": "offer_handover", "to": "bea", "note": "Bea knows the area"}),
    )
    .await;
    assert_eq!((r.status, &r.body["owner"], &r.body["handover_to"]), (200, &json!("ann"), &json!("bea")));
    let r = act(&s, &t.bea, &case, json!({"action": "accept_handover", "note": "On it"})).await;
    assert_eq!((r.status, &r.body["owner"], &r.body["handover_to"]), (200, &json!("bea"), &Value::Null));
    let told = s.get("/v1/notices?customer=C4", Some(&s.read)).await;
    let owner_notice =
        told.body.as_array().unwrap().iter().find(|n| n["kind"] == "case_owner").expect("told who owns it");
    assert!(owner_notice["body"].as_str().unwrap().contains("Bea Agent"), "{owner_notice}");
    assert!(
        !owner_notice["body"].as_str().unwrap().contains("Bea knows the area"),
        "the hand-over note is internal"
    );
    let mine = s.get("/v1/cases?owner=me&open=true", Some(&t.bea)).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    assert_eq!(s.get("/v1/cases?owner=me", Some(&t.ann)).await.body, json!([]));
}

#[tokio::test]
async fn goodwill_above_the_role_limit_is_refused_and_writes_nothing() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let opened =
        s.post("/v1/cases", Some(&t.ann), &json!({"customer": "C1", "summary": "Billing error"})).await;
    let case = opened.body["case_id"].as_str().unwrap().to_string();
    let r =
        act(&s, &t.ann, &case, json!({"action": "add_goodwill", "amount_minor": 2001, "note": "Too much"}))
            .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("20.00"), "{:?}", r.body);
    let view = s.get(&format!("/v1/cases/{case}"), Some(&t.ann)).await;
    assert_eq!(
        (view.body["events"].as_array().unwrap().len(), &view.body["customer_credits"]),
        (1, &json!([]))
    );
    // The lead may go further, and the ledger keeps each gesture under its own key.
    let r = act(
        &s,
        &t.lee,
        &case,
        json!({"action": "add_goodwill", "amount_minor": 5000, "note": "Lead's call"}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["customer_credits"].as_array().unwrap().len(), 1);
    // The tick that would finish a step cut short by a crash finds nothing left to do.
    assert_eq!(s.tick().await.cases, Default::default());
    assert_eq!(s.engine.store().credits(&Default::default()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn compensation_by_policy_comes_from_the_case_facts_once() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let opened = s
        .post("/v1/cases", Some(&t.ann), &json!({"customer": "C1", "summary": "No service since Friday"}))
        .await;
    let case = opened.body["case_id"].as_str().unwrap().to_string();
    let repair = json!({"action": "compensate_by_policy",
        "facts": {"kind": "repair", "reported_at": "2026-11-20T12:00:00Z", "fixed_at": "2026-11-23T12:00:00Z"}});
    // Not the owner: refused, nothing written.
    let r = act(&s, &t.bea, &case, repair.clone()).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(s.engine.store().credits(&Default::default()).await.unwrap().is_empty());

    let r = act(&s, &t.ann, &case, repair.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let credits = r.body["customer_credits"].as_array().unwrap();
    assert_eq!(credits.len(), 1, "{credits:?}");
    let credit = &credits[0];
    assert_eq!(credit["key"], format!("C1/{case}/repair/prorated/2"));
    assert_eq!(credit["source_event"], format!("{case}/repair"));
    // 79.99 USD a month, three days of November's thirty without service: 8.00 USD.
    assert_eq!(credit["amount_minor"], 800, "{credit}");
    let compensated: Vec<&Value> =
        r.body["events"].as_array().unwrap().iter().filter(|e| e["type"] == "compensated").collect();
    assert_eq!(compensated.len(), 1);
    assert_eq!((&compensated[0]["by"], &compensated[0]["amount_minor"]), (&json!("ann"), &json!(800)));
    assert!(step(&r.body, "lessen")["done"].is_object(), "{}", step(&r.body, "lessen"));

    // The same facts again change nothing; other facts would pay twice and are refused.
    let again = act(&s, &t.ann, &case, repair).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["events"].as_array().unwrap().len(), r.body["events"].as_array().unwrap().len());
    let other = json!({"action": "compensate_by_policy",
        "facts": {"kind": "repair", "reported_at": "2026-11-19T12:00:00Z", "fixed_at": "2026-11-23T12:00:00Z"}});
    let refused = act(&s, &t.ann, &case, other).await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    // Facts the case cannot reach: a fix still to come, a report long before the contact.
    for (reported, fixed) in
        [("2026-11-20T12:00:00Z", "2026-11-25T12:00:00Z"), ("2025-11-20T12:00:00Z", "2026-11-21T12:00:00Z")]
    {
        let facts = json!({"action": "compensate_by_policy",
            "facts": {"kind": "repair", "reported_at": reported, "fixed_at": fixed}});
        let r = act(&s, &t.ann, &case, facts).await;
        assert_eq!(r.status, 422, "{:?}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("is outside the case"), "{:?}", r.body);
    }
    let backwards = json!({"action": "compensate_by_policy",
        "facts": {"kind": "repair", "reported_at": "2026-11-23T12:00:00Z", "fixed_at": "2026-11-20T12:00:00Z"}});
    assert_eq!(act(&s, &t.ann, &case, backwards).await.status, 422);
    assert_eq!(s.engine.store().credits(&Default::default()).await.unwrap().len(), 1);
}

/// A case records what was credited: a policy that pays a repair only when the customer
/// asks credits nothing, and the agent is told so with the amount, not that no policy pays.
#[tokio::test]
async fn a_repair_a_policy_pays_only_on_request_is_refused_naming_the_amount() {
    let toml = "id = \"on-request\"\nversion = 1\n\n[[rules]]\nid = \"goodwill\"\nevent = \"outage\"\n\
                automatic = false\npay = { basis = \"once\", amount = { minor = 500 } }\n";
    let policy = amends_core::policy::Policy::from_toml("on-request.toml", toml).unwrap();
    let s = TestServer::start_with_policy(policy).await;
    let t = setup(&s).await;
    let opened = s.post("/v1/cases", Some(&t.ann), &json!({"customer": "C1", "summary": "No service"})).await;
    let case = opened.body["case_id"].as_str().unwrap().to_string();
    let repair = json!({"action": "compensate_by_policy",
        "facts": {"kind": "repair", "reported_at": "2026-11-20T12:00:00Z", "fixed_at": "2026-11-23T12:00:00Z"}});
    let r = act(&s, &t.ann, &case, repair).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("only when the customer asks") && message.contains("5.00"), "{message}");
    assert!(s.engine.store().credits(&Default::default()).await.unwrap().is_empty(), "nothing credited");
    assert!(s.engine.store().on_request_offers("C1").await.unwrap().is_empty(), "nothing half-written");
}

#[tokio::test]
async fn a_target_about_to_be_missed_goes_to_the_lead_once() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let opened = s.post("/v1/cases", Some(&t.ann), &json!({"customer": "C1", "summary": "Slow line"})).await;
    let case = opened.body["case_id"].as_str().unwrap().to_string();
    let rules = s.engine.config().case_rules;

    s.clock.advance(rules.first_response_target - rules.escalate_before - SignedDuration::from_secs(1));
    assert_eq!(s.tick().await.cases.escalated, 0, "a second before the warning");
    s.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(s.tick().await.cases.escalated, 1);
    assert_eq!(s.tick().await.cases.escalated, 0, "never twice");
    let view = s.get(&format!("/v1/cases/{case}"), Some(&t.lee)).await;
    let last = view.body["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["type"], &last["to"], &last["by"]),
        (&json!("escalated"), &json!("lee"), &json!("amends"))
    );
}

#[tokio::test]
async fn only_an_active_agents_token_reaches_cases() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let body = json!({"customer": "C1", "summary": "x"});
    assert_eq!(s.post("/v1/cases", None, &body).await.status, 401);
    assert_eq!(s.post("/v1/cases", Some("amends_nope"), &body).await.status, 401);
    for token in [&s.admin, &s.operator, &s.read] {
        let r = s.post("/v1/cases", Some(token), &body).await;
        assert_eq!(r.status, 403, "{:?}", r.body);
    }
    // An agent's token reaches nothing else.
    assert_eq!(s.get("/v1/incidents", Some(&t.ann)).await.status, 403);
    assert_eq!(s.get("/v1/agents", Some(&t.ann)).await.status, 403);
    // A person no longer active loses access at once.
    let agents = json!({ "agents": [{ "id": "ann", "name": "Ann Agent", "role": "agent", "lead": "lee", "active": false }]});
    assert_eq!(s.send(s.request(Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await.status, 200);
    assert_eq!(s.post("/v1/cases", Some(&t.ann), &body).await.status, 403);
}

#[tokio::test]
async fn a_bad_directory_is_refused_whole() {
    let s = TestServer::start().await;
    setup(&s).await;
    let agents = json!({ "agents": [
        { "id": "cat", "name": "Cat", "role": "agent", "lead": "ann" },
        { "id": "dan", "name": "Dan", "role": "boss" },
        { "id": "eve", "name": " ", "role": "agent", "lead": "eve" },
    ]});
    let r = s.send(s.request(Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let details = r.body["error"]["details"].to_string();
    for expected in
        ["lead ann is an agent", "role \\\"boss\\\"", "name is empty", "eve cannot be their own lead"]
    {
        assert!(details.contains(expected), "{expected} in {details}");
    }
    assert_eq!(s.get("/v1/agents", Some(&s.read)).await.body.as_array().unwrap().len(), 3, "nothing written");
}

#[tokio::test]
async fn a_long_response_goes_whole_by_email_and_cut_by_sms() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let opened = s.post("/v1/cases", Some(&t.ann), &json!({"customer": "C1", "summary": "Wrong bill"})).await;
    let case = opened.body["case_id"].as_str().unwrap().to_string();
    let words = "We looked at every line of your bill together with billing. ".repeat(25);
    let r = act(&s, &t.ann, &case, json!({"action": "respond", "message": words})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let told = s.get(&format!("/v1/notices?customer=C1&incident={case}"), Some(&s.read)).await;
    let body = |channel: &str| {
        let n = told.body.as_array().unwrap().iter().find(|n| n["channel"] == channel).unwrap();
        n["body"].as_str().unwrap().to_string()
    };
    assert!(body("email").contains(words.trim()), "the email has every word");
    let sms = body("sms");
    assert!(sms.contains("...") && sms.chars().count() < 400, "{} chars: {sms}", sms.chars().count());
    let segments = amends_core::sms::segments(&sms);
    assert!(segments.segments <= 3, "{segments:?}: over the default budget of three segments: {sms}");
}

#[tokio::test]
async fn a_contact_during_an_outage_is_attached_and_answered_with_the_estimate() {
    let s = TestServer::start().await;
    let t = setup(&s).await;
    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut near Hub 1", "message": "Crews are on site.",
        "etr": "2026-11-23T16:00:00Z", "next_update_by": "2026-11-23T13:00:00Z",
    });
    let declared = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(declared.status, 201, "{:?}", declared.body);
    s.tick().await;

    // C5 (New York) calls before anything was delivered: attached, not told first.
    let call = json!({"customer": "C5", "channel": "phone", "summary": "Internet is down"});
    let r = s.post("/v1/contacts", Some(&t.ann), &call).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (&r.body["incident"]["incident_id"], &r.body["told_before"]),
        (&json!("INC-000001"), &json!(false))
    );
    assert_eq!(r.body["incident"]["etr_local"], "Monday, November 23 at 11:00\u{202f}AM EST", "their zone");

    // Once the acknowledgements are out, C1 calling was told first.
    s.deliver().await;
    let r = s.post("/v1/contacts", Some(&t.ann), &json!({"customer": "C1", "channel": "chat"})).await;
    assert_eq!(
        (&r.body["incident"]["incident_id"], &r.body["told_before"]),
        (&json!("INC-000001"), &json!(true))
    );
    assert_eq!(r.body["told"][0]["kind"], "acknowledgement");

    // C4 is outside the outage: nothing to attach to.
    let r = s.post("/v1/contacts", Some(&t.ann), &json!({"customer": "C4", "channel": "phone"})).await;
    assert_eq!((r.status, &r.body["incident"], &r.body["told"]), (201, &Value::Null, &json!([])));
    let r = s.post("/v1/contacts", Some(&t.ann), &json!({"customer": "C9", "channel": "phone"})).await;
    assert_eq!(r.status, 422, "{:?}", r.body);

    let contacts = s.engine.store().incident_contacts("INC-000001").await.unwrap();
    let told: Vec<(&str, bool)> = contacts.iter().map(|c| (c.customer_id.as_str(), c.told_before)).collect();
    assert_eq!(told, [("C5", false), ("C1", true)]);

    // The incident's figures: everyone told within the delivery pass (the clock did not
    // move), back at 17:00 against a first estimate of 16:00, credited at once.
    s.clock.set(ts("2026-11-23T17:00:00Z"));
    let resolve =
        s.post("/v1/incidents/INC-000001/resolve", Some(&s.operator), &json!({"message": "Fixed"})).await;
    assert_eq!(resolve.status, 200, "{:?}", resolve.body);
    s.tick().await;
    let m = s.get("/v1/incidents/INC-000001/metrics", Some(&s.read)).await;
    assert_eq!(m.status, 200, "{:?}", m.body);
    assert_eq!(
        (&m.body["customers_told"], &m.body["first_notice_after_s"]),
        (&json!(3), &json!(0)),
        "{:?}",
        m.body
    );
    let estimates = &m.body["estimates"];
    assert_eq!((&estimates["first_error_s"], &estimates["given"]), (&json!(3600), &json!(1)), "{estimates}");
    assert_eq!(m.body["credited_after_s"], 0);
    let contacts = &m.body["contacts"];
    assert_eq!(
        (&contacts["total"], &contacts["told_before"], &contacts["told_before_per_mille"]),
        (&json!(2), &json!(1), &json!(500))
    );
    assert_eq!(s.get("/v1/incidents/INC-000404/metrics", Some(&s.read)).await.status, 404);
    assert_eq!(
        s.get("/v1/incidents/INC-000001/metrics", Some(&t.ann)).await.status,
        403,
        "not for agents' tokens"
    );
}
