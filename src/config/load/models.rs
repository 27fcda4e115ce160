//! Resolving LLM providers (from the file or the environment), model ids and routing.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::raw::{RawModelSettings, RawPrice, RawProvider, RawRouting};
use super::{Invalid, Resolver, dotted};
use crate::config::{
    ConfigError, ModelId, ModelSettings, Price, ProviderConfig, ProviderKind, RoutingConfig,
};

impl Resolver<'_> {
    pub(super) fn providers(
        &self,
        raw: &BTreeMap<String, RawProvider>,
    ) -> Result<BTreeMap<String, ProviderConfig>, ConfigError> {
        if raw.is_empty() {
            return self.environment_providers();
        }
        let mut providers = BTreeMap::new();
        for (name, provider) in raw {
            let key = dotted("llm.providers", name);
            let base_url = provider
                .base_url
                .as_ref()
                .map(|url| {
                    normalize_base_url(url.get_ref()).map_err(|message| {
                        self.error(Some(url.span()), &format!("{key}.base_url"), &message)
                    })
                })
                .transpose()?;
            let api_key = provider
                .api_key
                .as_ref()
                .map(|api_key| self.secret(api_key, &format!("{key}.api_key")))
                .transpose()?;
            let resolved = ProviderConfig {
                name: name.clone(),
                kind: provider.kind.unwrap_or(if name == "anthropic" {
                    ProviderKind::Anthropic
                } else {
                    ProviderKind::OpenAi
                }),
                base_url,
                api_key,
                timeout_secs: self.at_least_one(
                    provider.timeout_secs.as_ref(),
                    &format!("{key}.timeout_secs"),
                    120,
                )?,
            };
            providers.insert(name.clone(), resolved);
        }
        Ok(providers)
    }

    /// Providers implied by `OPENAI_*` / `ANTHROPIC_*` when the file configures none.
    pub(super) fn environment_providers(
        &self,
    ) -> Result<BTreeMap<String, ProviderConfig>, ConfigError> {
        let candidates = [
            ("openai", ProviderKind::OpenAi, "OPENAI"),
            ("anthropic", ProviderKind::Anthropic, "ANTHROPIC"),
        ];
        let mut providers = BTreeMap::new();
        for (name, kind, prefix) in candidates {
            let url_variable = format!("{prefix}_BASE_URL");
            let api_key = self.variable(&format!("{prefix}_API_KEY"));
            let base_url = self.variable(&url_variable);
            if api_key.is_none() && base_url.is_none() {
                continue;
            }
            let base_url = base_url
                .map(|url| {
                    normalize_base_url(&url)
                        .map_err(|message| self.error(None, &url_variable, &message))
                })
                .transpose()?;
            tracing::debug!(
                provider = name,
                "no [llm.providers] configured; using {prefix}_* environment variables"
            );
            let provider = ProviderConfig {
                name: name.to_string(),
                kind,
                base_url,
                api_key,
                timeout_secs: 120,
            };
            providers.insert(name.to_string(), provider);
        }
        Ok(providers)
    }

    /// Checks that `model` names a configured provider (any provider when none are configured).
    pub(super) fn check_provider(&self, model: &ModelId) -> Result<(), Invalid> {
        if self.providers.is_empty() || self.providers.contains_key(&model.provider) {
            return Ok(());
        }
        let names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        Err(Invalid(format!(
            "unknown provider `{}`; configured providers: {}",
            model.provider,
            names.join(", ")
        )))
    }

    pub(super) fn model(&self, value: &Spanned<String>, key: &str) -> Result<ModelId, ConfigError> {
        self.model_at(value.get_ref(), Some(value.span()), key)
    }

    /// Parses a model id whose provider must be configured; errors point at `span`.
    pub(super) fn model_at(
        &self,
        text: &str,
        span: Option<Range<usize>>,
        key: &str,
    ) -> Result<ModelId, ConfigError> {
        text.parse::<ModelId>()
            .map_err(|error| Invalid(error.to_string()))
            .and_then(|model| self.check_provider(&model).map(|()| model))
            .map_err(|invalid| self.error(span, key, invalid))
    }

    /// The channel model when `defaults.routing.channel` is absent.
    pub(super) fn default_channel(&self) -> Result<ModelId, ConfigError> {
        if let Some(value) = self.variable("SPACEBOT_MODEL") {
            return self.model_at(&value, None, "SPACEBOT_MODEL");
        }
        let only_anthropic = self.providers.len() == 1 && self.providers.contains_key("anthropic");
        let (provider, model) = if only_anthropic {
            ("anthropic", "claude-sonnet-4-5")
        } else {
            ("openai", "gpt-4o-mini")
        };
        let model = ModelId {
            provider: provider.to_string(),
            model: model.to_string(),
        };
        self.check_provider(&model).map_err(|reason| {
            let message = format!(
                "no model configured and the built-in default `{model}` cannot be used ({reason}); set defaults.routing.channel or SPACEBOT_MODEL"
            );
            self.error(None, "defaults.routing.channel", &message)
        })?;
        Ok(model)
    }

    /// Applies the values present in `raw` over `base`, merging fallback maps.
    pub(super) fn routing(
        &self,
        raw: &RawRouting,
        prefix: &str,
        base: &RoutingConfig,
    ) -> Result<RoutingConfig, ConfigError> {
        let pick = |value: &Option<Spanned<String>>, field: &str, inherited: &ModelId| {
            value.as_ref().map_or(Ok(inherited.clone()), |value| {
                self.model(value, &format!("{prefix}.{field}"))
            })
        };
        let mut fallbacks = base.fallbacks.clone();
        for (from, targets) in &raw.fallbacks {
            let key = dotted(&format!("{prefix}.fallbacks"), from);
            let from = self.model_at(from, Some(targets.span()), &key)?;
            let targets = targets
                .get_ref()
                .iter()
                .enumerate()
                .map(|(index, target)| self.model(target, &format!("{key}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            fallbacks.insert(from, targets);
        }
        Ok(RoutingConfig {
            channel: pick(&raw.channel, "channel", &base.channel)?,
            branch: pick(&raw.branch, "branch", &base.branch)?,
            worker: pick(&raw.worker, "worker", &base.worker)?,
            compactor: pick(&raw.compactor, "compactor", &base.compactor)?,
            cortex: pick(&raw.cortex, "cortex", &base.cortex)?,
            fallbacks,
        })
    }
}

impl Resolver<'_> {
    /// `[llm.models.*]`: windows and output limits at least 1, a known reasoning effort.
    pub(super) fn model_settings(
        &self,
        raw: &BTreeMap<String, RawModelSettings>,
    ) -> Result<BTreeMap<String, ModelSettings>, ConfigError> {
        let mut models = BTreeMap::new();
        for (name, settings) in raw {
            let key = dotted("llm.models", name);
            let reasoning_effort = match &settings.reasoning_effort {
                None => None,
                Some(value) if ["low", "medium", "high"].contains(&value.get_ref().as_str()) => {
                    Some(value.get_ref().clone())
                }
                Some(value) => {
                    return Err(self.error(
                        Some(value.span()),
                        &format!("{key}.reasoning_effort"),
                        "must be \"low\", \"medium\" or \"high\"",
                    ));
                }
            };
            let context_window = settings
                .context_window
                .as_ref()
                .map(|value| self.at_least_one(Some(value), &format!("{key}.context_window"), 1))
                .transpose()?;
            let max_output_tokens = settings
                .max_output_tokens
                .as_ref()
                .map(|value| self.at_least_one(Some(value), &format!("{key}.max_output_tokens"), 1))
                .transpose()?;
            models.insert(
                name.clone(),
                ModelSettings {
                    context_window,
                    max_output_tokens,
                    temperature: settings.temperature,
                    reasoning_effort,
                    vision: settings.vision,
                },
            );
        }
        Ok(models)
    }
}

/// `[llm.pricing.*]`: cache prices default to the input price.
pub(super) fn pricing(raw: &BTreeMap<String, RawPrice>) -> BTreeMap<String, Price> {
    raw.iter()
        .map(|(name, price)| {
            let price = Price {
                input: price.input,
                output: price.output,
                cache_read: price.cache_read.unwrap_or(price.input),
                cache_write: price.cache_write.unwrap_or(price.input),
            };
            (name.clone(), price)
        })
        .collect()
}

/// Checks the scheme and trims trailing slashes.
pub(super) fn normalize_base_url(url: &str) -> Result<String, Invalid> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.trim_end_matches('/').to_string())
    } else {
        Err(Invalid(format!(
            "base_url must start with http:// or https://, got `{url}`"
        )))
    }
}
