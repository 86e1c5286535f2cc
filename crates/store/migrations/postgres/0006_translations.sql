-- The public cause in other languages: a JSON object, locale tag -> text. (An entry's
-- message in other languages is `incident_updates.messages`, from 0005.) The two are
-- replaced together, so a translation never outlives the cause it translates.
ALTER TABLE incidents ADD COLUMN causes TEXT NOT NULL DEFAULT '{}';
