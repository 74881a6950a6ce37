// The facerec web console: recognise a photo, enrol unknown faces, browse and delete samples.
// Plain browser JavaScript: no build step, no dependency; it talks to the service's JSON API.
"use strict";

const KEY_STORAGE = "facerec-api-key";
const PAGE_SIZE = 20;
const ENROL_MARGIN = 0.6; // of the face's larger side, kept around the crop sent for enrolment
const API_ROOT = new URL("../", window.location.href); // the console lives at <root>/console/

const $ = (selector) => document.querySelector(selector);

const state = { photo: null, faces: [], crop: null, offset: 0 };

// --- the API ---------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {};
  const key = $("#api-key").value.trim();
  if (key) headers["X-API-Key"] = key;
  const options = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(new URL(path, API_ROOT), options);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(data && data.error ? data.error : `HTTP ${response.status}`);
  }
  return data;
}

function setStatus(element, text, kind = "") {
  element.textContent = text;
  element.className = kind;
}

// --- recognition -----------------------------------------------------------------------------

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function loadPhoto(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus($("#status"), "Choose an image file.", "error");
    return;
  }
  const photo = $("#photo");
  state.photo = await readAsDataUrl(file);
  photo.src = state.photo;
  try {
    await photo.decode();
  } catch {
    setStatus($("#status"), "This browser cannot show that image.", "error");
    return;
  }
  $("#stage").hidden = false;
  closeEnrolForm();
  await recognise();
}

async function recognise() {
  setStatus($("#status"), "Recognising…", "busy");
  try {
    state.faces = await api("POST", "face-recognition", { image: state.photo });
  } catch (error) {
    state.faces = [];
    drawFaces();
    setStatus($("#status"), error.message, "error");
    return;
  }
  drawFaces();
  const known = state.faces.filter((face) => face.matched).length;
  setStatus($("#status"), `${state.faces.length} face(s) found, ${known} recognised.`, "ok");
}

function faceBox(face) {
  const [x, y, width, height] = face.bbox.split(",").map(Number);
  return { x, y, width, height };
}

function caption(face) {
  return face.matched ? `${face.name || face.id} ${face.similarity.toFixed(2)}` : "unknown";
}

function percent(value, total) {
  return `${(100 * value) / total}%`;
}

function drawFaces() {
  const photo = $("#photo");
  const boxes = state.faces.map((face, index) => {
    const { x, y, width, height } = faceBox(face);
    const box = document.createElement("button");
    box.type = "button";
    box.className = `face ${face.matched ? "known" : "unknown"}`;
    box.dataset.index = index;
    box.title = face.matched ? `${face.name} (id ${face.id})` : "unknown: click to enrol";
    Object.assign(box.style, {
      left: percent(x, photo.naturalWidth),
      top: percent(y, photo.naturalHeight),
      width: percent(width, photo.naturalWidth),
      height: percent(height, photo.naturalHeight),
    });
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = caption(face);
    box.append(label);
    if (!face.matched) box.addEventListener("click", () => openEnrolForm(index));
    return box;
  });
  $("#boxes").replaceChildren(...boxes);
  $("#face-list").replaceChildren(...state.faces.map(faceListItem));
}

function faceListItem(face, index) {
  const item = document.createElement("li");
  item.className = face.matched ? "known" : "unknown";
  if (face.matched) {
    item.textContent = `${face.name || face.id} (id ${face.id}), similarity ${face.similarity.toFixed(3)}`;
    return item;
  }
  const nearest = face.similarity === null ? "" : `, nearest ${face.similarity.toFixed(2)}`;
  item.textContent = `unknown${nearest} `;
  const enrol = document.createElement("button");
  enrol.type = "button";
  enrol.className = "link";
  enrol.textContent = "enrol";
  enrol.addEventListener("click", () => openEnrolForm(index));
  item.append(enrol);
  return item;
}

// --- enrolment -------------------------------------------------------------------------------

function cropFace(face) {
  // The crop, not the whole photo: /update-samples enrols the largest face of what it gets.
  const photo = $("#photo");
  const { x, y, width, height } = faceBox(face);
  const margin = ENROL_MARGIN * Math.max(width, height);
  const left = Math.max(0, x - margin);
  const top = Math.max(0, y - margin);
  const right = Math.min(photo.naturalWidth, x + width + margin);
  const bottom = Math.min(photo.naturalHeight, y + height + margin);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(right - left);
  canvas.height = Math.round(bottom - top);
  canvas.getContext("2d").drawImage(photo, left, top, right - left, bottom - top, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.95);
}

function openEnrolForm(index) {
  document.querySelectorAll(".face.selected").forEach((box) => box.classList.remove("selected"));
  document.querySelector(`.face[data-index="${index}"]`).classList.add("selected");
  state.crop = cropFace(state.faces[index]);
  $("#enrol-preview").src = state.crop;
  $("#enrol-name").value = "";
  $("#enrol-id").value = "";
  $("#enrol-form").hidden = false;
  $("#enrol-name").focus();
}

function closeEnrolForm() {
  $("#enrol-form").hidden = true;
  document.querySelectorAll(".face.selected").forEach((box) => box.classList.remove("selected"));
}

function idFromName(name) {
  const slug = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  return slug || `person_${Date.now()}`;
}

async function enrolSelectedFace(event) {
  event.preventDefault();
  const name = $("#enrol-name").value.trim();
  const id = $("#enrol-id").value.trim() || idFromName(name);
  const sample = { id, name, image: state.crop, metadata: "", action: "" };
  try {
    const report = await api("POST", "update-samples", [sample]);
    if (!report.success.includes(id)) {
      throw new Error(report.errors.map((error) => error.message).join("; ") || "not enrolled");
    }
  } catch (error) {
    setStatus($("#status"), `Could not enrol ${name}: ${error.message}`, "error");
    return;
  }
  closeEnrolForm();
  await recognise();
  await loadSamples();
}

// --- samples ---------------------------------------------------------------------------------

async function loadSamples() {
  const params = new URLSearchParams({ offset: state.offset, limit: PAGE_SIZE });
  const filter = $("#filter-text").value.trim();
  if (filter) params.set($("#filter-field").value, filter);
  let page;
  try {
    page = await api("GET", `samples?${params}`);
  } catch (error) {
    setStatus($("#samples-status"), error.message, "error");
    return;
  }
  setStatus($("#samples-status"), page.total ? "" : "No sample enrolled.");
  $("#sample-table tbody").replaceChildren(...page.samples.map(sampleRow));
  const shown = page.samples.length ? `${page.offset + 1}–${page.offset + page.samples.length}` : "0";
  $("#page-info").textContent = `${shown} of ${page.total}`;
  $("#prev-page").disabled = page.offset === 0;
  $("#next-page").disabled = page.offset + page.samples.length >= page.total;
}

function sampleRow(sample) {
  const row = document.createElement("tr");
  row.dataset.id = sample.id;
  const created = new Date(sample.created_at).toLocaleString();
  for (const text of [sample.id, sample.name, sample.photo_id || "—", sample.metadata, created]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.append(cell);
  }
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "delete secondary";
  remove.textContent = "Delete";
  remove.title = "delete this person and all their photos (needs an admin key when keys are set)";
  remove.addEventListener("click", () => deleteSample(sample.id, remove));
  const cell = document.createElement("td");
  cell.append(remove);
  row.append(cell);
  return row;
}

async function deleteSample(id, button) {
  if (!button.classList.contains("confirm")) {
    // A second click confirms: no modal dialog.
    button.classList.add("confirm");
    button.textContent = "Really delete?";
    return;
  }
  try {
    await api("DELETE", `samples?id=${encodeURIComponent(id)}`); // any id, "/" included
  } catch (error) {
    setStatus($("#samples-status"), `Could not delete ${id}: ${error.message}`, "error");
    return;
  }
  await loadSamples();
  if (state.photo) await recognise();
}

// --- wiring ----------------------------------------------------------------------------------

function wireDropZone() {
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    loadPhoto(event.dataTransfer.files[0]);
  });
  $("#photo-input").addEventListener("change", (event) => loadPhoto(event.target.files[0]));
}

function wireKey() {
  const input = $("#api-key");
  input.value = sessionStorage.getItem(KEY_STORAGE) || "";
  const save = () => {
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    loadSamples();
  };
  input.addEventListener("change", save);
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
}

function wireSamples() {
  $("#sample-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    state.offset = 0;
    loadSamples();
  });
  $("#prev-page").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    loadSamples();
  });
  $("#next-page").addEventListener("click", () => {
    state.offset += PAGE_SIZE;
    loadSamples();
  });
}

wireKey();
wireDropZone();
wireSamples();
$("#enrol-form").addEventListener("submit", enrolSelectedFace);
$("#enrol-cancel").addEventListener("click", closeEnrolForm);
loadSamples();
