-- Tokens an operator can list, revoke and let expire (issue 18, item 11).
--
-- `token_id` is what an operator sees and types (`amends token revoke ID`): the first 12
-- hex digits of the token's SHA-256, so a token's holder can work it out and nothing
-- about the token itself can be recovered from it. `last_used_at` is written at most
-- once a minute per token (see `amends::tokens::LAST_USE_RESOLUTION`).
ALTER TABLE tokens ADD COLUMN token_id TEXT NOT NULL DEFAULT '';
UPDATE tokens SET token_id = substr(token_hash, 1, 12);
CREATE UNIQUE INDEX tokens_by_id ON tokens (token_id);
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
