//! `shell`: run a command in the workspace, with a timeout, truncated output and live output
//! lines published as events.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Tool, ToolCall, ToolOutput};
use crate::event::{EventBus, ProcessEvent};
use crate::sandbox::{Redactor, Sandbox, Workspace};

const DEFAULT_TIMEOUT_SECS: u64 = 60;
const MAXIMUM_TIMEOUT_SECS: u64 = 600;
/// Output kept for the model: the head and the tail of anything longer.
const OUTPUT_HEAD: usize = 8 * 1024;
const OUTPUT_TAIL: usize = 8 * 1024;
/// Live output lines published per command; the rest still reaches the result.
const MAXIMUM_EVENT_LINES: usize = 200;
/// A line is kept up to this long; the rest of it is counted, not kept.
const LONGEST_LINE: usize = 4 * 1024;
const READ_CHUNK: usize = 8 * 1024;
/// Lines waiting for the collector; a command printing faster waits on its pipe.
const LINES_IN_FLIGHT: usize = 64;

pub struct Shell {
    workspace: Arc<Workspace>,
    sandbox: Arc<Sandbox>,
    events: EventBus,
    redactor: Redactor,
}

impl Shell {
    pub fn new(
        workspace: Arc<Workspace>,
        sandbox: Arc<Sandbox>,
        events: EventBus,
        redactor: Redactor,
    ) -> Self {
        Self {
            workspace,
            sandbox,
            events,
            redactor,
        }
    }

    async fn run<Effect>(
        &self,
        call: &ToolCall<'_>,
        command: &str,
        timeout: Duration,
    ) -> ToolOutput<Effect> {
        let mut child = match self
            .sandbox
            .command(&self.workspace, command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(error) => return ToolOutput::error(format!("cannot start the shell: {error}")),
        };
        // Whatever ends this call (the timeout, a cancelled worker), the command's whole
        // process group goes with it.
        let _group = child.id().map(ProcessGroup);
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<String>(LINES_IN_FLIGHT);
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
                        line: self.redactor.redact(&line),
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
            Err(_) => ToolOutput::error(format!(
                "timed out after {}s and was killed\n{}",
                timeout.as_secs(),
                output.render()
            )),
        }
    }
}

/// A command's process group, killed when dropped (it may have ended already).
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let Some(group) = i32::try_from(self.0)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        if let Err(error) =
            rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
        {
            tracing::trace!(%error, "the command's process group is already gone");
        }
    }
}

/// Sends each line (invalid UTF-8 replaced, lines longer than `LONGEST_LINE` cut, the rest
/// of them skipped without being kept) until the stream ends. Nothing is buffered beyond one
/// line, whatever the command prints.
async fn forward_lines(
    mut stream: impl AsyncRead + Unpin,
    sender: tokio::sync::mpsc::Sender<String>,
) {
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut line: Vec<u8> = Vec::new();
    let mut dropped = 0usize;
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let mut rest = &chunk[..read];
        while !rest.is_empty() {
            let (piece, ended) = match rest.iter().position(|byte| *byte == b'\n') {
                Some(end) => (&rest[..end], true),
                None => (rest, false),
            };
            let room = LONGEST_LINE.saturating_sub(line.len());
            line.extend_from_slice(&piece[..piece.len().min(room)]);
            dropped += piece.len().saturating_sub(room);
            rest = if ended { &rest[piece.len() + 1..] } else { &[] };
            if ended
                && sender
                    .send(finish_line(&mut line, &mut dropped))
                    .await
                    .is_err()
            {
                return;
            }
        }
    }
    if !line.is_empty() || dropped > 0 {
        let _ = sender.send(finish_line(&mut line, &mut dropped)).await;
    }
}

fn finish_line(line: &mut Vec<u8>, dropped: &mut usize) -> String {
    let mut text = String::from_utf8_lossy(line)
        .trim_end_matches('\r')
        .to_string();
    if *dropped > 0 {
        text.push_str(&format!(" [... {} more bytes of this line cut]", *dropped));
    }
    line.clear();
    *dropped = 0;
    text
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

#[cfg(test)]
mod line_tests {
    use super::*;

    #[tokio::test]
    async fn a_huge_line_is_cut_without_being_kept() {
        let huge = vec![b'a'; 5 * 1024 * 1024];
        let mut input = huge.clone();
        input.extend_from_slice(b"\nnext\r\nlast");
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(forward_lines(std::io::Cursor::new(input), sender));
        let first = receiver.recv().await.expect("first line");
        assert!(first.len() < LONGEST_LINE + 100, "{}", first.len());
        assert!(first.ends_with(&format!(
            "{} more bytes of this line cut]",
            huge.len() - LONGEST_LINE
        )));
        assert_eq!(receiver.recv().await.as_deref(), Some("next"));
        assert_eq!(receiver.recv().await.as_deref(), Some("last"));
        assert_eq!(receiver.recv().await, None);
    }
}
