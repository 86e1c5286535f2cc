//! A transport that writes notices where a person can read them: a file or stdout.

use std::path::{Path, PathBuf};

use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::{OutgoingMessage, SendError, Sent, Transport};

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
    format!(
        "=== {} ===\nChannel: {}\nTo: {}\nSubject: {}\n\n{}{}\n",
        message.key, message.channel, message.recipient, message.subject, message.body, body_end
    )
}

#[async_trait::async_trait]
impl Transport for FileTransport {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError> {
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
        }
    }

    #[test]
    fn block_adds_a_newline_only_when_the_body_lacks_one() {
        let expected = "=== n-1 ===\nChannel: sms\nTo: +33612345678\nSubject: Restored\n\nhi\n\n";
        assert_eq!(render_block(&message("hi")), expected);
        assert_eq!(render_block(&message("hi\n")), expected);
    }
}
