//! Files carried by a notice (an appointment's `.ics`, say), and the bounds every transport
//! that carries them checks before sending.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most attachments on one message.
pub const ATTACHMENTS_MAX: usize = 4;
/// Largest attachment, in bytes before any transfer encoding (base64 adds a third on the
/// wire): 256 KiB. With [`ATTACHMENTS_MAX`], an email stays under about 1.4 MB, far below
/// the usual relay limits (10 to 25 MB).
pub const ATTACHMENT_BYTES_MAX: usize = 256 * 1024;
/// Longest file name, in bytes: the usual limit of a file name on disk.
pub const ATTACHMENT_FILENAME_MAX_BYTES: usize = 255;
/// Longest content type with its parameters, in bytes (RFC 6838 allows 127 for the type
/// and as many for the subtype).
pub const ATTACHMENT_CONTENT_TYPE_MAX_BYTES: usize = 255;
/// How much of a refused file name or content type an error quotes, in bytes.
const SHOWN_MAX_BYTES: usize = 80;

/// One file attached to a notice.
///
/// In JSON the content is standard base64 with padding, under `content_base64`:
/// `{"filename": "APT-00000427.ics", "content_type": "text/calendar; charset=utf-8",
/// "content_base64": "QkVHSU46VkNBTEVOREFS..."}`.
///
/// The fields are checked when a message is sent ([`check_attachments`]), not when the
/// value is built, so a stored message that breaks a bound fails with an error naming its
/// notice instead of failing to load.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The name the recipient's mail client or app shows and saves it under: no path
    /// separators, no control characters, not `.` or `..`, at most
    /// [`ATTACHMENT_FILENAME_MAX_BYTES`]. Non-ASCII is allowed (RFC 2231 in email).
    pub filename: String,
    /// A MIME type with optional parameters, `text/calendar; charset=utf-8`.
    pub content_type: String,
    /// The file's bytes, at most [`ATTACHMENT_BYTES_MAX`].
    #[serde(rename = "content_base64", with = "base64_bytes")]
    pub content: Vec<u8>,
}

/// Shows the size of the content, not the content: a message's Debug output ends up in
/// logs and test failures.
impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .finish()
    }
}

/// Why a message's attachments cannot be sent. Always final: the same message would fail
/// the same way on every retry. Each case names the notice and the attachment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error(
        "notice {key}: {count} attachments, at most {ATTACHMENTS_MAX}; the first over the bound \
         is {filename:?}"
    )]
    TooMany { key: String, count: usize, filename: String },
    #[error("notice {key}: attachment {filename:?} is {bytes} bytes, at most {ATTACHMENT_BYTES_MAX}")]
    TooLarge { key: String, filename: String, bytes: usize },
    #[error("notice {key}: attachment file name {filename:?} {reason}")]
    Filename { key: String, filename: String, reason: &'static str },
    #[error("notice {key}: attachment {filename:?}: content type {content_type:?} {reason}")]
    ContentType { key: String, filename: String, content_type: String, reason: String },
}

impl From<AttachmentError> for crate::SendError {
    fn from(error: AttachmentError) -> Self {
        crate::SendError::Permanent(error.to_string())
    }
}

/// Checks the attachments of notice `key` against the bounds above. Transports call it
/// before sending; a caller can call it when it builds a message, to fail earlier.
pub fn check_attachments(key: &str, attachments: &[Attachment]) -> Result<(), AttachmentError> {
    if let Some(extra) = attachments.get(ATTACHMENTS_MAX) {
        return Err(AttachmentError::TooMany {
            key: key.to_owned(),
            count: attachments.len(),
            filename: shown(&extra.filename),
        });
    }
    for attachment in attachments {
        let filename = || shown(&attachment.filename);
        if let Some(reason) = filename_problem(&attachment.filename) {
            return Err(AttachmentError::Filename { key: key.to_owned(), filename: filename(), reason });
        }
        if attachment.content.len() > ATTACHMENT_BYTES_MAX {
            return Err(AttachmentError::TooLarge {
                key: key.to_owned(),
                filename: filename(),
                bytes: attachment.content.len(),
            });
        }
        if let Some(reason) = content_type_problem(&attachment.content_type) {
            return Err(AttachmentError::ContentType {
                key: key.to_owned(),
                filename: filename(),
                content_type: shown(&attachment.content_type),
                reason: reason.to_owned(),
            });
        }
    }
    Ok(())
}

/// Refused rather than sanitised: a name changed behind the caller's back would be a
/// surprise to the recipient and to whoever reads the logs.
fn filename_problem(filename: &str) -> Option<&'static str> {
    if filename.is_empty() {
        Some("is empty")
    } else if filename.len() > ATTACHMENT_FILENAME_MAX_BYTES {
        Some("is longer than 255 bytes")
    } else if filename.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if filename.chars().any(char::is_control) {
        Some("contains a control character")
    } else if filename == "." || filename == ".." {
        Some("is a path component, not a file name")
    } else {
        None
    }
}

/// `type/subtype` of RFC 6838 restricted names, then any number of `; name=value`, the
/// value an RFC 2045 token or a quoted string without `;`, `"` or `\` inside. All printable
/// ASCII, so the value can go in a header or on one line as it is; and one rule for every
/// transport, so a type that one channel accepts another does not refuse.
fn content_type_problem(content_type: &str) -> Option<&'static str> {
    if content_type.len() > ATTACHMENT_CONTENT_TYPE_MAX_BYTES {
        return Some("is longer than 255 bytes");
    }
    if !content_type.bytes().all(|b| matches!(b, b' '..=b'~')) {
        return Some("has a character outside printable ASCII");
    }
    let mut pieces = content_type.split(';');
    let essence = pieces.next().unwrap_or_default().trim();
    let restricted_name = |name: &str| {
        name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    match essence.split_once('/') {
        Some((kind, subtype)) if restricted_name(kind) && restricted_name(subtype) => {}
        _ => return Some("is not type/subtype"),
    }
    let token = |text: &str| {
        !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c))
    };
    let quoted = |text: &str| {
        let inner = text.strip_prefix('"').and_then(|rest| rest.strip_suffix('"'));
        inner.is_some_and(|inner| !inner.contains(['"', '\\']))
    };
    let parameter = |piece: &str| match piece.trim().split_once('=') {
        Some((name, value)) => token(name) && (token(value) || quoted(value)),
        None => false,
    };
    if pieces.all(parameter) { None } else { Some("has a parameter that is not name=value") }
}

/// At most [`SHOWN_MAX_BYTES`] of `text`, cut at a character boundary, for an error.
fn shown(text: &str) -> String {
    if text.len() <= SHOWN_MAX_BYTES {
        return text.to_owned();
    }
    let mut end = SHOWN_MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Bytes as a standard base64 string with padding.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(filename: &str, content_type: &str, bytes: usize) -> Attachment {
        Attachment {
            filename: filename.into(),
            content_type: content_type.into(),
            content: vec![b'x'; bytes],
        }
    }

    fn ics(filename: &str) -> Attachment {
        file(filename, "text/calendar; charset=utf-8", 10)
    }

    fn check(attachments: &[Attachment], expected: Result<(), &str>) {
        let got = check_attachments("APT-00000427", attachments).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{attachments:?}");
    }

    #[test]
    fn bounds() {
        check(&[], Ok(()));
        check(&vec![ics("a.ics"); ATTACHMENTS_MAX], Ok(()));
        let mut five = vec![ics("a.ics"); ATTACHMENTS_MAX];
        five.push(ics("e.ics"));
        check(
            &five,
            Err("notice APT-00000427: 5 attachments, at most 4; the first over the bound is \"e.ics\""),
        );
        check(&[file("big.ics", "text/calendar", ATTACHMENT_BYTES_MAX)], Ok(()));
        check(
            &[ics("a.ics"), file("big.ics", "text/calendar", ATTACHMENT_BYTES_MAX + 1)],
            Err("notice APT-00000427: attachment \"big.ics\" is 262145 bytes, at most 262144"),
        );
        check(&[file("empty.txt", "text/plain", 0)], Ok(()));
    }

    #[test]
    fn filenames() {
        let refused = |name: &str, reason: &str| {
            check(
                &[ics(name)],
                Err(&format!("notice APT-00000427: attachment file name {:?} {reason}", shown(name))),
            );
        };
        check(&[ics("APT-00000427.ics")], Ok(()));
        check(&[ics("Rendez-vous été 日本.ics")], Ok(()));
        check(&[ics("a \"quoted\" name.ics")], Ok(()));
        check(&[ics(&"a".repeat(255))], Ok(()));
        refused("", "is empty");
        refused(&"a".repeat(256), "is longer than 255 bytes");
        refused("../etc/passwd", "contains a path separator");
        refused("dir/a.ics", "contains a path separator");
        refused("C:\\a.ics", "contains a path separator");
        refused("a.ics\r\nBcc: evil@example.com", "contains a control character");
        refused("a\0.ics", "contains a control character");
        refused("a\u{7f}.ics", "contains a control character");
        refused("a\u{85}.ics", "contains a control character");
        refused("a\t.ics", "contains a control character");
        refused(".", "is a path component, not a file name");
        refused("..", "is a path component, not a file name");
    }

    #[test]
    fn content_types() {
        let refused = |content_type: &str, reason: &str| {
            check(
                &[file("a.ics", content_type, 1)],
                Err(&format!(
                    "notice APT-00000427: attachment \"a.ics\": content type {:?} {reason}",
                    shown(content_type)
                )),
            );
        };
        for fine in
            ["text/calendar", "text/calendar;charset=\"utf-8\"; method=REQUEST", "application/vnd.ms-excel"]
        {
            check(&[file("a.ics", fine, 1)], Ok(()));
        }
        refused("text/calendar\r\nBcc: evil@example.com", "has a character outside printable ASCII");
        refused("texte/calendrier; nom=été", "has a character outside printable ASCII");
        refused("calendar", "is not type/subtype");
        refused("text/", "is not type/subtype");
        refused("/calendar", "is not type/subtype");
        refused("text/cal endar", "is not type/subtype");
        refused(&format!("text/{}", "x".repeat(251)), "is longer than 255 bytes");
        let parameter = "has a parameter that is not name=value";
        refused("text/calendar; charset", parameter);
        refused("text/calendar;", parameter);
        refused("text/calendar; charset=", parameter);
        refused("text/calendar; char set=utf-8", parameter);
        refused("text/calendar; charset=utf 8", parameter);
        refused("text/calendar; name=\"a\"b\"", parameter);
        refused("text/calendar; name=\"", parameter);
    }

    #[test]
    fn errors_quote_at_most_80_bytes() {
        let long = format!("{}/", "é".repeat(100));
        let error = check_attachments("k", &[ics(&long)]).expect_err("a path separator");
        assert_eq!(
            error.to_string(),
            format!("notice k: attachment file name \"{}…\" contains a path separator", "é".repeat(40))
        );
    }

    #[test]
    fn json_carries_the_content_as_base64_and_debug_only_its_size() {
        let attachment = Attachment {
            filename: "APT-00000427.ics".into(),
            content_type: "text/calendar; charset=utf-8".into(),
            content: b"BEGIN:VCALENDAR\r\n\xff".to_vec(),
        };
        let json = serde_json::to_string(&attachment).expect("serialisable");
        assert_eq!(
            json,
            r#"{"filename":"APT-00000427.ics","content_type":"text/calendar; charset=utf-8","content_base64":"QkVHSU46VkNBTEVOREFSDQr/"}"#
        );
        assert_eq!(serde_json::from_str::<Attachment>(&json).expect("deserialisable"), attachment);
        let bad = r#"{"filename":"a","content_type":"text/plain","content_base64":"not base64!"}"#;
        assert!(serde_json::from_str::<Attachment>(bad).is_err());
        assert_eq!(
            format!("{attachment:?}"),
            "Attachment { filename: \"APT-00000427.ics\", content_type: \"text/calendar; charset=utf-8\", \
             content: <18 bytes> }"
        );
    }
}
