/**
 * What the extension says about a server command's answer: a refusal, or an accept VS Code did not apply.
 * Each is said once, in the server's words.
 *
 * To the extension (`initializationOptions.agentlsClient`) the server says these only in its answer, and
 * shows other editors a `window/showMessage` as well, so nothing here waits for or filters its messages:
 * - a refused or failed command is its error answer, whose text the server words for the user ("agentls
 *   did not apply proposal p1: ...", "proposal p1 was already accepted; ..."): `failureText` says it as
 *   it is, naming what the extension was doing only when the answer does not say it;
 * - an accept VS Code did not apply is `{applied: false, failureReason}`: `notAppliedText` says the
 *   reason; the server's generic "the editor declined the edit" means, in VS Code, that the Refactor
 *   Preview was discarded or applied with nothing ticked, so it is worded that way.
 * No VS Code here, so the wording is unit-tested.
 */

/** The server's reason when the editor gave none. */
const DECLINED = "the editor declined the edit";

/** What the extension was doing when a command failed: "could not accept" and "proposal p1". */
export interface Attempt {
  readonly doing: string;
  readonly subject: string;
}

/** Whether `text` names `subject` ("proposal p1", not "proposal p10"). */
function names(text: string, subject: string): boolean {
  const escaped = subject.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?:^|[^\\w-])${escaped}(?![\\w-])`).test(text);
}

/**
 * The notification for a command's error answer `message` (`attempt`: what the extension asked, if it
 * asked). The server's own sentences ("agentls did not apply proposal p1: ...") are said as they are; an
 * answer that names the subject gets only the "agentls: " in front; any other follows the attempt
 * ("agentls: could not accept proposal p1: the server stopped before it answered").
 */
export function failureText(message: string, attempt?: Attempt): string {
  const text = message.trim() === "" ? "no reason given" : message.trim();
  if (/^agentls\b/.test(text)) {
    return text;
  }
  if (attempt === undefined || names(text, attempt.subject)) {
    return `agentls: ${text}`;
  }
  return `agentls: ${attempt.doing} ${attempt.subject}: ${text}`;
}

/**
 * The notification for an accept VS Code did not apply: the answer's `failureReason` (the server's words,
 * with what to do), or, for "the editor declined the edit", what the user did in VS Code and what to do.
 */
export function notAppliedText(proposalId: string, reason: string | undefined): string {
  const given = (reason ?? "").trim().replace(/\.$/, "");
  const why =
    given === "" || given === DECLINED
      ? "the Refactor Preview was discarded or had no change ticked. It is still pending: accept again " +
        "and tick the files to apply."
      : `${given}.`;
  return `agentls: proposal ${proposalId} was not applied: ${why}`;
}
