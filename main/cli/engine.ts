// Running engine work from the command line: one engine worker for the command, Ctrl-C cancels
// the work in progress (a second Ctrl-C quits at once), and the worker is always shut down.
import { EngineHost } from '../engine/host.ts';

export async function withEngine<T>(fn: (host: EngineHost, signal: AbortSignal) => Promise<T>): Promise<T> {
  const host = await EngineHost.start();
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts === 1) {
      process.stderr.write('\ninterrupted: stopping after the current step (Ctrl-C again to quit now)\n');
      controller.abort();
    } else {
      // The host's exit hook still waits for the session run in progress: quitting inside one aborts the process.
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(host, controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
    await host.close();
  }
}
