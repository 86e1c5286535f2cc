-- Notice content compressed against a reference text (src/packed.rs): a fan-out's notices
-- differ only in a name and a few times, and writing them whole was most of its cost.

-- One reference per group of notices sharing a template: the content of the first notice
-- written in the group. Written once, with the first notices packed against it; never
-- changed, since the packed notices can only be read with it.
CREATE TABLE notice_references (
    grp  TEXT NOT NULL PRIMARY KEY,  -- incident/kind/seq/channel/locale
    text BLOB NOT NULL
) STRICT;

-- When set, the notice's subject and body, packed against its group's reference; subject
-- and body are then empty. NULL for notices written before, and for those with no content.
ALTER TABLE outbox ADD COLUMN packed BLOB;
