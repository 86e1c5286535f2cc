//! Fan-out: one timeline entry becomes one rendered notice per affected customer.
//!
//! Rendering is CPU work spread over every core; writing is in batches of at most
//! [`FANOUT_BATCH_ROWS`] (`[delivery] fanout_batch_rows`, that by default), so memory
//! stays bounded however large the incident. Keys are
//! deterministic, so a fan-out cut short by a crash is simply run again: notices already
//! queued are left as they are, and the entry is marked done only after its last batch.

use super::audience::{PreferenceMap, Routing, route};
use super::{Engine, EngineError, join};
use crate::book::LoadedBook;
use amends_core::book::{Customer, Locale};
use amends_core::incident::{Told, UpdateKind};
use amends_core::notice::{
    NoticeContext, NoticeKind, Rendered, TemplateError, TemplateForm, Templates, notice_key,
};
use amends_core::preferences::{Channel, Preferences, Topic};
use amends_store::{IncidentRow, NoticeRow, NoticeStatus, UpdateRow};
use jiff::Timestamp;
use minijinja::context;
use minijinja::value::{Serde, Value, merge_maps};
use std::collections::HashMap;
use std::sync::Arc;

/// Notices rendered and written per batch: the default and the most `[delivery]
/// fanout_batch_rows` may set.
pub const FANOUT_BATCH_ROWS: usize = 50_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FanoutReport {
    /// Timeline entries fanned out.
    pub updates: u64,
    /// Notices newly written to the outbox.
    pub notices_queued: u64,
    /// Affected customers with neither an email nor a phone number.
    pub without_contact: u64,
    /// Customers who chose none of their channels for the notice's topic: recorded as
    /// suppressed for consent, not sent.
    pub declined: u64,
    /// Timeline entries whose fan-out failed this pass (logged; retried on the next).
    pub failed: u64,
    /// Queued notices superseded by a later one to the same customer and channel.
    pub coalesced: u64,
    /// Queued updates over the per-customer cap.
    pub capped: u64,
    /// Timeline entries that only moved the estimate by less than the threshold.
    pub minor_etr_changes: u64,
}

impl std::ops::AddAssign for FanoutReport {
    fn add_assign(&mut self, o: Self) {
        self.updates += o.updates;
        self.notices_queued += o.notices_queued;
        self.without_contact += o.without_contact;
        self.declined += o.declined;
        self.failed += o.failed;
        self.coalesced += o.coalesced;
        self.capped += o.capped;
        self.minor_etr_changes += o.minor_etr_changes;
    }
}

pub(crate) use amends_core::notice::Instants;

/// One kind of notice for many customers: what they share.
pub(crate) struct Batch<'a> {
    pub kind: NoticeKind,
    pub seq: i64,
    pub incident_id: &'a str,
    pub base: NoticeContext,
    pub instants: Instants,
    pub now: Timestamp,
}

impl Engine {
    /// Fans out every timeline entry that is not yet fanned out, oldest first. An entry
    /// that fails is logged and retried on the next pass; the later entries of its
    /// incident wait for it (customers hear an incident's news in order), other incidents
    /// go on.
    pub async fn fan_out(&self) -> Result<FanoutReport, EngineError> {
        let pending = self.store.pending_fanout().await?;
        let mut report = FanoutReport::default();
        if pending.is_empty() {
            return Ok(report);
        }
        let book = self.book().await?;
        let mut stalled = std::collections::HashSet::new();
        for update in pending {
            if stalled.contains(&update.incident_id) {
                continue;
            }
            match self.fan_out_entry(&book, &update).await {
                Ok(done) => report += done,
                Err(error) => {
                    tracing::error!(incident = %update.incident_id, seq = update.seq, %error, "fan-out failed; retrying next pass");
                    report.failed += 1;
                    stalled.insert(update.incident_id.clone());
                }
            }
        }
        Ok(report)
    }

    async fn fan_out_entry(
        &self,
        book: &Arc<LoadedBook>,
        update: &UpdateRow,
    ) -> Result<FanoutReport, EngineError> {
        let incident = self.incident(&update.incident_id).await?;
        let timeline = self.store.updates(&update.incident_id).await?;
        let previous = timeline.iter().rev().find(|u| u.seq < update.seq);
        let mut report = if is_minor_etr_change(previous, update, self.config.etr_change_min) {
            FanoutReport { updates: 1, minor_etr_changes: 1, ..FanoutReport::default() }
        } else {
            self.fan_out_update(book, &incident, &timeline, update).await?
        };
        if update.seq > 0 {
            let volume = self
                .store
                .control_volume(&update.incident_id, self.config.updates_cap, self.clock.now())
                .await?;
            report.coalesced += volume.coalesced;
            report.capped += volume.capped;
        }
        self.store.mark_fanned_out(&update.incident_id, update.seq).await?;
        Ok(report)
    }

    async fn fan_out_update(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        timeline: &[UpdateRow],
        update: &UpdateRow,
    ) -> Result<FanoutReport, EngineError> {
        if self.telemetry_source(&incident.incident_id).await?.is_some() {
            return self.fan_out_detected(book, incident, timeline, update).await;
        }
        let kind = match UpdateKind::parse(&update.kind) {
            Some(UpdateKind::Declared) => NoticeKind::Acknowledgement,
            Some(UpdateKind::Resolved) => NoticeKind::Restored,
            Some(UpdateKind::Detected | UpdateKind::Merged) => {
                return Ok(FanoutReport { updates: 1, ..FanoutReport::default() });
            }
            _ => NoticeKind::Update,
        };
        let affected = book.affected(&book.element_indices(&incident.element_ids));
        self.fan_out_to(book, incident, timeline, update, kind, affected).await
    }

    /// Renders and queues the notice of one timeline entry for `customers`.
    pub(crate) async fn fan_out_to(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        timeline: &[UpdateRow],
        update: &UpdateRow,
        kind: NoticeKind,
        customers: Vec<u32>,
    ) -> Result<FanoutReport, EngineError> {
        let previous = timeline.iter().rev().find(|u| u.seq < update.seq);
        let earlier =
            timeline.iter().filter(|u| u.seq < update.seq).filter_map(|u| UpdateKind::parse(&u.kind));
        // The update the cap lets through last promises the restoration notice only, even
        // if the operator set a time for the next word: no word could come by then.
        let last_update = kind == NoticeKind::Update && self.pacing().is_last(Told::count(earlier).updates);
        let batch = Batch {
            kind,
            seq: update.seq,
            incident_id: &incident.incident_id,
            base: NoticeContext {
                update_kind: update.kind.clone(),
                message: update.message.clone(),
                messages: update.messages.clone(),
                state: update.state.as_str().into(),
                etr_changed: previous.is_some_and(|p| p.etr != update.etr),
                last_update,
                ..self.incident_context(incident)
            },
            instants: Instants {
                etr: update.etr,
                previous_etr: previous.and_then(|p| p.etr),
                next_update_by: update.next_update_by.filter(|_| !last_update),
                previous_next_update_by: previous.and_then(|p| p.next_update_by),
                outage_start: Some(incident.started_at),
                restored_at: incident.resolved_at,
            },
            now: self.clock.now(),
        };
        let customers: Vec<(u32, ())> = customers.into_iter().map(|c| (c, ())).collect();
        self.render_and_queue(book, &batch, customers, |_, _| Value::UNDEFINED).await
    }

    /// The parts of a notice's context that come from the incident alone.
    pub(crate) fn incident_context(&self, incident: &IncidentRow) -> NoticeContext {
        NoticeContext {
            provider_name: self.config.provider_name.clone(),
            incident_id: incident.incident_id.clone(),
            cause: incident.cause.clone(),
            causes: incident.causes.clone(),
            state: incident.state.as_str().into(),
            status_url: format!("{}/{}", self.config.status_url.trim_end_matches('/'), incident.incident_id),
            ..NoticeContext::default()
        }
    }

    /// Renders `batch` for each of a few customers (at most a fan-out batch), without
    /// writing: the caller queues the notices of many batches in one write (`queue_rows`).
    /// Returns the notices and how many customers had no way to be reached.
    pub(crate) async fn render_rows<T: Send + Sync + 'static>(
        &self,
        book: &Arc<LoadedBook>,
        batch: &Batch<'_>,
        customers: Vec<(u32, T)>,
        fill: Fill<T>,
    ) -> Result<(Vec<NoticeRow>, u64), EngineError> {
        debug_assert!(customers.len() <= self.config.fanout_batch_rows);
        let shared = self.shared_batch(batch).await?;
        let (book, templates) = (book.clone(), self.templates.clone());
        let rendered = tokio::task::spawn_blocking(move || {
            render_parallel(&templates, &book, &shared, &customers, fill)
        });
        Ok(rendered.await.map_err(join)??)
    }

    /// Writes rendered notices: those to send, then those declined (no consent), each in
    /// one transaction per fan-out batch (`fanout_batch_rows`). The two kinds are split in
    /// place and written slice by slice: a batch is tens of thousands of notices of some
    /// 400 bytes each, and copying them into new vectors cost the threads that serve pages
    /// their time, in copies and in faults on fresh memory.
    pub(crate) async fn queue_rows(&self, mut rows: Vec<NoticeRow>) -> Result<FanoutReport, EngineError> {
        let mut report = FanoutReport::default();
        let size = self.config.fanout_batch_rows.max(1);
        let split = split_in_place(&mut rows, |n| n.status == NoticeStatus::Queued);
        let (queued, declined) = rows.split_at(split);
        let (mut queued, mut declined) = (queued.chunks(size), declined.chunks(size));
        loop {
            let (to_send, not_to_send) = (queued.next(), declined.next());
            if to_send.is_none() && not_to_send.is_none() {
                break;
            }
            if let Some(chunk) = to_send {
                report.notices_queued += self.store.enqueue_notices(chunk).await?;
            }
            if let Some(chunk) = not_to_send {
                report.declined += self.store.enqueue_notices(chunk).await?;
            }
            crate::failpoint::pass(crate::failpoint::FANOUT_BATCH, 1);
        }
        Ok(report)
    }

    /// What every notice of `batch` shares, with the preferences as they stand.
    async fn shared_batch(&self, batch: &Batch<'_>) -> Result<Arc<SharedBatch>, EngineError> {
        Ok(Arc::new(SharedBatch {
            kind: batch.kind,
            topic: Topic::of(batch.kind, batch.base.etr_changed),
            preferences: self.preferences().await?,
            webhook: self.config.webhook,
            seq: batch.seq,
            incident_id: batch.incident_id.to_string(),
            base: Value::from(Serde(&batch.base)),
            languages: NoticeContext {
                causes: batch.base.causes.clone(),
                messages: batch.base.messages.clone(),
                ..NoticeContext::default()
            },
            instants: batch.instants,
            now: batch.now,
            policies: self.policies.clone(),
            page_links: self.page_links().await?,
        }))
    }

    /// Renders `batch` for each customer (with `fill` giving what is theirs alone) on every
    /// core, and writes the notices in bounded batches. Rendering the next batch overlaps
    /// writing this one, so the slower of the two sets the pace, not their sum.
    pub(crate) async fn render_and_queue<T: Send + Sync + 'static>(
        &self,
        book: &Arc<LoadedBook>,
        batch: &Batch<'_>,
        customers: Vec<(u32, T)>,
        fill: Fill<T>,
    ) -> Result<FanoutReport, EngineError> {
        let mut report = FanoutReport { updates: 1, ..FanoutReport::default() };
        let shared = self.shared_batch(batch).await?;
        self.progress
            .start(format!("{}: queuing {} notices", batch.incident_id, batch.kind), customers.len() as u64);
        let customers = Arc::new(customers);
        let size = self.config.fanout_batch_rows;
        let render = |start: usize| {
            let end = (start + size).min(customers.len());
            let (book, templates, shared, customers) =
                (book.clone(), self.templates.clone(), shared.clone(), customers.clone());
            tokio::task::spawn_blocking(move || {
                render_parallel(&templates, &book, &shared, &customers[start..end], fill)
            })
        };
        let mut next = (!customers.is_empty()).then(|| render(0));
        let mut start = 0;
        while let Some(rendering) = next.take() {
            let (rows, without_contact) = rendering.await.map_err(join)??;
            start += size;
            if start < customers.len() {
                next = Some(render(start));
            }
            report.without_contact += without_contact;
            report += self.queue_rows(rows).await?;
            self.progress.advance((customers.len() - (start - size)).min(size) as u64);
        }
        Ok(report)
    }
}

/// An operator's update that only moves the estimate, by less than `min`, is not news:
/// no notice goes out (the status page still shows it).
fn is_minor_etr_change(previous: Option<&UpdateRow>, update: &UpdateRow, min: jiff::SignedDuration) -> bool {
    let Some(previous) = previous else { return false };
    let (Some(before), Some(after)) = (previous.etr, update.etr) else { return false };
    update.kind == "update"
        && update.message.trim().is_empty()
        && update.state == previous.state
        && before.duration_since(after).abs() < min
}

/// What a notice says to one customer alone, as a template context layer.
pub(crate) type Fill<T> = fn(&T, &Locale) -> Value;

struct SharedBatch {
    kind: NoticeKind,
    /// What the customer's preferences are asked about.
    topic: Topic,
    preferences: Arc<PreferenceMap>,
    /// Whether the webhook channel is on (it feeds the provider's own app).
    webhook: bool,
    seq: i64,
    incident_id: String,
    /// The batch's shared context, converted to a template value once.
    base: Value,
    /// The operator's text in other languages (the rest of it is empty).
    languages: NoticeContext,
    instants: Instants,
    now: Timestamp,
    /// Whose outage credits are paid without a claim: what a notice may promise.
    policies: amends_core::policy::PolicySet,
    /// Signs each customer's link to their own page (`page_url` in every notice).
    page_links: crate::optout::PageLinks,
}

/// Notices rendered on the calling thread rather than on threads of their own: a few
/// customers' notices (a case, a visit, a customer's own form) are answered at the
/// caller's priority, not the bulk work's.
const RENDER_INLINE_MAX: usize = 64;

/// Splits the customers over the available cores, on threads that yield to pages being
/// served (`amends_store::background`).
fn render_parallel<T: Sync>(
    templates: &Templates,
    book: &LoadedBook,
    batch: &SharedBatch,
    customers: &[(u32, T)],
    fill: Fill<T>,
) -> Result<(Vec<NoticeRow>, u64), TemplateError> {
    if customers.len() <= RENDER_INLINE_MAX {
        return render_chunk(templates, book, batch, customers, fill);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = customers.len().div_ceil(threads).max(1);
    let parts: Vec<Result<(Vec<NoticeRow>, u64), TemplateError>> = std::thread::scope(|s| {
        let handles: Vec<_> = customers
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    amends_store::background::lower_this_thread();
                    render_chunk(templates, book, batch, part, fill)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let parts = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
    // Joined into a vector of exactly their size: one copy, never a second as it grows.
    let mut rows = Vec::with_capacity(parts.iter().map(|(r, _)| r.len()).sum());
    let mut without_contact = 0;
    for (r, w) in parts {
        rows.extend(r);
        without_contact += w;
    }
    Ok((rows, without_contact))
}

/// Moves the items for which `first` holds before the others, in place, and returns how
/// many there are. The order within each side is not kept (a fan-out's notices have keys
/// of their own, and are written in the order of their keys).
fn split_in_place<T>(items: &mut [T], first: impl Fn(&T) -> bool) -> usize {
    let mut split = 0;
    for i in 0..items.len() {
        if first(&items[i]) {
            items.swap(split, i);
            split += 1;
        }
    }
    split
}

/// What the notice may promise this customer about a credit: that it comes without a
/// claim (every policy that applies to them pays outages automatically), and that they
/// will be told its amount (a credit notice would reach them). Whether policies pay
/// automatically is looked up once per (segment, jurisdiction, plan) in `automatic`: a
/// fan-out to a million customers meets a handful of them.
fn promises<'a>(
    batch: &SharedBatch,
    customer: &'a Customer,
    prefs: &Preferences,
    automatic: &mut HashMap<(&'a str, &'a str, &'a str), bool>,
) -> Value {
    let jurisdiction = customer.jurisdiction.as_ref().map_or("", |j| j.as_str());
    let key = (customer.segment.as_str(), jurisdiction, customer.plan_id.as_str());
    let automatic = *automatic
        .entry(key)
        .or_insert_with(|| batch.policies.pays_outages_automatically(key.0, key.1, key.2));
    let credit = Topic::of(NoticeKind::Credit, false);
    let told = matches!(route(customer, prefs, credit, batch.webhook, batch.now), Routing::Send(_));
    context! { credit_automatic => automatic, credit_told => told }
}

/// Each notice's context is three layers, a later one winning over an earlier one: what
/// the whole batch shares (converted once), the batch's instants as the customer's zone
/// and locale show them (computed once per zone and locale), and what is the customer's
/// alone. Each customer gets one notice per channel their preferences choose for the
/// batch's topic (see [`super::audience`]).
fn render_chunk<T>(
    templates: &Templates,
    book: &LoadedBook,
    batch: &SharedBatch,
    customers: &[(u32, T)],
    fill: Fill<T>,
) -> Result<(Vec<NoticeRow>, u64), TemplateError> {
    let mut times: HashMap<(u32, &str), Value> = HashMap::new();
    let mut automatic = HashMap::new();
    let mut names: HashMap<(&str, TemplateForm), String> = HashMap::new();
    let defaults = Preferences::default();
    let mut rows = Vec::with_capacity(customers.len());
    let mut without_contact = 0;
    for (c, extra) in customers {
        let customer = &book.customers[*c as usize];
        let prefs = batch.preferences.get(customer.id.as_str()).unwrap_or(&defaults);
        let routes = match route(customer, prefs, batch.topic, batch.webhook, batch.now) {
            Routing::NoContact => {
                without_contact += 1;
                continue;
            }
            Routing::Declined { channel, recipient } => {
                rows.push(declined(batch, customer, channel, recipient));
                continue;
            }
            Routing::Send(routes) => routes,
        };
        // The language they chose on their page or through the API, else the book's.
        let language = prefs.language_or(&customer.locale);
        let locale = language.as_str();
        let local = times.entry((book.customer_zone[*c as usize], locale)).or_insert_with(|| {
            let instants = formatted_instants(&batch.instants, batch.now, &customer.zone.tz, language);
            merge_maps([instants, batch.languages.in_language(language)])
        });
        let ctx = merge_maps([
            batch.base.clone(),
            local.clone(),
            context! {
                customer_name => customer.name.as_str(),
                page_url => batch.page_links.link(&customer.id, batch.now),
                ..merge_maps([promises(batch, customer, prefs, &mut automatic), fill(extra, language)])
            },
        ]);
        for r in routes {
            let form = if r.channel == Channel::Sms { TemplateForm::Sms } else { TemplateForm::Full };
            let name = match names.get(&(locale, form)) {
                Some(name) => name,
                None => {
                    names.entry((locale, form)).or_insert(templates.resolve_for(batch.kind, form, language)?)
                }
            };
            let rendered = templates.render_named(name, ctx.clone())?;
            let mut row = queued(batch, customer, r.channel, r.recipient, rendered);
            row.locale = locale.into();
            if let Some(until) = r.held_until {
                row.next_attempt_at = until;
                row.reason = Some("quiet_hours".into());
            }
            rows.push(row);
        }
    }
    Ok((rows, without_contact))
}

/// A notice ready to go on `channel`.
fn queued(
    batch: &SharedBatch,
    customer: &Customer,
    channel: Channel,
    recipient: String,
    rendered: Rendered,
) -> NoticeRow {
    NoticeRow {
        key: notice_key(&customer.id, &batch.incident_id, batch.kind, batch.seq, channel.as_str()),
        customer_id: customer.id.clone(),
        about: batch.incident_id.clone(),
        kind: batch.kind.as_str().into(),
        seq: batch.seq,
        channel,
        recipient,
        locale: customer.locale.as_str().into(),
        subject: rendered.subject,
        body: rendered.body,
        status: NoticeStatus::Queued,
        attempts: 0,
        next_attempt_at: batch.now,
        last_error: None,
        created_at: batch.now,
        sent_at: None,
        reason: None,
        provider_id: None,
        content_sha256: None,
    }
}

/// The record of a notice the customer chose not to get on any channel they have:
/// suppressed for consent, with nothing rendered.
fn declined(batch: &SharedBatch, customer: &Customer, channel: Channel, recipient: String) -> NoticeRow {
    let nothing = Rendered { subject: String::new(), body: String::new() };
    NoticeRow {
        status: NoticeStatus::Suppressed,
        reason: Some("consent".into()),
        ..queued(batch, customer, channel, recipient, nothing)
    }
}

/// The batch's instants as one zone and locale read them.
pub(crate) fn formatted_instants(
    i: &Instants,
    now: Timestamp,
    tz: &jiff::tz::TimeZone,
    locale: &amends_core::book::Locale,
) -> Value {
    Value::from(minijinja::value::Serde(i.written(now, tz, locale)))
}

impl Engine {
    /// Renders and queues one notice of `kind` about `about` (a visit, a cancellation, a
    /// survey) to one customer, keyed `<customer>/<about>/<kind>/0/<channel>`: the one
    /// way a feature other than an incident's timeline queues a notice. `customer` is an
    /// index into `book`, the book the caller looked them up in: reading it again could
    /// find an import in between, and someone else at that index.
    pub(crate) async fn queue_one(
        &self,
        book: &Arc<LoadedBook>,
        kind: NoticeKind,
        about: &str,
        base: NoticeContext,
        customer: u32,
    ) -> Result<u64, EngineError> {
        let batch = Batch {
            kind,
            seq: 0,
            incident_id: about,
            base,
            instants: Instants::default(),
            now: self.clock.now(),
        };
        let report =
            self.render_and_queue(book, &batch, vec![(customer, ())], |_, _| Value::UNDEFINED).await?;
        Ok(report.notices_queued)
    }
}

#[cfg(test)]
mod tests {
    use super::split_in_place;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_split_puts_every_match_first_and_loses_nothing(items in proptest::collection::vec(0u8..10, 0..200)) {
            let mut split = items.clone();
            let first = |n: &u8| n.is_multiple_of(3);
            let at = split_in_place(&mut split, first);
            prop_assert!(split[..at].iter().all(first));
            prop_assert!(!split[at..].iter().any(first));
            let (mut given, mut kept) = (items, split);
            given.sort_unstable();
            kept.sort_unstable();
            prop_assert_eq!(given, kept);
        }
    }
}
