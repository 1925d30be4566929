-- ReceiveRequestAttemptId: a retry returns the same messages only while none of them was modified
-- since, and on AWS any ChangeMessageVisibility counts, even one that later sets the deadline back
-- to the instant the attempt set. The in-flight deadline alone cannot tell that, so a FIFO
-- message's visibility change records the receive (by receive count) it was made in. A retry
-- finds a message unmodified when its receive count is still the attempt's and no change was
-- made in that receive; a re-claim moves the receive count on, so claims write nothing more.
-- 0 = never changed (receive counts of in-flight messages start at 1). Standard queues have no
-- receive attempts and leave it at 0.
ALTER TABLE messages ADD COLUMN visibility_changed_in INTEGER NOT NULL DEFAULT 0;
