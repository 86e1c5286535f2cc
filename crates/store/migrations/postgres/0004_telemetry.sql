-- Incidents a machine opened (telemetry detection, an alert), each under its source's own
-- deterministic key, so that a re-run (events replayed after a restart, an alert sent
-- again) finds the incident instead of opening a second one.
CREATE TABLE incident_sources (
    source_key  TEXT NOT NULL PRIMARY KEY,
    incident_id TEXT NOT NULL UNIQUE REFERENCES incidents (incident_id),
    -- Set when detection merged this incident into another: its customers moved there,
    -- and it is neither notified nor credited any further.
    merged_into TEXT
);

-- Impact: one customer in one detected incident, with their own downtime.
CREATE TABLE impacts (
    incident_id TEXT    NOT NULL REFERENCES incidents (incident_id),
    customer_id TEXT    NOT NULL,
    -- No telemetry device: presumed out for the incident's whole span.
    presumed    BOOLEAN NOT NULL,
    affected_at BIGINT NOT NULL,
    -- When their own service came back (NULL while it is out).
    back_at     BIGINT,
    -- Still offline when the incident was resolved: listed for follow-up.
    follow_up   BOOLEAN NOT NULL,
    -- Their offline intervals within the incident, JSON [[start_us, end_us], ...].
    downtime    TEXT    NOT NULL,
    -- The notices queued so far: 0 none, 1 the acknowledgement, 2 also the closing notice
    -- (restored or still down). Only ever raised.
    notified    SMALLINT NOT NULL,
    PRIMARY KEY (incident_id, customer_id)
);

-- The durable log of device events taken in: an event is acknowledged (HTTP response,
-- JetStream ack) only once it is here, and a restarted server rebuilds its detector from
-- it. The key makes a duplicate a no-op.
CREATE TABLE device_events (
    device_id TEXT    NOT NULL,
    at        BIGINT NOT NULL,
    state     TEXT    NOT NULL,
    reason    TEXT,
    PRIMARY KEY (at, device_id, state)
);
