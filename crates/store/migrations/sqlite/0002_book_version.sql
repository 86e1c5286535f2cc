-- The book's version: bumped by every import in its own transaction, so that a process
-- holding the book in memory can tell, with one cheap read, that another one changed it.
INSERT INTO counters (name, value) VALUES ('book', 0);
