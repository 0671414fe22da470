// What the conversation area shows before the first message: what wick is and how to start,
// the loading note, or (with a model ready) a few prompts to try.
import { h, name } from './dom.js';

const CHAT_IDEAS = [
  'Explain how a candle wick works, in three sentences.',
  'Write a haiku about a quiet morning.',
  'Give me three tips for learning a new language.',
];
const COMPLETION_IDEAS = ['Once upon a time, in a village by the sea,', 'The three most useful kitchen tools are', 'Dear diary, today I finally'];

/**
 * @param view {state: 'none'|'loading'|'chat'|'completion', model, canChat, templateError}
 * @param on {pickModel(), suggest(text)}
 */
export function renderEmptyState(root, view, on) {
  const mark = h('div', { class: 'empty-mark', 'aria-hidden': 'true' });
  let content;
  if (view.state === 'loading') {
    content = [
      h('h1', { text: 'Getting the model ready…' }),
      h('p', { class: 'empty-model' }, name(view.model)),
      h('p', { class: 'empty-lead', text: 'The first time, the model downloads into this browser. After that it opens from storage, even offline.' }),
    ];
  } else if (view.state === 'chat' || view.state === 'completion') {
    const chat = view.state === 'chat';
    const lead = chat
      ? 'Ask anything. The conversation stays in this tab.'
      : view.canChat
        ? 'Complete mode: write the start of a text and the model continues it.'
        : view.templateError
          ? [
              "This model's chat template is broken (",
              name(view.templateError),
              '), so it continues text instead of answering. Write a beginning and press Enter.',
            ]
          : 'This model has no chat template, so it continues text instead of answering. Write a beginning and press Enter.';
    content = [
      chat ? h('h1', {}, name(view.model), ' is ready') : h('h1', {}, 'Write a beginning, ', name(view.model), ' continues'),
      h('p', { class: 'empty-lead', 'data-testid': 'empty-lead' }, lead),
      h(
        'div',
        { class: 'suggestions', role: 'list', 'aria-label': 'Try one of these' },
        (chat ? CHAT_IDEAS : COMPLETION_IDEAS).map((idea) =>
          h('button', { type: 'button', class: 'suggestion', role: 'listitem', 'data-testid': 'suggestion', text: idea, onclick: () => on.suggest(idea) }),
        ),
      ),
    ];
  } else {
    content = [
      h('h1', { text: 'Private AI, right in this tab' }),
      h('p', {
        class: 'empty-lead',
        text: 'wick runs open language models on your own device with WebAssembly. Everything stays in this tab: what you type and what the model writes never leave your computer.',
      }),
      h(
        'ol',
        { class: 'steps' },
        step('Pick a model', 'from this server, a web address, or a .gguf file on your disk.'),
        step('Load it', 'it is kept in browser storage, so next time it opens without the network.'),
        step('Chat', 'Enter sends, Shift+Enter starts a new line, Esc stops the answer.'),
      ),
      h('button', { type: 'button', class: 'btn primary', 'data-testid': 'choose-model', text: 'Choose a model', onclick: () => on.pickModel() }),
    ];
  }
  root.replaceChildren(mark, ...content);
}

function step(title, text) {
  return h('li', {}, h('strong', { text: title }), ` ${text}`);
}
