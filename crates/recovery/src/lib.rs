//! The recovery engine: incidents in, notices and credits out.
//!
//! **Invariant: recovery does not know HTTP, a terminal or a message bus exists.** It depends
//! on the domain (`amends-core`) and the store's ports (`amends-store`) only; sources call it,
//! sinks drain what it writes, the server and the command line drive it.
//!
//! Every operator action is first recorded as an entry of the incident's timeline (one
//! transaction). The steps that follow (fan-out of notices, the credit step) read what is
//! recorded and write with deterministic keys, so they can run any number of times, after
//! a crash or concurrently with a retry, and give the same outbox and the same ledger.

pub mod book;
pub mod clock;
pub mod failpoint;
pub mod import;
pub mod optout;
pub mod tokens;
pub mod unsubscribe;

pub mod accounts;
pub mod appointments;
pub mod audience;
pub mod cases;
pub mod contacts;
mod credits;
mod detected;
mod fanout;
pub mod metrics;
pub mod page;
mod preview;
pub mod progress;
pub mod receipts;
pub mod retention;
pub mod surveys;

pub use credits::{
    CreditComputation, CreditReport, EarlierOutage, ThisOutage, compute_credits, customer_facts,
    outage_attributes,
};
pub use detected::{TELEMETRY_SOURCE, due_notice, released};
pub use fanout::{FANOUT_BATCH_ROWS, FanoutReport};
pub use preview::Preview;

use crate::book::{BookError, LoadedBook};
use crate::clock::Clock;
use crate::import::{ImportError, ImportInput, ImportSummary};
use amends_core::incident::{
    self as incident, ByLocale, Declaration, IncidentError, IncidentState, LAPSE_FOLLOW_UP, Pacing, Told,
    Translations, UpdateKind, UpdateRequest, check_declaration, check_resolution, check_update,
    due_automatic_update,
};
use amends_core::notice::{TemplateError, Templates};
use amends_core::policy::{PolicyError, PolicySet};
use amends_store::{AppendOutcome, IncidentRow, NewUpdate, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("incident {0} not found")]
    NotFound(String),
    #[error("incident {0} is already resolved")]
    AlreadyResolved(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Book(#[from] BookError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("worker task failed: {0}")]
    Join(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IncidentNotFound(id) => EngineError::NotFound(id),
            StoreError::AlreadyResolved(id) => EngineError::AlreadyResolved(id),
            other => EngineError::Store(other),
        }
    }
}

fn invalid(errors: Vec<IncidentError>) -> EngineError {
    EngineError::Invalid(errors.iter().map(ToString::to_string).collect())
}

/// A resolved incident is a conflict (409 over HTTP); any other problem is bad input.
fn checked(id: &str, result: Result<(), Vec<IncidentError>>) -> Result<(), EngineError> {
    match result {
        Err(errors) if errors.contains(&IncidentError::AlreadyResolved) => {
            Err(EngineError::AlreadyResolved(id.to_string()))
        }
        other => other.map_err(invalid),
    }
}

/// What notices say about the provider, and the pacing of automatic updates.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub provider_name: String,
    /// The language operators write causes and messages in; see [`Engine::untranslated`].
    pub operator_language: String,
    /// Incident status pages live at `{status_url}/{incident_id}`.
    pub status_url: String,
    /// After an estimate lapses, the next word is promised within this; each automatic
    /// update after the first promises twice as long as the one before (up to 8 h).
    pub follow_up: SignedDuration,
    /// The webhook channel is configured: customers' notices also go to the provider's app.
    pub webhook: bool,
    /// Most updates one customer gets about one incident on one channel (the
    /// acknowledgement, the closing notice and the credit are not counted).
    pub updates_cap: u32,
    /// An estimate that moves by less than this sends nothing, unless the update says
    /// something else too.
    pub etr_change_min: SignedDuration,
    /// How long a final notice's subject and body are kept before only their hash is;
    /// `None`: kept for good.
    pub keep_content: Option<SignedDuration>,
    /// Targets and limits of individual recovery cases.
    pub case_rules: amends_core::case::CaseRules,
    /// Bookable windows, technicians, the no-show grace and rebooking offers.
    pub appointments: appointments::AppointmentConfig,
    /// The reasons asked, the one retention offer, and how the final bill is worked out.
    pub cancellation: amends_core::cancellation::CancellationRules,
    /// Who is surveyed, when, and how often.
    pub surveys: amends_core::survey::SurveyRules,
    /// The base URL customers reach this server at, for the links in notices.
    pub public_url: String,
    /// Notices rendered and written per batch of a fan-out (1 to `FANOUT_BATCH_ROWS`):
    /// what one batch holds in memory and one transaction writes.
    pub fanout_batch_rows: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            provider_name: "Your provider".into(),
            operator_language: "en".into(),
            status_url: "http://127.0.0.1:8080/status".into(),
            follow_up: LAPSE_FOLLOW_UP,
            webhook: false,
            updates_cap: UPDATES_CAP_DEFAULT,
            etr_change_min: ETR_CHANGE_MIN_DEFAULT,
            keep_content: None,
            case_rules: amends_core::case::CaseRules::default(),
            appointments: appointments::AppointmentConfig::default(),
            cancellation: amends_core::cancellation::CancellationRules::default(),
            surveys: amends_core::survey::SurveyRules::default(),
            public_url: "http://127.0.0.1:8080".into(),
            fanout_batch_rows: FANOUT_BATCH_ROWS,
        }
    }
}

/// Six updates about one incident on one channel is plenty: a storm of updates does not
/// become a storm of messages.
pub const UPDATES_CAP_DEFAULT: u32 = 6;
/// A quarter of an hour: a new estimate closer than that to the old one is not news.
pub const ETR_CHANGE_MIN_DEFAULT: SignedDuration = SignedDuration::from_mins(15);

/// The recovery engine: every capability as a method, its parts private so that what the
/// rest of the product may do with them is what these methods allow. The server and the
/// command line read the store through [`Engine::store`] and write only through the
/// engine's methods (checked by the module-graph test).
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    templates: Arc<Templates>,
    /// Which compensation policies apply to which customers.
    policies: PolicySet,
    config: EngineConfig,
    /// How far a long step has got (the credit step, a fan-out), for the CLI's spinner.
    progress: Arc<progress::Progress>,
    /// The book in memory with the store's book version it was loaded at.
    book: RwLock<Option<(i64, Arc<LoadedBook>)>>,
    /// Customers' preferences with the store's preferences version they were read at.
    preferences: RwLock<Option<(i64, Arc<audience::PreferenceMap>)>>,
    /// The key that checks customers' page links, once read: a stored key never changes,
    /// and every page request would otherwise read it again.
    page_key: std::sync::OnceLock<optout::OptOutKey>,
}

/// What one pass of [`Engine::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub automatic_updates: u64,
    pub fanout: FanoutReport,
    pub credits: CreditReport,
    /// Notices whose content was replaced by its hash (`keep_content`).
    pub contents_forgotten: u64,
    pub cases: cases::CaseReport,
    pub appointments: appointments::AppointmentReport,
    pub surveys: surveys::SurveyReport,
    /// Cancellations deferred to the end of a cycle that took effect.
    pub cancellations_applied: u64,
    /// Cancellation confirmations a crash had kept back, queued now.
    pub cancellations_confirmed: u64,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        templates: Templates,
        policies: impl Into<PolicySet>,
        config: EngineConfig,
    ) -> Self {
        let policies = policies.into();
        Engine {
            store,
            clock,
            templates: Arc::new(templates),
            policies,
            config,
            progress: Arc::default(),
            book: RwLock::new(None),
            preferences: RwLock::new(None),
            page_key: std::sync::OnceLock::new(),
        }
    }

    /// The store, for reading: what the pages, the API and the export show.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock every step reads the time from (controlled in tests and the demo).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The notice templates, for previews and the template checks.
    pub fn templates(&self) -> &Arc<Templates> {
        &self.templates
    }

    /// Which compensation policies apply to which customers.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// How far a long step has got, for a progress display.
    pub fn progress(&self) -> &Arc<progress::Progress> {
        &self.progress
    }

    /// The book, loaded from the store on first use and again whenever the store's book
    /// version has moved: after an import by this process or by any other (a CLI import
    /// while `serve` runs), at the cost of one small read per call.
    pub async fn book(&self) -> Result<Arc<LoadedBook>, EngineError> {
        let version = self.store.book_version().await?;
        self.book_at(version).await
    }

    /// The book at least as new as `version`, just read from the store (for a caller that
    /// read it with other things, in one snapshot).
    pub(crate) async fn book_at(&self, version: i64) -> Result<Arc<LoadedBook>, EngineError> {
        if let Some((cached, book)) = self.book.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *cached == version
        {
            return Ok(book.clone());
        }
        // Loaded after reading the version, so the book is at least that new: a newer
        // import in between only makes the next call load again.
        let rows = self.store.load_book().await?;
        let book =
            Arc::new(tokio::task::spawn_blocking(move || LoadedBook::from_rows(rows)).await.map_err(join)??);
        let mut cache = self.book.write().unwrap_or_else(|e| e.into_inner());
        // Another caller may have loaded the same version meanwhile: share its copy, so
        // that one version is one `Arc` (detection rebuilds when the `Arc` changes).
        if let Some((cached, shared)) = cache.as_ref()
            && *cached == version
        {
            return Ok(shared.clone());
        }
        *cache = Some((version, book.clone()));
        Ok(book)
    }

    pub async fn import(
        &self,
        input: ImportInput,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ImportSummary, EngineError> {
        Ok(crate::import::import(self.store.as_ref(), input, progress).await?)
    }

    /// Records a declared incident. Notices follow on the next [`Engine::tick`].
    pub async fn declare(&self, d: Declaration) -> Result<IncidentRow, EngineError> {
        let now = self.clock.now();
        let book = self.book().await?;
        check_declaration(now, &d, &book.topology).map_err(invalid)?;
        let mut elements = d.elements.clone();
        elements.sort();
        elements.dedup();
        let row = IncidentRow {
            incident_id: Default::default(),
            element_ids: elements,
            cause: d.cause.trim().to_string(),
            causes: incident::split(&d.translations, |t| &t.cause),
            state: d.state,
            etr: d.etr,
            next_update_by: Some(d.next_update_by),
            // The outage began when service was lost, which may be before the declaration.
            started_at: d.started_at.unwrap_or(now),
            resolved_at: None,
            credited_at: None,
            attributes: (!d.attributes.is_empty())
                .then(|| serde_json::to_string(&d.attributes).expect("scalars serialize")),
        };
        let declared = NewUpdate {
            at: now,
            kind: UpdateKind::Declared.as_str().into(),
            state: d.state,
            etr: d.etr,
            next_update_by: Some(d.next_update_by),
            message: d.message.trim().to_string(),
            messages: incident::split(&d.translations, |t| &t.message),
            trigger_key: None,
        };
        let id = self.store.insert_incident(&row, &declared).await?;
        self.incident(&id).await
    }

    pub async fn incident(&self, id: &str) -> Result<IncidentRow, EngineError> {
        self.store.incident(id).await?.ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    /// Posts an operator's update. A field left out keeps its value, except a time that
    /// has already passed: an ETR in the past becomes "being revised" and a passed "next
    /// update by" moves to now + the follow-up, so an update never repeats a stale promise.
    /// Affected customers who will read the operator's own words in another language than
    /// theirs, counted by language: those whose language is not the operator's, with no
    /// translation of the cause for their locale or language, or (when the latest entry
    /// says something) of its message. The operator is told, so a Spanish customer is not
    /// sent English without anyone knowing.
    pub async fn untranslated(
        &self,
        incident: &IncidentRow,
    ) -> Result<std::collections::BTreeMap<String, u64>, EngineError> {
        let timeline = self.store.updates(&incident.incident_id).await?;
        let (message, messages) = match timeline.last() {
            Some(entry) => (entry.message.as_str(), entry.messages.clone()),
            None => ("", Default::default()),
        };
        let messages = &messages;
        let book = self.book().await?;
        let mut counts = std::collections::BTreeMap::new();
        for c in book.affected(&book.element_indices(&incident.element_ids)) {
            let locale = &book.customers[c as usize].locale;
            if locale.language() == self.config.operator_language {
                continue;
            }
            let cause = incident::for_locale(&incident.causes, locale).is_some();
            let said = message.trim().is_empty() || incident::for_locale(messages, locale).is_some();
            if !(cause && said) {
                *counts.entry(locale.language().to_string()).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    pub async fn update(&self, id: &str, req: UpdateRequest) -> Result<IncidentRow, EngineError> {
        let now = self.clock.now();
        let current = self.incident(id).await?;
        let state = current.state;
        checked(id, check_update(now, state, &req))?;
        let still_ahead = |t: Option<jiff::Timestamp>| t.filter(|t| *t > now);
        let update = NewUpdate {
            at: now,
            kind: UpdateKind::Update.as_str().into(),
            state: req.state.unwrap_or(state),
            etr: req.etr.or(still_ahead(current.etr)),
            next_update_by: req
                .next_update_by
                .or(still_ahead(current.next_update_by))
                .or(Some(crate::clock::after(now, self.config.follow_up))),
            message: req.message.trim().to_string(),
            messages: incident::split(&req.translations, |t| &t.message),
            trigger_key: None,
        };
        // Before the entry, so that its notices (rendered later) carry the new cause.
        if let Some(cause) = &req.cause {
            let causes = incident::split(&req.translations, |t| &t.cause);
            self.store.set_cause(id, cause.trim(), &causes).await?;
        }
        self.store.append_update(id, &update).await?;
        self.incident(id).await
    }

    pub async fn resolve(&self, id: &str, message: &str) -> Result<IncidentRow, EngineError> {
        self.resolve_at(id, message, &Translations::new(), self.clock.now()).await
    }

    /// Resolves now, with the closing message in other languages too.
    pub async fn resolve_translated(
        &self,
        id: &str,
        message: &str,
        translations: &Translations,
    ) -> Result<IncidentRow, EngineError> {
        self.resolve_at(id, message, translations, self.clock.now()).await
    }

    /// Resolves an incident whose service came back at `back` (a monitoring system's end
    /// time), which is clamped between the outage's start and now: it is when credits
    /// stop counting.
    pub async fn resolve_at(
        &self,
        id: &str,
        message: &str,
        translations: &Translations,
        back: Timestamp,
    ) -> Result<IncidentRow, EngineError> {
        let current = self.incident(id).await?;
        let back = back.min(self.clock.now()).max(current.started_at);
        checked(id, check_resolution(current.state, message, translations))?;
        let update = NewUpdate {
            at: back,
            kind: UpdateKind::Resolved.as_str().into(),
            state: IncidentState::Resolved,
            etr: None,
            next_update_by: None,
            message: message.trim().to_string(),
            messages: incident::split(translations, |t| &t.message),
            trigger_key: None,
        };
        self.store.append_update(id, &update).await?;
        crate::failpoint::pass(crate::failpoint::RESOLUTION_RECORDED, 1);
        self.incident(id).await
    }

    /// How automatic updates are paced, from the settings.
    pub(crate) fn pacing(&self) -> Pacing {
        Pacing { follow_up: self.config.follow_up, updates_cap: self.config.updates_cap }
    }

    /// Posts the automatic update of every open incident whose ETR or "next update by"
    /// has passed. Idempotent: each lapse has a trigger key the store keeps unique.
    pub async fn watchdog(&self) -> Result<u64, EngineError> {
        let now = self.clock.now();
        let mut posted = 0;
        for incident in self.store.incidents(true).await? {
            let state = incident.state;
            let timeline = self.store.updates(&incident.incident_id).await?;
            if !released(&timeline) {
                // A detection held for an operator: when the window lapses, customers are
                // told anyway (being told late beats not being told).
                if incident.next_update_by.is_some_and(|t| t <= now) {
                    match self.release(&incident.incident_id, "confirm_lapsed", "").await {
                        Ok(_) => posted += 1,
                        Err(EngineError::AlreadyResolved(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let already_posted = |key: &str| timeline.iter().any(|u| u.trigger_key.as_deref() == Some(key));
            let told = Told::count(timeline.iter().filter_map(|u| UpdateKind::parse(&u.kind)));
            let Some(due) = due_automatic_update(
                state,
                incident.etr,
                incident.next_update_by,
                now,
                self.pacing(),
                told,
                already_posted,
            ) else {
                continue;
            };
            let update = NewUpdate {
                at: now,
                kind: due.kind.as_str().into(),
                state,
                etr: due.etr,
                next_update_by: due.next_update_by,
                message: String::new(),
                messages: ByLocale::new(),
                trigger_key: Some(due.trigger_key),
            };
            match self.store.append_update(&incident.incident_id, &update).await {
                Ok(AppendOutcome::Appended { .. }) => posted += 1,
                Ok(AppendOutcome::DuplicateTrigger) | Err(StoreError::AlreadyResolved(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(posted)
    }

    /// One pass of every step that follows from what is recorded: the watchdog, notices
    /// for every timeline entry not yet fanned out, and credits for resolved incidents.
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        let automatic_updates = self.watchdog().await?;
        let fanout = self.fan_out().await?;
        let credits = self.credit_resolved().await?;
        let contents_forgotten = self.forget_content().await?;
        let cases = self.run_case_steps().await?;
        let appointments = self.check_appointments().await?;
        let surveys = self.run_survey_steps().await?;
        let cancellations_applied = self.apply_due_cancellations().await?;
        let cancellations_confirmed = self.confirm_cancellations().await?;
        Ok(TickReport {
            automatic_updates,
            fanout,
            credits,
            contents_forgotten,
            cases,
            appointments,
            surveys,
            cancellations_applied,
            cancellations_confirmed,
        })
    }
}

fn join(e: tokio::task::JoinError) -> EngineError {
    EngineError::Join(e.to_string())
}
