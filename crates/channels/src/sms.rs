//! SMS through an HTTP gateway: one configurable URL, credentials, and the request and
//! answer shapes of common gateways as presets.

use std::collections::BTreeMap;
use std::fmt;

use amends_core::sms::{Encoding, Language, Segments, segments_with};
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::http::{self, quote, read_bounded, redact_query, shown, status_error, transport_error};
use crate::{OutgoingMessage, SendError, Sent, Transport, expect_channel};

/// The longest sender ID gateways accept when it is a name rather than a number, in
/// characters (a GSM 03.40 alphanumeric originator).
const ALPHANUMERIC_SENDER_MAX: usize = 11;
/// Digits in an E.164 number, country code included (ITU-T E.164).
const E164_DIGITS_MIN: usize = 2;
const E164_DIGITS_MAX: usize = 15;
/// The most segments a budget may allow: Twilio refuses bodies over 1600 characters, about
/// ten GSM-7 segments, and few handsets reassemble more.
const SEGMENTS_MAX_LIMIT: u32 = 10;
/// Vonage's `client-ref` is at most this many characters; longer keys are not sent there.
const VONAGE_CLIENT_REF_MAX: usize = 100;

/// The request and answer shapes of the gateways amends knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsPreset {
    /// Twilio's Messages resource (`.../2010-04-01/Accounts/{sid}/Messages.json`): form POST
    /// `To`, `From`, `Body`; HTTP basic auth with the account SID as `username` and the auth
    /// token as `password`; a 2xx answer is JSON with the message `sid`. 408, 429 and 5xx
    /// are transient, any other status permanent.
    Twilio,
    /// Vonage's SMS API (`https://rest.nexmo.com/sms/json`): form POST `api_key`
    /// (`username`), `api_secret` (`password`), `from`, `to` (E.164 without the `+`), `text`,
    /// `type=unicode` when the text needs UCS-2, and `client-ref` (the notice key). Vonage
    /// answers 200 with a status per part; see [`vonage_status_is_transient`].
    Vonage,
    /// A JSON POST `{"to", "from", "text", "reference"}` (reference: the notice key), with
    /// an optional bearer `token` or basic `username`/`password`; a 2xx answer is JSON
    /// `{"id": ...}`.
    GenericJson,
    /// The same fields as [`SmsPreset::GenericJson`], form-encoded.
    GenericForm,
}

/// How to reach the SMS gateway. Deserialisable so it can sit in the settings file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsGatewayConfig {
    /// The full endpoint, e.g. Twilio's URL with the account SID in its path.
    pub url: String,
    pub preset: SmsPreset,
    /// The sender: an E.164 number (`+14155550100`) or an alphanumeric sender ID of at
    /// most 11 letters, digits and spaces (`Amends`), where the destination country allows.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A bearer token (generic presets only).
    #[serde(default)]
    pub token: Option<String>,
    /// Limit on the whole exchange (connect, request, answer), in milliseconds.
    #[serde(default = "SmsGatewayConfig::default_timeout_ms")]
    pub timeout_ms: u64,
    /// How many segments each notice kind may take.
    #[serde(default)]
    pub segments_max: SegmentBudget,
    /// The GSM-7 national language single shift tables the gateway sends (`spanish`,
    /// `portuguese`, `turkish`; 3GPP TS 23.038): a Spanish text with á í ó ú then stays in
    /// GSM-7 (155 septets, 149 a part) instead of UCS-2 (70, 67). Empty by default: say
    /// only what the gateway does, or texts are counted shorter than they are sent.
    #[serde(default)]
    pub shift_tables: Vec<Language>,
}

impl SmsGatewayConfig {
    fn default_timeout_ms() -> u64 {
        10_000
    }
}

/// Never prints the password or token, nor a query string (which may carry a key).
impl fmt::Debug for SmsGatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("SmsGatewayConfig")
            .field("url", &redact_query(&self.url))
            .field("preset", &self.preset)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("token", &redacted(&self.token))
            .field("timeout_ms", &self.timeout_ms)
            .field("segments_max", &self.segments_max)
            .finish()
    }
}

/// How many segments a notice of each kind may take. A longer text is refused (permanently:
/// it would be as long on every retry) rather than cut, since a cut notice may lose the
/// very line that matters; the templates must be shortened instead.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentBudget {
    /// For kinds not listed in `kinds`. Default 4: 612 GSM-7 septets, or 268 UCS-2 units
    /// (one character outside GSM-7, a `ç` or `ë`, is enough to need UCS-2). The built-in
    /// SMS templates render to 120 to 360 characters, so one `ç` in a long update must
    /// still fit; a refused essential notice costs more than a fourth segment.
    pub default: u32,
    /// Per notice kind (`acknowledgement`, `update`, `restored`, `credit`, `still_down`).
    pub kinds: BTreeMap<String, u32>,
}

impl Default for SegmentBudget {
    fn default() -> Self {
        Self { default: 4, kinds: BTreeMap::new() }
    }
}

/// A text over its kind's [`SegmentBudget`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "sms for kind {kind:?} takes {} segments ({:?}, {} units), over its budget of {max}",
    counted.segments, counted.encoding, counted.units
)]
pub struct OverBudget {
    pub kind: String,
    pub counted: Segments,
    pub max: u32,
}

impl SegmentBudget {
    /// The most segments a notice of `kind` may take.
    pub fn max_for(&self, kind: &str) -> u32 {
        self.kinds.get(kind).copied().unwrap_or(self.default)
    }

    /// Counts `text` as a gateway with the `shifts` tables sends it, and checks it against
    /// the budget of `kind`. Also usable before a notice is queued, to refuse a template
    /// that renders too long.
    pub fn check(&self, kind: &str, text: &str, shifts: &[Language]) -> Result<Segments, OverBudget> {
        let counted = segments_with(text, shifts);
        let max = self.max_for(kind);
        if counted.segments <= max {
            Ok(counted)
        } else {
            Err(OverBudget { kind: kind.to_owned(), counted, max })
        }
    }

    /// Every budget from 1 to [`SEGMENTS_MAX_LIMIT`]; the error names the kind at fault.
    fn validate(&self) -> Result<(), SmsConfigError> {
        let entries = std::iter::once(("default", self.default))
            .chain(self.kinds.iter().map(|(k, v)| (k.as_str(), *v)));
        for (kind, max) in entries {
            if !(1..=SEGMENTS_MAX_LIMIT).contains(&max) {
                return Err(SmsConfigError::SegmentsMax { kind: kind.to_owned(), max });
            }
        }
        Ok(())
    }
}

/// A configuration that cannot work, naming the field at fault. Never shows a secret.
#[derive(Debug, thiserror::Error)]
pub enum SmsConfigError {
    #[error("sms url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(
        "sms from {from:?}: expected an E.164 number (+14155550100) or up to 11 letters, digits and spaces"
    )]
    From { from: String },
    #[error("sms {field}: {reason}")]
    Credentials { field: &'static str, reason: String },
    #[error("sms timeout_ms must be at least 1")]
    TimeoutMs,
    #[error("sms segments_max.{kind} is {max}, expected 1 to 10")]
    SegmentsMax { kind: String, max: u32 },
    #[error("sms http client: {reason}")]
    Client { reason: String },
}

/// How the transport proves who it is to the gateway.
enum Auth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

/// Sends SMS through one gateway. See [`SmsPreset`] for the shapes, [`SegmentBudget`] for
/// the length limit. Recipients must be E.164 numbers (`+` and 2 to 15 digits); anything
/// else is refused permanently before a request is made.
///
/// Attachments are ignored, whatever they hold: an SMS cannot carry them (MMS is another
/// service), and the text of a notice that has one must stand on its own. They are not
/// checked against the bounds either, since nothing of them is sent.
///
/// A 2xx answer whose body is not what the gateway documents ("garbage") is transient: the
/// gateway is misbehaving and may recover. The message may have been accepted anyway, so a
/// retry can duplicate it; the generic presets send the notice key as `reference` and
/// Vonage as `client-ref` so the gateway can drop the duplicate.
pub struct SmsTransport {
    client: Client,
    url: Url,
    preset: SmsPreset,
    from: String,
    auth: Auth,
    budget: SegmentBudget,
    shifts: Vec<Language>,
}

impl fmt::Debug for SmsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsTransport")
            .field("url", &shown(&self.url))
            .field("preset", &self.preset)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmsTransport {
    /// Checks the configuration (the error names the field) and builds the HTTP client.
    /// No request is made until the first send.
    pub fn new(config: SmsGatewayConfig) -> Result<Self, SmsConfigError> {
        let url = http::parse_url(&config.url)
            .map_err(|reason| SmsConfigError::Url { url: redact_query(&config.url), reason })?;
        if !is_e164(&config.from) && !is_alphanumeric_sender(&config.from) {
            return Err(SmsConfigError::From { from: config.from });
        }
        if config.timeout_ms == 0 {
            return Err(SmsConfigError::TimeoutMs);
        }
        config.segments_max.validate()?;
        let auth = auth_for(&config)?;
        let client = http::client(config.timeout_ms).map_err(|reason| SmsConfigError::Client { reason })?;
        Ok(Self {
            client,
            url,
            preset: config.preset,
            from: config.from,
            auth,
            budget: config.segments_max,
            shifts: config.shift_tables,
        })
    }

    /// The request for one text, shaped for the preset.
    fn request(&self, key: &str, to: &str, text: &str, encoding: Encoding) -> RequestBuilder {
        let post = self.client.post(self.url.clone());
        let generic = GenericRequest { to, from: &self.from, text, reference: key };
        match self.preset {
            SmsPreset::Twilio => {
                self.authorised(post).form(&[("To", to), ("From", &self.from), ("Body", text)])
            }
            // Vonage takes its credentials as form fields, not as a header.
            SmsPreset::Vonage => post.form(&self.vonage_fields(key, to, text, encoding)),
            SmsPreset::GenericJson => self.authorised(post).json(&generic),
            SmsPreset::GenericForm => self.authorised(post).form(&generic),
        }
    }

    fn authorised(&self, post: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::None => post,
            Auth::Basic { username, password } => post.basic_auth(username, Some(password)),
            Auth::Bearer(token) => post.bearer_auth(token),
        }
    }

    /// Vonage takes numbers without the `+`, its key and secret as form fields, and must
    /// be told about UCS-2 (`type=unicode`) or it mangles the characters GSM-7 lacks.
    fn vonage_fields<'a>(
        &'a self,
        key: &'a str,
        to: &'a str,
        text: &'a str,
        encoding: Encoding,
    ) -> Vec<(&'a str, &'a str)> {
        let mut fields = Vec::with_capacity(7);
        if let Auth::Basic { username, password } = &self.auth {
            fields.extend([("api_key", username.as_str()), ("api_secret", password.as_str())]);
        }
        fields.extend([
            ("from", self.from.strip_prefix('+').unwrap_or(&self.from)),
            ("to", to.strip_prefix('+').unwrap_or(to)),
            ("text", text),
        ]);
        if encoding == Encoding::Ucs2 {
            fields.push(("type", "unicode"));
        }
        if key.chars().count() <= VONAGE_CLIENT_REF_MAX {
            fields.push(("client-ref", key));
        }
        fields
    }

    /// Reads the gateway's answer into a provider id or a sorted failure.
    fn outcome(&self, what: &str, status: StatusCode, body: &[u8]) -> Result<Sent, SendError> {
        if !status.is_success() {
            return Err(status_error(what, status, body));
        }
        let (field, expected) = match self.preset {
            SmsPreset::Vonage => return vonage_outcome(what, body),
            SmsPreset::Twilio => ("sid", "JSON with a \"sid\""),
            SmsPreset::GenericJson | SmsPreset::GenericForm => ("id", "JSON with an \"id\""),
        };
        match string_field(body, field) {
            Some(id) => Ok(Sent { provider_id: Some(id) }),
            None => Err(garbage(what, status, expected, body)),
        }
    }

    /// The text to send and its size, or why this message can never be sent: not an SMS,
    /// not an E.164 recipient, empty, or over its kind's budget. The trailing newline a
    /// template leaves is dropped: it would cost a character on the handset.
    fn checked<'a>(&self, message: &'a OutgoingMessage) -> Result<(&'a str, Segments), SendError> {
        expect_channel(message, "sms", "sms")?;
        if !is_e164(&message.recipient) {
            return Err(SendError::Permanent(format!(
                "sms recipient {:?} is not an E.164 number (+ and 2 to 15 digits)",
                message.recipient
            )));
        }
        let text = message.body.trim_end();
        if text.is_empty() {
            return Err(SendError::Permanent(format!("sms text of notice {} is empty", message.key)));
        }
        let counted = self
            .budget
            .check(&message.kind, text, &self.shifts)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        Ok((text, counted))
    }
}

#[async_trait::async_trait]
impl Transport for SmsTransport {
    fn name(&self) -> &'static str {
        "sms"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError> {
        let (text, counted) = self.checked(message)?;
        if !message.attachments.is_empty() {
            tracing::debug!(
                key = %message.key, attachments = message.attachments.len(),
                "sms cannot carry attachments; sending the text alone"
            );
        }
        let what = format!("sms gateway POST to {}", shown(&self.url));
        let request = self.request(&message.key, &message.recipient, text, counted.encoding);
        let response = request.send().await.map_err(|e| transport_error(&what, &e))?;
        let status = response.status();
        let body = read_bounded(response).await.map_err(|e| transport_error(&what, &e))?;
        let sent = self.outcome(&what, status, &body)?;
        tracing::debug!(
            key = %message.key, provider_id = ?sent.provider_id, segments = counted.segments,
            "sms gateway accepted notice"
        );
        Ok(sent)
    }
}

/// The body of the generic presets, as JSON or form fields.
#[derive(Serialize)]
struct GenericRequest<'a> {
    to: &'a str,
    from: &'a str,
    text: &'a str,
    reference: &'a str,
}

/// Checks the credentials the preset needs; the error names the field.
fn auth_for(config: &SmsGatewayConfig) -> Result<Auth, SmsConfigError> {
    let basic = match (&config.username, &config.password) {
        (Some(username), Some(password)) => {
            Some(Auth::Basic { username: username.clone(), password: password.clone() })
        }
        (None, None) => None,
        (Some(_), None) => return Err(credentials("password", "must be set with username")),
        (None, Some(_)) => return Err(credentials("username", "must be set with password")),
    };
    match (config.preset, basic, &config.token) {
        (SmsPreset::Twilio | SmsPreset::Vonage, _, Some(_)) => {
            Err(credentials("token", "is for the generic presets; use username and password"))
        }
        (SmsPreset::Twilio, None, None) => {
            Err(credentials("username", "twilio needs the account SID and auth token"))
        }
        (SmsPreset::Vonage, None, None) => {
            Err(credentials("username", "vonage needs the API key and secret"))
        }
        (_, Some(_), Some(_)) => {
            Err(credentials("token", "set either token or username and password, not both"))
        }
        (_, Some(basic), None) => Ok(basic),
        (_, None, Some(token)) => Ok(Auth::Bearer(token.clone())),
        (_, None, None) => Ok(Auth::None),
    }
}

fn credentials(field: &'static str, reason: &str) -> SmsConfigError {
    SmsConfigError::Credentials { field, reason: reason.to_owned() }
}

/// `+` then 2 to 15 digits, the first not 0.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (E164_DIGITS_MIN..=E164_DIGITS_MAX).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// 1 to 11 ASCII letters, digits and spaces, with at least one letter (an all-digit sender
/// would be read as a number).
fn is_alphanumeric_sender(from: &str) -> bool {
    (1..=ALPHANUMERIC_SENDER_MAX).contains(&from.len())
        && from.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && from.bytes().any(|b| b.is_ascii_alphabetic())
        && from.trim() == from
}

/// A string (or number) field of a JSON object answer, if the answer is one and has it.
fn string_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get(field)? {
        serde_json::Value::String(id) if !id.is_empty() => Some(id.clone()),
        serde_json::Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// A 2xx answer that does not say what the gateway documents: it may have sent the
/// message or not; retrying is the safer guess (see [`SmsTransport`]).
fn garbage(what: &str, status: StatusCode, expected: &str, body: &[u8]) -> SendError {
    SendError::Transient(format!("{what} answered {status} but not with {expected}: {}", quote(body)))
}

#[derive(Deserialize)]
struct VonageAnswer {
    messages: Vec<VonagePart>,
}

#[derive(Deserialize)]
struct VonagePart {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

/// Vonage answers 200 with one entry per part of a long text. All parts must have status
/// `"0"`; the first failing part decides the error. The first part's id is the provider
/// id (each part has its own; receipts name it with the others in order).
fn vonage_outcome(what: &str, body: &[u8]) -> Result<Sent, SendError> {
    let expected = "JSON with \"messages\"";
    let answer: VonageAnswer =
        serde_json::from_slice(body).map_err(|_| garbage(what, StatusCode::OK, expected, body))?;
    let first = answer.messages.first().ok_or_else(|| garbage(what, StatusCode::OK, expected, body))?;
    if let Some(failed) = answer.messages.iter().find(|part| part.status != "0") {
        let reason = format!(
            "{what}: vonage status {} ({})",
            failed.status,
            failed.error_text.as_deref().unwrap_or("no error-text")
        );
        return Err(if vonage_status_is_transient(&failed.status) {
            SendError::Transient(reason)
        } else {
            SendError::Permanent(reason)
        });
    }
    match &first.message_id {
        Some(id) if !id.is_empty() => Ok(Sent { provider_id: Some(id.clone()) }),
        _ => Err(garbage(what, StatusCode::OK, "a \"message-id\"", body)),
    }
}

/// Vonage's SMS API status codes whose documented resolution is to retry: 1 Throttled
/// (sending faster than the account limit), 5 Internal Error (in Vonage's platform; "if
/// the error persists, contact support"), 9 Partner Quota Violation (no credit: "top-up
/// and retry", so notices sent while an operator tops up are not lost) and 10 Too Many
/// Existing Binds ("back-off and retry"). Every other non-zero status (missing or invalid
/// parameters, bad credentials, barred number, invalid sender, ...) is permanent.
pub fn vonage_status_is_transient(status: &str) -> bool {
    matches!(status, "1" | "5" | "9" | "10")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(preset: SmsPreset) -> SmsGatewayConfig {
        SmsGatewayConfig {
            url: "https://gw.example/send".into(),
            preset,
            from: "+14155550100".into(),
            username: Some("AC123".into()),
            password: Some("s3cret".into()),
            token: None,
            timeout_ms: 1_000,
            segments_max: SegmentBudget::default(),
            shift_tables: Vec::new(),
        }
    }

    fn check_error(config: SmsGatewayConfig, expected: &str) {
        match SmsTransport::new(config) {
            Ok(_) => panic!("expected error {expected}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }

    #[test]
    fn config_errors_name_the_field() {
        use SmsPreset::*;
        check_error(
            SmsGatewayConfig { url: "gw.example".into(), ..config(Twilio) },
            "sms url \"gw.example\": relative URL without a base",
        );
        check_error(
            SmsGatewayConfig { from: "Amends Status Page".into(), ..config(Twilio) },
            "sms from \"Amends Status Page\": expected an E.164 number (+14155550100) or up to 11 letters, digits and spaces",
        );
        check_error(
            SmsGatewayConfig { timeout_ms: 0, ..config(Twilio) },
            "sms timeout_ms must be at least 1",
        );
        check_error(
            SmsGatewayConfig { password: None, ..config(Twilio) },
            "sms password: must be set with username",
        );
        check_error(
            SmsGatewayConfig { username: None, password: None, ..config(Vonage) },
            "sms username: vonage needs the API key and secret",
        );
        check_error(
            SmsGatewayConfig { token: Some("t".into()), ..config(Twilio) },
            "sms token: is for the generic presets; use username and password",
        );
        check_error(
            SmsGatewayConfig { token: Some("t".into()), ..config(GenericJson) },
            "sms token: set either token or username and password, not both",
        );
        let budget = SegmentBudget { default: 3, kinds: BTreeMap::from([("credit".to_owned(), 0)]) };
        check_error(
            SmsGatewayConfig { segments_max: budget, ..config(GenericJson) },
            "sms segments_max.credit is 0, expected 1 to 10",
        );
        let budget = SegmentBudget { default: 11, kinds: BTreeMap::new() };
        check_error(
            SmsGatewayConfig { segments_max: budget, ..config(GenericJson) },
            "sms segments_max.default is 11, expected 1 to 10",
        );
    }

    #[test]
    fn generic_presets_need_no_credentials() {
        let open = SmsGatewayConfig {
            username: None,
            password: None,
            from: "Amends".into(),
            ..config(SmsPreset::GenericForm)
        };
        assert!(SmsTransport::new(open).is_ok());
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!(
            "{:?}",
            SmsGatewayConfig {
                token: Some("tok3n".into()),
                url: "https://gw.example/?key=k3y".into(),
                ..config(SmsPreset::GenericJson)
            }
        );
        for secret in ["s3cret", "tok3n", "k3y"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("password: Some(\"<redacted>\")"), "{shown}");
    }

    #[test]
    fn numbers_and_senders() {
        for good in ["+14155550100", "+33612345678", "+12"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in ["14155550100", "+0123", "+1", "+1234567890123456", "+1 415 555", "+１２３"] {
            assert!(!is_e164(bad), "{bad}");
        }
        for good in ["Amends", "ISP 24", "A"] {
            assert!(is_alphanumeric_sender(good), "{good}");
        }
        for bad in ["", "123456", "Amends Status", " Amends", "Améndés"] {
            assert!(!is_alphanumeric_sender(bad), "{bad}");
        }
    }

    #[test]
    fn budget_per_kind() {
        let budget = SegmentBudget { default: 1, kinds: BTreeMap::from([("update".to_owned(), 2)]) };
        let text = "a".repeat(200);
        assert!(budget.check("update", &text, &[]).is_ok());
        assert_eq!(
            budget.check("restored", &text, &[]).map_err(|e| e.to_string()),
            Err("sms for kind \"restored\" takes 2 segments (Gsm7, 200 units), over its budget of 1"
                .to_owned())
        );
    }

    /// A Spanish text with its accents is one GSM-7 segment through a gateway with the
    /// Spanish shift table, and two UCS-2 ones through one without (issue 17, item 5).
    #[test]
    fn a_gateway_s_shift_tables_count() {
        let budget = SegmentBudget { default: 1, kinds: BTreeMap::new() };
        let text = "Northwind: la avería está reparada pero su línea sigue sin conexión. Reinicie el router; \
                    si no vuelve, le llamaremos.";
        let shifted = budget.check("still_down", text, &[Language::Spanish]).expect("one segment");
        assert_eq!((shifted.encoding, shifted.segments), (Encoding::Gsm7Shift(Language::Spanish), 1));
        let refused = budget.check("still_down", text, &[]).unwrap_err();
        assert_eq!((refused.counted.encoding, refused.counted.segments), (Encoding::Ucs2, 2));
        let settings: SmsGatewayConfig = serde_json::from_str(
            r#"{"url": "https://gw.example/send", "preset": "twilio", "from": "+14155550100",
                "shift_tables": ["spanish", "portuguese"]}"#,
        )
        .expect("shift tables by name");
        assert_eq!(settings.shift_tables, [Language::Spanish, Language::Portuguese]);
    }

    #[test]
    fn vonage_statuses() {
        for transient in ["1", "5", "9", "10"] {
            assert!(vonage_status_is_transient(transient));
        }
        for permanent in ["2", "3", "4", "6", "7", "8", "11", "12", "14", "15", "22", "29", "33", "x"] {
            assert!(!vonage_status_is_transient(permanent));
        }
    }

    #[test]
    fn deserialises_presets_in_snake_case_with_defaults() {
        let config: SmsGatewayConfig = serde_json::from_str(
            r#"{"url":"https://gw.example","preset":"generic_json","from":"Amends","segments_max":{"kinds":{"credit":4}}}"#,
        )
        .expect("valid");
        assert_eq!(config.preset, SmsPreset::GenericJson);
        assert_eq!(config.timeout_ms, 10_000);
        assert_eq!(config.segments_max.max_for("credit"), 4);
        assert_eq!(config.segments_max.max_for("update"), 4);
        assert!(serde_json::from_str::<SmsPreset>(r#""generic_xml""#).is_err());
    }
}
