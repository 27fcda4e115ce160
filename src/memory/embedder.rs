//! Text embeddings for recall: the local all-MiniLM-L6-v2 model run with candle, an
//! OpenAI-compatible `/v1/embeddings` provider, or none (recall is then full-text only).
//! One `Embedder` is shared by every agent; the local model loads on first use.

mod local;
mod remote;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::config::{EmbedderConfig, MemoryConfig, ProviderConfig};
pub use local::{LOCAL_MODEL_ID, MODEL_FILES};

#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    #[error("no embedder available: {0}")]
    Unavailable(String),
    #[error("embedding model error: {0}")]
    Model(String),
    #[error("embedding request to {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("embedding task failed: {0}")]
    Task(String),
}

/// What `GET /api/status` shows about embeddings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedderStatus {
    /// `local`, `provider` or `none`.
    pub kind: &'static str,
    pub model: Option<String>,
    /// `ready`, `not_loaded`, `downloading`, `loading`, `failing` or `unavailable`.
    pub state: &'static str,
    /// `hybrid` (full text + vectors + associations) or `full_text_only`.
    pub recall: &'static str,
    pub detail: String,
}

enum Backend {
    Disabled { reason: String },
    Local(local::LocalEmbedder),
    Remote(remote::RemoteEmbedder),
}

/// Query embeddings kept for repeated recalls.
const QUERY_CACHE_SIZE: usize = 512;

pub struct Embedder {
    backend: Backend,
    /// Recent query texts and their embeddings (the guard is never held across an await).
    queries: Mutex<QueryCache>,
    /// Texts waiting to be embedded together (see `embed_batched`), each with where its
    /// embedding goes. The guard is never held across an await.
    waiting: Mutex<Vec<(String, Waiter)>>,
    /// Held by the caller that embeds what is waiting.
    batching: tokio::sync::Mutex<()>,
}

type Waiter = tokio::sync::oneshot::Sender<Result<Vec<f32>, EmbedError>>;

/// A small least-recently-used map from query text to embedding.
#[derive(Default)]
struct QueryCache {
    entries: HashMap<String, (u64, Arc<Vec<f32>>)>,
    clock: u64,
}

impl QueryCache {
    fn get(&mut self, text: &str) -> Option<Arc<Vec<f32>>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(text).map(|(used, vector)| {
            *used = clock;
            vector.clone()
        })
    }

    fn insert(&mut self, text: String, vector: Arc<Vec<f32>>) {
        if self.entries.len() >= QUERY_CACHE_SIZE
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(text, _)| text.clone())
        {
            self.entries.remove(&oldest);
        }
        self.clock += 1;
        self.entries.insert(text, (self.clock, vector));
    }
}

impl Embedder {
    /// No embeddings; recall is full-text only and status says why.
    pub fn disabled(reason: impl Into<String>) -> Self {
        Self::with(Backend::Disabled {
            reason: reason.into(),
        })
    }

    /// The local model from `model_dir` (safetensors, tokenizer.json, config.json), never
    /// downloaded.
    pub fn local(model_dir: impl Into<std::path::PathBuf>) -> Self {
        Self::with(Backend::Local(local::LocalEmbedder::new(
            model_dir.into(),
            None,
        )))
    }

    /// An OpenAI-compatible embeddings endpoint: `{base_url}/embeddings`.
    pub fn provider(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        model_id: &str,
    ) -> Result<Self, EmbedError> {
        Ok(Self::with(Backend::Remote(remote::RemoteEmbedder::new(
            base_url, api_key, model, model_id,
        )?)))
    }

    /// The embedder `[memory]` asks for. Never fails: a problem leaves recall full-text only
    /// and is reported in the log and the status.
    pub fn from_config(
        config: &MemoryConfig,
        providers: &BTreeMap<String, ProviderConfig>,
        home: &Path,
    ) -> Self {
        let embedder = match &config.embedder {
            EmbedderConfig::None => Self::disabled("`[memory] embedder = \"none\"`"),
            EmbedderConfig::Local {
                model_dir,
                download,
                download_url,
            } => {
                let (model_dir, download_url) = match model_dir {
                    Some(directory) => (directory.clone(), None),
                    None => (
                        home.join("models").join(LOCAL_MODEL_ID),
                        download.then(|| download_url.clone()),
                    ),
                };
                Self::with(Backend::Local(local::LocalEmbedder::new(
                    model_dir,
                    download_url,
                )))
            }
            EmbedderConfig::Provider { model } => match providers.get(&model.provider) {
                None => Self::disabled(format!(
                    "`[memory] embedder = \"{model}\"` names no configured provider"
                )),
                Some(provider) => {
                    let base_url = provider
                        .base_url
                        .as_deref()
                        .unwrap_or(remote::OPENAI_BASE_URL);
                    Self::provider(
                        base_url,
                        provider.api_key.clone(),
                        &model.model,
                        &model.to_string(),
                    )
                    .unwrap_or_else(|error| Self::disabled(error.to_string()))
                }
            },
        };
        let status = embedder.status();
        if status.recall == "full_text_only" {
            tracing::warn!(detail = %status.detail, "memory recall is full-text only");
        } else {
            tracing::info!(kind = status.kind, model = ?status.model, detail = %status.detail, "memory embedder");
        }
        embedder
    }

    fn with(backend: Backend) -> Self {
        Self {
            backend,
            queries: Mutex::new(QueryCache::default()),
            waiting: Mutex::new(Vec::new()),
            batching: tokio::sync::Mutex::new(()),
        }
    }

    /// The name stored beside each embedding; vectors of another model are not compared.
    pub fn model_id(&self) -> Option<&str> {
        match &self.backend {
            Backend::Disabled { .. } => None,
            Backend::Local(_) => Some(LOCAL_MODEL_ID),
            Backend::Remote(remote) => Some(remote.model_id()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.model_id().is_some()
    }

    /// Whether embedding is worth trying now: enabled, and (for the local model) its files
    /// are there or downloadable and it has not just failed to load.
    pub fn is_available(&self) -> bool {
        match &self.backend {
            Backend::Disabled { .. } => false,
            Backend::Local(local) => local.is_available(),
            Backend::Remote(_) => true,
        }
    }

    /// Embeds each text into an L2-normalised vector. CPU work runs on a blocking thread.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match &self.backend {
            Backend::Disabled { reason } => Err(EmbedError::Unavailable(reason.clone())),
            Backend::Local(local) => local.embed(texts).await,
            Backend::Remote(remote) => remote.embed(texts).await,
        }
    }

    /// Embeds a recall query; a query asked recently comes from the cache without running
    /// the model.
    pub async fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        if let Ok(mut queries) = self.queries.lock()
            && let Some(vector) = queries.get(text)
        {
            return Ok(vector.as_ref().clone());
        }
        let vector = self.embed_one(text).await?;
        if let Ok(mut queries) = self.queries.lock() {
            queries.insert(text.to_string(), Arc::new(vector.clone()));
        }
        Ok(vector)
    }

    /// Embeds one text together with any others asked for meanwhile: while one batch runs,
    /// the texts that arrive wait, and the next caller embeds all of them in one pass (one
    /// forward pass of the model, or one request to the provider). Concurrent saves cost
    /// little more than one.
    pub async fn embed_batched(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let (sender, mut receiver) = tokio::sync::oneshot::channel();
        let queued = self
            .waiting
            .lock()
            .map(|mut waiting| waiting.push((text.to_string(), sender)))
            .is_ok();
        if !queued {
            // A poisoned queue is treated as absent: embed alone.
            return self.embed_one(text).await;
        }
        let _batching = self.batching.lock().await;
        // An earlier batch may have taken this text already.
        if let Ok(result) = receiver.try_recv() {
            return result;
        }
        let batch: Vec<(String, Waiter)> = self
            .waiting
            .lock()
            .map(|mut waiting| std::mem::take(&mut *waiting))
            .unwrap_or_default();
        let (texts, waiters): (Vec<String>, Vec<Waiter>) = batch.into_iter().unzip();
        match self.embed(texts).await {
            Ok(vectors) if vectors.len() == waiters.len() => {
                for (waiter, vector) in waiters.into_iter().zip(vectors) {
                    // The caller may have gone (its save was cancelled): nothing to do.
                    let _ = waiter.send(Ok(vector));
                }
            }
            Ok(vectors) => {
                let error = EmbedError::Model(format!(
                    "{} embeddings returned for {} texts",
                    vectors.len(),
                    waiters.len()
                ));
                for waiter in waiters {
                    let _ = waiter.send(Err(error.clone()));
                }
            }
            Err(error) => {
                for waiter in waiters {
                    let _ = waiter.send(Err(error.clone()));
                }
            }
        }
        receiver
            .await
            .map_err(|_| EmbedError::Task("the embedding batch was dropped".to_string()))?
    }

    pub async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.embed(vec![text.to_string()])
            .await?
            .pop()
            .ok_or_else(|| EmbedError::Model("no embedding returned".to_string()))
    }

    pub fn status(&self) -> EmbedderStatus {
        match &self.backend {
            Backend::Disabled { reason } => EmbedderStatus {
                kind: "none",
                model: None,
                state: "unavailable",
                recall: "full_text_only",
                detail: format!(
                    "no embedder ({reason}); memory recall uses full text only. Set [memory] \
                     embedder to \"local\" or to an OpenAI-compatible \"provider/model\""
                ),
            },
            Backend::Local(local) => local.status(),
            Backend::Remote(remote) => remote.status(),
        }
    }
}
