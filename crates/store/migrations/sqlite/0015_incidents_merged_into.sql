-- An incident merged into a wider one says so on its own row too (incident_sources keeps
-- the same), so "open" is a property of the row: the open list is a range of the partial
-- index below instead of a probe of incident_sources for each of the tens of thousands
-- of incidents a storm merges.
ALTER TABLE incidents ADD COLUMN merged_into TEXT;
UPDATE incidents SET merged_into = (
    SELECT s.merged_into FROM incident_sources s
    WHERE s.incident_id = incidents.incident_id AND s.merged_into IS NOT NULL LIMIT 1);
CREATE INDEX incidents_open ON incidents (declared_at, incident_id)
    WHERE state <> 'resolved' AND merged_into IS NULL;
