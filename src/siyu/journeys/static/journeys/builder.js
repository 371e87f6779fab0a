// The journey builder: the definition JSON as forms — trigger, entry and goal settings, then
// one card per step — serialised back to JSON on every change into the form's hidden field.
// The server checks the whole definition; its error path (definition.steps.2...) is marked on
// the step card it names.
(function () {
  "use strict";

  const options = JSON.parse(document.getElementById("journey-options").textContent);
  let state = JSON.parse(document.getElementById("journey-definition").textContent) || {};
  const root = document.getElementById("visual-editor");
  const field = document.getElementById("definition-field");
  const jsonArea = document.getElementById("definition-json");
  let mode = "visual";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    });
    children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(String(c))));
    return node;
  }

  function select(items, value, onchange, attrs) {
    const s = el("select", Object.assign({ onchange: (e) => { onchange(e.target.value); sync(); } }, attrs || {}));
    items.forEach(([v, label]) => s.append(el("option", { value: v, selected: String(v) === String(value) }, label)));
    return s;
  }

  function input(value, onchange, attrs) {
    return el("input", Object.assign({ value: value ?? "", oninput: (e) => { onchange(e.target.value); sync(); } }, attrs || {}));
  }

  function labelled(text, control) { return el("label", {}, text, control); }
  function intOrNull(v) { return v === "" ? null : parseInt(v, 10); }
  function clean(obj) {
    Object.keys(obj).forEach((k) => (obj[k] === null || obj[k] === undefined || obj[k] === "") && delete obj[k]);
    return obj;
  }

  function stepTargets(exceptKey) {
    return [["", "（下一步）"], ["exit", "退出"], ...(state.steps || []).filter((s) => s.key !== exceptKey).map((s) => [s.key, s.key])];
  }

  function renderTrigger() {
    const t = state.trigger || (state.trigger = { type: "manual" });
    const row = el("div", { class: "form-row" });
    row.append(labelled("触发方式", select([["event", "事件"], ["schedule", "定时"], ["manual", "手动启动"]], t.type, (v) => {
      state.trigger = v === "event" ? { type: "event", event: "contact_added" } : v === "schedule" ? { type: "schedule", cron: "0 8 * * *" } : { type: "manual" };
      render();
    }, { "data-testid": "trigger-type" })));
    if (t.type === "event") {
      row.append(labelled("事件", select(options.trigger_events.map((e) => [e.value, e.label]), t.event, (v) => {
        state.trigger = { type: "event", event: v };
        render();
      }, { "data-testid": "trigger-event" })));
      if (t.event === "birthday") row.append(labelled("发送时间", input(t.at || "09:00", (v) => (t.at = v), { type: "time" })));
    }
    if (t.type === "schedule") {
      row.append(labelled("Cron（分 时 日 月 周，工作区时区）", input(t.cron, (v) => (t.cron = v), { "data-testid": "trigger-cron", placeholder: "0 8 * * *" })));
      row.append(labelled("常用", select([["", "—"], ["0 8 * * *", "每天 08:00"], ["0 21 * * *", "每天 21:00"], ["0 10 * * 2", "每周二 10:00"]], "", (v) => {
        if (v) { t.cron = v; render(); }
      })));
    }
    const needsSegment = t.type !== "event" || (t.event || "").startsWith("segment_");
    if (needsSegment) {
      row.append(labelled("人群包", select([["", t.type === "event" ? "请选择" : "全部客户"], ...options.segments.map((s) => [s.id, s.name])], t.segment_id, (v) => {
        if (v) t.segment_id = parseInt(v, 10); else delete t.segment_id;
      }, { "data-testid": "trigger-segment" })));
    }
    return row;
  }

  function renderSettings() {
    const goal = state.goal;
    const row = el("div", { class: "form-row" });
    row.append(labelled("重复进入", select([["", "默认"], ["once", "只进入一次"], ["after_exit", "退出后可再次进入"], ["always", "每次触发都进入"]], state.reentry || "", (v) => {
      if (v) state.reentry = v; else delete state.reentry;
    })));
    row.append(labelled("目标", select([["", "无"], ["order_paid", "下单"], ["event", "发生事件"]], goal ? goal.type : "", (v) => {
      state.goal = v ? { type: v, within_days: (goal && goal.within_days) || 7, ...(v === "event" ? { event: "coupon_redeem" } : {}) } : null;
      if (!v) delete state.goal;
      render();
    }, { "data-testid": "goal-type" })));
    if (goal && goal.type === "event") {
      row.append(labelled("目标事件", select(options.goal_events.map((e) => [e.value, e.label]), goal.event, (v) => (goal.event = v))));
    }
    if (goal) row.append(labelled("目标窗口（天）", input(goal.within_days, (v) => (goal.within_days = intOrNull(v)), { type: "number", min: 1, max: 365 })));
    row.append(labelled("对照组 %", input(state.holdout_percent ?? 0, (v) => (state.holdout_percent = intOrNull(v) ?? 0), { type: "number", min: 0, max: 50, "data-testid": "holdout" })));
    const caps = state.caps || {};
    row.append(labelled("每人每天上限", input(caps.daily ?? "", (v) => { state.caps = clean({ ...(state.caps || {}), daily: intOrNull(v) }); }, { type: "number", min: 0 })));
    row.append(labelled("每人每周上限", input(caps.weekly ?? "", (v) => { state.caps = clean({ ...(state.caps || {}), weekly: intOrNull(v) }); }, { type: "number", min: 0 })));
    row.append(labelled("每条消息成本（元）", input(state.cost_per_message ?? "", (v) => { if (v) state.cost_per_message = v; else delete state.cost_per_message; }, { inputmode: "decimal" })));
    const rule = el("textarea", { rows: 3, class: "mono", placeholder: '{"orders": {"count": {"gte": 1}}}',
      oninput: (e) => { try { state.entry_rule = e.target.value.trim() ? JSON.parse(e.target.value) : null; e.target.setCustomValidity(""); } catch (err) { e.target.setCustomValidity("JSON"); } if (state.entry_rule === null) delete state.entry_rule; sync(); } });
    rule.value = state.entry_rule ? JSON.stringify(state.entry_rule) : "";
    const ruleRow = el("div", { class: "form-row" }, labelled("进入条件（人群规则 JSON，可留空）", rule));
    return [row, ruleRow];
  }

  function stepFields(step) {
    const row = el("div", { class: "form-row" });
    const send = step.type === "send" || step.type === "webhook";
    if (send) {
      const hook = step.type === "webhook";
      const channels = options.channels.filter((c) => (c.kind === "webhook") === hook);
      const channel = channels.find((c) => c.id === step.channel_id);
      row.append(labelled("渠道", select([["", "请选择"], ...channels.map((c) => [c.id, `${c.name}（${c.kind}）`])], step.channel_id, (v) => { step.channel_id = intOrNull(v); render(); }, { "data-testid": "step-channel" })));
      const templates = options.templates.filter((t) => !channel || t.kind === channel.kind);
      row.append(labelled("内容模板", select([["", "请选择"], ...templates.map((t) => [t.id, t.name])], step.template_id, (v) => (step.template_id = intOrNull(v)), { "data-testid": "step-template" })));
      ["coupon", "link"].forEach((name) => {
        row.append(labelled(`{{${name}}}`, input((step.variables || {})[name], (v) => {
          step.variables = clean({ ...(step.variables || {}), [name]: v });
          if (!Object.keys(step.variables).length) delete step.variables;
        })));
      });
    } else if (step.type === "wait") {
      const byTime = !!step.until;
      row.append(labelled("等待方式", select([["duration", "等待一段时间"], ["until", "等到某个时间"]], byTime ? "until" : "duration", (v) => {
        if (v === "until") { delete step.duration; step.until = { time: "10:00" }; } else { delete step.until; step.duration = { days: 1 }; }
        render();
      })));
      if (byTime) {
        row.append(labelled("时间", input(step.until.time, (v) => (step.until.time = v), { type: "time" })));
        const days = el("span", { class: "weekdays" });
        "一二三四五六日".split("").forEach((d, i) => {
          const box = el("input", { type: "checkbox", checked: (step.until.weekdays || []).includes(i + 1), onchange: (e) => {
            const set = new Set(step.until.weekdays || []);
            if (e.target.checked) set.add(i + 1); else set.delete(i + 1);
            step.until.weekdays = [...set].sort();
            if (!step.until.weekdays.length) delete step.until.weekdays;
            sync();
          } });
          days.append(el("label", { class: "inline" }, box, "周" + d));
        });
        row.append(labelled("星期（不选为每天）", days));
      } else {
        const d = step.duration || (step.duration = { days: 1 });
        [["days", "天"], ["hours", "小时"], ["minutes", "分钟"]].forEach(([unit, label]) => {
          row.append(labelled(label, input(d[unit] ?? "", (v) => { d[unit] = intOrNull(v); clean(d); }, { type: "number", min: 0, "data-testid": `wait-${unit}` })));
        });
      }
    } else if (step.type === "branch") {
      const rule = el("textarea", { rows: 3, class: "mono", "data-testid": "branch-rule", oninput: (e) => {
        try { step.rule = JSON.parse(e.target.value); e.target.setCustomValidity(""); } catch (err) { e.target.setCustomValidity("JSON"); }
        sync();
      } });
      rule.value = JSON.stringify(step.rule || {});
      row.append(labelled("条件（人群规则 JSON）", rule));
      row.append(labelled("满足 →", select(stepTargets(step.key).slice(1), step.yes, (v) => (step.yes = v))));
      row.append(labelled("不满足 →", select(stepTargets(step.key).slice(1), step.no, (v) => (step.no = v))));
    } else if (step.type === "tag") {
      row.append(labelled("动作", select([["add", "添加标签"], ["remove", "移除标签"]], step.action, (v) => (step.action = v))));
      row.append(labelled("标签", select([["", "请选择"], ...options.tags.map((t) => [t.id, t.name])], step.tag_id, (v) => (step.tag_id = intOrNull(v)))));
    } else if (step.type === "task") {
      row.append(labelled("任务类型", select(options.task_kinds.map((k) => [k.value, k.label]), step.kind, (v) => (step.kind = v))));
      row.append(labelled("标题（可用 {{nickname}}）", input(step.title, (v) => (step.title = v), { "data-testid": "task-title" })));
      row.append(labelled("说明", input(step.note, (v) => { step.note = v; if (!v) delete step.note; })));
      row.append(labelled("几小时内完成", input(step.due_in_hours ?? 24, (v) => (step.due_in_hours = intOrNull(v)), { type: "number", min: 0 })));
    } else if (step.type === "split") {
      const arms = step.arms || (step.arms = [{ key: "a", weight: 45 }, { key: "b", weight: 45 }, { key: "holdout", weight: 10 }]);
      const box = el("div", {});
      arms.forEach((arm, i) => {
        box.append(el("div", { class: "arm-row" },
          input(arm.key, (v) => (arm.key = v), { size: 8, "aria-label": "分组" }),
          input(arm.weight, (v) => (arm.weight = intOrNull(v)), { type: "number", min: 1, max: 99, "aria-label": "%" }), "%",
          arm.key === "holdout" ? el("span", { class: "muted small" }, "对照组：不发送") :
            select(stepTargets(step.key).slice(1), arm.next || "exit", (v) => (arm.next = v)),
          el("button", { type: "button", class: "btn btn-small", onclick: () => { arms.splice(i, 1); render(); } }, "×")));
      });
      if (arms.length < 5) box.append(el("button", { type: "button", class: "btn btn-small", onclick: () => { arms.push({ key: String.fromCharCode(97 + arms.length), weight: 10 }); render(); } }, "+ 分组"));
      row.append(labelled("分组（权重合计 100）", box));
    }
    if (!["branch", "split", "exit"].includes(step.type)) {
      row.append(labelled("然后", select(stepTargets(step.key), step.next || "", (v) => { if (v) step.next = v; else delete step.next; })));
    }
    return row;
  }

  const DEFAULTS = {
    send: () => ({}), webhook: () => ({}), wait: () => ({ duration: { days: 1 } }),
    branch: () => ({ rule: { orders: { count: { gte: 1 } } }, yes: "exit", no: "exit" }),
    tag: () => ({ action: "add" }), task: () => ({ kind: "follow_up", title: "跟进 {{nickname}}", due_in_hours: 24 }),
    split: () => ({}), exit: () => ({}),
  };

  function newKey(type) {
    const used = new Set((state.steps || []).map((s) => s.key));
    let n = 1;
    while (used.has(`${type}${n}`)) n += 1;
    return `${type}${n}`;
  }

  function renderSteps() {
    const steps = state.steps || (state.steps = []);
    const list = el("div", { "data-testid": "steps" });
    steps.forEach((step, i) => {
      const card = el("div", { class: "step-card", dataset: { stepIndex: i } });
      card.append(el("div", { class: "step-head" },
        el("span", { class: "step-index" }, `${i + 1}.`),
        select(options.step_types.map((t) => [t.value, t.label]), step.type, (v) => {
          steps[i] = { key: step.key, type: v, ...DEFAULTS[v]() };
          render();
        }, { "aria-label": "步骤类型" }),
        input(step.key, (v) => (step.key = v), { size: 12, class: "mono", "aria-label": "步骤标识", "data-testid": "step-key" }),
        el("span", { class: "spacer" }),
        el("button", { type: "button", class: "btn btn-small", title: "上移", disabled: i === 0, onclick: () => { steps.splice(i - 1, 0, steps.splice(i, 1)[0]); render(); } }, "↑"),
        el("button", { type: "button", class: "btn btn-small", title: "下移", disabled: i === steps.length - 1, onclick: () => { steps.splice(i + 1, 0, steps.splice(i, 1)[0]); render(); } }, "↓"),
        el("button", { type: "button", class: "btn btn-small btn-danger", title: "删除", onclick: () => { steps.splice(i, 1); render(); } }, "删除")));
      card.append(stepFields(step));
      list.append(card);
    });
    const add = el("div", { class: "step-list-actions" }, "添加步骤：");
    options.step_types.forEach((t) => add.append(el("button", {
      type: "button", class: "btn btn-small", "data-testid": `add-${t.value}`,
      onclick: () => { steps.push({ key: newKey(t.value), type: t.value, ...DEFAULTS[t.value]() }); render(); },
    }, t.label)));
    return [list, add];
  }

  function render() {
    root.replaceChildren(
      el("section", { class: "panel" }, el("h2", {}, "触发"), renderTrigger()),
      el("section", { class: "panel" }, el("h2", {}, "进入与目标"), renderSettings()),
      el("section", { class: "panel" }, el("h2", {}, "步骤"), renderSteps()),
    );
    sync();
    markError();
  }

  function sync() {
    if (mode === "json") { field.value = jsonArea.value; return; }
    field.value = JSON.stringify(state);
    jsonArea.value = JSON.stringify(state, null, 2);
  }

  function markError() {
    const box = document.querySelector("[data-error-path]");
    const match = box && /^definition\.steps\.(\d+)/.exec(box.dataset.errorPath);
    if (!match) return;
    const card = root.querySelector(`[data-step-index="${match[1]}"]`);
    if (card) { card.classList.add("step-error"); card.scrollIntoView({ block: "center" }); }
  }

  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
    const target = tab.dataset.tab;
    if (target === mode) return;
    if (target === "visual") {
      try { state = JSON.parse(jsonArea.value); } catch (err) { jsonArea.setCustomValidity("JSON"); jsonArea.reportValidity(); return; }
    }
    mode = target;
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
    root.hidden = mode !== "visual";
    document.getElementById("json-editor").hidden = mode !== "json";
    if (mode === "visual") render(); else sync();
  }));
  jsonArea.addEventListener("input", () => { jsonArea.setCustomValidity(""); sync(); });
  document.getElementById("journey-form").addEventListener("submit", sync);
  render();
})();
