//! Issue 20: the status page every notice links to. A real server over HTTP: an incident
//! declared with a Spanish translation reads in Spanish and in Madrid's time for a Spanish
//! reader, names an area and never a customer, answers 304 to a reload that finds nothing
//! new, and an unknown incident gets a page saying so.

use crate::support;

use serde_json::json;
use support::TestServer;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,North\nhub1,root,hub,Hub One\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana Lima,ana@example.com,,en-US,UTC,fast,hub1,M1,1,2020-01-01T00:00:00Z,active
C2,Bo Berg,bo@example.com,,es-ES,Europe/Madrid,fast,hub1,M2,1,2020-01-01T00:00:00Z,active
";

/// The next server-sent event's `(event, data)` from `response`, reading as it arrives.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String) -> (String, String) {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            if block.starts_with(':') {
                continue; // a keep-alive comment
            }
            return (field("event:"), field("data:"));
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream goes on");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_pages_hear_of_an_update_live_and_load_one_script_of_their_own() {
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let page = s.http.get(format!("{}/status", s.base)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self';") && csp.contains("connect-src 'self';"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/static/live.js\" defer></script>"), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    let script = s.http.get(format!("{}/static/live.js", s.base)).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("new EventSource('/status/events')"));
    // The one stylesheet, of this origin too: the policy allows no inline style.
    assert!(csp.contains("style-src 'self';") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(html.contains("<link rel=\"stylesheet\" href=\"/static/page.css\">"), "{html}");
    assert!(!html.contains("<style") && !html.contains("style="), "no inline style: {html}");
    let style = s.http.get(format!("{}/static/page.css", s.base)).send().await.unwrap();
    assert_eq!(style.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(style.headers()["cache-control"], "public, max-age=300");
    assert!(style.text().await.unwrap().contains(":focus-visible{outline:3px solid #0b57d0"));

    // Without asking for a stream: the one event, and the end (a crawler is not held).
    let once = s.http.get(format!("{}/status/events", s.base)).send().await.unwrap();
    assert_eq!(once.text().await.unwrap().matches("event: status").count(), 1);
    let mut events = s
        .http
        .get(format!("{}/status/events", s.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    let (kind, first) = next_event(&mut events, &mut buffer).await;
    assert_eq!(kind, "status");
    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut", "message": "Crews are on site.",
        "next_update_by": "2026-11-23T13:00:00Z",
    });
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.clock.advance(jiff::SignedDuration::from_secs(1));
    let (kind, second) = next_event(&mut events, &mut buffer).await;
    assert_eq!(kind, "status");
    assert_ne!(first, second, "the declaration changed what the page shows");
    drop(events);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_reads_in_the_reader_s_language_and_zone_and_names_no_customer() {
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let empty = s.http.get(format!("{}/status", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(empty.contains("All services are running normally."), "{empty}");

    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut", "message": "Crews are on site.",
        "etr": "2026-11-23T16:00:00Z", "next_update_by": "2026-11-23T13:00:00Z",
        "translations": { "es": { "cause": "Corte de fibra", "message": "Los equipos están en el lugar." } },
    });
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["incident_id"].as_str().unwrap_or_else(|| panic!("{}", r.body)).to_string();
    // The snapshot is rebuilt at most once a second of the engine's clock: a second
    // later, a read sees the new incident.
    s.clock.advance(jiff::SignedDuration::from_secs(1));

    let page = s
        .http
        .get(format!("{}/status/{id}?tz=Europe/Madrid", s.base))
        .header("accept-language", "es-ES,es;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let etag = page.headers()["etag"].to_str().unwrap().to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"es\">"), "{html}");
    assert!(html.contains("Corte de fibra") && html.contains("Los equipos están en el lugar."), "{html}");
    assert!(html.contains("Hub One (hub)"), "an area by name and kind: {html}");
    assert!(html.contains("lunes, 23 de noviembre a las 17:00 CET"), "the estimate in Madrid's time: {html}");
    assert!(html.contains("menos de 10"), "{html}");
    for private in ["Ana", "Bo Berg", "C1", "C2", "@example.com"] {
        assert!(!html.contains(private), "{private} on the public page: {html}");
    }
    let again = s
        .http
        .get(format!("{}/status/{id}?tz=Europe/Madrid", s.base))
        .header("accept-language", "es-ES,es;q=0.9,en;q=0.5")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "nothing new: no body");

    let json: serde_json::Value =
        s.http.get(format!("{}/status.json", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["open"][0]["id"], id.as_str());
    assert_eq!(json["open"][0]["areas"], json!([{ "name": "Hub One", "kind": "hub" }]));
    assert_eq!(json["customers_affected"], json!({ "fewer_than_ten": true, "about": null }));

    // The Atom twin: the declaration as an entry, in the reader's language, linking to the
    // incident's page; a poll with its ETag costs a 304.
    let feed = s.http.get(format!("{}/status.atom?lang=es", s.base)).send().await.unwrap();
    assert_eq!(feed.status(), 200);
    assert_eq!(feed.headers()["content-type"], "application/atom+xml; charset=utf-8");
    let feed_etag = feed.headers()["etag"].to_str().unwrap().to_string();
    let xml = feed.text().await.unwrap();
    assert!(
        xml.starts_with("<?xml")
            && xml.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"es\">"),
        "{xml}"
    );
    assert!(xml.contains("<title>Hub One: Confirmada</title>"), "{xml}");
    assert!(xml.contains("Corte de fibra. Los equipos están en el lugar."), "{xml}");
    assert!(xml.contains(&format!("/status/{id}?lang=es\"/>")), "{xml}");
    assert_eq!(xml.matches("<entry>").count(), 1, "{xml}");
    for private in ["Ana", "Bo Berg", "C1", "C2", "@example.com"] {
        assert!(!xml.contains(private), "{private} in the public feed: {xml}");
    }
    let polled = s
        .http
        .get(format!("{}/status.atom?lang=es", s.base))
        .header("if-none-match", &feed_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), 304);

    let unknown = s.http.get(format!("{}/status/INC-999999", s.base)).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("We know of no such incident"));
    s.stop().await.unwrap();
}

/// The status page is written in every language notices are: a German reader reads it in
/// German, `?lang=pt` in Portuguese, and a reader who lists English first reads English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_reads_in_german_and_portuguese_and_english_when_listed_first() {
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut", "message": "Crews are on site.",
        "etr": "2026-11-23T16:00:00Z", "next_update_by": "2026-11-23T13:00:00Z",
        "translations": {
            "de": { "cause": "Glasfaserschaden", "message": "Das Team ist vor Ort." },
            "pt": { "cause": "Corte de fibra ótica", "message": "As equipas estão no local." },
        },
    });
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["incident_id"].as_str().unwrap().to_string();
    s.clock.advance(jiff::SignedDuration::from_secs(1));
    let read = |path: String, accept: &'static str| {
        let request = s.http.get(format!("{}{path}", s.base)).header("accept-language", accept);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };

    let html = read("/status?tz=Europe/Berlin".into(), "de-DE,de;q=0.9,en;q=0.5").await;
    assert!(html.contains("<html lang=\"de\">") && html.contains("<h1>Dienststatus</h1>"), "{html}");
    assert!(html.contains("Aktuelle Störungen") && html.contains("Glasfaserschaden"), "{html}");
    assert!(html.contains("1 aktuelle Störung; betroffene Kunden: weniger als 10."), "{html}");
    assert!(html.contains("Voraussichtlich wieder verfügbar bis"), "{html}");
    assert!(
        html.contains("<a href=\"?lang=pt&amp;tz=Europe")
            && html.contains("lang=\"pt\" hreflang=\"pt\">Português</a>")
            && html.contains("hreflang=\"de\" aria-current=\"true\">Deutsch</a>"),
        "the language links: {html}"
    );
    assert!(!html.contains("Open incidents"), "no English left: {html}");

    let html = read(format!("/status/{id}?lang=pt"), "de-DE").await;
    assert!(html.contains("<html lang=\"pt\">") && html.contains("Estado do serviço"), "{html}");
    assert!(html.contains("Corte de fibra ótica") && html.contains("As equipas estão no local."), "{html}");
    assert!(html.contains("Falhas em curso") && html.contains("Confirmada"), "{html}");

    let html = read("/status".into(), "en, de").await;
    assert!(html.contains("<html lang=\"en\">") && html.contains("Open incidents"), "{html}");

    let xml = read("/status.atom?lang=de".into(), "").await;
    assert!(xml.contains("xml:lang=\"de\"") && xml.contains("<title>Hub One: Bestätigt</title>"), "{xml}");
    assert!(xml.contains("<title>Dienststatus</title>"), "{xml}");
    s.stop().await.unwrap();
}
