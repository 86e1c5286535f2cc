//! Issue 18, item 9: the routes a stranger reaches without a token are limited per client
//! (429 with Retry-After past the burst, the next request a second later), and checking a
//! link they bring writes nothing: before, every request stored a signing key
//! (`secret_or_insert`) before looking at the link. A real server over HTTP; the limiter's
//! clock is a fake one the test moves.

use crate::support;

use amends_server::rate::{ClientAddress, ClientRateLimit, HttpSettings};
use governor::clock::FakeRelativeClock;
use std::num::NonZeroU32;
use std::time::Duration;
use support::{TestServer, Worker};

#[tokio::test]
async fn a_client_past_its_burst_is_told_to_wait_and_a_forged_link_writes_nothing() {
    let clock = FakeRelativeClock::default();
    let settings = HttpSettings {
        public_requests_per_minute: NonZeroU32::new(60).unwrap(),
        public_burst: NonZeroU32::new(5).unwrap(),
        client_address: ClientAddress::Peer,
    };
    let limit = ClientRateLimit::with_clock(settings, clock.clone());
    let server = TestServer::start_limited(Worker::DrivenByTest, Some(limit)).await;
    // The link pages answer HTML: status and headers only.
    let get = |path: &str| {
        let request = server.http.get(format!("{}{path}", server.base));
        async move { request.send().await.unwrap() }
    };
    let forged = "/v1/unsubscribe?token=AAAA.BBBB";
    for _ in 0..5 {
        assert_eq!(get(forged).await.status(), 400);
    }
    let refused = get(forged).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let survey = get("/v1/surveys/answer?token=AAAA.BBBB").await;
    assert_eq!(survey.status(), 429, "one limit for the client across the link routes");
    // The health check and the API description are not limited.
    assert_eq!(server.get("/health", None).await.status, 200);
    assert_eq!(server.get("/openapi.json", None).await.status, 200);

    clock.advance(Duration::from_secs(1));
    assert_eq!(get(forged).await.status(), 400, "a second later, one more");
    assert_eq!(get(forged).await.status(), 429);

    // The API description says so.
    let doc = server.get("/openapi.json", None).await.body;
    for (path, method) in
        [("/v1/unsubscribe", "get"), ("/v1/unsubscribe", "post"), ("/v1/surveys/answer", "post")]
    {
        let answers = &doc["paths"][path][method]["responses"];
        assert!(answers["429"].is_object(), "{path} {method}: {answers}");
    }

    // Checking the links stored no key: nothing was ever signed, so nothing is stored.
    for name in ["opt_out_key", "survey_link_key"] {
        assert_eq!(server.engine.store().secret(name).await.unwrap(), None, "{name}");
    }
    server.stop().await.unwrap();
}
