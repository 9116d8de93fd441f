-- A story's word count and its plain-text preview, kept on every write of its text
-- (story-service/src/words.rs), so that lists and stats never read the text itself.
-- NULL until counted: rows written before this migration are counted at start-up.
ALTER TABLE stories ADD COLUMN word_count BIGINT;
ALTER TABLE stories ADD COLUMN preview TEXT;
-- ListMyStories: a writer's stories, newest first.
CREATE INDEX stories_owner_updated ON stories (owner_id, update_time, id);
-- The start-up count of rows written before word counts were kept.
CREATE INDEX stories_uncounted ON stories (id) WHERE word_count IS NULL;
-- Stats count from indexes alone: a writer's stories and words by visibility (this
-- replaces stories_owner, its prefix), and the site's stories by visibility.
DROP INDEX stories_owner;
CREATE INDEX stories_owner_words ON stories (owner_id, visibility, word_count);
CREATE INDEX stories_visibility ON stories (visibility);
