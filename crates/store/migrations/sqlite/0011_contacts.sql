-- Customers getting in touch (issue 6). A contact during an open incident that affects
-- the customer is attached to it, with whether they had already been told: the share
-- told before they had to ask is how a provider knows it is ahead of its customers.
CREATE TABLE contacts (
    contact_id  INTEGER NOT NULL PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    channel     TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    -- The person who took it.
    "by"        TEXT    NOT NULL,
    incident_id TEXT,
    told_before INTEGER NOT NULL CHECK (told_before IN (0, 1))
) STRICT;
CREATE INDEX contacts_incident ON contacts (incident_id, contact_id) WHERE incident_id IS NOT NULL;
CREATE INDEX contacts_customer ON contacts (customer_id, contact_id);
