-- A count of the changes to incidents and their sources, moved by triggers whatever writes
-- them: a customer's page (inline.rs) keeps the open incidents it last decoded, and reads
-- them again only once this count has moved. PostgreSQL reads them every time.
INSERT INTO counters (name, value) VALUES ('incidents', 0);

CREATE TRIGGER incidents_inserted AFTER INSERT ON incidents
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'incidents'; END;
CREATE TRIGGER incidents_updated AFTER UPDATE ON incidents
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'incidents'; END;
CREATE TRIGGER incidents_deleted AFTER DELETE ON incidents
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'incidents'; END;

CREATE TRIGGER incident_sources_inserted AFTER INSERT ON incident_sources
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'incidents'; END;
CREATE TRIGGER incident_sources_updated AFTER UPDATE ON incident_sources
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'incidents'; END;
CREATE TRIGGER incident_sources_deleted AFTER DELETE ON incident_sources
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'incidents'; END;
