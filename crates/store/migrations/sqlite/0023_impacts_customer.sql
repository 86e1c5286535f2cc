-- A customer's own impacts, by an index (issue 20): their page and their contacts ask
-- which open incidents hold them, and must not read every impact of a storm to answer.
CREATE INDEX impacts_customer ON impacts (customer_id);
