// The chat page: wires the model picker, load progress, model card, settings, storage panel and
// the chat / completion views to the wick API (../wick.js).
//
// Stable selectors for automated tests (data-testid):
//   model-select (options carry data-stored="true|false" and data-runnable="true|false": false
//   for a stored model this version cannot run), model-hint, model-url, model-url-error,
//   model-file (the file input), load-button, cancel-button, unload-button,
//   progress (data-phase="download|store|load|ready", aria-valuenow 0-100), progress-detail,
//   status (data-state="idle|loading|ready|error|lost"),
//   header-model, backend-badge, menu-button, new-chat-button, mode-chat, mode-completion,
//   prompt, send-button, stop-button, composer, empty-state, choose-model, suggestion,
//   messages; message (chat; data-role="user|assistant", data-state="streaming|done|stopped|error"),
//   inside an assistant message: stats, message-flag, retry-button;
//   document, segment (completion mode; same data-role / data-state), document-stats, document-flag,
//   error-banner (data-kind=<WickError kind>), error-title, error-message, error-dismiss,
//   error-action (a button in the banner: load the model again), empty-lead,
//   model-card, card-name, card-architecture, card-features, card-parameters, card-file-size, card-quantization,
//   card-quant-types, card-context, card-vocab, card-chat-template, card-license, card-backend,
//   card-build, card-threads, card-isolated, card-load-time, isolation-note,
//   settings-toggle, settings, setting-<name> for every setting (inputs also carry name=<name>:
//   temperature, top_p, top_k, min_p, repetition_penalty, max_tokens, seed, stop, system_prompt,
//   context, threads), setting-<name>-error, settings-reset,
//   storage-toggle, storage-panel, storage-list, storage-row (data-model-id, data-runnable),
//   storage-unsupported (why this version cannot run it), delete-model
//   (data-model-id), storage-usage, persist-button, persist-status, drop-overlay.
import { ChatView } from './chat.js';
import { CompletionView } from './completion.js';
import { byId, loadJson, saveJson } from './dom.js';
import { renderEmptyState } from './empty-state.js';
import { describeError, ErrorBanner } from './errors-view.js';
import { modelLabel, plainName } from './format.js';
import { backendBadge, renderModelCard } from './model-card.js';
import { ModelPicker } from './models.js';
import { LoadProgress } from './progress.js';
import { FIELDS, Settings } from './settings.js';
import { StoragePanel } from './storage-panel.js';
import { consumeStream } from './stream.js';

const MODE_KEY = 'wick.mode';
const NARROW = window.matchMedia('(max-width: 900px)');

const app = byId('app');
const prompt = byId('prompt');
const sendButton = byId('send-button');
const stopButton = byId('stop-button');
const newChatButton = byId('new-chat');
const modeInputs = { chat: byId('mode-chat'), completion: byId('mode-completion') };
const banner = new ErrorBanner(byId('error-banner'));

const state = {
  engine: null,
  info: null,
  label: '',
  /** AbortController of the load in progress. */
  loading: null,
  loadingLabel: '',
  /** AbortController of the generation in progress. */
  generating: null,
  /** The load request of the model loaded (to load it again after its engine died). */
  request: null,
  mode: 'chat',
  preferredMode: loadJson(MODE_KEY) === 'completion' ? 'completion' : 'chat',
};

function showError(err) {
  if (err?.kind === 'aborted') return;
  banner.show(err);
}

// Nothing may end as an uncaught rejection: whatever slips through shows as a banner.
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  showError(e.reason);
});
window.addEventListener('error', (e) => {
  if (e.error) showError(e.error);
});

const settings = new Settings(byId('settings-panel'), byId('settings-body'), byId('settings-summary'));
const progress = new LoadProgress({
  status: byId('load-status'),
  box: byId('load-progress'),
  bar: byId('progress-bar'),
  fill: byId('progress-fill'),
  phase: byId('progress-phase'),
  detail: byId('progress-detail'),
  cancel: byId('cancel-button'),
  unload: byId('unload-button'),
});
const chat = new ChatView(byId('messages'), byId('conversation'), { change: refreshView, retry: retryLastTurn });
const completion = new CompletionView(
  byId('document'),
  { flag: byId('doc-flag'), stats: byId('doc-stats') },
  byId('conversation'),
  { change: refreshView },
);

let wick;
try {
  wick = await import('../wick.js');
} catch (err) {
  progress.failed('the engine script did not load');
  banner.show({ message: `wick.js could not be loaded (${err?.message ?? err}). Check that the page is served with wick.js next to it.` });
}

const picker = wick
  ? new ModelPicker(
      {
        select: byId('model-select'),
        hint: byId('model-hint'),
        url: byId('model-url'),
        urlError: byId('model-url-error'),
        load: byId('load-button'),
        file: byId('model-file'),
        fileButton: byId('model-file-button'),
        overlay: byId('drop-overlay'),
      },
      wick,
      { load: loadModel, error: showError },
    )
  : null;
const storage = wick
  ? new StoragePanel(
      {
        list: byId('storage-list'),
        usage: byId('storage-usage'),
        usageBar: byId('storage-usage-bar'),
        usageFill: byId('storage-usage-fill'),
        persist: byId('persist-button'),
        persistStatus: byId('persist-status'),
        summary: byId('storage-summary'),
      },
      wick,
      { loadedId: () => state.info?.modelId ?? null, deleted: () => picker.refreshStored(), error: showError },
    )
  : null;

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * Loads a model. The model loaded before stays usable while the new one downloads or is stored,
 * and is unloaded only when the new one starts reading into memory (or is ready): a mistyped
 * URL or a cancelled download leaves the conversation as it was.
 */
async function loadModel(request) {
  const checked = settings.read();
  const invalid = invalidSettings(checked, { engine: true });
  if (invalid.length) {
    showInvalidSettings(invalid);
    return;
  }
  state.loading?.abort();
  stopGeneration();
  banner.clear();
  const controller = new AbortController();
  state.loading = controller;
  state.loadingLabel = modelLabel(request.label);
  progress.start(state.loadingLabel, firstPhase(request.model));
  picker.setBusy(true);
  refreshView();
  const current = () => state.loading === controller;
  let loaded = false;
  try {
    const engine = await wick.createEngine({
      ...checked.engine,
      model: request.model,
      ...(request.sha256 && { sha256: request.sha256 }),
      signal: controller.signal,
      onProgress: (p) => {
        if (!current()) return;
        progress.update(p);
        if (p.phase === 'load' && state.engine) releaseEngine();
      },
    });
    if (!current()) {
      await engine.unload().catch(() => {});
      return;
    }
    await releaseEngine();
    const info = engine.info();
    state.engine = engine;
    state.info = info;
    state.request = request;
    engine.addEventListener('lost', (e) => engineLost(engine, e.detail));
    loaded = true;
    progress.ready(info);
    showModel(info, request.label);
    if (NARROW.matches) setSidebar(false);
    prompt.focus({ preventScroll: true });
  } catch (err) {
    if (!current()) return;
    const kept = state.engine ? state.label : null;
    if (controller.signal.aborted || err?.kind === 'aborted') {
      progress.cancelled(kept);
    } else {
      progress.failed(describeError(err).title, kept);
      // A worker that died while loading can be tried again (it may have run out of memory).
      banner.show(err, err?.kind === 'worker' ? { action: { label: 'Try again', run: () => loadModel(request) } } : {});
    }
  } finally {
    if (current()) {
      state.loading = null;
      picker.setBusy(false);
      refreshView();
      await picker.refreshStored();
      if (loaded) picker.showLoaded(state.info.modelId);
      await storage.refresh();
    }
  }
}

/** What a load starts with: a download, a copy of a local file, or reading storage. */
function firstPhase(model) {
  if (typeof Blob !== 'undefined' && (model instanceof Blob || model?.file instanceof Blob)) return 'store';
  if (typeof model === 'string' || model instanceof URL || model?.url) return 'download';
  return 'load';
}

function showModel(info, fileLabel) {
  const name = modelLabel(fileLabel) || info.card?.name || info.modelId;
  state.label = name;
  byId('header-model').textContent = name;
  byId('header-model').title = plainName(fileLabel);
  const badge = byId('backend-badge');
  badge.textContent = backendBadge(info);
  badge.hidden = false;
  document.title = `${name} · wick`;
  renderModelCard(byId('model-card'), info, fileLabel);
  byId('card-panel').hidden = false;
  // A template that does not parse (the engine loads the model anyway) means Complete mode only.
  const templateError = info.card?.chat_template_error || null;
  const canChat = Boolean(info.card?.has_chat_template) && !templateError;
  modeInputs.chat.disabled = !canChat;
  modeInputs.chat.parentElement.title = canChat
    ? "Chat with the model's chat template"
    : templateError
      ? `This model's chat template is broken: ${plainName(templateError)}`
      : 'This model has no chat template';
  setMode(canChat ? state.preferredMode : 'completion');
}

/** Ends the current engine (if any) and clears what showed it. */
async function releaseEngine() {
  const engine = state.engine;
  state.engine = null;
  state.info = null;
  byId('header-model').textContent = 'No model loaded';
  byId('header-model').removeAttribute('title');
  byId('backend-badge').hidden = true;
  byId('card-panel').hidden = true;
  document.title = 'wick · private chat in your browser';
  modeInputs.chat.disabled = false;
  refreshView();
  if (engine) await engine.unload().catch(showError);
}

/**
 * The engine's worker died (any `worker` error, or the engine's `lost` event): it cannot be used
 * again, whatever its request was doing (even one already stopped). Shows so, with a button that
 * loads the same model again; sending stays off until then.
 */
async function engineLost(engine, error) {
  if (state.engine !== engine) return; // already handled, or replaced
  const label = state.label;
  const request = state.request;
  stopGeneration();
  await releaseEngine();
  progress.lost(label);
  banner.show(error, request ? { action: { label: 'Load the model again', run: () => loadModel(request) } } : {});
  await storage.refresh();
}

byId('cancel-button').addEventListener('click', () => {
  byId('cancel-button').disabled = true;
  state.loading?.abort();
});

byId('unload-button').addEventListener('click', async () => {
  stopGeneration();
  await releaseEngine();
  progress.idle('Model unloaded');
  await storage.refresh();
});

// ---------------------------------------------------------------------------------------------
// Generation

function setMode(mode, { remember = false } = {}) {
  if (mode === 'chat' && modeInputs.chat.disabled) mode = 'completion';
  if (mode !== state.mode) stopGeneration();
  state.mode = mode;
  if (remember) {
    state.preferredMode = mode;
    saveJson(MODE_KEY, mode);
  }
  modeInputs[mode].checked = true;
  byId('messages').hidden = mode !== 'chat';
  byId('document-view').hidden = mode !== 'completion';
  byId('new-chat-label').textContent = mode === 'chat' ? 'New chat' : 'New text';
  byId('send-label').textContent = mode === 'chat' ? 'Send' : 'Continue';
  byId('prompt-label').textContent = mode === 'chat' ? 'Message' : 'Text to continue';
  byId('composer-hint').textContent = mode === 'chat' ? 'Enter to send · Shift+Enter for a new line' : 'Enter to continue · Shift+Enter for a new line';
  prompt.setAttribute('enterkeyhint', mode === 'chat' ? 'send' : 'go');
  refreshView();
}

for (const input of Object.values(modeInputs)) {
  input.addEventListener('change', () => {
    if (input.checked) setMode(input.value, { remember: true });
  });
}

/** Sends the prompt box (or `text`: a suggestion, a retried question) in the current mode. */
async function send(given = null) {
  if (!state.engine || state.loading || state.generating) return;
  const fromPrompt = given === null;
  const text = fromPrompt ? prompt.value : given;
  const checked = settings.read();
  const invalid = invalidSettings(checked, { engine: false });
  if (invalid.length) {
    showInvalidSettings(invalid);
    return;
  }
  if (state.mode === 'chat') {
    const content = text.trim();
    if (!content) return;
    const messages = [];
    if (checked.systemPrompt) messages.push({ role: 'system', content: checked.systemPrompt });
    messages.push(...chat.history(), { role: 'user', content });
    if (fromPrompt) clearPrompt();
    chat.addUser(content);
    const handle = chat.addAssistant();
    await generate(
      handle,
      (signal) => state.engine.chat.completions.create({ ...checked.sampling, messages, stream: true, signal }),
      (choice) => choice.delta?.content ?? '',
      // A thinking model's reasoning is shown apart, collapsed; it is not sent back.
      { pick: (choice) => choice.delta?.reasoning_content ?? '', on: (text) => handle.setReasoning(text) },
    );
  } else {
    const before = completion.text();
    if (!text && !before) return;
    if (fromPrompt) clearPrompt();
    if (text) completion.addPrompt(text);
    const handle = completion.addContinuation();
    await generate(
      handle,
      (signal) => state.engine.completions.create({ ...checked.sampling, prompt: before + text, stream: true, signal }),
      (choice) => choice.text ?? '',
    );
  }
}

/** Asks a failed last question again, in place of the failed turn. */
function retryLastTurn(question) {
  if (state.generating) return;
  if (!state.engine || state.loading) {
    banner.show({ kind: 'worker', message: 'No model is loaded: load one, then retry.' });
    return;
  }
  chat.dropLastTurn();
  send(question);
}

/** The invalid settings that matter to a load (engine) or to a request (the others). */
function invalidSettings(checked, { engine }) {
  return checked.invalid.filter((name) => (FIELDS.find((f) => f.name === name)?.group === 'engine') === engine);
}

/** Names the invalid settings in the banner and opens Settings at the first. */
function showInvalidSettings(names) {
  const labels = names.map((name) => FIELDS.find((f) => f.name === name)?.label ?? name);
  banner.show({ kind: 'invalid_parameter', message: `Fix ${labels.join(', ')} in Settings.` });
  if (NARROW.matches) setSidebar(true);
  settings.reveal(names[0]);
}

async function generate(handle, create, pick, reasoning = null) {
  const controller = new AbortController();
  state.generating = controller;
  banner.clear();
  refreshView();
  const engine = state.engine;
  try {
    const stream = await create(controller.signal);
    const { finish, timings } = await consumeStream(stream, pick, (text) => handle.setText(text), reasoning);
    handle.finish(controller.signal.aborted ? 'stopped' : 'done', { timings, finish });
  } catch (err) {
    if (err?.kind === 'worker') {
      // The engine is gone, stopped request or not: "Stopped" would hide that.
      handle.fail(err);
      await engineLost(engine, err);
    } else if (err?.kind === 'aborted') {
      // Stop: the stream ends with an AbortError carrying what was written (already shown,
      // chunk by chunk) and its timings. No banner: the person asked for it.
      handle.finish('stopped', { timings: err.partial?.timings, finish: 'aborted' });
    } else if (controller.signal.aborted) {
      handle.finish('stopped');
    } else {
      handle.fail(err);
      showError(err);
    }
  } finally {
    if (state.generating === controller) state.generating = null;
    refreshView();
    if (!NARROW.matches && document.activeElement === document.body) prompt.focus({ preventScroll: true });
  }
}

function stopGeneration() {
  state.generating?.abort();
}

function clearPrompt() {
  prompt.value = '';
  autosize();
}

function newConversation() {
  stopGeneration();
  if (state.mode === 'chat') chat.clear();
  else completion.clear();
  prompt.focus();
}

// ---------------------------------------------------------------------------------------------
// View state

/** Empty state, buttons and placeholder for the current state. */
function refreshView() {
  const ready = Boolean(state.engine) && !state.loading;
  const generating = Boolean(state.generating);
  const view = state.mode === 'chat' ? chat : completion;
  const empty = byId('empty-state');
  empty.hidden = !view.isEmpty;
  const shown = state.loading
    ? { state: 'loading', model: state.loadingLabel }
    : {
        state: ready ? state.mode : 'none',
        model: state.label,
        canChat: !modeInputs.chat.disabled,
        templateError: state.info?.card?.chat_template_error || null,
      };
  const key = JSON.stringify(shown);
  if (view.isEmpty && empty.dataset.view !== key) {
    empty.dataset.view = key;
    renderEmptyState(
      empty,
      shown,
      {
        pickModel: () => {
          if (NARROW.matches) setSidebar(true);
          byId('model-select').focus();
        },
        suggest: (idea) => send(idea),
      },
    );
  }
  app.classList.toggle('has-model', ready);
  const hasText = prompt.value.trim() !== '';
  const canSend = ready && !generating && (hasText || (state.mode === 'completion' && !completion.isEmpty));
  sendButton.disabled = !canSend;
  sendButton.hidden = generating;
  stopButton.hidden = !generating;
  newChatButton.disabled = view.isEmpty && !generating;
  prompt.placeholder = !ready
    ? state.loading
      ? 'Loading the model…'
      : 'Load a model to start'
    : state.mode === 'chat'
      ? `Message ${state.label}`
      : completion.isEmpty
        ? 'Write the beginning of a text'
        : 'Add text, or press Enter to continue';
}

function autosize() {
  prompt.style.height = 'auto';
  prompt.style.height = `${Math.min(prompt.scrollHeight, Math.round(window.innerHeight * 0.4))}px`;
}

// ---------------------------------------------------------------------------------------------
// Sidebar (a drawer on narrow screens)

function setSidebar(open) {
  app.classList.toggle('sidebar-open', open);
  byId('menu-button').setAttribute('aria-expanded', String(open));
  byId('sidebar-backdrop').hidden = !open;
  if (open) byId('sidebar').focus({ preventScroll: true });
}

byId('menu-button').addEventListener('click', () => setSidebar(!app.classList.contains('sidebar-open')));
byId('sidebar-backdrop').addEventListener('click', () => setSidebar(false));
NARROW.addEventListener('change', () => setSidebar(false));

// ---------------------------------------------------------------------------------------------
// Composer and keys

byId('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    send();
  }
});
prompt.addEventListener('input', () => {
  autosize();
  refreshView();
});
stopButton.addEventListener('click', () => {
  stopGeneration();
  prompt.focus();
});
newChatButton.addEventListener('click', newConversation);
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || e.defaultPrevented) return;
  if (state.generating) {
    e.preventDefault();
    stopGeneration();
  } else if (app.classList.contains('sidebar-open')) {
    setSidebar(false);
    byId('menu-button').focus();
  }
});

// ---------------------------------------------------------------------------------------------
// Start

byId('sidebar').tabIndex = -1;
setMode(state.preferredMode);
if (wick) {
  progress.idle();
  await Promise.all([picker.refresh(), storage.refresh()]);
} else {
  for (const id of ['load-button', 'model-select', 'model-url', 'model-file', 'persist-button']) byId(id).disabled = true;
}
