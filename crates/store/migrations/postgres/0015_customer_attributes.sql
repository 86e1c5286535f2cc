-- Each customer's attributes for compensation policies (`customer.attributes` in CEL):
-- a JSON object of scalars, `{"medical_priority": true}`, NULL when they have none. The
-- application checks names and values when it parses them. No default: no table rewrite.
ALTER TABLE customers ADD COLUMN attributes TEXT;
