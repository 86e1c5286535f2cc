-- Agents and individual recovery cases (issue 6).

-- The people who own cases. `lead_id` is not a foreign key: one upsert may name a lead
-- that comes later in the same batch, and the application checks it.
CREATE TABLE agents (
    agent_id   TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('agent', 'lead', 'admin')),
    lead_id    TEXT,
    -- An inactive agent keeps their history (cases name them) but gets no new cases.
    active     BOOLEAN NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- A case as listed and filtered: what its event log (`case_events`) folds to, rewritten
-- with every append in the same transaction. `version` is the number of events, so an
-- append that read an older version is refused.
CREATE TABLE cases (
    case_id          TEXT   NOT NULL PRIMARY KEY,
    customer_id      TEXT   NOT NULL,
    owner            TEXT   NOT NULL,
    status           TEXT   NOT NULL CHECK (status IN ('open', 'paused', 'fixed', 'closed')),
    source           TEXT   NOT NULL,
    source_id        TEXT,
    -- The deterministic key of what opened a case amends opened itself: unique, so a
    -- re-run opens nothing twice. NULL (any number of them) for a case a person opened.
    source_key       TEXT   UNIQUE,
    first_contact_at BIGINT NOT NULL,
    opened_at        BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    version          BIGINT NOT NULL CHECK (version >= 1)
);

-- One index per filter of `cases`, each ending in the page order (case_id).
CREATE INDEX cases_customer ON cases (customer_id, case_id);
CREATE INDEX cases_owner ON cases (owner, status, case_id);
CREATE INDEX cases_status ON cases (status, case_id);

-- Case ids, handed out like incident ids: CASE-000001, ...
INSERT INTO counters (name, value) VALUES ('case', 0);

-- Each case's log: the core's event as JSON (`doc`), with the columns queries need. The
-- key is the last line of defence against two writers forking a log: only one of them
-- can write a given seq.
CREATE TABLE case_events (
    case_id TEXT   NOT NULL REFERENCES cases (case_id),
    seq     BIGINT NOT NULL CHECK (seq >= 0),
    at      BIGINT NOT NULL,
    "by"    TEXT   NOT NULL,
    kind    TEXT   NOT NULL,
    -- TEXT, not JSONB (which normalises it): read back byte for byte, as the core wrote it.
    doc     TEXT   NOT NULL,
    PRIMARY KEY (case_id, seq)
);

-- The log is append-only: the case row is derived from it, so an event is never changed
-- or removed.
CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case events are append-only';
END;
$$;

CREATE TRIGGER case_events_no_change BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_append_only();

-- An `agent` token speaks for one agent; NULL for the other scopes.
ALTER TABLE tokens ADD COLUMN agent_id TEXT;
