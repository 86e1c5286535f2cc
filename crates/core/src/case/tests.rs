use super::*;
use proptest::prelude::*;

/// The customer's first contact; minutes in the tests count from here.
const T0: &str = "2026-11-23T09:00:00Z";
const HOUR: i64 = 60;
const DAY: i64 = 24 * HOUR;

fn at(mins: i64) -> Timestamp {
    plus(T0.parse().unwrap(), SignedDuration::from_mins(mins))
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

fn agent(id: &str) -> Actor {
    Actor::new(id, Role::Agent)
}

fn lead() -> Actor {
    Actor::new("lead-1", Role::Lead)
}

fn admin() -> Actor {
    Actor::new("admin-1", Role::Admin)
}

fn owner() -> Actor {
    agent("agent-1")
}

fn s(text: &str) -> String {
    text.to_string()
}

fn request(fault: Fault) -> OpenCase {
    OpenCase {
        customer_id: s("cust-42").into(),
        owner: owner(),
        source: CaseSource::Appointment { appointment_id: s("appt-7") },
        fault,
        summary: s("The technician did not come between 8 and 12"),
        first_contact_at: at(0),
        currency: usd(),
    }
}

/// A case under test: its log, and the state built one event at a time beside it.
struct Run {
    case: Case,
    log: Vec<CaseEvent>,
    rules: CaseRules,
}

impl Run {
    /// Opened 5 minutes after the first contact, by and for agent-1.
    fn new(fault: Fault) -> Run {
        let opened = Case::open("agent-1", &request(fault), at(5)).unwrap();
        let case = Case::replay(std::slice::from_ref(&opened)).unwrap();
        Run { case, log: vec![opened], rules: CaseRules::default() }
    }

    fn open() -> Run {
        Run::new(Fault::Company)
    }

    fn decide(&self, actor: &Actor, command: Command, mins: i64) -> Result<Vec<CaseEvent>, CaseError> {
        self.case.decide(actor, command, at(mins), &self.rules)
    }

    /// Decides and appends; the command must be accepted.
    fn act(&mut self, actor: &Actor, command: Command, mins: i64) -> Vec<CaseEvent> {
        let events = self.decide(actor, command, mins).unwrap_or_else(|e| panic!("refused: {e}"));
        self.append(&events);
        events
    }

    fn append(&mut self, events: &[CaseEvent]) {
        for e in events {
            self.case.apply(e).unwrap_or_else(|err| panic!("{err}: {e:?}"));
            self.log.push(e.clone());
        }
    }

    fn respond(&mut self, mins: i64) -> &mut Self {
        self.act(&owner(), Command::Respond { message: s("I am sorry, I am on it") }, mins);
        self
    }

    fn fix(&mut self, mins: i64) -> &mut Self {
        self.act(&owner(), Command::Fix { note: s("New visit done, service checked") }, mins);
        self
    }

    fn offer(&mut self, to: &str, mins: i64) -> &mut Self {
        self.act(&owner(), Command::OfferHandover { to: agent(to), note: s("I am off tomorrow") }, mins);
        self
    }

    fn pause(&mut self, mins: i64) -> &mut Self {
        self.act(&owner(), Command::Pause { reason: s("Waiting for access to the building") }, mins);
        self
    }

    fn resume(&mut self, mins: i64) -> &mut Self {
        self.act(&owner(), Command::Resume, mins);
        self
    }
}

fn respond_cmd() -> Command {
    Command::Respond { message: s("Sorry!") }
}

fn note(text: &str) -> String {
    s(text)
}

fn goodwill(amount_minor: i64) -> Command {
    Command::AddGoodwill { amount_minor, note: note("For the morning you lost") }
}

fn compensation(key: &str, amount_minor: i64, currency: Currency) -> Command {
    Command::RecordCompensation {
        credit_key: s(key),
        amount_minor,
        currency,
        explanation: s("Missed appointment: 30.00 USD fixed"),
    }
}

fn dur(mins: i64) -> SignedDuration {
    SignedDuration::from_mins(mins)
}

#[test]
fn opening_checks_its_input() {
    let opened = Case::open("agent-1", &request(Fault::Customer), at(5)).unwrap();
    assert_eq!(opened.at, at(5));
    let case = Case::replay(&[opened]).unwrap();
    assert_eq!(case.owner(), "agent-1");
    assert_eq!(case.customer_id(), "cust-42");
    assert_eq!(case.status(), Status::Open);
    assert_eq!(case.first_contact_at(), at(0));
    assert_eq!(case.version(), 1);
    assert_eq!(case.customer_time(at(5)), dur(5));

    let check = |change: fn(&mut OpenCase), by: &str, want: &str| {
        let mut r = request(Fault::Company);
        change(&mut r);
        assert_eq!(Case::open(by, &r, at(5)).unwrap_err().to_string(), want);
    };
    check(|r| r.owner = lead(), "agent-1", "owner: lead-1 is lead, not an agent; cases are owned by agents");
    check(|r| r.owner = agent(AMENDS), "agent-1", "owner: \"amends\" is reserved for amends' own steps");
    check(|r| r.customer_id = s("").into(), "agent-1", "customer_id: must not be empty");
    check(|r| r.customer_id = "c".repeat(129).into(), "agent-1", "customer_id: 129 bytes, longer than 128");
    check(
        |r| r.customer_id = s("cust\n42").into(),
        "agent-1",
        "customer_id: \"cust\\n42\" has a control character",
    );
    check(|r| r.summary = s("  "), "agent-1", "summary: must not be empty");
    check(
        |r| r.source = CaseSource::Incident { incident_id: s("").into() },
        "agent-1",
        "source.incident_id: must not be empty",
    );
    check(
        |r| r.first_contact_at = at(6),
        "agent-1",
        "first_contact_at: 2026-11-23T09:06:00Z is after 2026-11-23T09:05:00Z, when the case was opened",
    );
    check(
        |r| r.first_contact_at = at(5 - 32 * DAY),
        "agent-1",
        "first_contact_at: 2026-10-22T09:05:00Z is more than 31 days before now (2026-11-23T09:05:00Z)",
    );
    check(|_| {}, "", "by: must not be empty");
    // amends may open a case itself (a customer still down after an incident).
    assert!(Case::open(AMENDS, &request(Fault::Unknown), at(5)).is_ok());
}

#[test]
fn default_rules_pass_and_bad_rules_are_named() {
    assert_eq!(CaseRules::default().check(), Ok(()));
    let check = |change: fn(&mut CaseRules), want: &str| {
        let mut rules = CaseRules::default();
        change(&mut rules);
        assert_eq!(rules.check().unwrap_err().to_string(), want);
    };
    check(|r| r.pause_total_max = SignedDuration::ZERO, "rules.pause_total_max: 0s must be positive");
    check(|r| r.follow_up_after = dur(-5), "rules.follow_up_after: 5m ago must be positive");
    check(|r| r.reopen_window = dur(91 * DAY), "rules.reopen_window: 2184h is longer than 2160h");
    check(
        |r| r.escalate_before = dur(HOUR),
        "rules.escalate_before: 1h must be shorter than rules.first_response_target (1h)",
    );
    check(
        |r| r.first_response_target = dur(49 * HOUR),
        "rules.first_response_target: 49h must not be longer than rules.resolution_target (48h)",
    );
    check(|r| r.goodwill.agent_minor = -1, "rules.goodwill.agent_minor: -1 is not between 0 and 10000000");
    check(
        |r| r.goodwill.admin_minor = 5_000,
        "rules.goodwill.admin_minor: 5000 is below the limit of a lower role (10000)",
    );
    // Rules read from settings: durations in ISO 8601, unknown fields refused.
    let read: CaseRules = serde_json::from_str(r#"{"first_response_target":"PT30M"}"#).unwrap();
    assert_eq!(read.first_response_target, dur(30));
    assert_eq!(read.resolution_target, CaseRules::default().resolution_target);
    assert!(serde_json::from_str::<CaseRules>(r#"{"first_reponse_target":"PT30M"}"#).is_err());
}

type Setup = fn(&mut Run);

/// Each bad command gets its own error, naming the field or action and the value.
#[test]
fn every_refusal_says_what_and_why() {
    fn none(_: &mut Run) {}
    fn responded(r: &mut Run) {
        r.respond(10);
    }
    fn offered(r: &mut Run) {
        r.respond(10).offer("agent-3", 20);
    }
    fn fixed(r: &mut Run) {
        r.respond(10).fix(HOUR);
    }
    fn closed(r: &mut Run) {
        r.respond(10).fix(HOUR);
        r.act(&owner(), Command::Close, HOUR);
    }
    fn gave(r: &mut Run) {
        r.respond(10);
        r.act(&owner(), goodwill(1_000), 20);
    }
    fn compensated(r: &mut Run) {
        r.act(&owner(), compensation("k1", 500, usd()), 20);
    }
    fn apologised(r: &mut Run) {
        fixed(r);
        r.act(&owner(), Command::SendMemoryNote { kind: MemoryKind::Apology, text: s("Sorry") }, HOUR);
    }
    let eur = Currency::parse("EUR").unwrap();
    let long = "x".repeat(NOTE_BYTES_MAX + 1);
    let rows: Vec<(Setup, Actor, Command, i64, &str)> = vec![
        (
            none,
            agent("agent-5"),
            respond_cmd(),
            10,
            "agent-5 may not act on this case: it is owned by agent-1 (only the owner, a lead or an admin may)",
        ),
        (none, agent(AMENDS), respond_cmd(), 10, "actor: \"amends\" is reserved for amends' own steps"),
        (
            none,
            owner(),
            respond_cmd(),
            4,
            "now (2026-11-23T09:04:00Z) is before the case's last event (2026-11-23T09:05:00Z)",
        ),
        (none, owner(), Command::Respond { message: s(" ") }, 10, "message: must not be empty"),
        (responded, owner(), respond_cmd(), 20, "first response: already sent at 2026-11-23T09:10:00Z"),
        (
            none,
            owner(),
            Command::OfferHandover { to: lead(), note: note("x") },
            10,
            "to: lead-1 is lead, not an agent; cases are owned by agents",
        ),
        (
            none,
            owner(),
            Command::OfferHandover { to: admin(), note: note("x") },
            10,
            "to: admin-1 is admin, not an agent; cases are owned by agents",
        ),
        (
            none,
            owner(),
            Command::OfferHandover { to: owner(), note: note("x") },
            10,
            "hand-over to agent-1 refused: agent-1 already owns the case",
        ),
        (
            none,
            owner(),
            Command::OfferHandover { to: agent("agent-3"), note: note("") },
            10,
            "note: must not be empty",
        ),
        (
            offered,
            owner(),
            Command::OfferHandover { to: agent("agent-7"), note: note("x") },
            30,
            "hand-over to agent-7 refused: a hand-over to agent-3 is already waiting for acceptance",
        ),
        (
            offered,
            agent("agent-7"),
            Command::AcceptHandover { note: note("") },
            30,
            "agent-7 may not accept the hand-over: it was offered to agent-3",
        ),
        (
            offered,
            lead(),
            Command::DeclineHandover { note: note("no") },
            30,
            "lead-1 may not decline the hand-over: it was offered to agent-3",
        ),
        (
            offered,
            agent("agent-3"),
            Command::DeclineHandover { note: note("") },
            30,
            "note: must not be empty",
        ),
        (
            none,
            agent("agent-3"),
            Command::AcceptHandover { note: note("") },
            10,
            "accept refused: no hand-over is waiting for acceptance",
        ),
        (
            none,
            owner(),
            Command::WithdrawHandover { note: note("x") },
            10,
            "withdraw refused: no hand-over is waiting for acceptance",
        ),
        (
            none,
            owner(),
            Command::Pause { reason: s("waiting") },
            10,
            "pause refused: the customer has had no first response yet",
        ),
        (responded, owner(), Command::Pause { reason: s("") }, 20, "reason: must not be empty"),
        (
            responded,
            owner(),
            Command::Pause { reason: long.clone() },
            20,
            "reason: 2001 bytes, longer than 2000",
        ),
        (responded, owner(), Command::Resume, 20, "resume refused: the case is open; it is not paused"),
        (
            gave,
            owner(),
            goodwill(1_500),
            30,
            "goodwill of 15.00 USD refused: agent may bring a case's goodwill to at most 20.00 USD, and 10.00 USD was given already",
        ),
        (none, owner(), goodwill(0), 10, "amount_minor: 0 must be positive"),
        (
            none,
            owner(),
            Command::AddGoodwill { amount_minor: 100, note: s("") },
            10,
            "note: must not be empty",
        ),
        (
            closed,
            lead(),
            goodwill(100),
            2 * HOUR,
            "goodwill refused: the case is closed; reopen it first (or open a new case)",
        ),
        (none, owner(), compensation("k1", 500, eur), 10, "currency: EUR is not the case's currency (USD)"),
        (
            compensated,
            owner(),
            compensation("k1", 600, usd()),
            30,
            "credit_key: k1 was recorded with 5.00 USD, not 6.00 USD",
        ),
        (none, owner(), compensation("k1", -5, usd()), 10, "amount_minor: -5 must be positive"),
        (none, owner(), compensation("", 5, usd()), 10, "credit_key: must not be empty"),
        (
            fixed,
            owner(),
            Command::Fix { note: note("again") },
            2 * HOUR,
            "fix refused: the case is fixed; close it, or reopen it if the fault is back",
        ),
        (none, owner(), Command::Fix { note: note("") }, 10, "note: must not be empty"),
        (none, owner(), Command::Close, 10, "close refused: the case is open; record the fix first"),
        (
            closed,
            owner(),
            Command::Close,
            2 * HOUR,
            "close refused: the case is closed; there is nothing to do",
        ),
        (
            none,
            owner(),
            Command::SendMemoryNote { kind: MemoryKind::Apology, text: s("Sorry") },
            10,
            "memory note refused: the case is open; that comes after the fix: record the fix first",
        ),
        (
            apologised,
            owner(),
            Command::SendMemoryNote { kind: MemoryKind::Apology, text: s("Sorry again") },
            2 * HOUR,
            "apology note: already sent at 2026-11-23T10:00:00Z",
        ),
        (
            fixed,
            owner(),
            Command::SendMemoryNote {
                kind: MemoryKind::ThankYou,
                text: "x".repeat(MEMORY_NOTE_BYTES_MAX + 1),
            },
            2 * HOUR,
            "text: 8001 bytes, longer than 8000",
        ),
        (
            none,
            owner(),
            Command::Reopen { reason: s("back again") },
            10,
            "reopen refused: the case is open; only a fixed or closed case reopens",
        ),
        (fixed, owner(), Command::Reopen { reason: s("") }, 2 * HOUR, "reason: must not be empty"),
        (
            fixed,
            owner(),
            Command::Reopen { reason: s("It failed again") },
            HOUR + 7 * DAY + 1,
            "reopen refused: fixed at 2026-11-23T10:00:00Z, more than 168h before now (2026-11-30T10:01:00Z); open a new case",
        ),
    ];
    for (setup, actor, command, mins, want) in rows {
        let mut run = Run::open();
        setup(&mut run);
        let before = run.case.clone();
        let described = format!("{command:?} by {}", actor.id);
        let got = run.decide(&actor, command, mins).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_string()), "{described}");
        assert_eq!(run.case, before);
    }
}

#[test]
fn a_case_is_not_closed_with_a_hand_over_waiting() {
    let mut run = Run::open();
    run.respond(10).fix(HOUR).offer("agent-3", HOUR + 1);
    assert_eq!(
        run.decide(&owner(), Command::Close, HOUR + 2).unwrap_err().to_string(),
        "close refused: a hand-over to agent-3 is waiting for acceptance; settle or withdraw it first"
    );
    run.act(&owner(), Command::WithdrawHandover { note: note("I will finish it myself") }, HOUR + 3);
    assert_eq!(run.case.pending_handover(), None);
    run.act(&owner(), Command::Close, HOUR + 4);
    assert_eq!(run.case.status(), Status::Closed);
}

#[test]
fn the_owner_changes_only_when_the_new_owner_accepts() {
    let mut run = Run::open();
    run.respond(10).offer("agent-3", 20);
    assert_eq!(run.case.owner(), "agent-1");
    let pending = run.case.pending_handover().unwrap();
    assert_eq!((pending.to.as_str(), pending.note.as_str()), ("agent-3", "I am off tomorrow"));
    assert_eq!(pending.offered, Done { at: at(20), by: s("agent-1") });
    // Until then the offered agent may not act on the case.
    assert!(matches!(run.decide(&agent("agent-3"), goodwill(100), 25), Err(CaseError::NotOwner { .. })));

    run.act(&agent("agent-3"), Command::DeclineHandover { note: note("I am off too") }, 30);
    assert_eq!((run.case.owner(), run.case.pending_handover()), ("agent-1", None));

    run.offer("agent-3", 40);
    let events = run.act(&agent("agent-3"), Command::AcceptHandover { note: note("  ") }, 50);
    assert_eq!(events, vec![CaseEvent::new(at(50), "agent-3", Change::HandoverAccepted { note: s("") })]);
    assert_eq!(run.case.owner(), "agent-3");
    assert_eq!(run.case.pending_handover(), None);
    // The former owner no longer may act; a lead still may.
    assert_eq!(
        run.decide(&owner(), goodwill(100), 60).unwrap_err().to_string(),
        "agent-1 may not act on this case: it is owned by agent-3 (only the owner, a lead or an admin may)"
    );
    assert!(run.decide(&lead(), goodwill(100), 60).is_ok());
    // A lead or an admin hands a case over, to an agent.
    run.act(&admin(), Command::OfferHandover { to: agent("agent-1"), note: note("back to you") }, 70);
    run.act(&owner(), Command::AcceptHandover { note: note("ok") }, 80);
    assert_eq!(run.case.owner(), "agent-1");
    assert_eq!(Case::replay(&run.log).unwrap(), run.case);
}

#[test]
fn goodwill_limits_count_everyone_s_goodwill() {
    let mut run = Run::open();
    run.act(&owner(), goodwill(2_000), 10);
    assert_eq!(
        run.decide(&owner(), goodwill(1), 11).unwrap_err(),
        CaseError::GoodwillAboveLimit {
            role: Role::Agent,
            limit: Money::new(2_000, usd()),
            asked: Money::new(1, usd()),
            already: Money::new(2_000, usd()),
        }
    );
    run.act(&lead(), goodwill(8_000), 12);
    assert!(matches!(run.decide(&lead(), goodwill(1), 13), Err(CaseError::GoodwillAboveLimit { .. })));
    run.act(&admin(), goodwill(40_000), 14);
    assert_eq!(run.case.goodwill_total_minor(), 50_000);
    assert!(matches!(run.decide(&admin(), goodwill(1), 15), Err(CaseError::GoodwillAboveLimit { .. })));
    assert!(matches!(
        run.decide(&admin(), goodwill(i64::MAX), 15),
        Err(CaseError::GoodwillAboveLimit { .. })
    ));
    let given: Vec<(i64, &str)> =
        run.case.goodwill().iter().map(|g| (g.amount_minor, g.done.by.as_str())).collect();
    assert_eq!(given, [(2_000, "agent-1"), (8_000, "lead-1"), (40_000, "admin-1")]);
}

#[test]
fn compensation_is_recorded_once_per_credit_key_in_any_status() {
    let mut run = Run::open();
    run.respond(10).fix(HOUR);
    run.act(&owner(), Command::Close, HOUR);
    // The ledger holds it already: a closed case records it too.
    let events = run.act(&owner(), compensation("case:1:policy:v1", 3_000, usd()), 2 * HOUR);
    assert_eq!(events.len(), 1);
    // The app retrying after a crash records nothing more.
    assert_eq!(run.decide(&owner(), compensation("case:1:policy:v1", 3_000, usd()), 3 * HOUR), Ok(vec![]));
    assert_eq!(run.case.compensations().len(), 1);
    assert_eq!(run.case.compensations()[0].explanation, "Missed appointment: 30.00 USD fixed");
    // The app's credit step records a proposal by itself under the same rules.
    let amends =
        |key: &str, minor| run.case.compensation_by_amends(at(4 * HOUR), key, minor, usd(), " Policy line ");
    assert_eq!(amends("case:1:policy:v1", 3_000), Ok(vec![]));
    assert!(matches!(amends("case:1:policy:v1", 2_999), Err(CaseError::CompensationConflict { .. })));
    let events = amends("case:1:bonus:v1", 500).unwrap();
    let explanation = s("Policy line");
    let want = Change::Compensated {
        credit_key: s("case:1:bonus:v1"),
        amount_minor: 500,
        currency: usd(),
        explanation,
    };
    assert_eq!(events, vec![CaseEvent::new(at(4 * HOUR), AMENDS, want)]);
    run.append(&events);
    assert_eq!(
        run.case.compensation_by_amends(at(HOUR), "k", 1, usd(), "x").unwrap_err().to_string(),
        "now (2026-11-23T10:00:00Z) is before the case's last event (2026-11-23T13:00:00Z)"
    );
}

#[test]
fn fixing_a_paused_case_ends_the_pause_first() {
    let mut run = Run::open();
    run.respond(10).pause(20);
    let events = run.act(&owner(), Command::Fix { note: note("It works") }, 50);
    let changes: Vec<&str> = events.iter().map(|e| e.change.name()).collect();
    assert_eq!(changes, ["resumed", "fixed"]);
    assert!(events.iter().all(|e| e.at == at(50) && e.by == "agent-1"));
    assert_eq!(run.case.status(), Status::Fixed);
    assert_eq!(run.case.pauses()[0].until, Some(at(50)));
    assert_eq!(run.case.customer_time(at(500)), dur(50));
    assert_eq!(run.case.target_time(at(500), &run.rules), dur(20));
}

#[test]
fn pauses_stop_the_target_clock_up_to_their_limit() {
    let mut run = Run::open();
    let rules = run.rules;
    run.respond(10).pause(HOUR);
    assert_eq!(run.case.status(), Status::Paused);
    // A running pause counts up to now; the customer's time runs on regardless.
    assert_eq!(run.case.paused_time(at(3 * HOUR)), dur(2 * HOUR));
    assert_eq!(run.case.customer_time(at(3 * HOUR)), dur(3 * HOUR));
    assert_eq!(run.case.target_time(at(3 * HOUR), &rules), dur(HOUR));
    assert_eq!(run.case.deadline(Target::Resolution, at(3 * HOUR), &rules), at(50 * HOUR));
    // Past the limit the excess is the customer's time again: the target clock runs.
    let late = HOUR + 80 * HOUR;
    assert_eq!(run.case.paused_time(at(late)), dur(80 * HOUR));
    assert_eq!(run.case.counted_pause(at(late), &rules), dur(72 * HOUR));
    assert_eq!(run.case.target_time(at(late), &rules), dur(late - 72 * HOUR));
    assert_eq!(run.case.deadline(Target::Resolution, at(late), &rules), at(48 * HOUR + 72 * HOUR));
    run.resume(late);
    assert_eq!(
        run.decide(&owner(), Command::Pause { reason: s("again") }, late + 1).unwrap_err().to_string(),
        "pause refused: the case was paused for 80h already, the most is 72h"
    );
    // Pausing is refused only once the allowance is used up: 71 h used leaves room.
    let mut run = Run::open();
    run.respond(10).pause(HOUR).resume(72 * HOUR);
    assert_eq!(run.case.paused_time(at(100 * HOUR)), dur(71 * HOUR));
    run.pause(72 * HOUR + 1);
    assert_eq!(run.case.counted_pause(at(80 * HOUR), &rules), dur(72 * HOUR));
    assert_eq!(run.case.pauses().len(), 2);
}

#[test]
fn escalation_goes_to_the_lead_before_the_first_response_target_and_never_twice() {
    let mut run = Run::open();
    let rules = run.rules;
    // 1 h target, 15 min before: due from 45 minutes after the first contact.
    assert_eq!(run.case.due_escalations(at(44), &rules, Some("lead-1")), DueEscalations::default());
    let due = run.case.due_escalations(at(45), &rules, Some("lead-1"));
    let escalated =
        CaseEvent::new(at(45), AMENDS, Change::Escalated { target: Target::FirstResponse, to: s("lead-1") });
    assert_eq!(due.events, vec![escalated]);
    assert_eq!(due.events[0].trigger_key().as_deref(), Some("escalated:first_response"));
    // The owner has no lead: nothing to record, and the app is told.
    let orphan = run.case.due_escalations(at(45), &rules, None);
    assert_eq!((orphan.events, orphan.without_lead), (vec![], vec![Target::FirstResponse]));
    assert_eq!(run.case.due_escalations(at(45), &rules, Some("")).without_lead, vec![Target::FirstResponse]);

    run.append(&due.events);
    for mins in [45, 50, 2 * HOUR] {
        assert_eq!(run.case.due_escalations(at(mins), &rules, Some("lead-1")), DueEscalations::default());
    }
    // Appending the same escalation again is refused by the fold itself.
    let again =
        CaseEvent::new(at(50), AMENDS, Change::Escalated { target: Target::FirstResponse, to: s("lead-1") });
    assert_eq!(
        run.case.clone().apply(&again).unwrap_err().to_string(),
        "escalation of first_response: already escalated at 2026-11-23T09:45:00Z"
    );
    run.respond(2 * HOUR);
    // The resolution is due 48 h after the first contact: escalated from 47 h 45 min.
    assert!(run.case.due_escalations(at(47 * HOUR + 44), &rules, Some("lead-1")).events.is_empty());
    let due = run.case.due_escalations(at(47 * HOUR + 45), &rules, Some("lead-2"));
    assert_eq!(due.events.len(), 1);
    assert_eq!(due.events[0].change, Change::Escalated { target: Target::Resolution, to: s("lead-2") });
    run.append(&due.events);
    assert!(run.case.due_escalations(at(60 * HOUR), &rules, Some("lead-1")).events.is_empty());
    assert_eq!(run.case.escalations().len(), 2);
    assert_eq!(Case::replay(&run.log).unwrap(), run.case);
}

#[test]
fn a_met_target_is_not_escalated() {
    let rules = CaseRules::default();
    let mut run = Run::open();
    run.respond(30);
    assert!(run.case.due_escalations(at(59), &rules, Some("lead-1")).events.is_empty());
    // A fix before any response meets the first-response target too.
    let mut run = Run::open();
    run.fix(20);
    assert_eq!(run.case.met_at(Target::FirstResponse), Some(at(20)));
    assert!(run.case.due_escalations(at(50 * HOUR), &rules, Some("lead-1")).events.is_empty());
    let playbook = run.case.playbook(at(21), &rules);
    assert_eq!((playbook.steps[0].done.clone(), playbook.steps[0].due.clone()), (None, None));
    // A paused case whose target clock is stopped escalates only when it gets close.
    let mut run = Run::open();
    run.respond(10).pause(HOUR);
    assert!(run.case.due_escalations(at(60 * HOUR), &rules, Some("lead-1")).events.is_empty());
    // Past the 72 h of pause the clock runs again: 47 h 45 min of target time is reached
    // 72 h after the first contact plus 47 h 45 min.
    let escalate_at = 72 * HOUR + 47 * HOUR + 45;
    assert!(run.case.due_escalations(at(escalate_at - 1), &rules, Some("lead-1")).events.is_empty());
    let due = run.case.due_escalations(at(escalate_at), &rules, Some("lead-1"));
    assert_eq!(due.events.len(), 1, "{due:?}");
}

#[test]
fn reopening_within_the_window_continues_the_same_case_and_clock() {
    let mut run = Run::open();
    let rules = run.rules;
    run.respond(10).fix(2 * HOUR);
    run.act(&owner(), Command::Close, 3 * HOUR);
    assert_eq!(run.case.customer_time(at(5 * DAY)), dur(2 * HOUR));
    // Exactly at the end of the window is still within it.
    let reopen_at = 2 * HOUR + 7 * DAY;
    run.act(&owner(), Command::Reopen { reason: s("Offline again") }, reopen_at);
    assert_eq!((run.case.status(), run.case.fixed(), run.case.closed()), (Status::Open, None, None));
    assert_eq!(run.case.reopens(), 1);
    // The customer was never really fixed: their time runs from the first contact.
    assert_eq!(run.case.customer_time(at(reopen_at + HOUR)), dur(reopen_at + HOUR));
    assert_eq!(run.case.met_at(Target::Resolution), None);
    assert_eq!(run.case.due_follow_up(at(reopen_at + 10 * DAY), &rules), None);
    // The resolution target is long gone: escalated at once.
    let due = run.case.due_escalations(at(reopen_at), &rules, Some("lead-1"));
    assert_eq!(due.events.len(), 1);
    run.fix(reopen_at + HOUR);
    assert_eq!(run.case.customer_time(at(reopen_at + 9 * DAY)), dur(reopen_at + HOUR));
    assert_eq!(run.case.met_within_target(Target::Resolution, &rules), Some(false));
    assert_eq!(run.case.fixed_at(), Some(at(reopen_at + HOUR)));
    // The window runs from the fix that stands.
    assert!(run.decide(&owner(), Command::Reopen { reason: s("x") }, reopen_at + HOUR + 7 * DAY).is_ok());
    assert!(matches!(
        run.decide(&owner(), Command::Reopen { reason: s("x") }, reopen_at + HOUR + 7 * DAY + 1),
        Err(CaseError::ReopenWindowPassed { .. })
    ));
}

#[test]
fn the_follow_up_is_due_once_after_the_fix() {
    let mut run = Run::open();
    let rules = run.rules;
    run.respond(10).fix(HOUR);
    let due_at = HOUR + 3 * DAY;
    assert_eq!(run.case.due_follow_up(at(due_at - 1), &rules), None);
    assert_eq!(
        run.case.follow_up_event(at(due_at - 1), &rules, None).unwrap_err().to_string(),
        "follow-up: not due until 2026-11-26T10:00:00Z"
    );
    assert_eq!(run.case.due_follow_up(at(due_at), &rules), Some(at(due_at)));
    assert_eq!(run.case.due_follow_up(at(due_at + DAY), &rules), Some(at(due_at)));
    assert_eq!(
        run.case.follow_up_event(at(due_at), &rules, Some(" ")).unwrap_err().to_string(),
        "gift: must not be empty"
    );
    let event = run.case.follow_up_event(at(due_at + 5), &rules, Some("A month of HD channels")).unwrap();
    assert_eq!(event.by, AMENDS);
    assert_eq!(event.trigger_key().as_deref(), Some("follow_up"));
    run.append(std::slice::from_ref(&event));
    assert_eq!(run.case.due_follow_up(at(due_at + DAY), &rules), None);
    assert_eq!(
        run.case.follow_up_event(at(due_at + DAY), &rules, None).unwrap_err().to_string(),
        "follow-up: already sent at 2026-11-26T10:05:00Z"
    );
    // Not again after a re-opening and a new fix.
    run.act(&owner(), Command::Reopen { reason: s("again") }, due_at + DAY);
    run.fix(due_at + DAY + HOUR);
    assert_eq!(run.case.due_follow_up(at(due_at + 10 * DAY), &rules), None);
    // An open case has nothing to follow up.
    let open = Run::open();
    assert_eq!(
        open.case.follow_up_event(at(10 * DAY), &rules, None).unwrap_err().to_string(),
        "follow-up refused: the case is open; that comes after the fix: record the fix first"
    );
}

/// The five steps for a mishap that was the customer's own doing: the procedure is the
/// same, with a thank-you note rather than an apology.
#[test]
fn five_steps_for_a_customer_fault_case() {
    let mut run = Run::new(Fault::Customer);
    let rules = run.rules;
    let playbook = run.case.playbook(at(5), &rules);
    assert_eq!(playbook.next, Some(Step::Acknowledge));
    assert_eq!(
        playbook.steps[0].due,
        Some(Due { at: Some(at(HOUR)), passed: false, automatic: false }),
        "{playbook:?}"
    );

    // 1. Acknowledge, within the hour.
    run.act(
        &owner(),
        Command::Respond { message: s("Thanks for calling; I will sort out your router today") },
        20,
    );
    // 2. Own it: a hand-over to a colleague on the next shift, accepted.
    run.offer("agent-2", HOUR);
    run.act(&agent("agent-2"), Command::AcceptHandover { note: note("Hello, I am taking over") }, 2 * HOUR);
    let agent2 = agent("agent-2");
    // ... waiting for the customer to be home, then the fix.
    run.act(&agent2, Command::Pause { reason: s("Customer is home after 18:00") }, 3 * HOUR);
    run.act(&agent2, Command::Resume, 9 * HOUR);
    // 3. Lessen: goodwill within the agent's limit.
    run.act(&agent2, goodwill(1_500), 9 * HOUR);
    let playbook = run.case.playbook(at(9 * HOUR), &rules);
    assert_eq!(playbook.next, Some(Step::OwnAndFix));
    assert_eq!(playbook.steps[2].done, Some(Done { at: at(9 * HOUR), by: s("agent-2") }));
    assert_eq!(playbook.customer_time, dur(9 * HOUR));
    assert_eq!(playbook.target_time, dur(3 * HOUR));
    assert_eq!(playbook.steps[1].due.as_ref().unwrap().at, Some(at(54 * HOUR)));
    run.act(&agent2, Command::Fix { note: note("Router reset to factory settings, line tested") }, 10 * HOUR);
    // 4. Manage the memory.
    let playbook = run.case.playbook(at(10 * HOUR), &rules);
    assert_eq!(playbook.next, Some(Step::Memory));
    run.act(
        &agent2,
        Command::SendMemoryNote { kind: MemoryKind::ThankYou, text: s("Thank you for your patience, Ana") },
        10 * HOUR + 5,
    );
    run.act(&agent2, Command::Close, 10 * HOUR + 6);
    // 5. Extend: amends sends the follow-up three days after the fix.
    let follow_up_at = 10 * HOUR + 3 * DAY;
    assert_eq!(run.case.due_follow_up(at(follow_up_at), &rules), Some(at(follow_up_at)));
    let event = run.case.follow_up_event(at(follow_up_at), &rules, Some("10% off next month")).unwrap();
    run.append(&[event]);

    let playbook = run.case.playbook(at(follow_up_at), &rules);
    let done: Vec<_> = playbook
        .steps
        .iter()
        .map(|s| (s.step, s.done.as_ref().map(|d| (d.at, d.by.as_str())), s.within_target))
        .collect();
    assert_eq!(
        done,
        [
            (Step::Acknowledge, Some((at(20), "agent-1")), Some(true)),
            (Step::OwnAndFix, Some((at(10 * HOUR), "agent-2")), Some(true)),
            (Step::Lessen, Some((at(9 * HOUR), "agent-2")), None),
            (Step::Memory, Some((at(10 * HOUR + 5), "agent-2")), None),
            (Step::Extend, Some((at(follow_up_at), AMENDS)), None),
        ]
    );
    assert!(playbook.steps.iter().all(|s| s.due.is_none()), "{playbook:?}");
    assert_eq!(playbook.next, None);
    assert_eq!((playbook.status, playbook.owner.as_str()), (Status::Closed, "agent-2"));
    assert_eq!(run.case.customer_time(at(follow_up_at)), dur(10 * HOUR));
    assert_eq!(run.case.target_time(at(follow_up_at), &rules), dur(4 * HOUR));
    assert_eq!(run.case.follow_up().unwrap().gift.as_deref(), Some("10% off next month"));

    // The log survives JSON and replays to the same case.
    let json = serde_json::to_string(&run.log).unwrap();
    let back: Vec<CaseEvent> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, run.log);
    assert_eq!(Case::replay(&back).unwrap(), run.case);
}

#[test]
fn the_procedure_is_the_same_whatever_the_fault() {
    let script = |fault: Fault| {
        let mut run = Run::new(fault);
        run.respond(10).pause(20).resume(30);
        run.act(&owner(), goodwill(2_000), 40);
        let refused = run.decide(&owner(), goodwill(1), 41);
        run.fix(50);
        let rules = run.rules;
        let follow_up = run.case.due_follow_up(at(50 + 3 * DAY), &rules);
        let escalations = Run::new(fault).case.due_escalations(at(45), &rules, Some("lead-1"));
        (run.log[1..].to_vec(), refused, follow_up, escalations, run.case.playbook(at(60), &rules))
    };
    let company = script(Fault::Company);
    assert_eq!(company.2, Some(at(50 + 3 * DAY)));
    for fault in [Fault::Customer, Fault::Unknown] {
        assert_eq!(script(fault), company, "{fault}");
    }
}

#[test]
fn replay_refuses_a_log_that_could_not_have_happened() {
    let mut run = Run::open();
    run.respond(10).offer("agent-3", 20);
    let log = run.log.clone();
    let check = |events: Vec<CaseEvent>, want: &str| {
        assert_eq!(Case::replay(&events).unwrap_err().to_string(), want);
    };
    check(vec![], "the log is empty: a case starts with an opened event");
    check(
        log[1..].to_vec(),
        "event 0 (first_response): a case starts with an opened event, not first_response",
    );
    check(vec![log[0].clone(), log[0].clone()], "event 1 (opened): the case is already opened");
    let mut early = log.clone();
    early[2].at = at(9);
    check(
        early,
        "event 2 (handover_offered): at: 2026-11-23T09:09:00Z is before the previous event (2026-11-23T09:10:00Z)",
    );
    let mut stolen = log.clone();
    stolen.push(CaseEvent::new(at(30), "agent-9", Change::HandoverAccepted { note: s("") }));
    check(
        stolen,
        "event 3 (handover_accepted): agent-9 may not accept the hand-over: it was offered to agent-3",
    );
    let mut forged = log.clone();
    forged.push(CaseEvent::new(at(30), "agent-1", Change::FollowUp { gift: None }));
    check(forged, "event 3 (follow_up): follow_up: by agent-1, but only amends records it");
    let mut forged = log.clone();
    forged.push(CaseEvent::new(at(30), AMENDS, Change::Fixed { note: s("x") }));
    check(forged, "event 3 (fixed): fixed: by amends, but only a person records it");
    let mut resumed = log.clone();
    resumed.push(CaseEvent::new(at(30), "agent-1", Change::Resumed));
    check(resumed, "event 3 (resumed): resume refused: the case is open; it is not paused");
    let mut opened = log[0].clone();
    if let Change::Opened { first_contact_at, .. } = &mut opened.change {
        *first_contact_at = at(6);
    }
    check(
        vec![opened],
        "event 0 (opened): first_contact_at: 2026-11-23T09:06:00Z is after 2026-11-23T09:05:00Z, when the case was opened",
    );
    // A case holds at most EVENTS_MAX events, in a log and in decisions.
    let mut long = vec![log[0].clone()];
    let offer = Change::HandoverOffered { to: s("agent-3"), note: s("x") };
    let decline = Change::HandoverDeclined { note: s("no") };
    while long.len() < EVENTS_MAX {
        let change = if long.len() % 2 == 1 { offer.clone() } else { decline.clone() };
        let by = if long.len() % 2 == 1 { "agent-1" } else { "agent-3" };
        long.push(CaseEvent::new(at(10), by, change));
    }
    let full = Case::replay(&long).unwrap();
    assert_eq!(full.version(), EVENTS_MAX);
    assert_eq!(
        full.decide(&owner(), respond_cmd(), at(10), &CaseRules::default()),
        Err(CaseError::TooManyEvents)
    );
    long.push(CaseEvent::new(at(10), "agent-1", Change::FirstResponse { message: s("x") }));
    check(long, "event 1000 (first_response): the case holds 1000 events, the most it may");
}

#[test]
fn events_are_flat_tagged_json() {
    let mut run = Run::open();
    run.respond(10).pause(20);
    let paused = serde_json::to_value(&run.log[2]).unwrap();
    assert_eq!(
        paused,
        serde_json::json!({
            "at": "2026-11-23T09:20:00Z",
            "by": "agent-1",
            "type": "paused",
            "reason": "Waiting for access to the building",
        })
    );
    let opened = serde_json::to_value(&run.log[0]).unwrap();
    assert_eq!(opened["type"], "opened");
    assert_eq!(opened["currency"], "USD");
    assert_eq!(opened["source"], serde_json::json!({"kind": "appointment", "appointment_id": "appt-7"}));
    assert_eq!(opened["first_contact_at"], "2026-11-23T09:00:00Z");
    let mut bad = opened.clone();
    bad["currency"] = "XXX".into();
    let err = serde_json::from_value::<CaseEvent>(bad).unwrap_err().to_string();
    assert!(err.contains("\"XXX\" is not an ISO 4217 currency code"), "{err}");
    let escalated =
        CaseEvent::new(at(1), AMENDS, Change::Escalated { target: Target::Resolution, to: s("lead-1") });
    let text = serde_json::to_string(&escalated).unwrap();
    assert_eq!(
        text,
        r#"{"at":"2026-11-23T09:01:00Z","by":"amends","type":"escalated","target":"resolution","to":"lead-1"}"#
    );
    assert_eq!(serde_json::from_str::<CaseEvent>(&text).unwrap(), escalated);
}

#[test]
fn names_read_back() {
    for &role in Role::ALL {
        assert_eq!(Role::parse(role.as_str()), Some(role));
    }
    for &step in Step::ALL {
        assert_eq!(Step::parse(&step.to_string()), Some(step));
    }
    assert_eq!(MemoryKind::parse("thank_you"), Some(MemoryKind::ThankYou));
    assert_eq!(Status::parse("Open"), None);
    assert_eq!(serde_json::to_string(&Step::OwnAndFix).unwrap(), "\"own_and_fix\"");
}

/// Short rules so that random scripts reach every limit.
fn quick_rules() -> CaseRules {
    CaseRules {
        first_response_target: dur(30),
        resolution_target: dur(4 * HOUR),
        escalate_before: dur(10),
        reopen_window: dur(DAY),
        pause_total_max: dur(2 * HOUR),
        follow_up_after: dur(12 * HOUR),
        goodwill: GoodwillLimits::default(),
    }
}

fn actors() -> [Actor; 5] {
    [agent("agent-1"), agent("agent-2"), agent("agent-3"), lead(), admin()]
}

/// One step of a random script: which command, by whom, after how long, with what amount.
fn command(op: u8, who: usize, amount: i64) -> Command {
    let to = actors()[who % 3].clone();
    match op {
        0 => respond_cmd(),
        1 => Command::OfferHandover { to, note: note("over to you") },
        2 => Command::AcceptHandover { note: note("mine") },
        3 => Command::DeclineHandover { note: note("not mine") },
        4 => Command::WithdrawHandover { note: note("never mind") },
        5 => Command::Pause { reason: s("waiting") },
        6 => Command::Resume,
        7 => compensation(&format!("k{}", amount % 3), 100 + amount % 2, usd()),
        8 => goodwill(amount),
        9 => Command::Fix { note: note("fixed") },
        10 => Command::SendMemoryNote {
            kind: if who.is_multiple_of(2) { MemoryKind::Apology } else { MemoryKind::ThankYou },
            text: s("Dear customer"),
        },
        11 => Command::Close,
        _ => Command::Reopen { reason: s("back") },
    }
}

fn script() -> impl Strategy<Value = (i64, Vec<(u8, usize, i64, i64)>)> {
    let step = (0u8..15, 0usize..5, prop_oneof![0i64..20, 0i64..(3 * HOUR), 0i64..(2 * DAY)], 1i64..3_000);
    (0i64..600, prop::collection::vec(step, 0..80))
}

proptest! {
    /// Any run of decided commands and automatic steps: the state built one event at a
    /// time is the state replayed from the log; the clocks keep their order; each
    /// automatic step, once appended, is not due again.
    #[test]
    fn decided_events_replay_to_the_same_case((before, steps) in script()) {
        let rules = quick_rules();
        prop_assert_eq!(rules.check(), Ok(()));
        let mut req = request(Fault::Company);
        req.first_contact_at = at(-before);
        let opened = Case::open("agent-1", &req, at(0)).unwrap();
        let mut case = Case::replay(std::slice::from_ref(&opened)).unwrap();
        let mut log = vec![opened];
        let mut mins = 0;
        for (op, who, wait, amount) in steps {
            mins += wait;
            let now = at(mins);
            let lead = who.is_multiple_of(2).then_some("lead-1");
            let events = match op {
                13 => case.due_escalations(now, &rules, lead).events,
                14 => match case.due_follow_up(now, &rules) {
                    Some(_) => vec![case.follow_up_event(now, &rules, Some("a gift")).unwrap()],
                    None => vec![],
                },
                _ => case.decide(&actors()[who], command(op, who, amount), now, &rules).unwrap_or_default(),
            };
            let version = case.version();
            for e in &events {
                prop_assert_eq!(e.at, now);
                case.apply(e).unwrap();
                log.push(e.clone());
            }
            prop_assert_eq!(case.version(), version + events.len());
            if op == 13 {
                prop_assert_eq!(case.due_escalations(now, &rules, lead).events, vec![]);
            }
            if op == 14 {
                prop_assert_eq!(case.due_follow_up(now, &rules), None);
            }
            let customer = case.customer_time(now);
            let target = case.target_time(now, &rules);
            prop_assert!(customer >= target && target >= SignedDuration::ZERO, "{customer} {target}");
            prop_assert!(case.counted_pause(now, &rules) <= rules.pause_total_max);
        }
        prop_assert_eq!(Case::replay(&log).unwrap(), case);
    }

    /// The customer's time, and the target time, never go backwards as `now` moves on.
    #[test]
    fn clocks_never_go_backwards((before, steps) in script(), probes in prop::collection::vec(0i64..(4 * DAY), 2..20)) {
        let rules = quick_rules();
        let mut req = request(Fault::Company);
        req.first_contact_at = at(-before);
        let mut case = Case::replay(&[Case::open("agent-1", &req, at(0)).unwrap()]).unwrap();
        let mut mins = 0;
        for (op, who, wait, amount) in steps {
            mins += wait;
            let Ok(events) = case.decide(&actors()[who], command(op % 13, who, amount), at(mins), &rules) else {
                continue;
            };
            for e in &events {
                case.apply(e).unwrap();
            }
        }
        let mut probes = probes;
        probes.sort();
        let times: Vec<(SignedDuration, SignedDuration)> = probes
            .iter()
            .map(|&p| (case.customer_time(at(p - before)), case.target_time(at(p - before), &rules)))
            .collect();
        for pair in times.windows(2) {
            prop_assert!(pair[0].0 <= pair[1].0, "{:?}", times);
            prop_assert!(pair[0].1 <= pair[1].1, "{:?}", times);
        }
        prop_assert_eq!(case.customer_time(at(-before - 1)), SignedDuration::ZERO);
    }
}
