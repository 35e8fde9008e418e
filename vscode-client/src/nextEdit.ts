// Next edit: an edit the server predicts elsewhere in the file, shown as a decoration with a hint; from a notebook
// cell, in another cell of the notebook too (shown in that cell's editor, or at the cursor, naming the cell, while
// that cell is out of view). Tab jumps to it and applies it
// (workspace/executeCommand tact.acceptNextEdit [id]), Escape dismisses it (tact/didRejectNextEdit {id, reason});
// showing it sends tact/didShowNextEdit {id}.
//
// Only used when the server advertises `experimental.tact.nextEdit` in its capabilities; a server that
// answers tact/nextEdit with MethodNotFound turns the feature off for the rest of the session.
import * as vscode from "vscode";
import type { ServerRun } from "./issuer";
import { hintText, hoverMarkdown, offScreenHintText, outOfViewHintText } from "./nextEditHint";
import type { LanguageClient } from "vscode-languageclient/node";
import { ErrorCodes, ExecuteCommandRequest, ResponseError } from "vscode-languageclient/node";
import {
  COMMAND_ACCEPT_NEXT_EDIT,
  DID_REJECT_NEXT_EDIT,
  DID_SHOW_NEXT_EDIT,
  NEXT_EDIT,
  type NextEdit,
  type NextEditParams,
  type NextEditResult,
  type RejectReason,
} from "./protocol";
import type { ClientAccess } from "./inline";
import { withLineBreaks } from "./lifecycle";

export const VISIBLE_CONTEXT_KEY = "tact.nextEditVisible";
const IDLE_MS = 500; // ask after the user stops typing this long
const NOTEBOOK_CELL_SCHEME = "vscode-notebook-cell";

interface DocumentVersion {
  uri: string;
  version: number;
}

interface Shown extends DocumentVersion {
  edit: NextEdit;
  /** The server run that predicted it: its outcome goes to that one only. */
  run: ServerRun<LanguageClient>;
  /** In the document uri, at version. */
  range: vscode.Range;
  /** The active editor's document it was requested from, where the edit is in another one (a notebook cell). */
  requested?: DocumentVersion;
}

/** The open document whose URI, as named by name(), is uri; undefined where none is. */
function openDocument(uri: string, name: (uri: vscode.Uri) => string): vscode.TextDocument | undefined {
  return vscode.workspace.textDocuments.find((d) => name(d.uri) === uri);
}

/** The 1-based place of document among its notebook's cells; undefined outside notebooks. */
function cellNumber(document: vscode.TextDocument): number | undefined {
  const uri = document.uri.toString();
  for (const notebook of vscode.workspace.notebookDocuments) {
    const at = notebook.getCells().findIndex((cell) => cell.document.uri.toString() === uri);
    if (at >= 0) {
      return at + 1;
    }
  }
  return undefined;
}

export function serverSupportsNextEdit(client: LanguageClient | undefined): boolean {
  const experimental = client?.initializeResult?.capabilities?.experimental as { tact?: { nextEdit?: unknown } } | undefined;
  return Boolean(experimental?.tact?.nextEdit);
}

export class NextEdits implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly removed = vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor("diffEditor.removedTextBackground"),
    textDecoration: "line-through",
    overviewRulerColor: new vscode.ThemeColor("editorOverviewRuler.modifiedForeground"),
    overviewRulerLane: vscode.OverviewRulerLane.Right,
  });
  private readonly inserted = vscode.window.createTextEditorDecorationType({
    after: {
      color: new vscode.ThemeColor("editorGhostText.foreground"),
      backgroundColor: new vscode.ThemeColor("diffEditor.insertedTextBackground"),
      margin: "0 0.5em 0 0.5em",
    },
  });
  private shown: Shown | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pending: vscode.CancellationTokenSource | undefined;
  private unsupported = false;
  private applying = false;
  /** The accept or reject of the edit being applied: sent once the editor has answered. */
  private outcomePending: Promise<void> | undefined;

  constructor(
    private readonly access: ClientAccess,
    private readonly selector: vscode.DocumentSelector,
    private readonly log: (message: string) => void,
  ) {}

  register(): void {
    this.disposables.push(
      this.removed,
      this.inserted,
      vscode.workspace.onDidChangeTextDocument((e) => this.onDocumentChange(e)),
      vscode.window.onDidChangeActiveTextEditor(() => this.end("ignored")),
      vscode.commands.registerCommand("tact.applyNextEdit", () => this.apply()),
      vscode.commands.registerCommand("tact.dismissNextEdit", () => this.end("dismissed")),
    );
  }

  /** A new server run: ask again (it may support next edit even if the last one did not); the edit on screen
   * came from the server before. */
  reset(): void {
    this.unsupported = false;
    this.end("ignored");
  }

  /** Before the server stops (restart, deactivation): the edit on screen gets its outcome from the server
   * that predicted it. */
  endAll(reason: RejectReason): void {
    clearTimeout(this.timer);
    this.pending?.cancel();
    this.end(reason);
  }

  /** Resolves once the outcome of an edit being applied (Tab pressed before endAll) is handed to the client. */
  async settled(): Promise<void> {
    await this.outcomePending;
  }

  /** After a completion was accepted: look for the edit that follows it right away. */
  requestSoon(uri: string): void {
    const editor = vscode.window.activeTextEditor;
    if (editor && editor.document.uri.toString() === uri) {
      this.schedule(editor, 50);
    }
  }

  private enabled(): boolean {
    return !this.unsupported && this.access.enabled() && serverSupportsNextEdit(this.access.run()?.client);
  }

  private onDocumentChange(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0 || this.applying) {
      return;
    }
    const changed = e.document.uri.toString();
    if (this.shown && (changed === this.shown.uri || changed === this.shown.requested?.uri)) {
      this.end("typedOver");
    }
    const editor = vscode.window.activeTextEditor;
    if (editor && editor.document === e.document && vscode.languages.match(this.selector, e.document) > 0) {
      this.schedule(editor, IDLE_MS);
    }
  }

  private schedule(editor: vscode.TextEditor, delayMs: number): void {
    if (!this.enabled()) {
      return;
    }
    clearTimeout(this.timer);
    this.pending?.cancel();
    this.timer = setTimeout(() => void this.request(editor), delayMs);
  }

  private async request(editor: vscode.TextEditor): Promise<void> {
    const run = this.access.run();
    if (!run || vscode.window.activeTextEditor !== editor) {
      return;
    }
    const client = run.client;
    const document = editor.document;
    const version = document.version;
    const source = new vscode.CancellationTokenSource();
    const token = source.token;
    this.pending = source;
    const params: NextEditParams = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(document.uri), version },
      position: client.code2ProtocolConverter.asPosition(editor.selection.active),
    };
    if (document.uri.scheme === NOTEBOOK_CELL_SCHEME) {
      params.otherCells = true;
    }
    let result: NextEditResult | null;
    try {
      result = await client.sendRequest<NextEditResult | null>(NEXT_EDIT, params, token);
    } catch (error) {
      if (error instanceof ResponseError && error.code === ErrorCodes.MethodNotFound) {
        this.unsupported = true;
        this.log(`${NEXT_EDIT}: the server does not implement it; next edits are off for this session`);
      } else if (!token.isCancellationRequested) {
        this.log(`${NEXT_EDIT} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      return;
    } finally {
      if (this.pending === source) {
        this.pending = undefined;
      }
      source.dispose();
    }
    const edit = result?.edits?.[0];
    // cancelled (a newer request, or endAll before a restart) yet answered before the server saw the cancel:
    // not to be shown, least of all on behalf of a server that is stopping
    if (!edit || token.isCancellationRequested || document.version !== version || vscode.window.activeTextEditor !== editor) {
      return;
    }
    const other = edit.textDocument;
    if (!other || other.uri === params.textDocument.uri) {
      this.show(editor, edit, version, run);
      return;
    }
    // in another cell: shown in its editor, as long as that still holds the version the edit was made for; a cell
    // out of view has no editor (a notebook renders the cells on screen), so its hint goes to the cursor instead
    const target = vscode.window.visibleTextEditors.find((e) => client.code2ProtocolConverter.asUri(e.document.uri) === other.uri);
    const targetDocument = target?.document ?? openDocument(other.uri, (uri) => client.code2ProtocolConverter.asUri(uri));
    if (!targetDocument || targetDocument.version !== other.version) {
      const where = targetDocument ? `at version ${targetDocument.version}, not ${other.version}` : "not open";
      this.log(`next edit ${edit.id} not shown: ${other.uri} is ${where}`);
      return;
    }
    const requested = { uri: document.uri.toString(), version };
    if (target) {
      this.show(target, edit, other.version, run, requested);
    } else {
      this.showOutOfView(editor, targetDocument, edit, run, requested);
    }
  }

  /** Shows the edit in editor's document at version; requested: the active editor's, where that is another. */
  private show(editor: vscode.TextEditor, edit: NextEdit, version: number, run: ServerRun<LanguageClient>, requested?: DocumentVersion): void {
    this.end("superseded");
    const range = run.client.protocol2CodeConverter.asRange(edit.range);
    this.shown = { edit, run, uri: editor.document.uri.toString(), version, range, requested };
    const removedText = editor.document.getText(range);
    const hoverMessage = new vscode.MarkdownString(hoverMarkdown(edit.newText));
    editor.setDecorations(this.removed, removedText ? [{ range, hoverMessage }] : []);
    const hints: vscode.DecorationOptions[] = [
      {
        range: new vscode.Range(range.end, range.end),
        renderOptions: { after: { contentText: hintText(edit.newText, removedText !== "") } },
      },
    ];
    if (!requested && !editor.visibleRanges.some((visible) => visible.contains(range.start))) {
      // off screen: said at the cursor too, or Tab applied an edit never seen
      const at = editor.document.lineAt(editor.selection.active.line).range.end;
      const offScreen = offScreenHintText(edit.newText, removedText !== "", range.start.line + 1);
      hints.push({ range: new vscode.Range(at, at), renderOptions: { after: { contentText: offScreen } } });
    }
    editor.setDecorations(this.inserted, hints);
    void vscode.commands.executeCommand("setContext", VISIBLE_CONTEXT_KEY, true);
    this.notify(this.shown, DID_SHOW_NEXT_EDIT, { id: edit.id });
  }

  /** Shows an edit in a document no editor shows (a cell out of view) as a hint at the cursor of editor, the one it
   * was requested from: what it does and in which cell; Tab goes there and applies it. */
  private showOutOfView(editor: vscode.TextEditor, document: vscode.TextDocument, edit: NextEdit, run: ServerRun<LanguageClient>, requested: DocumentVersion): void {
    this.end("superseded");
    const range = run.client.protocol2CodeConverter.asRange(edit.range);
    this.shown = { edit, run, uri: document.uri.toString(), version: document.version, range, requested };
    const at = editor.document.lineAt(editor.selection.active.line).range.end;
    editor.setDecorations(this.removed, []);
    editor.setDecorations(this.inserted, [
      {
        range: new vscode.Range(at, at),
        renderOptions: { after: { contentText: outOfViewHintText(edit.newText, document.getText(range) !== "", cellNumber(document)) } },
      },
    ]);
    void vscode.commands.executeCommand("setContext", VISIBLE_CONTEXT_KEY, true);
    this.notify(this.shown, DID_SHOW_NEXT_EDIT, { id: edit.id });
  }

  private apply(): Promise<void> {
    const applying = this.applyShown();
    this.outcomePending = applying.catch(() => undefined); // the last apply: settled once it is
    return applying;
  }

  private async applyShown(): Promise<void> {
    const shown = this.shown;
    if (shown?.requested) {
      return this.applyInOtherDocument(shown, shown.requested);
    }
    const editor = vscode.window.activeTextEditor;
    if (!shown || !editor || editor.document.uri.toString() !== shown.uri || editor.document.version !== shown.version) {
      this.end("ignored");
      return;
    }
    const end = await this.replace(shown, editor.document, () => editor.edit((b) => b.replace(shown.range, shown.edit.newText)));
    if (!end) {
      return;
    }
    editor.selection = new vscode.Selection(end, end);
    editor.revealRange(new vscode.Range(shown.range.start, end), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    // to the run that issued it even while it closes: Tab came before endAll, which found nothing on screen
    this.access.notifications.request(shown.run, ExecuteCommandRequest.method, { command: COMMAND_ACCEPT_NEXT_EDIT, arguments: [shown.edit.id] });
    this.schedule(editor, 50); // the edit after this one
  }

  /** Applies an edit shown in another document (a cell below, in view or not) to it, then moves the cursor there. */
  private async applyInOtherDocument(shown: Shown, requested: DocumentVersion): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const target = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === shown.uri);
    const document = target?.document ?? openDocument(shown.uri, (uri) => uri.toString());
    if (
      !editor ||
      editor.document.uri.toString() !== requested.uri ||
      editor.document.version !== requested.version ||
      !document ||
      document.version !== shown.version
    ) {
      this.end("ignored");
      return;
    }
    const change = new vscode.WorkspaceEdit();
    change.replace(document.uri, shown.range, shown.edit.newText);
    const end = await this.replace(shown, document, () => vscode.workspace.applyEdit(change));
    if (!end) {
      return;
    }
    this.access.notifications.request(shown.run, ExecuteCommandRequest.method, { command: COMMAND_ACCEPT_NEXT_EDIT, arguments: [shown.edit.id] });
    const selection = new vscode.Selection(end, end);
    let moved: vscode.TextEditor | undefined;
    try {
      // a cell's document opens in its notebook, in that cell's editor (scrolled into view where it was not)
      moved = await vscode.window.showTextDocument(document, { viewColumn: target?.viewColumn ?? editor.viewColumn, selection });
    } catch (error) {
      this.log(`next edit: could not move to ${shown.uri} (${error instanceof Error ? error.message : String(error)})`);
      if (target) {
        target.selection = selection;
      }
    }
    (moved ?? target)?.revealRange(new vscode.Range(shown.range.start, end), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    if (moved) {
      this.schedule(moved, 50); // the edit after this one, from where the cursor now is
    }
  }

  /** Replaces shown's range in document with its new text by apply (the editor's edit, or a workspace edit): where
   * the new text ends, or undefined where the editor refused it (the server is told: an outcome all the same). */
  private async replace(shown: Shown, document: vscode.TextDocument, apply: () => Thenable<boolean>): Promise<vscode.Position | undefined> {
    this.clear();
    const start = document.offsetAt(shown.range.start);
    this.applying = true;
    let applied = false;
    let why = "";
    try {
      applied = await apply();
    } catch (error) {
      why = ` (${error instanceof Error ? error.message : String(error)})`;
    } finally {
      this.applying = false;
    }
    if (!applied) {
      this.log(`next edit: the editor refused the edit in ${shown.uri}${why}`);
      this.notify(shown, DID_REJECT_NEXT_EDIT, { id: shown.edit.id, reason: "ignored" });
      return undefined;
    }
    // the document holds newText with its line breaks turned into the document's (\r\n in a CRLF file)
    const eol = document.eol === vscode.EndOfLine.CRLF ? "\r\n" : "\n";
    return document.positionAt(start + withLineBreaks(shown.edit.newText, eol).length);
  }

  private end(reason: RejectReason): void {
    const shown = this.shown;
    if (!shown) {
      return;
    }
    this.clear();
    this.notify(shown, DID_REJECT_NEXT_EDIT, { id: shown.edit.id, reason });
  }

  private clear(): void {
    this.shown = undefined;
    for (const editor of vscode.window.visibleTextEditors) {
      editor.setDecorations(this.removed, []);
      editor.setDecorations(this.inserted, []);
    }
    void vscode.commands.executeCommand("setContext", VISIBLE_CONTEXT_KEY, false);
  }

  /** Sends a suggestion's event to the server that issued it, if that is still the running one. */
  private notify(shown: Shown, method: string, params: object): void {
    this.access.notifications.send(shown.run, method, params);
  }

  dispose(): void {
    this.endAll("ignored");
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }
}
