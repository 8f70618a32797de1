// The labelling page: one image at a time, one key per class, every answer
// sent to the server the moment it is given.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;      // the last /api/state
let current = null;    // image id on screen
let focus = null;      // an image to show first (after an undo)
let busy = false;      // a change is on its way

// the server writes the token into the page; every change carries it in a header,
// which no other page can add (the cookie alone changes nothing)
const TOKEN = document.querySelector('meta[name="moby-al-token"]').content;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Moby-Token": TOKEN},
    body: JSON.stringify(body),
  };
  const response = await fetch(path, {credentials: "same-origin", ...options});
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function say(text) { $("message").textContent = text || ""; }

function pending() {
  return state ? state.pending : [];
}

function choose() {
  const ids = pending().map((p) => p.image_id);
  if (focus !== null && ids.includes(focus)) { current = focus; focus = null; return; }
  if (!ids.includes(current)) current = ids.length ? ids[0] : null;
}

function thumb(id, size) {
  const img = document.createElement("img");
  img.src = `/image/${id}`; img.alt = ""; img.width = size; img.height = size;
  return img;
}

// what each list was last drawn from: the poll redraws a list only when it
// changed, so it never swallows a click or replaces an open drop-down
const drawn = {classes: null, recent: null};

function unchanged(part, data) {
  const key = JSON.stringify(data);
  if (drawn[part] === key) return true;
  drawn[part] = key;
  return false;
}

function drawClasses() {
  const box = $("classes");
  const item = pending().find((p) => p.image_id === current);
  const suggested = item ? item.suggestion : null;
  if (unchanged("classes", [state.classes, suggested])) return;
  box.replaceChildren(...state.classes.map((c) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "class-button" + (c.name === suggested ? " suggested" : "");
    button.dataset.class = c.name;
    const key = document.createElement("kbd"); key.textContent = c.key;
    const name = document.createElement("span"); name.textContent = c.name;
    const examples = document.createElement("span"); examples.className = "examples";
    examples.replaceChildren(...c.examples.map((id) => thumb(id, 28)));
    button.replaceChildren(key, name, examples);
    button.addEventListener("click", () => answer(c.name));
    return button;
  }));
  const line = $("suggestion");
  line.hidden = !suggested;
  if (suggested) {
    line.replaceChildren("the model suggests ", Object.assign(document.createElement("b"),
      {textContent: suggested}), " (not selected: choose yourself)");
  }
}

function drawImage() {
  const img = $("image"), empty = $("empty");
  img.hidden = current === null; empty.hidden = current !== null;
  if (current !== null) {
    img.src = `/image/${current}`; img.dataset.image = current;
  } else {
    delete img.dataset.image;
    empty.textContent = "No image is waiting for an answer. Train and query the next batch.";
  }
}

function drawCounts() {
  const c = state.counts;
  const parts = [`${c.batch_answered} / ${c.batch_size} answered in this batch`,
                 `${c.pending} waiting`, `${c.labelled} labelled`];
  if (c.budget) parts.push(`budget ${c.budget}`);
  $("counter").textContent = parts.join(" · ");
  const most = Math.max(1, ...Object.values(state.histogram));
  $("histogram").replaceChildren(...Object.entries(state.histogram).map(([name, n]) => {
    const row = document.createElement("div"); row.className = "bar";
    const label = document.createElement("span"); label.textContent = name;
    const bar = document.createElement("span"); bar.style.width = `${(100 * n) / most}%`;
    const count = document.createElement("span"); count.textContent = n;
    row.replaceChildren(label, bar, count);
    return row;
  }));
}

function drawRecent() {
  const names = state.classes.map((c) => c.name);
  if (unchanged("recent", [names, state.recent])) return;
  $("recent").replaceChildren(...state.recent.map((r) => {
    const li = document.createElement("li");
    const select = document.createElement("select");
    select.dataset.image = r.image_id;
    for (const value of [...names, ""]) {
      const option = new Option(value || "(skipped)", value);
      option.selected = (r.label || "") === value;
      select.add(option);
    }
    select.addEventListener("change", () => change(r.image_id, select.value || null));
    li.replaceChildren(thumb(r.image_id, 32), select);
    return li;
  }));
}

function drawJob() {
  const job = state.job, running = job && job.state === "running";
  $("progress").hidden = !running;
  if (running) $("progress").value = job.progress;
  $("train").disabled = false;
  $("job").textContent = !job ? "" : running ? job.message
    : job.state === "failed" ? `training failed: ${job.message}` : job.message;
}

function draw() {
  choose();
  drawImage(); drawClasses(); drawCounts(); drawRecent(); drawJob();
}

let edits = 0;         // answers sent: a state fetched before one of them is stale

async function refresh() {
  const seen = edits;
  try {
    const fresh = await api("/api/state");
    if (seen !== edits) return;
    const first = state === null;
    state = fresh;
    if (first) $("train-n").value = state.default_n;
    draw();
  } catch (error) { say(error.message); }
}

// one change at a time; keys pressed meanwhile are ignored rather than
// applied to an image the person has not seen yet
async function mutate(path, body) {
  if (busy) return null;
  busy = true; edits += 1;
  try {
    const done = await api(path, body);
    say("");
    return done;
  } catch (error) { say(error.message); return null; } finally { busy = false; }
}

async function answer(label) {
  if (current === null) return;
  const imageId = current;
  if (await mutate("/api/answer", {image_id: imageId, label})) {
    state.pending = state.pending.filter((p) => p.image_id !== imageId);
    draw();
  }
  refresh();
}

async function change(imageId, label) {
  // refused: draw the list again so the drop-down shows the answer kept
  if (!await mutate("/api/answer", {image_id: imageId, label})) drawn.recent = null;
  refresh();
}

async function undo() {
  const done = await mutate("/api/undo", {});
  if (done) focus = done.image_id;
  refresh();
}

async function train() {
  const n = parseInt($("train-n").value, 10);
  await mutate("/api/train", {n});
  refresh();
}

document.addEventListener("keydown", (event) => {
  if (!state || event.target.closest("input, select, textarea") || event.ctrlKey
      || event.metaKey || event.altKey) return;
  const match = state.classes.find((c) => c.key === event.key);
  if (match) { event.preventDefault(); answer(match.name); }
  else if (event.key === " ") { event.preventDefault(); answer(null); }
  else if (event.key === "Backspace") { event.preventDefault(); undo(); }
});
$("skip").addEventListener("click", () => answer(null));
$("undo").addEventListener("click", undo);
$("train").addEventListener("click", train);

// training runs in another process: poll often while it runs, rarely otherwise
async function poll() {
  await refresh();
  const running = state && state.job && state.job.state === "running";
  setTimeout(poll, running ? 1000 : 4000);
}
poll();
