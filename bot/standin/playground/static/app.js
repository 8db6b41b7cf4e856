// The playground page: a Discord-like channel on the local stand-in. No build step.
"use strict";

const OPTION = { SUB: 1, GROUP: 2, STRING: 3, INTEGER: 4, BOOLEAN: 5, USER: 6, CHANNEL: 7,
  ROLE: 8, MENTIONABLE: 9, NUMBER: 10, ATTACHMENT: 11 };
const TYPE_NAMES = { 3: "text", 4: "integer", 5: "true/false", 6: "member", 7: "channel",
  8: "role", 9: "member or role", 10: "number", 11: "file" };
const EPHEMERAL = 1 << 6, LOADING = 1 << 7, ADMINISTRATOR = 1n << 3n;
const NO_ANSWER_MS = 3000;  // Discord's acknowledgement limit
const AUDIO = /\.(ogg|opus|mp3|wav|flac)$/i, VIDEO = /\.(mp4|webm)$/i;
const COLORS = ["#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e"];

const $ = (id) => document.getElementById(id);
const state = {
  ws: null, viewer: new URLSearchParams(location.search).get("user") || "alice",
  users: [], bot: null, commands: [], entries: [], messages: new Map(), files: new Map(),
  waiting: new Map(), ref: 0, pending: new Map(), suggestions: [], selected: 0,
  navigated: false, autocompleteRef: 0, fileFor: null, loaded: false,
};

// ---- the connection -------------------------------------------------------------------

function connect() {
  const url = `ws://${location.host}/playground/ws?user=${encodeURIComponent(state.viewer)}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => setStatus("live", true);
  ws.onclose = () => { setStatus("disconnected; retrying…", false); setTimeout(connect, 1000); };
  ws.onmessage = (event) => receive(JSON.parse(event.data));
}

function request(op) {
  const ref = ++state.ref;
  state.ws.send(JSON.stringify({ ...op, ref }));
  return new Promise((resolve) => state.waiting.set(ref, resolve));
}

function receive(frame) {
  if (frame.ref && state.waiting.has(frame.ref)) {
    state.waiting.get(frame.ref)(frame);
    state.waiting.delete(frame.ref);
  }
  const handlers = { hello, snapshot, commands: (f) => setCommands(f.commands),
    message: (f) => upsert(f.message), message_delete: (f) => removeMessage(f.id),
    interaction: interactionState };
  (handlers[frame.type] || (() => {}))(frame);
}

function hello(frame) {
  state.users = frame.users;
  state.bot = frame.bot;
  state.viewer = frame.viewer;
  renderUsers();
  setCommands(frame.commands);
}

function snapshot(frame) {
  state.viewer = frame.viewer;
  state.loaded = true;
  setCommands(state.commands);
  state.messages.clear();
  $("messages").replaceChildren();
  $("pending").replaceChildren();
  state.pending.clear();
  renderUsers();
  frame.messages.forEach(upsert);
  scrollDown(true);
}

function setStatus(text, live) {
  $("status").textContent = text;
  $("status").classList.toggle("live", live);
}

// ---- members ---------------------------------------------------------------------------

function renderUsers() {
  const buttons = state.users.map((user) => {
    const button = el("button", { type: "button", "data-user": user.name });
    button.classList.toggle("active", user.name === state.viewer);
    button.append(avatar(user.display, user.id), text(user.display));
    if (user.manage_server) button.append(el("span", { class: "tag" }, "Manage Server"));
    button.onclick = () => switchUser(user.name);
    return button;
  });
  $("users").replaceChildren(...buttons);
  $("input").placeholder = `Message #atelier as ${displayName(state.viewer)} (type / for commands)`;
}

async function switchUser(name) {
  if (name === state.viewer) return;
  history.replaceState(null, "", `?user=${encodeURIComponent(name)}`);
  await request({ op: "viewer", user: name });
}

function userById(id) { return state.users.find((u) => u.id === String(id)); }
function displayName(name) { return (state.users.find((u) => u.name === name) || {}).display || name; }

// ---- commands: flattened to "name" or "group sub" entries with their leaf options ---------

// Discord hides a command from members without its default_member_permissions.
function allowed(command) {
  const required = command.default_member_permissions;
  if (required === null || required === undefined) return true;
  const viewer = state.users.find((u) => u.name === state.viewer);
  const held = BigInt(viewer ? viewer.permissions : 0);
  return (held & ADMINISTRATOR) !== 0n || (held & BigInt(required)) === BigInt(required);
}

function setCommands(commands) {
  state.commands = commands;
  const entries = [];
  for (const command of commands.filter((c) => c.type === 1 && allowed(c))) {
    const options = command.options || [];
    const subs = options.filter((o) => o.type === OPTION.SUB || o.type === OPTION.GROUP);
    if (!subs.length) entries.push({ path: command.name, description: command.description, options });
    for (const sub of subs) {
      if (sub.type === OPTION.SUB) {
        entries.push({ path: `${command.name} ${sub.name}`, description: sub.description,
          options: sub.options || [] });
      } else {
        for (const leaf of sub.options || []) {
          entries.push({ path: `${command.name} ${sub.name} ${leaf.name}`,
            description: leaf.description, options: leaf.options || [] });
        }
      }
    }
  }
  state.entries = entries.sort((a, b) => a.path.localeCompare(b.path));
  document.body.dataset.commands = String(entries.length);
  document.body.dataset.ready = entries.length && state.loaded ? "true" : "false";
  refreshCompletions();
}

// Parse "/path opt:value opt2:\"two words\"" against the entries.
function parse(textValue) {
  if (!textValue.startsWith("/")) return null;
  const body = textValue.slice(1);
  const entry = state.entries.filter((e) => body === e.path || body.startsWith(e.path + " "))
    .sort((a, b) => b.path.length - a.path.length)[0];
  if (!entry) return { entry: null, prefix: body };
  const rest = body.slice(entry.path.length);
  const names = entry.options.map((o) => o.name).join("|");
  const marker = new RegExp(`(^|\\s)(${names || "(?!)"}):`, "g");
  const found = [];
  let match;
  while ((match = marker.exec(rest))) {
    found.push({ name: match[2], start: match.index + match[1].length,
      valueStart: match.index + match[0].length });
  }
  found.forEach((item, i) => {
    const end = i + 1 < found.length ? found[i + 1].start : rest.length;
    item.raw = rest.slice(item.valueStart, end);
    item.value = unquote(item.raw.trim());
    item.option = entry.options.find((o) => o.name === item.name);
  });
  return { entry, rest, found, offset: 1 + entry.path.length };
}

function unquote(value) {
  const m = /^"(.*)"$/.exec(value);
  return m ? m[1] : value;
}

// The values to send, typed by each option's definition; throws an Error for a bad one.
function convert(option, value) {
  const where = `option ${option.name}`;
  switch (option.type) {
    case OPTION.INTEGER:
      if (!/^-?\d+$/.test(value)) throw new Error(`${where} takes a whole number`);
      return Number(value);
    case OPTION.NUMBER:
      if (value === "" || !Number.isFinite(Number(value))) throw new Error(`${where} takes a number`);
      return Number(value);
    case OPTION.BOOLEAN:
      if (!/^(true|false|yes|no)$/i.test(value)) throw new Error(`${where} takes True or False`);
      return /^(true|yes)$/i.test(value);
    case OPTION.USER: case OPTION.MENTIONABLE: {
      const name = value.replace(/^@/, "");
      const user = state.users.find((u) => u.name === name || u.display === name);
      return user ? user.name : name;
    }
    case OPTION.CHANNEL: return value.replace(/^#/, "");
    default:
      if (option.choices && option.choices.length) {
        const choice = option.choices.find((c) => c.name === value || String(c.value) === value);
        if (choice) return choice.value;
      }
      return value;
  }
}

function collect(parsed, { lenient = false, skip = null } = {}) {
  const options = {}, attachments = {};
  for (const item of parsed.found) {
    if (item.name === skip) continue;
    if (item.option.type === OPTION.ATTACHMENT) {
      if (!lenient) attachments[item.name] = state.files.get(item.name);
      continue;
    }
    try {
      options[item.name] = convert(item.option, item.value);
    } catch (error) {
      if (!lenient) throw error;
    }
  }
  return { options, attachments };
}

// ---- completion ------------------------------------------------------------------------

function completionContext() {
  const input = $("input");
  const value = input.value;
  const parsed = parse(value);
  if (!parsed) return null;
  if (!parsed.entry) return { mode: "command", prefix: parsed.prefix };
  const last = parsed.found[parsed.found.length - 1];
  const endsBlank = /\s$/.test(value);
  const usedNames = new Set(parsed.found.map((f) => f.name));
  if (last && !endsBlank) {
    const raw = last.raw;
    const openQuote = raw.startsWith('"') && !/"$/.test(raw.slice(1));
    const word = raw.split(/\s+/).pop();
    const multiword = /\s/.test(raw.trim()) && !openQuote;
    if (!multiword || last.option.type === OPTION.STRING) {
      return { mode: "value", parsed, item: last, word: multiword ? word : null, usedNames };
    }
    return { mode: "option", parsed, word, usedNames };
  }
  const word = endsBlank ? "" : (parsed.rest.split(/\s+/).pop() || "");
  return { mode: "option", parsed, word, usedNames };
}

function refreshCompletions() {
  const context = completionContext();
  if (!context) return showSuggestions([]);
  if (context.mode === "command") {
    const prefix = context.prefix.toLowerCase();
    const list = state.entries.filter((e) => e.path.startsWith(prefix) ||
      (prefix && e.path.includes(prefix))).slice(0, 25);
    return showSuggestions(list.map((e) => ({ label: `/${e.path}`, detail: e.description,
      apply: () => setInput(`/${e.path} `) })), "commands");
  }
  const optionItems = optionSuggestions(context);
  if (context.mode === "option") return showSuggestions(optionItems, context.parsed.entry.path);
  valueSuggestions(context, optionItems);
}

function optionSuggestions(context) {
  const { parsed, usedNames } = context;
  const word = (context.word || "").toLowerCase();
  return parsed.entry.options
    .filter((o) => !usedNames.has(o.name) && o.name.startsWith(word))
    .sort((a, b) => Number(!!b.required) - Number(!!a.required))
    .map((o) => ({
      label: o.name, required: o.required,
      detail: `${TYPE_NAMES[o.type] || "value"}${o.autocomplete ? " · suggestions" : ""} — ${o.description || ""}`,
      apply: () => chooseOption(context, o),
    }));
}

function chooseOption(context, option) {
  const value = $("input").value;
  const word = context.word || "";
  const base = word ? value.slice(0, value.length - word.length) : value.replace(/\s*$/, " ");
  setInput(`${base}${option.name}:`);
  if (option.type === OPTION.ATTACHMENT) pickFile(option.name);
}

async function valueSuggestions(context, optionItems) {
  const { item, parsed } = context;
  const option = item.option;
  const typed = item.value;
  const pick = (value) => () => replaceValue(parsed, item, value);
  let items = [];
  if (option.type === OPTION.ATTACHMENT) {
    items = [{ label: state.files.get(option.name)?.filename || "choose a file…",
      detail: "attach a file", apply: () => pickFile(option.name) }];
  } else if (option.choices && option.choices.length) {
    items = option.choices.filter((c) => c.name.toLowerCase().includes(typed.toLowerCase()))
      .map((c) => ({ label: c.name, detail: String(c.value), apply: pick(String(c.value)) }));
  } else if (option.type === OPTION.BOOLEAN) {
    items = ["True", "False"].filter((v) => v.toLowerCase().startsWith(typed.toLowerCase()))
      .map((v) => ({ label: v, apply: pick(v) }));
  } else if (option.type === OPTION.USER || option.type === OPTION.MENTIONABLE) {
    items = state.users.filter((u) => u.name.startsWith(typed.replace(/^@/, "")))
      .map((u) => ({ label: `@${u.display}`, detail: u.name, apply: pick(u.name) }));
  } else if (option.autocomplete) {
    return autocomplete(context, optionItems);
  } else {
    const bounds = describeBounds(option);
    items = [{ label: `${option.name}: ${TYPE_NAMES[option.type] || "value"}`,
      detail: `${bounds}${option.description || ""}`, heading: true }];
  }
  const extra = context.word ? optionItems : [];
  showSuggestions([...items, ...extra], option.name);
}

function describeBounds(option) {
  if (option.min_value !== undefined || option.max_value !== undefined) {
    return `${option.min_value ?? ""}–${option.max_value ?? ""} · `;
  }
  if (option.max_length !== undefined) return `up to ${option.max_length} characters · `;
  return "";
}

// Ask the bot (APPLICATION_COMMAND_AUTOCOMPLETE through the stand-in) for choices.
async function autocomplete(context, optionItems) {
  const { parsed, item } = context;
  const ref = ++state.autocompleteRef;
  const { options } = collect(parsed, { lenient: true, skip: item.name });
  options[item.name] = item.value;
  showSuggestions([{ label: "asking the bot…", heading: true }], item.name);
  const frame = await request({ op: "autocomplete", command: parsed.entry.path, options,
    focused: item.name });
  if (ref !== state.autocompleteRef) return;  // a newer keystroke asked again
  const choices = frame.choices || [];
  const items = choices.map((c) => ({ label: c.name, detail: String(c.value),
    apply: () => replaceValue(parsed, item, String(c.value)), choice: true }));
  if (!items.length) {
    items.push({ label: frame.error ? `no suggestions: ${frame.error}` : "no suggestions",
      heading: true });
  }
  showSuggestions([...items, ...(context.word ? optionItems : [])], item.name);
}

function replaceValue(parsed, item, value) {
  const input = $("input").value;
  const start = parsed.offset + item.valueStart;
  const end = parsed.offset + item.valueStart + item.raw.length;
  const quoted = /\s/.test(value) ? `"${value}"` : value;
  setInput(`${input.slice(0, start)}${quoted} ${input.slice(end).trimStart()}`);
}

function showSuggestions(items, title) {
  const list = $("completions");
  state.suggestions = items.filter((i) => !i.heading);
  state.selected = 0;
  state.navigated = false;
  if (!items.length) { list.hidden = true; list.replaceChildren(); return; }
  const rows = [];
  if (title) rows.push(el("li", { class: "heading" }, title));
  items.forEach((item) => {
    const li = el("li", { class: item.heading ? "heading" : "suggestion", role: "option" });
    li.append(el("span", { class: "name" }, item.label));
    if (item.required) li.append(el("span", { class: "required" }, "required"));
    if (item.detail) li.append(el("span", { class: "detail" }, item.detail));
    if (!item.heading) {
      li.dataset.value = item.label;
      li.onmousedown = (event) => { event.preventDefault(); item.apply(); };
    }
    rows.push(li);
  });
  list.replaceChildren(...rows);
  list.hidden = false;
  highlight();
}

function highlight() {
  const rows = [...$("completions").querySelectorAll("li.suggestion")];
  rows.forEach((row, i) => row.classList.toggle("selected", i === state.selected));
  if (rows[state.selected]) rows[state.selected].scrollIntoView({ block: "nearest" });
}

function setInput(value) {
  const input = $("input");
  input.value = value;
  input.focus();
  input.setSelectionRange(value.length, value.length);
  refreshCompletions();
}

// ---- attachments -----------------------------------------------------------------------

function pickFile(optionName) {
  state.fileFor = optionName;
  $("file").value = "";
  $("file").click();
}

async function fileChosen() {
  const file = $("file").files[0];
  if (!file) return;
  let name = state.fileFor;
  const parsed = parse($("input").value);
  if (!name && parsed && parsed.entry) {  // the + button: the first free attachment option
    const free = parsed.entry.options.find((o) => o.type === OPTION.ATTACHMENT &&
      !state.files.has(o.name));
    name = free && free.name;
    if (name) setInput(`${$("input").value.replace(/\s*$/, " ")}${name}:`);
  }
  if (!name) return hint("Pick a command with a file option first (e.g. /style).", true);
  const data = await readBase64(file);
  state.files.set(name, { filename: file.name, content_type: file.type, data_base64: data });
  const p = parse($("input").value);
  const item = p && p.found && p.found.find((f) => f.name === name);
  if (item) replaceValue(p, item, file.name);
  renderFiles();
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function renderFiles() {
  const chips = [...state.files.entries()].map(([name, file]) => {
    const chip = el("span", { class: "file-chip", "data-option": name }, `📎 ${name}: ${file.filename}`);
    const remove = el("button", { type: "button", title: "remove" }, "×");
    remove.onclick = () => { state.files.delete(name); renderFiles(); };
    chip.append(remove);
    return chip;
  });
  $("files").replaceChildren(...chips);
}

// ---- sending ---------------------------------------------------------------------------

async function submit() {
  const value = $("input").value.trim();
  if (!value) return;
  const parsed = parse(value);
  if (!parsed || !parsed.entry) {
    return hint(value.startsWith("/") ? `No command ${value.split(/\s/)[0]}.`
      : "The bot only answers slash commands here: type / to pick one.", true);
  }
  const missing = parsed.entry.options.filter((o) => o.required &&
    !parsed.found.some((f) => f.name === o.name));
  if (missing.length) return hint(`Missing ${missing.map((o) => o.name).join(", ")}.`, true);
  let payload;
  try {
    payload = collect(parsed);
  } catch (error) {
    return hint(error.message, true);
  }
  for (const [name, file] of Object.entries(payload.attachments)) {
    if (!file) return hint(`Attach a file for ${name} (the + button).`, true);
  }
  const frame = await request({ op: "invoke", command: parsed.entry.path, ...payload });
  if (frame.type === "error") return hint(frame.error, true);
  hint("");
  $("input").value = "";
  state.files.clear();
  renderFiles();
  refreshCompletions();
}

async function click(messageId, customId, values) {
  const frame = await request({ op: "click", message_id: messageId, custom_id: customId, values });
  if (frame.type === "error") hint(frame.error, true);
}

function hint(message, error = false) {
  $("hint").textContent = message;
  $("hint").classList.toggle("error", error);
}

// Interactions of this member: "sending…" until the bot answers; Discord's failure after 3 s.
function interactionState(frame) {
  if (frame.kind !== 2 && frame.kind !== 3) return;
  const known = state.pending.get(frame.id);
  if (frame.state === "sent" && !known) {
    const what = frame.kind === 2 ? `/${frame.command}` : "a button";
    const line = el("div", { class: "pending-line", "data-interaction": frame.id },
      `${displayName(state.viewer)} is using ${what}…`);
    const timer = setTimeout(() => {
      line.classList.add("failed");
      line.textContent = "The application did not respond.";
    }, NO_ANSWER_MS);
    state.pending.set(frame.id, { line, timer });
    $("pending").append(line);
  } else if (known && frame.state !== "sent") {
    clearTimeout(known.timer);
    if (frame.state === "failed") {
      known.line.classList.add("failed");
      known.line.textContent = "The bot is not connected.";
    } else {
      known.line.remove();
      state.pending.delete(frame.id);
    }
  }
}

// ---- messages --------------------------------------------------------------------------

function upsert(message) {
  const wasThere = state.messages.has(message.id);
  const previous = wasThere ? document.querySelector(`li[data-id="${message.id}"]`) : null;
  state.messages.set(message.id, message);
  const node = renderMessage(message);
  if (previous) {
    if (previous.dataset.wasDeferred) node.dataset.wasDeferred = "true";
    previous.replaceWith(node);
    return;
  }
  const nearBottom = isNearBottom();
  const list = $("messages");
  const after = [...list.children].find((li) => BigInt(li.dataset.id) > BigInt(message.id));
  list.insertBefore(node, after || null);
  if (nearBottom) scrollDown(true);
}

function removeMessage(id) {
  state.messages.delete(id);
  const node = document.querySelector(`li[data-id="${id}"]`);
  if (node) node.remove();
}

function renderMessage(message) {
  const flags = message.flags || 0;
  const li = el("li", { class: "message", "data-id": message.id });
  const loading = Boolean(flags & LOADING);
  if (flags & EPHEMERAL) { li.classList.add("ephemeral"); li.dataset.ephemeral = "true"; }
  if (loading) { li.dataset.loading = "true"; li.dataset.wasDeferred = "true"; }
  const author = message.author || {};
  const body = el("div", { class: "body" });
  const meta = message.interaction_metadata;
  if (meta) body.append(replyLine(meta));
  const head = el("div", { class: "head" });
  head.append(el("span", { class: "author" }, author.global_name || author.username || "?"));
  if (author.bot) head.append(el("span", { class: "bot-tag" }, "APP"));
  head.append(el("span", { class: "time" }, new Date(message.timestamp).toLocaleTimeString()));
  if (message.dm) head.append(el("span", { class: "dm-note" }, " · direct message to you"));
  body.append(head);
  if (loading) {
    body.append(el("div", { class: "thinking" }, `${author.username || "The bot"} is thinking`));
  } else {
    if (message.content) body.append(renderContent(message.content, message.edited_timestamp));
    (message.embeds || []).forEach((embed) => body.append(renderEmbed(embed)));
    if ((message.attachments || []).length) body.append(renderAttachments(message.attachments));
    if ((message.components || []).length) {
      body.append(renderComponents(message.components, message.id));
    }
  }
  if (flags & EPHEMERAL) body.append(ephemeralNote(li));
  li.append(avatar(author.username || "?", author.id), body);
  return li;
}

function replyLine(meta) {
  const user = meta.user || {};
  const line = el("div", { class: "reply-line" });
  line.append(el("b", {}, user.global_name || user.username || "someone"));
  line.append(text(meta.type === 2 ? ` used /${meta.name || ""}` : " pressed a button"));
  return line;
}

function ephemeralNote(li) {
  const note = el("div", { class: "ephemeral-note" }, "👁 Only you can see this · ");
  const dismiss = el("a", {}, "Dismiss message");
  dismiss.onclick = () => li.remove();
  note.append(dismiss);
  return note;
}

// A small Markdown subset: code blocks, `code`, **bold**, *italic*, __underline__, mentions.
function renderContent(content, edited) {
  const div = el("div", { class: "content" });
  div.innerHTML = markdown(content);
  if (edited) div.append(el("span", { class: "edited" }, "(edited)"));
  return div;
}

function markdown(source) {
  let html = escapeHtml(source);
  html = html.replace(/```(?:\w*\n)?([\s\S]*?)```/g, (_, code) => `<pre>${code}</pre>`);
  html = html.replace(/`([^`\n]+)`/g, "<code>$1</code>");
  html = html.replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
  html = html.replace(/__([^_]+)__/g, "<u>$1</u>");
  html = html.replace(/(^|[^*\w])\*([^*\n]+)\*/g, "$1<i>$2</i>");
  html = html.replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2" target="_blank">$1</a>');
  html = html.replace(/&lt;@!?(\d+)&gt;/g, (_, id) => {
    const user = userById(id) || (state.bot && state.bot.id === id ? state.bot : null);
    return `<span class="mention">@${escapeHtml(user ? (user.display || user.username) : id)}</span>`;
  });
  html = html.replace(/&lt;#(\d+)&gt;/g, '<span class="mention">#atelier</span>');
  html = html.replace(/&lt;@&amp;(\d+)&gt;/g, '<span class="mention">@role</span>');
  html = html.replace(/&lt;t:(\d+)(?::\w)?&gt;/g, (_, t) => new Date(t * 1000).toLocaleString());
  return html;
}

function renderEmbed(embed) {
  const box = el("div", { class: "embed" });
  if (embed.color) box.style.borderLeftColor = `#${embed.color.toString(16).padStart(6, "0")}`;
  if (embed.author && embed.author.name) box.append(el("div", { class: "embed-author" }, embed.author.name));
  if (embed.title) box.append(el("div", { class: "embed-title" }, embed.title));
  if (embed.description) {
    const d = el("div", { class: "content" });
    d.innerHTML = markdown(embed.description);
    box.append(d);
  }
  if ((embed.fields || []).length) {
    const grid = el("div", { class: "embed-fields" });
    embed.fields.forEach((field) => {
      const f = el("div", { class: field.inline ? "embed-field" : "embed-field wide" });
      f.append(el("div", { class: "embed-field-name" }, field.name));
      const v = el("div", { class: "content" });
      v.innerHTML = markdown(field.value || "");
      f.append(v);
      grid.append(f);
    });
    box.append(grid);
  }
  for (const key of ["image", "thumbnail"]) {
    if (embed[key] && embed[key].url) box.append(el("img", { src: embed[key].url, alt: key }));
  }
  if (embed.footer && embed.footer.text) box.append(el("div", { class: "embed-footer" }, embed.footer.text));
  return box;
}

function renderAttachments(attachments) {
  const box = el("div", { class: "attachments" });
  for (const a of attachments) {
    const type = a.content_type || "";
    if (type.startsWith("image/")) {
      const img = el("img", { src: a.url, alt: a.filename, "data-filename": a.filename });
      if ((a.width || 999) < 256) img.classList.add("small");
      box.append(img);
    } else if (type.startsWith("audio/") || AUDIO.test(a.filename)) {
      box.append(fileCard(a, el("audio", { controls: "", preload: "metadata", src: a.url })));
    } else if (type.startsWith("video/") || VIDEO.test(a.filename)) {
      box.append(el("video", { controls: "", preload: "metadata", src: a.url }));
    } else {
      box.append(fileCard(a));
    }
  }
  return box;
}

function fileCard(attachment, player) {
  const card = el("div", { class: "file-card", "data-filename": attachment.filename });
  const link = el("a", { href: attachment.url, download: attachment.filename, target: "_blank" },
    `📎 ${attachment.filename}`);
  card.append(link, el("span", { class: "detail" }, `${(attachment.size / 1024).toFixed(1)} KB`));
  if (player) card.append(player);
  return card;
}

// Components: action rows of buttons and string selects (and v2 containers, read simply).
function renderComponents(components, messageId) {
  const box = el("div", { class: "components" });
  components.forEach((c) => box.append(renderComponent(c, messageId)));
  return box;
}

function renderComponent(c, messageId) {
  switch (c.type) {
    case 1: { const row = el("div", { class: "row" });
      (c.components || []).forEach((x) => row.append(renderComponent(x, messageId))); return row; }
    case 2: return renderButton(c, messageId);
    case 3: return renderSelect(c, messageId);
    case 10: { const d = el("div", { class: "content" }); d.innerHTML = markdown(c.content || ""); return d; }
    case 12: return renderAttachments((c.items || []).map((i) => ({ url: i.media.url,
      filename: i.media.url.split("/").pop(), content_type: "image/png" })));
    case 9: case 17: { const d = el("div", { class: "embed" });
      [...(c.components || []), ...(c.accessory ? [c.accessory] : [])]
        .forEach((x) => d.append(renderComponent(x, messageId))); return d; }
    default: return el("span", { class: "detail" }, `[component type ${c.type}]`);
  }
}

function renderButton(c, messageId) {
  const label = [c.emoji && (c.emoji.id ? `:${c.emoji.name}:` : c.emoji.name), c.label]
    .filter(Boolean).join(" ");
  if (c.style === 5 && c.url) {
    return el("a", { class: "link-button", href: c.url, target: "_blank" }, `${label} ↗`);
  }
  const button = el("button", { type: "button", class: `style-${c.style || 2}`,
    "data-custom-id": c.custom_id || "" }, label);
  if (c.disabled) button.disabled = true;
  button.onclick = () => click(messageId, c.custom_id);
  return button;
}

function renderSelect(c, messageId) {
  const select = el("select", { "data-custom-id": c.custom_id });
  select.append(el("option", { value: "" }, c.placeholder || "Make a selection"));
  (c.options || []).forEach((o) => select.append(el("option", { value: o.value }, o.label)));
  if (c.disabled) select.disabled = true;
  select.onchange = () => select.value && click(messageId, c.custom_id, [select.value]);
  return select;
}

// ---- small DOM helpers -----------------------------------------------------------------

function el(tag, attributes = {}, content) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (content !== undefined) node.textContent = content;
  return node;
}

function text(value) { return document.createTextNode(value); }

function avatar(name, id) {
  const color = COLORS[Number(BigInt(id || 0) % 5n)];
  const node = el("span", { class: "avatar" }, (name || "?")[0].toUpperCase());
  node.style.background = color;
  return node;
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" })[c]);
}

function isNearBottom() {
  const list = $("messages");
  return list.scrollHeight - list.scrollTop - list.clientHeight < 120;
}

function scrollDown(force) {
  const list = $("messages");
  if (force || isNearBottom()) list.scrollTop = list.scrollHeight;
}

// ---- the message box -------------------------------------------------------------------

function onKey(event) {
  const open = !$("completions").hidden && state.suggestions.length;
  if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    state.selected = (state.selected + step + state.suggestions.length) % state.suggestions.length;
    state.navigated = true;
    highlight();
  } else if (open && event.key === "Tab") {
    event.preventDefault();
    state.suggestions[state.selected].apply();
  } else if (event.key === "Enter") {
    event.preventDefault();
    const context = completionContext();
    const pickFirst = context && (context.mode === "command" ||
      (context.mode === "value" && state.suggestions[state.selected]?.choice));
    if (open && (state.navigated || pickFirst)) state.suggestions[state.selected].apply();
    else submit();
  } else if (event.key === "Escape") {
    showSuggestions([]);
  }
}

function init() {
  const input = $("input");
  input.addEventListener("keydown", onKey);
  input.addEventListener("input", () => { hint(""); refreshCompletions(); });
  input.addEventListener("blur", () => setTimeout(() => { $("completions").hidden = true; }, 150));
  input.addEventListener("focus", refreshCompletions);
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  $("attach").onclick = () => pickFile(null);
  $("file").addEventListener("change", fileChosen);
  connect();
}

init();
