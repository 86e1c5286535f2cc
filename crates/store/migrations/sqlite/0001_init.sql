-- amends schema, SQLite flavour.
--
-- Instants are INTEGER unix microseconds. Tables are STRICT so a value of the wrong
-- type is refused at write time instead of surfacing later as a corrupt row.

-- ---- book ----

CREATE TABLE plans (
    plan_id             TEXT    NOT NULL PRIMARY KEY,
    name                TEXT    NOT NULL,
    monthly_price_minor INTEGER NOT NULL,
    currency            TEXT    NOT NULL
) STRICT;

CREATE TABLE elements (
    element_id TEXT NOT NULL PRIMARY KEY,
    parent_id  TEXT,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL
) STRICT;

CREATE TABLE customers (
    customer_id  TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    email        TEXT,
    phone        TEXT,
    locale       TEXT    NOT NULL,
    timezone     TEXT    NOT NULL,
    plan_id      TEXT    NOT NULL,
    element_id   TEXT    NOT NULL,
    device_id    TEXT,
    billing_day  INTEGER NOT NULL CHECK (billing_day BETWEEN 1 AND 31),
    active_since INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('active', 'cancelled'))
) STRICT;

-- ---- incidents ----

-- Named counters handed out inside write transactions (incident ids).
CREATE TABLE counters (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('incident', 0);

CREATE TABLE incidents (
    incident_id    TEXT    NOT NULL PRIMARY KEY,
    element_ids    TEXT    NOT NULL, -- JSON array of element ids
    cause          TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    etr            INTEGER,
    next_update_by INTEGER,
    declared_at    INTEGER NOT NULL,
    resolved_at    INTEGER,
    credited_at    INTEGER
) STRICT;

CREATE INDEX incidents_declared ON incidents (declared_at, incident_id);

CREATE TABLE incident_updates (
    incident_id    TEXT    NOT NULL REFERENCES incidents (incident_id),
    seq            INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    etr            INTEGER,
    next_update_by INTEGER,
    message        TEXT    NOT NULL,
    trigger_key    TEXT,
    fanned_out     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id, seq),
    UNIQUE (incident_id, trigger_key)
) STRICT;

-- Only the few updates still waiting for their notices are indexed.
CREATE INDEX incident_updates_pending ON incident_updates (at, incident_id, seq)
    WHERE NOT fanned_out;

-- ---- outbox ----

CREATE TABLE outbox (
    key             TEXT    NOT NULL PRIMARY KEY,
    customer_id     TEXT    NOT NULL,
    incident_id     TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    locale          TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;

CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_customer ON outbox (customer_id);
CREATE INDEX outbox_incident ON outbox (incident_id);

-- ---- credits ----

CREATE TABLE credits (
    key            TEXT    NOT NULL PRIMARY KEY,
    customer_id    TEXT    NOT NULL,
    source_event   TEXT    NOT NULL,
    policy_id      TEXT    NOT NULL,
    policy_version INTEGER NOT NULL,
    amount_minor   INTEGER NOT NULL,
    currency       TEXT    NOT NULL,
    statement      TEXT    NOT NULL,
    explanation    TEXT    NOT NULL,
    lines_json     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX credits_customer ON credits (customer_id);
CREATE INDEX credits_source_event ON credits (source_event);

-- The ledger is append-only: a credit, once written, is never changed or removed.
CREATE TRIGGER credits_no_update BEFORE UPDATE ON credits
BEGIN
    SELECT RAISE(ABORT, 'credits are append-only');
END;

CREATE TRIGGER credits_no_delete BEFORE DELETE ON credits
BEGIN
    SELECT RAISE(ABORT, 'credits are append-only');
END;

-- ---- tokens ----

CREATE TABLE tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    scope      TEXT    NOT NULL,
    label      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- ---- benchmark floor ----

-- Same columns and key as `credits`, none of its secondary indexes or triggers.
CREATE TABLE bench_raw_credits (
    key            TEXT    NOT NULL PRIMARY KEY,
    customer_id    TEXT    NOT NULL,
    source_event   TEXT    NOT NULL,
    policy_id      TEXT    NOT NULL,
    policy_version INTEGER NOT NULL,
    amount_minor   INTEGER NOT NULL,
    currency       TEXT    NOT NULL,
    statement      TEXT    NOT NULL,
    explanation    TEXT    NOT NULL,
    lines_json     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
