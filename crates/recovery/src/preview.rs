//! `amends notices preview`: what one customer reads about one incident. Once the outbox
//! holds notices of the incident for them, that is what it shows, as queued (the words
//! they were, or will be, sent, with each one's status). Before, or for a kind asked for
//! by name that they were not sent, it renders what is recorded now, in every shipped or
//! configured locale, on each channel they can be reached on. Nothing is queued or sent.

use super::fanout::{Instants, formatted_instants};
use super::{Engine, EngineError};
use amends_core::book::Locale;
use amends_core::credit_words::CreditedLine;
use amends_core::incident::UpdateKind;
use amends_core::notice::{NoticeContext, NoticeKind, TemplateForm};
use amends_store::{CreditFilter, IncidentRow, NoticeRow, UpdateRow};
use minijinja::Value;
use minijinja::value::{Serde, merge_maps};

/// One rendering.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    pub kind: String,
    pub locale: String,
    /// `email` or `sms`.
    pub channel: String,
    pub subject: String,
    pub body: String,
    /// The outbox's status of a notice queued for the customer (`sent`, `queued`, ...);
    /// `preview` for a rendering of what they would read.
    pub status: String,
}

/// The status of a rendering that is not in the outbox.
pub const RENDERED: &str = "preview";

impl Engine {
    /// Renders `kinds` (every kind when empty) for the customer and incident in every
    /// locale the templates have, once per channel the customer has a contact point for
    /// (email when they have none, so that there is always something to read). The credit
    /// notice is rendered only once the ledger holds the customer's credit for it.
    pub async fn preview(
        &self,
        customer_id: &str,
        incident_id: &str,
        kinds: &[NoticeKind],
    ) -> Result<Vec<Preview>, EngineError> {
        let book = self.book().await?;
        let c = book.customer_index(customer_id).ok_or_else(|| {
            EngineError::Invalid(vec![format!("customer {customer_id} is not in the book")])
        })?;
        let customer = &book.customers[c as usize];
        let incident = self.incident(incident_id).await?;
        let timeline = self.store.updates(incident_id).await?;
        let credit = self.credit_fields(customer_id, incident_id).await?;
        let channels = channels(customer);
        // Every kind an incident sends (a case's messages are about a case, not an incident).
        let incident_kinds: Vec<NoticeKind> =
            NoticeKind::ALL.into_iter().filter(|k| k.is_incident()).collect();
        let every_kind = kinds.is_empty();
        let kinds = if every_kind { &incident_kinds[..] } else { kinds };
        let queued: Vec<NoticeRow> = self
            .store
            .notices_for_customer(customer_id)
            .await?
            .into_iter()
            .filter(|n| n.about == incident_id)
            .collect();
        if every_kind && !queued.is_empty() {
            // Told already: what they were told, not what other kinds would have said.
            return Ok(queued.iter().map(as_queued).collect());
        }
        let mut out = Vec::new();
        for &kind in kinds {
            let mine: Vec<&NoticeRow> = queued.iter().filter(|n| n.kind == kind.as_str()).collect();
            if !mine.is_empty() {
                out.extend(mine.into_iter().map(as_queued));
                continue;
            }
            if kind == NoticeKind::Credit && credit.is_none() {
                continue;
            }
            let (base, instants) = self.preview_context(&incident, &timeline, kind);
            for locale in self.templates.locales() {
                let locale = Locale::parse(locale).map_err(|e| EngineError::Invalid(vec![e.to_string()]))?;
                let local = formatted_instants(&instants, self.clock.now(), &customer.zone.tz, &locale);
                let credit = credit.as_ref().map(|c| c.fields(&locale)).unwrap_or_default();
                let own = minijinja::context! { customer_name => customer.name.as_str(), ..credit };
                let ctx = merge_maps([Value::from(Serde(&base)), local, base.in_language(&locale), own]);
                for channel in &channels {
                    let form = if *channel == "sms" { TemplateForm::Sms } else { TemplateForm::Full };
                    let name = self.templates.resolve_for(kind, form, &locale)?;
                    let rendered = self.templates.render_named(&name, ctx.clone())?;
                    out.push(Preview {
                        kind: kind.as_str().into(),
                        locale: locale.to_string(),
                        channel: (*channel).into(),
                        subject: rendered.subject,
                        body: rendered.body,
                        status: RENDERED.into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// What a notice of `kind` would share, from the incident and its latest entry.
    fn preview_context(
        &self,
        incident: &IncidentRow,
        timeline: &[UpdateRow],
        kind: NoticeKind,
    ) -> (NoticeContext, Instants) {
        let latest = timeline.last();
        let previous = timeline.len().checked_sub(2).map(|i| &timeline[i]);
        let update_kind = match (kind, latest) {
            (NoticeKind::Update, Some(u)) if UpdateKind::parse(&u.kind).is_some_and(is_update) => {
                u.kind.clone()
            }
            (NoticeKind::Update, _) => UpdateKind::Update.as_str().into(),
            (_, Some(u)) => u.kind.clone(),
            (_, None) => String::new(),
        };
        let base = NoticeContext {
            update_kind,
            message: latest.map(|u| u.message.clone()).unwrap_or_default(),
            messages: latest.map(|u| u.messages.clone()).unwrap_or_default(),
            etr_changed: matches!((latest, previous), (Some(l), Some(p)) if l.etr != p.etr),
            ..self.incident_context(incident)
        };
        let instants = Instants {
            etr: incident.etr,
            previous_etr: previous.and_then(|p| p.etr),
            next_update_by: incident.next_update_by,
            previous_next_update_by: previous.and_then(|p| p.next_update_by),
            outage_start: Some(incident.started_at),
            restored_at: incident.resolved_at.or(Some(self.clock.now())),
        };
        (base, instants)
    }

    /// The customer's credit for the incident from the ledger, if there is one yet.
    async fn credit_fields(
        &self,
        customer_id: &str,
        incident_id: &str,
    ) -> Result<Option<CreditTotal>, EngineError> {
        let filter = CreditFilter {
            customer_id: Some(customer_id.into()),
            source_event: Some(incident_id.into()),
            ..CreditFilter::default()
        };
        let credits = self.store.credits(&filter).await?;
        let Some(first) = credits.first() else { return Ok(None) };
        Ok(Some(CreditTotal {
            total: credits.iter().map(|c| c.amount_minor).sum(),
            currency: first.currency.clone(),
            statement: first.statement.clone(),
            lines: credits.iter().flat_map(|c| CreditedLine::parse_all(&c.lines_json)).collect(),
        }))
    }
}

/// A customer's credit for one incident, every policy's row added up.
struct CreditTotal {
    total: i64,
    currency: String,
    statement: String,
    lines: Vec<CreditedLine>,
}

impl CreditTotal {
    fn fields(&self, locale: &Locale) -> Value {
        super::credits::credit_notice_fields(self.total, &self.currency, &self.statement, &self.lines, locale)
    }
}

fn is_update(kind: UpdateKind) -> bool {
    matches!(kind, UpdateKind::Update | UpdateKind::EtrLapsed | UpdateKind::UpdateOverdue)
}

/// The channels the customer can be reached on; email when none.
fn channels(customer: &amends_core::book::Customer) -> Vec<&'static str> {
    let mut channels = Vec::new();
    if customer.email.is_some() {
        channels.push("email");
    }
    if customer.phone.is_some() {
        channels.push("sms");
    }
    if channels.is_empty() {
        channels.push("email");
    }
    channels
}

/// A queued notice as the customer reads it. Its content may have been let go after the
/// retention period (only its hash is kept): that is said rather than shown as empty.
fn as_queued(n: &NoticeRow) -> Preview {
    let forgotten = n.content_sha256.is_some() && n.body.is_empty();
    let gone =
        |text: &str| if forgotten { "(not kept: only its SHA-256 is)".to_string() } else { text.into() };
    Preview {
        kind: n.kind.clone(),
        locale: n.locale.clone(),
        channel: n.channel.as_str().into(),
        subject: gone(&n.subject),
        body: gone(&n.body),
        status: n.status.as_str().into(),
    }
}
