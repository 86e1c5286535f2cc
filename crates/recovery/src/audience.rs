//! Who hears a notice, on which channel, and when: the customer's contact points crossed
//! with their preferences (or the defaults), and their quiet hours.

use super::{Engine, EngineError};
use amends_core::book::Customer;
use amends_core::locale::Locale;
use amends_core::preferences::{Channel, Preferences, PreferencesChange, Topic};
use amends_store::{PreferencesRow, StoreError};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;

/// Every customer's stored preferences, by customer id; absent means the defaults.
pub type PreferenceMap = HashMap<String, Preferences>;

/// One message to send: a channel, its contact point, and when it may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub channel: Channel,
    pub recipient: String,
    /// Quiet hours hold it until then.
    pub held_until: Option<Timestamp>,
}

/// What becomes of one notice for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Routing {
    /// No email, phone or webhook: nobody to tell (counted, not recorded).
    NoContact,
    /// The customer has contact points but chose none of them for this topic: one record,
    /// suppressed for consent, on their first contact point.
    Declined {
        channel: Channel,
        recipient: String,
    },
    Send(Vec<Route>),
}

/// Whether quiet hours hold a channel's messages. Email waits in an inbox and wakes
/// nobody, so it goes at once; an SMS or an app's push (fed by the webhook) would ring.
fn quiet_hours_apply(channel: Channel) -> bool {
    matches!(channel, Channel::Sms | Channel::Webhook)
}

/// The customer's contact point on `channel`, if any. Webhooks go to the provider's own
/// app, which knows the customer by id.
fn contact_point(customer: &Customer, channel: Channel, webhook: bool) -> Option<String> {
    match channel {
        Channel::Email => customer.email.as_ref().map(|e| e.as_str().to_string()),
        Channel::Sms => customer.phone.as_ref().map(|p| p.as_str().to_string()),
        Channel::Webhook => webhook.then(|| customer.id.to_string()),
    }
}

/// Routes a notice about `topic`, ready at `now`, to one customer.
pub(crate) fn route(
    customer: &Customer,
    prefs: &Preferences,
    topic: Topic,
    webhook: bool,
    now: Timestamp,
) -> Routing {
    let points: Vec<(Channel, String)> = Channel::ALL
        .into_iter()
        .filter_map(|channel| contact_point(customer, channel, webhook).map(|to| (channel, to)))
        .collect();
    let Some((first_channel, first_recipient)) = points.first().cloned() else {
        return Routing::NoContact;
    };
    let routes: Vec<Route> = points
        .into_iter()
        .filter(|(channel, _)| prefs.allows(topic, *channel))
        .map(|(channel, recipient)| Route {
            channel,
            recipient,
            held_until: if quiet_hours_apply(channel) {
                prefs.held_until(topic, now, &customer.zone.tz)
            } else {
                None
            },
        })
        .collect();
    if routes.is_empty() {
        Routing::Declined { channel: first_channel, recipient: first_recipient }
    } else {
        Routing::Send(routes)
    }
}

impl Engine {
    /// Every stored preference, parsed, cached on the store's preferences version. A
    /// document that no longer parses (written by a newer version, or by hand) is logged
    /// and its customer gets the defaults: a notice must not be lost over it.
    pub async fn preferences(&self) -> Result<Arc<PreferenceMap>, EngineError> {
        let version = self.store.preferences_version().await?;
        if let Some((cached, map)) = self.preferences.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *cached == version
        {
            return Ok(map.clone());
        }
        let rows = self.store.all_preferences().await?;
        let mut map = PreferenceMap::with_capacity(rows.len());
        for row in rows {
            match Preferences::from_json(&row.doc) {
                Ok(prefs) => {
                    map.insert(row.customer_id.to_string(), prefs);
                }
                Err(error) => {
                    tracing::error!(customer = %row.customer_id, %error, "stored preferences unreadable; using defaults")
                }
            }
        }
        let map = Arc::new(map);
        *self.preferences.write().unwrap_or_else(|e| e.into_inner()) = Some((version, map.clone()));
        Ok(map)
    }

    /// One customer's preferences as stored (the defaults when they never chose) and their
    /// row, if any; `None` when the book has no such customer. A stored document that no
    /// longer parses is an error here, where someone asked to see or change it, rather than
    /// quietly shown as the defaults.
    pub async fn customer_preferences(
        &self,
        customer_id: &str,
    ) -> Result<Option<(Preferences, Option<PreferencesRow>)>, EngineError> {
        if self.store.customer(customer_id).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.stored_preferences(customer_id).await?))
    }

    /// The language `customer_id` reads in (see [`Engine::language_of`]); `None` for
    /// someone no longer in the book.
    pub async fn customer_language(&self, customer_id: &str) -> Result<Option<Locale>, EngineError> {
        let book = self.book().await?;
        let Some(index) = book.customer_index(customer_id) else { return Ok(None) };
        Ok(Some(self.language_of(&book.customers[index as usize]).await?))
    }

    /// The language to write to a customer in: the one they chose, else the book's.
    pub(crate) async fn language_of(&self, customer: &Customer) -> Result<Locale, EngineError> {
        let (prefs, _) = self.stored_preferences(&customer.id).await?;
        Ok(prefs.language_or(&customer.locale).clone())
    }

    /// The preferences stored for a customer known to exist (the defaults where none
    /// are), with the stored row.
    pub(crate) async fn stored_preferences(
        &self,
        customer_id: &str,
    ) -> Result<(Preferences, Option<PreferencesRow>), EngineError> {
        let row = self.store.preferences(customer_id).await?;
        Ok((preferences_of(customer_id, row.as_ref())?, row))
    }

    /// Applies `change` to the customer's preferences and stores the result; `None` when
    /// the book has no such customer.
    pub async fn change_preferences(
        &self,
        customer_id: &str,
        change: PreferencesChange,
    ) -> Result<Option<(Preferences, PreferencesRow)>, EngineError> {
        let Some((mut prefs, _)) = self.customer_preferences(customer_id).await? else { return Ok(None) };
        prefs.apply(change);
        let doc = serde_json::to_string(&prefs).map_err(|e| EngineError::Invalid(vec![e.to_string()]))?;
        let row = PreferencesRow { customer_id: customer_id.into(), doc, updated_at: self.clock.now() };
        self.store.put_preferences(&row).await?;
        Ok(Some((prefs, row)))
    }
}

/// The preferences a stored row holds (the defaults when there is none).
pub(crate) fn preferences_of(
    customer_id: &str,
    row: Option<&PreferencesRow>,
) -> Result<Preferences, EngineError> {
    match row {
        Some(row) => Preferences::from_json(&row.doc).map_err(|e| {
            EngineError::Store(StoreError::Corrupt {
                table: "preferences",
                reason: format!("customer {customer_id}: {e}"),
            })
        }),
        None => Ok(Preferences::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amends_core::book::{CustomerStatus, Email, Locale, PhoneE164, Segment, Zone};

    fn customer(email: bool, phone: bool) -> Customer {
        Customer {
            id: "C1".into(),
            name: "Ana".into(),
            email: email.then(|| Email::parse("ana@example.com").unwrap()),
            phone: phone.then(|| PhoneE164::parse("+15550100").unwrap()),
            locale: Locale::parse("en-US").unwrap(),
            zone: Zone::parse("America/New_York").unwrap(),
            plan_id: "p".into(),
            element_id: "e".into(),
            device_id: None,
            billing_day: 1,
            active_since: Timestamp::UNIX_EPOCH,
            status: CustomerStatus::Active,
            segment: Segment::default(),
            jurisdiction: None,
            attributes: None,
        }
    }

    fn channels(routing: &Routing) -> Vec<Channel> {
        match routing {
            Routing::Send(routes) => routes.iter().map(|r| r.channel).collect(),
            _ => Vec::new(),
        }
    }

    // 2026-11-23 03:00 in New York.
    const NIGHT: &str = "2026-11-23T08:00:00Z";

    #[test]
    fn defaults_send_sms_only_for_the_news_that_matters() {
        let both = customer(true, true);
        let defaults = Preferences::default();
        let now: Timestamp = NIGHT.parse().unwrap();
        let route = |topic| route(&both, &defaults, topic, false, now);
        assert_eq!(channels(&route(Topic::Acknowledgement)), [Channel::Email, Channel::Sms]);
        assert_eq!(channels(&route(Topic::Update)), [Channel::Email]);
        assert_eq!(channels(&route(Topic::EtrChange)), [Channel::Email, Channel::Sms]);
        assert_eq!(channels(&route(Topic::Credit)), [Channel::Email]);
        let with_webhook = super::route(&both, &defaults, Topic::Update, true, now);
        assert_eq!(channels(&with_webhook), [Channel::Email, Channel::Webhook]);
    }

    #[test]
    fn declined_and_no_contact() {
        let now: Timestamp = NIGHT.parse().unwrap();
        let phone_only = customer(false, true);
        assert_eq!(
            route(&phone_only, &Preferences::default(), Topic::Update, false, now),
            Routing::Declined { channel: Channel::Sms, recipient: "+15550100".into() }
        );
        assert_eq!(
            route(&customer(false, false), &Preferences::default(), Topic::Update, false, now),
            Routing::NoContact
        );
    }

    #[test]
    fn quiet_hours_hold_sms_and_webhook_not_email() {
        let prefs = Preferences::from_json(r#"{"quiet_hours": {"start": "22:00", "end": "07:00"}}"#).unwrap();
        let now: Timestamp = NIGHT.parse().unwrap();
        let Routing::Send(routes) = route(&customer(true, true), &prefs, Topic::Acknowledgement, true, now)
        else {
            panic!("expected routes")
        };
        let seven_am: Timestamp = "2026-11-23T12:00:00Z".parse().unwrap();
        let held: Vec<(Channel, Option<Timestamp>)> =
            routes.iter().map(|r| (r.channel, r.held_until)).collect();
        assert_eq!(
            held,
            [(Channel::Email, None), (Channel::Sms, Some(seven_am)), (Channel::Webhook, Some(seven_am))]
        );
    }
}
