// A Vite app that embeds wick from its npm package: one model, one question at a time, the
// answer streamed in. `npm install && npm run build`, then serve dist/ with the model at MODEL.
import { createEngine } from 'wick-llm';

// Same origin as the page (the engine downloads it once into the browser's storage).
const MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';

const $ = (id) => document.getElementById(id);

const engine = await createEngine({
  model: MODEL,
  onProgress: (p) => {
    if (p.total) $('status').textContent = `Loading the model… ${Math.round((100 * p.loaded) / p.total)}%`;
  },
}).catch((e) => {
  $('status').textContent = `Could not load the model (${e.kind}): ${e.message}`;
  throw e;
});
const info = engine.info();
$('status').textContent = `Ready (${info.build} build, ${info.threads} threads)`;
$('question').disabled = $('ask').disabled = false;

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const question = $('question').value.trim();
  if (!question) return;
  $('question').disabled = $('ask').disabled = true;
  $('answer').textContent = '';
  try {
    const stream = await engine.chat.completions.create({
      messages: [{ role: 'user', content: question }],
      max_tokens: 128, temperature: 0, stream: true,
    });
    for await (const chunk of stream) $('answer').textContent += chunk.choices[0]?.delta?.content ?? '';
    $('status').textContent = `Done (${info.build} build, ${info.threads} threads)`;
  } catch (e) {
    $('status').textContent = `Failed (${e.kind ?? e.name}): ${e.message}`;
  } finally {
    $('question').disabled = $('ask').disabled = false;
  }
});
