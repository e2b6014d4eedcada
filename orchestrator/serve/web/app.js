// orch's web page: plain JavaScript over the REST API (/api/v1). Every value from the server is put in
// the page as text (textContent), never as HTML.
"use strict";

let token = sessionStorage.getItem("orch-token") || "";
let watching = null;

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};

async function api(path, options = {}) {
  const response = await fetch("/api/v1" + path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: "Bearer " + token, "Content-Type": "application/json" },
  });
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail) || response.statusText);
  }
  return body;
}

// -- signing in -------------------------------------------------------------------------------------

async function signIn(candidate) {
  token = candidate;
  try {
    const workflows = await api("/workflows");
    sessionStorage.setItem("orch-token", token);
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    await refreshKeys();
    renderWorkflows(workflows);
    await refreshExecutions();
  } catch (error) {
    token = "";
    sessionStorage.removeItem("orch-token");
    $("sign-in-error").textContent = "Sign in failed: " + error.message;
  }
}

// -- workflows and their run forms --------------------------------------------------------------------

let keys = [];

function inputField(workflow, input) {
  const id = `input-${workflow.name}-${input.name}`;
  let field;
  if (input.type === "boolean") {
    field = el("input", { type: "checkbox", id, name: input.name, checked: input.default === true });
  } else {
    field = el("input", {
      type: input.type === "integer" || input.type === "float" ? "number" : "text",
      id, name: input.name, required: input.required,
      placeholder: input.has_default && input.default === null ? "(default)" : "",
    });
    if (input.default !== null && input.default !== undefined) field.value = String(input.default);
  }
  field.dataset.type = input.type;
  const label = el("label", { htmlFor: id, title: input.description || "" }, input.name + (input.required ? " *" : ""));
  return [label, field];
}

function renderWorkflows(workflows) {
  const box = $("workflows");
  box.replaceChildren();
  if (!workflows.length) box.append(el("p", { textContent: "No workflow is offered yet." }));
  for (const workflow of workflows) {
    const form = el("form", { className: "run-form" });
    form.dataset.workflow = workflow.name;
    for (const input of workflow.inputs) form.append(...inputField(workflow, input));
    const keySelect = el("select", { name: "ssh_key", id: `key-${workflow.name}` },
      el("option", { value: "", textContent: "the site's own access" }),
      ...keys.map((k) => el("option", { value: k.id, textContent: `${k.id} (${k.cluster_user || "default user"})` })));
    form.append(el("label", { htmlFor: keySelect.id, textContent: "SSH key" }), keySelect);
    const error = el("p", { className: "error", role: "alert" });
    form.append(el("button", { type: "submit", textContent: "Run" }), error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const inputs = {};
      for (const field of form.querySelectorAll("input")) {
        if (field.type === "checkbox") inputs[field.name] = field.checked;
        else if (field.value !== "") inputs[field.name] = field.dataset.type === "integer" ? parseInt(field.value, 10)
          : field.dataset.type === "float" ? parseFloat(field.value) : field.value;
      }
      try {
        const created = await api("/executions", {
          method: "POST",
          body: JSON.stringify({ workflow: workflow.name, inputs, ssh_key: keySelect.value || null }),
        });
        await refreshExecutions();
        watch(created.id);
      } catch (failure) {
        error.textContent = failure.message;
      }
    });
    box.append(el("div", { className: "workflow" },
      el("h3", { textContent: workflow.name }), el("p", { textContent: workflow.description || "" }), form));
  }
}

// -- ssh keys -----------------------------------------------------------------------------------------

async function refreshKeys() {
  keys = await api("/ssh_keys");
  const list = $("keys");
  list.replaceChildren();
  for (const key of keys) {
    const remove = el("button", { textContent: "Delete" });
    remove.addEventListener("click", async () => { await api(`/ssh_keys/${key.id}`, { method: "DELETE" }); await refreshKeys(); });
    list.append(el("li", { className: "key" }, el("strong", { textContent: key.id + " " }),
      el("span", { textContent: (key.cluster_user || "") + " " }), el("code", { textContent: key.public_key }), " ", remove));
  }
}

// -- executions ---------------------------------------------------------------------------------------

async function refreshExecutions() {
  const executions = await api("/executions");
  const list = $("executions");
  list.replaceChildren();
  for (const execution of executions.slice().reverse()) {
    const open = el("button", { textContent: `${execution.id} ${execution.workflow}` });
    open.addEventListener("click", () => watch(execution.id));
    list.append(el("li", {}, open, " ", el("span", { className: `status ${execution.status}`, textContent: execution.status })));
  }
}

function levels(steps, edges) {
  // each step's column: the longest chain of steps before it
  const before = new Map(steps.map((s) => [s.id, []]));
  for (const [a, b] of edges) if (before.has(b)) before.get(b).push(a);
  const level = new Map();
  const depth = (id) => {
    if (level.has(id)) return level.get(id);
    level.set(id, 0);
    const value = Math.max(-1, ...before.get(id).map(depth)) + 1;
    level.set(id, value);
    return value;
  };
  steps.forEach((s) => depth(s.id));
  return level;
}

function renderGraph(steps, edges) {
  const level = levels(steps, edges);
  const columns = new Map();
  for (const step of steps) {
    if (!step.operation) continue; // state changes are shown through the operations' colours
    const column = level.get(step.id);
    if (!columns.has(column)) columns.set(column, []);
    columns.get(column).push(step);
  }
  const graph = $("graph");
  graph.replaceChildren();
  for (const column of [...columns.keys()].sort((a, b) => a - b)) {
    const wave = el("div", { className: "wave" });
    for (const step of columns.get(column)) {
      const box = el("div", { className: `step state-${step.status}`, textContent: `${step.node} ${step.operation}`,
        title: step.status });
      box.dataset.step = step.id;
      box.dataset.state = step.status;
      wave.append(box);
    }
    graph.append(wave);
  }
}

function renderResults(outputs, executionId) {
  const results = $("results");
  results.replaceChildren();
  for (const [name, value] of Object.entries(outputs || {})) {
    const shown = el("dd", { textContent: typeof value === "string" ? value : JSON.stringify(value) });
    shown.dataset.output = name;
    const download = el("button", { textContent: "download" });
    download.addEventListener("click", async () => {
      const response = await fetch(`/api/v1/executions/${executionId}/results/${encodeURIComponent(name)}`,
        { headers: { Authorization: "Bearer " + token } });
      if (!response.ok) return;
      const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
      link.click();
    });
    results.append(el("dt", { textContent: name }), shown, download);
  }
}

async function watch(executionId) {
  if (watching) clearTimeout(watching.timer);
  const state = { id: executionId, after: 0, timer: null };
  watching = state;
  $("execution").hidden = false;
  $("execution-id").textContent = executionId;
  $("log").textContent = "";
  $("results").replaceChildren();
  const cancel = $("cancel");
  cancel.onclick = async () => { await api(`/executions/${executionId}`, { method: "DELETE" }); };
  const poll = async () => {
    if (watching !== state) return;
    try {
      const execution = await api(`/executions/${executionId}`);
      const status = $("execution-status");
      status.textContent = execution.status;
      status.className = `status ${execution.status}`;
      const live = execution.status === "running" || execution.status === "queued";
      cancel.hidden = !live;
      renderGraph(execution.steps, execution.edges);
      const events = await api(`/executions/${executionId}/logs?after=${state.after}`);
      for (const event of events) {
        state.after = event.id;
        const stamp = new Date(event.ts * 1000).toLocaleTimeString();
        const where = event.node ? `${event.node} ${event.operation || ""}: ` : "";
        $("log").append(`${stamp} ${event.kind} ${where}${event.message}\n`);
      }
      if (!live) {
        renderResults(execution.outputs, executionId);
        await refreshExecutions();
        return;
      }
    } catch (error) {
      $("log").append(`(${error.message})\n`);
    }
    state.timer = setTimeout(poll, 700);
  };
  poll();
}

// -- wiring -------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => { event.preventDefault(); signIn($("token").value.trim()); });
  $("sign-out").addEventListener("click", () => { sessionStorage.removeItem("orch-token"); location.reload(); });
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await api("/ssh_keys", { method: "POST", body: JSON.stringify({ cluster_user: $("cluster-user").value || null }) });
    $("key-hint").hidden = false;
    await refreshKeys();
    renderWorkflows(await api("/workflows"));
  });
  if (token) signIn(token);
});
