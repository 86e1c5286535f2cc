//! A synthetic provider: a realistic cable topology, plans and customers.
//!
//! Regions hold hubs, hubs hold nodes of about 300 homes, nodes hold taps of about 10
//! homes. Customers get names, contact points, locales, time zones and states that fit
//! their region (each hub is in one state), billing days across the month, a tenure of up
//! to five years, and a segment: about 90% residential and 10% business. The same seed
//! always gives the same provider.

use amends_core::book::CustomerStatus;
use amends_recovery::import::{CUSTOMER_COLUMNS, PLAN_COLUMNS, TOPOLOGY_COLUMNS};
use amends_store::{BookRows, CustomerRow, ElementRow, PlanRow};
use anyhow::{Context, Result};
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

pub const HOMES_PER_NODE: usize = 300;
pub const HOMES_PER_TAP: usize = 10;
pub const NODES_PER_HUB: usize = 28;

const REGIONS: [(&str, &str); 4] = [
    ("Northeast", "America/New_York"),
    ("Midwest", "America/Chicago"),
    ("Mountain", "America/Denver"),
    ("Pacific", "America/Los_Angeles"),
];

/// The states of each region's hubs, as jurisdictions, in the region's time zone.
const REGION_STATES: [&[&str]; 4] = [
    &["US-NY", "US-NJ", "US-PA", "US-MA", "US-CT"],
    &["US-IL", "US-WI", "US-MN", "US-IA", "US-MO"],
    &["US-CO", "US-UT", "US-NM", "US-MT"],
    &["US-CA", "US-WA", "US-OR", "US-NV"],
];

/// Percent of customers that are businesses; the rest are residential.
const BUSINESS_PERCENT: u32 = 10;

const PLANS: [(&str, &str, i64); 5] = [
    ("basic-100", "Basic Internet 100", 4999),
    ("fast-500", "Fast Internet 500", 6999),
    ("gig-1000", "Gigabit 1000", 7999),
    ("tv-internet", "TV + Internet 500", 12_999),
    ("triple-play", "TV + Internet + Phone", 15_499),
];

const FIRST: [&str; 24] = [
    "Ana", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "James", "Keiko", "Liam",
    "Maria", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wen", "Yusuf",
];
const LAST: [&str; 20] = [
    "Garcia", "Smith", "Nguyen", "Johnson", "Martin", "Lee", "Brown", "Lopez", "Kim", "Davis", "Wilson",
    "Moore", "Taylor", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
];
const TRADES: [&str; 12] = [
    "Bakery",
    "Dental",
    "Hardware",
    "Plumbing",
    "Auto Repair",
    "Pharmacy",
    "Law Office",
    "Florist",
    "Cafe",
    "Insurance",
    "Fitness",
    "Print Shop",
];

/// Where a tap is: its id, its region (an index into `REGIONS`) and its hub's state.
type Tap = (String, usize, &'static str);

/// Element ids of the synthetic topology: `R1`, `R1-H2`, `R1-H2-N3`, `R1-H2-N3-T4`.
pub fn generate(customers: usize, seed: u64, now: Timestamp) -> BookRows {
    let mut rng = StdRng::seed_from_u64(seed);
    let nodes = customers.div_ceil(HOMES_PER_NODE).max(1);
    let hubs = nodes.div_ceil(NODES_PER_HUB).max(1);
    let regions = hubs.min(REGIONS.len());
    let mut elements = vec![ElementRow {
        element_id: "ROOT".into(),
        parent_id: None,
        kind: "network".into(),
        name: "Network".into(),
    }];
    for (r, (region, _)) in REGIONS.iter().enumerate().take(regions) {
        elements.push(element(format!("R{}", r + 1), "ROOT", "region", region.to_string()));
    }
    let mut taps = Vec::new();
    for h in 0..hubs {
        let region = format!("R{}", h % regions + 1);
        let hub = format!("{region}-H{}", h / regions + 1);
        let states = REGION_STATES[h % regions];
        let state = states[h / regions % states.len()];
        elements.push(element(
            hub.clone(),
            &region,
            "hub",
            format!("Hub {} ({})", h + 1, REGIONS[h % regions].0),
        ));
        for n in 0..NODES_PER_HUB {
            if h * NODES_PER_HUB + n >= nodes {
                break;
            }
            let node = format!("{hub}-N{}", n + 1);
            elements.push(element(node.clone(), &hub, "node", format!("Node {}", n + 1)));
            for t in 0..HOMES_PER_NODE / HOMES_PER_TAP {
                let tap = format!("{node}-T{}", t + 1);
                elements.push(element(tap.clone(), &node, "tap", format!("Tap {}", t + 1)));
                taps.push((tap, h % regions, state));
            }
        }
    }
    let plans = PLANS
        .iter()
        .map(|(id, name, price)| PlanRow {
            plan_id: (*id).into(),
            name: (*name).into(),
            monthly_price_minor: *price,
            currency: "USD".into(),
        })
        .collect();
    let customers = (0..customers).map(|i| customer(i, &taps[i / HOMES_PER_TAP], now, &mut rng)).collect();
    BookRows { plans, elements, customers }
}

fn element(id: String, parent: &str, kind: &str, name: String) -> ElementRow {
    ElementRow { element_id: id, parent_id: Some(parent.into()), kind: kind.into(), name }
}

fn customer(i: usize, (tap, region, state): &Tap, now: Timestamp, rng: &mut StdRng) -> CustomerRow {
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    let business = rng.random_range(0..100) < BUSINESS_PERCENT;
    let name = if business {
        format!("{last} {}", TRADES[rng.random_range(0..TRADES.len())])
    } else {
        format!("{first} {last}")
    };
    let locale = match rng.random_range(0..100) {
        0..80 => "en-US",
        80..95 => "es-US",
        _ => "fr-CA",
    };
    let five_years = 5 * 365 * 86_400;
    let active_since =
        Timestamp::from_second(now.as_second() - rng.random_range(86_400..five_years)).unwrap_or(now);
    CustomerRow {
        customer_id: format!("C{:07}", i + 1).into(),
        name,
        email: (rng.random_range(0..100) < 97)
            .then(|| format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i + 1)),
        phone: (rng.random_range(0..100) < 70).then(|| format!("+1555{:07}", i % 10_000_000)),
        locale: locale.into(),
        timezone: REGIONS[*region].1.into(),
        plan_id: PLANS[rng.random_range(0..PLANS.len())].0.into(),
        element_id: tap.clone(),
        device_id: Some(format!("MODEM-{:07}", i + 1)),
        billing_day: rng.random_range(1..=28),
        active_since,
        status: if rng.random_range(0..100) < 2 { CustomerStatus::Cancelled } else { CustomerStatus::Active },
        segment: if business { "business".into() } else { "residential".into() },
        jurisdiction: Some((*state).into()),
        attributes: None,
    }
}

/// Writes the book as the three CSV files `import` reads.
pub fn write_csv(book: &BookRows, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let open = |name: &str| csv::Writer::from_path(dir.join(name)).with_context(|| format!("writing {name}"));
    let mut w = open("plans.csv")?;
    w.write_record(PLAN_COLUMNS)?;
    for p in &book.plans {
        w.write_record([p.plan_id.as_str(), &p.name, &p.monthly_price_minor.to_string(), &p.currency])?;
    }
    w.flush()?;
    let mut w = open("topology.csv")?;
    w.write_record(TOPOLOGY_COLUMNS)?;
    for e in &book.elements {
        w.write_record([e.element_id.as_str(), e.parent_id.as_deref().unwrap_or(""), &e.kind, &e.name])?;
    }
    w.flush()?;
    let mut w = open("customers.csv")?;
    w.write_record(CUSTOMER_COLUMNS)?;
    for c in &book.customers {
        w.write_record([
            c.customer_id.as_str(),
            &c.name,
            c.email.as_deref().unwrap_or(""),
            c.phone.as_deref().unwrap_or(""),
            &c.locale,
            &c.timezone,
            &c.plan_id,
            &c.element_id,
            c.device_id.as_deref().unwrap_or(""),
            &c.billing_day.to_string(),
            &c.active_since.to_string(),
            c.status.as_str(),
            &c.segment,
            c.jurisdiction.as_deref().unwrap_or(""),
        ])?;
    }
    Ok(w.flush()?)
}
