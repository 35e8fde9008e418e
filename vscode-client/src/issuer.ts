// A suggestion (inline or next edit) belongs to the server run that issued it: one start of the server process.
// Its events and its accept go to that run only; a later run never issued it. The language client restarts a
// crashed server on its own and keeps its object, so the client alone does not name the server: a run begins each
// time the client gets to Running. Before the extension stops a run (a restart, deactivation) the run closes: it
// issues nothing more while the outcomes of what it issued are sent. With no dependency on VS Code (unit-tested on
// its own).
import type { RejectReason } from "./protocol";

/** What a run needs of the language client (vscode-languageclient's LanguageClient). */
export interface RunClient {
  isRunning(): boolean;
  sendNotification(method: string, params: object): Promise<void>;
  sendRequest(method: string, params: object): Promise<unknown>;
}

/** Only recent suggestions can still be on screen to accept. */
const MAX_ISSUED = 1000;

/** How long a stop waits for the events and accepts handed to the client (IssuerNotifications.flush). */
export const FLUSH_LIMIT_MS = 2000;

/** One start of the server process by its client. */
export class ServerRun<C extends RunClient = RunClient> {
  private readonly ids = new Set<string>();

  constructor(readonly client: C) {}

  /** The run issued this suggestion id. */
  remember(id: string): void {
    this.ids.add(id);
    if (this.ids.size > MAX_ISSUED) {
      this.ids.delete(this.ids.values().next().value as string); // the oldest
    }
  }

  issued(id: string): boolean {
    return this.ids.has(id);
  }
}

/** The run of the client in use, if its server runs. */
export class ServerRuns<C extends RunClient = RunClient> {
  private run: ServerRun<C> | undefined;
  /** Set from close() until the client in use is stopped (end()). */
  private closing = false;

  /** The run that gets the events of what it issued: the client's running server, closing or not. */
  current(): ServerRun<C> | undefined {
    return this.run?.client.isRunning() ? this.run : undefined;
  }

  /** The run that may issue suggestions and take their accepts: the current one unless it is closing. */
  issuing(): ServerRun<C> | undefined {
    return this.closing ? undefined : this.current();
  }

  /** The client in use changed state: getting to Running is a new server process (the first start, or the
   * client restarting one that died); leaving it ends the run. A client that restarts its crashed server while
   * the extension stops it stays closed. */
  changed(client: C, running: boolean): void {
    this.run = running ? new ServerRun(client) : undefined;
  }

  /** The client in use is about to be stopped: it issues nothing more, and what it issued still gets its
   * events until end(). */
  close(): void {
    this.closing = true;
  }

  /** The client in use is stopped or replaced. */
  end(): void {
    this.run = undefined;
    this.closing = false;
  }
}

/** What shows a run's suggestions (inline suggestions, next edits). */
export interface SuggestionSurface {
  /** Ends every suggestion on screen, its outcome sent to the run that issued it. */
  endAll(reason: RejectReason): void;
  /** Resolves once the outcomes still being decided (an edit being applied) are handed to the client. */
  settled?(): Promise<void>;
}

/** Before the client in use is stopped (a restart, deactivation): the run closes, so that an answer or a show that
 * comes from now on is never shown and an accept never sent (its outcome could not follow once the run ends), what
 * is on screen ends ("ignored") while the server that issued it still runs, and the events handed to the client are
 * written. Call runs.end() when the client is stopped. */
export async function closeRun(runs: Pick<ServerRuns, "close">, surfaces: SuggestionSurface[], notifications: IssuerNotifications): Promise<void> {
  runs.close();
  for (const surface of surfaces) {
    surface.endAll("ignored");
  }
  await Promise.all(surfaces.map((surface) => surface.settled?.()));
  await notifications.flush();
}

/** Sends each suggestion's events to the run that issued it. Shared by inline suggestions and next edits. */
export class IssuerNotifications {
  private readonly sending = new Set<Promise<unknown>>();

  constructor(
    private readonly current: () => ServerRun | undefined,
    private readonly log: (message: string) => void,
  ) {}

  /** Sends to ``issuer`` if it is still the running server; otherwise the event has no one to go to. */
  send(issuer: ServerRun, method: string, params: object): void {
    this.dispatch(issuer, method, () => issuer.client.sendNotification(method, params));
  }

  /** A request (an accept command) to ``issuer`` if it is still the running server, written before flush()
   * resolves, as the notifications are. */
  request(issuer: ServerRun, method: string, params: object): void {
    this.dispatch(issuer, method, () => issuer.client.sendRequest(method, params));
  }

  private dispatch(issuer: ServerRun, method: string, sending: () => Promise<unknown>): void {
    if (issuer !== this.current()) {
      this.log(`${method} not sent: the server that issued it is gone`);
      return;
    }
    const sent = sending().catch((error: unknown) => this.log(`${method} failed: ${error instanceof Error ? error.message : String(error)}`));
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  /** Resolves once the notifications already handed to the client are written (a server drops what arrives
   * after its shutdown request), or after ``limitMs``: an accept request resolves on its answer, and a hung server
   * (the usual reason for Restart Server) never answers, so a stop waited for it without end. */
  async flush(limitMs = FLUSH_LIMIT_MS): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, limitMs);
    });
    await Promise.race([Promise.allSettled([...this.sending]), limit]);
    clearTimeout(timer);
  }
}
