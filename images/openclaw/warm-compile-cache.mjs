// Fills Node's compile cache for OpenClaw at image build: starts one gateway with a throwaway
// state directory, waits until it is ready, and stops it, so its compiled code lands in the cache
// directory given as the first argument. Gateways that later find NODE_COMPILE_CACHE pointing
// there skip most of their start-up compilation, even on a read-only root filesystem.
//
// Run as the gateway's user from OpenClaw's package directory. Nothing is configured that would
// reach the network (no channel, no update check, no model catalog refresh), and every plugin is
// allowed, so the cache covers whatever provider an instance uses.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cacheDir = process.argv[2];
if (!cacheDir) {
  console.error("usage: node warm-compile-cache.mjs CACHE_DIR");
  process.exit(2);
}
const port = 18789;
const state = mkdtempSync(join(tmpdir(), "openclaw-warm-"));
const config = {
  gateway: { mode: "local", port, bind: "loopback", auth: { mode: "token" } },
  models: { catalogRefresh: { enabled: false } },
  update: { checkOnStart: false },
};
writeFileSync(join(state, "openclaw.json"), JSON.stringify(config), { mode: 0o600 });

const gateway = spawn(process.execPath, ["openclaw.mjs", "gateway", "run"], {
  stdio: ["ignore", "inherit", "inherit"],
  env: {
    ...process.env,
    NODE_COMPILE_CACHE: cacheDir,
    HOME: state,
    TMPDIR: state,
    XDG_CACHE_HOME: join(state, "cache"),
    OPENCLAW_STATE_DIR: state,
    OPENCLAW_CONFIG_PATH: join(state, "openclaw.json"),
    OPENCLAW_GATEWAY_TOKEN: randomBytes(24).toString("hex"),
  },
});
const exited = new Promise((resolve) => gateway.on("exit", (code, signal) => resolve(code ?? signal)));

const began = Date.now();
let ready = false;
while (!ready && Date.now() - began < 300_000) {
  const early = await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 250, null))]);
  if (early !== null) break;
  try {
    ready = (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
  } catch {
    // not listening yet
  }
}
if (ready) {
  console.log(`compile cache: the gateway was ready after ${((Date.now() - began) / 1000).toFixed(1)} s; stopping it`);
}
gateway.kill("SIGTERM"); // a clean exit writes the rest of the cache
const killer = setTimeout(() => gateway.kill("SIGKILL"), 30_000);
await exited;
clearTimeout(killer);
rmSync(state, { recursive: true, force: true });
process.exit(ready ? 0 : 1);
