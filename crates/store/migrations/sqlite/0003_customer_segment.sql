-- Each customer's segment (residential, business, wholesale, ...) and jurisdiction (an
-- ISO 3166-1 country code, optionally with a part of it: DE, US-NY, GB-SCT), so that
-- compensation policies can be chosen by them. Customers imported before this migration
-- are residential, in a jurisdiction not known (NULL). The application checks both
-- values when it parses them.
ALTER TABLE customers ADD COLUMN segment TEXT NOT NULL DEFAULT 'residential';
ALTER TABLE customers ADD COLUMN jurisdiction TEXT;
