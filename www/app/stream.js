// Streaming helpers shared by the chat and completion views: reading an engine stream, and
// re-rendering at most once per frame (less often when a render is costly).

/**
 * Reads a chat or completion stream. `pick(choice)` returns the text of one chunk; onText gets
 * the whole text so far. `reasoning` ({pick, on}), for chat: the model's reasoning
 * (`delta.reasoning_content`), apart from the text; `on` gets the whole reasoning so far.
 * Resolves to {text, reasoning, finish, timings} (timings from the last chunk).
 */
export async function consumeStream(stream, pick, onText, reasoning = null) {
  let text = '';
  let thought = '';
  let finish = null;
  let timings = null;
  for await (const chunk of stream) {
    const choice = chunk?.choices?.[0];
    const step = choice && reasoning ? reasoning.pick(choice) : '';
    if (step) {
      thought += step;
      reasoning.on(thought);
    }
    const piece = choice ? pick(choice) : '';
    if (piece) {
      text += piece;
      onText(text);
    }
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (chunk?.timings) timings = chunk.timings;
  }
  return { text, reasoning: thought, finish, timings };
}

/**
 * Runs `render` on the next animation frame, once however often schedule() is called; a render
 * that took t ms is not repeated for 2t ms, so long answers keep the page responsive. The time
 * counted includes the layout the render causes (forced by reading `measure`'s offsetHeight):
 * script time alone leaves out what a long text costs most.
 */
export function frameThrottle(render, measure = document.body) {
  let frame = 0;
  let last = 0;
  let cost = 0;
  const run = () => {
    frame = 0;
    const start = performance.now();
    render();
    void measure?.offsetHeight;
    last = performance.now();
    cost = last - start;
  };
  const tick = (now) => {
    frame = 0;
    if (now - last < cost * 2) frame = requestAnimationFrame(tick);
    else run();
  };
  return {
    schedule() {
      if (!frame) frame = requestAnimationFrame(tick);
    },
    /** Renders now (the final state). */
    flush() {
      if (frame) cancelAnimationFrame(frame);
      run();
    },
  };
}

/** Runs `change` and keeps the scroller pinned to the bottom if it was there before. */
export function keepPinned(scroller, change) {
  const pinned = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  change();
  if (pinned) scroller.scrollTop = scroller.scrollHeight;
}
