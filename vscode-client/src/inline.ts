// Inline completion (ghost text) through the language server, and the suggestion lifecycle sent back to it.
//
// The extension registers its own provider instead of vscode-languageclient's, so that it can implement
// the proposed API `inlineCompletionsAdditions` (show, partial accept, end of lifetime). VS Code refuses a
// provider with those methods when the proposal is not enabled for the extension; then a plain provider is
// registered and the lifecycle is inferred from the user's keys, edits and cursor (lifecycle.ts).
import * as vscode from "vscode";
import type { IssuerNotifications, ServerRun } from "./issuer";
import type { LanguageClient } from "vscode-languageclient/node";
import { InlineCompletionRequest } from "vscode-languageclient/node";
import {
  extendsEntry,
  partialAcceptLength,
  reasonForEndOfLife,
  SuggestionTracker,
  type ChangeSource,
  type EndOfLifeReason,
  type Verdict,
} from "./lifecycle";
import {
  COMMAND_ACCEPT_SUGGESTION,
  DID_PARTIALLY_ACCEPT_COMPLETION,
  DID_REJECT_COMPLETION,
  DID_SHOW_COMPLETION,
  type RejectReason,
} from "./protocol";

/** Set while the lifecycle is inferred (no proposed API): enables the Escape and next-word keybindings. */
export const INFER_CONTEXT_KEY = "tact.inferLifecycle";
/** Set to 1 in VS Code's environment to behave as without the proposal (code-server grants every proposal
 * to every extension, so this is how the tests reach the inferred lifecycle of a Marketplace VS Code). */
export const NO_PROPOSED_API_ENV = "TACT_NO_PROPOSED_API";

export interface SessionCounters {
  shown: number;
  accepted: number;
  rejected: number;
  latenciesMs: number[]; // recent request round trips that produced a suggestion
}

interface Events {
  onActivity(): void; // a suggestion was shown or resolved
  onAccepted(uri: string): void;
}

/** How the extension talks to the server: the run of the client in use (it changes on every restart, the client's
 * own restart of a crashed server too), and each suggestion's events to the run that issued it. */
export interface ClientAccess {
  /** The run that may issue suggestions and take accepts (ServerRuns.issuing): none while a closing run ends. */
  run(): ServerRun<LanguageClient> | undefined;
  enabled(): boolean;
  readonly notifications: IssuerNotifications;
}

const MAX_LATENCIES = 20;
const MAX_TRACKED = 100;
/** How long a suggestion typed to its end waits for Tab's accept command before it counts as typed by hand. */
const ACCEPT_WAIT_MS = 1000;

export class InlineSuggestions implements vscode.Disposable {
  readonly counters: SessionCounters = { shown: 0, accepted: 0, rejected: 0, latenciesMs: [] };

  /** A new server session: the status bar's counts are its own, beside the server's (hidden) of the same session. */
  resetCounters(): void {
    Object.assign(this.counters, { shown: 0, accepted: 0, rejected: 0, latenciesMs: [] });
  }
  /** Whether VS Code delivers the proposed lifecycle events (set when the provider is registered). */
  proposedApi = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly byItem = new WeakMap<vscode.InlineCompletionItem, Tracked>();
  private readonly byId = new Map<string, Tracked>();
  /** The suggestion on screen in the inferred mode (at most one). */
  private active: Tracked | undefined;
  /** Set by the next-word command until the document change it causes arrives. */
  private partialAcceptPending = false;
  /** Suggestions typed to their end, waiting for the accept command (Tab) that may follow. */
  private readonly completing = new Map<Tracked, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly access: ClientAccess,
    private readonly selector: vscode.DocumentSelector,
    private readonly events: Events,
    private readonly log: (message: string) => void,
  ) {}

  register(): void {
    this.proposedApi = this.registerProvider();
    void vscode.commands.executeCommand("setContext", INFER_CONTEXT_KEY, !this.proposedApi);
    this.log(
      this.proposedApi
        ? "inline suggestions: shown and end-of-lifetime events from the proposed API inlineCompletionsAdditions"
        : "inline suggestions: proposed API inlineCompletionsAdditions not enabled; rejections are inferred",
    );
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((e) => this.onDocumentChange(e)),
      vscode.workspace.onDidCloseTextDocument((document) => this.onDocumentClose(document)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onSelection(e)),
      // another editor taking focus ends the ghost text without a decision, as VS Code's own end of lifetime says it
      // with the proposed API (the blur stops it): "ignored", not a rejection the acceptance model would learn from
      vscode.window.onDidChangeActiveTextEditor(() => this.endActive("ignored")),
      vscode.commands.registerCommand("tact.dismissSuggestion", () => this.dismiss()),
      vscode.commands.registerCommand("tact.acceptNextWordOfSuggestion", () => this.acceptNextWord()),
    );
  }

  private registerProvider(): boolean {
    const self = this;
    const base = {
      provideInlineCompletionItems: (
        document: vscode.TextDocument,
        position: vscode.Position,
        context: vscode.InlineCompletionContext,
        token: vscode.CancellationToken,
      ) => this.provide(document, position, context, token),
    };
    const proposed = {
      ...base,
      handleDidShowCompletionItem(item: vscode.InlineCompletionItem): void {
        self.shown(self.byItem.get(item));
      },
      handleDidPartiallyAcceptCompletionItem(item: vscode.InlineCompletionItem, info: number | { acceptedLength: number }): void {
        const tracked = self.byItem.get(item);
        const length = partialAcceptLength(info);
        // compared with what was sent, not with the tracker's own inference from the same edit (the next-word
        // command marks its change as a partial accept in both modes, and that change arrives first)
        // nothing follows a suggestion's outcome, nor goes to a run that is closing (endAll ended what it showed)
        if (tracked && !tracked.reported && self.issuing(tracked) && length !== undefined && length > tracked.partialSent) {
          tracked.partialSent = length;
          tracked.tracker.acceptedLength = Math.max(tracked.tracker.acceptedLength, length);
          self.notify(tracked, DID_PARTIALLY_ACCEPT_COMPLETION, { id: tracked.id, acceptedLength: length });
        }
      },
      handleEndOfLifetime(item: vscode.InlineCompletionItem, reason: EndOfLifeReason): void {
        const tracked = self.byItem.get(item);
        if (!tracked) {
          return;
        }
        const why = reasonForEndOfLife(reason, tracked.tracker.inferred);
        if (why === null) {
          tracked.tracker.accept(); // the item's command (accepted()) reports it
          if (self.active === tracked) {
            self.active = undefined;
          }
          return;
        }
        self.forget(tracked);
        self.reject(tracked, why);
      },
    };
    if (process.env[NO_PROPOSED_API_ENV] === "1") {
      this.log(`proposed inline completion API not used (${NO_PROPOSED_API_ENV}=1)`);
      this.disposables.push(vscode.languages.registerInlineCompletionItemProvider(this.selector, base));
      return false;
    }
    try {
      // the third argument (metadata) and the handle* methods are the proposal; VS Code throws without it
      const register = vscode.languages.registerInlineCompletionItemProvider as (
        selector: vscode.DocumentSelector,
        provider: vscode.InlineCompletionItemProvider,
        metadata?: object,
      ) => vscode.Disposable;
      this.disposables.push(register(this.selector, proposed, { displayName: "Tact" }));
      return true;
    } catch (error) {
      this.log(`proposed inline completion API unavailable: ${error instanceof Error ? error.message : String(error)}`);
      this.disposables.push(vscode.languages.registerInlineCompletionItemProvider(this.selector, base));
      return false;
    }
  }

  private async provide(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const version = document.version;
    const run = this.access.run();
    if (!run || !this.access.enabled()) {
      this.answered(document, version, context, token, []);
      return undefined;
    }
    const client = run.client;
    const started = Date.now();
    let result;
    try {
      const params = client.code2ProtocolConverter.asInlineCompletionParams(document, position, context);
      result = await client.sendRequest(InlineCompletionRequest.type, params, token);
    } catch (error) {
      if (!token.isCancellationRequested) {
        this.log(`inline completion failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      this.answered(document, version, context, token, []);
      return undefined;
    }
    if (token.isCancellationRequested || !result || this.access.run() !== run || !this.access.enabled()) {
      // (a run that ended or began to close meanwhile: its events and accept would be dropped, so its answer is not
      // shown either; nor one that comes after suggestions were turned off)
      this.answered(document, version, context, token, []);
      return undefined;
    }
    let converted: Awaited<ReturnType<typeof client.protocol2CodeConverter.asInlineCompletionResult>>;
    try {
      converted = await client.protocol2CodeConverter.asInlineCompletionResult(result, token);
    } catch (error) {
      // an answer that does not convert ends like an empty one (the suggestion on screen ends), not as a rejection
      this.log(`inline completion answer unreadable: ${error instanceof Error ? error.message : String(error)}`);
      this.answered(document, version, context, token, []);
      return undefined;
    }
    const items = Array.isArray(converted) ? converted : (converted?.items ?? []);
    const out: vscode.InlineCompletionItem[] = [];
    // the document's line breaks: VS Code inserts the text with them, and Enter types them
    const eol = document.eol === vscode.EndOfLine.CRLF ? "\r\n" : "\n";
    const entry = context.selectedCompletionInfo;
    const entryEdit = entry && { start: document.offsetAt(entry.range.start), end: document.offsetAt(entry.range.end), text: entry.text };
    const read = (start: number, end: number) => document.getText(new vscode.Range(document.positionAt(start), document.positionAt(end)));
    /** Whether VS Code's choice of item to show is made: its first, or over the widget's entry the first that extends it. */
    let chosen = false;
    /** The item on screen, when it is followed: over the widget's entry only one that starts where the entry does (as
     * the server's do); accepting the entry rewrites what comes before the cursor, which the tracker follows only
     * from the item's start. */
    let onScreen: Tracked | undefined;
    for (const item of items) {
      const id = suggestionId(item);
      const text = typeof item.insertText === "string" ? item.insertText : item.insertText.value;
      const anchor = document.offsetAt(item.range?.start ?? position);
      const visible: boolean =
        !chosen &&
        (!entryEdit || extendsEntry({ start: anchor, end: document.offsetAt(item.range?.end ?? position), text }, entryEdit, read, eol));
      chosen ||= visible;
      if (!id || !text) {
        out.push(item);
        continue;
      }
      // an item that extends the completion widget's entry from the entry's start holds the entry first: accepting
      // only the entry accepts none of the suggestion
      const entryUnits = entryEdit && anchor === entryEdit.start && text.startsWith(entryEdit.text) ? entryEdit.text.length : 0;
      run.remember(id);
      const tracked: Tracked = {
        id,
        uri: document.uri.toString(),
        run,
        tracker: new SuggestionTracker(id, text, anchor, document.offsetAt(position), eol, document.offsetAt(item.range?.end ?? position)),
        reported: false,
        partialSent: entryUnits,
        overEntry: Boolean(entryEdit),
      };
      this.byItem.set(item, tracked);
      this.byId.set(id, tracked);
      if (visible && (!entryEdit || entryUnits > 0)) {
        onScreen = tracked;
      }
      if (this.byId.size > MAX_TRACKED) {
        this.byId.delete(this.byId.keys().next().value as string); // the oldest; long over
      }
      out.push(item);
    }
    if (out.length > 0) {
      this.recordLatency(Date.now() - started);
    }
    this.answered(document, version, context, token, out, onScreen);
    return out;
  }

  /** Follows what VS Code does with an answer: it drops a cancelled or outdated one; otherwise the answer's
   * visible item (its first, or over the completion widget's entry the first that extends the entry) replaces the
   * ghost text on screen, and an answer with none removes it; onScreen is that item when it is followed. With the
   * proposed API, VS Code reports both (shown, superseded) itself and the tracker only follows the cursor. The ghost
   * text followed is the active editor's: an answer for another document (an editor without focus, whose ghost text
   * `editor.inlineSuggest.keepOnBlur` keeps) replaces nothing there and is not followed. */
  private answered(
    document: vscode.TextDocument,
    version: number,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
    out: vscode.InlineCompletionItem[],
    onScreen?: Tracked,
  ): void {
    if (token.isCancellationRequested || document.version !== version) {
      return;
    }
    if (vscode.window.activeTextEditor?.document.uri.toString() !== document.uri.toString()) {
      return; // for an editor without focus: the suggestion on screen in the active editor stays
    }
    const first = out.length > 0 ? this.byItem.get(out[0]) : undefined;
    // The fetch a partial accept, an undo or a redo causes: VS Code keeps showing the suggestion while it fits
    // (unless the answer is that same edit), so the answer is not on screen.
    const preserved = this.active?.uri === document.uri.toString() ? this.active : undefined;
    if (preserved && !preserved.tracker.replacedBy(first?.tracker, context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic)) {
      return;
    }
    this.endActive("superseded");
    // Over the completion widget's entry, the item extending it is shown as ghost text after the entry: followed
    // from the entry's start, where the item's range begins. Accepting the entry (Tab or Enter in the widget)
    // types its rest through, and the ghost text goes on after it.
    this.active = onScreen;
    if (this.active && !this.proposedApi) {
      this.shown(this.active);
    }
  }

  /** Called by the client middleware when the item's command runs (VS Code inserted the whole suggestion).
   * False when the running server did not issue it (ghost text left from before a restart, the client's own
   * restart of a crashed server too): its outcome is not the new server's to record. */
  accepted(id: unknown): boolean {
    if (typeof id !== "string") {
      return true;
    }
    const tracked = this.byId.get(id);
    if (tracked) {
      // accepted either way: not to be settled or rejected later
      tracked.tracker.accept();
      tracked.reported = true;
      clearTimeout(this.completing.get(tracked));
      this.completing.delete(tracked);
      this.forget(tracked);
    }
    if (!this.access.run()?.issued(id)) {
      this.log(`${COMMAND_ACCEPT_SUGGESTION} not sent: the server that issued ${id} is gone`);
      return false;
    }
    this.counters.accepted += 1;
    if (tracked) {
      this.events.onAccepted(tracked.uri);
    }
    this.events.onActivity();
    return true;
  }

  /** Before the server stops (restart, deactivation): every suggestion on screen or typed to its end gets
   * its outcome from the server that issued it. */
  endAll(reason: RejectReason): void {
    // off the screen too: Tab on ghost text left there would accept a suggestion whose outcome is sent
    void vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
    for (const [tracked, timer] of this.completing) {
      clearTimeout(timer);
      this.apply(tracked, tracked.tracker.settle());
    }
    this.completing.clear();
    for (const tracked of [...this.byId.values()]) {
      if (tracked.tracker.shown && !tracked.reported && !tracked.tracker.accepted) {
        const why = tracked.tracker.inferred ?? reason;
        tracked.tracker.reject(why);
        this.forget(tracked);
        this.reject(tracked, why);
      }
    }
    this.active = undefined;
  }

  private shown(tracked: Tracked | undefined): void {
    if (!tracked || tracked.tracker.shown || tracked.reported) {
      return;
    }
    if (!this.issuing(tracked)) {
      // its run is closing or gone (VS Code showed an item it answered before): its outcome could not follow
      this.log(`${DID_SHOW_COMPLETION} not sent for ${tracked.id}: the server that issued it is stopping or gone`);
      return;
    }
    tracked.tracker.shown = true;
    this.counters.shown += 1;
    this.notify(tracked, DID_SHOW_COMPLETION, { id: tracked.id });
    this.events.onActivity();
  }

  /** Whether the run that issued the suggestion still issues (it is not closing, and no other run replaced it). */
  private issuing(tracked: Tracked): boolean {
    return this.access.run() === tracked.run;
  }

  private reject(tracked: Tracked, reason: RejectReason): void {
    if (!tracked.tracker.shown || tracked.reported) {
      return; // never on screen, or its outcome is known: nothing to reject
    }
    tracked.reported = true;
    this.counters.rejected += 1;
    this.notify(tracked, DID_REJECT_COMPLETION, { id: tracked.id, reason });
    this.events.onActivity();
  }

  private forget(tracked: Tracked): void {
    this.byId.delete(tracked.id);
    if (this.active === tracked) {
      this.active = undefined;
    }
  }

  private endActive(reason: RejectReason): void {
    const tracked = this.active;
    if (tracked && !this.proposedApi) {
      this.apply(tracked, tracked.tracker.reject(reason));
    }
  }

  private apply(tracked: Tracked, verdict: Verdict): void {
    switch (verdict.kind) {
      case "rejected":
        this.forget(tracked);
        this.reject(tracked, verdict.reason);
        break;
      case "partiallyAccepted":
        // no more than the completion widget's entry the item starts with is none of the suggestion (as with the
        // proposed API)
        if (verdict.acceptedLength > tracked.partialSent) {
          tracked.partialSent = verdict.acceptedLength;
          this.notify(tracked, DID_PARTIALLY_ACCEPT_COMPLETION, { id: tracked.id, acceptedLength: verdict.acceptedLength });
        }
        break;
      case "completed":
        // Tab's accept command reports it (byId keeps it until then); typed to the end by hand, none comes
        this.active = undefined;
        this.completing.set(tracked, setTimeout(() => {
          this.completing.delete(tracked);
          this.apply(tracked, tracked.tracker.settle());
        }, ACCEPT_WAIT_MS));
        break;
      default:
        break;
    }
  }

  private onDocumentChange(e: vscode.TextDocumentChangeEvent): void {
    const tracked = this.active;
    if (!tracked || e.document.uri.toString() !== tracked.uri || e.contentChanges.length === 0) {
      return;
    }
    const source = this.changeSource(e, tracked);
    this.partialAcceptPending = false;
    for (const change of e.contentChanges) {
      const verdict = tracked.tracker.onChange({ offset: change.rangeOffset, length: change.rangeLength, text: change.text }, source);
      if (this.proposedApi) {
        continue; // the proposed API reports; the tracker only follows
      }
      this.apply(tracked, verdict);
    }
  }

  /** What made a change to the suggestion's document. VS Code's own accept-word or accept-line (its hover toolbar)
   * runs without the extension's next-word command: taken for typing, the suggestion VS Code kept on screen was
   * rejected as superseded and the next answer reported shown. Over the completion widget's entry, accepting the
   * entry writes the same way, so there it stays typing. */
  private changeSource(e: vscode.TextDocumentChangeEvent, tracked: Tracked): ChangeSource {
    if (this.partialAcceptPending) {
      return "partialAccept";
    }
    if (e.reason === vscode.TextDocumentChangeReason.Undo) {
      return "undo";
    }
    if (e.reason === vscode.TextDocumentChangeReason.Redo) {
      return "redo";
    }
    const [change] = e.contentChanges;
    const inferred = !this.proposedApi && !tracked.overEntry && e.contentChanges.length === 1;
    return inferred && tracked.tracker.acceptsPartly({ offset: change.rangeOffset, length: change.rangeLength, text: change.text })
      ? "partialAccept"
      : "typing";
  }

  /** A document closed: the server rejects the suggestions still open in it ("documentClosed"), so the extension
   * sends none of their events from now on (VS Code's end of lifetime for them, a restart's endAll) and forgets them;
   * one shown counts as rejected here, as there. */
  private onDocumentClose(document: vscode.TextDocument): void {
    const uri = document.uri.toString();
    for (const [tracked, timer] of this.completing) {
      if (tracked.uri === uri) {
        clearTimeout(timer);
        this.completing.delete(tracked);
      }
    }
    let ended = false;
    for (const tracked of [...this.byId.values()]) {
      if (tracked.uri !== uri) {
        continue;
      }
      this.forget(tracked);
      if (tracked.reported || tracked.tracker.accepted) {
        continue;
      }
      tracked.reported = true; // the server's outcome
      if (tracked.tracker.shown) {
        tracked.tracker.reject("documentClosed");
        this.counters.rejected += 1;
        ended = true;
      }
    }
    if (this.active?.uri === uri) {
      this.active = undefined;
    }
    if (ended) {
      this.events.onActivity();
    }
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
    const tracked = this.active;
    // the ghost text is in the active editor: another editor of the document (a split) moves its cursor when
    // the text before it changes, which is not the user leaving the suggestion
    if (!tracked || e.textEditor !== vscode.window.activeTextEditor || e.textEditor.document.uri.toString() !== tracked.uri || e.selections.length !== 1) {
      return;
    }
    const selection = e.selections[0];
    const offset = e.textEditor.document.offsetAt(selection.active);
    const verdict = selection.isEmpty ? tracked.tracker.onCursor(offset) : tracked.tracker.reject("cursorMoved");
    if (!this.proposedApi) {
      this.apply(tracked, verdict);
    }
  }

  private async dismiss(): Promise<void> {
    await vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
    this.endActive("dismissed");
  }

  private async acceptNextWord(): Promise<void> {
    this.partialAcceptPending = true;
    try {
      await vscode.commands.executeCommand("editor.action.inlineSuggest.acceptNextWord");
    } finally {
      this.partialAcceptPending = false;
    }
  }

  private recordLatency(ms: number): void {
    const list = this.counters.latenciesMs;
    list.push(ms);
    if (list.length > MAX_LATENCIES) {
      list.splice(0, list.length - MAX_LATENCIES);
    }
  }

  /** Sends a suggestion's event to the server that issued it, if that is still the running one. */
  private notify(tracked: Tracked, method: string, params: object): void {
    this.access.notifications.send(tracked.run, method, params);
  }

  dispose(): void {
    this.endAll("ignored");
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }
}

interface Tracked {
  id: string;
  uri: string;
  /** The server run that issued it: its events go to that one only. */
  run: ServerRun<LanguageClient>;
  tracker: SuggestionTracker;
  /** Its outcome is known to the server: accepted or rejected was sent, or its document closed (the server ends it). */
  reported: boolean;
  /** The largest partial accept length sent, in units of insertText; at first the completion widget entry's units
   * the item starts with (accepting only the entry, VS Code reports its length: none of the suggestion). */
  partialSent: number;
  /** Answered while the completion widget was open (its entry selected). */
  overEntry: boolean;
}

function suggestionId(item: vscode.InlineCompletionItem): string | undefined {
  const command = item.command;
  if (command?.command === COMMAND_ACCEPT_SUGGESTION && typeof command.arguments?.[0] === "string") {
    return command.arguments[0];
  }
  return undefined;
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) {
    return undefined;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
