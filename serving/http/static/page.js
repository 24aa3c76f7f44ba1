// The page at / of `baton serve --http-port`: type texts, see the model's answers, read its card.
// Everything a model or a server returns is put in the page as text (textContent), never as HTML.
"use strict";

const state = { info: null, token: sessionStorage.getItem("baton-token") || "" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function call(method, path, body) {
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    document.getElementById("token-form").hidden = false;
    throw new Error("this server needs a bearer token");
  }
  const kind = response.headers.get("content-type") || "";
  const payload = kind.startsWith("application/json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((payload && payload.error) || response.status + " " + response.statusText);
  return payload;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

function pct(score) { return (100 * score).toFixed(1) + "%"; }

function labelRow(label, score, chosen, threshold) {
  const track = el("div", { class: "track" }, el("div", { class: "bar", style: { width: pct(score) } }));
  if (threshold !== null && threshold !== undefined) {
    track.append(el("div", { class: "threshold", style: { left: pct(threshold) }, title: "threshold " + threshold }));
  }
  return el("div", { class: "label-row" + (chosen ? " chosen" : ""), "data-label": label, "data-score": String(score) },
    el("span", { class: "name" }, label), track, el("span", { class: "value" }, score.toFixed(3)));
}

function showClassification(texts, results) {
  const info = state.info;
  const multi = info.problem_type === "multi_label_classification";
  const out = document.getElementById("results");
  out.replaceChildren();
  results.forEach((r, i) => {
    const box = el("div", { class: "result" }, el("p", { class: "text" }, texts[i]));
    if (r.empty) {
      box.append(el("p", { class: "note" }, "empty text: nothing to classify"));
    } else {
      const chosen = new Set(multi ? r.labels : [r.label]);
      for (const { label, score } of r.top_k) box.append(labelRow(label, score, chosen.has(label), multi ? info.threshold : null));
      if (multi) box.append(el("p", { class: "note" }, "red line: the threshold " + info.threshold + "; " + (r.labels.length ? "labels: " + r.labels.join(", ") : "no label reaches it")));
    }
    if (r.truncated) box.append(el("p", { class: "note" }, "truncated to the model's " + info.max_length + " tokens"));
    out.append(box);
  });
}

function showEntities(texts, results) {
  const out = document.getElementById("results");
  out.replaceChildren();
  results.forEach((r, i) => {
    const text = texts[i];
    const line = el("p", { class: "entities" });
    let at = 0;
    const cps = Array.from(text); // entity offsets count code points
    for (const e of r.entities) {
      if (e.start < at) continue;
      line.append(cps.slice(at, e.start).join(""));
      line.append(el("mark", { class: "entity", "data-label": e.label, title: e.label + " " + e.score.toFixed(3) },
        cps.slice(e.start, e.end).join(""), el("span", { class: "tag" }, e.label)));
      at = e.end;
    }
    line.append(cps.slice(at).join(""));
    const box = el("div", { class: "result" }, line);
    if (!r.entities.length) box.append(el("p", { class: "note" }, "no entities"));
    if (r.truncated) box.append(el("p", { class: "note" }, "truncated"));
    out.append(box);
  });
}

// A small Markdown reader for the model card: headings, lists, tables, code blocks and paragraphs, as text nodes.
function renderCard(markdown) {
  const body = document.getElementById("card-body");
  body.replaceChildren();
  const lines = markdown.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith("```")) {
      const code = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) code.push(lines[i]);
      body.append(el("pre", {}, code.join("\n")));
      i++;
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(line.indexOf(" "), 6);
      body.append(el("h" + level, {}, line.replace(/^#+ /, "")));
      i++;
    } else if (/^\s*[-*] /.test(line)) {
      const list = el("ul");
      for (; i < lines.length && /^\s*[-*] /.test(lines[i]); i++) list.append(el("li", {}, lines[i].replace(/^\s*[-*] /, "")));
      body.append(list);
    } else if (line.startsWith("|")) {
      const table = el("table");
      for (; i < lines.length && lines[i].startsWith("|"); i++) {
        if (/^\|[\s:|-]+\|?$/.test(lines[i])) continue;
        const cells = lines[i].replace(/^\||\|$/g, "").split("|");
        table.append(el("tr", {}, ...cells.map((c) => el("td", {}, c.trim()))));
      }
      body.append(table);
    } else if (line.trim() === "" || line.startsWith("---")) {
      i++;
    } else {
      const para = [];
      for (; i < lines.length && lines[i].trim() !== "" && !/^(#|\||```|\s*[-*] )/.test(lines[i]); i++) para.push(lines[i]);
      body.append(el("p", {}, para.join(" ")));
    }
  }
}

async function loadModel() {
  showError("");
  const models = (await call("GET", "/v1/models")).models;
  if (!models.length) throw new Error("this server serves no model right now");
  const select = document.getElementById("model");
  if (!state.info && models.length > 1) {  // a model repository: choose one
    const names = [...new Set(models.map((m) => m.name))].sort();
    select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    document.getElementById("model-box").hidden = false;
  }
  const chosen = document.getElementById("model-box").hidden ? models[0].name : select.value;
  const info = await call("GET", "/v1/models/" + encodeURIComponent(chosen));
  state.info = info;
  document.getElementById("token-form").hidden = true;
  document.getElementById("model-name").textContent = info.name;
  const kind = info.task === "token-classification" ? "entity recognition" :
    info.problem_type === "multi_label_classification" ? "multi-label classification" : "classification";
  const labels = info.task === "token-classification" ? info.labels.filter((t) => t.startsWith("B-")).map((t) => t.slice(2)) : info.labels;
  document.getElementById("model-summary").textContent =
    kind + " · " + labels.length + " labels: " + labels.slice(0, 20).join(", ") + (labels.length > 20 ? ", …" : "") +
    " · " + info.variant + " on " + info.provider;
  document.getElementById("aggregation-box").hidden = info.task !== "token-classification";
  if (info.aggregation) document.getElementById("aggregation").value = info.aggregation;
  document.getElementById("pair-box").hidden = !(info.inputs || []).includes("text_pair");
  document.getElementById("card-body").replaceChildren("No card.");
  if (info.card) renderCard(await call("GET", info.card));
  document.getElementById("results").replaceChildren();
  document.body.dataset.ready = "true";
}

async function run(event) {
  event.preventDefault();
  showError("");
  try {
    if (!state.info) await loadModel();
    const texts = document.getElementById("texts").value.split("\n").filter((t) => t.trim() !== "");
    if (!texts.length) { showError("type a text first"); return; }
    document.body.dataset.busy = "true";
    if (state.info.task === "token-classification") {
      const body = { texts, model: state.info.name, aggregation: document.getElementById("aggregation").value };
      const answer = await call("POST", "/v1/recognize", body);
      showEntities(texts, answer.results);
    } else {
      const body = { texts, model: state.info.name, top_k: 0 };
      if (!document.getElementById("pair-box").hidden) {
        body.text_pairs = document.getElementById("pairs").value.split("\n").filter((t) => t.trim() !== "");
      }
      const answer = await call("POST", "/v1/classify", body);
      showClassification(texts, answer.results);
    }
  } catch (error) {
    showError(error.message);
  } finally {
    delete document.body.dataset.busy;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("ask").addEventListener("submit", run);
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = document.getElementById("token").value.trim();
    sessionStorage.setItem("baton-token", state.token);
    loadModel().catch((error) => showError(error.message));
  });
  document.getElementById("model").addEventListener("change", () => {
    delete document.body.dataset.ready;
    loadModel().catch((error) => showError(error.message));
  });
  loadModel().catch((error) => showError(error.message));
});
