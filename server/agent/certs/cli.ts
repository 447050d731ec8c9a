/**
 * npm run certs -- ca   --dir certs [--name "Replica Manager CA"]
 * npm run certs -- host --dir certs hv01.example.com [more names...]
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCa, issueCertificate, readPair, writePair } from "./certs.js";

const USAGE = `usage:
  npm run certs -- ca --dir DIR [--name NAME] [--force]   create a certificate authority (DIR/ca.pem, DIR/ca-key.pem)
  npm run certs -- host --dir DIR FQDN [NAME...]     issue a host certificate signed by DIR's CA (DIR/FQDN.pem, DIR/FQDN-key.pem)`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { dir: { type: "string" }, name: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  const [command, ...names] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (!values.dir) {
    console.error("--dir is required: the folder that holds (or will hold) the CA\n" + USAGE);
    return 2;
  }
  if (command === "ca") {
    if (existsSync(join(values.dir, "ca.pem")) && !values.force) {
      console.error(`${join(values.dir, "ca.pem")} exists: replacing a CA invalidates every certificate it issued; add --force if that is what you want`);
      return 2;
    }
    const files = await writePair(values.dir, "ca", await createCa(values.name ?? "Replica Manager CA"));
    console.log(`created CA: ${files.cert} (keep ${files.key} private)`);
    return 0;
  }
  if (command === "host") {
    if (names.length === 0) {
      console.error("give the host's FQDN, e.g. npm run certs -- host --dir certs hv01.example.com");
      return 2;
    }
    const ca = await readPair(values.dir, "ca").catch(() => {
      throw new Error(`no CA in ${values.dir}: create one first with 'npm run certs -- ca --dir ${values.dir}'`);
    });
    const files = await writePair(values.dir, names[0]!, await issueCertificate(ca, names));
    console.log(`issued certificate for ${names.join(", ")}: ${files.cert}, key ${files.key}`);
    return 0;
  }
  console.error(`unknown command '${command}'\n${USAGE}`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
