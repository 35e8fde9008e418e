// Notifications about one suggestion go to the server that issued it: after a restart its ids mean nothing to the
// new server. Shared by inline suggestions and next edits.
import type { LanguageClient } from "vscode-languageclient/node";

export class IssuerNotifications {
  private readonly sending = new Set<Promise<unknown>>();

  constructor(
    private readonly current: () => LanguageClient | undefined,
    private readonly log: (message: string) => void,
  ) {}

  /** Sends to ``issuer`` if it is still the running server; otherwise the event has no one to go to. */
  send(issuer: LanguageClient | undefined, method: string, params: object): void {
    const client = this.current();
    if (client !== undefined && client === issuer && client.isRunning()) {
      const sent = client.sendNotification(method, params).catch((error: unknown) => this.log(`${method} failed: ${String(error)}`));
      this.sending.add(sent);
      void sent.finally(() => this.sending.delete(sent));
    }
  }

  /** Resolves once the notifications already handed to the client are written (a server drops what arrives
   * after its shutdown request). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.sending]);
  }
}
