// The daemon's health: providers, chat platform adapters, memory, sandbox, agents' degraded
// tools and models, and the last config reload (`/api/status`).

import { element, heading, table, empty, present } from "../dom.js";

function describe(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return Object.entries(value).map(([key, item]) => `${key}: ${typeof item === "object" ? JSON.stringify(item) : item}`).join(", ");
  return String(value);
}

export async function render(root, { agent, api }) {
  const [status, cortex] = await Promise.all([api.get("/api/status"), api.get(api.agentPath(agent, "/cortex"))]);
  const llm = status.llm || {};
  root.append(...present(heading("Health"),
    element("p", { className: "meta", text: `Spacebot ${status.version}, up ${status.uptime_secs}s, home ${status.home}` }),
    llm.hint ? element("p", { className: "warning", text: llm.hint }) : null,
    element("h2", { text: "Providers" }),
    (llm.providers || []).length
      ? table("Providers", ["Provider", "Kind", "Address"], llm.providers.map(provider => [provider.name, provider.kind, provider.base_url || "default"]))
      : empty("No provider is configured."),
    element("h2", { text: "Models passed over" }),
    (cortex.model_breakers || []).length
      ? table("Models whose breaker is open", ["Model", "Failures in a row", "Tried again in", "Last error"], cortex.model_breakers.map(breaker => [
        breaker.model, String(breaker.consecutive_failures), `${breaker.retry_in_secs}s`, breaker.last_error,
      ]))
      : empty("Every model is answering."),
    element("h2", { text: "Chat platforms" }),
    (status.messaging || []).length
      ? table("Adapters", ["Adapter", "State", "Reconnects", "Last error"], status.messaging.map(adapter => [
        adapter.name, element("span", { className: "state " + describe(adapter.state), text: describe(adapter.state) }), String(adapter.reconnects), adapter.last_error || "",
      ]))
      : empty("No chat platform is configured (the API and this page still work)."),
    element("h2", { text: "Agents" }),
    table("Agents' health", ["Agent", "Degraded", "Cron jobs"], (status.agents || []).map(agent => [
      agent.id, (agent.degraded || []).join("; ") || "ok", agent.cron ? `${agent.cron.jobs} (${agent.cron.disabled.length} disabled)` : "",
    ])),
    element("h2", { text: `What the cortex of ${agent} did` }),
    (cortex.actions || []).length
      ? table("Cortex actions", ["When", "Action", "Process", "Detail"], cortex.actions.slice(-20).reverse().map(action => [
        new Date(action.at).toLocaleString(), describe(action.kind), action.process_id ? describe(action.process_id) : "", action.detail,
      ]))
      : empty("Nothing needed the cortex."),
    element("h2", { text: "Services" }),
    table("Services", ["Service", "State"], [
      ["Memory", describe(status.memory)],
      ["Sandbox", describe(status.sandbox)],
      ["Last reload", describe(status.reload)],
    ])));
}
