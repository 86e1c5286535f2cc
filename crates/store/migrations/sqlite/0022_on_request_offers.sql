-- Amounts a policy pays only on request (issue 20): written by the credit step beside the
-- credits, one per customer, event and policy, under the credit's key. They are offers,
-- not credits: the ledger gets a row (its own key) only when the customer claims one.
CREATE TABLE on_request_offers (
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

CREATE INDEX on_request_offers_customer ON on_request_offers (customer_id);
