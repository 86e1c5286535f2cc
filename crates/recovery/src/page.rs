//! A customer's own page (issue 20), behind a signed link in their notices: whether their
//! service is affected and when it should be back, what they were told, what they are
//! owed and why, their preferences, and one button to say their service is still down.
//!
//! No password: the link is the key. It is signed under its own purpose (a page link is
//! never an opt-out or a survey link, nor the reverse), names one customer, and expires
//! after [`PAGE_LINK_LIFETIME`]. A link made for a notice is the same link whenever that
//! notice is rendered again (its expiry derives from the notice's moment, not from the
//! clock at rendering), so a crash and re-run writes the same outbox.
//!
//! A forged, altered or expired link is refused with an error that names nobody.

use crate::appointments::{AppointmentsError, BookRequest};
use crate::book::LoadedBook;
use crate::cases::CasesError;
use crate::credits::CLAIM_KEY_SUFFIX;
pub use crate::credits::Claim;
use crate::optout::{OptOutError, OptOutKey, Purpose};
pub use crate::optout::{PAGE_LINK_LIFETIME, PageLinks};
use crate::{Engine, EngineError};
use amends_core::appointment::AppointmentStatus;
use amends_core::credit_words::{CreditedLine, customer_explanation};
use amends_core::id::{CustomerId, IncidentId};
use amends_core::incident::{IncidentState, for_locale};
use amends_core::locale::Locale;
use amends_core::notice::format_local;
use amends_core::preferences::{Channel, Preferences, PreferencesChange, QuietHours, Topic};
use amends_store::CaseOpening;
use amends_store::{AppointmentRow, CustomerReads, IncidentRow, NoticeStatus};
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The name of the page links' signing key in the `secrets` table.
const LINK_KEY_NAME: &str = "page_link_key";
/// How long after a restoration "still offline" opens the case the still-down flow opens,
/// rather than only recording a contact.
pub const STILL_OFFLINE_AFTER_RESTORATION: SignedDuration = SignedDuration::from_hours(24 * 7);
/// Notices and credits listed on the page, newest first; older ones are counted.
pub const PAGE_ROWS_MAX: usize = 50;
/// What a contact from the page is recorded as having come through.
pub const PAGE_CHANNEL: &str = "web";
/// The clicks leaving takes on the web: "Leave us" on the customer's page, then the one
/// button of the leaving page (the reason is optional and already answered "rather not
/// say"). Recorded with each cancellation made there, for the recovery metrics to set
/// beside the clicks a sign-up takes.
pub const LEAVE_PAGE_CLICKS: u32 = 2;
/// How long after a page link expired it may still ask for a fresh one (sent to the
/// customer's own address, never shown): a year, so a link found in an old message works
/// that way, and a link older than that is only refused.
pub const FRESH_LINK_GRACE: SignedDuration = SignedDuration::from_hours(24 * 365);

/// What asking for a fresh link did. Fresh links go at most once an hour to a customer:
/// the notice's key holds the hour, so a second press within it sends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FreshLink {
    /// Queued to the customer's own channels.
    Sent,
    /// Sent within this hour already.
    AlreadySent,
    /// None of the customer's channels carries it (no address, or all declined).
    Unreachable,
}

/// Why a page request did nothing. The messages name no customer.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Link(#[from] OptOutError),
    /// The form was not one this page sends (a value it never offers).
    #[error("{0}")]
    Form(String),
    /// A form posted without the page's own form token: sent from another site, or
    /// from a page of another link.
    #[error("this form did not come from your page")]
    Forged,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<amends_store::StoreError> for PageError {
    fn from(e: amends_store::StoreError) -> Self {
        PageError::Engine(e.into())
    }
}

/// Everything the page shows, in the customer's language and zone.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerPage {
    pub customer_id: CustomerId,
    pub name: String,
    /// The customer's language tag (`en-US`) and time zone (`America/New_York`).
    pub locale: String,
    pub zone: String,
    pub incidents: Vec<PageIncident>,
    pub notices: Vec<PageNotice>,
    /// Notices beyond [`PAGE_ROWS_MAX`], not listed.
    pub notices_unlisted: usize,
    pub credits: Vec<PageCredit>,
    /// Amounts their policies pay only on request, each claimed here in one click.
    pub offers: Vec<PageOffer>,
    /// Their visits, newest first.
    pub visits: Vec<PageVisit>,
    pub preferences: PagePreferences,
    /// Put in every form of the page and checked when it is posted: a form another site
    /// makes cannot carry it (it is derived from the link under the server's key).
    pub form_token: String,
}

/// An open incident that affects the customer.
#[derive(Debug, Clone, Serialize)]
pub struct PageIncident {
    pub incident_id: IncidentId,
    pub state: IncidentState,
    /// In the customer's language where the operator gave one.
    pub cause: String,
    pub started_local: String,
    pub etr_local: Option<String>,
    pub next_update_by_local: Option<String>,
    /// For an incident detected from devices: whether the customer's own device is back.
    pub device_back: Option<bool>,
}

/// A notice as the customer got it.
#[derive(Debug, Clone, Serialize)]
pub struct PageNotice {
    pub kind: String,
    pub channel: Channel,
    pub subject: String,
    /// When it was sent, in the customer's zone; `None` while it waits.
    pub sent_local: Option<String>,
}

/// The language a page writes its dates and explanations in: the one the reader chose on
/// the page (`read_in`), else the customer's own (`own`), which also stands for the one
/// chosen when both are the same language (`en` chosen keeps an `en-GB` customer's dates
/// British). A page in Spanish with its dates in English reads as two pages.
fn page_language<'a>(own: &'a Locale, read_in: Option<&'a Locale>) -> &'a Locale {
    match read_in {
        Some(chosen) if chosen.language() != own.language() => chosen,
        _ => own,
    }
}

/// The longest text a notice without a subject is listed with: an SMS of one segment,
/// whole.
const LISTED_TEXT_CHARS_MAX: usize = 160;

/// What the page lists a notice as: its subject, or for one that has none (an SMS), its
/// own words, cut at a word past [`LISTED_TEXT_CHARS_MAX`]. A customer reads what they
/// were told, never an empty line.
fn listed_as(subject: String, body: &str) -> String {
    if subject.trim().is_empty() {
        amends_core::notice::excerpt(body, LISTED_TEXT_CHARS_MAX)
    } else {
        subject
    }
}

/// A credit with the customer's own explanation and the statement it lands on.
#[derive(Debug, Clone, Serialize)]
pub struct PageCredit {
    pub about: String,
    pub amount: String,
    pub statement: String,
    pub explanation: Option<String>,
}

/// An amount a policy pays only on request, with the customer's explanation.
#[derive(Debug, Clone, Serialize)]
pub struct PageOffer {
    /// What the claim form sends back.
    pub key: String,
    pub about: String,
    pub amount: String,
    pub explanation: Option<String>,
    /// Claimed already: the statement (in the customer's words) it lands on.
    pub claimed_on: Option<String>,
}

/// A booked visit, and for one that failed, the slots held for the customer to pick from.
#[derive(Debug, Clone, Serialize)]
pub struct PageVisit {
    pub reference: String,
    pub status: AppointmentStatus,
    /// The window in the customer's zone and language.
    pub window_local: String,
    pub held: Vec<PageSlot>,
}

/// A slot held for a failed visit's rebooking.
#[derive(Debug, Clone, Serialize)]
pub struct PageSlot {
    /// What the form sends back to take it.
    pub start: Timestamp,
    pub window_local: String,
}

/// The customer's preferences as the page's form shows them.
#[derive(Debug, Clone, Serialize)]
pub struct PagePreferences {
    /// Topic -> the channels it may use.
    pub channels: BTreeMap<Topic, BTreeSet<Channel>>,
    /// `HH:MM` each, or empty.
    pub quiet_start: String,
    pub quiet_end: String,
    /// The language they chose for their messages; empty: the one on record.
    pub language: String,
    /// The language on record (the book's), offered as "as on record".
    pub language_on_record: String,
}

/// The leaving page: the one optional question and the one offer, if any.
#[derive(Debug, Clone, Serialize)]
pub struct LeavePage {
    pub name: String,
    pub locale: String,
    /// The reason ids the optional question offers, in order; empty: not asked.
    pub reasons: Vec<String>,
    /// The one retention offer in the customer's language, shown beside the button.
    pub offer: Option<String>,
    pub form_token: String,
}

/// What leaving did: the confirmation, with the final bill line by line.
#[derive(Debug, Clone, Serialize)]
pub struct Left {
    pub reference: String,
    pub locale: String,
    pub effective_local: String,
    pub bill_lines: Vec<String>,
    pub bill_total: String,
    /// The total is owed to the customer.
    pub refund: bool,
}

/// What pressing "I'm still offline" did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StillOffline {
    /// An open incident covers it: recorded as a contact; `told_first`: we had told them.
    Known { incident_id: IncidentId, told_first: bool },
    /// Their service should be back: the case the still-down flow opens is open, once.
    CaseOpened { case_id: String },
    /// Nothing known covers it and no one can own a case now: recorded as a contact.
    Recorded,
}

/// The preferences form: `topic.channel` boxes ticked, quiet hours, and the language of
/// their messages (empty: the one on record).
#[derive(Debug, Clone, Default)]
pub struct PreferencesForm {
    pub ticked: Vec<String>,
    pub quiet_start: String,
    pub quiet_end: String,
    pub language: String,
}

impl PreferencesForm {
    /// The change the form asks for: every topic's channels set to those ticked, and the
    /// quiet hours (none when both times are empty).
    pub fn change(&self) -> Result<PreferencesChange, PageError> {
        let mut chosen: BTreeMap<Topic, BTreeSet<Channel>> =
            Topic::ALL.iter().map(|&t| (t, BTreeSet::new())).collect();
        for tick in &self.ticked {
            let parsed = tick
                .split_once('.')
                .and_then(|(t, c)| Some((Topic::parse(t)?, Channel::parse(c)?)))
                .ok_or_else(|| PageError::Form(format!("{tick:?} is not a topic and channel")))?;
            chosen.entry(parsed.0).or_default().insert(parsed.1);
        }
        let quiet_hours = match (self.quiet_start.trim(), self.quiet_end.trim()) {
            ("", "") => None,
            (start, end) => Some(QuietHours::parse(start, end).map_err(|e| PageError::Form(e.to_string()))?),
        };
        // The page offers its five languages and the customer's own choice (which the API
        // may have set to another): any language tag is kept as sent.
        let language = match self.language.trim() {
            "" => None,
            tag => {
                Some(Locale::parse(tag).map_err(|_| PageError::Form(format!("{tag:?} is not a language")))?)
            }
        };
        Ok(PreferencesChange {
            channels: chosen.into_iter().map(|(t, c)| (t, Some(c))).collect(),
            quiet_hours: Some(quiet_hours),
            urgent: None,
            language: Some(language),
        })
    }
}

impl Engine {
    /// The signer of page links, its key stored on first use.
    pub async fn page_links(&self) -> Result<PageLinks, EngineError> {
        Ok(PageLinks::new(self.secret_key(LINK_KEY_NAME).await?, &self.config.public_url))
    }

    /// A fresh link to `customer_id`'s page, from now (for the command line and the demo).
    pub async fn page_link(&self, customer_id: &str) -> Result<String, EngineError> {
        let book = self.book().await?;
        if book.customer_index(customer_id).is_none() {
            return Err(EngineError::Invalid(vec![format!("customer {customer_id} is not in the book")]));
        }
        Ok(self.page_links().await?.link(customer_id, self.clock.now()))
    }

    /// The customer a link is for, checked: signed by us for a page, not expired, and a
    /// customer of the book. Returns their id, their index in the book read for it (one
    /// look at the book's version a request), and the links' key.
    async fn page_customer(
        &self,
        token: &str,
    ) -> Result<(CustomerId, u32, OptOutKey, Arc<LoadedBook>), PageError> {
        let (customer_id, key) = self.page_claim(token).await?;
        let book = self.book().await?;
        let index = index_in(&book, &customer_id)?;
        Ok((customer_id, index, key, book))
    }

    /// The customer a link names, checked (signed by us for a page, not expired), and the
    /// links' key; whether they are still in the book is for the caller to look up.
    async fn page_claim(&self, token: &str) -> Result<(CustomerId, OptOutKey), PageError> {
        let key = self.page_key().await?;
        let claim = key.verify_for(Purpose::Page, token, self.clock.now())?;
        Ok((claim.customer_id.into(), key))
    }

    /// The form token of an expired page link that may still ask for a fresh one (signed
    /// by us, for a customer of the book, within [`FRESH_LINK_GRACE`] of its expiry);
    /// `None` for any other link.
    pub async fn fresh_link_form(&self, token: &str) -> Option<String> {
        let (_, _, key, _) = self.expired_page_customer(token).await.ok()?;
        Some(form_token_of(&key, token))
    }

    /// Sends the customer of an expired page link a fresh one, by the channels their
    /// preferences choose for their account's messages; at most once an hour.
    pub async fn fresh_link(&self, token: &str, form_token: &str) -> Result<FreshLink, PageError> {
        // The index is into the book returned with it, which the notice is written from.
        let (customer_id, index, key, book) = self.expired_page_customer(token).await?;
        check_form_token(&key, token, form_token)?;
        let now = self.clock.now();
        // The hour, in UTC, names what the notice is about: one fresh link an hour.
        let about = format!("page-link-{}", now.strftime("%Y%m%dT%H"));
        let base = amends_core::notice::NoticeContext {
            provider_name: self.config.provider_name.clone(),
            ..Default::default()
        };
        if self.queue_one(&book, amends_core::notice::NoticeKind::PageLink, &about, base, index).await? > 0 {
            return Ok(FreshLink::Sent);
        }
        let sent = self.store.notices_for_customer(&customer_id).await?;
        Ok(if sent.iter().any(|n| n.about == about && n.status != NoticeStatus::Suppressed) {
            FreshLink::AlreadySent
        } else {
            FreshLink::Unreachable
        })
    }

    /// [`Engine::page_customer`] for a link that may have expired, within
    /// [`FRESH_LINK_GRACE`].
    async fn expired_page_customer(
        &self,
        token: &str,
    ) -> Result<(CustomerId, u32, OptOutKey, Arc<LoadedBook>), PageError> {
        let key = self.page_key().await?;
        let claim = key.open_for(Purpose::Page, token)?;
        let renewable_until = claim.expires_at.checked_add(FRESH_LINK_GRACE).unwrap_or(Timestamp::MAX);
        if self.clock.now() >= renewable_until {
            return Err(OptOutError::Expired.into());
        }
        let book = self.book().await?;
        let index = index_in(&book, &claim.customer_id)?;
        Ok((claim.customer_id.into(), index, key, book))
    }

    /// The key that checks page links: read once, then kept. A stranger's request reads
    /// it, never creates it; with none stored, no link was ever signed.
    async fn page_key(&self) -> Result<OptOutKey, PageError> {
        if let Some(key) = self.page_key.get() {
            return Ok(key.clone());
        }
        let key = crate::unsubscribe::checking_key_named(self.store.as_ref(), LINK_KEY_NAME).await.map_err(
            |e| match e {
                crate::unsubscribe::UnsubscribeError::Link(e) => PageError::Link(e),
                crate::unsubscribe::UnsubscribeError::Store(e) => e.into(),
                other => {
                    PageError::Engine(EngineError::Invalid(vec![format!("secret {LINK_KEY_NAME}: {other}")]))
                }
            },
        )?;
        Ok(self.page_key.get_or_init(|| key).clone())
    }

    /// [`Engine::page_customer`] for a posted form, which must carry the page's form token.
    /// The index is into the book returned with it: an import in between may move it.
    async fn form_customer(
        &self,
        token: &str,
        form_token: &str,
    ) -> Result<(CustomerId, u32, Arc<LoadedBook>), PageError> {
        let (customer_id, index, key, book) = self.page_customer(token).await?;
        check_form_token(&key, token, form_token)?;
        Ok((customer_id, index, book))
    }

    /// The page of the customer a link is for.
    pub async fn customer_page(
        &self,
        token: &str,
        read_in: Option<&Locale>,
    ) -> Result<CustomerPage, PageError> {
        let (customer_id, key) = self.page_claim(token).await?;
        // Every read at once, each from an index on the customer, in one snapshot with the
        // book's version.
        let reads = self.store.customer_reads(&customer_id, PAGE_ROWS_MAX as u32).await?;
        let book = self.book_at(reads.book_version).await?;
        let index = index_in(&book, &customer_id)?;
        let customer = &book.customers[index as usize];
        let CustomerReads {
            preferences,
            mut open_incidents,
            open_sources,
            impacts,
            notices,
            notices_told,
            mut credits,
            offers,
            appointments,
            ..
        } = reads;
        // The language they read in: the one they chose, else the book's.
        let prefs = crate::audience::preferences_of(&customer_id, preferences.as_ref())?;
        let language = page_language(prefs.language_or(&customer.locale), read_in);
        let local = |t: Timestamp| format_local(t, &customer.zone.tz, language);
        open_incidents.sort_by_key(|i| std::cmp::Reverse(i.started_at));
        let detected = open_sources
            .into_iter()
            .filter(|s| s.source_key.starts_with(crate::TELEMETRY_SOURCE))
            .map(|s| s.incident_id.to_string())
            .collect();
        let affecting = crate::contacts::affecting_of(&book, index, open_incidents, &impacts, &detected);
        let visits = self.page_visits(appointments, &local).await?;
        let mut incidents = Vec::new();
        for (incident, device_back) in affecting {
            incidents.push(PageIncident {
                cause: for_locale(&incident.causes, language).unwrap_or(&incident.cause).to_string(),
                started_local: local(incident.started_at),
                etr_local: incident.etr.map(local),
                next_update_by_local: incident.next_update_by.map(local),
                incident_id: incident.incident_id,
                state: incident.state,
                device_back,
            });
        }
        // What they were told, or will be, newest first: never a notice that will not be
        // sent (coalesced into a later one, opted out of, capped) or that failed, as if it
        // were on its way.
        let notices_unlisted = (notices_told as usize).saturating_sub(notices.len());
        let notices = notices
            .into_iter()
            .map(|n| PageNotice {
                subject: listed_as(n.subject, &n.body),
                kind: n.kind,
                channel: n.channel,
                sent_local: n.sent_at.map(local),
            })
            .collect();
        credits.sort_by(|a, b| (b.created_at, &b.key).cmp(&(a.created_at, &a.key)));
        let offers = offers
            .iter()
            .take(PAGE_ROWS_MAX)
            .map(|o| {
                let claim_key = format!("{}{CLAIM_KEY_SUFFIX}", o.key);
                let (amount, explanation) = customer_words(o, true, language);
                PageOffer {
                    claimed_on: credits
                        .iter()
                        .find(|c| c.key == claim_key)
                        .map(|c| amends_core::cldr::date_text(&c.statement, language)),
                    key: o.key.clone(),
                    about: o.source_event.clone(),
                    amount,
                    explanation,
                }
            })
            .collect();
        let credits = credits
            .iter()
            .take(PAGE_ROWS_MAX)
            .map(|c| {
                let (amount, explanation) = customer_words(c, false, language);
                PageCredit {
                    about: c.source_event.clone(),
                    amount,
                    statement: amends_core::cldr::date_text(&c.statement, language),
                    explanation,
                }
            })
            .collect();
        Ok(CustomerPage {
            name: customer.name.clone(),
            locale: language.to_string(),
            zone: customer.zone.name.to_string(),
            incidents,
            notices,
            notices_unlisted,
            credits,
            offers,
            visits,
            preferences: page_preferences(&prefs, &customer.locale),
            form_token: form_token_of(&key, token),
            customer_id,
        })
    }

    /// "I'm still offline", pressed on the customer's page. While an incident covers them it
    /// is recorded as a contact (told first or not); within
    /// [`STILL_OFFLINE_AFTER_RESTORATION`] of an incident that affected them being resolved,
    /// it opens the case the still-down flow opens, under the same key, so never twice.
    pub async fn still_offline(&self, token: &str, form_token: &str) -> Result<StillOffline, PageError> {
        let (customer_id, index, book) = self.form_customer(token, form_token).await?;
        let summary = "Still offline (the customer's page)";
        let contact = self.record_contact(PAGE_CHANNEL, &customer_id, PAGE_CHANNEL, summary).await.map_err(
            |e| match e {
                CasesError::Engine(e) => PageError::Engine(e),
                other => PageError::Form(other.to_string()),
            },
        )?;
        if let Some(incident) = contact.incident {
            return Ok(StillOffline::Known {
                incident_id: incident.incident_id,
                told_first: contact.told_before,
            });
        }
        let now = self.clock.now();
        let since = now - STILL_OFFLINE_AFTER_RESTORATION;
        let Some(incident) = self.resolved_affecting(&book, &customer_id, index, since).await? else {
            return Ok(StillOffline::Recorded);
        };
        match self.open_still_down_case(&incident, &customer_id, now, now).await? {
            Some(CaseOpening::Opened(id) | CaseOpening::Existing(id)) => {
                Ok(StillOffline::CaseOpened { case_id: id.to_string() })
            }
            None => Ok(StillOffline::Recorded),
        }
    }

    /// The customer's visits, newest first, each failed one with the slots still held.
    /// The customer's visits (`rows`, newest first once sorted), each failed one with the
    /// slots held for it.
    async fn page_visits(
        &self,
        mut rows: Vec<AppointmentRow>,
        local: &impl Fn(Timestamp) -> String,
    ) -> Result<Vec<PageVisit>, PageError> {
        rows.sort_by_key(|r| std::cmp::Reverse(r.window_start));
        let now = self.clock.now();
        let mut visits = Vec::with_capacity(rows.len());
        for row in rows {
            let failed =
                matches!(row.status, AppointmentStatus::Missed | AppointmentStatus::CancelledByProvider);
            let held = if failed { self.store.holds_for(&row.reference).await? } else { Vec::new() };
            visits.push(PageVisit {
                window_local: format!("{} – {}", local(row.window_start), local(row.window_end)),
                held: held
                    .iter()
                    .filter(|h| h.until > now && h.window_start > now)
                    .map(|h| PageSlot {
                        start: h.window_start,
                        window_local: format!("{} – {}", local(h.window_start), local(h.window_end)),
                    })
                    .collect(),
                reference: row.reference,
                status: row.status,
            });
        }
        Ok(visits)
    }

    /// Rebooks a failed visit of the customer a link is for into the slot held for it
    /// that starts at `start`: one click. The new visit has the failed one's owner and
    /// replaces it (`rebooked_from`), so it may take the held slot; pressed again, the
    /// slot is no longer held and nothing is booked twice.
    pub async fn rebook_by_link(
        &self,
        token: &str,
        form_token: &str,
        reference: &str,
        start: Timestamp,
    ) -> Result<String, PageError> {
        let (customer_id, _, _) = self.form_customer(token, form_token).await?;
        let visit = self.store.appointment(reference).await?;
        let Some(visit) = visit.filter(|v| v.customer_id == customer_id) else {
            return Err(PageError::Form(format!("{reference} is not one of your visits")));
        };
        let holds = self.store.holds_for(reference).await?;
        let now = self.clock.now();
        let Some(hold) = holds.iter().find(|h| h.window_start == start && h.until > now) else {
            return Err(PageError::Form("that time is no longer held for you".into()));
        };
        let request = BookRequest {
            customer_id: customer_id.to_string(),
            technician_id: Some(hold.technician_id.clone()),
            start: hold.window_start,
            end: hold.window_end,
            owner: None,
            rebooked_from: Some(visit.reference.clone()),
        };
        let owner = amends_core::case::Actor::new(visit.owner.clone(), amends_core::case::Role::Agent);
        match self.book_appointment(&owner, request).await {
            Ok(view) => Ok(view.visit.reference),
            Err(AppointmentsError::Engine(e)) => Err(PageError::Engine(e)),
            Err(other) => Err(PageError::Form(other.to_string())),
        }
    }

    /// The leaving page of the customer a link is for.
    pub async fn leave_page(&self, token: &str) -> Result<LeavePage, PageError> {
        let (_, index, key, book) = self.page_customer(token).await?;
        let customer = &book.customers[index as usize];
        let language = &self.language_of(customer).await?;
        let rules = &self.config.cancellation;
        Ok(LeavePage {
            name: customer.name.clone(),
            locale: language.to_string(),
            reasons: rules.reasons.clone(),
            offer: amends_core::cancellation::retention_offer_to_show(rules, false, language)
                .map(|(_, text)| text.to_string()),
            form_token: form_token_of(&key, token),
        })
    }

    /// Leaves: the cancellation as any channel makes it (`cancel_account`, channel `web`),
    /// with the optional reason; the confirmation with the final bill line by line.
    pub async fn leave_by_link(
        &self,
        token: &str,
        form_token: &str,
        reason: Option<String>,
        reason_text: Option<String>,
    ) -> Result<Left, PageError> {
        let (customer_id, index, book) = self.form_customer(token, form_token).await?;
        // Words typed in "in your own words" with "rather not say" still chosen are the
        // reason `other`: the customer is not sent back for a click the page can spare.
        let typed = reason_text.as_deref().is_some_and(|t| !t.trim().is_empty());
        let offered = self.config.cancellation.reasons.iter().any(|r| r == amends_core::cancellation::OTHER);
        let reason = match reason.filter(|r| !r.is_empty()) {
            None if typed && offered => Some(amends_core::cancellation::OTHER.to_string()),
            chosen => chosen,
        };
        let body = crate::accounts::CancelBody {
            reason,
            reason_text,
            channel: Some(PAGE_CHANNEL.into()),
            clicks: Some(LEAVE_PAGE_CLICKS),
        };
        let view = match self.cancel_account(&customer_id, body).await {
            Ok(view) => view,
            Err(crate::accounts::AccountsError::Engine(e)) => return Err(PageError::Engine(e)),
            Err(other) => return Err(PageError::Form(other.to_string())),
        };
        let customer = &book.customers[index as usize];
        let language = &self.language_of(customer).await?;
        let (bill_lines, bill_total) = crate::accounts::customer_bill(&view, language);
        Ok(Left {
            effective_local: format_local(view.effective_at, &customer.zone.tz, language),
            refund: view.final_bill["total_minor"].as_i64().is_some_and(|t| t < 0),
            reference: view.reference,
            locale: language.to_string(),
            bill_lines,
            bill_total,
        })
    }

    /// Claims, for the customer a link is for, the amount offered under `offer_key`: once.
    pub async fn claim_by_link(
        &self,
        token: &str,
        form_token: &str,
        offer_key: &str,
    ) -> Result<Claim, PageError> {
        let (_, index, book) = self.form_customer(token, form_token).await?;
        self.claim_on_request(&book, index, offer_key)
            .await?
            .ok_or_else(|| PageError::Form("that amount is not offered to you".into()))
    }

    /// Saves the preferences form of the customer a link is for.
    pub async fn change_preferences_by_link(
        &self,
        token: &str,
        form_token: &str,
        form: &PreferencesForm,
    ) -> Result<PagePreferences, PageError> {
        let (customer_id, index, book) = self.form_customer(token, form_token).await?;
        let change = form.change()?;
        let (prefs, _) = self.change_preferences(&customer_id, change).await?.ok_or(OptOutError::Invalid)?;
        Ok(page_preferences(&prefs, &book.customers[index as usize].locale))
    }

    /// The most recently resolved incident resolved at or after `since` that affected the
    /// customer.
    async fn resolved_affecting(
        &self,
        book: &LoadedBook,
        customer_id: &str,
        index: u32,
        since: Timestamp,
    ) -> Result<Option<IncidentRow>, EngineError> {
        let mut resolved: Vec<IncidentRow> = self
            .store
            .incidents(false)
            .await?
            .into_iter()
            .filter(|i| i.resolved_at.is_some_and(|r| r >= since))
            .collect();
        resolved.sort_by_key(|i| std::cmp::Reverse(i.resolved_at));
        Ok(self.affecting(book, customer_id, index, resolved).await?.into_iter().next().map(|(i, _)| i))
    }
}

/// The index of the customer a link names in `book`; one removed from the book since is
/// named by the link no more.
fn index_in(book: &LoadedBook, customer_id: &str) -> Result<u32, PageError> {
    Ok(book.customer_index(customer_id).ok_or(OptOutError::Invalid)?)
}

/// A ledger row's amount and the customer's explanation of it, in their language. The
/// lines of an offer (`on_request`) or of its claim are the policy's on-request lines:
/// they are told as paid, since that is what claiming them does.
fn customer_words(
    row: &amends_store::CreditRow,
    on_request: bool,
    locale: &amends_core::book::Locale,
) -> (String, Option<String>) {
    let mut lines = CreditedLine::parse_all(&row.lines_json);
    if on_request || row.key.ends_with(CLAIM_KEY_SUFFIX) {
        for line in &mut lines {
            line.automatic = true;
        }
    }
    match amends_core::money::Currency::parse(&row.currency) {
        Ok(currency) => (
            amends_core::money::format_for_locale(
                amends_core::money::Money::new(row.amount_minor, currency),
                locale,
            ),
            customer_explanation(&lines, row.amount_minor, currency, locale),
        ),
        Err(_) => (amends_core::money::format_stored(row.amount_minor, &row.currency, locale), None),
    }
}

/// The form token of a page link: an HMAC of the link under the links' key, in its own
/// context, so it is known only to whoever was given the page.
fn form_token_of(key: &OptOutKey, token: &str) -> String {
    hex::encode(&form_mac(key, token).finalize().into_bytes()[..FORM_TOKEN_BYTES])
}

/// Checks that `form_token` is the form token of `token`: the whole tag, compared in
/// constant time (`verify_truncated_left`), never a prefix.
fn check_form_token(key: &OptOutKey, token: &str, form_token: &str) -> Result<(), PageError> {
    let given =
        hex::decode(form_token).ok().filter(|b| b.len() == FORM_TOKEN_BYTES).ok_or(PageError::Forged)?;
    form_mac(key, token).verify_truncated_left(&given).map_err(|_| PageError::Forged)
}

/// Bytes of the HMAC a form token keeps: 128 bits cannot be guessed.
const FORM_TOKEN_BYTES: usize = 16;

fn form_mac(key: &OptOutKey, token: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC accepts any key length");
    mac.update(b"amends/customer-page-form/v1\0");
    mac.update(token.as_bytes());
    mac
}

fn page_preferences(prefs: &Preferences, on_record: &Locale) -> PagePreferences {
    let (quiet_start, quiet_end) = match prefs.quiet_hours() {
        Some(q) => (hh_mm(q.start), hh_mm(q.end)),
        None => (String::new(), String::new()),
    };
    PagePreferences {
        channels: Topic::ALL.iter().map(|&t| (t, prefs.channels_for(t))).collect(),
        quiet_start,
        quiet_end,
        language: prefs.language().map(|l| l.to_string()).unwrap_or_default(),
        language_on_record: on_record.to_string(),
    }
}

fn hh_mm(t: jiff::civil::Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> PageLinks {
        PageLinks::new(OptOutKey::from_hex(&"2a".repeat(32)).unwrap(), "https://care.example.com/")
    }

    #[test]
    fn a_page_writes_its_dates_in_the_language_chosen_on_it() {
        let (en_gb, es, en) =
            (Locale::parse("en-GB").unwrap(), Locale::parse("es").unwrap(), Locale::parse("en").unwrap());
        assert_eq!(page_language(&en_gb, None), &en_gb, "nothing chosen: the customer's own");
        assert_eq!(page_language(&en_gb, Some(&es)), &es, "another language chosen");
        assert_eq!(page_language(&en_gb, Some(&en)), &en_gb, "their own language: their own region too");
    }

    #[test]
    fn a_notice_without_a_subject_is_listed_with_its_own_words() {
        let sms =
            "Example Cable: your service is back. Sorry for the wait. https://care.example.com/status/INC-1";
        assert_eq!(listed_as(String::new(), sms), sms, "an SMS, whole");
        assert_eq!(listed_as("Your service is back".into(), "Dear Ann, ..."), "Your service is back");
        let long = "word ".repeat(100);
        let listed = listed_as(" ".into(), &long);
        assert!(listed.ends_with("...") && listed.chars().count() <= LISTED_TEXT_CHARS_MAX, "{listed}");
    }

    #[test]
    fn a_page_link_is_the_same_for_the_same_moment_and_works_only_as_a_page_link() {
        let at: Timestamp = "2026-11-23T12:00:00Z".parse().unwrap();
        let link = links().link("C1", at);
        assert_eq!(link, links().link("C1", at), "a re-rendered notice carries the same link");
        assert_ne!(link, links().link("C2", at));
        let token = link.strip_prefix("https://care.example.com/my?token=").expect("the page's address");
        let key = OptOutKey::from_hex(&"2a".repeat(32)).unwrap();
        let claim = key.verify_for(Purpose::Page, token, at).unwrap();
        assert_eq!(claim.customer_id, "C1");
        assert_eq!(key.verify_for(Purpose::OptOut, token, at), Err(OptOutError::Invalid));
        assert_eq!(key.verify_for(Purpose::Survey, token, at), Err(OptOutError::Invalid));
        let later = at + PAGE_LINK_LIFETIME;
        assert_eq!(key.verify_for(Purpose::Page, token, later), Err(OptOutError::Expired));
    }

    #[test]
    fn the_form_sets_every_topic_and_refuses_what_it_never_offers() {
        let form = PreferencesForm {
            ticked: vec!["update.email".into(), "restored.sms".into()],
            quiet_start: "22:00".into(),
            quiet_end: "07:00".into(),
            language: "de".into(),
        };
        let change = form.change().unwrap();
        assert_eq!(change.language, Some(Some(Locale::parse("de").unwrap())));
        assert_eq!(change.channels.len(), Topic::ALL.len(), "an unticked topic is set to no channel");
        assert_eq!(change.channels[&Topic::Update], Some([Channel::Email].into()));
        assert_eq!(change.channels[&Topic::Credit], Some(BTreeSet::new()));
        assert!(matches!(change.quiet_hours, Some(Some(_))));
        let none = PreferencesForm { ticked: vec![], ..PreferencesForm::default() }.change().unwrap();
        assert_eq!(none.quiet_hours, Some(None), "no times: no quiet hours");
        assert_eq!(none.language, Some(None), "no language: the one on record");
        let kept = PreferencesForm { language: "pt-BR".into(), ..PreferencesForm::default() };
        assert_eq!(kept.change().unwrap().language, Some(Some(Locale::parse("pt-BR").unwrap())));
        for bad in ["klingon", "de-de", "<b>"] {
            let form = PreferencesForm { language: bad.into(), ..PreferencesForm::default() };
            assert!(matches!(form.change(), Err(PageError::Form(_))), "{bad}");
        }
        for bad in ["update", "update.fax", "<b>.email"] {
            let form = PreferencesForm { ticked: vec![bad.into()], ..PreferencesForm::default() };
            assert!(matches!(form.change(), Err(PageError::Form(_))), "{bad}");
        }
        let half = PreferencesForm { quiet_start: "22:00".into(), ..PreferencesForm::default() };
        assert!(matches!(half.change(), Err(PageError::Form(_))));
    }
}
