-- The delivery record, consent and volume control (issue 5).

-- The outbox gains statuses (`delivered` from a channel's receipt, `suppressed` with its
-- reason) and what a receipt or a redaction needs. SQLite cannot change a CHECK, so the
-- table is rebuilt.
CREATE TABLE outbox_v5 (
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
    status          TEXT    NOT NULL
        CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'suppressed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    -- Why a notice is held (quiet_hours) or suppressed (consent, coalesced, capped,
    -- quarantined).
    reason          TEXT,
    -- The channel's own id for the message (an SMS gateway's), to match its receipts.
    provider_id     TEXT,
    -- Set when the content was not kept: the SHA-256 of subject and body.
    content_sha256  TEXT
) STRICT;

INSERT INTO outbox_v5 (key, customer_id, incident_id, kind, seq, channel, recipient, locale, subject,
                       body, status, attempts, next_attempt_at, last_error, created_at, sent_at)
SELECT key, customer_id, incident_id, kind, seq, channel, recipient, locale, subject,
       body, status, attempts, next_attempt_at, last_error, created_at, sent_at
FROM outbox;

DROP TABLE outbox;
ALTER TABLE outbox_v5 RENAME TO outbox;

-- Only notices still to send are in the due index, one lane per channel.
CREATE INDEX outbox_due ON outbox (channel, next_attempt_at, key) WHERE status IN ('queued', 'sending');
CREATE INDEX outbox_customer ON outbox (customer_id, created_at);
CREATE INDEX outbox_incident ON outbox (incident_id, customer_id, channel);
CREATE INDEX outbox_provider ON outbox (channel, provider_id) WHERE provider_id IS NOT NULL;

-- Each notice's status history after it was queued (its `created_at`): every attempt's
-- outcome, receipts, suppressions. Append-only.
CREATE TABLE notice_events (
    n      INTEGER NOT NULL PRIMARY KEY,
    key    TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    status TEXT    NOT NULL,
    detail TEXT
) STRICT;
CREATE INDEX notice_events_key ON notice_events (key, n);

-- A customer's notice preferences, as a JSON document; absent means the defaults.
CREATE TABLE preferences (
    customer_id TEXT    NOT NULL PRIMARY KEY,
    doc         TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('preferences', 0);

-- Contact points that failed for good: counted, and quarantined past a threshold.
CREATE TABLE contact_points (
    channel        TEXT    NOT NULL,
    recipient      TEXT    NOT NULL,
    hard_failures  INTEGER NOT NULL,
    quarantined_at INTEGER,
    last_error     TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (channel, recipient)
) STRICT;

-- Single-use links (unsubscribe, later surveys): a link id here was used.
CREATE TABLE used_links (
    link_id TEXT    NOT NULL PRIMARY KEY,
    used_at INTEGER NOT NULL
) STRICT;

-- Incident text an operator gave in several languages: JSON {locale: text}.
ALTER TABLE incident_updates ADD COLUMN messages TEXT NOT NULL DEFAULT '{}';

-- Secrets amends generates for itself on first use (the key that signs unsubscribe
-- links), so every instance over this database signs and checks with the same key.
CREATE TABLE secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
