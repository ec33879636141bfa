/* The sandbox console: a Slack-like view of the emulated workspace.
 *
 * It reads the workspace state from /api/state, follows changes over Server-Sent Events
 * (/api/events), and sends slash commands and button clicks through /api/command and /api/click,
 * which the Slack emulator delivers to the bot exactly as Slack would. The app's Home tab
 * (/api/home, buttons through /api/view_click) and the forms it opens (modals: /api/submit,
 * /api/close_view) are drawn from the same state, for the person chosen in the switcher.
 */
"use strict";

const EMOJI = {
  "+1": "👍", "-1": "👎", arrow_right: "➡️", arrows_counterclockwise: "🔄", bell: "🔔", bird: "🐦",
  boom: "💥", calendar: "📆", chart_with_downwards_trend: "📉", chart_with_upwards_trend: "📈",
  bar_chart: "📊", clock1: "🕐", closed_lock_with_key: "🔐", construction: "🚧", eyes: "👀", fire: "🔥",
  gear: "⚙️", hammer_and_wrench: "🛠️", hatched_chick: "🐥", hatching_chick: "🐣", heavy_check_mark: "✔️",
  heavy_minus_sign: "➖", hourglass: "⌛", hourglass_flowing_sand: "⏳", information_source: "ℹ️",
  key: "🔑", large_blue_circle: "🔵", large_green_circle: "🟢", large_yellow_circle: "🟡",
  leftwards_arrow_with_hook: "↩️", link: "🔗", lock: "🔒", mag: "🔍", memo: "📝", no_entry: "⛔",
  no_entry_sign: "🚫", ok: "🆗", package: "📦", page_facing_up: "📄", pause_button: "⏸️",
  raised_hand: "✋", red_circle: "🔴", repeat: "🔁", rewind: "⏪", robot_face: "🤖", rocket: "🚀",
  rotating_light: "🚨", scroll: "📜", shield: "🛡️", sparkles: "✨", stop_button: "⏹️",
  stopwatch: "⏱️", tada: "🎉", thumbsup: "👍", thumbsdown: "👎", warning: "⚠️", white_check_mark: "✅",
  white_circle: "⚪", x: "❌", zap: "⚡", wave: "👋", hugging_face: "🤗", traffic_light: "🚥",
  vertical_traffic_light: "🚦", satellite: "📡", spiral_calendar_pad: "🗓️", alarm_clock: "⏰",
  heavy_plus_sign: "➕", small_red_triangle_down: "🔻", small_red_triangle: "🔺", question: "❓",
  grey_question: "❔", heavy_exclamation_mark: "❗", exclamation: "❗", ballot_box_with_check: "☑️",
};
const EYE = '<svg width="14" height="14" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" '
  + 'd="M12 5C6.5 5 2.7 9.1 1.5 12c1.2 2.9 5 7 10.5 7s9.3-4.1 10.5-7C21.3 9.1 17.5 5 12 5zm0 11.5a4.5 4.5 0 1 1 '
  + '0-9 4.5 4.5 0 0 1 0 9zm0-7a2.5 2.5 0 1 0 0 5 2.5 2.5 0 0 0 0-5z"/></svg>';
const AVATAR_COLORS = ["#e8912d", "#2bac76", "#4a154b", "#1264a3", "#e01e5a", "#36c5f0"];
const $ = (id) => document.getElementById(id);

const app = {
  config: null,
  state: null,
  user: localStorage.getItem("hello-console-user") || "U1",
  channel: "C1",
  pane: "channel", // or "home": the app's Home tab
  homeAsked: "", // the person for whom the Home was last opened (app_home_opened sent)
  modalKey: "", // what the form on screen shows (view id, hash, errors), to redraw only on a change
  history: [],
  historyAt: -1,
  refreshTimer: null,
  refreshing: false,
  refreshAgain: false,
};

/* ------------------------------------------------------------------ helpers */
function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}
function decodeEntities(text) {
  return String(text ?? "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}
function userName(id) {
  const u = (app.config?.users || []).find((x) => x.id === id);
  return u ? u.name : id;
}
function channelName(id) {
  const c = (app.config?.channels || []).find((x) => x.id === id);
  return c ? c.name : id;
}
// Where no colour emoji font is installed (minimal Linux systems), the shortcodes the bot uses are
// drawn as small badges from common symbols instead of empty boxes.
const BADGES = {
  white_check_mark: ["✔", "ok"], heavy_check_mark: ["✔", "ok-plain"], ballot_box_with_check: ["✔", "ok"],
  x: ["✖", "bad-plain"], no_entry: ["━", "bad"], no_entry_sign: ["⊘", "bad-plain"], warning: ["⚠", "warn-plain"],
  rotating_light: ["●", "bad-plain"], red_circle: ["●", "bad-plain"], large_green_circle: ["●", "ok-plain"],
  large_yellow_circle: ["●", "warn-plain"], hourglass: ["⧗", "info"], hourglass_flowing_sand: ["⧗", "info"],
  rocket: ["↑", "info"], rewind: ["«", "info"], raised_hand: ["✋", "warn-plain"], hatching_chick: ["●", "chick"],
  hatched_chick: ["●", "chick"], memo: ["✎", "info"], lock: ["⚿", "info"], calendar: ["▦", "info"],
  chart_with_downwards_trend: ["↘", "bad-plain"], chart_with_upwards_trend: ["↗", "ok-plain"],
  tada: ["★", "warn-plain"], information_source: ["i", "info"], arrows_counterclockwise: ["↻", "info"],
  leftwards_arrow_with_hook: ["↩", "info"], stopwatch: ["◷", "info"], gear: ["⚙", "info"],
};
const colourEmoji = (() => {
  try {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 20;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.textBaseline = "top";
    ctx.font = "16px sans-serif";
    ctx.fillStyle = "#000";
    ctx.fillText("\u{1F680}", 0, 0);
    const data = ctx.getImageData(0, 0, 20, 20).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0 && (Math.abs(data[i] - data[i + 1]) > 20 || Math.abs(data[i + 1] - data[i + 2]) > 20)) {
        return true;
      }
    }
  } catch (err) { /* no canvas: assume a normal desktop browser */ return true; }
  return false;
})();
function emoji(name) {
  if (!EMOJI[name]) return null;
  const title = `title=":${escapeHtml(name)}:"`;
  if (!colourEmoji && BADGES[name]) {
    const [glyph, kind] = BADGES[name];
    return `<span class="emoji badge ${kind}" ${title}>${glyph}</span>`;
  }
  return `<span class="emoji" ${title}>${EMOJI[name]}</span>`;
}
function emojify(html) {
  return html.replace(/:([a-z0-9_+-]+):/g, (m, name) => emoji(name) || m);
}
function formatTime(ts) {
  const d = new Date(parseFloat(ts) * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
function avatarColor(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return AVATAR_COLORS[h % AVATAR_COLORS.length];
}
function safeUrl(url) {
  return /^(https?:|mailto:|\/)/i.test(url) ? url : "#";
}

/* ------------------------------------------------------------------ mrkdwn */
function inline(text) {
  // text is Slack-escaped (&lt; &gt; &amp;); <...> are links and mentions.
  const out = [];
  const re = /<([^<>]+)>/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    out.push(styled(text.slice(last, m.index)));
    out.push(special(m[1]));
    last = re.lastIndex;
  }
  out.push(styled(text.slice(last)));
  return out.join("");
}
function special(inner) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return `<span class="mention">@${escapeHtml(label || userName(id))}</span>`;
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    return `<span class="mention">#${escapeHtml(label || channelName(id))}</span>`;
  }
  if (target.startsWith("!subteam^")) {
    const id = target.slice(9);
    return `<span class="mention">@${escapeHtml(label || id)}</span>`;
  }
  if (target.startsWith("!")) {
    return `<span class="mention">@${escapeHtml(label || target.slice(1))}</span>`;
  }
  if (!/^(https?:|mailto:)/i.test(target)) return styled(`<${inner}>`.replace(/</g, "&lt;").replace(/>/g, "&gt;"));
  const url = decodeEntities(target);
  const shown = label ? styled(label) : escapeHtml(url);
  return `<a href="${escapeHtml(safeUrl(url))}" target="_blank" rel="noopener noreferrer">${shown}</a>`;
}
function styled(text) {
  let html = escapeHtml(decodeEntities(text));
  html = html.replace(/(^|[\s(>])\*([^*\n]+?)\*(?=$|[\s).,:;!?<])/g, "$1<strong>$2</strong>");
  html = html.replace(/(^|[\s(>])_([^_\n]+?)_(?=$|[\s).,:;!?<])/g, "$1<em>$2</em>");
  html = html.replace(/(^|[\s(>])~([^~\n]+?)~(?=$|[\s).,:;!?<])/g, "$1<del>$2</del>");
  return emojify(html);
}
function mrkdwn(text) {
  // Code blocks and inline code are kept apart first so nothing inside them is formatted.
  const parts = String(text ?? "").split(/(```[\s\S]*?```|`[^`]+`)/g);
  const html = parts.map((part) => {
    if (part.startsWith("```") && part.endsWith("```") && part.length >= 6) {
      return `<pre>${escapeHtml(decodeEntities(part.slice(3, -3).replace(/^\n/, "")))}</pre>`;
    }
    if (part.startsWith("`") && part.endsWith("`") && part.length >= 2) {
      return `<code>${escapeHtml(decodeEntities(part.slice(1, -1)))}</code>`;
    }
    return inline(part);
  }).join("");
  // Quotes (&gt; at line start) and line breaks.
  return html.split("\n").map((line) => line.startsWith("&gt; ")
    ? `<blockquote>${line.slice(5)}</blockquote>` : line).join("<br>").replace(/<\/blockquote><br>/g, "</blockquote>")
    .replace(/<br>(<pre>)/g, "$1").replace(/(<\/pre>)<br>/g, "$1");
}
function textObject(obj) {
  if (!obj) return "";
  if (obj.type === "mrkdwn") return mrkdwn(obj.text);
  return obj.emoji === false ? escapeHtml(obj.text) : emojify(escapeHtml(obj.text));
}

/* ------------------------------------------------------------------ Block Kit */
function imageUrl(el) {
  if (el.image_url) return safeUrl(el.image_url);
  const file = el.slack_file || {};
  if (file.id) return `/files/${encodeURIComponent(file.id)}/image`;
  if (file.url) return fileUrl(file.url);
  return "";
}
function fileUrl(url) {
  const m = /\/files-pri\/([^/]+)\/([^/?]+)/.exec(url || "");
  return m ? `/files/${m[1]}/${m[2]}` : safeUrl(url);
}
function button(el, msg, blockId) {
  const style = el.style === "primary" ? "primary" : el.style === "danger" ? "danger" : "";
  const label = textObject(el.text);
  if (el.url) {
    return `<a class="btn ${style}" href="${escapeHtml(safeUrl(el.url))}" target="_blank" rel="noopener noreferrer"`
      + ` data-action-id="${escapeHtml(el.action_id || "")}">${label}<span class="ext">↗</span></a>`;
  }
  const confirm = el.confirm ? escapeHtml(JSON.stringify(el.confirm)) : "";
  // In a message a button names the message (data-ts); in a Home tab or a modal, the view.
  const where = msg.view_id ? `data-view-id="${escapeHtml(msg.view_id)}"` : `data-ts="${escapeHtml(msg.ts)}"`;
  return `<button class="btn ${style}" type="button" data-action-id="${escapeHtml(el.action_id || "")}"`
    + ` data-block-id="${escapeHtml(blockId || "")}" data-value="${escapeHtml(el.value ?? "")}"`
    + ` ${where} data-confirm="${confirm}">${label}</button>`;
}
function select(el, msg, blockId) {
  // A select in a message or Home: choosing an option sends it, as Slack does (no submit button).
  const where = msg.view_id ? `data-view-id="${escapeHtml(msg.view_id)}"` : `data-ts="${escapeHtml(msg.ts)}"`;
  const options = (el.options || []).concat(...(el.option_groups || []).map((g) => g.options || []));
  return `<select class="msg-select" data-action-id="${escapeHtml(el.action_id || "")}"`
    + ` data-block-id="${escapeHtml(blockId || "")}" ${where}>`
    + `<option value="">${escapeHtml(el.placeholder?.text || "Select an item")}</option>`
    + options.map((o) => `<option value="${escapeHtml(o.value)}">${escapeHtml(o.text?.text)}</option>`).join("")
    + `</select>`;
}
function element(el, msg, blockId) {
  if (!el) return "";
  if (el.type === "button") return button(el, msg, blockId);
  if (el.type === "static_select") return select(el, msg, blockId);
  if (el.type === "image") {
    return `<img class="accessory-img" src="${escapeHtml(imageUrl(el))}" alt="${escapeHtml(el.alt_text || "")}">`;
  }
  if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${textObject(el)}</span>`;
  return `<span class="unknown-block">[${escapeHtml(el.type)}]</span>`;
}
function block(b, msg) {
  switch (b.type) {
    case "header":
      return `<div class="block b-header">${textObject(b.text)}</div>`;
    case "section": {
      const text = b.text ? `<div class="text">${textObject(b.text)}</div>` : "";
      const fields = b.fields
        ? `<div class="b-fields">${b.fields.map((f) => `<div>${textObject(f)}</div>`).join("")}</div>` : "";
      const acc = b.accessory ? `<div class="accessory">${element(b.accessory, msg, b.block_id)}</div>` : "";
      return `<div class="block b-section"><div class="s-main">${text}${fields}</div>${acc}</div>`;
    }
    case "divider":
      return `<hr class="block b-divider">`;
    case "context":
      return `<div class="block b-context">${(b.elements || []).map((e) => e.type === "image"
        ? `<img src="${escapeHtml(imageUrl(e))}" alt="${escapeHtml(e.alt_text || "")}">`
        : `<span>${textObject(e)}</span>`).join("")}</div>`;
    case "image": {
      const title = b.title ? `<div class="title">${textObject(b.title)}</div>` : "";
      return `<div class="block b-image"><figure>${title}<img src="${escapeHtml(imageUrl(b))}"`
        + ` alt="${escapeHtml(b.alt_text || "")}"></figure></div>`;
    }
    case "actions":
      return `<div class="block b-actions">${(b.elements || []).map((e) => element(e, msg, b.block_id)).join("")}</div>`;
    case "rich_text":
      return `<div class="block">${mrkdwn(plainOfRichText(b))}</div>`;
    default:
      return `<div class="block unknown-block">[${escapeHtml(b.type)} block]</div>`;
  }
}
function plainOfRichText(b) {
  const walk = (el) => (el.text !== undefined ? el.text : (el.elements || []).map(walk).join(""));
  return (b.elements || []).map(walk).join("\n");
}
function files(msg) {
  return (msg.files || []).map((f) => {
    const url = fileUrl(f.url_private);
    const title = `<div class="title">${escapeHtml(f.title || f.name)}</div>`;
    if ((f.mimetype || "").startsWith("image/")) {
      return `<div class="file">${title}<a href="${escapeHtml(url)}" target="_blank" rel="noopener">`
        + `<img src="${escapeHtml(url)}" alt="${escapeHtml(f.title || f.name)}" data-file-id="${escapeHtml(f.id)}"></a></div>`;
    }
    return `<div class="file">${title}<a class="download" href="${escapeHtml(url)}" target="_blank">Download</a></div>`;
  }).join("");
}

/* ------------------------------------------------------------------ messages */
function messageHtml(msg, { ephemeral = false, reply = false, thread = "" } = {}) {
  const isBot = Boolean(msg.bot_id) || ephemeral;
  const author = isBot ? "hello" : userName(msg.user);
  const avatar = isBot
    ? `<div class="avatar bot">h</div>`
    : `<div class="avatar" style="background:${avatarColor(msg.user || "?")}">${escapeHtml(author[0] || "?").toUpperCase()}</div>`;
  const badge = isBot ? `<span class="app-badge">App</span>` : "";
  const edited = msg.edited ? `<span class="edited">(edited)</span>` : "";
  const note = ephemeral ? `<div class="ephemeral-note">${EYE} Only visible to you</div>` : "";
  const content = msg.blocks && msg.blocks.length
    ? msg.blocks.map((b) => block(b, msg)).join("")
    : (msg.text ? `<div class="text">${mrkdwn(msg.text)}</div>` : "");
  const cls = ["msg", ephemeral ? "ephemeral" : "", reply ? "reply" : ""].join(" ").trim();
  return `<div class="${cls}" data-ts="${escapeHtml(msg.ts)}">${avatar}<div class="main">`
    + `${note}<div class="meta"><span class="author">${escapeHtml(author)}</span>${badge}`
    + `<span class="time" title="${escapeHtml(msg.ts)}">${formatTime(msg.ts)}</span>${edited}</div>`
    + `<div class="body">${content}${files(msg)}</div>`
    + `${thread}</div></div>`;
}

function entries() {
  const st = app.state;
  if (!st) return [];
  const messages = (st.messages?.[app.channel] || []).map((m) => ({ ...m, _eph: false }));
  const ephemerals = (st.ephemerals?.[app.channel] || [])
    .filter((e) => e.user === app.user).map((e) => ({ ...e, _eph: true }));
  const all = messages.concat(ephemerals);
  const top = all.filter((m) => !m.thread_ts || m.thread_ts === m.ts);
  const replies = {};
  for (const m of all) {
    if (m.thread_ts && m.thread_ts !== m.ts) (replies[m.thread_ts] ||= []).push(m);
  }
  top.sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
  return top.map((m) => {
    const thread = (replies[m.ts] || []).sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
    const threadHtml = thread.length
      ? `<div class="thread-label">${thread.length} ${thread.length === 1 ? "reply" : "replies"}</div>`
        + `<div class="thread">${thread.map((r) => messageHtml(r, { ephemeral: r._eph, reply: true })).join("")}</div>`
      : "";
    const html = messageHtml(m, { ephemeral: m._eph, thread: threadHtml });
    return { key: (m._eph ? "e" : "m") + m.ts, html };
  });
}

function renderChannel() {
  const box = $("messages");
  const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const list = entries();
  $("empty").hidden = list.length > 0;
  const existing = new Map();
  for (const node of Array.from(box.querySelectorAll(":scope > .entry"))) existing.set(node.dataset.key, node);
  let anchor = $("empty").nextSibling;
  for (const item of list) {
    let node = existing.get(item.key);
    if (node && node._html !== item.html) {
      node.innerHTML = item.html;
      node._html = item.html;
    }
    if (!node) {
      node = document.createElement("div");
      node.className = "entry";
      node.dataset.key = item.key;
      node.innerHTML = item.html;
      node._html = item.html;
    }
    existing.delete(item.key);
    if (node !== anchor) box.insertBefore(node, anchor);
    anchor = node.nextSibling;
  }
  for (const node of existing.values()) node.remove();
  for (const img of box.querySelectorAll("img")) {
    if (!img._watched) {
      img._watched = true;
      img.addEventListener("load", () => { if (app.stickToBottom) box.scrollTop = box.scrollHeight; });
    }
  }
  if (stick) box.scrollTop = box.scrollHeight;
  app.stickToBottom = stick;
}

/* ------------------------------------------------------------------ the Home tab */
function homeView() {
  return app.state?.views?.homes?.[app.user] || null;
}
function renderHome() {
  const box = $("home-body");
  const view = homeView();
  $("home-sub").textContent = `App Home · as ${userName(app.user)} sees it`;
  const html = view
    ? (view.blocks || []).map((b) => block(b, { view_id: view.id })).join("")
    : `<div class="home-empty">${app.homeAsked === app.user ? "Opening the app's Home…"
      : "The app has not published a Home tab for you yet."}</div>`;
  if (box._html !== html) {
    box.innerHTML = html;
    box._html = html;
  }
}

/* ------------------------------------------------------------------ forms (modals) */
function modalStack() {
  return app.state?.views?.modals?.[app.user] || [];
}
const TEXT_INPUTS = { plain_text_input: "text", email_text_input: "email", url_text_input: "url",
  number_text_input: "text" };
function inputControl(el, id, current, invalid) {
  const common = `id="${id}" data-input="${escapeHtml(el.type)}"${invalid ? ' aria-invalid="true"' : ""}`;
  const placeholder = el.placeholder?.text ? ` placeholder="${escapeHtml(el.placeholder.text)}"` : "";
  if (TEXT_INPUTS[el.type]) {
    const value = current?.value ?? el.initial_value ?? "";
    const max = el.max_length ? ` maxlength="${Number(el.max_length)}"` : "";
    if (el.multiline) return `<textarea ${common} rows="4"${placeholder}${max}>${escapeHtml(value)}</textarea>`;
    const mode = el.type === "number_text_input" ? ' inputmode="decimal"' : "";
    return `<input ${common} type="${TEXT_INPUTS[el.type]}"${mode}${placeholder}${max}`
      + ` value="${escapeHtml(value)}" autocomplete="off" spellcheck="false">`;
  }
  if (el.type === "static_select") {
    const chosen = (current?.selected_option ?? el.initial_option)?.value;
    const options = (el.options || []).concat(...(el.option_groups || []).map((g) => g.options || []));
    return `<select ${common}><option value="">${escapeHtml(el.placeholder?.text || "Select an item")}</option>`
      + options.map((o) => `<option value="${escapeHtml(o.value)}"${o.value === chosen ? " selected" : ""}>`
        + `${escapeHtml(o.text?.text)}</option>`).join("") + `</select>`;
  }
  return `<span class="unknown-block">[${escapeHtml(el.type)}]</span>`;
}
function inputBlock(b, view, index) {
  const el = b.element || {};
  const id = `modal-input-${index}`;
  const error = (view.errors || {})[b.block_id];
  const current = Object.values(view.state?.values?.[b.block_id] || {})[0];
  const optional = b.optional ? `<span class="optional">(optional)</span>` : "";
  const hint = b.hint ? `<div class="input-hint">${textObject(b.hint)}</div>` : "";
  const shown = error ? `<div class="input-error" role="alert">${escapeHtml(error)}</div>` : "";
  return `<div class="block b-input${error ? " invalid" : ""}" data-block-id="${escapeHtml(b.block_id)}">`
    + `<label class="input-label" for="${id}">${textObject(b.label)}${optional}</label>`
    + `${inputControl(el, id, current, Boolean(error))}${shown}${hint}</div>`;
}
function modalHtml(view, depth) {
  const ctx = { view_id: view.id };
  const body = (view.blocks || []).map((b, i) => (b.type === "input" ? inputBlock(b, view, i) : block(b, ctx)))
    .join("");
  const problem = view.problem
    ? `<div class="modal-problem" role="alert">We had some trouble connecting. Try again?`
      + `<div class="why">${escapeHtml(view.problem)}</div></div>` : "";
  // Cancel (and ‹ on a view pushed over another) goes back one view; × closes the whole form.
  const back = depth > 1 ? `<button type="button" class="modal-x" data-close title="Back">‹</button>` : "";
  const submit = view.submit
    ? `<button type="submit" class="btn primary" id="modal-submit">${textObject(view.submit)}</button>` : "";
  return `<form class="modal" id="modal-form" role="dialog" aria-modal="true" aria-labelledby="modal-title"`
    + ` data-view-id="${escapeHtml(view.id)}" novalidate>`
    + `<header class="modal-head">${back}<div class="modal-app avatar bot">h</div>`
    + `<div class="modal-title" id="modal-title">${textObject(view.title)}</div>`
    + `<button type="button" class="modal-x" data-close${depth > 1 ? " data-clear" : ""} title="Close"`
    + ` aria-label="Close">×</button></header>`
    + `<div class="modal-body body">${problem}${body}</div>`
    + `<footer class="modal-foot"><button type="button" class="btn" data-close>`
    + `${view.close ? textObject(view.close) : "Cancel"}</button>${submit}</footer></form>`;
}
function typedValues() {
  const values = {};
  for (const node of $("modal").querySelectorAll(".b-input[data-block-id]")) {
    const control = node.querySelector("[data-input]");
    if (control) values[node.dataset.blockId] = control.value === "" ? null : control.value;
  }
  return values;
}
function renderModal() {
  const overlay = $("modal");
  const stack = modalStack();
  const view = stack[stack.length - 1];
  if (!view) {
    overlay.hidden = true;
    overlay.innerHTML = "";
    app.modalKey = "";
    return;
  }
  const key = JSON.stringify([app.user, view.id, view.hash, view.errors, view.problem, stack.length]);
  if (key === app.modalKey) return;
  const sameView = overlay.querySelector("#modal-form")?.dataset.viewId === view.id;
  const typed = sameView ? typedValues() : {};
  const focused = sameView ? document.activeElement?.id : null;
  overlay.innerHTML = modalHtml(view, stack.length);
  app.modalKey = key;
  overlay.hidden = false;
  // What the person typed since stays (a redraw for the errors must not undo it).
  for (const node of overlay.querySelectorAll(".b-input[data-block-id]")) {
    const control = node.querySelector("[data-input]");
    if (control && node.dataset.blockId in typed) control.value = typed[node.dataset.blockId] ?? "";
  }
  const invalid = overlay.querySelector("[aria-invalid=true]");
  const target = invalid || (focused && document.getElementById(focused)) || overlay.querySelector("[data-input]");
  if (target) target.focus();
}
async function submitModal(form) {
  const submit = $("modal-submit");
  if (submit?.disabled) return;
  if (submit) submit.disabled = true;
  try {
    await fetchJson("/api/submit", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: app.user, view_id: form.dataset.viewId, values: typedValues() }),
    });
  } catch (err) {
    toast(err.message);
  } finally {
    if (submit && submit.isConnected) submit.disabled = false;
    scheduleRefresh();
  }
}
async function closeModal(form, clear = false) {
  try {
    await fetchJson("/api/close_view", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: app.user, view_id: form.dataset.viewId, clear }),
    });
  } catch (err) {
    toast(err.message);
  } finally {
    scheduleRefresh();
  }
}

function renderRateLimits() {
  // the emulator's record of the 429s it answered the app (Slack's rate limits, or a fault rule)
  const limited = app.state?.rate_limited;
  const box = $("ratelimit");
  box.hidden = !limited?.count;
  box.textContent = limited?.count ? limited.line : "";
}
function render() {
  renderChannel();
  renderHome();
  renderModal();
  renderRateLimits();
}

/* ------------------------------------------------------------------ the channel or the Home tab */
async function openHome() {
  const user = app.user;
  app.homeAsked = user;
  renderHome();
  try {
    await fetchJson("/api/home", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user }),
    });
  } catch (err) {
    toast(`The app's Home did not open: ${err.message}`);
  }
}
function showPane(pane) {
  app.pane = pane === "home" ? "home" : "channel";
  const home = app.pane === "home";
  $("home").hidden = !home;
  $("messages").hidden = home;
  $("composer-form").hidden = home;
  $("hint").hidden = home;
  $("suggest").hidden = true;
  $("tab-channel").setAttribute("aria-selected", String(!home));
  $("tab-home").setAttribute("aria-selected", String(home));
  document.body.dataset.pane = app.pane;
  renderTitle();
  if (home) {
    openHome();
  } else {
    $("composer").focus();
    renderChannel();
  }
}

/* ------------------------------------------------------------------ data */
async function fetchJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}
async function refresh() {
  if (app.refreshing) { app.refreshAgain = true; return; }
  app.refreshing = true;
  try {
    app.state = await fetchJson("/api/state");
    render();
  } catch (err) {
    toast(`Cannot read the workspace: ${err.message}`);
  } finally {
    app.refreshing = false;
    if (app.refreshAgain) { app.refreshAgain = false; scheduleRefresh(); }
  }
}
function scheduleRefresh() {
  clearTimeout(app.refreshTimer);
  app.refreshTimer = setTimeout(refresh, 40);
}
function connect() {
  const source = new EventSource("/api/events");
  source.onopen = () => { $("live").classList.add("on"); scheduleRefresh(); };
  source.onerror = () => { $("live").classList.remove("on"); };
  source.onmessage = scheduleRefresh;
  for (const type of ["message_posted", "message_updated", "message_deleted", "ephemeral_posted",
    "ephemeral_updated", "ephemeral_deleted", "file_shared", "file_uploaded", "modal_opened", "modal_pushed",
    "modal_updated", "modal_errors", "modal_closed", "home_published", "rate_limited"]) {
    source.addEventListener(type, scheduleRefresh);
  }
}

/* ------------------------------------------------------------------ actions */
let toastTimer = null;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}
async function send(text) {
  text = text.trim();
  if (!text) return;
  app.history.unshift(text);
  app.historyAt = -1;
  const body = JSON.stringify({ user: app.user, channel: app.channel, text });
  const url = text.startsWith("/") ? "/api/command" : "/api/message";
  try {
    await fetchJson(url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  } catch (err) {
    toast(err.message);
  }
}
async function click(btn) {
  if (btn.dataset.confirm) {
    const conf = JSON.parse(btn.dataset.confirm);
    const question = [conf.title?.text, conf.text?.text].filter(Boolean).join("\n\n");
    if (!window.confirm(decodeEntities(question || "Are you sure?"))) return;
  }
  btn.disabled = true;
  // A button in a message names the message; one in the Home tab or a form names the view.
  const [url, where] = btn.dataset.viewId
    ? ["/api/view_click", { view_id: btn.dataset.viewId }]
    : ["/api/click", { channel: app.channel, message_ts: btn.dataset.ts }];
  try {
    await fetchJson(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        user: app.user, ...where, action_id: btn.dataset.actionId,
        block_id: btn.dataset.blockId || null, value: btn.dataset.value || null,
      }),
    });
  } catch (err) {
    toast(err.message);
  } finally {
    btn.disabled = false;
  }
}

/* ------------------------------------------------------------------ composer */
function updateSuggest() {
  const input = $("composer");
  const box = $("suggest");
  const value = input.value;
  const cmd = app.config?.command || "/hello";
  if (value.startsWith("/") && !value.includes(" ") && cmd.startsWith(value)) {
    box.innerHTML = `<div class="item sel" data-complete="${escapeHtml(cmd)} "><span class="cmd">${escapeHtml(cmd)}</span>`
      + `<span class="usage">${escapeHtml(app.config?.usage_hint || "")}</span>`
      + `<div class="desc">hello-chatops</div></div>`;
    box.hidden = false;
  } else {
    box.hidden = true;
  }
}
function completeSuggest() {
  const item = $("suggest").querySelector(".item");
  if (!item || $("suggest").hidden) return false;
  $("composer").value = item.dataset.complete;
  $("suggest").hidden = true;
  return true;
}

function renderChrome() {
  const cfg = app.config;
  $("workspace-name").textContent = cfg.team || "hello-chatops";
  const channel = cfg.channels.find((c) => c.id === app.channel) || { name: app.channel };
  $("tab-channel-name").textContent = channel.name;
  $("composer").placeholder = `Message #${channel.name}  —  try ${cfg.command} status`;
  $("channels").innerHTML = cfg.channels.map((c) => `<li class="${c.id === app.channel ? "active" : ""}"`
    + ` data-channel="${escapeHtml(c.id)}"><span class="hash">#</span>${escapeHtml(c.name)}</li>`).join("");
  $("links").innerHTML = (cfg.links || []).map((l) => l.url
    ? `<li><a href="${escapeHtml(safeUrl(l.url))}" target="_blank" rel="noopener">${escapeHtml(l.label)}</a></li>`
    : `<li class="missing" title="${escapeHtml(l.note || "")}">${escapeHtml(l.label)}: ${escapeHtml(l.note || "off")}</li>`).join("");
  const switcher = $("user-switcher");
  switcher.innerHTML = cfg.users.map((u) => `<option value="${escapeHtml(u.id)}">`
    + `${escapeHtml(u.name)}${u.role ? " — " + escapeHtml(u.role) : ""}</option>`).join("");
  if (!cfg.users.some((u) => u.id === app.user)) app.user = cfg.users[0]?.id || "U1";
  switcher.value = app.user;
  renderTitle();
  renderMe();
}
function renderTitle() {
  // The channel's name and topic, or the app's name on its Home tab.
  const home = app.pane === "home";
  const channel = app.config.channels.find((c) => c.id === app.channel) || { name: app.channel };
  $("channel-name").textContent = home ? "hello" : channel.name;
  $("channel-title-hash").hidden = home;
  $("channel-topic").hidden = home;
  document.title = `${home ? "hello · Home" : "#" + channel.name} · hello-chatops sandbox`;
}
function renderMe() {
  const u = app.config.users.find((x) => x.id === app.user);
  $("me-role").textContent = u ? `${u.real_name} · ${u.id}` : "";
  $("hint").innerHTML = `<code>${escapeHtml(app.config.command)}</code> ${escapeHtml(app.config.usage_hint || "")}`
    + ` &nbsp;·&nbsp; posting as <strong>${escapeHtml(u ? u.name : app.user)}</strong>`
    + `${u && u.role ? " (" + escapeHtml(u.role) + ")" : ""}`;
}

function bind() {
  $("composer-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("composer");
    const text = input.value;
    input.value = "";
    $("suggest").hidden = true;
    send(text);
  });
  $("composer").addEventListener("input", updateSuggest);
  $("composer").addEventListener("keydown", (ev) => {
    const input = $("composer");
    if (ev.key === "Tab" && completeSuggest()) { ev.preventDefault(); return; }
    if (ev.key === "Enter" && !$("suggest").hidden && input.value.trim() !== (app.config.command || "/hello")
      && completeSuggest()) { ev.preventDefault(); return; }
    if (ev.key === "Escape") $("suggest").hidden = true;
    if (ev.key === "ArrowUp" && (input.value === "" || app.historyAt >= 0) && app.history.length) {
      app.historyAt = Math.min(app.historyAt + 1, app.history.length - 1);
      input.value = app.history[app.historyAt];
      ev.preventDefault();
    }
    if (ev.key === "ArrowDown" && app.historyAt >= 0) {
      app.historyAt -= 1;
      input.value = app.historyAt >= 0 ? app.history[app.historyAt] : "";
      ev.preventDefault();
    }
  });
  $("suggest").addEventListener("mousedown", (ev) => {
    ev.preventDefault();
    completeSuggest();
    $("composer").focus();
  });
  for (const id of ["messages", "home-body", "modal"]) {
    $(id).addEventListener("click", (ev) => {
      const btn = ev.target.closest("button.btn");
      if (btn && btn.dataset.actionId) click(btn);
    });
  }
  for (const id of ["messages", "home-body"]) {
    $(id).addEventListener("change", (ev) => {
      const chosen = ev.target.closest("select.msg-select");
      if (chosen && chosen.value) {
        chosen.dataset.value = chosen.value;
        click(chosen);
      }
    });
  }
  $("modal").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitModal(ev.target.closest("form"));
  });
  $("modal").addEventListener("click", (ev) => {
    const close = ev.target.closest("[data-close]");
    if (close) closeModal($("modal-form"), "clear" in close.dataset);
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("modal").hidden && $("modal-form")) {
      ev.preventDefault();
      closeModal($("modal-form"));
    }
  });
  for (const tab of document.querySelectorAll(".tab[data-pane]")) {
    tab.addEventListener("click", () => showPane(tab.dataset.pane));
  }
  $("user-switcher").addEventListener("change", (ev) => {
    app.user = ev.target.value;
    localStorage.setItem("hello-console-user", app.user);
    renderMe();
    render();
    if (app.pane === "home") openHome();
  });
  $("channels").addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-channel]");
    if (!li) return;
    app.channel = li.dataset.channel;
    renderChrome();
    showPane("channel");
  });
}

async function main() {
  bind();
  try {
    app.config = await fetchJson("/api/config");
  } catch (err) {
    toast(`The sandbox is not answering: ${err.message}`);
    return;
  }
  app.channel = app.config.channel || app.channel;
  renderChrome();
  await refresh();
  connect();
  $("composer").focus();
  document.body.dataset.ready = "true";
}

main();
