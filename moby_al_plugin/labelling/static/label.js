// The labelling page: one image at a time, one key per class, every answer
// sent to the server the moment it is given.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;      // the last /api/state
let current = null;    // image id on screen
let focus = null;      // an image to show first (after an undo)

// the server writes the token into the page, which only this origin (this port) can
// read; every request carries it in a header, which no other page can add. No cookie
// holds it: the browser would send a cookie to every port of this host.
const TOKEN = document.querySelector('meta[name="moby-al-token"]').content;

async function api(path, body) {
  const options = body === undefined ? {headers: {"X-Moby-Token": TOKEN}} : {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Moby-Token": TOKEN},
    body: JSON.stringify(body),
  };
  const response = await fetch(path, {credentials: "omit", ...options});
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function say(text) { $("message").textContent = text || ""; }

// the images waiting for an answer, less those answered here whose answers are queued
function pending() {
  return state ? state.pending.filter((p) => !given.has(p.image_id)) : [];
}

function choose() {
  const ids = pending().map((p) => p.image_id);
  if (focus !== null && ids.includes(focus)) { current = focus; focus = null; return; }
  if (!ids.includes(current)) current = ids.length ? ids[0] : null;
}

// Images come through fetch, with the header, as object URLs (an <img src> request could
// not carry it); the most recent ones are kept, the older ones released.
const imageUrls = new Map();  // image id -> Promise of an object URL, oldest first
const KEPT_IMAGES = 300;

function imageUrl(id) {
  if (imageUrls.has(id)) {
    const url = imageUrls.get(id);
    imageUrls.delete(id); imageUrls.set(id, url);  // most recently used last
    return url;
  }
  const url = fetch(`/image/${id}`, {credentials: "omit", headers: {"X-Moby-Token": TOKEN}})
    .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`${r.status}`))))
    .then((blob) => URL.createObjectURL(blob));
  url.catch(() => imageUrls.delete(id));  // a changed file: ask again next time
  imageUrls.set(id, url);
  while (imageUrls.size > KEPT_IMAGES) {
    const [oldest, old] = imageUrls.entries().next().value;
    imageUrls.delete(oldest);
    old.then((u) => URL.revokeObjectURL(u), () => {});
  }
  return url;
}

// show image `id` in `img`, unless `img` has been given another image meanwhile
function showImage(img, id) {
  img.dataset.src = id;
  imageUrl(id).then((url) => { if (img.dataset.src === String(id)) img.src = url; }, () => {});
}

function thumb(id, size) {
  const img = document.createElement("img");
  img.alt = ""; img.width = size; img.height = size;
  showImage(img, id);
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
    if (img.dataset.image !== String(current)) showImage(img, current);
    img.dataset.image = current;
  } else {
    delete img.dataset.image;
    empty.textContent = "No image is waiting for an answer. Train and query the next batch.";
  }
}

// The counter speaks of the batch on screen (the latest one when no image waits), not of
// the latest batch: a batch queued meanwhile waits behind the one being answered.
function drawCounts() {
  const c = state.counts, waiting = pending();
  const item = waiting.find((p) => p.image_id === current);
  const batch = item ? item.batch : c.batch;
  const stats = (state.batches || []).find((b) => b.batch === batch) || {size: 0, answered: 0};
  // answers on their way count already: the page has moved on from their images
  const sent = state.pending.filter((p) => p.batch === batch && given.has(p.image_id)).length;
  const answered = Math.min(stats.size, stats.answered + sent);
  const parts = [`${answered} / ${stats.size} answered in this batch`
                 + (batch === null || batch === undefined ? "" : ` (batch ${batch})`),
                 `${waiting.length} waiting`, `${c.labelled} labelled`];
  if (c.budget) parts.push(`budget ${c.budget}`);
  $("counter").textContent = parts.join(" · ");
  // in the order of the classes (their keys), whatever order the JSON object came in
  const rows = state.classes.map((cls) => [cls.name, state.histogram[cls.name] || 0]);
  const most = Math.max(1, ...rows.map(([, n]) => n));
  $("histogram").replaceChildren(...rows.map(([name, n]) => {
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
  // the stopping rule: whether the model's predictions still change round to round
  const stopping = state.stopping;
  $("stopping").hidden = !stopping;
  $("stopping").textContent = stopping ? `Stopping rule: ${stopping.message}` : "";
  $("stopping").classList.toggle("stop", Boolean(stopping && stopping.stop));
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
    if (seen !== edits || working) return;  // a change came in between
    const first = state === null;
    state = fresh;
    if (first) $("train-n").value = state.default_n;
    draw();
  } catch (error) { say(error.message); }
}

// Changes go to the server one at a time, in the order they were asked for; a key
// pressed while one is on its way waits in this queue, none is dropped. An answer
// goes to the image on screen when its key was pressed, and the next image comes on
// screen at once, so that keys typed in a burst answer successive images of the
// batch, one each. Only an answer typed while an undo or redo is still waiting (it
// changes what comes on screen) is given to the image on screen once that is done.
const queue = [];         // changes not sent yet, oldest first
let working = false;      // the queue is being worked off
const given = new Set();  // images whose answers are queued or on their way
let moving = 0;           // undos and redos queued or on their way

function enqueue(change) {
  queue.push(change);
  work();
}

async function work() {
  if (working) return;
  working = true;
  while (queue.length) {
    const change = queue.shift();
    const body = change.body();
    if (body === null) { if (change.always) change.always(); continue; }
    edits += 1;
    try {
      const done = await api(change.path, body);
      say("");
      if (change.done) await change.done(done);
    } catch (error) {
      say(error.message);
      if (change.failed) change.failed();
    } finally {
      edits += 1;  // a state fetched while it was on its way is stale
      if (change.always) change.always();
    }
  }
  working = false;
  refresh();
}

async function reload() {
  // undo and redo change what waits: fetch it before the next change is resolved
  try { state = await api("/api/state"); draw(); } catch (error) { say(error.message); }
}

function answer(label) {
  if (!state) return;
  let imageId = null;
  if (!moving) {
    if (current === null) return;
    imageId = current;
    given.add(imageId);
    draw();  // the next image, before the answer is saved
  }
  enqueue({
    path: "/api/answer",
    body() {
      if (imageId === null) {
        if (current === null) return null;
        imageId = current;
        given.add(imageId);
      }
      return {image_id: imageId, label};
    },
    done(result) {
      state.pending = state.pending.filter((p) => p.image_id !== imageId);
      state.counts = result.counts;
      state.batches = result.batches;
    },
    always() {
      if (imageId !== null) given.delete(imageId);  // refused: it waits again
      draw();
    },
  });
}

function change(imageId, label) {
  enqueue({
    path: "/api/answer",
    body: () => ({image_id: imageId, label}),
    // refused: draw the list again so the drop-down shows the answer kept
    failed() { drawn.recent = null; },
  });
}

function step(path, show) {
  moving += 1;
  enqueue({
    path,
    body: () => ({}),
    async done(result) {
      if (show) focus = result.image_id;
      await reload();
    },
    always() { moving -= 1; },
  });
}

function undo() { step("/api/undo", true); }
function redo() { step("/api/redo", false); }

function train() {
  const n = parseInt($("train-n").value, 10);
  enqueue({path: "/api/train", body: () => ({n})});
}

document.addEventListener("keydown", (event) => {
  if (!state || event.target.closest("input, select, textarea") || event.ctrlKey
      || event.metaKey || event.altKey) return;
  const match = state.classes.find((c) => c.key === event.key);
  const known = match || event.key === " " || event.key === "Backspace";
  if (!known) return;
  event.preventDefault();
  // a key held down answers (or undoes) once: its repeats are not presses
  if (event.repeat) return;
  if (match) answer(match.name);
  else if (event.key === " ") answer(null);
  else if (event.shiftKey) redo();
  else undo();
});
$("skip").addEventListener("click", () => answer(null));
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("train").addEventListener("click", train);

// training runs in another process: poll often while it runs, rarely otherwise
async function poll() {
  await refresh();
  const running = state && state.job && state.job.state === "running";
  setTimeout(poll, running ? 1000 : 4000);
}
poll();
