-- Appointments, sign-ups and cancellations of accounts, satisfaction surveys, and what
-- the recovery metrics read (issue 6).

-- ---- appointments ----

-- A booked visit: the core's `appointment::Appointment`, flattened, and who owns it.
-- `number` is the sequence number the reference was made from (`APT-00000427` is 42):
-- references carry a check digit, so they do not sort by number as text, and lists are
-- ordered by it instead.
CREATE TABLE appointments (
    reference          TEXT    NOT NULL PRIMARY KEY,
    number             INTEGER NOT NULL UNIQUE CHECK (number >= 1),
    customer_id        TEXT    NOT NULL,
    -- NULL: booked into a pool without a named technician.
    technician_id      TEXT,
    -- The agent who owns the visit: a failure opens a case for them.
    owner              TEXT    NOT NULL,
    window_start       INTEGER NOT NULL,
    window_end         INTEGER NOT NULL CHECK (window_end > window_start),
    status             TEXT    NOT NULL CHECK (status IN ('booked', 'arrived', 'completed',
                           'cancelled_by_customer', 'cancelled_by_provider', 'missed')),
    booked_at          INTEGER NOT NULL,
    arrived_at         INTEGER,
    completed_at       INTEGER,
    cancelled_at       INTEGER,
    -- window_start - cancelled_at in whole seconds (negative after the start).
    cancel_notice_secs INTEGER,
    missed_at          INTEGER,
    rebooked_from      TEXT,
    -- When amends finished checking the visit for a failure and wrote every effect of
    -- one. Only ever set, never cleared.
    checked_at         INTEGER,
    -- Whether the booking's confirmation is queued to the customer: set once it is, so
    -- a crash between the booking and its confirmation is made good by the next tick.
    confirmed          INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
    -- Bumped by every update: an update that read an older version is refused.
    version            INTEGER NOT NULL CHECK (version >= 1)
) STRICT;

-- One index per filter of `appointments`, each ending in the page order (number).
CREATE INDEX appointments_customer ON appointments (customer_id, number);
CREATE INDEX appointments_technician ON appointments (technician_id, number);
CREATE INDEX appointments_status ON appointments (status, number);
-- A technician's live visits, read by every booking of that technician.
CREATE INDEX appointments_technician_live ON appointments (technician_id, window_start)
    WHERE status IN ('booked', 'arrived');
-- Live visits by time, for the day's plan. Partial indexes that serve an equality on
-- status (or decision, below) lead with that column: SQLite, without statistics, takes
-- an equality over a range, and would otherwise read through `appointments_status`.
CREATE INDEX appointments_live ON appointments (status, window_start, number)
    WHERE status IN ('booked', 'arrived');
-- Only the visits not yet checked: the tick looks for those whose window has ended
-- (the first), and for provider cancellations whatever their window (the second).
CREATE INDEX appointments_unconfirmed ON appointments (number) WHERE NOT confirmed;
CREATE INDEX appointments_to_check ON appointments (window_end, number) WHERE checked_at IS NULL;
CREATE INDEX appointments_unchecked_status ON appointments (status, window_end, number)
    WHERE checked_at IS NULL;
-- Windows ending in a period, for the counts.
CREATE INDEX appointments_window_end ON appointments (window_end);

-- Appointment references, handed out like incident ids (the app adds the check digit).
INSERT INTO counters (name, value) VALUES ('appointment', 0);

-- A slot kept for the rebooking of a failed appointment until `until`: only the booking
-- rebooked from `for_reference` may take it meanwhile. Not a foreign key: the app keeps
-- the holds under the failure's key and writes them after the failure is recorded.
CREATE TABLE appointment_holds (
    for_reference TEXT    NOT NULL,
    technician_id TEXT    NOT NULL,
    window_start  INTEGER NOT NULL,
    window_end    INTEGER NOT NULL CHECK (window_end > window_start),
    until         INTEGER NOT NULL,
    PRIMARY KEY (for_reference, technician_id, window_start)
) STRICT;
CREATE INDEX appointment_holds_technician ON appointment_holds (technician_id, window_start);
CREATE INDEX appointment_holds_until ON appointment_holds (until);

-- ---- sign-ups and cancellations of accounts ----

-- How a customer signed up, and in how many requests (the effort a journey asks of them).
CREATE TABLE signups (
    customer_id TEXT    NOT NULL PRIMARY KEY,
    at          INTEGER NOT NULL,
    channel     TEXT    NOT NULL,
    steps       INTEGER NOT NULL CHECK (steps >= 0)
) STRICT;

-- A customer's cancellation of their account, with the final bill they were shown.
CREATE TABLE cancellations (
    reference        TEXT    NOT NULL PRIMARY KEY,
    customer_id      TEXT    NOT NULL,
    requested_at     INTEGER NOT NULL,
    effective_at     INTEGER NOT NULL,
    channel          TEXT    NOT NULL,
    -- NULL: the customer skipped the question.
    reason           TEXT,
    -- The one retention offer shown, if any.
    retention_offer  TEXT,
    -- > 0 the customer owes; < 0 a refund.
    final_bill_minor INTEGER NOT NULL,
    currency         TEXT    NOT NULL,
    -- JSON, kept as text: read back byte for byte.
    final_bill       TEXT    NOT NULL,
    steps            INTEGER NOT NULL CHECK (steps >= 0),
    -- JSON array of every step with its time.
    audit            TEXT    NOT NULL
) STRICT;
CREATE INDEX cancellations_customer ON cancellations (customer_id, requested_at);
-- Recent cancellations, for the tick that re-queues a confirmation a crash kept back.
CREATE INDEX cancellations_requested ON cancellations (requested_at, reference);
-- Cancellations that take effect later than requested (at the end of the billing cycle):
-- the customer stays active until then. The tick marks each one applied when it sets
-- the status, once: a customer the book makes active again later is not cancelled again.
CREATE INDEX cancellations_deferred ON cancellations (effective_at, reference)
    WHERE effective_at > requested_at;
CREATE TABLE cancellations_applied (
    reference  TEXT    NOT NULL PRIMARY KEY,
    applied_at INTEGER NOT NULL
) STRICT;

-- Cancellation references: CAN-000001, ...
INSERT INTO counters (name, value) VALUES ('cancellation', 0);

-- A cancellation is a record of what the customer was told and asked: never changed or
-- removed.
CREATE TRIGGER cancellations_no_update BEFORE UPDATE ON cancellations
BEGIN
    SELECT RAISE(ABORT, 'cancellations are append-only');
END;

CREATE TRIGGER cancellations_no_delete BEFORE DELETE ON cancellations
BEGIN
    SELECT RAISE(ABORT, 'cancellations are append-only');
END;

-- ---- surveys ----

-- Every survey decision, keyed by its subject (the core's `survey::Subject::key()`),
-- written once and never overwritten: sampling again must not change a decision. Only a
-- `send` decision gets a survey id, and its sending and answer are recorded on it.
CREATE TABLE survey_decisions (
    subject_key TEXT    NOT NULL PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    -- The core's Subject as JSON, kept as text.
    subject     TEXT    NOT NULL,
    case_id     TEXT,
    incident_id TEXT,
    decision    TEXT    NOT NULL CHECK (decision IN ('send', 'not_sampled', 'suppressed')),
    reason      TEXT,
    decided_at  INTEGER NOT NULL,
    survey_id   TEXT    UNIQUE,
    send_at     INTEGER,
    expires_at  INTEGER,
    scale       TEXT,
    sent_at     INTEGER,
    answered_at INTEGER,
    score       INTEGER,
    CHECK ((decision = 'send') = (survey_id IS NOT NULL)),
    CHECK (decision <> 'send' OR send_at IS NOT NULL)
) STRICT;
-- A customer's surveys sent or due, for the minimum gap between two of them.
CREATE INDEX survey_decisions_customer_send ON survey_decisions (customer_id, send_at)
    WHERE decision = 'send';
-- Only the surveys still to send (decision first: see `appointments_live`).
CREATE INDEX survey_decisions_due ON survey_decisions (decision, send_at, subject_key)
    WHERE sent_at IS NULL;
CREATE INDEX survey_decisions_decision ON survey_decisions (decision, subject_key);
-- Only the answered ones, fewer by far.
CREATE INDEX survey_decisions_answered ON survey_decisions (subject_key) WHERE answered_at IS NOT NULL;

-- Survey ids: SUR-000001, ...
INSERT INTO counters (name, value) VALUES ('survey', 0);

-- Whether a survey decision names the case (or, for a customer recovered from an
-- incident, the impact), set in the transaction that records the decision. The tick
-- looks for fixed cases and recovered customers without one: these flags keep that to
-- an index of the undecided ones instead of an anti-join over every case and every impact
-- there ever was (one incident may affect a million customers).
ALTER TABLE cases ADD COLUMN survey_decided INTEGER NOT NULL DEFAULT 0 CHECK (survey_decided IN (0, 1));
ALTER TABLE impacts ADD COLUMN survey_decided INTEGER NOT NULL DEFAULT 0 CHECK (survey_decided IN (0, 1));
CREATE INDEX cases_unsurveyed ON cases (fixed_at, case_id) WHERE fixed_at IS NOT NULL AND NOT survey_decided;
CREATE INDEX impacts_unsurveyed ON impacts (incident_id, customer_id) WHERE NOT survey_decided;
CREATE INDEX incidents_resolved ON incidents (resolved_at, incident_id) WHERE resolved_at IS NOT NULL;

-- ---- recovery metrics ----

-- Cases by the time they were opened. (A customer's contacts in a period are read
-- through `contacts_customer`: a customer has few.)
CREATE INDEX cases_opened ON cases (opened_at, case_id);
