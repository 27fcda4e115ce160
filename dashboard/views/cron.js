// Scheduled jobs: their schedule and last run, history, run now, enable or disable, and a
// form to create one.

import { element, field, heading, table, when, empty, errorText, statusLine } from "../dom.js";

export async function render(root, { agent, api }) {
  const status = statusLine();
  const list = element("section", { id: "cron-jobs", "aria-label": "Jobs" });
  const history = element("section", { id: "cron-history", "aria-label": "History" });
  const prompt = element("textarea", { id: "cron-prompt", rows: 2, required: true });
  const every = element("input", { id: "cron-every", placeholder: "30m" });
  const expression = element("input", { id: "cron-expression", placeholder: "0 9 * * *" });
  const target = element("input", { id: "cron-target", placeholder: "telegram:42 (optional)" });
  const create = element("form", { className: "stack" }, element("h2", { text: "New job" }),
    field("Prompt", prompt), field("Every (an interval such as 30m)", every),
    field("Or a cron expression", expression), field("Deliver to (conversation id)", target),
    element("button", { type: "submit", text: "Create job" }));
  root.append(heading("Cron jobs"), status, list, history, create);
  const path = rest => api.agentPath(agent, "/cron" + rest);

  async function act(action, done) {
    try {
      await action();
      status.textContent = done;
    } catch (error) {
      status.textContent = errorText(error);
    }
    await refresh();
  }

  async function refresh() {
    const { jobs } = await api.get(path(""));
    list.replaceChildren(jobs.length
      ? table("Jobs", ["Job", "Schedule", "Next run", "Last run", "Enabled", "Actions"], jobs.map(job => {
        const id = encodeURIComponent(job.id);
        const last = job.last_execution;
        return [
          element("span", { title: job.prompt, text: job.id }),
          job.cron || (job.every_secs ? `every ${job.every_secs}s` : "once"),
          job.next_run || "",
          last ? `${last.state} ${when(last.started_at)}` : "never",
          job.enabled ? "yes" : `no${job.disabled_reason ? " (" + job.disabled_reason + ")" : ""}`,
          element("span", { className: "actions" },
            element("button", { type: "button", text: "Run now", "aria-label": `Run ${job.id} now`, onclick: () => act(() => api.post(path(`/${id}/run`)), `${job.id} started.`) }),
            element("button", { type: "button", text: job.enabled ? "Disable" : "Enable", "aria-label": `${job.enabled ? "Disable" : "Enable"} ${job.id}`,
              onclick: () => act(() => api.post(path(`/${id}/${job.enabled ? "disable" : "enable"}`)), "Saved.") }),
            element("button", { type: "button", text: "History", "aria-label": `History of ${job.id}`, onclick: () => show(job.id) })),
        ];
      }))
      : empty("No scheduled jobs."));
  }

  async function show(id) {
    const { executions } = await api.get(path(`/${encodeURIComponent(id)}`));
    const title = element("h2", { text: `History of ${id}`, tabIndex: -1 });
    history.replaceChildren(title, executions.length
      ? table(`Runs of ${id}`, ["Started", "Trigger", "State", "Outcome"], executions.map(run => [
        when(run.started_at), String(run.trigger), String(run.state), run.error || run.outcome || "",
      ]))
      : empty("It has not run yet."));
    title.focus();
  }

  create.addEventListener("submit", event => {
    event.preventDefault();
    const draft = { prompt: prompt.value };
    if (every.value.trim()) draft.every = every.value.trim();
    if (expression.value.trim()) draft.cron = expression.value.trim();
    if (target.value.trim()) draft.delivery_target = target.value.trim();
    act(() => api.post(path(""), draft), "Job created.");
  });
  await refresh();
}
