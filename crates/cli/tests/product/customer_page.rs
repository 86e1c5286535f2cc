//! Issue 20: a customer's own page, opened from the link taken out of a notice amends
//! actually queued, over real HTTP. A Spanish customer reads their outage in Spanish and in
//! Madrid's time, sees what they were told, says they are still offline (a contact while
//! the outage is open; after the restoration the still-down case, opened once), changes
//! their preferences, claims in one click what their policy pays only on request; a form
//! from elsewhere, a forged link and an expired one change nothing and name nobody.

use crate::support;

use reqwest::Method;
use serde_json::json;
use support::TestServer;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,North\nhub1,root,hub,Hub One\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana Lima,ana@example.com,+15550100,en-US,America/New_York,fast,hub1,M1,1,2020-01-01T00:00:00Z,active
C2,Bo Berg,bo@example.com,,es-ES,Europe/Madrid,fast,hub1,M2,1,2020-01-01T00:00:00Z,active
";

/// The path of the page link in `customer`'s first email notice, and in no SMS.
async fn page_path(s: &TestServer, customer: &str) -> String {
    let notices = s.engine.store().notices_for_customer(customer).await.unwrap();
    let email = notices.iter().find(|n| n.channel.as_str() == "email").expect("an email notice");
    let at = email.body.find("/my?token=").unwrap_or_else(|| panic!("no page link in {}", email.body));
    for sms in notices.iter().filter(|n| n.channel.as_str() == "sms") {
        assert!(!sms.body.contains("/my?token="), "an SMS stays short: {}", sms.body);
    }
    email.body[at..].split_whitespace().next().unwrap().to_string()
}

/// Imports the book, declares an outage of hub1 (both customers) and queues its
/// acknowledgements; returns the incident's id.
async fn outage_told(s: &TestServer) -> String {
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut", "message": "On site.", "next_update_by": "2026-11-23T13:00:00Z",
    });
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.tick().await;
    r.body["incident_id"].as_str().unwrap().to_string()
}

/// The hidden form token of a page's forms.
fn form_token(html: &str) -> String {
    let at = html.find("name=\"form\" value=\"").expect("a form token") + "name=\"form\" value=\"".len();
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_opens_their_page_from_a_notice_and_acts_on_it_and_a_bad_link_names_nobody() {
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let agents = json!({ "agents": [{ "id": "ann", "name": "Ann Agent", "role": "agent" }] });
    let put = s.send(s.request(Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut", "message": "Crews are on site.",
        "etr": "2026-11-23T16:00:00Z", "next_update_by": "2026-11-23T13:00:00Z",
        "translations": { "es": { "cause": "Corte de fibra", "message": "Los equipos están en el lugar." } },
    });
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["incident_id"].as_str().unwrap().to_string();
    s.tick().await;

    let path = page_path(&s, "C2").await;
    let url = format!("{}{path}", s.base);
    let page = s.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer", "the address holds the link");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self';"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && csp.contains("style-src 'self';"),
        "no inline script or style: {csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"es\">"), "{html}");
    assert!(html.contains("Hola, Bo Berg") && html.contains("Corte de fibra"), "{html}");
    assert!(html.contains("lunes, 23 de noviembre a las 17:00 CET"), "the estimate in Madrid's time: {html}");
    assert!(html.contains("Lo que le hemos dicho"), "{html}");
    for other in ["Ana", "ana@example.com", "+15550100"] {
        assert!(!html.contains(other), "another customer's {other} on the page: {html}");
    }
    let form = form_token(&html);

    // "Still offline" while the outage is open: a contact, told first (the notice was
    // queued and sent before), and back to the page saying so.
    s.deliver().await;
    let client = support::no_redirects();
    let still = format!("{}/my/still-offline?{}", s.base, path.split_once('?').unwrap().1);
    let from_elsewhere = client.post(&still).form(&[("form", "0".repeat(32))]).send().await.unwrap();
    assert_eq!(from_elsewhere.status(), 403, "a form without the page's token changes nothing");
    let none = client.post(&still).form(&[("x", "y")]).send().await.unwrap();
    assert_eq!(none.status(), 400, "{}", none.text().await.unwrap());
    assert!(s.engine.store().incident_contacts(&id).await.unwrap().is_empty());
    let pressed = client.post(&still).form(&[("form", form.as_str())]).send().await.unwrap();
    assert_eq!(pressed.status(), 303);
    let back = pressed.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with("/my?token=") && back.ends_with("&done=still_offline"), "{back}");
    let contacts = s.engine.store().incident_contacts(&id).await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!((contacts[0].customer_id.as_str(), contacts[0].channel.as_str()), ("C2", "web"));
    assert!(contacts[0].told_before, "the acknowledgement was sent first");
    let after = s.http.get(format!("{}{back}", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(after.contains("Gracias por decírnoslo"), "{after}");

    // Preferences: the boxes ticked are what is stored; a value the form never offers is
    // refused and changes nothing.
    let prefs = format!("{}/my/preferences?{}", s.base, path.split_once('?').unwrap().1);
    let bad =
        client.post(&prefs).form(&[("form", form.as_str()), ("tick", "update.fax")]).send().await.unwrap();
    assert_eq!(bad.status(), 422);
    let saved = client
        .post(&prefs)
        .form(&[
            ("form", form.as_str()),
            ("tick", "acknowledgement.email"),
            ("tick", "restored.email"),
            ("quiet_start", "22:00"),
            ("quiet_end", "07:00"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    let stored = s.get("/v1/customers/C2/preferences", Some(&s.read)).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.body["chosen"]["restored"], json!(["email"]), "{}", stored.body);
    assert_eq!(stored.body["chosen"]["update"], json!([]), "{}", stored.body);
    assert_eq!(stored.body["quiet_hours"], json!({ "start": "22:00", "end": "07:00" }));
    // The page shows those boxes ticked, and only those.
    let page = s.http.get(format!("{}{path}", s.base)).send().await.unwrap().text().await.unwrap();
    let ticked: Vec<&str> = page
        .split("<input type=\"checkbox\" name=\"tick\" value=\"")
        .skip(1)
        .filter(|input| input.split_once('>').is_some_and(|(attributes, _)| attributes.ends_with(" checked")))
        .filter_map(|input| input.split_once('"').map(|(value, _)| value))
        .collect();
    assert_eq!(ticked, ["acknowledgement.email", "restored.email"], "{page}");

    // After the restoration, "still offline" opens the still-down case, once.
    let resolved = s
        .post(&format!("/v1/incidents/{id}/resolve"), Some(&s.operator), &json!({ "message": "Fixed." }))
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    s.tick().await;
    for _ in 0..2 {
        let pressed = client.post(&still).form(&[("form", form.as_str())]).send().await.unwrap();
        assert_eq!(pressed.status(), 303);
        assert!(pressed.headers()["location"].to_str().unwrap().ends_with("&done=case_opened"));
    }
    let filter = amends_store::CaseFilter { customer_id: Some("C2".into()), limit: 10, ..Default::default() };
    let cases = s.engine.store().cases(&filter).await.unwrap();
    assert_eq!(cases.len(), 1, "pressed twice, one case: {cases:?}");
    assert_eq!(
        cases[0].source_key.as_deref(),
        Some(format!("incident:{id}:C2").as_str()),
        "the still-down flow's key"
    );

    // A forged link and an expired one: a page in the reader's language naming nobody.
    let forged = url.replace("token=", "token=x");
    let refused = s.http.get(&forged).header("accept-language", "fr").send().await.unwrap();
    assert_eq!(refused.status(), 400);
    let text = refused.text().await.unwrap();
    assert!(text.contains("Ce lien ne fonctionne pas") && !text.contains("Bo Berg"), "{text}");
    s.clock.advance(amends_recovery::page::PAGE_LINK_LIFETIME);
    let expired = s.http.get(&url).send().await.unwrap();
    assert_eq!(expired.status(), 410);
    let text = expired.text().await.unwrap();
    assert!(text.contains("This link has expired") && !text.contains("Bo Berg"), "{text}");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_leaves_on_one_page_and_reads_the_final_bill_line_by_line() {
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let unknown = s.engine.page_link("NOPE").await.unwrap_err();
    assert_eq!(unknown.to_string(), "customer NOPE is not in the book");
    let link = s.engine.page_link("C2").await.unwrap();
    let query = link.split_once('?').unwrap().1.to_string();
    let page = s.http.get(format!("{}/my?{query}", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("href=\"/my/leave?{query}\"")), "the page links to leaving: {page}");

    let leave = format!("{}/my/leave?{query}", s.base);
    let html = s.http.get(&leave).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"es\">") && html.contains("Prefiero no decirlo"), "{html}");
    assert!(html.contains("Me mudo"), "the reasons in the customer's words: {html}");
    assert_eq!(html.matches("type=\"submit\"").count(), 1, "one button: {html}");
    let form = form_token(&html);

    let refused = s.http.post(&leave).form(&[("form", "0".repeat(32))]).send().await.unwrap();
    assert_eq!(refused.status(), 403, "a form from elsewhere cancels nothing");
    assert_eq!(s.engine.store().customer("C2").await.unwrap().unwrap().status.as_str(), "active");
    let left =
        s.http.post(&leave).form(&[("form", form.as_str()), ("reason", "moving")]).send().await.unwrap();
    assert_eq!(left.status(), 200);
    let confirmation = left.text().await.unwrap();
    assert!(confirmation.contains("Se ha dado de baja") && confirmation.contains("CXL-"), "{confirmation}");
    assert!(
        confirmation.contains("Su última factura") && confirmation.contains("<li>"),
        "line by line: {confirmation}"
    );
    assert_eq!(s.engine.store().customer("C2").await.unwrap().unwrap().status.as_str(), "cancelled");
    let cancellation = s.engine.store().cancellation_of("C2").await.unwrap().unwrap();
    assert_eq!((cancellation.reason.as_deref(), cancellation.channel.as_str()), (Some("moving"), "web"));

    let again = s.http.post(&leave).form(&[("form", form.as_str())]).send().await.unwrap();
    assert_eq!(again.status(), 422, "cancelled already: nothing twice");

    // Words typed with "rather not say" still chosen are the reason "other", not a refusal
    // that costs the customer two more clicks.
    let ana = s.engine.page_link("C1").await.unwrap();
    let ana_leave = format!("{}/my/leave?{}", s.base, ana.split_once('?').unwrap().1);
    let html = s.http.get(&ana_leave).send().await.unwrap().text().await.unwrap();
    let fields = [("form", form_token(&html)), ("reason", String::new()), ("reason_text", "Too slow".into())];
    let left = s.http.post(&ana_leave).form(&fields).send().await.unwrap();
    assert_eq!(left.status(), 200, "{}", left.text().await.unwrap());
    let ana_left = s.engine.store().cancellation_of("C1").await.unwrap().unwrap();
    assert_eq!(ana_left.reason.as_deref(), Some("other: Too slow"));

    // The two clicks (the link, the button) beside the provider's count for joining.
    assert_eq!(cancellation.clicks, Some(2));
    let metrics = s.get("/v1/metrics/recovery", Some(&s.read)).await.body;
    assert_eq!(metrics["leave_clicks_max"], 2);
    assert_eq!(
        (&metrics["join_clicks_max"], &metrics["leaving_as_easy_as_joining"]),
        (&json!(null), &json!(null))
    );
    let joining = json!({ "customer_id": "C3", "name": "Cy", "email": "cy@example.com", "locale": "en",
        "timezone": "UTC", "plan_id": "fast", "element_id": "hub1", "billing_day": 1, "channel": "web", "clicks": 4 });
    assert_eq!(s.post("/v1/customers", Some(&s.operator), &joining).await.status, 201);
    let metrics = s.get("/v1/metrics/recovery", Some(&s.read)).await.body;
    assert_eq!((&metrics["leave_clicks_max"], &metrics["join_clicks_max"]), (&json!(2), &json!(4)));
    assert_eq!(metrics["leaving_as_easy_as_joining"], true);
    s.stop().await.unwrap();
}

/// A policy that pays the prorated price of the outage only when asked.
const ON_REQUEST: &str = "id = \"on-request\"\nversion = 1\n\n[[rules]]\nid = \"prorated\"\nevent = \"outage\"\n\
                          automatic = false\npay = { basis = \"prorated\" }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_policy_pays_on_request_is_claimed_on_the_page_in_one_click_once() {
    let policy = amends_core::policy::Policy::from_toml("on-request.toml", ON_REQUEST).unwrap();
    let s = TestServer::start_with_policy(policy).await;
    let id = outage_told(&s).await;
    s.clock.advance(jiff::SignedDuration::from_hours(6));
    let resolved = s.post(&format!("/v1/incidents/{id}/resolve"), Some(&s.operator), &json!({})).await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    let report = s.tick().await;
    assert_eq!(report.credits.credits_written, 0, "nothing is paid unasked: {report:?}");
    assert_eq!(report.credits.on_request_offers, 2, "{report:?}");
    assert_eq!(s.tick().await.credits.on_request_offers, 0, "a re-run offers nothing twice");

    // Six hours of a $79.99 month of 30 days: $0.67, offered with its explanation.
    let path = page_path(&s, "C2").await;
    let query = path.split_once('?').unwrap().1.to_string();
    let html = s.http.get(format!("{}{path}", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Reclamar 0,67"), "the claim button with its amount: {html}");
    let offer = "C2/".to_string() + &id + "/on-request/1";
    let escaped = offer.replace('/', "&#x2f;");
    assert!(html.contains(&format!("name=\"offer\" value=\"{escaped}\"")), "{html}");
    assert!(html.contains("360 de los 43.200 minutos"), "why, in the customer's words: {html}");
    let form = form_token(&html);

    let client = support::no_redirects();
    let claim = format!("{}/my/claim?{query}", s.base);
    let stranger =
        client.post(&claim).form(&[("form", form.as_str()), ("offer", "C1/x/on-request/1")]).send();
    assert_eq!(stranger.await.unwrap().status(), 422, "only the customer's own offers");
    let forged = client.post(&claim).form(&[("form", "0".repeat(32).as_str()), ("offer", &offer)]).send();
    assert_eq!(forged.await.unwrap().status(), 403);
    for _ in 0..2 {
        let pressed =
            client.post(&claim).form(&[("form", form.as_str()), ("offer", &offer)]).send().await.unwrap();
        assert_eq!(pressed.status(), 303);
        assert!(pressed.headers()["location"].to_str().unwrap().ends_with("&done=claimed"));
    }
    let filter = amends_store::CreditFilter { customer_id: Some("C2".into()), ..Default::default() };
    let ledger = s.engine.store().credits(&filter).await.unwrap();
    assert_eq!(ledger.len(), 1, "pressed twice, claimed once: {ledger:?}");
    assert_eq!(ledger[0].key, format!("{offer}/claimed"), "its own key");
    assert_eq!((ledger[0].amount_minor, ledger[0].source_event.as_str()), (67, id.as_str()));
    assert!(
        ledger[0].explanation.contains("Claimed by the customer at 2026-11-23T18:00:00Z"),
        "{:?}",
        ledger[0]
    );
    let c1 = amends_store::CreditFilter { customer_id: Some("C1".into()), ..Default::default() };
    assert!(s.engine.store().credits(&c1).await.unwrap().is_empty(), "C1 did not ask");

    let after = s.http.get(format!("{}/my?{query}&done=claimed", s.base)).send().await.unwrap();
    let after = after.text().await.unwrap();
    assert!(after.contains("Reclamado: en su factura del"), "{after}");
    assert!(!after.contains("Reclamar 0,67"), "no button once claimed: {after}");
    assert!(
        after.contains("Sus créditos") && after.contains("<strong>0,67"),
        "the credit is listed: {after}"
    );
    s.stop().await.unwrap();
}

/// A German and a Portuguese customer read their page in their own language, as their
/// notices are written; `?lang=` chooses another, which the page's forms keep. A link that
/// does not work (the customer's page, a survey, an unsubscribe) is refused in the
/// reader's language, and a reader who lists English first reads English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn german_and_portuguese_customers_read_their_page_in_their_language_or_the_one_chosen() {
    const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C3,Dora Klein,dora@example.com,,de-DE,Europe/Berlin,fast,hub1,M3,1,2020-01-01T00:00:00Z,active
C4,Rui Sousa,rui@example.com,,pt-PT,Europe/Lisbon,fast,hub1,M4,1,2020-01-01T00:00:00Z,active
";
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut", "next_update_by": "2026-11-23T13:00:00Z",
        "message": "Crews are on site.",
        "translations": {
            "de": { "cause": "Glasfaserschaden", "message": "Das Team ist vor Ort." },
            "pt": { "cause": "Corte de fibra ótica", "message": "As equipas estão no local." },
        },
    });
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.tick().await;
    let get = |path: String, accept: &'static str| {
        let request = s.http.get(format!("{}{path}", s.base)).header("accept-language", accept);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    // The German customer's page is German, whatever the browser says.
    let path = page_path(&s, "C3").await;
    let query = path.split_once('?').unwrap().1.to_string();
    let (status, html) = get(path.clone(), "en-US,en").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<html lang=\"de\">") && html.contains("<h1>Ihr Dienst</h1>"), "{html}");
    assert!(html.contains("Guten Tag Dora Klein") && html.contains("Ist mein Dienst betroffen?"), "{html}");
    assert!(html.contains("Glasfaserschaden") && html.contains("Ich bin immer noch offline"), "{html}");
    assert!(html.contains("Eine Störung betrifft Sie") && html.contains("Unsere App"), "{html}");
    assert!(
        html.contains(&format!(
            "<a href=\"/my?{query}&amp;lang=pt\" lang=\"pt\" hreflang=\"pt\">Português</a>"
        )),
        "a link to the page in Portuguese, keeping the token: {html}"
    );
    assert!(html.contains(&format!("action=\"/my/still-offline?{query}\"")), "no language chosen: {html}");
    assert!(!html.contains("Is my service affected?"), "no English left: {html}");
    assert!(html.contains("Montag, 23. November"), "the times in German: {html}");

    // `?lang=pt`: the page in Portuguese, and its forms and links keep it.
    let (status, html) = get(format!("{path}&lang=pt"), "de-DE").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("segunda-feira, 23 de novembro") && !html.contains("Montag"),
        "the times in the language chosen too, in the customer's zone: {html}"
    );
    assert!(html.contains("<html lang=\"pt\">") && html.contains("<h1>O seu serviço</h1>"), "{html}");
    assert!(html.contains("O meu serviço está afetado?") && html.contains("Continuo sem serviço"), "{html}");
    assert!(html.contains(&format!("action=\"/my/still-offline?{query}&amp;lang=pt\"")), "{html}");
    assert!(html.contains(&format!("href=\"/my/leave?{query}&amp;lang=pt\"")), "{html}");
    let form = form_token(&html);
    let client = support::no_redirects();
    let still = format!("{}/my/still-offline?{query}&lang=pt", s.base);
    let pressed = client.post(&still).form(&[("form", form.as_str())]).send().await.unwrap();
    assert_eq!(pressed.status(), 303);
    let back = pressed.headers()["location"].to_str().unwrap().to_string();
    assert!(back.ends_with("&lang=pt&done=still_offline"), "{back}");
    let (_, after) = get(back, "de-DE").await;
    assert!(after.contains("Obrigado por nos avisar"), "{after}");
    let (_, leave) = get(format!("/my/leave?{query}&lang=pt"), "de-DE").await;
    assert!(leave.contains("<html lang=\"pt\">") && leave.contains("Cancelar o meu serviço"), "{leave}");
    let (_, leave) = get(format!("/my/leave?{query}"), "pt-PT").await;
    assert!(leave.contains("<html lang=\"de\">") && leave.contains("Meinen Vertrag kündigen"), "{leave}");

    // The Portuguese customer's own page is Portuguese.
    let (status, html) = get(page_path(&s, "C4").await, "en").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<html lang=\"pt\">") && html.contains("Olá, Rui Sousa"), "{html}");
    assert!(html.contains("Corte de fibra ótica"), "{html}");

    // Refused links name nobody and read as the reader asks: the first language of their
    // browser the pages are written in (English too), or `?lang=`.
    let forged = path.replace("token=", "token=x");
    let (status, text) = get(forged.clone(), "de-DE,de;q=0.9,en;q=0.5").await;
    assert_eq!(status, 400);
    assert!(text.contains("Dieser Link funktioniert nicht") && !text.contains("Dora"), "{text}");
    let (_, text) = get(forged.clone(), "en, de").await;
    assert!(text.contains("This link does not work"), "{text}");
    let (_, text) = get(format!("{forged}&lang=pt"), "de").await;
    assert!(text.contains("<html lang=\"pt\">") && text.contains("Este link não funciona"), "{text}");
    let (status, text) = get("/v1/surveys/answer?token=nonsense".into(), "de").await;
    assert_eq!(status, 400);
    assert!(text.contains("<html lang=\"de\">") && text.contains("Dieser Link funktioniert nicht"), "{text}");
    let unsubscribe = s
        .http
        .post(format!("{}/v1/unsubscribe?token=nonsense&lang=pt", s.base))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap();
    assert_eq!(unsubscribe.status(), 400);
    let text = unsubscribe.text().await.unwrap();
    assert!(text.contains("Este link não funciona"), "{text}");
    s.stop().await.unwrap();
}

/// An expired link asks for a fresh one: the page that says it expired names nobody and
/// has one button; the new link goes to the customer's own address, in their language,
/// and works; a second press within the hour sends nothing more; a forged link and one
/// expired more than a year ago get no button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_asks_for_a_fresh_one_sent_to_the_customer_once_an_hour() {
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let link = s.engine.page_link("C2").await.unwrap();
    let query = link.split_once('?').unwrap().1.to_string();
    s.clock.advance(amends_recovery::page::PAGE_LINK_LIFETIME + jiff::SignedDuration::from_hours(1));

    let expired = s.http.get(format!("{}/my?{query}", s.base)).send().await.unwrap();
    assert_eq!(expired.status(), 410);
    let html = expired.text().await.unwrap();
    assert!(html.contains("Send me a new link") && !html.contains("Bo Berg"), "{html}");
    let form = form_token(&html);
    let client = support::no_redirects();
    let fresh = format!("{}/my/fresh-link?{query}", s.base);
    let page_links = async || {
        let notices = s.engine.store().notices_for_customer("C2").await.unwrap();
        notices.into_iter().filter(|n| n.kind == "page_link").collect::<Vec<_>>()
    };
    let forged = client.post(&fresh).form(&[("form", "0".repeat(32))]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert!(page_links().await.is_empty(), "a form from elsewhere sends nothing");

    let sent = client.post(&fresh).form(&[("form", form.as_str())]).send().await.unwrap();
    assert_eq!(sent.status(), 200);
    let text = sent.text().await.unwrap();
    assert!(text.contains("A new link is on its way") && !text.contains("bo@example.com"), "{text}");
    let notices = page_links().await;
    assert_eq!(notices.len(), 1, "C2 is reached by email only: {notices:?}");
    assert_eq!(notices[0].subject, "Su nuevo enlace a su página", "in the customer's language");
    let at = notices[0].body.find("/my?token=").expect("the fresh link");
    let new_path = notices[0].body[at..].split_whitespace().next().unwrap().to_string();
    let page = s.http.get(format!("{}{new_path}", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Hola, Bo Berg"));

    let again = client.post(&fresh).form(&[("form", form.as_str())]).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(page_links().await.len(), 1, "at most one fresh link an hour");
    s.clock.advance(jiff::SignedDuration::from_hours(1));
    client.post(&fresh).form(&[("form", form.as_str())]).send().await.unwrap();
    assert_eq!(page_links().await.len(), 2, "an hour later, another");

    let forged_link = s.http.get(format!("{}/my?{}", s.base, query.replace("token=", "token=x"))).send();
    let forged_link = forged_link.await.unwrap();
    assert_eq!(forged_link.status(), 400);
    assert!(!forged_link.text().await.unwrap().contains("Send me a new link"));
    s.clock.advance(amends_recovery::page::FRESH_LINK_GRACE);
    let too_old = s.http.get(format!("{}/my?{query}", s.base)).send().await.unwrap();
    assert_eq!(too_old.status(), 410);
    assert!(
        !too_old.text().await.unwrap().contains("Send me a new link"),
        "a year past its expiry: no button"
    );
    let refused = client.post(&fresh).form(&[("form", form.as_str())]).send().await.unwrap();
    assert_eq!(refused.status(), 410);
    assert_eq!(page_links().await.len(), 2);
    s.stop().await.unwrap();
}

/// A Spanish customer chooses German on their page: the page reads in German from then on,
/// the API shows the choice, and the next notice they get is written in German; choosing
/// "as on record" brings Spanish back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_chosen_on_the_page_writes_the_next_notice_and_the_page() {
    let s = TestServer::start().await;
    let id = outage_told(&s).await;
    let path = page_path(&s, "C2").await;
    let html = s.http.get(format!("{}{path}", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("<html lang=\"es\">") && html.contains("El que tenemos registrado (Español)"),
        "{html}"
    );
    let form = form_token(&html);

    let prefs = format!("{}/my/preferences?{}", s.base, path.split_once('?').unwrap().1);
    let client = support::no_redirects();
    let ticks = [("tick", "acknowledgement.email"), ("tick", "update.email"), ("tick", "restored.email")];
    let choose = |language: &'static str| {
        let mut fields = vec![("form", form.clone()), ("language", language.to_string())];
        fields.extend(ticks.iter().map(|(k, v)| (*k, v.to_string())));
        client.post(&prefs).form(&fields).send()
    };
    assert_eq!(choose("Klingon").await.unwrap().status(), 422, "not a language tag");
    assert_eq!(choose("de").await.unwrap().status(), 303);
    let stored = s.get("/v1/customers/C2/preferences", Some(&s.read)).await;
    assert_eq!(stored.body["language"], "de", "{}", stored.body);
    let html = s.http.get(format!("{}{path}", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"de\">") && html.contains("Ihre Gutschriften"), "{html}");
    let leave = format!("{}/my/leave?{}", s.base, path.split_once('?').unwrap().1);
    let html = s.http.get(&leave).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"de\">"), "the leaving page too: {html}");
    // An agent taking their call reads them the estimate in German too.
    let agent = amends_core::case::Actor::new("ann", amends_core::case::Role::Agent);
    let answer = s.engine.take_contact(&agent, "C2", "phone", "Calls about the outage").await.unwrap();
    let next = answer.incident.expect("the outage").next_update_by_local.expect("a next update");
    assert!(next.contains("November") && !next.contains("noviembre"), "{next}");

    let update = json!({ "message": "Splicing.", "next_update_by": "2026-11-23T14:00:00Z" });
    let r = s.post(&format!("/v1/incidents/{id}/updates"), Some(&s.operator), &update).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.tick().await;
    let notices = s.engine.store().notices_for_customer("C2").await.unwrap();
    let update = notices.iter().find(|n| n.kind == "update").expect("the update notice");
    assert_eq!(
        (update.subject.as_str(), update.locale.as_str()),
        ("Neues zur Störung in Ihrer Region", "de")
    );

    assert_eq!(choose("").await.unwrap().status(), 303);
    let stored = s.get("/v1/customers/C2/preferences", Some(&s.read)).await;
    assert_eq!(stored.body["language"], serde_json::Value::Null);
    let html = s.http.get(format!("{}{path}", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"es\">"), "back to the language on record: {html}");
    // A language set through the API that the page is not written in stays selected, so
    // that saving the page's form keeps it.
    let patch = s.request(Method::PATCH, "/v1/customers/C2/preferences", Some(&s.operator));
    let patched = s.send(patch.json(&json!({ "language": "pt-BR" }))).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let html = s.http.get(format!("{}{path}", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<option value=\"pt-BR\" selected>"), "{html}");
    s.stop().await.unwrap();
}
