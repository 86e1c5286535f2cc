//! SmtpTransport against a real SMTP conversation on 127.0.0.1.

use amends_testkit::smtp as support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use amends_channels::{
    ATTACHMENT_BYTES_MAX, ATTACHMENTS_MAX, Attachment, OutgoingMessage, SendError, SmtpConfig, SmtpTransport,
    Transport, html_from_text,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};
use support::{Behaviour, Received, SmtpServer, closed_port};

const FROM: &str = "Amends Status <status@amends.example>";

fn config(url: String, pool_max: u32) -> SmtpConfig {
    SmtpConfig { url, from: FROM.to_owned(), timeout_ms: 5_000, pool_max, username: None, password: None }
}

fn email(key: &str, recipient: &str, subject: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage {
        key: key.to_owned(),
        channel: "email".to_owned(),
        recipient: recipient.to_owned(),
        subject: subject.to_owned(),
        body: body.to_owned(),
        customer_id: "c-1".to_owned(),
        incident_id: "i-1".to_owned(),
        kind: "restored".to_owned(),
        locale: "fr".to_owned(),
        unsubscribe_url: None,
        attachments: Vec::new(),
    }
}

/// What a mail reader would show, parsed by an independent implementation.
#[derive(Debug, PartialEq)]
struct Seen {
    mail_from: String,
    rcpt_to: Vec<String>,
    from_name: String,
    from_address: String,
    to_address: String,
    subject: String,
    message_id: String,
    notice_key: String,
    has_date: bool,
    content_language: Option<String>,
    /// Every MIME part's content type, root first.
    structure: Vec<String>,
    body: String,
    html: String,
}

fn seen(received: &Received) -> Seen {
    let parsed = MessageParser::default().parse(&received.data).expect("a parseable message");
    let from = parsed.from().and_then(|a| a.first()).expect("a From header");
    Seen {
        mail_from: received.mail_from.clone(),
        rcpt_to: received.rcpt_to.clone(),
        from_name: from.name().unwrap_or_default().to_owned(),
        from_address: from.address().unwrap_or_default().to_owned(),
        to_address: parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned(),
        subject: parsed.subject().unwrap_or_default().to_owned(),
        message_id: parsed.message_id().unwrap_or_default().to_owned(),
        notice_key: parsed
            .header("X-Amends-Notice-Key")
            .and_then(|h| h.as_text())
            .unwrap_or_default()
            .to_owned(),
        has_date: parsed.date().is_some(),
        content_language: raw_header(&parsed, "Content-Language"),
        structure: parsed.parts.iter().map(content_type).collect(),
        body: parsed.body_text(0).unwrap_or_default().replace("\r\n", "\n"),
        html: parsed.body_html(0).unwrap_or_default().replace("\r\n", "\n"),
    }
}

fn raw_header(parsed: &Message<'_>, name: &str) -> Option<String> {
    parsed.header_raw(name).map(|value| value.trim().to_owned())
}

/// `type/subtype`, with `; charset=...` when the part declares one.
fn content_type(part: &MessagePart<'_>) -> String {
    let Some(content_type) = part.content_type() else {
        return "(none)".to_owned();
    };
    let mut shown = format!("{}/{}", content_type.ctype(), content_type.subtype().unwrap_or_default());
    if let Some(charset) = content_type.attribute("charset") {
        shown.push_str(&format!("; charset={charset}"));
    }
    shown
}

const ALTERNATIVE: [&str; 3] =
    ["multipart/alternative", "text/plain; charset=utf-8", "text/html; charset=utf-8"];

fn expected(key_hash: &str, key: &str, to: &str, subject: &str, body: &str) -> Seen {
    Seen {
        mail_from: "status@amends.example".to_owned(),
        rcpt_to: vec![to.to_owned()],
        from_name: "Amends Status".to_owned(),
        from_address: "status@amends.example".to_owned(),
        to_address: to.to_owned(),
        subject: subject.to_owned(),
        message_id: format!("{key_hash}@amends.example"),
        notice_key: key.to_owned(),
        has_date: true,
        content_language: Some("fr".to_owned()),
        structure: ALTERNATIVE.map(str::to_owned).to_vec(),
        body: body.to_owned(),
        html: html_from_text(body, "fr"),
    }
}

#[tokio::test]
async fn three_messages_through_one_pooled_transport_arrive_intact() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 2)).expect("valid config");
    let bodies = [
        "Bonjour Zoé,\n\nLe service est rétabli. 日本 も.\n.Une ligne qui commence par un point.\n",
        "Plain ASCII body.\n",
        "Crédit de 12,50 € appliqué.\n..\n.\n",
    ];
    let messages = [
        email("notice-1", "ana@example.com", "Service rétabli", bodies[0]),
        email("notice-2", "bo@example.com", "Outage over", bodies[1]),
        email("notice-3", "ana@example.com", "Crédit appliqué 日本", bodies[2]),
    ];
    for message in &messages {
        transport.send(message).await.expect("accepted");
    }

    let received: Vec<Seen> = server.drain().iter().map(seen).collect();
    // sha256 of each key, computed independently with sha256sum.
    let hash_1 = "8a18f9957b0178dc2ce088610ec82a224ba1a4d3f984bba68750911d095fb9c9";
    let hash_2 = "5a1446e2756b0e9667b436ffbb9f91381928c7582ad8ce29eb2c927dd97e2471";
    let hash_3 = "38d282758f3d3086bb1c8b2bf37c1c572aa04d02f1ec537ebbbccf55913d665a";
    assert_eq!(
        received,
        vec![
            expected(hash_1, "notice-1", "ana@example.com", "Service rétabli", bodies[0]),
            expected(hash_2, "notice-2", "bo@example.com", "Outage over", bodies[1]),
            expected(hash_3, "notice-3", "ana@example.com", "Crédit appliqué 日本", bodies[2]),
        ]
    );
    transport.shutdown().await;
}

#[tokio::test]
async fn a_550_rejection_is_permanent() {
    let mut server = SmtpServer::start(Behaviour {
        reject_permanently: vec!["gone@example.com".to_owned()],
        ..Behaviour::default()
    });
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    let result = transport.send(&email("n-550", "gone@example.com", "s", "b")).await;
    match result {
        Err(SendError::Permanent(reason)) => {
            assert!(reason.contains("550"), "{reason}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(server.drain().is_empty());
}

#[tokio::test]
async fn a_451_rejection_is_transient_and_the_next_send_succeeds() {
    let mut server = SmtpServer::start(Behaviour {
        reject_transiently: vec!["busy@example.com".to_owned()],
        ..Behaviour::default()
    });
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    let result = transport.send(&email("n-451", "busy@example.com", "s", "b")).await;
    match result {
        Err(SendError::Transient(reason)) => {
            assert!(reason.contains("451"), "{reason}");
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    // The failed transaction must not poison the pool.
    transport.send(&email("n-ok", "ana@example.com", "s", "b")).await.expect("accepted");
    let rcpts: Vec<Vec<String>> = server.drain().into_iter().map(|r| r.rcpt_to).collect();
    assert_eq!(rcpts, vec![vec!["ana@example.com".to_owned()]]);
}

#[tokio::test]
async fn a_server_that_is_down_is_transient() {
    let url = format!("smtp://127.0.0.1:{}", closed_port());
    let transport = SmtpTransport::new(config(url, 1)).expect("valid config");
    let result = transport.send(&email("n-down", "ana@example.com", "s", "b")).await;
    assert!(matches!(result, Err(SendError::Transient(_))), "expected a transient error, got {result:?}");
}

/// Against a closed port, any connection attempt would end Transient; Permanent proves the
/// message was refused before connecting.
#[tokio::test]
async fn a_bad_recipient_address_is_permanent_without_a_connection() {
    let url = format!("smtp://127.0.0.1:{}", closed_port());
    let transport = SmtpTransport::new(config(url, 1)).expect("valid config");
    let result = transport.send(&email("n-bad", "not an address", "s", "b")).await;
    match result {
        Err(SendError::Permanent(reason)) => {
            assert!(reason.starts_with("invalid recipient address \"not an address\""), "{reason}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn sms_is_refused_permanently_without_a_connection() {
    let url = format!("smtp://127.0.0.1:{}", closed_port());
    let transport = SmtpTransport::new(config(url, 1)).expect("valid config");
    let mut sms = email("n-sms", "+33612345678", "s", "b");
    sms.channel = "sms".to_owned();
    match transport.send(&sms).await {
        Err(SendError::Permanent(reason)) => {
            assert_eq!(reason, "smtp transport delivers email only");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

/// lettre alone opens a new connection for every overlapping send; pool_max must cap them.
/// The server holds each transaction until two are open at once: with a cap of 1 the send
/// times out (5 s) and fails, with no cap the count reaches more than 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_max_caps_concurrent_transactions() {
    let mut server = SmtpServer::start(Behaviour { hold_until_concurrent: Some(2), ..Behaviour::default() });
    let transport = Arc::new(SmtpTransport::new(config(server.url(), 2)).expect("valid config"));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let transport = Arc::clone(&transport);
        let message = email(&format!("n-{i}"), "ana@example.com", "s", "b");
        tasks.spawn(async move { transport.send(&message).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task ran").expect("accepted");
    }
    assert_eq!(server.stats.most_concurrent(), 2);
    assert_eq!(server.drain().len(), 6);
    assert!(server.stats.connections.load(Ordering::SeqCst) >= 2);
}

/// The unsubscribe headers of what arrived: (List-Unsubscribe, List-Unsubscribe-Post).
fn unsubscribe_headers(received: &Received) -> (Option<String>, Option<String>) {
    let parsed = MessageParser::default().parse(&received.data).expect("a parseable message");
    (raw_header(&parsed, "List-Unsubscribe"), raw_header(&parsed, "List-Unsubscribe-Post"))
}

#[tokio::test]
async fn a_non_essential_notice_offers_one_click_unsubscribe_in_both_parts() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    // Long enough that the header must be folded: the URL must survive unbroken.
    let url = format!("https://status.example/unsubscribe?kind=credit&token={}", "a1B2-_".repeat(40));
    let body = "Hello Ana,\n\nA credit of 12.50 € <is> applied & visible:\nhttps://status.example/i/42.\n";
    let message = OutgoingMessage {
        kind: "credit".to_owned(),
        locale: "en_GB".to_owned(),
        unsubscribe_url: Some(url.clone()),
        ..email("n-credit", "ana@example.com", "Credit applied", body)
    };
    transport.send(&message).await.expect("accepted");

    let received = server.drain();
    assert_eq!(received.len(), 1);
    assert_eq!(
        unsubscribe_headers(&received[0]),
        (Some(format!("<{url}>")), Some("List-Unsubscribe=One-Click".to_owned()))
    );
    let seen = seen(&received[0]);
    assert_eq!(seen.structure, ALTERNATIVE);
    assert_eq!(seen.content_language.as_deref(), Some("en-GB"));
    assert_eq!(seen.body, body);
    assert_eq!(
        seen.html,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n</head>\n<body>\n\
         <p>Hello Ana,</p>\n\
         <p>A credit of 12.50 € &lt;is&gt; applied &amp; visible:<br>\n\
         <a href=\"https://status.example/i/42\">https://status.example/i/42</a>.</p>\n\
         </body>\n</html>\n"
    );
}

#[tokio::test]
async fn an_essential_notice_has_no_unsubscribe_headers() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    let message = email("n-ack", "ana@example.com", "We know", "We are on it.\n");
    transport.send(&message).await.expect("accepted");
    let received = server.drain();
    assert_eq!(received.len(), 1);
    assert_eq!(unsubscribe_headers(&received[0]), (None, None));
    assert_eq!(seen(&received[0]).structure, ALTERNATIVE);
}

/// RFC 8058 one-click needs HTTPS; a plain http URL (a development setup) still gets the
/// RFC 2369 header.
#[tokio::test]
async fn an_http_unsubscribe_url_gets_no_one_click_header() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    let url = "http://localhost:8080/unsubscribe?token=x";
    let message = OutgoingMessage {
        unsubscribe_url: Some(url.to_owned()),
        ..email("n-upd", "ana@example.com", "Update", "b\n")
    };
    transport.send(&message).await.expect("accepted");
    let received = server.drain();
    assert_eq!(unsubscribe_headers(&received[0]), (Some(format!("<{url}>")), None));
}

#[tokio::test]
async fn an_unsubscribe_url_that_could_break_the_header_is_permanent_without_a_connection() {
    let url = format!("smtp://127.0.0.1:{}", closed_port());
    let transport = SmtpTransport::new(config(url, 1)).expect("valid config");
    for bad in ["https://a.example/u>\r\nBcc: evil@example.com", "https://a.example/u x", "ftp://a.example/u"]
    {
        let message = OutgoingMessage {
            unsubscribe_url: Some(bad.to_owned()),
            ..email("n", "ana@example.com", "s", "b")
        };
        match transport.send(&message).await {
            Err(SendError::Permanent(reason)) => {
                assert_eq!(reason, format!("unsubscribe url {bad:?} is not a plain http(s) URL"))
            }
            other => panic!("expected a permanent error for {bad:?}, got {other:?}"),
        }
    }
}

// Attachments ---------------------------------------------------------------------------

/// An RFC 5545 appointment as a booking system would attach it: CRLF lines, UTF-8 text.
const ICS: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Amends//Appointments//FR\r\n\
METHOD:PUBLISH\r\n\
BEGIN:VEVENT\r\n\
UID:APT-00000427@amends.example\r\n\
DTSTAMP:20250301T090000Z\r\n\
DTSTART:20250304T130000Z\r\n\
DTEND:20250304T150000Z\r\n\
SUMMARY:Intervention technicien — Zoé\r\n\
LOCATION:12 rue de la Paix\\, Paris\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

fn ics() -> Attachment {
    Attachment {
        filename: "APT-00000427.ics".to_owned(),
        content_type: "text/calendar; charset=utf-8".to_owned(),
        content: ICS.as_bytes().to_vec(),
    }
}

fn appointment(attachments: Vec<Attachment>) -> OutgoingMessage {
    OutgoingMessage {
        kind: "appointment".to_owned(),
        attachments,
        ..email("APT-00000427", "ana@example.com", "Votre rendez-vous", "Bonjour Ana,\n\nÀ mardi.\n")
    }
}

/// One MIME part of the raw message: its header lines (unfolded) and its body as sent.
#[derive(Debug)]
struct RawPart {
    headers: Vec<String>,
    body: String,
}

/// The part whose headers include `header_line`, read straight from the bytes that arrived
/// (no MIME library): from the boundary line before it to the next boundary.
fn raw_part(raw: &str, header_line: &str) -> RawPart {
    let at = raw.find(header_line).unwrap_or_else(|| panic!("{header_line:?} not in\n{raw}"));
    let start = raw[..at].rfind("\r\n--").expect("a boundary before the part");
    let start = start + raw[start + 2..].find("\r\n").expect("the end of the boundary line") + 4;
    let (head, rest) = raw[start..].split_once("\r\n\r\n").expect("a blank line after the part's headers");
    let body = &rest[..rest.find("\r\n--").expect("a boundary after the part")];
    let headers =
        head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n").map(str::to_owned).collect();
    RawPart { headers, body: body.to_owned() }
}

impl RawPart {
    /// The body decoded as its Content-Transfer-Encoding says.
    fn decoded(&self) -> Vec<u8> {
        let encoding = self
            .headers
            .iter()
            .find_map(|h| h.strip_prefix("Content-Transfer-Encoding: "))
            .expect("a Content-Transfer-Encoding");
        match encoding {
            "base64" => {
                let packed: String = self.body.split("\r\n").collect();
                BASE64.decode(packed).expect("valid base64")
            }
            other => panic!("attachments must be base64, found {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_appointment_email_carries_its_ics_as_an_attachment() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    transport.send(&appointment(vec![ics()])).await.expect("accepted");

    let received = server.drain();
    assert_eq!(received.len(), 1);
    let raw = String::from_utf8(received[0].data.clone()).expect("an ASCII message");

    // Read by hand from the raw bytes.
    let parsed = MessageParser::default().parse(&received[0].data).expect("a parseable message");
    let root_type = raw_header(&parsed, "Content-Type").expect("a Content-Type");
    assert!(root_type.starts_with("multipart/mixed;"), "{root_type}");
    let part = raw_part(&raw, "Content-Disposition: attachment; filename=\"APT-00000427.ics\"");
    assert_eq!(
        part.headers,
        [
            "Content-Disposition: attachment; filename=\"APT-00000427.ics\"",
            "Content-Type: text/calendar; charset=utf-8",
            "Content-Transfer-Encoding: base64",
        ]
    );
    assert_eq!(part.decoded(), ICS.as_bytes());

    // And read by an independent MIME parser: the text and HTML as without an attachment,
    // the same Message-ID (sha256 of the key, computed with sha256sum), then the file.
    let hash = "750b478d05d3e16a560a2bc831094a666cbaadc3f6d1649456285cac2a2282b5";
    let body = "Bonjour Ana,\n\nÀ mardi.\n";
    let mut structure = vec!["multipart/mixed".to_owned()];
    structure.extend(ALTERNATIVE.map(str::to_owned));
    structure.push("text/calendar; charset=utf-8".to_owned());
    assert_eq!(
        seen(&received[0]),
        Seen { structure, ..expected(hash, "APT-00000427", "ana@example.com", "Votre rendez-vous", body) }
    );
    assert_eq!(parsed.attachment_count(), 1);
    let attachment = parsed.attachment(0).expect("an attachment");
    assert_eq!(attachment.attachment_name(), Some("APT-00000427.ics"));
    assert_eq!(attachment.contents(), ICS.as_bytes());
}

#[tokio::test]
async fn without_attachments_the_email_is_multipart_alternative_as_before() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    transport.send(&appointment(Vec::new())).await.expect("accepted");

    let received = server.drain();
    assert_eq!(received.len(), 1);
    let raw = String::from_utf8(received[0].data.clone()).expect("an ASCII message");
    assert!(!raw.contains("multipart/mixed"), "{raw}");
    assert!(!raw.contains("Content-Disposition"), "{raw}");
    let parsed = MessageParser::default().parse(&received[0].data).expect("a parseable message");
    let root_type = raw_header(&parsed, "Content-Type").expect("a Content-Type");
    assert!(root_type.starts_with("multipart/alternative;"), "{root_type}");
    assert_eq!(seen(&received[0]).structure, ALTERNATIVE);
    assert_eq!(parsed.attachment_count(), 0);
}

/// At the bounds exactly: four files of 256 KiB, every byte value (NUL, bare CR and LF, a
/// lone dot on a line, 8-bit bytes), in order, with a non-ASCII name (RFC 2231).
#[tokio::test]
async fn four_attachments_of_the_largest_size_arrive_byte_for_byte() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    let files: Vec<Attachment> = (0..ATTACHMENTS_MAX)
        .map(|i| {
            let mut content = b"a\n.\nb\r\n.\r\nc\rd\0".to_vec();
            content.extend((0..=255u8).cycle().skip(i).take(ATTACHMENT_BYTES_MAX - content.len()));
            Attachment {
                filename: format!("reçu {i} été.bin"),
                content_type: "application/octet-stream".to_owned(),
                content,
            }
        })
        .collect();
    assert!(files.iter().all(|f| f.content.len() == ATTACHMENT_BYTES_MAX));
    transport.send(&appointment(files.clone())).await.expect("accepted");

    let received = server.drain();
    assert_eq!(received.len(), 1);
    let parsed = MessageParser::default().parse(&received[0].data).expect("a parseable message");
    assert_eq!(parsed.attachment_count(), ATTACHMENTS_MAX);
    for (i, file) in files.iter().enumerate() {
        let attachment = parsed.attachment(i as u32).expect("an attachment");
        assert_eq!(attachment.attachment_name(), Some(file.filename.as_str()), "attachment {i}");
        assert!(attachment.contents() == file.content.as_slice(), "attachment {i} differs");
    }
}

/// Short ASCII lines would let lettre pick 7bit and pass the bytes raw: bare LF and CR, a
/// lone dot, no final newline. Base64 keeps them exactly.
#[tokio::test]
async fn an_ascii_attachment_is_base64_too_and_keeps_its_line_endings() {
    let mut server = SmtpServer::start(Behaviour::default());
    let transport = SmtpTransport::new(config(server.url(), 1)).expect("valid config");
    let content = b"one\ntwo\r\n.\nthree\rfour\n\n.".to_vec();
    let notes = Attachment {
        filename: "notes.txt".to_owned(),
        content_type: "text/plain".to_owned(),
        content: content.clone(),
    };
    transport.send(&appointment(vec![notes])).await.expect("accepted");

    let received = server.drain();
    let raw = String::from_utf8(received[0].data.clone()).expect("an ASCII message");
    let part = raw_part(&raw, "Content-Disposition: attachment; filename=\"notes.txt\"");
    assert!(part.headers.iter().any(|h| h == "Content-Transfer-Encoding: base64"), "{part:?}");
    assert_eq!(part.decoded(), content);
}

/// Against a closed port, any connection attempt would end Transient; Permanent proves the
/// message was refused before connecting.
#[tokio::test]
async fn attachments_over_the_bounds_are_permanent_without_a_connection() {
    let url = format!("smtp://127.0.0.1:{}", closed_port());
    let transport = SmtpTransport::new(config(url, 1)).expect("valid config");
    let named = |filename: &str, bytes: usize| Attachment {
        filename: filename.to_owned(),
        content: vec![b'x'; bytes],
        ..ics()
    };
    let cases = [
        (
            vec![ics(), ics(), ics(), ics(), named("fifth.ics", 1)],
            "notice APT-00000427: 5 attachments, at most 4; the first over the bound is \"fifth.ics\"",
        ),
        (
            vec![named("big.ics", ATTACHMENT_BYTES_MAX + 1)],
            "notice APT-00000427: attachment \"big.ics\" is 262145 bytes, at most 262144",
        ),
        (
            vec![named("../APT-00000427.ics", 1)],
            "notice APT-00000427: attachment file name \"../APT-00000427.ics\" contains a path separator",
        ),
        (
            vec![named("APT.ics\r\nBcc: evil@example.com", 1)],
            "notice APT-00000427: attachment file name \"APT.ics\\r\\nBcc: evil@example.com\" contains a \
             control character",
        ),
        (
            vec![Attachment { content_type: "text/calendar\r\nBcc: evil@example.com".to_owned(), ..ics() }],
            "notice APT-00000427: attachment \"APT-00000427.ics\": content type \
             \"text/calendar\\r\\nBcc: evil@example.com\" has a character outside printable ASCII",
        ),
        (
            vec![Attachment { content_type: "text/calendar; charset".to_owned(), ..ics() }],
            "notice APT-00000427: attachment \"APT-00000427.ics\": content type \"text/calendar; charset\" \
             has a parameter that is not name=value",
        ),
    ];
    for (attachments, expected) in cases {
        match transport.send(&appointment(attachments)).await {
            Err(SendError::Permanent(reason)) => assert_eq!(reason, expected),
            other => panic!("expected a permanent error {expected:?}, got {other:?}"),
        }
    }
}
