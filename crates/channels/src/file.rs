//! A transport that writes notices where a person can read them: a file or stdout.

use std::path::{Path, PathBuf};

use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{OutgoingMessage, SendError, Sent, Transport, check_attachments};

/// Characters per line of an attachment's base64, as in MIME (RFC 2045).
const BASE64_LINE_CHARS: usize = 76;

/// Appends each message as a readable block to a file, or to stdout when the path is `"-"`.
///
/// ```text
/// === <key> ===
/// Channel: email
/// To: ana@example.com
/// Subject: Service restored
///
/// <body>
///
/// ```
///
/// A non-essential notice carries the link an email would put in its `List-Unsubscribe`
/// header, as a `List-Unsubscribe: <url>` line after `Subject:`, so the file shows what
/// the customer would get (and a test can follow it).
///
/// A message with attachments gets one `Attachment:` line per file after `Subject:`, and
/// after the body one section per file: its content in standard base64, 76 characters a
/// line, so `base64 -d` gives back the exact bytes. Without attachments the block is as
/// above. Attachments over the bounds ([`check_attachments`]) fail permanently, as they
/// would on a real channel.
///
/// ```text
/// === APT-00000427 ===
/// Channel: email
/// To: ana@example.com
/// Subject: Your appointment
/// Attachment: APT-00000427.ics (text/calendar; charset=utf-8, 312 bytes)
///
/// <body>
///
/// --- APT-00000427.ics base64 ---
/// QkVHSU46VkNBTEVOREFSDQpWRVJTSU9OOjIuMA0KUFJPRElEOi0vL0FtZW5kcy8vRU4NCkJFR0lO
/// ...
///
/// ```
///
/// The file is opened (with its parent directories) on the first send rather than in `new`,
/// so building the transport never fails and a file removed while running comes back. After
/// a write error the handle is dropped and the next send opens the file again.
#[derive(Debug)]
pub struct FileTransport {
    target: Target,
    /// Serialises whole blocks so concurrent sends never interleave.
    sink: Mutex<Option<Sink>>,
}

#[derive(Debug)]
enum Target {
    Stdout,
    File(PathBuf),
}

#[derive(Debug)]
enum Sink {
    Stdout(tokio::io::Stdout),
    File(File),
}

impl FileTransport {
    /// A transport writing to `path`, or to stdout when `path` is `"-"`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let target = if path == Path::new("-") { Target::Stdout } else { Target::File(path.to_path_buf()) };
        Self { target, sink: Mutex::new(None) }
    }

    async fn open(&self) -> std::io::Result<Sink> {
        match &self.target {
            Target::Stdout => Ok(Sink::Stdout(tokio::io::stdout())),
            Target::File(path) => open_append(path).await.map(Sink::File),
        }
    }

    /// Writes one block with the lock held. The sink is taken out while writing and put back
    /// only on success, so after an error the next send opens the file again (it may have
    /// been removed, or the disk freed).
    async fn write_locked(&self, sink: &mut Option<Sink>, block: &[u8]) -> std::io::Result<()> {
        let mut open = match sink.take() {
            Some(open) => open,
            None => self.open().await?,
        };
        write_to(&mut open, block).await?;
        *sink = Some(open);
        Ok(())
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Stdout => "stdout".to_owned(),
            Target::File(path) => path.display().to_string(),
        }
    }
}

async fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await?;
    }
    OpenOptions::new().create(true).append(true).open(path).await
}

async fn write_block<W: AsyncWrite + Unpin>(writer: &mut W, block: &[u8]) -> std::io::Result<()> {
    writer.write_all(block).await?;
    writer.flush().await
}

/// Formats one message as the block described on [`FileTransport`].
pub(crate) fn render_block(message: &OutgoingMessage) -> String {
    let body_end = if message.body.ends_with('\n') { "" } else { "\n" };
    let mut block = format!(
        "=== {} ===\nChannel: {}\nTo: {}\nSubject: {}\n",
        message.key, message.channel, message.recipient, message.subject
    );
    if let Some(url) = &message.unsubscribe_url {
        block.push_str(&format!("List-Unsubscribe: <{url}>\n"));
    }
    for attachment in &message.attachments {
        block.push_str(&format!(
            "Attachment: {} ({}, {} bytes)\n",
            attachment.filename,
            attachment.content_type,
            attachment.content.len()
        ));
    }
    block.push_str(&format!("\n{}{}\n", message.body, body_end));
    for attachment in &message.attachments {
        block.push_str(&format!("--- {} base64 ---\n", attachment.filename));
        let encoded = BASE64.encode(&attachment.content);
        // base64 is ASCII: every byte offset is a character boundary.
        let mut rest = encoded.as_str();
        while !rest.is_empty() {
            let (line, after) = rest.split_at(rest.len().min(BASE64_LINE_CHARS));
            block.push_str(line);
            block.push('\n');
            rest = after;
        }
        block.push('\n');
    }
    block
}

#[async_trait::async_trait]
impl Transport for FileTransport {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError> {
        check_attachments(&message.key, &message.attachments)?;
        let block = render_block(message);
        let mut sink = self.sink.lock().await;
        self.write_locked(&mut sink, block.as_bytes()).await.map_err(|e| {
            SendError::Transient(format!("writing notice {} to {}: {e}", message.key, self.describe()))
        })?;
        Ok(Sent::default())
    }
}

async fn write_to(sink: &mut Sink, block: &[u8]) -> std::io::Result<()> {
    match sink {
        Sink::Stdout(out) => write_block(out, block).await,
        Sink::File(file) => write_block(file, block).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> OutgoingMessage {
        OutgoingMessage {
            key: "n-1".into(),
            channel: "sms".into(),
            recipient: "+33612345678".into(),
            subject: "Restored".into(),
            body: body.into(),
            customer_id: "c-1".into(),
            incident_id: "i-1".into(),
            kind: "restored".into(),
            locale: "fr".into(),
            unsubscribe_url: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn block_adds_a_newline_only_when_the_body_lacks_one() {
        let expected = "=== n-1 ===\nChannel: sms\nTo: +33612345678\nSubject: Restored\n\nhi\n\n";
        assert_eq!(render_block(&message("hi")), expected);
        assert_eq!(render_block(&message("hi\n")), expected);
    }

    #[test]
    fn an_unsubscribe_link_is_shown_as_the_email_header_would_carry_it() {
        let with = OutgoingMessage {
            unsubscribe_url: Some("https://care.example.com/v1/unsubscribe?token=t".into()),
            ..message("hi")
        };
        assert_eq!(
            render_block(&with),
            "=== n-1 ===\nChannel: sms\nTo: +33612345678\nSubject: Restored\n\
             List-Unsubscribe: <https://care.example.com/v1/unsubscribe?token=t>\n\nhi\n\n"
        );
    }

    #[test]
    fn attachments_are_listed_then_written_as_base64_lines() {
        let attachment = |filename: &str, content: &[u8]| crate::Attachment {
            filename: filename.into(),
            content_type: "application/octet-stream".into(),
            content: content.to_vec(),
        };
        let with = OutgoingMessage {
            attachments: vec![attachment("a.bin", &[0xff; 60]), attachment("empty.bin", b"")],
            ..message("hi")
        };
        // 60 bytes make 80 base64 characters: one full line of 76 and one of 4.
        let line = "/".repeat(76);
        assert_eq!(
            render_block(&with),
            format!(
                "=== n-1 ===\nChannel: sms\nTo: +33612345678\nSubject: Restored\n\
                 Attachment: a.bin (application/octet-stream, 60 bytes)\n\
                 Attachment: empty.bin (application/octet-stream, 0 bytes)\n\
                 \nhi\n\n\
                 --- a.bin base64 ---\n{line}\n////\n\n\
                 --- empty.bin base64 ---\n\n"
            )
        );
    }
}
