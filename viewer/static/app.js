// apigen-mt view: renders list and item pages from the data files next to them.
// Data files are scripts (file:// pages cannot fetch JSON) that call VIEW.put(key, value); they are
// loaded on demand, so a page reads only the chunks it shows. Every text from a run is inserted as
// a text node, never as markup.
"use strict";
(function () {
  const store = {};
  const waiting = {};
  const VIEW = (window.VIEW = {
    put(key, value) {
      store[key] = value;
      (waiting[key] || []).forEach((resolve) => resolve(value));
      delete waiting[key];
    },
    load(src, key) {
      if (key in store) return Promise.resolve(store[key]);
      return new Promise((resolve, reject) => {
        (waiting[key] = waiting[key] || []).push(resolve);
        if (document.querySelector(`script[data-src="${src}"]`)) return;
        const s = document.createElement("script");
        s.src = src;
        s.dataset.src = src;
        s.onerror = () => reject(new Error(`could not load ${src}`));
        document.head.appendChild(s);
      });
    },
  });

  // ---- DOM helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));
  const pre = (value, cls) => el("pre", { class: cls || "" }, pretty(value));
  const badge = (text, cls) => el("span", { class: `badge ${cls || ""}` }, text);
  const fold = (summary, ...body) => el("details", {}, el("summary", {}, summary), ...body);
  const section = (title, ...body) => el("section", { class: "card" }, el("h2", {}, title), ...body);
  function kv(pairs) {
    const rows = pairs.filter(([, v]) => v !== undefined && v !== null && v !== "");
    return el("table", { class: "kv" }, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v instanceof Node ? v : pretty(v)))));
  }
  function params() {
    const out = {};
    new URLSearchParams(location.hash.slice(1)).forEach((v, k) => (out[k] = v));
    return out;
  }
  const itemLink = (collection, id, chunk, text) =>
    el("a", { href: `item.html#${new URLSearchParams({ c: collection, id, ...(chunk === undefined ? {} : { k: chunk }) })}` }, text || id);
  function verdict(ok) {
    if (ok === true) return badge("verified", "ok");
    if (ok === false) return badge("failed", "bad");
    return badge("–", "");
  }

  // ---- data access -------------------------------------------------------------------------
  const manifest = (c) => VIEW.load(`data/${c}/manifest.js`, `${c}/manifest`);
  const indexChunk = (c, i) => VIEW.load(`data/${c}/index-${String(i).padStart(5, "0")}.js`, `${c}/index/${i}`);
  const detailChunk = (c, k) => VIEW.load(`data/${c}/detail-${String(k).padStart(5, "0")}.js`, `${c}/detail/${k}`);
  async function allRows(c, m) {
    const chunks = await Promise.all(m.index_chunks.map((_, i) => indexChunk(c, i)));
    return chunks.flat();
  }
  async function findRecord(c, id, k) {
    const m = await manifest(c);
    if (k === undefined) {
      const row = (await allRows(c, m)).find((r) => r[0] === id);
      if (!row) return null;
      k = row[1];
    }
    const chunk = await detailChunk(c, Number(k));
    return chunk.find((r) => r.id === id) || null;
  }

  // ---- list pages --------------------------------------------------------------------------
  function cell(column, value, row, collection) {
    if (column.kind === "link") return el("td", {}, itemLink(collection, row[0], row[1], value));
    if (column.kind === "bool") return el("td", {}, value === true ? badge("yes", "ok") : value === false ? badge("no", "bad") : "–");
    if (column.kind === "verdict") return el("td", {}, verdict(value));
    if (column.kind === "list") return el("td", {}, (value || []).join(", "));
    if (column.kind === "ref" && value) return el("td", {}, el("a", { href: `item.html#${new URLSearchParams({ c: column.target, id: value })}` }, value));
    return el("td", { class: column.kind === "num" ? "num" : "" }, value === null || value === undefined ? "–" : String(value));
  }

  async function listPage(root, collection) {
    const m = await manifest(collection);
    const state = { page: 0, q: "", filters: {} };
    Object.assign(state, (() => {
      const p = params();
      const filters = {};
      for (const [k, v] of Object.entries(p)) if (k.startsWith("f.")) filters[k.slice(2)] = v;
      return { page: Number(p.page || 0), q: p.q || "", filters };
    })());
    let rows = null; // every index row, once a search or filter needs them
    const first = await indexChunk(collection, 0);
    const status = el("p", { class: "status" });
    const table = el("table", { class: "list", id: "list" });
    const pager = el("div", { class: "pager" });
    const search = el("input", { type: "search", placeholder: "search", value: state.q, id: "search" });
    const selects = m.columns.filter((c) => c.filter).map((c) => {
      const select = el("select", { "data-key": c.key }, el("option", { value: "" }, `${c.title}: all`),
        (m.filters[c.key] || []).map(([value, n]) => el("option", { value: String(value), selected: String(value) === state.filters[c.key] }, `${value} (${n})`)));
      select.addEventListener("change", () => { state.filters[c.key] = select.value; state.page = 0; update(); });
      return select;
    });
    search.addEventListener("input", () => { state.q = search.value; state.page = 0; update(); });
    root.replaceChildren(el("h1", {}, m.title), el("div", { class: "controls" }, search, selects), status, table, pager);

    function matches(row) {
      for (const [key, value] of Object.entries(state.filters)) {
        if (!value) continue;
        const i = m.columns.findIndex((c) => c.key === key);
        const v = row[i + 2];
        const values = Array.isArray(v) ? v.map(String) : [String(v)];
        if (!values.includes(value)) return false;
      }
      if (state.q) {
        const q = state.q.toLowerCase();
        const hay = [row[0], ...m.columns.map((c, i) => (c.search ? row[i + 2] : "")).flat()].join(" ").toLowerCase();
        if (!hay.includes(q)) return false;
      }
      return true;
    }
    async function update() {
      const narrowing = state.q || Object.values(state.filters).some(Boolean);
      let shown, total;
      if (!narrowing && (state.page + 1) * m.page_size <= first.length) {
        shown = first.slice(state.page * m.page_size, (state.page + 1) * m.page_size);
        total = m.total;
      } else {
        if (!rows) { status.textContent = `loading ${m.total} rows…`; rows = await allRows(collection, m); }
        const kept = narrowing ? rows.filter(matches) : rows;
        total = kept.length;
        shown = kept.slice(state.page * m.page_size, (state.page + 1) * m.page_size);
      }
      const head = el("tr", {}, el("th", {}, "id"), m.columns.map((c) => el("th", {}, c.title)));
      table.replaceChildren(el("thead", {}, head), el("tbody", {}, shown.map((r) =>
        el("tr", {}, el("td", {}, itemLink(collection, r[0], r[1])), m.columns.map((c, i) => cell(c, r[i + 2], r, collection))))));
      const pages = Math.max(1, Math.ceil(total / m.page_size));
      status.textContent = `${total} of ${m.total} · page ${state.page + 1} of ${pages}`;
      pager.replaceChildren(
        el("button", { disabled: state.page === 0, onclick: () => { state.page--; update(); } }, "‹ previous"),
        el("button", { disabled: state.page + 1 >= pages, onclick: () => { state.page++; update(); } }, "next ›"));
      const hash = new URLSearchParams({ page: state.page, ...(state.q ? { q: state.q } : {}) });
      for (const [k, v] of Object.entries(state.filters)) if (v) hash.set(`f.${k}`, v);
      history.replaceState(null, "", `#${hash}`);
      document.body.dataset.rendered = String(Math.round(performance.now()));
    }
    await update();
  }

  // ---- item renderers ----------------------------------------------------------------------
  function callView(call) {
    const fn = call.function || call;
    let args = fn.arguments;
    if (typeof args === "string") { try { args = JSON.parse(args); } catch (e) { /* shown as written */ } }
    return el("div", { class: "call" }, el("span", { class: "fn" }, fn.name), pre(args, "args"));
  }
  function chat(messages, userScores, deviceCalls) {
    let userTurn = 0;
    return el("div", { class: "chat" }, messages.map((m) => {
      if (m.role === "system") return fold("system prompt", pre(m.content || ""));
      if (m.role === "tool") {
        const device = String(m.tool_call_id || "").startsWith("device_");
        return el("div", { class: `msg tool${device ? " device" : ""}` },
          fold(`${device ? "device observation" : "observation"} · ${m.name || ""}`, pre(m.content || "")));
      }
      if (m.role === "user") {
        const scores = (userScores || [])[userTurn++];
        return el("div", { class: "msg user" }, el("div", { class: "who" }, "user"), el("div", { class: "text" }, m.content || ""),
          scores && scores.length ? el("div", { class: "bon" }, `Best-of-${scores.length} critique scores: ${scores.join(", ")}`) : null);
      }
      return el("div", { class: "msg agent" }, el("div", { class: "who" }, "agent"),
        m.content ? el("div", { class: "text" }, m.content) : null, (m.tool_calls || []).map(callView));
    }), deviceCalls && deviceCalls.length ? section("User-side device calls", deviceCalls.map((c) =>
      el("div", { class: "call device" }, el("span", { class: "fn" }, c.name), pre(c.arguments || {}, "args"), fold(c.ok ? "observation" : "error", pre(c.observation || ""))))) : null);
  }
  function diffView(lines, empty) {
    if (!lines || !lines.length) return el("p", { class: "muted" }, empty);
    return el("pre", { class: "diff" }, lines.map((l) => el("span", { class: l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "" }, l + "\n")));
  }

  const renderers = {
    dialogue(r) {
      const c = r.checks || {};
      return [
        el("h1", {}, r.id, " ", verdict(r.success), r.failure ? badge(r.failure, "bad") : null, r.user_error ? badge("user error", "warn") : null),
        section("Verdict", kv([
          ["reward", r.reward], ["failure class", r.failure], ["termination", c.termination],
          ["state matches the gold end state", c.state_match], ["outputs", c.outputs_expected !== undefined ? `${c.outputs_found}/${c.outputs_expected}` : undefined],
          ["missing outputs", (c.missing_outputs || []).join("; ")], ["policy violations", (c.policy_violations || []).join("; ")],
          ["format errors", (c.format_errors || []).join("; ")], ["error", c.error || r.error],
          ["values no one said before the write call (provenance)", (c.ungrounded_arguments || []).map((u) => `${u.tool}.${u.argument} = ${JSON.stringify(u.value)}`).join("; ")],
          ["blueprint", r.blueprint_id ? itemLink("blueprints", r.blueprint_id) : undefined], ["task", r.task_id], ["attempt / trial", r.attempt ?? r.trial],
          ["split", r.split], ["env", r.env], ["agent mode", r.agent_mode], ["models", r.models], ["tokens", r.usage],
          ["user said things the task does not contain", (r.user_unsupported_facts || []).join(", ")],
        ])),
        section("Final state against the gold end state", diffView(r.state_diff, r.state_diff_note || "no difference"),
          r.state_diff && r.state_diff.length && r.state_diff_note ? el("p", { class: "muted" }, r.state_diff_note) : null),
        r.extra ? section("More", fold("fields", pre(r.extra))) : null,
        section("Dialogue", chat(r.messages || [], c.user_scores, r.user_device_calls)),
      ];
    },
    blueprint(r) {
      const rounds = r.rounds || [];
      return [
        el("h1", {}, r.id, " ", badge(r.status, r.status === "accepted" ? "ok" : "bad"), badge(r.kind, ""), r.stage ? badge(`rejected at ${r.stage}`, "bad") : null),
        section("Task", kv([["instruction", r.instruction], ["persona", r.persona], ["user", r.user_id], ["env", r.env], ["seed", r.seed],
          ["parents", r.parents && r.parents.length ? el("span", {}, r.parents.map((p) => itemLink("blueprints", p))) : undefined],
          ["final reasons", (r.reasons || []).join("\n")], ["raw reply", r.raw]])),
        section("Gold actions", r.actions && r.actions.length ? el("ol", {}, r.actions.map((a) => el("li", {}, callView(a)))) : el("p", { class: "muted" }, "none")),
        section("Expected outputs", r.outputs && r.outputs.length ? el("ul", {}, r.outputs.map((o) => el("li", {}, o))) : el("p", { class: "muted" }, "none (the final state verifies the task)")),
        section("State diff of the replay", diffView(r.diff, "no recorded diff")),
        section("Validation rounds", rounds.length ? el("div", { class: "rounds" }, rounds.map((round) => el("div", { class: "round" },
          el("h3", {}, `round ${round.round}`),
          el("ul", { class: "stages" }, (round.passed || []).map((s) => el("li", { class: "pass" }, `✓ ${s}`)),
            round.failed_stage ? el("li", { class: "fail" }, `✗ ${round.failed_stage}`) : null),
          (round.reasons || []).length ? pre(round.reasons.join("\n"), "reasons") : null,
          round.review ? el("div", { class: "review" },
            el("p", {}, `committee: average ${round.review.average} (threshold ${round.review.threshold}) · ${round.review.ok ? "accepted" : "rejected"}`),
            kv(Object.entries(round.review.voted || {}).map(([k, v]) => [`voted ${k}`, String(v)])),
            (round.review.verdicts || []).map((v) => el("div", { class: "judge" }, el("h4", {}, v.judge, v.valid ? "" : " (abstained)"),
              v.valid ? kv(Object.entries(v.scores || {}).map(([k, s]) => [k, String(s)])) : el("p", { class: "muted" }, v.error),
              v.reflection ? el("p", {}, el("b", {}, "reflection: "), v.reflection) : null,
              v.correction ? el("p", {}, el("b", {}, "correction: "), v.correction) : null))) : null))) : el("p", { class: "muted" }, "no rounds recorded")),
        section("Dialogues", r.dialogues && r.dialogues.length ? el("ul", {}, r.dialogues.map((d) => el("li", {}, itemLink("dialogues", d.id, undefined, d.id), " ", verdict(d.success), d.failure ? badge(d.failure, "bad") : null))) : el("p", { class: "muted" }, "none")),
        section("Provenance", fold("sampler draws, models, usage", pre(r.provenance || {}))),
      ];
    },
    tau_task(r) {
      return [
        el("h1", {}, `task ${r.id}`, r.gold_noop ? badge("gold is a no-op", "warn") : null),
        section("Trials", kv([["trials", r.trials], ["successes", r.successes], ["mean reward", r.mean_reward], ["pass^k", r.pass_k], ["failure classes", r.failures], ["user-error trials", r.user_errors]]),
          el("ul", {}, (r.trial_ids || []).map((t) => el("li", {}, itemLink("trials", t.id, undefined, t.id), " ", verdict(t.success), t.failure ? badge(t.failure, "bad") : null)))),
      ];
    },
    bfcl_item(r) {
      return [
        el("h1", {}, r.id, " ", r.valid ? badge("correct", "ok") : badge("wrong", "bad"), r.error_type ? badge(r.error_type, "bad") : null),
        section("Verdict", kv([["category", r.category], ["error type", r.error_type], ["reason", r.error], ["a call was decoded", r.decoded]])),
        section("Question", r.question && r.question.length ? el("ol", {}, r.question.map((q) => el("li", {}, q))) : el("p", { class: "muted" }, "question not available (bfcl-eval not installed?)")),
        section("Model output (raw)", pre(r.result === undefined ? "not in the result file" : r.result)),
      ];
    },
  };

  async function itemPage(root) {
    const p = params();
    const m = await manifest(p.c);
    const record = await findRecord(p.c, p.id, p.k);
    if (!record) {
      root.replaceChildren(el("h1", {}, "not found"), el("p", {}, `${m.title} holds no record ${p.id}.`));
    } else {
      const parts = renderers[m.record_type](record).filter((part) => part instanceof Node);
      root.replaceChildren(el("p", { class: "crumbs" }, el("a", { href: `${p.c}.html` }, `‹ ${m.title}`)), ...parts);
      document.title = `${record.id} · ${m.title}`;
    }
    document.body.dataset.rendered = String(Math.round(performance.now()));
  }

  window.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("app");
    if (!root) return;
    const page = document.body.dataset.page;
    const run = page === "list" ? listPage(root, document.body.dataset.collection) : page === "item" ? itemPage(root) : null;
    if (run) run.catch((e) => { root.replaceChildren(el("h1", {}, "could not render this page"), el("pre", {}, String(e && e.stack || e))); document.body.dataset.error = String(e); });
    if (page === "item") window.addEventListener("hashchange", () => itemPage(root));
  });
})();
