//! What the daemon knows about models: per-model settings (context window, output limit,
//! temperature, reasoning effort) and prices, from the config's `[llm.models.*]` and
//! `[llm.pricing.*]` over built-in defaults for well-known model ids.

use std::collections::BTreeMap;

use crate::config::{LlmConfig, ModelId, ModelSettings, Price};

/// Built-in settings by model-name prefix: (prefix, context window, max output tokens).
/// The longest matching prefix wins, so dated ids (`gpt-4o-2024-08-06`) find their family.
const KNOWN_MODELS: &[(&str, usize, u64)] = &[
    ("gpt-4o", 128_000, 16_384),
    ("gpt-4o-mini", 128_000, 16_384),
    ("gpt-4.1", 1_047_576, 32_768),
    ("gpt-4.1-mini", 1_047_576, 32_768),
    ("gpt-4.1-nano", 1_047_576, 32_768),
    ("gpt-5", 400_000, 128_000),
    ("o1", 200_000, 100_000),
    ("o3", 200_000, 100_000),
    ("o4-mini", 200_000, 100_000),
    ("claude-opus-4", 200_000, 32_000),
    ("claude-sonnet-4", 200_000, 64_000),
    ("claude-haiku-4", 200_000, 64_000),
    ("claude-3-7-sonnet", 200_000, 64_000),
    ("claude-3-5-sonnet", 200_000, 8_192),
    ("claude-3-5-haiku", 200_000, 8_192),
    ("deepseek-chat", 128_000, 8_192),
    ("deepseek-reasoner", 128_000, 65_536),
    ("llama3.1", 131_072, 4_096),
    ("llama3.2", 131_072, 4_096),
    ("qwen2.5", 32_768, 4_096),
    ("qwen3", 40_960, 8_192),
    ("mistral", 32_768, 4_096),
    ("gemma3", 131_072, 8_192),
];

/// Built-in prices, USD per million tokens: (prefix, input, cache read, cache write, output).
const KNOWN_PRICES: &[(&str, f64, f64, f64, f64)] = &[
    ("gpt-4o", 2.50, 1.25, 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.075, 0.15, 0.60),
    ("gpt-4.1", 2.00, 0.50, 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 0.10, 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.025, 0.10, 0.40),
    ("gpt-5", 1.25, 0.125, 1.25, 10.00),
    ("gpt-5-mini", 0.25, 0.025, 0.25, 2.00),
    ("o3", 2.00, 0.50, 2.00, 8.00),
    ("o3-mini", 1.10, 0.55, 1.10, 4.40),
    ("o4-mini", 1.10, 0.275, 1.10, 4.40),
    ("claude-opus-4", 15.00, 1.50, 18.75, 75.00),
    ("claude-sonnet-4", 3.00, 0.30, 3.75, 15.00),
    ("claude-3-7-sonnet", 3.00, 0.30, 3.75, 15.00),
    ("claude-3-5-sonnet", 3.00, 0.30, 3.75, 15.00),
    ("claude-haiku-4", 1.00, 0.10, 1.25, 5.00),
    ("claude-3-5-haiku", 0.80, 0.08, 1.00, 4.00),
    ("deepseek-chat", 0.27, 0.07, 0.27, 1.10),
    ("deepseek-reasoner", 0.55, 0.14, 0.55, 2.19),
];

/// Settings and prices per model.
#[derive(Debug, Clone, Default)]
pub struct ModelCatalog {
    settings: BTreeMap<String, ModelSettings>,
    pricing: BTreeMap<String, Price>,
}

impl ModelCatalog {
    pub fn new(config: &LlmConfig) -> Self {
        Self {
            settings: config.models.clone(),
            pricing: config.pricing.clone(),
        }
    }

    /// The model's settings: `[llm.models."provider/model"]`, then `[llm.models."model"]`,
    /// then the built-in defaults for its family.
    pub fn settings(&self, model: &ModelId) -> ModelSettings {
        let configured = self.configured(model);
        let name = family_name(&model.model);
        let known = longest_prefix(KNOWN_MODELS.iter().map(|known| (known.0, known)), name)
            .map(|(_, context_window, max_output_tokens)| ModelSettings {
                context_window: Some(*context_window),
                max_output_tokens: Some(*max_output_tokens),
                temperature: None,
                reasoning_effort: None,
                vision: None,
            })
            .unwrap_or_default();
        configured.or(&known)
    }

    /// Only what the config sets for the model (`[llm.models.*]`), without built-in defaults.
    pub fn configured(&self, model: &ModelId) -> ModelSettings {
        self.settings
            .get(&model.to_string())
            .or_else(|| self.settings.get(&model.model))
            .cloned()
            .unwrap_or_default()
    }

    /// The price of `model` (a `provider/model` id as usage records it), if known.
    pub fn price(&self, model: &str) -> Option<Price> {
        let name = model.split_once('/').map_or(model, |(_, name)| name);
        if let Some(price) = self.pricing.get(model).or_else(|| self.pricing.get(name)) {
            return Some(*price);
        }
        longest_prefix(
            KNOWN_PRICES.iter().map(|known| (known.0, known)),
            family_name(name),
        )
        .map(|(_, input, cache_read, cache_write, output)| Price {
            input: *input,
            output: *output,
            cache_read: *cache_read,
            cache_write: *cache_write,
        })
    }
}

/// The last path segment, lower-cased into a family lookup: OpenRouter's
/// `anthropic/claude-sonnet-4` and Ollama's `llama3.1:8b` find `claude-sonnet-4`, `llama3.1`.
fn family_name(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

fn longest_prefix<'a, T>(
    entries: impl Iterator<Item = (&'static str, &'a T)>,
    name: &str,
) -> Option<&'a T> {
    let name = name.to_ascii_lowercase();
    entries
        .filter(|(prefix, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, entry)| entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_settings_override_the_family_defaults() {
        let mut config = LlmConfig::default();
        config.models.insert(
            "openai/gpt-4o-mini".into(),
            ModelSettings {
                max_output_tokens: Some(256),
                ..ModelSettings::default()
            },
        );
        let catalog = ModelCatalog::new(&config);
        let model: ModelId = "openai/gpt-4o-mini-2024-07-18".parse().expect("id");
        assert_eq!(catalog.settings(&model).context_window, Some(128_000));
        let configured: ModelId = "openai/gpt-4o-mini".parse().expect("id");
        let settings = catalog.settings(&configured);
        assert_eq!(settings.max_output_tokens, Some(256));
        assert_eq!(settings.context_window, Some(128_000));
        let unknown: ModelId = "local/my-model".parse().expect("id");
        assert_eq!(catalog.settings(&unknown), ModelSettings::default());
    }

    #[test]
    fn prices_come_from_the_config_then_the_longest_known_prefix() {
        let mut config = LlmConfig::default();
        config.pricing.insert(
            "local/tiny".into(),
            Price {
                input: 1.0,
                output: 2.0,
                cache_read: 1.0,
                cache_write: 1.0,
            },
        );
        let catalog = ModelCatalog::new(&config);
        assert_eq!(
            catalog.price("local/tiny").map(|price| price.output),
            Some(2.0)
        );
        let mini = catalog
            .price("openai/gpt-4o-mini-2024-07-18")
            .expect("known");
        assert_eq!(mini.input, 0.15);
        let routed = catalog
            .price("openrouter/anthropic/claude-sonnet-4-5")
            .expect("known");
        assert_eq!(routed.cache_read, 0.30);
        assert!(catalog.price("local/unknown").is_none());
    }
}
