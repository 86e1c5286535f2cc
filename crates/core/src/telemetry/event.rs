//! Device events as they arrive: one JSON object per line (NDJSON).
//!
//! `{"device_id": "...", "state": "offline | online", "at": "RFC 3339", "reason": "dying_gasp"}`.
//! Fields other than these four are ignored, so a provider can send what its telemetry
//! already carries. A line that cannot be read is refused with the reason, and the caller
//! adds where it was (a file's line number, a batch's index).

use jiff::Timestamp;
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// The longest device id accepted, in bytes.
pub const DEVICE_ID_LEN_MAX: usize = 128;
/// The longest `reason` accepted, in bytes.
pub const REASON_LEN_MAX: usize = 64;
/// The longest event line accepted, in bytes (after which the line is refused unread).
pub const EVENT_LINE_BYTES_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceState {
    Online,
    Offline,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Online => "online",
            DeviceState::Offline => "offline",
        }
    }
}

/// One report from one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub device_id: String,
    pub state: DeviceState,
    pub at: Timestamp,
    /// A device's last message before it lost power (`dying_gasp` from an ONT or modem,
    /// `last_gasp` from a meter): the outage is certain, so no hold-down applies.
    pub last_gasp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    device_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

impl DeviceEvent {
    /// Reads one event from its JSON text.
    pub fn parse(line: &str) -> Result<DeviceEvent, EventError> {
        if line.len() > EVENT_LINE_BYTES_MAX {
            return Err(EventError(format!("the line is over {EVENT_LINE_BYTES_MAX} bytes")));
        }
        let raw: RawEvent<'_> =
            serde_json::from_str(line).map_err(|e| EventError(format!("not an event object: {e}")))?;
        let device_id = raw.device_id.ok_or_else(|| EventError("`device_id` is missing".into()))?;
        if device_id.is_empty() || device_id.len() > DEVICE_ID_LEN_MAX {
            return Err(EventError(format!("`device_id` must be 1 to {DEVICE_ID_LEN_MAX} bytes")));
        }
        let state = match raw.state.as_deref() {
            Some("offline") => DeviceState::Offline,
            Some("online") => DeviceState::Online,
            Some(other) => {
                return Err(EventError(format!("`state` is {other:?}; expected \"offline\" or \"online\"")));
            }
            None => return Err(EventError("`state` is missing".into())),
        };
        let at = raw.at.ok_or_else(|| EventError("`at` is missing".into()))?;
        let at: Timestamp =
            at.parse().map_err(|e| EventError(format!("`at` {at:?} is not an RFC 3339 instant: {e}")))?;
        let last_gasp = match raw.reason.as_deref() {
            None => false,
            Some(r) if r.len() > REASON_LEN_MAX => {
                return Err(EventError(format!("`reason` is over {REASON_LEN_MAX} bytes")));
            }
            Some(r) => matches!(r, "dying_gasp" | "last_gasp"),
        };
        Ok(DeviceEvent { device_id: device_id.into_owned(), state, at, last_gasp })
    }
}

impl fmt::Display for DeviceEvent {
    /// The event as one NDJSON line, the format `parse` reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{\"device_id\":{},\"state\":\"{}\",\"at\":\"{}\"",
            Json(&self.device_id),
            self.state.as_str(),
            self.at
        )?;
        if self.last_gasp {
            f.write_str(",\"reason\":\"dying_gasp\"")?;
        }
        f.write_str("}")
    }
}

/// A string as a JSON string literal.
struct Json<'a>(&'a str);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self.0).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_event_and_ignores_other_fields() {
        let e = DeviceEvent::parse(
            r#"{"device_id":"M-1","state":"offline","at":"2026-03-01T10:00:00Z","reason":"dying_gasp","snr":31}"#,
        )
        .unwrap();
        assert_eq!(e.device_id, "M-1");
        assert_eq!(e.state, DeviceState::Offline);
        assert!(e.last_gasp);
        assert_eq!(DeviceEvent::parse(&e.to_string()).unwrap(), e);
        let e =
            DeviceEvent::parse(r#"{"device_id":"M-2","state":"online","at":"2026-03-01T10:00:00+01:00"}"#)
                .unwrap();
        assert_eq!(e.at.to_string(), "2026-03-01T09:00:00Z");
        assert!(!e.last_gasp);
    }

    #[test]
    fn says_what_is_wrong() {
        let cases = [
            (r#"{"state":"offline","at":"2026-03-01T10:00:00Z"}"#, "`device_id` is missing"),
            (r#"{"device_id":"M","state":"down","at":"2026-03-01T10:00:00Z"}"#, "`state` is \"down\""),
            (r#"{"device_id":"M","state":"online","at":"yesterday"}"#, "`at` \"yesterday\" is not"),
            (r#"{"device_id":"M","state":"online"}"#, "`at` is missing"),
            (r#"["M"]"#, "not an event object"),
            (r#"{"device_id":"","state":"online","at":"2026-03-01T10:00:00Z"}"#, "`device_id` must be"),
        ];
        for (line, want) in cases {
            let got = DeviceEvent::parse(line).unwrap_err().0;
            assert!(got.contains(want), "{line}: {got}");
        }
        assert!(DeviceEvent::parse(&"x".repeat(EVENT_LINE_BYTES_MAX + 1)).unwrap_err().0.contains("over"));
    }
}
