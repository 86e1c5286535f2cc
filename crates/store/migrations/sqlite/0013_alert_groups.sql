-- Every alert an incident of the Alertmanager receiver gathered: the one that opened it
-- and those that joined it (per-instance alerts naming one element, a node alerting with
-- its tap). The incident resolves when the last of them does.
CREATE TABLE incident_alerts (
    -- alertmanager:<fingerprint>[/<occurrence>]
    source_key  TEXT    NOT NULL PRIMARY KEY,
    incident_id TEXT    NOT NULL REFERENCES incidents (incident_id),
    -- When this alert ended (NULL while it fires).
    resolved_at INTEGER
) STRICT;
CREATE INDEX incident_alerts_by_incident ON incident_alerts (incident_id);

-- Alerts the receiver could not act on (no element label, an element the book does not
-- have...), one row per fingerprint, so an operator sees the typo. Bounded: the receiver
-- keeps the most recently seen (see IGNORED_ALERTS_KEPT).
CREATE TABLE ignored_alerts (
    fingerprint TEXT    NOT NULL PRIMARY KEY,
    -- The alert's labels, JSON.
    labels      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    times       INTEGER NOT NULL
) STRICT;
CREATE INDEX ignored_alerts_by_last ON ignored_alerts (last_at);

-- A detected incident's sources are read one incident at a time by the fan-out.
CREATE INDEX incident_sources_by_incident ON incident_sources (incident_id);
