/**
 * The server's `window/showMessage`, and the events the extension says itself: each is said once.
 *
 * The server tells every editor about some events with `window/showMessage` and, for the same events,
 * answers the extension's command (an error answer, or `{applied: false}`):
 * - an accept or a commit it refused: its message comes first and is the error answer's text as well, so
 *   the extension asks `said(text)` before it shows its own and stays quiet when the server said it;
 * - a proposal VS Code did not apply: the server can only say "the editor declined the edit"; in VS Code
 *   that means the Refactor Preview was discarded or applied with nothing ticked, so `receive` words it
 *   that way (and the extension says nothing more);
 * - an accept that a commit follows: the commit's refusal says why, so the accept's own "was not applied"
 *   is `expect`ed and dropped.
 * Every other message is shown as the server sent it. No VS Code here, so the rules are unit-tested.
 */

/** How long a shown message counts as just shown, and an expectation waits for its message (ms). */
export const MESSAGE_WINDOW_MS = 10_000;

const DECLINED = /^(?:agentls: )?proposal (\S+) was not applied: the editor declined the edit\.?$/;

/** VS Code's reading of the server's "declined" note: what the user did, and what to do now. */
export function notAppliedText(proposalId: string): string {
  return (
    `agentls: proposal ${proposalId} was not applied: the Refactor Preview was discarded or had no change ` +
    "ticked. It is still pending: accept again and tick the files to apply."
  );
}

interface Expectation {
  readonly matches: (text: string) => boolean;
  readonly at: number;
}

export class ServerMessages {
  private readonly shown: { text: string; at: number }[] = [];
  private readonly expected: Expectation[] = [];

  constructor(
    private readonly now: () => number = Date.now,
    private readonly windowMs = MESSAGE_WINDOW_MS,
  ) {}

  /**
   * A `window/showMessage` arrived: the text to show, or undefined when the extension says this event
   * itself (an expectation matched; it is used up).
   */
  receive(text: string): string | undefined {
    this.prune();
    this.shown.push({ text, at: this.now() });
    const i = this.expected.findIndex((e) => e.matches(text));
    if (i >= 0) {
      this.expected.splice(i, 1);
      return undefined;
    }
    const declined = DECLINED.exec(text.trim());
    return declined?.[1] === undefined ? text : notAppliedText(declined[1]);
  }

  /** Drop the next server message for which `matches` holds (within the window); returns its undo. */
  expect(matches: (text: string) => boolean): () => void {
    this.prune();
    const entry: Expectation = { matches, at: this.now() };
    this.expected.push(entry);
    return () => {
      const i = this.expected.indexOf(entry);
      if (i >= 0) {
        this.expected.splice(i, 1);
      }
    };
  }

  /** Whether the server showed `text` (or a message containing it) within the window. */
  said(text: string): boolean {
    this.prune();
    const wanted = text.trim();
    return wanted !== "" && this.shown.some((m) => m.text.includes(wanted));
  }

  private prune(): void {
    const cutoff = this.now() - this.windowMs;
    for (const list of [this.shown, this.expected]) {
      while (list.length > 0 && (list[0]?.at ?? cutoff) < cutoff) {
        list.shift();
      }
    }
  }
}
