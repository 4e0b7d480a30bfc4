// stylecam's page: plain JavaScript, no build step, no outside files.
'use strict';

const $ = (id) => document.getElementById(id);
// With --token, open the page as /?token=TOKEN: it is sent with every request.
const token = new URLSearchParams(location.search).get('token');
const state = { styles: [], style: null, photo: null, resultUrl: null, busy: false };

function withToken(url) {
  if (!token) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

// fetch() with the token, and every failure turned into a readable Error.
async function api(url, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token) headers.set('Authorization', 'Bearer ' + token);
  let response;
  try {
    response = await fetch(url, { ...options, headers });
  } catch (e) {
    throw new Error('Cannot reach the server (' + e.message + '). Is stylecam serve still running?');
  }
  if (response.ok) return response;
  let message = 'The server answered ' + response.status + ' ' + response.statusText + '.';
  try {
    const body = await response.json();
    if (body && body.error) message = body.error;
  } catch (_) { /* not JSON: keep the status line */ }
  if (response.status === 503) {
    const wait = response.headers.get('Retry-After');
    message += wait ? ' Try again in ' + wait + ' s.' : '';
  }
  const err = new Error(message);
  err.status = response.status;
  throw err;
}

// Tabs -------------------------------------------------------------------------------------
function selectTab(name) {
  clearError();
  for (const t of ['photo', 'live']) {
    const on = t === name;
    $('tab-' + t).setAttribute('aria-selected', String(on));
    $(t).hidden = !on;
  }
  // The stream (and the camera behind it) runs only while the live tab shows it.
  if (name === 'live') startLive(); else stopLive();
}

// Styles -----------------------------------------------------------------------------------
function fillSelect(select, names, keepFirst) {
  const current = select.value;
  while (select.options.length > (keepFirst ? 1 : 0)) select.remove(keepFirst ? 1 : 0);
  for (const n of names) select.add(new Option(n, n));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

function renderStyles() {
  const box = $('swatches');
  box.replaceChildren();
  for (const s of state.styles) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'swatch';
    b.dataset.name = s.name;
    b.setAttribute('role', 'radio');
    b.setAttribute('aria-checked', String(s.name === state.style));
    const img = document.createElement('img');
    img.src = withToken(s.swatch);
    img.alt = '';
    img.loading = 'lazy';
    const label = document.createElement('span');
    label.textContent = displayName(s.name) + (s.builtin ? '' : ' (yours)');
    b.title = s.name;
    b.append(img, label);
    b.addEventListener('click', () => pickStyle(s.name));
    box.append(b);
  }
  const names = state.styles.map((s) => s.name);
  fillSelect($('style2'), names, true);
  fillSelect($('live-style'), names, false);
  fillSelect($('live-style2'), names, true);
}

// `Robert_Delaunay,_1906,_Portrait` reads as `Robert Delaunay, 1906, Portrait` (and can wrap).
function displayName(name) {
  return name.replace(/_/g, ' ');
}

function pickStyle(name) {
  state.style = name;
  for (const b of document.querySelectorAll('.swatch')) {
    b.setAttribute('aria-checked', String(b.dataset.name === name));
  }
  updateGo();
}

async function loadStyles() {
  const r = await api('/api/styles');
  state.styles = (await r.json()).styles;
  if (!state.style && state.styles.length) state.style = state.styles[0].name;
  renderStyles();
}

// Photo ------------------------------------------------------------------------------------
function setPhoto(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith('image/')) {
    showError(file.name + ' is not a picture: choose a PNG, JPEG, WebP, BMP or GIF file.');
    return;
  }
  clearError();
  state.photo = file;
  const orig = $('original-img');
  if (orig.src.startsWith('blob:')) URL.revokeObjectURL(orig.src);
  orig.src = URL.createObjectURL(file);
  $('drop-text').textContent = file.name + ' (drop or choose another)';
  orig.onerror = () => {
    if (state.photo !== file) return;
    state.photo = null;
    orig.removeAttribute('src');
    $('drop-text').textContent = 'Drop a photo here, or choose one';
    showError(file.name + ' cannot be read as a picture (is it damaged, or not a picture at ' +
      'all?): choose a PNG, JPEG, WebP, BMP or GIF file.');
    updateGo();
  };
  updateGo();
}

function updateGo() {
  $('go').disabled = state.busy || !state.photo || !state.style;
}

function syncOutputs() {
  for (const id of ['brush', 'strength', 'mix', 'live-brush', 'live-strength', 'live-mix']) {
    $(id + '-value').textContent = $(id).value;
  }
  const two = $('style2').value !== '';
  $('combine').disabled = !two;
  $('mix').disabled = !two || $('combine').value !== 'mix';
  const liveTwo = $('live-style2').value !== '';
  $('live-combine').disabled = !liveTwo;
  $('live-mix').disabled = !liveTwo || $('live-combine').value !== 'mix';
}

async function stylize() {
  if (!state.photo || !state.style) return;
  clearError();
  state.busy = true;
  updateGo();
  const result = $('result-img');
  result.dataset.state = 'working';
  $('status').textContent = 'Stylising…';
  const form = new FormData();
  form.append('image', state.photo, state.photo.name || 'photo');
  form.append('style', state.style);
  form.append('brush', $('brush').value);
  form.append('strength', $('strength').value);
  form.append('preserve_color', $('preserve').checked ? 'true' : 'false');
  form.append('size', $('size').value);
  if ($('style2').value) {
    form.append('style2', $('style2').value);
    if ($('combine').value === 'mix') form.append('mix', $('mix').value);
    else form.append('split', $('combine').value);
  }
  try {
    const r = await api('/api/stylize', { method: 'POST', body: form });
    const blob = await r.blob();
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(blob);
    await new Promise((resolve, reject) => {
      result.onload = resolve;
      result.onerror = () => reject(new Error('The result could not be shown.'));
      result.src = state.resultUrl;
    });
    const dl = $('download');
    dl.href = state.resultUrl;
    dl.download = 'stylecam-' + state.style + '.png';
    dl.hidden = false;
    const ms = r.headers.get('X-Inference-Ms');
    $('status').textContent = 'Done' + (ms ? ' in ' + (ms / 1000).toFixed(2) + ' s' : '') + '.';
    result.dataset.state = 'done';
    // On a phone the result is below the button: bring it into view.
    result.closest('figure').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  } catch (e) {
    result.dataset.state = 'error';
    $('status').textContent = '';
    showError(e.message);
  } finally {
    state.busy = false;
    updateGo();
  }
}

async function addStyle() {
  const file = $('style-file').files[0];
  const name = $('style-name').value.trim();
  if (!file || !name) {
    showError('Choose a picture and give the style a name (letters, digits, - and _).');
    return;
  }
  clearError();
  const form = new FormData();
  form.append('name', name);
  form.append('image', file, file.name);
  try {
    await api('/api/styles', { method: 'POST', body: form });
    await loadStyles();
    pickStyle(name);
    $('style-name').value = '';
    $('style-file').value = '';
  } catch (e) {
    showError(e.message);
  }
}

// Live -------------------------------------------------------------------------------------
let liveTimer = null;
let controlsTimer = null;

function streamUrl() {
  return withToken('/stream.mjpeg?fps=10&width=640');
}

function startLive() {
  const img = $('live-img');
  img.src = streamUrl();
  $('stream-url').textContent = new URL(streamUrl(), location.href).href;
  loadControls().catch((e) => showError(e.message));
  pollLive();
  liveTimer = setInterval(pollLive, 2000);
}

function stopLive() {
  $('live-img').removeAttribute('src');
  if (liveTimer) clearInterval(liveTimer);
  liveTimer = null;
}

async function pollLive() {
  try {
    const r = await api('/healthz');
    const live = (await r.json()).live;
    const parts = [];
    if (live.source) parts.push(live.source);
    if (live.inference_fps) parts.push('stylised at ' + live.inference_fps.toFixed(1) + ' fps');
    if (live.message) parts.push(live.message);
    if (!live.running) parts.push('starting…');
    $('live-status').textContent = parts.join(' · ');
  } catch (e) {
    $('live-status').textContent = e.message;
  }
}

function showControls(c) {
  $('live-style').value = c.style;
  $('live-style2').value = c.style2 || '';
  $('live-combine').value = c.split || 'mix';
  $('live-mix').value = c.mix;
  $('live-brush').value = c.brush;
  $('live-strength').value = c.strength;
  $('live-preserve').checked = c.preserve_color;
  $('live-resolution').value = c.resolution;
  syncOutputs();
}

async function loadControls() {
  const r = await api('/api/controls');
  showControls(await r.json());
}

function sendControls() {
  clearTimeout(controlsTimer);
  controlsTimer = setTimeout(async () => {
    const split = $('live-combine').value;
    const body = {
      style: $('live-style').value,
      style2: $('live-style2').value || null,
      mix: Number($('live-mix').value),
      split: split === 'mix' ? null : split,
      brush: Number($('live-brush').value),
      strength: Number($('live-strength').value),
      preserve_color: $('live-preserve').checked,
      resolution: $('live-resolution').value,
    };
    try {
      await api('/api/controls', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      clearError();
    } catch (e) {
      showError(e.message);
    }
  }, 150);
}

// Wiring -----------------------------------------------------------------------------------
function init() {
  $('tab-photo').addEventListener('click', () => selectTab('photo'));
  $('tab-live').addEventListener('click', () => selectTab('live'));
  $('error-close').addEventListener('click', clearError);
  $('photo-input').addEventListener('change', (e) => setPhoto(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    setPhoto(e.dataTransfer.files[0]);
  });
  for (const id of ['brush', 'strength', 'mix', 'style2', 'combine']) {
    $(id).addEventListener('input', syncOutputs);
  }
  $('go').addEventListener('click', stylize);
  $('style-add').addEventListener('click', addStyle);
  for (const id of ['live-style', 'live-style2', 'live-combine', 'live-mix', 'live-brush',
    'live-strength', 'live-preserve', 'live-resolution']) {
    $(id).addEventListener('input', () => { syncOutputs(); sendControls(); });
  }
  $('live-img').addEventListener('error', () => {
    if ($('live').hidden || !$('live-img').getAttribute('src')) return;
    showError('The live stream stopped or could not start. The server may be busy (too many ' +
      'viewers) or gone; switch tabs to try again.');
  });
  syncOutputs();
  loadStyles().catch((e) => showError('Cannot load the styles: ' + e.message));
}

init();
