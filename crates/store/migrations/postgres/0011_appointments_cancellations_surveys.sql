-- Appointments, sign-ups and cancellations of accounts, satisfaction surveys, and what
-- the recovery metrics read (issue 6); see the SQLite migration 0012 for the reasons.

-- ---- appointments ----

CREATE TABLE appointments (
    reference          TEXT   NOT NULL PRIMARY KEY,
    number             BIGINT NOT NULL UNIQUE CHECK (number >= 1),
    customer_id        TEXT   NOT NULL,
    technician_id      TEXT,
    owner              TEXT   NOT NULL,
    window_start       BIGINT NOT NULL,
    window_end         BIGINT NOT NULL CHECK (window_end > window_start),
    status             TEXT   NOT NULL CHECK (status IN ('booked', 'arrived', 'completed',
                           'cancelled_by_customer', 'cancelled_by_provider', 'missed')),
    booked_at          BIGINT NOT NULL,
    arrived_at         BIGINT,
    completed_at       BIGINT,
    cancelled_at       BIGINT,
    cancel_notice_secs BIGINT,
    missed_at          BIGINT,
    rebooked_from      TEXT,
    checked_at         BIGINT,
    -- Whether the booking's confirmation is queued to the customer: set once it is, so
    -- a crash between the booking and its confirmation is made good by the next tick.
    confirmed          BOOLEAN NOT NULL DEFAULT false,
    version            BIGINT NOT NULL CHECK (version >= 1)
);

CREATE INDEX appointments_customer ON appointments (customer_id, number);
CREATE INDEX appointments_technician ON appointments (technician_id, number);
CREATE INDEX appointments_status ON appointments (status, number);
CREATE INDEX appointments_technician_live ON appointments (technician_id, window_start)
    WHERE status IN ('booked', 'arrived');
CREATE INDEX appointments_live ON appointments (status, window_start, number)
    WHERE status IN ('booked', 'arrived');
CREATE INDEX appointments_unconfirmed ON appointments (number) WHERE NOT confirmed;
CREATE INDEX appointments_to_check ON appointments (window_end, number) WHERE checked_at IS NULL;
CREATE INDEX appointments_unchecked_status ON appointments (status, window_end, number)
    WHERE checked_at IS NULL;
CREATE INDEX appointments_window_end ON appointments (window_end);

INSERT INTO counters (name, value) VALUES ('appointment', 0);

CREATE TABLE appointment_holds (
    for_reference TEXT   NOT NULL,
    technician_id TEXT   NOT NULL,
    window_start  BIGINT NOT NULL,
    window_end    BIGINT NOT NULL CHECK (window_end > window_start),
    until         BIGINT NOT NULL,
    PRIMARY KEY (for_reference, technician_id, window_start)
);
CREATE INDEX appointment_holds_technician ON appointment_holds (technician_id, window_start);
CREATE INDEX appointment_holds_until ON appointment_holds (until);

-- ---- sign-ups and cancellations of accounts ----

CREATE TABLE signups (
    customer_id TEXT    NOT NULL PRIMARY KEY,
    at          BIGINT  NOT NULL,
    channel     TEXT    NOT NULL,
    steps       INTEGER NOT NULL CHECK (steps >= 0)
);

CREATE TABLE cancellations (
    reference        TEXT    NOT NULL PRIMARY KEY,
    customer_id      TEXT    NOT NULL,
    requested_at     BIGINT  NOT NULL,
    effective_at     BIGINT  NOT NULL,
    channel          TEXT    NOT NULL,
    reason           TEXT,
    retention_offer  TEXT,
    final_bill_minor BIGINT  NOT NULL,
    currency         TEXT    NOT NULL,
    -- TEXT, not JSONB (which normalises it): read back byte for byte.
    final_bill       TEXT    NOT NULL,
    steps            INTEGER NOT NULL CHECK (steps >= 0),
    audit            TEXT    NOT NULL
);
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
    applied_at BIGINT  NOT NULL
);

INSERT INTO counters (name, value) VALUES ('cancellation', 0);

CREATE FUNCTION cancellations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cancellations are append-only';
END;
$$;

CREATE TRIGGER cancellations_no_change BEFORE UPDATE OR DELETE ON cancellations
    FOR EACH ROW EXECUTE FUNCTION cancellations_append_only();

-- ---- surveys ----

CREATE TABLE survey_decisions (
    subject_key TEXT     NOT NULL PRIMARY KEY,
    customer_id TEXT     NOT NULL,
    subject     TEXT     NOT NULL,
    case_id     TEXT,
    incident_id TEXT,
    decision    TEXT     NOT NULL CHECK (decision IN ('send', 'not_sampled', 'suppressed')),
    reason      TEXT,
    decided_at  BIGINT   NOT NULL,
    survey_id   TEXT     UNIQUE,
    send_at     BIGINT,
    expires_at  BIGINT,
    scale       TEXT,
    sent_at     BIGINT,
    answered_at BIGINT,
    score       SMALLINT,
    CHECK ((decision = 'send') = (survey_id IS NOT NULL)),
    CHECK (decision <> 'send' OR send_at IS NOT NULL)
);
CREATE INDEX survey_decisions_customer_send ON survey_decisions (customer_id, send_at)
    WHERE decision = 'send';
CREATE INDEX survey_decisions_due ON survey_decisions (decision, send_at, subject_key)
    WHERE sent_at IS NULL;
CREATE INDEX survey_decisions_decision ON survey_decisions (decision, subject_key);
CREATE INDEX survey_decisions_answered ON survey_decisions (subject_key) WHERE answered_at IS NOT NULL;

INSERT INTO counters (name, value) VALUES ('survey', 0);

ALTER TABLE cases ADD COLUMN survey_decided BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE impacts ADD COLUMN survey_decided BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX cases_unsurveyed ON cases (fixed_at, case_id) WHERE fixed_at IS NOT NULL AND NOT survey_decided;
CREATE INDEX impacts_unsurveyed ON impacts (incident_id, customer_id) WHERE NOT survey_decided;
CREATE INDEX incidents_resolved ON incidents (resolved_at, incident_id) WHERE resolved_at IS NOT NULL;

-- ---- recovery metrics ----

CREATE INDEX cases_opened ON cases (opened_at, case_id);
