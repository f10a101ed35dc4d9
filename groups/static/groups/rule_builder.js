/* The rule builder: edits a group's rules document (the rule language) without typing JSON.
 *
 * The JSON textarea stays the single source of truth the form submits; the builder renders the
 * document as nested rows, writes every edit back to the textarea, and re-renders when an expert
 * edits the JSON by hand. Each row carries its JSON pointer (data-path) so the validator's errors,
 * which point into the document, appear next to the row they are about. A live preview asks the
 * server how many customers the rules select (and who would enter or leave) before saving.
 */
(function () {
  "use strict";

  const DATE_OPS = ["before", "after", "on"];
  const DURATION_OPS = ["within_last", "more_than_ago", "within_next", "anniversary_within_next"];
  const WINDOW_LABELS = {
    today: "today", yesterday: "yesterday", this_week: "this week", last_week: "last week",
    this_month: "this month", last_month: "last month", this_year: "this year", last_year: "last year",
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function select(options, current, onchange, attrs) {
    const box = el("select", Object.assign({ onchange: (e) => onchange(e.target.value) }, attrs || {}));
    let found = false;
    for (const [value, label] of options) {
      const option = el("option", { value: value }, label);
      if (String(value) === String(current)) { option.selected = true; found = true; }
      box.append(option);
    }
    if (!found && current !== undefined && current !== null && current !== "") {
      // Keep what the document says even when it is not offered: the validator will say why.
      const option = el("option", { value: current }, String(current));
      option.selected = true;
      box.prepend(option);
    }
    return box;
  }

  // A scalar typed as the field's type asks: numbers stay numbers so the validator and SQL agree.
  function typed(text, type) {
    const trimmed = String(text).trim();
    if ((type === "number" || type === "json") && /^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
    if (type === "boolean" || (type === "json" && (trimmed === "true" || trimmed === "false"))) {
      if (trimmed === "true") return true;
      if (trimmed === "false") return false;
    }
    return text;
  }

  function shape(op, type) {
    if (["is_empty", "is_not_empty", "is_true", "is_false"].includes(op)) return "none";
    if (op === "in" || op === "not_in") return "list";
    if (op === "between") return type === "date" || type === "datetime" ? "day-range" : "range";
    if (DURATION_OPS.includes(op)) return "duration";
    if (DATE_OPS.includes(op)) return "day";
    if (type === "boolean") return "bool";
    if (type === "number") return "number";
    return "text";
  }

  function defaultValue(kind) {
    return { list: [], range: [0, 0], "day-range": ["", ""], duration: { days: 30 }, day: "", bool: true,
      number: 0, text: "" }[kind];
  }

  class Builder {
    constructor(root) {
      this.root = root;
      this.textarea = document.getElementById(root.dataset.field);
      this.cat = JSON.parse(document.getElementById(root.dataset.field + "_catalogue").textContent);
      this.errors = JSON.parse(document.getElementById(root.dataset.field + "_errors").textContent);
      this.tree = root.querySelector(".rb-tree");
      this.previewBox = root.querySelector(".rb-preview");
      this.previewUrl = root.dataset.previewUrl;
      this.valuesUrl = root.dataset.valuesUrl;
      this.groupId = root.dataset.groupId ? Number(root.dataset.groupId) : null;
      this.timer = null;
      // Conditions just added and not edited yet: their empty value is not a mistake to point at.
      this.untouched = new WeakSet();
      this.doc = this.parse() || { all: [] };
      if (typeof this.doc === "object" && !Array.isArray(this.doc) && !Object.keys(this.doc).length) this.doc = { all: [] };
      this.textarea.addEventListener("input", () => {
        const doc = this.parse();
        if (doc === undefined) {
          this.previewBox.textContent = "The JSON is not valid yet; the builder follows once it is.";
          this.previewBox.className = "rb-preview rb-bad";
          return;
        }
        this.doc = doc || { all: [] };
        this.errors = [];
        this.render();
        this.schedulePreview();
      });
      const kind = document.getElementById("id_kind");
      if (kind) {
        kind.addEventListener("change", () => this.showForKind(kind.value));
        this.showForKind(kind.value);
      }
      this.render();
      if (JSON.stringify(this.doc) !== JSON.stringify({ all: [] })) this.schedulePreview(0);
    }

    showForKind(kind) {
      this.root.closest("fieldset").style.display = kind === "manual" ? "none" : "";
    }

    parse() {
      const text = this.textarea.value.trim();
      if (!text) return null;
      try { return JSON.parse(text); } catch (e) { return undefined; }
    }

    // An edit inside a row (typing a value): the structure is the same, so keep focus where it is.
    sync() {
      this.textarea.value = JSON.stringify(this.doc, null, 2);
      this.errors = [];
      this.clearErrors();
      this.schedulePreview();
    }

    // An edit that changes which inputs a row has: write back and draw again.
    changed() {
      this.textarea.value = JSON.stringify(this.doc, null, 2);
      this.errors = [];
      this.render();
      this.schedulePreview();
    }

    render() {
      const rootSlot = { get: () => this.doc, set: (v) => { this.doc = v; }, root: true };
      this.tree.replaceChildren(this.node(this.doc, rootSlot, "", "customer"));
      this.showErrors();
    }

    node(node, slot, path, entity) {
      if (node && typeof node === "object" && !Array.isArray(node)) {
        if ("all" in node || "any" in node) return this.booleanNode(node, slot, path, entity);
        if ("not" in node) return this.notNode(node, slot, path, entity);
        if ("field" in node) {
          const row = this.row(this.fieldCondition(node, path, entity), slot, path, entity);
          row.ruleNode = node;
          return row;
        }
        if ("event" in node && entity === "customer") return this.row(this.eventCondition(node, path), slot, path, entity);
        if ("account" in node && entity === "customer") return this.accountCondition(node, slot, path);
        if ("in_group" in node && entity === "customer") return this.row(this.inGroupCondition(node), slot, path, entity);
      }
      return this.row([el("code", {}, JSON.stringify(node)), el("span", { class: "help" }, " (edit this one in the JSON)")],
        slot, path, entity);
    }

    controls(slot, path, entity) {
      const buttons = [];
      buttons.push(el("button", { type: "button", class: "rb-small", title: "Negate this rule",
        onclick: () => { slot.set({ not: slot.get() }); this.changed(); } }, "not"));
      if (slot.remove) {
        buttons.push(el("button", { type: "button", class: "rb-small rb-remove", title: "Remove this rule",
          "aria-label": "Remove", onclick: () => { slot.remove(); this.changed(); } }, "✕"));
      } else if (slot.root) {
        buttons.push(el("button", { type: "button", class: "rb-small", title: "Combine with more rules",
          onclick: () => { this.doc = { all: [this.doc] }; this.changed(); } }, "+ and…"));
      }
      return el("span", { class: "rb-controls" }, buttons);
    }

    row(content, slot, path, entity) {
      return el("div", { class: "rb-row", "data-path": path }, el("div", { class: "rb-line" }, content, this.controls(slot, path, entity)));
    }

    booleanNode(node, slot, path, entity) {
      const kind = "all" in node ? "all" : "any";
      const children = Array.isArray(node[kind]) ? node[kind] : [];
      const box = el("div", { class: "rb-group rb-" + kind, "data-path": path });
      const header = el("div", { class: "rb-line rb-header" },
        "Match ",
        select([["all", "all"], ["any", "any"]], kind, (value) => {
          slot.set({ [value]: children });
          this.changed();
        }, { class: "rb-bool", "aria-label": "all or any" }),
        " of these rules" + (children.length ? ":" : " (none yet: " + (kind === "all" ? "everyone matches" : "nobody matches") + ")"),
        this.controls(slot, path, entity));
      box.append(header);
      const list = el("div", { class: "rb-children" });
      children.forEach((child, index) => {
        const childSlot = {
          get: () => children[index],
          set: (v) => { children[index] = v; },
          remove: () => { children.splice(index, 1); },
        };
        list.append(this.node(child, childSlot, `${path}/${kind}/${index}`, entity));
      });
      box.append(list);
      const add = (label, make, cls) => el("button", { type: "button", class: "rb-add " + (cls || ""),
        onclick: () => { children.push(make()); node[kind] = children; this.changed(); } }, label);
      const adds = [add("+ Field", () => this.fresh({ field: entity === "customer" ? "role" : "kind", op: "eq", value: "" }), "rb-add-field")];
      if (entity === "customer") {
        adds.push(add("+ Event", () => ({ event: this.cat.event_names[0] || "purchase", count: { op: "gte", value: 1 } }), "rb-add-event"));
        adds.push(add("+ Account", () => ({ account: { all: [{ field: "kind", op: "eq", value: "household" }] } }), "rb-add-account"));
        if (this.cat.groups.length) adds.push(add("+ In group", () => ({ in_group: this.cat.groups[0][0] }), "rb-add-in-group"));
      }
      adds.push(add("+ Nested all/any", () => ({ any: [] }), "rb-add-group"));
      box.append(el("div", { class: "rb-adds" }, adds));
      return box;
    }

    fresh(node) {
      this.untouched.add(node);
      return node;
    }

    notNode(node, slot, path, entity) {
      const inner = { get: () => node.not, set: (v) => { node.not = v; } };
      return el("div", { class: "rb-not", "data-path": path },
        el("div", { class: "rb-line rb-header" }, el("strong", {}, "NOT"), " — none of this holds:",
          el("span", { class: "rb-controls" },
            el("button", { type: "button", class: "rb-small", onclick: () => { slot.set(node.not); this.changed(); } }, "remove NOT"),
            slot.remove ? el("button", { type: "button", class: "rb-small rb-remove", "aria-label": "Remove",
              onclick: () => { slot.remove(); this.changed(); } }, "✕") : null)),
        el("div", { class: "rb-children" }, this.node(node.not, inner, path + "/not", entity)));
    }

    fieldLabel(name, entity) {
      const label = this.cat.labels[`${entity}:${name}`];
      return label ? `${label} (${name})` : name.replace(/_/g, " ");
    }

    fieldCondition(node, path, entity) {
      const fields = entity === "customer" ? this.cat.customer_fields : this.cat.account_fields;
      const type = fields[node.field] || (String(node.field).startsWith("attributes.") ? "json" : "text");
      const options = Object.keys(fields).map((name) => [name, this.fieldLabel(name, entity)]);
      options.push(["__other", "other attribute…"]);
      const fieldBox = select(options, node.field, (value) => {
        if (value === "__other") {
          const key = window.prompt("Attribute key (as stored on the customer):", "");
          if (!key) { this.changed(); return; }
          value = "attributes." + key.trim();
        }
        const newType = fields[value] || "json";
        node.field = value;
        this.untouched.delete(node);
        if (!(this.cat.operators[newType] || []).includes(node.op)) node.op = this.cat.operators[newType][0];
        this.fixValue(node, newType, type);
        this.changed();
      }, { class: "rb-field", "aria-label": "field" });
      const ops = (this.cat.operators[type] || []).map((op) => [op, this.cat.operator_labels[op] || op]);
      const opBox = select(ops, node.op, (value) => {
        const before = shape(node.op, type);
        node.op = value;
        this.untouched.delete(node);
        if (shape(value, type) !== before) this.fixValue(node, type, type, true);
        this.changed();
      }, { class: "rb-op", "aria-label": "operator" });
      const value = this.valueEditor(node, type, (v) => { node.value = v; this.untouched.delete(node); });
      if ((type === "text" || type === "json") && shape(node.op, type) === "text") this.suggest(value, entity, node.field);
      return [fieldBox, " ", opBox, " ", value];
    }

    // Text values are offered from the most common ones stored (fetched when the box is first used).
    suggest(input, entity, field) {
      if (!this.valuesUrl || !input || input.tagName !== "INPUT") return;
      const id = ("rb-values-" + entity + "-" + field).replace(/[^\w-]/g, "_");
      let list = document.getElementById(id);
      if (!list) {
        list = el("datalist", { id: id });
        this.root.append(list);
      }
      input.setAttribute("list", id);
      input.setAttribute("autocomplete", "off");
      input.addEventListener("focus", () => this.loadValues(list, entity, field), { once: true });
    }

    async loadValues(list, entity, field) {
      if (list.dataset.loaded) return;
      list.dataset.loaded = "1";
      const query = new URLSearchParams({ entity: entity, field: field });
      const response = await fetch(this.valuesUrl + "?" + query, { credentials: "same-origin" }).catch(() => null);
      if (!response || !response.ok) return;
      const data = await response.json();
      const noun = entity === "customer" ? "customers" : "accounts";
      list.replaceChildren(...data.values.map(([value, count]) => el("option", { value: value, label: `${value} (${count} ${noun})` })));
    }

    fixValue(node, type, oldType, force) {
      const kind = shape(node.op, type);
      if (kind === "none") { delete node.value; return; }
      if (force || type !== oldType || node.value === undefined) node.value = defaultValue(kind);
    }

    valueEditor(node, type, set) {
      const kind = shape(node.op, type);
      const value = node.value;
      const text = (attrs, current, convert) => el("input", Object.assign({
        value: current === undefined || current === null ? "" : current,
        oninput: (e) => { set(convert(e.target.value)); this.sync(); },
      }, attrs));
      switch (kind) {
        case "none": return null;
        case "list": return text({ class: "rb-value", size: 28, placeholder: "a, b, c", "aria-label": "values" },
          Array.isArray(value) ? value.join(", ") : value,
          (v) => v.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => typed(s, type)));
        case "range": {
          const pair = Array.isArray(value) ? value.slice() : [0, 0];
          return [text({ type: "number", class: "rb-value rb-num", "aria-label": "from" }, pair[0], (v) => { pair[0] = typed(v, "number"); return pair; }),
            " and ", text({ type: "number", class: "rb-value rb-num", "aria-label": "to" }, pair[1], (v) => { pair[1] = typed(v, "number"); return pair; })];
        }
        case "day-range": {
          const pair = Array.isArray(value) ? value.slice() : ["", ""];
          return [text({ type: "date", class: "rb-value", "aria-label": "from" }, pair[0], (v) => { pair[0] = v; return pair; }),
            " and ", text({ type: "date", class: "rb-value", "aria-label": "to" }, pair[1], (v) => { pair[1] = v; return pair; })];
        }
        case "duration": return this.durationEditor(value, set, node.op === "anniversary_within_next" ? ["days"]
          : type === "date" ? ["days", "weeks"] : this.cat.duration_units);
        case "day": return text({ type: "date", class: "rb-value", "aria-label": "day" }, value, (v) => v);
        case "bool": return select([["true", "true"], ["false", "false"]], String(value), (v) => { set(v === "true"); this.sync(); },
          { class: "rb-value", "aria-label": "value" });
        case "number": return text({ type: "number", step: "any", class: "rb-value rb-num", "aria-label": "value" }, value, (v) => typed(v, "number"));
        default: return text({ class: "rb-value", size: 24, "aria-label": "value" }, value, (v) => typed(v, type));
      }
    }

    durationEditor(value, set, units) {
      const current = value && typeof value === "object" ? value : { days: 30 };
      let unit = Object.keys(current)[0] || "days";
      let amount = current[unit];
      const write = () => { set({ [unit]: amount }); this.sync(); };
      return [
        el("input", { type: "number", min: 1, class: "rb-value rb-num", "aria-label": "amount", value: amount ?? "",
          oninput: (e) => { amount = typed(e.target.value, "number"); write(); } }),
        " ",
        select(units.map((u) => [u, u]), unit, (u) => { unit = u; write(); }, { "aria-label": "unit" }),
      ];
    }

    eventCondition(node, path) {
      const parts = [el("strong", {}, "Did "), el("input", { class: "rb-event-name", value: node.event, size: 14,
        list: "rb-event-names", "aria-label": "event name", oninput: (e) => { node.event = e.target.value.trim(); this.sync(); } })];
      parts.push(el("datalist", { id: "rb-event-names" }, this.cat.event_names.map((n) => el("option", { value: n }))));
      // The aggregate: count (default) or sum of a property.
      const aggregate = "sum" in node ? "sum" : "count";
      const agg = node[aggregate] || { op: "gte", value: 1 };
      parts.push(" ", select([["count", "times"], ["sum", "with a total"]], aggregate, (value) => {
        delete node.count; delete node.sum;
        node[value] = value === "sum" ? { property: "amount", op: "gte", value: 100 } : { op: "gte", value: 1 };
        this.changed();
      }, { class: "rb-aggregate", "aria-label": "count or sum" }));
      if (aggregate === "sum") {
        parts.push(" of ", el("input", { value: agg.property || "", size: 8, "aria-label": "summed property",
          oninput: (e) => { agg.property = e.target.value.trim(); node.sum = agg; this.sync(); } }));
      }
      parts.push(" ", select(this.cat.aggregate_ops.map((op) => [op, this.cat.operator_labels[op] || op]), agg.op, (value) => {
        agg.op = value;
        agg.value = value === "between" ? [0, 1] : 1;
        node[aggregate] = agg;
        this.changed();
      }, { class: "rb-op", "aria-label": "comparison" }), " ");
      parts.push(this.valueEditor({ op: agg.op, value: agg.value }, "number", (v) => { agg.value = v; node[aggregate] = agg; }));
      parts.push(" ", this.windowEditor(node));
      const where = Array.isArray(node.where) ? node.where : [];
      const list = el("div", { class: "rb-where" });
      where.forEach((condition, index) => {
        const ops = this.cat.operators.json.map((op) => [op, this.cat.operator_labels[op] || op]);
        list.append(el("div", { class: "rb-line", "data-path": `${path}/where/${index}` }, "where ",
          el("input", { value: condition.property || "", size: 12, placeholder: "property", "aria-label": "property",
            oninput: (e) => { condition.property = e.target.value.trim(); this.sync(); } }), " ",
          select(ops, condition.op, (value) => {
            condition.op = value;
            this.fixValue(condition, "json", "json", true);
            this.changed();
          }, { "aria-label": "operator" }), " ",
          this.valueEditor(condition, "json", (v) => { condition.value = v; }),
          el("button", { type: "button", class: "rb-small rb-remove", "aria-label": "Remove condition", onclick: () => {
            where.splice(index, 1);
            if (!where.length) delete node.where;
            this.changed();
          } }, "✕")));
      });
      list.append(el("button", { type: "button", class: "rb-add rb-small", onclick: () => {
        where.push({ property: "category", op: "eq", value: "" });
        node.where = where;
        this.changed();
      } }, "+ where"));
      return [el("div", { class: "rb-event" }, parts), list];
    }

    windowEditor(node) {
      const window_ = node.window || null;
      const kind = !window_ ? "ever" : "last" in window_ ? "last" : "calendar" in window_ ? "calendar" : "between";
      const parts = [select([["ever", "ever"], ["last", "in the last"], ["calendar", "in the calendar period"],
        ["between", "between"]], kind, (value) => {
        if (value === "ever") delete node.window;
        else if (value === "last") node.window = { last: { days: 30 } };
        else if (value === "calendar") node.window = { calendar: "last_month" };
        else node.window = { between: ["", ""] };
        this.changed();
      }, { class: "rb-window", "aria-label": "when" })];
      if (kind === "last") {
        parts.push(" ", this.durationEditor(window_.last, (v) => { node.window = { last: v }; }, this.cat.duration_units));
      } else if (kind === "calendar") {
        parts.push(" ", select(this.cat.calendar_windows.map((w) => [w, WINDOW_LABELS[w] || w]), window_.calendar,
          (value) => { node.window = { calendar: value }; this.sync(); }, { "aria-label": "calendar period" }));
      } else if (kind === "between") {
        parts.push(" ", this.valueEditor({ op: "between", value: window_.between }, "date", (v) => { node.window = { between: v }; }));
      }
      return el("span", { class: "rb-window-box" }, parts);
    }

    accountCondition(node, slot, path) {
      const inner = { get: () => node.account, set: (v) => { node.account = v; } };
      return el("div", { class: "rb-account", "data-path": path },
        el("div", { class: "rb-line rb-header" }, el("strong", {}, "In an account (household or business) where:"),
          this.controls(slot, path, "customer")),
        el("div", { class: "rb-children" }, this.node(node.account, inner, path + "/account", "account")));
    }

    inGroupCondition(node) {
      return [el("strong", {}, "Is a member of group "), select(this.cat.groups, node.in_group, (value) => {
        node.in_group = Number(value);
        this.sync();
      }, { class: "rb-in-group", "aria-label": "group" })];
    }

    clearErrors() {
      this.root.querySelectorAll(".rb-error").forEach((n) => n.remove());
      this.root.querySelectorAll(".rb-has-error").forEach((n) => n.classList.remove("rb-has-error"));
    }

    // Each error goes to the deepest row whose pointer starts the error's pointer, unless that row
    // was just added and not edited yet. Returns how many errors are shown.
    showErrors() {
      this.clearErrors();
      const rows = Array.from(this.root.querySelectorAll("[data-path]"));
      let shown = 0;
      for (const error of this.errors) {
        const path = error.path || "";
        let best = null;
        for (const row of rows) {
          const rowPath = row.dataset.path;
          if ((path === rowPath || path.startsWith(rowPath + "/") || rowPath === "") &&
              (!best || rowPath.length > best.dataset.path.length)) best = row;
        }
        if (!best || (best.ruleNode && this.untouched.has(best.ruleNode))) continue;
        shown += 1;
        best.classList.add("rb-has-error");
        const message = el("div", { class: "rb-error errorlist", role: "alert" }, error.message);
        const line = best.querySelector(":scope > .rb-line") || best;
        line.after(message);
      }
      return shown;
    }

    schedulePreview(delay) {
      if (!this.previewUrl) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.preview(), delay === undefined ? 500 : delay);
    }

    async preview() {
      const token = document.querySelector("input[name=csrfmiddlewaretoken]");
      const zone = document.getElementById("id_time_zone");
      this.previewBox.textContent = "Counting…";
      this.previewBox.className = "rb-preview rb-busy";
      let response;
      try {
        response = await fetch(this.previewUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
          body: JSON.stringify({ rules: this.doc, group_id: this.groupId, time_zone: zone ? zone.value : "" }),
          credentials: "same-origin",
        });
      } catch (e) {
        this.previewBox.textContent = "Preview unavailable: " + e;
        return;
      }
      const data = await response.json().catch(() => ({}));
      if (response.status === 400 && data.errors) {
        this.errors = data.errors;
        const n = this.showErrors();
        if (!n) {
          this.previewBox.textContent = "Fill in the new rule to see who matches.";
          this.previewBox.className = "rb-preview";
          return;
        }
        this.previewBox.textContent = `${n} problem${n === 1 ? "" : "s"} to fix (marked below) before these rules can be saved.`;
        this.previewBox.className = "rb-preview rb-bad";
        return;
      }
      if (!response.ok) {
        this.previewBox.textContent = "Preview failed (" + response.status + ").";
        this.previewBox.className = "rb-preview rb-bad";
        return;
      }
      const parts = [el("strong", { class: "rb-count" }, String(data.count)),
        ` customer${data.count === 1 ? "" : "s"} match these rules now.`];
      const who = (c) => [c.first_name, c.last_name].filter(Boolean).join(" ") || c.email || c.external_id || `#${c.id}`;
      const lists = [];
      if (data.would_enter !== null && data.would_enter !== undefined) {
        parts.push(" On saving, ", el("strong", { class: "rb-enter" }, String(data.would_enter)), " would enter and ",
          el("strong", { class: "rb-leave" }, String(data.would_leave)), " would leave the group.");
        // Who, by name: the first of each side, and the full list in a tab of its own.
        for (const [side, label, total, people, url] of [
          ["entering", "Would enter", data.would_enter, data.entering, data.entering_url],
          ["leaving", "Would leave", data.would_leave, data.leaving, data.leaving_url]]) {
          if (!total) continue;
          lists.push(el("div", { class: "rb-changes rb-" + side },
            el("strong", {}, label + ": "), people.map(who).join(", "), total > people.length ? ", …" : "",
            " ", el("a", { href: url, target: "_blank", rel: "noopener", class: "rb-all-" + side },
              `see all ${total}`)));
        }
      }
      const sample = (data.sample || []).slice(0, 5).map(who);
      if (sample.length) {
        parts.push(el("span", { class: "rb-sample" }, ` For example: ${sample.join(", ")}${data.count > sample.length ? "…" : "."}`));
      }
      parts.push(...lists);
      this.previewBox.replaceChildren(...parts);
      this.previewBox.className = "rb-preview rb-ok";
    }
  }

  function start() {
    document.querySelectorAll(".rule-builder").forEach((root) => {
      if (!root.dataset.started) {
        root.dataset.started = "1";
        root.builder = new Builder(root);
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
