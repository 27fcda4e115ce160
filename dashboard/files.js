// Files in the dashboard: the files a message carried (images as small previews, the rest
// as download links) and the links to files the agent sent (`send_file` names
// `/api/agents/{agent}/files/{path}` in its answer). A link or an <img> cannot send the API
// token, so each file is fetched with it and shown or saved from a `blob:` URL.

import * as api from "./api.js";
import { element, errorText } from "./dom.js";

export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function fetchFile(url) {
  const response = await fetch(url, { headers: api.headers() });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) api.unauthorized();
    throw new api.ApiError(response.status, body.error && body.error.message ? body.error.message : `HTTP ${response.status}`);
  }
  return response.blob();
}

// A link that saves the file under `name`; its `href` is the API's address of the file.
export function downloadLink(url, name, content = name) {
  const link = element("a", { href: url, download: name, className: "download" }, content);
  link.addEventListener("click", async event => {
    event.preventDefault();
    try {
      const address = URL.createObjectURL(await fetchFile(url));
      const save = element("a", { href: address, download: name, hidden: true });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(address), 60_000);
    } catch (error) {
      link.after(element("span", { className: "warning", role: "alert", text: ` cannot download ${name}: ${errorText(error)}` }));
    }
  });
  return link;
}

// A small preview of an image, loaded with the token; a click saves it.
export function preview(url, name) {
  const image = element("img", { className: "preview", alt: name, "data-source": url });
  fetchFile(url).then(blob => {
    const address = URL.createObjectURL(blob);
    image.addEventListener("load", () => URL.revokeObjectURL(address), { once: true });
    image.src = address;
  }).catch(error => {
    image.replaceWith(element("span", { className: "warning", text: `${name}: ${errorText(error)}` }));
  });
  return downloadLink(url, name, image);
}

// The files a message carried: a preview or a link each, kind and size, why one was not
// received, a voice note's transcript.
export function attachmentList(files) {
  if (!files || !files.length) return null;
  return element("ul", { className: "attachments", "aria-label": "Attachments" },
    files.map(file => element("li", {},
      file.url && file.kind === "image" ? [preview(file.url, file.name), " "] : null,
      file.url ? downloadLink(file.url, file.name) : element("span", { className: "attachment-name", text: file.name }),
      ` (${file.kind}, ${size(file.size)})`,
      file.refused ? element("span", { className: "warning", text: ` not received: ${file.refused}` }) : null,
      file.transcript ? element("blockquote", { text: file.transcript }) : null)));
}

// Attachments by the id of the message that carried them.
export function byMessage(files) {
  const grouped = new Map();
  for (const file of files) {
    if (!grouped.has(file.message_id)) grouped.set(file.message_id, []);
    grouped.get(file.message_id).push(file);
  }
  return grouped;
}

const SENT_FILE = /(?:https?:\/\/[^\s/]+)?(\/api\/agents\/[^\s/]+\/files\/[^\s<>"'`()[\]]+)/g;

// Text with the links to files the agent sent as download links; the rest stays text.
export function withFileLinks(text) {
  const nodes = [];
  let from = 0;
  for (const match of (text || "").matchAll(SENT_FILE)) {
    const path = match[1].replace(/[.,;:!?]+$/, "");
    const end = match.index + match[0].length - (match[1].length - path.length);
    nodes.push(text.slice(from, match.index));
    let name = path.split("/").pop();
    try { name = decodeURIComponent(name); } catch { /* keep it as written */ }
    nodes.push(downloadLink(path, name, name));
    from = end;
  }
  nodes.push((text || "").slice(from));
  return nodes.filter(node => node !== "");
}
