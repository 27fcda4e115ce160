// Conversations, most recent first, and the transcript of the one chosen with the files its
// messages carried (images previewed, every file downloadable) and the files the agent sent.

import { element, heading, table, when, empty } from "../dom.js";
import { attachmentList, byMessage, withFileLinks } from "../files.js";

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
    const grouped = byMessage(files);
    const title = element("h2", { text: id, tabIndex: -1 });
    transcript.replaceChildren(title, ...messages.map(message =>
      element("article", { className: "message " + message.role },
        element("header", { className: "meta", text: `${message.sender} · ${message.role} · ${when(message.created_at)}${message.status === "pending" ? " · pending" : ""}` }),
        element("div", { className: "content" }, message.role === "assistant" ? withFileLinks(message.content) : message.content),
        attachmentList(grouped.get(message.id)))));
    title.focus();
  }
}
