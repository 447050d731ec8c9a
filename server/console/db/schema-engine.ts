/**
 * Prisma's schema engine as WebAssembly (@prisma/schema-engine-wasm) driven through the same
 * driver adapters as the client, so migrations need no engine binary. Node 20 cannot import
 * .wasm as ESM without a flag, so the module is instantiated here from its file.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";
import * as glue from "@prisma/schema-engine-wasm/schema_engine_bg";
import type { SchemaEngine } from "@prisma/schema-engine-wasm";
import { adapterFor } from "./adapter.js";

let loaded: Promise<void> | undefined;

function load(): Promise<void> {
  loaded ??= (async () => {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve("@prisma/schema-engine-wasm"));
    const bytes = await readFile(join(dir, "schema_engine_bg.wasm"));
    const { instance } = await WebAssembly.instantiate(bytes, { "./schema_engine_bg.js": glue as unknown as WebAssembly.ModuleImports });
    glue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
  })();
  return loaded;
}

export interface OpenEngine {
  engine: SchemaEngine;
  /** Frees the engine and closes its connections (free() alone leaves them open, and SQLite locked). */
  close(): Promise<void>;
}

/** Opens the engine on a database; `datamodel` is the Prisma schema text. */
export async function openSchemaEngine(databaseUrl: string, datamodel: string, log: (msg: string) => void = () => {}): Promise<OpenEngine> {
  await load();
  const inner = adapterFor(databaseUrl);
  const opened: { dispose(): Promise<void> }[] = [];
  const track = async <A extends { dispose(): Promise<void> }>(a: Promise<A>) => {
    const adapter = await a;
    opened.push(adapter);
    return adapter;
  };
  const factory = bindMigrationAwareSqlAdapterFactory({
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: () => track(inner.connect()),
    connectToShadowDb: () => track(inner.connectToShadowDb()),
  });
  const engine = await glue.SchemaEngine.new({ datamodels: [["schema.prisma", datamodel]] }, log, factory);
  return {
    engine,
    async close() {
      engine.free();
      await Promise.all(opened.map((a) => a.dispose().catch(() => {})));
    },
  };
}
