-- The clicks a sign-up and a cancellation took (issue 20), reported beside each other in
-- the recovery metrics: a sign-up's as the provider's own pages counted them (absent when
-- not reported), a cancellation's as amends' leaving page counts them.
ALTER TABLE signups ADD COLUMN clicks INTEGER CHECK (clicks >= 0);
ALTER TABLE cancellations ADD COLUMN clicks INTEGER CHECK (clicks >= 0);
