// Jumping to one message of the conversation that was just opened (a search result): the
// conversation renders its messages when they are read, so this waits for the message to appear.

/** How long the message may take to appear before the jump is given up. */
const WAIT_MS = 5000;

/**
 * Scrolls `root`'s element for message `msgId` (of `sender`, for a group: ids are chosen by
 * their senders, so only the pair names one message) into view once it is there, marks it for
 * a moment and moves the focus to it (so a screen reader reads it). Returns a cancel function.
 * The ids are compared as data, never put into a selector.
 */
export function jumpToMessage(root: HTMLElement, msgId: string, sender?: string): () => void {
  const find = () =>
    Array.from(root.querySelectorAll<HTMLElement>("[data-msg-id]")).find(
      (el) => el.dataset.msgId === msgId && (sender === undefined || el.dataset.sender === sender),
    );
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
