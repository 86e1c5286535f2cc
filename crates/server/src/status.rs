//! The public status page: what every notice links to (`{status_url}/{incident}`), and the
//! list of open and recently resolved incidents at `/status`, with a JSON twin at
//! `/status.json`.
//!
//! It names areas (an element's name and kind), never a customer or an address, and counts
//! customers only roughly ([`rounded_count`]). Each page is written in the reader's language
//! (`?lang=`, else `Accept-Language`; English, Spanish, French, German or Portuguese, the
//! languages of the notices that link here: see `words`) and time zone (`?tz=`, UTC by
//! default, shown on the page and changeable there), with the operator's cause and updates
//! in that language where they gave one.
//!
//! Under a storm everyone opens it at once, so it is served from a [`Snapshot`] rebuilt at
//! most once per [`SNAPSHOT_MAX_AGE`] of the engine's clock (never per request), with an `ETag` over what the
//! page shows so a reload that finds nothing new costs a 304. Without JavaScript, a reload
//! is how it updates.

use super::AppState;
use super::pages;
use super::words::{self, Lang, pick, state_word};
use amends_core::book::Locale;
use amends_core::incident::{ByLocale, IncidentState, for_locale};
use amends_store::{IncidentRow, UpdateRow};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// How stale the snapshot may be: the page is live to within this.
pub const SNAPSHOT_MAX_AGE: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);
/// How far back resolved incidents are listed.
pub const RESOLVED_SHOWN_DAYS: i64 = 90;
/// Incidents listed in each section; the rest are counted.
pub const INCIDENTS_LISTED_MAX: usize = 200;

/// The status as one moment saw it, shared by every request until it is rebuilt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    #[schema(value_type = String, format = DateTime)]
    pub built_at: Timestamp,
    pub open: Vec<IncidentStatus>,
    /// Open incidents beyond [`INCIDENTS_LISTED_MAX`], not listed.
    pub open_unlisted: usize,
    /// Customers affected by the open incidents, rounded ([`rounded_count`]).
    pub customers_affected: Count,
    pub resolved: Vec<IncidentStatus>,
}

/// One incident as the public sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentStatus {
    pub id: String,
    pub areas: Vec<Area>,
    /// `detected`, `acknowledged`, `identified`, `monitoring` or `resolved`.
    #[schema(value_type = String)]
    pub state: IncidentState,
    pub cause: String,
    /// The cause in other languages (locale tag -> text).
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub causes: ByLocale,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub etr: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_update_by: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    pub customers_affected: Count,
    /// Newest first.
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Area {
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub kind: String,
    #[schema(value_type = String)]
    pub state: IncidentState,
    pub message: String,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub messages: ByLocale,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub etr: Option<Timestamp>,
}

/// A number of customers as the public may read it: exact only as a bound under 10, then
/// to the nearest 10 under 100, 100 under 10,000, and 1,000 above, so no count points at
/// a household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Count {
    /// Fewer than ten: no number is given.
    pub fewer_than_ten: bool,
    /// The rounded number, from ten up.
    pub about: Option<u64>,
}

impl Count {
    const FEWER_THAN_TEN: Count = Count { fewer_than_ten: true, about: None };

    fn about(n: u64) -> Count {
        Count { fewer_than_ten: false, about: Some(n) }
    }
}

pub fn rounded_count(n: usize) -> Count {
    let n = n as u64;
    let to = |step: u64| (n + step / 2) / step * step;
    match n {
        0..10 => Count::FEWER_THAN_TEN,
        10..100 => Count::about(to(10)),
        100..10_000 => Count::about(to(100)),
        _ => Count::about(to(1_000)),
    }
}

/// The snapshot and when it was built, rebuilt when older than [`SNAPSHOT_MAX_AGE`]. A
/// fresh snapshot is read without waiting; one request rebuilds a stale one while the
/// others wait for it, so a storm of readers costs one build a second.
#[derive(Default)]
pub struct StatusCache {
    current: std::sync::RwLock<Option<Arc<Published>>>,
    /// Held by the request rebuilding the snapshot.
    rebuilding: tokio::sync::Mutex<()>,
}

/// Rendered pages kept with each snapshot, at most (by language, zone and incident).
pub const RENDERED_PAGES_MAX: usize = 256;
/// The longest rendered page kept: 256 of them are 64 MiB at the very most.
pub const RENDERED_PAGE_BYTES_MAX: usize = 256 * 1024;

/// A snapshot with what every request would otherwise work out again: the key of its
/// content (for the `ETag`s), its JSON, and its pages as rendered.
struct Published {
    snapshot: Snapshot,
    /// A digest of what the pages show, not of when it was built: a rebuild that finds
    /// nothing new keeps every `ETag`.
    content_key: String,
    json: axum::body::Bytes,
    /// When it was built by this process's own clock: a server run with a clock held
    /// still (`--now`) still sees an update within a second.
    built: std::time::Instant,
    /// Its pages as rendered, by language, zone and incident: under a storm each is
    /// written once a snapshot, not once a request.
    rendered: std::sync::Mutex<std::collections::HashMap<String, axum::body::Bytes>>,
}

impl Published {
    fn of(snapshot: Snapshot) -> Self {
        let content = serde_json::json!({
            "open": snapshot.open, "open_unlisted": snapshot.open_unlisted,
            "customers_affected": snapshot.customers_affected, "resolved": snapshot.resolved,
        });
        let content_key = hex::encode(Sha256::digest(content.to_string().as_bytes()));
        let json = serde_json::to_vec(&snapshot).unwrap_or_default().into();
        let rendered = Default::default();
        Published { snapshot, content_key, json, built: std::time::Instant::now(), rendered }
    }

    /// Whether it may still be served at `now` by the engine's clock. A clock set back (a
    /// test's, or `--now`) rebuilds too.
    fn is_fresh(&self, now: Timestamp) -> bool {
        (self.snapshot.built_at..self.snapshot.built_at + SNAPSHOT_MAX_AGE).contains(&now)
            && self.built.elapsed() < SNAPSHOT_MAX_AGE.unsigned_abs()
    }

    /// The page kept under `address`, else `render`ed and kept (while there is room).
    fn page(&self, address: &str, render: impl FnOnce() -> String) -> axum::body::Bytes {
        let kept =
            |rendered: &std::collections::HashMap<_, axum::body::Bytes>| rendered.get(address).cloned();
        if let Some(body) = kept(&self.rendered.lock().unwrap_or_else(|e| e.into_inner())) {
            return body;
        }
        let body = axum::body::Bytes::from(render());
        let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if rendered.len() < RENDERED_PAGES_MAX && body.len() <= RENDERED_PAGE_BYTES_MAX {
            rendered.insert(address.to_string(), body.clone());
        }
        body
    }
}

impl StatusCache {
    /// The key of what the status pages show now (see [`Published::content_key`]): it
    /// changes with any update, declaration or restoration.
    pub(crate) async fn content_key(&self, state: &AppState) -> Result<String, super::error::ApiError> {
        Ok(self.published(state).await?.content_key.clone())
    }

    async fn published(&self, state: &AppState) -> Result<Arc<Published>, super::error::ApiError> {
        let now = state.engine.clock().now();
        if let Some(published) = self.fresh(now) {
            return Ok(published);
        }
        let _rebuilding = self.rebuilding.lock().await;
        // Rebuilt by another request while this one waited.
        if let Some(published) = self.fresh(now) {
            return Ok(published);
        }
        let published = Arc::new(Published::of(build(state).await?));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(published.clone());
        Ok(published)
    }

    fn fresh(&self, now: Timestamp) -> Option<Arc<Published>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|published| published.is_fresh(now)).cloned()
    }
}

async fn build(state: &AppState) -> Result<Snapshot, super::error::ApiError> {
    let engine = &state.engine;
    let now = engine.clock().now();
    let book = engine.book().await?;
    let incidents = engine.store().incidents(false).await.map_err(amends_recovery::EngineError::from)?;
    let since = now - jiff::SignedDuration::from_hours(24 * RESOLVED_SHOWN_DAYS);
    let (mut open, mut resolved): (Vec<IncidentRow>, Vec<IncidentRow>) = incidents
        .into_iter()
        .filter(|i| i.resolved_at.is_none_or(|r| r >= since))
        .partition(|i| i.resolved_at.is_none());
    open.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| a.incident_id.cmp(&b.incident_id)));
    resolved
        .sort_by(|a, b| b.resolved_at.cmp(&a.resolved_at).then_with(|| a.incident_id.cmp(&b.incident_id)));
    let open_unlisted = open.len().saturating_sub(INCIDENTS_LISTED_MAX);
    let mut affected_open = 0;
    let mut view = |row: &IncidentRow| -> Result<IncidentStatus, super::error::ApiError> {
        let elements = book.element_indices(&row.element_ids);
        let affected = book.affected(&elements).len();
        if row.resolved_at.is_none() {
            affected_open += affected;
        }
        let areas = elements
            .iter()
            .map(|&e| {
                let element = book.topology.element(e);
                Area { name: element.name.clone(), kind: element.kind.clone() }
            })
            .collect();
        Ok(IncidentStatus {
            id: row.incident_id.to_string(),
            areas,
            state: row.state,
            cause: row.cause.clone(),
            causes: row.causes.clone(),
            started_at: row.started_at,
            etr: row.etr,
            next_update_by: row.next_update_by,
            resolved_at: row.resolved_at,
            customers_affected: rounded_count(affected),
            timeline: Vec::new(),
        })
    };
    let mut listed_open = Vec::new();
    for row in &open {
        // Every open incident counts towards the summary; only the first are listed.
        let status = view(row)?;
        if listed_open.len() < INCIDENTS_LISTED_MAX {
            listed_open.push(status);
        }
    }
    let mut listed_resolved = Vec::new();
    for row in resolved.iter().take(INCIDENTS_LISTED_MAX) {
        listed_resolved.push(view(row)?);
    }
    for status in listed_open.iter_mut().chain(listed_resolved.iter_mut()) {
        let updates = engine.store().updates(&status.id).await.map_err(amends_recovery::EngineError::from)?;
        status.timeline = timeline(&updates);
    }
    Ok(Snapshot {
        built_at: now,
        open: listed_open,
        open_unlisted,
        customers_affected: rounded_count(affected_open),
        resolved: listed_resolved,
    })
}

/// The updates the public reads, newest first: not the machine's own bookkeeping.
fn timeline(updates: &[UpdateRow]) -> Vec<TimelineEntry> {
    updates
        .iter()
        .rev()
        .filter(|u| !matches!(u.kind.as_str(), "merged"))
        .map(|u| TimelineEntry {
            at: u.at,
            kind: u.kind.clone(),
            state: u.state,
            message: u.message.clone(),
            messages: u.messages.clone(),
            etr: u.etr,
        })
        .collect()
}

/// `?lang=` and `?tz=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Reader {
    /// `en`, `es`, `fr`, `de` or `pt`; otherwise the first of `Accept-Language` the page is
    /// written in, else English.
    pub lang: Option<String>,
    /// An IANA time zone (`Europe/Madrid`) the times are written in; UTC by default.
    pub tz: Option<String>,
}

/// The reader's language (see `words::reader_language`).
fn language(reader: &Reader, headers: &HeaderMap) -> Lang {
    words::reader_language(reader.lang.as_deref(), headers)
}

/// The reader's zone: `?tz=` when it names one (IANA), else UTC.
fn zone(reader: &Reader) -> (String, TimeZone) {
    reader
        .tz
        .as_deref()
        .and_then(|name| TimeZone::get(name.trim()).ok().map(|tz| (canonical(&tz, name.trim()), tz)))
        .unwrap_or_else(|| ("UTC".to_string(), TimeZone::UTC))
}

/// The zone's own IANA name (`Europe/Madrid` for `europe/MADRID`): one name a zone, so
/// the pages kept by language and zone are at most one per real zone.
fn canonical(tz: &TimeZone, asked: &str) -> String {
    tz.iana_name().unwrap_or(asked).to_string()
}

/// `GET /status`: every open incident, then the recently resolved ones.
#[utoipa::path(get, path = "/status", tag = "status", params(Reader),
    responses(
        (status = 200, description = "The status page", content_type = "text/html", body = String),
        (status = 304, description = "Unchanged since the `ETag` given in `If-None-Match`"),
    ))]
pub async fn status_page(
    State(state): State<AppState>,
    Query(reader): Query<Reader>,
    headers: HeaderMap,
) -> Result<Response, super::error::ApiError> {
    let published = state.status.published(&state).await?;
    Ok(page(&published, None, &reader, &headers))
}

/// `GET /status/{incident}`: one incident, as every notice about it links.
#[utoipa::path(get, path = "/status/{id}", tag = "status",
    params(("id" = String, Path, description = "The incident", example = "INC-000001"), Reader),
    responses(
        (status = 200, description = "The incident's page", content_type = "text/html", body = String),
        (status = 304, description = "Unchanged since the `ETag` given in `If-None-Match`"),
        (status = 404, description = "No such incident, or resolved over 90 days ago (a page)", content_type = "text/html", body = String),
    ))]
pub async fn incident_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(reader): Query<Reader>,
    headers: HeaderMap,
) -> Result<Response, super::error::ApiError> {
    let published = state.status.published(&state).await?;
    Ok(page(&published, Some(&id), &reader, &headers))
}

/// `GET /status.json`: the snapshot as it stands, for machines.
#[utoipa::path(get, path = "/status.json", tag = "status",
    responses(
        (status = 200, description = "Open and recently resolved incidents", body = Snapshot),
        (status = 304, description = "Unchanged since the `ETag` given in `If-None-Match`"),
    ))]
pub async fn status_json(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, super::error::ApiError> {
    let published = state.status.published(&state).await?;
    let etag = etag(published.content_key.as_bytes(), "json");
    if not_modified(&headers, &etag) {
        return Ok(unchanged(&etag));
    }
    let body = published.json.clone();
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    cache_headers(response.headers_mut(), &etag);
    Ok(response)
}

/// How often an event stream looks at the snapshot (rebuilt at most once a second).
pub const EVENTS_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long one event stream lasts; the browser then reconnects on its own. It bounds how
/// long a connection is held, and lets a graceful shutdown finish.
pub const EVENTS_STREAM_MAX: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// `GET /status/events`: server-sent events, one `status` event now and one whenever what
/// the status pages show changes (its data: a key of that content). The pages' script
/// fetches the page again on a change; a client without it reloads. Only a client that
/// asks for a stream (`Accept: text/event-stream`, as every `EventSource` does) is kept
/// listening; any other gets the one event and the end.
#[utoipa::path(get, path = "/status/events", tag = "status",
    responses((status = 200, description = "`event: status` with the content's key, on connecting and, for `Accept: text/event-stream`, on every change",
        content_type = "text/event-stream", body = String)))]
pub async fn status_events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let listening = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"));
    let started = std::time::Instant::now();
    let stream = futures_util::stream::unfold((state, None::<String>), move |(state, last)| async move {
        loop {
            if started.elapsed() >= EVENTS_STREAM_MAX || (!listening && last.is_some()) {
                return None;
            }
            if let Ok(published) = state.status.published(&state).await
                && last.as_deref() != Some(published.content_key.as_str())
            {
                let key = published.content_key.clone();
                let event = Event::default().event("status").data(key.clone());
                return Some((Ok(event), (state, Some(key))));
            }
            tokio::time::sleep(EVENTS_CHECK_EVERY).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /status.atom`: every update of the listed incidents as an Atom feed (RFC 4287),
/// newest first, in the reader's language (`?lang=`, else `Accept-Language`), each entry
/// linking to the incident's page. A feed reader polls it with `If-None-Match`.
#[utoipa::path(get, path = "/status.atom", tag = "status", params(Reader),
    responses(
        (status = 200, description = "The updates as an Atom feed", content_type = "application/atom+xml", body = String),
        (status = 304, description = "Unchanged since the `ETag` given in `If-None-Match`"),
    ))]
pub async fn status_atom(
    State(state): State<AppState>,
    Query(reader): Query<Reader>,
    headers: HeaderMap,
) -> Result<Response, super::error::ApiError> {
    let published = state.status.published(&state).await?;
    let lang = language(&reader, &headers);
    let etag = etag(format!("{lang}|{}", published.content_key).as_bytes(), "atom");
    if not_modified(&headers, &etag) {
        return Ok(unchanged(&etag));
    }
    let base = state.engine.config().status_url.trim_end_matches('/').to_string();
    let body = atom(&published.snapshot, lang, &base);
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], body)
            .into_response();
    cache_headers(response.headers_mut(), &etag);
    Ok(response)
}

/// Entries in the feed, newest first; older updates are on the incidents' pages.
pub const FEED_ENTRIES_MAX: usize = 100;

/// The feed's XML: one entry per update of every listed incident, newest first.
fn atom(snapshot: &Snapshot, lang: Lang, base: &str) -> String {
    let words = page_words(lang);
    let mut entries: Vec<(&IncidentStatus, &TimelineEntry)> = snapshot
        .open
        .iter()
        .chain(&snapshot.resolved)
        .flat_map(|i| i.timeline.iter().map(move |u| (i, u)))
        .collect();
    entries.sort_by(|a, b| (b.1.at, &b.0.id).cmp(&(a.1.at, &a.0.id)));
    entries.truncate(FEED_ENTRIES_MAX);
    let updated = entries.first().map_or(snapshot.built_at, |(_, u)| u.at);
    let locale = locale_of(lang);
    let title = words.get_attr("title").ok().map(|v| v.to_string()).unwrap_or_default();
    let mut xml = String::with_capacity(512 + entries.len() * 512);
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    xml.push_str(&format!("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{lang}\">\n"));
    xml.push_str(&format!("<id>{}</id>\n<title>{}</title>\n", escape(base), escape(&title)));
    xml.push_str(&format!(
        "<link rel=\"alternate\" type=\"text/html\" href=\"{}?lang={lang}\"/>\n",
        escape(base)
    ));
    xml.push_str(&format!(
        "<updated>{}</updated>\n<author><name>{}</name></author>\n",
        rfc3339(updated),
        escape(&title)
    ));
    for (incident, update) in entries {
        let areas: Vec<String> = incident.areas.iter().map(|a| a.name.clone()).collect();
        let link = format!("{base}/{}", incident.id);
        let message = for_locale(&update.messages, &locale).unwrap_or(&update.message);
        let cause = for_locale(&incident.causes, &locale).unwrap_or(&incident.cause);
        xml.push_str("<entry>\n");
        xml.push_str(&format!("<id>{}#{}</id>\n", escape(&link), update.at.as_second()));
        xml.push_str(&format!(
            "<title>{}: {}</title>\n",
            escape(&areas.join(", ")),
            escape(state_word(lang, update.state))
        ));
        xml.push_str(&format!("<updated>{}</updated>\n", rfc3339(update.at)));
        xml.push_str(&format!(
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}?lang={lang}\"/>\n",
            escape(&link)
        ));
        let summary = if message.is_empty() { cause.to_string() } else { format!("{cause}. {message}") };
        xml.push_str(&format!("<summary>{}</summary>\n</entry>\n", escape(&summary)));
    }
    xml.push_str("</feed>\n");
    xml
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Text and attribute values made safe for XML (the same escaping as the emails' HTML).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    amends_channels::html::escape_into(text, &mut out);
    out
}

fn page(published: &Published, only: Option<&str>, reader: &Reader, headers: &HeaderMap) -> Response {
    let snapshot = &published.snapshot;
    let lang = language(reader, headers);
    let (zone_name, tz) = zone(reader);
    let found = only.is_none_or(|id| snapshot.open.iter().chain(&snapshot.resolved).any(|i| i.id == id));
    // Before anything is written: a reload that finds nothing new costs no rendering.
    let address = format!("{lang}|{zone_name}|{}", only.unwrap_or(""));
    let etag = etag(format!("{address}|{}", published.content_key).as_bytes(), "html");
    if found && not_modified(headers, &etag) {
        return unchanged(&etag);
    }
    let write_page = || rendered(snapshot, only, lang, &zone_name, &tz, found);
    // Only pages that exist are kept: a made-up incident cannot fill the store.
    let body = match found {
        true => published.page(&address, write_page),
        false => write_page().into(),
    };
    let status = if found { StatusCode::OK } else { StatusCode::NOT_FOUND };
    let mut response = pages::respond(status, body, true);
    cache_headers(response.headers_mut(), &etag);
    response
}

/// The status page (`only` one incident, if given) written in `lang` and `tz`.
fn rendered(
    snapshot: &Snapshot,
    only: Option<&str>,
    lang: Lang,
    zone_name: &str,
    tz: &TimeZone,
    found: bool,
) -> String {
    let locale = locale_of(lang);
    let languages = words::languages(lang);
    let words = page_words(lang);
    let write = |t: Timestamp| amends_core::cldr::instant(t, tz, &locale);
    let incident = |i: &IncidentStatus| {
        minijinja::context! {
            id => i.id.clone(),
            areas => i.areas.iter().map(|a| format!("{} ({})", a.name, a.kind)).collect::<Vec<_>>(),
            state => state_word(lang, i.state),
            cause => for_locale(&i.causes, &locale).unwrap_or(&i.cause),
            started_at => write(i.started_at),
            etr => i.etr.map(write),
            next_update_by => i.next_update_by.map(write),
            resolved_at => i.resolved_at.map(write),
            customers => count_words(lang, i.customers_affected),
            timeline => i.timeline.iter().map(|u| minijinja::context! {
                at => write(u.at),
                state => state_word(lang, u.state),
                message => for_locale(&u.messages, &locale).unwrap_or(&u.message),
                etr => u.etr.map(write),
            }).collect::<Vec<_>>(),
        }
    };
    let (open, resolved): (Vec<_>, Vec<_>) = match only {
        Some(id) => (
            snapshot.open.iter().filter(|i| i.id == id).map(incident).collect(),
            snapshot.resolved.iter().filter(|i| i.id == id).map(incident).collect(),
        ),
        None => {
            (snapshot.open.iter().map(incident).collect(), snapshot.resolved.iter().map(incident).collect())
        }
    };
    let title = match only {
        Some(id) => format!("{} · {id}", words.get_attr("title").map(|t| t.to_string()).unwrap_or_default()),
        None => words.get_attr("title").map(|t| t.to_string()).unwrap_or_default(),
    };
    let ctx = minijinja::context! {
        title, lang, words, languages, zone => zone_name, only,
        open, resolved, found,
        open_unlisted => snapshot.open_unlisted,
        summary => summary_words(lang, snapshot.open.len() + snapshot.open_unlisted, snapshot.customers_affected),
        as_of => write(snapshot.built_at),
    };
    pages::status_html(ctx)
}

fn etag(body: &[u8], kind: &str) -> String {
    let digest = Sha256::digest(body);
    format!("\"{kind}-{}\"", hex::encode(&digest[..12]))
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn unchanged(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    cache_headers(response.headers_mut(), etag);
    response
}

/// Any cache may keep it, and must ask again before using it (`no-cache`): the `ETag`
/// makes asking cheap.
fn cache_headers(headers: &mut HeaderMap, etag: &str) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
}

/// The locale a page's dates and numbers are written in: its language's.
fn locale_of(lang: Lang) -> Locale {
    Locale::parse(lang.tag()).unwrap_or_else(|_| Locale::parse("en").expect("en is a locale"))
}

/// The page's own words in `lang`.
fn page_words(lang: Lang) -> minijinja::Value {
    let w = |phrase: [&'static str; 5]| pick(lang, phrase);
    minijinja::context! {
        title => w(["Service status", "Estado del servicio", "État du service", "Dienststatus", "Estado do serviço"]),
        all_well => w([
            "All services are running normally.",
            "Todos los servicios funcionan con normalidad.",
            "Tous les services fonctionnent normalement.",
            "Alle Dienste laufen normal.",
            "Todos os serviços funcionam normalmente.",
        ]),
        open => w(["Open incidents", "Averías en curso", "Pannes en cours", "Aktuelle Störungen", "Falhas em curso"]),
        resolved => w([
            "Resolved in the last 90 days",
            "Resueltas en los últimos 90 días",
            "Résolues ces 90 derniers jours",
            "In den letzten 90 Tagen behoben",
            "Resolvidas nos últimos 90 dias",
        ]),
        area => w(["Area", "Zona", "Secteur", "Gebiet", "Zona"]),
        state => w(["Status", "Estado", "État", "Status", "Estado"]),
        started => w(words::STARTED),
        etr => w(words::ETR),
        next_update => w(words::NEXT_UPDATE),
        resolved_at => w(["Resolved", "Resuelta", "Résolue", "Behoben", "Resolvida"]),
        customers => w(["Customers affected", "Clientes afectados", "Clients touchés", "Betroffene Kunden", "Clientes afetados"]),
        times_in => w(words::TIMES_IN),
        change => w(["Change", "Cambiar", "Changer", "Ändern", "Alterar"]),
        not_found => w([
            "We know of no such incident, or it was resolved more than 90 days ago.",
            "No conocemos esa avería, o se resolvió hace más de 90 días.",
            "Nous ne connaissons pas cette panne, ou elle a été résolue il y a plus de 90 jours.",
            "Diese Störung kennen wir nicht, oder sie wurde vor mehr als 90 Tagen behoben.",
            "Não conhecemos essa falha, ou foi resolvida há mais de 90 dias.",
        ]),
        all_incidents => w(["All incidents", "Todas las averías", "Toutes les pannes", "Alle Störungen", "Todas as falhas"]),
        language => w(words::LANGUAGE),
        zone_label => w([
            "Time zone (IANA)",
            "Zona horaria (IANA)",
            "Fuseau horaire (IANA)",
            "Zeitzone (IANA)",
            "Fuso horário (IANA)",
        ]),
        as_of => w(["As of", "Actualizado", "Mis à jour", "Stand", "Atualizado"]),
        updates => w(["Updates", "Novedades", "Mises à jour", "Neuigkeiten", "Novidades"]),
    }
}

/// A rounded count of customers in words.
fn count_words(lang: Lang, count: Count) -> String {
    match count.about {
        None => pick(lang, ["fewer than 10", "menos de 10", "moins de 10", "weniger als 10", "menos de 10"])
            .into(),
        Some(n) => {
            let about = pick(lang, ["about", "unos", "environ", "etwa", "cerca de"]);
            format!("{about} {}", amends_core::cldr::decimal(n, 0, &locale_of(lang)))
        }
    }
}

/// The line over the open incidents: how many (one in the singular), and roughly how many
/// customers they affect.
fn summary_words(lang: Lang, open: usize, customers: Count) -> String {
    let incidents = if open == 1 {
        pick(
            lang,
            ["open incident", "avería en curso", "panne en cours", "aktuelle Störung", "falha em curso"],
        )
    } else {
        pick(
            lang,
            [
                "open incidents",
                "averías en curso",
                "pannes en cours",
                "aktuelle Störungen",
                "falhas em curso",
            ],
        )
    };
    let affected = pick(
        lang,
        [
            "; customers affected: ",
            "; clientes afectados: ",
            " ; clients touchés : ",
            "; betroffene Kunden: ",
            "; clientes afetados: ",
        ],
    );
    format!("{open} {incidents}{affected}{}.", count_words(lang, customers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_in_the_reader_s_words_one_incident_in_the_singular() {
        let many = Count::about(1_200);
        assert_eq!(summary_words(Lang::En, 1, many), "1 open incident; customers affected: about 1,200.");
        assert_eq!(summary_words(Lang::De, 2, many), "2 aktuelle Störungen; betroffene Kunden: etwa 1.200.");
        assert_eq!(
            summary_words(Lang::Pt, 1, Count::FEWER_THAN_TEN),
            "1 falha em curso; clientes afetados: menos de 10."
        );
        assert_eq!(
            summary_words(Lang::Fr, 3, Count::FEWER_THAN_TEN),
            "3 pannes en cours ; clients touchés : moins de 10."
        );
    }

    fn empty_snapshot() -> Published {
        Published::of(Snapshot {
            built_at: Timestamp::UNIX_EPOCH,
            open: Vec::new(),
            open_unlisted: 0,
            customers_affected: Count::FEWER_THAN_TEN,
            resolved: Vec::new(),
        })
    }

    #[test]
    fn a_snapshot_writes_each_page_once_and_keeps_a_bounded_number() {
        let published = empty_snapshot();
        let writes = std::cell::Cell::new(0);
        let write = |text: &str| {
            writes.set(writes.get() + 1);
            text.to_string()
        };
        assert_eq!(published.page("en|UTC|", || write("first")), "first");
        assert_eq!(published.page("en|UTC|", || write("second")), "first");
        assert_eq!(writes.get(), 1);
        for n in 1..RENDERED_PAGES_MAX + 10 {
            published.page(&format!("en|zone {n}|"), || write("other"));
        }
        assert_eq!(published.rendered.lock().unwrap().len(), RENDERED_PAGES_MAX);
        let huge = "x".repeat(RENDERED_PAGE_BYTES_MAX + 1);
        let fresh = empty_snapshot();
        fresh.page("de|UTC|", || huge.clone());
        assert!(fresh.rendered.lock().unwrap().is_empty(), "a page over the bound is sent, not kept");
    }

    #[test]
    fn a_zone_is_kept_under_its_own_name_however_it_is_asked_for() {
        let asked = |tz: &str| zone(&Reader { lang: None, tz: Some(tz.into()) }).0;
        assert_eq!(asked("europe/MADRID"), "Europe/Madrid");
        assert_eq!(asked(" Europe/Madrid "), "Europe/Madrid");
        assert_eq!(asked("Mars/Olympus"), "UTC");
    }

    #[test]
    fn a_snapshot_is_fresh_for_a_second_of_the_engine_s_clock() {
        let published = empty_snapshot();
        assert!(published.is_fresh(Timestamp::UNIX_EPOCH));
        assert!(published.is_fresh(Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_millis(999)));
        assert!(!published.is_fresh(Timestamp::UNIX_EPOCH + SNAPSHOT_MAX_AGE));
        assert!(!published.is_fresh(Timestamp::UNIX_EPOCH - jiff::SignedDuration::from_millis(1)));
    }

    #[test]
    fn counts_are_rounded_so_none_points_at_a_household() {
        assert_eq!(rounded_count(0), Count::FEWER_THAN_TEN);
        assert_eq!(rounded_count(9), Count::FEWER_THAN_TEN);
        assert_eq!(rounded_count(10), Count::about(10));
        assert_eq!(rounded_count(44), Count::about(40));
        assert_eq!(rounded_count(45), Count::about(50));
        assert_eq!(rounded_count(149), Count::about(100));
        assert_eq!(rounded_count(8_244), Count::about(8_200));
        assert_eq!(rounded_count(979_640), Count::about(980_000));
    }

    #[test]
    fn the_language_is_the_query_s_then_the_browser_s_then_english() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("de-DE,fr-CA;q=0.8,en;q=0.5"));
        assert_eq!(language(&Reader::default(), &headers), Lang::De);
        let portuguese = Reader { lang: Some("pt".into()), tz: None };
        assert_eq!(language(&portuguese, &headers), Lang::Pt);
        let klingon = Reader { lang: Some("tlh".into()), tz: None };
        assert_eq!(language(&klingon, &HeaderMap::new()), Lang::En);
        assert_eq!(zone(&Reader { lang: None, tz: Some("Europe/Madrid".into()) }).0, "Europe/Madrid");
        assert_eq!(zone(&Reader { lang: None, tz: Some("Mars/Olympus".into()) }).0, "UTC");
    }
}
