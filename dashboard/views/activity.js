// Live branches and workers: what runs now with its status, and the agent's events as they
// happen (`/api/events`), tool output included.

import { element, heading, table, empty, errorText } from "../dom.js";

const REFRESHING = new Set(["branch_started", "branch_result", "worker_started", "worker_status", "worker_complete", "tool_started", "tool_completed"]);
const FEED_LIMIT = 200;

export async function render(root, { agent, api }) {
  const running = element("section", { id: "processes", "aria-label": "Running processes" });
  const feed = element("ol", { id: "event-feed", className: "feed", "aria-live": "polite", "aria-relevant": "additions" });
  root.append(heading("Activity"), element("h2", { text: "Running" }), running, element("h2", { text: "Events" }), feed);

  async function refresh() {
    try {
      const { processes } = await api.get(api.agentPath(agent, "/processes"));
      running.replaceChildren(processes.length
        ? table("Running branches and workers", ["Kind", "Process", "Conversation", "Task", "Status", "Running for"],
          processes.map(process => [
            process.kind,
            process.process_id.id ? String(process.process_id.id).slice(0, 8) : process.process_id.type,
            process.conversation_id,
            process.description,
            element("span", { className: "process-status", text: process.status + (process.waiting ? " (waiting for an answer)" : "") }),
            `${process.age_secs}s`,
          ]))
        : empty("Nothing is running."));
    } catch (error) {
      running.replaceChildren(empty(errorText(error)));
    }
  }

  function line(name, event) {
    const who = event.process_id ? `${event.process_id.type} ${String(event.process_id.id).slice(0, 8)}` : event.conversation_id || "";
    const detail = event.line ?? event.status ?? event.task ?? event.prompt ?? event.tool ?? event.conclusion ?? event.result ?? event.content ?? event.error ?? event.outcome ?? "";
    const item = element("li", { className: "event " + name },
      element("span", { className: "event-name", text: name }), " ",
      element("span", { className: "event-who", text: who }), " ",
      element(name === "tool_output" ? "code" : "span", { className: "event-detail", text: String(detail) }));
    feed.append(item);
    while (feed.children.length > FEED_LIMIT) feed.firstElementChild.remove();
  }

  const controller = new AbortController();
  api.subscribe(agent, controller.signal, (name, event) => {
    if (name === "reply_streaming") return;
    line(name, event);
    if (REFRESHING.has(name)) refresh();
  }).catch(error => {
    if (!controller.signal.aborted) line("disconnected", { error: errorText(error) });
  });
  // Ages move on even when nothing happens.
  const timer = setInterval(refresh, 5000);
  await refresh();
  return () => {
    controller.abort();
    clearInterval(timer);
  };
}
