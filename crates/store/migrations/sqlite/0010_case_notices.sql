-- What a case still owes its customer (issue 6).

-- Events whose notices to the customer are queued: the case's words are recorded first,
-- then queued, and a crash in between leaves notified_version behind version, which the
-- next tick finds and finishes (the notices have deterministic keys).
ALTER TABLE cases ADD COLUMN notified_version INTEGER NOT NULL DEFAULT 0;
-- When the fix that stands was verified, and whether the follow-up went out: the tick
-- looks for fixed cases past `follow_up_after` without one.
ALTER TABLE cases ADD COLUMN fixed_at INTEGER;
ALTER TABLE cases ADD COLUMN followed_up INTEGER NOT NULL DEFAULT 0 CHECK (followed_up IN (0, 1));

CREATE INDEX cases_to_notify ON cases (case_id) WHERE notified_version < version;
CREATE INDEX cases_follow_up ON cases (fixed_at, case_id) WHERE fixed_at IS NOT NULL AND followed_up = 0;
