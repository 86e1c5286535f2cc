//! End to end through the real binary: a fixed case's customer is sampled by amends (not
//! by the agent), sent a single-use link a day after the fix, answers once through the
//! page the link opens (opening it answers nothing), is refused the second time, and the
//! agent can neither see the survey nor reach its report. Ticking again draws and sends
//! nothing twice.

use crate::binary;

use binary::Env;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,North\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana Lima,ana@example.com,,en-US,UTC,fast,root,M1,1,2020-01-01T00:00:00Z,active
C2,Bo Berg,bo@example.com,,en-US,UTC,fast,root,M2,1,2020-01-01T00:00:00Z,active
";
const AGENTS: &str = "id,name,role,lead,active\nlee,Lee Lead,lead,,\nann,Ann Agent,agent,lee,true\n";
const SETTINGS: &str = r#"provider_name = "Example Cable"

[delivery]
public_url = "https://care.example.com"

[surveys]
sample_rate_ppm = 1000000
delay_after_fix = "PT24H"
per_customer_min_gap = "PT2160H"
link_valid_for = "PT336H"
scale = "nps"
"#;

fn survey_tokens(outbox: &str) -> Vec<String> {
    outbox
        .split("https://care.example.com/v1/surveys/answer?token=")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_is_sampled_answered_once_refused_after_and_invisible_to_the_agent() {
    let s = Env::configured(SETTINGS);
    let t0 = "2026-11-23T12:00:00Z";
    s.import_book(t0, PLANS, TOPOLOGY, CUSTOMERS);
    s.import_agents(t0, AGENTS);
    let case = s
        .json(t0, &["case", "open", "--as", "ann", "--customer", "C1", "--summary", "Router keeps dropping"]);
    let case = case["case_id"].as_str().unwrap().to_string();
    s.ok("2026-11-23T12:05:00Z", &["case", "act", &case, "--as", "ann", "respond", "--message", "On it."]);
    s.ok("2026-11-23T13:00:00Z", &["case", "act", &case, "--as", "ann", "fix", "--note", "New router"]);
    let agent_token = s.ok(t0, &["token", "create", "--scope", "agent", "--agent", "ann"]).trim().to_string();
    let read_token = s.ok(t0, &["token", "create", "--scope", "read"]).trim().to_string();

    // A day after the fix, not a minute before, amends decides and sends.
    s.ok("2026-11-24T12:59:00Z", &["tick"]);
    let report = s.json("2026-11-24T12:59:00Z", &["survey", "report"]);
    assert_eq!(report["decisions"], serde_json::json!([]), "{report}");
    for now in ["2026-11-24T13:00:00Z", "2026-11-24T14:00:00Z", "2026-11-25T09:00:00Z"] {
        s.ok(now, &["tick"]);
        s.ok(now, &["deliver"]);
    }
    let report = s.json("2026-11-25T09:00:00Z", &["survey", "report"]);
    assert_eq!(report["decisions"], serde_json::json!([{ "decision": "send", "reason": null, "count": 1 }]));
    let outbox = s.outbox();
    let tokens = survey_tokens(&outbox);
    assert_eq!(tokens.len(), 1, "one survey, sent once:\n{outbox}");
    let token = &tokens[0];

    let server = s.serve("2026-11-25T10:00:00Z");
    let http = amends_channels::http_client_builder().unwrap().no_proxy().build().unwrap();
    let answer_url = format!("{}/v1/surveys/answer?token={token}", server.base);

    // Following the link (as a mail scanner does) shows the question and records nothing.
    let page = http.get(&answer_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("How likely are you to recommend us") && page.contains("value=\"10\""), "{page}");
    // Written in the language the customer reads, whatever the browser prefers; `?lang=`
    // is the reader's own choice.
    let german_browser = http.get(&answer_url).header("accept-language", "de-DE").send().await.unwrap();
    let german_browser = german_browser.text().await.unwrap();
    assert!(german_browser.contains("How likely are you to recommend us"), "{german_browser}");
    let chosen = http.get(format!("{answer_url}&lang=de")).send().await.unwrap().text().await.unwrap();
    assert!(chosen.contains("Wie wahrscheinlich ist es"), "{chosen}");
    let report = |token: String| {
        let (http, base) = (http.clone(), server.base.clone());
        async move { http.get(format!("{base}/v1/surveys/report")).bearer_auth(token).send().await.unwrap() }
    };
    let r: serde_json::Value = report(read_token.clone()).await.json().await.unwrap();
    assert_eq!(r["rows"], serde_json::json!([]), "opening the page answered nothing: {r}");

    // A score off the scale is refused and uses nothing up.
    let off = http.post(&answer_url).form(&[("score", "11")]).send().await.unwrap();
    assert_eq!(off.status(), 422);
    assert!(off.text().await.unwrap().contains("11 is outside the scale: choose a score from 0 to 10"));
    // A hostile one comes back as text, never markup (issue 18, item 10), and every page
    // forbids scripts and framing.
    let hostile =
        http.post(&answer_url).form(&[("score", "<script>alert(1)</script>")]).send().await.unwrap();
    assert_eq!(hostile.status(), 422);
    let csp = hostile.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    let text = hostile.text().await.unwrap();
    assert!(!text.contains("<script>") && text.contains("&lt;script&gt;"), "{text}");
    let question = http.get(&answer_url).send().await.unwrap();
    assert!(question.headers()["content-security-policy"].to_str().unwrap().contains("form-action 'self'"));

    // Answered once; a second answer and a forged link are refused.
    let first = http.post(&answer_url).form(&[("score", "9")]).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.text().await.unwrap().contains("Your answer is recorded"));
    let second = http.post(&answer_url).form(&[("score", "2")]).send().await.unwrap();
    assert_eq!(second.status(), 409);
    assert!(second.text().await.unwrap().contains("answered already"));
    let forged = format!("{}/v1/surveys/answer?token={}x", server.base, token);
    let forged = http.post(&forged).form(&[("score", "0")]).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    assert!(!forged.text().await.unwrap().contains("C1"));

    // The report holds the one answer, in Ann's own group, next to its outcome signals.
    let r: serde_json::Value = report(read_token.clone()).await.json().await.unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    assert_eq!((&rows[0]["group"]["group"], &rows[0]["group"]["owner"]), (&"agent".into(), &"ann".into()));
    assert_eq!((rows[0]["count"].as_u64(), rows[0]["nps_per_mille"].as_i64()), (Some(1), Some(1000)));

    // The agent: no report, and nothing of the survey in the case they own.
    let denied = report(agent_token.clone()).await;
    assert_eq!(denied.status(), 403);
    let view =
        http.get(format!("{}/v1/cases/{case}", server.base)).bearer_auth(&agent_token).send().await.unwrap();
    assert_eq!(view.status(), 200);
    let view = view.text().await.unwrap();
    assert!(!view.contains("survey") && !view.contains("SUR-"), "{view}");
    // A read token sees the survey notice, but never the customer's signed link in it
    // (issue 18, item 6): whoever holds the link can answer for the customer.
    let get = |path: String| {
        let (http, base, token) = (http.clone(), server.base.clone(), read_token.clone());
        async move { http.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap() }
    };
    let notices: serde_json::Value = get("/v1/customers/C1/notices".into()).await.json().await.unwrap();
    let survey_key = notices
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "survey")
        .and_then(|n| n["key"].as_str())
        .expect("the survey notice is listed")
        .to_string();
    for path in [
        "/v1/customers/C1/notices".to_string(),
        "/v1/notices?customer=C1".into(),
        format!("/v1/notices/{survey_key}"),
    ] {
        let seen = get(path.clone()).await;
        assert_eq!(seen.status(), 200, "{path}");
        let seen = seen.text().await.unwrap();
        assert!(seen.contains("token=[redacted]"), "{path}: {seen}");
        assert!(!seen.contains(token.as_str()), "{path} shows the signed link: {seen}");
    }

    drop(server);

    // The control group: customers with no problem, drawn by amends. Ana had a case, so
    // she is no control; Bo is asked. Drawing the round again changes nothing.
    let round = ["survey", "control", "--round", "2026-q4", "--rate-ppm", "1000000"];
    let control = s.json("2026-11-25T10:00:00Z", &round);
    assert_eq!(
        (&control["drawn"], &control["had_a_problem"], &control["to_ask"]),
        (&2.into(), &1.into(), &1.into())
    );
    assert_eq!(s.json("2026-11-25T11:00:00Z", &round), control);
    for now in ["2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z"] {
        s.ok(now, &["tick"]);
        s.ok(now, &["deliver"]);
    }
    assert_eq!(survey_tokens(&s.outbox()).len(), 2, "Bo's survey, once");
    let report = s.json("2026-11-26T11:00:00Z", &["survey", "report"]);
    assert_eq!(report["decisions"], serde_json::json!([{ "decision": "send", "reason": null, "count": 2 }]));

    // Bo never answers; two weeks after it was sent his link has expired.
    let bo = survey_tokens(&s.outbox()).pop().unwrap();
    let server = s.serve("2026-12-10T10:00:00Z");
    let url = format!("{}/v1/surveys/answer?token={bo}", server.base);
    let late = http.post(&url).form(&[("score", "10")]).send().await.unwrap();
    assert_eq!(late.status(), 400);
    assert!(late.text().await.unwrap().contains("This link has expired"));
}

/// Issue 18, item 3: a declared incident (no telemetry) records who it affected when it is
/// resolved, so its customers are surveyed like a detected incident's; a re-run records
/// and draws nothing twice.
#[test]
fn customers_restored_after_a_declared_incident_are_surveyed() {
    let s = Env::configured(SETTINGS);
    let t0 = "2026-11-23T12:00:00Z";
    s.import_book(t0, PLANS, TOPOLOGY, CUSTOMERS);
    let declare =
        ["incident", "declare", "--element", "root", "--cause", "Fibre cut", "--next-update-by", "+2h"];
    let declared = s.json(t0, &declare);
    let id = declared["incident"]["incident_id"].as_str().unwrap().to_string();
    s.ok("2026-11-23T15:00:00Z", &["incident", "resolve", &id]);
    s.ok("2026-11-23T15:00:00Z", &["tick"]);

    let impacts = s.json("2026-11-23T15:00:00Z", &["incident", "impacts", &id]);
    let customers: Vec<&str> =
        impacts.as_array().unwrap().iter().map(|i| i["customer_id"].as_str().unwrap()).collect();
    assert_eq!(customers, ["C1", "C2"], "{impacts}");
    assert_eq!(impacts[0]["downtime"], serde_json::json!([["2026-11-23T12:00:00Z", "2026-11-23T15:00:00Z"]]));
    assert_eq!(impacts[0]["presumed"], true, "no telemetry: presumed out for the incident's span");

    for now in ["2026-11-24T15:00:00Z", "2026-11-24T16:00:00Z"] {
        s.ok(now, &["tick"]);
        s.ok(now, &["deliver"]);
    }
    let report = s.json("2026-11-24T16:00:00Z", &["survey", "report"]);
    assert_eq!(report["decisions"], serde_json::json!([{ "decision": "send", "reason": null, "count": 2 }]));
    assert_eq!(survey_tokens(&s.outbox()).len(), 2, "{}", s.outbox());
}
