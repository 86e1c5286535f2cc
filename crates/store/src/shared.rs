//! The trait implementations whose Rust is the same on both backends, written once.
//!
//! Each macro expands to `impl <Trait> for <backend>` inside `sqlite.rs` or `postgres.rs`,
//! so its names (`sql::`, `common::`, `micros`, the row types, per-backend helpers such as
//! `mark_survey_decided`) resolve there and each backend's pool and transaction types do
//! the work. What differs is behind a few inherent methods each backend has:
//! `reads()` (SQLite's read-only pool; PostgreSQL's one pool), `begin_write()` (SQLite's
//! `BEGIN IMMEDIATE`) and `begin_snapshot()` (PostgreSQL's repeatable-read snapshot), `write_agents()`, `write_book()` and `write_device_events()` (each backend's bulk writes). The
//! write paths that truly differ (COPY, SKIP LOCKED, row locks, the packed outbox) stay in
//! their backend.

/// The reads of either table of keyed amounts (credits, on-request offers) for a backend,
/// behind its `LedgerStore`: the same Rust over the same SQL on both.
macro_rules! ledger_reads {
    ($backend:ty) => {
        impl $backend {
            async fn amounts(&self, ledger: Ledger, filter: &CreditFilter) -> Result<Vec<CreditRow>> {
                let (sql, binds) = sql::ledger_query(ledger, filter);
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for value in binds {
                    q = q.bind(value);
                }
                let rows = q.fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::credit_from_row)
            }
        }
    };
}
pub(crate) use ledger_reads;

/// `impl ReportStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! report_store {
    ($backend:ty) => {
        #[async_trait]
        impl ReportStore for $backend {
            async fn notice_reach(&self, incident_id: &str) -> Result<crate::NoticeReach> {
                let row = sqlx::query(sql::NOTICE_REACH).bind(incident_id).fetch_one(&self.pool).await?;
                common::notice_reach_from_row(&row)
            }

            async fn credits_asked_for(&self, incident_id: &str) -> Result<(u64, u64)> {
                let (total, asked): (i64, i64) =
                    sqlx::query_as(sql::CREDITS_ASKED_FOR).bind(incident_id).fetch_one(&self.pool).await?;
                Ok((u64::try_from(total).unwrap_or(0), u64::try_from(asked).unwrap_or(0)))
            }

            async fn journey_steps(&self) -> Result<JourneySteps> {
                let row = sqlx::query(sql::JOURNEY_STEPS).fetch_one(&self.pool).await?;
                common::journey_steps_from_row(&row)
            }

            async fn case_timings(
                &self,
                opened_from: Timestamp,
                opened_to: Timestamp,
                limit: u32,
            ) -> Result<Vec<CaseTiming>> {
                let rows = sqlx::query(sql::CASE_TIMINGS)
                    .bind(micros(opened_from))
                    .bind(micros(opened_to))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::case_timing_from_row)
            }

            async fn customer_contacts_between(
                &self,
                customer_id: &str,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(sql::CUSTOMER_CONTACTS_BETWEEN)
                    .bind(customer_id)
                    .bind(micros(from))
                    .bind(micros(to))
                    .fetch_one(&self.pool)
                    .await?;
                common::count("contacts", n)
            }
        }
    };
}
pub(crate) use report_store;

/// `impl AccessStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! access_store {
    ($backend:ty) => {
        #[async_trait]
        impl AccessStore for $backend {
            async fn use_link(&self, link_id: &str, at: Timestamp) -> Result<bool> {
                let done =
                    sqlx::query(sql::USE_LINK).bind(link_id).bind(micros(at)).execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn secret_or_insert(&self, name: &str, candidate: &str) -> Result<String> {
                sqlx::query(sql::INSERT_SECRET).bind(name).bind(candidate).execute(&self.pool).await?;
                Ok(sqlx::query_scalar(sql::SELECT_SECRET).bind(name).fetch_one(&self.pool).await?)
            }

            async fn secret(&self, name: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(sql::SELECT_SECRET).bind(name).fetch_optional(self.reads()).await?)
            }

            async fn insert_token(&self, token: &TokenRow) -> Result<bool> {
                let done = sqlx::query(sql::INSERT_TOKEN)
                    .bind(token.token_hash.as_str())
                    .bind(token.token_id.as_str())
                    .bind(token.scope.as_str())
                    .bind(token.label.as_str())
                    .bind(micros(token.created_at))
                    .bind(token.agent_id.as_deref())
                    .bind(opt_micros(token.expires_at))
                    .bind(opt_micros(token.revoked_at))
                    .bind(opt_micros(token.last_used_at))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn token(&self, token_hash: &str) -> Result<Option<TokenRow>> {
                let row = sqlx::query(sql::SELECT_TOKEN).bind(token_hash).fetch_optional(&self.pool).await?;
                row.as_ref().map(common::token_from_row).transpose()
            }

            async fn tokens(&self) -> Result<Vec<TokenRow>> {
                let rows = sqlx::query(sql::SELECT_TOKENS).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::token_from_row)
            }

            async fn revoke_token(&self, token_id: &str, at: Timestamp) -> Result<Option<(TokenRow, bool)>> {
                let revoked = sqlx::query(sql::REVOKE_TOKEN)
                    .bind(token_id)
                    .bind(micros(at))
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some(row) = revoked {
                    return Ok(Some((common::token_from_row(&row)?, true)));
                }
                // Revoked before, or unknown.
                let row =
                    sqlx::query(sql::SELECT_TOKEN_BY_ID).bind(token_id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(common::token_from_row).transpose()?.map(|row| (row, false)))
            }

            async fn record_token_use(
                &self,
                token_hash: &str,
                at: Timestamp,
                stale_before: Timestamp,
            ) -> Result<bool> {
                let done = sqlx::query(sql::RECORD_TOKEN_USE)
                    .bind(token_hash)
                    .bind(micros(at))
                    .bind(micros(stale_before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use access_store;

/// `impl PreferenceStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! preference_store {
    ($backend:ty) => {
        #[async_trait]
        impl PreferenceStore for $backend {
            async fn preferences(&self, customer_id: &str) -> Result<Option<PreferencesRow>> {
                let row =
                    sqlx::query(sql::SELECT_PREFERENCES).bind(customer_id).fetch_optional(&self.pool).await?;
                row.map(|row| common::preferences_from_row(&row)).transpose()
            }

            async fn all_preferences(&self) -> Result<Vec<PreferencesRow>> {
                let rows = sqlx::query(sql::SELECT_ALL_PREFERENCES).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::preferences_from_row)
            }

            async fn put_preferences(&self, row: &PreferencesRow) -> Result<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(sql::UPSERT_PREFERENCES)
                    .bind(row.customer_id.as_str())
                    .bind(row.doc.as_str())
                    .bind(micros(row.updated_at))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::BUMP_PREFERENCES_VERSION).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn preferences_version(&self) -> Result<i64> {
                Ok(sqlx::query_scalar(sql::SELECT_PREFERENCES_VERSION).fetch_one(&self.pool).await?)
            }
        }
    };
}
pub(crate) use preference_store;

/// `impl SurveyStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! survey_store {
    ($backend:ty) => {
        #[async_trait]
        impl SurveyStore for $backend {
            async fn record_survey_decision(&self, row: &SurveyDecisionRow) -> Result<SurveyDecisionRow> {
                let mut tx = self.begin_write().await?;
                let existing = sqlx::query(sql::SELECT_DECISION)
                    .bind(row.subject_key.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(existing) = existing {
                    return common::survey_from_row(&existing);
                }
                let survey_id = match row.decision.as_str() {
                    "send" => {
                        let n: i64 = sqlx::query_scalar(sql::NEXT_SURVEY_NUMBER).fetch_one(&mut *tx).await?;
                        Some(common::survey_id(n))
                    }
                    _ => None,
                };
                let inserted = common::bind_survey_decision!(
                    sqlx::query(sql::INSERT_DECISION),
                    row,
                    survey_id.as_deref()
                )
                .fetch_optional(&mut *tx)
                .await?;
                let Some(inserted) = inserted else {
                    // Another writer committed a decision for the subject since the lookup (not
                    // in SQLite, whose write transaction excludes other writers); the number this
                    // call took goes back with `tx`.
                    drop(tx);
                    return self.decision_recorded_meanwhile(&row.subject_key).await;
                };
                mark_survey_decided(&mut tx, row).await?;
                let stored = common::survey_from_row(&inserted)?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn last_survey_send(
                &self,
                customer_id: &str,
                excluding_subject_key: &str,
            ) -> Result<Option<Timestamp>> {
                let us: Option<i64> = sqlx::query_scalar(sql::LAST_SURVEY_SEND)
                    .bind(customer_id)
                    .bind(excluding_subject_key)
                    .fetch_one(&self.pool)
                    .await?;
                us.map(|us| common::instant("survey_decisions", "send_at", us)).transpose()
            }

            async fn surveys_due(&self, now: Timestamp, limit: u32) -> Result<Vec<SurveyDecisionRow>> {
                let rows = sqlx::query(sql::SURVEYS_DUE)
                    .bind(micros(now))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::survey_from_row)
            }

            async fn mark_survey_sent(&self, survey_id: &str, at: Timestamp) -> Result<()> {
                let done = sqlx::query(sql::MARK_SURVEY_SENT)
                    .bind(survey_id)
                    .bind(micros(at))
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    self.check_survey_exists(survey_id).await?;
                }
                Ok(())
            }

            async fn survey(&self, survey_id: &str) -> Result<Option<SurveyDecisionRow>> {
                let row = sqlx::query(sql::SELECT_SURVEY).bind(survey_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(common::survey_from_row).transpose()
            }

            async fn answer_survey(&self, survey_id: &str, score: i16, at: Timestamp) -> Result<bool> {
                let done = sqlx::query(sql::ANSWER_SURVEY)
                    .bind(survey_id)
                    .bind(score)
                    .bind(micros(at))
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    self.check_survey_exists(survey_id).await?;
                    return Ok(false);
                }
                Ok(true)
            }

            async fn survey_decisions(&self, filter: &SurveyFilter) -> Result<Vec<SurveyDecisionRow>> {
                let (sql, binds) = sql::survey_decisions_query(filter);
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for value in binds {
                    q = q.bind(value);
                }
                let rows = q.fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::survey_from_row)
            }

            async fn survey_decision_counts(&self) -> Result<Vec<(String, Option<String>, u64)>> {
                let rows = sqlx::query(sql::SURVEY_DECISION_COUNTS).fetch_all(&self.pool).await?;
                let mut counts = common::decode_all(&rows, common::decision_count_from_row)?;
                common::sort_decision_counts(&mut counts);
                Ok(counts)
            }

            async fn cases_fixed_unsurveyed(&self, fixed_by: Timestamp, limit: u32) -> Result<Vec<CaseRow>> {
                let rows = sqlx::query(sql::CASES_FIXED_UNSURVEYED)
                    .bind(micros(fixed_by))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::case_from_row)
            }

            async fn recovered_unsurveyed(
                &self,
                resolved_by: Timestamp,
                limit: u32,
            ) -> Result<Vec<RecoveredRow>> {
                // The incidents and their customers come from one snapshot.
                let mut tx = self.begin_snapshot().await?;
                let incidents = sqlx::query(sql::RESOLVED_WITH_UNSURVEYED)
                    .bind(micros(resolved_by))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let mut recovered = Vec::new();
                for incident in &incidents {
                    let left = limit as usize - recovered.len();
                    if left == 0 {
                        break;
                    }
                    let (incident_id, resolved_at) = common::resolved_from_row(incident)?;
                    let customers: Vec<String> = sqlx::query_scalar(sql::UNSURVEYED_CUSTOMERS_OF)
                        .bind(incident_id.as_str())
                        .bind(left as i64)
                        .fetch_all(&mut *tx)
                        .await?;
                    recovered.extend(customers.into_iter().map(|customer_id| RecoveredRow {
                        incident_id: incident_id.as_str().into(),
                        customer_id: customer_id.into(),
                        resolved_at,
                    }));
                }
                tx.commit().await?;
                Ok(recovered)
            }
        }
    };
}
pub(crate) use survey_store;

/// `impl AccountStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! account_store {
    ($backend:ty) => {
        #[async_trait]
        impl AccountStore for $backend {
            async fn sign_up(&self, customer: &CustomerRow, signup: &SignupRow) -> Result<()> {
                common::check_signup(customer, signup)?;
                let mut tx = self.begin_write().await?;
                let id = customer.customer_id.as_str();
                let status: Option<String> =
                    sqlx::query_scalar(CUSTOMER_STATUS_TO_CANCEL).bind(id).fetch_optional(&mut *tx).await?;
                if status.is_some() {
                    return Err(StoreError::CustomerExists(id.to_owned()));
                }
                let plans: i64 = sqlx::query_scalar(sql::COUNT_PLAN)
                    .bind(customer.plan_id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                let elements: i64 = sqlx::query_scalar(sql::COUNT_ELEMENT)
                    .bind(customer.element_id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                common::check_in_book(customer, plans, elements)?;
                let done = common::bind_customer!(sqlx::query(sql::INSERT_CUSTOMER), customer)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::CustomerExists(id.to_owned()));
                }
                sqlx::query(sql::INSERT_SIGNUP)
                    .bind(id)
                    .bind(micros(signup.at))
                    .bind(signup.channel.as_str())
                    .bind(signup.steps)
                    .bind(signup.clicks)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::BUMP_BOOK_VERSION).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn cancel_account(
                &self,
                id: &str,
                build: &BuildCancellation<'_>,
            ) -> Result<CancellationRow> {
                // The status read and the cancellation written are one step, so of two
                // cancellations racing, the second finds the first (SQLite's write transaction
                // excludes other writers; PostgreSQL's row lock makes them take turns).
                let mut tx = self.begin_write().await?;
                let status: Option<String> =
                    sqlx::query_scalar(CUSTOMER_STATUS_TO_CANCEL).bind(id).fetch_optional(&mut *tx).await?;
                match status.as_deref() {
                    None => return Err(StoreError::CustomerNotFound(id.to_owned())),
                    Some(status) => {
                        let earlier = sqlx::query(sql::LATEST_CANCELLATION_OF)
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        let earlier = earlier.as_ref().map(common::cancellation_from_row).transpose()?;
                        // Active, but a cancellation already waits for the end of the cycle.
                        let pending = match &earlier {
                            Some(e) => {
                                let n: i64 = sqlx::query_scalar(sql::IS_PENDING_CANCELLATION)
                                    .bind(e.reference.as_str())
                                    .fetch_one(&mut *tx)
                                    .await?;
                                n > 0
                            }
                            None => false,
                        };
                        if status != "active" || pending {
                            return Err(common::already_cancelled(id, earlier));
                        }
                    }
                }
                // As it stood before this cancellation: what `build` computes the final bill from.
                let customer = sqlx::query(sql::SELECT_CUSTOMER).bind(id).fetch_one(&mut *tx).await?;
                let customer = common::customer_from_row(&customer)?;
                let n: i64 = sqlx::query_scalar(sql::NEXT_CANCELLATION_NUMBER).fetch_one(&mut *tx).await?;
                let row = build(common::counter_number("cancellation", n)?, &customer)
                    .map_err(StoreError::Refused)?;
                if row.effective_at <= row.requested_at {
                    sqlx::query(sql::SET_CUSTOMER_CANCELLED).bind(id).execute(&mut *tx).await?;
                    sqlx::query(sql::BUMP_BOOK_VERSION).execute(&mut *tx).await?;
                }
                let stored = common::bind_cancellation!(
                    sqlx::query(sql::INSERT_CANCELLATION),
                    &row,
                    row.reference.as_str()
                )
                .fetch_one(&mut *tx)
                .await?;
                let stored = common::cancellation_from_row(&stored)?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn cancellation(&self, reference: &str) -> Result<Option<CancellationRow>> {
                let row =
                    sqlx::query(sql::SELECT_CANCELLATION).bind(reference).fetch_optional(&self.pool).await?;
                row.as_ref().map(common::cancellation_from_row).transpose()
            }

            async fn apply_due_cancellations(&self, now: Timestamp, limit: u32) -> Result<Vec<String>> {
                let mut tx = self.begin_write().await?;
                let due: Vec<(String, String)> = sqlx::query_as(sql::DUE_CANCELLATIONS)
                    .bind(micros(now))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let mut changed = Vec::new();
                for (reference, customer_id) in due {
                    let done = sqlx::query(sql::SET_CUSTOMER_CANCELLED)
                        .bind(customer_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() > 0 {
                        changed.push(customer_id);
                    }
                    sqlx::query(sql::INSERT_CANCELLATION_APPLIED)
                        .bind(reference)
                        .bind(micros(now))
                        .execute(&mut *tx)
                        .await?;
                }
                if !changed.is_empty() {
                    sqlx::query(sql::BUMP_BOOK_VERSION).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(changed)
            }

            async fn cancellations_unconfirmed(
                &self,
                since: Timestamp,
                limit: u32,
            ) -> Result<Vec<CancellationRow>> {
                let rows = sqlx::query(sql::CANCELLATIONS_UNCONFIRMED)
                    .bind(micros(since))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::cancellation_from_row)
            }

            async fn cancellation_of(&self, customer_id: &str) -> Result<Option<CancellationRow>> {
                let row = sqlx::query(sql::LATEST_CANCELLATION_OF)
                    .bind(customer_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(common::cancellation_from_row).transpose()
            }
        }
    };
}
pub(crate) use account_store;

/// `impl VisitStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! visit_store {
    ($backend:ty) => {
        #[async_trait]
        impl VisitStore for $backend {
            async fn book_appointment(
                &self,
                technician_id: Option<&str>,
                build: &BuildAppointment<'_>,
            ) -> Result<AppointmentRow> {
                // Bookings take turns from the number taken to the commit (SQLite's write
                // transaction; PostgreSQL's lock on the counter row, reading as of each statement):
                // none can come between what `build` is shown and the row it returns.
                let mut tx = self.begin_write().await?;
                let n: i64 = sqlx::query_scalar(sql::NEXT_APPOINTMENT_NUMBER).fetch_one(&mut *tx).await?;
                let (live, holds) = booking_state(&mut tx, technician_id).await?;
                // On a refusal, dropping `tx` rolls back: the number is handed out again.
                let built = build(common::counter_number("appointment", n)?, &live, &holds)
                    .map_err(StoreError::Refused)?;
                common::check_built_appointment(technician_id, &built)?;
                let row = common::bind_new_appointment!(sqlx::query(sql::INSERT_APPOINTMENT), &built, n)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else { return Err(StoreError::AppointmentExists(built.reference)) };
                let stored = common::appointment_from_row(&row)?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn update_appointment(&self, row: &AppointmentRow) -> Result<AppointmentRow> {
                let updated = common::bind_appointment_update!(sqlx::query(sql::UPDATE_APPOINTMENT), row)
                    .fetch_optional(&self.pool)
                    .await?;
                match updated {
                    Some(updated) => common::appointment_from_row(&updated),
                    None => {
                        Err(common::appointment_update_refusal(row, self.appointment(&row.reference).await?))
                    }
                }
            }

            async fn act_on_appointment(
                &self,
                row: &AppointmentRow,
                action: &crate::AppointmentActionRow,
            ) -> Result<AppointmentRow> {
                let mut tx = self.begin_write().await?;
                let updated = common::bind_appointment_update!(sqlx::query(sql::UPDATE_APPOINTMENT), row)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(updated) = updated else {
                    tx.rollback().await?;
                    return Err(common::appointment_update_refusal(
                        row,
                        self.appointment(&row.reference).await?,
                    ));
                };
                let stored = common::appointment_from_row(&updated)?;
                sqlx::query(sql::INSERT_APPOINTMENT_ACTION)
                    .bind(stored.reference.as_str())
                    .bind(stored.version)
                    .bind(action.action.as_str())
                    .bind(action.actor.as_str())
                    .bind(micros(action.at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn appointment_actions(&self, reference: &str) -> Result<Vec<crate::AppointmentActionRow>> {
                let rows = sqlx::query(sql::SELECT_APPOINTMENT_ACTIONS)
                    .bind(reference)
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::appointment_action_from_row)
            }

            async fn appointment(&self, reference: &str) -> Result<Option<AppointmentRow>> {
                let row =
                    sqlx::query(sql::SELECT_APPOINTMENT).bind(reference).fetch_optional(&self.pool).await?;
                row.as_ref().map(common::appointment_from_row).transpose()
            }

            async fn appointments(&self, filter: &AppointmentFilter) -> Result<Vec<AppointmentRow>> {
                let (sql, binds) = sql::appointments_query(filter);
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for value in binds {
                    q = q.bind(value);
                }
                let rows = q.fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::appointment_from_row)
            }

            async fn appointments_to_check(
                &self,
                due_by: Timestamp,
                limit: u32,
            ) -> Result<Vec<AppointmentRow>> {
                let rows = sqlx::query(sql::APPOINTMENTS_TO_CHECK)
                    .bind(micros(due_by))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::appointment_from_row)
            }

            async fn mark_appointment_confirmed(&self, reference: &str) -> Result<()> {
                let done =
                    sqlx::query(sql::MARK_APPOINTMENT_CONFIRMED).bind(reference).execute(&self.pool).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::AppointmentNotFound(reference.to_owned()));
                }
                Ok(())
            }

            async fn appointments_unconfirmed(&self, limit: u32) -> Result<Vec<AppointmentRow>> {
                let rows = sqlx::query(sql::APPOINTMENTS_UNCONFIRMED)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(common::appointment_from_row).collect()
            }

            async fn mark_appointment_checked(&self, reference: &str, at: Timestamp) -> Result<()> {
                let done = sqlx::query(sql::MARK_APPOINTMENT_CHECKED)
                    .bind(reference)
                    .bind(micros(at))
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    let n: i64 = sqlx::query_scalar(sql::COUNT_APPOINTMENT)
                        .bind(reference)
                        .fetch_one(&self.pool)
                        .await?;
                    if n == 0 {
                        return Err(StoreError::AppointmentNotFound(reference.to_owned()));
                    }
                }
                Ok(())
            }

            async fn live_appointments_between(
                &self,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<Vec<AppointmentRow>> {
                let rows = sqlx::query(sql::LIVE_APPOINTMENTS_BETWEEN)
                    .bind(micros(from))
                    .bind(micros(to))
                    .bind(i64::from(LIVE_ROWS_MAX))
                    .fetch_all(&self.pool)
                    .await?;
                common::warn_if_full("live_appointments_between", rows.len());
                common::decode_all(&rows, common::appointment_from_row)
            }

            async fn put_holds(
                &self,
                for_reference: &str,
                holds: &[HoldRow],
            ) -> Result<(Vec<HoldRow>, bool)> {
                let mut tx = self.begin_write().await?;
                // Takes turns with any other offer for the same visit.
                Self::take_turns_on_visit(&mut tx, for_reference).await?;
                let held = sqlx::query(sql::HOLDS_FOR).bind(for_reference).fetch_all(&mut *tx).await?;
                if !held.is_empty() {
                    return Ok((common::decode_all(&held, common::hold_from_row)?, false));
                }
                for hold in holds.iter().filter(|h| h.for_reference == for_reference) {
                    common::bind_hold!(sqlx::query(sql::INSERT_HOLD), hold).execute(&mut *tx).await?;
                }
                let held = sqlx::query(sql::HOLDS_FOR).bind(for_reference).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok((common::decode_all(&held, common::hold_from_row)?, true))
            }

            async fn holds_for(&self, for_reference: &str) -> Result<Vec<HoldRow>> {
                let rows = sqlx::query(sql::HOLDS_FOR).bind(for_reference).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::hold_from_row)
            }

            async fn live_holds(&self, now: Timestamp) -> Result<Vec<HoldRow>> {
                let rows = sqlx::query(sql::LIVE_HOLDS)
                    .bind(micros(now))
                    .bind(i64::from(LIVE_ROWS_MAX))
                    .fetch_all(&self.pool)
                    .await?;
                common::warn_if_full("live_holds", rows.len());
                common::decode_all(&rows, common::hold_from_row)
            }

            async fn appointment_counts(&self, from: Timestamp, to: Timestamp) -> Result<AppointmentCounts> {
                let row = sqlx::query(sql::APPOINTMENT_COUNTS)
                    .bind(micros(from))
                    .bind(micros(to))
                    .fetch_one(&self.pool)
                    .await?;
                common::appointment_counts_from_row(&row)
            }
        }
    };
}
pub(crate) use visit_store;

/// `impl CaseStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! case_store {
    ($backend:ty) => {
        #[async_trait]
        impl CaseStore for $backend {
            async fn upsert_agents(&self, agents: &[AgentRow]) -> Result<u64> {
                let distinct = common::sorted_last_wins(agents, |a| &a.agent_id);
                let mut tx = self.begin_write().await?;
                Self::write_agents(&mut tx, &distinct).await?;
                tx.commit().await?;
                Ok(distinct.len() as u64)
            }

            async fn agent(&self, agent_id: &str) -> Result<Option<AgentRow>> {
                let row = sqlx::query(sql::SELECT_AGENT).bind(agent_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(common::agent_from_row).transpose()
            }

            async fn agents(&self) -> Result<Vec<AgentRow>> {
                let rows = sqlx::query(sql::SELECT_AGENTS).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::agent_from_row)
            }

            async fn open_case(&self, case: &CaseRow, opened: &CaseEventRow) -> Result<CaseOpening> {
                // The id is not known yet, so only the event's seq is checked.
                common::check_case_events(&opened.case_id, 0, std::slice::from_ref(opened))?;
                let mut tx = self.begin_write().await?;
                let opening = open_case_in(&mut tx, case, opened).await?;
                if let CaseOpening::Opened(_) = opening {
                    tx.commit().await?;
                }
                // Otherwise dropping `tx` rolls back: the case number it took is handed out again.
                Ok(opening)
            }

            async fn append_case_events(
                &self,
                case: &CaseRow,
                expected_version: i64,
                events: &[CaseEventRow],
            ) -> Result<()> {
                common::check_case_events(&case.case_id, expected_version, events)?;
                let mut tx = self.begin_write().await?;
                // Appends to one case take turns from this read to the commit (SQLite's write
                // transaction; PostgreSQL's row lock): the second sees the first's version and is
                // refused, instead of writing the same seqs.
                let found: Option<i64> = sqlx::query_scalar(CASE_VERSION_TO_APPEND)
                    .bind(case.case_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                common::check_case_version(&case.case_id, expected_version, found)?;
                if events.is_empty() {
                    // Nothing happened (a command that was already done): the row stays as it is.
                    return Ok(());
                }
                for event in events {
                    insert_case_event(&mut tx, &case.case_id, event).await?;
                }
                sqlx::query(sql::APPLY_CASE_EVENTS)
                    .bind(case.case_id.as_str())
                    .bind(case.owner.as_str())
                    .bind(case.status.as_str())
                    .bind(micros(case.updated_at))
                    .bind(expected_version + events.len() as i64)
                    .bind(opt_micros(case.fixed_at))
                    .bind(case.followed_up)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn case(&self, case_id: &str) -> Result<Option<CaseRow>> {
                let row = sqlx::query(sql::SELECT_CASE).bind(case_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(common::case_from_row).transpose()
            }

            async fn case_events(&self, case_id: &str) -> Result<Vec<CaseEventRow>> {
                let rows = sqlx::query(sql::SELECT_CASE_EVENTS).bind(case_id).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::case_event_from_row)
            }

            async fn record_contact(&self, contact: &crate::ContactRow) -> Result<i64> {
                Ok(sqlx::query_scalar(sql::INSERT_CONTACT)
                    .bind(contact.customer_id.as_str())
                    .bind(micros(contact.at))
                    .bind(contact.channel.as_str())
                    .bind(contact.summary.as_str())
                    .bind(contact.by.as_str())
                    .bind(contact.incident_id.as_deref())
                    .bind(contact.told_before)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn incident_contacts(&self, incident_id: &str) -> Result<Vec<crate::ContactRow>> {
                let rows =
                    sqlx::query(sql::INCIDENT_CONTACTS).bind(incident_id).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::contact_from_row)
            }

            async fn cases_to_notify(&self, limit: u32) -> Result<Vec<CaseRow>> {
                let rows =
                    sqlx::query(sql::CASES_TO_NOTIFY).bind(i64::from(limit)).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::case_from_row)
            }

            async fn mark_case_notified(&self, case_id: &str, version: i64) -> Result<()> {
                sqlx::query(sql::MARK_CASE_NOTIFIED).bind(case_id).bind(version).execute(&self.pool).await?;
                Ok(())
            }

            async fn cases_due_follow_up(&self, fixed_by: Timestamp, limit: u32) -> Result<Vec<CaseRow>> {
                let rows = sqlx::query(sql::CASES_DUE_FOLLOW_UP)
                    .bind(micros(fixed_by))
                    .bind(false)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::case_from_row)
            }

            async fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>> {
                let (sql, binds) = sql::cases_query(filter);
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for value in binds {
                    q = q.bind(value);
                }
                let rows = q.fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::case_from_row)
            }
        }
    };
}
pub(crate) use case_store;

/// `impl IncidentStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! incident_store {
    ($backend:ty) => {
        #[async_trait]
        impl IncidentStore for $backend {
            async fn insert_incident(&self, incident: &IncidentRow, declared: &NewUpdate) -> Result<String> {
                let mut tx = self.begin_write().await?;
                let id = insert_incident_in(&mut tx, incident, declared).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn incident(&self, incident_id: &str) -> Result<Option<IncidentRow>> {
                let row =
                    sqlx::query(sql::SELECT_INCIDENT).bind(incident_id).fetch_optional(self.reads()).await?;
                row.as_ref().map(common::incident_from_row).transpose()
            }

            async fn incidents(&self, open_only: bool) -> Result<Vec<IncidentRow>> {
                let sql = if open_only { sql::SELECT_OPEN_INCIDENTS } else { sql::SELECT_INCIDENTS };
                let rows = sqlx::query(sql).fetch_all(self.reads()).await?;
                common::decode_all(&rows, common::incident_from_row)
            }

            async fn incidents_page(&self, page: &IncidentPage) -> Result<Vec<IncidentRow>> {
                let sql = if page.open_only { sql::OPEN_INCIDENTS_PAGE } else { sql::INCIDENTS_PAGE };
                let rows = sqlx::query(sql)
                    .bind(page.before_id.as_deref())
                    .bind(i64::from(page.limit))
                    .fetch_all(self.reads())
                    .await?;
                common::decode_all(&rows, common::incident_from_row)
            }

            async fn append_update(&self, incident_id: &str, update: &NewUpdate) -> Result<AppendOutcome> {
                let mut tx = self.begin_write().await?;
                // Appends to one incident take turns from this read to the commit (SQLite's write
                // transaction; PostgreSQL's row lock), so each sees the previous one's seq,
                // trigger key and state.
                let state: Option<String> = sqlx::query_scalar(INCIDENT_STATE_TO_APPEND)
                    .bind(incident_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                match state.as_deref() {
                    None => return Err(StoreError::IncidentNotFound(incident_id.to_owned())),
                    Some("resolved") => return Err(StoreError::AlreadyResolved(incident_id.to_owned())),
                    Some(_) => {}
                }
                // Checked rather than caught: in PostgreSQL a unique violation would abort the
                // transaction.
                if let Some(trigger_key) = &update.trigger_key {
                    let n: i64 = sqlx::query_scalar(sql::COUNT_TRIGGER)
                        .bind(incident_id)
                        .bind(trigger_key.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                    if n > 0 {
                        tx.rollback().await?;
                        return Ok(AppendOutcome::DuplicateTrigger);
                    }
                }
                let seq: i64 =
                    sqlx::query_scalar(sql::NEXT_SEQ).bind(incident_id).fetch_one(&mut *tx).await?;
                insert_update(&mut tx, incident_id, seq, update).await?;
                sqlx::query(sql::APPLY_UPDATE)
                    .bind(incident_id)
                    .bind(update.state.as_str())
                    .bind(opt_micros(update.etr))
                    .bind(opt_micros(update.next_update_by))
                    .bind(micros(update.at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(AppendOutcome::Appended { seq })
            }

            async fn updates(&self, incident_id: &str) -> Result<Vec<UpdateRow>> {
                let rows = sqlx::query(sql::SELECT_UPDATES).bind(incident_id).fetch_all(self.reads()).await?;
                common::decode_all(&rows, common::update_from_row)
            }

            async fn set_cause(&self, incident_id: &str, cause: &str, causes: &ByLocale) -> Result<()> {
                let done = sqlx::query(sql::SET_CAUSE)
                    .bind(incident_id)
                    .bind(cause)
                    .bind(common::by_locale_json(causes))
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::IncidentNotFound(incident_id.to_owned()));
                }
                Ok(())
            }

            async fn set_elements(&self, incident_id: &str, element_ids: &[String]) -> Result<()> {
                let json = common::ids_json(element_ids);
                let done =
                    sqlx::query(sql::SET_ELEMENTS).bind(incident_id).bind(json).execute(&self.pool).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::IncidentNotFound(incident_id.to_owned()));
                }
                Ok(())
            }

            async fn widen_incidents(&self, widenings: &[Widening]) -> Result<()> {
                let no_translations = common::by_locale_json(&ByLocale::new());
                let mut tx = self.begin_write().await?;
                for w in widenings {
                    sqlx::query(sql::WIDEN_INCIDENT)
                        .bind(w.incident_id.as_str())
                        .bind(common::ids_json(&w.element_ids))
                        .bind(&w.cause)
                        .bind(&w.was)
                        .bind(&no_translations)
                        .execute(&mut *tx)
                        .await?;
                    if !w.merged.is_empty() {
                        Self::mark_all_merged(&mut tx, &w.merged, &w.incident_id).await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn pending_fanout(&self) -> Result<Vec<UpdateRow>> {
                let rows = sqlx::query(sql::PENDING_FANOUT).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::update_from_row)
            }

            async fn mark_fanned_out(&self, incident_id: &str, seq: i64) -> Result<()> {
                let done =
                    sqlx::query(sql::MARK_FANNED_OUT).bind(incident_id).bind(seq).execute(&self.pool).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::IncidentNotFound(format!("{incident_id} (update {seq})")));
                }
                Ok(())
            }

            async fn uncredited_resolved(&self) -> Result<Vec<IncidentRow>> {
                let rows = sqlx::query(sql::UNCREDITED_RESOLVED).fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::incident_from_row)
            }

            async fn mark_credited(&self, incident_id: &str, at: Timestamp) -> Result<()> {
                let done = sqlx::query(sql::MARK_CREDITED)
                    .bind(incident_id)
                    .bind(micros(at))
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::IncidentNotFound(incident_id.to_owned()));
                }
                Ok(())
            }
        }
    };
}
pub(crate) use incident_store;

/// `impl DeviceLogStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! device_log_store {
    ($backend:ty) => {
        #[async_trait]
        impl DeviceLogStore for $backend {
            async fn append_device_events(&self, events: &mut [DeviceEventRow]) -> Result<u64> {
                let distinct = common::distinct_device_events(events);
                let mut tx = self.begin_write().await?;
                let inserted = Self::write_device_events(&mut tx, &distinct).await?;
                tx.commit().await?;
                Ok(inserted)
            }

            async fn device_events(
                &self,
                from: Timestamp,
                after: Option<&DeviceEventRow>,
                limit: u32,
            ) -> Result<Vec<DeviceEventRow>> {
                let q = match after {
                    None => sqlx::query(sql::SELECT_DEVICE_EVENTS).bind(micros(from)).bind(i64::from(limit)),
                    Some(a) => sqlx::query(sql::SELECT_DEVICE_EVENTS_AFTER)
                        .bind(micros(from))
                        .bind(i64::from(limit))
                        .bind(micros(a.at))
                        .bind(a.device_id.as_str())
                        .bind(a.state.as_str()),
                };
                let rows = q.fetch_all(&self.pool).await?;
                common::decode_all(&rows, common::device_event_from_row)
            }

            async fn prune_device_events(&self, before: Timestamp) -> Result<u64> {
                let done =
                    sqlx::query(sql::PRUNE_DEVICE_EVENTS).bind(micros(before)).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn device_events_end(&self) -> Result<i64> {
                Ok(sqlx::query_scalar(sql::DEVICE_EVENTS_END).fetch_one(&self.pool).await?)
            }

            async fn device_events_placed_after(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<(i64, DeviceEventRow)>> {
                let rows = sqlx::query(sql::DEVICE_EVENTS_PLACED_AFTER)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                common::decode_all(&rows, common::placed_device_event_from_row)
            }
        }
    };
}
pub(crate) use device_log_store;

/// `impl BookStore` for a backend: the same Rust over the shared SQL on both.
macro_rules! book_store {
    ($backend:ty) => {
        #[async_trait]
        impl BookStore for $backend {
            async fn import_book(
                &self,
                book: &BookRows,
                progress: &(dyn Fn(u64) + Sync),
            ) -> Result<BookCounts> {
                // Duplicate ids are folded first: one statement may not upsert a row twice.
                let elements = common::sorted_last_wins(&book.elements, |r| &r.element_id);
                let plans = common::sorted_last_wins(&book.plans, |r| &r.plan_id);
                let customers = common::sorted_last_wins(&book.customers, |r| &r.customer_id);
                let mut tx = self.begin_write().await?;
                Self::write_book(&mut tx, &elements, &plans, &customers, progress).await?;
                sqlx::query(sql::BUMP_BOOK_VERSION).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(BookCounts {
                    plans: plans.len() as u64,
                    elements: elements.len() as u64,
                    customers: customers.len() as u64,
                })
            }

            async fn book_version(&self) -> Result<i64> {
                use sqlx::Row;
                let row = sqlx::query(sql::SELECT_BOOK_VERSION).fetch_one(&self.pool).await?;
                Ok(row.try_get::<i64, _>(0)?)
            }

            async fn load_book(&self) -> Result<BookRows> {
                // The three lists come from one snapshot.
                let mut tx = self.begin_snapshot().await?;
                let plans = sqlx::query(sql::SELECT_PLANS).fetch_all(&mut *tx).await?;
                let elements = sqlx::query(sql::SELECT_ELEMENTS).fetch_all(&mut *tx).await?;
                let customers = sqlx::query(sql::SELECT_CUSTOMERS).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok(BookRows {
                    plans: common::decode_all(&plans, common::plan_from_row)?,
                    elements: common::decode_all(&elements, common::element_from_row)?,
                    customers: common::decode_all(&customers, common::customer_from_row)?,
                })
            }

            async fn book_counts(&self) -> Result<BookCounts> {
                let row = sqlx::query(sql::BOOK_COUNTS).fetch_one(&self.pool).await?;
                let c = Cols::new(&row, "book");
                Ok(BookCounts {
                    plans: c.count("plans")?,
                    elements: c.count("elements")?,
                    customers: c.count("customers")?,
                })
            }

            async fn customer(&self, customer_id: &str) -> Result<Option<CustomerRow>> {
                let row =
                    sqlx::query(sql::SELECT_CUSTOMER).bind(customer_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(common::customer_from_row).transpose()
            }
        }
    };
}
pub(crate) use book_store;
