// The chat: a portal conversation's history with the files its messages carried, and answers
// streamed as they are written through the OpenAI-compatible endpoint (`/v1/chat/completions`,
// `stream: true`). Files are attached with the button, by dropping them on the chat or by
// pasting them; each goes as a `file` part (a base64 `data:` URL) of the message.

import { element, field, heading, errorText } from "../dom.js";
import { attachmentList, byMessage, size, withFileLinks } from "../files.js";

export async function render(root, { agent, api }) {
  const conversation = element("input", { value: sessionStorage.getItem("spacebot-conversation") || "web", size: 12 });
  const log = element("div", { id: "chat-log", className: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  const input = element("textarea", { id: "chat-input", rows: 2, placeholder: "Message (Enter sends, Shift+Enter is a new line)" });
  const send = element("button", { type: "submit", id: "chat-send", text: "Send" });
  const picker = element("input", { type: "file", id: "chat-file", multiple: true, hidden: true, "aria-label": "Files to send" });
  const attach = element("button", { type: "button", id: "chat-attach", text: "Attach files", onclick: () => picker.click() });
  const chosenList = element("ul", { id: "chat-files", className: "chosen-files", "aria-label": "Files to send" });
  const fileStatus = element("p", { id: "chat-file-status", className: "status", role: "status", "aria-live": "polite" });
  const form = element("form", { className: "chat-form" }, field("Message", input), attach, picker, send);
  root.append(heading("Chat"), field("Conversation", conversation), log, chosenList, fileStatus, form);

  // What the daemon takes ([media] max_file_mb); unknown if the status cannot be read.
  let limits = { max_file_bytes: null, max_attachments: 10 };
  try {
    const status = await api.get("/api/status");
    if (status.media) limits = status.media;
  } catch {
    // The server checks anyway; its answer is shown if it refuses.
  }
  let chosen = [];

  function showChosen() {
    chosenList.replaceChildren(...chosen.map(file => element("li", {},
      element("span", { className: "attachment-name", text: file.name }),
      ` (${size(file.size)}) `,
      element("button", { type: "button", className: "link", "aria-label": `Remove ${file.name}`, text: "Remove",
        onclick: () => { chosen = chosen.filter(other => other !== file); showChosen(); input.focus(); } }))));
  }

  function choose(files) {
    const refused = [];
    for (const file of files) {
      if (limits.max_file_bytes !== null && file.size > limits.max_file_bytes) {
        refused.push(`${file.name} is ${size(file.size)}, larger than the ${size(limits.max_file_bytes)} this daemon takes ([media] max_file_mb); it was not added.`);
      } else if (chosen.length >= limits.max_attachments) {
        refused.push(`${file.name} was not added: a message carries at most ${limits.max_attachments} files.`);
      } else {
        chosen.push(file);
      }
    }
    fileStatus.textContent = refused.join(" ");
    showChosen();
  }

  picker.addEventListener("change", () => {
    choose([...picker.files]);
    picker.value = "";
  });
  for (const target of [log, form]) {
    target.addEventListener("dragover", event => {
      if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
    });
    target.addEventListener("drop", event => {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      choose([...event.dataTransfer.files]);
    });
  }
  input.addEventListener("paste", event => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (!files.length) return;
    event.preventDefault();
    choose(files);
  });

  function show(kind, text, files) {
    const content = kind === "assistant" ? withFileLinks(text) : [text];
    const bubble = element("div", { className: "message " + kind }, element("div", { className: "content" }, content), files);
    log.append(bubble);
    log.scrollTop = log.scrollHeight;
    return bubble;
  }

  function conversationPath() {
    return api.agentPath(agent, `/conversations/${encodeURIComponent("portal:" + conversation.value)}`);
  }

  async function history() {
    log.replaceChildren();
    try {
      const path = conversationPath();
      const [{ messages }, { attachments }] = await Promise.all([
        api.get(`${path}/messages?limit=200`), api.get(`${path}/attachments?limit=200`)]);
      const files = byMessage(attachments);
      for (const message of messages) show(message.role, message.content, attachmentList(files.get(message.id)));
    } catch (error) {
      show("notice", errorText(error));
    }
  }

  // The files of a message once the daemon keeps them: previews and links in its bubble.
  async function showKept(bubble, messageId) {
    try {
      const { attachments } = await api.get(`${conversationPath()}/attachments?limit=20`);
      const list = attachmentList(byMessage(attachments).get(messageId));
      if (list) bubble.querySelector(".attachments").replaceWith(list);
    } catch (error) {
      show("notice", "The files were sent, but cannot be listed: " + errorText(error));
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
    const files = chosen;
    if (!content && !files.length) return;
    let parts;
    try {
      parts = await Promise.all(files.map(async file => ({
        type: "file", file: { filename: file.name, file_data: await dataUrl(file) } })));
    } catch (error) {
      fileStatus.textContent = "Cannot read the files: " + errorText(error);
      return;
    }
    input.value = "";
    chosen = [];
    showChosen();
    fileStatus.textContent = "";
    const names = files.length ? element("ul", { className: "attachments", "aria-label": "Attachments" },
      files.map(file => element("li", { text: `${file.name} (${size(file.size)})` }))) : null;
    const sent = show("user", content, names);
    const body = parts.length ? [...(content ? [{ type: "text", text: content }] : []), ...parts] : content;
    // Not sent: the text and the files come back, so nothing is lost.
    const giveBack = () => {
      input.value = content;
      chosen = files;
      showChosen();
    };
    let response;
    try {
      response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: api.headers({ "x-spacebot-conversation": conversation.value }),
        body: JSON.stringify({ model: "spacebot/" + agent, stream: true, user: "web", messages: [{ role: "user", content: body }] }),
      });
    } catch (error) {
      giveBack();
      show("notice", "Not sent (" + errorText(error) + "); your message is back in the box.");
      return;
    }
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      if (response.status === 401) api.unauthorized();
      giveBack();
      let reason = answer.error ? answer.error.message : "error " + response.status;
      if (response.status === 413) {
        reason = "Too large for this daemon: " + (answer.error ? answer.error.message
          : "the message with its files is over what it takes at once")
          + (limits.max_file_bytes !== null ? ` (files up to ${size(limits.max_file_bytes)} each; send fewer at once)` : "");
        fileStatus.textContent = reason;
      }
      sent.remove();
      show("notice", reason + " (your message is back in the box)");
      return;
    }
    const bubble = show("assistant", "");
    bubble.setAttribute("aria-busy", "true");
    const text = bubble.querySelector(".content");
    let written = "";
    let messageId = null;
    try {
      await api.readEvents(response, (_name, data) => {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (!messageId && chunk.id) messageId = chunk.id.replace(/^chatcmpl-/, "");
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          written += delta.content;
          text.textContent = written;
          log.scrollTop = log.scrollHeight;
        }
      });
    } catch (error) {
      // The message was stored; its answer will be in the conversation's history.
      show("notice", "The connection broke (" + errorText(error) + "); the answer will be in this conversation when you reload it.");
    }
    bubble.removeAttribute("aria-busy");
    if (!written) {
      bubble.className = "message notice";
      text.textContent = "(the agent chose not to reply)";
    } else {
      text.replaceChildren(...withFileLinks(written));
    }
    if (files.length && messageId) await showKept(sent, messageId);
  });
  await history();
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error || new Error("the file cannot be read"));
    reader.readAsDataURL(file);
  });
}
