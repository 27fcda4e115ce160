//! Keeping a channel's context inside the model's window (the channel model's
//! `context_window` setting, else `defaults.context_window`): after each turn the
//! compactor's plan runs here; a drop happens at once, a summary is written in the background
//! while the channel keeps answering, and replaces its span when it comes back. A request the
//! provider refused as too long drops the oldest half at once (`compact_now`).

use super::Channel;
use super::inbox::{ChannelInput, Compaction};
use crate::agent::capture::CaptureReason;
use crate::agent::compactor;
use crate::conversation::ContextBody;
use crate::event::ProcessEvent;

impl Channel {
    /// Runs the compactor's plan after a turn: a drop happens now, a summary in the
    /// background while the channel keeps answering.
    pub(super) async fn compact(&mut self) {
        let window = self.context_window();
        // Planned on the history in place: this runs after every turn, and nearly always
        // finds nothing to do.
        let items = self.context_items.make_contiguous();
        let plan = compactor::plan(
            items,
            self.system_prompt.len() / 4,
            window,
            self.summary_running,
        );
        let count = match plan {
            compactor::Plan::Nothing => return,
            compactor::Plan::Drop { count } | compactor::Plan::Summarise { count } => count,
        };
        // What is about to leave the context is remembered first (the transcript keeps it).
        self.capture(CaptureReason::Compaction);
        let items = self.context_items.make_contiguous();
        let span = &items[..count];
        let (first, last) = (span[0].seq, span[count - 1].seq);
        let tokens = span.iter().map(|item| item.tokens).sum();
        let span = matches!(plan, compactor::Plan::Summarise { .. }).then(|| span.to_vec());
        self.agent
            .tool_loop
            .events
            .publish(ProcessEvent::CompactionStarted {
                agent_id: self.agent.config.id.clone(),
                conversation_id: self.conversation.to_string(),
                items: count,
                tokens,
            });
        let Some(span) = span else {
            tracing::warn!(
                items = count,
                "context nearly full; dropping the oldest history"
            );
            let marker = ContextBody::Marker(
                "earlier conversation dropped to fit the context window".to_string(),
            );
            self.replace_span(first, last, count, marker, true).await;
            return;
        };
        self.summary_running = true;
        let agent = self.agent.clone();
        let results = self.results.clone();
        self.agent.lifecycle.tasks.spawn(async move {
            let summary = compactor::summarise(&agent.tool_loop, &span).await;
            let compaction = Compaction {
                first,
                last,
                count,
                summary,
            };
            // The channel may have stopped; the history is then simply not compacted.
            let _ = results.send(ChannelInput::Compacted(compaction)).await;
        });
    }

    /// The channel model's context window, in tokens.
    fn context_window(&self) -> usize {
        let tool_loop = &self.agent.tool_loop;
        tool_loop
            .llm
            .catalog()
            .settings(&tool_loop.routing().channel)
            .context_window
            .unwrap_or(self.agent.config.limits.context_window)
    }

    /// The provider said the request does not fit: drops the oldest half of the history at
    /// once. Whether anything was dropped.
    pub(super) async fn compact_now(&mut self) -> bool {
        let items = self.context_items.make_contiguous();
        let tokens: usize = items.iter().map(|item| item.tokens).sum();
        let count = compactor::cut_for(items, tokens / 2);
        if count == 0 {
            return false;
        }
        let (first, last) = (items[0].seq, items[count - 1].seq);
        self.agent
            .tool_loop
            .events
            .publish(ProcessEvent::CompactionStarted {
                agent_id: self.agent.config.id.clone(),
                conversation_id: self.conversation.to_string(),
                items: count,
                tokens,
            });
        let marker = ContextBody::Marker(
            "earlier conversation dropped: it no longer fit the model's context window".to_string(),
        );
        self.replace_span(first, last, count, marker, true).await
    }

    pub(super) async fn apply_summary(&mut self, compaction: Compaction) {
        self.summary_running = false;
        match compaction.summary {
            Ok(summary) if !summary.is_empty() => {
                self.replace_span(
                    compaction.first,
                    compaction.last,
                    compaction.count,
                    ContextBody::Summary(summary),
                    false,
                )
                .await;
            }
            Ok(_) => tracing::warn!("the compactor returned an empty summary; history kept"),
            Err(error) => {
                tracing::warn!(%error, "summary failed; history kept, will retry after the next turn")
            }
        }
    }

    async fn replace_span(
        &mut self,
        first: i64,
        last: i64,
        count: usize,
        replacement: ContextBody,
        dropped: bool,
    ) -> bool {
        let replaced = self
            .agent
            .stores
            .conversations
            .replace_context(self.conversation.as_str(), first, last, count, replacement)
            .await;
        match replaced {
            Ok(Some(item)) => {
                let position = self
                    .context_items
                    .iter()
                    .position(|existing| existing.seq >= first)
                    .unwrap_or(0);
                self.context_items
                    .retain(|existing| existing.seq < first || existing.seq > last);
                self.context_items.insert(position, item);
                self.agent
                    .tool_loop
                    .events
                    .publish(ProcessEvent::CompactionCompleted {
                        agent_id: self.agent.config.id.clone(),
                        conversation_id: self.conversation.to_string(),
                        removed_items: count,
                        dropped,
                    });
                true
            }
            Ok(None) => {
                tracing::debug!("the compacted span changed meanwhile; summary discarded");
                false
            }
            Err(error) => {
                tracing::error!(%error, "cannot compact the history");
                false
            }
        }
    }
}
