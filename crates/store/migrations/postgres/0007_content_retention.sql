-- Notices whose content may still be forgotten (`[delivery] keep_content_days`): final,
-- content still kept. Each sweep reads only these, by age, and they leave the index as
-- their content is replaced by its hash.
CREATE INDEX outbox_content_kept ON outbox (created_at, key)
    WHERE content_sha256 IS NULL AND status IN ('sent', 'delivered', 'failed', 'suppressed');
