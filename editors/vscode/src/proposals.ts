/**
 * Proposals in the editor: the notification when one is ready, its diff, and Accept / Reject.
 *
 * - `agentls/proposalReady` shows a notification with Show Diff, Accept and Reject; the proposal stays
 *   pending (status bar, palette commands, the server's code lenses) until one of them is chosen.
 * - Show Diff asks the server for the proposal (`agentls/proposal`) and opens `vscode.diff` per file on two
 *   read-only documents of the `agentls-proposal:` scheme, served by this class; their editor title has
 *   Accept and Reject.
 * - An open diff tab follows the user's text: a pause in typing (`REFRESH_DELAY_MS`) in a file whose diff
 *   is open recomputes both sides from its text now and the proposal as the server has it now, so the tab
 *   shows what Accept would do. What it shows, at Show Diff and after each edit, is `pure/proposal.ts:
 *   liveSidesOf`'s: while the diff does not apply to the user's text, a note and the patch on both sides
 *   (with Show Diff's warning, said as it stops applying, not per keystroke); the side-by-side diff again
 *   as soon as it applies (the user undid the edit).
 * - Accept and Reject run the server's commands. On Accept the server sends `workspace/applyEdit`, which
 *   vscode-languageclient applies (VS Code previews it when the edit asks for confirmation); nothing is
 *   written by this extension itself.
 * - Per file and per hunk (the diff tab's title and context menu): accepting sends `agentls.accept
 *   {hunks}` and shows what is left; rejecting is noted here (`pure/review.ts`) until every hunk left is
 *   rejected, or the rest is accepted without the rejected hunks. The hunk at the cursor is looked up
 *   where the tab shows it (`hunksAsShown`: the server numbers lines in the text the proposal was made
 *   from, the tab shows it on the user's text, which may have lines typed above a hunk since).
 * - Accept and Commit offers the proposal's commit message (its subject in an input box, the body kept),
 *   then sends `agentls.acceptAndCommit`; nothing is committed unless the user confirms the box.
 * - A refusal (an error answer) or an accept VS Code did not apply is said once, from the answer, in the
 *   server's words (`pure/messages.ts`): the server does not also show it to this extension.
 */

import * as vscode from "vscode";

import { ContextKey, PROPOSAL_SCHEME, Request } from "./constants";
import { acceptAndCommitCall, acceptCall, rejectCall, type CommandCall } from "./pure/args";
import {
  acceptApplied,
  commitOf,
  failureReasonOf,
  parseProposal,
  pendingHunksOf,
  type ProposalDetails,
  type ProposalReady,
} from "./pure/protocol";
import { failureText, notAppliedText, type Attempt } from "./pure/messages";
import { acceptPlan, hunkAtLine, hunksAsShown, joinMessage, splitMessage } from "./pure/review";
import {
  baseName,
  decodeAddress,
  diffTitle,
  encodeAddress,
  liveSidesOf,
  notificationText,
  patchShownText,
  type Side,
} from "./pure/proposal";
import type { ProposalStore } from "./pure/state";

/** What this module needs of the running client. */
export interface ServerLink {
  /** `workspace/executeCommand`; rejects with the server's error. Undefined when the server is not running. */
  execute(call: CommandCall): Promise<unknown>;
  request(method: string, params: object): Promise<unknown>;
}

/** How long typing pauses before an open diff tab follows it. */
const REFRESH_DELAY_MS = 250;

/** A file's diff tab that follows the user's text. */
interface LiveTab {
  readonly proposalId: string;
  readonly fileUri: vscode.Uri;
  /** The document the "before" side is (the old path of a rename), as a normalized URI. */
  readonly source: string;
  /** The side-by-side diff's "after" document, to tell whether the tab is open. */
  readonly after: vscode.Uri;
  /** Whether the diff applied to the user's text when the tab last changed. */
  readonly applies: boolean;
  /** Which Show Diff opened it: a refresh started before the next one drops its result. */
  readonly opened: number;
}

export class Proposals implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: { dispose(): unknown }[] = [];
  /** proposalId -> the hunks the user rejected (kept until the proposal is settled). */
  private readonly rejected = new Map<string, Set<string>>();
  /** The diff tabs that follow the user's text, by proposal and file (`liveKey`). */
  private readonly live = new Map<string, LiveTab>();
  private opened = 0;
  /** Per document (normalized URI): the refresh of its diff tabs that waits for a pause in typing. */
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly store: ProposalStore,
    private readonly link: () => ServerLink | undefined,
    private readonly onStoreChange: () => void,
  ) {
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, this),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        this.updateDiffContext(editor);
      }),
      vscode.workspace.onDidChangeTextDocument((event) => {
        this.onEdit(event);
      }),
      this.changed,
      {
        dispose: () => {
          this.timers.forEach((timer) => {
            clearTimeout(timer);
          });
        },
      },
    );
    this.updateDiffContext(vscode.window.activeTextEditor);
  }

  /** How many proposals wait for a decision. */
  get pendingCount(): number {
    return this.store.size;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    const text = this.contents.get(uri.toString());
    if (text !== undefined) {
      return text;
    }
    const address = decodeAddress(uri.query);
    return address === undefined
      ? ""
      : `This side of agentls proposal ${address.proposalId} is gone: the proposal was accepted or ` +
          "rejected, or VS Code was reloaded. Close this tab.";
  }

  /**
   * `agentls/proposalReady`: remember it and offer the three choices. A run that changed no file (an
   * answer) has nothing to decide; the server shows it, and `openAnswer` opens it in full as well.
   */
  async onReady(proposal: ProposalReady, openAnswer: boolean): Promise<void> {
    if (proposal.files.length === 0) {
      if (openAnswer) {
        await this.showAnswer(proposal);
      }
      return;
    }
    this.store.add(proposal);
    this.onStoreChange();
    const choice = await vscode.window.showInformationMessage(
      notificationText(proposal.summary, proposal.files.length),
      "Show Diff",
      "Accept",
      "Reject",
    );
    if (choice !== "Show Diff" && this.store.get(proposal.proposalId) === undefined) {
      return; // settled meanwhile (a code lens, the diff's title bar): the notification is stale
    }
    if (choice === "Show Diff") {
      await this.showDiff(proposal.proposalId);
    } else if (choice === "Accept") {
      await this.accept(proposal.proposalId);
    } else if (choice === "Reject") {
      await this.reject(proposal.proposalId);
    }
  }

  /** The answer to a question, beside the editor, as Markdown (a message would cut it short). */
  private async showAnswer(proposal: ProposalReady): Promise<void> {
    const summary = proposal.summary.trim() === "" ? "The run finished without changes." : proposal.summary;
    const doc = await vscode.workspace.openTextDocument({ language: "markdown", content: summary });
    await vscode.window.showTextDocument(doc, {
      preview: true,
      preserveFocus: true,
      viewColumn: vscode.ViewColumn.Beside,
    });
  }

  /**
   * The proposal a command is about: its argument (an id, `{proposalId}`, or the URI of a proposal document
   * as editor-title menus pass it), else the active proposal document, else the only pending one, else
   * the user's pick. Undefined when there is none or the user cancelled.
   */
  async resolve(arg: unknown): Promise<string | undefined> {
    if (typeof arg === "string" && arg !== "") {
      return arg;
    }
    if (arg instanceof vscode.Uri) {
      const fromUri = this.idOf(arg);
      if (fromUri !== undefined) {
        return fromUri;
      }
    } else if (typeof arg === "object" && arg !== null && "proposalId" in arg) {
      const id = arg.proposalId;
      if (typeof id === "string" && id !== "") {
        return id;
      }
    }
    const active = vscode.window.activeTextEditor?.document.uri;
    const fromActive = active === undefined ? undefined : this.idOf(active);
    if (fromActive !== undefined) {
      return fromActive;
    }
    const pending = this.store.list();
    if (pending.length === 0) {
      void vscode.window.showInformationMessage("agentls: no proposal waits for a decision.");
      return undefined;
    }
    if (pending.length === 1) {
      return pending[0]?.proposalId;
    }
    const picked = await vscode.window.showQuickPick(
      pending.map((p) => ({
        label: p.summary.split("\n")[0] ?? p.proposalId,
        description: p.files.map((f) => baseName(f.uri)).join(", "),
        detail: `proposal ${p.proposalId} · run ${p.runId}`,
        proposalId: p.proposalId,
      })),
      { placeHolder: "Which proposal?" },
    );
    return picked?.proposalId;
  }

  private idOf(uri: vscode.Uri): string | undefined {
    return uri.scheme === PROPOSAL_SCHEME ? decodeAddress(uri.query)?.proposalId : undefined;
  }

  async showDiff(proposalId: string): Promise<void> {
    const link = this.requireLink();
    if (link === undefined) {
      return;
    }
    const details = await this.details(proposalId, link);
    if (details === undefined) {
      return;
    }
    if (details.files.length === 0) {
      void vscode.window.showInformationMessage(`agentls: proposal ${proposalId} changes no file.`);
      return;
    }
    const problems: string[] = [];
    const rejected = this.rejected.get(proposalId) ?? new Set<string>();
    this.forgetLive(proposalId);
    const opened = ++this.opened;
    for (const file of details.files) {
      if (file.hunks.length > 0 && file.hunks.every((h) => rejected.has(h.id))) {
        continue; // the user rejected all of this file
      }
      const source = file.oldUri ?? file.uri;
      // A diff that does not apply gets the same tab, with the note and the patch, so that it follows the
      // user's text too: undoing the edit brings the side-by-side diff.
      const sides = liveSidesOf(file, await currentText(source), true);
      if (sides.problem !== undefined) {
        problems.push(sides.problem);
      }
      const fileUri = vscode.Uri.parse(file.uri);
      const before = this.put(proposalId, "before", fileUri, sides.before);
      const after = this.put(proposalId, "after", fileUri, sides.after);
      const tab = { proposalId, fileUri, source: vscode.Uri.parse(source).toString(), after, opened };
      this.live.set(liveKey(proposalId, fileUri), { ...tab, applies: sides.applies });
      await vscode.commands.executeCommand("vscode.diff", before, after, diffTitle(file), {
        preview: false,
      });
    }
    if (problems.length > 0) {
      void vscode.window.showWarningMessage(patchShownText(problems));
    }
  }

  /** The user edited a document: its open diff tabs follow once the typing pauses. */
  private onEdit(event: vscode.TextDocumentChangeEvent): void {
    const source = event.document.uri.toString();
    if (event.contentChanges.length === 0 || ![...this.live.values()].some((t) => t.source === source)) {
      return;
    }
    clearTimeout(this.timers.get(source));
    const timer = setTimeout(() => {
      this.timers.delete(source);
      void this.refresh(source);
    }, REFRESH_DELAY_MS);
    this.timers.set(source, timer);
  }

  /**
   * Show the open diff tabs of `source` on its text now, with the proposal as the server has it now
   * (none once it was accepted or rejected; what is left after a partial accept).
   */
  private async refresh(source: string): Promise<void> {
    const link = this.link();
    if (link === undefined) {
      return;
    }
    const open = new Set(
      vscode.window.tabGroups.all
        .flatMap((group) => group.tabs)
        .map((tab) => (tab.input instanceof vscode.TabInputTextDiff ? tab.input.modified.toString() : "")),
    );
    const tabs = [...this.live].filter(([, t]) => t.source === source && open.has(t.after.toString()));
    for (const [key, tab] of tabs) {
      let details: ProposalDetails;
      try {
        details = parseProposal(await link.request(Request.proposal, { proposalId: tab.proposalId }));
      } catch {
        continue; // settled meanwhile: its tabs close
      }
      const fileKey = tab.fileUri.toString();
      const file = details.files.find((f) => vscode.Uri.parse(f.uri).toString() === fileKey);
      const current = await currentText(source);
      const now = this.live.get(key);
      if (file === undefined || now?.opened !== tab.opened) {
        continue; // shown again or settled meanwhile
      }
      const sides = liveSidesOf(file, current, now.applies);
      this.put(tab.proposalId, "before", tab.fileUri, sides.before);
      this.put(tab.proposalId, "after", tab.fileUri, sides.after);
      this.live.set(key, { ...now, applies: sides.applies });
      if (sides.warning !== undefined) {
        void vscode.window.showWarningMessage(sides.warning);
      }
    }
  }

  private forgetLive(proposalId: string): void {
    for (const [key, tab] of [...this.live]) {
      if (tab.proposalId === proposalId) {
        this.live.delete(key);
      }
    }
  }

  /** Store one side's text and return its URI (the real path, so the language mode follows the file). */
  private put(proposalId: string, side: Side, fileUri: vscode.Uri, text: string): vscode.Uri {
    const uri = vscode.Uri.from({
      scheme: PROPOSAL_SCHEME,
      path: fileUri.path,
      query: encodeAddress({ proposalId, side, fileUri: fileUri.toString() }),
    });
    const key = uri.toString();
    const old = this.contents.get(key);
    this.contents.set(key, text);
    if (old !== undefined && old !== text) {
      this.changed.fire(uri); // the same side shown again after the file changed: refresh the open tab
    }
    return uri;
  }

  /** The text a diff tab shows of one side of a file of a proposal, if it is shown. */
  private shown(proposalId: string, side: Side, fileUri: string): string | undefined {
    for (const [key, text] of this.contents) {
      const address = decodeAddress(vscode.Uri.parse(key).query);
      if (
        address?.proposalId === proposalId &&
        address.side === side &&
        vscode.Uri.parse(address.fileUri).toString() === fileUri
      ) {
        return text;
      }
    }
    return undefined;
  }

  /** `agentls/proposal`, or undefined after saying why it could not be had. */
  private async details(proposalId: string, link: ServerLink): Promise<ProposalDetails | undefined> {
    try {
      return parseProposal(await link.request(Request.proposal, { proposalId }));
    } catch (error) {
      this.sayFailure({ doing: "cannot show", subject: `proposal ${proposalId}` }, error);
      return undefined;
    }
  }

  async accept(proposalId: string): Promise<void> {
    const rejected = this.rejected.get(proposalId);
    const link = rejected === undefined || rejected.size === 0 ? undefined : this.requireLink();
    const details = link === undefined ? undefined : await this.details(proposalId, link);
    if (details === undefined || rejected === undefined) {
      await this.settle(proposalId, acceptCall(proposalId), "accept");
      return;
    }
    const plan = acceptPlan(details.files, rejected);
    if (plan.action === "reject") {
      await this.reject(proposalId);
    } else {
      await this.acceptHunks(proposalId, plan.hunks);
    }
  }

  /**
   * Accept only `hunks`: the server applies them and keeps the rest pending. When what is left was all
   * rejected by the user, the proposal is rejected; else its diff is shown again with what is left.
   */
  async acceptHunks(proposalId: string, hunks: readonly string[]): Promise<void> {
    const link = this.requireLink();
    if (link === undefined) {
      return;
    }
    let result: unknown;
    try {
      result = await link.execute(acceptCall(proposalId, hunks));
    } catch (error) {
      this.sayFailure({ doing: "could not accept", subject: `proposal ${proposalId}` }, error);
      return;
    }
    if (!acceptApplied(result)) {
      this.sayNotApplied(proposalId, result);
      return;
    }
    await this.afterPartial(proposalId, pendingHunksOf(result) ?? [], link);
  }

  private async afterPartial(
    proposalId: string,
    pending: readonly string[],
    link: ServerLink,
  ): Promise<void> {
    const proposal = this.store.get(proposalId);
    if (proposal !== undefined) {
      await saveFiles(proposal.files.map((f) => f.uri));
    }
    const rejected = this.rejected.get(proposalId) ?? new Set<string>();
    if (pending.length === 0) {
      await this.settled(proposalId, true);
      return;
    }
    if (pending.every((id) => rejected.has(id))) {
      try {
        await link.execute(rejectCall(proposalId));
      } catch (error) {
        this.sayFailure(
          { doing: "could not drop the rejected hunks of", subject: `proposal ${proposalId}` },
          error,
        );
        return;
      }
      await this.settled(proposalId, true);
      vscode.window.setStatusBarMessage(
        `agentls: proposal ${proposalId}: the rejected hunks were dropped`,
        4000,
      );
      return;
    }
    await this.closeTabs(proposalId);
    await this.showDiff(proposalId);
  }

  /** Reject `hunks` of a proposal: noted here; the whole proposal is rejected once nothing else is left. */
  async rejectHunks(proposalId: string, hunks: readonly string[]): Promise<void> {
    const link = this.requireLink();
    const details = link === undefined ? undefined : await this.details(proposalId, link);
    if (details === undefined) {
      return;
    }
    const rejected = this.rejected.get(proposalId) ?? new Set<string>();
    hunks.forEach((id) => rejected.add(id));
    this.rejected.set(proposalId, rejected);
    if (acceptPlan(details.files, rejected).action === "reject") {
      await this.reject(proposalId);
      return;
    }
    await this.closeTabs(proposalId);
    await this.showDiff(proposalId);
    vscode.window.setStatusBarMessage(
      `agentls: ${String(hunks.length)} hunk(s) rejected; Accept Proposal applies the rest`,
      4000,
    );
  }

  /** The proposal, file and hunk a proposal document (a diff side) and a line of it are about. */
  async hunksAt(
    uri: vscode.Uri,
    line: number | undefined,
  ): Promise<{ proposalId: string; hunks: string[] } | undefined> {
    const address = uri.scheme === PROPOSAL_SCHEME ? decodeAddress(uri.query) : undefined;
    const link = address === undefined ? undefined : this.requireLink();
    const details =
      address === undefined || link === undefined ? undefined : await this.details(address.proposalId, link);
    if (address === undefined || details === undefined) {
      void vscode.window.showInformationMessage(
        "agentls: open a proposal's diff (Show Proposal Diff) first.",
      );
      return undefined;
    }
    const key = vscode.Uri.parse(address.fileUri).toString();
    const file = details.files.find((f) => vscode.Uri.parse(f.uri).toString() === key);
    if (file === undefined) {
      return undefined;
    }
    if (line === undefined) {
      return { proposalId: address.proposalId, hunks: file.hunks.map((h) => h.id) };
    }
    if (this.live.get(liveKey(address.proposalId, vscode.Uri.parse(key)))?.applies === false) {
      void vscode.window.showInformationMessage(
        "agentls: the proposal's diff no longer applies to your text, so this tab has no hunks to pick. " +
          "Undo your edit, or accept this file or the proposal: the server rebases it or refuses.",
      );
      return undefined;
    }
    // Where this tab shows the hunks: the server counts lines in the text the proposal was made from.
    const before = this.shown(address.proposalId, "before", key);
    const hunks = before === undefined ? file.hunks : hunksAsShown(file, before);
    const hunk = hunkAtLine(hunks, line, address.side);
    if (hunk === undefined) {
      void vscode.window.showInformationMessage(
        "agentls: the cursor is not on a changed line of the proposal.",
      );
      return undefined;
    }
    return { proposalId: address.proposalId, hunks: [hunk.id] };
  }

  /**
   * Accept and commit: the commit message's subject in an input box (the body is kept), then
   * `agentls.acceptAndCommit` with it (only the hunks not rejected, when the user rejected some).
   */
  async acceptAndCommit(proposalId: string): Promise<void> {
    const link = this.requireLink();
    const details = link === undefined ? undefined : await this.details(proposalId, link);
    if (link === undefined || details === undefined) {
      return;
    }
    const rejected = this.rejected.get(proposalId) ?? new Set<string>();
    const plan = acceptPlan(details.files, rejected);
    if (plan.action === "reject") {
      void vscode.window.showInformationMessage(
        "agentls: every hunk is rejected; there is nothing to commit.",
      );
      return;
    }
    const { subject, body } = splitMessage(details.commitMessage);
    const edited = await vscode.window.showInputBox({
      title: `agentls: Accept and Commit proposal ${proposalId}`,
      prompt: "The commit's subject (its body, what and why and the verification, is kept). Enter commits.",
      value: subject,
      ignoreFocusOut: true,
      validateInput: (value) => (value.trim() === "" ? "The commit needs a subject." : undefined),
    });
    if (edited === undefined) {
      return; // cancelled: nothing applied, nothing committed
    }
    const hunks = plan.action === "partial" ? plan.hunks : undefined;
    // An accept the commit waits for and that is not applied ends in the commit's refusal, which says why.
    let result: unknown;
    try {
      result = await link.execute(acceptAndCommitCall(proposalId, joinMessage(edited, body), hunks));
    } catch (error) {
      this.sayFailure({ doing: "could not commit", subject: `proposal ${proposalId}` }, error);
      return;
    }
    const made = commitOf(result);
    if (made !== undefined) {
      vscode.window.setStatusBarMessage(
        `agentls: committed ${made.commit.slice(0, 12)} on ${made.branch}`,
        6000,
      );
    }
    if (hunks !== undefined) {
      try {
        await link.execute(rejectCall(proposalId));
      } catch (error) {
        this.sayFailure(
          { doing: "could not drop the rejected hunks of", subject: `proposal ${proposalId}` },
          error,
        );
      }
    }
    await this.settled(proposalId, true);
  }

  async reject(proposalId: string): Promise<void> {
    await this.settle(proposalId, rejectCall(proposalId), "reject");
  }

  private async settle(proposalId: string, call: CommandCall, verb: string): Promise<void> {
    const link = this.requireLink();
    if (link === undefined) {
      return;
    }
    let result: unknown;
    try {
      result = await link.execute(call);
    } catch (error) {
      this.sayFailure({ doing: `could not ${verb}`, subject: `proposal ${proposalId}` }, error);
      return;
    }
    if (verb === "accept" && !acceptApplied(result)) {
      this.sayNotApplied(proposalId, result);
      return;
    }
    await this.settled(proposalId, verb === "accept");
  }

  /**
   * The proposal was accepted or rejected (by us, a code lens or a code action): forget it. An accepted
   * proposal's files are saved: VS Code applies a workspace edit to the documents and leaves them
   * unsaved, so without this the files on disk (and the tests run on them) would not change.
   */
  async settled(proposalId: string, accepted = false): Promise<void> {
    const proposal = this.store.get(proposalId);
    if (accepted && proposal !== undefined) {
      await saveFiles(proposal.files.map((f) => f.uri));
    }
    this.store.remove(proposalId);
    this.rejected.delete(proposalId);
    this.forgetLive(proposalId);
    this.onStoreChange();
    await this.closeTabs(proposalId);
    for (const key of [...this.contents.keys()]) {
      if (decodeAddress(vscode.Uri.parse(key).query)?.proposalId === proposalId) {
        this.contents.delete(key);
      }
    }
  }

  private async closeTabs(proposalId: string): Promise<void> {
    const ours = (uri: vscode.Uri): boolean => this.idOf(uri) === proposalId;
    const tabs = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => {
        const input = tab.input;
        if (input instanceof vscode.TabInputTextDiff) {
          return ours(input.modified) || ours(input.original);
        }
        return input instanceof vscode.TabInputText && ours(input.uri);
      });
    if (tabs.length > 0) {
      await vscode.window.tabGroups.close(tabs, true);
    }
  }

  private updateDiffContext(editor: vscode.TextEditor | undefined): void {
    const active = editor?.document.uri.scheme === PROPOSAL_SCHEME;
    void vscode.commands.executeCommand("setContext", ContextKey.proposalDiffActive, active);
  }

  /** A command about a proposal failed: why, once, in the server's words (`failureText`). */
  private sayFailure(attempt: Attempt, error: unknown): void {
    void vscode.window.showErrorMessage(failureText(messageOf(error), attempt));
  }

  /**
   * `agentls.accept` answered that VS Code did not apply the proposal, which stays pending: the answer's
   * reason, once. Mostly the user discarded VS Code's preview, or pressed Apply with no change ticked
   * (changes that need confirmation start unticked there); `notAppliedText` words that for VS Code.
   * Also for an accept a code lens or code action ran (`extension.ts`).
   */
  sayNotApplied(proposalId: string, result: unknown): void {
    void vscode.window.showWarningMessage(notAppliedText(proposalId, failureReasonOf(result)));
  }

  /**
   * Forget everything (the server stopped: its proposals are gone), and close their diff tabs: their
   * Accept and Reject could only fail now.
   */
  reset(): void {
    const ids = new Set([
      ...this.store.list().map((p) => p.proposalId),
      ...[...this.contents.keys()].map((key) => decodeAddress(vscode.Uri.parse(key).query)?.proposalId),
    ]);
    this.store.clear();
    this.rejected.clear();
    this.live.clear();
    this.contents.clear();
    this.onStoreChange();
    for (const id of ids) {
      if (id !== undefined) {
        void this.closeTabs(id);
      }
    }
  }

  private requireLink(): ServerLink | undefined {
    const link = this.link();
    if (link === undefined) {
      void vscode.window.showErrorMessage(
        "agentls: the server is not running. Run “agentls: Restart Server”.",
      );
    }
    return link;
  }

  dispose(): void {
    for (const d of this.disposables) {
      d.dispose();
    }
  }
}

/** The key of a file of a proposal in `Proposals.live`. */
function liveKey(proposalId: string, fileUri: vscode.Uri): string {
  return `${proposalId}\n${fileUri.toString()}`;
}

/** The file's text as the user has it: the open buffer, else the file on disk; undefined if neither. */
async function currentText(uri: string): Promise<string | undefined> {
  const target = vscode.Uri.parse(uri);
  const key = target.toString(); // normalized: the server may encode the same URI differently
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === key);
  if (open !== undefined) {
    return open.getText();
  }
  try {
    const bytes = await vscode.workspace.fs.readFile(target);
    return new TextDecoder("utf-8").decode(bytes);
  } catch {
    return undefined;
  }
}

/** JSON-RPC's codes for a request whose answer will never come: the connection to the server closed. */
const CONNECTION_GONE: ReadonlySet<number> = new Set([
  -32097, // PendingResponseRejected
  -32096, // ConnectionInactive
]);

/** An error's message for the user; a request cut off by the server's end says so in words. */
export function messageOf(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "number" && CONNECTION_GONE.has(code)) {
      return "the server stopped before it answered (the agentls output has its log)";
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/** Save the open documents of `uris` that have unsaved changes (the ones an accepted edit touched). */
async function saveFiles(uris: readonly string[]): Promise<void> {
  const wanted = new Set(uris.map((u) => vscode.Uri.parse(u).toString()));
  const dirty = vscode.workspace.textDocuments.filter((doc) => doc.isDirty && wanted.has(doc.uri.toString()));
  const saved = await Promise.all(dirty.map((doc) => doc.save()));
  const failed = dirty.filter((_, i) => !saved[i]).map((doc) => vscode.workspace.asRelativePath(doc.uri));
  if (failed.length > 0) {
    void vscode.window.showWarningMessage(
      `agentls: the proposal was applied but ${failed.join(", ")} could not be saved; save by hand (ctrl+s).`,
    );
  }
}
