//! The provider's book in memory: the topology, plans and customers, indexed for impact.
//!
//! Loaded from the store and rebuilt after each import. Time zones and plans are interned
//! so that credit computation can group customers who share (plan, zone, billing day):
//! they get identical credit lines, computed once.

use amends_core::book::{
    Customer, CustomerStatus, Email, FieldError, Jurisdiction, Locale, PhoneE164, Plan, Segment, Zone,
    parse_currency,
};
use amends_core::impact::ImpactIndex;
use amends_core::money::Money;
use amends_core::topology::{Element, ElementIdx, Topology};
use amends_store::{BookRows, CustomerRow, ElementRow, PlanRow};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("stored {what} {id}: {error}")]
    Field { what: &'static str, id: String, error: FieldError },
    #[error("stored topology: {0}")]
    Topology(String),
    #[error("stored customer {customer}: {what} {id:?} does not exist")]
    Dangling { customer: String, what: &'static str, id: String },
}

#[derive(Debug, Default)]
pub struct LoadedBook {
    pub topology: Topology,
    pub plans: Vec<Plan>,
    pub zones: Vec<Zone>,
    /// Sorted by id.
    pub customers: Vec<Customer>,
    pub customer_plan: Vec<u32>,
    pub customer_zone: Vec<u32>,
    pub customer_element: Vec<ElementIdx>,
    by_id: HashMap<String, u32>,
    /// Active customers only.
    pub impact: ImpactIndex,
}

impl LoadedBook {
    pub fn from_rows(rows: BookRows) -> Result<Self, BookError> {
        let topology =
            Topology::build(rows.elements.into_iter().map(element_from_row).collect()).map_err(|errs| {
                BookError::Topology(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
            })?;
        let plans: Vec<Plan> = rows.plans.into_iter().map(plan_from_row).collect::<Result<_, _>>()?;
        let plan_index: HashMap<&str, u32> =
            plans.iter().enumerate().map(|(i, p)| (p.id.as_str(), i as u32)).collect();
        let mut zones = Interner::default();
        let mut book = LoadedBook { topology, ..LoadedBook::default() };
        let mut customers = rows.customers;
        customers.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        for row in customers {
            let dangling = |what, id: &str| BookError::Dangling {
                customer: row.customer_id.to_string(),
                what,
                id: id.to_string(),
            };
            let plan = *plan_index.get(row.plan_id.as_str()).ok_or_else(|| dangling("plan", &row.plan_id))?;
            let element = book
                .topology
                .index_of(&row.element_id)
                .ok_or_else(|| dangling("element", &row.element_id))?;
            let zone =
                zones.intern(&row.timezone).map_err(|error| field("customer", &row.customer_id, error))?;
            let customer = customer_from_row(row, zones.get(zone))?;
            book.by_id.insert(customer.id.to_string(), book.customers.len() as u32);
            book.customer_plan.push(plan);
            book.customer_zone.push(zone);
            book.customer_element.push(element);
            book.customers.push(customer);
        }
        book.plans = plans;
        book.zones = zones.zones;
        let active = book
            .customers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.status == CustomerStatus::Active)
            .map(|(i, _)| (i as u32, book.customer_element[i]));
        book.impact = ImpactIndex::build(&book.topology, active.collect::<Vec<_>>());
        Ok(book)
    }

    pub fn customer_index(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub fn plan_of(&self, customer: u32) -> &Plan {
        &self.plans[self.customer_plan[customer as usize] as usize]
    }

    pub fn zone_of(&self, customer: u32) -> &Zone {
        &self.zones[self.customer_zone[customer as usize] as usize]
    }

    /// Active customers at or below any of `elements`.
    pub fn affected(&self, elements: &[ElementIdx]) -> Vec<u32> {
        self.impact.affected(&self.topology, elements)
    }

    /// Element indices for ids the caller has already checked exist.
    pub fn element_indices(&self, ids: &[String]) -> Vec<ElementIdx> {
        ids.iter().filter_map(|id| self.topology.index_of(id)).collect()
    }
}

/// Time zones seen so far, each looked up once.
#[derive(Default)]
struct Interner {
    zones: Vec<Zone>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> Result<u32, FieldError> {
        if let Some(&i) = self.index.get(name) {
            return Ok(i);
        }
        let zone = Zone::parse(name)?;
        let i = self.zones.len() as u32;
        self.zones.push(zone);
        self.index.insert(name.to_string(), i);
        Ok(i)
    }

    fn get(&self, i: u32) -> &Zone {
        &self.zones[i as usize]
    }
}

fn field(what: &'static str, id: &str, error: FieldError) -> BookError {
    BookError::Field { what, id: id.to_string(), error }
}

pub fn element_from_row(row: ElementRow) -> Element {
    Element { id: row.element_id, parent_id: row.parent_id, kind: row.kind, name: row.name }
}

pub fn element_to_row(e: &Element) -> ElementRow {
    ElementRow {
        element_id: e.id.clone(),
        parent_id: e.parent_id.clone(),
        kind: e.kind.clone(),
        name: e.name.clone(),
    }
}

fn plan_from_row(row: PlanRow) -> Result<Plan, BookError> {
    let currency = parse_currency(&row.currency).map_err(|e| field("plan", &row.plan_id, e))?;
    Ok(Plan { id: row.plan_id, name: row.name, monthly_price: Money::new(row.monthly_price_minor, currency) })
}

pub fn plan_to_row(p: &Plan) -> PlanRow {
    PlanRow {
        plan_id: p.id.clone(),
        name: p.name.clone(),
        monthly_price_minor: p.monthly_price.minor,
        currency: p.monthly_price.currency.code().to_string(),
    }
}

fn customer_from_row(row: CustomerRow, zone: &Zone) -> Result<Customer, BookError> {
    let id = row.customer_id;
    let err = |e| field("customer", &id, e);
    Ok(Customer {
        email: row.email.as_deref().map(Email::parse).transpose().map_err(err)?,
        phone: row.phone.as_deref().map(PhoneE164::parse).transpose().map_err(err)?,
        locale: Locale::parse(&row.locale).map_err(err)?,
        zone: zone.clone(),
        billing_day: u8::try_from(row.billing_day).map_err(|_| {
            err(FieldError::new("billing_day", &row.billing_day.to_string(), "is out of range"))
        })?,
        status: row.status,
        segment: Segment::parse(&row.segment).map_err(err)?,
        jurisdiction: row.jurisdiction.as_deref().map(Jurisdiction::parse).transpose().map_err(err)?,
        attributes: match row.attributes.as_deref() {
            Some(text) => Some(std::sync::Arc::new(
                amends_core::policy::attributes_from_json("attributes", text)
                    .map_err(|e| err(FieldError::new("attributes", text, e.message)))?,
            )),
            None => None,
        },
        name: row.name,
        plan_id: row.plan_id,
        element_id: row.element_id,
        device_id: row.device_id,
        active_since: row.active_since,
        id,
    })
}

pub fn customer_to_row(c: &Customer) -> CustomerRow {
    CustomerRow {
        customer_id: c.id.clone(),
        name: c.name.clone(),
        email: c.email.as_ref().map(|e| e.as_str().to_string()),
        phone: c.phone.as_ref().map(|p| p.as_str().to_string()),
        locale: c.locale.as_str().to_string(),
        timezone: c.zone.name.clone(),
        plan_id: c.plan_id.clone(),
        element_id: c.element_id.clone(),
        device_id: c.device_id.clone(),
        billing_day: i16::from(c.billing_day),
        active_since: c.active_since,
        status: c.status,
        segment: c.segment.as_str().to_string(),
        jurisdiction: c.jurisdiction.map(|j| j.as_str().to_string()),
        attributes: c.attributes.as_ref().map(|a| serde_json::to_string(&**a).expect("scalars serialize")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn rows() -> BookRows {
        let customer = |id: &str, segment: &str, jurisdiction: Option<&str>| CustomerRow {
            customer_id: id.into(),
            name: format!("Customer {id}"),
            email: None,
            phone: None,
            locale: "en-GB".into(),
            timezone: "Europe/London".into(),
            plan_id: "p".into(),
            element_id: "e".into(),
            device_id: None,
            billing_day: 1,
            active_since: Timestamp::UNIX_EPOCH,
            status: CustomerStatus::Active,
            segment: segment.into(),
            jurisdiction: jurisdiction.map(Into::into),
            attributes: None,
        };
        BookRows {
            plans: vec![PlanRow {
                plan_id: "p".into(),
                name: "P".into(),
                monthly_price_minor: 100,
                currency: "GBP".into(),
            }],
            elements: vec![ElementRow {
                element_id: "e".into(),
                parent_id: None,
                kind: "k".into(),
                name: "E".into(),
            }],
            customers: vec![customer("c1", "business", Some("GB-SCT")), customer("c2", "residential", None)],
        }
    }

    #[test]
    fn segment_and_jurisdiction_round_trip() {
        let book = LoadedBook::from_rows(rows()).unwrap();
        let c1 = &book.customers[0];
        assert_eq!(
            (c1.segment, c1.jurisdiction.map(|j| j.to_string())),
            (Segment::BUSINESS, Some("GB-SCT".into()))
        );
        assert_eq!((book.customers[1].segment, book.customers[1].jurisdiction), (Segment::RESIDENTIAL, None));
        let back: Vec<CustomerRow> = book.customers.iter().map(customer_to_row).collect();
        assert_eq!(back, rows().customers);
    }

    #[test]
    fn a_bad_stored_segment_or_jurisdiction_names_the_customer() {
        let mut bad = rows();
        bad.customers[1].segment = "Residential".into();
        let err = LoadedBook::from_rows(bad).unwrap_err().to_string();
        assert!(err.starts_with(r#"stored customer c2: segment "Residential""#), "{err}");
        let mut bad = rows();
        bad.customers[0].jurisdiction = Some("UK".into());
        let err = LoadedBook::from_rows(bad).unwrap_err().to_string();
        assert!(err.starts_with(r#"stored customer c1: jurisdiction "UK""#), "{err}");
    }
}
