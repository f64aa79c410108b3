// Jumping to one message of the conversation that was just opened (a search result): the
// conversation renders its messages when they are read, so this waits for the message to appear.

/** How long the message may take to appear before the jump is given up. */
const WAIT_MS = 5000;

/**
 * Scrolls `root`'s element for message `msgId` into view once it is there, marks it for a
 * moment and moves the focus to it (so a screen reader reads it). Returns a cancel function.
 */
export function jumpToMessage(root: HTMLElement, msgId: string): () => void {
  // Message ids are hex; anything else would not be one of ours (and must not reach a selector).
  if (!/^[0-9a-f]{1,64}$/.test(msgId)) return () => {};
  const find = () => root.querySelector<HTMLElement>(`[data-msg-id="${msgId}"]`);
  let done = false;
  const observer = new MutationObserver(() => tryJump());
  const timer = setTimeout(() => stop(), WAIT_MS);
  function stop() {
    done = true;
    observer.disconnect();
    clearTimeout(timer);
  }
  function tryJump() {
    if (done) return;
    const el = find();
    if (!el) return;
    stop();
    el.scrollIntoView?.({ block: "center" });
    el.tabIndex = -1;
    el.focus({ preventScroll: true });
    el.classList.add("found");
    setTimeout(() => el.classList.remove("found"), 2000);
  }
  observer.observe(root, { childList: true, subtree: true });
  tryJump();
  return stop;
}
