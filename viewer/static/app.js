// apigen-mt view: renders list and item pages from the data files next to them.
// Data files are scripts (file:// pages cannot fetch JSON) that call VIEW.put(key, text) with the
// value's JSON as a string: it is read with JSON.parse, so a "__proto__" key stays a field and no
// text can end the script. They are loaded on demand, so a page reads only the chunks it shows.
// Every value from a run is untrusted (viewer/untrusted.py): it is inserted as a text node, never as
// markup; a field of an unexpected type is shown as its text; links are built here, relative, from
// encoded parts.
"use strict";
(function () {
  const store = new Map();
  const waiting = new Map();
  const VIEW = (window.VIEW = {
    put(key, text) {
      const value = typeof text === "string" ? JSON.parse(text) : text;
      store.set(key, value);
      (waiting.get(key) || []).forEach((resolve) => resolve(value));
      waiting.delete(key);
    },
    load(src, key) {
      if (store.has(key)) return Promise.resolve(store.get(key));
      return new Promise((resolve, reject) => {
        if (!waiting.has(key)) waiting.set(key, []);
        waiting.get(key).push(resolve);
        if (document.querySelector(`script[data-src="${CSS.escape(src)}"]`)) return;
        const s = document.createElement("script");
        s.src = src;
        s.dataset.src = src;
        s.onerror = () => reject(new Error(`could not load ${src}`));
        document.head.appendChild(s);
      });
    },
  });

  // ---- untrusted values --------------------------------------------------------------------
  const CLIP = 20000; // characters of one text shown before a "show all" button
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const obj = (v) => (isObj(v) ? v : {});
  const list = (v) => (Array.isArray(v) ? v : v === null || v === undefined ? [] : [v]);
  const entries = (v) => (isObj(v) ? Object.entries(v) : []);
  function asText(v) {
    if (typeof v === "string") return v;
    if (v === null || v === undefined) return "";
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    try {
      return JSON.stringify(v) ?? "";
    } catch (e) {
      return "[a value that cannot be shown]";
    }
  }
  const quoted = (v) => (typeof v === "string" ? JSON.stringify(v) : asText(v));
  const joined = (v, sep) => list(v).map(asText).join(sep);
  const short = (v, n) => { const t = asText(v); return t.length <= n ? t : `${t.slice(0, n - 1)}…`; };
  function pretty(v) {
    if (typeof v === "string") return v;
    try {
      return JSON.stringify(v, null, 2) ?? "";
    } catch (e) {
      return asText(v);
    }
  }
  function clipped(v) {
    const text = asText(v);
    if (text.length <= CLIP) return text;
    const shown = document.createTextNode(text.slice(0, CLIP));
    const more = el("button", { class: "more", onclick: () => { shown.textContent = text; more.remove(); } },
      `… show all ${text.length.toLocaleString()} characters`);
    return [shown, more];
  }

  // ---- DOM helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = asText(v);
      else if (typeof v === "function") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : asText(v));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(asText(child)));
    }
    return node;
  }
  const pre = (value, cls) => el("pre", { class: cls || "" }, clipped(pretty(value)));
  const badge = (text, cls) => el("span", { class: `badge ${cls || ""}` }, short(text, 200));
  const fold = (summary, ...body) => el("details", {}, el("summary", {}, short(summary, 300)), ...body);
  const section = (title, ...body) => el("section", { class: "card" }, el("h2", {}, title), ...body);
  function kv(pairs) {
    const rows = pairs.filter(([, v]) => v !== undefined && v !== null && v !== "");
    return el("table", { class: "kv" }, rows.map(([k, v]) => el("tr", {}, el("th", {}, short(k, 200)), el("td", {}, v instanceof Node ? v : el("div", { class: "value" }, clipped(pretty(v)))))));
  }
  function params() {
    const out = Object.create(null);
    new URLSearchParams(location.hash.slice(1)).forEach((v, k) => (out[k] = v));
    return out;
  }
  const itemHref = (collection, id, chunk) =>
    `item.html#${new URLSearchParams([["c", asText(collection)], ["id", asText(id)], ...(chunk === undefined ? [] : [["k", asText(chunk)]])])}`;
  const itemLink = (collection, id, chunk, text) => el("a", { href: itemHref(collection, id, chunk) }, short(text || id, 300));
  const pageHref = (name) => `${encodeURIComponent(asText(name))}.html`;
  function verdict(ok) {
    if (ok === true) return badge("verified", "ok");
    if (ok === false) return badge("failed", "bad");
    return badge("–", "");
  }

  // ---- data access -------------------------------------------------------------------------
  const NAME = /^[A-Za-z0-9_-]+$/; // a collection's name, as the site writer makes it
  const manifest = (c) => NAME.test(c) ? VIEW.load(`data/${c}/manifest.js`, `${c}/manifest`) : Promise.reject(new Error(`no collection ${short(c, 80)}`));
  const indexChunk = (c, i) => VIEW.load(`data/${c}/index-${String(i).padStart(5, "0")}.js`, `${c}/index/${i}`);
  const detailChunk = (c, k) => VIEW.load(`data/${c}/detail-${String(k).padStart(5, "0")}.js`, `${c}/detail/${k}`);
  async function allRows(c, m) {
    const chunks = await Promise.all(m.index_chunks.map((_, i) => indexChunk(c, i)));
    return chunks.flat();
  }
  async function findRecord(c, id, k) {
    const m = await manifest(c);
    let chunk = Number(k);
    if (k === undefined || !Number.isInteger(chunk) || chunk < 0) {
      const row = (await allRows(c, m)).find((r) => r[0] === id);
      if (!row) return null;
      chunk = row[1];
    }
    return (await detailChunk(c, chunk)).find((r) => r.id === id) || null;
  }

  // ---- list pages --------------------------------------------------------------------------
  const CELL = 300; // characters of a list cell (the record page shows it whole)
  function cell(column, value, row, collection) {
    if (column.kind === "link") return el("td", {}, itemLink(collection, row[0], row[1], value));
    if (column.kind === "bool") return el("td", {}, value === true ? badge("yes", "ok") : value === false ? badge("no", "bad") : "–");
    if (column.kind === "verdict") return el("td", {}, verdict(value));
    if (column.kind === "list") return el("td", {}, short(joined(value, ", "), CELL));
    if (column.kind === "ref" && asText(value)) return el("td", {}, el("a", { href: itemHref(column.target, value) }, short(value, CELL)));
    return el("td", { class: column.kind === "num" ? "num" : "" }, value === null || value === undefined ? "–" : short(value, CELL));
  }

  async function listPage(root, collection) {
    const m = await manifest(collection);
    const p = params();
    const state = { page: Math.max(0, Number(p.page) || 0), q: p.q || "", filters: Object.create(null) };
    for (const k of Object.keys(p)) if (k.startsWith("f.")) state.filters[k.slice(2)] = p[k];
    let rows = null; // every index row, once a search or filter needs them
    const first = await indexChunk(collection, 0);
    const status = el("p", { class: "status" });
    const table = el("table", { class: "list", id: "list" });
    const pager = el("div", { class: "pager" });
    const search = el("input", { type: "search", placeholder: "search", value: state.q, id: "search" });
    const selects = m.columns.filter((c) => c.filter).map((c) => {
      const select = el("select", { "data-key": c.key, title: c.title }, el("option", { value: "" }, `${c.title}: all`),
        list(m.filters[c.key]).map(([value, n]) => el("option", { value: asText(value), title: short(value, 2000), selected: asText(value) === state.filters[c.key] }, `${short(value, 60)} (${n})`)));
      select.addEventListener("change", () => { state.filters[c.key] = select.value; state.page = 0; update(); });
      return select;
    });
    search.addEventListener("input", () => { state.q = search.value; state.page = 0; update(); });
    root.replaceChildren(el("h1", {}, m.title), el("div", { class: "controls" }, search, selects), status, el("div", { class: "scroll" }, table), pager);

    function matches(row) {
      for (const [key, value] of Object.entries(state.filters)) {
        if (!value) continue;
        const i = m.columns.findIndex((c) => c.key === key);
        if (i < 0) continue;
        if (!list(row[i + 2]).map(asText).includes(value)) return false;
      }
      if (state.q) {
        const q = state.q.toLowerCase();
        const hay = [row[0], ...m.columns.map((c, i) => (c.search ? list(row[i + 2]) : []))].flat().map(asText).join(" ").toLowerCase();
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
  // A renderer returns its parts as functions: a part that cannot be drawn from what the record
  // holds is one card saying so, with the field as written, and the others are still shown.
  function callView(call) {
    if (!isObj(call)) return el("div", { class: "call" }, el("span", { class: "fn muted" }, "(not a tool call)"), pre(call));
    const fn = isObj(call.function) ? call.function : call;
    let args = fn.arguments;
    if (typeof args === "string") { try { args = JSON.parse(args); } catch (e) { /* shown as written */ } }
    return el("div", { class: "call" }, el("span", { class: "fn" }, short(fn.name, 300)), pre(args === undefined ? {} : args, "args"));
  }
  function content(c) {
    if (typeof c === "string") return c;
    if (Array.isArray(c)) return c.map((p) => (isObj(p) && typeof p.text === "string" ? p.text : pretty(p))).join("\n");
    return c === null || c === undefined ? "" : pretty(c);
  }
  function message(m, scores) {
    if (!isObj(m)) return el("div", { class: "msg agent" }, el("div", { class: "who" }, "(not a message)"), pre(m));
    const role = asText(m.role);
    if (role === "system") return fold("system prompt", pre(content(m.content)));
    if (role === "tool") {
      const device = asText(m.tool_call_id).startsWith("device_");
      return el("div", { class: `msg tool${device ? " device" : ""}` },
        fold(`${device ? "device observation" : "observation"} · ${asText(m.name)}`, pre(content(m.content))));
    }
    if (role === "user") {
      return el("div", { class: "msg user" }, el("div", { class: "who" }, "user"), el("div", { class: "text" }, clipped(content(m.content))),
        scores.length ? el("div", { class: "bon" }, `Best-of-${scores.length} critique scores: ${joined(scores, ", ")}`) : null);
    }
    const text = content(m.content);
    return el("div", { class: "msg agent" }, el("div", { class: "who" }, role === "assistant" || !role ? "agent" : short(role, 80)),
      text ? el("div", { class: "text" }, clipped(text)) : null, list(m.tool_calls).map(callView));
  }
  function chat(messages, userScores, deviceCalls) {
    let userTurn = 0;
    const calls = list(deviceCalls);
    return el("div", { class: "chat" }, list(messages).map((m) => message(m, isObj(m) && m.role === "user" ? list(list(userScores)[userTurn++]) : [])),
      calls.length ? section("User-side device calls", calls.map((raw) => { const c = obj(raw);
        return el("div", { class: "call device" }, el("span", { class: "fn" }, short(c.name, 300)), pre(c.arguments ?? {}, "args"), fold(c.ok ? "observation" : "error", pre(c.observation ?? ""))); })) : null);
  }
  function diffView(lines, empty) {
    const shown = list(lines).map(asText);
    if (!shown.length) return el("p", { class: "muted" }, asText(empty));
    return el("pre", { class: "diff" }, shown.map((l) => el("span", { class: l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "" }, clipped(l), "\n")));
  }
  const none = (text) => el("p", { class: "muted" }, text);

  const renderers = {
    dialogue(r) {
      const c = obj(r.checks);
      return [
        () => el("h1", {}, short(r.id, 500), " ", verdict(r.success), r.failure ? badge(r.failure, "bad") : null, r.user_error ? badge("user error", "warn") : null),
        () => section("Verdict", kv([
          ["reward", r.reward], ["failure class", r.failure], ["termination", c.termination],
          ["state matches the gold end state", c.state_match], ["outputs", c.outputs_expected !== undefined ? `${asText(c.outputs_found)}/${asText(c.outputs_expected)}` : undefined],
          ["missing outputs", joined(c.missing_outputs, "; ")], ["policy violations", joined(c.policy_violations, "; ")],
          ["format errors", joined(c.format_errors, "; ")], ["error", c.error || r.error],
          ["values no one said before the write call (provenance)", list(c.ungrounded_arguments).map((raw) => { const u = obj(raw); return `${asText(u.tool)}.${asText(u.argument)} = ${quoted(u.value)}`; }).join("; ")],
          ["blueprint", asText(r.blueprint_id) ? itemLink("blueprints", r.blueprint_id) : undefined], ["task", r.task_id], ["attempt / trial", r.attempt ?? r.trial],
          ["split", r.split], ["env", r.env], ["agent mode", r.agent_mode], ["models", r.models], ["tokens", r.usage],
          ["user said things the task does not contain", joined(r.user_unsupported_facts, ", ")],
        ])),
        () => section("Final state against the gold end state", diffView(r.state_diff, r.state_diff_note || "no difference"),
          list(r.state_diff).length && r.state_diff_note ? el("p", { class: "muted" }, asText(r.state_diff_note)) : null),
        () => (r.extra ? section("More", fold("fields", pre(r.extra))) : null),
        () => section("Dialogue", chat(r.messages, c.user_scores, r.user_device_calls)),
      ];
    },
    blueprint(r) {
      const rounds = list(r.rounds).map(obj);
      const parents = list(r.parents), actions = list(r.actions), outputs = list(r.outputs), dialogues = list(r.dialogues).map(obj);
      return [
        () => el("h1", {}, short(r.id, 500), " ", badge(r.status, r.status === "accepted" ? "ok" : "bad"), badge(r.kind, ""), r.stage ? badge(`rejected at ${asText(r.stage)}`, "bad") : null),
        () => section("Task", kv([["instruction", r.instruction], ["persona", r.persona], ["user", r.user_id], ["env", r.env], ["seed", r.seed],
          ["parents", parents.length ? el("span", {}, parents.map((p) => [itemLink("blueprints", p), " "])) : undefined],
          ["final reasons", joined(r.reasons, "\n")], ["raw reply", r.raw]])),
        () => section("Gold actions", actions.length ? el("ol", {}, actions.map((a) => el("li", {}, callView(a)))) : none("none")),
        () => section("Expected outputs", outputs.length ? el("ul", {}, outputs.map((o) => el("li", {}, clipped(o)))) : none("none (the final state verifies the task)")),
        () => section("State diff of the replay", diffView(r.diff, "no recorded diff")),
        () => section("Validation rounds", rounds.length ? el("div", { class: "rounds" }, rounds.map((round) => el("div", { class: "round" },
          el("h3", {}, `round ${asText(round.round)}`),
          el("ul", { class: "stages" }, list(round.passed).map((s) => el("li", { class: "pass" }, `✓ ${short(s, 200)}`)),
            round.failed_stage ? el("li", { class: "fail" }, `✗ ${short(round.failed_stage, 200)}`) : null),
          list(round.reasons).length ? pre(joined(round.reasons, "\n"), "reasons") : null,
          isObj(round.review) ? review(round.review) : null))) : none("no rounds recorded")),
        () => section("Dialogues", dialogues.length ? el("ul", {}, dialogues.map((d) => el("li", {}, itemLink("dialogues", d.id), " ", verdict(d.success), d.failure ? badge(d.failure, "bad") : null))) : none("none")),
        () => section("Provenance", fold("sampler draws, models, usage", pre(r.provenance ?? {}))),
      ];
    },
    tau_task(r) {
      return [
        () => el("h1", {}, `task ${short(r.id, 500)}`, r.gold_noop ? badge("gold is a no-op", "warn") : null),
        () => section("Trials", kv([["trials", r.trials], ["successes", r.successes], ["mean reward", r.mean_reward], ["pass^k", r.pass_k], ["failure classes", r.failures], ["user-error trials", r.user_errors]]),
          el("ul", {}, list(r.trial_ids).map(obj).map((t) => el("li", {}, itemLink("trials", t.id), " ", verdict(t.success), t.failure ? badge(t.failure, "bad") : null)))),
      ];
    },
    bfcl_item(r) {
      const question = list(r.question);
      return [
        () => el("h1", {}, short(r.id, 500), " ", r.valid ? badge("correct", "ok") : badge("wrong", "bad"), r.error_type ? badge(r.error_type, "bad") : null),
        () => section("Verdict", kv([["category", r.category], ["error type", r.error_type], ["reason", r.error], ["a call was decoded", r.decoded]])),
        () => section("Question", question.length ? el("ol", {}, question.map((q) => el("li", {}, clipped(content(q))))) : none("question not available (bfcl-eval not installed?)")),
        () => section("Model output (raw)", pre(r.result === undefined ? "not in the result file" : r.result)),
      ];
    },
  };
  function review(rv) {
    return el("div", { class: "review" },
      el("p", {}, `committee: average ${asText(rv.average)} (threshold ${asText(rv.threshold)}) · ${rv.ok ? "accepted" : "rejected"}`),
      kv(entries(rv.voted).map(([k, v]) => [`voted ${k}`, asText(v)])),
      list(rv.verdicts).map(obj).map((v) => el("div", { class: "judge" }, el("h4", {}, short(v.judge, 200), v.valid ? "" : " (abstained)"),
        v.valid ? kv(entries(v.scores).map(([k, s]) => [k, asText(s)])) : el("p", { class: "muted" }, clipped(v.error)),
        v.reflection ? el("p", {}, el("b", {}, "reflection: "), clipped(v.reflection)) : null,
        v.correction ? el("p", {}, el("b", {}, "correction: "), clipped(v.correction)) : null)));
  }
  function drawn(part, record) {
    try {
      return part();
    } catch (e) {
      document.body.dataset.fallback = String(e);
      return section("A part of this record could not be drawn", el("p", { class: "muted" }, String(e)), fold("the record as written", pre(record)));
    }
  }

  async function itemPage(root) {
    const p = params();
    const m = await manifest(p.c);
    const record = await findRecord(p.c, p.id, p.k);
    if (!record) {
      root.replaceChildren(el("h1", {}, "not found"), el("p", {}, `${m.title} holds no record ${short(p.id, 300)}.`));
    } else {
      const draw = Object.hasOwn(renderers, m.record_type) ? renderers[m.record_type] : () => [() => pre(record)];
      const parts = draw(record).map((part) => drawn(part, record)).filter((part) => part instanceof Node);
      root.replaceChildren(el("p", { class: "crumbs" }, el("a", { href: pageHref(p.c) }, `‹ ${m.title}`)), ...parts);
      document.title = `${short(record.id, 200)} · ${m.title}`;
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
