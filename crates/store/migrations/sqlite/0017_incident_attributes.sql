-- Facts of an incident's outage that compensation policies read as `event.attributes`
-- (a storm, a commercial power failure): a JSON object of scalars from the operator's
-- declaration, NULL when none.
ALTER TABLE incidents ADD COLUMN attributes TEXT;
