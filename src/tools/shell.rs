//! `shell`: run a command in the workspace, with a timeout, truncated output and live output
//! lines published as events.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{Tool, ToolCall, ToolOutput};
use crate::event::{EventBus, ProcessEvent};
use crate::sandbox::Workspace;

const DEFAULT_TIMEOUT_SECS: u64 = 60;
const MAXIMUM_TIMEOUT_SECS: u64 = 600;
/// Output kept for the model: the head and the tail of anything longer.
const OUTPUT_HEAD: usize = 8 * 1024;
const OUTPUT_TAIL: usize = 8 * 1024;
/// Live output lines published per command; the rest still reaches the result.
const MAXIMUM_EVENT_LINES: usize = 200;

pub struct Shell {
    workspace: Arc<Workspace>,
    events: EventBus,
}

impl Shell {
    pub fn new(workspace: Arc<Workspace>, events: EventBus) -> Self {
        Self { workspace, events }
    }

    async fn run<Effect>(
        &self,
        call: &ToolCall<'_>,
        command: &str,
        timeout: Duration,
    ) -> ToolOutput<Effect> {
        let mut child = match self
            .workspace
            .command(command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
        {
            Ok(child) => child,
            Err(error) => return ToolOutput::error(format!("cannot start the shell: {error}")),
        };
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_lines(stdout, sender.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_lines(stderr, sender));
        }
        let mut output = Output::default();
        let mut published = 0;
        let collected = tokio::time::timeout(timeout, async {
            while let Some(line) = receiver.recv().await {
                if published < MAXIMUM_EVENT_LINES {
                    published += 1;
                    self.events.publish(ProcessEvent::ToolOutput {
                        agent_id: call.agent_id.to_string(),
                        conversation_id: call.conversation.to_string(),
                        process_id: call.process_id.clone(),
                        tool: "shell".to_string(),
                        line: line.clone(),
                    });
                }
                output.push(&line);
            }
            child.wait().await
        })
        .await;
        match collected {
            Ok(Ok(status)) => {
                let code = status
                    .code()
                    .map_or_else(|| "killed by a signal".to_string(), |code| code.to_string());
                ToolOutput::success(format!("exit code: {code}\n{}", output.render()))
            }
            Ok(Err(error)) => ToolOutput::error(format!("waiting for the command failed: {error}")),
            Err(_) => {
                kill_group(&mut child).await;
                ToolOutput::error(format!(
                    "timed out after {}s and was killed\n{}",
                    timeout.as_secs(),
                    output.render()
                ))
            }
        }
    }
}

/// Kills the command and everything it started (its process group).
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(id) = child.id() {
        let killed = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{id}")])
            .stderr(Stdio::null())
            .status()
            .await;
        if let Err(error) = killed {
            tracing::warn!(%error, "cannot kill the command's process group");
        }
    }
    if let Err(error) = child.kill().await {
        tracing::debug!(%error, "command already gone");
    }
}

/// Sends each line (invalid UTF-8 replaced) until the stream ends.
async fn forward_lines(
    stream: impl AsyncRead + Unpin,
    sender: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let mut lines = BufReader::new(stream).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_string();
        if sender.send(text).is_err() {
            return;
        }
    }
}

/// Command output: all of it while short, else the head, a gap note and the tail.
#[derive(Default)]
struct Output {
    head: String,
    tail: std::collections::VecDeque<String>,
    tail_bytes: usize,
    omitted_lines: usize,
}

impl Output {
    fn push(&mut self, line: &str) {
        if self.head.len() + line.len() < OUTPUT_HEAD && self.tail.is_empty() {
            self.head.push_str(line);
            self.head.push('\n');
            return;
        }
        let line: String = line.chars().take(OUTPUT_TAIL).collect();
        self.tail_bytes += line.len() + 1;
        self.tail.push_back(line);
        while self.tail_bytes > OUTPUT_TAIL {
            match self.tail.pop_front() {
                Some(dropped) => {
                    self.tail_bytes -= dropped.len() + 1;
                    self.omitted_lines += 1;
                }
                None => break,
            }
        }
    }

    fn render(&self) -> String {
        let mut text = self.head.clone();
        if self.omitted_lines > 0 {
            text.push_str(&format!("[... {} lines omitted ...]\n", self.omitted_lines));
        }
        for line in &self.tail {
            text.push_str(line);
            text.push('\n');
        }
        if text.is_empty() {
            text.push_str("(no output)");
        }
        text
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    command: String,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

impl<Effect: Send + 'static> Tool<Effect> for Shell {
    type Arguments = Arguments;
    const NAME: &'static str = "shell";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/shell.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "timeout_secs": {"type": "integer", "minimum": 1, "maximum": MAXIMUM_TIMEOUT_SECS}
            },
            "required": ["command"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        if arguments.command.trim().is_empty() {
            return ToolOutput::error("`command` is empty");
        }
        let timeout = arguments
            .timeout_secs
            .unwrap_or(DEFAULT_TIMEOUT_SECS)
            .clamp(1, MAXIMUM_TIMEOUT_SECS);
        self.run(call, &arguments.command, Duration::from_secs(timeout))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_output_keeps_head_and_tail() {
        let mut output = Output::default();
        for index in 0..10_000 {
            output.push(&format!("line {index}"));
        }
        let text = output.render();
        assert!(text.starts_with("line 0\n"));
        assert!(text.contains("lines omitted"));
        assert!(text.trim_end().ends_with("line 9999"));
        assert!(text.len() < OUTPUT_HEAD + OUTPUT_TAIL + 100);
    }
}
