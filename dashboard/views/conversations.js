// Conversations, most recent first, and the transcript of the one chosen.

import { element, heading, table, when, empty } from "../dom.js";

export async function render(root, { agent, api }) {
  const { conversations } = await api.get(api.agentPath(agent, "/conversations"));
  const transcript = element("section", { id: "transcript", "aria-label": "Transcript" });
  root.append(heading("Conversations"));
  if (!conversations.length) root.append(empty("No conversations yet."));
  else root.append(table("Conversations", ["Conversation", "Platform", "Messages", "Last message"],
    conversations.map(conversation => [
      element("button", { type: "button", className: "link", text: conversation.id, onclick: () => open(conversation.id) }),
      conversation.platform,
      String(conversation.message_count),
      when(conversation.updated_at),
    ])));
  root.append(transcript);

  async function open(id) {
    const { messages } = await api.get(api.agentPath(agent, `/conversations/${encodeURIComponent(id)}/messages?limit=500`));
    const title = element("h2", { text: id, tabIndex: -1 });
    transcript.replaceChildren(title, ...messages.map(message =>
      element("article", { className: "message " + message.role },
        element("header", { className: "meta", text: `${message.sender} · ${message.role} · ${when(message.created_at)}${message.status === "pending" ? " · pending" : ""}` }),
        element("div", { className: "content", text: message.content }),
        attachments(message))));
    title.focus();
  }
}

// Attachments a stored message lists (when the daemon records any), by name.
function attachments(message) {
  const list = message.attachments;
  if (!Array.isArray(list) || !list.length) return null;
  return element("ul", { className: "attachments", "aria-label": "Attachments" },
    list.map(item => element("li", { text: item.name || item.filename || item.path || JSON.stringify(item) })));
}
