//! A real SMTP server on 127.0.0.1 for the tests.
//!
//! The protocol (greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT)
//! is the `mailin` crate's session state machine, the engine of mailin-embedded; this module
//! adds only the socket loop, which mailin-embedded would supply but cannot here (it does not
//! build without rustls on aws-lc-rs, a second crypto stack). One thread per connection,
//! because mailin's handler is synchronous and the gate below blocks.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mailin::{Action, Handler, Response, SessionBuilder, response};
use tokio::sync::mpsc;

/// One message as the server received it: the envelope and the raw DATA, dot-unstuffed.
#[derive(Debug, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

/// How the server answers.
#[derive(Debug, Default, Clone)]
pub struct Behaviour {
    /// Recipients answered `550` at RCPT.
    pub reject_permanently: Vec<String>,
    /// Recipients answered `451` at RCPT.
    pub reject_transiently: Vec<String>,
    /// When set, a transaction waits at the end of DATA until this many transactions have
    /// been open at once (or 10 s pass), so a test can see how many the client overlaps.
    pub hold_until_concurrent: Option<usize>,
    /// While set, a new transaction waits at MAIL FROM, before any of its message has
    /// arrived: a client killed meanwhile leaves nothing behind.
    pub paused: Arc<AtomicBool>,
}

/// Counters shared by every connection.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicUsize,
    open: Mutex<Open>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Open {
    now: usize,
    most: usize,
}

impl Stats {
    /// The most transactions (DATA .. end of DATA) that were ever open at once.
    pub fn most_concurrent(&self) -> usize {
        self.open.lock().map(|open| open.most).unwrap_or(0)
    }

    fn begin(&self) {
        if let Ok(mut open) = self.open.lock() {
            open.now += 1;
            open.most = open.most.max(open.now);
            self.changed.notify_all();
        }
    }

    fn end(&self, hold_until: Option<usize>) {
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        if let Some(wanted) = hold_until {
            let limit = Duration::from_secs(10);
            if let Ok((reopened, _)) = self.changed.wait_timeout_while(open, limit, |o| o.most < wanted) {
                open = reopened;
            } else {
                return;
            }
        }
        open.now = open.now.saturating_sub(1);
    }
}

pub struct SmtpServer {
    pub port: u16,
    pub stats: Arc<Stats>,
    pub received: mpsc::UnboundedReceiver<Received>,
}

impl SmtpServer {
    /// Starts listening on an ephemeral port of 127.0.0.1. The server lives until the test
    /// process exits.
    pub fn start(behaviour: Behaviour) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let stats = Arc::new(Stats::default());
        let (sender, received) = mpsc::unbounded_channel();
        let shared = Arc::clone(&stats);
        std::thread::spawn(move || accept_loop(listener, behaviour, shared, sender));
        SmtpServer { port, stats, received }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Everything received so far. A send that returned Ok has been fully received: the
    /// server records the message before it answers 250 to the end of DATA.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        while let Ok(message) = self.received.try_recv() {
            all.push(message);
        }
        all
    }
}

/// A port on 127.0.0.1 where nothing listens: bound, then released.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn accept_loop(
    listener: TcpListener,
    behaviour: Behaviour,
    stats: Arc<Stats>,
    sender: mpsc::UnboundedSender<Received>,
) {
    let session = SessionBuilder::new("amends-test-smtp");
    for stream in listener.incoming().flatten() {
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let recorder = Recorder {
            behaviour: behaviour.clone(),
            stats: Arc::clone(&stats),
            sender: sender.clone(),
            current: Received::default(),
        };
        let session = session.clone();
        std::thread::spawn(move || serve(stream, &session, recorder));
    }
}

/// The socket loop of mailin-embedded's `running.rs`, without TLS.
fn serve(stream: TcpStream, builder: &SessionBuilder, recorder: Recorder) -> Option<()> {
    let remote = stream.peer_addr().ok()?.ip();
    // Buffered so each reply leaves in one segment (no Nagle / delayed-ACK stalls).
    let mut writer = BufWriter::new(stream.try_clone().ok()?);
    let mut reader = BufReader::new(stream);
    let mut session = builder.build(remote, recorder);
    session.greeting().write_to(&mut writer).ok()?;
    writer.flush().ok()?;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let reply = session.process(&line);
        match reply.action {
            Action::Reply => reply.write_to(&mut writer).ok()?,
            Action::Close => {
                reply.write_to(&mut writer).ok()?;
                return writer.flush().ok();
            }
            Action::NoReply => {}
            Action::UpgradeTls => return None,
        }
        writer.flush().ok()?;
    }
}

struct Recorder {
    behaviour: Behaviour,
    stats: Arc<Stats>,
    sender: mpsc::UnboundedSender<Received>,
    current: Received,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        while self.behaviour.paused.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.current = Received { mail_from: from.to_owned(), ..Received::default() };
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if self.behaviour.reject_permanently.iter().any(|r| r == to) {
            return response::NO_MAILBOX;
        }
        if self.behaviour.reject_transiently.iter().any(|r| r == to) {
            return Response::custom(451, "Try again later".to_owned());
        }
        self.current.rcpt_to.push(to.to_owned());
        response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, _to: &[String]) -> Response {
        self.stats.begin();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.stats.end(self.behaviour.hold_until_concurrent);
        let message = std::mem::take(&mut self.current);
        match self.sender.send(message) {
            Ok(()) => response::OK,
            Err(_) => response::INTERNAL_ERROR,
        }
    }
}
