//! all-MiniLM-L6-v2 in-process: BERT run with candle on the CPU, mean pooling over the
//! attention mask, L2 normalisation (384 dimensions). Loaded on first use, downloaded once
//! into the model directory when it is missing and a download URL is configured.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use futures::StreamExt;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};
use tokio::io::AsyncWriteExt;

use super::{EmbedError, EmbedderStatus};
use crate::memory::index::normalize;

/// The name stored with every embedding this model makes.
pub const LOCAL_MODEL_ID: &str = "all-MiniLM-L6-v2";
/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// sentence-transformers truncates this model's input at 256 word pieces.
const MAXIMUM_TOKENS: usize = 256;
/// Texts per forward pass.
const BATCH_SIZE: usize = 16;
/// After a failed load or download, callers get the failure until this much time passed.
const RETRY_AFTER: Duration = Duration::from_secs(300);

const NOT_LOADED: u8 = 0;
const DOWNLOADING: u8 = 1;
const LOADING: u8 = 2;
const READY: u8 = 3;
const FAILED: u8 = 4;

pub(super) struct LocalEmbedder {
    model_dir: PathBuf,
    /// Where to fetch missing files from (`{url}/{file}`); `None` never downloads.
    download_url: Option<String>,
    model: OnceLock<Arc<BertEmbedder>>,
    /// Held while loading, so concurrent first uses load once.
    loading: tokio::sync::Mutex<()>,
    phase: AtomicU8,
    /// When and why the last load failed (the guard is never held across an await).
    failure: Mutex<Option<(Instant, String)>>,
}

impl LocalEmbedder {
    pub(super) fn new(model_dir: PathBuf, download_url: Option<String>) -> Self {
        Self {
            model_dir,
            download_url,
            model: OnceLock::new(),
            loading: tokio::sync::Mutex::new(()),
            phase: AtomicU8::new(NOT_LOADED),
            failure: Mutex::new(None),
        }
    }

    pub(super) async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = self.loaded().await?;
        tokio::task::spawn_blocking(move || model.embed(&texts))
            .await
            .map_err(|error| EmbedError::Task(error.to_string()))?
    }

    /// Whether embedding can be tried now: not when the files are missing with no download
    /// configured, nor within `RETRY_AFTER` of a failed load.
    pub(super) fn is_available(&self) -> bool {
        if self.model.get().is_some() {
            return true;
        }
        let failed_recently = self
            .failure
            .lock()
            .ok()
            .and_then(|failure| failure.as_ref().map(|(at, _)| at.elapsed() < RETRY_AFTER))
            .unwrap_or(false);
        !failed_recently && (self.download_url.is_some() || has_model_files(&self.model_dir))
    }

    async fn loaded(&self) -> Result<Arc<BertEmbedder>, EmbedError> {
        if let Some(model) = self.model.get() {
            return Ok(model.clone());
        }
        let _loading = self.loading.lock().await;
        if let Some(model) = self.model.get() {
            return Ok(model.clone());
        }
        let recent_failure = self.failure.lock().ok().and_then(|failure| {
            failure
                .as_ref()
                .filter(|(at, _)| at.elapsed() < RETRY_AFTER)
                .map(|(_, message)| message.clone())
        });
        if let Some(message) = recent_failure {
            return Err(EmbedError::Unavailable(message));
        }
        match self.load().await {
            Ok(model) => {
                let model = self.model.get_or_init(|| Arc::new(model)).clone();
                self.phase.store(READY, Ordering::Release);
                if let Ok(mut failure) = self.failure.lock() {
                    *failure = None;
                }
                Ok(model)
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(%message, model_dir = %self.model_dir.display(), "cannot load the embedding model; recall is full-text only for now");
                self.phase.store(FAILED, Ordering::Release);
                if let Ok(mut failure) = self.failure.lock() {
                    *failure = Some((Instant::now(), message.clone()));
                }
                Err(EmbedError::Unavailable(message))
            }
        }
    }

    async fn load(&self) -> Result<BertEmbedder, EmbedError> {
        if !has_model_files(&self.model_dir) {
            let Some(url) = &self.download_url else {
                return Err(EmbedError::Unavailable(self.missing_files_message()));
            };
            self.phase.store(DOWNLOADING, Ordering::Release);
            download(url, &self.model_dir).await?;
        }
        self.phase.store(LOADING, Ordering::Release);
        let started = Instant::now();
        let directory = self.model_dir.clone();
        let model = tokio::task::spawn_blocking(move || BertEmbedder::load(&directory))
            .await
            .map_err(|error| EmbedError::Task(error.to_string()))??;
        tracing::info!(
            model = LOCAL_MODEL_ID,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedding model loaded"
        );
        Ok(model)
    }

    fn missing_files_message(&self) -> String {
        format!(
            "the embedding model is not in {} (it needs {}) and downloading is off; set \
             [memory] embedding_model_dir or download_model = true",
            self.model_dir.display(),
            MODEL_FILES.join(", ")
        )
    }

    pub(super) fn status(&self) -> EmbedderStatus {
        let directory = self.model_dir.display();
        let (state, recall, detail) = match self.phase.load(Ordering::Acquire) {
            READY => ("ready", "hybrid", format!("loaded from {directory}")),
            DOWNLOADING => (
                "downloading",
                "full_text_only",
                format!("downloading into {directory}; full-text recall until it is ready"),
            ),
            LOADING => (
                "loading",
                "full_text_only",
                format!("loading from {directory}"),
            ),
            FAILED => {
                let failure = self
                    .failure
                    .lock()
                    .ok()
                    .and_then(|failure| failure.as_ref().map(|(_, message)| message.clone()))
                    .unwrap_or_default();
                (
                    "unavailable",
                    "full_text_only",
                    format!(
                        "{failure}; memory recall uses full text only (retried after {} s)",
                        RETRY_AFTER.as_secs()
                    ),
                )
            }
            _ if has_model_files(&self.model_dir) => (
                "not_loaded",
                "hybrid",
                format!("loads from {directory} on first use"),
            ),
            _ => match &self.download_url {
                Some(url) => (
                    "not_loaded",
                    "hybrid",
                    format!("downloads from {url} into {directory} on first use"),
                ),
                None => (
                    "unavailable",
                    "full_text_only",
                    format!(
                        "{}; memory recall uses full text only",
                        self.missing_files_message()
                    ),
                ),
            },
        };
        EmbedderStatus {
            kind: "local",
            model: Some(LOCAL_MODEL_ID.to_string()),
            state,
            recall,
            detail,
        }
    }
}

fn has_model_files(directory: &Path) -> bool {
    MODEL_FILES
        .iter()
        .all(|file| directory.join(file).is_file())
}

fn model_error(error: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(error.to_string())
}

/// Fetches every missing model file from `{url}/{file}`, logging progress, writing to a
/// `.partial` file that is renamed only when complete.
async fn download(url: &str, directory: &Path) -> Result<(), EmbedError> {
    let request_error = |url: &str, message: String| EmbedError::Request {
        url: url.to_string(),
        message,
    };
    tokio::fs::create_dir_all(directory)
        .await
        .map_err(|error| model_error(format!("cannot create {}: {error}", directory.display())))?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|error| request_error(url, error.to_string()))?;
    for file in MODEL_FILES {
        let target = directory.join(file);
        if target.is_file() {
            continue;
        }
        let file_url = format!("{}/{file}", url.trim_end_matches('/'));
        tracing::info!(url = %file_url, target = %target.display(), "downloading the embedding model");
        let response = http
            .get(&file_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| request_error(&file_url, error.to_string()))?;
        let total = response.content_length();
        let partial = directory.join(format!("{file}.partial"));
        let mut output = tokio::fs::File::create(&partial)
            .await
            .map_err(|error| model_error(format!("cannot write {}: {error}", partial.display())))?;
        let mut received: u64 = 0;
        let mut next_report: u64 = 0;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| request_error(&file_url, error.to_string()))?;
            output.write_all(&chunk).await.map_err(|error| {
                model_error(format!("cannot write {}: {error}", partial.display()))
            })?;
            received += chunk.len() as u64;
            if received >= next_report {
                let megabytes = received as f64 / 1_048_576.0;
                match total {
                    Some(total) if total > 0 => tracing::info!(
                        file,
                        "downloading the embedding model: {megabytes:.1} of {:.1} MiB ({}%)",
                        total as f64 / 1_048_576.0,
                        received * 100 / total
                    ),
                    _ => {
                        tracing::info!(file, "downloading the embedding model: {megabytes:.1} MiB")
                    }
                }
                next_report = received + 10 * 1_048_576;
            }
        }
        output
            .flush()
            .await
            .map_err(|error| model_error(format!("cannot write {}: {error}", partial.display())))?;
        drop(output);
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(|error| {
                model_error(format!("cannot rename {}: {error}", partial.display()))
            })?;
        tracing::info!(file, bytes = received, "downloaded");
    }
    Ok(())
}

/// The loaded model and tokenizer. Embedding is CPU work: call it on a blocking thread.
pub(crate) struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl BertEmbedder {
    pub(crate) fn load(directory: &Path) -> Result<Self, EmbedError> {
        let read = |file: &str| {
            std::fs::read(directory.join(file)).map_err(|error| {
                model_error(format!(
                    "cannot read {}: {error}",
                    directory.join(file).display()
                ))
            })
        };
        let config: Config = serde_json::from_slice(&read("config.json")?)
            .map_err(|error| model_error(format!("config.json: {error}")))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|error| model_error(format!("tokenizer.json: {error}")))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAXIMUM_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|error| model_error(format!("tokenizer truncation: {error}")))?;
        let device = Device::Cpu;
        let weights =
            VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)
                .map_err(|error| model_error(format!("model.safetensors: {error}")))?;
        let model = BertModel::load(weights, &config)
            .map_err(|error| model_error(format!("model.safetensors: {error}")))?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    pub(crate) fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH_SIZE) {
            vectors.extend(self.embed_batch(batch).map_err(model_error)?);
        }
        Ok(vectors)
    }

    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|error| format!("tokenizer: {error}"))?;
        let tensor_error = |error: candle_core::Error| error.to_string();
        let ids = encodings
            .iter()
            .map(|encoding| Tensor::new(encoding.get_ids(), &self.device))
            .collect::<Result<Vec<_>, _>>()
            .map_err(tensor_error)?;
        let masks = encodings
            .iter()
            .map(|encoding| Tensor::new(encoding.get_attention_mask(), &self.device))
            .collect::<Result<Vec<_>, _>>()
            .map_err(tensor_error)?;
        let ids = Tensor::stack(&ids, 0).map_err(tensor_error)?;
        let mask = Tensor::stack(&masks, 0).map_err(tensor_error)?;
        let token_types = ids.zeros_like().map_err(tensor_error)?;
        let hidden = self
            .model
            .forward(&ids, &token_types, Some(&mask))
            .map_err(tensor_error)?;
        // Mean over the real tokens: sum(hidden * mask) / sum(mask).
        let mask = mask
            .to_dtype(DType::F32)
            .and_then(|mask| mask.unsqueeze(2))
            .map_err(tensor_error)?;
        let summed = hidden
            .broadcast_mul(&mask)
            .and_then(|masked| masked.sum(1))
            .map_err(tensor_error)?;
        let counts = mask.sum(1).map_err(tensor_error)?;
        let mean = summed.broadcast_div(&counts).map_err(tensor_error)?;
        let mut vectors: Vec<Vec<f32>> = mean.to_vec2().map_err(tensor_error)?;
        for vector in &mut vectors {
            normalize(vector);
        }
        Ok(vectors)
    }
}
