// The segment builder: condition rows drawn from a catalog the server embeds (fields, operators,
// stores, tags, ...), serialised into the rule JSON of docs/segment-rules.md in the hidden
// #rule-input. Every change fires "rule-change" on the preview, which htmx posts (debounced).
// The server does all validation; a refusal names a path (all.2.orders.count) and the row at
// that path is highlighted. Rules the form cannot draw stay editable in the JSON tab.
(function () {
  "use strict";

  var root = document.getElementById("segment-builder");
  if (!root) return;
  var catalog = JSON.parse(document.getElementById("builder-catalog").textContent);
  var L = catalog.labels;
  var ruleInput = document.getElementById("rule-input");
  var rowsEl = root.querySelector("[data-rows]");
  var topMatch = root.querySelector("[data-top-match]");
  var jsonArea = document.getElementById("rule-json");
  var jsonMessage = document.querySelector("[data-json-message]");
  var preview = document.getElementById("segment-preview");
  var mode = "form";

  // --- small DOM helpers ------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function select(options, value, label, multiple) {
    var node = el("select", { "aria-label": label });
    if (multiple) node.multiple = true;
    options.forEach(function (pair) {
      var option = el("option", { value: String(pair[0]), text: pair[1] });
      var values = Array.isArray(value) ? value.map(String) : [String(value)];
      if (value !== undefined && value !== null && values.indexOf(String(pair[0])) >= 0) option.selected = true;
      node.appendChild(option);
    });
    return node;
  }

  function input(type, value, label, attrs) {
    var node = el("input", Object.assign({ type: type, "aria-label": label }, attrs || {}));
    if (value !== undefined && value !== null) node.value = String(value);
    return node;
  }

  function selected(node) {
    return Array.prototype.filter.call(node.options, function (o) { return o.selected; })
      .map(function (o) { return o.value; });
  }

  // A number when the text is one; otherwise the text itself, so the server names the problem.
  function num(text) {
    var t = String(text).trim();
    if (t === "") return null;
    var n = Number(t);
    return isNaN(n) ? t : n;
  }

  function list(text) {
    return String(text).split(/[,，]/).map(function (s) { return s.trim(); })
      .filter(function (s) { return s !== ""; });
  }

  function only(obj, keys) {
    Object.keys(obj).forEach(function (key) {
      if (keys.indexOf(key) < 0) throw new Error("unsupported key " + key);
    });
  }

  function oneOp(spec) {
    if (!spec || typeof spec !== "object" || Object.keys(spec).length !== 1) throw new Error("one operator");
    var op = Object.keys(spec)[0];
    return [op, spec[op]];
  }

  function field(name) {
    return catalog.fields.filter(function (f) { return f.name === name; })[0];
  }

  // --- condition bodies: each returns {node, read} ----------------------------------------

  function fieldBody(init) {
    if (init.field !== undefined) only(init, ["field", "op", "value"]);
    var spec0 = field(init.field || catalog.fields[0].name);
    if (!spec0) throw new Error("unknown field");
    var wrap = el("span", { class: "cond-body" });
    var fieldSel = select(catalog.fields.map(function (f) { return [f.name, f.label]; }), spec0.name, L.field);
    var opBox = el("span"), valueBox = el("span");
    var opSel, readValue;
    wrap.append(fieldSel, opBox, valueBox);

    function refs(kind) { return kind === "store" ? catalog.stores : kind === "staff" ? catalog.staff : null; }

    function drawValue(value) {
      valueBox.textContent = "";
      var spec = field(fieldSel.value), op = opSel.value, options = refs(spec.kind) || spec.choices;
      var node;
      if (op === "is_set") {
        node = select([["true", L.yes], ["false", L.no]], value === false ? "false" : "true", L.yes);
        readValue = function () { return node.value === "true"; };
      } else if (spec.kind === "date-time" && (op === "within_days" || op === "older_than_days")) {
        node = input("number", value, L.days, { min: "1", class: "narrow" });
        valueBox.append(node, el("span", { class: "muted", text: L.days }));
        readValue = function () { return num(node.value); };
        return;
      } else if (spec.kind === "date-time") {
        node = input("date", typeof value === "string" ? value.slice(0, 10) : "", spec.label);
        readValue = function () { return node.value ? node.value + "T00:00:00" + catalog.tz_offset : ""; };
      } else if (op === "in" || op === "not_in") {
        if (options.length) {
          node = select(options, value || [], spec.label, true);
          readValue = function () {
            return selected(node).map(function (v) { return spec.kind === "choice" ? v : num(v); });
          };
        } else {
          node = input("text", Array.isArray(value) ? value.join(", ") : value, spec.label, { placeholder: L.comma });
          readValue = function () {
            return list(node.value).map(function (v) { return spec.kind === "month" ? num(v) : v; });
          };
        }
      } else if (options.length) {
        node = select(options, value, spec.label);
        readValue = function () { return spec.kind === "choice" ? node.value : num(node.value); };
      } else if (spec.kind === "month") {
        node = input("number", value, spec.label, { min: "1", max: "12", class: "narrow" });
        readValue = function () { return num(node.value); };
      } else {
        node = input("text", value, spec.label);
        readValue = function () { return node.value; };
      }
      valueBox.appendChild(node);
    }

    function drawOps(op, value) {
      var spec = field(fieldSel.value);
      opBox.textContent = "";
      opSel = select(spec.ops, op || spec.ops[0][0], L.op);
      opBox.appendChild(opSel);
      opSel.addEventListener("change", function () { drawValue(); });
      drawValue(value);
    }

    fieldSel.addEventListener("change", function () { drawOps(); });
    if (init.op !== undefined && !spec0.ops.some(function (o) { return o[0] === init.op; })) throw new Error("op");
    drawOps(init.op, init.value);
    return {
      node: wrap,
      read: function () { return { field: fieldSel.value, op: opSel.value, value: readValue() }; },
    };
  }

  function identityBody(init) {
    if (init !== undefined && !catalog.identities.some(function (k) { return k[0] === init; })) throw new Error("kind");
    var node = select(catalog.identities, init, L.value);
    return { node: el("span", { class: "cond-body" }, [node]), read: function () { return node.value; } };
  }

  function consentBody(init) {
    init = init || {};
    only(init, ["channel", "status"]);
    var channel = select(catalog.consent_channels, init.channel, L.channel);
    var status = select(catalog.consent_statuses, init.status, L.status);
    return {
      node: el("span", { class: "cond-body" }, [channel, status]),
      read: function () { return { channel: channel.value, status: status.value }; },
    };
  }

  function tagBody(init) {
    if (!catalog.tags.length) {
      return { node: el("span", { class: "cond-body muted", text: L.no_tags }), read: function () { return null; } };
    }
    var node = select(catalog.tags, init, L.value);
    return { node: el("span", { class: "cond-body" }, [node]), read: function () { return num(node.value); } };
  }

  function ordersBody(init) {
    init = init || {};
    var metrics = ["count", "sum", "avg", "last_at", "first_at"];
    only(init, metrics.concat(["window_days", "channel", "store", "category"]));
    var present = metrics.filter(function (m) { return m in init; });
    if (present.length > 1) throw new Error("one metric per row");
    ["channel", "store", "category"].forEach(function (k) { if (Array.isArray(init[k])) throw new Error("list"); });
    var metric = present[0] || "any", op = null, value = null;
    if (present.length) { var pair = oneOp(init[metric]); op = pair[0]; value = pair[1]; }
    var metricSel = select(catalog.order_metrics, metric, L.metric);
    var opBox = el("span"), opSel = null, valueIn = null;
    var windowIn = input("number", init.window_days, L.window, { min: "1", class: "narrow", placeholder: L.window });
    var channelSel = select([["", L.any_channel]].concat(catalog.order_channels), init.channel || "", L.any_channel);
    var storeSel = select([["", L.any_store]].concat(catalog.stores), init.store || "", L.any_store);
    var categoryIn = input("text", init.category, L.category, { placeholder: L.category, class: "narrow" });

    function drawOp(o, v) {
      opBox.textContent = "";
      opSel = valueIn = null;
      var m = metricSel.value;
      if (m === "any") return;
      var ops = m === "last_at" || m === "first_at" ? catalog.time_ops : catalog.number_ops;
      if (o && !ops.some(function (p) { return p[0] === o; })) throw new Error("op");
      opSel = select(ops, o || ops[0][0], L.op);
      valueIn = input("number", v, L.value, { min: "0", step: "any", class: "narrow" });
      opBox.append(opSel, valueIn);
    }
    metricSel.addEventListener("change", function () { drawOp(); });
    drawOp(op, value);
    var node = el("span", { class: "cond-body" }, [
      metricSel, opBox, el("span", { class: "muted", text: L.window }), windowIn,
      el("span", { class: "muted", text: L.days }), channelSel, storeSel, categoryIn,
    ]);
    return {
      node: node,
      read: function () {
        var spec = {};
        if (opSel) { spec[metricSel.value] = {}; spec[metricSel.value][opSel.value] = num(valueIn.value); }
        if (windowIn.value !== "") spec.window_days = num(windowIn.value);
        if (channelSel.value) spec.channel = channelSel.value;
        if (storeSel.value) spec.store = num(storeSel.value);
        if (categoryIn.value.trim()) spec.category = categoryIn.value.trim();
        return spec;
      },
    };
  }

  function eventBody(init) {
    init = init || {};
    only(init, ["type", "window_days", "min_count", "max_count"]);
    var typeSel = select(catalog.event_types, init.type, L.event);
    var windowIn = input("number", init.window_days, L.window, { min: "1", class: "narrow", placeholder: L.window });
    var minIn = input("number", init.min_count, L.min_count, { min: "0", class: "narrow" });
    var maxIn = input("number", init.max_count, L.max_count, { min: "0", class: "narrow" });
    return {
      node: el("span", { class: "cond-body" }, [
        typeSel, el("span", { class: "muted", text: L.window }), windowIn, el("span", { class: "muted", text: L.days }),
        el("span", { class: "muted", text: L.min_count }), minIn, el("span", { class: "muted", text: L.max_count }), maxIn,
      ]),
      read: function () {
        var spec = { type: typeSel.value };
        if (windowIn.value !== "") spec.window_days = num(windowIn.value);
        if (minIn.value !== "") spec.min_count = num(minIn.value);
        if (maxIn.value !== "") spec.max_count = num(maxIn.value);
        return spec;
      },
    };
  }

  function scoreBody(init) {
    init = init || { clv: { gte: "" } };
    if (Object.keys(init).length !== 1) throw new Error("one score per row");
    var key = Object.keys(init)[0];
    if (!catalog.score_keys.some(function (k) { return k[0] === key; })) throw new Error("score key");
    var keySel = select(catalog.score_keys, key, L.metric);
    var box = el("span"), read;
    function draw(value) {
      box.textContent = "";
      if (keySel.value === "churn_band") {
        var bands = select(catalog.churn_bands, value || [], L.value, true);
        box.appendChild(bands);
        read = function () { return selected(bands); };
      } else {
        var pair = value ? oneOp(value) : ["gte", ""];
        var opSel = select(catalog.number_ops, pair[0], L.op);
        var valueIn = input("number", pair[1], L.value, { min: "0", step: "any", class: "narrow" });
        box.append(opSel, valueIn);
        read = function () { var o = {}; o[opSel.value] = num(valueIn.value); return o; };
      }
    }
    keySel.addEventListener("change", function () { draw(); });
    draw(init[key]);
    return {
      node: el("span", { class: "cond-body" }, [keySel, box]),
      read: function () { var o = {}; o[keySel.value] = read(); return o; },
    };
  }

  var BODIES = {
    field: fieldBody, has_identity: identityBody, consent: consentBody, tag: tagBody,
    orders: ordersBody, event: eventBody, score: scoreBody,
  };

  function typeOf(cond) {
    if (cond && typeof cond === "object" && "field" in cond) return "field";
    var keys = cond && typeof cond === "object" ? Object.keys(cond) : [];
    if (keys.length === 1 && BODIES[keys[0]]) return keys[0];
    throw new Error("not a condition");
  }

  // --- rows and groups --------------------------------------------------------------------

  function conditionRow(cond) {
    var excluded = false;
    if (cond && "not" in cond && Object.keys(cond).length === 1) { excluded = true; cond = cond.not; }
    var type = cond ? typeOf(cond) : "field";
    var row = el("div", { class: "cond", "data-testid": "condition" });
    var typeSel = select(catalog.types, type, L.type);
    typeSel.classList.add("cond-type");
    var body = BODIES[type](cond ? (type === "field" ? cond : cond[type]) : {});
    var notBox = input("checkbox", null, L.exclude);
    notBox.checked = excluded;
    var remove = el("button", { type: "button", class: "btn btn-small cond-remove", title: L.remove, "aria-label": L.remove, text: "×" });
    row.append(typeSel, body.node, el("label", { class: "cond-not" }, [notBox, document.createTextNode(L.exclude)]), remove);
    typeSel.addEventListener("change", function () {
      var fresh = BODIES[typeSel.value](typeSel.value === "field" ? {} : undefined);
      row.replaceChild(fresh.node, body.node);
      body = fresh;
      changed();
    });
    remove.addEventListener("click", function () { row.remove(); changed(); });
    row._read = function () {
      var inner = typeSel.value === "field" ? body.read() : {};
      if (typeSel.value !== "field") inner[typeSel.value] = body.read();
      return notBox.checked ? { not: inner } : inner;
    };
    return row;
  }

  function groupRow(match, items) {
    var box = el("div", { class: "cond-group", "data-testid": "condition-group" });
    var matchSel = select([["all", L.all], ["any", L.any]], match, L.group);
    var inner = el("div", { class: "cond-list" });
    var add = el("button", { type: "button", class: "btn btn-small", text: "+ " + L.add });
    var remove = el("button", { type: "button", class: "btn btn-small cond-remove", title: L.remove, "aria-label": L.remove, text: "×" });
    box.append(el("div", { class: "cond-group-head" }, [el("span", { class: "muted", text: L.group }), matchSel, remove]), inner, add);
    (items || [null]).forEach(function (cond) { inner.appendChild(conditionRow(cond)); });
    add.addEventListener("click", function () { inner.appendChild(conditionRow(null)); changed(); });
    remove.addEventListener("click", function () { box.remove(); changed(); });
    box._read = function (path) {
      var out = {};
      out[matchSel.value] = readList(inner, path + "." + matchSel.value);
      return out;
    };
    return box;
  }

  function readList(container, path) {
    return Array.prototype.map.call(container.children, function (child, i) {
      child.dataset.path = path + "." + i;
      return child._read(child.dataset.path);
    });
  }

  function formRule() {
    if (!rowsEl.children.length) return null;
    var rule = {};
    rule[topMatch.value] = readList(rowsEl, topMatch.value);
    return rule;
  }

  // Draws ``rule`` into the form; throws (leaving the form as it was) when the form cannot
  // show it: deeper nesting, lists of channels, several metrics in one orders condition, ...
  function loadRule(rule) {
    var match = "all", items = [rule];
    if (rule && typeof rule === "object" && Object.keys(rule).length === 1 && ("all" in rule || "any" in rule)) {
      match = "all" in rule ? "all" : "any";
      items = rule[match];
      if (!Array.isArray(items)) throw new Error("group takes a list");
    }
    var built = items.map(function (item) {
      var keys = item && typeof item === "object" ? Object.keys(item) : [];
      if (keys.length === 1 && (keys[0] === "all" || keys[0] === "any")) {
        if (!Array.isArray(item[keys[0]])) throw new Error("group takes a list");
        return groupRow(keys[0], item[keys[0]]);
      }
      return conditionRow(item);
    });
    topMatch.value = match;
    rowsEl.textContent = "";
    built.forEach(function (node) { rowsEl.appendChild(node); });
  }

  // --- syncing with the hidden input and the preview -------------------------------------

  function publish(value) {
    if (ruleInput.value === value) return;
    ruleInput.value = value;
    if (window.htmx) window.htmx.trigger(preview, "rule-change");
  }

  function changed() {
    if (mode !== "form") return;
    var rule = formRule();
    publish(rule ? JSON.stringify(rule) : "");
  }

  function highlight(path) {
    root.querySelectorAll(".cond-error").forEach(function (node) { node.classList.remove("cond-error"); });
    if (!path) return;
    var best = null;
    root.querySelectorAll("[data-path]").forEach(function (node) {
      var p = node.dataset.path;
      if ((path === p || path.indexOf(p + ".") === 0) && (!best || p.length > best.dataset.path.length)) best = node;
    });
    if (best) best.classList.add("cond-error");
  }

  function showTab(name) {
    document.querySelectorAll("[data-tab]").forEach(function (tab) { tab.classList.toggle("active", tab.dataset.tab === name); });
    document.querySelectorAll("[data-pane]").forEach(function (pane) { pane.hidden = pane.dataset.pane !== name; });
    mode = name;
  }

  document.querySelectorAll("[data-tab]").forEach(function (tab) {
    tab.addEventListener("click", function () {
      jsonMessage.textContent = "";
      if (tab.dataset.tab === "json") {
        var text = ruleInput.value;
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* shown as typed */ }
        jsonArea.value = text;
        showTab("json");
        return;
      }
      var text2 = jsonArea.value.trim();
      try {
        if (text2) loadRule(JSON.parse(text2)); else rowsEl.textContent = "";
      } catch (e) {
        jsonMessage.textContent = e instanceof SyntaxError ? L.bad_json + e.message : L.too_complex;
        return;
      }
      showTab("form");
      changed();
    });
  });

  jsonArea.addEventListener("input", function () { publish(jsonArea.value.trim()); });
  root.addEventListener("input", changed);
  root.addEventListener("change", changed);
  root.querySelector("[data-add-condition]").addEventListener("click", function () {
    rowsEl.appendChild(conditionRow(null));
    changed();
  });
  root.querySelector("[data-add-group]").addEventListener("click", function () {
    rowsEl.appendChild(groupRow("any", null));
    changed();
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.target !== preview) return;
    var error = preview.querySelector("[data-error-path]");
    highlight(error ? error.dataset.errorPath : "");
  });

  // Start from the saved (or just submitted) rule: in the form when it fits, else in JSON.
  if (ruleInput.value.trim()) {
    try {
      loadRule(JSON.parse(ruleInput.value));
      readList(rowsEl, topMatch.value);  // stamps the rows' paths for a save error's highlight
    } catch (e) {
      jsonArea.value = ruleInput.value;
      showTab("json");
      jsonMessage.textContent = e instanceof SyntaxError ? L.bad_json + e.message : L.too_complex;
    }
  }
  var saved = document.querySelector("[data-testid=save-error][data-error-path]");
  if (saved) highlight(saved.dataset.errorPath);
})();
