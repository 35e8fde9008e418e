// The Tact extension: starts `<python> -m lsp_server` (what `tact serve` runs) with the configured
// interpreter, restarts it when a setting that needs a new process changes, logs to the "Tact" output
// channel, and adds ghost-text suggestions, next edits and a status bar item on top of the language client.
import * as path from "node:path";
import * as readline from "node:readline";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  LanguageClient,
  State,
  type ErrorHandler,
  type LanguageClientOptions,
  type Middleware,
  type StaticFeature,
} from "vscode-languageclient/node";
import { InlineSuggestions } from "./inline";
import { closeRun, IssuerNotifications, ServerRuns } from "./issuer";
import { NextEdits } from "./nextEdit";
import { COMMAND_ACCEPT_SUGGESTION, STATUS, type ServerStatus } from "./protocol";
import { showReport } from "./report";
import { buildReport } from "./reportBuilder";
import {
  checkPython, ServerControl, serverExecutable, serverLogLine, type ServerLogLevel, START_TIMEOUT_MS, startServer,
  StartTimeoutError, stopServer,
} from "./server";
import { SELECTOR } from "./selector";
import {
  needsRestart, pythonPath, rememberedInUse, rememberSettings, SECTION, serverSettings, withRemembered, workspaceDir,
} from "./settings";
import { StatusBar } from "./statusBar";

/** Features the extension provides itself (inline completion with the suggestion lifecycle) or leaves out
 * (classic completion would ask the model a second time per keystroke). */
const OWN_FEATURES = new Set(["textDocument/inlineCompletion", "textDocument/completion"]);
const STATUS_POLL_MS = 4000;

class TactClient extends LanguageClient {
  /** Given up on: its server did not answer initialize in time. Its process is killed and not started again. */
  abandoned = false;

  /** Gives up on the start under way (a starting client cannot be stopped): kills the server process, so the
   * client's start fails (abandonedErrorHandler keeps it from starting another). */
  abandon(): void {
    this.abandoned = true;
    this.serverProcess?.kill("SIGKILL");
  }

  /** A client given up on logs its errors (the failed start, the connection closed) without a notification of
   * its own: the extension says what happened and offers a restart. */
  override error(message: string, data?: unknown, showNotification: boolean | "force" = true): void {
    super.error(message, data, this.abandoned ? false : showNotification);
  }

  override registerFeature(feature: StaticFeature): void {
    const method = (feature as { registrationType?: { method?: string } }).registrationType?.method;
    if (method && OWN_FEATURES.has(method)) {
      return;
    }
    super.registerFeature(feature);
  }
}

/** The client's error handling (vscode-languageclient's default: restart a crashed server, up to 4 times in 3
 * minutes), except that the server of a client given up on is not started again when its process ends. */
function abandonedErrorHandler(client: () => TactClient): ErrorHandler {
  let fallback: ErrorHandler | undefined;
  const handler = () => (fallback ??= client().createDefaultErrorHandler());
  return {
    error: (error, message, count) => handler().error(error, message, count),
    closed: () =>
      client().abandoned
        ? { action: CloseAction.DoNotRestart, message: "Tact: the server did not answer initialize in time and was stopped.", handled: true }
        : handler().closed(),
  };
}

/** Declares inline completion support, since the extension handles it (not the dropped built-in feature). */
const inlineCompletionCapability: StaticFeature = {
  getState: () => ({ kind: "static" }),
  fillClientCapabilities(capabilities) {
    const textDocument = (capabilities.textDocument ??= {});
    textDocument.inlineCompletion = { dynamicRegistration: false };
  },
  initialize() {},
  clear() {},
};

class TactExtension implements vscode.Disposable {
  private client: TactClient | undefined;
  /** The run of the client in use: each suggestion's events and accept go to the run that issued it; a closing one
   * (while a stop waits for its outcomes) issues nothing more. */
  private readonly runs = new ServerRuns<LanguageClient>();
  /** Inline suggestions' and next edits' events, each to the run that issued it. */
  private readonly notifications = new IssuerNotifications(() => this.runs.current(), (m) => this.log(m));
  /** Starts, restarts and stops the server one step after another. */
  private readonly control = new ServerControl({
    start: () => this.doStart(),
    endOutcomes: () => this.endOutcomes(),
    stop: () => this.stop(),
  });
  private readonly output = vscode.window.createOutputChannel("Tact", { log: true });
  private readonly inline: InlineSuggestions;
  private readonly nextEdits: NextEdits;
  private readonly statusBar: StatusBar;
  private readonly disposables: vscode.Disposable[] = [];
  private statusTimer: ReturnType<typeof setInterval> | undefined;
  private refreshQueued = false;
  // A setting the server reads only at start changed: the settings pushed until the new server starts are its. A
  // push to the server being replaced (the language client sends one beside the restart; this extension's listener
  // runs first, registered before any client's) made it apply them first: its session ended in another telemetry
  // database, or it began loading another model as it stopped.
  private restartPending = false;
  private lastStatus: ServerStatus | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    const access = { run: () => this.runs.issuing(), enabled: () => this.enabled(), notifications: this.notifications };
    this.inline = new InlineSuggestions(access, SELECTOR, {
      onActivity: () => this.refreshSoon(),
      onAccepted: (uri) => this.nextEdits.requestSoon(uri),
    }, (m) => this.log(m));
    this.nextEdits = new NextEdits(access, SELECTOR, (m) => this.log(m));
    this.statusBar = new StatusBar(this.inline.counters, () => this.enabled());
  }

  activate(): void {
    rememberSettings(this.context.extension.packageJSON);
    this.inline.register();
    this.nextEdits.register();
    this.disposables.push(
      this.output,
      this.inline,
      this.nextEdits,
      this.statusBar,
      vscode.commands.registerCommand("tact.toggle", () => this.toggle()),
      vscode.commands.registerCommand("tact.showMenu", () => this.showMenu()),
      vscode.commands.registerCommand("tact.openReport", () => this.openReport()),
      vscode.commands.registerCommand("tact.restartServer", () => this.restart("restart requested")),
      vscode.commands.registerCommand("tact.showOutput", () => this.output.show(true)),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfiguration(e)),
    );
    void this.control.start().catch((error: unknown) => this.log(`starting the server: ${error instanceof Error ? error.message : String(error)}`));
  }

  private enabled(): boolean {
    return vscode.workspace.getConfiguration(SECTION).get<boolean>("enable", true);
  }

  private log(message: string): void {
    this.output.info(message);
  }

  private async doStart(): Promise<void> {
    this.statusBar.setState("starting");
    const python = pythonPath();
    const cwd = workspaceDir();
    const check = await checkPython(python, cwd);
    if (this.control.disposed) {
      return;
    }
    if (!check.ok) {
      const message = `Tact: ${check.problem}. Set "tact.pythonPath" to a Python that has Tact installed.`;
      this.log(message);
      this.statusBar.setState("failed", check.problem);
      void vscode.window.showErrorMessage(message, "Open Settings", "Show Output").then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "tact.pythonPath");
        } else if (choice === "Show Output") {
          this.output.show(true);
        }
      });
      return;
    }
    const settings = serverSettings(this.context.extension.packageJSON);
    const modelPath = typeof settings.modelPath === "string" ? settings.modelPath : "";
    const executable = serverExecutable(python, modelPath, cwd);
    this.log(`starting Tact ${check.version}: ${executable.command} ${(executable.args ?? []).join(" ")}`);
    this.restartPending = false; // this server starts with the settings as they are now
    const middleware: Middleware = {
      workspace: {
        didChangeConfiguration: async (sections, next) => {
          // This server is about to be replaced by one started with the new values (onConfiguration). Told by the
          // values read at start differing from today's instead, a value the window stopped seeing (a remote window
          // loses machine-overridable user settings) with no change event dropped every later push for good.
          if (this.restartPending) {
            return;
          }
          const remembered = rememberedInUse();
          if (Object.keys(remembered).length === 0) {
            return next(sections);
          }
          // a machine-overridable setting the window stopped seeing reads its default: the push the client would
          // send carried that default (another telemetry database, the shipped models); this one has the value
          // remembered instead, as the server was started with
          await client.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { [SECTION]: serverSettings(this.context.extension.packageJSON) },
          });
        },
        configuration: async (params, token, next) => {
          // the settings the server pulls at `initialized` (and after a push without them), over initializationOptions:
          // with the remembered values used instead of defaults read without a change event, as those options were
          const result = await next(params, token);
          return Array.isArray(result)
            ? result.map((values, i) => (params.items[i]?.section === SECTION ? withRemembered(values) : values))
            : result;
        },
      },
      executeCommand: async (command, args, next) => {
        if (command === COMMAND_ACCEPT_SUGGESTION && !this.inline.accepted(args[0])) {
          return undefined; // ghost text of the server before a restart or a crash: this one never issued it
        }
        return next(command, args);
      },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: SELECTOR as LanguageClientOptions["documentSelector"],
      initializationOptions: { [SECTION]: settings },
      outputChannel: this.output,
      stdioOptions: { stdout: (input, channel) => logLines(input, channel, "info"), stderr: (input, channel) => logLines(input, channel, "info") },
      middleware,
      errorHandler: abandonedErrorHandler(() => client),
      initializationFailedHandler: (error: unknown) => {
        // what vscode-languageclient does without a handler (the server asks for no retry), but not for a client
        // given up on: its initialize failed because its process was killed
        if (!client.abandoned) {
          const message = error instanceof Error ? error.message : "";
          if (message) {
            void vscode.window.showErrorMessage(message);
          }
          client.error("Server initialization failed.", error);
        }
        return false; // the client stops
      },
    };
    const client = new TactClient("tact", "Tact", { run: executable, debug: executable }, clientOptions);
    client.registerFeature(inlineCompletionCapability);
    let runCount = 0; // of this client
    client.onDidChangeState((e) => {
      if (client.abandoned) {
        if (e.newState === State.Running) {
          // it answered after all, after it was given up on: a server that runs on unowned would keep the
          // commands it registered (tact.acceptSuggestion) from the next client
          client.stop(5000).catch((error: unknown) => this.log(`stopping a server given up on: ${error instanceof Error ? error.message : String(error)}`));
        }
        return;
      }
      if (this.client !== client) {
        return;
      }
      // the client restarts a crashed server on its own: Running again is another server process
      this.runs.changed(client, e.newState === State.Running);
      if (e.newState === State.Stopped) {
        this.statusBar.setState("stopped", "the server stopped; see the Tact output");
      } else if (e.newState === State.Running) {
        // another server process: the counts start again with its session, as its own (hidden, status) do
        this.inline.resetCounters();
        this.statusBar.setState("running");
        this.nextEdits.reset();
        if (runCount++ > 0) {
          this.log("the server runs again after it stopped; suggestions made before are not reported to it");
          void this.refreshStatus();
        }
      }
    });
    this.client = client;
    try {
      await startServer(client, START_TIMEOUT_MS);
    } catch (error) {
      if (this.control.disposed) {
        return;
      }
      if (error instanceof StartTimeoutError) {
        this.startTimedOut(client, error);
        return;
      }
      const problem = error instanceof Error ? error.message : String(error);
      this.log(`the server did not start: ${problem}`);
      this.statusBar.setState("failed", problem);
      void vscode.window.showErrorMessage(`Tact: the server did not start (${problem}).`, "Show Output").then((c) => {
        if (c) {
          this.output.show(true);
        }
      });
      return;
    }
    if (this.control.disposed) {
      return; // deactivated while it started: the next step stops it
    }
    this.log(`server running (${client.initializeResult?.serverInfo?.name ?? "tact"} ${client.initializeResult?.serverInfo?.version ?? ""})`);
    void this.refreshStatus();
    clearInterval(this.statusTimer);
    this.statusTimer = setInterval(() => void this.refreshStatus(), STATUS_POLL_MS);
  }

  /** The server did not answer initialize in time, and was given up on: say so, and how to try again. */
  private startTimedOut(client: TactClient, error: StartTimeoutError): void {
    if (this.client === client) {
      this.client = undefined; // nothing to stop: its process was killed
    }
    const problem = `${error.message}, so it was stopped; see the Tact output, then restart it (\`Tact: Restart Server\`)`;
    this.log(`${error.message}; the server process was killed`);
    this.statusBar.setState("failed", problem);
    void vscode.window
      .showErrorMessage(`Tact: ${error.message}, so it was stopped.`, "Restart Server", "Show Output")
      .then((choice) => {
        if (choice === "Restart Server") {
          void vscode.commands.executeCommand("tact.restartServer");
        } else if (choice === "Show Output") {
          this.output.show(true);
        }
      });
  }

  private async stop(): Promise<void> {
    clearInterval(this.statusTimer);
    const client = this.client;
    this.client = undefined;
    this.runs.end();
    if (client) {
      try {
        await stopServer(client, 5000);
      } catch (error) {
        this.log(`stopping the server: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  /** Before a stop: the run closes and the suggestion and next edit on screen end (ignored) while the server that
   * issued them still runs: their outcomes must reach it, not the next one. */
  private async endOutcomes(): Promise<void> {
    await closeRun(this.runs, [this.inline, this.nextEdits], this.notifications);
  }

  private async restart(why: string): Promise<void> {
    this.log(`restarting the server: ${why}`);
    await this.control.restart().catch((error: unknown) => this.log(`restarting the server: ${error instanceof Error ? error.message : String(error)}`));
  }

  private onConfiguration(e: vscode.ConfigurationChangeEvent): void {
    // first: the restart below and the client's push (its listener runs after this one) read what the event tells of
    rememberSettings(this.context.extension.packageJSON, e);
    if (needsRestart(e)) {
      this.restartPending = true;
      void this.restart("settings changed");
    } else if (e.affectsConfiguration(SECTION)) {
      // the language client sends workspace/didChangeConfiguration itself, for the section the server registers
      if (e.affectsConfiguration(`${SECTION}.enable`) && !this.enabled()) {
        // turned off: what is on screen goes, or Tab would still apply it (the run goes on: it is not closed)
        this.inline.endAll("ignored");
        this.nextEdits.endAll("ignored");
      }
      this.statusBar.render();
      this.refreshSoon();
    }
  }

  private async toggle(): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const inspect = config.inspect<boolean>("enable");
    const target = inspect?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : inspect?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
    await config.update("enable", !this.enabled(), target);
    this.statusBar.render();
  }

  private async showMenu(): Promise<void> {
    const items: (vscode.QuickPickItem & { command: string })[] = [
      { label: this.enabled() ? "$(circle-slash) Turn suggestions off" : "$(sparkle) Turn suggestions on", command: "tact.toggle" },
      { label: "$(graph) Open latest report", command: "tact.openReport" },
      { label: "$(output) Show output", command: "tact.showOutput" },
      { label: "$(debug-restart) Restart server", command: "tact.restartServer" },
      { label: "$(gear) Settings", command: "workbench.action.openSettings" },
    ];
    const choice = await vscode.window.showQuickPick(items, { title: "Tact" });
    if (choice) {
      await vscode.commands.executeCommand(choice.command, ...(choice.command === "workbench.action.openSettings" ? ["@ext:tact.tact"] : []));
    }
  }

  private refreshSoon(): void {
    this.statusBar.render();
    if (this.refreshQueued) {
      return;
    }
    this.refreshQueued = true;
    setTimeout(() => {
      this.refreshQueued = false;
      void this.refreshStatus();
    }, 500);
  }

  private async refreshStatus(): Promise<ServerStatus | undefined> {
    const client = this.runs.current()?.client;
    if (!client) {
      return undefined;
    }
    try {
      this.lastStatus = await client.sendRequest<ServerStatus>(STATUS, {});
      this.statusBar.setStatus(this.lastStatus);
      if (this.lastStatus?.loading) {
        this.refreshSoon(); // the model is still loading: look again shortly
      }
    } catch (error) {
      this.log(`${STATUS} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    return this.lastStatus;
  }

  private async openReport(): Promise<void> {
    const status = (await this.refreshStatus()) ?? this.lastStatus;
    const database = status?.database;
    if (!database) {
      const why = status?.telemetryReason ? ` (${status.telemetryReason})` : " (is the server running with tact.telemetry on?)";
      void vscode.window.showWarningMessage(`Tact: no telemetry database to report on${why}.`);
      return;
    }
    const out = path.join(this.context.globalStorageUri.fsPath, "report");
    try {
      const built = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Tact: building the report…" },
        () => buildReport(pythonPath(), String(database), out, workspaceDir()),
      );
      await showReport(built.html);
      if (built.partial) {
        void vscode.window.showInformationMessage("Tact: the report is partial (some data is missing); it says why at the top.");
      }
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      this.log(`report failed: ${problem}`);
      void vscode.window.showErrorMessage(`Tact: the report could not be built (${problem}).`, "Show Output").then((c) => {
        if (c) {
          this.output.show(true);
        }
      });
    }
  }

  async dispose(): Promise<void> {
    await this.control.dispose().catch(() => undefined); // after the step under way, which may be a start
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }
}

let extension: TactExtension | undefined;

export function activate(context: vscode.ExtensionContext): void {
  extension = new TactExtension(context);
  extension.activate();
}

export async function deactivate(): Promise<void> {
  await extension?.dispose();
  extension = undefined;
}

/** The server's output, a line at a time, logged at the level each line names (`serverLogLine`). */
function logLines(input: NodeJS.ReadableStream, channel: vscode.LogOutputChannel, start: ServerLogLevel): void {
  let level = start;
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 }).on("line", (line: string) => {
    const logged = serverLogLine(line, level);
    level = logged.level;
    channel[logged.level](logged.text);
  });
}
