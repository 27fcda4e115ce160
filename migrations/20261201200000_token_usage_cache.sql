-- Prompt-cache tokens, priced apart from fresh input: reads from and writes to a
-- provider's prompt cache (OpenAI cached_tokens, Anthropic cache_read/cache_creation).
ALTER TABLE token_usage ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE token_usage ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
