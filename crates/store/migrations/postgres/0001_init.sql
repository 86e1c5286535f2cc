-- amends schema, PostgreSQL flavour.
--
-- Instants are BIGINT unix microseconds, as in the SQLite schema, so both backends hold
-- exactly the same values.

-- ---- book ----

CREATE TABLE plans (
    plan_id             TEXT   NOT NULL PRIMARY KEY,
    name                TEXT   NOT NULL,
    monthly_price_minor BIGINT NOT NULL,
    currency            TEXT   NOT NULL
);

CREATE TABLE elements (
    element_id TEXT NOT NULL PRIMARY KEY,
    parent_id  TEXT,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL
);

CREATE TABLE customers (
    customer_id  TEXT     NOT NULL PRIMARY KEY,
    name         TEXT     NOT NULL,
    email        TEXT,
    phone        TEXT,
    locale       TEXT     NOT NULL,
    timezone     TEXT     NOT NULL,
    plan_id      TEXT     NOT NULL,
    element_id   TEXT     NOT NULL,
    device_id    TEXT,
    billing_day  SMALLINT NOT NULL CHECK (billing_day BETWEEN 1 AND 31),
    active_since BIGINT   NOT NULL,
    status       TEXT     NOT NULL CHECK (status IN ('active', 'cancelled'))
);

-- ---- incidents ----

-- Named counters handed out inside write transactions (incident ids). A counter row
-- rather than a sequence: the row lock serialises concurrent callers and a rolled back
-- insert leaves no gap in the numbering.
CREATE TABLE counters (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('incident', 0);

CREATE TABLE incidents (
    incident_id    TEXT   NOT NULL PRIMARY KEY,
    element_ids    TEXT   NOT NULL, -- JSON array of element ids
    cause          TEXT   NOT NULL,
    state          TEXT   NOT NULL,
    etr            BIGINT,
    next_update_by BIGINT,
    declared_at    BIGINT NOT NULL,
    resolved_at    BIGINT,
    credited_at    BIGINT
);

CREATE INDEX incidents_declared ON incidents (declared_at, incident_id);

CREATE TABLE incident_updates (
    incident_id    TEXT    NOT NULL REFERENCES incidents (incident_id),
    seq            BIGINT  NOT NULL,
    at             BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    etr            BIGINT,
    next_update_by BIGINT,
    message        TEXT    NOT NULL,
    trigger_key    TEXT,
    fanned_out     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (incident_id, seq),
    UNIQUE (incident_id, trigger_key)
);

-- Only the few updates still waiting for their notices are indexed.
CREATE INDEX incident_updates_pending ON incident_updates (at, incident_id, seq)
    WHERE NOT fanned_out;

-- ---- outbox ----

CREATE TABLE outbox (
    key             TEXT    NOT NULL PRIMARY KEY,
    customer_id     TEXT    NOT NULL,
    incident_id     TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    seq             BIGINT  NOT NULL,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    locale          TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT
);

CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_customer ON outbox (customer_id);
CREATE INDEX outbox_incident ON outbox (incident_id);

-- ---- credits ----

CREATE TABLE credits (
    key            TEXT   NOT NULL PRIMARY KEY,
    customer_id    TEXT   NOT NULL,
    source_event   TEXT   NOT NULL,
    policy_id      TEXT   NOT NULL,
    policy_version BIGINT NOT NULL,
    amount_minor   BIGINT NOT NULL,
    currency       TEXT   NOT NULL,
    statement      TEXT   NOT NULL,
    explanation    TEXT   NOT NULL,
    lines_json     TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE INDEX credits_customer ON credits (customer_id);
CREATE INDEX credits_source_event ON credits (source_event);

-- The ledger is append-only: a credit, once written, is never changed or removed.
CREATE FUNCTION credits_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credits are append-only';
END;
$$;

CREATE TRIGGER credits_no_change BEFORE UPDATE OR DELETE ON credits
    FOR EACH ROW EXECUTE FUNCTION credits_append_only();

-- ---- tokens ----

CREATE TABLE tokens (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    scope      TEXT   NOT NULL,
    label      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- ---- benchmark floor ----

-- Same columns and key as `credits`, none of its secondary indexes or triggers.
CREATE TABLE bench_raw_credits (
    key            TEXT   NOT NULL PRIMARY KEY,
    customer_id    TEXT   NOT NULL,
    source_event   TEXT   NOT NULL,
    policy_id      TEXT   NOT NULL,
    policy_version BIGINT NOT NULL,
    amount_minor   BIGINT NOT NULL,
    currency       TEXT   NOT NULL,
    statement      TEXT   NOT NULL,
    explanation    TEXT   NOT NULL,
    lines_json     TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);
