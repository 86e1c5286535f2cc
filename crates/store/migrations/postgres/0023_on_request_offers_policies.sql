-- The policies an event's on-request offers were written under, from an index alone, as
-- for its credits (0018): a restarted credit step asks before writing more, and a policy
-- that pays only on request writes offers alone.
CREATE INDEX on_request_offers_source_event_policy ON on_request_offers (source_event, policy_id, policy_version);
