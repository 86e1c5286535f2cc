-- A restarted credit step asks which policies an incident's credits were written under
-- before writing more. Paging through the credits in key order sorted every remaining row
-- per page (an external merge sort of 609 MB for the first page at a million customers);
-- this index answers the question alone (an index-only scan), and serves every lookup by
-- source_event the old one did.
DROP INDEX credits_source_event;
CREATE INDEX credits_source_event_policy ON credits (source_event, policy_id, policy_version);
