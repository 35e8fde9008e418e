// Finding, starting and stopping the Tact server: `<python> -m lsp_server` (what `tact serve` runs) on stdio.
import { execFile } from "node:child_process";
import * as path from "node:path";
import type { Executable } from "vscode-languageclient/node";

export interface PythonCheck {
  ok: boolean;
  version?: string; // Tact's version when ok
  problem?: string; // why not, for the user
}

// lsp_server imports from a checkout alone: the modules the server needs are looked for too (without importing them)
const PROBE =
  "import sys, lsp_server; missing = lsp_server.missing_modules(); " +
  "sys.exit('Tact needs modules this Python lacks: ' + ', '.join(missing)) if missing else sys.stdout.write(lsp_server.__version__)";
const LACKING = /needs modules this Python lacks: (.*)/;
const install = (python: string) =>
  `install it there: \`${python} -m pip install -e <your Tact checkout>\`, or use the .venv/bin/python that Tact's scripts/setup makes`;

/** An interpreter setting as the command to run: `~` and `${workspaceFolder}` expanded, and a relative path
 * (one with a directory part) resolved against the workspace folder, as the Python extension reads
 * python.defaultInterpreterPath; the server runs there too. A bare name (python3) is looked up on PATH. */
export function resolveInterpreter(setting: string, folder: string | undefined, home: string | undefined): string {
  let python = setting.trim();
  if (folder) {
    python = python.replace(/\$\{workspaceFolder\}/g, folder);
  }
  if (home && (python === "~" || python.startsWith("~/") || python.startsWith("~\\"))) {
    python = home + python.slice(1);
  }
  if (folder && /[\\/]/.test(python) && !path.isAbsolute(python)) {
    python = path.resolve(folder, python);
  }
  return python;
}

/** What a failed Python run says: its last line of stderr, or the error itself when it wrote none. */
export function lastErrorLine(stderr: string, error: unknown): string {
  return stderr.trim().split("\n").pop() || String(error);
}

/** Whether `python` can run the server: it exists, imports lsp_server (from cwd, as the server will) and has the
 * modules the server imports. */
export function checkPython(python: string, cwd?: string, timeoutMs = 30000): Promise<PythonCheck> {
  return new Promise((resolve) => {
    execFile(python, ["-c", PROBE], { cwd, timeout: timeoutMs, env: process.env }, (error, stdout, stderr) => {
      if (!error) {
        resolve({ ok: true, version: stdout.trim() });
        return;
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "EACCES") {
        resolve({ ok: false, problem: `the Python interpreter "${python}" was not found (${code})` });
      } else if (/No module named '?lsp_server/.test(stderr)) {
        resolve({ ok: false, problem: `Tact is not installed in "${python}" (${install(python)})` });
      } else if (LACKING.test(stderr)) {
        const missing = (LACKING.exec(stderr) as RegExpExecArray)[1].trim();
        resolve({
          ok: false,
          problem: `Tact's dependencies are not installed in "${python}" (no ${missing}; ${install(python)})`,
        });
      } else if (error.killed) {
        resolve({ ok: false, problem: `"${python}" did not answer within ${Math.round(timeoutMs / 1000)} s` });
      } else {
        resolve({ ok: false, problem: `"${python}" cannot import Tact: ${lastErrorLine(stderr, error)}` });
      }
    });
  });
}

/** The server process: stdio, model directory on the command line so it loads while VS Code initializes. */
export function serverExecutable(python: string, modelPath: string, cwd?: string): Executable {
  const args = ["-m", "lsp_server"];
  if (modelPath) {
    args.push("--model", modelPath);
  }
  return { command: python, args, options: { cwd, env: { ...process.env, PYTHONUNBUFFERED: "1" } } };
}

/** How long a server may take to answer initialize (it answers before its model loads; Python's imports take
 * seconds). One that has not answered by then is given up on: its process is killed, so that restarts and stops,
 * which wait for a start to end, are not held behind it forever. */
export const START_TIMEOUT_MS = 60000;
/** How long a start given up on may take to end once its process is killed. */
const ABANDON_WAIT_MS = 5000;

/** What startServer and stopServer need of a language client (vscode-languageclient's LanguageClient, with
 * abandon added by the extension). */
export interface StoppableClient {
  isRunning(): boolean;
  /** Starting or running. */
  needsStop(): boolean;
  /** While starting: the start under way. */
  start(): Promise<void>;
  stop(timeoutMs?: number): Promise<void>;
  /** Gives up on the start under way: kills the server process and keeps the client from starting it again (a
   * starting client cannot be stopped); the client's start then fails. Should the server get to run all the
   * same, the client is stopped then. */
  abandon(): void;
}

/** A server that did not answer initialize in time, and was given up on. */
export class StartTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the server did not answer initialize within ${timeoutMs / 1000} s`);
    this.name = "StartTimeoutError";
  }
}

/** Starts the client's server. One that does not answer initialize within timeoutMs is given up on (abandon):
 * the start rejects with StartTimeoutError once the client's start has ended, or waitMs after the kill if it
 * does not end. A start that fails in time rejects with the client's error. */
export async function startServer(client: Pick<StoppableClient, "start" | "abandon">, timeoutMs: number, waitMs = ABANDON_WAIT_MS): Promise<void> {
  const start = client.start();
  if (await settleOrAbandon(client, start, timeoutMs, waitMs)) {
    return start;
  }
  throw new StartTimeoutError(timeoutMs);
}

/** Stops the client's server, whatever the client is doing. The client restarts a crashed server on its own,
 * and a starting client cannot be stopped (vscode-languageclient throws): that server would run on unowned, its
 * commands (tact.acceptSuggestion) registered, so the next client's registration fails and it never starts. A
 * starting client is stopped once it runs, or given up on (abandon) when its server has not answered initialize
 * within startTimeoutMs; one whose start failed has nothing to stop. */
export async function stopServer(client: StoppableClient, timeoutMs: number, startTimeoutMs = START_TIMEOUT_MS): Promise<void> {
  for (let tries = 0; tries < 3 && client.needsStop(); tries++) {
    if (client.isRunning()) {
      await client.stop(timeoutMs);
      return;
    }
    const start = client.start().catch(() => undefined); // its failure is the client's to report
    if (!(await settleOrAbandon(client, start, startTimeoutMs, ABANDON_WAIT_MS))) {
      if (!client.isRunning()) {
        return; // ended, or a process that did not die: the client is stopped should it ever run
      }
    }
  }
}

/** Whether the client's start settles within timeoutMs. One that does not is given up on (abandon) and given
 * waitMs more to end. */
async function settleOrAbandon(client: Pick<StoppableClient, "abandon">, start: Promise<unknown>, timeoutMs: number, waitMs: number): Promise<boolean> {
  if (await settlesWithin(start, timeoutMs)) {
    return true;
  }
  client.abandon();
  await settlesWithin(start, waitMs);
  return false;
}

/** Whether promise settles (resolves or rejects) within ms. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(() => true, () => true);
  return Promise.race([settled, timeout]).finally(() => clearTimeout(timer));
}

/** The steps ServerControl orders (the extension's). */
export interface ServerSteps {
  /** Starts a server. */
  start(): Promise<void>;
  /** Ends the suggestions on screen while the server that issued them runs: their outcomes reach it. */
  endOutcomes(): Promise<void>;
  /** Stops the server, whatever its client is doing (stopServer). */
  stop(): Promise<void>;
}

/** Starts, restarts and stops the server one step after another, so that one client at a time owns the server's
 * commands. A client restarting a crashed server registers them (tact.acceptSuggestion) again once it runs: a new
 * client started before that one is stopped (by a second restart while the first waits for it) would clash with it
 * on the registration, and one of the two would fail to start. Restarts asked for before the queued one begins join
 * it; nothing starts after dispose. */
export class ServerControl {
  private last: Promise<unknown> = Promise.resolve();
  private queuedRestart: Promise<void> | undefined;
  private isDisposed = false;

  constructor(private readonly steps: ServerSteps) {}

  get disposed(): boolean {
    return this.isDisposed;
  }

  start(): Promise<void> {
    return this.queue(() => this.startUnlessDisposed());
  }

  restart(): Promise<void> {
    this.queuedRestart ??= this.queue(async () => {
      this.queuedRestart = undefined; // one asked for from now on applies what changes meanwhile
      await this.endAndStop();
      await this.startUnlessDisposed();
    });
    return this.queuedRestart;
  }

  /** Stops the server once the step under way is done. */
  dispose(): Promise<void> {
    this.isDisposed = true;
    return this.queue(() => this.endAndStop());
  }

  private async endAndStop(): Promise<void> {
    await this.steps.endOutcomes();
    await this.steps.stop();
  }

  private async startUnlessDisposed(): Promise<void> {
    if (!this.isDisposed) {
      await this.steps.start();
    }
  }

  private queue(step: () => Promise<void>): Promise<void> {
    const next = this.last.then(step);
    this.last = next.catch(() => undefined); // a failed step does not stop the ones after it
    return next;
  }
}

/** A server log line's channel level: the Python logging level it names. */
export type ServerLogLevel = "trace" | "debug" | "info" | "warn" | "error";

const RECORD = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/;
const LEVELS: Record<string, ServerLogLevel> = { DEBUG: "debug", INFO: "info", WARNING: "warn", ERROR: "error", CRITICAL: "error" };

/** One line of the server's stderr as the output channel logs it: at the level its record names (`time LEVEL name:
 * message`, the server's format), without the time and level the channel adds itself; a line that starts no record
 * (a traceback's) at the level of the record before it. Logged with `error` whatever they said, every warning and
 * info line was tagged [error], and the channel's own level could not tell them apart. */
export function serverLogLine(line: string, previous: ServerLogLevel): { level: ServerLogLevel; text: string } {
  const record = RECORD.exec(line);
  return record ? { level: LEVELS[record[1]], text: record[2] } : { level: previous, text: line };
}
