//! Embeddings from an OpenAI-compatible `POST {base_url}/embeddings` endpoint
//! (`{"model", "input": [...]}` in, `{"data": [{"index", "embedding"}]}` out).

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{EmbedError, EmbedderStatus};
use crate::memory::index::normalize;

pub(super) const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

pub(super) struct RemoteEmbedder {
    endpoint: String,
    api_key: Option<String>,
    model: String,
    model_id: String,
    http: reqwest::Client,
    /// The last failure, cleared by the next success (for the status).
    last_error: Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingData>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl RemoteEmbedder {
    pub(super) fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        model_id: &str,
    ) -> Result<Self, EmbedError> {
        let endpoint = format!("{}/embeddings", base_url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| EmbedError::Request {
                url: endpoint.clone(),
                message: error.to_string(),
            })?;
        Ok(Self {
            endpoint,
            api_key,
            model: model.to_string(),
            model_id: model_id.to_string(),
            http,
            last_error: Mutex::new(None),
        })
    }

    pub(super) fn model_id(&self) -> &str {
        &self.model_id
    }

    pub(super) async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let result = self.request(&texts).await;
        if let Ok(mut last_error) = self.last_error.lock() {
            *last_error = result.as_ref().err().map(ToString::to_string);
        }
        result
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let failure = |message: String| EmbedError::Request {
            url: self.endpoint.clone(),
            message,
        };
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&json!({"model": self.model, "input": texts}));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|error| failure(error.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(failure(format!("HTTP {status}: {body}")));
        }
        let body: EmbeddingResponse = response
            .json()
            .await
            .map_err(|error| failure(format!("unreadable response: {error}")))?;
        if body.data.len() != texts.len() {
            return Err(failure(format!(
                "{} embeddings returned for {} inputs",
                body.data.len(),
                texts.len()
            )));
        }
        let mut data = body.data;
        if data.iter().all(|item| item.index.is_some()) {
            data.sort_by_key(|item| item.index);
        }
        Ok(data
            .into_iter()
            .map(|item| {
                let mut vector = item.embedding;
                normalize(&mut vector);
                vector
            })
            .collect())
    }

    pub(super) fn status(&self) -> EmbedderStatus {
        let last_error = self
            .last_error
            .lock()
            .ok()
            .and_then(|last_error| last_error.clone());
        let (state, detail) = match last_error {
            None => ("ready", format!("POST {}", self.endpoint)),
            Some(error) => (
                "failing",
                format!("{error}; recall falls back to full text while it fails"),
            ),
        };
        EmbedderStatus {
            kind: "provider",
            model: Some(self.model_id.clone()),
            state,
            recall: "hybrid",
            detail,
        }
    }
}
