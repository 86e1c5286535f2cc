//! FileTransport writes readable blocks, one whole block per send.

use std::sync::Arc;

use amends_channels::{Attachment, FileTransport, OutgoingMessage, SendError, Transport};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

fn message(key: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage {
        key: key.to_owned(),
        channel: "email".to_owned(),
        recipient: "ana@example.com".to_owned(),
        subject: "Service rétabli".to_owned(),
        body: body.to_owned(),
        customer_id: "c-1".to_owned(),
        incident_id: "i-1".to_owned(),
        kind: "restored".to_owned(),
        locale: "fr".to_owned(),
        unsubscribe_url: None,
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn appends_readable_blocks_and_creates_parent_directories() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/deeper/outbox.txt");
    let transport = FileTransport::new(&path);
    transport.send(&message("n-1", "Bonjour Zoé,\n日本\n")).await.expect("written");
    transport.send(&message("n-2", "no trailing newline")).await.expect("written");

    let written = std::fs::read_to_string(&path).expect("file exists");
    assert_eq!(
        written,
        "=== n-1 ===\n\
         Channel: email\n\
         To: ana@example.com\n\
         Subject: Service rétabli\n\
         \n\
         Bonjour Zoé,\n日本\n\
         \n\
         === n-2 ===\n\
         Channel: email\n\
         To: ana@example.com\n\
         Subject: Service rétabli\n\
         \n\
         no trailing newline\n\
         \n"
    );
}

#[tokio::test]
async fn appends_to_an_existing_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.txt");
    std::fs::write(&path, "earlier\n").expect("seed file");
    FileTransport::new(&path).send(&message("n-1", "b")).await.expect("written");
    let written = std::fs::read_to_string(&path).expect("file exists");
    assert_eq!(
        written,
        "earlier\n=== n-1 ===\nChannel: email\nTo: ana@example.com\nSubject: Service rétabli\n\nb\n\n"
    );
}

/// The attachment's section decodes back to its bytes with a plain base64 decoder.
#[tokio::test]
async fn attachments_follow_the_body_as_base64() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.txt");
    let ics = "BEGIN:VCALENDAR\r\nSUMMARY:Zoé\r\n".repeat(10);
    let message = OutgoingMessage {
        attachments: vec![Attachment {
            filename: "APT-00000427.ics".to_owned(),
            content_type: "text/calendar; charset=utf-8".to_owned(),
            content: ics.as_bytes().to_vec(),
        }],
        ..message("APT-00000427", "À mardi.\n")
    };
    FileTransport::new(&path).send(&message).await.expect("written");

    let written = std::fs::read_to_string(&path).expect("file exists");
    let (head, section) = written.split_once("--- APT-00000427.ics base64 ---\n").expect("a section");
    assert_eq!(
        head,
        "=== APT-00000427 ===\nChannel: email\nTo: ana@example.com\nSubject: Service rétabli\n\
         Attachment: APT-00000427.ics (text/calendar; charset=utf-8, 310 bytes)\n\nÀ mardi.\n\n"
    );
    let lines: Vec<&str> =
        section.strip_suffix("\n\n").expect("a blank line ends the block").lines().collect();
    assert!(lines.iter().all(|line| line.len() <= 76), "{lines:?}");
    assert_eq!(BASE64.decode(lines.concat()).expect("base64"), ics.as_bytes());
}

#[tokio::test]
async fn attachments_over_the_bounds_are_permanent_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.txt");
    let message = OutgoingMessage {
        attachments: vec![Attachment {
            filename: "APT.ics\nSubject: forged".to_owned(),
            content_type: "text/calendar".to_owned(),
            content: b"x".to_vec(),
        }],
        ..message("APT-00000427", "b")
    };
    match FileTransport::new(&path).send(&message).await {
        Err(SendError::Permanent(reason)) => assert_eq!(
            reason,
            "notice APT-00000427: attachment file name \"APT.ics\\nSubject: forged\" contains a control character"
        ),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(!path.exists());
}

#[tokio::test]
async fn an_io_error_is_transient_and_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "a file where a directory should be").expect("seed file");
    let path = blocker.join("outbox.txt");
    match FileTransport::new(&path).send(&message("n-1", "b")).await {
        Err(SendError::Transient(reason)) => {
            assert!(reason.starts_with(&format!("writing notice n-1 to {}: ", path.display())), "{reason}")
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
}

/// Bodies above tokio's 2 MiB file write buffer take several write calls each, which other
/// senders could slip between; the lock must keep every block whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_do_not_interleave() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.txt");
    let transport = Arc::new(FileTransport::new(&path));
    let senders = 4;
    let lines_per_body = 150_000; // about 2.7 MB per body
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..senders {
        let transport = Arc::clone(&transport);
        let body = format!("line of notice {i}\n").repeat(lines_per_body);
        tasks.spawn(async move { transport.send(&message(&format!("n-{i}"), &body)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task ran").expect("written");
    }

    let written = std::fs::read_to_string(&path).expect("file exists");
    let blocks: Vec<&str> = written.split("=== ").filter(|block| !block.is_empty()).collect();
    assert_eq!(blocks.len(), senders);
    let mut keys: Vec<usize> = blocks.iter().map(|block| whole_block_index(block, lines_per_body)).collect();
    keys.sort_unstable();
    assert_eq!(keys, (0..senders).collect::<Vec<_>>());
}

/// Checks one block is exactly what notice `i` should produce and returns `i`.
fn whole_block_index(block: &str, lines_per_body: usize) -> usize {
    let key_line = block.lines().next().expect("a header line");
    let index: usize = key_line
        .strip_prefix("n-")
        .and_then(|rest| rest.strip_suffix(" ==="))
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("bad header line {key_line:?}"));
    let expected = format!(
        "n-{index} ===\nChannel: email\nTo: ana@example.com\nSubject: Service rétabli\n\n{}\n",
        format!("line of notice {index}\n").repeat(lines_per_body)
    );
    assert!(block == expected, "block for n-{index} is not whole");
    index
}
