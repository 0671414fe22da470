// Turns a WickError (or any thrown value) into words for people, and shows it as a banner.
import { h } from './dom.js';
import { plainName } from './format.js';

// Per kind: a title, and what the person can do about it.
const ADVICE = {
  download: ['Download failed', 'Check the address and your connection. Files on other sites load only if that site allows cross-origin requests (CORS).'],
  integrity: ['The file is not the expected one', 'The download was damaged or the file changed on the server. Load it again; delete the stored copy first if it keeps failing.'],
  quota: ['Not enough storage', 'Delete stored models in Storage, or free disk space, then load the model again.'],
  storage: ['Browser storage failed', 'Private windows and some settings block storage, and another wick tab may be using the file. Close other wick tabs and try again.'],
  invalid_model: ['Not a GGUF file', 'wick loads GGUF model files (.gguf), the format llama.cpp uses. The file may also be incomplete.'],
  unsupported_model: ['Model not supported', 'This version of wick cannot run this model (the message says why). It stays stored, marked in Storage, where you can delete it; a later version may run it.'],
  tokenizer: ['Tokenizer problem', "The model's tokenizer could not be built from its file. Try another model."],
  chat_template: ['Chat template problem', "This model's chat template could not be used. Switch to Complete mode to use it as plain text completion."],
  context_overflow: ['The conversation is too long', 'Start a new chat, lower Max tokens, or load the model with a larger context in Settings.'],
  invalid_parameter: ['Invalid setting', 'Check the highlighted values in Settings.'],
  aborted: ['Cancelled', ''],
  unsupported_browser: ['This browser cannot run wick', 'Use a recent Chrome, Edge, Firefox or Safari: wick needs WebAssembly SIMD, module workers and the origin private file system.'],
  worker: ['The engine stopped', 'It may have run out of memory. Load the model again; a smaller model or context needs less.'],
  io: ['Could not read the model', 'Load the model again. If it came from storage, delete it there and load it anew.'],
};

/** {kind, title, message, hint} for any thrown value. */
export function describeError(error) {
  const kind = typeof error?.kind === 'string' ? error.kind : 'unknown';
  const [title, hint] = ADVICE[kind] ?? ['Something went wrong', 'Try again. If it keeps happening, reload the page.'];
  const raw = error instanceof Error || typeof error?.message === 'string' ? error.message : String(error ?? '');
  // Messages quote file names and URLs: their direction controls must not act (see plainName).
  const message = raw && raw !== kind ? plainName(raw.charAt(0).toUpperCase() + raw.slice(1)) : '';
  return { kind, title, message, hint };
}

/** The banner at the top of the conversation. */
export class ErrorBanner {
  constructor(root) {
    this.root = root;
  }

  /** @param action {label, run()}: a button that does something about it (load again) */
  show(error, { action } = {}) {
    const { kind, title, message, hint } = describeError(error);
    this.root.dataset.kind = kind;
    this.root.replaceChildren(
      h('div', { class: 'banner-icon', 'aria-hidden': 'true', text: '!' }),
      h(
        'div',
        { class: 'banner-text' },
        h('p', { class: 'banner-title', 'data-testid': 'error-title', text: title }),
        message ? h('p', { class: 'banner-message', 'data-testid': 'error-message', text: message }) : null,
        hint ? h('p', { class: 'banner-hint', text: hint }) : null,
        action
          ? h('button', {
              type: 'button',
              class: 'btn small primary banner-action',
              'data-testid': 'error-action',
              text: action.label,
              onclick: () => {
                this.clear();
                action.run();
              },
            })
          : null,
      ),
      h('button', {
        type: 'button',
        class: 'icon-btn banner-close',
        'aria-label': 'Dismiss',
        'data-testid': 'error-dismiss',
        text: '×',
        onclick: () => this.clear(),
      }),
    );
    this.root.hidden = false;
  }

  clear() {
    this.root.hidden = true;
    this.root.replaceChildren();
    delete this.root.dataset.kind;
  }
}
