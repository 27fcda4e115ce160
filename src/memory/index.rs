//! The in-memory vector index: every remembered memory's embedding, quantised to i8 with a
//! per-vector scale, scanned brute force. A query is scored in two stages: an integer dot
//! product against every vector picks candidates, then the f32 query against the candidates'
//! codes orders them. SQLite keeps the exact f32 vectors; this is a cache rebuilt at startup.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// Candidates kept from the integer scan per requested result.
const CANDIDATES_PER_RESULT: usize = 4;
const MINIMUM_CANDIDATES: usize = 64;
/// From this many vectors on, a search first compares one sign bit per dimension (48 bytes
/// a vector instead of 384) and runs the integer scan only on the closest of them.
const SIGN_SCAN_FROM: usize = 20_000;
/// Vectors the sign comparison passes to the integer scan, per integer-scan candidate.
const SIGN_SURVIVORS_PER_CANDIDATE: usize = 8;
const MINIMUM_SIGN_SURVIVORS: usize = 2_000;

#[derive(Debug, thiserror::Error)]
#[error("embedding has {actual} dimensions but the index holds {expected}-dimensional vectors")]
pub struct DimensionMismatch {
    pub expected: usize,
    pub actual: usize,
}

/// One search hit: the memory id and its (approximate, |error| < 0.005) cosine similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    pub id: Arc<str>,
    pub similarity: f32,
}

/// Which conversation's vectors a search scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Group<'a> {
    /// Every vector.
    #[default]
    Any,
    /// Vectors inserted without a group.
    Ungrouped,
    /// Vectors inserted with this group.
    Named(&'a str),
}

/// What a search scans: vectors of one kind and of one group, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filter<'a> {
    pub kind: Option<u8>,
    pub group: Group<'a>,
}

#[derive(Debug, Default)]
pub struct VectorIndex {
    /// 0 until the first vector is inserted.
    dimensions: usize,
    /// `len * dimensions` codes, slot after slot.
    codes: Vec<i8>,
    /// Per slot: the value of one code step (`max |x| / 127`).
    scales: Vec<f32>,
    /// Per slot: the memory type code, for filtering while scanning.
    kinds: Vec<u8>,
    /// Per slot: its group's code (0: none), for filtering while scanning.
    groups: Vec<u32>,
    /// Per slot: the signs of its values, one bit each, `sign_words` u64 a slot.
    signs: Vec<u64>,
    /// Group name -> code (from 1); codes are never reused.
    group_codes: HashMap<Arc<str>, u32>,
    ids: Vec<Arc<str>>,
    slots: HashMap<Arc<str>, usize>,
}

impl VectorIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    pub fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    /// Bytes held by the index's own buffers (codes, scales, kinds, ids and the id map).
    pub fn memory_bytes(&self) -> usize {
        let id_bytes: usize = self
            .ids
            .iter()
            .map(|id| id.len() + 2 * std::mem::size_of::<usize>())
            .sum();
        self.codes.capacity()
            + self.scales.capacity() * std::mem::size_of::<f32>()
            + self.kinds.capacity()
            + self.groups.capacity() * std::mem::size_of::<u32>()
            + self.signs.capacity() * std::mem::size_of::<u64>()
            + self.ids.capacity() * std::mem::size_of::<Arc<str>>()
            + id_bytes
            + self.slots.capacity()
                * (std::mem::size_of::<Arc<str>>() + std::mem::size_of::<usize>() + 1)
    }

    /// Releases spare capacity (after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.scales.shrink_to_fit();
        self.kinds.shrink_to_fit();
        self.groups.shrink_to_fit();
        self.signs.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.slots.shrink_to_fit();
    }

    /// Adds or replaces the vector of `id`, without a group. `vector` should be
    /// L2-normalised.
    pub fn upsert(&mut self, id: &str, kind: u8, vector: &[f32]) -> Result<(), DimensionMismatch> {
        self.upsert_grouped(id, kind, None, vector)
    }

    /// Adds or replaces the vector of `id`, in `group` (a conversation) if given.
    pub fn upsert_grouped(
        &mut self,
        id: &str,
        kind: u8,
        group: Option<&str>,
        vector: &[f32],
    ) -> Result<(), DimensionMismatch> {
        if self.dimensions == 0 {
            self.dimensions = vector.len();
        }
        if vector.len() != self.dimensions || vector.is_empty() {
            return Err(DimensionMismatch {
                expected: self.dimensions,
                actual: vector.len(),
            });
        }
        let (codes, scale) = quantize(vector);
        let group = match group {
            None => 0,
            Some(name) => match self.group_codes.get(name) {
                Some(code) => *code,
                None => {
                    let code = self.group_codes.len() as u32 + 1;
                    self.group_codes.insert(Arc::from(name), code);
                    code
                }
            },
        };
        let signs = sign_bits(&codes);
        let words = self.sign_words();
        match self.slots.get(id) {
            Some(&slot) => {
                let start = slot * self.dimensions;
                self.codes[start..start + self.dimensions].copy_from_slice(&codes);
                self.scales[slot] = scale;
                self.kinds[slot] = kind;
                self.groups[slot] = group;
                self.signs[slot * words..(slot + 1) * words].copy_from_slice(&signs);
            }
            None => {
                let id: Arc<str> = Arc::from(id);
                if self.codes.capacity() - self.codes.len() < codes.len() {
                    // Grow by an eighth, not the default doubling: the index is the largest
                    // allocation of a big store.
                    let slots = (self.ids.len() / 8).max(1024);
                    self.codes.reserve_exact(slots * self.dimensions);
                    self.scales.reserve_exact(slots);
                    self.kinds.reserve_exact(slots);
                    self.groups.reserve_exact(slots);
                    self.signs.reserve_exact(slots * words);
                    self.ids.reserve_exact(slots);
                }
                self.codes.extend_from_slice(&codes);
                self.scales.push(scale);
                self.kinds.push(kind);
                self.groups.push(group);
                self.signs.extend_from_slice(&signs);
                self.slots.insert(id.clone(), self.ids.len());
                self.ids.push(id);
            }
        }
        Ok(())
    }

    /// Removes `id`; the last slot moves into its place. Returns whether it was present.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.remove(id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        if slot != last {
            let dimensions = self.dimensions;
            self.codes.copy_within(
                last * dimensions..(last + 1) * dimensions,
                slot * dimensions,
            );
            self.scales[slot] = self.scales[last];
            self.kinds[slot] = self.kinds[last];
            self.groups[slot] = self.groups[last];
            let words = self.sign_words();
            self.signs
                .copy_within(last * words..(last + 1) * words, slot * words);
            let moved = self.ids[last].clone();
            self.ids[slot] = moved.clone();
            self.slots.insert(moved, slot);
        }
        self.codes.truncate(last * self.dimensions);
        self.scales.truncate(last);
        self.kinds.truncate(last);
        self.groups.truncate(last);
        self.signs.truncate(last * self.sign_words());
        self.ids.truncate(last);
        true
    }

    /// The `limit` most similar vectors to `query` (L2-normalised), optionally only of one
    /// kind, most similar first. Ties are broken by id so results are deterministic.
    pub fn search(&self, query: &[f32], limit: usize, kind: Option<u8>) -> Vec<VectorHit> {
        self.search_filtered(
            query,
            limit,
            Filter {
                kind,
                group: Group::Any,
            },
        )
    }

    /// The (approximate) cosine similarity of `query` with the vector of `id`, if indexed.
    pub fn similarity(&self, id: &str, query: &[f32]) -> Option<f32> {
        let slot = *self.slots.get(id)?;
        if query.len() != self.dimensions {
            return None;
        }
        let start = slot * self.dimensions;
        Some(dot_f32_i8(query, &self.codes[start..start + self.dimensions]) * self.scales[slot])
    }

    /// The (approximate) cosine similarity of two indexed vectors.
    pub fn pair_similarity(&self, left: &str, right: &str) -> Option<f32> {
        let (left, right) = (*self.slots.get(left)?, *self.slots.get(right)?);
        let dimensions = self.dimensions;
        let codes = |slot: usize| &self.codes[slot * dimensions..(slot + 1) * dimensions];
        Some(dot_i8(codes(left), codes(right)) as f32 * self.scales[left] * self.scales[right])
    }

    /// `search` among the vectors `filter` admits.
    pub fn search_filtered(&self, query: &[f32], limit: usize, filter: Filter) -> Vec<VectorHit> {
        if limit == 0 || self.is_empty() || query.len() != self.dimensions {
            return Vec::new();
        }
        let group = match filter.group {
            Group::Any => None,
            Group::Ungrouped => Some(0),
            Group::Named(name) => match self.group_codes.get(name) {
                Some(code) => Some(*code),
                None => return Vec::new(),
            },
        };
        let kind = filter.kind;
        let (query_codes, _) = quantize(query);
        let candidates = (limit * CANDIDATES_PER_RESULT).max(MINIMUM_CANDIDATES);
        // One thread: the scan is bound by memory bandwidth, which a second thread barely
        // raises, and on a busy machine waiting for two threads lengthens the tail.
        let coarse = if self.len() >= SIGN_SCAN_FROM {
            let survivors = (candidates * SIGN_SURVIVORS_PER_CANDIDATE).max(MINIMUM_SIGN_SURVIVORS);
            let slots = self.sign_scan(&sign_bits(&query_codes), survivors, kind, group);
            self.coarse_scan(&query_codes, slots.into_iter(), candidates, None, None)
        } else {
            self.coarse_scan(&query_codes, 0..self.len(), candidates, kind, group)
        };
        let mut hits: Vec<VectorHit> = coarse
            .into_iter()
            .map(|(_, slot)| {
                let slot = slot as usize;
                let start = slot * self.dimensions;
                let codes = &self.codes[start..start + self.dimensions];
                VectorHit {
                    id: self.ids[slot].clone(),
                    similarity: dot_f32_i8(query, codes) * self.scales[slot],
                }
            })
            .collect();
        hits.sort_by(|left, right| {
            right
                .similarity
                .total_cmp(&left.similarity)
                .then_with(|| left.id.cmp(&right.id))
        });
        hits.truncate(limit);
        hits
    }

    fn sign_words(&self) -> usize {
        self.dimensions.div_ceil(64)
    }

    /// The slots (of `kind` and `group`, if given) whose signs differ least from the
    /// query's, at least `keep` of them unless fewer pass the filters: a first cut that
    /// reads an eighth of the memory the integer scan does.
    fn sign_scan(
        &self,
        query_signs: &[u64],
        keep: usize,
        kind: Option<u8>,
        group: Option<u32>,
    ) -> Vec<usize> {
        let words = self.sign_words();
        let mut distances: Vec<u16> = Vec::with_capacity(self.len());
        let mut histogram = vec![0usize; words * 64 + 1];
        for (slot, signs) in self.signs.chunks_exact(words).enumerate() {
            let admitted = kind.is_none_or(|kind| self.kinds[slot] == kind)
                && group.is_none_or(|group| self.groups[slot] == group);
            let distance = if admitted {
                let distance: u32 = signs
                    .iter()
                    .zip(query_signs)
                    .map(|(stored, query)| (stored ^ query).count_ones())
                    .sum();
                histogram[distance as usize] += 1;
                distance as u16
            } else {
                u16::MAX
            };
            distances.push(distance);
        }
        let mut threshold = 0usize;
        let mut counted = 0usize;
        for (distance, count) in histogram.iter().enumerate() {
            counted += count;
            threshold = distance;
            if counted >= keep {
                break;
            }
        }
        distances
            .iter()
            .enumerate()
            .filter(|(_, distance)| usize::from(**distance) <= threshold)
            .map(|(slot, _)| slot)
            .collect()
    }

    /// The best `keep` of `slots` by integer dot product times the slot's scale.
    fn coarse_scan(
        &self,
        query_codes: &[i8],
        slots: impl Iterator<Item = usize>,
        keep: usize,
        kind: Option<u8>,
        group: Option<u32>,
    ) -> Vec<(Score, u32)> {
        let dimensions = self.dimensions;
        let dot = kernel();
        let mut best: BinaryHeap<std::cmp::Reverse<(Score, u32)>> =
            BinaryHeap::with_capacity(keep + 1);
        for slot in slots {
            if let Some(kind) = kind
                && self.kinds[slot] != kind
            {
                continue;
            }
            if let Some(group) = group
                && self.groups[slot] != group
            {
                continue;
            }
            let start = slot * dimensions;
            let score = Score(
                dot(query_codes, &self.codes[start..start + dimensions]) as f32 * self.scales[slot],
            );
            if best.len() < keep {
                best.push(std::cmp::Reverse((score, slot as u32)));
            } else if let Some(worst) = best.peek()
                && score > worst.0.0
            {
                best.pop();
                best.push(std::cmp::Reverse((score, slot as u32)));
            }
        }
        best.into_iter().map(|entry| entry.0).collect()
    }
}

/// A totally ordered f32 for the candidate heap.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One bit per value, set where it is positive, packed into u64 words.
fn sign_bits(codes: &[i8]) -> Vec<u64> {
    let mut words = vec![0u64; codes.len().div_ceil(64)];
    for (position, code) in codes.iter().enumerate() {
        if *code > 0 {
            words[position / 64] |= 1 << (position % 64);
        }
    }
    words
}

/// Symmetric i8 quantisation: `x ≈ code * scale` with `scale = max |x| / 127`.
pub fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let maximum = vector
        .iter()
        .fold(0f32, |maximum, value| maximum.max(value.abs()));
    if maximum == 0.0 || !maximum.is_finite() {
        return (vec![0; vector.len()], 0.0);
    }
    let factor = 127.0 / maximum;
    let codes = vector
        .iter()
        .map(|value| (value * factor).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, maximum / 127.0)
}

/// Scales `vector` to unit length in place; a zero vector stays zero.
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for value in vector.iter_mut() {
            *value /= norm;
        }
    }
}

/// The dot product of two f32 vectors, with eight accumulators so it vectorises.
pub fn dot(left: &[f32], right: &[f32]) -> f32 {
    let mut sums = [0f32; 8];
    let mut left_chunks = left.chunks_exact(8);
    let mut right_chunks = right.chunks_exact(8);
    for (a, b) in (&mut left_chunks).zip(&mut right_chunks) {
        for lane in 0..8 {
            sums[lane] += a[lane] * b[lane];
        }
    }
    let tail: f32 = left_chunks
        .remainder()
        .iter()
        .zip(right_chunks.remainder())
        .map(|(a, b)| a * b)
        .sum();
    sums.iter().sum::<f32>() + tail
}

fn dot_f32_i8(query: &[f32], codes: &[i8]) -> f32 {
    let mut sums = [0f32; 8];
    let mut query_chunks = query.chunks_exact(8);
    let mut code_chunks = codes.chunks_exact(8);
    for (a, b) in (&mut query_chunks).zip(&mut code_chunks) {
        for lane in 0..8 {
            sums[lane] += a[lane] * f32::from(b[lane]);
        }
    }
    let tail: f32 = query_chunks
        .remainder()
        .iter()
        .zip(code_chunks.remainder())
        .map(|(a, b)| a * f32::from(*b))
        .sum();
    sums.iter().sum::<f32>() + tail
}

type DotKernel = fn(&[i8], &[i8]) -> i32;

/// The fastest integer dot product this CPU runs (AVX2 when present).
fn kernel() -> DotKernel {
    #[cfg(target_arch = "x86_64")]
    {
        static KERNEL: std::sync::OnceLock<DotKernel> = std::sync::OnceLock::new();
        *KERNEL.get_or_init(|| {
            if std::arch::is_x86_feature_detected!("avx2") {
                dot_i8_avx2_entry
            } else {
                dot_i8
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        dot_i8
    }
}

#[inline(always)]
fn dot_i8_body(left: &[i8], right: &[i8]) -> i32 {
    // Products of two i8 fit in i16; pairs of them summed into i32 lanes is the shape
    // (pmaddwd) the compiler turns this into.
    let mut sums = [0i32; 16];
    let mut left_chunks = left.chunks_exact(16);
    let mut right_chunks = right.chunks_exact(16);
    for (a, b) in (&mut left_chunks).zip(&mut right_chunks) {
        for lane in 0..16 {
            sums[lane] += i32::from(i16::from(a[lane]) * i16::from(b[lane]));
        }
    }
    let tail: i32 = left_chunks
        .remainder()
        .iter()
        .zip(right_chunks.remainder())
        .map(|(a, b)| i32::from(*a) * i32::from(*b))
        .sum();
    sums.iter().sum::<i32>() + tail
}

fn dot_i8(left: &[i8], right: &[i8]) -> i32 {
    dot_i8_body(left, right)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_i8_avx2(left: &[i8], right: &[i8]) -> i32 {
    dot_i8_body(left, right)
}

#[cfg(target_arch = "x86_64")]
fn dot_i8_avx2_entry(left: &[i8], right: &[i8]) -> i32 {
    // SAFETY: `kernel` selects this entry only after `is_x86_feature_detected!("avx2")`.
    unsafe { dot_i8_avx2(left, right) }
}

/// Encodes a vector as the little-endian f32 BLOB stored in SQLite.
pub fn to_blob(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// Decodes a BLOB written by `to_blob`; `None` if its length is not a multiple of 4.
pub fn from_blob(blob: &[u8]) -> Option<Vec<f32>> {
    if !blob.len().is_multiple_of(4) {
        return None;
    }
    Some(
        blob.chunks_exact(4)
            .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
