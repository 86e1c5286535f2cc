//! Joining and leaving (issue 6): leaving is as easy as joining.
//!
//! Both are one request, through the same channels (the API and the CLI): a sign-up adds
//! the customer to the book; a cancellation asks one optional question (the reason, which
//! may be skipped), shows at most one retention offer (only if configured, once per
//! customer, beside the confirmation, never in the way), confirms at once with a reference
//! and the final bill's preview (prorated by `amends_core::cancellation`), and records
//! every step for audit in the same transaction as the status change. The steps each took
//! are counted and reported side by side.

use super::{Engine, EngineError};
use amends_core::book::CustomerStatus;
use amends_core::cancellation::{
    self, AuditStep, BillInputs, CancelRequest, CancellationError, Ease, RequestChannel,
};
use amends_core::money::Money;
use amends_core::notice::{NoticeContext, NoticeKind, format_local};
use amends_store::{CancellationRow, CreditFilter, CustomerRow, SignupRow, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Requests a sign-up takes: one.
pub const SIGN_UP_STEPS: i32 = 1;
/// The most clicks a sign-up or a cancellation may report: more is a mistake in the
/// counting, not a journey.
pub const CLICKS_MAX: u32 = 1_000;
/// How far back the tick looks for a cancellation whose confirmation a crash kept back.
const CONFIRM_LOOKBACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);
/// Cancellations confirmed per tick; the rest wait for the next.
const CONFIRM_PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Bad input, every problem named: fix it and send it again.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("customer {0} not found")]
    NotFound(String),
    /// The customer exists already, or has cancelled already (naming when and under which
    /// reference).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for AccountsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CustomerNotFound(id) => AccountsError::NotFound(id),
            e @ (StoreError::CustomerExists(_) | StoreError::AlreadyCancelled { .. }) => {
                AccountsError::Conflict(e.to_string())
            }
            StoreError::Refused(message) => AccountsError::Invalid(vec![message]),
            other => AccountsError::Engine(other.into()),
        }
    }
}

impl From<CancellationError> for AccountsError {
    fn from(e: CancellationError) -> Self {
        match e {
            CancellationError::AlreadyCancelled { .. } => AccountsError::Conflict(e.to_string()),
            other => AccountsError::Invalid(vec![other.to_string()]),
        }
    }
}

/// `POST /v1/customers`: a new customer, in the fields of a `customers.csv` line.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    pub customer_id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub locale: String,
    pub timezone: String,
    pub plan_id: String,
    pub element_id: String,
    #[serde(default)]
    pub device_id: Option<String>,
    pub billing_day: u8,
    #[serde(default)]
    pub segment: Option<String>,
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// Where the customer asked: `web`, `app`, `api` (the default), `phone`, `chat`,
    /// `email` or `store`.
    #[serde(default)]
    pub channel: Option<String>,
    /// The clicks the sign-up took on the provider's own pages, as they counted them (the
    /// links and buttons pressed; answers to optional questions are not counted), at most
    /// [`CLICKS_MAX`]. Reported in the recovery metrics beside the clicks to leave.
    #[serde(default)]
    pub clicks: Option<u32>,
}

/// `POST /v1/customers/{id}/cancellation`: everything optional but the customer.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// One of `[cancellation] reasons`; absent or empty: the question was skipped.
    #[serde(default)]
    pub reason: Option<String>,
    /// Free text, only with the reason `other`.
    #[serde(default)]
    pub reason_text: Option<String>,
    /// Where the customer asked, as for a sign-up (`api` when absent).
    #[serde(default)]
    pub channel: Option<String>,
    /// The clicks it took on the provider's own pages, counted as for a sign-up, at most
    /// [`CLICKS_MAX`]; amends' own leaving page counts its own.
    #[serde(default)]
    pub clicks: Option<u32>,
}

/// The confirmation of a cancellation, as the customer gets it at once.
#[derive(Debug, Clone, Serialize)]
pub struct CancellationView {
    pub reference: String,
    pub customer_id: String,
    pub requested_at: Timestamp,
    pub effective_at: Timestamp,
    pub reason: Option<String>,
    /// The one retention offer, shown beside the confirmation (never instead of it).
    pub retention_offer: Option<Offer>,
    pub final_bill: serde_json::Value,
    /// The requests the customer made to cancel, next to the requests a sign-up takes.
    pub ease: Ease,
    pub audit: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    pub id: String,
    pub text: String,
}

impl Engine {
    /// Adds a customer to the book in one request, checked field by field as an import
    /// checks a line; the plan and the network element must exist.
    pub async fn sign_up(&self, input: SignUp) -> Result<CustomerRow, AccountsError> {
        let channel = request_channel(input.channel.as_deref())?;
        let clicks = reported_clicks(input.clicks)?;
        let now = self.clock.now();
        let day = input.billing_day.to_string();
        let active_since = now.to_string();
        let fields = [
            input.customer_id.as_str(),
            input.name.as_str(),
            input.email.as_deref().unwrap_or(""),
            input.phone.as_deref().unwrap_or(""),
            input.locale.as_str(),
            input.timezone.as_str(),
            input.plan_id.as_str(),
            input.element_id.as_str(),
            input.device_id.as_deref().unwrap_or(""),
            day.as_str(),
            active_since.as_str(),
            "active",
            input.segment.as_deref().unwrap_or(""),
            input.jurisdiction.as_deref().unwrap_or(""),
        ];
        let customer = crate::import::customer_from_fields(fields)
            .map_err(|errors| AccountsError::Invalid(errors.iter().map(ToString::to_string).collect()))?;
        let book = self.book().await?;
        let mut problems = Vec::new();
        if !book.plans.iter().any(|p| p.id == customer.plan_id) {
            problems.push(format!("plan_id: {} is not a plan", customer.plan_id));
        }
        if book.topology.index_of(&customer.element_id).is_none() {
            problems.push(format!("element_id: {} is not in the topology", customer.element_id));
        }
        if !problems.is_empty() {
            return Err(AccountsError::Invalid(problems));
        }
        let row = crate::book::customer_to_row(&customer);
        let signup = SignupRow {
            customer_id: row.customer_id.clone(),
            at: now,
            channel: channel.as_str().into(),
            steps: SIGN_UP_STEPS,
            clicks,
        };
        self.store.sign_up(&row, &signup).await?;
        Ok(row)
    }

    /// Cancels in one request: the reason question may be skipped, the one offer is shown
    /// with the confirmation and never stops it, the final bill is previewed and every
    /// step recorded with the status change; the confirmation is queued to the customer.
    pub async fn cancel_account(
        &self,
        customer_id: &str,
        body: CancelBody,
    ) -> Result<CancellationView, AccountsError> {
        let channel = request_channel(body.channel.as_deref())?;
        let clicks = reported_clicks(body.clicks)?;
        let now = self.clock.now();
        let book = self.book().await?;
        let index =
            book.customer_index(customer_id).ok_or_else(|| AccountsError::NotFound(customer_id.into()))?;
        let customer = &book.customers[index as usize];
        let earlier = self.store.cancellation_of(customer_id).await?;
        if customer.status == CustomerStatus::Cancelled {
            return Err(AccountsError::Conflict(match &earlier {
                Some(c) => format!(
                    "customer {customer_id} has already cancelled: {} at {}",
                    c.reference, c.requested_at
                ),
                None => format!("customer {customer_id} has already cancelled"),
            }));
        }
        let shown_before = earlier
            .as_ref()
            .and_then(|c| serde_json::from_str::<Vec<AuditStep>>(&c.audit).ok())
            .is_some_and(|audit| cancellation::offer_shown_before(&audit));
        let price = book.plan_of(index).monthly_price;
        let unbilled = self.unbilled_credits(customer_id, &price, now, customer).await?;
        let rules = &self.config.cancellation;
        let (reason_id, reason_text) = (body.reason.as_deref(), body.reason_text.as_deref());
        // Checked once before the store is touched, so bad input writes nothing and is
        // named; checked again inside the transaction with the number it allocates.
        let request = |sequence: u64, status: CustomerStatus| CancelRequest {
            customer_id,
            status,
            channel,
            reason_id,
            reason_text,
            locale: &customer.locale,
            offer_shown_before: shown_before,
            bill: BillInputs {
                price,
                billing_day: customer.billing_day,
                zone: &customer.zone,
                requested_at: now,
                unbilled_credits_minor: unbilled,
            },
            sequence,
        };
        cancellation::cancel(rules, &request(1, CustomerStatus::Active))?;
        let build = |sequence: u64, row: &CustomerRow| {
            let status = row.status;
            let done = cancellation::cancel(rules, &request(sequence, status)).map_err(|e| e.to_string())?;
            cancellation_row(customer_id, channel, now, clicks, &done).map_err(|e| e.to_string())
        };
        let stored = self.store.cancel_account(customer_id, &build).await?;
        let view = self.cancellation_view(&stored, &customer.locale)?;
        self.cancel_visits(customer_id, stored.effective_at).await;
        if let Err(error) = self.confirm_cancellation(&stored).await {
            tracing::error!(cancellation = %stored.reference, %error, "confirmation not queued");
        }
        Ok(view)
    }

    /// A customer who leaves has no visit left to wait in for once they have gone: each
    /// one still booked that ends after the cancellation takes effect is cancelled as at
    /// their request, and they are told, with the event cancelled in their calendar. A
    /// failure is logged; the visit stays booked for a person to see.
    async fn cancel_visits(&self, customer_id: &str, effective_at: Timestamp) {
        use super::appointments::{APPOINTMENTS_PAGE_MAX, AppointmentAction};
        let filter = amends_store::AppointmentFilter {
            customer_id: Some(customer_id.into()),
            technician_id: None,
            status: Some("booked".into()),
            after_reference: None,
            limit: APPOINTMENTS_PAGE_MAX,
        };
        let visits = match self.store.appointments(&filter).await {
            Ok(visits) => visits,
            Err(error) => {
                tracing::warn!(customer = customer_id, %error, "visits of a cancelled account not cancelled");
                return;
            }
        };
        let now = self.clock.now();
        // amends itself cancels them, on the customer's word: recorded as amends.
        let amends = amends_core::case::Actor::new(amends_core::case::AMENDS, amends_core::case::Role::Admin);
        for visit in visits.iter().filter(|v| v.window_end > now.max(effective_at)) {
            if let Err(error) =
                self.act_on_appointment(&visit.reference, &amends, AppointmentAction::CancelByCustomer).await
            {
                tracing::warn!(appointment = %visit.reference, %error, "visit of a cancelled account not cancelled");
            }
        }
    }

    /// Credits in the ledger that no bill has carried yet: their statement is still to come.
    async fn unbilled_credits(
        &self,
        customer_id: &str,
        price: &Money,
        now: Timestamp,
        customer: &amends_core::book::Customer,
    ) -> Result<i64, AccountsError> {
        let today = now.to_zoned(customer.zone.tz.clone()).date().to_string();
        let filter = CreditFilter { customer_id: Some(customer_id.into()), ..CreditFilter::default() };
        Ok(self
            .store
            .credits(&filter)
            .await
            .map_err(EngineError::from)?
            .iter()
            .filter(|c| c.currency == price.currency.code() && c.statement >= today)
            .map(|c| c.amount_minor)
            .sum())
    }

    /// The offer recorded as shown, in `locale` (the customer's), if it is still the
    /// configured one.
    fn offer_shown(&self, row: &CancellationRow, locale: &amends_core::book::Locale) -> Option<Offer> {
        let shown = row.retention_offer.as_deref()?;
        cancellation::retention_offer_to_show(&self.config.cancellation, false, locale)
            .filter(|(id, _)| *id == shown)
            .map(|(id, text)| Offer { id: id.to_string(), text: text.to_string() })
    }

    fn cancellation_view(
        &self,
        row: &CancellationRow,
        locale: &amends_core::book::Locale,
    ) -> Result<CancellationView, AccountsError> {
        let audit: serde_json::Value = serde_json::from_str(&row.audit).unwrap_or_default();
        let final_bill: serde_json::Value = serde_json::from_str(&row.final_bill).unwrap_or_default();
        let offer = self.offer_shown(row, locale);
        let steps: Vec<AuditStep> = serde_json::from_value(audit.clone()).unwrap_or_default();
        Ok(CancellationView {
            reference: row.reference.clone(),
            customer_id: row.customer_id.to_string(),
            requested_at: row.requested_at,
            effective_at: row.effective_at,
            reason: row.reason.clone(),
            retention_offer: offer,
            final_bill,
            ease: Ease {
                cancel_steps: cancellation::customer_steps(&steps),
                sign_up_steps: SIGN_UP_STEPS as usize,
            },
            audit,
        })
    }

    /// The confirmation: reference, when it takes effect, the bill line by line, and the
    /// offer in the customer's language if one was shown.
    async fn confirm_cancellation(&self, row: &CancellationRow) -> Result<u64, AccountsError> {
        let book = self.book().await?;
        let Some(index) = book.customer_index(&row.customer_id) else { return Ok(0) };
        let customer = &book.customers[index as usize];
        let bill: serde_json::Value = serde_json::from_str(&row.final_bill)
            .map_err(|e| AccountsError::Invalid(vec![format!("final bill of {}: {e}", row.reference)]))?;
        let money = |minor: i64| amends_core::money::format_stored(minor, &row.currency, &customer.locale);
        let language = customer.locale.language();
        let lines: Vec<String> = bill["lines"]
            .as_array()
            .map(|lines| lines.iter().filter_map(|l| customer_bill_line(l, &money, language)).collect())
            .unwrap_or_default();
        let offer = self.offer_shown(row, &customer.locale).map(|o| o.text);
        let base = NoticeContext {
            provider_name: self.config.provider_name.clone(),
            cancellation_ref: row.reference.clone(),
            effective: Some(format_local(row.effective_at, &customer.zone.tz, &customer.locale)),
            final_bill_total: Some(money(row.final_bill_minor.saturating_abs())),
            final_bill_refund: row.final_bill_minor < 0,
            final_bill_lines: lines,
            retention_offer: offer,
            ..NoticeContext::default()
        };
        Ok(self.queue_one(&book, NoticeKind::AccountCancelled, &row.reference, base, index).await?)
    }

    /// The tick's step: queues the confirmation of every recent cancellation that has none
    /// in the outbox (a crash came between the cancellation and its message); a no-op
    /// otherwise, since the notice's key is the cancellation's.
    /// The tick's step: cancellations deferred to the end of a cycle take effect when it
    /// comes (until then the customer is served, told of outages and credited as any).
    pub async fn apply_due_cancellations(&self) -> Result<u64, EngineError> {
        let applied = self.store.apply_due_cancellations(self.clock.now(), CONFIRM_PAGE).await?;
        for customer in &applied {
            tracing::info!(%customer, "cancellation took effect");
        }
        Ok(applied.len() as u64)
    }

    pub async fn confirm_cancellations(&self) -> Result<u64, EngineError> {
        let since = self.clock.now() - CONFIRM_LOOKBACK;
        let mut queued = 0;
        for row in self.store.cancellations_unconfirmed(since, CONFIRM_PAGE).await? {
            match self.confirm_cancellation(&row).await {
                Ok(n) => queued += n,
                Err(e) => {
                    tracing::error!(cancellation = %row.reference, error = %e, "confirmation failed; retrying next pass")
                }
            }
        }
        Ok(queued)
    }

    /// The steps to join and to leave, as measured: the most any cancellation and any
    /// sign-up took, and whether leaving never took more.
    pub async fn journey_steps(&self) -> Result<amends_store::JourneySteps, AccountsError> {
        Ok(self.store.journey_steps().await?)
    }
}

impl From<super::appointments::AppointmentsError> for AccountsError {
    fn from(e: super::appointments::AppointmentsError) -> Self {
        match e {
            super::appointments::AppointmentsError::Engine(e) => AccountsError::Engine(e),
            other => AccountsError::Invalid(vec![other.to_string()]),
        }
    }
}

/// Clicks as reported, checked against [`CLICKS_MAX`].
fn reported_clicks(clicks: Option<u32>) -> Result<Option<i32>, AccountsError> {
    match clicks {
        Some(n) if n > CLICKS_MAX => {
            Err(AccountsError::Invalid(vec![format!("clicks: {n} is more than {CLICKS_MAX}")]))
        }
        n => Ok(n.map(|n| n as i32)),
    }
}

fn request_channel(s: Option<&str>) -> Result<RequestChannel, AccountsError> {
    match s {
        None => Ok(RequestChannel::Api),
        Some(s) => RequestChannel::parse(s).map_err(|e| AccountsError::Invalid(vec![e.to_string()])),
    }
}

/// The store's row of a cancellation the core computed.
fn cancellation_row(
    customer_id: &str,
    channel: RequestChannel,
    now: Timestamp,
    clicks: Option<i32>,
    done: &cancellation::Cancellation,
) -> Result<CancellationRow, serde_json::Error> {
    Ok(CancellationRow {
        reference: done.reference.clone(),
        customer_id: customer_id.into(),
        requested_at: now,
        effective_at: done.bill.effective_at,
        channel: channel.as_str().to_string(),
        reason: done.reason.as_ref().map(|r| match &r.text {
            Some(text) => format!("{}: {text}", r.id),
            None => r.id.clone(),
        }),
        retention_offer: done.offer.as_ref().map(|(id, _)| id.clone()),
        final_bill_minor: done.bill.total_minor,
        currency: done.bill.currency.code().to_string(),
        final_bill: serde_json::to_string(&done.bill)?,
        steps: cancellation::customer_steps(&done.audit) as i32,
        audit: serde_json::to_string(&done.audit)?,
        clicks,
    })
}

/// A stored bill line as the customer reads it ([`cancellation::customer_line`]); a line
/// stored before bills kept each line's seconds reads as its explanation.
/// The final bill of a cancellation, line by line, as the customer reads it (their
/// language, their money format), with its total.
pub(crate) fn customer_bill(
    view: &CancellationView,
    locale: &amends_core::book::Locale,
) -> (Vec<String>, String) {
    let currency = view.final_bill["currency"].as_str().unwrap_or("");
    let money = |minor: i64| amends_core::money::format_stored(minor, currency, locale);
    let lines = view.final_bill["lines"]
        .as_array()
        .map(|lines| lines.iter().filter_map(|l| customer_bill_line(l, &money, locale.language())).collect())
        .unwrap_or_default();
    let total = view.final_bill["total_minor"].as_i64().unwrap_or(0);
    (lines, money(total.saturating_abs()))
}

fn customer_bill_line(
    line: &serde_json::Value,
    money: &dyn Fn(i64) -> String,
    language: &str,
) -> Option<String> {
    let code = match line["code"].as_str()? {
        "unused_refund" => cancellation::LineCode::UnusedRefund,
        "used_charge" => cancellation::LineCode::UsedCharge,
        "credits" => cancellation::LineCode::Credits,
        _ => return line["explanation"].as_str().map(str::to_string),
    };
    let (Some(minor), Some(seconds)) = (line["minor"].as_i64(), line["seconds"].as_i64()) else {
        return line["explanation"].as_str().map(str::to_string);
    };
    Some(cancellation::customer_line(code, &money(minor.saturating_abs()), seconds, language))
}
