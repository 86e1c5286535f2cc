//! The web bench's load generator: keep-alive HTTP/1.1 connections on 127.0.0.1, each
//! sending its next GET as soon as the last answer has been read whole.
//!
//! It is as lean as `wrk`: a request is one write of a few bytes, an answer is read into
//! one buffer, its head parsed by `httparse` (hyper's own parser) and its body skipped by
//! `Content-Length`. A general client (reqwest) spends more on each request than the
//! server's `/health` does, and on 2 shared cores every cycle it spends is one the server
//! under test does not get.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest answer head read: more is an error, not a longer wait.
const HEAD_BYTES_MAX: usize = 16 * 1024;
/// The longest answer body read.
const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Headers an answer may carry.
const HEADERS_MAX: usize = 32;

/// One keep-alive connection to the server under test.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed (a whole answer is consumed at once).
    buffer: Vec<u8>,
    request: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: std::net::SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream, buffer: Vec::with_capacity(64 * 1024), request: Vec::with_capacity(512) })
    }

    /// Sends `GET path` (with `If-None-Match: etag` when given) and reads the whole answer;
    /// its status code.
    pub async fn get(&mut self, path: &str, etag: Option<&str>) -> io::Result<u16> {
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(etag) = etag {
            self.request.extend_from_slice(b"If-None-Match: ");
            self.request.extend_from_slice(etag.as_bytes());
            self.request.extend_from_slice(b"\r\n");
        }
        self.request.extend_from_slice(b"\r\n");
        self.stream.write_all(&self.request).await?;
        let (status, head, body) = loop {
            if let Some(answer) = parse_head(&self.buffer)? {
                break answer;
            }
            if self.buffer.len() > HEAD_BYTES_MAX {
                return Err(invalid(format!("an answer head over {HEAD_BYTES_MAX} bytes")));
            }
            self.fill().await?;
        };
        while self.buffer.len() < head + body {
            self.fill().await?;
        }
        self.buffer.drain(..head + body);
        Ok(status)
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// The status, head length and body length of the answer at the start of `bytes`, once its
/// head is whole. An answer must say its length (every amends answer does), except those
/// that have no body.
fn parse_head(bytes: &[u8]) -> io::Result<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut answer = httparse::Response::new(&mut headers);
    let head = match answer.parse(bytes).map_err(|e| invalid(format!("an answer head: {e}")))? {
        httparse::Status::Complete(head) => head,
        httparse::Status::Partial => return Ok(None),
    };
    let status = answer.code.unwrap_or(0);
    let length = answer.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"));
    let body = match length {
        Some(h) => std::str::from_utf8(h.value)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| invalid("a Content-Length that is not a number".into()))?,
        None if status == 304 || status == 204 || (100..200).contains(&status) => 0,
        None => return Err(invalid(format!("a {status} answer without Content-Length"))),
    };
    if body > BODY_BYTES_MAX {
        return Err(invalid(format!("an answer body of {body} bytes, over {BODY_BYTES_MAX}")));
    }
    Ok(Some((status, head, body)))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_whole_only_with_its_head_and_says_its_length() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_head(answer).unwrap(), Some((200, answer.len() - 5, 5)));
        assert_eq!(parse_head(&answer[..20]).unwrap(), None, "half a head");
        let not_modified = b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n";
        assert_eq!(parse_head(not_modified).unwrap(), Some((304, not_modified.len(), 0)));
        let unsaid = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(unsaid).unwrap_err().to_string().contains("without Content-Length"));
        let huge = b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n";
        assert!(parse_head(huge).is_err(), "a body over the bound");
    }

    #[tokio::test]
    async fn it_reads_answers_one_after_another_on_one_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/a", axum::routing::get(|| async { "first answer" }))
            .route("/b", axum::routing::get(|| async { axum::http::StatusCode::NOT_MODIFIED }));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut connection = Connection::open(addr).await.unwrap();
        assert_eq!(connection.get("/a", None).await.unwrap(), 200);
        assert_eq!(connection.get("/b", Some("\"x\"")).await.unwrap(), 304);
        assert_eq!(connection.get("/nowhere", None).await.unwrap(), 404);
        assert_eq!(connection.get("/a", None).await.unwrap(), 200, "and the connection still serves");
        assert!(connection.buffer.is_empty(), "every answer read whole");
        server.abort();
    }
}
