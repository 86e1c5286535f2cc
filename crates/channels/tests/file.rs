//! FileTransport writes readable blocks, one whole block per send.

use std::sync::Arc;

use amends_channels::{FileTransport, OutgoingMessage, SendError, Transport};

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
