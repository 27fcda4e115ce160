// The chat: a portal conversation's history, and answers streamed as they are written through
// the OpenAI-compatible endpoint (`/v1/chat/completions`, `stream: true`).

import { element, field, heading, errorText } from "../dom.js";

export async function render(root, { agent, api }) {
  const conversation = element("input", { value: sessionStorage.getItem("spacebot-conversation") || "web", size: 12 });
  const log = element("div", { id: "chat-log", className: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  const input = element("textarea", { id: "chat-input", rows: 2, placeholder: "Message (Enter sends, Shift+Enter is a new line)" });
  const send = element("button", { type: "submit", id: "chat-send", text: "Send" });
  const form = element("form", { className: "chat-form" }, field("Message", input), send);
  root.append(heading("Chat"), field("Conversation", conversation), log, form);

  function show(kind, text) {
    const bubble = element("div", { className: "message " + kind, text });
    log.append(bubble);
    log.scrollTop = log.scrollHeight;
    return bubble;
  }

  async function history() {
    log.replaceChildren();
    const id = "portal:" + conversation.value;
    try {
      const { messages } = await api.get(api.agentPath(agent, `/conversations/${encodeURIComponent(id)}/messages?limit=200`));
      for (const message of messages) show(message.role, message.content);
    } catch (error) {
      show("notice", errorText(error));
    }
  }

  conversation.addEventListener("change", () => {
    sessionStorage.setItem("spacebot-conversation", conversation.value);
    history();
  });
  input.addEventListener("keydown", event => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content) return;
    input.value = "";
    show("user", content);
    let response;
    try {
      response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: api.headers({ "x-spacebot-conversation": conversation.value }),
        body: JSON.stringify({ model: "spacebot/" + agent, stream: true, user: "web", messages: [{ role: "user", content }] }),
      });
    } catch (error) {
      // Not sent: give the text back so nothing typed is lost.
      input.value = content;
      show("notice", "Not sent (" + errorText(error) + "); your message is back in the box.");
      return;
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      if (response.status === 401) api.unauthorized();
      input.value = content;
      show("notice", (body.error ? body.error.message : "error " + response.status) + " (your message is back in the box)");
      return;
    }
    const bubble = show("assistant", "");
    bubble.setAttribute("aria-busy", "true");
    let text = "";
    try {
      await api.readEvents(response, (_name, data) => {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          text += delta.content;
          bubble.textContent = text;
          log.scrollTop = log.scrollHeight;
        }
      });
    } catch (error) {
      // The message was stored; its answer will be in the conversation's history.
      show("notice", "The connection broke (" + errorText(error) + "); the answer will be in this conversation when you reload it.");
    }
    bubble.removeAttribute("aria-busy");
    if (!text) {
      bubble.className = "message notice";
      bubble.textContent = "(the agent chose not to reply)";
    }
  });
  await history();
}
