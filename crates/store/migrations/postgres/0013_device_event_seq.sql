-- Each logged event's place in the log, in the order events were written, whichever
-- server wrote them: the detecting server tails the log by it (servers sharing one
-- consumer each write what they were handed). Writers of the log take turns (an advisory
-- lock held to commit), so places are given in commit order and a tail never skips a
-- place that commits later.
ALTER TABLE device_events ADD COLUMN seq BIGSERIAL;
CREATE UNIQUE INDEX device_events_seq ON device_events (seq);
