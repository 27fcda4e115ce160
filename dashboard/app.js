// The dashboard's shell: the API token, the agent picker, and which view the address's
// fragment (#chat, #memories, ...) shows. Each view is a module with `render(root, context)`
// that may return a function to call when the view is left.

import * as api from "./api.js";
import * as access from "./views/access.js";
import * as activity from "./views/activity.js";
import * as agents from "./views/agents.js";
import * as chat from "./views/chat.js";
import * as conversations from "./views/conversations.js";
import * as cron from "./views/cron.js";
import * as health from "./views/health.js";
import * as memories from "./views/memories.js";
import * as usage from "./views/usage.js";
import { errorText } from "./dom.js";

const VIEWS = { chat, agents, conversations, activity, memories, cron, usage, access, health };

const view = document.getElementById("view");
const notice = document.getElementById("notice");
const picker = document.getElementById("agent");
const dialog = document.getElementById("token-dialog");
const tokenInput = document.getElementById("token-input");
let leave = null;
let agentList = [];

function say(text) {
  notice.textContent = text;
}

function askForToken() {
  if (dialog.open) return;
  tokenInput.value = api.token();
  dialog.showModal();
  tokenInput.focus();
}

api.whenUnauthorized(() => {
  say("This daemon needs its API token.");
  askForToken();
});

document.getElementById("token-button").addEventListener("click", askForToken);
document.getElementById("token-form").addEventListener("submit", () => {
  api.setToken(tokenInput.value.trim());
  say("");
  start();
});

async function loadAgents() {
  const { agents: list } = await api.get("/api/agents");
  agentList = list;
  const chosen = picker.value || sessionStorage.getItem("spacebot-agent");
  picker.replaceChildren(...list.map(agent => {
    const option = document.createElement("option");
    option.value = agent.id;
    option.textContent = agent.display_name || agent.id;
    return option;
  }));
  const fallback = list.find(agent => agent.default) || list[0];
  picker.value = list.some(agent => agent.id === chosen) ? chosen : fallback ? fallback.id : "";
}

picker.addEventListener("change", () => {
  sessionStorage.setItem("spacebot-agent", picker.value);
  show(false);
});

function current() {
  const name = location.hash.replace(/^#/, "").split("/")[0];
  return VIEWS[name] ? name : "chat";
}

async function show(moveFocus) {
  if (leave) {
    leave();
    leave = null;
  }
  const name = current();
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === "#" + name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  view.replaceChildren();
  view.dataset.view = name;
  delete view.dataset.rendered;
  const context = { agent: picker.value, agents: agentList, api, say };
  try {
    leave = (await VIEWS[name].render(view, context)) || null;
  } catch (error) {
    say(errorText(error));
  }
  // Tests and assistive tools can tell a view that has finished loading.
  if (view.dataset.view === name) view.dataset.rendered = name;
  if (moveFocus) {
    const title = view.querySelector("h1");
    if (title) {
      title.tabIndex = -1;
      title.focus();
    }
  }
}

window.addEventListener("hashchange", () => show(true));
// The skip link moves the focus to the view without changing the address (which names views).
document.querySelector(".skip").addEventListener("click", event => {
  event.preventDefault();
  view.focus();
});

async function start() {
  try {
    await loadAgents();
  } catch (error) {
    if (error.status !== 401) say("Cannot list agents: " + errorText(error));
    return;
  }
  document.body.dataset.ready = "true";
  await show(false);
}

start();
