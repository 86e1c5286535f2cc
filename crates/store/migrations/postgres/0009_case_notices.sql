-- What a case still owes its customer (issue 6); see the SQLite migration 0010.
ALTER TABLE cases ADD COLUMN notified_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN fixed_at BIGINT;
ALTER TABLE cases ADD COLUMN followed_up BOOLEAN NOT NULL DEFAULT FALSE;

CREATE INDEX cases_to_notify ON cases (case_id) WHERE notified_version < version;
CREATE INDEX cases_follow_up ON cases (fixed_at, case_id) WHERE fixed_at IS NOT NULL AND NOT followed_up;
