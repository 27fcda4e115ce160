// The daemon's HTTP API as the dashboard uses it: the bearer token (kept in sessionStorage),
// JSON requests with readable errors, and server-sent events read from a streamed fetch (an
// EventSource cannot send the token).

const TOKEN_KEY = "spacebot-token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function headers(extra = {}) {
  const result = { "content-type": "application/json", ...extra };
  const current = token();
  if (current) result.authorization = "Bearer " + current;
  return result;
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}
export function unauthorized() {
  onUnauthorized();
}

async function failure(response) {
  const body = await response.json().catch(() => ({}));
  const message = body.error && body.error.message ? body.error.message : `HTTP ${response.status}`;
  if (response.status === 401) onUnauthorized();
  return new ApiError(response.status, message);
}

export async function request(method, path, body) {
  const options = { method, headers: headers() };
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(path, options);
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const get = path => request("GET", path);
export const post = (path, body = {}) => request("POST", path, body);
export const remove = path => request("DELETE", path);

export function agentPath(agent, rest) {
  return `/api/agents/${encodeURIComponent(agent)}${rest}`;
}

// Reads `text/event-stream` from a fetch response, calling `onEvent(name, data)` per event,
// until the stream ends or `signal` aborts.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    const events = buffer.split("\n\n");
    buffer = events.pop();
    for (const event of events) {
      let name = "message";
      const data = [];
      for (const line of event.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

// Subscribes to `/api/events` for an agent; returns once the stream ends or is aborted.
export async function subscribe(agent, signal, onEvent) {
  const response = await fetch(`/api/events?agent=${encodeURIComponent(agent)}`, { headers: headers(), signal });
  if (!response.ok) throw await failure(response);
  await readEvents(response, (name, data) => {
    let parsed = null;
    try { parsed = JSON.parse(data); } catch { return; }
    onEvent(name, parsed);
  });
}
