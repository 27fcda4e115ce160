// Conversations, most recent first, and the transcript of the one chosen with the files its
// messages carried.

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
    const path = api.agentPath(agent, `/conversations/${encodeURIComponent(id)}`);
    const [{ messages }, { attachments: files }] = await Promise.all([
      api.get(`${path}/messages?limit=500`), api.get(`${path}/attachments?limit=500`)]);
    const byMessage = new Map();
    for (const file of files) {
      if (!byMessage.has(file.message_id)) byMessage.set(file.message_id, []);
      byMessage.get(file.message_id).push(file);
    }
    const title = element("h2", { text: id, tabIndex: -1 });
    transcript.replaceChildren(title, ...messages.map(message =>
      element("article", { className: "message " + message.role },
        element("header", { className: "meta", text: `${message.sender} · ${message.role} · ${when(message.created_at)}${message.status === "pending" ? " · pending" : ""}` }),
        element("div", { className: "content", text: message.content }),
        attachments(byMessage.get(message.id)))));
    title.focus();
  }
}

// The files a message carried: name, kind and size, why one was not received, a voice
// note's transcript.
function attachments(files) {
  if (!files || !files.length) return null;
  return element("ul", { className: "attachments", "aria-label": "Attachments" },
    files.map(file => element("li", {},
      element("span", { className: "attachment-name", text: file.name }),
      ` (${file.kind}, ${size(file.size)})`,
      file.refused ? element("span", { className: "warning", text: ` not received: ${file.refused}` }) : null,
      file.transcript ? element("blockquote", { text: file.transcript }) : null)));
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
