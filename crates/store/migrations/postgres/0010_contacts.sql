-- Customers getting in touch (issue 6); see the SQLite migration 0011.
CREATE TABLE contacts (
    contact_id  BIGSERIAL PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    channel     TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    "by"        TEXT    NOT NULL,
    incident_id TEXT,
    told_before BOOLEAN NOT NULL
);
CREATE INDEX contacts_incident ON contacts (incident_id, contact_id) WHERE incident_id IS NOT NULL;
CREATE INDEX contacts_customer ON contacts (customer_id, contact_id);
