//! Showing a turn's answer while the model writes it: the `content` of a `reply` call as its
//! arguments arrive, or else the visible part of the model's text (no thinking, no tool-call
//! syntax). Each change goes to the outbox (platforms that can edit show it) and, at most
//! every `EVENT_INTERVAL`, to the event bus. Also counts the turn's tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent::tool_loop::LoopSink;
use crate::conversation_id::ConversationId;
use crate::event::{EventBus, ProcessEvent};
use crate::llm::partial_json::FieldReader;
use crate::llm::visible::visible_prefix;
use crate::llm::{StreamSink, TokenUsage};
use crate::message::{Draft, Outbox};
use crate::sandbox::Redactor;

/// The least time between two `reply_streaming` events of one turn.
const EVENT_INTERVAL: Duration = Duration::from_millis(100);
const REPLY_TOOL: &str = "reply";

/// The channel's `LoopSink` for one turn.
pub(super) struct AnswerStream {
    outbox: Arc<dyn Outbox>,
    events: EventBus,
    /// Drafts never show a configured secret, nor the start of one.
    redactor: Redactor,
    agent_id: String,
    conversation: ConversationId,
    in_reply_to: Vec<String>,
    reply_to: Option<String>,
    /// Raw text of the current model call.
    text: String,
    /// A tool other than `reply` was called in this model call: its text was a preamble.
    text_void: bool,
    /// `reply` calls of the current model call, by call id, with their content so far.
    replies: HashMap<String, (FieldReader, String)>,
    /// The reply call whose content is shown (the first one).
    shown_reply: Option<String>,
    /// What was last shown.
    shown: String,
    last_event: Option<Instant>,
    /// Tokens the turn spent so far.
    pub usage: TokenUsage,
}

impl AnswerStream {
    pub(super) fn new(
        outbox: Arc<dyn Outbox>,
        events: EventBus,
        redactor: Redactor,
        agent_id: &str,
        conversation: &ConversationId,
        in_reply_to: Vec<String>,
        reply_to: Option<String>,
    ) -> Self {
        Self {
            outbox,
            events,
            redactor,
            agent_id: agent_id.to_string(),
            conversation: conversation.clone(),
            in_reply_to,
            reply_to,
            text: String::new(),
            text_void: false,
            replies: HashMap::new(),
            shown_reply: None,
            shown: String::new(),
            last_event: None,
            usage: TokenUsage::default(),
        }
    }

    /// Shows what the answer is now, if it changed and says something.
    fn refresh(&mut self) {
        let current = match &self.shown_reply {
            Some(call) => self
                .replies
                .get(call)
                .map(|(_, content)| content.trim().to_string())
                .unwrap_or_default(),
            None if self.text_void => String::new(),
            None => visible_prefix(&self.text),
        };
        let current = if self.redactor.is_empty() {
            current
        } else {
            self.redactor.redact_draft(&current)
        };
        if current.is_empty() || current == self.shown {
            return;
        }
        self.shown = current;
        self.outbox.stream(&Draft {
            agent_id: &self.agent_id,
            conversation: &self.conversation,
            in_reply_to: &self.in_reply_to,
            reply_to: self.reply_to.as_deref(),
            text: &self.shown,
        });
        let now = Instant::now();
        if self
            .last_event
            .is_none_or(|last| now.duration_since(last) >= EVENT_INTERVAL)
        {
            self.last_event = Some(now);
            self.events.publish(ProcessEvent::ReplyStreaming {
                agent_id: self.agent_id.clone(),
                conversation_id: self.conversation.to_string(),
                in_reply_to: self.in_reply_to.clone(),
                text: self.shown.clone(),
            });
        }
    }

    /// A new model call starts: what the last one wrote is no longer being written.
    fn next_call(&mut self) {
        self.text.clear();
        self.text_void = false;
        self.replies.clear();
        self.shown_reply = None;
    }
}

impl StreamSink for AnswerStream {
    fn text(&mut self, text: &str) {
        self.text.push_str(text);
        if self.shown_reply.is_none() && !self.text_void {
            self.refresh();
        }
    }

    fn tool_call_name(&mut self, call: &str, name: &str) {
        if name == REPLY_TOOL {
            self.replies.insert(
                call.to_string(),
                (FieldReader::new("content"), String::new()),
            );
            if self.shown_reply.is_none() {
                self.shown_reply = Some(call.to_string());
            }
        } else {
            self.text_void = true;
        }
    }

    fn tool_call_arguments(&mut self, call: &str, fragment: &str) {
        let Some((reader, content)) = self.replies.get_mut(call) else {
            return;
        };
        let decoded = reader.push(fragment);
        if decoded.is_empty() {
            return;
        }
        content.push_str(&decoded);
        if self.shown_reply.as_deref() == Some(call) {
            self.refresh();
        }
    }

    fn restart(&mut self) {
        self.next_call();
    }
}

impl LoopSink for AnswerStream {
    fn spent(&mut self, usage: &TokenUsage) {
        self.usage.add(usage);
        self.next_call();
    }
}
