//! Slash commands typed on any platform (`/help`, `/status`, `/new`), recognised and answered
//! before a message reaches the agent's LLM. Commands are not stored in the transcript.

use crate::agent::AgentRuntime;
use crate::conversation_id::ConversationId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Help,
    Status,
    /// Start a fresh context: the agent forgets this conversation's earlier messages.
    New,
}

/// Recognises a command at the start of `content`, after any leading `@mentions`. Telegram's
/// `/status@bot_name` form is accepted. Unknown `/words` are not commands: they go to the agent.
pub fn parse(content: &str) -> Option<Command> {
    let mut words = content.split_whitespace();
    let mut word = words.next()?;
    while word.starts_with('@') || (word.starts_with("<@") && word.ends_with('>')) {
        word = words.next()?;
    }
    let name = word.strip_prefix('/')?;
    let name = name.split_once('@').map_or(name, |(name, _)| name);
    match name.to_ascii_lowercase().as_str() {
        "help" => Some(Command::Help),
        "status" => Some(Command::Status),
        "new" | "reset" => Some(Command::New),
        _ => None,
    }
}

/// Runs a command for a conversation and returns the text to answer with.
pub async fn run(command: Command, agent: &AgentRuntime, conversation: &ConversationId) -> String {
    match command {
        Command::Help => [
            "Commands:",
            "/help: this list",
            "/status: the agent, its model and what it is doing",
            "/new: start a fresh conversation (earlier messages are forgotten, not deleted)",
            "Anything else goes to the agent.",
        ]
        .join("\n"),
        Command::Status => {
            let status = agent.status();
            let running = agent.processes(Some(conversation.as_str()));
            let mut text = format!(
                "Agent {} ({})\nModel: {}\nActive conversations: {}\nThis conversation: {conversation}",
                status.display_name, status.id, status.channel_model, status.active_channels
            );
            if let Some(budget) = status.daily_token_budget {
                let state = if status.budget_spent { " (spent)" } else { "" };
                text.push_str(&format!(
                    "\nTokens today: {} of {budget}{state}",
                    status.tokens_today
                ));
            }
            if running.is_empty() {
                text.push_str("\nNothing running in the background.");
            }
            for process in running {
                text.push_str(&format!(
                    "\n{} {} ({}s): {}",
                    process.kind.as_str(),
                    process.process_id,
                    process.age_secs,
                    process.description
                ));
            }
            text
        }
        Command::New => match agent.reset_conversation(conversation).await {
            Ok(()) => "Started a fresh conversation: earlier messages are no longer in my context."
                .to_string(),
            Err(error) => {
                tracing::error!(%error, %conversation, "cannot reset the conversation");
                format!("Sorry, I could not start a fresh conversation: {error}")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised_after_mentions_and_with_a_bot_suffix() {
        assert_eq!(parse("/help"), Some(Command::Help));
        assert_eq!(parse("  /status  "), Some(Command::Status));
        assert_eq!(parse("/new@spacebot_bot"), Some(Command::New));
        assert_eq!(parse("@spacebot /status"), Some(Command::Status));
        assert_eq!(parse("<@1000> /new"), Some(Command::New));
        assert_eq!(parse("/STATUS"), Some(Command::Status));
    }

    #[test]
    fn other_text_is_not_a_command() {
        assert_eq!(parse("hello /help"), None);
        assert_eq!(parse("/unknown thing"), None);
        assert_eq!(parse("path /usr/bin"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("@bot"), None);
    }
}
