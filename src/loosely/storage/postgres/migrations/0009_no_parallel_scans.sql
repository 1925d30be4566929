-- No parallel plans on the tables every request reads. Their rows come and go by the thousand a
-- second, so the planner's statistics are often far from what is there: after a burst of
-- deletes it estimated a quarter of a million expired messages where there were none, and chose a
-- parallel scan for GetQueueAttributes' count (and the in-flight limit's once-a-second recount).
-- Starting the two workers took about 5 ms, for a scan that read two index pages. Statements here
-- touch a few rows through an index; a parallel plan never pays for its start-up. A storage
-- parameter (not a session setting) so it holds behind connection poolers as well.
--
-- A catalog change only (no rewrite, a brief SHARE UPDATE EXCLUSIVE lock); nodes of earlier
-- versions are unaffected except in their plans.
ALTER TABLE messages SET (parallel_workers = 0);
ALTER TABLE fifo_groups SET (parallel_workers = 0);
ALTER TABLE dedup SET (parallel_workers = 0);
ALTER TABLE receive_attempts SET (parallel_workers = 0);
ALTER TABLE publications SET (parallel_workers = 0);
ALTER TABLE publication_dedup SET (parallel_workers = 0);
ALTER TABLE deliveries SET (parallel_workers = 0);
