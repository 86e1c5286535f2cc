//! A client that sends its request slowly, or holds connections open without a word, does
//! not hold the server (issue 18, item 8): the headers must arrive within the header-read
//! timeout, and at most `connections_max` connections are served at once, the next being
//! served as soon as one closes. A real server on 127.0.0.1, over raw TCP.

use amends_server::{ConnectionLimits, serve_router};
use axum::Router;
use axum::routing::get;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(limits: ConnectionLimits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Router::new().route("/", get(|| async { "hello" }));
    tokio::spawn(serve_router(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// What the server sends on `stream` before closing it, waiting at most `wait`.
async fn answer(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0; 4096];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(_)) => Some(String::new()),
        Err(_) => None,
    }
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn a_request_sent_slowly_is_cut_off_at_the_header_read_timeout() {
    let limits = ConnectionLimits { header_read_timeout: Duration::from_millis(500), connections_max: 8 };
    let (addr, _stop) = start(limits).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: te").await.unwrap();
    // Still sending a byte now and then, never finishing the headers.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = slow.write_all(b"s").await;
    }
    let said = answer(&mut slow, Duration::from_secs(5)).await.expect("the server closes it");
    assert!(!said.contains("hello"), "{said}");
    // A prompt client is served as ever.
    let mut prompt = TcpStream::connect(addr).await.unwrap();
    prompt.write_all(REQUEST).await.unwrap();
    let said = answer(&mut prompt, Duration::from_secs(5)).await.unwrap();
    assert!(said.starts_with("HTTP/1.1 200") && said.contains("hello"), "{said}");
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_for_one_to_close() {
    let limits = ConnectionLimits { header_read_timeout: Duration::from_secs(30), connections_max: 2 };
    let (addr, _stop) = start(limits).await;
    let idle_a = TcpStream::connect(addr).await.unwrap();
    let _idle_b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(REQUEST).await.unwrap();
    assert_eq!(
        answer(&mut third, Duration::from_millis(700)).await,
        None,
        "two connections are served at most"
    );
    drop(idle_a);
    let said = answer(&mut third, Duration::from_secs(5)).await.expect("served once one closed");
    assert!(said.contains("hello"), "{said}");
}
