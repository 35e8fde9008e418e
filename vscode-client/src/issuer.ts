// A suggestion (inline or next edit) belongs to the server run that issued it: one start of the server process.
// Its events and its accept go to that run only; a later run never issued it. The language client restarts a
// crashed server on its own and keeps its object, so the client alone does not name the server: a run begins each
// time the client gets to Running. With no dependency on VS Code (unit-tested on its own).

/** What a run needs of the language client (vscode-languageclient's LanguageClient). */
export interface RunClient {
  isRunning(): boolean;
  sendNotification(method: string, params: object): Promise<void>;
}

/** Only recent suggestions can still be on screen to accept. */
const MAX_ISSUED = 1000;

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

  current(): ServerRun<C> | undefined {
    return this.run?.client.isRunning() ? this.run : undefined;
  }

  /** The client in use changed state: getting to Running is a new server process (the first start, or the
   * client restarting one that died); leaving it ends the run. */
  changed(client: C, running: boolean): void {
    this.run = running ? new ServerRun(client) : undefined;
  }

  /** The client in use is stopped or replaced. */
  end(): void {
    this.run = undefined;
  }
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
    if (issuer !== this.current()) {
      this.log(`${method} not sent: the server that issued it is gone`);
      return;
    }
    const sent = issuer.client.sendNotification(method, params).catch((error: unknown) => this.log(`${method} failed: ${String(error)}`));
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  /** Resolves once the notifications already handed to the client are written (a server drops what arrives
   * after its shutdown request). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.sending]);
  }
}
