//! A scripted HTTP server on 127.0.0.1 standing in for webhook receivers and SMS gateways.
//!
//! It records every request whole (method, path, headers, body) and answers from a script:
//! the scripted replies in order, then the fallback for every later request. A `Hang` reply
//! never answers, so the client's timeout is what ends the exchange; the handler is dropped
//! when the client closes the connection.

use std::collections::VecDeque;
use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

/// One request as the server received it.
#[derive(Debug)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body as form fields, decoded by `form_urlencoded` (not reqwest's encoder).
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, with this body as `application/json` (whether it is JSON or not).
    Answer(u16, String),
    /// A redirect to `location`.
    Redirect(u16, String),
    /// This status, then a body that never ends (chunks of `x` for as long as the client
    /// reads), to check that clients stop reading.
    Endless(u16),
    /// Never answers.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::Answer(status, body.to_string())
    }
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    fallback: Reply,
    captured: mpsc::UnboundedSender<Captured>,
}

pub struct Gateway {
    pub base_url: String,
    captured: mpsc::UnboundedReceiver<Captured>,
}

impl Gateway {
    /// Starts listening on an ephemeral port; the server lives as long as the test runtime.
    pub async fn start(script: Vec<Reply>, fallback: Reply) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let (sender, captured) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { script: Mutex::new(script.into()), fallback, captured: sender });
        let app = Router::new().fallback(handle).with_state(shared);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Gateway { base_url: format!("http://127.0.0.1:{port}"), captured }
    }

    /// `base_url` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Waits for the next request (recorded before it is answered, so this returns even
    /// while the reply hangs).
    pub async fn next_request(&mut self) -> Captured {
        self.captured.recv().await.expect("the server outlives the test")
    }

    /// Every request received so far. A request is recorded before it is answered, so after
    /// a send returned (or timed out) its request is here.
    pub fn drain(&mut self) -> Vec<Captured> {
        let mut all = Vec::new();
        while let Ok(request) = self.captured.try_recv() {
            all.push(request);
        }
        all
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let captured = Captured { method, path: uri.path().to_owned(), headers, body: body.to_vec() };
    let _ = shared.captured.send(captured);
    let reply =
        shared.script.lock().expect("script lock").pop_front().unwrap_or_else(|| shared.fallback.clone());
    match reply {
        Reply::Answer(status, body) => {
            let status = StatusCode::from_u16(status).expect("a valid status");
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Reply::Redirect(status, location) => {
            let status = StatusCode::from_u16(status).expect("a valid status");
            (status, [(header::LOCATION, location)]).into_response()
        }
        Reply::Endless(status) => {
            let status = StatusCode::from_u16(status).expect("a valid status");
            let chunks =
                futures_util::stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 8192])));
            (status, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(chunks)).into_response()
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// A port on 127.0.0.1 where nothing listens: bound, then released.
pub fn closed_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}
