-- What a notice is about (issue 19): an incident's id, or a case's, a visit's, a
-- cancellation's or a survey's reference. The column was called `incident_id`, which read
-- as if every notice were about an incident and had a visit looked up "by incident".
-- Renamed in place: the indexes on it follow, and no row is rewritten.
ALTER TABLE outbox RENAME COLUMN incident_id TO about;
