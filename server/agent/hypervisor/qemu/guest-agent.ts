/**
 * Application-consistent points through qemu-guest-agent: fs-freeze before the freeze of the
 * disks, fs-thaw after. A guest without the agent does not answer in time, and the cycle
 * falls back to a crash-consistent point (the engine warns).
 */
import { connect } from "node:net";
import { join } from "node:path";

function request(dir: string, commands: { execute: string; arguments?: unknown }[], timeoutMs: number): Promise<unknown[]> {
  return new Promise((ok, fail) => {
    const sock = connect(join(dir, "qga.sock"));
    const answers: unknown[] = [];
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      fail(new Error(`the guest agent (qemu-guest-agent) did not answer within ${timeoutMs} ms; is it installed and running in the guest?`));
    }, timeoutMs);
    sock.on("error", (err) => {
      clearTimeout(timer);
      fail(new Error(`the guest agent channel is not available: ${err.message}`));
    });
    sock.on("connect", () => {
      // guest-sync-delimited flushes what an earlier client left behind in the channel.
      const id = Math.floor(Math.random() * 1e9);
      sock.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(JSON.stringify({ execute: "guest-sync-delimited", arguments: { id } }) + "\n")]));
      sock.write(commands.map((c) => JSON.stringify(c)).join("\n") + "\n");
    });
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      buf += chunk.replace(/\xff/g, "");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { return?: unknown; error?: { desc: string } };
        if (msg.error) {
          clearTimeout(timer);
          sock.destroy();
          return fail(new Error(`the guest agent refused: ${msg.error.desc}`));
        }
        answers.push(msg.return);
        if (answers.length === commands.length + 1) {
          clearTimeout(timer);
          sock.end();
          ok(answers.slice(1));
        }
      }
    });
  });
}

/** Freezes the guest's file systems; resolves to the thaw. */
export async function guestFreeze(dir: string, timeoutMs: number): Promise<() => void> {
  await request(dir, [{ execute: "guest-fsfreeze-freeze" }], timeoutMs);
  return () => void request(dir, [{ execute: "guest-fsfreeze-thaw" }], 10_000).catch(() => undefined);
}
