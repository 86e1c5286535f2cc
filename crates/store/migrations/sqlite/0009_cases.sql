-- Agents and individual recovery cases (issue 6).

-- The people who own cases. `lead_id` is not a foreign key: one upsert may name a lead
-- that comes later in the same batch, and the application checks it.
CREATE TABLE agents (
    agent_id   TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('agent', 'lead', 'admin')),
    lead_id    TEXT,
    -- An inactive agent keeps their history (cases name them) but gets no new cases.
    active     INTEGER NOT NULL CHECK (active IN (0, 1)),
    updated_at INTEGER NOT NULL
) STRICT;

-- A case as listed and filtered: what its event log (`case_events`) folds to, rewritten
-- with every append in the same transaction. `version` is the number of events, so an
-- append that read an older version is refused.
CREATE TABLE cases (
    case_id          TEXT    NOT NULL PRIMARY KEY,
    customer_id      TEXT    NOT NULL,
    owner            TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('open', 'paused', 'fixed', 'closed')),
    source           TEXT    NOT NULL,
    source_id        TEXT,
    -- The deterministic key of what opened a case amends opened itself: unique, so a
    -- re-run opens nothing twice. NULL (any number of them) for a case a person opened.
    source_key       TEXT    UNIQUE,
    first_contact_at INTEGER NOT NULL,
    opened_at        INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    version          INTEGER NOT NULL CHECK (version >= 1)
) STRICT;

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
    case_id TEXT    NOT NULL REFERENCES cases (case_id),
    seq     INTEGER NOT NULL CHECK (seq >= 0),
    at      INTEGER NOT NULL,
    "by"    TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    -- Kept as text: the document reads back byte for byte, as the core wrote it.
    doc     TEXT    NOT NULL,
    PRIMARY KEY (case_id, seq)
) STRICT;

-- The log is append-only: the case row is derived from it, so an event is never changed
-- or removed.
CREATE TRIGGER case_events_no_update BEFORE UPDATE ON case_events
BEGIN
    SELECT RAISE(ABORT, 'case events are append-only');
END;

CREATE TRIGGER case_events_no_delete BEFORE DELETE ON case_events
BEGIN
    SELECT RAISE(ABORT, 'case events are append-only');
END;

-- An `agent` token speaks for one agent; NULL for the other scopes.
ALTER TABLE tokens ADD COLUMN agent_id TEXT;
