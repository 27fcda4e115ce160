//! One configured LLM provider: a rig-core client for OpenAI chat completions or Anthropic.

use std::time::Duration;

use rig::client::CompletionClient;
use rig::completion::{CompletionError, CompletionModel, CompletionRequest, CompletionResponse};
use rig::providers::{anthropic, openai};

use crate::config::{ProviderConfig, ProviderKind};

/// Anthropic requires `max_tokens`; OpenAI-compatible servers pick their own default, and some
/// newer OpenAI models reject the field, so it is only sent to Anthropic.
const ANTHROPIC_MAX_TOKENS: u64 = 4096;

#[derive(Clone)]
pub enum ProviderClient {
    OpenAi(openai::CompletionsClient),
    Anthropic(anthropic::Client),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the client for provider `{name}`: {message}")]
pub struct ProviderBuildError {
    pub name: String,
    pub message: String,
}

impl ProviderClient {
    pub fn build(config: &ProviderConfig) -> Result<Self, ProviderBuildError> {
        let build_error = |message: String| ProviderBuildError {
            name: config.name.clone(),
            message,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| build_error(error.to_string()))?;
        // Local OpenAI-compatible servers (Ollama, llama.cpp) accept any key.
        let api_key = config.api_key.clone().unwrap_or_else(|| "none".to_string());
        match config.kind {
            ProviderKind::OpenAi => {
                let mut builder = openai::CompletionsClient::builder()
                    .api_key(api_key)
                    .http_client(http);
                if let Some(base_url) = &config.base_url {
                    builder = builder.base_url(base_url);
                }
                builder
                    .build()
                    .map(ProviderClient::OpenAi)
                    .map_err(|error| build_error(error.to_string()))
            }
            ProviderKind::Anthropic => {
                let mut builder = anthropic::Client::builder()
                    .api_key(api_key)
                    .http_client(http);
                if let Some(base_url) = &config.base_url {
                    builder = builder.base_url(base_url);
                }
                builder
                    .build()
                    .map(ProviderClient::Anthropic)
                    .map_err(|error| build_error(error.to_string()))
            }
        }
    }

    /// One completion call, no retries.
    pub async fn complete(
        &self,
        model: &str,
        mut request: CompletionRequest,
    ) -> Result<CompletionResponse<()>, CompletionError> {
        match self {
            ProviderClient::OpenAi(client) => {
                let response = client.completion_model(model).completion(request).await?;
                Ok(erase_raw(response))
            }
            ProviderClient::Anthropic(client) => {
                request.max_tokens.get_or_insert(ANTHROPIC_MAX_TOKENS);
                let response = client.completion_model(model).completion(request).await?;
                Ok(erase_raw(response))
            }
        }
    }
}

fn erase_raw<T>(response: CompletionResponse<T>) -> CompletionResponse<()> {
    CompletionResponse {
        choice: response.choice,
        usage: response.usage,
        raw_response: (),
        message_id: response.message_id,
    }
}
